"""Programs the farm runs on a remote host (a board or a compile host), shipped there as files.

The farm uploads this folder once per content version to ``<work_dir>/hostside/<hash>/`` (as it ships the
agent) and runs its programs from there with the host's own ``python3``. Rules for everything here:

* Python 3.8 compatible and standard library only (boards run old distributions; nothing of farm is there).
* Programs import each other by bare name (each puts its own folder first on ``sys.path``).

Programs:

* :data:`GUARD` (``guard.py``): one command with a time limit, in its own process group.
* :data:`SESSION_GUARD` (``session_guard.py``): a long-lived agent session, a time limit per job.
* :data:`SHA256` (``sha256.py``): a file's sha256, where the host has no ``sha256sum``.
* ``process_group.py``: what the guards share (own process group, pid file, exit status).
"""

import os

#: This folder: what the farm ships.
HOSTSIDE_DIR = os.path.dirname(os.path.abspath(__file__))

GUARD = "guard.py"
SESSION_GUARD = "session_guard.py"
SHA256 = "sha256.py"
