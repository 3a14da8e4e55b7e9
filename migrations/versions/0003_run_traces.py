"""runs: power, temperature and clock traces; emulation model version

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        # {"power": {...}, "thermal": {...}, "clock": {...}}: each {"t_s": [...], "values": [...], "unit", ...}
        batch.add_column(sa.Column("traces", sa.JSON(), nullable=True))
        # The model that produced an emulated result (e.g. "farm-dpu-perf/1"); null for measured runs.
        batch.add_column(sa.Column("emulation_model", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("emulation_model")
        batch.drop_column("traces")
