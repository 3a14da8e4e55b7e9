"""The performance model's few physical parameters, and their calibrated values (frozen: predictions stay
stable until someone re-fits them with farm/perfmodel/calibration.py and changes them here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Params:
    """Calibrated physical parameters (fitted by farm/perfmodel/calibration.py)."""

    conv_eff: dict = field(default_factory=lambda: {"DPUCZDX8G": 0.8, "DPUCAHX8H": 0.8, "DPUCVDX8G": 0.5})
    dw_eff: float = 0.8  # depthwise / pooling ALU efficiency
    mem_eff: float = 0.7  # sustained fraction of the board's peak DDR/HBM bandwidth
    #: Per-IP sustained bandwidth share where it differs (the IP's memory ports, AXI/NoC/HBM); else mem_eff.
    mem_eff_ip: dict = field(default_factory=dict)
    layer_overhead_cycles: float = 2000.0  # per DPU instruction block (fetch, pipeline fill, drain)
    #: Per DPU subgraph call on an A53 at 1 GHz (VART submit + wait + cache maintenance). Not fitted: every
    #: calibration row is one subgraph, so it cannot be told apart from pre/post-processing there.
    call_overhead_us: float = 50.0
    host_cycles_per_elem: float = 4.0  # pre/post-processing per input/output element (A53 cycles)

    def as_dict(self) -> dict:
        return asdict(self)

    def mem_eff_of(self, ip: str) -> float:
        return float(self.mem_eff_ip.get(ip, self.mem_eff))


#: The calibrated parameters: ``fit()`` on published_dpu_perf.csv, rounded (see docs/dpu-model.md). The
#: DPUCAHX8H and DPUCVDX8G array efficiencies and the depthwise ALU's sit at their physical limit of 1.0:
#: on those rows the losses are explained by ceil-rounding, per-layer start-up and memory, not by stalls.
CALIBRATED = Params(
    conv_eff={"DPUCZDX8G": 0.909, "DPUCAHX8H": 1.0, "DPUCVDX8G": 1.0},
    dw_eff=1.0,
    mem_eff=0.714,
    layer_overhead_cycles=5406.0,
    call_overhead_us=50.0,
    host_cycles_per_elem=8.01,
)
