"""The alerts sink: every stored run goes through the per-run check (farm.alerts), and a confirmation run
may finish its confirmation. Confirmation runs it asks for are published by the scheduler with the rest."""

from __future__ import annotations

from farm.config import load_settings
from farm.queues import Publish
from farm.sinks.base import ResultSink, StoredRun


class AlertSink(ResultSink):
    name = "alerts"

    def stored(self, run: StoredRun) -> list[Publish]:
        from farm.alerts import service

        settings = load_settings().model_copy(update={"db_url": run.db_url})
        return service.after_run(settings, run.run_id).publish
