r"""Figures of a study report (matplotlib), in one consistent, readable style.

Every function returns a ``matplotlib.figure.Figure`` built without ``pyplot`` (no
global state, no display), drawn inside ``matplotlib.rc_context(STYLE)``:

* :func:`gallery_figure`: label images of a few SVEs (the middle ``z`` slice of 3D ones),
  on a grid that fits their number;
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

**Units.** Every figure takes ``units`` (:class:`~stochhom.units.Units`, the study's
declared units): lengths are in its length unit (SVE volumes in its square or cube),
moduli and conductivities in its modulus or conductivity unit. Without a declaration
properties are in "phase units" (the units of the phase laws) and lengths in "voxels"
(voxel size 1) or "voxel-size units"; the axes say so. Targets are named by
:func:`target_label` with the unit of :func:`target_unit` (``[–]`` for ln targets).

**Readability.** The report shows a figure ``w`` inches wide at ``100 w`` CSS pixels
(:data:`DISPLAY_PPI`), one column (:data:`COLUMN_WIDTH`) or the whole page
(:data:`PAGE_WIDTH`) wide. :data:`STYLE` uses 10 pt text and 9 pt tick labels, legends and
annotations (12.5 px); :func:`min_font_px` and :func:`text_overlaps` check a figure.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.axis as maxis
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation, Text
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
from ..units import DIMENSIONLESS, PHASE_UNITS, Units
from ..validation import plots
from ..validation.metrics import calibration_check

__all__ = [
    "STYLE",
    "gallery_field_statistics",
    "adaptive_history_figure",
    "gallery_field_histogram_figure",
    "DISPLAY_PPI",
    "COLUMN_WIDTH",
    "PAGE_WIDTH",
    "min_font_px",
    "text_overlaps",
    "PARAMETER_LABELS",
    "axis_label",
    "target_label",
    "label_dimension",
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
    "hierarchy_figure",
    "fit_figure",
    "propagation_figure",
    "sobol_figure",
    "parity_figure",
    "calibration_figure",
    "leakage_figure",
    "degradation_figure",
    "ood_figure",
]

#: Text size (points) of labels and titles; :data:`SMALL_FONT` is that of tick labels, legends
#: and annotations. At the displayed size (:data:`DISPLAY_PPI`) 9 pt is 12.5 px.
FONT = 10.0
SMALL_FONT = 9.0

#: Width (inches) of a figure shown in one column of the report (640 px): single panels and
#: small grids. Figures of several panels in a row are up to :data:`PAGE_WIDTH` wide and span
#: both columns, with the same fonts.
COLUMN_WIDTH = 6.4
PAGE_WIDTH = 13.0

#: The report's matplotlib style, applied with ``matplotlib.rc_context``.
STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": FONT,
    "axes.titlesize": FONT,
    "axes.labelsize": FONT,
    "figure.titlesize": FONT + 1,
    "figure.labelsize": FONT,
    "legend.fontsize": SMALL_FONT,
    "legend.title_fontsize": SMALL_FONT,
    "legend.frameon": False,
    "legend.handlelength": 1.8,
    "xtick.labelsize": SMALL_FONT,
    "ytick.labelsize": SMALL_FONT,
    "axes.formatter.limits": (-4, 5),
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]),
    "lines.linewidth": 1.5,
    "lines.markersize": 5,
    "errorbar.capsize": 3,
    "image.cmap": "viridis",
}

#: Readable names (with their symbols) of common parameters; :func:`axis_label` adds the unit.
PARAMETER_LABELS: dict[str, str] = {
    "volume_fraction": "volume fraction φ",
    "correlation_length": "correlation length ℓ",
    "radius": "radius R",
    "radius_std": "radius standard deviation",
    "contrast": "phase contrast",
    "size": "SVE edge length",
    "volume": "SVE volume V",
    "aspect_ratio": "aspect ratio",
    "nu": "Matérn smoothness ν",
}

#: Short names of parameters in panel titles and legends.
_SHORT = {"volume_fraction": "φ", "correlation_length": "ℓ", "radius": "R", "nu": "ν"}

#: Names of the plotted properties, by (name, dim).
_PROPERTY_LABELS = {
    ("bulk_modulus", 3): "bulk modulus K",
    ("bulk_modulus", 2): "plane-strain bulk modulus κ",
    ("shear_modulus", 3): "shear modulus G",
    ("shear_modulus", 2): "shear modulus G",
    ("mean_conductivity", 3): "mean conductivity tr k / 3",
    ("mean_conductivity", 2): "mean conductivity tr k / 2",
}

_HS = {"color": "#2ca02c", "label": "Hashin–Shtrikman bounds"}
_VR = {"color": "0.55", "label": "Voigt / Reuss bounds"}
#: The one marker of an interval end cut at an axis limit (explained once in the legend).
_CUT = {"color": "k", "ms": 6, "mfc": "white", "mew": 1.0, "label": "interval cut at the axis"}


def styled(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` inside ``matplotlib.rc_context(STYLE)`` (figures are styled when built)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with mpl.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- readability checks

#: Pixels per inch of a figure as the report shows it (a figure ``w`` inches wide is ``100 w`` px wide).
DISPLAY_PPI = 100.0


def _axes_name(fig: Figure, ax: Any) -> str:
    try:
        return f"axes {fig.axes.index(ax)}"
    except ValueError:
        return "axes"


def _visible_texts(fig: Figure) -> list[tuple[Any, str, str]]:
    """``(text, role, group)`` of every text a draw of ``fig`` shows: visible, non-empty, with
    visible parents. Tick labels are those of the ticks drawn (inside the view limits);
    ``group`` names the axis a tick label belongs to ("" for other texts)."""
    out: list[tuple[Any, str, str]] = []

    def add(t: Any, role: str, group: str = "") -> None:
        if isinstance(t, Text) and t.get_visible() and t.get_text().strip():
            if isinstance(t, Annotation) and hasattr(t, "_check_xy") and not t._check_xy(None):
                return  # an annotation clipped away (its point outside its axes)
            out.append((t, role, group))

    def walk(artist: Any, ax: Any, legend: bool) -> None:
        if not artist.get_visible():
            return
        if isinstance(artist, maxis.Axis):
            name = f"{artist.axis_name} axis of {_axes_name(fig, ax)}"
            add(artist.label, f"{artist.axis_name} label of {_axes_name(fig, ax)}")
            add(artist.offsetText, f"{artist.axis_name} offset text of {_axes_name(fig, ax)}")
            for tick in artist._update_ticks():  # the ticks a draw shows
                if tick.get_visible():
                    for lab in (tick.label1, tick.label2):
                        add(lab, f"{artist.axis_name} tick label of {_axes_name(fig, ax)}", name)
            return
        if isinstance(artist, Text):
            if ax is not None and artist in (ax.title, getattr(ax, "_left_title", None),
                                             getattr(ax, "_right_title", None)):
                role = f"title of {_axes_name(fig, ax)}"
            elif artist is getattr(fig, "_suptitle", None):
                role = "suptitle"
            elif artist is getattr(fig, "_supxlabel", None) or artist is getattr(fig, "_supylabel", None):
                role = "figure label"
            elif legend:
                role = "legend text" + (f" of {_axes_name(fig, ax)}" if ax is not None else "")
            else:
                role = "text" + (f" of {_axes_name(fig, ax)}" if ax is not None else "")
            add(artist, role)
        for child in artist.get_children():
            walk(child, artist if isinstance(artist, Axes) else ax,
                 legend or isinstance(artist, Legend))

    walk(fig, None, False)
    return out


def min_font_px(fig: Figure) -> float:
    """The smallest font of a figure's texts, in pixels at the size the report shows it.

    A figure ``w`` inches wide is shown ``100 w`` pixels wide (:data:`DISPLAY_PPI`), so a
    font of ``s`` points is :math:`s \\cdot 100 / 72` pixels high. Counted are the visible,
    non-empty texts a draw of the figure shows: tick labels, axis labels, titles, legend
    entries, annotations and the suptitle.

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    float
        The smallest font size in display pixels (``inf`` for a figure without text).

    Examples
    --------
    >>> fig = Figure(figsize=(4, 3))
    >>> _ = fig.add_subplot().set_title("t", fontsize=9)
    >>> round(min_font_px(fig), 1)  # 9 pt, the tick labels of the default style are 10 pt
    12.5
    """
    _ensure_canvas(fig)
    sizes = [float(t.get_fontsize()) for t, _, _ in _visible_texts(fig)]
    return min(sizes) * DISPLAY_PPI / 72.0 if sizes else float("inf")


def _ensure_canvas(fig: Figure) -> Any:
    """A renderer for ``fig`` (an Agg canvas is attached when the figure has none that renders)."""
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    return fig.canvas


def text_overlaps(fig: Figure, tolerance: float = 1.0) -> list[str]:
    """Texts of a figure that overlap each other or stick out of it, once drawn.

    The figure is drawn (on an Agg canvas if it has none that renders) and the window
    extent of every visible, non-empty text is compared, in pixels at the displayed size
    (:data:`DISPLAY_PPI` per inch):

    * two texts overlap when their boxes share more than ``tolerance`` pixels in both
      directions;
    * two tick labels of the same axis collide already when they touch (a gap under
      ``tolerance`` pixels);
    * a text sticks out when its box reaches more than ``tolerance`` pixels beyond the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    tolerance : float
        Pixels of overlap (or of missing gap, for tick labels) tolerated.

    Returns
    -------
    list of str
        One readable line per problem, e.g. ``"x tick label of axes 0 '10' overlaps x tick
        label of axes 0 '20' (3 × 11 px)"``; empty when every text stands free.
    """
    canvas = _ensure_canvas(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    scale = DISPLAY_PPI / fig.dpi
    texts, boxes = [], []
    for t, role, group in _visible_texts(fig):
        bb = t.get_window_extent(renderer)
        if not (np.all(np.isfinite(bb.extents)) and bb.width > 0 and bb.height > 0):
            continue
        texts.append((t, role, group))
        boxes.append(np.asarray(bb.extents, dtype=float) * scale)
    found: list[str] = []

    def name(k: int) -> str:
        text = texts[k][0].get_text().replace("\n", " ")
        return f"{texts[k][1]} {textwrap.shorten(text, 60, placeholder='…')!r}"

    w, h = fig.get_figwidth() * DISPLAY_PPI, fig.get_figheight() * DISPLAY_PPI
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        beyond = {"left": -x0, "bottom": -y0, "right": x1 - w, "top": y1 - h}
        out = {side: d for side, d in beyond.items() if d > tolerance}
        if out:
            found.append(f"{name(k)} sticks out of the figure ("
                         + ", ".join(f"{side} by {d:.0f} px" for side, d in out.items()) + ")")
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            dx = min(a[2], b[2]) - max(a[0], b[0])
            dy = min(a[3], b[3]) - max(a[1], b[1])
            same_axis = texts[i][2] and texts[i][2] == texts[j][2]
            if (same_axis and dx > -tolerance and dy > -tolerance) or (dx > tolerance and dy > tolerance):
                verb = "touches" if same_axis and min(dx, dy) <= tolerance else "overlaps"
                found.append(f"{name(i)} {verb} {name(j)} ({max(dx, 0):.0f} × {max(dy, 0):.0f} px)")
    return found


# --------------------------------------------------------------------------- layout and labels


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(min(width, PAGE_WIDTH), height), layout="constrained")


def _grid(n: int, ncols: int = 3, panel: tuple[float, float] = (3.6, 3.0),
          extra_height: float = 0.0) -> tuple[Figure, list[Any]]:
    """A figure with ``n`` panels on at most ``ncols`` columns (unused panels removed).

    Panels are ``panel`` inches (narrower when the row would pass :data:`PAGE_WIDTH`);
    ``extra_height`` is added for a legend or title below or above them.
    """
    n = max(int(n), 1)
    cols = min(n, ncols)
    rows = -(-n // cols)
    width = min(panel[0] * cols, PAGE_WIDTH)
    fig = _figure(width, panel[1] * rows + extra_height)
    axes = list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def _wrap(text: str, inches: float, size: float = FONT) -> str:
    """``text`` wrapped to lines of about ``inches`` at ``size`` points (existing breaks kept)."""
    width = max(12, int(inches * 72.0 / (0.6 * size)))
    return "\n".join(textwrap.fill(line, width, break_long_words=False) for line in str(text).split("\n"))


def _axes_inches(ax: Any) -> tuple[float, float]:
    """Width and height (inches) of the axes' slot before the layout shrinks it."""
    pos = ax.get_position(original=True)
    w, h = ax.figure.get_size_inches()
    return pos.width * w, pos.height * h


def _ticks(nbins: int = 5) -> mticker.MaxNLocator:
    """A linear axis' locator: at most ``nbins`` intervals of 1, 2, 2.5 or 5 × 10ⁿ (no 1.5 steps)."""
    return mticker.MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10])


def _shared_legend(fig: Figure, axes: Sequence[Any], max_columns: int = 6,
                   extra: Sequence[tuple[Any, str]] = ()) -> None:
    """One legend below the panels, each label once, in as many columns (up to ``max_columns``)
    as fit the figure's width; the figure grows by the legend's height."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    for h, lab in extra:
        handles.append(h)
        labels.append(lab)
    if not labels:
        return
    renderer = _ensure_canvas(fig).get_renderer()
    room = (fig.get_figwidth() - 0.2) * fig.dpi
    for cols in range(min(max_columns, len(labels)), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=cols)
        if cols == 1 or legend.get_window_extent(renderer).width <= room:
            break
        legend.remove()
    fig.set_figheight(fig.get_figheight() + legend.get_window_extent(renderer).height / fig.dpi + 0.05)


def plain(text: Any) -> str:
    """A user string for matplotlib, shown as typed (``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def _units(units: Units | None, voxel_size: float | None = None) -> Units:
    """The declared ``units``, or nothing declared at ``voxel_size`` (1 when unknown)."""
    if units is None:
        h = 1.0 if voxel_size is None or not np.isfinite(float(voxel_size)) else float(voxel_size)
        return Units(voxel_size=h)
    if not isinstance(units, Units):
        raise InputError(f"units: expected a stochhom.units.Units, got {units!r}; build one with "
                         "stochhom.units.units_from_dict({'length': 'um', 'modulus': 'GPa'})")
    return units


def _compound(unit: str) -> bool:
    return any(c in unit for c in " /·*^⁰¹²³⁴⁵⁶⁷⁸⁹")


def _squared(unit: str) -> str:
    """The unit of a variance: ``GPa²``, ``(phase units)²``; ``–`` stays ``–``."""
    if unit in ("", DIMENSIONLESS):
        return DIMENSIONLESS
    return f"({unit})²" if _compound(unit) else f"{unit}²"


def _per(unit: str) -> str:
    """The unit of a density of a quantity in ``unit``: ``1/GPa``, ``1/(phase units)``."""
    if unit in ("", DIMENSIONLESS):
        return DIMENSIONLESS
    return f"1/({unit})" if _compound(unit) else f"1/{unit}"


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _volume_unit(dim: int | None, units: Units) -> str:
    """Unit of an SVE volume: the length unit to the power ``dim`` (``µm²``, ``voxels³``);
    without ``dim``, ``voxel volume units`` (or the declared length unit to the power d)."""
    if dim in (1, 2, 3):
        return units.length_unit(int(dim))
    return f"{units.length_unit(1)}ᵈ" if units.length else "voxel volume units"


def axis_label(name: str, dim: int | None = None, voxel_size: float | None = None,
               units: Units | None = None) -> str:
    """Axis label with its unit of a parameter, property or target name.

    Parameters
    ----------
    name : str
        A parameter (``volume_fraction``, ``correlation_length``, ``volume`` ...), a plotted
        property (``bulk_modulus``, ``mean_conductivity``) or a target.
    dim : int, optional
        Dimension of the SVEs: names the 2D properties (plane-strain κ, tr k / 2) and
        gives the power of the SVE volume's unit.
    voxel_size : float, optional
        The voxel size, when ``units`` is not given: an undeclared length unit is ``voxels``
        when it is 1 (or unknown), else ``voxel-size units``.
    units : stochhom.units.Units, optional
        The study's declared units.

    Returns
    -------
    str
        E.g. ``"SVE volume V [µm²]"``, ``"bulk modulus K [GPa]"``, ``"volume fraction φ [–]"``;
        ``size`` (the SVE edge, a number of voxels) is always in ``voxels``; a name whose unit
        is unknown has no bracket.

    Examples
    --------
    >>> axis_label("volume", 2, units=Units(length="um"))
    'SVE volume V [µm²]'
    >>> axis_label("correlation_length")
    'correlation length ℓ [voxels]'
    """
    u = _units(units, voxel_size)
    if dim is not None and (name, dim) in _PROPERTY_LABELS:
        return _PROPERTY_LABELS[(name, dim)] + u.bracket(name)
    if name == "volume":
        return f"{PARAMETER_LABELS['volume']} [{_volume_unit(dim, u)}]"
    if name == "size":  # the number of voxels along an edge of the SVE
        return f"{PARAMETER_LABELS['size']} [voxels]"
    return _parameter_name(name) + u.bracket(name)


def _parameter_name(name: str) -> str:
    """A parameter's name for a legend or tick label (:data:`PARAMETER_LABELS`, without the unit)."""
    return PARAMETER_LABELS.get(str(name)) or target_label(name)


def _short(name: str) -> str:
    """A parameter's short name in a panel title (``φ``, ``ℓ``, ``R``; else its name)."""
    return _SHORT.get(str(name), plain(name).replace("_", " "))


#: The dimension :func:`target_label` assumes when it is not given (see :func:`label_dimension`).
_LABEL_DIM: contextvars.ContextVar[int | None] = contextvars.ContextVar("stochhom_label_dim", default=None)


@contextlib.contextmanager
def label_dimension(dim: int | None) -> Iterator[None]:
    """Within this context, :func:`target_label` (and every figure that names a target) labels
    targets of a ``dim``-dimensional study: the last conductivity eigenvalue is the "largest".

    The report builds all its figures inside it, so that a figure and a table name a target
    alike.
    """
    token = _LABEL_DIM.set(int(dim) if dim in (1, 2, 3) else None)
    try:
        yield
    finally:
        _LABEL_DIM.reset(token)


def target_label(name: str, dim: int | None = None) -> str:
    """A readable name of a surrogate or RVE target (without its unit, see :func:`target_unit`).

    ===================================  ======================================================
    target                               label
    ===================================  ======================================================
    ``log_X``                            ``ln`` and the label of ``X``
    ``conductivity_eigenvalues_0``       ``conductivity eigenvalue 0 (smallest)``
    ``conductivity_eigenvalues_k``       ``conductivity eigenvalue k (largest)`` for
                                         ``k = dim - 1``, else ``… k (sorted ascending)``
    ``conductivity_i_j``                 ``conductivity k_ij`` (subscript digits)
    ``stiffness_i_j``                    ``stiffness C_ij (Mandel)``
    ``bulk_modulus``, ``shear_modulus``  ``bulk modulus K``, ``shear modulus G``
    ``mean_conductivity``                ``mean conductivity tr k / 2`` (``/ 3``) with ``dim``,
                                         else ``mean conductivity tr k / d (d: dimension)``
    ``phase_fraction_1``                 ``phase fraction φ₁``
    anything else                        the name with spaces for underscores
    ===================================  ======================================================

    Parameters
    ----------
    name : str
        The target.
    dim : int, optional
        Dimension of the SVEs, when known: names the largest eigenvalue (``k = dim - 1``)
        and the ``d`` of the mean conductivity. Default: the dimension of an enclosing
        :func:`label_dimension`, if any.

    Examples
    --------
    >>> target_label("log_conductivity_eigenvalues_0")
    'ln conductivity eigenvalue 0 (smallest)'
    >>> target_label("conductivity_eigenvalues_1"), target_label("conductivity_eigenvalues_1", dim=2)
    ('conductivity eigenvalue 1 (sorted ascending)', 'conductivity eigenvalue 1 (largest)')
    >>> target_label("conductivity_0_1")
    'conductivity k₀₁'
    """
    n = str(name)
    if dim is None:
        dim = _LABEL_DIM.get()
    d = int(dim) if dim is not None else None
    if n.startswith("log_") and len(n) > 4:
        return "ln " + target_label(n[4:], d)
    if m := re.fullmatch(r"conductivity_eigenvalues_(\d+)", n):
        k = int(m.group(1))
        order = "smallest" if k == 0 else "largest" if d is not None and k == d - 1 else "sorted ascending"
        return f"conductivity eigenvalue {k} ({order})"
    if m := re.fullmatch(r"conductivity_(\d)_(\d)", n):
        return "conductivity k" + (m.group(1) + m.group(2)).translate(_SUBSCRIPT)
    if m := re.fullmatch(r"stiffness_(\d)_(\d)", n):
        return "stiffness C" + (m.group(1) + m.group(2)).translate(_SUBSCRIPT) + " (Mandel)"
    if m := re.fullmatch(r"phase_fraction_(\d+)", n):
        return "phase fraction φ" + m.group(1).translate(_SUBSCRIPT)
    if n == "mean_conductivity":
        return f"mean conductivity tr k / {d}" if d is not None else "mean conductivity tr k / d (d: dimension)"
    fixed = {"bulk_modulus": "bulk modulus K", "shear_modulus": "shear modulus G",
             "phase_fraction": "phase fraction φ", "anisotropy_index": "anisotropy index"}
    return fixed.get(n, plain(n).replace("_", " "))


def target_unit(name: str, units: Units | None = None) -> str:
    """Unit of a target, without brackets.

    ``–`` for ln targets (the ln of a property relative to a unit phase input), phase
    fractions and the anisotropy index; a conductivity or modulus takes the declared unit of
    ``units`` (:meth:`stochhom.units.Units.of`), else ``phase units`` (effective properties
    carry the units of the phase laws, which stochhom does not know otherwise).

    Examples
    --------
    >>> target_unit("log_bulk_modulus"), target_unit("bulk_modulus")
    ('–', 'phase units')
    >>> target_unit("conductivity_0_0", Units(conductivity="W/m/K"))
    'W/m/K'
    """
    return _units(units).of(str(name)) or PHASE_UNITS


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
    params.update({k_: v for k_, v in sample_parameters(ens, k).items() if k_ not in (*IDENTIFIERS, "point")})
    return params


def _gallery_shape(n: int, max_columns: int = 4) -> tuple[int, int]:
    """Rows and columns of a gallery of ``n`` images: as few rows as ``max_columns`` allow,
    then as few columns as fill them (4 → 1 × 4, 5 → 2 × 3, 7 → 2 × 4): fewer empty panels
    than rows."""
    n = max(int(n), 1)
    rows = -(-n // max_columns)
    return rows, -(-n // rows)


#: Phase labels shown in a legend (one patch per label) up to this many; more get a colour bar.
_MAX_PHASE_LEGEND = 8


@styled
def gallery_figure(ensemble: xr.Dataset, max_samples: int = 6, *, units: Units | None = None) -> Figure:
    """Label images of the first ``max_samples`` samples (the middle ``z`` slice in 3D).

    The images are square panels on a grid fitted to their number (:func:`_gallery_shape`:
    up to 4 per row, as few empty panels as possible); one colour per phase label, named
    in a legend below. Parameters shared by every sample are given once, in the title;
    those that differ, in each panel's title.

    Parameters
    ----------
    ensemble : xarray.Dataset
        A microstructure ensemble (variable ``phase``, dims ``sample, x, y[, z]``).
    max_samples : int
        Samples shown.
    units : stochhom.units.Units, optional
        The study's units: the axes are in its length unit (voxels when undeclared and the
        voxel size is 1).
    """
    ens = _ensemble(ensemble)
    phase = ens["phase"].transpose("sample", ...)
    n = max(min(int(max_samples), phase.sizes["sample"]), 1)
    dim = phase.ndim - 1
    top = max(int(phase.max()), 1)
    h = float(ens.attrs.get("voxel_size", 1.0))
    u = _units(units, h)
    rows, cols = _gallery_shape(n)
    params = [_parameters(ens, k) for k in range(n)]
    shared = {p: v for p, v in params[0].items()
              if all(p in q and json.dumps(q[p], default=str) == json.dumps(v, default=str) for q in params)}
    varying = [{p: v for p, v in params[k].items() if p not in shared} for k in range(n)]
    side = 3.0 if cols >= 3 else 3.1  # inches per panel: two fit a column, three or four span the page
    width = max(side * cols, 3.8)
    title_lines = 1 + max((1 if v else 0) for v in varying)
    generator = str(ens.attrs.get("generator", "") or "")
    head = f"{plain(generator)} generator" if generator else "parameters"
    text = ", ".join(f"{_parameter_name(p)} = {_fmt(v)}" for p, v in shared.items())
    line = f"{head}{', every sample' if n > 1 else ''}: {text}" if text else (head if generator else "")
    line = _wrap(line, width - 0.3, FONT + 1) if line else ""
    legend = top + 1 <= _MAX_PHASE_LEGEND  # else a colour bar, right of the images
    height = rows * (side + 0.25 * title_lines + 0.05) + 0.3 * (line.count("\n") + 1 if line else 0)
    fig = _figure(width + (0.0 if legend else 0.9), height + (0.4 if legend else 0.0))
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    axes = axes[:n]
    # one colour per phase label: a discrete map with boundaries halfway between the labels
    base = mpl.colormaps["tab10"].colors if top < 10 else mpl.colormaps["viridis"].resampled(top + 1).colors
    cmap = ListedColormap(list(base[: top + 1]), name="phase labels")
    norm = BoundaryNorm(np.arange(-0.5, top + 1.0), cmap.N)
    im = None
    unit = u.length_unit(1)
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
        title = f"sample {ens['sample'].values[k]}" + (", middle z slice" if dim == 3 else "")
        if varying[k]:
            title += "\n" + _wrap(", ".join(f"{_short(p)} = {_fmt(v)}" for p, v in varying[k].items()),
                                  side - 0.2)
        ax.set_title(title)
        if k + cols >= n:  # nothing below: the bottom panel of its column
            ax.set_xlabel(f"x [{unit}]")
        if k % cols == 0:
            ax.set_ylabel(f"y [{unit}]")
    if line:
        fig.suptitle(line)
    if im is not None and legend:
        handles = [Patch(facecolor=cmap(k), edgecolor="0.3", lw=0.5, label=f"phase {k}") for k in range(top + 1)]
        fig.legend(handles=handles, loc="outside lower center", ncols=top + 1)
    elif im is not None:
        bar = fig.colorbar(im, ax=axes, shrink=0.8, ticks=mticker.MaxNLocator(nbins=6, integer=True))
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
def gallery_field_figure(ensemble: xr.Dataset, *, units: Units | None = None) -> Figure:
    r"""Local fields of the gallery's samples (variable ``local_field`` of the gallery written
    by the study runner): one map per sample, on the same colour scale, the phase boundaries
    drawn over it (3D: the middle z slice).

    The field is the flux magnitude :math:`|q|` under a unit macroscopic gradient along x
    (conductivity) or the von Mises stress under a unit macroscopic strain
    :math:`\bar\varepsilon_{11}` (elasticity), each map divided by its own SVE mean (a
    concentration factor: the problems are linear, and the samples' contrasts differ).
    """
    ens = _ensemble(ensemble)
    if "local_field" not in ens:
        raise InputError("the ensemble has no local_field: run the study's gallery stage (stochhom run)")
    field = ens["local_field"].transpose("sample", ...)
    phase = ens["phase"].transpose("sample", ...)
    n = phase.sizes["sample"]
    dim = phase.ndim - 1
    h = float(ens.attrs.get("voxel_size", 1.0))
    u = _units(units, h)
    rows, cols = _gallery_shape(n)
    side = 3.0 if cols >= 3 else 3.1
    width = max(side * cols, 3.8)
    fig = _figure(width + 0.9, rows * (side + 0.3))
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    # each map relative to its own SVE mean: the samples' contrasts differ (the mean flux by 20x in the
    # quickstart), and one absolute scale left the low-contrast ones black
    values = field.values.astype(float)
    axes_mean = tuple(range(1, values.ndim))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = values / np.nanmean(values, axis=axes_mean, keepdims=True)
    finite = values[np.isfinite(values)]
    vmax = float(np.quantile(finite, 0.995)) if finite.size else 1.0  # a few hot voxels do not wash out the map
    quantity = str(field.attrs.get("quantity", "local field"))
    length = u.length_unit(1)
    im = None
    for k, ax in enumerate(axes[:n]):
        img, lab = values[k], phase.isel(sample=k).values
        if dim == 3:
            img, lab = img[:, :, img.shape[2] // 2], lab[:, :, lab.shape[2] // 2]
        nx, ny = img.shape
        im = ax.imshow(img.T, origin="lower", extent=(0, nx * h, 0, ny * h), cmap="magma", vmin=0.0, vmax=vmax,
                       interpolation="nearest")
        if np.unique(lab).size > 1:
            xc, yc = (np.arange(nx) + 0.5) * h, (np.arange(ny) + 0.5) * h
            ax.contour(xc, yc, lab.T.astype(float), levels=np.unique(lab)[:-1] + 0.5, colors="white",
                       linewidths=0.6)
        ax.grid(False)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(mticker.MaxNLocator(nbins=4, steps=[1, 2, 5, 10]))
        ax.set_title(f"sample {ens['sample'].values[k]}" + (", middle z slice" if dim == 3 else ""))
        if k + cols >= n:
            ax.set_xlabel(f"x [{length}]")
        if k % cols == 0:
            ax.set_ylabel(f"y [{length}]")
    label = {"flux_magnitude": "|q| / SVE mean of |q|",
             "von_mises": "von Mises stress / SVE mean",
             "von_mises_in_plane": "in-plane von Mises stress / SVE mean"}.get(quantity, f"{quantity} / SVE mean")
    if im is not None:
        fig.colorbar(im, ax=axes[:n], label=f"{label} [–]", shrink=0.9)
    return fig


def _relative_local_field(ens: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The gallery's ``local_field``, each sample divided by its SVE mean, and the labels."""
    if "local_field" not in ens:
        raise InputError("the ensemble has no local_field: run the study's gallery stage (stochhom run)")
    values = ens["local_field"].transpose("sample", ...).values.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = values / np.nanmean(values, axis=tuple(range(1, values.ndim)), keepdims=True)
    return values, ens["phase"].transpose("sample", ...).values


def gallery_field_statistics(ensemble: xr.Dataset) -> Any:
    r"""Per-phase statistics of the gallery's local field, each sample relative to its SVE mean.

    For sample :math:`s` with field :math:`f` and phase :math:`r` (voxels :math:`\Omega_r`,
    fraction :math:`c_r`), the concentration :math:`a = f/\langle f\rangle` has the phase
    mean :math:`\langle a\rangle_r`, standard deviation, 99th percentile and maximum; the
    phase means average to one, :math:`\sum_r c_r \langle a\rangle_r = 1`.

    Returns
    -------
    pandas.DataFrame
        One row per sample and phase: ``sample``, ``phase``, ``volume_fraction``, ``mean``,
        ``std``, ``p99``, ``max``; a sample whose solve failed (NaN field) is left out.
    """
    ens = _ensemble(ensemble)
    values, labels = _relative_local_field(ens)
    rows = []
    for k, sample in enumerate(ens["sample"].values):
        if not np.all(np.isfinite(values[k])):
            continue
        for ph in np.unique(labels[k]):
            a = values[k][labels[k] == ph]
            rows.append({"sample": int(sample), "phase": int(ph), "volume_fraction": a.size / values[k].size,
                         "mean": float(a.mean()), "std": float(a.std()), "p99": float(np.quantile(a, 0.99)),
                         "max": float(a.max())})
    return pd.DataFrame(rows, columns=["sample", "phase", "volume_fraction", "mean", "std", "p99", "max"])


@styled
def gallery_field_histogram_figure(ensemble: xr.Dataset, bins: int = 50) -> Figure:
    """Per-phase histograms of the gallery's local field relative to its SVE mean, one panel
    per sample (the samples' parameters differ, so they are not pooled): probability
    density per phase on a log scale, whose tails are the local extremes, and each phase's
    mean as a dashed line. The x axis ends at the sample's 99.9 % quantile; the share of
    voxels beyond it is given in the title.
    """
    ens = _ensemble(ensemble)
    values, labels = _relative_local_field(ens)
    ok = np.flatnonzero(np.all(np.isfinite(values.reshape(len(values), -1)), axis=1))
    quantity = str(ens["local_field"].attrs.get("quantity", "local field"))
    n = max(len(ok), 1)
    rows, cols = _gallery_shape(n)
    fig = _figure(max(3.0 * cols, COLUMN_WIDTH), 2.6 * rows + 0.3)
    grid = fig.subplots(rows, cols, squeeze=False, sharey=True)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    top = int(labels.max()) if labels.size else 0
    base = mpl.colormaps["tab10"].colors if top < 10 else mpl.colormaps["viridis"].resampled(top + 1).colors
    label = {"flux_magnitude": "|q| / SVE mean", "von_mises": "von Mises / SVE mean",
             "von_mises_in_plane": "in-plane von Mises / SVE mean"}.get(quantity, f"{quantity} / SVE mean")
    for j, k in enumerate(ok):
        ax, v, lab = axes[j], values[k], labels[k]
        hi = float(np.quantile(v, 0.999))
        edges = np.linspace(0.0, hi, bins + 1)
        for ph in np.unique(lab):
            a = v[lab == ph]
            # densities of the phase's own voxels: each phase's histogram integrates to its share below hi
            dens, _ = np.histogram(a, bins=edges)
            dens = dens / (a.size * np.diff(edges))
            ax.stairs(np.where(dens > 0, dens, np.nan), edges, color=base[int(ph)],
                      label=f"phase {int(ph)}" if j == 0 else None)
            ax.axvline(float(a.mean()), color=base[int(ph)], ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"sample {ens['sample'].values[k]}" + (", every voxel" if v.ndim == 3 else ""))
        if j + cols >= n:
            ax.set_xlabel(f"{label} [–]")
        if j % cols == 0:
            ax.set_ylabel("density per phase [–]")
    if len(ok):
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=top + 1)
    return fig


@styled
def adaptive_history_figure(rounds: list[dict[str, Any]], stop: str = "none", target: str = "") -> Figure:
    """The rounds of an adaptive design: samples added per round (new points and replicates,
    stacked) and the epistemic share of the GP's predictive variance before each round,
    against the samples solved, with the stopping threshold when the rule names it."""
    fig = _figure(PAGE_WIDTH * 0.8, 3.0)
    ax1, ax2 = fig.subplots(1, 2)
    batches = [e for e in rounds if e["added"]]
    r = np.array([e["round"] + 1 for e in batches])
    new = np.array([e["new_points"] for e in batches])
    rep = np.array([e["replicates"] for e in batches])
    ax1.bar(r, new, color="C0", label="new points")
    ax1.bar(r, rep, bottom=new, color="C1", label="replicates")
    ax1.set_xlabel("round [–]")
    ax1.set_ylabel("samples added [–]")
    ax1.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax1.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax1.set_ylim(0, 1.3 * max(1, int((new + rep).max()) if len(batches) else 1))
    ax1.legend(loc="upper right")
    n = np.array([e["samples"] for e in rounds])
    share = np.array([e["epistemic_share"] for e in rounds])
    ax2.plot(n, share, "o-", color="C0", label="epistemic share")
    if stop.startswith("epistemic_share"):
        ax2.axhline(float(stop.split("<")[1]), color="0.3", ls="--", lw=0.9, label=f"stop: {stop}")
    ax2.set_ylim(0, max(1.05 * float(share.max()), 0.05))
    ax2.set_xlabel("samples solved [–]")
    ax2.set_ylabel("epistemic share [–]" + (f" of {target}" if target and len(target) < 30 else ""))
    ax2.legend(loc="upper right")
    return fig


@styled
def s2_figure(ensemble: xr.Dataset, phase: int = 1, *, units: Units | None = None) -> Figure:
    """Radial :math:`S_2(r)` of ``phase`` per parameter group: the ensemble mean and the
    closed form of :func:`s2_theory` where the generator has one (dashed).

    The distance axis is in the length unit of ``units`` (voxels when undeclared and the
    voxel size is 1). One group's legend sits inside the axes; several groups' below them.
    """
    ens = _ensemble(ensemble)
    dim = ens["phase"].ndim - 1
    generator = str(ens.attrs.get("generator", ""))
    u = _units(units, ens.attrs.get("voxel_size"))
    s2 = radial_average(two_point_probability(ens, phase))
    groups: dict[str, list[int]] = {}
    for k in range(ens.sizes["sample"]):
        groups.setdefault(json.dumps(_parameters(ens, k), sort_keys=True, default=str), []).append(k)
    below = len(groups) > 1
    fig = _figure(COLUMN_WIDTH, 3.6)
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
        tag = ", ".join(f"{_short(p)} = {_fmt(v)}" for p, v in varying.items())
        mean = s2.isel(sample=members).mean("sample").values
        count = f"{len(members)} sample{'s' if len(members) != 1 else ''}"
        ax.plot(r, mean, "o", color=color, label=f"measured ({count}){', ' + tag if tag else ''}")
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
    ax.set_xlabel(f"distance r [{u.length_unit(1)}]")
    ax.set_ylabel(f"S₂(r) of phase {phase} [–]")
    ax.set_title(f"two-point probability of phase {phase}" if any_theory
                 else f"two-point probability (no closed form for {plain(repr(generator))})")
    if below:
        _shared_legend(fig, [ax], 2)
    else:
        ax.legend(loc="upper right")
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


def _property_layout(names: Sequence[str], params: Sequence[str]) -> tuple[int, int, list[tuple[str, str, int, int]]]:
    """Rows, columns and ``(property, parameter, row, column)`` of each panel: a row per property
    with its parameters (up to 3 per row), or, with one parameter, the properties side by side."""
    if len(params) == 1:
        cols = min(len(names), 2)
        return (-(-len(names) // cols), cols,
                [(name, params[0], i // cols, i % cols) for i, name in enumerate(names)])
    cols = min(len(params), 3)
    per = -(-len(params) // cols)
    return (per * len(names), cols,
            [(name, p, i * per + j // cols, j % cols) for i, name in enumerate(names) for j, p in enumerate(params)])


@styled
def properties_figure(
    props: xr.Dataset,
    phases: PhaseSpec | None = None,
    parameters: Sequence[str] | None = None,
    summary: xr.Dataset | None = None,
    confidence: float = 0.95,
    *,
    units: Units | None = None,
) -> Figure:
    """Apparent properties against each swept parameter, with their bounds.

    One panel per property (:func:`property_columns`) and swept parameter
    (:func:`swept_parameters`), the panels of a property on the same y-range: the
    converged samples (dots, drawn on top), the mean of each point with its ``confidence``
    interval (:func:`~stochhom.statistics.summarize`, black squares), and, when ``phases`` is
    given, each sample's Voigt/Reuss (grey) and Hashin–Shtrikman (green) bounds
    (:func:`sample_bounds`, thin light dashes behind). The bound markers carry the ``gid``
    ``"<bound>:<property>"`` (e.g. ``"hs_upper:bulk_modulus"``). One legend, below the
    panels. Two panels in a row make a figure of the page's width (6 in each).

    When the bounds cannot be computed (no ``phase_fraction``, e.g. a many-phase study,
    or phases that do not resolve), the figure is drawn without them and its title says
    why. The y-limits are those of the samples and the intervals of their means (with a
    small margin), not of the bounds: bounds beyond them are cut by the axis, which the
    legend says once. On a logarithmic property axis an interval end at or below zero or
    more than ten times beyond the samples is cut at the axis and marked with an open
    triangle (explained in the legend).

    Parameters
    ----------
    units : stochhom.units.Units, optional
        The study's units: properties in its modulus or conductivity unit ("phase units"
        when undeclared), lengths in its length unit.

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
    u = _units(units, props.attrs.get("voxel_size"))
    nrows, ncols, panels = _property_layout(list(cols), params)
    # one panel fits a column; two or three panels in a row span the page (two of 6 in: the many
    # points of a sweep stand apart)
    side = {1: 5.2, 2: 6.0}.get(ncols, 3.9)
    width = side * ncols
    note = _wrap(plain(note), width - 0.3, SMALL_FONT) if note else ""
    fig = _figure(width, 3.2 * nrows + (0.2 * (note.count("\n") + 1) if note else 0.0))
    grid = fig.add_gridspec(nrows, ncols)
    first: dict[str, Any] = {}
    axes = []
    cut_bounds = False
    for name, p, r, c in panels:
        values = cols[name]
        ax = fig.add_subplot(grid[r, c], sharey=first.get(name))  # one y-range per property
        first.setdefault(name, ax)
        axes.append(ax)
        x = props[p].values.astype(float)
        ok = conv & np.isfinite(values)
        ax.plot(x[ok], values[ok], "o", alpha=0.7, ms=4, label="samples", zorder=5)  # on top
        drawn = []
        if bounds is not None:
            b = bounds[name]
            for key, style in (("hs_lower", _HS), ("hs_upper", _HS), ("reuss", _VR), ("voigt", _VR)):
                fin = np.isfinite(b[key])
                if fin.any():
                    label = style["label"] if key in ("hs_lower", "reuss") else "_nolegend_"
                    ax.plot(x[fin], b[key][fin], "_", color=style["color"], ms=7, mew=0.8, alpha=0.55,
                            label=label, gid=f"{key}:{name}", zorder=1)
                    drawn.append(b[key][fin])
        ax.set_xlabel(_wrap(axis_label(p, dim, units=u), side - 0.3))
        ax.set_ylabel(_wrap(axis_label(name, dim, units=u), 2.6))
        _log_if_wide(ax, x, "x")
        log_y = _log_if_wide(ax, values[ok], "y")
        s = summary.sel(variable=name) if p in summary.coords and name in summary["variable"].values else None
        # limits from the samples and the intervals of their means, not the bounds (cut at the axis)
        v = values[ok]
        ends = (np.concatenate([s["ci_low"].values, s["ci_high"].values, s["mean"].values]).astype(float)
                if s is not None else np.zeros(0))
        ends = ends[np.isfinite(ends)]
        if log_y:  # the interval ends that a log axis can show: positive, within 10× of the samples
            v = v[v > 0]
            lo, hi = v.min(), v.max()
            ends = ends[(ends >= lo / 10) & (ends <= hi * 10)]
            if ends.size:
                lo, hi = min(lo, ends.min()), max(hi, ends.max())
            ax.set_ylim(lo / 1.15, hi * 1.15)
        else:
            both = np.concatenate([v, ends])
            lo, hi = both.min(), both.max()
            pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
            ax.set_ylim(lo - pad, hi + pad)
        bottom, top = ax.get_ylim()
        cut_bounds |= any(np.any((d < bottom) | (d > top)) for d in drawn)
        if s is not None:
            _mean_with_intervals(ax, s[p].values.astype(float), s["mean"].values, s["ci_low"].values,
                                 s["ci_high"].values, clip=log_y, gid=f"mean:{name}",
                                 label=f"mean ± {confidence:.0%} CI per point")
        for axis, scale in (("x", ax.get_xscale()), ("y", ax.get_yscale())):
            if scale == "log":
                _log_ticks(ax, axis)
            elif axis == "x" and _few(x):
                ax.set_xticks(np.unique(x[np.isfinite(x)]))
            else:
                (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(_ticks(5))
    extra = [(Line2D([], [], ls="none"), "bounds beyond the axis are cut")] if cut_bounds else []
    _shared_legend(fig, axes, 5, extra)
    if note:
        fig.suptitle(note, fontsize=SMALL_FONT, color="0.3")
    return fig


def _mean_with_intervals(ax: Any, x: np.ndarray, mean: np.ndarray, lo: np.ndarray, hi: np.ndarray, *,
                         clip: bool, gid: str, label: str) -> None:
    """Means with their intervals; with ``clip`` (a log axis with fixed limits) the ends beyond
    the limits are cut at the axis and marked (:data:`_CUT`), so that nothing is hidden silently."""
    mean, lo, hi = (np.asarray(a, dtype=float) for a in (mean, lo, hi))
    below = above = np.zeros(mean.shape, bool)
    if clip:
        bottom, top = ax.get_ylim()
        below = np.isfinite(lo) & (lo < bottom)  # includes ends ≤ 0, which a log axis cannot show
        above = np.isfinite(hi) & (hi > top)
        lo, hi = np.where(below, bottom, lo), np.where(above, top, hi)
    err = np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
    err = np.where(np.isfinite(err), err, 0.0)
    ax.errorbar(x, mean, yerr=err, fmt="s", color="k", ms=4, capsize=3, zorder=4, label=label, gid=gid)
    if below.any() or above.any():
        bottom, top = ax.get_ylim()
        _cut_marks(ax, x[below], bottom, "v", f"cut:{gid}")
        _cut_marks(ax, x[above], top, "^", f"cut:{gid}")
        ax.set_ylim(bottom, top)


def _cut_marks(ax: Any, x: np.ndarray, y: float, marker: str, gid: str) -> None:
    """The markers of interval ends cut at an axis limit ``y``: one style, one legend entry."""
    if np.size(x):
        ax.plot(x, np.full(np.size(x), y), marker, clip_on=False, zorder=4, gid=gid, **_CUT)


def _few(x: np.ndarray) -> bool:
    """Whether the swept values ``x`` are few (2 to 6) and far enough apart to label each."""
    u = np.unique(np.asarray(x, dtype=float)[np.isfinite(x)])
    return 2 <= u.size <= 6 and float(np.diff(u).min()) >= 0.12 * float(u[-1] - u[0])


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
               voxel_size: float | None = None, units: Units | None = None) -> Figure:
    r"""Variance of the apparent property against the SVE volume, log-log, per target.

    Points: the sample variances :math:`D_Z^2(V)` (with their counts); line: the fit
    :math:`K V^{-\alpha}`; the legend, below each panel, gives :math:`\alpha` and the
    integral range :math:`A` with their intervals (``rve.json`` entries, see
    :class:`~stochhom.statistics.rve.VarianceScaling`).

    The variance of a property is in the square of its unit (``GPa²``; ``(phase units)²``
    when undeclared); that of a phase fraction or an ln target is dimensionless. The volume
    axis is in the length unit to the power ``dim`` (``µm²``, ``µm³``; ``voxels²`` when
    undeclared and the voxel size is 1); without ``dim`` it says "voxel volume units".

    Parameters
    ----------
    rve : mapping
        ``rve.json``: ``{target: {"volumes", "variances", "counts", "alpha", ...}}``.
    dim : {2, 3}, optional
        Dimension of the SVEs (``attrs["dim"]`` of the apparent properties).
    voxel_size : float, optional
        Edge of a voxel (``attrs["voxel_size"]``), used when ``units`` is not given.
    units : stochhom.units.Units, optional
        The study's units.
    """
    if not rve:
        raise InputError("no RVE results to plot")
    fig, axes = _grid(len(rve), ncols=3, panel=(4.2, 4.3))
    u = _units(units, voxel_size)
    v_unit = _volume_unit(dim, u)
    for ax, (target, fit) in zip(axes, rve.items()):
        v = np.asarray(fit["volumes"], dtype=float)
        var = np.asarray(fit["variances"], dtype=float)
        counts = [int(c) for c in fit.get("counts", []) or []]
        same = len(set(counts)) == 1
        ax.loglog(v, var, "o", label="sample variance" + (f" (n = {counts[0]} per volume)" if same else ""))
        if counts and not same:  # the counts differ: one label per point, below it
            for vi, di, c in zip(v, var, counts):
                ax.annotate(f"n={c}", (vi, di), textcoords="offset points", xytext=(0, -7), ha="center",
                            va="top", fontsize=SMALL_FONT)
        vv = np.geomspace(v.min(), v.max(), 50)
        alpha, amplitude = float(fit["alpha"]), float(fit["amplitude"])
        ax.loglog(vv, amplitude * vv ** (-alpha), "-",
                  label=f"fit K V^(−α), α = {_ci_text(alpha, fit.get('alpha_ci'))}", gid=f"fit:{target}")
        a_text = _ci_text(fit.get("integral_range"), fit.get("integral_range_ci"))
        ax.plot([], [], " ", label=f"integral range A = {a_text}" + (f" {v_unit}" if a_text != "n/a" else ""))
        if "chi2" in fit and fit["chi2"] is not None:
            ax.plot([], [], " ", label=f"χ² = {float(fit['chi2']):.3g} ({len(v)} volumes)")
        ax.set_title(target_label(target, dim))
        ax.set_xlabel(f"SVE volume V [{v_unit}]")
        ax.set_ylabel(f"variance D²(V) [{_squared(target_unit(target, u))}]")
        ax.margins(x=0.08, y=0.2 if counts and not same else 0.12)
        _log_ticks(ax, "x")
        _log_ticks(ax, "y")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1, borderaxespad=0.0)
    return fig


#: Markers and labels of the boundary conditions in :func:`hierarchy_figure` (softest first).
_CONDITIONS = {"subc": ("v", "static (SUBC)"), "mixed": ("D", "mixed"), "periodic": ("o", "periodic"),
               "kubc": ("^", "kinematic (KUBC)")}


@styled
def hierarchy_figure(hierarchy: Mapping[str, Any], *, dim: int | None = None, voxel_size: float | None = None,
                     units: Units | None = None) -> Figure:
    r"""The boundary-condition hierarchy against the SVE volume (Kanit et al. 2003).

    One row per target: the mean apparent property under each condition with its 95 %
    interval (left; the dotted line is the estimate of the effective property, the
    reference condition's mean at the largest volume) and its standard deviation over
    the SVEs, log-log (right). Every SVE obeys SUBC :math:`\le` mixed, periodic
    :math:`\le` KUBC, so the means are ordered and meet as the SVE grows.

    Parameters
    ----------
    hierarchy : mapping
        ``hierarchy.json`` of ``stochhom run`` (``conditions``, ``targets``: per target
        ``volumes`` and per condition ``mean``, ``mean_low``, ``mean_high``, ``variance``).
    dim, voxel_size, units
        As in :func:`rve_figure`.
    """
    targets = hierarchy.get("targets") or {}
    if not targets:
        raise InputError("no boundary-condition hierarchy to plot")
    conds = list(hierarchy["conditions"])
    fig, axes = _grid(2 * len(targets), ncols=2, panel=(4.2, 3.2))
    u = _units(units, voxel_size)
    v_unit = _volume_unit(dim, u)
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, (target, h) in enumerate(targets.items()):
        ax_m, ax_s = axes[2 * row], axes[2 * row + 1]
        v = np.asarray(h["volumes"], dtype=float)
        unit = target_unit(target, u)
        for c, cond in enumerate(conds):
            marker, label = _CONDITIONS.get(cond, ("s", cond))
            shift = v * 1.035 ** (c - (len(conds) - 1) / 2)  # side by side on the log axis
            mean = np.asarray(h[cond]["mean"], dtype=float)
            lo, hi = (np.asarray(h[cond][k], dtype=float) for k in ("mean_low", "mean_high"))
            err = np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
            ax_m.errorbar(shift, mean, yerr=np.where(np.isfinite(err), err, 0.0), fmt=marker + "-", ms=4,
                          capsize=2, lw=0.9, color=colors[c % len(colors)], label=label, gid=f"mean:{target}:{cond}")
            sd = np.sqrt(np.asarray(h[cond]["variance"], dtype=float))
            ax_s.loglog(v, sd, marker + "-", ms=4, lw=0.9, color=colors[c % len(colors)], label=label,
                        gid=f"std:{target}:{cond}")
        ax_m.axhline(float(h["effective_estimate"]), color="0.4", lw=0.8, ls=":",
                     label=f"effective estimate ({_CONDITIONS.get(h['reference'], ('', h['reference']))[1]}, "
                           "largest SVE)")
        ax_m.set_xscale("log")
        _log_ticks(ax_m, "x")
        ax_m.yaxis.set_major_locator(_ticks())
        _log_ticks(ax_s, "x")
        _log_ticks(ax_s, "y")
        name = target_label(target, dim)
        ax_m.set_title(f"{name}: mean [95 % CI]")
        ax_s.set_title(f"{name}: standard deviation")
        ax_m.set_ylabel(f"mean [{unit}]" if unit else "mean")
        ax_s.set_ylabel(f"std [{unit}]" if unit else "std")
        for ax in (ax_m, ax_s):
            ax.set_xlabel(f"SVE volume V [{v_unit}]")
    _shared_legend(fig, axes, 3)
    return fig


@styled
def fit_figure(gof: Mapping[str, Any], images: Mapping[str, np.ndarray] | None = None, *,
               units: Units | None = None, voxel_size: float | None = None) -> Figure:
    r"""Goodness of fit of a random-set model to a specimen: the specimen's two-point
    probability :math:`S_2(r)` and lineal path :math:`L(z)` against the mean and the
    ±2 standard-deviation band of an ensemble drawn from the fitted parameters (the
    window the specimen's curves should lie in if it could have been drawn from the model).

    Parameters
    ----------
    gof : mapping
        ``fit.json`` of ``stochhom run`` (:func:`~stochhom.microstructure.fitting.goodness_of_fit`
        as lists: ``r``, ``s2_*``, ``z``, ``lineal_*``, ``n``, ``generator``).
    images : mapping, optional
        ``specimen`` and ``model``: the segmented specimen's phase of interest and one
        sample of the fitted model of the same shape (2D arrays), shown above the curves.
    """
    u = _units(units, voxel_size)
    fig, axes = _grid(4 if images else 2, ncols=2, panel=(3.4, 3.0))
    ax1, ax2 = axes[-2:]
    n = int(gof.get("n", 0))
    if images:
        h = float(gof.get("voxel_size", 1.0))
        for ax, key, title in ((axes[0], "specimen", "specimen (segmented)"),
                               (axes[1], "model", f"a sample of the fitted {plain(gof.get('generator', 'model'))} "
                                                  "model")):
            img = np.asarray(images[key])
            ax.imshow(img.T, origin="lower", cmap="gray_r", interpolation="antialiased",
                      extent=(0, img.shape[0] * h, 0, img.shape[1] * h))
            ax.grid(False)
            ax.set_title(title)
            ax.set_xlabel(f"x [{u.length_unit(1)}]")
            ax.set_ylabel(f"y [{u.length_unit(1)}]")
    for ax, x, key, xlabel, title in ((ax1, "r", "s2", f"distance r [{u.length_unit(1)}]", "two-point probability S₂"),
                                      (ax2, "z", "lineal", f"segment length z [{u.length_unit(1)}]",
                                       "lineal path L")):
        xs = np.asarray(gof[x], dtype=float)
        mean = np.asarray(gof[f"{key}_mean"], dtype=float)
        sd = np.asarray(gof[f"{key}_std"], dtype=float)
        ax.fill_between(xs, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.25, lw=0,
                        label=f"fitted model: ±2 std ({n} samples)")
        ax.plot(xs, mean, "-", color="C0", label="fitted model: mean")
        spec = np.asarray(gof[f"{key}_specimen"], dtype=float)
        ax.plot(xs, spec, "o", ms=3, color="k", label="specimen")
        if key == "lineal":  # L(z) vanishes beyond a few chords: show where it lives
            alive = np.flatnonzero(np.maximum(spec, mean + 2 * sd) > 1e-3 * max(spec[0], 1e-300))
            if alive.size and alive[-1] + 1 < xs.size:
                ax.set_xlim(xs[0] - 0.02 * xs[alive[-1]], 1.3 * xs[alive[-1]] + 1e-12)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{title.split()[-1]} [–]")
        ax.set_title(title)
        ax.yaxis.set_major_locator(_ticks())
    _shared_legend(fig, [ax1, ax2], 3)
    return fig


# --------------------------------------------------------------------------- propagation and sensitivity


#: Dash patterns of the mean lines of the models of a propagation figure (one per model, in turn).
_MEAN_DASHES = ((0, (5.0, 2.0)), (0, (1.5, 1.5)), (0, (7.0, 2.0, 1.5, 2.0)), (0, (3.0, 3.0)),
                (0, (7.0, 2.0, 1.5, 2.0, 1.5, 2.0)))


def _density(y: np.ndarray, grid: np.ndarray, positive: bool) -> np.ndarray:
    """Kernel density estimate of the samples ``y`` at ``grid``; with ``positive``, that of ``ln y``
    transformed back (the Jacobian ``1/x``), so that no density falls at or below zero."""
    if positive:
        return stats.gaussian_kde(np.log(y))(np.log(grid)) / grid
    return stats.gaussian_kde(y)(grid)


@styled
def propagation_figure(samples: Mapping[str, Any], target: str, unit: str = "",
                       means: Mapping[str, float] | None = None, *, units: Units | None = None) -> Figure:
    """Density of a propagated output, one step histogram and kernel density estimate per model.

    The density is estimated only over the range the samples cover (none outside their
    minimum and maximum). For positive samples (moduli, conductivities) it is the kernel
    density estimate of ``ln y`` transformed back with its Jacobian ``1/y``, so that it
    stays on the physical side of zero and follows a skewed distribution; the x-axis is
    logarithmic when the samples span more than a factor 20. ``unit`` defaults to
    :func:`target_unit` of ``target`` (with ``units``, the study's declared units).
    ``means`` (per model) are the propagated means of the study's ``propagation.json``,
    marked (dashed, one dash pattern per model, in its colour) and written in the legend,
    so that the figure shows the same number as the tables (the samples drawn here are a
    subsample); without them the mean of the samples is shown. The legend is below the axes.
    """
    if not samples:
        raise InputError(f"no propagated samples of {target!r} to plot")
    fig = _figure(COLUMN_WIDTH, 3.4)
    ax = fig.add_subplot()
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    data = {}
    for model, y in samples.items():
        y = np.asarray(y, dtype=float).reshape(-1)
        data[model] = y[np.isfinite(y)]
    pooled = np.concatenate([y for y in data.values()]) if data else np.zeros(0)
    positive = bool(pooled.size and pooled.min() > 0)
    log_x = positive and pooled.max() / pooled.min() > 20
    if log_x:
        ax.set_xscale("log")
    handles: list[tuple[Any, str]] = []
    for k, ((model, y), color) in enumerate(zip(data.items(), colors * 10)):
        if y.size == 0:
            continue
        lo, hi = float(y.min()), float(y.max())
        if hi > lo:
            bins = np.geomspace(lo, hi, 41) if log_x else np.linspace(lo, hi, 41)
            ax.hist(y, bins=bins, density=True, histtype="step", lw=0.8, alpha=0.6, color=color, zorder=2)
        if y.size > 2 and hi > lo:
            grid = np.geomspace(lo, hi, 400) if positive else np.linspace(lo, hi, 400)
            line, = ax.plot(grid, _density(y, grid, positive), color=color, lw=1.8, zorder=3,
                            gid=f"kde:{model}", label=f"{plain(model)} (KDE; steps: histogram)")
            handles.append((line, line.get_label()))
        m = float(means[model]) if means is not None and model in means else float(y.mean())
        mean = ax.axvline(m, color=color, ls=_MEAN_DASHES[k % len(_MEAN_DASHES)], lw=1.4, zorder=4,
                          gid=f"mean:{model}", label=f"{plain(model)} mean = {m:.4g}")
        handles.append((mean, mean.get_label()))
    u = plain(unit) if unit else target_unit(target, units)
    ax.set_xlabel(_wrap(f"{target_label(target)} [{u}]", COLUMN_WIDTH - 1.0))
    ax.set_ylabel(f"probability density [{_per(u)}]")
    ax.set_ylim(bottom=0)
    if log_x:
        _log_ticks(ax, "x")
    else:
        ax.xaxis.set_major_locator(_ticks(6))
    with mpl.rc_context({"legend.handlelength": 3.2}):  # long enough to show each dash pattern
        _shared_legend(fig, [], 2, handles)
    return fig


#: The y-range of the Sobol figure: indices lie in [0, 1]; an interval end beyond it is cut at
#: the axis and marked (its value is in the report's table).
SOBOL_LIMITS = (-0.1, 1.1)


_SHARE_SOURCES = (("aleatoric", "SVE scatter", "#8c564b"), ("epistemic", "surrogate (epistemic)", "#7f7f7f"),
                  ("unsplit", "scatter + surrogate (unsplit)", "#bcbd22"))


@styled
def sobol_figure(indices: Mapping[str, Mapping[str, Any]], target: str, *, units: Units | None = None) -> Figure:
    """Sobol indices per input with intervals, and the shares of every source of variance.

    Left: first-order (solid) and total (hatched) indices per input, one colour per model,
    as shares of the whole output variance when the indices carry ``shares``
    (``relative_to="total"``, as the study runner writes them), else of the mean response's
    variance. The y-axis is fixed to :data:`SOBOL_LIMITS`; a bar or interval end beyond it
    is cut at the axis and marked with an open triangle, explained once in the legend (the
    values are in the report's table). No numbers are written on the bars. Right (with
    ``shares``): one stacked bar per model, the whole variance split into the first-order
    effect of each input, their interactions, the SVE scatter and the surrogate's
    uncertainty, adding up to 1 (shares of 6 % and more are written in their segment).

    ``units`` is accepted for a uniform signature: Sobol indices are dimensionless.

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
    bars = 2 * len(indices)
    width_left = min(max(4.6, 0.32 * bars * len(names) + 1.4), 7.0) if whole else COLUMN_WIDTH
    width_right = 1.6 + 0.8 * len(indices) + 2.9
    fig = _figure(width_left + (width_right if whole else 0.0), 3.6)
    if whole:
        grid = fig.add_gridspec(1, 2, width_ratios=[width_left, width_right])
        ax = fig.add_subplot(grid[0, 0])
    else:
        ax = fig.add_subplot()
    x = np.arange(len(names))
    width = 0.8 / bars
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    lim = SOBOL_LIMITS
    below, above = [], []
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
            ends = np.vstack([v, lo, hi])
            below += list((x + offset)[np.any(np.isfinite(ends) & (ends < lim[0]), axis=0)])
            above += list((x + offset)[np.any(np.isfinite(ends) & (ends > lim[1]), axis=0)])
    slot = _axes_inches(ax)[0] / max(len(names), 1)
    ax.set_xticks(x, [_wrap(_parameter_name(n), slot, SMALL_FONT) for n in names])
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="x", visible=False)
    ax.set_ylabel("Sobol index: share of the whole variance [–]" if whole
                  else "Sobol index: share of Var E[Y | θ] [–]")
    ax.set_title(_wrap(f"Sobol indices of {target_label(target)}", width_left - 0.6))
    ax.set_ylim(*lim)
    ax.axhline(0.0, color="k", lw=0.8)
    _cut_marks(ax, np.asarray(below), lim[0], "v", "cut:sobol")
    _cut_marks(ax, np.asarray(above), lim[1], "^", "cut:sobol")
    handles, labels = ax.get_legend_handles_labels()
    keep = dict(zip(labels, handles))
    if _CUT["label"] in keep:  # the cut marker last, named for where its values are
        keep["interval cut at the axis (values in the table)"] = keep.pop(_CUT["label"])
    _shared_legend(fig, [], 4, [(h, lab) for lab, h in keep.items()])
    if whole:
        _shares_panel(fig.add_subplot(grid[0, 1]), indices, names)
    return fig


def _shares_panel(ax: Any, indices: Mapping[str, Mapping[str, Any]], names: list[str]) -> None:
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
            if value >= 0.06:
                ax.text(j, bottom + value / 2, f"{100 * value:.0f} %", ha="center", va="center",
                        fontsize=SMALL_FONT, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                                   "alpha": 0.8})
            bottom += value
    ax.set_xticks(range(len(models)), [plain(m) for m in models])
    ax.tick_params(axis="x", length=0)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("share of the whole variance [–]")
    ax.set_title("where the variance comes from")
    ax.grid(axis="x", visible=False)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.legend(list(seen.values())[::-1], list(seen.keys())[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0))


# --------------------------------------------------------------------------- validation (validation.plots, styled)


def _select(table: pd.DataFrame, model: str, target: str) -> pd.DataFrame:
    t = table[(table["model"].astype(str) == str(model)) & (table["target"].astype(str) == str(target))]
    if t.empty:
        raise InputError(f"no rows for model {model!r} and target {target!r}")
    t = t.reset_index(drop=True)
    return t.assign(output=t["output"].astype(str)) if "output" in t else t.assign(output="0")


@styled
def parity_figure(predictions: pd.DataFrame, model: str, target: str, unit: str = "", *,
                  units: Units | None = None) -> Figure:
    """Out-of-fold predictions against observations (:func:`~stochhom.validation.plots.parity_plot`).

    The axes name the target by :func:`target_label`; ``unit`` defaults to
    :func:`target_unit` (with ``units``, the study's declared units).
    """
    t = _select(predictions, model, target)
    u = plain(unit) if unit else target_unit(target, units)
    ends = {"lower": t["lower"], "upper": t["upper"]} if {"lower", "upper"} <= set(t.columns) else {}
    fig = plots.parity_plot(t["y"], t["mean"], t["std"], label=target_label(target), unit=u, **ends)
    fig.set_size_inches(5.2, 4.4)
    ax = fig.axes[0]
    ax.set_xlabel(_wrap(f"observed {target_label(target)} [{u}]", 4.0))
    ax.set_ylabel(_wrap(f"predicted {target_label(target)} [{u}]", 3.4) + "\n(bars: 95 % interval)")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(_ticks(5))
    ax.set_title(f"{plain(model)}: grouped-CV predictions")
    return fig


def _coverage_level(metric: str) -> float | None:
    m = re.fullmatch(r"coverage_([0-9.]+)", str(metric))
    return float(m.group(1)) if m else None


@styled
def calibration_figure(predictions: pd.DataFrame, model: str, target: str,
                       check_alpha: float | None = 0.01, *, units: Units | None = None) -> Figure:
    """Coverage of central intervals (:func:`~stochhom.validation.plots.calibration_plot`).

    The grey band is the pointwise binomial 95 % band of each level alone. With
    ``check_alpha`` (default 0.01, the report's verdict), the levels of
    :func:`~stochhom.validation.calibration_check` are added: the acceptance band of each
    level (black bars, Bonferroni over the levels and the KS test at the family-wise level
    ``check_alpha``) and its observed coverage (green inside, red outside); the title gives
    the verdict. ``None`` leaves them out. The legend is right of the axes.

    ``units`` is accepted for a uniform signature: coverages are dimensionless.
    """
    t = _select(predictions, model, target)
    if "z" in t:  # standardized (latent) residuals: calibration is invariant under the output map
        y = t["z"].to_numpy(float)
        mean, std = np.zeros_like(y), np.ones_like(y)
    else:
        y, mean, std = (t[c].to_numpy(float) for c in ("y", "mean", "std"))
    fig = plots.calibration_plot(y, mean, std)
    fig.set_size_inches(COLUMN_WIDTH, 4.0)
    ax = fig.axes[0]
    for artist in (*ax.collections, *ax.lines):
        if artist.get_label() == "binomial 95 % band":
            artist.set_label("pointwise binomial 95 % band")
        elif artist.get_label() == "observed":
            artist.set_label(f"observed ({len(artist.get_xdata())} levels)")
    title = f"{plain(model)}: {target_label(target)}"
    if check_alpha is not None:
        try:
            chk = calibration_check(y, mean, std, alpha=check_alpha)
        except StochhomError as exc:
            title += "\n" + _wrap(f"check not run: {plain(exc)}", 3.4)
        else:
            lv = np.asarray(chk.levels, dtype=float)
            cov = np.asarray(chk.coverage, dtype=float).reshape(len(lv), -1)[:, 0]
            lower = np.asarray(chk.lower, dtype=float).reshape(-1)
            upper = np.asarray(chk.upper, dtype=float).reshape(-1)
            ok = np.asarray(chk.level_passed).reshape(len(lv), -1)[:, 0]
            ax.errorbar(lv, lv, yerr=[lv - lower, upper - lv], fmt="none", ecolor="k", elinewidth=1.2, capsize=4,
                        zorder=4, label=f"acceptance band of the check\n(family-wise α = {check_alpha:g})")
            for mask, color, text in ((ok, "#2ca02c", "inside its band"), (~ok, "#d62728", "outside its band")):
                if mask.any():
                    ax.plot(lv[mask], cov[mask], "D", color=color, ms=5, mec="k", mew=0.5, zorder=5,
                            label=f"checked level, {text}")
            ks = float(np.atleast_1d(chk.ks_pvalue)[0])
            title += f"\ncheck {'passed' if chk.passed else 'failed'} (n = {chk.n}, KS p = {ks:.2g})"
    ax.set_title(_wrap(title, 3.8))
    ax.set_xlabel("nominal coverage of the central interval [–]")
    ax.set_ylabel("observed coverage [–]")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig


def _metric_axis(metric: str, target: str, units: Units | None = None) -> str:
    """y label of a validation metric, with its unit."""
    unit = target_unit(target, units)
    level = _coverage_level(metric)
    if level is not None:
        return f"coverage of the {level:.0%} interval [–]"
    return {"rmse": f"RMSE [{unit}]", "mae": f"MAE [{unit}]", "crps": f"CRPS [{unit}]",
            "max_error": f"max error [{unit}]", "nlpd": "NLPD [nats]", "r2": "R² [–]",
            "miscalibration_area": "miscalibration area [–]"}.get(str(metric), f"{plain(metric)}")


_METRIC_ORDER = ("rmse", "mae", "crps", "r2", "nlpd")
_METRIC_NAMES = {"rmse": "RMSE", "mae": "MAE", "crps": "CRPS", "nlpd": "NLPD", "r2": "R²", "max_error": "max error"}


def _metric_order(metrics: Sequence[str]) -> list[str]:
    rank = {m: k for k, m in enumerate(_METRIC_ORDER)}
    return sorted(dict.fromkeys(map(str, metrics)), key=lambda m: (rank.get(m, len(rank)), m))


@styled
def leakage_figure(leakage: pd.DataFrame, model: str, target: str, *, units: Units | None = None) -> Figure:
    """Naive against grouped K-fold (the table of
    :func:`~stochhom.validation.leakage_demonstration`), one small panel per metric with its
    own axis: RMSE and CRPS in the target's unit (``units``: the study's declared units),
    NLPD in nats (either may be negative for NLPD), and coverage with its nominal level
    (dashed). One legend below the panels."""
    t = _select(leakage, model, target)
    if not {"metric", "naive", "grouped"} <= set(t.columns):
        raise InputError("expected the table returned by leakage_demonstration()")
    metrics = _metric_order(t["metric"])
    fig, axes = _grid(len(metrics), ncols=4, panel=(3.0, 3.0), extra_height=0.3)
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
            ax.axhline(level, color="0.3", ls="--", lw=1, label="nominal coverage")
            ax.set_ylim(0, 1.05)
        else:
            ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(x, [f"output {o}" for o in outputs] if len(outputs) > 1 else [""])
        ax.tick_params(axis="x", length=0)
        ax.yaxis.set_major_locator(_ticks(5))
        ax.set_ylabel(_metric_axis(metric, target, units))
        name = _METRIC_NAMES.get(metric, plain(metric))
        ax.set_title(f"coverage, nominal {level:g}" if level is not None
                     else f"{name} (lower is better)" if metric in ("rmse", "mae", "crps", "nlpd") else name)
        ax.grid(axis="x", visible=False)
    _shared_legend(fig, axes, 3)
    fig.suptitle(_wrap(f"{plain(model)}: leakage, {target_label(target)}", fig.get_figwidth() - 0.4, FONT + 1))
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


#: Label of the invisible legend entry that explains the counts written next to the points.
_COUNT_NOTE = "n = test points of each set (first panel)"

#: Height (points) of a row of count labels at the top of a panel.
_COUNT_ROW = 12.0


def _y_room(ax: Any, values: np.ndarray, fraction: float) -> None:
    """Raise the top of the y-axis so that ``values`` stay below ``1 - fraction`` of its height
    (measured on the axis' scale: linear or logarithmic)."""
    v = np.asarray(values, dtype=float)
    lo, hi = ax.get_ylim()
    log = ax.get_yscale() == "log"
    v = v[np.isfinite(v) & (v > 0)] if log else v[np.isfinite(v)]
    if not v.size or fraction >= 0.9:
        return
    to, back = (np.log10, lambda t: 10.0 ** t) if log else (lambda t: t, lambda t: t)
    top = to(lo) + (to(max(float(v.max()), lo)) - to(lo)) / (1.0 - fraction)
    if top > to(hi):
        ax.set_ylim(lo, back(top))


def _counts(ax: Any, x: Sequence[float], counts: Sequence[float], values: Sequence[float]) -> None:
    """The count behind each point, in a row at the top of the panel (in the first panel only: it
    is the same in every one), above its point: away from the points, intervals and the dashed
    reference line.

    A label that would touch its neighbour goes to a second row (a third ...). The axis is
    raised so that every value of ``values`` (the points, interval ends and reference level)
    stays below the rows; a label near either end of the axis is shifted inside it."""
    items = [(float(xi), float(n)) for xi, n in zip(x, counts) if np.isfinite(xi) and np.isfinite(n)]
    if not items:
        return
    fig = ax.figure
    renderer = _ensure_canvas(fig).get_renderer()
    if fig.get_layout_engine() is not None:
        fig.get_layout_engine().execute(fig)  # the axes' final width, to measure the labels against
    box = ax.get_window_extent(renderer)
    pt = fig.dpi / 72.0
    rows: list[list[tuple[float, float]]] = []
    for xi, n in sorted(items):
        label = ax.annotate(f"n={n:.0f}", (xi, 1.0), xycoords=("data", "axes fraction"), textcoords="offset points",
                            xytext=(0, -2), ha="center", va="top", fontsize=SMALL_FONT, gid="count")
        width = label.get_window_extent(renderer).width
        cx = ax.transData.transform((xi, 1.0))[0]
        shift = max(0.0, box.x0 + 2 * pt - (cx - width / 2)) - max(0.0, cx + width / 2 - (box.x1 - 2 * pt))
        x0, x1 = cx + shift - width / 2, cx + shift + width / 2
        row = next((k for k, r in enumerate(rows) if all(x0 > b + 4 * pt or x1 < a - 4 * pt for a, b in r)),
                   len(rows))
        if row == len(rows):
            rows.append([])
        rows[row].append((x0, x1))
        label.xyann = (shift / pt, -2 - row * _COUNT_ROW)
    # the rows take this share of the axes' height (less the title and legend added later), plus a gap
    height = max(box.height - 0.35 * fig.dpi, 1.0)
    _y_room(ax, np.asarray(values, dtype=float), ((4 + len(rows) * _COUNT_ROW) * pt) / height + 0.04)


def _ratio_scale(ax: Any, values: np.ndarray, ends: np.ndarray | None = None) -> None:
    """A logarithmic y-axis for a ratio panel whose largest value or interval end is above 10, or
    whose values span a decade: on a linear axis the near shells would be flattened."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    e = np.asarray(ends if ends is not None else [], dtype=float)
    e = e[np.isfinite(e) & (e > 0)]
    if (v.size and (v.max() > 10 or v.max() / v.min() >= 10)) or (e.size and e.max() > 10):
        ax.set_yscale("log")


def _ood_axes(ax: Any, metric: str, target: str, units: Units | None, level: float | None, reference: str) -> None:
    """Title, reference line and y label of one panel of the out-of-distribution figures."""
    if level is not None:
        ax.axhline(level, color="0.3", ls="--", lw=1, label=f"nominal {level:g}")
        ax.set_ylim(0, 1.1)
        ax.set_ylabel(_metric_axis(metric, target, units))
        ax.set_title("coverage (not a ratio)")
        return
    ax.axhline(1.0, color="k", ls="--", lw=1, label="no degradation")
    if metric == "nlpd":  # exp(NLPD(set) − NLPD(ref.)): how many times less likely the set's values are
        ax.set_ylabel("density ratio exp(ΔNLPD) [–]\n" + ("ΔNLPD = NLPD(OOD) − NLPD(ID)" if reference == "ID"
                                                          else "ΔNLPD = NLPD(shell) − NLPD(ref.)"))
        ax.set_title("density ratio exp(ΔNLPD)\n(above 1: worse)")
    else:
        name = _METRIC_NAMES.get(metric, plain(metric))
        ax.set_ylabel(f"{name} ratio OOD / in-distribution [–]" if reference == "ID"
                      else f"{name} ratio to the reference [–]")
        ax.set_title(f"{name} ratio (above 1: worse)")


def _finish_y(ax: Any) -> None:
    """Ticks of an out-of-distribution panel once its limits are final."""
    if ax.get_yscale() == "log":
        _log_ticks(ax, "y")


@styled
def degradation_figure(table: pd.DataFrame, model: str, target: str,
                       validation: pd.DataFrame | None = None, *, units: Units | None = None) -> Figure:
    r"""Out-of-distribution metrics against the distance to the training box, one panel per metric.

    From the table of :func:`~stochhom.validation.degradation` (``degradation.csv``):

    * coverage: the coverage itself (a ratio of coverages is not a degradation), with the
      nominal level dashed;
    * NLPD: the predictive density ratio :math:`\exp(\Delta\mathrm{NLPD})`,
      :math:`\Delta\mathrm{NLPD} = \mathrm{NLPD}_{ood} - \mathrm{NLPD}_{id}`: how many times
      less likely the OOD observations are under the predictive law (1: no degradation,
      above 1: worse); the panel's title and axis both name it;
    * RMSE and other metrics: the ratio OOD / in-distribution (1: no degradation).

    A ratio panel is logarithmic when a ratio exceeds 10 or the ratios span a decade. The
    in-distribution reference (distance 0) is drawn as a square. The number of test points
    of each set is written in a row at the top of the first panel, above its point (the
    same in every panel), when the table has an ``n`` column or ``validation`` (the
    ``validation.csv`` table of the same run) is given. ``units``: the study's declared units.
    """
    t = _select(table, model, target)
    if not {"distance", "metric", "ratio", "value", "split"} <= set(t.columns):
        raise InputError("expected the table returned by degradation()")
    counts = _shell_counts(t, validation, model, target)
    metrics = _metric_order(t["metric"])
    fig, axes = _grid(len(metrics), ncols=4, panel=(3.1, 3.2), extra_height=0.3)
    outputs = list(dict.fromkeys(t["output"]))
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    first: tuple[np.ndarray, list[float]] | None = None  # distances and counts of the first panel
    values = np.zeros(0)
    for i, (ax, metric) in enumerate(zip(axes, metrics)):
        level = _coverage_level(metric)
        for o, color in zip(outputs, colors * 10):
            sub = t[(t["metric"].astype(str) == metric) & (t["output"] == o)]
            sub = sub.sort_values("distance")
            y = (sub["value"] if level is not None else sub["ratio"]).to_numpy(float)
            d = sub["distance"].to_numpy(float)
            ax.plot(d, y, "-", color=color, lw=1.0, label=f"output {o}" if len(outputs) > 1 else None)
            ref = (sub["split"].astype(str) == "test").to_numpy()
            ax.plot(d[~ref], y[~ref], "o", color=color, label="OOD shells" if o == outputs[0] else None)
            ax.plot(d[ref], y[ref], "s", color=color, mfc="white",
                    label="in-distribution test" if o == outputs[0] else None)
            if counts and o == outputs[0] and i == 0:
                first = (d, [counts.get(s, np.nan) for s in sub["split"].astype(str)])
        _ood_axes(ax, metric, target, units, level, "ID")
        vals = t.loc[t["metric"].astype(str) == metric, "value" if level is not None else "ratio"].to_numpy(float)
        if level is None:
            _ratio_scale(ax, vals)
        ax.set_xlabel(_wrap("distance to the training box [box widths]", 2.6))
        ax.xaxis.set_major_locator(_ticks(4))
        ax.margins(y=0.15)
        if i == 0:
            values = np.append(vals, 1.0 if level is None else level)
    if first is not None:
        _counts(axes[0], *first, values)
    for ax in axes:
        _finish_y(ax)
    extra = [(Line2D([], [], ls="none"), _COUNT_NOTE)] if counts else []
    _shared_legend(fig, axes, 6, extra)
    fig.suptitle(_wrap(f"{plain(model)}: out-of-distribution degradation, {target_label(target)}",
                       fig.get_figwidth() - 0.4, FONT + 1))
    return fig


@styled
def ood_figure(table: pd.DataFrame, model: str, target: str, *, units: Units | None = None) -> Figure:
    r"""Out-of-distribution metrics against the distance to the training box, with intervals.

    From the table of :func:`~stochhom.validation.ood_evaluation` (``ood.csv``), one panel
    per metric: RMSE and CRPS as ratios to their in-box (reference) value, NLPD as the
    predictive density ratio :math:`\exp(\Delta\mathrm{NLPD})` (title and axis say so; above
    1: worse), coverage as itself (nominal dashed), each with its 95 % bootstrap interval
    over the groups. A ratio panel is logarithmic when a ratio or an interval end exceeds 10
    (or the ratios span a decade). The reference (distance 0) is a square; the number of
    samples behind each point is written in a row at the top of the first panel, above the
    point (the same in every panel). ``units``: the study's declared units.
    """
    t = _select(table, model, target).sort_values("distance_mean")
    panels = [m for m in ("rmse", "nlpd", "crps", "coverage_0.95") if m in t.columns]
    fig, axes = _grid(len(panels), ncols=4, panel=(3.1, 3.2), extra_height=0.3)
    ref = (t["split"].astype(str) == "reference").to_numpy()
    d = t["distance_mean"].to_numpy(float)
    first = np.zeros(0)
    for i, (ax, metric) in enumerate(zip(axes, panels)):
        level = _coverage_level(metric)
        col = metric if level is not None else f"{metric}_ratio"
        y = t[col].to_numpy(float)
        lo = t.get(f"{col}_low", pd.Series(np.nan, index=t.index)).to_numpy(float)
        hi = t.get(f"{col}_high", pd.Series(np.nan, index=t.index)).to_numpy(float)
        if level is None:
            lo, hi = np.where(ref, 1.0, lo), np.where(ref, 1.0, hi)
            _ratio_scale(ax, y, np.concatenate([lo, hi]))
        err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
        ax.errorbar(d, y, yerr=np.where(np.isfinite(err), err, 0.0), fmt="-", color="C0", ecolor="0.3",
                    capsize=3, lw=1.0)
        ax.plot(d[~ref], y[~ref], "o", color="C0", label="OOD shells")
        ax.plot(d[ref], y[ref], "s", color="C0", mfc="white", label="in the box (reference)")
        _ood_axes(ax, metric, target, units, level, "reference")
        ax.set_xlabel(_wrap("distance to the training box [box widths]", 2.6))
        ax.xaxis.set_major_locator(_ticks(4))
        ax.margins(y=0.15)
        if i == 0:
            first = np.concatenate([y, hi, [1.0 if level is None else level]])
    _counts(axes[0], d, t["n_samples"].to_numpy(float), first)
    for ax in axes:
        _finish_y(ax)
    _shared_legend(fig, axes, 6, [(Line2D([], [], ls="none"),
                                   "n = samples of each set (first panel)")])
    fig.suptitle(_wrap(f"{plain(model)}: out of distribution, {target_label(target)}",
                       fig.get_figwidth() - 0.4, FONT + 1))
    return fig


# --------------------------------------------------------------------------- the structure stage


def quantity_unit(kind: str, units: Units | None = None) -> str:
    """Unit of a structural quantity of interest (:mod:`stochhom.structure.qoi`), or ``""``."""
    u = _units(units)
    if kind == "displacement":
        return u.length_unit(1)
    if kind == "max_von_mises":
        return u.of("bulk_modulus") or PHASE_UNITS
    return ""


def _part_axes(points: np.ndarray, cells: np.ndarray, n: int) -> tuple[Figure, list[Any]]:
    """Panels for ``n`` fields over a 2D part: stacked when the part is elongated."""
    span = np.ptp(points, axis=1)
    aspect = float(span[0] / max(span[1], 1e-300))
    if aspect > 2.5:
        h = max(PAGE_WIDTH / aspect * 0.9, 0.9)
        fig = _figure(PAGE_WIDTH, n * (h + 0.75))
        axes = list(np.atleast_1d(fig.subplots(n, 1, squeeze=False)).ravel())
    else:
        fig, axes = _grid(n, ncols=3, panel=(3.4, 3.0))
    return fig, axes


def _draw_part(ax: Any, points: np.ndarray, cells: np.ndarray, values: np.ndarray, title: str, label: str,
               cmap: str = "viridis") -> None:
    from matplotlib.collections import PolyCollection

    polys = np.moveaxis(points[:, cells], 0, -1).transpose(1, 0, 2)  # (n_cells, n_vertices, 2)
    coll = PolyCollection(polys, array=np.asarray(values, dtype=float), cmap=cmap, edgecolors="face", linewidths=0.2)
    ax.add_collection(coll)
    ax.set_xlim(points[0].min(), points[0].max())
    ax.set_ylim(points[1].min(), points[1].max())
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.figure.colorbar(coll, ax=ax, label=label, shrink=0.9, pad=0.02)


@styled
def structure_field_figure(arrays: Mapping[str, np.ndarray], record: Mapping[str, Any],
                           units: Units | None = None) -> Figure:
    """The part: one realization of the first field parameter, and the mean and standard
    deviation of the local field (element von Mises stress or heat-flux magnitude) over all
    samples of the hierarchical route. 2D parts only."""
    points, cells = np.asarray(arrays["points"]), np.asarray(arrays["cells"])
    if points.shape[0] != 2:
        raise InputError("the part is drawn for 2D parts only")
    h = record["hierarchical"]
    params = h["parameters"]
    names = list(params)
    field_name = next((n for n in names if params[n]["kind"] == "field"), names[0])
    local = h.get("local_field", "local field")
    u = _units(units)
    unit = (u.of("bulk_modulus") or PHASE_UNITS) if "stress" in local else ""
    fig, axes = _part_axes(points, cells, 3)
    example = np.asarray(arrays["example"])[:, names.index(field_name)]
    _draw_part(axes[0], points, cells, example, f"one realization of {field_name.replace('_', ' ')}",
               field_name.replace("_", " "))
    suffix = f" [{unit}]" if unit else ""
    _draw_part(axes[1], points, cells, arrays["local_mean"], f"{local}: mean over {h['n_solves']} solves",
               f"mean{suffix}", "magma")
    _draw_part(axes[2], points, cells, arrays["local_std"], f"{local}: standard deviation", f"std{suffix}", "magma")
    length = u.length_unit(1)
    for ax in axes:
        ax.set_xlabel(f"x [{length}]")
        ax.set_ylabel(f"y [{length}]")
    return fig


@styled
def structure_figure(arrays: Mapping[str, np.ndarray], record: Mapping[str, Any],
                     units: Units | None = None) -> Figure:
    """The quantity of interest: its distribution over all hierarchical samples with the
    central 95 % interval (left), its variance split (middle), and, with the concurrent
    route, each direct FE² value against the hierarchical interval of the same field (right)."""
    h = record["hierarchical"]
    conc = record.get("concurrent")
    fig, axes = _grid(3 if conc else 2, ncols=3, panel=(3.6, 3.0))
    unit = quantity_unit(h["quantity"]["kind"], units)
    label = plain(h["label"]) + (f" [{unit}]" if unit else "")
    q = np.asarray(arrays["samples"], dtype=float).ravel()
    ax = axes[0]
    ax.hist(q, bins=min(40, max(10, q.size // 25)), color="#4c72b0", alpha=0.85)
    lo, hi = h["quantiles"]["0.025"], h["quantiles"]["0.975"]
    for v in (lo, hi):
        ax.axvline(v, color="k", ls="--", lw=0.8)
    ax.axvline(h["mean"], color="#c44e52", lw=1.2)
    ax.set_xlabel(label)
    ax.set_ylabel("solves")
    ax.set_title(f"{h['n_macro']} fields × {h['n_functions']} functions × {h['n_noise']} SVE draws")
    ax.xaxis.set_major_locator(_ticks(4))
    ax = axes[1]
    parts = [("macro_field", "macro field", "#4c72b0"), ("microstructure", "SVE scatter", "#dd8452"),
             ("surrogate", "surrogate", "#55a868")]
    shares = [float(h["shares"][k]) for k, _, _ in parts]
    ax.barh([p[1] for p in parts], shares, color=[p[2] for p in parts])
    for y, s in enumerate(shares):
        ax.text(min(s + 0.02, 0.8), y, f"{100 * s:.1f} %", va="center")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the variance")
    ax.set_title("variance split")
    if conc:
        ax = axes[2]
        draws = np.asarray(arrays["concurrent_draws"], dtype=float)
        vals = np.asarray(arrays["concurrent_values"], dtype=float)
        level = float(conc["level"])
        lo_i = np.quantile(draws, (1 - level) / 2, axis=1)
        hi_i = np.quantile(draws, (1 + level) / 2, axis=1)
        order = np.argsort(draws.mean(axis=1))
        x = np.arange(vals.size)
        ax.vlines(x, lo_i[order], hi_i[order], color="0.55", lw=2.5, label=f"hierarchical {100 * level:.0f} % interval")
        inside = (vals >= lo_i) & (vals <= hi_i)
        ax.plot(x[inside[order]], vals[order][inside[order]], "o", ms=3.5, color="#4c72b0", label="FE², inside")
        ax.plot(x[~inside[order]], vals[order][~inside[order]], "x", ms=5, color="#c44e52", label="FE², outside")
        ax.set_xlabel("macro field, by hierarchical mean")
        ax.set_ylabel(label)
        ax.set_title(f"FE² on the same fields: coverage {100 * conc['coverage']:.0f} %")
        ax.yaxis.set_major_locator(_ticks(4))
    _shared_legend(fig, axes, 3)
    return fig
