"""Runs one command with a time limit, in a process group of its own::

    python3 guard.py <pidfile> <limit_s> <argv...>

The guard leads a new process group (recorded in <pidfile>), runs <argv> as its child and SIGKILLs the
whole group, itself included, if the command outlives <limit_s>: a hung command and everything it started
die even when the farm's connection to the host is gone. Otherwise it exits with the command's status
(128 + signal when a signal ended it), after removing <pidfile>. Python 3.8, standard library only.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import process_group  # noqa: E402


def main(args):
    pidfile, limit, argv = args[0], float(args[1]), args[2:]
    process_group.enter(pidfile)
    pid = os.fork()
    if pid == 0:
        process_group.exec_child(argv)

    def expire(signum, frame):
        process_group.say(f"agent still running after {limit:.0f} s: killing its process group")
        os.killpg(0, signal.SIGKILL)

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    status = os.waitpid(pid, 0)[1]
    signal.setitimer(signal.ITIMER_REAL, 0)
    process_group.forget(pidfile)
    return process_group.exit_code(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
