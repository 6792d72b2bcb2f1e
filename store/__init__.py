"""Persistence: the SQLAlchemy models and how to open the database."""
