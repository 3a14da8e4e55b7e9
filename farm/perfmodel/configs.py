"""DPU configurations and their strings ("DPUCZDX8G-B4096", "DPUCAHX8H-2x3E", "DPUCVDX8G-C32B3").

Why: the performance model needs the shape of the MAC array (pixel x input-channel x output-channel
parallelism), because a layer whose channels do not fill it wastes the rest (ceil rounding), and how many
images run side by side (batch engines). Sources:

* DPUCZDX8G (PG338): B-size = peak ops per clock = 2 x PP x ICP x OCP (the DSPs run at 2x the DPU
  clock, which this count already includes, so peak ops/s = B x clock). Depthwise convolution runs on the
  ALU at half the pixel parallelism. Channel augmentation folds the kernel width into the input channels
  of a first layer with few channels (enabled in the model-zoo builds).
* DPUCAHX8H (PG367, UG1414): "2x3E" = 2 cores x 3 batch engines at 300 MHz = 7373 GOPS peak, i.e. 4096
  ops/clock per engine, channel_parallel 16. PG367 gives no PP/OCP split: we use 8 x 16 x 16 (the
  B4096 array). Depthwise only on the "-DWC" variant (UG1414 lists DPUCAHX8H_ISA2_DWC separately).
* DPUCVDX8G (PG389): CxxBy = xx AI Engines per batch handler, y batch handlers; peak = 256 ops/cycle per
  AIE x AIEs x batch at the AIE clock (C32B3 at 1.25 GHz = 30.72 TOPS). Depthwise, pooling and eltwise run
  in the PL at 333 MHz. PG389 gives channel_parallel 16 and no further split: we use 8 x 16 x 32 per
  batch handler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from farm.errors import ModelError

#: PG338 Table "Parallelism of the DPUCZDX8G architectures": B-size -> (PP, ICP, OCP).
DPUCZDX8G_ARCHS: dict[int, tuple[int, int, int]] = {
    512: (4, 8, 8),
    800: (4, 10, 10),
    1024: (8, 8, 8),
    1152: (4, 12, 12),
    1600: (8, 10, 10),
    2304: (8, 12, 12),
    3136: (8, 14, 14),
    4096: (8, 16, 16),
}
DPUCVDX8G_PL_CLOCK_MHZ = 333.0
DPUCVDX8G_AIE_CLOCK_MHZ = 1250.0
IPS = ("DPUCZDX8G", "DPUCAHX8H", "DPUCVDX8G")


@dataclass(frozen=True)
class DpuConfig:
    """One DPU IP configuration (per core: a core has ``engines`` batch engines, each a MAC array)."""

    ip: str
    config: str  # the part after the dash, e.g. "B4096"
    pp: int  # pixel parallelism of one engine
    icp: int  # input-channel parallelism
    ocp: int  # output-channel parallelism
    engines: int = 1  # images processed side by side per core (batch engines / handlers)
    config_cores: int | None = None  # cores fixed by the string ("2x3E"); None: from the board
    depthwise: bool = True
    dw_pixels: float = 4.0  # depthwise pixels per cycle (x ICP channels)
    channel_augmentation: bool = True
    bank_depth: int = 2048
    misc_clock_ratio: float = 1.0  # clock of the pooling/depthwise/eltwise units relative to the MAC clock
    max_stride: int = 8
    max_pool_kernel: int = 256
    eltwise_mul: bool = True
    hard_activations: bool = True  # Hard-Sigmoid / Hard-Swish
    bank_num: int = 8
    #: Feature maps kept on chip per engine (bank_num x bank_depth x channel_parallel bytes, UG1414's
    #: intrinsic parameters); a tensor up to half of it (input and output share the banks) never goes to DDR.
    onchip_feature_bytes: int = 0

    @property
    def name(self) -> str:
        return f"{self.ip}-{self.config}"

    @property
    def macs_per_cycle(self) -> int:
        """MACs per cycle of one engine."""
        return self.pp * self.icp * self.ocp

    @property
    def peak_ops_per_cycle(self) -> int:
        """Peak ops per clock of one core (all its engines): the B-size for DPUCZDX8G."""
        return 2 * self.macs_per_cycle * self.engines

    def peak_tops(self, clock_mhz: float, cores: int) -> float:
        return self.peak_ops_per_cycle * cores * clock_mhz * 1e6 / 1e12


_ZD = re.compile(r"B(\d+)")
_AH = re.compile(r"(\d+)x(\d+)E(-DWC)?")
_VD = re.compile(r"C(32|64)B([1-6])")


def parse_dpu(text: str) -> DpuConfig:
    """``"DPUCZDX8G-B4096"``, ``"DPUCAHX8H-2x3E"`` (or ``-2x4E-DWC``), ``"DPUCVDX8G-C32B3"``.

    Raises ModelError with the valid forms for anything else."""
    s = str(text).strip()
    ip, sep, cfg = s.partition("-")
    ip = ip.upper()
    if not sep or ip not in IPS:
        raise ModelError(
            f"unknown DPU configuration {text!r}: expected IP-CONFIG with IP one of {', '.join(IPS)} "
            "(e.g. DPUCZDX8G-B4096, DPUCAHX8H-2x3E, DPUCVDX8G-C32B3)"
        )
    return dpu_config(ip, cfg)


def dpu_config(ip: str, cfg: str) -> DpuConfig:
    """The configuration ``cfg`` of ``ip`` (as in the catalog: ip DPUCZDX8G, config B4096)."""
    ip = str(ip).upper()
    cfg = str(cfg).strip()
    if ip == "DPUCZDX8G":
        m = _ZD.fullmatch(cfg.upper())
        if not m or int(m.group(1)) not in DPUCZDX8G_ARCHS:
            valid = ", ".join(f"B{b}" for b in DPUCZDX8G_ARCHS)
            raise ModelError(f"unknown DPUCZDX8G configuration {cfg!r}; valid: {valid}")
        pp, icp, ocp = DPUCZDX8G_ARCHS[int(m.group(1))]
        return DpuConfig(
            ip, f"B{m.group(1)}", pp, icp, ocp, dw_pixels=pp / 2, onchip_feature_bytes=8 * 2048 * icp
        )
    if ip == "DPUCAHX8H":
        m = _AH.fullmatch(cfg)
        if not m or not (1 <= int(m.group(1)) <= 3 and 1 <= int(m.group(2)) <= 5):
            raise ModelError(
                f"unknown DPUCAHX8H configuration {cfg!r}: expected CORESxENGINESE (cores 1-3, engines "
                "1-5), optionally -DWC, e.g. 2x3E"
            )
        dwc = bool(m.group(3))
        return DpuConfig(
            ip,
            cfg,
            8,
            16,
            16,
            engines=int(m.group(2)),
            config_cores=int(m.group(1)),
            depthwise=dwc,
            dw_pixels=4.0,
            max_stride=4,
            max_pool_kernel=8,
            eltwise_mul=False,
            hard_activations=False,
            onchip_feature_bytes=8 * 2048 * 16,
        )
    if ip == "DPUCVDX8G":
        m = _VD.fullmatch(cfg.upper())
        if not m or (m.group(1) == "64" and int(m.group(2)) > 5):
            raise ModelError(
                f"unknown DPUCVDX8G configuration {cfg!r}: expected C32B1..C32B6 or C64B1..C64B5"
            )
        aie = int(m.group(1))
        return DpuConfig(
            ip,
            f"C{aie}B{m.group(2)}",
            8,
            16,
            aie,  # 32 AIE x 128 MAC = 8 x 16 x 32 MACs per cycle per batch handler
            engines=int(m.group(2)),
            dw_pixels=8.0,  # PL depthwise engine: PG389 gives no width; our choice
            bank_depth=8192,
            onchip_feature_bytes=8 * 8192 * 32,
            misc_clock_ratio=DPUCVDX8G_PL_CLOCK_MHZ / DPUCVDX8G_AIE_CLOCK_MHZ,
        )
    raise ModelError(f"unknown DPU IP {ip!r}; valid: {', '.join(IPS)}")
