r"""Figures of a study report (matplotlib), in one consistent style.

Every function returns a ``matplotlib.figure.Figure`` built without ``pyplot`` (no
global state, no display), drawn inside ``matplotlib.rc_context(STYLE)``:

* :func:`gallery_figure`: label images of a few SVEs (the middle ``z`` slice of 3D ones);
* :func:`s2_figure`: the radially averaged two-point probability :math:`S_2(r)`
  against its closed form where the generator has one (:func:`s2_theory`);
* :func:`properties_figure`: apparent properties against each swept parameter, the
  samples and the mean with its confidence interval per point, with the Voigt/Reuss
  and Hashin–Shtrikman bounds of each sample (:func:`sample_bounds`);
* :func:`rve_figure`: the variance scaling :math:`D_Z^2(V) = K V^{-\alpha}` of an
  RVE-size study, with the fitted exponent and integral range;
* :func:`propagation_figure`: densities of propagated outputs, one per surrogate;
* :func:`sobol_figure`: first-order and total Sobol indices with their intervals;
* :func:`parity_figure`, :func:`calibration_figure`, :func:`leakage_figure`,
  :func:`degradation_figure`: the figures of :mod:`stochhom.validation.plots` in the
  report's style, from the tables of a results directory.

Lengths are in the unit of the voxel size, moduli and conductivities in the unit of
the phase laws: the axes say so.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy import stats

from ..bounds import hashin_shtrikman, reuss, voigt
from ..errors import InputError, MaterialError, StochhomError
from ..microstructure.descriptors import radial_average, two_point_probability
from ..microstructure.inclusions import ball_volume
from ..microstructure.random_fields import correlation
from ..statistics.ensemble import sample_parameters
from ..statistics.phases import PhaseSpec, resolve_phases
from ..statistics.summary import IDENTIFIERS, default_by, summarize
from ..tensors import isotropic_projection
from ..validation import plots

__all__ = [
    "STYLE",
    "PARAMETER_LABELS",
    "axis_label",
    "plain",
    "gallery_figure",
    "s2_theory",
    "s2_figure",
    "property_columns",
    "swept_parameters",
    "sample_bounds",
    "properties_figure",
    "rve_figure",
    "propagation_figure",
    "sobol_figure",
    "parity_figure",
    "calibration_figure",
    "leakage_figure",
    "degradation_figure",
]

#: The report's matplotlib style, applied with ``matplotlib.rc_context``.
STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]),
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "image.cmap": "viridis",
}

#: Axis labels (with units) of common parameters; others are shown by name.
PARAMETER_LABELS: dict[str, str] = {
    "volume_fraction": "volume fraction φ [–]",
    "correlation_length": "correlation length ℓ [length]",
    "radius": "radius R [length]",
    "radius_std": "radius standard deviation [length]",
    "contrast": "phase contrast [–]",
    "size": "SVE edge length [voxels]",
    "volume": "SVE volume [length^d]",
    "aspect_ratio": "aspect ratio [–]",
    "nu": "Matérn smoothness ν [–]",
}

#: Labels of the plotted properties, by (name, dim); "phase units" are the units of the phase laws.
_PROPERTY_LABELS = {
    ("bulk_modulus", 3): "bulk modulus K [phase units]",
    ("bulk_modulus", 2): "plane-strain bulk modulus κ [phase units]",
    ("shear_modulus", 3): "shear modulus G [phase units]",
    ("shear_modulus", 2): "shear modulus G [phase units]",
    ("mean_conductivity", 3): "mean conductivity tr k / 3 [phase units]",
    ("mean_conductivity", 2): "mean conductivity tr k / 2 [phase units]",
}

_HS = {"color": "#2ca02c", "label": "Hashin–Shtrikman"}
_VR = {"color": "0.55", "label": "Voigt / Reuss"}


def styled(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` inside ``matplotlib.rc_context(STYLE)`` (figures are styled when built)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with mpl.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def _grid(n: int, ncols: int = 3, panel: tuple[float, float] = (3.6, 3.0)) -> tuple[Figure, list[Any]]:
    """A figure with ``n`` panels on at most ``ncols`` columns (unused panels removed)."""
    n = max(int(n), 1)
    cols = min(n, ncols)
    rows = -(-n // cols)
    fig = Figure(figsize=(panel[0] * cols, panel[1] * rows), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def plain(text: Any) -> str:
    """A user string for matplotlib, shown as typed (``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def axis_label(name: str, dim: int | None = None) -> str:
    """Axis label with units of a parameter or property name (the name itself if unknown)."""
    if dim is not None and (name, dim) in _PROPERTY_LABELS:
        return _PROPERTY_LABELS[(name, dim)]
    return PARAMETER_LABELS.get(name, plain(name).replace("_", " "))


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else plain(v)


# --------------------------------------------------------------------------- microstructure


def _ensemble(ens: xr.Dataset) -> xr.Dataset:
    if not isinstance(ens, xr.Dataset) or "phase" not in ens:
        raise InputError("expected a microstructure ensemble Dataset with a 'phase' variable")
    return ens if "sample" in ens["phase"].dims else ens.expand_dims("sample")


def _parameters(ens: xr.Dataset, k: int) -> dict[str, Any]:
    """Generator parameters of sample ``k``: the ensemble's ``parameters`` attr, then its coordinates."""
    params: dict[str, Any] = {}
    try:
        params.update(json.loads(ens.attrs.get("parameters", "{}") or "{}"))
    except (TypeError, ValueError):
        pass
    params.update({k_: v for k_, v in sample_parameters(ens, k).items() if k_ not in IDENTIFIERS})
    return params


@styled
def gallery_figure(ensemble: xr.Dataset, max_samples: int = 6) -> Figure:
    """Label images of the first ``max_samples`` samples (the middle ``z`` slice in 3D).

    Parameters
    ----------
    ensemble : xarray.Dataset
        A microstructure ensemble (variable ``phase``, dims ``sample, x, y[, z]``).
    max_samples : int
        Samples shown.
    """
    ens = _ensemble(ensemble)
    phase = ens["phase"].transpose("sample", ...)
    n = min(int(max_samples), phase.sizes["sample"])
    dim = phase.ndim - 1
    top = int(phase.max())
    fig, axes = _grid(n, ncols=3, panel=(3.0, 3.0))
    h = float(ens.attrs.get("voxel_size", 1.0))
    im = None
    for k, ax in enumerate(axes):
        img = phase.isel(sample=k).values
        if dim == 3:
            img = img[:, :, img.shape[2] // 2]
        nx, ny = img.shape
        im = ax.imshow(img.T, origin="lower", extent=(0, nx * h, 0, ny * h), cmap="viridis",
                       vmin=-0.5, vmax=top + 0.5, interpolation="nearest")
        ax.grid(False)
        params = _parameters(ens, k)
        swept = {p: v for p, v in params.items() if p in ens.coords and np.unique(ens[p].values).size > 1}
        title = f"sample {ens['sample'].values[k]}" + "".join(f", {plain(p)} = {_fmt(v)}" for p, v in swept.items())
        ax.set_title(title + (" (middle z slice)" if dim == 3 else ""))
        ax.set_xlabel("x [length]")
        ax.set_ylabel("y [length]")
    if im is not None:
        bar = fig.colorbar(im, ax=axes, shrink=0.8, ticks=range(top + 1))
        bar.set_label("phase label")
    return fig


def _phi2_equal(alpha: float, rho: np.ndarray) -> np.ndarray:
    r"""Bivariate normal :math:`\Phi_2(\alpha, \alpha; \rho)` by Plackett's identity.

    :math:`\Phi_2 = \Phi(\alpha)^2 + \frac{1}{2\pi}\int_0^{\arcsin\rho}
    \exp\!\big(-\alpha^2/(1 + \sin\theta)\big)\,d\theta`, by 64-point Gauss–Legendre.
    """
    rho = np.clip(np.asarray(rho, dtype=float), -1.0, 1.0)
    x, w = np.polynomial.legendre.leggauss(64)
    top = np.arcsin(rho)[..., None]
    theta = 0.5 * top * (x + 1.0)
    integral = 0.5 * top[..., 0] * np.sum(w * np.exp(-(alpha**2) / (1.0 + np.sin(theta))), axis=-1)
    return stats.norm.cdf(alpha) ** 2 + integral / (2.0 * np.pi)


def _lens(r: np.ndarray, radius: float, dim: int) -> np.ndarray:
    """Volume (area) shared by two balls (disks) of radius ``radius`` whose centres are ``r`` apart."""
    r = np.minimum(np.abs(np.asarray(r, dtype=float)), 2.0 * radius)
    if dim == 2:
        return 2 * radius**2 * np.arccos(r / (2 * radius)) - 0.5 * r * np.sqrt(4 * radius**2 - r**2)
    return 4.0 / 3.0 * np.pi * radius**3 * (1 - 3 * r / (4 * radius) + r**3 / (16 * radius**3))


def s2_theory(generator: str, params: Mapping[str, Any], r: Any, dim: int, phase: int = 1) -> np.ndarray | None:
    r"""Closed-form two-point probability :math:`S_2(r)` of ``phase``, or None when there is none.

    * ``"gaussian"`` (isotropic level cut, one correlation length, no rotation):
      :math:`S_2(r) = \Phi_2(\alpha, \alpha; \rho(r/\ell))` with
      :math:`\alpha = \Phi^{-1}(\varphi)` (Torquato 2002, ch. 2);
    * ``"boolean"`` (monodisperse balls, phase 1): with :math:`q = 1 - \varphi`, the
      intensity :math:`\lambda = -\ln q / |B_R|` and :math:`K(r)` the volume shared by
      two balls at distance :math:`r`,
      :math:`S_2(r) = 1 - 2q + q^2 e^{\lambda K(r)}` (Torquato 2002, ch. 3).

    The periodic images of the cell are neglected (lags up to half the box).

    Parameters
    ----------
    generator : str
        Generator name.
    params : mapping
        Its parameters.
    r : array_like
        Distances, in the unit of the parameters' lengths.
    dim : {2, 3}
    phase : int
        Phase label.
    """
    r = np.asarray(r, dtype=float)
    phi = params.get("volume_fraction")
    if phase != 1 or np.ndim(phi) != 0 or phi is None:
        return None
    phi = float(phi)
    if generator == "gaussian":
        ell = params.get("correlation_length", 1.0)
        if np.ndim(ell) != 0 or params.get("angles") is not None:
            return None
        rho = correlation(r / float(ell), params.get("model", "gaussian"), params.get("nu"))
        return _phi2_equal(float(stats.norm.ppf(phi)), rho)
    if generator == "boolean":
        if float(params.get("radius_std", 0.0) or 0.0) != 0.0:
            return None
        radius = float(params.get("radius", 5.0))
        q = 1.0 - phi
        lam = -np.log(q) / float(ball_volume(radius, dim))
        return 1.0 - 2.0 * q + q**2 * np.exp(lam * _lens(r, radius, dim))
    return None


@styled
def s2_figure(ensemble: xr.Dataset, phase: int = 1) -> Figure:
    """Radial :math:`S_2(r)` of ``phase`` per parameter group: the ensemble mean and the
    closed form of :func:`s2_theory` where the generator has one (dashed)."""
    ens = _ensemble(ensemble)
    dim = ens["phase"].ndim - 1
    generator = str(ens.attrs.get("generator", ""))
    s2 = radial_average(two_point_probability(ens, phase))
    groups: dict[str, list[int]] = {}
    for k in range(ens.sizes["sample"]):
        groups.setdefault(json.dumps(_parameters(ens, k), sort_keys=True, default=str), []).append(k)
    fig = Figure(figsize=(5.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    r = s2["r"].values
    fine = np.linspace(0.0, r.max(), 200)
    any_theory = False
    for (key, members), color in zip(groups.items(), mpl.rcParams["axes.prop_cycle"].by_key()["color"] * 10):
        params = json.loads(key)
        varying = {p: v for p, v in params.items() if p in ens.coords and np.unique(ens[p].values).size > 1}
        tag = ", ".join(f"{plain(p)} = {_fmt(v)}" for p, v in varying.items())
        mean = s2.isel(sample=members).mean("sample").values
        ax.plot(r, mean, "o", color=color, label=f"measured ({len(members)} samples){', ' + tag if tag else ''}")
        theory = s2_theory(generator, params, fine, dim, phase)
        if theory is not None:
            any_theory = True
            ax.plot(fine, theory, "--", color=color, label="theory" + (f", {tag}" if tag else ""))
    phi = float((ens["phase"].values == phase).mean())
    ax.axhline(phi**2, color="k", lw=0.8, ls=":", label="φ² (long-range limit)")
    ax.set_xlabel("distance r [length]")
    ax.set_ylabel(f"two-point probability S₂(r) of phase {phase} [–]")
    if not any_theory:
        ax.set_title(f"no closed-form S₂ for generator {plain(repr(generator))}")
    ax.legend()
    return fig


# --------------------------------------------------------------------------- apparent properties


def _dim(props: xr.Dataset) -> int:
    if "dim" in props.attrs:
        return int(props.attrs["dim"])
    if "stiffness" in props:
        return {6: 3, 3: 2}[props.sizes["i"]]
    return int(props.sizes["i"])


def property_columns(props: xr.Dataset) -> dict[str, np.ndarray]:
    r"""The scalar properties plotted against the parameters, per sample.

    Elasticity: ``bulk_modulus`` and ``shear_modulus`` (the isotropic projections; in
    2D the plane-strain :math:`\kappa`). Conductivity: ``mean_conductivity``
    :math:`\operatorname{tr}k/d`. NaN for failed samples.
    """
    if "stiffness" in props:
        return {"bulk_modulus": props["bulk_modulus"].values.astype(float),
                "shear_modulus": props["shear_modulus"].values.astype(float)}
    if "conductivity" in props:
        k = props["conductivity"].transpose("sample", ...).values.astype(float)
        return {"mean_conductivity": np.trace(k, axis1=1, axis2=2) / k.shape[-1]}
    raise InputError("the dataset holds neither a 'stiffness' nor a 'conductivity' variable")


def swept_parameters(props: xr.Dataset) -> list[str]:
    """Per-sample parameters that take more than one value (``point`` only if there are none)."""
    keys = [k for k in default_by(props) if k != "point"
            and np.unique(props[k].values).size > 1 and props[k].dtype.kind in "biuf"]
    return keys or (["point"] if "point" in props.coords else [])


def sample_bounds(props: xr.Dataset, phases: PhaseSpec) -> dict[str, dict[str, np.ndarray]]:
    r"""Voigt/Reuss and Hashin–Shtrikman bounds of each sample's plotted properties.

    The bounds of sample :math:`k` use its measured ``phase_fraction`` and its phases
    (``phases`` resolved with the sample's parameters,
    :func:`~stochhom.statistics.resolve_phases`):

    * Voigt/Reuss: the isotropic projection (:func:`~stochhom.tensors.isotropic_projection`;
      :math:`\operatorname{tr}/d` for conductivity) of :func:`~stochhom.bounds.voigt` and
      :func:`~stochhom.bounds.reuss`. The projection is a positive linear map, so the
      order :math:`\mathbb C_R \preceq \mathbb C^* \preceq \mathbb C_V` carries over to the
      projected moduli;
    * Hashin–Shtrikman: :func:`~stochhom.bounds.hashin_shtrikman` (NaN for anisotropic phases).

    Returns
    -------
    dict
        ``{property: {"voigt", "reuss", "hs_lower", "hs_upper": array (n_samples,)}}``
        for the properties of :func:`property_columns`; NaN where a sample has no phase
        fractions or its phases cannot be resolved.
    """
    if "phase_fraction" not in props:
        raise InputError("the dataset has no 'phase_fraction' variable (sample, phase); it is needed for the bounds")
    names = list(property_columns(props))
    dim = _dim(props)
    fractions = props["phase_fraction"].transpose("sample", ...).values.astype(float)
    n = fractions.shape[0]
    out = {name: {b: np.full(n, np.nan) for b in ("voigt", "reuss", "hs_lower", "hs_upper")} for name in names}
    cache: dict[str, Any] = {}
    for k in range(n):
        params = sample_parameters(props, k)
        key = json.dumps({p: v for p, v in params.items() if p not in IDENTIFIERS}, sort_keys=True, default=str)
        if key not in cache:
            try:
                cache[key] = resolve_phases(phases, params)
            except StochhomError:
                cache[key] = None
        mats = cache[key]
        f = fractions[k]
        if mats is None or not np.all(np.isfinite(f)):
            continue
        m = len(mats)
        if np.any(f[m:] > 0):
            raise InputError(f"sample {k} holds phase labels >= {m} but only {m} phases are given")
        f = np.pad(f[:m], (0, max(0, m - f.size)))
        v, r = voigt(mats, f, dim), reuss(mats, f, dim)
        if names == ["mean_conductivity"]:
            out["mean_conductivity"]["voigt"][k] = np.trace(v) / dim
            out["mean_conductivity"]["reuss"][k] = np.trace(r) / dim
        else:
            for name, vv, rr in zip(names, isotropic_projection(v), isotropic_projection(r)):
                out[name]["voigt"][k], out[name]["reuss"][k] = vv, rr
        try:
            hs = hashin_shtrikman(mats, f, dim)
        except MaterialError:
            continue
        for name, pair in zip(names, [hs.bulk] if hs.shear is None else [hs.bulk, hs.shear]):
            out[name]["hs_lower"][k], out[name]["hs_upper"][k] = pair
    return out


@styled
def properties_figure(
    props: xr.Dataset,
    phases: PhaseSpec | None = None,
    parameters: Sequence[str] | None = None,
    summary: xr.Dataset | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Apparent properties against each swept parameter, with their bounds.

    One panel per property (rows, :func:`property_columns`) and swept parameter
    (columns, :func:`swept_parameters`): the converged samples (dots), the mean of each
    point with its ``confidence`` interval (:func:`~stochhom.statistics.summarize`,
    black), and, when ``phases`` is given, each sample's Voigt/Reuss (grey) and
    Hashin–Shtrikman (green) bounds (:func:`sample_bounds`). The bound markers carry the
    ``gid`` ``"<bound>:<property>"`` (e.g. ``"hs_upper:bulk_modulus"``).
    """
    cols = property_columns(props)
    params = list(parameters) if parameters is not None else swept_parameters(props)
    if not params:
        params = ["sample"]
    conv = props["converged"].values.astype(bool) if "converged" in props else np.ones(props.sizes["sample"], bool)
    bounds = sample_bounds(props, phases) if phases is not None else None
    if summary is None:
        summary = summarize(props.assign({c: ("sample", v) for c, v in cols.items()}),
                            variables=list(cols), confidence=confidence, rng=0)
    dim = _dim(props)
    fig = Figure(figsize=(4.0 * len(params), 3.4 * len(cols)), layout="constrained")
    axes = fig.subplots(len(cols), len(params), squeeze=False)
    for i, (name, values) in enumerate(cols.items()):
        for j, p in enumerate(params):
            ax = axes[i, j]
            x = props[p].values.astype(float)
            ax.plot(x[conv], values[conv], "o", alpha=0.6, ms=4, label="samples", zorder=2)
            if bounds is not None:
                b = bounds[name]
                for key, style, marker in (("hs_lower", _HS, "_"), ("hs_upper", _HS, "_"),
                                           ("reuss", _VR, "_"), ("voigt", _VR, "_")):
                    ok = np.isfinite(b[key])
                    if ok.any():
                        label = style["label"] if key in ("hs_lower", "reuss") else "_nolegend_"
                        ax.plot(x[ok], b[key][ok], marker, color=style["color"], ms=10, mew=1.0, alpha=0.7,
                                label=label, gid=f"{key}:{name}", zorder=1)
            if p in summary.coords and name in summary["variable"].values:
                s = summary.sel(variable=name)
                xm = s[p].values.astype(float)
                mean, lo, hi = s["mean"].values, s["ci_low"].values, s["ci_high"].values
                err = np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
                err = np.where(np.isfinite(err), err, 0.0)
                ax.errorbar(xm, mean, yerr=err, fmt="s", color="k", ms=4, capsize=3, zorder=3,
                            label=f"mean ± {confidence:.0%} CI per point", gid=f"mean:{name}")
            ax.set_xlabel(axis_label(p))
            ax.set_ylabel(axis_label(name, dim))
            _log_if_wide(ax, x, "x")
            if _log_if_wide(ax, values[conv], "y"):  # limits from the data, not from CIs reaching below 0
                shown = np.concatenate([values[conv], *([] if bounds is None else bounds[name].values())])
                shown = shown[np.isfinite(shown) & (shown > 0)]
                ax.set_ylim(shown.min() / 1.5, shown.max() * 1.5)
            if i == 0 and j == 0:
                ax.legend(loc="best")
    return fig


def _log_if_wide(ax: Any, values: np.ndarray, axis: str) -> bool:
    """A logarithmic axis for positive values that span a decade or more (contrasts, sizes)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    wide = bool(v.size and v.min() > 0 and v.max() / v.min() >= 10)
    if wide:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    return wide


# --------------------------------------------------------------------------- RVE size


def _ci_text(value: Any, ci: Any) -> str:
    if value is None or not np.isfinite(float(value)):
        return "n/a"
    text = f"{float(value):.3g}"
    if ci is not None and len(ci) == 2 and all(c is not None and np.isfinite(float(c)) for c in ci):
        text += f" [{float(ci[0]):.3g}, {float(ci[1]):.3g}]"
    return text


@styled
def rve_figure(rve: Mapping[str, Mapping[str, Any]]) -> Figure:
    r"""Variance of the apparent property against the SVE volume, log-log, per target.

    Points: the sample variances :math:`D_Z^2(V)` (with their counts); line: the fit
    :math:`K V^{-\alpha}`; the legend gives :math:`\alpha` and the integral range
    :math:`A` with their intervals (``rve.json`` entries, see
    :class:`~stochhom.statistics.rve.VarianceScaling`).
    """
    if not rve:
        raise InputError("no RVE results to plot")
    fig, axes = _grid(len(rve), ncols=3, panel=(4.0, 3.4))
    for ax, (target, fit) in zip(axes, rve.items()):
        v = np.asarray(fit["volumes"], dtype=float)
        var = np.asarray(fit["variances"], dtype=float)
        ax.loglog(v, var, "o", label="sample variance")
        for vi, di, c in zip(v, var, fit.get("counts", [])):
            ax.annotate(f"n={int(c)}", (vi, di), textcoords="offset points", xytext=(4, 4), fontsize=7)
        vv = np.geomspace(v.min(), v.max(), 50)
        alpha, amplitude = float(fit["alpha"]), float(fit["amplitude"])
        ax.loglog(vv, amplitude * vv ** (-alpha), "-",
                  label=f"fit K V^(−α), α = {_ci_text(alpha, fit.get('alpha_ci'))}", gid=f"fit:{target}")
        a_text = _ci_text(fit.get("integral_range"), fit.get("integral_range_ci"))
        ax.plot([], [], " ", label=f"integral range A = {a_text}")
        if "chi2" in fit and fit["chi2"] is not None:
            ax.plot([], [], " ", label=f"χ² = {float(fit['chi2']):.3g}")
        ax.set_title(plain(target))
        ax.set_xlabel("SVE volume V [length^d]")
        ax.set_ylabel(f"variance D²(V) of {plain(target)}")
        ax.legend(loc="upper right")  # the variance decreases: the upper-right corner is free
    return fig


# --------------------------------------------------------------------------- propagation and sensitivity


@styled
def propagation_figure(samples: Mapping[str, Any], target: str, unit: str = "") -> Figure:
    """Density of a propagated output, one histogram and kernel density estimate per model."""
    if not samples:
        raise InputError(f"no propagated samples of {target!r} to plot")
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for (model, y), color in zip(samples.items(), colors * 10):
        y = np.asarray(y, dtype=float).reshape(-1)
        y = y[np.isfinite(y)]
        if y.size == 0:
            continue
        ax.hist(y, bins=40, density=True, histtype="stepfilled", alpha=0.25, color=color)
        if y.size > 2 and np.ptp(y) > 0:
            lo, hi = np.percentile(y, [0.1, 99.9])
            grid = np.linspace(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), 256)
            ax.plot(grid, stats.gaussian_kde(y)(grid), color=color, label=f"{plain(model)} (KDE)")
        ax.axvline(y.mean(), color=color, ls="--", lw=1, label=f"{plain(model)} mean = {y.mean():.4g}")
    u = f" [{plain(unit)}]" if unit else ""
    ax.set_xlabel(f"{plain(target)}{u}")
    ax.set_ylabel(f"probability density [1/{plain(unit)}]" if unit else "probability density [1 / unit of x]")
    ax.legend()
    return fig


@styled
def sobol_figure(indices: Mapping[str, Mapping[str, Any]], target: str) -> Figure:
    """First-order and total Sobol indices per input, with intervals, one bar group per model."""
    if not indices:
        raise InputError(f"no Sobol indices of {target!r} to plot")
    names = list(next(iter(indices.values()))["names"])
    fig = Figure(figsize=(max(4.5, 1.4 * len(names) * len(indices)), 3.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(names))
    bars = 2 * len(indices)
    width = 0.8 / bars
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for m, ((model, ind), color) in enumerate(zip(indices.items(), colors * 10)):
        for s, (kind, hatch) in enumerate((("first", ""), ("total", "//"))):
            v = np.asarray(ind[kind], dtype=float).reshape(-1)
            err = None
            if ind.get(f"{kind}_ci") is not None:
                lo, hi = (np.asarray(c, dtype=float).reshape(-1) for c in ind[f"{kind}_ci"])
                err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
            offset = (2 * m + s - (bars - 1) / 2) * width
            ax.bar(x + offset, v, width, yerr=err, capsize=2, color=color, alpha=0.5 if s else 0.9, hatch=hatch,
                   edgecolor=color, label=f"{plain(model)}: {'first order' if s == 0 else 'total'}")
    ax.set_xticks(x, [plain(n) for n in names])
    ax.set_xlabel("input parameter")
    ax.set_ylabel(f"Sobol index of {plain(target)} [–]")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.legend()
    return fig


# --------------------------------------------------------------------------- validation (validation.plots, styled)


def _title(fig: Figure, text: str) -> Figure:
    fig.axes[0].set_title(text)
    return fig


@styled
def parity_figure(predictions: pd.DataFrame, model: str, target: str, unit: str = "") -> Figure:
    """Out-of-fold predictions against observations (:func:`~stochhom.validation.plots.parity_plot`)."""
    t = predictions[(predictions["model"] == model) & (predictions["target"] == target)]
    return _title(plots.parity_plot(t["y"], t["mean"], t["std"], label=plain(target), unit=plain(unit)),
                  f"{plain(model)}: grouped-CV predictions")


@styled
def calibration_figure(predictions: pd.DataFrame, model: str, target: str) -> Figure:
    """Coverage of central intervals (:func:`~stochhom.validation.plots.calibration_plot`)."""
    t = predictions[(predictions["model"] == model) & (predictions["target"] == target)]
    return _title(plots.calibration_plot(t["y"], t["mean"], t["std"]),
                  f"{plain(model)}: calibration of {plain(target)}")


@styled
def leakage_figure(leakage: pd.DataFrame, model: str, target: str) -> Figure:
    """Naive against grouped K-fold (:func:`~stochhom.validation.plots.cv_comparison_plot`)."""
    t = leakage[(leakage["model"] == model) & (leakage["target"] == target)].reset_index(drop=True)
    return _title(plots.cv_comparison_plot(t), f"{plain(model)}: leakage, {plain(target)}")


@styled
def degradation_figure(table: pd.DataFrame, model: str, target: str) -> Figure:
    """OOD degradation ratio against distance (:func:`~stochhom.validation.plots.degradation_plot`)."""
    t = table[(table["model"] == model) & (table["target"] == target)].reset_index(drop=True)
    return _title(plots.degradation_plot(t), f"{plain(model)}: OOD degradation, {plain(target)}")
