"""`batchops schedule …` through `main([...])`: sign-in, admin-only changes, exit codes, output."""

from __future__ import annotations

import io
import json

import pytest

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_tui.cli.main import main
from tests.conftest import TEST_PASSWORD

Users = dict[Role, UserInfo]


def run(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    env.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["schedule", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def as_admin(env: pytest.MonkeyPatch) -> None:
    env.setenv("BATCHOPS_USER", "admin1")
    env.setenv("BATCHOPS_PASSWORD", TEST_PASSWORD)


def test_list_and_next_work_without_signing_in(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, cli_env, "list")
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["ID", "NAME", "TASK", "CRON"]
    assert "Nightly backup" in out and "run_daily_backup" in out
    code, out, _ = run(capsys, cli_env, "list", "--json", "--search", "ingest")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 6 and all(r["task"].startswith("ingest") for r in rows)
    code, out, _ = run(capsys, cli_env, "next", "Nightly backup", "-n", "3")
    assert code == 0 and len(out.strip().splitlines()) == 4 and "02:00 UTC" in out
    code, out, _ = run(
        capsys, cli_env, "next", "--cron", "30 2 * * *", "--tz", "Europe/Paris", "-n", "2"
    )
    assert code == 0 and "02:30 CE" in out  # CET or CEST, local wall time shown
    code, _, err = run(capsys, cli_env, "next")
    assert code == 2 and "either a schedule" in one_line(err)


def test_signed_in_changes_need_an_admin_account(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("add", "Backup at noon", "--task", "run_daily_backup", "--cron", "0 12 * * *")
    code, _, err = run(capsys, cli_env, *argv, "--as", "admin1")
    assert code == 1 and "--as admin1 needs a password" in one_line(err)
    code, _, err = run(
        capsys, cli_env, *argv, "--as", "moderator1", "--password-stdin", stdin=TEST_PASSWORD + "\n"
    )
    assert code == 1 and "may not create or edit schedules" in one_line(err)
    code, _, err = run(
        capsys, cli_env, *argv, "--as", "admin1", "--password-stdin", stdin="wrong-password\n"
    )
    assert code == 1 and "wrong username or password" in one_line(err)
    for verb in ("disable", "enable"):
        code, _, err = run(
            capsys,
            cli_env,
            verb,
            "Nightly backup",
            "--as",
            "user1",
            "--password-stdin",
            stdin=TEST_PASSWORD + "\n",
        )
        assert code == 1 and "may not create or edit schedules" in one_line(err)
    code, out, _ = run(capsys, cli_env, "list", "--json", "--search", "noon")
    assert json.loads(out) == []


def test_shell_operator_acts_as_admin(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("add", "Backup at noon", "--task", "run_daily_backup", "--cron", "0 12 * * *")
    code, out, err = run(capsys, cli_env, *argv)
    assert code == 0, err
    code, out, _ = run(capsys, cli_env, "list", "--json", "--search", "noon")
    assert [row["name"] for row in json.loads(out)] == ["Backup at noon"]
    code, _, err = run(capsys, cli_env, "disable", "Backup at noon")
    assert code == 0, err
    code, out, _ = run(capsys, cli_env, "list", "--json", "--search", "noon")
    assert json.loads(out)[0]["enabled"] is False


def test_admin_adds_edits_disables_and_enables(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    as_admin(cli_env)
    code, out, err = run(
        capsys,
        cli_env,
        "add",
        "Library at dawn",
        "--task",
        "ingest_department",
        "--cron",
        "0 5 * * 1-5",
        "--tz",
        "Asia/Kolkata",
        "--arg",
        "department=library",
    )
    assert code == 0, err
    assert "schedule #18 'Library at dawn' created" in out and "IST" in out
    code, out, _ = run(capsys, cli_env, "list", "--json", "--search", "dawn")
    (row,) = json.loads(out)
    assert row["arguments"] == {"department": "Library"} and row["enabled"] is True
    code, out, _ = run(capsys, cli_env, "edit", "Library at dawn", "--cron", "30 5 * * 1-5")
    assert code == 0 and "'30 5 * * 1-5'" in out
    code, out, _ = run(capsys, cli_env, "disable", "18")
    assert code == 0 and "disabled, next run -." in out
    code, out, _ = run(capsys, cli_env, "enable", "library at dawn")
    assert code == 0 and "enabled, next run 20" in out
    code, _, err = run(capsys, cli_env, "edit", "18")
    assert code == 2 and "nothing to change" in one_line(err)
    code, _, err = run(capsys, cli_env, "edit", "No such schedule", "--cron", "0 1 * * *")
    assert code == 1 and "no schedule named or numbered" in one_line(err)


BAD_INPUT: list[tuple[tuple[str, ...], str]] = [
    (("--cron", "0 6 * *"), "has 4 field(s)"),
    (("--cron", "0 0 6 * * *"), "has 6 field(s)"),
    (("--cron", "0 6 * * *", "--tz", "Moon/Base"), "not a known timezone"),
    (("--cron", "0 6 * * *", "--task", "make_tea"), "'make_tea' is not a schedulable task"),
    (("--cron", "0 6 * * *", "--args", "{nope"), "--args is not valid JSON"),
    (("--cron", "0 6 * * *", "--arg", "department=Zoo"), "no department named 'Zoo'"),
    (("--cron", "0 6 * * *", "--arg", "nokey"), "must look like KEY=VALUE"),
]


def test_bad_input_is_one_sentence_and_exit_1(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    as_admin(cli_env)
    for extra, message in BAD_INPUT:
        task = () if "--task" in extra else ("--task", "ingest_department")
        code, _, err = run(capsys, cli_env, "add", "Broken", *task, *extra)
        assert code == 1 and message in one_line(err), extra
    code, out, _ = run(capsys, cli_env, "list", "--json", "--search", "broken")
    assert json.loads(out) == []


def test_run_now_queues_on_redis(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], redis_settings: object
) -> None:
    cli_env.setenv("BATCHOPS_REDIS_URL", redis_settings.redis.url)  # type: ignore[attr-defined]
    cli_env.setenv("BATCHOPS_REDIS_PREFIX", redis_settings.redis.prefix)  # type: ignore[attr-defined]
    code, out, err = run(
        capsys,
        cli_env,
        "run-now",
        "Nightly backup",
        "--as",
        "user1",
        "--password-stdin",
        stdin=TEST_PASSWORD + "\n",
    )
    assert code == 0, err
    prefix = redis_settings.redis.prefix  # type: ignore[attr-defined]
    assert f"queued as {prefix}:schedule:" in out
