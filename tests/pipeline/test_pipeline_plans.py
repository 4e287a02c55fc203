"""Processing plans: exact-field errors, and what each mode does to the data."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.plans import apply_plan, parse_plan
from tests.pipeline.helpers import Ran

FRAME = pd.DataFrame(
    {
        "student_id": pd.Series(["S1", "S2", "S3", "S4"], dtype="str"),
        "class": pd.Series(["9A", "9A", "9B", None], dtype="str"),
        "score": pd.Series([95, 72, 40, None], dtype="Int64"),
        "__row__": [2, 3, 4, 5],
    }
)
SCHEMA = {"student_id": "text", "class": "text", "score": "integer"}


def plan_error(mode: Any, config: Any) -> StageError:
    with pytest.raises(StageError) as err:
        apply_plan(parse_plan(mode, config), FRAME, SCHEMA)
    assert err.value.code == "PLAN_INVALID"
    return err.value


@pytest.mark.parametrize(
    ("mode", "config", "field"),
    [
        ("shuffle", {}, "process_mode"),
        ("transform", "{not json", "process_config"),
        ("transform", {"group": "class"}, "process_config.group"),
        ("transform", {"group_by": "klass"}, "process_config.group_by"),
        ("transform", {"columns": ["class"]}, "process_config.columns[0]"),
        ("transform", {"grade_scale": {"A": "ninety"}}, "process_config.grade_scale.A"),
        (
            "delete",
            {"rules": [{"column": "score", "operator": "equals", "value": 1}]},
            "process_config.rules[0].operator",
        ),
        (
            "delete",
            {"rules": [{"column": "x", "operator": "eq", "value": 1}]},
            "process_config.rules[0].column",
        ),
        (
            "delete",
            {"rules": [{"column": "class", "operator": "regex", "value": "("}]},
            "process_config.rules[0].value",
        ),
        (
            "delete",
            {"rules": [{"column": "class", "operator": "gt", "value": 1}]},
            "process_config.rules[0].operator",
        ),
        (
            "delete",
            {"rules": [{"column": "score", "operator": "ge", "value": "x"}]},
            "process_config.rules[0].value",
        ),
        (
            "delete",
            {"rules": [{"column": "score", "operator": "in", "value": 3}]},
            "process_config.rules[0].value",
        ),
        ("delete", {"rules": [], "combine": "all"}, "process_config.rules"),
        (
            "delete",
            {"rules": [{"column": "score", "operator": "eq", "value": 1}], "combine": "xor"},
            "process_config.combine",
        ),
        (
            "append",
            {"records": [{"student_id": "S9", "score": "high"}]},
            "process_config.records[0].score",
        ),
        (
            "append",
            {"records": [{"student_id": "S9"}, {"nickname": "x"}]},
            "process_config.records[1].nickname",
        ),
        ("append", {"records": "S9"}, "process_config.records"),
        ("custom", {}, "process_config.instruction"),
    ],
)
def test_invalid_plans_name_the_field(mode: str, config: Any, field: str) -> None:
    err = plan_error(mode, config)
    assert err.message.startswith(f"{field}: "), err.message
    assert err.details["field"] == field


def test_transform_summary_grouped_with_grade_bands() -> None:
    plan = parse_plan("transform", {"group_by": "class", "grade_scale": {"A": 90, "B": 70, "F": 0}})
    out = apply_plan(plan, FRAME, SCHEMA)
    table = out.frame.set_index("class")
    assert table.loc["9A", "count"] == 2 and table.loc["9A", "mean"] == 83.5
    assert (table.loc["9A", "band_A"], table.loc["9A", "band_B"], table.loc["9B", "band_F"]) == (
        1,
        1,
        1,
    )
    assert table.loc["(empty)", "missing"] == 1


def test_delete_rules_any_and_all_with_counts() -> None:
    rules = [
        {"column": "score", "operator": "lt", "value": 50},
        {"column": "class", "operator": "is_empty"},
    ]
    any_ = apply_plan(parse_plan("delete", {"rules": rules, "combine": "any"}), FRAME, SCHEMA)
    assert any_.frame["student_id"].tolist() == ["S1", "S2"]
    assert "rule 1 (score lt 50) matches 1 rows" in any_.log[0]
    assert "rule 2 (class is_empty) matches 1 rows" in any_.log[1]
    all_ = apply_plan(parse_plan("delete", {"rules": rules}), FRAME, SCHEMA)
    assert len(all_.frame) == 4 and all_.extra["removed"] == 0


@pytest.mark.parametrize(
    ("rule", "kept"),
    [
        ({"column": "class", "operator": "eq", "value": "9A"}, ["S3", "S4"]),
        ({"column": "class", "operator": "ne", "value": "9A"}, ["S1", "S2"]),
        ({"column": "score", "operator": "ge", "value": 72}, ["S3", "S4"]),
        ({"column": "score", "operator": "le", "value": 72}, ["S1", "S4"]),
        ({"column": "score", "operator": "gt", "value": 72}, ["S2", "S3", "S4"]),
        ({"column": "student_id", "operator": "in", "value": ["S1", "S4"]}, ["S2", "S3"]),
        ({"column": "class", "operator": "contains", "value": "B"}, ["S1", "S2", "S4"]),
        ({"column": "student_id", "operator": "regex", "value": "^S[12]$"}, ["S3", "S4"]),
    ],
)
def test_delete_operators(rule: dict[str, Any], kept: list[str]) -> None:
    out = apply_plan(parse_plan("delete", {"rules": [rule]}), FRAME, SCHEMA)
    assert out.frame["student_id"].tolist() == kept


def test_append_records_typed() -> None:
    plan = parse_plan(
        "append", {"records": [{"Student ID": "S5", "score": "88"}, {"student_id": "S6"}]}
    )
    out = apply_plan(plan, FRAME, SCHEMA)
    assert out.frame["student_id"].tolist()[-2:] == ["S5", "S6"]
    assert out.frame["score"].iloc[-2] == 88 and pd.isna(out.frame["score"].iloc[-1])


def test_custom_keeps_the_data() -> None:
    out = apply_plan(
        parse_plan("custom", {"instruction": "forward to the principal"}), FRAME, SCHEMA
    )
    assert out.frame is FRAME and out.extra["instruction"] == "forward to the principal"


def test_delete_plan_end_to_end_publishes_the_dataset(
    write: Callable[..., Path], run: Callable[..., Ran]
) -> None:
    body = "student_id,score\n" + "".join(f"S{i},{i}\n" for i in range(1, 21))
    ran = run(
        write("d.csv", body),
        mode="delete",
        config={"rules": [{"column": "score", "operator": "gt", "value": 15}]},
    )
    with open(ran.publish["report_csv"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["student_id"] for r in rows] == [f"S{i}" for i in range(1, 16)]
    assert ran.publish["rows_out"] == 15
    assert any("matches 5 rows" in line for line in ran.log("transform"))
