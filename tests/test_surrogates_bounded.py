"""Physically admissible surrogates: rigorous bounds, the bounded transform, and the bounded surrogate.

Oracles: the Wiener bounds (harmonic and arithmetic means), :func:`stochhom.bounds.hashin_shtrikman`,
FFT solutions of random two-phase images (every apparent tensor lies between its Voigt and Reuss
tensors, whatever the discretization), the lognormal law (closed-form moments, density and CRPS),
and finite differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from sklearn.base import clone

import stochhom as sh
from stochhom.bounds import hashin_shtrikman
from stochhom.errors import InputError
from stochhom.surrogates import GPR, PCE
from stochhom.surrogates.bounded import BoundedSurrogate, PhysicalBounds, Truncation, bounded_quantity
from stochhom.surrogates.predictive import Normal, TruncatedNormal, predictive
from stochhom.tensors import isotropic_projection

COND = {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}}
ELAST = {"0": {"law": "IsotropicElastic", "E": 1.0, "nu": 0.3},
         "1": {"law": "IsotropicElastic", "E": "contrast", "nu": 0.2}}
FEATURES = ["volume_fraction", "contrast"]


# ----------------------------------------------------------------------------- the bounds


def test_voigt_reuss_bounds_of_a_conductivity_are_the_wiener_means() -> None:
    b = PhysicalBounds(COND, "conductivity_eigenvalues_1", kind="voigt_reuss", dim=2, features=FEATURES)
    X = np.array([[0.3, 10.0], [0.5, 3.0], [0.0, 7.0]])
    lo, hi = b(X)
    f, k = X[:, 0], X[:, 1]
    np.testing.assert_allclose(lo, 1.0 / ((1 - f) + f / k), rtol=1e-14)
    np.testing.assert_allclose(hi, (1 - f) + f * k, rtol=1e-14)


@pytest.mark.parametrize("quantity, which", [("conductivity_eigenvalues_0", "bulk"), ("bulk_modulus", "bulk"),
                                             ("shear_modulus", "shear")])
def test_hashin_shtrikman_bounds_equal_the_bounds_module(quantity: str, which: str) -> None:
    phases = COND if quantity.startswith("conductivity") else ELAST
    for dim in (2, 3):
        b = PhysicalBounds(phases, quantity, kind="hashin_shtrikman", dim=dim, features=FEATURES)
        for f, c in ((0.2, 5.0), (0.45, 40.0)):
            lo, hi = b(np.array([[f, c]]))
            mats = sh.statistics.resolve_phases(phases, {"volume_fraction": f, "contrast": c})
            ref = getattr(hashin_shtrikman(mats, [1 - f, f], dim), which)
            assert (lo[0], hi[0]) == pytest.approx(ref, rel=1e-14)


def test_a_fraction_window_widens_the_bounds_and_phases_are_the_loosest() -> None:
    X = np.array([[0.3, 20.0]])
    tight = PhysicalBounds(COND, "conductivity_0_0", kind="hashin_shtrikman", dim=2, features=FEATURES)(X)
    wide = PhysicalBounds(COND, "conductivity_0_0", kind="hashin_shtrikman", dim=2, features=FEATURES,
                          fraction_window=0.1)(X)
    at_ends = [PhysicalBounds(COND, "conductivity_0_0", kind="hashin_shtrikman", dim=2, features=FEATURES)(
        np.array([[f, 20.0]])) for f in (0.2, 0.4)]
    assert wide[0][0] == pytest.approx(at_ends[0][0][0]) and wide[1][0] == pytest.approx(at_ends[1][1][0])
    assert wide[0][0] < tight[0][0] <= tight[1][0] < wide[1][0]
    vr = PhysicalBounds(COND, "conductivity_0_0", kind="voigt_reuss", dim=2, features=FEATURES)(X)
    ph = PhysicalBounds(COND, "conductivity_0_0", kind="phases", dim=2, features=FEATURES, fraction=None)(X)
    assert ph[0][0] == 1.0 and ph[1][0] == 20.0
    assert ph[0][0] <= vr[0][0] <= tight[0][0] and tight[1][0] <= vr[1][0] <= ph[1][0]


def test_fixed_parameters_and_descriptions() -> None:
    b = PhysicalBounds(COND, "conductivity_eigenvalues_0", kind="voigt_reuss", dim=3, features=["contrast"],
                       fixed={"volume_fraction": 0.5}, fraction_window=0.01)
    lo, hi = b(np.array([[3.0]]))
    assert lo[0] == pytest.approx(1 / (0.51 + 0.49 / 3)) and hi[0] == pytest.approx(0.49 + 0.51 * 3)
    assert b.describe() == "Voigt–Reuss (Wiener) bounds at the nominal volume_fraction ± 0.01"
    again = PhysicalBounds.from_dict(b.to_dict())
    assert again(np.array([[3.0]]))[0][0] == lo[0]


def test_anisotropic_phases_bound_eigenvalues_by_the_eigenvalues_of_reuss_and_voigt() -> None:
    k1 = np.array([[4.0, 1.0], [1.0, 2.0]])
    phases = [sh.Conductivity(1.0), sh.Conductivity(k1)]
    for k in (0, 1):
        lo, hi = PhysicalBounds(phases, f"conductivity_eigenvalues_{k}", kind="voigt_reuss", dim=2,
                                features=["volume_fraction"])(np.array([[0.4]]))
        voigt = 0.6 * np.eye(2) + 0.4 * k1
        reuss = np.linalg.inv(0.6 * np.eye(2) + 0.4 * np.linalg.inv(k1))
        assert lo[0] == pytest.approx(np.linalg.eigvalsh(reuss)[k]) and hi[0] == pytest.approx(
            np.linalg.eigvalsh(voigt)[k])
    with pytest.raises(InputError, match="isotropic"):
        PhysicalBounds(phases, "conductivity_eigenvalues_0", kind="hashin_shtrikman", dim=2,
                       features=["volume_fraction"])(np.array([[0.4]]))


def test_apparent_tensors_of_random_images_lie_inside_the_voigt_reuss_bounds() -> None:
    """Physics, not bookkeeping: FFT solutions of random two-phase SVEs (any anisotropy) have
    eigenvalues and isotropic moduli between those of the Reuss and Voigt tensors of their
    measured fractions (the solver's tolerance 1e-8 is far inside the rtol 1e-6 used here)."""
    ens = sh.generate("gaussian", (24, 24), n=4, rng=3, volume_fraction=0.35, correlation_length=2.5)
    for phases, quantities in ((COND, ("conductivity_eigenvalues_0", "conductivity_eigenvalues_1",
                                       "conductivity_1_1")),
                               (ELAST, ("bulk_modulus", "shear_modulus", "stiffness_0_0", "stiffness_2_2"))):
        mats = sh.statistics.resolve_phases(phases, {"contrast": 25.0})
        for k in range(4):
            image = ens["phase"].values[k]
            f1 = float(image.mean())
            eff = sh.homogenize(image, mats, tol=1e-8).effective
            for q in quantities:
                b = PhysicalBounds(phases, q, kind="voigt_reuss", dim=2, features=FEATURES)
                lo, hi = b(np.array([[f1, 25.0]]))
                _, kind, index = bounded_quantity(q)
                if kind == "eigenvalue":
                    v = np.linalg.eigvalsh(eff)[index]
                elif kind == "diagonal":
                    v = eff[index, index]
                else:
                    v = isotropic_projection(eff)[0 if kind == "bulk" else 1]
                assert lo[0] * (1 - 1e-6) <= v <= hi[0] * (1 + 1e-6), (q, k, lo, v, hi)


def test_bad_bounds_are_refused_with_the_fix() -> None:
    with pytest.raises(InputError, match="no rigorous bounds"):
        PhysicalBounds(COND, "anisotropy_index", dim=2, features=FEATURES)
    with pytest.raises(InputError, match="fraction"):
        PhysicalBounds(COND, "conductivity_0_0", kind="voigt_reuss", dim=2, features=["contrast"])
    with pytest.raises(InputError, match="unknown bound kind"):
        PhysicalBounds(COND, "conductivity_0_0", kind="tight", dim=2, features=FEATURES)
    three = {**COND, "2": {"law": "Conductivity", "k": 3.0}}
    with pytest.raises(InputError, match="two phases"):
        PhysicalBounds(three, "conductivity_0_0", kind="voigt_reuss", dim=2, features=FEATURES)(
            np.array([[0.3, 2.0]]))
    with pytest.raises(InputError, match="stiffness entry"):
        PhysicalBounds(ELAST, "stiffness_0_0", kind="hashin_shtrikman", dim=2, features=FEATURES)(
            np.array([[0.3, 2.0]]))
    with pytest.raises(InputError, match="is not a fraction"):
        PhysicalBounds(COND, "conductivity_0_0", kind="voigt_reuss", dim=2, features=FEATURES)(
            np.array([[1.3, 2.0]]))


# ----------------------------------------------------------------------------- the truncated law


def _truncnorm(mu: float, sd: float, lo: float, hi: float, scale: str):
    a, b = (np.log(lo) if scale == "log" else lo), (np.log(hi) if scale == "log" else hi)
    return st.truncnorm((a - mu) / sd, (b - mu) / sd, loc=mu, scale=sd)


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_truncated_law_matches_scipy(scale: str) -> None:
    """Moments, quantiles, CDF and density against scipy's truncated normal (mapped by exp on the
    log scale: E[e^X] by numerical quadrature of scipy's density)."""
    lo = np.array([1.0, 1.0, 0.5, 2.0])
    hi = np.array([10.0, 10.0, 50.0, np.inf])
    mu = np.array([1.2, 2.8, 0.3, 2.5]) if scale == "log" else np.array([3.0, 12.0, 0.0, 2.5])
    sd = np.array([0.5, 0.3, 0.8, 1.1])
    tr = Truncation(lo, hi, scale)
    mean, var = tr.moments(mu, sd**2)
    y = np.array([2.0, 9.5, 0.9, 4.0])
    for i in range(4):
        law = _truncnorm(mu[i], sd[i], lo[i], hi[i], scale)
        if scale == "log":
            from scipy.integrate import quad
            lo_z, hi_z = law.support()
            top = min(hi_z, mu[i] + 12 * sd[i])
            m1 = quad(lambda x, law=law: np.exp(x) * law.pdf(x), lo_z, top)[0]
            m2 = quad(lambda x, law=law: np.exp(2 * x) * law.pdf(x), lo_z, top)[0]
            ref_mean, ref_var = m1, m2 - m1**2
            ref_logpdf = law.logpdf(np.log(y[i])) - np.log(y[i])
            ref_cdf = law.cdf(np.log(y[i]))
        else:
            ref_mean, ref_var = law.stats(moments="mv")
            ref_logpdf = law.logpdf(y[i])
            ref_cdf = law.cdf(y[i])
        assert mean[i] == pytest.approx(ref_mean, rel=1e-8) and var[i] == pytest.approx(ref_var, rel=1e-6)
        assert tr.logpdf(y, mu, sd**2)[i] == pytest.approx(ref_logpdf, rel=1e-10)
        assert np.exp(tr.log_cdf_parts(y, mu, sd**2)[0][i]) == pytest.approx(ref_cdf, rel=1e-10)
        for q in (0.01, 0.5, 0.99):
            z = law.ppf(q)
            assert tr.quantile(q, mu, sd**2)[i] == pytest.approx(np.exp(z) if scale == "log" else z, rel=1e-9)


def test_a_latent_mean_far_beyond_a_bound_piles_up_against_it() -> None:
    """A latent mean 40 standard deviations above the upper bound: Z underflows in linear space but
    not in log space; the law sits against the bound, its samples and quantiles inside."""
    tr = Truncation(np.array([1.0, 1.0]), np.array([10.0, 10.0]))
    mu, var = np.array([np.log(10.0) + 40 * 0.05, np.log(1.0) - 400 * 0.05]), np.array([0.05**2, 0.05**2])
    mean, v = tr.moments(mu, var)
    # far in a Gaussian tail the truncated law is nearly exponential with rate |beta|/s against the
    # bound: its mean sits s/|beta| inside it on the latent scale (beta = -40 and +400 here)
    assert mean[0] == pytest.approx(10.0 * math.exp(-0.05 / 40), rel=1e-4)
    assert mean[1] == pytest.approx(math.exp(0.05 / 400), rel=1e-6)
    assert np.all(np.isfinite(v)) and np.all(v >= 0)
    draws = tr.sample(mu, var, rng=0)
    assert np.all((draws >= 1.0) & (draws <= 10.0))
    q = tr.quantile(np.array([[0.001], [0.999]]), mu, var)
    assert np.all((q >= 1.0) & (q <= 10.0)) and np.all(np.isfinite(q))


def test_a_point_law_for_zero_variance_or_pinched_bounds() -> None:
    tr = Truncation(np.array([1.0, 2.0]), np.array([10.0, 2.0]))
    mean, var = tr.moments(np.array([np.log(20.0), 0.0]), np.array([0.0, 1.0]))
    assert mean.tolist() == pytest.approx([10.0, 2.0]) and var.tolist() == [0.0, 0.0]
    with pytest.raises(InputError, match="below its lower bound"):
        Truncation(3.0, 1.0)
    with pytest.raises(InputError, match="lower bounds >= 0"):
        Truncation(-1.0, 1.0, "log")
    with pytest.raises(InputError, match="scale must be"):
        Truncation(0.0, 1.0, "logit")


def test_log_scale_without_bounds_is_the_lognormal_law() -> None:
    mu, sd = np.array([0.3, -1.0, 2.0]), np.array([0.2, 1.0, 0.5])
    y = np.array([1.5, 0.1, 12.0])
    law = TruncatedNormal(mu, sd, Truncation(0.0, np.inf))
    np.testing.assert_allclose(law.mean, np.exp(mu + sd**2 / 2), rtol=1e-12)
    np.testing.assert_allclose(law.std, np.sqrt((np.exp(sd**2) - 1) * np.exp(2 * mu + sd**2)), rtol=1e-9)
    np.testing.assert_allclose(law.logpdf(y), st.lognorm.logpdf(y, sd, scale=np.exp(mu)), rtol=1e-12)
    np.testing.assert_allclose(law.standardized(y), (np.log(y) - mu) / sd, rtol=1e-9)
    z = (np.log(y) - mu) / sd  # Baran & Lerch (2015), closed-form lognormal CRPS
    exact = y * (2 * st.norm.cdf(z) - 1) - 2 * np.exp(mu + sd**2 / 2) * (
        st.norm.cdf(z - sd) + st.norm.cdf(sd / math.sqrt(2)) - 1)
    np.testing.assert_allclose(law.crps(y), exact, rtol=1e-4)  # 400-level quantile rule
    lo, hi = law.interval(0.9)
    np.testing.assert_allclose(lo, np.exp(mu - st.norm.ppf(0.95) * sd), rtol=1e-10)
    np.testing.assert_allclose(hi, np.exp(mu + st.norm.ppf(0.95) * sd), rtol=1e-10)


def test_the_normal_score_of_a_truncated_law_is_standard_normal_for_its_own_draws() -> None:
    """Calibration is judged from z = Phi^-1(F(y)): for draws of the law itself z ~ N(0, 1)
    (KS test at the 1 % level; mean and sd within 3 standard errors of 4000 draws)."""
    tr = Truncation(np.full(4000, 1.0), np.full(4000, 3.0))
    mu, sd = np.full(4000, np.log(2.8)), np.full(4000, 0.4)
    y = tr.sample(mu, sd**2, rng=3)
    z = TruncatedNormal(mu, sd, tr).standardized(y)
    assert st.kstest(z, "norm").pvalue > 0.01
    assert abs(z.mean()) < 3 / math.sqrt(4000) and abs(z.std() - 1) < 3 / math.sqrt(2 * 4000)


# ----------------------------------------------------------------------------- the surrogate


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 1))
    y = 1.5 + 7.0 * X[:, 0] ** 2 + 0.2 * rng.standard_normal(n)
    return X, np.clip(y, 1.01, 9.99)


@pytest.mark.parametrize("make", [lambda: PCE(degree=3, std_method="bootstrap", random_state=0),
                                  lambda: GPR(n_restarts=0, random_state=0)])
def test_predictions_intervals_and_functions_stay_inside_even_far_away(make) -> None:
    X, y = _data()
    m = BoundedSurrogate(make(), bounds=(1.0, 10.0)).fit(X, y)
    far = np.array([[-3.0], [0.5], [4.0]])
    with pytest.warns(sh.errors.OutOfDomainWarning):
        law = m.predictive(far)
    lo, hi = law.interval(0.999)
    assert np.all(lo >= 1.0) and np.all(hi <= 10.0)
    assert np.all((law.mean >= 1.0) & (law.mean <= 10.0))
    inside = m.predict(np.array([[0.5]]))
    assert inside[0] == pytest.approx(1.5 + 7.0 * 0.25, abs=0.3)
    f = m.sample_latent_functions(far, 20, rng=1)
    out = m.output_map(far).sample(f, np.full(f.shape, 0.1), rng=2)
    assert np.all((out >= 1.0) & (out <= 10.0))


def test_save_load_clone_and_refusals(tmp_path) -> None:
    X, y = _data()
    bounds = PhysicalBounds(COND, "conductivity_0_0", kind="phases", dim=2, features=["contrast"], fraction=None)
    yc = 1.0 + (y - 1.0) / 9.0 * 8.9  # inside (1, 10) = the phase extremes at contrast 10
    Xc = np.full_like(X, 10.0) + X  # contrast in (10, 11)
    m = BoundedSurrogate(PCE(degree=2, std_method="bootstrap", random_state=0), bounds=bounds).fit(Xc, yc)
    m.save(tmp_path / "m")
    back = BoundedSurrogate.load(tmp_path / "m")
    np.testing.assert_allclose(back.predict(Xc[:5]), m.predict(Xc[:5]), rtol=1e-12)
    assert isinstance(clone(m).bounds, PhysicalBounds) and not hasattr(clone(m), "estimator_")
    with pytest.raises(InputError, match=r"2 of 60 training value\(s\) lie outside their bounds"):
        BoundedSurrogate(PCE(degree=2), bounds=(1.0, 10.0)).fit(X, np.r_[y[:58], 0.5, 12.0])
    with pytest.raises(InputError, match="needs an estimator"):
        BoundedSurrogate(bounds=(0, 1)).fit(X, y)
    with pytest.raises(InputError, match="can be saved, not a function"):
        BoundedSurrogate(PCE(degree=2), bounds=lambda X: (0 * X[:, 0], 20 + 0 * X[:, 0])).fit(X, y).save(tmp_path / "f")


def test_predictive_of_a_plain_model_is_normal() -> None:
    X, y = _data()
    pce = PCE(degree=3).fit(X, y)
    law = predictive(pce, X[:4])
    mean, std = pce.predict(X[:4], return_std=True)
    assert isinstance(law, Normal)
    # predictive() calls predict(): the same BLAS gemm of the same design matrix, equal up to
    # rounding (P eps ~ 1e-14 relative for this degree-3 basis), not necessarily bit for bit
    np.testing.assert_allclose(law.mean, mean, rtol=0, atol=1e-12 * np.abs(mean).max())
    np.testing.assert_allclose(law.std, std, rtol=0, atol=1e-12 * np.abs(std).max())
