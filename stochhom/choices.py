"""The names of the solver's options and of the microstructure generators.

A light module (no NumPy): the command line builds its ``choices`` and help texts from
it without importing the solver or the generators (``stochhom --help`` stays fast).
The solver modules re-export these tables: :data:`SCHEMES` is
:data:`stochhom.spectral.schemes.SCHEMES`, :data:`DISCRETIZATIONS` is
:data:`stochhom.spectral.grid.DISCRETIZATIONS`, :data:`BOUNDARY_CONDITIONS` is
:data:`stochhom.fem.boundary.BOUNDARY_CONDITIONS` and :data:`BACKENDS` is
:data:`stochhom.spectral.problem.BACKENDS`.
"""

from __future__ import annotations

__all__ = ["BACKENDS", "BOUNDARY_CONDITIONS", "DISCRETIZATIONS", "GENERATOR_NAMES", "SCHEMES"]

#: Iterative schemes of the FFT solver, with a one-line description each.
SCHEMES: dict[str, str] = {
    "cg": "conjugate gradients with the Green-operator preconditioner (default)",
    "basic": "Moulinec-Suquet fixed point",
    "accelerated": "Eyre-Milton polarization scheme",
}

#: Discretizations of the derivative, with a one-line description each ("auto" chooses one).
DISCRETIZATIONS: dict[str, str] = {
    "auto": "q1 for porous media (a Void phase, scheme cg, float64), rotated otherwise (the resolution study)",
    "rotated": "Willot's rotated finite differences (consistent; pores and rigid phases)",
    "fourier": "Moulinec-Suquet continuous Green operator (spectral derivatives)",
    "q1": "voxel finite elements with full (2^d-point) integration, Green-preconditioned CG (Ladecky et al. 2023)",
}

#: Boundary conditions of :func:`stochhom.homogenize` (``"periodic"`` is the FFT solver's,
#: the others those of :func:`stochhom.fem.apparent_tensor`).
BOUNDARY_CONDITIONS = ("periodic", "kubc", "subc", "mixed", "periodic_fe")

#: Element-kernel backends of the FFT solver (torch: the Q1 discretization only).
BACKENDS = ("numba", "numpy", "torch")

#: The generators that stochhom registers in
#: :data:`stochhom.microstructure.ensemble.GENERATORS` (a test checks that the two agree;
#: the registry also holds the generators a user registers).
GENERATOR_NAMES = (
    "boolean",
    "fibres",
    "gaussian",
    "porespy.blobs",
    "porespy.overlapping_spheres",
    "porespy.polydisperse_spheres",
    "rsa",
    "voronoi",
)
