"""Gaussian random fields and their level cuts against exact statistics.

References (validation.md, 'Level-cut Gaussian random field'): phi = Phi(alpha);
S2(r) = Phi_2(alpha, alpha; rho(r)); a periodic FFT synthesis has the periodized
correlation sum_n rho(r + nL). Monte Carlo tolerances are 4 standard errors over the
replicates (a two-sided 4-sigma band fails by chance with probability 6e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import stochhom as sh
from stochhom.errors import InputError
from stochhom.microstructure import gaussian_field, grid_covariance, level_cut
from stochhom.microstructure.random_fields import correlation
from stochhom.tensors import rotation_matrix


def _periodized(shape, ell, model, nu=None, frame=None, images=4):
    """Brute force: sum over periodic images of rho(|diag(1/ell) R^T (x + nL)|), normalized."""
    dim = len(shape)
    frame = np.eye(dim) if frame is None else frame
    metric = np.diag(1.0 / np.asarray(ell, float)) @ frame.T
    grids = np.meshgrid(*[np.fft.fftfreq(n, 1.0 / n) for n in shape], indexing="ij")
    total = np.zeros(shape)
    for img in np.ndindex(*([2 * images + 1] * dim)):
        x = np.stack([grids[a] + (img[a] - images) * shape[a] for a in range(dim)])
        u = np.einsum("ij,j...->i...", metric, x)
        total += correlation(np.sqrt(np.sum(u**2, axis=0)), model, nu)
    return total / total.flat[0]


@pytest.mark.parametrize(
    ("shape", "ell", "model", "nu", "angles"),
    [
        ((32, 24), 3.0, "gaussian", None, None),
        ((32, 24), 3.0, "exponential", None, None),
        ((32, 24), (6.0, 2.0), "matern", 1.5, 0.4),
        ((12, 10, 8), (3.0, 2.0, 1.5), "gaussian", None, (0.3, 0.8, 1.2)),
        ((12, 10, 8), 2.5, "matern", 0.8, None),
        ((16, 16), 8.0, "exponential", None, None),  # long correlation: periodic images matter
    ],
)
def test_grid_covariance_is_the_periodized_correlation(shape, ell, model, nu, angles) -> None:
    """Circulant embedding is exact on the grid: the field's covariance is the periodized
    model correlation (images neglected only below IMAGE_TOL = 1e-6)."""
    dim = len(shape)
    frame = None if angles is None else rotation_matrix(np.asarray(angles), dim)
    images = 4 if dim == 3 else 12  # enough shells for the brute force to be accurate itself
    exact = _periodized(shape, np.broadcast_to(np.asarray(ell, float), (dim,)), model, nu, frame, images)
    cov = grid_covariance(shape, ell, model=model, nu=nu, angles=angles)
    np.testing.assert_allclose(cov, exact, atol=5e-6)


def test_exponential_is_matern_one_half() -> None:
    a = grid_covariance((20, 20), 3.0, model="exponential")
    b = grid_covariance((20, 20), 3.0, model="matern", nu=0.5)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_anisotropy_and_orientation() -> None:
    """Correlation lengths (8, 2): long along x; rotated by 90 degrees: long along y."""
    c = grid_covariance((64, 64), (8.0, 2.0))
    assert c[5, 0] == pytest.approx(np.exp(-0.5 * (5 / 8) ** 2), abs=1e-9)
    assert c[0, 5] == pytest.approx(np.exp(-0.5 * (5 / 2) ** 2), abs=1e-9)
    r = grid_covariance((64, 64), (8.0, 2.0), angles=np.pi / 2)
    np.testing.assert_allclose(r, c.T, atol=1e-12)


def test_field_covariance_matches_the_grid_covariance() -> None:
    """E[<Y(x) Y(x + r)>_x] = C(r) exactly; checked at several lags over 200 fields."""
    shape, ell = (32, 32), 3.0
    rng = np.random.default_rng(0)
    lags = [(0, 0), (1, 0), (3, 0), (0, 4), (2, 2), (6, 1)]
    est = np.array([[np.mean(y * np.roll(y, (-a, -b), axis=(0, 1))) for a, b in lags]
                    for y in (gaussian_field(shape, ell, rng) for _ in range(200))])
    cov = grid_covariance(shape, ell)
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(est.shape[0])
    expected = np.array([cov[a, b] for a, b in lags])
    assert np.all(np.abs(mean - expected) <= 4 * se + 1e-12)


def _phi2(alpha: float, rho: np.ndarray) -> np.ndarray:
    """Bivariate normal CDF Phi_2(alpha, alpha; rho)."""
    out = []
    for r in np.atleast_1d(rho):
        if r > 1 - 1e-12:
            out.append(stats.norm.cdf(alpha))
        else:
            out.append(stats.multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]]).cdf([alpha, alpha]))
    return np.array(out)


@pytest.mark.parametrize("phi", [0.5, 0.3])
def test_level_cut_statistics(phi: float) -> None:
    """Fixed threshold: E[phi_sample] = Phi(alpha) and S2(r) = Phi_2(alpha, alpha; C(r))
    at grid lags, C the exact grid covariance (60 samples of 48^2, 4 SE)."""
    shape, ell, n = (48, 48), 2.5, 60
    ens = sh.generate("gaussian", shape, n=n, rng=42, volume_fraction=phi, correlation_length=ell)
    images = ens["phase"].values
    fractions = (images == 1).mean(axis=(1, 2))
    assert abs(fractions.mean() - phi) <= 4 * fractions.std(ddof=1) / np.sqrt(n)
    lags = [(1, 0), (0, 2), (3, 1), (5, 0), (8, 3)]
    ind = (images == 1).astype(float)
    est = np.array([[np.mean(i * np.roll(i, (-a, -b), axis=(0, 1))) for a, b in lags] for i in ind])
    cov = grid_covariance(shape, ell)
    alpha = stats.norm.ppf(phi)
    expected = _phi2(alpha, np.array([cov[a, b] for a, b in lags]))
    if phi == 0.5:  # the closed form at phi = 1/2
        np.testing.assert_allclose(expected, 0.25 + np.arcsin([cov[a, b] for a, b in lags]) / (2 * np.pi), atol=1e-6)
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(mean - expected) <= 4 * se)


def test_quantile_cut_gives_exact_fractions() -> None:
    ens = sh.generate("gaussian", (40, 30), n=5, rng=1, volume_fraction=0.37, correlation_length=3.0, cut="quantile")
    fr = (ens["phase"].values == 1).mean(axis=(1, 2))
    assert np.all(np.abs(fr - 0.37) <= 1 / 1200 + 1e-12)
    # while the fixed threshold lets the fraction fluctuate between samples
    ens2 = sh.generate("gaussian", (40, 30), n=5, rng=1, volume_fraction=0.37, correlation_length=3.0)
    assert np.ptp((ens2["phase"].values == 1).mean(axis=(1, 2))) > 0.01


def test_multiphase_thresholds() -> None:
    """Fractions (0.2, 0.3) for phases 1 and 2; phase 0 takes the rest (Y above both cuts)."""
    n = 40
    ens = sh.generate("gaussian", (48, 48), n=n, rng=3, volume_fraction=[0.2, 0.3], correlation_length=2.0)
    im = ens["phase"].values
    for label, target in [(1, 0.2), (2, 0.3), (0, 0.5)]:
        f = (im == label).mean(axis=(1, 2))
        assert abs(f.mean() - target) <= 4 * f.std(ddof=1) / np.sqrt(n)
    y = np.array([[-2.0, -0.5, 0.1, 3.0]])
    np.testing.assert_array_equal(level_cut(y, [0.2, 0.3]), [[1, 2, 0, 0]])  # alphas -0.84, 0.0


def test_3d_field_is_standard_and_periodic() -> None:
    """E[<Y>] = 0 and E[<Y^2>] = 1 exactly (spatial averages over the cell, 40 fields, 4 SE)."""
    rng = np.random.default_rng(5)
    fields = [gaussian_field((24, 20, 16), 2.0, rng, model="matern", nu=1.5) for _ in range(40)]
    means = np.array([f.mean() for f in fields])
    squares = np.array([np.mean(f**2) for f in fields])
    assert abs(means.mean()) <= 4 * means.std(ddof=1) / np.sqrt(40)
    assert abs(squares.mean() - 1.0) <= 4 * squares.std(ddof=1) / np.sqrt(40)
    cov = grid_covariance((24, 20, 16), 2.0, model="matern", nu=1.5)
    assert cov[0, 0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(cov[1, 0, 0], cov[-1, 0, 0], atol=1e-12)  # periodic and even


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"volume_fraction": 0.0}, "volume_fraction"),
        ({"volume_fraction": 1.2}, "volume_fraction"),
        ({"volume_fraction": [0.6, 0.5]}, "sum to less than 1"),
        ({"correlation_length": -1.0}, "correlation_length"),
        ({"correlation_length": (1.0, 2.0, 3.0)}, "correlation_length"),
        ({"model": "spherical"}, "unknown correlation model"),
        ({"model": "matern"}, "smoothness nu"),
        ({"cut": "median"}, "cut must be"),
        ({"angles": (0.1, 0.2)}, "angles"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    params = {"volume_fraction": 0.3, "correlation_length": 2.0, **kwargs}
    with pytest.raises(InputError, match=match):
        sh.generate("gaussian", (16, 16), n=1, rng=0, **params)
