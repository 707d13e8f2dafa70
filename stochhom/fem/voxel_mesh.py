r"""Voxel finite elements on a box: nodes, element matrices and sparse assembly.

Every voxel is a bilinear (2D) or trilinear (3D) element with full (:math:`2^d`-point
Gauss) integration, the element of :mod:`stochhom.spectral.q1`:

.. math::
    K = \sum_e V_e \sum_g w_g B_g^{\mathsf T}\mathbb L_e B_g ,

in the internal Voigt form of :mod:`stochhom.spectral.material_field` (engineering
shear strains). On a box of :math:`n_0\times\dots` voxels the nodes are the
:math:`(n_0+1)\times\dots` voxel corners (``periodic=False``) or, on a periodic cell,
the :math:`n_0\times\dots` corners with the last layer identified with the first.
Degree of freedom ``node * m + s`` is component ``s`` of node ``node`` (C order of
the node grid).

Assembly uses the structure of the grid: for each offset :math:`\delta\in\{-1,0,1\}^d`
between two nodes of an element, the coefficients of all node pairs at that offset
are summed over the elements that hold both (one vectorized gather of the phases'
element matrices per pair of corners), and the matrix is built from these
:math:`3^d` stencil arrays: never an element-by-element triplet list, which would
take :math:`(2^d m)^2` entries per voxel.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from ..spectral.q1 import gauss_gradients

__all__ = ["VoxelMesh"]


def _wrap(offset: tuple[int, ...], node_shape: tuple[int, ...]) -> tuple[int, ...]:
    r"""The representative in :math:`\{-1, 0, 1\}^d` of a node offset on a periodic cell:
    :math:`\delta_a \bmod N_a` as 0, 1 or (for :math:`N_a \ge 3`) -1."""
    return tuple(0 if o % n == 0 else (1 if o % n == 1 else -1) for o, n in zip(offset, node_shape))


class VoxelMesh:
    """Nodes and element matrices of a voxel image (module docstring).

    Parameters
    ----------
    labels : numpy.ndarray of int
        Compact phase labels ``0 .. P - 1``.
    internal : numpy.ndarray, shape (P, ne, ne)
        The phases' tensors in internal Voigt form (zero for a void).
    elastic : bool
    spacing : tuple of float
    periodic : bool
        Identify opposite boundary nodes (the periodic cell) or not (a box).
    """

    def __init__(self, labels: np.ndarray, internal: np.ndarray, elastic: bool, spacing: tuple[float, ...],
                 periodic: bool = False) -> None:
        self.labels = np.asarray(labels)
        self.shape = self.labels.shape
        self.dim = self.labels.ndim
        self.elastic = elastic
        self.m = self.dim if elastic else 1
        self.spacing = tuple(float(h) for h in spacing)
        self.periodic = periodic
        self.node_shape = self.shape if periodic else tuple(n + 1 for n in self.shape)
        self.n_nodes = int(np.prod(self.node_shape))
        self.n_dofs = self.n_nodes * self.m
        self.volume_e = float(np.prod(self.spacing))
        self.corners = list(itertools.product((0, 1), repeat=self.dim))
        bg = gauss_gradients(self.spacing, elastic)
        self.bbar = np.mean(bg, axis=0)  # element-average strain-displacement matrix
        self.internal = np.asarray(internal, dtype=float)
        self.ke = np.stack([self.volume_e * np.mean([b.T @ c @ b for b in bg], axis=0) for c in self.internal])

    # -- nodes ---------------------------------------------------------------------------
    def node_coordinates(self) -> np.ndarray:
        """``(n_nodes, dim)`` coordinates (origin at the box corner)."""
        axes = [np.arange(n) * h for n, h in zip(self.node_shape, self.spacing)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.dim)

    def element_nodes(self) -> np.ndarray:
        """``(n_elements, 2**d)`` node indices of each element's corners (corner order of
        :func:`~stochhom.spectral.q1.gauss_gradients`)."""
        idx = np.indices(self.shape).reshape(self.dim, -1)
        out = np.empty((idx.shape[1], len(self.corners)), dtype=np.int64)
        for c, corner in enumerate(self.corners):
            coords = [(idx[a] + corner[a]) % self.node_shape[a] for a in range(self.dim)]
            out[:, c] = np.ravel_multi_index(coords, self.node_shape)
        return out

    def boundary_nodes(self) -> np.ndarray:
        """Indices of the nodes on the box surface (none on a periodic cell)."""
        if self.periodic:
            return np.zeros(0, dtype=np.int64)
        idx = np.indices(self.node_shape).reshape(self.dim, -1)
        on = np.zeros(idx.shape[1], dtype=bool)
        for a, n in enumerate(self.node_shape):
            on |= (idx[a] == 0) | (idx[a] == n - 1)
        return np.flatnonzero(on)

    # -- operators -----------------------------------------------------------------------
    def offsets(self) -> list[tuple[int, ...]]:
        r"""The node offsets :math:`\delta\in\{-1,0,1\}^d` of the stencil, in lexicographic order.

        On a periodic cell with an axis of fewer than three nodes, offsets that wrap onto
        the same neighbour are one offset (:func:`_wrap`), so that every node pair appears
        once.
        """
        full = itertools.product((-1, 0, 1), repeat=self.dim)
        if not self.periodic:
            return list(full)
        return sorted({_wrap(off, self.node_shape) for off in full})

    def stencil(self) -> np.ndarray:
        r"""Coefficient blocks :math:`K_{i,i+\delta}` of every node :math:`i` and offset
        :math:`\delta` (order of :meth:`offsets`), ``(n_nodes, n_offsets, m, m)``.

        .. math::
            K_{i,i+\delta} = \sum_{e\ni i,\,i+\delta} K^e_{c(i,e),\,c(i+\delta,e)},

        summed over the elements that hold both nodes (corners :math:`c`): for each pair of
        corners :math:`(a, b)`, :math:`\delta = b - a` and the element at node
        :math:`i - a` contributes. Offsets that leave a box are zero.
        """
        m, dim = self.m, self.dim
        offsets = self.offsets()
        where = {o: k for k, o in enumerate(offsets)}
        lab = self.labels.reshape(-1)
        data = np.zeros(self.node_shape + (len(offsets), m, m))
        ke = self.ke.reshape(len(self.ke), len(self.corners), m, len(self.corners), m)
        for c, a in enumerate(self.corners):
            for c2, b in enumerate(self.corners):
                block = ke[:, c, :, c2, :][lab].reshape(self.shape + (m, m))
                off = tuple(bb - aa for aa, bb in zip(a, b))
                if self.periodic:
                    off = _wrap(off, self.node_shape)
                    data[..., where[off], :, :] += np.roll(block, shift=a, axis=tuple(range(dim)))
                else:
                    target = tuple(slice(aa, aa + n) for aa, n in zip(a, self.shape))
                    data[target + (where[off],)] += block
        return data.reshape(self.n_nodes, len(offsets), m, m)

    def neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        r"""``(n_nodes, n_offsets)`` node index of :math:`i + \delta` (wrapped on a periodic
        cell) and whether it exists (always on a periodic cell)."""
        offsets = np.array(self.offsets()).reshape(-1, self.dim)
        idx = np.indices(self.node_shape).reshape(self.dim, -1)
        col = np.zeros((self.n_nodes, len(offsets)), dtype=np.int64)
        valid = np.ones(col.shape, dtype=bool)
        for a, n in enumerate(self.node_shape):
            x = idx[a][:, None] + offsets[None, :, a]
            if self.periodic:
                x %= n
            else:
                valid &= (x >= 0) & (x < n)
            col = col * n + x
        return col, valid

    def stiffness(self) -> sp.bsr_matrix:
        r"""The assembled stiffness :math:`K` (BSR with ``m x m`` node blocks, ``n_dofs`` square).

        Block row :math:`i` holds the stencil blocks :math:`K_{i,i+\delta}` that are nonzero
        (and always the diagonal block, so that a constraint can write into it), with
        sorted column indices: on a box the lexicographic order of the offsets is the
        order of the neighbours' indices; on a periodic cell each row is sorted.
        """
        m = self.m
        data = self.stencil()
        col, keep = self.neighbours()
        centre = self.offsets().index((0,) * self.dim)
        keep &= np.any(data != 0, axis=(-2, -1))
        keep[:, centre] = True
        if self.periodic:
            order = np.argsort(col, axis=1, kind="stable")
            col = np.take_along_axis(col, order, axis=1)
            keep = np.take_along_axis(keep, order, axis=1)
            data = data[np.arange(self.n_nodes)[:, None], order]
        indptr = np.zeros(self.n_nodes + 1, dtype=np.int64)
        np.cumsum(np.count_nonzero(keep, axis=1), out=indptr[1:])
        index_type = np.int32 if max(indptr[-1], self.n_nodes) < 2**31 else np.int64
        k = sp.bsr_matrix((data[keep], col[keep].astype(index_type), indptr.astype(index_type)),
                          shape=(self.n_dofs, self.n_dofs), blocksize=(m, m))
        k.has_sorted_indices = True
        return k

    def element_strain(self, u: np.ndarray, enodes: np.ndarray | None = None) -> np.ndarray:
        """Element-average strains :math:`\\bar B u_e`, ``(batch, n_elements, ne)``, of nodal
        fields ``u`` of shape ``(batch, n_dofs)``."""
        enodes = self.element_nodes() if enodes is None else enodes
        dofs = (enodes[:, :, None] * self.m + np.arange(self.m)).reshape(len(enodes), -1)
        return np.einsum("rc,bec->ber", self.bbar, u[:, dofs])

    def mean_stress(self, strain: np.ndarray) -> np.ndarray:
        """Volume average of :math:`\\mathbb L_e\\bar\\varepsilon_e`, ``(batch, ne)`` (internal form)."""
        lab = self.labels.reshape(-1)
        sums = np.stack([np.bincount(lab, weights=strain[b, :, r], minlength=len(self.internal))
                         for b in range(strain.shape[0]) for r in range(strain.shape[2])])
        sums = sums.reshape(strain.shape[0], strain.shape[2], -1)  # (batch, ne, phase)
        return np.einsum("prs,bsp->br", self.internal, sums) / lab.size
