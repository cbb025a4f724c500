"""A new row written by one Core INSERT on the session's connection, and the object that stands for it.

For rows that nothing changes later in the transaction that writes them (a submitted job, an event): the
ORM's unit of work (pending state, the flush's bookkeeping, the object's identity) cost more than the
INSERT itself, and a submission paid it twice (bench request-cost). The object returned is transient: it
carries the values written, column defaults included, but changing it writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Insert, insert as insert_into, inspect
from sqlalchemy.orm import DeclarativeBase, Mapper, Session

ModelT = TypeVar("ModelT", bound=DeclarativeBase)


@dataclass(frozen=True)
class _Column:
    attribute: str
    name: str
    # The Python-side default, as SQLAlchemy would apply it (a callable wrapped to take a context).
    default: Callable[[Any], Any] | None
    has_default: bool
    scalar: Any


@dataclass(frozen=True)
class _Plan:
    mapper: Mapper[Any]
    statement: Insert
    attributes: frozenset[str]
    columns: tuple[_Column, ...]


@functools.cache
def _plan(model: type[DeclarativeBase]) -> _Plan:
    """What an insert of `model` needs, worked out once per model: every submission makes two."""
    mapper = inspect(model)
    columns = []
    for attribute in mapper.column_attrs:
        column = attribute.columns[0]
        default = column.default
        columns.append(
            _Column(
                attribute=attribute.key,
                name=column.name,
                default=default.arg if default is not None and default.is_callable else None,
                has_default=default is not None,
                scalar=default.arg if default is not None and default.is_scalar else None,
            )
        )
    return _Plan(mapper, insert_into(model), frozenset(c.attribute for c in columns), tuple(columns))


def insert(session: Session, model: type[ModelT], **values: Any) -> ModelT:
    """Insert one `model` row of `values`, each column left out taking its Python-side default."""
    plan = _plan(model)
    unknown = values.keys() - plan.attributes
    if unknown:
        raise TypeError(f"{model.__name__} has no columns {sorted(unknown)}")
    by_attribute: dict[str, Any] = {}
    by_column: dict[str, Any] = {}
    for column in plan.columns:
        if column.attribute in values:
            value = values[column.attribute]
        elif column.default is not None:
            value = column.default(None)
        else:
            value = column.scalar
        by_attribute[column.attribute] = value
        # A None with no default is left out, so that it is SQL NULL: sent as a value, a JSON column would
        # store the JSON text 'null', which IS NOT NULL.
        if value is not None or column.has_default:
            by_column[column.name] = value
    session.connection().execute(plan.statement, by_column)
    # Built without the constructor: its attribute events (a pending change for each column) are the
    # unit of work's bookkeeping, which this row never enters. The values read back as loaded ones.
    row: ModelT = plan.mapper.class_manager.new_instance()
    row.__dict__.update(by_attribute)
    return row
