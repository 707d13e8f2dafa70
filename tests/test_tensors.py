"""Mandel notation, isotropic tensors, projections and rotations (stochhom.tensors).

Every reference below is built on full Cartesian tensors with ``numpy.einsum``,
independently of the Mandel bookkeeping under test. The operations are exact
linear algebra, so the tolerances are a few ulps of the data (``rtol=1e-12``,
``atol=1e-12`` for entries that must vanish in O(1) data).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from stochhom.errors import InputError
from stochhom.tensors import (
    MANDEL_PAIRS,
    deviatoric_projector,
    dim_from_mandel_size,
    from_mandel,
    identity,
    isotropic_projection,
    isotropic_stiffness,
    mandel_rotation,
    mandel_size,
    plane_strain,
    rotate,
    rotation_matrix,
    spherical_projector,
    to_mandel,
)

# Exact linear algebra on O(1) numbers: round-off only.
RTOL = 1e-12
ATOL = 1e-12

SQ2 = np.sqrt(2.0)


# --------------------------------------------------------------------------- helpers
def random_sym2(rng: np.random.Generator, dim: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    """Random symmetric second-order tensors, shape batch + (d, d)."""
    a = rng.standard_normal((*batch, dim, dim))
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def random_stiffness_full(rng: np.random.Generator, dim: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    """Random fourth-order tensors with minor and major symmetries, shape batch + (d, d, d, d)."""
    a = rng.standard_normal((*batch, dim, dim, dim, dim))
    a = 0.5 * (a + np.swapaxes(a, -1, -2))  # C_ijkl = C_ijlk
    a = 0.5 * (a + np.swapaxes(a, -3, -4))  # C_ijkl = C_jikl
    perm = (*range(a.ndim - 4), a.ndim - 2, a.ndim - 1, a.ndim - 4, a.ndim - 3)
    return 0.5 * (a + np.transpose(a, perm))  # C_ijkl = C_klij


def full_rotate4(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """C'_ijkl = R_ip R_jq R_kr R_ls C_pqrs on full tensors."""
    return np.einsum("ip,jq,kr,ls,pqrs->ijkl", r, r, r, r, c)


def delta(dim: int) -> np.ndarray:
    return np.eye(dim)


def full_isotropic(lam: float, mu: float, dim: int) -> np.ndarray:
    """C_ijkl = λ δ_ij δ_kl + μ (δ_ik δ_jl + δ_il δ_jk)."""
    d = delta(dim)
    return lam * np.einsum("ij,kl->ijkl", d, d) + mu * (np.einsum("ik,jl->ijkl", d, d) + np.einsum("il,jk->ijkl", d, d))


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 3D rotation matrices from Bunge angles (φ1, Φ, φ2)."""
    angles = np.column_stack([rng.uniform(0, 2 * np.pi, n), rng.uniform(0, np.pi, n), rng.uniform(0, 2 * np.pi, n)])
    return rotation_matrix(angles, 3)


# --------------------------------------------------------------------------- sizes
@pytest.mark.parametrize(("dim", "n"), [(2, 3), (3, 6)])
def test_mandel_size_counts_independent_components_of_symmetric_tensor(dim, n):
    assert mandel_size(dim) == n == dim * (dim + 1) // 2
    assert dim_from_mandel_size(n) == dim
    assert len(MANDEL_PAIRS[dim]) == n


@pytest.mark.parametrize("dim", [1, 4, 0])
def test_mandel_size_rejects_unsupported_dimension(dim):
    with pytest.raises(InputError, match="dimension must be 2 or 3"):
        mandel_size(dim)


@pytest.mark.parametrize("n", [1, 4, 5, 9])
def test_dim_from_mandel_size_rejects_other_lengths(n):
    with pytest.raises(InputError, match=rf"3 \(2D\) or 6 \(3D\) components, got {n}"):
        dim_from_mandel_size(n)


# --------------------------------------------------------------------------- Mandel conversion
def test_to_mandel_component_order_and_sqrt2_weights_3d():
    # Mandel vector: (t11, t22, t33, √2 t23, √2 t13, √2 t12).
    t = np.array([[1.0, 6.0, 5.0], [6.0, 2.0, 4.0], [5.0, 4.0, 3.0]])
    assert_allclose(to_mandel(t), [1.0, 2.0, 3.0, SQ2 * 4.0, SQ2 * 5.0, SQ2 * 6.0], rtol=RTOL)


def test_to_mandel_component_order_and_sqrt2_weights_2d():
    t = np.array([[1.0, 3.0], [3.0, 2.0]])
    assert_allclose(to_mandel(t), [1.0, 2.0, SQ2 * 3.0], rtol=RTOL)


def test_to_mandel_fourth_order_weights():
    # Ĉ_ab = w_a w_b C_ijkl: normal-normal ×1, normal-shear ×√2, shear-shear ×2.
    c = random_stiffness_full(np.random.default_rng(0), 3)
    m = to_mandel(c)
    assert_allclose(m[0, 1], c[0, 0, 1, 1], rtol=RTOL)
    assert_allclose(m[2, 3], SQ2 * c[2, 2, 1, 2], rtol=RTOL)
    assert_allclose(m[3, 4], 2.0 * c[1, 2, 0, 2], rtol=RTOL)
    assert_allclose(m[5, 5], 2.0 * c[0, 1, 0, 1], rtol=RTOL)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
def test_mandel_round_trip_second_order(dim, batch):
    rng = np.random.default_rng(1)
    t = random_sym2(rng, dim, batch)
    v = to_mandel(t)
    assert v.shape == (*batch, mandel_size(dim))
    assert_allclose(from_mandel(v, order=2), t, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("batch", [(), (5,), (2, 2)])
def test_mandel_round_trip_fourth_order(dim, batch):
    rng = np.random.default_rng(2)
    c = random_stiffness_full(rng, dim, batch)
    m = to_mandel(c)
    n = mandel_size(dim)
    assert m.shape == (*batch, n, n)
    assert_allclose(m, np.swapaxes(m, -1, -2), rtol=RTOL, atol=ATOL)  # major symmetry -> symmetric matrix
    assert_allclose(from_mandel(m, order=4), c, rtol=RTOL, atol=ATOL)
    # Default order: a trailing (n, n) block is a fourth-order tensor.
    if batch == ():
        assert_allclose(from_mandel(m), c, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_from_mandel_then_to_mandel_is_identity_on_mandel_matrices(dim):
    rng = np.random.default_rng(3)
    n = mandel_size(dim)
    a = rng.standard_normal((4, n, n))
    m = a + np.swapaxes(a, -1, -2)
    assert_allclose(to_mandel(from_mandel(m, order=4)), m, rtol=RTOL, atol=ATOL)
    v = rng.standard_normal((7, n))
    assert_allclose(to_mandel(from_mandel(v, order=2)), v, rtol=RTOL, atol=ATOL)


def test_from_mandel_default_reads_a_vector_as_second_order():
    v = np.array([1.0, 2.0, 3.0, SQ2 * 4.0, SQ2 * 5.0, SQ2 * 6.0])
    assert_allclose(from_mandel(v), [[1.0, 6.0, 5.0], [6.0, 2.0, 4.0], [5.0, 4.0, 3.0]], rtol=RTOL)


@pytest.mark.parametrize("shape", [(4,), (4, 4), (2, 3), (5, 3, 2)])
def test_to_mandel_rejects_shapes_that_are_not_tensors(shape):
    with pytest.raises(InputError, match=r"expected a \(d, d\) or \(d, d, d, d\) tensor"):
        to_mandel(np.zeros(shape))


def test_from_mandel_rejects_wrong_length():
    with pytest.raises(InputError, match="got 4"):
        from_mandel(np.zeros(4))


@pytest.mark.parametrize("dim", [2, 3])
def test_mandel_dot_product_equals_double_contraction(dim):
    # σ:ε = σ_ij ε_ij = σ̂ · ε̂ (orthonormal Mandel basis).
    rng = np.random.default_rng(4)
    s, e = random_sym2(rng, dim, (10,)), random_sym2(rng, dim, (10,))
    full = np.einsum("...ij,...ij->...", s, e)
    assert_allclose(np.einsum("...a,...a->...", to_mandel(s), to_mandel(e)), full, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_mandel_matrix_vector_product_equals_stiffness_contraction(dim):
    # (C:ε)_ij = C_ijkl ε_kl  <->  Ĉ ε̂.
    rng = np.random.default_rng(5)
    c = random_stiffness_full(rng, dim, (3,))
    e = random_sym2(rng, dim, (3,))
    sigma_full = np.einsum("...ijkl,...kl->...ij", c, e)
    sigma_mandel = np.einsum("...ab,...b->...a", to_mandel(c), to_mandel(e))
    assert_allclose(sigma_mandel, to_mandel(sigma_full), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_mandel_matrix_product_equals_fourth_order_composition(dim):
    # (A:B)_ijkl = A_ijmn B_mnkl  <->  Â B̂.
    rng = np.random.default_rng(6)
    a, b = random_stiffness_full(rng, dim), random_stiffness_full(rng, dim)
    ab = np.einsum("ijmn,mnkl->ijkl", a, b)
    assert_allclose(to_mandel(a) @ to_mandel(b), to_mandel(ab), rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- projectors
@pytest.mark.parametrize("dim", [2, 3])
def test_identity_is_the_symmetric_fourth_order_identity(dim):
    d = delta(dim)
    i4 = 0.5 * (np.einsum("ik,jl->ijkl", d, d) + np.einsum("il,jk->ijkl", d, d))
    assert_allclose(identity(dim), to_mandel(i4), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_spherical_and_deviatoric_projectors(dim):
    d = delta(dim)
    j_full = np.einsum("ij,kl->ijkl", d, d) / dim
    j, k, i = spherical_projector(dim), deviatoric_projector(dim), identity(dim)
    assert_allclose(j, to_mandel(j_full), rtol=RTOL, atol=ATOL)
    # Orthogonal projectors that resolve the identity: J² = J, K² = K, JK = 0, J + K = I.
    assert_allclose(j @ j, j, rtol=RTOL, atol=ATOL)
    assert_allclose(k @ k, k, rtol=RTOL, atol=ATOL)
    assert_allclose(j @ k, 0.0, atol=ATOL)
    assert_allclose(j + k, i, rtol=RTOL, atol=ATOL)
    # Ranks: J::J = 1, K::K = n - 1.
    assert_allclose(np.trace(j), 1.0, rtol=RTOL)
    assert_allclose(np.trace(k), mandel_size(dim) - 1, rtol=RTOL)
    # J picks the mean of the trace: J:ε = (tr ε / d) I.
    e = random_sym2(np.random.default_rng(7), dim)
    assert_allclose(j @ to_mandel(e), to_mandel(np.trace(e) / dim * d), rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- isotropic tensors
@pytest.mark.parametrize(("bulk", "shear"), [(10.0, 3.0), (1.0, 1.0), (250.0, 0.02)])
def test_isotropic_stiffness_3d_equals_lame_form(bulk, shear):
    # C_ijkl = λ δ_ij δ_kl + μ(δ_ik δ_jl + δ_il δ_jk) with λ = K - 2G/3, μ = G.
    lam = bulk - 2.0 * shear / 3.0
    assert_allclose(isotropic_stiffness(bulk, shear, 3), to_mandel(full_isotropic(lam, shear, 3)), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("kappa", "shear"), [(10.0, 3.0), (1.0, 1.0), (250.0, 0.02)])
def test_isotropic_stiffness_2d_is_plane_strain_lame_form(kappa, shear):
    # In-plane plane-strain stiffness: λ δ_ij δ_kl + μ(...), i, j in {1, 2}, with κ = λ + μ.
    lam = kappa - shear
    expected = to_mandel(full_isotropic(lam, shear, 2))
    assert_allclose(isotropic_stiffness(kappa, shear, 2), expected, rtol=RTOL, atol=ATOL)


def test_isotropic_stiffness_3d_eigenvalues_are_3K_and_2G():
    c = isotropic_stiffness(7.0, 2.0, 3)
    assert_allclose(np.linalg.eigvalsh(c), [4.0] * 5 + [21.0], rtol=RTOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_isotropic_projection_recovers_moduli_exactly(dim):
    rng = np.random.default_rng(8)
    bulk, shear = rng.uniform(0.5, 50.0, 6), rng.uniform(0.1, 30.0, 6)
    c = np.array([isotropic_stiffness(b, s, dim) for b, s in zip(bulk, shear)])
    kb, gb = isotropic_projection(c)
    assert kb.shape == gb.shape == (6,)
    assert_allclose(kb, bulk, rtol=RTOL)
    assert_allclose(gb, shear, rtol=RTOL)


@pytest.mark.parametrize(("c11", "c12", "c44"), [(168.4, 121.4, 75.4), (108.2, 61.3, 28.5), (246.5, 147.3, 124.7)])
def test_isotropic_projection_of_cubic_crystal_is_voigt_average(c11, c12, c44):
    # Voigt average of a cubic crystal (Voigt constants): K_V = (C11 + 2 C12)/3, G_V = (C11 - C12 + 3 C44)/5.
    c = np.zeros((6, 6))
    c[:3, :3] = c12
    c[range(3), range(3)] = c11
    c[range(3, 6), range(3, 6)] = 2.0 * c44  # Mandel shear = 2 × Voigt C44
    kv, gv = isotropic_projection(c)
    assert_allclose(kv, (c11 + 2 * c12) / 3, rtol=RTOL)
    assert_allclose(gv, (c11 - c12 + 3 * c44) / 5, rtol=RTOL)
    # The Voigt average is rotation invariant: any crystal orientation gives the same projection.
    r = random_rotations(np.random.default_rng(9), 4)
    kr, gr = isotropic_projection(rotate(c, r))
    assert_allclose(kr, kv, rtol=RTOL)
    assert_allclose(gr, gv, rtol=RTOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_isotropic_projection_is_orthogonal_in_frobenius_norm(dim):
    # C - C_iso is orthogonal to J and K: the projection is the Frobenius-nearest isotropic tensor.
    rng = np.random.default_rng(10)
    n = mandel_size(dim)
    a = rng.standard_normal((n, n))
    c = a @ a.T + n * np.eye(n)
    k, g = isotropic_projection(c)
    resid = c - isotropic_stiffness(k, g, dim)
    assert abs(np.sum(resid * spherical_projector(dim))) < ATOL * np.abs(c).max()
    assert abs(np.sum(resid * deviatoric_projector(dim))) < ATOL * np.abs(c).max()


@pytest.mark.parametrize("shape", [(6,), (6, 5), (4, 4)])
def test_isotropic_projection_rejects_non_square_or_wrong_size(shape):
    with pytest.raises(InputError):
        isotropic_projection(np.zeros(shape))


# --------------------------------------------------------------------------- rotations
def test_rotation_matrix_3d_is_proper_rotation_for_random_bunge_angles():
    rng = np.random.default_rng(11)
    r = random_rotations(rng, 50)
    assert r.shape == (50, 3, 3)
    assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=ATOL)
    assert_allclose(np.linalg.det(r), 1.0, rtol=RTOL)


def test_rotation_matrix_2d_is_proper_rotation():
    theta = np.random.default_rng(12).uniform(-np.pi, np.pi, (4, 5))
    r = rotation_matrix(theta, 2)
    assert r.shape == (4, 5, 2, 2)
    assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(2), r.shape), atol=ATOL)
    assert_allclose(np.linalg.det(r), 1.0, rtol=RTOL)
    # Counter-clockwise: e1 goes to (cos θ, sin θ).
    assert_allclose(r[..., :, 0], np.stack([np.cos(theta), np.sin(theta)], -1), rtol=RTOL, atol=ATOL)


def test_rotation_matrix_bunge_convention_is_z_x_z():
    # R = R_z(φ1) R_x(Φ) R_z(φ2).
    p1, p, p2 = 0.3, 1.1, -0.7

    def rz(t):
        return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])

    def rx(t):
        return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])

    assert_allclose(rotation_matrix([p1, p, p2]), rz(p1) @ rx(p) @ rz(p2), rtol=RTOL, atol=ATOL)
    # With Φ = 0 the two in-plane angles add up.
    assert_allclose(rotation_matrix([p1, 0.0, p2]), rz(p1 + p2), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", [(2,), (4,), (5, 2)])
def test_rotation_matrix_3d_needs_three_angles(shape):
    with pytest.raises(InputError, match=r"Euler angles of shape \(\.\.\., 3\)"):
        rotation_matrix(np.zeros(shape), 3)


def test_rotation_matrix_rejects_bad_dimension():
    with pytest.raises(InputError, match="dimension must be 2 or 3"):
        rotation_matrix(0.5, 4)


def test_mandel_rotation_3d_is_orthogonal():
    r = random_rotations(np.random.default_rng(13), 20)
    q = mandel_rotation(r)
    assert q.shape == (20, 6, 6)
    assert_allclose(q @ np.swapaxes(q, -1, -2), np.broadcast_to(np.eye(6), q.shape), atol=ATOL)
    assert_allclose(np.linalg.det(q), 1.0, rtol=1e-10)


def test_mandel_rotation_2d_is_orthogonal():
    q = mandel_rotation(rotation_matrix(np.linspace(-3, 3, 7), 2))
    assert q.shape == (7, 3, 3)
    assert_allclose(q @ np.swapaxes(q, -1, -2), np.broadcast_to(np.eye(3), q.shape), atol=ATOL)


def test_mandel_rotation_is_a_group_homomorphism():
    # Q(R1 R2) = Q(R1) Q(R2).
    r = random_rotations(np.random.default_rng(14), 2)
    assert_allclose(mandel_rotation(r[0] @ r[1]), mandel_rotation(r[0]) @ mandel_rotation(r[1]), atol=ATOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_rotate_second_order_equals_r_t_rT(dim):
    # t'_ij = R_ik R_jl t_kl.
    rng = np.random.default_rng(15)
    t = random_sym2(rng, dim, (5,))
    r = random_rotations(rng, 5) if dim == 3 else rotation_matrix(rng.uniform(0, 2 * np.pi, 5), 2)
    expected = np.einsum("nik,njl,nkl->nij", r, r, t)
    assert_allclose(rotate(to_mandel(t), r), to_mandel(expected), rtol=RTOL, atol=ATOL)
    assert_allclose(mandel_rotation(r) @ to_mandel(t)[..., None], to_mandel(expected)[..., None], atol=ATOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_rotate_fourth_order_equals_full_tensor_rotation(dim):
    # C'_ijkl = R_ip R_jq R_kr R_ls C_pqrs.
    rng = np.random.default_rng(16)
    for _ in range(5):
        c = random_stiffness_full(rng, dim)
        r = random_rotations(rng, 1)[0] if dim == 3 else rotation_matrix(rng.uniform(0, 2 * np.pi), 2)
        assert_allclose(rotate(to_mandel(c), r), to_mandel(full_rotate4(c, r)), rtol=RTOL, atol=ATOL)


def test_rotate_broadcasts_over_a_stack_of_rotations():
    rng = np.random.default_rng(17)
    c = random_stiffness_full(rng, 3)
    r = random_rotations(rng, 3)
    out = rotate(to_mandel(c), r)
    assert out.shape == (3, 6, 6)
    for n in range(3):
        assert_allclose(out[n], to_mandel(full_rotate4(c, r[n])), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_rotating_an_isotropic_stiffness_leaves_it_unchanged(dim):
    c = isotropic_stiffness(12.0, 5.0, dim)
    rng = np.random.default_rng(18)
    r = random_rotations(rng, 10) if dim == 3 else rotation_matrix(rng.uniform(0, 2 * np.pi, 10), 2)
    assert_allclose(rotate(c, r), np.broadcast_to(c, (10, *c.shape)), rtol=RTOL, atol=1e-12 * 12.0)


def test_rotation_by_90_degrees_about_z_swaps_axes_1_and_2():
    # For R = R_z(90°): C'_1111 = C_2222, C'_1133 = C_2233, C'_2323 = C_1313.
    c = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    c[0, 2] = c[2, 0] = 0.5
    out = rotate(c, rotation_matrix([np.pi / 2, 0.0, 0.0]))
    expected = np.diag([2.0, 1.0, 3.0, 5.0, 4.0, 6.0])
    expected[1, 2] = expected[2, 1] = 0.5
    assert_allclose(out, expected, atol=ATOL)


def test_rotate_rejects_mismatched_dimension():
    with pytest.raises(InputError, match="Mandel size 6 cannot be rotated by 2D rotations"):
        rotate(np.eye(6), np.eye(2))


@pytest.mark.parametrize("shape", [(3,), (4, 4), (3, 2)])
def test_mandel_rotation_rejects_non_rotation_shapes(shape):
    with pytest.raises(InputError, match="rotation matrices of shape"):
        mandel_rotation(np.zeros(shape))


# --------------------------------------------------------------------------- plane strain
def test_plane_strain_picks_rows_and_columns_11_22_12():
    m = np.arange(36.0).reshape(6, 6)
    idx = [0, 1, 5]
    assert_allclose(plane_strain(m), m[np.ix_(idx, idx)], rtol=0)
    stack = np.stack([m, 2 * m])
    assert_allclose(plane_strain(stack), np.stack([m[np.ix_(idx, idx)], 2 * m[np.ix_(idx, idx)]]), rtol=0)


def test_plane_strain_gives_in_plane_stress_of_in_plane_strain():
    # ε with ε_i3 = 0: σ_αβ = C_αβγδ ε_γδ, α..δ in {1, 2}.
    rng = np.random.default_rng(19)
    c = random_stiffness_full(rng, 3)
    e2 = random_sym2(rng, 2)
    e3 = np.zeros((3, 3))
    e3[:2, :2] = e2
    sigma = np.einsum("ijkl,kl->ij", c, e3)
    assert_allclose(plane_strain(to_mandel(c)) @ to_mandel(e2), to_mandel(sigma[:2, :2]), rtol=RTOL, atol=ATOL)


def test_plane_strain_of_3d_isotropic_is_2d_isotropic_with_kappa():
    # Plane-strain bulk modulus κ = λ + μ = K + G/3.
    k, g = 9.0, 4.0
    assert_allclose(plane_strain(isotropic_stiffness(k, g, 3)), isotropic_stiffness(k + g / 3, g, 2), rtol=RTOL)


@pytest.mark.parametrize("shape", [(3, 3), (6,), (6, 5)])
def test_plane_strain_rejects_non_6x6(shape):
    with pytest.raises(InputError, match="6 x 6 Mandel stiffness"):
        plane_strain(np.zeros(shape))
