"""What both guards share: a process group of their own, recorded in a pid file, and exit statuses.

The guard becomes the leader of a new session and process group (pgid == its pid) and writes that id to
``<pidfile>``: the farm kills the whole group through it (``kill -KILL -- -<pgid>``) even when the guard
itself is stuck. Python 3.8, standard library only (see ``__init__.py``).
"""

import contextlib
import os
import signal


def enter(pidfile):
    """Lead a new process group and record its id in ``pidfile`` (its folder made if missing)."""
    with contextlib.suppress(OSError):
        os.setsid()
    if os.getpgrp() != os.getpid():
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(pidfile))
    with open(pidfile, "w") as fh:
        fh.write(f"{os.getpgrp()}\n")


def forget(pidfile):
    """Remove the pid file (the group is over, or about to be)."""
    with contextlib.suppress(OSError):
        os.unlink(pidfile)


def exec_child(argv, setup=None):
    """In a forked child: ``setup()``, then exec ``argv``. Never returns (exit 127 when exec fails)."""
    try:
        if setup is not None:
            setup()
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; exec would keep that
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)


def exit_code(status):
    """A ``waitpid`` status as a shell reports it: the exit status, or 128 + the signal."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def say(text):
    """One line on stderr; never fails (stderr is gone when the farm's connection is)."""
    with contextlib.suppress(OSError):
        os.write(2, f"farm guard: {text}\n".encode())
