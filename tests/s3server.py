"""A real S3-compatible server for tests: moto's server mode (`moto_server`) on a free port.

MinIO is not in the Debian archive here; `moto[server]` is a real HTTP S3 endpoint that obstore
talks to over TCP exactly as it talks to MinIO or AWS. One server per test session (per xdist
worker); every test gets its own bucket.

* `S3Server.start()` / `.stop()` — the process; `.kill()` stops it hard (a store that is down);
* `s3_server` (session fixture), `s3_settings` (Settings whose [storage] is a fresh bucket);
* `make_bucket(server)` — a new bucket name, created.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchops_core.infra.config import Settings, StorageSettings

HOST = "127.0.0.1"
ACCESS_KEY = "batchops-test"
SECRET_KEY = "batchops-test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _moto_server() -> str:
    here = Path(sys.executable).parent / "moto_server"
    found = str(here) if here.exists() else shutil.which("moto_server")
    if not found:
        pytest.fail('moto_server is not installed: pip install "moto[server]" (make setup does)')
    return found


@dataclasses.dataclass
class S3Server:
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 20.0) -> S3Server:
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [_moto_server(), "-H", HOST, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"moto_server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


def make_bucket(server: S3Server) -> str:
    import boto3

    name = f"bo-{uuid.uuid4().hex[:16]}"
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=name)
    return name


def storage_settings(server: S3Server, bucket: str, prefix: str = "campus") -> StorageSettings:
    return StorageSettings(
        url=f"s3://{bucket}/{prefix}",
        endpoint_url=server.endpoint,
        region="us-east-1",
        access_key=ACCESS_KEY,  # type: ignore[arg-type]
        secret_key=SECRET_KEY,  # type: ignore[arg-type]
        timeout=10.0,
    )


def storage_env(server: S3Server, bucket: str, prefix: str = "campus") -> dict[str, str]:
    """The same store as environment variables, for commands run as subprocesses."""
    return {
        "BATCHOPS_STORAGE_URL": f"s3://{bucket}/{prefix}",
        "BATCHOPS_STORAGE_ENDPOINT_URL": server.endpoint,
        "BATCHOPS_STORAGE_REGION": "us-east-1",
        "BATCHOPS_STORAGE_ACCESS_KEY": ACCESS_KEY,
        "BATCHOPS_STORAGE_SECRET_KEY": SECRET_KEY,
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_settings(settings: Settings, s3_server: S3Server) -> Settings:
    """`settings` with [storage] on a fresh bucket of the session's moto server."""
    return dataclasses.replace(
        settings, storage=storage_settings(s3_server, make_bucket(s3_server))
    )
