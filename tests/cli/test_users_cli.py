"""`batchops user|account|audit` through `main([...])`: exit codes, one-sentence errors, effects."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchops_tui.cli.main import main
from tests.mailserver import MailServer, closed_port

PASSWORD = "lantern-harbour-9"


@pytest.fixture
def cli_env(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.MonkeyPatch]:
    """Environment for `main`: the test database, no config file, no Redis, no SMTP."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BATCHOPS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BATCHOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BATCHOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("BATCHOPS_REDIS_URL", "")
    monkeypatch.setenv("BATCHOPS_SMTP_HOST", "")
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    yield monkeypatch


def run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *argv: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def use_mail(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("BATCHOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BATCHOPS_SMTP_PORT", str(port))
    monkeypatch.setenv("BATCHOPS_SMTP_TIMEOUT", "5")


def users_json(capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch) -> dict[str, dict]:
    code, out, _ = run(capsys, env, "user", "list", "--json")
    assert code == 0
    return {u["username"]: u for u in json.loads(out)}


def add(capsys, env, name: str, role: str, email: str, password: str = PASSWORD, *extra: str):
    return run(
        capsys,
        env,
        "user",
        "add",
        name,
        "--role",
        role,
        "--email",
        email,
        "--password-stdin",
        *extra,
        stdin=password + "\n",
    )


def test_add_admin_then_list(cli_env: pytest.MonkeyPatch, capsys) -> None:
    code, out, err = add(capsys, cli_env, "Root", "admin", "root@school.example")
    assert (code, err) == (0, "")
    assert "created admin account 'root' <root@school.example>" in out
    listed = users_json(capsys, cli_env)
    assert listed["root"]["role"] == "admin" and listed["root"]["state"] == "active"
    code, out, _ = run(capsys, cli_env, "user", "list")
    assert out.splitlines()[0].split() == [
        "USER",
        "ROLE",
        "EMAIL",
        "STATE",
        "LAST",
        "SIGN-IN",
        "(UTC)",
    ]


@pytest.mark.parametrize(
    ("name", "role", "email", "password", "sentence"),
    [
        ("root", "admin", "other@school.example", PASSWORD, "a user named 'root' already exists."),
        ("ann", "wizard", "ann@school.example", PASSWORD, "'wizard' is not a role; choose one of"),
        ("ann", "user", "ann-at-school", PASSWORD, "'ann-at-school' is not a valid email address."),
        ("ann", "user", "ann@school.example", "short", "at least 10 characters"),
        ("ann", "user", "ann@school.example", "iloveyou123", "most common passwords"),
    ],
)
def test_add_refusals_change_nothing(
    cli_env: pytest.MonkeyPatch, capsys, name, role, email, password, sentence
) -> None:
    assert add(capsys, cli_env, "root", "admin", "root@school.example")[0] == 0
    code, out, err = add(capsys, cli_env, name, role, email, password)
    assert code == 1 and out == ""
    assert err.startswith("batchops: ") and sentence in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert set(users_json(capsys, cli_env)) == {"root"}


def test_add_without_terminal_or_password_stdin(cli_env: pytest.MonkeyPatch, capsys) -> None:
    code, _, err = run(
        capsys, cli_env, "user", "add", "ann", "--role", "user", "--email", "ann@school.example"
    )
    assert code == 1 and "use --password-stdin" in err
    assert users_json(capsys, cli_env) == {}


def test_add_user_sends_code_and_account_verify(cli_env: pytest.MonkeyPatch, capsys) -> None:
    with MailServer() as server:
        use_mail(cli_env, server.port)
        code, out, err = add(capsys, cli_env, "ann", "user", "ann@school.example")
        assert (code, err) == (0, "")
        assert "a verification code was emailed to ann@school.example" in out
        message = server.last(to="ann@school.example")
        assert users_json(capsys, cli_env)["ann"]["state"] == "unverified"
        code, out, err = run(capsys, cli_env, "account", "verify", "ann", "--code", "000000")
        if message.code != "000000":
            assert code == 1 and "the code is wrong or no longer valid" in err
        code, out, err = run(capsys, cli_env, "account", "verify", "ann", "--code", message.code)
        assert (code, err) == (0, "") and "is verified" in out
        assert users_json(capsys, cli_env)["ann"]["state"] == "active"


def test_add_user_with_mail_down_keeps_account(cli_env: pytest.MonkeyPatch, capsys) -> None:
    use_mail(cli_env, closed_port())
    code, out, err = add(capsys, cli_env, "ann", "user", "ann@school.example")
    assert code == 1
    assert "the account 'ann' was created, but its verification code could not be sent" in err
    assert "batchops account send-code ann --purpose verify" in err
    assert users_json(capsys, cli_env)["ann"]["email_verified"] is False


def test_add_verified_sends_nothing(cli_env: pytest.MonkeyPatch, capsys) -> None:
    code, out, err = add(
        capsys, cli_env, "ann", "moderator", "ann@school.example", PASSWORD, "--verified"
    )
    assert (code, err) == (0, "")
    assert users_json(capsys, cli_env)["ann"]["state"] == "active"


def test_set_role_disable_and_last_admin(cli_env: pytest.MonkeyPatch, capsys) -> None:
    add(capsys, cli_env, "root", "admin", "root@school.example")
    add(capsys, cli_env, "ann", "user", "ann@school.example", PASSWORD, "--verified")
    for argv, sentence in [
        (("set-role", "root", "user"), "'root' is the last active admin and cannot be demoted."),
        (("disable", "root"), "'root' is the last active admin and cannot be disabled."),
        (("set-role", "ann", "boss"), "'boss' is not a role"),
        (("disable", "nobody"), "there is no user named 'nobody'."),
    ]:
        code, out, err = run(capsys, cli_env, "user", *argv)
        assert code == 1 and sentence in err and out == ""
    code, out, _ = run(capsys, cli_env, "user", "set-role", "ann", "moderator")
    assert code == 0 and "'ann' is now moderator (was user)" in out
    code, out, _ = run(capsys, cli_env, "user", "disable", "ann")
    assert code == 0 and "'ann' is disabled" in out
    listed = users_json(capsys, cli_env)
    assert listed["root"]["role"] == "admin" and listed["root"]["active"]
    assert listed["ann"]["state"] == "disabled" and listed["ann"]["role"] == "moderator"
    code, out, _ = run(capsys, cli_env, "user", "enable", "ann")
    assert code == 0 and users_json(capsys, cli_env)["ann"]["state"] == "active"


def test_send_code_same_answer_for_unknown(cli_env: pytest.MonkeyPatch, capsys) -> None:
    add(capsys, cli_env, "ann", "user", "ann@school.example", PASSWORD, "--verified")
    with MailServer() as server:
        use_mail(cli_env, server.port)
        answers = []
        for who in ("ann", "ghost"):
            code, out, err = run(capsys, cli_env, "account", "send-code", who, "--purpose", "reset")
            assert (code, err) == (0, "")
            answers.append(out.replace(f"'{who}'", "'X'"))
        assert answers[0] == answers[1]
        assert len(server.messages) == 1
        code, out, err = run(
            capsys,
            cli_env,
            "account",
            "reset",
            "ann",
            "--code",
            server.last().code,
            "--password-stdin",
            stdin="new-lantern-harbour\n",
        )
        assert (code, err) == (0, "") and "every open session ended" in out


def test_send_code_without_mail_configured(cli_env: pytest.MonkeyPatch, capsys) -> None:
    code, out, err = run(capsys, cli_env, "account", "send-code", "ghost")
    assert code == 1 and "mail is not configured" in err


def test_audit_command(cli_env: pytest.MonkeyPatch, capsys) -> None:
    add(capsys, cli_env, "root", "admin", "root@school.example")
    add(capsys, cli_env, "ann", "user", "ann@school.example", PASSWORD, "--verified")
    run(capsys, cli_env, "user", "disable", "ann")
    code, out, err = run(capsys, cli_env, "audit", "--action", "user", "--json")
    assert code == 0
    page = json.loads(out)
    assert [i["action"] for i in page["items"]] == ["user.disable", "user.create", "user.create"]
    assert page["items"][0]["actor_name"].startswith("cli:")
    code, out, _ = run(capsys, cli_env, "audit", "--target", "ann", "--since", "1h", "--limit", "1")
    assert code == 0 and "user.disable" in out and "next page: --offset 1" in out
    code, out, _ = run(capsys, cli_env, "audit", "--since", "2000-01-01", "--action", "auth")
    assert code == 0 and out.strip() == "no audit entries match."
    for argv, sentence in [
        (("--since", "yesterday"), "is not a date"),
        (("--limit", "0"), "--limit must be between 1 and 1000."),
    ]:
        code, _, err = run(capsys, cli_env, "audit", *argv)
        assert code == 1 and sentence in err


def test_unlock_after_lockout(cli_env: pytest.MonkeyPatch, capsys, db_url: str) -> None:
    from batchops_core import accounts
    from batchops_core.errors import AuthenticationFailed
    from batchops_core.infra.config import load_settings
    from batchops_core.infra.db import open_database

    add(capsys, cli_env, "ann", "user", "ann@school.example", PASSWORD, "--verified")
    settings = load_settings()

    async def sign_in(password: str) -> str:
        db = open_database(settings)
        try:
            async with db.sessions() as session:
                try:
                    await accounts.authenticate(
                        session, username="ann", password=password, policy=settings.security
                    )
                    return "ok"
                except AuthenticationFailed as exc:
                    return str(exc)
                finally:
                    await session.commit()
        finally:
            await db.dispose()

    for _ in range(settings.security.lockout_threshold):
        asyncio.run(sign_in("bad-password-guess"))
    assert "locked" in asyncio.run(sign_in(PASSWORD))
    assert users_json(capsys, cli_env)["ann"]["state"] == "locked"
    code, out, _ = run(capsys, cli_env, "user", "unlock", "ann")
    assert code == 0 and "'ann' is unlocked." in out
    assert asyncio.run(sign_in(PASSWORD)) == "ok"
