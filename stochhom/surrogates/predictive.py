r"""Predictive laws of a surrogate at test points, and what every score needs from them.

A surrogate predicts, at each test input, a law of the observed apparent property
:math:`y`. Three families cover stochhom's models:

* :class:`Normal`: :math:`y \sim N(\mu, \sigma^2)` (a GPR or PCE fitted to :math:`y`);
* :class:`TruncatedNormal`: the latent :math:`z \sim N(\mu, \sigma^2)` truncated to physical
  bounds, :math:`y = e^z` or :math:`z` (a :class:`~stochhom.surrogates.bounded.BoundedSurrogate`;
  without bounds on the log scale, the lognormal law);
* :class:`Empirical`: a law known by draws (the entries of a tensor predicted by a
  :class:`~stochhom.surrogates.tensor.TensorSurrogate`).

Every scoring rule is evaluated on the physical scale of :math:`y`:

* the mean and standard deviation (RMSE, :math:`R^2`, sharpness) in closed form;
* central intervals and quantiles from the inverse CDF, inside the bounds;
* the standardized residual :math:`\Phi^{-1}(F(y))` (:math:`(y - \mu)/\sigma` for the normal
  law), :math:`N(0, 1)` under calibration, from which coverage, PIT and calibration curves
  follow;
* the log density, with the Jacobian of the latent scale;
* the CRPS by its quantile form (Laio & Tamea 2007),
  :math:`\mathrm{CRPS}(F, y) = 2\int_0^1 (1\{y < q_\tau\} - \tau)(q_\tau - y)\,d\tau`,
  on a midpoint grid of 400 levels (closed form for :class:`Normal`; the tests compare the
  quantile form with the closed-form lognormal CRPS of Baran & Lerch 2015).

References
----------
F. Laio, S. Tamea, Hydrol. Earth Syst. Sci. 11 (2007) 1267 (CRPS from quantiles);
S. Baran, S. Lerch, Q. J. R. Meteorol. Soc. 141 (2015) 2289 (lognormal CRPS);
T. Gneiting, A. E. Raftery, J. Am. Stat. Assoc. 102 (2007) 359.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.stats as st
from scipy import special

from ..errors import InputError

__all__ = ["Empirical", "Normal", "TruncatedNormal", "predictive"]

_CRPS_LEVELS = 400  # midpoint levels of the quantile form of the CRPS


def _check(mean: Any, std: Any) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mean, dtype=float)
    sd = np.broadcast_to(np.asarray(std, dtype=float), mu.shape).copy()
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sd))):
        raise InputError("predictive means and standard deviations must be finite")
    if np.any(sd <= 0):
        raise InputError("predictive standard deviations must be > 0")
    return mu, sd


def _level(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise InputError(f"level must lie in (0, 1), got {level!r}")
    return float(level)


class Normal:
    r"""Gaussian predictive law :math:`N(\mu, \sigma^2)` per point.

    Parameters
    ----------
    mean, std : array_like
        Same shape (``std`` may broadcast); ``std > 0``.
    """

    kind = "normal"

    def __init__(self, mean: Any, std: Any) -> None:
        self.mu, self.sd = _check(mean, std)

    @property
    def mean(self) -> np.ndarray:
        return self.mu

    @property
    def std(self) -> np.ndarray:
        return self.sd

    def standardized(self, y: Any) -> np.ndarray:
        """:math:`(y - \\mu)/\\sigma`."""
        return (np.asarray(y, dtype=float) - self.mu) / self.sd

    def quantile(self, tau: Any) -> np.ndarray:
        return self.mu + self.sd * st.norm.ppf(tau)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central interval of probability ``level``."""
        h = st.norm.ppf(0.5 + _level(level) / 2)
        return self.mu - h * self.sd, self.mu + h * self.sd

    def logpdf(self, y: Any) -> np.ndarray:
        return st.norm.logpdf(np.asarray(y, dtype=float), self.mu, self.sd)

    def crps(self, y: Any) -> np.ndarray:
        z = self.standardized(y)
        return self.sd * (z * (2 * st.norm.cdf(z) - 1) + 2 * st.norm.pdf(z) - 1 / math.sqrt(math.pi))


class TruncatedNormal:
    r"""The latent Gaussian law :math:`N(\mu, \sigma^2)` truncated to bounds and mapped to :math:`y`.

    The predictive law of a :class:`~stochhom.surrogates.bounded.BoundedSurrogate` (a truncated
    lognormal on the log scale). See :class:`~stochhom.surrogates.bounded.Truncation` for the
    formulas.

    Parameters
    ----------
    mean, std : array_like
        Latent mean and standard deviation (before truncation).
    truncation : Truncation
        The bounds and the scale at the same points.
    """

    kind = "truncated normal"

    def __init__(self, mean: Any, std: Any, truncation: Any) -> None:
        self.mu, self.sd = _check(mean, std)
        self.truncation = truncation
        self._moments: tuple[np.ndarray, np.ndarray] | None = None

    def _m(self) -> tuple[np.ndarray, np.ndarray]:
        if self._moments is None:
            self._moments = self.truncation.moments(self.mu, self.sd**2)
        return self._moments

    @property
    def mean(self) -> np.ndarray:
        """:math:`E[y]`, in closed form."""
        return self._m()[0]

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self._m()[1])

    def standardized(self, y: Any) -> np.ndarray:
        r"""The normal score of the PIT, :math:`\Phi^{-1}(F(y))`: :math:`N(0, 1)` under calibration
        (the standardized residual of a Gaussian law), computed in log space in both tails and
        limited to :math:`\pm 8.3` (a PIT of :math:`10^{-16}`) for an observation on a bound."""
        log_f, log_sf = self.truncation.log_cdf_parts(y, self.mu, self.sd**2)
        with np.errstate(invalid="ignore"):
            z = np.where(log_f < np.log(0.5), special.ndtri_exp(np.minimum(log_f, 0.0)),
                         -special.ndtri_exp(np.minimum(log_sf, 0.0)))
        return np.clip(np.nan_to_num(z, nan=0.0), -8.3, 8.3)

    def quantile(self, tau: Any) -> np.ndarray:
        return self.truncation.quantile(tau, self.mu, self.sd**2)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central interval of probability ``level``: always inside the bounds."""
        p = _level(level)
        return self.quantile((1 - p) / 2), self.quantile((1 + p) / 2)

    def logpdf(self, y: Any) -> np.ndarray:
        return self.truncation.logpdf(y, self.mu, self.sd**2)

    def crps(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        tau = (np.arange(_CRPS_LEVELS) + 0.5) / _CRPS_LEVELS
        q = self.truncation.quantile(tau.reshape(-1, *([1] * self.mu.ndim)), self.mu[None], (self.sd**2)[None])
        d = q - y[None]
        return 2.0 * np.mean(((y[None] < q) - tau.reshape(-1, *([1] * self.mu.ndim))) * d, axis=0)


class Empirical:
    r"""A predictive law known by draws: ``samples`` of shape ``(S, n)``, ``S`` draws per point.

    For outputs that are nonlinear functions of a Gaussian latent vector (the entries of a
    tensor predicted through its log-Cholesky features). Scores from the draws:

    * mean, standard deviation and quantiles of the draws;
    * the standardized residual :math:`\Phi^{-1}(\hat F(y))` with the mid-rank PIT
      :math:`\hat F(y) = (\#\{x_s < y\} + \tfrac12\#\{x_s = y\} + \tfrac12)/(S + 1)`;
    * the log density of a Gaussian kernel density estimate (Silverman's bandwidth);
    * the CRPS by its sample form :math:`\frac1S\sum_s |x_s - y| - \frac1{2S^2}\sum_{s,t}
      |x_s - x_t|` (the second sum from the sorted draws, :math:`O(S \log S)`).
    """

    kind = "empirical"

    def __init__(self, samples: Any) -> None:
        x = np.asarray(samples, dtype=float)
        if x.ndim != 2 or x.shape[0] < 2:
            raise InputError(f"samples must be (S, n) with S >= 2 draws per point, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise InputError("samples contain NaN or inf")
        self.draws = np.sort(x, axis=0)

    @property
    def mean(self) -> np.ndarray:
        return self.draws.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return np.maximum(self.draws.std(axis=0, ddof=1), 1e-300)

    def quantile(self, tau: Any) -> np.ndarray:
        return np.quantile(self.draws, tau, axis=0)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        p = _level(level)
        return self.quantile((1 - p) / 2), self.quantile((1 + p) / 2)

    def standardized(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        below = (self.draws < y[None]).sum(axis=0)
        ties = (self.draws == y[None]).sum(axis=0)
        pit = (below + 0.5 * ties + 0.5) / (self.draws.shape[0] + 1)
        return st.norm.ppf(pit)

    def logpdf(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        s = self.draws.shape[0]
        h = 1.06 * self.std * s ** (-0.2)  # Silverman's rule of thumb
        u = (y[None] - self.draws) / h[None]
        return special.logsumexp(-0.5 * u**2, axis=0) - np.log(s * h * math.sqrt(2 * math.pi))

    def crps(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        s = self.draws.shape[0]
        first = np.mean(np.abs(self.draws - y[None]), axis=0)
        k = np.arange(1, s + 1)[:, None]
        spread = np.sum((2 * k - s - 1) * self.draws, axis=0) / s**2  # = (1/2S^2) sum |x_s - x_t|
        return first - spread


def predictive(model: Any, X: Any) -> Normal | TruncatedNormal:
    """The predictive law of a fitted surrogate at ``X``: the model's own ``predictive``
    (e.g. :class:`~stochhom.surrogates.bounded.BoundedSurrogate`) or :class:`Normal` from
    ``predict(X, return_std=True)``."""
    if hasattr(model, "predictive"):
        return model.predictive(X)
    mean, std = model.predict(X, return_std=True)
    return Normal(mean, std)
