"""`batchops upload cancel ID…`: stop queued or processing uploads (recorded `cancelled`).

Reached through the `upload` command (its first path is the word `cancel` and no file of that
name exists here), so `batchops upload cancel 12 13` reads as it should. A queued upload is never
picked up; a processing one stops at its next stage boundary without publishing. Staff may
cancel any upload, others their own. Exit 0 all cancelled, 1 any refused, 2 usage.
"""

from __future__ import annotations

import argparse

from batchops_core.errors import BatchOpsError
from batchops_core.services.actions import cancel_upload
from batchops_tui.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Cli, signed_in_actor


async def cancel_uploads(args: argparse.Namespace, cli: Cli) -> int:
    ids = args.paths[1:]
    if not ids or not all(i.lstrip("#").isdigit() for i in ids):
        cli.error("usage: batchops upload cancel ID [ID ...] (upload numbers).")
        return EXIT_USAGE
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    results: list[dict[str, object]] = []
    failed = False
    for raw in ids:
        upload_id = int(raw.lstrip("#"))
        try:
            async with db.unit() as uow:
                done = await cancel_upload(uow, actor=actor, upload_id=upload_id)
        except BatchOpsError as exc:
            failed = True
            results.append({"upload_id": upload_id, "cancelled": False, "error": str(exc)})
            if not args.json:
                cli.error(str(exc))
            continue
        results.append({**done.as_json(), "cancelled": True})
        if not args.json:
            cli.print(f"upload #{upload_id} cancelled (it was {done.was}).")
    if args.json:
        cli.print_json(results)
    return EXIT_FAILED if failed else EXIT_OK
