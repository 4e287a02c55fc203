"""Settings are validated by value at load: ranges, choices, time zones, secrets never printed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from batchops_core.errors import ConfigError
from batchops_core.infra.config import SmtpSecurity, SmtpSettings, load_settings
from batchops_core.infra.config_values import Secret

ROOT = Path(__file__).resolve().parents[2]
BAD_ENV = {
    "BATCHOPS_TIMEZONE": "Mars/Phobos",
    "BATCHOPS_WORKER_MAX_JOBS": "-3",
    "BATCHOPS_WORKER_JOB_TIMEOUT": "0",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_wrong_environment_value_is_named_with_what_it_may_be(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as failure:
        load_settings(write(tmp_path, ""), env=BAD_ENV)
    message = str(failure.value)
    assert message.startswith("3 settings are wrong: ")
    assert (
        "environment BATCHOPS_TIMEZONE must be an IANA time zone name such as UTC, Europe/Paris "
        "or Asia/Kolkata, got 'Mars/Phobos'" in message
    )
    assert "environment BATCHOPS_WORKER_MAX_JOBS must be at least 1, got -3" in message
    assert "environment BATCHOPS_WORKER_JOB_TIMEOUT must be more than 0, got 0" in message


def test_doctor_refuses_a_bad_value_in_one_sentence(tmp_path: Path) -> None:
    """The command line of the issue: exit 2 and the sentence, never `ok config` or a traceback."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BATCHOPS_CONFIG": str(write(tmp_path, f'data_dir = "{tmp_path}"\n')),
        **BAD_ENV,
    }
    result = subprocess.run(
        [sys.executable, "-m", "batchops_tui.cli.main", "doctor"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    for name in BAD_ENV:
        assert name in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[smtp]\nsecurity = "ssl"\n',
            "'smtp.security' must be one of none, starttls, tls, got 'ssl'",
        ),
        ("[smtp]\nport = 70000\n", "'smtp.port' must be between 1 and 65535, got 70000"),
        (
            "[pipeline]\nerror_threshold = 1.5\n",
            "'pipeline.error_threshold' must be between 0 and 1, got 1.5",
        ),
        ("[tui]\npoll_interval = 0\n", "'tui.poll_interval' must be more than 0, got 0.0"),
        ('[redis]\nprefix = " "\n', "'redis.prefix' must not be empty"),
        ("[worker]\nmetrics_port = -2\n", "'worker.metrics_port' must be between -1 and 65535"),
        (
            "[worker]\nheartbeat_seconds = 30\nstale_after_seconds = 30\n",
            "'worker.stale_after_seconds' must be more than worker.heartbeat_seconds (30), got 30",
        ),
    ],
)
def test_file_value_out_of_range_names_file_key_and_allowed_values(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as failure:
        load_settings(path, env={})
    message = str(failure.value)
    assert message.startswith(f"{path}: {expected}") and message.endswith(".")
    assert message.count(";") == 0  # one problem, one sentence


def test_choices_and_limits_that_are_right_load_as_typed_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'timezone = "Asia/Kolkata"\n[smtp]\nsecurity = "STARTTLS"\n[worker]\nmetrics_port = -1\n'
        "shutdown_grace = 0\n[security]\nidle_lock_minutes = 0\n",
    )
    settings = load_settings(path, env={"BATCHOPS_SMTP_SECURITY": " tls "})
    assert settings.smtp.security is SmtpSecurity.TLS  # the environment wins over the file
    assert settings.timezone == "Asia/Kolkata"
    assert (settings.worker.metrics_port, settings.security.idle_lock_minutes) == (-1, 0)


def test_a_secret_never_prints(tmp_path: Path) -> None:
    path = write(tmp_path, '[smtp]\nusername = "mailer"\npassword = "hunter2-file"\n')
    settings = load_settings(path, env={})
    assert isinstance(settings.smtp.password, Secret)
    assert settings.smtp.password.get() == "hunter2-file"
    for shown in (str(settings.smtp.password), repr(settings.smtp.password)):
        assert shown == "********"
    assert "hunter2" not in repr(settings) and "hunter2" not in f"{settings.smtp}"
    from_env = load_settings(path, env={"BATCHOPS_SMTP_PASSWORD": "hunter2-env"})
    assert from_env.smtp.password.get() == "hunter2-env"
    bad = write(tmp_path, "[smtp]\npassword = 12345678\n")
    with pytest.raises(ConfigError) as failure:
        load_settings(bad, env={})
    assert "'smtp.password' must be str" in str(failure.value)
    assert "12345678" not in str(failure.value)


def test_settings_built_in_code_stay_replaceable_and_keep_secrets_secret() -> None:
    smtp = dataclasses.replace(SmtpSettings(host=""), password="plain", security="starttls")
    assert isinstance(smtp.password, Secret) and smtp.password.get() == "plain"
    assert smtp.security is SmtpSecurity.STARTTLS
    # Not checked when built directly: sending mail still names the choices for a bad one.
    assert dataclasses.replace(smtp, security="ssl").security == "ssl"
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and not Secret()
