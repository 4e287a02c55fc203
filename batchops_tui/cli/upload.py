"""`batchops upload PATH… [--plan MODE] [--plan-config JSON|@FILE] [--source DEPARTMENT] [--wait]
[--json]`: store and queue files for the pipeline, from a shell or a cron job.

Each file is stored and queued (or refused at intake with a code: BAD_PATH, FILE_TOO_LARGE).
With Redis the uploads go to the daemon's queue; without Redis (or when it cannot be reached) this
process runs them itself on the embedded worker before returning, so one command is enough on a
fresh machine. `--wait` returns when every upload is published (or partial) or failed.

Exit status: 0 every file accepted (with `--wait`: every upload published or partial); 1 any file
refused, failed or a duplicate of a published one; 2 usage error (bad plan, JSON, department).
Uploads are attributed to `--as USER` (password from `--password-stdin` or BATCHOPS_PASSWORD), or
else to the local shell user as `cli`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from batchops_core.enums import ProcessMode, UploadStatus
from batchops_core.errors import ValidationFailed
from batchops_tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Cli,
    signed_in_actor,
    table,
)

POLL_SECONDS = 0.5


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "upload",
        help="store and queue files for processing",
        description="Store each file and queue it for the five pipeline stages.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="CSV, XLSX or PDF files; or `cancel ID…` to stop queued or processing uploads",
    )
    parser.add_argument(
        "--plan",
        default=ProcessMode.TRANSFORM.value,
        help="processing plan: transform (default), append, delete or custom",
    )
    parser.add_argument(
        "--plan-config",
        metavar="JSON|@FILE",
        help="the plan's settings as JSON, or @path of a JSON file",
    )
    parser.add_argument(
        "--source",
        default="manual",
        metavar="DEPARTMENT",
        help="department the files come from (default: manual)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="return when every upload is published or failed"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per upload")
    parser.add_argument(
        "--force",
        action="store_true",
        help="process a file even when the same bytes were already published from this source",
    )
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        help="act as this account (default: the local 'cli' user)",
    )
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the --as account's password from stdin"
    )
    parser.set_defaults(handler=handle_upload)


def plan_config_from(text: str | None) -> dict[str, Any]:
    """Parse `--plan-config`: inline JSON or `@file`; ValidationFailed names what is wrong."""
    if not text:
        return {}
    source = "--plan-config"
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationFailed(
                f"--plan-config {path}: cannot be read ({exc.strerror})."
            ) from None
        source = str(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    if not isinstance(value, dict):
        raise ValidationFailed(f'{source} must be a JSON object, e.g. {{"group_by": "class"}}.')
    return value


async def _dispatcher(cli: Cli, db: Any) -> Any:
    from batchops_core.worker.dispatcher import Dispatcher

    try:
        return await Dispatcher.connect(db, cli.settings)
    except Exception as exc:  # Redis configured but down: process here rather than not at all
        cli.error(f"Redis is not reachable ({exc}); processing in this process instead.")
        return Dispatcher(db, cli.settings)


async def handle_upload(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.services.uploads import IntakeRejected, check_plan, get_uploads, submit

    if args.paths[0] == "cancel" and not Path("cancel").exists():
        from batchops_tui.cli.cancel import cancel_uploads

        return await cancel_uploads(args, cli)
    try:
        check_plan(args.plan, plan_config_from(args.plan_config))
    except (ValidationFailed, IntakeRejected) as exc:
        cli.error(f"invalid plan: {exc}")
        return EXIT_USAGE
    db = await cli.database()
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    dispatcher = await _dispatcher(cli, db)
    try:
        try:
            submitted = await submit(
                db,
                dispatcher,
                actor=actor,
                files=[Path(raw) for raw in args.paths],
                source=args.source,
                plan_mode=args.plan,
                plan_config=plan_config_from(args.plan_config),
                force=args.force,
            )
        except ValidationFailed as exc:  # unknown department: the same for every file
            cli.error(str(exc))
            return EXIT_USAGE
        queued = [
            s.upload.id
            for s in submitted
            if s.upload is not None and s.upload.status is UploadStatus.QUEUED
        ]
        if dispatcher.embedded:
            await dispatcher.wait_idle()
        if args.wait and queued:
            await _wait(cli, db, queued)
    finally:
        await dispatcher.close()
        from batchops_core.pipeline.pool import shutdown_pool

        shutdown_pool()
    accepted = [s.upload.id for s in submitted if s.upload is not None]
    async with db.unit() as session:
        latest = {
            u.id: u.as_json() for u in await get_uploads(session, actor=actor, upload_ids=accepted)
        }
    results = [
        latest[s.upload.id]
        if s.upload is not None
        else _rejected(s.path, s.rejected.code if s.rejected else "", str(s.rejected))
        for s in submitted
    ]
    _print(cli, results, as_json=args.json)
    return _exit_status(results, waited=args.wait or not queued or _embedded(cli))


def _embedded(cli: Cli) -> bool:
    return not cli.settings.uses_redis


async def _wait(cli: Cli, db: Any, ids: list[int]) -> None:
    """Until every upload is final, whoever processes it (this process, a daemon, another host)."""
    from batchops_core.services.status import wait_until_final

    timeout = cli.settings.worker.job_timeout * max(1, len(ids)) + 60
    infos = await wait_until_final(db, ids, timeout=timeout, poll=POLL_SECONDS)
    if not all(i.finished for i in infos):
        cli.error("gave up waiting; the uploads are still being processed (see `batchops status`).")


def _rejected(raw: str, code: str, message: str) -> dict[str, Any]:
    return {
        "id": None,
        "filename": Path(raw).name,
        "status": "rejected",
        "rows_in": None,
        "rows_out": None,
        "report_csv": None,
        "report_pdf": None,
        "error_code": code,
        "error_message": message,
    }


def _exit_status(results: list[dict[str, Any]], *, waited: bool) -> int:
    if any(r["status"] in {"rejected", "failed", "duplicate"} for r in results):
        return EXIT_FAILED
    stored = [UploadStatus(r["status"]) for r in results if r["id"] is not None]
    if waited and any(not status.is_success for status in stored):
        return EXIT_FAILED
    return EXIT_OK


def _print(cli: Cli, results: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        cli.print_json(results)
        return
    rows = [
        [
            str(r["id"] or "-"),
            r["filename"],
            r["status"],
            "" if r["rows_out"] is None else str(r["rows_out"]),
            r["report_pdf"] or r["report_csv"] or "",
            f"{r['error_code']}: {r['error_message']}" if r["error_code"] else "",
        ]
        for r in results
    ]
    cli.print(table(rows, ["id", "file", "status", "rows", "report", "error"]))
