"""metric rollups: each job's series summarised over blocks of steps, for a downsampled history of any length

Also stores a point without measures as SQL NULL rather than JSON null, so the partial index
ix_metrics_measured holds only the points that carry some.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.repositories.rollups import SERIES, VALUE_COLUMNS, fold

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEASURED = sa.text("measures IS NOT NULL")
BACKFILL_BATCH = 10_000


def _rollups() -> sa.TableClause:
    return sa.table("metric_rollups", *(sa.column(name) for name in ("job_id", "size", "block", *VALUE_COLUMNS)))


def _backfill(connection: sa.Connection) -> None:
    # Job by job, with the same folding the recorder uses, so old jobs' rollups are what new ones get.
    metrics = sa.table("metrics", *(sa.column(name) for name in ("job_id", "step", *SERIES)))
    table = _rollups()
    job_ids = connection.execute(sa.select(metrics.c.job_id).distinct()).scalars().all()
    for job_id in job_ids:
        points = connection.execute(
            sa.select(metrics.c.step, *(metrics.c[name] for name in SERIES))
            .where(metrics.c.job_id == job_id)
            .order_by(metrics.c.step)
        ).mappings()
        rows = [summary.columns(job_id, key) for key, summary in fold(points).items()]
        for start in range(0, len(rows), BACKFILL_BATCH):
            connection.execute(table.insert(), rows[start : start + BACKFILL_BATCH])


def upgrade() -> None:
    series = [
        sa.Column(f"{name}_{kind}", sa.Float(), nullable=True) for name in SERIES for kind in ("min", "max", "last")
    ]
    op.create_table(
        "metric_rollups",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        *series,
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_metric_rollups_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "size", "block", name=op.f("pk_metric_rollups")),
    )
    connection = op.get_bind()
    connection.execute(sa.text("UPDATE metrics SET measures = NULL WHERE CAST(measures AS TEXT) = 'null'"))
    op.create_index(
        "ix_metrics_measured",
        "metrics",
        ["job_id", "step"],
        unique=False,
        postgresql_where=MEASURED,
        sqlite_where=MEASURED,
    )
    _backfill(connection)


def downgrade() -> None:
    op.drop_index("ix_metrics_measured", table_name="metrics", postgresql_where=MEASURED, sqlite_where=MEASURED)
    op.drop_table("metric_rollups")
