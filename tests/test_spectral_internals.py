"""The discrete operators themselves, checked against independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import hard_balls

import stochhom as sh
from stochhom.spectral import derivative_symbols
from stochhom.spectral.grid import Grid
from stochhom.spectral.homogenize import _problem
from stochhom.tensors import MANDEL_PAIRS, from_mandel


def _centre_gradient(u: np.ndarray, axis: int) -> np.ndarray:
    """Rotated stencil in real space: derivative at voxel centres from the 2^d corner
    values (node n = lower corner of voxel n), averaged over the edges along ``axis``."""
    d = u.ndim
    diff = np.roll(u, -1, axis=axis) - u
    for m in range(d):
        if m != axis:
            diff = 0.5 * (diff + np.roll(diff, -1, axis=m))
    return diff


@pytest.mark.parametrize("shape", [(8, 6), (7, 9), (6, 5, 4)])
def test_rotated_symbol_is_the_stencil(shape: tuple) -> None:
    """|FFT(D_j u)| = |eta_j| |FFT(u)|, and the remaining unit-modulus factor is the same
    for every axis (it is i e^{i sum q/2}, absorbed by the solver's unknown)."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=shape)
    eta = derivative_symbols(Grid(shape, (1.0,) * len(shape)), "rotated")
    u_hat = np.fft.rfftn(u)
    phases = []
    for j in range(len(shape)):
        d_hat = np.fft.rfftn(_centre_gradient(u, j))
        np.testing.assert_allclose(np.abs(d_hat), np.abs(eta[j] * u_hat), atol=1e-10)
        mask = np.abs(eta[j] * u_hat) > 1e-8
        phases.append(np.where(mask, d_hat / np.where(mask, eta[j] * u_hat, 1.0), np.nan))
    for ph in phases[1:]:
        both = ~np.isnan(ph) & ~np.isnan(phases[0])
        np.testing.assert_allclose(ph[both], phases[0][both], atol=1e-9)


def test_fourier_symbol_is_the_continuous_derivative() -> None:
    shape = (9, 8)
    eta = derivative_symbols(Grid(shape, (0.5, 2.0)), "fourier")
    k0 = np.fft.fftfreq(9, 1 / 9)[:, None]
    k1 = np.arange(5)[None, :]
    np.testing.assert_allclose(eta[0], np.broadcast_to(2 * np.pi * k0 / 9 / 0.5, (9, 5)))
    expected1 = 2 * np.pi * k1 / 8 / 2.0
    # Nyquist (k1 = 4) kept only at self-conjugate frequencies (k0 = 0 here; 9 is odd)
    assert eta[1][0, 4] == pytest.approx(expected1[0, 4])
    assert np.all(eta[1][1:, 4] == 0)
    np.testing.assert_allclose(eta[1][:, :4], np.broadcast_to(expected1[:, :4], (9, 4)))


def _independent_residual(stress: np.ndarray, elastic: bool) -> float:
    """||Pi sigma|| / |<sigma>| for the rotated scheme, from scratch: full complex FFT,
    explicit B(q) matrices and the pseudo-inverse of K_I = B^T B at every frequency
    (no code shared with the solver)."""
    shape = stress.shape[1:]
    d = len(shape)
    n = int(np.prod(shape))
    eta = _rotated_full(shape)
    mean_norm = np.linalg.norm(stress.reshape(stress.shape[0], -1).mean(axis=1))
    if elastic:
        sig = from_mandel(np.moveaxis(stress, 0, -1), order=2)  # (*shape, d, d) tensor components
        s_hat = np.fft.fftn(np.moveaxis(sig, (-2, -1), (0, 1)), axes=tuple(range(2, 2 + d)))
        pairs = MANDEL_PAIRS[d]
    else:
        s_hat = np.fft.fftn(stress, axes=tuple(range(1, 1 + d)))
    total = 0.0
    for idx in np.ndindex(*shape):
        e = eta[(slice(None),) + idx]
        if elastic:
            b = np.zeros((len(pairs), d))  # Mandel strain of the nodal vector: B w
            for a, (i, j) in enumerate(pairs):
                w = 1.0 if i == j else 1 / np.sqrt(2)
                b[a, i] += w * e[j]
                if i != j:
                    b[a, j] += w * e[i]
            g = s_hat[(slice(None), slice(None)) + idx] @ e  # g_i = sigma_ij eta_j
        else:
            b = e.reshape(d, 1)
            g = np.array([s_hat[(slice(None),) + idx] @ e])
        ki = b.T @ b
        if np.abs(ki).max() < 1e-20:  # eta = 0: the mean and the checkerboard null modes carry no strain
            continue
        total += float(np.real(np.conj(g) @ np.linalg.pinv(ki, rcond=1e-10) @ g))
    return np.sqrt(total) / n / mean_norm


def _rotated_full(shape: tuple) -> np.ndarray:
    d = len(shape)
    q = []
    for ax, m in enumerate(shape):
        qq = 2 * np.pi * np.fft.fftfreq(m, 1 / m) / m
        shp = [1] * d
        shp[ax] = m
        q.append(qq.reshape(shp))
    eta = []
    for j in range(d):
        s = 2 * np.sin(q[j] / 2)
        for m in range(d):
            if m != j:
                s = s * np.cos(q[m] / 2)
        eta.append(np.broadcast_to(s, shape))
    return np.array(eta)


@pytest.mark.parametrize("scheme", ["cg", "basic", "accelerated"])
@pytest.mark.parametrize("kind", ["conductivity", "elastic"])
def test_reported_residual_is_the_equilibrium_residual(scheme: str, kind: str) -> None:
    """The residual the solver stops on equals ||Pi sigma||/|<sigma>| recomputed from the
    returned stress field by an independent implementation, and it is below tol."""
    image = hard_balls(12, 2, 2.5, 0.3, seed=4)
    phases = (
        [sh.Conductivity(1.0), sh.Conductivity(20.0)]
        if kind == "conductivity"
        else [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(20.0, 0.2)]
    )
    macro = [1.0, 0.3] if kind == "conductivity" else [1.0, 0.3, -0.2]
    tol = 1e-5
    f = sh.solve(image, phases, macro_strain=macro, scheme=scheme, tol=tol)
    independent = _independent_residual(f.stress, kind == "elastic")
    np.testing.assert_allclose(independent, f.residuals[-1], rtol=1e-6)
    assert independent <= tol


@pytest.mark.parametrize(
    ("kind", "disc"),
    [(k, d) for k in ("conductivity", "elastic", "anisotropic") for d in ("rotated", "fourier")]
    + [("porous", "rotated")],
)
@pytest.mark.parametrize("dim", [2, 3])
def test_numba_and_numpy_backends_agree(kind: str, dim: int, disc: str) -> None:
    image = hard_balls(10 if dim == 3 else 20, dim, 2.0, 0.3, seed=2)
    phases = {
        "conductivity": [sh.Conductivity(1.0), sh.Conductivity(30.0)],
        "elastic": [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(0.05, 0.2)],
        "porous": [sh.IsotropicElastic(1.0, 0.3), sh.Void()],
        "anisotropic": [sh.IsotropicElastic(1.0, 0.3), sh.AnisotropicElastic.from_cubic(10.0, 6.0, 4.0)],
    }[kind]
    a = sh.homogenize(image, phases, discretization=disc, backend="numba")
    b = sh.homogenize(image, phases, discretization=disc, backend="numpy")
    np.testing.assert_allclose(a.effective, b.effective, rtol=1e-10, atol=1e-12 * np.abs(a.effective).max())
    # integer counts, equal although the backends round differently (reduction order, threads):
    # the last two residuals of every case lie >= 0.4 % away from tol (checked: min
    # |log(r/tol)| = 0.0044), far beyond the ~1e-10 relative rounding between backends
    np.testing.assert_array_equal(a.iterations, b.iterations)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_stiffness_operator_is_symmetric_and_positive(backend: str, rng) -> None:
    """<v, K w> = <w, K v> and <w, K w> >= 0: the discrete problem is a symmetric
    positive semi-definite system, which is what CG needs (checked on random spectra of
    real fields)."""
    image = hard_balls(12, 3, 2.0, 0.3, seed=1)
    phases = [sh.IsotropicElastic(1.0, 0.3), sh.AnisotropicElastic.from_cubic(10.0, 6.0, 4.0)]
    problem, *_ = _problem(image, phases, "cg", "rotated", None, None, "float64", 1.0, None, 1, backend)
    w1 = problem.grid.rfft(rng.normal(size=(1, 3) + image.shape))
    w2 = problem.grid.rfft(rng.normal(size=(1, 3) + image.shape))
    k1, _ = problem.apply(w1)
    k2, _ = problem.apply(w2)
    a, b = problem.hdot(w2, k1)[0], problem.hdot(w1, k2)[0]
    assert a == pytest.approx(b, rel=1e-10)
    assert problem.hdot(w1, k1)[0] > 0


def test_preconditioned_operator_spectrum_lies_within_phase_bounds(rng) -> None:
    """Rayleigh quotients <w, K w> / <w, K0 w> lie in [c_min/c0, c_max/c0] (Green
    preconditioner with a scalar reference; conductivity)."""
    image = hard_balls(16, 2, 3.0, 0.3, seed=9)
    phases = [sh.Conductivity(1.0), sh.Conductivity(50.0)]
    problem, green, *_ = _problem(image, phases, "cg", "rotated", None, None, "float64", 1.0, None, 1, "numpy")
    k0 = green.reference.bulk
    for _ in range(5):
        w = problem.grid.rfft(rng.normal(size=(1, 1) + image.shape))
        kw, _ = problem.apply(w)
        z = problem.zeros_nodal(1)
        # <w, K0 w> = <K0 w, K0^{-1} K0 w>; compute K0 w via the identity K0 = k0 |eta|^2
        eta2 = np.sum(derivative_symbols(problem.grid, "rotated") ** 2, axis=0)
        k0w = k0 * eta2 * w
        rz, _ = problem.precondition(green, k0w, z)
        q = problem.hdot(w, kw)[0] / rz[0]
        assert 1.0 / k0 - 1e-9 <= q <= 50.0 / k0 + 1e-9


def test_batch_size_does_not_change_the_result(spheres_3d) -> None:
    phases = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(10.0, 0.2)]
    a = sh.homogenize(spheres_3d, phases, batch_size=1)
    b = sh.homogenize(spheres_3d, phases, batch_size=6)
    np.testing.assert_allclose(a.effective, b.effective, rtol=1e-12, atol=1e-14)
    # integer counts: the last two residuals lie >= 1.5 % from tol (min |log(r/tol)| = 0.016),
    # so batching's rounding (~1e-12 relative) cannot move a stopping decision
    np.testing.assert_array_equal(a.iterations, b.iterations)


def test_spacing_scale_invariance_and_anisotropic_voxels() -> None:
    image = hard_balls(16, 2, 3.0, 0.3, seed=9)
    phases = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(10.0, 0.2)]
    a = sh.homogenize(image, phases).effective
    b = sh.homogenize(image, phases, spacing=2.5).effective
    np.testing.assert_allclose(a, b, rtol=1e-10)  # only voxel shape matters
    # stretching the voxels along x stretches the microstructure: the same image with
    # spacing (2, 1) approximates the image with every row duplicated (within the
    # discretization error of the coarser description)
    stretched = np.repeat(image, 2, axis=0)
    c = sh.homogenize(image, phases, spacing=(2.0, 1.0)).effective
    d = sh.homogenize(stretched, phases).effective
    assert np.abs(c - d).max() / np.abs(d).max() < 0.03
    assert np.abs(c - a).max() / np.abs(a).max() > 0.03  # and it does change the answer


def test_solve_fields_and_aliases() -> None:
    image = hard_balls(16, 2, 3.0, 0.3, seed=9)
    f = sh.solve(image, [sh.Conductivity(1.0), sh.Conductivity(5.0)], macro_gradient=[1.0, 0.0])
    assert f.gradient.shape == (2, 16, 16) and f.flux.shape == (2, 16, 16)
    assert f.fluctuation.shape == (1, 16, 16)
    np.testing.assert_allclose(f.mean_gradient, [1.0, 0.0], atol=1e-12)
    assert f.converged and f.iterations > 0
    # the flux is divergence free: <q> equals the effective tensor applied to <grad>
    eff = sh.homogenize(image, [sh.Conductivity(1.0), sh.Conductivity(5.0)]).effective
    np.testing.assert_allclose(f.mean_flux, eff @ [1.0, 0.0], rtol=1e-5)
    # the fluctuation is periodic with the strain fluctuation as its gradient (rotated stencil)
    grad = np.array([_centre_gradient(f.fluctuation[0], j) for j in range(2)])
    np.testing.assert_allclose(grad + np.array([1.0, 0.0])[:, None, None], f.gradient, atol=1e-8)


def test_stress_control_reaches_the_prescribed_stress() -> None:
    image = hard_balls(16, 2, 3.0, 0.3, seed=9)
    phases = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(10.0, 0.2)]
    target = np.array([0.0, 1.0, 0.2])
    f = sh.solve(image, phases, macro_stress=target)
    np.testing.assert_allclose(f.mean_stress, target, atol=1e-5)
