r"""RVE-size analysis: variance scaling, systematic error, RVE size, ergodicity.

Statistical definition of the representative volume element (Kanit et al., IJSS
2003). The apparent property :math:`Z_V` of a stochastic volume element (SVE) of
volume :math:`V` scatters over the realizations of the microstructure. For a
property with point variance :math:`D_Z^2` (for a phase indicator
:math:`D_Z^2 = p(1-p)`; for a two-phase property :math:`p(1-p)(Z_1-Z_2)^2`), the
variance of :math:`Z_V` decays as

.. math::
    D_Z^2(V) = D_Z^2 \left(\frac{A}{V}\right)^{\alpha},

where :math:`A` is the integral range (a volume) and :math:`\alpha = 1` when
:math:`A` is finite (:math:`\alpha < 1` for long fibres or strata). The mean over
:math:`n` independent SVEs of volume :math:`V` has the relative error

.. math::
    \varepsilon = \frac{2 D_Z(V)}{\bar Z \sqrt n}

(95 % two-sided, normal approximation), so that an RVE for the precision
:math:`\varepsilon` with :math:`n` realizations has the volume

.. math::
    V = \left(\frac{4 D_Z^2 A^\alpha}{\varepsilon^2 \bar Z^2 n}\right)^{1/\alpha}
    \;=\; \frac{4 D_Z^2 A}{\varepsilon^2 \bar Z^2 n} \quad (\alpha = 1).

Only the product :math:`K = D_Z^2 A^\alpha` (the variance at unit volume) is needed
for the RVE size; :math:`A` itself follows once :math:`D_Z^2` is known.

Besides this statistical error, small SVEs may have a biased mean (the
*systematic error*, :func:`systematic_error`), and the spatial average over one
large volume should agree with the ensemble average of small ones
(:func:`ergodicity`).

The functions take an apparent-properties ``Dataset`` (from
:func:`~stochhom.homogenize_ensemble` or a sweep over ``size``) and the name of a
scalar quantity (:func:`~stochhom.statistics.summary.scalar_columns`:
``bulk_modulus``, ``conductivity_eigenvalues_0``, ``phase_fraction_1``, ...), or
plain arrays of volumes and values (:func:`fit_variance_scaling`).

References
----------
T. Kanit, S. Forest, I. Galliet, V. Mounoury, D. Jeulin, "Determination of the
size of the representative volume element for random composites: statistical and
numerical approach", Int. J. Solids Struct. 40 (2003) 3647–3679.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.special as sp
import scipy.stats as st
import xarray as xr

from ..errors import InputError
from .summary import IDENTIFIERS, _check_confidence, _converged, default_by, scalar_columns

__all__ = [
    "Estimate",
    "VarianceScaling",
    "point_variance",
    "phase_fraction_samples",
    "size_statistics",
    "fit_variance_scaling",
    "variance_scaling",
    "systematic_error",
    "rve_size",
    "n_realizations",
    "ergodicity",
    "boundary_hierarchy",
    "hierarchy_statistics",
    "bracket_size",
]

#: Coordinates that describe the SVE size rather than the material.
_SIZE_KEYS = ("size", "volume", "point")


class Estimate(NamedTuple):
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float


# ----------------------------------------------------------------------------- input


def point_variance(fraction: float, z1: float = 1.0, z2: float = 0.0) -> float:
    r"""Point variance :math:`D_Z^2 = p(1-p)(Z_1-Z_2)^2` of a two-phase property.

    With the defaults (:math:`Z_1 = 1, Z_2 = 0`) it is the variance :math:`p(1-p)` of
    the indicator of a phase of volume fraction :math:`p`.
    """
    p = float(fraction)
    if not 0.0 < p < 1.0:
        raise InputError(f"fraction must lie in (0, 1), got {fraction!r}")
    return p * (1.0 - p) * (float(z1) - float(z2)) ** 2


def _arrays(volumes: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(volumes, dtype=float).reshape(-1)
    z = np.asarray(values, dtype=float).reshape(-1)
    if v.shape != z.shape:
        raise InputError(f"volumes and values must have the same length, got {v.size} and {z.size}")
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise InputError("volumes must be finite and positive")
    keep = np.isfinite(z)
    return v[keep], z[keep]


def _groups(v: np.ndarray, z: np.ndarray, min_samples: int) -> list[tuple[float, np.ndarray]]:
    out = []
    for vol in np.unique(v):
        x = z[v == vol]
        if x.size >= min_samples:
            out.append((float(vol), x))
    return out


def _from_images(ens: xr.Dataset) -> xr.Dataset:
    """Volumes and phase fractions of a microstructure ensemble, as per-sample variables."""
    phase = ens["phase"]
    if "sample" not in phase.dims:
        ens = ens.expand_dims("sample")
        phase = ens["phase"]
    spatial = [d for d in phase.dims if d != "sample"]
    labels = phase.transpose("sample", *spatial).values
    n_phases = int(labels.max()) + 1
    fractions = np.stack([(labels == k).mean(axis=tuple(range(1, labels.ndim))) for k in range(n_phases)], axis=1)
    h = float(ens.attrs.get("voxel_size", 1.0))
    vol = float(np.prod(labels.shape[1:])) * h ** len(spatial)
    keep = {c: da for c, da in ens.coords.items() if da.dims == ("sample",)}
    return xr.Dataset({"phase_fraction": (("sample", "phase"), fractions),
                       "volume": ("sample", np.full(labels.shape[0], vol))}, coords=keep)


def phase_fraction_samples(*ensembles: xr.Dataset) -> xr.Dataset:
    """Volume and phase fractions of every sample of microstructure ensembles, of any sizes.

    Ensembles of different shapes cannot share one ``Dataset``; their per-sample
    volumes and phase fractions can. The result feeds :func:`variance_scaling`,
    :func:`systematic_error` and :func:`ergodicity` with ``"phase_fraction_<k>"``
    before anything is homogenized (Kanit et al.'s first step: the RVE of the
    volume fraction).

    Parameters
    ----------
    *ensembles : xarray.Dataset
        From :func:`~stochhom.generate`, :func:`~stochhom.windows` or
        :func:`~stochhom.microstructure.load_specimens`.

    Returns
    -------
    xarray.Dataset
        ``volume`` (``sample``) and ``phase_fraction`` (``sample, phase``), with the
        per-sample coordinates the ensembles share; ``sample`` is renumbered.
    """
    if not ensembles:
        raise InputError("pass at least one ensemble")
    parts = []
    for k, ens in enumerate(ensembles):
        if not isinstance(ens, xr.Dataset) or "phase" not in ens:
            raise InputError(f"ensemble {k} is not a microstructure Dataset with a 'phase' variable")
        parts.append(_from_images(ens).drop_vars("sample", errors="ignore"))
    n_phases = max(p.sizes["phase"] for p in parts)
    parts = [p.pad(phase=(0, n_phases - p.sizes["phase"]), constant_values=0.0) for p in parts]
    common = set.intersection(*(set(p.coords) for p in parts))
    parts = [p.drop_vars([c for c in p.coords if c not in common]) for p in parts]
    out = xr.concat(parts, dim="sample", coords="minimal", compat="override", join="outer")
    return out.assign_coords(sample=np.arange(out.sizes["sample"]))


def _columns(props: xr.Dataset, variable: str, volume: str) -> tuple[np.ndarray, np.ndarray]:
    """(volumes, values) of the converged samples of ``props``; one material point only."""
    if not isinstance(props, xr.Dataset):
        raise InputError(f"expected an apparent-properties xarray.Dataset, got {type(props).__name__}")
    if "phase" in props and volume not in props.variables:  # a microstructure ensemble: its phase fractions
        props = _from_images(props)
    if volume not in props.variables or props[volume].dims != ("sample",):
        raise InputError(f"the dataset has no per-sample {volume!r}; apparent properties carry 'volume'")
    others = [k for k in default_by(props, exclude=(*_SIZE_KEYS, volume)) if k not in IDENTIFIERS]
    varying = [k for k in others if np.unique(props[k].values).size > 1]
    if varying:
        raise InputError(
            f"the samples differ in {varying} as well as in size; select one material point first, "
            f"e.g. props.where(props.{varying[0]} == value, drop=True)"
        )
    col = scalar_columns(props, variable)
    if len(col) != 1:
        raise InputError(f"{variable!r} has several components {sorted(col)}; name one of them")
    z = next(iter(col.values()))
    ok = _converged(props)
    return _arrays(props[volume].values[ok], z[ok])


# ---------------------------------------------------------------------- size statistics


def size_statistics(
    props: xr.Dataset, variable: str, *, volume: str = "volume", confidence: float = 0.95
) -> xr.Dataset:
    r"""Mean, variance and their confidence intervals at each SVE volume.

    For the :math:`n` converged samples of each volume: the mean :math:`\bar Z` with a
    Student-t interval, the variance :math:`s^2` (``ddof = 1``) with the chi-square
    interval :math:`[(n-1)s^2/\chi^2_{1-a/2},\,(n-1)s^2/\chi^2_{a/2}]` (exact for
    Gaussian :math:`Z_V`), and the relative error of the mean
    :math:`\varepsilon = 2 s/(\bar Z\sqrt n)`.

    Returns
    -------
    xarray.Dataset
        Along ``volume``: ``count``, ``mean``, ``mean_low``, ``mean_high``,
        ``variance``, ``variance_low``, ``variance_high``, ``relative_error``.
    """
    _check_confidence(confidence)
    v, z = _columns(props, variable, volume)
    groups = _groups(v, z, 1)
    if not groups:
        raise InputError(f"no converged sample with a finite {variable!r}")
    a = 1.0 - confidence
    rows = []
    for _, x in groups:
        n = x.size
        m = x.mean()
        if n < 2:
            rows.append((n, m, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan))
            continue
        s2 = x.var(ddof=1)
        half = st.t.ppf(1 - a / 2, n - 1) * math.sqrt(s2 / n)
        lo = (n - 1) * s2 / st.chi2.ppf(1 - a / 2, n - 1)
        hi = (n - 1) * s2 / st.chi2.ppf(a / 2, n - 1)
        eps = 2.0 * math.sqrt(s2 / n) / abs(m) if m != 0 else np.inf
        rows.append((n, m, m - half, m + half, s2, lo, hi, eps))
    cols = np.array(rows, dtype=float).T
    names = ("count", "mean", "mean_low", "mean_high", "variance", "variance_low", "variance_high",
             "relative_error")
    data = {k: ("volume", c) for k, c in zip(names, cols)}
    data["count"] = ("volume", cols[0].astype(np.int64))
    return xr.Dataset(data, coords={"volume": [g[0] for g in groups]},
                      attrs={"variable": variable, "confidence": confidence})


# ------------------------------------------------------------------- variance scaling


def _pooled_kurtosis(xs: list[np.ndarray]) -> float:
    r"""Pooled kurtosis :math:`\kappa` (3 for Gaussian data) of the groups ``xs``.

    The bias-adjusted sample excess kurtosis :math:`G_2` of each group (the estimator
    of SAS, Excel and ``scipy.stats.kurtosis(bias=False)``), averaged with weights
    :math:`n_g`, plus 3. Groups of fewer than 4 samples do not contribute.
    """
    num = den = 0.0
    for x in xs:
        if x.size >= 4:
            num += x.size * float(st.kurtosis(x, fisher=True, bias=False))
            den += x.size
    return 3.0 + (num / den if den else 0.0)


def _log_variance_moments(n: np.ndarray, kurtosis: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Bias and variance of :math:`\log s^2` for samples of size ``n`` (``E log s^2 = log D^2 - bias``).

    Exact for Gaussian values (:math:`(n-1)s^2/D^2 \sim \chi^2_{n-1}`):
    :math:`\text{bias} = \log\frac{n-1}{2} - \psi(\frac{n-1}{2})`,
    :math:`\text{var} = \psi'(\frac{n-1}{2})`; an excess kurtosis :math:`\kappa - 3 > 0`
    adds :math:`(\kappa-3)/n` to the variance and half of it to the bias (delta
    method). A pooled kurtosis below 3 is not used (it would narrow the intervals
    on the strength of a noisy estimate).
    """
    half = (n - 1.0) / 2.0
    excess = max(kurtosis - 3.0, 0.0) / n
    return np.log(half) - sp.digamma(half) + excess / 2.0, sp.polygamma(1, half) + excess


@dataclass(frozen=True)
class VarianceScaling:
    r"""Result of a variance-scaling fit :math:`D_Z^2(V) = K V^{-\alpha}`, :math:`K = D_Z^2 A^\alpha`.

    Attributes
    ----------
    variable : str
        The scalar quantity.
    volumes, counts, means, variances : numpy.ndarray
        Per-volume data of the fit (sorted by volume).
    alpha : float
        Scaling exponent (fitted, or fixed by the caller: ``alpha_fixed``).
    amplitude : float
        :math:`K = D_Z^2 A^\alpha`, the variance extrapolated to unit volume.
    point_variance : float or None
        :math:`D_Z^2` when known (given, or :math:`p(1-p)` for a phase fraction).
    integral_range : float
        :math:`A = (K/D_Z^2)^{1/\alpha}` (NaN without ``point_variance``).
    alpha_ci, amplitude_ci, integral_range_ci : tuple of float
        Intervals at level ``confidence`` (see :func:`fit_variance_scaling`).
    mean : float
        Reference mean :math:`\bar Z`: the mean at the largest volume.
    kurtosis : float
        Pooled kurtosis of the values (3 for Gaussian); its excess over 3 widens the
        intervals.
    chi2 : float
        Weighted residual sum of squares of the fit; about ``m - 2`` (``m - 1`` with
        ``alpha`` fixed) for ``m`` volumes when the power law holds. Much larger
        values mean the power law does not describe the data (e.g. SVEs smaller
        than the microstructure's features).
    replicates : numpy.ndarray
        Draws of ``(log K, alpha)`` from their asymptotic normal distribution, shape
        ``(n_draws, 2)``; they give the intervals of :meth:`rve_size`,
        :meth:`n_realizations` and of the integral range.
    """

    variable: str
    volumes: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    alpha: float
    alpha_fixed: bool
    amplitude: float
    point_variance: float | None
    integral_range: float
    alpha_ci: tuple[float, float]
    amplitude_ci: tuple[float, float]
    integral_range_ci: tuple[float, float]
    confidence: float
    mean: float
    kurtosis: float
    chi2: float
    replicates: np.ndarray = field(repr=False)

    def variance(self, volume: Any) -> np.ndarray:
        r"""Fitted variance :math:`D_Z^2(V) = K V^{-\alpha}` at ``volume``."""
        return self.amplitude * np.asarray(volume, dtype=float) ** (-self.alpha)

    def _mean(self, mean: float | None) -> float:
        m = self.mean if mean is None else float(mean)
        if not np.isfinite(m) or m == 0:
            raise InputError(f"the relative error needs a finite non-zero mean, got {m!r}; pass mean=...")
        return abs(m)

    def relative_error(self, volume: Any, n: int = 1, mean: float | None = None) -> np.ndarray:
        r"""Relative error :math:`\varepsilon = 2 D_Z(V)/(\bar Z\sqrt n)` of the mean of ``n`` SVEs."""
        n = _positive_int("n", n)
        return 2.0 * np.sqrt(self.variance(volume)) / (self._mean(mean) * math.sqrt(n))

    def rve_size(self, epsilon: float, n: int = 1, mean: float | None = None) -> Estimate:
        r"""Volume :math:`V = (4K/(\varepsilon^2\bar Z^2 n))^{1/\alpha}` for relative error ``epsilon``.

        The interval propagates the uncertainty of :math:`(K, \alpha)` (``replicates``)
        (the uncertainty of :math:`\bar Z` is neglected: it is much smaller).
        """
        eps = _positive("epsilon", epsilon)
        n = _positive_int("n", n)
        target = math.log(eps**2 * self._mean(mean) ** 2 * n / 4.0)
        logk, alpha = self.replicates[:, 0], self.replicates[:, 1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            draws = np.exp((logk - target) / alpha)
        value = math.exp((math.log(self.amplitude) - target) / self.alpha)
        return Estimate(value, *_percentile(draws, self.confidence))

    def n_realizations(self, volume: float, epsilon: float, mean: float | None = None) -> Estimate:
        r"""Realizations :math:`n = \lceil 4 D_Z^2(V)/(\varepsilon^2\bar Z^2)\rceil` at ``volume``."""
        vol = _positive("volume", volume)
        eps = _positive("epsilon", epsilon)
        scale = 4.0 / (eps**2 * self._mean(mean) ** 2)
        logk, alpha = self.replicates[:, 0], self.replicates[:, 1]
        # ceil after removing round-off, so that n_realizations(rve_size(eps, n)) == n
        draws = np.ceil(scale * np.exp(logk - alpha * math.log(vol)) * (1 - 1e-12))
        lo, hi = _percentile(draws, self.confidence)
        return Estimate(float(math.ceil(scale * float(self.variance(vol)) * (1 - 1e-12))), lo, hi)

    def to_dataset(self) -> xr.Dataset:
        """The per-volume data, the fitted variance and the fit parameters (as attrs)."""
        return xr.Dataset(
            {"count": ("volume", self.counts), "mean": ("volume", self.means),
             "variance": ("volume", self.variances), "fitted_variance": ("volume", self.variance(self.volumes))},
            coords={"volume": self.volumes},
            attrs={"variable": self.variable, "alpha": self.alpha, "alpha_fixed": int(self.alpha_fixed),
                   "alpha_ci": list(self.alpha_ci), "amplitude": self.amplitude,
                   "amplitude_ci": list(self.amplitude_ci), "integral_range": self.integral_range,
                   "integral_range_ci": list(self.integral_range_ci),
                   "point_variance": np.nan if self.point_variance is None else self.point_variance,
                   "confidence": self.confidence, "mean": self.mean},
        )


def _positive(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, got {value!r}") from None
    if not (np.isfinite(x) and x > 0):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return x


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _percentile(x: np.ndarray, confidence: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan, np.nan
    a = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(x, [a, 100.0 - a])
    return float(lo), float(hi)


def fit_variance_scaling(
    volumes: Any,
    values: Any,
    *,
    point_variance: float | None = None,
    alpha: float | None = None,
    confidence: float = 0.95,
    n_draws: int = 4000,
    rng: np.random.Generator | int | None = None,
    min_samples: int = 10,
    variable: str = "Z",
) -> VarianceScaling:
    r"""Fit :math:`D_Z^2(V) = D_Z^2 (A/V)^\alpha` to apparent values at several volumes.

    The sample variances :math:`s_V^2` of the :math:`n_V` values at each volume are
    fitted by weighted least squares on

    .. math::
        \log s_V^2 + b_V = \log K - \alpha\log V, \qquad
        b_V = \log\tfrac{n_V-1}{2} - \psi\!\left(\tfrac{n_V-1}{2}\right) + \frac{\kappa - 3}{2 n_V},

    with weights :math:`1/\sigma_V^2`,
    :math:`\sigma_V^2 = \operatorname{Var}\log s_V^2 = \psi'(\tfrac{n_V-1}{2}) + (\kappa-3)/n_V`:
    exact for Gaussian values (:math:`\kappa = 3`, :math:`\chi^2` statistics), and a
    delta-method correction for heavy tails, with the kurtosis :math:`\kappa`
    pooled over all volumes (and not below 3). When the weighted residuals scatter
    more than these variances allow (:math:`\chi^2` above its degrees of freedom),
    the covariance is multiplied by :math:`\chi^2/\text{dof}` (the Birge ratio), so
    that skewed apparent properties do not get over-confident intervals. The
    intervals of :math:`\alpha` and :math:`\log K` are normal intervals from the
    covariance :math:`(X^T W X)^{-1}`; those of :math:`A`, of the RVE size
    and of :math:`n` propagate draws from that normal distribution.
    (A bootstrap of the variances was tried and rejected: it under-covers, 0.91–0.93
    for a nominal 0.95 with 30–100 samples per volume.) All of this assumes
    independent samples: windows that overlap, or many windows from few specimens,
    give intervals that are too narrow.

    Parameters
    ----------
    volumes, values : array_like, shape (n,)
        SVE volume and apparent value of each sample (NaN values are dropped).
    point_variance : float, optional
        :math:`D_Z^2` (:func:`point_variance`); without it the integral range is
        NaN and only :math:`K = D_Z^2 A^\alpha` is reported, which is all the RVE
        size needs.
    alpha : float, optional
        Fix the exponent (``1`` for a finite integral range) instead of fitting it.
        Fixing it needs one volume, fitting it two.
    confidence : float
        Level of the intervals.
    n_draws : int
        Draws of :math:`(\log K, \alpha)` for the propagated intervals.
    rng : Generator, int or None
        Seeds those draws.
    min_samples : int
        Volumes with fewer samples are left out of the fit (default 10: the
        variance of fewer is too uncertain to weigh).
    variable : str
        Name of the quantity, for the result.

    Returns
    -------
    VarianceScaling
    """
    v, z = _arrays(volumes, values)
    _check_confidence(confidence)
    n_draws = _positive_int("n_draws", n_draws)
    min_samples = max(2, _positive_int("min_samples", min_samples))
    if alpha is not None:
        alpha = _positive("alpha", alpha)
    if point_variance is not None:
        point_variance = _positive("point_variance", point_variance)
    groups = _groups(v, z, min_samples)
    need = 1 if alpha is not None else 2
    if len(groups) < need:
        counts = {float(vol): int((v == vol).sum()) for vol in np.unique(v)}
        raise InputError(
            f"the fit needs {need} volume(s) with at least {min_samples} samples each; "
            f"samples per volume: {counts}" + ("" if alpha is not None else " (or fix alpha=1)")
        )
    vols = np.array([g[0] for g in groups])
    xs = [g[1] for g in groups]
    counts = np.array([x.size for x in xs])
    variances = np.array([x.var(ddof=1) for x in xs])
    if np.any(variances <= 0):
        bad = vols[variances <= 0].tolist()
        raise InputError(f"the values of {variable!r} do not vary at volume(s) {bad}; nothing to fit")
    kappa = _pooled_kurtosis([x - x.mean() for x in xs])
    bias, var_log = _log_variance_moments(counts.astype(float), kappa)
    y = np.log(variances) + bias
    x = np.log(vols)
    w = 1.0 / var_log
    if alpha is None:
        design = np.stack([np.ones_like(x), -x], axis=1)
    else:
        design = np.ones((x.size, 1))
        y = y + alpha * x
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    beta = cov @ (design.T @ (w * y))
    logk = float(beta[0])
    a = float(beta[1]) if alpha is None else float(alpha)
    chi2 = float((w * (y - design @ beta) ** 2).sum())
    dof = x.size - design.shape[1]
    if dof > 0 and chi2 > dof:  # scatter beyond the model's variances (e.g. skewed values): widen (Birge ratio)
        cov = cov * (chi2 / dof)
    gen = np.random.default_rng(rng)
    draws = gen.multivariate_normal(beta, cov, size=n_draws, method="cholesky")
    reps = draws if alpha is None else np.stack([draws[:, 0], np.full(n_draws, float(alpha))], axis=1)
    b_logk, b_alpha = reps[:, 0], reps[:, 1]
    zq = float(st.norm.ppf(0.5 + confidence / 2.0))
    se_logk = math.sqrt(cov[0, 0])
    amp = math.exp(logk)
    if point_variance is not None:
        ira = math.exp((logk - math.log(point_variance)) / a)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            b_ira = np.exp((b_logk - math.log(point_variance)) / b_alpha)
        ira_ci = _percentile(b_ira, confidence) if alpha is None else (
            math.exp((logk - zq * se_logk - math.log(point_variance)) / a),
            math.exp((logk + zq * se_logk - math.log(point_variance)) / a))
    else:
        ira, ira_ci = np.nan, (np.nan, np.nan)
    alpha_ci = (a, a) if alpha is not None else (a - zq * math.sqrt(cov[1, 1]), a + zq * math.sqrt(cov[1, 1]))
    return VarianceScaling(
        variable=variable,
        volumes=vols,
        counts=counts,
        means=np.array([x.mean() for x in xs]),
        variances=variances,
        alpha=a,
        alpha_fixed=alpha is not None,
        amplitude=amp,
        point_variance=point_variance,
        integral_range=ira,
        alpha_ci=alpha_ci,
        amplitude_ci=(math.exp(logk - zq * se_logk), math.exp(logk + zq * se_logk)),
        integral_range_ci=ira_ci,
        confidence=float(confidence),
        mean=float(xs[-1].mean()),
        kurtosis=kappa,
        chi2=chi2,
        replicates=reps,
    )


def variance_scaling(
    props: xr.Dataset,
    variable: str,
    *,
    volume: str = "volume",
    point_variance: float | None = None,
    alpha: float | None = None,
    confidence: float = 0.95,
    n_draws: int = 4000,
    rng: np.random.Generator | int | None = None,
    min_samples: int = 10,
) -> VarianceScaling:
    r"""Variance-scaling fit of an apparent-properties ``Dataset`` (see :func:`fit_variance_scaling`).

    The parameters not listed here (``alpha``, ``confidence``, ``n_draws``, ``rng``,
    ``min_samples``) are those of :func:`fit_variance_scaling`.

    Parameters
    ----------
    props : xarray.Dataset
        Apparent properties of SVEs of several volumes, generated at each size (a
        sweep over ``size``) or cut as windows from large specimens
        (:func:`~stochhom.windows`), all of one material point: only the size may
        vary. Failed samples (``converged = 0``) are left out. For the phase
        fractions of microstructure ensembles of several sizes (no solve), pass
        :func:`phase_fraction_samples` of them.
    variable : str
        A scalar quantity: ``bulk_modulus``, ``conductivity_eigenvalues_0``,
        ``stiffness_0_0``, ``phase_fraction_1``, ...
    volume : str
        The per-sample volume variable.
    point_variance : float, optional
        :math:`D_Z^2`. For ``phase_fraction_<k>`` it defaults to :math:`p(1-p)`,
        with :math:`p` the mean fraction over all samples, so that the fit returns
        the integral range of phase ``k``.
    """
    v, z = _columns(props, variable, volume)
    if point_variance is None and variable.startswith("phase_fraction_") and z.size:
        p = float(z.mean())
        if 0.0 < p < 1.0:
            point_variance = p * (1.0 - p)
    return fit_variance_scaling(v, z, point_variance=point_variance, alpha=alpha, confidence=confidence,
                                n_draws=n_draws, rng=rng, min_samples=min_samples, variable=variable)


# --------------------------------------------------------------------- systematic error


def systematic_error(
    props: xr.Dataset,
    variable: str,
    *,
    reference: float | None = None,
    volume: str = "volume",
    confidence: float = 0.95,
) -> xr.Dataset:
    r"""Bias of the mean apparent property against the SVE volume.

    .. math::
        b(V) = \bar Z_V - Z_\text{ref}, \qquad b_\text{rel}(V) = b(V)/Z_\text{ref},

    with :math:`Z_\text{ref}` = ``reference`` (e.g. a known effective property) or,
    by default, the mean at the largest volume. The interval of :math:`b` is the
    Student-t interval of :math:`\bar Z_V` (combined, for a data-based reference, with
    that of the reference mean: :math:`\sqrt{s_V^2/n_V + s_\text{ref}^2/n_\text{ref}}`,
    Welch degrees of freedom). A bias whose interval excludes zero is significant:
    the SVEs of that volume are too small for an unbiased mean, whatever the number
    of realizations.

    Returns
    -------
    xarray.Dataset
        Along ``volume``: ``count``, ``mean``, ``bias``, ``bias_low``, ``bias_high``,
        ``relative_bias``, ``significant`` (bool); attrs ``reference``.
    """
    stats = size_statistics(props, variable, volume=volume, confidence=confidence)
    n = stats["count"].values.astype(float)
    m = stats["mean"].values
    s2 = stats["variance"].values
    if reference is None:
        ref, ref_var, ref_n = float(m[-1]), float(s2[-1]), n[-1]
        if not ref_n >= 2:
            raise InputError("the reference (largest volume) has fewer than 2 samples; pass reference=...")
    else:
        ref = float(reference)
        if not np.isfinite(ref):
            raise InputError(f"reference must be finite, got {reference!r}")
        ref_var, ref_n = 0.0, np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        se2 = s2 / n + (ref_var / ref_n if np.isfinite(ref_n) else 0.0)
        if np.isfinite(ref_n):  # Welch–Satterthwaite
            dof = se2**2 / ((s2 / n) ** 2 / (n - 1) + (ref_var / ref_n) ** 2 / (ref_n - 1))
        else:
            dof = n - 1
        half = st.t.ppf(0.5 + confidence / 2, dof) * np.sqrt(se2)
    bias = m - ref
    if reference is None:  # the reference against itself has no bias
        bias[-1], half[-1] = 0.0, 0.0
    out = xr.Dataset(
        {"count": stats["count"], "mean": stats["mean"],
         "bias": ("volume", bias), "bias_low": ("volume", bias - half), "bias_high": ("volume", bias + half),
         "relative_bias": ("volume", bias / ref if ref != 0 else np.full_like(bias, np.nan)),
         "significant": ("volume", (bias - half > 0) | (bias + half < 0))},
        attrs={"variable": variable, "reference": ref, "confidence": confidence,
               "reference_source": "given" if reference is not None else "largest volume"},
    )
    return out


# ------------------------------------------------------------------- RVE size and n


def rve_size(fit: VarianceScaling, epsilon: float, n: int = 1, mean: float | None = None) -> Estimate:
    r"""SVE volume for relative error ``epsilon`` with ``n`` realizations (:meth:`VarianceScaling.rve_size`).

    .. math:: V = \left(\frac{4 D_Z^2 A^\alpha}{\varepsilon^2 \bar Z^2 n}\right)^{1/\alpha}
    """
    _check_fit(fit)
    return fit.rve_size(epsilon, n, mean)


def n_realizations(fit: VarianceScaling, volume: float, epsilon: float, mean: float | None = None) -> Estimate:
    r"""Realizations needed at ``volume`` for relative error ``epsilon`` (:meth:`VarianceScaling.n_realizations`).

    .. math:: n = \left\lceil \frac{4 D_Z^2(V)}{\varepsilon^2 \bar Z^2} \right\rceil
    """
    _check_fit(fit)
    return fit.n_realizations(volume, epsilon, mean)


def _check_fit(fit: Any) -> None:
    if not isinstance(fit, VarianceScaling):
        raise InputError(f"expected a VarianceScaling fit (from variance_scaling), got {type(fit).__name__}")


# ------------------------------------------------------------------------ ergodicity


def _values(data: Any, variable: str | None, volume: str) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(data, xr.Dataset):
        if variable is None:
            raise InputError("name the variable to compare, e.g. variable='bulk_modulus'")
        v, z = _columns(data, variable, volume)
        return z, v
    z = np.asarray(data, dtype=float).reshape(-1)
    return z[np.isfinite(z)], None


def ergodicity(
    large: Any,
    small: Any,
    variable: str | None = None,
    *,
    fit: VarianceScaling | None = None,
    volume: str = "volume",
    confidence: float = 0.95,
) -> dict[str, Any]:
    r"""Compare the spatial average over large SVEs with the ensemble average of small ones.

    For an ergodic medium the apparent property of one large volume tends to the
    ensemble mean, so the mean :math:`\bar Z_L` of the ``large`` values (one or a
    few SVEs) and the mean :math:`\bar Z_S` of the ``small`` ones should agree
    within their errors (up to the systematic error of the small size, see
    :func:`systematic_error`). The test statistic is

    .. math::
        z = \frac{\bar Z_L - \bar Z_S}{\sqrt{\sigma_L^2/n_L + s_S^2/n_S}},

    where :math:`\sigma_L^2` is the variance of one large SVE: the sample variance of
    the large values when there are at least two, else the variance-scaling fit at
    the large volume (``fit``), else the small-SVE variance scaled with
    :math:`\alpha = 1`, :math:`s_S^2 V_S/V_L` (needs volumes: Datasets).

    Parameters
    ----------
    large, small : xarray.Dataset or array_like
        Apparent properties (Datasets, with ``variable``) or plain values.
    variable : str, optional
        Scalar quantity, for Datasets.
    fit : VarianceScaling, optional
        Gives :math:`\sigma_L^2` for a single large SVE.

    Returns
    -------
    dict
        ``large_mean``, ``small_mean``, ``difference``, ``relative_difference``,
        ``standard_error``, ``z``, ``p_value`` (two-sided), ``consistent``
        (``p_value >= 1 - confidence``), ``n_large``, ``n_small``, ``large_variance_source``.
    """
    _check_confidence(confidence)
    zl, vl = _values(large, variable, volume)
    zs, vs = _values(small, variable, volume)
    if zs.size < 2:
        raise InputError(f"the small SVEs need at least 2 finite values, got {zs.size}")
    if zl.size < 1:
        raise InputError("no finite value for the large SVE(s)")
    if vs is not None and np.unique(vs).size > 1:
        raise InputError("the small SVEs must all have the same volume")
    if zl.size >= 2:
        var_l, source = float(zl.var(ddof=1)), "sample variance"
    elif fit is not None:
        _check_fit(fit)
        if vl is None:
            raise InputError("fit needs the volume of the large SVE: pass a Dataset")
        var_l, source = float(fit.variance(vl[0])), "variance-scaling fit"
    elif vl is not None and vs is not None:
        var_l, source = float(zs.var(ddof=1) * vs[0] / vl[0]), "small-SVE variance scaled with alpha = 1"
    else:
        raise InputError("one large value needs a variance: pass fit=..., Datasets with volumes, or several values")
    ml, ms = float(zl.mean()), float(zs.mean())
    se = math.sqrt(var_l / zl.size + float(zs.var(ddof=1)) / zs.size)
    diff = ml - ms
    z = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(np.inf, diff))
    p = float(2.0 * st.norm.sf(abs(z)))
    return {
        "large_mean": ml, "small_mean": ms, "difference": diff,
        "relative_difference": diff / ms if ms != 0 else np.nan,
        "standard_error": se, "z": float(z), "p_value": p, "consistent": bool(p >= 1.0 - confidence),
        "n_large": int(zl.size), "n_small": int(zs.size), "large_variance_source": source,
    }


# ------------------------------------------------------------- boundary-condition hierarchy
#: Conditions of :func:`boundary_hierarchy`, softest first.
HIERARCHY = ("subc", "periodic", "kubc")


def boundary_hierarchy(
    ensembles: xr.Dataset | Sequence[xr.Dataset],
    phases: Any,
    variable: str,
    *,
    conditions: tuple[str, ...] = HIERARCHY,
    volume: str = "volume",
    confidence: float = 0.95,
    **solver_options: Any,
) -> xr.Dataset:
    r"""Apparent properties of every SVE under several boundary conditions, by SVE size.

    Kanit et al. (2003): for each condition, the mean and the dispersion of an apparent
    property against the SVE volume. With the same elements every SVE satisfies
    :math:`\mathbb C^{\rm SUBC}\preceq\mathbb C^{\rm per}\preceq\mathbb C^{\rm KUBC}`
    (:doc:`/theory/boundary_conditions`), so the means are ordered and the gap between
    the static and kinematic means closes as the SVEs grow; :func:`bracket_size` reads
    off where it falls below a tolerance.

    Parameters
    ----------
    ensembles : xarray.Dataset or sequence of them
        SVEs (one material point), one ensemble per size: e.g. windows of a specimen
        at several window sizes, or generated samples of several shapes.
    phases
        As in :func:`~stochhom.statistics.homogenize_ensemble`.
    variable : str
        A scalar apparent property (``"bulk_modulus"``, ``"conductivity_eigenvalues_0"``, ...).
    conditions : tuple of str
        Boundary conditions (:func:`stochhom.homogenize`'s ``boundary``); ``"periodic"``
        runs the FFT solver with ``discretization="q1"``, the elements of the others.
    volume, confidence
        As in :func:`size_statistics`.
    **solver_options
        Passed to :func:`~stochhom.homogenize` (``tol``, ``maxiter``).

    Returns
    -------
    xarray.Dataset
        :func:`size_statistics` along ``condition`` and ``volume``, and the per-sample
        values ``samples`` (``condition, sample``) with the sample volumes.
    """
    import warnings

    from ..errors import NonPeriodicWarning
    from .ensemble import homogenize_ensemble

    if not conditions or len(set(conditions)) != len(conditions):
        raise InputError(f"conditions must be distinct boundary conditions, got {conditions!r}")
    ensembles = [ensembles] if isinstance(ensembles, xr.Dataset) else list(ensembles)
    if not ensembles:
        raise InputError("no ensemble given")
    props = {}
    for cond in conditions:
        opts = dict(solver_options, boundary=cond)
        if cond == "periodic":
            opts.setdefault("discretization", "q1")
        with warnings.catch_warnings():  # periodic on windows is asked for here, as one rung of the ladder
            warnings.simplefilter("ignore", NonPeriodicWarning)
            parts = [homogenize_ensemble(e, phases, **opts) for e in ensembles]
        props[cond] = xr.concat(parts, dim="sample", join="outer", combine_attrs="drop_conflicts")
    return hierarchy_statistics(props, variable, volume=volume, confidence=confidence)


def hierarchy_statistics(props: Mapping[str, xr.Dataset], variable: str, *, volume: str = "volume",
                         confidence: float = 0.95, reference: str = "periodic") -> xr.Dataset:
    r"""The boundary-condition hierarchy of already computed apparent properties.

    Parameters
    ----------
    props : mapping of str to xarray.Dataset
        For each boundary condition, the apparent properties of the same SVEs in the
        same order (as :func:`~stochhom.statistics.homogenize_ensemble` returns them).
    variable, volume, confidence
        As in :func:`boundary_hierarchy`.
    reference : str
        The condition whose mean at the largest volume estimates the effective property
        for ``bias`` (``"periodic"``: it converges fastest, Kanit et al. 2003); the first
        condition when absent.

    Returns
    -------
    xarray.Dataset
        :func:`size_statistics` along ``condition`` and ``volume``; ``samples``
        (``condition, sample``) with ``sample_volume``; ``bias``, the relative bias of
        each condition's mean, :math:`(\bar Z^{c}(V) - \bar Z^{\rm ref}(V_{\max}))/
        \bar Z^{\rm ref}(V_{\max})`; ``gap``, :math:`(\bar Z^{\rm max} - \bar Z^{\rm
        min})/\bar Z^{\rm ref}` over the conditions at each volume; ``ordered``, the
        fraction of SVEs whose values follow the order of ``conditions`` (softest first)
        to :math:`10^{-9}` relative (1 for the exact hierarchy, whatever the sample).
    """
    conditions = list(props)
    if not conditions:
        raise InputError("no boundary condition given")
    sizes = {c: p.sizes.get("sample", 0) for c, p in props.items()}
    if len(set(sizes.values())) != 1:
        raise InputError(f"the conditions hold different numbers of samples {sizes}; solve the same SVEs under each")
    stats, values = [], []
    for cond in conditions:
        p = props[cond].assign_coords(sample=np.arange(sizes[cond]))
        stats.append(size_statistics(p, variable, volume=volume, confidence=confidence))
        col = scalar_columns(p, variable)
        if len(col) != 1:
            raise InputError(f"{variable!r} has several components {sorted(col)}; name one of them")
        z = np.where(_converged(p), next(iter(col.values())), np.nan)
        values.append(xr.DataArray(z, dims="sample", coords={"sample": p["sample"].values}))
    out = xr.concat(stats, dim=xr.DataArray(conditions, dims="condition", name="condition"), join="outer")
    out["samples"] = xr.concat(values, dim="condition").assign_coords(condition=conditions)
    out["sample_volume"] = ("sample", props[conditions[0]][volume].values)
    ref = reference if reference in conditions else conditions[0]
    mean = out["mean"]
    z_ref = float(mean.sel(condition=ref).dropna("volume").values[-1])
    out["bias"] = (mean - z_ref) / z_ref
    out["gap"] = (mean.max("condition") - mean.min("condition")) / mean.sel(condition=ref)
    z = out["samples"].values
    rank = {"subc": 0, "mixed": 1, "periodic": 1, "periodic_fe": 1, "kubc": 2}
    ok = np.ones(z.shape[1], dtype=bool)
    for i, lo in enumerate(conditions):  # the pairs the theory orders: SUBC <= mixed, periodic <= KUBC
        for j, hi in enumerate(conditions):
            if rank.get(lo, -9) < rank.get(hi, -9):
                fine = (z[j] >= z[i] - 1e-9 * np.abs(z[j])) | np.isnan(z[i]) | np.isnan(z[j])
                ok &= fine
    out["ordered"] = float(ok.mean()) if ok.size else np.nan
    out.attrs.update(variable=variable, confidence=confidence, conditions=conditions, reference=ref,
                     effective_estimate=z_ref)
    return out


def bracket_size(hierarchy: xr.Dataset, epsilon: float, *, lower: str = "subc", upper: str = "kubc",
                 reference: str = "periodic") -> float:
    r"""Smallest SVE volume at which the static and kinematic means agree within ``epsilon``.

    :math:`(\bar Z^{\rm upper} - \bar Z^{\rm lower}) / \bar Z^{\rm reference}\le\epsilon`
    at that volume and every larger one computed (the gap need not shrink monotonically
    on few samples). ``inf`` where no computed volume qualifies.
    """
    eps = _positive("epsilon", epsilon)
    conds = list(hierarchy["condition"].values)
    for c in (lower, upper, reference):
        if c not in conds:
            raise InputError(f"the hierarchy has no condition {c!r}; it has {conds}")
    m = hierarchy["mean"]
    gap = ((m.sel(condition=upper) - m.sel(condition=lower)) / m.sel(condition=reference)).values
    vols = hierarchy["volume"].values
    ok = np.isfinite(gap) & (gap <= eps)
    for i in range(len(vols)):
        if ok[i:].all():
            return float(vols[i])
    return math.inf
