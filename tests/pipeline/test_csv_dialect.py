"""Dialect detection against a corpus of messy cases: CleverCSV's and CPython's unit-test samples
(rewritten here as literals) plus the export shapes schools send. A case counts as right when
splitting it with the detected dialect gives exactly the expected cells (trimmed, as the loader
trims them). `bench/bench_dialect.py` prints the same figures for csv.Sniffer and bare CleverCSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest

from batchops_core.pipeline.dialect import Dialect, detect_dialect, parse_lines

Rows = list[list[str]]

_VENUES = [
    ["Harry's", "Arlington Heights", "IL", "2/1/03", "Kimi Hayes"],
    ["Shark City", "Glendale Heights", "IL", "12/28/02", "Prezence"],
    ["Tommy's Place", "Blue Island", "IL", "12/28/02", "Blue Sunday/White Crow"],
    ["Stonecutters Seafood and Chop House", "Lemont", "IL", "12/19/02", "Week Back"],
]
_HEAD = [["venue", "city", "state", "date", "performers"]]
_GRADES = [
    ["student_id", "name", "class", "score", "date"],
    ["S001", "Ana Lima", "9A", "81.5", "2026-01-12"],
    ["S002", "Ben Okafor", "9B", "92", "2026-01-12"],
    ["S003", "Chloé Novak", "10A", "67", "2026-01-13"],
    ["S004", "Dev Rossi", "10B", "", "2026-01-13"],
    ["S005", "Eli Silva", "11A", "74.25", "2026-01-14"],
]
_NAMES = [
    ["id", "name", "city"],
    ["1", "Smith, J", "Paris, FR"],
    ["2", "Doe, A", "Lyon, FR"],
    ["3", "Roe, B", "Nice, FR"],
]


def _join(rows: Rows, delimiter: str, end: str = "\n") -> str:
    return "".join(delimiter.join(r) + end for r in rows)


def _written(rows: Rows, **kwargs: object) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", **kwargs).writerows(rows)  # type: ignore[arg-type]
    return out.getvalue()


def _sample3() -> tuple[str, Rows]:
    rows = [["05/05/03"] * 6] * 3
    return _join(rows, "?"), rows


CORPUS: list[tuple[str, str, Rows]] = [
    ("cpython sample1: comma, space after", _join(_VENUES, ", "), _VENUES),
    (
        "cpython sample2: colon, single quotes doubled",
        "'Harry''s':'Arlington Heights':'IL':'2/1/03':'Kimi Hayes'\n"
        "'Shark City':'Glendale Heights':'IL':'12/28/02':'Prezence'\n"
        "'Tommy''s Place':'Blue Island':'IL':'12/28/02':'Blue Sunday/White Crow'\n"
        "'Stonecutters ''Seafood'' and Chop House':'Lemont':'IL':'12/19/02':'Week Back'\n",
        [
            _VENUES[0],
            _VENUES[1],
            _VENUES[2],
            ["Stonecutters 'Seafood' and Chop House", *_VENUES[3][1:]],
        ],
    ),
    ("cpython sample3: question mark among dates", *_sample3()),
    (
        "cpython sample4: semicolon numbers",
        "2147483648;43.0e12;17;abc;def\n147483648;43.0e2;17;abc;def\n47483648;43.0;170;abc;def\n",
        [
            ["2147483648", "43.0e12", "17", "abc", "def"],
            ["147483648", "43.0e2", "17", "abc", "def"],
            ["47483648", "43.0", "170", "abc", "def"],
        ],
    ),
    (
        "cpython sample5: tab, empty fields, CRLF",
        "aaa\tbbb\r\nAAA\t\r\nBBB\t\r\n",
        [["aaa", "bbb"], ["AAA", ""], ["BBB", ""]],
    ),
    ("cpython sample6: pipe CRLF", "a|b|c\r\nd|e|f\r\n", [["a", "b", "c"], ["d", "e", "f"]]),
    (
        "cpython sample7: pipe, single quotes",
        "'a'|'b'|'c'\r\n'd'|e|f\r\n",
        [["a", "b", "c"], ["d", "e", "f"]],
    ),
    ("clevercsv sample8: plus, space after", _join(_VENUES, "+ "), _VENUES),
    (
        "clevercsv sample9: plus, space, single quotes",
        "'Harry''s'+ 'Arlington Heights'+ 'IL'+ '2/1/03'+ 'Kimi Hayes'\n"
        "'Shark City'+ 'Glendale Heights'+ 'IL'+ '12/28/02'+ 'Prezence'\n"
        "'Tommy''s Place'+ 'Blue Island'+ 'IL'+ '12/28/02'+ 'Blue Sunday/White Crow'\n"
        "'Stonecutters ''Seafood'' and Chop House'+ 'Lemont'+ 'IL'+ '12/19/02'+ 'Week Back'\n",
        [
            _VENUES[0],
            _VENUES[1],
            _VENUES[2],
            ["Stonecutters 'Seafood' and Chop House", *_VENUES[3][1:]],
        ],
    ),
    (
        "clevercsv header1: quoted header over comma rows",
        _written(_HEAD, quoting=csv.QUOTE_ALL) + _join(_VENUES, ", "),
        _HEAD + _VENUES,
    ),
    ("grades: comma", _join(_GRADES, ","), _GRADES),
    ("grades: semicolon", _join(_GRADES, ";"), _GRADES),
    ("grades: tab", _join(_GRADES, "\t"), _GRADES),
    ("grades: pipe", _join(_GRADES, "|"), _GRADES),
    ("grades: colon", _join(_GRADES, ":"), _GRADES),
    ("grades: plus", _join(_GRADES, "+"), _GRADES),
    ("grades: question mark", _join(_GRADES, "?"), _GRADES),
    ("grades: slash", _join(_GRADES, "/"), _GRADES),
    ("grades: CR-only line ends", _join(_GRADES, ";", "\r"), _GRADES),
    ("grades: CRLF", _join(_GRADES, ",", "\r\n"), _GRADES),
    ("grades: every value quoted", _written(_GRADES, quoting=csv.QUOTE_ALL), _GRADES),
    (
        "grades: trailing delimiter",
        _join([[*r, ""] for r in _GRADES], ","),
        [[*r, ""] for r in _GRADES],
    ),
    ("names: quoted commas", _written(_NAMES), _NAMES),
    ("names: quoted semicolon file", _written(_NAMES, delimiter=";"), _NAMES),
    (
        "names: space after delimiter before quotes",
        'id, name, city\n1, "Smith, J", "Paris, FR"\n2, "Doe, A", "Lyon, FR"\n'
        '3, "Roe, B", "Nice, FR"\n',
        _NAMES,
    ),
    (
        "names: single-quote quoting",
        "id,name,city\n1,'Smith, J','Paris, FR'\n2,'Doe, A','Lyon, FR'\n3,'Roe, B','Nice, FR'\n",
        _NAMES,
    ),
    (
        "names: backslash-escaped commas",
        "id,name,city\n1,Smith\\, J,Paris\\, FR\n2,Doe\\, A,Lyon\\, FR\n3,Roe\\, B,Nice\\, FR\n",
        _NAMES,
    ),
    (
        "comments: doubled quotes and newlines",
        'id,comment\n1,"said ""hi"", left"\n2,"two\nlines"\n3,plain\n4,"a, b"\n',
        [["id", "comment"], ["1", 'said "hi", left'], ["2", "two\nlines"], ["3", "plain"]]
        + [["4", "a, b"]],
    ),
    (
        "decimal commas in a semicolon file",
        "student;score;weight\nS1;81,5;0,25\nS2;92;0,5\nS3;67,25;0,25\nS4;70;1\n",
        [["student", "score", "weight"], ["S1", "81,5", "0,25"], ["S2", "92", "0,5"]]
        + [["S3", "67,25", "0,25"], ["S4", "70", "1"]],
    ),
    (
        "emails and web addresses",
        "id,email,site\n1,ana@school.org,http://a.org/x?y=1\n2,ben@school.org,http://b.org/\n"
        "3,eli@school.org,http://c.org/p;q\n",
        [["id", "email", "site"], ["1", "ana@school.org", "http://a.org/x?y=1"]]
        + [["2", "ben@school.org", "http://b.org/"], ["3", "eli@school.org", "http://c.org/p;q"]],
    ),
    (
        "padded title rows (spreadsheet export)",
        "Exam results — Term 2;;;;\nexported 2026-03-01;;;;\n" + _join(_GRADES, ";"),
        [["Exam results — Term 2", "", "", "", ""], ["exported 2026-03-01", "", "", "", ""]]
        + _GRADES,
    ),
    (
        "dates with slashes, comma-separated",
        "id,born,joined\n1,12/01/2010,01/09/2021\n2,03/04/2011,01/09/2022\n"
        "3,30/11/2010,05/01/2023\n",
        [["id", "born", "joined"], ["1", "12/01/2010", "01/09/2021"]]
        + [["2", "03/04/2011", "01/09/2022"], ["3", "30/11/2010", "05/01/2023"]],
    ),
    (
        "one column",
        "name\nAna Lima\nBen Okafor\nChloé Novak\n",
        [["name"], ["Ana Lima"], ["Ben Okafor"], ["Chloé Novak"]],
    ),
    (
        "pipe with quoted pipes",
        'id|note\n1|"a|b"\n2|plain\n3|"x|y|z"\n',
        [["id", "note"], ["1", "a|b"], ["2", "plain"], ["3", "x|y|z"]],
    ),
    (
        "tab with spaces and commas in values",
        "id\tname\tnote\n1\tAna Lima\tlate, excused\n2\tBen Okafor\tok\n3\tEli Silva\tgood, kind\n",
        [["id", "name", "note"], ["1", "Ana Lima", "late, excused"]]
        + [["2", "Ben Okafor", "ok"], ["3", "Eli Silva", "good, kind"]],
    ),
]


def _trim(rows: Rows) -> Rows:
    return [[c.strip() for c in r] for r in rows]


def parses_right(text: str, expected: Rows, split: Callable[[str], Rows]) -> bool:
    try:
        return _trim(split(text)) == _trim(expected)
    except Exception:
        return False


def split_batchops(text: str) -> Rows:
    lines = io.StringIO(text, newline="").readlines()
    return [cells for _, cells in parse_lines(lines, detect_dialect(lines))]


def split_sniffer(text: str) -> Rows:
    dialect = csv.Sniffer().sniff(text)
    return list(csv.reader(io.StringIO(text, newline=""), dialect))


def split_clevercsv(text: str) -> Rows:
    from clevercsv.detect import Detector

    found = Detector().detect(text)
    if found is None:
        return [[ln] for ln in text.splitlines()]
    dialect = Dialect(found.delimiter or ",", found.quotechar or "", found.escapechar or "")
    return [cells for _, cells in parse_lines(io.StringIO(text, newline="").readlines(), dialect)]


def accuracy(split: Callable[[str], Rows]) -> tuple[int, list[str]]:
    wrong = [name for name, text, rows in CORPUS if not parses_right(text, rows, split)]
    return len(CORPUS) - len(wrong), wrong


def test_corpus_accuracy_beats_sniffer_and_clevercsv() -> None:
    ours, wrong = accuracy(split_batchops)
    sniffer, _ = accuracy(split_sniffer)
    clever, _ = accuracy(split_clevercsv)
    assert len(CORPUS) >= 30
    assert ours >= len(CORPUS) - 1, wrong
    assert ours >= clever and ours > sniffer


@pytest.mark.parametrize(("name", "text", "rows"), CORPUS, ids=[c[0] for c in CORPUS])
def test_each_case(name: str, text: str, rows: Rows) -> None:
    assert _trim(split_batchops(text)) == _trim(rows)
