"""environment.py: best-effort machine facts; never fails."""

from __future__ import annotations

import importlib.util
import os

from tests.workers.agent.agent_contract import ENV_KEYS

AGENT_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "workers",
    "agent",
)
spec = importlib.util.spec_from_file_location(
    "_farm_agent_environment", os.path.join(AGENT_DIR, "environment.py")
)
environment = importlib.util.module_from_spec(spec)
spec.loader.exec_module(environment)

X86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\ncpu MHz\t\t: 2445.428\n"
# A Zynq UltraScale+ (Cortex-A53) board: no "model name" line.
ARM = "processor\t: 0\nBogoMIPS\t: 66.66\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd03\n"
RPI = "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 3\n"


def test_cpu_isa_names_the_int8_features_and_nothing_else():
    """VNNI or not decides whether ORT's x86 INT8 kernels saturate: the ISA is provenance."""
    avx2_only = "flags\t\t: fpu sse4_1 avx avx2 fma bmi2 adx\n"
    vnni = "flags\t\t: fpu sse4_1 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni sha_ni\n"
    assert environment.cpu_isa(avx2_only) == ["sse4_1", "avx", "avx2", "fma"]
    assert "avx512_vnni" in environment.cpu_isa(vnni) and "sha_ni" not in environment.cpu_isa(vnni)
    assert environment.cpu_isa(ARM) == ["asimd"]
    assert environment.cpu_isa("") == []


def test_cpu_model_parsing():
    assert environment.cpu_model(X86) == "AMD EPYC 7B13"
    assert environment.cpu_model(ARM) == "0x41 cpu part 0xd03"
    assert environment.cpu_model(RPI) == "ARMv7 Processor rev 4 (v7l)"


def test_cpu_freq_from_cpuinfo_when_no_cpufreq(monkeypatch):
    monkeypatch.setattr(environment, "_read", lambda path: None)
    assert environment.cpu_freq_mhz(X86) == 2445.4
    assert environment.cpu_freq_mhz(ARM) is None


def test_board_serial_strips_nul_and_never_fails(tmp_path, monkeypatch):
    serial = tmp_path / "serial-number"
    serial.write_bytes(b"ZCU104-0042\x00")
    unreadable = tmp_path / "missing"
    monkeypatch.setattr(environment, "_SERIAL_PATHS", (str(unreadable), str(serial)))
    assert environment.board_serial() == "ZCU104-0042"
    monkeypatch.setattr(environment, "_SERIAL_PATHS", (str(unreadable), str(tmp_path)))  # a directory
    assert environment.board_serial() is None


def test_collect_has_every_contract_key():
    env = environment.collect()
    for key in ENV_KEYS:
        assert key in env, key
    assert env["agent_version"] == environment.AGENT_VERSION == "1"
    assert env["cpu_count"] >= 1
    assert len(env["load_avg"]) == 3
    assert env["loadgen_version"] == "6.0.17"


def test_collect_survives_a_broken_backend():
    class Broken:
        def versions(self):
            raise RuntimeError("driver gone")

    env = environment.collect(Broken())
    assert env["runtime"] is None and env["hostname"]


def test_the_reports_version_is_the_contracts() -> None:
    from farm.workers.agent import protocol

    assert environment.AGENT_VERSION == protocol.CONTRACT_VERSION
