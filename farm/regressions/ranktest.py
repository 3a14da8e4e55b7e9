"""A one-sided two-sample rank test (Mann-Whitney), for the few runs alerts compare: confirmation re-runs
against the before-artifact or the baseline runs, and a recovered series against its baseline. Exact for
small samples (3 against 3 can reach p = 0.05: every value worse), the normal approximation with the tie
correction beyond; numpy-free and scipy-free."""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations


def mann_whitney_p(worse: list[float], ref: list[float], higher_is_better: bool) -> float:
    """One-sided p-value that ``worse`` is worse than ``ref`` by the metric's direction (exact while the
    splits of the pooled values number at most 20,000, the normal approximation with ties beyond)."""
    if not worse or not ref:
        return 1.0
    sign = -1.0 if higher_is_better else 1.0  # "worse" = larger after the sign
    a, b = [sign * x for x in worse], [sign * x for x in ref]
    u = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    n, m = len(a), len(b)
    if math.comb(n + m, n) <= 20000:  # exact: U over every split of the pooled values
        pooled = a + b
        count = total = 0
        for idx in combinations(range(n + m), n):
            chosen = set(idx)
            ua = sum(
                (pooled[i] > pooled[j]) + 0.5 * (pooled[i] == pooled[j])
                for i in chosen
                for j in range(n + m)
                if j not in chosen
            )
            total += 1
            count += ua >= u - 1e-9
        return count / total
    ranks = _ranks(a + b)
    ties = Counter(a + b)
    tie_term = sum(t**3 - t for t in ties.values()) / ((n + m) * (n + m - 1))
    sigma = math.sqrt(n * m / 12 * ((n + m + 1) - tie_term))
    ra = sum(ranks[:n])
    u_a = ra - n * (n + 1) / 2
    if sigma == 0:
        return 1.0
    z = (u_a - n * m / 2 - 0.5) / sigma
    return 0.5 * math.erfc(z / math.sqrt(2))


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks
