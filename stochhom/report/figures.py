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
* :func:`sobol_figure`: first-order and total Sobol indices with their intervals, and
  the shares of every source of variance;
* :func:`parity_figure`, :func:`calibration_figure`: the figures of
  :mod:`stochhom.validation.plots` in the report's style, from the tables of a results
  directory (the calibration figure adds the levels and acceptance bands of
  :func:`~stochhom.validation.calibration_check`);
* :func:`leakage_figure`: naive against grouped K-fold, one panel per metric;
* :func:`degradation_figure`: the out-of-distribution metrics of
  :func:`~stochhom.validation.degradation` against the distance to the training box;
* :func:`ood_figure`: the same for :func:`~stochhom.validation.ood_evaluation`, with
  bootstrap intervals and the sample count behind every point.

Lengths are in the unit of the voxel size, moduli and conductivities in the unit of
the phase laws ("phase units", which stochhom does not know): the axes say so.
Targets are named by :func:`target_label` with the unit of :func:`target_unit`
(``[–]`` for ln targets: the ln of a property relative to a unit phase input).
"""

from __future__ import annotations

import functools
import json
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import BoundaryNorm, ListedColormap
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
from ..validation.metrics import calibration_check

__all__ = [
    "STYLE",
    "PARAMETER_LABELS",
    "axis_label",
    "target_label",
    "target_unit",
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
    "ood_figure",
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
    "volume": "SVE volume V [voxel volume units]",
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


def axis_label(name: str, dim: int | None = None, voxel_size: float | None = None) -> str:
    """Axis label with units of a parameter or property name (the name itself if unknown).

    ``volume`` (the SVE volume, in the unit of the voxel size to the power ``dim``) is
    labelled with :func:`_volume_unit` from ``dim`` and ``voxel_size`` when they are given.
    """
    if dim is not None and (name, dim) in _PROPERTY_LABELS:
        return _PROPERTY_LABELS[(name, dim)]
    if name == "volume":
        return f"SVE volume V [{_volume_unit(dim, voxel_size)}]"
    return PARAMETER_LABELS.get(name, plain(name).replace("_", " "))


def _parameter_name(name: str) -> str:
    """A parameter's name for a legend or tick label: :data:`PARAMETER_LABELS` without the unit."""
    return re.sub(r"\s*\[[^\]]*\]$", "", axis_label(name))


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _volume_unit(dim: int | None, voxel_size: float | None = None) -> str:
    """Unit of an SVE volume: ``voxels²``/``voxels³`` when the voxel size is 1, else
    ``length²``/``length³`` (the unit of the voxel size); ``voxel volume units`` when the
    dimension is unknown."""
    if dim not in (1, 2, 3):
        return "voxel volume units"
    power = "" if dim == 1 else str(dim).translate(_SUPERSCRIPT)
    return f"voxels{power}" if voxel_size is not None and float(voxel_size) == 1.0 else f"length{power}"


def target_label(name: str) -> str:
    """A readable name of a surrogate or RVE target (without its unit, see :func:`target_unit`).

    ===================================  ==========================================
    target                               label
    ===================================  ==========================================
    ``log_X``                            ``ln`` and the label of ``X``
    ``conductivity_eigenvalues_0``       ``conductivity eigenvalue 0 (smallest)``
    ``conductivity_eigenvalues_k``       ``conductivity eigenvalue k (ascending)``
    ``conductivity_i_j``                 ``conductivity k_ij`` (subscript digits)
    ``stiffness_i_j``                    ``stiffness C_ij (Mandel)``
    ``bulk_modulus``, ``shear_modulus``  ``bulk modulus K``, ``shear modulus G``
    ``mean_conductivity``                ``mean conductivity tr k / d``
    ``phase_fraction_1``                 ``phase fraction φ₁``
    anything else                        the name with spaces for underscores
    ===================================  ==========================================

    Examples
    --------
    >>> target_label("log_conductivity_eigenvalues_0")
    'ln conductivity eigenvalue 0 (smallest)'
    >>> target_label("conductivity_0_1")
    'conductivity k₀₁'
    """
    n = str(name)
    if n.startswith("log_") and len(n) > 4:
        return "ln " + target_label(n[4:])
    if m := re.fullmatch(r"conductivity_eigenvalues_(\d+)", n):
        k = int(m.group(1))
        return f"conductivity eigenvalue {k} ({'smallest' if k == 0 else 'ascending'})"
    if m := re.fullmatch(r"conductivity_(\d)_(\d)", n):
        return "conductivity k" + (m.group(1) + m.group(2)).translate(_SUBSCRIPT)
    if m := re.fullmatch(r"stiffness_(\d)_(\d)", n):
        return "stiffness C" + (m.group(1) + m.group(2)).translate(_SUBSCRIPT) + " (Mandel)"
    if m := re.fullmatch(r"phase_fraction_(\d+)", n):
        return "phase fraction φ" + m.group(1).translate(_SUBSCRIPT)
    fixed = {"bulk_modulus": "bulk modulus K", "shear_modulus": "shear modulus G",
             "mean_conductivity": "mean conductivity tr k / d", "phase_fraction": "phase fraction φ",
             "anisotropy_index": "anisotropy index"}
    return fixed.get(n, plain(n).replace("_", " "))


def target_unit(name: str) -> str:
    """Unit of a target, without brackets: ``–`` for ln targets (the ln of a property
    relative to a unit phase input), phase fractions and the anisotropy index; else
    ``phase units`` (effective properties carry the units of the phase laws, which stochhom
    does not know)."""
    n = str(name)
    if n.startswith("log_") or n.startswith("phase_fraction") or n == "anisotropy_index":
        return "–"
    return "phase units"


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else plain(v)


def _tick_text(v: float, _pos: Any = None) -> str:
    """A log-axis tick label: plain below 10⁵ and above 10⁻³, else ``a×10ⁿ`` (no mathtext)."""
    if not np.isfinite(v) or v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:g}"
    mant, exp = f"{v:.0e}".split("e")
    power = "10" + str(int(exp)).translate(_SUPERSCRIPT)
    return power if mant == "1" else f"{mant}×{power}"


def _log_ticks(ax: Any, axis: str) -> None:
    """Readable ticks on a log axis: labelled majors only (no colliding minor labels).

    Below half a decade every 1…9 × 10ⁿ is a labelled major, up to 2.5 decades
    1, 2 and 5 × 10ⁿ, beyond that the decades.
    """
    which = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    if not (lo > 0 and hi > 0):
        return
    span = abs(np.log10(hi / lo))
    if span < 0.5:
        which.set_major_locator(mticker.LogLocator(base=10, subs=tuple(range(1, 10))))
    elif span < 2.5:
        which.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    which.set_major_formatter(mticker.FuncFormatter(_tick_text))
    which.set_minor_formatter(mticker.NullFormatter())


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
    top = max(int(phase.max()), 1)
    fig, axes = _grid(n, ncols=3, panel=(3.0, 3.0))
    h = float(ens.attrs.get("voxel_size", 1.0))
    # one colour per phase label: a discrete map with boundaries halfway between the labels
    base = mpl.colormaps["tab10"].colors if top < 10 else mpl.colormaps["viridis"].resampled(top + 1).colors
    cmap = ListedColormap(list(base[: top + 1]), name="phase labels")
    norm = BoundaryNorm(np.arange(-0.5, top + 1.0), cmap.N)
    params = [_parameters(ens, k) for k in range(n)]
    shared = {p: v for p, v in params[0].items()
              if all(p in q and json.dumps(q[p], default=str) == json.dumps(v, default=str) for q in params)}
    im = None
    for k, ax in enumerate(axes):
        img = phase.isel(sample=k).values
        if dim == 3:
            img = img[:, :, img.shape[2] // 2]
        nx, ny = img.shape
        im = ax.imshow(img.T, origin="lower", extent=(0, nx * h, 0, ny * h), cmap=cmap, norm=norm,
                       interpolation="nearest")
        ax.grid(False)
        for axis in (ax.xaxis, ax.yaxis):  # few, short tick labels on small panels
            axis.set_major_locator(mticker.MaxNLocator(nbins=4, steps=[1, 2, 5, 10]))
        varying = {p: v for p, v in params[k].items() if p not in shared}
        title = f"sample {ens['sample'].values[k]}" + "".join(f", {plain(p)} = {_fmt(v)}" for p, v in varying.items())
        ax.set_title(title + (" (middle z slice)" if dim == 3 else ""))
        ax.set_xlabel("x [length]")
        ax.set_ylabel("y [length]")
    generator = str(ens.attrs.get("generator", "") or "")
    head = f"{plain(generator)} generator" if generator else "parameters"
    text = ", ".join(f"{_parameter_name(p)} = {_fmt(v)}" for p, v in shared.items())
    if text:
        line = f"{head}{', every sample shown' if n > 1 else ''}: {text}"
        fig.suptitle(textwrap.fill(line, width=int(fig.get_figwidth() * 100 / 7.5)), fontsize=9)
    elif generator:
        fig.suptitle(head, fontsize=9)
    if im is not None:
        bar = fig.colorbar(im, ax=axes, shrink=0.8, ticks=range(top + 1))
        bar.set_label("phase label")
        bar.minorticks_off()
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
    nominal = set()
    labels = ens["phase"].transpose("sample", ...).values == phase
    for g, ((key, members), color) in enumerate(zip(groups.items(),
                                                    mpl.rcParams["axes.prop_cycle"].by_key()["color"] * 10)):
        params = json.loads(key)
        varying = {p: v for p, v in params.items() if p in ens.coords and np.unique(ens[p].values).size > 1}
        tag = ", ".join(f"{plain(p)} = {_fmt(v)}" for p, v in varying.items())
        mean = s2.isel(sample=members).mean("sample").values
        ax.plot(r, mean, "o", color=color, label=f"measured ({len(members)} samples){', ' + tag if tag else ''}")
        theory = s2_theory(generator, params, fine, dim, phase)
        if theory is not None:
            any_theory = True
            ax.plot(fine, theory, "--", color=color, label="theory at the nominal φ" + (f", {tag}" if tag else ""))
            nominal.add(float(params["volume_fraction"]))
        # the long-range limit of the measured S₂ is the square of the measured fraction φ̂
        phi_hat = float(labels[members].mean())
        ax.axhline(phi_hat**2, color=color if len(groups) > 1 else "k", lw=0.8, ls=":",
                   label="measured φ̂² (long-range limit)" if g == 0 else "_nolegend_")
    if len(nominal) == 1 and len(groups) == 1:
        phi = nominal.pop()
        ax.axhline(phi**2, color="0.5", lw=0.8, ls="-.", label="nominal φ² (limit of the theory)")
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
    """Per-sample parameters that take more than one value (``point`` only if there are none).

    ``volume`` is left out when ``size`` is swept: the SVE volume is a function of its
    edge length, and the two panels would show the same thing.
    """
    keys = [k for k in default_by(props) if k != "point"
            and np.unique(props[k].values).size > 1 and props[k].dtype.kind in "biuf"]
    if "size" in keys and "volume" in keys:
        keys.remove("volume")
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

    When the bounds cannot be computed (no ``phase_fraction``, e.g. a many-phase study,
    or phases that do not resolve), the figure is drawn without them and its title says
    why. On a logarithmic property axis the limits follow the samples and bounds; an
    interval that reaches beyond them is cut at the axis and marked with a caret (▼ or ▲).

    Raises
    ------
    InputError
        When no converged sample has a finite value of a property (nothing to plot).
    """
    cols = property_columns(props)
    params = list(parameters) if parameters is not None else swept_parameters(props)
    if not params:
        params = ["sample"]
    conv = props["converged"].values.astype(bool) if "converged" in props else np.ones(props.sizes["sample"], bool)
    for name, values in cols.items():
        if not np.any(conv & np.isfinite(values)):
            raise InputError(f"no converged sample with a finite {name}")
    bounds, note = None, ""
    if phases is not None:
        try:
            bounds = sample_bounds(props, phases)
        except StochhomError as exc:
            note = f"bounds not drawn: {exc}"
        else:
            if not any(np.isfinite(b).any() for per in bounds.values() for b in per.values()):
                bounds, note = None, "bounds not drawn: no sample's phases could be resolved with its parameters"
    if summary is None:
        summary = summarize(props.assign({c: ("sample", v) for c, v in cols.items()}),
                            variables=list(cols), confidence=confidence, rng=0)
    dim = _dim(props)
    h = props.attrs.get("voxel_size")
    fig = Figure(figsize=(4.0 * len(params), 3.4 * len(cols)), layout="constrained")
    axes = fig.subplots(len(cols), len(params), squeeze=False)
    for i, (name, values) in enumerate(cols.items()):
        for j, p in enumerate(params):
            ax = axes[i, j]
            x = props[p].values.astype(float)
            ok = conv & np.isfinite(values)
            ax.plot(x[ok], values[ok], "o", alpha=0.6, ms=4, label="samples", zorder=2)
            shown = [values[ok]]
            if bounds is not None:
                b = bounds[name]
                for key, style, marker in (("hs_lower", _HS, "_"), ("hs_upper", _HS, "_"),
                                           ("reuss", _VR, "_"), ("voigt", _VR, "_")):
                    fin = np.isfinite(b[key])
                    if fin.any():
                        label = style["label"] if key in ("hs_lower", "reuss") else "_nolegend_"
                        ax.plot(x[fin], b[key][fin], marker, color=style["color"], ms=10, mew=1.0, alpha=0.7,
                                label=label, gid=f"{key}:{name}", zorder=1)
                        shown.append(b[key][fin])
            ax.set_xlabel(axis_label(p, dim, h))
            ax.set_ylabel(axis_label(name, dim))
            _log_if_wide(ax, x, "x")
            log_y = _log_if_wide(ax, values[ok], "y")
            if log_y:  # limits from the samples and bounds, not from intervals reaching below 0
                v = np.concatenate(shown)
                v = v[np.isfinite(v) & (v > 0)]
                ax.set_ylim(v.min() / 1.5, v.max() * 1.5)
            if p in summary.coords and name in summary["variable"].values:
                s = summary.sel(variable=name)
                _mean_with_intervals(ax, s[p].values.astype(float), s["mean"].values, s["ci_low"].values,
                                     s["ci_high"].values, clip=log_y, gid=f"mean:{name}",
                                     label=f"mean ± {confidence:.0%} CI per point")
            for axis, scale in (("x", ax.get_xscale()), ("y", ax.get_yscale())):
                if scale == "log":
                    _log_ticks(ax, axis)
            if i == 0 and j == 0:
                ax.legend(loc="best")
    if note:
        fig.suptitle(plain(note), fontsize=8, color="0.3")
    return fig


def _mean_with_intervals(ax: Any, x: np.ndarray, mean: np.ndarray, lo: np.ndarray, hi: np.ndarray, *,
                         clip: bool, gid: str, label: str) -> None:
    """Means with their intervals; with ``clip`` (a log axis with fixed limits) the ends beyond
    the limits are cut at the axis and marked with a caret, so that nothing is hidden silently."""
    mean, lo, hi = (np.asarray(a, dtype=float) for a in (mean, lo, hi))
    below = above = np.zeros(mean.shape, bool)
    if clip:
        bottom, top = ax.get_ylim()
        below = np.isfinite(lo) & (lo < bottom)  # includes ends ≤ 0, which a log axis cannot show
        above = np.isfinite(hi) & (hi > top)
        lo, hi = np.where(below, bottom, lo), np.where(above, top, hi)
    err = np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
    err = np.where(np.isfinite(err), err, 0.0)
    ax.errorbar(x, mean, yerr=err, fmt="s", color="k", ms=4, capsize=3, zorder=3, label=label, gid=gid)
    if below.any() or above.any():
        bottom, top = ax.get_ylim()
        label = "interval cut at the axis"
        for mask, y, marker in ((below, bottom, "v"), (above, top, "^")):
            if mask.any():
                ax.plot(x[mask], np.full(mask.sum(), y), marker, color="k", ms=6, clip_on=False, zorder=4,
                        label=label, gid=f"cut:{gid}")
                label = "_nolegend_"
        ax.set_ylim(bottom, top)


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
def rve_figure(rve: Mapping[str, Mapping[str, Any]], *, dim: int | None = None,
               voxel_size: float | None = None) -> Figure:
    r"""Variance of the apparent property against the SVE volume, log-log, per target.

    Points: the sample variances :math:`D_Z^2(V)` (with their counts); line: the fit
    :math:`K V^{-\alpha}`; the legend, below each panel, gives :math:`\alpha` and the
    integral range :math:`A` with their intervals (``rve.json`` entries, see
    :class:`~stochhom.statistics.rve.VarianceScaling`).

    The variance of a property is in (phase units)², which stochhom does not know; that of
    a phase fraction or an ln target is dimensionless. The volume axis is in voxels² or
    voxels³ when ``voxel_size`` is 1, else in (unit of the voxel size)² or ³; without
    ``dim`` it says "voxel volume units".

    Parameters
    ----------
    rve : mapping
        ``rve.json``: ``{target: {"volumes", "variances", "counts", "alpha", ...}}``.
    dim : {2, 3}, optional
        Dimension of the SVEs (``attrs["dim"]`` of the apparent properties).
    voxel_size : float, optional
        Edge of a voxel (``attrs["voxel_size"]``).
    """
    if not rve:
        raise InputError("no RVE results to plot")
    fig, axes = _grid(len(rve), ncols=3, panel=(4.0, 4.2))
    v_unit = _volume_unit(dim, voxel_size)
    for ax, (target, fit) in zip(axes, rve.items()):
        v = np.asarray(fit["volumes"], dtype=float)
        var = np.asarray(fit["variances"], dtype=float)
        counts = [int(c) for c in fit.get("counts", []) or []]
        same = len(set(counts)) == 1
        ax.loglog(v, var, "o", label="sample variance" + (f" (n = {counts[0]} per volume)" if same else ""))
        if counts and not same:  # the counts differ: one label per point, below it
            for vi, di, c in zip(v, var, counts):
                ax.annotate(f"n={c}", (vi, di), textcoords="offset points", xytext=(0, -10), ha="center",
                            va="top", fontsize=7)
        vv = np.geomspace(v.min(), v.max(), 50)
        alpha, amplitude = float(fit["alpha"]), float(fit["amplitude"])
        ax.loglog(vv, amplitude * vv ** (-alpha), "-",
                  label=f"fit K V^(−α), α = {_ci_text(alpha, fit.get('alpha_ci'))}", gid=f"fit:{target}")
        a_text = _ci_text(fit.get("integral_range"), fit.get("integral_range_ci"))
        ax.plot([], [], " ", label=f"integral range A = {a_text}" + (" (unit of V)" if a_text != "n/a" else ""))
        if "chi2" in fit and fit["chi2"] is not None:
            ax.plot([], [], " ", label=f"χ² = {float(fit['chi2']):.3g} ({len(v)} volumes)")
        unit = target_unit(target)
        var_unit = "–" if unit == "–" else f"({unit})²"
        ax.set_title(target_label(target))
        ax.set_xlabel(f"SVE volume V [{v_unit}]")
        ax.set_ylabel(f"variance D²(V) [{var_unit}]")
        ax.margins(x=0.08, y=0.15)
        _log_ticks(ax, "x")
        _log_ticks(ax, "y")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=1, borderaxespad=0.0)
    return fig


# --------------------------------------------------------------------------- propagation and sensitivity


@styled
def propagation_figure(samples: Mapping[str, Any], target: str, unit: str = "",
                       means: Mapping[str, float] | None = None) -> Figure:
    """Density of a propagated output, one histogram and kernel density estimate per model.

    ``unit`` defaults to :func:`target_unit` of ``target``. ``means`` (per model) are the
    propagated means of the study's ``propagation.json``, marked and written in the legend, so
    that the figure shows the same number as the tables (the samples drawn here are a
    subsample); without them the mean of the samples is shown.
    """
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
        m = float(means[model]) if means is not None and model in means else float(y.mean())
        ax.axvline(m, color=color, ls="--", lw=1, label=f"{plain(model)} mean = {m:.4g}")
    u = plain(unit) if unit else target_unit(target)
    ax.set_xlabel(f"{target_label(target)} [{u}]")
    ax.set_ylabel("probability density [–]" if u == "–" else f"probability density [1/{u}]")
    ax.legend()
    return fig


def _edge_marks(ax: Any, x: float, value: float, lo: float, hi: float, limits: tuple[float, float]) -> bool:
    """Carets at the axis limits where a bar or its interval ends beyond them, and the
    numbers written along the bar; True when anything was beyond."""
    ends = np.array([value, lo, hi], dtype=float)
    beyond = np.isfinite(ends) & ((ends < limits[0]) | (ends > limits[1]))
    if not beyond.any():
        return False
    if np.any(ends[beyond] > limits[1]):
        ax.plot([x], [limits[1]], "^", color="k", ms=6, clip_on=False, zorder=5)
    if np.any(ends[beyond] < limits[0]):
        ax.plot([x], [limits[0]], "v", color="k", ms=6, clip_on=False, zorder=5)
    text = f"estimate {value:.3g}"
    if np.isfinite(lo) and np.isfinite(hi):
        text += f", interval [{lo:.3g}, {hi:.3g}]"
    ax.text(x, 0.5 * (limits[0] + limits[1]), text, rotation=90, ha="center", va="center", fontsize=6.5,
            zorder=6, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.9})
    return True


#: The y-range of the Sobol figure: indices lie in [0, 1]; estimates and interval ends beyond
#: this range are cut at the axis and printed.
SOBOL_LIMITS = (-0.1, 1.1)


_SHARE_SOURCES = (("aleatoric", "SVE scatter", "#8c564b"), ("epistemic", "surrogate (epistemic)", "#7f7f7f"),
                  ("unsplit", "scatter + surrogate (unsplit)", "#bcbd22"))


@styled
def sobol_figure(indices: Mapping[str, Mapping[str, Any]], target: str) -> Figure:
    """Sobol indices per input with intervals, and the shares of every source of variance.

    Left: first-order and total indices per input, one bar group per model, as shares of
    the whole output variance when the indices carry ``shares`` (``relative_to="total"``,
    as the study runner writes them), else of the mean response's variance. The y-axis is
    fixed to :data:`SOBOL_LIMITS`; estimates and interval ends beyond it are cut at the axis,
    marked with a caret and printed. Right (with ``shares``): one stacked bar per model, the
    whole variance split into the first-order effect of each input, their interactions, the
    SVE scatter and the surrogate's uncertainty, adding up to 1.

    Raises
    ------
    InputError
        When there are no indices, or the models name different inputs (their bars
        could not share a group).
    """
    if not indices:
        raise InputError(f"no Sobol indices of {target!r} to plot")
    names_of = {str(model): [str(n) for n in ind["names"]] for model, ind in indices.items()}
    names = next(iter(names_of.values()))
    if any(n != names for n in names_of.values()):
        raise InputError(f"the Sobol indices of {target!r} name different inputs per model: "
                         + "; ".join(f"{m}: {n}" for m, n in names_of.items()))
    whole = all(ind.get("shares") for ind in indices.values())
    width_left = max(4.2, 1.3 * len(names) * len(indices))
    fig = Figure(figsize=(width_left + (3.4 if whole else 0.0), 4.0), layout="constrained")
    ax = fig.add_subplot(1, 2, 1) if whole else fig.add_subplot()
    x = np.arange(len(names))
    bars = 2 * len(indices)
    width = 0.8 / bars
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    lim = SOBOL_LIMITS
    cut = 0
    for m, ((model, ind), color) in enumerate(zip(indices.items(), colors * 10)):
        for k, (kind, hatch) in enumerate((("first", ""), ("total", "//"))):
            v = np.asarray(ind[kind], dtype=float).reshape(-1)
            if v.size != len(names):
                raise InputError(f"{model}: {v.size} {kind}-order indices for {len(names)} inputs")
            offset = (2 * m + k - (bars - 1) / 2) * width
            shown = np.clip(v, *lim)
            ax.bar(x + offset, shown, width, color=color, alpha=0.5 if k else 0.9, hatch=hatch,
                   edgecolor=color, label=f"{plain(model)}: {'first order' if k == 0 else 'total'}")
            lo = hi = np.full(v.shape, np.nan)
            if ind.get(f"{kind}_ci") is not None:
                lo, hi = (np.asarray(c, dtype=float).reshape(-1) for c in ind[f"{kind}_ci"])
                err = np.vstack([np.clip(shown - np.clip(lo, *lim), 0, None),
                                 np.clip(np.clip(hi, *lim) - shown, 0, None)])
                ax.errorbar(x + offset, shown, yerr=np.where(np.isfinite(err), err, 0.0), fmt="none",
                            ecolor="k", elinewidth=1.0, capsize=2)
            for xi, vi, li, hi_ in zip(x + offset, v, lo, hi):
                cut += _edge_marks(ax, xi, vi, li, hi_, lim)
    ax.set_xticks(x, [_parameter_name(n) for n in names])
    ax.set_xlabel("input parameter")
    ax.set_ylabel("Sobol index: share of the whole variance [–]" if whole
                  else "Sobol index: share of Var E[Y | θ] [–]")
    ax.set_title(f"Sobol indices of {target_label(target)}")
    ax.set_ylim(*lim)
    ax.axhline(0.0, color="k", lw=0.8)
    handles, labels = ax.get_legend_handles_labels()
    if cut:
        handles.append(ax.plot([], [], "k^", ms=6)[0])
        labels.append("beyond the axis (numbers on the bar)")
    ax.legend(handles, labels, loc="upper right", fontsize=7)
    if whole:
        _shares_panel(fig.add_subplot(1, 2, 2), indices, names, colors)
    return fig


def _shares_panel(ax: Any, indices: Mapping[str, Mapping[str, Any]], names: list[str], colors: list[str]) -> None:
    """One stacked bar per model: first-order effects, interactions, scatter, surrogate (adding up to 1)."""
    models = list(indices)
    input_colors = ["#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fc9272", "#c7e9c0"]
    for j, model in enumerate(models):
        ind = indices[model]
        shares = {k: float(np.asarray(v, dtype=float).reshape(-1)[0]) for k, v in ind["shares"].items()}
        first = np.clip(np.asarray(ind["first"], dtype=float).reshape(-1), 0.0, None)
        parts = [(f"{_parameter_name(n)} (first order)", f, input_colors[i % len(input_colors)], "")
                 for i, (n, f) in enumerate(zip(names, first))]
        parts.append(("interactions", max(shares.get("input", 0.0) - float(first.sum()), 0.0), "white", "xx"))
        parts += [(label, shares.get(key, 0.0), color, "") for key, label, color in _SHARE_SOURCES]
        bottom = 0.0
        for label, value, color, hatch in parts:
            if value <= 0:
                continue
            ax.bar(j, value, 0.6, bottom=bottom, color=color, hatch=hatch, edgecolor="0.3", lw=0.5,
                   label=label if j == 0 else None)
            if value >= 0.04:
                ax.text(j, bottom + value / 2, f"{100 * value:.0f} %", ha="center", va="center", fontsize=7)
            bottom += value
    ax.set_xticks(range(len(models)), [plain(m) for m in models])
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("share of the whole variance [–]")
    ax.set_title("where the variance comes from")
    ax.grid(axis="x", visible=False)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.legend(list(seen.values()), list(seen.keys()), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)


# --------------------------------------------------------------------------- validation (validation.plots, styled)


def _title(fig: Figure, text: str) -> Figure:
    fig.axes[0].set_title(text)
    return fig


def _select(table: pd.DataFrame, model: str, target: str) -> pd.DataFrame:
    t = table[(table["model"].astype(str) == str(model)) & (table["target"].astype(str) == str(target))]
    if t.empty:
        raise InputError(f"no rows for model {model!r} and target {target!r}")
    t = t.reset_index(drop=True)
    return t.assign(output=t["output"].astype(str)) if "output" in t else t.assign(output="0")


@styled
def parity_figure(predictions: pd.DataFrame, model: str, target: str, unit: str = "") -> Figure:
    """Out-of-fold predictions against observations (:func:`~stochhom.validation.plots.parity_plot`).

    The axes name the target by :func:`target_label`; ``unit`` defaults to :func:`target_unit`.
    """
    t = _select(predictions, model, target)
    u = plain(unit) if unit else target_unit(target)
    ends = {"lower": t["lower"], "upper": t["upper"]} if {"lower", "upper"} <= set(t.columns) else {}
    fig = plots.parity_plot(t["y"], t["mean"], t["std"], label=target_label(target), unit=u, **ends)
    fig.set_size_inches(5.0, 4.6)
    fig.axes[0].set_ylabel(f"predicted {target_label(target)} [{u}]\n(bars: 95 % interval)")
    return _title(fig, f"{plain(model)}: grouped-CV predictions")


def _coverage_level(metric: str) -> float | None:
    m = re.fullmatch(r"coverage_([0-9.]+)", str(metric))
    return float(m.group(1)) if m else None


@styled
def calibration_figure(predictions: pd.DataFrame, model: str, target: str,
                       check_alpha: float | None = 0.01) -> Figure:
    """Coverage of central intervals (:func:`~stochhom.validation.plots.calibration_plot`).

    The grey band is the pointwise binomial 95 % band of each level alone. With
    ``check_alpha`` (default 0.01, the report's verdict), the levels of
    :func:`~stochhom.validation.calibration_check` are added: the acceptance band of each
    level (black bars, Bonferroni over the levels and the KS test at the family-wise level
    ``check_alpha``) and its observed coverage (green inside, red outside); the title gives
    the verdict. ``None`` leaves them out.
    """
    t = _select(predictions, model, target)
    if "z" in t:  # standardized (latent) residuals: calibration is invariant under the output map
        y = t["z"].to_numpy(float)
        mean, std = np.zeros_like(y), np.ones_like(y)
    else:
        y, mean, std = (t[c].to_numpy(float) for c in ("y", "mean", "std"))
    fig = plots.calibration_plot(y, mean, std)
    fig.set_size_inches(5.0, 4.4)
    ax = fig.axes[0]
    for artist in (*ax.collections, *ax.lines):
        if artist.get_label() == "binomial 95 % band":
            artist.set_label("pointwise binomial 95 % band")
        elif artist.get_label() == "observed":
            artist.set_label("observed (19 levels)")
    title = f"{plain(model)}: calibration of {target_label(target)}"
    if check_alpha is not None:
        try:
            chk = calibration_check(y, mean, std, alpha=check_alpha)
        except StochhomError as exc:
            title += f"\ncheck not run: {plain(exc)}"
        else:
            lv = np.asarray(chk.levels, dtype=float)
            cov = np.asarray(chk.coverage, dtype=float).reshape(len(lv), -1)[:, 0]
            lower = np.asarray(chk.lower, dtype=float).reshape(-1)
            upper = np.asarray(chk.upper, dtype=float).reshape(-1)
            ok = np.asarray(chk.level_passed).reshape(len(lv), -1)[:, 0]
            ax.errorbar(lv, lv, yerr=[lv - lower, upper - lv], fmt="none", ecolor="k", elinewidth=1.2, capsize=4,
                        zorder=4, label=f"acceptance band of the check (family-wise α = {check_alpha:g})")
            for mask, color, text in ((ok, "tab:green", "inside its band"), (~ok, "tab:red", "outside its band")):
                if mask.any():
                    ax.plot(lv[mask], cov[mask], "D", color=color, ms=5, mec="k", mew=0.5, zorder=5,
                            label=f"checked level, {text}")
            ks = float(np.atleast_1d(chk.ks_pvalue)[0])
            title += f"\ncheck {'passed' if chk.passed else 'failed'} (n = {chk.n}, KS p = {ks:.2g})"
    ax.set_title(title)
    ax.set_xlabel("nominal coverage of the central interval [–]")
    ax.set_ylabel("observed coverage [–]")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", fontsize=7)
    return fig


def _metric_axis(metric: str, target: str) -> str:
    """y label of a validation metric, with its unit."""
    unit = target_unit(target)
    level = _coverage_level(metric)
    if level is not None:
        return f"coverage of the {level:.0%} interval [–]"
    return {"rmse": f"RMSE [{unit}]", "mae": f"MAE [{unit}]", "crps": f"CRPS [{unit}]",
            "max_error": f"max error [{unit}]", "nlpd": "NLPD [nats]", "r2": "R² [–]",
            "miscalibration_area": "miscalibration area [–]"}.get(str(metric), f"{plain(metric)}")


_METRIC_ORDER = ("rmse", "mae", "crps", "r2", "nlpd")


def _metric_order(metrics: Sequence[str]) -> list[str]:
    rank = {m: k for k, m in enumerate(_METRIC_ORDER)}
    return sorted(dict.fromkeys(map(str, metrics)), key=lambda m: (rank.get(m, len(rank)), m))


@styled
def leakage_figure(leakage: pd.DataFrame, model: str, target: str) -> Figure:
    """Naive against grouped K-fold (the table of
    :func:`~stochhom.validation.leakage_demonstration`), one small panel per metric with its
    own axis: RMSE in the target's unit, NLPD in nats (either may be negative for NLPD), and
    coverage with its nominal level (dashed)."""
    t = _select(leakage, model, target)
    if not {"metric", "naive", "grouped"} <= set(t.columns):
        raise InputError("expected the table returned by leakage_demonstration()")
    metrics = _metric_order(t["metric"])
    fig, axes = _grid(len(metrics), ncols=3, panel=(2.6, 2.9))
    outputs = list(dict.fromkeys(t["output"]))
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes, metrics):
        sub = t[t["metric"].astype(str) == metric]
        x = np.arange(len(outputs))
        for k, (col, label) in enumerate((("naive", "naive K-fold"), ("grouped", "grouped K-fold"))):
            vals = [float(sub.loc[sub["output"] == o, col].mean()) for o in outputs]
            ax.bar(x + (k - 0.5) * 0.38, vals, 0.36, color=colors[k], label=label)
        level = _coverage_level(metric)
        if level is not None:
            ax.axhline(level, color="k", ls="--", lw=1, label="nominal")
            ax.set_ylim(0, 1.05)
        else:
            ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(x, [f"output {o}" for o in outputs] if len(outputs) > 1 else [""])
        ax.tick_params(axis="x", length=0)
        ax.set_ylabel(_metric_axis(metric, target))
        ax.set_title({"rmse": "RMSE (lower is better)", "nlpd": "NLPD (lower is better)"}.get(
            metric, f"coverage, nominal {level:g}" if level is not None else plain(metric)))
        ax.grid(axis="x", visible=False)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    fig.suptitle(f"{plain(model)}: leakage, {target_label(target)}")
    return fig


def _shell_counts(table: pd.DataFrame, validation: pd.DataFrame | None, model: str, target: str) -> dict[str, float]:
    """Test points per split: the table's ``n`` column, else that of the OOD fold of ``validation``
    (the ``validation.csv`` of :func:`~stochhom.validation.evaluate`)."""
    if "n" in table:
        return {str(s): float(n) for s, n in table.groupby("split")["n"].mean().items()}
    if validation is None or not {"model", "target", "fold", "split", "n"} <= set(validation.columns):
        return {}
    v = validation[(validation["model"].astype(str) == str(model)) & (validation["target"].astype(str) == str(target))]
    folds = set(v.loc[v["split"].astype(str).str.startswith("ood_"), "fold"])
    v = v[v["fold"].isin(folds)]
    return {str(s): float(n) for s, n in v.groupby("split")["n"].mean().items()}


def _shared_legend(fig: Figure, axes: Sequence[Any], max_columns: int) -> None:
    """One legend below the panels, each label once."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), max_columns))


@styled
def degradation_figure(table: pd.DataFrame, model: str, target: str,
                       validation: pd.DataFrame | None = None) -> Figure:
    r"""Out-of-distribution metrics against the distance to the training box, one panel per metric.

    From the table of :func:`~stochhom.validation.degradation` (``degradation.csv``):

    * coverage: the coverage itself (a ratio of coverages is not a degradation), with the
      nominal level dashed;
    * NLPD: the predictive density ratio :math:`\exp(\Delta\mathrm{NLPD})`,
      :math:`\Delta\mathrm{NLPD} = \mathrm{NLPD}_{ood} - \mathrm{NLPD}_{id}`: how many times
      less likely the OOD observations are under the predictive law (1: no degradation);
    * RMSE and other metrics: the ratio OOD / in-distribution (1: no degradation).

    The in-distribution reference (distance 0) is drawn as a square. The number of test
    points of each set is printed next to it when the table has an ``n`` column or
    ``validation`` (the ``validation.csv`` table of the same run) is given.
    """
    t = _select(table, model, target)
    if not {"distance", "metric", "ratio", "value", "split"} <= set(t.columns):
        raise InputError("expected the table returned by degradation()")
    counts = _shell_counts(t, validation, model, target)
    metrics = _metric_order(t["metric"])
    fig, axes = _grid(len(metrics), ncols=3, panel=(3.2, 3.4))
    outputs = list(dict.fromkeys(t["output"]))
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes, metrics):
        level = _coverage_level(metric)
        for o, color in zip(outputs, colors * 10):
            sub = t[(t["metric"].astype(str) == metric) & (t["output"] == o)]
            sub = sub.sort_values("distance")
            y = sub["value"] if level is not None else sub["ratio"]
            ax.plot(sub["distance"], y, "-", color=color, lw=1.0, label=f"output {o}" if len(outputs) > 1 else None)
            ref = (sub["split"].astype(str) == "test").to_numpy()
            ax.plot(sub["distance"][~ref], y[~ref], "o", color=color, label="OOD shells" if o == outputs[0] else None)
            ax.plot(sub["distance"][ref], y[ref], "s", color=color, mfc="white",
                    label="in-distribution test" if o == outputs[0] else None)
            if counts and o == outputs[0]:
                for d, yi, split in zip(sub["distance"], y, sub["split"].astype(str)):
                    if split in counts and np.isfinite(yi):
                        ax.annotate(f"n={counts[split]:.0f}", (d, yi), textcoords="offset points", xytext=(0, 6),
                                    ha="center", fontsize=6.5)
        if level is not None:
            ax.axhline(level, color="k", ls="--", lw=1, label=f"nominal {level:g}")
            ax.set_ylim(0, 1.08)
            ax.set_ylabel(_metric_axis(metric, target))
            ax.set_title("coverage (not a ratio)")
        elif metric == "nlpd":
            ax.axhline(1.0, color="k", ls="--", lw=1, label="no degradation")
            ax.set_ylabel("predictive density ratio exp(ΔNLPD) [–]")
            ax.set_title("ΔNLPD = NLPD(OOD) − NLPD(ID)")
        else:
            ax.axhline(1.0, color="k", ls="--", lw=1, label="no degradation")
            name = {"rmse": "RMSE", "mae": "MAE", "crps": "CRPS"}.get(metric, plain(metric))
            ax.set_ylabel(f"{name} ratio OOD / in-distribution [–]")
            ax.set_title(f"{name} ratio")
        if level is None:
            vals = (t.loc[t["metric"].astype(str) == metric, "ratio"]).to_numpy(float)
            vals = vals[np.isfinite(vals) & (vals > 0)]
            if vals.size and vals.max() / vals.min() >= 10:
                ax.set_yscale("log")
                _log_ticks(ax, "y")
        ax.set_xlabel("distance to the training box [box widths]")
        ax.margins(y=0.12)
    _shared_legend(fig, axes, 5)
    fig.suptitle(f"{plain(model)}: out-of-distribution degradation, {target_label(target)}")
    return fig


@styled
def ood_figure(table: pd.DataFrame, model: str, target: str) -> Figure:
    r"""Out-of-distribution metrics against the distance to the training box, with intervals.

    From the table of :func:`~stochhom.validation.ood_evaluation` (``ood.csv``), one panel
    per metric: RMSE as a ratio to its in-box (reference) value, NLPD as the predictive
    density ratio :math:`\exp(\Delta\mathrm{NLPD})`, coverage as itself (nominal dashed), each
    with its 95 % bootstrap interval over the groups and the number of samples behind it.
    The reference (distance 0) is a square.
    """
    t = _select(table, model, target).sort_values("distance_mean")
    panels = [m for m in ("rmse", "nlpd", "crps", "coverage_0.95") if m in t.columns]
    fig, axes = _grid(len(panels), ncols=3, panel=(3.2, 3.3))
    ref = (t["split"].astype(str) == "reference").to_numpy()
    d = t["distance_mean"].to_numpy(float)
    for ax, metric in zip(axes, panels):
        level = _coverage_level(metric)
        col = metric if level is not None else f"{metric}_ratio"
        y = t[col].to_numpy(float)
        lo = t.get(f"{col}_low", pd.Series(np.nan, index=t.index)).to_numpy(float)
        hi = t.get(f"{col}_high", pd.Series(np.nan, index=t.index)).to_numpy(float)
        if metric != "coverage_0.95" and level is None:
            lo, hi = np.where(ref, 1.0, lo), np.where(ref, 1.0, hi)
        err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
        ax.errorbar(d, y, yerr=np.where(np.isfinite(err), err, 0.0), fmt="-", color="C0", ecolor="0.3",
                    capsize=3, lw=1.0)
        ax.plot(d[~ref], y[~ref], "o", color="C0", label="OOD shells")
        ax.plot(d[ref], y[ref], "s", color="C0", mfc="white", label="in the box (reference)")
        for di, yi, n in zip(d, y, t["n_samples"]):
            ax.annotate(f"n={int(n)}", (di, yi), textcoords="offset points", xytext=(4, 6), fontsize=6.5)
        if level is not None:
            ax.axhline(level, color="k", ls="--", lw=1, label=f"nominal {level:g}")
            ax.set_ylim(0, 1.08)
            ax.set_ylabel(_metric_axis(metric, target))
            ax.set_title("coverage (not a ratio)")
        else:
            ax.axhline(1.0, color="k", ls="--", lw=1, label="no degradation")
            name = {"rmse": "RMSE", "crps": "CRPS"}.get(metric)
            ax.set_ylabel("predictive density ratio exp(ΔNLPD) [–]" if metric == "nlpd"
                          else f"{name} ratio to the reference [–]")
            ax.set_title("ΔNLPD = NLPD(shell) − NLPD(reference)" if metric == "nlpd" else f"{name} ratio")
        ax.set_xlabel("distance to the training box [box widths]")
        ax.margins(y=0.12)
    _shared_legend(fig, axes, 4)
    fig.suptitle(f"{plain(model)}: out of distribution, {target_label(target)}")
    return fig
