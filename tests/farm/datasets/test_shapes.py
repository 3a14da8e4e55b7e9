"""The procedural shapes set is deterministic, and shapes_net (trained on it with numpy) is far above chance on
held-out images, through numpy, through its ONNX export and through PNG files packed like a sweep's dataset."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from farm.datasets import train
from farm.datasets.imagefolder import Preprocessing, build_pack
from farm.datasets.shapes import CLASSES, HELDOUT_SEED_OFFSET, generate, make_image, write_image_folder
from farm.zoo.registry import build_zoo_model, get_zoo_model

CHANCE = 1.0 / len(CLASSES)


def test_generator_is_deterministic_and_per_image():
    a_imgs, a_labels = generate(4, seed=0)
    b_imgs, b_labels = generate(4, seed=0)
    np.testing.assert_array_equal(a_imgs, b_imgs)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert a_imgs.shape == (4 * len(CLASSES), 32, 32, 3) and a_imgs.dtype == np.uint8
    # image k of class c depends only on (seed, c, k)
    np.testing.assert_array_equal(make_image(2, 3, seed=0), a_imgs[2 * 4 + 3])
    other, _ = generate(4, seed=HELDOUT_SEED_OFFSET)
    assert not np.array_equal(other, a_imgs)
    assert len({img.tobytes() for img in a_imgs}) == len(a_imgs)  # no duplicates


def test_image_folder_is_written_identically(tmp_path):
    one = write_image_folder(tmp_path / "a", per_class=2)
    two = write_image_folder(tmp_path / "b", per_class=2)
    assert [p.relative_to(tmp_path / "a") for p in one] == [p.relative_to(tmp_path / "b") for p in two]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(one, two, strict=True))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(CLASSES) == list(CLASSES)


def test_training_is_deterministic():
    a = train.train(epochs=1, per_class=4)
    b = train.train(epochs=1, per_class=4)
    for (wa, ba), (wb, bb) in zip(a.convs, b.convs, strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    np.testing.assert_array_equal(a.fc[0], b.fc[0])


def test_trained_model_is_far_above_chance_on_held_out_images():
    weights = train.trained_weights()
    x, labels = train.heldout_set()
    predicted = train.forward(weights, x).argmax(axis=1)
    accuracy = float((predicted == labels).mean())
    assert accuracy > 0.8 > 4 * CHANCE, accuracy
    per_class = [float((predicted[labels == c] == c).mean()) for c in range(len(CLASSES))]
    assert min(per_class) > 0.5, dict(zip(CLASSES, per_class, strict=True))


def test_onnx_export_agrees_with_numpy_and_scores_on_png_files(tmp_path):
    zoo = get_zoo_model("shapes_net")
    assert zoo.input_shape == (3, 32, 32) and zoo.num_classes == len(CLASSES)
    model = build_zoo_model("shapes_net", 4)
    assert model.SerializeToString() == build_zoo_model("shapes_net", 4).SerializeToString()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x, labels = train.heldout_set(per_class=5)
    onnx_logits = np.concatenate([session.run(None, {"input": x[i : i + 4]})[0] for i in range(0, 40, 4)])
    np.testing.assert_allclose(onnx_logits, train.forward(train.trained_weights(), x), rtol=1e-4, atol=1e-4)
    # the same images as PNG files in an ImageFolder, packed the way a sweep's dataset is
    write_image_folder(tmp_path / "shapes", per_class=5)
    pack = build_pack(tmp_path / "shapes", (3, 32, 32), Preprocessing(), tmp_path / "cache")
    with np.load(pack.path) as z:
        np.testing.assert_allclose(z["inputs"], x, atol=1e-5)
        np.testing.assert_array_equal(z["labels"], labels)
