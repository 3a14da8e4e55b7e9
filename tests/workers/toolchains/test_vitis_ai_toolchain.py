"""The real Vitis AI toolchain: its docker command line as built (no Docker engine here), and a clear
refusal in-process."""

from __future__ import annotations

import shlex

import pytest

from farm.errors import FarmError
from farm.transport.remote import quote_argv
from farm.transport.ssh_host import SshHost
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.registry import get_toolchain
from farm.workers.toolchains.runners import DockerRunner
from farm.workers.toolchains.vitis_ai import DRIVER_NAME, DRIVER_PATH, IMAGE, SHELL, VERSION
from tests.conftest import tiny_model

JOB = "0123456789abcdef0123456789abcdef"
DRIVER = DRIVER_PATH.read_text()  # the driver program, a file of its own


def offline_transport(work_dir: str) -> SshHost:
    return SshHost("192.0.2.1", 22, "farm", "/nonexistent/key", "/nonexistent/known_hosts", work_dir)


def test_image_is_pinned():
    tc = get_toolchain("vitis_ai@zcu104")
    assert tc.container_image == IMAGE == "xilinx/vitis-ai-pytorch-cpu:3.5.0"
    assert tc.version() == VERSION and tc.target_arch == "DPUCZDX8G/ZCU104"


def test_docker_command_line_as_built():
    runner = DockerRunner(offline_transport("/srv/farm"), host_name="vai-box", user="1000:1000")
    quant = QuantConfig(calibration_samples=64, seed=3)
    argv = runner.compile_command("vitis_ai@zcu104", JOB, f"/srv/farm/compile/{JOB}", "int8", quant)
    assert argv == [
        *["docker", "run", "--rm", "--name", f"farm-compile-{JOB}", "--network", "none", "--pull", "never"],
        *[
            "-v",
            f"/srv/farm/compile/{JOB}:/work",
            "-w",
            "/work",
            "--user",
            "1000:1000",
            "--env",
            "HOME=/work",
        ],
        "xilinx/vitis-ai-pytorch-cpu:3.5.0",
        "bash",
        "-c",
        SHELL,
        f"/work/in/{DRIVER_NAME}",  # uploaded beside the model
        "/work/in/model.onnx",
        "/work/out",
        "/opt/vitis_ai/compiler/arch/DPUCZDX8G/ZCU104/arch.json",
        '{"calibration_samples":64,"method":"minmax","per_channel":true,"seed":3}',
        "vitis_ai@zcu104",
        "vitis-ai-3.5.0",
        "DPUCZDX8G/ZCU104",
        "",  # no calibration data: synthetic inputs
    ]
    assert "conda activate vitis-ai-pytorch" in SHELL and 'exec python3 "$0" "$@"' in SHELL
    # The driver quantises with vai_q_pytorch and compiles with vai_c_xir against the arch.json.
    assert 'torch_quantizer("calib"' in DRIVER and "export_xmodel" in DRIVER
    assert '["vai_c_xir", "-x", quantized, "-a", arch, "-o", out, "-n", "model"]' in DRIVER
    assert "result.json" in DRIVER
    compile(DRIVER, "<driver>", "exec")  # valid Python for the image's python3
    assert shlex.split(quote_argv(argv)) == argv  # every word survives the remote shell


@pytest.mark.parametrize(
    ("board", "arch"),
    [
        ("kv260", "/opt/vitis_ai/compiler/arch/DPUCZDX8G/KV260/arch.json"),
        ("vck190", "/opt/vitis_ai/compiler/arch/DPUCVDX8G/VCK190/arch.json"),
        ("u50", "/opt/vitis_ai/compiler/arch/DPUCAHX8H/U50/arch.json"),
    ],
)
def test_arch_json_per_board(board, arch):
    argv = get_toolchain(f"vitis_ai@{board}").container_command(
        "/work/in/model.onnx", "/work/out", "int8", QuantConfig()
    )
    assert argv[6] == arch


U50_IMAGE, U50_VERSION = "xilinx/vitis-ai-cpu:2.5", "vitis-ai-2.5.0"


def test_the_u50_compiles_in_its_catalog_image_and_the_others_in_the_default():
    runner = DockerRunner(offline_transport("/srv/farm"), host_name="vai-box", user="1000:1000")
    images = {}
    for board in ("u50", "zcu104", "vck190"):
        argv = runner.compile_command(
            f"vitis_ai@{board}", JOB, f"/srv/farm/compile/{JOB}", "int8", QuantConfig()
        )
        image_at = argv.index("bash") - 1  # docker run ... IMAGE bash -c SHELL ...
        images[board] = (argv[image_at], argv[image_at + 10])  # the image, and the version the driver records
        version_argv = runner.version_command(f"vitis_ai@{board}", JOB)
        assert version_argv[-3] == argv[image_at]  # the version probe runs in the same image
    assert images == {
        "u50": (U50_IMAGE, U50_VERSION),
        "zcu104": (IMAGE, VERSION),
        "vck190": (IMAGE, VERSION),
    }
    tc = get_toolchain("vitis_ai@u50")
    assert (tc.container_image, tc.version()) == (U50_IMAGE, U50_VERSION)
    assert get_toolchain("vitis_ai").container_image == IMAGE  # no target: the default


def test_a_host_is_chosen_by_the_types_image(tmp_path):
    from farm.inventory import DockerHost, SshEndpoint
    from farm.workers.toolchains.runners import select_host

    ssh = SshEndpoint(host="10.0.0.5", user="farm", key_file="keys/id", known_hosts="keys/known_hosts")
    old = DockerHost(name="vai-2.5", ssh=ssh, runner="docker", images=[U50_IMAGE])  # type: ignore[arg-type]
    new = DockerHost(name="vai-3.5", ssh=ssh, runner="docker", images=[IMAGE])  # type: ignore[arg-type]

    class Inv:
        docker_hosts = [new, old]

    assert select_host(Inv(), "vitis_ai@u50") is old  # type: ignore[arg-type]
    assert select_host(Inv(), "vitis_ai@zcu104") is new  # type: ignore[arg-type]


def _catalog_with(tmp_path, line: str):
    from farm.config import load_settings

    inv = tmp_path / "inv"
    inv.mkdir()
    text = (load_settings().inventory_dir / "board-types.yaml").read_text()
    anchor = "    toolchain: vitis_ai\n"
    at = text.index("  zcu104:\n")
    at = text.index(anchor, at) + len(anchor)
    (inv / "board-types.yaml").write_text(text[:at] + f"    toolchain_image: {line}\n" + text[at:])
    return inv


def test_a_types_image_follows_its_catalog(tmp_path, monkeypatch):
    inv = _catalog_with(tmp_path, '{image: "registry.lab:5000/vai:3.0.1", version: vitis-ai-3.0.1}')
    monkeypatch.setenv("FARM_INVENTORY", str(inv))
    tc = get_toolchain("vitis_ai@zcu104")
    assert (tc.container_image, tc.version()) == ("registry.lab:5000/vai:3.0.1", "vitis-ai-3.0.1")
    assert get_toolchain("vitis_ai@vck190").container_image == IMAGE


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{image: "xilinx/vitis-ai-cpu", version: v1}', "names no tag or digest"),
        ('{image: "--privileged", version: v1}', "is not a Docker image reference"),
        ('{image: "xilinx/vitis-ai-cpu:2.5", version: "2.5 beta"}', "is not a toolchain version"),
        ('{image: "xilinx/vitis-ai-cpu:2.5"}', "missing: required here"),
        ('"xilinx/vitis-ai-cpu:2.5"', "valid dictionary"),
    ],
)
def test_a_bad_toolchain_image_is_a_located_error(tmp_path, line, message):
    from farm.errors import InventoryError
    from farm.inventory import load_catalog

    inv = _catalog_with(tmp_path, line)
    with pytest.raises(InventoryError) as err:
        load_catalog(inv)
    text = str(err.value)
    assert "board-types.yaml:" in text and "board_types.zcu104.toolchain_image" in text and message in text
    lineno = int(text.split("board-types.yaml:")[1].split(":")[0])
    assert "toolchain_image:" in (inv / "board-types.yaml").read_text().splitlines()[lineno - 1]


def test_version_command_needs_no_vitis_ai():
    argv = get_toolchain("vitis_ai@vck190").container_version_command()
    assert (
        argv[0] == "echo"
        and '"target_arch": "DPUCVDX8G/VCK190"' in argv[1]
        and '"version": "vitis-ai-3.5.0"' in argv[1]
    )


@pytest.mark.parametrize(("board", "needle"), [("pynq-z2", "Zynq-7020"), ("ultra96-v2", "arch.json")])
def test_boards_without_a_shipped_target_are_refused_with_the_reason(board, needle):
    with pytest.raises(FarmError, match=needle):
        get_toolchain(f"vitis_ai@{board}").container_command(
            "/work/in/m.onnx", "/work/out", "int8", QuantConfig()
        )


def test_in_process_compile_refuses_clearly(tmp_path):
    with pytest.raises(FarmError, match="runs only inside its Docker image"):
        get_toolchain("vitis_ai@zcu104").compile(tiny_model(), "int8", QuantConfig(), tmp_path)


# -- the in-container driver, run for real against stand-ins for torch, onnx2torch, vai_q_pytorch and
# vai_c_xir (the image is not here; the driver's own logic and its result.json contract are).
_FAKE_TORCH = """
import numpy as np
class _NoGrad:
    def __enter__(self): return self
    def __exit__(self, *a): return False
def no_grad(): return _NoGrad()
def device(name): return name
def from_numpy(a): return np.asarray(a)
"""
_FAKE_ONNX2TORCH = """
class _Module:
    def eval(self): return self
def convert(model): return _Module()
"""
_FAKE_NNDCT = """
import json, os
class torch_quantizer:
    def __init__(self, mode, module, inputs, output_dir, device):
        self.mode, self.output_dir = mode, output_dir
        os.makedirs(output_dir, exist_ok=True)
        self.calls = 0
    def quant_model(self, x):
        self.calls += 1
        if self.mode == "calib" and os.environ.get("CALIB_LOG"):
            with open(os.environ["CALIB_LOG"], "a") as log:
                log.write(json.dumps({"shape": list(x.shape), "mean": float(x.mean())}) + "\\n")
    def export_quant_config(self):
        open(os.path.join(self.output_dir, "quant_info.json"), "w").write("{}")
    def export_xmodel(self, output_dir, deploy_check):
        open(os.path.join(output_dir, "Module_int.xmodel"), "wb").write(b"xmodel")
"""
_FAKE_VAI_C_XIR = """#!/bin/sh
echo "$@" > "$FAKE_LOG"
[ -n "$FAKE_FAIL" ] && { echo "[UNILOG][FATAL] unsupported op" >&2; exit 3; }
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift;; -n) name="$2"; shift;; esac; shift; done
printf compiled > "$out/$name.xmodel"
"""


def _fake_image(tmp_path, with_onnx2torch=True):
    site = tmp_path / "site"
    (site / "pytorch_nndct").mkdir(parents=True)
    (site / "torch.py").write_text(_FAKE_TORCH)
    if with_onnx2torch:
        (site / "onnx2torch.py").write_text(_FAKE_ONNX2TORCH)
    (site / "pytorch_nndct" / "__init__.py").write_text("")
    (site / "pytorch_nndct" / "apis.py").write_text(_FAKE_NNDCT)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "vai_c_xir"
    tool.write_text(_FAKE_VAI_C_XIR)
    tool.chmod(0o755)
    return site, bin_dir


def _run_driver(tmp_path, *, fail=False, with_onnx2torch=True, quant=None):
    import json
    import os
    import shutil
    import subprocess
    import sys

    import onnx

    site, bin_dir = _fake_image(tmp_path, with_onnx2torch)
    model = tmp_path / "in" / "model.onnx"
    model.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_model(), model)
    out = tmp_path / "out"
    tc = get_toolchain("vitis_ai@kv260")
    argv = tc.container_command(str(model), str(out), "int8", quant or QuantConfig(calibration_samples=4))
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "vai_c_xir.args"),
        "CALIB_LOG": str(tmp_path / "calib.log"),
        **({"FAKE_FAIL": "1"} if fail else {}),
    }
    # argv[3:] = the driver's path and its arguments: what `bash -c SHELL` hands to python3 after conda
    # activate. The runner uploads the driver beside the model (container_inputs); so does this test.
    for name, local in tc.container_inputs().items():
        shutil.copy(local, model.parent / name)
    proc = subprocess.run([sys.executable, *argv[3:]], env=env, capture_output=True, text=True, timeout=120)
    result = json.loads((out / "result.json").read_text())
    return proc, result, out


def test_the_driver_writes_the_result_contract(tmp_path):
    proc, result, out = _run_driver(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert result["ok"] is True and result["schema"] == 1
    assert (result["toolchain"], result["name"], result["version"]) == ("vitis_ai@kv260", "vitis_ai", VERSION)
    assert result["target_arch"] == "DPUCZDX8G/KV260" and result["artifact"] == "model.xmodel"
    assert (out / "model.xmodel").read_bytes() == b"compiled" and result["size_bytes"] == 8
    import hashlib

    assert result["artifact_sha256"] == hashlib.sha256(b"compiled").hexdigest()
    args = (tmp_path / "vai_c_xir.args").read_text().split()
    assert args == [
        "-x",
        str(out / "quantized.xmodel"),
        "-a",
        "/opt/vitis_ai/compiler/arch/DPUCZDX8G/KV260/arch.json",
        "-o",
        str(out),
        "-n",
        "model",
    ]


def test_a_failed_vai_c_xir_is_a_model_error(tmp_path):
    proc, result, _ = _run_driver(tmp_path, fail=True)
    assert proc.returncode == 2
    assert result["ok"] is False and result["error_kind"] == "model"
    assert "vai_c_xir failed (exit 3)" in result["error"] and "unsupported op" in result["error"]


def test_an_image_without_onnx2torch_says_so(tmp_path):
    proc, result, _ = _run_driver(tmp_path, with_onnx2torch=False)
    assert proc.returncode == 1
    assert result["error_kind"] == "internal" and "onnx2torch is not installed" in result["error"]


def test_the_driver_calibrates_on_the_sweeps_calibration_data(tmp_path):
    """With calibration data the quantizer sees those inputs (batches of the model's batch), not noise."""
    import hashlib
    import json

    import numpy as np

    calib = tmp_path / "in" / "calibration.npz"
    calib.parent.mkdir()
    np.savez(calib, inputs=np.full((3, 3, 16, 16), 7.0, np.float32))
    sha = hashlib.sha256(calib.read_bytes()).hexdigest()
    quant = QuantConfig(calibration_samples=8, calibration_data=str(calib), calibration_sha256=sha)
    proc, result, _ = _run_driver(tmp_path, quant=quant)
    assert proc.returncode == 0, proc.stderr
    assert result["quant"]["calibration_sha256"] == sha
    calls = [json.loads(line) for line in (tmp_path / "calib.log").read_text().splitlines()]
    assert calls == [{"shape": [1, 3, 16, 16], "mean": 7.0}] * 3  # all 3 samples (fewer than 8 asked)

    wrong = QuantConfig(calibration_samples=8, calibration_data=str(calib), calibration_sha256="0" * 64)
    proc, result, _ = _run_driver(tmp_path / "again", quant=wrong)
    assert proc.returncode == 2 and "does not match its calibration_sha256" in result["error"]
