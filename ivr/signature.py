"""Carrier webhook authentication: X-Twilio-Signature over the public URL and the form."""

from __future__ import annotations

import hmac
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
        if not signature or not _valid(validator, public_url(runtime.settings.public_base_url), signature):
            abort(403, description="invalid or missing X-Twilio-Signature")
        return view(*args, **kwargs)

    return checked


def _valid(validator: RequestValidator, url: str, signature: str) -> bool:
    # The common case first: the signature covers the URL exactly as we gave it to the carrier.
    # validate() also accepts the URL with or without its port, and computes both every time.
    computed = validator.compute_signature(url, request.form)
    return hmac.compare_digest(computed.encode(), signature.encode()) or validator.validate(url, request.form, signature)
