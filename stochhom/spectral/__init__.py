"""FFT-based spectral solver for periodic linear homogenization (conductivity, elasticity).

Layers, from the bottom: :mod:`~stochhom.spectral.grid` (grids, derivative symbols,
real FFTs), :mod:`~stochhom.spectral.green` (compatibility/equilibrium operators,
reference medium, Green operator), :mod:`~stochhom.spectral.material_field`
(per-voxel constitutive law), :mod:`~stochhom.spectral.problem` (the cell problem),
:mod:`~stochhom.spectral.schemes` (CG, Moulinec–Suquet, Eyre–Milton),
:mod:`~stochhom.spectral.q1` (voxel finite elements and their preconditioned CG) and
:mod:`~stochhom.spectral.homogenize` (the public :func:`homogenize` and :func:`solve`).
"""

from .green import GreenOperator, ReferenceMedium, reference_medium
from .grid import DISCRETIZATIONS, Grid, derivative_symbols
from .homogenize import FieldResult, HomogenizationResult, choose_discretization, homogenize, solve
from .schemes import SCHEMES

__all__ = [
    "homogenize",
    "solve",
    "HomogenizationResult",
    "FieldResult",
    "SCHEMES",
    "DISCRETIZATIONS",
    "choose_discretization",
    "Grid",
    "derivative_symbols",
    "GreenOperator",
    "ReferenceMedium",
    "reference_medium",
]
