"""Composite voxels: sub-voxel geometry (fractions, normals), laminate tensors and the solver.

Exact references: a laminate cut at a fractional voxel position is reproduced to solver
tolerance by composite voxels (its cut voxels are exactly laminates); the laminate tensor
of a voxel equals :func:`stochhom.bounds.laminate` in the interface frame; a voxel made of
one phase twice has that phase's tensor, so it must reproduce the plain solve.
"""

from __future__ import annotations

import numpy as np
import pytest

import stochhom as sh
from stochhom.errors import InputError
from stochhom.microstructure.composite import CompositeVoxels, from_fine, interpolate_field, render_composite
from stochhom.spectral.composite import frame, laminate_tensors
from stochhom.tensors import mandel_rotation

ELASTIC = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(30.0, 0.2)]
CONDUCT = [sh.Conductivity(1.0), sh.Conductivity(20.0)]
POROUS = [sh.IsotropicElastic(1.0, 0.3), sh.Void()]


def _tensors(mats, dim):
    phys = next(m.physics for m in mats if not m.is_void)
    return np.array([m.tensor(dim, phys) if m.is_void else m.tensor(dim) for m in mats])


# ----------------------------------------------------------------------------- geometry
def test_oblique_layers_fractions_and_normals():
    # periodic layers normal to (1, 2)/sqrt5 on a 2D grid: fractions within sub-voxel
    # counting error of the exact cut areas, Youngs' normals within a few degrees
    n, s = 16, 8
    normal = np.array([1.0, 2.0]) / np.sqrt(5.0)

    def inside(x, y):
        return ((x + 2 * y) / n) % 1.0 < 0.37

    x = (np.arange(n * s) + 0.5) / s
    xx, yy = np.meshgrid(x, x, indexing="ij")
    fine = inside(xx, yy).astype(np.uint8)
    labels, cv = from_fine(fine, s)
    assert len(cv) > 2 * n  # two interfaces, each cutting 1-3 voxels per column
    assert np.all(cv.phases == [0, 1])
    angle = np.degrees(np.arccos(np.clip(np.abs(cv.normal @ normal), 0, 1)))
    assert np.median(angle) < 3.0 and angle.max() < 10.0  # measured: 2.2 and 7.0 degrees
    i, j = np.unravel_index(cv.index, labels.shape)
    t = (np.arange(64) + 0.5) / 64
    sx, sy = np.meshgrid(t, t, indexing="ij")
    exact = np.array([np.mean(inside(a + sx, b + sy)) for a, b in zip(i, j)])
    assert np.max(np.abs(cv.fraction - exact)) < 0.06  # a sub-voxel column: 1/8 of a 1/8 strip
    assert np.mean(np.abs(cv.fraction - exact)) < 0.02
    # pure voxels carry their label; composite ones the majority
    pure = np.ones(labels.size, bool)
    pure[cv.index] = False
    assert np.array_equal(labels.reshape(-1)[pure], fine[::s, ::s].reshape(-1)[pure])
    assert np.array_equal(labels.reshape(-1)[cv.index], (cv.fraction >= 0.5).astype(np.uint8))


def test_sphere_normals_are_radial():
    from stochhom.microstructure.inclusions import draw_ball

    n, s, centre, radius = 16, 4, np.array([8.3, 7.9, 8.1]), 5.2
    fine = np.zeros((n * s,) * 3, np.uint8)
    draw_ball(fine, centre * s, radius * s)
    _, cv = from_fine(fine, s)
    radial = np.array(np.unravel_index(cv.index, (n,) * 3)).T + 0.5 - centre
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(np.abs(np.sum(radial * cv.normal, 1)), 0, 1)))
    assert np.median(angle) < 2.0 and angle.max() < 8.0  # measured: 0.8 and 3.6 degrees


def test_triple_line_takes_the_most_frequent_label():
    fine = np.zeros((4, 4), dtype=np.uint8)
    fine[:2, :2] = 1
    fine[:2, 2:] = 2
    fine[2:, :] = 2  # 4 sub-voxels of label 1, 12 of label 2... and 0 absent
    fine[3, 3] = 0
    labels, cv = from_fine(fine, 4)
    assert len(cv) == 0 and labels[0, 0] == 2


def test_from_fine_refuses_bad_input():
    with pytest.raises(InputError, match="divide"):
        from_fine(np.zeros((10, 10), dtype=np.uint8), 4)
    with pytest.raises(InputError, match="integer label"):
        from_fine(np.zeros((8, 8)), 4)


def test_interpolation_reproduces_a_band_limited_field():
    n, s = 12, 4
    x = (np.arange(n) + 0.5) / n
    xf = (np.arange(n * s) + 0.5) / (n * s)
    f = lambda a, b: np.cos(2 * np.pi * 3 * a[:, None]) * np.sin(2 * np.pi * (2 * b[None, :] + 0.1))  # noqa: E731
    out = interpolate_field(f(x, x), s)
    assert np.max(np.abs(out - f(xf, xf))) < 1e-12


@pytest.mark.parametrize("name,params", [
    ("boolean", {"volume_fraction": 0.3, "radius": 3.0}),
    ("rsa", {"volume_fraction": 0.2, "radius": 3.0}),
    ("fibres", {"volume_fraction": 0.15, "radius": 1.5, "aspect_ratio": 3.0}),
    ("gaussian", {"volume_fraction": 0.4, "correlation_length": 4.0}),
])
def test_render_composite_is_the_generators_realization(name, params):
    # the coarse sample of the same seed differs from the fine rendering only in cut voxels
    shape = (24, 24, 24)
    coarse = sh.microstructure.GENERATORS[name].func(shape, np.random.default_rng(5), **params)
    labels, cv = render_composite(name, shape, 5, 4, **params)
    off = np.flatnonzero(labels.reshape(-1) != coarse.reshape(-1))
    outside = np.setdiff1d(off, cv.index)
    tolerance = 0 if name != "gaussian" else int(2e-3 * labels.size)  # Nyquist terms dropped
    assert outside.size <= tolerance
    assert 0.02 < cv.share < 0.6
    # the composite image's phase fraction is the fine rendering's
    fr = labels.reshape(-1).astype(float)
    fr[cv.index] = cv.fraction
    assert abs(fr.mean() - coarse.mean()) < 0.02


def test_render_composite_refuses_bad_input():
    with pytest.raises(InputError, match="cannot render composite"):
        render_composite("voronoi", (16, 16), 0, 4)
    with pytest.raises(InputError, match="power of two"):
        render_composite("boolean", (16, 16), 0, 3, radius=3.0)
    with pytest.raises(InputError, match="volume_fraction"):
        render_composite("boolean", (16, 16), 0, 4, volume_fraction=1.5)


# ----------------------------------------------------------------------------- laminate tensors
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("mats", [ELASTIC, CONDUCT, POROUS], ids=["elastic", "conductivity", "void"])
def test_laminate_tensor_is_the_laminate_in_the_interface_frame(dim, mats):
    rng = np.random.default_rng(dim)
    elastic = mats[0].physics == "elasticity"
    normal = rng.normal(size=(6, dim))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    frac = rng.uniform(0.05, 0.95, 6)
    void = np.array([m.is_void for m in mats])
    got = laminate_tensors(_tensors(mats, dim), void, np.tile([0, 1], (6, 1)), frac, normal, elastic)
    for k in range(6):
        rot = frame(normal[k:k + 1])[0]
        assert np.allclose(rot @ normal[k], np.eye(dim)[-1]) and np.isclose(np.linalg.det(rot), 1.0)
        q = mandel_rotation(rot) if elastic else rot
        ref = q.T @ sh.bounds.laminate(mats, [1 - frac[k], frac[k]], dim, normal=dim - 1) @ q
        assert np.allclose(got[k], ref, rtol=0, atol=1e-12 * np.abs(ref).max())
        # between Reuss and Voigt in the Loewner order
        ta = _tensors(mats, dim)
        voigt = (1 - frac[k]) * ta[0] + frac[k] * ta[1]
        assert np.linalg.eigvalsh(voigt - got[k]).min() > -1e-10


def test_one_phase_twice_is_that_phase():
    t = _tensors(ELASTIC, 3)
    normal = np.array([[0.3, -0.4, np.sqrt(0.75)]])
    got = laminate_tensors(t, np.zeros(2, bool), np.array([[1, 1]]), np.array([0.37]), normal, True)
    assert np.allclose(got[0], t[1], atol=1e-12 * np.abs(t[1]).max())


# ----------------------------------------------------------------------------- solver
def _cut_laminate(dim: int, n: int = 8, s: int = 4):
    fine = np.zeros((n * s,) * dim, dtype=np.uint8)
    fine[3:16] = 1  # layers normal to axis 0, interfaces inside voxels
    labels, cv = from_fine(fine, s)
    return labels, cv, 13 / (n * s)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("disc", ["rotated", "q1", "fourier"])
@pytest.mark.parametrize("mats", [ELASTIC, CONDUCT], ids=["elastic", "conductivity"])
def test_cut_laminate_is_exact_with_composite_voxels(dim, disc, mats):
    # every cut voxel is a laminate of the layers' normal: the discrete solution is the
    # exact piecewise-constant one, so the effective tensor is exact to solver tolerance
    labels, cv, f = _cut_laminate(dim)
    exact = sh.bounds.laminate(mats, [1 - f, f], dim, normal=0)
    res = sh.homogenize(labels, mats, discretization=disc, composite=cv, tol=1e-10)
    plain = sh.homogenize(labels, mats, discretization=disc, tol=1e-10)
    scale = np.abs(exact).max()
    assert np.abs(res.effective - exact).max() < 1e-8 * scale
    assert np.abs(plain.effective - exact).max() > 1e-2 * scale  # without them: off by a voxel layer
    assert res.info["composite_voxels"] == len(cv)
    assert np.isclose(res.info["volume_fractions"][1], f)


@pytest.mark.parametrize("disc", ["rotated", "q1"])
@pytest.mark.parametrize("mats", [ELASTIC, CONDUCT], ids=["elastic", "conductivity"])
def test_oblique_laminate_error_shrinks(disc, mats):
    # layers normal to (1, 2)/sqrt5, contrast 30/20: measured errors at 64^2 are 0.18-0.31 of
    # the plain image's (q1 and rotated, both physics); the test asks for at most half
    n, s = 64, 8
    normal = np.array([1.0, 2.0]) / np.sqrt(5.0)
    x = (np.arange(n * s) + 0.5) / (n * s)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    fine = (((xx + 2 * yy) % 1.0) < 0.37).astype(np.uint8)
    labels, cv = from_fine(fine, s)
    f = fine.mean()
    elastic = mats[0].physics == "elasticity"
    rot = frame(normal[None])[0]
    q = mandel_rotation(rot) if elastic else rot
    exact = q.T @ sh.bounds.laminate(mats, [1 - f, f], 2, normal=1) @ q
    err = lambda e: np.abs(e - exact).max() / np.abs(exact).max()  # noqa: E731
    with_cv = err(sh.homogenize(labels, mats, discretization=disc, composite=cv, tol=1e-9).effective)
    plain = err(sh.homogenize(fine[s // 2::s, s // 2::s], mats, discretization=disc, tol=1e-9).effective)
    assert with_cv < 0.5 * plain


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("disc", ["rotated", "q1"])
def test_self_laminates_reproduce_the_plain_solve(dim, disc):
    # composite voxels of one phase twice have that phase's tensor: the per-voxel paths
    # (the Q1 Gauss-point kernel, the load vector and mean-stress scatter/gather, the
    # rotated scheme's overlay) must then give the plain answer and fields to rounding
    rng = np.random.default_rng(3)
    shape = (9, 8, 7)[:dim]
    labels = (rng.random(shape) < 0.4).astype(np.uint8)
    idx = np.sort(rng.choice(labels.size, labels.size // 3, replace=False))
    lab = labels.reshape(-1)[idx].astype(np.int64)
    normal = rng.normal(size=(idx.size, dim))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    cv = CompositeVoxels(shape, idx, np.stack([lab, lab], 1), rng.uniform(0.1, 0.9, idx.size), normal, 4)
    a = sh.homogenize(labels, ELASTIC, discretization=disc, composite=cv, tol=1e-10)
    b = sh.homogenize(labels, ELASTIC, discretization=disc, tol=1e-10)
    assert np.allclose(a.effective, b.effective, rtol=0, atol=1e-9 * np.abs(b.effective).max())
    strain = [1.0, 0.5, 0.0, 0.2, 0.0, 0.0][: 3 if dim == 2 else 6]
    fa = sh.solve(labels, ELASTIC, macro_strain=strain, discretization=disc, composite=cv, tol=1e-10)
    fb = sh.solve(labels, ELASTIC, macro_strain=strain, discretization=disc, tol=1e-10)
    assert np.allclose(fa.stress, fb.stress, rtol=0, atol=1e-8 * np.abs(fb.stress).max())


def test_pore_interfaces_keep_their_labels():
    labels, cv = render_composite("boolean", (16, 16, 16), 2, 4, volume_fraction=0.3, radius=3.0)
    a = sh.homogenize(labels, POROUS, composite=cv)
    b = sh.homogenize(labels, POROUS)
    assert a.info["composite_voxels"] == 0
    assert np.allclose(a.effective, b.effective, rtol=0, atol=1e-12)


def _perrins(f: float, k: float) -> float:
    """Square array of cylinders, matrix conductivity 1 (Perrins, McKenzie & McPhedran 1979)."""
    t = (k + 1.0) / (k - 1.0)
    return 1 + 2 * f / (t - f - 0.305827 * f**4 * t / (t**2 - 1.402958 * f**8) - 0.013362 * f**8)


@pytest.mark.parametrize(("k", "n", "disc", "bound", "gain"), [
    (10.0, 32, "rotated", 1e-3, 0.2),  # measured: 4.4e-4 against 8.0e-3 without
    (100.0, 64, "rotated", 5e-3, 0.5),  # measured: 3.3e-3 against 1.2e-2
    (10.0, 32, "q1", 1e-2, 0.5),  # measured: 5.8e-3 against 1.5e-2
])
def test_disk_array_against_perrins(k, n, disc, bound, gain):
    # the exact disk (area fraction 0.4, centre off the grid) rendered 8 times finer: with
    # composite voxels the error against the Perrins series (itself within 0.1 %) is of
    # second order for the rotated scheme; without, the staircase leaves a first-order error
    from stochhom.microstructure.inclusions import draw_ball

    radius, centre = np.sqrt(0.4 / np.pi) * n, np.array([n / 2 + 0.21, n / 2 + 0.37])
    plain = np.zeros((n, n), np.uint8)
    draw_ball(plain, centre, radius)
    fine = np.zeros((8 * n, 8 * n), np.uint8)
    draw_ball(fine, centre * 8, radius * 8)
    labels, cv = from_fine(fine, 8)
    mats = [sh.Conductivity(1.0), sh.Conductivity(k)]
    exact = _perrins(0.4, k)
    with_cv = abs(sh.homogenize(labels, mats, discretization=disc, composite=cv).effective[0, 0] / exact - 1)
    without = abs(sh.homogenize(plain, mats, discretization=disc).effective[0, 0] / exact - 1)
    assert with_cv < bound
    assert with_cv < gain * without


def test_composite_refusals():
    labels, cv, _ = _cut_laminate(2)
    with pytest.raises(InputError, match="shape"):
        sh.homogenize(labels[:-1], CONDUCT, composite=cv)
    with pytest.raises(InputError, match="CompositeVoxels"):
        sh.homogenize(labels, CONDUCT, composite={"index": cv.index})
    with pytest.raises(InputError, match="accelerated"):
        sh.homogenize(labels, CONDUCT, scheme="accelerated", composite=cv)
    with pytest.raises(InputError, match="torch"):
        sh.homogenize(labels, CONDUCT, backend="torch", composite=cv)
    bad = CompositeVoxels(cv.shape, cv.index, cv.phases + 1, cv.fraction, cv.normal, 4)
    with pytest.raises(InputError, match="labels \\[2\\]"):
        sh.homogenize(labels, {0: CONDUCT[0], 1: CONDUCT[1], 2: CONDUCT[1]}, composite=bad)


# ----------------------------------------------------------------------------- studies
def _study_dict(tmp_path, **solver):
    return {
        "study": {"output": str(tmp_path / "cv.zarr"), "seed": 3},
        "generator": {"name": "boolean", "shape": [24, 24], "radius": 3.0},
        "sweep": {"replicates": 2, "parameters": {"volume_fraction": [0.3, 0.45]}},
        "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 30.0}},
        "solver": solver,
    }


def test_sweep_with_composite_voxels_solves_the_rendered_samples(tmp_path):
    from stochhom.study import run_sweep, study_from_dict

    study = study_from_dict(_study_dict(tmp_path, composite_voxels=4, discretization="rotated"), base=tmp_path)
    ds = run_sweep(study, workers=1, progress=False)
    assert np.all(ds["converged"].values == 1)
    for k in (0, 3):  # the stored tensor is the one of the sample rendered with its composite voxels
        seed = int(ds["seed"].values[k])
        vf = float(ds["volume_fraction"].values[k])
        labels, cv = render_composite("boolean", (24, 24), seed, 4, radius=3.0, volume_fraction=vf)
        mats = [sh.Conductivity(1.0), sh.Conductivity(30.0)]
        ref = sh.homogenize(labels, mats, composite=cv, discretization="rotated").effective
        assert np.allclose(ds["conductivity"].values[k], ref, rtol=1e-9)
        assert not np.allclose(ref, sh.homogenize(labels, mats, discretization="rotated").effective, rtol=1e-3)


@pytest.mark.parametrize(("solver", "generator", "match"), [
    ({"composite_voxels": 3}, "boolean", "2, 4 or 8"),
    ({"composite_voxels": 4}, "porespy.blobs", "below the voxel"),
    ({"composite_voxels": 4, "scheme": "accelerated"}, "boolean", "scheme"),
])
def test_study_refuses_bad_composite_settings(tmp_path, solver, generator, match):
    from stochhom.study import StudyError, study_from_dict

    data = _study_dict(tmp_path, **solver)
    if generator != "boolean":
        data["generator"] = {"name": generator, "shape": [24, 24]}
        data["sweep"] = {"replicates": 1, "parameters": {"porosity": [0.3, 0.4]}}
    with pytest.raises(StudyError, match=match):
        study_from_dict(data, base=tmp_path)
