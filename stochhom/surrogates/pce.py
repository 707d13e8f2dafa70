r"""Polynomial chaos expansion (PCE) by regression, with analytic moments, Sobol indices
and leave-one-out error.

Concept
-------
A square-integrable model output :math:`Y = f(\theta)` of independent germ variables
:math:`\xi = T(\theta)` (see :mod:`stochhom.surrogates.distributions`) is expanded on
the multivariate orthonormal polynomials
:math:`\Psi_\alpha(\xi) = \prod_i \psi^{(i)}_{\alpha_i}(\xi_i)`,

.. math:: f(\theta) \approx \sum_{\alpha \in \mathcal A} c_\alpha \Psi_\alpha(\xi),
    \qquad \mathbb E[\Psi_\alpha \Psi_\beta] = \delta_{\alpha\beta}.

**Truncation** (hyperbolic, Blatman & Sudret 2011): :math:`\mathcal A = \{\alpha :
\|\alpha\|_q = (\sum_i \alpha_i^q)^{1/q} \le D\}`; ``q_norm = 1`` is the total-degree set
of :math:`P = \binom{D+p}{p}` terms, ``q_norm < 1`` drops high-order interactions.

**Regression**: with the design matrix :math:`\Psi_{jk} = \Psi_{\alpha_k}(\xi^{(j)})`,

* ``"ols"``: least squares, :math:`c = (\Psi^T\Psi)^{-1}\Psi^T y`; needs :math:`n > P`;
* ``"lars"`` / ``"omp"`` (hybrid sparse regression, Blatman & Sudret 2011): least-angle
  regression (LAR, Efron et al. 2004) or orthogonal matching pursuit orders the terms;
  each prefix :math:`\mathcal A_k` (the constant and the first :math:`k` terms) of that
  order is refitted by OLS and the prefix with the smallest corrected LOO error
  :math:`\varepsilon^*_{LOO}(\mathcal A_k)` (below) is kept (ties at round-off go to the
  smaller support). Works with :math:`n < P`.

**Leave-one-out error** without refitting (hat matrix :math:`H = \Psi(\Psi^T\Psi)^{-1}\Psi^T`):

.. math:: e_i = \frac{y_i - \hat f(\theta_i)}{1 - h_{ii}}, \qquad
    \varepsilon_{LOO} = \frac{\tfrac1n \sum_i e_i^2}{\widehat{\operatorname{Var}}\,y}.

For sparse fits it is the LOO error of the OLS refit on the selected support, which
does not account for the selection and is therefore slightly optimistic. Model
selection (the sparse support, and ``degree="auto"``) uses the corrected error
(Chapelle et al. 2002; Blatman & Sudret 2011, eq. 39, with :math:`C_{emp} = \Psi_{\mathcal A}^T
\Psi_{\mathcal A}/n` for the columns :math:`\Psi_{\mathcal A}` of a support :math:`\mathcal A`)

.. math:: \varepsilon^*_{LOO}(\mathcal A) = T(\mathcal A)\,\varepsilon_{LOO}(\mathcal A), \qquad
    T(\mathcal A) = \frac{n}{n-|\mathcal A|}
    \Bigl(1 + \operatorname{tr}\bigl((\Psi_{\mathcal A}^T\Psi_{\mathcal A})^{-1}\bigr)\Bigr),

which penalizes large bases: the plain LOO error keeps drifting down as noise is fitted.

**Early stopping of the sparse path.** The greedy path and the OLS refits of its prefixes
advance together: each new term is orthogonalized against the support (Gram–Schmidt,
:math:`\Psi_{\mathcal A_k} = Q_k R_k`), which updates the leverages
:math:`h \mathrel{+}= q^2`, the residual :math:`r \mathrel{-}= q\,(q\cdot r)` and
:math:`\operatorname{tr}((\Psi^T\Psi)^{-1}) = \|R_k^{-1}\|_F^2` in :math:`O(nk)`, and the
correlations of all candidates with the new direction, :math:`\Psi^T q`, advance LAR
(equiangular direction :math:`u = Q_k t/\|t\|` with :math:`R_k^T t = s`, the signs of the
active correlations) or OMP by one step. The path stops once
:math:`\varepsilon^*_{LOO}` has not improved for a patience window of
:math:`\max(20, k^*)` steps, :math:`k^* = \arg\min_{j \le k} \varepsilon^*_{LOO}(\mathcal A_j)`
the best prefix so far, at an exact fit, or after :math:`\min(P-1, n-2)` steps. A sparse
fit thus costs about :math:`2k^*` products with the :math:`n \times P` design matrix instead
of the :math:`\min(P-1, n-2)` of the whole path; it selects the same support as the
whole path followed by the same patience rule.

**Degree adaptivity** (``degree="auto"``, Blatman & Sudret 2011): :math:`D = 1, 2, \ldots,`
``max_degree`` is fitted in turn and the degree with the smallest
:math:`\varepsilon^*_{LOO}` (mean over outputs) is kept. The search stops when that error
has not improved on the best one for 2 successive degrees, when OLS runs out of samples
(:math:`P \ge n`), or when a sparse path saturates: it ran into the :math:`n - 2` limit
with :math:`k^* > (n-2)/2`, so that the design supports no larger basis.
``loo_by_degree_`` lists the degrees tried. A sparse fit's cost grows with :math:`P`
(:math:`\binom{D+p}{p}` for total degree): for high degrees in several inputs, a
hyperbolic truncation (``q_norm`` 0.7–0.8) prunes the high-order interactions from the
candidates (4 inputs, degree 20: 3038 instead of 10626 terms at ``q_norm=0.75``).

**Moments and Sobol indices** follow from the coefficients (orthonormality):

.. math:: \mathbb E Y = c_0, \qquad \operatorname{Var} Y = \sum_{\alpha \ne 0} c_\alpha^2, \qquad
    S_i = \frac{\sum_{\alpha \in \mathcal A_i} c_\alpha^2}{\operatorname{Var} Y}, \qquad
    S_{T_i} = \frac{\sum_{\alpha_i > 0} c_\alpha^2}{\operatorname{Var} Y},

with :math:`\mathcal A_i = \{\alpha : \alpha_i > 0, \alpha_j = 0\ (j \ne i)\}` (Sudret 2008).
They are computed in microseconds from ``coefficients_`` and ``multi_indices_``, never
with chaospy's symbolic ``Sens_m``/``Sens_t``. Under a Gaussian copula the PCE is fitted
on the independent Nataf germ: the mean and variance stay exact, but the Sobol indices
of dependent inputs are not defined by the coefficients and are refused.

**Predictive standard deviation** (so that PCE and GPR share probabilistic metrics):

* ``std_method="loo"``: the constant :math:`\sigma = \sqrt{\tfrac1n\sum_i e_i^2}` per
  output: the LOO estimate of the expected squared prediction error, noise included.
  It is **homoscedastic**: it ignores where the model is less certain;
* ``std_method="bootstrap"``: :math:`\sigma^2(\theta) = \operatorname{Var}_b \hat f_b(\theta)
  + \hat\sigma^2_\varepsilon`, the spread of ``n_bootstrap`` OLS refits on resampled rows
  (same basis and support, seeded by ``random_state``) plus the residual variance
  :math:`\hat\sigma^2_\varepsilon = \mathrm{RSS}/(n - |\mathcal A|)`.

**Domain**: ``fit`` refuses training points outside the support of a bounded input
distribution (the distribution would then be wrong). ``predict`` warns
(:class:`OutOfDomainWarning`) for points outside the training box (widened by 1% of its
width on each side) or outside the support: polynomials extrapolate badly, and the
predictive std does not know it. :meth:`PCE.out_of_domain` gives the flags.

The basis is evaluated by the stable three-term recurrence of each germ's orthonormal
polynomials, so that a saved model (JSON + npz) predicts without chaospy.

**Performance**: ``fit`` and ``predict`` run their linear algebra on one BLAS thread
(:mod:`threadpoolctl`, restored on exit). PCE problems are small
(:math:`P \lesssim 10^3`), where threads gain little, and on a busy machine multithreaded
OpenBLAS spin-waits: a degree-6, 4-input OLS fit on 1024 points took 6 s with two threads
under load and 0.04 s with one.

References
----------
Sudret, Reliab. Eng. Syst. Saf. 93 (2008) 964; Blatman & Sudret, J. Comput. Phys. 230
(2011) 2345; Xiu & Karniadakis, SIAM J. Sci. Comput. 24 (2002) 619; Efron, Hastie,
Johnstone & Tibshirani, Ann. Stat. 32 (2004) 407 (LAR); Chapelle, Vapnik & Bengio, Mach.
Learn. 48 (2002) 9 (corrected LOO).
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from threadpoolctl import ThreadpoolController

from ..errors import InputError, OutOfDomainWarning
from .base import Standardizer, SurrogateBase, check_is_fitted, check_X, check_Xy
from .distributions import InputDistribution, input_distribution, uniform_box

__all__ = [
    "PCE",
    "OutOfDomainWarning",
    "FIT_METHODS",
    "STD_METHODS",
    "multi_indices",
    "orthonormal_polynomials",
    "design_matrix",
    "pce_moments",
    "pce_sobol_indices",
]

FIT_METHODS = ("ols", "lars", "omp")
STD_METHODS = ("loo", "bootstrap")
_FORMAT = "stochhom.PCE"
_CHUNK = 4096  # rows of the design matrix evaluated at once in predict
_DESIGN_BLOCK = 2**16  # entries of the design matrix formed at once (cache-sized blocks)
_BLAS_THREADS = 1  # see "Performance" in the module docstring
_BOX_SLACK = 0.01  # the training box is widened by 1% of its width on each side
_TIE = 1e-12  # relative LOO errors below this are "exact to round-off"
_MAX_TERMS = 100_000  # design matrices beyond this are a memory hazard (n x P doubles)
_DEGREE_PATIENCE = 2  # degree="auto" stops after this many degrees without improvement
_PATIENCE = 20  # a sparse path stops max(_PATIENCE, k*) steps after its best prefix k*
_EXACT = 1e-13  # correlations below this fraction of |z - mean z|: an exact fit, the path ends
_REORTHOGONALIZE = 0.5**0.5  # Gram-Schmidt repeats a pass that shrank the vector below this
_CANCEL = 1e-6  # _centred_norms centres explicitly where sum psi^2 - n mean^2 loses more digits


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # enumerating the thread pools costs ~3 ms: do it once


def _one_blas_thread() -> Any:
    """Context limiting BLAS to ``_BLAS_THREADS`` threads (see "Performance" above)."""
    return _controller().limit(limits=_BLAS_THREADS, user_api="blas")



# --------------------------------------------------------------------------------------
# basis
# --------------------------------------------------------------------------------------
def multi_indices(p: int, degree: int, q_norm: float = 1.0) -> np.ndarray:
    r"""Hyperbolic truncation set :math:`\{\alpha \in \mathbb N^p : \|\alpha\|_q \le D\}`.

    Parameters
    ----------
    p : int
        Number of inputs.
    degree : int
        Maximal degree :math:`D`.
    q_norm : float in (0, 1]
        1 gives the total-degree set (:math:`\binom{D+p}{p}` terms).

    Returns
    -------
    numpy.ndarray of int, shape (P, p)
        Graded order: by total degree, then reverse lexicographic; row 0 is the constant.
    """
    if q_norm == 1.0:
        # total degree: plain recursion on the remaining degree budget
        def rec(k: int, budget: int) -> list[list[int]]:
            if k == 1:
                return [[a] for a in range(budget + 1)]
            return [[a, *rest] for a in range(budget + 1) for rest in rec(k - 1, budget - a)]

        rows = rec(p, degree)
    else:
        cap = degree**q_norm * (1 + 1e-12)

        def recq(k: int, used: float) -> list[list[int]]:
            out = []
            for a in range(degree + 1):
                u = used + a**q_norm
                if u > cap:
                    break
                out.extend([[a]] if k == 1 else [[a, *rest] for rest in recq(k - 1, u)])
            return out

        rows = recq(p, 0.0)
    a = np.array(rows, dtype=np.int64).reshape(-1, p)
    keys = [-a[:, i] for i in range(p - 1, -1, -1)] + [a.sum(axis=1)]
    return a[np.lexsort(keys)]


def orthonormal_polynomials(t: np.ndarray, recurrence: np.ndarray) -> np.ndarray:
    r"""Orthonormal polynomials :math:`\psi_0, \ldots, \psi_D` at the points ``t``.

    From the monic recurrence coefficients :math:`(\alpha_k, \beta_k)` (``recurrence``
    of shape (2, D+1), :math:`\beta_0 = 1`):

    .. math:: \psi_0 = 1, \quad \psi_{k+1} = \frac{(t - \alpha_k)\psi_k - \sqrt{\beta_k}\,\psi_{k-1}}
        {\sqrt{\beta_{k+1}}}.

    Returns
    -------
    numpy.ndarray, shape (n, D+1)
    """
    alpha, beta = recurrence
    n, deg = t.shape[0], recurrence.shape[1] - 1
    out = np.empty((n, deg + 1))
    out[:, 0] = 1.0
    if deg >= 1:
        out[:, 1] = (t - alpha[0]) / np.sqrt(beta[1])
    for k in range(1, deg):
        out[:, k + 1] = ((t - alpha[k]) * out[:, k] - np.sqrt(beta[k]) * out[:, k - 1]) / np.sqrt(beta[k + 1])
    return out


def design_matrix(xi: np.ndarray, indices: np.ndarray, recurrence: np.ndarray) -> np.ndarray:
    r""":math:`\Psi_{jk} = \prod_i \psi^{(i)}_{\alpha_{ki}}(\xi_{ji})`, shape (n, P), for germ
    points ``xi`` (n, p), multi-indices (P, p) and recurrences (p, 2, D+1).

    The products are formed by blocks of rows small enough to stay in cache (a block of
    about ``_DESIGN_BLOCK`` entries): the gathers of whole (n, P) columns cost five times
    more for large bases."""
    n, p = xi.shape
    big_p = indices.shape[0]
    deg = int(indices.max()) if indices.size else 0
    unis = [orthonormal_polynomials(xi[:, i], recurrence[i][:, : deg + 1]) for i in range(p)]
    psi = np.empty((n, big_p))
    rows = max(16, _DESIGN_BLOCK // max(big_p, 1))
    for start in range(0, n, rows):
        block = psi[start : start + rows]
        np.take(unis[0][start : start + rows], indices[:, 0], axis=1, out=block)
        for i in range(1, p):
            block *= unis[i][start : start + rows][:, indices[:, i]]
    return psi


def pce_moments(coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean :math:`c_0` and variance :math:`\sum_{k>0} c_k^2` of an orthonormal expansion
    (coefficients (..., P), row 0 the constant)."""
    c = np.asarray(coefficients, dtype=float)
    return c[..., 0], np.sum(c[..., 1:] ** 2, axis=-1)


def pce_sobol_indices(coefficients: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""First-order and total Sobol indices from the coefficients (see the module docstring).

    Parameters
    ----------
    coefficients : array (..., P)
    indices : int array (P, p)

    Returns
    -------
    first, total : numpy.ndarray, shape (..., p)
        NaN for an output of zero variance.
    """
    c2 = np.asarray(coefficients, dtype=float) ** 2
    a = np.asarray(indices) > 0
    var = c2[..., 1:].sum(axis=-1, keepdims=True)
    only = a & (a.sum(axis=1, keepdims=True) == 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(var > 0, (c2 @ only) / var, np.nan)
        total = np.where(var > 0, (c2 @ a) / var, np.nan)
    return first, total


# --------------------------------------------------------------------------------------
# regression
# --------------------------------------------------------------------------------------
def _relative_loo(e: np.ndarray, z: np.ndarray) -> np.ndarray:
    mse = np.mean(e**2, axis=0)
    var = np.var(z, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, mse / var, np.where(mse > 0, np.inf, 0.0))


def _ols(psi: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    r"""Least squares by SVD :math:`\Psi = U S V^T`: coefficients (P, q), residuals and LOO
    residuals (n, q) with :math:`h_{ii} = \sum_j U_{ij}^2`, and
    :math:`\operatorname{tr}((\Psi^T\Psi)^{-1}) = \sum_j s_j^{-2}`. None when the design
    matrix is rank deficient."""
    u, s, vt = np.linalg.svd(psi, full_matrices=False)
    if s.size == 0 or s[-1] <= s[0] * max(psi.shape) * np.finfo(float).eps * 10:
        return None
    coef = vt.T @ ((u.T @ z) / s[:, None])
    resid = z - psi @ coef
    one_minus_h = 1.0 - np.sum(u**2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(one_minus_h[:, None] > 1e-12, resid / one_minus_h[:, None], np.inf)
    return coef, resid, e, float(np.sum(s**-2.0))


def _correction(n: int, k: int, trace_inv: float) -> float:
    r"""Chapelle's factor :math:`T = \frac{n}{n-k}\,(1 + \operatorname{tr}((\Psi^T\Psi)^{-1}))`
    of the corrected LOO error :math:`\varepsilon^*_{LOO} = T\,\varepsilon_{LOO}`
    (Blatman & Sudret 2011, eq. 39, with :math:`C_{emp} = \Psi^T\Psi/n`)."""
    return np.inf if k >= n else n / (n - k) * (1.0 + trace_inv)


def _centred_norms(psi: np.ndarray) -> np.ndarray:
    r"""Norms :math:`\|\psi_k - \bar\psi_k\|` of the centred columns, from one pass for the
    sums and one for the sums of squares (no centred copy of a large design matrix);
    columns where :math:`\sum \psi^2 - n\bar\psi^2` cancels (nearly constant ones) are
    centred explicitly."""
    n = psi.shape[0]
    mean = (np.ones(n) @ psi) / n
    sq = np.einsum("ij,ij->j", psi, psi)
    out = np.sqrt(np.maximum(sq - n * mean**2, 0.0))
    bad = np.flatnonzero(out**2 <= _CANCEL * sq)
    if bad.size:
        block = psi[:, bad]
        out[bad] = np.linalg.norm(block - block.mean(axis=0), axis=0)
    return out


class _OlsPath:
    r"""OLS of ``z`` on a growing support :math:`[1, \Psi_{j_1}, \Psi_{j_2}, \ldots]` and its
    corrected LOO error, updated column by column (Gram–Schmidt).

    The new orthonormal direction :math:`q` updates the leverages :math:`h \mathrel{+}= q^2`,
    the residual :math:`r \mathrel{-}= q\,(q\cdot r)` and :math:`R^{-1}` (for
    :math:`\operatorname{tr}((\Psi_S^T\Psi_S)^{-1}) = \|R^{-1}\|_F^2`) by one column: a step
    costs :math:`O(n m + m^2)` for a support of :math:`m` columns, never a refit.
    """

    def __init__(self, psi: np.ndarray, z: np.ndarray) -> None:
        n = psi.shape[0]
        self.psi = psi
        size = min(n, 64)  # capacity, doubled as the support grows
        self.qt = np.empty((size, n))  # orthonormal directions, one per row
        self.qt[0] = 1.0 / np.sqrt(n)
        self.rinv_t = np.zeros((size, size))  # (R^{-1})^T, lower triangular, filled by rows
        self.rinv_t[0, 0] = 1.0 / np.sqrt(n)
        self.trace_inv = 1.0 / n
        self.h = np.full(n, 1.0 / n)
        self.r = z - z.mean()
        self.var = float(np.var(z))
        self.m = 1

    def _grow(self) -> None:
        size = min(2 * self.qt.shape[0], self.qt.shape[1])
        qt, rinv_t = np.empty((size, self.qt.shape[1])), np.zeros((size, size))
        qt[: self.m] = self.qt[: self.m]
        rinv_t[: self.m, : self.m] = self.rinv_t[: self.m, : self.m]
        self.qt, self.rinv_t = qt, rinv_t

    def add(self, col: int) -> tuple[np.ndarray, float] | None:
        """Append column ``col``; returns its Gram–Schmidt coefficients on the previous
        directions and the norm of its new component, or None (support unchanged) when it
        lies in the span of the support (to round-off)."""
        m = self.m
        if m == self.qt.shape[0]:
            self._grow()
        v = self.psi[:, col].copy()
        nv0 = float(np.linalg.norm(v))
        coeff = np.zeros(m)
        norm = nv0
        for _ in range(2):  # classical Gram-Schmidt; a second pass where the first cancelled
            c = self.qt[:m] @ v  # much ("twice is enough", Giraud et al. 2005)
            v -= c @ self.qt[:m]
            coeff += c
            norm, before = float(np.linalg.norm(v)), norm
            if norm > _REORTHOGONALIZE * before:
                break
        rho = norm
        if rho <= 1e-10 * nv0:
            return None
        v /= rho
        self.qt[m] = v
        new = -(coeff @ self.rinv_t[:m, :m]) / rho
        self.rinv_t[m, :m] = new
        self.rinv_t[m, m] = 1.0 / rho
        self.trace_inv += float(new @ new) + 1.0 / rho**2
        self.h += v**2
        self.r -= v * (v @ self.r)
        self.m = m + 1
        return coeff, rho

    def loss(self) -> float:
        r"""Corrected relative LOO error :math:`\varepsilon^*_{LOO}` of the current support."""
        n = self.h.size
        if np.any(1.0 - self.h <= 1e-12):
            return np.inf
        mse = float(np.mean((self.r / (1.0 - self.h)) ** 2))
        eps = mse / self.var if self.var > 0 else (0.0 if mse == 0 else np.inf)
        return eps * _correction(n, self.m, self.trace_inv)


def _lar_step(c: np.ndarray, a: np.ndarray, big_c: float, big_a: float, free: np.ndarray) -> tuple[int, float, float]:
    r"""Length of the LAR step and the candidate it brings in (Efron et al. 2004, eq. 2.13):

    .. math:: \gamma = {\min_{j \notin \mathcal A}}^{+} \Bigl\{\frac{C - c_j}{A - a_j},
        \frac{C + c_j}{A + a_j}\Bigr\},

    with the correlations :math:`c = X^T r`, :math:`a = X^T u` of the candidates with the
    residual and the equiangular direction :math:`u` (:math:`X_{\mathcal A}^T u = A s`), and
    :math:`C = \max_j |c_j|`. Returns the index (-1 if none), :math:`\gamma`, and the sign
    of the entering correlation.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        d1, d2 = big_a - a, big_a + a
        g1 = np.where(free & (d1 > 0), (big_c - c) / d1, np.inf)
        g2 = np.where(free & (d2 > 0), (big_c + c) / d2, np.inf)
    g1[g1 < 0] = np.inf
    g2[g2 < 0] = np.inf
    g = np.minimum(g1, g2)
    j = int(np.argmin(g))
    if not np.isfinite(g[j]):
        return -1, np.inf, 0.0
    return j, float(g[j]), 1.0 if g1[j] <= g2[j] else -1.0


class _Path(NamedTuple):
    """Result of :func:`_sparse_support`."""

    support: list[int]  # columns of the LOO-optimal prefix, the constant (0) first
    order: list[int]  # every column the path added, in order
    losses: np.ndarray  # corrected LOO error of each prefix, from the constant alone on
    saturated: bool  # the path ran into the n - 2 limit with more than (n - 2)/2 terms in its best prefix


def _sparse_support(psi: np.ndarray, z: np.ndarray, method: str, patience: int | None = _PATIENCE) -> _Path:
    r"""Hybrid LARS / OMP with early stopping (Blatman & Sudret 2011): the support (column
    indices, constant first) of the prefix of the greedy order with the smallest corrected
    LOO error (ties at round-off go to the shorter prefix).

    The greedy path runs on the centred, normalized columns :math:`x_k` and the centred
    ``z``; after each entry the OLS refit of the prefix and its corrected LOO error are
    updated (:class:`_OlsPath`). The path stops as soon as that error has not improved for
    ``max(patience, k*)`` steps (:math:`k^*` the best prefix so far; ``patience=None``:
    never, the full path), when ``n - 2`` columns are in, or at an exact fit: its cost is
    proportional to the steps taken, not to the length of the full path. ``saturated``:
    the path ran into the ``n - 2`` limit with :math:`k^* > (n-2)/2`, so that the design
    cannot support (nor the patience window assess) a larger basis.

    Both paths keep the correlations :math:`c = X^T r` of every candidate with their
    residual up to date from :math:`b = X^T q`, the correlations with the new Gram–Schmidt
    direction :math:`q` of the OLS path: one matrix-vector product with :math:`\Psi` per step.

    * ``"lars"``: least-angle regression (LAR, Efron et al. 2004). With
      :math:`X_{\mathcal A} = Q R`, the equiangular direction is :math:`u = Q t/\|t\|`,
      :math:`R^T t = s` (the signs of the active correlations), so that :math:`t` grows by
      one entry per step, :math:`A = 1/\|t\|` and :math:`X^T Q t \mathrel{+}= t_m b`;
      the step :math:`\gamma` (:func:`_lar_step`) then moves :math:`c \mathrel{-}= \gamma a`
      and :math:`C \mathrel{-}= \gamma A`;
    * ``"omp"``: orthogonal matching pursuit: the candidate most correlated with the OLS
      residual of the current support enters; :math:`c \mathrel{-}= (q\cdot z)\,b`.
    """
    n, big_p = psi.shape
    zc = z - z.mean()
    norms = _centred_norms(psi)
    norms[0] = 0.0  # the constant is always in, never a candidate
    free = norms > 1e-12 * np.sqrt(n)
    k_max = int(min(np.count_nonzero(free), n - 2))
    z_norm = float(np.linalg.norm(zc))
    ols = _OlsPath(psi, z)
    if k_max < 1 or z_norm == 0.0:
        return _Path([0], [], np.array([ols.loss()]), False)
    scale = np.zeros(big_p)
    scale[free] = 1.0 / norms[free]
    lar = method == "lars"
    c = (zc @ psi) * scale  # correlations with the path's residual (valid for columns not in)
    a_raw = np.zeros(big_p)  # X^T Q t (LAR)
    t = np.zeros(min(k_max + 1, n))  # R^T t = s, t[0] for the constant stays 0 (LAR)
    t_sq = 0.0
    big_c = float(np.max(np.abs(c[free])))
    kept: list[int] = []
    losses = [ols.loss()]
    best, best_k = losses[0], 0
    steps, saturated = 0, False
    while True:
        if steps >= k_max:  # saturated: the best prefix needs more than half the terms n allows
            saturated = k_max == n - 2 and 2 * best_k > n - 2
            break
        # -- the next candidate ------------------------------------------------------
        if lar and kept:
            big_a = 1.0 / np.sqrt(t_sq)
            big_c = max(big_c, float(np.max(np.abs(c[free]), initial=0.0)))  # round-off guard
            j, gamma, sign = _lar_step(c, a_raw * big_a, big_c, big_a, free)
            if j < 0 or gamma >= big_c / big_a:  # the active set's OLS fit is reached
                break
            c -= gamma * big_a * a_raw
            big_c -= gamma * big_a
        else:
            c_free = np.where(free, np.abs(c), -1.0)
            j = int(np.argmax(c_free))
            big_c = float(c_free[j])
            sign = float(np.sign(c[j]))
        if big_c <= _EXACT * z_norm:  # the residual is round-off: an exact fit
            break
        steps += 1
        free[j] = False
        # -- the OLS refit of the new prefix and its corrected LOO error --------------
        added = ols.add(j)
        if added is None:  # in the span of the support: it can never enter
            continue
        coeff, rho = added
        q = ols.qt[ols.m - 1]
        b = (q @ psi) * scale
        if lar:
            m = ols.m - 1
            t[m] = (sign * norms[j] - float(coeff @ t[:m])) / rho
            t_sq += t[m] ** 2
            a_raw += t[m] * b
        else:
            c -= float(q @ zc) * b
        kept.append(j)
        losses.append(ols.loss())
        if losses[-1] < best:
            best, best_k = losses[-1], len(kept)
        if patience is not None and len(kept) - best_k > max(patience, best_k):  # as many steps again
            break
    losses_a = np.asarray(losses)
    k = int(np.flatnonzero(losses_a <= best + _TIE)[0])
    return _Path([0, *kept[:k]], kept, losses_a, saturated)


def _fit_basis(psi: np.ndarray, z: np.ndarray, method: str) -> dict[str, Any] | None:
    """Fit every output column of ``z`` on ``psi``; None if OLS is rank deficient.

    ``"saturated"`` tells whether a sparse path was cut by the number of samples (a larger
    basis cannot be supported by this design)."""
    n, big_p = psi.shape
    q = z.shape[1]
    if method == "ols":
        res = _ols(psi, z)
        if res is None:
            return None
        coef, resid, e, trace_inv = res
        support = np.ones((q, big_p), dtype=bool)
        corr = np.full(q, _correction(n, big_p, trace_inv))
        return {"coef": coef.T, "resid": resid, "e": e, "support": support, "corr": corr, "saturated": False}
    coef = np.zeros((q, big_p))
    resid = np.empty_like(z)
    e = np.empty_like(z)
    support = np.zeros((q, big_p), dtype=bool)
    corr = np.empty(q)
    saturated = False
    for j in range(q):
        path = _sparse_support(psi, z[:, j], method)
        cols = path.support
        saturated = saturated or path.saturated
        res = _ols(psi[:, cols], z[:, j : j + 1])
        if res is None:  # cannot happen for Gram-Schmidt-independent columns; keep the constant only
            cols = [0]
            res = _ols(psi[:, cols], z[:, j : j + 1])
        c, rr, ee, trace_inv = res
        corr[j] = _correction(n, len(cols), trace_inv)
        coef[j, cols] = c[:, 0]
        resid[:, j], e[:, j] = rr[:, 0], ee[:, 0]
        support[j, cols] = True
    return {"coef": coef, "resid": resid, "e": e, "support": support, "corr": corr, "saturated": saturated}


def _min_degree_message(p: int, n: int, q_norm: float) -> str:
    sizes = [(d, multi_indices(p, d, q_norm).shape[0]) for d in range(1, 9)]
    feasible = [d for d, size in sizes if size < n]
    table = ", ".join(f"degree {d}: {size}" for d, size in sizes[:6])
    hint = f"degree <= {feasible[-1]}" if feasible else "more samples"
    return (f"(terms per degree with {p} input(s): {table}); use fit_method='lars' or 'omp' (sparse regression "
            f"works with fewer samples than terms), or {hint}")


# --------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------
class PCE(SurrogateBase):
    r"""Polynomial chaos expansion regressor (see the module docstring for the formulas).

    Parameters
    ----------
    distribution : InputDistribution, dict spec, chaospy distribution or None
        The law of the inputs (:class:`~stochhom.surrogates.distributions.InputDistribution`);
        it fixes the orthonormal basis. ``None``: independent uniforms over the bounding box
        of the training ``X`` (Legendre polynomials on that box), which is only right if the
        design was uniform on that box; the moments and Sobol indices then refer to that law.
    degree : int or "auto"
        Maximal polynomial degree :math:`D`, or ``"auto"`` to select it by the corrected
        LOO error: degrees 1, 2, ... are fitted in turn until that error has not improved
        for 2 successive degrees, the design supports no larger basis, or ``max_degree``.
    q_norm : float in (0, 1]
        Hyperbolic truncation :math:`\|\alpha\|_q \le D` (1: total degree).
    fit_method : {"ols", "lars", "omp"}
        Least squares, or hybrid LARS / OMP sparse regression with LOO model selection;
        the sparse path stops once the corrected LOO error of its OLS-refitted prefixes has
        not improved for :math:`\max(20, k^*)` steps (:math:`k^*` terms in the best prefix).
        A sparse fit costs about :math:`2k^*` products with the :math:`n \times P` design
        matrix (degree 12, 4 inputs, 1820 candidates, 2048 points: about 0.5 s).
    max_degree : int
        Largest degree tried by ``degree="auto"``. For high degrees in several inputs,
        combine with ``q_norm < 1`` to keep the candidate sets small.
    std_method : {"loo", "bootstrap"}
        Predictive standard deviation: homoscedastic LOO error, or bootstrap spread plus
        residual variance.
    n_bootstrap : int
        Bootstrap resamples (``std_method="bootstrap"``).
    random_state : int, Generator or None
        Seeds the bootstrap.

    Attributes
    ----------
    distribution_ : InputDistribution
    degree_ : int
    multi_indices_ : ndarray of int, shape (P, p)
    coefficients_ : ndarray, shape (P,) or (q, P)
        In the units of ``y``; zeros outside the support of a sparse fit.
    mean_, variance_ : float or ndarray (q,)
    sobol_first_, sobol_total_ : ndarray, shape (p,) or (q, p)
        Refused (InputError) under a Gaussian copula.
    loo_error_ : float or ndarray (q,)
        Relative LOO error :math:`\varepsilon_{LOO}`.
    loo_std_ : float or ndarray (q,)
        :math:`\sqrt{\tfrac1n\sum e_i^2}` in the units of ``y``.
    noise_std_ : float or ndarray (q,)
        :math:`\sqrt{\mathrm{RSS}/(n - |\mathcal A|)}`.
    n_terms_ : int or ndarray (q,)
        Size of the (sparse) support.
    loo_by_degree_ : ndarray (k, 3)
        Degrees tried (in order; one row for a fixed degree), their relative LOO error and
        corrected LOO error (means over outputs).
    X_bounds_ : ndarray (p, 2)
        Training box.
    feature_names_ : list of str
        The distribution's input names.

    Examples
    --------
    >>> import numpy as np
    >>> from stochhom.surrogates.pce import PCE
    >>> X = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    >>> pce = PCE(distribution={"a": {"distribution": "uniform", "low": -1, "high": 1},
    ...                         "b": {"distribution": "uniform", "low": -1, "high": 1}}, degree=2)
    >>> pce = pce.fit(X, 1 + X[:, 0] * X[:, 1])
    >>> round(float(pce.mean_), 12), round(float(pce.variance_), 12)  # E = 1, Var = 1/9
    (1.0, 0.111111111111)
    """

    def __init__(
        self,
        distribution: Any = None,
        degree: int | str = 3,
        q_norm: float = 1.0,
        fit_method: str = "ols",
        max_degree: int = 8,
        std_method: str = "loo",
        n_bootstrap: int = 200,
        random_state: Any = None,
    ) -> None:
        self.distribution = distribution
        self.degree = degree
        self.q_norm = q_norm
        self.fit_method = fit_method
        self.max_degree = max_degree
        self.std_method = std_method
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    # -- validation ---------------------------------------------------------------------
    def _check_params(self) -> list[int]:
        def is_int(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if self.fit_method not in FIT_METHODS:
            raise InputError(f"unknown fit_method {self.fit_method!r}; allowed: {list(FIT_METHODS)}")
        if self.std_method not in STD_METHODS:
            raise InputError(f"unknown std_method {self.std_method!r}; allowed: {list(STD_METHODS)}")
        q = self.q_norm
        if isinstance(q, bool) or not isinstance(q, (int, float, np.floating, np.integer)) or not 0 < q <= 1:
            raise InputError(f"q_norm must lie in (0, 1] (1: total degree), got {q!r}")
        if self.std_method == "bootstrap" and (not is_int(self.n_bootstrap) or self.n_bootstrap < 2):
            raise InputError(f"n_bootstrap must be an integer >= 2, got {self.n_bootstrap!r}")
        if isinstance(self.degree, str):
            if self.degree != "auto":
                raise InputError(f"degree must be a positive integer or 'auto', got {self.degree!r}")
            if not is_int(self.max_degree) or self.max_degree < 1:
                raise InputError(f"max_degree must be a positive integer, got {self.max_degree!r}")
            return list(range(1, int(self.max_degree) + 1))
        if not is_int(self.degree) or self.degree < 1:
            raise InputError(f"degree must be a positive integer or 'auto', got {self.degree!r}")
        return [int(self.degree)]

    def _resolve_distribution(self, X: np.ndarray) -> InputDistribution:
        p = X.shape[1]
        if self.distribution is None:
            lo, hi = X.min(axis=0), X.max(axis=0)
            flat = np.flatnonzero(hi <= lo)
            if flat.size:
                raise InputError(f"column(s) {flat.tolist()} of X are constant; drop them, or pass a distribution")
            return uniform_box(lo, hi)
        dist = input_distribution(self.distribution)
        if dist.n_inputs != p:
            raise InputError(f"the distribution has {dist.n_inputs} input(s) {dist.names} but X has {p} column(s)")
        inside = dist.contains(X)
        if not np.all(inside):
            bad = np.flatnonzero(~inside)
            raise InputError(
                f"{bad.size} training point(s) lie outside the support of the input distribution (first: row "
                f"{bad[0]}, x = {X[bad[0]].tolist()}, support {dist.support.tolist()}); fix the distribution "
                "or drop those points"
            )
        return dist

    # -- fit ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, **fit_params: Any) -> PCE:
        """Fit the expansion (see the module docstring); returns ``self``.

        Raises
        ------
        InputError
            Bad hyperparameters, NaN/inf or mismatched ``X``/``y``, training points
            outside a bounded support, or OLS with fewer samples than terms + 1.
        """
        if fit_params:
            raise InputError(f"PCE.fit takes no fit parameters, got {sorted(fit_params)}")
        with _one_blas_thread():
            return self._fit(X, y)

    def _fit(self, X: Any, y: Any) -> PCE:
        degrees = self._check_params()
        Xa, Y, one_d = check_Xy(X, y, min_samples=3)
        n, p = Xa.shape
        dist = self._resolve_distribution(Xa)
        xi = dist.to_germ(Xa)
        if not np.all(np.isfinite(xi)):
            raise InputError("the germ transform of X is not finite; check X against the distribution's support")
        scaler = Standardizer.fit(Y)
        z = scaler.transform(Y)
        rec_all = dist.recurrence(max(degrees))
        method = str(self.fit_method)

        best: dict[str, Any] | None = None
        history: list[tuple[int, float, float]] = []
        stale = 0  # successive degrees without a better corrected LOO error
        for d in degrees:
            if float(self.q_norm) == 1.0 and math.comb(d + p, p) > _MAX_TERMS:
                raise InputError(
                    f"degree {d} with {p} inputs has {math.comb(d + p, p)} terms (more than {_MAX_TERMS}); lower the "
                    "degree or use a hyperbolic truncation q_norm < 1 (e.g. 0.5) with fit_method='lars'"
                )
            idx = multi_indices(p, d, float(self.q_norm))
            big_p = idx.shape[0]
            if method == "ols" and n <= big_p:
                if best is None:
                    raise InputError(
                        f"OLS needs more samples than terms: degree {d} with {p} input(s) has {big_p} terms, so at "
                        f"least {big_p + 1} samples are needed (P to fix the coefficients, one more for the LOO "
                        f"error), got {n} " + _min_degree_message(p, n, float(self.q_norm))
                    )
                break
            psi = design_matrix(xi, idx, rec_all)
            res = _fit_basis(psi, z, method)
            if res is None:
                if best is None:
                    raise InputError(
                        f"the degree-{d} design matrix is rank deficient (duplicate points, or too few distinct "
                        f"values of an input for degree {d}); lower the degree or use fit_method='lars'/'omp'"
                    )
                break
            eps = _relative_loo(res["e"], z)
            score = float(np.mean(eps * res["corr"]))
            history.append((d, float(np.mean(eps)), score))
            if best is None or score < best["score"] - _TIE:
                best = {**res, "score": score, "eps": eps, "degree": d, "indices": idx, "psi": psi}
                stale = 0
            else:
                stale += 1
            if stale >= _DEGREE_PATIENCE or res["saturated"]:
                break
        assert best is not None

        d = best["degree"]
        self.distribution_ = dist
        self.feature_names_ = list(dist.names)
        self.n_features_in_ = p
        self.n_outputs_ = Y.shape[1]
        self._y_1d_ = one_d
        self.degree_ = int(d)
        self.multi_indices_ = best["indices"]
        self.recurrence_ = rec_all[:, :, : d + 1].copy()
        self.X_bounds_ = np.column_stack([Xa.min(axis=0), Xa.max(axis=0)])
        self.loo_by_degree_ = np.array(history, dtype=float)
        coef = best["coef"] * scaler.scale[:, None]
        coef[:, 0] += scaler.mean
        support = best["support"]
        n_terms = support.sum(axis=1)
        loo_std = np.sqrt(np.mean(best["e"] ** 2, axis=0)) * scaler.scale
        noise_std = np.sqrt(np.sum(best["resid"] ** 2, axis=0) / (n - n_terms)) * scaler.scale
        self._coef = coef
        self._support = support
        self._set_outputs(best["eps"], loo_std, noise_std, n_terms)
        if self.std_method == "bootstrap":
            self._boot = self._bootstrap(best["psi"], z, support, scaler)
        else:
            self._boot = None
        return self

    def _set_outputs(self, eps: np.ndarray, loo_std: np.ndarray, noise_std: np.ndarray, n_terms: np.ndarray) -> None:
        squeeze = self._shape_scalar
        self.coefficients_ = self._coef[0] if self._y_1d_ else self._coef
        mean, var = pce_moments(self._coef)
        self.mean_, self.variance_ = squeeze(mean), squeeze(var)
        self._first, self._total = pce_sobol_indices(self._coef, self.multi_indices_)
        self.loo_error_ = squeeze(np.asarray(eps, dtype=float))
        self.loo_std_ = squeeze(np.asarray(loo_std, dtype=float))
        self.noise_std_ = squeeze(np.asarray(noise_std, dtype=float))
        self.n_terms_ = squeeze(np.asarray(n_terms, dtype=int))

    def _shape_scalar(self, a: np.ndarray) -> Any:
        if not self._y_1d_:
            return a
        return a[0] if a.ndim > 1 else a[0].item()

    def _bootstrap(self, psi: np.ndarray, z: np.ndarray, support: np.ndarray, scaler: Standardizer) -> np.ndarray:
        r"""Coefficients (B, q, P), in the units of y, of OLS refits on resampled rows.

        Each resample is the weighted normal equations :math:`\Psi_S^T W \Psi_S c = \Psi_S^T W z`
        with the resampling counts :math:`W` (Cholesky), on the fitted support :math:`S`.
        """
        n, q = z.shape
        gen = np.random.default_rng(self.random_state)
        rows = gen.integers(0, n, (int(self.n_bootstrap), n))
        out = np.zeros((rows.shape[0], q, psi.shape[1]))
        same = bool(np.all(support == support[0]))
        groups = [np.arange(q)] if same else [np.array([j]) for j in range(q)]
        for b, r in enumerate(rows):
            w = np.bincount(r, minlength=n).astype(float)
            for g in groups:
                cols = np.flatnonzero(support[g[0]])
                a = psi[:, cols]
                aw = a * w[:, None]
                try:
                    if np.count_nonzero(w) < cols.size:
                        raise np.linalg.LinAlgError
                    low = np.linalg.cholesky(aw.T @ a)
                    c = np.linalg.solve(low.T, np.linalg.solve(low, aw.T @ z[:, g]))
                except np.linalg.LinAlgError:  # too few distinct rows in this resample: minimum norm
                    c = np.linalg.lstsq(a[r], z[np.ix_(r, g)], rcond=None)[0]
                out[b][np.ix_(g, cols)] = c.T
        out *= scaler.scale[None, :, None]
        out[:, :, 0] += scaler.mean
        return out

    # -- fitted quantities --------------------------------------------------------------
    def _check_sobol(self) -> None:
        if not hasattr(self, "_first"):
            raise AttributeError("this PCE is not fitted yet; call fit(X, y) first")
        if not self.distribution_.independent:
            raise InputError(
                "Sobol indices are only defined for independent inputs, and this PCE was fitted with a Gaussian "
                "copula (on the independent Nataf germ, whose coefficients do not split the variance among the "
                "physical inputs); fit without `correlation`, or use dependence-aware sampling estimators"
            )

    @property
    def sobol_first_(self) -> np.ndarray:
        """First-order Sobol indices :math:`S_i`, shape (p,) or (q, p)."""
        self._check_sobol()
        return self._first[0] if self._y_1d_ else self._first

    @property
    def sobol_total_(self) -> np.ndarray:
        """Total Sobol indices :math:`S_{T_i}`, shape (p,) or (q, p)."""
        self._check_sobol()
        return self._total[0] if self._y_1d_ else self._total

    @property
    def bootstrap_coefficients_(self) -> np.ndarray:
        """Bootstrap coefficients (B, q, P) (``std_method="bootstrap"`` only)."""
        if getattr(self, "_boot", None) is None:
            raise AttributeError("bootstrap_coefficients_ exists only after fit with std_method='bootstrap'")
        return self._boot

    # -- bootstrap functions (std_method="bootstrap") -------------------------------------
    @property
    def sample_functions(self) -> Any:
        r"""``sample_functions(X, n_samples, rng=None) -> (n_samples, m[, q])``: predictions of
        bootstrap refits (``std_method="bootstrap"`` only; an ``AttributeError`` otherwise, so that
        ``hasattr`` tells whether a PCE has them).

        Each draw is the expansion with the coefficients of one bootstrap resample (chosen at
        random among the ``n_bootstrap`` fitted ones): a plausible function given the data, the
        bootstrap counterpart of a GP's posterior functions (:math:`\operatorname{Var}_b \hat f_b`,
        the epistemic part of the predictive variance).
        """
        if getattr(self, "_boot", None) is None:
            raise AttributeError("sample_functions needs a PCE fitted with std_method='bootstrap'")
        return self._sample_functions

    def _sample_functions(self, X: Any, n_samples: int, rng: Any = None) -> np.ndarray:
        check_is_fitted(self, "coefficients_")
        Xa = check_X(X, self.n_features_in_)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise InputError(f"n_samples must be a positive integer, got {n_samples!r}")
        gen = np.random.default_rng(rng)
        pick = gen.integers(0, self._boot.shape[0], int(n_samples))
        xi = self.distribution_.to_germ(Xa)
        out = np.empty((int(n_samples), Xa.shape[0], self._coef.shape[0]))
        with _one_blas_thread():
            for start in range(0, Xa.shape[0], _CHUNK):
                sl = slice(start, min(start + _CHUNK, Xa.shape[0]))
                psi = design_matrix(xi[sl], self.multi_indices_, self.recurrence_)
                out[:, sl, :] = np.einsum("mp,bqp->bmq", psi, self._boot[pick])
        return out[..., 0] if self._y_1d_ else out

    @property
    def noise_variance(self) -> Any:
        r"""``noise_variance(X)``: the residual variance :math:`\hat\sigma^2_\varepsilon` at every point
        (homoscedastic; ``std_method="bootstrap"`` only, an ``AttributeError`` otherwise). With
        replicates at the training points it estimates the microstructural scatter (plus any
        lack of fit of the expansion)."""
        if getattr(self, "_boot", None) is None:
            raise AttributeError("noise_variance needs a PCE fitted with std_method='bootstrap'")
        return self._noise_variance

    def _noise_variance(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coefficients_")
        Xa = check_X(X, self.n_features_in_)
        nv = np.broadcast_to(np.atleast_1d(self.noise_std_) ** 2, (Xa.shape[0], self._coef.shape[0])).copy()
        return nv[:, 0] if self._y_1d_ else nv

    # -- predict ------------------------------------------------------------------------
    def out_of_domain(self, X: Any) -> np.ndarray:
        """``(m,)`` True for points outside the training box (widened by 1% of its width on
        each side, so that a space-filling design's gaps at the edges do not count) or
        outside the distribution's support."""
        check_is_fitted(self, "coefficients_")
        Xa = check_X(X, self.n_features_in_)
        lo, hi = self.X_bounds_[:, 0], self.X_bounds_[:, 1]
        slack = _BOX_SLACK * (hi - lo)
        box = np.all((Xa >= lo - slack) & (Xa <= hi + slack), axis=1)
        return ~(box & self.distribution_.contains(Xa))

    def predict(self, X: Any, return_std: bool = False) -> Any:
        r"""Predictive mean :math:`\sum_\alpha c_\alpha \Psi_\alpha(T(x))`, and with
        ``return_std=True`` the predictive standard deviation (see ``std_method``).

        Warns :class:`OutOfDomainWarning` for points outside the training box or the
        support. Returns arrays of the shape of the training ``y`` ((m,) or (m, q)).
        """
        check_is_fitted(self, "coefficients_")
        Xa = check_X(X, self.n_features_in_)
        with _one_blas_thread():
            return self._predict(Xa, return_std)

    def _predict(self, Xa: np.ndarray, return_std: bool) -> Any:
        ood = self.out_of_domain(Xa)
        if ood.any():
            warnings.warn(
                f"{int(ood.sum())} of {len(ood)} point(s) lie outside the training box {self.X_bounds_.tolist()} "
                "or the input support: the PCE extrapolates there", OutOfDomainWarning, stacklevel=3)
        xi = self.distribution_.to_germ(Xa)
        if not np.all(np.isfinite(xi)):
            raise InputError("X has points where the germ transform is undefined (e.g. x <= 0 for a log input)")
        m, q = Xa.shape[0], self._coef.shape[0]
        mean = np.empty((m, q))
        var = np.zeros((m, q)) if (return_std and self._boot is not None) else None
        for start in range(0, m, _CHUNK):
            sl = slice(start, min(start + _CHUNK, m))
            psi = design_matrix(xi[sl], self.multi_indices_, self.recurrence_)
            mean[sl] = psi @ self._coef.T
            if var is not None:
                b, _, big_p = self._boot.shape
                boot = (psi @ self._boot.reshape(-1, big_p).T).reshape(-1, b, q)
                var[sl] = boot.var(axis=1)
        if not return_std:
            return self._shape_output(mean)
        if self._boot is None:
            std = np.broadcast_to(np.atleast_1d(self.loo_std_), (m, q)).copy()
        else:
            std = np.sqrt(var + np.atleast_1d(self.noise_std_) ** 2)
        return self._shape_output(mean), self._shape_output(std)

    # -- persistence --------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save to the directory ``path`` as ``pce.json`` (settings, distribution) and
        ``pce.npz`` (arrays); no pickle. Returns the directory.

        A ``random_state`` Generator is saved as None (the fitted state does not need it).
        Models on chaospy marginals cannot be saved (InputError): use a stochhom spec.
        """
        check_is_fitted(self, "coefficients_")
        path = Path(path)
        dist_dict = self.distribution_.to_dict()  # InputError for chaospy marginals
        param = self.distribution
        if param is not None:
            param = input_distribution(param).to_dict()
        rs = self.random_state
        meta = {
            "format": _FORMAT,
            "version": 1,
            "params": {
                "distribution": param,
                "degree": self.degree if isinstance(self.degree, str) else int(self.degree),
                "q_norm": float(self.q_norm),
                "fit_method": self.fit_method,
                "max_degree": int(self.max_degree),
                "std_method": self.std_method,
                "n_bootstrap": int(self.n_bootstrap),
                "random_state": int(rs) if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) else None,
            },
            "distribution_": dist_dict,
            "n_features_in_": int(self.n_features_in_),
            "n_outputs_": int(self.n_outputs_),
            "y_1d": bool(self._y_1d_),
            "degree_": int(self.degree_),
        }
        arrays = {
            "multi_indices": self.multi_indices_,
            "coefficients": self._coef,
            "support": self._support,
            "recurrence": self.recurrence_,
            "X_bounds": self.X_bounds_,
            "loo_by_degree": self.loo_by_degree_,
            "loo_error": np.atleast_1d(self.loo_error_),
            "loo_std": np.atleast_1d(self.loo_std_),
            "noise_std": np.atleast_1d(self.noise_std_),
        }
        if self._boot is not None:
            arrays["bootstrap"] = self._boot
        path.mkdir(parents=True, exist_ok=True)
        (path / "pce.json").write_text(json.dumps(meta, indent=2))
        np.savez(path / "pce.npz", **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> PCE:
        """Load a model written by :meth:`save`; predictions are identical."""
        path = Path(path)
        try:
            meta = json.loads((path / "pce.json").read_text())
        except FileNotFoundError:
            raise InputError(f"no saved PCE in {str(path)!r} (expected pce.json and pce.npz)") from None
        if meta.get("format") != _FORMAT:
            raise InputError(f"{str(path / 'pce.json')!r} is not a saved stochhom PCE")
        model = cls(**meta["params"])
        with np.load(path / "pce.npz", allow_pickle=False) as f:
            arr = {k: f[k] for k in f.files}
        model.distribution_ = InputDistribution.from_dict(meta["distribution_"])
        model.feature_names_ = list(model.distribution_.names)
        model.n_features_in_ = meta["n_features_in_"]
        model.n_outputs_ = meta["n_outputs_"]
        model._y_1d_ = meta["y_1d"]
        model.degree_ = meta["degree_"]
        model.multi_indices_ = arr["multi_indices"]
        model.recurrence_ = arr["recurrence"]
        model.X_bounds_ = arr["X_bounds"]
        model.loo_by_degree_ = arr["loo_by_degree"]
        model._coef = arr["coefficients"]
        model._support = arr["support"]
        model._boot = arr.get("bootstrap")
        model._set_outputs(arr["loo_error"], arr["loo_std"], arr["noise_std"], arr["support"].sum(axis=1))
        return model
