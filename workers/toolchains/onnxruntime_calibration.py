"""INT8 calibration for the ONNX Runtime toolchain: the calibration data (synthetic inputs, or a dataset
pack checked against its hash) as ORT CalibrationDataReaders, and calibration driven here in chunks with the
histogram sizes each method needs, writing ORT's calibration cache for ``quantize_static`` to read.

Apart from the toolchain (farm.workers.toolchains.onnxruntime_cpu) because it is the part that works around
ORT's quantisation internals (memory of the histogram methods, entropy's bin counts): see :func:`calibrate`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from farm.errors import ModelError
from farm.workers.toolchains.base import QuantConfig, few_samples_warnings
from farm.zoo.inputs import synthetic_inputs

_CHUNK_SAMPLES = 8  # calibration data per collect_data() call (histogram methods keep it all in memory)


class SyntheticReader:
    """CalibrationDataReader over ``synthetic_inputs``: full batches of the model's fixed batch size.

    Samples are generated lazily, one batch at a time; ``__len__``/``set_range`` (in batches) select a
    chunk.
    """

    def __init__(self, input_name: str, shape: tuple[int, ...], samples: int, seed: int):
        self.input_name = input_name
        self.batch = shape[0]
        self.sample_shape = shape[1:]
        self.seed = seed
        self.num_batches = math.ceil(samples / self.batch)
        self.set_range(0, self.num_batches)

    def __len__(self) -> int:
        return self.num_batches

    def set_range(self, start_index: int, end_index: int) -> None:
        self._next, self._end = start_index, min(end_index, self.num_batches)

    def get_next(self) -> dict | None:
        if self._next >= self._end:
            return None
        x = synthetic_inputs(self.sample_shape, self.batch, self.seed, start=self._next * self.batch)
        self._next += 1
        return {self.input_name: x}

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


class DatasetReader(SyntheticReader):
    """CalibrationDataReader over real inputs: ``inputs`` of a dataset pack (.npz), in an order shuffled by
    the quantisation seed (a pack is sorted by class), as many whole batches as ``samples`` asks for and
    the pack holds."""

    def __init__(self, input_name: str, shape: tuple[int, ...], samples: int, seed: int, inputs: np.ndarray):
        self.batch = shape[0]
        order = np.random.default_rng(seed).permutation(len(inputs))
        usable = min(samples, len(inputs)) // self.batch * self.batch
        self.inputs = inputs[np.sort(order[:usable])] if usable else inputs[:0]
        super().__init__(input_name, shape, usable, seed)

    def get_next(self) -> dict | None:
        if self._next >= self._end:
            return None
        start = self._next * self.batch
        self._next += 1
        return {self.input_name: np.ascontiguousarray(self.inputs[start : start + self.batch], np.float32)}


def calibration_reader(
    input_name: str, shape: tuple[int, ...], quant: QuantConfig
) -> tuple[SyntheticReader, list[str]]:
    """The reader ``quant`` asks for (its real calibration data, else synthetic inputs) and its warnings.
    Calibration data that is not what its hash says, or not shaped like the model's input, is a ModelError."""
    if quant.calibration_data is None:
        return SyntheticReader(input_name, shape, quant.calibration_samples, quant.seed), []
    path = Path(quant.calibration_data)
    try:
        data = path.read_bytes()  # read once: hashed, then unpacked
        digest = hashlib.sha256(data).hexdigest()
        with np.load(io.BytesIO(data), allow_pickle=False) as pack:
            inputs = pack["inputs"]
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"cannot read the calibration data {path.name}: {exc}") from None
    if digest != quant.calibration_sha256:
        raise ModelError(
            f"calibration data {path.name} has sha256 {digest}, expected {quant.calibration_sha256}"
        )
    if tuple(inputs.shape[1:]) != tuple(shape[1:]):
        raise ModelError(
            f"calibration inputs are {list(inputs.shape[1:])} per sample; the model takes {list(shape[1:])}"
        )
    batch = shape[0]
    if len(inputs) < batch:
        raise ModelError(f"calibration data has {len(inputs)} samples, fewer than one batch of {batch}")
    reader = DatasetReader(input_name, shape, quant.calibration_samples, quant.seed, inputs)
    warnings = []
    used = reader.num_batches * batch
    if used < quant.calibration_samples:
        warnings.append(
            f"calibration data holds {len(inputs)} samples: calibrating on {used}, not the "
            f"{quant.calibration_samples} asked for"
        )
    if not quant.warnings():  # the settings' own warning already says "too few" when it applies
        warnings.extend(few_samples_warnings(used))
    return reader, warnings


class QuietOrtQuantization(logging.Filter):
    """Drops onnxruntime.quantization's below-ERROR records (pre-processing advice and the like)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


def calibration_method(method: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]


def op_types_to_quantize() -> list[str]:
    """What ``quantize_static`` quantises by default (every op ORT has a QDQ or QLinear form for)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted(set(QDQRegistry) | set(QLinearOpsRegistry))


# create_calibrator options per method. minmax: ORT's defaults. entropy: KL-divergence threshold search
# over a 2048-bin histogram for 128 quantised bins (TensorRT's classic setting; slow: ~40 s of threshold
# search for resnet18 on 2 cores). percentile: ORT's defaults (2048 bins, symmetric, 99.999th percentile).
_CALIBRATOR_OPTIONS: dict[str, dict] = {
    "minmax": {},
    "entropy": {"num_bins": 2048, "num_quantized_bins": 128},
    "percentile": {"percentile": 99.999},
}


def _stride(batch: int) -> int:
    """Batches per calibration chunk (at least one)."""
    return max(1, _CHUNK_SAMPLES // batch)


def calibrate(model_path: Path, reader: SyntheticReader, method: str, tmp: Path) -> Path:
    """Runs calibration and writes ORT's calibration cache (JSON tensor ranges); returns its path.

    Driven here rather than inside ``quantize_static`` to (a) feed the data in chunks, which bounds
    the memory of the histogram methods (they keep every intermediate tensor of a chunk), and (b) set
    the histogram sizes: through ``quantize_static``, ORT's entropy calibration uses 128 bins for 128
    quantised bins, which leaves a single candidate threshold, i.e. plain min/max.
    """
    from onnxruntime.quantization import create_calibrator
    from onnxruntime.quantization.calibrate import save_tensors_data

    calibrator = create_calibrator(
        Path(model_path),
        op_types_to_quantize(),
        augmented_model_path=str(tmp / "augmented.onnx"),
        calibrate_method=calibration_method(method),
        extra_options=dict(_CALIBRATOR_OPTIONS[method]),
    )
    stride = _stride(reader.batch)
    for start in range(0, len(reader), stride):
        reader.set_range(start, start + stride)
        calibrator.collect_data(reader)
    ranges = calibrator.compute_data()
    cache = tmp / "calibration.json"
    save_tensors_data(ranges, cache)
    del calibrator
    return cache
