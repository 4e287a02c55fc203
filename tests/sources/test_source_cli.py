"""`batchops source …` through `main([...])`: the contract syntax, --json shapes, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_tui.cli.main import main
from tests.conftest import TEST_PASSWORD
from tests.sources.conftest import sqlite_config

Users = dict[Role, UserInfo]


def run(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    env.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_source_lifecycle_from_the_command_line(
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    external_sqlite: Path,
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "gate.json"
    config_file.write_text(json.dumps(sqlite_config(external_sqlite)))
    code, out, err = run(
        capsys,
        cli_env,
        "source",
        "add",
        "Gate",
        "--kind",
        "database",
        "--department",
        "Attendance",
        "--config",
        f"@{config_file}",
    )
    assert code == 0, err
    assert "source Gate (database, Attendance) added" in out

    code, out, _ = run(capsys, cli_env, "source", "test", "Gate", "--json")
    tested = json.loads(out)
    assert code == 0 and tested[0]["ok"] and len(tested[0]["rows"]) == 5
    assert tested[0]["rows"][0]["data"] == {
        "employee": "E001",
        "at": "2026-11-30 07:00:01",
        "device": "gate-1",
    }
    code, out, _ = run(capsys, cli_env, "source", "list", "--json")
    assert code == 0 and json.loads(out)[0]["last_synced_id"] == 0  # test wrote nothing

    code, out, _ = run(capsys, cli_env, "source", "sync", "Gate", "--json")
    synced = json.loads(out)
    assert code == 0 and isinstance(synced, list) and synced[0]["rows"] == 250
    assert {j["date"] for j in synced[0]["jobs"]} == {"2026-11-30", "2026-12-01", "2026-12-02"}

    code, out, _ = run(capsys, cli_env, "source", "show", "Gate", "--json")
    shown = json.loads(out)[0]
    assert shown["health"] == "ok" and shown["last_synced_id"] == 250 and len(shown["jobs"]) == 3
    assert "T" in shown["last_success_at"]

    code, out, _ = run(capsys, cli_env, "source", "disable", "Gate")
    assert code == 0 and "disabled" in out
    code, _, err = run(capsys, cli_env, "source", "sync", "Gate")
    assert code == 1 and "is disabled; enable it first" in one_line(err)
    assert run(capsys, cli_env, "source", "enable", "Gate")[0] == 0

    code, out, _ = run(
        capsys,
        cli_env,
        "source",
        "edit",
        "Gate",
        "--config",
        json.dumps(sqlite_config(external_sqlite, cadence="0 7 * * 1-5")),
    )
    assert code == 0 and "updated" in out
    code, out, _ = run(capsys, cli_env, "source", "list")
    assert out.splitlines()[0].split()[:3] == ["NAME", "KIND", "DEPARTMENT"] and "Gate" in out

    code, out, _ = run(capsys, cli_env, "source", "remove", "Gate")
    assert code == 0 and "removed" in out
    code, _, err = run(capsys, cli_env, "source", "show", "Gate")
    assert code == 1 and "there is no source named 'Gate'" in one_line(err)


def test_bad_input_gets_one_sentence(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], external_sqlite: Path
) -> None:
    base = ("source", "add", "X", "--kind", "database", "--department", "Attendance")
    code, _, err = run(capsys, cli_env, *base, "--config", "{not json")
    assert code == 1 and "--config is not valid JSON" in one_line(err)
    code, _, err = run(capsys, cli_env, *base, "--config", "@/nonexistent/cfg.json")
    assert code == 1 and "cannot read the config file" in one_line(err)
    bad_url = sqlite_config(external_sqlite) | {"url": "postgresql://u:pw@h/db"}
    code, _, err = run(capsys, cli_env, *base, "--config", json.dumps(bad_url))
    assert code == 1 and "contains a password" in one_line(err) and "pw" not in err
    with pytest.raises(SystemExit) as usage:
        run(capsys, cli_env, "source", "sync", "X", "--date", "yesterday")
    assert usage.value.code == 2 and "not a date" in capsys.readouterr().err
    code, _, err = run(capsys, cli_env, "source")
    assert code == 2 and "choose a command" in err


def test_changes_need_an_admin_and_sync_needs_staff(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], external_sqlite: Path
) -> None:
    config = json.dumps(sqlite_config(external_sqlite))
    cli_env.setenv("BATCHOPS_PASSWORD", TEST_PASSWORD)
    cli_env.setenv("BATCHOPS_USER", "moderator1")
    code, _, err = run(
        capsys,
        cli_env,
        "source",
        "add",
        "Y",
        "--kind",
        "database",
        "--department",
        "Attendance",
        "--config",
        config,
    )
    assert code == 1 and "may not create or edit sources" in one_line(err)
    cli_env.setenv("BATCHOPS_USER", "admin1")
    code, _, _ = run(
        capsys,
        cli_env,
        "source",
        "add",
        "Y",
        "--kind",
        "database",
        "--department",
        "Attendance",
        "--config",
        config,
    )
    assert code == 0
    cli_env.setenv("BATCHOPS_USER", "user1")
    code, _, err = run(capsys, cli_env, "source", "sync", "Y")
    assert code == 1 and "may not sync sources" in one_line(err)
    code, out, _ = run(capsys, cli_env, "source", "list", "--json")
    assert code == 0 and [s["name"] for s in json.loads(out)] == ["Y"]


def test_test_parse_applies_the_parser_settings_and_writes_nothing(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sample = tmp_path / "sample.csv"
    sample.write_text("Roll;Pupil;Days\nS1;Ann;20\nS2;Bob;18\n", encoding="utf-8")
    config = {
        "path": str(tmp_path),
        "glob": "*.csv",
        "settle_seconds": 0,
        "parser": {
            "delimiter": ";",
            "column_aliases": {"Roll": "student_id"},
            "required_columns": ["student_id", "days"],
        },
    }
    code, _, err = run(
        capsys,
        cli_env,
        "source",
        "add",
        "Drop",
        "--kind",
        "folder",
        "--department",
        "Library",
        "--config",
        json.dumps(config),
    )
    assert code == 0, err
    code, out, _ = run(capsys, cli_env, "source", "test", "Drop", str(sample), "--json")
    [report] = json.loads(out)
    assert code == 0 and report["ok"] and report["columns"] == ["student_id", "pupil", "days"]
    assert report["rows"][0] == {"student_id": "S1", "pupil": "Ann", "days": 20}
    config["parser"]["required_columns"] = ["student_id", "book_id"]
    run(capsys, cli_env, "source", "edit", "Drop", "--config", json.dumps(config))
    code, out, _ = run(capsys, cli_env, "source", "test", "Drop", str(sample))
    assert code == 1 and "required column(s) book_id not found" in out
    code, out, _ = run(capsys, cli_env, "source", "test", "Drop", "--json")
    assert code == 0 and json.loads(out)[0]["files"][0]["name"] == "sample.csv"
    code, out, _ = run(capsys, cli_env, "source", "show", "Drop", "--json")
    assert json.loads(out)[0]["jobs"] == []  # testing wrote nothing
