"""`batchops account …`: the email-code flows for scripts (the TUI sign-in screen has the same).

`send-code` answers the same whether or not the account exists, like the service it calls.
"""

from __future__ import annotations

import argparse
import sys

from batchops_core import codes
from batchops_core.enums import CodePurpose
from batchops_core.errors import ValidationFailed
from batchops_tui.cli.common import EXIT_OK, Cli, read_password


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("account", help="verify an email address or reset a password by code")
    commands = group.add_subparsers(title="account commands", metavar="ACTION", required=True)

    send = commands.add_parser("send-code", help="email a verification or reset code")
    send.add_argument("user", metavar="USER", help="username or email address")
    send.add_argument(
        "--purpose", choices=[p.value for p in CodePurpose], default=CodePurpose.VERIFY.value
    )
    send.set_defaults(handler=send_code_command)

    verify = commands.add_parser("verify", help="verify the account's email with a code")
    verify.add_argument("user", metavar="USER")
    verify.add_argument("--code", required=True, metavar="CODE")
    verify.set_defaults(handler=verify_command)

    reset = commands.add_parser("reset", help="choose a new password with a reset code")
    reset.add_argument("user", metavar="USER")
    reset.add_argument("--code", required=True, metavar="CODE")
    reset.add_argument(
        "--password-stdin", action="store_true", help="read the new password from standard input"
    )
    reset.set_defaults(handler=reset_command)


async def send_code_command(args: argparse.Namespace, cli: Cli) -> int:
    purpose = CodePurpose(args.purpose)
    db = await cli.database()
    await codes.request_code(db, cli.settings, username_or_email=args.user, purpose=purpose)
    what = "verification" if purpose is CodePurpose.VERIFY else "password reset"
    cli.print(
        f"if '{args.user}' names an account that needs a {what} code, one was emailed to its "
        f"address; it expires in {cli.settings.security.code_ttl_minutes} minutes."
    )
    return EXIT_OK


async def verify_command(args: argparse.Namespace, cli: Cli) -> int:
    db = await cli.database()
    await codes.verify_email(db, cli.settings, username=args.user, code=args.code)
    cli.print(f"the email address of '{args.user}' is verified; the account can sign in now.")
    return EXIT_OK


async def reset_command(args: argparse.Namespace, cli: Cli) -> int:
    db = await cli.database()
    if not args.password_stdin and not sys.stdin.isatty():
        raise ValidationFailed(
            "there is no terminal to ask for the password: use --password-stdin."
        )
    password = read_password(f"New password for {args.user}: ", stdin=args.password_stdin)
    await codes.reset_password(
        db, cli.settings, username=args.user, code=args.code, new_password=password
    )
    cli.print(
        f"the password of '{args.user}' was changed and every open session ended; sign in with "
        "the new password."
    )
    return EXIT_OK
