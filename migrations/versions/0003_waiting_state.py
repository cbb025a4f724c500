"""waiting: a job held back for its owner's capacity gets a state of its own instead of "queued, never sent"

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Data only: jobs.status is a VARCHAR(16), and the new state's name fits it.
_jobs = sa.table("jobs", sa.column("status", sa.String), sa.column("enqueued_at", sa.DateTime))


def upgrade() -> None:
    # Before 0003 a waiting job was a queued one whose task was never sent (enqueued_at NULL).
    op.execute(_jobs.update().where(_jobs.c.status == "queued", _jobs.c.enqueued_at.is_(None)).values(status="waiting"))


def downgrade() -> None:
    op.execute(_jobs.update().where(_jobs.c.status == "waiting").values(status="queued", enqueued_at=None))
