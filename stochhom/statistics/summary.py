r"""Summary statistics of apparent properties, per parameter point.

An apparent-properties ``Dataset`` (see :mod:`stochhom.statistics.ensemble`) stacks
every sample of a study along ``sample``. :func:`summarize` groups the samples by
parameter point and reports, for each scalar quantity :math:`Z` over the :math:`n`
converged samples of a point,

* the mean :math:`\bar Z`, the standard deviation :math:`s` (``ddof = 1``) and the
  standard error of the mean :math:`s/\sqrt n`;
* a confidence interval of the mean that stays inside the quantity's range
  (:func:`quantity_support`, :func:`mean_confidence_interval`): the modified Cox
  interval on the log scale for few values of a positive quantity, Student-t
  intersected with the range otherwise below :data:`BOOTSTRAP_MIN_N` values, and the
  bootstrap (BCa, Efron & Tibshirani 1993, ch. 14; percentile where BCa is
  degenerate) from there on;
* the number of failed samples (``converged = 0``), which are excluded;
* optionally the fraction of samples whose isotropic projection lies inside the
  Hashin–Shtrikman bounds of their measured phase fractions
  (:func:`within_hashin_shtrikman`);
* the mean universal anisotropy index (:func:`anisotropy_index`), a measure of how far
  the apparent tensors of the point are from isotropy.

Scalar quantities are named after the variables of the dataset: a per-sample variable
with extra dimensions is split into components ``<name>_<index>`` (for instance
``conductivity_eigenvalues_0``, ``phase_fraction_1``; the symmetric tensors
``stiffness`` and ``conductivity`` give their upper-triangle entries ``stiffness_0_1``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import scipy.stats as st
import xarray as xr

from ..bounds import hashin_shtrikman
from ..errors import InputError
from ..tensors import isotropic_projection
from .ensemble import sample_parameters
from .phases import PhaseSpec, resolve_phases

__all__ = [
    "BOOTSTRAP_MIN_N",
    "CI_METHODS",
    "IDENTIFIERS",
    "DIAGNOSTICS",
    "anisotropy_index",
    "cox_log_interval",
    "default_by",
    "fraction_within_hashin_shtrikman",
    "mean_confidence_interval",
    "quantity_support",
    "scalar_columns",
    "summarize",
    "within_hashin_shtrikman",
]

#: Per-sample coordinates that identify a sample rather than a parameter point.
IDENTIFIERS = ("sample", "seed", "specimen", "parent_sample", "replicate")

#: Per-sample variables that describe the solve, not the material.
DIAGNOSTICS = ("converged", "status", "solve_time", "warmup_time", "iterations", "residual", "volume")

#: Symmetric tensor variables: only their upper-triangle entries are scalar quantities.
_SYMMETRIC = ("stiffness", "conductivity")

#: Below this many values, ``method="auto"`` intervals of the mean are Student-t, not bootstrap.
BOOTSTRAP_MIN_N = 20

#: Relative tolerance of :func:`within_hashin_shtrikman`.
HS_RTOL = 1e-9

#: What each method string of :func:`mean_confidence_interval` (``ci_method`` of
#: :func:`summarize`) means, in words a report can print as a footnote.
CI_METHODS = {
    "cox-log": "modified Cox interval of the arithmetic mean, made on the log scale (Olsson 2005): "
               "a positive quantity with fewer than 20 values",
    "t": "Student-t interval x̄ ± t s/√n",
    "t∩support": "Student-t interval x̄ ± t s/√n cut to the quantity's range",
    "BCa": "BCa bootstrap",
    "BCa∩support": "BCa bootstrap cut to the quantity's range",
    "percentile": "percentile bootstrap",
    "percentile∩support": "percentile bootstrap cut to the quantity's range",
    "basic": "basic bootstrap",
    "basic∩support": "basic bootstrap cut to the quantity's range",
    "degenerate": "constant values: zero-width interval",
    "none": "fewer than 2 values: no interval",
    "outside-support": "values outside the quantity's range: no interval",
}

#: Scalar quantities that are positive (their mean lies in [0, inf)).
_POSITIVE = ("bulk_modulus", "shear_modulus", "anisotropy_index", "volume", "mean_conductivity",
             "conductivity_eigenvalues")

#: Scalar quantities that are fractions (their mean lies in [0, 1]).
_FRACTIONS = ("phase_fraction", "volume_fraction")

_WHOLE_LINE = (-np.inf, np.inf)


# --------------------------------------------------------------------------- input


def _check_props(props: Any) -> xr.Dataset:
    if not isinstance(props, xr.Dataset):
        raise InputError(f"expected an apparent-properties xarray.Dataset, got {type(props).__name__}")
    if props.sizes.get("sample", 0) == 0:
        raise InputError("the apparent-properties Dataset is empty (no 'sample' entries)")
    return props


def _per_sample(props: xr.Dataset, name: Hashable) -> np.ndarray:
    """1-D values of a per-sample coordinate or variable."""
    if name not in props.variables:
        known = sorted(map(str, props.variables))
        raise InputError(f"{name!r} is not a coordinate or variable of the dataset; it has {known}")
    da = props[name]
    if da.dims != ("sample",):
        raise InputError(f"{name!r} must have dims ('sample',) to group by it, it has {da.dims}")
    return da.values


def _converged(props: xr.Dataset) -> np.ndarray:
    if "converged" not in props:
        return np.ones(props.sizes["sample"], dtype=bool)
    return np.asarray(props["converged"].values).astype(bool)


def _physics(props: xr.Dataset) -> str | None:
    phys = props.attrs.get("physics")
    if phys in ("elasticity", "conductivity"):
        return str(phys)
    if "stiffness" in props:
        return "elasticity"
    if "conductivity" in props:
        return "conductivity"
    return None


def _tensor_name(props: xr.Dataset) -> str:
    phys = _physics(props)
    name = {"elasticity": "stiffness", "conductivity": "conductivity"}.get(phys or "")
    if name is None or name not in props:
        raise InputError("the dataset holds neither a 'stiffness' nor a 'conductivity' variable")
    return name


def default_by(props: xr.Dataset, exclude: Sequence[str] = ()) -> list[str]:
    """The default grouping keys of :func:`summarize`.

    Every coordinate with dims ``("sample",)`` except the identifiers
    :data:`IDENTIFIERS` (``sample``, ``seed``, ``specimen``, ``parent_sample``, ``replicate``), plus
    ``volume`` when the samples have different volumes (an RVE-size study), minus
    ``exclude``. Coordinates that are constant over the dataset are kept: they do not
    split the samples, but they label the points.
    """
    keys = [str(c) for c, da in props.coords.items() if da.dims == ("sample",) and c not in IDENTIFIERS]
    if "volume" in props and props["volume"].dims == ("sample",) and np.unique(props["volume"].values).size > 1:
        keys.append("volume")
    return [k for k in keys if k not in exclude]


# --------------------------------------------------------------------------- scalar quantities


def _components(props: xr.Dataset, name: str) -> dict[str, np.ndarray]:
    da = props[name]
    if da.dims[:1] != ("sample",) or da.dtype.kind not in "biuf":
        raise InputError(f"{name!r} is not a numeric per-sample variable (dims {da.dims}, dtype {da.dtype})")
    vals = da.transpose("sample", ...).values.astype(float)
    if vals.ndim == 1:
        return {name: vals}
    out = {}
    for idx in np.ndindex(*vals.shape[1:]):
        if name in _SYMMETRIC and vals.ndim == 3 and idx[0] > idx[1]:
            continue
        out[name + "_" + "_".join(map(str, idx))] = vals[(slice(None), *idx)]
    return out


def _component(props: xr.Dataset, name: str) -> np.ndarray | None:
    """Values of a component name such as ``stiffness_0_1`` or ``phase_fraction_1``; None if none matches."""
    parts = name.split("_")
    for k in range(1, len(parts)):
        base, idx = "_".join(parts[:-k]), parts[-k:]
        if base in props and all(p.isdigit() for p in idx) and props[base].ndim == k + 1:
            cols = _components(props, base)
            if name in cols:
                return cols[name]
            raise InputError(f"{name!r}: index out of range or below the diagonal; components are {sorted(cols)}")
    return None


def scalar_columns(props: xr.Dataset, names: Sequence[str] | str) -> dict[str, np.ndarray]:
    """Per-sample scalar quantities, by name (see the module docstring).

    Parameters
    ----------
    props : xarray.Dataset
        Apparent properties.
    names : str or sequence of str
        Per-sample variables (split into components if they have extra dims),
        component names (``stiffness_0_0``), or ``"anisotropy_index"``
        (:func:`anisotropy_index` of the apparent tensors).

    Returns
    -------
    dict of str to numpy.ndarray
        One array of length ``n_samples`` per scalar quantity, in request order.
    """
    props = _check_props(props)
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise InputError("no variables requested; pass e.g. variables=['bulk_modulus']")
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name == "anisotropy_index" and "anisotropy_index" not in props:
            tname = _tensor_name(props)
            out[name] = anisotropy_index(props[tname].transpose("sample", ...).values, _physics(props))
        elif name in props.variables:
            out.update(_components(props, name))
        else:
            col = _component(props, name)
            if col is None:
                known = sorted(str(v) for v in props.data_vars if props[v].dims[:1] == ("sample",))
                raise InputError(f"unknown variable {name!r}; per-sample variables of the dataset are {known}")
            out[name] = col
    return out


def _default_variables(props: xr.Dataset) -> list[str]:
    phys = _physics(props)
    if phys == "elasticity" and "bulk_modulus" in props:
        return ["bulk_modulus", "shear_modulus", "anisotropy_index"]
    if phys == "conductivity" and "conductivity_eigenvalues" in props:
        return ["conductivity_eigenvalues", "anisotropy_index"]
    names = [str(v) for v, da in props.data_vars.items()
             if da.dims == ("sample",) and da.dtype.kind == "f" and v not in DIAGNOSTICS]
    if not names:
        raise InputError("the dataset has no default scalar quantities; pass variables=[...]")
    return names


def quantity_support(name: str, physics: str | None = None) -> tuple[float, float]:
    r"""Admissible range ``(low, high)`` of a scalar quantity, from its name.

    The mean of a quantity lies in the same closed range as its values, so a
    confidence interval of the mean never needs to leave it
    (:func:`mean_confidence_interval`). Names follow :func:`scalar_columns`:

    * :math:`[0, \infty)`: ``bulk_modulus``, ``shear_modulus`` (:math:`\kappa` in 2D),
      ``mean_conductivity``, ``volume``, ``conductivity_eigenvalues[_k]``, the
      ``anisotropy_index`` (:math:`A^U \ge 0`, :func:`anisotropy_index`), and the diagonal
      tensor entries ``stiffness_i_i``, ``conductivity_i_i`` (a positive-definite matrix
      has a positive diagonal);
    * :math:`[0, 1]`: ``phase_fraction[_k]``, ``volume_fraction``;
    * :math:`(-\infty, \infty)`: off-diagonal entries ``stiffness_i_j``,
      ``conductivity_i_j`` (:math:`i \ne j`) and any other name.

    Parameters
    ----------
    name : str
        Scalar quantity (``"bulk_modulus"``, ``"stiffness_3_3"``, ``"phase_fraction_1"``).
    physics : {"elasticity", "conductivity"}, optional
        The dataset's physics (``attrs["physics"]``). When given, only that physics'
        tensor (``stiffness`` or ``conductivity``) has its diagonal entries recognized.

    Returns
    -------
    low, high : float
        Bounds of the range (``-inf``/``inf`` where unbounded).

    Raises
    ------
    InputError
        ``name`` is not a string, or an unknown ``physics``.
    """
    if not isinstance(name, str):
        raise InputError(f"a quantity name must be a string such as 'bulk_modulus', got {name!r}")
    if physics not in (None, "elasticity", "conductivity"):
        raise InputError(f"physics must be 'elasticity', 'conductivity' or None, got {physics!r}")
    parts = name.split("_")
    k = len(parts)
    while k > 1 and parts[k - 1].isdigit():
        k -= 1
    base, idx = "_".join(parts[:k]), parts[k:]
    if base in _FRACTIONS and len(idx) <= 1:
        return 0.0, 1.0
    if base in _POSITIVE and (not idx or (base == "conductivity_eigenvalues" and len(idx) == 1)):
        return 0.0, np.inf
    tensors = _SYMMETRIC if physics is None else ({"elasticity": "stiffness", "conductivity": "conductivity"}[physics],)
    if base in tensors and len(idx) == 2 and int(idx[0]) == int(idx[1]):
        return 0.0, np.inf
    return _WHOLE_LINE


# --------------------------------------------------------------------------- anisotropy


def _reuss_voigt_ratios(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K_V/K_R, G_V/G_R) of Mandel stiffnesses ``c`` (finite, positive-definite rows)."""
    dim = 3 if c.shape[-1] == 6 else 2
    kv, gv = isotropic_projection(c)
    # the same projection of the compliance S gives 1/(d^2 K_R) and 1/(4 G_R)
    ks, gs = isotropic_projection(np.linalg.inv(c))
    return kv * dim**2 * ks, gv * 4.0 * gs


def anisotropy_index(tensor: Any, physics: str | None = None) -> np.ndarray:
    r"""Universal anisotropy index of stiffness or conductivity tensors.

    Elasticity (Ranganathan & Ostoja-Starzewski 2008), from the Voigt averages
    :math:`K_V, G_V` of the stiffness and the Reuss averages :math:`K_R, G_R` (the
    same averages of the compliance :math:`\mathbb S = \mathbb C^{-1}`):

    .. math::
        A^U = 5\frac{G_V}{G_R} + \frac{K_V}{K_R} - 6 \quad (3D), \qquad
        A^U_{2D} = 2\frac{G_V}{G_R} + \frac{\kappa_V}{\kappa_R} - 3 \quad
        (\text{2D plane strain}).

    The averages are the Frobenius projections onto the isotropic tensors:
    :math:`K_V = \mathbb J::\mathbb C/d`, :math:`2G_V = \mathbb K::\mathbb C/\mathbb K::\mathbb K`,
    :math:`1/K_R = d\,\mathbb J::\mathbb S`, :math:`1/(2G_R) = \mathbb K::\mathbb S/\mathbb K::\mathbb K`.
    The 2D form weights each ratio by the dimension of its eigenspace (1 spherical, 2
    deviatoric in-plane modes, against 1 and 5 in 3D), with :math:`\kappa = \lambda + G`
    the plane-strain bulk modulus. Each ratio is :math:`\ge 1` (Hill), so the index is
    :math:`\ge 0` and zero if and only if the tensor is isotropic (in-plane isotropic
    in 2D).

    Conductivity: :math:`\lambda_{\max}/\lambda_{\min} - 1` from the eigenvalues of the
    (symmetrized) tensor; zero if and only if it is isotropic.

    Parameters
    ----------
    tensor : array_like or xarray.DataArray, shape (..., n, n)
        Mandel stiffnesses (``n`` = 6 in 3D, 3 in 2D) or ``d x d`` conductivities.
        Rows with NaN (failed samples) give NaN; a singular stiffness gives ``inf``.
    physics : {"elasticity", "conductivity"}, optional
        Needed for ``3 x 3`` tensors (2D stiffness or 3D conductivity) unless
        ``tensor`` is a DataArray named ``stiffness`` or ``conductivity``; 6 x 6 is
        elasticity and 2 x 2 conductivity.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Dimensionless index, with the leading shape (dims) of ``tensor``.

    References
    ----------
    S. I. Ranganathan, M. Ostoja-Starzewski, "Universal elastic anisotropy index",
    Phys. Rev. Lett. 101 (2008) 055504.
    """
    da = tensor if isinstance(tensor, xr.DataArray) else None
    if da is not None and physics is None:
        physics = {"stiffness": "elasticity", "conductivity": "conductivity"}.get(str(da.name))
    t = np.asarray(da.values if da is not None else tensor, dtype=float)
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise InputError(f"anisotropy_index expects (..., n, n) tensors, got shape {t.shape}")
    n = t.shape[-1]
    if physics is None:
        physics = {6: "elasticity", 2: "conductivity"}.get(n)
        if physics is None:
            raise InputError(f"a {n} x {n} tensor is ambiguous; pass physics='elasticity' or 'conductivity'")
    if physics not in ("elasticity", "conductivity"):
        raise InputError(f"physics must be 'elasticity' or 'conductivity', got {physics!r}")
    if physics == "elasticity" and n not in (3, 6):
        raise InputError(f"Mandel stiffnesses are 3 x 3 (2D) or 6 x 6 (3D), got {n} x {n}")
    if physics == "conductivity" and n not in (2, 3):
        raise InputError(f"conductivities are 2 x 2 or 3 x 3, got {n} x {n}")
    flat = t.reshape(-1, n, n)
    out = np.full(flat.shape[0], np.nan)
    ok = np.isfinite(flat).all(axis=(1, 2))
    if physics == "conductivity":
        ev = np.linalg.eigvalsh(0.5 * (flat[ok] + np.swapaxes(flat[ok], 1, 2)))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[ok] = np.where(ev[:, 0] > 0, ev[:, -1] / ev[:, 0] - 1.0, np.inf)
    else:
        for k in np.flatnonzero(ok):  # per row: one singular stiffness must not spoil the others
            try:
                rk, rg = _reuss_voigt_ratios(flat[k])
                out[k] = rk + (5.0 if n == 6 else 2.0) * rg - n
            except np.linalg.LinAlgError:
                out[k] = np.inf
    out = out.reshape(t.shape[:-2])
    if da is not None:
        lead = da.dims[:-2]
        return xr.DataArray(out, dims=lead, coords={c: v for c, v in da.coords.items() if set(v.dims) <= set(lead)},
                            name="anisotropy_index")
    return out


# --------------------------------------------------------------------------- bounds


def _dim(props: xr.Dataset, tname: str) -> int:
    if "dim" in props.attrs:
        return int(props.attrs["dim"])
    n = props.sizes["i"] if "i" in props[tname].dims else props[tname].shape[-1]
    return {6: 3, 3: 2}[n] if tname == "stiffness" else int(n)


def within_hashin_shtrikman(props: xr.Dataset, phases: PhaseSpec, rtol: float = HS_RTOL) -> xr.DataArray:
    r"""Whether each sample's isotropic projection lies inside its Hashin–Shtrikman bounds.

    The bounds of sample :math:`k` come from its measured ``phase_fraction`` and its
    materials (``phases`` resolved with the sample's parameters, as in
    :func:`~stochhom.homogenize_ensemble`). A sample is inside when

    .. math::
        m^- - \text{rtol}\,|m^-| \;\le\; m \;\le\; m^+ + \text{rtol}\,|m^+|

    for its isotropic projection: the bulk and shear moduli
    (:func:`~stochhom.tensors.isotropic_projection`; :math:`\kappa` in 2D) in
    elasticity, :math:`\operatorname{tr}k/d` in conductivity. The default
    ``rtol = 1e-9`` only absorbs round-off: a sample within the solver tolerance of a
    bound but outside it counts as outside. In conductivity, :math:`\operatorname{tr}k/d`
    of any two-phase composite, isotropic or not, lies inside the bounds (the trace
    bounds, by Jensen's inequality on the eigenvalues), so a sample outside signals a
    discretization or solver error. In elasticity the projections of small or
    anisotropic SVEs may legitimately scatter outside these bounds, which hold for
    statistically isotropic media.

    Returns
    -------
    xarray.DataArray
        ``float`` along ``sample``: 1.0 inside, 0.0 outside, NaN for failed samples.
    """
    props = _check_props(props)
    if "phase_fraction" not in props:
        raise InputError("the dataset has no 'phase_fraction' variable (sample, phase); it is needed for the bounds")
    if not rtol >= 0:
        raise InputError(f"rtol must be >= 0, got {rtol!r}")
    tname = _tensor_name(props)
    dim = _dim(props, tname)
    tensors = props[tname].transpose("sample", ...).values
    fractions = props["phase_fraction"].transpose("sample", ...).values
    ok = _converged(props) & np.isfinite(tensors).all(axis=(1, 2))
    if tname == "stiffness":
        bulk, shear = isotropic_projection(np.where(ok[:, None, None], tensors, 0.0))
        values = [bulk, shear]
    else:
        values = [np.trace(tensors, axis1=1, axis2=2) / dim]
    out = np.full(tensors.shape[0], np.nan)
    for k in np.flatnonzero(ok):
        mats = resolve_phases(phases, sample_parameters(props, k))
        n = len(mats)
        f = fractions[k]
        if np.any(f[n:] > 0):
            raise InputError(f"sample {k} holds phase labels >= {n} but only {n} phases are given")
        f = np.pad(f[:n], (0, max(0, n - f.size)))
        b = hashin_shtrikman(mats, f, dim)
        pairs = [b.bulk] if b.shear is None else [b.bulk, b.shear]
        inside = all(lo - rtol * abs(lo) <= v[k] <= hi + rtol * abs(hi) for (lo, hi), v in zip(pairs, values))
        out[k] = float(inside)
    return xr.DataArray(out, dims=("sample",), coords={"sample": props["sample"].values}, name="within_hs",
                        attrs={"rtol": rtol})


def fraction_within_hashin_shtrikman(
    props: xr.Dataset, phases: PhaseSpec, by: Sequence[str] | None = None, rtol: float = HS_RTOL
) -> xr.DataArray:
    """Fraction of the converged samples of each point inside their Hashin–Shtrikman bounds.

    See :func:`within_hashin_shtrikman` for the test and :func:`summarize` for ``by``.
    NaN at a point where every sample failed.

    Returns
    -------
    xarray.DataArray
        Along ``point``, with the grouping keys as coordinates.
    """
    props = _check_props(props)
    keys = default_by(props) if by is None else list(by)
    codes, coords = _group(props, keys)
    inside = within_hashin_shtrikman(props, phases, rtol).values
    frac = np.array([np.nanmean(inside[codes == p]) if np.isfinite(inside[codes == p]).any() else np.nan
                     for p in range(codes.max() + 1)])
    return xr.DataArray(frac, dims=("point",), coords=coords, name="within_hs", attrs={"rtol": rtol})


# --------------------------------------------------------------------------- grouping and statistics


def _group(props: xr.Dataset, keys: Sequence[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Point index of each sample and the coordinates of the points (sorted by key values)."""
    n = props.sizes["sample"]
    if not keys:
        return np.zeros(n, dtype=np.int64), {"point": ("point", [0])}
    cols = []
    for key in keys:
        _, inv = np.unique(_per_sample(props, key), return_inverse=True)
        cols.append(inv.reshape(-1))
    _, first, codes = np.unique(np.stack(cols, axis=1), axis=0, return_index=True, return_inverse=True)
    codes = codes.reshape(-1)
    coords: dict[str, Any] = {"point": ("point", np.arange(first.size))}
    for key in keys:
        coords[key] = ("point", _per_sample(props, key)[first])
    return codes, coords


def _bootstrap(x: np.ndarray, confidence: float, n_boot: int, rng: np.random.Generator, method: str) -> Any:
    kwargs: dict[str, Any] = dict(n_resamples=n_boot, confidence_level=confidence, method=method,
                                  vectorized=True, axis=-1)
    try:
        return st.bootstrap((x,), np.mean, rng=rng, **kwargs)
    except TypeError:  # scipy < 1.15 names it random_state
        return st.bootstrap((x,), np.mean, random_state=rng, **kwargs)


def cox_log_interval(values: Any, confidence: float = 0.95, axis: int = -1) -> tuple[Any, Any]:
    r"""Modified Cox interval of the arithmetic mean of positive values, made on the log scale.

    With :math:`y_k = \log x_k`, :math:`\bar y` and :math:`s^2` (``ddof = 1``) the mean and
    variance of the :math:`n` logs, the mean of a lognormal law is
    :math:`\mu = \exp(\theta)`, :math:`\theta = \mu_y + \sigma_y^2/2`, estimated by
    :math:`\hat\theta = \bar y + s^2/2` with variance
    :math:`\sigma_y^2/n + \sigma_y^4/(2(n-1))`. The interval (Olsson 2005, the "modified
    Cox method") is

    .. math::
        \exp\!\Big(\bar y + \frac{s^2}{2} \pm t_{1-\alpha/2,\,n-1}
        \sqrt{\frac{s^2}{n} + \frac{s^4}{2(n-1)}}\Big),

    which is positive by construction. Measured coverage of the nominal 95 % (200 000
    trials per cell, see ``docs/statistics.md``): 0.932–0.951 for lognormal data of
    log-sd 0.05–1 and 0.950–0.964 for positive normal data of coefficient of variation
    0.05–0.4, at :math:`n = 2, 3, 5, 10`; the Student-t interval on the raw values covers
    only 0.82–0.90 for log-sd 1. It under-covers for heavier tails (0.89–0.92 at log-sd 2).
    At :math:`n = 2` (:math:`t_{0.975,1} = 12.7`) and large scatter the upper end is very
    large: two values say little about the mean of a skewed law.

    Parameters
    ----------
    values : array_like
        Positive values; the sample runs along ``axis`` (at least 2 values), the other
        axes are independent samples.
    confidence : float
        Level, in (0, 1).
    axis : int
        Axis of the sample.

    Returns
    -------
    low, high : float or numpy.ndarray
        Bounds of the interval of the arithmetic mean, with ``axis`` removed; ``inf`` when
        the upper end overflows.

    Raises
    ------
    InputError
        A value that is not finite and positive, fewer than 2 values, ``confidence``
        outside (0, 1).

    References
    ----------
    U. Olsson, "Confidence intervals for the mean of a log-normal distribution",
    J. Stat. Educ. 13 (2005). C. E. Land, "An evaluation of approximate confidence interval
    estimation methods for lognormal means", Technometrics 14 (1972) 145–158 (Cox's method).
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    if x.ndim == 0 or x.shape[axis] < 2:
        raise InputError(f"cox_log_interval needs at least 2 values along axis {axis}, got shape {x.shape}")
    if not (np.isfinite(x).all() and (x > 0).all()):
        raise InputError("cox_log_interval needs finite positive values (the log scale); "
                         "use mean_confidence_interval, which falls back to t ∩ support")
    y = np.log(x)
    n = x.shape[axis]
    ybar, s2 = y.mean(axis=axis), y.var(axis=axis, ddof=1)
    half = st.t.ppf(0.5 + float(confidence) / 2, n - 1) * np.sqrt(s2 / n + s2**2 / (2 * (n - 1)))
    with np.errstate(over="ignore"):
        return np.exp(ybar + s2 / 2 - half), np.exp(ybar + s2 / 2 + half)


def mean_confidence_interval(
    values: Any,
    confidence: float = 0.95,
    n_boot: int = 2000,
    rng: np.random.Generator | int | None = None,
    method: str = "auto",
    *,
    support: tuple[float, float] = _WHOLE_LINE,
) -> tuple[float, float, str]:
    r"""Confidence interval of the mean of ``values``, inside the quantity's range ``support``.

    ``method="auto"`` (default):

    * below :data:`BOOTSTRAP_MIN_N` values, for a quantity bounded on one side only
      (``support = (0, inf)``: a modulus, an eigenvalue, the anisotropy index; see
      :func:`quantity_support`) whose values all lie strictly inside: the modified Cox
      interval of the arithmetic mean on the log scale of :math:`x - \text{low}` (or
      :math:`\text{high} - x`), :func:`cox_log_interval`,

      .. math::
          \text{low} + \exp\!\Big(\bar y + \frac{s^2}{2} \pm t_{1-\alpha/2,\,n-1}
          \sqrt{\frac{s^2}{n} + \frac{s^4}{2(n-1)}}\Big),\qquad y_k = \log(x_k - \text{low}),

      method ``"cox-log"``. It was chosen by simulation over the Student-t interval on
      the raw values (which covers only 0.82–0.90 for lognormal data of log-sd 1, and
      goes below zero), the generalized confidence interval of Krishnamoorthy & Mathew
      (2003; 0.915 for normal data of CV 0.4 at :math:`n = 2`) and the MOVER interval of
      Zou et al. (2009; far wider): see ``docs/statistics.md`` for the coverage table;
    * otherwise below :data:`BOOTSTRAP_MIN_N` values (a value on the bound, a two-sided
      range such as the :math:`[0, 1]` of a phase fraction, an unbounded quantity): the
      Student-t interval :math:`\bar x \pm t_{1-\alpha/2,\,n-1}\,s/\sqrt n` intersected
      with ``support``. The true mean lies in the support, so the intersection covers
      whenever the t-interval does: the coverage is unchanged. Method ``"t∩support"``
      when the cut changed the interval, ``"t"`` otherwise;
    * from :data:`BOOTSTRAP_MIN_N` values on: the BCa bootstrap, intersected with
      ``support`` (``"BCa∩support"`` when the cut changed it).

    ``method="t"``, ``"BCa"``, ``"percentile"`` or ``"basic"`` force that interval, still
    intersected with ``support``. ``scipy.stats.bootstrap`` gives the bootstrap intervals
    (BCa: bias-corrected and accelerated, second-order accurate); where BCa is undefined
    (its acceleration needs a non-degenerate jackknife) the percentile interval is used.
    Bootstrap intervals of a mean under-cover for few values (they use the variance with
    divisor :math:`n`, and the resampling distribution is coarse): for normal data the
    nominal 95 % covers 73 % at :math:`n = 3`, 87 % at :math:`n = 8`, hence Student-t or
    Cox below :data:`BOOTSTRAP_MIN_N`. Constant data give the zero-width interval
    ``(x, x)``; fewer than two finite values give NaN; values whose interval lies wholly
    outside ``support`` (the data contradict the stated range) give NaN.

    Parameters
    ----------
    values : array_like
        The sample; non-finite values are dropped.
    confidence : float
        Level, in (0, 1).
    n_boot : int
        Bootstrap resamples.
    rng : Generator, int or None
        Seeds the bootstrap.
    method : {"auto", "t", "BCa", "percentile", "basic"}
        See above.
    support : (float, float), keyword-only
        Closed range ``(low, high)`` of the quantity, ``-inf``/``inf`` where unbounded
        (:func:`quantity_support`). Default: the whole real line (no constraint).

    Returns
    -------
    low, high : float
    method : str
        What was done (:data:`CI_METHODS` describes each): ``"cox-log"``, ``"t"``,
        ``"t∩support"``, ``"BCa"``, ``"percentile"``, ``"basic"`` (each bootstrap one
        with ``"∩support"`` when cut), ``"degenerate"`` (constant data), ``"none"``
        (fewer than 2 values) or ``"outside-support"``.

    Raises
    ------
    InputError
        ``confidence`` outside (0, 1), ``n_boot < 1``, an unknown ``method``, or a
        ``support`` that is not an ordered pair of numbers.

    References
    ----------
    U. Olsson, "Confidence intervals for the mean of a log-normal distribution",
    J. Stat. Educ. 13 (2005). K. Krishnamoorthy, T. Mathew, "Inferences on the means of
    lognormal distributions using generalized p-values and generalized confidence
    intervals", J. Stat. Plan. Inference 115 (2003) 103–121. G. Y. Zou, C. Y. Huo,
    J. Taleban, "Simple confidence intervals for lognormal means and their differences
    with environmental applications", Environmetrics 20 (2009) 172–180. B. Efron,
    R. Tibshirani, An Introduction to the Bootstrap (1993), ch. 14.
    """
    _check_confidence(confidence)
    _check_bootstrap(n_boot, method)
    low, high = _check_support(support)
    x = np.asarray(values, dtype=float).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return np.nan, np.nan, "none"
    if np.all(x == x[0]):
        return _cut(float(x[0]), float(x[0]), "degenerate", low, high)
    small = method == "auto" and x.size < BOOTSTRAP_MIN_N
    one_sided = np.isfinite(low) != np.isfinite(high)
    if small and one_sided and (np.all(x > low) if np.isfinite(low) else np.all(x < high)):
        if np.isfinite(low):
            lo, hi = cox_log_interval(x - low, confidence)
            return low + float(lo), low + float(hi), "cox-log"
        lo, hi = cox_log_interval(high - x, confidence)
        return high - float(hi), high - float(lo), "cox-log"
    if method == "t" or small:
        half = float(st.t.ppf(0.5 + float(confidence) / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
        return _cut(float(x.mean()) - half, float(x.mean()) + half, "t", low, high)
    if method == "auto":
        method = "BCa"
    gen = np.random.default_rng(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", st.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = _bootstrap(x, confidence, n_boot, gen, method).confidence_interval
        if method == "BCa" and not (np.isfinite(ci.low) and np.isfinite(ci.high)):
            method = "percentile"
            ci = _bootstrap(x, confidence, n_boot, gen, method).confidence_interval
    return _cut(float(ci.low), float(ci.high), method, low, high)


def _cut(lo: float, hi: float, method: str, low: float, high: float) -> tuple[float, float, str]:
    """``[lo, hi] ∩ [low, high]``, with the method string saying whether the cut changed it."""
    a = lo if lo > low else low  # not max(): max(-0.0, 0.0) is -0.0, printed "-0"
    b = hi if hi < high else high
    if a > b:
        return np.nan, np.nan, "outside-support"
    if (a, b) != (lo, hi) and method != "degenerate":
        method += "∩support"
    return a, b, method


def _check_support(support: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in support)
    except (TypeError, ValueError):
        raise InputError(f"support must be a pair (low, high) such as (0, inf), got {support!r}") from None
    if not low < high:  # also rejects NaN
        raise InputError(f"support must satisfy low < high, e.g. (0, inf) or (0, 1), got {support!r}")
    return low, high


def _check_bootstrap(n_boot: Any, method: Any) -> None:
    if isinstance(n_boot, (bool, np.bool_)) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InputError(f"n_boot must be a positive integer (e.g. 2000), got {n_boot!r}")
    if method not in ("auto", "t", "BCa", "percentile", "basic"):
        raise InputError(f"method must be 'BCa', 'percentile' or 'basic', got {method!r}")


def _check_confidence(confidence: float) -> None:
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        raise InputError(f"confidence must be a number in (0, 1), got {confidence!r}") from None
    if not 0.0 < c < 1.0:
        raise InputError(f"confidence must lie in (0, 1) (e.g. 0.95), got {confidence!r}")


def summarize(
    props: xr.Dataset,
    by: Sequence[str] | str | None = None,
    variables: Sequence[str] | str | None = None,
    confidence: float = 0.95,
    n_boot: int = 2000,
    rng: np.random.Generator | int | None = None,
    phases: PhaseSpec | None = None,
    *,
    method: str = "auto",
    rtol: float = HS_RTOL,
) -> xr.Dataset:
    r"""Per-point statistics of the apparent properties.

    For each point (distinct combination of the ``by`` values) and each scalar
    quantity :math:`Z`, over the :math:`n` converged samples with a finite value:

    .. math::
        \bar Z = \frac1n\sum_k Z_k,\qquad
        s^2 = \frac{1}{n-1}\sum_k (Z_k-\bar Z)^2,\qquad
        \mathrm{sem} = s/\sqrt n,

    and a confidence interval of :math:`\bar Z` that stays inside the range of
    :math:`Z` (:func:`quantity_support` with the dataset's physics;
    :func:`mean_confidence_interval`): for fewer than :data:`BOOTSTRAP_MIN_N` samples,
    the modified Cox interval on the log scale for a positive quantity (a modulus, an
    eigenvalue, the anisotropy index) and Student-t cut to the range otherwise; the
    bootstrap, cut to the range, from there on. ``ci_method`` says which, per cell.

    Parameters
    ----------
    props : xarray.Dataset
        Apparent properties (:func:`~stochhom.homogenize_ensemble`, a sweep).
    by : str or sequence of str, optional
        Per-sample coordinates or variables that define a point. Default
        (:func:`default_by`): every per-sample coordinate except ``sample``,
        ``seed``, ``specimen``, ``parent_sample``, ``replicate``, and ``volume`` when it varies.
        ``[]`` pools all samples into one point.
    variables : str or sequence of str, optional
        Scalar quantities (:func:`scalar_columns`). Default: ``bulk_modulus``,
        ``shear_modulus`` and ``anisotropy_index`` in elasticity;
        ``conductivity_eigenvalues_*`` and ``anisotropy_index`` in conductivity;
        otherwise every float per-sample variable except the diagnostics.
    confidence : float
        Level of the intervals, in (0, 1).
    n_boot : int
        Bootstrap resamples per interval.
    rng : Generator, int or None
        Seeds the bootstrap (the whole summary is reproducible for a fixed ``rng``).
    phases : phase specification, optional
        The materials (as for :func:`~stochhom.homogenize_ensemble`). When given, the
        fraction of samples inside their Hashin–Shtrikman bounds is reported
        (:func:`within_hashin_shtrikman`, relative tolerance ``rtol``).
    method : {"auto", "t", "BCa", "percentile", "basic"}
        Interval of the mean (:func:`mean_confidence_interval`): ``"auto"`` is the
        modified Cox interval (positive quantities) or Student-t below
        :data:`BOOTSTRAP_MIN_N` samples per point and BCa bootstrap from there on;
        every interval is intersected with the quantity's range.

    Returns
    -------
    xarray.Dataset
        Dims ``point`` and ``variable``; the ``by`` values are coordinates along
        ``point``. Variables ``count`` (int), ``mean``, ``std``, ``sem``, ``ci_low``,
        ``ci_high``, ``ci_method`` (``point, variable``; the method strings are
        explained in :data:`CI_METHODS`); ``n_samples`` and ``n_failed``
        (``point``); ``within_hs`` (``point``, if ``phases``). Coordinates
        ``support_low`` and ``support_high`` along ``variable`` give the range each
        interval was kept in (:func:`quantity_support`). A point whose samples all
        failed has count 0 and NaN statistics.

    Raises
    ------
    InputError
        Empty dataset, unknown grouping key or variable, ``confidence`` outside (0, 1),
        ``n_boot < 1``, unknown ``method``.
    """
    props = _check_props(props)
    _check_confidence(confidence)
    _check_bootstrap(n_boot, method)
    keys = default_by(props) if by is None else ([by] if isinstance(by, str) else list(by))
    names = _default_variables(props) if variables is None else variables
    cols = scalar_columns(props, names)
    codes, coords = _group(props, keys)
    n_points = int(codes.max()) + 1
    conv = _converged(props)
    gen = np.random.default_rng(rng)
    physics = _physics(props)
    supports = [quantity_support(name, physics) for name in cols]
    shape = (n_points, len(cols))
    stats = {k: np.full(shape, np.nan) for k in ("mean", "std", "sem", "ci_low", "ci_high")}
    count = np.zeros(shape, dtype=np.int64)
    used = np.full(shape, "none", dtype=object)
    for p in range(n_points):
        in_point = codes == p
        for v, x in enumerate(cols.values()):
            x = x[in_point & conv]
            x = x[np.isfinite(x)]
            count[p, v] = x.size
            if x.size == 0:
                continue
            stats["mean"][p, v] = x.mean()
            if x.size >= 2:
                stats["std"][p, v] = x.std(ddof=1)
                stats["sem"][p, v] = stats["std"][p, v] / np.sqrt(x.size)
            lo, hi, used[p, v] = mean_confidence_interval(x, confidence, int(n_boot), gen, method,
                                                          support=supports[v])
            stats["ci_low"][p, v], stats["ci_high"][p, v] = lo, hi
    dims = ("point", "variable")
    data: dict[str, Any] = {"count": (dims, count), **{k: (dims, a) for k, a in stats.items()}}
    data["ci_method"] = (dims, used.astype(str))
    data["n_samples"] = (("point",), np.bincount(codes, minlength=n_points))
    data["n_failed"] = (("point",), np.bincount(codes, weights=~conv, minlength=n_points).astype(np.int64))
    out = xr.Dataset(data, coords={**coords, "variable": ("variable", list(cols)),
                                   "support_low": ("variable", [lo for lo, _ in supports]),
                                   "support_high": ("variable", [hi for _, hi in supports])})
    if phases is not None:
        frac = fraction_within_hashin_shtrikman(props, phases, keys, rtol)
        out["within_hs"] = (("point",), frac.values, frac.attrs)
    out.attrs.update(confidence=float(confidence), n_boot=int(n_boot), ci="bootstrap " + method,
                     by=json.dumps(keys), hs_rtol=rtol)
    return out
