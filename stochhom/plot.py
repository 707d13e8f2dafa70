"""Figures of local fields: a field map with phase outlines, and per-phase histograms.

matplotlib is imported inside the functions, so ``import stochhom`` stays light.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError
from .spectral.fields import AXES, quantity, statistics

__all__ = ["field", "field_statistics"]


def _plane(result: Any, a: np.ndarray, slice: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """2D plane of ``a`` (and of the labels) for a 3D field: ``{"z": k}`` or ``(axis, index)``."""
    if a.ndim == 2:
        if slice is not None:
            raise InputError(f"slice is for 3D fields; this field is 2D, got slice={slice!r}")
        return a, np.asarray(result.phase), ""
    if slice is None:
        axis, index = 2, a.shape[2] // 2
    elif isinstance(slice, dict) and len(slice) == 1:
        ((name, index),) = slice.items()
        if name not in AXES:
            raise InputError(f"slice axis must be one of {list(AXES)}, got {name!r}")
        axis = AXES.index(name)
    elif isinstance(slice, (tuple, list)) and len(slice) == 2:
        axis, index = slice
        axis = AXES.index(axis) if axis in AXES else int(axis)
    else:
        raise InputError(f"slice must be like {{'z': 4}} or ('z', 4), got {slice!r}")
    n = a.shape[axis]
    if not -n <= int(index) < n:
        raise InputError(f"slice index {index} is out of range for axis {AXES[axis]!r} of size {n}")
    take = (lambda v: np.take(v, int(index), axis=axis))  # noqa: E731
    return take(a), take(np.asarray(result.phase)), f"{AXES[axis]} index {int(index)}"


#: Colorbar labels of the quantities (components are tensor components, shear without sqrt 2).
_LABELS = {"strain": "strain ε", "stress": "stress σ", "gradient": "gradient g", "flux": "flux q",
           "von_mises": "von Mises stress", "von_mises_in_plane": "in-plane von Mises stress",
           "energy_density": "energy density", "flux_magnitude": "flux magnitude |q|"}


def field(result: Any, quantity_name: str = "stress", component: str | None = "11", slice: Any = None,
          ax: Any = None, cmap: str = "viridis", outline: bool = True) -> Any:
    """Map of one local quantity, in physical units, with the phase boundaries drawn.

    Parameters
    ----------
    result : FieldResult
        From :func:`stochhom.solve`.
    quantity_name, component : str
        As in :func:`stochhom.spectral.fields.quantity` (``component`` is ignored for the
        derived scalars ``von_mises``, ``energy_density``, ``flux_magnitude``).
    slice : dict or tuple, optional
        3D only: the plane, ``{"z": k}`` or ``("x", i)``; default the middle z-plane.
    ax : matplotlib.axes.Axes, optional
    cmap : str
    outline : bool
        Draw the phase boundaries (contours of the label image at half-integers).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if quantity_name not in ("strain", "stress", "gradient", "flux"):
        component = None
    a, labels, where = _plane(result, quantity(result, quantity_name, component), slice)
    dim = result.strain.ndim - 1
    h = tuple(result.spacing) if result.spacing is not None else (1.0,) * dim
    if dim == 3:
        axis = AXES.index(where.split()[0])
        keep = [k for k in range(3) if k != axis]
        hx, hy, names = h[keep[0]], h[keep[1]], (AXES[keep[0]], AXES[keep[1]])
    else:
        hx, hy, names = h[0], h[1], ("x", "y")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.2))
    nx, ny = a.shape
    # axis 0 is x: show it horizontally (transpose), origin at the lower left
    im = ax.imshow(a.T, origin="lower", extent=(0, nx * hx, 0, ny * hy), cmap=cmap, interpolation="nearest")
    if outline and np.unique(labels).size > 1:
        xc, yc = (np.arange(nx) + 0.5) * hx, (np.arange(ny) + 0.5) * hy
        levels = np.unique(labels)[:-1] + 0.5
        ax.contour(xc, yc, labels.T.astype(float), levels=levels, colors="white", linewidths=0.8)
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    cax = make_axes_locatable(ax).append_axes("right", size="5%", pad=0.08)  # as tall as the map
    plt.colorbar(im, cax=cax, label=_LABELS.get(quantity_name, quantity_name.replace("_", " "))
                 + ("" if component is None else f" {component}"))
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_aspect("equal")
    if where:
        ax.set_title(where)
    return ax


def field_statistics(result: Any, quantity_name: str = "stress", component: str | None = "11", bins: Any = 40,
                     ax: Any = None) -> Any:
    """Per-phase histograms of one local quantity (volume fraction of the cell per bin).

    Parameters
    ----------
    result : FieldResult
    quantity_name, component, bins
        As in :func:`stochhom.spectral.fields.statistics`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    st = statistics(result, quantity_name, component, bins)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.5))
    edges = st["edges"].values
    n = result.strain[0].size
    for lab in st["phase"].values:
        s = st.sel(phase=lab)
        ax.stairs(s["counts"].values / n, edges,
                  label=f"phase {lab}: mean {float(s['mean']):.3g}, std {float(s['std']):.3g}")
    ax.set_xlabel(st.attrs["label"].replace("_", " "))
    ax.set_ylabel("volume fraction per bin")
    ax.legend(fontsize="small")
    return ax
