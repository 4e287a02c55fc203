"""One identity per daemon (#15): names no two processes share, and `--check` about this host.

Two hosts are two data directories on one database: a daemon records its name in its own data
directory, and `batchops-daemon --check` asks the database about exactly the daemons named there.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from batchops_core.infra.clock import db_now
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import WorkerHeartbeat
from batchops_core.services.status import worker_health
from batchops_core.worker.heartbeat import Heartbeat, list_workers, worker_name
from batchops_core.worker.liveness import parse_name
from batchops_daemon.instance import local_names
from tests.daemon.conftest import DaemonProcess, fast_worker, wait_for, write_config


async def test_two_daemons_with_one_hostname_and_pid_get_two_names(
    db: Database, db_settings: Settings
) -> None:
    first, second = worker_name("daemon"), worker_name("daemon")
    assert first != second
    assert parse_name(first) == parse_name(second), "same host, same PID"
    for name in (first, second):
        await Heartbeat(db, db_settings, name).beat()
    async with db.unit() as session:
        workers = await list_workers(session, db_settings)
    assert {w.name for w in workers} == {first, second}
    assert {(w.host, w.pid) for w in workers} == {parse_name(first)}


async def _beat_at(db: Database, name: str, ago: float) -> None:
    async with db.unit() as session:
        when = await db_now(session) - timedelta(seconds=ago)
        host, pid = parse_name(name)
        session.add(
            WorkerHeartbeat(name=name, host=host, pid=pid or 0, started_at=when, heartbeat_at=when)
        )


async def test_health_of_this_hosts_daemons_ignores_other_hosts(
    db: Database, db_settings: Settings
) -> None:
    settings = fast_worker(db_settings)  # health_interval 5 s
    other, mine = "daemon@host-b:10:aaaaaaaa", "daemon@host-a:20:bbbbbbbb"
    await _beat_at(db, other, 1)
    await _beat_at(db, mine, 60)

    assert (await worker_health(db, settings)).healthy, "the deployment has a worker"
    nobody = await worker_health(db, settings, names=[])
    assert not nobody.healthy
    assert "no batchops-daemon runs on" in nobody.detail and "other hosts" in nobody.detail
    silent = await worker_health(db, settings, names=[mine])
    assert not silent.healthy and f"{mine} last beat 60 s ago" in silent.detail
    assert "restart" in silent.detail
    assert (await worker_health(db, settings, names=[other])).healthy


def _dirs(settings: Settings, tmp_path: Path, host: str) -> tuple[Settings, Path]:
    own = dataclasses.replace(settings, data_dir=str(tmp_path / host))
    return own, write_config(tmp_path / f"{host}.toml", own)


async def test_check_answers_for_the_daemon_of_its_own_data_dir(
    db_settings: Settings,
    db: Database,
    tmp_path: Path,
    daemons: Callable[..., DaemonProcess],
) -> None:
    settings = fast_worker(db_settings)
    host_a, config_a = _dirs(settings, tmp_path, "host-a")
    host_b, config_b = _dirs(settings, tmp_path, "host-b")
    daemon = daemons(config_a)

    async def registered() -> list[str]:
        names = local_names(host_a)
        return names if names and (await worker_health(db, host_a, names=names)).healthy else []

    (name,) = await wait_for(registered, timeout=30)
    assert parse_name(name)[1] == daemon.proc.pid
    assert (tmp_path / "host-a" / "daemon" / name).read_text().strip() == name

    check = daemons(config_a, "--check")
    assert check.wait() == 0, check.output()
    assert check.output().startswith("healthy:") and name in check.output()
    check = daemons(config_b, "--check")
    assert check.wait() == 1, check.output()
    assert "unhealthy: no batchops-daemon runs on" in check.output()
    assert "1 daemon(s) of other hosts are alive but do not count" in check.output()
    assert local_names(host_b) == []

    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, daemon.output()
    assert local_names(host_a) == [], "a clean exit removes the instance file"
    check = daemons(config_a, "--check")
    assert check.wait() == 1 and "no batchops-daemon runs on" in check.output()
