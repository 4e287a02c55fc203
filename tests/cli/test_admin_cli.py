"""CLI parity for scripts: department, known-error, runs, incidents, reports, upload cancel,
schedule delete, user set-department — through `main()` on both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_tui.cli.main import main
from tests.conftest import TEST_PASSWORD

Users = dict[Role, UserInfo]
GRADEBOOK = "Student ID,class,maths,english\n" + "".join(
    f"S{i:03d},9{'AB'[i % 2]},{40 + i},{60 + i % 30}\n" for i in range(1, 41)
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def ok_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    return json.loads(ok(capsys, *argv, "--json"))


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, _, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_department_commands(cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    listed = ok_json(capsys, "department", "list")
    library = next(d for d in listed if d["name"] == "Library")
    assert library["gradebook"] is False and library["key_column"] is None
    assert "T" in library["created_at"]
    made = ok_json(
        capsys,
        "department",
        "add",
        "Sports",
        "--contact-email",
        "coach@school.example",
        "--gradebook",
        "--required",
        "event,score",
        "--alias",
        "Pupil=student_id",
    )
    assert made["gradebook"] is True and made["required_columns"] == ["event", "score"]
    edited = ok_json(
        capsys, "department", "edit", "sports", "--no-gradebook", "--alias", "Kid=student_id"
    )
    assert edited["gradebook"] is False
    assert edited["aliases"] == {"pupil": "student_id", "kid": "student_id"}
    assert "deactivated" in ok(capsys, "department", "deactivate", "Sports")
    assert ok_json(capsys, "department", "show", "sports")["active"] is False
    ok(capsys, "department", "activate", "Sports")
    line = refused(capsys, "department", "edit", "Sports", "--contact-email", "nope")
    assert "not a valid email" in line
    cli_env.setenv("BATCHOPS_PASSWORD", TEST_PASSWORD)
    line = refused(capsys, "department", "edit", "Sports", "--gradebook", "--as", "moderator1")
    assert "may not create or edit departments" in line
    code, _, err = run(capsys, "department", "edit", "Sports")
    assert code == 2 and "nothing to change" in err


def test_user_set_department(cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert "now in Exams" in ok(capsys, "user", "set-department", "user1", "exams")
    assert ok_json(capsys, "department", "show", "Exams")["members"] == 1
    assert "no department" in ok(capsys, "user", "set-department", "user1", "none")
    assert "no department named" in refused(capsys, "user", "set-department", "user1", "Zoo")


def test_known_error_commands(cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    line = refused(capsys, "known-error", "add", "Bad", "--pattern", r"^(a)\1")
    assert "backreference" in line
    made = ok_json(
        capsys,
        "known-error",
        "add",
        "Amounts as text",
        "--pattern",
        "^TYPE_MISMATCH",
        "--stage",
        "validate",
        "--severity",
        "low",
    )
    assert made["stage"] == "validate" and made["active"] is True
    assert ok_json(capsys, "known-error", "disable", str(made["id"]))["active"] is False
    assert made["id"] not in [k["id"] for k in ok_json(capsys, "known-error", "list", "--active")]
    tested = ok_json(capsys, "known-error", "test", "^MISSING_COLUMN")
    assert tested["checked"] == 0 and tested["matched"] == []
    ok(capsys, "known-error", "remove", "Amounts as text")
    assert "no known error named" in refused(capsys, "known-error", "show", "Amounts as text")


def test_upload_runs_reports_and_incidents(
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
) -> None:
    good = tmp_path / "grades.csv"
    good.write_text(GRADEBOOK)
    bad = tmp_path / "broken.csv"
    bad.write_text("name,maths\nA,1\nB,2\n")
    ok(capsys, "upload", str(good), "--source", "Exams")
    run(capsys, "upload", str(bad), "--source", "Exams")

    runs = ok_json(capsys, "runs", "list")
    assert {r["status"] for r in runs} == {"succeeded", "failed"}
    assert all("T" in r["created_at"] for r in runs)
    failed = next(r for r in runs if r["status"] == "failed")
    shown = ok_json(capsys, "runs", "show", str(failed["id"]))
    assert shown["failed_stage"] == "validate" and shown["can_rerun"] is True

    incidents = ok_json(capsys, "incidents", "list", "--status", "open")
    [incident] = incidents
    iid = str(incident["id"])
    assert ok_json(capsys, "incidents", "assign", iid, "moderator1")["assignee"] == "moderator1"
    analyzed = ok_json(capsys, "incidents", "analyze", iid, "--notes", "header lacks the id")
    assert analyzed["status"] == "in_progress"
    assert "only an incident that is resolved" in refused(capsys, "incidents", "archive", iid)
    resolved = ok_json(
        capsys,
        "incidents",
        "resolve",
        iid,
        "--root-cause",
        "export without the id column",
        "--corrective-action",
        "asked Exams to export it again",
    )
    assert resolved["status"] == "resolved" and resolved["timeline"]
    assert ok_json(capsys, "incidents", "reopen", iid)["status"] == "open"

    reports = ok_json(capsys, "reports", "list")
    [report] = reports
    rid = str(report["upload_id"])
    assert ok_json(capsys, "reports", "show", rid)["row"]["filename"] == "grades.csv"
    out = tmp_path / "exports"
    out.mkdir()
    cli_env.setenv("BATCHOPS_EXPORT_DIR", str(out))
    target = ok_json(capsys, "reports", "export", rid, "--format", "pdf", "-o", "march.pdf")
    assert Path(target["path"]).read_bytes()[:5] == b"%PDF-"
    line = refused(capsys, "reports", "export", rid, "--format", "pdf", "-o", "march.pdf")
    assert "exists" in line
    again_export = ("reports", "export", rid, "--format", "pdf", "-o", "march.pdf", "--force")
    assert ok_json(capsys, *again_export)["replaced"] is True
    inside = tmp_path / "data" / "copy.csv"
    assert "only into" in refused(capsys, "reports", "export", rid, "-o", str(inside))
    assert not inside.exists()
    fixlist = ("reports", "export", rid, "--format", "fixlist", "-o", "fix.csv")
    assert "has no FIXLIST" in refused(capsys, *fixlist)

    again = ok_json(capsys, "reports", "again", rid, "--plan-config", '{"group_by": "class"}')
    assert again["status"] in ("queued", "published") and again["id"] != int(rid)


def test_upload_cancel_and_schedule_delete(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    import asyncio

    from batchops_core.infra.config import load_settings
    from batchops_core.infra.db import open_database
    from batchops_core.permissions import SYSTEM
    from batchops_core.services.uploads import intake_file

    async def queue_one() -> int:
        settings = load_settings()
        db = open_database(settings)
        try:
            path = tmp_path / "later.csv"
            path.write_text(GRADEBOOK)
            return (await intake_file(db, settings, SYSTEM, path)).id
        finally:
            await db.dispose()

    upload_id = asyncio.run(queue_one())
    [result] = ok_json(capsys, "upload", "cancel", str(upload_id))
    assert result == {"upload_id": upload_id, "run_id": None, "was": "queued", "cancelled": True}
    code, _, err = run(capsys, "upload", "cancel", str(upload_id))
    assert code == 1 and "only a queued or processing upload" in err

    assert "deleted" in ok(capsys, "schedule", "delete", "Nightly backup")
    names = [s["name"] for s in ok_json(capsys, "schedule", "list")]
    assert "Nightly backup" not in names
    assert "no schedule named" in refused(capsys, "schedule", "delete", "Nightly backup")
