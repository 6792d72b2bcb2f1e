"""The file mailer: one RFC 5322 .eml file per message, for the demo and development."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from core.privacy import mask_email
from notify.mailer import OutgoingEmail, PermanentMailError, TransientMailError

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class OutboxMailer:
    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def send(self, email: OutgoingEmail) -> str:
        """Idempotent: the same message key always lands in the same file, replacing any earlier copy."""
        key = _safe_key(email.message_key)
        try:
            data = _build(email, key).as_bytes()
        except ValueError as error:  # malformed address or header: resending cannot fix it
            raise PermanentMailError(f"cannot build message: {type(error).__name__}") from None
        name = f"{key}.eml"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.directory / name, data)
        except OSError as error:
            raise TransientMailError(f"cannot write outbox file: {error.strerror or error}") from None
        log.info("outbox: wrote %s for %s", name, mask_email(email.to_email))
        return name


def _safe_key(message_key: str) -> str:
    # The key becomes a file name and a Message-ID: keep it to characters that are safe in both.
    key = _UNSAFE.sub("_", message_key).strip(".")
    if not key:
        raise PermanentMailError("empty message key")
    return key


def _build(email: OutgoingEmail, key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(display_name=email.from_name, addr_spec=email.from_email)
    message["To"] = Address(display_name=email.to_name, addr_spec=email.to_email)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.created_at)
    message["Message-ID"] = f"<{key}@mimamori.local>"
    message.set_content(email.text, charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message


def _write_atomically(path: Path, data: bytes) -> None:
    # A reader (or a crash) never sees half a file: write beside it, then rename over it.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
