"""Entry point of daemon subprocesses in tests: `batchops-daemon` plus optional test hooks.

`BATCHOPS_TEST_STALL_STAGE=<stage>` makes the pipeline stall (sleep) when it publishes the event
of that stage starting, so a test can SIGKILL the daemon in the middle of an upload. It wraps
`events.publish` and `events.publish_all`, which every state change goes through; nothing else
is changed.
`BATCHOPS_TEST_STALL_SECONDS` bounds that stall (default an hour).
`BATCHOPS_TEST_HOLD_UPLOAD=<id>` makes the worker hold that upload's job before claiming it (the
arq job is in progress, the upload still `queued`): the unclaimed work of a killed worker.
`BATCHOPS_TEST_HOST=<name>` names the worker as if it ran on another host, so that a sweeper must
judge it by its Redis liveness key, not by its PID.
`BATCHOPS_TEST_TASKS=1` registers `sleep_test(seconds)`, a job that is still running when a
test stops the daemon.
"""

from __future__ import annotations

import asyncio
import os
import sys

from batchops_core.infra import events
from batchops_daemon.main import main

STALL = os.environ.get("BATCHOPS_TEST_STALL_STAGE")
STALL_SECONDS = float(os.environ.get("BATCHOPS_TEST_STALL_SECONDS", "3600"))
HOLD = os.environ.get("BATCHOPS_TEST_HOLD_UPLOAD")
HOST = os.environ.get("BATCHOPS_TEST_HOST")

if HOST:
    import socket

    socket.gethostname = lambda: HOST  # type: ignore[assignment]

if HOLD:
    from batchops_core.pipeline import runner

    _run_upload = runner.run_upload

    async def holding_run_upload(db, settings, upload_id, **kwargs):  # type: ignore[no-untyped-def]
        if str(upload_id) == HOLD:
            print(f"holding upload {upload_id}", flush=True)
            await asyncio.sleep(3600)
        return await _run_upload(db, settings, upload_id, **kwargs)

    runner.run_upload = holding_run_upload  # type: ignore[assignment]

if STALL:
    _publish = events.publish

    async def stalling_publish(settings, event):  # type: ignore[no-untyped-def]
        await _publish(settings, event)
        if event.stage == STALL:
            print(f"stalling at {event.type} {event.id} {event.stage}", flush=True)
            await asyncio.sleep(STALL_SECONDS)

    _publish_all = events.publish_all

    async def stalling_publish_all(settings, batch):  # type: ignore[no-untyped-def]
        await _publish_all(settings, batch)
        for event in batch:
            if event.stage == STALL:
                print(f"stalling at {event.type} {event.id} {event.stage}", flush=True)
                await asyncio.sleep(STALL_SECONDS)

    events.publish = stalling_publish  # type: ignore[assignment]
    events.publish_all = stalling_publish_all  # type: ignore[assignment]

if os.environ.get("BATCHOPS_TEST_TASKS"):
    from batchops_core.enums import RunStatus
    from batchops_core.worker import tasks
    from batchops_core.worker.automation import frame as automation
    from batchops_core.worker.automation import registry

    async def sleep_test(run, seconds: float = 3600):  # type: ignore[no-untyped-def]
        """Sleeps: a job still running when the test stops the daemon."""
        run.info(f"sleeping {seconds} s")
        await asyncio.sleep(seconds)
        return automation.Outcome(RunStatus.SUCCEEDED, "woke up")

    registry.automation("Sleeps (tests only).")(sleep_test)
    tasks.TASKS["sleep_test"] = tasks._automation_task("sleep_test")

if __name__ == "__main__":
    sys.exit(main())
