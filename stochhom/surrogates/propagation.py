r"""Uncertainty propagation through a surrogate, with an honest split of the sources.

The output :math:`Y` of a microstructure at parameters :math:`\theta` combines three
sources of uncertainty:

* **input**: :math:`\theta` is random, with a given input distribution;
* **aleatoric** (microstructural scatter): at fixed :math:`\theta`, SVEs differ; a
  surrogate with a noise model predicts its variance :math:`\sigma^2_n(\theta)`;
* **epistemic** (surrogate error): the surrogate does not know :math:`f(\theta)`
  exactly; a GP gives posterior function samples :math:`f_j`.

The samples :math:`Y_{ij} = f_j(\theta_i) + \varepsilon_{ij}`,
:math:`\varepsilon_{ij} \sim \mathcal N(0, \sigma_n^2(\theta_i))`, follow the law of
total variance

.. math::
    \operatorname{Var} Y
    = \underbrace{\mathbb E_\theta[\sigma_n^2(\theta)]}_{\text{aleatoric}}
    + \underbrace{\mathbb E_\theta[\operatorname{Var}_f f(\theta)]}_{\text{epistemic}}
    + \underbrace{\operatorname{Var}_\theta(\mathbb E_f f(\theta))}_{\text{input}},

where the first two terms form :math:`\mathbb E[\operatorname{Var}(Y\mid\theta)]` and
the last :math:`\operatorname{Var}(\mathbb E[Y\mid\theta])`. The inputs are drawn by
quasi-Monte Carlo (scrambled Sobol, :mod:`scipy.stats.qmc`).

Surrogates without posterior function samples contribute their predictive standard
deviation as independent draws per point. With a noise model, its excess over the
noise is the epistemic part. Without one (a PCE, whose LOO standard deviation mixes
the microstructural scatter and the surrogate error) it cannot be split: it is
reported as ``unsplit`` (part of E[Var(Y|θ)]), never as epistemic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats as st
import xarray as xr

from ..errors import InputError
from .base import check_is_fitted

__all__ = ["PropagationResult", "propagate", "as_distribution"]


def as_distribution(distribution: Any) -> Any:
    """An object with ``sample(n, rng, method)`` and ``names`` from a distribution or spec."""
    if hasattr(distribution, "sample") and hasattr(distribution, "names"):
        return distribution
    from .distributions import input_distribution

    return input_distribution(distribution)


@dataclass(frozen=True)
class PropagationResult:
    r"""Output distribution of a propagation (:func:`propagate`).

    Attributes
    ----------
    samples : numpy.ndarray, shape (n_functions, n_inputs[, q])
        Output samples :math:`Y_{ij}` (all sources included).
    inputs : numpy.ndarray, shape (n_inputs, p)
        The QMC input samples :math:`\theta_i`.
    mean, std : numpy.ndarray
        Moments of :math:`Y` (scalar or ``(q,)``).
    mean_ci, std_ci : tuple of numpy.ndarray
        Intervals at level ``confidence``: the spread of the moment over the posterior
        functions (epistemic), widened by the Monte Carlo standard error.
    quantiles : dict of float to numpy.ndarray
    variance : dict of str to numpy.ndarray
        ``total``, ``aleatoric``, ``epistemic``, ``unsplit`` (predictive variance of a
        model without a noise model), ``input``; and ``within`` = E[Var(Y|θ)] =
        aleatoric + epistemic + unsplit, ``between`` = Var(E[Y|θ]) = input.
    epistemic_share : numpy.ndarray
        epistemic / total.
    """

    samples: np.ndarray
    inputs: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    mean_ci: tuple[np.ndarray, np.ndarray]
    std_ci: tuple[np.ndarray, np.ndarray]
    quantiles: dict[float, np.ndarray]
    variance: dict[str, np.ndarray]
    epistemic_share: np.ndarray
    confidence: float
    names: list[str] = field(default_factory=list)

    def density(self, grid: Any = None, output: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Kernel density estimate of the output (``scipy.stats.gaussian_kde``): ``(grid, pdf)``."""
        y = self.samples.reshape(-1) if self.samples.ndim == 2 else self.samples[..., output].reshape(-1)
        kde = st.gaussian_kde(y)
        if grid is None:
            lo, hi = np.percentile(y, [0.1, 99.9])
            pad = 0.1 * (hi - lo)
            grid = np.linspace(lo - pad, hi + pad, 256)
        grid = np.asarray(grid, dtype=float)
        return grid, kde(grid)

    def to_dataset(self) -> xr.Dataset:
        """Moments, quantiles and the variance decomposition as a ``Dataset``."""
        q = np.atleast_1d(self.mean).size
        out = xr.Dataset(
            {
                "mean": ("output", np.atleast_1d(self.mean)),
                "std": ("output", np.atleast_1d(self.std)),
                "mean_low": ("output", np.atleast_1d(self.mean_ci[0])),
                "mean_high": ("output", np.atleast_1d(self.mean_ci[1])),
                "std_low": ("output", np.atleast_1d(self.std_ci[0])),
                "std_high": ("output", np.atleast_1d(self.std_ci[1])),
                "quantile_value": (("quantile", "output"),
                                   np.array([np.atleast_1d(v) for v in self.quantiles.values()])),
                **{f"variance_{k}": ("output", np.atleast_1d(v)) for k, v in self.variance.items()},
                "epistemic_share": ("output", np.atleast_1d(self.epistemic_share)),
            },
            coords={"output": self.names or list(range(q)), "quantile": list(self.quantiles)},
            attrs={"confidence": self.confidence, "n_inputs": self.inputs.shape[0],
                   "n_functions": self.samples.shape[0]},
        )
        return out


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def propagate(
    model: Any,
    distribution: Any,
    n_samples: int = 4096,
    *,
    n_functions: int = 64,
    include: tuple[str, ...] = ("aleatoric", "epistemic"),
    method: str = "sobol",
    quantiles: tuple[float, ...] = (0.025, 0.05, 0.5, 0.95, 0.975),
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
    output_names: list[str] | None = None,
) -> PropagationResult:
    r"""Push an input distribution through a fitted surrogate (see the module docstring).

    Parameters
    ----------
    model : fitted surrogate
        :class:`~stochhom.surrogates.GPR` (posterior function samples and a noise
        model), :class:`~stochhom.surrogates.PCE`, or any regressor with
        ``predict(X, return_std=True)``.
    distribution : input distribution, spec or chaospy distribution
        See :func:`~stochhom.surrogates.distributions.input_distribution`; its inputs
        are the surrogate's features, in order.
    n_samples : int
        Input samples (a power of 2 for Sobol points).
    n_functions : int
        Posterior function samples (epistemic); 1 when ``"epistemic"`` is excluded.
    include : tuple of {"aleatoric", "epistemic"}
        Sources besides the input uncertainty.
    method : {"sobol", "lhs", "random"}
        Input sampling.
    quantiles : tuple of float
        Output quantiles to report.
    confidence : float
        Level of the intervals of the moments.
    rng : Generator, int or None
        Seeds the inputs, the function samples and the noise.

    Returns
    -------
    PropagationResult
    """
    check_is_fitted(model)
    dist = as_distribution(distribution)
    n_samples = _positive_int("n_samples", n_samples)
    n_functions = _positive_int("n_functions", n_functions)
    unknown = set(include) - {"aleatoric", "epistemic"}
    if unknown:
        raise InputError(f"include: unknown source(s) {sorted(unknown)}; allowed: 'aleatoric', 'epistemic'")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence!r}")
    if any(not 0 < q < 1 for q in quantiles):
        raise InputError(f"quantiles must lie in (0, 1), got {quantiles!r}")
    p = getattr(model, "n_features_in_", None)
    if p is not None and len(dist.names) != p:
        raise InputError(f"the distribution has {len(dist.names)} input(s) {dist.names} but the surrogate "
                         f"was fitted with {p} feature(s)")
    gen = np.random.default_rng(rng)
    theta = np.asarray(dist.sample(n_samples, rng=gen, method=method), dtype=float)

    epistemic = "epistemic" in include
    if epistemic and hasattr(model, "sample_functions"):
        f = np.asarray(model.sample_functions(theta, n_functions, rng=gen), dtype=float)
        pointwise_eps = None
    else:
        mean, sd = model.predict(theta, return_std=True) if epistemic else (model.predict(theta), None)
        mean = np.asarray(mean, dtype=float)
        if epistemic and hasattr(model, "noise_variance"):  # total std includes the noise: remove it
            var_f = np.maximum(np.asarray(sd, dtype=float) ** 2 - np.asarray(model.noise_variance(theta)), 0.0)
            sd = np.sqrt(var_f)
        pointwise_eps = None if sd is None else np.asarray(sd, dtype=float)
        reps = n_functions if pointwise_eps is not None else 1
        f = np.broadcast_to(mean, (reps, *mean.shape)).copy()
        if pointwise_eps is not None:
            f += pointwise_eps * gen.standard_normal(f.shape)
    noise_var = np.zeros(f.shape[1:])
    if "aleatoric" in include and hasattr(model, "noise_variance"):
        noise_var = np.broadcast_to(np.asarray(model.noise_variance(theta), dtype=float), f.shape[1:])
    y = f + np.sqrt(noise_var) * gen.standard_normal(f.shape)

    flat = y.reshape(-1, *y.shape[2:])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0, ddof=1)
    var_alea = noise_var.mean(axis=0)
    var_eps = f.var(axis=0, ddof=1).mean(axis=0) if f.shape[0] > 1 else np.zeros_like(mean)
    var_in = f.mean(axis=0).var(axis=0, ddof=1)
    # a predictive std without a noise model (a PCE's LOO std) mixes the microstructural scatter
    # and the surrogate error: it is reported as "unsplit", not as epistemic
    unsplit = np.zeros_like(var_eps)
    if pointwise_eps is not None and not hasattr(model, "noise_variance"):
        unsplit, var_eps = var_eps, np.zeros_like(var_eps)
    total = var_alea + var_eps + unsplit + var_in
    # intervals of the moments: spread over functions (epistemic) + Monte Carlo error of one function
    z = st.norm.ppf(0.5 + confidence / 2)
    per_mean = y.mean(axis=1)
    per_std = y.std(axis=1, ddof=1)
    n_in = y.shape[1]
    mc_mean = per_std.mean(axis=0) / np.sqrt(n_in)
    mc_std = per_std.mean(axis=0) / np.sqrt(2 * (n_in - 1))
    spread_mean = per_mean.std(axis=0, ddof=1) if y.shape[0] > 1 else np.zeros_like(mean)
    spread_std = per_std.std(axis=0, ddof=1) if y.shape[0] > 1 else np.zeros_like(mean)
    half_mean = z * np.sqrt(spread_mean**2 + mc_mean**2)
    half_std = z * np.sqrt(spread_std**2 + mc_std**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, var_eps / total, 0.0)
    names = output_names or []
    return PropagationResult(
        samples=y,
        inputs=theta,
        mean=mean,
        std=std,
        mean_ci=(mean - half_mean, mean + half_mean),
        std_ci=(std - half_std, std + half_std),
        quantiles={float(q): np.quantile(flat, q, axis=0) for q in quantiles},
        variance={"total": total, "aleatoric": var_alea, "epistemic": var_eps, "unsplit": unsplit, "input": var_in,
                  "within": var_alea + var_eps + unsplit, "between": var_in},
        epistemic_share=share,
        confidence=float(confidence),
        names=names,
    )
