"""The emulated GPU compiler: ONNX Runtime's fp32 optimisation or int8 quantisation (the CPU toolchain's
code) plus timing from the GPU roofline (farm/perfmodel/gpu.py), written as the ``farm.emulation`` profile.

Per target (``gpu_emulator@<board type>``): peak figures, bandwidth and host CPU come from the catalog.
"""

from __future__ import annotations

import onnx

from farm.workers.toolchains.emulation import EmulatorToolchain, profile


class GpuEmulatorToolchain(EmulatorToolchain):
    name = "gpu_emulator"
    precisions = ("fp32", "int8")

    def _resolve(self, board: str):
        from farm.perfmodel.gpu import gpu_target

        return gpu_target(board)

    def version(self) -> str:
        import onnxruntime

        from farm.perfmodel.gpu import MODEL_VERSION

        return f"gpu_emulator-{MODEL_VERSION}+onnxruntime-{onnxruntime.__version__}"

    def _predict(self, model: onnx.ModelProto, precision: str) -> tuple[dict, dict, list[str]]:
        from farm.perfmodel.gpu import MODEL_VERSION, predict_gpu
        from farm.perfmodel.graph import analyse

        t = self._target
        pred = predict_gpu(analyse(model), t, precision)
        data = profile(
            model_version=MODEL_VERSION,
            kind="gpu",
            device=t.device,
            cores=t.sms,
            clock_mhz=t.clock_mhz,
            batch_size=pred.batch_size,
            latency_ms=round(pred.latency_ms, 6),
            clock_scaled_ms=round(pred.clock_scaled_ms, 6),
            fps_mt=round(pred.fps_mt, 3),
            utilisation_st=round(pred.utilisation_st, 4),
            utilisation_mt=round(pred.utilisation_mt, 4),
            subgraphs=1,
            cpu_ops=[],
            warnings=[],
        )
        return data, {}, []
