"""Entry point of daemon subprocesses in tests: `batchops-daemon` plus optional test hooks.

`BATCHOPS_TEST_STALL_STAGE=<stage>` makes the pipeline stall (sleep) when it publishes the event
of that stage starting, so a test can SIGKILL the daemon in the middle of an upload. It wraps
`events.publish`, which every state change goes through; nothing else is changed.
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

if STALL:
    _publish = events.publish

    async def stalling_publish(settings, event):  # type: ignore[no-untyped-def]
        await _publish(settings, event)
        if event.stage == STALL:
            print(f"stalling at {event.type} {event.id} {event.stage}", flush=True)
            await asyncio.sleep(3600)

    events.publish = stalling_publish  # type: ignore[assignment]

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
