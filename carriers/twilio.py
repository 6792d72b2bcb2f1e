"""The production carrier: Twilio's Programmable Voice REST API through the official SDK.

Creating a call is not idempotent on Twilio's side, so the error policy is
built around never dialling a resident twice:

* 429 (20429) was not processed: back off and try again.
* 5xx and network errors are ambiguous (the call may exist): before trying
  again, and before giving up, look for a call created since the first attempt
  and return it if there is one.
* Any other 4xx is permanent and is raised at once.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.call import CallInstance

from carriers.base import TWILIO_API_BASE_URL, DialRequest, PermanentCarrierError, PlacedCall, TransientCarrierError
from core.privacy import mask_phone

logger = logging.getLogger(__name__)

# The SDK logs every request URL at INFO, and list queries carry the full `To`
# number; its own logger is kept at WARNING so those lines never reach a handler.
_sdk_logger = logging.getLogger(f"{__name__}.sdk")
_sdk_logger.setLevel(logging.WARNING)

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
FIRST_BACKOFF_SECONDS = 0.5
# Margin for clock skew between us and Twilio when looking for a call we may have created.
RECONCILE_MARGIN = timedelta(seconds=5)
RECONCILE_LIMIT = 20

_NETWORK_ERRORS = (requests.Timeout, requests.ConnectionError)


class TwilioCarrier:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        *,
        api_base_url: str = TWILIO_API_BASE_URL,
        timeout: float = 10.0,
        max_tries: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self._http = TwilioHttpClient(timeout=timeout, logger=_sdk_logger)
        # environment={}: TWILIO_EDGE/TWILIO_REGION in the environment would rewrite the API host.
        self._client = Client(account_sid, auth_token, http_client=self._http, environment={})
        self._client.api.base_url = api_base_url.rstrip("/")
        self._from_number = from_number
        self._max_tries = max_tries
        self._sleep = sleep

    def close(self) -> None:
        """Release the pooled HTTP connections."""
        if self._http.session is not None:
            self._http.session.close()

    def dial(self, request: DialRequest) -> PlacedCall:
        who = mask_phone(request.to)
        first_sent = datetime.now(UTC)
        maybe_created = False
        for attempt in range(1, self._max_tries + 1):
            if attempt > 1:
                self._back_off(attempt - 1)
            if maybe_created:
                found = self._reconcile(request.to, first_sent)
                if found is not None:
                    return found
            try:
                call = self._create(request)
            except TwilioRestException as error:
                if error.status == 429:
                    logger.warning("dial %s: rate limited (try %d/%d)", who, attempt, self._max_tries)
                    continue
                if error.status >= 500:
                    logger.warning("dial %s: HTTP %s (try %d/%d)", who, error.status, attempt, self._max_tries)
                    maybe_created = True
                    continue
                logger.warning("dial %s refused: %s %s", who, error.code, mask_phone(error.msg))
                raise PermanentCarrierError(code=str(error.code), message=error.msg) from error
            except _NETWORK_ERRORS as error:
                logger.warning("dial %s: %s (try %d/%d)", who, type(error).__name__, attempt, self._max_tries)
                maybe_created = True
                continue
            logger.debug("dialled %s: %s", who, call.sid)
            return PlacedCall(sid=call.sid, status=call.status)

        if maybe_created:
            found = self._reconcile(request.to, first_sent)
            if found is not None:
                return found
        raise TransientCarrierError(f"call to {who} not placed after {self._max_tries} tries")

    def find_calls(self, to: str, since: datetime) -> list[PlacedCall]:
        since = _as_utc(since)
        try:
            # StartTime is empty until a call is dialled: a call still waiting in the account's
            # queue is found by its status instead. In this order, a call leaving the queue
            # between the two requests is found by the second.
            calls = {call.sid: call for call in self._client.calls.list(to=to, status="queued", limit=RECONCILE_LIMIT)}
            calls.update((call.sid, call) for call in self._client.calls.list(
                to=to, start_time_after=since, limit=RECONCILE_LIMIT))
        except TwilioRestException as error:
            raise _carrier_error(error.status, error.code, error.msg) from error
        except TwilioException as error:
            raise _page_error(error) from error
        except _NETWORK_ERRORS as error:
            raise TransientCarrierError(f"listing calls failed: {type(error).__name__}") from error
        recent = [call for call in calls.values() if (_created_at(call) or since) >= since]
        recent.sort(key=lambda call: _created_at(call) or since, reverse=True)
        return [PlacedCall(sid=call.sid, status=call.status) for call in recent]

    def call_status(self, sid: str) -> str:
        try:
            return self._client.calls(sid).fetch().status
        except TwilioRestException as error:
            raise _carrier_error(error.status, error.code, error.msg) from error
        except _NETWORK_ERRORS as error:
            raise TransientCarrierError(f"fetching {sid} failed: {type(error).__name__}") from error

    def _create(self, request: DialRequest) -> CallInstance:
        return self._client.calls.create(
            to=request.to,
            from_=self._from_number,
            url=request.answer_url,
            method="POST",
            status_callback=request.status_url,
            status_callback_method="POST",
            status_callback_event=list(STATUS_EVENTS),
            timeout=request.ring_seconds,
            # Synchronous AMD: AnsweredBy comes with the answer webhook itself.
            machine_detection="Enable" if request.detect_machines else None,
        )

    def _reconcile(self, to: str, first_sent: datetime) -> PlacedCall | None:
        try:
            calls = self.find_calls(to, first_sent - RECONCILE_MARGIN)
        except TransientCarrierError as error:
            # Dialling again blind could ring the resident twice; let the caller retry later.
            raise TransientCarrierError(f"could not check for an earlier call to {mask_phone(to)}") from error
        if not calls:
            return None
        logger.info("dial %s: found %s created by an earlier try", mask_phone(to), calls[0].sid)
        return calls[0]

    def _back_off(self, retry: int) -> None:
        delay = FIRST_BACKOFF_SECONDS * 2 ** (retry - 1)
        # Jitter keeps many workers that hit the limit together from retrying together.
        self._sleep(delay + random.uniform(0, delay / 2))


def _carrier_error(status: int, code: object, message: str) -> TransientCarrierError | PermanentCarrierError:
    if status == 429 or status >= 500:
        return TransientCarrierError(f"HTTP {status}: {code}")
    return PermanentCarrierError(code=str(code), message=message)


def _page_error(error: TwilioException) -> TransientCarrierError | PermanentCarrierError:
    # A failed list page is a bare TwilioException("Unable to fetch page", response), not a TwilioRestException.
    response = error.args[1] if len(error.args) > 1 else None
    status = getattr(response, "status_code", None)
    if status is None:
        return TransientCarrierError(str(error))
    try:
        body = json.loads(response.text)
    except ValueError:
        body = {}
    return _carrier_error(status, body.get("code", status), str(body.get("message", error)))


def _created_at(call: CallInstance) -> datetime | None:
    return call.date_created or call.start_time


def _as_utc(moment: datetime) -> datetime:
    # The SDK formats the filter with strftime(...Z) without converting, so it must already be UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
