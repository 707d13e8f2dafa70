r"""Laminate tensors of composite voxels (Kabel, Merkert and Schneider 2015).

A composite voxel holds phases :math:`a` and :math:`b` (fraction :math:`\varphi` of
:math:`b`) separated by an interface of normal :math:`n`. Its tensor is that of a
laminate of the two phases with layers normal to :math:`n`: in a frame whose last
axis is :math:`n`, the strain components without the normal (set :math:`T`) and the
stress components with it (set :math:`N`) are continuous across the layers, so
(:func:`stochhom.bounds.laminate`, here vectorized over voxels)

.. math::
    \mathbb C^*_{NN} = \langle\mathbb C_{NN}^{-1}\rangle^{-1},\quad
    \mathbb C^*_{NT} = \mathbb C^*_{NN}\langle\mathbb C_{NN}^{-1}\mathbb C_{NT}\rangle,\quad
    \mathbb C^*_{TT} = \langle\mathbb C_{TT} - \mathbb C_{TN}\mathbb C_{NN}^{-1}\mathbb C_{NT}\rangle
      + \langle\mathbb C_{TN}\mathbb C_{NN}^{-1}\rangle\,\mathbb C^*_{NN}\,
        \langle\mathbb C_{NN}^{-1}\mathbb C_{NT}\rangle ,

with :math:`\langle\cdot\rangle` the average with weights :math:`1-\varphi,\varphi`;
the result is rotated back, :math:`\mathbb C = Q^{\mathsf T}\mathbb C^* Q` with
:math:`Q` the Mandel matrix of the rotation. With a void phase the laminate
carries no stress across the layers: :math:`\mathbb C^*_{NN} = \mathbb C^*_{NT} = 0`
and :math:`\mathbb C^*_{TT}` is the solid's fraction times its Schur complement (the
in-plane, plane-stress stiffness). For conductivity, :math:`k^*` is the arithmetic
mean along the layers and the harmonic mean across.

The laminate lies between the Reuss and Voigt averages of the voxel's phases, so it
does not widen the contrast the solver sees.
"""

from __future__ import annotations

import numpy as np

from ..tensors import MANDEL_PAIRS, mandel_rotation

__all__ = ["frame", "laminate_tensors"]


def frame(normal: np.ndarray) -> np.ndarray:
    """Rotations ``R`` (rows: tangents, then the normal) with ``R n = e_last``, det +1.

    Parameters
    ----------
    normal : numpy.ndarray, shape (n, dim)
        Unit normals.
    """
    n = np.asarray(normal, dtype=float)
    if n.shape[1] == 2:
        t = np.stack([n[:, 1], -n[:, 0]], 1)
        return np.stack([t, n], 1)
    a = np.zeros_like(n)
    use_y = np.abs(n[:, 0]) > 0.9
    a[~use_y, 0] = 1.0
    a[use_y, 1] = 1.0
    t1 = a - np.sum(a * n, axis=1, keepdims=True) * n
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    return np.stack([t1, t2, n], 1)


def laminate_tensors(tensors: np.ndarray, void: np.ndarray, phases: np.ndarray, fraction: np.ndarray,
                     normal: np.ndarray, elastic: bool) -> np.ndarray:
    """Tensors of laminate voxels (module docstring), one per composite voxel.

    Parameters
    ----------
    tensors : numpy.ndarray, shape (P, ne, ne)
        Mandel stiffness (or conductivity) of every label.
    void : numpy.ndarray of bool, shape (P,)
        Which labels are void.
    phases : numpy.ndarray of int, shape (n, 2)
        Labels :math:`a, b` of each voxel.
    fraction : numpy.ndarray, shape (n,)
        Fraction of :math:`b`.
    normal : numpy.ndarray, shape (n, dim)
        Unit interface normals.
    elastic : bool

    Returns
    -------
    numpy.ndarray, shape (n, ne, ne)
        Mandel tensors in the image's frame.
    """
    dim = normal.shape[1]
    rot = frame(normal)
    q = mandel_rotation(rot) if elastic else rot
    qt = np.swapaxes(q, 1, 2)
    ne = tensors.shape[-1]
    if elastic:
        nset = np.array([k for k, (i, j) in enumerate(MANDEL_PAIRS[dim]) if dim - 1 in (i, j)])
    else:
        nset = np.array([dim - 1])
    tset = np.setdiff1d(np.arange(ne), nset)
    nn, nt, tt = np.ix_(nset, nset), np.ix_(nset, tset), np.ix_(tset, tset)
    w = np.stack([1.0 - fraction, fraction], 1)
    inv_nn_mean = np.zeros((len(fraction), nset.size, nset.size))
    a_mean = np.zeros((len(fraction), nset.size, tset.size))
    schur = np.zeros((len(fraction), tset.size, tset.size))
    any_void = np.zeros(len(fraction), dtype=bool)
    for side in (0, 1):
        lab = phases[:, side]
        c = q @ tensors[lab] @ qt  # local frame
        solid = ~void[lab]
        any_void |= ~solid
        f = w[solid, side][:, None, None]
        cs = c[solid]
        inv = np.linalg.inv(cs[(slice(None),) + nn])
        cnt = cs[(slice(None),) + nt]
        inv_nn_mean[solid] += f * inv
        a_mean[solid] += f * (inv @ cnt)
        schur[solid] += f * (cs[(slice(None),) + tt] - np.swapaxes(cnt, 1, 2) @ inv @ cnt)
    out = np.zeros((len(fraction), ne, ne))
    cnn = np.zeros_like(inv_nn_mean)
    cnn[~any_void] = np.linalg.inv(inv_nn_mean[~any_void])
    cnt = cnn @ a_mean
    out[(slice(None),) + nn] = cnn
    out[(slice(None),) + nt] = cnt
    out[(slice(None),) + np.ix_(tset, nset)] = np.swapaxes(cnt, 1, 2)
    out[(slice(None),) + tt] = schur + np.swapaxes(a_mean, 1, 2) @ cnn @ a_mean
    out = qt @ out @ q
    return 0.5 * (out + np.swapaxes(out, 1, 2))
