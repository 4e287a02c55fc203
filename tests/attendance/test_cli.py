"""`batchops shift|holiday|employee|punch|attendance …` through `main([...])` on both databases:
the contract's syntax and JSON fields, files through the pipeline loaders, roles, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pdfplumber
import pytest
from openpyxl import Workbook

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_tui.cli.main import main
from tests.conftest import TEST_PASSWORD
from tests.mailserver import MailServer, mailserver

__all__ = ["mailserver"]

Users = dict[Role, UserInfo]
SHOW_FIELDS = [
    "employee",
    "date",
    "status",
    "in_time",
    "out_time",
    "work_minutes",
    "late_minutes",
    "early_exit_minutes",
    "overtime_minutes",
    "flags",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _setup(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ok(capsys, "shift", "add", "Day", "--start", "09:00", "--end", "17:00")
    ok(capsys, "shift", "add", "Night", "--start", "22:00", "--end", "06:00", "--week-off", "none")
    ok(capsys, "holiday", "add", "2026-11-04", "Founders Day", "--type", "school")
    staff = _csv(
        tmp_path / "staff.csv",
        ["Employee Code", "Name", "Shift", "Department", "Joined"],
        [
            ["E1", "Asha Rao", "Day", "Maths", ""],
            ["E2", "Ben Ito", "day", "Science", "2026-11-10"],
            ["N1", "Night Guard", "Night", "Estate", ""],
            ["X9", "Nobody", "Swing", "Maths", ""],
        ],
    )
    code, out, err = run(capsys, "employee", "import", str(staff))
    assert code == 0 and "3 added" in out and "row 5: there is no shift named 'Swing'." in err


def test_full_flow_from_files_to_register(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _setup(capsys, tmp_path)
    punches = _csv(
        tmp_path / "punches.csv",
        ["emp_code", "timestamp", "direction", "device"],
        [
            ["E1", "2026-11-02 08:58", "IN", "gate"],
            ["E1", "2026-11-02 17:02", "OUT", "gate"],
            ["E1", "2026-11-03 09:25:30", "in", "gate"],
            ["E1", "2026-11-03 17:00", "out", "gate"],
            ["N1", "2026-11-02 21:55", "BOTH", "back"],
            ["N1", "2026-11-03 06:05", "BOTH", "back"],
            ["GHOST", "2026-11-02 09:00", "IN", "gate"],
            ["E1", "yesterday", "IN", "gate"],
        ],
    )
    code, out, err = run(capsys, "punch", "import", str(punches))
    assert code == 0 and "6 punches added" in out and "(GHOST)" in out
    assert "row 9:" in err and "yesterday" in err
    wb = Workbook()
    sheet = wb.active
    sheet.append(["Code", "Date", "Time", "Direction"])
    sheet.append(["E1", "2026-11-05", "09:00", "IN"])
    sheet.append(["E1", "2026-11-02", "08:58", "IN"])  # already known from the CSV? other device
    wb.save(tmp_path / "more.xlsx")
    out = ok(capsys, "punch", "import", str(tmp_path / "more.xlsx"))
    assert "2 punches added" in out
    again = ok(capsys, "punch", "import", str(punches))
    assert "0 punches added, 6 already known" in again

    out = ok(capsys, "attendance", "process", "--from", "2026-11-01", "--to", "2026-11-30")
    assert "81 days; 81 new, 0 changed" in out
    out = ok(capsys, "attendance", "process", "--from", "2026-11-01", "--to", "2026-11-30")
    assert "0 new, 0 changed, 0 removed" in out

    out = ok(
        capsys,
        "attendance",
        "show",
        "--employee",
        "E1",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-05",
        "--json",
    )
    rows = json.loads(out)
    assert [list(r)[:10] for r in rows] == [SHOW_FIELDS] * 4
    assert [r["status"] for r in rows] == ["P", "P", "PH", "MP"]
    assert rows[0]["in_time"] == "2026-11-02T08:58" and rows[1]["late_minutes"] == 25
    text = ok(capsys, "attendance", "show", "--employee", "N1", "--to", "2026-11-02")
    assert "2026-11-02 Mon  P" in text and "21:55" in text and "06:05" in text

    out = ok(
        capsys, "attendance", "register", "--month", "2026-11", "--format", "csv", "-o", "reg.csv"
    )
    assert "3 employees" in out
    with (tmp_path / "reg.csv").open() as fh:
        reg = {r["code"]: r for r in csv.DictReader(fh)}
    assert reg["E1"]["2"] == "P" and reg["E1"]["4"] == "PH" and reg["E2"]["9"] == ""
    assert reg["E1"]["late"] == "1" and reg["E1"]["WO"] == "9" and reg["E1"]["PH"] == "1"
    assert reg["E2"]["A"] == "15"  # joined the 10th: 21 days less 6 weekend days
    ok(
        capsys,
        "attendance",
        "register",
        "--month",
        "2026-11",
        "--department",
        "Maths",
        "--format",
        "pdf",
        "-o",
        "maths.pdf",
    )
    with pdfplumber.open(tmp_path / "maths.pdf") as pdf:
        words = pdf.pages[0].extract_text()
    assert "Attendance register November 2026 - Maths" in words and "E1 Asha" in words
    assert "Ben Ito" not in words


def test_manual_punch_roles_and_approval(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _setup(capsys, tmp_path)
    cli_env.setenv("BATCHOPS_PASSWORD", TEST_PASSWORD)
    out = ok(
        capsys,
        "punch",
        "add",
        "E1",
        "--at",
        "2026-11-02 09:04",
        "--direction",
        "IN",
        "--reason",
        "device down",
        "--as",
        "user1",
        "--json",
    )
    punch_id = json.loads(out)[0]["id"]
    assert json.loads(out)[0]["approval"] == "pending"
    code, _, err = run(capsys, "punch", "approve", str(punch_id), "--as", "user1")
    assert code == 1 and "may not approve" in one_line(err)
    code, _, err = run(
        capsys, "shift", "add", "X", "--start", "08:00", "--end", "12:00", "--as", "moderator1"
    )
    assert code == 1 and "may not manage shifts" in one_line(err)
    pending = json.loads(ok(capsys, "punch", "list", "--pending", "--json"))
    assert [p["id"] for p in pending] == [punch_id] and pending[0]["at"] == "2026-11-02T09:04"
    out = ok(capsys, "punch", "approve", str(punch_id), "--as", "moderator1")
    assert "approved" in out
    code, _, err = run(capsys, "punch", "reject", str(punch_id), "--as", "moderator1")
    assert code == 1 and "already approved" in one_line(err)
    assert json.loads(ok(capsys, "punch", "list", "--pending", "--json")) == []


def test_awo_correct_and_revert_by_cli(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _setup(capsys, tmp_path)
    ok(capsys, "attendance", "process", "--from", "2026-11-01", "--to", "2026-11-30")
    run_info = json.loads(
        ok(
            capsys,
            "attendance",
            "correct-awo",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--json",
        )
    )[0]
    assert run_info["changes"] > 0 and run_info["items"][0]["before"] in ("WO", "PH")
    shown = json.loads(
        ok(
            capsys,
            "attendance",
            "show",
            "--employee",
            "E1",
            "--from",
            "2026-11-07",
            "--to",
            "2026-11-07",
            "--json",
        )
    )
    assert shown[0]["status"] == "A" and "awo" in shown[0]["flags"]
    out = ok(capsys, "attendance", "revert-awo", str(run_info["id"]))
    assert f"#{run_info['id']} reverted" in out
    shown = json.loads(
        ok(
            capsys,
            "attendance",
            "show",
            "--employee",
            "E1",
            "--from",
            "2026-11-07",
            "--to",
            "2026-11-07",
            "--json",
        )
    )
    assert shown[0]["status"] == "WO" and shown[0]["flags"] == []
    assert "reverted by" in ok(capsys, "attendance", "runs")


def test_absentees_listing_and_usage_errors(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _setup(capsys, tmp_path)
    ok(capsys, "attendance", "process", "--from", "2026-11-02", "--to", "2026-11-02")
    rows = json.loads(ok(capsys, "attendance", "absentees", "--date", "2026-11-02", "--json"))
    assert {r["employee"] for r in rows} == {"E1", "N1"}
    code, _, err = run(capsys, "attendance")
    assert code == 2 and "choose a command" in err
    code, _, err = run(capsys, "attendance", "process", "--from", "2026-13-01")
    assert code == 1 and "is not a date like" in one_line(err)
    code, _, err = run(
        capsys, "attendance", "register", "--month", "Nov", "--format", "csv", "-o", "x.csv"
    )
    assert code == 1 and "is not like 2026-11" in one_line(err)
    code, _, err = run(capsys, "punch", "import", str(tmp_path / "none.csv"))
    assert code == 1 and "is not a file" in one_line(err)
    code, _, err = run(capsys, "employee", "add", "E1", "--name", "Again", "--shift", "Day")
    assert code == 1 and "already exists" in one_line(err)
    holidays = json.loads(ok(capsys, "holiday", "list", "--json"))
    assert holidays == [
        {"id": holidays[0]["id"], "day": "2026-11-04", "name": "Founders Day", "type": "school"}
    ]


async def _contacts(db_url: str) -> None:
    from batchops_core.infra.config import RedisSettings, Settings, SmtpSettings
    from batchops_core.infra.db import open_database
    from batchops_core.models import Department

    settings = Settings(redis=RedisSettings(url=""), smtp=SmtpSettings(host=""))
    db = open_database(settings, db_url)
    try:
        async with db.unit() as uow:
            uow.add(Department(name="Maths", contact_email="maths@school.example"))
    finally:
        await db.dispose()


def test_absentees_notify_mails_each_department_contact(
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    db_url: str,
    mailserver: MailServer,
) -> None:
    import asyncio

    _setup(capsys, tmp_path)
    asyncio.run(_contacts(db_url))
    cli_env.setenv("BATCHOPS_SMTP_HOST", "127.0.0.1")
    cli_env.setenv("BATCHOPS_SMTP_PORT", str(mailserver.port))
    cli_env.setenv("BATCHOPS_SMTP_SECURITY", "none")
    ok(capsys, "attendance", "process", "--from", "2026-11-02", "--to", "2026-11-02")
    out = ok(capsys, "attendance", "absentees", "--date", "2026-11-02", "--notify")
    assert "Maths: sent to maths@school.example" in out
    assert "Estate: not sent: the department has no contact" in out
    mail = mailserver.wait_for(1)[0]
    assert mail.recipients == ["maths@school.example"] and "E1" in mail.text
    assert "Absentees 2026-11-02: Maths (1)" in mail.subject
