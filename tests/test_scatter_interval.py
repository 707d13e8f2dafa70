"""The sampling error of the pooled SVE scatter, and when a noise model is said to misstate it."""

from __future__ import annotations

import numpy as np
import pytest

from stochhom.report.html import SCATTER_RATIO_OK, scatter_misstated
from stochhom.study.runner import _pooled_interval, _scatter
from stochhom.surrogates.data import TrainingData


def _replicates(rng: np.random.Generator, points: int, reps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A design whose scatter grows 10-fold (in std) across the points, as it does with the contrast."""
    x = rng.uniform(size=points)
    sd = 0.02 + 0.2 * x**2
    X = np.repeat(x, reps)[:, None]
    y = np.repeat(1.0 + x, reps) + np.repeat(sd, reps) * rng.standard_normal(points * reps)
    return X, y, sd


def test_the_interval_of_the_pooled_scatter_covers_the_design_average() -> None:
    """Over 300 seeded designs of 64 points x 3 replicates (the quickstart's), the 95 % bootstrap
    interval covers the design-average variance E sd^2 (the expectation of the pooled variance)
    at close to its nominal rate: binomial standard error 0.013, so the band is about 4 of them."""
    rng = np.random.default_rng(20)
    hits = 0
    for _ in range(300):
        X, y, sd = _replicates(rng, 64, 3)
        sc = _scatter(TrainingData(X, y, np.repeat(np.arange(64), 3), ["x"], ["y"]))
        lo, hi = sc["scatter_variance_interval"]
        assert lo <= sc["scatter_variance"] <= hi
        hits += lo <= np.mean(sd**2) <= hi
    assert 0.88 <= hits / 300 <= 0.99


def test_two_replicates_at_few_points_give_a_wide_interval() -> None:
    rng = np.random.default_rng(3)
    X, y, _ = _replicates(rng, 16, 2)
    sc = _scatter(TrainingData(X, y, np.repeat(np.arange(16), 2), ["x"], ["y"]))
    lo, hi = sc["scatter_variance_interval"]
    assert hi / lo > 4  # the pooled variance of 16 two-replicate points is known to a factor of several
    X, y, _ = _replicates(rng, 256, 8)
    sc = _scatter(TrainingData(X, y, np.repeat(np.arange(256), 8), ["x"], ["y"]))
    lo, hi = sc["scatter_variance_interval"]
    assert hi / lo < 1.6


def test_no_interval_without_enough_replicated_points() -> None:
    assert _pooled_interval(np.array([1.0, 0.0, 2.0]), np.array([1, 0, 1])) is None
    sc = _scatter(TrainingData(np.arange(5.0)[:, None], np.arange(5.0), np.arange(5), ["x"], ["y"]))
    assert sc["scatter_variance"] is None and "scatter_variance_interval" not in sc


@pytest.mark.parametrize(("ratio", "interval", "flagged"), [
    (0.49, [0.21, 1.6], False),   # the shipped multi-fidelity study: within the replicates' sampling error
    (0.3, [0.22, 0.41], True),    # the whole interval below the band
    (3.0, [2.2, 4.1], True),
    (1.1, [0.8, 1.5], False),
    (0.3, None, True),            # results written before the interval existed: the point rule
    (1.0, None, False),
    (float("nan"), None, False),
])
def test_a_noise_model_misstates_the_scatter_only_beyond_its_sampling_error(ratio, interval, flagged) -> None:
    assert SCATTER_RATIO_OK == (0.5, 2.0)
    assert scatter_misstated(ratio, interval) is flagged
