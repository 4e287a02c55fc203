"""HTTP sources: per (partition, day), fetch the day's file list, pick files, download them.

* `list_url` answers a JSON list of files (`url`, `type`, optional `rows`, optional `name`);
  `file_url` names the one file of a partition and day. Both are templates over `{date}` and the
  partition keys (`{branch}`, `{pos}`, …).
* Per file type the file with the most rows is chosen, and the job records why
  (`most rows of type csv: b.csv 120 > a.csv 80`). Files listed without a row count are
  downloaded and counted.
* Downloads stream to a temporary file next to the target and are renamed into place only when
  complete, with a timeout, retries with exponential backoff for transient errors (connection
  failures, timeouts, HTTP 429 and 5xx) and a per-source limit on concurrent requests and on
  requests per second. A 404 or another 4xx is not transient: one sentence, no retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from batchops_core.errors import BatchOpsError
from batchops_core.infra.config import Settings

USER_AGENT = "BatchOps sources"
MAX_LIST_BYTES = 8 * 2**20


class FetchFailed(BatchOpsError):
    """A list or file cannot be fetched or read; the sentence says which and why."""


class Transient(FetchFailed):
    """Worth another try (connection, timeout, 429, 5xx)."""


@dataclass(frozen=True)
class RemoteFile:
    url: str
    type: str
    name: str
    rows: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "type": self.type, "name": self.name, "rows": self.rows}


@dataclass(frozen=True)
class Fetched:
    file: RemoteFile
    path: Path
    sha256: str
    rows: int
    reason: str


class Limiter:
    """At most `concurrency` requests at once and `rate` request starts per second."""

    def __init__(self, concurrency: int, rate: float | None) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self.slots.acquire()
        if self.interval:
            async with self._lock:
                wait = self._next - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next = max(time.monotonic(), self._next) + self.interval

    async def __aexit__(self, *exc: object) -> None:
        self.slots.release()


def limiter_for(config: dict[str, Any]) -> Limiter:
    rate = config.get("rate_per_second")
    return Limiter(int(config.get("concurrency", 2)), float(rate) if rate else None)


def partitions(config: dict[str, Any]) -> list[dict[str, str]]:
    """Every combination of partition values; one empty partition when there are none."""
    keys = sorted((config.get("partitions") or {}).keys())
    values = [[str(v) for v in config["partitions"][k]] for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def partition_label(values: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(values.items()))


def parse_label(label: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in label.split(",") if "=" in part)


def render(template: str, day: date, values: dict[str, str]) -> str:
    return template.format(date=day.isoformat(), **values)


# ---------------------------------------------------------------------------------- transport


def _open(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) checked)
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise Transient(f"{url} answered HTTP {exc.code}.") from None
        raise FetchFailed(f"{url} answered HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Transient(f"cannot reach {url}: {reason}.") from None


def _get_bytes(url: str, timeout: float, limit: int) -> bytes:
    with _open(url, timeout) as response:
        try:
            data = response.read(limit + 1)
        except (OSError, TimeoutError) as exc:
            raise Transient(f"reading {url} failed: {exc}.") from None
    if len(data) > limit:
        raise FetchFailed(f"{url} is larger than {limit // 2**20} MB.")
    return bytes(data)


def _download(url: str, target: Path, timeout: float, limit: int) -> tuple[str, int]:
    """Stream `url` into `target` atomically; return (sha256, size)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with _open(url, timeout) as response, temp.open("wb") as out:
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise FetchFailed(f"{url} is larger than {limit // 2**20} MB.")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except (OSError, TimeoutError) as exc:
        raise Transient(f"downloading {url} failed: {exc}.") from None
    finally:
        temp.unlink(missing_ok=True)
    return digest.hexdigest(), size


async def with_retries(config: dict[str, Any], limiter: Limiter, work: Any, *args: Any) -> Any:
    """Run blocking `work(*args)` in a thread under the limiter, retrying transient failures."""
    tries = int(config.get("retries", 3))
    backoff = float(config.get("backoff_seconds", 0.5))
    for attempt in range(1, tries + 1):
        try:
            async with limiter:
                return await asyncio.to_thread(work, *args)
        except Transient as exc:
            if attempt >= tries:
                raise FetchFailed(f"{exc} (gave up after {tries} tries)") from None
            await asyncio.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------------- listing


def _type_of(url: str) -> str:
    suffix = Path(urlparse(url).path).suffix.lower().lstrip(".")
    return suffix or "file"


def parse_list(url: str, data: bytes) -> list[RemoteFile]:
    try:
        items = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FetchFailed(f"the file list at {url} is not JSON.") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("url") for i in items):
        raise FetchFailed(f"the file list at {url} is not a JSON list of files with a url each.")
    files = []
    for item in items:
        link = urljoin(url, str(item["url"]))
        rows = item.get("rows")
        files.append(
            RemoteFile(
                url=link,
                type=str(item.get("type") or _type_of(link)).lower(),
                name=Path(str(item.get("name") or urlparse(link).path)).name or "file",
                rows=int(rows) if isinstance(rows, int) and not isinstance(rows, bool) else None,
            )
        )
    return files


async def list_files(
    config: dict[str, Any], day: date, values: dict[str, str], limiter: Limiter
) -> list[RemoteFile]:
    timeout = float(config.get("timeout", 30))
    if "file_url" in config:
        link = render(config["file_url"], day, values)
        return [RemoteFile(link, _type_of(link), Path(urlparse(link).path).name or "file")]
    url = render(config["list_url"], day, values)
    data = await with_retries(config, limiter, _get_bytes, url, timeout, MAX_LIST_BYTES)
    return parse_list(url, data)


def count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(0, lines - 1)


def choose(files: list[RemoteFile], counted: dict[str, int]) -> list[tuple[RemoteFile, str]]:
    """Per type, the file with the most rows, with the reason in words."""
    chosen = []
    by_type: dict[str, list[RemoteFile]] = {}
    for f in files:
        by_type.setdefault(f.type, []).append(f)
    for kind, group in sorted(by_type.items()):
        rows = {f.url: f.rows if f.rows is not None else counted.get(f.url, 0) for f in group}
        ranked = sorted(group, key=lambda f: (-rows[f.url], f.name))
        best = ranked[0]
        if len(group) == 1:
            reason = f"the only file of type {kind} ({rows[best.url]} rows)"
        else:
            others = ", ".join(f"{f.name} {rows[f.url]}" for f in ranked[1:])
            reason = f"most rows of type {kind}: {best.name} {rows[best.url]} > {others}"
        chosen.append((best, reason))
    return chosen


async def fetch_day(
    config: dict[str, Any],
    settings: Settings,
    *,
    folder: Path,
    day: date,
    values: dict[str, str],
    limiter: Limiter,
) -> tuple[list[RemoteFile], list[Fetched]]:
    """The day's list and the chosen files, downloaded into `folder`."""
    files = await list_files(config, day, values, limiter)
    if not files:
        raise FetchFailed(f"the file list for {day} has no files.")
    timeout = float(config.get("timeout", 30))
    limit = settings.pipeline.max_upload_mb * 2**20
    downloaded: dict[str, tuple[Path, str]] = {}

    async def get(f: RemoteFile) -> None:
        target = folder / f"{files.index(f) + 1:02d}-{f.name}"
        digest, _ = await with_retries(config, limiter, _download, f.url, target, timeout, limit)
        downloaded[f.url] = (target, digest)

    unknown = [f for f in files if f.rows is None]
    types_unknown = {f.type for f in unknown}
    per_type = {t: sum(1 for f in files if f.type == t) for t in types_unknown}
    to_count = [f for f in files if f.type in types_unknown and per_type[f.type] > 1]
    await asyncio.gather(*(get(f) for f in to_count))
    counted = {url: count_rows(path) for url, (path, _) in downloaded.items()}
    picks = choose(files, counted)
    await asyncio.gather(*(get(f) for f, _ in picks if f.url not in downloaded))
    fetched = []
    for f, reason in picks:
        path, digest = downloaded[f.url]
        rows = f.rows if f.rows is not None else counted.get(f.url, count_rows(path))
        fetched.append(Fetched(f, path, digest, rows, reason))
    for url, (path, _) in downloaded.items():
        if all(url != p.file.url for p in fetched):
            path.unlink(missing_ok=True)
    return files, fetched


async def probe_http(config: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`source test`: today's list for the first partition, and what would be chosen."""
    day = date.today()
    values = partitions(config)[0]
    files = await list_files(config, day, values, limiter_for(config))
    picks = choose(files, {})
    return {
        "message": f"{len(files)} file(s) listed for {day} {partition_label(values) or ''}".strip(),
        "detail": {
            "files": [f.as_json() for f in files],
            "chosen": [{"name": f.name, "reason": r} for f, r in picks],
        },
    }
