"""`batchops status [--json]`: what the deployment is doing right now, for people and scripts.

Queued, processing and recent uploads; running and recent runs; worker health from the
per-worker heartbeats and the hosts whose daemons are alive; the next schedule firings; the arq
queue depth when Redis is configured; this host's clock when it drifts from the database's.
Ages are on the database's clock, the one heartbeats are written on.
Exit status 0 when at least one worker (daemon or embedded) is alive or nothing waits, 1 when
uploads wait and no worker is alive (so a monitoring script can alert), 2 usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime

from batchops_core.enums import UploadStatus
from batchops_core.services.status import SystemStatus, queue_depth, system_status
from batchops_core.worker.outages import redis_outage
from batchops_tui.cli.common import EXIT_FAILED, EXIT_OK, Cli, shell_operator, table


def _ago(now: datetime, when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = (now - when).total_seconds()
    if seconds < 0:
        seconds = -seconds
        return f"in {_span(seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.0f}d"


def _render(cli: Cli, st: SystemStatus) -> None:
    counts = "  ".join(f"{k} {v}" for k, v in st.uploads_by_status.items())
    depth = "" if st.queue_depth is None else f"   arq queue: {st.queue_depth}"
    cli.print(f"Uploads: {counts}{depth}")
    for title, lines in (("Processing", st.processing), ("Queued", st.queued)):
        if lines:
            cli.print(f"\n{title}:")
            cli.print(
                table(
                    [
                        [str(u.id), u.filename, u.stage or "-", _ago(st.at, u.updated_at)]
                        for u in lines
                    ],
                    ["ID", "FILE", "STAGE", "UPDATED"],
                )
            )
    if st.recent_uploads:
        cli.print("\nRecent uploads:")
        cli.print(
            table(
                [
                    [str(u.id), u.filename, u.status, _ago(st.at, u.updated_at)]
                    for u in st.recent_uploads
                ],
                ["ID", "FILE", "STATUS", "UPDATED"],
            )
        )
    for title, lines in (("Running", st.running), ("Recent runs", st.recent_runs)):
        if lines:
            cli.print(f"\n{title}:")
            cli.print(
                table(
                    [
                        [
                            str(r.id),
                            r.task,
                            r.status,
                            r.error_code or "",
                            r.worker or "-",
                            _ago(st.at, r.finished_at or r.started_at),
                        ]
                        for r in lines
                    ],
                    ["RUN", "TASK", "STATUS", "ERROR", "WORKER", "WHEN"],
                )
            )
    cli.print("\nWorkers:" if st.workers else "\nWorkers: none has reported yet")
    if st.workers:
        cli.print(
            table(
                [
                    [
                        w.name,
                        "alive" if w.alive else "SILENT",
                        "embedded" if w.embedded else "daemon",
                        str(w.jobs_running),
                        _ago(st.at, w.heartbeat_at),
                    ]
                    for w in st.workers
                ],
                ["WORKER", "HEALTH", "KIND", "JOBS", "LAST BEAT"],
            )
        )
    if st.hosts:
        cli.print(
            "Daemons alive on: "
            + "; ".join(
                f"{h.host} ({len(h.workers)}, last beat {_span(h.last_beat_seconds)} ago)"
                for h in st.hosts
            )
        )
    if st.next_firings:
        cli.print("\nNext schedule firings:")
        cli.print(
            table(
                [
                    [
                        str(f.job_id),
                        f.name,
                        f.task,
                        f"{f.next_run_at:%Y-%m-%d %H:%M} UTC",
                        _ago(st.at, f.next_run_at),
                    ]
                    for f in st.next_firings
                ],
                ["ID", "SCHEDULE", "TASK", "NEXT", "IN"],
            )
        )


async def handle_status(args: argparse.Namespace, cli: Cli) -> int:
    db = await cli.database()
    depth = await queue_depth(cli.settings)
    async with db.unit() as session:
        st = await system_status(
            session, actor=shell_operator(), settings=cli.settings, queue_depth=depth
        )
    if args.json:
        payload = dataclasses.asdict(st)
        payload["workers_alive"] = st.workers_alive
        payload["clock"]["skewed"] = st.clock.skewed
        cli.print_json(payload)
    else:
        _render(cli, st)
    outage = await redis_outage(db, cli.settings)
    if outage is not None and not args.json:
        cli.error(f"{outage}: uploads wait in the database until it is back.")
    if st.clock.skewed and not args.json:
        cli.error(st.clock.sentence())
    waiting = st.uploads_by_status.get(UploadStatus.QUEUED.value, 0)
    if waiting and not st.workers_alive:
        if not args.json:
            cli.error(f"{waiting} upload(s) wait and no worker is alive: start batchops-daemon.")
        return EXIT_FAILED
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add `batchops status`."""
    parser = sub.add_parser(
        "status", help="queued, processing and recent work, worker health, next schedules"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=handle_status)
