"""The sweep's `dataset:` field: a bad ImageFolder is refused at submit with file:line: field, and a good one
is resolved against the sweep file's folder (farm/sweep/load.py, farm/datasets/imagefolder.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farm.config import load_settings
from farm.datasets.imagefolder import Preprocessing, build_pack, load_image
from farm.datasets.shapes import CLASSES, write_image_folder
from farm.errors import SweepError
from farm.inventory import load_inventory
from farm.sweep.load import load_sweep
from tests.conftest import write_sweep

BODY = """\
name: acc
models: [resnet18, shapes_net]
precisions: [fp32]
targets: [cpu]
dataset:
  path: {path}
"""


def _load(tmp_path: Path, path: str):
    return load_sweep(
        write_sweep(tmp_path, BODY.format(path=path)), load_inventory(load_settings().inventory_dir)
    )


def _error(tmp_path: Path, path: str) -> SweepError:
    with pytest.raises(SweepError) as info:
        _load(tmp_path, path)
    err = info.value
    assert err.line == 6 and err.field == "dataset.path", err
    assert str(err).startswith(f"{tmp_path / 'sweep.yaml'}:6: dataset.path: ")
    return err


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    write_image_folder(root, per_class=3)
    return root


def test_good_folder_resolves_against_the_sweep_file(tmp_path, shapes_dir):
    (tmp_path / "data").symlink_to(shapes_dir)
    loaded = _load(tmp_path, "data")
    assert loaded.spec.dataset.path == str((tmp_path / "data").resolve())
    assert loaded.spec.dataset.preprocessing.channel_order == "RGB"


def test_string_shorthand(tmp_path, shapes_dir):
    body = BODY.format(path="x").replace("dataset:\n  path: x", f"dataset: {shapes_dir}")
    loaded = load_sweep(write_sweep(tmp_path, body), load_inventory(load_settings().inventory_dir))
    assert loaded.spec.dataset.path == str(shapes_dir)


def test_missing_folder(tmp_path):
    assert "dataset folder not found" in str(_error(tmp_path, "nowhere"))


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    assert "not a folder" in str(_error(tmp_path, "f.txt"))


def test_no_class_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    assert "no class folders" in str(_error(tmp_path, "flat"))


def test_zero_images(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "notes.txt").write_text("no images here")
    assert "0 images" in str(_error(tmp_path, "empty"))


def test_unreadable_image_is_named(tmp_path, shapes_dir):
    import shutil

    shutil.copytree(shapes_dir, tmp_path / "bad")
    broken = tmp_path / "bad" / "circle" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    err = _error(tmp_path, "bad")
    assert "unreadable image" in str(err) and "broken.png" in str(err)


def test_more_classes_than_the_model_has_outputs(tmp_path):
    root = tmp_path / "many"
    for i in range(9):  # shapes_net has 8 outputs
        write_image_folder(root / "tmp", per_class=1)
        (root / "tmp" / "circle" / "circle_0000.png").rename(root / f"class{i}.png")
        (root / f"c{i}").mkdir()
        (root / f"class{i}.png").rename(root / f"c{i}" / "img.png")
    import shutil

    shutil.rmtree(root / "tmp")
    err = _error(tmp_path, "many")
    assert "9 classes" in str(err) and "'shapes_net' has 8 outputs" in str(err)


def test_preprocessing_is_checked_and_located(tmp_path, shapes_dir):
    body = BODY.format(path=shapes_dir) + "  preprocessing:\n    channel_order: GBR\n"
    with pytest.raises(SweepError) as info:
        load_sweep(write_sweep(tmp_path, body), load_inventory(load_settings().inventory_dir))
    assert info.value.field == "dataset.preprocessing.channel_order" and info.value.line == 8


def test_pack_is_content_addressed_and_preprocessed(tmp_path, shapes_dir):
    prep = Preprocessing()
    a = build_pack(shapes_dir, (3, 32, 32), prep, tmp_path / "cache")
    b = build_pack(shapes_dir, (3, 32, 32), prep, tmp_path / "cache")
    assert a == b and a.samples == 3 * len(CLASSES) and a.classes == tuple(sorted(CLASSES))
    bgr = build_pack(shapes_dir, (3, 32, 32), Preprocessing(channel_order="BGR"), tmp_path / "cache")
    assert bgr.key != a.key
    with np.load(a.path) as z, np.load(bgr.path) as zb:
        assert z["inputs"].shape == (24, 3, 32, 32) and z["inputs"].dtype == np.float32
        assert list(z["labels"]) == [i for i in range(len(CLASSES)) for _ in range(3)]
        np.testing.assert_array_equal(zb["inputs"], z["inputs"][:, ::-1])
    one = load_image(sorted(shapes_dir.glob("circle/*.png"))[0], (3, 16, 16), prep)
    assert one.shape == (3, 16, 16)  # resized to the model's size


def test_example_sweep_loads_next_to_a_made_dataset(tmp_path, shapes_dir, monkeypatch):
    lab = tmp_path / "lab.yaml"  # a lab with the example's targets (`farm lab up` writes one like it)
    lab.write_text(
        "boards:\n  - name: local-cpu\n    type: cpu\n"
        f"  - name: zcu104-emu-0\n    type: zcu104\n    emulation: {{root: {tmp_path}, time_scale: 0.5}}\n"
    )
    monkeypatch.setenv("FARM_LAB", str(lab))
    example = Path(__file__).resolve().parents[3] / "farm" / "examples" / "accuracy.yaml"
    (tmp_path / "shapes").symlink_to(shapes_dir)
    loaded = load_sweep(
        write_sweep(tmp_path, example.read_text()), load_inventory(load_settings().inventory_dir)
    )
    assert loaded.spec.models[0].zoo == "shapes_net"
    assert loaded.spec.dataset.path == str((tmp_path / "shapes").resolve())


CALIBRATION = """\
name: cal
models: [shapes_net]
precisions: [{precisions}]
targets: [cpu]
dataset:
  path: {dataset}
  preprocessing: {{mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}
quantization:
  calibration_samples: 100
  calibration_dataset: {calibration}
"""


def _load_calibration(tmp_path: Path, calibration: str, dataset: str, precisions: str = "int8"):
    body = CALIBRATION.format(calibration=calibration, dataset=dataset, precisions=precisions)
    return load_sweep(write_sweep(tmp_path, body), load_inventory(load_settings().inventory_dir))


def test_calibration_dataset_resolves_and_takes_the_datasets_preprocessing(tmp_path, shapes_dir):
    (tmp_path / "cal").symlink_to(shapes_dir)
    loaded = _load_calibration(tmp_path, "cal", str(shapes_dir))
    cal = loaded.spec.quantization.calibration_dataset
    assert cal.path == str((tmp_path / "cal").resolve())
    assert cal.preprocessing.mean == (0.5, 0.5, 0.5) and cal.preprocessing.std == (0.25, 0.25, 0.25)
    warnings = " | ".join(loaded.warnings)
    assert "is the evaluation dataset" in warnings  # the same folder as dataset: (through the link)
    assert "has 24 images, fewer than calibration_samples (100)" in warnings


def test_calibration_dataset_errors_are_located(tmp_path, shapes_dir):
    with pytest.raises(SweepError) as info:
        _load_calibration(tmp_path, "nowhere", str(shapes_dir))
    err = info.value
    assert (err.line, err.field) == (10, "quantization.calibration_dataset.path"), err
    assert "calibration dataset: dataset folder not found" in str(err)


def test_calibration_dataset_without_int8_is_unused(tmp_path, shapes_dir):
    loaded = _load_calibration(tmp_path, str(shapes_dir), str(shapes_dir), precisions="fp32")
    assert any("calibration_dataset is unused" in w for w in loaded.warnings)
