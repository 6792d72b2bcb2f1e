"""A simulated phone network that speaks Twilio's wire protocol.

`SimNetwork` runs in-process: a small HTTP server implements the part of
Twilio's REST API that `TwilioCarrier` uses (create, list and fetch calls),
and a worker thread per call plays it against the application's real
webhooks: signed status callbacks, the answer webhook, then the TwiML it
returns (Say, Play, Pause, Gather, Redirect, Hangup). Demos and tests
therefore exercise the production adapter and the production webhook code.

Who answers is decided by a `Persona` per number (`personas=` or
`set_persona`). A number without one follows the default dial plan, by the
last digit of its E.164 form; answering personas give the same answer at
every Gather:

    1  presses 1            6  never picks up (no-answer)
    2  presses 2            7  busy on the first call, presses 1 on later calls
    3  presses 3            8  an answering machine (silent)
    4  says "げんきです" (0.92)  9  presses 9 (help)
    5  picks up, stays silent   0  says "いつもどおりです" (0.88)

Time is not simulated: a call plays as fast as the webhooks answer.
The list endpoint filters on To, From, Status and StartTime> only. As on Twilio, a call
still queued has no start time, so StartTime> does not match it; `hold_queue()` keeps new
calls queued (the account's queue, beyond its calls-per-second limit) until `release_queue()`.
"""

from __future__ import annotations

import base64
import copy
import hmac
import json
import logging
import math
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urldefrag, urlencode, urljoin, urlsplit

import phonenumbers
import requests
from twilio.request_validator import RequestValidator

from core.privacy import mask_phone

logger = logging.getLogger(__name__)

SIM_ACCOUNT_SID = "AC" + "0" * 32
SIM_FROM_NUMBER = "+815000000000"
API_VERSION = "2010-04-01"
CREATED_THEN_500 = "created-then-500"
# A TwiML loop (a Redirect to itself, a Gather that always re-asks) must not play for ever.
MAX_TWIML_REQUESTS = 50
DEFAULT_PAGE_SIZE = 50
ANSWERS_PER_CALL = 12  # default personas repeat their answer this many times
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

_CALLS_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Calls\.json")
_CALL_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Calls/(?P<sid>[^/]+)\.json")
_FILTER_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d")
_Reply = tuple[int, dict, Callable[[], None] | None]  # HTTP status, JSON body, work to start once sent
_FAULT_MESSAGES = {
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "Invalid 'To' Phone Number",
}


@dataclass(frozen=True)
class Press:
    """Keys pressed at a Gather, e.g. Press("1")."""

    digits: str


@dataclass(frozen=True)
class Say:
    """Words spoken at a Gather, with the recogniser's confidence."""

    text: str
    confidence: float = 0.9


@dataclass(frozen=True)
class Silence:
    """No input at a Gather."""


Input = Press | Say | Silence
Pickup = Literal["human", "no-answer", "busy", "failed", "machine"]
PICKUPS: frozenset[str] = frozenset({"human", "no-answer", "busy", "failed", "machine"})


@dataclass(frozen=True)
class Persona:
    """How the person (or machine) at one number behaves.

    `inputs` are given at successive Gathers, then silence. With
    `hang_up_after_gathers=N` the resident hears the Nth Gather's prompt and
    hangs up instead of answering it. `later` is who answers the 2nd and
    later calls to the same number (a chain: the 3rd call uses `later.later`
    when there is one).
    """

    name: str
    pickup: Pickup = "human"
    inputs: tuple[Input, ...] = ()
    hang_up_after_gathers: int | None = None
    later: Persona | None = None
    duplicate_callbacks: bool = False  # every status callback delivered twice, same idempotency token
    reorder_callbacks: bool = False  # status callbacks held, then delivered in reverse at the end

    def __post_init__(self) -> None:
        if self.pickup not in PICKUPS:
            raise ValueError(f"pickup must be one of {sorted(PICKUPS)}, not {self.pickup!r}")

    def for_call(self, index: int) -> Persona:
        """The persona answering the call with this 0-based index to the number."""
        persona = self
        for _ in range(index):
            if persona.later is None:
                break
            persona = persona.later
        return persona


def _answers(name: str, answer: Input) -> Persona:
    return Persona(name, inputs=(answer,) * ANSWERS_PER_CALL)


_PRESSES_1 = _answers("presses-1", Press("1"))
DIAL_PLAN: dict[str, Persona] = {
    "1": _PRESSES_1,
    "2": _answers("presses-2", Press("2")),
    "3": _answers("presses-3", Press("3")),
    "4": _answers("says-genki", Say("げんきです", 0.92)),
    "5": Persona("silent"),
    "6": Persona("no-answer", pickup="no-answer"),
    "7": Persona("busy-then-presses-1", pickup="busy", later=_PRESSES_1),
    "8": Persona("answering-machine", pickup="machine"),
    "9": _answers("presses-9", Press("9")),
    "0": _answers("says-itsumodoori", Say("いつもどおりです", 0.88)),
}


def default_persona(number: str) -> Persona:
    """The default dial plan: by the last digit of the number."""
    return DIAL_PLAN.get(number[-1:], DIAL_PLAN["5"])


@dataclass
class SimCall:
    """One call as the network saw it. `SimNetwork.calls` hands out copies."""

    sid: str
    account_sid: str
    to: str
    from_: str
    persona: str
    form: dict[str, list[str]]  # the create request's form, exactly as received
    date_created: datetime
    date_updated: datetime
    status: str = "queued"
    answered_by: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    said: list[str] = field(default_factory=list)  # every <Say> heard, in order
    played: list[str] = field(default_factory=list)  # every <Play> URL, in order
    pressed: list[str] = field(default_factory=list)  # Digits sent to Gather actions
    spoken: list[str] = field(default_factory=list)  # SpeechResults sent to Gather actions
    webhooks: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, params) per request sent
    errors: list[str] = field(default_factory=list)  # what Twilio would log as notifications
    finished: bool = False


@dataclass(frozen=True)
class _Request:
    """One webhook to deliver; a duplicate delivery reuses the token."""

    url: str
    method: str
    params: dict[str, str]
    token: str = field(default_factory=lambda: str(uuid.uuid4()))


class _HungUp(Exception):
    """The resident put the phone down in the middle of the call."""


class _Stopped(Exception):
    """The network was stopped while the call was playing."""


class SimNetwork:
    def __init__(
        self,
        auth_token: str,
        account_sid: str = SIM_ACCOUNT_SID,
        *,
        personas: dict[str, Persona] | None = None,
        webhook_timeout: float = 15.0,
    ):
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._validator = RequestValidator(auth_token)
        self._webhook_timeout = webhook_timeout
        self._personas = dict(personas or {})
        # One condition guards all mutable state below and signals "a call finished".
        self._cond = threading.Condition()
        self._calls: dict[str, SimCall] = {}
        self._calls_per_number: dict[str, int] = {}
        self._faults: deque[tuple[int, int] | str] = deque()
        self._queue_held = False
        self._active = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- control -----------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Start the REST API on 127.0.0.1 and return its base URL."""
        if self._server is not None:
            raise RuntimeError("SimNetwork is already running")
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", port), _Handler, self)
        # A short poll interval only makes stop() quick: shutdown() waits for the loop to look.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-network-api", daemon=True
        )
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("SimNetwork is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop the API; calls still playing end at their next webhook."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()  # calls waiting in a held queue
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every call created so far has ended; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    def set_persona(self, number: str, persona: Persona) -> None:
        with self._cond:
            self._personas[number] = persona

    def hold_queue(self) -> None:
        """Keep calls created from now on queued, not dialled, until release_queue()."""
        with self._cond:
            self._queue_held = True

    def release_queue(self) -> None:
        with self._cond:
            self._queue_held = False
            self._cond.notify_all()

    def fail_next_creates(self, *faults: tuple[int, int] | str) -> None:
        """Answer the next create requests with these faults, one per request.

        A fault is (HTTP status, Twilio code), e.g. (429, 20429), or
        "created-then-500": the call is created but the response is a 500.
        """
        for fault in faults:
            if isinstance(fault, str) and fault != CREATED_THEN_500:
                raise ValueError(f"unknown fault {fault!r}")
        with self._cond:
            self._faults.extend(faults)

    @property
    def calls(self) -> list[SimCall]:
        """A snapshot of every call created, oldest first."""
        with self._cond:
            return [copy.deepcopy(call) for call in self._calls.values()]

    # -- REST API ----------------------------------------------------------------------------

    def _handle_api(self, method: str, target: str, body: str, authorization: str) -> _Reply:
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        calls_match = _CALLS_PATH.fullmatch(parts.path)
        call_match = _CALL_PATH.fullmatch(parts.path)
        match = calls_match or call_match
        if match is None:
            return _not_found(parts.path)
        if not self._authorized(authorization):
            return _error(401, 20003, "Authenticate")
        if match.group("account") != self.account_sid:
            return _not_found(parts.path)
        if calls_match and method == "POST":
            return self._create(parse_qs(body, keep_blank_values=True))
        if calls_match and method == "GET":
            return self._list(parts.path, query)
        if call_match and method == "GET":
            return self._fetch(parts.path, call_match.group("sid"))
        return _error(405, 20004, "Method not allowed")

    def _authorized(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        # Both compared every time, on bytes: compare_digest rejects non-ASCII str.
        user_ok = hmac.compare_digest(user.encode(), self.account_sid.encode())
        password_ok = hmac.compare_digest(password.encode(), self._auth_token.encode())
        return user_ok and password_ok

    def _create(self, form: dict[str, list[str]]) -> _Reply:
        with self._cond:
            fault = self._faults.popleft() if self._faults else None
        if isinstance(fault, tuple):
            status, code = fault
            return _error(status, code, _FAULT_MESSAGES.get(code, f"Simulated error {code}"))

        to = _first(form, "To")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not _valid_number(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not _first(form, "From"):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not _first(form, "Url"):
            return _error(400, 21205, "Url parameter is required.")

        now = _now()
        with self._cond:
            index = self._calls_per_number.get(to, 0)
            self._calls_per_number[to] = index + 1
            persona = (self._personas.get(to) or default_persona(to)).for_call(index)
            call = SimCall(
                sid="CA" + uuid.uuid4().hex,
                account_sid=self.account_sid,
                to=to,
                from_=_first(form, "From"),
                persona=persona.name,
                form=form,
                date_created=now,
                date_updated=now,
            )
            self._calls[call.sid] = call
            self._active += 1
            resource = self._resource(call)
        logger.info("sim: %s to %s created (%s)", call.sid, mask_phone(to), persona.name)

        def play() -> None:
            threading.Thread(target=self._play, args=(call, persona), name=f"sim-{call.sid[:12]}", daemon=True).start()

        if fault == CREATED_THEN_500:
            status, payload, _ = _error(500, 20500, _FAULT_MESSAGES[20500])
            return status, payload, play
        return 201, resource, play

    def _list(self, path: str, query: dict[str, list[str]]) -> _Reply:
        try:
            started_after = _filter_time(_first(query, "StartTime>"))
            page_size = int(_first(query, "PageSize") or DEFAULT_PAGE_SIZE)
            page = int(_first(query, "Page") or 0)
            if not 1 <= page_size <= 1000 or page < 0:
                raise ValueError("PageSize must be 1..1000 and Page >= 0")
        except ValueError as error:
            return _error(400, 20001, f"Invalid parameter: {error}")
        wanted = {name: _first(query, name) for name in ("To", "From", "Status") if _first(query, name)}
        with self._cond:
            matching = [
                self._resource(call)
                for call in reversed(self._calls.values())  # newest first, as Twilio lists
                if all(_field(call, name) == value for name, value in wanted.items())
                and (started_after is None or (call.start_time is not None and call.start_time >= started_after))
            ]
        kept = {name: values for name, values in query.items() if name not in ("Page", "PageSize")}

        def page_uri(number: int) -> str:
            return f"{path}?{urlencode({**kept, 'PageSize': page_size, 'Page': number}, doseq=True)}"

        start = page * page_size
        chunk = matching[start : start + page_size]
        return 200, {
            "calls": chunk,
            "start": start,
            "end": start + max(len(chunk) - 1, 0),
            "page": page,
            "page_size": page_size,
            "uri": page_uri(page),
            "first_page_uri": page_uri(0),
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "next_page_uri": page_uri(page + 1) if start + page_size < len(matching) else None,
        }, None

    def _fetch(self, path: str, sid: str) -> _Reply:
        with self._cond:
            call = self._calls.get(sid)
            if call is None:
                return _not_found(path)
            return 200, self._resource(call), None

    def _resource(self, call: SimCall) -> dict:
        uri = f"/{API_VERSION}/Accounts/{call.account_sid}/Calls/{call.sid}.json"
        return {
            "sid": call.sid,
            "account_sid": call.account_sid,
            "parent_call_sid": None,
            "date_created": format_datetime(call.date_created),
            "date_updated": format_datetime(call.date_updated),
            "to": call.to,
            "to_formatted": _formatted(call.to),
            "from": call.from_,
            "from_formatted": _formatted(call.from_),
            "phone_number_sid": None,
            "status": call.status,
            "start_time": format_datetime(call.start_time) if call.start_time else None,
            "end_time": format_datetime(call.end_time) if call.end_time else None,
            "duration": None if call.duration is None else str(call.duration),
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": call.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": uri,
            "subresource_uris": {
                "notifications": uri.replace(".json", "/Notifications.json"),
                "recordings": uri.replace(".json", "/Recordings.json"),
            },
        }

    # -- playing a call ----------------------------------------------------------------------

    def _play(self, call: SimCall, persona: Persona) -> None:
        run = _Run(self, call, persona)
        try:
            with self._cond:
                self._cond.wait_for(lambda: not self._queue_held or self._stopping.is_set())
            self._play_call(run)
        except _Stopped:
            run.error("network stopped before the call ended")
            run.end("canceled" if call.status in ("queued", "ringing") else "completed")
        except Exception as error:
            # A simulator bug must show up in the record, not kill the thread silently.
            logger.exception("sim: %s crashed", call.sid)
            run.error(f"simulator error: {error!r}")
            run.end("failed")
        finally:
            run.session.close()
            with self._cond:
                call.finished = True
                self._active -= 1
                self._cond.notify_all()
            logger.info("sim: %s to %s ended %s", call.sid, mask_phone(call.to), call.status)

    def _play_call(self, run: _Run) -> None:
        run.begin()
        self._status_event(run, "initiated", "initiated")
        run.set_status("ringing")
        self._status_event(run, "ringing", "ringing")
        if run.persona.pickup in ("no-answer", "busy", "failed"):
            run.end(run.persona.pickup)
        else:
            run.answer()
            self._status_event(run, "answered", "in-progress")
            self._converse(run)
            run.end("completed")
        self._status_event(run, "completed", run.call.status)
        for held in reversed(run.held):
            self._deliver_callback(run, held)

    def _status_event(self, run: _Run, event: str, call_status: str) -> None:
        url = _first(run.call.form, "StatusCallback")
        if not url or event not in run.events:
            return
        params = run.params(call_status)
        params.update(
            SequenceNumber=str(run.next_sequence()),
            Timestamp=format_datetime(_now()),
            CallbackSource="call-progress-events",
        )
        if event == "completed":
            params["CallDuration"] = str(run.call.duration or 0)
        request = _Request(url, _first(run.call.form, "StatusCallbackMethod", "POST"), params)
        if run.persona.reorder_callbacks:
            run.held.append(request)
        else:
            self._deliver_callback(run, request)

    def _deliver_callback(self, run: _Run, request: _Request) -> None:
        for _ in range(2 if run.persona.duplicate_callbacks else 1):
            response = self._send(run, request)
            if response is not None and not 200 <= response.status_code < 300:
                run.error(f"11200 status callback {_path(request.url)} -> HTTP {response.status_code}")

    def _converse(self, run: _Run) -> None:
        call = run.call
        # With synchronous AMD the answer webhook carries AnsweredBy (added by params()).
        request: _Request | None = _Request(
            _first(call.form, "Url"), _first(call.form, "Method", "POST"), run.params("in-progress")
        )
        try:
            while request is not None:
                document = self._fetch_twiml(run, request)
                if document is None:
                    return
                request = self._execute(run, document, request.url)
        except _HungUp:
            logger.debug("sim: %s hung up mid-call", call.sid)

    def _fetch_twiml(self, run: _Run, request: _Request) -> ET.Element | None:
        if run.twiml_requests >= MAX_TWIML_REQUESTS:
            run.error(f"loop guard: more than {MAX_TWIML_REQUESTS} TwiML requests, hung up")
            return None
        run.twiml_requests += 1
        response = self._send(run, request)
        if response is None:
            return None
        where = f"{request.method} {_path(request.url)}"
        if not 200 <= response.status_code < 300:
            run.error(f"11200 {where} -> HTTP {response.status_code}")
            return None
        try:
            document = ET.fromstring(response.content)
        except ET.ParseError as error:
            run.error(f"12100 {where}: document parse failure: {error}")
            return None
        if document.tag != "Response":
            run.error(f"12100 {where}: root element is <{document.tag}>, not <Response>")
            return None
        return document

    def _execute(self, run: _Run, document: ET.Element, document_url: str) -> _Request | None:
        """Play one TwiML document; return the next request to make, or None to hang up."""
        for verb in document:
            if verb.tag in ("Say", "Play", "Pause"):
                run.hear(verb)
            elif verb.tag == "Gather":
                action = self._gather(run, verb, document_url)
                if action is not None:
                    return action
            elif verb.tag == "Redirect":
                url = urljoin(document_url, (verb.text or "").strip())
                return _Request(url, verb.get("method", "POST"), run.params("in-progress"))
            elif verb.tag == "Hangup":
                return None
            else:
                run.error(f"12100 unsupported verb <{verb.tag}> in {_path(document_url)}, hung up")
                return None
        return None

    def _gather(self, run: _Run, gather: ET.Element, document_url: str) -> _Request | None:
        """Listen for input; return the action request, or None to fall through to the next verb."""
        for nested in gather:
            if nested.tag in ("Say", "Play", "Pause"):
                run.hear(nested)
            else:
                run.error(f"12100 <{nested.tag}> cannot be nested in <Gather>")
        run.gathers += 1
        if run.persona.hang_up_after_gathers == run.gathers:
            raise _HungUp
        result = _gather_result(gather, run.next_input())
        if result is None and gather.get("actionOnEmptyResult", "").lower() != "true":
            return None
        if result is not None:
            run.note_input(result)
        # Twilio posts to the current document when there is no action.
        action = urljoin(document_url, gather.get("action") or document_url)
        return _Request(action, gather.get("method", "POST"), {**run.params("in-progress"), **(result or {})})

    def _send(self, run: _Run, request: _Request) -> requests.Response | None:
        """Deliver one signed webhook; None (and an error recorded) if it could not be delivered."""
        if self._stopping.is_set():
            raise _Stopped
        url = urldefrag(request.url).url  # fragments hold connection overrides and are never sent
        headers = {"I-Twilio-Idempotency-Token": request.token, "User-Agent": "TwilioProxy/1.1"}
        if request.method.upper() == "GET":
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(request.params)}"
            headers["X-Twilio-Signature"] = self._validator.compute_signature(url, {})
            data = None
        else:
            headers["X-Twilio-Signature"] = self._validator.compute_signature(url, request.params)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = request.params
        run.note_webhook(_path(request.url), request.params)
        try:
            return run.session.request(
                request.method.upper(),
                url,
                data=data,
                headers=headers,
                timeout=self._webhook_timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            run.error(f"11205 {request.method} {_path(request.url)}: {type(error).__name__}")
            return None


class _Run:
    """The state of one call while it plays; every write to the shared SimCall takes the lock."""

    def __init__(self, network: SimNetwork, call: SimCall, persona: Persona):
        self.call = call
        self.persona = persona
        self.session = requests.Session()
        self.machine_detection = _first(call.form, "MachineDetection")
        self.detect_machines = self.machine_detection in ("Enable", "DetectMessageEnd")
        # The SDK repeats StatusCallbackEvent; without any, Twilio sends only `completed`.
        self.events = {event for value in call.form.get("StatusCallbackEvent", []) for event in value.split()} or {
            "completed"
        }
        self.held: list[_Request] = []
        self.twiml_requests = 0
        self.gathers = 0
        self._cond = network._cond
        self._sequence = 0
        self._inputs = iter(persona.inputs)

    def params(self, call_status: str) -> dict[str, str]:
        call = self.call
        params = {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": call_status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": "outbound-api",
            "From": call.from_,
            "FromCountry": _country(call.from_),
            "To": call.to,
            "ToCountry": _country(call.to),
        }
        if self.detect_machines and call.answered_by:
            params["AnsweredBy"] = call.answered_by
        return params

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence - 1

    def next_input(self) -> Input:
        return next(self._inputs, Silence())

    def begin(self) -> None:
        with self._cond:
            self.call.start_time = self.call.date_updated = _now()

    def set_status(self, status: str) -> None:
        with self._cond:
            self.call.status = status
            self.call.date_updated = _now()

    def answer(self) -> None:
        with self._cond:
            if self.detect_machines:
                machine = "machine_end_beep" if self.machine_detection == "DetectMessageEnd" else "machine_start"
                self.call.answered_by = machine if self.persona.pickup == "machine" else "human"
            self.call.status = "in-progress"
            self.call.date_updated = _now()

    def end(self, status: str) -> None:
        with self._cond:
            call = self.call
            if call.status in TERMINAL_STATUSES:
                return
            call.status = status
            call.end_time = call.date_updated = _now()
            answered = status == "completed" and call.start_time is not None
            # Twilio bills whole seconds; an answered call lasts at least one.
            call.duration = max(1, math.ceil((call.end_time - call.start_time).total_seconds())) if answered else 0

    def hear(self, verb: ET.Element) -> None:
        with self._cond:
            if verb.tag == "Say":
                # Nested SSML (<prosody>, <break>) is part of what is heard.
                self.call.said.append("".join(verb.itertext()).strip())
            elif verb.tag == "Play":
                self.call.played.append((verb.text or "").strip())

    def note_input(self, result: dict[str, str]) -> None:
        with self._cond:
            if "Digits" in result:
                self.call.pressed.append(result["Digits"])
            else:
                self.call.spoken.append(result["SpeechResult"])

    def note_webhook(self, path: str, params: dict[str, str]) -> None:
        with self._cond:
            self.call.webhooks.append((path, dict(params)))

    def error(self, message: str) -> None:
        logger.warning("sim: %s: %s", self.call.sid, mask_phone(message))
        with self._cond:
            self.call.errors.append(message)


class _Server(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], network: SimNetwork):
        self.network = network
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        status, payload, then = self.server.network._handle_api(
            self.command, self.path, body, self.headers.get("Authorization", "")
        )
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        finally:
            # Started only now, so that no webhook overtakes the create response; and started even
            # if the client has gone (timed out): the call exists, as it would at Twilio.
            if then is not None:
                then()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("sim api: %s", mask_phone(format % args))


def _gather_result(gather: ET.Element, heard: Input) -> dict[str, str] | None:
    """The Gather action's input parameters, or None when nothing usable was heard."""
    modes = gather.get("input", "dtmf").split()
    if isinstance(heard, Press) and "dtmf" in modes:
        digits, finished_on = _keypad(heard.digits, gather.get("finishOnKey", "#"), gather.get("numDigits"))
        if digits:
            return {"Digits": digits, "FinishedOnKey": finished_on}
    if isinstance(heard, Say) and "speech" in modes:
        return {"SpeechResult": heard.text, "Confidence": str(heard.confidence)}
    return None


def _keypad(keys: str, finish_on_key: str, num_digits: str | None) -> tuple[str, str]:
    """Digits collected and the key that ended collection ("" when numDigits or the timeout did)."""
    limit = int(num_digits) if num_digits else None
    digits = ""
    for key in keys:
        if finish_on_key and key == finish_on_key:
            return digits, key
        digits += key
        if limit is not None and len(digits) >= limit:
            break
    return digits, ""


def _error(status: int, code: int, message: str) -> _Reply:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }, None


def _not_found(path: str) -> _Reply:
    return _error(404, 20404, f"The requested resource {path} was not found")


def _first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0] if values else default


def _field(call: SimCall, name: str) -> str:
    return {"To": call.to, "From": call.from_, "Status": call.status}[name]


def _filter_time(raw: str) -> datetime | None:
    if not raw:
        return None
    for format in _FILTER_TIME_FORMATS:
        try:
            return datetime.strptime(raw, format).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"StartTime>={raw!r}")


def _valid_number(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def _formatted(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def _country(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.region_code_for_country_code(parsed.country_code)


def _path(url: str) -> str:
    return urlsplit(url).path


def _now() -> datetime:
    return datetime.now(UTC)
