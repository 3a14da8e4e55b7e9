"""SshTransport against real sshd servers: agent runs, uploads, host keys, failures, hangs."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from farm.artifacts import sha256_file
from farm.errors import FarmError, InfraError
from farm.transport.hostkeys import HostKeyError
from farm.transport.hostside import GUARD, HOSTSIDE_DIR
from farm.transport.ssh import SshTransport, agent_hash
from farm.workers.agent import AGENT_DIR
from tests.farm.transport.conftest import BOARD_PYTHON, HANG_AGENT, write_agent


def _pgrep(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return out.split()


def _wait_gone(marker: str, within_s: float = 2.0) -> list[str]:
    deadline = time.monotonic() + within_s
    while (pids := _pgrep(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


# ---------------------------------------------------------------- agent runs


def test_run_agent_sends_config_on_stdin_and_returns_json(sshd_host, make_transport, echo_agent):
    transport = make_transport(sshd_host)
    config = {"artifact": "/x/model.onnx", "scenario": "Offline", "text": "ünïcode 'quoted' $(x)"}

    outcome = transport.run_agent(config, timeout_s=30)

    assert outcome.returncode == 0, outcome.stderr
    doc = json.loads(outcome.stdout)
    assert doc["config"] == config
    assert doc["argv"] == ["--config", "-"]
    # The agent runs in its own process group (pgid == its parent guard's pid), so it can be killed as one.
    assert doc["pgid"] != doc["pid"]
    digest = agent_hash(echo_agent)
    remote = sshd_host.work_dir / "agent" / digest
    assert transport.ensure_agent() == str(remote / "farm_agent.py")
    assert (remote / ".complete").read_text().strip() == digest
    assert (remote / "backends" / "helper.py").read_text() == "X = 1\n"
    assert not (remote / "__pycache__").exists()
    assert list((sshd_host.work_dir / "run").iterdir()) == []  # pid file removed when the agent ended


def test_run_agent_passes_exit_code_and_stderr(sshd_host, make_transport):
    transport = make_transport(sshd_host)
    outcome = transport.run_agent({"exit": 2, "stderr": "model is corrupt\n"}, timeout_s=30)
    assert (outcome.returncode, outcome.stdout, outcome.stderr) == (2, "", "model is corrupt\n")


def test_large_config_goes_through_stdin_quickly(sshd_host, make_transport):
    transport = make_transport(sshd_host)
    config = {"samples": ["x" * 100] * 2000}  # ~200 KB: invoke would send 1 byte per 10 ms poll
    started = time.monotonic()
    outcome = transport.run_agent(config, timeout_s=30)
    assert json.loads(outcome.stdout)["config"] == config
    assert time.monotonic() - started < 10


def test_agent_upload_is_skipped_when_the_board_has_it(sshd_host, make_transport, tmp_path):
    first = make_transport(sshd_host)
    first.ensure_agent()
    assert first.agent_bytes_uploaded > 0 and first.agent_uploads_skipped == 0

    second = make_transport(sshd_host)  # a new connection: must look at the board, not a cache
    script = second.ensure_agent()
    assert (second.agent_bytes_uploaded, second.agent_uploads_skipped) == (0, 1)
    assert script == first.ensure_agent()

    changed = make_transport(sshd_host, agent_dir=write_agent(tmp_path / "v2", main="print('{}')\n"))
    assert changed.ensure_agent() != script
    assert changed.agent_bytes_uploaded > 0


def test_connection_is_reused_across_calls(sshd_host, make_transport):
    transport = make_transport(sshd_host)
    transport.run_agent({"n": 1}, timeout_s=30)
    first = transport.paramiko_transport
    transport.run_agent({"n": 2}, timeout_s=30)
    assert transport.exec(["true"]) == (0, "", "")
    assert transport.paramiko_transport is first and first.is_active()
    assert transport.connects == 1


# ---------------------------------------------------------------- artifacts


def _artifact(tmp_path: Path, size: int = 300_000) -> tuple[str, Path]:
    path = tmp_path / "model.onnx"
    path.write_bytes(bytes(range(256)) * (size // 256) + b"tail")
    return uuid.uuid4().hex * 2, path


def test_artifact_uploaded_once_then_skipped(sshd_host, make_transport, tmp_path):
    key, local = _artifact(tmp_path)
    transport = make_transport(sshd_host)

    remote = transport.artifact_path(key, local)

    assert remote == f"{sshd_host.work_dir}/artifacts/{key}/model.onnx"
    assert Path(remote).read_bytes() == local.read_bytes()
    assert (transport.bytes_uploaded, transport.uploads_skipped) == (local.stat().st_size, 0)
    assert transport.artifact_path(key, local) == remote
    assert (transport.bytes_uploaded, transport.uploads_skipped) == (local.stat().st_size, 1)
    # Another worker's transport (new connection) skips it too: the check is on the board.
    other = make_transport(sshd_host)
    assert other.artifact_path(key, local) == remote
    assert (other.bytes_uploaded, other.uploads_skipped) == (0, 1)
    assert [p.name for p in Path(remote).parent.iterdir()] == ["model.onnx"]  # no temp files left


def test_artifact_damaged_on_the_board_is_uploaded_again(sshd_host, make_transport, tmp_path):
    key, local = _artifact(tmp_path)
    transport = make_transport(sshd_host)
    remote = Path(transport.artifact_path(key, local))
    data = bytearray(remote.read_bytes())
    data[1000] ^= 0xFF  # same size, different bytes
    remote.write_bytes(bytes(data))
    # Checked once per connection (the agent verifies the sha256 itself before loading); a caller that saw
    # a mismatch invalidates the key, and the next request checks the board again and re-uploads.
    transport.invalidate(key)

    assert transport.artifact_path(key, local) == str(remote)

    assert remote.read_bytes() == local.read_bytes()
    assert transport.bytes_uploaded == 2 * local.stat().st_size
    assert transport.uploads_skipped == 0


def test_corrupt_upload_is_detected_and_not_installed(sshd_host, make_transport, tmp_path, monkeypatch):
    key, local = _artifact(tmp_path)
    transport = make_transport(sshd_host)
    real_remote_sha = SshTransport._remote_sha256
    corrupted = []

    def flip_then_hash(self, path):
        if path.endswith(".tmp"):  # the uploaded temp file, before it is verified: corrupt it "in transit"
            with open(path, "r+b") as fh:
                fh.seek(10)
                byte = fh.read(1)
                fh.seek(10)
                fh.write(bytes([byte[0] ^ 0x01]))
            corrupted.append(path)
        return real_remote_sha(self, path)

    monkeypatch.setattr(SshTransport, "_remote_sha256", flip_then_hash)

    with pytest.raises(InfraError, match="corrupt upload"):
        transport.artifact_path(key, local)

    assert corrupted
    final_dir = sshd_host.work_dir / "artifacts" / key
    assert list(final_dir.iterdir()) == []  # neither the bad temp file nor a model.onnx
    monkeypatch.setattr(SshTransport, "_remote_sha256", real_remote_sha)
    assert Path(transport.artifact_path(key, local)).read_bytes() == local.read_bytes()


def test_artifact_key_is_validated_before_anything_is_sent(sshd_host, make_transport, tmp_path):
    _, local = _artifact(tmp_path, size=1000)
    transport = make_transport(sshd_host)
    with pytest.raises(FarmError, match="sha256"):
        transport.artifact_path("../../etc", local)
    unsafe = tmp_path / "x;reboot.npz"
    unsafe.write_bytes(b"x")
    with pytest.raises(FarmError, match="invalid name"):
        transport.artifact_path(sha256_file(unsafe), unsafe)
    assert transport.connects == 0


def test_a_pack_keeps_its_own_file_name_on_the_board(sshd_host, make_transport, tmp_path):
    """Dataset and reference packs land as what they are (dataset.npz), not as model.onnx."""
    pack = tmp_path / "dataset.npz"
    pack.write_bytes(b"PK" + bytes(1000))
    remote = make_transport(sshd_host).artifact_path(sha256_file(pack), pack)
    assert remote == f"{sshd_host.work_dir}/artifacts/{sha256_file(pack)}/dataset.npz"
    assert Path(remote).read_bytes() == pack.read_bytes()


# ---------------------------------------------------------------- host keys


def test_unknown_host_key_is_rejected_and_never_added(sshd_host, make_transport, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    transport = make_transport(sshd_host, known_hosts=empty, name="fpga-7")

    with pytest.raises(HostKeyError, match="farm fleet trust fpga-7") as info:
        transport.exec(["true"])

    assert isinstance(info.value, InfraError)  # a fault of this board: it goes bad, the job moves on
    assert "the board offers ssh-ed25519 SHA256:" in str(info.value)
    assert empty.read_text() == ""
    missing = make_transport(sshd_host, known_hosts=tmp_path / "nope")
    with pytest.raises(HostKeyError, match="does not exist"):
        missing.exec(["true"])
    assert not (tmp_path / "nope").exists()


def test_mismatched_host_key_is_rejected(sshd_factory, make_transport, tmp_path):
    board, impostor = sshd_factory.start(2)
    # known_hosts pins the impostor's key under the board's name: the board's real key must not match.
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{board.host}]:{board.port} {impostor.host_key_line}\n")
    before = wrong.read_text()
    transport = make_transport(board, known_hosts=wrong, name="fpga-1")

    with pytest.raises(HostKeyError, match="MISMATCH") as info:
        transport.run_agent({}, timeout_s=10)

    assert "farm fleet trust fpga-1" in str(info.value)
    assert wrong.read_text() == before
    assert not (board.work_dir / "agent").exists()  # nothing was uploaded


def test_malformed_known_hosts_is_a_host_key_error(sshd_host, make_transport, tmp_path):
    bad = tmp_path / "known_hosts"
    bad.write_text(f"[{sshd_host.host}]:{sshd_host.port} ssh-ed25519 not*base64\n")
    with pytest.raises(HostKeyError, match="malformed line"):
        make_transport(sshd_host, known_hosts=bad).exec(["true"])


def test_user_known_hosts_is_not_consulted(sshd_host, make_transport, tmp_path, monkeypatch):
    # Even if ~/.ssh/known_hosts trusted the board, an empty farm known_hosts must still refuse it.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(sshd_host.known_hosts.read_text())
    monkeypatch.setenv("HOME", str(home))
    empty = tmp_path / "farm_known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError):
        make_transport(sshd_host, known_hosts=empty).exec(["true"])


# ---------------------------------------------------------------- failures


def test_wrong_client_key_is_an_infra_error(sshd_host, make_transport, tmp_path):
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    transport = make_transport(sshd_host, key_file=other_key)
    with pytest.raises(InfraError, match="authentication"):
        transport.exec(["true"])


def test_killed_sshd_is_an_infra_error(sshd_host, make_transport):
    transport = make_transport(sshd_host)
    assert transport.exec(["echo", "up"])[1] == "up\n"
    sshd_host.stop()

    started = time.monotonic()
    with pytest.raises(InfraError, match="cannot connect|connection lost|refused"):
        transport.exec(["true"])
    with pytest.raises(InfraError):
        make_transport(sshd_host).run_agent({}, timeout_s=10)
    assert time.monotonic() - started < 10


def test_restarted_sshd_reconnects_transparently(sshd_host, make_transport):
    transport = make_transport(sshd_host)
    assert transport.run_agent({"n": 1}, timeout_s=30).returncode == 0
    old = transport.paramiko_transport
    sshd_host.stop()
    sshd_host.start()

    outcome = transport.run_agent({"n": 2}, timeout_s=30)

    assert json.loads(outcome.stdout)["config"] == {"n": 2}
    assert transport.connects == 2
    assert transport.paramiko_transport is not old and not old.is_active()


def test_hung_agent_is_killed_with_its_children(sshd_host, make_transport, tmp_path):
    marker = f"farm-hang-{uuid.uuid4().hex}"
    transport = make_transport(sshd_host, agent_dir=write_agent(tmp_path / "hang", main=HANG_AGENT))
    transport.ensure_agent()

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(transport.run_agent, {"marker": marker}, 1.5)
        while not _pgrep(marker) and not run.done():
            time.sleep(0.05)
        assert _pgrep(marker), "the fake agent's child never started"
        with pytest.raises(InfraError, match="agent hung.*killed its process group"):
            run.result(timeout=30)
    elapsed = time.monotonic() - started

    assert 1.5 <= elapsed < 6
    assert _wait_gone(marker) == []  # the agent's child (same process group) is gone too
    assert _wait_gone(str(sshd_host.work_dir / "agent")) == []
    assert list((sshd_host.work_dir / "run").iterdir()) == []
    assert transport.exec(["echo", "still usable"])[1] == "still usable\n"


def _guarded(sshd_host, limit_s: str, marker: str) -> tuple[list[str], Path]:
    """argv: the board-side guard running a process that hangs, with a grandchild that hangs too."""
    flag = sshd_host.work_dir / f"started-{marker}"
    pidfile = f"{sshd_host.work_dir}/run/{uuid.uuid4().hex}.pid"
    hang = "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(300)"
    grandchild = [
        BOARD_PYTHON,
        "-c",
        "import sys, time; open(sys.argv[1], 'w'); time.sleep(300)",
        str(flag),
        marker,
    ]
    return [
        BOARD_PYTHON,
        f"{HOSTSIDE_DIR}/{GUARD}",
        pidfile,
        limit_s,
        BOARD_PYTHON,
        "-c",
        hang,
        *grandchild,
    ], flag


def test_board_side_guard_kills_a_run_that_outlives_its_limit(sshd_host, make_transport):
    marker = f"farm-guard-{uuid.uuid4().hex}"
    argv, flag = _guarded(sshd_host, "0.7", marker)
    started = time.monotonic()

    rc, _, err = make_transport(sshd_host).exec(argv, timeout_s=20)

    assert rc == -1, err  # the guard SIGKILLed its own group, itself included
    assert "killing its process group" in err
    assert time.monotonic() - started < 5
    assert flag.exists()  # the grandchild was running...
    assert _wait_gone(marker) == []  # ...and died with the group


def test_board_side_guard_works_after_the_connection_is_gone(sshd_host, make_transport):
    """What the guard is for: this side gave up (channel closed, stderr gone), the board still cleans up."""
    marker = f"farm-orphan-{uuid.uuid4().hex}"
    argv, flag = _guarded(sshd_host, "1.5", marker)
    transport = make_transport(sshd_host)

    with pytest.raises(InfraError, match="did not finish"):
        transport.exec(argv, timeout_s=0.7)  # closes the channel; nothing kills the command from here

    assert flag.exists() and _pgrep(marker)  # still running after the session closed
    assert _wait_gone(marker, within_s=5) == []


def test_exec_timeout_is_an_infra_error(sshd_host, make_transport):
    transport = make_transport(sshd_host)
    started = time.monotonic()
    with pytest.raises(InfraError, match="did not finish within 0.5 s"):
        transport.exec(["sleep", "30"], timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert _timers() == []  # invoke's timeout timer is done: nothing writes to the transport after this
    assert transport.exec(["true"], timeout_s=30)[0] == 0  # a command that ends early leaves no timer
    assert _timers() == []


def test_timeout_is_a_timeout_when_invokes_timer_thread_lags(sshd_host, make_transport, monkeypatch):
    """invoke flags a timeout only once its timer thread (which closes the channel) has finished; under
    load the command returns first with no exit status (-1). That must still read as a timeout, not as
    a command killed by a signal."""
    import invoke.runners

    monkeypatch.setattr(invoke.runners.Runner, "timed_out", property(lambda self: False))
    transport = make_transport(sshd_host)
    with pytest.raises(InfraError, match="did not finish within 0.5 s"):
        transport.exec(["sleep", "30"], timeout_s=0.5)
    with pytest.raises(InfraError, match="did not finish within 0.5 s: killed its process group"):
        transport.run_guarded(["sleep", "30"], 0.5)
    assert _timers() == []  # each command returned only after its timer had closed the channel


def _timers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]


# ---------------------------------------------------------------- logging


def test_no_key_material_in_logs(sshd_host, make_transport, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # paramiko's own debug logging included
    key, local = _artifact(tmp_path, size=5000)
    transport = make_transport(sshd_host)
    transport.run_agent({"x": 1}, timeout_s=30)
    transport.artifact_path(key, local)

    assert "connected to board" in caplog.text  # logging was captured at all
    private = sshd_host.key_file.read_text()
    body_lines = [line for line in private.splitlines() if line and not line.startswith("-----")]
    assert body_lines
    for line in body_lines:
        assert line not in caplog.text
    assert "".join(body_lines) not in caplog.text.replace("\n", "")


# ---------------------------------------------------------------- the real agent


def test_real_agent_benchmarks_an_uploaded_artifact(sshd_host, make_transport, tiny_onnx):
    """End to end over SSH: ship workers/agent and a model, run one short LoadGen benchmark, read the JSON."""
    transport = make_transport(sshd_host, agent_dir=AGENT_DIR)
    key = sha256_file(tiny_onnx)
    remote = transport.artifact_path(key, tiny_onnx)
    config = {
        "artifact": remote,
        "backend": "onnxruntime_cpu",
        "scenario": "SingleStream",
        "loadgen": {"min_duration_ms": 200, "min_query_count": 16},
        "warmup_queries": 2,
        "log_dir": f"{sshd_host.work_dir}/loadgen",
    }

    outcome = transport.run_agent(config, timeout_s=120)

    assert outcome.returncode == 0, outcome.stderr
    doc = json.loads(outcome.stdout)
    assert doc["status"] == "ok", doc.get("error")
    assert doc["latency_ms"]["p50"] > 0 and doc["query_count"] >= 16
    assert transport.ensure_agent() == f"{sshd_host.work_dir}/agent/{agent_hash(AGENT_DIR)}/farm_agent.py"
