"""Phone carriers behind one small port: Twilio in production, a simulated network for demos and tests."""
