"""Every public sample file publishes with the rows and columns an operator would agree with."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.workdir import load_frame
from tests.pipeline.helpers import SAMPLES, Ran


def dataset(ran: Ran) -> pd.DataFrame:
    from batchops_core.enums import Stage

    return load_frame(ran.ctx.work / "standardize.arrow", Stage.STANDARDIZE)


def csv_rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_semicolon_csv_with_stray_header_comma(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "uci_student-mat_semicolon.csv")
    assert "delimiter: semicolon" in ran.log("standardize")
    frame = dataset(ran)
    assert len(frame) == 395
    assert frame.columns[-2] == "g3"  # "G3," normalized; __row__ is last
    assert pd.api.types.is_integer_dtype(frame["g1"])  # quoted "5" and bare 6 both integers
    assert ran.publish["status"] == "published"
    summary = {r["column"]: r for r in csv_rows(ran.publish["report_csv"])}
    assert summary["g3"]["count"] == "395"
    assert float(summary["age"]["min"]) == 15


def test_crlf_csv_with_long_headers(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "uci_student-por_comma_renamed.csv")
    frame = dataset(ran)
    assert len(frame) == 649
    assert "internet_access" in frame.columns  # trailing space trimmed
    assert frame["final_grade"].notna().all()
    assert ran.publish["rows_out"] == 649


def test_crosswalk_keeps_leading_zeros_and_publishes_without_scores(
    run: Callable[..., Ran],
) -> None:
    ran = run(SAMPLES / "nj_nces_crosswalk.csv")
    frame = dataset(ran)
    assert len(frame) == 3108
    assert frame["county_id"].iloc[0] == "01"
    assert frame["district_id"].iloc[0] == "0010"
    assert int(frame["school_id"].isna().sum()) == 648
    assert ran.publish["status"] == "published"
    profile = {r["column"]: r for r in csv_rows(ran.publish["report_csv"])}
    assert profile["school_id"]["missing"] == "648"


def test_crosswalk_from_a_gradebook_department_names_the_missing_identifier(
    make_ctx: Callable[..., object],
) -> None:
    from batchops_core.pipeline.stages import run_all

    ctx = make_ctx(SAMPLES / "nj_nces_crosswalk.csv", source="Exams")
    with pytest.raises(StageError) as err:
        run_all(ctx)
    assert err.value.code == "MISSING_COLUMN"
    assert "'student_id'" in err.value.message


def test_exam_results_xlsx_preamble_suppression_and_footnotes(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "nj_njsla_ela04_2025_exam_results.xlsx")
    log = ran.log("standardize")
    assert "header row: 3" in log and "footnote rows after the data dropped: 2" in log
    frame = dataset(ran)
    assert len(frame) == 5
    assert "mean_scale_score" in frame.columns  # header cell with a newline
    assert frame["school_code"].iloc[0] == "060"
    assert frame["valid_scores"].tolist()[:2] == [82, 38]
    assert frame["valid_scores"].isna().sum() == 2  # '*' suppression read as missing


def test_absenteeism_units_and_prose(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "nj_spr_district_2025_chronic_absenteeism.xlsx")
    frame = dataset(ran)
    assert len(frame) == 5
    assert frame["studentschronicallyabsent_state"].iloc[0] == 186998
    assert frame["chronicabsenteeismrate_state"].iloc[0] == pytest.approx(14.4)
    # prose in 1 of 5 cells: too much to call the column numeric, so it stays text
    assert frame["studentschronicallyabsent_district"].iloc[0] == "78 students"
    assert ran.publish["status"] == "published"


def test_special_education_placement(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "nj_sped_placement_ey2024_race_subset.xlsx")
    assert "header row: 6" in ran.log("standardize")
    frame = dataset(ran)
    assert len(frame) == 80
    assert frame["race"].iloc[0] == "Asian"
    assert ran.publish["status"] == "published"


def test_ruled_pdf_header_kept_once_and_glitch_quarantined(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "tabula_schools_levy_contributions.pdf")
    frame = dataset(ran)
    assert list(frame.columns[:3]) == ["last_name", "first_name", "address"]
    assert not (frame["last_name"] == "Last Name").any()
    assert len(frame) == 218  # 5 pages, header repeated on each, kept once
    assert "total rows at the end of the table dropped: 3" in ran.log("standardize")
    assert frame["last_name"].iloc[-1] == "The Saint Paul Foundation"
    assert frame["date"].dt.year.eq(2012).sum() >= 210  # M/D/YYYY read as dates
    assert ran.publish["status"] == "partial"  # one date cell reads 'e10/15/2012'
    fix = csv_rows(ran.publish["fixlist_csv"])
    assert [(r["column"], r["value"]) for r in fix] == [("date", "e10/15/2012")]


def test_unruled_pdf_tables(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "nces_us-018_graduates_teachers_expenditure.pdf")
    frame = dataset(ran)
    first = frame.iloc[0]
    assert first["region_and_state"] == "United States"
    assert first.iloc[1] == 2753438
    assert ran.publish["status"] == "published"


def test_enrollment_projection_pdf_skips_blank_page(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "nces_us-017_enrollment_projections.pdf")
    frame = dataset(ran)
    assert frame["year"].min() == 1996 and frame["year"].max() == 2021
    assert "white" in frame.columns


def test_pirls_pdf_publishes(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "nces_us-020_pirls2011_appendix.pdf")
    frame = dataset(ran)
    assert frame["education_system"].iloc[0] == "Australia"
    assert ran.publish["status"] in {"published", "partial"}
    assert Path(ran.publish["report_pdf"]).stat().st_size > 1000


def test_decimal_comma_pdf(run: Callable[..., Ran]) -> None:
    ran = run(SAMPLES / "tabula_eu-002_comenius_pupils.pdf")
    frame = dataset(ran)
    assert frame["preperation_and_planing"].iloc[0] == pytest.approx(0.2885)
    assert ran.publish["status"] == "published"


def test_every_sample_is_covered() -> None:
    names = {p.name for p in SAMPLES.iterdir() if p.suffix != ".md"}
    source = Path(__file__).read_text(encoding="utf-8")
    assert {n for n in names if n not in source} == set()


def test_formulas_without_saved_values_are_reported(
    tmp_path: Path, run: Callable[..., Ran]
) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["student_id", "maths", "english", "total"])
    for i in range(2, 6):
        ws.append([f"S{i}", 50 + i, 60, f"=B{i}+C{i}"])  # openpyxl never computes formulas
    path = tmp_path / "formulas.xlsx"
    wb.save(path)
    ran = run(path)
    assert any("4 formula cells have no saved value" in line for line in ran.log("standardize"))


def test_long_pdf_pages_are_parsed_in_parallel(tmp_path: Path) -> None:
    from batchops_core.pipeline.load_pdf import load_pdf
    from batchops_core.pipeline.pdf_out import write_pdf

    rows = 12 * 52
    frame = pd.DataFrame(
        {
            "student_id": [f"S{i:04d}" for i in range(rows)],
            "score": [float(i % 100) for i in range(rows)],
        }
    )
    path = tmp_path / "long.pdf"
    info = write_pdf(path, title="Scores", metadata=[], table=frame, max_rows=rows)
    assert info["pages"] >= 8
    single = load_pdf(path, {}, processes=1)
    double = load_pdf(path, {}, processes=2)
    assert "processes: 2" in double.log and "processes: 1" in single.log
    assert double.row_count == single.row_count == rows
    ids = [c.as_py() for c in double.columns[0].chunks[0]]
    assert ids[0] == "S0000" and ids[-1] == f"S{rows - 1:04d}"  # pages stitched back in order
