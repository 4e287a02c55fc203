"""The bridge between storage and the stages: a local scratch copy in, stored reports out.

Stages read and write plain local files (they run in pool processes, on any host). Before the
first stage the upload's object is made local — on the local backend the stored file itself,
otherwise a copy in this host's `<data_dir>/scratch/`, streamed and checked against the sha256
recorded at intake. After publish, the reports are put in storage under `exports/<id>/` and the
step's result names their keys; the runner then commits them, so a crash in between leaves
objects nobody names (re-put by the next attempt, or swept), never a key without its object.

A storage failure is an operator's problem, never the file's: its incident says to check the
store, not to upload again.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from batchops_core.enums import Stage
from batchops_core.infra.config import Settings
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.stages import StageContext, StageOutcome, export_dir, work_dir
from batchops_core.storage import (
    ChecksumMismatch,
    ObjectMissing,
    StorageError,
    export_key,
    export_prefix,
    open_store,
)

OUTPUTS = ("report_csv", "report_pdf", "fixlist_csv", "fixlist_xlsx")
"""The publish result's fields that name files; they hold keys once stored."""


def _storage_error(stage: Stage, key: str, exc: StorageError) -> StageError:
    if isinstance(exc, ObjectMissing):
        return StageError(
            stage,
            E.STORAGE_MISSING,
            f"the stored file {key} is missing from storage: {exc}",
            hint="This is not the file's fault: check that every host has the same [storage] "
            "url (batchops doctor), or restore the object from a backup (batchops restore), "
            "then retry the incident.",
            details={"key": key},
        )
    if isinstance(exc, ChecksumMismatch):
        return StageError(
            stage,
            E.STORAGE_CORRUPT,
            str(exc),
            hint="The stored object changed after intake: restore it from a backup, then retry.",
            details={"key": key},
        )
    return StageError(
        stage,
        E.STORAGE_UNAVAILABLE,
        f"storage could not be reached for {key}: {exc}",
        hint=(exc.hint or "Check the object store (batchops doctor)") + " Then retry the incident.",
        details={"key": key},
    )


async def materialize(settings: Settings, ctx: StageContext) -> StageContext:
    """`ctx` with `source_path` set to a local file holding the upload's stored bytes."""
    if not ctx.source_key:
        return ctx
    try:
        local = await open_store(settings).local_copy(
            ctx.source_key, Path(ctx.work_dir) / "source", sha256=ctx.source_sha256 or None
        )
    except StorageError as exc:
        raise _storage_error(Stage.STANDARDIZE, ctx.source_key, exc) from None
    return dataclasses.replace(ctx, source_path=str(local))


async def publish(settings: Settings, ctx: StageContext, outcome: StageOutcome) -> StageOutcome:
    """Put the publish stage's local files in storage; the outcome then names their keys.

    A file this attempt did not write (no fix-list this time) has its key of an earlier attempt
    removed, so a report never shows a stale fix-list."""
    store = open_store(settings)
    data = dict(outcome.data)
    try:
        for field in OUTPUTS:
            value = data.get(field)
            if value:
                path = Path(value)
                stored = await store.put_file(export_key(ctx.upload_id, path.name), path, move=True)
                data[field] = stored.key
        kept = {data[f] for f in OUTPUTS if data.get(f)}
        async for info in store.list(export_prefix(ctx.upload_id)):
            if info.key not in kept:
                await store.delete(info.key)
    except StorageError as exc:
        raise _storage_error(Stage.PUBLISH, export_prefix(ctx.upload_id), exc) from None
    return dataclasses.replace(outcome, data=data)


def clear(settings: Settings, upload_id: int) -> None:
    """Drop this host's scratch of a finished upload (its results are in storage now)."""
    shutil.rmtree(work_dir(settings, upload_id), ignore_errors=True)
    shutil.rmtree(export_dir(settings, upload_id), ignore_errors=True)
