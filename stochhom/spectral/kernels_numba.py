r"""Fused, parallel kernels of the spectral solver (numba backend).

Each kernel makes one pass over the frequencies (or voxels) and does the work that
the NumPy backend (:mod:`stochhom.spectral.kernels` plus
:mod:`stochhom.spectral.green`) spreads over a dozen array passes: the arithmetic
is the same, only the memory traffic drops. Spatial axes are flattened, so one
compiled kernel serves 2D and 3D grids; the component structure comes from small
index tables:

* ``pairs``: (n_shear, 2) axis pairs of the shear components (Voigt order);
* ``comp``: (d, d) Voigt component of :math:`\sigma_{ij}`.

Conventions (see :mod:`stochhom.spectral.green`): spectra hold
:math:`\hat w` (nodal, ``m`` components) or internal Voigt strains/stresses
(``ne`` components); :math:`\hat e = B\hat w`, :math:`\hat g = B^H\hat\sigma`, and
the preconditioner writes :math:`z = -K_0^{-1}g`. Reductions use the Hermitian
weights of the half spectrum (1 on the last-axis zero and Nyquist columns).
"""

from __future__ import annotations

import os

# numba's OpenMP threading layer lets idle workers spin after each parallel region,
# which steals the cores from the FFT threads that run next (measured: 20 % slower
# iterations on 2 cores). Unless the user chose otherwise, make idle OpenMP threads
# sleep. This module is imported only when the solver runs with the numba backend,
# and the setting only affects an OpenMP runtime that starts after it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba as nb
import numpy as np

__all__ = [
    "gradient",
    "force_dot",
    "precondition",
    "cg_update",
    "cg_direction",
    "hdot",
    "stress_isotropic",
    "stress_scalar",
    "stress_general",
]

_CHUNK = 2048  # frequencies (or voxels) per task: each load case streams contiguous memory
_OPTS = dict(parallel=True, cache=True, nogil=True, fastmath=False)


@nb.njit(inline="always")
def _gradient_chunk(eta, w, out, b, lo, hi, elastic, pairs):
    """:math:`\\hat e = B\\hat w` for load case ``b`` and frequencies ``lo:hi``."""
    d = eta.shape[0]
    if not elastic:
        for j in range(d):
            for q in range(lo, hi):
                out[b, j, q] = eta[j, q] * w[b, 0, q]
    else:
        for i in range(d):
            for q in range(lo, hi):
                out[b, i, q] = eta[i, q] * w[b, i, q]
        for a in range(pairs.shape[0]):
            i = pairs[a, 0]
            j = pairs[a, 1]
            for q in range(lo, hi):
                out[b, d + a, q] = eta[j, q] * w[b, i, q] + eta[i, q] * w[b, j, q]


@nb.njit(**_OPTS)
def gradient(eta, w, out, elastic, pairs):  # pragma: no cover - compiled
    """:math:`\\hat e = B\\hat w` (``w``: (B, m, N); ``out``: (B, ne, N))."""
    nb_, _, n = w.shape
    nchunk = (n + _CHUNK - 1) // _CHUNK
    for c in nb.prange(nchunk):
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        for b in range(nb_):
            _gradient_chunk(eta, w, out, b, lo, hi, elastic, pairs)


@nb.njit(inline="always")
def _force(eta, s, b, q, i, elastic, comp):
    d = eta.shape[0]
    acc = 0.0 * s[b, 0, q]
    if not elastic:
        for j in range(d):
            acc += eta[j, q] * s[b, j, q]
    else:
        for j in range(d):
            acc += eta[j, q] * s[b, comp[i, j], q]
    return acc


@nb.njit(**_OPTS)
def force_dot(eta, s, out, p, elastic, comp, nh, even):  # pragma: no cover - compiled
    """:math:`\\hat g = B^H\\hat\\sigma` into ``out``; return :math:`\\sum_q w_q\\Re(\\bar p\\,g)` per batch."""
    nb_, m, n = out.shape
    rows = n // nh
    part = np.zeros((rows, nb_))
    for r in nb.prange(rows):
        for b in range(nb_):
            acc = 0.0
            for k in range(nh):
                q = r * nh + k
                loc = 0.0
                for i in range(m):
                    g = _force(eta, s, b, q, i, elastic, comp)
                    out[b, i, q] = g
                    loc += p[b, i, q].real * g.real + p[b, i, q].imag * g.imag
                acc += loc if (k == 0 or (even and k == nh - 1)) else 2.0 * loc
            part[r, b] = acc
    return part.sum(axis=0)


@nb.njit(inline="always")
def _precond_point(eta, inv, g, z, b, q, elastic, c0, scale):
    """z = -K0^{-1} g at one frequency; return (a, b) contributions (unweighted)."""
    m = g.shape[1]
    iv = inv[q]
    a = 0.0
    for i in range(m):
        gi = g[b, i, q]
        a += (gi.real * gi.real + gi.imag * gi.imag) * iv
    if not elastic:
        z[b, 0, q] = g[b, 0, q] * (iv * scale)
        return a, 0.0
    t = 0.0 * g[b, 0, q]
    for j in range(m):
        t += eta[j, q] * g[b, j, q]
    t = t * iv
    bb = t.real * t.real + t.imag * t.imag
    u = t * (iv * c0)
    for j in range(m):
        z[b, j, q] = (g[b, j, q] * iv - u * eta[j, q]) * scale
    return a, bb


@nb.njit(**_OPTS)
def precondition(eta, inv, g, z, elastic, c0, scale, nh, even):  # pragma: no cover - compiled
    """Write :math:`z = -K_0^{-1}g`; return the weighted sums ``(a, b)`` per batch, shape (B, 2)."""
    nb_, _, n = g.shape
    rows = n // nh
    part = np.zeros((rows, nb_, 2))
    for r in nb.prange(rows):
        for b in range(nb_):
            sa = 0.0
            sb = 0.0
            for k in range(nh):
                q = r * nh + k
                a, bb = _precond_point(eta, inv, g, z, b, q, elastic, c0, scale)
                if k == 0 or (even and k == nh - 1):
                    sa += a
                    sb += bb
                else:
                    sa += 2.0 * a
                    sb += 2.0 * bb
            part[r, b, 0] = sa
            part[r, b, 1] = sb
    return part.sum(axis=0)


@nb.njit(**_OPTS)
def cg_update(eta, inv, x, g, p, kz, alpha, elastic, c0, scale, nh, even):  # pragma: no cover - compiled
    """Fused :math:`x \\mathrel{+}= \\alpha p`, :math:`g \\mathrel{+}= \\alpha Kp` (Kp in ``kz``);
    then ``kz`` = :math:`-K_0^{-1}g`."""
    nb_, m, n = g.shape
    rows = n // nh
    part = np.zeros((rows, nb_, 2))
    for r in nb.prange(rows):
        for b in range(nb_):
            al = alpha[b]
            sa = 0.0
            sb = 0.0
            for k in range(nh):
                q = r * nh + k
                for i in range(m):
                    x[b, i, q] += al * p[b, i, q]
                    g[b, i, q] += al * kz[b, i, q]
                a, bb = _precond_point(eta, inv, g, kz, b, q, elastic, c0, scale)
                if k == 0 or (even and k == nh - 1):
                    sa += a
                    sb += bb
                else:
                    sa += 2.0 * a
                    sb += 2.0 * bb
            part[r, b, 0] = sa
            part[r, b, 1] = sb
    return part.sum(axis=0)


@nb.njit(**_OPTS)
def cg_direction(eta, p, z, beta, e_hat, elastic, pairs):  # pragma: no cover - compiled
    """Fused :math:`p \\leftarrow z + \\beta p` and :math:`\\hat e = Bp`."""
    nb_, m, n = p.shape
    nchunk = (n + _CHUNK - 1) // _CHUNK
    for c in nb.prange(nchunk):
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        for b in range(nb_):
            be = beta[b]
            for i in range(m):
                for q in range(lo, hi):
                    p[b, i, q] = z[b, i, q] + be * p[b, i, q]
            _gradient_chunk(eta, p, e_hat, b, lo, hi, elastic, pairs)


@nb.njit(**_OPTS)
def hdot(a, b_, nh, even):  # pragma: no cover - compiled
    """Weighted :math:`\\sum_q w_q\\Re(\\bar a\\,b)` per batch entry."""
    nb_, m, n = a.shape
    rows = n // nh
    part = np.zeros((rows, nb_))
    for r in nb.prange(rows):
        for b in range(nb_):
            acc = 0.0
            for k in range(nh):
                q = r * nh + k
                loc = 0.0
                for i in range(m):
                    loc += a[b, i, q].real * b_[b, i, q].real + a[b, i, q].imag * b_[b, i, q].imag
                acc += loc if (k == 0 or (even and k == nh - 1)) else 2.0 * loc
            part[r, b] = acc
    return part.sum(axis=0)


@nb.njit(**_OPTS)
def stress_isotropic(labels, lam, mu2, e, d, shear_factor):  # pragma: no cover - compiled
    r"""In place :math:`\sigma = \lambda\,\mathrm{tr}\,\varepsilon\,I + 2\mu\varepsilon` (internal Voigt)."""
    nb_, ne, n = e.shape
    nchunk = (n + _CHUNK - 1) // _CHUNK
    for c in nb.prange(nchunk):
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        for b in range(nb_):
            for v in range(lo, hi):
                p = labels[v]
                la = lam[p]
                m2 = mu2[p]
                tr = 0.0
                for i in range(d):
                    tr += e[b, i, v]
                tr *= la
                for i in range(d):
                    e[b, i, v] = m2 * e[b, i, v] + tr
                sm = shear_factor * m2
                for a in range(d, ne):
                    e[b, a, v] = sm * e[b, a, v]


@nb.njit(**_OPTS)
def stress_scalar(labels, c, e):  # pragma: no cover - compiled
    """In place :math:`\\sigma = c(x)\\,e` (isotropic conductivity)."""
    nb_, ne, n = e.shape
    nchunk = (n + _CHUNK - 1) // _CHUNK
    for ch in nb.prange(nchunk):
        lo = ch * _CHUNK
        hi = min(n, lo + _CHUNK)
        for b in range(nb_):
            for i in range(ne):
                for v in range(lo, hi):
                    e[b, i, v] *= c[labels[v]]


@nb.njit(**_OPTS)
def stress_general(labels, mats, e):  # pragma: no cover - compiled
    r"""In place :math:`\sigma(x) = \mathbb L_{p(x)}\varepsilon(x)` with one matrix per phase."""
    nb_, ne, n = e.shape
    nchunk = (n + _CHUNK - 1) // _CHUNK
    for ch in nb.prange(nchunk):
        lo = ch * _CHUNK
        hi = min(n, lo + _CHUNK)
        tmp = np.empty(ne, dtype=e.dtype)
        for b in range(nb_):
            for v in range(lo, hi):
                mat = mats[labels[v]]
                for a in range(ne):
                    tmp[a] = e[b, a, v]
                for a in range(ne):
                    acc = 0.0
                    for k in range(ne):
                        acc += mat[a, k] * tmp[k]
                    e[b, a, v] = acc
