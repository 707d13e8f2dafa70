"""Contract every (scheme, discretization) pair of the spectral solver must satisfy.

Like gpytorch's shared test cases: one set of physical statements, checked for
every implementation.

* a homogeneous image returns its own tensor;
* laminates return the exact tensor (Backus for isotropic elastic layers), in 2D
  and 3D, for conductivity and elasticity and for anisotropic phases, to ~10 tol;
* the effective tensor is symmetric positive definite and lies between the Reuss
  and Voigt bounds (quadratic forms);
* Hill–Mandel: <sigma : eps> = <sigma> : <eps> at equilibrium;
* the three schemes agree on a shared problem.

The Q1 discretization (voxel finite elements) is solved by CG only, so it joins
the contract as the pair ``("cg", "q1")``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import hard_balls, laminate_image

import stochhom as sh
from stochhom.bounds import laminate, phase_fractions, reuss, voigt
from stochhom.tensors import rotation_matrix

SCHEMES = ["cg", "basic", "accelerated"]
DISCRETIZATIONS = ["rotated", "fourier"]
COMBOS = [(s, d) for s in SCHEMES for d in DISCRETIZATIONS] + [("cg", "q1")]  # q1 is solved by CG only
TOL = 1e-6


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _cubic_rotated() -> sh.AnisotropicElastic:
    """A rotated cubic crystal (copper-like constants, GPa): fully anisotropic in the sample frame."""
    r = rotation_matrix(np.array([0.3, 0.7, 1.1]))
    return sh.AnisotropicElastic.from_cubic(168.0, 121.0, 75.0).rotated(r)


PHASE_SETS = {
    "conductivity": [sh.Conductivity(1.0), sh.Conductivity(7.0), sh.Conductivity(0.3)],
    "anisotropic_conductivity": [
        sh.Conductivity(np.array([[2.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 3.0]])),
        sh.Conductivity(5.0),
        sh.Conductivity(0.5),
    ],
    "elastic": [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(20.0, 0.2), sh.IsotropicElastic(4.0, 0.45)],
    "anisotropic_elastic": [sh.IsotropicElastic(70.0, 0.33), _cubic_rotated(), sh.IsotropicElastic(400.0, 0.2)],
}


@pytest.mark.parametrize(("scheme", "disc"), COMBOS)
@pytest.mark.parametrize("kind", sorted(PHASE_SETS))
@pytest.mark.parametrize("dim", [2, 3])
def test_homogeneous_image_returns_its_own_tensor(scheme: str, disc: str, kind: str, dim: int) -> None:
    phase = PHASE_SETS[kind][0]
    image = np.zeros((6,) * dim, dtype=int)
    res = sh.homogenize(image, [phase], scheme=scheme, discretization=disc, tol=TOL)
    exact = phase.tensor(dim)
    np.testing.assert_allclose(res.effective, exact, rtol=1e-12, atol=1e-12 * np.abs(exact).max())
    assert np.all(res.iterations == 0)  # equilibrium holds before iterating


@pytest.mark.parametrize(("scheme", "disc"), COMBOS)
@pytest.mark.parametrize("kind", sorted(PHASE_SETS))
@pytest.mark.parametrize(("shape", "counts", "axis"), [((6, 10), [3, 5, 2], 1), ((10, 4), [4, 4, 2], 0),
                                                      ((4, 4, 10), [5, 3, 2], 2), ((9, 3, 4), [2, 3, 4], 0)])
def test_laminate_is_exact(scheme: str, disc: str, kind: str, shape: tuple, counts: list, axis: int) -> None:
    """Backus / series-parallel laminate formulas (validation.md, 'Laminate'), exact at any resolution."""
    phases = PHASE_SETS[kind]
    dim = len(shape)
    image = laminate_image(shape, counts, axis)
    fractions = np.array(counts) / sum(counts)
    exact = laminate(phases, fractions, dim, normal=axis)
    res = sh.homogenize(image, phases, scheme=scheme, discretization=disc, tol=TOL, maxiter=5000)
    assert _rel(res.effective, exact) <= 10 * TOL


@pytest.fixture(scope="module")
def random_2d() -> np.ndarray:
    return hard_balls(48, 2, 5.0, 0.3, seed=3)


@pytest.mark.parametrize(("scheme", "disc"), COMBOS)
@pytest.mark.parametrize("kind", ["conductivity", "elastic", "anisotropic_elastic"])
def test_effective_tensor_is_spd_and_within_voigt_reuss(scheme: str, disc: str, kind: str, random_2d) -> None:
    phases = PHASE_SETS[kind][:2]
    res = sh.homogenize(random_2d, phases, scheme=scheme, discretization=disc, tol=TOL, maxiter=5000)
    c = res.effective
    assert res.symmetry_error <= 10 * TOL
    sym = 0.5 * (c + c.T)
    assert np.linalg.eigvalsh(sym).min() > 0
    f = phase_fractions(random_2d, 2)
    scale = np.abs(c).max()
    # Voigt: the uniform strain is compatible; Reuss: the uniform stress is equilibrated.
    assert np.linalg.eigvalsh(voigt(phases, f, 2) - sym).min() >= -10 * TOL * scale
    assert np.linalg.eigvalsh(sym - reuss(phases, f, 2)).min() >= -10 * TOL * scale


@pytest.mark.parametrize(("scheme", "disc"), COMBOS)
@pytest.mark.parametrize("kind", ["conductivity", "elastic"])
def test_hill_mandel(scheme: str, disc: str, kind: str, random_2d, rng) -> None:
    """<sigma : eps> = <sigma> : <eps> for the periodic solution (energy consistency)."""
    phases = PHASE_SETS[kind][:2]
    ne = 2 if kind == "conductivity" else 3
    macro = rng.normal(size=ne)
    f = sh.solve(random_2d, phases, macro_strain=macro, scheme=scheme, discretization=disc, tol=TOL, maxiter=5000)
    if disc == "q1":  # the Q1 energy lives at the Gauss points, not at the voxel centres
        local = _q1_gauss_point_energy(random_2d, phases, f)
    else:
        local = float(np.mean(np.sum(f.stress * f.strain, axis=0)))
    np.testing.assert_allclose(f.mean_strain, macro, rtol=0, atol=1e-12)
    assert abs(local - f.mean_stress @ f.mean_strain) <= 10 * TOL * abs(local)


def _q1_gauss_point_energy(image: np.ndarray, phases: list, f) -> float:
    """<eps : C : eps> over the 2^d Gauss points of every voxel element, from the nodal
    fluctuation (numpy, independent of the compiled kernels)."""
    import itertools

    from stochhom.spectral.q1 import gauss_gradients

    dim = image.ndim
    elastic = f.physics == "elasticity"
    m = dim if elastic else 1
    u = f.fluctuation.reshape((m,) + image.shape)
    corners = [np.stack([np.roll(u[s], tuple(-c for c in cc), axis=tuple(range(dim))) for s in range(m)])
               for cc in itertools.product((0, 1), repeat=dim)]
    ue = np.stack(corners).reshape((len(corners) * m,) + image.shape)
    ne = f.mean_strain.size
    to_mandel = np.ones(ne)
    if elastic:
        to_mandel[dim:] = 1 / np.sqrt(2)  # engineering shear -> Mandel
    tensors = np.stack([p.tensor(dim) for p in phases])[image]  # (*shape, ne, ne)
    energy = 0.0
    for b in gauss_gradients((1.0,) * dim, elastic):
        eps = np.einsum("rc,c...->...r", b, ue) * to_mandel + f.mean_strain
        energy += np.mean(np.einsum("...r,...rs,...s->...", eps, tensors, eps)) / 2**dim
    return float(energy)


@pytest.mark.parametrize("disc", DISCRETIZATIONS)
@pytest.mark.parametrize("kind", ["conductivity", "elastic", "anisotropic_elastic"])
def test_schemes_agree(disc: str, kind: str) -> None:
    image = hard_balls(16, 3, 2.5, 0.25, seed=8)
    phases = PHASE_SETS[kind][:2]
    results = {s: sh.homogenize(image, phases, scheme=s, discretization=disc, tol=1e-8, maxiter=5000) for s in SCHEMES}
    ref = results["cg"].effective
    for s in SCHEMES:
        assert _rel(results[s].effective, ref) <= 1e-6, s


@pytest.mark.parametrize(("scheme", "disc"), COMBOS)
def test_final_residual_meets_tol(scheme: str, disc: str, random_2d) -> None:
    phases = PHASE_SETS["elastic"][:2]
    res = sh.homogenize(random_2d, phases, scheme=scheme, discretization=disc, tol=TOL, maxiter=5000)
    assert all(r[-1] <= TOL for r in res.residuals)
    assert all(len(r) == it + 1 for r, it in zip(res.residuals, res.iterations))


@pytest.mark.parametrize("disc", [*DISCRETIZATIONS, "q1"])
@pytest.mark.parametrize(("shape", "counts", "axis"), [((8, 8), [6, 2], 1), ((4, 4, 10), [5, 3, 2], 2)])
def test_laminate_with_void_layer_is_exact(disc: str, shape: tuple, counts: list, axis: int) -> None:
    """A pore layer cutting the cell: zero stiffness across it, the relaxed stiffness along it."""
    phases = [sh.IsotropicElastic(1.0, 0.3), sh.Void(), sh.IsotropicElastic(5.0, 0.2)][: len(counts)]
    image = laminate_image(shape, counts, axis)
    exact = laminate(phases, np.array(counts) / sum(counts), len(shape), normal=axis)
    res = sh.homogenize(image, phases, discretization=disc, tol=TOL)
    assert _rel(res.effective, exact) <= 10 * TOL
