"""A campus on one machine: a TUI host and two daemon hosts that share only PostgreSQL, Redis
and an S3-compatible store, one daemon SIGKILLed mid-upload, the report exported on the TUI host.

* The object store is moto's server mode (`moto_server`, a real HTTP S3 endpoint; MinIO is not in
  the Debian archive here), one bucket per test (tests/s3server.py).
* Hosts are separate processes, each in its own mount, UTS and network namespace
  (tests/campus/hosts.py): every host's data directory is a private tmpfs mounted at the SAME
  path, so a path written by one host cannot resolve on another; each has its own hostname, so
  workers are told apart (and judged alive) as on separate machines, by their Redis liveness
  keys, not by PID; and each reaches PostgreSQL, Redis and the S3 server only at the address of
  its own veth pair, where a `socat` forwarder per service leads to the machine's loopback
  (PostgreSQL listens on 127.0.0.1 only). The test checks that a host's 127.0.0.1 is not the
  machine's. Without permission to unshare (not root) the hosts fall back to separate plain
  directories on the machine's loopback; without `ip`/`socat`, to the machine's loopback.

The flow: both daemons report alive; the TUI host uploads 12 gradebooks and one of 100,000 rows
from its own private directory (`batchops upload --as user1`), which no daemon host can see. The
daemons are `batchops-daemon` run through tests/daemon/entry.py, whose only change is a bounded
stall (1.5 s) after each upload's validate step, so that the kill lands mid-upload every time
rather than when the timing happens to allow it: the daemon that holds the large upload there is
SIGKILLed. The survivor's sweeper sees the victim's Redis liveness key expire (4 s), marks its
runs `WORKER_LOST`, rescues the arq jobs it held, and finishes everything. Then every upload is
published exactly once (one succeeded run each; any other run is the victim's, `WORKER_LOST`;
the large one failed on the victim and succeeded on the survivor), nothing failed
for a path or a missing object, and from the TUI host `reports show`, the Reports screen's
preview calls (tests/campus/preview.py) and `reports export` work; the exported bytes are the
bucket's object, read with boto3. 15–25 s of wall time, fixtures included.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from sqlalchemy import select

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.infra.db import Database
from batchops_core.models import Incident, JobRun, Upload, WorkerHeartbeat
from batchops_core.worker.liveness import parse_name
from batchops_core.worker.sweeper import WORKER_LOST
from tests.campus.conftest import Campus
from tests.conftest import TEST_PASSWORD
from tests.daemon.conftest import wait_for

SMALL = 12
LARGE_ROWS = 100_000
FORBIDDEN = {"BAD_PATH", "STORAGE_MISSING", "STORAGE_CORRUPT", "STORAGE_UNAVAILABLE"}


def gradebook(tag: int, rows: int) -> str:
    body = "".join(
        f"S{tag:02d}{i:05d},9{'AB'[i % 2]},{40 + i % 60},{30 + (i * 7) % 70}\n" for i in range(rows)
    )
    return "Student ID,class,maths,english\n" + body


async def _hosts_alive(db: Database, names: set[str]) -> bool:
    async with db.unit() as session:
        hosts = set(await session.scalars(select(WorkerHeartbeat.host)))
    return names <= hosts


async def _running_on(db: Database, upload_id: int) -> str | None:
    """The host whose worker runs `upload_id` right now (a claimed, running run), else None."""
    async with db.unit() as session:
        upload = await session.get(Upload, upload_id)
        worker = await session.scalar(
            select(JobRun.worker).where(
                JobRun.upload_id == upload_id, JobRun.status == RunStatus.RUNNING
            )
        )
    if upload is None or upload.status is not UploadStatus.PROCESSING or not worker:
        return None
    return parse_name(worker)[0]


async def _all_final(db: Database, count: int) -> list[Upload] | None:
    async with db.unit() as session:
        uploads = list(await session.scalars(select(Upload).order_by(Upload.id)))
    done = len(uploads) == count and all(u.status.is_final for u in uploads)
    return uploads if done else None


async def test_campus_upload_kill_a_daemon_export_on_the_tui_host(
    campus: Campus, campus_db: Database
) -> None:
    tui = campus.host("tui", BATCHOPS_PASSWORD=TEST_PASSWORD)
    stall = {"BATCHOPS_TEST_STALL_STAGE": "validate", "BATCHOPS_TEST_STALL_SECONDS": "1.5"}
    daemons = {name: campus.host(name, **stall) for name in ("daemon-a", "daemon-b")}
    processes = {name: host.daemon(entry="tests.daemon.entry") for name, host in daemons.items()}
    await wait_for(lambda: _hosts_alive(campus_db, set(daemons)), timeout=30)
    if tui.networked:
        postgres = campus.ports[0]
        assert tui.reaches(tui.gateway, postgres)
        assert not tui.reaches("127.0.0.1", postgres), "only through the address the test made"

    inbox = tui.root / "in"
    names = [f"class{i:02d}.csv" for i in range(SMALL)] + ["school.csv"]
    for i, name in enumerate(names):
        rows = LARGE_ROWS if name == "school.csv" else 20
        tui.local(inbox / name).write_text(gradebook(i, rows))
    if tui.isolated:
        assert not any(h.local(inbox / "school.csv").exists() for h in daemons.values())

    upload = asyncio.create_task(
        asyncio.to_thread(
            tui.batchops,
            "upload",
            *(str(inbox / n) for n in names),
            "--source",
            "Exams",
            "--as",
            "user1",
            "--json",
        )
    )

    async def large_id() -> int | None:
        async with campus_db.unit() as session:
            return await session.scalar(select(Upload.id).where(Upload.filename == "school.csv"))

    large = await wait_for(large_id, timeout=30)

    async def stalled_mid_run() -> str | None:
        host = await _running_on(campus_db, large)
        stalled = host and f"stalling at upload.updated {large} validate" in daemons[host].log()
        return host if stalled else None

    victim = await wait_for(stalled_mid_run, timeout=30, every=0.02)
    processes[victim].send_signal(signal.SIGKILL)
    assert processes[victim].wait(timeout=10) == -signal.SIGKILL
    survivor = next(name for name in daemons if name != victim)
    # Only the victim's runs end otherwise than succeeded, as lost: the sweeper waits longer than
    # a liveness key outlives its worker before it calls a run "handed back".
    recovered = {(WORKER_LOST, victim)}

    submitted = await upload
    assert submitted.returncode == 0, submitted.stderr
    accepted = json.loads(submitted.stdout)
    assert [u["filename"] for u in accepted] == names
    assert all(u["status"] in {"queued", "processing", "published"} for u in accepted), accepted

    uploads = await wait_for(lambda: _all_final(campus_db, len(names)), timeout=40)
    survivor_log = daemons[survivor].log()
    assert all(u.status is UploadStatus.PUBLISHED for u in uploads), (
        [(u.filename, u.status, u.error_code, u.error_message) for u in uploads],
        survivor_log[-3000:],
    )
    async with campus_db.unit() as session:
        runs = list(await session.scalars(select(JobRun).where(JobRun.upload_id.is_not(None))))
        codes = set(await session.scalars(select(Incident.error_code)))
    assert not codes & FORBIDDEN, codes
    assert not {u.error_code for u in uploads} & FORBIDDEN
    for u in uploads:
        mine = [r for r in runs if r.upload_id == u.id]
        succeeded = [r for r in mine if r.status is RunStatus.SUCCEEDED]
        assert len(succeeded) == 1, (u.filename, [(r.status, r.error_code) for r in mine])
        lost = [
            (r.status, r.error_code, parse_name(r.worker or "")[0])
            for r in mine
            if r.status is not RunStatus.SUCCEEDED
        ]
        assert {(code, host) for _, code, host in lost} <= recovered, lost
        assert parse_name(succeeded[0].worker or "")[0] in daemons, succeeded[0].worker
        assert (u.stored_path or "").startswith("uploads/"), u.stored_path
        assert u.report_csv == f"exports/{u.id}/{Path(u.report_csv or '').name}"
    large_runs = sorted((r for r in runs if r.upload_id == large), key=lambda r: r.id)
    assert [(r.status, parse_name(r.worker or "")[0]) for r in large_runs] == [
        (RunStatus.FAILED, victim),
        (RunStatus.SUCCEEDED, survivor),
    ]
    [school] = [u for u in uploads if u.id == large]
    assert school.rows_out == LARGE_ROWS

    shown = tui.batchops("reports", "show", str(large), "--as", "moderator1", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["row"]["report_csv"] == school.report_csv

    preview = tui.run([sys.executable, "-m", "tests.campus.preview", "moderator1", str(large)])
    assert preview.returncode == 0, preview.stderr
    seen = json.loads(preview.stdout)
    assert seen["header"][0] == "column" and ["maths", str(LARGE_ROWS)] == seen["rows"][0][:2]
    assert "BatchOps report: school.csv" in seen["pdf_text"], seen["pdf_text"]
    assert f"Rows read {LARGE_ROWS:,}" in seen["pdf_text"], seen["pdf_text"]
    assert seen["csv_path"].startswith(str(tui.root / "data")), "a local copy on the TUI host"

    exported = tui.batchops("reports", "export", str(large), "--as", "moderator1", "--json")
    assert exported.returncode == 0, exported.stderr
    path = Path(json.loads(exported.stdout)["path"])
    assert path.parent == tui.root / "exports"
    assert tui.local(path).read_bytes() == campus.object_bytes(school.report_csv or "")
    for name in daemons:
        assert not daemons[name].local(path).exists(), "exports stay on the TUI host"
