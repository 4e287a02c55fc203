"""The processing-plan form of the Intake screen: one small form per plan, turned into the
`process_config` dict the pipeline's `parse_plan` checks (the pipeline's message names the field).
"""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, Input, Label, Select, TextArea

from batchops_core.enums import ProcessMode
from batchops_core.errors import ValidationFailed

PLAN_HELP = {
    ProcessMode.TRANSFORM: "Summary statistics, optionally grouped by a column.",
    ProcessMode.APPEND: "Add records: one per line as column=value; column=value.",
    ProcessMode.DELETE: "Delete rows matching rules: one per line as column operator value.",
    ProcessMode.CUSTOM: "A custom instruction recorded with the run.",
}


def _pairs(line: str, where: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in line.split(";"))):
        if "=" not in part:
            raise ValidationFailed(f"{where}: '{part}' is not column=value.")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _transform(fields: dict[str, str]) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if fields.get("group_by"):
        cfg["group_by"] = fields["group_by"]
    if fields.get("columns"):
        cfg["columns"] = [c.strip() for c in fields["columns"].split(",") if c.strip()]
    if fields.get("grade_scale"):
        scale = _pairs(fields["grade_scale"].replace(",", ";"), "grade scale")
        try:
            cfg["grade_scale"] = {k: float(v) for k, v in scale.items()}
        except ValueError:
            raise ValidationFailed(
                "grade scale: each minimum must be a number, e.g. A=90, B=75."
            ) from None
    return cfg


def _append(fields: dict[str, str]) -> dict[str, Any]:
    lines = [ln for ln in fields.get("records", "").splitlines() if ln.strip()]
    if not lines:
        raise ValidationFailed("records: add at least one line like student_id=S1; score=80.")
    return {"records": [_pairs(ln, f"records line {i + 1}") for i, ln in enumerate(lines)]}


def _delete(fields: dict[str, str]) -> dict[str, Any]:
    rules = []
    for i, line in enumerate(ln for ln in fields.get("rules", "").splitlines() if ln.strip()):
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise ValidationFailed(
                f"rules line {i + 1}: write column operator value, e.g. score lt 35."
            )
        rule: dict[str, Any] = {"column": parts[0], "operator": parts[1]}
        if len(parts) == 3:
            rule["value"] = _value(parts[2])
        rules.append(rule)
    if not rules:
        raise ValidationFailed("rules: add at least one line like score lt 35.")
    return {"rules": rules, "combine": fields.get("combine") or "all"}


def _custom(fields: dict[str, str]) -> dict[str, Any]:
    instruction = fields.get("instruction", "").strip()
    if not instruction:
        raise ValidationFailed("instruction: describe what this custom run should do.")
    return {"instruction": instruction}


BUILDERS = {
    ProcessMode.TRANSFORM: _transform,
    ProcessMode.APPEND: _append,
    ProcessMode.DELETE: _delete,
    ProcessMode.CUSTOM: _custom,
}


def build_config(mode: ProcessMode, fields: dict[str, str]) -> dict[str, Any]:
    """Turn the form's text fields into a plan config; raise ValidationFailed naming the field."""
    return BUILDERS[mode](fields)


class PlanForm(Vertical):
    """Mode selector plus the form of the chosen mode.

    `height: auto`: inside Intake's scrolling form a `Vertical` keeps `height: 1fr` and is
    clipped instead of scrolling (transform's columns and grade scale, delete's all/any never
    showed at 80×24).
    """

    DEFAULT_CSS = """
    PlanForm { height: auto; }
    PlanForm ContentSwitcher, PlanForm ContentSwitcher > Vertical { height: auto; }
    PlanForm TextArea { height: 5; }
    """

    def compose(self) -> ComposeResult:
        yield Select(
            [(m.value, m) for m in ProcessMode],
            value=ProcessMode.TRANSFORM,
            allow_blank=False,
            id="plan-mode",
        )
        yield Label(PLAN_HELP[ProcessMode.TRANSFORM], id="plan-help")
        with ContentSwitcher(initial="plan-transform", id="plan-forms"):
            with Vertical(id="plan-transform"):
                yield Input(placeholder="group by column (optional)", id="p-group_by")
                yield Input(placeholder="columns, comma-separated (optional)", id="p-columns")
                yield Input(
                    placeholder="grade scale, e.g. A=90, B=75 (optional)", id="p-grade_scale"
                )
            with Vertical(id="plan-append"):
                yield TextArea(id="p-records")
            with Vertical(id="plan-delete"):
                yield TextArea(id="p-rules")
                yield Select(
                    [("all rules match", "all"), ("any rule matches", "any")],
                    value="all",
                    allow_blank=False,
                    id="p-combine",
                )
            with Vertical(id="plan-custom"):
                yield TextArea(id="p-instruction")

    @property
    def mode(self) -> ProcessMode:
        value = self.query_one("#plan-mode", Select).value
        return ProcessMode(str(value))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "plan-mode" and event.value is not Select.NULL:
            mode = ProcessMode(str(event.value))
            self.query_one(ContentSwitcher).current = f"plan-{mode.value}"
            self.query_one("#plan-help", Label).update(PLAN_HELP[mode])

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for widget in self.query("#plan-forms Input, #plan-forms TextArea, #plan-forms Select"):
            name = (widget.id or "").removeprefix("p-")
            if isinstance(widget, TextArea):
                out[name] = widget.text
            elif isinstance(widget, Select):
                out[name] = "" if widget.value is Select.NULL else str(widget.value)
            elif isinstance(widget, Input):
                out[name] = widget.value.strip()
        return out

    def reset(self) -> None:
        """Back to the defaults after an upload: a field kept from the last file (a stale
        `group_by`) made every following upload fail PLAN_INVALID."""
        self.query_one("#plan-mode", Select).value = ProcessMode.TRANSFORM
        for widget in self.query("#plan-forms Input").results(Input):
            widget.value = ""
        for area in self.query("#plan-forms TextArea").results(TextArea):
            area.text = ""
        self.query_one("#p-combine", Select).value = "all"

    def config(self) -> tuple[ProcessMode, dict[str, Any]]:
        mode = self.mode
        return mode, build_config(mode, self.values())
