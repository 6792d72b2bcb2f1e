"""The long-running scheduler process: APScheduler as the clock, never as the queue."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler

from scheduler.jobs import run_calls, run_mail

log = logging.getLogger(__name__)

CALLS_EVERY_SECONDS = 5
MAIL_EVERY_SECONDS = 5  # report emails leave within seconds of the answer


def build_scheduler(runtime) -> BlockingScheduler:
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per job run every 5 s is noise
    scheduler = BlockingScheduler(timezone=UTC)
    # Fixed ids with replace_existing, coalesce and one instance: a slow pass is never run twice at once,
    # and missed runs collapse into one (the database remembers what is due, not the scheduler).
    common = dict(replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=60)
    scheduler.add_job(_calls, "interval", seconds=CALLS_EVERY_SECONDS, id="checkins.calls", args=[runtime], **common)
    scheduler.add_job(_mail, "interval", seconds=MAIL_EVERY_SECONDS, id="notify.mail", args=[runtime], **common)
    return scheduler


def _calls(runtime) -> None:
    report = run_calls(runtime, datetime.now(UTC))
    if report.eventful:
        log.info("calls: %s", report)


def _mail(runtime) -> None:
    report = run_mail(runtime, datetime.now(UTC))
    if report.sent or report.retried or report.failed:
        log.info("mail: sent=%s retried=%s failed=%s", report.sent, report.retried, report.failed)
