"""The yardstick for bench/checkins.py: the three webhook routes with nothing behind them.

Same Flask, same gunicorn settings, same requests; no signature check, no database, no
rendering. Its check-ins per second are the ceiling of this harness on this machine.
"""

from __future__ import annotations

from flask import Flask, Response

# About the size of Mimamori's opening question, so both apps send similar bytes.
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather action="http://127.0.0.1/ivr/calls/1/gather?q=0&amp;r=0&amp;t=0" actionOnEmptyResult="true" '
    'hints="1,2,3" input="dtmf speech" language="ja-JP" method="POST" numDigits="1" speechTimeout="2" '
    'timeout="6"><Say language="ja-JP" voice="Polly.Mizuki"><prosody rate="85%">おはようございます。'
    '</prosody></Say><Pause length="1" /><Say language="ja-JP" voice="Polly.Mizuki">'
    '<prosody rate="85%">今日の体調はいかがですか。</prosody></Say></Gather></Response>'
)


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/ivr/calls/<int:attempt_id>/answer")
    @app.post("/ivr/calls/<int:attempt_id>/gather")
    def gather(attempt_id: int):
        return Response(TWIML, mimetype="text/xml")

    @app.post("/ivr/calls/<int:attempt_id>/status")
    def status(attempt_id: int):
        return Response(status=204)

    return app
