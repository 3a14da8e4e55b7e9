"""The board simulator: one process per emulated board (docs/virtual-lab.md, part C).

    python -m farm.lab.physics.boardsim --root R --type T [--time-scale S] [--rate-hz 10] [--ambient-c A]

About ``rate_hz`` times a (wall) second it reads ``R/emu/load`` (the accelerator utilisation the emulated
backend writes), steps the power model (:mod:`farm.lab.physics.power`) and the first-order thermal model with
throttling (:mod:`farm.lab.physics.thermal`) by the emulated time that passed (``1/time_scale`` x wall time), and
writes the sensor files (:mod:`farm.lab.physics.sensorfs`), ``R/emu/clock_mhz`` and ``R/emu/state.json``.

The accelerator clock is the catalog's nominal clock, or the number in ``R/emu/clock_set_mhz`` when that
file exists (``farm lab set BOARD clock_mhz=N``, re-read every step), times the throttle fraction; the
dynamic power scales with it, and the emulated backend stretches its clock-bound time by nominal / clock.

The board starts at its idle steady state (ambient + r_th x static power). The ambient temperature is the
catalog's, or ``--ambient-c``, or the number in ``R/emu/ambient_c`` when that file exists (re-read every
step: a lab can "turn the air conditioning off" while it runs). The sensors show the model plus a small
Gaussian noise from a seeded generator (the same root and type give the same noise), never the clock.
SIGTERM or SIGINT ends it cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
import zlib
from pathlib import Path

import yaml

from farm.inventory import BoardType, Catalog
from farm.lab.physics.power import board_power_w, clamp_utilisation
from farm.lab.physics.sensorfs import (
    AMBIENT_FILE,
    CLOCK_SET_FILE,
    EMU_DIR,
    SensorFs,
    SensorState,
    read_load,
    read_setting,
)
from farm.lab.physics.thermal import clock_fraction, step_temperature, update_throttle

DEFAULT_RATE_HZ = 10.0
POWER_NOISE = 0.003  # relative standard deviation of the power reading
TEMP_NOISE_C = 0.05  # standard deviation of the temperature reading


def load_catalog(inventory_dir: Path | str) -> dict[str, BoardType]:
    """The board-type catalog (``board-types.yaml``) of an inventory folder."""
    path = Path(inventory_dir) / "board-types.yaml"
    return Catalog.model_validate(yaml.safe_load(path.read_text())).board_types


def load_board_type(inventory_dir: Path | str, type_name: str) -> BoardType:
    catalog = load_catalog(inventory_dir)
    if type_name not in catalog:
        raise SystemExit(f"unknown board type {type_name!r} (catalog: {', '.join(sorted(catalog))})")
    board_type = catalog[type_name]
    if board_type.power is None or board_type.thermal is None:
        raise SystemExit(f"board type {type_name!r} has no power: and thermal: model to simulate")
    return board_type


class BoardSim:
    """The models of one board and its sensor tree; :meth:`step` advances it by some wall time."""

    def __init__(
        self,
        root: Path | str,
        type_name: str,
        board_type: BoardType,
        time_scale: float = 1.0,
        rate_hz: float = DEFAULT_RATE_HZ,
        ambient_c: float | None = None,
        seed: int | None = None,
        noise: bool = True,
    ) -> None:
        if board_type.power is None or board_type.thermal is None:
            raise ValueError(f"board type {type_name!r} has no power/thermal model")
        self.root = Path(root)
        self.type_name = type_name
        self.power = board_type.power
        self.thermal = board_type.thermal
        accelerator = board_type.accelerator
        self.nominal_mhz = float(accelerator.clock_mhz or 0.0) if accelerator else 0.0
        self.time_scale = time_scale
        self.rate_hz = rate_hz
        self.ambient_override = ambient_c
        self.noise = noise
        self.rng = random.Random(zlib.crc32(f"{self.root}|{type_name}".encode()) if seed is None else seed)
        self.sensors = SensorFs(self.root, board_type, type_name, update_interval_ms=round(1000 / rate_hz))
        self.t_s = 0.0
        self.throttled = False
        self.temp_c = self._ambient() + self.thermal.r_th_c_per_w * self.power.static_w
        self.clock_set_mhz: float | None = None  # `farm lab set`: re-read each step

    def _ambient(self) -> float:
        value = read_setting(self.root, AMBIENT_FILE)
        if value is not None:
            return value
        return self.thermal.ambient_c if self.ambient_override is None else self.ambient_override

    def _read_clock_set(self) -> None:
        value = read_setting(self.root, CLOCK_SET_FILE)
        self.clock_set_mhz = value if value is not None and value > 0 and self.nominal_mhz > 0 else None

    @property
    def clock_mhz(self) -> float:
        base = self.nominal_mhz if self.clock_set_mhz is None else self.clock_set_mhz
        return base * clock_fraction(self.thermal, self.throttled)

    @property
    def clock_ratio(self) -> float:
        """The clock now as a fraction of nominal (set clock and throttling), for the power model."""
        if self.nominal_mhz <= 0:
            return clock_fraction(self.thermal, self.throttled)
        return self.clock_mhz / self.nominal_mhz

    def start(self) -> SensorState:
        """Lay the sensor tree out and write the first state."""
        (self.root / EMU_DIR).mkdir(parents=True, exist_ok=True)
        self.sensors.layout()
        self._read_clock_set()
        return self._publish(0.0, self.power.static_w, self._ambient())

    def step(self, wall_dt_s: float, utilisation: float | None = None) -> SensorState:
        """Advance by ``wall_dt_s`` wall seconds (``wall_dt_s / time_scale`` emulated) and write the files."""
        load = clamp_utilisation(read_load(self.root) if utilisation is None else utilisation)
        ambient = self._ambient()
        self._read_clock_set()
        dt = max(0.0, wall_dt_s) / self.time_scale
        power = board_power_w(self.power, load, self.clock_ratio)
        self.temp_c = step_temperature(self.thermal, self.temp_c, power, dt, ambient)
        self.t_s += dt
        was = self.throttled
        self.throttled = update_throttle(self.thermal, self.throttled, self.temp_c)
        if self.throttled != was:
            what = "throttling" if self.throttled else "back to nominal clock"
            sys.stderr.write(
                f"boardsim {self.type_name}: t={self.t_s:.0f} s {self.temp_c:.1f} C: {what} "
                f"({self.clock_mhz:.0f} MHz)\n"
            )
            sys.stderr.flush()
        return self._publish(load, power, ambient)

    def _publish(self, load: float, power: float, ambient: float) -> SensorState:
        power_reading, temp_reading = power, self.temp_c
        if self.noise:
            power_reading = max(0.0, power * (1.0 + self.rng.gauss(0.0, POWER_NOISE)))
            temp_reading = self.temp_c + self.rng.gauss(0.0, TEMP_NOISE_C)
        state = SensorState(
            power_w=power_reading,
            temp_c=temp_reading,
            clock_mhz=self.clock_mhz,
            utilisation=load,
            static_w=self.power.static_w,
            throttled=self.throttled,
            ambient_c=ambient,
            t_s=self.t_s,
            wall_time=time.time(),
            time_scale=self.time_scale,
            clock_set_mhz=self.clock_set_mhz,
        )
        self.sensors.write(state)
        return state

    def run(self, should_stop) -> None:
        """Step about ``rate_hz`` times a second until ``should_stop()``."""
        self.start()
        period = 1.0 / self.rate_hz
        last = time.monotonic()
        next_tick = last + period
        while not should_stop():
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if should_stop():
                break
            now = time.monotonic()
            self.step(now - last)
            last = now
            next_tick = max(next_tick + period, now)


def main(argv: list[str] | None = None) -> int:
    from farm.config import load_settings

    parser = argparse.ArgumentParser(
        prog="python -m farm.lab.physics.boardsim", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--root", required=True, help="the board's emulation root")
    parser.add_argument("--type", required=True, dest="type_name", help="board type (catalog name)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="wall s per emulated s (0 < S <= 1)")
    parser.add_argument("--rate-hz", type=float, default=DEFAULT_RATE_HZ)
    parser.add_argument("--ambient-c", type=float, default=None, help="override the catalog's ambient")
    parser.add_argument("--seed", type=int, default=None, help="noise seed (default: from root and type)")
    parser.add_argument("--no-noise", action="store_true")
    parser.add_argument("--inventory", default=None, help="inventory folder (default: FARM_INVENTORY)")
    args = parser.parse_args(argv)
    if not 0 < args.time_scale <= 1:
        parser.error("--time-scale must be in (0, 1]")
    if args.rate_hz <= 0:
        parser.error("--rate-hz must be positive")
    inventory = args.inventory or load_settings().inventory_dir
    board_type = load_board_type(inventory, args.type_name)
    sim = BoardSim(
        args.root,
        args.type_name,
        board_type,
        time_scale=args.time_scale,
        rate_hz=args.rate_hz,
        ambient_c=args.ambient_c,
        seed=args.seed,
        noise=not args.no_noise,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(
        f"boardsim {args.type_name} (pid {os.getpid()}): root {args.root}, time scale {args.time_scale}, "
        f"{args.rate_hz:g} Hz\n"
    )
    sys.stderr.flush()
    sim.run(lambda: stopping)
    return 0


if __name__ == "__main__":
    sys.exit(main())
