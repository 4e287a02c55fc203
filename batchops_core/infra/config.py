"""Settings from `config.toml` plus `BATCHOPS_*` environment overrides.

One frozen dataclass per section keeps every setting typed and documented in one place. The file is
looked up through `BATCHOPS_CONFIG`, then the working directory, then the XDG config directory.
Any key of the file may be overridden by `BATCHOPS_<SECTION>_<KEY>` (top-level keys by
`BATCHOPS_<KEY>`), e.g. `BATCHOPS_DATABASE_URL`, `BATCHOPS_REDIS_URL`, `BATCHOPS_DATA_DIR`.
Settings are validated by value when loaded: types, ranges of counts and timeouts, choices
(enums), time zones (zoneinfo), secrets that never print (`config_values`). Unknown keys and wrong
values raise one `ConfigError` naming every wrong key (file key or environment variable) and what
it may be. Built directly (tests, `dataclasses.replace`) the dataclasses are not checked.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from batchops_core.errors import ConfigError
from batchops_core.infra.config_values import NotBlank, Range, Secret, TimeZoneName, choice

ENV_PREFIX = "BATCHOPS_"


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""
    """Empty means the embedded SQLite file `<data_dir>/batchops.db`."""
    echo: bool = False
    connect_timeout: Annotated[float, Range(gt=0)] = 5.0
    pool_size: Annotated[int, Range(ge=1, le=200)] = 5
    """Connections a process keeps open to PostgreSQL (SQLAlchemy's pool; SQLite ignores it)."""
    max_overflow: Annotated[int, Range(ge=0, le=200)] = 5
    """Extra connections opened under a burst and closed after; PostgreSQL's `max_connections`
    must cover (pool_size + max_overflow) × every daemon, TUI and CLI process."""


@dataclass(frozen=True)
class StorageSettings:
    url: str = ""
    """Where uploads, reports and fix-lists live: `file:///var/lib/batchops/storage`, or
    `s3://BUCKET/PREFIX` on any S3-compatible store. Empty means `<data_dir>/storage`, fine for
    one host; several hosts must share one object store."""
    endpoint_url: str = ""
    """The S3 endpoint, e.g. `http://minio.lab:9000`; empty means AWS S3 of `region`."""
    region: Annotated[str, NotBlank()] = "us-east-1"
    access_key: Secret = field(default_factory=Secret)
    secret_key: Secret = field(default_factory=Secret)
    timeout: Annotated[float, Range(gt=0)] = 30.0
    """Seconds one request to the object store may take before it fails as unreachable."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "access_key", Secret.of(self.access_key))
        object.__setattr__(self, "secret_key", Secret.of(self.secret_key))


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""
    """Empty means no Redis: the TUI and CLI run an embedded in-process worker."""
    prefix: Annotated[str, NotBlank()] = "batchops"
    """Prefix of every Redis key and of the arq queue name; lets deployments share one Redis."""
    connect_timeout: Annotated[float, Range(gt=0)] = 2.0


@dataclass(frozen=True)
class SecuritySettings:
    lockout_threshold: Annotated[int, Range(ge=1)] = 5
    lockout_minutes: Annotated[int, Range(ge=1)] = 15
    password_min_length: Annotated[int, Range(ge=1, le=1024)] = 10
    code_ttl_minutes: Annotated[int, Range(ge=1)] = 15
    code_max_attempts: Annotated[int, Range(ge=1)] = 5
    codes_per_hour: Annotated[int, Range(ge=1)] = 5
    idle_lock_minutes: Annotated[int, Range(ge=0)] = 15
    """0 turns the idle lock off."""
    answer_seconds: Annotated[float, Range(ge=0, le=10)] = 1.0
    """Code requests, code checks and refused sign-ins answer after at least this long, so that
    their timing does not tell whether an account exists (the slowest path, a mail sent, must fit
    in it)."""


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    """Empty means mail is not configured; flows that need mail say so."""
    port: Annotated[int, Range(ge=1, le=65535)] = 25
    username: str = ""
    password: Secret = field(default_factory=Secret)
    """Read it with `.get()`; it prints as ********."""
    security: SmtpSecurity = SmtpSecurity.NONE
    from_address: str = "batchops@localhost"
    timeout: Annotated[float, Range(gt=0)] = 10.0

    def __post_init__(self) -> None:
        # Code and tests may pass plain text (also through dataclasses.replace): keep it secret.
        # A security text that is no choice stays as given; sending mail names the choices.
        object.__setattr__(self, "password", Secret.of(self.password))
        member, _ = choice(SmtpSecurity, self.security)
        if member is not None:
            object.__setattr__(self, "security", member)


@dataclass(frozen=True)
class PipelineSettings:
    max_upload_mb: Annotated[int, Range(ge=1)] = 200
    error_threshold: Annotated[float, Range(ge=0, le=1)] = 0.05
    """Fraction of rows in error above which validation fails the upload instead of quarantining."""
    pdf_max_rows: Annotated[int, Range(ge=1)] = 10_000
    intake_root: str = "~"
    column_aliases: dict[str, str] = field(default_factory=dict)
    """Extra header aliases, e.g. `"Roll No" = "student_id"`."""
    required_columns: dict[str, list[str]] = field(default_factory=dict)
    """Required columns per department name; departments not listed use the gradebook default."""
    pdf_processes: Annotated[int, Range(ge=1, le=64)] = 2
    parse_memory_mb: Annotated[int, Range(ge=0)] = 6144
    """Address-space cap (RLIMIT_AS) of a pipeline process while it runs a stage; 0 = no cap. A
    file that needs more fails alone (PARSE_CRASHED or out of memory), never the daemon. Arrow
    reserves ~1.3 GB of address space ahead of use, so this is not resident memory."""
    xlsx_max_cells: Annotated[int, Range(ge=1)] = 20_000_000
    """Largest rows × columns a worksheet may span, read from its XML before the parser allocates
    (32 bytes a cell: 20 M cells ≈ 640 MB); a sheet past it fails XLSX_TOO_LARGE."""
    pdf_max_pages: Annotated[int, Range(ge=1)] = 2000
    """PDFs with more pages fail PDF_TOO_MANY_PAGES before any page is parsed."""
    stage_processes: Annotated[int, Range(ge=0, le=64)] = 0
    """Warm pipeline processes per daemon (each runs one upload's stage at a time); 0 = one per
    core, at least 2 and at most 4."""
    csv_max_field_kb: Annotated[int, Range(ge=1)] = 1024
    """Largest single CSV field in KiB (an unclosed quote makes one field of the rest of the
    file)."""


@dataclass(frozen=True)
class WorkerSettings:
    max_tries: Annotated[int, Range(ge=1)] = 3
    job_timeout: Annotated[int, Range(gt=0)] = 600
    poll_delay: Annotated[float, Range(gt=0)] = 0.05
    max_jobs: Annotated[int, Range(ge=1)] = 10
    heartbeat_seconds: Annotated[int, Range(ge=1)] = 10
    stale_after_seconds: Annotated[int, Range(ge=1)] = 60
    """Must exceed heartbeat_seconds (checked at load)."""
    health_interval: Annotated[int, Range(ge=1)] = 30
    shutdown_grace: Annotated[int, Range(ge=0)] = 30
    metrics_port: Annotated[int, Range(ge=-1, le=65535)] = 9464
    """0 = any free port, -1 = off."""
    metrics_host: str = "127.0.0.1"
    max_clock_skew_seconds: Annotated[float, Range(gt=0)] = 5.0
    """A host whose clock differs from the database's by more is reported by `doctor`/`status`
    and logged by its daemon (decisions use the database's clock either way)."""


@dataclass(frozen=True)
class IncidentSettings:
    dedup_window_minutes: Annotated[int, Range(ge=0)] = 60


@dataclass(frozen=True)
class RetentionSettings:
    days: Annotated[int, Range(ge=1)] = 90
    backup_keep: Annotated[int, Range(ge=1)] = 7
    backup_url: str = ""
    """Where backups go: a folder, `file:///…` or `s3://BUCKET/PREFIX` (same credentials as
    [storage]); empty means `<data_dir>/backups`."""


@dataclass(frozen=True)
class TuiSettings:
    poll_interval: Annotated[float, Range(gt=0)] = 5.0
    page_size: Annotated[int, Range(ge=1, le=1000)] = 50


@dataclass(frozen=True)
class Settings:
    data_dir: Annotated[str, NotBlank()] = "~/.local/share/batchops"
    timezone: Annotated[str, TimeZoneName()] = "UTC"
    """An IANA name, checked against the system's time zone database at load."""
    export_dir: Annotated[str, NotBlank()] = "~/batchops-exports"
    """The only folder reports are exported into (never inside data_dir; symlinks refused)."""
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
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
    def export_path(self) -> Path:
        return Path(self.export_dir).expanduser()

    @property
    def storage_path(self) -> Path:
        return self.data_path / "storage"

    @property
    def storage_url(self) -> str:
        return self.storage.url or self.storage_path.as_uri()

    @property
    def scratch_path(self) -> Path:
        """This host's own working space (stage files, downloads); never shared, never backed up."""
        return self.data_path / "scratch"

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
    """Read, merge and validate the settings; raise ConfigError naming every wrong key at once."""
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
    where = _Where(source)
    merged = _with_env(raw, env, where)
    settings = _build(Settings, merged, where, "")
    if isinstance(settings, Settings):
        _cross_check(settings, where)
    if where.problems:
        raise ConfigError(where.sentence())
    assert isinstance(settings, Settings)
    data_dir = Path(settings.data_dir).expanduser()
    if path is not None and not data_dir.is_absolute() and "BATCHOPS_DATA_DIR" not in env:
        data_dir = (path.parent / data_dir).resolve()
    return dataclasses.replace(settings, data_dir=str(data_dir), source=source)


class _Invalid(Exception):
    """One wrong value; its message names the key (file or environment) and what it may be."""


@dataclass
class _Where:
    """Names each key as the person wrote it (file key or environment variable); collects the
    problems so that one run reports every wrong setting, not only the first."""

    source: str
    from_env: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def name(self, key: str) -> str:
        return self.from_env.get(key) or f"{self.source}: '{key}'"

    def sentence(self) -> str:
        if len(self.problems) == 1:
            return f"{self.problems[0]}."
        return f"{len(self.problems)} settings are wrong: {'; '.join(self.problems)}."


def _split(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """(type, rules) of a field's annotation: `Annotated[int, Range(ge=1)]` → (int, (Range,))."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *rules = typing.get_args(hint)
        return base, tuple(rules)
    return hint, ()


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _sections() -> dict[str, type]:
    return {k: v for k, v in _hints(Settings).items() if dataclasses.is_dataclass(v)}


def _build(cls: type, raw: Any, where: _Where, prefix: str) -> Any:
    if not isinstance(raw, dict):
        where.problems.append(f"{where.source}: [{prefix.rstrip('.')}] must be a table")
        return None
    fields = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            where.problems.append(
                f"{where.source}: unknown key '{prefix}{key}' (known keys: {known})"
            )
        elif dataclasses.is_dataclass(hints[key]):
            section = _build(hints[key], value, where, f"{prefix}{key}.")
            if section is not None:
                values[key] = section
        else:
            try:
                values[key] = _convert(value, hints[key], where.name(f"{prefix}{key}"))
            except _Invalid as exc:
                where.problems.append(str(exc))
    return cls(**values)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _convert(value: Any, hint: Any, name: str) -> Any:
    """`value` as the field's type, checked against its rules; _Invalid names what is wrong."""
    base, rules = _split(hint)
    value = _as_type(value, base, name)
    for rule in rules:
        problem = rule.problem(value)
        if problem:
            raise _Invalid(f"{name} {problem}")
    return value


def _as_type(value: Any, base: Any, name: str) -> Any:
    origin = typing.get_origin(base)
    if origin in (dict, list):
        return _as_container(value, base, name)
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is Secret:
        if not isinstance(value, str):
            raise _Invalid(f"{name} must be str (a secret; its value is not shown)")
        return Secret(value)
    if isinstance(base, type) and issubclass(base, StrEnum):
        member, problem = choice(base, value)
        if problem:
            raise _Invalid(f"{name} {problem}")
        return member
    if origin is not None:
        raise _Invalid(f"{name}: unsupported setting type")
    if type(value) is not base:
        got = f"{type(value).__name__} {value!r}"
        raise _Invalid(f"{name} must be {_type_name(base)}, got {got}")
    return value


def _as_container(value: Any, base: Any, name: str) -> Any:
    origin = typing.get_origin(base)
    if not isinstance(value, origin):
        raise _Invalid(f"{name} must be {base}, got {type(value).__name__}")
    if origin is dict:
        _, value_type = typing.get_args(base)
        return {str(k): _convert(v, value_type, f"{name}.{k}") for k, v in value.items()}
    (item_type,) = typing.get_args(base)
    return [_convert(v, item_type, f"{name}[]") for v in value]


def _parse_env(text: str, hint: Any, name: str) -> Any:
    """The environment's text as the value a TOML file would hold; _convert checks it after."""
    base, _ = _split(hint)
    if base is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise _Invalid(f"environment {name} must be true or false, got {text!r}")
    try:
        if base is int:
            return int(text)
        if base is float:
            return float(text)
        if typing.get_origin(base) in (dict, list):
            return json.loads(text)
    except (ValueError, json.JSONDecodeError):
        raise _Invalid(f"environment {name} must be {_type_name(base)}, got {text!r}") from None
    return text  # str, enum choices, secrets, time zones


def _with_env(raw: dict[str, Any], env: typing.Mapping[str, str], where: _Where) -> dict[str, Any]:
    """The file's values with `BATCHOPS_<SECTION>_<KEY>` / `BATCHOPS_<KEY>` laid over them."""
    merged = dict(raw)
    sections = _sections()
    for key, hint in _hints(Settings).items():
        if key == "source":
            continue
        if key not in sections:
            _env_value(merged, key, hint, f"{ENV_PREFIX}{key}".upper(), key, env, where)
            continue
        table = merged.get(key, {})
        if not isinstance(table, dict):
            continue  # reported by _build
        table = merged[key] = dict(table)
        for sub_key, sub_hint in _hints(sections[key]).items():
            name = f"{ENV_PREFIX}{key}_{sub_key}".upper()
            _env_value(table, sub_key, sub_hint, name, f"{key}.{sub_key}", env, where)
    return merged


def _env_value(
    table: dict[str, Any],
    key: str,
    hint: Any,
    name: str,
    dotted: str,
    env: typing.Mapping[str, str],
    where: _Where,
) -> None:
    if name not in env:
        return
    where.from_env[dotted] = f"environment {name}"
    try:
        table[key] = _parse_env(env[name], hint, name)
    except _Invalid as exc:
        table.pop(key, None)
        where.problems.append(str(exc))


def _cross_check(settings: Settings, where: _Where) -> None:
    """Rules between two settings."""
    worker = settings.worker
    if worker.stale_after_seconds <= worker.heartbeat_seconds:
        where.problems.append(
            f"{where.name('worker.stale_after_seconds')} must be more than worker."
            f"heartbeat_seconds ({worker.heartbeat_seconds}), got {worker.stale_after_seconds}: "
            "otherwise live workers' runs are swept as lost"
        )
    for key, url in (
        ("storage.url", settings.storage.url),
        ("retention.backup_url", settings.retention.backup_url),
    ):
        problem = storage_url_problem(url)
        if problem:
            where.problems.append(f"{where.name(key)} {problem}")


def storage_url_problem(url: str) -> str | None:
    """Why a storage or backup URL cannot be used, or None: `file:///abs/dir`, `s3://BUCKET[/PREFIX]`
    or (backups only) a plain folder."""
    if not url or "://" not in url:
        return None
    scheme, _, rest = url.partition("://")
    if scheme == "file":
        return None if rest.startswith("/") else f"must be file:///absolute/folder, got {url!r}"
    if scheme == "s3":
        bucket = rest.split("/", 1)[0]
        if not bucket:
            return f"must name a bucket: s3://BUCKET/PREFIX, got {url!r}"
        return None
    return f"must start with file:// or s3://, got {url!r}"
