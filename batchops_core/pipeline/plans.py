"""Stage 3: the operator's processing plan (`Upload.process_mode` + `process_config`).

A plan is checked twice: its shape before any data is read (`parse_plan`, so a typo fails fast)
and against the dataset's columns and types (`check_plan`). Every refusal names the exact field,
e.g. `process_config.rules[1].operator`, so the operator can fix the plan without guessing.
Regex rules run on RE2 (`regex.py`, linear time); a pattern it cannot run (a backreference, a
lookaround) is refused when the plan is submitted, naming the construct.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from batchops_core.enums import ProcessMode, Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline import regex
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.standardize import ROW
from batchops_core.pipeline.stats import numeric_columns, profile_table, stats_table

T = Stage.TRANSFORM
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "regex", "is_empty")
COMMON_KEYS = {"read_options", "remediation", "key", "title", "note"}
"""Keys any mode accepts: read overrides, the auto-remediation history, the key column."""
MODE_KEYS = {
    ProcessMode.TRANSFORM: {"group_by", "columns", "grade_scale"},
    ProcessMode.APPEND: {"records"},
    ProcessMode.DELETE: {"rules", "combine"},
    ProcessMode.CUSTOM: {"instruction"},
}


@dataclass(frozen=True)
class Plan:
    mode: ProcessMode
    config: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.mode == ProcessMode.TRANSFORM:
            group = self.config.get("group_by")
            return "transform: summary statistics" + (f" by {group}" if group else "")
        if self.mode == ProcessMode.APPEND:
            return f"append: {len(self.config.get('records', []))} records"
        if self.mode == ProcessMode.DELETE:
            rules = self.config.get("rules", [])
            return f"delete: {len(rules)} rules combined with {self.config.get('combine', 'all')}"
        return (
            "custom: " + str(self.config.get("instruction") or self.config.get("note") or "")[:80]
        )


def invalid(field_path: str, problem: str, hint: str = "") -> StageError:
    return StageError(
        T,
        E.PLAN_INVALID,
        f"{field_path}: {problem}",
        hint=hint or "Correct the processing plan and retry the upload.",
        column=None,
        details={"field": field_path},
    )


def parse_plan(mode: str | ProcessMode | None, config: dict[str, Any] | str | None) -> Plan:
    """Check the plan's shape (no data needed)."""
    try:
        plan_mode = ProcessMode(mode or ProcessMode.TRANSFORM)
    except ValueError:
        raise invalid(
            "process_mode",
            f"unknown mode {mode!r}; use one of " + ", ".join(m.value for m in ProcessMode),
        ) from None
    if isinstance(config, str):
        try:
            config = json.loads(config) if config.strip() else {}
        except json.JSONDecodeError as exc:
            raise invalid(
                "process_config",
                f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            ) from None
    config = dict(config or {})
    if not isinstance(config, dict):
        raise invalid("process_config", "must be a JSON object")
    unknown = sorted(set(config) - MODE_KEYS[plan_mode] - COMMON_KEYS)
    if unknown:
        allowed = ", ".join(sorted(MODE_KEYS[plan_mode]))
        raise invalid(
            f"process_config.{unknown[0]}",
            f"unknown setting for mode {plan_mode.value} (allowed: {allowed})",
        )
    _SHAPE[plan_mode](config)
    return Plan(plan_mode, config)


def _shape_transform(cfg: dict[str, Any]) -> None:
    if "group_by" in cfg and cfg["group_by"] is not None and not isinstance(cfg["group_by"], str):
        raise invalid("process_config.group_by", "must be a column name")
    if "columns" in cfg and not (
        isinstance(cfg["columns"], list) and all(isinstance(c, str) for c in cfg["columns"])
    ):
        raise invalid("process_config.columns", "must be a list of column names")
    scale = cfg.get("grade_scale")
    if scale is not None:
        if not isinstance(scale, dict) or not scale:
            raise invalid("process_config.grade_scale", 'must be an object like {"A": 90, "B": 75}')
        for band, minimum in scale.items():
            if isinstance(minimum, bool) or not isinstance(minimum, int | float):
                raise invalid(f"process_config.grade_scale.{band}", "minimum must be a number")


def _shape_append(cfg: dict[str, Any]) -> None:
    records = cfg.get("records")
    if not isinstance(records, list) or not records:
        raise invalid("process_config.records", "must be a non-empty list of objects")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise invalid(f"process_config.records[{i}]", "must be an object of column: value")


def _shape_delete(cfg: dict[str, Any]) -> None:
    rules = cfg.get("rules")
    if not isinstance(rules, list) or not rules:
        raise invalid(
            "process_config.rules", "must be a non-empty list of {column, operator, value}"
        )
    if cfg.get("combine", "all") not in ("all", "any"):
        raise invalid(
            "process_config.combine", f"must be 'all' or 'any', got {cfg.get('combine')!r}"
        )
    for i, rule in enumerate(rules):
        where = f"process_config.rules[{i}]"
        if not isinstance(rule, dict):
            raise invalid(where, "must be an object {column, operator, value}")
        extra = sorted(set(rule) - {"column", "operator", "op", "value"})
        if extra:
            raise invalid(f"{where}.{extra[0]}", "unknown key (use column, operator, value)")
        if not isinstance(rule.get("column"), str) or not rule["column"]:
            raise invalid(f"{where}.column", "is required")
        op = rule.get("operator", rule.get("op"))
        if op not in OPERATORS:
            raise invalid(
                f"{where}.operator", f"unknown operator {op!r}; use one of " + " ".join(OPERATORS)
            )
        if op != "is_empty" and "value" not in rule:
            raise invalid(f"{where}.value", f"is required for operator {op}")
        if op == "in" and not isinstance(rule["value"], list):
            raise invalid(f"{where}.value", "must be a list for operator in")
        if op == "regex":
            try:
                regex.check(str(rule["value"]))
            except regex.UnsupportedPattern as exc:
                raise invalid(
                    f"{where}.value",
                    str(exc),
                    hint="Regex rules run on RE2, which matches in time linear in the text: "
                    "no backreferences (\\1), lookarounds ((?=…), (?<=…)) or atomic groups. "
                    "Correct the rule and submit the plan again.",
                ) from None


def _shape_custom(cfg: dict[str, Any]) -> None:
    text = cfg.get("instruction", cfg.get("note"))
    if not isinstance(text, str) or not text.strip():
        raise invalid("process_config.instruction", "is required: the instruction for this run")


_SHAPE = {
    ProcessMode.TRANSFORM: _shape_transform,
    ProcessMode.APPEND: _shape_append,
    ProcessMode.DELETE: _shape_delete,
    ProcessMode.CUSTOM: _shape_custom,
}


def _column(frame: pd.DataFrame, name: str, where: str) -> str:
    from batchops_core.pipeline.columns import normalize_name

    if name in frame.columns and name != ROW:
        return name
    normalized = normalize_name(name)
    if normalized in frame.columns:
        return normalized
    cols = ", ".join(c for c in frame.columns if c != ROW)
    raise invalid(where, f"unknown column {name!r}; columns are: {cols}")


@dataclass
class Applied:
    frame: pd.DataFrame
    schema: dict[str, str]
    log: list[str]
    output: str
    """"summary" when the published table is the statistics table, else "dataset"."""
    extra: dict[str, Any] = field(default_factory=dict)


def apply_plan(plan: Plan, frame: pd.DataFrame, schema: dict[str, str]) -> Applied:
    if plan.mode == ProcessMode.TRANSFORM:
        return _transform(plan.config, frame, schema)
    if plan.mode == ProcessMode.APPEND:
        return _append(plan.config, frame, schema)
    if plan.mode == ProcessMode.DELETE:
        return _delete(plan.config, frame, schema)
    note = str(plan.config.get("instruction") or plan.config.get("note"))
    return Applied(
        frame,
        schema,
        [f"instruction: {note}", "dataset unchanged"],
        "dataset",
        {"instruction": note},
    )


def _transform(cfg: dict[str, Any], frame: pd.DataFrame, schema: dict[str, str]) -> Applied:
    group = (
        _column(frame, cfg["group_by"], "process_config.group_by") if cfg.get("group_by") else None
    )
    numeric = numeric_columns(frame, schema)
    if cfg.get("columns"):
        cols = [
            _column(frame, c, f"process_config.columns[{i}]") for i, c in enumerate(cfg["columns"])
        ]
        for i, c in enumerate(cols):
            if c not in numeric:
                raise invalid(
                    f"process_config.columns[{i}]", f"column {c!r} is {schema.get(c)}, not numeric"
                )
    else:
        cols = [c for c in numeric if c != group]
    scale = sorted(
        ((str(b), float(m)) for b, m in (cfg.get("grade_scale") or {}).items()),
        key=lambda bm: -bm[1],
    )
    if cols:
        table = stats_table(frame, cols, group_by=group, scale=scale or None)
        log = [
            f"summary of {len(cols)} numeric columns" + (f" grouped by {group}" if group else "")
        ]
    else:
        others = [c for c in frame.columns if c != ROW]
        table = profile_table(frame, others, schema)
        log = [f"no numeric columns: summary is a profile of {len(others)} columns"]
    text_cols = {"column", "type", "most_common", group}
    table_schema = {c: ("text" if c in text_cols else "number") for c in table.columns}
    if scale:
        log.append("grade bands: " + ", ".join(f"{b} ≥ {m:g}" for b, m in scale))
    return Applied(table, table_schema, log, "summary", {"group_by": group, "columns": cols})


def _coerce(value: Any, kind: str, where: str) -> Any:
    if value is None:
        return None
    if kind in {"integer", "number"}:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise invalid(where, f"expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise invalid(where, f"expected a number, got {value!r}") from None
        if kind == "integer" and not number.is_integer():
            raise invalid(where, f"expected a whole number, got {value!r}")
        return int(number) if kind == "integer" else number
    if kind in {"date", "datetime"}:
        try:
            return pd.Timestamp(str(value))
        except ValueError:
            raise invalid(where, f"expected a date like 2026-09-01, got {value!r}") from None
    if isinstance(value, dict | list):
        raise invalid(where, f"expected a text value, got {type(value).__name__}")
    return str(value)


def _append(cfg: dict[str, Any], frame: pd.DataFrame, schema: dict[str, str]) -> Applied:
    columns = [c for c in frame.columns if c != ROW]
    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(cfg["records"]):
        row: dict[str, Any] = {}
        for key, value in rec.items():
            col = _column(frame, key, f"process_config.records[{i}].{key}")
            row[col] = _coerce(value, schema.get(col, "text"), f"process_config.records[{i}].{key}")
        rows.append(row)
    added = pd.DataFrame(rows, columns=columns)
    for col in columns:
        added[col] = (
            added[col].astype(frame[col].dtype) if schema.get(col) != "text" else added[col]
        )
    added[ROW] = 0
    out = pd.concat([frame, added], ignore_index=True)
    return Applied(
        out, schema, [f"records appended: {len(rows)}"], "dataset", {"appended": len(rows)}
    )


def _rule_mask(
    frame: pd.DataFrame, schema: dict[str, str], rule: dict[str, Any], where: str
) -> np.ndarray:
    col = _column(frame, rule["column"], f"{where}.column")
    op = rule.get("operator", rule.get("op"))
    series = frame[col]
    kind = schema.get(col, "text")
    if op == "is_empty":
        empty = series.isna()
        if kind == "text":
            empty = empty | (series.astype("str").str.strip() == "")
        return empty.to_numpy(dtype=bool)
    value = rule["value"]
    if op == "regex":
        return regex.mask(str(value), series.astype("str"))
    if op == "contains":
        text = series.astype("str")
        hit = text.str.contains(str(value), regex=False)
        return hit.fillna(False).to_numpy(dtype=bool)
    if op == "in":
        values = [_coerce(v, kind, f"{where}.value[{j}]") for j, v in enumerate(value)]
        return series.isin(values).to_numpy(dtype=bool)
    if op in {"lt", "le", "gt", "ge"} and kind == "text":
        raise invalid(f"{where}.operator", f"{op} needs a numeric or date column; {col!r} is text")
    target = _coerce(value, kind, f"{where}.value")
    compare = {
        "eq": series.eq,
        "ne": series.ne,
        "lt": series.lt,
        "le": series.le,
        "gt": series.gt,
        "ge": series.ge,
    }[op]
    result = compare(target)
    if op == "ne":
        return result.fillna(True).to_numpy(dtype=bool)
    return result.fillna(False).to_numpy(dtype=bool)


def _delete(cfg: dict[str, Any], frame: pd.DataFrame, schema: dict[str, str]) -> Applied:
    combine = cfg.get("combine", "all")
    masks: list[np.ndarray] = []
    log: list[str] = []
    for i, rule in enumerate(cfg["rules"]):
        mask = _rule_mask(frame, schema, rule, f"process_config.rules[{i}]")
        masks.append(mask)
        op = rule.get("operator", rule.get("op"))
        shown = "" if op == "is_empty" else f" {rule.get('value')!r}"
        log.append(f"rule {i + 1} ({rule['column']} {op}{shown}) matches {int(mask.sum())} rows")
    combined = np.logical_and.reduce(masks) if combine == "all" else np.logical_or.reduce(masks)
    removed = int(combined.sum())
    out = frame[~combined].reset_index(drop=True) if removed else frame
    log.append(f"rows removed ({combine} rules): {removed}; rows kept: {len(out)}")
    return Applied(out, schema, log, "dataset", {"removed": removed})
