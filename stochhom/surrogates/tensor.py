r"""Surrogates of a whole apparent tensor, positive definite by construction.

A scalar target (an eigenvalue, a modulus) discards the tensor's orientation and coupling
terms. :class:`TensorSurrogate` regresses the whole symmetric positive-definite (SPD)
tensor :math:`\mathbb C(\theta)` (a conductivity :math:`d \times d`, or a Mandel stiffness)
through the unconstrained log-Cholesky features of :class:`~stochhom.surrogates.spd.SPDTransform`,
:math:`\mathbb C = L L^T` with features :math:`\ln L_{ii}` and :math:`L_{ij}` (:math:`i > j`),
one latent output each (a multi-output :class:`~stochhom.surrogates.GPR` or
:class:`~stochhom.surrogates.PCE`). Every prediction, posterior draw and propagated sample
is a tensor of an admissible (energy-positive) material.

**Predictive law.** The latent features are Gaussian per feature (mean and total standard
deviation of the latent model; their correlations are neglected), and each tensor entry is
a nonlinear function of them: the law of an entry is known by draws
(:class:`~stochhom.surrogates.predictive.Empirical`, 400 draws per point by default, with a
fixed seed so that predictions are reproducible).

**Propagation** (:func:`propagate_tensor`): joint posterior functions of the features
:math:`f_j(\theta_i)` (when the latent model has them) and :math:`K` draws of the latent
noise per (input, function) give tensor samples :math:`Y_{ijk}`; per entry, with
:math:`\hat m_{ij}` and :math:`\hat v_{ij}` the mean and variance over the :math:`K` draws,

.. math::
    \widehat{\text{aleatoric}} = \overline{\hat v}, \qquad
    \widehat{\text{epistemic}} = \overline{\operatorname{Var}_j \hat m_{ij}} - \overline{\hat v}/K, \qquad
    \widehat{\text{input}} = \hat T - \overline{\operatorname{Var}_j \hat m_{ij}},

with :math:`\hat T = \overline{\operatorname{Var}_i \hat m_{ij}} + \operatorname{Var}_j \hat M_j
- \overline{\operatorname{Var}_i \hat m_{ij}}/n` (:math:`\hat M_j` the mean over the inputs): the
noise of the :math:`K`-draw means enters the between-function and the total terms alike
and cancels, so that every part is unbiased for any :math:`J` and :math:`K`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from ..errors import InputError
from .base import SurrogateBase, check_is_fitted, check_X
from .predictive import Empirical
from .propagation import as_distribution
from .spd import SPDTransform

__all__ = ["TENSOR_TARGETS", "TensorPropagation", "TensorSurrogate", "entry_names", "nested_variance",
           "propagate_tensor"]

#: Tensor targets of the study runner, by physics.
TENSOR_TARGETS = {"conductivity": "conductivity", "stiffness": "elasticity"}

_FORMAT = "stochhom.TensorSurrogate"


def entry_names(name: str, m: int) -> list[str]:
    """The independent entries ``name_i_j`` (:math:`i \\le j`) of a symmetric ``m x m`` tensor,
    named as :func:`~stochhom.statistics.summary.scalar_columns` names them."""
    return [f"{name}_{i}_{j}" for i in range(m) for j in range(i, m)]


def _check_tensors(T: Any) -> np.ndarray:
    t = np.asarray(T, dtype=float)
    if t.ndim != 3 or t.shape[1] != t.shape[2]:
        raise InputError(f"tensor targets must be (n, m, m), got shape {t.shape}")
    return t


class TensorSurrogate(SurrogateBase):
    r"""Regress an SPD tensor through its log-Cholesky features (module docstring).

    Parameters
    ----------
    estimator : regressor
        The multi-output latent model (cloned in ``fit``).
    physics : {"conductivity", "elasticity"}
    dim : {2, 3}
    n_draws : int
        Draws per point of the predictive law of the entries.
    random_state : int
        Seeds those draws (predictions are reproducible).

    Attributes
    ----------
    estimator_ : regressor
    n_features_in_ : int
    m_ : int
        Size of the tensor.
    """

    def __init__(self, estimator: Any = None, physics: str = "conductivity", dim: int = 2, n_draws: int = 400,
                 random_state: int = 0) -> None:
        self.estimator = estimator
        self.physics = physics
        self.dim = dim
        self.n_draws = n_draws
        self.random_state = random_state

    def _spd(self) -> SPDTransform:
        return SPDTransform("log_cholesky", self.physics, self.dim)

    def fit(self, X: Any, T: Any, **fit_params: Any) -> TensorSurrogate:
        """Fit the latent model to the log-Cholesky features of the tensors ``T`` (n, m, m).

        Raises
        ------
        InputError
            No estimator, tensors of the wrong shape, or tensors that are not SPD.
        """
        if self.estimator is None:
            raise InputError("TensorSurrogate needs an estimator, e.g. TensorSurrogate(GPR(), ...)")
        if isinstance(self.n_draws, bool) or not isinstance(self.n_draws, (int, np.integer)) or self.n_draws < 2:
            raise InputError(f"n_draws must be an integer >= 2, got {self.n_draws!r}")
        t = _check_tensors(T)
        Xa = np.asarray(X, dtype=float)
        if Xa.ndim != 2 or Xa.shape[0] != t.shape[0]:
            raise InputError(f"X must be (n, p) with one row per tensor; got {Xa.shape} for {t.shape[0]} tensors")
        feats = self._spd().features(t)
        self.estimator_ = clone(self.estimator).fit(Xa, feats, **fit_params)
        self.n_features_in_ = Xa.shape[1]
        self.m_ = t.shape[1]
        self.n_outputs_ = feats.shape[1]
        self.noise_correlation_ = self._noise_correlation(Xa, feats)
        return self

    def _noise_correlation(self, X: np.ndarray, feats: np.ndarray) -> np.ndarray:
        r"""Correlation of the latent features' scatter between features, :math:`R`, from the
        training residuals :math:`(z_i - \hat\mu(\theta_i)) / \hat\sigma(\theta_i)`.

        The latent model gives each feature its own noise; the scatter of one SVE's tensor
        moves its features together (a stiffer SVE raises every diagonal term). Draws of the
        SVE scatter (:func:`~stochhom.structure.hierarchical.hierarchical`) use
        :math:`\varepsilon = \sigma \odot (C z)` with :math:`C C^T = R`. Identity with fewer
        than ``4 f`` training points (too few to estimate an ``f x f`` correlation)."""
        q = feats.shape[1]
        noise = getattr(self.estimator_, "noise_variance", None)
        if noise is None or X.shape[0] < 4 * q:
            return np.eye(q)
        mu = np.asarray(self.estimator_.predict(X), dtype=float).reshape(feats.shape)
        sd = np.sqrt(np.clip(np.asarray(noise(X), dtype=float).reshape(feats.shape), 1e-300, None))
        r = np.corrcoef(((feats - mu) / sd).T)
        return np.where(np.isfinite(r), r, np.eye(q))

    # ------------------------------------------------------------------ latent model
    def predict_latent(self, X: Any, return_std: bool = False) -> Any:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(check_X(X, self.n_features_in_), return_std=return_std)

    @property
    def sample_latent_functions(self) -> Any:
        check_is_fitted(self, "estimator_")
        return self.estimator_.sample_functions

    @property
    def latent_noise_variance(self) -> Any:
        check_is_fitted(self, "estimator_")
        return self.estimator_.noise_variance

    @property
    def spd_transform(self) -> SPDTransform:
        """The map from latent features to tensors (numpy only: cheap to send to workers)."""
        return self._spd()

    def tensors(self, features: Any) -> np.ndarray:
        """SPD tensors ``(..., m, m)`` of latent features ``(..., f)``."""
        f = np.asarray(features, dtype=float)
        out = self._spd().tensors(f.reshape(-1, f.shape[-1]))
        return out.reshape(*f.shape[:-1], out.shape[-2], out.shape[-1])

    # ------------------------------------------------------------------ predictions
    def sample_tensors(self, X: Any, n_draws: int | None = None, rng: Any = None) -> np.ndarray:
        """Draws ``(S, n, m, m)`` of the predictive law (independent Gaussian features), all SPD."""
        mu, sd = self.predict_latent(X, return_std=True)
        mu, sd = np.atleast_2d(mu), np.atleast_2d(sd)
        gen = np.random.default_rng(self.random_state if rng is None else rng)
        s = int(self.n_draws if n_draws is None else n_draws)
        return self.tensors(mu[None] + sd[None] * gen.standard_normal((s, *mu.shape)))

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Mean tensor ``(n, m, m)`` (and the entries' standard deviations), over the draws."""
        draws = self.sample_tensors(X)
        return (draws.mean(axis=0), draws.std(axis=0, ddof=1)) if return_std else draws.mean(axis=0)

    def entry_laws(self, X: Any, name: str) -> dict[str, Empirical]:
        """The predictive law of every independent entry ``name_i_j`` at ``X``."""
        draws = self.sample_tensors(X)
        m = draws.shape[-1]
        return {e: Empirical(draws[:, :, i, j]) for e, (i, j) in
                zip(entry_names(name, m), ((i, j) for i in range(m) for j in range(i, m)))}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        check_is_fitted(self, "estimator_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.estimator_.save(path / "latent")
        meta = {"format": _FORMAT, "version": 1, "latent": type(self.estimator_).__name__, "physics": self.physics,
                "dim": int(self.dim), "n_draws": int(self.n_draws), "random_state": int(self.random_state),
                "n_features_in_": int(self.n_features_in_), "m_": int(self.m_), "n_outputs_": int(self.n_outputs_),
                "noise_correlation_": np.asarray(self.noise_correlation_).tolist()}
        (path / "tensor.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TensorSurrogate:
        path = Path(path)
        try:
            meta = json.loads((path / "tensor.json").read_text())
        except FileNotFoundError:
            raise InputError(f"no saved TensorSurrogate in {str(path)!r} (expected tensor.json)") from None
        if meta.get("format") != _FORMAT:
            raise InputError(f"{str(path / 'tensor.json')!r} is not a saved stochhom TensorSurrogate")
        from .warping import load_latent

        latent = load_latent(path / "latent", meta["latent"])
        model = cls(latent, meta["physics"], meta["dim"], meta["n_draws"], meta["random_state"])
        model.estimator_ = latent
        model.n_features_in_, model.m_, model.n_outputs_ = meta["n_features_in_"], meta["m_"], meta["n_outputs_"]
        model.noise_correlation_ = np.asarray(meta.get("noise_correlation_", np.eye(model.n_outputs_)), dtype=float)
        return model


@dataclass(frozen=True)
class TensorPropagation:
    """Result of :func:`propagate_tensor`.

    Attributes
    ----------
    samples : numpy.ndarray, shape (n_functions, n_inputs, m, m)
        One tensor per input and function (the first noise draw), all SPD.
    inputs : numpy.ndarray, shape (n_inputs, p)
    entries : list of str
    mean, std : dict of str to float
        Per entry; ``std**2`` is the total of ``variance``.
    quantiles : dict of str to dict of float to float
    variance : dict of str to dict of str to float
        Per entry: ``total``, ``aleatoric``, ``epistemic``, ``unsplit``, ``input``.
    min_eigenvalue : float
        The smallest eigenvalue over every sampled tensor (> 0: all are SPD).
    n_noise : int
        Noise draws per (input, function).
    """

    samples: np.ndarray
    inputs: np.ndarray
    entries: list[str]
    mean: dict[str, float]
    std: dict[str, float]
    quantiles: dict[str, dict[float, float]]
    variance: dict[str, dict[str, float]]
    min_eigenvalue: float
    n_noise: int


def nested_variance(v: Any) -> tuple[float, float, float]:
    r"""Unbiased split of the variance of nested draws ``v`` of shape ``(K, J, n)``: ``K``
    noise draws per (function, input), ``J`` functions shared by the ``n`` inputs.

    With :math:`\hat m_{ij}`, :math:`\hat v_{ij}` the mean and variance over the noise
    draws, returns (aleatoric, epistemic, input) =
    :math:`(\overline{\hat v},\ \overline{\operatorname{Var}_j \hat m_{ij}} - \overline{\hat v}/K,\
    \hat T - \overline{\operatorname{Var}_j \hat m_{ij}})` (module docstring), the last two
    clipped at 0. In Sobol terms: the total index of the noise, the functions' share given
    the input, and the first-order index of the input, times the total variance.
    """
    v = np.asarray(v, dtype=float)
    k, n_f, n = v.shape
    if k < 2 or n < 2:
        raise InputError(f"the variance split needs at least 2 noise draws and 2 inputs, got {k} and {n}")
    m_hat = v.mean(axis=0)  # (J, n)
    alea = float(v.var(axis=0, ddof=1).mean())
    between = float(m_hat.var(axis=0, ddof=1).mean()) if n_f > 1 else 0.0
    within_f = float(m_hat.var(axis=1, ddof=1).mean())
    total_mean = float(m_hat.mean(axis=1).var(ddof=1)) if n_f > 1 else 0.0
    t_hat = within_f + total_mean - within_f / n
    return alea, max(between - alea / k, 0.0), max(t_hat - between, 0.0)


def propagate_tensor(
    model: Any,
    distribution: Any,
    n_samples: int = 1024,
    *,
    n_functions: int = 32,
    n_noise: int = 16,
    name: str = "tensor",
    quantiles: tuple[float, ...] = (0.025, 0.5, 0.975),
    rng: np.random.Generator | int | None = None,
) -> TensorPropagation:
    r"""Push an input distribution through a fitted :class:`TensorSurrogate` (module docstring).

    Parameters
    ----------
    model : TensorSurrogate
        Fitted (or a wrapper with ``predict_latent``, ``tensors`` and optionally
        ``sample_latent_functions``, ``latent_noise_variance``).
    distribution : input distribution or spec
    n_samples, n_functions, n_noise : int
        Inputs (QMC), posterior functions (joint when the latent model has them), latent noise
        draws per (input, function); :math:`n \cdot J \cdot K` tensors are evaluated.
    name : str
        Prefix of the entry names (``conductivity`` gives ``conductivity_0_1``).

    Returns
    -------
    TensorPropagation
    """
    check_is_fitted(model)
    for label, v in (("n_samples", n_samples), ("n_functions", n_functions), ("n_noise", n_noise)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
            raise InputError(f"{label} must be an integer >= 2, got {v!r}")
    dist = as_distribution(distribution)
    gen = np.random.default_rng(rng)
    theta = np.asarray(dist.sample(n_samples, rng=gen, method="sobol"), dtype=float)
    mu, sd = model.predict_latent(theta, return_std=True)
    mu, sd = np.atleast_2d(mu), np.atleast_2d(sd)
    noise = getattr(model, "latent_noise_variance", None)
    nv = np.zeros_like(mu) if noise is None else np.broadcast_to(np.asarray(noise(theta)), mu.shape)
    functions = getattr(model, "sample_latent_functions", None)
    if functions is not None:
        f = np.asarray(functions(theta, n_functions, rng=gen), dtype=float).reshape(n_functions, *mu.shape)
        unsplit = False
    else:  # no posterior functions: draw the whole predictive spread per point, unsplit from the scatter
        f = mu[None] + sd[None] * gen.standard_normal((n_functions, *mu.shape))
        nv, unsplit = np.zeros_like(mu), True
    eps = np.sqrt(nv)[None, None] * gen.standard_normal((n_noise, *f.shape))
    y = model.tensors(f[None] + eps)  # (K, J, n, m, m)
    m_ = y.shape[-1]
    iu = [(i, j) for i in range(m_) for j in range(i, m_)]
    entries = entry_names(name, m_)
    mean, std, quants, variance = {}, {}, {}, {}
    for e, (i, j) in zip(entries, iu):
        v = y[..., i, j]  # (K, J, n)
        alea, epi, inp = nested_variance(v)
        parts = {"aleatoric": alea, "epistemic": 0.0 if unsplit else epi, "unsplit": epi if unsplit else 0.0,
                 "input": inp}
        parts["total"] = sum(parts.values())
        variance[e] = parts
        mean[e] = float(v.mean())
        std[e] = float(np.sqrt(parts["total"]))
        flat = v[0].reshape(-1)
        quants[e] = {float(q): float(np.quantile(flat, q)) for q in quantiles}
    flat_t = y.reshape(-1, m_, m_)
    min_ev = float(np.linalg.eigvalsh(flat_t).min())
    return TensorPropagation(samples=y[0], inputs=theta, entries=entries, mean=mean, std=std, quantiles=quants,
                             variance=variance, min_eigenvalue=min_ev, n_noise=int(n_noise))
