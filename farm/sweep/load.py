"""Load and validate a sweep file: everything a user can get wrong is found here, before anything is written."""

from __future__ import annotations

import hashlib
import importlib.util
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from farm.errors import ModelError, SweepError
from farm.inventory import Inventory
from farm.sweep.expand import planned_job_count
from farm.sweep.explain import all_at_once, did_you_mean, explain_all
from farm.sweep.paths import PathError, probe, resolve_path, system_folder
from farm.sweep.schema import ModelRef, Sweep
from farm.sweep.yaml_lines import Path_, dotted, line_for, load_with_lines, read_yaml_text
from farm.targets import host_type
from farm.workers.agent import protocol

#: Jobs one sweep may plan unless the submitter raises it (farm submit --max-jobs, FARM_MAX_JOBS): a typo
#: such as batch_sizes with 40 entries should not fill the queues with 200,000 jobs.
DEFAULT_MAX_JOBS = 10_000
_FACTORS = ("models", "precisions", "targets", "batch_sizes", "scenarios")


@dataclass(frozen=True)
class LoadedSweep:
    spec: Sweep
    source: str
    text: str
    base_dir: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(self.spec.model_dump_json().encode()).hexdigest()

    def resolve(self, path: str) -> Path:
        """A path named in the sweep: absolute as given, else relative to the sweep file's folder.
        PathError (a ValueError) when it cannot be (``~nobody/x``, too long); nothing is read."""
        return resolve_path(self.base_dir, path)

    def model_path(self, ref: ModelRef) -> Path | None:
        """An .onnx or checkpoint path, resolved against the sweep file's folder."""
        raw = ref.onnx or ref.checkpoint
        return None if raw is None else self.resolve(raw)


def load_sweep(path: str | Path, inventory: Inventory, *, max_jobs: int = DEFAULT_MAX_JOBS) -> LoadedSweep:
    """The sweep file, validated; SweepError (file:line: field) for anything wrong, and no other exception."""
    path = Path(path)
    try:
        str(path.absolute()).encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: no database could store where it came from
        shown = str(path).encode("utf-8", "backslashreplace").decode()
        raise SweepError("the sweep file's path is not valid UTF-8: rename it", path=shown) from None
    text = read_yaml_text(path, what="sweep file")
    try:
        base_dir = path.resolve().parent
    except (OSError, RuntimeError) as exc:
        raise SweepError(f"cannot resolve the sweep file's folder: {exc}", path=str(path)) from None
    return parse_sweep(text, str(path), base_dir, inventory, max_jobs=max_jobs)


def parse_sweep(
    text: str, source: str, base_dir: Path, inventory: Inventory, *, max_jobs: int = DEFAULT_MAX_JOBS
) -> LoadedSweep:
    """Validate a sweep's text: schema, targets, the planned job count (at most ``max_jobs``), models and
    datasets, in that order (cheap checks first, so a refused sweep never reads a dataset)."""
    data, lines = load_with_lines(text, source)
    if data is None:
        raise SweepError("the sweep is empty", path=source, line=1)
    if not isinstance(data, dict):
        raise SweepError(
            f"a sweep must be a YAML mapping (name:, models:, ...), not a {type(data).__name__}",
            path=source,
            line=1,
        )

    def fail(message: str, loc: Path_) -> SweepError:
        return SweepError(message, path=source, line=line_for(lines, loc), field=dotted(loc) or None)

    try:
        spec = Sweep.model_validate(data)
    except ValidationError as exc:
        raise all_at_once([fail(msg, loc) for msg, loc in explain_all(exc.errors(), Sweep)]) from None

    loaded = LoadedSweep(spec=spec, source=source, text=text, base_dir=base_dir)
    _check_targets(loaded, inventory, fail)
    _check_sensor_windows(loaded, inventory)
    _check_job_count(spec, inventory, max_jobs, fail)
    _check_models(loaded, fail)
    loaded = _check_dataset(loaded, fail)
    return _check_calibration_dataset(loaded, fail)


def _check_targets(loaded: LoadedSweep, inventory: Inventory, fail) -> None:
    spec = loaded.spec
    valid_targets = inventory.targets()
    for i, target in enumerate(spec.targets):
        if target not in valid_targets and not (
            host_type(target) in valid_targets and target in inventory.board_types
        ):  # a board's own CPU (`pynq-z2:cpu`, `pynq-z2:cpu:1`) runs where a board of its type is
            cpus = [f"{t}:cpu" for t in valid_targets if f"{t}:cpu" in inventory.board_types]
            kind = host_type(target)
            if kind in dict.keys(inventory.board_types) and kind not in valid_targets:
                # a known type with no board here: how to get one (with one, the target itself is wrong)
                raise fail(
                    f"no {kind} board in this lab ({inventory.base_dir}; its targets: {', '.join(valid_targets)}): "
                    f"start emulated ones with `farm lab up --boards {kind}` and export the FARM_LAB it prints, "
                    f"or point FARM_LAB at a lab file that lists a {kind}",
                    ("targets", i),
                )
            raise fail(
                f"unknown target {target!r}{did_you_mean(target, [*valid_targets, *dict.keys(inventory.board_types)])}"
                f"; valid targets: {', '.join(valid_targets)}"
                + (f" (and each board's own CPU: {', '.join(cpus)}, or :cpu:<threads>)" if cpus else ""),
                ("targets", i),
            )
        runs = inventory.board_types[target].precisions
        skipped = [p for p in spec.precisions if p not in runs]
        if len(skipped) == len(spec.precisions):
            raise fail(
                f"target {target!r} runs {', '.join(runs)} only; this sweep asks for {', '.join(skipped)}",
                ("targets", i),
            )
        if skipped:
            loaded.warnings.append(
                f"{', '.join(skipped)} skipped on {target} (it runs {', '.join(runs)} only)"
            )
    if "int8" in spec.precisions and spec.quantization.calibration_samples < 100:
        loaded.warnings.append(
            f"quantization.calibration_samples is {spec.quantization.calibration_samples} (< 100): INT8 scales may be poor"
        )
    if "Server" in spec.scenarios and "server_target_latency_ms" not in spec.loadgen.model_fields_set:
        loaded.warnings.append(
            f"Server without loadgen.server_target_latency_ms: the p{spec.loadgen.server_target_latency_percentile:g}"
            f" bound is LoadGen's default, {spec.loadgen.server_target_latency_ms:g} ms"
        )


def _check_sensor_windows(loaded: LoadedSweep, inventory: Inventory) -> None:
    """A warning per target whose sensor cannot take its minimum samples in ``min_duration_ms``: its
    figures would be left out of every run (e.g. the U50's xbutil at 4 Hz needs 5 samples: 1.25 s)."""
    duration_s = loaded.spec.loadgen.min_duration_ms / 1000.0
    for target in loaded.spec.targets:
        for spec in inventory.board_types[target].sensors:
            kind = protocol.sensor_kind(spec)
            if kind is None:
                continue
            needed_s = protocol.sensor_min_window_s(kind.kind)
            if duration_s < needed_s:
                loaded.warnings.append(
                    f"loadgen.min_duration_ms {loaded.spec.loadgen.min_duration_ms:g} is too short for {target}'s "
                    f"{spec} sensor ({'/'.join(kind.provides)}): it needs {protocol.SENSOR_MIN_SAMPLES} samples "
                    f"at {protocol.sensor_min_window_s(kind.kind) / protocol.SENSOR_MIN_SAMPLES * 1000:g} ms, so "
                    f"its figures would be left out; use min_duration_ms >= {math.ceil(needed_s * 1000)}"
                )


def _check_job_count(spec: Sweep, inventory: Inventory, max_jobs: int, fail) -> None:
    """The cap on planned jobs, counted without planning them (a refused sweep costs nothing)."""
    planned = planned_job_count(spec, inventory.precisions_of(spec.targets))
    if planned <= max_jobs:
        return
    sizes = ", ".join(f"{len(getattr(spec, f))} {f}" for f in _FACTORS)
    biggest = max(_FACTORS, key=lambda f: len(getattr(spec, f)))
    raise fail(
        f"this sweep would plan {planned:,} jobs ({sizes}), more than the cap of {max_jobs:,}: split it "
        f"into smaller sweeps, or raise the cap (farm submit --max-jobs {planned}, or FARM_MAX_JOBS)",
        (biggest,),
    )


def _dataset_root(loaded: LoadedSweep, raw: str, fail, where: Path_) -> Path:
    """A dataset folder named in the sweep, made absolute, and refused without reading anything when it is
    a system folder or a virtual filesystem (``/``, ``/usr``, ``/proc``): walking those never ends."""
    try:
        root = loaded.resolve(raw)
        refused = system_folder(root)
        kind = probe(root)
    except PathError as exc:
        raise fail(str(exc), where) from None
    if refused:
        raise fail(refused, where)
    if kind == "missing":
        raise fail(f"dataset folder not found: {root}", where)
    if kind != "dir":
        raise fail(f"dataset is not a folder: {root}", where)
    return root


def _check_dataset(loaded: LoadedSweep, fail) -> LoadedSweep:
    """The dataset folder (relative to the sweep file) exists, has classes and images that all decode, and
    no more classes than any model has outputs. Returns the sweep with the folder's absolute path, so a
    worker elsewhere reads the same folder (farm/datasets/imagefolder.py)."""
    spec = loaded.spec
    if spec.dataset is None:
        return loaded
    from farm.datasets.imagefolder import DatasetError, check

    root = _dataset_root(loaded, spec.dataset.path, fail, ("dataset", "path"))
    try:
        folder = check(root)
        for ref in spec.models:
            outputs = _model_outputs(loaded, ref)
            if outputs is not None and len(folder.classes) > outputs:
                raise DatasetError(
                    f"{root} has {len(folder.classes)} classes but model {ref.name!r} has {outputs} outputs"
                )
    except DatasetError as exc:
        raise fail(str(exc), ("dataset", exc.field)) from None
    dataset = spec.dataset.model_copy(update={"path": str(root)})
    return replace(loaded, spec=spec.model_copy(update={"dataset": dataset}))


def _check_calibration_dataset(loaded: LoadedSweep, fail) -> LoadedSweep:
    """``quantization.calibration_dataset``: the folder is checked as ``dataset:`` is (labels unused) and
    made absolute. Given as a bare path it takes the ``dataset:`` preprocessing, so calibration sees inputs
    prepared as the evaluation's are. Warns when it is the evaluation folder itself or when it holds fewer
    images than ``calibration_samples``."""
    spec = loaded.spec
    cal = spec.quantization.calibration_dataset
    if cal is None:
        return loaded
    from farm.datasets.imagefolder import DatasetError, check

    where = ("quantization", "calibration_dataset")
    try:
        root = _dataset_root(loaded, cal.path, fail, (*where, "path"))
    except SweepError as exc:
        raise fail(f"calibration dataset: {exc.reason}", (*where, "path")) from None
    try:
        folder = check(root)
    except DatasetError as exc:
        raise fail(f"calibration dataset: {exc}", (*where, exc.field)) from None
    update: dict = {"path": str(root)}
    if "preprocessing" not in cal.model_fields_set and spec.dataset is not None:
        update["preprocessing"] = spec.dataset.preprocessing
    if "int8" not in spec.precisions:
        loaded.warnings.append("quantization.calibration_dataset is unused: the sweep has no int8 precision")
    if spec.dataset is not None and Path(spec.dataset.path) == root:
        loaded.warnings.append(
            "quantization.calibration_dataset is the evaluation dataset: calibrating on the images that are "
            "then scored flatters INT8 accuracy (MLPerf calibrates on a separate set)"
        )
    if len(folder.files) < spec.quantization.calibration_samples:
        loaded.warnings.append(
            f"the calibration dataset has {len(folder.files)} images, fewer than calibration_samples "
            f"({spec.quantization.calibration_samples}): INT8 calibrates on {len(folder.files)}"
        )
    quantization = spec.quantization.model_copy(update={"calibration_dataset": cal.model_copy(update=update)})
    return replace(loaded, spec=spec.model_copy(update={"quantization": quantization}))


def _model_outputs(loaded: LoadedSweep, ref: ModelRef) -> int | None:
    """Classes the model predicts (its output's size per image), when known before compiling."""
    if ref.zoo:
        from farm.zoo.registry import get_zoo_model

        return get_zoo_model(ref.zoo).num_classes
    if ref.onnx:
        import onnx

        try:
            model = onnx.load(str(loaded.model_path(ref)), load_external_data=False)
        except Exception:  # already checked by _check_models; a file changed since is the worker's to report
            return None
        if not model.graph.output:
            return None
        dims = model.graph.output[0].type.tensor_type.shape.dim
        sizes = [d.dim_value for d in dims[1:]]
        return math.prod(sizes) if sizes and all(v > 0 for v in sizes) else None
    return None


def _torch_available() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # sys.modules["torch"] is None: import blocked
        return False


def _model_file(loaded: LoadedSweep, ref: ModelRef, fail, where: Path_) -> Path:
    """An .onnx or checkpoint file named in the sweep: resolved and probed (one stat), a regular file."""
    try:
        path = loaded.model_path(ref)
        assert path is not None
        kind = probe(path)
    except PathError as exc:
        raise fail(str(exc), where) from None
    what = "checkpoint" if where[-1] == "checkpoint" else "model file"
    if kind == "missing":
        raise fail(f"{what} not found: {path}", where)
    if kind != "file":
        raise fail(f"{what} is not a regular file: {path}", where)
    return path


def _check_models(loaded: LoadedSweep, fail) -> None:
    from farm.zoo.registry import get_zoo_model, zoo_names
    from farm.zoo.user import inspect_onnx_file

    spec = loaded.spec
    seen: dict[str, int] = {}
    for i, ref in enumerate(spec.models):
        if ref.name in seen:
            raise fail(f"duplicate model name {ref.name!r} (also models[{seen[ref.name]}])", ("models", i))
        seen[ref.name] = i
        try:
            if ref.zoo:
                try:
                    get_zoo_model(ref.zoo)
                except ModelError:
                    raise ModelError(
                        f"unknown zoo model {ref.zoo!r}{did_you_mean(ref.zoo, zoo_names())}; valid names: "
                        f"{', '.join(zoo_names())}"
                    ) from None
            elif ref.onnx:
                info = inspect_onnx_file(_model_file(loaded, ref, fail, ("models", i, "onnx")))
                batch = info.input_shape[0]
                wrong = [b for b in spec.batch_sizes if batch is not None and b != batch]
                if wrong:
                    raise ModelError(
                        f"{ref.onnx} has a fixed batch size of {batch}; it cannot run batch_sizes {wrong} "
                        "(export it with a symbolic batch dimension, or list one sweep per batch)"
                    )
            else:
                if not _torch_available():
                    raise ModelError("PyTorch models need the torch extra: pip install -e '.[torch]'")
                if ref.checkpoint is not None:
                    _model_file(loaded, ref, fail, ("models", i, "checkpoint"))
        except (ModelError, OSError) as exc:
            raise fail(str(exc), ("models", i, ref.kind) if ref.kind != "zoo" else ("models", i)) from None
