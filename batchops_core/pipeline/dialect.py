"""CSV dialect detection on a bounded sample: delimiter, quote, escape, space after delimiter,
line terminator.

Why CleverCSV's detector: it scores every plausible dialect by how regular the rows it makes are
(pattern score) times how many cells then look like known types (type score), which is what
tells `'Harry''s':'Lemont'` (colon, single quotes) from a comma file, where `csv.Sniffer` and a
field-count vote over `, ; \\t |` guess. On our corpus (`tests/pipeline/test_csv_dialect.py`,
`bench/bench_dialect.py`) it parses more cases right than both; its cost grows with the sample
(~2 ms per KiB here), so it sees at most `SAMPLE_CHARS` of whole lines and the bulk read stays in
Arrow. Two things it does not report are measured here: the space after the delimiter before a
quoted value (`"Smith, J", "Paris, FR"`), and the line terminator.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

_BLOCKED = {".", "/", '"', "'", "\n", "\r", " "}
_BLOCKED_CATEGORIES = {"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No", "Ps", "Pe", "Co", "Cc"}
SAMPLE_CHARS = 12 * 1024
SAMPLE_LINES = 120
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", " ": "space", ":": "colon"}


def delimiter_name(d: str) -> str:
    return _NAMES.get(d, repr(d))


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quotechar: str = '"'
    """Empty when values are never quoted."""
    escapechar: str = ""
    skipinitialspace: bool = False
    lineterminator: str = "\n"

    @property
    def arrow_can_read(self) -> bool:
        """Arrow's reader has no "skip spaces before a quote" switch: such files are read by
        Python's csv module instead (slower, but they are the rare hand-made ones)."""
        return not (self.skipinitialspace and self.quotechar)

    def reader_kwargs(self) -> dict[str, Any]:
        """Arguments for `csv.reader` that split the same way as the bulk read."""
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quotechar or None,
            "escapechar": self.escapechar or None,
            "skipinitialspace": self.skipinitialspace,
            "quoting": csv.QUOTE_MINIMAL if self.quotechar else csv.QUOTE_NONE,
            "doublequote": bool(self.quotechar),
            "strict": False,
        }

    def describe(self) -> str:
        terminators = {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}
        parts = [delimiter_name(self.delimiter)]
        parts.append(f"quote {self.quotechar}" if self.quotechar else "no quoting")
        if self.escapechar:
            parts.append(f"escape {self.escapechar}")
        if self.skipinitialspace:
            parts.append("space after delimiter")
        parts.append(f"{terminators.get(self.lineterminator, 'LF')} line ends")
        return ", ".join(parts)


def sample_of(lines: list[str]) -> str:
    """Whole lines from the start, up to the sample bounds (the detector's time budget)."""
    out: list[str] = []
    size = 0
    for line in lines[:SAMPLE_LINES]:
        if out and size + len(line) > SAMPLE_CHARS:
            break
        out.append(line)
        size += len(line)
    return "".join(out)


def line_terminator(sample: str) -> str:
    crlf = sample.count("\r\n")
    cr, lf = sample.count("\r") - crlf, sample.count("\n") - crlf
    best = max((crlf, "\r\n"), (cr, "\r"), (lf, "\n"))
    return best[1] if best[0] else "\n"


def detect_dialect(lines: list[str], forced: str | None = None) -> Dialect:
    """The dialect of the content lines (preamble comment lines already left out)."""
    from clevercsv.detect import Detector

    sample = sample_of(lines)
    terminator = line_terminator(sample)
    text = sample.replace("\r\n", "\n").replace("\r", "\n")
    found, regular = None, 0.0
    for delimiters in [[forced]] if forced else _candidate_tiers(text):
        try:
            guess = Detector().detect(text, delimiters=delimiters, verbose=False)
        except Exception:  # pragma: no cover - a detector failure falls back to the vote below
            guess = None
        share = _regularity(text, guess)
        if share > regular:
            found, regular = guess, share
        if regular == 1.0:
            break
    if found is None or not found.delimiter:
        delimiter = forced or _vote(text)
        quote = '"' if '"' in text else ""
        return Dialect(
            delimiter, quote, "", _space_before_quotes(text, delimiter, quote), terminator
        )
    quote = found.quotechar or ""
    if not quote and '"' in text and _vote_quotes(text, found.delimiter):
        quote = '"'
    escape = found.escapechar or ""
    space = _space_before_quotes(text, found.delimiter, quote)
    return Dialect(found.delimiter, quote, escape, space, terminator)


def _candidate_tiers(text: str) -> list[list[str]]:
    """Delimiters to offer the detector: those CleverCSV allows by default but the space (a
    space splits `Ana Lima` regularly, and school exports do not use it as a delimiter); then
    also `/` (blocked first because dates hold it), whose answer is taken only when it splits
    the sample more regularly than the first one did."""
    first = sorted(
        {
            ch
            for ch in set(text)
            if ch == "\t"
            or (ch not in _BLOCKED and unicodedata.category(ch) not in _BLOCKED_CATEGORIES)
        }
    )
    return [first, [*first, "/"]]


def _regularity(text: str, found: Any) -> float:
    """Share of the sample's records with the most common field count, 0 when that count is 1
    (a dialect that splits nothing is no dialect)."""
    if found is None or not found.delimiter:
        return 0.0
    dialect = Dialect(found.delimiter, found.quotechar or "", found.escapechar or "")
    counts = Counter(len(cells) for _, cells in parse_lines(text.splitlines(True), dialect))
    if not counts:
        return 0.0
    width, freq = counts.most_common(1)[0]
    return freq / sum(counts.values()) if width > 1 else 0.0


def _vote(text: str) -> str:
    """The common delimiter giving the most regular field count over two fields (single-column
    files come out with a comma, which then finds one field per row)."""
    best, chosen = 0.0, ","
    for d in (",", ";", "\t", "|"):
        counts = [len(r) for r in _split(text, d, '"')]
        if not counts:
            continue
        width, freq = Counter(counts).most_common(1)[0]
        score = freq / len(counts) if width > 1 else 0.0
        if score > best:
            best, chosen = score, d
    return chosen


def _vote_quotes(text: str, delimiter: str) -> bool:
    """CleverCSV leaves quoting off when no value needs it; quoting stays on when a double quote
    opens a field, so a later quoted value is read whole."""
    return f'{delimiter}"' in text or text.startswith('"') or '\n"' in text


def _space_before_quotes(text: str, delimiter: str, quote: str) -> bool:
    """True when values are written `a, "b"`: the quote follows a space after the delimiter at
    least as often as it follows the delimiter directly."""
    if not quote or delimiter == " ":
        return False
    spaced = text.count(f"{delimiter} {quote}")
    return spaced > 0 and spaced >= text.count(f"{delimiter}{quote}")


def _split(text: str, delimiter: str, quote: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quote or None))
    except csv.Error:
        return []


def parse_lines(lines: list[str], dialect: Dialect) -> list[tuple[int, list[str]]]:
    """(0-based line index where the record starts, cells) for the given physical lines."""
    reader = csv.reader(iter(lines), **dialect.reader_kwargs())
    out: list[tuple[int, list[str]]] = []
    start = 0
    try:
        for cells in reader:
            out.append((start, [c.rstrip("\r\n") for c in cells]))
            start = reader.line_num
    except csv.Error:
        pass
    return out
