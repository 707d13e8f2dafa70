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
Conjugate gradients preconditioned by smoothed-aggregation algebraic multigrid
(``pyamg``; for elasticity with the rigid-body modes of the free nodes as
near-nullspace), on the free degrees of freedom; the singular static and periodic
problems are solved on their consistent right-hand sides with the mean of the
solution (and, statically, its rigid-body part) projected out.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError, InputError
from ..spectral.green import shear_pairs
from ..spectral.material_field import voigt_scaling
from .voxel_mesh import VoxelMesh

__all__ = ["BOUNDARY_CONDITIONS", "apparent_tensor"]

#: Conditions :func:`apparent_tensor` knows (``"periodic"`` is the FFT solver's).
BOUNDARY_CONDITIONS = ("periodic", "kubc", "subc", "mixed", "periodic_fe")

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


def _solve(a: sp.csr_matrix, b: np.ndarray, nullspace: np.ndarray, tol: float, maxiter: int,
           singular: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """AMG-preconditioned CG for the columns of ``b``; ``singular``: an orthonormal basis of
    the kernel of ``a`` to project out of the right-hand sides and solutions."""
    import pyamg

    ml = pyamg.smoothed_aggregation_solver(a, B=nullspace, symmetry="symmetric", max_coarse=500)
    precond = ml.aspreconditioner(cycle="V")
    x = np.zeros_like(b)
    iters = np.zeros(b.shape[1], dtype=int)
    for j in range(b.shape[1]):
        rhs = b[:, j]
        if singular is not None:
            rhs = rhs - singular @ (singular.T @ rhs)
        if not np.any(rhs):
            continue
        count = [0]
        sol, info = spla.cg(a, rhs, rtol=tol, maxiter=maxiter, M=precond,
                            callback=lambda _, n=count: n.__setitem__(0, n[0] + 1))
        if info != 0:
            raise ConvergenceError(f"AMG-preconditioned CG did not reach rtol={tol:g} in {maxiter} iterations "
                                   f"(load case {j}); raise maxiter or check for disconnected material",
                                   iterations=np.array([count[0]]), tol=tol)
        if singular is not None:
            sol = sol - singular @ (singular.T @ sol)
        x[:, j], iters[j] = sol, count[0]
    return x, iters


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
        u = np.zeros((ne, mesh.n_dofs))
        for a in range(ne):
            grad = _gradient_matrix(macro[a], dim, elastic)  # u = H x on the boundary
            u[a].reshape(-1, m)[fixed_nodes] = coords[fixed_nodes] @ grad.T
        fixed = (fixed_nodes[:, None] * m + np.arange(m)).reshape(-1)
        t1 = time.perf_counter()
        iters = _solve_prescribed(k, u, fixed, coords, elastic, tol, maxiter)
        strain = mesh.element_strain(u, enodes)
        eff = mesh.mean_stress(strain)  # (ne load, ne stress), internal
        effective = (eff / scale[None, :]).T
    elif boundary == "periodic_fe":
        lab = labels.reshape(-1)
        f_e = mesh.volume_e * np.einsum("rc,prs,bs->bpc", mesh.bbar, internal, macro)[:, lab]  # (b, e, nd)
        dofs = (enodes[:, :, None] * m + np.arange(m)).reshape(len(enodes), -1)
        rhs = np.zeros((ne, mesh.n_dofs))
        for a in range(ne):
            np.subtract.at(rhs[a], dofs.ravel(), f_e[a].ravel())
            # a load that cancels to rounding (a homogeneous cell) has the solution 0
            if np.linalg.norm(rhs[a]) <= 1e-12 * np.linalg.norm(f_e[a]):
                rhs[a] = 0.0
        diag = k.diagonal()
        free = np.flatnonzero(diag > 0)
        kff = k[free][:, free]
        trans = np.zeros((free.size, m))
        trans[np.arange(free.size), free % m] = 1.0
        trans /= np.linalg.norm(trans, axis=0, keepdims=True)
        t1 = time.perf_counter()
        sol, iters = _solve(kff, rhs[:, free].T, _rigid_modes(coords, elastic)[free], tol, maxiter, singular=trans)
        u = np.zeros((ne, mesh.n_dofs))
        u[:, free] = sol.T
        strain = mesh.element_strain(u, enodes) + macro[:, None, :]
        effective = (mesh.mean_stress(strain) / scale[None, :]).T
    elif boundary == "mixed":
        eff = np.zeros((ne, ne))
        mean_strain = np.zeros((ne, ne))
        iters = np.zeros(ne, dtype=int)
        t1 = time.perf_counter()
        faces = _face_nodes(mesh)
        for a in range(ne):  # each case prescribes its own components: one system per case
            u = np.zeros((1, mesh.n_dofs))
            grad = _gradient_matrix(macro[a], dim, elastic)
            fixed_parts = []
            for f, comps in enumerate(_mixed_components(a, dim, elastic)):
                nodes = faces[f]
                for c in comps:
                    fixed_parts.append(nodes * m + c)
                    u[0, nodes * m + c] = coords[nodes] @ grad[c]
            fixed = np.unique(np.concatenate(fixed_parts))
            iters[a] = _solve_prescribed(k, u, fixed, coords, elastic, tol, maxiter)[0]
            strain = mesh.element_strain(u, enodes)
            eff[:, a] = mesh.mean_stress(strain)[0]
            mean_strain[:, a] = strain[0].mean(axis=0)
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
        rbm = _rigid_modes(coords, elastic)
        q, _ = np.linalg.qr(rbm)
        t1 = time.perf_counter()
        sol, iters = _solve(k, f.T, rbm, tol, maxiter, singular=q)
        compliance = f @ sol / volume  # S_ab = f_a . u_b / V (internal stress basis e_a * scale)
        compliance = 0.5 * (compliance + compliance.T)
        # unit Mandel stresses were applied, so the matrix is the Mandel compliance
        effective = np.linalg.inv(compliance)
    t2 = time.perf_counter()
    info = {"boundary": boundary, "iterations": iters, "setup_time": t1 - t0, "solve_time": t2 - t1,
            "n_dofs": int(mesh.n_dofs), "tol": tol}
    return effective, info


def _solve_prescribed(k: sp.csr_matrix, u: np.ndarray, fixed: np.ndarray, coords: np.ndarray, elastic: bool,
                      tol: float, maxiter: int) -> np.ndarray:
    """Solve for the free degrees of freedom of ``u`` (``(batch, n_dofs)``, in place) given
    its values on ``fixed``, one AMG hierarchy for the batch; returns the iterations.
    Nodes that only void elements touch (zero diagonal) carry no unknown."""
    diag = k.diagonal()
    free = np.setdiff1d(np.arange(k.shape[0]), fixed)
    free = free[diag[free] > 0]
    rhs = -(k[free][:, fixed] @ u[:, fixed].T)
    # near-nullspace on the free dofs (under mixed conditions a node may keep only some components)
    sol, iters = _solve(k[free][:, free], rhs, _rigid_modes(coords, elastic)[free], tol, maxiter)
    u[:, free] = sol.T
    return iters


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
