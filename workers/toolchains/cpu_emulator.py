"""The emulated board CPU: ONNX Runtime's fp32 optimisation or int8 quantisation (the CPU toolchain's code)
plus timing from the ARM CPU model (farm/perfmodel/armcpu.py), written as the ``farm.emulation`` profile.

Per target (``cpu_emulator@<board type>:cpu[:<threads>]``, e.g. ``cpu_emulator@pynq-z2:cpu:1``): the CPU
model, cores and clock come from the catalog's ``host_cpu``. The int8 artifact is quantised for ARM
(full 8-bit weights, no ``reduce_range``), whatever the compiling host's architecture.
"""

from __future__ import annotations

import onnx

from farm.workers.toolchains.base import Toolchain
from farm.workers.toolchains.emulation import EmulatorToolchain, digest, profile


class CpuEmulatorToolchain(EmulatorToolchain):
    name = "cpu_emulator"
    precisions = ("fp32", "int8")

    def _resolve(self, board: str):
        from farm.perfmodel.armcpu import cpu_target

        return cpu_target(board)

    def version(self) -> str:
        import onnxruntime

        from farm.perfmodel.armcpu import MODEL_VERSION, parameters

        return f"cpu_emulator-{MODEL_VERSION}-{digest(parameters())}+onnxruntime-{onnxruntime.__version__}"

    def _inner(self, toolchain: Toolchain) -> Toolchain:
        """The ONNX Runtime toolchain quantising for an ARM target: ``reduce_range`` is an x86 (VPMADDUBSW)
        workaround that would cost the ARM artifact weight precision for nothing."""
        toolchain.reduce_range = False  # type: ignore[attr-defined]
        return toolchain

    def _predict(self, model: onnx.ModelProto, precision: str) -> tuple[dict, dict, list[str]]:
        from farm.perfmodel.armcpu import MODEL_VERSION, predict_cpu
        from farm.perfmodel.graph import analyse

        t = self._target
        pred = predict_cpu(analyse(model), t, precision)
        data = profile(
            model_version=MODEL_VERSION,
            kind="cpu",
            device=t.model,
            cores=t.threads,
            clock_mhz=t.clock_mhz,
            batch_size=pred.batch_size,
            latency_ms=round(pred.latency_ms, 6),
            clock_scaled_ms=0.0,  # `farm lab set` moves the DPU clock, not the ARM cores'
            fps_mt=round(pred.fps_mt, 3),
            utilisation_st=round(pred.utilisation_st, 4),
            utilisation_mt=round(pred.utilisation_mt, 4),
            subgraphs=0,
            cpu_ops=[],
            warnings=[],
        )
        return data, {"latency_ms_1t": round(pred.latency_ms_1t, 6)}, []
