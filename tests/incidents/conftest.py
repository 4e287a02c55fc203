"""Helpers for incident tests: a failed upload row and a recorded failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from batchops_core.enums import Stage, UploadStatus
from batchops_core.incidents import FailureInfo, record_stage_failure
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Upload

DELIMITER_FAILURE = FailureInfo(
    code="CSV_SINGLE_COLUMN",
    message="every row landed in one column when split on comma; the semicolon delimiter "
    "would give 33 columns",
    stage=Stage.STANDARDIZE,
    hint="Re-read the file with delimiter ';'.",
    details={"delimiter": ",", "candidates": {";": 33}},
)

MakeFailure = Callable[..., Awaitable[tuple[int, int]]]


@pytest.fixture
def failed_upload(db: Database, db_settings: Settings) -> MakeFailure:
    """Create a failed upload and record its stage failure; return (upload_id, incident_id)."""

    async def make(
        failure: FailureInfo = DELIMITER_FAILURE,
        *,
        source: str = "Fees",
        status: UploadStatus = UploadStatus.FAILED,
    ) -> tuple[int, int]:
        async with db.unit() as session:
            upload = Upload(
                filename="fees.csv",
                sha256="0" * 64,
                source=source,
                status=status,
                current_stage=failure.stage,
                error_code=failure.code,
                error_message=failure.message,
            )
            session.add(upload)
            await session.flush()
            incident_id = await record_stage_failure(
                session,
                source=source,
                failure=failure,
                upload_id=upload.id,
                settings=db_settings,
            )
            return upload.id, incident_id

    return make
