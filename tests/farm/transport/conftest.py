"""Transport tests: real sshd "boards" (tests/sshd.py) and fake agent directories to ship to them."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from farm.transport.ssh import SshTransport
from tests.sshd import SshdServer

# The boards are this machine, so the test interpreter is a python3 every board has.
BOARD_PYTHON = sys.executable

ECHO_AGENT = """\
import json, os, sys
args = sys.argv[1:]
config = json.loads(sys.stdin.read())
if config.get("exit"):
    sys.stderr.write(config.get("stderr", ""))
    sys.exit(config["exit"])
print(json.dumps({"config": config, "argv": args, "pid": os.getpid(), "pgid": os.getpgrp(), "cwd": os.getcwd()}))
"""

HANG_AGENT = """\
import json, subprocess, sys, time
config = json.loads(sys.stdin.read())
# A child in the same process group, as a real backend's worker process would be.
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", config["marker"]])
sys.stderr.write("hanging\\n")
sys.stderr.flush()
time.sleep(300)
"""


def write_agent(directory: Path, main: str = ECHO_AGENT, extra: dict[str, str] | None = None) -> Path:
    """A fake agent directory: farm_agent.py (+ extra files), plus a __pycache__ that must not ship."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "farm_agent.py").write_text(textwrap.dedent(main))
    for rel, text in (extra or {}).items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(text)
    (directory / "__pycache__").mkdir(exist_ok=True)
    (directory / "__pycache__" / "junk.cpython-311.py").write_text("raise SystemExit('must not ship')\n")
    return directory


@pytest.fixture
def echo_agent(tmp_path: Path) -> Path:
    return write_agent(tmp_path / "echo-agent", extra={"backends/helper.py": "X = 1\n"})


@pytest.fixture
def make_transport(echo_agent: Path) -> Iterator[Callable[..., SshTransport]]:
    """``make_transport(server, **overrides)``: an SshTransport to that board (closed at teardown)."""
    made: list[SshTransport] = []

    def make(server: SshdServer, **kwargs: object) -> SshTransport:
        params: dict[str, object] = {
            "host": server.host,
            "port": server.port,
            "user": server.user,
            "key_file": server.key_file,
            "known_hosts": server.known_hosts,
            "work_dir": str(server.work_dir),
            "connect_timeout_s": 5,
            "python": BOARD_PYTHON,
            "agent_dir": echo_agent,
            "name": f"board-{server.host}",
        }
        params.update(kwargs)
        transport = SshTransport(**params)  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()
