r"""Physically admissible surrogates: rigorous bounds, and predictive laws truncated to them.

An apparent property :math:`Z` of a composite cannot take any value: it lies between
bounds fixed by the phases and their fractions. A surrogate fitted to :math:`Z` (or to
:math:`\ln Z`) ignores them, and its predictions and propagated samples can leave them: a
conductivity below that of the least conducting phase, or a negative modulus.
:class:`BoundedSurrogate` regresses :math:`z = \ln Z` with any latent model and predicts the
latent Gaussian law **truncated** to :math:`[\ln Z^-(\theta), \ln Z^+(\theta)]`
(:class:`Truncation`): the physical predictive law is a truncated lognormal, so every
prediction, interval, posterior draw and propagated sample respects the bounds by
construction, while the regression itself stays on the scale where it is easiest (relative
errors, a near-lognormal scatter). A linear latent scale is used where the target can be 0.

*Why not a transform onto the bounded interval* (e.g. the logit of the position between the
bounds)? It was tried and measured: the latent scatter then varies with the width of the bounds
(by a factor of 4-20 across a contrast sweep), the latent mean is harder to regress, and on
the shipped studies the fit of the mean was up to 35 % worse than on the log scale and the
estimated SVE scatter up to 2.6 times the replicates' own variance. Truncation changes the
law only where it reaches a bound.

**The bounds** (:class:`PhysicalBounds`), for a quantity :math:`q` of the apparent tensor
:math:`\mathbb C^*` (its :math:`k`-th eigenvalue, a diagonal entry, or the bulk/shear
modulus of its isotropic projection), all monotone in the Loewner order:

* ``"voigt_reuss"`` (Wiener, any phases): :math:`\langle\mathbb C^{-1}\rangle^{-1} \le
  \mathbb C^* \le \langle\mathbb C\rangle` for every microstructure with the phase
  fractions :math:`f`, hence :math:`q(\text{Reuss}) \le q(\mathbb C^*) \le q(\text{Voigt})`
  (Courant–Fischer for the eigenvalues; the projections and diagonal entries are
  positive linear maps);
* ``"hashin_shtrikman"`` (isotropic phases): the bounds of statistically isotropic
  mixtures (:func:`~stochhom.bounds.hashin_shtrikman`), tighter than Voigt–Reuss. A
  small SVE is not isotropic, and the extreme eigenvalue of an anisotropic one may leave
  them, so the study runner uses them only where every training sample respects them;
* ``"phases"``: the extreme phase properties, valid at any fraction
  (:math:`q(c_{\min} I) \le q(\mathbb C^*) \le q(c_{\max} I)`, with :math:`c` the extreme
  eigenvalues of the phase tensors; :math:`[\min_p q_p, \max_p q_p]` for isotropic phases).

The fractions come from a swept or fixed parameter (``volume_fraction``, the fraction of
phase 1 of a two-phase medium), widened by a window :math:`\pm\delta`: the measured
fraction of an SVE scatters around the nominal one (a level cut at a fixed threshold, a
Boolean model), and the bounds hold for the measured fraction. The bound over the window
is the loosest over the window (its ends where the bounds are monotone in the fraction).

References
----------
O. Wiener, Abh. Math.-Phys. Kl. Königl. Sächs. Ges. Wiss. 32 (1912) 509 (arithmetic and
harmonic means); Z. Hashin, S. Shtrikman, J. Mech. Phys. Solids 11 (1963) 127;
G. W. Milton, *The Theory of Composites* (2002), ch. 13 and 22; N. L. Johnson, S. Kotz,
N. Balakrishnan, *Continuous Univariate Distributions* vol. 1 (1994), ch. 13 (truncated
normal) and 14 (lognormal).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special
from sklearn.base import clone

from ..errors import InputError, MaterialError
from .base import SurrogateBase, check_is_fitted, check_X, check_Xy

__all__ = ["BOUND_KINDS", "BoundedSurrogate", "PhysicalBounds", "Truncation", "bounded_quantity", "log_mass",
           "materials_to_tables"]

#: Kinds of :class:`PhysicalBounds`, from the tightest to the loosest.
BOUND_KINDS = ("hashin_shtrikman", "voigt_reuss", "phases")

_KIND_NAMES = {"hashin_shtrikman": "Hashin–Shtrikman", "voigt_reuss": "Voigt–Reuss (Wiener)",
               "phases": "extreme phase properties"}
_WINDOW_POINTS = 9  # fractions at which the bounds are evaluated across a fraction window
_FORMAT = "stochhom.BoundedSurrogate"


# --------------------------------------------------------------------------- quantities


def bounded_quantity(name: str) -> tuple[str, str, int]:
    """Parse a scalar quantity that has rigorous bounds: ``(physics, kind, index)``.

    ``kind`` is ``"eigenvalue"`` (``conductivity_eigenvalues_k``), ``"diagonal"``
    (``conductivity_i_i``, ``stiffness_i_i``), ``"bulk"`` or ``"shear"``
    (``bulk_modulus``, ``shear_modulus``: the isotropic projection).

    Raises
    ------
    InputError
        A quantity without rigorous bounds (off-diagonal entries, anisotropy index, ...).
    """
    parts = str(name).split("_")
    if name in ("bulk_modulus", "shear_modulus"):
        return "elasticity", name.split("_")[0], 0
    if name.startswith("conductivity_eigenvalues_") and parts[-1].isdigit():
        return "conductivity", "eigenvalue", int(parts[-1])
    if len(parts) == 3 and parts[0] in ("conductivity", "stiffness") and parts[1].isdigit() and parts[1] == parts[2]:
        return ("conductivity" if parts[0] == "conductivity" else "elasticity"), "diagonal", int(parts[1])
    raise InputError(f"{name!r} has no rigorous bounds in stochhom (they exist for conductivity eigenvalues, "
                     "diagonal tensor entries such as conductivity_0_0 or stiffness_1_1, and the bulk and shear "
                     "moduli); fit it without bounds")


def _quantity(t: np.ndarray, kind: str, index: int, physics: str) -> float:
    """The quantity ``kind`` of one tensor (d x d conductivity or Mandel stiffness)."""
    if kind == "eigenvalue":
        ev = np.linalg.eigvalsh(t)
        if index >= ev.size:
            raise InputError(f"eigenvalue {index} of a {ev.size} x {ev.size} tensor does not exist")
        return float(ev[index])
    if kind == "diagonal":
        if index >= t.shape[0]:
            raise InputError(f"entry {index},{index} of a {t.shape[0]} x {t.shape[0]} tensor does not exist")
        return float(t[index, index])
    from ..tensors import isotropic_projection

    bulk, shear = isotropic_projection(t)
    return float(bulk if kind == "bulk" else shear)


def materials_to_tables(phases: Any) -> dict[str, dict[str, Any]]:
    """Phase tables (the TOML phase-file format) of a list or dict of materials.

    Tables (possibly with parameter expressions) pass unchanged; used to save bounds.
    """
    from ..materials import AnisotropicElastic, Conductivity, IsotropicElastic, Material, Void

    items = phases.items() if isinstance(phases, Mapping) else enumerate(phases)
    out: dict[str, dict[str, Any]] = {}
    for label, m in items:
        if isinstance(m, Mapping):
            out[str(label)] = dict(m)
        elif isinstance(m, Void):
            out[str(label)] = {"law": "Void"}
        elif isinstance(m, Conductivity):
            out[str(label)] = {"law": "Conductivity", "k": np.asarray(m.k).tolist() if np.ndim(m.k) else float(m.k)}
        elif isinstance(m, IsotropicElastic):
            out[str(label)] = {"law": "IsotropicElastic", "E": float(m.E), "nu": float(m.nu)}
        elif isinstance(m, AnisotropicElastic):
            out[str(label)] = {"law": "AnisotropicElastic", "C": np.asarray(m.C).tolist()}
        elif isinstance(m, Material):
            raise InputError(f"phase {label}: cannot describe {type(m).__name__} as a phase table")
        else:
            raise InputError(f"phase {label}: expected a material or a phase table, got {type(m).__name__}")
    if not out:
        raise InputError("no phases given for the bounds")
    return out


class PhysicalBounds:
    r"""Rigorous bounds :math:`Z^-(\theta) \le Z \le Z^+(\theta)` of a scalar apparent property.

    See the module docstring for the kinds and the fraction window.

    Parameters
    ----------
    phases : mapping of phase tables, or list / dict of materials
        The study's phases; table values may be expressions of the parameters
        (``k = "contrast"``), resolved at each :math:`\theta`.
    quantity : str
        ``conductivity_eigenvalues_k``, ``conductivity_i_i``, ``stiffness_i_i``,
        ``bulk_modulus`` or ``shear_modulus`` (:func:`bounded_quantity`).
    kind : {"hashin_shtrikman", "voigt_reuss", "phases"}
    dim : {2, 3}
    features : sequence of str
        Names of the columns of ``X`` (the surrogate's inputs).
    fixed : mapping, optional
        Parameters that are not inputs (the study's fixed parameters).
    fraction : str or None
        The parameter that gives the fraction of phase 1 of a two-phase medium (an input
        or a fixed parameter); required by ``"hashin_shtrikman"`` and ``"voigt_reuss"``.
    fraction_window : float
        :math:`\delta \ge 0`: the bounds hold for every fraction in
        :math:`[\varphi - \delta, \varphi + \delta] \cap [0, 1]`.

    Examples
    --------
    >>> b = PhysicalBounds({"0": {"law": "Conductivity", "k": 1.0},
    ...                     "1": {"law": "Conductivity", "k": "contrast"}},
    ...                    "conductivity_eigenvalues_0", kind="voigt_reuss", dim=2,
    ...                    features=["volume_fraction", "contrast"])
    >>> lo, hi = b(np.array([[0.5, 3.0]]))
    >>> float(lo[0]), float(hi[0])          # harmonic and arithmetic means
    (1.5, 2.0)
    """

    def __init__(self, phases: Any, quantity: str, *, kind: str = "voigt_reuss", dim: int = 3,
                 features: Sequence[str] = (), fixed: Mapping[str, Any] | None = None,
                 fraction: str | None = "volume_fraction", fraction_window: float = 0.0) -> None:
        if kind not in BOUND_KINDS:
            raise InputError(f"unknown bound kind {kind!r}; allowed: {list(BOUND_KINDS)}")
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {dim!r}")
        self.physics, self.quantity_kind, self.index = bounded_quantity(quantity)
        self.quantity, self.kind, self.dim = str(quantity), kind, int(dim)
        self.phases = materials_to_tables(phases)
        self.features = [str(f) for f in features]
        self.fixed = {str(k): v for k, v in (fixed or {}).items()}
        window = float(fraction_window)
        if not math.isfinite(window) or window < 0:
            raise InputError(f"fraction_window must be a number >= 0, got {fraction_window!r}")
        self.fraction, self.fraction_window = (None if fraction is None else str(fraction)), window
        if kind != "phases":
            if self.fraction is None:
                raise InputError(f"{kind} bounds need the phase fractions: pass fraction='volume_fraction' (the "
                                 "parameter that gives the fraction of phase 1), or use kind='phases'")
            if self.fraction not in self.features and self.fraction not in self.fixed:
                raise InputError(f"the fraction parameter {self.fraction!r} is neither an input {self.features} nor "
                                 f"a fixed parameter {sorted(self.fixed)}; use kind='phases'")
        # bounds per distinct row of inputs (propagation and Sobol designs evaluate each row once)
        self._cache: dict[bytes, tuple[float, float]] = {}

    # ------------------------------------------------------------------ evaluation
    def _materials(self, params: Mapping[str, Any]) -> list[Any]:
        from ..statistics.phases import resolve_phases

        mats = resolve_phases(self.phases, params)
        mats = [mats[k] for k in sorted(mats)] if isinstance(mats, Mapping) else list(mats)
        physics = {m.physics for m in mats if not m.is_void}
        if physics and physics != {self.physics}:
            raise InputError(f"{self.quantity} is a {self.physics} quantity but the phases are {sorted(physics)}")
        return mats

    def _tensors(self, mats: list[Any]) -> np.ndarray:
        out = []
        for m in mats:
            out.append(m.tensor(self.dim, self.physics) if m.is_void else m.tensor(self.dim))
        return np.array(out)

    def _fractions(self, params: Mapping[str, Any], n_phases: int, monotone: bool) -> list[np.ndarray]:
        """Fraction vectors at which to evaluate the bounds: the window's ends where the bounds are
        monotone in the fraction (isotropic phases), a grid across it otherwise."""
        if n_phases != 2:
            raise InputError(f"{self.kind} bounds from a volume fraction need two phases, got {n_phases}; use "
                             "kind='phases'")
        phi = float(params[self.fraction])
        if not 0.0 <= phi <= 1.0:
            raise InputError(f"{self.fraction} = {phi!r} is not a fraction in [0, 1]")
        lo, hi = max(0.0, phi - self.fraction_window), min(1.0, phi + self.fraction_window)
        if hi <= lo:
            grid = np.array([phi])
        else:
            grid = np.array([lo, hi]) if monotone else np.unique(np.linspace(lo, hi, _WINDOW_POINTS))
        return [np.array([1.0 - f, f]) for f in grid]

    def _one(self, params: Mapping[str, Any]) -> tuple[float, float]:
        from .. import bounds as B

        mats = self._materials(params)
        if self.kind == "phases":
            return self._phase_extremes(mats)
        lows, highs = [], []
        # two isotropic phases: every bound is monotone in the fraction (a scalar conductivity, or a
        # bulk or shear modulus, between its phase values)
        monotone = all(m.is_isotropic for m in mats) and not (self.physics == "elasticity"
                                                               and self.quantity_kind == "diagonal")
        for f in self._fractions(params, len(mats), monotone):
            if self.kind == "hashin_shtrikman":
                if self.quantity_kind == "diagonal" and self.physics == "elasticity":
                    raise InputError("Hashin–Shtrikman bounds are for isotropic moduli and conductivities, not for "
                                     f"the stiffness entry {self.quantity}; use kind='voigt_reuss'")
                try:
                    hs = B.hashin_shtrikman(mats, f, self.dim)
                except MaterialError as exc:
                    raise InputError(f"Hashin–Shtrikman bounds: {exc}; use kind='voigt_reuss'") from None
                pair = hs.shear if self.quantity_kind == "shear" else hs.bulk
                lows.append(pair[0])
                highs.append(pair[1])
            else:
                lows.append(_quantity(B.reuss(mats, f, self.dim), self.quantity_kind, self.index, self.physics))
                highs.append(_quantity(B.voigt(mats, f, self.dim), self.quantity_kind, self.index, self.physics))
        return float(min(lows)), float(max(highs))

    def _phase_extremes(self, mats: list[Any]) -> tuple[float, float]:
        t = self._tensors(mats)
        # isotropic phases: a scalar conductivity, or the bulk or shear modulus, lies between the phase
        # values (Reuss >= the smallest, Voigt <= the largest); otherwise bound the tensor by its extreme
        # eigenvalues times the identity (a stiffness entry mixes the bulk and shear moduli of the phases)
        if all(m.is_isotropic for m in mats) and (self.physics == "conductivity" or self.quantity_kind != "diagonal"):
            values = [_quantity(ti, self.quantity_kind, self.index, self.physics) for ti in t]
            return float(min(values)), float(max(values))
        ev = np.linalg.eigvalsh(t)
        n = t.shape[-1]
        lo = _quantity(ev.min() * np.eye(n), self.quantity_kind, self.index, self.physics)
        hi = _quantity(ev.max() * np.eye(n), self.quantity_kind, self.index, self.physics)
        return lo, hi

    def __call__(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds ``(n,)`` at the rows of ``X`` (columns: ``features``)."""
        Xa = np.atleast_2d(np.asarray(X, dtype=float))
        if Xa.shape[1] != len(self.features):
            raise InputError(f"X has {Xa.shape[1]} column(s) but the bounds know the inputs {self.features}")
        uniq, inv = np.unique(Xa, axis=0, return_inverse=True)
        lo, hi = np.empty(uniq.shape[0]), np.empty(uniq.shape[0])
        for r, row in enumerate(uniq):
            key = row.tobytes()
            if key not in self._cache:
                self._cache[key] = self._one({**self.fixed, **dict(zip(self.features, row.tolist()))})
            lo[r], hi[r] = self._cache[key]
        inv = inv.reshape(-1)
        return lo[inv], hi[inv]

    # ------------------------------------------------------------------ description and persistence
    def describe(self) -> str:
        """One line for a report, e.g. ``Hashin–Shtrikman bounds at volume_fraction ± 0.001``."""
        text = f"{_KIND_NAMES[self.kind]} bounds"
        if self.kind != "phases":
            text += f" at the nominal {self.fraction}"
            if self.fraction_window > 0:
                text += f" ± {self.fraction_window:.3g}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"phases": self.phases, "quantity": self.quantity, "kind": self.kind, "dim": self.dim,
                "features": self.features, "fixed": self.fixed, "fraction": self.fraction,
                "fraction_window": self.fraction_window}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PhysicalBounds:
        return cls(d["phases"], d["quantity"], kind=d["kind"], dim=d["dim"], features=d["features"],
                   fixed=d.get("fixed"), fraction=d.get("fraction"), fraction_window=d.get("fraction_window", 0.0))

    def __repr__(self) -> str:
        return f"PhysicalBounds({self.quantity!r}, kind={self.kind!r}, window={self.fraction_window:g})"


# --------------------------------------------------------------------------- the truncated law


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """:math:`\\log(1 - e^x)` for :math:`x \\le 0`, accurate at both ends."""
    x = np.minimum(x, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(x > -math.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def log_mass(a: Any, b: Any) -> np.ndarray:
    r""":math:`\log(\Phi(b) - \Phi(a))` for :math:`a \le b`, accurate far in either tail."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    upper = a > 0  # both in the upper tail: mirror, Phi(b) - Phi(a) = Phi(-a) - Phi(-b)
    hi = np.where(upper, -a, b)
    lo = np.where(upper, -b, a)
    lhi, llo = special.log_ndtr(hi), special.log_ndtr(lo)
    with np.errstate(invalid="ignore"):
        return lhi + _log1mexp(llo - lhi)


class Truncation:
    r"""The law of an observation of a bounded surrogate, given its latent mean and variance.

    The latent model regresses :math:`z = \ln y` (``scale="log"``) or :math:`z = y`
    (``"linear"``). An observation is :math:`y = h(x)`, :math:`h = \exp` or the identity, with
    :math:`x` normal :math:`N(m, s^2)` **truncated** to the bounds :math:`[h^{-1}(y^-), h^{-1}(y^+)]`
    (module docstring). With :math:`\alpha = (h^{-1}(y^-) - m)/s`, :math:`\beta = (h^{-1}(y^+) - m)/s`
    and :math:`Z = \Phi(\beta) - \Phi(\alpha)`, in closed form:

    .. math::
        \mathbb E[y] = e^{m + s^2/2}\,\frac{\Phi(\beta - s) - \Phi(\alpha - s)}{Z}, \qquad
        \mathbb E[y^2] = e^{2m + 2s^2}\,\frac{\Phi(\beta - 2s) - \Phi(\alpha - 2s)}{Z}

    on the log scale (the truncated lognormal); the truncated normal's moments on the linear
    scale. Quantiles are :math:`h(m + s\,\Phi^{-1}(\Phi(\alpha) + \tau Z))`. Every probability is
    computed in log space (:func:`log_mass`), so that a latent mean far outside the bounds
    gives a law piled up against the nearest bound, not NaN. :math:`s = 0` gives the point
    :math:`h(\operatorname{clip}(m))`; equal bounds give the point :math:`y^- = y^+`.

    Parameters
    ----------
    lower, upper : array_like
        Physical bounds, broadcastable against the latent values (``lower`` may be 0 or
        ``-inf`` on the linear scale, ``0`` on the log scale; ``upper`` may be ``inf``).
    scale : {"log", "linear"}
    """

    def __init__(self, lower: Any, upper: Any, scale: str = "log") -> None:
        lo = np.asarray(lower, dtype=float)
        hi = np.asarray(upper, dtype=float)
        if scale not in ("log", "linear"):
            raise InputError(f"scale must be 'log' or 'linear', got {scale!r}")
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
            raise InputError("bounds contain NaN")
        if np.any(hi < lo):
            raise InputError("an upper bound lies below its lower bound")
        if scale == "log" and np.any(lo < 0):
            raise InputError("a log-scale law needs lower bounds >= 0; use scale='linear'")
        self.lower, self.upper, self.scale = lo, hi, scale
        with np.errstate(divide="ignore"):
            self._a = np.log(lo) if scale == "log" else lo  # latent bounds
            self._b = np.log(hi) if scale == "log" else hi

    # ------------------------------------------------------------------ maps
    def to_latent(self, y: Any) -> np.ndarray:
        """:math:`z = \\ln y` or :math:`y`."""
        y = np.asarray(y, dtype=float)
        if self.scale == "linear":
            return y.copy()
        with np.errstate(divide="ignore"):
            return np.log(y)

    def from_latent(self, z: Any) -> np.ndarray:
        """:math:`h(\\operatorname{clip}(z))`: a latent value mapped inside the bounds."""
        z = np.clip(np.asarray(z, dtype=float), self._a, self._b)
        return np.exp(z) if self.scale == "log" else z

    def _std(self, mean: Any, var: Any) -> tuple[np.ndarray, ...]:
        m = np.asarray(mean, dtype=float)
        s = np.sqrt(np.maximum(np.asarray(var, dtype=float), 0.0))
        shape = np.broadcast_shapes(m.shape, s.shape, self._a.shape, self._b.shape)
        m, s = np.broadcast_to(m, shape), np.broadcast_to(s, shape)
        a, b = np.broadcast_to(self._a, shape), np.broadcast_to(self._b, shape)
        with np.errstate(invalid="ignore"):
            pinched = np.isfinite(a) & np.isfinite(b) & (b - a <= 1e-12 * np.maximum(1.0, np.abs(b)))
        point = (s <= 1e-12 * np.maximum(1.0, np.abs(m))) | pinched
        s_safe = np.where(point, 1.0, s)
        with np.errstate(invalid="ignore"):
            alpha, beta = (a - m) / s_safe, (b - m) / s_safe
        return m, s, s_safe, a, b, alpha, beta, point

    # ------------------------------------------------------------------ moments and samples
    def moments(self, mean: Any, var: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of :math:`y` for the latent :math:`N(\\text{mean}, \\text{var})` truncated."""
        m, _, s1, a, b, alpha, beta, point = self._std(mean, var)
        logz = log_mass(alpha, beta)
        if self.scale == "log":
            with np.errstate(over="ignore", invalid="ignore"):
                e1 = np.exp(m + 0.5 * s1**2 + log_mass(alpha - s1, beta - s1) - logz)
                e2 = np.exp(2 * m + 2 * s1**2 + log_mass(alpha - 2 * s1, beta - 2 * s1) - logz)
            v = np.maximum(e2 - e1**2, 0.0)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                # phi(alpha) - phi(beta) over Z, in log space where both are tiny
                pa = np.exp(-0.5 * alpha**2 - 0.5 * math.log(2 * math.pi) - logz)
                pb = np.exp(-0.5 * beta**2 - 0.5 * math.log(2 * math.pi) - logz)
                pa, pb = np.where(np.isfinite(alpha), pa, 0.0), np.where(np.isfinite(beta), pb, 0.0)
                ta = np.where(np.isfinite(alpha), alpha * pa, 0.0)
                tb = np.where(np.isfinite(beta), beta * pb, 0.0)
            e1 = m + s1 * (pa - pb)
            v = np.maximum(s1**2 * (1.0 + ta - tb - (pa - pb) ** 2), 0.0)
        e1 = np.clip(np.where(np.isfinite(e1), e1, np.nan), self.lower, self.upper)
        # a latent law far beyond a bound (Z underflows): all its mass at that bound
        far = ~np.isfinite(logz) | np.isnan(e1)
        fixed = self.from_latent(np.where(far & (m > b), b, np.where(far, a, m)))
        e1 = np.where(point | far, np.where(point, self.from_latent(m), fixed), e1)
        v = np.where(point | far | ~np.isfinite(v), 0.0, v)
        return e1, v

    def latent_quantile(self, tau: Any, mean: Any, var: Any) -> np.ndarray:
        r"""Latent quantile :math:`m + s\,\Phi^{-1}(\Phi(\alpha) + \tau Z)`, computed in log space."""
        m, _, s1, a, b, alpha, beta, point = self._std(mean, var)
        tau = np.clip(np.asarray(tau, dtype=float), 1e-300, 1.0 - 1e-16)
        logz = log_mass(alpha, beta)
        upper = alpha > 0  # mass in the upper tail: work with 1 - p
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.logaddexp(special.log_ndtr(alpha), np.log(tau) + logz)
            lq = np.logaddexp(special.log_ndtr(-beta), np.log1p(-tau) + logz)
            x = np.where(upper, -special.ndtri_exp(np.minimum(lq, 0.0)), special.ndtri_exp(np.minimum(lp, 0.0)))
        z = np.clip(m + s1 * x, a, b)
        return np.where(point | ~np.isfinite(logz), np.clip(m, a, b), z)

    def quantile(self, tau: Any, mean: Any, var: Any) -> np.ndarray:
        return self.from_latent(self.latent_quantile(tau, mean, var))

    def sample(self, mean: Any, var: Any, rng: Any) -> np.ndarray:
        """Draws of :math:`y` (inverse CDF), one per element of the broadcast shape."""
        shape = np.broadcast_shapes(np.shape(mean), np.shape(var), self._a.shape)
        u = np.random.default_rng(rng).random(shape)
        return self.quantile(u, mean, var)

    # ------------------------------------------------------------------ density and CDF
    def log_cdf_parts(self, y: Any, mean: Any, var: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(log F(y), log(1 - F(y)))`` of the truncated law (stable in both tails)."""
        m, _, s1, a, b, alpha, beta, _ = self._std(mean, var)
        x = (np.clip(self.to_latent(y), a, b) - m) / s1
        logz = log_mass(alpha, beta)
        return log_mass(alpha, np.maximum(x, alpha)) - logz, log_mass(np.minimum(x, beta), beta) - logz

    def logpdf(self, y: Any, mean: Any, var: Any) -> np.ndarray:
        """Log density of :math:`y` (with the Jacobian :math:`1/y` on the log scale); ``-inf`` outside."""
        y = np.asarray(y, dtype=float)
        m, _, s1, a, b, alpha, beta, _ = self._std(mean, var)
        z = self.to_latent(y)
        x = (z - m) / s1
        out = -0.5 * x**2 - 0.5 * math.log(2 * math.pi) - np.log(s1) - log_mass(alpha, beta)
        if self.scale == "log":
            with np.errstate(divide="ignore"):
                out = out - np.log(y)
        inside = (z >= a) & (z <= b)
        return np.where(inside, out, -np.inf)

    def to_dict(self) -> dict[str, Any]:
        return {"lower": self.lower.tolist(), "upper": self.upper.tolist(), "scale": self.scale}


# --------------------------------------------------------------------------- the surrogate


class BoundedSurrogate(SurrogateBase):
    r"""A surrogate whose predictions respect physical bounds by construction.

    Fits ``estimator`` (a :class:`~stochhom.surrogates.GPR`, :class:`~stochhom.surrogates.PCE`
    or any regressor with ``predict(X, return_std=True)``) to the latent values
    :math:`z = \ln y` (``scale="log"``) or :math:`y` (``"linear"``), and predicts the latent
    Gaussian law truncated to the bounds at each input (:class:`Truncation`): every
    prediction, interval, posterior draw and propagated sample lies inside them.

    Parameters
    ----------
    estimator : regressor
        The latent model (cloned in ``fit``).
    bounds : PhysicalBounds, callable or (lower, upper)
        Bounds at the rows of ``X``: a :class:`PhysicalBounds`, a function
        ``X -> (lower, upper)``, or two constants (``(0, inf)`` is plain log regression).
    scale : {"log", "linear"}
        The latent scale: ``"log"`` for positive targets (relative errors, the scatter of a
        modulus or conductivity is close to lognormal), ``"linear"`` when a target can be 0.
    rtol : float
        Training values outside their bounds by at most ``rtol`` (relative) are accepted
        (round-off of the solver); beyond that ``fit`` refuses the data, since the bounds
        would be wrong for them.

    Attributes
    ----------
    estimator_ : regressor
        The fitted latent model.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from stochhom.surrogates import PCE
    >>> X = np.linspace(0, 1, 30)[:, None]
    >>> y = 1.5 + 8.0 * X[:, 0] ** 2                         # inside (1, 10)
    >>> m = BoundedSurrogate(PCE(degree=3), bounds=(1.0, 10.0)).fit(X, y)
    >>> lo, hi = m.predictive(np.array([[0.5], [3.0]])).interval(0.99)
    >>> bool(np.all(lo >= 1.0) and np.all(hi <= 10.0))        # even far outside the data
    True
    """

    def __init__(self, estimator: Any = None, bounds: Any = (0.0, math.inf), scale: str = "log",
                 rtol: float = 1e-6) -> None:
        self.estimator = estimator
        self.bounds = bounds
        self.scale = scale
        self.rtol = rtol

    # ------------------------------------------------------------------ bounds
    def _bounds_at(self, Xa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = self.bounds
        if isinstance(b, PhysicalBounds) or callable(b):
            lo, hi = b(Xa)
            lo = np.broadcast_to(np.asarray(lo, dtype=float), (Xa.shape[0],))
            hi = np.broadcast_to(np.asarray(hi, dtype=float), (Xa.shape[0],))
        elif isinstance(b, (tuple, list)) and len(b) == 2:
            lo = np.full(Xa.shape[0], float(b[0]))
            hi = np.full(Xa.shape[0], float(b[1]))
        else:
            raise InputError(f"bounds must be a PhysicalBounds, a function X -> (lower, upper) or a pair of numbers, "
                             f"got {b!r}")
        return lo, hi

    def output_map(self, X: Any) -> Truncation:
        """The truncated law's map at the rows of ``X`` (:class:`Truncation`)."""
        check_is_fitted(self, "estimator_")
        Xa = check_X(X, self.n_features_in_)
        lo, hi = self._bounds_at(Xa)
        if self._q_ > 1:
            lo, hi = lo[:, None], hi[:, None]
        return Truncation(lo, hi, self.scale)

    def describe_bounds(self) -> str:
        b = self.bounds
        if isinstance(b, PhysicalBounds):
            return b.describe()
        if isinstance(b, (tuple, list)):
            return f"constant bounds [{float(b[0]):g}, {float(b[1]):g}]"
        return "bounds from a function of the inputs"

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, **fit_params: Any) -> BoundedSurrogate:
        """Fit the latent model to :math:`\\ln y` (or :math:`y`); returns ``self``.

        Raises
        ------
        InputError
            No estimator, a bad scale, non-positive targets on the log scale, or training
            values outside their bounds beyond ``rtol`` (the message gives the count and the
            worst row).
        """
        if self.estimator is None:
            raise InputError("BoundedSurrogate needs an estimator, e.g. BoundedSurrogate(GPR(), bounds=...)")
        if self.scale not in ("log", "linear"):
            raise InputError(f"scale must be 'log' or 'linear', got {self.scale!r}")
        Xa, Y, one_d = check_Xy(X, y)
        lo, hi = self._bounds_at(Xa)
        lo2, hi2 = lo[:, None], hi[:, None]
        tol = float(self.rtol) * np.maximum(np.abs(np.where(np.isfinite(lo2), lo2, 0.0)),
                                            np.abs(np.where(np.isfinite(hi2), hi2, 0.0)))
        bad = (Y < lo2 - tol) | (Y > hi2 + tol)
        if np.any(bad):
            rows = np.flatnonzero(bad.any(axis=1))
            r = rows[0]
            raise InputError(
                f"{rows.size} of {Y.shape[0]} training value(s) lie outside their bounds ({self.describe_bounds()}; "
                f"first: row {r}, y = {Y[r].tolist()}, bounds [{lo[r]:.6g}, {hi[r]:.6g}]): these bounds do not hold "
                "for the data; use looser bounds (e.g. kind='voigt_reuss' or 'phases', or a fraction window) or "
                "check those samples")
        if self.scale == "log" and np.any(Y <= 0):
            raise InputError(f"{int(np.sum(Y <= 0))} training value(s) are <= 0: a log-scale surrogate needs "
                             "positive targets; use scale='linear'")
        self.n_features_in_ = Xa.shape[1]
        self.n_outputs_ = Y.shape[1]
        self._y_1d_ = one_d
        self._q_ = Y.shape[1]
        Yc = np.clip(Y, lo2, hi2)  # values within rtol outside a bound: on it
        z = Truncation(lo2, hi2, self.scale).to_latent(Yc)
        self.estimator_ = clone(self.estimator).fit(Xa, z[:, 0] if one_d else z, **fit_params)
        return self

    # ------------------------------------------------------------------ latent model
    def predict_latent(self, X: Any, return_std: bool = False) -> Any:
        """The latent model's prediction of :math:`z` (mean, and total std)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(check_X(X, self.n_features_in_), return_std=return_std)

    @property
    def sample_latent_functions(self) -> Callable[..., np.ndarray]:
        """Posterior function samples of the latent model (when it has ``sample_functions``)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.sample_functions

    @property
    def latent_noise_variance(self) -> Callable[..., np.ndarray]:
        """The latent model's noise variance (when it has ``noise_variance``)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.noise_variance

    # ------------------------------------------------------------------ physical predictions
    def predictive(self, X: Any) -> Any:
        """The predictive law of a new observation at ``X``: the latent predictive law (mean and
        total variance) truncated to the bounds, a :class:`~stochhom.surrogates.predictive.TruncatedNormal`."""
        from .predictive import TruncatedNormal

        Xa = check_X(X, self.n_features_in_)
        mu, sd = self.predict_latent(Xa, return_std=True)
        return TruncatedNormal(np.asarray(mu, dtype=float), np.asarray(sd, dtype=float), self.output_map(Xa))

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Predictive mean (and standard deviation) of :math:`y`, in closed form."""
        check_is_fitted(self, "estimator_")
        law = self.predictive(X)
        return (law.mean, law.std) if return_std else law.mean

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save to the directory ``path``: ``bounded.json`` and the latent model in ``latent/``."""
        check_is_fitted(self, "estimator_")
        if not isinstance(self.bounds, (PhysicalBounds, tuple, list)):
            raise InputError("only PhysicalBounds or constant bounds can be saved, not a function")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        est = self.estimator_
        if not hasattr(est, "save"):
            raise InputError(f"the latent {type(est).__name__} cannot be saved")
        est.save(path / "latent")
        bounds = self.bounds.to_dict() if isinstance(self.bounds, PhysicalBounds) else [float(v) for v in self.bounds]
        meta = {"format": _FORMAT, "version": 2, "latent": type(est).__name__, "bounds": bounds,
                "scale": self.scale, "rtol": float(self.rtol), "n_features_in_": int(self.n_features_in_),
                "n_outputs_": int(self.n_outputs_), "y_1d": bool(self._y_1d_)}
        (path / "bounded.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> BoundedSurrogate:
        """Load a model written by :meth:`save`."""
        path = Path(path)
        try:
            meta = json.loads((path / "bounded.json").read_text())
        except FileNotFoundError:
            raise InputError(f"no saved BoundedSurrogate in {str(path)!r} (expected bounded.json)") from None
        if meta.get("format") != _FORMAT or meta.get("version") != 2:
            raise InputError(f"{str(path / 'bounded.json')!r} is not a saved stochhom BoundedSurrogate of this "
                             "version; refit it")
        from .warping import load_latent

        est = load_latent(path / "latent", meta["latent"])
        b = meta["bounds"]
        bounds = PhysicalBounds.from_dict(b) if isinstance(b, Mapping) else tuple(b)
        model = cls(est, bounds, scale=meta["scale"], rtol=meta["rtol"])
        model.estimator_ = est
        model.n_features_in_ = meta["n_features_in_"]
        model.n_outputs_ = meta["n_outputs_"]
        model._y_1d_ = meta["y_1d"]
        model._q_ = meta["n_outputs_"]
        return model
