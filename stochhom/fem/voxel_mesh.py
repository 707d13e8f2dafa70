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
    def stiffness(self) -> sp.csr_matrix:
        """The assembled stiffness :math:`K` (CSR, ``n_dofs`` square)."""
        m, dim = self.m, self.dim
        lab = self.labels.reshape(-1)
        offsets = list(itertools.product((-1, 0, 1), repeat=dim))
        stencil = {o: np.zeros(self.node_shape + (m, m)) for o in offsets}
        ke = self.ke.reshape(len(self.ke), len(self.corners), m, len(self.corners), m)
        for c, a in enumerate(self.corners):
            for c2, b in enumerate(self.corners):
                block = ke[:, c, :, c2, :][lab].reshape(self.shape + (m, m))
                off = tuple(bb - aa for aa, bb in zip(a, b))
                target = stencil[off]
                if self.periodic:
                    target += np.roll(block, shift=a, axis=tuple(range(dim)))
                else:
                    target[tuple(slice(aa, aa + n) for aa, n in zip(a, self.shape))] += block
        rows, cols, vals = [], [], []
        node = np.arange(self.n_nodes).reshape(self.node_shape)
        idx = np.indices(self.node_shape)
        for off, arr in stencil.items():
            nb = [idx[a] + off[a] for a in range(dim)]
            if self.periodic:
                valid = np.ones(self.node_shape, dtype=bool)
                nb = [x % n for x, n in zip(nb, self.node_shape)]
            else:
                valid = np.all([(x >= 0) & (x < n) for x, n in zip(nb, self.node_shape)], axis=0)
                nb = [np.clip(x, 0, n - 1) for x, n in zip(nb, self.node_shape)]
            other = np.ravel_multi_index(nb, self.node_shape)
            nz = valid & np.any(arr != 0, axis=(-2, -1))
            i_node, j_node, block = node[nz], other[nz], arr[nz]  # (k,), (k,), (k, m, m)
            for s in range(m):
                for t in range(m):
                    rows.append(i_node * m + s)
                    cols.append(j_node * m + t)
                    vals.append(block[:, s, t])
        k = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(self.n_dofs, self.n_dofs)).tocsr()
        k.sum_duplicates()
        k.eliminate_zeros()
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
