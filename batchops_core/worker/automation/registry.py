"""The catalogue of automation tasks: each body declares its description and arguments once.

`@automation("what it does", ArgSpec(...), ...)` registers a body under its function name. The
schedule form, the CLI's and the service's validation (`validate_task`) and the runner all read
this one table, so a task's arguments cannot drift between them. The bodies register when their
modules are imported, and `batchops_core.worker.automation` imports every body module, so any
import of the package sees the whole catalogue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.errors import ValidationFailed
from batchops_core.models import Department

if TYPE_CHECKING:
    from batchops_core.worker.automation.frame import Outcome


@dataclass(frozen=True)
class ArgSpec:
    """One argument of a schedulable task."""

    name: str
    kind: type
    required: bool = True
    help: str = ""
    minimum: int | None = None


def department_arg(required: bool = True) -> ArgSpec:
    return ArgSpec("department", str, required, "an existing department name")


Body = Callable[..., Awaitable["Outcome"]]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    args: tuple[ArgSpec, ...] = field(default_factory=tuple)
    body: Body | None = None


AUTOMATIONS: dict[str, TaskSpec] = {}


def automation(description: str, *args: ArgSpec) -> Callable[[Body], Body]:
    """Register the decorated body as a schedulable task taking exactly `args`."""

    def register(fn: Body) -> Body:
        AUTOMATIONS[fn.__name__] = TaskSpec(fn.__name__, description, tuple(args), fn)
        return fn

    return register


def body_of(name: str) -> Callable[..., Awaitable[Outcome]] | None:
    spec = AUTOMATIONS.get(name)
    return spec.body if spec else None


def schedulable_task_names() -> list[str]:
    return sorted(AUTOMATIONS)


_KIND_WORDS: dict[type, str] = {str: "text", int: "a whole number", bool: "true or false"}


async def validate_task(
    session: AsyncSession, task: str, arguments: dict[str, Any] | None
) -> dict[str, Any]:
    """Check the task name and its arguments; return the cleaned arguments."""
    names = schedulable_task_names()
    name = (task or "").strip()
    spec = AUTOMATIONS.get(name)
    if spec is None:
        raise ValidationFailed(
            f"'{task}' is not a schedulable task; choose one of {', '.join(names)}."
        )
    if arguments is not None and not isinstance(arguments, dict):
        raise ValidationFailed(f"the arguments of {name} must be a JSON object.")
    args = dict(arguments or {})
    check_arg_shape(spec, args)
    if "department" in args:
        args["department"] = await _existing_department(session, args["department"])
    if "url" in args:
        args["url"] = _http_url(args["url"])
    return args


def check_arg_shape(spec: TaskSpec, args: dict[str, Any]) -> None:
    """Unknown, missing, mistyped or too small arguments, each in one sentence."""
    allowed = {a.name: a for a in spec.args}
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) or "no arguments"
        raise ValidationFailed(
            f"{spec.name} does not take argument(s) {', '.join(unknown)} (it takes {expected})."
        )
    for arg in spec.args:
        if arg.name not in args:
            if arg.required:
                raise ValidationFailed(f"{spec.name} needs the argument '{arg.name}' ({arg.help}).")
            continue
        value = args[arg.name]
        wrong_bool = isinstance(value, bool) and arg.kind is not bool
        if not isinstance(value, arg.kind) or wrong_bool:
            raise ValidationFailed(
                f"the argument '{arg.name}' of {spec.name} must be "
                f"{_KIND_WORDS.get(arg.kind, arg.kind.__name__)} ({arg.help})."
            )
        if arg.minimum is not None and value < arg.minimum:
            raise ValidationFailed(
                f"the argument '{arg.name}' of {spec.name} must be at least {arg.minimum}."
            )


async def _existing_department(session: AsyncSession, wanted: str) -> str:
    name = wanted.strip()
    found = await session.scalar(
        select(Department.name).where(func.lower(Department.name) == name.lower())
    )
    if found is None:
        known = ", ".join(await session.scalars(select(Department.name).order_by(Department.name)))
        raise ValidationFailed(
            f"there is no department named '{name}'; known departments: {known or 'none'}."
        )
    return found


def _http_url(url: str) -> str:
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationFailed(f"'{url}' is not an http(s) URL.")
    return url.strip()
