r"""Point and probabilistic metrics of a surrogate's predictions on test data.

Concept
-------
A probabilistic surrogate (GPR, PCE with a noise model) predicts, for each test input, a
Gaussian law :math:`N(\mu_i, \sigma_i^2)` of the observed apparent property :math:`y_i`.
Its honest evaluation asks two questions:

* **accuracy** of the mean :math:`\mu_i` -- RMSE, MAE, :math:`R^2` (called :math:`Q^2`
  on held-out data) and the maximum error, computed by :mod:`sklearn.metrics`;
* **calibration and sharpness** of the predictive law -- a calibrated predictor has
  standardized residuals :math:`z_i = (y_i - \mu_i)/\sigma_i \sim N(0, 1)`, so its
  probability integral transform (PIT) :math:`u_i = \Phi(z_i)` is uniform and its central
  :math:`p`-intervals :math:`\mu_i \pm \Phi^{-1}(\tfrac{1+p}{2})\,\sigma_i` cover a fraction
  :math:`p` of the test points. Among calibrated predictors the sharper (smaller
  :math:`\sigma`) is better. The proper scoring rules NLPD and CRPS reward both at once.

Formulas (natural logarithm; :math:`\Phi`, :math:`\varphi` the standard normal CDF and density)

============================  ===================================================================
metric                        definition (mean over the :math:`n` test points, per output)
============================  ===================================================================
:func:`rmse`                  :math:`\sqrt{\overline{(y-\mu)^2}}`
:func:`mae`                   :math:`\overline{|y-\mu|}`
:func:`r2` / :func:`q2`       :math:`1 - \sum (y-\mu)^2 / \sum (y-\bar y)^2`
:func:`max_error`             :math:`\max |y-\mu|`
:func:`nlpd`                  :math:`\overline{\tfrac12\log(2\pi\sigma^2) + \tfrac12 z^2}` (nats)
:func:`crps`                  :math:`\overline{\sigma[z(2\Phi(z)-1) + 2\varphi(z) - 1/\sqrt\pi]}`
:func:`coverage`              :math:`\overline{1\{|z| \le \Phi^{-1}(\tfrac{1+p}{2})\}}`
:func:`miscalibration_area`   :math:`\int_0^1 |\hat c(p) - p|\,dp`, :math:`\hat c` the observed coverage
:func:`sharpness`             :math:`\sqrt{\overline{\sigma^2}}` (root mean square std)
:func:`interval_width`        :math:`\overline{2\Phi^{-1}(\tfrac{1+p}{2})\,\sigma}`
============================  ===================================================================

:func:`calibration_check` turns coverage into a statistical test: under calibration, and with
independent test points, the number of points covered at level :math:`p` is
:math:`\mathrm{Binomial}(n, p)`, which gives an exact acceptance band; the PIT values are
tested for uniformity with a Kolmogorov--Smirnov test.

Shapes and multiple outputs
---------------------------
``y``, ``mean`` and ``std`` are ``(n,)`` for one output or ``(n, q)`` for ``q`` outputs (``std``
may also be a scalar). A 1-D input gives Python floats. For 2-D inputs every metric is computed
per output and then combined by ``multioutput``, as in scikit-learn: ``"raw_values"`` returns an
array of ``q`` values, ``"uniform_average"`` their mean, and an array of ``q`` weights their
weighted mean. Inputs are validated at the boundary and bad input raises
:class:`~stochhom.errors.InputError`.

References
----------
Gneiting & Raftery, J. Am. Stat. Assoc. 102 (2007) 359 (proper scoring rules, Gaussian CRPS);
Gneiting, Balabdaoui & Raftery, J. R. Stat. Soc. B 69 (2007) 243 (PIT, calibration, sharpness);
Kuleshov, Fenner & Ermon, ICML 2018 (calibration curves of regression models);
Quiñonero-Candela et al., MLCW 2005, LNAI 3944 (NLPD as an evaluation criterion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats as st
from sklearn import metrics as skm

from ..errors import InputError

__all__ = [
    "CALIBRATION_LEVELS",
    "COVERAGE_LEVELS",
    "CalibrationCheck",
    "calibration_check",
    "calibration_curve",
    "coverage",
    "crps",
    "interval_width",
    "mae",
    "max_error",
    "miscalibration_area",
    "nlpd",
    "pit",
    "pooled_metrics",
    "probabilistic_metrics",
    "q2",
    "r2",
    "rmse",
    "score_predictions",
    "sharpness",
    "standardized_residuals",
]

#: Nominal levels of the central intervals reported by :func:`coverage` and :func:`probabilistic_metrics`.
COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.99)

#: Nominal levels of :func:`calibration_curve`: 0.05, 0.10, ..., 0.95.
CALIBRATION_LEVELS: tuple[float, ...] = tuple(np.round(np.linspace(0.05, 0.95, 19), 12))

_MULTIOUTPUT = ("raw_values", "uniform_average")
_KINDS = ("central", "quantile")


# --------------------------------------------------------------------------- input


def _array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric array, got {type(value).__name__}") from None
    return arr


def _check_targets(y: Any, mean: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``y`` and ``mean``; return them as float arrays of the same shape."""
    y = _array(y, "y")
    mean = _array(mean, "mean")
    if y.ndim not in (1, 2):
        raise InputError(f"y must be 1-D (n,) or 2-D (n, q), got shape {y.shape}")
    if y.size == 0:
        raise InputError(f"y is empty (shape {y.shape}); metrics need at least one test point and one output")
    if mean.shape != y.shape:
        raise InputError(
            f"mean has shape {mean.shape} but y has shape {y.shape}; pass one predicted mean per target "
            "(reshape both to (n,) or to (n, q))"
        )
    for arr, what, fix in (
        (y, "targets y", "remove those test points (or impute them) before computing metrics"),
        (mean, "predicted means", "the surrogate returned invalid predictions; check its inputs and fit"),
    ):
        bad = ~np.isfinite(arr)
        if bad.any():
            n_nan = int(np.isnan(arr).sum())
            raise InputError(
                f"{int(bad.sum())} of {arr.size} {what} are not finite ({n_nan} NaN, {int(bad.sum()) - n_nan} "
                f"infinite); {fix}"
            )
    return y, mean


def _check_std(std: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate a predictive standard deviation: strictly positive and finite, shape ``shape`` or scalar."""
    std = _array(std, "std")
    if shape is not None:
        if std.ndim == 0:
            std = np.broadcast_to(std, shape)
        elif std.shape != shape:
            raise InputError(
                f"std has shape {std.shape} but mean has shape {shape}; pass one predictive standard deviation "
                "per predicted mean (same shape), or a scalar"
            )
    else:
        if std.ndim not in (1, 2):
            raise InputError(f"std must be 1-D (n,) or 2-D (n, q), got shape {std.shape}")
        if std.size == 0:
            raise InputError(f"std is empty (shape {std.shape}); metrics need at least one test point")
    nonfinite = ~np.isfinite(std)
    nonpositive = np.isfinite(std) & (std <= 0)
    if nonfinite.any() or nonpositive.any():
        parts = []
        if nonpositive.any():
            parts.append(f"{int(nonpositive.sum())} are <= 0 (smallest {float(std[nonpositive].min()):.3g})")
        if nonfinite.any():
            parts.append(f"{int(nonfinite.sum())} are NaN or infinite")
        raise InputError(
            f"the predictive standard deviation must be positive and finite, but of {std.size} values "
            f"{' and '.join(parts)}; a zero std gives an infinite NLPD and undefined standardized residuals. "
            "Predict with return_std=True including the observation noise, or floor std at a small positive value"
        )
    return std


def _check(y: Any, mean: Any, std: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, mean = _check_targets(y, mean)
    return y, mean, _check_std(std, y.shape)


def _check_levels(levels: Any, name: str = "levels") -> tuple[np.ndarray, bool]:
    """Return ``levels`` as a 1-D array and whether a scalar was given."""
    arr = _array(levels, name)
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name} must be a probability or a non-empty 1-D sequence of them, got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr > 0) & (arr < 1))
    if bad.any():
        raise InputError(
            f"{name} must lie strictly between 0 and 1 (probabilities of central intervals), got "
            f"{arr[bad].tolist()}; write 0.95 for a 95% interval"
        )
    return arr, scalar


def _check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise InputError(f"kind must be one of {_KINDS}, got {kind!r}")
    return kind


def _as_2d(arr: np.ndarray) -> np.ndarray:
    return arr[:, None] if arr.ndim == 1 else arr


def _reduce(values: np.ndarray, multioutput: Any, single: bool) -> Any:
    """Combine per-output values (last axis) as scikit-learn does.

    A single-output input gives a float (or an array over the leading axes, e.g. levels).
    """
    values = np.asarray(values, dtype=float)
    q = values.shape[-1]
    if isinstance(multioutput, str) and multioutput not in _MULTIOUTPUT:
        raise InputError(f"multioutput must be one of {_MULTIOUTPUT} or an array of q weights, got {multioutput!r}")
    if single:
        out = values[..., 0]
        return float(out) if out.ndim == 0 else out
    if isinstance(multioutput, str):
        if multioutput == "raw_values":
            return values
        out = values.mean(axis=-1)
    else:
        weights = _array(multioutput, "multioutput weights")
        if weights.shape != (q,) or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise InputError(
                f"multioutput weights must be {q} non-negative finite numbers (one per output) with a positive sum, "
                f"got {weights.tolist()}"
            )
        out = np.average(values, axis=-1, weights=weights)
    return float(out) if out.ndim == 0 else out


def _half_width(levels: np.ndarray) -> np.ndarray:
    r"""Half-width of the central :math:`p`-interval in standard deviations, :math:`\Phi^{-1}((1+p)/2)`."""
    return st.norm.ppf(0.5 + 0.5 * levels)


# --------------------------------------------------------------------------- point metrics


def rmse(y: Any, mean: Any, *, multioutput: Any = "uniform_average") -> Any:
    r"""Root-mean-square error :math:`\sqrt{\frac1n\sum_i (y_i - \mu_i)^2}`, in the units of ``y``.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, q)
        Observed targets.
    mean : array_like, same shape as ``y``
        Predicted means.
    multioutput : {"raw_values", "uniform_average"} or array_like of q weights
        How per-output values are combined (ignored for 1-D ``y``).

    Returns
    -------
    float or numpy.ndarray of shape (q,)
        Computed per output by :func:`sklearn.metrics.root_mean_squared_error`.
    """
    y, mean = _check_targets(y, mean)
    values = skm.root_mean_squared_error(_as_2d(y), _as_2d(mean), multioutput="raw_values")
    return _reduce(values, multioutput, y.ndim == 1)


def mae(y: Any, mean: Any, *, multioutput: Any = "uniform_average") -> Any:
    r"""Mean absolute error :math:`\frac1n\sum_i |y_i - \mu_i|`, in the units of ``y``.

    Parameters and return value as in :func:`rmse`; computed by :func:`sklearn.metrics.mean_absolute_error`.
    """
    y, mean = _check_targets(y, mean)
    values = skm.mean_absolute_error(_as_2d(y), _as_2d(mean), multioutput="raw_values")
    return _reduce(values, multioutput, y.ndim == 1)


def r2(y: Any, mean: Any, *, multioutput: Any = "uniform_average") -> Any:
    r"""Coefficient of determination :math:`R^2 = 1 - \sum_i (y_i-\mu_i)^2 / \sum_i (y_i-\bar y)^2`.

    :math:`\bar y` is the mean of the targets passed here. 1 is a perfect prediction, 0 is no
    better than predicting :math:`\bar y`, and negative values are worse.

    Parameters and return value as in :func:`rmse`; computed by :func:`sklearn.metrics.r2_score`.

    Notes
    -----
    :math:`R^2` is undefined for a constant target (zero denominator) and for a single point
    (scikit-learn then warns): it is NaN, or :math:`-\infty` for an imperfect prediction of a
    constant target (scikit-learn's ``force_finite=False``), rather than an arbitrary finite
    convention such as 0.
    """
    y, mean = _check_targets(y, mean)
    y2 = _as_2d(y)
    with np.errstate(divide="ignore", invalid="ignore"):  # constant targets: documented NaN / -inf
        values = skm.r2_score(y2, _as_2d(mean), multioutput="raw_values", force_finite=False)
    values = np.broadcast_to(np.atleast_1d(values), (y2.shape[1],))  # one point: scikit-learn gives one NaN
    return _reduce(values, multioutput, y.ndim == 1)


def q2(y: Any, mean: Any, *, multioutput: Any = "uniform_average") -> Any:
    r"""Predictivity coefficient :math:`Q^2`: :func:`r2` evaluated on held-out (test or left-out) data.

    :math:`Q^2 = 1 - \sum_i (y_i-\mu_i)^2 / \sum_i (y_i-\bar y)^2` with :math:`\bar y` the mean of
    the held-out targets (not of the training targets). The formula is that of :func:`r2`; the
    name records that the points were not used for fitting, as usual for surrogate models.
    """
    return r2(y, mean, multioutput=multioutput)


def max_error(y: Any, mean: Any, *, multioutput: Any = "uniform_average") -> Any:
    r"""Maximum absolute error :math:`\max_i |y_i - \mu_i|`, per output, in the units of ``y``.

    Parameters and return value as in :func:`rmse`; each output is computed by
    :func:`sklearn.metrics.max_error` (which is single-output only), then combined by
    ``multioutput`` (``"uniform_average"`` is the mean of the per-output maxima).
    """
    y, mean = _check_targets(y, mean)
    y2, m2 = _as_2d(y), _as_2d(mean)
    values = np.array([skm.max_error(y2[:, k], m2[:, k]) for k in range(y2.shape[1])])
    return _reduce(values, multioutput, y.ndim == 1)


# --------------------------------------------------------------------------- probabilistic metrics


def standardized_residuals(y: Any, mean: Any, std: Any) -> np.ndarray:
    r"""Standardized residuals :math:`z_i = (y_i - \mu_i)/\sigma_i`.

    Under a calibrated Gaussian predictor they are independent standard normal.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, q)
        Observed targets.
    mean : array_like, same shape as ``y``
        Predicted means.
    std : array_like, same shape as ``y``, or scalar
        Predictive standard deviations, strictly positive.

    Returns
    -------
    numpy.ndarray, same shape as ``y``
    """
    y, mean, std = _check(y, mean, std)
    return (y - mean) / std


def pit(y: Any, mean: Any, std: Any) -> np.ndarray:
    r"""Probability integral transform :math:`u_i = F_i(y_i) = \Phi(z_i)`.

    Under calibration the PIT values are uniform on :math:`(0, 1)`: a U-shaped histogram means an
    over-confident predictor (:math:`\sigma` too small), a hump an under-confident one, a slope a
    biased mean. Parameters as in :func:`standardized_residuals`; returns an array shaped like ``y``.
    """
    return st.norm.cdf(standardized_residuals(y, mean, std))


def nlpd(y: Any, mean: Any, std: Any, *, multioutput: Any = "uniform_average") -> Any:
    r"""Negative log predictive density of the Gaussian predictive law, averaged over test points.

    .. math:: \mathrm{NLPD} = \frac1n \sum_i \Big[\tfrac12 \log(2\pi\sigma_i^2) + \tfrac12 z_i^2\Big],
              \qquad z_i = \frac{y_i - \mu_i}{\sigma_i}.

    In nats; lower is better. It depends on the units of ``y`` through
    :math:`\log\sigma`, so compare values only for the same target units. A strictly proper
    scoring rule: its expectation is minimized by the true predictive law. For a fixed mean,
    the empirical NLPD of a scaled std :math:`s\sigma` is minimized at :math:`s = \sqrt{\overline{z^2}}`.

    Parameters
    ----------
    y, mean, std : array_like
        As in :func:`standardized_residuals`.
    multioutput : {"raw_values", "uniform_average"} or array_like of q weights
        How per-output values are combined (ignored for 1-D ``y``).

    Returns
    -------
    float or numpy.ndarray of shape (q,)
    """
    y, mean, std = _check(y, mean, std)
    z = (y - mean) / std
    values = np.mean(0.5 * np.log(2.0 * np.pi) + np.log(std) + 0.5 * z**2, axis=0)
    return _reduce(np.atleast_1d(values), multioutput, y.ndim == 1)


def crps(y: Any, mean: Any, std: Any, *, multioutput: Any = "uniform_average") -> Any:
    r"""Continuous ranked probability score of the Gaussian predictive law, averaged over test points.

    .. math:: \mathrm{CRPS}(F, y) = \int_{-\infty}^{\infty} \big(F(x) - 1\{x \ge y\}\big)^2\,dx
              = \sigma\Big[z\big(2\Phi(z) - 1\big) + 2\varphi(z) - \frac{1}{\sqrt\pi}\Big]

    (Gneiting & Raftery 2007, eq. 21). In the units of ``y``; lower is better; it reduces to
    the absolute error :math:`|y - \mu|` as :math:`\sigma \to 0`. Strictly proper and, unlike NLPD,
    finite and robust for a few badly predicted points.

    Parameters and return value as in :func:`nlpd`.
    """
    y, mean, std = _check(y, mean, std)
    z = (y - mean) / std
    score = std * (z * (2.0 * st.norm.cdf(z) - 1.0) + 2.0 * st.norm.pdf(z) - 1.0 / np.sqrt(np.pi))
    return _reduce(np.atleast_1d(np.mean(score, axis=0)), multioutput, y.ndim == 1)


def _calibration_pit(z: np.ndarray, kind: str) -> np.ndarray:
    r"""The variable whose empirical CDF is the observed calibration curve.

    ``central``: :math:`v = 2\Phi(|z|) - 1`, the smallest central level whose interval covers
    the point, so that the coverage at level :math:`p` is the fraction of :math:`v \le p`.
    ``quantile``: the PIT :math:`u = \Phi(z)`, fraction of points below the :math:`p`-quantile.
    """
    if kind == "central":
        # 2Φ(|z|) − 1 = 1 − 2Φ(−|z|), accurate also in the far tails
        return 1.0 - 2.0 * st.norm.cdf(-np.abs(z))
    return st.norm.cdf(z)


def coverage(
    y: Any, mean: Any, std: Any, levels: Any = COVERAGE_LEVELS, *, multioutput: Any = "uniform_average"
) -> Any:
    r"""Observed coverage of central predictive intervals.

    .. math:: \hat c(p) = \frac1n \sum_i 1\Big\{|y_i - \mu_i| \le \Phi^{-1}\big(\tfrac{1+p}{2}\big)\,\sigma_i\Big\}

    A calibrated predictor has :math:`\hat c(p) \approx p`; below :math:`p` is over-confident,
    above is under-confident. See :func:`calibration_check` for the binomial acceptance band.

    Parameters
    ----------
    y, mean, std : array_like
        As in :func:`standardized_residuals`.
    levels : float or sequence of float, default ``(0.5, 0.8, 0.9, 0.95, 0.99)``
        Nominal probabilities :math:`p` of the central intervals, in :math:`(0, 1)`.
    multioutput : {"raw_values", "uniform_average"} or array_like of q weights
        How per-output values are combined (ignored for 1-D ``y``).

    Returns
    -------
    float or numpy.ndarray
        A scalar ``levels`` gives a float (or ``(q,)`` for raw multi-output values); a sequence
        gives an array with the levels along the first axis: ``(m,)`` or ``(m, q)``.
    """
    y, mean, std = _check(y, mean, std)
    p, scalar = _check_levels(levels)
    z = _as_2d((y - mean) / std)
    covered = np.abs(z)[None, :, :] <= _half_width(p)[:, None, None]
    values = covered.mean(axis=1)  # (m, q)
    return _reduce(values[0] if scalar else values, multioutput, y.ndim == 1)


def calibration_curve(
    y: Any,
    mean: Any,
    std: Any,
    levels: Any = CALIBRATION_LEVELS,
    *,
    kind: str = "central",
    multioutput: Any = "uniform_average",
) -> tuple[np.ndarray, Any]:
    r"""Observed against nominal probability: the reliability diagram of a regression model.

    Parameters
    ----------
    y, mean, std : array_like
        As in :func:`standardized_residuals`.
    levels : sequence of float, default 0.05, 0.10, ..., 0.95
        Nominal probabilities :math:`p`, in :math:`(0, 1)`.
    kind : {"central", "quantile"}
        ``"central"``: the coverage :math:`\hat c(p)` of central intervals (:func:`coverage`),
        blind to a symmetric bias. ``"quantile"``: the fraction of points below the predicted
        :math:`p`-quantile, :math:`\frac1n\sum_i 1\{\Phi(z_i) \le p\}` (Kuleshov et al. 2018),
        which also reveals a biased mean.
    multioutput : {"raw_values", "uniform_average"} or array_like of q weights
        How per-output curves are combined (ignored for 1-D ``y``).

    Returns
    -------
    nominal : numpy.ndarray of shape (m,)
        The levels.
    observed : numpy.ndarray of shape (m,) or (m, q)
        The observed probability at each level; a calibrated predictor lies on the diagonal.
    """
    y, mean, std = _check(y, mean, std)
    p, _ = _check_levels(levels)
    v = _calibration_pit(_as_2d((y - mean) / std), _check_kind(kind))
    observed = (v[None, :, :] <= p[:, None, None]).mean(axis=1)
    return p, _reduce(observed, multioutput, y.ndim == 1)


def _area_to_diagonal(v: np.ndarray) -> float:
    r"""Exact :math:`\int_0^1 |F_n(p) - p|\,dp` for the empirical CDF :math:`F_n` of the values ``v`` in [0, 1].

    On each interval :math:`[a, b)` between consecutive sorted values :math:`F_n = k/n` is
    constant, and :math:`\int_a^b |c - p|\,dp = g(b) - g(a)` with
    :math:`g(t) = \tfrac12 \operatorname{sign}(t-c)(t-c)^2`.
    """
    n = v.size
    edges = np.concatenate([[0.0], np.sort(v), [1.0]])
    c = np.arange(n + 1) / n
    da, db = edges[:-1] - c, edges[1:] - c
    return float(0.5 * np.sum(np.sign(db) * db**2 - np.sign(da) * da**2))


def miscalibration_area(
    y: Any, mean: Any, std: Any, *, kind: str = "central", multioutput: Any = "uniform_average"
) -> Any:
    r"""Area between the calibration curve and the diagonal, :math:`\int_0^1 |\hat c(p) - p|\,dp`.

    The integral is exact over all levels :math:`p \in [0, 1]`, not a sum over a grid of levels:
    the observed curve :math:`\hat c` is the empirical CDF of :math:`v_i = 2\Phi(|z_i|) - 1`
    (``kind="central"``) or of the PIT :math:`u_i = \Phi(z_i)` (``kind="quantile"``), a step
    function, so the area is a sum of closed-form pieces. It equals the limit of the mean of
    :math:`|\hat c(p) - p|` over an ever finer uniform grid of levels.

    0 is perfect calibration; the maximum is 1/2. For a calibrated predictor the area is of
    order :math:`0.31/\sqrt n` (it is bounded by the Kolmogorov--Smirnov distance of
    :math:`\hat c` to the uniform CDF).

    Parameters
    ----------
    y, mean, std : array_like
        As in :func:`standardized_residuals`.
    kind : {"central", "quantile"}
        Which calibration curve, as in :func:`calibration_curve`.
    multioutput : {"raw_values", "uniform_average"} or array_like of q weights
        How per-output values are combined (ignored for 1-D ``y``).

    Returns
    -------
    float or numpy.ndarray of shape (q,)
    """
    y, mean, std = _check(y, mean, std)
    v = _calibration_pit(_as_2d((y - mean) / std), _check_kind(kind))
    values = np.array([_area_to_diagonal(v[:, k]) for k in range(v.shape[1])])
    return _reduce(values, multioutput, y.ndim == 1)


def sharpness(std: Any, *, multioutput: Any = "uniform_average") -> Any:
    r"""Sharpness: the root mean square predictive standard deviation :math:`\sqrt{\frac1n\sum_i \sigma_i^2}`.

    In the units of ``y``; smaller is sharper. The RMS (rather than the mean) std is the square
    root of the mean predictive variance, the convention of Kuleshov et al. (2018). Sharpness
    rewards nothing on its own: compare it only between calibrated predictors.

    Parameters
    ----------
    std : array_like, shape (n,) or (n, q)
        Predictive standard deviations, strictly positive.
    multioutput : {"raw_values", "uniform_average"} or array_like of q weights
        How per-output values are combined (ignored for 1-D ``std``).

    Returns
    -------
    float or numpy.ndarray of shape (q,)
    """
    std = _check_std(std)
    values = np.sqrt(np.mean(_as_2d(std) ** 2, axis=0))
    return _reduce(values, multioutput, std.ndim == 1)


def interval_width(std: Any, levels: Any = 0.95, *, multioutput: Any = "uniform_average") -> Any:
    r"""Mean width of the central predictive intervals, :math:`\frac1n\sum_i 2\Phi^{-1}(\tfrac{1+p}{2})\,\sigma_i`.

    In the units of ``y`` (for :math:`p = 0.95`, :math:`3.92\,\bar\sigma`).

    Parameters
    ----------
    std : array_like, shape (n,) or (n, q)
        Predictive standard deviations, strictly positive.
    levels : float or sequence of float, default 0.95
        Nominal probabilities of the central intervals, in :math:`(0, 1)`.
    multioutput : {"raw_values", "uniform_average"} or array_like of q weights
        How per-output values are combined (ignored for 1-D ``std``).

    Returns
    -------
    float or numpy.ndarray
        Shaped as in :func:`coverage`.
    """
    std = _check_std(std)
    p, scalar = _check_levels(levels)
    values = 2.0 * _half_width(p)[:, None] * np.mean(_as_2d(std), axis=0)[None, :]
    return _reduce(values[0] if scalar else values, multioutput, std.ndim == 1)


# --------------------------------------------------------------------------- calibration test


@dataclass(frozen=True)
class CalibrationCheck:
    r"""Result of :func:`calibration_check`.

    Attributes
    ----------
    passed : bool
        True when every coverage lies in its acceptance band and every PIT test passes.
    n : int
        Number of test points.
    levels : numpy.ndarray of shape (m,)
        Nominal central-interval probabilities.
    coverage : numpy.ndarray of shape (m,) or (m, q)
        Observed coverage per level (and per output).
    lower, upper : numpy.ndarray of shape (m,)
        Acceptance band of the coverage at each level, as fractions of ``n`` (inclusive).
    level_passed : numpy.ndarray of bool, shape (m,) or (m, q)
        Whether each coverage lies in its band.
    ks_statistic, ks_pvalue : float or numpy.ndarray of shape (q,)
        Kolmogorov--Smirnov test of uniformity of the PIT values, per output.
    pit_passed : bool or numpy.ndarray of bool, shape (q,)
        Whether ``ks_pvalue > alpha_per_test``.
    alpha : float
        Family-wise false-rejection probability requested.
    alpha_per_test : float
        Level of each individual test, ``alpha / n_tests`` (Bonferroni).
    """

    passed: bool
    n: int
    levels: np.ndarray
    coverage: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level_passed: np.ndarray
    ks_statistic: Any
    ks_pvalue: Any
    pit_passed: Any
    alpha: float
    alpha_per_test: float

    def __str__(self) -> str:
        rows = [f"calibration check: {'passed' if self.passed else 'FAILED'} (n = {self.n}, alpha = {self.alpha:g})"]
        cov = np.asarray(self.coverage)
        ok = np.asarray(self.level_passed)
        for i, p in enumerate(self.levels):
            c = np.array2string(cov[i], precision=3) if cov.ndim > 1 else f"{cov[i]:.3f}"
            flag = "ok" if np.all(ok[i]) else "out of band"
            rows.append(f"  level {p:g}: coverage {c}, band [{self.lower[i]:.3f}, {self.upper[i]:.3f}] {flag}")
        rows.append(f"  PIT uniformity (KS): p-value {np.array2string(np.asarray(self.ks_pvalue), precision=3)}")
        return "\n".join(rows)


def calibration_check(
    y: Any, mean: Any, std: Any, levels: Any = COVERAGE_LEVELS, *, alpha: float = 0.001
) -> CalibrationCheck:
    r"""Test whether a Gaussian predictor is calibrated on independent test points.

    Two families of tests, with a family-wise false-rejection probability of at most ``alpha``
    for a calibrated predictor:

    * **coverage**: under calibration the number :math:`k` of points covered by the central
      :math:`p`-interval is :math:`\mathrm{Binomial}(n, p)`. The acceptance band is the exact
      equal-tailed binomial interval :func:`scipy.stats.binom.interval` of confidence
      :math:`1 - \alpha'`, and the level passes when :math:`k_{lo} \le k \le k_{hi}` (the
      discrete band is conservative: its rejection probability is below :math:`\alpha'`);
    * **PIT uniformity**: a Kolmogorov--Smirnov test (:func:`scipy.stats.kstest`) of the PIT
      values :math:`\Phi(z_i)` against the uniform law, passing when its p-value exceeds
      :math:`\alpha'`. It also catches bias and wrong shapes that the coverage levels miss.

    With :math:`m` levels and :math:`q` outputs there are :math:`m q + q` tests and each is
    run at :math:`\alpha' = \alpha / (m q + q)` (Bonferroni). The coverages at nested levels are
    positively dependent, so the correction is conservative.

    Parameters
    ----------
    y, mean, std : array_like
        As in :func:`standardized_residuals`. The test points must be independent (for
        windows of one specimen use one point per specimen, or group them).
    levels : sequence of float, default ``(0.5, 0.8, 0.9, 0.95, 0.99)``
        Nominal probabilities of the central intervals, in :math:`(0, 1)`.
    alpha : float, default 0.001
        Family-wise probability of failing a calibrated predictor, in :math:`(0, 1)`.

    Returns
    -------
    CalibrationCheck
        With ``passed`` and the per-level coverage, band and verdicts.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mean, std = np.zeros(500), np.full(500, 2.0)
    >>> calibration_check(rng.normal(mean, std), mean, std).passed
    True
    """
    y, mean, std = _check(y, mean, std)
    p, _ = _check_levels(levels)
    alpha_arr = _array(alpha, "alpha")
    if alpha_arr.ndim != 0 or not (0.0 < float(alpha_arr) < 1.0):
        raise InputError(f"alpha must be a probability in (0, 1), got {alpha!r}")
    alpha = float(alpha_arr)
    z = _as_2d((y - mean) / std)
    n, q = z.shape
    alpha_per_test = alpha / (p.size * q + q)

    covered = (np.abs(z)[None, :, :] <= _half_width(p)[:, None, None]).sum(axis=1)  # (m, q) counts
    lo, hi = st.binom.interval(1.0 - alpha_per_test, n, p)
    level_passed = (covered >= lo[:, None]) & (covered <= hi[:, None])
    ks = [st.kstest(st.norm.cdf(z[:, k]), "uniform") for k in range(q)]
    ks_stat = np.array([r.statistic for r in ks])
    ks_p = np.array([r.pvalue for r in ks])
    pit_passed = ks_p > alpha_per_test

    single = y.ndim == 1
    return CalibrationCheck(
        passed=bool(level_passed.all() and pit_passed.all()),
        n=n,
        levels=p,
        coverage=covered[:, 0] / n if single else covered / n,
        lower=lo / n,
        upper=hi / n,
        level_passed=level_passed[:, 0] if single else level_passed,
        ks_statistic=float(ks_stat[0]) if single else ks_stat,
        ks_pvalue=float(ks_p[0]) if single else ks_p,
        pit_passed=bool(pit_passed[0]) if single else pit_passed,
        alpha=alpha,
        alpha_per_test=alpha_per_test,
    )


# --------------------------------------------------------------------------- everything at once


def probabilistic_metrics(
    y: Any, mean: Any, std: Any, levels: Any = COVERAGE_LEVELS, *, multioutput: Any = "raw_values"
) -> dict[str, Any]:
    r"""Every point and probabilistic metric of one set of predictions, in a flat dict.

    The keys are stable (tables of cross-validation folds and OOD shells are built on them):

    ===========================  =============================================================
    key                          value
    ===========================  =============================================================
    ``rmse``, ``mae``, ``r2``,   :func:`rmse`, :func:`mae`, :func:`r2` (:math:`Q^2` on
    ``max_error``                held-out data), :func:`max_error`
    ``nlpd``, ``crps``           :func:`nlpd`, :func:`crps`
    ``coverage_<level>``         :func:`coverage` at each level, the key formatted as
                                 ``f"coverage_{level:g}"``, e.g. ``coverage_0.95``
    ``miscalibration_area``      :func:`miscalibration_area` (central intervals)
    ``sharpness``                :func:`sharpness` (RMS predictive std)
    ``mean_std_residual``        mean of the standardized residuals :math:`z` (0 if unbiased)
    ``std_std_residual``         standard deviation of :math:`z` (``ddof=0``; 1 if calibrated)
    ===========================  =============================================================

    Parameters
    ----------
    y, mean, std : array_like
        As in :func:`standardized_residuals`.
    levels : sequence of float, default ``(0.5, 0.8, 0.9, 0.95, 0.99)``
        Coverage levels, in :math:`(0, 1)`; they must differ at 6 significant digits.
    multioutput : {"raw_values", "uniform_average"} or array_like of q weights, default "raw_values"
        For ``(n, q)`` inputs, ``"raw_values"`` gives an array of ``q`` values per key. 1-D
        inputs always give floats.

    Returns
    -------
    dict of str to float or numpy.ndarray
    """
    y, mean, std = _check(y, mean, std)
    p, _ = _check_levels(levels)
    keys = [f"coverage_{level:g}" for level in p]
    if len(set(keys)) != len(keys):
        raise InputError(f"levels give duplicate coverage keys {keys}; pass distinct levels")
    single = y.ndim == 1
    z = _as_2d((y - mean) / std)
    out: dict[str, Any] = {
        "rmse": rmse(y, mean, multioutput=multioutput),
        "mae": mae(y, mean, multioutput=multioutput),
        "r2": r2(y, mean, multioutput=multioutput),
        "max_error": max_error(y, mean, multioutput=multioutput),
        "nlpd": nlpd(y, mean, std, multioutput=multioutput),
        "crps": crps(y, mean, std, multioutput=multioutput),
    }
    cov = coverage(y, mean, std, p, multioutput=multioutput)
    for i, key in enumerate(keys):
        out[key] = float(cov[i]) if np.ndim(cov[i]) == 0 else cov[i]
    out["miscalibration_area"] = miscalibration_area(y, mean, std, multioutput=multioutput)
    out["sharpness"] = sharpness(std, multioutput=multioutput)
    out["mean_std_residual"] = _reduce(z.mean(axis=0), multioutput, single)
    out["std_std_residual"] = _reduce(z.std(axis=0), multioutput, single)
    return out


# --------------------------------------------------------------------------- scores of any predictive law


#: Columns of :func:`score_predictions`.
SCORE_COLUMNS = ("y", "mean", "std", "lower", "upper", "z", "nlpd", "crps")


def score_predictions(y: Any, law: Any, level: float = 0.95) -> Any:
    r"""Per-point scores of a predictive law (Gaussian or not), the input of :func:`pooled_metrics`.

    The law is a :class:`~stochhom.surrogates.predictive.Normal`, a
    :class:`~stochhom.surrogates.predictive.TruncatedNormal` (the predictive law of a
    bounded surrogate) or an :class:`~stochhom.surrogates.predictive.Empirical` law (known
    by draws), as returned by :func:`~stochhom.surrogates.predictive.predictive`.
    Each row holds what every metric needs, on the physical scale of ``y``:

    =========  ==========================================================================
    column     meaning
    =========  ==========================================================================
    y          the observation
    mean, std  predictive mean and standard deviation
    lower,     central ``level`` interval (inside the bounds of a truncated law)
    upper
    z          standardized residual: :math:`(y-\mu)/\sigma`, or the normal score of
               the PIT :math:`\Phi^{-1}(F(y))` of another law (mid-rank for draws);
               :math:`N(0, 1)` under calibration, so coverage, PIT and calibration
               curves follow from it
    nlpd       :math:`-\log p(y)` (with the Jacobian of a log-scale law; a kernel
               density estimate for draws)
    crps       the CRPS of the law at :math:`y`
    =========  ==========================================================================

    Parameters
    ----------
    y : array_like, shape (n,)
        Observations (one output).
    law : predictive law
        With ``mean``, ``std``, ``interval``, ``standardized``, ``logpdf``, ``crps``, of shape (n,).
    level : float
        Level of the ``lower``/``upper`` interval.

    Returns
    -------
    pandas.DataFrame
        One row per point, the columns :data:`SCORE_COLUMNS`.
    """
    import pandas as pd

    ya = _array(y, "y")
    if ya.ndim != 1:
        raise InputError(f"score_predictions scores one output: y must be 1-D, got shape {ya.shape}")
    if not np.all(np.isfinite(ya)):
        raise InputError("y has NaN or inf values; drop failed samples first")
    mean = np.asarray(law.mean, dtype=float)
    if mean.shape != ya.shape:
        raise InputError(f"the predictive law has shape {mean.shape} but y has {ya.shape}")
    lo, hi = law.interval(level)
    return pd.DataFrame({"y": ya, "mean": mean, "std": np.asarray(law.std, dtype=float), "lower": lo, "upper": hi,
                         "z": law.standardized(ya), "nlpd": -law.logpdf(ya), "crps": law.crps(ya)})


def pooled_metrics(scores: Any, levels: Any = COVERAGE_LEVELS) -> dict[str, float]:
    r"""The metrics of :func:`probabilistic_metrics`, pooled over the rows of a score table.

    ``scores`` is a table from :func:`score_predictions` (or several concatenated: the
    out-of-fold predictions of every fold). Each metric is computed once over all rows, the
    same way for a Gaussian and a transformed law: RMSE, MAE, :math:`R^2` and the maximum
    error from ``y`` and ``mean``; NLPD and CRPS as the means of their columns; coverage,
    the miscalibration area and the moments of the standardized residuals from ``z``;
    sharpness from ``std``. For a Gaussian law the values equal those of
    :func:`probabilistic_metrics` on the same predictions.

    Returns
    -------
    dict of str to float
        The keys of :func:`probabilistic_metrics`, plus ``n`` (the number of rows).
    """
    missing = [c for c in SCORE_COLUMNS if c not in getattr(scores, "columns", ())]
    if missing:
        raise InputError(f"expected a table of score_predictions(); it lacks the column(s) {missing}")
    if len(scores) == 0:
        raise InputError("no scored predictions to pool")
    y = scores["y"].to_numpy(float)
    mean = scores["mean"].to_numpy(float)
    std = scores["std"].to_numpy(float)
    z = scores["z"].to_numpy(float)
    zero, one = np.zeros_like(z), np.ones_like(z)
    p, _ = _check_levels(levels)
    out: dict[str, float] = {
        "n": int(y.size),
        "rmse": float(rmse(y, mean)),
        "mae": float(mae(y, mean)),
        "r2": float(r2(y, mean)) if y.size > 1 else float("nan"),
        "max_error": float(max_error(y, mean)),
        "nlpd": float(scores["nlpd"].to_numpy(float).mean()),
        "crps": float(scores["crps"].to_numpy(float).mean()),
    }
    cov = np.atleast_1d(coverage(z, zero, one, p))
    for level, c in zip(p, cov):
        out[f"coverage_{level:g}"] = float(c)
    out["miscalibration_area"] = float(miscalibration_area(z, zero, one))
    out["sharpness"] = float(sharpness(std))
    out["mean_std_residual"] = float(z.mean())
    out["std_std_residual"] = float(z.std())
    return out
