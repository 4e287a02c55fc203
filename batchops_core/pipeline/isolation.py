"""A stage runs in a process leased to its upload; that process's death fails only that upload.

The runner calls `run_stage_isolated` instead of the pool directly. A pool process that dies
under a stage (calamine aborting on an allocation, the kernel's out-of-memory killer, the
`RLIMIT_AS` cap, a segfault in a C extension, an operator's `kill -9`) becomes a `StageError`
with code PARSE_CRASHED and a sentence, so the upload fails as a *data* incident through the
normal path — never as a transient error retried into the next crash, and never for others.

`run_stages_isolated` runs several stages of a small upload in one call of its process; its
death is then pinned on the stage the process was in, after the stages it finished (read back from
the progress file `stages.run_stages` keeps), so the upload fails exactly as it would stage by
stage.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

from batchops_core.enums import Stage
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.limits import PARSE_CRASHED, ParseLimits
from batchops_core.pipeline.pool import WorkerDied, run_in_pool
from batchops_core.pipeline.stages import (
    PROGRESS,
    StageContext,
    StageOutcome,
    StagesResult,
    read_progress,
    run_stage,
    run_stages,
)

_CAUSES = {
    signal.SIGKILL: "was killed (SIGKILL: the kernel's out-of-memory killer or an operator)",
    signal.SIGABRT: "aborted (SIGABRT: a parser library could not allocate the memory this "
    "file asks for)",
    signal.SIGSEGV: "crashed (SIGSEGV in a parser library)",
    signal.SIGBUS: "crashed (SIGBUS in a parser library)",
}


def crash_error(stage: Stage, died: WorkerDied, filename: str, limits: ParseLimits) -> StageError:
    """The incident sentence for an upload whose process died during `stage`."""
    sig = died.signal
    cause = _CAUSES.get(sig, died.how) if sig is not None else died.how
    cap = f"{limits.memory_mb:,} MB" if limits.memory_mb > 0 else "no cap"
    return StageError(
        stage,
        PARSE_CRASHED,
        f"the process handling {filename} during {stage.value} {cause}; memory cap {cap}. "
        "Only this upload failed; the process was replaced",
        hint="The file is probably malformed, or far larger inside than it looks: open it and "
        "save it again, or send a CSV export. A real file this large needs "
        "[pipeline].parse_memory_mb raised.",
        details={"exitcode": died.exitcode, "signal": sig.name if sig else None, "pid": died.pid},
    )


async def run_stage_isolated(stage: Stage, ctx: StageContext, limits: ParseLimits) -> StageOutcome:
    """Run one stage of one upload in its own leased pool process, under `limits`."""
    try:
        return await run_in_pool(
            run_stage, stage, ctx, limits=limits, label=f"upload {ctx.upload_id} {stage.value}"
        )
    except WorkerDied as died:
        raise crash_error(stage, died, ctx.filename, limits) from None


async def run_stages_isolated(
    stages: Sequence[Stage], ctx: StageContext, limits: ParseLimits
) -> StagesResult:
    """Run `stages` of one upload in order in one call of its leased pool process, under `limits`.

    A `StageError` and the death of the process both come back as the result's error, after the
    outcomes of the stages that finished; a cancelled call kills the process, as stage by stage.
    """
    stages = tuple(stages)
    (ctx.work / PROGRESS).unlink(missing_ok=True)  # an earlier attempt's, never to be read as ours
    try:
        return await run_in_pool(
            run_stages,
            stages,
            ctx,
            limits=limits,
            label=f"upload {ctx.upload_id} {stages[0].value}",
        )
    except WorkerDied as died:
        done, running = read_progress(ctx)
        stage = running or stages[min(len(done), len(stages) - 1)]
        return StagesResult(done, crash_error(stage, died, ctx.filename, limits))
