"""Encoding repair that never garbles (issue #10 item 6): per-line decoding, BOM first, and an
automatic fix that does not close an incident while the data still holds U+FFFD."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from batchops_core.enums import IncidentStatus, RunKind, Stage, StepStatus
from batchops_core.infra.db import Database
from batchops_core.models import Incident, IncidentEvent, JobRun, JobRunStep, Upload
from batchops_core.pipeline.decode import REPLACEMENT_NOTE
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.standardize import standardize
from batchops_core.remediation import mark_auto_resolved

Write = Callable[..., Path]


def _mixed(n: int = 5000) -> bytes:
    lines = [f"S{i},José,{i % 90}\n".encode() for i in range(n)]
    lines.insert(n // 2, "S-x,Zoë,1\n".encode("cp1252"))
    return b"student_id,name,score\n" + b"".join(lines)


def test_mixed_file_fails_naming_the_lines_until_a_code_page_is_given(write: Write) -> None:
    with pytest.raises(StageError) as err:
        standardize(write("mixed.csv", _mixed()))
    assert err.value.code == "CSV_ENCODING"
    assert "lines 2502 are not UTF-8" in err.value.message and "cp1252" in err.value.hint


def test_utf8_file_with_one_cp1252_line_keeps_every_utf8_name(write: Write) -> None:
    path = write("mixed.csv", _mixed())
    for options in ({"encoding": "cp1252"}, {"encoding": "latin-1"}):  # what the auto-fix sets
        std = standardize(path, options=options)
        names = std.frame["name"].tolist()
        assert names.count("José") == 5000, options
        assert "Zoë" in names and not any("Ã" in n for n in names)
        assert any("1 lines are not UTF-8" in line for line in std.log)


def test_plain_cp1252_file_is_read_whole_as_cp1252(write: Write) -> None:
    std = standardize(write("legacy.csv", "student_id,name\nS1,Zoë\nS2,José\n".encode("cp1252")))
    assert std.frame["name"].tolist() == ["Zoë", "José"]
    assert "encoding: cp1252" in std.log


def test_bom_wins_over_a_forced_encoding(write: Write) -> None:
    path = write("bom.csv", "\ufeffstudent_id,name\nS1,José\n".encode())
    for forced in ("cp1252", "latin-1", None):
        std = standardize(path, options={"encoding": forced} if forced else {})
        assert list(std.frame.columns)[:2] == ["student_id", "name"], forced
        assert std.frame["name"].tolist() == ["José"]
    std = standardize(path, options={"encoding": "cp1252"})
    assert any("byte-order mark" in line and "cp1252" in line for line in std.log)


def test_utf16_bom_wins_over_a_forced_encoding(write: Write) -> None:
    path = write("bom16.csv", "student_id,name\nS1,José\n".encode("utf-16"))
    std = standardize(path, options={"encoding": "cp1252"})
    assert std.frame["student_id"].tolist() == ["S1"] and std.frame["name"].tolist() == ["José"]


def test_unreadable_bytes_are_named_in_the_log(write: Write) -> None:
    # 0x81 is undefined in cp1252, the code page the auto-fix forces
    data = "student_id,name\nS1,José\n".encode() + b"S2,Zo\x81\n"
    std = standardize(write("bad.csv", data), options={"encoding": "cp1252"})
    assert std.frame["name"].tolist() == ["José", "Zo\ufffd"]
    note = next(line for line in std.log if line.startswith(REPLACEMENT_NOTE))
    assert "1 values" in note and "name (1)" in note
    assert std.meta["replacement_values"] == 1


def test_replacement_characters_already_in_the_file_are_named(write: Write) -> None:
    std = standardize(write("fffd.csv", "student_id,name\nS1,Jos\ufffd\nS2,Ana\n"))
    assert std.meta["replacement_values"] == 1


def test_clean_file_has_no_replacement_note(write: Write) -> None:
    std = standardize(write("ok.csv", "student_id,name\nS1,José\n"))
    assert not any(line.startswith(REPLACEMENT_NOTE) for line in std.log)
    assert "replacement_values" not in std.meta


async def _incident_with_run(db: Database, standardize_log: list[str]) -> int:
    async with db.unit() as session:
        upload = Upload(filename="f.csv", sha256="0" * 64, source="Fees")
        session.add(upload)
        await session.flush()
        run = JobRun(kind=RunKind.PIPELINE, task="process_upload", upload_id=upload.id)
        session.add(run)
        await session.flush()
        session.add(
            JobRunStep(
                run_id=run.id,
                stage=Stage.STANDARDIZE,
                position=0,
                status=StepStatus.SUCCEEDED,
                log=standardize_log,
            )
        )
        incident = Incident(
            title="encoding",
            source="Fees",
            error_code="CSV_ENCODING",
            message="not UTF-8",
            fingerprint=f"enc-{upload.id}",
            upload_id=upload.id,
        )
        session.add(incident)
        await session.flush()
        return int(incident.id)


async def test_auto_fix_does_not_resolve_while_replacement_characters_remain(
    db: Database,
) -> None:
    garbled = await _incident_with_run(
        db, ["encoding: cp1252", f"{REPLACEMENT_NOTE} 3 values hold U+FFFD: name (3)"]
    )
    clean = await _incident_with_run(db, ["encoding: cp1252"])
    async with db.unit() as session:
        await mark_auto_resolved(session, incident_id=garbled, reason="retry succeeded")
        await mark_auto_resolved(session, incident_id=clean, reason="retry succeeded")
    async with db.unit() as session:
        kept = await session.get(Incident, garbled)
        closed = await session.get(Incident, clean)
        assert kept is not None and kept.status is IncidentStatus.OPEN
        assert closed is not None and closed.status is IncidentStatus.RESOLVED
        notes = list(
            await session.scalars(
                select(IncidentEvent.detail).where(IncidentEvent.incident_id == garbled)
            )
        )
        assert any("stays open" in n and "name (3)" in n for n in notes)
