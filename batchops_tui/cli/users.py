"""`batchops user …`: create and administer accounts from a shell.

The CLI acts with the trust of whoever can read the configuration (and so reach the database):
`common.shell_operator()`, an admin named after the OS login, so the audit trail says who ran it.
Every refusal is one sentence and exit status 1; nothing is changed before all checks pass.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from batchops_core import accounts
from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_core.errors import ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.services import users as user_service
from batchops_tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Cli,
    read_password,
    shell_operator,
    table,
)

ROLE_CHOICES = "|".join(r.value for r in Role)


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("user", help="create and administer accounts")
    commands = group.add_subparsers(title="user commands", metavar="ACTION", required=True)

    add = commands.add_parser("add", help="create an account (non-admins get a verification code)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, help=ROLE_CHOICES)
    add.add_argument("--email", required=True, metavar="E")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument(
        "--verified",
        action="store_true",
        help="vouch for the email address: no verification code is sent",
    )
    add.set_defaults(handler=add_command)

    listing = commands.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=list_command)

    set_role = commands.add_parser("set-role", help="change an account's role")
    set_role.add_argument("name", metavar="NAME")
    set_role.add_argument("role", metavar="ROLE", help=ROLE_CHOICES)
    set_role.set_defaults(handler=set_role_command)

    set_dept = commands.add_parser(
        "set-department", help="put an account in a department ('none' to take it out)"
    )
    set_dept.add_argument("name", metavar="NAME")
    set_dept.add_argument("department", metavar="DEPARTMENT|none")
    set_dept.set_defaults(handler=set_department_command)

    for action, text in [
        ("disable", "disable an account and end its sessions"),
        ("enable", "enable a disabled account"),
        ("unlock", "lift a lockout after failed sign-ins"),
        ("reset-password", "require a new password and email a reset code"),
    ]:
        command = commands.add_parser(action, help=text)
        command.add_argument("name", metavar="NAME")
        command.set_defaults(handler=admin_command, action=action)


def _state(user: UserInfo, now: datetime) -> str:
    if not user.active:
        return "disabled"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    if not user.email_verified:
        return "unverified"
    return "active"


async def add_command(args: argparse.Namespace, cli: Cli) -> int:
    role = accounts.parse_role(args.role)
    name = accounts.check_username(args.name)
    email = accounts.check_email(args.email)
    db = await cli.database()
    async with db.unit() as session:
        if await accounts.user_exists(session, name):
            raise ValidationFailed(f"a user named '{name}' already exists.")
    if not args.password_stdin and not sys.stdin.isatty():
        raise ValidationFailed(
            "there is no terminal to ask for the password: use --password-stdin."
        )
    password = read_password(f"Password for {name}: ", stdin=args.password_stdin)
    accounts.check_password(password, name, cli.settings.security)
    try:
        user = await user_service.create_account(
            db,
            cli.settings,
            actor=shell_operator(),
            username=name,
            email=email,
            role=role,
            password=password,
            verified=True if args.verified else None,
        )
    except user_service.CodeNotSent as exc:
        cli.error(str(exc))
        return EXIT_FAILED
    cli.print(f"created {user.role.value} account '{user.username}' <{user.email}>.")
    if not user.email_verified:
        cli.print(
            f"a verification code was emailed to {user.email}; the account can sign in once it "
            "is verified."
        )
    return EXIT_OK


async def list_command(args: argparse.Namespace, cli: Cli) -> int:
    db = await cli.database()
    async with db.unit() as session:
        found = await accounts.list_users(session, actor=shell_operator())
    now = utcnow()
    if args.json:
        cli.print_json(
            [
                {
                    "username": u.username,
                    "role": u.role.value,
                    "email": u.email,
                    "email_verified": u.email_verified,
                    "active": u.active,
                    "state": _state(u, now),
                    "locked_until": u.locked_until,
                    "last_login_at": u.last_login_at,
                    "created_at": u.created_at,
                }
                for u in found
            ]
        )
        return EXIT_OK
    rows = [
        [
            u.username,
            u.role.value,
            u.email,
            _state(u, now),
            u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
        ]
        for u in found
    ]
    cli.print(table(rows, ["USER", "ROLE", "EMAIL", "STATE", "LAST SIGN-IN (UTC)"]))
    return EXIT_OK


async def set_role_command(args: argparse.Namespace, cli: Cli) -> int:
    role = accounts.parse_role(args.role)
    db = await cli.database()
    async with db.unit() as session:
        before = (await accounts.get_user(session, args.name)).role
        user = await accounts.set_role(
            session, actor=shell_operator(), username=args.name, role=role
        )
    if before is role:
        cli.print(f"'{user.username}' is already {role.value}; nothing changed.")
    else:
        cli.print(f"'{user.username}' is now {role.value} (was {before.value}); sessions ended.")
    return EXIT_OK


async def admin_command(args: argparse.Namespace, cli: Cli) -> int:
    db = await cli.database()
    actor = shell_operator()
    if args.action == "reset-password":
        await user_service.force_password_reset(db, cli.settings, actor=actor, username=args.name)
        cli.print(
            f"'{args.name}' must choose a new password; a reset code was emailed and every open "
            "session ended."
        )
        return EXIT_OK
    async with db.unit() as session:
        if args.action == "unlock":
            user = await accounts.unlock_user(session, actor=actor, username=args.name)
            cli.print(f"'{user.username}' is unlocked.")
            return EXIT_OK
        active = args.action == "enable"
        user = await accounts.set_active(session, actor=actor, username=args.name, active=active)
    word = "enabled" if active else "disabled; its sessions ended"
    cli.print(f"'{user.username}' is {word}.")
    return EXIT_OK


async def set_department_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.services.departments import set_user_department

    db = await cli.database()
    async with db.unit() as session:
        name = await set_user_department(
            session, actor=shell_operator(), username=args.name, department=args.department
        )
    cli.print(f"'{args.name}' is now in {name}." if name else f"'{args.name}' is in no department.")
    return EXIT_OK
