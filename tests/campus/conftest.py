"""A campus on one machine: one fresh PostgreSQL database, one Redis prefix, one moto S3 bucket,
and hosts (`hosts.Host`) that share nothing else. `campus.settings` is the test's own view of the
shared services, for conditions and checks; the hosts are configured by environment only, with
the services' addresses rewritten to the gateway the test made for each host."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from sqlalchemy import make_url

from batchops_core.accounts import create_user
from batchops_core.enums import Role
from batchops_core.infra.config import RedisSettings, Settings, SmtpSettings
from batchops_core.infra.db import Database, open_database
from batchops_core.permissions import SYSTEM
from tests.campus.hosts import Host
from tests.conftest import _RUN_ID, TEST_PASSWORD, _admin_exec, _pg_url, forget_redis_prefix
from tests.s3server import S3Server, make_bucket, s3_server, storage_env, storage_settings

__all__ = ["s3_server"]

PREFIX = "campus"
"""The key prefix of the store inside the bucket (`s3://<bucket>/campus/…`)."""


@dataclasses.dataclass
class Campus:
    base: Path
    settings: Settings
    env: dict[str, str]
    s3: S3Server
    bucket: str
    hosts: list[Host] = dataclasses.field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        """The loopback ports of PostgreSQL, Redis and the S3 server."""
        return [
            make_url(self.settings.database.url).port or 5432,
            urlsplit(self.settings.redis.url).port or 6379,
            self.s3.port,
        ]

    def env_for(self, gateway: str) -> dict[str, str]:
        """The shared environment with every service addressed at `gateway`."""
        database = make_url(self.env["BATCHOPS_DATABASE_URL"]).set(host=gateway)
        redis = urlsplit(self.env["BATCHOPS_REDIS_URL"])
        endpoint = urlsplit(self.env["BATCHOPS_STORAGE_ENDPOINT_URL"])
        return {
            **self.env,
            "BATCHOPS_DATABASE_URL": database.render_as_string(hide_password=False),
            "BATCHOPS_REDIS_URL": redis._replace(netloc=f"{gateway}:{redis.port}").geturl(),
            "BATCHOPS_STORAGE_ENDPOINT_URL": endpoint._replace(
                netloc=f"{gateway}:{endpoint.port}"
            ).geturl(),
        }

    def host(self, name: str, **env: str) -> Host:
        host = Host(name, self.base)
        host.env = {**self.env_for(host.gateway), **env}
        self.hosts.append(host)
        return host.start(forward=self.ports)

    def object_bytes(self, key: str) -> bytes:
        """The stored object as the bucket holds it, read with boto3 (not through BatchOps)."""
        import boto3

        from tests.s3server import ACCESS_KEY, SECRET_KEY

        client = boto3.client(
            "s3",
            endpoint_url=self.s3.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )
        body: bytes = client.get_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}")["Body"].read()
        return body


@pytest.fixture
def campus_db_url(pg_template: str | None) -> Iterator[str]:
    """A fresh migrated PostgreSQL database; a campus never runs on SQLite."""
    if pg_template is None:
        pytest.fail("PostgreSQL is not reachable; the campus test needs it", pytrace=False)
    name = f"bo_campus_{_RUN_ID}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_exec([f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"']))
    yield _pg_url(name)
    asyncio.run(_admin_exec([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


@pytest.fixture
def campus(campus_db_url: str, redis_url: str, s3_server: S3Server) -> Iterator[Campus]:
    base = Path(f"/tmp/bo-campus-{uuid.uuid4().hex[:10]}")
    base.mkdir()
    prefix = f"bo-campus-{uuid.uuid4().hex[:10]}"
    bucket = make_bucket(s3_server)
    settings = Settings(
        data_dir=str(base / "test-data"),
        redis=RedisSettings(url=redis_url, prefix=prefix),
        smtp=SmtpSettings(host=""),
        storage=storage_settings(s3_server, bucket, PREFIX),
    )
    settings = dataclasses.replace(
        settings, database=dataclasses.replace(settings.database, url=campus_db_url)
    )
    env = {
        "BATCHOPS_DATABASE_URL": campus_db_url,
        "BATCHOPS_REDIS_URL": redis_url,
        "BATCHOPS_REDIS_PREFIX": prefix,
        **storage_env(s3_server, bucket, PREFIX),
        "BATCHOPS_SMTP_HOST": "",
        "BATCHOPS_WORKER_METRICS_PORT": "-1",
        "BATCHOPS_WORKER_HEARTBEAT_SECONDS": "1",
        "BATCHOPS_WORKER_STALE_AFTER_SECONDS": "3",
        "BATCHOPS_WORKER_HEALTH_INTERVAL": "5",
        "BATCHOPS_WORKER_SHUTDOWN_GRACE": "5",
        "BATCHOPS_WORKER_POLL_DELAY": "0.05",
        "BATCHOPS_WORKER_JOB_TIMEOUT": "60",
        "BATCHOPS_PIPELINE_STAGE_PROCESSES": "1",
    }
    made = Campus(base, settings, env, s3_server, bucket)
    try:
        yield made
    finally:
        for host in made.hosts:
            host.stop()
        forget_redis_prefix(redis_url, prefix)
        shutil.rmtree(base, ignore_errors=True)


@pytest_asyncio.fixture
async def campus_db(campus: Campus) -> AsyncIterator[Database]:
    """The test's own connection to the shared database, with one account per role."""
    database = open_database(campus.settings)
    async with database.unit() as session:
        for role in Role:
            await create_user(
                session,
                actor=SYSTEM,
                username=f"{role.value}1",
                email=f"{role.value}1@school.example",
                role=role,
                password=TEST_PASSWORD,
                policy=campus.settings.security,
                verified=True,
            )
    yield database
    await database.dispose()
