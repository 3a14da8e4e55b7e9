"""The GPU roofline for emulated GPU boards."""

from __future__ import annotations

import pytest

from farm.errors import ModelError
from farm.perfmodel.api import zoo_graph
from farm.perfmodel.gpu import gpu_target, predict_gpu


def test_int8_beats_fp32_and_bigger_models_are_slower():
    t = gpu_target("jetson-agx-xavier")
    r50 = {p: predict_gpu(zoo_graph("resnet50"), t, p) for p in ("fp32", "int8")}
    r18 = predict_gpu(zoo_graph("resnet18"), t, "fp32")
    assert r50["int8"].latency_ms < r50["fp32"].latency_ms
    assert r18.latency_ms < r50["fp32"].latency_ms
    for pred in (*r50.values(), r18):
        assert pred.fps_mt >= pred.fps_st > 0
        assert 0 < pred.clock_scaled_ms <= pred.latency_ms
        assert pred.kernels > 0
    # fp32 resnet50 cannot beat the roofline: 8.2 GFLOP on 1.41 TFLOPS peak.
    assert r50["fp32"].latency_ms > 2 * zoo_graph("resnet50").macs / 1.41e12 * 1e3


def test_launch_overhead_counts_per_kernel():
    t = gpu_target("jetson-agx-xavier")
    pred = predict_gpu(zoo_graph("mobilenet_v2"), t, "int8")
    assert pred.gpu_ms * 1e-3 > pred.kernels * 10e-6


def test_non_gpu_boards_are_refused():
    with pytest.raises(ModelError, match="no GPU"):
        gpu_target("zcu104")
