"""The sweep.yaml schema: what a user may write, with defaults that finish in reasonable time."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from farm.sweep.labels import LabelKey, LabelValue

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Precision = Literal["fp32", "int8"]
Scenario = Literal["SingleStream", "MultiStream", "Server", "Offline"]
SCENARIOS: tuple[str, ...] = ("SingleStream", "MultiStream", "Server", "Offline")
INT32_MAX = 2**31 - 1  # every integer a sweep gives fits the database's INTEGER columns and LoadGen's fields
PATH_CHARS = 4096

# Bounded numbers: a value the database, LoadGen or numpy would refuse later (with a traceback, on a
# worker) is refused here instead, with its line.
Count = Annotated[int, Field(gt=0, le=INT32_MAX)]
BatchSize = Annotated[int, Field(gt=0, le=4096)]
Millis = Annotated[float, Field(gt=0, le=3_600_000, description="ms, at most an hour")]
Rate = Annotated[float, Field(gt=0, le=1e9, description="queries per second")]


class Strict(BaseModel):
    # allow_inf_nan=False: "inf" or "nan" typed as a string is refused like YAML's .inf (PostgreSQL and
    # JSON cannot store them).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelRef(Strict):
    """One model: a zoo name, an .onnx file, or a PyTorch `module:Class` (torch extra)."""

    name: str = Field(pattern=NAME)
    zoo: str | None = None
    onnx: str | None = Field(default=None, min_length=1, max_length=PATH_CHARS)
    torch: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", max_length=256)
    checkpoint: str | None = Field(default=None, min_length=1, max_length=PATH_CHARS)
    input_shape: tuple[Annotated[int, Field(gt=0, le=65536)], ...] | None = Field(
        default=None, min_length=1, max_length=8, description="C,H,W for torch models"
    )
    python_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=PATH_CHARS,
        description="folder to import the torch module from (default: the sweep's)",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        if isinstance(value, str):
            return {"name": value, "zoo": value}
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelRef:
        sources = [s for s in ("zoo", "onnx", "torch") if getattr(self, s)]
        if len(sources) == 0:
            # `- name: resnet18` alone means the zoo model of that name.
            object.__setattr__(self, "zoo", self.name)
        elif len(sources) > 1:
            raise ValueError(f"give exactly one of zoo, onnx, torch (got {', '.join(sources)})")
        if self.torch and not self.input_shape:
            raise ValueError("a torch model needs input_shape (C, H, W)")
        if (self.checkpoint or self.python_path) and not self.torch:
            raise ValueError("checkpoint and python_path are only for torch models")
        return self

    @property
    def kind(self) -> str:
        return "zoo" if self.zoo else "onnx" if self.onnx else "torch"


Percentile = Annotated[float, Field(gt=0, lt=100, description="percent, in (0, 100)")]


class LoadGen(Strict):
    """MLPerf LoadGen settings, under LoadGen's TestSettings names (docs/scenarios.md). Defaults are short
    runs; MLPerf submissions use min_duration_ms=600000. Percentiles are in percent (LoadGen takes a
    fraction); latencies in ms (LoadGen's *_ns / 1e6)."""

    min_duration_ms: int = Field(default=2000, gt=0, le=86_400_000)  # at most a day
    min_query_count: Count = 64
    max_query_count: int = Field(default=0, ge=0, le=INT32_MAX)
    target_latency_ms: Millis | None = None  # SingleStream: single_stream_expected_latency_ns
    offline_expected_qps: Rate | None = None
    multi_stream_samples_per_query: int = Field(default=8, gt=0, le=4096)
    multi_stream_target_latency_percentile: Percentile = 99.0
    # Server: the bound p99 must stay under (LoadGen's own default, 100 ms, when not given), its
    # percentile, the search's first QPS (default: from the warmup) and its most probes.
    server_target_latency_ms: Millis = 100.0
    server_target_latency_percentile: Percentile = 99.0
    server_target_qps: Rate | None = None
    server_search_probes: int = Field(default=6, ge=1, le=20)

    @field_validator("max_query_count")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_query_count")
        if value and low and value < low:
            raise ValueError(f"max_query_count ({value}) is below min_query_count ({low}); 0 means no cap")
        return value


class Stability(Strict):
    """Repeat each configuration until the coefficient of variation of its headline metric (SingleStream
    p90, MultiStream at ``loadgen.multi_stream_target_latency_percentile``, Server max QPS, Offline
    throughput: farm.metrics.headline) is under ``cv_threshold_pct``, from
    ``min_repeats`` up to ``max_repeats`` runs (docs/stability-and-provenance.md)."""

    cv_threshold_pct: PositiveFloat = Field(default=3.5, le=100)
    min_repeats: int = Field(default=3, ge=2, le=100)
    max_repeats: int = Field(default=10, ge=2, le=100)

    @model_validator(mode="after")
    def _order(self) -> Stability:
        if self.max_repeats < self.min_repeats:
            raise ValueError(f"max_repeats ({self.max_repeats}) is below min_repeats ({self.min_repeats})")
        return self


class Preprocessing(Strict):
    """How the farm turns a dataset image into the model's input (docs/accuracy.md): RGB (or L for one
    channel), resized to the model's size (or the shorter side to ``resize``, then a centre crop), pixel /
    255, minus ``mean``, divided by ``std``, then the channel order."""

    resize: int | None = Field(default=None, gt=0, le=8192)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = (0.229, 0.224, 0.225)
    channel_order: Literal["RGB", "BGR"] = "RGB"


class Dataset(Strict):
    """A labelled image folder, ImageFolder layout ``<class>/<image>``, relative to the sweep file; every
    run then reports top-1 / top-5 on it (LoadGen AccuracyOnly). ``dataset: path`` is short for
    ``dataset: {path: path}``."""

    path: str = Field(min_length=1, max_length=PATH_CHARS)
    preprocessing: Preprocessing = Preprocessing()

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        return {"path": value} if isinstance(value, str) else value


class Quantization(Strict):
    """INT8 quantisation. ``calibration_dataset`` (an image folder in the ``dataset:`` layout; labels are
    not used) gives the calibration inputs, as Vitis AI's vai_q and MLPerf expect: a set of its own, not
    the evaluation set. Without it the toolchains calibrate on synthetic image-like inputs."""

    calibration_samples: int = Field(default=200, gt=0, le=100_000)
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    per_channel: bool = True
    seed: int = Field(default=0, ge=0, le=2**32 - 1)  # numpy's seed range
    calibration_dataset: Dataset | None = None


class Thermal(Strict):
    """One soak run per configuration: sustained load for ``duration_s`` (board seconds) with the
    temperature and clock traced; steady state when the temperature's slope over ``window_s`` stays
    under ``steady_slope_c_per_min`` (docs/stability-and-provenance.md)."""

    duration_s: float = Field(default=600, gt=0, le=7200)
    # one sustained load: Server's bounded QPS search is many short tests, so it is not a soak scenario
    scenario: Literal["SingleStream", "MultiStream", "Offline"] = "SingleStream"
    window_s: float = Field(default=60, gt=0, le=7200)
    steady_slope_c_per_min: float = Field(default=0.2, gt=0, le=1000)


class Sweep(Strict):
    name: str = Field(pattern=NAME)
    description: str = ""
    models: list[ModelRef] = Field(min_length=1)
    precisions: list[Precision] = Field(min_length=1)
    targets: list[str] = Field(min_length=1)
    batch_sizes: list[BatchSize] = Field(default=[1], min_length=1)
    scenarios: list[Scenario] = Field(default=["SingleStream"], min_length=1)
    repeats: PositiveInt = Field(default=1, le=100)
    quantization: Quantization = Quantization()
    loadgen: LoadGen = LoadGen()
    stability: Stability | None = None  # off unless given; then `repeats` may not be given too
    thermal: Thermal | None = None  # one soak run per (model, precision, target, batch) when given
    dataset: Dataset | None = None  # top-1 / top-5 on a labelled image folder in every run (accuracy)
    # version labels (farm/sweep/labels.py): `farm submit --label` and a schedule's labels add to these
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)

    @model_validator(mode="after")
    def _repeats_or_stability(self) -> Sweep:
        if self.stability is not None and self.repeats != 1:  # 1 is the default (a stored spec carries it)
            raise ValueError(
                "give either repeats (a fixed count) or stability (repeat until stable), not both"
            )
        return self

    @field_validator("precisions", "targets", "batch_sizes", "scenarios")
    @classmethod
    def _no_duplicates(cls, values: list) -> list:
        dupes = sorted(str(v) for v, n in Counter(values).items() if n > 1)  # linear: lists may be long
        if dupes:
            raise ValueError(f"duplicate entries: {', '.join(dupes)}")
        return values

    @field_validator("scenarios", mode="before")
    @classmethod
    def _scenario_case(cls, values: object) -> object:
        """Accept any spelling case of a scenario name; store MLPerf's."""
        if isinstance(values, list):
            canon = {s.lower(): s for s in SCENARIOS}
            return [canon.get(v.lower(), v) if isinstance(v, str) else v for v in values]
        return values
