"""The clock: APScheduler wakes a few fixed jobs; the database says what is due."""
