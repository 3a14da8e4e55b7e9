"""Errors that reach the user as one clear message (no traceback)."""


class FarmError(Exception):
    """Base class: errors that reach the user as one clear message (no traceback)."""


class ModelError(FarmError):
    """A model is missing, corrupt or unusable; never retried."""


class SweepError(FarmError):
    """A sweep file is malformed; carries where (file, line, field) so the user can fix it."""

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None
    ):
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        field_part = f"{field}: " if field else ""
        super().__init__(f"{prefix}{field_part}{message}")


class InventoryError(SweepError):
    """An inventory file is malformed: located like a sweep error (file, line, field)."""


class SettingsError(FarmError):
    """A FARM_* variable has a value the farm cannot use: names each bad variable, its value and what is
    expected. Bad input, like a sweep error (exit 2)."""


class ConnectionFailure(FarmError):
    """The database or the broker cannot be reached or opened: one line with what to check (exit 1)."""


class InfraError(FarmError):
    """A transient infrastructure failure (board, transport, agent crash): retried elsewhere."""
