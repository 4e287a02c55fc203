"""`python -m tests.campus.preview USER ID`, run on a TUI host: what the Reports screen's preview
shows (the same service calls: `get_report`, `report_file`, `csv_head`, `pdf_text`), as JSON.

The screen needs a terminal; this reads the report exactly as it does, from the host's own
settings (environment), so a preview that cannot reach storage fails here as it would there.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from batchops_core.accounts import authenticate
from batchops_core.infra.config import load_settings
from batchops_core.infra.db import open_database
from batchops_core.services.reports import ReportFormat, csv_head, get_report, pdf_text, report_file


async def preview(username: str, upload_id: int) -> dict[str, object]:
    settings = load_settings()
    db = open_database(settings)
    try:
        async with db.sessions() as session:
            user = await authenticate(
                session,
                username=username,
                password=os.environ["BATCHOPS_PASSWORD"],
                policy=settings.security,
            )
            await session.commit()
        async with db.unit() as uow:
            detail = await get_report(uow, actor=user.actor, upload_id=upload_id)
        csv_path = await report_file(settings, detail, ReportFormat.CSV)
        pdf_path = await report_file(settings, detail, ReportFormat.PDF)
        header, rows = await asyncio.to_thread(csv_head, csv_path, 5)
        text = await asyncio.to_thread(pdf_text, pdf_path, 1)
        return {
            "csv_path": str(csv_path),
            "header": header,
            "rows": rows,
            "pdf_text": text[:2000],
        }
    finally:
        await db.dispose()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(preview(sys.argv[1], int(sys.argv[2])))))
    sys.exit(0)
