"""A write that fails on a board is told apart: a full filesystem is "no space left on BOARD:PATH" (a board
fault), anything else keeps SFTP's own words."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import InfraError
from farm.transport.diskspace import NoSpaceError, format_mb
from tests.small_fs import fill, small_tmpfs


def test_an_upload_to_a_full_disk_says_no_space_left(sshd_host, make_transport, tmp_path: Path) -> None:
    local = tmp_path / "model.onnx"
    local.write_bytes(b"x" * 20_000)
    transport = make_transport(sshd_host, name="fpga-3")
    folder = sshd_host.work_dir / "full"
    with small_tmpfs(folder, 256):
        fill(folder)
        assert transport.free_bytes(str(folder / "not" / "made")) == 0  # measured on the folder that exists
        with pytest.raises(NoSpaceError) as info:
            transport.upload(local, str(folder / "a" / "model.onnx"))
        assert isinstance(info.value, InfraError)
        said = str(info.value)
        assert said.startswith(f"no space left on fpga-3:{folder}") and "(0 MB free, " in said
        assert "Failure" not in said
        assert sorted(p.name for p in folder.iterdir()) in (["filler"], ["a", "filler"])  # no temp file left
        assert transport.exec(["true"])[0] == 0  # the connection is fine: only the disk is full


def test_other_write_failures_keep_their_words(sshd_host, make_transport, tmp_path: Path) -> None:
    local = tmp_path / "model.onnx"
    local.write_bytes(b"x" * 100)
    (sshd_host.work_dir / "a-file").write_text("not a folder")
    with pytest.raises(InfraError) as info:
        make_transport(sshd_host).upload(local, str(sshd_host.work_dir / "a-file" / "model.onnx"))
    assert not isinstance(info.value, NoSpaceError)
    assert "SFTP" in str(info.value) and "no space" not in str(info.value)


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (0, "0"),
        (4096, "0.004"),
        (200 * 1024, "0.2"),
        (50 * 1024, "0.049"),
        (1 << 20, "1.0"),
        (3.5 * (1 << 20), "3.5"),
        (512 << 20, "512"),
    ],
)
def test_megabytes_read_well(nbytes: float, text: str) -> None:
    assert format_mb(nbytes) == text
