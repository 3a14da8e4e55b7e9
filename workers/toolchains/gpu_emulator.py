"""The emulated GPU compiler: ONNX Runtime's fp32 optimisation or int8 quantisation (the CPU toolchain's
code) plus timing from the GPU roofline (farm/dpu/gpu.py), written as the ``farm.emulation`` profile.

Per target (``gpu_emulator@<board type>``): peak figures, bandwidth and host CPU come from the catalog.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from farm.errors import ModelError
from workers.toolchains.base import CompileResult, QuantConfig, check_precision
from workers.toolchains.emulation import EmulatorToolchain, profile, write_profile


class GpuEmulatorToolchain(EmulatorToolchain):
    name = "gpu_emulator"
    precisions = ("fp32", "int8")

    def _resolve(self, board: str):
        from farm.dpu.gpu import gpu_target

        return gpu_target(board)

    def version(self) -> str:
        import onnxruntime

        from farm.dpu.gpu import MODEL_VERSION

        return f"gpu_emulator-{MODEL_VERSION}+onnxruntime-{onnxruntime.__version__}"

    def compile(
        self, model: onnx.ModelProto, precision: str, quant: QuantConfig, out_dir: Path
    ) -> CompileResult:
        from farm.dpu.gpu import MODEL_VERSION, predict_gpu
        from farm.dpu.graph import analyse
        from workers.toolchains.onnxruntime_cpu import OnnxRuntimeCpuToolchain

        check_precision(precision, self.precisions)
        if self._target is None:
            raise ModelError("gpu_emulator needs a target board type (gpu_emulator@<board type>)")
        t = self._target
        pred = predict_gpu(analyse(model), t, precision)
        result = OnnxRuntimeCpuToolchain().compile(model, precision, quant, Path(out_dir))
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
        write_profile(result.path, data)
        details = {**result.details, "emulation": data, "board": t.board, "target_arch": t.arch}
        return CompileResult(
            path=result.path, fidelity=result.fidelity, warnings=result.warnings, details=details
        )
