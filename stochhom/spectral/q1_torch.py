r"""The Q1 discretization on PyTorch tensors: the same solver on a CPU or a GPU (``backend="torch"``).

:class:`Q1TorchProblem` has the interface of :class:`~stochhom.spectral.q1.Q1Problem`
(the equations are in :mod:`stochhom.spectral.q1`), so
:func:`~stochhom.spectral.q1.q1_conjugate_gradient` runs unchanged on it: the nodal
fields are ``torch`` tensors on ``device``, the per-load-case scalars of CG stay NumPy.
The operators are written with whole-grid tensor operations, no loop over voxels:

* :math:`Ku`: the :math:`2^d` corner values of every element are gathered from views
  of the field padded periodically by one node (a ``(2^d m, N)`` matrix), multiplied
  by the element matrix of each phase present (one whole-grid product scaled per
  element when the phases' matrices are multiples of one another, as for isotropic
  phases of one Poisson ratio and pores; otherwise a product masked to each phase,
  for up to 8 phases, and beyond, one product on each phase's own elements), and
  added back into the corners of a padded grid whose extra layer is folded back (on a
  CUDA device, 3D problems with proportional phases run the fused Triton kernel of
  :mod:`~stochhom.spectral.kernels_q1_triton` instead, one pass over the field);
* :math:`K_0^{-1}`: ``torch.fft.rfftn`` of the nodal residual, the inverse of the
  reference stiffness symbol (a :math:`d\times d` matrix per frequency, inverted once
  at set-up), ``torch.fft.irfftn``;
* the mean stress: the element-average strain :math:`\bar B u_e` summed per phase
  (a product with the phase indicator matrix; ``index_add_`` beyond 8 phases).

Load cases are processed one at a time inside each operator, which bounds the
temporary memory to about :math:`(2\cdot 2^d m + 2m)\,N` numbers per operator call.
float64 only. PyTorch is imported when the backend is first used.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..errors import InputError
from .green import ReferenceMedium
from .q1 import Q1Problem

__all__ = ["Q1TorchProblem", "torch_device"]

_FEW_PHASES = 8  # up to this many phases, element products use whole-grid masks


def torch_device(device: Any) -> Any:
    """The ``torch.device`` for ``device`` (None: ``"cpu"``), refusing one this machine lacks."""
    import torch

    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r}: this PyTorch has no CUDA device available "
                         f"(torch {torch.__version__}); use device='cpu' or the numba backend")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device {device!r}: there is no CUDA device {dev.index} "
                         f"(this machine has {torch.cuda.device_count()}); use device='cuda' or 'cuda:0'")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device {device!r}: only 'cpu' and 'cuda' devices are supported")
    return dev


class Q1TorchProblem(Q1Problem):
    """:class:`~stochhom.spectral.q1.Q1Problem` with its operators on torch tensors.

    Parameters
    ----------
    labels, tensors, elastic, spacing, dtype, workers, reference
        As in :class:`~stochhom.spectral.q1.Q1Problem`.
    device : str or torch.device, optional
        ``"cpu"`` (default) or ``"cuda"`` (``"cuda:1"``, ...).
    """

    backend = "torch"

    def __init__(self, labels: np.ndarray, tensors: np.ndarray, elastic: bool, spacing: tuple[float, ...],
                 dtype: np.dtype, workers: int, reference: ReferenceMedium, device: Any = None) -> None:
        import torch

        self.torch = torch
        self.device = torch_device(device)
        super().__init__(labels, tensors, elastic, spacing, dtype, workers, reference)
        t = self._t
        self._spatial = tuple(range(1, self.dim + 1))  # axes of a (components, *shape) field
        self._corners = list(itertools.product((0, 1), repeat=self.dim))
        flat = torch.as_tensor(self.labels.reshape(-1), device=self.device)
        self._labels = flat
        present = [p for p in range(len(self.tensors)) if self.counts[p] > 0]
        self._few = len(present) <= _FEW_PHASES
        solid = [p for p in present if self.solid[p]]
        self._scaled = self._proportional(solid) if self._few else None
        if self._few:  # whole-grid products (one scaled, or one masked per phase), no scattered indexing
            self._masks = [] if self._scaled is not None else [(p, (flat == p).to(torch.float64)) for p in solid]
            self._onehot = torch.stack([(flat == p).to(torch.float64) for p in range(len(self.tensors))], dim=1)
        else:  # many phases (polycrystals): one product per phase on its own elements
            self._phase_index = [(p, torch.nonzero(flat == p).reshape(-1)) for p in solid]
        self._ke = t(self.ke)
        from . import kernels_q1_triton

        self._fused = (self.dim == 3 and self._few and self._scaled is not None
                       and kernels_q1_triton.available(self.device))
        self._triton = kernels_q1_triton
        self._bbar = t(self.bbar)
        self._kinv = self._reference_inverse()

    def _proportional(self, solid: list[int]) -> tuple[Any, Any] | None:
        """``(K_ref, s)`` when every solid phase's element matrix is ``s_p K_ref`` (isotropic
        phases of one Poisson ratio, pores): then :math:`Ku` needs one product and a
        per-element scale field ``s`` instead of one product per phase."""
        if not solid:
            return None
        ref = self.ke[solid[0]]
        pivot = np.unravel_index(np.argmax(np.abs(ref)), ref.shape)
        scale = np.zeros(len(self.tensors))
        for p in solid:
            scale[p] = self.ke[p][pivot] / ref[pivot]
            if not np.allclose(self.ke[p], scale[p] * ref, rtol=1e-13, atol=1e-13 * np.abs(self.ke[p]).max()):
                return None
        return self._t(ref), self._t(scale)[self._labels]

    def _t(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(np.ascontiguousarray(a), dtype=self.torch.float64, device=self.device)

    def _threads(self) -> None:
        if self.device.type == "cpu":
            self.torch.set_num_threads(self.grid.workers)

    def _reference_inverse(self) -> Any:
        """:math:`K_0(q)^{-1}` per frequency, ``(m, m, *half)`` (zero at :math:`q = 0`)."""
        torch = self.torch
        axes = []
        for ax, size in enumerate(self.grid.shape):
            length = size // 2 + 1 if ax == self.dim - 1 else size
            axes.append((self._s2[ax, :length], self._sn[ax, :length], self._a[ax, :length]))
        half = tuple(len(a[0]) for a in axes)

        def along(ax: int, v: np.ndarray) -> Any:
            shape = [1] * self.dim
            shape[ax] = len(v)
            return self._t(v.reshape(shape))

        s2 = [along(ax, a[0]) for ax, a in enumerate(axes)]
        sn = [along(ax, a[1]) for ax, a in enumerate(axes)]
        mass = [along(ax, a[2]) for ax, a in enumerate(axes)]

        def prod_mass(skip: tuple[int, ...]) -> Any:
            out = torch.ones(half, dtype=torch.float64, device=self.device)
            for ax in range(self.dim):
                if ax not in skip:
                    out = out * mass[ax]
            return out

        g = torch.zeros((self.dim, self.dim) + half, dtype=torch.float64, device=self.device)
        for j in range(self.dim):
            g[j, j] = s2[j] * prod_mass((j,))
            for k in range(j + 1, self.dim):
                g[j, k] = g[k, j] = sn[j] * sn[k] * prod_mass((j, k))
        trace = sum(g[j, j] for j in range(self.dim))
        origin = (0,) * self.dim
        if not self.elastic:
            trace[origin] = 1.0
            inv = 1.0 / (self._mu * trace)
            inv[origin] = 0.0
            return inv[None, None]
        k0 = self._lam_mu * g
        for j in range(self.dim):
            k0[j, j] += self._mu * trace
        k0[(slice(None), slice(None)) + origin] = torch.eye(self.dim, dtype=torch.float64, device=self.device)
        inv = torch.linalg.inv(k0.permute(*range(2, 2 + self.dim), 0, 1)).permute(self.dim, self.dim + 1,
                                                                                 *range(self.dim))
        inv[(slice(None), slice(None)) + origin] = 0.0
        return inv.contiguous()

    # -- the array operations of CG --------------------------------------------------
    def zeros(self, batch: int) -> Any:
        return self.torch.zeros((batch, self.m) + self.grid.shape, dtype=self.torch.float64, device=self.device)

    @staticmethod
    def copy(a: Any) -> Any:
        return a.clone()

    def dot(self, a: Any, b: Any) -> np.ndarray:
        return (a.reshape(a.shape[0], -1) * b.reshape(b.shape[0], -1)).sum(dim=1).cpu().numpy()

    def batch_column(self, v: np.ndarray) -> Any:
        return self._t(np.asarray(v, dtype=float).reshape((-1,) + (1,) * (self.dim + 1)))

    @staticmethod
    def to_numpy(a: Any) -> np.ndarray:
        return a.detach().cpu().numpy()

    # -- element gather / scatter -------------------------------------------------------
    def _padded(self, u: Any) -> Any:
        """``u`` ``(m, *shape)`` extended periodically by one node along every axis."""
        torch = self.torch
        for ax in self._spatial:
            u = torch.cat([u, u.narrow(ax, 0, 1)], dim=ax)
        return u

    def _corner(self, up: Any, cc: tuple[int, ...]) -> Any:
        """The view of the padded field at corner offset ``cc`` (no copy)."""
        for ax, c in zip(self._spatial, cc):
            up = up.narrow(ax, c, self.grid.shape[ax - 1])
        return up

    def _gather(self, u: Any) -> Any:
        """Corner values of every element, ``(2^d m, N)`` (corner-major), from ``u`` ``(m, *shape)``."""
        up = self._padded(u)
        return self.torch.stack([self._corner(up, cc) for cc in self._corners]).reshape(len(self._corners) * self.m, -1)

    def _scatter(self, fe: Any) -> Any:
        """Sum element vectors ``(2^d m, N)`` into their corner nodes, ``(m, *shape)``: added
        into a grid padded by one node, whose last layer is then folded back (periodicity)."""
        fe = fe.reshape((len(self._corners), self.m) + self.grid.shape)
        padded = tuple(n + 1 for n in self.grid.shape)
        acc = self.torch.zeros((self.m,) + padded, dtype=self.torch.float64, device=self.device)
        for c, cc in enumerate(self._corners):
            self._corner(acc, cc).add_(fe[c])
        for ax in self._spatial:
            n = self.grid.shape[ax - 1]
            acc.narrow(ax, 0, 1).add_(acc.narrow(ax, n, 1))
            acc = acc.narrow(ax, 0, n)
        return acc.contiguous()

    # -- operators ---------------------------------------------------------------------
    def apply(self, u: Any, out: Any = None) -> Any:
        """:math:`Ku`, shape ``(batch, m, *shape)``."""
        self._threads()
        out = self.torch.empty_like(u) if out is None else out
        if self._fused:  # one fused pass on the GPU (kernels_q1_triton)
            return self._triton.apply_scaled3(u.contiguous(), self._scaled[1], self._scaled[0], out)
        for b in range(u.shape[0]):
            ue = self._gather(u[b])
            if self._few and self._scaled is not None:
                fe = (self._scaled[0] @ ue).mul_(self._scaled[1])
            elif self._few:
                fe = None
                for p, mask in self._masks:
                    term = (self._ke[p] @ ue).mul_(mask)
                    fe = term if fe is None else fe.add_(term)
                if fe is None:  # every phase void
                    fe = self.torch.zeros_like(ue)
            else:
                fe = self.torch.zeros_like(ue)
                for p, idx in self._phase_index:
                    fe.index_copy_(1, idx, self._ke[p] @ ue.index_select(1, idx))
            out[b] = self._scatter(fe)
        return out

    def rhs(self, macro: np.ndarray) -> Any:
        r""":math:`b = -\sum_e V_e\bar B^{\mathsf T}\mathbb L_e E` for each macroscopic strain (internal form)."""
        self._threads()
        f = self._t(self.volume * np.einsum("rc,prs,bs->bpc", self.bbar, self.voigt, macro))
        out = self.zeros(macro.shape[0])
        for b in range(macro.shape[0]):
            out[b] = -self._scatter(f[b][self._labels].T)
        return out

    def mean_stress(self, u: Any, macro: np.ndarray | None) -> np.ndarray:
        r""":math:`\langle\sigma\rangle` (internal form) of the state ``u`` under ``macro`` (None: 0)."""
        self._threads()
        n_phases = len(self.tensors)
        sums = np.empty((u.shape[0], n_phases, self.ne))
        for b in range(u.shape[0]):
            eps = self._bbar @ self._gather(u[b])  # (ne, N)
            if self._few:
                acc = (eps @ self._onehot).T
            else:
                acc = self.torch.zeros((n_phases, self.ne), dtype=self.torch.float64, device=self.device)
                acc.index_add_(0, self._labels, eps.T)
            sums[b] = acc.cpu().numpy()
        if macro is not None:
            sums = sums + self.counts[None, :, None] * macro[:, None, :]
        return np.einsum("prs,bps->br", self.voigt, sums) / self.grid.size

    def precondition(self, r: Any) -> tuple[Any, np.ndarray]:
        r""":math:`z = K_0^{-1}r` and :math:`r\cdot z` per load case."""
        torch = self.torch
        self._threads()
        dims = tuple(range(2, 2 + self.dim))
        r_hat = torch.fft.rfftn(r, dim=dims)
        k = self._kinv
        z_hat = torch.empty_like(r_hat)
        for i in range(self.m):  # z_i = sum_j K0^-1_ij r_j, element-wise (complex times real)
            z_i = r_hat[:, 0] * k[i, 0]
            for j in range(1, self.m):
                z_i.add_(r_hat[:, j] * k[i, j])
            z_hat[:, i] = z_i
        z = torch.fft.irfftn(z_hat, s=self.grid.shape, dim=dims)
        return z, self.dot(r, z)

    def element_strain(self, u: Any, macro: np.ndarray) -> np.ndarray:
        """Element-average strain :math:`E + \\bar Bu_e` per voxel, ``(batch, ne, *shape)``, internal form (NumPy)."""
        u = self._t(u) if isinstance(u, np.ndarray) else u
        out = np.empty((u.shape[0], self.ne) + self.grid.shape)
        for b in range(u.shape[0]):
            out[b] = (self._bbar @ self._gather(u[b])).reshape((self.ne,) + self.grid.shape).cpu().numpy()
        out += macro.reshape(macro.shape + (1,) * self.dim)
        return out
