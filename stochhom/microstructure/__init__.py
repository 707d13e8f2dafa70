"""Random microstructures, reproducible SVE ensembles and morphological descriptors.

Generators (see :func:`available`): level-cut Gaussian random fields
(:mod:`~stochhom.microstructure.random_fields`), Boolean and hard-core sphere
models and fibres (:mod:`~stochhom.microstructure.inclusions`), periodic Voronoi
polycrystals (:mod:`~stochhom.microstructure.tessellation`), PoreSpy's generators
and the user's own images (:mod:`~stochhom.microstructure.external`). Ensembles
and windows: :mod:`~stochhom.microstructure.ensemble`. Descriptors:
:mod:`~stochhom.microstructure.descriptors`.
"""

from . import descriptors, external, inclusions, random_fields, segmentation, tessellation  # noqa: F401
from .composite import CompositeVoxels, render_composite
from .descriptors import (
    chord_lengths,
    correlation_length,
    describe,
    integral_range,
    lineal_path,
    radial_average,
    specific_surface,
    two_point_probability,
    volume_fractions,
)
from .ensemble import GENERATORS, generate, windows
from .external import load_specimens
from .fitting import fit_boolean, fit_gaussian, goodness_of_fit
from .random_fields import gaussian_field, grid_covariance, level_cut
from .segmentation import segment
from .tessellation import polycrystal_phases, random_orientations

__all__ = [
    "available",
    "generate",
    "windows",
    "render_composite",
    "CompositeVoxels",
    "load_specimens",
    "segment",
    "fit_gaussian",
    "fit_boolean",
    "goodness_of_fit",
    "GENERATORS",
    "gaussian_field",
    "grid_covariance",
    "level_cut",
    "polycrystal_phases",
    "random_orientations",
    "describe",
    "volume_fractions",
    "two_point_probability",
    "radial_average",
    "specific_surface",
    "lineal_path",
    "chord_lengths",
    "correlation_length",
    "integral_range",
]


def available() -> dict[str, str]:
    """Generator names with a one-line description each."""
    return {name: gen.summary for name, gen in sorted(GENERATORS.items())}
