"""Render a conversation step as TwiML. Nothing here decides what to say; core.conversation does."""

from __future__ import annotations

from twilio.twiml.voice_response import Gather, VoiceResponse

from checkins.calls import Reply
from checkins.dialing import CallUrls
from core.conversation import Ask, Script

GATHER_SECONDS = 6  # time to reach for the keypad after the prompt ends
SPEECH_SECONDS = 2  # silence that ends a spoken answer


def render(reply: Reply, urls: CallUrls) -> str:
    response = VoiceResponse()
    script = reply.script
    step = reply.step
    if isinstance(step, Ask):
        position = step.position
        gather = response.gather(
            input="dtmf speech",
            language=script.speech_language,
            action=urls.gather(reply.attempt_id, position.question, position.reasks, position.turn),
            method="POST",
            num_digits=1,
            timeout=GATHER_SECONDS,
            speech_timeout=SPEECH_SECONDS,
            action_on_empty_result=True,
            hints=",".join(step.hints),
        )
        _say_lines(gather, script, step.lines)
    else:
        _say_lines(response, script, step.lines)
        response.hangup()
    return str(response)


def _say_lines(verb: VoiceResponse | Gather, script: Script, lines: tuple[str, ...]) -> None:
    for index, line in enumerate(lines):
        if index:
            verb.pause(length=1)  # a breath between sentences, and before the choices
        say = verb.say(voice=script.voice, language=script.speech_language)
        say.prosody(line, rate=script.speaking_rate)
