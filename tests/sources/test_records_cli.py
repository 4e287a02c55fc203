"""`batchops records query`, `missing` and `source calendar` through `main([...])`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.sources.conftest import add_sqlite_rows, sqlite_config
from tests.sources.test_source_cli import one_line, run


@pytest.fixture
def synced(
    cli_env: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    external_sqlite: Path,
) -> pytest.MonkeyPatch:
    add_sqlite_rows(external_sqlite, 251, 2250)  # 2,500 punches over 25 days
    config = json.dumps(sqlite_config(external_sqlite, batch_size=1000, cadence="school days"))
    code, _, err = run(
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
        config,
    )
    assert code == 0, err
    code, _, err = run(capsys, cli_env, "source", "sync", "Gate")
    assert code == 0, err
    return cli_env


def test_records_query_pages_filters_and_formats(
    synced: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, synced, "records", "query", "--source", "Gate")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 2500  # three keyset pages of 1,000
    assert len({r["key"] for r in rows}) == 2500
    assert list(rows[0]) == [
        "source",
        "date",
        "partition",
        "key",
        "employee",
        "at",
        "device",
        "other",
    ]

    code, out, _ = run(
        capsys,
        synced,
        "records",
        "query",
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-01",
        "--format",
        "json",
    )
    day = json.loads(out)
    assert (
        code == 0
        and len(day) == 100
        and set(day[0]) == {"source", "date", "partition", "key", "data"}
    )
    assert {r["date"] for r in day} == {"2026-12-01"} and day[0]["source"] == "Gate"

    code, out, _ = run(
        capsys,
        synced,
        "records",
        "query",
        "--where",
        "employee=E001",
        "--where",
        "device=gate-1",
        "--format",
        "json",
    )
    picked = json.loads(out)
    assert (
        code == 0
        and picked
        and all(r["data"]["employee"] == "E001" and r["data"]["device"] == "gate-1" for r in picked)
    )
    assert len(picked) == sum(1 for i in range(1, 2501) if i % 37 == 1 and i % 3 == 1)

    target = tmp_path / "out" / "dec.csv"
    target.parent.mkdir()
    code, out, _ = run(
        capsys,
        synced,
        "records",
        "query",
        "--from",
        "2026-12-02",
        "--to",
        "2026-12-03",
        "-o",
        str(target),
    )
    assert code == 0 and "200 record(s) written" in out
    assert len(target.read_text().splitlines()) == 201 and not list(target.parent.glob(".*part"))

    code, out, _ = run(capsys, synced, "records", "query", "--source", "Nope")
    assert code == 1
    code, out, _ = run(capsys, synced, "records", "query", "--where", "oops", "--format", "json")
    assert code == 1


def test_missing_and_the_calendar_from_the_command_line(
    synced: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # rows cover 2026-11-30 .. 2026-12-24; ask for two school weeks past their end
    code, out, _ = run(
        capsys, synced, "missing", "--from", "2026-12-21", "--to", "2026-12-31", "--json"
    )
    gaps = json.loads(out)
    assert code == 0 and [g["date"] for g in gaps] == [
        "2026-12-25",
        "2026-12-28",
        "2026-12-29",
        "2026-12-30",
        "2026-12-31",
    ]
    assert gaps[0] == {
        "source": "Gate",
        "partition": "",
        "date": "2026-12-25",
        "state": "none",
        "error": None,
    }
    code, out, _ = run(
        capsys,
        synced,
        "source",
        "calendar",
        "add",
        "holiday",
        "Winter break",
        "--from",
        "2026-12-24",
        "--to",
        "2027-01-04",
    )
    assert code == 0 and "holiday #1 'Winter break'" in out
    code, out, _ = run(capsys, synced, "missing", "--from", "2026-12-21", "--to", "2026-12-31")
    assert code == 0 and "no missing days." in out
    code, out, _ = run(capsys, synced, "source", "calendar", "list", "--json")
    assert json.loads(out)[0]["kind"] == "holiday"
    code, _, err = run(
        capsys,
        synced,
        "source",
        "calendar",
        "add",
        "term",
        "Backwards",
        "--from",
        "2027-01-10",
        "--to",
        "2027-01-01",
    )
    assert code == 1 and "ends (2027-01-01) before it starts" in one_line(err)
    code, out, _ = run(
        capsys, synced, "missing", "--run", "--from", "2026-12-21", "--to", "2026-12-31", "--json"
    )
    assert code == 0 and json.loads(out) == []
