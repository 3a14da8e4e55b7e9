"""The agent's output contract, shared by the agent tests."""

LATENCY_KEYS = ["min", "max", "mean", "p50", "p90", "p95", "p99", "p99.9"]
ENV_KEYS = [
    "hostname",
    "kernel",
    "machine",
    "cpu_model",
    "cpu_isa",
    "cpu_count",
    "cpu_freq_mhz",
    "python",
    "numpy",
    "runtime",
    "runtime_version",
    "runtime_providers",
    "loadgen_version",
    "board_serial",
    "agent_version",
    "load_avg",
]
