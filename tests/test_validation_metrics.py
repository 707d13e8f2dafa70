"""Point and probabilistic metrics: hand-computed values, Gaussian CRPS by quadrature,
calibration of synthetic predictors against the binomial band, propriety of NLPD and CRPS,
multi-output shapes and bad input.

References: Gneiting & Raftery (2007) for the Gaussian CRPS and NLPD; the binomial band
of a calibrated central interval is in shared/references/validation.md (n = 200, 95%:
between about 0.92 and 0.98).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy.stats import binom, norm
from sklearn.exceptions import UndefinedMetricWarning

from stochhom.errors import InputError
from stochhom.validation import metrics as M


def Phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# Four points with residuals e = y - mu = (-0.5, 0, 1, -1) and z = e / sigma = (-1, 0, 0.5, -2).
Y = np.array([1.0, 2.0, 3.0, 5.0])
MU = np.array([1.5, 2.0, 2.0, 6.0])
SIGMA = np.array([0.5, 1.0, 2.0, 0.5])
Z = [-1.0, 0.0, 0.5, -2.0]


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A calibrated heteroscedastic predictor: y ~ N(mean, std^2), n = 2000."""
    rng = np.random.default_rng(2024)
    x = rng.uniform(0.0, 1.0, 2000)
    mean = np.sin(2 * np.pi * x)
    std = 0.1 + 0.4 * x
    return mean + std * rng.standard_normal(x.size), mean, std


# --------------------------------------------------------------------------- hand-computed values


def test_point_metrics_match_hand_computation():
    assert M.rmse(Y, MU) == pytest.approx(math.sqrt((0.25 + 0 + 1 + 1) / 4))  # 0.75
    assert M.mae(Y, MU) == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert M.max_error(Y, MU) == pytest.approx(1.0)
    ybar = (1 + 2 + 3 + 5) / 4
    ss_tot = sum((v - ybar) ** 2 for v in Y)  # 8.75
    assert M.r2(Y, MU) == pytest.approx(1 - 2.25 / ss_tot)
    assert M.q2(Y, MU) == M.r2(Y, MU)  # exact: q2 is r2 (the same function) on held-out data
    assert isinstance(M.rmse(Y, MU), float)


def test_r2_is_not_finite_where_it_is_undefined():
    """A constant target has no variance to explain: no arbitrary finite value is returned."""
    assert M.r2([1.0, 1.0, 1.0], [1.0, 1.0, 2.0]) == -np.inf
    assert np.isnan(M.r2([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]))
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(M.r2([[1.0, 2.0]], [[1.5, 2.0]], multioutput="raw_values")).all()


def test_standardized_residuals_and_pit_by_hand():
    np.testing.assert_allclose(M.standardized_residuals(Y, MU, SIGMA), Z)
    np.testing.assert_allclose(M.pit(Y, MU, SIGMA), [Phi(z) for z in Z], rtol=1e-12)


def test_nlpd_matches_hand_computation():
    terms = [0.5 * math.log(2 * math.pi * s * s) + 0.5 * z * z for s, z in zip(SIGMA, Z)]
    assert M.nlpd(Y, MU, SIGMA) == pytest.approx(sum(terms) / 4, rel=1e-12)
    # one point, z = 0, sigma = 1: the log-normalizer of N(0, 1) alone
    assert M.nlpd([0.0], [0.0], [1.0]) == pytest.approx(0.5 * math.log(2 * math.pi))


def test_crps_matches_hand_computation():
    terms = [s * (z * (2 * Phi(z) - 1) + 2 * phi(z) - 1 / math.sqrt(math.pi)) for s, z in zip(SIGMA, Z)]
    assert M.crps(Y, MU, SIGMA) == pytest.approx(sum(terms) / 4, rel=1e-12)
    # z = 0: sigma (sqrt(2) - 1) / sqrt(pi)
    assert M.crps([0.0], [0.0], [2.0]) == pytest.approx(2 * (math.sqrt(2) - 1) / math.sqrt(math.pi))
    # sigma -> 0: CRPS -> absolute error
    assert M.crps([3.0], [1.0], [1e-9]) == pytest.approx(2.0, rel=1e-8)


@pytest.mark.parametrize("y, mu, sigma", [(0.3, 0.0, 1.0), (2.0, -1.0, 0.5), (-4.0, 1.0, 3.0), (10.0, 0.0, 2.0)])
def test_crps_equals_integral_of_squared_cdf_difference(y, mu, sigma):
    """CRPS = ∫ (F(x) − 1{x ≥ y})² dx, by adaptive quadrature on each side of y."""
    left, _ = integrate.quad(lambda x: norm.cdf(x, mu, sigma) ** 2, -np.inf, y, epsabs=1e-12, epsrel=1e-10)
    right, _ = integrate.quad(lambda x: norm.sf(x, mu, sigma) ** 2, y, np.inf, epsabs=1e-12, epsrel=1e-10)
    assert M.crps([y], [mu], [sigma]) == pytest.approx(left + right, rel=1e-8, abs=1e-10)


def test_coverage_counts_points_inside_central_intervals():
    # |z| = (1, 0, 0.5, 2); half-widths 0.674, 1.645, 1.960, 2.576
    np.testing.assert_allclose(M.coverage(Y, MU, SIGMA, [0.5, 0.9, 0.95, 0.99]), [0.5, 0.75, 0.75, 1.0])
    assert M.coverage(Y, MU, SIGMA, 0.95) == 0.75
    # the half-width of a 95% interval is 1.95996 sigma: z = 1.95 is inside, z = 1.97 outside
    assert M.coverage([1.95, 1.97], [0.0, 0.0], [1.0, 1.0], 0.95) == 0.5


def test_calibration_curves_by_hand():
    # central: v = 2Φ(|z|) − 1 = (0.683, 0, 0.383, 0.954)
    nominal, observed = M.calibration_curve(Y, MU, SIGMA, [0.1, 0.5, 0.7, 0.96])
    np.testing.assert_allclose(nominal, [0.1, 0.5, 0.7, 0.96])
    np.testing.assert_allclose(observed, [0.25, 0.5, 0.75, 1.0])
    # quantile: u = Φ(z) = (0.159, 0.5, 0.691, 0.023)
    _, observed = M.calibration_curve(Y, MU, SIGMA, [0.1, 0.6, 0.7], kind="quantile")
    np.testing.assert_allclose(observed, [0.25, 0.75, 1.0])


@pytest.mark.parametrize(
    "v, area",
    [
        # F = 0 then 1: ∫₀^½ p dp + ∫_½^1 (1 − p) dp
        ([0.5], 0.125 + 0.125),
        # F = 0, ½, 1 on [0, 0.2), [0.2, 0.6), [0.6, 1]; |½ − p| on the middle piece crosses zero at ½
        ([0.2, 0.6], 0.2**2 / 2 + (0.3**2 + 0.1**2) / 2 + 0.4**2 / 2),
        # F = 0, ⅓, ⅔, 1 on the quarters: 1/32 + ((1/12)² + (1/6)²)/2 twice + 1/32
        ([0.25, 0.5, 0.75], 1 / 32 + 2 * ((1 / 12) ** 2 + (1 / 6) ** 2) / 2 + 1 / 32),
    ],
)
def test_miscalibration_area_by_hand(v, area):
    v = np.asarray(v)
    z = norm.ppf(0.5 + v / 2)  # central: 2Φ(|z|) − 1 = v
    assert M.miscalibration_area(z, np.zeros_like(z), np.ones_like(z)) == pytest.approx(area, rel=1e-10)
    zq = norm.ppf(v)  # quantile: Φ(z) = v
    assert M.miscalibration_area(zq, np.zeros_like(z), 1.0, kind="quantile") == pytest.approx(area, rel=1e-10)


def test_miscalibration_area_is_the_limit_of_the_mean_gap_over_levels(synthetic):
    y, mean, std = synthetic
    levels = (np.arange(4000) + 0.5) / 4000
    nominal, observed = M.calibration_curve(y, mean, 0.7 * std, levels)
    assert M.miscalibration_area(y, mean, 0.7 * std) == pytest.approx(np.mean(np.abs(observed - nominal)), abs=2e-4)


def test_sharpness_and_interval_width_by_hand():
    assert M.sharpness(SIGMA) == pytest.approx(math.sqrt((0.25 + 1 + 4 + 0.25) / 4))
    # mean sigma = 1; the 95% central interval is ±1.959964 sigma
    assert M.interval_width(SIGMA) == pytest.approx(2 * 1.959963984540054)
    np.testing.assert_allclose(M.interval_width(SIGMA, [0.5, 0.95]), [2 * 0.6744897501960817, 2 * 1.959963984540054])


def test_probabilistic_metrics_has_stable_keys_and_consistent_values():
    out = M.probabilistic_metrics(Y, MU, SIGMA)
    assert list(out) == [
        "rmse", "mae", "r2", "max_error", "nlpd", "crps",
        "coverage_0.5", "coverage_0.8", "coverage_0.9", "coverage_0.95", "coverage_0.99",
        "miscalibration_area", "sharpness", "mean_std_residual", "std_std_residual",
    ]  # fmt: skip
    assert all(isinstance(v, float) for v in out.values())
    assert out["rmse"] == pytest.approx(0.75)
    assert out["coverage_0.95"] == 0.75
    assert out["mean_std_residual"] == pytest.approx((-1 + 0 + 0.5 - 2) / 4)
    zbar = -0.625
    assert out["std_std_residual"] == pytest.approx(math.sqrt(sum((z - zbar) ** 2 for z in Z) / 4))
    assert "coverage_0.999" in M.probabilistic_metrics(Y, MU, SIGMA, levels=[0.999])
    assert "coverage_0.15" in M.probabilistic_metrics(Y, MU, SIGMA, levels=np.linspace(0.05, 0.95, 19))


# --------------------------------------------------------------------------- calibration of synthetic predictors


def test_calibrated_predictor_passes_binomial_band_and_pit_test(synthetic):
    y, mean, std = synthetic
    check = M.calibration_check(y, mean, std)
    assert check.passed, str(check)
    assert check.level_passed.all() and check.pit_passed
    assert np.all((check.lower <= check.coverage) & (check.coverage <= check.upper))
    assert check.alpha_per_test == pytest.approx(0.001 / 6)  # 5 levels + 1 KS test
    # The area is at most the KS distance of the central-PIT CDF to the diagonal, and
    # P(√n D_n > 1.95) ≈ 0.001 (Kolmogorov): area < 1.95/√2000 = 0.044. Typical: 0.31/√n = 0.007.
    assert M.miscalibration_area(y, mean, std) < 1.95 / math.sqrt(y.size)
    assert M.miscalibration_area(y, mean, std, kind="quantile") < 1.95 / math.sqrt(y.size)


@pytest.mark.parametrize("scale", [0.5, 2.0], ids=["over-confident", "under-confident"])
def test_miscalibrated_predictors_fail(synthetic, scale):
    y, mean, std = synthetic
    check = M.calibration_check(y, mean, scale * std)
    assert not check.passed
    assert "FAILED" in str(check)
    assert not check.pit_passed
    if scale < 1:  # intervals too narrow: every coverage below its band
        assert np.all(check.coverage < check.lower)
    else:  # too wide: every coverage above its band
        assert np.all(check.coverage > check.upper)
    # Population area: observed coverage at p is 2Φ(q_p / s) − 1 with q_p = Φ⁻¹((1 + p)/2); the
    # empirical area differs from it by at most the KS distance D_n < 1.95/√n (probability 0.999).
    expected, _ = integrate.quad(lambda p: abs(2 * norm.cdf(norm.ppf(0.5 + p / 2) / scale) - 1 - p), 0, 1, limit=200)
    area = M.miscalibration_area(y, mean, scale * std)
    assert area == pytest.approx(expected, abs=1.95 / math.sqrt(y.size))
    assert area > 0.15


def test_family_wise_false_alarm_rate_of_calibration_check_is_at_most_alpha():
    """Calibrated predictors, n = 200, alpha = 0.1: at most 10% may fail (+3 MC standard errors).

    Without the Bonferroni correction (6 tests each at 10%) about a third fail (0.32 measured)."""
    rng = np.random.default_rng(7)
    reps, n, alpha = 300, 200, 0.1
    std = rng.uniform(0.5, 2.0, n)
    failures = sum(not M.calibration_check(std * rng.standard_normal(n), 0.0 * std, std, alpha=alpha).passed
                   for _ in range(reps))  # fmt: skip
    assert failures / reps <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)


def test_binomial_band_matches_the_reference_for_200_points():
    """validation.md: with n = 200 a 95% coverage between about 0.92 and 0.98 is consistent."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal(200)
    # one level + one KS test, alpha = 0.1 → each test at 5%: the 95% binomial interval of Bin(200, 0.95)
    check = M.calibration_check(z, np.zeros(200), np.ones(200), levels=[0.95], alpha=0.1)
    assert check.lower[0] == pytest.approx(0.92, abs=0.005)
    assert check.upper[0] == pytest.approx(0.98, abs=0.005)


@pytest.mark.parametrize("shift, passes", [(0, True), (-1, False)], ids=["at the edge", "one past"])
@pytest.mark.parametrize("edge", ["lower", "upper"])
def test_a_level_passes_exactly_inside_its_binomial_band(edge, shift, passes):
    """n = 200, one level 0.9, alpha = 0.02 → alpha' = 0.01: k points covered must satisfy
    k_lo ≤ k ≤ k_hi, the equal-tailed 99% interval of Bin(200, 0.9), with
    k_lo = min{k: F(k) ≥ 0.005} and k_hi = min{k: F(k) ≥ 0.995}."""
    n, p = 200, 0.9
    cdf = binom.cdf(np.arange(n + 1), n, p)
    k_lo, k_hi = int(np.argmax(cdf >= 0.005)), int(np.argmax(cdf >= 0.995))
    k = k_lo + shift if edge == "lower" else k_hi - shift
    z = np.where(np.arange(n) < k, 0.1, 3.0)  # k points inside the 90% interval (±1.645), the rest outside
    check = M.calibration_check(z, np.zeros(n), np.ones(n), levels=[p], alpha=0.02)
    assert check.coverage[0] == k / n
    assert (check.lower[0], check.upper[0]) == (k_lo / n, k_hi / n)
    assert bool(check.level_passed[0]) is passes


def test_quantile_calibration_curve_reveals_a_biased_mean(synthetic):
    y, mean, std = synthetic
    _, observed = M.calibration_curve(y, mean + 0.5 * std, std, [0.5], kind="quantile")
    # P(y < mu + 0.5 sigma) = Φ(0.5) = 0.691; binomial standard error 0.0103, tolerance 3 SE
    assert observed[0] == pytest.approx(Phi(0.5), abs=3 * math.sqrt(0.69 * 0.31 / y.size))
    assert not M.calibration_check(y, mean + 0.5 * std, std).passed


# --------------------------------------------------------------------------- propriety


def test_nlpd_and_crps_are_minimized_by_the_true_std(synthetic):
    """Scan std → s·std. The empirical minimizer of NLPD is exactly s* = √mean(z²); that of CRPS
    solves Σ σᵢ (2φ(zᵢ/s) − 1/√π) = 0 (dCRPS/ds). Both estimate 1, the population minimizer,
    with standard errors 1/√(2n) = 0.016 (NLPD) and, by the sandwich formula,
    √(E σ² (2/√3 − 1)/π) / (E σ / (2√π)) / √n = 0.019 (CRPS). Tolerance: 4 SE + grid step."""
    y, mean, std = synthetic
    n = y.size
    scales = np.linspace(0.5, 2.0, 301)
    step = scales[1] - scales[0]
    s_nlpd = scales[np.argmin([M.nlpd(y, mean, s * std) for s in scales])]
    s_crps = scales[np.argmin([M.crps(y, mean, s * std) for s in scales])]

    z = (y - mean) / std
    assert s_nlpd == pytest.approx(math.sqrt(np.mean(z**2)), abs=step)
    root = optimize.brentq(lambda s: np.sum(std * (2 * norm.pdf(z / s) - 1 / math.sqrt(math.pi))), 0.5, 2.0)
    assert s_crps == pytest.approx(root, abs=step)

    se_nlpd = 1 / math.sqrt(2 * n)
    se_crps = math.sqrt(np.mean(std**2) * (2 / math.sqrt(3) - 1) / math.pi) / (np.mean(std) / (2 * math.sqrt(math.pi)))
    se_crps /= math.sqrt(n)
    assert abs(s_nlpd - 1) <= 4 * se_nlpd + step
    assert abs(s_crps - 1) <= 4 * se_crps + step


# --------------------------------------------------------------------------- multi-output


@pytest.fixture(scope="module")
def multi(synthetic) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _, mean, std = synthetic
    scale = np.array([1.0, 10.0, 0.1])
    rng = np.random.default_rng(5)
    mu = np.c_[mean, 2 * mean, -mean] * scale
    sd = np.c_[std, std[::-1], 0.5 * std] * scale
    return mu + sd * rng.standard_normal(mu.shape), mu, sd


@pytest.mark.parametrize("name", ["rmse", "mae", "r2", "q2", "max_error", "nlpd", "crps", "miscalibration_area"])
def test_multioutput_raw_values_are_per_output_and_uniform_average_their_mean(multi, name):
    y, mu, sd = multi
    fn = getattr(M, name)
    args = (y, mu) if name in ("rmse", "mae", "r2", "q2", "max_error") else (y, mu, sd)
    raw = fn(*args, multioutput="raw_values")
    assert raw.shape == (3,)
    for k in range(3):
        assert raw[k] == pytest.approx(fn(*(a[:, k] for a in args)), rel=1e-12)
    assert fn(*args) == pytest.approx(raw.mean(), rel=1e-12)  # default: uniform_average
    w = np.array([1.0, 0.0, 3.0])
    assert fn(*args, multioutput=w) == pytest.approx((raw[0] + 3 * raw[2]) / 4, rel=1e-12)


def test_multioutput_rmse_agrees_with_scikit_learn(multi):
    from sklearn.metrics import root_mean_squared_error

    y, mu, _ = multi
    assert M.rmse(y, mu) == pytest.approx(root_mean_squared_error(y, mu))


def test_multioutput_shapes_of_curves_checks_and_metrics(multi):
    y, mu, sd = multi
    n = y.shape[0]
    assert M.pit(y, mu, sd).shape == (n, 3)
    assert M.standardized_residuals(y, mu, sd).shape == (n, 3)
    assert M.coverage(y, mu, sd, multioutput="raw_values").shape == (5, 3)
    assert M.coverage(y, mu, sd).shape == (5,)
    assert M.coverage(y, mu, sd, 0.9, multioutput="raw_values").shape == (3,)
    assert isinstance(M.coverage(y, mu, sd, 0.9), float)
    nominal, observed = M.calibration_curve(y, mu, sd, multioutput="raw_values")
    assert nominal.shape == (19,) and observed.shape == (19, 3)
    np.testing.assert_allclose(M.sharpness(sd, multioutput="raw_values"), np.sqrt(np.mean(sd**2, axis=0)))
    assert M.interval_width(sd, [0.5, 0.9], multioutput="raw_values").shape == (2, 3)

    check = M.calibration_check(y, mu, sd)
    assert check.coverage.shape == (5, 3) and check.level_passed.shape == (5, 3)
    assert check.pit_passed.shape == (3,)
    assert check.alpha_per_test == pytest.approx(0.001 / (5 * 3 + 3))
    assert check.passed, str(check)
    sd_bad = sd.copy()
    sd_bad[:, 1] *= 0.5  # one over-confident output fails the whole check
    bad = M.calibration_check(y, mu, sd_bad)
    assert not bad.passed and not bad.pit_passed[1] and bad.pit_passed[[0, 2]].all()

    out = M.probabilistic_metrics(y, mu, sd)
    assert all(np.shape(v) == (3,) for v in out.values())
    avg = M.probabilistic_metrics(y, mu, sd, multioutput="uniform_average")
    assert all(isinstance(v, float) for v in avg.values())
    assert avg["nlpd"] == pytest.approx(out["nlpd"].mean())


def test_scalar_std_is_broadcast():
    assert M.nlpd(Y, MU, 2.0) == pytest.approx(M.nlpd(Y, MU, np.full(4, 2.0)))


# --------------------------------------------------------------------------- bad input


def test_mismatched_shapes_are_rejected_with_both_shapes():
    with pytest.raises(InputError, match=r"mean has shape \(3,\) but y has shape \(4,\)"):
        M.rmse(Y, MU[:3])
    with pytest.raises(InputError, match=r"mean has shape \(4,\) but y has shape \(4, 1\)"):
        M.nlpd(Y[:, None], MU, SIGMA)
    with pytest.raises(InputError, match=r"std has shape \(3,\) but mean has shape \(4,\)"):
        M.crps(Y, MU, SIGMA[:3])
    with pytest.raises(InputError, match=r"1-D \(n,\) or 2-D"):
        M.mae(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    "bad, match",
    [
        ([0.5, 0.0, 2.0, 0.5], r"1 are <= 0 .*infinite NLPD"),
        ([0.5, -1.0, -2.0, 0.5], r"of 4 values 2 are <= 0 \(smallest -2\)"),
        ([0.5, np.nan, 2.0, np.inf], r"2 are NaN or infinite"),
    ],
)
@pytest.mark.parametrize("fn", [M.nlpd, M.crps, M.coverage, M.pit, M.calibration_check, M.probabilistic_metrics])
def test_non_positive_or_non_finite_std_is_rejected(fn, bad, match):
    with pytest.raises(InputError, match=match):
        fn(Y, MU, np.array(bad))


def test_sharpness_rejects_zero_std():
    with pytest.raises(InputError, match="positive and finite"):
        M.sharpness([1.0, 0.0])


@pytest.mark.parametrize("fn", [M.rmse, M.r2, M.max_error, M.nlpd, M.crps, M.miscalibration_area, M.calibration_check])
def test_nan_predictions_and_targets_are_rejected_with_a_count(fn):
    args = (SIGMA,) if fn not in (M.rmse, M.r2, M.max_error) else ()
    nan_mean = MU.copy()
    nan_mean[[0, 2]] = np.nan
    with pytest.raises(InputError, match=r"2 of 4 predicted means are not finite \(2 NaN"):
        fn(Y, nan_mean, *args)
    nan_y = Y.copy()
    nan_y[1] = np.nan
    with pytest.raises(InputError, match=r"1 of 4 targets y are not finite"):
        fn(nan_y, MU, *args)


@pytest.mark.parametrize("empty", [np.zeros(0), np.zeros((0, 2)), np.zeros((3, 0))])
def test_empty_arrays_are_rejected(empty):
    with pytest.raises(InputError, match="empty"):
        M.nlpd(empty, empty, np.ones_like(empty))
    with pytest.raises(InputError, match="empty"):
        M.sharpness(empty)


@pytest.mark.parametrize("levels", [0.0, 1.0, 95, -0.1, np.nan, [0.5, 1.5], []])
def test_levels_outside_the_unit_interval_are_rejected(levels):
    with pytest.raises(InputError, match="levels"):
        M.coverage(Y, MU, SIGMA, levels)
    with pytest.raises(InputError, match="levels"):
        M.calibration_check(Y, MU, SIGMA, levels)


def test_other_bad_options_are_rejected():
    with pytest.raises(InputError, match="alpha"):
        M.calibration_check(Y, MU, SIGMA, alpha=1.5)
    with pytest.raises(InputError, match="multioutput"):
        M.rmse(Y, MU, multioutput="average")
    with pytest.raises(InputError, match="3 non-negative"):
        M.rmse(np.ones((4, 3)), np.zeros((4, 3)), multioutput=[1.0, 1.0])
    with pytest.raises(InputError, match="kind"):
        M.calibration_curve(Y, MU, SIGMA, kind="left")
    with pytest.raises(InputError, match="numeric"):
        M.mae(["a", "b"], [1.0, 2.0])
    with pytest.raises(InputError, match="duplicate"):
        M.probabilistic_metrics(Y, MU, SIGMA, levels=[0.5, 0.5])


# --------------------------------------------------------------------------- scores of any predictive law


def test_pooled_scores_of_a_normal_law_equal_the_gaussian_metrics(synthetic):
    """For a Normal law the score table carries (y - mu)/sigma, the Gaussian NLPD and CRPS per point:
    pooling it gives probabilistic_metrics on the same predictions, key by key (1e-12), plus n."""
    from stochhom.surrogates.predictive import Normal

    y, mean, std = synthetic
    scores = M.score_predictions(y, Normal(mean, std))
    assert list(scores.columns) == list(M.SCORE_COLUMNS) and len(scores) == y.size
    pooled = M.pooled_metrics(scores)
    ref = M.probabilistic_metrics(y, mean, std)
    assert set(pooled) == set(ref) | {"n"} and pooled["n"] == y.size
    for key, value in ref.items():
        assert pooled[key] == pytest.approx(value, abs=1e-12, rel=1e-12), key
    np.testing.assert_allclose(scores["lower"], mean - norm.ppf(0.975) * std, rtol=1e-14)


def test_pooling_folds_gives_one_number_however_they_are_split(synthetic):
    """Out-of-fold predictions are pooled, not averaged per fold: concatenating the score tables of
    the folds and pooling equals pooling the whole set (exactly: every score is per point), for
    any split; the pooled MSE is the size-weighted mean of the folds' MSEs."""
    import pandas as pd

    from stochhom.surrogates.predictive import Normal

    y, mean, std = synthetic
    whole = M.pooled_metrics(M.score_predictions(y, Normal(mean, std)))
    for cuts in ([1000], [100, 700, 1500], [3, 4, 1999]):
        folds = np.split(np.arange(y.size), cuts)
        tables = [M.score_predictions(y[i], Normal(mean[i], std[i])) for i in folds]
        pooled = M.pooled_metrics(pd.concat(tables, ignore_index=True))
        for key, value in whole.items():
            assert pooled[key] == pytest.approx(value, abs=1e-12, rel=1e-12), (cuts, key)
        mse = [M.pooled_metrics(t)["rmse"] ** 2 for t in tables]
        assert whole["rmse"] ** 2 == pytest.approx(np.average(mse, weights=[len(i) for i in folds]), rel=1e-12)


def test_pooled_scores_of_a_lognormal_law():
    """A TruncatedNormal on the log scale without bounds is the lognormal law. Coverage is computed
    from the normal scores z = Phi^-1(F(y)), and a central interval maps monotonically: the pooled
    coverage equals the fraction of observations inside the lower/upper columns, at each level;
    the NLPD is the mean of -scipy.stats.lognorm.logpdf; the RMSE uses the lognormal mean
    exp(mu + s^2/2). The observations are drawn with 1.3x the predicted latent sd, so that the
    coverage is not its nominal value by chance."""
    from scipy.stats import lognorm

    from stochhom.surrogates.bounded import Truncation
    from stochhom.surrogates.predictive import TruncatedNormal

    rng = np.random.default_rng(5)
    mu, sd = rng.normal(0.0, 1.0, 500), rng.uniform(0.2, 1.0, 500)
    y = np.exp(mu + 1.3 * sd * rng.standard_normal(500))
    law = TruncatedNormal(mu, sd, Truncation(0.0, np.inf, "log"))
    for level in (0.8, 0.95):
        scores = M.score_predictions(y, law, level=level)
        inside = np.mean((scores["y"] >= scores["lower"]) & (scores["y"] <= scores["upper"]))
        pooled = M.pooled_metrics(scores)
        assert pooled[f"coverage_{level:g}"] == pytest.approx(inside, abs=1e-12)
        assert inside < level - 0.05  # over-confident by construction: the check has teeth
    assert pooled["nlpd"] == pytest.approx(-np.mean(lognorm.logpdf(y, sd, scale=np.exp(mu))), rel=1e-12)
    np.testing.assert_allclose(scores["z"], (np.log(y) - mu) / sd, rtol=1e-9, atol=1e-12)
    assert pooled["rmse"] == pytest.approx(np.sqrt(np.mean((y - np.exp(mu + sd**2 / 2)) ** 2)), rel=1e-12)
    assert pooled["n"] == 500


def test_score_predictions_and_pooled_metrics_refuse_bad_input():
    import pandas as pd

    from stochhom.surrogates.predictive import Normal

    law = Normal(MU, SIGMA)
    with pytest.raises(InputError, match="y must be 1-D"):
        M.score_predictions(Y[:, None], law)
    with pytest.raises(InputError, match="NaN or inf"):
        M.score_predictions(np.array([1.0, np.nan, 3.0, 5.0]), law)
    with pytest.raises(InputError, match=r"shape \(4,\) but y has \(3,\)"):
        M.score_predictions(Y[:3], law)
    scores = M.score_predictions(Y, law)
    with pytest.raises(InputError, match=r"lacks the column\(s\) \['z', 'crps'\]"):
        M.pooled_metrics(scores.drop(columns=["z", "crps"]))
    with pytest.raises(InputError, match="lacks the column"):
        M.pooled_metrics(pd.DataFrame({"y": Y, "mean": MU, "std": SIGMA}))
    with pytest.raises(InputError, match="lacks the column"):
        M.pooled_metrics({"y": Y, "mean": MU, "std": SIGMA})  # not a table
    with pytest.raises(InputError, match="no scored predictions"):
        M.pooled_metrics(scores.iloc[:0])
