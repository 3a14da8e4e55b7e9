"""What is to be served: the model, the precisions allowed, an accuracy floor and exactly one target.

Why a class of its own: the CLI, the dashboard and the tests build the same question, and every check on it
lives here, so a bad one is refused with one clear message (exit 2) before the database is read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from farm.errors import SweepError

Kind = Literal["server", "offline", "single_stream"]
PRECISIONS = ("int8", "fp16", "bf16", "fp32")  # fp16 / bf16: GPU runs (torch_cuda, imported)


class ProcureError(SweepError):
    """A procurement question the farm cannot answer as asked (bad input, nothing meets the SLA): the user's
    to fix, so exit 2 like any bad input. ``field`` names the CLI option or the file field."""


@dataclass(frozen=True)
class Workload:
    """One question. Exactly one of (p99_ms with qps), offline_ips, latency_ms is set (:func:`workload`)."""

    model: str
    kind: Kind
    precisions: tuple[str, ...] = PRECISIONS
    p99_ms: float | None = None  # Server: the bound on the 99th percentile latency
    qps: float | None = None  # Server: the arrival rate to serve (queries/s, one query = one batch)
    offline_ips: float | None = None  # Offline: images/s to sustain
    latency_ms: float | None = None  # SingleStream: the bound on p99 latency of each stream
    streams: int = 1  # SingleStream: concurrent independent streams, one board each
    batch_size: int = 1
    min_top1: float | None = None  # floor on accuracy_top1
    min_agreement: float | None = None  # floor on INT8-vs-FP32 top-1 agreement
    include_flagged: bool = False  # use runs flagged noisy-host: / unstable: too
    boards: tuple[str, ...] | None = None  # None: every board type in the catalog

    @property
    def demand(self) -> float:
        """The load to serve in the capacity's unit: queries/s, images/s, or streams."""
        if self.kind == "server":
            return float(self.qps or 0)
        if self.kind == "offline":
            return float(self.offline_ips or 0)
        return float(self.streams)

    @property
    def bound_ms(self) -> float | None:
        return (
            self.p99_ms
            if self.kind == "server"
            else self.latency_ms
            if self.kind == "single_stream"
            else None
        )

    @property
    def capacity_unit(self) -> str:
        return {"server": "queries/s", "offline": "images/s", "single_stream": "streams"}[self.kind]

    def describe(self) -> str:
        if self.kind == "server":
            what = f"Server p99 <= {self.p99_ms:g} ms at {self.qps:g} queries/s"
        elif self.kind == "offline":
            what = f"Offline {self.offline_ips:g} images/s"
        else:
            what = f"SingleStream p99 <= {self.latency_ms:g} ms, {self.streams} stream(s)"
        return f"{self.model} {'/'.join(self.precisions)} batch {self.batch_size}: {what}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["precisions"] = list(self.precisions)
        d["boards"] = list(self.boards) if self.boards else None
        d["demand"] = self.demand
        d["describe"] = self.describe()
        return d


def _positive(value: float | None, option: str) -> float | None:
    if value is None:
        return None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ProcureError(f"must be a positive number, got {value!r}", field=option)
    return float(value)


def _ratio(value: float | None, option: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or not math.isfinite(value) or not 0 < value <= 1:
        raise ProcureError(f"must be a ratio in (0, 1], got {value!r}", field=option)
    return float(value)


def workload(
    model: str,
    *,
    precisions: tuple[str, ...] | list[str] | None = None,
    p99_ms: float | None = None,
    qps: float | None = None,
    offline_ips: float | None = None,
    latency_ms: float | None = None,
    streams: int | None = None,
    batch_size: int = 1,
    min_top1: float | None = None,
    min_agreement: float | None = None,
    include_flagged: bool = False,
    boards: tuple[str, ...] | list[str] | None = None,
) -> Workload:
    """A checked Workload; ProcureError naming the option (``--qps``) for anything wrong."""
    if not model or not isinstance(model, str):
        raise ProcureError("a model name is required", field="--model")
    chosen = tuple(dict.fromkeys(precisions or PRECISIONS))
    for p in chosen:
        if p not in PRECISIONS:
            raise ProcureError(
                f"unknown precision {p!r} (one of {', '.join(PRECISIONS)})", field="--precision"
            )
    server = p99_ms is not None or qps is not None
    kinds = [k for k, given in (("server", server), ("offline", offline_ips is not None),
                                ("single_stream", latency_ms is not None)) if given]  # fmt: skip
    if len(kinds) != 1:
        raise ProcureError(
            "give exactly one target: a Server SLA (--p99-ms and --qps), an Offline throughput "
            "(--offline-ips) or a SingleStream bound (--latency-ms [--streams N])"
            + (f"; got {' and '.join(kinds)}" if kinds else ""),
            field="--p99-ms/--qps/--offline-ips/--latency-ms",
        )
    kind: Kind = kinds[0]  # type: ignore[assignment]
    if kind == "server" and (p99_ms is None or qps is None):
        raise ProcureError(
            "a Server SLA needs both --p99-ms and --qps", field="--p99-ms" if p99_ms is None else "--qps"
        )
    if streams is not None and kind != "single_stream":
        raise ProcureError("--streams applies to a SingleStream bound (--latency-ms) only", field="--streams")
    n_streams = 1 if streams is None else streams
    if not isinstance(n_streams, int) or isinstance(n_streams, bool) or n_streams < 1:
        raise ProcureError(f"must be a whole number >= 1, got {n_streams!r}", field="--streams")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ProcureError(f"must be a whole number >= 1, got {batch_size!r}", field="--batch")
    if min_top1 is not None and min_agreement is not None:
        raise ProcureError("give one accuracy floor: --min-top1 or --min-agreement", field="--min-top1")
    return Workload(
        model=model,
        kind=kind,
        precisions=chosen,
        p99_ms=_positive(p99_ms, "--p99-ms"),
        qps=_positive(qps, "--qps"),
        offline_ips=_positive(offline_ips, "--offline-ips"),
        latency_ms=_positive(latency_ms, "--latency-ms"),
        streams=n_streams,
        batch_size=batch_size,
        min_top1=_ratio(min_top1, "--min-top1"),
        min_agreement=_ratio(min_agreement, "--min-agreement"),
        include_flagged=include_flagged,
        boards=tuple(dict.fromkeys(boards)) if boards else None,
    )
