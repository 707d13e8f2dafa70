r"""Effective tensors and local fields of a voxel image: :func:`homogenize` and :func:`solve`.

The apparent (effective) tensor of a periodic cell follows from unit macroscopic
load cases: with the Mandel basis :math:`e_a`, the column ``a`` of the effective
matrix is the mean stress under :math:`E = e_a`,

.. math::
    \hat{\mathbb C}^*_{ba} = \langle\hat\sigma_b\rangle(E = e_a),

and the Hill–Mandel condition :math:`\langle\sigma:\varepsilon\rangle =
\langle\sigma\rangle : \langle\varepsilon\rangle` holds because the fluctuation is
periodic with zero mean. All load cases are solved together in one batch (split
only if memory requires it).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConvergenceError, ConvergenceWarning, InputError, MaterialError, NonPeriodicWarning
from ..materials import CONDUCTIVITY, ELASTICITY, Material, Void
from ..tensors import isotropic_projection
from .green import GreenOperator, ReferenceMedium, reference_medium
from .grid import DISCRETIZATIONS, default_workers
from .mixed import mixed_precision_cg
from .problem import CellProblem, resolve_backend
from .q1 import Q1Problem, q1_conjugate_gradient
from .schemes import SCHEMES, SchemeResult, accelerated, basic, conjugate_gradient

__all__ = ["homogenize", "solve", "HomogenizationResult", "FieldResult", "prepare_phases", "choose_discretization",
           "default_boundary", "WINDOW_BOUNDARY"]

_RULE = {"cg": "softest", "basic": "midpoint", "accelerated": "geometric"}
_SOLVERS = {"cg": conjugate_gradient, "basic": basic, "accelerated": accelerated}
DEFAULT_MAXITER = 2000
_BATCH_BYTES = 64 << 20  # working set below which load cases are batched


@dataclass
class HomogenizationResult:
    """Effective tensor of one image and the solver diagnostics.

    Attributes
    ----------
    effective : numpy.ndarray
        Mandel stiffness (3 x 3 in 2D plane strain, 6 x 6 in 3D) or ``d x d``
        conductivity. Column ``a`` is the mean stress (flux) under the unit load ``a``;
        it is symmetric up to the solver tolerance (see :attr:`symmetry_error`).
    iterations : numpy.ndarray of int
        Iterations per load case.
    residuals : list of numpy.ndarray
        Relative equilibrium residual history per load case (entry 0: before iterating).
    converged : numpy.ndarray of bool
        Per load case.
    physics : str
        ``"elasticity"`` or ``"conductivity"``.
    info : dict
        Scheme, discretization, tolerance, reference medium, dtype, grid, timings.
    """

    effective: np.ndarray
    iterations: np.ndarray
    residuals: list[np.ndarray]
    converged: np.ndarray
    physics: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def symmetry_error(self) -> float:
        """Relative asymmetry ``|C - C^T| / |C|`` (Frobenius norms)."""
        c = self.effective
        n = np.linalg.norm(c)
        return float(np.linalg.norm(c - c.T) / n) if n > 0 else 0.0

    @property
    def bulk_modulus(self) -> float:
        """Isotropic projection: :math:`K` in 3D, :math:`\\kappa = \\lambda + G` in 2D (elasticity only)."""
        self._need_elastic("bulk_modulus")
        return float(isotropic_projection(self.effective)[0])

    @property
    def shear_modulus(self) -> float:
        """Isotropic projection :math:`G` of the effective stiffness (elasticity only)."""
        self._need_elastic("shear_modulus")
        return float(isotropic_projection(self.effective)[1])

    def _need_elastic(self, name: str) -> None:
        if self.physics != ELASTICITY:
            raise InputError(f"{name} is defined for elasticity; this result is {self.physics}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable summary (effective tensor, diagnostics, settings)."""
        out = {
            "physics": self.physics,
            "notation": (
                ("Mandel (11, 22, 33, 23, 13, 12)" if self.info.get("dim") == 3 else "Mandel plane strain (11, 22, 12)")
                if self.physics == ELASTICITY
                else "d x d"
            ),
            "effective": self.effective.tolist(),
            "iterations": self.iterations.tolist(),
            "converged": self.converged.tolist(),
            "final_residuals": [float(r[-1]) for r in self.residuals],
            "symmetry_error": self.symmetry_error,
        }
        if self.physics == ELASTICITY:
            out["bulk_modulus"] = self.bulk_modulus
            out["shear_modulus"] = self.shear_modulus
        out["info"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.info.items()}
        return out

    def __repr__(self) -> str:
        with np.printoptions(precision=5, suppress=True, linewidth=120):
            return (
                f"HomogenizationResult({self.physics}, {self.info.get('dim')}D, "
                f"scheme={self.info.get('scheme')!r}, discretization={self.info.get('discretization')!r}, "
                f"iterations={self.iterations.tolist()})\neffective =\n{self.effective}"
            )


@dataclass
class FieldResult:
    r"""Local fields of one load case.

    For conductivity, ``strain`` is the gradient and ``stress`` the flux (aliases
    :attr:`gradient`, :attr:`flux`, :attr:`mean_gradient`, :attr:`mean_flux`).

    Attributes
    ----------
    strain, stress : numpy.ndarray, shape ``(ne, *shape)``
        Mandel components at voxel centres (for ``"q1"``: the element averages, i.e.
        the means over the voxel's Gauss points, equal to the values at its centre).
    mean_strain, mean_stress : numpy.ndarray, shape (ne,)
    fluctuation : numpy.ndarray, shape ``(m, *shape)``
        Periodic fluctuation of the displacement (potential) at the nodes: voxel
        corners for ``"rotated"`` and ``"q1"`` (node ``n`` is the lower corner of voxel ``n``),
        voxel centres for ``"fourier"``. Defined up to a constant. For ``"fourier"`` on
        even grids the self-conjugate Nyquist strain modes have no real nodal
        displacement and are missing from it (the ``strain`` field is complete).
    iterations : int
    residuals : numpy.ndarray
    converged : bool
    info : dict
    phase : numpy.ndarray or None
        The integer phase labels of the image as solved (the caller's labels, not
        renumbered), shape ``shape``; axes ``x, y[, z]`` as in an ensemble sample.
    spacing : tuple of float or None
        The voxel size along each axis, in length units.
    stress_out_of_plane : numpy.ndarray or None, shape ``(3, *shape)``
        2D elasticity (plane strain) only: the Mandel components ``33, 23, 13`` of the
        stress, :math:`\sigma_{33} = C_{33ab}\,\varepsilon_{ab}` from the phases' 3D
        stiffness (:math:`\lambda(\varepsilon_{11} + \varepsilon_{22})` for an isotropic
        phase); ``None`` where a phase has only a 2D stiffness or voxels are composite.

    Notes
    -----
    Derived local quantities, export and statistics live in :mod:`stochhom.spectral.fields`;
    the methods below forward to it.
    """

    strain: np.ndarray
    stress: np.ndarray
    mean_strain: np.ndarray
    mean_stress: np.ndarray
    fluctuation: np.ndarray
    iterations: int
    residuals: np.ndarray
    converged: bool
    physics: str
    info: dict[str, Any] = field(default_factory=dict)
    phase: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None
    stress_out_of_plane: np.ndarray | None = None

    gradient = property(lambda self: self.strain, doc="Alias of ``strain`` (conductivity).")
    flux = property(lambda self: self.stress, doc="Alias of ``stress`` (conductivity).")
    mean_gradient = property(lambda self: self.mean_strain, doc="Alias of ``mean_strain``.")
    mean_flux = property(lambda self: self.mean_stress, doc="Alias of ``mean_stress``.")

    @property
    def von_mises(self) -> np.ndarray:
        """Von Mises equivalent stress (see :func:`stochhom.spectral.fields.von_mises`)."""
        from .fields import von_mises

        return von_mises(self)

    @property
    def von_mises_in_plane(self) -> np.ndarray:
        """In-plane von Mises stress of a 2D field (see :func:`stochhom.spectral.fields.von_mises`)."""
        from .fields import von_mises

        return von_mises(self, in_plane=True)

    @property
    def energy_density(self) -> np.ndarray:
        r"""Local energy density :math:`\tfrac12\sigma:\varepsilon` (or :math:`\tfrac12 q\cdot g`)."""
        from .fields import energy_density

        return energy_density(self)

    @property
    def flux_magnitude(self) -> np.ndarray:
        """Euclidean norm :math:`|q|` of the flux (conductivity)."""
        from .fields import flux_magnitude

        return flux_magnitude(self)

    def quantity(self, name: str = "stress", component: str | None = None) -> np.ndarray:
        """One local field by name (see :func:`stochhom.spectral.fields.quantity`)."""
        from .fields import quantity

        return quantity(self, name, component)

    def statistics(self, quantity: str = "stress", component: str | None = "11", bins: Any = 50) -> Any:
        """Per-phase moments and histograms (see :func:`stochhom.spectral.fields.statistics`)."""
        from .fields import statistics

        return statistics(self, quantity, component, bins)

    def to_xarray(self, units: Any = None) -> Any:
        """The fields as an ``xarray.Dataset`` (see :func:`stochhom.spectral.fields.to_xarray`)."""
        from .fields import to_xarray

        return to_xarray(self, units)

    def to_vtk(self, path: Any, compress: bool = True) -> Any:
        """Write a ParaView file ``.vti``, ``.vtu`` or ``.vtk`` (see :func:`stochhom.spectral.fields.to_vtk`)."""
        from .fields import to_vtk

        return to_vtk(self, path, compress)

    def save(self, path: Any) -> Any:
        """Write the fields in the format of the suffix: ``.vti``, ``.vtu``, ``.vtk``, ``.xdmf`` or ``.nc``
        (see :func:`stochhom.spectral.fields.save`)."""
        from .fields import save

        return save(self, path)

    def to_xdmf(self, path: Any, data_format: str = "XML") -> Any:
        """Write an XDMF file (see :func:`stochhom.spectral.fields.to_xdmf`)."""
        from .fields import to_xdmf

        return to_xdmf(self, path, data_format)


# ----------------------------------------------------------------------------- validation
def _sample(image: Any) -> tuple[Any, float | None, bool | None]:
    """One sample of an ensemble (Dataset or DataArray) -> (labels, voxel size, periodic)."""
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        return image, None, None
    if isinstance(image, xr.Dataset):
        if "phase" not in image:
            raise InputError("the Dataset has no 'phase' variable; pass an ensemble sample, e.g. ens.isel(sample=0)")
        attrs = image.attrs
        image = image["phase"]
    elif isinstance(image, xr.DataArray):
        attrs = image.attrs
    else:
        return image, None, None
    if "sample" in image.dims:
        if image.sizes["sample"] != 1:
            raise InputError(
                f"the ensemble holds {image.sizes['sample']} samples; homogenize one at a time "
                "(ens.isel(sample=k)) or use homogenize_ensemble"
            )
        image = image.isel(sample=0)
    h = attrs.get("voxel_size")
    if h is None and "x" in image.coords and image.sizes.get("x", 0) > 1:
        h = float(image["x"].values[1] - image["x"].values[0])  # voxel centres (i + 1/2) h
    per = attrs.get("periodic")
    return image.values, (None if h is None else float(h)), (None if per is None else bool(per))


def _image(image: Any) -> np.ndarray:
    if hasattr(image, "values") and not isinstance(image, np.ndarray):  # xarray / pandas
        image = image.values
    try:
        arr = np.asarray(image)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise InputError(f"image cannot be read as an array: {exc}") from None
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        bad = "NaN/inf values and " if not np.all(np.isfinite(arr)) else ""
        raise InputError(
            f"image has {bad}float dtype {arr.dtype}; stochhom expects integer phase labels "
            "(convert with image.astype(int) if the values are labels)"
        )
    if arr.dtype.kind not in "iu":
        raise InputError(f"image must hold integer phase labels, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise InputError(f"image must be 2D or 3D, got {arr.ndim}D with shape {arr.shape}")
    if arr.size == 0 or min(arr.shape) < 1:
        raise InputError(f"image is empty (shape {arr.shape})")
    if arr.min() < 0:
        raise InputError(f"phase labels must be >= 0, found {int(arr.min())}")
    return arr


def prepare_phases(
    image: Any, phases: Sequence[Material] | Mapping[int, Material]
) -> tuple[np.ndarray, list[Material], str]:
    """Validate an image and its phases; return compact labels, the phase list and the physics.

    Parameters
    ----------
    image : array_like of int
    phases : sequence or mapping of Material
        ``phases[label]`` is the material of the voxels with that label.

    Returns
    -------
    labels : numpy.ndarray
        Labels renumbered ``0 .. n - 1`` (smallest unsigned dtype).
    materials : list of Material
        The material of each compact label.
    physics : str
    """
    arr = _image(image)
    if isinstance(phases, Mapping):
        keys = list(phases.keys())
        if not all(isinstance(k, (int, np.integer)) for k in keys):
            raise InputError(f"phase keys must be integer labels, got {keys!r}")
        table = {int(k): phases[k] for k in keys}
    elif isinstance(phases, (list, tuple)):
        table = dict(enumerate(phases))
    elif isinstance(phases, Material):
        raise InputError("phases must be a list or dict of materials, e.g. [matrix, inclusion]")
    else:
        raise InputError(f"phases must be a list or dict of materials, got {type(phases).__name__}")
    for k, m in table.items():
        if not isinstance(m, Material):
            raise InputError(f"phase {k} is {m!r}, not a stochhom material (Conductivity, IsotropicElastic, ...)")
    present = np.unique(arr)
    missing = [int(v) for v in present if int(v) not in table]
    if missing:
        raise InputError(
            f"labels {missing} appear in the image but have no phase; phases are given for labels "
            f"{sorted(table)}"
        )
    mats = [table[int(v)] for v in present]
    kinds = {m.physics for m in mats if not m.is_void}
    if not kinds:
        raise MaterialError("every phase in the image is Void: there is nothing to homogenize")
    if len(kinds) > 1:
        raise MaterialError(
            "the phases mix conductivity and elasticity laws; use only Conductivity (and Void) or only "
            "elastic phases (IsotropicElastic, AnisotropicElastic, Void)"
        )
    physics = kinds.pop()
    lut = np.zeros(int(present.max()) + 1, dtype=np.int64)
    lut[present] = np.arange(present.size)
    dtype = np.uint8 if present.size <= 256 else (np.uint16 if present.size <= 65536 else np.int32)
    labels = np.ascontiguousarray(lut[arr].astype(dtype))
    return labels, mats, physics


def _tensors(mats: list[Material], physics: str, dim: int) -> np.ndarray:
    return np.array([m.tensor(dim, physics) if isinstance(m, Void) else m.tensor(dim) for m in mats])


def _spacing(spacing: float | Sequence[float], dim: int) -> tuple[float, ...]:
    h = np.atleast_1d(np.asarray(spacing, dtype=float))
    if h.size == 1:
        h = np.repeat(h, dim)
    if h.shape != (dim,) or not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise InputError(f"spacing must be one positive number or {dim} of them, got {spacing!r}")
    return tuple(float(x) for x in h)


def _options(scheme: str, discretization: str, tol: float | None, maxiter: int | None, dtype: Any) -> tuple:
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}; valid schemes are {sorted(SCHEMES)}")
    if discretization not in DISCRETIZATIONS:
        raise InputError(f"unknown discretization {discretization!r}; valid ones are {sorted(DISCRETIZATIONS)}")
    if isinstance(dtype, str) and dtype == "mixed":
        dt = np.dtype(np.float64)  # the state and the stopping test; see _mixed_problem
    else:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise InputError(f"dtype must be 'float64', 'float32' or 'mixed', got {dtype!r}") from None
        if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise InputError(f"dtype must be 'float64', 'float32' or 'mixed', got {dt}")
    if tol is None:
        tol = 1e-6 if dt == np.float64 else 1e-5
    if not isinstance(tol, (int, float, np.floating)) or not np.isfinite(tol) or not (0 < tol < 1):
        raise InputError(f"tol must be a number in (0, 1), got {tol!r}")
    if maxiter is None:
        maxiter = DEFAULT_MAXITER
    if not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise InputError(f"maxiter must be a positive integer, got {maxiter!r}")
    return float(tol), int(maxiter), dt


def choose_discretization(discretization: str, scheme: str, mats: list[Material], dtype: Any = np.float64,
                          backend: str | None = None) -> str:
    """The discretization ``"auto"`` stands for (any other name is returned unchanged).

    ``"q1"`` for porous media (a :class:`~stochhom.materials.Void` phase) solved by CG in
    float64 on the numba backend, and for every problem on the torch backend (which runs
    Q1 only); ``"rotated"`` otherwise. The resolution study
    (``benchmarks/bench_resolution.py``, :doc:`/theory/spectral_solver`) found Q1 within
    5 % of the grid-converged answer for pores already at 24^3, where the rotated scheme
    is 18 % off, with 5 to 7 times fewer iterations; and it found Q1 too stiff on
    touching stiff inclusions (edge and corner contacts share nodes), where the rotated
    scheme is closer at every resolution.

    Parameters
    ----------
    discretization : str
        ``"auto"`` or the name of a discretization.
    scheme : str
    mats : list of Material
        The phases.
    dtype : numpy dtype, optional
    backend : str, optional

    Returns
    -------
    str
        ``"q1"``, ``"rotated"``, or ``discretization`` itself when it is not ``"auto"``.
    """
    if discretization != "auto":
        return discretization
    kernels = resolve_backend(backend)
    if kernels == "torch" and scheme == "cg":
        return "q1"  # the torch backend runs Q1 only
    porous = any(m.is_void for m in mats)
    if porous and scheme == "cg" and np.dtype(dtype) == np.float64 and kernels == "numba":
        return "q1"
    return "rotated"


def _check_scheme_fits(scheme: str, discretization: str, mats: list[Material]) -> None:
    if discretization == "q1" and scheme != "cg":
        raise InputError(f"discretization 'q1' is solved by conjugate gradients only; use scheme='cg' "
                         f"(got {scheme!r})")
    if scheme != "cg" and any(m.is_void for m in mats):
        raise InputError(
            f"scheme {scheme!r} cannot converge with a Void phase (its reference medium degenerates); "
            "use scheme='cg' with discretization='rotated' for porous media"
        )


def _check_precision(contrast: float, dtype: np.dtype, tol: float) -> None:
    """Refuse phase contrasts whose rounding errors exceed the tolerance.

    Rounding perturbs the stresses by about ``eps * contrast`` relative to the softest
    phase: the smallest residual the schemes reach is about ``0.5 * eps * contrast``
    (measured), so a tolerance below that would stall or, worse, stop on a residual
    that rounding dominates (contrast 1e14 in float64 gave a 0.2 % error).
    """
    eps = float(np.finfo(dtype).eps)
    if tol < 10.0 * eps:
        raise InputError(
            f"tol={tol:g} is below what {dtype} resolves (10 eps = {10 * eps:.2g}); use float64 or a larger tol"
        )
    if 0.5 * eps * contrast > tol:
        limit = 2.0 * tol / eps
        raise InputError(
            f"phase contrast {contrast:.3g} is beyond what {dtype} resolves at tol={tol:g} "
            f"(0.5 x eps x contrast must stay below tol, i.e. contrast <= {limit:.2g}). A stiffness "
            "ratio of 1e8 is already the rigid limit (the effective tensor changes by O(1/contrast)): "
            "cap the stiff phase there, use float64, or loosen tol"
        )


def _reference(
    reference: Any, scheme: str, tensors: np.ndarray, elastic: bool, dim: int
) -> ReferenceMedium:
    if reference is None:
        return reference_medium(tensors, elastic, dim, _RULE[scheme])
    if isinstance(reference, ReferenceMedium):
        if reference.elastic != elastic or reference.dim != dim:
            raise InputError(
                f"the reference medium is for {'elasticity' if reference.elastic else 'conductivity'} in "
                f"{reference.dim}D, but the problem is {'elasticity' if elastic else 'conductivity'} in {dim}D"
            )
        if reference.bulk <= 0 or (elastic and reference.shear <= 0):
            raise InputError(f"the reference medium must have positive moduli, got {reference}")
        return reference
    vals = np.atleast_1d(np.asarray(reference, dtype=float))
    if elastic and vals.shape == (2,) and np.all(vals > 0):
        return ReferenceMedium(bulk=float(vals[0]), shear=float(vals[1]), elastic=True, dim=dim)
    if not elastic and vals.shape == (1,) and vals[0] > 0:
        return ReferenceMedium(bulk=float(vals[0]), elastic=False, dim=dim)
    raise InputError(
        f"reference must be a ReferenceMedium, (bulk, shear) for elasticity or k0 for conductivity "
        f"(all > 0); got {reference!r}"
    )


def _available_memory() -> int:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 4 << 30


def _batch_size(batch_size: int | None, n_cases: int, problem: CellProblem, scheme: str) -> int:
    if batch_size is not None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        return min(int(batch_size), n_cases)
    item = problem.dtype.itemsize
    n = problem.grid.size
    # strain field and spectrum, and four nodal spectra (CG), per load case
    per_case = n * item * (2 * problem.ne + 2 * problem.m) * (1.5 if scheme == "accelerated" else 1.0)
    # Batching saves per-call overhead on small grids; on large grids it only costs
    # memory (measured at 64^3 and 128^3: one load case at a time is as fast or faster).
    budget = min(_BATCH_BYTES, _available_memory() // 2)
    return int(max(1, min(n_cases, budget // max(per_case, 1))))


def _problem(
    image: Any,
    phases: Any,
    scheme: str,
    discretization: str,
    tol: float | None,
    maxiter: int | None,
    dtype: Any,
    spacing: Any,
    reference: Any,
    workers: int | None,
    backend: str | None = None,
    device: Any = None,
    composite: Any = None,
) -> tuple[CellProblem, GreenOperator, list[Material], str, float, int]:
    tol, maxiter, dt = _options(scheme, discretization, tol, maxiter, dtype)
    image, sample_h, _ = _sample(image)
    if spacing is None:
        spacing = 1.0 if sample_h is None else sample_h
    labels, mats, physics = prepare_phases(image, phases)
    discretization = choose_discretization(discretization, scheme, mats, dt, backend)
    _check_scheme_fits(scheme, discretization, mats)
    kernels = resolve_backend(backend)
    mixed = isinstance(dtype, str) and dtype == "mixed"
    if mixed and (scheme != "cg" or discretization == "q1" or kernels == "torch"):
        raise InputError("dtype='mixed' refines float32 conjugate gradients of the 'rotated' or 'fourier' "
                         f"discretization (scheme='cg', numba or numpy backend); got scheme={scheme!r}, "
                         f"discretization={discretization!r}, backend={kernels!r}")
    problem = _build(labels, mats, physics, scheme, discretization, tol, dt, spacing, reference, workers,
                     kernels, device)
    fractions = np.bincount(labels.ravel(), minlength=len(mats)).astype(float)
    if composite is not None:
        _set_composite(problem, composite, image, phases, labels, physics, scheme, kernels, fractions)
    problem.volume_fractions = (fractions / labels.size).tolist()
    ref = None if isinstance(problem, Q1Problem) else _reference(
        reference, scheme, problem.tensors, problem.elastic, problem.dim)
    green = problem if ref is None else problem.green(ref)
    problem.low = None
    if mixed:
        low = CellProblem(labels, problem.tensors, problem.elastic, problem.grid.spacing, discretization,
                          np.dtype(np.float32), problem.grid.workers, kernels)
        if problem.composite is not None:
            index, internal = problem.composite
            low.composite = (index, internal.astype(np.float32))
        problem.low = (low, low.green(ref))
    return problem, green, mats, physics, tol, maxiter


def _set_composite(problem: Any, composite: Any, image: Any, phases: Any, labels: np.ndarray, physics: str,
                   scheme: str, kernels: str, fractions: np.ndarray) -> None:
    """Validate ``composite`` against the image and give its voxels their laminate tensors;
    ``fractions`` (voxel counts per compact label) becomes the phases' volumes."""
    from ..microstructure.composite import CompositeVoxels
    from .composite import laminate_tensors

    if not isinstance(composite, CompositeVoxels):
        raise InputError(f"composite must be a CompositeVoxels (from stochhom.microstructure.render_composite), "
                         f"got {type(composite).__name__}")
    composite.check(labels.shape)
    if scheme == "accelerated":
        raise InputError("composite voxels work with scheme='cg' or 'basic', not 'accelerated'")
    if kernels == "torch":
        raise InputError("composite voxels run on the numba or numpy backend, not 'torch'")
    problem.composite_voxels = 0
    if not len(composite):
        return
    present = np.unique(_image(image))
    used = np.unique(composite.phases)
    missing = np.setdiff1d(used, present)
    if missing.size:
        raise InputError(f"composite voxels hold labels {missing.tolist()} that no voxel of the image carries "
                         "(features thinner than a voxel); refine the grid")
    mats = dict(enumerate(phases)) if isinstance(phases, (list, tuple)) else {int(k): v for k, v in phases.items()}
    table = np.zeros((int(used.max()) + 1,) + problem.tensors.shape[1:])
    void = np.zeros(table.shape[0], dtype=bool)
    for lab in used:
        m = mats[int(lab)]
        table[lab] = m.tensor(problem.dim, physics) if m.is_void else m.tensor(problem.dim)
        void[lab] = m.is_void
    # a voxel cut by a pore keeps its majority label: the solid-void laminate carries no
    # normal stress, which makes the surface layer too soft and CG slow (docs/theory)
    keep = ~void[composite.phases].any(axis=1)
    phases_k, frac, index = composite.phases[keep], composite.fraction[keep], composite.index[keep]
    problem.composite_voxels = int(keep.sum())
    if not index.size:
        return
    tensors = laminate_tensors(table, void, phases_k, frac, composite.normal[keep], problem.elastic)
    compact = np.searchsorted(present, phases_k)  # compact labels, as prepare_phases numbers them
    np.subtract.at(fractions, labels.reshape(-1)[index], 1.0)
    np.add.at(fractions, compact[:, 0], 1.0 - frac)
    np.add.at(fractions, compact[:, 1], frac)
    problem.set_composite(index, tensors)


def _build(labels: np.ndarray, mats: list[Material], physics: str, scheme: str, discretization: str, tol: float,
           dt: np.dtype, spacing: Any, reference: Any, workers: int | None, kernels: str, device: Any) -> Any:
    """The cell problem of one discretization and backend."""
    if device is not None and kernels != "torch":
        raise InputError(f"device={device!r} applies to backend='torch' only (the backend is {kernels!r})")
    if kernels == "torch" and discretization != "q1":
        raise InputError(f"the torch backend runs discretization 'q1' only (got {discretization!r}); use "
                         "discretization='q1' (or 'auto'), or the numba backend")
    dim = labels.ndim
    elastic = physics == ELASTICITY
    tensors = _tensors(mats, physics, dim)
    if workers is None:
        workers = default_workers()
    elif not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    if discretization == "q1":
        if dt != np.float64:
            raise InputError("discretization 'q1' runs in float64 only; use dtype='float64'")
        if kernels == "numpy":
            raise InputError("discretization 'q1' runs on the numba or torch backend, not 'numpy'")
        ref = _reference(reference, scheme, tensors, elastic, dim)  # CG's rule: the softest solid phase
        if kernels == "torch":
            from .q1_torch import Q1TorchProblem

            q1 = Q1TorchProblem(labels, tensors, elastic, _spacing(spacing, dim), dt, int(workers), ref, device)
        else:
            q1 = Q1Problem(labels, tensors, elastic, _spacing(spacing, dim), dt, int(workers), ref)
        _check_precision(q1.contrast, dt, tol)
        return q1
    problem = CellProblem(labels, tensors, elastic, _spacing(spacing, dim), discretization, dt, int(workers), kernels)
    _check_precision(problem.contrast, dt, tol)
    return problem


def _q1_solver(problem: Q1Problem, green: Q1Problem, macro: np.ndarray, tol: float, maxiter: int,
               keep: bool) -> SchemeResult:
    """The Q1 system's CG, called like the entries of ``_SOLVERS`` (its own preconditioner is the Green operator)."""
    return q1_conjugate_gradient(problem, macro, tol, maxiter, keep)


def _run(
    problem: CellProblem,
    green: GreenOperator,
    scheme: str,
    macro: np.ndarray,
    tol: float,
    maxiter: int,
    batch: int,
    keep_solution: bool = False,
) -> SchemeResult:
    if getattr(problem, "low", None) is not None:
        def solver(problem, green, macro, tol, maxiter, keep):
            return mixed_precision_cg(problem, green, *problem.low, macro, tol, maxiter, keep)
    else:
        solver = _q1_solver if isinstance(problem, Q1Problem) else _SOLVERS[scheme]
    parts = [
        solver(problem, green, macro[i : i + batch], tol, maxiter, keep_solution)
        for i in range(0, macro.shape[0], batch)
    ]
    if len(parts) == 1:
        return parts[0]
    return SchemeResult(
        w=None if not keep_solution else np.concatenate([p.w for p in parts]),
        mean_stress=np.concatenate([p.mean_stress for p in parts]),
        iterations=np.concatenate([p.iterations for p in parts]),
        residuals=[r for p in parts for r in p.residuals],
        converged=np.concatenate([p.converged for p in parts]),
        status=[s for p in parts for s in p.status],
    )


def _handle_failure(res: SchemeResult, on_failure: str, tol: float, scheme: str, discretization: str) -> None:
    if np.all(res.converged):
        return
    bad = np.flatnonzero(~res.converged)
    final = [float(res.residuals[i][-1]) for i in bad]
    statuses = {res.status[i] for i in bad}
    if statuses & {"breakdown", "stagnated"}:
        hint = (
            " Rounding errors swamp the operator (the smallest reachable residual is about "
            "0.5 x eps x phase contrast). Loosen tol, use float64, or cap the stiff phase at ~1e8 x the "
            "soft one, which is already the rigid limit"
        )
    elif scheme != "cg" or discretization not in ("rotated", "q1"):
        hint = " Try scheme='cg' with discretization='rotated' (robust at high contrast and for pores)"
    else:
        hint = (
            " Increase maxiter or loosen tol; very high contrast with touching stiff inclusions "
            "needs more iterations"
        )
    msg = (
        f"{scheme!r} scheme ({discretization!r}) did not reach tol={tol:g} for load case(s) {bad.tolist()}: "
        f"status {[res.status[i] for i in bad]}, final residuals {[f'{x:.3g}' for x in final]} after "
        f"{res.iterations[bad].tolist()} iterations.{hint}."
    )
    if on_failure == "warn":
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    else:
        raise ConvergenceError(msg, residuals=res.residuals, iterations=res.iterations, tol=tol)


def homogenize(
    image: Any,
    phases: Sequence[Material] | Mapping[int, Material],
    *,
    scheme: str = "cg",
    discretization: str = "auto",
    tol: float | None = None,
    maxiter: int | None = None,
    dtype: Any = "float64",
    spacing: float | Sequence[float] | None = None,
    reference: Any = None,
    workers: int | None = None,
    batch_size: int | None = None,
    on_failure: str = "raise",
    backend: str | None = None,
    device: Any = None,
    composite: Any = None,
    boundary: str | None = None,
) -> HomogenizationResult:
    r"""Effective (apparent) tensor of a periodic voxel image.

    Solves the periodic cell problem for every unit macroscopic strain (or
    gradient) at once and assembles the effective tensor from the mean stresses.

    Parameters
    ----------
    image : array_like of int, 2D or 3D, or one ensemble sample
        Phase label of each voxel; or one sample of an ensemble ``Dataset`` from
        :func:`~stochhom.generate` (``ens.isel(sample=k)``), whose ``voxel_size`` is used.
    phases : sequence or mapping of Material
        ``phases[label]``: :class:`~stochhom.Conductivity` (and :class:`~stochhom.Void`)
        for conductivity, :class:`~stochhom.IsotropicElastic` /
        :class:`~stochhom.AnisotropicElastic` (and Void) for elasticity. 2D
        elasticity is plane strain.
    scheme : {"cg", "basic", "accelerated"}
        Conjugate gradients (default), Moulinec–Suquet, or Eyre–Milton.
    discretization : {"auto", "rotated", "fourier", "q1"}
        ``"auto"`` (default) chooses ``"q1"`` for porous media and ``"rotated"``
        otherwise (:func:`choose_discretization`; ``result.info["discretization"]``
        says which ran). ``"rotated"``: Willot's rotated finite differences (converges
        for every contrast; the most accurate on touching stiff inclusions).
        ``"fourier"``: the Moulinec–Suquet continuous Green operator. ``"q1"``: voxel
        finite elements with full integration (trilinear elements, Green-preconditioned
        CG as in muGrid; the most accurate and fastest for pores; ``scheme="cg"``,
        float64 and the numba backend only). See :doc:`/theory/spectral_solver`.
    tol : float, optional
        Relative equilibrium residual :math:`\|\Pi\sigma\|/|\langle\sigma\rangle|` at
        which a load case stops (default 1e-6 in float64, 1e-5 in float32).
    maxiter : int, optional
        Iteration limit per load case (default 2000).
    dtype : {"float64", "float32", "mixed"}
        Working precision. ``"mixed"``: float32 conjugate-gradient stages refined on the
        float64 residual (:mod:`stochhom.spectral.mixed`), to the same ``tol`` as
        float64 at float32 speed per iteration (rotated or Fourier discretization,
        ``scheme="cg"``); ``"float32"`` alone stops at about ``1e-7`` times the contrast.
    spacing : float or sequence of float, optional
        Voxel size per axis; only ratios matter for the effective tensor (default: the
        sample's ``voxel_size``, else 1).
    reference : ReferenceMedium or tuple, optional
        Override the reference medium (``(bulk, shear)`` or ``k0``).
    workers : int, optional
        FFT threads (default: ``$STOCHHOM_FFT_WORKERS`` or all usable cores).
    batch_size : int, optional
        Load cases solved together. By default all of them on small grids (working set
        under 64 MiB), where batching saves per-call overhead, and one at a time on
        large grids, where it would only cost memory.
    on_failure : {"raise", "warn"}
        Non-convergence raises :class:`~stochhom.errors.ConvergenceError` (default) or
        warns with :class:`~stochhom.errors.ConvergenceWarning`.
    backend : {"auto", "numba", "numpy", "torch"}, optional
        Element-wise kernels: fused compiled ones (numba, the default when available),
        the NumPy reference implementation, or PyTorch tensors (``"torch"``: the Q1
        discretization on a CPU or a GPU, see ``device``). ``$STOCHHOM_BACKEND`` sets
        the default.
    device : str, optional
        With ``backend="torch"``: ``"cpu"`` (default) or ``"cuda"`` (``"cuda:1"``, ...).
    boundary : {"periodic", "kubc", "subc", "mixed", "periodic_fe"}, optional
        Default: ``"periodic"`` for a periodic (or unmarked) image, ``"mixed"`` for a
        sample marked non-periodic (a window or a loaded specimen, ``attrs["periodic"]
        = 0``); asking for ``"periodic"`` on such a sample warns
        (:class:`~stochhom.errors.NonPeriodicWarning`), see :func:`default_boundary`.
        ``"periodic"``: the FFT solver. ``"kubc"`` (affine displacement or
        temperature on the boundary), ``"subc"`` (uniform traction or flux): apparent
        properties of a window on voxel finite elements (Q1, full integration) with
        AMG-preconditioned CG (:mod:`stochhom.fem.boundary`; ``tol`` is then the
        relative residual of the assembled system, default 1e-8). ``"mixed"``: the
        orthogonal uniform mixed condition (Hazanov and Huet), between the two.
        ``"periodic_fe"``:
        the periodic cell on the same elements, a cross-check of ``discretization="q1"``.
        For every window, SUBC <= periodic <= KUBC in the Loewner order.
    composite : CompositeVoxels, optional
        Interface voxels with their phase fractions and normals
        (:func:`~stochhom.microstructure.render_composite`): each gets the tensor of a
        laminate of its two phases along the interface normal (Kabel, Merkert and
        Schneider; :mod:`stochhom.spectral.composite`), which makes the answer of a
        coarse grid close to that of a fine one. Not with ``scheme="accelerated"`` or
        the torch backend.

    Returns
    -------
    HomogenizationResult

    Raises
    ------
    InputError
        Bad image, phases or options (the message names the problem).
    ConvergenceError
        A load case did not converge; carries the residual histories.

    Examples
    --------
    >>> import numpy as np, stochhom as sh
    >>> image = np.zeros((16, 16), dtype=int); image[:, 8:] = 1   # laminate
    >>> res = sh.homogenize(image, [sh.Conductivity(1.0), sh.Conductivity(3.0)])
    >>> np.round(res.effective, 6)     # <k> = 2 along, <1/k>^-1 = 1.5 across
    array([[2. , 0. ],
           [0. , 1.5]])
    """
    if on_failure not in ("raise", "warn"):
        raise InputError(f"on_failure must be 'raise' or 'warn', got {on_failure!r}")
    boundary = default_boundary(boundary, _sample(image)[2])
    if boundary != "periodic":
        return _homogenize_fe(image, phases, boundary, discretization, tol, maxiter, dtype, spacing, backend,
                              composite)
    t0 = time.perf_counter()
    problem, green, _, physics, tol, maxiter = _problem(
        image, phases, scheme, discretization, tol, maxiter, dtype, spacing, reference, workers, backend, device,
        composite,
    )
    discretization = problem.discretization  # "auto" resolved
    ne = problem.ne
    macro = problem.strain_to_internal(np.eye(ne))
    batch = _batch_size(batch_size, ne, problem, scheme)
    t1 = time.perf_counter()
    res = _run(problem, green, scheme, macro, tol, maxiter, batch)
    t2 = time.perf_counter()
    _handle_failure(res, on_failure, tol, scheme, discretization)
    effective = problem.stress_to_mandel(res.mean_stress).T.copy()
    info = {
        "scheme": scheme,
        "discretization": discretization,
        "tol": tol,
        "maxiter": maxiter,
        "dtype": "mixed" if getattr(problem, "low", None) is not None else str(problem.dtype),
        "dim": problem.dim,
        "shape": list(problem.grid.shape),
        "spacing": list(problem.grid.spacing),
        "reference": {"bulk": green.reference.bulk, "shear": green.reference.shear},
        "material_storage": problem.material.mode,
        "batch_size": batch,
        "workers": problem.grid.workers,
        "backend": problem.backend,
        "device": str(getattr(problem, "device", "cpu")),
        "status": res.status,
        "setup_time": t1 - t0,
        "solve_time": t2 - t1,
        "volume_fractions": problem.volume_fractions,
        "composite_voxels": getattr(problem, "composite_voxels", 0),
        "periodic_sample": _sample(image)[2],
    }
    return HomogenizationResult(effective, res.iterations, res.residuals, res.converged, physics, info)


#: The boundary condition of a sample marked non-periodic when none is asked for.
WINDOW_BOUNDARY = "mixed"


def default_boundary(boundary: str | None, periodic: bool | None) -> str:
    """The boundary condition to solve a sample with.

    ``None`` gives ``"periodic"`` (the FFT solver) for a periodic or unmarked sample and
    :data:`WINDOW_BOUNDARY` (``"mixed"``) for a sample marked non-periodic: a window cut
    from a specimen or a scan has no periodic continuation, and solving it as a periodic
    cell glues mismatched faces together (an artificial interface layer, a bias of order
    :math:`1/L`). The orthogonal uniform mixed condition lies between the static and
    kinematic bounds, is exact for laminates in every direction, and leaves pores cut by
    the boundary traction-free on the faces where it prescribes tractions (Hazanov and
    Huet 1994; Pahr and Zysset 2008 use it for cores cut from bone): the usual choice
    for the apparent properties of a window. An explicit ``"periodic"`` on a
    non-periodic sample is honoured with a :class:`~stochhom.errors.NonPeriodicWarning`.
    """
    if boundary is None:
        return WINDOW_BOUNDARY if periodic is False else "periodic"
    if not isinstance(boundary, str):
        raise InputError(f"boundary must be a name (one of 'periodic', 'kubc', 'subc', 'mixed', 'periodic_fe'), "
                         f"got {boundary!r}")
    if boundary == "periodic" and periodic is False:
        warnings.warn("the sample is marked non-periodic (a window or a specimen); boundary='periodic' solves it "
                      "as a periodic cell, gluing mismatched faces together. Pass boundary='mixed' (the default "
                      "for such samples), 'kubc' or 'subc' for the window's apparent properties",
                      NonPeriodicWarning, stacklevel=3)
    return boundary


def _homogenize_fe(image: Any, phases: Any, boundary: str, discretization: str, tol: float | None,
                   maxiter: int | None, dtype: Any, spacing: Any, backend: Any, composite: Any) -> HomogenizationResult:
    """Apparent tensor under a non-periodic (or finite-element periodic) boundary condition."""
    from ..fem.boundary import BOUNDARY_CONDITIONS, apparent_tensor

    if boundary not in BOUNDARY_CONDITIONS:
        raise InputError(f"unknown boundary condition {boundary!r}; choose one of {list(BOUNDARY_CONDITIONS)}")
    if discretization not in ("auto", "q1"):
        raise InputError(f"boundary={boundary!r} runs on voxel finite elements with full integration "
                         f"(discretization 'q1'), not {discretization!r}")
    if composite is not None or backend not in (None, "auto", "numba", "numpy") or str(dtype) != "float64":
        raise InputError(f"boundary={boundary!r} takes neither composite voxels nor the torch backend nor "
                         "dtype other than float64")
    t0 = time.perf_counter()
    img, sample_h, _ = _sample(image)
    labels, mats, physics = prepare_phases(img, phases)
    dim = labels.ndim
    h = _spacing(1.0 if spacing is None and sample_h is None else (sample_h if spacing is None else spacing), dim)
    tol = 1e-8 if tol is None else tol
    if not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise InputError(f"tol must be a number in (0, 1), got {tol!r}")
    maxiter = 5000 if maxiter is None else int(maxiter)
    tensors = _tensors(mats, physics, dim)
    void = np.array([m.is_void for m in mats])
    effective, info = apparent_tensor(labels, tensors, void, physics == ELASTICITY, h, boundary, tol, maxiter)
    iters = np.asarray(info["iterations"])
    info.update(scheme="cg", preconditioner="smoothed-aggregation AMG", discretization="q1",
                dim=dim, shape=list(labels.shape), spacing=list(h),
                volume_fractions=(np.bincount(labels.ravel(), minlength=len(mats)) / labels.size).tolist(),
                setup_time=time.perf_counter() - t0 - info["solve_time"],
                status=["converged"] * len(iters), periodic_sample=_sample(image)[2])
    res = [np.array([1.0, tol]) for _ in iters]  # AMG-CG reached tol on ||b - Ku|| / ||b||
    return HomogenizationResult(effective, iters, res, np.ones(len(iters), dtype=bool), physics, info)


def solve(
    image: Any,
    phases: Sequence[Material] | Mapping[int, Material],
    *,
    macro_strain: Sequence[float] | None = None,
    macro_stress: Sequence[float] | None = None,
    macro_gradient: Sequence[float] | None = None,
    macro_flux: Sequence[float] | None = None,
    scheme: str = "cg",
    discretization: str = "auto",
    tol: float | None = None,
    maxiter: int | None = None,
    dtype: Any = "float64",
    spacing: float | Sequence[float] | None = None,
    reference: Any = None,
    workers: int | None = None,
    on_failure: str = "raise",
    backend: str | None = None,
    device: Any = None,
    composite: Any = None,
) -> FieldResult:
    r"""Local strain and stress fields for one macroscopic load.

    Give exactly one of ``macro_strain`` / ``macro_stress`` (Mandel vectors; for
    conductivity ``macro_gradient`` / ``macro_flux`` are aliases). Stress control is
    exact for these linear problems: the effective tensor :math:`\mathbb C^*` is
    computed first and the strain :math:`E = \mathbb C^{*-1}\Sigma` is applied.

    Parameters
    ----------
    image, phases, scheme, discretization, tol, maxiter, dtype, spacing, reference, workers, on_failure
        As in :func:`homogenize`.
    backend, device, composite
        As in :func:`homogenize`.
    macro_strain : sequence of float, optional
        Macroscopic strain (gradient), Mandel notation.
    macro_stress : sequence of float, optional
        Macroscopic stress (flux), Mandel notation.

    Returns
    -------
    FieldResult
    """
    given = {
        k: v
        for k, v in dict(
            macro_strain=macro_strain, macro_stress=macro_stress, macro_gradient=macro_gradient, macro_flux=macro_flux
        ).items()
        if v is not None
    }
    if len(given) != 1:
        raise InputError(
            "give exactly one of macro_strain, macro_stress (or macro_gradient, macro_flux); "
            f"got {sorted(given) or 'none'}"
        )
    if on_failure not in ("raise", "warn"):
        raise InputError(f"on_failure must be 'raise' or 'warn', got {on_failure!r}")
    ((kind, value),) = given.items()
    problem, green, mats, physics, tol, maxiter = _problem(
        image, phases, scheme, discretization, tol, maxiter, dtype, spacing, reference, workers, backend, device,
        composite,
    )
    discretization = problem.discretization  # "auto" resolved
    ne = problem.ne
    vec = np.asarray(value, dtype=float).reshape(-1)
    if vec.shape != (ne,) or not np.all(np.isfinite(vec)):
        raise InputError(f"{kind} must be {ne} finite numbers (Mandel notation in {problem.dim}D), got {value!r}")
    if kind in ("macro_gradient", "macro_flux") and physics != CONDUCTIVITY:
        raise InputError(f"{kind} is for conductivity; use macro_strain / macro_stress for elasticity")
    info: dict[str, Any] = {"scheme": scheme, "discretization": discretization, "tol": tol, "control": kind}
    if kind in ("macro_stress", "macro_flux"):
        eff = homogenize(
            image, phases, scheme=scheme, discretization=discretization, tol=tol, maxiter=maxiter,
            dtype=dtype, spacing=spacing, reference=reference, workers=workers, on_failure=on_failure,
            backend=backend, device=device, composite=composite,
        ).effective
        c = 0.5 * (eff + eff.T)
        if np.linalg.cond(c) > 1e12:
            raise InputError(
                "the effective tensor is singular (e.g. a pore network that cuts the cell), so a macroscopic "
                "stress cannot be imposed; use macro_strain"
            )
        info["effective"] = eff
        vec = np.linalg.solve(c, vec)
    macro = problem.strain_to_internal(vec)[None]
    res = _run(problem, green, scheme, macro, tol, maxiter, 1, keep_solution=True)
    _handle_failure(res, on_failure, tol, scheme, discretization)
    e, s = problem.fields(res.w, macro)
    strain = problem.strain_to_mandel(e[0], axis=0)
    stress = problem.stress_to_mandel(s[0], axis=0)
    u = res.w[0] if discretization == "q1" else _fluctuation(problem, discretization, res.w[0])
    labels = _image(_sample(image)[0])
    out_of_plane = None
    if physics == ELASTICITY and problem.dim == 2 and getattr(problem, "composite_voxels", 0) == 0:
        out_of_plane = _out_of_plane_stress(mats, labels, strain)
    return FieldResult(
        strain=strain,
        stress=stress,
        mean_strain=strain.reshape(ne, -1).mean(axis=1),
        mean_stress=stress.reshape(ne, -1).mean(axis=1),
        fluctuation=u,
        iterations=int(res.iterations[0]),
        residuals=res.residuals[0],
        converged=bool(res.converged[0]),
        physics=physics,
        info=info,
        phase=np.array(labels),
        spacing=tuple(float(h) for h in problem.grid.spacing) if hasattr(problem, "grid") else None,
        stress_out_of_plane=out_of_plane,
    )


def _out_of_plane_stress(mats: list[Material], labels: np.ndarray, strain: np.ndarray) -> np.ndarray | None:
    r"""Mandel stress components ``33, 23, 13`` of a plane-strain field.

    With :math:`\varepsilon_{33} = \varepsilon_{23} = \varepsilon_{13} = 0`, row ``a`` of the
    phase's 3D Mandel stiffness gives :math:`\hat\sigma_a = \hat C_{a1}\hat\varepsilon_1 +
    \hat C_{a2}\hat\varepsilon_2 + \hat C_{a6}\hat\varepsilon_6`. ``None`` if a phase has
    only a 2D (3 x 3) stiffness.
    """
    rows = []
    for m in mats:
        try:
            c3 = np.asarray(m.tensor(3))
        except Exception:  # a 2D-only anisotropic stiffness: sigma_33 is unknown
            return None
        rows.append(c3[np.ix_([2, 3, 4], [0, 1, 5])])
    table = np.array(rows)  # (n_phases, 3, 3), compact labels
    compact = np.searchsorted(np.unique(labels), labels)
    return np.einsum("...ab,b...->a...", table[compact], strain)


def _fluctuation(problem: CellProblem, discretization: str, w: np.ndarray) -> np.ndarray:
    r"""Nodal fluctuation :math:`u` from :math:`\hat w = i e^{i\varphi}\hat u`."""
    u_hat = -1j * w
    if discretization == "rotated":
        phase = sum(problem.grid.angles())
        u_hat = u_hat * np.exp(-0.5j * phase)
    return problem.grid.irfft(u_hat.astype(problem.cdtype))
