"""Importing resident records into the database and exporting them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import selectinload

from residents import service
from residents.records import ContactRecord, ResidentRecord, parse_csv, to_csv
from residents.service import ImportSummary, export_records, import_residents
from store.models import Contact, Resident

NOW = datetime(2025, 4, 1, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


def hanako(**changes) -> ResidentRecord:
    fields = dict(
        external_id="R1",
        name="山田 花子",
        phone="+81312345678",
        call_time=time(9, 0),
        municipality="鎌倉市",
        contacts=(ContactRecord(1, "太郎", "taro@example.jp"), ContactRecord(2, "", "jiro@example.jp")),
    )
    return ResidentRecord(**{**fields, **changes})


def run_import(session_factory, settings, records, *, now=NOW) -> ImportSummary:
    with session_factory.begin() as session:
        return import_residents(session, records, now=now, default_timezone=settings.default_timezone)


def load(session_factory, external_id: str) -> Resident:
    with session_factory() as session:
        query = select(Resident).where(Resident.external_id == external_id).options(selectinload(Resident.contacts))
        return session.scalars(query).one()


def contact_rows(session_factory) -> list[tuple[int, int, str, str]]:
    with session_factory() as session:
        rows = session.execute(select(Contact.id, Contact.position, Contact.name, Contact.email).order_by(Contact.id))
        return [tuple(row) for row in rows]


def test_new_residents_are_created(session_factory, settings):
    records = [hanako(), ResidentRecord("R2", "Ken", "+819012345678", time(19, 30), language="en", channel="speaker")]
    assert run_import(session_factory, settings, records) == ImportSummary(created=2, updated=0, unchanged=0)

    resident = load(session_factory, "R1")
    assert (resident.name, resident.phone, resident.call_time, resident.municipality) == (
        "山田 花子",
        "+81312345678",
        time(9, 0),
        "鎌倉市",
    )
    assert (resident.timezone, resident.phone_status, resident.active) == ("Asia/Tokyo", "ok", True)
    assert resident.created_at == resident.updated_at == NOW
    assert [(c.position, c.name, c.email) for c in resident.contacts] == [
        (1, "太郎", "taro@example.jp"),
        (2, "", "jiro@example.jp"),
    ]
    ken = load(session_factory, "R2")
    assert (ken.language, ken.channel, ken.municipality, ken.contacts) == ("en", "speaker", None, [])


def test_the_same_records_again_change_nothing(session_factory, settings):
    records = [hanako(), ResidentRecord("R2", "Ken", "+819012345678", time(10, 0))]
    run_import(session_factory, settings, records)
    contacts_before = contact_rows(session_factory)

    assert run_import(session_factory, settings, records, now=LATER) == ImportSummary(created=0, updated=0, unchanged=2)
    assert load(session_factory, "R1").updated_at == NOW
    assert contact_rows(session_factory) == contacts_before
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Resident)) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"name": "山田 花"},
        {"call_time": time(9, 30)},
        {"language": "en"},
        {"channel": "speaker"},
        {"municipality": None},
        {"contacts": (ContactRecord(1, "太郎", "taro@example.jp"),)},
        {"contacts": (ContactRecord(1, "Taro", "taro@example.jp"), ContactRecord(2, "", "jiro@example.jp"))},
    ],
)
def test_a_changed_field_updates_the_resident(session_factory, settings, change):
    run_import(session_factory, settings, [hanako()])
    assert run_import(session_factory, settings, [hanako(**change)], now=LATER) == ImportSummary(0, 1, 0)

    resident = load(session_factory, "R1")
    assert (resident.created_at, resident.updated_at) == (NOW, LATER)
    assert export_record(session_factory) == hanako(**change)


def export_record(session_factory) -> ResidentRecord:
    with session_factory() as session:
        [record] = export_records(session)
        return record


def test_contacts_are_replaced_reusing_rows_by_position(session_factory, settings):
    three = (
        ContactRecord(1, "太郎", "taro@example.jp"),
        ContactRecord(2, "次郎", "jiro@example.jp"),
        ContactRecord(3, "三郎", "saburo@example.jp"),
    )
    run_import(session_factory, settings, [hanako(contacts=three)])
    with session_factory.begin() as session:
        session.execute(Contact.__table__.update().values(language="en"))
    (first_id, *_), _, (third_id, *_) = contact_rows(session_factory)

    replaced = (
        ContactRecord(1, "太郎", "taro.yamada@example.jp"),
        ContactRecord(3, "三郎", "saburo@example.jp"),
        ContactRecord(4, "四郎", "shiro@example.jp"),
    )
    assert run_import(session_factory, settings, [hanako(contacts=replaced)], now=LATER) == ImportSummary(0, 1, 0)

    rows = contact_rows(session_factory)
    assert [row[1:] for row in rows] == [(c.position, c.name, c.email) for c in replaced]
    assert [row[0] for row in rows[:2]] == [first_id, third_id]
    contacts = load(session_factory, "R1").contacts
    # A new address is a new person: the old recipient's language no longer applies.
    assert [(c.position, c.language) for c in contacts] == [(1, None), (3, "en"), (4, None)]


def test_all_contacts_removed(session_factory, settings):
    run_import(session_factory, settings, [hanako()])
    assert run_import(session_factory, settings, [hanako(contacts=())], now=LATER) == ImportSummary(0, 1, 0)
    assert contact_rows(session_factory) == []


def test_a_new_phone_number_resets_phone_status(session_factory, settings):
    run_import(session_factory, settings, [hanako()])
    with session_factory.begin() as session:
        session.execute(Resident.__table__.update().values(phone_status="invalid"))

    # The same number is still the one that failed.
    assert run_import(session_factory, settings, [hanako()], now=LATER) == ImportSummary(0, 0, 1)
    assert load(session_factory, "R1").phone_status == "invalid"

    assert run_import(session_factory, settings, [hanako(phone="+819012345678")], now=LATER) == ImportSummary(0, 1, 0)
    resident = load(session_factory, "R1")
    assert (resident.phone, resident.phone_status, resident.updated_at) == ("+819012345678", "ok", LATER)


def test_fields_the_file_does_not_carry_are_kept(session_factory, settings):
    run_import(session_factory, settings, [hanako()])
    with session_factory.begin() as session:
        session.execute(Resident.__table__.update().values(timezone="Asia/Seoul", active=False))

    run_import(session_factory, settings, [hanako(name="山田 花")], now=LATER)
    resident = load(session_factory, "R1")
    assert (resident.name, resident.timezone, resident.active) == ("山田 花", "Asia/Seoul", False)


def test_existing_residents_are_loaded_in_bulk(session_factory, settings, engine, monkeypatch):
    records = [hanako(external_id=f"R{n:02d}") for n in range(30)]
    run_import(session_factory, settings, records)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    assert run_import(session_factory, settings, records, now=LATER) == ImportSummary(0, 0, 30)
    selects = [statement for statement in statements if statement.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2  # residents, then their contacts

    monkeypatch.setattr(service, "LOOKUP_CHUNK", 7)
    assert run_import(session_factory, settings, records, now=LATER) == ImportSummary(0, 0, 30)


def test_export_is_ordered_by_external_id_and_reimports_unchanged(session_factory, settings):
    records = [
        hanako(external_id="b-2"),
        ResidentRecord("B-1", "Ken", "+819012345678", time(19, 30), language="en", channel="speaker"),
        hanako(external_id="a-3", contacts=(ContactRecord(4, "四郎", "shiro@example.jp"),)),
    ]
    run_import(session_factory, settings, records)

    with session_factory() as session:
        exported = export_records(session)
    assert [record.external_id for record in exported] == ["B-1", "a-3", "b-2"]
    assert exported == sorted(records, key=lambda record: record.external_id)

    parsed = parse_csv(to_csv(exported), calling_hours=settings.calling_hours)
    assert parsed.errors == []
    assert run_import(session_factory, settings, parsed.records, now=LATER) == ImportSummary(0, 0, 3)
