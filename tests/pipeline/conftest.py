"""Helpers for the pipeline tests: run the stages on a file inside a private data directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchops_core.infra.config import Settings
from batchops_core.pipeline.stages import StageContext, make_context, run_all
from tests.pipeline.helpers import Ran


@pytest.fixture
def pipe_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"))


@pytest.fixture
def make_ctx(pipe_settings: Settings) -> Callable[..., StageContext]:
    counter = iter(range(1, 10_000))

    def build(path: Path, *, settings: Settings | None = None, **kwargs: Any) -> StageContext:
        return make_context(
            settings or pipe_settings,
            upload_id=next(counter),
            stored_path=str(path),
            filename=kwargs.pop("filename", path.name),
            **kwargs,
        )

    return build


@pytest.fixture
def run(make_ctx: Callable[..., StageContext]) -> Callable[..., Ran]:
    def go(path: Path, **kwargs: Any) -> Ran:
        ctx = make_ctx(path, **kwargs)
        return Ran(ctx, run_all(ctx))

    return go


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes | str], Path]:
    def put(name: str, content: bytes | str) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)
        return path

    return put


@pytest.fixture(scope="session", autouse=True)
def _stop_pipeline_pool() -> Any:
    """The warm process pool outlives tests; stop it once at the end of the session."""
    yield
    from batchops_core.pipeline.pool import shutdown_pool

    shutdown_pool()
