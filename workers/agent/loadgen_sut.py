"""The system under test LoadGen drives: its callbacks and what they measured.

How each scenario's queries are served (the table's ``issue`` and ``queued``, loadgen_scenarios.py):

* SingleStream and MultiStream (``issue_stream``): LoadGen has one query outstanding and issues the next
  only when it completes, so the query runs inside ``issue_queries``, its samples back to back, and
  completes as a whole (LoadGen's query latency is its last sample's).
* Server (``issue_server``, queued): LoadGen's issue thread only puts the query in a FIFO queue; one
  worker thread runs the queue in arrival order and completes each sample when done, so LoadGen's
  latency is queueing + service and its thread never waits on an inference (which would delay later
  arrivals and flatter the latency).
* Offline (``issue_offline``): the one query's samples run one batch at a time, in order, each completed
  as soon as it is done.
"""

from __future__ import annotations

import queue
import threading
import time

import loadgen_scenarios


class Sut(object):
    """Holds the SUT callbacks and what they measured. Callbacks never raise into LoadGen (an exception
    crossing LoadGen's C++ frames crashes the process): the first error is kept, the remaining samples
    are completed at once, and the driver raises it after the test."""

    def __init__(self, lg, backend, batches, scenario):
        self.lg = lg
        self.backend = backend
        self.batches = batches
        self.scenario = scenario
        self.latencies_ns = []
        self.errors = []
        self.queries = 0
        self.completed = 0
        self.first_issue_ns = None
        self.last_complete_ns = None
        self.loaded = 0
        self._queue = None
        self._worker = None

    def load_samples(self, indices):
        self.loaded += len(indices)

    def unload_samples(self, indices):
        self.loaded -= len(indices)

    def flush_queries(self):
        pass

    @property
    def issue(self):
        """The ``issue_queries`` callback of this SUT's scenario."""
        return getattr(self, loadgen_scenarios.SCENARIOS[self.scenario].issue)

    def start(self):
        """Before the test: a queued scenario's worker thread."""
        if loadgen_scenarios.SCENARIOS[self.scenario].queued:
            self._queue = queue.Queue()
            self._worker = threading.Thread(target=self._serve, name="farm-agent-server-sut")
            self._worker.daemon = True
            self._worker.start()

    def stop(self):
        """After the test (LoadGen returns once every query completed: the queue is empty)."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def issue_stream(self, query_samples):
        clock = time.perf_counter_ns
        t0 = clock()
        if self.first_issue_ns is None:
            self.first_issue_ns = t0
        if not self.errors:
            try:
                for qs in query_samples:
                    self.backend.predict(self.batches[qs.index])
            except BaseException as exc:
                self.errors.append(exc)
        t1 = clock()
        response = self.lg.QuerySampleResponse
        self.lg.QuerySamplesComplete([response(qs.id, 0, 0) for qs in query_samples])
        self.latencies_ns.append(t1 - t0)
        self.last_complete_ns = t1
        self.queries += 1
        self.completed += len(query_samples)

    def issue_offline(self, query_samples):
        self.queries += 1
        if self.first_issue_ns is None:
            self.first_issue_ns = time.perf_counter_ns()
        self._run_samples(query_samples)

    def issue_server(self, query_samples):
        if self.first_issue_ns is None:
            self.first_issue_ns = time.perf_counter_ns()
        self.queries += 1
        self._queue.put(list(query_samples))

    def _serve(self):
        get = self._queue.get
        while True:
            query_samples = get()
            if query_samples is None:
                return
            self._run_samples(query_samples)

    def _run_samples(self, query_samples):
        """Offline and Server: each sample timed on its own and completed as soon as it is done."""
        clock = time.perf_counter_ns
        predict = self.backend.predict
        batches = self.batches
        complete = self.lg.QuerySamplesComplete
        response = self.lg.QuerySampleResponse
        latencies = self.latencies_ns
        errors = self.errors
        for qs in query_samples:
            t0 = clock()
            if not errors:
                try:
                    predict(batches[qs.index])
                except BaseException as exc:
                    errors.append(exc)
            t1 = clock()
            complete([response(qs.id, 0, 0)])
            latencies.append(t1 - t0)
            self.last_complete_ns = t1
            self.completed += 1


def window_s(sut):
    """Seconds from the SUT's first issue to its last completion (the SUT-side window), or None."""
    if sut.first_issue_ns is None or sut.last_complete_ns is None:
        return None
    return (sut.last_complete_ns - sut.first_issue_ns) / 1e9
