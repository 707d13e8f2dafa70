r"""Apparent properties under kinematic, static and periodic boundary conditions.

For a window :math:`\Omega` of a microstructure (Huet 1990; Kanit et al. 2003):

``"kubc"`` (kinematic uniform)
    :math:`u = E\,x` on :math:`\partial\Omega`. The apparent tensor maps :math:`E` to
    the mean stress: column :math:`a` of :math:`\mathbb C^{\rm K}` is
    :math:`\langle\sigma\rangle` under :math:`E = e_a`.
``"subc"`` (static uniform)
    :math:`\sigma n = \Sigma n` on :math:`\partial\Omega` (consistent nodal forces
    :math:`f = \int_{\partial\Omega} N\,\Sigma n`). The apparent compliance is the work
    of the loads, :math:`\mathbb S^{\rm S}_{ab} = f_a\cdot u_b / |\Omega|`
    (:math:`=\Sigma_a:\langle\varepsilon\rangle_b`), and
    :math:`\mathbb C^{\rm S} = (\mathbb S^{\rm S})^{-1}`.
``"mixed"`` (orthogonal uniform mixed, Hazanov and Huet 1994)
    Per face, complementary components prescribed: for a normal load every face's
    normal displacement is affine and its tangential traction free; for a shear load
    :math:`e_{ij}` the faces normal to :math:`i` prescribe :math:`u_j`, those normal to
    :math:`j` prescribe :math:`u_i`, the third pair its normal displacement; for
    conductivity the temperature on the faces normal to the gradient, zero flux on the
    others. The apparent tensor maps the cases' mean strains to their mean stresses
    (symmetrized); :math:`\mathbb C^{\rm S}\preceq\mathbb C^{\rm M}\preceq\mathbb C^{\rm K}`.
``"periodic_fe"``
    The periodic cell on the same elements (a cross-check of the FFT solver's
    ``discretization="q1"``, which solves the same discrete problem).

With the same elements, :math:`\mathbb C^{\rm S}\preceq\mathbb C^{\rm per}\preceq
\mathbb C^{\rm K}` in the Loewner order for every window (the kinematic space
contains the periodic one, the static space is dual to it), and the three meet as the
window grows.

Pores
-----
Under KUBC a pore cut by the boundary has its boundary nodes moved like the rest:
nothing changes. Under SUBC (and the traction-free components of the mixed
condition) the prescribed traction would act on the pore's part of
the boundary, where there is no material: no statically admissible stress exists, so
the static problem is posed on an *ersatz* material, the void carrying
:math:`10^{-6}` times the softest solid's tensor; the apparent stiffness then tends
to zero as it should (a window cut by pores has no static lower bound above zero),
and for pores inside the window the ersatz changes the answer by about that factor.

Solver
------
The stiffness is assembled in node blocks (BSR, :meth:`VoxelMesh.stiffness`).
Prescribed displacements are imposed in place: for :math:`u = u_0 + \delta u` with
:math:`u_0` the prescribed values, the rows and columns of the constrained dofs
become those of the identity and :math:`K'\delta u = -K u_0` (zero on the
constrained dofs), so the matrix keeps its blocks and no submatrix is copied
(:func:`_constrain`; nodes that only voids touch are constrained alike).
All load cases are solved together by conjugate gradients in lockstep (each its own
step lengths, :func:`_block_cg`), so that every pass over a matrix serves all of
them, preconditioned by a V-cycle over a smoothed-aggregation hierarchy (``pyamg``;
for elasticity the rigid-body modes of the free dofs as near-nullspace) with
Chebyshev smoothing on node-block Jacobi (:class:`_Multigrid`). The singular static
and periodic problems are solved on their consistent right-hand sides with the
kernel (the rigid-body modes, the translations) projected out.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

# idle OpenMP workers of the compiled kernels sleep (see stochhom.spectral.kernels_numba)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba as nb
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..choices import BOUNDARY_CONDITIONS  # the conditions apparent_tensor knows ("periodic": the FFT solver's)
from ..errors import ConvergenceError, InputError
from ..spectral.green import shear_pairs
from ..spectral.material_field import voigt_scaling
from .voxel_mesh import VoxelMesh

__all__ = ["BOUNDARY_CONDITIONS", "apparent_tensor"]

ERSATZ = 1e-6


def _rigid_modes(coords: np.ndarray, elastic: bool) -> np.ndarray:
    """``(n_nodes * m, k)`` rigid-body modes (translations, rotations) of the nodes."""
    n, dim = coords.shape
    if not elastic:
        return np.ones((n, 1))
    m = dim
    modes = []
    for a in range(dim):
        t = np.zeros((n, m))
        t[:, a] = 1.0
        modes.append(t.reshape(-1))
    x = coords - coords.mean(axis=0)
    for i, j in shear_pairs(dim):
        r = np.zeros((n, m))
        r[:, i], r[:, j] = -x[:, j], x[:, i]
        modes.append(r.reshape(-1))
    return np.stack(modes, 1)


# -- multigrid-preconditioned block CG ------------------------------------------------------
@nb.njit(parallel=True, nogil=True, cache=True, fastmath={"contract"})
def _bsr_matmat(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray, out: np.ndarray,
                rows: tuple, cols: tuple, width: tuple) -> None:  # pragma: no cover - compiled
    """``out = A x`` for a BSR matrix ``A`` (blocks ``data[j]`` of ``len(rows) x len(cols)``)
    and ``len(width)`` columns ``x``; the tuples carry the sizes as types, so that the
    block loops compile to fixed-size code."""
    br, bc, k = len(rows), len(cols), len(width)
    for i in nb.prange(indptr.shape[0] - 1):
        acc = np.zeros((br, k))
        for jj in range(indptr[i], indptr[i + 1]):
            c = indices[jj] * bc
            for t in range(bc):
                for s in range(br):
                    a = data[jj, s, t]
                    for q in range(k):
                        acc[s, q] += a * x[c + t, q]
        for s in range(br):
            for q in range(k):
                out[i * br + s, q] = acc[s, q]


class _BlockOperator:
    """A BSR matrix applied to ``(n, k)`` arrays of ``k`` vectors at once (one pass over
    the matrix for all of them; :func:`_bsr_matmat`)."""

    def __init__(self, a: sp.spmatrix | sp.sparray, blocksize: tuple[int, int] | None = None) -> None:
        a = sp.bsr_matrix(a, blocksize=blocksize) if blocksize is not None or a.format != "bsr" else a
        self.shape = a.shape
        self.blocksize = a.blocksize
        index = np.int32 if max(a.indptr[-1], a.shape[1]) < 2**31 else np.int64  # one compiled variant
        self.indptr, self.indices = a.indptr.astype(index, copy=False), a.indices.astype(index, copy=False)
        self.data = np.ascontiguousarray(a.data, dtype=float)

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=float)
        out = np.empty((self.shape[0], x.shape[1]))
        br, bc = self.blocksize
        _bsr_matmat(self.indptr, self.indices, self.data, x, out, (0,) * br, (0,) * bc, (0,) * x.shape[1])
        return out


def _diagonal_blocks(a: sp.bsr_matrix) -> np.ndarray:
    """Positions in ``a.data`` of the diagonal blocks of a square-blocked BSR matrix that
    stores every one of them (:meth:`VoxelMesh.stiffness`, pyamg's coarse levels)."""
    rows = np.repeat(np.arange(len(a.indptr) - 1), np.diff(a.indptr))
    pos = np.flatnonzero(a.indices == rows)
    if pos.size != len(a.indptr) - 1:
        raise ConvergenceError("a multigrid level lacks a diagonal block (an empty row of the coarse operator); "
                               "report the image that triggers this")
    return pos


class _Level:
    r"""One level of the multigrid hierarchy: its operator :math:`A`, the inverses of its
    diagonal blocks :math:`D^{-1}` (pseudo-inverses: a block of a constrained or singular
    problem may be singular) and the upper end :math:`\lambda` of the spectrum of
    :math:`D^{-1}A` (power iteration, 10 % margin) for the Chebyshev smoother."""

    def __init__(self, a: sp.bsr_matrix, rng: np.random.Generator, k: int) -> None:
        self.a = _BlockOperator(a)
        b = a.blocksize[0]
        blocks = a.data[_diagonal_blocks(a)]
        pinv = np.linalg.pinv(blocks, hermitian=True)
        self.dinv = _BlockOperator(sp.bsr_matrix((pinv, np.arange(len(pinv)), np.arange(len(pinv) + 1)),
                                                 shape=a.shape, blocksize=(b, b)))
        v = rng.standard_normal((a.shape[0], k))
        lam = 1.0
        for _ in range(_POWER_STEPS):
            w = self.dinv @ (self.a @ v)
            norms = np.linalg.norm(w, axis=0)
            lam = float(np.max(norms / np.maximum(np.linalg.norm(v, axis=0), 1e-300)))
            v = w / np.maximum(norms, 1e-300)
        self.lmax = 1.1 * lam
        self.p: _BlockOperator | None = None
        self.r: _BlockOperator | None = None

    def smooth(self, b: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        r"""``_DEGREE`` steps of Chebyshev iteration on :math:`D^{-1}A x = D^{-1}b` for the
        interval :math:`[\lambda/30, \lambda]` (the three-term Chebyshev recurrence):
        the error's components above :math:`\lambda/30` shrink; ``x=None`` starts
        from zero."""
        hi = self.lmax
        lo = hi / _SMOOTHING_RANGE
        theta, delta = 0.5 * (hi + lo), 0.5 * (hi - lo)
        sigma = theta / delta
        rho = 1.0 / sigma
        r = b if x is None else b - self.a @ x
        d = (self.dinv @ r) / theta
        x = d.copy() if x is None else x + d
        for _ in range(_DEGREE - 1):
            r = r - self.a @ d
            rho_new = 1.0 / (2.0 * sigma - rho)
            d *= rho_new * rho
            d += (2.0 * rho_new / delta) * (self.dinv @ r)
            rho = rho_new
            x += d
        return x


#: pyamg's smoothed aggregation: the rigid modes are exact near-nullspace vectors (no
#: improvement of the candidates: 4 s of 8 at 48^3), and the prolongator is smoothed by
#: node-block Jacobi (64^3 SUBC: 17 iterations, against 28 with Gershgorin row weights).
_SA_OPTIONS: dict[str, Any] = {"symmetry": "symmetric", "max_coarse": 100, "improve_candidates": None,
                               "smooth": ("jacobi", {"weighting": "block"})}

#: Chebyshev smoother: degree and the ratio of the largest to the smallest eigenvalue of
#: :math:`D^{-1}A` it targets; power-iteration steps for the largest.
_DEGREE, _SMOOTHING_RANGE, _POWER_STEPS = 2, 30.0, 10


class _Multigrid:
    r"""A symmetric V-cycle on blocks of vectors over a smoothed-aggregation hierarchy.

    ``pyamg`` builds the hierarchy (prolongators :math:`P_l`, restrictions
    :math:`R_l = P_l^{\mathsf T}`, Galerkin operators :math:`A_{l+1} = R_l A_l P_l`, with
    the near-nullspace ``nullspace`` and the aggregation of the node blocks); the cycle
    itself runs here so that all load cases share each pass over a matrix: Chebyshev
    smoothing with the node-block Jacobi preconditioner before and after the coarse
    correction, and the pseudo-inverse of the coarsest operator (singular problems
    included).
    """

    def __init__(self, a: sp.bsr_matrix, nullspace: np.ndarray, k: int, singular: bool) -> None:
        import pyamg

        t0 = time.perf_counter()
        ml = pyamg.smoothed_aggregation_solver(a, B=nullspace, **_SA_OPTIONS)
        rng = np.random.default_rng(0)
        self.levels: list[_Level] = []
        for lev in ml.levels[:-1]:
            level = _Level(sp.bsr_matrix(lev.A), rng, k)
            level.p, level.r = _BlockOperator(lev.P), _BlockOperator(lev.R)
            self.levels.append(level)
        coarse = ml.levels[-1].A.toarray()
        self.coarse = _coarse_inverse(coarse, singular)
        self.n_levels = len(ml.levels)
        self.complexity = float(ml.operator_complexity())
        self.amg_setup_time = time.perf_counter() - t0  # pyamg's hierarchy, smoothers' setup

    def __call__(self, b: np.ndarray, level: int = 0) -> np.ndarray:
        """Approximate :math:`A_l^{-1} b` (``b``: ``(n_l, k)``) by one V-cycle from level ``l``."""
        if level == len(self.levels):
            return self.coarse @ b
        lev = self.levels[level]
        x = lev.smooth(b, None)
        x += lev.p @ self(lev.r @ (b - lev.a @ x), level + 1)
        return lev.smooth(b, x)


def _coarse_inverse(a: np.ndarray, singular: bool) -> np.ndarray:
    r"""Inverse of the coarsest operator (dense): from its Cholesky factor, or for a singular
    problem the pseudo-inverse :math:`V_+\Lambda_+^{-1}V_+^{\mathsf T}` over the eigenvalues
    above ``1e-10`` of the largest (divide-and-conquer ``eigh``: 5x faster than ``pinvh``)."""
    if a.size == 0:
        return a
    if not singular:
        # coarse functions of aggregates with fewer free dofs than near-nullspace modes (on a
        # constrained boundary) vanish: their rows and columns are zero, and the rest is SPD
        d = np.diag(a)
        live = np.flatnonzero(d > 1e-12 * max(float(d.max()), 0.0))
        try:
            out = np.zeros_like(a)
            out[np.ix_(live, live)] = sla.cho_solve(sla.cho_factor(a[np.ix_(live, live)]), np.eye(live.size))
            return out
        except np.linalg.LinAlgError:
            pass
    w, v = sla.eigh(a, driver="evd")
    keep = w > 1e-10 * max(w.max(), 0.0)
    return (v[:, keep] / w[keep]) @ v[:, keep].T


def _block_cg(a: _BlockOperator, b: np.ndarray, precond: _Multigrid, tol: float, maxiter: int,
              kernel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Preconditioned conjugate gradients for the columns of ``b`` in lockstep.

    Each column :math:`j` runs its own CG (its own :math:`\alpha_j, \beta_j`); the columns
    share the products with :math:`A` and the V-cycles. Column :math:`j` stops counting
    iterations when :math:`\|b_j - A x_j\|_2 \le` ``tol`` :math:`\|b_j\|_2` and stops
    moving then. ``kernel``: an orthonormal basis of the kernel of a singular ``a``,
    projected out of the right-hand sides, the preconditioned residuals and the solutions
    (the problems are consistent).

    Returns
    -------
    x : numpy.ndarray, shape like ``b``
    iterations : numpy.ndarray of int, one per column
    """
    def project(v: np.ndarray) -> np.ndarray:
        return v if kernel is None else v - kernel @ (kernel.T @ v)

    b = project(b)
    x = np.zeros_like(b)
    r = b.copy()
    bnorm = np.linalg.norm(b, axis=0)
    active = bnorm > 0
    iters = np.zeros(b.shape[1], dtype=int)
    z = project(precond(r))
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    for it in range(1, maxiter + 1):
        if not active.any():
            break
        ap = a @ p
        pap = np.einsum("ij,ij->j", p, ap)
        alpha = np.divide(rz, pap, out=np.zeros_like(rz), where=active & (pap > 0))
        x += alpha * p
        r -= alpha * ap
        iters[active] = it
        active &= np.linalg.norm(r, axis=0) > tol * bnorm
        if not active.any():
            break
        z = project(precond(r))
        rz_new = np.einsum("ij,ij->j", r, z)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=active & (rz != 0))
        rz = rz_new
        p *= beta
        p += z
    if active.any():
        raise ConvergenceError(f"multigrid-preconditioned CG did not reach rtol={tol:g} in {maxiter} iterations "
                               f"(load cases {np.flatnonzero(active).tolist()}); raise maxiter or check for "
                               "disconnected material", iterations=iters, tol=tol)
    return project(x), iters


def _solve(k: sp.bsr_matrix, b: np.ndarray, nullspace: np.ndarray, tol: float, maxiter: int,
           kernel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Solve :math:`K x = b` for the columns of ``b`` (``(n_dofs, k)``) by block CG with one
    multigrid hierarchy; returns the solutions, the iterations and the hierarchy's
    figures (``amg_setup_time``, ``levels``, ``operator_complexity``)."""
    from threadpoolctl import threadpool_limits

    # the dense work is tall-skinny products ((n, k) by (k, k)), which a threaded BLAS runs
    # many times slower than one thread as soon as the other core is busy (measured 25x)
    with threadpool_limits(limits=1, user_api="blas"):
        mg = _Multigrid(k, nullspace, b.shape[1], singular=kernel is not None)
        x, iters = _block_cg(mg.levels[0].a if mg.levels else _BlockOperator(k), b, mg, tol, maxiter, kernel)
    return x, iters, {"amg_setup_time": mg.amg_setup_time, "levels": mg.n_levels,
                      "operator_complexity": mg.complexity}


def _constrain(k: sp.bsr_matrix, fixed: np.ndarray) -> np.ndarray:
    r"""Impose :math:`\delta u_i = 0` on the dofs ``fixed`` (boolean, ``n_dofs``) in place:
    their rows and columns of ``k`` become zero and their diagonal entries one. Dofs
    with a zero diagonal (nodes that only voids touch) are constrained alike.

    The system for the correction :math:`\delta u` of a prescribed field
    :math:`u_0` then reads :math:`K' \delta u = b` with :math:`b = -K u_0` on the free
    dofs and 0 on the constrained ones, and keeps the node-block structure.

    Returns
    -------
    numpy.ndarray of bool
        The constrained dofs (``fixed`` and the dofs with a zero diagonal).
    """
    m = k.blocksize[0]
    diag = _diagonal_blocks(k)
    idx = np.arange(m)
    fixed = fixed | (k.data[diag][:, idx, idx].reshape(-1) == 0)
    keep = ~fixed.reshape(-1, m)
    rows = np.repeat(np.arange(len(keep)), np.diff(k.indptr))
    touched = np.flatnonzero(~keep[rows].all(axis=1) | ~keep[k.indices].all(axis=1))
    k.data[touched] *= keep[rows[touched]][:, :, None] & keep[k.indices[touched]][:, None, :]
    blocks = k.data[diag]
    blocks[:, idx, idx] = np.where(keep, blocks[:, idx, idx], 1.0)
    k.data[diag] = blocks
    return fixed


def _face_loads(mesh: VoxelMesh, tractions: np.ndarray) -> np.ndarray:
    r"""Consistent nodal forces :math:`\int_{\partial\Omega} N t` of uniform tractions
    ``t = Sigma n`` per load case (``tractions``: ``(batch, dim (face normal), m)``) on the
    box faces (voids are ersatz material under SUBC, so every face is loaded)."""
    dim, m = mesh.dim, mesh.m
    f = np.zeros((tractions.shape[0], mesh.n_nodes, m))
    for ax in range(dim):
        area = float(np.prod([h for k, h in enumerate(mesh.spacing) if k != ax]))
        share = area / 2 ** (dim - 1)
        face = tuple(n for k, n in enumerate(mesh.shape) if k != ax)  # elements on a face
        for node_layer, sign in ((0, -1.0), (mesh.node_shape[ax] - 1, 1.0)):
            for corner in itertools.product((0, 1), repeat=dim - 1):
                idx = np.indices(face)
                coords = [idx[k] + corner[k] for k in range(dim - 1)]
                coords.insert(ax, np.full(face, node_layer))
                nodes = np.ravel_multi_index(coords, mesh.node_shape).reshape(-1)
                for b in range(tractions.shape[0]):
                    np.add.at(f[b], nodes, sign * share * tractions[b, ax])
    return f.reshape(tractions.shape[0], -1)


def apparent_tensor(labels: np.ndarray, tensors: np.ndarray, void: np.ndarray, elastic: bool,
                    spacing: tuple[float, ...], boundary: str, tol: float = 1e-8,
                    maxiter: int = 5000) -> tuple[np.ndarray, dict[str, Any]]:
    """Apparent Mandel stiffness (or conductivity) of a voxel window under ``boundary``.

    Parameters
    ----------
    labels : numpy.ndarray of int
        Compact labels ``0 .. P - 1``.
    tensors : numpy.ndarray, shape (P, ne, ne)
        Mandel tensors (zero for a void).
    void : numpy.ndarray of bool, shape (P,)
    elastic : bool
    spacing : tuple of float
    boundary : {"kubc", "subc", "mixed", "periodic_fe"}
    tol : float
        Relative residual :math:`\\|b - Ku\\|_2/\\|b\\|_2` of each load case's CG.
    maxiter : int

    Returns
    -------
    effective : numpy.ndarray
    info : dict
        ``iterations`` per load case, ``setup_time``, ``solve_time``, ``n_dofs``.
    """
    if boundary not in ("kubc", "subc", "mixed", "periodic_fe"):
        raise InputError(f"unknown boundary condition {boundary!r}; choose one of {list(BOUNDARY_CONDITIONS)}")
    t0 = time.perf_counter()
    dim = labels.ndim
    ne = tensors.shape[-1]
    scale = voigt_scaling(ne, elastic)
    tensors = np.array(tensors, dtype=float)
    if boundary in ("subc", "mixed") and np.any(void):
        soft = min(np.linalg.norm(t, 2) for t, v in zip(tensors, void) if not v)
        ref = next(t for t, v in zip(tensors, void) if not v)
        tensors[void] = ERSATZ * ref * soft / np.linalg.norm(ref, 2)
    internal = tensors * np.outer(scale, scale)
    mesh = VoxelMesh(labels, internal, elastic, spacing, periodic=boundary == "periodic_fe")
    k = mesh.stiffness()
    coords = mesh.node_coordinates()
    macro = np.eye(ne) / scale  # unit Mandel strains, internal form (engineering shear)
    volume = float(np.prod(mesh.shape)) * mesh.volume_e
    enodes = mesh.element_nodes()
    m = mesh.m
    if boundary == "kubc":
        fixed_nodes = mesh.boundary_nodes()
        u0 = np.zeros((mesh.n_dofs, ne))
        for a in range(ne):
            grad = _gradient_matrix(macro[a], dim, elastic)  # u = H x on the boundary
            u0.reshape(-1, m, ne)[fixed_nodes, :, a] = coords[fixed_nodes] @ grad.T
        fixed = np.zeros((mesh.n_nodes, m), dtype=bool)
        fixed[fixed_nodes] = True
        t1 = time.perf_counter()
        u, iters, amg = _solve_prescribed(k, u0, fixed.reshape(-1), coords, elastic, tol, maxiter)
        strain = mesh.element_strain(u.T, enodes)
        eff = mesh.mean_stress(strain)  # (ne load, ne stress), internal
        effective = (eff / scale[None, :]).T
    elif boundary == "periodic_fe":
        lab = labels.reshape(-1)
        f_e = mesh.volume_e * np.einsum("rc,prs,bs->bpc", mesh.bbar, internal, macro)[:, lab]  # (b, e, nd)
        dofs = (enodes[:, :, None] * m + np.arange(m)).reshape(-1)
        rhs = np.zeros((mesh.n_dofs, ne))
        for a in range(ne):
            rhs[:, a] = -np.bincount(dofs, weights=f_e[a].reshape(-1), minlength=mesh.n_dofs)
            # a load that cancels to rounding (a homogeneous cell) has the solution 0
            if np.linalg.norm(rhs[:, a]) <= 1e-12 * np.linalg.norm(f_e[a]):
                rhs[:, a] = 0.0
        del f_e
        free = ~_constrain(k, np.zeros(mesh.n_dofs, dtype=bool))  # void-only nodes carry no unknown
        rhs[~free] = 0.0
        trans = np.zeros((mesh.n_dofs, m))  # the kernel: rigid translations of the material's nodes
        trans[free, np.flatnonzero(free) % m] = 1.0
        trans /= np.linalg.norm(trans, axis=0, keepdims=True)
        nullspace = _rigid_modes(coords, elastic)
        nullspace[~free] = 0.0
        t1 = time.perf_counter()
        u, iters, amg = _solve(k, rhs, nullspace, tol, maxiter, kernel=trans)
        strain = mesh.element_strain(u.T, enodes) + macro[:, None, :]
        effective = (mesh.mean_stress(strain) / scale[None, :]).T
    elif boundary == "mixed":
        eff = np.zeros((ne, ne))
        mean_strain = np.zeros((ne, ne))
        iters = np.zeros(ne, dtype=int)
        t1 = time.perf_counter()
        faces = _face_nodes(mesh)
        amg = {"amg_setup_time": 0.0}
        # cases that prescribe the same components (the normal loads of elasticity) share one
        # constrained system and one hierarchy; the others each have their own
        groups: dict[tuple, list[int]] = {}
        for a in range(ne):
            groups.setdefault(tuple(_mixed_components(a, dim, elastic)), []).append(a)
        for comps_per_face, cases in groups.items():
            u0 = np.zeros((mesh.n_dofs, len(cases)))
            fixed = np.zeros(mesh.n_dofs, dtype=bool)
            grads = np.stack([_gradient_matrix(macro[a], dim, elastic) for a in cases])  # (cases, m, dim)
            for f, comps in enumerate(comps_per_face):
                nodes = faces[f]
                for c in comps:
                    fixed[nodes * m + c] = True
                    u0[nodes * m + c] = coords[nodes] @ grads[:, c].T
            u, its, case = _solve_prescribed(k.copy(), u0, fixed, coords, elastic, tol, maxiter)
            iters[cases] = its
            amg = {**case, "amg_setup_time": amg["amg_setup_time"] + case["amg_setup_time"]}
            strain = mesh.element_strain(u.T, enodes)  # (cases, elements, ne)
            eff[:, cases] = mesh.mean_stress(strain).T
            mean_strain[:, cases] = strain.mean(axis=1).T
        # the tangential (or lateral) mean strains are not prescribed: the apparent tensor maps
        # the mean strains the cases produced to their mean stresses (Hill-Mandel holds)
        stress = eff / scale[:, None]  # Mandel, column per case
        strain_m = mean_strain * scale[:, None]
        effective = stress @ np.linalg.inv(strain_m)
        effective = 0.5 * (effective + effective.T)
    else:  # subc
        sigma = np.eye(ne) * scale  # unit Mandel stresses, internal (tensor) components
        tractions = np.stack([_traction_table(sigma[a], dim, elastic) for a in range(ne)])
        f = _face_loads(mesh, tractions)
        _constrain(k, np.zeros(mesh.n_dofs, dtype=bool))  # no-op: the ersatz fills the voids
        rbm = _rigid_modes(coords, elastic)
        q, _ = np.linalg.qr(rbm)
        t1 = time.perf_counter()
        sol, iters, amg = _solve(k, f.T, rbm, tol, maxiter, kernel=q)
        compliance = f @ sol / volume  # S_ab = f_a . u_b / V (internal stress basis e_a * scale)
        compliance = 0.5 * (compliance + compliance.T)
        # unit Mandel stresses were applied, so the matrix is the Mandel compliance
        effective = np.linalg.inv(compliance)
    t2 = time.perf_counter()
    info = {"boundary": boundary, "iterations": iters, "setup_time": t1 - t0, "solve_time": t2 - t1,
            "n_dofs": int(mesh.n_dofs), "tol": tol, **amg}
    return effective, info


def _solve_prescribed(k: sp.bsr_matrix, u0: np.ndarray, fixed: np.ndarray, coords: np.ndarray, elastic: bool,
                      tol: float, maxiter: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    r"""Displacements ``(n_dofs, batch)`` equal to ``u0`` on the dofs ``fixed`` (boolean) and
    in equilibrium elsewhere, :math:`u = u_0 + \delta u` with
    :math:`K'\delta u = -K u_0` on the free dofs (:func:`_constrain`; ``k`` is
    constrained in place), one multigrid hierarchy for the batch. Nodes that only void
    elements touch (zero diagonal) carry no unknown. Returns ``u``, the iterations and
    the hierarchy's figures."""
    b = -(_BlockOperator(k) @ u0)
    constrained = _constrain(k, fixed)
    b[constrained] = 0.0
    # near-nullspace: the rigid modes of the free dofs (under mixed conditions a node may
    # keep only some components)
    nullspace = _rigid_modes(coords, elastic)
    nullspace[constrained] = 0.0
    du, iters, amg = _solve(k, b, nullspace, tol, maxiter)
    return u0 + du, iters, amg


def _face_nodes(mesh: VoxelMesh) -> list[np.ndarray]:
    """Indices of the nodes on the two faces normal to each axis."""
    idx = np.indices(mesh.node_shape).reshape(mesh.dim, -1)
    return [np.flatnonzero((idx[a] == 0) | (idx[a] == n - 1)) for a, n in enumerate(mesh.node_shape)]


def _mixed_components(a: int, dim: int, elastic: bool) -> list[tuple[int, ...]]:
    """Displacement (temperature) components prescribed on the faces normal to each axis
    under load case ``a`` of the orthogonal uniform mixed condition (module docstring);
    the other components are traction (flux) free."""
    if not elastic:
        return [(0,) if f == a else () for f in range(dim)]
    if a < dim:  # normal load e_aa: normal displacements on every face
        return [(f,) for f in range(dim)]
    i, j = shear_pairs(dim)[a - dim]
    out = [(f,) for f in range(dim)]
    out[i], out[j] = (j,), (i,)  # shear: the tangential component along the other axis
    return out


def _gradient_matrix(e_internal: np.ndarray, dim: int, elastic: bool) -> np.ndarray:
    """Displacement gradient ``H`` (``u = H x``) of an internal-form strain (symmetric part)."""
    if not elastic:
        return e_internal.reshape(1, dim)
    h = np.zeros((dim, dim))
    for i in range(dim):
        h[i, i] = e_internal[i]
    for a, (i, j) in enumerate(shear_pairs(dim)):
        h[i, j] = h[j, i] = 0.5 * e_internal[dim + a]  # engineering shear
    return h


def _traction_table(s_internal: np.ndarray, dim: int, elastic: bool) -> np.ndarray:
    """``t[ax] = Sigma e_ax`` (the traction on the face of outward normal +e_ax), ``(dim, m)``."""
    if not elastic:
        return s_internal.reshape(dim, 1)  # flux q.n = q_ax
    sig = np.zeros((dim, dim))
    for i in range(dim):
        sig[i, i] = s_internal[i]
    for a, (i, j) in enumerate(shear_pairs(dim)):
        sig[i, j] = sig[j, i] = s_internal[dim + a]
    return sig  # row ax: Sigma e_ax (symmetric)
