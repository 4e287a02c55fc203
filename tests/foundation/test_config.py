"""The config loader: the documented file, lookup order, strict validation, env overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from batchops_core.errors import ConfigError
from batchops_core.infra.config import Settings, find_config_file, load_settings
from batchops_tui.cli.main import main

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_documented_file_holds_the_defaults() -> None:
    loaded = load_settings(REPO_CONFIG, env={})
    defaults = Settings()
    for section in dataclasses.fields(Settings):
        if section.name not in {"data_dir", "source"}:
            assert getattr(loaded, section.name) == getattr(defaults, section.name), section.name
    assert loaded.source == str(REPO_CONFIG)
    assert Path(loaded.data_dir) == REPO_CONFIG.parent / "data"


def test_relative_data_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'data_dir = "state"\n[smtp]\nport = 587\ntimeout = 3\n')
    settings = load_settings(path, env={})
    assert settings.data_path == tmp_path / "state"
    assert settings.smtp.port == 587 and settings.smtp.timeout == 3.0  # int accepted for float
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'state' / 'batchops.db'}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[smtp\nhost = 1\n", "not valid TOML"),
        ('colour = "blue"\n', "unknown key 'colour' (known keys: data_dir, database,"),
        ("[smtp]\nhots = 'x'\n", "unknown key 'smtp.hots'"),
        ('[security]\nlockout_threshold = "five"\n', "'security.lockout_threshold' must be int"),
        ("[security]\nlockout_threshold = true\n", "'security.lockout_threshold' must be int"),
        ("[redis]\nurl = 6379\n", "'redis.url' must be str, got int 6379"),
        ("smtp = 3\n", "[smtp] must be a table"),
        ('[pipeline]\ncolumn_aliases = ["a"]\n', "'pipeline.column_aliases' must be"),
        (
            "[pipeline.required_columns]\nFees = [1]\n",
            "'pipeline.required_columns'.Fees[] must be str, got int 1",
        ),
    ],
)
def test_bad_file_names_file_key_and_type(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as failure:
        load_settings(path, env={})
    assert str(failure.value).startswith(f"{path}: ")
    assert expected in str(failure.value)


def test_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[redis]\nurl = "redis://example:6379/0"\n[smtp]\nport = 25\n')
    env = {
        "BATCHOPS_DATABASE_URL": "postgresql+asyncpg://bo@db.example/bo",
        "BATCHOPS_REDIS_URL": "",
        "BATCHOPS_SMTP_PORT": "2525",
        "BATCHOPS_SMTP_HOST": "mail.school.example",
        "BATCHOPS_DATABASE_ECHO": "yes",
        "BATCHOPS_DATA_DIR": str(tmp_path / "elsewhere"),
        "BATCHOPS_TIMEZONE": "Asia/Kolkata",
        "BATCHOPS_PIPELINE_COLUMN_ALIASES": '{"Roll No": "student_id"}',
    }
    settings = load_settings(path, env=env)
    assert settings.database_url == "postgresql+asyncpg://bo@db.example/bo"
    assert settings.redis.url == "" and not settings.uses_redis  # empty means no Redis
    assert (settings.smtp.host, settings.smtp.port) == ("mail.school.example", 2525)
    assert settings.database.echo is True
    assert settings.data_path == tmp_path / "elsewhere"
    assert settings.timezone == "Asia/Kolkata"
    assert settings.pipeline.column_aliases == {"Roll No": "student_id"}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("BATCHOPS_SMTP_PORT", "twenty-five", "environment BATCHOPS_SMTP_PORT must be int"),
        ("BATCHOPS_DATABASE_ECHO", "maybe", "BATCHOPS_DATABASE_ECHO must be true or false"),
        ("BATCHOPS_SMTP_TIMEOUT", "soon", "BATCHOPS_SMTP_TIMEOUT must be float"),
        ("BATCHOPS_PIPELINE_COLUMN_ALIASES", "{not json", "BATCHOPS_PIPELINE_COLUMN_ALIASES"),
    ],
)
def test_bad_environment_value(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(REPO_CONFIG, env={name: value})


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "batchops").mkdir(parents=True)
    (xdg / "batchops" / "config.toml").write_text("", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.delenv("BATCHOPS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert find_config_file(work) == xdg / "batchops" / "config.toml"
    write(work, "")
    assert find_config_file(work) == work / "config.toml"
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("", encoding="utf-8")
    monkeypatch.setenv("BATCHOPS_CONFIG", str(explicit))
    assert find_config_file(work) == explicit
    monkeypatch.setenv("BATCHOPS_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="BATCHOPS_CONFIG points to .*missing.toml"):
        find_config_file(work)


def test_cli_reports_a_bad_config_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[security]\nlockout_minutes = 'soon'\n")
    monkeypatch.setenv("BATCHOPS_CONFIG", str(path))
    assert main(["user", "list"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"batchops: configuration error: {path}: 'security.lockout_minutes'")
    assert main(["--config", str(tmp_path / "nope.toml"), "doctor"]) == 2
    assert "nope.toml: cannot be read" in capsys.readouterr().err
