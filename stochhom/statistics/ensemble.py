r"""Apparent properties of an ensemble of SVEs: :func:`homogenize_ensemble`.

The apparent-properties ``Dataset`` (one entry per sample, with every per-sample
coordinate of the ensemble: ``specimen``, ``seed``, the parameters, window origins):

* ``stiffness`` (``sample, i, j``, Mandel) and the isotropic projections
  ``bulk_modulus``, ``shear_modulus`` (3D: :math:`K`; 2D plane strain:
  :math:`\kappa = \lambda + G`); or ``conductivity`` (``sample, i, j``) and its sorted
  ``conductivity_eigenvalues`` (``sample, k``);
* solver diagnostics ``iterations`` and ``residual`` (final relative residual) per
  load case (``sample, load_case``), ``converged`` (1/0), ``status`` (``"ok"`` or
  the failure message) and ``solve_time`` (seconds; the one variable that differs
  between otherwise identical runs). It times the homogenization of the sample from
  its image, so the first solve of a fresh process also pays the loading of the numba
  kernels from numba's cache (about a second), or their compilation when the cache lacks
  them (``stochhom warmup``, :mod:`stochhom.warmup`, fills it once); sweeps
  (:mod:`stochhom.study.sweep`) warm the kernels up first and store that time apart, as
  ``warmup_time``;
* ``phase_fraction`` (``sample, phase``) and ``volume`` (physical size of the SVE).

A sample whose solve fails (no convergence, or a phase law its parameters make
invalid) is recorded with ``converged = 0``, its diagnostics and NaN properties; it
does not abort the ensemble.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConvergenceWarning, InputError, StochhomError
from ..spectral import homogenize
from ..spectral.homogenize import default_boundary
from ..tensors import isotropic_projection, mandel_size
from .phases import PhaseSpec, resolve_phases

__all__ = ["homogenize_ensemble", "sample_parameters", "sample_record", "assemble", "MAX_PHASE_FRACTIONS"]

#: Phase fractions are stored for up to this many labels (not per grain of a polycrystal).
MAX_PHASE_FRACTIONS = 32


def sample_parameters(ensemble: xr.Dataset, k: int) -> dict[str, Any]:
    """Scalar per-sample coordinates of sample ``k`` (its parameters), as a dict."""
    out: dict[str, Any] = {}
    for name, coord in ensemble.coords.items():
        if coord.dims == ("sample",) and name != "sample":
            v = coord.values[k]
            out[name] = v.item() if hasattr(v, "item") else v
    return out


def sample_record(
    image: np.ndarray,
    phases: PhaseSpec,
    params: Mapping[str, Any],
    voxel_size: float = 1.0,
    **solver_options: Any,
) -> dict[str, Any]:
    """Homogenize one sample and return its record (plain numbers and arrays).

    Used by :func:`homogenize_ensemble` and by the parallel sweeps: records are small,
    picklable and turned into a ``Dataset`` by :func:`assemble`.
    """
    dim = image.ndim
    rec: dict[str, Any] = {"dim": dim, "volume": float(image.size * voxel_size**dim)}
    t0 = time.perf_counter()
    labels = np.asarray(image).reshape(-1)
    rec["phase_fraction"] = np.bincount(labels) / image.size
    try:
        mats = resolve_phases(phases, params)
        # minlength: a phase absent from this sample has fraction 0 (not a shorter vector)
        n_phases = (max(int(k) for k in mats) + 1) if isinstance(mats, Mapping) else len(mats)
        rec["phase_fraction"] = np.bincount(labels, minlength=n_phases) / image.size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = homogenize(image, mats, spacing=voxel_size, on_failure="warn", **solver_options)
    except StochhomError as exc:
        rec.update(physics=None, effective=None, iterations=None, residual=None, converged=0,
                   status=f"failed: {exc}", solve_time=time.perf_counter() - t0)
        return rec
    converged = bool(np.all(res.converged))
    rec.update(
        physics=res.physics,
        # an unconverged tensor is not an apparent property: NaN, with the diagnostics kept
        effective=res.effective if converged else np.full_like(res.effective, np.nan),
        iterations=res.iterations,
        residual=np.array([float(r[-1]) for r in res.residuals]),
        converged=int(converged),
        status="ok" if converged else "failed: not converged, statuses " + json.dumps(res.info["status"]),
        solve_time=time.perf_counter() - t0,
    )
    return rec


def _physics_of(records: list[dict[str, Any]], physics: str | None) -> str:
    kinds = {r["physics"] for r in records if r["physics"] is not None}
    if physics is not None:
        return physics
    if len(kinds) > 1:
        raise InputError(f"samples mix physics {sorted(kinds)}")
    if not kinds:
        raise InputError("every sample failed; the physics of the ensemble is unknown (see the statuses)")
    return kinds.pop()


def assemble(
    records: list[dict[str, Any]],
    coords: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    physics: str | None = None,
) -> xr.Dataset:
    """Stack sample records into the apparent-properties ``Dataset`` (see module docstring)."""
    if not records:
        raise InputError("no samples to assemble")
    phys = _physics_of(records, physics)
    dim = records[0]["dim"]
    ne = mandel_size(dim) if phys == "elasticity" else dim
    n = len(records)
    eff = np.full((n, ne, ne), np.nan)
    its = np.full((n, ne), -1, dtype=np.int64)
    resid = np.full((n, ne), np.nan)
    for k, r in enumerate(records):
        if r["effective"] is not None:
            eff[k] = r["effective"]
            its[k] = r["iterations"]
            resid[k] = r["residual"]
    top = max(len(r["phase_fraction"]) for r in records)
    data: dict[str, Any] = {
        "iterations": (("sample", "load_case"), its),
        "residual": (("sample", "load_case"), resid),
        "converged": (("sample",), np.array([r["converged"] for r in records], dtype=np.int8)),
        "status": (("sample",), np.array([r["status"] for r in records], dtype=object).astype(str)),
        "solve_time": (("sample",), np.array([r["solve_time"] for r in records])),
        "volume": (("sample",), np.array([r["volume"] for r in records])),
    }
    if top <= MAX_PHASE_FRACTIONS:
        pf = np.zeros((n, top))
        for k, r in enumerate(records):
            pf[k, : len(r["phase_fraction"])] = r["phase_fraction"]
        data["phase_fraction"] = (("sample", "phase"), pf)
    if phys == "elasticity":
        data["stiffness"] = (("sample", "i", "j"), eff)
        k_, g_ = isotropic_projection(eff)
        data["bulk_modulus"] = (("sample",), k_)
        data["shear_modulus"] = (("sample",), g_)
    else:
        data["conductivity"] = (("sample", "i", "j"), eff)
        ev = np.full((n, ne), np.nan)
        ok = ~np.isnan(eff).any(axis=(1, 2))
        ev[ok] = np.linalg.eigvalsh(0.5 * (eff[ok] + np.swapaxes(eff[ok], 1, 2)))
        data["conductivity_eigenvalues"] = (("sample", "k"), ev)
    ds = xr.Dataset(data, coords=dict(coords or {}))
    from .. import __version__

    out_attrs = {"physics": phys, "dim": dim, "stochhom_version": __version__}
    out_attrs["notation"] = (
        ("Mandel (11, 22, 33, 23, 13, 12)" if dim == 3 else "Mandel plane strain (11, 22, 12)")
        if phys == "elasticity" else "d x d conductivity"
    )
    out_attrs.update(attrs or {})
    ds.attrs.update(out_attrs)
    return ds


def _per_sample_coords(ensemble: xr.Dataset) -> dict[str, Any]:
    return {name: (c.dims, c.values) for name, c in ensemble.coords.items()
            if c.dims and c.dims[0] == "sample" and not set(c.dims) & {"x", "y", "z"}}


def _describe(phases: PhaseSpec) -> str:
    if callable(phases):
        return f"callable {getattr(phases, '__qualname__', repr(phases))}"
    try:
        return json.dumps(phases, default=repr, sort_keys=True)
    except TypeError:
        return repr(phases)


def homogenize_ensemble(
    ensemble: xr.Dataset,
    phases: PhaseSpec,
    *,
    progress: bool = False,
    **solver_options: Any,
) -> xr.Dataset:
    """Apparent properties of every sample of an ensemble.

    Parameters
    ----------
    ensemble : xarray.Dataset
        From :func:`~stochhom.generate`, :func:`~stochhom.windows` or
        :func:`~stochhom.microstructure.load_specimens`.
    phases : list, dict, callable or phase tables
        The materials, possibly depending on each sample's parameters (see
        :mod:`stochhom.statistics.phases`): e.g. ``lambda p: [m, IsotropicElastic(
        p["contrast"], 0.3)]`` or ``{0: {...}, 1: {"law": "IsotropicElastic", "E":
        "contrast", "nu": 0.3}}``.
    progress : bool
        Show a progress bar.
    **solver_options
        Passed to :func:`~stochhom.homogenize` (``scheme``, ``discretization``,
        ``tol``, ``maxiter``, ``dtype``, ``workers``, ``boundary``, ...). Without
        ``boundary``, an ensemble marked non-periodic (windows, loaded specimens) is
        solved under the mixed condition and a periodic one by the FFT solver
        (:func:`~stochhom.spectral.homogenize.default_boundary`); the condition used is
        ``attrs["boundary"]``.

    Returns
    -------
    xarray.Dataset
        The apparent-properties dataset (module docstring). Failed samples are kept,
        with ``converged = 0`` and their status.
    """
    if not isinstance(ensemble, xr.Dataset) or "phase" not in ensemble:
        raise InputError("homogenize_ensemble needs an ensemble Dataset with a 'phase' variable")
    for bad in ("spacing", "on_failure"):
        if bad in solver_options:
            raise InputError(f"{bad!r} is set by homogenize_ensemble (from the ensemble / per sample)")
    if "sample" not in ensemble["phase"].dims:
        ensemble = ensemble.expand_dims("sample")
    per = ensemble.attrs.get("periodic")
    boundary = default_boundary(solver_options.pop("boundary", None), None if per is None else bool(per))
    if boundary != "periodic":
        solver_options["boundary"] = boundary
    h = float(ensemble.attrs.get("voxel_size", 1.0))
    images = ensemble["phase"].transpose("sample", ...).values
    iterator = range(images.shape[0])
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="homogenize", unit="sample")
    records = [sample_record(images[k], phases, sample_parameters(ensemble, k), h, **solver_options)
               for k in iterator]
    attrs = {f"ensemble_{k}": v for k, v in ensemble.attrs.items() if isinstance(v, (str, int, float))}
    attrs["solver"] = json.dumps(solver_options, default=repr, sort_keys=True)
    attrs["phases"] = _describe(phases)
    attrs["boundary"] = boundary
    coords = _per_sample_coords(ensemble)
    coords["sample"] = ("sample", ensemble["sample"].values)
    return assemble(records, coords, attrs)
