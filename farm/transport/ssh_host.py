"""A remote host over SSH: verified file transfer, shipped folders and guarded commands.

What a compile host needs (``workers/toolchains/runners``) and what a board's transport builds on
(:class:`farm.transport.ssh.SshTransport`). Under ``work_dir`` on the host::

    hostside/<hash>/...      the farm's host-side programs (farm/transport/hostside); .complete written last
    run/<uuid>.pid           process group of a guarded command while it runs (removed when it ends)

A guarded command runs under ``hostside/guard.py``: its own process group, recorded in ``run/<uuid>.pid``
and killed whole if it outlives ``timeout_s + GUARD_GRACE_S``, so a hung command dies even when the
connection is gone. On a timeout seen from this side the group is killed from here right away.
"""

from __future__ import annotations

import logging
import os
import posixpath
import uuid
from dataclasses import dataclass
from pathlib import Path

import paramiko
from invoke.exceptions import CommandTimedOut

from farm.artifacts import sha256_file
from farm.errors import InfraError
from farm.transport.diskspace import FREE_BYTES_CODE, NoSpaceError, no_space_message
from farm.transport.hostside import GUARD, HOSTSIDE_DIR, SHA256
from farm.transport.remote import (
    UnsafeRemoteValue,
    quote_arg,
    quote_argv,
    remote_join,
    validate_remote_path,
)
from farm.transport.shipping import COMPLETE_MARKER, files_hash, folder_files
from farm.transport.ssh_connection import HOUSEKEEPING_TIMEOUT_S, SshConnection

__all__ = ["GUARD_GRACE_S", "GuardTimeout", "SshHost"]

log = logging.getLogger(__name__)

#: Extra seconds the host-side guard waits past the run timeout before killing the command itself.
GUARD_GRACE_S = 15.0
#: Exit status of the hashing command when the host has no usable ``sha256sum``.
_NO_SHA256SUM = 5
#: The least a write takes on a filesystem (one block): a folder or a small file needs this much free.
_BLOCK = 4096


@dataclass(frozen=True)
class KillResult:
    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


class GuardTimeout(Exception):
    """A guarded command outlived its timeout; ``killed`` says whether its group was killed from here."""

    def __init__(self, killed: KillResult) -> None:
        super().__init__(killed.reason)
        self.killed = killed


class SshHost(SshConnection):
    """A host over SSH with a ``work_dir`` of the farm's and a ``python`` (any python3 >= 3.8) for the
    host-side programs. Connects lazily on first use."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        key_file: str | os.PathLike[str],
        known_hosts: str | os.PathLike[str],
        work_dir: str,
        connect_timeout_s: float = 10,
        python: str = "python3",
        *,
        name: str | None = None,
        keepalive_s: int = 30,
        role: str = "board",
    ) -> None:
        super().__init__(
            host,
            port,
            user,
            key_file,
            known_hosts,
            connect_timeout_s,
            name=name,
            keepalive_s=keepalive_s,
            role=role,
        )
        self.work_dir = validate_remote_path(work_dir)
        quote_arg(python)  # rejects NUL; the word is always quoted where it is used
        self.python = python
        #: Bytes of files sent to the host / uploads skipped because the host had them.
        self.bytes_uploaded = 0
        self.uploads_skipped = 0
        #: The same for the host-side programs (farm/transport/hostside).
        self.hostside_bytes_uploaded = 0
        self.hostside_uploads_skipped = 0
        self._hostside_files: tuple[list[tuple[str, Path]], str] | None = None  # (files, hash), read once
        self._hostside_dir: str | None = None  # where they are on the host, once ensured on this connection

    def _drop(self) -> None:
        self._hostside_dir = None  # the host may have changed while we were away
        super()._drop()

    # ------------------------------------------------------------------ SFTP helpers

    def _makedirs(self, sftp: paramiko.SFTPClient, path: str) -> None:
        """``mkdir -p`` over SFTP."""
        missing = []
        current = path
        while current not in ("/", ""):
            try:
                self._sftp_call("stat", sftp.stat, current, missing_ok=True)
                break
            except FileNotFoundError:
                missing.append(current)
                current = posixpath.dirname(current)
        for directory in reversed(missing):
            try:
                self._sftp_call("mkdir", sftp.mkdir, directory)
            except InfraError as exc:
                # Created concurrently by someone else? Then it exists now.
                try:
                    self._sftp_call("stat", sftp.stat, directory)
                except InfraError:
                    raise self._write_failed(exc, directory, _BLOCK) from None

    def _read_small(self, sftp: paramiko.SFTPClient, path: str) -> str | None:
        try:
            with sftp.open(path, "r") as fh:
                return fh.read(4096).decode("utf-8", "replace")
        except FileNotFoundError:
            return None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise InfraError(f"{self._where()}: SFTP read of {path} failed: {exc}") from None

    def _write_small(self, sftp: paramiko.SFTPClient, path: str, text: str) -> None:
        """Write a small file (a completion marker) in one go; a full filesystem is NoSpaceError."""
        try:
            with sftp.open(path, "w") as fh:
                fh.write(text)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            failed = InfraError(f"{self._where()}: cannot write {path}: {exc}")
            raise self._write_failed(failed, path, len(text.encode())) from None

    def _put(self, sftp: paramiko.SFTPClient, local_path: Path, remote_path: str, size: int) -> None:
        """``sftp.put``; a full filesystem is NoSpaceError rather than SFTP's bare "Failure"."""
        try:
            self._sftp_call("upload", sftp.put, str(local_path), remote_path)
        except InfraError as exc:
            raise self._write_failed(exc, remote_path, size) from None

    def free_bytes(self, path: str) -> int | None:
        """Bytes free for the farm in the filesystem holding ``path`` (or its nearest existing folder),
        measured on the host; None when that cannot be told (connection gone, odd output)."""
        try:
            sftp = self._sftp()
            folder = path
            while folder not in ("/", ""):
                try:
                    self._sftp_call("stat", sftp.stat, folder, missing_ok=True)
                    break
                except FileNotFoundError:
                    folder = posixpath.dirname(folder)
            rc, out, _ = self._shell(quote_argv([self.python, "-c", FREE_BYTES_CODE, folder or "/"]))
        except InfraError:
            return None
        try:
            return int(out.strip()) if rc == 0 else None
        except ValueError:
            return None

    def _write_failed(self, exc: InfraError, target: str, needed: int) -> InfraError:
        """What a failed write to ``target`` really was: SFTP says only "Failure" when the filesystem is
        full, so measure it. NoSpaceError when ``needed`` bytes cannot fit in ``target``'s folder, else the
        original error (a dropped connection, a permission problem)."""
        if not self.connected:
            return exc
        folder = posixpath.dirname(target) or "/"
        free = self.free_bytes(folder)
        needed = max(needed, _BLOCK)
        if free is None or free >= needed:
            return exc
        log.warning("%s: %s", self._where(), exc)
        return NoSpaceError(no_space_message(self.name, folder, free, needed))

    def _rename(self, sftp: paramiko.SFTPClient, src: str, dst: str) -> None:
        """Atomic replace (posix-rename@openssh.com; ``mv -f`` where the server lacks it)."""
        try:
            sftp.posix_rename(src, dst)
        except (OSError, paramiko.SSHException):
            rc, _, err = self._shell(quote_argv(["mv", "-f", "--", src, dst]))
            if rc != 0:
                raise InfraError(f"{self._where()}: cannot move {src} to {dst}: {err.strip()}") from None

    def _remove_quietly(self, sftp: paramiko.SFTPClient, path: str) -> None:
        try:
            sftp.remove(path)
        except (OSError, paramiko.SSHException):
            log.debug("could not remove %s on %s", path, self._where())

    def _remote_sha256(self, path: str) -> str | None:
        """sha256 of a host file, computed on the host (None if the file does not exist): ``sha256sum``, or
        hostside/sha256.py where the host has none."""
        quoted = quote_arg(path)
        rc, out, err = self._shell(
            f"if [ -f {quoted} ]; then sha256sum -- {quoted} 2>/dev/null || exit {_NO_SHA256SUM}; "
            f"else exit 3; fi"
        )
        if rc == 3:
            return None
        if rc == _NO_SHA256SUM:
            rc, out, err = self._shell(quote_argv([self.python, self.hostside_program(SHA256), path]))
        digest = out.split()[0] if out.split() else ""
        if rc != 0 or len(digest) != 64:
            raise InfraError(
                f"{self._where()}: cannot hash {path} on the board: {err.strip() or out.strip()}"
            )
        return digest.lower()

    # ------------------------------------------------------------------ files

    def upload(self, local_path: str | os.PathLike[str], remote_path: str) -> str:
        """Copy a local file to ``remote_path`` (parent folders made), verified by sha256 on the host, then
        renamed into place: the path never holds a partial or corrupt file. Returns the sha256."""
        validate_remote_path(remote_path)
        local_path = Path(local_path)
        with self._lock:
            local_sha = sha256_file(local_path)
            size = local_path.stat().st_size
            sftp = self._sftp()
            self._makedirs(sftp, posixpath.dirname(remote_path))
            self._put_verified(sftp, local_path, size, local_sha, remote_path, local_path.name)
            return local_sha

    def _put_verified(
        self, sftp: paramiko.SFTPClient, local_path: Path, size: int, local_sha: str, final: str, what: str
    ) -> None:
        """Upload to a temp file beside ``final`` (its folder exists), check its sha256 on the host, rename
        it to ``final``; a mismatch is InfraError and leaves nothing behind."""
        parent, name = posixpath.split(final)
        tmp = posixpath.join(parent, f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            self._put(sftp, local_path, tmp, size)
            self.bytes_uploaded += size
            remote_sha = self._remote_sha256(tmp)
            if remote_sha != local_sha:
                raise InfraError(
                    f"{self._where()}: corrupt upload of {what}: sha256 on the board is "
                    f"{remote_sha}, expected {local_sha}"
                )
            self._rename(sftp, tmp, final)
        except BaseException:
            if self.connected:
                self._remove_quietly(sftp, tmp)
            raise

    def download(self, remote_path: str, local_path: str | os.PathLike[str]) -> str:
        """Copy a host file to ``local_path``, verified against its sha256 computed on the host, then
        renamed into place (a mismatch is InfraError and leaves nothing behind). Returns the sha256."""
        validate_remote_path(remote_path)
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = local_path.with_name(f".{local_path.name}.{uuid.uuid4().hex}.tmp")
        with self._lock:
            sftp = self._sftp()
            try:
                self._sftp_call(f"download of {remote_path}", sftp.get, remote_path, str(tmp))
                local_sha = sha256_file(tmp)
                remote_sha = self._remote_sha256(remote_path)
                if remote_sha != local_sha:
                    raise InfraError(
                        f"{self._where()}: corrupt download of {remote_path}: sha256 on the board is "
                        f"{remote_sha}, the copy received has {local_sha}"
                    )
                os.replace(tmp, local_path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return local_sha

    def remove_tree(self, remote_path: str) -> None:
        """``rm -rf`` a folder strictly inside ``work_dir`` (anything else is refused)."""
        validate_remote_path(remote_path)
        root = self.work_dir.rstrip("/") + "/"
        if not remote_path.startswith(root) or remote_path == root:
            raise UnsafeRemoteValue(f"refusing to remove {remote_path!r}: not inside the work dir {root}")
        with self._lock:
            rc, _, err = self._shell(quote_argv(["rm", "-rf", "--", remote_path]))
            if rc != 0:
                raise InfraError(f"{self._where()}: cannot remove {remote_path}: {err.strip()}")

    def ship_folder(
        self, files: list[tuple[str, Path]], digest: str, remote_dir: str, what: str
    ) -> int | None:
        """Make ``remote_dir`` hold ``files`` (see :mod:`farm.transport.shipping`): nothing is sent when its
        completion marker already holds ``digest``; otherwise every file, then the marker. Returns the bytes
        sent, None when the host had the folder."""
        sftp = self._sftp()
        marker = posixpath.join(remote_dir, COMPLETE_MARKER)
        if (self._read_small(sftp, marker) or "").strip() == digest:
            return None
        log.info("uploading %s (%s) to %s:%s", what, digest[:12], self._where(), remote_dir)
        sent = 0
        for directory in sorted({posixpath.dirname(posixpath.join(remote_dir, rel)) for rel, _ in files}):
            self._makedirs(sftp, directory)
        for rel, path in files:
            size = path.stat().st_size
            self._put(sftp, path, posixpath.join(remote_dir, rel), size)
            sent += size
        tmp_marker = f"{marker}.{uuid.uuid4().hex}.tmp"
        self._write_small(sftp, tmp_marker, digest + "\n")
        self._rename(sftp, tmp_marker, marker)
        return sent

    # ------------------------------------------------------------------ guarded commands

    def hostside_program(self, name: str) -> str:
        """The host's path of a host-side program (farm/transport/hostside), shipping the folder first if
        the host lacks this version (checked once per connection)."""
        with self._lock:
            if self._hostside_dir is None or not self.connected:
                if self._hostside_files is None:
                    files = folder_files(Path(HOSTSIDE_DIR))
                    self._hostside_files = (files, files_hash(files))
                files, digest = self._hostside_files
                remote_dir = remote_join(self.work_dir, "hostside", digest)
                sent = self.ship_folder(files, digest, remote_dir, "the host-side programs")
                if sent is None:
                    self.hostside_uploads_skipped += 1
                else:
                    self.hostside_bytes_uploaded += sent
                self._hostside_dir = remote_dir
            return posixpath.join(self._hostside_dir, name)

    def _new_pidfile(self) -> str:
        return remote_join(self.work_dir, "run", f"{uuid.uuid4().hex}.pid")

    def _guarded(self, argv: list[str], timeout_s: float, stdin: str = "") -> tuple[int, str, str]:
        """Run ``argv`` under hostside/guard.py; on a timeout kill its group from here, then raise
        :class:`GuardTimeout` (the guard kills it ``GUARD_GRACE_S`` later if this failed)."""
        guard = self.hostside_program(GUARD)
        pidfile = self._new_pidfile()
        command = quote_argv([self.python, guard, pidfile, f"{timeout_s + GUARD_GRACE_S:g}", *argv])
        try:
            return self._run(command, timeout_s, stdin=stdin)
        except CommandTimedOut:
            raise GuardTimeout(self._kill_run(pidfile)) from None

    def run_guarded(
        self, argv: list[str], timeout_s: float, stdin: str = "", what: str = "command"
    ) -> tuple[int, str, str]:
        """Run ``argv`` under the host-side guard: its own process group, killed from here on a timeout
        (InfraError) and by the guard itself ``GUARD_GRACE_S`` later if the connection is gone. Returns
        (rc, stdout, stderr)."""
        with self._lock:
            try:
                return self._guarded(argv, timeout_s, stdin)
            except GuardTimeout as hung:
                killed = hung.killed
                raise InfraError(
                    f"{self._where()}: {what} did not finish within {timeout_s:g} s: "
                    + ("killed its process group" if killed else f"could not kill it now ({killed.reason})")
                ) from None

    def _kill_run(self, pidfile: str) -> KillResult:
        """SIGKILL the process group recorded in ``pidfile`` on the host."""
        quoted = quote_arg(pidfile)
        # The pid file holds the process group id (digits only; checked before use).
        command = (
            f'p=$(cat {quoted} 2>/dev/null); case "$p" in ""|*[!0-9]*) exit 4;; esac; '
            f'kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; rm -f {quoted}; exit 0'
        )
        try:
            rc, _, err = self._shell(command, timeout_s=min(HOUSEKEEPING_TIMEOUT_S, 10.0))
        except InfraError as exc:
            return KillResult(False, str(exc))
        if rc == 4:
            return KillResult(False, "the agent never recorded its process group")
        if rc != 0:
            return KillResult(False, err.strip() or f"exit status {rc}")
        log.warning("killed a hung agent on %s", self._where())
        return KillResult(True, "")
