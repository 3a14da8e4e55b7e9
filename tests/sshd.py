"""Real OpenSSH servers for tests: each "board" is its own sshd on its own loopback address.

The machinery (keys, ports, :class:`SshdServer`, process lookup) is product code in farm/lab/sshd.py, shared
with the virtual lab, and :class:`SshdFactory` (loopback addresses) is in farm/lab/loopback.py, shared with
bench/; this module adds the pytest fixtures. Load it as a pytest plugin
(``pytest_plugins = ["tests.sshd"]`` in the root conftest). Fixtures:

* ``sshd_factory``: ``sshd_factory.start(n=1)`` starts ``n`` servers and returns a list of
  :class:`SshdServer` (``.host``, ``.port``, ``.user``, ``.key_file``, ``.known_hosts``, ``.work_dir``,
  ``.pid``, ``.stop()``, ``.start()``); all of them are killed at teardown.
* ``sshd_host``: one running server.

Each server has its own ed25519 host key, listens on 127.0.0.x (x >= 2, distinct per server) and a free
port, accepts only the session's client key (``client_key`` fixture), and has sftp (internal-sftp).
``known_hosts`` is a file with exactly that server's key pinned (``[host]:port`` form).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from farm.lab.loopback import SshdFactory
from farm.lab.sshd import SSHD, ClientKey, SshdServer
from farm.lab.sshd import descendants as _descendants
from farm.lab.sshd import free_port as _free_port
from farm.lab.sshd import keygen as _keygen
from farm.lab.sshd import processes_mentioning as _processes_mentioning

__all__ = [
    "SSHD",
    "ClientKey",
    "SshdFactory",
    "SshdServer",
    "_descendants",
    "_free_port",
    "_keygen",
    "_processes_mentioning",
    "client_key",
    "sshd_factory",
    "sshd_host",
]

_NOT_INSTALLED = "openssh-server is not installed (make test installs it)"


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> ClientKey:
    """The client key pair every test server accepts (generated once per session)."""
    if not os.path.exists(SSHD):
        pytest.fail(_NOT_INSTALLED)
    directory = tmp_path_factory.mktemp("ssh-client")
    return ClientKey.create(directory / "id_ed25519", "farm-test-client")


@pytest.fixture
def sshd_factory(tmp_path_factory: pytest.TempPathFactory, client_key: ClientKey) -> Iterator[SshdFactory]:
    """Start real sshd "boards": ``sshd_factory.start(n)``; all killed at teardown."""
    factory = SshdFactory(tmp_path_factory.mktemp("sshd"), client_key)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def sshd_host(sshd_factory: SshdFactory) -> SshdServer:
    """One running sshd "board"."""
    return sshd_factory.start(1)[0]
