"""RVE-size analysis: variance scaling against exact integral ranges, interval coverage, RVE size, bias, ergodicity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy.integrate import quad

import stochhom as sh
from stochhom.errors import InputError
from stochhom.statistics.rve import (
    Estimate,
    ergodicity,
    fit_variance_scaling,
    n_realizations,
    phase_fraction_samples,
    point_variance,
    rve_size,
    size_statistics,
    systematic_error,
    variance_scaling,
)


def boolean_disc_integral_range(p: float, radius: float) -> float:
    r"""Exact integral range of the Boolean model of discs: A = ∫(S2(r) − p²) d²r / (p(1−p)).

    With q = 1 − p, intensity λ = −ln q/(πR²) and K(r) the area of the lens shared by
    two discs at distance r, the covariance of the indicator is S2(r) − p² = q²(e^{λK(r)} − 1)
    (Matheron), zero beyond r = 2R.
    """
    q = 1.0 - p
    lam = -math.log(q) / (math.pi * radius**2)

    def lens(r: float) -> float:
        return 2 * radius**2 * math.acos(r / (2 * radius)) - 0.5 * r * math.sqrt(4 * radius**2 - r**2)

    integral, _ = quad(lambda r: 2 * math.pi * r * q * q * math.expm1(lam * lens(r)), 0.0, 2 * radius)
    return integral / (p * q)


@pytest.fixture(scope="module")
def boolean_fractions() -> xr.Dataset:
    """Phase fractions of 400 periodic Boolean SVEs (p = 0.5, R = 4 voxels) at each of 4 sizes.

    For a periodic SVE of side L >= 4R the torus covariance is the plane one, so
    Var φ_V = p(1−p) A / V exactly: α = 1 and A is the integral range above.
    """
    ens = [sh.generate("boolean", (n, n), 400, rng=100 + k, volume_fraction=0.5, radius=4.0)
           for k, n in enumerate((20, 28, 40, 56))]
    return phase_fraction_samples(*ens)


# ----------------------------------------------------------------------------- variance scaling


def test_exact_boolean_integral_range_formula() -> None:
    # dilute limit: the lens integral tends to ∫K(r)d²r = (πR²)², so A -> πR² as p -> 0
    r = 3.0
    assert boolean_disc_integral_range(1e-6, r) == pytest.approx(math.pi * r**2, rel=1e-5)
    # it decreases with p (overlaps): at p = 0.5 it is 0.82 πR² (computed independently by 2D quadrature)
    a2d = _integral_range_2d_quadrature(0.5, r)
    assert boolean_disc_integral_range(0.5, r) == pytest.approx(a2d, rel=1e-4)


def _integral_range_2d_quadrature(p: float, radius: float) -> float:
    """The same integral on a fine Cartesian grid of lags, with the lens area from a voxelized disc overlap."""
    q = 1.0 - p
    lam = -math.log(q) / (math.pi * radius**2)
    h = radius / 200
    x = np.arange(-2 * radius, 2 * radius + h / 2, h)
    # lens area for every lag |d| along one axis, from the exact circle-circle formula, then a radial sum
    d = np.abs(x)
    lens = np.where(d < 2 * radius, 2 * radius**2 * np.arccos(np.minimum(d / (2 * radius), 1))
                    - 0.5 * d * np.sqrt(np.maximum(4 * radius**2 - d**2, 0)), 0.0)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    rr = np.hypot(xx, yy)
    lens_r = np.interp(rr, d[x >= 0], lens[x >= 0], right=0.0)
    return float((q * q * np.expm1(lam * lens_r)).sum() * h * h / (p * q))


def test_variance_scaling_recovers_boolean_integral_range(boolean_fractions: xr.Dataset) -> None:
    exact = boolean_disc_integral_range(0.5, 4.0)  # 41.22 voxels^2
    fit = variance_scaling(boolean_fractions, "phase_fraction_1", alpha=1.0, rng=0)
    assert fit.point_variance == pytest.approx(0.25, abs=2e-3)  # p(1-p) from the measured mean fraction
    lo, hi = fit.integral_range_ci
    assert lo <= exact <= hi
    # the interval is about ±7 % (4 x 400 samples); the estimate must be within 10 %
    assert fit.integral_range == pytest.approx(exact, rel=0.10)
    assert (hi - lo) / exact < 0.2
    # the power law holds: chi^2 with 3 degrees of freedom below its 99.9 % quantile (16.3)
    assert fit.chi2 < 16.3
    free = variance_scaling(boolean_fractions, "phase_fraction_1", rng=0)
    assert free.alpha_ci[0] <= 1.0 <= free.alpha_ci[1]
    assert free.alpha == pytest.approx(1.0, abs=0.1)
    assert free.integral_range_ci[0] <= exact <= free.integral_range_ci[1]


def test_variance_scaling_detects_a_wrong_integral_range(boolean_fractions: xr.Dataset) -> None:
    # the same data fitted with a wrong point variance gives an A whose interval excludes the exact one
    exact = boolean_disc_integral_range(0.5, 4.0)
    fit = variance_scaling(boolean_fractions, "phase_fraction_1", alpha=1.0, point_variance=0.25 * 1.5, rng=0)
    assert not fit.integral_range_ci[0] <= exact <= fit.integral_range_ci[1]


def test_variance_scaling_recovers_exponent_below_one() -> None:
    # synthetic apparent values with D^2(V) = K V^-alpha, alpha = 2/3 (long fibres); over 200 seeds
    # the estimate is unbiased (mean 0.666, sd 0.019) and its 95 % interval covers in 94.5 %
    rng = np.random.default_rng(8)
    vols = np.repeat([64.0, 256.0, 1024.0, 4096.0, 16384.0], 300)
    z = 5.0 + np.sqrt(3.0 * vols ** (-2 / 3)) * rng.standard_normal(vols.size)
    fit = fit_variance_scaling(vols, z, rng=0)
    assert fit.alpha_ci[0] <= 2 / 3 <= fit.alpha_ci[1]
    assert fit.alpha == pytest.approx(2 / 3, abs=0.06)  # standard error ~0.018
    assert fit.amplitude_ci[0] <= 3.0 <= fit.amplitude_ci[1]
    assert np.isnan(fit.integral_range)  # no point variance, no A


@pytest.mark.parametrize(("n", "noise"), [(30, "normal"), (100, "normal"), (100, "exponential")])
def test_variance_scaling_intervals_cover_at_nominal_rate(n: int, noise: str) -> None:
    # 400 independent studies: the 95 % intervals of alpha and K must cover the truth at least at
    # the lower end of the binomial band 0.95 - 3·sqrt(0.95·0.05/400) = 0.917. The Birge-ratio
    # widening makes them mildly conservative with 2 degrees of freedom (0.95-0.975 measured over
    # 600 studies), so the upper limit is 0.99 rather than the band's 0.983. Skewed (exponential)
    # values are the case the kurtosis and Birge corrections exist for.
    vols = np.array([100.0, 200.0, 400.0, 800.0])
    k_true, a_true, trials = 2.0, 0.7, 400
    hit_a = hit_k = 0
    for s in range(trials):
        rng = np.random.default_rng(1000 + s)
        v = np.repeat(vols, n)
        e = rng.standard_normal(v.size) if noise == "normal" else rng.exponential(size=v.size) - 1.0
        z = 3.0 + np.sqrt(k_true * v**-a_true) * e
        fit = fit_variance_scaling(v, z, rng=s, n_draws=200)
        hit_a += fit.alpha_ci[0] <= a_true <= fit.alpha_ci[1]
        hit_k += fit.amplitude_ci[0] <= k_true <= fit.amplitude_ci[1]
    assert 0.917 <= hit_a / trials <= 0.99
    assert 0.917 <= hit_k / trials <= 0.99


def test_fixed_alpha_interval_of_integral_range_covers() -> None:
    # with alpha = 1 fixed, the interval of A covers the truth at the nominal rate (binomial band)
    a_true, pv, trials = 30.0, 0.21, 400
    vols = np.array([400.0, 900.0, 1600.0])
    hits = 0
    for s in range(trials):
        rng = np.random.default_rng(s)
        v = np.repeat(vols, 40)
        z = 0.3 + np.sqrt(pv * a_true / v) * rng.standard_normal(v.size)
        fit = fit_variance_scaling(v, z, point_variance=pv, alpha=1.0, rng=s, n_draws=100)
        hits += fit.integral_range_ci[0] <= a_true <= fit.integral_range_ci[1]
    assert 0.917 <= hits / trials <= 0.983


# ----------------------------------------------------------------------------- RVE size and n


def test_rve_size_and_realizations_follow_kanit_formulas(boolean_fractions: xr.Dataset) -> None:
    fit = variance_scaling(boolean_fractions, "phase_fraction_1", alpha=1.0, rng=0)
    zbar, k = fit.mean, fit.amplitude
    eps, n = 0.01, 10
    est = rve_size(fit, eps, n)
    assert isinstance(est, Estimate)
    assert est.value == pytest.approx(4 * k / (eps**2 * zbar**2 * n), rel=1e-12)
    assert est.low < est.value < est.high
    # at that size, n realizations reach exactly epsilon
    assert fit.relative_error(est.value, n) == pytest.approx(eps, rel=1e-12)
    nr = n_realizations(fit, est.value, eps)
    assert nr.value == n
    assert nr.low <= n <= nr.high
    # with alpha != 1 the general formula V = (4K/(eps^2 Zbar^2 n))^(1/alpha)
    rng = np.random.default_rng(1)
    v = np.repeat([50.0, 100.0, 200.0, 400.0], 200)
    fit2 = fit_variance_scaling(v, 2.0 + np.sqrt(v**-0.5) * rng.standard_normal(v.size), rng=0)
    target = (4 * fit2.amplitude / (0.02**2 * fit2.mean**2 * 5)) ** (1 / fit2.alpha)
    assert fit2.rve_size(0.02, 5).value == pytest.approx(target, rel=1e-12)


def test_rve_size_is_empirically_right(boolean_fractions: xr.Dataset) -> None:
    # Kanit's criterion: at the predicted volume the mean of n SVEs is within eps of the true
    # fraction in ~95 % of studies. Predict for n = 4 at eps = 0.1 (V ~ 4100 ~ 64^2), then check
    # with 300 independent studies of 4 fresh SVEs of that size: binomial band [0.91, 0.99].
    fit = variance_scaling(boolean_fractions, "phase_fraction_1", alpha=1.0, rng=0)
    side = int(round(math.sqrt(fit.rve_size(0.1, 4, mean=0.5).value)))
    ens = sh.generate("boolean", (side, side), 1200, rng=77, volume_fraction=0.5, radius=4.0)
    f = (ens["phase"].values == 1).mean(axis=(1, 2)).reshape(300, 4).mean(axis=1)
    eps_at_side = fit.relative_error(side**2, 4, mean=0.5)
    inside = np.mean(np.abs(f - 0.5) <= eps_at_side * 0.5)
    assert 0.91 <= inside <= 0.99


def test_point_variance() -> None:
    assert point_variance(0.3) == pytest.approx(0.21)
    assert point_variance(0.3, 10.0, 1.0) == pytest.approx(0.21 * 81)
    with pytest.raises(InputError, match=r"fraction must lie in \(0, 1\)"):
        point_variance(1.0)


# ----------------------------------------------------------------------------- per-size statistics and bias


def test_size_statistics_matches_chi_square_interval() -> None:
    rng = np.random.default_rng(3)
    vols = np.repeat([10.0, 20.0], 25)
    z = rng.normal(1.0, 0.1, vols.size)
    ds = xr.Dataset({"x": ("sample", z), "volume": ("sample", vols)})
    out = size_statistics(ds, "x")
    x = z[vols == 10.0]
    from scipy import stats

    assert out["variance"].sel(volume=10.0) == pytest.approx(x.var(ddof=1))
    assert out["variance_low"].sel(volume=10.0) == pytest.approx(24 * x.var(ddof=1) / stats.chi2.ppf(0.975, 24))
    assert out["mean_high"].sel(volume=20.0) - out["mean"].sel(volume=20.0) == pytest.approx(
        stats.t.ppf(0.975, 24) * z[vols == 20.0].std(ddof=1) / 5)
    assert out["relative_error"].sel(volume=10.0) == pytest.approx(2 * x.std(ddof=1) / 5 / x.mean())


def test_systematic_error_recovers_a_known_bias() -> None:
    # mean(V) = 1 + 2/V: a bias of 0.2 at V = 10 and 0.002 at V = 1000
    rng = np.random.default_rng(5)
    vols = np.repeat([10.0, 100.0, 1000.0], 400)
    z = 1.0 + 2.0 / vols + 0.05 * rng.standard_normal(vols.size)
    ds = xr.Dataset({"k": ("sample", z), "volume": ("sample", vols), "converged": ("sample", np.ones(vols.size, "i1"))})
    # 99.9 % intervals: each contains its true bias unless a 3.3-sigma event happened
    out = systematic_error(ds, "k", reference=1.0, confidence=0.999)
    np.testing.assert_array_less(out["bias_low"].values, [0.2, 0.02, 0.002])
    np.testing.assert_array_less([0.2, 0.02, 0.002], out["bias_high"].values)
    # 0.2 and 0.02 are 80 and 8 standard errors (0.0025): significant; 0.002 (0.8 s.e.) cannot be
    assert out["significant"].values.tolist() == [True, True, False]
    assert out["relative_bias"].sel(volume=10.0) == pytest.approx(0.2, abs=0.01)
    # default reference: the largest volume, against itself no bias
    own = systematic_error(ds, "k", confidence=0.999)
    assert own.attrs["reference_source"] == "largest volume"
    assert float(own["bias"].sel(volume=1000.0)) == 0.0
    assert own["bias_low"].sel(volume=10.0) <= 0.198 <= own["bias_high"].sel(volume=10.0)


def test_failed_samples_are_excluded() -> None:
    vols = np.repeat([10.0, 20.0], 20)
    z = np.random.default_rng(0).normal(size=vols.size)
    conv = np.ones(vols.size, dtype="i1")
    z[0], conv[0] = 1e9, 0  # a diverged sample
    ds = xr.Dataset({"x": ("sample", z), "volume": ("sample", vols), "converged": ("sample", conv)})
    assert int(size_statistics(ds, "x")["count"].sel(volume=10.0)) == 19
    assert size_statistics(ds, "x")["variance"].sel(volume=10.0) < 10


# ----------------------------------------------------------------------------- ergodicity


def test_ergodicity_of_the_boolean_model(boolean_fractions: xr.Dataset) -> None:
    small = boolean_fractions.where(boolean_fractions.volume == 400.0, drop=True)
    fit = variance_scaling(boolean_fractions, "phase_fraction_1", alpha=1.0, rng=0)
    big = phase_fraction_samples(sh.generate("boolean", (200, 200), 1, rng=11, volume_fraction=0.5, radius=4.0))
    out = ergodicity(big, small, "phase_fraction_1", fit=fit)
    assert out["large_variance_source"] == "variance-scaling fit"
    assert out["consistent"] and out["n_large"] == 1
    # without a fit: the small-SVE variance scaled with alpha = 1
    assert ergodicity(big, small, "phase_fraction_1")["large_variance_source"].startswith("small-SVE")
    # a large SVE of another material (p = 0.6) is detected
    other = phase_fraction_samples(sh.generate("boolean", (200, 200), 1, rng=11, volume_fraction=0.6, radius=4.0))
    bad = ergodicity(other, small, "phase_fraction_1", fit=fit)
    assert not bad["consistent"] and bad["p_value"] < 1e-3


def test_ergodicity_of_windows_of_one_specimen() -> None:
    # the spatial average over one large specimen = ensemble average of windows cut from others
    big = sh.generate("boolean", (256, 256), 1, rng=2, volume_fraction=0.3, radius=3.0)
    others = sh.generate("boolean", (256, 256), 4, rng=3, volume_fraction=0.3, radius=3.0)
    wins = phase_fraction_samples(sh.windows(others, 32))
    assert wins.sizes["sample"] == 4 * 64
    out = ergodicity(phase_fraction_samples(big), wins, "phase_fraction_1")
    assert out["consistent"]
    assert abs(out["relative_difference"]) < 0.05


def test_ergodicity_with_arrays() -> None:
    rng = np.random.default_rng(0)
    out = ergodicity(rng.normal(1.0, 0.01, 3), rng.normal(1.0, 0.1, 100))
    assert out["large_variance_source"] == "sample variance" and out["consistent"]
    with pytest.raises(InputError, match="one large value needs a variance"):
        ergodicity([1.0], rng.normal(size=10))


# ----------------------------------------------------------------------------- apparent properties


def test_variance_scaling_of_apparent_conductivity() -> None:
    # the full path: homogenize SVEs of 3 sizes, fit the conductivity's variance scaling
    phases = [sh.Conductivity(1.0), sh.Conductivity(10.0)]
    props = xr.concat([
        sh.homogenize_ensemble(sh.generate("boolean", (n, n), 24, rng=n, volume_fraction=0.3, radius=2.0), phases)
        for n in (12, 16, 24)], dim="sample", coords="minimal", compat="override")
    props = props.assign_coords(sample=np.arange(props.sizes["sample"]))
    fit = variance_scaling(props, "conductivity_eigenvalues_0", alpha=1.0, min_samples=20, rng=0)
    assert fit.counts.tolist() == [24, 24, 24]
    assert fit.amplitude > 0 and np.isnan(fit.integral_range)
    # the fraction's integral range, from the same dataset
    pf = variance_scaling(props, "phase_fraction_1", alpha=1.0, min_samples=20, rng=0)
    assert pf.integral_range == pytest.approx(boolean_disc_integral_range(0.3, 2.0), rel=0.35)
    ds = fit.to_dataset()
    assert ds.attrs["alpha"] == 1.0 and ds["fitted_variance"].sizes["volume"] == 3


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_explained(boolean_fractions: xr.Dataset) -> None:
    one_size = boolean_fractions.where(boolean_fractions.volume == 400.0, drop=True)
    with pytest.raises(InputError, match=r"needs 2 volume\(s\) with at least 10 samples.*or fix alpha=1"):
        variance_scaling(one_size, "phase_fraction_1")
    with pytest.raises(InputError, match="several components"):
        variance_scaling(boolean_fractions, "phase_fraction")
    with pytest.raises(InputError, match="unknown variable 'bulk'"):
        variance_scaling(boolean_fractions, "bulk")
    mixed = boolean_fractions.assign_coords(volume_fraction=("sample", np.r_[np.full(800, 0.5), np.full(800, 0.3)]))
    with pytest.raises(InputError, match=r"differ in \['volume_fraction'\] as well as in size"):
        variance_scaling(mixed, "phase_fraction_1")
    fit = variance_scaling(boolean_fractions, "phase_fraction_1", alpha=1.0, rng=0)
    with pytest.raises(InputError, match="epsilon must be a positive number"):
        fit.rve_size(0.0)
    with pytest.raises(InputError, match="n must be a positive integer"):
        fit.rve_size(0.1, n=0)
    with pytest.raises(InputError, match="expected a VarianceScaling fit"):
        rve_size({"alpha": 1}, 0.1)
    with pytest.raises(InputError, match="do not vary"):
        fit_variance_scaling(np.repeat([1.0, 2.0], 10), np.ones(20))
    with pytest.raises(InputError, match="same length"):
        fit_variance_scaling([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="volumes must be finite and positive"):
        fit_variance_scaling([-1.0, 2.0], [1.0, 2.0])
    with pytest.raises(InputError, match="confidence must lie in"):
        fit_variance_scaling(np.repeat([1.0, 2.0], 10), np.arange(20.0), confidence=95)
    with pytest.raises(InputError, match="no per-sample 'volume'"):
        variance_scaling(xr.Dataset({"x": ("sample", np.ones(3))}), "x")
