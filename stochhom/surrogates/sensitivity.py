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

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import qmc

from ..errors import InputError
from .base import check_is_fitted
from .propagation import as_distribution, conditional_moments, latent_functions, latent_view

__all__ = ["SobolIndices", "sobol_indices", "saltelli_indices"]


@dataclass(frozen=True)
class SobolIndices:
    r"""First-order and total Sobol indices with intervals.

    Attributes
    ----------
    first, total : numpy.ndarray, shape (p,) or (q, p)
    first_ci, total_ci : tuple of numpy.ndarray
        Lower and upper bounds at level ``confidence``.
    names : list of str
    method : str
        ``"pce analytic"``, ``"pce analytic, bootstrap intervals"``, ``"saltelli"``.
    confidence : float
    relative_to : str
        ``"mean"``: shares of the variance of the mean response :math:`\mathbb E[Y\mid\theta]`
        (they add up to 1 without interactions); ``"total"``: shares of the whole output
        variance, beside the named shares of the other sources in ``shares``.
    shares : dict of str to numpy.ndarray
        With ``relative_to="total"``: ``input`` (the share of the mean response, which the
        indices split among the inputs), ``aleatoric`` (microstructural scatter),
        ``epistemic`` (surrogate) and ``unsplit`` (scatter and surrogate error of a model
        without a noise model), adding up to 1. Empty for ``"mean"``.
    """

    first: np.ndarray
    total: np.ndarray
    first_ci: tuple[np.ndarray, np.ndarray]
    total_ci: tuple[np.ndarray, np.ndarray]
    names: list[str]
    method: str
    confidence: float
    relative_to: str = "mean"
    shares: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dataset(self) -> xr.Dataset:
        first = np.atleast_2d(self.first)
        dims = ("output", "input")
        arrays = {"first": self.first, "total": self.total, "first_low": self.first_ci[0],
                  "first_high": self.first_ci[1], "total_low": self.total_ci[0], "total_high": self.total_ci[1]}
        data = {k: (dims, np.atleast_2d(v)) for k, v in arrays.items()}
        data.update({f"share_{k}": ("output", np.atleast_1d(v)) for k, v in self.shares.items()})
        return xr.Dataset(
            data,
            coords={"input": self.names, "output": np.arange(first.shape[0])},
            attrs={"method": self.method, "confidence": self.confidence, "relative_to": self.relative_to},
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

    Notes
    -----
    :math:`f(B)` enters the first-order estimator centred on the mean of :math:`f(A)` and
    :math:`f(B)`: the expectation is unchanged (:math:`E[f(A_B^{(i)}) - f(A)] = 0`), and the
    variance of the estimator no longer grows with the squared mean of the output (for a
    conductivity of mean 2.7 and standard deviation 1.1, the width of the first-order
    intervals fell by about half).
    """
    both = np.concatenate([fa, fb], axis=-1)
    var = both.var(axis=-1)[..., None]
    diff = fab - fa[..., None, :]
    centred = fb - both.mean(axis=-1)[..., None]
    first = (centred[..., None, :] * diff).mean(axis=-1) / var
    total = 0.5 * (diff**2).mean(axis=-1) / var
    return first, total


def _percentiles(x: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    a = 50.0 * (1.0 - confidence)
    return np.percentile(x, a, axis=0), np.percentile(x, 100.0 - a, axis=0)


def _pce_analytic(model: Any, confidence: float) -> SobolIndices:
    """Analytic PCE indices, with percentile intervals over its bootstrap coefficients when it has them."""
    from .pce import pce_sobol_indices

    first, total = np.asarray(model.sobol_first_), np.asarray(model.sobol_total_)
    names = list(getattr(model, "feature_names_", [f"x{i}" for i in range(first.shape[-1])]))
    boot = getattr(model, "_boot", None)
    if boot is None:
        return SobolIndices(first, total, (first, first), (total, total), names, "pce analytic", confidence)
    fb, tb = zip(*(pce_sobol_indices(c, model.multi_indices_) for c in boot))  # each (q, p)
    fb, tb = np.stack(fb), np.stack(tb)
    if first.ndim == 1:
        fb, tb = fb[:, 0], tb[:, 0]
    fci, tci = _percentiles(fb, confidence), _percentiles(tb, confidence)
    fci = (np.minimum(fci[0], first), np.maximum(fci[1], first))
    tci = (np.minimum(tci[0], total), np.maximum(tci[1], total))
    return SobolIndices(first, total, fci, tci, names, "pce analytic, bootstrap intervals", confidence)


def sobol_indices(
    model: Any,
    distribution: Any = None,
    n_samples: int = 512,
    *,
    n_functions: int = 64,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
    relative_to: str = "mean",
) -> SobolIndices:
    r"""Sobol indices of a fitted surrogate (see the module docstring).

    The indices are those of the mean response :math:`\bar m(\theta) = \mathbb E[Y\mid\theta]`
    on the physical scale (for a :class:`~stochhom.surrogates.bounded.BoundedSurrogate`,
    the quadrature mean of the mapped latent law), estimated by Saltelli's design.

    Parameters
    ----------
    model : fitted surrogate
        A :class:`~stochhom.surrogates.PCE` with ``distribution=None`` gives its
        analytic indices (with respect to its own input distribution; with percentile
        intervals over its bootstrap coefficients when ``std_method="bootstrap"``).
        Otherwise the Saltelli estimator is used, with intervals over posterior function
        samples when the model has them (GPR, bootstrap PCE) and a bootstrap of the rows.
    distribution : input distribution or spec
        The inputs' (independent) distribution; required for Saltelli.
    n_samples : int
        Rows N of the Saltelli matrices (the model is evaluated at N(p+2) points).
    n_functions : int
        Posterior function samples (GPR, bootstrap PCE) or bootstrap resamples of the rows.
    relative_to : {"mean", "total"}
        ``"mean"``: indices relative to :math:`\operatorname{Var}\bar m` (they sum to 1
        without interactions). ``"total"``: relative to the whole output variance
        :math:`\operatorname{Var} Y`, i.e. scaled by the input share
        :math:`\operatorname{Var}\bar m / \operatorname{Var} Y`, with the shares of the
        microstructural scatter, the surrogate's uncertainty (and the unsplit part of a
        model without a noise model) in ``shares``, computed as in
        :func:`~stochhom.surrogates.propagate` at the :math:`2N` rows of :math:`A` and
        :math:`B`: every share of the variance is then named, and they add up to 1.
    """
    check_is_fitted(model)
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence!r}")
    if relative_to not in ("mean", "total"):
        raise InputError(f"relative_to must be 'mean' or 'total', got {relative_to!r}")
    if distribution is None:
        if relative_to == "total":
            raise InputError("indices relative to the total variance need the input distribution")
        if hasattr(model, "sobol_first_") and hasattr(model, "sobol_total_"):
            return _pce_analytic(model, confidence)
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
    view = latent_view(model)
    mu, v_f, noise = view.marginal(pts, True, True)
    tr = view.transform(pts)
    cm = conditional_moments(tr, mu, v_f, noise)
    mbar = cm["mean"]  # E[Y | theta] at every point, exact in f and the scatter
    if view.functions is not None:  # per posterior function: E_eps[Y | theta, f_j]
        lat, _ = latent_functions(view, pts, mu, v_f, n_functions, gen)
        zero = np.zeros_like(v_f)
        per = np.stack([conditional_moments(tr, lat[j], zero, noise)["mean"] for j in range(n_functions)])
    else:
        per = np.repeat(mbar[None], n_functions, axis=0)
    multi = per.ndim == 3
    if not multi:
        per, mbar = per[..., None], mbar[..., None]
    f = np.moveaxis(per, -1, 1)  # (J, q, M)
    rows = gen.integers(0, n, (n_functions, n))
    rows[0] = np.arange(n)  # the first draw keeps every row
    fa = np.take_along_axis(f[..., :n], rows[:, None, :], axis=-1)
    fb = np.take_along_axis(f[..., n:2 * n], rows[:, None, :], axis=-1)
    fab = f[..., 2 * n:].reshape(n_functions, f.shape[1], p, n)
    fab = np.take_along_axis(fab, rows[:, None, None, :], axis=-1)
    first, total = saltelli_indices(fa, fb, fab)  # (J, q, p)
    mb = mbar.T  # (q, M)
    est_first, est_total = saltelli_indices(mb[:, :n], mb[:, n:2 * n], mb[:, 2 * n:].reshape(mb.shape[0], p, n))
    fci, tci = _percentiles(first, confidence), _percentiles(total, confidence)
    # the estimate (of the mean response) is kept inside its interval (spread over functions and rows)
    fci = (np.minimum(fci[0], est_first), np.maximum(fci[1], est_first))
    tci = (np.minimum(tci[0], est_total), np.maximum(tci[1], est_total))
    shares: dict[str, np.ndarray] = {}
    if relative_to == "total":
        ab_rows = slice(0, 2 * n)  # A and B: independent draws of the inputs
        var_in = cm["mean"][ab_rows].var(axis=0, ddof=1)
        alea = cm["aleatoric"][ab_rows].mean(axis=0)
        eps = cm["epistemic"][ab_rows].mean(axis=0)
        uns = np.zeros_like(eps)
        if view.split == "unsplit":
            uns, eps = eps, np.zeros_like(eps)
        tot = var_in + alea + eps + uns
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(tot > 0, var_in / tot, 0.0)
            shares = {k: np.where(tot > 0, v / tot, 0.0) for k, v in
                      (("input", var_in), ("aleatoric", alea), ("epistemic", eps), ("unsplit", uns))}
        sc = np.atleast_1d(scale)[:, None]
        est_first, est_total = est_first * sc, est_total * sc
        fci, tci = (fci[0] * sc, fci[1] * sc), (tci[0] * sc, tci[1] * sc)
    if not multi:
        est_first, est_total = est_first[0], est_total[0]
        fci, tci = (fci[0][0], fci[1][0]), (tci[0][0], tci[1][0])
        shares = {k: np.asarray(v).reshape(-1)[0] for k, v in shares.items()}
    return SobolIndices(est_first, est_total, fci, tci, list(dist.names), "saltelli", confidence, relative_to,
                        shares)
