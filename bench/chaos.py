"""Chaos benchmark (issue 10): a distributed farm on this machine finishes a 2,000-job sweep while it is hurt.

What runs: a redis-server of its own (so it can be killed and restarted from an older save), a PostgreSQL
database of its own on the local server, the virtual lab (`farm lab up`: one real sshd and one board
simulator per emulated board, several board types), `farm fleet up` (one worker per board, a compile worker,
the control worker with Celery beat and the reconciler), and one sweep submitted with `farm submit --no-wait`.

Faults, on a schedule drawn from ``--seed`` (each at a point in the sweep's progress, never two at once):
kill -9 of a job's process (the lease's pid), kill -9 of a board worker's main process, Redis killed and
restarted from a save taken earlier in the sweep, a board's sshd (and its sessions) killed for a minute, a
board's agent SIGSTOPped, a second submitter killed between writing its sweep and publishing it, and a
board's host key changed (the pinned known_hosts line kept). No operator command is run.

Figures: per fault, what was hit and how long until the farm had recovered (the predicate is printed with
it); then every job of both sweeps: stored exactly once, failed with a reason, or neither (lost / stuck);
runs per job (duplicates); utilisation; the coordinator's CPU per job; the whole farm's memory (PSS).

``--no-faults --plain-boards --plain-type zcu104 --boards 100 --boards-per-worker 10 --warm-up``: the scale
run, on plain sshd boards (farm.lab.loopback: no board simulator, whose 50 MB and 1.5 % CPU each do not
fit 100 times on 2 cores), emulated, served by worker hosts of several boards each. On a 2-core machine
the 100 agents themselves do not fit (docs/benchmarks.md says what was and was not measured).

    .venv/bin/python bench/chaos.py [--boards 20] [--jobs 2000] [--seed 1]
    .venv/bin/python bench/chaos.py --no-faults --plain-boards --plain-type zcu104 --boards 100 \
        --boards-per-worker 10 --warm-up
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from fleetlab import wait_until_served
from support import FARM  # before farm: puts the checkout on sys.path

from farm.lab import sshd
from farm.lab.sshd import descendants, pid_alive, processes_mentioning
from farm.zoo.tiny import tiny_model

TYPES = ("zcu104", "u50", "kv260", "vck190", "ultra96-v2")
FAULTS = ("kill-job", "kill-job", "kill-job", "kill-worker", "kill-worker", "redis-old-save", "sshd-down",
          "sigstop-agent", "submitter-killed", "host-key")  # fmt: skip
SSHD_DOWN_S = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------- /proc


def proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def cpu_s(pid: int, children: bool = False) -> float:
    """utime + stime (and, with ``children``, the reaped children's) of one process, in seconds."""
    f = proc_stat(pid)
    if f is None:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / TICKS


def tree_cpu_s(root: int) -> float:
    """CPU of a process tree: the root with its reaped children, and every live descendant."""
    return cpu_s(root, children=True) + sum(cpu_s(p, children=True) for p in descendants(root))


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cmdline(pid: int) -> list[str]:
    """A process's argv ([] once it is gone)."""
    return [a for a in sshd.cmdline(pid).decode(errors="replace").split("\0") if a]


def lab_processes(tmp: Path, *words: str) -> list[int]:
    """Processes of this run (their command line names its temp folder) that mention one of ``words``."""
    return [p for p in processes_mentioning(str(tmp)) if any(w in " ".join(cmdline(p)) for w in words)]


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def ppid(pid: int) -> int | None:
    f = proc_stat(pid)
    return int(f[1]) if f else None


# ------------------------------------------------------------------------------------------- the farm


class ChaosFarm:
    """Redis, a PostgreSQL database, the lab and `farm fleet up`, all torn down on exit."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="farm-chaos-"))
        self.redis: subprocess.Popen | None = None
        self.fleet: subprocess.Popen | None = None
        self.plain = None  # SshdFactory for --plain-boards
        self.dbname = f"farm_chaos_{os.getpid()}"

    # -------------------------------------------------------------- set-up
    def __enter__(self) -> ChaosFarm:
        a = self.args
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.redis_port = s.getsockname()[1]
        (self.tmp / "redis").mkdir()
        self.start_redis()
        self.db_url = a.db or self._create_db()
        inventory = self.tmp / "inventory"
        inventory.mkdir()
        self.env = {
            **os.environ,
            "FARM_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "FARM_DB_URL": self.db_url,
            "FARM_DATA_DIR": str(self.tmp / "data"),
            "FARM_INVENTORY": str(inventory),
            "PYTHONUNBUFFERED": "1",
            # A board that failed is re-checked after 2 minutes (default 10), checks every minute (default
            # 5): so boards hurt by a fault come back, or say why not, within the run.
            "FARM_BAD_COOLDOWN_S": "120",
            "FARM_HEALTH_INTERVAL_S": "60",
        }
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("FARM_")})
        if a.plain_boards:
            self._plain_lab(inventory)
        else:
            self._virtual_lab(inventory)
        self.renice_lab()
        self.farm("db", "upgrade")
        onnx_path = self.tmp / "tiny.onnx"
        import onnx

        onnx.save(tiny_model(batch="N"), onnx_path)
        self.onnx = onnx_path
        return self

    def _create_db(self) -> str:
        from sqlalchemy import create_engine, text

        admin = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.dbname}"'))
        admin.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.dbname}"

    def _drop_db(self) -> None:
        from sqlalchemy import create_engine, text

        from farm.db.session import dispose_engines

        dispose_engines()
        admin = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)'))
        admin.dispose()

    def _virtual_lab(self, inventory: Path) -> None:
        from farm.config import builtin_inventory_dir

        shutil.copy(builtin_inventory_dir() / "board-types.yaml", inventory / "board-types.yaml")
        types = self.args.types.split(",")
        lines = [f"time_scale: {self.args.time_scale}", "boards:"]
        for i in range(self.args.boards):
            t = types[i % len(types)]
            lines.append(f"  - {{name: {t}-{i // len(types) + 1}, type: {t}}}")
        (inventory / "virtual-lab.yaml").write_text("\n".join(lines) + "\n")
        out = self.farm("lab", "up")
        self.env["FARM_LAB"] = out.split("export FARM_LAB=")[1].split()[0]
        os.environ["FARM_LAB"] = self.env["FARM_LAB"]
        self.targets = sorted(set(types[: self.args.boards]))

    def _plain_lab(self, inventory: Path) -> None:
        from farm.lab.loopback import SshdFactory, write_lab
        from farm.lab.sshd import ClientKey, keygen

        key = self.tmp / "client" / "id_ed25519"
        key.parent.mkdir()
        keygen(key, "farm-chaos")
        (self.tmp / "sshd").mkdir()
        self.plain = SshdFactory(self.tmp / "sshd", ClientKey(key, Path(f"{key}.pub")))
        write_lab(inventory, self.plain.start(self.args.boards), board_type=self.args.plain_type)
        if (
            self.args.plain_type != "cpu"
        ):  # a DPU type: emulated (the agent paces to the perf model's profile)
            blocks = (inventory / "lab.yaml").read_text().rstrip("\n").split("\n  - name: ")
            for i in range(1, len(blocks)):
                root = self.tmp / "emu" / blocks[i].split("\n")[0]
                (root / "emu").mkdir(parents=True)
                blocks[i] += f"\n    emulation: {{root: {root}, time_scale: 1.0}}"
            (inventory / "lab.yaml").write_text("\n  - name: ".join(blocks) + "\n")
        self.env["FARM_LAB"] = os.environ["FARM_LAB"] = "lab.yaml"
        self.targets = [self.args.plain_type]

    def renice_lab(self) -> None:
        """Board-side processes (sshd, which the agents inherit it from, and the board simulators) at nice
        19: on a real lab each board has its own CPU, so here they must not take the coordinator's."""
        for pid in lab_processes(self.tmp, "sshd", "boardsim"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, pid, 19)

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp / "redis"), "--dbfilename", "dump.rdb"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.redis_port)) == 0:
                    return
            time.sleep(0.1)
        raise SystemExit("redis-server did not start")

    def farm(self, *args: str, timeout: float = 600) -> str:
        out = subprocess.run([*FARM, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise SystemExit(f"farm {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
        return out.stdout

    def fleet_up(self, wait_ready_s: float = 600) -> None:
        argv = [*FARM, "fleet", "up", "-l", "WARNING"]
        if self.args.boards_per_worker > 1:
            argv += ["--boards-per-worker", str(self.args.boards_per_worker)]
        self.fleet_log = self.tmp / "fleet.log"
        self.fleet = subprocess.Popen(
            argv,
            env=self.env,
            stdout=open(self.fleet_log, "w"),  # noqa: SIM115 - fleet up owns it
            stderr=subprocess.STDOUT,
        )
        missing = wait_until_served(self.env, wait_ready_s)
        if not missing:
            return
        raise SystemExit(
            f"boards not ready after {wait_ready_s:.0f} s: {missing}\n{self.fleet_log.read_text()[-3000:]}"
        )

    def sweep_file(self, jobs: int, name: str, repeats: int | None = None) -> Path:
        """Exactly ``jobs`` run jobs: targets x batch sizes x scenarios x repeats (<= 100); with ``repeats``,
        the same configurations that many times (a warm-up)."""
        targets = self.targets
        model = (
            f"  - name: tiny\n    onnx: {self.onnx}\n"
            if self.args.model == "tiny"
            else f"  - {self.args.model}\n"
        )
        for batches in [list(range(1, n + 1)) for n in range(1, 11)]:
            for scenarios in (["SingleStream"], ["SingleStream", "Offline"]):
                per = len(targets) * len(batches) * len(scenarios)
                if jobs % per == 0 and jobs // per <= 100:
                    path = self.tmp / f"{name}.yaml"
                    precision = "fp32" if targets == ["cpu"] else "int8"
                    path.write_text(
                        f"name: {name}\nmodels:\n{model}"
                        f"precisions: [{precision}]\ntargets: [{', '.join(targets)}]\n"
                        f"batch_sizes: {batches}\nscenarios: [{', '.join(scenarios)}]\n"
                        f"repeats: {repeats or jobs // per}\nquantization: {{calibration_samples: 8}}\n"
                        f"loadgen: {{min_duration_ms: {self.args.min_duration_ms}, min_query_count: 16}}\n"
                    )
                    return path
        raise SystemExit(f"cannot make exactly {jobs} jobs over {len(targets)} targets")

    def submit(self, path: Path) -> str:
        out = self.farm("submit", "--no-wait", str(path))
        return out.split("submitted sweep ")[1].split()[0]

    # -------------------------------------------------------------- tear-down
    def __exit__(self, *exc: object) -> None:
        if self.fleet is not None and self.fleet.poll() is None:
            self.fleet.send_signal(signal.SIGTERM)
            try:
                self.fleet.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.fleet.kill()
        leftovers = processes_mentioning(str(self.tmp)) + processes_mentioning(
            f"redis://127.0.0.1:{self.redis_port}"
        )
        for pid in leftovers:  # board-side processes left behind: stopped agents, their sessions
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if self.plain is not None:
            self.plain.stop_all()
        else:
            subprocess.run([*FARM, "lab", "down"], env=self.env, capture_output=True, timeout=300)
        if self.redis is not None:
            self.redis.kill()
        if not self.args.db and not self.args.keep:
            with contextlib.suppress(Exception):  # tearing down: the run's figures are already printed
                self._drop_db()
        if self.args.keep:
            print(f"kept {self.tmp} and {self.db_url}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------- state


def db_query(sql: str, **params: Any) -> list[tuple]:
    from sqlalchemy import text

    from farm.db.session import session_scope

    with session_scope(os.environ["FARM_DB_URL"]) as s:
        return [tuple(r) for r in s.execute(text(sql), params)]


def job_state(job_id: int) -> str:
    rows = db_query("SELECT state FROM jobs WHERE id = :j", j=job_id)
    return rows[0][0] if rows else "missing"


def board_row(name: str) -> tuple[str, str, str | None]:
    state, reason, worker = db_query(
        "SELECT state, state_reason, worker FROM boards WHERE name = :n", n=name
    )[0]
    return state, reason or "", worker


def running_run_jobs() -> list[tuple[int, str, str]]:
    return db_query(
        "SELECT id, board_name, lease_owner FROM jobs WHERE kind = 'run' AND state = 'running' "
        "AND lease_owner IS NOT NULL ORDER BY id"
    )


def lab_boards() -> dict[str, dict]:
    from farm.config import load_settings
    from farm.lab.labfile import read_lab_state

    return {b["name"]: b for b in read_lab_state(load_settings()).get("boards", [])}


# ------------------------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """One injected fault and its recovery predicates, in order: ``checks`` [(name, predicate)] are timed
    from the injection; the first is "the farm has put it right by itself" (the headline), later ones
    say when the affected work ended."""

    kind: str
    at_progress: float
    injected_s: float | None = None
    target: str = ""
    detail: str = ""
    checks: list[tuple[str, Callable[[], bool]]] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)
    after: list[tuple[float, Callable[[], None]]] = field(default_factory=list)  # (t, action) to do later
    skipped: str = ""

    @property
    def recovered(self) -> bool:
        return self.injected_s is not None and not self.after and len(self.times) == len(self.checks)


class Chaos:
    def __init__(self, farm: ChaosFarm, seed: int, sweep_id: str) -> None:
        self.farm = farm
        self.rng = random.Random(seed)
        self.sweep_id = sweep_id
        self.t0 = time.monotonic()
        self.second_sweep: str | None = None
        self.hit_boards: set[str] = set()
        self.watch_boards: dict[str, str] = {}  # board -> what happened to it
        kinds = list(FAULTS)
        self.rng.shuffle(kinds)
        points = [0.08 + i * (0.72 / (len(kinds) - 1)) for i in range(len(kinds))]
        self.faults = [
            Fault(k, round(p + self.rng.uniform(-0.015, 0.015), 3))
            for k, p in zip(kinds, points, strict=True)
        ]
        redis = next(f for f in self.faults if f.kind == "redis-old-save")
        self.snapshot_at = max(0.02, redis.at_progress - 0.06)
        self.snapshot_taken = False
        self._live: set[str] | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0

    def live(self) -> set[str]:
        """The broker's live message ids (once per tick)."""
        if self._live is None:
            from farm.broker import farm_messages
            from farm.config import load_settings

            self._live = farm_messages(load_settings()) or set()
        return self._live

    def tick(self, progress: float) -> None:
        self._live = None
        for f in self.faults:
            for t, action in list(f.after):
                if self.now() >= t:
                    f.after.remove((t, action))
                    action()
            if f.injected_s is None:
                continue
            for name, check in f.checks:
                if name in f.times:
                    continue
                try:
                    ok = check()
                except Exception:  # the broker is down this second, say
                    ok = False
                if not ok:
                    continue  # each predicate is timed on its own
                f.times[name] = round(self.now() - f.injected_s, 1)
                log(f"{f.kind} ({f.target}): {name} after {f.times[name]} s")
        if not self.snapshot_taken and progress >= self.snapshot_at:
            import redis

            redis.Redis(port=self.farm.redis_port).save()
            shutil.copy(self.farm.tmp / "redis" / "dump.rdb", self.farm.tmp / "redis" / "older.rdb")
            self.snapshot_taken = True
            log(f"redis: saved at progress {progress:.2f} (the older save)")
        lab_busy = any(f.after for f in self.faults)  # an sshd is down: `farm lab up` would restart it early
        for f in self.faults:
            if f.injected_s is None and not f.skipped and progress >= f.at_progress:
                if f.kind == "host-key" and lab_busy:
                    continue
                self.inject(f)

    def settled(self) -> bool:
        """Every fault injected (or skipped) and recovered, with nothing left to do for it."""
        return all(f.skipped or f.recovered for f in self.faults)

    def inject(self, f: Fault) -> None:
        try:
            getattr(self, "_" + f.kind.replace("-", "_"))(f)
        except NoTarget as exc:
            f.skipped = str(exc)
            log(f"{f.kind}: skipped ({exc})")
            return
        f.injected_s = self.now()
        log(f"FAULT {f.kind}: {f.target} {f.detail}")

    def _pick_running(self) -> tuple[int, str, str]:
        jobs = [j for j in running_run_jobs() if j[1] not in self.hit_boards]
        if not jobs:
            raise NoTarget("no run job is running")
        return self.rng.choice(jobs)

    def _back(self, job_id: int, old_owner: str | None) -> Callable[[], bool]:
        """The job is in the farm's hands again: ended, running under a new lease, or queued with a live
        message (so it will run with nobody's help)."""

        def check() -> bool:
            state, owner, message = db_query(
                "SELECT state, lease_owner, message_id FROM jobs WHERE id = :j", j=job_id
            )[0]
            if state in ("done", "failed", "cancelled"):
                return True
            if state == "running":
                return owner != old_owner
            return state == "queued" and message is not None and message in self.live()

        return check

    def _ended(self, job_id: int) -> Callable[[], bool]:
        return lambda: job_state(job_id) in ("done", "failed")

    def _job_checks(self, job_id: int, owner: str | None) -> list[tuple[str, Callable[[], bool]]]:
        return [("job back in the queue", self._back(job_id, owner)), ("job ended", self._ended(job_id))]

    def _kill_job(self, f: Fault) -> None:
        job_id, board, owner = self._pick_running()
        pid = int(owner.split(":")[-2])
        os.kill(pid, signal.SIGKILL)
        f.target, f.detail = f"job {job_id} on {board}", f"(pid {pid}, the lease's owner)"
        f.checks = self._job_checks(job_id, owner)

    def _kill_worker(self, f: Fault) -> None:
        job_id, board, owner = self._pick_running()
        fleet = self.farm.fleet.pid
        mains = [p for p in all_pids() if ppid(p) == fleet and _serves(cmdline(p), board)]
        if not mains:
            raise NoTarget(f"no worker process found for {board}")
        os.kill(mains[0], signal.SIGKILL)
        self.hit_boards.add(board)
        f.target, f.detail = f"worker of {board} (job {job_id})", f"(main pid {mains[0]})"
        back = self._back(job_id, owner)
        f.checks = [
            ("job back in the queue", back),
            (
                "worker back",
                lambda: _has_new_main(fleet, board, mains[0]) and board_row(board)[2] is not None,
            ),
            ("job ended", self._ended(job_id)),
        ]

    def _redis_old_save(self, f: Fault) -> None:
        if not self.snapshot_taken:
            raise NoTarget("no older save")
        tmp = self.farm.tmp / "redis"
        self.farm.redis.kill()
        self.farm.redis.wait()
        shutil.copy(tmp / "older.rdb", tmp / "dump.rdb")
        self.farm.start_redis()
        f.target, f.detail = "redis-server", "(kill -9, restarted from the older save)"
        last_end = db_query("SELECT max(finished_at) FROM jobs")[0][0]

        def republished() -> bool:
            from farm.reconciler import reconcile

            found = reconcile(os.environ["FARM_DB_URL"], act=False, live_messages=self.live()).findings
            return not [x for x in found if x.action == "publish it"]

        f.checks = [
            ("every queued job has a live message again", republished),
            (
                "jobs end again",
                lambda: db_query("SELECT count(*) FROM jobs WHERE finished_at > :t", t=last_end)[0][0] > 0,
            ),
        ]

    def _sshd_down(self, f: Fault) -> None:
        job_id, board, owner = self._pick_running()
        info = lab_boards()[board]
        killed = _kill_tree(info["sshd_pid"])
        self.hit_boards.add(board)
        self.watch_boards[board] = "sshd killed for a minute"
        f.target, f.detail = (
            f"{board} (job {job_id})",
            f"(sshd and {killed - 1} session processes; back after {SSHD_DOWN_S:.0f} s)",
        )

        def restart() -> None:
            self.farm.farm("lab", "up")
            self.farm.renice_lab()
            log(f"{board}: sshd restarted")

        f.after.append((self.now() + SSHD_DOWN_S, restart))
        f.checks = [
            *self._job_checks(job_id, owner),
            ("board back in service", lambda: board_row(board)[0] in ("idle", "running")),
        ]

    def _sigstop_agent(self, f: Fault) -> None:
        """SIGSTOP the agent (not its board-side guard) of a board that is running a job: the job hangs."""
        boards = lab_boards()
        running = running_run_jobs()
        for job_id, board, _ in self.rng.sample(running, k=len(running)):
            if board in self.hit_boards or board not in boards:
                continue
            work = boards[board]["work_dir"]
            agents = [
                p
                for p in all_pids()
                if (argv := cmdline(p))
                and any(a.endswith("farm_agent.py") for a in argv)
                and not any("guard" in a for a in argv)
                and work in " ".join(argv)
            ]
            if agents:
                for p in agents:
                    os.kill(p, signal.SIGSTOP)
                self.hit_boards.add(board)
                self.watch_boards[board] = "agent SIGSTOPped"
                f.target, f.detail = (
                    f"agent on {board} (job {job_id})",
                    f"(SIGSTOP to pid {', '.join(map(str, agents))})",
                )
                f.checks = self._stopped_checks(agents, board)
                return
        raise NoTarget("no agent process found on a running board")

    def _stopped_checks(self, agents: list[int], board: str) -> list[tuple[str, Callable[[], bool]]]:
        from farm.db.models import utcnow

        since = utcnow()

        def ran_since() -> bool:
            rows = db_query(
                "SELECT count(*) FROM jobs WHERE board_name = :b AND state = 'done' AND started_at > :t",
                b=board,
                t=since,
            )
            return rows[0][0] > 0

        return [
            ("the stopped agent killed", lambda: not any(pid_alive(p) for p in agents)),
            ("the board ran a job since", ran_since),
        ]

    def _submitter_killed(self, f: Fault) -> None:
        path = self.farm.sweep_file(len(self.farm.targets) * 8, "second")
        code = (
            "import os\nfrom farm.config import load_settings\nfrom farm.inventory import load_inventory\n"
            "from farm.services.sweeps import create_sweep\nfrom farm.sweep.load import load_sweep\n"
            "s = load_settings(); inv = load_inventory(s.inventory_dir)\n"
            f"sid, _ = create_sweep(s.db_url, load_sweep({str(path)!r}, inv), inv)\n"
            "print(sid, flush=True)\nos.kill(os.getpid(), 9)  # as `farm submit` dying before it publishes\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=self.farm.env,
            capture_output=True,
            text=True,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        if out.returncode != -signal.SIGKILL or not out.stdout.strip():
            raise SystemExit(f"the submitter did not die as planned: {out.returncode} {out.stderr[-2000:]}")
        sid = self.second_sweep = out.stdout.split()[0]
        f.target, f.detail = (
            f"sweep {sid[:8]}",
            f"({len(self.farm.targets) * 8} jobs written, nothing published, submitter kill -9)",
        )

        def published() -> bool:
            rows = db_query(
                "SELECT state, message_id FROM jobs WHERE sweep_id = :s AND kind = 'compile'", s=sid
            )
            return all(state != "queued" or (m is not None and m in self.live()) for state, m in rows)

        f.checks = [
            ("its jobs published (by the reconciler)", published),
            (
                "that sweep finished",
                lambda: db_query("SELECT state FROM sweeps WHERE id = :s", s=sid)[0][0] != "running",
            ),
        ]

    def _host_key(self, f: Fault) -> None:
        job_id, board, owner = self._pick_running()
        info = lab_boards()[board]
        sshd_dir = Path(info["sshd_dir"])
        pinned = (sshd_dir / "known_hosts").read_text()
        _kill_tree(info["sshd_pid"])
        for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
            (sshd_dir / name).unlink()
        self.farm.farm("lab", "up")  # a new host key on the same port (the board was reinstalled)
        self.farm.renice_lab()
        (sshd_dir / "known_hosts").write_text(pinned)  # ...and the farm still pins the old one
        self.hit_boards.add(board)
        self.watch_boards[board] = "host key changed"
        f.target, f.detail = f"{board} (job {job_id})", "(new host key; known_hosts still pins the old)"
        f.checks = [
            *self._job_checks(job_id, owner),
            (
                "board bad, reason names the host key",
                lambda: board_row(board)[0] == "bad" and "host key" in board_row(board)[1].lower(),
            ),
        ]


class NoTarget(Exception):
    pass


def _serves(argv: list[str], board: str) -> bool:
    if "worker" not in argv:
        return False
    for i, a in enumerate(argv):
        if a == "--board" and i + 1 < len(argv) and board in argv[i + 1].split(","):
            return True
    return False


def _has_new_main(fleet: int, board: str, old: int) -> bool:
    return any(p != old and ppid(p) == fleet and _serves(cmdline(p), board) for p in all_pids())


def _kill_tree(pid: int | None) -> int:
    if not pid or not pid_alive(pid):
        return 0
    pids = [pid, *descendants(pid)]
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    return len(pids)


# ------------------------------------------------------------------------------------------- figures


def progress(sweep_id: str) -> tuple[int, int]:
    rows = db_query(
        "SELECT state, count(*) FROM jobs WHERE sweep_id = :s AND kind = 'run' GROUP BY state", s=sweep_id
    )
    counts = dict(rows)
    return counts.get("done", 0) + counts.get("failed", 0), sum(counts.values())


def audit(sweep_ids: list[str]) -> dict[str, Any]:
    """Every run job: stored once, failed with a reason, or lost/stuck; runs per job."""
    out: dict[str, Any] = {"jobs": 0, "stored_once": 0, "failed_with_reason": 0, "failed_without_reason": 0,
                           "lost": 0, "stuck": 0, "duplicated": 0, "attempts": 0, "reasons": {}}  # fmt: skip
    for sid in sweep_ids:
        rows = db_query(
            "SELECT j.id, j.state, j.error, j.attempts, (SELECT count(*) FROM runs r WHERE r.job_id = j.id) "
            "FROM jobs j WHERE j.sweep_id = :s AND j.kind = 'run'",
            s=sid,
        )
        for _, state, error, attempts, runs in rows:
            out["jobs"] += 1
            out["attempts"] += attempts or 0
            if runs > 1:
                out["duplicated"] += 1
            if state == "done" and runs == 1:
                out["stored_once"] += 1
            elif state == "done" and runs == 0:
                out["lost"] += 1  # said done, nothing stored
            elif state == "failed":
                if error:
                    out["failed_with_reason"] += 1
                    why = error.split(":")[0][:80]
                    out["reasons"][why] = out["reasons"].get(why, 0) + 1
                else:
                    out["failed_without_reason"] += 1
            else:
                out["stuck"] += 1
    return out


def utilisation(sweep_id: str, boards: int) -> tuple[float, float, float]:
    """(utilisation, makespan_s, mean job s) over the sweep's done run jobs."""
    rows = db_query(
        "SELECT started_at, finished_at FROM jobs WHERE sweep_id = :s AND kind = 'run' AND state = 'done'",
        s=sweep_id,
    )
    start = min(a for a, _ in rows)
    end = max(b for _, b in rows)
    makespan = (end - start).total_seconds()
    busy = sum((b - a).total_seconds() for a, b in rows)
    return busy / (boards * makespan), makespan, busy / len(rows)


def farm_memory(farm: ChaosFarm) -> dict[str, float]:
    """PSS (MB) of the coordinator (fleet up and its workers), the broker, and the lab (sshd, agents,
    board simulators). PostgreSQL is a shared server and is left out."""
    fleet = [farm.fleet.pid, *descendants(farm.fleet.pid)] if farm.fleet else []
    lab = []
    for p in lab_processes(farm.tmp, "sshd", "boardsim", "farm_agent"):
        if p not in fleet:
            lab += [p, *descendants(p)]
    return {
        "coordinator": pss_mb(fleet),
        "broker": pss_mb([farm.redis.pid]) if farm.redis else 0.0,
        "lab": pss_mb(sorted(set(lab))),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--boards", type=int, default=20)
    p.add_argument("--types", default=",".join(TYPES), help="board types of the virtual lab, round robin")
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min-duration-ms", type=int, default=100)
    p.add_argument("--time-scale", type=float, default=0.01)
    p.add_argument("--boards-per-worker", type=int, default=1)
    p.add_argument("--no-faults", action="store_true")
    p.add_argument(
        "--plain-boards", action="store_true", help="plain sshd CPU boards instead of the virtual lab"
    )
    p.add_argument("--plain-type", default="cpu", help="the plain boards' type (cpu: ONNX Runtime, measured)")
    p.add_argument("--model", default="tiny", help="tiny (an ONNX file), or a zoo model such as mobilenet_v2")
    p.add_argument(
        "--warm-up", action="store_true", help="compile every artifact with a 1-repeat sweep first"
    )
    p.add_argument("--timeout-s", type=float, default=5400)
    p.add_argument("--db", default=None, help="results DB URL (default: a new PostgreSQL database)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (logs) and the database")
    args = p.parse_args()
    mode = "no faults" if args.no_faults else f"faults seed {args.seed}"
    print(
        f"# chaos benchmark {date.today()} on {platform.node()} ({os.cpu_count()} cores): {args.boards} "
        f"{f'plain sshd {args.plain_type}' if args.plain_boards else 'virtual-lab sshd'} boards, {args.boards_per_worker} per "
        f"worker, {args.jobs} jobs, {mode}",
        flush=True,
    )
    with ChaosFarm(args) as farm:
        t = time.monotonic()
        farm.fleet_up()
        log(
            f"fleet up: {len(farm.targets)} target type(s), all boards healthy after {time.monotonic() - t:.0f} s"
        )
        if args.warm_up:  # compile every artifact first: the figures are the boards' steady state
            warm = farm.submit(farm.sweep_file(args.jobs, "warm-up", repeats=1))
            while db_query("SELECT state FROM sweeps WHERE id = :s", s=warm)[0][0] == "running":
                time.sleep(2)
            log(f"warm-up sweep {warm[:8]} ended: the artifacts are compiled and cached")
        cpu0 = tree_cpu_s(farm.fleet.pid)
        t = time.monotonic()
        sweep_id = farm.submit(farm.sweep_file(args.jobs, "chaos"))
        log(f"submitted sweep {sweep_id}")
        chaos = None if args.no_faults else Chaos(farm, args.seed, sweep_id)
        peak = {"coordinator": 0.0, "broker": 0.0, "lab": 0.0, "total": 0.0}
        deadline = time.monotonic() + args.timeout_s
        last_mem = last_log = 0.0
        sweep_end: float | None = None
        cpu_end = 0.0
        while time.monotonic() < deadline:
            ended, total = progress(sweep_id)
            if chaos is not None:
                chaos.tick(ended / max(1, total))
            if time.monotonic() - last_mem > 10:
                last_mem = time.monotonic()
                mem = farm_memory(farm)
                mem["total"] = sum(mem.values())
                peak = {k: max(peak[k], mem[k]) for k in peak}
            if time.monotonic() - last_log > 60:
                last_log = time.monotonic()
                log(f"progress {ended}/{total}")
            sweeps = [sweep_id] + ([chaos.second_sweep] if chaos and chaos.second_sweep else [])
            states = [db_query("SELECT state FROM sweeps WHERE id = :s", s=s)[0][0] for s in sweeps]
            if all(s != "running" for s in states) and sweep_end is None:
                sweep_end, cpu_end = time.monotonic(), tree_cpu_s(farm.fleet.pid)
                log("every sweep has ended")
                for f in chaos.faults if chaos else []:
                    if f.injected_s is None and not f.skipped:
                        f.skipped = "the sweep ended first"
            if sweep_end is not None and (chaos is None or chaos.settled()):
                break
            time.sleep(1)
        if sweep_end is None:
            sweep_end, cpu_end = time.monotonic(), tree_cpu_s(farm.fleet.pid)
        wall = sweep_end - t
        cpu = cpu_end - cpu0
        sweeps = [sweep_id] + ([chaos.second_sweep] if chaos and chaos.second_sweep else [])
        states = {s[:8]: db_query("SELECT state FROM sweeps WHERE id = :s", s=s)[0][0] for s in sweeps}
        result = audit(sweeps)
        util, makespan, mean_job = utilisation(sweep_id, args.boards)
        print(f"\nsweeps: {states} (no operator command run); wall {wall:.0f} s")
        if chaos is not None:
            print(
                "\n| fault | at progress (time) | target | recovered: the farm put it right; then the work ended |"
            )
            print("| --- | --- | --- | --- |")
            for f in sorted(chaos.faults, key=lambda f: f.injected_s if f.injected_s is not None else 1e9):
                at = f"{f.injected_s:.0f} s" if f.injected_s is not None else "-"
                steps = f.skipped or "; ".join(
                    f"{name}: " + (f"{f.times[name]} s" if name in f.times else "NOT YET")
                    for name, _ in f.checks
                )
                print(f"| {f.kind} | {f.at_progress:.2f} ({at}) | {f.target} {f.detail} | {steps} |")
            for board, what in chaos.watch_boards.items():
                state, reason, _ = board_row(board)
                print(f"{board} ({what}): now {state}: {reason[:160]}")
        print(f"\njobs: {json.dumps(result)}")
        print(
            f"utilisation {util:.3f} (makespan {makespan:.0f} s, mean job {mean_job:.2f} s over {args.boards} boards)"
        )
        print(f"coordinator CPU: {cpu:.0f} s in all, {1000 * cpu / max(1, result['jobs']):.0f} ms per job")
        print("peak PSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()))
        ok = result["jobs"] and not (
            result["lost"] or result["stuck"] or result["duplicated"] or result["failed_without_reason"]
        )
        ok = ok and all(s != "running" for s in states.values())
        if chaos is not None:
            ok = ok and all(f.recovered or f.skipped for f in chaos.faults)
        print("VERDICT:", "PASS" if ok else "FAIL")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
