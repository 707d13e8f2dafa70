"""Input distributions: the sampled laws match their specs, the germ transforms and the
orthonormal families are exact, the Gaussian copula has the requested correlation, and
bad specs are refused with messages that name the input and the allowed values."""

from __future__ import annotations

import chaospy as cp
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import roots_hermitenorm, roots_jacobi, roots_legendre

from stochhom.errors import InputError
from stochhom.surrogates.distributions import (
    DISTRIBUTIONS,
    InputDistribution,
    hermite_recurrence,
    input_distribution,
    jacobi_recurrence,
    uniform_box,
)
from stochhom.surrogates.pce import orthonormal_polynomials

SPEC = {
    "vf": {"distribution": "uniform", "low": 0.1, "high": 0.4},
    "contrast": {"distribution": "loguniform", "low": 10.0, "high": 1000.0},
    "length": {"distribution": "normal", "mean": 4.0, "std": 0.5},
    "k": {"distribution": "lognormal", "median": 2.0, "sigma": 0.3},
    "shape": {"distribution": "beta", "alpha": 2.0, "beta": 5.0, "low": -1.0, "high": 3.0},
}


def exact_moments(spec: dict) -> tuple[float, float]:
    """Mean and variance from the textbook formulas (independent of scipy's parametrization)."""
    kind = spec["distribution"]
    if kind == "uniform":
        lo, hi = spec["low"], spec["high"]
        return (lo + hi) / 2, (hi - lo) ** 2 / 12
    if kind == "loguniform":
        lo, hi = spec["low"], spec["high"]
        ln = np.log(hi / lo)
        mean = (hi - lo) / ln
        return mean, (hi**2 - lo**2) / (2 * ln) - mean**2
    if kind == "normal":
        return spec["mean"], spec["std"] ** 2
    if kind == "lognormal":
        m, s = np.log(spec["median"]), spec["sigma"]
        return np.exp(m + s**2 / 2), (np.exp(s**2) - 1) * np.exp(2 * m + s**2)
    a, b, lo, hi = spec["alpha"], spec["beta"], spec["low"], spec["high"]
    w = hi - lo
    return lo + w * a / (a + b), w**2 * a * b / ((a + b) ** 2 * (a + b + 1))


# --------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["sobol", "lhs", "random"])
def test_sample_moments_match_the_spec(method):
    """Sample mean and variance within 4 Monte Carlo standard errors of the exact values.

    The standard error of the mean is sd/sqrt(n); that of the variance is
    sqrt((mu4 - sd^4)/n), with the fourth central moment mu4 from scipy. QMC designs
    converge faster than MC, so the MC bound is conservative for sobol/lhs; a wrong
    parametrization (e.g. sigma taken as the variance, or log-space bounds) misses by far more.
    """
    n = 2**14
    dist = InputDistribution(SPEC)
    x = dist.sample(n, rng=7, method=method)
    assert x.shape == (n, 5)
    for i, name in enumerate(dist.names):
        mean, var = exact_moments(SPEC[name])
        mu4 = float(dist._marginals[i].frozen().expect(lambda t, m=mean: (t - m) ** 4))
        se_mean, se_var = np.sqrt(var / n), np.sqrt((mu4 - var**2) / n)
        assert abs(x[:, i].mean() - mean) < 4 * se_mean, name
        assert abs(x[:, i].var() - var) < 4 * se_var, name
    np.testing.assert_allclose(dist.mean, [exact_moments(SPEC[n])[0] for n in dist.names], rtol=1e-12)
    np.testing.assert_allclose(dist.std**2, [exact_moments(SPEC[n])[1] for n in dist.names], rtol=1e-10)


def test_samples_stay_in_the_support():
    x = InputDistribution(SPEC).sample(4096, rng=3, method="random")
    assert np.all(InputDistribution(SPEC).contains(x))
    sup = InputDistribution(SPEC).support
    assert sup.shape == (5, 2)
    assert sup[2].tolist() == [-np.inf, np.inf] and sup[3].tolist() == [0.0, np.inf]
    assert np.all(x[:, 0] >= 0.1) and np.all(x[:, 0] <= 0.4)


@pytest.mark.parametrize("method", ["sobol", "lhs", "random"])
def test_samples_are_reproducible_for_a_fixed_rng(method):
    dist = InputDistribution(SPEC)
    a = dist.sample(64, rng=11, method=method)
    b = dist.sample(64, rng=np.random.default_rng(11), method=method)
    c = dist.sample(64, rng=12, method=method)
    np.testing.assert_array_equal(a, b)  # bit for bit: seeded draws and elementwise ppf, no BLAS
    assert not np.allclose(a, c)


def test_lhs_stratifies_each_margin():
    """A Latin hypercube puts exactly one point in each of the n equiprobable strata."""
    dist = InputDistribution(SPEC)
    x = dist.sample(50, rng=2, method="lhs")
    strata = np.floor(dist.to_unit(x) * 50).astype(int)
    for i in range(5):
        assert sorted(strata[:, i]) == list(range(50))


def test_ppf_and_rosenblatt_are_inverse():
    dist = InputDistribution(SPEC, correlation=_corr5())
    u = np.random.default_rng(0).uniform(0.01, 0.99, (200, 5))
    np.testing.assert_allclose(dist.to_unit(dist.ppf(u)), u, atol=1e-10)


# --------------------------------------------------------------------------------------
# germs and orthonormal families
# --------------------------------------------------------------------------------------
GERM_LAWS = {
    "uniform": st.uniform(-1, 2),
    "loguniform": st.uniform(-1, 2),
    "normal": st.norm(),
    "lognormal": st.norm(),
    "beta": None,  # (xi + 1)/2 ~ Beta(alpha, beta)
}


def test_germs_have_the_standard_laws():
    """F_x(x) = F_germ(T(x)) on a grid: the transform maps each marginal exactly onto its germ law."""
    dist = InputDistribution(SPEC)
    u = np.linspace(0.001, 0.999, 101)
    x = dist.ppf(np.repeat(u[:, None], 5, axis=1))
    xi = dist.to_germ(x)
    for i, name in enumerate(dist.names):
        kind = SPEC[name]["distribution"]
        if kind == "beta":
            got = st.beta(SPEC[name]["alpha"], SPEC[name]["beta"]).cdf((xi[:, i] + 1) / 2)
        else:
            got = GERM_LAWS[kind].cdf(xi[:, i])
        np.testing.assert_allclose(got, u, atol=1e-12, err_msg=name)
    assert dist.families == ["legendre", "legendre", "hermite", "hermite", "jacobi"]


@pytest.mark.parametrize(
    ("family", "rule"),
    [
        ("legendre", lambda n: roots_legendre(n)),
        ("hermite", lambda n: roots_hermitenorm(n)),
        ("jacobi", lambda n: roots_jacobi(n, 4.0, 1.0)),  # Beta(2, 5) on [-1, 1]: (1-t)^4 (1+t)^1
    ],
)
def test_recurrences_give_orthonormal_polynomials(family, rule):
    """Gauss quadrature with 12 nodes integrates degree <= 23 exactly: E[psi_j psi_k] = delta_jk
    for j, k <= 8, to round-off."""
    degree = 8
    t, w = rule(12)
    w = w / w.sum()
    rec = {"legendre": jacobi_recurrence(degree), "hermite": hermite_recurrence(degree),
           "jacobi": jacobi_recurrence(degree, a=4.0, b=1.0)}[family]
    psi = orthonormal_polynomials(t, np.stack(rec))
    gram = psi.T @ (w[:, None] * psi)
    np.testing.assert_allclose(gram, np.eye(degree + 1), atol=1e-11)


def test_spec_recurrences_agree_with_chaospy():
    """Our closed forms against chaospy's three-term recurrence (chaospy's beta_0 is arbitrary)."""
    a, b = jacobi_recurrence(6, a=4.0, b=1.0)  # Beta(2, 5), on [-1, 1]
    ref = np.asarray(cp.Beta(2, 5, -1, 1).ttr(np.arange(7)))
    np.testing.assert_allclose(a, ref[0], atol=1e-13)
    np.testing.assert_allclose(b[1:], ref[1][1:], rtol=1e-12)
    a, b = jacobi_recurrence(6)
    ref = np.asarray(cp.Uniform(-1, 1).ttr(np.arange(7)))
    np.testing.assert_allclose(b[1:], ref[1][1:], rtol=1e-12)


# --------------------------------------------------------------------------------------
# chaospy interoperability
# --------------------------------------------------------------------------------------
def test_chaospy_distribution_round_trip():
    joint = cp.J(cp.Uniform(2, 3), cp.Normal(1, 2), cp.Beta(2, 3, 0, 1))
    dist = InputDistribution(joint, names=["a", "b", "c"])
    assert dist.names == ["a", "b", "c"] and dist.kinds == ["chaospy"] * 3
    np.testing.assert_allclose(dist.mean, [2.5, 1.0, 0.4], rtol=1e-12)
    u = np.random.default_rng(1).uniform(size=(20, 3))
    np.testing.assert_allclose(dist.ppf(u), joint.inv(u.T).T, rtol=1e-12)
    assert dist.to_chaospy() is not None
    with pytest.raises(InputError, match="cannot be saved"):
        dist.to_dict()


def test_spec_to_chaospy_has_the_same_law():
    """chaospy's sampler on to_chaospy() gives the same moments as ours (4 standard errors)."""
    dist = InputDistribution(SPEC)
    n = 20000
    x = np.asarray(dist.to_chaospy().sample(n, rule="sobol", seed=1)).T
    for i, name in enumerate(dist.names):
        mean, var = exact_moments(SPEC[name])
        assert abs(x[:, i].mean() - mean) < 4 * np.sqrt(var / n), name


def test_dependent_chaospy_distribution_is_refused():
    a = cp.Normal(0, 1)
    with pytest.raises(InputError, match="dependent"):
        InputDistribution(cp.J(a, cp.Normal(a, 1)))


# --------------------------------------------------------------------------------------
# Gaussian copula
# --------------------------------------------------------------------------------------
def _corr5() -> np.ndarray:
    r = np.eye(5)
    r[0, 1] = r[1, 0] = 0.6
    r[0, 2] = r[2, 0] = -0.4
    r[3, 4] = r[4, 3] = 0.8
    return r


def test_copula_normal_scores_have_the_given_correlation():
    """The Pearson correlation of the normal scores Phi^-1(F_i(x_i)) estimates R with a standard
    error (1 - rho^2)/sqrt(n); the Spearman correlation of the inputs is (6/pi) asin(R/2) with a
    standard error below ~1/sqrt(n). Both within 4 standard errors at n = 2^14."""
    r = _corr5()
    dist = InputDistribution(SPEC, correlation=r)
    n = 2**14
    x = dist.sample(n, rng=5)
    z = st.norm.ppf(dist.cdf(x))
    pearson = np.corrcoef(z, rowvar=False)
    assert np.all(np.abs(pearson - r) < 4 * (1 - r**2) / np.sqrt(n) + 1e-12)
    spearman = st.spearmanr(x).statistic
    expected = 6 / np.pi * np.arcsin(r / 2)
    assert np.all(np.abs(spearman - expected) < 4 / np.sqrt(n))
    # marginals are untouched by the copula
    for i, name in enumerate(dist.names):
        mean, var = exact_moments(SPEC[name])
        assert abs(x[:, i].mean() - mean) < 4 * np.sqrt(var / n), name


def test_copula_germ_is_independent_standard_normal():
    dist = InputDistribution(SPEC, correlation=_corr5())
    xi = dist.to_germ(dist.sample(2**14, rng=9))
    np.testing.assert_allclose(np.cov(xi, rowvar=False), np.eye(5), atol=4 * np.sqrt(2 / 2**14))
    assert dist.families == ["hermite"] * 5 and not dist.independent


def test_identity_correlation_means_independent():
    dist = InputDistribution(SPEC, correlation=np.eye(5))
    assert dist.independent and dist.correlation is None


# --------------------------------------------------------------------------------------
# serialization and helpers
# --------------------------------------------------------------------------------------
def test_dict_round_trip_is_exact():
    import json

    dist = InputDistribution(SPEC, correlation=_corr5())
    back = InputDistribution.from_dict(json.loads(json.dumps(dist.to_dict())))
    assert back == dist and back.names == dist.names
    u = np.random.default_rng(2).uniform(size=(10, 5))
    # bit for bit: the JSON round trip restores the same numbers (repr floats), and ppf is
    # elementwise plus a 5x5 Cholesky product that BLAS runs on one thread at this size
    np.testing.assert_array_equal(back.ppf(u), dist.ppf(u))


def test_input_distribution_accepts_specs_and_objects():
    dist = InputDistribution(SPEC)
    assert input_distribution(dist) is dist
    assert input_distribution(SPEC) == dist
    reordered = input_distribution(SPEC, names=["k", "vf", "contrast", "length", "shape"])
    assert reordered.names[0] == "k"
    box = uniform_box([0, 1], [2, 5])
    np.testing.assert_array_equal(box.support, [[0, 2], [1, 5]])
    assert "loguniform(low=10, high=1000)" in repr(dist)
    np.testing.assert_allclose(InputDistribution({"x": SPEC["length"]}).bounds(0.05),
                               [[4 - 1.959964 * 0.5, 4 + 1.959964 * 0.5]], atol=1e-5)


def test_schema_parameter_names_agree():
    from stochhom.study.schema import DISTRIBUTIONS as SCHEMA

    for kind, keys in SCHEMA.items():
        assert DISTRIBUTIONS[kind] == keys


# --------------------------------------------------------------------------------------
# bad specs
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"vf": {"distribution": "gamma", "a": 1}}, r"input 'vf': unknown distribution 'gamma'; allowed: \['beta'"),
        ({"vf": {"distribution": "uniform", "low": 0.5, "high": 0.1}}, "input 'vf': low must be below high"),
        ({"vf": {"distribution": "uniform", "low": 0.1}}, r"'vf'.*parameters \['low', 'high'\].*missing"),
        ({"vf": {"distribution": "normal", "mean": 1, "sd": 1}}, r"input 'vf'.*\['mean', 'std'\].*unknown \['sd'\]"),
        ({"vf": {"distribution": "normal", "mean": 1, "std": -1}}, "input 'vf': std must be > 0"),
        ({"vf": {"distribution": "lognormal", "median": 0, "sigma": 1}}, "input 'vf': median must be > 0"),
        ({"vf": {"distribution": "loguniform", "low": 0, "high": 1}}, "input 'vf': a loguniform range must be"),
        ({"vf": {"distribution": "beta", "alpha": 0, "beta": 1, "low": 0, "high": 1}}, "input 'vf': alpha must be > 0"),
        ({"vf": {"distribution": "uniform", "low": "a", "high": 1}}, "input 'vf': low must be a number"),
        ({"vf": {"distribution": "uniform", "low": np.nan, "high": 1}}, "input 'vf': low must be finite"),
        ({"vf": 3.0}, "input 'vf': expected a table"),
        ({}, "at least one input"),
        ([1, 2], "a distribution must be a dict"),
    ],
)
def test_bad_specs_raise_input_error(spec, match):
    with pytest.raises(InputError, match=match):
        InputDistribution(spec)


@pytest.mark.parametrize(
    ("corr", "match"),
    [
        (np.eye(3), r"must be \(2, 2\)"),
        ([[1.0, 0.5], [0.4, 1.0]], "symmetric"),
        ([[2.0, 0.5], [0.5, 2.0]], "unit diagonal"),
        ([[1.0, 1.0], [1.0, 1.0]], r"strictly inside \(-1, 1\)"),
        ([["a", 0], [0, 1]], "numeric"),
    ],
)
def test_bad_correlations_raise_input_error(corr, match):
    spec = {"a": SPEC["vf"], "b": SPEC["length"]}
    with pytest.raises(InputError, match=match):
        InputDistribution(spec, correlation=corr)


def test_non_positive_definite_correlation_is_refused():
    r = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])  # pairwise valid, jointly not
    spec = {"a": SPEC["vf"], "b": SPEC["length"], "c": SPEC["k"]}
    with pytest.raises(InputError, match="not positive definite"):
        InputDistribution(spec, correlation=r)


def test_bad_sampling_arguments():
    dist = InputDistribution(SPEC)
    with pytest.raises(InputError, match=r"unknown sampling method 'grid'; allowed: \['sobol', 'lhs', 'random'\]"):
        dist.sample(8, method="grid")
    with pytest.raises(InputError, match="positive integer"):
        dist.sample(0)
    with pytest.raises(InputError, match="unit cube"):
        dist.ppf(np.full((2, 5), 1.5))
    with pytest.raises(InputError, match=r"must be \(n, 5\)"):
        dist.ppf(np.full((2, 3), 0.5))
    with pytest.raises(InputError, match="permutation"):
        InputDistribution(SPEC, names=["vf", "other"])
