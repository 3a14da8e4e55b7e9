"""The ARM CPU timing model: target names, catalog look-up, calibration, scaling, int8, utilisation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from farm.errors import ModelError
from farm.perfmodel.api import zoo_graph
from farm.perfmodel.armcpu import (
    MODEL_VERSION,
    CpuTarget,
    cpu_target,
    parse_cpu_target,
    predict_cpu,
    references,
)


def test_parse_cpu_target():
    assert parse_cpu_target("pynq-z2:cpu") == ("pynq-z2", None)
    assert parse_cpu_target("pynq-z2:cpu:1") == ("pynq-z2", 1)
    assert parse_cpu_target("zcu104:cpu:4") == ("zcu104", 4)
    for bad in (
        "pynq-z2",
        "pynq-z2:gpu",
        "pynq-z2:cpu:0",
        "pynq-z2:cpu:x",
        ":cpu",
        "a:cpu:1:2",
        "pynq-z2:cpu:",
    ):
        with pytest.raises(ModelError, match="<board type>:cpu"):
            parse_cpu_target(bad)


def test_cpu_target_reads_the_catalog():
    t = cpu_target("pynq-z2:cpu:1")
    assert (t.board, t.board_type, t.model, t.cores, t.clock_mhz, t.threads) == (
        "pynq-z2:cpu:1",
        "pynq-z2",
        "Cortex-A9",
        2,
        650.0,
        1,
    )
    assert t.arch == "cortex-a9x2@650MHz-t1" and t.bandwidth_gbps == 2.1
    z = cpu_target("zcu104:cpu")
    assert (z.model, z.cores, z.clock_mhz, z.threads) == ("Cortex-A53", 4, 1200.0, 4)
    assert z.arch == "cortex-a53x4@1200MHz-t4"
    assert cpu_target("vck190:cpu").model == "Cortex-A72"


def test_errors():
    with pytest.raises(ModelError, match="3 threads"):
        cpu_target("pynq-z2:cpu:3")
    with pytest.raises(ModelError, match="unknown board type"):
        cpu_target("nope:cpu")
    with pytest.raises(ModelError, match="no host_cpu"):
        cpu_target("cpu:cpu")
    with pytest.raises(ModelError, match="no ARM CPU timing model"):
        cpu_target("u50:cpu")  # an x86 host
    with pytest.raises(ModelError, match="precision"):
        predict_cpu(zoo_graph("mobilenet_v2"), cpu_target("pynq-z2:cpu"), "fp16")


def test_calibration_on_the_seed_figures():
    """The acceptance check: MobileNetV2 fp32 on the Pynq-Z2's A9s, ~800 ms (1 thread), ~420 ms (2)."""
    g = zoo_graph("mobilenet_v2")
    one = predict_cpu(g, cpu_target("pynq-z2:cpu:1"), "fp32")
    two = predict_cpu(g, cpu_target("pynq-z2:cpu"), "fp32")
    assert one.latency_ms == pytest.approx(800, rel=0.15)
    assert two.latency_ms == pytest.approx(420, rel=0.15)
    assert two.latency_ms_1t == pytest.approx(one.latency_ms)
    assert two.fps_mt == pytest.approx(1000 / two.latency_ms)


def test_every_calibration_point_within_15_percent():
    for ref in references():
        if ref.calibrated:
            pred = predict_cpu(zoo_graph(ref.model), ref.target, ref.precision)
            assert pred.latency_ms == pytest.approx(ref.latency_ms, rel=0.15), ref.label


def test_threads_scale_monotonically_and_sublinearly():
    g = zoo_graph("mobilenet_v2")
    base = cpu_target("zcu104:cpu")
    lat = [predict_cpu(g, replace(base, threads=n), "fp32").latency_ms for n in (1, 2, 3, 4)]
    assert lat == sorted(lat, reverse=True) and len(set(lat)) == 4
    assert lat[0] / lat[3] < 4  # not every layer scales; bandwidth is shared


def test_int8_is_faster_on_conv_heavy_models():
    g = zoo_graph("resnet18")
    for name in ("pynq-z2:cpu:1", "zcu104:cpu"):
        t = cpu_target(name)
        fp32, int8 = (predict_cpu(g, t, p) for p in ("fp32", "int8"))
        assert int8.latency_ms < fp32.latency_ms / 1.2, name
    # Depthwise gains nothing: MobileNetV2's int8 gain is smaller than ResNet-18's.
    t = cpu_target("pynq-z2:cpu:1")
    gain = {
        m: predict_cpu(zoo_graph(m), t, "fp32").latency_ms / predict_cpu(zoo_graph(m), t, "int8").latency_ms
        for m in ("mobilenet_v2", "resnet18")
    }
    assert 1.0 < gain["mobilenet_v2"] < gain["resnet18"]


def test_utilisation_is_busy_core_power_over_the_boards_dynamic_power():
    g = zoo_graph("mobilenet_v2")
    for name in ("pynq-z2:cpu:1", "pynq-z2:cpu", "zcu104:cpu:1", "zcu104:cpu", "vck190:cpu"):
        pred = predict_cpu(g, cpu_target(name), "fp32")
        assert 0.0 < pred.utilisation_st == pred.utilisation_mt <= 1.0, name
    one = predict_cpu(g, cpu_target("pynq-z2:cpu:1"), "fp32").utilisation_mt
    two = predict_cpu(g, cpu_target("pynq-z2:cpu"), "fp32").utilisation_mt
    assert two == pytest.approx(2 * one)
    assert predict_cpu(g, replace(cpu_target("zcu104:cpu"), dynamic_w=0.5), "fp32").utilisation_mt == 1.0


def test_a_target_without_figures_takes_them_from_the_catalog_and_summary_is_plain():
    t = CpuTarget("zcu104:cpu:2", "zcu104", "Cortex-A53", 4, 1200.0, 2)
    pred = predict_cpu(zoo_graph("mobilenet_v2"), t, "int8")
    assert pred == predict_cpu(zoo_graph("mobilenet_v2"), cpu_target("zcu104:cpu:2"), "int8")
    s = pred.summary()
    assert s["target"] == "cortex-a53x4@1200MHz-t2" and s["threads"] == 2 and s["precision"] == "int8"
    assert s["ops"] > 0 and s["latency_ms"] < s["latency_ms_1t"]
    assert MODEL_VERSION == "farm-armcpu-perf/1"


def test_batches_scale_the_work():
    t = cpu_target("zcu104:cpu")
    one = predict_cpu(zoo_graph("mobilenet_v2", 1), t, "fp32")
    four = predict_cpu(zoo_graph("mobilenet_v2", 4), t, "fp32")
    assert four.batch_size == 4 and 3 * one.latency_ms < four.latency_ms < 4.5 * one.latency_ms
    assert four.fps_mt > one.fps_mt
