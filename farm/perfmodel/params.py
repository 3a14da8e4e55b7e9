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


#: The calibrated parameters: ``fit(robust=True)`` on the 163 configurations of the Vitis AI Model Zoo table
#: (published_dpu_perf_zoo.csv, bench/dpu_loao.py; 60 Nelder-Mead iterations from the 12-row fit), rounded
#: (see docs/dpu-model.md). DPUCVDX8G's array efficiency sits at 1.0 and its memory share at the 0.95 bound.
CALIBRATED = Params(
    conv_eff={"DPUCZDX8G": 0.942, "DPUCAHX8H": 0.819, "DPUCVDX8G": 1.0},
    dw_eff=1.0,
    mem_eff=0.549,
    mem_eff_ip={"DPUCAHX8H": 0.869, "DPUCVDX8G": 0.95},
    layer_overhead_cycles=4883.0,
    call_overhead_us=50.0,
    host_cycles_per_elem=10.6,
)

#: Held-out median |error| (%) of (fps_st, fps_mt), bench/dpu_loao.py on 2026-12-05: each board predicted by
#: a fit that never saw it (leave-one-board-out), each architecture family by a fit that never saw it
#: (leave-one-architecture-out). None: the table publishes no such figure. What `farm lab predict` states.
HELD_OUT_PER_BOARD: dict[str, tuple[float | None, float | None]] = {
    "kv260": (8.7, 8.2),
    "u50": (19.5, 8.5),
    "u50lv": (None, 10.3),
    "ultra96-v1": (6.3, 12.2),
    "vck190": (12.0, 19.2),
    "zcu102": (8.3, 8.3),
    "zcu104": (7.1, 8.7),
}
HELD_OUT_PER_FAMILY: dict[str, tuple[float | None, float | None]] = {
    "inception_v1": (17.4, 7.9),
    "mobilenet_v1": (16.9, 18.3),
    "mobilenet_v2": (13.1, 15.6),
    "resnet_v1": (4.8, 12.5),
    "resnet_v2": (7.2, 10.9),
    "vgg": (20.0, 13.7),
}
#: Over every held-out architecture family's figures together.
HELD_OUT_OVERALL: tuple[float, float] = (10.8, 13.0)
#: Catalog boards the zoo table measures under another name (same memory and host CPU).
HELD_OUT_ALIASES: dict[str, str] = {"ultra96-v2": "ultra96-v1"}


def held_out_error(board: str) -> tuple[float, float, str]:
    """(fps_st %, fps_mt %, basis) a prediction for ``board`` should expect: the board's own held-out error
    where the zoo table has it, else the overall held-out (new architecture) error."""
    key = HELD_OUT_ALIASES.get(board, board)
    st, mt = HELD_OUT_PER_BOARD.get(key, (None, None))
    if st is None and mt is None:
        return HELD_OUT_OVERALL[0], HELD_OUT_OVERALL[1], "overall"
    basis = board if key == board else f"{key}, as {board}"
    return (
        (st if st is not None else HELD_OUT_OVERALL[0]),
        (mt if mt is not None else HELD_OUT_OVERALL[1]),
        basis,
    )
