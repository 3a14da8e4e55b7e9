#!/usr/bin/env python3
"""farm board agent: run one LoadGen benchmark and print ONE JSON document on stdout.

    python3 farm_agent.py --config cfg.json      # or --config - to read the config from stdin
    python3 farm_agent.py --health BACKEND       # can this board take a job? (one JSON document)
    python3 farm_agent.py --config - --serve     # job after job: one config line in, one line out (serve.py)
    python3 farm_agent.py run --config cfg.json --out DIR   # standalone, on a host outside the fleet

Exit status: 0 ok (the LoadGen result may still be INVALID: see ``result_valid``), 1 infra error,
2 model error. Logs go to stderr. While the benchmark runs, file descriptor 1 is pointed at stderr so
that nothing a native library prints can corrupt the JSON on stdout.

``run ... --out DIR`` (standalone: a host the farm does not reach) also writes the report to
``DIR/report.json`` (last, by rename: a report there is whole) and LoadGen's logs under ``DIR/loadgen``
unless the config names a ``log_dir``; ``farm import DIR`` stores it (farm/services/imports.py).

``--serve`` (``--config -`` may be given with it, and the farm does, so the process reads as an agent run
in ``ps``) keeps reading configs from stdin, one per line, and answers each with one line
``{"exit": CODE, "report": DOCUMENT}`` (see serve.py); it exits 0 at EOF.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

_PROCESS_STARTED = time.time()  # before the heavy imports: lets the farm tell its overhead from the agent's

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import harness  # noqa: E402
from backends.base import InfraError, sha256_file  # noqa: E402


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits with 2 on bad arguments, which would read as a model error: raise instead."""

    def error(self, message):
        raise InfraError("bad command line: %s" % message)


def _parser():
    parser = _ArgumentParser(prog="farm_agent.py", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--config", help="config JSON file, or - for stdin")
    mode.add_argument(
        "--health", metavar="BACKEND", help="check python, numpy, loadgen, the backend and disk"
    )
    parser.add_argument(
        "--disk",
        action="append",
        default=[],
        metavar="PATH",
        help="with --health: also check free space where PATH is (repeatable)",
    )
    parser.add_argument(
        "--min-free-mb",
        type=float,
        metavar="MB",
        help="with --health: the free space (MiB) each disk needs (default 512)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="run job after job: one config per line on stdin, one result line each on stdout",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="standalone: also write the report (and LoadGen logs) to DIR for `farm import`",
    )
    parser.add_argument("--log-level", default="INFO", help="stderr log level (default INFO)")
    return parser


#: The serve protocol this agent speaks (the farm looks for this string in this file).
SERVE_PROTOCOL = "farm-agent-serve/1"


def _parse_args(argv):
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    standalone = bool(argv) and argv[0] == "run"  # `run --config cfg.json --out DIR`
    args = parser.parse_args(argv[1:] if standalone else argv)
    if standalone and not (args.config and args.out):
        parser.error("run needs --config FILE and --out DIR")
    if args.out and (args.serve or args.health):
        parser.error("--out goes with --config (one run)")
    if args.serve:
        if args.health:
            parser.error("--serve cannot be combined with --health")
        if args.config not in (None, "-"):
            parser.error("--serve reads its configs from stdin (--config - or no --config)")
    elif not args.config and not args.health:
        parser.error("one of the arguments --config --health --serve is required")
    if (args.disk or args.min_free_mb is not None) and not args.health:
        parser.error("--disk and --min-free-mb go with --health")
    if args.min_free_mb is not None and not 0 <= args.min_free_mb < float("inf"):
        parser.error("--min-free-mb must be a finite number >= 0")
    return args


def _read_config(path):
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, "r") as fh:
                text = fh.read()
    except (OSError, IOError) as exc:
        raise InfraError("cannot read config %s: %s" % (path, exc)) from exc
    return harness.load_config_text(text)


def _prepare_out(out_dir, config):
    """The --out folder, made; a folder that already holds a report is refused (one run per folder, so an
    import of it is one run). LoadGen's logs go under it unless the config says where."""
    report = os.path.join(out_dir, "report.json")
    if os.path.exists(report):
        raise InfraError("%s already holds a report: give each run its own --out folder" % out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise InfraError("cannot make --out %s: %s" % (out_dir, exc)) from exc
    if isinstance(config, dict) and not config.get("log_dir"):
        config["log_dir"] = os.path.join(out_dir, "loadgen")
    artifact = config.get("artifact") if isinstance(config, dict) else None
    if isinstance(artifact, str) and not config.get("artifact_sha256") and os.path.isfile(artifact):
        config["artifact_sha256"] = sha256_file(artifact)  # the import's artifact identity and provenance
    return config


def _write_out(out_dir, doc):
    """``DIR/report.json`` via a temporary name and a rename: whole or absent, never half."""
    path = os.path.join(out_dir, "report.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(json.dumps(doc, allow_nan=False, indent=1) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _binary_stdin():
    return getattr(sys.stdin, "buffer", sys.stdin)


def _redirect_stdout_to_stderr():
    """Point fd 1 at stderr; return a file object on the original stdout for the final JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(saved, "w")


def main(argv=None, protect_stdout=True):
    out = _redirect_stdout_to_stderr() if protect_stdout else sys.stdout
    try:
        config = None
        out_dir = None  # --out, once the folder is ready for this run's report
        try:
            args = _parse_args(argv)
            logging.basicConfig(
                stream=sys.stderr,
                level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                format="farm-agent %(levelname)s: %(message)s",
            )
            if args.health:
                import health

                doc, code = health.run(args.health, _HERE, args.disk, args.min_free_mb)
                out.write(json.dumps(doc) + "\n")
                out.flush()
                return code
            if args.serve:
                import serve

                return serve.serve(_binary_stdin(), out, sys.stderr, _PROCESS_STARTED)
            config = _read_config(args.config)
            if args.out:
                config = _prepare_out(args.out, config)
                out_dir = args.out
        except InfraError as exc:
            config = exc
        except SystemExit as exc:  # --help
            return exc.code if isinstance(exc.code, int) else 0
        doc, code = harness.run(config)
        doc["process_started_at"] = harness.utc_iso(_PROCESS_STARTED)
        if out_dir is not None:
            _write_out(out_dir, doc)
        out.write(json.dumps(doc, allow_nan=False) + "\n")
        out.flush()
        return code
    finally:
        if protect_stdout:
            sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
