r"""Adaptive (sequential) designs: spend solves where they reduce the surrogate's error most.

A fixed design (grid, Latin hypercube, Sobol) chooses every parameter point before the
first solve. A sequential design alternates fitting a Gaussian process with choosing the
next batch of points where they reduce the **integrated predictive variance** of the
latent function over the input distribution :math:`F_\theta` (IMSE; Sacks et al. 1989,
Gramacy 2020, ch. 6):

.. math:: \mathrm{IMSE} = \int v_n(\theta)\, \mathrm dF_\theta
          \approx \frac1M \sum_{i=1}^M v_n(\theta_i),

with :math:`v_n` the posterior variance of the latent mean after :math:`n` solves and
:math:`\theta_i` a scrambled Sobol sample of :math:`F_\theta`. One more solve at
:math:`x_c`, whose observation has the noise (SVE scatter) variance :math:`\tau^2(x_c)`,
reduces it by

.. math:: \Delta(x_c) = \frac1M \sum_i \frac{k_n(\theta_i, x_c)^2}{k_n(x_c, x_c) + \tau^2(x_c)},

:math:`k_n` the posterior covariance (:meth:`~stochhom.surrogates.gpr.GPR.posterior_covariance`).
With the hyperparameters held fixed, the posterior covariance does not depend on the
observed values, so a batch is chosen greedily and *exactly*: after each choice the
joint covariance of candidates and integration points is conditioned on it,
:math:`k \leftarrow k - k(\cdot, x_c)k(x_c, \cdot)/(k(x_c, x_c) + \tau^2(x_c))` (the
"kriging believer" heuristic is exact for the variance; only the hyperparameters wait
for the batch's results).

**Replicates adapt too.** The candidates are fresh points of :math:`F_\theta` *and* the
points already solved: choosing one of those adds a replicate (another SVE of the same
parameters), which the criterion prefers where the scatter :math:`\tau^2` dominates the
remaining variance there.

**Stopping.** After each round the design reports the IMSE, the epistemic share

.. math:: s_e = \frac{\int v_n\, \mathrm dF_\theta}{\int (v_n + \tau^2)\, \mathrm dF_\theta},

the part of the predictive variance that more solves could remove (the rest is SVE
scatter), and the root-mean epistemic standard deviation :math:`\sqrt{\mathrm{IMSE}}`. It
stops when the criterion (``"epistemic_share < 0.05"`` or ``"epistemic_std < 0.01"``) holds
or the budget is spent.

**Determinism.** The candidate and integration sets are drawn once from the seed, and a
round depends only on the data, so a design resumed from its solved points continues the
same sequence (:meth:`AdaptiveDesign.propose`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, OutOfDomainWarning
from .distributions import InputDistribution

__all__ = ["AdaptiveDesign", "AdaptiveResult", "BatchChoice", "StopRule", "select_batch", "design_metrics",
           "STOP_METRICS"]

#: Metrics a stopping rule can name (see :func:`design_metrics`).
STOP_METRICS = ("epistemic_share", "epistemic_std")


@dataclass(frozen=True)
class BatchChoice:
    """A batch chosen by :func:`select_batch`.

    Attributes
    ----------
    indices : numpy.ndarray
        Rows of the candidate array, in the order chosen (a row may repeat: replicates).
    points : numpy.ndarray
        The chosen points, ``(batch, p)``.
    reductions : numpy.ndarray
        The IMSE reduction :math:`\\Delta` of each choice, given the ones before it.
    imse_before, imse_after : float
        IMSE of the current model, and after the whole batch (exact for fixed
        hyperparameters, whatever the batch's results).
    """

    indices: np.ndarray
    points: np.ndarray
    reductions: np.ndarray
    imse_before: float
    imse_after: float


def _check_model(model: Any) -> None:
    if not (hasattr(model, "posterior_covariance") and hasattr(model, "noise_variance")):
        raise InputError(f"an adaptive design needs a fitted GP with posterior_covariance and noise_variance "
                         f"(stochhom.surrogates.GPR); got {type(model).__name__}")


def select_batch(model: Any, candidates: Any, integration: Any, batch: int,
                 output: int | None = None) -> BatchChoice:
    r"""Choose ``batch`` candidates that reduce the integrated variance most, greedily.

    Parameters
    ----------
    model : GPR
        Fitted; its posterior covariance and noise variance are used as they are.
    candidates : array_like, shape (m, p)
        Points that may be solved next (fresh points and, for replicates, solved ones).
        A candidate may be chosen more than once.
    integration : array_like, shape (M, p)
        A sample of the input distribution (equal weights).
    batch : int
        Number of solves to choose.
    output : int, optional
        For a multi-output model, the output whose variance is integrated (default: the
        sum over outputs, each divided by its output variance).

    Returns
    -------
    BatchChoice

    Notes
    -----
    Cost: one posterior covariance of the :math:`m + M` points (:math:`O((m+M)^2 n)`),
    then :math:`O((m+M) m)` per choice. Each choice conditions the joint covariance of
    candidates and integration points on the new observation (module docstring).
    """
    _check_model(model)
    cand = np.atleast_2d(np.asarray(candidates, dtype=float))
    integ = np.atleast_2d(np.asarray(integration, dtype=float))
    if cand.shape[1] != integ.shape[1] or not len(cand) or not len(integ):
        raise InputError(f"candidates {cand.shape} and integration points {integ.shape} must be non-empty with "
                         "the same number of columns (the model's inputs)")
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    m = len(cand)
    pts = np.vstack([cand, integ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)  # candidates may lie outside the solved box
        cov = np.asarray(model.posterior_covariance(pts))
        tau = np.asarray(model.noise_variance(cand), dtype=float)
    if cov.ndim == 3:  # several outputs: one output, or the sum of the standardized ones
        scale = np.asarray(np.var(model.y_train_, axis=0), dtype=float)
        scale = np.where(scale > 0, scale, 1.0)
        if output is not None:
            cov, tau = cov[output] / scale[output], tau[:, output] / scale[output]
        else:
            covs, taus = cov / scale[:, None, None], tau / scale[None, :]
            return _select_multi(covs, taus, cand, m, batch)
    return _select(cov, tau.reshape(-1), cand, m, batch)


def _select(cov: np.ndarray, tau: np.ndarray, cand: np.ndarray, m: int, batch: int) -> BatchChoice:
    return _select_multi(cov[None], tau[:, None], cand, m, batch)


def _select_multi(covs: np.ndarray, taus: np.ndarray, cand: np.ndarray, m: int, batch: int) -> BatchChoice:
    covs = covs.copy()
    n_int = covs.shape[1] - m
    before = float(sum(np.trace(c[m:, m:]) for c in covs) / n_int)
    chosen, reductions = [], []
    for _ in range(batch):
        score = np.zeros(m)
        for q, c in enumerate(covs):
            denom = np.diag(c)[:m] + taus[:, q]
            score += np.einsum("ij,ij->i", c[:m, m:], c[:m, m:]) / np.where(denom > 0, denom, np.inf)
        k = int(np.argmax(score))
        chosen.append(k)
        reductions.append(float(score[k] / n_int))
        for q, c in enumerate(covs):  # condition on the new observation, in place
            col = c[:, k].copy()
            c -= np.outer(col, col) / (col[k] + taus[k, q])
    after = float(sum(np.trace(c[m:, m:]) for c in covs) / n_int)
    idx = np.array(chosen, dtype=int)
    return BatchChoice(indices=idx, points=cand[idx], reductions=np.array(reductions), imse_before=before,
                       imse_after=after)


def design_metrics(model: Any, integration: Any, output: int | None = None) -> dict[str, float]:
    r"""IMSE, epistemic share and root-mean epistemic std of a fitted GP over a sample of
    the input distribution (module docstring).

    Returns
    -------
    dict
        ``imse`` (:math:`\frac1M\sum v_n(\theta_i)`, output units squared),
        ``epistemic_std`` (its square root), ``aleatoric_variance`` (the mean noise
        variance), ``epistemic_share`` (:math:`s_e`).
    """
    _check_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        comp = model.predict_components(integration)
    ev = np.asarray(comp["epistemic_std"], dtype=float) ** 2
    av = np.asarray(comp["aleatoric_std"], dtype=float) ** 2
    if ev.ndim == 2:
        ev, av = (ev[:, output], av[:, output]) if output is not None else (ev.mean(axis=1), av.mean(axis=1))
    imse, noise = float(ev.mean()), float(av.mean())
    return {"imse": imse, "epistemic_std": float(np.sqrt(imse)), "aleatoric_variance": noise,
            "epistemic_share": imse / (imse + noise) if imse + noise > 0 else 0.0}


_RULE = re.compile(r"^\s*([a-z_]+)\s*<\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class StopRule:
    """A stopping rule ``"<metric> < <value>"`` (:data:`STOP_METRICS`), parsed once."""

    metric: str
    value: float

    @classmethod
    def parse(cls, text: str) -> StopRule:
        """Parse ``"epistemic_share < 0.05"``; an :class:`InputError` says what is allowed."""
        match = _RULE.match(text) if isinstance(text, str) else None
        if match is None or match.group(1) not in STOP_METRICS:
            raise InputError(f"cannot read the stopping rule {text!r}: write '<metric> < <value>' with a metric "
                             f"of {list(STOP_METRICS)}, e.g. 'epistemic_share < 0.05'")
        try:
            value = float(match.group(2))
        except ValueError:
            raise InputError(f"the stopping rule {text!r} needs a number after '<'") from None
        if not np.isfinite(value) or value <= 0 or (match.group(1) == "epistemic_share" and value >= 1):
            raise InputError(f"the stopping rule {text!r}: the value must be positive"
                             + (" and below 1 (a share)" if match.group(1) == "epistemic_share" else ""))
        return cls(match.group(1), value)

    def met(self, metrics: Mapping[str, float]) -> bool:
        return bool(metrics[self.metric] < self.value)

    def __str__(self) -> str:
        return f"{self.metric} < {self.value:g}"


@dataclass
class AdaptiveResult:
    """The outcome of :meth:`AdaptiveDesign.run`.

    Attributes
    ----------
    X, y : numpy.ndarray
        Every solve in order: inputs ``(n, p)`` and results ``(n,)`` or ``(n, q)``.
    round : numpy.ndarray
        The round of each solve (0: the initial design).
    model : GPR
        The GP fitted to all solves.
    history : list of dict
        Per round: ``round``, ``solves`` (total after it), ``new_points``, ``replicates``,
        ``imse``, ``epistemic_std``, ``epistemic_share`` (of the model fitted *before* the
        round's batch, hence the decision's basis; the last entry is the final model),
        ``predicted_imse`` (the batch's exact IMSE reduction for fixed hyperparameters).
    stopped : str
        ``"criterion"`` or ``"budget"``.
    """

    X: np.ndarray
    y: np.ndarray
    round: np.ndarray
    model: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = "budget"

    def history_frame(self) -> Any:
        """The history as a :class:`pandas.DataFrame`, one row per round."""
        import pandas as pd

        return pd.DataFrame(self.history)


class AdaptiveDesign:
    r"""A sequential design that reduces the integrated variance of a GP surrogate.

    Parameters
    ----------
    distribution : InputDistribution or mapping
        The input distribution :math:`F_\theta` that the variance is integrated over (a
        mapping is passed to :class:`~stochhom.surrogates.distributions.InputDistribution`).
    initial_points : int
        Points of the initial scrambled Sobol design of :math:`F_\theta`.
    initial_replicates : int
        Solves per initial point (at least 2 lets the noise model see the SVE scatter
        from the start).
    batch : int
        Solves chosen per round.
    max_solves : int
        Budget: the design stops when it is spent (the last batch is cut to fit it).
    stop : str or None
        Stopping rule, e.g. ``"epistemic_share < 0.05"`` (:class:`StopRule`); ``None``:
        only the budget.
    replicates : bool
        Whether solved points are candidates too (adaptive replicates).
    n_candidates, n_integration : int
        Sizes of the fresh-candidate and integration samples of :math:`F_\theta`.
    model : GPR, optional
        Template of the surrogate (cloned and refitted every round); default
        ``GPR(noise="heteroscedastic" if initial_replicates > 1 else "homoscedastic",
        n_restarts=1, random_state=seed)``.
    output : int, optional
        For several outputs, the one whose variance is reduced (default all, standardized).
    rng : int, numpy.random.Generator or None
        Seed of the candidate and integration samples (and of the default model).

    Examples
    --------
    >>> dist = {"x": {"distribution": "uniform", "low": 0.0, "high": 1.0}}
    >>> design = AdaptiveDesign(dist, initial_points=4, batch=2, max_solves=12, rng=0)
    >>> result = design.run(lambda X: np.sin(6 * X[:, 0]))
    >>> len(result.X)
    12
    """

    def __init__(self, distribution: Any, *, initial_points: int = 16, initial_replicates: int = 2, batch: int = 8,
                 max_solves: int = 200, stop: str | None = "epistemic_share < 0.05", replicates: bool = True,
                 n_candidates: int = 512, n_integration: int = 1024, model: Any = None,
                 output: int | None = None, rng: Any = None) -> None:
        self.distribution = distribution if isinstance(distribution, InputDistribution) else \
            InputDistribution(distribution)
        for name, v, low in (("initial_points", initial_points, 2), ("initial_replicates", initial_replicates, 1),
                             ("batch", batch, 1), ("max_solves", max_solves, 1), ("n_candidates", n_candidates, 1),
                             ("n_integration", n_integration, 8)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise InputError(f"{name} must be an integer >= {low}, got {v!r}")
        if initial_points * initial_replicates > max_solves:
            raise InputError(f"the initial design ({initial_points} points x {initial_replicates} replicates) "
                             f"exceeds max_solves = {max_solves}: lower it or raise the budget")
        self.initial_points, self.initial_replicates = int(initial_points), int(initial_replicates)
        self.batch, self.max_solves = int(batch), int(max_solves)
        self.stop = StopRule.parse(stop) if stop is not None else None
        self.replicates = bool(replicates)
        self.output = output
        seed = np.random.SeedSequence(rng if not isinstance(rng, np.random.Generator)
                                      else int(rng.integers(2**63)))
        s_init, s_cand, s_int, s_model = seed.spawn(4)
        p = self.distribution.n_inputs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Sobol balance for counts not a power of 2
            self.initial = self.distribution.sample(self.initial_points, rng=np.random.default_rng(s_init))
            self.candidates = self.distribution.sample(int(n_candidates), rng=np.random.default_rng(s_cand))
            self.integration = self.distribution.sample(int(n_integration), rng=np.random.default_rng(s_int))
        self.initial = self.initial.reshape(-1, p)
        if model is None:
            from .gpr import GPR

            model = GPR(noise="heteroscedastic" if initial_replicates > 1 else "homoscedastic", n_restarts=1,
                        random_state=int(s_model.generate_state(1)[0]))
        self.model = model

    def initial_design(self) -> np.ndarray:
        """The initial solves: each initial point repeated ``initial_replicates`` times."""
        return np.repeat(self.initial, self.initial_replicates, axis=0)

    def fit(self, X: Any, y: Any) -> Any:
        """The surrogate (a clone of ``model``) fitted to the solves so far."""
        from sklearn.base import clone

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDomainWarning)
            return clone(self.model).fit(np.asarray(X, dtype=float), np.asarray(y, dtype=float))

    def propose(self, X: Any, y: Any, model: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
        """One round: fit the surrogate to the solves ``(X, y)`` and choose the next batch.

        Returns
        -------
        points : numpy.ndarray
            The next solves, ``(k, p)`` with ``k <= batch`` (cut to the budget); empty when
            the stopping rule holds or the budget is spent.
        info : dict
            The metrics of the fitted model (:func:`design_metrics`), ``stop`` (``None``,
            ``"criterion"`` or ``"budget"``), ``new_points`` and ``replicates`` in the batch,
            ``predicted_imse`` after it, and ``model``.
        """
        X = np.atleast_2d(np.asarray(X, dtype=float))
        model = self.fit(X, y) if model is None else model
        metrics = design_metrics(model, self.integration, self.output)
        info: dict[str, Any] = {**metrics, "model": model, "stop": None, "new_points": 0, "replicates": 0,
                                "predicted_imse": metrics["imse"]}
        left = self.max_solves - len(X)
        if self.stop is not None and self.stop.met(metrics):
            info["stop"] = "criterion"
        elif left <= 0:
            info["stop"] = "budget"
        if info["stop"]:
            return np.empty((0, X.shape[1])), info
        solved = np.unique(X, axis=0) if self.replicates else np.empty((0, X.shape[1]))
        cand = np.vstack([self.candidates, solved])
        choice = select_batch(model, cand, self.integration, min(self.batch, left), self.output)
        fresh = choice.indices[choice.indices < len(self.candidates)]
        new = len(np.unique(fresh))  # a fresh point chosen twice is a new point and a replicate
        info.update(new_points=new, replicates=len(choice.indices) - new, predicted_imse=choice.imse_after)
        return choice.points, info

    def run(self, func: Callable[[np.ndarray], Any], X: Any = None, y: Any = None,
            callback: Callable[[dict[str, Any], Any], None] | None = None) -> AdaptiveResult:
        """Run the design to its stopping rule or budget.

        Parameters
        ----------
        func : callable
            ``func(points) -> values``: one solve per row (values ``(k,)`` or ``(k, q)``).
        X, y : array_like, optional
            Solves already made (a resumed design): the initial design is skipped when
            given, and the rounds continue from them.
        callback : callable, optional
            ``callback(entry, model)``: each round's history entry and the model fitted
            to the solves before that round's batch.
        """
        if X is None:
            X = self.initial_design()
            y = np.asarray(func(X), dtype=float)
            rounds = np.zeros(len(X), dtype=int)
        else:
            X, y = np.atleast_2d(np.asarray(X, dtype=float)), np.asarray(y, dtype=float)
            rounds = np.zeros(len(X), dtype=int)
        self._check_values(X, y)
        history: list[dict[str, Any]] = []
        r = 0
        while True:
            points, info = self.propose(X, y)
            entry = {"round": r, "solves": len(X) + len(points), "new_points": info["new_points"],
                     "replicates": info["replicates"], "imse": info["imse"], "epistemic_std": info["epistemic_std"],
                     "epistemic_share": info["epistemic_share"], "predicted_imse": info["predicted_imse"]}
            history.append(entry)
            if callback is not None:
                callback(entry, info["model"])
            if not len(points):
                return AdaptiveResult(X=X, y=y, round=rounds, model=info["model"], history=history,
                                      stopped=info["stop"])
            values = np.asarray(func(points), dtype=float)
            X, y = np.vstack([X, points]), np.concatenate([y, values]) if y.ndim == 1 else np.vstack([y, values])
            self._check_values(X, y)
            r += 1
            rounds = np.concatenate([rounds, np.full(len(points), r)])

    @staticmethod
    def _check_values(X: np.ndarray, y: np.ndarray) -> None:
        if len(y) != len(X):
            raise InputError(f"the solver returned {len(y)} values for {len(X)} points: one per row")
        if not np.all(np.isfinite(y)):
            raise InputError("the solver returned a non-finite value: drop or repair the failed solves before "
                             "the next round")
