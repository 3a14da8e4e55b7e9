"""Expand a sweep into jobs: one compile job per (model, precision, target, batch), run jobs depending on it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from farm.sweep.schema import Sweep


@dataclass(frozen=True)
class PlannedJob:
    key: str
    kind: str  # compile | run
    model: str
    precision: str
    target: str
    batch_size: int
    scenario: str | None = None
    repeat: int | None = None
    depends_on: str | None = None  # key of the compile job


def expand(spec: Sweep, precisions_of: Mapping[str, Collection[str]] | None = None) -> list[PlannedJob]:
    """Every job of the sweep. ``precisions_of`` (target -> the precisions its board type runs, from the
    catalog) drops the combinations a target cannot run, e.g. fp32 on a DPU (validation warns about them)."""
    jobs: list[PlannedJob] = []
    for ref in spec.models:
        for precision in spec.precisions:
            for target in spec.targets:
                if precisions_of is not None and precision not in precisions_of.get(target, (precision,)):
                    continue
                for batch in spec.batch_sizes:
                    ckey = f"compile/{ref.name}/{precision}/{target}/b{batch}"
                    jobs.append(PlannedJob(ckey, "compile", ref.name, precision, target, batch))
                    for scenario in spec.scenarios:
                        for repeat in range(spec.repeats):
                            jobs.append(
                                PlannedJob(
                                    f"run/{ref.name}/{precision}/{target}/b{batch}/{scenario}/r{repeat}",
                                    "run",
                                    ref.name,
                                    precision,
                                    target,
                                    batch,
                                    scenario=scenario,
                                    repeat=repeat,
                                    depends_on=ckey,
                                )
                            )
    return jobs
