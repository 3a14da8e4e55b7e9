"""The real Vitis AI toolchain: its docker command line as built (no Docker engine here), and a clear
refusal in-process."""

from __future__ import annotations

import shlex

import pytest

from farm.errors import FarmError
from farm.transport.remote import quote_argv
from farm.transport.ssh import SshTransport
from tests.conftest import tiny_model
from workers.toolchains.base import QuantConfig
from workers.toolchains.registry import get_toolchain
from workers.toolchains.runners import DockerRunner
from workers.toolchains.vitis_ai import DRIVER, IMAGE, SHELL, VERSION

JOB = "0123456789abcdef0123456789abcdef"


def offline_transport(work_dir: str) -> SshTransport:
    return SshTransport("192.0.2.1", 22, "farm", "/nonexistent/key", "/nonexistent/known_hosts", work_dir)


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
        DRIVER,
        "/work/in/model.onnx",
        "/work/out",
        "/opt/vitis_ai/compiler/arch/DPUCZDX8G/ZCU104/arch.json",
        '{"calibration_samples":64,"method":"minmax","per_channel":true,"seed":3}',
        "vitis_ai@zcu104",
        "vitis-ai-3.5.0",
        "DPUCZDX8G/ZCU104",
    ]
    assert "conda activate vitis-ai-pytorch" in SHELL and 'exec python3 -c "$0" "$@"' in SHELL
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
