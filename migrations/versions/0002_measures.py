"""measures: every evaluation's figures as one JSON object on metrics and checkpoints, and a job summary

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The two figures metrics had columns for; every other measure only ever lived in the JSON.
CARRIED = ("exact_w1", "modes_covered")
# Plain ALTER TABLE … ADD/DROP COLUMN throughout (SQLite has both since 3.35), never a batch "move and copy":
# on SQLite that drops and recreates the table, and dropping `jobs` with foreign keys on deletes every
# metric, checkpoint and event of every job through their ON DELETE CASCADE.


def _metrics(*columns: sa.Column) -> sa.TableClause:  # type: ignore[type-arg]
    return sa.table("metrics", sa.column("job_id", sa.String), sa.column("step", sa.Integer), *columns)


def upgrade() -> None:
    op.add_column("metrics", sa.Column("measures", sa.JSON(), nullable=True))
    old = _metrics(*(sa.column(name, sa.Float) for name in CARRIED), sa.column("measures", sa.JSON))
    connection = op.get_bind()
    # Only checkpoint steps carry measures: a small share of the rows.
    measured = connection.execute(
        sa.select(old.c.job_id, old.c.step, *(old.c[name] for name in CARRIED)).where(
            sa.or_(*(old.c[name].is_not(None) for name in CARRIED))
        )
    ).all()
    for job_id, step, *values in measured:
        measures = {name: value for name, value in zip(CARRIED, values, strict=True) if value is not None}
        connection.execute(old.update().where(old.c.job_id == job_id, old.c.step == step).values(measures=measures))
    for name in CARRIED:
        op.drop_column("metrics", name)
    op.add_column("checkpoints", sa.Column("measures", sa.JSON(), nullable=True))
    op.add_column("checkpoints", sa.Column("evaluation_error", sa.String(length=1000), nullable=True))
    op.add_column("jobs", sa.Column("summary", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "summary")
    op.drop_column("checkpoints", "evaluation_error")
    op.drop_column("checkpoints", "measures")
    for name in CARRIED:
        op.add_column("metrics", sa.Column(name, sa.Float(), nullable=True))
    new = _metrics(sa.column("measures", sa.JSON), *(sa.column(name, sa.Float) for name in CARRIED))
    connection = op.get_bind()
    for job_id, step, measures in connection.execute(
        sa.select(new.c.job_id, new.c.step, new.c.measures).where(new.c.measures.is_not(None))
    ).all():
        values = {name: measures.get(name) for name in CARRIED}
        connection.execute(new.update().where(new.c.job_id == job_id, new.c.step == step).values(**values))
    op.drop_column("metrics", "measures")
