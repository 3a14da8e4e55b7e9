"""The host-side programs (farm/transport/hostside), run here as a board or compile host runs them:
``python3 <program> ...`` from their folder. What each docstring promises, checked with child commands."""

from __future__ import annotations

import ast
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from farm.lab.sshd import processes_mentioning
from farm.transport.hostside import GUARD, HOSTSIDE_DIR, SESSION_GUARD, SHA256

PROGRAMS = sorted(Path(HOSTSIDE_DIR).glob("*.py"))
OWN_MODULES = {p.stem for p in PROGRAMS}


def _program(name: str) -> str:
    return os.path.join(HOSTSIDE_DIR, name)


def _guard(tmp_path: Path, limit_s: float, *argv: str, **kwargs) -> tuple[subprocess.Popen, Path]:
    pidfile = tmp_path / "run" / f"{uuid.uuid4().hex}.pid"
    proc = subprocess.Popen(
        [sys.executable, _program(GUARD), str(pidfile), f"{limit_s:g}", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )
    return proc, pidfile


def _wait_for(predicate, within_s: float = 10.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# ---------------------------------------------------------------- the rules: Python 3.8, standard library


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_parses_as_python_3_8_and_imports_only_the_standard_library(path):
    tree = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | OWN_MODULES, sorted(imported)


def test_every_named_program_is_in_the_folder():
    for name in (GUARD, SESSION_GUARD, SHA256):
        assert os.path.isfile(_program(name))


# ---------------------------------------------------------------- guard.py


def test_guard_passes_output_and_exit_status_through(tmp_path):
    code = "import sys; print(sys.stdin.read().upper()); sys.stderr.write('warn\\n'); sys.exit(7)"
    proc, pidfile = _guard(tmp_path, 30, sys.executable, "-c", code, stdin=subprocess.PIPE)
    out, err = proc.communicate(b"config", timeout=30)
    assert (proc.returncode, out, err) == (7, b"CONFIG\n", b"warn\n")
    assert not pidfile.exists()  # removed when the command ended


def test_guard_reports_a_signal_as_128_plus_it(tmp_path):
    proc, _ = _guard(
        tmp_path, 30, sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    )
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM


def test_guard_exits_127_when_the_command_cannot_start(tmp_path):
    proc, pidfile = _guard(tmp_path, 30, str(tmp_path / "no-such-program"))
    proc.communicate(timeout=30)
    assert proc.returncode == 127 and not pidfile.exists()


def test_guard_records_its_own_process_group_while_the_command_runs(tmp_path):
    flag = tmp_path / "pgid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpgrp())); time.sleep(300)"
    proc, pidfile = _guard(tmp_path, 30, sys.executable, "-c", code, str(flag))
    try:
        _wait_for(lambda: flag.exists() and flag.read_text())
        # The group is the guard's own (pgid == its pid), not the caller's, and the pid file says so.
        assert int(flag.read_text()) == proc.pid != os.getpgrp()
        assert int(pidfile.read_text()) == proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_guard_kills_the_whole_group_at_its_limit(tmp_path):
    marker = f"farm-hostside-guard-{uuid.uuid4().hex}"
    hang = "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(300)"
    grandchild = [sys.executable, "-c", "import time; time.sleep(300)", marker]
    started = time.monotonic()
    proc, pidfile = _guard(tmp_path, 1.0, sys.executable, "-c", hang, *grandchild)
    _wait_for(lambda: processes_mentioning(marker))

    _, err = proc.communicate(timeout=30)

    assert proc.returncode == -signal.SIGKILL  # the guard went with its group
    assert 1.0 <= time.monotonic() - started < 5
    assert b"killing its process group" in err
    assert _wait_for(lambda: processes_mentioning(marker) == [])  # the grandchild too


# ---------------------------------------------------------------- session_guard.py


def _session(tmp_path: Path, agent: str) -> tuple[subprocess.Popen, Path]:
    pidfile = tmp_path / "run" / f"{uuid.uuid4().hex}.pid"
    proc = subprocess.Popen(
        [sys.executable, _program(SESSION_GUARD), str(pidfile), sys.executable, "-c", agent],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, pidfile


ECHO_AGENT = """\
import os, sys
for line in iter(sys.stdin.readline, ""):
    sys.stdout.write("%d %s" % (os.getpgrp(), line))
    sys.stdout.flush()
"""


def test_session_guard_strips_the_limit_and_runs_jobs_in_one_agent(tmp_path):
    proc, pidfile = _session(tmp_path, ECHO_AGENT)
    try:
        replies = []
        for request in (b"30 first\n", b"not-a-number second\n"):  # a bad limit: no deadline, still passed on
            proc.stdin.write(request)
            proc.stdin.flush()
            replies.append(proc.stdout.readline())
        assert [r.split(b" ", 1)[1] for r in replies] == [b"first\n", b"second\n"]
        assert {int(r.split()[0]) for r in replies} == {proc.pid}  # the agent is in the guard's group
        assert int(pidfile.read_text()) == proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_session_guard_kills_the_group_when_its_stdout_breaks(tmp_path):
    """The farm's end of the channel is gone: the next response cannot be written, so nothing is left."""
    marker = f"farm-hostside-session-{uuid.uuid4().hex}"
    agent = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])\n"
        "for line in iter(sys.stdin.readline, ''):\n"
        "    sys.stdout.write(line); sys.stdout.flush()\n"
    )
    proc, pidfile = _session(tmp_path, agent)
    _wait_for(lambda: processes_mentioning(marker))
    proc.stdout.close()  # nobody reads the responses any more
    proc.stdin.write(b"30 job\n")
    proc.stdin.flush()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert _wait_for(lambda: processes_mentioning(marker) == [])
    assert not pidfile.exists()


def test_session_guard_terms_what_an_exited_agent_left_behind(tmp_path):
    marker = f"farm-hostside-leftover-{uuid.uuid4().hex}"
    agent = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])\n"
        "sys.exit(3)\n"
    )
    proc, pidfile = _session(tmp_path, agent)
    try:
        assert proc.wait(timeout=10) == 3
        assert _wait_for(lambda: processes_mentioning(marker) == [])  # SIGTERMed with the group
        assert not pidfile.exists()
    finally:
        proc.kill()


# ---------------------------------------------------------------- sha256.py


def test_sha256_prints_the_files_digest(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(3 << 20))  # more than one read block
    out = subprocess.run(
        [sys.executable, _program(SHA256), str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert out == hashlib.sha256(path.read_bytes()).hexdigest() + "\n"
