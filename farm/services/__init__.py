"""Service functions: what the Celery tasks and the CLI call. Tasks stay thin."""
