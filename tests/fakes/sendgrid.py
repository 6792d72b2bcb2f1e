"""A local SendGrid: `POST /v3/mail/send` over real HTTP, validated against SendGrid's OpenAPI document."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS31Validator, oas31_format_checker

SPEC_PATH = Path(__file__).resolve().parents[1] / "specs" / "tsg_mail_v3.json"  # SendGrid's official OpenAPI document
RATE_LIMIT_RESET = "1767225600"  # any epoch second: clients only read it


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def error_body(message: str, field_name: str | None = None) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": field_name, "help": None}]}


CANNED_FAULTS = {
    400: Reply(400, error_body("The to email does not contain a valid address.", "personalizations.0.to")),
    401: Reply(401, error_body("The provided authorization grant is invalid, expired, or revoked")),
    403: Reply(403, error_body("access forbidden")),
    413: Reply(413, error_body("The request is too large")),
    429: Reply(
        429,
        {"errors": [{"field": None, "message": "too many requests"}]},
        {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": RATE_LIMIT_RESET},
    ),
    500: Reply(500, error_body("Internal server error")),
    503: Reply(503, error_body("Service unavailable")),
}


def load_validator(path: Path = SPEC_PATH) -> OAS31Validator:
    """The request-body validator of POST /v3/mail/send, from the spec."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    schema = copy.deepcopy(spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]["schema"])
    # Spec quirk: message-level custom_args is typed "string", but the API and the SDK send an object.
    schema["properties"]["custom_args"] = {"type": "object", "additionalProperties": {"type": "string"}}
    schema["components"] = spec["components"]  # so that '#/components/...' references resolve
    return OAS31Validator(schema, format_checker=oas31_format_checker)


class FakeSendGrid:
    def __init__(self, api_key: str = "SG.test-key", *, spec_path: Path = SPEC_PATH):
        self.api_key = api_key
        self.validator = load_validator(spec_path)
        self.sent: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.message_ids: list[str] = []
        self._faults: list[Reply] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Serve on a free local port in a daemon thread; returns the base URL to give the client as `host`."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval keeps stop() (which waits for the next poll) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-sendgrid", daemon=True
        )
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeSendGrid:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (SendGrid's bodies and headers), in order."""
        replies = [CANNED_FAULTS.get(status) or Reply(status, error_body("injected fault")) for status in statuses]
        with self._lock:
            self._faults.extend(replies)

    def handle(self, authorization: str | None, raw_body: bytes) -> Reply:
        if authorization != f"Bearer {self.api_key}":
            return CANNED_FAULTS[401]
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
        try:
            payload = json.loads(raw_body)
        except ValueError:
            return Reply(400, error_body("Bad Request"))
        problems = self._problems(payload)
        with self._lock:
            if problems:
                self.rejected.append(payload)
                return Reply(400, {"errors": problems})
            message_id = uuid.uuid4().hex[:22]
            self.sent.append(payload)
            self.message_ids.append(message_id)
        return Reply(202, None, {"X-Message-Id": message_id})

    def _problems(self, payload: Any) -> list[dict[str, Any]]:
        return [
            error_body(error.message, ".".join(str(part) for part in error.absolute_path) or None)["errors"][0]
            for error in self.validator.iter_errors(payload)
        ]


def _handler_for(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/v3/mail/send":
                self._reply(Reply(404, error_body("not found")))
                return
            raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(fake.handle(self.headers.get("Authorization"), raw_body))

        def _reply(self, reply: Reply) -> None:
            data = json.dumps(reply.body).encode() if reply.body is not None else b""
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: test output is for failures."""

    return Handler
