"""The alert rehearsal, timed: how long from the first slow run to the delivered alert, and how many
confirmation runs it took. Embedded farm (SQLite, no broker), a virtual lab of one zcu104 and a real webhook
on 127.0.0.1, driven through the `farm` CLI as an operator would:

    .venv/bin/python bench/alerts_rehearsal.py [--history 10] [--time-scale 1] [--clock-mhz 150]

1. `farm lab up --boards zcu104`, a sweep of N repeats (the history), 2. `farm lab set zcu104-1
clock_mhz=...`, 3. a sweep of 3 repeats: its first run is a candidate, the farm re-runs it and the alert
is delivered, 4. `farm lab set --reset` and 3 more runs: the alert resolves.
Times come from the database (the slow run's created_at, the delivery's sent_at) and the webhook's own
clock; nothing is estimated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support import FARM  # before farm: puts the checkout on sys.path

from farm.zoo.tiny import heavy_model, heavy_sweep


class Hook:
    """A webhook receiver: what it got, and when."""

    def __init__(self) -> None:
        self.got: list[tuple[float, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.got.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def farm(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([*FARM, *args], env=env, capture_output=True, text=True)
    if os.environ.get("BENCH_DEBUG"):
        sys.stderr.write(out.stderr[-3000:])
    if out.returncode not in (0, 1):
        sys.exit(f"farm {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=1.0)  # < 1: runs are flagged, never alert
    parser.add_argument("--clock-mhz", type=float, default=150)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="farm-alerts-rehearsal-"))
    hook = Hook()
    (work / "alerts.yaml").write_text(f"channels:\n  - {{name: hook, kind: webhook, url: '{hook.url}'}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env |= {"FARM_DATA_DIR": str(work / "data"), "FARM_ALERTS": str(work / "alerts.yaml")}
    model = heavy_model(work / "heavy.onnx")
    for name, repeats in (("history", args.history), ("slow", 3), ("fixed", 3)):
        (work / f"{name}.yaml").write_text(heavy_sweep(model, repeats=repeats, min_query_count=128))
    up = farm(env, "lab", "up", "--boards", "zcu104", "--time-scale", str(args.time_scale))
    env["FARM_LAB"] = next(line.split("=", 1)[1] for line in up.splitlines() if "export FARM_LAB=" in line)
    try:
        t = time.perf_counter()
        farm(env, "submit", str(work / "history.yaml"))
        history_s = time.perf_counter() - t
        farm(env, "lab", "set", "zcu104-1", f"clock_mhz={args.clock_mhz}")
        t = time.perf_counter()
        farm(env, "submit", str(work / "slow.yaml"))
        slow_s = time.perf_counter() - t
        alerts = json.loads(farm(env, "alerts", "list", "--format", "json"))
        farm(env, "lab", "set", "zcu104-1", "--reset")
        farm(env, "submit", str(work / "fixed.yaml"))
        after = {a["metric"]: a["state"] for a in json.loads(farm(env, "alerts", "list", "--format", "json"))}
    finally:
        farm(env, "lab", "down")
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{work / 'data' / 'farm.db'}")
    with engine.connect() as c:
        first_slow = c.execute(
            sa.text("SELECT MIN(r.created_at) FROM runs r JOIN sweeps s ON s.id = r.sweep_id "
                    "WHERE s.purpose = 'sweep' AND r.sweep_id = (SELECT id FROM sweeps WHERE purpose='sweep' "
                    "ORDER BY created_at LIMIT 1 OFFSET 1)")
        ).scalar()  # fmt: skip
        reruns = c.execute(
            sa.text(
                "SELECT COUNT(*) FROM runs r JOIN sweeps s ON s.id = r.sweep_id WHERE s.purpose='confirmation'"
            )
        ).scalar()
    first = datetime.fromisoformat(str(first_slow)).replace(tzinfo=timezone.utc).timestamp()
    delivered = [at for at, doc in hook.got if "confirmed" in doc["title"]]
    opened = [a for a in alerts if a["state"] == "open"]
    print(
        f"history: {args.history} runs in {history_s:.1f} s; slow sweep (3 runs + confirmation) {slow_s:.1f} s"
    )
    print(f"alerts opened: {len(opened)} ({', '.join(sorted(a['metric'] for a in opened))}), all confirmed: "
          f"{all(a['confirmed'] for a in opened)}; confirmation runs: {reruns}")  # fmt: skip
    if delivered:
        print(f"first slow run stored -> alert delivered to the webhook: {delivered[0] - first:.1f} s")
    print(f"cause: {opened[0]['cause'] if opened else '-'}")
    print(f"after the reset and 3 runs: {after}; notifications received: {len(hook.got)}")
    return 0 if opened and delivered else 1


if __name__ == "__main__":
    sys.exit(main())
