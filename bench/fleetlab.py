"""A throwaway distributed farm on loopback for the fleet benchmarks: a redis-server, N real sshd boards
(farm/lab/loopback.py), one `farm worker --board` per board and a compile worker, a SQLite results DB."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from support import FARM  # before farm: puts the checkout on sys.path

from farm.lab.loopback import SshdFactory, write_lab
from farm.lab.sshd import ClientKey, keygen
from farm.zoo.tiny import tiny_model


def naive(ts: datetime) -> datetime:
    """UTC without its zone: SQLite hands stored timestamps back that way."""
    return ts.replace(tzinfo=None) if ts.tzinfo else ts


def wait_until_served(env: dict[str, str], wait_s: float, poll_s: float = 2) -> list[str]:
    """Wait until every board is checked healthy and served by a worker (`farm fleet list`); returns the
    boards that still were not after ``wait_s`` (empty: all ready)."""
    deadline = time.monotonic() + wait_s
    listed: list[dict] = []
    while True:
        out = subprocess.run(
            [*FARM, "fleet", "list", "--format", "json"], env=env, capture_output=True, text=True
        )
        listed = json.loads(out.stdout) if out.returncode == 0 else []
        missing = [b["board"] for b in listed if not (b["worker"] and b["health"] == "ok")]
        if (listed and not missing) or time.monotonic() >= deadline:
            return missing if listed else ["(no board listed)"]
        time.sleep(poll_s)


class FleetLab:
    def __init__(self, boards: int, db_url: str | None = None) -> None:
        self.boards = boards
        self.given_db_url = db_url
        self.tmp = Path(tempfile.mkdtemp(prefix="farm-fleet-bench-"))
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []

    def __enter__(self) -> FleetLab:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.procs.append(
            subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                stdout=subprocess.DEVNULL,
            )
        )
        key = self.tmp / "client" / "id_ed25519"
        key.parent.mkdir()
        keygen(key, "farm-bench")
        (self.tmp / "sshd").mkdir()
        self.factory = SshdFactory(self.tmp / "sshd", ClientKey(key, Path(f"{key}.pub")))
        servers = self.factory.start(self.boards)
        inventory = write_lab(self.tmp / "inventory", servers)
        self.db_url = self.given_db_url or f"sqlite:///{self.tmp / 'farm.db'}"
        self.env = {
            **os.environ,
            "FARM_BROKER_URL": f"redis://127.0.0.1:{port}/0",
            "FARM_DB_URL": self.db_url,
            "FARM_DATA_DIR": str(self.tmp / "data"),
            "FARM_INVENTORY": str(inventory),
            "FARM_LAB": "lab.yaml",
            "FARM_HEALTH_INTERVAL_S": "60",
        }
        import onnx

        onnx.save(tiny_model(batch="N"), self.tmp / "tiny.onnx")
        subprocess.run([*FARM, "db", "upgrade"], env=self.env, check=True, capture_output=True)
        return self

    def sweep(self, jobs: int, min_duration_ms: int) -> Path:
        """`jobs` run jobs: repeats (at most 100) x batch sizes x SingleStream [and Offline]."""
        shape = next(
            (
                (b, s)
                for b, s in (
                    ([1], ["SingleStream"]),
                    ([1, 2], ["SingleStream"]),
                    ([1, 2], ["SingleStream", "Offline"]),
                )
                if jobs % (len(b) * len(s)) == 0 and jobs // (len(b) * len(s)) <= 100
            ),
            None,
        )
        if shape is None:
            raise SystemExit(
                f"cannot make a sweep of exactly {jobs} jobs (repeats <= 100 x up to 2 batch sizes x 2 scenarios)"
            )
        batches, scenarios = shape
        path = self.tmp / f"sweep-{jobs}-{min_duration_ms}.yaml"
        path.write_text(
            f"name: fleet-bench\nmodels:\n  - name: tiny\n    onnx: {self.tmp / 'tiny.onnx'}\nprecisions: [fp32]\n"
            f"targets: [cpu]\nbatch_sizes: {batches}\nscenarios: [{', '.join(scenarios)}]\n"
            f"repeats: {jobs // (len(batches) * len(scenarios))}\n"
            f"loadgen: {{min_duration_ms: {min_duration_ms}, min_query_count: 64}}\n"
        )
        return path

    def start_workers(self, wait_ready_s: float = 300) -> None:
        logs = self.tmp / "logs"
        logs.mkdir(exist_ok=True)

        def spawn(*args: str) -> subprocess.Popen:
            log = open(logs / f"{args[-1]}.log", "a")  # noqa: SIM115 - the worker owns it
            return subprocess.Popen(
                [*FARM, "worker", *args, "-l", "WARNING"],
                env=self.env,
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        self.workers = [spawn("-Q", "compile", "-n", "compile@bench")]
        self.workers += [spawn("--board", f"node-{i}", "-n", f"node-{i}@bench") for i in range(self.boards)]
        missing = wait_until_served(self.env, wait_ready_s, poll_s=1)
        if not missing:
            return
        tails = "\n".join(
            f"--- {p.name}\n{p.read_text()[-1500:]}"
            for p in sorted(logs.glob("node-*.log"))
            if p.stem.split("@")[0] in missing
        )
        raise SystemExit(f"board workers did not come up: {missing}\n{tails}")

    def stop_workers(self) -> None:
        for w in self.workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in self.workers:
            w.wait(timeout=120)
        self.workers = []

    def submit(self, sweep: Path, allow_failures: bool = False) -> str:
        """The sweep id, once the sweep has finished; with allow_failures, also when some jobs failed."""
        out = subprocess.run(
            [*FARM, "submit", str(sweep)], env=self.env, capture_output=True, text=True, timeout=3600
        )
        if out.returncode != 0 and not (allow_failures and "submitted sweep " in out.stdout):
            raise SystemExit(f"sweep failed: {out.stderr}\n{out.stdout[-2000:]}")
        return out.stdout.split("submitted sweep ")[1].split()[0]

    def __exit__(self, *exc: object) -> None:
        if self.workers:
            self.stop_workers()
        self.factory.stop_all()
        for p in self.procs:
            p.terminate()
        shutil.rmtree(self.tmp, ignore_errors=True)
