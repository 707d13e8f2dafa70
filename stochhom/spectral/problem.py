r"""The periodic cell problem on a voxel image.

Find a periodic nodal field :math:`u` such that the stress
:math:`\sigma = \mathbb L(x)\,(E + Bu)` is in discrete equilibrium,
:math:`B^H\sigma = 0`, for a prescribed macroscopic strain (or gradient) :math:`E`.
:math:`\langle Bu\rangle = 0`, so :math:`\langle\varepsilon\rangle = E` and the
Hill–Mandel condition :math:`\langle\sigma:\varepsilon\rangle = \langle\sigma\rangle:E`
holds at equilibrium.

The unknown is kept in Fourier space (``w``, see :mod:`stochhom.spectral.green`),
so one application of the stiffness operator :math:`K = B^H\mathbb L B` costs one
inverse and one forward real FFT of a strain-sized field plus voxel-wise algebra,
which runs in cache-sized blocks (:mod:`stochhom.spectral.kernels`).
"""

from __future__ import annotations

import numpy as np

from ..choices import BACKENDS  # torch: the Q1 discretization only (q1_torch)
from .green import (
    GreenOperator,
    ReferenceMedium,
    force_block,
    gradient_block,
    inverse_norm2,
    shear_pairs,
    voigt_components,
)
from .grid import Grid, derivative_symbols
from .kernels import Blocks, hdot_block, interleave
from .material_field import MaterialField, voigt_scaling

__all__ = ["CellProblem"]


def _rv(a: np.ndarray) -> np.ndarray:
    """Real view of a complex array (last axis doubled)."""
    return a.view(a.real.dtype)


def _flat(a: np.ndarray) -> np.ndarray:
    """View ``(batch, comps, *spatial)`` as ``(batch, comps, N)`` (C-contiguous input)."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def phase_contrast(tensors: np.ndarray, elastic: bool, dim: int) -> float:
    r"""Spread of the phases' stiffness relative to one isotropic reference.

    With :math:`\mathbb C^0` the isotropic projection of the softest solid phase, the
    largest over the smallest eigenvalue of :math:`(\mathbb C^0)^{-1/2}\mathbb L_p
    (\mathbb C^0)^{-1/2}` over all solid phases :math:`p`: the stiffness ratio for
    isotropic phases of one Poisson ratio, and it also counts the anisotropy of
    anisotropic phases (what rounding errors in the stress field see).
    """
    from .green import reference_medium

    ref = reference_medium(tensors, elastic, dim, "softest").tensor()
    w, v = np.linalg.eigh(ref)
    inv_half = (v / np.sqrt(w)) @ v.T
    scaled = inv_half @ tensors @ inv_half
    eig = np.linalg.eigvalsh(0.5 * (scaled + np.swapaxes(scaled, -1, -2)))
    return float(eig[:, -1].max() / eig[:, 0].min())


def resolve_backend(backend: str | None) -> str:
    """``"numba"`` when available for ``None``/``"auto"``; validates explicit names."""
    import os

    from ..errors import InputError

    if backend in (None, "auto"):
        backend = os.environ.get("STOCHHOM_BACKEND", "auto")
    if backend == "auto":
        try:
            import numba  # noqa: F401
        except ImportError:  # pragma: no cover - numba is a dependency
            return "numpy"
        return "numba"
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose 'auto' or one of {list(BACKENDS)}")
    return backend


class VoigtConversions:
    """Conversions between Mandel and the internal Voigt form (engineering shear),
    shared by the cell problems of every discretization. Needs ``ne``, ``_scale``
    (:func:`~stochhom.spectral.material_field.voigt_scaling`) and ``_softest`` (the
    spectral norm of the softest solid phase)."""

    ne: int
    _scale: np.ndarray
    _softest: float

    def strain_to_internal(self, e: np.ndarray) -> np.ndarray:
        """Mandel strain(s) ``(..., ne)`` to internal Voigt form (engineering shear)."""
        return np.asarray(e, dtype=float) / self._scale

    def stress_to_mandel(self, s: np.ndarray, axis: int = -1) -> np.ndarray:
        """Internal Voigt stress(es) to Mandel, scaling along ``axis``."""
        shape = [1] * np.ndim(s)
        shape[axis] = self.ne
        return s / self._scale.reshape(shape)

    def stress_floor(self, macro: np.ndarray, factor: float) -> np.ndarray:
        """``factor`` times the stress of the softest solid phase under each load (Mandel norm).

        No cell that holds together carries less (Reuss bound), so a residual
        normalization floored at this level only matters for degenerate cells, such as
        one cut by a pore layer.
        """
        return factor * self._softest * np.linalg.norm(macro * self._scale, axis=-1)

    def mean_norm(self, mean: np.ndarray) -> np.ndarray:
        """Euclidean norm of mean stresses given in internal form, taken in Mandel notation."""
        return np.linalg.norm(mean / self._scale, axis=-1)

    def strain_to_mandel(self, e: np.ndarray, axis: int = -1) -> np.ndarray:
        """Internal Voigt strain(s) to Mandel, scaling along ``axis``."""
        shape = [1] * np.ndim(e)
        shape[axis] = self.ne
        return e * self._scale.reshape(shape)


class CellProblem(VoigtConversions):
    """Discrete periodic cell problem: grid, derivative symbols and the material field.

    Parameters
    ----------
    labels : numpy.ndarray of int
        Phase labels ``0 .. n_phases - 1``.
    tensors : numpy.ndarray, shape (n_phases, ne, ne)
        Mandel stiffnesses or conductivity tensors.
    elastic : bool
    spacing : tuple of float
    discretization : str
    dtype : numpy dtype
        Real working precision (float64 or float32).
    workers : int
        Threads for the FFTs and the element-wise kernels.
    backend : {"numba", "numpy"}
        Fused compiled kernels, or the NumPy reference implementation.
    """

    def __init__(
        self,
        labels: np.ndarray,
        tensors: np.ndarray,
        elastic: bool,
        spacing: tuple[float, ...],
        discretization: str,
        dtype: np.dtype,
        workers: int,
        backend: str = "numba",
    ) -> None:
        self.backend = backend
        self.grid = Grid(tuple(labels.shape), tuple(float(h) for h in spacing), workers)
        self.dim = self.grid.dim
        self.elastic = elastic
        self.discretization = discretization
        self.dtype = np.dtype(dtype)
        self.cdtype = np.result_type(self.dtype, np.complex64)
        self.ne = tensors.shape[-1]
        self.m = self.dim if elastic else 1
        eta = derivative_symbols(self.grid, discretization, self.dtype)
        n_last = self.grid.shape[-1]
        nh = self.grid.half_shape[-1]
        self.edges = (0, nh - 1) if n_last % 2 == 0 and nh > 1 else (0,)
        self._nh, self._even = nh, bool(n_last % 2 == 0 and nh > 1)
        if backend == "numba":
            from . import kernels_numba

            self._nb = kernels_numba
            self.eta = eta.reshape(self.dim, -1)
            self.inv_eta2 = inverse_norm2(self.eta)
            self._pairs = np.array(shear_pairs(self.dim), dtype=np.int64).reshape(-1, 2)
            self._comp = np.array(voigt_components(self.dim), dtype=np.int64)
        else:
            self.eta = interleave(eta)
            self.inv_eta2 = inverse_norm2(self.eta)
        del eta
        self.labels = labels
        self.tensors = tensors
        norms = np.array([np.linalg.norm(t, 2) for t in tensors])
        solid = norms > 0
        self.contrast = phase_contrast(tensors[solid], elastic, self.dim)
        self._softest = float(norms[solid].min())
        self.material = MaterialField(labels, tensors, elastic, self.dtype)
        self._scale = voigt_scaling(self.ne, elastic)
        self._blocks: dict[int, Blocks] = {}
        self.composite: tuple[np.ndarray, np.ndarray] | None = None

    def set_composite(self, index: np.ndarray, tensors: np.ndarray) -> None:
        """Give the voxels at flat ``index`` their own Mandel ``tensors`` (composite voxels,
        :mod:`stochhom.spectral.composite`), overriding their label's phase."""
        internal = self._scale[:, None] * np.asarray(tensors, dtype=float) * self._scale[None, :]
        self.composite = (np.asarray(index, dtype=np.int64), internal.astype(self.dtype))

    def green(self, reference: ReferenceMedium) -> GreenOperator:
        """Green operator (preconditioner) of a reference medium on this grid."""
        return GreenOperator(self.eta, reference, self.edges, self.inv_eta2)

    def blocks(self, batch: int) -> Blocks:
        """Cache blocks for strain-sized fields of ``batch`` load cases."""
        if batch not in self._blocks:
            row = batch * self.ne * int(np.prod(self.grid.shape[1:])) * self.dtype.itemsize
            self._blocks[batch] = Blocks(self.grid.shape[0], row, batch * self.ne * self.grid.size, self.grid.workers)
        return self._blocks[batch]

    # -- fields -------------------------------------------------------------------
    def zeros_nodal(self, batch: int) -> np.ndarray:
        """A zero nodal field in Fourier space, shape (batch, m, *half)."""
        return np.zeros((batch, self.m) + self.grid.half_shape, dtype=self.cdtype)

    def empty_strain_spectrum(self, batch: int) -> np.ndarray:
        """Uninitialized strain spectrum, shape (batch, ne, *half)."""
        return np.empty((batch, self.ne) + self.grid.half_shape, dtype=self.cdtype)

    def _threads(self) -> None:
        if self.backend == "numba":
            import numba

            numba.set_num_threads(min(self.grid.workers, numba.config.NUMBA_NUM_THREADS))

    def gradient(self, w: np.ndarray, out: np.ndarray) -> np.ndarray:
        r"""Strain spectrum :math:`\hat e = B\hat w`."""
        if self.backend == "numba":
            self._threads()
            self._nb.gradient(self.eta, _flat(w), _flat(out), self.elastic, self._pairs)
            return out
        wr, outr = _rv(w), _rv(out)
        self.blocks(w.shape[0]).run(
            lambda sl: gradient_block(self.eta[:, sl], wr[:, :, sl], outr[:, :, sl], self.elastic)
        )
        return out

    def force(self, s_hat: np.ndarray, out: np.ndarray, dot: np.ndarray | None = None) -> np.ndarray | None:
        r"""Nodal internal force :math:`\hat g = B^H\hat\sigma` into ``out``.

        Optionally return :math:`\langle dot, g\rangle` per batch entry.
        """
        if self.backend == "numba":
            self._threads()
            d = out if dot is None else dot
            total = self._nb.force_dot(
                self.eta, _flat(s_hat), _flat(out), _flat(d), self.elastic, self._comp, self._nh, self._even
            )
            return None if dot is None else total / float(self.grid.size) ** 2
        sr, outr = _rv(s_hat), _rv(out)
        dr = None if dot is None else _rv(dot)

        def kernel(sl: slice) -> np.ndarray | None:
            force_block(self.eta[:, sl], sr[:, :, sl], outr[:, :, sl], self.elastic)
            if dr is None:
                return None
            return hdot_block(dr[:, :, sl], outr[:, :, sl], self.edges)

        total = self.blocks(s_hat.shape[0]).sum(kernel)
        return None if total is None else total / float(self.grid.size) ** 2

    def precondition(self, green: GreenOperator, g: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`z = -K_0^{-1}g`; returns :math:`\langle g, K_0^{-1}g\rangle` and :math:`\|\Pi\sigma\|^2`."""
        if self.backend == "numba":
            self._threads()
            ab = self._nb.precondition(
                self.eta, self.inv_eta2, _flat(g), _flat(z), self.elastic, green.c0, green.scale, self._nh, self._even
            )
            return green.combine(ab / float(self.grid.size) ** 2)
        gr, zr = _rv(g), _rv(z)
        ab = self.blocks(g.shape[0]).sum(lambda sl: green.precondition_block(gr, zr, sl))
        return green.combine(ab / float(self.grid.size) ** 2)

    def hdot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Volume-averaged inner product of two half spectra, per batch entry."""
        if self.backend == "numba":
            self._threads()
            return self._nb.hdot(_flat(a), _flat(b), self._nh, self._even) / float(self.grid.size) ** 2
        ar, br = _rv(a), _rv(b)
        total = self.blocks(a.shape[0]).sum(lambda sl: hdot_block(ar[:, :, sl], br[:, :, sl], self.edges))
        return total / float(self.grid.size) ** 2

    def strain(self, w: np.ndarray, macro: np.ndarray | None, e_hat: np.ndarray | None = None) -> np.ndarray:
        """Real strain field :math:`E + Bu`, shape (batch, ne, *shape), internal form."""
        if e_hat is None:
            e_hat = self.gradient(w, self.empty_strain_spectrum(w.shape[0]))
        e = self.grid.irfft(e_hat)
        if macro is not None:
            e += macro.reshape(macro.shape + (1,) * self.dim).astype(self.dtype, copy=False)
        return e

    def stress(self, e: np.ndarray) -> np.ndarray:
        """Stress of a strain field, in place (internal form)."""
        if self.composite is not None:  # the voxels' own tensors replace their label's
            idx, mats = self.composite
            ec = _flat(e)[:, :, idx]  # a copy, taken before the phases overwrite e
            self._phase_stress(e)
            _flat(e)[:, :, idx] = np.einsum("vrs,bsv->brv", mats, ec)
            return e
        return self._phase_stress(e)

    def _phase_stress(self, e: np.ndarray) -> np.ndarray:
        mat = self.material
        if self.backend == "numba":
            self._threads()
            lab = mat.labels.reshape(-1)
            if mat.mode == "scalar":
                self._nb.stress_scalar(lab, mat._c, _flat(e))
            elif mat.mode == "isotropic":
                self._nb.stress_isotropic(lab, mat._lam, mat._mu2, _flat(e), self.dim, mat._shear_factor)
            else:
                self._nb.stress_general(lab, mat._mats, _flat(e))
            return e
        return mat.apply(e, out=e, blocks=self.blocks(e.shape[0]))

    def macro_field(self, macro: np.ndarray) -> np.ndarray:
        """Uniform strain fields (batch, ne, *shape) holding ``macro`` (internal form)."""
        out = np.empty((macro.shape[0], self.ne) + self.grid.shape, dtype=self.dtype)
        out[...] = macro.reshape(macro.shape + (1,) * self.dim)
        return out

    def internal_force(self, stress: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        r"""Nodal force :math:`\hat g = B^H\hat\sigma` and mean stress of a real stress field.

        ``stress`` is destroyed. Returns ``(g_hat, mean)`` with ``mean`` of shape
        (batch, ne), internal form.
        """
        s_hat = self.grid.rfft(stress)
        mean = s_hat[(slice(None), slice(None)) + (0,) * self.dim].real / self.grid.size
        if out is None:
            out = self.zeros_nodal(s_hat.shape[0])
        self.force(s_hat, out)
        return out, mean.astype(float)

    def apply(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Stiffness operator :math:`K\hat w = B^H\mathbb L B\hat w`, and the mean stress
        :math:`\langle\mathbb L Bw\rangle`."""
        e = self.strain(w, None)
        return self.internal_force(self.stress(e))

    def evaluate(
        self, w: np.ndarray, macro: np.ndarray, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Internal force and mean stress of the state ``w`` under ``macro`` (internal form)."""
        return self.internal_force(self.stress(self.strain(w, macro)), out=out)

    def fields(self, w: np.ndarray, macro: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Real strain and stress fields (internal form) of the state ``w``."""
        e = self.strain(w, macro)
        return e, self.stress(e.copy())

    def cg_update(
        self, green: GreenOperator, x: np.ndarray, g: np.ndarray, p: np.ndarray, kz: np.ndarray, alpha: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Fused CG step: :math:`x \mathrel{+}= \alpha p`, :math:`g \mathrel{+}= \alpha Kp`, then
        :math:`z = -K_0^{-1}g` written over ``kz`` (which holds :math:`Kp` on entry).

        Returns :math:`\langle g, K_0^{-1}g\rangle` and the squared residual, per case.
        """
        if self.backend == "numba":
            self._threads()
            ab = self._nb.cg_update(
                self.eta, self.inv_eta2, _flat(x), _flat(g), _flat(p), _flat(kz), alpha.astype(self.dtype),
                self.elastic, green.c0, green.scale, self._nh, self._even,
            )
            return green.combine(ab / float(self.grid.size) ** 2)
        return _cg_update_numpy(self, green, x, g, p, kz, alpha)

    def cg_direction(self, p: np.ndarray, z: np.ndarray, beta: np.ndarray, e_hat: np.ndarray) -> None:
        r"""Fused CG step: :math:`p \leftarrow z + \beta p`, then :math:`\hat e = Bp` for the next product."""
        if self.backend == "numba":
            self._threads()
            self._nb.cg_direction(
                self.eta, _flat(p), _flat(z), beta.astype(self.dtype), _flat(e_hat), self.elastic, self._pairs
            )
            return
        _cg_direction_numpy(self, p, z, beta, e_hat)


def _cg_update_numpy(
    problem: CellProblem,
    green: GreenOperator,
    x: np.ndarray,
    g: np.ndarray,
    p: np.ndarray,
    kz: np.ndarray,
    alpha: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy backend of :meth:`CellProblem.cg_update` (cache-blocked)."""
    a = alpha.astype(problem.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    xr, gr, pr, kr = _rv(x), _rv(g), _rv(p), _rv(kz)

    def kernel(sl: slice) -> np.ndarray:
        tmp = pr[:, :, sl] * a
        xr[:, :, sl] += tmp
        np.multiply(kr[:, :, sl], a, out=tmp)
        gr[:, :, sl] += tmp
        return green.precondition_block(gr, kr, sl)

    ab = problem.blocks(x.shape[0]).sum(kernel)
    return green.combine(ab / float(problem.grid.size) ** 2)


def _cg_direction_numpy(
    problem: CellProblem, p: np.ndarray, z: np.ndarray, beta: np.ndarray, e_hat: np.ndarray
) -> None:
    """NumPy backend of :meth:`CellProblem.cg_direction` (cache-blocked)."""
    b = beta.astype(problem.dtype).reshape((-1,) + (1,) * (p.ndim - 1))
    pr, zr, er = _rv(p), _rv(z), _rv(e_hat)

    def kernel(sl: slice) -> None:
        pb = pr[:, :, sl]
        pb *= b
        pb += zr[:, :, sl]
        gradient_block(problem.eta[:, sl], pb, er[:, :, sl], problem.elastic)

    problem.blocks(p.shape[0]).run(kernel)
