"""A new row written by one Core INSERT on the session's connection, and the object that stands for it.

For rows that nothing changes later in the transaction that writes them (a submitted job, an event): the
ORM's unit of work (pending state, the flush's bookkeeping, the object's identity) cost more than the
INSERT itself, and a submission paid it twice (bench request-cost). The object returned is transient: it
carries the values written, column defaults included, but changing it writes nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import insert as insert_into, inspect
from sqlalchemy.orm import DeclarativeBase, Session

ModelT = TypeVar("ModelT", bound=DeclarativeBase)


def insert(session: Session, model: type[ModelT], **values: Any) -> ModelT:
    """Insert one `model` row of `values`, each column left out taking its Python-side default."""
    mapper = inspect(model)
    unknown = set(values) - {attribute.key for attribute in mapper.column_attrs}
    if unknown:
        raise TypeError(f"{model.__name__} has no columns {sorted(unknown)}")
    by_attribute: dict[str, Any] = {}
    by_column: dict[str, Any] = {}
    for attribute in mapper.column_attrs:
        column = attribute.columns[0]
        default = column.default
        if attribute.key in values:
            value = values[attribute.key]
        elif default is not None and default.is_callable:
            value = default.arg(None)  # SQLAlchemy wraps it to take a context
        elif default is not None and default.is_scalar:
            value = default.arg
        else:
            value = None
        by_attribute[attribute.key] = value
        by_column[column.name] = value
    session.connection().execute(insert_into(model), by_column)
    return model(**by_attribute)
