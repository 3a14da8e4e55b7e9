"""Serve mode: one agent process runs job after job (``farm_agent.py --config - --serve``).

The farm keeps one such process per board on one open SSH channel, so a job costs neither an SSH session
nor an interpreter start nor the numpy/onnxruntime/LoadGen imports (paid once per session).

Protocol, one line each way per job:

* in (stdin): one config as JSON on ONE line (the same document ``--config`` reads);
* out (the protected stdout): ``{"exit": <0|1|2>, "report": <the document --config prints>}`` on ONE line,
  flushed; the exit code is the one ``--config`` would have exited with;
* stderr: the job's logs, then the line :data:`JOB_END_MARK` % n (n counts the jobs of this process from
  1), written and flushed before the response, so the farm can tell one job's stderr from the next's.

The loop ends at EOF on stdin (exit 0). Backends and sessions are made and closed per job exactly as with
``--config``; nothing but imported modules outlives a job. ``process_started_at`` in each report is when
that job's line arrived (the job's start on the board); ``session_started_at`` is the process's start.
"""

from __future__ import annotations

import json
import logging
import time

import harness
from backends.base import InfraError

log = logging.getLogger("farm-agent")

#: Written (and flushed) to stderr after each job, before its response line.
JOB_END_MARK = "farm-agent-serve: end of job %d"


def _config(line):
    """The config of one request line (or the InfraError that ``harness.run`` turns into a report)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return InfraError("config is not UTF-8: %s" % exc)
    try:
        return harness.load_config_text(text)
    except InfraError as exc:
        return exc


def _response(code, doc):
    try:
        return json.dumps({"exit": code, "report": doc}, allow_nan=False)
    except (TypeError, ValueError) as exc:  # never expected: harness.run returns plain, finite JSON values
        log.error("cannot encode the report: %s", exc)
        bare = dict((k, doc.get(k)) for k in ("agent_version", "scenario", "backend", "batch_size"))
        bare.update(
            status="error",
            error={"kind": "infra", "message": "agent could not encode its report: %s" % exc},
            started_at=doc.get("started_at"),
            finished_at=doc.get("finished_at"),
        )
        return json.dumps({"exit": harness.EXIT_INFRA, "report": bare})


def serve(stdin, out, err, session_started=None):
    """Run one job per line of ``stdin`` (a binary file) until EOF; one response line each to ``out``.

    ``err`` is the text stream the logs go to (the job-end marks are written there). Returns the exit
    status of the process: 0 at EOF, 1 when ``out`` is gone (the farm hung up).
    """
    if session_started is None:
        session_started = time.time()
    jobs = 0
    while True:
        line = stdin.readline()
        if not line:
            log.debug("end of input after %d job(s)", jobs)
            return harness.EXIT_OK
        if not line.strip():
            continue
        received = time.time()
        jobs += 1
        doc, code = harness.run(_config(line))
        doc["process_started_at"] = harness.utc_iso(received)
        doc["session_started_at"] = harness.utc_iso(session_started)
        doc["session_job"] = jobs
        response = _response(code, doc)
        try:
            err.write(JOB_END_MARK % jobs + "\n")
            err.flush()
        except (OSError, ValueError):
            pass
        try:
            out.write(response + "\n")
            out.flush()
        except (OSError, ValueError) as exc:
            log.error("cannot write the response of job %d: %s", jobs, exc)
            return harness.EXIT_INFRA
