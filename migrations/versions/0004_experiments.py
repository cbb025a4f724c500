"""experiments: grids of runs compared as one, their event log, and each run's link and overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("grid", sa.JSON(), nullable=True),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["owners.id"], name=op.f("fk_experiments_owner_id_owners"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index("ix_experiments_owner_created", "experiments", ["owner_id", "created_at", "id"], unique=False)
    op.create_table(
        "experiment_events",
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_events_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "seq", name=op.f("pk_experiment_events")),
    )
    # Plain ADD COLUMN (see 0002): on SQLite a batch copy of `jobs` would cascade-delete its children.
    op.add_column("jobs", sa.Column("experiment_id", sa.String(length=36), nullable=True))
    op.add_column("jobs", sa.Column("overrides", sa.JSON(), nullable=True))
    op.create_index("ix_jobs_experiment_id", "jobs", ["experiment_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_experiment_id", table_name="jobs")
    op.drop_column("jobs", "overrides")
    op.drop_column("jobs", "experiment_id")
    op.drop_table("experiment_events")
    op.drop_index("ix_experiments_owner_created", table_name="experiments")
    op.drop_table("experiments")
