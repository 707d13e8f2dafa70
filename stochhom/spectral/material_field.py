r"""Constitutive law over the voxels: :math:`\sigma(x) = \mathbb L(x)\,\varepsilon(x)`.

Phases are stored as an integer label image plus one small matrix per phase; a
per-voxel stiffness is never built, so polycrystals with thousands of grains fit
in memory. Three storage modes are chosen automatically:

``"scalar"``
    every phase is a multiple of the identity (isotropic conductivity): a table
    of :math:`c_p`, gathered per block from the labels.
``"isotropic"``
    every phase is isotropic elastic (or void): tables of :math:`\lambda_p` and
    :math:`2\mu_p`, gathered per block.
``"general"``
    anisotropic phases: the voxels are sorted by label once, and each phase's
    matrix is applied to its own voxels.

Internal notation
-----------------
The solver's hot loop works in Voigt form: strains carry engineering shear
components :math:`\gamma_{ij} = 2\varepsilon_{ij}` and stresses tensor components
:math:`\sigma_{ij}`, so that every derivative coefficient is 1 and
:math:`\sigma\cdot\varepsilon` is still the energy pairing. A Mandel matrix
:math:`\hat{\mathbb C}` becomes :math:`D\hat{\mathbb C}D` with
:math:`D = \mathrm{diag}(1,\dots,1,1/\sqrt2,\dots)`.
"""

from __future__ import annotations

import numpy as np

from ..tensors import isotropic_projection, isotropic_stiffness

__all__ = ["MaterialField", "PhaseIndex", "voigt_scaling"]


def voigt_scaling(ne: int, elastic: bool) -> np.ndarray:
    """Diagonal of :math:`D` mapping Mandel to the internal Voigt form (see module doc)."""
    d = np.ones(ne)
    if elastic:
        dim = 2 if ne == 3 else 3
        d[dim:] = 1.0 / np.sqrt(2.0)
    return d


class PhaseIndex:
    """Voxels grouped by phase label (computed once, shared by several fields)."""

    def __init__(self, labels: np.ndarray, n_phases: int) -> None:
        flat = labels.reshape(-1)
        counts = np.bincount(flat, minlength=n_phases)
        itype = np.int32 if flat.size < 2**31 else np.int64
        order = np.argsort(flat, kind="stable").astype(itype, copy=False)
        starts = np.concatenate([[0], np.cumsum(counts)])
        self.segments = [
            (p, order[starts[p] : starts[p + 1]]) for p in range(n_phases) if counts[p] > 0
        ]
        self.counts = counts


# internal shear coefficient = factor * (2G) for an isotropic Mandel tensor 3K J + 2G K
_SHEAR_FACTOR = {"stiffness": 0.5, "compliance": 2.0, "stress_map": 1.0}


def _is_isotropic(c: np.ndarray, dim: int, rtol: float = 1e-12) -> bool:
    k, g = isotropic_projection(c)
    scale = max(np.max(np.abs(c)), 1e-300)
    return bool(np.max(np.abs(isotropic_stiffness(k, g, dim) - c)) <= rtol * scale)


class MaterialField:
    r"""A per-phase linear map applied voxel by voxel.

    Parameters
    ----------
    labels : numpy.ndarray of int
        Phase label of each voxel, in ``0 .. n_phases - 1``.
    tensors : numpy.ndarray, shape (n_phases, n, n)
        Per-phase matrices in Mandel (elasticity) or plain (conductivity) notation.
    elastic : bool
        Whether the matrices are Mandel tensors (switches the internal Voigt form).
    kind : {"stiffness", "compliance", "stress_map"}
        What the matrices map: strain to stress (internal :math:`D\hat{\mathbb C}D`),
        stress to strain (:math:`D^{-1}\hat{\mathbb C}D^{-1}`) or stress to stress
        (:math:`D\hat{\mathbb C}D^{-1}`).
    dtype : numpy dtype
        Real working precision.
    index : PhaseIndex, optional
        Reuse the sorting of another field on the same labels.
    """

    def __init__(
        self,
        labels: np.ndarray,
        tensors: np.ndarray,
        elastic: bool,
        dtype: np.dtype = np.float64,
        index: PhaseIndex | None = None,
        kind: str = "stiffness",
    ) -> None:
        tensors = np.asarray(tensors, dtype=float)
        if kind not in _SHEAR_FACTOR:
            raise ValueError(f"kind must be one of {sorted(_SHEAR_FACTOR)}, got {kind!r}")
        self.ne = tensors.shape[-1]
        self.elastic = elastic
        self.dtype = np.dtype(dtype)
        self.shape = labels.shape
        self.labels = labels
        self.mandel = tensors
        scale = voigt_scaling(self.ne, elastic)
        left = scale if kind in ("stiffness", "stress_map") else 1.0 / scale
        right = scale if kind == "stiffness" else 1.0 / scale
        self.internal = tensors * np.outer(left, right)
        dim = len(labels.shape)
        present = np.unique(labels)
        used = tensors[present]
        eye = np.eye(self.ne)
        if not elastic and all(
            np.allclose(t, t[0, 0] * eye, rtol=0, atol=1e-14 * max(abs(t[0, 0]), 1e-300)) for t in used
        ):
            self.mode = "scalar"
            self._c = tensors[:, 0, 0].astype(self.dtype)
        elif elastic and all(_is_isotropic(t, dim) for t in used):
            self.mode = "isotropic"
            k, g = isotropic_projection(tensors)
            lam = k - 2.0 * g / dim
            self._lam = lam.astype(self.dtype)
            self._mu2 = (2.0 * g).astype(self.dtype)
            self._dim = dim
            self._shear_factor = _SHEAR_FACTOR[kind]
        else:
            self.mode = "general"
            self._index = index
            self._mats = self.internal.astype(self.dtype)

    @classmethod
    def uniform(cls, tensor: np.ndarray, dim: int, elastic: bool, dtype: np.dtype = np.float64) -> MaterialField:
        """A homogeneous field (e.g. the reference medium), stored as scalars."""
        labels = np.zeros((1,) * dim, dtype=np.intp)
        return cls(labels, np.asarray(tensor, dtype=float)[None], elastic, dtype)

    @property
    def index(self) -> PhaseIndex:
        """Voxels grouped by phase (built on first use, by the NumPy backend only)."""
        if self._index is None:
            self._index = PhaseIndex(self.labels, self.mandel.shape[0])
        return self._index

    @property
    def nbytes(self) -> int:
        """Memory held by the per-voxel storage beyond the labels."""
        if self.mode == "general" and self._index is not None:
            return sum(idx.nbytes for _, idx in self._index.segments)
        return 0

    def apply(self, e: np.ndarray, out: np.ndarray | None = None, blocks=None) -> np.ndarray:
        """Return :math:`\\mathbb L(x)e(x)` in internal notation; ``out`` may be ``e``.

        Parameters
        ----------
        e : numpy.ndarray, shape (batch, ne, *shape)
        out : numpy.ndarray, optional
        blocks : stochhom.spectral.kernels.Blocks, optional
            Process slabs of the first spatial axis (cache blocking, threads).
        """
        if out is None:
            out = np.empty_like(e)
        if self.mode == "general":
            self._apply_general(e, out)
        elif blocks is None or self.labels.shape[0] == 1:
            self._apply_local(e, out, slice(None))
        else:
            blocks.run(lambda sl: self._apply_local(e, out, sl))
        return out

    def _apply_local(self, e: np.ndarray, out: np.ndarray, sl: slice) -> None:
        eb = e[:, :, sl]
        ob = out[:, :, sl]
        lab = self.labels[sl]
        if self.mode == "scalar":
            np.multiply(eb, self._c.take(lab), out=ob)
            return
        lam = self._lam.take(lab)
        mu2 = self._mu2.take(lab)
        d = self._dim
        tr = eb[:, 0].copy()
        for i in range(1, d):
            tr += eb[:, i]
        tr *= lam
        for i in range(d):
            np.multiply(eb[:, i], mu2, out=ob[:, i])
            ob[:, i] += tr
        shear = ob[:, d:]
        np.multiply(eb[:, d:], mu2[None], out=shear)
        if self._shear_factor != 1.0:
            shear *= self._shear_factor

    def _apply_general(self, e: np.ndarray, out: np.ndarray) -> None:
        b = e.shape[0]
        ef = e.reshape(b, self.ne, -1)
        of = out.reshape(b, self.ne, -1)
        for p, idx in self.index.segments:  # disjoint segments; the fancy-index gather copies
            of[:, :, idx] = np.matmul(self._mats[p], ef[:, :, idx])
