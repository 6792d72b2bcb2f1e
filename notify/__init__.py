"""Family emails: rendering, the mailer port and its adapters, and the outbox relay that delivers them."""
