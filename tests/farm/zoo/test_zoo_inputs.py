"""synthetic_inputs: deterministic, image-like, normalised like ImageNet inputs."""

from __future__ import annotations

import numpy as np
import pytest

from farm.zoo import synthetic_inputs


def test_shape_dtype_and_determinism():
    a = synthetic_inputs((3, 64, 48), 4, seed=1)
    assert a.shape == (4, 3, 64, 48)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, synthetic_inputs((3, 64, 48), 4, seed=1))
    assert not np.array_equal(a, synthetic_inputs((3, 64, 48), 4, seed=2))
    assert not np.array_equal(a[0], a[1])


def test_samples_depend_only_on_seed_and_index():
    full = synthetic_inputs((3, 32, 32), 10, seed=7)
    np.testing.assert_array_equal(full[4:], synthetic_inputs((3, 32, 32), 6, seed=7, start=4))
    np.testing.assert_array_equal(full[:3], synthetic_inputs((3, 32, 32), 3, seed=7))


def test_statistics_look_like_normalised_images():
    x = synthetic_inputs((3, 224, 224), 16, seed=0)
    assert abs(float(x.mean())) < 0.3
    assert 0.7 < float(x.std()) < 1.4
    # Clipped [0, 1] pixels normalised with the ImageNet mean/std.
    assert float(x.min()) >= (0 - 0.485) / 0.229 - 1e-5
    assert float(x.max()) <= (1 - 0.406) / 0.225 + 1e-5
    # Images differ from each other in brightness/contrast.
    assert float(np.std(x.mean(axis=(1, 2, 3)))) > 0.05


def test_images_are_smooth_and_channels_correlated():
    x = synthetic_inputs((3, 128, 128), 8, seed=3).astype(np.float64)
    a, b = x[..., :, :-1].ravel(), x[..., :, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.9  # neighbouring pixels are alike: low-frequency content
    assert np.corrcoef(x[:, 0].ravel(), x[:, 1].ravel())[0, 1] > 0.5  # shared luminance


def test_other_shapes():
    assert synthetic_inputs((1, 28, 28), 2, seed=0).shape == (2, 1, 28, 28)
    assert synthetic_inputs((3, 1, 1), 2, seed=0).shape == (2, 3, 1, 1)
    vec = synthetic_inputs((10,), 3, seed=0)
    assert vec.shape == (3, 10) and vec.dtype == np.float32
    assert synthetic_inputs((3, 8, 8), 0, seed=0).shape == (0, 3, 8, 8)
    with pytest.raises(ValueError):
        synthetic_inputs((3, 0, 8), 1, seed=0)
    with pytest.raises(ValueError):
        synthetic_inputs((3, 8, 8), 1, seed=-1)
