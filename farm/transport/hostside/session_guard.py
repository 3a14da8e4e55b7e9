"""Guards a long-lived agent session: job after job through one agent process on one SSH channel::

    python3 session_guard.py <pidfile> <argv...>

The guard leads a new process group (recorded in <pidfile>) and runs <argv> (the agent in serve mode) as
its child, the agent's stdin and stdout piped to the guard. Request lines ``<limit_s> <json>`` come in on
the guard's stdin and go to the agent as ``<json>``; the agent's response lines go back out on stdout.

The whole group, guard included, is SIGKILLed when a job outlives its <limit_s>, or when the guard's stdin
ends or its stdout breaks (the farm closed the channel or lost the connection) and the agent does not
finish within a second: a session never outlives the farm's side of it. Between jobs nothing times out.
When the agent exits by itself the guard exits with its status (128 + signal), after a SIGTERM to what the
agent left behind. Python 3.8, standard library only.
"""

import contextlib
import os
import select
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import process_group  # noqa: E402

#: How long the agent may take to finish by itself once the farm's side is gone.
HANG_UP_WAIT_S = 1.0
#: The longest select() wait: the job deadline is checked at least this often.
POLL_S = 0.5


def write_all(fd, data):
    while data:
        data = data[os.write(fd, data) :]


class SessionGuard:
    def __init__(self, pidfile, pid, to_agent, from_agent):
        self.pidfile = pidfile
        self.pid = pid
        self.to_agent = to_agent
        self.from_agent = from_agent

    def kill_all(self):
        """SIGKILL the whole group, this guard included."""
        process_group.forget(self.pidfile)
        os.killpg(0, signal.SIGKILL)

    def reaped(self):
        """The agent's waitpid status once it has ended, else None."""
        try:
            done, status = os.waitpid(self.pid, os.WNOHANG)
        except OSError:
            return 255 << 8
        return status if done else None

    def hang_up(self):
        """The farm's side is gone: close the agent's stdin, give it a moment, then kill the group."""
        with contextlib.suppress(OSError):
            os.close(self.to_agent)
        end = time.time() + HANG_UP_WAIT_S
        while self.reaped() is None and time.time() < end:
            time.sleep(0.02)
        self.kill_all()

    def finish(self, status, drain):
        """The agent ended by itself: pass on what it wrote (``drain``: its stdout is still open), SIGTERM
        what it left behind, exit with its status."""
        while drain and select.select([self.from_agent], [], [], 0)[0]:
            data = os.read(self.from_agent, 65536)
            if not data:
                break
            try:
                write_all(1, data)
            except OSError:
                break
        process_group.forget(self.pidfile)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            os.killpg(0, signal.SIGTERM)
        os._exit(process_group.exit_code(status))

    def run(self):
        pending, deadline, busy, agent_out = b"", None, 0, True
        while True:
            wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.time()))
            ready = select.select([0, self.from_agent] if agent_out else [0], [], [], wait)[0]
            if self.from_agent in ready:
                data = os.read(self.from_agent, 65536)
                if not data:
                    agent_out = False
                else:
                    try:
                        write_all(1, data)
                    except OSError:
                        self.hang_up()
                    busy -= data.count(b"\n")
                    if busy <= 0:
                        busy, deadline = 0, None
            if deadline is not None and time.time() >= deadline:
                process_group.say("job still running after its limit: killing the agent's process group")
                self.kill_all()
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    self.hang_up()
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    limit, _, request = line.partition(b" ")
                    try:
                        deadline = time.time() + float(limit)
                    except ValueError:
                        deadline = None
                    busy += 1
                    with contextlib.suppress(OSError):  # the agent is gone: reaped below
                        write_all(self.to_agent, request + b"\n")
            status = self.reaped()
            if status is not None:
                self.finish(status, drain=agent_out)


def main(args):
    pidfile, argv = args[0], args[1:]
    process_group.enter(pidfile)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:

        def plumb():
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            for fd in (in_r, in_w, out_r, out_w):
                os.close(fd)

        process_group.exec_child(argv, plumb)
    os.close(in_r)
    os.close(out_w)
    SessionGuard(pidfile, pid, in_w, out_r).run()


if __name__ == "__main__":
    main(sys.argv[1:])
