"""Tests of stochhom.statistics.summary: per-point statistics, bootstrap intervals,
the universal anisotropy index and the Hashin–Shtrikman check.

Oracles: per-group numpy statistics computed independently of the grouping code;
the binomial sampling band of an interval's coverage; closed forms of the anisotropy
index for cubic (3D) and square-symmetric (2D) stiffnesses; the Hashin–Shtrikman
bounds of :func:`stochhom.bounds.hashin_shtrikman` (checked against the classical
two-phase formulas in test_bounds.py).
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
import scipy.stats as st
import xarray as xr

import stochhom as sh
from stochhom.bounds import hashin_shtrikman
from stochhom.errors import InputError
from stochhom.statistics.summary import (
    CI_METHODS,
    anisotropy_index,
    cox_log_interval,
    default_by,
    fraction_within_hashin_shtrikman,
    mean_confidence_interval,
    quantity_support,
    scalar_columns,
    summarize,
    within_hashin_shtrikman,
)
from stochhom.tensors import isotropic_stiffness, rotate, rotation_matrix

# --------------------------------------------------------------------------- synthetic apparent properties

VFS = (0.2, 0.4)
CONTRASTS = (5.0, 10.0)
REPLICATES = 6
FAILED = (1, 8, 9, 20)  # samples with converged = 0: points 0, 1, 1, 3


def make_props(seed: int = 0, failed: tuple[int, ...] = FAILED, volume: np.ndarray | None = None) -> xr.Dataset:
    """A hand-built 2D conductivity apparent-properties dataset: 4 points x 6 replicates.

    Every sample has a unique ``seed`` and ``specimen``, and ``replicate`` repeats
    0..5 at every point, so grouping by any identifier would split the points. Failed
    samples hold *finite* outliers (1e3): if they were not excluded through the
    ``converged`` flag they would wreck the means.
    """
    rows = [(p, vf, c, r) for p, (vf, c) in enumerate(product(VFS, CONTRASTS)) for r in range(REPLICATES)]
    point, vf, contrast, replicate = (np.array(a) for a in zip(*rows))
    n = point.size
    rng = np.random.default_rng(seed)
    base = 1.0 + 0.6 * vf * (contrast - 1.0)
    noise = 0.15 * rng.standard_normal((n, 2, 2))
    k = base[:, None, None] * np.eye(2) + 0.5 * (noise + np.swapaxes(noise, 1, 2))
    converged = np.ones(n, dtype=np.int8)
    converged[list(failed)] = 0
    k[converged == 0] = np.array([[1e3, 5.0], [5.0, 2e3]])
    f1 = vf + 0.02 * rng.standard_normal(n)
    ds = xr.Dataset(
        {
            "conductivity": (("sample", "i", "j"), k),
            "conductivity_eigenvalues": (("sample", "k"), np.linalg.eigvalsh(k)),
            "converged": (("sample",), converged),
            "phase_fraction": (("sample", "phase"), np.stack([1.0 - f1, f1], axis=1)),
            "volume": (("sample",), np.full(n, 1024.0) if volume is None else volume),
        },
        coords={
            "sample": np.arange(n),
            "seed": ("sample", rng.integers(0, 2**62, n)),
            "specimen": ("sample", [f"specimen-{i:03d}" for i in range(n)]),
            "replicate": ("sample", replicate),
            "point": ("sample", point),
            "volume_fraction": ("sample", vf),
            "contrast": ("sample", contrast),
        },
        attrs={"physics": "conductivity", "dim": 2},
    )
    return ds


def by_hand(values: np.ndarray, mask: np.ndarray) -> tuple[float, float, float, int]:
    x = values[mask]
    return x.mean(), x.std(ddof=1), x.std(ddof=1) / np.sqrt(x.size), x.size


# --------------------------------------------------------------------------- 1. summarize


def test_default_by_ignores_identifiers():
    props = make_props()
    assert default_by(props) == ["point", "volume_fraction", "contrast"]
    assert default_by(props, exclude=["point"]) == ["volume_fraction", "contrast"]
    # volume joins the keys only when it varies (an RVE-size study)
    varied = make_props(volume=np.tile([256.0, 1024.0], 12))
    assert default_by(varied)[-1] == "volume"


def test_summarize_matches_numpy_per_point():
    props = make_props()
    s = summarize(props, n_boot=200, rng=0, method="BCa")
    # 4 points, not 24: seed, specimen and replicate do not split the points
    assert s.sizes["point"] == 4
    np.testing.assert_array_equal(s["volume_fraction"].values, [0.2, 0.2, 0.4, 0.4])
    np.testing.assert_array_equal(s["contrast"].values, [5.0, 10.0, 5.0, 10.0])
    assert list(s["variable"].values) == ["conductivity_eigenvalues_0", "conductivity_eigenvalues_1",
                                          "anisotropy_index"]
    ok = props["converged"].values == 1
    ev = props["conductivity_eigenvalues"].values
    columns = {"conductivity_eigenvalues_0": ev[:, 0], "conductivity_eigenvalues_1": ev[:, 1],
               "anisotropy_index": ev[:, 1] / ev[:, 0] - 1.0}
    point = props["point"].values
    for p in range(4):
        for name, values in columns.items():
            mean, std, sem, count = by_hand(values, (point == p) & ok)
            cell = s.sel(point=p, variable=name)
            assert int(cell["count"]) == count
            # same numbers summed in possibly another order: round-off only
            np.testing.assert_allclose([cell["mean"], cell["std"], cell["sem"]], [mean, std, sem], rtol=1e-12)
            assert cell["ci_low"] < cell["mean"] < cell["ci_high"]
            assert str(cell["ci_method"].values) == "BCa"
    np.testing.assert_array_equal(s["n_samples"].values, [6, 6, 6, 6])
    np.testing.assert_array_equal(s["n_failed"].values, [1, 2, 0, 1])
    np.testing.assert_array_equal(s["count"].sel(variable="anisotropy_index").values, [5, 4, 6, 5])
    assert s.attrs["confidence"] == 0.95 and s.attrs["n_boot"] == 200


def test_summarize_named_variables_and_components():
    props = make_props()
    s = summarize(props, by="contrast", variables=["conductivity", "phase_fraction_1", "volume"], n_boot=50, rng=1)
    # a symmetric tensor gives its upper triangle only
    assert list(s["variable"].values) == ["conductivity_0_0", "conductivity_0_1", "conductivity_1_1",
                                          "phase_fraction_1", "volume"]
    ok = props["converged"].values == 1
    k = props["conductivity"].values
    contrast = props["contrast"].values
    for c in CONTRASTS:
        m = (contrast == c) & ok
        for name, values in [("conductivity_0_1", k[:, 0, 1]), ("conductivity_1_1", k[:, 1, 1]),
                             ("phase_fraction_1", props["phase_fraction"].values[:, 1])]:
            mean, std, sem, count = by_hand(values, m)
            cell = s.sel(point=s["contrast"] == c).squeeze("point").sel(variable=name)
            np.testing.assert_allclose([cell["mean"], cell["std"], cell["sem"]], [mean, std, sem], rtol=1e-12)
            assert int(cell["count"]) == count
    # constant volume: zero spread, degenerate interval
    vol = s.sel(variable="volume")
    np.testing.assert_array_equal(vol["std"].values, [0.0, 0.0])
    np.testing.assert_array_equal(vol["ci_low"].values, vol["ci_high"].values)
    assert set(vol["ci_method"].values) == {"degenerate"}
    # scalar_columns gives the same per-sample columns
    cols = scalar_columns(props, ["conductivity_0_1", "anisotropy_index"])
    np.testing.assert_array_equal(cols["conductivity_0_1"], k[:, 0, 1])
    ev = props["conductivity_eigenvalues"].values
    np.testing.assert_allclose(cols["anisotropy_index"], ev[:, 1] / ev[:, 0] - 1.0, rtol=1e-12)


def test_summarize_by_empty_pools_everything():
    props = make_props()
    s = summarize(props, by=[], n_boot=100, rng=0)
    assert s.sizes["point"] == 1
    assert int(s["n_samples"][0]) == 24 and int(s["n_failed"][0]) == len(FAILED)
    ok = props["converged"].values == 1
    ev = props["conductivity_eigenvalues"].values
    mean, std, sem, count = by_hand(ev[:, 1], ok)
    cell = s.sel(point=0, variable="conductivity_eigenvalues_1")
    assert int(cell["count"]) == count == 20
    np.testing.assert_allclose([cell["mean"], cell["std"], cell["sem"]], [mean, std, sem], rtol=1e-12)


def test_summarize_point_whose_samples_all_failed():
    props = make_props(failed=tuple(range(18, 24)))  # every sample of point 3
    s = summarize(props, n_boot=50, rng=0, phases=[sh.Conductivity(1.0), sh.Conductivity(10.0)])
    last = s.sel(point=3)
    assert (last["count"].values == 0).all()
    assert int(last["n_failed"]) == 6
    for stat in ("mean", "std", "sem", "ci_low", "ci_high"):
        assert np.isnan(last[stat].values).all()
    assert set(last["ci_method"].values) == {"none"}
    assert np.isnan(float(last["within_hs"]))
    assert np.isfinite(s["mean"].sel(point=[0, 1, 2]).values).all()


def test_summarize_reproducible_for_fixed_rng():
    props = make_props()
    a = summarize(props, n_boot=300, rng=42, method="BCa")
    b = summarize(props, n_boot=300, rng=np.random.default_rng(42), method="BCa")
    xr.testing.assert_identical(a, b)
    c = summarize(props, n_boot=300, rng=43, method="BCa")
    xr.testing.assert_identical(a["mean"], c["mean"])
    assert not np.array_equal(a["ci_low"].values, c["ci_low"].values)


# --------------------------------------------------------------------------- 2. bootstrap coverage


def _coverage_dataset(n_points: int, n: int, seed: int) -> tuple[xr.Dataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-5.0, 5.0, n_points)
    sigma = rng.uniform(0.5, 3.0, n_points)
    z = mu[:, None] + sigma[:, None] * rng.standard_normal((n_points, n))
    ds = xr.Dataset({"z": ("sample", z.reshape(-1))},
                    coords={"sample": np.arange(z.size), "cell": ("sample", np.repeat(np.arange(n_points), n))})
    return ds, mu


@pytest.mark.parametrize("method", ["BCa", "percentile"])
@pytest.mark.parametrize("confidence", [0.95, 0.80])
def test_bootstrap_coverage_at_nominal_rate(method, confidence):
    """400 points of 40 normal samples, one summarize call: coverage of the true mean.

    Two binomial bands (3 standard errors of a proportion over P = 400 independent
    intervals), both of which must hold:

    * nominal: |cov - c| <= 3 sqrt(c (1 - c) / 400), i.e. 0.95 +- 0.033 and 0.80 +- 0.060;
    * finite-n reference: a bootstrap interval of the mean uses the plug-in variance
      s^2 (n-1)/n and a normal-like shape, so for normal data of size n its exact
      coverage is about p_ref = P(|T_{n-1}| < z_c sqrt((n-1)/n)) (0.940 for c = 0.95,
      n = 40; BCa's bias and acceleration corrections are O(n^-1/2) noise for
      symmetric data). The band p_ref +- 3 sqrt(p_ref (1 - p_ref) / 400) checks the
      intervals are not miscalibrated within the nominal band's slack.

    Bootstrap quantile noise (n_boot = 1000) adds a further ~1% scatter to each
    interval's end points, which only perturbs coverage to second order.
    """
    n_points, n = 400, 40
    ds, mu = _coverage_dataset(n_points, n, seed=20240611)
    s = summarize(ds, by=["cell"], variables="z", confidence=confidence, n_boot=1000, rng=7, method=method)
    assert set(s["ci_method"].values.ravel()) == {method}
    lo, hi = s["ci_low"].values[:, 0], s["ci_high"].values[:, 0]
    cov = np.mean((lo <= mu) & (mu <= hi))
    band = 3.0 * np.sqrt(confidence * (1 - confidence) / n_points)
    assert abs(cov - confidence) <= band, (cov, confidence, band)
    z = st.norm.ppf(0.5 + confidence / 2)
    p_ref = 2.0 * st.t.cdf(z * np.sqrt((n - 1) / n), n - 1) - 1.0
    assert abs(cov - p_ref) <= 3.0 * np.sqrt(p_ref * (1 - p_ref) / n_points), (cov, p_ref)
    # widths: a normal-theory interval of the mean is 2 z s sqrt((n-1)/n) / sqrt(n). Each
    # bootstrap width scatters by a few % (quantile noise with 1000 resamples); averaged
    # over 400 points the mean ratio is within ~0.3% of sqrt((n-1)/n), so 2% is ~6 sigma.
    ratio = (hi - lo) / (2 * z * s["sem"].values[:, 0])
    assert abs(ratio.mean() - np.sqrt((n - 1) / n)) < 0.02, ratio.mean()


# --------------------------------------------------------------------------- 3. mean_confidence_interval


def test_mean_ci_constant_data_is_degenerate():
    assert mean_confidence_interval(np.full(10, 3.5), rng=0) == (3.5, 3.5, "degenerate")


@pytest.mark.parametrize("values", [[], [1.0], [np.nan, 2.0], [np.nan, np.inf]])
def test_mean_ci_fewer_than_two_values_is_nan(values):
    lo, hi, method = mean_confidence_interval(values, rng=0)
    assert np.isnan(lo) and np.isnan(hi) and method == "none"


def test_mean_ci_reproducible_and_ignores_non_finite():
    x = np.random.default_rng(3).exponential(2.0, 30)
    a = mean_confidence_interval(x, rng=11)
    assert a == mean_confidence_interval(x, rng=np.random.default_rng(11))
    assert a != mean_confidence_interval(x, rng=12)
    assert a == mean_confidence_interval(np.concatenate([x[:10], [np.nan, np.inf], x[10:]]), rng=11)


@pytest.mark.parametrize("method", ["BCa", "percentile", "basic"])
def test_mean_ci_contains_sample_mean(method):
    rng = np.random.default_rng(5)
    for x in (rng.normal(1.0, 2.0, 25), rng.exponential(1.0, 15), rng.lognormal(0.0, 1.0, 60), [0.0, 1.0]):
        lo, hi, used = mean_confidence_interval(x, rng=0, method=method)
        assert used == method
        assert lo < np.mean(x) < hi


def test_mean_ci_width_large_sample():
    # n = 1000 normal values: the 95% interval is x_bar +- 1.96 s / sqrt(n) to within the
    # bootstrap quantile noise (2000 resamples: ~3% of the half width at each end), so 10%.
    x = np.random.default_rng(8).normal(10.0, 3.0, 1000)
    lo, hi, _ = mean_confidence_interval(x, rng=0)
    half = 1.959964 * x.std(ddof=1) / np.sqrt(x.size)
    np.testing.assert_allclose([lo, hi], [x.mean() - half, x.mean() + half], atol=0.1 * half)


@pytest.mark.parametrize("n", [3, 5, 8])
def test_auto_interval_covers_for_few_samples(n):
    # below 20 values "auto" is the Student-t interval: exact for normal data, so over 2000
    # trials its coverage lies in 0.95 ± 3·sqrt(0.95·0.05/2000) = [0.935, 0.965]; the BCa
    # bootstrap at these n covers 0.73-0.87 (measured), far outside that band
    rng = np.random.default_rng(n)
    x = rng.normal(1.0, 2.0, (2000, n))
    hits = 0
    for row in x:
        lo, hi, used = mean_confidence_interval(row, method="auto")
        hits += lo <= 1.0 <= hi
    assert used == "t"
    assert 0.935 <= hits / 2000 <= 0.965
    bca = sum(lo <= 1.0 <= hi for lo, hi, _ in (mean_confidence_interval(r, n_boot=200, rng=0, method="BCa")
                                                  for r in x[:300]))
    assert bca / 300 < 0.92


def test_mean_ci_falls_back_to_percentile_when_bca_undefined():
    # with a single resample the BCa bias correction Phi^-1(0 or 1) is infinite
    lo, hi, used = mean_confidence_interval([1.0, 2.0, 4.0, 8.0], n_boot=1, rng=0, method="BCa")
    assert used == "percentile"
    assert np.isfinite(lo) and np.isfinite(hi)


# --------------------------------------------------------------------------- 4. anisotropy index


def cubic_mandel(c11: float, c12: float, c44: float) -> np.ndarray:
    c = np.full((3, 3), c12) + (c11 - c12) * np.eye(3)
    return np.block([[c, np.zeros((3, 3))], [np.zeros((3, 3)), 2.0 * c44 * np.eye(3)]])


def cubic_au(c11: float, c12: float, c44: float) -> float:
    """A^U = 5 G_V/G_R + K_V/K_R - 6 of a cubic crystal (Ranganathan & Ostoja-Starzewski 2008)."""
    gv = (c11 - c12 + 3 * c44) / 5
    gr = 5 * (c11 - c12) * c44 / (4 * c44 + 3 * (c11 - c12))
    return 5 * gv / gr + 1.0 - 6.0  # K_V = K_R = (C11 + 2 C12) / 3 for cubic symmetry


@pytest.mark.parametrize("dim", [2, 3])
def test_anisotropy_zero_for_isotropic_stiffness(dim):
    c = np.stack([isotropic_stiffness(k, g, dim) for k, g in [(1.0, 0.3), (50.0, 20.0), (2.0, 1.9)]])
    np.testing.assert_allclose(anisotropy_index(c, "elasticity"), 0.0, atol=1e-12)
    # rotated isotropic tensors stay isotropic
    r = rotation_matrix(np.array([0.3, 1.1, -0.4]) if dim == 3 else 0.7, dim)
    np.testing.assert_allclose(anisotropy_index(rotate(c, r), "elasticity"), 0.0, atol=1e-12)


def test_anisotropy_zero_for_isotropic_conductivity():
    np.testing.assert_allclose(anisotropy_index(2.5 * np.eye(2)), 0.0, atol=1e-14)
    np.testing.assert_allclose(anisotropy_index(np.stack([np.eye(3), 7 * np.eye(3)]), "conductivity"), 0.0,
                               atol=1e-14)


@pytest.mark.parametrize(("c11", "c12", "c44"), [
    (168.4, 121.4, 75.4),  # copper, GPa (Zener ratio 3.21)
    (108.2, 61.3, 28.5),   # aluminium, GPa (Zener ratio 1.22)
    (10.0, 4.0, 1.0),      # Zener ratio 1/3 < 1
])
def test_anisotropy_cubic_crystal_closed_form(c11, c12, c44):
    c = cubic_mandel(c11, c12, c44)
    # the Mandel matrix agrees with the library's Voigt -> Mandel conversion
    voigt = cubic_mandel(c11, c12, c44)
    voigt[3:, 3:] /= 2.0
    np.testing.assert_allclose(sh.AnisotropicElastic.from_voigt(voigt).C, c, rtol=1e-14)
    expected = cubic_au(c11, c12, c44)
    # equivalent form in the Zener ratio a = 2 C44 / (C11 - C12): A^U = 6 (a - 1)^2 / (5 a)
    a = 2 * c44 / (c11 - c12)
    np.testing.assert_allclose(expected, 6 * (a - 1) ** 2 / (5 * a), rtol=1e-12)
    np.testing.assert_allclose(anisotropy_index(c), expected, rtol=1e-10)
    # an invariant: any rotation of the crystal gives the same index
    r = rotation_matrix(np.array([0.4, 0.9, 1.3]), 3)
    np.testing.assert_allclose(anisotropy_index(rotate(c, r)), expected, rtol=1e-9)


def test_anisotropy_square_symmetric_2d_closed_form():
    # plane-strain stiffness with square symmetry: Mandel [[C11, C12, 0], [C12, C11, 0], [0, 0, 2 C66]].
    # kappa_V = kappa_R = (C11 + C12)/2; the deviatoric modes have stiffnesses C11 - C12 and 2 C66, so
    # 2 G_V is their mean and 1/(2 G_R) the mean of their inverses: with b = 2 C66 / (C11 - C12),
    # A^U_2D = 2 G_V/G_R - 2 = (b - 1)^2 / (2 b).
    c11, c12, c66 = 9.0, 3.0, 1.2
    c = np.array([[c11, c12, 0.0], [c12, c11, 0.0], [0.0, 0.0, 2 * c66]])
    b = 2 * c66 / (c11 - c12)
    np.testing.assert_allclose(anisotropy_index(c, "elasticity"), (b - 1) ** 2 / (2 * b), rtol=1e-12)


def test_anisotropy_conductivity_and_array_handling():
    np.testing.assert_allclose(anisotropy_index(np.diag([1.0, 3.0])), 2.0, rtol=1e-14)
    # eigenvalues, not diagonal entries: rotated diag(1, 3) still gives 2
    r = rotation_matrix(0.6, 2)
    np.testing.assert_allclose(anisotropy_index(r @ np.diag([1.0, 3.0]) @ r.T), 2.0, rtol=1e-12)
    np.testing.assert_allclose(anisotropy_index(np.diag([2.0, 3.0, 8.0]), "conductivity"), 3.0, rtol=1e-14)
    stack = np.stack([np.diag([1.0, 3.0]), np.full((2, 2), np.nan), np.eye(2)])
    out = anisotropy_index(stack)
    assert out.shape == (3,)
    np.testing.assert_allclose(out[[0, 2]], [2.0, 0.0], atol=1e-14)
    assert np.isnan(out[1])
    stiff = np.stack([cubic_mandel(10.0, 4.0, 1.0), np.full((6, 6), np.nan)])
    assert np.isnan(anisotropy_index(stiff)[1]) and np.isfinite(anisotropy_index(stiff)[0])


def test_anisotropy_dataarray_in_dataarray_out():
    props = make_props()
    out = anisotropy_index(props["conductivity"])  # physics from the name
    assert isinstance(out, xr.DataArray) and out.dims == ("sample",) and out.name == "anisotropy_index"
    np.testing.assert_array_equal(out["contrast"].values, props["contrast"].values)
    ev = np.linalg.eigvalsh(props["conductivity"].values)
    np.testing.assert_allclose(out.values, ev[:, 1] / ev[:, 0] - 1.0, rtol=1e-12)
    # a 3 x 3 DataArray named "stiffness" is a 2D Mandel stiffness
    c = xr.DataArray(np.stack([isotropic_stiffness(2.0, 1.0, 2), np.diag([9.0, 9.0, 2.4])]),
                     dims=("sample", "i", "j"), name="stiffness")
    np.testing.assert_allclose(anisotropy_index(c).values, [0.0, anisotropy_index(c.values[1], "elasticity")],
                               atol=1e-12)


def test_anisotropy_input_errors():
    with pytest.raises(InputError, match=r"ambiguous.*physics="):
        anisotropy_index(np.eye(3))
    with pytest.raises(InputError, match="physics must be"):
        anisotropy_index(np.eye(2), physics="optics")
    with pytest.raises(InputError, match=r"\(\.\.\., n, n\)"):
        anisotropy_index(np.ones((2, 3)))
    with pytest.raises(InputError, match=r"3 x 3 \(2D\) or 6 x 6"):
        anisotropy_index(np.eye(2), physics="elasticity")


# --------------------------------------------------------------------------- 5. Hashin–Shtrikman check

COND = [sh.Conductivity(1.0), sh.Conductivity(10.0)]


def hs_props(tensors: np.ndarray, fractions: np.ndarray, physics: str, dim: int, **coords) -> xr.Dataset:
    n = tensors.shape[0]
    name = "stiffness" if physics == "elasticity" else "conductivity"
    return xr.Dataset(
        {name: (("sample", "i", "j"), tensors), "phase_fraction": (("sample", "phase"), fractions),
         "converged": (("sample",), np.ones(n, dtype=np.int8))},
        coords={"sample": np.arange(n), **{k: ("sample", np.asarray(v)) for k, v in coords.items()}},
        attrs={"physics": physics, "dim": dim},
    )


def test_within_hs_conductivity_flags_and_fraction():
    f = np.array([0.7, 0.3])
    (lo, hi) = hashin_shtrikman(COND, f, 2).bulk
    voigt, reuss = f @ [1.0, 10.0], 1.0 / (f @ [1.0, 0.1])
    assert reuss < lo < hi < voigt
    e = np.eye(2)
    tensors = np.stack([
        lo * e, 0.5 * (lo + hi) * e, voigt * e,             # point A: inside, inside, above HS+
        hi * e, reuss * e, np.diag([lo, hi]),              # point B: inside, below HS-, anisotropic inside
        np.diag([1.1 * lo, 1.1 * lo]),                     # point B: failed sample (NaN flag, not counted)
    ])
    props = hs_props(tensors, np.tile(f, (7, 1)), "conductivity", 2, group=["A"] * 3 + ["B"] * 4)
    props["converged"].values[-1] = 0
    flags = within_hashin_shtrikman(props, COND)
    np.testing.assert_array_equal(flags.values[:6], [1, 1, 0, 1, 0, 1])
    assert np.isnan(flags.values[6])
    frac = fraction_within_hashin_shtrikman(props, COND)
    np.testing.assert_allclose(frac.values, [2 / 3, 2 / 3])
    assert list(frac["group"].values) == ["A", "B"]
    s = summarize(props, variables="conductivity", n_boot=50, rng=0, phases=COND)
    np.testing.assert_allclose(s["within_hs"].values, [2 / 3, 2 / 3])
    np.testing.assert_array_equal(s["n_failed"].values, [0, 1])
    # rtol: a sample 1e-6 below the lower bound is outside by default, inside with rtol = 1e-5
    below = hs_props((lo * (1 - 1e-6) * e)[None], f[None], "conductivity", 2)
    assert within_hashin_shtrikman(below, COND).values[0] == 0.0
    assert within_hashin_shtrikman(below, COND, rtol=1e-5).values[0] == 1.0


def test_within_hs_phase_tables_resolved_per_sample():
    # phases as TOML-style tables whose conductivity is a per-sample parameter
    tables = {0: {"law": "Conductivity", "k": 1.0}, 1: {"law": "Conductivity", "k": "contrast"}}
    f = np.array([0.6, 0.4])
    rows, contrast = [], []
    for c in (10.0, 50.0):
        lo, hi = hashin_shtrikman([sh.Conductivity(1.0), sh.Conductivity(c)], f, 3).bulk
        rows += [lo, 0.5 * (lo + hi), f @ [1.0, c]]
        contrast += [c] * 3
    tensors = np.array(rows)[:, None, None] * np.eye(3)
    props = hs_props(tensors, np.tile(f, (6, 1)), "conductivity", 3, contrast=contrast)
    np.testing.assert_array_equal(within_hashin_shtrikman(props, tables).values, [1, 1, 0, 1, 1, 0])
    # judged with fixed phases k = (1, 10) instead, the contrast-50 mid-bounds sample (about 9.5) lies
    # above HS+ of k = (1, 10) (about 3.9), while its lower bound (about 2.8) happens to lie inside
    np.testing.assert_array_equal(within_hashin_shtrikman(props, COND).values, [1, 1, 0, 1, 0, 0])
    s = summarize(props, variables="conductivity", n_boot=20, rng=0, phases=tables)
    np.testing.assert_allclose(s["within_hs"].values, [2 / 3, 2 / 3])


def test_within_hs_elasticity_checks_bulk_and_shear():
    phases = [sh.IsotropicElastic.from_bulk_shear(2.0, 1.0), sh.IsotropicElastic.from_bulk_shear(20.0, 12.0)]
    f = np.array([0.5, 0.5])
    b = hashin_shtrikman(phases, f, 3)
    (klo, khi), (glo, ghi) = b.bulk, b.shear
    kv, gv = f @ [2.0, 20.0], f @ [1.0, 12.0]
    assert khi < kv and ghi < gv
    tensors = np.stack([
        isotropic_stiffness(klo, glo, 3),
        isotropic_stiffness(0.5 * (klo + khi), 0.5 * (glo + ghi), 3),
        isotropic_stiffness(kv, gv, 3),                 # Voigt: above both upper bounds
        isotropic_stiffness(0.5 * (klo + khi), gv, 3),  # bulk inside, shear above
    ])
    props = hs_props(tensors, np.tile(f, (4, 1)), "elasticity", 3)
    np.testing.assert_array_equal(within_hashin_shtrikman(props, phases).values, [1, 1, 0, 0])


def test_within_hs_real_boolean_ensemble():
    """Apparent conductivities of 8 periodic 32^2 Boolean SVEs, phases k = 1 and 10.

    Physically guaranteed: for any two-phase composite, isotropic or not, tr(k*)/d lies
    inside the Hashin–Shtrikman bounds of its volume fractions. The trace bounds
    (Lurie & Cherkaev 1984; Milton, The Theory of Composites, 2002, ch. 23) read
    sum_i 1/(lambda_i - k1) <= d/(k_HS- - k1) and sum_i 1/(k2 - lambda_i) <= d/(k2 - k_HS+)
    for the eigenvalues lambda_i of k*, and Jensen's inequality on these convex functions
    turns them into k_HS- <= mean(lambda) <= k_HS+. So small, slightly anisotropic SVEs do
    not leave the bounds: only the FFT discretization error (a few % at most here) and the
    solver tolerance (1e-6 default residual) could push a sample out, and these samples sit
    >= 4.8% above the lower and ~50% below the upper bound. Every sample must be inside.
    """
    ens = sh.generate("boolean", (32, 32), 8, rng=0, volume_fraction=0.3, radius=3)
    props = sh.homogenize_ensemble(ens, COND)
    assert (props["converged"].values == 1).all()
    flags = within_hashin_shtrikman(props, COND)
    np.testing.assert_array_equal(flags.values, np.ones(8))
    s = summarize(props, n_boot=200, rng=0, phases=COND)
    assert s.sizes["point"] == 1 and float(s["within_hs"][0]) == 1.0
    # the Boolean SVEs are anisotropic at this size, but only mildly
    aniso = s["mean"].sel(variable="anisotropy_index").values[0]
    assert 0.0 < aniso < 0.5


def test_within_hs_input_errors():
    props = make_props().drop_vars("phase_fraction")
    with pytest.raises(InputError, match="phase_fraction"):
        within_hashin_shtrikman(props, COND)
    with pytest.raises(InputError, match="rtol"):
        within_hashin_shtrikman(make_props(), COND, rtol=-1.0)
    three = make_props()
    three = three.drop_vars("phase_fraction").assign(
        phase_fraction=(("sample", "phase"), np.tile([0.5, 0.3, 0.2], (24, 1))))
    with pytest.raises(InputError, match="phase labels >= 2"):
        within_hashin_shtrikman(three, COND)


# --------------------------------------------------------------------------- 6. bad input


def test_summarize_input_errors():
    props = make_props()
    with pytest.raises(InputError, match=r"expected an apparent-properties xarray\.Dataset, got dict"):
        summarize({"conductivity": 1.0})
    with pytest.raises(InputError, match="empty"):
        summarize(props.isel(sample=slice(0, 0)))
    with pytest.raises(InputError, match=r"unknown variable 'bulk_modulus'.*'conductivity_eigenvalues'"):
        summarize(props, variables=["bulk_modulus"])
    with pytest.raises(InputError, match="index out of range"):
        summarize(props, variables=["conductivity_1_0"])
    with pytest.raises(InputError, match=r"'temperature' is not a coordinate or variable.*'volume_fraction'"):
        summarize(props, by=["volume_fraction", "temperature"])
    with pytest.raises(InputError, match=r"must have dims \('sample',\)"):
        summarize(props, by=["conductivity"])
    for bad in (0.0, 1.0, 1.5, -0.1, float("nan"), "high"):
        with pytest.raises(InputError, match="confidence must"):
            summarize(props, confidence=bad)
    for bad in (0, -5, 10.5, True):
        with pytest.raises(InputError, match="n_boot must be a positive integer"):
            summarize(props, n_boot=bad)
    for bad in ("bca", "student", None):
        with pytest.raises(InputError, match="method must be 'BCa', 'percentile' or 'basic'"):
            summarize(props, method=bad)
    with pytest.raises(InputError, match="no variables requested"):
        summarize(props, variables=[])


def test_mean_ci_input_errors():
    x = [1.0, 2.0, 3.0]
    with pytest.raises(InputError, match="confidence must"):
        mean_confidence_interval(x, confidence=95)
    with pytest.raises(InputError, match="n_boot must be a positive integer"):
        mean_confidence_interval(x, n_boot=0)
    with pytest.raises(InputError, match="method must be"):
        mean_confidence_interval(x, method="studentized")


# --------------------------------------------------------------------------- 7. intervals inside the quantity's range

COVERAGE_REPS = 4000
#: binomial standard error of a simulated 95 % coverage over COVERAGE_REPS intervals: 0.0034
COVERAGE_SE = np.sqrt(0.95 * 0.05 / COVERAGE_REPS)


def _lognormal_sample(log_sd: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """COVERAGE_REPS samples of n lognormal values and their true mean exp(log_sd^2 / 2)."""
    return np.exp(log_sd * rng.standard_normal((COVERAGE_REPS, n))), float(np.exp(log_sd**2 / 2))


def _positive_normal_sample(cv: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """COVERAGE_REPS samples of n values of N(1, cv^2) conditioned on being positive, and their true mean.

    Rejection of whole samples with a value <= 0 draws each value from the normal law truncated at 0,
    whose mean is 1 + cv phi(a) / (1 - Phi(a)), a = -1/cv (1.0000 for cv <= 0.2, 1.0006 for cv = 0.4).
    """
    x = 1.0 + cv * rng.standard_normal((2 * COVERAGE_REPS, n))
    x = x[(x > 0).all(axis=1)][:COVERAGE_REPS]
    assert x.shape[0] == COVERAGE_REPS
    a = -1.0 / cv
    return x, float(1.0 + cv * st.norm.pdf(a) / st.norm.sf(a))


def _t_interval(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[1]
    half = st.t.ppf(0.975, n - 1) * x.std(axis=1, ddof=1) / np.sqrt(n)
    return np.maximum(x.mean(axis=1) - half, 0.0), x.mean(axis=1) + half


# Allowance for the modified Cox interval's known small-sample bias, from 200 000 trials per cell
# (docs/statistics.md): its coverage is 0.932-0.941 for lognormal data of log-sd 1 (its s^4 term is
# a normal approximation to a skewed chi-square), within 0.002 of 0.95 or above it elsewhere.
COX_BIAS = {("lognormal", 1.0): 0.02}
COX_BIAS_DEFAULT = 0.005


@pytest.mark.parametrize("n", [2, 3, 5, 10])
@pytest.mark.parametrize(("law", "scale"), [("lognormal", 0.05), ("lognormal", 0.3), ("lognormal", 1.0),
                                            ("normal", 0.05), ("normal", 0.2), ("normal", 0.4)])
def test_positive_interval_covers_the_arithmetic_mean(law, scale, n):
    """The interval of a positive quantity covers the true arithmetic mean at the nominal 95 %.

    4000 samples of n values each (fixed seed); the simulated coverage has binomial
    standard error sqrt(0.95 * 0.05 / 4000) = 0.0034. Bounds: coverage >= 0.95 - 3 SE -
    bias allowance (0.02 for lognormal log-sd 1, 0.005 elsewhere; measured 0.932 at worst),
    and <= 0.95 + 3 SE + 0.02 (measured 0.964 at worst: normal data, CV 0.4, n = 10), so a
    much too wide interval fails too. The Student-t interval, which goes below zero, fails
    the lower bound for log-sd 1 (0.82-0.90). The simulation is vectorized through
    cox_log_interval; mean_confidence_interval gives the same interval ("cox-log") on the
    first 40 samples, so the coverage is that of the function summarize uses.
    """
    rng = np.random.default_rng(1000 * n + int(100 * scale) + (0 if law == "lognormal" else 7))
    x, true = (_lognormal_sample if law == "lognormal" else _positive_normal_sample)(scale, n, rng)
    lo, hi = cox_log_interval(x, 0.95, axis=1)
    assert (lo > 0).all() and (hi > lo).all()
    cov = np.mean((lo <= true) & (true <= hi))
    floor = 0.95 - 3 * COVERAGE_SE - COX_BIAS.get((law, scale), COX_BIAS_DEFAULT)
    assert floor <= cov <= 0.95 + 3 * COVERAGE_SE + 0.02, (cov, floor)
    for row, a, b in zip(x[:40], lo[:40], hi[:40]):
        got = mean_confidence_interval(row, support=(0.0, np.inf))
        assert got[2] == "cox-log"
        np.testing.assert_allclose(got[:2], (a, b), rtol=1e-12)
    t_lo, t_hi = _t_interval(x)
    if law == "lognormal" and scale == 1.0:
        assert np.mean((t_lo <= true) & (true <= t_hi)) < floor  # the t-interval is not good enough here
    if law == "normal" and n >= 3:
        # for normal data the t-interval is exact, and the Cox interval is not much wider
        # (median width ratio measured 1.00-1.29, largest at CV 0.4, n = 3)
        assert np.median((hi - lo) / (t_hi - t_lo)) < 1.5


def _scattered_props(seed: int = 0) -> xr.Dataset:
    """A 2D conductivity study with 2-3 replicates per point and a large scatter (log-sd 1 of the
    eigenvalues), phase fractions near 0, and one isotropic sample (anisotropy index exactly 0)."""
    rng = np.random.default_rng(seed)
    reps = np.array([2, 3] * 12)
    point = np.repeat(np.arange(reps.size), reps)
    n = point.size
    eig = np.sort(np.exp(rng.normal(0.0, 1.0, (n, 2))), axis=1)
    eig[0] = [1.5, 1.5]  # an isotropic SVE: anisotropy index 0 at point 0
    theta = rng.uniform(0.0, np.pi, n)
    theta[0] = 0.0  # unrotated, so that its tensor is exactly 1.5 I
    c, s = np.cos(theta), np.sin(theta)
    r = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    k = r @ (eig[:, :, None] * np.swapaxes(r, 1, 2))
    f1 = rng.beta(0.4, 4.0, n)  # skewed towards 0: the t-interval leaves [0, 1]
    return xr.Dataset(
        {"conductivity": (("sample", "i", "j"), k),
         "conductivity_eigenvalues": (("sample", "k"), eig),
         "phase_fraction": (("sample", "phase"), np.stack([1.0 - f1, f1], axis=1)),
         "converged": (("sample",), np.ones(n, dtype=np.int8))},
        coords={"sample": np.arange(n), "point": ("sample", point), "seed": ("sample", np.arange(n))},
        attrs={"physics": "conductivity", "dim": 2},
    )


def test_summarize_intervals_stay_inside_the_range_with_few_scattered_replicates():
    props = _scattered_props()
    names = ["conductivity_eigenvalues", "anisotropy_index", "conductivity", "phase_fraction"]
    s = summarize(props, variables=names, rng=0)
    variables = [str(v) for v in s["variable"].values]
    assert variables == ["conductivity_eigenvalues_0", "conductivity_eigenvalues_1", "anisotropy_index",
                         "conductivity_0_0", "conductivity_0_1", "conductivity_1_1", "phase_fraction_0",
                         "phase_fraction_1"]
    np.testing.assert_array_equal(s["support_low"].values, [0, 0, 0, 0, -np.inf, 0, 0, 0])
    np.testing.assert_array_equal(s["support_high"].values, [np.inf] * 6 + [1, 1])
    lo, hi, mean = s["ci_low"].values, s["ci_high"].values, s["mean"].values
    assert np.isfinite(lo).all() and np.isfinite(mean).all()
    # the data make the old Student-t interval leave the range in many cells ...
    t = st.t.ppf(0.975, s["count"].values - 1)
    bounded = np.isfinite(s["support_low"].values)
    naive_low = mean - t * s["sem"].values
    assert (naive_low[:, bounded] < 0).sum() >= 40
    assert (mean + t * s["sem"].values)[:, variables.index("phase_fraction_0")].max() > 1
    # ... the intervals do not
    assert (lo >= s["support_low"].values).all() and (hi <= s["support_high"].values).all()
    assert (lo <= hi).all()
    method = s["ci_method"].values
    positive = [variables.index(v) for v in ("conductivity_eigenvalues_0", "conductivity_eigenvalues_1",
                                             "conductivity_0_0", "conductivity_1_1")]
    assert (method[:, positive] == "cox-log").all() and (lo[:, positive] > 0).all()
    # the isotropic sample puts a 0 into point 0's anisotropy index: no log scale, t cut at 0
    aniso = variables.index("anisotropy_index")
    assert method[0, aniso] == "t∩support" and lo[0, aniso] == 0.0
    assert (method[1:, aniso] == "cox-log").all() and (lo[1:, aniso] > 0).all()
    # fractions: t cut to [0, 1]; off-diagonal entries: plain t (unbounded)
    for v in ("phase_fraction_0", "phase_fraction_1"):
        assert set(method[:, variables.index(v)]) <= {"t", "t∩support"}
    assert "t∩support" in set(method[:, variables.index("phase_fraction_1")])
    assert set(method[:, variables.index("conductivity_0_1")]) == {"t"}
    assert set(method.ravel()) <= set(CI_METHODS)


def test_summarize_elasticity_supports_and_bootstrap_cut():
    """Bulk/shear moduli and diagonal stiffness entries are positive; with 20 samples or more the
    bootstrap runs and stays positive, and its method string is the plain one unless it was cut."""
    rng = np.random.default_rng(4)
    n = 25
    bulk, shear = np.exp(rng.normal(1.0, 0.8, n)), np.exp(rng.normal(0.0, 0.8, n))
    c = np.stack([isotropic_stiffness(k, g, 3) for k, g in zip(bulk, shear)])
    props = xr.Dataset({"stiffness": (("sample", "i", "j"), c), "bulk_modulus": ("sample", bulk),
                        "shear_modulus": ("sample", shear)},
                       coords={"sample": np.arange(n), "group": ("sample", [0] * 3 + [1] * 22)},
                       attrs={"physics": "elasticity", "dim": 3})
    s = summarize(props, variables=["bulk_modulus", "shear_modulus", "stiffness_0_0", "stiffness_0_1"],
                  n_boot=500, rng=0)
    np.testing.assert_array_equal(s["support_low"].values, [0, 0, 0, -np.inf])
    method = s["ci_method"].values
    assert list(method[0]) == ["cox-log", "cox-log", "cox-log", "t"]
    assert list(method[1]) == ["BCa"] * 4
    assert (s["ci_low"].values[:, :3] > 0).all()


def test_mean_ci_method_strings():
    pos = (0.0, np.inf)
    # a positive quantity, few values: the log scale, strictly positive lower end
    lo, hi, m = mean_confidence_interval([0.1, 3.0, 0.4], support=pos)
    assert m == "cox-log" and 0 < lo < hi
    # the same values without a support: the old Student-t interval, which goes below zero
    lo_t, _, m_t = mean_confidence_interval([0.1, 3.0, 0.4])
    assert m_t == "t" and lo_t < 0
    # a value on the bound (an isotropic sample's anisotropy index): t, cut at 0
    assert mean_confidence_interval([0.0, 3.0, 0.4], support=pos)[::2] == (0.0, "t∩support")
    # two-sided range (a phase fraction): t cut only when it leaves the range; never "-0"
    lo, hi, m = mean_confidence_interval([0.001, 0.3, 0.002], support=(0.0, 1.0))
    assert (lo, m) == (0.0, "t∩support") and np.copysign(1.0, lo) == 1.0 and hi < 1
    assert mean_confidence_interval([0.999, 0.7, 0.998], support=(0.0, 1.0))[1:] == (1.0, "t∩support")
    assert mean_confidence_interval([0.50, 0.52, 0.51], support=(0.0, 1.0))[2] == "t"
    # a shifted or an upper bound: the log scale of x - low or of high - x
    lo, hi, m = mean_confidence_interval([1.1, 4.0, 1.5], support=(1.0, np.inf))
    assert m == "cox-log" and 1.0 < lo < hi
    lo, hi, m = mean_confidence_interval([-0.1, -3.0, -0.4], support=(-np.inf, 0.0))
    assert m == "cox-log" and lo < hi < 0.0
    np.testing.assert_allclose((lo, hi), (-np.array(mean_confidence_interval([0.1, 3.0, 0.4], support=pos)[1::-1])))
    # forced t: still inside the range
    assert mean_confidence_interval([0.1, 3.0, 0.4], method="t", support=pos)[::2] == (0.0, "t∩support")
    # bootstrap: cut when it leaves the range (the basic interval 2 x_bar - q reflects a long right tail)
    x = np.r_[np.full(19, 0.01), 100.0]
    lo_b, _, m_b = mean_confidence_interval(x, n_boot=500, rng=0, method="basic")
    assert lo_b < 0 and m_b == "basic"
    assert mean_confidence_interval(x, n_boot=500, rng=0, method="basic", support=pos)[::2] == (0.0,
                                                                                                "basic∩support")
    lo, _, m = mean_confidence_interval(np.exp(np.random.default_rng(1).normal(0, 1, 30)), rng=0, support=pos)
    assert m == "BCa" and lo > 0
    # constant values: degenerate inside the range, no interval outside it
    assert mean_confidence_interval([0.2, 0.2], support=(0.0, 1.0)) == (0.2, 0.2, "degenerate")
    lo, hi, m = mean_confidence_interval([-1.0, -2.0, -1.5], support=(0.0, 1.0))
    assert m == "outside-support" and np.isnan(lo) and np.isnan(hi)
    for bad in ((1.0, 0.0), (0.0, np.nan), (0.0,), "positive", None):
        with pytest.raises(InputError, match="support must"):
            mean_confidence_interval([1.0, 2.0], support=bad)


def test_cox_log_interval_formula_and_input():
    # Olsson (2005): exp(y_bar + s^2/2 +- t_{n-1} sqrt(s^2/n + s^4/(2(n-1)))), y = log x
    x = np.array([2.0, 5.0, 3.0, 11.0])
    y = np.log(x)
    ybar, s2, n = y.mean(), y.var(ddof=1), x.size
    half = st.t.ppf(0.95, n - 1) * np.sqrt(s2 / n + s2**2 / (2 * (n - 1)))
    np.testing.assert_allclose(cox_log_interval(x, 0.90), np.exp([ybar + s2 / 2 - half, ybar + s2 / 2 + half]),
                               rtol=1e-13)
    # scale equivariant: a change of units scales the interval
    np.testing.assert_allclose(cox_log_interval(1e9 * x), 1e9 * np.array(cox_log_interval(x)), rtol=1e-12)
    lo, hi = cox_log_interval(np.ones((3, 2)) + np.arange(6).reshape(3, 2), axis=1)
    assert lo.shape == hi.shape == (3,)
    for bad in ([1.0, 0.0, 2.0], [1.0, -1.0], [1.0, np.nan], [1.0]):
        with pytest.raises(InputError, match="cox_log_interval needs"):
            cox_log_interval(bad)


@pytest.mark.parametrize(("name", "physics", "expected"), [
    ("bulk_modulus", None, (0.0, np.inf)),
    ("shear_modulus", "elasticity", (0.0, np.inf)),
    ("anisotropy_index", "conductivity", (0.0, np.inf)),
    ("volume", None, (0.0, np.inf)),
    ("mean_conductivity", None, (0.0, np.inf)),
    ("conductivity_eigenvalues", None, (0.0, np.inf)),
    ("conductivity_eigenvalues_2", "conductivity", (0.0, np.inf)),
    ("conductivity_1_1", None, (0.0, np.inf)),
    ("conductivity_0_1", "conductivity", (-np.inf, np.inf)),
    ("stiffness_3_3", "elasticity", (0.0, np.inf)),
    ("stiffness_0_1", None, (-np.inf, np.inf)),
    ("stiffness_2_2", "conductivity", (-np.inf, np.inf)),  # not this physics' tensor
    ("phase_fraction_1", None, (0.0, 1.0)),
    ("phase_fraction", None, (0.0, 1.0)),
    ("volume_fraction", None, (0.0, 1.0)),
    ("phase_fraction_0_1", None, (-np.inf, np.inf)),
    ("residual", None, (-np.inf, np.inf)),
    ("z", None, (-np.inf, np.inf)),
    ("bulk_modulus_1", None, (-np.inf, np.inf)),
])
def test_quantity_support(name, physics, expected):
    assert quantity_support(name, physics) == expected


def test_quantity_support_input_errors():
    with pytest.raises(InputError, match="physics must be"):
        quantity_support("bulk_modulus", "optics")
    with pytest.raises(InputError, match="must be a string"):
        quantity_support(3)


def test_summarize_old_outputs_unchanged_for_unbounded_quantities():
    # quantities of unknown range keep the plain Student-t interval of before
    ds, _ = _coverage_dataset(5, 4, seed=3)
    s = summarize(ds, by=["cell"], variables="z", rng=0)
    assert set(s["ci_method"].values.ravel()) == {"t"}
    t = st.t.ppf(0.975, 3)
    np.testing.assert_allclose(s["ci_low"].values, s["mean"].values - t * s["sem"].values, rtol=1e-12)
    assert float(s["support_low"][0]) == -np.inf
