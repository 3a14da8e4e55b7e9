"""Helpers shared by the read side."""

from __future__ import annotations

from datetime import datetime, timezone


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands timestamps back without their zone, and they were stored as UTC."""
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).isoformat()
