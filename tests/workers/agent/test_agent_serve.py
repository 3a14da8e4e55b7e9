"""The agent in serve mode (``farm_agent.py --config - --serve``): one process, job after job, one config line
in and one ``{"exit": ..., "report": ...}`` line out per job, exit 0 at EOF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers.agent.test_agent_cli import AGENT, AGENT_DIR, assert_ok_document, config, tiny_model

FAST = {"min_duration_ms": 50, "min_query_count": 8}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


class Agent:
    def __init__(self, cwd: Path, args=("--config", "-", "--serve"), script=AGENT) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(cwd),
        )

    def job(self, cfg) -> tuple[int, dict]:
        line = cfg if isinstance(cfg, str) else json.dumps(cfg)
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        response = self.proc.stdout.readline()
        assert response.endswith(b"\n"), f"no response line; stderr:\n{self.stderr()}"
        doc = json.loads(response)
        assert sorted(doc) == ["exit", "report"]
        return doc["exit"], doc["report"]

    def finish(self) -> tuple[int, bytes, str]:
        """Close stdin (EOF); returns (exit status, anything else on stdout, stderr)."""
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err.decode()

    def stderr(self) -> str:
        self.proc.kill()
        return self.proc.communicate()[1].decode()


def test_jobs_run_one_after_another_in_one_process(model_path, tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(Path(model_path).read_bytes()[:700])
    agent = Agent(tmp_path)
    try:
        code1, doc1 = agent.job(config(model_path, tmp_path, log_dir=str(tmp_path / "lg1")))
        code2, doc2 = agent.job(config(str(corrupt), tmp_path, loadgen=FAST))
        agent.proc.stdin.write(b"\n")  # blank lines are not jobs
        code3, doc3 = agent.job(
            config(model_path, tmp_path, scenario="Offline", batch_size=2, log_dir=str(tmp_path / "lg3"))
        )
    finally:
        status, rest, stderr = agent.finish()

    assert (code1, code2, code3) == (0, 2, 0), stderr
    assert_ok_document(doc1, "SingleStream", 1)
    assert doc1["loadgen"]["detail_path"].startswith(str(tmp_path / "lg1"))
    assert doc2["status"] == "error" and doc2["error"]["kind"] == "model"
    assert "onnxruntime cannot load" in doc2["error"]["message"]
    assert doc2["environment"]["agent_version"] == "1"
    assert_ok_document(doc3, "Offline", 2)  # the session goes on after a model error
    assert doc3["loadgen"]["detail_path"].startswith(str(tmp_path / "lg3"))
    # One process: one session start, jobs numbered, each job's own start.
    assert [d["session_job"] for d in (doc1, doc2, doc3)] == [1, 2, 3]
    assert len({d["session_started_at"] for d in (doc1, doc2, doc3)}) == 1
    assert doc1["session_started_at"] <= doc1["process_started_at"] <= doc1["started_at"]
    assert doc3["process_started_at"] >= doc2["finished_at"]
    # EOF ends the process cleanly; nothing but the three response lines went to stdout.
    assert (status, rest) == (0, b"")
    marks = [line for line in stderr.splitlines() if line.startswith("farm-agent-serve: end of job")]
    assert marks == [f"farm-agent-serve: end of job {n}" for n in (1, 2, 3)]
    assert stderr.index("model error") < stderr.index("end of job 2")


def test_bad_lines_are_infra_errors_and_stdout_stays_clean(model_path, tmp_path):
    """The session goes on after bad requests; whatever writes to file descriptor 1 during a job (as a
    native library would) lands on stderr, never in the protocol stream."""
    wrapper = tmp_path / "noisy_agent.py"
    wrapper.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {AGENT_DIR!r})\n"
        "import farm_agent, harness\n"
        "real_run = harness.run\n"
        "def noisy_run(config):\n"
        "    os.write(1, b'native noise\\n')\n"
        "    print('python noise')\n"
        "    return real_run(config)\n"
        "harness.run = noisy_run\n"
        "sys.exit(farm_agent.main())\n"
    )
    agent = Agent(tmp_path, args=("--serve",), script=str(wrapper))  # --config - is implied
    try:
        code1, doc1 = agent.job('{"artifact": ')
        code2, doc2 = agent.job(config(model_path, tmp_path, backend="vart_dpu"))
        code3, doc3 = agent.job("[1, 2]")
        code4, doc4 = agent.job(config(model_path, tmp_path, loadgen=FAST))
    finally:
        status, rest, stderr = agent.finish()
    assert (code1, code2, code3, code4) == (1, 1, 1, 0), stderr
    assert "not valid JSON" in doc1["error"]["message"]
    assert "available backends" in doc2["error"]["message"]
    assert "JSON object" in doc3["error"]["message"]
    assert doc4["status"] == "ok" and doc4["query_count"] >= 8
    assert (status, rest) == (0, b"")
    assert stderr.count("native noise") == 4 and stderr.count("python noise") == 4


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--serve", "--health", "onnxruntime_cpu"], "cannot be combined"),
        (["--serve", "--config", "cfg.json"], "reads its configs from stdin"),
        ([], "one of the arguments --config --health --serve is required"),
    ],
)
def test_bad_serve_command_lines_are_infra_errors(tmp_path, args, needle):
    proc = subprocess.run(
        [sys.executable, AGENT, *args],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 1
    (line,) = proc.stdout.splitlines()
    doc = json.loads(line)
    assert doc["error"]["kind"] == "infra" and needle in doc["error"]["message"]


def test_the_farm_recognises_this_agent_as_a_serve_agent():
    """The transport looks for the protocol string in farm_agent.py, and for the agent's end-of-job mark."""
    from farm.transport import agent_session, ssh

    sys.path.insert(0, AGENT_DIR)
    try:
        import serve
    finally:
        sys.path.remove(AGENT_DIR)
    assert agent_session.SERVE_PROTOCOL.encode() in Path(AGENT).read_bytes()
    assert serve.JOB_END_MARK == agent_session.JOB_END_MARK
    assert os.path.basename(AGENT) == ssh.AGENT_SCRIPT_NAME
