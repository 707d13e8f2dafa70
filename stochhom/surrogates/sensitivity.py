r"""Sobol sensitivity indices of a surrogate, with intervals.

For :math:`Y = f(\theta)` with independent inputs, the first-order index
:math:`S_i = \operatorname{Var}(\mathbb E[Y\mid\theta_i])/\operatorname{Var}Y` is the
share of the variance explained by :math:`\theta_i` alone, and the total index
:math:`S_{T_i} = \mathbb E[\operatorname{Var}(Y\mid\theta_{\sim i})]/\operatorname{Var}Y`
includes all its interactions.

* **PCE**: analytic, from the coefficients of the orthonormal expansion (sums of
  squared coefficients over the multi-indices that involve :math:`\theta_i` only, or at
  all); see :class:`~stochhom.surrogates.PCE`.
* **Any surrogate** (GPR): Monte Carlo with Saltelli's design (Saltelli et al. 2010):
  two independent QMC matrices :math:`A, B` and the :math:`p` matrices
  :math:`A_B^{(i)}` (column :math:`i` from :math:`B`), with

  .. math::
      S_i \approx \frac{\tfrac1N\sum_k f(B)_k\,(f(A_B^{(i)})_k - f(A)_k)}{V}, \qquad
      S_{T_i} \approx \frac{\tfrac1{2N}\sum_k (f(A)_k - f(A_B^{(i)})_k)^2}{V}

  (Jansen's estimator for the total index). For a GP the estimators are applied to
  each posterior function sample, drawn jointly at all :math:`N(p+2)` points, and to
  a bootstrap resample of the rows at the same time, so that the spread of the
  indices over the draws covers both the surrogate's epistemic uncertainty and the
  Monte Carlo error.

References
----------
A. Saltelli et al., "Variance based sensitivity analysis of model output. Design and
estimator for the total sensitivity index", Comput. Phys. Commun. 181 (2010) 259–270.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import qmc

from ..errors import InputError
from .base import check_is_fitted
from .propagation import as_distribution

__all__ = ["SobolIndices", "sobol_indices", "saltelli_indices"]


@dataclass(frozen=True)
class SobolIndices:
    """First-order and total Sobol indices with intervals.

    Attributes
    ----------
    first, total : numpy.ndarray, shape (p,) or (q, p)
    first_ci, total_ci : tuple of numpy.ndarray
        Lower and upper bounds at level ``confidence`` (equal to the estimate for
        analytic PCE indices).
    names : list of str
    method : str
        ``"pce analytic"`` or ``"saltelli"``.
    """

    first: np.ndarray
    total: np.ndarray
    first_ci: tuple[np.ndarray, np.ndarray]
    total_ci: tuple[np.ndarray, np.ndarray]
    names: list[str]
    method: str
    confidence: float

    def to_dataset(self) -> xr.Dataset:
        first = np.atleast_2d(self.first)
        dims = ("output", "input")
        arrays = {"first": self.first, "total": self.total, "first_low": self.first_ci[0],
                  "first_high": self.first_ci[1], "total_low": self.total_ci[0], "total_high": self.total_ci[1]}
        return xr.Dataset(
            {k: (dims, np.atleast_2d(v)) for k, v in arrays.items()},
            coords={"input": self.names, "output": np.arange(first.shape[0])},
            attrs={"method": self.method, "confidence": self.confidence},
        )


def saltelli_indices(fa: np.ndarray, fb: np.ndarray, fab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Saltelli (first order) and Jansen (total) estimators.

    Parameters
    ----------
    fa, fb : numpy.ndarray, shape (..., N)
        :math:`f(A)`, :math:`f(B)`.
    fab : numpy.ndarray, shape (..., p, N)
        :math:`f(A_B^{(i)})`.

    Returns
    -------
    first, total : numpy.ndarray, shape (..., p)
    """
    var = np.concatenate([fa, fb], axis=-1).var(axis=-1)[..., None]
    diff = fab - fa[..., None, :]
    first = (fb[..., None, :] * diff).mean(axis=-1) / var
    total = 0.5 * (diff**2).mean(axis=-1) / var
    return first, total


def _percentiles(x: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    a = 50.0 * (1.0 - confidence)
    return np.percentile(x, a, axis=0), np.percentile(x, 100.0 - a, axis=0)


def sobol_indices(
    model: Any,
    distribution: Any = None,
    n_samples: int = 512,
    *,
    n_functions: int = 64,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> SobolIndices:
    """Sobol indices of a fitted surrogate (see the module docstring).

    Parameters
    ----------
    model : fitted surrogate
        A :class:`~stochhom.surrogates.PCE` with ``distribution=None`` gives its
        analytic indices (with respect to its own input distribution). Otherwise the
        Saltelli estimator is used, over posterior function samples when the model
        has ``sample_functions`` (GPR).
    distribution : input distribution or spec
        The inputs' (independent) distribution; required for Saltelli.
    n_samples : int
        Rows N of the Saltelli matrices (the model is evaluated at N(p+2) points).
    n_functions : int
        Posterior function samples (GPR) or bootstrap resamples (other models).
    """
    check_is_fitted(model)
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence!r}")
    if distribution is None:
        if hasattr(model, "sobol_first_") and hasattr(model, "sobol_total_"):
            first, total = np.asarray(model.sobol_first_), np.asarray(model.sobol_total_)
            names = list(getattr(model, "feature_names_", [f"x{i}" for i in range(first.shape[-1])]))
            return SobolIndices(first, total, (first, first), (total, total), names, "pce analytic", confidence)
        raise InputError("this surrogate has no analytic Sobol indices; pass the input distribution")
    dist = as_distribution(distribution)
    if getattr(dist, "correlation", None) is not None:
        raise InputError("Sobol indices assume independent inputs; the distribution has a copula correlation")
    p = len(dist.names)
    if getattr(model, "n_features_in_", p) != p:
        raise InputError(f"the distribution has {p} input(s) but the surrogate was fitted with "
                         f"{model.n_features_in_} feature(s)")
    for name, value in (("n_samples", n_samples), ("n_functions", n_functions)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise InputError(f"{name} must be an integer >= 2, got {value!r}")
    gen = np.random.default_rng(rng)
    u = qmc.Sobol(2 * p, scramble=True, seed=gen).random(n_samples)
    a, b = dist.ppf(u[:, :p]), dist.ppf(u[:, p:])
    ab = np.repeat(a[None], p, axis=0)
    for i in range(p):
        ab[i, :, i] = b[:, i]
    pts = np.concatenate([a, b, ab.reshape(-1, p)], axis=0)
    n = n_samples
    if hasattr(model, "sample_functions"):
        f = np.asarray(model.sample_functions(pts, n_functions, rng=gen), dtype=float)  # (J, M[, q])
    else:
        f = np.repeat(np.asarray(model.predict(pts), dtype=float)[None], n_functions, axis=0)
    multi = f.ndim == 3
    if not multi:
        f = f[..., None]
    f = np.moveaxis(f, -1, 1)  # (J, q, M)
    rows = gen.integers(0, n, (n_functions, n))
    rows[0] = np.arange(n)  # the first draw keeps every row: the point estimate of that function
    fa = np.take_along_axis(f[..., :n], rows[:, None, :], axis=-1)
    fb = np.take_along_axis(f[..., n:2 * n], rows[:, None, :], axis=-1)
    fab = f[..., 2 * n:].reshape(n_functions, f.shape[1], p, n)
    fab = np.take_along_axis(fab, rows[:, None, None, :], axis=-1)
    first, total = saltelli_indices(fa, fb, fab)  # (J, q, p)
    point_first, point_total = saltelli_indices(f[..., :n], f[..., n:2 * n],
                                                f[..., 2 * n:].reshape(n_functions, f.shape[1], p, n))
    est_first, est_total = point_first.mean(axis=0), point_total.mean(axis=0)
    fci, tci = _percentiles(first, confidence), _percentiles(total, confidence)
    if not multi:
        est_first, est_total = est_first[0], est_total[0]
        fci, tci = (fci[0][0], fci[1][0]), (tci[0][0], tci[1][0])
    return SobolIndices(est_first, est_total, fci, tci, list(dist.names), "saltelli", confidence)
