"""The emulated DPU compiler: INT8 quantisation (ONNX Runtime's, as the CPU toolchain does it), a DPU plan
(farm/perfmodel: partitioning by the Vitis AI operator rules) and timing from the calibrated performance model,
written into ONE .onnx artifact as the ``farm.emulation`` profile the emulated backend paces to.

Per target: ``dpu_emulator@<board type>`` reads the board's DPU (ip, config, cores, clock), memory and host
CPU from the catalog, so the artifact (key: target_arch such as ``DPUCZDX8G-B4096x2@300MHz``) differs per
configuration. A model that cannot fit the board's memory fails here with the reason (ModelError).
"""

from __future__ import annotations

import onnx

from farm.workers.toolchains.emulation import EmulatorToolchain, digest, profile


class DpuEmulatorToolchain(EmulatorToolchain):
    name = "dpu_emulator"
    precisions = ("int8",)

    def _resolve(self, board: str):
        from farm.perfmodel.target import dpu_target

        return dpu_target(board)

    def version(self) -> str:
        import onnxruntime

        from farm.perfmodel.calibration import CALIBRATED
        from farm.perfmodel.perf import MODEL_VERSION

        return f"dpu_emulator-{MODEL_VERSION}-{digest(CALIBRATED.as_dict())}+onnxruntime-{onnxruntime.__version__}"

    def _predict(self, model: onnx.ModelProto, precision: str) -> tuple[dict, dict, list[str]]:
        from farm.perfmodel.api import plan_model
        from farm.perfmodel.perf import MODEL_VERSION, predict_plan

        target = self._target
        plan = plan_model(model, target)  # ModelError when it does not fit
        pred = predict_plan(plan, target)
        data = profile(
            model_version=MODEL_VERSION,
            kind="dpu",
            device=target.dpu.name,
            cores=target.cores,
            clock_mhz=target.clock_mhz,
            batch_size=pred.batch_size,
            latency_ms=round(pred.latency_ms, 6),
            clock_scaled_ms=round(pred.clock_scaled_ms, 6),
            fps_mt=round(pred.fps_mt, 3),
            utilisation_st=round(pred.utilisation_st, 4),
            utilisation_mt=round(pred.utilisation_mt, 4),
            subgraphs=pred.subgraphs,
            cpu_ops=list(pred.cpu_ops),
            warnings=list(pred.warnings),
        )
        extra = {
            "fps_st": round(pred.fps_st, 3),
            "dpu_ms": round(pred.dpu_ms, 4),
            "host_ms": round(pred.host_ms, 4),
            "bound_mt": pred.bound_mt,
        }
        return data, extra, list(pred.warnings)
