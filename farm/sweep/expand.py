"""Expand a sweep into jobs: one compile job per (model, precision, target, batch), run jobs depending on it."""

from __future__ import annotations

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


def expand(spec: Sweep) -> list[PlannedJob]:
    jobs: list[PlannedJob] = []
    for ref in spec.models:
        for precision in spec.precisions:
            for target in spec.targets:
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
