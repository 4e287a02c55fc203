"""Column names: normalization to lower snake case, aliases, and de-duplication.

Every loader hands raw header cells here, so a CSV, a spreadsheet and a PDF with the same table end
up with the same column names. Aliases are compared after normalization on both sides, so
`"Roll No"`, `"roll_no"` and `"ROLL-NO"` in configuration all mean the same thing — the incident
auto-remediation can pass either the raw header or the normalized one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_NON_WORD = re.compile(r"[^0-9a-z]+")

DEFAULT_ALIASES: dict[str, str] = {
    "Roll No": "student_id",
    "Roll Number": "student_id",
    "Student ID": "student_id",
    "Student Id": "student_id",
    "StudentID": "student_id",
    "Student No": "student_id",
    "Student Number": "student_id",
    "Adm. No.": "student_id",
    "Adm No": "student_id",
    "Admission No": "student_id",
    "Admission Number": "student_id",
    "Learner ID": "student_id",
    "Pupil ID": "student_id",
    "Enrollment No": "student_id",
    "Enrolment No": "student_id",
    "Registration No": "student_id",
    "Reg No": "student_id",
}
"""Built-in header aliases; `[pipeline.column_aliases]` and per-upload read options add to them."""


def normalize_name(raw: object) -> str:
    """Trim, fold accents, lower-case and snake-case one header cell ("Mean Scale\\nScore" →
    "mean_scale_score"); percent signs become "pct" so "L1 %" and "L1" stay distinct."""
    text = "" if raw is None else str(raw)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = text.replace("%", " pct ").replace("#", " no ").replace("&", " and ")
    return _NON_WORD.sub("_", text.strip().lower()).strip("_")


def build_alias_map(*layers: Mapping[str, str] | None) -> dict[str, str]:
    """Merge alias layers (later wins), normalized on both sides."""
    merged: dict[str, str] = {}
    for layer in layers:
        for src, dst in (layer or {}).items():
            key, value = normalize_name(src), normalize_name(dst)
            if key and value:
                merged[key] = value
    return merged


def normalize_columns(
    raw: Iterable[object], aliases: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """Return (names, log lines): normalized, aliased, blanks named `column_<n>`, repeats suffixed.

    An alias whose target already exists as a real column is not applied, so an alias can never
    silently merge two columns.
    """
    names = [normalize_name(r) for r in raw]
    log: list[str] = []
    present = set(names)
    for i, name in enumerate(names):
        target = aliases.get(name)
        if target and target != name and target not in present:
            log.append(f"column alias: {name} -> {target}")
            names[i] = target
            present.add(target)
    seen: dict[str, int] = {}
    out: list[str] = []
    for i, name in enumerate(names):
        base = name or f"column_{i + 1}"
        count = seen.get(base, 0)
        seen[base] = count + 1
        final = base if count == 0 else f"{base}_{count + 1}"
        if count:
            log.append(f"repeated column name {base!r} renamed to {final!r}")
        out.append(final)
    return out, log
