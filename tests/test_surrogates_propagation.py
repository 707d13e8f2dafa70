"""Propagation of input distributions through surrogates, the variance split, and Sobol indices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stochhom.errors import InputError
from stochhom.surrogates.distributions import input_distribution
from stochhom.surrogates.pce import PCE
from stochhom.surrogates.propagation import propagate
from stochhom.surrogates.sensitivity import saltelli_indices, sobol_indices

A, B = 7.0, 0.1
ISHIGAMI = input_distribution(
    {f"x{i}": {"distribution": "uniform", "low": -math.pi, "high": math.pi} for i in range(3)})
# exact moments and indices of the Ishigami function (Sobol & Levitan 1999)
V1 = 0.5 * (1 + B * math.pi**4 / 5) ** 2
V2 = A**2 / 8
V13 = B**2 * math.pi**8 * (1 / 18 - 1 / 50)
VAR = V1 + V2 + V13
FIRST = np.array([V1, V2, 0.0]) / VAR
TOTAL = np.array([V1 + V13, V2, V13]) / VAR


def ishigami(x: np.ndarray) -> np.ndarray:
    return np.sin(x[:, 0]) + A * np.sin(x[:, 1]) ** 2 + B * x[:, 2] ** 4 * np.sin(x[:, 0])


class Exact:
    """A 'surrogate' that is the function itself, with an optional noise model and epistemic offset."""

    def __init__(self, f, noise: float = 0.0, offset_std: float = 0.0) -> None:
        self.f, self.noise, self.offset_std = f, noise, offset_std
        self.n_features_in_ = 3

    def predict(self, x, return_std=False):
        # the contract of predict: the total predictive std, the noise included
        m = self.f(np.asarray(x))
        return (m, np.full(m.shape, math.hypot(self.offset_std, self.noise))) if return_std else m

    def noise_variance(self, x):
        return np.full(len(x), self.noise**2)

    def sample_functions(self, x, n_samples, rng=None):
        gen = np.random.default_rng(rng)
        # epistemic uncertainty as a random constant offset per function: Var_f f(θ) = offset_std²
        return self.f(np.asarray(x))[None] + self.offset_std * gen.standard_normal((n_samples, 1))


def test_propagation_of_the_exact_function_matches_its_moments() -> None:
    res = propagate(Exact(ishigami), ISHIGAMI, 2**14, include=(), rng=0)
    # QMC with 16384 points: the error of the mean is far below the Monte Carlo sd/sqrt(n) = 0.029
    assert res.mean == pytest.approx(A / 2, abs=0.03)
    assert res.std**2 == pytest.approx(VAR, rel=0.01)
    assert res.mean_ci[0] <= A / 2 <= res.mean_ci[1]
    assert res.variance["epistemic"] == 0 and res.variance["aleatoric"] == 0
    assert res.variance["input"] == pytest.approx(VAR, rel=0.01)


def test_variance_decomposition_recovers_each_source() -> None:
    # Y = f(θ) + c + ε: Var = Var f (input) + 0.3² (epistemic offset) + 0.5² (aleatoric)
    model = Exact(ishigami, noise=0.5, offset_std=0.3)
    res = propagate(model, ISHIGAMI, 2**12, n_functions=200, rng=1)
    v = res.variance
    assert v["aleatoric"] == pytest.approx(0.25, rel=1e-12)
    # 200 offsets: the sample variance of c has relative sd sqrt(2/199) = 0.10
    assert v["epistemic"] == pytest.approx(0.09, rel=0.3)
    assert v["input"] == pytest.approx(VAR, rel=0.02)
    assert v["total"] == pytest.approx(VAR + 0.09 + 0.25, rel=0.03)
    assert res.std**2 == pytest.approx(v["total"], rel=0.03)  # the samples agree with the split
    assert v["within"] == pytest.approx(v["aleatoric"] + v["epistemic"])
    assert res.epistemic_share == pytest.approx(v["epistemic"] / v["total"])
    # the interval of the mean reflects the offset's spread (0.3/sqrt(...) per function): it covers 3.5
    assert res.mean_ci[0] <= A / 2 <= res.mean_ci[1]
    assert res.mean_ci[1] - res.mean_ci[0] > 2 * 1.96 * 0.3 * 0.8
    ds = res.to_dataset()
    assert ds["variance_aleatoric"].item() == pytest.approx(0.25)
    grid, pdf = res.density()
    assert np.trapezoid(pdf, grid) == pytest.approx(1.0, abs=0.02)


def test_propagation_through_a_pce_matches_direct_monte_carlo() -> None:
    x = ISHIGAMI.sample(1024, rng=3)
    pce = PCE(distribution=ISHIGAMI, degree=12, fit_method="lars").fit(x, ishigami(x))
    res = propagate(pce, ISHIGAMI, 2**14, include=(), rng=4)
    direct = ishigami(ISHIGAMI.sample(2**14, rng=4))
    # same inputs (same rng): the difference is the surrogate error only, LOO ~ 1e-8 of the variance
    assert res.mean == pytest.approx(direct.mean(), abs=1e-3)
    assert res.std == pytest.approx(direct.std(ddof=1), rel=1e-3)
    assert res.mean == pytest.approx(A / 2, abs=0.03)
    for q in (0.05, 0.5, 0.95):
        assert res.quantiles[q] == pytest.approx(np.quantile(direct, q), abs=0.02)


def test_saltelli_indices_of_ishigami_match_exact_values() -> None:
    out = sobol_indices(Exact(ishigami), ISHIGAMI, n_samples=2**13, n_functions=100, rng=0)
    assert out.method == "saltelli"
    # N = 8192 QMC rows: the estimators' standard error is ~0.01; 0.03 is 3 of them
    np.testing.assert_allclose(out.first, FIRST, atol=0.03)
    np.testing.assert_allclose(out.total, TOTAL, atol=0.03)
    # bootstrap intervals (Monte Carlo error only, the function is exact) cover the truth
    assert np.all(out.first_ci[0] - 0.01 <= FIRST) and np.all(FIRST <= out.first_ci[1] + 0.01)
    assert np.all(out.total_ci[0] - 0.01 <= TOTAL) and np.all(TOTAL <= out.total_ci[1] + 0.01)


def test_pce_analytic_indices_agree_with_saltelli_on_the_pce() -> None:
    x = ISHIGAMI.sample(1024, rng=5)
    pce = PCE(distribution=ISHIGAMI, degree=12, fit_method="lars").fit(x, ishigami(x))
    analytic = sobol_indices(pce)
    assert analytic.method == "pce analytic"
    np.testing.assert_allclose(analytic.first, FIRST, atol=1e-3)
    mc = sobol_indices(pce, ISHIGAMI, n_samples=2**13, n_functions=50, rng=1)
    np.testing.assert_allclose(mc.first, analytic.first, atol=0.03)
    np.testing.assert_allclose(mc.total, analytic.total, atol=0.03)


def test_saltelli_estimators_on_an_additive_function() -> None:
    # f = x0 + 2 x1 with independent standard uniforms: S = (1, 4)/5 exactly, no interactions
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 200_000, 2))
    f = lambda x: x[..., 0] + 2 * x[..., 1]  # noqa: E731
    ab = np.stack([np.column_stack([b[:, 0], a[:, 1]]), np.column_stack([a[:, 0], b[:, 1]])])
    first, total = saltelli_indices(f(a), f(b), f(ab))
    np.testing.assert_allclose(first, [0.2, 0.8], atol=0.01)
    np.testing.assert_allclose(total, [0.2, 0.8], atol=0.01)


def test_propagation_errors() -> None:
    model = Exact(ishigami)
    with pytest.raises(InputError, match="unknown source"):
        propagate(model, ISHIGAMI, 64, include=("input",))
    with pytest.raises(InputError, match="n_samples must be a positive integer"):
        propagate(model, ISHIGAMI, 0)
    two = input_distribution({"a": {"distribution": "uniform", "low": 0, "high": 1},
                              "b": {"distribution": "uniform", "low": 0, "high": 1}})
    with pytest.raises(InputError, match=r"2 input\(s\).*3 feature\(s\)"):
        propagate(model, two, 64)
    with pytest.raises(InputError, match="pass the input distribution"):
        sobol_indices(model)
    corr = input_distribution(two, correlation=[[1.0, 0.5], [0.5, 1.0]])
    model.n_features_in_ = 2
    with pytest.raises(InputError, match="independent inputs"):
        sobol_indices(model, corr)


# ----------------------------------------------------------------------------- through a GP


TWO = input_distribution({"a": {"distribution": "uniform", "low": 0.0, "high": 1.0},
                          "b": {"distribution": "uniform", "low": 0.0, "high": 1.0}})


def smooth(x: np.ndarray) -> np.ndarray:
    return np.sin(3 * x[:, 0]) + x[:, 1] ** 2


@pytest.fixture(scope="module")
def noisy_gps():
    from stochhom.surrogates import GPR

    rng = np.random.default_rng(0)
    fits = {}
    for n in (12, 150):
        x = TWO.sample(n, rng=rng, method="random")
        y = smooth(x) + 0.2 * rng.standard_normal(n)
        fits[n] = GPR(kernel="rbf", n_restarts=1, random_state=0).fit(x, y)
    return fits


def test_propagation_through_a_gp_matches_direct_monte_carlo(noisy_gps) -> None:
    res = propagate(noisy_gps[150], TWO, 2**11, n_functions=64, rng=1)
    direct = smooth(TWO.sample(2**16, rng=2))
    var_f = direct.var()
    # the mean's interval combines the posterior spread and the MC error: it must cover the truth
    assert res.mean_ci[0] <= direct.mean() <= res.mean_ci[1]
    assert res.variance["aleatoric"] == pytest.approx(0.04, rel=0.35)  # noise 0.2² learned from 150 points
    assert res.variance["input"] == pytest.approx(var_f, rel=0.1)
    assert res.variance["total"] == pytest.approx(var_f + 0.04, rel=0.1)
    assert res.epistemic_share < 0.1


def test_epistemic_share_falls_with_more_data(noisy_gps) -> None:
    few = propagate(noisy_gps[12], TWO, 2**10, n_functions=64, rng=3)
    many = propagate(noisy_gps[150], TWO, 2**10, n_functions=64, rng=3)
    assert few.epistemic_share > 2 * many.epistemic_share
    assert (few.mean_ci[1] - few.mean_ci[0]) > (many.mean_ci[1] - many.mean_ci[0])


def test_sobol_indices_over_gp_posterior_functions() -> None:
    from stochhom.surrogates import GPR

    rng = np.random.default_rng(4)
    x = TWO.sample(60, rng=rng, method="random")
    gp = GPR(kernel="rbf", n_restarts=1, random_state=0).fit(x, x[:, 0] + 2 * x[:, 1] + 0.01 * rng.standard_normal(60))
    out = sobol_indices(gp, TWO, n_samples=512, n_functions=64, rng=5)
    # additive f = a + 2b on unit uniforms: S = ST = (0.2, 0.8)
    np.testing.assert_allclose(out.first, [0.2, 0.8], atol=0.05)
    np.testing.assert_allclose(out.total, [0.2, 0.8], atol=0.05)
    assert np.all(out.first_ci[0] <= [0.2, 0.8]) and np.all(np.array([0.2, 0.8]) <= out.first_ci[1])


def test_a_pce_std_is_reported_unsplit_not_epistemic() -> None:
    # a PCE's LOO std mixes scatter and surrogate error: it must not be called epistemic
    x = ISHIGAMI.sample(256, rng=6)
    y = ishigami(x) + 0.5 * np.random.default_rng(7).standard_normal(256)
    pce = PCE(distribution=ISHIGAMI, degree=6).fit(x, y)
    res = propagate(pce, ISHIGAMI, 1024, n_functions=32, rng=8)
    assert res.variance["epistemic"] == 0.0 and res.epistemic_share == 0.0
    _, std = pce.predict(x[:1], return_std=True)
    assert res.variance["unsplit"] == pytest.approx(float(std[0]) ** 2, rel=0.15)  # 32 x 1024 draws
    assert res.variance["within"] == pytest.approx(res.variance["unsplit"])
