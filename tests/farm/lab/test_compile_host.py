"""`farm lab up --compile-host container`: the virtual lab's compiles run in the farm's compile image, through
the Docker runner, on a compile host reached over SSH (a real sshd running this machine's podman), and
`farm show` names the runner, the host and the image's digest. Skips, saying why, where no engine runs."""

from __future__ import annotations

import re

import onnx
import onnxruntime as ort
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.main import cli
from farm.containers.podman import engine_problem, local_engine, run
from farm.db.models import ArtifactRow, RunRow
from farm.db.session import session_scope
from farm.fleet.transports import close_all
from farm.lab import processes
from farm.lab.sshd import SSHD, sshd_available
from tests.conftest import tiny_model, write_sweep

SWEEP = """\
name: in-containers
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32, int8]
targets: [cpu, zcu104]
scenarios: [SingleStream]
quantization: {{calibration_samples: 8}}
loadgen: {{min_duration_ms: 200, min_query_count: 32}}
"""


def _farm(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def container_lab(farm_env, monkeypatch):
    problem = engine_problem()
    if problem:
        pytest.skip(f"no container engine on this machine: {problem}")
    if not sshd_available(SSHD):
        pytest.fail("openssh-server is not installed (make test installs it)")
    monkeypatch.delenv("FARM_LAB_SSHD", raising=False)
    out = _farm("lab", "up", "--boards", "zcu104", "--compile-host", "container")
    lab_file = processes.lab_file(farm_env)
    monkeypatch.setenv("FARM_LAB", str(lab_file))
    from farm.celery_app import app, configure

    configure(app)
    yield out, lab_file
    close_all()
    processes.down(farm_env)


def test_the_labs_compiles_run_in_the_image_on_its_compile_host(tmp_path, farm_env, container_lab) -> None:
    up_output, lab_file = container_lab
    assert re.search(r"lab-compile +compile host +127\.0\.0\.100:\d+ +podman, farm/compile:", up_output)
    (host,) = yaml.safe_load(lab_file.read_text())["docker_hosts"]
    assert host["runner"] == "docker" and host["images"] == [f"farm/compile:{ort.__version__}"]
    assert host["engine"]["env"]["CONTAINERS_CONF"].endswith("containers.conf")
    assert "--runtime" in host["engine"]["options"] and host["limits"] == {"memory_mb": 4096}

    model = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(batch=1), model)
    _farm("submit", str(write_sweep(tmp_path, SWEEP.format(onnx=model), "in-containers")))

    with session_scope(farm_env.db_url) as s:
        artifacts = s.scalars(select(ArtifactRow)).all()
        run_ids = s.scalars(select(RunRow.id).order_by(RunRow.id)).all()
    # cpu fp32, cpu int8 (ONNX Runtime) and zcu104 int8 (the DPU emulator): each built in the image
    assert {(a.toolchain, a.precision) for a in artifacts} == {
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8"),
        ("dpu_emulator", "int8"),
    }
    for a in artifacts:
        assert (a.compile_runner, a.compile_host) == ("docker", "lab-compile")
        assert re.fullmatch(
            rf"farm/compile:{re.escape(ort.__version__)}@sha256:[0-9a-f]{{64}}", a.toolchain_image
        )
    assert len(run_ids) == 3

    shown = _farm("show", str(run_ids[-1]))
    assert re.search(r"runner +docker on lab-compile", shown)
    assert re.search(r"image +farm/compile:\S+@sha256:[0-9a-f]{64}", shown)
    assert re.search(r"lab-compile +compile host .* up ", _farm("lab", "status"))

    # the lab keeps its compile host when brought up again without the flag, and drops it with none
    _farm("lab", "up", "--boards", "zcu104")
    assert "docker_hosts" in yaml.safe_load(lab_file.read_text())
    stopped = _farm("lab", "up", "--boards", "zcu104", "--compile-host", "none")
    assert "stopped lab-compile: sshd" in stopped
    assert "docker_hosts" not in yaml.safe_load(lab_file.read_text())
    listed = run(
        local_engine(farm_env), "ps", "-a", "--filter", "name=farm-compile-", "--format", "{{.Names}}"
    )
    assert listed.stdout.decode().split() == []  # every compile container was removed (--rm)
