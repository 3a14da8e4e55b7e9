"""The virtual lab: emulated boards' physical world (power, thermal, sensor files) and the lab's processes.

* :mod:`farm.lab.physics.power`, :mod:`farm.lab.physics.thermal`: the board models (pure functions).
* :mod:`farm.lab.physics.sensorfs`: the emulated sensor files under a board's root (Linux hwmon ABI, xbutil).
* :mod:`farm.lab.physics.boardsim`: one simulator process per emulated board.
* :mod:`farm.lab.sshd`: real OpenSSH servers on loopback addresses (the emulated boards' hosts).
* :mod:`farm.lab.processes`: ``farm lab up|down|status``.

See docs/virtual-lab.md (contracts) and docs/virtual-lab-usage.md (how to use it).
"""
