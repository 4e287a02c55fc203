"""CSV reading: encodings, delimiters, quoting, preambles, identifiers, read overrides."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from batchops_core.enums import Stage
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.stages import StageContext, run_all
from batchops_core.pipeline.standardize import standardize
from batchops_core.pipeline.workdir import load_frame
from tests.pipeline.helpers import Ran

ROWS = "student_id,name,score\nS001,Ana,81\nS002,Élodie,92\n"


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"), ("cp1252", "cp1252")],
)
def test_encodings(write: Callable[..., Path], encoding: str, expected: str) -> None:
    path = write(f"g-{encoding}.csv", ROWS.encode(encoding))
    std = standardize(path)
    assert f"encoding: {expected}" in std.log
    assert std.frame["name"].tolist() == ["Ana", "Élodie"]
    assert std.frame["student_id"].tolist() == ["S001", "S002"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(write: Callable[..., Path], delimiter: str) -> None:
    path = write("d.csv", ROWS.replace(",", delimiter))
    std = standardize(path)
    assert list(std.frame.columns) == ["student_id", "name", "score", "__row__"]
    assert std.frame["score"].tolist() == [81, 92]


def test_quoted_delimiters_and_newlines(write: Callable[..., Path]) -> None:
    text = 'student_id,comment,score\nS1,"late, excused",7\nS2,"two\nlines",8\nS3,plain,9\n'
    std = standardize(write("q.csv", text))
    assert std.frame["comment"].tolist() == ["late, excused", "two\nlines", "plain"]
    assert std.frame["score"].tolist() == [7, 8, 9]


def test_single_column_value_with_a_newline(write: Callable[..., Path]) -> None:
    """One column: a split row would keep its width, so such files are always read carefully."""
    std = standardize(write("n.csv", 'comment\n"two\nlines"\n"one line"\n'))
    assert std.frame["comment"].tolist() == ["two\nlines", "one line"]


def test_blank_comment_and_title_lines_before_header(write: Callable[..., Path]) -> None:
    text = "# exported by SIS\n\nTerm 1 results\n\nstudent_id,score\nS1,5\nS2,6\n"
    std = standardize(write("p.csv", text))
    assert "header row: 5" in std.log
    assert std.frame["__row__"].tolist() == [6, 7]  # row numbers as in the file


def test_crlf_and_title_offset(write: Callable[..., Path]) -> None:
    text = "Results\r\nstudent_id;score\r\nS1;5\r\nS2;6"
    std = standardize(write("c.csv", text.encode()))
    assert std.frame["score"].tolist() == [5, 6]


def test_identifiers_never_pass_through_a_float(write: Callable[..., Path]) -> None:
    text = "roll no,code,big,score\n1,007,12345678901234567890,1.5\n2,010,98765432109876543210,2\n"
    std = standardize(write("ids.csv", text))
    frame = std.frame
    assert frame["student_id"].tolist() == ["1", "2"]  # alias + identifier name -> text
    assert frame["code"].tolist() == ["007", "010"]
    assert frame["big"].tolist() == ["12345678901234567890", "98765432109876543210"]
    assert std.schema["score"] == "number"


def test_integers_with_gaps_stay_integers(write: Callable[..., Path]) -> None:
    std = standardize(write("gaps.csv", "student_id,score\nS1,3400660\nS2,\nS3,5\n"))
    assert str(std.frame["score"].dtype) == "Int64"
    assert std.frame["score"].iloc[0] == 3400660


def test_forced_wrong_delimiter_is_single_column(write: Callable[..., Path]) -> None:
    path = write("semi.csv", ROWS.replace(",", ";"))
    with pytest.raises(StageError) as err:
        standardize(path, options={"delimiter": ","})
    assert err.value.code == "CSV_SINGLE_COLUMN"
    assert re.match(r"^CSV_(DELIMITER|SINGLE_COLUMN)", str(err.value))  # seed known error
    assert "';'" in err.value.hint


def test_delimiter_override_is_honoured(write: Callable[..., Path]) -> None:
    path = write("pipes.csv", "a|b,c\n1|2,3\n4|5,6\n")
    assert standardize(path, options={"delimiter": "|"}).frame.columns[:2].tolist() == ["a", "b_c"]


def test_wrong_forced_encoding(write: Callable[..., Path]) -> None:
    path = write("latin.csv", ROWS.encode("cp1252"))
    with pytest.raises(StageError) as err:
        standardize(path, options={"encoding": "utf-8"})
    assert err.value.code == "CSV_ENCODING"
    assert standardize(path, options={"encoding": "cp1252"}).frame["name"].iloc[1] == "Élodie"


def test_non_utf8_after_the_sniffed_head(write: Callable[..., Path]) -> None:
    body = "".join(f"S{i},Ana,{i % 100}\n" for i in range(30_000))
    path = write(
        "late.csv", ("student_id,name,score\n" + body).encode() + "S9,Zoë,1\n".encode("cp1252")
    )
    for options in ({}, {"encoding": "utf-8"}):
        with pytest.raises(StageError) as err:
            standardize(path, options=options)
        assert err.value.code == "CSV_ENCODING"
    std = standardize(path, options={"encoding": "cp1252"})  # the auto-fix's re-read
    assert std.frame["name"].iloc[-1] == "Zoë"
    assert any("1 lines are not UTF-8" in line and "30002" in line for line in std.log)


def test_column_aliases_from_read_options_and_settings(write: Callable[..., Path]) -> None:
    path = write("alias.csv", "Learner Code,Mark\nL1,5\n")
    std = standardize(
        path, aliases={"Mark": "score"}, options={"column_aliases": {"learner_code": "student_id"}}
    )
    assert list(std.frame.columns) == ["student_id", "score", "__row__"]


def test_ragged_rows_go_to_the_fix_list(
    write: Callable[..., Path], run: Callable[..., Ran]
) -> None:
    rows = "".join(f"S{i},{i}\n" for i in range(1, 60))
    path = write("ragged.csv", "student_id,score\n" + rows + "S99,1,extra\n")
    ran = run(path)
    assert ran.publish["status"] == "partial"
    fix = Path(ran.publish["fixlist_csv"]).read_text(encoding="utf-8")
    assert "61," in fix and "wrong number of fields" in fix


def test_wrong_delimiter_detected_then_rerun(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    path = write("r.csv", ROWS.replace(",", ";"))
    ctx = make_ctx(path, config={"read_options": {"delimiter": ","}})
    with pytest.raises(StageError):
        run_all(ctx)
    fixed = make_ctx(path, config={"read_options": {"delimiter": ";"}})
    run_all(fixed)
    frame = load_frame(fixed.work / "standardize.arrow", Stage.STANDARDIZE)
    assert frame["score"].tolist() == [81, 92]


def test_a_late_non_number_in_a_numeric_column_is_a_type_error(write: Callable[..., Path]) -> None:
    body = "".join(f"S{i},{i % 100}.5\n" for i in range(40_000))  # past the sniffed head
    std = standardize(write("late.csv", "student_id,score\n" + body + "S-x,absent\n"))
    assert len(std.frame) == 40_001 and std.schema["score"] == "number"
    assert std.type_errors == [
        {
            "row": 40_002,
            "column": "score",
            "value": "absent",
            "expected": "a number",
            "kind": "type",
        }
    ]
