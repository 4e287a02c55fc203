"""The storage contract, run against the local folder and a real S3 server (moto_server)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from batchops_core.infra.config import Settings, StorageSettings
from batchops_core.storage import (
    ChecksumMismatch,
    ObjectMissing,
    ObjectStore,
    StorageError,
    check_key,
    store_for,
)
from tests.s3server import S3Server, make_bucket, storage_settings


@pytest_asyncio.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        yield store_for((tmp_path / "objects").as_uri(), settings)
        return
    server: S3Server = request.getfixturevalue("s3_server")
    s3 = dataclasses.replace(settings, storage=storage_settings(server, make_bucket(server)))
    yield store_for(s3.storage.url, s3)


async def test_put_read_list_delete_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "marks.csv"
    source.write_bytes(b"student_id,mark\n1,90\n")
    stored = await store.put_file("uploads/ab/marks.csv", source)
    assert stored.size == source.stat().st_size
    assert stored.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert source.exists(), "a put without move keeps the caller's file"
    assert await store.read_bytes("uploads/ab/marks.csv") == source.read_bytes()
    assert [i.key for i in [x async for x in store.list("uploads/")]] == ["uploads/ab/marks.csv"]
    head = await store.head("uploads/ab/marks.csv")
    assert head is not None and head.size == stored.size
    assert await store.delete("uploads/ab/marks.csv") is True
    assert await store.delete("uploads/ab/marks.csv") is False
    assert await store.head("uploads/ab/marks.csv") is None


async def test_large_file_is_streamed_and_verified(store: ObjectStore, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024 + 17))  # over two 8 MB parts: multipart
    stored = await store.put_file("exports/1/big.bin", big)
    copy = await store.fetch(
        "exports/1/big.bin", tmp_path / "copy" / "big.bin", sha256=stored.sha256
    )
    assert copy.read_bytes() == big.read_bytes()
    with pytest.raises(ChecksumMismatch, match="does not match its recorded sha256"):
        await store.fetch("exports/1/big.bin", tmp_path / "bad.bin", sha256="0" * 64)
    assert not (tmp_path / "bad.bin").exists(), "a failed fetch leaves no file behind"


async def test_missing_key_says_it_is_missing(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectMissing, match="is not in storage"):
        await store.read_bytes("uploads/nothing/here.csv")
    with pytest.raises(ObjectMissing):
        await store.fetch("uploads/nothing/here.csv", tmp_path / "x")
    assert not (tmp_path / "x").exists()


async def test_delete_prefix_and_probe(store: ObjectStore) -> None:
    for name in ("a.csv", "b.pdf"):
        await store.put_bytes(f"exports/7/{name}", b"x")
    await store.put_bytes("exports/70/keep.csv", b"y")
    assert await store.delete_prefix("exports/7/") == 2
    assert [i.key async for i in store.list("exports/")] == ["exports/70/keep.csv"]
    await store.probe()
    assert [i.key async for i in store.list("probe/")] == [], "the probe cleans up after itself"


@pytest.mark.parametrize("key", ["", "/etc/passwd", "uploads/../../x", "a//b", "a\\b", "./a"])
def test_keys_cannot_escape(key: str) -> None:
    with pytest.raises(StorageError, match="is not a storage key"):
        check_key(key)


async def test_missing_bucket_and_unreachable_store_are_clear(
    settings: Settings, s3_server: S3Server
) -> None:
    absent = dataclasses.replace(settings, storage=storage_settings(s3_server, "no-such-bucket"))
    with pytest.raises(StorageError, match="does not exist") as info:
        await store_for(absent.storage.url, absent).probe()
    assert "endpoint_url" in info.value.hint
    down = dataclasses.replace(
        settings,
        storage=StorageSettings(
            url="s3://b/p",
            endpoint_url="http://127.0.0.1:9",
            access_key="a",
            secret_key="b",  # type: ignore[arg-type]
            timeout=2,
        ),
    )
    with pytest.raises(StorageError, match="127.0.0.1:9"):
        await store_for(down.storage.url, down).probe()
