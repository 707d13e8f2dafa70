r"""Mandel notation, isotropic tensors and projections, rotations.

stochhom stores symmetric second-order tensors as Mandel vectors and
stiffness tensors as Mandel matrices (an orthonormal basis, :math:`\sqrt2` on
the shear terms), so that the double contraction is the Euclidean product:
:math:`\sigma:\varepsilon = \hat\sigma\cdot\hat\varepsilon` and
:math:`\mathbb C:\varepsilon = \hat{\mathbb C}\,\hat\varepsilon`.

Component order
    3D: 11, 22, 33, 23, 13, 12.  2D (plane strain): 11, 22, 12.

Isotropic stiffness
    :math:`\mathbb C = 3K\,\mathbb J + 2G\,\mathbb K` in 3D, with the spherical and
    deviatoric projectors :math:`\mathbb J = \tfrac13 I\otimes I`,
    :math:`\mathbb K = \mathbb I - \mathbb J`. In 2D plane strain the in-plane
    stiffness is :math:`2\kappa\,\mathbb J_2 + 2G\,\mathbb K_2` with
    :math:`\kappa = \lambda + G` (the plane-strain bulk modulus) and
    :math:`\mathbb J_2 = \tfrac12 I_2\otimes I_2`.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = [
    "MANDEL_PAIRS",
    "deviatoric_projector",
    "dim_from_mandel_size",
    "from_mandel",
    "identity",
    "isotropic_projection",
    "isotropic_stiffness",
    "mandel_rotation",
    "mandel_size",
    "plane_strain",
    "rotate",
    "rotation_matrix",
    "spherical_projector",
    "to_mandel",
]

#: Index pairs (i, j) of the Mandel components, per dimension.
MANDEL_PAIRS: dict[int, tuple[tuple[int, int], ...]] = {
    2: ((0, 0), (1, 1), (0, 1)),
    3: ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)),
}

_SQRT2 = np.sqrt(2.0)


def mandel_size(dim: int) -> int:
    """Number of Mandel components of a symmetric tensor in ``dim`` dimensions."""
    _check_dim(dim)
    return dim * (dim + 1) // 2


def dim_from_mandel_size(n: int) -> int:
    """Spatial dimension whose Mandel vectors have ``n`` components (3 -> 2, 6 -> 3)."""
    if n == 3:
        return 2
    if n == 6:
        return 3
    raise InputError(f"a Mandel vector has 3 (2D) or 6 (3D) components, got {n}")


def _check_dim(dim: int) -> None:
    if dim not in (2, 3):
        raise InputError(f"dimension must be 2 or 3, got {dim!r}")


def _weights(dim: int) -> np.ndarray:
    return np.array([1.0 if i == j else _SQRT2 for i, j in MANDEL_PAIRS[dim]])


def to_mandel(t: np.ndarray) -> np.ndarray:
    r"""Convert a symmetric tensor to Mandel notation.

    Parameters
    ----------
    t : array_like, shape (..., d, d) or (..., d, d, d, d)
        A symmetric second-order tensor, or a fourth-order tensor with minor
        symmetries.

    Returns
    -------
    numpy.ndarray, shape (..., n) or (..., n, n)
        :math:`\hat t_a = w_a t_{ij}` (second order) or
        :math:`\hat C_{ab} = w_a w_b C_{ijkl}` (fourth order), with
        :math:`w = 1` on normal and :math:`\sqrt 2` on shear components.
    """
    t = np.asarray(t, dtype=float)
    if t.ndim >= 4 and t.shape[-4:] in ((2, 2, 2, 2), (3, 3, 3, 3)):
        dim = t.shape[-1]
        p = MANDEL_PAIRS[dim]
        w = _weights(dim)
        i, j = np.array(p).T
        return t[..., i[:, None], j[:, None], i[None, :], j[None, :]] * np.outer(w, w)
    if t.ndim >= 2 and t.shape[-2:] in ((2, 2), (3, 3)):
        dim = t.shape[-1]
        i, j = np.array(MANDEL_PAIRS[dim]).T
        return t[..., i, j] * _weights(dim)
    raise InputError(f"expected a (d, d) or (d, d, d, d) tensor with d = 2 or 3, got shape {t.shape}")


def from_mandel(v: np.ndarray, order: int | None = None) -> np.ndarray:
    """Inverse of :func:`to_mandel`.

    Parameters
    ----------
    v : array_like, shape (..., n) or (..., n, n)
        Mandel vector(s) or matrix(es), with ``n`` = 3 or 6.
    order : {2, 4}, optional
        Tensor order to return. By default a trailing ``(n, n)`` block is read as
        a fourth-order tensor and a trailing ``(n,)`` as a second-order one.
    """
    v = np.asarray(v, dtype=float)
    if order is None:
        order = 4 if v.ndim >= 2 and v.shape[-1] == v.shape[-2] and v.shape[-1] in (3, 6) else 2
    dim = dim_from_mandel_size(v.shape[-1])
    pairs = MANDEL_PAIRS[dim]
    w = _weights(dim)
    if order == 2:
        out = np.zeros((*v.shape[:-1], dim, dim))
        for a, (i, j) in enumerate(pairs):
            out[..., i, j] = out[..., j, i] = v[..., a] / w[a]
        return out
    out = np.zeros(v.shape[:-2] + (dim,) * 4)
    for a, (i, j) in enumerate(pairs):
        for b, (k, l) in enumerate(pairs):  # noqa: E741 - tensor index names
            val = v[..., a, b] / (w[a] * w[b])
            for ii, jj in {(i, j), (j, i)}:
                for kk, ll in {(k, l), (l, k)}:
                    out[..., ii, jj, kk, ll] = val
    return out


def identity(dim: int) -> np.ndarray:
    """The Mandel matrix of the fourth-order symmetric identity (the unit matrix)."""
    return np.eye(mandel_size(dim))


def spherical_projector(dim: int) -> np.ndarray:
    r"""Mandel matrix of :math:`\mathbb J = \tfrac1d I\otimes I`, the spherical projector."""
    n = mandel_size(dim)
    one = np.zeros(n)
    one[:dim] = 1.0
    return np.outer(one, one) / dim


def deviatoric_projector(dim: int) -> np.ndarray:
    r"""Mandel matrix of :math:`\mathbb K = \mathbb I - \mathbb J`, the deviatoric projector."""
    return identity(dim) - spherical_projector(dim)


def isotropic_stiffness(bulk: float, shear: float, dim: int = 3) -> np.ndarray:
    r"""Mandel matrix of an isotropic stiffness.

    Parameters
    ----------
    bulk : float
        In 3D the bulk modulus :math:`K`; in 2D the plane-strain bulk modulus
        :math:`\kappa = \lambda + G`.
    shear : float
        Shear modulus :math:`G`.
    dim : {2, 3}
        Spatial dimension (2 means plane strain).

    Returns
    -------
    numpy.ndarray
        :math:`d\,K\,\mathbb J + 2G\,\mathbb K` (3 x 3 in 2D, 6 x 6 in 3D).
    """
    return dim * bulk * spherical_projector(dim) + 2.0 * shear * deviatoric_projector(dim)


def isotropic_projection(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Closest isotropic stiffness in the Frobenius norm, as (bulk, shear).

    .. math::
        dK = \mathbb J :: \mathbb C, \qquad
        2G = \frac{\mathbb K :: \mathbb C}{\mathbb K :: \mathbb K},

    with :math:`\mathbb K :: \mathbb K = 5` in 3D and 2 in 2D. In 3D this is the
    Voigt average of the bulk and shear moduli of an anisotropic stiffness; in
    2D (plane strain) ``bulk`` is :math:`\kappa = \lambda + G`.

    Parameters
    ----------
    c : array_like, shape (..., n, n)
        Mandel stiffness matrix (or a stack of them), ``n`` = 3 or 6.

    Returns
    -------
    bulk, shear : numpy.ndarray
        Arrays of the leading shape of ``c``.
    """
    c = np.asarray(c, dtype=float)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2]:
        raise InputError(f"expected Mandel stiffness matrices of shape (..., n, n), got {c.shape}")
    dim = dim_from_mandel_size(c.shape[-1])
    j = spherical_projector(dim)
    k = deviatoric_projector(dim)
    bulk = np.einsum("ab,...ab->...", j, c) / dim
    shear = np.einsum("ab,...ab->...", k, c) / (2.0 * np.trace(k))
    return bulk, shear


def rotation_matrix(angles: np.ndarray, dim: int = 3) -> np.ndarray:
    r"""Rotation matrices from Bunge Euler angles (3D) or an in-plane angle (2D).

    Parameters
    ----------
    angles : array_like
        3D: shape (..., 3), Bunge convention :math:`(\varphi_1, \Phi, \varphi_2)` in
        radians, :math:`R = R_z(\varphi_1) R_x(\Phi) R_z(\varphi_2)`.
        2D: shape (...), the angle of rotation about the out-of-plane axis.
    dim : {2, 3}

    Returns
    -------
    numpy.ndarray, shape (..., dim, dim)
    """
    _check_dim(dim)
    a = np.asarray(angles, dtype=float)
    if dim == 2:
        c, s = np.cos(a), np.sin(a)
        return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    if a.shape[-1:] != (3,):
        raise InputError(f"3D rotations need Euler angles of shape (..., 3), got {a.shape}")
    p1, p, p2 = a[..., 0], a[..., 1], a[..., 2]

    def rz(t: np.ndarray) -> np.ndarray:
        c, s, z, o = np.cos(t), np.sin(t), np.zeros_like(t), np.ones_like(t)
        return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)

    def rx(t: np.ndarray) -> np.ndarray:
        c, s, z, o = np.cos(t), np.sin(t), np.zeros_like(t), np.ones_like(t)
        return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)

    return rz(p1) @ rx(p) @ rz(p2)


def mandel_rotation(r: np.ndarray) -> np.ndarray:
    r"""Mandel matrix :math:`Q` of a rotation, so that rotated tensors are
    :math:`\hat t' = Q\hat t` and :math:`\hat{\mathbb C}' = Q\hat{\mathbb C}Q^T`.

    With :math:`t'_{ij} = R_{ik}R_{jl}t_{kl}`,
    :math:`Q_{ab} = \frac{w_a}{w_b}\sum_{(k,l)\in b} R_{i_a k}R_{j_a l}`,
    where the sum runs over both index orders of a shear component ``b``.
    :math:`Q` is orthogonal.

    Parameters
    ----------
    r : array_like, shape (..., d, d)
        Rotation matrices (d = 2 or 3).
    """
    r = np.asarray(r, dtype=float)
    dim = r.shape[-1]
    if r.ndim < 2 or r.shape[-2] != dim or dim not in (2, 3):
        raise InputError(f"expected rotation matrices of shape (..., d, d) with d = 2 or 3, got {r.shape}")
    pairs = MANDEL_PAIRS[dim]
    w = _weights(dim)
    n = len(pairs)
    q = np.zeros((*r.shape[:-2], n, n))
    for a, (i, j) in enumerate(pairs):
        for b, (k, l) in enumerate(pairs):  # noqa: E741 - tensor index names
            s = r[..., i, k] * r[..., j, l]
            if k != l:
                s = s + r[..., i, l] * r[..., j, k]
            q[..., a, b] = w[a] / w[b] * s
    return q


def rotate(t: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Rotate a Mandel vector (second order) or matrix (fourth order) by rotation(s) ``r``."""
    t = np.asarray(t, dtype=float)
    q = mandel_rotation(r)
    if t.shape[-1] != q.shape[-1]:
        raise InputError(f"tensor of Mandel size {t.shape[-1]} cannot be rotated by {r.shape[-1]}D rotations")
    if t.ndim >= 2 and t.shape[-2] == t.shape[-1]:
        return q @ t @ np.swapaxes(q, -1, -2)
    return np.einsum("...ab,...b->...a", q, t)


def plane_strain(c: np.ndarray) -> np.ndarray:
    """Plane-strain (in-plane 1-2) block of a 3D Mandel stiffness: rows/columns 11, 22, 12."""
    c = np.asarray(c, dtype=float)
    if c.shape[-2:] != (6, 6):
        raise InputError(f"plane_strain expects a 6 x 6 Mandel stiffness, got shape {c.shape}")
    idx = np.array([0, 1, 5])
    return c[..., idx[:, None], idx[None, :]]
