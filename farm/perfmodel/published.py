"""The published Vitis AI Model Zoo figures the DPU model is calibrated on, as shipped with farm.

A verbatim copy of ``shared/data/published_dpu_perf.csv`` (tests/farm/perfmodel checks that they agree where the
shared file exists), kept in a module so ``farm lab calibrate`` works from any installation.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

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


def published_rows(text: str = CSV_TEXT) -> list[PublishedRow]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    rows = []
    for r in csv.DictReader(io.StringIO("\n".join(lines))):
        rows.append(
            PublishedRow(
                board=r["board"],
                dpu=r["dpu"],
                dpu_cores=int(r["dpu_cores"]),
                clock_mhz=float(r["clock_mhz"]),
                model=r["model"],
                ops_g=float(r["ops_g"]),
                input=r["input"],
                latency_ms=_num(r["latency_ms"]),
                fps_st=_num(r["fps_st"]),
                fps_mt=_num(r["fps_mt"]),
                source=r["source"],
            )
        )
    return rows
