"""RAPL: the powercap energy counter in microjoules, unwrapped at max_energy_range_uj."""

from __future__ import annotations

import pytest

from tests.workers.agent import agent_modules


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        yield ns


def rapl_tree(root, energy_uj, max_range=1_000_000):
    d = root / "sys" / "class" / "powercap" / "intel-rapl:0"
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    (d / "name").write_text("package-0\n")
    return d


def test_energy_counter_with_wrap(agent, tmp_path):
    d = rapl_tree(tmp_path, 900_000)
    times = iter([0.0, 1.0, 2.0, 3.0])
    rapl = agent_modules.module("sensors.rapl")
    reader = rapl.Rapl({"kind": "rapl", "root": str(tmp_path)}, clock=lambda: next(times))
    assert reader.describe() == "rapl intel-rapl:0 (package-0)"
    (d / "energy_uj").write_text("950000\n")  # +50 mJ in 1 s
    first = reader.read()
    assert first["power"] == pytest.approx(0.05) and first["energy_j"] == pytest.approx(0.05)
    (d / "energy_uj").write_text("20000\n")  # wrapped: +50000 to the top, +20000 after
    second = reader.read()
    assert second["power"] == pytest.approx(0.07)
    assert second["energy_j"] == pytest.approx(0.12)
    assert reader.info()["wraps"] == 1


def test_no_rapl_says_so(agent, tmp_path):
    with pytest.raises(agent.sensors.SensorError, match="no RAPL on this machine"):
        agent.sensors.create({"kind": "rapl", "root": str(tmp_path)})
