"""One pass of all due work. `flask scheduler tick` runs it once; `flask scheduler run` on a timer.

Each step claims its own rows, so any number of processes may run passes at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from checkins.calls import sweep_silent_calls
from checkins.dialing import Dialler, DialReport, close_expired
from checkins.planning import plan_checkins
from notify.delivery import DeliveryReport, deliver_due_emails


@dataclass
class CallsPass:
    planned: int
    reconciled: int
    swept: int
    closed: int
    dials: DialReport

    def __str__(self) -> str:
        d = self.dials
        return (f"planned={self.planned} dialled={d.dialled} not_placed={d.not_placed} invalid={d.invalid} "
                f"closed={self.closed + d.closed} reconciled={self.reconciled} swept={self.swept}")

    @property
    def eventful(self) -> bool:
        d = self.dials
        return any((self.planned, self.reconciled, self.swept, self.closed, d.dialled, d.not_placed, d.invalid, d.closed))


def run_calls(runtime, now: datetime) -> CallsPass:
    """Settle what a crash or a lost callback left open, close days whose hours are over, plan, dial."""
    dialler = Dialler(runtime.session_factory, runtime.carrier, runtime.settings, runtime.owner)
    reconciled = dialler.reconcile_stale_dials(now)
    swept = sweep_silent_calls(runtime.session_factory, runtime.carrier, runtime.settings, now)
    closed = close_expired(runtime.session_factory, now)
    with runtime.session_factory() as session:
        planned = plan_checkins(session, runtime.settings, now)
    return CallsPass(planned, reconciled, swept, closed, dialler.place_due_calls(now))


def run_mail(runtime, now: datetime) -> DeliveryReport:
    return deliver_due_emails(runtime.session_factory, runtime.mailer, now=now, owner=runtime.owner,
                              from_email=runtime.settings.mail_from)


def tick(runtime, now: datetime) -> str:
    """Everything due as of `now`; returns a one-line summary."""
    calls = run_calls(runtime, now)
    runtime.wait_for_calls()  # with the simulated network, calls play out now and their emails go in this pass
    mail = run_mail(runtime, now)
    return f"{calls} emails_sent={mail.sent} emails_retried={mail.retried} emails_failed={mail.failed}"
