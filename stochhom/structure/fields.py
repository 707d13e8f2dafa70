r"""Spatially varying microstructure parameters over a part: stationary random fields
sampled at the elements.

A macro field is :math:`\theta(x) = T(g(x))` with :math:`g` a standard stationary Gaussian
field of correlation :math:`\rho(|x - y|/\ell)` (:func:`~stochhom.microstructure.random_fields.correlation`:
Gaussian, exponential or Matérn) and

- ``"normal"``: :math:`T(g) = \mu + \sigma g`;
- ``"lognormal"``: :math:`T(g) = m\,e^{s g}` (median :math:`m`, log-standard deviation :math:`s`),
  positive (a contrast, a length).

:func:`sample_field` draws :math:`g` on a regular background grid that covers the part's
bounding box with a margin of :data:`MARGIN` correlation lengths on every side (the grid
field is periodic: the margin keeps the wrap-around correlation below
:math:`\rho(2\cdot 3) \approx 10^{-8}` for the Gaussian model) and a spacing of
:data:`POINTS_PER_LENGTH` points per correlation length, and interpolates it (cubic
splines) at the element centroids: one value per element, the element's local
microstructure parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["MacroField", "sample_field", "element_centroids"]

#: Correlation lengths of background grid around the part on every side.
MARGIN = 3.0
#: Background grid points per correlation length.
POINTS_PER_LENGTH = 6.0
#: Largest background grid (points) before the field is refused: lower the ratio of part size to length.
MAX_GRID_POINTS = 2**24


@dataclass(frozen=True)
class MacroField:
    """A stationary random field of one microstructure parameter (module docstring).

    Parameters
    ----------
    distribution : {"normal", "lognormal"}
    center : float
        Mean (normal) or median (lognormal).
    spread : float
        Standard deviation (normal) or log-standard deviation (lognormal); 0 gives a
        uniform part.
    correlation_length : float
        :math:`\\ell`, in the mesh's length unit.
    model : {"gaussian", "exponential", "matern"}
    nu : float, optional
        Matérn smoothness.
    """

    distribution: str = "normal"
    center: float = 0.0
    spread: float = 1.0
    correlation_length: float = 1.0
    model: str = "gaussian"
    nu: float | None = None

    def __post_init__(self) -> None:
        if self.distribution not in ("normal", "lognormal"):
            raise InputError(f"unknown field distribution {self.distribution!r}; choose 'normal' or 'lognormal'")
        for name in ("center", "spread", "correlation_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise InputError(f"{name} must be a finite number, got {v!r}")
        if self.spread < 0 or self.correlation_length <= 0:
            raise InputError(f"spread must be >= 0 and correlation_length > 0, got {self.spread!r} and "
                             f"{self.correlation_length!r}")
        if self.distribution == "lognormal" and self.center <= 0:
            raise InputError(f"a lognormal field needs a positive median, got {self.center!r}")

    def transform(self, g: np.ndarray) -> np.ndarray:
        """The parameter values of standard Gaussian values ``g``."""
        if self.distribution == "normal":
            return self.center + self.spread * g
        return self.center * np.exp(self.spread * g)


def element_centroids(mesh: Any) -> np.ndarray:
    """``(n_elements, dim)`` centroids (the mean of each element's vertices)."""
    return mesh.p[:, mesh.t].mean(axis=1).T


def sample_field(mesh: Any, field: MacroField, n: int = 1, rng: Any = None) -> np.ndarray:
    """``(n, n_elements)`` draws of ``field`` at the element centroids of ``mesh``.

    Reproducible: the draws depend on ``rng`` only (an int seed, a Generator or None).
    """
    from scipy.ndimage import map_coordinates

    from ..microstructure.random_fields import gaussian_field

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    x = element_centroids(mesh)
    if field.spread == 0:
        return np.full((n, x.shape[0]), field.transform(np.zeros(1))[0])
    ell = float(field.correlation_length)
    h = ell / POINTS_PER_LENGTH
    lo = x.min(axis=0) - MARGIN * ell
    extent = x.max(axis=0) + MARGIN * ell - lo
    shape = tuple(int(np.ceil(e / h)) + 4 for e in extent)
    if int(np.prod(shape)) > MAX_GRID_POINTS:
        raise InputError(f"the part spans {np.round(extent / ell, 1).tolist()} correlation lengths: a background "
                         f"grid of {shape} points is too large; use a longer correlation_length")
    coords = ((x - lo) / h + 1.0).T  # grid index coordinates (one point of slack below)
    out = np.empty((n, x.shape[0]))
    for k in range(n):
        g = gaussian_field(shape, ell, gen, model=field.model, nu=field.nu, voxel_size=h)
        out[k] = map_coordinates(g, coords, order=3, mode="grid-wrap")
    return field.transform(out)
