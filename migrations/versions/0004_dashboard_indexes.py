"""indexes for the dashboard's read side (filters, latest runs, jobs' runs, fleet history)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# name -> (table, columns); the same entries are declared in farm/db/models.py.
INDEXES = {
    # Compare and Trends: the filter choices (one index-only scan) and a selection's runs per target.
    "ix_runs_selection": (
        "runs",
        ["model", "precision", "batch_size", "scenario", "target", "source", "created_at"],
    ),
    # Run detail: the latest runs.
    "ix_runs_created": ("runs", ["created_at"]),
    # Sweep detail: a job's run (and ON DELETE CASCADE from jobs).
    "ix_runs_job": ("runs", ["job_id"]),
    # Fleet: the latest events over every board.
    "ix_board_events_at": ("board_events", ["at"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
