"""Shared fixtures: an isolated farm (data dir, SQLite), PostgreSQL databases, a real redis-server, tiny models."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import onnx
import pytest
from onnx import TensorProto, helper

from farm.config import Settings, load_settings
from farm.db.migrate import ensure_schema
from farm.db.session import dispose_engines
from farm.zoo.tiny import tiny_model  # one implementation, shared with bench/ and .ci/wheel-check

T = TypeVar("T")

pytest_plugins = [
    "tests.sshd",
    "tests.virtual_lab",
    "tests.farm.notify.http_server",
]  # sshd hosts, the lab, a webhook server

PG_ADMIN_URL = os.environ.get("FARM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _own_quant_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets an empty INT8 quantisation cache: nothing leaks between tests or into the user's."""
    monkeypatch.setenv("FARM_QUANT_CACHE", str(tmp_path_factory.mktemp("quant-cache")))


@pytest.fixture
def farm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """An isolated embedded farm: its own data dir and SQLite DB, no broker (tasks run in-process)."""
    monkeypatch.setenv("FARM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FARM_DB_URL", f"sqlite:///{tmp_path / 'data' / 'farm.db'}")
    monkeypatch.delenv("FARM_BROKER_URL", raising=False)
    monkeypatch.delenv("FARM_ARTIFACT_DIR", raising=False)
    from farm.celery_app import app, configure

    configure(app)
    settings = load_settings()
    ensure_schema(settings.db_url)  # through Alembic, as everywhere
    yield settings
    dispose_engines()


def _pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (CI must provide it)")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"farm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server of our own on a free loopback port (the suite never touches the shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (make test installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def unknown_op_model() -> onnx.ModelProto:
    """A well-formed ONNX model whose only op comes from a domain no runtime knows (a model error)."""
    node = helper.make_node("Frobnicate", ["input"], ["output"], domain="com.example.nowhere")
    graph = helper.make_graph(
        [node],
        "weird",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 16, 16])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.nowhere", 1)]
    )
    model.ir_version = 8
    return model


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(batch="N"), path)
    return path


@pytest.fixture
def tiny_path(tmp_path: Path) -> Path:
    """The tiny model at batch 1 (what a compile runner is given)."""
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(batch=1), path)
    return path


@pytest.fixture
def close_after() -> Iterator[Callable[[T], T]]:
    """``close_after(thing)`` returns ``thing`` and closes it when the test ends (runners, SSH hosts)."""
    opened: list = []

    def keep(thing: T) -> T:
        opened.append(thing)
        return thing

    yield keep
    for thing in opened:
        thing.close()


def write_sweep(directory: Path, body: str, name: str = "sweep.yaml") -> Path:
    path = directory / name
    path.write_text(body)
    return path


#: The quickest CPU sweep (one fp32 SingleStream run of the tiny model): a format template ({onnx}).
QUICK_CPU_SWEEP = """\
name: tiny
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32]
targets: [cpu]
scenarios: [SingleStream]
loadgen: {{min_duration_ms: 100, min_query_count: 16}}
"""


def stop_group(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    """Stop a process started with start_new_session=True, and everything it started: SIGTERM to its
    group, SIGKILL after ``timeout_s``."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


TINY_SWEEP = """\
name: tiny
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32, int8]
targets: [cpu]
batch_sizes: [1]
scenarios: [SingleStream, Offline]
quantization:
  calibration_samples: 100
loadgen:
  min_duration_ms: 200
  min_query_count: 32
"""
