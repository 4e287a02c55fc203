"""Settings from `config.toml` plus `BATCHOPS_*` environment overrides.

One frozen dataclass per section keeps every setting typed and documented in one place. The file is
looked up through `BATCHOPS_CONFIG`, then the working directory, then the XDG config directory.
Any key of the file may be overridden by `BATCHOPS_<SECTION>_<KEY>` (top-level keys by
`BATCHOPS_<KEY>`), e.g. `BATCHOPS_DATABASE_URL`, `BATCHOPS_REDIS_URL`, `BATCHOPS_DATA_DIR`.
Unknown keys and wrong types raise `ConfigError` naming the file, the key and the expected type.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchops_core.errors import ConfigError

ENV_PREFIX = "BATCHOPS_"


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""
    """Empty means the embedded SQLite file `<data_dir>/batchops.db`."""
    echo: bool = False
    connect_timeout: float = 5.0


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""
    """Empty means no Redis: the TUI and CLI run an embedded in-process worker."""
    prefix: str = "batchops"
    """Prefix of every Redis key and of the arq queue name; lets deployments share one Redis."""
    connect_timeout: float = 2.0


@dataclass(frozen=True)
class SecuritySettings:
    lockout_threshold: int = 5
    lockout_minutes: int = 15
    password_min_length: int = 10
    code_ttl_minutes: int = 15
    code_max_attempts: int = 5
    codes_per_hour: int = 5
    idle_lock_minutes: int = 15


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    """Empty means mail is not configured; flows that need mail say so."""
    port: int = 25
    username: str = ""
    password: str = ""
    security: str = "none"
    """One of `none`, `starttls`, `tls`."""
    from_address: str = "batchops@localhost"
    timeout: float = 10.0


@dataclass(frozen=True)
class PipelineSettings:
    max_upload_mb: int = 200
    error_threshold: float = 0.05
    """Fraction of rows in error above which validation fails the upload instead of quarantining."""
    pdf_max_rows: int = 10_000
    intake_root: str = "~"
    column_aliases: dict[str, str] = field(default_factory=dict)
    """Extra header aliases, e.g. `"Roll No" = "student_id"`."""
    required_columns: dict[str, list[str]] = field(default_factory=dict)
    """Required columns per department name; departments not listed use the gradebook default."""
    pdf_processes: int = 2


@dataclass(frozen=True)
class WorkerSettings:
    max_tries: int = 3
    job_timeout: int = 600
    poll_delay: float = 0.05
    max_jobs: int = 10
    heartbeat_seconds: int = 10
    stale_after_seconds: int = 60
    health_interval: int = 30
    shutdown_grace: int = 30
    metrics_port: int = 9464
    metrics_host: str = "127.0.0.1"


@dataclass(frozen=True)
class IncidentSettings:
    dedup_window_minutes: int = 60


@dataclass(frozen=True)
class RetentionSettings:
    days: int = 90
    backup_keep: int = 7


@dataclass(frozen=True)
class TuiSettings:
    poll_interval: float = 5.0
    page_size: int = 50


@dataclass(frozen=True)
class Settings:
    data_dir: str = "~/.local/share/batchops"
    timezone: str = "UTC"
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    incidents: IncidentSettings = field(default_factory=IncidentSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)
    source: str = "(defaults)"
    """Where the settings were read from; not a setting itself."""

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def storage_path(self) -> Path:
        return self.data_path / "storage"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_path / 'batchops.db'}"

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis.url)


def find_config_file(cwd: Path | None = None) -> Path | None:
    """Return the config file BatchOps would read, or None when running on defaults."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"BATCHOPS_CONFIG points to {path}, which is not a file.")
        return path
    candidates = [(cwd or Path.cwd()) / "config.toml"]
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    candidates.append(Path(xdg) / "batchops" / "config.toml")
    return next((p for p in candidates if p.is_file()), None)


def load_settings(
    path: Path | None = None, env: typing.Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate the settings; raise ConfigError with file and key on any problem."""
    env = os.environ if env is None else env
    path = path if path is not None else find_config_file()
    raw: dict[str, Any] = {}
    source = "(defaults)"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror}).") from None
    settings = _build(Settings, raw, source, "")
    overridden = _apply_env(settings, env)
    data_dir = Path(overridden.data_dir).expanduser()
    if path is not None and not data_dir.is_absolute() and "BATCHOPS_DATA_DIR" not in env:
        data_dir = (path.parent / data_dir).resolve()
    return dataclasses.replace(overridden, data_dir=str(data_dir), source=source)


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{prefix.rstrip('.')}] must be a table.")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{source}: unknown key '{prefix}{key}' (known keys: {known}).")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, source, f"{prefix}{key}.")
        else:
            values[key] = _check(value, hint, f"{source}: '{prefix}{key}'")
    return cls(**values)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _check(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    expected = f"{where} must be {_type_name(hint) if origin is None else hint}"
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is None:
        if type(value) is not hint:
            raise ConfigError(f"{expected}, got {type(value).__name__} {value!r}.")
        return value
    if origin is dict:
        _, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{expected}, got {type(value).__name__}.")
        return {str(k): _check(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        (item_type,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{expected}, got {type(value).__name__}.")
        return [_check(v, item_type, f"{where}[]") for v in value]
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"{where}: unsupported setting type.")
    raise ConfigError(f"{where}: unsupported setting type.")


def _parse_env(text: str, hint: Any, name: str) -> Any:
    if hint is str:
        return text
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"environment {name} must be true or false, got {text!r}.")
    try:
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        return _check(json.loads(text), hint, f"environment {name}")
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(f"environment {name} must be {_type_name(hint)}, got {text!r}.") from None


def _apply_env(settings: Settings, env: typing.Mapping[str, str]) -> Settings:
    top: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    for f in dataclasses.fields(Settings):
        if f.name == "source":
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            section = getattr(settings, f.name)
            sub_hints = typing.get_type_hints(hint)
            changes = {}
            for sf in dataclasses.fields(hint):
                name = f"{ENV_PREFIX}{f.name}_{sf.name}".upper()
                if name in env:
                    changes[sf.name] = _parse_env(env[name], sub_hints[sf.name], name)
            if changes:
                top[f.name] = dataclasses.replace(section, **changes)
        else:
            name = f"{ENV_PREFIX}{f.name}".upper()
            if name in env:
                top[f.name] = _parse_env(env[name], hint, name)
    return dataclasses.replace(settings, **top)
