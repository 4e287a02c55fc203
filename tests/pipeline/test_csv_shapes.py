"""Messy export shapes from issues #16 and #14: the real header is kept, or the load fails saying
which rows could be the header; never a data row published as the header."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.standardize import standardize
from tests.pipeline.helpers import Ran

Write = Callable[..., Path]


def _chosen(log: list[str]) -> str:
    return next(line for line in log if " chosen: " in line)


def test_trailing_delimiter_is_an_empty_column_not_a_header(write: Write) -> None:
    std = standardize(write("t.csv", "id,score\n1,30,\n2,40,\n3,50,\n"))
    assert list(std.frame.columns) == ["id", "score", "__row__"]
    assert std.frame["score"].tolist() == [30, 40, 50]
    assert std.frame["__row__"].tolist() == [2, 3, 4]
    assert "header row: 1" in std.log
    assert "trailing delimiter" in _chosen(std.log)


def test_trailing_delimiter_on_the_header_only(write: Write) -> None:
    std = standardize(write("h.csv", "id,score,\n1,30\n2,40\n"))
    assert std.frame["score"].tolist() == [30, 40] and not std.rejected


def test_some_names_with_an_unquoted_comma_go_to_the_fix_list(
    write: Write, run: Callable[..., Ran]
) -> None:
    rows = "".join(f"{i},Name{i},{i}\n" for i in range(1, 30))
    ran = run(write("u.csv", "id,name,score\n" + rows + "99,Smith, J,30\n"))
    assert ran.publish["status"] == "partial"
    assert "header row: 1" in ran.log("standardize")
    fix = Path(ran.publish["fixlist_csv"]).read_text(encoding="utf-8")
    assert "31," in fix and "Smith" in fix


def test_every_name_with_an_unquoted_comma_fails_showing_the_candidates(write: Write) -> None:
    path = write("u.csv", "id,name,score\n1,Smith, J,30\n2,Doe, A,40\n3,Roe, B,50\n")
    with pytest.raises(StageError) as err:
        standardize(path)
    assert err.value.code == "CSV_HEADER"
    assert "row 1: id, name, score (3 fields)" in err.value.message
    assert "row 2: 1, Smith, J, 30 (4 fields)" in err.value.message
    assert "more fields (4)" in err.value.message


def test_space_after_delimiter_before_quoted_values(write: Write) -> None:
    text = 'id,name,city\n1, "Smith, J", "Paris, FR"\n2, "Doe, A", "Lyon, FR"\n'
    std = standardize(write("s.csv", text))
    assert std.frame["name"].tolist() == ["Smith, J", "Doe, A"]
    assert std.frame["city"].tolist() == ["Paris, FR", "Lyon, FR"]
    assert any("space after delimiter" in line for line in std.log)


@pytest.mark.parametrize("delimiter", [":", "+", "?", "/"])
def test_unusual_delimiters(write: Write, delimiter: str) -> None:
    rows = [["id", "name", "score"], ["S1", "Ana Lima", "81"], ["S2", "Ben Okafor", "92"]]
    rows += [[f"S{i}", f"Name {i}", str(i)] for i in range(3, 8)]
    text = "".join(delimiter.join(r) + "\n" for r in rows)
    std = standardize(write("x.csv", text))
    assert std.frame["name"].tolist()[:2] == ["Ana Lima", "Ben Okafor"]
    assert std.frame["score"].tolist()[:2] == [81, 92]


def test_space_padded_plus_with_single_quotes(write: Write) -> None:
    text = (
        "'venue'+ 'city'+ 'state'\n"
        "'Harry''s'+ 'Arlington Heights'+ 'IL'\n"
        "'Shark City'+ 'Glendale Heights'+ 'IL'\n"
        "'Tommy''s Place'+ 'Blue Island'+ 'IL'\n"
    )
    std = standardize(write("p.csv", text))
    assert std.frame["venue"].tolist() == ["Harry's", "Shark City", "Tommy's Place"]
    assert std.frame["city"].tolist()[0] == "Arlington Heights"


def test_single_quote_quoting(write: Write) -> None:
    text = "venue,city\n'Harry''s','Arlington, Heights'\n'Shark City','Glendale'\n"
    std = standardize(write("q.csv", text))
    assert std.frame["venue"].tolist() == ["Harry's", "Shark City"]
    assert std.frame["city"].tolist() == ["Arlington, Heights", "Glendale"]


def test_backslash_escaped_delimiters(write: Write) -> None:
    text = "id,name,score\n1,Smith\\, J,30\n2,Doe\\, A,40\n3,Roe,50\n"
    std = standardize(write("b.csv", text))
    assert std.frame["name"].tolist() == ["Smith, J", "Doe, A", "Roe"]
    assert std.frame["score"].tolist() == [30, 40, 50]


def test_cr_only_line_endings(write: Write) -> None:
    std = standardize(write("cr.csv", b"Results\rid;score\rS1;5\rS2;6\r"))
    assert std.frame["score"].tolist() == [5, 6]
    assert "header row: 2" in std.log
    assert any("CR line ends" in line for line in std.log)


def test_one_line_without_final_newline_says_no_data(write: Write) -> None:
    with pytest.raises(StageError) as err:
        standardize(write("one.csv", b"student_id,score"))
    assert err.value.code == "NO_DATA"
    assert "only its header row (student_id, score)" in err.value.message
    assert "skip" not in err.value.message


def test_padded_title_rows_above_the_header(write: Write) -> None:
    text = (
        "Exam results — Term 2;;;;\n"
        "exported 2026-03-01 by SIS;;;;\n"
        ";;;;\n"
        "student_id;name;class;score;grade\n"
        "S1;Ana;9A;81;B\n"
        "S2;Ben;9B;92;A\n"
    )
    std = standardize(write("title.csv", text))
    assert list(std.frame.columns)[:5] == ["student_id", "name", "class", "score", "grade"]
    assert "header row: 4" in std.log
    assert "Exam results" in _chosen(std.log)


def test_a_very_large_value_is_named_in_plain_words(write: Write) -> None:
    path = write("big.csv", b'id,comment\n1,"' + b"x" * (20 << 20) + b'"\n2,ok\n')
    with pytest.raises(StageError) as err:
        standardize(path)
    assert err.value.code == "CSV_VALUE_TOO_LARGE"
    assert "longer than 8 MB" in err.value.message
    assert "straddl" not in err.value.message and "block" not in err.value.message


def test_data_without_any_header_is_not_published(write: Write) -> None:
    with pytest.raises(StageError) as err:
        standardize(write("nohead.csv", "1,30\n2,40\n3,50\n"))
    assert err.value.code == "CSV_HEADER"
    assert "row 1: 1, 30" in err.value.message
