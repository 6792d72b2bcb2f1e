"""The resident CSV file: parsing, validation and writing it back (no database)."""

from __future__ import annotations

from datetime import time

import pytest

from core.schedule import CallingHours
from residents.records import (
    COLUMNS,
    ContactRecord,
    ParsedFile,
    ResidentRecord,
    RowError,
    parse_csv,
    parse_csv_bytes,
    to_csv,
)

HOURS = CallingHours(time(8, 0), time(20, 0))
HEADER = "external_id,name,phone,call_time"


def parse(text: str) -> ParsedFile:
    return parse_csv(text, calling_hours=HOURS)


def parse_row(**values: str) -> ParsedFile:
    """One data row (line 2) with valid required values unless overridden."""
    row = {"external_id": "R1", "name": "山田 花子", "phone": "03-1234-5678", "call_time": "09:00", **values}
    columns = [column for column in COLUMNS if column in row]
    return parse(",".join(columns) + "\n" + ",".join(_cell(row[column]) for column in columns) + "\n")


def _cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


def reasons(parsed: ParsedFile) -> list[str]:
    return [error.reason for error in parsed.errors]


def only_record(parsed: ParsedFile) -> ResidentRecord:
    assert parsed.errors == []
    [record] = parsed.records
    return record


def test_minimal_row_gets_the_defaults():
    record = only_record(parse(f"{HEADER}\nR1,山田 花子,03-1234-5678,09:00\n"))
    assert record == ResidentRecord(
        external_id="R1",
        name="山田 花子",
        phone="+81312345678",
        call_time=time(9, 0),
        language="ja",
        channel="phone",
        municipality=None,
        contacts=(),
    )


def test_every_column():
    text = (
        ",".join(COLUMNS)
        + "\nR1,Hanako Yamada,090-1234-5678,19:59,en,speaker,Kamakura,"
        + "Taro,taro@example.jp,Jiro,jiro@example.jp,Saburo,saburo@example.jp,Shiro,shiro@example.jp\n"
    )
    record = only_record(parse(text))
    assert (record.language, record.channel, record.municipality) == ("en", "speaker", "Kamakura")
    assert record.call_time == time(19, 59)
    assert record.contacts == (
        ContactRecord(1, "Taro", "taro@example.jp"),
        ContactRecord(2, "Jiro", "jiro@example.jp"),
        ContactRecord(3, "Saburo", "saburo@example.jp"),
        ContactRecord(4, "Shiro", "shiro@example.jp"),
    )


def test_bom_crlf_and_surrounding_whitespace():
    text = "\ufeffexternal_id , name,phone,call_time,language\r\n  R1 ,\u3000山田 花子 , 03-1234-5678 , 09:00 , EN \r\n"
    record = only_record(parse(text))
    assert (record.external_id, record.name, record.phone, record.language) == ("R1", "山田 花子", "+81312345678", "en")


def test_header_only_file_has_nothing_to_import():
    assert parse(HEADER + "\n") == ParsedFile([], [])


@pytest.mark.parametrize(
    "phone",
    [
        "０３－１２３４－５６７８",
        "０３ー１２３４ー５６７８",
        "03-1234-5678",
        "03‐1234‐5678",
        "03 1234 5678",
        "(03) 1234-5678",
        "0312345678",
        "+81 3 1234 5678",
        "+81-3-1234-5678",
        "+81 (0)3 1234 5678",
    ],
)
def test_japanese_number_forms_give_one_e164(phone):
    assert only_record(parse_row(phone=phone)).phone == "+81312345678"


@pytest.mark.parametrize(
    ("phone", "e164"),
    [("090 1234 5678", "+819012345678"), ("0120-123-456", "+81120123456"), ("+1 650 253 0000", "+16502530000")],
)
def test_mobile_free_dial_and_foreign_numbers(phone, e164):
    assert only_record(parse_row(phone=phone)).phone == e164


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("", "phone is required"),
        ("03-12", "phone '03-12' is not a valid phone number"),
        ("12345", "phone '12345' is not a valid phone number"),
        ("+81", "phone '+81' is not a valid phone number"),
        ("0312345678a", "phone '0312345678a' may only hold digits, hyphens, spaces, parentheses and a leading +"),
        ("03-1234-5678 ext 2", "phone '03-1234-5678 ext 2' may only hold digits, hyphens, spaces, parentheses and a leading +"),
        ("📞03-1234-5678", "phone '📞03-1234-5678' may only hold digits, hyphens, spaces, parentheses and a leading +"),
        ("03+1234-5678", "phone '03+1234-5678' may only hold digits, hyphens, spaces, parentheses and a leading +"),
        ("0" * 31, f"phone '{'0' * 29}…' is too long"),
    ],
)
def test_bad_phone_numbers(phone, reason):
    parsed = parse_row(phone=phone)
    assert parsed.records == []
    assert parsed.errors == [RowError(2, reason)]


def test_a_long_bad_value_is_quoted_short():
    [reason] = reasons(parse_row(phone="x" * 200))
    assert reason == f"phone '{'x' * 29}…' is too long"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("09:00", time(9, 0)), ("9:05", time(9, 5)), ("０９：３０", time(9, 30)), ("08:00", time(8, 0)), ("19:59", time(19, 59))],
)
def test_call_time(raw, expected):
    assert only_record(parse_row(call_time=raw)).call_time == expected


@pytest.mark.parametrize("raw", ["07:59", "20:00", "21:30", "0:00"])
def test_call_time_outside_calling_hours(raw):
    [reason] = reasons(parse_row(call_time=raw))
    assert reason.endswith("is outside calling hours 08:00-20:00")


def test_call_time_outside_hours_message():
    assert reasons(parse_row(call_time="21:30")) == ["call_time 21:30 is outside calling hours 08:00-20:00"]


@pytest.mark.parametrize("raw", ["9時", "25:00", "9:5", "0900", "09:60", "9:00 am", "090:00"])
def test_call_time_not_hhmm(raw):
    assert reasons(parse_row(call_time=raw)) == [f"call_time {raw!r} is not a time in HH:MM form"]


def test_calling_hours_come_from_the_argument():
    late = CallingHours(time(10, 0), None)
    parsed = parse_csv(f"{HEADER}\nR1,A,03-1234-5678,09:00\nR2,B,03-1234-5678,23:30\n", calling_hours=late)
    assert parsed.errors == [RowError(2, "call_time 09:00 is outside calling hours 10:00-24:00")]
    assert [record.call_time for record in parsed.records] == [time(23, 30)]


def test_language_and_channel_values():
    assert reasons(parse_row(language="fr", channel="fax")) == [
        "language 'fr' must be one of: ja, en",
        "channel 'fax' must be one of: phone, speaker",
    ]


def test_empty_language_and_channel_mean_the_defaults():
    record = only_record(parse_row(language="", channel=""))
    assert (record.language, record.channel) == ("ja", "phone")


def test_required_values():
    assert reasons(parse_row(external_id="", name="", phone="", call_time="", language="en")) == [
        "external_id is required",
        "name is required",
        "phone is required",
        "call_time is required",
    ]


def test_lengths():
    assert only_record(parse_row(external_id="x" * 64, name="名" * 200)).name == "名" * 200
    assert reasons(parse_row(external_id="x" * 65, name="名" * 201, municipality="m" * 101)) == [
        "external_id is longer than 64 characters",
        "name is longer than 200 characters",
        "municipality is longer than 100 characters",
    ]


def test_emoji_in_a_name_is_kept():
    assert only_record(parse_row(name="花子🌸")).name == "花子🌸"


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        ("taro@example.jp", "taro@example.jp"),
        ("Taro.Yamada+mimamori@mail.example.co.jp", "Taro.Yamada+mimamori@mail.example.co.jp"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp"),
        ("o'brien@example.ie", "o'brien@example.ie"),
    ],
)
def test_good_emails(raw, email):
    assert only_record(parse_row(contact1_name="Taro", contact1_email=raw)).contacts == (ContactRecord(1, "Taro", email),)


@pytest.mark.parametrize(
    "email",
    [
        "taro",
        "taro@",
        "@example.jp",
        "taro@example",
        "ta ro@example.jp",
        "taro@exa mple.jp",
        "a@b@example.jp",
        "taro@@example.jp",
        "taro..yamada@example.jp",
        ".taro@example.jp",
        "taro@-example.jp",
        "taro@example..jp",
        "taro@example.jp.",
        "山田@example.jp",
        "taro@例え.jp",
        "<taro@example.jp>",
        "Taro <taro@example.jp>",
        "taro@example.jp,jiro@example.jp",
        "✉️@example.jp",
        "x" * 65 + "@example.jp",
    ],
)
def test_bad_emails(email):
    [reason] = reasons(parse_row(contact1_email=email))
    assert reason.startswith("contact1_email ")
    assert reason.endswith(" is not a valid email address")


def test_email_longer_than_254_characters():
    email = "taro@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".jp"
    assert reasons(parse_row(contact1_email=email)) == ["contact1_email is longer than 254 characters"]


def test_contact_name_needs_an_email():
    assert reasons(parse_row(contact2_name="Jiro", contact2_email="")) == ["contact2_name is set but contact2_email is empty"]


def test_contact_email_without_a_name_and_positions_are_kept():
    record = only_record(parse_row(contact1_email="", contact3_email="saburo@example.jp"))
    assert record.contacts == (ContactRecord(3, "", "saburo@example.jp"),)


def test_contact_name_length():
    assert reasons(parse_row(contact1_name="n" * 201, contact1_email="a@example.jp")) == [
        "contact1_name is longer than 200 characters"
    ]


def test_duplicate_contact_email_ignores_case():
    parsed = parse_row(contact1_email="taro@example.jp", contact4_email="TARO@example.jp")
    assert reasons(parsed) == ["contact4_email 'TARO@example.jp' repeats contact1_email"]


def test_a_fifth_report_recipient_column():
    parsed = parse(f"{HEADER},contact5_name,contact5_email\nR1,A,03-1234-5678,09:00,X,x@example.jp\n")
    assert parsed == ParsedFile(
        [],
        [
            RowError(1, "column 'contact5_name': a resident has at most 4 report recipients"),
            RowError(1, "column 'contact5_email': a resident has at most 4 report recipients"),
        ],
    )


def test_unknown_missing_duplicate_and_unnamed_columns():
    parsed = parse("external_id,name,call_time,birthday,name,,contact0_email\nR1,A,09:00,1940-01-01,A,,\n")
    assert parsed.records == []
    assert parsed.errors == [
        RowError(1, "unknown column 'birthday'"),
        RowError(1, "column 'name' appears more than once"),
        RowError(1, "column 6 has no name"),
        RowError(1, "unknown column 'contact0_email'"),
        RowError(1, "missing required column 'phone'"),
    ]


def test_empty_file():
    assert parse("") == ParsedFile([], [RowError(1, "the file is empty")])


def test_duplicate_external_id_names_both_lines():
    parsed = parse(f"{HEADER}\nR1,A,03-1234-5678,09:00\nR2,B,03-1234-5678,09:00\nR1,C,03-1234-5678,09:00\n")
    assert parsed.errors == [RowError(4, "external_id 'R1' is also on line 2")]


def test_duplicate_external_id_is_reported_on_an_otherwise_bad_row():
    parsed = parse(f"{HEADER}\nR1,A,03-1234-5678,09:00\nR1,B,03-12,09:00\n")
    assert parsed.errors == [
        RowError(3, "phone '03-12' is not a valid phone number"),
        RowError(3, "external_id 'R1' is also on line 2"),
    ]


def test_every_bad_row_is_reported_with_its_line():
    text = (
        f"{HEADER},contact1_name,contact1_email\n"
        "R1,A,03-1234-5678,09:00,,\n"  # line 2: good
        "R2,B,03-12,09:00,,\n"  # line 3
        "\n"  # line 4: blank lines are skipped but counted
        "R3,C,03-1234-5678,21:30,Taro,\n"  # line 5: two problems
        '"R4","D\nwith a line break",03-1234-5678,09:00,,\n'  # lines 6-7: good
        "R5,E,03-1234-5678\n"  # line 8: too few values
        ",,,,,\n"  # line 9: an empty row, as spreadsheets write them
        "R6,F,090-1234-5678,10:00,,nope\n"  # line 10
    )
    parsed = parse(text)
    assert parsed.errors == [
        RowError(3, "phone '03-12' is not a valid phone number"),
        RowError(5, "call_time 21:30 is outside calling hours 08:00-20:00"),
        RowError(5, "contact1_name is set but contact1_email is empty"),
        RowError(8, "has 3 values but the header has 6 columns"),
        RowError(10, "contact1_email 'nope' is not a valid email address"),
    ]
    assert [record.external_id for record in parsed.records] == ["R1", "R4"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ('R2,"unclosed,03-1234-5678,09:00', "unexpected end of data"),
        ('R2,"B"x,03-1234-5678,09:00', "',' expected after '\"'"),
        ("R2," + "x" * 200_000 + ",03-1234-5678,09:00", "field larger than field limit (131072)"),
    ],
)
def test_malformed_csv_stops_at_the_row_it_is_in(row, reason):
    parsed = parse(f"{HEADER}\nR1,A,03-1234-5678,09:00\n{row}\nR3,C,03-1234-5678,09:00\n")
    assert parsed.errors == [RowError(3, f"the file is not valid CSV: {reason}")]


def test_bytes_with_a_bom():
    data = f"\ufeff{HEADER}\nR1,山田,03-1234-5678,09:00\n".encode()
    assert only_record(parse_csv_bytes(data, calling_hours=HOURS)).name == "山田"


def test_shift_jis_bytes_are_rejected_with_the_line():
    data = f"{HEADER}\nR1,A,03-1234-5678,09:00\nR2,山田,03-1234-5678,09:00\n".encode("shift_jis")
    assert parse_csv_bytes(data, calling_hours=HOURS) == ParsedFile(
        [], [RowError(3, "the file is not UTF-8 text (save it as 'CSV UTF-8')")]
    )


def test_to_csv_writes_every_column_in_order_and_reads_back_the_same():
    records = [
        ResidentRecord("R1", 'Hanako "Hana", Yamada', "+81312345678", time(9, 5)),
        ResidentRecord(
            "R2",
            "山田\n太郎",
            "+819012345678",
            time(19, 30),
            language="en",
            channel="speaker",
            municipality="鎌倉市",
            contacts=(ContactRecord(2, "", "a@example.jp"), ContactRecord(4, "四郎", "b@example.jp")),
        ),
    ]
    text = to_csv(records)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert parse(text) == ParsedFile(records, [])


def test_to_csv_of_nothing_is_the_header():
    assert to_csv([]) == ",".join(COLUMNS) + "\r\n"
