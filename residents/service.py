"""Residents in the database from CSV records, and back. The caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from residents.records import ContactRecord, ResidentRecord
from store.models import Contact, Resident

# Bound parameters per IN (...) query; SQLite allows 32766 at most.
LOOKUP_CHUNK = 1000


@dataclass(frozen=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def import_residents(
    session: Session, records: list[ResidentRecord], *, now: datetime, default_timezone: str
) -> ImportSummary:
    """Create or update one resident per record, matched by external_id; the caller commits.

    Idempotent: a record that matches its resident changes nothing, not even `updated_at`.
    Fields the file does not carry (timezone, active, holds) are left as they are.
    """
    existing = _load(session, [record.external_id for record in records])
    created = updated = 0
    for record in records:
        resident = existing.get(record.external_id)
        if resident is None:
            session.add(_new_resident(record, now=now, default_timezone=default_timezone))
            created += 1
        elif _apply(resident, record):
            resident.updated_at = now
            updated += 1
    return ImportSummary(created=created, updated=updated, unchanged=len(records) - created - updated)


def export_records(session: Session) -> list[ResidentRecord]:
    """Every resident as a record, ordered by external_id."""
    residents = session.scalars(select(Resident).options(selectinload(Resident.contacts))).all()
    # Sorted here rather than in SQL: PostgreSQL's collation orders text differently from SQLite's.
    return sorted((_record(resident) for resident in residents), key=lambda record: record.external_id)


def _load(session: Session, external_ids: list[str]) -> dict[str, Resident]:
    found: dict[str, Resident] = {}
    for start in range(0, len(external_ids), LOOKUP_CHUNK):
        chunk = external_ids[start : start + LOOKUP_CHUNK]
        query = select(Resident).where(Resident.external_id.in_(chunk)).options(selectinload(Resident.contacts))
        found.update((resident.external_id, resident) for resident in session.scalars(query))
    return found


def _record(resident: Resident) -> ResidentRecord:
    return ResidentRecord(
        external_id=resident.external_id,
        name=resident.name,
        phone=resident.phone,
        call_time=resident.call_time,
        language=resident.language,
        channel=resident.channel,
        municipality=resident.municipality,
        contacts=tuple(ContactRecord(c.position, c.name, c.email) for c in resident.contacts),
    )


def _new_resident(record: ResidentRecord, *, now: datetime, default_timezone: str) -> Resident:
    return Resident(
        external_id=record.external_id,
        name=record.name,
        phone=record.phone,
        phone_status="ok",
        call_time=record.call_time,
        timezone=default_timezone,
        language=record.language,
        channel=record.channel,
        municipality=record.municipality,
        active=True,
        created_at=now,
        updated_at=now,
        contacts=[Contact(position=c.position, name=c.name, email=c.email) for c in record.contacts],
    )


def _apply(resident: Resident, record: ResidentRecord) -> bool:
    """Make `resident` match `record`; True if anything changed."""
    changed = False
    for field in ("name", "call_time", "language", "channel", "municipality"):
        if getattr(resident, field) != getattr(record, field):
            setattr(resident, field, getattr(record, field))
            changed = True
    if resident.phone != record.phone:
        resident.phone = record.phone
        # A new number has not failed yet; "invalid" belonged to the old one.
        resident.phone_status = "ok"
        changed = True
    return _apply_contacts(resident, record.contacts) or changed


def _apply_contacts(resident: Resident, wanted: Iterable[ContactRecord]) -> bool:
    """Match contacts position by position, reusing rows so (resident, position) stays unique mid-flush."""
    by_position = {contact.position: contact for contact in wanted}
    changed = False
    for contact in list(resident.contacts):
        want = by_position.pop(contact.position, None)
        if want is None:
            resident.contacts.remove(contact)  # delete-orphan removes the row
            changed = True
            continue
        if contact.email != want.email:
            contact.email = want.email
            contact.language = None  # the language preference was the previous recipient's
            changed = True
        if contact.name != want.name:
            contact.name = want.name
            changed = True
    for want in by_position.values():
        resident.contacts.append(Contact(position=want.position, name=want.name, email=want.email))
        changed = True
    # The order the relationship loads in, for whoever reads it before the next load.
    resident.contacts.sort(key=lambda contact: contact.position)
    return changed
