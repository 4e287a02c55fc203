"""Operator-written regexes (delete rules, known-error patterns) run on RE2, in linear time.

Python's `re` (and pandas `str.contains`, which uses it) backtracks: `^(a+)+(x)?\\2$` on a
25-character cell takes seconds, and twice as long per extra character, holding a pool process far
past the job timeout. RE2 guarantees time linear in the text, by refusing the constructs that
need backtracking: backreferences, lookarounds, atomic groups, possessive quantifiers,
conditionals.

Engine: pyarrow's `pc.match_substring_regex`, which is RE2 compiled into Arrow. Chosen over the
`google-re2` package because pyarrow is already a dependency and already loaded in every warm pool
process, so there is no new wheel to build or pin, and a delete rule runs over a whole Arrow column
in one call (no per-cell Python). The same function checks a pattern when it is submitted and
matches it later, so a pattern accepted at submission is exactly one the engine runs.

A pattern the engine cannot run is refused with `UnsupportedPattern`, naming the construct
("a backreference (\\2)"); the caller turns that into its own error (PLAN_INVALID naming the
rule's field, or ValidationFailed for a known error). pyarrow is imported on first use: the TUI
imports the known-error module before its first frame.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ENGINE = "RE2"
_GROUP_CONSTRUCTS = (
    ("P=", "a named backreference"),
    ("<=", "a lookbehind"),
    ("<!", "a negative lookbehind"),
    ("=", "a lookahead"),
    ("!", "a negative lookahead"),
    (">", "an atomic group"),
    ("(", "a conditional group"),
)


class UnsupportedPattern(ValueError):
    """A regex the linear-time engine cannot run (or that is not a regex at all)."""

    def __init__(self, pattern: str, problem: str) -> None:
        self.pattern = pattern
        self.problem = problem
        super().__init__(f"the regex {pattern!r} {problem}")


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, str] | None:
    nxt = pattern[i + 1 : i + 2]
    if in_class or not nxt:
        return None
    if nxt in "123456789":
        return pattern[i : i + 2], "a backreference"
    if nxt == "k" and pattern[i + 2 : i + 3] in ("<", "{", "'"):
        return pattern[i : i + 3] + "…", "a named backreference"
    if nxt == "Z":
        return "\\Z", "Python's end-of-text anchor (write \\z or $)"
    return None


def _class_end(pattern: str, i: int) -> int:
    """Index just past the opening of a character class at `i` (`[`, `[^`, and a leading `]`)."""
    i += 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        i += 1
    return i


def find_construct(pattern: str) -> tuple[str, str] | None:
    """The first construct RE2 refuses, as (text, what it is), or None."""
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            found = _escape(pattern, i, in_class)
            if found:
                return found
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            i += 1
            continue
        if ch == "[":
            in_class = True
            i = _class_end(pattern, i)
            continue
        if ch == "(" and pattern.startswith("?", i + 1):
            for prefix, what in _GROUP_CONSTRUCTS:
                if pattern.startswith(prefix, i + 2):
                    return pattern[i : i + 2 + len(prefix)], what
        if ch in "*+?}" and pattern.startswith("+", i + 1):
            return pattern[i : i + 2], "a possessive quantifier"
        i += 1
    return None


@lru_cache(maxsize=512)
def _problem(pattern: str) -> str | None:
    found = find_construct(pattern)
    if found:
        text, what = found
        return (
            f"uses {what} ({text}), which the linear-time regex engine ({ENGINE}) cannot run; "
            "rewrite the pattern without it"
        )
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""], type=pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).removeprefix("Invalid regular expression: ")
        return f"is not a regex the engine ({ENGINE}) accepts: {reason}"
    return None


def check(pattern: str) -> None:
    """Raise UnsupportedPattern unless `pattern` runs on RE2 (cached per pattern)."""
    problem = _problem(pattern)
    if problem:
        raise UnsupportedPattern(pattern, problem)


def search(pattern: str, text: str) -> bool:
    """True when `pattern` matches anywhere in `text` (like `re.search`, in linear time)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    check(pattern)
    hit = pc.match_substring_regex(pa.array([text], type=pa.string()), pattern)[0]
    return bool(hit.as_py())


def mask(pattern: str, values: Any) -> np.ndarray:
    """Boolean mask of the cells (a pandas Series or Arrow array of text) that `pattern` matches
    anywhere; missing cells never match."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    check(pattern)
    array = (
        values
        if isinstance(values, pa.Array | pa.ChunkedArray)
        else pa.array(values, from_pandas=True)
    )
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        array = pc.cast(array, pa.string())
    hits = pc.match_substring_regex(array, pattern).fill_null(False)
    return np.asarray(hits.to_numpy(zero_copy_only=False), dtype=bool)
