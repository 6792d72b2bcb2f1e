"""The phone channel: Twilio webhooks under /ivr/, rendering the conversation as TwiML."""
