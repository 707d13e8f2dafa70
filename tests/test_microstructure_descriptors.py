"""Morphological descriptors against brute-force counts and exact results on deterministic images.

Every oracle here is exact (direct averages over shifts, pair counts, run-length counts,
closed-form values for laminates and lines) except the digitized disk/ball surfaces,
whose tolerances come from the digitization error. Comparisons with the statistics of
random models live elsewhere.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import xarray as xr

import stochhom as sh
from stochhom.errors import InputError, RepresentativenessWarning
from stochhom.microstructure import (
    chord_lengths,
    correlation_length,
    describe,
    integral_range,
    lineal_path,
    radial_average,
    specific_surface,
    two_point_probability,
    volume_fractions,
)

# FFT-based correlations of O(100) voxels in float64: round-off ~1e-15, far below 1e-12.
EXACT = 1e-12


def _random_labels(shape: tuple[int, ...], seed: int, p: float = 0.4) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < p).astype(np.uint8)


def _laminate(shape: tuple[int, ...], axis: int, counts: list[int], periods: int) -> np.ndarray:
    """Layers normal to ``axis``: a period of counts[0] planes of phase 1, counts[1] of phase 0."""
    assert sum(counts) * periods == shape[axis]
    profile = np.tile(np.repeat([1, 0], counts), periods).astype(np.uint8)
    shp = [1] * len(shape)
    shp[axis] = shape[axis]
    return np.broadcast_to(profile.reshape(shp), shape).copy()


def _ball(n: int, dim: int, radius: float, centre: float | None = None) -> np.ndarray:
    c = n / 2 if centre is None else centre
    x = np.arange(n) + 0.5 - c
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    return (sum(g**2 for g in grids) < radius**2).astype(np.uint8)


def _lags(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Lag of every index of the centred (fftshift) output, per axis: -n//2 .. n - n//2 - 1."""
    return [np.arange(-(n // 2), n - n // 2) for n in shape]


def _s2_periodic_brute(ind: np.ndarray, lag: tuple[int, ...]) -> float:
    # <I(x) I(x + r)> over the periodic cell: np.roll(I, -r)[x] = I[x + r]
    return float(np.mean(ind * np.roll(ind, [-r for r in lag], axis=tuple(range(ind.ndim)))))


def _s2_open_brute(ind: np.ndarray, lag: tuple[int, ...]) -> float:
    # pairs (x, x + r) with both points in the image, by explicit slicing
    a = ind[tuple(slice(max(0, -r), n - max(0, r)) for n, r in zip(ind.shape, lag))]
    b = ind[tuple(slice(max(0, r), n - max(0, -r)) for n, r in zip(ind.shape, lag))]
    pairs = np.prod([n - abs(r) for n, r in zip(ind.shape, lag)])
    assert a.size == pairs
    return float(np.sum(a * b)) / pairs


def _runs_brute(line: np.ndarray, periodic: bool) -> list[int]:
    """Lengths of the runs of ones in a 1D 0/1 line, by walking it."""
    n = line.size
    if periodic:
        if line.all():
            return []  # an infinite chord
        start = int(np.argmin(line))  # a zero: no run crosses it
        line = np.roll(line, -start)
    runs, count, touches = [], 0, False
    for i, v in enumerate(line):
        if v:
            if count == 0:
                touches = i == 0
            count += 1
        elif count:
            runs.append((count, touches))
            count = 0
    if count:
        runs.append((count, True))
    if periodic:
        return [c for c, _ in runs]
    return [c for c, t in runs if not t and c < n]  # drop chords cut by the border


def _lines(ind: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(ind, axis, -1).reshape(-1, ind.shape[axis])


# ----------------------------------------------------------------------------- two-point probability
@pytest.mark.parametrize("shape", [(7, 10), (8, 8), (5, 6, 4)])
def test_periodic_s2_equals_the_direct_average_over_all_shifts(shape: tuple[int, ...]) -> None:
    image = _random_labels(shape, seed=sum(shape))
    h = 0.5
    s2 = two_point_probability(image, voxel_size=h)
    assert s2.dims == ("dx", "dy", "dz")[: len(shape)]
    assert s2.shape == shape
    for ax, lags in zip(s2.dims, _lags(shape)):
        np.testing.assert_array_equal(s2[ax].values, lags * h)  # lags in physical units
    brute = np.empty(shape)
    for idx in itertools.product(*[range(n) for n in shape]):
        brute[idx] = _s2_periodic_brute(image.astype(float), tuple(lag[i] for lag, i in zip(_lags(shape), idx)))
    np.testing.assert_allclose(s2.values, brute, rtol=0, atol=EXACT)
    # S2(0) is the phase fraction
    assert abs(s2.sel({d: 0.0 for d in s2.dims}).item() - image.mean()) < EXACT


def test_s2_of_the_other_phase_follows_from_the_indicator_identity() -> None:
    # I0 = 1 - I1  =>  S2^(0)(r) = 1 - 2 phi1 + S2^(1)(r), exactly
    image = _random_labels((9, 12), seed=3)
    s1 = two_point_probability(image, phase=1)
    s0 = two_point_probability(image, phase=0)
    np.testing.assert_allclose(s0.values, 1 - 2 * image.mean() + s1.values, rtol=0, atol=EXACT)


@pytest.mark.parametrize("shape", [(6, 8), (4, 6, 5)])
def test_periodic_s2_of_a_tiled_image_equals_the_original(shape: tuple[int, ...]) -> None:
    image = _random_labels(shape, seed=7)
    tiled = np.tile(image, (2,) * len(shape))
    s2 = two_point_probability(image)
    s2_tiled = two_point_probability(tiled)
    assert s2_tiled.shape == tuple(2 * n for n in shape)
    # the tiling has lags -n .. n-1; its centred window of lags -n//2 .. n - n//2 - 1 is the original's
    window = s2_tiled.sel({d: s2[d].values for d in s2.dims})
    np.testing.assert_allclose(window.values, s2.values, rtol=0, atol=EXACT)
    # and the tiling's S2 has period n in the lag: r -> r - n (r >= 0) or r + n (r < 0), on every axis at once
    far = s2_tiled.sel({d: np.mod(s2[d].values, 2 * n) - n for d, n in zip(s2.dims, shape)})
    np.testing.assert_allclose(far.values, s2.values, rtol=0, atol=EXACT)


@pytest.mark.parametrize("shape", [(7, 10), (8, 6), (5, 6, 4)])
def test_non_periodic_s2_equals_the_direct_pair_count(shape: tuple[int, ...]) -> None:
    image = _random_labels(shape, seed=11 + len(shape))
    s2 = two_point_probability(image, periodic=False)
    lags = _lags(shape)
    for idx in itertools.product(*[range(n) for n in shape]):
        lag = tuple(lag_axis[i] for lag_axis, i in zip(lags, idx))
        assert all(abs(r) <= n / 2 for r, n in zip(lag, shape))  # the output covers |r_j| <= n_j/2
        assert abs(s2.values[idx] - _s2_open_brute(image.astype(float), lag)) < EXACT, lag


def test_non_periodic_s2_differs_from_the_periodic_one() -> None:
    # a half-space: periodic S2 falls linearly to 0 at half the box; the open estimator stays positive
    image = np.zeros((8, 8), np.uint8)
    image[:4] = 1
    per = two_point_probability(image, periodic=True).sel(dy=0.0)
    opn = two_point_probability(image, periodic=False).sel(dy=0.0)
    np.testing.assert_allclose(per.values, np.maximum(4 - np.abs(per["dx"].values), 0) / 8, atol=EXACT)
    # open: pairs at lag r with both in the upper half: (4 - |r|) of (8 - |r|) rows
    np.testing.assert_allclose(opn.values, (4 - np.abs(opn["dx"].values)) / (8 - np.abs(opn["dx"].values)),
                               atol=EXACT)


def test_ensembles_use_their_periodic_attribute() -> None:
    ens = sh.generate("gaussian", (12, 12), 2, 5, volume_fraction=0.4, correlation_length=1.0)
    full = two_point_probability(ens)
    assert full.dims == ("sample", "dx", "dy")
    for k in range(2):
        np.testing.assert_array_equal(full.values[k], two_point_probability(ens["phase"].values[k]).values)
    win = sh.windows(ens, 6)  # periodic = 0: the open estimator
    s2w = two_point_probability(win)
    for k in range(win.sizes["sample"]):
        np.testing.assert_allclose(s2w.values[k], two_point_probability(win["phase"].values[k], periodic=False),
                                   rtol=0, atol=EXACT)
    # a bare DataArray of the ensemble is an ensemble too, not one 3D image
    np.testing.assert_array_equal(two_point_probability(ens["phase"]).values, full.values)


# ----------------------------------------------------------------------------- radial average
def _bins_brute(full: xr.DataArray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean |r| and mean value in bins [(k - 1/2) w, (k + 1/2) w), k up to half the smallest box."""
    grids = np.meshgrid(*[full[d].values for d in full.dims], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grids))
    rmax = min(np.abs(full[d].values).max() for d in full.dims)
    k = np.floor(r / width + 0.5)
    rs, vs = [], []
    for b in range(int(np.floor(rmax / width + 0.5)) + 1):
        sel = k == b
        rs.append(r[sel].mean())
        vs.append(full.values[sel].mean())
    return np.array(rs), np.array(vs)


@pytest.mark.parametrize("width", [None, 2.0])
def test_radial_average_bins_are_means_over_annuli(width: float | None) -> None:
    image = _random_labels((12, 10), seed=4)
    s2 = two_point_probability(image)
    rad = radial_average(s2, bin_width=width)
    r, v = _bins_brute(s2, 1.0 if width is None else width)
    np.testing.assert_allclose(rad["r"].values, r, rtol=0, atol=EXACT)  # r is the mean |r| of its bin
    np.testing.assert_allclose(rad.values, v, rtol=0, atol=EXACT)
    assert rad["r"].values[0] == 0.0
    assert abs(rad.values[0] - image.mean()) < EXACT  # S2(0) = phi
    assert rad["r"].values[-1] <= 5.0 + 0.5 * (1.0 if width is None else width)  # half the smallest box


def test_radial_average_reproduces_a_radial_profile() -> None:
    # a profile linear in |r| averages to its value at the mean |r| of each bin: exact
    lags = [np.arange(-8, 8) * 0.25, np.arange(-6, 6) * 0.25, np.arange(-7, 7) * 0.25]
    grids = np.meshgrid(*lags, indexing="ij")
    r = np.sqrt(sum(g**2 for g in grids))
    field = xr.DataArray(3.0 - 0.7 * r, dims=("dx", "dy", "dz"), coords=dict(zip(("dx", "dy", "dz"), lags)))
    rad = radial_average(field)
    np.testing.assert_allclose(rad.values, 3.0 - 0.7 * rad["r"].values, rtol=0, atol=EXACT)
    assert abs(np.diff(rad["r"].values).mean() - 0.25) < 0.05  # bins of one voxel (0.25)
    # a smooth profile: within a bin |r| spreads by at most +-h/2, so the error is <= |f''| h^2 / 8
    f = xr.DataArray(np.exp(-(r**2)), dims=field.dims, coords=field.coords)
    rad_f = radial_average(f)
    np.testing.assert_allclose(rad_f.values, np.exp(-rad_f["r"].values ** 2), rtol=0, atol=2 * 0.25**2 / 8)


# ----------------------------------------------------------------------------- specific surface
@pytest.mark.parametrize(("radius", "centre"), [(20.0, None), (19.6, 31.3)])
def test_perimeter_density_of_a_digitized_disk(radius: float, centre: float | None) -> None:
    n = 64
    disk = _ball(n, 2, radius, centre)
    exact = 2 * np.pi * radius / n**2
    # Cauchy-Crofton is exact for the true disk; digitization moves each crossing by < 1/2 voxel
    assert specific_surface(disk).item() == pytest.approx(exact, rel=0.03)
    # the phases share the interface; the value is 1/length: a voxel size h divides it by h
    assert specific_surface(disk, phase=0).item() == pytest.approx(specific_surface(disk).item(), rel=EXACT)
    assert specific_surface(disk, voxel_size=0.5).item() == pytest.approx(2 * specific_surface(disk).item(),
                                                                        rel=EXACT)


def test_surface_density_of_a_digitized_ball_and_the_face_count_bias() -> None:
    n, radius = 40, 12.0
    ball = _ball(n, 3, radius)
    exact = 4 * np.pi * radius**2 / n**3
    assert specific_surface(ball).item() == pytest.approx(exact, rel=0.04)  # digitization of a 12-voxel ball
    # counting voxel faces gives d * P_L instead of 2 * P_L: 3/2 times too much in 3D
    faces = sum(np.count_nonzero(ball != np.roll(ball, -1, axis=a)) for a in range(3)) / n**3
    assert 1.35 <= faces / exact <= 1.65


@pytest.mark.parametrize("dim", [2, 3])
def test_laminate_crossings_along_the_normal(dim: int) -> None:
    shape = (32, 8, 6)[:dim]
    lam = _laminate(shape, 0, [3, 5], 4)  # period 8: two interfaces per period along x, none across
    pl_normal = 2 / 8
    factor = np.pi / 2 if dim == 2 else 2.0
    assert specific_surface(lam).item() == pytest.approx(factor * pl_normal / dim, rel=EXACT)
    # open lines of 32 voxels: 31 neighbour pairs, of which 7 straddle an interface (the wrap-around one is gone)
    assert specific_surface(lam, periodic=False).item() == pytest.approx(factor * (7 / 31) / dim, rel=EXACT)
    # the true interface density of the laminate is 2 per period; the estimate along the normal alone is exact
    assert specific_surface(lam).item() * dim / factor == pytest.approx(2 / 8, rel=EXACT)


# ----------------------------------------------------------------------------- lineal path and chords
def test_laminate_chords_are_the_layer_thickness() -> None:
    lam = _laminate((32, 10), 0, [3, 5], 4)
    ch = chord_lengths(lam)
    assert ch.dims == ("axis", "length")
    assert ch.sel(axis="x", length=3.0).item() == 1.0 and ch.sel(axis="x").sum().item() == 1.0
    assert ch.sel(axis="y").sum().item() == 0.0  # lines along the layers never end: no finite chord
    ch0 = chord_lengths(lam, phase=0, voxel_size=0.5)
    assert ch0.sel(axis="x", length=2.5).item() == 1.0  # 5 voxels of 0.5
    # shifting the layers across the periodic border changes nothing
    np.testing.assert_array_equal(chord_lengths(np.roll(lam, 2, axis=0)).values, ch.values)


@pytest.mark.parametrize("periodic", [True, False])
def test_chord_lengths_equal_a_direct_run_count(periodic: bool) -> None:
    image = _random_labels((9, 13, 7), seed=21, p=0.6)
    ch = chord_lengths(image, periodic=periodic)
    for ax, name in enumerate("xyz"):
        runs = [c for line in _lines(image, ax) for c in _runs_brute(line, periodic)]
        expected = np.bincount(runs, minlength=ch.sizes["length"]) / len(runs)
        np.testing.assert_allclose(ch.sel(axis=name).values, expected, rtol=0, atol=EXACT)


def test_open_chords_exclude_those_cut_by_the_border() -> None:
    line = np.array([[1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1]], np.uint8)
    ch = chord_lengths(line, periodic=False).sel(axis="y")
    expected = np.zeros(ch.size)
    expected[[1, 3]] = 0.5  # the interior chords 1 and 3; the border ones (2 and 1) are cut
    np.testing.assert_array_equal(ch.values, expected)
    chp = chord_lengths(line, periodic=True).sel(axis="y")
    expected_p = np.zeros(chp.size)
    expected_p[1], expected_p[3] = 1 / 3, 2 / 3  # 1 + 1 + ... wrap: (1, 1 | 1) joins into a chord of 3
    np.testing.assert_allclose(chp.values, expected_p, rtol=0, atol=EXACT)


@pytest.mark.parametrize("start", [4, 17])  # 17: the layer wraps around the periodic border
def test_lineal_path_of_one_layer_on_a_periodic_line(start: int) -> None:
    n, t = 20, 6
    row = np.zeros(n, np.uint8)
    row[np.arange(start, start + t) % n] = 1
    image = np.tile(row, (n, 1))  # every line along y is `row`; along x every line is constant
    lp = lineal_path(image, max_length=n - 1)
    z = np.arange(n)
    np.testing.assert_allclose(lp.sel(axis="y").values, np.maximum(t - z, 0) / n, rtol=0, atol=EXACT)
    # along x: t full lines (L = 1 for every z) out of n
    np.testing.assert_allclose(lp.sel(axis="x").values, np.full(n, t / n), rtol=0, atol=EXACT)
    # default: z up to half the smallest box, in physical units
    lp_h = lineal_path(image, voxel_size=0.5)
    np.testing.assert_array_equal(lp_h["z"].values, np.arange(n // 2 + 1) * 0.5)


def test_lineal_path_of_an_open_line_counts_segments_inside_the_image() -> None:
    n = 20
    row = np.zeros(n, np.uint8)
    row[[17, 18, 19, 0, 1, 2]] = 1  # two chords of 3 once the border is not periodic
    lp = lineal_path(np.tile(row, (4, 1)), periodic=False, max_length=n - 1).sel(axis="y")
    z = np.arange(n)
    np.testing.assert_allclose(lp.values, 2 * np.maximum(3 - z, 0) / (n - z), rtol=0, atol=EXACT)


def test_a_line_entirely_in_the_phase_has_lineal_path_one() -> None:
    image = np.ones((8, 6), np.uint8)
    np.testing.assert_array_equal(lineal_path(image, max_length=7).values, np.ones((2, 8)))
    np.testing.assert_array_equal(lineal_path(image, phase=0).values, 0.0)


@pytest.mark.parametrize("periodic", [True, False])
def test_lineal_path_equals_a_direct_segment_count(periodic: bool) -> None:
    image = _random_labels((10, 12, 9), seed=8, p=0.7)
    lp = lineal_path(image, periodic=periodic, max_length=6)
    for ax, name in enumerate("xyz"):
        lines = _lines(image, ax).astype(bool)
        n = lines.shape[1]
        for z in range(7):
            if periodic:
                inside = np.ones_like(lines)
                for s in range(z + 1):
                    inside &= np.roll(lines, -s, axis=1)
                expected = inside.mean()
            else:
                inside = np.ones((lines.shape[0], n - z), bool)
                for s in range(z + 1):
                    inside &= lines[:, s:n - z + s]
                expected = inside.mean()
            assert abs(lp.sel(axis=name).values[z] - expected) < EXACT, (name, z)
        assert abs(lp.sel(axis=name).values[0] - image.mean()) < EXACT  # L(0) = phi


# ----------------------------------------------------------------------------- fractions and describe
def test_volume_fractions_sum_to_one_per_sample() -> None:
    ens = sh.generate("voronoi", (10, 10), 3, 2, n_grains=5)
    vf = volume_fractions(ens)
    assert vf.dims == ("sample", "phase")
    np.testing.assert_allclose(vf.sum("phase").values, 1.0, rtol=0, atol=EXACT)
    for k in range(3):
        counts = np.bincount(ens["phase"].values[k].ravel(), minlength=vf.sizes["phase"])
        np.testing.assert_allclose(vf.values[k], counts / 100, rtol=0, atol=EXACT)
    single = volume_fractions(np.array([[0, 2], [2, 2]], np.uint8))
    np.testing.assert_allclose(single.values, [0.25, 0.0, 0.75], rtol=0, atol=EXACT)


DESCRIBED = ("phase_fraction", "s2", "specific_surface", "lineal_path", "mean_chord", "correlation_length",
             "integral_range")


def test_describe_an_ensemble_keeps_its_per_sample_coordinates() -> None:
    ens = sh.generate("gaussian", (16, 16), 3, 6, voxel_size=0.5, volume_fraction=0.4, correlation_length=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepresentativenessWarning)  # describe itself must not warn
        d = describe(ens)
    assert set(DESCRIBED) <= set(d.data_vars)
    for v in DESCRIBED:
        assert d[v].dims[0] == "sample" and d[v].sizes["sample"] == 3, v
    assert d["s2"].dims == ("sample", "r")
    assert d["lineal_path"].dims == ("sample", "axis", "z")
    assert d["mean_chord"].dims == ("sample", "axis")
    for c in ("specimen", "seed", "volume_fraction"):
        np.testing.assert_array_equal(d[c].values, ens[c].values)
        assert d[c].dims == ("sample",)
    # the generator parameter named like the measured correlation length does not replace it
    np.testing.assert_array_equal(d["correlation_length_parameter"].values, ens["correlation_length"].values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RepresentativenessWarning)
        np.testing.assert_allclose(d["correlation_length"].values, correlation_length(ens).values, atol=EXACT)
    np.testing.assert_allclose(d["integral_range"].values, integral_range(ens).values, atol=EXACT)
    # the variables are the descriptors computed one by one
    np.testing.assert_allclose(d["phase_fraction"].values, ens["phase"].mean(("x", "y")).values, atol=EXACT)
    np.testing.assert_allclose(d["s2"].values, radial_average(two_point_probability(ens)).values, atol=EXACT)
    np.testing.assert_allclose(d["specific_surface"].values, specific_surface(ens).values, atol=EXACT)
    np.testing.assert_allclose(d["lineal_path"].values, lineal_path(ens).values, atol=EXACT)
    ch = chord_lengths(ens)
    np.testing.assert_allclose(d["mean_chord"].values, (ch * ch["length"]).sum("length").values, atol=EXACT)
    assert d.attrs["periodic"] == 1 and d.attrs["voxel_size"] == 0.5


def test_describe_a_single_image_has_no_sample_dimension() -> None:
    lam = _laminate((24, 12), 0, [2, 4], 4)
    d = describe(lam)
    assert set(DESCRIBED) <= set(d.data_vars)
    for v in DESCRIBED:
        assert "sample" not in d[v].dims, v
    assert d["phase_fraction"].item() == pytest.approx(2 / 6, rel=EXACT)
    assert d["mean_chord"].sel(axis="x").item() == pytest.approx(2.0, rel=EXACT)  # the layer thickness
    assert d["mean_chord"].sel(axis="y").item() == 0.0  # no finite chord along the layers
    assert d["s2"].sel(r=0.0).item() == pytest.approx(2 / 6, rel=EXACT)
    # the same image as a one-sample ensemble gives the same numbers
    ds = xr.Dataset({"phase": (("sample", "x", "y"), lam[None])}, attrs={"periodic": 1, "voxel_size": 1.0})
    d_ens = describe(ds)
    for v in DESCRIBED:
        np.testing.assert_allclose(d_ens[v].values[0], d[v].values, rtol=0, atol=EXACT)


# ----------------------------------------------------------------------------- correlation length / integral range
def test_correlation_length_and_integral_range_of_a_laminate_are_finite_and_positive() -> None:
    lam = _laminate((32, 32), 0, [2, 2], 8)  # period 4, much smaller than the box
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepresentativenessWarning)
        ell = correlation_length(lam).item()
    ir = integral_range(lam).item()
    assert np.isfinite(ell) and ell > 0
    assert np.isfinite(ir) and ir > 0
    # rho falls from 1 to 0 within the first zero of the radial average: the integral is below r0 <= period
    assert ell < 4.0
    # physical units: lengths scale with h, the 2D integral range with h^2
    assert correlation_length(lam, voxel_size=0.5).item() == pytest.approx(0.5 * ell, rel=EXACT)
    assert integral_range(lam, voxel_size=0.5).item() == pytest.approx(0.25 * ir, rel=EXACT)


def test_correlation_length_and_integral_range_of_a_checkerboard() -> None:
    i, j = np.indices((18, 18))
    board = (((i // 3) + (j // 3)) % 2).astype(np.uint8)  # 3x3 squares
    ell = correlation_length(board).item()
    ir = integral_range(board).item()
    assert 0 < ell < 3.0 and np.isfinite(ell)  # rho first vanishes before the square size
    assert 0 < ir <= 25.0 and np.isfinite(ir)  # rho <= 1 on the 25 lattice lags with |r| < 3
    # phi = 1/2, so rho = (S2 - 1/4) / (1/4); rho(0) = 1 and rho > 0 at the first bin (r1 = mean |r| of it),
    # so the integral up to the first zero holds at least the trapezoid from 0 to r1, and rho <= 1 bounds it above
    rad = radial_average(two_point_probability(board))
    rho = (rad.values - 0.25) / 0.25
    r1 = rad["r"].values[1]
    assert rho[0] == pytest.approx(1.0, abs=EXACT) and rho[1] > 0
    r0 = rad["r"].values[np.argmax(rho <= 0)]
    assert 0.5 * (1 + rho[1]) * r1 - EXACT <= ell <= r0


def test_correlation_length_warns_when_the_structure_fills_the_box() -> None:
    half = np.zeros((32, 32), np.uint8)
    half[:16] = 1
    with pytest.warns(RepresentativenessWarning, match="box"):
        ell = correlation_length(half).item()
    assert ell > 0.1 * 32


# ----------------------------------------------------------------------------- bad input
FUNCTIONS = [volume_fractions, two_point_probability, specific_surface, lineal_path, chord_lengths,
             correlation_length, integral_range, describe]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_float_images_are_rejected(func) -> None:
    with pytest.raises(InputError, match="integer"):
        func(np.random.default_rng(0).random((8, 8)))
    with pytest.raises(InputError, match="integer"):
        func(xr.Dataset({"phase": (("sample", "x", "y"), np.zeros((1, 8, 8)))}))


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(8,), (3, 3, 3, 3)])
def test_1d_and_4d_arrays_are_rejected(func, shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="2D or 3D"):
        func(np.zeros(shape, np.uint8))


def test_boolean_images_are_accepted_as_labels() -> None:
    image = _random_labels((8, 9), seed=2).astype(bool)
    np.testing.assert_array_equal(two_point_probability(image).values,
                                  two_point_probability(image.astype(np.uint8)).values)
