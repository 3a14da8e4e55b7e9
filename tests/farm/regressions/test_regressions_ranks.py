"""The rank scan's p-value is calibrated: under no change, P(p < alpha) <= alpha (by simulation)."""

from __future__ import annotations

import numpy as np
import pytest

from farm.regressions import ranks


def test_midranks_average_ties() -> None:
    r, ties = ranks.midranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0]))
    assert r.tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]
    assert ties == 3**3 - 3


@pytest.mark.parametrize("n", [12, 30, 80, 200])
def test_max_p_value_is_calibrated_or_conservative(n: int) -> None:
    rng = np.random.default_rng(n)
    ps = np.array([ranks.scan(rng.standard_normal(n), 5).p_value for _ in range(2000)])
    for alpha in (0.01, 0.05):
        rate = float(np.mean(ps < alpha))
        assert rate <= alpha * 1.3 + 0.003, (alpha, rate)  # binomial slack over 2000 draws
        if n >= 30:  # short segments use Bonferroni, knowingly conservative
            assert rate >= alpha * 0.3, (alpha, rate)  # not so conservative that it loses power


def test_scan_finds_the_split_and_its_sign() -> None:
    x = np.r_[np.zeros(20), np.ones(20)] + 0.01 * np.random.default_rng(0).standard_normal(40)
    s = ranks.scan(x, 5)
    assert s.split == 20 and s.z > 0 and s.p_value < 1e-5
    assert ranks.z_at(x, 20) == pytest.approx(s.z)
    assert ranks.scan(-x, 5).z < 0
