"""The farm-agent contract: what the farm sends a board agent and what the agent reports back.

Both ends import this one file: the agent by bare name (``import protocol``, Python 3.8, standard library
only), the farm as ``workers.agent.protocol`` (the only module of ``workers/`` that ``farm/`` imports).
A change here is a change of the contract: bump :data:`VERSION`.
"""

import os

#: The contract's version; a report names the version it was written under.
VERSION = 1

#: The agent's directory: what the farm ships to a board (it lives beside this file).
AGENT_DIR = os.path.dirname(os.path.abspath(__file__))

#: The script the farm runs on a board.
AGENT_SCRIPT = os.path.join(AGENT_DIR, "farm_agent.py")

#: LoadGen's scenarios, in the order the farm lists them.
SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")

#: MultiStream's headline percentile when the sweep does not set one (LoadGen's own default).
DEFAULT_MULTISTREAM_PERCENTILE = 99.0


def percentile_key(percentile):
    """``99.0`` -> ``"p99"``, ``99.9`` -> ``"p99_9"``: the suffix of a stored latency metric."""
    return ("p%g" % float(percentile)).replace(".", "_")


def headline_metric(scenario, multistream_percentile=DEFAULT_MULTISTREAM_PERCENTILE):
    """The one headline metric of a scenario (its stored name): SingleStream's p90 latency, MultiStream's
    latency at the configured percentile (MLPerf's rule), Server's QPS at the bound, Offline's throughput."""
    if scenario == "SingleStream":
        return "latency_ms_p90"
    if scenario == "MultiStream":
        return "latency_ms_" + percentile_key(multistream_percentile)
    if scenario == "Server":
        return "server_qps_max"
    if scenario == "Offline":
        return "throughput_ips"
    raise ValueError("unknown scenario %r (one of %s)" % (scenario, ", ".join(SCENARIOS)))
