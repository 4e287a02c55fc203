"""Validation: required columns, keys, duplicates, type fit, threshold, quarantine, fix-lists."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from batchops_core.enums import Stage
from batchops_core.infra.config import Settings
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.stages import StageContext, run_all
from batchops_core.pipeline.validate import requirements
from tests.pipeline.helpers import Ran, settings_with


def gradebook(n: int, *, bad: dict[int, str] | None = None, dup: set[int] | None = None) -> str:
    lines = ["Student ID,class,maths,english"]
    for i in range(1, n + 1):
        sid = f"S{(i - 1) if dup and i in dup else i:04d}"
        maths = (bad or {}).get(i, str(40 + i % 60))
        lines.append(f"{sid},9A,{maths},{50 + i % 50}")
    return "\n".join(lines) + "\n"


def failure(ctx: StageContext) -> StageError:
    with pytest.raises(StageError) as err:
        run_all(ctx)
    return err.value


def test_requirements_resolution() -> None:
    assert requirements("manual").columns == ()
    assert requirements("Exams").gradebook and requirements("Exams").columns == ("student_id",)
    configured = {"Library": ["Book ID", "borrowed_on"]}
    assert requirements("library", configured=configured).columns == ("book_id", "borrowed_on")
    assert requirements("Fees", department_columns=["invoice"]).columns == ("invoice",)


def test_missing_identifier_matches_the_seeded_known_error(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    path = write("roll.csv", "Roll Code,maths\nR1,50\n")
    err = failure(make_ctx(path, source="Exams"))
    assert err.code == "MISSING_COLUMN" and err.stage == Stage.VALIDATE
    assert err.column == "student_id"
    assert re.search(r"^MISSING_COLUMN: .*student_id", f"{err.code}: {err.message}")
    assert "roll_code" in err.message  # lists the columns it did find


def test_alias_remediation_makes_it_pass(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    path = write("roll.csv", "Roll Code,maths\nR1,50\n")
    ctx = make_ctx(
        path,
        source="Exams",
        config={"read_options": {"column_aliases": {"roll_code": "student_id"}}},
    )
    assert run_all(ctx)[-1].data["status"] == "published"


def test_gradebook_needs_a_score(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    err = failure(make_ctx(write("names.csv", "student_id,name\nS1,Ana\n"), source="Exams"))
    assert err.code == "MISSING_COLUMN" and "score" in err.message


def test_configured_required_columns(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext], pipe_settings: Settings
) -> None:
    settings = settings_with(pipe_settings, required_columns={"Library": ["book_id"]})
    err = failure(
        make_ctx(write("l.csv", "student_id,title\nS1,Dune\n"), source="Library", settings=settings)
    )
    assert err.code == "MISSING_COLUMN" and "'book_id'" in err.message


def test_below_threshold_quarantines_and_publishes_partial(
    write: Callable[..., Path], run: Callable[..., Ran]
) -> None:
    ran = run(write("g.csv", gradebook(100, bad={7: "absent"}, dup={50})), source="Exams")
    assert ran.publish["status"] == "partial"
    report = ran.outcomes[1].data["report"]
    assert report["rows_quarantined"] == 2
    assert report["by_kind"]["type"]["first"][0] == {"row": 8, "column": "maths", "value": "absent"}
    assert report["by_kind"]["duplicate_key"]["first"][0]["row"] == 51
    with open(ran.publish["fixlist_csv"], newline="", encoding="utf-8") as fh:
        fix = list(csv.DictReader(fh))
    assert [(r["row"], r["column"], r["value"]) for r in fix] == [
        ("8", "maths", "absent"),
        ("51", "student_id", "S0049"),
    ]
    assert all(r["hint"] for r in fix)
    assert ran.outcomes[1].rows_out == 98


def test_above_threshold_fails(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    bad = {i: "n.a." for i in range(1, 9)}
    err = failure(make_ctx(write("g.csv", gradebook(100, bad=bad)), source="Exams"))
    assert err.code == "VALIDATION_THRESHOLD"
    assert "8 of 100 rows" in err.message and err.row == 2
    assert err.details["report"]["by_kind"]["type"]["count"] == 8


def test_many_duplicates_fail_as_duplicate_keys(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    err = failure(make_ctx(write("d.csv", gradebook(40, dup=set(range(2, 41, 2)))), source="Exams"))
    assert err.code == "DUPLICATE_KEYS" and err.column == "student_id"


def test_empty_and_malformed_keys(write: Callable[..., Path], run: Callable[..., Ran]) -> None:
    body = gradebook(60).replace("S0003,", ",").replace("S0004,", "S 4!,")
    ran = run(write("k.csv", body), source="Exams")
    kinds = ran.outcomes[1].data["report"]["by_kind"]
    assert kinds["missing_key"]["first"][0]["row"] == 4
    assert kinds["malformed_key"]["first"][0]["value"] == "S 4!"


def test_spreadsheet_fix_list_highlights_bad_cells(tmp_path: Path, run: Callable[..., Ran]) -> None:
    from openpyxl import Workbook, load_workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Grade 9 results"])
    ws.append(["Student ID", "maths"])
    for i in range(1, 41):
        ws.append([f"S{i:03d}", "ill" if i == 5 else 50 + i])
    path = tmp_path / "marks.xlsx"
    wb.save(path)
    ran = run(path, source="Exams")
    assert ran.publish["status"] == "partial"
    fixed = load_workbook(ran.publish["fixlist_xlsx"])
    rows = list(fixed["Rows to fix"].iter_rows(min_row=2))
    assert len(rows) == 1
    row_no, sid, maths = rows[0]
    assert (row_no.value, sid.value, maths.value) == (7, "S005", "ill")
    assert maths.fill.start_color.rgb.endswith("FFFF00") and maths.comment is not None
    assert sid.fill.fill_type is None
    assert fixed["Problems"].max_row == 2
