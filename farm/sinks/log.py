"""The built-in sink: one log line per stored run, so a worker's log shows what it stored."""

from __future__ import annotations

import logging

from farm.metrics import headline
from farm.queues import Publish
from farm.sinks.base import ResultSink, StoredRun

log = logging.getLogger("farm.results")


class LogSink(ResultSink):
    name = "log"

    def stored(self, run: StoredRun) -> list[Publish]:
        try:
            metric = headline(run.scenario)
        except ValueError:
            metric = None
        value = run.metrics.get(metric) if metric else None
        figure = f"{metric}={value:.4g}" if value is not None else "no headline"
        log.info(
            "stored run %s: %s %s b%s %s on %s (%s, %s)%s",
            run.run_id,
            run.model,
            run.precision,
            run.batch_size,
            run.scenario,
            run.board or run.target,
            run.source,
            figure,
            f" flags: {', '.join(run.flags)}" if run.flags else "",
        )
        return []
