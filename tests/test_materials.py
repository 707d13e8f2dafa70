"""Phase laws (stochhom.materials): moduli relations, tensors, and input validation.

The elastic relations are the textbook ones (e.g. Landau & Lifshitz, Theory of
Elasticity, §4-5); they are exact, so the tolerances are round-off (``rtol=1e-12``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose

from stochhom.errors import InputError, MaterialError
from stochhom.materials import (
    CONDUCTIVITY,
    ELASTICITY,
    AnisotropicElastic,
    Conductivity,
    IsotropicElastic,
    Void,
)
from stochhom.tensors import isotropic_projection, isotropic_stiffness, plane_strain, rotate, rotation_matrix

# Exact closed-form relations: round-off only.
RTOL = 1e-12
SQ2 = np.sqrt(2.0)


def lame(E: float, nu: float) -> tuple[float, float]:
    """λ = Eν/((1+ν)(1−2ν)), μ = E/(2(1+ν))."""
    return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))


# --------------------------------------------------------------------------- IsotropicElastic
@pytest.mark.parametrize(("E", "nu"), [(210.0, 0.3), (3.0, 0.35), (1.0, 0.0), (5.0, -0.5), (70.0, 0.499)])
def test_isotropic_elastic_moduli_relations(E, nu):
    m = IsotropicElastic(E=E, nu=nu)
    lam, mu = lame(E, nu)
    assert_allclose(m.lame_lambda, lam, rtol=RTOL, atol=RTOL * E)
    assert_allclose(m.shear_modulus, mu, rtol=RTOL)
    assert_allclose(m.lame_mu, mu, rtol=RTOL)
    assert_allclose(m.bulk_modulus, lam + 2 * mu / 3, rtol=RTOL)  # K = λ + 2μ/3
    assert_allclose(m.bulk_modulus, E / (3 * (1 - 2 * nu)), rtol=RTOL)
    assert_allclose(m.plane_strain_bulk_modulus, lam + mu, rtol=RTOL)  # κ = λ + μ
    assert m.physics == ELASTICITY
    assert m.is_isotropic and not m.is_void


@pytest.mark.parametrize(("K", "G"), [(10.0, 3.0), (43.0, 30.0), (1.0, 1.4), (160.0, 80.0)])
def test_from_bulk_shear_round_trip(K, G):
    m = IsotropicElastic.from_bulk_shear(K, G)
    assert_allclose(m.bulk_modulus, K, rtol=RTOL)
    assert_allclose(m.shear_modulus, G, rtol=RTOL)
    # E = 9KG/(3K+G), ν = (3K−2G)/(2(3K+G)).
    assert_allclose(m.E, 9 * K * G / (3 * K + G), rtol=RTOL)
    assert_allclose(m.nu, (3 * K - 2 * G) / (2 * (3 * K + G)), rtol=RTOL)


@pytest.mark.parametrize(("lam", "mu"), [(121.15, 80.77), (1.0, 1.0), (-0.5, 1.0), (0.0, 2.0)])
def test_from_lame_round_trip(lam, mu):
    m = IsotropicElastic.from_lame(lam, mu)
    assert_allclose(m.lame_lambda, lam, rtol=RTOL, atol=RTOL * mu)
    assert_allclose(m.lame_mu, mu, rtol=RTOL)


@pytest.mark.parametrize(("E", "nu"), [(210.0, 0.3), (3.0, 0.35), (5.0, -0.5)])
def test_isotropic_elastic_tensor_3d_is_isotropic_stiffness(E, nu):
    m = IsotropicElastic(E=E, nu=nu)
    c = m.tensor(3)
    assert_allclose(c, isotropic_stiffness(m.bulk_modulus, m.shear_modulus, 3), rtol=RTOL)
    # Component form: C1111 = λ + 2μ, C1122 = λ, Mandel shear = 2 C1212 = 2μ.
    lam, mu = lame(E, nu)
    assert_allclose(np.diag(c)[:3], lam + 2 * mu, rtol=RTOL)
    assert_allclose(c[0, 1], lam, rtol=RTOL)
    assert_allclose(np.diag(c)[3:], 2 * mu, rtol=RTOL)
    assert_allclose(c[:3, 3:], 0.0, atol=RTOL * E)


@pytest.mark.parametrize(("E", "nu"), [(210.0, 0.3), (3.0, 0.35), (5.0, -0.5)])
def test_isotropic_elastic_tensor_2d_is_plane_strain_block(E, nu):
    m = IsotropicElastic(E=E, nu=nu)
    assert_allclose(m.tensor(2), plane_strain(m.tensor(3)), rtol=RTOL, atol=RTOL * E)
    assert_allclose(m.tensor(2), isotropic_stiffness(m.plane_strain_bulk_modulus, m.shear_modulus, 2), rtol=RTOL)


def test_isotropic_elastic_tensor_is_positive_definite_with_eigenvalues_3K_and_2G():
    m = IsotropicElastic(E=1.0, nu=-0.9)  # strongly auxetic but stable
    expected = sorted([3 * m.bulk_modulus] + [2 * m.shear_modulus] * 5)
    assert_allclose(np.linalg.eigvalsh(m.tensor(3)), expected, rtol=RTOL)


def test_isotropic_elastic_rejects_bad_dimension():
    with pytest.raises(MaterialError, match="dimension must be 2 or 3"):
        IsotropicElastic(1.0, 0.3).tensor(4)


def test_isotropic_elastic_is_immutable():
    m = IsotropicElastic(1.0, 0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.E = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("nu", [0.5, -1.0, 0.7, -1.5, float("nan"), float("inf")])
def test_isotropic_elastic_rejects_poisson_ratio_outside_open_interval(nu):
    with pytest.raises(MaterialError, match=r"Poisson's ratio nu = .* is outside \(-1, 0\.5\)"):
        IsotropicElastic(E=1.0, nu=nu)


@pytest.mark.parametrize("nu", ["abc", None, [0.3]])
def test_isotropic_elastic_rejects_non_numeric_poisson_ratio(nu):
    with pytest.raises(MaterialError, match="nu must be a real number"):
        IsotropicElastic(E=1.0, nu=nu)


@pytest.mark.parametrize("E", [0.0, -1.0, float("nan"), float("inf")])
def test_isotropic_elastic_rejects_non_positive_or_non_finite_young_modulus(E):
    with pytest.raises(MaterialError, match="E must be finite and > 0"):
        IsotropicElastic(E=E, nu=0.3)


@pytest.mark.parametrize("E", ["abc", None, [1.0, 2.0]])
def test_isotropic_elastic_rejects_non_numeric_young_modulus(E):
    with pytest.raises(MaterialError, match="E must be a real number"):
        IsotropicElastic(E=E, nu=0.3)


@pytest.mark.parametrize(("K", "G", "bad"), [(0.0, 1.0, "K"), (-3.0, 1.0, "K"), (1.0, 0.0, "G"), (1.0, np.nan, "G")])
def test_from_bulk_shear_rejects_non_positive_moduli(K, G, bad):
    with pytest.raises(MaterialError, match=f"{bad} must be finite and > 0"):
        IsotropicElastic.from_bulk_shear(K, G)


def test_from_lame_rejects_non_positive_shear_modulus():
    with pytest.raises(MaterialError, match="mu must be finite and > 0"):
        IsotropicElastic.from_lame(1.0, -1.0)


def test_from_lame_rejects_negative_bulk_modulus():
    # Stability needs 3λ + 2μ > 0 (K > 0).
    with pytest.raises(MaterialError, match=r"3\*lam \+ 2\*mu"):
        IsotropicElastic.from_lame(-1.0, 1.0)


def test_from_lame_rejects_non_numeric_lambda():
    with pytest.raises(MaterialError, match="lam must be a real number"):
        IsotropicElastic.from_lame("abc", 1.0)


# --------------------------------------------------------------------------- Conductivity
@pytest.mark.parametrize("dim", [2, 3])
def test_scalar_conductivity_is_k_times_identity(dim):
    m = Conductivity(4.5)
    assert_allclose(m.tensor(dim), 4.5 * np.eye(dim), rtol=0)
    assert m.physics == CONDUCTIVITY
    assert m.is_isotropic and not m.is_void


def test_conductivity_matrix_is_returned_as_given():
    k = np.array([[3.0, 1.0], [1.0, 2.0]])
    m = Conductivity(k)
    assert not m.is_isotropic
    assert_allclose(m.tensor(2), k, rtol=0)
    out = m.tensor(2)
    out[0, 0] = 99.0  # the caller gets a copy
    assert_allclose(m.tensor(2), k, rtol=0)


def test_3x3_conductivity_in_2d_gives_the_in_plane_block():
    k = np.array([[3.0, 0.5, 0.2], [0.5, 2.0, 0.1], [0.2, 0.1, 1.0]])
    m = Conductivity(k)
    assert_allclose(m.tensor(3), k, rtol=0)
    assert_allclose(m.tensor(2), k[:2, :2], rtol=0)


def test_2x2_conductivity_cannot_be_used_in_3d():
    with pytest.raises(MaterialError, match="2 x 2 tensor cannot be used in a 3D problem"):
        Conductivity(np.eye(2)).tensor(3)


def test_conductivity_equality_and_hash_follow_the_value():
    a, b = Conductivity(np.eye(2) * 2.0), Conductivity([[2.0, 0.0], [0.0, 2.0]])
    assert a == b and hash(a) == hash(b)
    assert Conductivity(2.0) == Conductivity(2)
    assert Conductivity(2.0) != Conductivity(3.0)


@pytest.mark.parametrize("k", [0.0, -1.0, float("nan"), float("inf")])
def test_conductivity_rejects_non_positive_or_non_finite_scalar(k):
    with pytest.raises(MaterialError, match="k must be finite and > 0"):
        Conductivity(k)


def test_conductivity_rejects_non_numeric_scalar():
    with pytest.raises(MaterialError, match="k must be a real number"):
        Conductivity("abc")


def test_conductivity_rejects_non_numeric_matrix():
    with pytest.raises(MaterialError, match="Conductivity: k must be"):
        Conductivity([["a", "b"], ["c", "d"]])


def test_conductivity_rejects_non_symmetric_matrix():
    with pytest.raises(MaterialError, match="not symmetric"):
        Conductivity([[2.0, 1.0], [0.0, 2.0]])


@pytest.mark.parametrize(
    "k",
    [
        [[1.0, 2.0], [2.0, 1.0]],  # eigenvalues 3, -1
        [[1.0, 1.0], [1.0, 1.0]],  # singular
        -np.eye(3),
    ],
)
def test_conductivity_rejects_matrix_that_is_not_positive_definite(k):
    with pytest.raises(MaterialError, match="not positive definite"):
        Conductivity(k)


def test_conductivity_rejects_matrix_with_nan():
    with pytest.raises(MaterialError, match="non-finite entries"):
        Conductivity([[1.0, np.nan], [np.nan, 1.0]])


@pytest.mark.parametrize("shape", [(1,), (2,), (2, 3), (4, 4), (1, 1), (2, 2, 2)])
def test_conductivity_rejects_wrong_shape(shape):
    with pytest.raises(MaterialError, match=r"scalar or a 2 x 2 / 3 x 3 matrix, got shape"):
        Conductivity(np.ones(shape))


# --------------------------------------------------------------------------- AnisotropicElastic
def test_from_cubic_builds_mandel_matrix_from_voigt_constants():
    c11, c12, c44 = 168.4, 121.4, 75.4  # copper, GPa
    m = AnisotropicElastic.from_cubic(c11, c12, c44)
    expected = np.array(
        [
            [c11, c12, c12, 0, 0, 0],
            [c12, c11, c12, 0, 0, 0],
            [c12, c12, c11, 0, 0, 0],
            [0, 0, 0, 2 * c44, 0, 0],
            [0, 0, 0, 0, 2 * c44, 0],
            [0, 0, 0, 0, 0, 2 * c44],
        ]
    )
    assert_allclose(m.C, expected, rtol=RTOL)
    assert m.physics == ELASTICITY
    assert not m.is_isotropic and not m.is_void
    # Cubic with Zener ratio 2 C44/(C11 - C12) = 1 is isotropic: C12 = λ, C44 = μ.
    iso = AnisotropicElastic.from_cubic(3.0 + 2.0, 3.0, 1.0)
    assert_allclose(iso.C, IsotropicElastic.from_lame(3.0, 1.0).tensor(3), rtol=RTOL, atol=1e-14)


def test_from_voigt_converts_engineering_shear_to_mandel():
    # Mandel = W C_voigt W with W = diag(1, 1, 1, √2, √2, √2):
    # shear-shear entries ×2, normal-shear entries ×√2, normal-normal unchanged.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    cv = a @ a.T + 6 * np.eye(6)
    m = AnisotropicElastic.from_voigt(cv)
    assert_allclose(m.C[:3, :3], cv[:3, :3], rtol=RTOL)
    assert_allclose(m.C[3:, 3:], 2 * cv[3:, 3:], rtol=RTOL)
    assert_allclose(m.C[:3, 3:], SQ2 * cv[:3, 3:], rtol=RTOL)
    assert_allclose(m.C[3:, :3], SQ2 * cv[3:, :3], rtol=RTOL)
    # Voigt cubic constants give the same tensor as from_cubic.
    cubic_voigt = np.zeros((6, 6))
    cubic_voigt[:3, :3] = 121.4
    cubic_voigt[range(3), range(3)] = 168.4
    cubic_voigt[range(3, 6), range(3, 6)] = 75.4
    assert_allclose(AnisotropicElastic.from_voigt(cubic_voigt).C, AnisotropicElastic.from_cubic(168.4, 121.4, 75.4).C,
                    rtol=RTOL)


def test_from_voigt_and_mandel_give_same_stress_energy():
    # Voigt: w = ½ ε_v · C_v ε_v with engineering shears γ = 2ε; Mandel: ½ ε̂ · Ĉ ε̂ with √2 ε.
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 6))
    cv = a @ a.T + 6 * np.eye(6)
    e = rng.standard_normal(6)  # (ε11, ε22, ε33, ε23, ε13, ε12)
    ev = e * np.array([1, 1, 1, 2, 2, 2])
    em = e * np.array([1, 1, 1, SQ2, SQ2, SQ2])
    assert_allclose(em @ AnisotropicElastic.from_voigt(cv).C @ em, ev @ cv @ ev, rtol=RTOL)


def test_rotated_matches_tensors_rotate():
    m = AnisotropicElastic.from_cubic(168.4, 121.4, 75.4)
    r = rotation_matrix([0.3, 0.9, 1.7])
    assert_allclose(m.rotated(r).C, rotate(m.C, r), rtol=RTOL)
    # Rotation keeps the Voigt average (rotation invariants).
    assert_allclose(isotropic_projection(m.rotated(r).C), isotropic_projection(m.C), rtol=RTOL)


def test_anisotropic_6x6_in_2d_is_plane_strain_and_3x3_in_2d_is_itself():
    m = AnisotropicElastic.from_cubic(168.4, 121.4, 75.4).rotated(rotation_matrix([0.3, 0.9, 1.7]))
    assert_allclose(m.tensor(3), m.C, rtol=0)
    assert_allclose(m.tensor(2), plane_strain(m.C), rtol=0)
    m2 = AnisotropicElastic(plane_strain(m.C))
    assert_allclose(m2.tensor(2), plane_strain(m.C), rtol=0)


def test_anisotropic_3x3_cannot_be_used_in_3d():
    m = AnisotropicElastic(IsotropicElastic(1.0, 0.3).tensor(2))
    with pytest.raises(MaterialError, match=r"2D \(3 x 3\) stiffness cannot be used in a 3D problem"):
        m.tensor(3)


def test_anisotropic_stiffness_is_read_only_and_tensor_returns_a_copy():
    m = AnisotropicElastic.from_cubic(2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="read-only"):
        m.C[0, 0] = 5.0
    t = m.tensor(3)
    t[0, 0] = 5.0
    assert m.C[0, 0] == 2.0


def test_anisotropic_rejects_non_symmetric_matrix():
    c = IsotropicElastic(1.0, 0.3).tensor(3)
    c[0, 3] = 0.1
    with pytest.raises(MaterialError, match="not symmetric"):
        AnisotropicElastic(c)


@pytest.mark.parametrize(
    ("C11", "C12", "C44"),
    [
        (1.0, 2.0, 1.0),  # C11 - C12 < 0: negative eigenvalue
        (1.0, -0.6, 1.0),  # C11 + 2 C12 < 0
        (2.0, 1.0, -1.0),  # C44 < 0
        (2.0, 1.0, 0.0),  # singular
    ],
)
def test_anisotropic_rejects_stiffness_that_is_not_positive_definite(C11, C12, C44):
    with pytest.raises(MaterialError, match="not positive definite"):
        AnisotropicElastic.from_cubic(C11, C12, C44)


def test_anisotropic_rejects_matrix_with_nan():
    c = np.eye(6)
    c[2, 2] = np.nan
    with pytest.raises(MaterialError, match="non-finite entries"):
        AnisotropicElastic(c)


@pytest.mark.parametrize("shape", [(5, 5), (6,), (4, 4), (6, 3)])
def test_anisotropic_rejects_wrong_shape(shape):
    with pytest.raises(MaterialError, match=r"6 x 6 \(3D\) or 3 x 3 \(2D\) Mandel matrix"):
        AnisotropicElastic(np.eye(*shape) if len(shape) == 2 else np.ones(shape))


def test_anisotropic_rejects_non_numeric_matrix():
    with pytest.raises(MaterialError, match="AnisotropicElastic: C must be"):
        AnisotropicElastic([["a"] * 6] * 6)


def test_from_voigt_rejects_wrong_shape():
    with pytest.raises(MaterialError, match="from_voigt expects a 6 x 6 matrix"):
        AnisotropicElastic.from_voigt(np.eye(3))


def test_anisotropic_error_is_an_input_error():
    # MaterialError is an InputError (and a ValueError), so callers can catch either.
    with pytest.raises(InputError):
        AnisotropicElastic(-np.eye(6))
    with pytest.raises(ValueError, match="not positive definite"):
        AnisotropicElastic(-np.eye(6))


# --------------------------------------------------------------------------- Void
@pytest.mark.parametrize(
    ("dim", "physics", "n"),
    [(2, ELASTICITY, 3), (3, ELASTICITY, 6), (2, CONDUCTIVITY, 2), (3, CONDUCTIVITY, 3)],
)
def test_void_tensor_is_zero_of_the_right_size(dim, physics, n):
    t = Void().tensor(dim, physics)
    assert t.shape == (n, n)
    assert not np.any(t)


def test_void_flags():
    v = Void()
    assert v.is_void and v.is_isotropic
    assert v.physics is None
    assert Void() == Void()
