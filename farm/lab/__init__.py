"""The virtual lab: emulated boards' physical world (power, thermal, sensor files) and the lab's processes.

* :mod:`farm.lab.power`, :mod:`farm.lab.thermal`: the board models (pure functions).
* :mod:`farm.lab.sensorfs`: the emulated sensor files under a board's root (Linux hwmon ABI, xbutil).
* :mod:`farm.lab.boardsim`: one simulator process per emulated board.
* :mod:`farm.lab.sshd`: real OpenSSH servers on loopback addresses (the emulated boards' hosts).
* :mod:`farm.lab.fleet`: ``farm lab up|down|status``.

See docs/virtual-lab.md (contracts) and docs/virtual-lab-usage.md (how to use it).
"""
