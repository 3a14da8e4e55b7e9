"""The farm-agent contract (workers/agent/protocol.py): the config every bad field named, its defaults, a
farm-built config accepted by the agent, a real agent report accepted by the farm, a bad one refused with
its field names, one headline metric at both ends, one emulation profile."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from farm.db.models import ArtifactRow, JobRow
from farm.errors import InfraError
from farm.inventory import Board, BoardEmulation, load_inventory
from farm.services.agent_config import agent_config, with_packs
from farm.services.results import received_report
from farm.sweep.schema import Sweep
from farm.transport.base import AgentOutcome
from farm.workers.agent import protocol
from farm.workers.agent.protocol import ContractError
from tests.workers.agent.agent_modules import imported

INVENTORY = Path(__file__).resolve().parents[3] / "inventory"
BASE = {"artifact": "/m.onnx", "backend": "onnxruntime_cpu", "scenario": "Offline"}


@pytest.fixture(scope="module")
def agent():
    with imported() as ns:
        yield ns


def problems(raw, **kw):
    with pytest.raises(ContractError) as info:
        protocol.normalize_config(raw, **kw)
    return info.value


# --------------------------------------------------------------------------- the config


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"artifact": 5}, "artifact"),
        ({"backend": "tflite_edgetpu"}, "backend"),
        ({"scenario": "Bursty"}, "scenario"),
        ({"artifact_sha256": 12}, "artifact_sha256"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"threads": 0}, "threads"),
        ({"warmup_queries": -1}, "warmup_queries"),
        ({"sample_count": 1.5}, "sample_count"),
        ({"seed": "x"}, "seed"),
        ({"log_dir": 3}, "log_dir"),
        ({"sensors": "hwmon"}, "sensors"),
        ({"sensors": ["hwmon:ina226"]}, "sensors[0]"),
        ({"sensors": [{"kind": "rapl", "interval_ms": 0}]}, "sensors[0].interval_ms"),
        ({"emulation": "/x"}, "emulation"),
        ({"emulation": {"root": "rel"}}, "emulation.root"),
        ({"emulation": {"root": "/x", "time_scale": 2}}, "emulation.time_scale"),
        ({"gpu": []}, "gpu"),
        ({"noise_check": -1}, "noise_check"),
        ({"ambient_path": 1}, "ambient_path"),
        ({"reference": {"path": 5}}, "reference.path"),
        ({"dataset": {"path": "/d.npz", "sha256": 1}}, "dataset.sha256"),
        ({"loadgen": "fast"}, "loadgen"),
        ({"loadgen": {"min_duration_ms": "2s"}}, "loadgen.min_duration_ms"),
        ({"loadgen": {"min_query_count": 0}}, "loadgen.min_query_count"),
        ({"loadgen": {"max_query_count": -1}}, "loadgen.max_query_count"),
        ({"loadgen": {"target_latency_ms": 0}}, "loadgen.target_latency_ms"),
        ({"loadgen": {"offline_expected_qps": -1}}, "loadgen.offline_expected_qps"),
        ({"loadgen": {"multi_stream_samples_per_query": 0}}, "loadgen.multi_stream_samples_per_query"),
        ({"loadgen": {"multi_stream_target_latency_percentile": 100}}, "loadgen.multi_stream_target_latency_percentile"),
        ({"loadgen": {"server_target_qps": 0}}, "loadgen.server_target_qps"),
        ({"loadgen": {"server_target_latency_ms": -5}}, "loadgen.server_target_latency_ms"),
        ({"loadgen": {"server_target_latency_percentile": 0}}, "loadgen.server_target_latency_percentile"),
        ({"loadgen": {"server_search_probes": 0}}, "loadgen.server_search_probes"),
    ],
)  # fmt: skip
def test_every_bad_field_is_named(bad, field):
    error = problems(dict(BASE, **bad), backends=("onnxruntime_cpu", "emulated"))
    assert error.fields == [field]
    assert str(error).startswith(f"config {field} ") and str(error).count("config ") == 1


def test_every_problem_at_once():
    raw = {
        "artifact": "",
        "scenario": "Bursty",
        "batch_size": 0,
        "loadgen": {"min_duration_ms": "2s", "server_search_probes": 0},
        "emulation": {"root": "rel", "time_scale": 0},
        "sensors": [{"kind": "rapl"}, "x"],
    }
    error = problems(raw)
    assert error.fields == [
        "artifact",
        "backend",
        "scenario",
        "batch_size",
        "loadgen.min_duration_ms",
        "loadgen.server_search_probes",
        "sensors[1]",
        "emulation.root",
        "emulation.time_scale",
    ]
    text = str(error)
    assert text.startswith("config is missing required field(s): artifact, backend; ")
    assert "config scenario 'Bursty' is unknown; supported scenarios: SingleStream, MultiStream" in text
    for field in error.fields[2:]:
        assert f"config {field} must be" in text or f"config {field} '" in text


def test_defaults_and_nulls():
    config = protocol.normalize_config(
        dict(BASE, sensors=None, loadgen={"min_duration_ms": None, "server_target_latency_ms": None})
    )
    assert config == {
        **BASE,
        "artifact_sha256": None,
        "batch_size": 1,
        "loadgen": protocol.LOADGEN_DEFAULTS,
        "threads": None,
        "warmup_queries": 10,
        "sample_count": 64,
        "seed": 0,
        "log_dir": None,
        "sensors": [],
        "emulation": None,
        "gpu": None,
        "noise_check": None,
        "ambient_path": None,
        "reference": None,
        "dataset": None,
    }
    assert protocol.LOADGEN_DEFAULTS["server_target_latency_ms"] == 100.0
    packed = protocol.normalize_config(
        dict(BASE, emulation={"root": "/b", "time_scale": None}, reference={"path": "/r.npz", "extra": 1})
    )
    assert packed["emulation"] == {"root": "/b", "time_scale": 1.0}
    assert packed["reference"] == {"path": "/r.npz", "sha256": None}


def test_unknown_keys_are_ignored_with_a_warning():
    heard = []
    config = protocol.normalize_config(dict(BASE, colour="red", loadgen={"speed": 1}), warn=heard.append)
    assert "colour" not in config and "speed" not in config["loadgen"]
    assert heard == ["ignoring unknown config field(s): colour", "ignoring unknown loadgen field(s): speed"]


def test_the_agent_raises_one_infra_error_naming_every_field(agent):
    with pytest.raises(agent.backends_base.InfraError) as info:
        agent.harness.normalize_config(dict(BASE, backend="tflite", batch_size=0, threads=0))
    text = str(info.value)
    assert "config backend 'tflite' is unknown; available backends: emulated, onnxruntime_cpu" in text
    assert "config batch_size must be" in text and "config threads must be" in text


def test_farm_configs_pass_the_agents_checks(agent):
    """Round trip: what the farm's one builder sends (plain, emulated, soak, with packs) is what the agent
    accepts, and the agent's defaults fill in only what the farm left out."""
    inventory = load_inventory(INVENTORY)
    spec = Sweep.model_validate(
        {
            "name": "contract",
            "models": [{"name": "m", "onnx": "m.onnx"}],
            "precisions": ["int8"],
            "targets": ["zcu104"],
            "scenarios": ["Server"],
            "loadgen": {"min_duration_ms": 500, "server_target_latency_ms": 20},
            "thermal": {"duration_s": 30, "scenario": "SingleStream"},
        }
    )
    artifact = ArtifactRow(details={"input_shape": [1, 3, 16, 16]}, file_sha256="ab" * 32)
    emulated = Board(name="z", type="zcu104", emulation=BoardEmulation(root="/srv/lab/z", time_scale=0.5))
    real = Board(name="g", type="gpu")
    for job, board, backend in (
        (JobRow(kind="run", batch_size=1, scenario="Server", repeat=2), emulated, "emulated"),
        (JobRow(kind="soak", batch_size=1, scenario="Offline", repeat=0), emulated, "emulated"),
        (JobRow(kind="run", batch_size=4, scenario="Offline", repeat=0), real, "onnxruntime_gpu"),
    ):
        sent = agent_config(
            spec, job, artifact, "/a.onnx", backend, "/logs", board, inventory.board_types[board.type]
        )
        sent = with_packs(sent, {"reference": {"path": "/r.npz", "sha256": "cd" * 32}, "dataset_images": 9})
        sent = json.loads(json.dumps(sent))  # as it travels
        received = agent.harness.normalize_config(sent)
        assert {k: received[k] for k in sent} == sent
        assert received["warmup_queries"] == 10 and received["threads"] is None
    assert sent["sensors"] == [{"kind": "nvml", "index": 0}]
    job = JobRow(kind="soak", batch_size=1, scenario="Offline")
    soak = agent_config(
        spec, job, artifact, "/a", "emulated", "/l", emulated, inventory.board_types["zcu104"]
    )
    assert soak["scenario"] == "SingleStream" and soak["loadgen"]["min_duration_ms"] == 15000
    assert soak["loadgen"]["max_query_count"] == 0


def test_the_farm_builds_only_declared_keys():
    with pytest.raises(ValueError, match="colour, loadgen.speed"):
        protocol.make_config(artifact="/a", colour="red", loadgen={"speed": 1})


# --------------------------------------------------------------------------- the report


def test_a_real_agent_report_keeps_the_contract(agent, tmp_path, tiny_onnx):
    doc, code = agent.harness.run(
        {
            "artifact": str(tiny_onnx),
            "backend": "onnxruntime_cpu",
            "scenario": "SingleStream",
            "threads": 1,
            "sample_count": 4,
            "warmup_queries": 2,
            "log_dir": str(tmp_path / "lg"),
            "loadgen": {"min_duration_ms": 100, "min_query_count": 8},
        }
    )
    assert code == 0, doc["error"]
    assert list(doc) == list(protocol.REPORT_KEYS)
    report = json.loads(json.dumps(doc))
    assert protocol.validate_report(report) == []
    stored = received_report(AgentOutcome(0, json.dumps(report), ""), 123)
    assert stored["farm_bytes_uploaded"] == 123 and protocol.read(stored, "latency_ms", "p99.9") > 0
    assert doc["headline"]["name"] == protocol.headline_metric("SingleStream")
    failed, code = agent.harness.run(dict(BASE, artifact=str(tmp_path / "missing.onnx")))
    assert code == 1 and protocol.validate_report(json.loads(json.dumps(failed))) == []


def test_a_bad_report_is_an_infra_error_naming_every_field():
    report = {
        "status": "ok",
        "latency_ms": {"p90": "fast", "p99.9": 2.0},
        "power": {"avg_w": "12 W", "trace": {"t_s": [0, "x"]}},
        "emulation": 0.5,
        "accuracy": {"dataset": {"top1": [1]}},
        "environment": {"kernel": 6},
    }
    assert [field for field, _ in protocol.validate_report(report)] == [
        "emulation",
        "latency_ms.p90",
        "power.avg_w",
        "environment.kernel",
        "power.trace.t_s",
        "accuracy.dataset.top1",
    ]
    with pytest.raises(InfraError) as info:
        received_report(AgentOutcome(0, json.dumps(report), ""), 0)
    text = str(info.value)
    for field in ("emulation", "latency_ms.p90", "power.avg_w", "power.trace.t_s", "environment.kernel"):
        assert f"report {field} must be" in text
    for bad in ({"status": "maybe"}, {}, [], {"status": "error", "error": {"kind": "bug"}}):
        with pytest.raises(InfraError, match="bad report: report"):
            received_report(AgentOutcome(1, json.dumps(bad), ""), 0)


def test_reads_only_declared_fields():
    report = {"status": "ok", "power": {"avg_w": 3.0}, "emulation": {"time_scale": 0.25}}
    assert protocol.read(report, "power", "avg_w") == 3.0
    assert protocol.read(report, "thermal", "max_c") is None and protocol.section(report, "noise") == {}
    assert protocol.time_scale(report) == 0.25 and protocol.time_scale({"status": "ok"}) == 1.0
    with pytest.raises(LookupError, match="power.colour"):
        protocol.read(report, "power", "colour")


# --------------------------------------------------------------------------- headline, profile


@pytest.mark.parametrize(
    "scenario, percentile, name, value",
    [
        ("SingleStream", 99.0, "latency_ms_p90", 2.0),
        ("MultiStream", 99.0, "latency_ms_p99", 3.0),
        ("MultiStream", 99.9, "latency_ms_p99_9", 4.0),
        ("Server", 99.0, "server_qps_max", 50.0),
        ("Offline", 99.0, "throughput_ips", 900.0),
    ],
)
def test_one_headline_metric_at_both_ends(agent, scenario, percentile, name, value):
    result = {
        "latency_ms": {"p90": 2.0, "p99": 3.0, "p99.9": 4.0},
        "server_search": {"qps_max": 50.0},
        "throughput_ips": 900.0,
    }
    cfg = dict(protocol.LOADGEN_DEFAULTS, multi_stream_target_latency_percentile=percentile)
    headline = agent.loadgen_scenarios.headline(scenario, result, cfg)
    assert headline["name"] == name == protocol.headline_metric(scenario, percentile)
    assert headline["value"] == value
    assert tuple(agent.loadgen_scenarios.SCENARIOS) == protocol.SCENARIOS


def test_one_emulation_profile():
    from farm.workers.toolchains import emulation

    assert emulation.EMULATION_KEY == protocol.PROFILE_KEY
    assert tuple(emulation.PROFILE_KEYS) == protocol.PROFILE_KEYS
    assert set(protocol.PROFILE_NUMBERS + protocol.PROFILE_UTILISATION) <= set(protocol.PROFILE_KEYS)
    assert set(protocol.PROFILE_REPORTED) <= set(protocol.PROFILE_KEYS)


def test_every_declared_field_hangs_off_a_declared_object():
    objects = [path for path, kind in protocol.REPORT.items() if kind == "object"]
    for path in protocol.REPORT:
        assert path[:-1] == () or path[:-1] in objects, path


# --------------------------------------------------------------------------- standard library only


def _agent_file(name: str) -> Path:
    folder = Path(protocol.AGENT_DIR)
    return folder / f"{name}.py" if (folder / f"{name}.py").is_file() else folder / name / "__init__.py"


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """What a file imports: (top-level names from outside the agent's folder, the agent modules). Relative
    imports (the farm's way in) and bare names of the folder's files (the board's) are agent modules."""
    outside: set[str] = set()
    siblings: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            tops = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1, f"{path.name}: imports from above the agent's folder"
            siblings |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            continue
        elif isinstance(node, ast.ImportFrom):
            tops = [(node.module or "").split(".")[0]]
        else:
            continue
        for top in tops:
            (siblings if _agent_file(top).is_file() else outside).add(top)
    return outside, siblings


def test_the_contract_imports_only_the_standard_library():
    """protocol.py and every agent module it imports (followed both ways: by package and by bare name)
    import the standard library and nothing else: the farm imports them, and so does the board's agent."""
    seen: set[str] = set()
    todo = ["protocol"]
    foreign: dict[str, list[str]] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        outside, siblings = _imports(_agent_file(name))
        foreign[name] = sorted(top for top in outside if top not in sys.stdlib_module_names)
        todo.extend(siblings)
    assert {"protocol", "protocol_checks"} <= seen  # the walk followed the sibling it imports
    assert {name: bad for name, bad in foreign.items() if bad} == {}


def test_the_contract_imports_by_bare_name_without_site_packages(tmp_path):
    """As on a board: the agent's folder on sys.path, no farm package and no site-packages at all (-I -S)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import protocol; "
        "c = protocol.normalize_config({'artifact': '/m.onnx', 'backend': 'x', 'scenario': 'Offline'}); "
        "print(protocol.checks.__name__, c['batch_size'], 'numpy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, protocol.AGENT_DIR],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["protocol_checks", "1", "False"]
