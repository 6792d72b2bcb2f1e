"""`flask residents import` and `flask residents export`, through the assembled app."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from residents import cli
from residents.records import COLUMNS, parse_csv
from store.models import Resident

HEADER = "external_id,name,phone,call_time,municipality,contact1_name,contact1_email"
GOOD = HEADER + "\nR1,山田 花子,03-1234-5678,09:00,鎌倉市,太郎,taro@example.jp\nR2,佐藤 一郎,090 1234 5678,10:30,,,\n"


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["residents", *args])


def write(tmp_path: Path, text: str, name: str = "residents.csv", encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return str(path)


def resident_count(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(Resident))


def test_import_creates_then_leaves_unchanged(run, tmp_path, session_factory):
    path = write(tmp_path, GOOD, encoding="utf-8-sig")

    first = run("import", path)
    assert (first.exit_code, first.stdout) == (0, "imported 2 residents: 2 created, 0 updated, 0 unchanged\n")
    second = run("import", path)
    assert (second.exit_code, second.stdout) == (0, "imported 2 residents: 0 created, 0 updated, 2 unchanged\n")

    changed = run("import", write(tmp_path, GOOD.replace("10:30", "11:00"), name="changed.csv"))
    assert changed.stdout == "imported 2 residents: 0 created, 1 updated, 1 unchanged\n"
    assert resident_count(session_factory) == 2


def test_a_bad_file_is_rejected_whole(run, tmp_path, session_factory, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("import_residents called for a rejected file")

    monkeypatch.setattr(cli, "import_residents", must_not_run)
    text = GOOD + "R3,A,03-12,09:00,,,\nR4,B,03-1234-5678,21:30,,Jiro,\n"
    path = write(tmp_path, text)

    result = run("import", path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"rejected {path}: 3 problems\n"
        "line 4: phone '03-12' is not a valid phone number\n"
        "line 5: call_time 21:30 is outside calling hours 08:00-20:00\n"
        "line 5: contact1_name is set but contact1_email is empty\n"
    )
    assert resident_count(session_factory) == 0


def test_a_file_that_is_not_utf8(run, tmp_path, session_factory):
    path = write(tmp_path, GOOD, encoding="shift_jis")
    result = run("import", path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"rejected {path}: 1 problem\nline 2: the file is not UTF-8 text (save it as 'CSV UTF-8')\n"
    )
    assert resident_count(session_factory) == 0


def test_import_needs_an_existing_file(run, tmp_path):
    result = run("import", str(tmp_path / "missing.csv"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_export_to_stdout_reads_back(run, tmp_path, settings):
    run("import", write(tmp_path, GOOD))

    result = run("export")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == ",".join(COLUMNS)
    parsed = parse_csv(result.stdout, calling_hours=settings.calling_hours)
    assert parsed.errors == []
    assert [(r.external_id, r.phone) for r in parsed.records] == [("R1", "+81312345678"), ("R2", "+819012345678")]


def test_export_to_a_file_then_import_is_unchanged(run, tmp_path):
    run("import", write(tmp_path, GOOD))
    output = tmp_path / "export.csv"

    result = run("export", "-o", str(output))
    assert (result.exit_code, result.stdout) == (0, f"exported 2 residents to {output}\n")
    assert output.read_bytes().startswith(b"\xef\xbb\xbf" + ",".join(COLUMNS).encode())
    assert run("import", str(output)).stdout == "imported 2 residents: 0 created, 0 updated, 2 unchanged\n"
