"""The SendGrid mailer: POST /v3/mail/send through the official sendgrid-python client."""

from __future__ import annotations

import http.client
import json
import logging
import re

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Category, CustomArg, From, HtmlContent, Mail, PlainTextContent, To

from core.privacy import mask_email
from notify.mailer import OutgoingEmail, PermanentMailError, TransientMailError

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 429})
# SendGrid rejects display names containing these (mail-send limitations).
_NAME_UNSAFE = re.compile(r"[;,\r\n]+")


class SendGridMailer:
    def __init__(self, api_key: str, *, host: str = "https://api.sendgrid.com", timeout: float = 10.0):
        self._client = SendGridAPIClient(api_key, host=host)
        self._client.client.timeout = timeout  # the default is to wait forever
        # The client logs request headers (the API key) and payloads (addresses) at DEBUG: keep that off.
        logging.getLogger("python_http_client.client").setLevel(logging.INFO)

    def send(self, email: OutgoingEmail) -> str:
        try:
            response = self._client.send(_mail(email))
        except HTTPError as error:
            status = error.status_code
            reason = f"SendGrid {status}: {_first_error(error.body)}"
            if status in TRANSIENT_STATUSES or status >= 500:
                raise TransientMailError(reason) from None
            raise PermanentMailError(reason) from None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, refused or dropped connections
            raise TransientMailError(f"SendGrid unreachable: {type(error).__name__}") from None
        message_id = response.headers.get("X-Message-Id", "")
        log.info("sendgrid: accepted %s for %s as %s", email.message_key, mask_email(email.to_email), message_id)
        return message_id


def _mail(email: OutgoingEmail) -> Mail:
    mail = Mail(
        from_email=From(email.from_email, _display_name(email.from_name)),
        to_emails=To(email.to_email, _display_name(email.to_name)),
        subject=email.subject,
        plain_text_content=PlainTextContent(email.text),
        html_content=HtmlContent(email.html),
    )
    mail.category = Category(email.category)
    mail.custom_arg = CustomArg("message_key", email.message_key)
    return mail


def _display_name(name: str) -> str | None:
    return " ".join(_NAME_UNSAFE.sub(" ", name).split()) or None


def _first_error(body: bytes | None) -> str:
    """SendGrid's first error message, short and with any address masked."""
    try:
        message = json.loads(body or b"")["errors"][0]["message"]
    except (ValueError, LookupError, TypeError):
        return "no error detail"
    return mask_email(str(message))[:200]
