"""The five stages as plain functions over a picklable `StageContext` — what the runner executes.

Each stage reads what the previous one left in the work directory, does its work, leaves its own
result there, and returns a `StageOutcome` (rows in/out, log lines, data for the database). All
inputs and outputs are plain values, so a stage runs unchanged in a worker process, in a thread,
or inline in a test. Any failure leaves as one `StageError`; unexpected exceptions become code
`INTERNAL` with the exception text so that they still reach the incident workflow.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from batchops_core.enums import STAGES, Stage
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.atomic import copy_atomic, write_atomic
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.profile import ValidationProfile
from batchops_core.pipeline.workdir import (
    load_frame,
    load_note,
    load_table,
    save_frame,
    save_note,
)

REPORT_TITLE = "BatchOps report"
HEAVY_MODULES = (
    "pandas",
    "pyarrow.csv",
    "pyarrow.compute",
    "pyarrow.feather",
    "charset_normalizer",
    "python_calamine",
    "openpyxl",
    "pdfplumber",
    "fpdf",
    "batchops_core.pipeline.standardize",
    "batchops_core.pipeline.load_csv",
    "batchops_core.pipeline.load_xlsx",
    "batchops_core.pipeline.load_pdf",
    "batchops_core.pipeline.validate",
    "batchops_core.pipeline.fixlist",
    "batchops_core.pipeline.plans",
    "batchops_core.pipeline.summary",
    "batchops_core.pipeline.csv_out",
    "batchops_core.pipeline.pdf_out",
)
"""What a warm worker imports up front (`preload`), so no upload pays ~1.5 s of imports."""


def preload() -> None:
    import importlib

    for name in HEAVY_MODULES:
        importlib.import_module(name)


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs, as plain values (crosses process boundaries by pickle)."""

    upload_id: int
    source_path: str
    filename: str
    work_dir: str
    export_dir: str
    source: str = "manual"
    mode: str = "transform"
    config: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    required_columns: tuple[str, ...] = ()
    gradebook: bool = False
    key: str | None = "student_id"
    error_threshold: float = 0.05
    pdf_max_rows: int = 10_000
    max_bytes: int = 0
    pdf_processes: int = 1
    uploaded_at: str = ""
    uploader: str = ""
    source_key: str = ""
    """The upload's storage key; `scratch.materialize` sets `source_path` from it."""
    source_sha256: str = ""

    @property
    def work(self) -> Path:
        return Path(self.work_dir)

    @property
    def read_options(self) -> dict[str, Any]:
        opts = self.config.get("read_options") or {}
        return dict(opts) if isinstance(opts, dict) else {}


@dataclass
class StageOutcome:
    stage: str
    rows_in: int | None = None
    rows_out: int | None = None
    log: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    started_at: datetime | None = None


@dataclass
class StagesResult:
    """What `run_stages` did: the outcomes of the stages that finished, in order, and the error
    that stopped the next one (None: every stage ran)."""

    outcomes: list[StageOutcome]
    error: StageError | None = None


def work_dir(settings: Settings, upload_id: int) -> Path:
    """Where an upload's stages keep their results on this host (scratch, never shared)."""
    return settings.scratch_path / "work" / str(upload_id)


def export_dir(settings: Settings, upload_id: int) -> Path:
    """Where publish writes the reports on this host before they are put in storage."""
    return settings.scratch_path / "exports" / str(upload_id)


def make_context(
    settings: Settings,
    *,
    upload_id: int,
    stored_path: str,
    filename: str,
    source: str = "manual",
    mode: str = "transform",
    config: dict[str, Any] | None = None,
    department_columns: list[str] | None = None,
    profile: ValidationProfile | None = None,
    uploaded_at: str = "",
    uploader: str = "",
    source_key: str = "",
    source_sha256: str = "",
) -> StageContext:
    """Build a stage context from the settings and an upload's fields; `profile` is the
    department's validation profile (None: manual uploads, or no department row)."""
    from batchops_core.pipeline.validate import requirements

    config = dict(config or {})
    req = requirements(
        source,
        configured=settings.pipeline.required_columns,
        department_columns=department_columns,
        key=config.get("key"),
        profile=profile,
    )
    aliases = dict(settings.pipeline.column_aliases)
    if profile is not None:
        aliases.update(profile.aliases)
    return StageContext(
        upload_id=upload_id,
        source_path=stored_path,
        filename=filename,
        work_dir=str(work_dir(settings, upload_id)),
        export_dir=str(export_dir(settings, upload_id)),
        source=source,
        mode=mode,
        config=config,
        aliases=aliases,
        required_columns=req.columns,
        gradebook=req.gradebook,
        key=req.key,
        error_threshold=settings.pipeline.error_threshold,
        pdf_max_rows=settings.pipeline.pdf_max_rows,
        max_bytes=settings.pipeline.max_upload_mb * 1024 * 1024,
        pdf_processes=max(1, settings.pipeline.pdf_processes),
        uploaded_at=uploaded_at,
        uploader=uploader,
        source_key=source_key,
        source_sha256=source_sha256,
    )


# ------------------------------------------------------------------------------------- stages


def _standardize(ctx: StageContext) -> StageOutcome:
    from batchops_core.pipeline.standardize import standardize

    std = standardize(
        Path(ctx.source_path),
        options=ctx.read_options,
        aliases=ctx.aliases,
        max_bytes=ctx.max_bytes,
        pdf_processes=ctx.pdf_processes,
    )
    ctx.work.mkdir(parents=True, exist_ok=True)
    save_frame(std.frame, ctx.work / "standardize.arrow")
    save_note(
        ctx.work,
        Stage.STANDARDIZE,
        {
            "dataset": "standardize.arrow",
            "schema": std.schema,
            "type_errors": std.type_errors,
            "rejected": std.rejected,
            "meta": std.meta,
        },
    )
    rows = len(std.frame)
    return StageOutcome(
        Stage.STANDARDIZE.value,
        rows + len(std.rejected),
        rows,
        std.log,
        {"meta": std.meta, "schema": std.schema},
    )


def _validate(ctx: StageContext) -> StageOutcome:
    from batchops_core.pipeline.fixlist import write_fixlist_csv, write_fixlist_xlsx
    from batchops_core.pipeline.validate import Requirements, validate

    note = load_note(ctx.work, Stage.STANDARDIZE, Stage.VALIDATE)
    frame = load_frame(ctx.work / note["dataset"], Stage.VALIDATE)
    req = Requirements(tuple(ctx.required_columns), ctx.gradebook, ctx.key)
    result = validate(
        frame,
        note["schema"],
        req=req,
        type_errors=note["type_errors"],
        rejected=note["rejected"],
        threshold=ctx.error_threshold,
    )
    out: dict[str, Any] = {
        "report": result.report,
        "dataset": note["dataset"],
        "fixlist_csv": None,
        "fixlist_xlsx": None,
    }
    if result.problems:
        write_atomic(ctx.work / "fixlist.csv", lambda tmp: write_fixlist_csv(tmp, result.problems))
        out["fixlist_csv"] = "fixlist.csv"
        if note["meta"].get("format") in {"xlsx", "xls"} and result.quarantined is not None:
            quarantined = result.quarantined
            write_atomic(
                ctx.work / "fixlist.xlsx",
                lambda tmp: write_fixlist_xlsx(tmp, result.problems, quarantined),
            )
            out["fixlist_xlsx"] = "fixlist.xlsx"
    if len(result.frame) != len(frame):
        save_frame(result.frame, ctx.work / "validate.arrow")
        out["dataset"] = "validate.arrow"
    save_note(ctx.work, Stage.VALIDATE, out)
    rows_in = len(frame) + len(note["rejected"])
    log = result.log
    if result.report.get("rows_quarantined"):
        log.append(f"quarantined: {result.report['rows_quarantined']} rows (fix-list written)")
    return StageOutcome(
        Stage.VALIDATE.value, rows_in, len(result.frame), log, {"report": result.report}
    )


def _transform(ctx: StageContext) -> StageOutcome:
    from batchops_core.pipeline.plans import apply_plan, parse_plan
    from batchops_core.pipeline.summary import stats_from_table

    plan = parse_plan(ctx.mode, ctx.config)
    std = load_note(ctx.work, Stage.STANDARDIZE, Stage.TRANSFORM)
    val = load_note(ctx.work, Stage.VALIDATE, Stage.TRANSFORM)
    frame = load_frame(ctx.work / val["dataset"], Stage.TRANSFORM)
    applied = apply_plan(plan, frame, std["schema"])
    out: dict[str, Any] = {
        "plan": plan.describe(),
        "output": applied.output,
        "processed": val["dataset"],
        "table": val["dataset"],
        "table_schema": applied.schema,
        "extra": applied.extra,
    }
    if applied.output == "summary":
        save_frame(applied.frame, ctx.work / "transform.arrow")
        out["table"] = "transform.arrow"
        if not applied.extra.get("group_by"):
            out["stats_cache"] = stats_from_table(applied.frame)
    elif applied.frame is not frame:
        save_frame(applied.frame, ctx.work / "transform.arrow")
        out["table"] = out["processed"] = "transform.arrow"
    save_note(ctx.work, Stage.TRANSFORM, out)
    return StageOutcome(
        Stage.TRANSFORM.value,
        len(frame),
        len(applied.frame),
        [f"plan: {plan.describe()}", *applied.log],
        {"plan": plan.describe(), **applied.extra},
    )


def _metadata(
    ctx: StageContext, std: dict[str, Any], val: dict[str, Any], tra: dict[str, Any], rows_out: int
) -> list[tuple[str, str]]:
    meta = std.get("meta", {})
    read = meta.get("format", "")
    if read == "csv":
        read = (
            f"CSV ({meta.get('encoding')}, {meta.get('delimiter')!r}, "
            f"header row {meta.get('header_row')})"
        )
    elif read in {"xlsx", "xls"}:
        read = f"{read.upper()} (sheet {meta.get('sheet')!r}, header row {meta.get('header_row')})"
    elif read == "pdf":
        used = meta.get("pages_used") or []
        shown = (
            f"{used[0]}-{used[-1]}"
            if len(used) > 2 and used == list(range(used[0], used[-1] + 1))
            else ", ".join(str(p) for p in used)
        )
        read = f"PDF ({meta.get('pages')} pages, table from pages {shown})"
    report = val.get("report", {})
    rows = [
        ("File", ctx.filename),
        ("Source", ctx.source or "manual"),
        ("Uploaded", ctx.uploaded_at or "-"),
        ("Uploaded by", ctx.uploader or "-"),
        ("Processed", utcnow().strftime("%Y-%m-%d %H:%M UTC")),
        ("Read as", read),
        ("Plan", tra.get("plan", "")),
        ("Rows read", f"{report.get('rows_checked', 0):,}"),
        ("Rows quarantined", f"{report.get('rows_quarantined', 0):,}"),
        ("Rows in output", f"{rows_out:,}"),
    ]
    return rows


def _summarize(ctx: StageContext) -> StageOutcome:
    from batchops_core.pipeline.summary import summarize

    std = load_note(ctx.work, Stage.STANDARDIZE, Stage.SUMMARIZE)
    val = load_note(ctx.work, Stage.VALIDATE, Stage.SUMMARIZE)
    tra = load_note(ctx.work, Stage.TRANSFORM, Stage.SUMMARIZE)
    frame = load_table(ctx.work / tra["processed"], Stage.SUMMARIZE)  # Arrow, never pandas
    schema = dict(std["schema"]) if tra["output"] == "summary" else dict(tra["table_schema"])
    rows_out = len(frame) if tra["output"] != "summary" else len(frame)
    summary = summarize(
        frame,
        schema,
        metadata=_metadata(ctx, std, val, tra, rows_out),
        cached_stats=tra.get("stats_cache"),
    )
    summary["output"] = tra["output"]
    summary["plan"] = tra["plan"]
    summary["validation"] = val.get("report", {})
    summary["read"] = std.get("meta", {})
    save_note(ctx.work, Stage.SUMMARIZE, summary)
    log = [
        f"rows: {summary['rows']}, columns: {summary['columns']}",
        f"numeric columns described: {len(summary['numeric'])}",
    ]
    return StageOutcome(Stage.SUMMARIZE.value, len(frame), len(frame), log, {"summary": summary})


def safe_stem(filename: str) -> str:
    stem = Path(filename).stem
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")
    return stem[:80] or "upload"


def _statistics_table(summary: dict[str, Any]) -> pd.DataFrame | None:
    numeric = summary.get("numeric") or {}
    if not numeric:
        return None
    rows = [
        {
            "column": c,
            **{k: s.get(k) for k in ("count", "missing", "mean", "std", "min", "median", "max")},
        }
        for c, s in numeric.items()
    ]
    return pd.DataFrame(rows)


CSV_INLINE_ROWS = 2_000
"""Up to this many rows the CSV is written before the PDF on the same thread: a thread of its own
cost more than the few milliseconds it could overlap."""


def _timed(fn: Callable[..., Path], *args: Any) -> tuple[Path, float]:
    started = time.perf_counter()
    return fn(*args), 1000 * (time.perf_counter() - started)


def _publish(ctx: StageContext) -> StageOutcome:
    from batchops_core.pipeline.csv_out import write_csv
    from batchops_core.pipeline.pdf_out import write_pdf

    val = load_note(ctx.work, Stage.VALIDATE, Stage.PUBLISH)
    tra = load_note(ctx.work, Stage.TRANSFORM, Stage.PUBLISH)
    summary = load_note(ctx.work, Stage.SUMMARIZE, Stage.PUBLISH)
    table = load_table(ctx.work / tra["table"], Stage.PUBLISH)  # Arrow: streamed, sliced
    schema = tra.get("table_schema") or {}
    exports = Path(ctx.export_dir)
    stem = safe_stem(ctx.filename)
    paths: dict[str, str | None] = {
        "report_csv": None,
        "report_pdf": None,
        "fixlist_csv": None,
        "fixlist_xlsx": None,
    }
    log: list[str] = []
    try:
        exports.mkdir(parents=True, exist_ok=True)
        for key, suffix in (("fixlist_csv", "fixlist.csv"), ("fixlist_xlsx", "fixlist.xlsx")):
            target = exports / f"{stem}_{suffix}"
            if val.get(key):
                paths[key] = str(copy_atomic(ctx.work / val[key], target))
            else:
                target.unlink(missing_ok=True)  # left by an earlier attempt with problems
        neutralized = 0

        def csv_writer(tmp: Path) -> None:
            nonlocal neutralized
            neutralized = write_csv(table, tmp, schema)

        quarantined = int(val.get("report", {}).get("rows_quarantined") or 0)
        notes = []
        if quarantined:
            rows_word = "row was" if quarantined == 1 else "rows were"
            notes.append(
                f"{quarantined:,} {rows_word} quarantined and not in this report; the "
                "department's fix-list lists each problem."
            )
        pdf_info: dict[str, Any] = {}

        def pdf_writer(tmp: Path) -> None:
            pdf_info.update(
                write_pdf(
                    tmp,
                    title=f"{REPORT_TITLE}: {ctx.filename}",
                    metadata=[tuple(m) for m in summary.get("metadata", [])],  # type: ignore[misc]
                    table=table,
                    max_rows=ctx.pdf_max_rows,
                    statistics=None if tra["output"] == "summary" else _statistics_table(summary),
                    table_title="Summary statistics" if tra["output"] == "summary" else "Data",
                    notes=notes,
                )
            )

        csv_target, pdf_target = exports / f"{stem}_report.csv", exports / f"{stem}_report.pdf"
        if len(table) <= CSV_INLINE_ROWS:
            csv_path, csv_ms = _timed(write_atomic, csv_target, csv_writer)
            pdf_path, pdf_ms = _timed(write_atomic, pdf_target, pdf_writer)
        else:
            # The CSV (Arrow's writer, outside the GIL) is written on a second thread while this
            # one draws the PDF (Python): on two cores publish takes the longer of the two.
            with ThreadPoolExecutor(max_workers=1) as pool:
                csv_done = pool.submit(_timed, write_atomic, csv_target, csv_writer)
                try:
                    pdf_path, pdf_ms = _timed(write_atomic, pdf_target, pdf_writer)
                finally:
                    csv_path, csv_ms = csv_done.result()  # its error, if any, wins: it came first
        paths["report_pdf"] = str(pdf_path)
        paths["report_csv"] = str(csv_path)
        log.append(f"CSV: {len(table):,} rows in {csv_ms:.0f} ms")
        if neutralized:
            log.append(f"formula-like cells neutralized in the CSV: {neutralized}")
        log.append(
            f"PDF: {pdf_info.get('pages')} pages, {pdf_info.get('rows_shown'):,} of "
            f"{pdf_info.get('rows_total'):,} rows in {pdf_ms:.0f} ms"
        )
        if pdf_info.get("capped"):
            log.append(f"PDF capped at {ctx.pdf_max_rows:,} rows (noted in the report)")
    except OSError as exc:
        raise StageError(
            Stage.PUBLISH,
            E.PUBLISH_FAILED,
            f"the reports could not be written to {exports}: {exc.strerror or exc}",
            hint="Check free disk space and permissions of this host's data directory "
            "(its scratch folder), then retry from publish.",
            details={"export_dir": str(exports)},
        ) from None
    status = "partial" if int(val.get("report", {}).get("rows_quarantined") or 0) else "published"
    data = {
        **paths,
        "status": status,
        "rows_out": len(table) if tra["output"] != "summary" else int(summary.get("rows", 0)),
        "table_rows": len(table),
    }
    return StageOutcome(Stage.PUBLISH.value, len(table), len(table), log, data)


STAGE_FUNCTIONS: dict[Stage, Callable[[StageContext], StageOutcome]] = {
    Stage.STANDARDIZE: _standardize,
    Stage.VALIDATE: _validate,
    Stage.TRANSFORM: _transform,
    Stage.SUMMARIZE: _summarize,
    Stage.PUBLISH: _publish,
}


def run_stage(stage: Stage | str, ctx: StageContext) -> StageOutcome:
    """Run one stage; the process-pool entry point (module-level, so it pickles by name)."""
    stage = Stage(stage)
    started_at = utcnow()
    started = time.perf_counter()
    try:
        outcome = STAGE_FUNCTIONS[stage](ctx)
    except StageError:
        raise
    except MemoryError:
        raise StageError(
            stage,
            E.INTERNAL,
            "the worker ran out of memory on this file",
            hint="Split the file, or run it on a worker with more memory.",
        ) from None
    except Exception as exc:
        raise StageError(
            stage,
            E.INTERNAL,
            f"{type(exc).__name__}: {str(exc)[:500]}",
            hint="This is a BatchOps defect; report it with the upload id.",
        ) from exc
    finally:
        _release_memory()
    outcome.duration_ms = round(1000 * (time.perf_counter() - started), 1)
    outcome.started_at = started_at
    return outcome


PROGRESS = "progress.jsonl"
"""Written by `run_stages` in the work directory: one line as each stage starts and one with
its outcome as it ends, so the runner can tell what a process that died had done."""


def run_stages(stages: Sequence[Stage], ctx: StageContext) -> StagesResult:
    """Run `stages` in order in this process and return what they did (a pool entry point).

    A small upload's whole pipeline takes a few milliseconds of work, less than the round trips
    of running each stage as its own pool call; this runs them in one. A `StageError` stops the
    run and comes back with the outcomes before it, so the runner still records every step. The
    progress file is flushed line by line (no fsync: it serves a crash of this process, not of
    the host) and read back by `read_progress` when the process dies.
    """
    ctx.work.mkdir(parents=True, exist_ok=True)
    done: list[StageOutcome] = []
    with (ctx.work / PROGRESS).open("w", encoding="utf-8") as progress:
        for stage in stages:
            progress.write(json.dumps({"running": Stage(stage).value}) + "\n")
            progress.flush()
            try:
                outcome = run_stage(stage, ctx)
            except StageError as err:
                return StagesResult(done, err)
            done.append(outcome)
            progress.write(json.dumps({"done": vars(outcome)}, default=str) + "\n")
            progress.flush()
    return StagesResult(done)


def read_progress(ctx: StageContext) -> tuple[list[StageOutcome], Stage | None]:
    """The outcomes a dead `run_stages` process finished, and the stage it was in (None when
    it left no line: it died before its first stage)."""
    done: list[StageOutcome] = []
    running: Stage | None = None
    try:
        lines = (ctx.work / PROGRESS).read_text(encoding="utf-8").splitlines()
    except OSError:
        return done, None
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # the last line, cut by the death
            break
        if "running" in entry:
            running = Stage(entry["running"])
        elif "done" in entry:
            fields = dict(entry["done"])
            started = fields.pop("started_at", None)
            outcome = StageOutcome(**fields)
            outcome.started_at = datetime.fromisoformat(started) if started else None
            done.append(outcome)
            running = None
    return done, running


def _release_memory() -> None:
    """Hand Arrow's freed buffers back to the OS between stages: a warm worker otherwise keeps
    the high-water mark of the biggest file it ever read."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def run_all(ctx: StageContext, from_stage: Stage | None = None) -> list[StageOutcome]:
    """Run the stages in order in this process (tests, benchmarks, the `--once` path)."""
    start = STAGES.index(from_stage) if from_stage else 0
    return [run_stage(stage, ctx) for stage in STAGES[start:]]
