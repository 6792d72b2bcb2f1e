"""A whole phone system for end-to-end tests: the app served over real HTTP, the
simulated carrier network calling its webhooks, the production Twilio adapter
dialling through it, and the file outbox for email."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time
from email import policy
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import select

from app import create_app
from carriers.sim import SIM_ACCOUNT_SID, SIM_FROM_NUMBER, SimNetwork
from carriers.twilio import TwilioCarrier
from residents.records import ContactRecord, ResidentRecord
from residents.service import import_residents
from scheduler import jobs
from settings import Settings
from store.models import CheckIn, Resident
from tests.servers import LiveServer


class PhoneSystem:
    def __init__(self, settings: Settings):
        self._server = LiveServer()
        self.settings = replace(settings, public_base_url=self._server.url)
        self.sim = SimNetwork(auth_token=self.settings.webhook_auth_token)
        self.backoffs: list[float] = []
        self.carrier = TwilioCarrier(SIM_ACCOUNT_SID, self.settings.webhook_auth_token, SIM_FROM_NUMBER,
                                     api_base_url=self.sim.start(), sleep=self.backoffs.append)
        self.app = create_app(self.settings, carrier=self.carrier)
        self.runtime = self.app.extensions["mimamori"]
        self.runtime.sim = self.sim
        self.outbox = Path(self.settings.mail_outbox_dir)
        self._server.app = self.app
        self._server.start()

    def close(self) -> None:
        self._server.stop()
        self.runtime.close()

    def add_resident(self, external_id: str, phone: str, *, now: datetime, call_time: time = time(9, 0),
                     contacts: int = 2, name: str = "山田 花子") -> None:
        record = ResidentRecord(
            external_id=external_id, name=name, phone=phone, call_time=call_time, language="ja",
            channel="phone", municipality=None,
            contacts=tuple(ContactRecord(n, f"家族 {n}", f"family{n}.{external_id}@example.org")
                           for n in range(1, contacts + 1)),
        )
        with self.runtime.session_factory.begin() as session:
            import_residents(session, [record], now=now, default_timezone=self.settings.default_timezone)

    def tick(self, now: datetime) -> str:
        return jobs.tick(self.runtime, now)

    def checkin(self, external_id: str) -> CheckIn:
        with self.runtime.session_factory() as session:
            return session.scalars(
                select(CheckIn).join(Resident).where(Resident.external_id == external_id, CheckIn.slot == "daily")
                .order_by(CheckIn.local_date.desc())
            ).first()

    def attempts(self, external_id: str) -> list:
        with self.runtime.session_factory() as session:
            checkin = session.scalars(
                select(CheckIn).join(Resident).where(Resident.external_id == external_id)
            ).first()
            return [(a.number, a.status, a.outcome, a.answered_by) for a in checkin.attempts]

    def calls_to(self, phone: str) -> list:
        return [call for call in self.sim.calls if call.to == phone]

    def emails(self) -> list:
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(path.read_bytes()) for path in sorted(self.outbox.glob("*.eml"))]

    def emails_to(self, address: str) -> list:
        return [message for message in self.emails() if address in str(message["To"])]
