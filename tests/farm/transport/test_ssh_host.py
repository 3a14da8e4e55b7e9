"""SshHost against a real sshd: the host-side programs are shipped as files once per version and run from
there; hashing falls back to hostside/sha256.py on a host without sha256sum; files move verified."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from farm.errors import FarmError
from farm.lab.loopback import ssh_host
from farm.transport.hostside import GUARD, HOSTSIDE_DIR
from farm.transport.shipping import folder_hash
from farm.transport.ssh_host import SshHost
from tests.sshd import SshdServer


@pytest.fixture
def make_host(close_after) -> Callable[..., SshHost]:
    def make(server: SshdServer) -> SshHost:
        return close_after(ssh_host(server, name="builder-1"))

    return make


PARENT_ARGV = "import os; print(open('/proc/%d/cmdline' % os.getppid()).read().split(chr(0))[1])"


def test_guarded_commands_run_the_shipped_guard_shipped_once(sshd_host, make_host):
    host = make_host(sshd_host)
    shipped = sshd_host.work_dir / "hostside" / folder_hash(HOSTSIDE_DIR)

    rc, out, _ = host.run_guarded([sys.executable, "-c", PARENT_ARGV], 30)

    assert rc == 0 and out.strip() == str(shipped / GUARD)  # the command's parent: the board's copy
    assert (shipped / ".complete").read_text().strip() == folder_hash(HOSTSIDE_DIR)
    assert (shipped / GUARD).read_bytes() == Path(HOSTSIDE_DIR, GUARD).read_bytes()
    assert host.hostside_bytes_uploaded > 0 and host.hostside_uploads_skipped == 0
    assert host.bytes_uploaded == 0  # not counted as the caller's files
    sent = host.hostside_bytes_uploaded
    host.run_guarded(["true"], 30)
    assert (host.hostside_bytes_uploaded, host.hostside_uploads_skipped) == (
        sent,
        0,
    )  # known on this connection

    other = make_host(sshd_host)  # a new connection looks at the host, and finds it there
    assert other.run_guarded(["true"], 30)[0] == 0
    assert (other.hostside_bytes_uploaded, other.hostside_uploads_skipped) == (0, 1)


def test_hashing_falls_back_to_the_shipped_program_without_sha256sum(
    sshd_host, make_host, tmp_path, monkeypatch
):
    host = make_host(sshd_host)
    real_shell = SshHost._shell
    commands = []

    def no_sha256sum(self, command, *args, **kwargs):
        commands.append(command)
        return real_shell(self, command.replace("sha256sum --", "no-such-sha256sum --"), *args, **kwargs)

    monkeypatch.setattr(SshHost, "_shell", no_sha256sum)
    local = tmp_path / "model.onnx"
    local.write_bytes(b"weights" * 1000)
    remote = f"{sshd_host.work_dir}/compile/job/in/model.onnx"

    digest = host.upload(local, remote)

    assert Path(remote).read_bytes() == local.read_bytes()
    assert any("hostside" in c and "sha256.py" in c for c in commands)
    assert host.download(remote, tmp_path / "back.onnx") == digest
    assert host.hostside_bytes_uploaded > 0


def test_remove_tree_stays_inside_the_work_dir(sshd_host, make_host, tmp_path):
    host = make_host(sshd_host)
    local = tmp_path / "x.bin"
    local.write_bytes(b"x")
    host.upload(local, f"{sshd_host.work_dir}/compile/job/in/x.bin")
    for outside in ("/", "/tmp", str(sshd_host.work_dir), f"{sshd_host.work_dir}/../elsewhere"):
        with pytest.raises(FarmError):
            host.remove_tree(outside)
    host.remove_tree(f"{sshd_host.work_dir}/compile/job")
    assert not (sshd_host.work_dir / "compile" / "job").exists()
