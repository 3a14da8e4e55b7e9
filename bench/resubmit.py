"""Re-submitting an identical sweep must execute no compile job (goal: 0), through the real CLI path.

Runs in a throwaway data dir (embedded mode: SQLite, no broker) and prints, for each submission,
the compile jobs executed vs reused, and the wall time.

    python bench/resubmit.py [--sweep FILE]    # default: the bundled demo sweep
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from importlib import resources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default=None, help="sweep file (default: farm/examples/demo.yaml)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        os.environ["FARM_DATA_DIR"] = tmp
        os.environ.pop("FARM_DB_URL", None)
        os.environ.pop("FARM_BROKER_URL", None)
        from farm.celery_app import app, configure
        from farm.cli.common import settings_for
        from farm.services.submit import submit_sweep, wait_for

        configure(app)
        settings = settings_for(None)
        sweep = args.sweep or str(resources.files("farm") / "examples" / "demo.yaml")
        print(
            f"# resubmit benchmark {date.today()} on {platform.node()} ({os.cpu_count()} cores), sweep {sweep}"
        )
        figures = []
        for attempt in (1, 2):
            started = time.perf_counter()
            summary = wait_for(settings, submit_sweep(settings, sweep), lambda _: None)
            seconds = time.perf_counter() - started
            figures.append(summary["compile_executed"])
            print(
                f"submission {attempt}: state={summary['state']} compile_executed={summary['compile_executed']} "
                f"compile_reused={summary['compile_cached']} runs_stored={summary['runs_stored']} wall_s={seconds:.1f}"
            )
        verdict = "PASS" if figures[1] == 0 else "FAIL"
        print(f"resubmit_compile_jobs_executed={figures[1]} goal=0 {verdict}")


if __name__ == "__main__":
    main()
