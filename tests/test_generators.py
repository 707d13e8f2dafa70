"""Inclusion, polycrystal and PoreSpy generators against exact statistics.

Boolean model (validation.md): for Poisson centres of intensity lambda and balls of
volume V1, a fixed point is uncovered with probability exp(-lambda V1), and two points
r apart with probability phi^2 exp(lambda V_cap(r)). The labels are the indicator at
voxel centres, so these hold exactly at grid lags, whatever the digitization.
Monte Carlo tolerances: 4 standard errors over the replicates.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import stochhom as sh
from stochhom.errors import GenerationError, InputError
from stochhom.microstructure import inclusions as inc
from stochhom.microstructure import polycrystal_phases, random_orientations
from stochhom.microstructure.ensemble import GENERATORS


def _within(samples: np.ndarray, expected: float, k: float = 4.0) -> bool:
    samples = np.asarray(samples, float)
    return abs(samples.mean() - expected) <= k * samples.std(ddof=1) / np.sqrt(samples.size) + 1e-12


def _cap_2d(r: np.ndarray, radius: float) -> np.ndarray:
    """Overlap area of two disks of radius R whose centres are r apart."""
    u = np.clip(r / (2 * radius), 0, 1)
    return 2 * radius**2 * (np.arccos(u) - u * np.sqrt(1 - u**2))


def _cap_3d(r: np.ndarray, radius: float) -> np.ndarray:
    v1 = 4 / 3 * np.pi * radius**3
    return np.where(r < 2 * radius, v1 * (1 - 3 * r / (4 * radius) + r**3 / (16 * radius**3)), 0.0)


def _pair_probability(images: np.ndarray, lag: tuple[int, ...], label: int) -> np.ndarray:
    ind = (images == label).astype(float)
    axes = tuple(range(1, images.ndim))
    return np.mean(ind * np.roll(ind, tuple(-v for v in lag), axis=axes), axis=axes)


@pytest.mark.parametrize("dim", [2, 3])
def test_boolean_model_fraction_and_two_point_probability(dim: int) -> None:
    n, radius, phi_inc = (96, 6.0, 0.35) if dim == 2 else (32, 3.5, 0.3)
    count = 40 if dim == 2 else 25
    ens = sh.generate("boolean", (n,) * dim, n=count, rng=7, volume_fraction=phi_inc, radius=radius)
    images = ens["phase"].values
    phi0 = 1 - phi_inc  # matrix fraction exp(-lambda V1) by construction of lambda
    assert _within((images == 0).mean(axis=tuple(range(1, dim + 1))), phi0)
    lam = -np.log(phi0) / (np.pi * radius**2 if dim == 2 else 4 / 3 * np.pi * radius**3)
    cap = _cap_2d if dim == 2 else _cap_3d
    zeros = (0,) * (dim - 1)
    lags = [(1, *zeros), (3,) + (1,) * (dim - 1), (*zeros, 5), (2,) * dim, (9, *zeros)]
    for lag in lags:
        r = float(np.linalg.norm(lag))
        expected = phi0**2 * np.exp(lam * cap(np.array(r), radius))
        assert _within(_pair_probability(images, lag, 0), float(expected)), lag


def test_boolean_lineal_path_2d() -> None:
    """Matrix lineal path L(z) = phi exp(-2 lambda R z) for a continuous segment; the
    voxel version tests z+1 points one voxel apart, whose union of disks misses the thin
    slivers between consecutive disks (relative area loss ~ 1/(12 R^2) per step), so the
    comparison allows 1 % on top of 4 SE."""
    radius, phi0, n = 6.0, 0.65, 96
    ens = sh.generate("boolean", (n, n), n=40, rng=11, volume_fraction=1 - phi0, radius=radius)
    lp = sh.microstructure.lineal_path(ens, phase=0)
    lam = -np.log(phi0) / (np.pi * radius**2)
    for z in (0, 2, 5, 10):
        values = lp.sel(z=float(z)).values.reshape(-1)  # both axes, all samples
        expected = phi0 * np.exp(-2 * lam * radius * z)
        se = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - expected) <= 4 * se + 0.01 * expected, z


def test_polydisperse_boolean_fraction() -> None:
    """Log-normal radii: lambda = -ln(1 - phi) / (pi E[R^2]) gives the target fraction."""
    ens = sh.generate("boolean", (96, 96), n=30, rng=2, volume_fraction=0.4, radius=5.0, radius_std=2.0)
    assert _within((ens["phase"].values == 1).mean(axis=(1, 2)), 0.4)


@pytest.mark.parametrize(("dim", "clearance", "std"), [(2, 0.0, 0.0), (2, 1.5, 1.0), (3, 1.0, 0.0)])
def test_rsa_has_no_overlaps_under_periodic_images(dim: int, clearance: float, std: float) -> None:
    shape = (64, 48) if dim == 2 else (32, 32, 24)
    rng = np.random.default_rng(3)
    target = 0.3 if dim == 2 else 0.2  # with the clearance, 0.3 in 3D is past RSA jamming
    centres, radii = inc.rsa_centres(shape, rng, target, 4.0, std, clearance)
    box = np.array(shape, float)
    d = centres[:, None, :] - centres[None, :, :]
    d -= box * np.round(d / box)  # minimum image
    dist = np.linalg.norm(d, axis=-1)
    gap = dist - radii[:, None] - radii[None, :]
    np.fill_diagonal(gap, np.inf)
    assert gap.min() >= clearance - 1e-12
    assert sum(inc.ball_volume(radii, dim)) >= target * np.prod(shape)
    # the digitized balls do not share a voxel either
    count = np.zeros(shape, dtype=int)
    for c, r in zip(centres, radii):
        one = np.zeros(shape, dtype=np.uint8)
        inc.draw_ball(one, c, r)
        count += one
    assert count.max() == 1


def test_rsa_fails_clearly_beyond_jamming() -> None:
    with pytest.raises(GenerationError, match=r"reached volume fraction 0\.[3-5]\d* but not the target 0\.7"):
        sh.generate("rsa", (48, 48), n=1, rng=0, volume_fraction=0.7, radius=3.0, max_attempts=2000)


def test_fibre_orientation_distributions() -> None:
    rng = np.random.default_rng(0)
    d = np.array([0.0, 0.0, 1.0])
    _, aligned = inc.fibre_axes((40, 40, 40), rng, 0.2, 1.5, 8.0, "aligned", d)
    np.testing.assert_allclose(aligned, np.tile(d, (len(aligned), 1)))
    _, planar = inc.fibre_axes((60, 60, 60), rng, 0.3, 1.0, 6.0, "planar", d)
    assert np.abs(planar @ d).max() < 1e-12  # in the plane normal to d
    cos2 = np.cos(2 * np.arctan2(planar[:, 1], planar[:, 0]))
    assert _within(cos2, 0.0)  # uniform in-plane angle
    _, iso = inc.fibre_axes((60, 60, 60), rng, 0.3, 1.0, 6.0, "isotropic", d)
    assert _within(iso[:, 2] ** 2, 1.0 / 3.0)  # E[cos^2] = 1/3 on the sphere
    assert _within(np.abs(iso[:, 2]), 0.5)


def test_boolean_fibre_fraction() -> None:
    """Overlapping cylinders: P(point uncovered) = exp(-lambda pi r^2 l) exactly."""
    ens = sh.generate("fibres", (40, 40, 40), n=12, rng=5, volume_fraction=0.2, radius=1.5, aspect_ratio=4)
    assert _within((ens["phase"].values == 1).mean(axis=(1, 2, 3)), 0.2)


def test_hard_core_fibres_do_not_touch() -> None:
    rng = np.random.default_rng(1)
    shape, r, length, gap = (40, 40, 40), 1.5, 12.0, 1.0
    mids, dirs = inc.fibre_axes(shape, rng, 0.1, r, length, "isotropic", None, overlap=False, clearance=gap)
    box = np.array(shape, float)
    for i in range(len(mids)):
        rel = mids - mids[i]
        rel -= box * np.round(rel / box)
        others = np.arange(len(mids)) != i
        p1 = mids[i] - 0.5 * length * dirs[i]
        p2 = (mids[i] + rel[others]) - 0.5 * length * dirs[others]
        assert inc._segment_distance(p1, dirs[i], p2, dirs[others], length).min() >= 2 * r + gap - 1e-9


def test_aligned_ellipses_2d() -> None:
    """Fraction 1 - exp(-lambda pi a b), and the long axis along `angle`: correlation
    longer along x (angle 0) than along y."""
    ens = sh.generate("fibres", (96, 96), n=20, rng=4, volume_fraction=0.3, radius=8.0, aspect_ratio=4.0)
    images = ens["phase"].values
    assert _within((images == 1).mean(axis=(1, 2)), 0.3)
    along = _pair_probability(images, (4, 0), 1).mean()
    across = _pair_probability(images, (0, 4), 1).mean()
    assert along > across + 0.05


def test_voronoi_labels_are_nearest_seeds() -> None:
    """Each voxel carries the label of its nearest seed under the minimum-image distance."""
    shape, n_grains, seed = (20, 16, 12), 15, 123
    labels, extra = sh.microstructure.tessellation.voronoi(shape, np.random.default_rng(seed), n_grains=n_grains)
    seeds = np.random.default_rng(seed).uniform(0, 1, (n_grains, 3)) * np.array(shape)
    pts = np.stack(np.meshgrid(*[np.arange(s) + 0.5 for s in shape], indexing="ij"), -1).reshape(-1, 3)
    d = pts[:, None, :] - seeds[None]
    d -= np.array(shape) * np.round(d / np.array(shape))
    np.testing.assert_array_equal(labels.reshape(-1), np.argmin(np.sum(d**2, -1), axis=1))
    r = extra["orientation"][1]
    np.testing.assert_allclose(np.einsum("gij,gkj->gik", r, r), np.tile(np.eye(3), (n_grains, 1, 1)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0)


def test_orientations_are_uniform_on_so3() -> None:
    """Haar measure: every entry of R has mean 0 and variance 1/3."""
    r = random_orientations(3000, 3, np.random.default_rng(0)).reshape(3000, 9)
    for k in range(9):
        assert _within(r[:, k], 0.0)
        assert _within(r[:, k] ** 2, 1.0 / 3.0)


@pytest.mark.parametrize("dim", [2, 3])
def test_cubic_polycrystal_has_the_crystal_bulk_response(dim: int) -> None:
    """A hydrostatic (3D) or in-plane equibiaxial (2D, rotations about the cube axis)
    strain gives a uniform stress in every grain of a cubic polycrystal, so the effective
    tensor maps it exactly: C* (1,1,1,0,0,0) = (C11 + 2 C12)(1,1,1,0,0,0); in 2D
    C* (1,1,0) = (C11 + C12)(1,1,0). The shear modulus lies between Reuss and Voigt."""
    c11, c12, c44 = 168.4, 121.4, 75.4
    crystal = sh.AnisotropicElastic.from_cubic(c11, c12, c44)
    shape = (16, 16, 16) if dim == 3 else (48, 48)
    ens = sh.generate("voronoi", shape, n=1, rng=9, n_grains=30)
    phases = polycrystal_phases(crystal, ens["orientation"].values[0])
    res = sh.homogenize(ens.isel(sample=0), phases, tol=1e-8)
    e = np.array([1.0, 1.0, 1.0, 0, 0, 0]) if dim == 3 else np.array([1.0, 1.0, 0.0])
    factor = c11 + 2 * c12 if dim == 3 else c11 + c12
    np.testing.assert_allclose(res.effective @ e, factor * e, rtol=1e-7, atol=1e-6)
    if dim == 3:
        g_voigt = (c11 - c12 + 3 * c44) / 5
        g_reuss = 5 / (4 / (c11 - c12) + 3 / c44)
        assert g_reuss <= res.shear_modulus <= g_voigt


def test_polycrystal_phases_for_conductivity_and_2d() -> None:
    k = sh.Conductivity(np.diag([1.0, 2.0, 3.0]))
    r = random_orientations(4, 3, np.random.default_rng(0))
    phases = polycrystal_phases(k, r)
    for q, ph in zip(r, phases):
        np.testing.assert_allclose(ph.tensor(3), q @ np.diag([1.0, 2.0, 3.0]) @ q.T, atol=1e-12)
    with pytest.raises(InputError, match="n_grains, d, d"):
        polycrystal_phases(k, np.eye(3))


# ------------------------------------------------------------------- periodicity contract
PERIODIC_CASES = [
    ("gaussian", (48, 48), {"volume_fraction": 0.4, "correlation_length": 3.0}),
    ("gaussian", (20, 20, 20), {"volume_fraction": 0.4, "correlation_length": 2.0}),
    ("boolean", (48, 48), {"volume_fraction": 0.4, "radius": 4.0}),
    ("boolean", (20, 20, 20), {"volume_fraction": 0.4, "radius": 3.0}),
    ("rsa", (48, 48), {"volume_fraction": 0.35, "radius": 3.5}),
    ("fibres", (24, 24, 24), {"volume_fraction": 0.2, "radius": 1.5, "aspect_ratio": 3.0}),
    ("fibres", (48, 48), {"volume_fraction": 0.3, "radius": 6.0, "aspect_ratio": 3.0, "angle": 0.5}),
    ("voronoi", (32, 32), {"n_grains": 40}),
    ("porespy.blobs", (48, 48), {"porosity": 0.4, "blobiness": 2}),
]


def _wrap_vs_interior(images: np.ndarray) -> tuple[float, float, float]:
    """P(neighbours differ) across the wrap plane of axis 0, the same over the interior
    planes, and the standard error of the wrap estimate (from per-sample values)."""
    diff = images != np.roll(images, -1, axis=1)  # pair (i, i+1) along axis 0 of each sample
    wrap = diff[:, -1].reshape(diff.shape[0], -1).mean(axis=1)
    interior = diff[:, :-1].reshape(diff.shape[0], -1).mean(axis=1)
    return wrap.mean(), interior.mean(), wrap.std(ddof=1) / np.sqrt(wrap.size)


@pytest.mark.parametrize(("name", "shape", "params"), PERIODIC_CASES)
def test_periodic_generators_are_seamless(name, shape, params) -> None:
    """Statistics across the wrap-around plane match the interior (4 SE)."""
    ens = sh.generate(name, shape, n=30, rng=1, **params)
    assert ens.attrs["periodic"] == 1 and GENERATORS[name].is_periodic(params)
    wrap, interior, se = _wrap_vs_interior(ens["phase"].values)
    assert abs(wrap - interior) <= 4 * se + 1e-3


def test_non_periodic_porespy_generator_is_reported_and_detected() -> None:
    """PoreSpy's overlapping spheres are cut at the boundary: stochhom says so, and the
    wrap-plane test sees the seam."""
    ens = sh.generate("porespy.overlapping_spheres", (48, 48), n=30, rng=1, porosity=0.5, radius=5)
    assert ens.attrs["periodic"] == 0
    wrap, interior, se = _wrap_vs_interior(ens["phase"].values)
    assert wrap - interior > 4 * se


def test_porespy_leaves_global_state_alone() -> None:
    root = logging.getLogger()
    handlers, err = list(root.handlers), np.geterr()
    np.random.seed(17)  # noqa: NPY002 - the point is to check the legacy global state
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(17)  # noqa: NPY002
    a = sh.generate("porespy.blobs", (32, 32), n=2, rng=5, porosity=0.3)
    assert root.handlers == handlers and np.geterr() == err
    assert np.random.random() == expected  # noqa: NPY002
    b = sh.generate("porespy.blobs", (32, 32), n=2, rng=5, porosity=0.3)
    np.testing.assert_array_equal(a["phase"].values, b["phase"].values)
    assert abs(float((a["phase"] == 1).mean()) - 0.3) < 0.05
    c = sh.generate("porespy.polydisperse_spheres", (40, 40, 40), n=1, rng=5, porosity=0.7, radius=4, radius_std=1)
    assert c.attrs["periodic"] == 0 and 0.6 < float((c["phase"] == 1).mean()) < 0.8


def test_labels_are_compact_unsigned_integers() -> None:
    assert sh.generate("boolean", (16, 16), rng=0, volume_fraction=0.3, radius=2)["phase"].dtype == np.uint8
    assert sh.generate("voronoi", (32, 32), rng=0, n_grains=300)["phase"].dtype == np.uint16


def _boolean_s2(r: float, phi0: float, radius: float, dim: int) -> float:
    lam = -np.log(phi0) / (np.pi * radius**2 if dim == 2 else 4 / 3 * np.pi * radius**3)
    cap = _cap_2d if dim == 2 else _cap_3d
    return float(phi0**2 * np.exp(lam * cap(np.array(r), radius)))


@pytest.mark.parametrize("dim", [2, 3])
def test_specific_surface_of_the_boolean_model(dim: int) -> None:
    """Stereology on the grid: the expected crossing count between neighbouring voxel
    centres is P(I(x) != I(x + h)) = 2 (phi - S2(h)), exactly known for the Boolean
    model, so the estimator's mean must match 2 (phi - S2(1)) times the stereological
    factor (2 in 3D, pi/2 in 2D), within 4 SE. It tends to the continuum value
    lambda S_1 phi0 (S_1 = 4 pi R^2 or 2 pi R) with an O(h/R) bias: measured -2.5 % at
    R = 6 (2D) and -4.4 % at R = 3.5 (3D)."""
    phi0 = 0.7
    radius, shape, count = (6.0, (96, 96), 40) if dim == 2 else (3.5, (32, 32, 32), 25)
    ens = sh.generate("boolean", shape, n=count, rng=13, volume_fraction=1 - phi0, radius=radius)
    sv = sh.microstructure.specific_surface(ens, phase=0).values
    factor = np.pi / 2 if dim == 2 else 2.0
    discrete = factor * 2 * (phi0 - _boolean_s2(1.0, phi0, radius, dim))
    assert _within(sv, discrete)
    lam = -np.log(phi0) / (np.pi * radius**2 if dim == 2 else 4 / 3 * np.pi * radius**3)
    continuum = lam * (2 * np.pi * radius if dim == 2 else 4 * np.pi * radius**2) * phi0
    assert 0.9 < discrete / continuum < 1.0
    # the discretization bias shrinks as the inclusions become better resolved
    bias = [abs(factor * 2 * (phi0 - _boolean_s2(1.0, phi0, r, dim)) / (
        -np.log(phi0) / (np.pi * r**2 if dim == 2 else 4 / 3 * np.pi * r**3)
        * (2 * np.pi * r if dim == 2 else 4 * np.pi * r**2) * phi0) - 1) for r in (4.0, 8.0, 16.0)]
    assert bias[0] > bias[1] > bias[2]
