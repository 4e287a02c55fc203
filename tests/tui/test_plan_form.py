"""The Intake plan forms turn text into the config the pipeline's parse_plan accepts."""

from __future__ import annotations

import pytest

from batchops_core.enums import ProcessMode
from batchops_core.errors import ValidationFailed
from batchops_core.pipeline.plans import parse_plan
from batchops_tui.formatting import duration, stage_bar
from batchops_tui.widgets.intake.plan_form import build_config


@pytest.mark.parametrize(
    ("mode", "fields"),
    [
        (
            ProcessMode.TRANSFORM,
            {"group_by": "class", "columns": "g1, g2", "grade_scale": "A=90, B=75"},
        ),
        (ProcessMode.APPEND, {"records": "student_id=S9; score=80\nstudent_id=S10; score=70"}),
        (ProcessMode.DELETE, {"rules": "score lt 35\nname is_empty", "combine": "any"}),
        (ProcessMode.CUSTOM, {"instruction": "rank by absences"}),
    ],
)
def test_each_plan_form_builds_a_config_the_pipeline_accepts(mode, fields) -> None:
    config = build_config(mode, fields)
    assert parse_plan(mode, config).mode is mode


@pytest.mark.parametrize(
    ("mode", "fields", "field"),
    [
        (ProcessMode.APPEND, {"records": "student_id S9"}, "records line 1"),
        (ProcessMode.DELETE, {"rules": "score"}, "rules line 1"),
        (ProcessMode.CUSTOM, {"instruction": "  "}, "instruction"),
        (ProcessMode.TRANSFORM, {"grade_scale": "A=ninety"}, "grade scale"),
    ],
)
def test_bad_plan_input_names_the_field(mode, fields, field) -> None:
    with pytest.raises(ValidationFailed, match=field):
        build_config(mode, fields)


def test_text_helpers() -> None:
    assert stage_bar("transform") == "██░░░" and stage_bar(None, done=True) == "█████"
    assert duration(340, ms=True) == "340ms" and duration(3725.0) == "1h 02m"
