"""Operator regexes run in linear time: what RE2 cannot run is refused when it is submitted."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from batchops_core.enums import Remediation, Severity, Stage
from batchops_core.errors import ValidationFailed
from batchops_core.known_errors import KnownErrorInfo, best_match, validate_pattern
from batchops_core.pipeline import regex
from batchops_core.pipeline.errors import PLAN_INVALID, StageError
from batchops_core.pipeline.plans import apply_plan, parse_plan

BACKTRACKING = r"^(a+)+(x)?\2$"


def delete_plan(pattern: str) -> dict[str, object]:
    return {"rules": [{"column": "name", "operator": "regex", "value": pattern}]}


def test_the_backtracking_delete_rule_is_refused_at_plan_submission() -> None:
    with pytest.raises(StageError) as caught:
        parse_plan("delete", delete_plan(BACKTRACKING))
    err = caught.value
    assert err.code == PLAN_INVALID and err.details["field"] == "process_config.rules[0].value"
    assert "uses a backreference (\\2)" in err.message and "RE2" in err.message


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"(a)\1", "a backreference (\\1)"),
        (r"(?P<n>a)(?P=n)", "a named backreference ((?P="),
        (r"x(?=y)", "a lookahead ((?=)"),
        (r"x(?!y)", "a negative lookahead ((?!)"),
        (r"(?<=x)y", "a lookbehind ((?<=)"),
        (r"(?<!x)y", "a negative lookbehind ((?<!)"),
        (r"(?>a+)b", "an atomic group ((?>)"),
        (r"a++b", "a possessive quantifier (++)"),
        (r"end\Z", "end-of-text anchor"),
    ],
)
def test_each_construct_re2_cannot_run_is_named(pattern: str, construct: str) -> None:
    with pytest.raises(regex.UnsupportedPattern) as caught:
        regex.check(pattern)
    assert construct in str(caught.value)


@pytest.mark.parametrize("pattern", [r"[(?=]x", r"\\1", r"(?i)^S\d{3}$", r"(?P<id>S\d+)", "a|b"])
def test_look_alikes_and_ordinary_patterns_are_accepted(pattern: str) -> None:
    regex.check(pattern)


def test_a_pattern_that_is_not_a_regex_gets_the_engines_reason() -> None:
    with pytest.raises(regex.UnsupportedPattern) as caught:
        regex.check("([unclosed")
    assert "RE2" in str(caught.value) and "missing" in str(caught.value)


def test_a_nested_quantifier_runs_in_linear_time_on_the_rule_path() -> None:
    """`^(a+)+$` is catastrophic for a backtracking engine on "aaa…b"; RE2 does not care."""
    frame = pd.DataFrame({"name": ["a" * 5000 + "b"] * 200 + ["aaaa"], "__row__": range(201)})
    plan = parse_plan("delete", delete_plan(r"^(a+)+$"))
    started = time.perf_counter()
    applied = apply_plan(plan, frame, {"name": "text"})
    assert time.perf_counter() - started < 2.0
    assert applied.extra["removed"] == 1 and len(applied.frame) == 200


def test_delete_regex_matches_like_search_and_skips_missing_cells() -> None:
    frame = pd.DataFrame({"name": ["Ann", None, "Bob", "ann"], "__row__": range(4)})
    applied = apply_plan(parse_plan("delete", delete_plan("(?i)^an")), frame, {"name": "text"})
    kept = applied.frame["name"]
    assert len(kept) == 2 and pd.isna(kept.iloc[0]) and kept.iloc[1] == "Bob"


def test_known_error_patterns_with_backreferences_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_pattern(r"^(CSV_\w+): .*\1")
    assert "backreference (\\1)" in str(caught.value)
    validate_pattern(r"^CSV_(DELIMITER|SINGLE_COLUMN)")


def test_a_stored_backtracking_known_error_never_matches_and_others_still_do() -> None:
    def known(i: int, pattern: str) -> KnownErrorInfo:
        return KnownErrorInfo(
            id=i,
            name=f"k{i}",
            pattern=pattern,
            stage=None,
            severity=Severity.MEDIUM,
            category="data",
            root_cause="",
            fix="",
            remediation=Remediation.NONE,
        )

    rows = [known(1, r"^(a+)+(x)?\2$"), known(2, r"^CSV_DELIMITER")]
    message = "a" * 30
    started = time.perf_counter()
    assert best_match(rows, "CSV_DELIMITER", message, Stage.STANDARDIZE) == rows[1]
    assert best_match(rows[:1], "a" * 30, "", None) is None
    assert time.perf_counter() - started < 1.0
