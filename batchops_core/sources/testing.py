"""`source test`: connect, list or parse a sample with the source's settings — and write nothing.

What the operator sees is what a sync would do: the first rows as mapped (database), the file
list and the choice with its reason (http), the files a pass would take (folder), or a sample
file parsed with the parser settings (column aliases, delimiter, encoding, required columns).
Any failure is reported as the one sentence a sync would record.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchops_core.errors import BatchOpsError
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.permissions import Action, Actor, require
from batchops_core.sources.models import SourceKind
from batchops_core.sources.service import load_source

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class TestReport:
    source: str
    kind: SourceKind
    ok: bool
    message: str
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind.value,
            "ok": self.ok,
            "message": self.message,
            "columns": self.columns,
            "rows": self.rows,
            "errors": self.errors,
            **self.detail,
        }

    def lines(self) -> list[str]:
        out = [f"source {self.source} ({self.kind.value}): {self.message}"]
        if self.columns:
            out.append("columns: " + ", ".join(self.columns))
        for key, value in self.detail.items():
            out.append(f"{key}: {json.dumps(value, default=str)}")
        out += [f"  {json.dumps(row, default=str)}" for row in self.rows]
        out += [f"error: {e}" for e in self.errors]
        return out


def parser_options(config: dict[str, Any]) -> dict[str, Any]:
    """The parser settings as the pipeline's `read_options`."""
    parser = dict(config.get("parser") or {})
    options = {
        k: parser[k]
        for k in ("delimiter", "encoding", "sheet", "header_row", "date_formats")
        if k in parser
    }
    if parser.get("column_aliases"):
        options["column_aliases"] = dict(parser["column_aliases"])
    return options


def parse_sample(path: Path, config: dict[str, Any], n: int = SAMPLE_ROWS) -> dict[str, Any]:
    """Standardize `path` with the parser settings; the first rows, columns and problems."""
    from batchops_core.pipeline.errors import StageError
    from batchops_core.pipeline.standardize import ROW, standardize

    parser = config.get("parser") or {}
    try:
        result = standardize(path, options=parser_options(config))
    except StageError as exc:
        return {"ok": False, "message": f"{path.name}: {exc.message}", "columns": [], "rows": []}
    frame = result.frame.drop(columns=[c for c in result.frame.columns if c == ROW])
    columns = [str(c) for c in frame.columns]
    errors = [f"row {e.get('row')}: {e.get('message', e)}" for e in result.type_errors[:10]]
    missing = [c for c in parser.get("required_columns") or [] if c not in columns]
    if missing:
        errors.insert(
            0,
            f"required column(s) {', '.join(missing)} not found; "
            f"the file has: {', '.join(columns)}.",
        )
    head = json.loads(frame.head(n).to_json(orient="records", date_format="iso"))
    return {
        "ok": not missing,
        "message": f"{path.name}: {len(frame):,} rows parsed"
        + ("" if not missing else ", but columns are missing"),
        "columns": columns,
        "rows": head,
        "errors": errors,
        "log": result.log[:10],
    }


async def test_source(
    db: Database, settings: Settings, *, actor: Actor, name: str, file: str | None = None
) -> TestReport:
    require(actor, Action.VIEW_SOURCES)
    async with db.unit() as uow:
        source = await load_source(uow, name)
        kind, config, secret, label = (
            SourceKind(source.kind),
            dict(source.config),
            source.secret,
            source.name,
        )
    try:
        if file:
            parsed = await asyncio.to_thread(parse_sample, Path(file).expanduser(), config)
            return TestReport(
                label,
                kind,
                parsed["ok"],
                parsed["message"],
                parsed["columns"],
                parsed["rows"],
                {"log": parsed.get("log", [])},
                parsed.get("errors", []),
            )
        if kind is SourceKind.DATABASE:
            from batchops_core.sources.database import sample_database

            sample = await sample_database(config, secret, SAMPLE_ROWS)
            return TestReport(
                label,
                kind,
                True,
                f"connected; {len(sample['rows'])} sample row(s) read after id 0",
                sample["columns"],
                sample["rows"],
            )
        if kind is SourceKind.HTTP:
            from batchops_core.sources.http import probe_http

            return TestReport(label, kind, True, **await probe_http(config, settings))
        from batchops_core.sources.folder import probe_folder

        return TestReport(label, kind, True, **await probe_folder(config))
    except BatchOpsError as exc:
        return TestReport(label, kind, False, str(exc))
