"""Fakes that speak the real wire protocols of external services, for tests."""
