"""Alembic environment: always run on a connection handed over by `batchops_core.infra.migrate`."""

from alembic import context
from sqlalchemy import DateTime

from batchops_core.attendance import models as _attendance_models  # noqa: F401
from batchops_core.infra.db_types import UTCDateTime
from batchops_core.models import Base
from batchops_core.sources import models as _sources_models  # noqa: F401


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `batchops migrate`, not the alembic command")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_item=_render_item,
    render_as_batch=True,
    compare_type=lambda *a: not isinstance(a[3], DateTime) and None,
)
with context.begin_transaction():
    context.run_migrations()
