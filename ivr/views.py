"""Twilio webhooks. Thin: check the signature, parse, call the service, render."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, g, request

from checkins import calls
from core.conversation import Heard, Position
from ivr.signature import twilio_signed
from ivr.twiml import render

bp = Blueprint("ivr", __name__, url_prefix="/ivr")


def utcnow() -> datetime:
    return datetime.now(UTC)


@bp.post("/calls/<int:attempt_id>/answer")
@twilio_signed
def answer(attempt_id: int):
    reply = calls.answer_call(g.db, attempt_id, _event(), utcnow())
    return _twiml(reply)


@bp.post("/calls/<int:attempt_id>/gather")
@twilio_signed
def gather(attempt_id: int):
    reply = calls.hear(g.db, attempt_id, _position(), _heard(), _event(), utcnow())
    return _twiml(reply)


@bp.post("/calls/<int:attempt_id>/status")
@twilio_signed
def status(attempt_id: int):
    calls.record_status(g.db, attempt_id, _event(), utcnow(), current_app.extensions["mimamori"].settings)
    return Response(status=204)


@bp.errorhandler(calls.UnknownAttempt)
def unknown_attempt(error):
    return Response("unknown call attempt\n", status=404, mimetype="text/plain")


@bp.errorhandler(calls.WrongCall)
def wrong_call(error):
    return Response("CallSid does not belong to this attempt\n", status=409, mimetype="text/plain")


@bp.errorhandler(calls.BadPosition)
def bad_position(error):
    return Response("unknown conversation step\n", status=400, mimetype="text/plain")


def _event() -> calls.CallEvent:
    form = request.form
    sid = form.get("CallSid", "")
    if not sid:
        abort(400, description="CallSid is required")
    return calls.CallEvent(call_sid=sid, status=form.get("CallStatus", ""), answered_by=form.get("AnsweredBy") or None)


def _position() -> Position:
    try:
        return Position(int(request.args["q"]), int(request.args["r"]), int(request.args["t"]))
    except (KeyError, ValueError):
        raise calls.BadPosition("q, r and t must be integers") from None


def _heard() -> Heard:
    form = request.form
    try:
        confidence = float(form["Confidence"]) if form.get("Confidence") else None
    except ValueError:
        confidence = None
    return Heard(digits=form.get("Digits", "").strip(), speech=form.get("SpeechResult", ""), confidence=confidence)


def _twiml(reply: calls.Reply) -> Response:
    urls = current_app.extensions["mimamori"].call_urls
    return Response(render(reply, urls), mimetype="text/xml")
