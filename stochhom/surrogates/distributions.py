r"""Input distributions of surrogates and propagation: independent marginals, optionally
joined by a Gaussian copula, and their isoprobabilistic map to a polynomial-chaos germ.

Concept
-------
The microstructure parameters :math:`\theta` (volume fraction, contrast, correlation
length, ...) are random with a joint law :math:`F_\theta`. An :class:`InputDistribution`
holds that law as ``p`` named marginals :math:`F_i` and, optionally, a Gaussian copula
with correlation matrix :math:`R` of the normal scores :math:`z_i = \Phi^{-1}(F_i(\theta_i))`.

It serves two clients:

* **propagation** draws samples: independent uniforms :math:`u \in (0, 1)^p` (scrambled
  Sobol, Latin hypercube or plain random, :mod:`scipy.stats.qmc`) are mapped by
  :meth:`InputDistribution.ppf` (the inverse Rosenblatt transform);
* **polynomial chaos** needs independent *germ* variables :math:`\xi` with known
  orthonormal polynomials. :meth:`InputDistribution.to_germ` is the isoprobabilistic
  transform :math:`\xi = T(\theta)` and :meth:`InputDistribution.recurrence` the
  three-term recurrence of the orthonormal polynomials of each :math:`\xi_i`.

Marginals and germs (independent inputs)
----------------------------------------
============  ======================  ===============================================  ===========
distribution  parameters              germ :math:`\xi`                                 polynomials
============  ======================  ===============================================  ===========
uniform       low, high               :math:`(2x - l - h)/(h - l) \sim U(-1, 1)`       Legendre
loguniform    low, high               same, with :math:`\log x, \log l, \log h`        Legendre
normal        mean, std               :math:`(x - \mu)/\sigma \sim N(0, 1)`            Hermite
lognormal     median, sigma           :math:`(\log x - \log m)/\sigma \sim N(0, 1)`    Hermite
beta          alpha, beta, low, high  :math:`(2x - l - h)/(h - l)` on :math:`[-1, 1]`  Jacobi
chaospy       (any univariate law)    :math:`x` itself                                 Stieltjes
============  ======================  ===============================================  ===========

The parameter names agree with the study schema (:data:`stochhom.study.schema.DISTRIBUTIONS`);
``lognormal`` has :math:`\log x \sim N(\log m, \sigma^2)`; ``beta`` has density
:math:`\propto (x-l)^{\alpha-1}(h-x)^{\beta-1}` on :math:`[l, h]`. A chaospy marginal keeps
its own physical variable and gets its orthonormal polynomials from chaospy's three-term
recurrence (``dist.ttr``, analytic or discretized Stieltjes).

Gaussian copula (dependent inputs)
----------------------------------
With a correlation matrix :math:`R = L L^T` the germ is the Nataf transform

.. math:: \xi = L^{-1} z, \qquad z_i = \Phi^{-1}(F_i(\theta_i)),

independent standard normals, with Hermite polynomials for every input whatever the
marginal. A PCE on this germ gives exact moments, but its coefficients no longer split
the variance among the *physical* inputs, so :class:`~stochhom.surrogates.pce.PCE`
refuses analytic Sobol indices under a copula (the Sobol decomposition is only
defined for independent inputs). :math:`R` is the correlation of the normal scores;
the Spearman correlation of the inputs is then :math:`(6/\pi)\arcsin(R_{ij}/2)`.

References
----------
Xiu & Karniadakis, SIAM J. Sci. Comput. 24 (2002) 619 (Wiener–Askey chaos);
Lebrun & Dutfoy, Probab. Eng. Mech. 24 (2009) 577 (Nataf and Rosenblatt transforms);
Gautschi, *Orthogonal Polynomials: Computation and Approximation*, OUP 2004.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats as st
from scipy.linalg import solve_triangular
from scipy.special import ndtr, ndtri

from ..errors import InputError

__all__ = ["DISTRIBUTIONS", "SAMPLING_METHODS", "InputDistribution", "input_distribution", "uniform_box"]

#: Distributions of the stochhom spec and their parameters (same names as the study schema).
DISTRIBUTIONS = {
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "normal": ("mean", "std"),
    "lognormal": ("median", "sigma"),
    "beta": ("alpha", "beta", "low", "high"),
}
#: Designs accepted by :meth:`InputDistribution.sample`.
SAMPLING_METHODS = ("sobol", "lhs", "random")

_U_CLIP = 1e-15  # u is clipped to [1e-15, 1 - 1e-15] before Phi^-1: |z| <= 7.94


def _is_chaospy(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "chaospy"


# --------------------------------------------------------------------------------------
# three-term recurrences of the orthonormal families
# --------------------------------------------------------------------------------------
def jacobi_recurrence(degree: int, a: float = 0.0, b: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Monic recurrence coefficients of the Jacobi polynomials on :math:`[-1, 1]`.

    The weight is the probability density :math:`\propto (1-t)^{a}(1+t)^{b}`, and the
    monic polynomials satisfy :math:`\pi_{k+1} = (t - \alpha_k)\pi_k - \beta_k\pi_{k-1}`
    with :math:`\beta_0 = 1` (Gautschi 2004, Table 1.1):

    .. math::
        \alpha_k = \frac{b^2 - a^2}{(2k+a+b)(2k+a+b+2)}, \qquad
        \beta_k = \frac{4k(k+a)(k+b)(k+a+b)}{(2k+a+b)^2(2k+a+b+1)(2k+a+b-1)} \; (k \ge 2),

    :math:`\alpha_0 = (b-a)/(a+b+2)`, :math:`\beta_1 = 4(1+a)(1+b)/((2+a+b)^2(3+a+b))`.
    ``a = b = 0`` gives Legendre, :math:`\beta_k = k^2/(4k^2-1)`.
    """
    alpha = np.zeros(degree + 1)
    beta = np.ones(degree + 1)
    s = a + b
    alpha[0] = (b - a) / (s + 2.0)
    for k in range(1, degree + 1):
        alpha[k] = (b * b - a * a) / ((2 * k + s) * (2 * k + s + 2)) if (b * b - a * a) != 0 else 0.0
        if k == 1:
            beta[k] = 4.0 * (1 + a) * (1 + b) / ((2 + s) ** 2 * (3 + s))
        else:
            beta[k] = 4.0 * k * (k + a) * (k + b) * (k + s) / ((2 * k + s) ** 2 * (2 * k + s + 1) * (2 * k + s - 1))
    return alpha, beta


def hermite_recurrence(degree: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Monic recurrence of the probabilists' Hermite polynomials (:math:`N(0, 1)`):
    :math:`\alpha_k = 0`, :math:`\beta_k = k` (:math:`\beta_0 = 1`)."""
    beta = np.arange(degree + 1, dtype=float)
    beta[0] = 1.0
    return np.zeros(degree + 1), beta


# --------------------------------------------------------------------------------------
# marginals
# --------------------------------------------------------------------------------------
def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{where} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where} must be a number, got {value!r}") from None
    if not np.isfinite(out):
        raise InputError(f"{where} must be finite, got {value!r}")
    return out


class _Marginal:
    """One named input: its law (a stochhom spec or a chaospy distribution) and its germ."""

    def __init__(self, name: str, spec: Any) -> None:
        self.name = name
        self.chaospy = None
        if _is_chaospy(spec):
            if len(spec) != 1:
                raise InputError(f"input {name!r}: expected a univariate chaospy distribution, got {len(spec)} dims")
            self.kind = "chaospy"
            self.params: dict[str, float] = {}
            self.chaospy = spec
            return
        if not isinstance(spec, Mapping):
            raise InputError(
                f"input {name!r}: expected a table like {{'distribution': 'uniform', 'low': 0.1, 'high': 0.5}} "
                f"or a chaospy distribution, got {spec!r}"
            )
        kind = spec.get("distribution", "uniform")
        if kind not in DISTRIBUTIONS:
            raise InputError(f"input {name!r}: unknown distribution {kind!r}; allowed: {sorted(DISTRIBUTIONS)}")
        keys = DISTRIBUTIONS[kind]
        unknown = set(spec) - set(keys) - {"distribution"}
        missing = set(keys) - set(spec)
        if unknown or missing:
            raise InputError(
                f"input {name!r}: a {kind} distribution takes the parameters {list(keys)}"
                + (f"; unknown {sorted(unknown)}" if unknown else "")
                + (f"; missing {sorted(missing)}" if missing else "")
            )
        v = {k: _number(spec[k], f"input {name!r}: {k}") for k in keys}
        if "low" in v and not v["low"] < v["high"]:
            raise InputError(f"input {name!r}: low must be below high, got low = {v['low']}, high = {v['high']}")
        if kind == "loguniform" and v["low"] <= 0:
            raise InputError(f"input {name!r}: a loguniform range must be positive, got low = {v['low']}")
        for key in ("std", "sigma", "median", "alpha", "beta"):
            if key in v and v[key] <= 0:
                raise InputError(f"input {name!r}: {key} must be > 0, got {v[key]}")
        self.kind = kind
        self.params = v

    # -- the law ------------------------------------------------------------------------
    def frozen(self) -> Any:
        """The scipy.stats frozen distribution of a spec marginal."""
        v = self.params
        if self.kind == "uniform":
            return st.uniform(v["low"], v["high"] - v["low"])
        if self.kind == "loguniform":
            return st.loguniform(v["low"], v["high"])
        if self.kind == "normal":
            return st.norm(v["mean"], v["std"])
        if self.kind == "lognormal":
            return st.lognorm(s=v["sigma"], scale=v["median"])
        return st.beta(v["alpha"], v["beta"], loc=v["low"], scale=v["high"] - v["low"])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if self.chaospy is not None:
            return np.asarray(self.chaospy.fwd(x), dtype=float).reshape(x.shape)
        return self.frozen().cdf(x)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        if self.chaospy is not None:
            return np.asarray(self.chaospy.inv(u), dtype=float).reshape(u.shape)
        return self.frozen().ppf(u)

    def moments(self) -> tuple[float, float]:
        if self.chaospy is not None:
            import chaospy as cp

            return float(cp.E(self.chaospy)), float(cp.Std(self.chaospy))
        f = self.frozen()
        return float(f.mean()), float(f.std())

    def support(self) -> tuple[float, float]:
        if self.chaospy is not None:
            return float(np.ravel(self.chaospy.lower)[0]), float(np.ravel(self.chaospy.upper)[0])
        v = self.params
        if self.kind in ("uniform", "loguniform", "beta"):
            return v["low"], v["high"]
        if self.kind == "normal":
            return -np.inf, np.inf
        return 0.0, np.inf

    # -- the germ -----------------------------------------------------------------------
    def to_germ(self, x: np.ndarray) -> np.ndarray:
        v = self.params
        if self.kind in ("uniform", "beta"):
            return (2.0 * x - v["low"] - v["high"]) / (v["high"] - v["low"])
        if self.kind == "loguniform":
            lo, hi = np.log(v["low"]), np.log(v["high"])
            with np.errstate(divide="ignore", invalid="ignore"):
                return (2.0 * np.log(x) - lo - hi) / (hi - lo)
        if self.kind == "normal":
            return (x - v["mean"]) / v["std"]
        if self.kind == "lognormal":
            with np.errstate(divide="ignore", invalid="ignore"):
                return (np.log(x) - np.log(v["median"])) / v["sigma"]
        return np.asarray(x, dtype=float)

    def recurrence(self, degree: int) -> tuple[np.ndarray, np.ndarray]:
        if self.kind in ("uniform", "loguniform"):
            return jacobi_recurrence(degree)
        if self.kind == "beta":
            # density on t in [-1, 1] prop. to (1+t)^(alpha-1) (1-t)^(beta-1)
            return jacobi_recurrence(degree, a=self.params["beta"] - 1.0, b=self.params["alpha"] - 1.0)
        if self.kind in ("normal", "lognormal"):
            return hermite_recurrence(degree)
        coef = np.asarray(self.chaospy.ttr(np.arange(degree + 1)), dtype=float).reshape(2, degree + 1)
        alpha, beta = coef[0].copy(), coef[1].copy()
        beta[0] = 1.0
        if not (np.all(np.isfinite(alpha)) and np.all(beta[1:] > 0)):
            raise InputError(f"input {self.name!r}: chaospy gives no valid recurrence up to degree {degree} "
                             f"for {self.chaospy}; use a stochhom spec or a lower degree")
        return alpha, beta

    def family(self) -> str:
        return {"uniform": "legendre", "loguniform": "legendre", "normal": "hermite", "lognormal": "hermite",
                "beta": "jacobi"}.get(self.kind, "stieltjes")

    def to_chaospy(self) -> Any:
        import chaospy as cp

        if self.chaospy is not None:
            return self.chaospy
        v = self.params
        if self.kind == "uniform":
            return cp.Uniform(v["low"], v["high"])
        if self.kind == "loguniform":
            return cp.LogUniform(np.log(v["low"]), np.log(v["high"]))
        if self.kind == "normal":
            return cp.Normal(v["mean"], v["std"])
        if self.kind == "lognormal":
            return cp.LogNormal(np.log(v["median"]), v["sigma"])
        return cp.Beta(v["alpha"], v["beta"], v["low"], v["high"])

    def to_dict(self) -> dict[str, Any]:
        if self.chaospy is not None:
            raise InputError(
                f"input {self.name!r} is a chaospy distribution ({self.chaospy}), which cannot be saved without "
                f"pickle; describe it with a stochhom spec: one of {sorted(DISTRIBUTIONS)}"
            )
        return {"distribution": self.kind, **self.params}


def _check_correlation(correlation: Any, names: Sequence[str]) -> np.ndarray | None:
    if correlation is None:
        return None
    p = len(names)
    try:
        r = np.array(correlation, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"correlation must be a numeric ({p}, {p}) matrix, got {correlation!r}") from None
    if r.shape != (p, p):
        raise InputError(f"correlation must be ({p}, {p}) for the inputs {list(names)}, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise InputError("correlation has NaN or inf entries")
    if not np.allclose(r, r.T, rtol=0, atol=1e-12):
        i, j = np.unravel_index(np.argmax(np.abs(r - r.T)), r.shape)
        raise InputError(f"correlation must be symmetric: entry ({names[i]}, {names[j]}) = {r[i, j]} "
                         f"but ({names[j]}, {names[i]}) = {r[j, i]}")
    if not np.allclose(np.diag(r), 1.0, rtol=0, atol=1e-12):
        raise InputError(f"correlation must have a unit diagonal, got {np.diag(r).tolist()}")
    off = r - np.eye(p)
    if np.any(np.abs(off) >= 1):
        i, j = np.unravel_index(np.argmax(np.abs(off)), r.shape)
        raise InputError(f"correlation ({names[i]}, {names[j]}) = {r[i, j]} must lie strictly inside (-1, 1)")
    r = 0.5 * (r + r.T)
    eig = np.linalg.eigvalsh(r)
    if eig[0] <= 1e-10:
        raise InputError(
            f"correlation is not positive definite (smallest eigenvalue {eig[0]:.3g}); the pairwise "
            "correlations are inconsistent, e.g. project onto the nearest correlation matrix"
        )
    if np.all(off == 0):
        return None  # identity: independent inputs
    return r


def _qmc_engine(cls: Any, d: int, gen: np.random.Generator, **kw: Any) -> Any:
    """A scipy.stats.qmc engine seeded from ``gen`` (``rng=`` from scipy 1.15, ``seed=`` before)."""
    key = "rng" if "rng" in inspect.signature(cls.__init__).parameters else "seed"
    return cls(d, **kw, **{key: gen})


# --------------------------------------------------------------------------------------
# the joint distribution
# --------------------------------------------------------------------------------------
class InputDistribution:
    r"""Joint distribution of the ``p`` surrogate inputs (see the module docstring).

    Parameters
    ----------
    spec : mapping, chaospy distribution or InputDistribution
        * a mapping name → marginal, where a marginal is a table
          ``{"distribution": "uniform", "low": 0.1, "high": 0.5}`` (see
          :data:`DISTRIBUTIONS`; the default distribution is ``uniform``, as in the study
          schema) or a univariate chaospy distribution;
        * the output of :meth:`to_dict`, ``{"marginals": {...}, "correlation": ...}``;
        * a chaospy distribution with independent components (``chaospy.J`` of fresh
          marginals, or a univariate law); dependent chaospy laws are refused (use
          independent marginals with ``correlation``).
    names : sequence of str, optional
        The input names: for a chaospy distribution (default ``x0, x1, ...``), or the
        column order of a mapping (a permutation of its keys).
    correlation : array_like (p, p), optional
        Correlation matrix :math:`R` of the Gaussian copula, i.e. of the normal scores
        :math:`\Phi^{-1}(F_i(\theta_i))`. It must be symmetric with unit diagonal and
        positive definite. ``None`` or the identity: independent inputs.

    Raises
    ------
    InputError
        Unknown distribution, missing/unknown/invalid parameters (the message names the
        input and the allowed values), or an invalid correlation matrix.

    Examples
    --------
    >>> dist = InputDistribution({"volume_fraction": {"distribution": "uniform", "low": 0.1, "high": 0.4},
    ...                           "contrast": {"distribution": "loguniform", "low": 10, "high": 1000}})
    >>> dist.sample(8, rng=0).shape
    (8, 2)
    """

    def __init__(self, spec: Any, names: Sequence[str] | None = None, correlation: Any = None) -> None:
        if isinstance(spec, InputDistribution):
            if correlation is None:
                correlation = spec.correlation
            spec = {m.name: (m.chaospy if m.chaospy is not None else m.to_dict()) for m in spec._marginals}
        if isinstance(spec, Mapping) and "marginals" in spec:
            extra = set(spec) - {"marginals", "correlation"}
            if extra:
                raise InputError(f"unknown key(s) {sorted(extra)} in a distribution dict; allowed: marginals, "
                                 "correlation")
            if correlation is None:
                correlation = spec.get("correlation")
            spec = spec["marginals"]
        if _is_chaospy(spec):
            marginals = self._from_chaospy(spec, names)
        elif isinstance(spec, Mapping):
            if not spec:
                raise InputError("the distribution needs at least one input")
            keys = [str(k) for k in spec]
            if names is None:
                names = keys
            elif sorted(map(str, names)) != sorted(keys):
                raise InputError(f"names {list(names)} must be a permutation of the spec's inputs {keys}")
            lookup = {str(k): v for k, v in spec.items()}
            marginals = [_Marginal(str(n), lookup[str(n)]) for n in names]
        else:
            raise InputError(
                "a distribution must be a dict name -> {'distribution': ..., parameters}, a chaospy distribution "
                f"or an InputDistribution, got {type(spec).__name__}"
            )
        self._marginals = marginals
        self.names = [m.name for m in marginals]
        if len(set(self.names)) != len(self.names):
            raise InputError(f"input names must be unique, got {self.names}")
        self.correlation = _check_correlation(correlation, self.names)
        self._chol = None if self.correlation is None else np.linalg.cholesky(self.correlation)

    @staticmethod
    def _from_chaospy(dist: Any, names: Sequence[str] | None) -> list[_Marginal]:
        p = len(dist)
        if dist.stochastic_dependent:
            raise InputError(
                f"the chaospy distribution {dist} has dependent components; give independent marginals "
                "(a fresh chaospy object per input) and a Gaussian copula through `correlation`"
            )
        names = [f"x{i}" for i in range(p)] if names is None else [str(n) for n in names]
        if len(names) != p:
            raise InputError(f"{len(names)} names given for a {p}-dimensional chaospy distribution")
        if p == 1:
            return [_Marginal(names[0], dist)]
        return [_Marginal(names[i], dist[i]) for i in range(p)]

    # -- description --------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        """Number of inputs ``p``."""
        return len(self._marginals)

    def __len__(self) -> int:
        return self.n_inputs

    @property
    def independent(self) -> bool:
        """True without a copula (the Sobol decomposition then applies)."""
        return self.correlation is None

    @property
    def kinds(self) -> list[str]:
        """Marginal distribution names (``"chaospy"`` for chaospy marginals)."""
        return [m.kind for m in self._marginals]

    @property
    def families(self) -> list[str]:
        """Orthonormal polynomial family of each germ variable (all ``hermite`` under a copula)."""
        if not self.independent:
            return ["hermite"] * self.n_inputs
        return [m.family() for m in self._marginals]

    @property
    def support(self) -> np.ndarray:
        """``(p, 2)`` lower and upper ends of each marginal's support (``±inf`` if unbounded)."""
        return np.array([m.support() for m in self._marginals], dtype=float)

    def bounds(self, alpha: float = 0.0) -> np.ndarray:
        r"""``(p, 2)`` central interval of probability :math:`1-\alpha` of each marginal
        (``alpha = 0``: the support)."""
        if not 0 <= alpha < 1:
            raise InputError(f"alpha must lie in [0, 1), got {alpha!r}")
        if alpha == 0:
            return self.support
        u = np.array([[alpha / 2, 1 - alpha / 2]] * self.n_inputs)
        return np.stack([m.ppf(u[i]) for i, m in enumerate(self._marginals)])

    @property
    def mean(self) -> np.ndarray:
        """``(p,)`` marginal means (the copula does not change them)."""
        return np.array([m.moments()[0] for m in self._marginals])

    @property
    def std(self) -> np.ndarray:
        """``(p,)`` marginal standard deviations."""
        return np.array([m.moments()[1] for m in self._marginals])

    def __repr__(self) -> str:
        parts = []
        for m in self._marginals:
            inner = str(m.chaospy) if m.chaospy is not None else ", ".join(f"{k}={v:g}" for k, v in m.params.items())
            parts.append(f"{m.name}: {m.kind}({inner})")
        cop = "" if self.correlation is None else f", gaussian copula R={np.round(self.correlation, 3).tolist()}"
        return f"InputDistribution({'; '.join(parts)}{cop})"

    # -- transforms ---------------------------------------------------------------------
    def _check_points(self, a: Any, name: str) -> np.ndarray:
        arr = np.asarray(a, dtype=float)
        if arr.ndim == 1 and self.n_inputs == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.n_inputs:
            raise InputError(f"{name} must be (n, {self.n_inputs}) for the inputs {self.names}, got shape {arr.shape}")
        return arr

    def ppf(self, u: Any) -> np.ndarray:
        r"""Map independent uniforms :math:`u \in (0, 1)^p` to the inputs (inverse Rosenblatt).

        Independent inputs: :math:`\theta_i = F_i^{-1}(u_i)`. Copula:
        :math:`\theta_i = F_i^{-1}(\Phi((L\,\Phi^{-1}(u))_i))`.

        Returns
        -------
        numpy.ndarray, shape (n, p), in physical units.
        """
        u = self._check_points(u, "u")
        if np.any((u < 0) | (u > 1)) or not np.all(np.isfinite(u)):
            raise InputError("u must lie in the unit cube [0, 1]^p")
        if self._chol is not None:
            z = ndtri(np.clip(u, _U_CLIP, 1 - _U_CLIP)) @ self._chol.T
            u = ndtr(z)
        return np.column_stack([m.ppf(u[:, i]) for i, m in enumerate(self._marginals)])

    def cdf(self, x: Any) -> np.ndarray:
        r"""Marginal CDFs column by column, :math:`u_i = F_i(\theta_i)`, shape (n, p)."""
        x = self._check_points(x, "x")
        return np.column_stack([m.cdf(x[:, i]) for i, m in enumerate(self._marginals)])

    def to_unit(self, x: Any) -> np.ndarray:
        r"""The Rosenblatt transform: inputs to independent uniforms (the inverse of :meth:`ppf`)."""
        u = self.cdf(x)
        if self._chol is None:
            return u
        z = ndtri(np.clip(u, _U_CLIP, 1 - _U_CLIP))
        return ndtr(solve_triangular(self._chol, z.T, lower=True).T)

    def to_germ(self, x: Any) -> np.ndarray:
        r"""The isoprobabilistic transform :math:`\xi = T(\theta)` to the independent germ.

        Independent inputs: the affine or log-affine map of the module table (exact, so
        that polynomials in :math:`\theta` or :math:`\log\theta` stay polynomials in
        :math:`\xi`). Copula: the Nataf transform :math:`\xi = L^{-1}\Phi^{-1}(F(\theta))`
        (with :math:`F` clipped to :math:`[10^{-15}, 1-10^{-15}]`).
        Points outside a log-marginal's support (:math:`\theta \le 0`) give NaN.
        """
        x = self._check_points(x, "x")
        if self._chol is None:
            return np.column_stack([m.to_germ(x[:, i]) for i, m in enumerate(self._marginals)])
        z = ndtri(np.clip(self.cdf(x), _U_CLIP, 1 - _U_CLIP))
        return solve_triangular(self._chol, z.T, lower=True).T

    def recurrence(self, degree: int) -> np.ndarray:
        r"""Monic three-term recurrence coefficients of the germ's orthonormal polynomials.

        Returns
        -------
        numpy.ndarray, shape (p, 2, degree + 1)
            ``[i, 0, k]`` = :math:`\alpha_k`, ``[i, 1, k]`` = :math:`\beta_k` of input ``i``,
            with :math:`\beta_0 = 1`; see
            :func:`stochhom.surrogates.pce.orthonormal_polynomials`.
        """
        if self._chol is not None:
            return np.stack([np.stack(hermite_recurrence(degree))] * self.n_inputs)
        return np.stack([np.stack(m.recurrence(degree)) for m in self._marginals])

    def contains(self, x: Any, rtol: float = 1e-9) -> np.ndarray:
        """``(n,)`` True where a point lies in the support (within ``rtol`` of its width)."""
        x = self._check_points(x, "x")
        sup = self.support
        width = np.where(np.isfinite(sup[:, 1] - sup[:, 0]), sup[:, 1] - sup[:, 0], 1.0)
        slack = rtol * width
        log = np.array([m.kind in ("loguniform", "lognormal") for m in self._marginals])
        lo_ok = (x >= sup[:, 0] - slack) & (~log | (x > 0))
        hi_ok = x <= sup[:, 1] + slack
        return np.all(lo_ok & hi_ok, axis=1)

    # -- sampling -----------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator | int | None = None, method: str = "sobol") -> np.ndarray:
        r"""Draw ``n`` input points, shape (n, p), in physical units.

        Parameters
        ----------
        n : int
            Number of points. Scrambled Sobol points are best balanced when ``n`` is a
            power of two (scipy warns otherwise).
        rng : Generator, int or None
            Seeds the scrambling (``sobol``), the permutations (``lhs``) or the draws.
        method : {"sobol", "lhs", "random"}
            Scrambled Sobol sequence (:class:`scipy.stats.qmc.Sobol`), Latin hypercube
            (:class:`scipy.stats.qmc.LatinHypercube`) or i.i.d. uniforms, mapped by
            :meth:`ppf`.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be a positive integer, got {n!r}")
        if method not in SAMPLING_METHODS:
            raise InputError(f"unknown sampling method {method!r}; allowed: {list(SAMPLING_METHODS)}")
        gen = np.random.default_rng(rng)
        from scipy.stats import qmc

        p = self.n_inputs
        if method == "sobol":
            u = _qmc_engine(qmc.Sobol, p, gen, scramble=True).random(int(n))
        elif method == "lhs":
            u = _qmc_engine(qmc.LatinHypercube, p, gen).random(int(n))
        else:
            u = gen.random((int(n), p))
        return self.ppf(np.clip(u, _U_CLIP, 1 - _U_CLIP))

    # -- conversions --------------------------------------------------------------------
    def to_chaospy(self) -> Any:
        """The chaospy distribution: ``chaospy.J`` of fresh marginals, wrapped in
        ``chaospy.Nataf`` under a copula."""
        import chaospy as cp

        joint = cp.J(*[m.to_chaospy() for m in self._marginals])
        if self.correlation is not None:
            return cp.Nataf(joint, self.correlation)
        return joint

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable description, ``{"marginals": {...}, "correlation": ...}``."""
        return {
            "marginals": {m.name: m.to_dict() for m in self._marginals},
            "correlation": None if self.correlation is None else self.correlation.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputDistribution:
        """Rebuild from :meth:`to_dict` (or from a plain name → marginal mapping)."""
        return cls(d)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InputDistribution):
            return NotImplemented
        try:
            return self.to_dict() == other.to_dict()
        except InputError:
            return self is other

    __hash__ = None  # type: ignore[assignment]


def input_distribution(spec: Any, names: Sequence[str] | None = None, correlation: Any = None) -> InputDistribution:
    """Build an :class:`InputDistribution` (returned unchanged if it already is one and
    neither ``names`` nor ``correlation`` is given)."""
    if isinstance(spec, InputDistribution) and names is None and correlation is None:
        return spec
    return InputDistribution(spec, names=names, correlation=correlation)


def uniform_box(low: Any, high: Any, names: Sequence[str] | None = None) -> InputDistribution:
    """Independent uniforms on the box ``[low, high]`` (e.g. the bounding box of data)."""
    low, high = np.atleast_1d(np.asarray(low, dtype=float)), np.atleast_1d(np.asarray(high, dtype=float))
    names = [f"x{i}" for i in range(low.size)] if names is None else [str(n) for n in names]
    if len(names) != low.size or high.size != low.size:
        raise InputError(f"low, high and names must have the same length, got {low.size}, {high.size}, {len(names)}")
    return InputDistribution({n: {"distribution": "uniform", "low": lo, "high": hi}
                              for n, lo, hi in zip(names, low, high)})
