"""`batchops upload`: exit codes, --json fields, plan parsing, embedded processing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchops_tui.cli.main import main

GOOD = "student_id,class,score\n" + "".join(f"S{i},9A,{50 + i}\n" for i in range(1, 21))


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BATCHOPS_CONFIG", raising=False)
    monkeypatch.delenv("BATCHOPS_REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BATCHOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BATCHOPS_DATABASE_URL", sqlite_url)
    files = tmp_path / "files"
    files.mkdir()
    (files / "good.csv").write_text(GOOD)
    (files / "empty.csv").write_text("")
    return files


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]]]:
    code = main(["upload", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else []


def test_upload_processes_in_process_and_reports_json(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(capsys, str(env / "good.csv"), "--wait", "--source", "Exams")
    assert code == 0
    (row,) = rows
    assert set(row) == {
        "id",
        "filename",
        "status",
        "rows_in",
        "rows_out",
        "report_csv",
        "report_pdf",
        "error_code",
        "error_message",
    }
    assert (row["status"], row["rows_in"], row["error_code"]) == ("published", 20, None)
    storage = env.parent / "data" / "storage"
    assert str(row["report_csv"]).startswith("exports/"), "reports are named by storage key"
    assert (storage / str(row["report_csv"])).is_file()
    assert (storage / str(row["report_pdf"])).is_file()


def test_failures_and_refusals_exit_1(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows = run_json(capsys, str(env / "empty.csv"), f"{env}/../files/good.csv", "--wait")
    assert code == 1
    assert (rows[0]["status"], rows[0]["error_code"]) == ("failed", "EMPTY_FILE")
    assert "empty" in str(rows[0]["error_message"])
    assert (rows[1]["id"], rows[1]["status"], rows[1]["error_code"]) == (
        None,
        "rejected",
        "BAD_PATH",
    )


def test_duplicate_exits_1(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, str(env / "good.csv"), "--wait")[0] == 0
    code, rows = run_json(capsys, str(env / "good.csv"), "--wait")
    assert code == 1 and rows[0]["status"] == "duplicate"


def test_plan_from_file_and_table_output(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"rules": [{"column": "score", "operator": "gt", "value": 60}]}))
    code = main(["upload", str(env / "good.csv"), "--plan", "delete", "--plan-config", f"@{plan}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "published" in out and " 10 " in out  # 20 rows, 10 above 60 deleted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plan", "shred"], "process_mode"),
        (["--plan-config", "{oops"], "not valid JSON"),
        (["--plan-config", "@/nonexistent/plan.json"], "cannot be read"),
        (
            [
                "--plan",
                "delete",
                "--plan-config",
                '{"rules": [{"column": "score", "operator": "zz"}]}',
            ],
            "process_config.rules[0].operator",
        ),
        (["--source", "Astronomy"], "unknown department"),
    ],
)
def test_usage_errors_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["upload", str(env / "good.csv"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
