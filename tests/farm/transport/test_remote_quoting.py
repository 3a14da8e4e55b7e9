"""Remote command building: hostile values are rejected or arrive as ONE literal argument (real sshd)."""

from __future__ import annotations

import json

import pytest

from farm.errors import FarmError
from farm.transport.remote import (
    UnsafeRemoteValue,
    quote_argv,
    remote_join,
    validate_name,
    validate_remote_path,
    validate_sha256,
)
from tests.farm.transport.conftest import BOARD_PYTHON


def _hostile(canary_dir, marker) -> list[str]:
    """Values as they could come from an inventory or a sweep file; any one run as code would leave a trace."""
    return [
        f"a;rm -rf {canary_dir}",  # `a;rm -rf /`, aimed at a canary instead of the machine
        f"a; touch {marker}",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"x\ny\ntouch {marker}",
        f"x' ; touch {marker}; echo '",
        f'x" ; touch {marker}; echo "',
        f"x && touch {marker} || touch {marker}",
        f"> {marker}",
        f"| tee {marker}",
        "../../etc",
        "*",
        "~root",
        "-n",
        "--config=-",
        "",
        " lead and trail ",
        "$HOME ${PATH} $((1+1))",
        "\\\\ \\n \\",
        "tab\there",
        "ünïcode ✓",
    ]


@pytest.fixture
def traps(tmp_path):
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("x")
    return canary, tmp_path / "INJECTED"


def test_hostile_values_reach_the_board_literally(sshd_host, make_transport, traps):
    canary, marker = traps
    values = _hostile(canary, marker)
    transport = make_transport(sshd_host)

    for value in values:
        rc, out, err = transport.exec(["printf", "%s", value])
        assert (rc, out) == (0, value), (value, err)
    # All at once, as separate argv entries of one remote program.
    rc, out, err = transport.exec(
        [BOARD_PYTHON, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *values]
    )
    assert rc == 0, err
    assert json.loads(out) == values

    assert not marker.exists()
    assert (canary / "keep").read_text() == "x"


def test_hostile_agent_config_reaches_the_agent_literally(sshd_host, make_transport, traps):
    canary, marker = traps
    values = _hostile(canary, marker)
    transport = make_transport(sshd_host)
    outcome = transport.run_agent({"values": values, "model": values[2]}, timeout_s=30)
    assert json.loads(outcome.stdout)["config"] == {"values": values, "model": values[2]}
    assert not marker.exists() and (canary / "keep").exists()


def test_nul_cannot_be_passed_and_is_rejected(sshd_host, make_transport):
    transport = make_transport(sshd_host)
    with pytest.raises(UnsafeRemoteValue, match="NUL"):
        transport.exec(["printf", "%s", "a\x00b"])
    with pytest.raises(UnsafeRemoteValue, match="list"):
        transport.exec("rm -rf /tmp/x")  # type: ignore[arg-type]
    assert transport.connects == 0  # rejected before anything was sent


@pytest.mark.parametrize(
    "work_dir", ["relative/dir", "/tmp/../etc", "/tmp/farm/", "/tmp//farm", "/tmp/./farm", "/tmp/x\ny", ""]
)
def test_transport_rejects_unsafe_work_dirs(sshd_host, make_transport, work_dir):
    with pytest.raises(FarmError):
        make_transport(sshd_host, work_dir=work_dir)


def test_quote_argv():
    assert quote_argv(["printf", "%s", "a b", "$(x)", ""]) == "printf %s 'a b' '$(x)' ''"
    for bad in ([], "ls -l", ["ok", 3], ["a\x00"]):
        with pytest.raises(UnsafeRemoteValue):
            quote_argv(bad)  # type: ignore[arg-type]


def test_validate_remote_path():
    for good in ["/", "/tmp/farm", "/home/xilinx/farm-work", "/opt/a.b/c_d"]:
        assert validate_remote_path(good) == good
    bad = {
        "tmp/farm": "absolute",
        "~/farm": "absolute",
        "/tmp/../etc": "'..'",
        "/..": "'..'",
        "/tmp/farm/": "normalized",
        "/tmp//farm": "normalized",
        "//tmp": "normalized",
        "/tmp/./farm": "normalized",
        "/tmp/x\ny": "newline",
        "/tmp/x\x00": "NUL",
        "": "non-empty",
    }
    for path, reason in bad.items():
        with pytest.raises(UnsafeRemoteValue, match=reason):
            validate_remote_path(path)


def test_validate_name_and_join():
    for good in ["board1", "zcu102-a", "A.b_c-d", "x" * 64, "0"]:
        assert validate_name(good) == good
    for bad in [
        "",
        ".",
        "..",
        "../../etc",
        "-rf",
        ".hidden",
        "a/b",
        "a b",
        "a;b",
        "$(x)",
        "`id`",
        "x\ny",
        "x" * 65,
        "é",
    ]:
        with pytest.raises(UnsafeRemoteValue, match="invalid name"):
            validate_name(bad)
    with pytest.raises(UnsafeRemoteValue):
        validate_name("ok\n")  # a trailing newline must not slip through a `$` anchor
    assert remote_join("/tmp/farm", "artifacts", "k1") == "/tmp/farm/artifacts/k1"
    with pytest.raises(UnsafeRemoteValue):
        remote_join("/tmp/farm", "..", "etc")
    assert validate_sha256("a" * 64) == "a" * 64
    with pytest.raises(UnsafeRemoteValue):
        validate_sha256("A" * 64)
