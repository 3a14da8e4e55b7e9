"""measurement: LoadGen logs as run attachments, host noise and flags on runs, provenance details

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_attachments_run", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_run_attachments"),
        sa.UniqueConstraint("run_id", "name", name="uq_run_attachments_run_name"),
    )
    with op.batch_alter_table("runs") as batch:
        # the pre-run host noise check: {"load_1m", "busy_processes", "cpu_mhz", "verdict", "reasons": [...]}
        batch.add_column(sa.Column("noise", sa.JSON(), nullable=True))
        # why a result needs a second look, e.g. ["noisy-host", "unstable: cv 5.1% > 3.5%", "power: ..."]
        batch.add_column(sa.Column("flags", sa.JSON(), nullable=True))
    with op.batch_alter_table("provenance") as batch:
        batch.add_column(sa.Column("artifact_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("dpu_fingerprint", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("accelerator_clock_mhz", sa.Float(), nullable=True))
        batch.add_column(sa.Column("ambient_c", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provenance") as batch:
        for column in ("ambient_c", "accelerator_clock_mhz", "dpu_fingerprint", "artifact_sha256"):
            batch.drop_column(column)
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("flags")
        batch.drop_column("noise")
    op.drop_table("run_attachments")
