"""The published Vitis AI Model Zoo figures the DPU model is calibrated on, as shipped with farm.

A verbatim copy of ``shared/data/published_dpu_perf.csv`` (tests/farm/perfmodel checks that they agree where the
shared file exists), kept in a module so ``farm lab calibrate`` works from any installation.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CSV_TEXT = """\
# Published Vitis AI Model Zoo figures, for calibrating and checking the DPU performance model.
# fps_st = end-to-end frames/s with one thread, fps_mt = with several threads, latency_ms = end-to-end, one thread.
# ops_g = the zoo's own workload figure (GOP per frame). Sources are paths in the Xilinx/Vitis-AI repository at the tag named.
board,dpu,dpu_cores,clock_mhz,model,ops_g,input,latency_ms,fps_st,fps_mt,source
zcu104,DPUCZDX8G-B4096,2,300,resnet50,7.7,224x224,11.68,85.6,166.2,v2.0:models/AI-Model-Zoo/README.md
zcu104,DPUCZDX8G-B4096,2,300,resnet18,3.65,224x224,5.11,195.7,415.4,v2.0:models/AI-Model-Zoo/README.md
zcu104,DPUCZDX8G-B4096,2,300,inception_v1,3.16,224x224,5.19,192.5,405.9,v2.0:models/AI-Model-Zoo/README.md
zcu104,DPUCZDX8G-B4096,2,300,mobilenet_v2,0.59,224x224,3.74,267.3,611.5,v2.0:models/AI-Model-Zoo/README.md
vck190,DPUCVDX8G-C32B3,1,1250,resnet50,7.7,224x224,,898.4,1419.4,v2.0:models/AI-Model-Zoo/README.md
vck190,DPUCVDX8G-C32B3,1,1250,resnet18,3.65,224x224,,1310.6,2691.0,v2.0:models/AI-Model-Zoo/README.md
vck190,DPUCVDX8G-C32B3,1,1250,mobilenet_v2,0.59,224x224,,1348.4,2911.4,v2.0:models/AI-Model-Zoo/README.md
u50,DPUCAHX8H-2x3E,6,300,resnet50,7.7,224x224,,,647.1,v1.3:models/AI-Model-Zoo/README.md
u50,DPUCAHX8H-2x3E,6,300,resnet18,3.65,224x224,,,1484.2,v1.3:models/AI-Model-Zoo/README.md
u50,DPUCAHX8H-2x3E,6,300,inception_v1,3.16,224x224,,,1203.4,v1.3:models/AI-Model-Zoo/README.md
ultra96-v2,DPUCZDX8G-B1600,1,287,resnet50,7.7,224x224,30.8,32.5,33.5,v2.5:model_zoo/README.md
ultra96-v2,DPUCZDX8G-B1600,1,287,resnet18,3.65,224x224,13.47,74.2,77.8,v2.5:model_zoo/README.md
"""


@dataclass(frozen=True)
class PublishedRow:
    board: str
    dpu: str
    dpu_cores: int
    clock_mhz: float
    model: str
    ops_g: float
    input: str
    latency_ms: float | None
    fps_st: float | None
    fps_mt: float | None
    source: str

    @property
    def input_hw(self) -> tuple[int, int]:
        h, _, w = self.input.partition("x")
        return int(h), int(w)


def _num(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def _fields(r: dict[str, str]) -> dict[str, Any]:
    """The columns both published tables have, typed."""
    return {
        "board": r["board"],
        "dpu": r["dpu"],
        "dpu_cores": int(r["dpu_cores"]),
        "clock_mhz": float(r["clock_mhz"]),
        "model": r["model"],
        "input": r["input"],
        "latency_ms": _num(r["latency_ms"]),
        "fps_st": _num(r["fps_st"]),
        "fps_mt": _num(r["fps_mt"]),
        "source": r["source"],
    }


def published_rows(text: str = CSV_TEXT) -> list[PublishedRow]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [
        PublishedRow(**_fields(r), ops_g=float(r["ops_g"]))
        for r in csv.DictReader(io.StringIO("\n".join(lines)))
    ]


# -- the Vitis AI Model Zoo table (releases v1.0 to v3.5): calibration and held-out validation ------------
#: Where the full table lives in a checkout's shared data (``shared/data/``); FARM_DPU_ZOO_CSV overrides.
ZOO_CSV_NAME = "published_dpu_perf_zoo.csv"

#: The table's architecture names (unpruned) -> the farm zoo model whose graph stands for it. Everything else
#: (detectors, segmenters, EfficientNets, Inception v2/v4, ...) has no zoo graph yet and is left out.
ZOO_GRAPHS: dict[str, str] = {
    "resnet18": "resnet18",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "resnet50_v2": "resnet50_v2",
    "resnet101_v2": "resnet101_v2",
    "resnet152_v2": "resnet152_v2",
    "inception_v1": "googlenet",
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    "mobilenet_v1": "mobilenet_v1",
    "mobilenet_v1_0.5": "mobilenet_v1_0.5",
    "mobilenet_v1_0.25": "mobilenet_v1_0.25",
    "mobilenet_v2": "mobilenet_v2",
    "mobilenet_v2_1.4": "mobilenet_v2_1.4",
}

#: Architecture families: what leave-one-architecture-out holds out together (a width or depth variant of
#: an architecture the fit has seen is not a new architecture).
FAMILIES: dict[str, str] = {
    "resnet18": "resnet_v1",
    "resnet50": "resnet_v1",
    "resnet101": "resnet_v1",
    "resnet152": "resnet_v1",
    "resnet50_v2": "resnet_v2",
    "resnet101_v2": "resnet_v2",
    "resnet152_v2": "resnet_v2",
    "googlenet": "inception_v1",
    "vgg16": "vgg",
    "vgg19": "vgg",
    "mobilenet_v1": "mobilenet_v1",
    "mobilenet_v1_0.5": "mobilenet_v1",
    "mobilenet_v1_0.25": "mobilenet_v1",
    "mobilenet_v2": "mobilenet_v2",
    "mobilenet_v2_1.4": "mobilenet_v2",
}

#: Boards of the table that are not in the catalog -> (catalog board whose memory and host they share,
#: overrides). ZCU102 and ZCU104 are the same Zynq UltraScale+ (4 x A53, 64-bit PS DDR4 at 19.2 GB/s; the
#: ZCU102 has 4 GiB); Ultra96 v1 and v2 have the same LPDDR4 and A53s; U50LV is a U50 at lower voltage.
REFERENCE_BOARDS: dict[str, tuple[str, dict]] = {
    "zcu102": ("zcu104", {"capacity_mib": 4096.0}),
    "ultra96-v1": ("ultra96-v2", {}),
    "u50lv": ("u50", {}),
}
#: DPUCAHX8H engine counts as the tables give them ("dpu_cores") -> cores x engines per core.
_AH_ENGINES = {6: "2x3E", 9: "3x3E", 10: "2x5E"}
_AIE_CLOCK = re.compile(r"@ (\d+) MHz \(AIE clock\)")


@dataclass(frozen=True)
class ZooRow:
    """One row of published_dpu_perf_zoo.csv, as published."""

    board: str
    dpu: str
    dpu_cores: int
    clock_mhz: float
    model: str
    framework_model_name: str
    ops_g: float | None
    input: str
    latency_ms: float | None
    fps_st: float | None
    fps_mt: float | None
    source: str

    @property
    def release(self) -> str:
        return self.source.split(":", 1)[0]


def zoo_csv_path() -> Path | None:
    """The shared table: $FARM_DPU_ZOO_CSV, else ``shared/data/`` beside the checkout or above it."""
    env = os.environ.get("FARM_DPU_ZOO_CSV")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "shared" / "data" / ZOO_CSV_NAME
        if cand.is_file():
            return cand
    return None


def read_zoo_csv(path: Path | str) -> list[ZooRow]:
    with open(path, newline="") as fh:
        lines = [line for line in fh if line.strip() and not line.startswith("#")]
    return [
        ZooRow(**_fields(r), framework_model_name=r["framework_model_name"], ops_g=_num(r["ops_g"]))
        for r in csv.DictReader(lines)
    ]


def map_zoo_row(row: ZooRow) -> tuple[tuple | None, str]:
    """``(key, "")`` where the farm can model the row, key = (board, dpu string, cores, clock, zoo model,
    input); else ``(None, why not)``."""
    if "_pruned" in row.model:
        return None, "pruned"
    graph = ZOO_GRAPHS.get(row.model)
    if graph is None:
        return None, "no zoo graph"
    if row.fps_st is None and row.fps_mt is None:
        return None, "no fps"
    if not re.fullmatch(r"\d+x\d+", row.input or ""):
        return None, "no input size"
    ip, _, cfg = row.dpu.partition("-")
    clock = row.clock_mhz
    if row.board == "zcu102-rev04":
        return None, "board: older AI SDK (v2.0.4) measurement"
    if ip == "DPUCZDX8G":
        dpu = f"{ip}-{cfg.rstrip('F')}"  # KV260's B4096F: the B4096 array
        cores = row.dpu_cores
    elif ip == "DPUCAHX8H" and not cfg and row.dpu_cores in _AH_ENGINES:
        dpu, cores = f"{ip}-{_AH_ENGINES[row.dpu_cores]}", None
    elif ip == "DPUCVDX8G" and cfg in ("C32B3", "C32B6"):
        dpu, cores = row.dpu, 1
        if clock < 1000:  # v1.3 gives the PL clock; the AI Engine clock is in the section text
            m = _AIE_CLOCK.search(row.source)
            if not m:
                return None, "no AI Engine clock"
            clock = float(m.group(1))
    else:
        return None, f"DPU {row.dpu} x{row.dpu_cores} not modelled"
    if row.board not in REFERENCE_BOARDS and row.board not in (
        "zcu104",
        "kv260",
        "vck190",
        "u50",
        "ultra96-v2",
    ):
        return None, f"board {row.board} not modelled"
    cores = cores or int(dpu.split("-")[1].split("x")[0])
    return (row.board, dpu, int(cores), float(clock), graph, row.input), ""


def _geomean(values: list[float]) -> float | None:
    vals = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def zoo_published_rows(rows: list[ZooRow]) -> tuple[list[PublishedRow], dict]:
    """The usable rows of the zoo table, one per configuration (board, DPU, cores, clock, model, input):
    figures published by several releases or frameworks (cf_/tf_/pt_) are combined by their geometric mean.
    Returns (rows, coverage)."""
    groups: dict[tuple, list[ZooRow]] = {}
    skipped: dict[str, int] = {}
    for r in rows:
        key, why = map_zoo_row(r)
        if key is None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        groups.setdefault(key, []).append(r)
    out = []
    for (board, dpu, cores, clock, model, inp), rs in groups.items():
        ops = [r.ops_g for r in rs if r.ops_g]
        releases = sorted({r.release for r in rs})
        out.append(
            PublishedRow(
                board=board,
                dpu=dpu,
                dpu_cores=cores,
                clock_mhz=clock,
                model=model,
                ops_g=round(statistics.median(ops), 3) if ops else 0.0,
                input=inp,
                latency_ms=_round(_geomean([r.latency_ms for r in rs])),
                fps_st=_round(_geomean([r.fps_st for r in rs])),
                fps_mt=_round(_geomean([r.fps_mt for r in rs])),
                source=f"{len(rs)} rows: " + " ".join(releases),
            )
        )
    out.sort(key=lambda r: (r.board, r.dpu, r.clock_mhz, FAMILIES[r.model], r.model))
    used = sum(len(rs) for rs in groups.values())
    coverage = {
        "rows_total": len(rows),
        "rows_unpruned": sum("_pruned" not in r.model for r in rows),
        "rows_used": used,
        "configurations": len(out),
        "architectures": sorted({r.model for r in out}),
        "families": sorted({FAMILIES[r.model] for r in out}),
        "boards": sorted({r.board for r in out}),
        "skipped": dict(sorted(skipped.items(), key=lambda kv: -kv[1])),
    }
    return out, coverage


def _round(v: float | None) -> float | None:
    return None if v is None else float(f"{v:.5g}")


def family_of(model: str) -> str:
    return FAMILIES.get(model, model)
