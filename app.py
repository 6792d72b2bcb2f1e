"""Assembly: the one place where settings, database and adapters are wired together.

`flask` finds `create_app` here without --app; gunicorn runs `app:create_app()`.
Building the app reads the environment once, opens no connection and starts nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from functools import cached_property, wraps
from typing import TYPE_CHECKING

from flask import Flask, g, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from carriers.base import Carrier
from checkins.dialing import CallUrls
from core.privacy import install_log_masking
from notify.mailer import Mailer
from settings import Settings
from store.db import is_lost_connection, make_engine, make_session_factory

if TYPE_CHECKING:
    from carriers.sim import SimNetwork

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What services need from the outside world; views, jobs and commands all use this one."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    carrier_override: Carrier | None = None
    mailer_override: Mailer | None = None
    sim: SimNetwork | None = field(default=None, repr=False)  # the in-process network when CARRIER=sim

    @cached_property
    def webhook_validator(self) -> RequestValidator:
        return RequestValidator(self.settings.webhook_auth_token)

    @cached_property
    def call_urls(self) -> CallUrls:
        return CallUrls(self.settings.public_base_url)

    @cached_property
    def owner(self) -> str:
        """Names this process in leases, so a stuck claim can be traced to its holder."""
        return f"{socket.gethostname()}:{os.getpid()}"

    @cached_property
    def carrier(self) -> Carrier:
        if self.carrier_override is not None:
            return self.carrier_override
        from carriers.twilio import TwilioCarrier

        settings = self.settings
        if settings.carrier == "twilio":
            return TwilioCarrier(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                settings.twilio_from_number,
                api_base_url=settings.twilio_api_base_url,
            )
        # The simulated network runs inside this process and is reached over HTTP by the same
        # Twilio adapter production uses.
        from carriers.sim import SIM_ACCOUNT_SID, SIM_FROM_NUMBER, SimNetwork

        self.sim = SimNetwork(auth_token=settings.webhook_auth_token)
        base_url = self.sim.start()
        return TwilioCarrier(SIM_ACCOUNT_SID, settings.webhook_auth_token, SIM_FROM_NUMBER, api_base_url=base_url)

    @cached_property
    def mailer(self) -> Mailer:
        if self.mailer_override is not None:
            return self.mailer_override
        if self.settings.mail_backend == "sendgrid":
            from notify.sendgrid import SendGridMailer

            return SendGridMailer(self.settings.sendgrid_api_key, host=self.settings.sendgrid_api_host)
        from notify.outbox import OutboxMailer

        return OutboxMailer(self.settings.mail_outbox_dir)

    def wait_for_calls(self, timeout: float = 120.0) -> None:
        """With the simulated network, let calls in flight finish before the process exits."""
        if self.sim is not None:
            self.sim.wait_idle(timeout)

    def close(self) -> None:
        carrier = self.__dict__.get("carrier")  # only if this process built one
        if carrier is not None and carrier is not self.carrier_override and hasattr(carrier, "close"):
            carrier.close()
        if self.sim is not None:
            self.sim.stop()
        self.engine.dispose()


def create_app(settings: Settings | None = None, *, carrier: Carrier | None = None,
               mailer: Mailer | None = None) -> Flask:
    settings = (settings or Settings.from_env()).with_secret_key()
    _configure_logging()
    engine = make_engine(settings.database_url)
    runtime = Runtime(settings, engine, make_session_factory(engine), carrier, mailer)

    app = Flask(__name__, instance_path=os.path.abspath("instance"))
    # No SECRET_KEY in Flask's config: nothing uses its cookie session (webhooks are signed by the
    # carrier), and without one Flask skips opening a session on every request.
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    app.extensions["mimamori"] = runtime

    @app.before_request
    def open_session() -> None:
        g.db = runtime.session_factory()

    @app.teardown_request
    def close_session(_error) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    from ivr.views import bp as ivr_bp

    app.register_blueprint(ivr_bp)
    for endpoint, view in app.view_functions.items():
        app.view_functions[endpoint] = _once_more_on_lost_connection(view, runtime)
    _register_commands(app)
    return app


def _once_more_on_lost_connection(view, runtime: Runtime):
    """Run a view again, on a new session, when its database connection died under it.

    The pool is not pinged before each use; after a database restart the first statement on
    each old connection fails instead, and the pool drops them all. Views are idempotent
    (webhooks may be replayed by the carrier anyway), so running one again is safe.
    """

    @wraps(view)
    def run(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Exception as error:
            if not is_lost_connection(error):
                raise
            log.warning("database connection lost during %s; running it once more", request.endpoint)
            g.db.close()
            g.db = runtime.session_factory()
            return view(*args, **kwargs)

    return run


def _register_commands(app: Flask) -> None:
    from checkins.cli import checkins_cli, demo_cli
    from residents.cli import residents_cli
    from scheduler.cli import scheduler_cli
    from store.cli import db_cli

    for group in (db_cli, residents_cli, scheduler_cli, checkins_cli, demo_cli):
        app.cli.add_command(group)


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    install_log_masking()
