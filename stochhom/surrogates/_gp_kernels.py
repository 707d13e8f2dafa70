r"""Compiled GP kernels (numba): cross-kernel blocks and the fused posterior mean.

Prediction at many points evaluates :math:`\kappa(x_i, x_j)` for every pair of
prediction and training points (1e5 x 2000 = 2e8 values), so the cost of one kernel
value decides the cost of a prediction. Inputs are pre-scaled so that the kernel is a
function of :math:`u = \lVert x - x'\rVert` (see ``gpr._U_SCALE``): ``rbf``
:math:`e^{-u^2}`, ``matern12`` :math:`e^{-u}`, ``matern32`` :math:`(1+u)e^{-u}`,
``matern52`` :math:`(1+u+u^2/3)e^{-u}`.

Each row is computed in passes over a buffer of the training size, in the layout the
compiler vectorizes (training inputs stored by coordinate, no branch in the inner
loops): the squared distance from exact coordinate differences (a duplicated input is
at distance 0, which the :math:`|a|^2 + |b|^2 - 2ab` expansion misses by ~1e-8), its
square root, and :math:`e^{-z}` by :func:`_exp_neg_row`. numba calls the C library's
scalar ``exp`` (about 4 ns a value on the development machine, two thirds of the cost
of a kernel value); :func:`_exp_neg_row` is the textbook vector algorithm instead:
:math:`e^{-z} = 2^{k} 2^{f}` with :math:`k = \mathrm{round}(-z\log_2 e)`,
:math:`f \in [-\tfrac12, \tfrac12]`, :math:`2^f = e^{f\ln 2}` by its Taylor polynomial of
degree 13 (remainder below :math:`(\tfrac12\ln 2)^{14}/14! < 4\cdot10^{-18}`), and
:math:`2^k` assembled in the exponent bits. The tests check it against ``numpy.exp``
to a few units in the last place, and the kernels against gpytorch's.

``fused_mean`` multiplies each row by :math:`\alpha` as it goes, so the cross-kernel
matrix is never stored (1e5 x 2000 values would be 1.6 GB).
"""

from __future__ import annotations

import numba
import numpy as np

KERNEL_IDS = {"rbf": 0, "matern12": 1, "matern32": 2, "matern52": 3}

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts (fdlibm): k * _LN2_HI is exact for |k| < 2**11
_LN2_LO = 1.90821492927058770002e-10
_MAGIC = 6755399441055744.0  # 1.5 * 2**52: (x + _MAGIC) - _MAGIC rounds |x| < 2**51 to an integer
_Z_MAX = 690.0  # e^-z for larger z is taken at 690 (~1e-300): zero in any kernel sum, and 2^k stays normal
_CHUNKS = 64  # rows are shared among the threads in this many chunks (buffers allocated once per chunk)
_OPTS = dict(parallel=True, cache=True, nogil=True, fastmath=False)


@numba.njit(cache=True, nogil=True, fastmath=False)
def _exp_neg_row(z: np.ndarray, kf: np.ndarray, kb: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out[j] = exp(-z[j])`` for ``z >= 0`` (buffers ``kf``, ``kb`` of the same length)."""
    m = z.shape[0]
    for j in range(m):
        x = -z[j] if z[j] < _Z_MAX else -_Z_MAX
        k = (x * _LOG2E + _MAGIC) - _MAGIC  # round(x / ln 2)
        f = (x - k * _LN2_HI) - k * _LN2_LO  # Cody-Waite: x - k ln2, |f| <= ln2 / 2
        p = 1.0 / 6227020800.0
        p = p * f + 1.0 / 479001600.0
        p = p * f + 1.0 / 39916800.0
        p = p * f + 1.0 / 3628800.0
        p = p * f + 1.0 / 362880.0
        p = p * f + 1.0 / 40320.0
        p = p * f + 1.0 / 5040.0
        p = p * f + 1.0 / 720.0
        p = p * f + 1.0 / 120.0
        p = p * f + 1.0 / 24.0
        p = p * f + 1.0 / 6.0
        p = p * f + 0.5
        p = p * f + 1.0
        out[j] = p * f + 1.0
        kf[j] = k
    for j in range(m):
        kb[j] = (np.int64(kf[j]) + 1023) << 52  # 2^k in the exponent bits
    scale = kb.view(np.float64)
    for j in range(m):
        out[j] *= scale[j]


@numba.njit(cache=True, nogil=True, fastmath=False)
def _kernel_row(kind: int, xi: np.ndarray, xt_by_coord: np.ndarray, u: np.ndarray, kf: np.ndarray,
                kb: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """Kernel values between one point ``xi`` and the training points (``(p, n)`` layout)."""
    p, n = xt_by_coord.shape
    for j in range(n):
        u[j] = 0.0
    for k in range(p):
        c = xi[k]
        for j in range(n):
            d = c - xt_by_coord[k, j]
            u[j] += d * d
    if kind == 0:  # e^{-u^2}
        _exp_neg_row(u, kf, kb, out)
        return
    for j in range(n):
        u[j] = np.sqrt(u[j])
    _exp_neg_row(u, kf, kb, out)
    if kind == 2:
        for j in range(n):
            out[j] *= 1.0 + u[j]
    elif kind == 3:
        for j in range(n):
            out[j] *= 1.0 + u[j] * (1.0 + u[j] * (1.0 / 3.0))


@numba.njit(cache=True, nogil=True, fastmath=False)
def _dot(a: np.ndarray, b: np.ndarray) -> float:  # pragma: no cover
    """:math:`a^T b` with eight partial sums (vectorized; the order is fixed, so the result
    does not depend on the number of threads)."""
    n = a.shape[0]
    acc = np.zeros(8)
    n8 = n - n % 8
    for j in range(0, n8, 8):
        for q in range(8):
            acc[q] += a[j + q] * b[j + q]
    tail = 0.0
    for j in range(n8, n):
        tail += a[j] * b[j]
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail


@numba.njit(cache=True, nogil=True, fastmath=False)
def kernel_rows(kind: int, xs: np.ndarray, xt_by_coord: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    r"""``out[i, j]`` :math:`= \kappa(x_i, x_j)` for the rows ``xs`` ``(m, p)`` and the training
    points ``xt_by_coord`` ``(p, n)`` (pre-scaled inputs); ``out`` is ``(m, n)``, C order.
    On the calling thread (which it releases from the GIL)."""
    n = xt_by_coord.shape[1]
    u = np.empty(n)
    kf = np.empty(n)
    kb = np.empty(n, dtype=np.int64)
    for i in range(xs.shape[0]):
        _kernel_row(kind, xs[i], xt_by_coord, u, kf, kb, out[i])


@numba.njit(**_OPTS)
def kernel_block(kind: int, xs: np.ndarray, xt_by_coord: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """:func:`kernel_rows` on numba's threads."""
    m = xs.shape[0]
    chunks = min(m, _CHUNKS)
    for c in numba.prange(chunks):
        lo = c * m // chunks
        hi = (c + 1) * m // chunks
        kernel_rows(kind, xs[lo:hi], xt_by_coord, out[lo:hi])


@numba.njit(**_OPTS)
def fused_mean(kind: int, xs: np.ndarray, xt_by_coord: np.ndarray, alpha: np.ndarray) -> np.ndarray:  # pragma: no cover
    r""":math:`\mu_i = \sum_j \kappa(x_i, x_j)\,\alpha_j` without storing the kernel matrix."""
    m = xs.shape[0]
    n = xt_by_coord.shape[1]
    res = np.empty(m)
    chunks = min(m, _CHUNKS)
    for c in numba.prange(chunks):
        u = np.empty(n)
        kf = np.empty(n)
        kb = np.empty(n, dtype=np.int64)
        row = np.empty(n)
        for i in range(c * m // chunks, (c + 1) * m // chunks):
            _kernel_row(kind, xs[i], xt_by_coord, u, kf, kb, row)
            res[i] = _dot(row, alpha)
    return res


@numba.njit(cache=True, nogil=True, fastmath=False)
def exp_neg(z: np.ndarray) -> np.ndarray:  # pragma: no cover
    """:math:`e^{-z}` of a 1-D array ``z >= 0`` by the vector algorithm (for the tests)."""
    n = z.shape[0]
    out = np.empty(n)
    _exp_neg_row(z, np.empty(n), np.empty(n, dtype=np.int64), out)
    return out


@numba.njit(cache=True, nogil=True, fastmath=False)
def residual_norms(kappa: np.ndarray, c: np.ndarray, fit: np.ndarray) -> np.ndarray:  # pragma: no cover
    r""":math:`\sum_j (c_j\kappa_{ij} - f_{ij})^2` for every row ``i``, in one pass (no
    temporary the size of ``kappa``), on the calling thread (released from the GIL)."""
    m, n = kappa.shape
    out = np.empty(m)
    d = np.empty(n)
    for i in range(m):
        for j in range(n):
            d[j] = c[j] * kappa[i, j] - fit[i, j]
        out[i] = _dot(d, d)
    return out
