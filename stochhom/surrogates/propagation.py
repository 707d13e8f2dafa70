r"""Uncertainty propagation through a surrogate, with an honest split of the sources.

The output :math:`Y` of a microstructure at parameters :math:`\theta` combines three
sources of uncertainty:

* **input**: :math:`\theta` is random, with a given input distribution;
* **aleatoric** (microstructural scatter): at fixed :math:`\theta`, SVEs differ; a
  surrogate with a noise model predicts its variance :math:`\sigma^2_n(\theta)`;
* **epistemic** (surrogate error): the surrogate does not know :math:`f(\theta)`
  exactly; its posterior (GP) or bootstrap (PCE) law of :math:`f(\theta)` has
  variance :math:`v_f(\theta)`.

A :class:`~stochhom.surrogates.bounded.BoundedSurrogate` regresses the latent :math:`\ln Y`
and truncates its law to physical bounds, so in general :math:`Y \mid \theta, f` has the law
of :math:`f(\theta) + \varepsilon` truncated to the bounds and mapped to :math:`Y`
(:class:`~stochhom.surrogates.bounded.Truncation`), or simply :math:`f(\theta) + \varepsilon`.
The law of total variance splits

.. math::
    \operatorname{Var} Y
    = \underbrace{\mathbb E_\theta\,\mathbb E_f \operatorname{Var}_\varepsilon Y}_{\text{aleatoric}}
    + \underbrace{\mathbb E_\theta \operatorname{Var}_f \mathbb E_\varepsilon Y}_{\text{epistemic}}
    + \underbrace{\operatorname{Var}_\theta \mathbb E[Y\mid\theta]}_{\text{input}} .

**Estimators.** At each QMC input :math:`\theta_i` (scrambled Sobol,
:mod:`scipy.stats.qmc`), the conditional moments over :math:`f \sim N(\mu, v_f)` and
:math:`\varepsilon` are exact: closed form over the scatter (the truncated lognormal's
moments) and Gauss–Hermite quadrature over :math:`f` (:func:`conditional_moments`; closed
form altogether for an untransformed model): the aleatoric and epistemic
terms are their means over the inputs, and the input term is the sample variance of
:math:`\mathbb E[Y\mid\theta_i]`. The split therefore has no Monte Carlo error from the
function draws: it is unbiased for any number of functions, and
:math:`\mathrm{std}^2` equals the total, the sum of the parts. (Estimating the input term
from the means of :math:`J` independent draws per input, as a naive estimator does, keeps
their Monte Carlo variance :math:`\bar v/J`: for :math:`Y = 2\theta + N(0, 1)`,
:math:`\theta \sim U(0, 1)` and :math:`J = 4` it gives 0.57 instead of 1/3.)

**Samples** :math:`Y_{ij}`, drawn from the law of :math:`Y \mid \theta_i, f_j`, give the quantiles, the
densities and the intervals of the moments: :math:`f_j` are joint posterior functions when
the model has ``sample_functions`` (GPR; a bootstrap PCE), otherwise independent draws from
the marginal at each input, whose spread says nothing about the uncertainty of the mean
(the intervals of the moments then hold the QMC error only). With bounds every sample lies
inside them.

Surrogates with a predictive standard deviation but no noise model (a PCE with
``std_method="loo"``, whose LOO error mixes the microstructural scatter and the surrogate
error) report that part as ``unsplit`` (part of :math:`\mathbb E\operatorname{Var}(Y\mid\theta)`),
never as epistemic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats as st
import xarray as xr

from ..errors import InputError
from .base import check_is_fitted

__all__ = ["LatentView", "PropagationResult", "as_distribution", "conditional_moments", "latent_view", "propagate"]


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
        Moments of :math:`Y` (scalar or ``(q,)``); ``std**2`` is ``variance["total"]``.
    mean_ci, std_ci : tuple of numpy.ndarray
        Intervals at level ``confidence``: the spread of the moment over joint posterior
        functions (epistemic), widened by the Monte Carlo standard error.
    quantiles : dict of float to numpy.ndarray
    variance : dict of str to numpy.ndarray
        ``total``, ``aleatoric``, ``epistemic``, ``unsplit`` (predictive variance of a
        model without a noise model), ``input``; and ``within`` = E[Var(Y|θ)] =
        aleatoric + epistemic + unsplit, ``between`` = Var(E[Y|θ]) = input.
    epistemic_share : numpy.ndarray
        epistemic / total.
    joint_functions : bool
        Whether the samples come from joint posterior functions (the intervals of the
        moments then include the surrogate's uncertainty) or independent draws per input.
    bounds : tuple of numpy.ndarray or None
        Lower and upper bounds of the output at each input (a bounded surrogate), else None.
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
    joint_functions: bool = True
    bounds: tuple[np.ndarray, np.ndarray] | None = None

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


class _Identity:
    """The output map of a model that regresses its output directly: the Gaussian law itself."""

    lower = upper = None

    @staticmethod
    def moments(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(mean, dtype=float), np.asarray(var, dtype=float)

    @staticmethod
    def sample(mean: np.ndarray, var: np.ndarray, rng: Any) -> np.ndarray:
        mean = np.asarray(mean, dtype=float)
        shape = np.broadcast_shapes(mean.shape, np.shape(var))
        return mean + np.sqrt(var) * np.random.default_rng(rng).standard_normal(shape)


@dataclass
class LatentView:
    r"""What propagation and sensitivity need from a surrogate, whatever its kind.

    The surrogate's output is :math:`Y = h(f(\theta) + \varepsilon)`: a latent function
    :math:`f` (posterior marginal :math:`N(\mu(\theta), v_f(\theta))`, and joint posterior
    function samples when the model has them), a latent noise
    :math:`\varepsilon \sim N(0, \sigma_n^2(\theta))`, and an output map: the identity, or
    the truncation of :math:`f + \varepsilon` to physical bounds and its map to :math:`y`
    (:class:`~stochhom.surrogates.bounded.Truncation`).
    """

    model: Any
    predict: Any
    functions: Any  # callable (X, n, rng) -> (J, n[, q]) latent function samples, or None
    noise: Any  # callable X -> latent noise variance, or None
    output_map: Any  # callable X -> law of Y given the latent mean and variance (moments, sample), or None

    @property
    def split(self) -> str:
        """``"split"`` (a noise model separates the scatter from the surrogate's uncertainty) or
        ``"unsplit"`` (a predictive std without a noise model)."""
        return "split" if self.noise is not None else "unsplit"

    def marginal(self, X: np.ndarray, epistemic: bool, aleatoric: bool) -> tuple[np.ndarray, ...]:
        """Latent mean, posterior variance :math:`v_f` and noise variance at ``X``."""
        if epistemic:
            mu, sd = self.predict(X, return_std=True)
            mu = np.asarray(mu, dtype=float)
            total = np.asarray(sd, dtype=float) ** 2
        else:
            mu = np.asarray(self.predict(X), dtype=float)
            total = None
        noise = np.zeros_like(mu) if self.noise is None else np.broadcast_to(
            np.asarray(self.noise(X), dtype=float), mu.shape).copy()
        v_f = np.zeros_like(mu) if total is None else np.maximum(total - noise, 0.0)
        if not aleatoric:
            noise = np.zeros_like(mu)
        return mu, v_f, noise

    def transform(self, X: np.ndarray) -> Any:
        return _Identity() if self.output_map is None else self.output_map(X)


def latent_view(model: Any) -> LatentView:
    """The :class:`LatentView` of a fitted surrogate (a :class:`~stochhom.surrogates.GPR`,
    :class:`~stochhom.surrogates.PCE`, :class:`~stochhom.surrogates.bounded.BoundedSurrogate`
    or any regressor with ``predict(X, return_std=True)``)."""
    if hasattr(model, "output_map"):
        return LatentView(model, model.predict_latent, getattr(model, "sample_latent_functions", None),
                          getattr(model, "latent_noise_variance", None), model.output_map)
    return LatentView(model, model.predict, getattr(model, "sample_functions", None),
                      getattr(model, "noise_variance", None), None)


def _gh(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / np.sqrt(2.0 * np.pi)


#: Gauss–Hermite nodes of the average over the latent function in :func:`conditional_moments`.
_GH_NODES = 24


def conditional_moments(transform: Any, mu: np.ndarray, v_f: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
    r"""Per-point moments of the output :math:`Y` given :math:`f \sim N(\mu, v_f)` and the scatter.

    :math:`Y \mid f` has the law of ``transform`` with latent mean :math:`f` and variance
    :math:`\sigma_n^2` (Gaussian for the identity; truncated to the bounds, on the log scale,
    for a :class:`~stochhom.surrogates.bounded.Truncation`), whose moments are in closed form;
    the average over :math:`f` is a Gauss–Hermite quadrature (closed form for the identity;
    none where :math:`v_f = 0`):

    * ``mean`` :math:`\bar m = E[Y]`;
    * ``aleatoric`` :math:`E_f \operatorname{Var}(Y \mid f)`;
    * ``epistemic`` :math:`\operatorname{Var}_f E[Y \mid f]`.
    """
    if isinstance(transform, _Identity):
        return {"mean": mu, "aleatoric": noise, "epistemic": v_f}
    if not np.any(v_f > 0):
        mean, alea = transform.moments(mu, noise)
        return {"mean": mean, "aleatoric": alea, "epistemic": np.zeros_like(mean)}
    x, w = _gh(_GH_NODES)
    sf = np.sqrt(v_f)
    mean = np.zeros(mu.shape)
    second = np.zeros(mu.shape)
    alea = np.zeros(mu.shape)
    for xa, wa in zip(x, w):
        m, v = transform.moments(mu + sf * xa, noise)
        mean += wa * m
        second += wa * m * m
        alea += wa * v
    return {"mean": mean, "aleatoric": alea, "epistemic": np.maximum(second - mean**2, 0.0)}


def latent_functions(view: LatentView, X: np.ndarray, mu: np.ndarray, v_f: np.ndarray, n_functions: int,
                     gen: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Latent function samples ``(J, n[, q])`` at ``X``: joint posterior draws when the model
    has them (``True``), else independent draws from the marginals (``False``)."""
    if view.functions is not None:
        return np.asarray(view.functions(X, n_functions, rng=gen), dtype=float), True
    return mu[None] + np.sqrt(v_f)[None] * gen.standard_normal((n_functions, *mu.shape)), False


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
        model), :class:`~stochhom.surrogates.PCE`, a
        :class:`~stochhom.surrogates.bounded.BoundedSurrogate` (samples inside its
        bounds), or any regressor with ``predict(X, return_std=True)``.
    distribution : input distribution, spec or chaospy distribution
        See :func:`~stochhom.surrogates.distributions.input_distribution`; its inputs
        are the surrogate's features, in order.
    n_samples : int
        Input samples (a power of 2 for Sobol points).
    n_functions : int
        Posterior function samples (epistemic); 1 when ``"epistemic"`` is excluded. The
        variance split does not depend on it (it is exact at each input); the samples,
        quantiles and the intervals of the moments do.
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
    view = latent_view(model)
    epistemic, aleatoric = "epistemic" in include, "aleatoric" in include
    mu, v_f, noise = view.marginal(theta, epistemic, aleatoric)

    # the variance split: exact in the surrogate's and the scatter's randomness at each input,
    # Monte Carlo (QMC) over the inputs only
    tr = view.transform(theta)
    cm = conditional_moments(tr, mu, v_f, noise)
    var_in = cm["mean"].var(axis=0, ddof=1)
    var_alea = cm["aleatoric"].mean(axis=0)
    var_f = cm["epistemic"].mean(axis=0)
    unsplit = np.zeros_like(var_f)
    if view.split == "unsplit":  # a predictive std without a noise model mixes scatter and surrogate error
        unsplit, var_f = var_f, np.zeros_like(var_f)
    total = var_alea + var_f + unsplit + var_in
    mean = cm["mean"].mean(axis=0)
    std = np.sqrt(total)

    # samples: posterior functions (joint when the model has them) plus the scatter, through the map
    reps = n_functions if epistemic else 1
    f, joint = latent_functions(view, theta, mu, v_f, reps, gen) if epistemic else (mu[None], True)
    y = tr.sample(f, np.broadcast_to(noise, f.shape), gen)
    flat = y.reshape(-1, *y.shape[2:])

    # intervals of the moments: spread over joint posterior functions plus the QMC error of one function
    z = st.norm.ppf(0.5 + confidence / 2)
    per_mean = y.mean(axis=1)
    per_std = y.std(axis=1, ddof=1)
    n_in = y.shape[1]
    mc_mean = std / np.sqrt(n_in)
    mc_std = std / np.sqrt(2 * (n_in - 1))
    several = y.shape[0] > 1 and joint
    spread_mean = per_mean.std(axis=0, ddof=1) if several else np.zeros_like(mean)
    spread_std = per_std.std(axis=0, ddof=1) if several else np.zeros_like(mean)
    half_mean = z * np.sqrt(spread_mean**2 + mc_mean**2)
    half_std = z * np.sqrt(spread_std**2 + mc_std**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, var_f / total, 0.0)
    bounds = None
    if not isinstance(tr, _Identity):
        lo_b, hi_b = np.broadcast_arrays(np.asarray(tr.lower, dtype=float), np.asarray(tr.upper, dtype=float))
        bounds = (np.broadcast_to(lo_b, mu.shape).copy(), np.broadcast_to(hi_b, mu.shape).copy())
    return PropagationResult(
        samples=y,
        inputs=theta,
        mean=mean,
        std=std,
        mean_ci=(mean - half_mean, mean + half_mean),
        std_ci=(np.maximum(std - half_std, 0.0), std + half_std),
        quantiles={float(q): np.quantile(flat, q, axis=0) for q in quantiles},
        variance={"total": total, "aleatoric": var_alea, "epistemic": var_f, "unsplit": unsplit, "input": var_in,
                  "within": var_alea + var_f + unsplit, "between": var_in},
        epistemic_share=share,
        confidence=float(confidence),
        names=output_names or [],
        joint_functions=bool(joint and epistemic),
        bounds=bounds,
    )
