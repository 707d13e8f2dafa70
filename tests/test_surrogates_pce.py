"""Polynomial chaos: exact coefficients of polynomial targets, Sobol indices against
analytic values, the analytic LOO error against brute force, sparse support recovery,
calibrated predictive intervals, the scikit-learn contract and the save/load round trip."""

from __future__ import annotations

import time
import warnings

import chaospy as cp
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, cross_validate

from stochhom.errors import InputError
from stochhom.surrogates.distributions import InputDistribution
from stochhom.surrogates.pce import (
    PCE,
    OutOfDomainWarning,
    _correction,
    _ols,
    _sparse_support,
    design_matrix,
    multi_indices,
    pce_sobol_indices,
)


def uniform(lo: float, hi: float) -> dict:
    return {"distribution": "uniform", "low": lo, "high": hi}


def normal(mean: float, std: float) -> dict:
    return {"distribution": "normal", "mean": mean, "std": std}


UNIT2 = {"a": uniform(2.0, 6.0), "b": uniform(-1.0, 1.0)}  # xi_a = (a - 4)/2, xi_b = b
GAUSS2 = {"a": normal(1.0, 2.0), "b": normal(-3.0, 0.5)}  # xi_a = (a - 1)/2, xi_b = (b + 3)/0.5
PI3 = {f"x{i}": uniform(-np.pi, np.pi) for i in range(3)}


def coefficient_of(model: PCE, alpha: tuple[int, ...]) -> float:
    row = np.flatnonzero(np.all(model.multi_indices_ == alpha, axis=1))
    return float(model.coefficients_[row[0]])


# --------------------------------------------------------------------------------------
# basis
# --------------------------------------------------------------------------------------
def test_multi_index_sets():
    """Total degree has C(D+p, p) terms; the hyperbolic q = 0.5 set keeps single-variable terms
    up to D and drops high interactions (|alpha|_0.5 <= D)."""
    from math import comb

    for p, d in [(1, 5), (2, 4), (3, 12), (5, 5)]:
        idx = multi_indices(p, d)
        assert idx.shape == (comb(d + p, p), p)
        assert np.all(idx[0] == 0) and np.all(np.diff(idx.sum(axis=1)) >= 0)
        assert len({tuple(r) for r in idx}) == len(idx)
    hyp = multi_indices(3, 4, 0.5)
    qn = (np.sqrt(hyp).sum(axis=1)) ** 2
    assert np.all(qn <= 4 + 1e-12)
    brute = [a for a in np.ndindex(5, 5, 5) if sum(np.sqrt(a)) ** 2 <= 4 + 1e-12]
    assert len(hyp) == len(brute) and {tuple(r) for r in hyp} == set(brute)
    assert [4, 0, 0] in hyp.tolist() and [1, 1, 0] in hyp.tolist() and [2, 1, 0] not in hyp.tolist()


def test_basis_matches_chaospy_orthonormal_expansion():
    """Our recurrence basis equals chaospy's generate_expansion(normed=True) for each marginal
    (orthonormal polynomials are unique up to sign; both have positive leading coefficients)."""
    x = np.linspace(0.05, 0.95, 7)
    cases = [("uniform", cp.Uniform(2, 6), {"low": 2.0, "high": 6.0}, 2 + 4 * x),
             ("normal", cp.Normal(1, 2), {"mean": 1.0, "std": 2.0}, -2 + 6 * x),
             ("beta", cp.Beta(2, 5, -1, 3), {"alpha": 2.0, "beta": 5.0, "low": -1.0, "high": 3.0}, -1 + 4 * x)]
    for kind, marginal, params, pts in cases:
        dist = InputDistribution({"x": {"distribution": kind, **params}})
        ours = design_matrix(dist.to_germ(pts[:, None]), multi_indices(1, 6), dist.recurrence(6))
        ref = np.asarray(cp.generate_expansion(6, marginal, normed=True)(pts)).T
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-8, err_msg=kind)


# --------------------------------------------------------------------------------------
# exact recovery of polynomial targets
# --------------------------------------------------------------------------------------
def test_exact_coefficients_legendre():
    """y = 1 + 2 xi1 + 3 xi1 xi2 with xi ~ U(-1, 1): the orthonormal Legendre polynomial is
    psi1 = sqrt(3) xi, so y = 1 + (2/sqrt 3) psi_(1,0) + 1 * psi_(1,1). Least squares on 64
    points reproduces an exact polynomial to round-off (1e-10), every other coefficient is 0,
    mean = 1, variance = 4/3 + 1."""
    X = InputDistribution(UNIT2).sample(64, rng=1)
    xi1, xi2 = (X[:, 0] - 4) / 2, X[:, 1]
    model = PCE(distribution=UNIT2, degree=3).fit(X, 1 + 2 * xi1 + 3 * xi1 * xi2)
    expected = {(0, 0): 1.0, (1, 0): 2 / np.sqrt(3), (1, 1): 1.0}
    for alpha, c in zip(map(tuple, model.multi_indices_), model.coefficients_):
        assert abs(c - expected.get(alpha, 0.0)) < 1e-10, alpha
    assert abs(model.mean_ - 1) < 1e-10 and abs(model.variance_ - (4 / 3 + 1)) < 1e-10
    assert model.loo_error_ < 1e-20


def test_exact_coefficients_hermite():
    """Same target with xi ~ N(0, 1): He1 = xi is orthonormal, so the coefficients are 1, 2, 3;
    variance 4 + 9. A quadratic xi2^2 = sqrt(2) psi_(0,2) + 1 checks the degree-2 normalization."""
    X = InputDistribution(GAUSS2).sample(64, rng=2)
    xi1, xi2 = (X[:, 0] - 1) / 2, (X[:, 1] + 3) / 0.5
    model = PCE(distribution=GAUSS2, degree=3).fit(X, 1 + 2 * xi1 + 3 * xi1 * xi2 + xi2**2)
    expected = {(0, 0): 2.0, (1, 0): 2.0, (1, 1): 3.0, (0, 2): np.sqrt(2)}
    for alpha, c in zip(map(tuple, model.multi_indices_), model.coefficients_):
        assert abs(c - expected.get(alpha, 0.0)) < 1e-10, alpha
    assert abs(model.mean_ - 2) < 1e-10 and abs(model.variance_ - (4 + 9 + 2)) < 1e-10


def test_exact_coefficients_log_and_beta_germs():
    """lognormal: log x = log m + sigma xi, so y = (log x)^2 has mean (log m)^2 + sigma^2 and
    variance 4 (log m)^2 sigma^2 + 2 sigma^4; loguniform: log x is affine in a Legendre germ;
    beta: a linear function of x has psi1 coefficient = slope * sd(x)."""
    spec = {"k": {"distribution": "lognormal", "median": 2.0, "sigma": 0.3},
            "c": {"distribution": "loguniform", "low": 10.0, "high": 1000.0},
            "s": {"distribution": "beta", "alpha": 2.0, "beta": 5.0, "low": -1.0, "high": 3.0}}
    dist = InputDistribution(spec)
    X = dist.sample(128, rng=3)
    lm, s = np.log(2.0), 0.3
    y = np.log(X[:, 0]) ** 2 + np.log10(X[:, 1]) + 5 * X[:, 2]
    model = PCE(distribution=spec, degree=3).fit(X, y)
    var_beta = 16 * 2 * 5 / (49 * 8)
    mean = lm**2 + s**2 + 2.0 + 5 * (-1 + 4 * 2 / 7)
    var = 4 * lm**2 * s**2 + 2 * s**4 + 1 / 3 + 25 * var_beta  # log10 c ~ U(1, 3): variance 1/3
    assert abs(model.mean_ - mean) < 1e-10 and abs(model.variance_ - var) < 1e-10
    assert abs(coefficient_of(model, (0, 0, 1)) - 5 * np.sqrt(var_beta)) < 1e-10
    assert np.count_nonzero(np.abs(model.coefficients_) > 1e-10) == 5


def test_chaospy_marginals_give_the_same_expansion():
    """A chaospy joint (Stieltjes recurrence in x) and the equivalent stochhom spec span the same
    orthonormal basis, so the coefficients agree."""
    spec = {"a": uniform(2.0, 6.0), "b": {"distribution": "beta", "alpha": 2.0, "beta": 3.0, "low": 0.0,
                                          "high": 1.0}}
    X = InputDistribution(spec).sample(64, rng=4)
    y = np.exp(X[:, 0] / 4) * X[:, 1]
    a = PCE(distribution=spec, degree=4).fit(X, y)
    b = PCE(distribution=cp.J(cp.Uniform(2, 6), cp.Beta(2, 3)), degree=4).fit(X, y)
    np.testing.assert_allclose(b.coefficients_, a.coefficients_, atol=1e-9)
    with pytest.raises(InputError, match="cannot be saved"):
        b.save("unused")


def test_polynomial_with_exact_sobol_indices():
    """f = 2 psi_(1,0,0) + 3 psi_(1,1,0) + 0.5 psi_(0,0,2) (orthonormal Legendre in U(0,1)^3):
    V = 4 + 9 + 0.25, S = (4, 0, 0.25)/V, ST = (13, 9, 0.25)/V, exact to round-off."""
    spec = {f"x{i}": uniform(0.0, 1.0) for i in range(3)}
    X = InputDistribution(spec).sample(128, rng=5)
    t = 2 * X - 1
    p1 = lambda v: np.sqrt(3) * v  # noqa: E731
    p2 = lambda v: np.sqrt(5) * (3 * v**2 - 1) / 2  # noqa: E731
    y = 2 * p1(t[:, 0]) + 3 * p1(t[:, 0]) * p1(t[:, 1]) + 0.5 * p2(t[:, 2])
    for method in ("ols", "lars", "omp"):
        model = PCE(distribution=spec, degree=4, fit_method=method).fit(X, y)
        v = 13.25
        np.testing.assert_allclose(model.sobol_first_, np.array([4, 0, 0.25]) / v, atol=1e-10)
        np.testing.assert_allclose(model.sobol_total_, np.array([13, 9, 0.25]) / v, atol=1e-10)
        assert abs(model.variance_ - v) < 1e-10


# --------------------------------------------------------------------------------------
# Sobol indices of analytic functions
# --------------------------------------------------------------------------------------
def ishigami(X: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Exact indices (Sobol' & Levitan 1999): V1 = (1 + b pi^4/5)^2/2, V2 = a^2/8,
    V13 = b^2 pi^8 (1/18 - 1/50); mean a/2. Rounded: S = (0.3139, 0.4424, 0),
    ST = (0.5576, 0.4424, 0.2437)."""
    v1 = 0.5 * (1 + b * np.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * np.pi**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return np.array([v1, v2, 0]) / v, np.array([v1 + v13, v2, v13]) / v, a / 2, v


@pytest.mark.parametrize("method", ["lars", "omp"])
def test_ishigami_sobol_indices(method):
    """Degree-12 sparse PCE on 1024 scrambled Sobol points. The relative LOO error (~1e-8) bounds
    the unexplained share of the variance, hence the index errors, far below the tolerance 1e-3
    (measured ~1e-5); a wrong index formula (first vs total, interactions) errs by >= 0.24."""
    first, total, mean, var = ishigami_indices()
    np.testing.assert_allclose(first, [0.3139, 0.4424, 0.0], atol=5e-5)  # the quoted literature values
    np.testing.assert_allclose(total, [0.5576, 0.4424, 0.2437], atol=5e-5)
    X = InputDistribution(PI3).sample(1024, rng=2)
    t0 = time.perf_counter()
    model = PCE(distribution=PI3, degree=12, fit_method=method).fit(X, ishigami(X))
    elapsed = time.perf_counter() - t0
    assert model.loo_error_ < 1e-6
    assert np.max(np.abs(model.sobol_first_ - first)) < 1e-3
    assert np.max(np.abs(model.sobol_total_ - total)) < 1e-3
    assert abs(model.mean_ - mean) < 1e-3 * np.sqrt(var) and abs(model.variance_ / var - 1) < 1e-3
    assert model.n_terms_ < 455 / 3  # sparse: a fraction of the 455 candidate terms
    assert elapsed < 10


def test_sobol_g_function_indices():
    """Sobol' G, g = prod (|4x - 2| + a_i)/(1 + a_i), x ~ U(0,1)^4, a = (0, 1, 4.5, 9):
    V_i = 1/(3 (1 + a_i)^2), S_i = V_i / V, ST_i = V_i prod_{j != i}(1 + V_j) / V,
    V = prod(1 + V_i) - 1. g has a kink at x = 1/2, so its Legendre coefficients decay slowly;
    at degree 8 the relative LOO error is ~4e-3, the share of the variance the expansion
    misses, which bounds the index errors at that order: tolerance 0.01 (measured ~5e-4)."""
    a = np.array([0.0, 1.0, 4.5, 9.0])
    vi = 1 / (3 * (1 + a) ** 2)
    v = np.prod(1 + vi) - 1
    first, total = vi / v, vi * np.prod(1 + vi) / (1 + vi) / v
    spec = {f"x{i}": uniform(0.0, 1.0) for i in range(4)}
    X = InputDistribution(spec).sample(1024, rng=3)
    y = np.prod((np.abs(4 * X - 2) + a) / (1 + a), axis=1)
    model = PCE(distribution=spec, degree=8, fit_method="lars").fit(X, y)
    assert model.loo_error_ < 0.01
    assert np.max(np.abs(model.sobol_first_ - first)) < 0.01
    assert np.max(np.abs(model.sobol_total_ - total)) < 0.01
    assert abs(model.mean_ - 1) < 0.01 and abs(model.variance_ / v - 1) < 0.02


def test_pce_sobol_indices_from_coefficients():
    idx = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    first, total = pce_sobol_indices(np.array([[5.0, 1.0, 2.0, 3.0], [1.0, 0, 0, 0]]), idx)
    np.testing.assert_allclose(first[0], [1 / 14, 4 / 14])
    np.testing.assert_allclose(total[0], [10 / 14, 13 / 14])
    assert np.all(np.isnan(first[1]))  # a constant output has no variance to split


# --------------------------------------------------------------------------------------
# leave-one-out
# --------------------------------------------------------------------------------------
def test_analytic_loo_equals_brute_force():
    """e_i = r_i/(1 - h_ii) is an identity of least squares: it equals the residual of the
    refit without point i (to round-off, 1e-8 relative)."""
    rng = np.random.default_rng(0)
    X = InputDistribution(UNIT2).sample(32, rng=6)
    y = np.sin(X[:, 0]) * X[:, 1] + 0.1 * rng.normal(size=32)
    model = PCE(distribution=UNIT2, degree=3).fit(X, y)
    e = np.empty(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        for i in range(32):
            keep = np.arange(32) != i
            refit = PCE(distribution=UNIT2, degree=3).fit(X[keep], y[keep])
            e[i] = y[i] - refit.predict(X[i : i + 1])[0]
    assert abs(model.loo_std_ / np.sqrt(np.mean(e**2)) - 1) < 1e-8
    assert abs(model.loo_error_ / (np.mean(e**2) / np.var(y)) - 1) < 1e-8


@pytest.mark.parametrize("seed", range(10))
def test_auto_degree_finds_the_true_degree(seed):
    """A cubic with noise (sd 0.01, ~1% of its spread): the corrected LOO error is minimal at the
    true degree 3; degree 2 underfits (LOO ~ 0.05) and degrees >= 4 fit noise."""
    spec = {"a": uniform(0.0, 1.0), "b": uniform(0.0, 1.0)}
    X = InputDistribution(spec).sample(128, rng=seed)
    y = X[:, 0] ** 3 - 2 * X[:, 0] * X[:, 1] ** 2 + X[:, 1]
    y = y + 0.01 * np.random.default_rng(100 + seed).normal(size=128)
    model = PCE(distribution=spec, degree="auto", max_degree=8).fit(X, y)
    assert model.degree_ == 3
    assert model.loo_by_degree_[:, 0].tolist()[:4] == [1, 2, 3, 4]


# --------------------------------------------------------------------------------------
# sparse regression
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["lars", "omp"])
def test_sparse_fit_recovers_the_support(method):
    """6 of the 252 terms of a degree-5 basis in 5 normal inputs, 128 points (half the terms:
    OLS is impossible). The sparse path finds exactly the true support and coefficients."""
    spec = {f"x{i}": normal(0.0, 1.0) for i in range(5)}
    dist = InputDistribution(spec)
    idx = multi_indices(5, 5)
    true = [0, 3, 10, 40, 120, 200]
    c = np.zeros(len(idx))
    c[true] = [1.0, 2.0, -1.5, 0.8, 0.5, -0.3]
    X = dist.sample(128, rng=3)
    y = design_matrix(dist.to_germ(X), idx, dist.recurrence(5)) @ c
    model = PCE(distribution=spec, degree=5, fit_method=method).fit(X, y)
    assert np.flatnonzero(model.coefficients_).tolist() == true
    np.testing.assert_allclose(model.coefficients_, c, atol=1e-10)
    with pytest.raises(InputError, match="OLS needs more samples than terms"):
        PCE(distribution=spec, degree=5).fit(X, y)


@pytest.mark.parametrize("method", ["lars", "omp"])
def test_sparse_fit_with_noise_keeps_a_small_support(method):
    """The same sparse target with noise sd 0.05, six noise draws. Every selected support
    contains the true one, and the corrected LOO error keeps it small: median size <= 12 (twice
    the truth; the plain LOO error, which keeps falling as noise is fitted, selects 12-69 terms).
    Coefficient errors stay below 0.05: the OLS coefficient sd is 0.05/sqrt(128) = 0.0044, so
    that is > 10 sd, room for the bias of a spurious term or two."""
    spec = {f"x{i}": normal(0.0, 1.0) for i in range(5)}
    dist = InputDistribution(spec)
    idx = multi_indices(5, 5)
    true = [0, 3, 10, 40, 120, 200]
    c = np.zeros(len(idx))
    c[true] = [1.0, 2.0, -1.5, 0.8, 0.5, -0.3]
    X = dist.sample(128, rng=3)
    y = design_matrix(dist.to_germ(X), idx, dist.recurrence(5)) @ c
    sizes = []
    for seed in range(6):
        noisy = y + 0.05 * np.random.default_rng(seed).normal(size=len(y))
        model = PCE(distribution=spec, degree=5, fit_method=method).fit(X, noisy)
        support = set(np.flatnonzero(model.coefficients_).tolist())
        assert set(true) <= support
        assert np.max(np.abs(model.coefficients_ - c)) < 0.05
        sizes.append(len(support))
    assert np.median(sizes) <= 12, sizes


# --------------------------------------------------------------------------------------
# early-stopped sparse paths and degree adaptivity
# --------------------------------------------------------------------------------------
def _standardized(y: np.ndarray) -> np.ndarray:
    return (y - y.mean()) / y.std()


def test_own_greedy_paths_enter_the_terms_in_the_order_of_sklearn():
    """The incremental LAR (equiangular direction from the Gram-Schmidt factors) and OMP add the
    terms in the order of sklearn's lars_path / orthogonal_mp on the same centred, normalized
    columns: Ishigami plus noise, degree 8 (165 terms), 256 points. The first 60 entries agree
    (measured: 98 for LAR, where the two drift apart at round-off in near-ties, and all 164 for
    OMP); the early-stopped fit only needs the first 2 k* ~ 40-50."""
    from sklearn.linear_model import lars_path, orthogonal_mp

    dist = InputDistribution(PI3)
    X = dist.sample(256, rng=2)
    z = _standardized(ishigami(X) + 0.1 * np.random.default_rng(0).normal(size=256))
    idx = multi_indices(3, 8)
    psi = design_matrix(dist.to_germ(X), idx, dist.recurrence(8))
    x = psi[:, 1:] - psi[:, 1:].mean(axis=0)
    x /= np.linalg.norm(x, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, active, _ = lars_path(x, z, method="lar", max_iter=60, return_path=False)
        omp = np.asarray(orthogonal_mp(x, z, n_nonzero_coefs=60, return_path=True, precompute=True))
    nonzero = omp != 0  # (terms, steps): a term enters at its first nonzero step
    entered = np.flatnonzero(nonzero.any(axis=1))
    sk_omp = entered[np.argsort(np.argmax(nonzero[entered], axis=1), kind="stable")]
    assert _sparse_support(psi, z, "lars", patience=None).order[:60] == [int(j) + 1 for j in active]
    assert _sparse_support(psi, z, "omp", patience=None).order[:60] == [int(j) + 1 for j in sk_omp]


@pytest.mark.parametrize("method", ["lars", "omp"])
def test_early_stopped_path_selects_the_optimum_of_the_whole_path(method):
    """7 of the 210 terms of a degree-6 basis in 4 uniform inputs, 512 points. Without noise the
    early-stopped path recovers exactly the true support, after as many steps. With noise (sd 0.01,
    six draws) it stops after < 70 of the 209 steps of the whole path, and its support is the one
    of smallest corrected LOO error over the whole path (relative 1e-9) and contains the truth.
    That error, from the Gram-Schmidt updates, equals the one of a fresh SVD refit of the support
    (relative 1e-8)."""
    spec = {f"x{i}": uniform(0.0, 1.0) for i in range(4)}
    dist = InputDistribution(spec)
    idx = multi_indices(4, 6)
    true = [0, 2, 7, 25, 60, 150, 200]
    c = np.zeros(len(idx))
    c[true] = [1.0, 2.0, -1.5, 0.8, 0.5, -0.3, 0.2]
    X = dist.sample(512, rng=1)
    psi = design_matrix(dist.to_germ(X), idx, dist.recurrence(6))
    exact = _sparse_support(psi, _standardized(psi @ c), method)
    assert sorted(exact.support) == true and len(exact.order) <= len(true) + 1
    for seed in range(6):
        z = _standardized(psi @ c + 0.01 * np.random.default_rng(seed).normal(size=512))
        early = _sparse_support(psi, z, method)
        whole = _sparse_support(psi, z, method, patience=None)
        assert len(whole.order) == 209 and len(early.order) < 70, (len(early.order), len(whole.order))
        assert early.support == whole.support
        best = early.losses[len(early.support) - 1]
        assert abs(best / whole.losses.min() - 1) < 1e-9
        assert set(true) <= set(early.support)
        _, _, e, trace_inv = _ols(psi[:, early.support], z[:, None])
        fresh = np.mean(e**2) / np.var(z) * _correction(512, len(early.support), trace_inv)
        assert abs(best / fresh - 1) < 1e-8


def test_sobol_g_function_indices_with_the_degree_search():
    """Sobol' G (as above), 1024 Sobol points, degree="auto" up to 12 with LARS: the corrected LOO
    error falls at every even degree (the odd ones add nothing: g is even about x = 1/2 in every
    input), so the search reaches 12. Each index is within its bootstrap spread (4 sd of 100 refits
    on the support, ~1.2e-3) plus the relative LOO error (~1e-3, the variance share the expansion
    misses, by which truncation can shift an index): over 8 design seeds the largest
    (|error| - LOO)/sd was 2.6 and the largest error 3.5e-3, for this seed 7e-4. Fit, degree
    search and bootstrap in < 10 s (measured about 1 s)."""
    a = np.array([0.0, 1.0, 4.5, 9.0])
    vi = 1 / (3 * (1 + a) ** 2)
    v = np.prod(1 + vi) - 1
    first, total = vi / v, vi * np.prod(1 + vi) / (1 + vi) / v
    spec = {f"x{i}": uniform(0.0, 1.0) for i in range(4)}
    X = InputDistribution(spec).sample(1024, rng=3)
    y = np.prod((np.abs(4 * X - 2) + a) / (1 + a), axis=1)
    t0 = time.perf_counter()
    model = PCE(distribution=spec, degree="auto", max_degree=12, fit_method="lars", std_method="bootstrap",
                n_bootstrap=100, random_state=0).fit(X, y)
    assert time.perf_counter() - t0 < 10
    assert model.degree_ == 12 and model.loo_by_degree_[:, 0].tolist() == list(range(1, 13))
    corrected = model.loo_by_degree_[:, 2]
    assert np.all(np.diff(corrected[1::2]) < 0)  # every even degree improves
    boot_first, boot_total = pce_sobol_indices(model.bootstrap_coefficients_[:, 0], model.multi_indices_)
    for est, exact, boot in ((model.sobol_first_, first, boot_first), (model.sobol_total_, total, boot_total)):
        sd = boot.std(axis=0)
        assert np.all(sd < 3e-3)
        assert np.all(np.abs(est - exact) <= model.loo_error_ + 4 * sd), (est - exact, sd)


@pytest.mark.parametrize("method", ["lars", "omp"])
def test_degree_search_stops_two_degrees_after_the_best(method):
    """The noisy cubic of test_auto_degree_finds_the_true_degree with sparse fits and max_degree=20:
    the search always stops 2 degrees after the best one, which stays far below 20 (measured 3 to
    7: a sparse fit of a higher degree can add a spurious term that lowers the corrected error by
    chance) and is the true degree 3 for about half of the designs (5 of these 10)."""
    spec = {"a": uniform(0.0, 1.0), "b": uniform(0.0, 1.0)}
    chosen = []
    for seed in range(10):
        X = InputDistribution(spec).sample(128, rng=seed)
        y = X[:, 0] ** 3 - 2 * X[:, 0] * X[:, 1] ** 2 + X[:, 1]
        y = y + 0.01 * np.random.default_rng(100 + seed).normal(size=128)
        model = PCE(distribution=spec, degree="auto", max_degree=20, fit_method=method).fit(X, y)
        tried = model.loo_by_degree_[:, 0].tolist()
        assert tried == list(range(1, model.degree_ + 3)), tried
        assert model.loo_by_degree_[model.degree_ - 1, 2] == model.loo_by_degree_[:, 2].min()
        chosen.append(model.degree_)
    assert max(chosen) <= 8 and chosen.count(3) >= 4, chosen


@pytest.mark.parametrize("method", ["lars", "omp"])
def test_degree_search_stops_when_the_design_saturates(method):
    """16 points for a smooth 2-input function that needs many terms: the sparse path of the best
    degree runs into the n - 2 = 14 steps with more than 7 terms in its best prefix, so the design
    cannot support a larger basis and the search stops there, without trying 2 more degrees."""
    spec = {"a": uniform(0.0, 1.0), "b": uniform(0.0, 1.0)}
    X = InputDistribution(spec).sample(16, rng=0, method="random")
    y = np.exp(X[:, 0] + 2 * X[:, 1]) * np.cos(3 * X[:, 0] * X[:, 1])
    model = PCE(distribution=spec, degree="auto", max_degree=40, fit_method=method).fit(X, y)
    assert len(model.loo_by_degree_) == model.degree_ < 40
    assert model.n_terms_ - 1 > (16 - 2) / 2
    dist = InputDistribution(spec)
    idx = multi_indices(2, model.degree_)
    psi = design_matrix(dist.to_germ(X), idx, dist.recurrence(model.degree_))
    assert _sparse_support(psi, _standardized(y), method).saturated


# --------------------------------------------------------------------------------------
# predictive uncertainty
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("std_method", ["loo", "bootstrap"])
def test_predictive_intervals_are_calibrated(std_method):
    """Homoscedastic noise sd 0.1 on a smooth function of 2 inputs (degree 3: the truncation
    error is far below the noise), 1000 training points, 4000 test observations. If the std is
    right, each test point is covered by mu +- 1.96 sd with probability 0.95: binomial sd
    sqrt(0.95 * 0.05 / 4000) = 0.0034. The std is itself estimated from 1000 residuals
    (relative sd 1/sqrt(2 * 1000) = 0.022, which moves the coverage by
    2 * 1.96 * phi(1.96) * 0.022 = 0.005). Band: 0.95 +- 3 * sqrt(0.0034^2 + 0.005^2) =
    [0.93, 0.97]. The bootstrap spread alone (no noise term) covers ~0.27, a doubled std ~1.0."""
    spec = {"a": uniform(0.0, 1.0), "b": uniform(0.0, 1.0)}
    dist = InputDistribution(spec)
    rng = np.random.default_rng(42)

    def f(x):
        return np.exp(x[:, 0]) + x[:, 0] * x[:, 1] ** 2

    X = dist.sample(1000, rng=1, method="random")
    y = f(X) + 0.1 * rng.normal(size=1000)
    Xt = dist.sample(4000, rng=2, method="random")
    yt = f(Xt) + 0.1 * rng.normal(size=4000)
    model = PCE(distribution=spec, degree=3, std_method=std_method, n_bootstrap=200, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)  # a few test points beyond the training box
        mu, sd = model.predict(Xt, return_std=True)
    coverage = np.mean(np.abs(yt - mu) <= 1.96 * sd)
    assert 0.93 <= coverage <= 0.97, coverage
    assert abs(model.noise_std_ / 0.1 - 1) < 0.07  # 3 relative standard errors of an sd from 1000 points
    if std_method == "loo":
        assert np.ptp(sd) == 0  # homoscedastic by construction
    else:
        assert np.ptp(sd) > 0 and np.all(sd >= model.noise_std_)
        again = PCE(distribution=spec, degree=3, std_method=std_method, random_state=0).fit(X, y)
        # the same resamples (seeded), refitted: equal up to BLAS rounding, not necessarily bit
        # for bit (the gemm of the normal equations and their Cholesky solve may sum in another
        # order with other threads, CPU dispatch or alignment). The basis is orthonormal:
        # cond(Psi^T Psi) = 1.5 here (P = 10 terms, n = 1000 rows), a resample's weights keep it
        # O(1-10), so the refit moves by <= P n eps cond ~ 10 * 1000 * 2.2e-16 * 10 ~ 2e-11
        # relative; another seed changes the coefficients by 7e-3 of the largest.
        b = model.bootstrap_coefficients_
        np.testing.assert_allclose(again.bootstrap_coefficients_, b, rtol=0, atol=1e-10 * np.abs(b).max())


def test_multi_output_shares_the_basis():
    X = InputDistribution(UNIT2).sample(64, rng=7)
    xi1, xi2 = (X[:, 0] - 4) / 2, X[:, 1]
    Y = np.column_stack([1 + 2 * xi1, 3 * xi1 * xi2, np.full(64, 5.0)])
    for method in ("ols", "lars"):
        model = PCE(distribution=UNIT2, degree=3, fit_method=method, std_method="bootstrap",
                    n_bootstrap=20, random_state=1).fit(X, Y)
        P = len(model.multi_indices_)
        assert model.coefficients_.shape == (3, P) and model.sobol_first_.shape == (3, 2)
        np.testing.assert_allclose(model.mean_, [1, 0, 5], atol=1e-10)
        np.testing.assert_allclose(model.variance_, [4 / 3, 1, 0], atol=1e-10)
        np.testing.assert_allclose(model.sobol_total_[:2], [[1, 0], [1, 1]], atol=1e-10)
        mu, sd = model.predict(X[:5], return_std=True)
        assert mu.shape == sd.shape == (5, 3)
        np.testing.assert_allclose(mu, Y[:5], atol=1e-10)
        single = PCE(distribution=UNIT2, degree=3, fit_method=method).fit(X, Y[:, 1])
        np.testing.assert_allclose(single.coefficients_, model.coefficients_[1], atol=1e-12)


# --------------------------------------------------------------------------------------
# copula
# --------------------------------------------------------------------------------------
def test_copula_pce_moments_exact_and_sobol_refused():
    """Normal marginals with correlation rho: x = mu + sigma L xi is linear in the Nataf germ,
    so y = x1 + 2 x2 is a degree-1 PCE with Var y = s1^2 + 4 s2^2 + 4 rho s1 s2 exactly."""
    rho = 0.6
    dist = InputDistribution(GAUSS2, correlation=[[1, rho], [rho, 1]])
    X = dist.sample(64, rng=8)
    model = PCE(distribution=dist, degree=2).fit(X, X[:, 0] + 2 * X[:, 1])
    assert abs(model.mean_ - (1 - 6)) < 1e-10
    assert abs(model.variance_ - (4 + 4 * 0.25 + 4 * rho * 2 * 0.5)) < 1e-10
    with pytest.raises(InputError, match="only defined for independent inputs"):
        model.sobol_first_  # noqa: B018
    with pytest.raises(InputError, match="only defined for independent inputs"):
        model.sobol_total_  # noqa: B018


# --------------------------------------------------------------------------------------
# scikit-learn contract
# --------------------------------------------------------------------------------------
def test_sklearn_clone_and_fit_returns_self():
    model = PCE(distribution=UNIT2, degree=2, fit_method="lars", random_state=3)
    X = InputDistribution(UNIT2).sample(32, rng=1)
    assert model.fit(X, X[:, 0]) is model
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "coefficients_")
    assert not hasattr(PCE(), "sobol_first_")  # unfitted: a plain AttributeError


def test_cross_validate_with_group_kfold():
    """Groups stand for specimens (replicates of one parameter point): GroupKFold keeps them
    together; the PCE scores R^2 ~ 1 on a smooth function."""
    spec = {"a": uniform(0.0, 1.0), "b": uniform(0.0, 1.0)}
    X = np.repeat(InputDistribution(spec).sample(40, rng=2, method="lhs"), 3, axis=0)
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.01 * np.random.default_rng(1).normal(size=len(X))
    groups = np.repeat(np.arange(40), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        res = cross_validate(PCE(distribution=spec, degree=3), X, y, groups=groups, cv=GroupKFold(5),
                             return_estimator=True)
    assert np.all(res["test_score"] > 0.99)
    assert all(isinstance(e, PCE) and e.degree_ == 3 for e in res["estimator"])


def test_default_distribution_is_the_bounding_box():
    X = np.random.default_rng(3).uniform([0, 10], [1, 20], (50, 2))
    model = PCE(degree=2).fit(X, X[:, 0] + X[:, 1])
    np.testing.assert_array_equal(model.distribution_.support, model.X_bounds_)
    assert model.distribution_.kinds == ["uniform", "uniform"]
    assert model.feature_names_ == ["x0", "x1"]


# --------------------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"distribution": UNIT2, "degree": 3},
        {"distribution": None, "degree": "auto", "fit_method": "lars", "std_method": "bootstrap",
         "n_bootstrap": 30, "random_state": 4},
        {"distribution": InputDistribution(GAUSS2, correlation=[[1, 0.5], [0.5, 1]]), "degree": 2},
    ],
)
@pytest.mark.parametrize("multi", [False, True])
def test_save_load_round_trip(tmp_path, kwargs, multi):
    dist = kwargs["distribution"] or UNIT2
    X = InputDistribution(dist).sample(64, rng=9)
    y = np.column_stack([np.sin(X[:, 0]) + X[:, 1], X[:, 0] * X[:, 1]]) if multi else np.sin(X[:, 0]) + X[:, 1]
    model = PCE(**kwargs).fit(X, y)
    model.save(tmp_path / "m")
    back = PCE.load(tmp_path / "m")
    Xt = InputDistribution(dist).sample(64, rng=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        m1, s1 = model.predict(Xt, return_std=True)
        m2, s2 = back.predict(Xt, return_std=True)
    # predictions: the same design matrix times the stored coefficients (a BLAS gemm): equal
    # up to rounding, ~P eps sum|psi c| / |sum psi c| <= 50 * 2.2e-16 * 100 ~ 1e-12 relative,
    # not necessarily bit for bit (BLAS summation order: threads, CPU dispatch, alignment)
    for a, b in ((m1, m2), (s1, s2)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-11 * np.abs(a).max())
    # the fitted attributes are stored (npz) or derived elementwise from stored arrays: exact
    for name in ("coefficients_", "mean_", "variance_", "loo_error_", "degree_", "multi_indices_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name))
    assert back.get_params().keys() == model.get_params().keys()
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "m").iterdir())


def test_load_rejects_other_directories(tmp_path):
    with pytest.raises(InputError, match="no saved PCE"):
        PCE.load(tmp_path)
    (tmp_path / "pce.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not a saved stochhom PCE"):
        PCE.load(tmp_path)


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_under_determined_ols_states_the_minimum():
    X = InputDistribution(PI3).sample(16, rng=1)
    with pytest.raises(InputError, match=r"degree 3 with 3 input\(s\) has 20 terms, so at least 21 samples.*got 16"
                                         r".*fit_method='lars' or 'omp'.*degree <= 2"):
        PCE(distribution=PI3, degree=3).fit(X, X[:, 0])
    PCE(distribution=PI3, degree=3, fit_method="lars").fit(X, X[:, 0])  # sparse regression copes


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fit_method": "ridge"}, r"unknown fit_method 'ridge'; allowed: \['ols', 'lars', 'omp'\]"),
        ({"std_method": "gp"}, r"unknown std_method 'gp'; allowed: \['loo', 'bootstrap'\]"),
        ({"degree": 0}, "degree must be a positive integer or 'auto'"),
        ({"degree": "high"}, "degree must be a positive integer or 'auto'"),
        ({"q_norm": 1.5}, r"q_norm must lie in \(0, 1\]"),
        ({"degree": "auto", "max_degree": 0}, "max_degree must be a positive integer"),
        ({"std_method": "bootstrap", "n_bootstrap": 1}, "n_bootstrap must be an integer >= 2"),
        ({"distribution": {"a": {"distribution": "weibull"}}}, "unknown distribution 'weibull'"),
        ({"distribution": {"a": uniform(0, 1)}}, r"the distribution has 1 input\(s\) \['a'\] but X has 2"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    X = InputDistribution(UNIT2).sample(32, rng=1)
    with pytest.raises(InputError, match=match):
        PCE(**{"distribution": UNIT2, **kwargs}).fit(X, X[:, 0])


def test_bad_data():
    X = InputDistribution(UNIT2).sample(32, rng=1)
    y = X[:, 0].copy()
    model = PCE(distribution=UNIT2, degree=2)
    with pytest.raises(InputError, match="not fitted"):
        model.predict(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN or inf"):
        model.fit(bad, y)
    with pytest.raises(InputError, match="different numbers of samples"):
        model.fit(X, y[:-1])
    with pytest.raises(InputError, match="no fit parameters"):
        model.fit(X, y, sample_weight=np.ones(32))
    out = X.copy()
    out[0, 0] = 7.0  # beyond high = 6
    with pytest.raises(InputError, match=r"1 training point\(s\) lie outside the support.*row 0"):
        model.fit(out, y)
    with pytest.raises(InputError, match="constant"):
        PCE().fit(np.column_stack([X[:, 0], np.ones(32)]), y)
    model.fit(X, y)
    with pytest.raises(InputError, match=r"X has 3 feature\(s\)"):
        model.predict(np.ones((2, 3)))


def test_points_on_the_support_boundary_are_inside():
    """Training points exactly at low/high of bounded marginals (log-uniform included) are valid."""
    spec = {"a": uniform(2.0, 6.0), "c": {"distribution": "loguniform", "low": 10.0, "high": 1000.0}}
    X = np.vstack([InputDistribution(spec).sample(30, rng=1, method="lhs"), [[2.0, 10.0], [6.0, 1000.0]]])
    model = PCE(distribution=spec, degree=2).fit(X, X[:, 0] + np.log(X[:, 1]))
    assert abs(model.variance_ - (16 / 12 + np.log(100) ** 2 / 12)) < 1e-10


def test_too_many_terms_are_refused():
    spec = {f"x{i}": uniform(0.0, 1.0) for i in range(12)}
    X = InputDistribution(spec).sample(64, rng=1)
    with pytest.raises(InputError, match=r"degree 10 with 12 inputs has 646646 terms.*q_norm < 1"):
        PCE(distribution=spec, degree=10, fit_method="lars").fit(X, X[:, 0])


def test_hyperbolic_truncation():
    """q = 0.5 keeps x1^4 and x1 x2 but not x1^2 x2 (|(2,1)|_0.5 = (sqrt 2 + 1)^2 = 5.8 > 4): a
    target inside the set is recovered exactly with 10 terms (x^0..4, y^1..4, xy) instead of 15."""
    X = InputDistribution(UNIT2).sample(32, rng=3)
    xi1, xi2 = (X[:, 0] - 4) / 2, X[:, 1]
    model = PCE(distribution=UNIT2, degree=4, q_norm=0.5).fit(X, xi1**4 + xi1 * xi2)
    assert len(model.multi_indices_) == 10 and [2, 1] not in model.multi_indices_.tolist()
    assert abs(model.mean_ - 1 / 5) < 1e-10 and abs(model.variance_ - (1 / 9 - 1 / 25 + 1 / 9)) < 1e-10


def test_prediction_outside_the_domain_warns():
    X = InputDistribution(UNIT2).sample(64, rng=2)
    model = PCE(distribution=UNIT2, degree=2).fit(X, X[:, 0] * X[:, 1])
    inside = np.array([[4.0, 0.0], [5.5, -0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(inside)
    outside = np.array([[4.0, 0.0], [8.0, 0.0]])  # a = 8 beyond the support [2, 6]
    with pytest.warns(OutOfDomainWarning, match="1 of 2 point"):
        model.predict(outside)
    assert model.out_of_domain(outside).tolist() == [False, True]
    lognormal = {"k": {"distribution": "lognormal", "median": 1.0, "sigma": 0.5}}
    Xl = InputDistribution(lognormal).sample(16, rng=1)
    model = PCE(distribution=lognormal, degree=2).fit(Xl, np.log(Xl[:, 0]))
    with pytest.warns(OutOfDomainWarning), pytest.raises(InputError, match="germ transform is undefined"):
        model.predict(np.array([[-1.0]]))


def test_degree_six_in_four_inputs_is_fast():
    """Issue 5 benchmark: a degree-6 PCE in 4 inputs (210 terms) with LOO in <= 2 s; here on
    1024 points with the sparse LARS path, the slowest fit method (timed, generous for CI)."""
    spec = {f"x{i}": uniform(0.0, 1.0) for i in range(4)}
    X = InputDistribution(spec).sample(1024, rng=1)
    y = np.exp(X.sum(axis=1)) * np.sin(3 * X[:, 0])
    for method in ("ols", "lars"):
        t0 = time.perf_counter()
        model = PCE(distribution=spec, degree=6, fit_method=method).fit(X, y)
        assert time.perf_counter() - t0 < 4.0, method
        assert model.loo_error_ < 1e-4


# --------------------------------------------------------------------------------------
# bootstrap functions and noise model (std_method="bootstrap")
# --------------------------------------------------------------------------------------
def _noisy_smooth(n: int = 200) -> tuple[dict, np.ndarray, np.ndarray]:
    spec = {"a": uniform(0.0, 1.0), "b": uniform(0.0, 1.0)}
    X = InputDistribution(spec).sample(n, rng=1, method="random")
    y = np.exp(X[:, 0]) + X[:, 0] * X[:, 1] ** 2 + 0.1 * np.random.default_rng(0).standard_normal(n)
    return spec, X, y


def test_bootstrap_functions_and_noise_model_exist_only_for_the_bootstrap():
    """hasattr tells whether a PCE has posterior-like functions and a noise model (propagation and
    Sobol indices rely on it): only std_method="bootstrap" has them. Shapes follow y: (n, m) and
    (m,) for one output, (n, m, q) and (m, q) for q outputs; noise_variance is noise_std_**2."""
    spec, X, y = _noisy_smooth()
    loo = PCE(distribution=spec, degree=3).fit(X, y)
    assert not hasattr(loo, "sample_functions") and not hasattr(loo, "noise_variance")
    boot = PCE(distribution=spec, degree=3, std_method="bootstrap", n_bootstrap=50, random_state=0).fit(X, y)
    assert hasattr(boot, "sample_functions") and hasattr(boot, "noise_variance")
    Xt = X[:7]
    assert boot.sample_functions(Xt, 5, rng=0).shape == (5, 7)
    nv = boot.noise_variance(Xt)
    assert nv.shape == (7,)
    np.testing.assert_array_equal(nv, np.full(7, boot.noise_std_**2))
    # bit for bit: the same seeded picks, and np.einsum without optimize (numpy's own loops,
    # single-threaded, no BLAS) of the same design matrix with the same coefficients
    np.testing.assert_array_equal(boot.sample_functions(Xt, 5, rng=3), boot.sample_functions(Xt, 5, rng=3))
    two = PCE(distribution=spec, degree=3, std_method="bootstrap", n_bootstrap=50, random_state=0).fit(
        X, np.column_stack([y, 2 * y]))
    assert two.sample_functions(Xt, 5, rng=0).shape == (5, 7, 2)
    nv2 = two.noise_variance(Xt)
    assert nv2.shape == (7, 2)
    np.testing.assert_allclose(nv2, np.tile(two.noise_std_**2, (7, 1)), rtol=0)
    np.testing.assert_allclose(two.noise_std_[1], 2 * two.noise_std_[0], rtol=1e-12)  # y scales, sigma scales
    with pytest.raises(InputError, match="n_samples must be a positive integer"):
        boot.sample_functions(Xt, 0)


def test_bootstrap_function_draws_have_the_bootstrap_variance_of_predict():
    """predict's variance is Var_b f_b + noise_std_**2 (the spread of the B bootstrap refits plus
    the residual variance). Each function draw is one of the B refits, chosen uniformly, so the
    variance of many draws at a point estimates Var_b: within 3 standard errors
    sqrt((m4 - s^4)/n) of n = 20000 draws (m4 the draws' fourth central moment); the draws are
    B = 200 distinct functions."""
    spec, X, y = _noisy_smooth()
    model = PCE(distribution=spec, degree=3, std_method="bootstrap", n_bootstrap=200, random_state=0).fit(X, y)
    Xt = np.array([[0.1, 0.2], [0.5, 0.5], [0.95, 0.9], [0.3, 0.8]])
    _, sd = model.predict(Xt, return_std=True)
    var_b = sd**2 - model.noise_std_**2
    assert np.all(var_b > 0)
    draws = model.sample_functions(Xt, 20_000, rng=3)
    c = draws - draws.mean(axis=0)
    v, m4 = np.mean(c**2, axis=0), np.mean(c**4, axis=0)
    se = np.sqrt((m4 - v**2) / draws.shape[0])
    assert np.all(np.abs(v - var_b) <= 3 * se), (v, var_b, se)
    assert np.unique(draws, axis=0).shape[0] == 200  # every refit drawn, no other function
    # Var_b ~ sigma^2 h(x), h the leverage (P/n = 10/200 on average): far below the scatter itself
    assert np.all(var_b < model.noise_std_**2)


def test_bootstrap_pce_sobol_intervals_cover_the_exact_ishigami_indices():
    """Degree-12 LARS PCE of Ishigami observed with noise sd 0.2 at 1024 Sobol points: the analytic
    indices come with percentile intervals over the 200 bootstrap coefficient sets. They contain
    the point estimates (by construction) and the exact nonzero indices (five correlated 95 %
    intervals: all five covered in 19 of 20 data seeds tried). The exact S_3 = 0 sits on the
    boundary of a sum of squares, which every bootstrap replicate overestimates by the variance
    of its coefficients, sigma^2/(n V) = 2.8e-6 per pure-x3 term (12 of them at degree 12): the
    interval reaches down to within 1e-4 of 0. A "loo" PCE has no bootstrap: zero-width
    intervals and the method "pce analytic"."""
    first, total, _, _ = ishigami_indices()
    X = InputDistribution(PI3).sample(1024, rng=2)
    y = ishigami(X) + 0.2 * np.random.default_rng(102).standard_normal(1024)
    from stochhom.surrogates.sensitivity import sobol_indices

    boot = PCE(distribution=PI3, degree=12, fit_method="lars", std_method="bootstrap", n_bootstrap=200,
               random_state=2).fit(X, y)
    s = sobol_indices(boot)
    assert s.method == "pce analytic, bootstrap intervals"
    for est, (lo, hi), exact in ((s.first, s.first_ci, first), (s.total, s.total_ci, total)):
        assert np.all(lo <= est) and np.all(est <= hi)
        nonzero = exact > 0
        assert np.all(lo[nonzero] <= exact[nonzero]) and np.all(exact[nonzero] <= hi[nonzero]), (lo, exact, hi)
        assert np.all(hi[nonzero] - lo[nonzero] > 0)  # real intervals, not points
    assert s.first_ci[0][2] <= 1e-4
    np.testing.assert_array_equal(s.first, boot.sobol_first_)  # the model's own array, passed through
    loo = PCE(distribution=PI3, degree=12, fit_method="lars").fit(X, y)
    s0 = sobol_indices(loo)
    assert s0.method == "pce analytic"
    for est, (lo, hi) in ((s0.first, s0.first_ci), (s0.total, s0.total_ci)):
        np.testing.assert_array_equal(lo, est)  # by construction: no bootstrap, the interval is (est, est)
        np.testing.assert_array_equal(hi, est)
