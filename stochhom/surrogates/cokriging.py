r"""Multi-fidelity Gaussian processes: autoregressive co-kriging (Kennedy and O'Hagan).

Two codes compute the same quantity: a cheap *low-fidelity* one (a coarse grid, a mean-field
estimate, a small SVE), run at many parameter points, and an expensive *high-fidelity* one,
run at few. The autoregressive model of Kennedy and O'Hagan (2000) links them by

.. math:: f_{hi}(x) = \rho\, f_{lo}(x) + \delta(x), \qquad
          f_{lo} \sim GP(m_{lo}, k_{lo}), \quad \delta \sim GP(m_\delta, k_\delta), \quad
          f_{lo} \perp \delta ,

a scale factor :math:`\rho` and a discrepancy :math:`\delta` independent of the low fidelity.
The observations are :math:`y_{lo,i} = f_{lo}(x_{lo,i}) + \varepsilon_{lo,i}` and
:math:`y_i = f_{hi}(x_i) + \varepsilon_i`, each with its own noise.

It is fitted recursively (Le Gratiet and Garnier 2014): first :math:`f_{lo}` alone, an
ordinary :class:`~stochhom.surrogates.gpr.GPR` on the low-fidelity data; then, with its
posterior mean :math:`\mu_{lo}` plugged in at the high-fidelity points, :math:`\rho` and
:math:`\delta` from the high-fidelity data,

.. math:: y_i - \rho\,\mu_{lo}(x_i) = \delta(x_i) + \varepsilon_i ,

a second :class:`~stochhom.surrogates.gpr.GPR` (constant mean :math:`m_\delta`, stationary
kernel, the high-fidelity noise). :math:`\rho` and :math:`m_\delta` are the coefficients of
a linear trend :math:`F\beta`, :math:`F = [\mu_{lo}(X), \mathbf 1]`, of the residual's GP
(universal kriging), and at the covariance :math:`A = K_\delta + \Sigma` of the discrepancy
their maximum-likelihood value is the generalized-least-squares estimate

.. math:: \hat\beta = (F^T A^{-1} F)^{-1} F^T A^{-1} y, \qquad
          \mathrm{Var}\,\hat\beta = (F^T A^{-1} F)^{-1} .

The covariance parameters in turn maximize the marginal likelihood of the residual at the
current :math:`\rho`. :class:`CoKriging` alternates the two steps: each step cannot lower
the joint likelihood, and at a fixed point :math:`d\ell_p/d\rho = 0` for the profile
likelihood :math:`\ell_p(\rho) = \max_{m, \vartheta} \log p(y - \rho\mu_{lo} \mid m,
\vartheta)` (the envelope theorem), so the estimate is the profile-likelihood estimate.
The profile can have several modes (the Forrester benchmark's has a broad one at 0.95 and
a sharp, higher one at the true 2), so the alternation runs from two starts, the
least-squares :math:`\rho` and the GLS :math:`\rho` at the best of a grid of covariances
(``_grid_rho``), and the higher likelihood wins. The GLS step is closed form, so a fit
costs a few ordinary GP fits (3-8 measured) instead of the 20-30 of a one-dimensional
search over :math:`\rho`, which moreover misses a mode as narrow as Forrester's;
:meth:`CoKriging.profile_log_likelihood` evaluates :math:`\ell_p` directly, in the units
of ``y`` (a GP fitted to a residual standardized by :math:`s` has the likelihood of the
standardized data; that of the residual itself is lower by :math:`n\log s`, which depends
on :math:`\rho`). With ``rho="select"`` the fitted :math:`\rho` is kept only if the
likelihood-ratio test rejects :math:`\rho = 0` at 5 % (:math:`2(\ell_p(\hat\rho) -
\ell_p(0)) \ge 3.84`); otherwise the model is the high-fidelity GP alone, which an
unrelated low fidelity cannot then degrade.

Prediction at :math:`x_*` combines the two posteriors, independent by construction:

.. math:: \mu(x_*) = \rho\,\mu_{lo}(x_*) + \mu_\delta(x_*), \qquad
          v(x_*) = (\rho^2 + s_\rho^2)\, v_{lo}(x_*) + v_\delta(x_*)
                   + s_\rho^2\, \tilde u(x_*)^2, \qquad
          \mathrm{Var}\,[y_*] = v(x_*) + \sigma^2(x_*) ,

the epistemic variance :math:`v` of the latent high-fidelity function and the aleatoric
:math:`\sigma^2`, the noise of the high fidelity (learned by the discrepancy's GP).

**The estimated** :math:`\rho`. :math:`\rho` and the discrepancy's mean are the GLS
coefficients of the trend :math:`h(x) = (\mu_{lo}(x), 1)`, so the prediction carries the
universal-kriging variance of an estimated trend, :math:`u^T (F^TA^{-1}F)^{-1} u` with
:math:`u(x) = h(x) - F^TA^{-1}k(X, x)` (Kennedy and O'Hagan 2000; Le Gratiet and
Garnier 2014). Its constant-mean part is already in :math:`v_\delta` (ordinary kriging);
the rest is, by the Schur complement of the :math:`2\times2` information matrix,
:math:`s_\rho^2 \tilde u(x)^2` with :math:`s_\rho` = ``rho_std_`` and

.. math:: \tilde u(x) = \mu_{lo}(x) - \mu_{lo}(X)^T A^{-1} k(X, x)
          - r(x)\, \frac{\mathbf 1^T A^{-1} \mu_{lo}(X)}{\mathbf 1^T A^{-1} \mathbf 1},
          \qquad r(x) = 1 - \mathbf 1^T A^{-1} k(X, x),

which is small at the high-fidelity points and grows where :math:`\mu_{lo}` leaves the
range it was fitted on. :math:`s_\rho^2 v_{lo}` is the part of
:math:`\mathrm{Var}(\rho f_{lo})` that the plug-in :math:`\rho^2 v_{lo}` misses.

Assumptions and what is left out:

* nested designs are not required: :math:`\mu_{lo}` is evaluated wherever the high-fidelity
  points are; its uncertainty at those points is ignored when :math:`\rho` and
  :math:`\delta` are fitted (as in the recursive formulation, where it vanishes for nested
  noise-free designs), and counted in the prediction through :math:`\rho^2 v_{lo}`;
* :math:`\rho` is a constant; its estimation error is in the predictive variance (above),
  that of the covariance parameters is not (as for :class:`~stochhom.surrogates.gpr.GPR`);
  a :math:`\rho` given by the user, or set to 0 by ``rho="select"``, is taken as known;
* one output; two levels of fidelity.

References
----------
Kennedy, M. C. and O'Hagan, A. (2000). Predicting the output from a complex computer code
when fast approximations are available. *Biometrika* 87, 1-13.

Le Gratiet, L. and Garnier, J. (2014). Recursive co-kriging model for design of computer
experiments with multiple levels of fidelity. *Int. J. Uncertain. Quantif.* 4, 365-386.

Forrester, A. I. J., Sóbester, A. and Keane, A. J. (2007). Multi-fidelity optimization via
surrogate modelling. *Proc. R. Soc. A* 463, 3251-3269.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import math
import numbers
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
from sklearn.base import clone

from ..errors import InputError, OutOfDomainWarning
from .base import SurrogateBase, check_is_fitted, check_X, check_Xy

__all__ = ["CoKriging"]

_MIN_HIGH = 3  # high-fidelity points at least: rho, the discrepancy's mean, scale, length and noise
_MAX_ALTERNATIONS = 12  # GLS / marginal-likelihood alternations per start at most (2-4 measured)
_RHO_RTOL = 1e-3  # stop when rho changes by less than this times its natural scale sd(y)/sd(mu_lo)
_Z95 = 1.959963984540054  # standard normal quantile of 0.975
_CHI2_95 = _Z95**2  # chi-square(1) quantile of 0.95: the likelihood-ratio test of rho = 0
_LOW_CACHE: collections.OrderedDict[str, Any] = collections.OrderedDict()  # fitted low-fidelity GPs
_LOW_CACHE_SIZE = 8


def _default_gp() -> Any:
    from .gpr import GPR

    return GPR(random_state=0)


def _low_data(X_low: Any, y_low: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated low-fidelity data, ``(n, p)`` and ``(n,)``."""
    if X_low is None or y_low is None:
        missing = "X_low" if X_low is None else "y_low"
        raise InputError(f"{missing} is missing: CoKriging needs the low-fidelity data as CoKriging(X_low, y_low); "
                         "fit(X, y) then takes the high-fidelity data")
    out = []
    for name, a in (("X_low", X_low), ("y_low", y_low)):
        try:
            arr = np.asarray(a, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be numeric, got {type(a).__name__}") from None
        out.append(arr)
    xl, yl = out
    if xl.ndim != 2:
        raise InputError(f"X_low must be 2-D (n_low, n_features), got shape {xl.shape}; "
                         "reshape a single feature with X_low.reshape(-1, 1)")
    if yl.ndim == 2 and yl.shape[1] == 1:
        yl = yl[:, 0]
    if yl.ndim != 1:
        raise InputError(f"y_low must be 1-D (one output), got shape {yl.shape}; "
                         "CoKriging models a single output: fit one model per output")
    if xl.shape[0] != yl.shape[0]:
        raise InputError(f"X_low and y_low have different numbers of samples: {xl.shape[0]} and {yl.shape[0]}")
    if xl.shape[0] < 2:
        raise InputError(f"at least 2 low-fidelity samples are needed, got {xl.shape[0]}")
    for name, arr in (("X_low", xl), ("y_low", yl)):
        if not np.all(np.isfinite(arr)):
            bad = int((~np.isfinite(arr.reshape(arr.shape[0], -1))).any(axis=1).sum())
            raise InputError(f"{name} has {bad} row(s) with NaN or inf; drop the failed low-fidelity runs first")
    return xl, yl


def _check_template(model: Any, name: str) -> Any:
    from .gpr import GPR

    if model is None:
        return _default_gp()
    if not isinstance(model, GPR):
        raise InputError(f"{name} must be an (unfitted) stochhom GPR used as a template, got {type(model).__name__}")
    return model


def _cache_key(model: Any, X_low: np.ndarray, y_low: np.ndarray, nv: Any) -> str | None:
    """Key of a low-fidelity fit, or None when the fit is not reproducible (no integer seed)."""
    params = model.get_params()
    if not isinstance(params.get("random_state"), (int, np.integer)):
        return None
    h = hashlib.sha256()
    for a in (X_low, y_low, None if nv is None else np.asarray(nv, dtype=float)):
        h.update(b"none" if a is None else repr(a.shape).encode() + np.ascontiguousarray(a).tobytes())
    h.update(repr(sorted((k, repr(v)) for k, v in params.items())).encode())
    h.update(type(model).__qualname__.encode())
    return h.hexdigest()


def _fit_low(model: Any, X_low: np.ndarray, y_low: np.ndarray, nv: Any) -> Any:
    """The fitted low-fidelity GP, from a small cache of deterministic fits: cross-validation
    clones and refits the co-kriging model per fold with the same low-fidelity data."""
    key = _cache_key(model, X_low, y_low, nv)
    if key is not None and key in _LOW_CACHE:
        _LOW_CACHE.move_to_end(key)
        return copy.deepcopy(_LOW_CACHE[key])
    fitted = clone(model).fit(X_low, y_low, **({} if nv is None else {"noise_variance": nv}))
    if key is not None:
        _LOW_CACHE[key] = copy.deepcopy(fitted)
        while len(_LOW_CACHE) > _LOW_CACHE_SIZE:
            _LOW_CACHE.popitem(last=False)
    return fitted


def _grid_rho(X: np.ndarray, y: np.ndarray, F: np.ndarray) -> float:
    r"""Start of :math:`\rho`: the GLS estimate at the best of a grid of discrepancy covariances.

    The profile likelihood of :math:`\rho` can have several modes: where the residual
    :math:`y - \rho\mu_{lo}` becomes smooth the likelihood jumps (the Forrester benchmark's
    true :math:`\rho = 2` is a peak 0.2 wide, 2.6 nats above a broad mode at 0.95). Searched
    over the covariance instead, the landscape is tame: for each isotropic Matérn-5/2
    correlation :math:`R_\ell` (length scales from 0.05 to 20 times :math:`\sqrt p`, in
    standardized inputs) and nugget ratio :math:`g`, :math:`\beta` and the variance are
    profiled out in closed form (universal kriging),

    .. math:: \ell_c(\ell, g) = -\tfrac n2 \log \hat s^2 - \tfrac12\log|R_\ell + gI|,
              \qquad \hat s^2 = r^T (R_\ell + gI)^{-1} r / n, \quad r = y - F\hat\beta ,

    and the :math:`\hat\rho` of the best grid point starts an alternation.
    """
    n, p = X.shape
    sd = X.std(axis=0)
    z = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    best = (-np.inf, float(np.linalg.lstsq(F, y, rcond=None)[0][0]))
    for ell in math.sqrt(p) * np.geomspace(0.05, 20.0, 16):
        u = math.sqrt(5.0) * d / ell
        corr = (1.0 + u + u * u / 3.0) * np.exp(-u)
        for g in (1e-6, 1e-3, 1e-2, 1e-1, 1.0):
            try:
                c = scipy.linalg.cho_factor(corr + g * np.eye(n), lower=True, check_finite=False)
            except np.linalg.LinAlgError:
                continue
            ainv_f = scipy.linalg.cho_solve(c, F, check_finite=False)
            try:
                beta = np.linalg.solve(F.T @ ainv_f, ainv_f.T @ y)
            except np.linalg.LinAlgError:
                continue
            r = y - F @ beta
            s2 = float(r @ scipy.linalg.cho_solve(c, r, check_finite=False)) / n
            if not s2 > 0:
                continue
            ll = -0.5 * n * math.log(s2) - float(np.log(np.diag(c[0])).sum())
            if ll > best[0]:
                best = (ll, float(beta[0]))
    return best[1]


def _quiet_mean(model: Any, X: np.ndarray) -> np.ndarray:
    """Predictive mean of a sub-model without its extrapolation warning (the co-kriging
    model warns once, against the high-fidelity box)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        return np.asarray(model.predict(X), dtype=float)


class CoKriging(SurrogateBase):
    r"""Autoregressive co-kriging: :math:`f_{hi}(x) = \rho f_{lo}(x) + \delta(x)`.

    A two-fidelity Gaussian process (Kennedy and O'Hagan 2000), fitted recursively (Le
    Gratiet and Garnier 2014); see the module docstring for the equations. The
    low-fidelity data are parameters of the model, so that ``fit(X, y)`` takes the
    high-fidelity data only: cross-validation, which clones and refits the model, holds out
    high-fidelity points and always keeps all the low-fidelity ones.

    Parameters
    ----------
    X_low : array_like, shape (n_low, p)
        Inputs of the low-fidelity runs.
    y_low : array_like, shape (n_low,)
        Low-fidelity outputs (one output).
    noise_variance_low : array_like, shape (n_low,), optional
        Per-point noise variances of ``y_low``; needs ``low_model`` with ``noise="fixed"``.
    low_model, high_model : GPR, optional
        Unfitted :class:`~stochhom.surrogates.gpr.GPR` templates of the low-fidelity GP and
        of the discrepancy :math:`\delta` (kernel, noise model, restarts); they are cloned,
        never fitted in place. Default ``GPR(random_state=0)``. ``high_model``'s noise model
        is that of the high-fidelity data: ``noise="fixed"`` takes
        ``fit(X, y, noise_variance=...)``.
    rho : "select", "fit" or float
        ``"fit"``: estimate :math:`\rho` by maximum (profile) likelihood; ``"select"`` (the
        default): the same, but :math:`\rho = 0` unless the likelihood-ratio test rejects it
        at 5 % (an unrelated low fidelity then costs nothing; an estimated null :math:`\rho`
        costs about 10 % of RMSE with a dozen high-fidelity points, and a low-fidelity mean
        that hardly varies at the high-fidelity points can give a wild estimate: -3147 was
        measured in ``benchmarks/bench_multifidelity.py``); a number: keep it fixed
        (``rho=0`` gives an ordinary GP of the high-fidelity data; ``rho=1`` models the high
        fidelity as the low one plus a correction).

    Attributes
    ----------
    rho_ : float
        The scale factor :math:`\rho` (fitted or fixed).
    rho_std_ : float
        Standard error of a fitted :math:`\rho`, :math:`\sqrt{[(F^T A^{-1} F)^{-1}]_{11}}` at
        the fitted covariance of :math:`\delta` (conditional on it, so somewhat optimistic
        for few points); 0 for a fixed :math:`\rho`.
    rho_estimated_ : bool
        Whether :math:`\rho` was estimated (and its error is in the predictive variance);
        False for a given :math:`\rho` and for one that ``"select"`` set to 0.
    rho_interval_ : tuple of float
        95 % Wald interval :math:`\rho \pm 1.96\,` ``rho_std_``.
    low_model_, delta_model_ : GPR
        The fitted low-fidelity GP and the discrepancy's GP (its noise is the high fidelity's).
    profile_ : list of tuple
        ``(rho, log-likelihood)`` of every alternation, the log-likelihood of the residual
        :math:`y - \rho\mu_{lo}(X)` in the units of ``y`` (:meth:`profile_log_likelihood`).
    n_iter_ : int
        Alternations used (1 for a fixed :math:`\rho`).
    X_train_, y_train_ : numpy.ndarray
        High-fidelity training data, ``y_train_`` as ``(n, 1)``.
    x_min_, x_max_ : numpy.ndarray
        The high-fidelity training box; predictions outside are flagged ``out_of_domain``.
    n_features_in_, n_outputs_ : int

    Notes
    -----
    The fitted low-fidelity GP is kept in a small cache (the last 8 fits, keyed by the data
    and ``low_model``'s parameters, when its ``random_state`` is an integer so that a refit
    would give the same model): the folds of a cross-validation do not refit it.

    Examples
    --------
    >>> import numpy as np
    >>> f_hi = lambda x: (6 * x - 2) ** 2 * np.sin(12 * x - 4)
    >>> f_lo = lambda x: 0.5 * f_hi(x) + 10 * (x - 0.5) - 5
    >>> x_lo = np.linspace(0, 1, 11)[:, None]; x_hi = np.array([[0.0], [0.4], [0.6], [1.0]])
    >>> model = CoKriging(x_lo, f_lo(x_lo[:, 0])).fit(x_hi, f_hi(x_hi[:, 0]))
    >>> mean, std = model.predict(np.array([[0.75]]), return_std=True)
    """

    def __init__(
        self,
        X_low: Any = None,
        y_low: Any = None,
        noise_variance_low: Any = None,
        low_model: Any = None,
        high_model: Any = None,
        rho: Any = "select",
    ) -> None:
        self.X_low = X_low
        self.y_low = y_low
        self.noise_variance_low = noise_variance_low
        self.low_model = low_model
        self.high_model = high_model
        self.rho = rho

    # -- validation ------------------------------------------------------------------------

    def _check_rho(self) -> float | None:
        """None for ``"fit"`` and ``"select"``, else the fixed value."""
        if isinstance(self.rho, str):
            if self.rho in ("fit", "select"):
                return None
        elif isinstance(self.rho, numbers.Real) and not isinstance(self.rho, bool) and math.isfinite(self.rho):
            return float(self.rho)
        raise InputError(f'rho must be "fit" or "select" (estimate it) or a finite number (keep it fixed), '
                         f"got {self.rho!r}")

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, noise_variance: Any = None) -> CoKriging:
        r"""Fit the low-fidelity GP, then :math:`\rho` and the discrepancy :math:`\delta`.

        Parameters
        ----------
        X : array_like, shape (n, p)
            High-fidelity inputs (at least 3 points), the features of ``X_low``.
        y : array_like, shape (n,)
            High-fidelity outputs (one output).
        noise_variance : array_like, shape (n,), optional
            Per-point noise variances of ``y``; needs ``high_model`` with ``noise="fixed"``.

        Returns
        -------
        CoKriging
            ``self``.
        """
        fixed_rho = self._check_rho()
        low_template = _check_template(self.low_model, "low_model")
        high_template = _check_template(self.high_model, "high_model")
        X_low, y_low = _low_data(self.X_low, self.y_low)
        y_arr = np.asarray(y) if y is not None else None
        if y_arr is not None and y_arr.ndim == 2 and y_arr.shape[1] > 1:
            raise InputError(f"y has {y_arr.shape[1]} outputs; CoKriging models a single output (1-D y): "
                             "fit one model per output")
        Xa, Ya, one_d = check_Xy(X, y, min_samples=1)
        if Xa.shape[0] < _MIN_HIGH:
            raise InputError(f"co-kriging needs at least {_MIN_HIGH} high-fidelity points (rho, the discrepancy's "
                             f"mean, scale and length), got {Xa.shape[0]}; add high-fidelity runs")
        if Xa.shape[1] != X_low.shape[1]:
            raise InputError(f"the high-fidelity X has {Xa.shape[1]} feature(s) but X_low has {X_low.shape[1]}; "
                             "both fidelities must be functions of the same inputs")
        ya = Ya[:, 0]
        n = len(ya)

        self.low_model_ = _fit_low(low_template, X_low, y_low, self.noise_variance_low)
        mu = _quiet_mean(self.low_model_, Xa)
        fit_kw = {} if noise_variance is None else {"noise_variance": noise_variance}

        def fit_delta(rho: float) -> tuple[Any, float]:
            model = clone(high_template).fit(Xa, ya - rho * mu, **fit_kw)
            scale = float(model.y_scaler_.scale[0])
            return model, float(model.log_marginal_likelihood_[0]) - n * math.log(scale)

        profile: list[tuple[float, float]] = []
        if fixed_rho is not None:
            delta, lml = fit_delta(fixed_rho)
            rho, rho_var, profile = fixed_rho, 0.0, [(fixed_rho, lml)]
        else:
            F = np.column_stack([mu, np.ones(n)])
            sd_mu = float(mu.std())
            if sd_mu <= 1e-12 * max(float(np.abs(mu).max()), 1e-300):
                raise InputError("the low-fidelity mean is constant over the high-fidelity points, so rho cannot be "
                                 "estimated (it is confounded with the discrepancy's mean); pass a fixed rho")
            rho_scale = max(float(ya.std()), 1e-300) / sd_mu
            # two starts: the GLS rho at the best of a covariance grid, and least squares
            starts = [_grid_rho(Xa, ya, F), float(np.linalg.lstsq(F, ya, rcond=None)[0][0])]
            best, ends = None, []
            for rho in starts:
                for _ in range(_MAX_ALTERNATIONS):
                    if any(abs(rho - e) <= 10 * _RHO_RTOL * rho_scale for e in ends):
                        break  # joined the path of an earlier start
                    delta, lml = fit_delta(rho)
                    new_rho, var = self._gls(delta, F, ya)
                    profile.append((rho, lml))
                    if best is None or lml > best[1]:
                        best = (rho, lml, delta, var)
                    if abs(new_rho - rho) <= _RHO_RTOL * rho_scale:
                        break
                    rho = new_rho
                ends.append(rho)
            rho, lml, delta, rho_var = best
            if self.rho == "select" and rho != 0.0:
                delta0, lml0 = fit_delta(0.0)
                profile.append((0.0, lml0))
                if 2.0 * (lml - lml0) < _CHI2_95:  # not significant: the high-fidelity GP alone
                    rho, delta, rho_var = 0.0, delta0, self._gls(delta0, F, ya)[1]
        self.rho_ = float(rho)
        self.rho_std_ = math.sqrt(max(rho_var, 0.0))
        self.rho_estimated_ = fixed_rho is None and rho != 0.0
        self._trend_ = None
        self.rho_interval_ = (self.rho_ - _Z95 * self.rho_std_, self.rho_ + _Z95 * self.rho_std_)
        self.delta_model_ = delta
        self.profile_ = profile
        self._fit_kw_ = fit_kw
        self.n_iter_ = len(profile)
        self.X_train_ = Xa
        self.y_train_ = Ya
        self.n_features_in_ = Xa.shape[1]
        self.n_outputs_ = 1
        self._y_1d_ = one_d
        self.x_min_ = Xa.min(axis=0)
        self.x_max_ = Xa.max(axis=0)
        return self

    @staticmethod
    def _gls(delta: Any, F: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        r""":math:`\hat\rho` and its variance by GLS at the covariance of the fitted ``delta``:
        :math:`\hat\beta = (F^T A^{-1}F)^{-1}F^T A^{-1}y`, :math:`\mathrm{Var}\,\hat\beta =
        (F^T A^{-1}F)^{-1}` with :math:`A = s^2 A_z` in the units of ``y`` (:math:`A_z` the
        standardized kernel matrix plus noise whose Cholesky factor the GP holds, :math:`s`
        the residual's standardization scale)."""
        fitted = delta.models_[0]
        ainv_f = scipy.linalg.cho_solve((fitted.chol, True), F, check_finite=False)
        info = F.T @ ainv_f
        beta = np.linalg.solve(info, ainv_f.T @ y)
        cov = np.linalg.inv(info) * float(delta.y_scaler_.scale[0]) ** 2
        return float(beta[0]), float(cov[0, 0])

    def profile_log_likelihood(self, rho: Any) -> np.ndarray:
        r"""Profile log-likelihood :math:`\ell_p(\rho)` of the high-fidelity data, given
        :math:`\mu_{lo}`, at each value of ``rho``.

        .. math:: \ell_p(\rho) = \max_{m, \vartheta} \log p(y - \rho\,\mu_{lo}(X)
                  \mid m, \vartheta) = \ell_z(\rho) - n \log s(\rho) ,

        where the discrepancy's GP is refitted at each :math:`\rho` on the residual
        standardized by its standard deviation :math:`s(\rho)`, and :math:`\ell_z` is its
        maximized log marginal likelihood (``log_marginal_likelihood_``, standardized
        units). A 95 % profile-likelihood interval of :math:`\rho` is
        :math:`\{\rho: 2(\ell_p(\hat\rho) - \ell_p(\rho)) \le 3.84\}`.

        Parameters
        ----------
        rho : float or array_like
            Values of :math:`\rho`.

        Returns
        -------
        numpy.ndarray
            :math:`\ell_p`, the shape of ``rho``, in the units of ``y`` (nats).
        """
        check_is_fitted(self, "delta_model_")
        rhos = np.asarray(rho, dtype=float)
        mu = _quiet_mean(self.low_model_, self.X_train_)
        y = self.y_train_[:, 0]
        template = _check_template(self.high_model, "high_model")
        out = np.empty(rhos.size)
        for i, r in enumerate(rhos.ravel()):
            model = clone(template).fit(self.X_train_, y - r * mu, **self._fit_kw_)
            out[i] = float(model.log_marginal_likelihood_[0]) - len(y) * math.log(float(model.y_scaler_.scale[0]))
        return out.reshape(rhos.shape)

    # -- prediction ------------------------------------------------------------------------

    def _inputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "delta_model_")
        return check_X(X, self.n_features_in_)

    def _out_of_domain(self, Xa: np.ndarray) -> np.ndarray:
        return np.any((Xa < self.x_min_) | (Xa > self.x_max_), axis=1)

    def _column(self, a: np.ndarray) -> np.ndarray:
        return self._shape_output(np.asarray(a, dtype=float).reshape(-1, 1))

    def _parts(self, Xa: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return self.low_model_.predict_components(Xa), self.delta_model_.predict_components(Xa)

    def _rho_var(self) -> float:
        """:math:`s_\\rho^2` when :math:`\\rho` was estimated, else 0."""
        return self.rho_std_**2 if self.rho_estimated_ else 0.0

    def _rho_term(self, Xa: np.ndarray, mu_lo: np.ndarray) -> np.ndarray:
        r""":math:`s_\rho \tilde u(x)` at the rows of ``Xa`` (``mu_lo``: the low-fidelity
        mean there), the standard deviation that the estimation of :math:`\rho` adds (see
        the module docstring); 0 for a known :math:`\rho`."""
        if not self.rho_estimated_ or self.rho_std_ == 0.0:
            return np.zeros(len(Xa))
        fitted = self.delta_model_.models_[0]
        if self._trend_ is None:
            mu_train = _quiet_mean(self.low_model_, self.X_train_).ravel()
            self._trend_ = (mu_train, float(fitted.u1 @ mu_train) / fitted.c1)
        mu_train, g = self._trend_
        w = self.delta_model_._kriging_weights(Xa)  # A^-1 k(X, x), (n, m)
        r = 1.0 - w.sum(axis=0)
        return self.rho_std_ * (np.asarray(mu_lo, dtype=float).ravel() - mu_train @ w - r * g)

    def predict(self, X: Any, return_std: bool = False):
        r"""Predictive mean :math:`\rho\mu_{lo} + \mu_\delta`, and with ``return_std`` the
        total standard deviation :math:`\sqrt{v + \sigma^2}` (:meth:`predict_components`) of a new
        high-fidelity observation. Warns (:class:`~stochhom.errors.OutOfDomainWarning`) for
        points outside the high-fidelity training box."""
        Xa = self._inputs(X)
        outside = int(self._out_of_domain(Xa).sum())
        if outside:
            warnings.warn(f"{outside} of {len(Xa)} point(s) lie outside the high-fidelity training box: co-kriging "
                          "extrapolates (see predict_components(X)['out_of_domain'])", OutOfDomainWarning,
                          stacklevel=2)
        if not return_std:
            return self._column(self.rho_ * _quiet_mean(self.low_model_, Xa) + _quiet_mean(self.delta_model_, Xa))
        c = self.predict_components(Xa)
        return c["mean"], c["std"]

    def predict_components(self, X: Any) -> dict[str, np.ndarray]:
        r"""Predictive mean and the split of the predictive uncertainty, as
        :meth:`GPR.predict_components <stochhom.surrogates.gpr.GPPosterior.predict_components>`.

        Returns
        -------
        dict
            ``"mean"`` (:math:`\rho\mu_{lo} + \mu_\delta`), ``"std"``
            (:math:`\sqrt{v + \sigma^2}`), ``"epistemic_std"`` (:math:`\sqrt v`,
            :math:`v = (\rho^2 + s_\rho^2) v_{lo} + v_\delta + s_\rho^2 \tilde u^2`, see the
            module docstring), ``"aleatoric_std"`` (:math:`\sigma`, the high-fidelity noise),
            each with the shape of ``y``; ``"out_of_domain"`` (n,) bool: outside the
            high-fidelity training box.
        """
        Xa = self._inputs(X)
        lo, de = self._parts(Xa)
        mean = self.rho_ * lo["mean"] + de["mean"]
        epistemic = ((self.rho_**2 + self._rho_var()) * lo["epistemic_std"] ** 2 + de["epistemic_std"] ** 2
                     + self._rho_term(Xa, lo["mean"]).reshape(np.shape(lo["mean"])) ** 2)
        aleatoric = de["aleatoric_std"] ** 2
        return {
            "mean": self._column(mean),
            "std": self._column(np.sqrt(epistemic + aleatoric)),
            "epistemic_std": self._column(np.sqrt(epistemic)),
            "aleatoric_std": self._column(np.sqrt(aleatoric)),
            "out_of_domain": self._out_of_domain(Xa),
        }

    def noise_variance(self, X: Any) -> np.ndarray:
        """Aleatoric variance :math:`\\sigma^2(x)` of the high fidelity at ``X`` (the
        discrepancy GP's noise), in output units squared."""
        Xa = self._inputs(X)
        return self._column(self.delta_model_.noise_variance(Xa))

    def variance_shares(self, X: Any) -> dict[str, float]:
        r"""Shares of the epistemic variance over ``X``: of the low fidelity, of the
        discrepancy and of the estimation of :math:`\rho`,

        .. math:: s_\delta = \frac{\sum_j v_\delta(x_j)}{\sum_j v(x_j)}, \qquad
                  s_\rho = \frac{\sum_j s_\rho^2 \tilde u(x_j)^2}{\sum_j v(x_j)}, \qquad
                  s_{lo} = 1 - s_\delta - s_\rho ,

        with :math:`v = (\rho^2 + s_\rho^2) v_{lo} + v_\delta + s_\rho^2 \tilde u^2` (module
        docstring): the shares of the epistemic variance integrated over the points (a ratio of means,
        not a mean of ratios, which points where both variances vanish, e.g. noise-free
        training points, would dominate). A small :math:`s_\delta` says the high-fidelity
        prediction is limited by the low-fidelity model; a large one, by the few
        high-fidelity runs.

        Returns
        -------
        dict
            ``{"rho": rho_, "low": s_lo, "discrepancy": s_delta, "rho_estimation": s_rho}``.
        """
        Xa = self._inputs(X)
        lo, de = self._parts(Xa)
        v_lo = float(np.sum((self.rho_**2 + self._rho_var()) * lo["epistemic_std"] ** 2))
        v_de = float(np.sum(de["epistemic_std"] ** 2))
        v_rho = float(np.sum(self._rho_term(Xa, lo["mean"]) ** 2))
        total = v_lo + v_de + v_rho
        s_de, s_rho = (v_de / total, v_rho / total) if total > 0 else (0.0, 0.0)
        return {"rho": self.rho_, "low": 1.0 - s_de - s_rho, "discrepancy": s_de, "rho_estimation": s_rho}

    def sample_functions(self, X: Any, n_samples: int, rng: Any = None) -> np.ndarray:
        r"""Joint posterior samples of the latent high-fidelity function at ``X``:
        :math:`\rho f_{lo} + \delta + s_\rho\,[\varepsilon\,\tilde u + \varepsilon'(f_{lo} -
        \mu_{lo})]` with independent draws of the two posteriors
        (:meth:`GPR.sample_functions <stochhom.surrogates.gpr.GPR.sample_functions>`) and of
        :math:`\varepsilon, \varepsilon' \sim N(0, 1)` per sample (the estimation of
        :math:`\rho`; absent for a known :math:`\rho`), so that their variance is the
        epistemic variance of :meth:`predict_components`. The noise is not included.

        Parameters
        ----------
        X : array_like, shape (m, p)
        n_samples : int
        rng : numpy.random.Generator, int or None
            Independent streams are spawned from it: one per GP, one for :math:`\rho`.

        Returns
        -------
        numpy.ndarray
            ``(n_samples, m)`` for 1-D ``y``, else ``(n_samples, m, 1)``.
        """
        Xa = self._inputs(X)
        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 1:
            raise InputError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng_lo, rng_delta, rng_rho = np.random.default_rng(rng).spawn(3)
        f_lo = self.low_model_.sample_functions(Xa, n_samples, rng_lo)
        out = self.rho_ * f_lo + self.delta_model_.sample_functions(Xa, n_samples, rng_delta)
        if self.rho_estimated_ and self.rho_std_ > 0.0:
            mu_lo = _quiet_mean(self.low_model_, Xa)
            eps = rng_rho.standard_normal((2, n_samples))
            shape = (n_samples,) + (1,) * (out.ndim - 1)
            term = self._rho_term(Xa, mu_lo).reshape(out.shape[1:])
            out = out + eps[0].reshape(shape) * term + self.rho_std_ * eps[1].reshape(shape) * (f_lo - mu_lo.reshape(
                out.shape[1:]))
        return out if self._y_1d_ else out[:, :, None]

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: Any) -> Path:
        r"""Write the fitted model to the directory ``path``: ``cokriging.json`` (parameters,
        :math:`\rho` and its standard error), ``cokriging_data.npz`` (the low-fidelity data and
        the high-fidelity training data), and the two GPs in ``low/`` and ``delta/``
        (:meth:`GPR.save <stochhom.surrogates.gpr.GPR.save>`). :func:`stochhom.surrogates.load`
        reads it back."""
        check_is_fitted(self, "delta_model_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.low_model_.save(path / "low")
        self.delta_model_.save(path / "delta")
        X_low, y_low = _low_data(self.X_low, self.y_low)
        arrays = {"X_low": X_low, "y_low": y_low, "X_train": self.X_train_, "y_train": self.y_train_}
        if self.noise_variance_low is not None:
            arrays["noise_variance_low"] = np.asarray(self.noise_variance_low, dtype=float)
        np.savez(path / "cokriging_data.npz", **arrays)
        templates = {name: (None if t is None else t.get_params(deep=False))
                     for name, t in (("low_model", self.low_model), ("high_model", self.high_model))}
        meta = {"format": _FORMAT, "version": 1, "rho": self.rho if isinstance(self.rho, str) else float(self.rho),
                "templates": templates, "rho_": self.rho_, "rho_std_": self.rho_std_,
                "rho_estimated_": bool(self.rho_estimated_), "n_iter_": self.n_iter_,
                "profile_": [[float(r), float(v)] for r, v in self.profile_], "y_1d": bool(self._y_1d_)}
        (path / "cokriging.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: Any) -> CoKriging:
        """Read a model written by :meth:`save`."""
        from .gpr import GPR

        path = Path(path)
        try:
            meta = json.loads((path / "cokriging.json").read_text())
        except FileNotFoundError:
            raise InputError(f"no saved CoKriging in {str(path)!r} (expected cokriging.json)") from None
        if meta.get("format") != _FORMAT or meta.get("version", 0) > 1:
            raise InputError(f"{str(path / 'cokriging.json')!r} is not a saved CoKriging this stochhom reads")
        with np.load(path / "cokriging_data.npz") as z:
            data = {k: z[k] for k in z.files}
        templates = {k: (None if v is None else GPR(**v)) for k, v in meta["templates"].items()}
        self = cls(data["X_low"], data["y_low"], data.get("noise_variance_low"), rho=meta["rho"], **templates)
        self.low_model_ = GPR.load(path / "low")
        self.delta_model_ = GPR.load(path / "delta")
        self.rho_, self.rho_std_ = float(meta["rho_"]), float(meta["rho_std_"])
        self.rho_interval_ = (self.rho_ - _Z95 * self.rho_std_, self.rho_ + _Z95 * self.rho_std_)
        self.rho_estimated_ = bool(meta.get("rho_estimated_", False))  # files before it: plug-in rho
        self._trend_ = None
        self.profile_ = [tuple(p) for p in meta["profile_"]]
        self.n_iter_ = int(meta["n_iter_"])
        self._fit_kw_ = {}
        self.X_train_, self.y_train_ = data["X_train"], data["y_train"]
        self.n_features_in_ = self.X_train_.shape[1]
        self.n_outputs_ = 1
        self._y_1d_ = bool(meta["y_1d"])
        self.x_min_, self.x_max_ = self.X_train_.min(axis=0), self.X_train_.max(axis=0)
        return self


#: Marker of a saved :class:`CoKriging` (``cokriging.json``).
_FORMAT = "stochhom.CoKriging"
