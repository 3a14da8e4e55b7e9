"""Expand a sweep into jobs: one compile job per (model, precision, target, batch), run jobs depending on it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from farm.sweep.schema import Sweep


@dataclass(frozen=True)
class PlannedJob:
    key: str
    kind: str  # compile | run | soak
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
                        for repeat in range(initial_repeats(spec)):
                            jobs.append(
                                PlannedJob(
                                    repeat_key(ref.name, precision, target, batch, scenario, repeat),
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
                    if spec.thermal is not None:  # one soak run per configuration (farm.services.soak)
                        scenario = spec.thermal.scenario
                        jobs.append(
                            PlannedJob(
                                f"{SOAK_PREFIX}{ref.name}/{precision}/{target}/b{batch}/{scenario}",
                                "soak",
                                ref.name,
                                precision,
                                target,
                                batch,
                                scenario=scenario,
                                repeat=0,
                                depends_on=ckey,
                            )
                        )
    return jobs


SOAK_PREFIX = "soak/"


def planned_job_count(spec: Sweep, precisions_of: Mapping[str, Collection[str]] | None = None) -> int:
    """``len(expand(spec, precisions_of))`` without building the jobs: the job cap is checked with it, so a
    sweep of a million jobs is refused in microseconds, not after planning them."""
    pairs = sum(
        1
        for precision in spec.precisions
        for target in spec.targets
        if precisions_of is None or precision in precisions_of.get(target, (precision,))
    )
    per_config = 1 + len(spec.scenarios) * initial_repeats(spec) + (1 if spec.thermal is not None else 0)
    return len(spec.models) * pairs * len(spec.batch_sizes) * per_config


def initial_repeats(spec: Sweep) -> int:
    """Run jobs planned per configuration up front: `repeats`, or stability's minimum (farm.services.stability
    adds more as results come in)."""
    return spec.stability.min_repeats if spec.stability is not None else spec.repeats


def repeat_key(model: str, precision: str, target: str, batch: int, scenario: str, repeat: int) -> str:
    return f"run/{model}/{precision}/{target}/b{batch}/{scenario}/r{repeat}"
