"""A source's `config`: the contract keys per kind, checked by value with one sentence per fault.

database `{"url", "table" | "query", "id_column", "timestamp_column", "columns", "password_env",
"batch_size"}`; http `{"list_url" | "file_url", "partitions", "parser", "concurrency",
"rate_per_second", "timeout", "retries"}`; folder `{"path", "glob", "settle_seconds"}`; every
kind `{"cadence", "target", "key", "parser", "alert_after_failures", "alert_after_missing"}`.

A database URL that carries a password is refused: the password comes from the environment
variable named by `password_env`, or is stored encrypted (see `secrets.py`), never in the config.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from batchops_core.errors import ValidationFailed
from batchops_core.sources.models import SourceKind

COMMON = {
    "cadence",
    "target",
    "key",
    "parser",
    "alert_after_failures",
    "alert_after_missing",
    "expected_from",
}
KEYS: dict[SourceKind, set[str]] = {
    SourceKind.DATABASE: {
        "url",
        "table",
        "query",
        "id_column",
        "timestamp_column",
        "columns",
        "password_env",
        "batch_size",
    },
    SourceKind.HTTP: {
        "list_url",
        "file_url",
        "partitions",
        "concurrency",
        "rate_per_second",
        "timeout",
        "retries",
        "backoff_seconds",
    },
    SourceKind.FOLDER: {"path", "glob", "settle_seconds"},
}
PARSER_KEYS = {
    "column_aliases",
    "header_row",
    "date_formats",
    "delimiter",
    "encoding",
    "required_columns",
    "sheet",
    "key",
}
TARGETS = ("records", "punches")
SCHOOL_DAYS = "school days"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_PLACEHOLDER = re.compile(r"{(\w+)}")


def parse_config_text(text: str) -> dict[str, Any]:
    """`--config JSON` or `--config @FILE` → a dict, or one sentence saying what is wrong."""
    raw = text.strip()
    if raw.startswith("@"):
        path = Path(raw[1:]).expanduser()
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationFailed(f"cannot read the config file {path}: {exc.strerror}.") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"--config is not valid JSON ({exc.msg} at line {exc.lineno})."
        ) from None
    if not isinstance(value, dict):
        raise ValidationFailed('--config must be a JSON object, e.g. {"path": "/srv/drop"}.')
    return value


def _need_str(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"config.{key} must be a non-empty string.")
    return value.strip()


def _positive_int(config: dict[str, Any], key: str, default: int, top: int) -> None:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise ValidationFailed(f"config.{key} must be a whole number from 1 to {top}.")


def _check_database(config: dict[str, Any]) -> None:
    url = _need_str(config, "url")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValidationFailed(
            "config.url is not an SQLAlchemy URL (e.g. postgresql://user@host/db)."
        ) from None
    if parsed.password:
        raise ValidationFailed(
            "config.url contains a password; remove it and name an environment variable "
            "holding it in config.password_env (or store it encrypted with --password-stdin)."
        )
    if ("table" in config) == ("query" in config):
        raise ValidationFailed("config needs exactly one of table or query.")
    if "table" in config and not _IDENT.match(_need_str(config, "table")):
        raise ValidationFailed("config.table must be a plain table name (letters, digits, _ .).")
    if "query" in config:
        query = _need_str(config, "query")
        if not query.lower().lstrip("( ").startswith(("select", "with")):
            raise ValidationFailed("config.query must be a read-only SELECT (or WITH … SELECT).")
    for key in ("id_column", "timestamp_column"):
        if not _IDENT.match(_need_str(config, key)):
            raise ValidationFailed(f"config.{key} must be a plain column name.")
    columns = config.get("columns", {})
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _IDENT.match(v) for k, v in columns.items()
    ):
        raise ValidationFailed(
            'config.columns must map target names to source columns, e.g. {"student": "emp_no"}.'
        )
    if "password_env" in config and not _IDENT.match(_need_str(config, "password_env")):
        raise ValidationFailed("config.password_env must name an environment variable.")
    _positive_int(config, "batch_size", 5000, 1_000_000)


def partition_keys(config: dict[str, Any]) -> list[str]:
    return list((config.get("partitions") or {}).keys())


def _check_http(config: dict[str, Any]) -> None:
    if ("list_url" in config) == ("file_url" in config):
        raise ValidationFailed("config needs exactly one of list_url or file_url.")
    template = _need_str(config, "list_url" if "list_url" in config else "file_url")
    if not template.startswith(("http://", "https://")):
        raise ValidationFailed("the URL template must start with http:// or https://.")
    partitions = config.get("partitions", {})
    if not isinstance(partitions, dict) or not all(
        isinstance(v, list) and v and all(isinstance(x, (str, int)) for x in v)
        for v in partitions.values()
    ):
        raise ValidationFailed(
            'config.partitions must map a key to a list of values, e.g. {"pos": [1, 2]}.'
        )
    unknown = set(_PLACEHOLDER.findall(template)) - {"date", *partitions}
    if unknown:
        raise ValidationFailed(
            f"the URL template names {{{sorted(unknown)[0]}}}, which is neither "
            "{date} nor a key of config.partitions."
        )
    _positive_int(config, "concurrency", 2, 32)
    _positive_int(config, "retries", 3, 10)
    for key in ("rate_per_second", "timeout", "backoff_seconds"):
        value = config.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValidationFailed(f"config.{key} must be a positive number.")


def _check_folder(config: dict[str, Any]) -> None:
    _need_str(config, "path")
    glob = config.get("glob", "*")
    if not isinstance(glob, str) or not glob.strip() or ".." in glob:
        raise ValidationFailed("config.glob must be a pattern like *.csv (no '..').")
    settle = config.get("settle_seconds", 2)
    if isinstance(settle, bool) or not isinstance(settle, (int, float)) or settle < 0:
        raise ValidationFailed("config.settle_seconds must be a number of seconds (0 or more).")


def _check_common(config: dict[str, Any]) -> None:
    cadence = config.get("cadence", SCHOOL_DAYS)
    if not isinstance(cadence, str) or not cadence.strip():
        raise ValidationFailed("config.cadence must be a cron line or 'school days'.")
    if cadence.strip().lower() != SCHOOL_DAYS:
        from batchops_core.sources.cadence import check_cron

        check_cron(cadence)
    if config.get("target", "records") not in TARGETS:
        raise ValidationFailed("config.target must be 'records' or 'punches'.")
    parser = config.get("parser", {})
    if not isinstance(parser, dict):
        raise ValidationFailed("config.parser must be a JSON object.")
    unknown = sorted(set(parser) - PARSER_KEYS)
    if unknown:
        raise ValidationFailed(
            f"config.parser.{unknown[0]} is not a parser setting; "
            f"use: {', '.join(sorted(PARSER_KEYS))}."
        )
    for key in ("alert_after_failures", "alert_after_missing"):
        _positive_int(config, key, 3, 1000)


def check_config(kind: SourceKind, config: dict[str, Any]) -> dict[str, Any]:
    """The config with defaults filled in, or ValidationFailed naming the first problem."""
    unknown = sorted(set(config) - KEYS[kind] - COMMON)
    if unknown:
        allowed = ", ".join(sorted(KEYS[kind] | COMMON))
        raise ValidationFailed(
            f"config.{unknown[0]} is not a {kind.value} setting; use: {allowed}."
        )
    {
        SourceKind.DATABASE: _check_database,
        SourceKind.HTTP: _check_http,
        SourceKind.FOLDER: _check_folder,
    }[kind](config)
    _check_common(config)
    filled = dict(config)
    filled.setdefault("cadence", SCHOOL_DAYS)
    filled.setdefault("target", "records")
    return filled
