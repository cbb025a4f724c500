"""jobs by queue, newest first: the index the preview's speed estimate reads

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 03:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_queue_created", "jobs", ["queue", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_queue_created", table_name="jobs")
