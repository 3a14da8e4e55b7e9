"""version labels on sweeps, and scheduled sweeps: the schedules table and the slot that submitted a sweep

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sweeps", sa.Column("labels", sa.JSON(), nullable=True))
    op.add_column("sweeps", sa.Column("schedule_name", sa.String(length=64), nullable=True))
    op.add_column("sweeps", sa.Column("schedule_slot", sa.DateTime(timezone=True), nullable=True))
    # A unique index (SQLite cannot add a constraint to an existing table); NULLs are distinct, so sweeps
    # submitted by hand never collide.
    op.create_index("uq_sweeps_schedule_slot", "sweeps", ["schedule_name", "schedule_slot"], unique=True)
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("cron", sa.String(length=255), nullable=False),
        sa.Column("sweep_yaml", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sweep_id", sa.String(length=36), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_schedules_name"),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_index("uq_sweeps_schedule_slot", table_name="sweeps")
    for column in ("schedule_slot", "schedule_name", "labels"):
        op.drop_column("sweeps", column)
