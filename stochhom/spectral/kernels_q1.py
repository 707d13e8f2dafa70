r"""Compiled kernels of the Q1 (voxel finite-element) discretization.

Nodes sit at voxel corners; on a periodic grid node ``(i, j, k)`` is the lower corner
of voxel (element) ``(i, j, k)``, so nodal and voxel fields have the same shape. The
corner ``c`` of an element has the bits ``(c >> 2) & 1, (c >> 1) & 1, c & 1`` along
axes 0, 1, 2 (in 2D ``(c >> 1) & 1, c & 1``); nodal unknowns are stored
corner-major, component-minor (column ``c * m + s`` of an element matrix).

* :func:`apply`: :math:`f = K u`, every element adding :math:`K_e u_e` to its
  corners, slabs of elements in parallel in two colours (no write conflicts, a fixed
  summation order); elements of a void phase are skipped.
* :func:`apply_composite`: the same for composite elements, each with its own tensor
  integrated at the Gauss points (:mod:`stochhom.spectral.composite`).
* :func:`rhs3` / :func:`rhs2`: the load :math:`b = -\sum_e F_{p(e)}` of per-phase
  element vectors.
* :func:`element_strain3` / :func:`element_strain2`: the element-average strain
  :math:`\bar B u_e` (or its sum per phase, :func:`phase_strain3` / :func:`phase_strain2`).
* :func:`precondition3` / :func:`precondition2`: :math:`\hat z = K_0(q)^{-1}\hat r`
  frequency by frequency, with the reference stiffness symbol assembled from 1D
  tables (see :mod:`stochhom.spectral.q1`).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see kernels_numba

import numba as nb
import numpy as np

_OPTS = dict(parallel=True, cache=True, nogil=True, fastmath=False)


# The element loop may reassociate its 24-term dot products (SIMD); the order of the
# terms is fixed by the compiled code, not by the threads, so results stay reproducible.
_APPLY_OPTS = dict(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})


def apply(labels, ke, solid, u, out):
    r""":math:`f = K u`: every element adds :math:`K_e u_e` to its corners.

    Slabs of elements along axis 0 are processed in parallel in two colours (even,
    then odd slabs; a last odd slab of an odd-sized axis alone), so that no two threads
    write the same node and every node receives its element contributions in a fixed
    order (bit-reproducible for any number of threads).
    """
    out[...] = 0.0
    kernel = _apply_slabs3 if u.ndim == 5 else _apply_slabs2
    n0 = u.shape[2]
    even = n0 - n0 % 2
    kernel(labels, ke, solid, u, out, 0, even, 2)
    kernel(labels, ke, solid, u, out, 1, even, 2)
    if n0 % 2:
        kernel(labels, ke, solid, u, out, n0 - 1, n0, 1)
    return out


@nb.njit(**_APPLY_OPTS)
def _apply_slabs3(labels, ke, solid, u, out, start, stop, step):  # pragma: no cover - compiled
    nbatch, m, n0, n1, n2 = u.shape
    nd = 8 * m
    n_slabs = (stop - start + step - 1) // step
    for t in nb.prange(n_slabs):
        i = np.int64(start) + np.int64(t) * step  # prange indices are unsigned: keep int64 arithmetic
        fi = i + 1 if i + 1 < n0 else 0
        ue = np.empty(nd)
        fe = np.empty(nd)
        for b in range(nbatch):
            for j in range(n1):
                fj = j + 1 if j + 1 < n1 else 0
                for k in range(n2):
                    p = labels[i, j, k]
                    if not solid[p]:
                        continue
                    fk = k + 1 if k + 1 < n2 else 0
                    for c in range(8):
                        ci = fi if (c >> 2) & 1 else i
                        cj = fj if (c >> 1) & 1 else j
                        ck = fk if c & 1 else k
                        for s in range(m):
                            ue[c * m + s] = u[b, s, ci, cj, ck]
                    for r in range(nd):
                        acc = 0.0
                        for c in range(nd):
                            acc += ke[p, r, c] * ue[c]
                        fe[r] = acc
                    for c in range(8):
                        ci = fi if (c >> 2) & 1 else i
                        cj = fj if (c >> 1) & 1 else j
                        ck = fk if c & 1 else k
                        for s in range(m):
                            out[b, s, ci, cj, ck] += fe[c * m + s]


@nb.njit(**_APPLY_OPTS)
def _apply_slabs2(labels, ke, solid, u, out, start, stop, step):  # pragma: no cover - compiled
    nbatch, m, n0, n1 = u.shape
    nd = 4 * m
    n_slabs = (stop - start + step - 1) // step
    for t in nb.prange(n_slabs):
        i = np.int64(start) + np.int64(t) * step
        fi = i + 1 if i + 1 < n0 else 0
        ue = np.empty(nd)
        fe = np.empty(nd)
        for b in range(nbatch):
            for j in range(n1):
                p = labels[i, j]
                if not solid[p]:
                    continue
                fj = j + 1 if j + 1 < n1 else 0
                for c in range(4):
                    ci = fi if (c >> 1) & 1 else i
                    cj = fj if c & 1 else j
                    for s in range(m):
                        ue[c * m + s] = u[b, s, ci, cj]
                for r in range(nd):
                    acc = 0.0
                    for c in range(nd):
                        acc += ke[p, r, c] * ue[c]
                    fe[r] = acc
                for c in range(4):
                    ci = fi if (c >> 1) & 1 else i
                    cj = fj if c & 1 else j
                    for s in range(m):
                        out[b, s, ci, cj] += fe[c * m + s]


def apply_composite(nodes, starts, cmats, bg, weight, u, out):
    r"""Add :math:`K_e u_e` of the composite elements to ``out`` (flat views, see :func:`apply`).

    Each element has its own tensor, so :math:`K_e u_e = w\sum_g B_g^{\mathsf T}
    \mathbb L_e B_g u_e` is evaluated at the Gauss points (``bg``: ``(n_gauss, ne,
    n_dof)``; ``weight``: element volume over the number of Gauss points). ``nodes``
    holds each element's corner nodes (flat indices), elements sorted by slab with
    slab ``i`` at ``starts[i]:starts[i + 1]``; slabs run in the two colours of
    :func:`apply`.
    """
    n0 = starts.size - 1
    even = n0 - n0 % 2
    _apply_composite(nodes, starts, cmats, bg, weight, u, out, 0, even, 2)
    _apply_composite(nodes, starts, cmats, bg, weight, u, out, 1, even, 2)
    if n0 % 2:
        _apply_composite(nodes, starts, cmats, bg, weight, u, out, n0 - 1, n0, 1)
    return out


@nb.njit(**_APPLY_OPTS)
def _apply_composite(nodes, starts, cmats, bg, weight, u, out, start, stop, step):  # pragma: no cover - compiled
    nbatch, m, _ = u.shape
    ng, ne, nd = bg.shape
    nc = nodes.shape[1]
    n_slabs = (stop - start + step - 1) // step
    for t in nb.prange(n_slabs):
        i = np.int64(start) + np.int64(t) * step
        ue = np.empty(nd)
        fe = np.empty(nd)
        eps = np.empty(ne)
        sig = np.empty(ne)
        for b in range(nbatch):
            for v in range(starts[i], starts[i + 1]):
                for c in range(nc):
                    for s in range(m):
                        ue[c * m + s] = u[b, s, nodes[v, c]]
                fe[:] = 0.0
                for g in range(ng):
                    for r in range(ne):
                        acc = 0.0
                        for c in range(nd):
                            acc += bg[g, r, c] * ue[c]
                        eps[r] = acc
                    for r in range(ne):
                        acc = 0.0
                        for q in range(ne):
                            acc += cmats[v, r, q] * eps[q]
                        sig[r] = acc
                    for c in range(nd):
                        acc = 0.0
                        for r in range(ne):
                            acc += bg[g, r, c] * sig[r]
                        fe[c] += acc
                for c in range(nc):
                    for s in range(m):
                        out[b, s, nodes[v, c]] += weight * fe[c * m + s]


@nb.njit(**_OPTS)
def rhs3(labels, f, out):  # pragma: no cover - compiled
    nbatch, m, n0, n1, n2 = out.shape
    for i_ in nb.prange(n0):
        i = np.int64(i_)  # prange indices are unsigned: mixed with int64 they would become floats
        for b in range(nbatch):
            for j in range(n1):
                for k in range(n2):
                    for r in range(m):
                        t = 0.0
                        for e in range(8):
                            ei = i - ((e >> 2) & 1)
                            ej = j - ((e >> 1) & 1)
                            ek = k - (e & 1)
                            if ei < 0:
                                ei += n0
                            if ej < 0:
                                ej += n1
                            if ek < 0:
                                ek += n2
                            t += f[b, labels[ei, ej, ek], e * m + r]
                        out[b, r, i, j, k] = -t


@nb.njit(**_OPTS)
def rhs2(labels, f, out):  # pragma: no cover - compiled
    nbatch, m, n0, n1 = out.shape
    for i_ in nb.prange(n0):
        i = np.int64(i_)  # prange indices are unsigned: mixed with int64 they would become floats
        for b in range(nbatch):
            for j in range(n1):
                for r in range(m):
                    t = 0.0
                    for e in range(4):
                        ei = i - ((e >> 1) & 1)
                        ej = j - (e & 1)
                        if ei < 0:
                            ei += n0
                        if ej < 0:
                            ej += n1
                        t += f[b, labels[ei, ej], e * m + r]
                    out[b, r, i, j] = -t


@nb.njit(**_OPTS)
def element_strain3(bbar, u, out):  # pragma: no cover - compiled
    nbatch, m, n0, n1, n2 = u.shape
    ne, nd = bbar.shape
    for i_ in nb.prange(n0):
        i = np.int64(i_)  # prange indices are unsigned: mixed with int64 they would become floats
        ue = np.empty(nd)
        fi = i + 1 if i + 1 < n0 else 0
        for b in range(nbatch):
            for j in range(n1):
                fj = j + 1 if j + 1 < n1 else 0
                for k in range(n2):
                    fk = k + 1 if k + 1 < n2 else 0
                    for c in range(8):
                        ci = fi if (c >> 2) & 1 else i
                        cj = fj if (c >> 1) & 1 else j
                        ck = fk if c & 1 else k
                        for s in range(m):
                            ue[c * m + s] = u[b, s, ci, cj, ck]
                    for r in range(ne):
                        t = 0.0
                        for c in range(nd):
                            t += bbar[r, c] * ue[c]
                        out[b, r, i, j, k] = t


@nb.njit(**_OPTS)
def element_strain2(bbar, u, out):  # pragma: no cover - compiled
    nbatch, m, n0, n1 = u.shape
    ne, nd = bbar.shape
    for i_ in nb.prange(n0):
        i = np.int64(i_)  # prange indices are unsigned: mixed with int64 they would become floats
        ue = np.empty(nd)
        fi = i + 1 if i + 1 < n0 else 0
        for b in range(nbatch):
            for j in range(n1):
                fj = j + 1 if j + 1 < n1 else 0
                for c in range(4):
                    ci = fi if (c >> 1) & 1 else i
                    cj = fj if c & 1 else j
                    for s in range(m):
                        ue[c * m + s] = u[b, s, ci, cj]
                for r in range(ne):
                    t = 0.0
                    for c in range(nd):
                        t += bbar[r, c] * ue[c]
                    out[b, r, i, j] = t


@nb.njit(**_OPTS)
def phase_strain3(labels, bbar, u, n_phases, partial):  # pragma: no cover - compiled
    """``partial[i, b, p, :]``: the sum over the elements of phase ``p`` in slab ``i``."""
    nbatch, m, n0, n1, n2 = u.shape
    ne, nd = bbar.shape
    for i_ in nb.prange(n0):
        i = np.int64(i_)  # prange indices are unsigned: mixed with int64 they would become floats
        ue = np.empty(nd)
        fi = i + 1 if i + 1 < n0 else 0
        for b in range(nbatch):
            for p in range(n_phases):
                for r in range(ne):
                    partial[i, b, p, r] = 0.0
            for j in range(n1):
                fj = j + 1 if j + 1 < n1 else 0
                for k in range(n2):
                    fk = k + 1 if k + 1 < n2 else 0
                    p = labels[i, j, k]
                    for c in range(8):
                        ci = fi if (c >> 2) & 1 else i
                        cj = fj if (c >> 1) & 1 else j
                        ck = fk if c & 1 else k
                        for s in range(m):
                            ue[c * m + s] = u[b, s, ci, cj, ck]
                    for r in range(ne):
                        t = 0.0
                        for c in range(nd):
                            t += bbar[r, c] * ue[c]
                        partial[i, b, p, r] += t


@nb.njit(**_OPTS)
def phase_strain2(labels, bbar, u, n_phases, partial):  # pragma: no cover - compiled
    nbatch, m, n0, n1 = u.shape
    ne, nd = bbar.shape
    for i_ in nb.prange(n0):
        i = np.int64(i_)  # prange indices are unsigned: mixed with int64 they would become floats
        ue = np.empty(nd)
        fi = i + 1 if i + 1 < n0 else 0
        for b in range(nbatch):
            for p in range(n_phases):
                for r in range(ne):
                    partial[i, b, p, r] = 0.0
            for j in range(n1):
                fj = j + 1 if j + 1 < n1 else 0
                p = labels[i, j]
                for c in range(4):
                    ci = fi if (c >> 1) & 1 else i
                    cj = fj if c & 1 else j
                    for s in range(m):
                        ue[c * m + s] = u[b, s, ci, cj]
                for r in range(ne):
                    t = 0.0
                    for c in range(nd):
                        t += bbar[r, c] * ue[c]
                    partial[i, b, p, r] += t


@nb.njit(inline="always")
def _solve_sym3(a00, a11, a22, a12, a02, a01, r0, r1, r2):
    """Solve a symmetric 3x3 system (Cramer; the matrices are well conditioned SPD)."""
    c00 = a11 * a22 - a12 * a12
    c01 = a02 * a12 - a01 * a22
    c02 = a01 * a12 - a02 * a11
    c11 = a00 * a22 - a02 * a02
    c12 = a01 * a02 - a00 * a12
    c22 = a00 * a11 - a01 * a01
    det = a00 * c00 + a01 * c01 + a02 * c02
    inv = 1.0 / det
    return ((c00 * r0 + c01 * r1 + c02 * r2) * inv, (c01 * r0 + c11 * r1 + c12 * r2) * inv,
            (c02 * r0 + c12 * r1 + c22 * r2) * inv)


@nb.njit(**_OPTS)
def precondition3(r, s2, sn, a, elastic, lam_mu, mu):  # pragma: no cover - compiled
    r"""In place :math:`\hat r \leftarrow K_0^{-1}\hat r` (the mean is set to zero).

    ``s2[j]``, ``sn[j]``, ``a[j]``: per-axis tables (padded to the longest axis) of
    :math:`\tfrac{4}{h^2}\sin^2\tfrac q2`, :math:`\tfrac1h\sin q` and
    :math:`\tfrac{2+\cos q}{3}`. ``lam_mu`` = :math:`V_e(\lambda_0+\mu_0)`, ``mu`` =
    :math:`V_e\mu_0` (or :math:`V_e k_0`), with :math:`V_e` the voxel volume.
    """
    nbatch, m, n0, n1, nh = r.shape
    for i_ in nb.prange(n0):
        i = np.int64(i_)  # prange indices are unsigned: mixed with int64 they would become floats
        for j in range(n1):
            for k in range(nh):
                if i == 0 and j == 0 and k == 0:
                    for b in range(nbatch):
                        for s in range(m):
                            r[b, s, 0, 0, 0] = 0.0
                    continue
                g00 = s2[0, i] * a[1, j] * a[2, k]
                g11 = s2[1, j] * a[0, i] * a[2, k]
                g22 = s2[2, k] * a[0, i] * a[1, j]
                tr = g00 + g11 + g22
                if not elastic:
                    inv = 1.0 / (mu * tr)
                    for b in range(nbatch):
                        r[b, 0, i, j, k] *= inv
                    continue
                g12 = sn[1, j] * sn[2, k] * a[0, i]
                g02 = sn[0, i] * sn[2, k] * a[1, j]
                g01 = sn[0, i] * sn[1, j] * a[2, k]
                d = mu * tr
                for b in range(nbatch):
                    z0, z1, z2 = _solve_sym3(d + lam_mu * g00, d + lam_mu * g11, d + lam_mu * g22, lam_mu * g12,
                                             lam_mu * g02, lam_mu * g01, r[b, 0, i, j, k], r[b, 1, i, j, k],
                                             r[b, 2, i, j, k])
                    r[b, 0, i, j, k] = z0
                    r[b, 1, i, j, k] = z1
                    r[b, 2, i, j, k] = z2


@nb.njit(**_OPTS)
def precondition2(r, s2, sn, a, elastic, lam_mu, mu):  # pragma: no cover - compiled
    nbatch, m, n0, nh = r.shape
    for i_ in nb.prange(n0):
        i = np.int64(i_)  # prange indices are unsigned: mixed with int64 they would become floats
        for k in range(nh):
            if i == 0 and k == 0:
                for b in range(nbatch):
                    for s in range(m):
                        r[b, s, 0, 0] = 0.0
                continue
            g00 = s2[0, i] * a[1, k]
            g11 = s2[1, k] * a[0, i]
            tr = g00 + g11
            if not elastic:
                inv = 1.0 / (mu * tr)
                for b in range(nbatch):
                    r[b, 0, i, k] *= inv
                continue
            g01 = sn[0, i] * sn[1, k]
            d = mu * tr
            a00 = d + lam_mu * g00
            a11 = d + lam_mu * g11
            a01 = lam_mu * g01
            inv = 1.0 / (a00 * a11 - a01 * a01)
            for b in range(nbatch):
                r0 = r[b, 0, i, k]
                r1 = r[b, 1, i, k]
                r[b, 0, i, k] = (a11 * r0 - a01 * r1) * inv
                r[b, 1, i, k] = (a00 * r1 - a01 * r0) * inv
