"""Bounds and exact results (stochhom.bounds) against independent closed forms.

References (see /work/shared/references/validation.md, "Spectral solver" section):

* Voigt/Reuss: <C> and <C^-1>^-1 bound every effective tensor in the Loewner order.
* Hashin–Shtrikman two-phase formulas (conductivity in d dimensions, 3D bulk and
  shear, 2D plane strain κ = λ + μ and μ); phase 1 soft for the lower bound, stiff
  for the upper one.
* Laminates: <k> along and <1/k>^-1 across the layers; Backus for isotropic
  elastic layers.
* Dilute spherical inclusions (Eshelby), first order in f.

All of these are closed forms evaluated in floating point, so unless noted the
tolerance is round-off: ``rtol=1e-12``.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from stochhom.bounds import dilute_spheres, hashin_shtrikman, laminate, phase_fractions, reuss, voigt
from stochhom.errors import InputError, MaterialError
from stochhom.materials import AnisotropicElastic, Conductivity, IsotropicElastic, Void
from stochhom.tensors import (
    from_mandel,
    isotropic_projection,
    isotropic_stiffness,
    mandel_rotation,
    plane_strain,
    rotate,
    rotation_matrix,
)

# Closed forms in double precision: round-off only.
RTOL = 1e-12


# --------------------------------------------------------------------------- helpers
def iso(K: float, G: float) -> IsotropicElastic:
    return IsotropicElastic.from_bulk_shear(K, G)


def avg(f, x) -> float:
    return float(np.dot(f, x))


def min_eig(a: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(0.5 * (a + a.T))[0])


def assert_loewner_between(lower: np.ndarray, c: np.ndarray, upper: np.ndarray) -> None:
    """lower ⪯ c ⪯ upper as quadratic forms, up to round-off relative to the largest entry."""
    tol = 1e-12 * np.abs(upper).max()
    assert min_eig(upper - c) >= -tol
    assert min_eig(c - lower) >= -tol


def random_cubic_crystals(rng: np.random.Generator, n: int) -> list[AnisotropicElastic]:
    """Copper-like cubic crystals in random Bunge orientations."""
    angles = np.column_stack([rng.uniform(0, 2 * np.pi, n), rng.uniform(0, np.pi, n), rng.uniform(0, 2 * np.pi, n)])
    base = AnisotropicElastic.from_cubic(168.4, 121.4, 75.4)
    return [base.rotated(r) for r in rotation_matrix(angles, 3)]


# Two-phase Hashin–Shtrikman formulas, written as in validation.md ("Hashin–Shtrikman bounds").
def hs_conductivity(k1, k2, f1, f2, d):
    return k1 + f2 / (1 / (k2 - k1) + f1 / (d * k1))


def hs_bulk_3d(K1, mu1, K2, f1, f2):
    return K1 + f2 / (1 / (K2 - K1) + 3 * f1 / (3 * K1 + 4 * mu1))


def hs_shear_3d(K1, mu1, mu2, f1, f2):
    return mu1 + f2 / (1 / (mu2 - mu1) + 6 * f1 * (K1 + 2 * mu1) / (5 * mu1 * (3 * K1 + 4 * mu1)))


def hs_kappa_2d(kap1, mu1, kap2, f1, f2):
    return kap1 + f2 / (1 / (kap2 - kap1) + f1 / (kap1 + mu1))


def hs_shear_2d(kap1, mu1, mu2, f1, f2):
    return mu1 + f2 / (1 / (mu2 - mu1) + f1 * (kap1 + 2 * mu1) / (2 * mu1 * (kap1 + mu1)))


def hs_multiphase_3d(K, mu, f):
    """Hashin & Shtrikman (1963), J. Mech. Phys. Solids 11, 127, eqs. (3.37)-(3.40): the n-phase
    bounds around phase 1 (the softest for the lower bound, the stiffest for the upper one),
    K1 + A1/(1 + α1 A1) and μ1 + B1/(2(1 + β1 B1))."""
    K1, mu1 = K[0], mu[0]
    alpha = -3 / (3 * K1 + 4 * mu1)
    beta = -3 * (K1 + 2 * mu1) / (5 * mu1 * (3 * K1 + 4 * mu1))
    A = sum(fi / (1 / (Ki - K1) - alpha) for Ki, fi in zip(K[1:], f[1:]))
    B = sum(fi / (1 / (2 * (mi - mu1)) - beta) for mi, fi in zip(mu[1:], f[1:]))
    return K1 + A / (1 + alpha * A), mu1 + B / (2 * (1 + beta * B))


def backus_3d(lam, mu, f) -> np.ndarray:
    """Backus laminate (normal along axis 3), validation.md "Laminate", in Mandel form."""
    lam, mu, f = map(np.asarray, (lam, mu, f))
    m = lam + 2 * mu
    c3333 = 1 / avg(f, 1 / m)
    r = avg(f, lam / m)
    c1133 = r * c3333
    c1313 = 1 / avg(f, 1 / mu)
    c1212 = avg(f, mu)
    c1111 = avg(f, m - lam**2 / m) + r**2 * c3333
    c1122 = avg(f, lam - lam**2 / m) + r**2 * c3333
    return np.array(
        [
            [c1111, c1122, c1133, 0, 0, 0],
            [c1122, c1111, c1133, 0, 0, 0],
            [c1133, c1133, c3333, 0, 0, 0],
            [0, 0, 0, 2 * c1313, 0, 0],  # Mandel shear entries are 2 C_1313 and 2 C_1212
            [0, 0, 0, 0, 2 * c1313, 0],
            [0, 0, 0, 0, 0, 2 * c1212],
        ]
    )


def laminate_by_continuity(tensors_full: list[np.ndarray], f: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Effective elastic tensor of a laminate from the interface conditions, on full tensors.

    For a macroscopic strain E, layer i carries ε_i = E + sym(a_i ⊗ n) (strain compatibility
    across planes of normal n) with Σ f_i a_i = 0 (the mean is E), and the traction C_i:ε_i · n
    is the same in every layer. Solving for the a_i gives <σ> = Σ f_i C_i:ε_i = C* : E.
    """
    d = len(normal)
    nl = len(tensors_full)
    out = np.zeros((d,) * 4)
    for p in range(d):
        for q in range(d):
            e = np.zeros((d, d))
            e[p, q] += 0.5
            e[q, p] += 0.5
            # traction of layer i: t_i = C_i:E·n + M_i a_i, M_i = C_ijkl n_j n_l (acoustic tensor)
            m = [np.einsum("ijkl,j,l->ik", c, normal, normal) for c in tensors_full]
            t0 = [np.einsum("ijkl,kl,j->i", c, e, normal) for c in tensors_full]
            a_mat = np.zeros((d * nl, d * nl))
            rhs = np.zeros(d * nl)
            for i in range(1, nl):  # t_i - t_0 = 0
                a_mat[d * (i - 1) : d * i, d * i : d * (i + 1)] = m[i]
                a_mat[d * (i - 1) : d * i, 0:d] = -m[0]
                rhs[d * (i - 1) : d * i] = t0[0] - t0[i]
            for i in range(nl):  # Σ f_i a_i = 0
                a_mat[d * (nl - 1) :, d * i : d * (i + 1)] = f[i] * np.eye(d)
            a = np.linalg.solve(a_mat, rhs).reshape(nl, d)
            sig = sum(
                fi * np.einsum("ijkl,kl->ij", c, e + 0.5 * (np.outer(ai, normal) + np.outer(normal, ai)))
                for fi, c, ai in zip(f, tensors_full, a)
            )
            out[:, :, p, q] = sig
    return out


# --------------------------------------------------------------------------- phase_fractions
def test_phase_fractions_count_labels():
    image = np.array([[0, 1, 1, 2], [2, 2, 2, 0]])
    assert_allclose(phase_fractions(image), [2 / 8, 2 / 8, 4 / 8], rtol=RTOL)
    assert_allclose(phase_fractions(image, n_phases=5), [2 / 8, 2 / 8, 4 / 8, 0, 0], rtol=RTOL)


def test_phase_fractions_of_3d_image_sum_to_one():
    image = np.random.default_rng(0).integers(0, 4, (5, 6, 7))
    f = phase_fractions(image)
    assert_allclose(f.sum(), 1.0, rtol=RTOL)
    assert_allclose(f, [np.mean(image == i) for i in range(4)], rtol=RTOL)


def test_phase_fractions_rejects_negative_labels():
    with pytest.raises(InputError, match="labels must be >= 0"):
        phase_fractions(np.array([0, -1, 1]))


def test_phase_fractions_rejects_non_integer_image():
    with pytest.raises(InputError, match="integer phase labels"):
        phase_fractions(np.array([0.0, 1.5]))


def test_phase_fractions_rejects_too_few_phases():
    with pytest.raises(InputError, match="label 2"):
        phase_fractions(np.array([0, 1, 2]), n_phases=2)


# --------------------------------------------------------------------------- Voigt / Reuss
@pytest.mark.parametrize("dim", [2, 3])
def test_voigt_and_reuss_of_scalar_conductivities_are_arithmetic_and_harmonic_means(dim):
    # validation.md "Voigt/Reuss bounds": <k> and <1/k>^-1.
    k, f = np.array([1.0, 10.0, 3.0]), np.array([0.2, 0.5, 0.3])
    phases = [Conductivity(ki) for ki in k]
    assert_allclose(voigt(phases, f, dim), avg(f, k) * np.eye(dim), rtol=RTOL)
    assert_allclose(reuss(phases, f, dim), 1 / avg(f, 1 / k) * np.eye(dim), rtol=RTOL, atol=1e-15)


def test_voigt_and_reuss_of_anisotropic_conductivities():
    # validation.md "Voigt/Reuss bounds": <k> and <k^-1>^-1 as tensors.
    k1 = np.array([[3.0, 1.0], [1.0, 2.0]])
    k2 = np.array([[1.0, -0.2], [-0.2, 5.0]])
    f = [0.4, 0.6]
    phases = [Conductivity(k1), Conductivity(k2)]
    assert_allclose(voigt(phases, f, 2), 0.4 * k1 + 0.6 * k2, rtol=RTOL)
    assert_allclose(reuss(phases, f, 2), np.linalg.inv(0.4 * np.linalg.inv(k1) + 0.6 * np.linalg.inv(k2)), rtol=RTOL)


def test_voigt_and_reuss_of_isotropic_elastic_phases_average_the_moduli_3d():
    # Voigt: K_V = <K>, G_V = <G>; Reuss: K_R = <1/K>^-1, G_R = <1/G>^-1 (C^-1 = J/(3K) + K/(2G)).
    K, G, f = np.array([2.0, 40.0, 10.0]), np.array([1.0, 30.0, 4.0]), np.array([0.5, 0.3, 0.2])
    phases = [iso(k, g) for k, g in zip(K, G)]
    assert_allclose(voigt(phases, f, 3), isotropic_stiffness(avg(f, K), avg(f, G), 3), rtol=RTOL, atol=1e-12)
    assert_allclose(
        reuss(phases, f, 3), isotropic_stiffness(1 / avg(f, 1 / K), 1 / avg(f, 1 / G), 3), rtol=RTOL, atol=1e-12
    )


def test_voigt_and_reuss_of_isotropic_elastic_phases_average_the_moduli_2d():
    # Plane strain: the same with κ = λ + μ in place of K.
    phases = [IsotropicElastic(3.0, 0.35), IsotropicElastic(72.0, 0.22)]
    f = np.array([0.6, 0.4])
    kap = np.array([p.plane_strain_bulk_modulus for p in phases])
    G = np.array([p.shear_modulus for p in phases])
    assert_allclose(voigt(phases, f, 2), isotropic_stiffness(avg(f, kap), avg(f, G), 2), rtol=RTOL, atol=1e-12)
    assert_allclose(
        reuss(phases, f, 2), isotropic_stiffness(1 / avg(f, 1 / kap), 1 / avg(f, 1 / G), 2), rtol=RTOL, atol=1e-12
    )


def test_voigt_and_reuss_of_anisotropic_elastic_phases_are_tensor_means():
    # validation.md "Voigt/Reuss bounds": <C> and <C^-1>^-1.
    phases = random_cubic_crystals(np.random.default_rng(1), 3)
    f = np.array([0.2, 0.3, 0.5])
    c = [p.C for p in phases]
    assert_allclose(voigt(phases, f, 3), sum(fi * ci for fi, ci in zip(f, c)), rtol=RTOL)
    r = np.linalg.inv(sum(fi * np.linalg.inv(ci) for fi, ci in zip(f, c)))
    assert_allclose(reuss(phases, f, 3), r, rtol=1e-10, atol=1e-10)  # inverse of a condition-~10 matrix
    assert_loewner_between(reuss(phases, f, 3), reuss(phases, f, 3), voigt(phases, f, 3))
    # plane strain: the 2D bounds are those of the plane-strain blocks
    assert_allclose(voigt(phases, f, 2), plane_strain(voigt(phases, f, 3)), rtol=RTOL)


def test_reuss_with_a_void_phase_is_zero_and_voigt_ignores_it():
    for phases, dim, n in (([Conductivity(5.0), Void()], 3, 3), ([iso(10.0, 4.0), Void()], 2, 3)):
        assert_allclose(reuss(phases, [0.9, 0.1], dim), np.zeros((n, n)), atol=0)
        assert_allclose(voigt(phases, [0.9, 0.1], dim), 0.9 * phases[0].tensor(dim), rtol=RTOL)


def test_reuss_ignores_a_void_phase_with_zero_fraction():
    phases = [Conductivity(5.0), Void()]
    assert_allclose(reuss(phases, [1.0, 0.0], 2), 5.0 * np.eye(2), rtol=RTOL)


def test_bounds_accept_a_mapping_of_labels_to_phases():
    # labels are sorted: fractions are given in label order
    phases = {3: Conductivity(1.0), 0: Conductivity(4.0)}
    assert_allclose(voigt(phases, [0.25, 0.75], 2), (0.25 * 4.0 + 0.75 * 1.0) * np.eye(2), rtol=RTOL)


# --------------------------------------------------------------------------- Hashin–Shtrikman, two phases
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize(("k_soft", "k_stiff", "f_soft"), [(1.0, 10.0, 0.3), (2.0, 3.0, 0.8), (0.01, 100.0, 0.5)])
def test_hs_conductivity_matches_two_phase_formula(d, k_soft, k_stiff, f_soft):
    # validation.md "Hashin–Shtrikman bounds", conductivity in d dimensions.
    f_stiff = 1 - f_soft
    lower = hs_conductivity(k_soft, k_stiff, f_soft, f_stiff, d)  # phase 1 soft
    upper = hs_conductivity(k_stiff, k_soft, f_stiff, f_soft, d)  # phases swapped
    for phases, f in (
        ([Conductivity(k_soft), Conductivity(k_stiff)], [f_soft, f_stiff]),
        ([Conductivity(k_stiff), Conductivity(k_soft)], [f_stiff, f_soft]),
    ):
        b = hashin_shtrikman(phases, f, d)
        assert b.shear is None
        assert_allclose(b.bulk, (lower, upper), rtol=RTOL)


@pytest.mark.parametrize(
    ("soft", "stiff", "f_soft"),
    [((2.0, 1.0), (40.0, 30.0), 0.3), ((5.0, 3.0), (6.0, 3.5), 0.6), ((1.0, 0.1), (200.0, 150.0), 0.9)],
)
def test_hs_3d_elastic_matches_two_phase_formulas(soft, stiff, f_soft):
    # validation.md "Hashin–Shtrikman bounds", 3D bulk and shear moduli.
    (K1, mu1), (K2, mu2) = soft, stiff  # well ordered: K1 < K2 and mu1 < mu2
    f1, f2 = f_soft, 1 - f_soft
    k_lo, k_up = hs_bulk_3d(K1, mu1, K2, f1, f2), hs_bulk_3d(K2, mu2, K1, f2, f1)
    g_lo, g_up = hs_shear_3d(K1, mu1, mu2, f1, f2), hs_shear_3d(K2, mu2, mu1, f2, f1)
    for phases, f in (([iso(*soft), iso(*stiff)], [f1, f2]), ([iso(*stiff), iso(*soft)], [f2, f1])):
        b = hashin_shtrikman(phases, f, 3)
        assert_allclose(b.bulk, (k_lo, k_up), rtol=RTOL)
        assert_allclose(b.shear, (g_lo, g_up), rtol=RTOL)


@pytest.mark.parametrize(
    ("soft", "stiff", "f_soft"),
    [((3.0, 0.35), (72.0, 0.22), 0.4), ((1.0, 0.3), (1.5, 0.25), 0.7), ((0.1, 0.45), (400.0, 0.2), 0.2)],
)
def test_hs_plane_strain_matches_two_phase_formulas(soft, stiff, f_soft):
    # validation.md "Hashin–Shtrikman bounds", 2D plane strain (κ = λ + μ and μ).
    ps, pt = IsotropicElastic(*soft), IsotropicElastic(*stiff)
    kap1, mu1 = ps.plane_strain_bulk_modulus, ps.shear_modulus
    kap2, mu2 = pt.plane_strain_bulk_modulus, pt.shear_modulus
    assert kap1 < kap2 and mu1 < mu2
    f1, f2 = f_soft, 1 - f_soft
    k_lo, k_up = hs_kappa_2d(kap1, mu1, kap2, f1, f2), hs_kappa_2d(kap2, mu2, kap1, f2, f1)
    g_lo, g_up = hs_shear_2d(kap1, mu1, mu2, f1, f2), hs_shear_2d(kap2, mu2, mu1, f2, f1)
    for phases, f in (([ps, pt], [f1, f2]), ([pt, ps], [f2, f1])):
        b = hashin_shtrikman(phases, f, 2)
        assert_allclose(b.bulk, (k_lo, k_up), rtol=RTOL)
        assert_allclose(b.shear, (g_lo, g_up), rtol=RTOL)


def test_hs_bulk_bounds_coincide_for_equal_shear_moduli():
    # Hill (1963): with a uniform shear modulus the effective bulk modulus is exact,
    # K* = [<1/(K + 4μ/3)>]^-1 - 4μ/3, so the two HS bulk bounds coincide.
    mu = 3.0
    K, f = np.array([4.0, 50.0]), np.array([0.35, 0.65])
    b = hashin_shtrikman([iso(K[0], mu), iso(K[1], mu)], f, 3)
    exact = 1 / avg(f, 1 / (K + 4 * mu / 3)) - 4 * mu / 3
    assert_allclose(b.bulk, (exact, exact), rtol=RTOL)
    assert_allclose(b.shear, (mu, mu), rtol=RTOL)


def test_hs_of_a_single_phase_is_that_phase():
    b = hashin_shtrikman([iso(7.0, 2.0), iso(100.0, 80.0)], [1.0, 0.0], 3)
    assert_allclose(b.bulk, (7.0, 7.0), rtol=RTOL)
    assert_allclose(b.shear, (2.0, 2.0), rtol=RTOL)
    b = hashin_shtrikman([Conductivity(3.0)], [1.0], 2)
    assert_allclose(b.bulk, (3.0, 3.0), rtol=RTOL)


def test_hs_ignores_phases_with_zero_fraction():
    # The reference media come from the phases that are present.
    two = hashin_shtrikman([iso(2.0, 1.0), iso(40.0, 30.0)], [0.3, 0.7], 3)
    three = hashin_shtrikman([iso(2.0, 1.0), iso(40.0, 30.0), iso(1e4, 1e4)], [0.3, 0.7, 0.0], 3)
    assert_allclose(three.bulk, two.bulk, rtol=RTOL)
    assert_allclose(three.shear, two.shear, rtol=RTOL)
    c = hashin_shtrikman([Conductivity(1.0), Conductivity(10.0), Void()], [0.5, 0.5, 0.0], 3)
    assert_allclose(c.bulk, hashin_shtrikman([Conductivity(1.0), Conductivity(10.0)], [0.5, 0.5], 3).bulk, rtol=RTOL)


# --------------------------------------------------------------------------- Hashin–Shtrikman with voids
@pytest.mark.parametrize("d", [2, 3])
def test_hs_conductivity_with_void_lower_bound_zero_upper_from_formula(d):
    # validation.md "Hashin–Shtrikman bounds" with k2 = 0; the lower bound of a porous medium is 0.
    k1, f1, f2 = 5.0, 0.7, 0.3
    b = hashin_shtrikman([Conductivity(k1), Void()], [f1, f2], d)
    assert b.bulk[0] == 0.0
    # Upper bound: the conducting phase is phase 1 and the void has k2 = 0.
    assert_allclose(b.bulk[1], hs_conductivity(k1, 0.0, f1, f2, d), rtol=RTOL)
    # = k1 · 2f1/(3 - f1) in 3D (Hashin coated spheres with empty cores).
    if d == 3:
        assert_allclose(b.bulk[1], k1 * 2 * f1 / (3 - f1), rtol=RTOL)


def test_hs_3d_elastic_with_void():
    # validation.md "Hashin–Shtrikman bounds" (3D) with K2 = μ2 = 0.
    K1, mu1, f1, f2 = 40.0, 30.0, 0.8, 0.2
    b = hashin_shtrikman([iso(K1, mu1), Void()], [f1, f2], 3)
    assert b.bulk[0] == 0.0 and b.shear[0] == 0.0
    assert_allclose(b.bulk[1], hs_bulk_3d(K1, mu1, 0.0, f1, f2), rtol=RTOL)
    assert_allclose(b.shear[1], hs_shear_3d(K1, mu1, 0.0, f1, f2), rtol=RTOL)
    # Porous upper bound in closed form: K = 4 μ1 K1 f1 / (4 μ1 + 3 K1 f2).
    assert_allclose(b.bulk[1], 4 * mu1 * K1 * f1 / (4 * mu1 + 3 * K1 * f2), rtol=RTOL)


def test_hs_plane_strain_with_void():
    # validation.md "Hashin–Shtrikman bounds" (2D plane strain) with κ2 = μ2 = 0.
    p = IsotropicElastic(70.0, 0.3)
    kap1, mu1, f1, f2 = p.plane_strain_bulk_modulus, p.shear_modulus, 0.6, 0.4
    b = hashin_shtrikman({0: Void(), 1: p}, [f2, f1], 2)
    assert b.bulk[0] == 0.0 and b.shear[0] == 0.0
    assert_allclose(b.bulk[1], hs_kappa_2d(kap1, mu1, 0.0, f1, f2), rtol=RTOL)
    assert_allclose(b.shear[1], hs_shear_2d(kap1, mu1, 0.0, f1, f2), rtol=RTOL)


# --------------------------------------------------------------------------- Hashin–Shtrikman, many phases
def test_hs_three_phase_matches_hashin_shtrikman_1963_multiphase_form():
    K, mu, f = [2.0, 10.0, 30.0], [1.0, 5.0, 20.0], [0.3, 0.5, 0.2]  # well ordered
    b = hashin_shtrikman([iso(k, g) for k, g in zip(K, mu)], f, 3)
    lower = hs_multiphase_3d(K, mu, f)
    upper = hs_multiphase_3d(K[::-1], mu[::-1], f[::-1])
    assert_allclose(b.bulk, (lower[0], upper[0]), rtol=RTOL)
    assert_allclose(b.shear, (lower[1], upper[1]), rtol=RTOL)


@pytest.mark.parametrize("d", [2, 3])
def test_hs_reduces_to_two_phase_formula_when_two_phases_are_equal(d):
    # validation.md "Hashin–Shtrikman bounds" (two-phase formulas) as the reference.
    # Splitting phase 1 into two identical phases changes nothing.
    b3 = hashin_shtrikman([Conductivity(1.0), Conductivity(8.0), Conductivity(1.0)], [0.2, 0.5, 0.3], d)
    expected = (hs_conductivity(1.0, 8.0, 0.5, 0.5, d), hs_conductivity(8.0, 1.0, 0.5, 0.5, d))
    assert_allclose(b3.bulk, expected, rtol=RTOL)
    soft, stiff = (2.0, 1.0), (40.0, 30.0)
    b = hashin_shtrikman([iso(*stiff), iso(*soft), iso(*stiff)], [0.1, 0.4, 0.5], 3)
    assert_allclose(b.bulk, (hs_bulk_3d(*soft, 40.0, 0.4, 0.6), hs_bulk_3d(*stiff, 2.0, 0.6, 0.4)), rtol=RTOL)
    assert_allclose(b.shear, (hs_shear_3d(*soft, 30.0, 0.4, 0.6), hs_shear_3d(*stiff, 1.0, 0.6, 0.4)), rtol=RTOL)


def test_hs_is_invariant_under_phase_permutation():
    phases = [iso(2.0, 1.0), iso(10.0, 12.0), iso(30.0, 4.0), Void()]  # not well ordered
    f = np.array([0.3, 0.3, 0.3, 0.1])
    ref = hashin_shtrikman(phases, f, 3)
    perm = [2, 0, 3, 1]
    out = hashin_shtrikman([phases[i] for i in perm], f[perm], 3)
    assert_allclose(out.bulk, ref.bulk, rtol=RTOL)
    assert_allclose(out.shear, ref.shear, rtol=RTOL)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("dim", [2, 3])
def test_reuss_below_hs_lower_below_hs_upper_below_voigt(seed, dim):
    # validation.md "Voigt/Reuss bounds" and "Hashin–Shtrikman bounds": HS bounds are tighter.
    # For isotropic phases the Voigt and Reuss tensors are isotropic; their moduli bracket HS.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    phases = [IsotropicElastic(rng.uniform(0.5, 200.0), rng.uniform(-0.4, 0.45)) for _ in range(n)]
    f = rng.dirichlet(np.ones(n))
    b = hashin_shtrikman(phases, f, dim)
    kv, gv = isotropic_projection(voigt(phases, f, dim))
    kr, gr = isotropic_projection(reuss(phases, f, dim))
    tol = 1e-12 * kv
    assert kr - tol <= b.bulk[0] <= b.bulk[1] <= kv + tol
    assert gr - tol <= b.shear[0] <= b.shear[1] <= gv + tol
    # the same for conductivity
    cond = [Conductivity(k) for k in rng.uniform(0.1, 100.0, n)]
    bc = hashin_shtrikman(cond, f, dim)
    kv, kr = voigt(cond, f, dim)[0, 0], reuss(cond, f, dim)[0, 0]
    assert kr * (1 - 1e-12) <= bc.bulk[0] <= bc.bulk[1] <= kv * (1 + 1e-12)


def test_hs_bounds_are_strictly_inside_voigt_reuss_for_contrasting_phases():
    b = hashin_shtrikman([Conductivity(1.0), Conductivity(10.0)], [0.5, 0.5], 3)
    assert 1 / (0.5 / 1 + 0.5 / 10) < b.bulk[0] < b.bulk[1] < 5.5


# --------------------------------------------------------------------------- laminates: conductivity
@pytest.mark.parametrize("dim", [2, 3])
def test_laminate_conductivity_is_arithmetic_along_and_harmonic_across(dim):
    # validation.md "Laminate": <k> along the layers and <1/k>^-1 across them.
    k, f = np.array([1.0, 20.0, 4.0]), np.array([0.3, 0.3, 0.4])
    for normal in range(dim):
        out = laminate([Conductivity(ki) for ki in k], f, dim, normal=normal)
        expected = avg(f, k) * np.eye(dim)
        expected[normal, normal] = 1 / avg(f, 1 / k)
        assert_allclose(out, expected, rtol=RTOL, atol=1e-14)


def test_laminate_default_normal_is_last_axis():
    phases, f = [Conductivity(1.0), Conductivity(3.0)], [0.5, 0.5]
    assert_allclose(laminate(phases, f, 3), laminate(phases, f, 3, normal=2), rtol=0)
    assert_allclose(laminate(phases, f, 2), laminate(phases, f, 2, normal=1), rtol=0)


def test_laminate_conductivity_with_void_layer_is_insulating_across():
    # validation.md "Laminate" with k = 0 in one layer: <1/k>^-1 = 0 across, <k> along.
    out = laminate([Conductivity(6.0), Void()], [0.75, 0.25], 3)
    assert_allclose(out, np.diag([4.5, 4.5, 0.0]), rtol=RTOL, atol=0)


def test_laminate_anisotropic_conductivity_matches_interface_conditions():
    # Gradient g_i = G + a_i n with <a> = 0 and continuous normal flux n·k_i g_i:
    # a_i = (q - n·k_i G)/(n·k_i n) with q = <1/(n·k n)>^-1 <(n·k G)/(n·k n)>.
    rng = np.random.default_rng(2)
    ks = []
    for _ in range(3):
        a = rng.standard_normal((3, 3))
        ks.append(a @ a.T + np.eye(3))
    f = np.array([0.5, 0.2, 0.3])
    n = np.array([0.0, 1.0, 0.0])
    expected = np.zeros((3, 3))
    for c in range(3):
        g = np.eye(3)[c]
        knn = np.array([n @ k @ n for k in ks])
        kg = np.array([n @ k @ g for k in ks])
        q = avg(f, kg / knn) / avg(f, 1 / knn)
        flux = sum(fi * k @ (g + (q - kgi) / knni * n) for fi, k, kgi, knni in zip(f, ks, kg, knn))
        expected[:, c] = flux
    out = laminate([Conductivity(k) for k in ks], f, 3, normal=1)
    assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- laminates: elasticity
def test_isotropic_laminate_matches_backus_3d():
    # validation.md "Laminate" (Backus), written out in backus_3d().
    phases = [IsotropicElastic(3.0, 0.35), IsotropicElastic(72.0, 0.22), IsotropicElastic(210.0, 0.3)]
    f = np.array([0.5, 0.3, 0.2])
    lam = [p.lame_lambda for p in phases]
    mu = [p.shear_modulus for p in phases]
    assert_allclose(laminate(phases, f, 3), backus_3d(lam, mu, f), rtol=RTOL, atol=1e-12)


def test_isotropic_laminate_matches_backus_plane_strain():
    # Normal along axis 2 in 2D: C2222 = <1/(λ+2μ)>^-1, C1122 = <λ/(λ+2μ)> C2222,
    # C1212 = <1/μ>^-1, C1111 = <λ+2μ-λ²/(λ+2μ)> + <λ/(λ+2μ)>² C2222 (Backus with 3 -> 2).
    phases = [IsotropicElastic(3.0, 0.35), IsotropicElastic(72.0, 0.22)]
    f = np.array([0.6, 0.4])
    lam = np.array([p.lame_lambda for p in phases])
    mu = np.array([p.shear_modulus for p in phases])
    m = lam + 2 * mu
    c2222 = 1 / avg(f, 1 / m)
    r = avg(f, lam / m)
    c1111 = avg(f, m - lam**2 / m) + r**2 * c2222
    expected = np.array([[c1111, r * c2222, 0], [r * c2222, c2222, 0], [0, 0, 2 / avg(f, 1 / mu)]])
    out = laminate(phases, f, 2)
    assert_allclose(out, expected, rtol=RTOL, atol=1e-12)
    # and it is the plane-strain block of the 3D laminate with the same (in-plane) normal
    assert_allclose(out, plane_strain(laminate(phases, f, 3, normal=1)), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
def test_laminate_of_identical_phases_returns_the_phase_tensor(dim):
    crystal = random_cubic_crystals(np.random.default_rng(3), 1)[0]
    for phase in (crystal, IsotropicElastic(5.0, 0.2)):
        out = laminate([phase, phase, phase], [0.2, 0.5, 0.3], dim, normal=0)
        assert_allclose(out, phase.tensor(dim), rtol=1e-12, atol=1e-12 * np.abs(phase.tensor(dim)).max())
    k = Conductivity([[3.0, 1.0, 0.5], [1.0, 2.0, 0.2], [0.5, 0.2, 4.0]])
    assert_allclose(laminate([k, k], [0.3, 0.7], dim), k.tensor(dim), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("normal", [0, 1, 2])
def test_anisotropic_laminate_is_spd_and_between_reuss_and_voigt(normal):
    # validation.md "Voigt/Reuss bounds": every effective tensor, the exact laminate included.
    phases = random_cubic_crystals(np.random.default_rng(4), 4)
    f = np.array([0.1, 0.2, 0.3, 0.4])
    c = laminate(phases, f, 3, normal=normal)
    assert_allclose(c, c.T, rtol=0, atol=1e-12 * np.abs(c).max())
    assert min_eig(c) > 0
    assert_loewner_between(reuss(phases, f, 3), c, voigt(phases, f, 3))
    # strictly inside: laminates are neither Voigt nor Reuss for contrasting orientations
    assert np.linalg.eigvalsh(voigt(phases, f, 3) - c)[-1] > 1.0
    assert np.linalg.eigvalsh(c - reuss(phases, f, 3))[-1] > 1.0


@pytest.mark.parametrize("dim", [2, 3])
def test_anisotropic_laminate_satisfies_interface_conditions(dim):
    # Independent construction on full tensors: strain compatibility + traction continuity.
    rng = np.random.default_rng(5)
    phases = random_cubic_crystals(rng, 3)
    f = np.array([0.3, 0.45, 0.25])
    for normal in range(dim):
        out = laminate(phases, f, dim, normal=normal)
        full = [from_mandel(p.tensor(dim), order=4) for p in phases]
        expected = laminate_by_continuity(full, f, np.eye(dim)[normal])
        assert_allclose(from_mandel(out, order=4), expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


def test_laminate_normal_argument_permutes_axes_elasticity():
    # Rotating the whole microstructure by R (R e3 = e1, or R e3 = e2) rotates the effective tensor.
    phases = random_cubic_crystals(np.random.default_rng(6), 3)
    f = [0.3, 0.3, 0.4]
    c2 = laminate(phases, f, 3, normal=2)
    r_to_0 = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # e3 -> e1 (cyclic, det 1)
    r_to_1 = r_to_0.T  # e3 -> e2
    for normal, r in ((0, r_to_0), (1, r_to_1)):
        assert_allclose(r @ [0, 0, 1], np.eye(3)[normal], atol=0)
        q = mandel_rotation(r)
        rotated_phases = [AnisotropicElastic(q @ p.C @ q.T) for p in phases]
        assert_allclose(
            laminate(rotated_phases, f, 3, normal=normal), q @ c2 @ q.T, rtol=1e-12, atol=1e-12 * np.abs(c2).max()
        )


def test_laminate_normal_argument_permutes_axes_isotropic_and_2d():
    phases = [IsotropicElastic(3.0, 0.35), IsotropicElastic(72.0, 0.22)]
    f = [0.6, 0.4]
    # 3D: isotropic phases are unchanged by the permutation, so only the result rotates.
    r = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert_allclose(laminate(phases, f, 3, normal=0), rotate(laminate(phases, f, 3, normal=2), r), atol=1e-12)
    # 2D: a quarter turn maps the axis-2 normal onto axis 1.
    r2 = rotation_matrix(np.pi / 2, 2)
    assert_allclose(laminate(phases, f, 2, normal=0), rotate(laminate(phases, f, 2, normal=1), r2), atol=1e-12)


def test_laminate_normal_argument_permutes_axes_conductivity():
    k = [np.array([[3.0, 1.0, 0.5], [1.0, 2.0, 0.2], [0.5, 0.2, 4.0]]), np.diag([1.0, 7.0, 0.5])]
    f = [0.35, 0.65]
    r = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    c2 = laminate([Conductivity(ki) for ki in k], f, 3, normal=2)
    c0 = laminate([Conductivity(r @ ki @ r.T) for ki in k], f, 3, normal=0)
    assert_allclose(c0, r @ c2 @ r.T, rtol=RTOL, atol=1e-14)


def test_laminate_with_void_layer_has_zero_normal_stiffness_and_plane_stress_in_plane():
    # Traction-free layers: σ_i3 = 0, the solid carries in-plane plane stress,
    # C_TT = f_s [E/(1-ν²) [[1, ν], [ν, 1]], Mandel shear 2μ].
    E, nu, fs = 70.0, 0.3, 0.8
    out = laminate([IsotropicElastic(E, nu), Void()], [fs, 1 - fs], 3)
    normal_rows = [2, 3, 4]  # 33, 23, 13
    assert_allclose(out[normal_rows, :], 0.0, atol=0)
    assert_allclose(out[:, normal_rows], 0.0, atol=0)
    tt = out[np.ix_([0, 1, 5], [0, 1, 5])]
    e_ps = E / (1 - nu**2)
    expected = fs * np.array([[e_ps, nu * e_ps, 0.0], [nu * e_ps, e_ps, 0.0], [0.0, 0.0, E / (1 + nu)]])
    assert_allclose(tt, expected, rtol=RTOL, atol=1e-12)


def test_laminate_ignores_phases_with_zero_fraction_and_accepts_mappings():
    a, b = IsotropicElastic(3.0, 0.35), IsotropicElastic(72.0, 0.22)
    ref = laminate([a, b], [0.4, 0.6], 3)
    assert_allclose(laminate({0: a, 1: Void(), 2: b}, [0.4, 0.0, 0.6], 3), ref, rtol=RTOL)


# --------------------------------------------------------------------------- dilute spheres
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("ki", [0.0, 0.1, 5.0, 1e3])
def test_dilute_conductivity_matches_eshelby_formula(d, ki):
    # k* = 1 + d f (k_i - 1)/(k_i + d - 1), matrix conductivity 1 (validation.md "Dilute spherical inclusions").
    f = 0.03
    inclusion = Void() if ki == 0.0 else Conductivity(ki)
    assert_allclose(dilute_spheres(Conductivity(1.0), inclusion, f, d), 1 + d * f * (ki - 1) / (ki + d - 1), rtol=RTOL)


def test_dilute_conductivity_is_homogeneous_of_degree_one():
    # Scaling both conductivities by s scales k* by s.
    s = 7.5
    a = dilute_spheres(Conductivity(1.0), Conductivity(4.0), 0.05, 3)
    assert_allclose(dilute_spheres(Conductivity(s), Conductivity(4.0 * s), 0.05, 3), s * a, rtol=RTOL)


@pytest.mark.parametrize(("matrix", "incl"), [((10.0, 5.0), (100.0, 80.0)), ((50.0, 30.0), (2.0, 1.0))])
def test_dilute_elastic_matches_eshelby_formulas(matrix, incl):
    # validation.md "Dilute spherical inclusions": K* and μ* with α, β.
    Km, mum = matrix
    Ki, mui = incl
    f = 0.02
    alpha = 3 * Km / (3 * Km + 4 * mum)
    beta = 6 * (Km + 2 * mum) / (5 * (3 * Km + 4 * mum))
    K = Km + f * (Ki - Km) / (1 + alpha * (Ki - Km) / Km)
    mu = mum + f * (mui - mum) / (1 + beta * (mui - mum) / mum)
    c = dilute_spheres(iso(Km, mum), iso(Ki, mui), f, 3)
    assert_allclose(c, isotropic_stiffness(K, mu, 3), rtol=RTOL, atol=1e-12)
    assert_allclose(isotropic_projection(c), (K, mu), rtol=RTOL)


def test_dilute_elastic_with_void_inclusions():
    # validation.md "Dilute spherical inclusions" with K_i = μ_i = 0.
    # K* = K_m - f K_m/(1 - α), μ* = μ_m - f μ_m/(1 - β).
    Km, mum, f = 40.0, 30.0, 0.01
    alpha = 3 * Km / (3 * Km + 4 * mum)
    beta = 6 * (Km + 2 * mum) / (5 * (3 * Km + 4 * mum))
    K, mu = isotropic_projection(dilute_spheres(iso(Km, mum), Void(), f, 3))
    assert_allclose((K, mu), (Km - f * Km / (1 - alpha), mum - f * mum / (1 - beta)), rtol=RTOL)


def _second_order_check(diff, fs=(1e-2, 1e-3, 1e-4)):
    """diff(f) = O(f²): |diff(f)| < C f² with C = 2 |diff(f0)|/f0² taken at the largest f0, and the
    error drops by ~100 per decade (the next term is O(f³), so the ratio is 100 (1 + O(f)))."""
    errs = np.array([abs(diff(f)) for f in fs])
    c = 2 * errs[0] / fs[0] ** 2
    assert errs[0] > 0  # the two estimates differ at second order; the check is not vacuous
    for f, e in zip(fs, errs):
        assert e < c * f**2
    ratios = errs[:-1] / errs[1:]
    assert np.all((ratios > 80) & (ratios < 120))


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("ki", [0.0, 0.2, 10.0])
def test_dilute_conductivity_agrees_with_hs_bound_around_the_matrix_to_first_order(d, ki):
    # validation.md "Dilute spherical inclusions" vs "Hashin–Shtrikman bounds": the HS bound with the
    # matrix as phase 1 (the lower bound if the matrix is the poorer conductor, the upper otherwise),
    # k_m + f/[1/(k_i - k_m) + (1 - f)/(d k_m)], expands as the dilute estimate + O(f²).
    km = 1.0
    inclusion = Void() if ki == 0.0 else Conductivity(ki)
    which = 0 if km < ki else 1

    def diff(f):
        hs = hashin_shtrikman([Conductivity(km), inclusion], [1 - f, f], d).bulk[which]
        return hs - dilute_spheres(Conductivity(km), inclusion, f, d)

    _second_order_check(diff)


@pytest.mark.parametrize(
    ("matrix", "incl"), [((10.0, 5.0), (100.0, 80.0)), ((50.0, 30.0), (2.0, 1.0)), ((40.0, 30.0), None)]
)
def test_dilute_elastic_agrees_with_hs_bound_around_the_matrix_to_first_order(matrix, incl):
    # validation.md "Dilute spherical inclusions" vs "Hashin–Shtrikman bounds" (3D): with the matrix as
    # phase 1, K_m + f/[1/ΔK + 3(1-f)/(3K_m+4μ_m)] = dilute K* + O(f²), and likewise for μ.
    m = iso(*matrix)
    inclusion = Void() if incl is None else iso(*incl)
    which = 1 if incl is None or incl[0] < matrix[0] else 0  # matrix is the stiff phase -> upper bound

    for modulus in (0, 1):  # bulk, shear

        def diff(f, modulus=modulus):
            b = hashin_shtrikman([m, inclusion], [1 - f, f], 3)
            hs = (b.bulk, b.shear)[modulus][which]
            return hs - isotropic_projection(dilute_spheres(m, inclusion, f, 3))[modulus]

        _second_order_check(diff)


# --------------------------------------------------------------------------- bad input
PAIR = [IsotropicElastic(1.0, 0.3), IsotropicElastic(10.0, 0.2)]


@pytest.mark.parametrize("func", [voigt, reuss, hashin_shtrikman, laminate])
def test_fractions_must_sum_to_one(func):
    with pytest.raises(InputError, match="sum to 1"):
        func(PAIR, [0.5, 0.6], 3)


@pytest.mark.parametrize("func", [voigt, reuss, hashin_shtrikman, laminate])
def test_fractions_must_be_non_negative(func):
    with pytest.raises(InputError, match=">= 0"):
        func(PAIR, [1.5, -0.5], 3)


@pytest.mark.parametrize("func", [voigt, reuss, hashin_shtrikman, laminate])
def test_fractions_must_not_be_nan(func):
    with pytest.raises(InputError, match="sum to 1"):
        func(PAIR, [np.nan, 0.5], 3)


@pytest.mark.parametrize("func", [voigt, reuss, hashin_shtrikman, laminate])
@pytest.mark.parametrize("fractions", [[1.0], [0.2, 0.3, 0.5], [[0.5, 0.5]]])
def test_one_fraction_per_phase(func, fractions):
    with pytest.raises(InputError, match=r"one volume fraction per phase \(2\)"):
        func(PAIR, fractions, 3)


@pytest.mark.parametrize("func", [voigt, reuss, hashin_shtrikman, laminate])
def test_mixing_conductivity_and_elastic_phases_is_rejected(func):
    with pytest.raises(MaterialError, match=r"phases mix \['conductivity', 'elasticity'\] laws"):
        func([Conductivity(1.0), IsotropicElastic(1.0, 0.3)], [0.5, 0.5], 3)


@pytest.mark.parametrize("func", [voigt, reuss, hashin_shtrikman, laminate])
def test_all_void_is_rejected(func):
    with pytest.raises(MaterialError, match="every phase is Void"):
        func([Void(), Void()], [0.5, 0.5], 3)


@pytest.mark.parametrize("func", [voigt, reuss, hashin_shtrikman, laminate])
@pytest.mark.parametrize("dim", [1, 4])
def test_dimension_must_be_2_or_3(func, dim):
    with pytest.raises(InputError, match="dim must be 2 or 3"):
        func([Conductivity(1.0), Conductivity(2.0)], [0.5, 0.5], dim)


@pytest.mark.parametrize(
    "phase", [AnisotropicElastic.from_cubic(168.4, 121.4, 75.4), Conductivity([[2.0, 0.0], [0.0, 1.0]])]
)
def test_hs_rejects_anisotropic_phases(phase):
    other = IsotropicElastic(1.0, 0.3) if phase.physics == "elasticity" else Conductivity(1.0)
    with pytest.raises(MaterialError, match="need isotropic phases"):
        hashin_shtrikman([other, phase], [0.5, 0.5], 2 if phase.physics == "conductivity" else 3)


@pytest.mark.parametrize("normal", [-1, 3])
def test_laminate_rejects_bad_normal(normal):
    with pytest.raises(InputError, match=r"normal must be an axis in 0\.\.2"):
        laminate(PAIR, [0.5, 0.5], 3, normal=normal)


def test_dilute_rejects_mixed_physics():
    with pytest.raises(MaterialError, match="mix"):
        dilute_spheres(Conductivity(1.0), IsotropicElastic(1.0, 0.3), 0.1, 3)
    with pytest.raises(MaterialError, match="mix"):
        dilute_spheres(IsotropicElastic(1.0, 0.3), Conductivity(1.0), 0.1, 3)


def test_dilute_rejects_2d_elasticity_and_anisotropic_phases():
    with pytest.raises(MaterialError, match="IsotropicElastic matrix in 3D"):
        dilute_spheres(PAIR[0], PAIR[1], 0.1, 2)
    with pytest.raises(MaterialError, match="isotropic inclusion"):
        dilute_spheres(PAIR[0], AnisotropicElastic.from_cubic(2.0, 1.0, 1.0), 0.1, 3)
    with pytest.raises(MaterialError, match="isotropic phases"):
        dilute_spheres(Conductivity(1.0), Conductivity(np.eye(3)), 0.1, 3)
    with pytest.raises(MaterialError, match="matrix cannot be Void"):
        dilute_spheres(Void(), Conductivity(1.0), 0.1, 3)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, np.nan])
def test_dilute_rejects_fraction_outside_unit_interval(fraction):
    with pytest.raises(InputError, match=r"fraction must be in \[0, 1\]"):
        dilute_spheres(Conductivity(1.0), Conductivity(2.0), fraction, 3)


def test_dilute_rejects_bad_dimension():
    with pytest.raises(InputError, match="dim must be 2 or 3"):
        dilute_spheres(Conductivity(1.0), Conductivity(2.0), 0.1, 4)
