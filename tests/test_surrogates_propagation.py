"""Propagation of input distributions through surrogates, the variance split, and Sobol indices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from sklearn.base import BaseEstimator, RegressorMixin

from stochhom.errors import InputError
from stochhom.surrogates.bounded import BoundedSurrogate
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


# ----------------------------------------------------------------------------- the exact variance split


UNIT = input_distribution({"x": {"distribution": "uniform", "low": 0.0, "high": 1.0}})


class Line:
    """Y = 2x + e with a predictive std ``sd`` (no posterior functions: independent draws per input).

    With ``noise`` the model also has a noise model (``noise_variance``): then ``sd**2 - noise``
    is the surrogate's own (epistemic) variance; without, the whole of ``sd**2`` is unsplit.
    """

    n_features_in_ = 1

    def __init__(self, sd: float = 1.0, noise: float | None = None) -> None:
        self.sd = sd
        if noise is not None:
            self.noise_variance = lambda x: np.full(len(x), noise)

    def predict(self, x, return_std=False):
        m = 2.0 * np.asarray(x, dtype=float)[:, 0]
        return (m, np.full(m.shape, self.sd)) if return_std else m


# Var(2x), x ~ U(0, 1), estimated from n = 4096 scrambled Sobol points with ddof=1: the ddof factor
# n/(n-1) adds 1/(3 (n-1)) = 8.1e-5; in one dimension the scrambled points hold one point per cell
# of width 1/n, so the QMC error of the sample moments is O(n^-1.5) ~ 4e-6. Tolerance 2e-4 covers
# both, and is 20x below the bias of the naive estimator that keeps the draws' Monte Carlo
# variance (1/J: 0.25 at J = 4).
N_LINE = 4096
INPUT_TOL = 2e-4


@pytest.mark.parametrize("n_functions", [1, 2, 4, 64])
def test_split_of_a_model_without_noise_model_is_exact_for_any_number_of_functions(n_functions: int) -> None:
    """Y = 2x + N(0, 1), x ~ U(0, 1), a predictive std of 1 and no noise model: the unit variance is
    unsplit (scatter and surrogate error mixed), exactly 1 at every input; the input part is
    Var(2x) = 1/3, the total 4/3, and std**2 is the total, whatever the number of function draws
    (the naive estimator, the variance of the means of J draws, has expectation 1/3 + 1/J: it
    gave 0.572 at J = 4)."""
    res = propagate(Line(sd=1.0), UNIT, N_LINE, n_functions=n_functions, rng=0)
    v = res.variance
    assert v["unsplit"] == 1.0  # exact: the mean over the inputs of a constant 1 - 0
    assert v["aleatoric"] == 0.0 and v["epistemic"] == 0.0 and res.epistemic_share == 0.0
    assert v["input"] == pytest.approx(1 / 3, abs=INPUT_TOL)
    assert v["total"] == pytest.approx(4 / 3, abs=INPUT_TOL)
    assert res.std**2 == pytest.approx(v["total"], abs=1e-12)
    assert v["within"] == v["unsplit"] and v["between"] == v["input"]
    assert res.samples.shape == (n_functions, N_LINE) and not res.joint_functions
    # the same rng gives the same inputs: the split does not depend on J at all
    ref = propagate(Line(sd=1.0), UNIT, N_LINE, n_functions=64, rng=0).variance
    for key in ("total", "unsplit", "input"):
        assert v[key] == pytest.approx(ref[key], abs=1e-14)


@pytest.mark.parametrize("n_functions", [1, 2, 4, 64])
def test_split_with_a_noise_model_separates_scatter_and_surrogate_exactly(n_functions: int) -> None:
    """Noise variance 0.25 and predictive std sqrt(0.25 + 0.09): aleatoric 0.25, epistemic 0.09 (to
    round-off), input 1/3, for every number of functions; the samples' variance agrees with the
    total: Y_ij = 2x_i + N(0, 0.34) has, over J x 4096 draws, a variance whose standard error is
    at most sqrt(2 * 0.34**2 + 4 * 0.34 / 3) / sqrt(4096) = 0.013 (J = 1); 3 SE = 0.04."""
    res = propagate(Line(sd=math.sqrt(0.25 + 0.09), noise=0.25), UNIT, N_LINE, n_functions=n_functions, rng=1)
    v = res.variance
    assert v["aleatoric"] == pytest.approx(0.25, abs=1e-12)
    assert v["epistemic"] == pytest.approx(0.09, abs=1e-12)
    assert v["unsplit"] == 0.0
    assert v["input"] == pytest.approx(1 / 3, abs=INPUT_TOL)
    assert v["total"] == pytest.approx(1 / 3 + 0.34, abs=INPUT_TOL)
    assert res.std**2 == pytest.approx(v["total"], abs=1e-12)
    assert res.epistemic_share == pytest.approx(0.09 / v["total"], rel=1e-12)
    assert res.samples.var() == pytest.approx(v["total"], abs=0.04)
    assert res.mean == pytest.approx(1.0, abs=1e-3)  # E 2x = 1; QMC error O(n^-1.5) in 1-D


def test_a_bootstrap_pce_is_split_into_its_residual_variance_and_its_bootstrap_spread() -> None:
    """A PCE with std_method="bootstrap" has a noise model (the residual variance) and bootstrap
    functions: the aleatoric part is noise_std_**2 exactly, the epistemic part the mean over the
    propagated inputs of predict's variance minus it (Var_b of the refits), and the samples come
    from joint functions."""
    x = ISHIGAMI.sample(256, rng=6)
    y = ishigami(x) + 0.5 * np.random.default_rng(7).standard_normal(256)
    pce = PCE(distribution=ISHIGAMI, degree=5, std_method="bootstrap", n_bootstrap=50, random_state=0).fit(x, y)
    res = propagate(pce, ISHIGAMI, 1024, n_functions=16, rng=8)
    assert res.joint_functions and res.variance["unsplit"] == 0.0
    assert res.variance["aleatoric"] == pytest.approx(pce.noise_std_**2, rel=1e-12)
    _, sd = pce.predict(res.inputs, return_std=True)
    assert res.variance["epistemic"] == pytest.approx(np.mean(sd**2 - pce.noise_std_**2), rel=1e-9)
    assert 0 < res.epistemic_share < 0.5


# ----------------------------------------------------------------------------- a bounded surrogate


V_F, V_N = 0.04, 0.09  # latent (log-scale) posterior and noise variances


def _latent_mean(x: np.ndarray) -> np.ndarray:
    return np.log(1.5 + 2.0 * np.asarray(x, dtype=float)[:, 0])


def _bounds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)[:, 0]
    return 1.0 + x, 2.2 + 2.0 * x  # both cut the latent law (sd 0.36) by about one sd at x = 0


class _Latent(RegressorMixin, BaseEstimator):
    """A known latent law of ln Y: mean ln(1.5 + 2x), posterior variance V_F, noise V_N (ignores the
    data); with ``joint`` posterior functions are random constant offsets of variance V_F."""

    def __init__(self, joint: bool = False) -> None:
        self.joint = joint

    def fit(self, x, y):
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x, return_std=False):
        m = _latent_mean(x)
        return (m, np.full(m.shape, math.sqrt(V_F + V_N))) if return_std else m

    def noise_variance(self, x):
        return np.full(len(x), V_N)

    @property
    def sample_functions(self):
        if not self.joint:
            raise AttributeError("no posterior functions")
        return self._functions

    def _functions(self, x, n_samples, rng=None):
        return _latent_mean(x)[None] + math.sqrt(V_F) * np.random.default_rng(rng).standard_normal((n_samples, 1))


@pytest.fixture(scope="module")
def brute_force_bounded() -> tuple[np.ndarray, np.ndarray]:
    """Nested Monte Carlo of the same law, by definition: x_i ~ U(0, 1) (N), f_ij ~ N(mu(x_i), V_F)
    (J), z_ijk = f_ij + N(0, V_N) redrawn until inside [ln lo(x_i), ln hi(x_i)] (rejection: the
    truncated law itself), Y = exp z (K). Unbiased ANOVA estimators of the mean, E Var(Y|x,f),
    E Var_f E[Y|x,f], Var_x E[Y|x] and Var Y, with standard errors from 20 batch means."""
    n, j, k = 20_000, 8, 8
    gen = np.random.default_rng(11)
    x = gen.random(n)
    a, b = np.log(1.0 + x), np.log(2.2 + 2.0 * x)
    f = np.log(1.5 + 2.0 * x)[:, None] + math.sqrt(V_F) * gen.standard_normal((n, j))
    shape = (n, j, k)
    fb, ab, bb = (np.broadcast_to(v, shape) for v in (f[:, :, None], a[:, None, None], b[:, None, None]))
    z = np.full(shape, np.nan)
    todo = np.flatnonzero(np.ones(shape, bool))
    while todo.size:
        c = fb.flat[todo] + math.sqrt(V_N) * gen.standard_normal(todo.size)
        ok = (c >= ab.flat[todo]) & (c <= bb.flat[todo])
        z.flat[todo[ok]] = c[ok]
        todo = todo[~ok]
    y = np.exp(z)

    def anova(y: np.ndarray) -> np.ndarray:
        alea = y.var(axis=2, ddof=1).mean()
        yij = y.mean(axis=2)
        epi = yij.var(axis=1, ddof=1).mean() - alea / k
        inp = yij.mean(axis=1).var(ddof=1) - epi / j - alea / (j * k)
        return np.array([y.mean(), alea, epi, inp, y.var(ddof=1)])

    batches = np.array([anova(part) for part in np.array_split(y, 20)])
    return anova(y), batches.std(axis=0, ddof=1) / math.sqrt(20)


@pytest.fixture(scope="module")
def quadrature_bounded() -> np.ndarray:
    """The same moments by deterministic quadrature, from scipy's truncated normal density: Gauss-
    Legendre over x (24 nodes) and over z in [ln lo, ln hi] (64 nodes: E[e^z], E[e^2z] of the
    truncated law), Gauss-Hermite over f (40 nodes); all integrands are smooth and the rules
    converge to round-off (checked against scipy.integrate.quad: 1e-15)."""
    gx, gw = np.polynomial.legendre.leggauss(24)
    gx, gw = 0.5 * (gx + 1.0), 0.5 * gw
    hx, hw = np.polynomial.hermite_e.hermegauss(40)
    hw = hw / math.sqrt(2.0 * math.pi)
    zx, zw = np.polynomial.legendre.leggauss(64)
    a, b = np.log(1.0 + gx), np.log(2.2 + 2.0 * gx)
    f = np.log(1.5 + 2.0 * gx)[:, None] + math.sqrt(V_F) * hx[None]  # (x, f)
    z = 0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * zx[None]  # (x, z)
    wz = 0.5 * (b - a)[:, None] * zw[None]
    s = math.sqrt(V_N)
    pdf = st.truncnorm.pdf(z[:, None, :], ((a[:, None] - f) / s)[..., None], ((b[:, None] - f) / s)[..., None],
                           loc=f[..., None], scale=s)  # (x, f, z)
    m1 = np.sum(wz[:, None] * np.exp(z)[:, None] * pdf, axis=-1)  # E[Y | x, f]
    m2 = np.sum(wz[:, None] * np.exp(2 * z)[:, None] * pdf, axis=-1)
    mx = m1 @ hw  # E[Y | x]
    mean = gw @ mx
    alea, epi, inp = gw @ ((m2 - m1**2) @ hw), gw @ (m1**2 @ hw - mx**2), gw @ mx**2 - mean**2
    return np.array([mean, alea, epi, inp, alea + epi + inp])


@pytest.mark.parametrize("joint", [False, True], ids=["independent draws", "posterior functions"])
def test_bounded_propagation_stays_inside_and_matches_brute_force(joint: bool, brute_force_bounded,
                                                                   quadrature_bounded) -> None:
    """A BoundedSurrogate (log scale, bounds [1 + x, 2.2 + 2x]) around a known latent law: every
    propagated sample lies inside the bounds at its input, and the mean and the variance split
    (closed-form truncated-lognormal moments, Gauss-Hermite over f) agree with nested brute-force
    Monte Carlo within 3 of its standard errors (the QMC error of 4096 Sobol inputs and the
    24-node quadrature error are far smaller), and with the quadrature oracle: to 1e-5 relative
    for the means over the inputs (the QMC error of a smooth mean over 4096 one-dimensional
    scrambled Sobol points is O(n^-1.5) = 4e-6), to 5e-4 for the input and total terms (plus the
    ddof=1 factor n/(n-1) = 1 + 2.4e-4 of the sample variance over the inputs)."""
    x = np.linspace(0.0, 1.0, 20)[:, None]
    model = BoundedSurrogate(_Latent(joint=joint), bounds=_bounds).fit(x, 1.5 + 2.0 * x[:, 0])
    res = propagate(model, UNIT, N_LINE, n_functions=64, rng=0)
    assert res.joint_functions is joint
    lo, hi = res.bounds
    np.testing.assert_allclose(lo, 1.0 + res.inputs[:, 0], rtol=1e-15)
    np.testing.assert_allclose(hi, 2.2 + 2.0 * res.inputs[:, 0], rtol=1e-15)
    assert res.samples.shape == (64, N_LINE)
    assert np.all((res.samples >= lo[None]) & (res.samples <= hi[None]))
    v = res.variance
    ours = np.array([res.mean, v["aleatoric"], v["epistemic"], v["input"], v["total"]])
    ref, se = brute_force_bounded
    assert np.all(np.abs(ours - ref) <= 3 * se), (ours, ref, se)
    np.testing.assert_allclose(ours[:3], quadrature_bounded[:3], rtol=1e-5)
    np.testing.assert_allclose(ours[3:], quadrature_bounded[3:], rtol=5e-4)
    assert res.std**2 == pytest.approx(v["total"], abs=1e-12) and v["unsplit"] == 0.0
    # the truncation matters: the untruncated lognormal mean E(1.5 + 2x) e^{(V_F + V_N)/2} is far off
    assert abs(2.5 * math.exp((V_F + V_N) / 2) - ref[0]) > 50 * se[0]
    if not joint:  # i.i.d. draws given x_i: their moments agree with the exact ones (3 SE of 64 x 4096)
        n = res.samples.size
        assert res.samples.mean() == pytest.approx(res.mean, abs=3 * math.sqrt(v["total"] / n))
        c = res.samples - res.samples.mean()
        assert res.samples.var() == pytest.approx(v["total"], abs=3 * math.sqrt(np.mean(c**4) / n))


# ----------------------------------------------------------------------------- shares of the whole variance


def test_sobol_indices_relative_to_the_whole_variance_name_every_share() -> None:
    """Ishigami plus scatter of variance sigma^2 = 1 (a noise model, no surrogate error): relative to
    Var Y = VAR + 1 the indices are the exact ones times VAR/(VAR + 1) (the Saltelli tolerance
    0.03 of N = 8192 rows), the scatter's share is 1/(VAR + 1) = 0.0674: the share is
    sigma^2/(V + sigma^2) with V the variance over the 2N = 16384 QMC rows of A and B; plain
    Monte Carlo would give it an sd of sigma^2 V sqrt((kurtosis - 1)/2N)/(V + 1)^2 = 7.8e-4
    (kurtosis 3.51), scrambled Sobol points are >= 10x better on this smooth function (measured
    <= 4e-5 over seeds), hence 2e-4. The shares add up to 1, and relative_to="mean" gives the
    indices of the mean response, unscaled, from the same draws."""
    model = Exact(ishigami, noise=1.0)
    tot = sobol_indices(model, ISHIGAMI, n_samples=2**13, n_functions=100, rng=0, relative_to="total")
    mean = sobol_indices(model, ISHIGAMI, n_samples=2**13, n_functions=100, rng=0, relative_to="mean")
    scale = VAR / (VAR + 1.0)
    assert tot.relative_to == "total" and mean.relative_to == "mean" and mean.shares == {}
    np.testing.assert_allclose(tot.first, FIRST * scale, atol=0.03)
    np.testing.assert_allclose(tot.total, TOTAL * scale, atol=0.03)
    np.testing.assert_allclose(mean.first, FIRST, atol=0.03)
    np.testing.assert_allclose(mean.total, TOTAL, atol=0.03)
    assert tot.shares["aleatoric"] == pytest.approx(1.0 / (VAR + 1.0), abs=2e-4)
    assert tot.shares["input"] == pytest.approx(scale, abs=2e-4)
    assert tot.shares["epistemic"] == 0.0 and tot.shares["unsplit"] == 0.0
    assert sum(tot.shares.values()) == pytest.approx(1.0, abs=1e-12)
    # the same estimates, scaled by the input share (intervals too)
    s = tot.shares["input"]
    np.testing.assert_allclose(tot.first, mean.first * s, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tot.total, mean.total * s, rtol=1e-12, atol=1e-15)
    for a, b in ((tot.first_ci, mean.first_ci), (tot.total_ci, mean.total_ci)):
        np.testing.assert_allclose(a[0], b[0] * s, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(a[1], b[1] * s, rtol=1e-12, atol=1e-15)
    ds = tot.to_dataset()
    assert ds.attrs["relative_to"] == "total" and float(ds["share_aleatoric"][0]) == pytest.approx(
        tot.shares["aleatoric"])


def test_sobol_relative_to_is_checked() -> None:
    model = Exact(ishigami, noise=1.0)
    with pytest.raises(InputError, match="relative_to must be 'mean' or 'total'"):
        sobol_indices(model, ISHIGAMI, n_samples=64, relative_to="variance")
    with pytest.raises(InputError, match="need the input distribution"):
        sobol_indices(model, relative_to="total")
