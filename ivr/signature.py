"""Carrier webhook authentication: X-Twilio-Signature over the public URL and the form."""

from __future__ import annotations

from functools import wraps

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator


def public_url(base: str) -> str:
    # The URL the carrier called, rebuilt from PUBLIC_BASE_URL: behind a proxy request.url differs,
    # and Werkzeug decodes the query string while the signature covers it as sent.
    query = request.query_string.decode("ascii")
    return base + request.path + (f"?{query}" if query else "")


def twilio_signed(view):
    @wraps(view)
    def checked(*args, **kwargs):
        runtime = current_app.extensions["mimamori"]
        validator: RequestValidator = runtime.webhook_validator
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not validator.validate(public_url(runtime.settings.public_base_url), request.form, signature):
            abort(403, description="invalid or missing X-Twilio-Signature")
        return view(*args, **kwargs)

    return checked
