"""DPU configuration strings as the calibration CSV and the catalog spell them."""

from __future__ import annotations

import pytest

from farm.errors import ModelError
from farm.perfmodel.configs import DPUCZDX8G_ARCHS, parse_dpu


@pytest.mark.parametrize("b", sorted(DPUCZDX8G_ARCHS))
def test_dpuczdx8g_b_size_is_peak_ops_per_clock(b):
    cfg = parse_dpu(f"DPUCZDX8G-B{b}")
    assert cfg.name == f"DPUCZDX8G-B{b}"
    assert cfg.peak_ops_per_cycle == b == 2 * cfg.pp * cfg.icp * cfg.ocp
    assert cfg.icp == cfg.ocp  # PG338: input channel parallelism equals output channel parallelism


def test_pg338_parallelism_table():
    assert (parse_dpu("DPUCZDX8G-B4096").pp, parse_dpu("DPUCZDX8G-B4096").icp) == (8, 16)
    assert (parse_dpu("DPUCZDX8G-B512").pp, parse_dpu("DPUCZDX8G-B512").icp) == (4, 8)
    assert (parse_dpu("DPUCZDX8G-B1152").pp, parse_dpu("DPUCZDX8G-B1152").icp) == (4, 12)
    assert parse_dpu("DPUCZDX8G-B3136").icp == 14


def test_b4096_at_300mhz_is_1_2_tops_per_core():
    assert parse_dpu("DPUCZDX8G-B4096").peak_tops(300, 1) == pytest.approx(1.2288)


def test_dpucahx8h_u50_peak_matches_pg367():
    cfg = parse_dpu("DPUCAHX8H-2x3E")
    assert (cfg.config_cores, cfg.engines, cfg.depthwise) == (2, 3, False)
    assert cfg.peak_tops(300, 2) * 1000 == pytest.approx(7373, rel=1e-3)  # PG367: 7373 GOPS
    assert parse_dpu("DPUCAHX8H-2x4E-DWC").depthwise


@pytest.mark.parametrize("b", range(1, 7))
def test_dpucvdx8g_c32_peak_matches_pg389(b):
    cfg = parse_dpu(f"DPUCVDX8G-C32B{b}")
    assert cfg.engines == b
    assert cfg.peak_tops(1250, 1) == pytest.approx(10.24 * b)  # 256 ops x 32 AIE x B x 1.25 GHz


@pytest.mark.parametrize(
    "text",
    [
        "DPUCZDX8G-B999",
        "DPUCZDX8G",
        "B4096",
        "DPUXYZ-B4096",
        "DPUCVDX8G-C32B7",
        "DPUCAHX8H-3E",
        "",
        "DPUCZDX8G-",
    ],
)
def test_bad_strings_are_model_errors_with_the_valid_forms(text):
    with pytest.raises(ModelError, match="unknown DPU|unknown DPUC|expected"):
        parse_dpu(text)
