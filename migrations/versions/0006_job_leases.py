"""job leases and the outbox: who runs a job and until when, and whether its message was published

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_owner", sa.String(length=255), nullable=True))
    op.add_column("jobs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("message_id", sa.String(length=64), nullable=True))
    op.create_index("ix_jobs_state_lease", "jobs", ["state", "lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_lease", table_name="jobs")
    for column in ("message_id", "published_at", "heartbeat_at", "lease_expires_at", "lease_owner"):
        op.drop_column("jobs", column)
