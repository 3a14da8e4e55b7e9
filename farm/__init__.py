"""farm: a benchmark farm and results database for ML inference on FPGA boards, GPU and CPU."""

__version__ = "0.1.0"
