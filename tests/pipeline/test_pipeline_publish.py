"""Publishing: formula neutralization, PDF capping and header repetition, atomic and idempotent."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pdfplumber
import pytest

from batchops_core.enums import Stage
from batchops_core.infra.config import Settings
from batchops_core.pipeline.atomic import write_atomic
from batchops_core.pipeline.csv_out import write_csv
from batchops_core.pipeline.pdf_out import write_pdf
from batchops_core.pipeline.stages import StageContext, run_all, run_stage
from tests.pipeline.helpers import Ran, settings_with


def test_formula_injection_is_neutralized(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "name": pd.Series(
                ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "\tTab", "ok", None], dtype="str"
            ),
            "score": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    changed = write_csv(frame, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert changed == 5
    assert [r["name"] for r in rows] == [
        '\'=HYPERLINK("x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tTab",
        "ok",
        "",
    ]
    assert rows[0]["score"] == "-1.5"  # numbers are typed, never prefixed


def _pdf_text(path: Path) -> list[str]:
    with pdfplumber.open(path) as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


def test_pdf_header_on_every_page_wrapped_text_and_cap(tmp_path: Path) -> None:
    n = 400
    frame = pd.DataFrame(
        {
            "student_id": [f"S{i:04d}" for i in range(n)],
            "comment": ["needs support with fractions and reading comprehension " * 3] * n,
            "score": [float(i) for i in range(n)],
        }
    )
    info = write_pdf(
        tmp_path / "r.pdf",
        title="Report – test",
        metadata=[("Source", "Exams")],
        table=frame,
        max_rows=150,
    )
    pages = _pdf_text(tmp_path / "r.pdf")
    assert info["capped"] and info["rows_shown"] == 150 and info["pages"] == len(pages) > 2
    assert "Showing the first 150 of 400 rows" in pages[0]
    assert "250 more rows" in pages[-1]
    for text in pages:
        assert "student_id" in text and "comment" in text  # header repeated on every page
    assert "S0149" in "".join(pages) and "S0150" not in "".join(pages)
    assert "Report - test" in pages[0]  # folded to the core font's Latin-1


def test_pdf_handles_missing_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": pd.Series([None, "x"], dtype="str"), "b": [float("nan"), 1.0]})
    assert (
        write_pdf(tmp_path / "m.pdf", title="t", metadata=[], table=frame, max_rows=10)["pages"]
        == 1
    )


def test_failed_atomic_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "exports" / "r.csv"

    def broken(tmp: Path) -> None:
        tmp.write_text("half a report")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomic(target, broken)
    assert list(target.parent.iterdir()) == []


def test_publish_failure_is_typed(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    ctx = make_ctx(write("g.csv", "student_id,score\nS1,5\n"))
    for stage in (Stage.STANDARDIZE, Stage.VALIDATE, Stage.TRANSFORM, Stage.SUMMARIZE):
        run_stage(stage, ctx)
    Path(ctx.export_dir).parent.mkdir(parents=True, exist_ok=True)
    Path(ctx.export_dir).write_text("a file where the export directory should be")
    with pytest.raises(Exception) as err:
        run_stage(Stage.PUBLISH, ctx)
    assert getattr(err.value, "code", "") == "PUBLISH_FAILED"


def test_rerun_and_resume_overwrite_the_same_exports(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    ctx = make_ctx(write("g.csv", "student_id,score\nS1,5\nS2,7\n"))
    first = run_all(ctx)[-1].data
    again = run_all(ctx, from_stage=Stage.SUMMARIZE)[-1].data
    assert {k: first[k] for k in ("report_csv", "report_pdf")} == {
        k: again[k] for k in ("report_csv", "report_pdf")
    }
    files = sorted(p.name for p in Path(ctx.export_dir).iterdir())
    assert files == ["g_report.csv", "g_report.pdf"]


def test_resume_without_earlier_results_says_so(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    ctx = make_ctx(write("g.csv", "student_id,score\nS1,5\n"))
    with pytest.raises(Exception) as err:
        run_all(ctx, from_stage=Stage.TRANSFORM)
    assert getattr(err.value, "code", "") == "WORK_MISSING"


def test_large_dataset_pdf_is_capped_with_a_note(
    write: Callable[..., Path], run: Callable[..., Ran], pipe_settings: Settings
) -> None:
    body = "student_id,score\n" + "".join(f"S{i},{i % 100}\n" for i in range(300))
    ran = run(
        write("big.csv", body),
        mode="custom",
        config={"instruction": "archive"},
        settings=settings_with(pipe_settings, pdf_max_rows=50),
    )
    assert any("PDF capped at 50 rows" in line for line in ran.log("publish"))
    assert "Showing the first 50 of 300 rows" in _pdf_text(Path(ran.publish["report_pdf"]))[0]
    with open(ran.publish["report_csv"], encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == 301
