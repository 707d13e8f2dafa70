r"""The end-to-end study runner: ``stochhom run STUDY.toml``.

Stages, in order, each writing its outputs into the study's results directory:

=============  =======================================================  ==========================
stage          does                                                     writes
=============  =======================================================  ==========================
sweep          generate and homogenize every sample (resumable)         ``samples.zarr``
gallery        a few microstructures for the report                     ``gallery.nc``
rve            variance scaling and RVE size (when ``size`` is swept)   ``rve.json``
surrogates     GPR and PCE per target, inside physical bounds;          ``surrogates/``, ``surrogates.json``,
               grouped-CV predictions and pooled metrics                ``cv_predictions.csv``
propagation    input distribution through each surrogate; Sobol         ``propagation.json``, ``sobol.json``
               indices of the whole variance
validation     leakage demonstration (naive against grouped CV),        ``leakage.csv``, ``ood.csv``,
               out-of-distribution evaluation                           ``ood.json``
report         HTML report and ``summary.json``                         ``report.html``, ``summary.json``
=============  =======================================================  ==========================

**Caching.** Each stage records in ``stages.json`` the hash of what it depends on (the
sweep's results and the stage's own options); a re-run skips every stage whose hash
is unchanged and whose outputs exist, so a change of, say, the surrogate options
redoes the surrogates, propagation, validation and report, not the sweep. The sweep
itself resumes sample by sample (:func:`~stochhom.study.sweep.run_sweep`), so a killed
run loses at most the samples in flight.

**Timings.** ``stages.json`` and the ``stages`` of ``study.json`` hold, per stage, the
``seconds`` and ``finished`` time of its last run; ``study.json`` is written after the
sweep and updated after every later stage, the report included. Its ``compile`` entry
(``seconds``, ``processes``) is the kernel warm-up of the sweep, summed over the store's
``warmup_time``: counted once per worker process, and in no sample's ``solve_time``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..log import emitter, get_logger
from ..surrogates.tensor import TENSOR_TARGETS
from .pipeline import PipelineConfig, pipeline_config
from .schema import ADAPTIVE_LIMITS, Study

__all__ = ["STAGES", "cv_groups", "fields_supported", "results_dir", "run_study", "sample_fields",
           "solve_sample_fields"]

_logger = get_logger(__name__)

#: Version of what the stages compute: a change redoes every stage but the sweep of existing results.
#: 7: co-kriging counts the estimated rho, the SVE scatter has its interval; 6: local fields in the gallery;
#: 5: the structure stage, tensor noise correlation.
PIPELINE_VERSION = 7

#: Seconds of kernel warm-up per sweep process above which the runner suggests ``stochhom warmup``
#: (loading cached kernels takes about 1 s; compiling the quickstart's, 20-40 s).
_SLOW_WARMUP = 5.0

#: The stages of :func:`run_study`, in order.
STAGES = ("sweep", "gallery", "fields", "rve", "surrogates", "propagation", "structure", "validation", "report")


def results_dir(study: Study) -> Path:
    """The results directory: ``[study].output``, or ``<name>_results`` next to a ``.zarr`` output."""
    out = Path(study.output)
    return out.with_name(out.stem + "_results") if out.suffix == ".zarr" else out


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("stochhom", "numpy", "scipy", "xarray", "numba", "zarr", "scikit-learn", "torch", "gpytorch",
                "chaospy", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# ----------------------------------------------------------------------------- stages


def _default_targets(study: Study) -> list[str]:
    if study.physics == "elasticity":
        return ["bulk_modulus", "shear_modulus"]
    return ["conductivity_eigenvalues_0", f"conductivity_eigenvalues_{study.dim - 1}"]


def _features(study: Study, props: Any) -> list[str]:
    names = []
    for name in study.parameters:
        if name in props.coords and props[name].dtype.kind in "biuf" and np.unique(props[name].values).size > 1:
            names.append(name)
    return names


def _input_spec(study: Study, props: Any, features: list[str], cfg: PipelineConfig) -> dict[str, Any]:
    spec = {}
    for name in features:
        if name in cfg.inputs:
            spec[name] = cfg.inputs[name]
        elif isinstance(study.parameters[name], dict):  # lhs / sobol: the design's distribution
            spec[name] = dict(study.parameters[name])
        else:
            v = props[name].values.astype(float)
            spec[name] = {"distribution": "uniform", "low": float(v.min()), "high": float(v.max())}
    return spec


#: Coordinate and variable names of the gallery dataset that a parameter may not take.
_GALLERY_RESERVED = ("sample", "point", "replicate", "seed", "specimen", "phase", "x", "y", "z")


def _gallery_image(study: Study, params: Mapping[str, Any], seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The label image (and the generator's per-sample extras) of one sample of the sweep,
    generated exactly as :func:`stochhom.study.sweep._one` does: same generator, seed, shape,
    voxel size, generator parameters and FFT threads, hence the very image the solver saw."""
    from ..microstructure.ensemble import GENERATORS

    out = GENERATORS[study.generator].func(
        study.sample_shape(params), np.random.default_rng(int(seed)), voxel_size=study.voxel_size,
        workers=int(study.solver.get("workers", 1)), **study.generator_params(params))
    return (out[0], dict(out[1])) if isinstance(out, tuple) else (out, {})


def _design_ranks(study: Study, points: Sequence[int]) -> tuple[list[str], np.ndarray]:
    """The swept numeric parameters that vary over ``points`` (in the study's order) and each
    point's normalized coordinates: the rank of its value among the distinct values, over
    their number less one (in [0, 1]; for an LHS or Sobol design, close to the design's own
    probability coordinate, so a log-uniform contrast is spread like a uniform fraction)."""
    table = study.points_table()
    names, cols = [], []
    for name in study.parameters:
        vals = [table[p][name] for p in points]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            continue
        distinct = np.unique(np.asarray(vals, dtype=float))
        if distinct.size < 2:
            continue
        names.append(name)
        cols.append(np.searchsorted(distinct, np.asarray(vals, dtype=float)) / (distinct.size - 1))
    u = np.column_stack(cols) if cols else np.zeros((len(points), 0))
    return names, u


def _spread_order(u: np.ndarray, n: int) -> Iterator[int]:
    """Rows of ``u`` (points in the normalized design) in the gallery's order of choice.

    For one sample, first the point nearest the centre of the design; otherwise first the
    points with the lowest and the highest value of the first parameter (ties: the earlier
    point), so that the gallery spans its range. Then, greedily, the point farthest from
    those already chosen (maximin distance; ties: the earlier point), until every point is
    given.
    """
    m = len(u)
    if m == 0:
        return
    dist = np.full(m, np.inf)
    if u.shape[1] == 0:
        start = [0]
    elif n == 1:
        start = [int(np.argmin(np.linalg.norm(u - 0.5, axis=1)))]
    else:
        start = list(dict.fromkeys([int(np.argmin(u[:, 0])), int(np.argmax(u[:, 0]))]))
    taken = np.zeros(m, dtype=bool)
    for i in start:
        taken[i] = True
        dist = np.minimum(dist, np.linalg.norm(u - u[i], axis=1))
        yield i
    for _ in range(m - len(start)):
        i = int(np.argmax(np.where(taken, -1.0, dist)))
        taken[i] = True
        dist = np.minimum(dist, np.linalg.norm(u - u[i], axis=1))
        yield i


def _gallery_samples(study: Study, n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The samples of the sweep shown in the gallery (entries of ``study.samples()`` with
    their ``seed``, ``image`` and ``extras``), in display order, and the swept parameters
    that order them.

    Up to ``n`` design points, spread over the design (:func:`_spread_order` in the
    normalized coordinates of :func:`_design_ranks`), replicate 0 of each; with fewer points
    than ``n``, replicate 1 of each in the same order, and so on. Where ``size`` is swept,
    only samples of the largest size (one shape per gallery). A sample whose generation
    fails (the sweep records it as failed) is passed over for the next one. Displayed in
    the order of the first varying swept parameter (then point and replicate).
    """
    samples = study.samples()
    shape = max((study.sample_shape(s["params"]) for s in samples), key=lambda t: (int(np.prod(t)), t))
    samples = [s for s in samples if study.sample_shape(s["params"]) == shape]
    by_key = {(s["point"], s["replicate"]): s for s in samples}
    points = sorted({s["point"] for s in samples})
    names, u = _design_ranks(study, points)
    order_it = _spread_order(u, n)
    order: list[int] = []
    chosen: list[dict[str, Any]] = []
    for r in range(study.replicates):
        k = 0
        while len(chosen) < n:
            if k == len(order):
                nxt = next(order_it, None)
                if nxt is None:
                    break
                order.append(nxt)
            s = by_key[(points[order[k]], r)]
            k += 1
            seed = int(study.seeds([s["sample"]])[0])
            try:
                image, extras = _gallery_image(study, s["params"], seed)
            except InputError:
                continue
            chosen.append({**s, "seed": seed, "image": np.asarray(image), "extras": extras})
        if len(chosen) >= n:
            break
    table = study.points_table()
    chosen.sort(key=lambda s: (*(table[s["point"]][p] for p in names[:1]), s["point"], s["replicate"]))
    return chosen, names


def _gallery_dataset(study: Study, chosen: Sequence[Mapping[str, Any]], names: Sequence[str]) -> Any:
    """The gallery as an ensemble ``Dataset`` laid out like
    :func:`stochhom.microstructure.ensemble.generate`'s, with the sweep's sample ids."""
    import xarray as xr

    from .. import __version__
    from ..microstructure.ensemble import AXES, GENERATORS, label_dtype

    h = float(study.voxel_size)
    shape = chosen[0]["image"].shape
    top = max(int(s["image"].max()) for s in chosen)
    stack = np.stack([s["image"].astype(label_dtype(top), copy=False) for s in chosen])
    seeds = np.array([s["seed"] for s in chosen], dtype=np.int64)
    coords: dict[str, Any] = {ax: (ax, (np.arange(m) + 0.5) * h) for ax, m in zip(AXES, shape)}
    coords.update({
        "sample": ("sample", np.array([s["sample"] for s in chosen], dtype=np.int64)),
        "point": ("sample", np.array([s["point"] for s in chosen], dtype=np.int64)),
        "replicate": ("sample", np.array([s["replicate"] for s in chosen], dtype=np.int64)),
        "seed": ("sample", seeds),
        "specimen": ("sample", np.array([f"{study.name}-{s:016x}" for s in seeds])),
    })
    for name in chosen[0]["params"]:  # every fixed and swept parameter, typed as in the sweep store
        if name in _GALLERY_RESERVED:
            continue
        vals = [s["params"][name] for s in chosen]
        if all(isinstance(v, (int, float)) for v in vals):
            coords[name] = ("sample", np.array(vals, dtype=float))
        elif all(isinstance(v, str) for v in vals):
            coords[name] = ("sample", np.array(vals, dtype=str))
        else:
            arr = np.asarray(vals)
            if arr.ndim == 2 and arr.dtype.kind in "biuf":  # a vector parameter, as generate() stores it
                coords[name] = (("sample", f"{name}_dim"), arr)
    data_vars: dict[str, Any] = {"phase": (("sample", *AXES[: len(shape)]), stack)}
    for key, (dims, _) in chosen[0]["extras"].items():
        data_vars[key] = (("sample", *dims), np.stack([np.asarray(s["extras"][key][1]) for s in chosen]))
    first = f"by {names[0]}, " if names else ""
    attrs = {
        "kind": "stochhom gallery",
        "generator": study.generator,
        "parameters": json.dumps(study.fixed, sort_keys=True, default=str),
        "periodic": int(GENERATORS[study.generator].is_periodic(study.fixed)),
        "voxel_size": h,
        "entropy": str(study.seed),
        "spawn_key": "[]",
        "study_name": study.name,
        "study_hash": study.hash(),
        "swept": json.dumps(list(names)),
        "selection": (f"samples of the sweep spread over its design ({first}then maximin over the "
                      "swept parameters' ranks), replicate 0 first; regenerated from their seeds"),
        "stochhom_version": __version__,
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _stage_gallery(study: Study, out: Path, cfg: PipelineConfig) -> None:
    """Write ``gallery.nc``: up to ``cfg.gallery_samples`` SVEs of the sweep, spread over its
    design (:func:`_gallery_samples`), regenerated from their seeds, hence the very images
    that were solved, with the sweep's ``sample``, ``point``, ``replicate`` and ``seed`` and
    every parameter as per-sample coordinates (:func:`_gallery_dataset`)."""
    from ..io import save_dataset

    _stage_fit(study, out)
    path = out / "gallery.nc"
    if cfg.gallery_samples == 0:
        return
    chosen, names = _gallery_samples(study, int(cfg.gallery_samples))
    if not chosen:
        raise InputError("the gallery has no sample: the generator failed on every sample tried")
    ens = _gallery_dataset(study, chosen, names)
    fields = _gallery_fields(study, chosen)
    if fields is not None:
        values, attrs = fields
        ens["local_field"] = (("sample", *[d for d in ens["phase"].dims if d != "sample"]), values)
        ens["local_field"].attrs.update(attrs)
    if path.exists():
        path.unlink()
    save_dataset(ens, path)


#: Solver options of a study that :func:`stochhom.spectral.solve` takes for the gallery's fields.
_FIELD_SOLVER_KEYS = ("scheme", "discretization", "tol", "maxiter", "dtype", "workers", "backend", "device")


def _gallery_fields(study: Study, chosen: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, dict[str, Any]] | None:
    r"""Local fields of the gallery's SVEs under one macroscopic load, for the report: the
    flux magnitude :math:`|q|` under the unit gradient along x (conductivity), or the von
    Mises stress under the unit strain :math:`\bar\varepsilon_{11}` (elasticity; in 2D
    plane strain with :math:`\sigma_{33}` from the phases' 3D stiffness, in-plane where a
    phase has none), solved by :func:`solve_sample_fields` as the sweep solves. ``None`` for
    what the periodic solver does not do here: window boundary conditions and composite
    voxels. A sample that fails has a NaN field."""
    from ..errors import StochhomError

    if not fields_supported(study):
        return None
    fields, quantity, failed = [], None, 0
    for s in chosen:
        image = np.asarray(s["image"])
        try:
            res = solve_sample_fields(study, image, s["params"])
            if res.physics == "elasticity":
                quantity = "von_mises" if res.stress_out_of_plane is not None or image.ndim == 3 else \
                    "von_mises_in_plane"
            else:
                quantity = "flux_magnitude"
            fields.append(np.asarray(res.quantity(quantity), dtype=np.float32))
        except StochhomError:
            failed += 1
            fields.append(np.full(image.shape, np.nan, dtype=np.float32))
    if quantity is None:
        return None
    attrs = {"quantity": quantity, "load": "unit macroscopic strain 11" if quantity.startswith("von") else
             "unit macroscopic gradient along x", "failed": failed}
    return np.stack(fields), attrs


def fields_supported(study: Study) -> bool:
    """Whether :func:`solve_sample_fields` applies: the periodic FFT solver without composite
    voxels (window boundary conditions solve voxel finite elements, whose fields are not
    exported yet)."""
    solver = dict(study.solver)
    return not solver.get("composite_voxels") and solver.get("boundary", "periodic") == "periodic"


def solve_sample_fields(study: Study, image: np.ndarray, params: Mapping[str, Any], load: Any = None) -> Any:
    """Local fields (:class:`~stochhom.spectral.FieldResult`) of one SVE of the study: its
    phases at ``params`` and the sweep's solver options, under ``load`` (Mandel strain or
    gradient; default the first unit load). Raises :class:`~stochhom.errors.StochhomError`
    when the solve fails or does not converge."""
    from ..errors import ConvergenceWarning, StochhomError
    from ..spectral import solve
    from ..statistics.phases import resolve_phases

    mats = resolve_phases(study.phases, params)
    values = list(mats.values()) if isinstance(mats, Mapping) else list(mats)
    elastic = any(m.physics == "elasticity" for m in values)  # a Void phase has no physics
    n = (3 if image.ndim == 2 else 6) if elastic else image.ndim
    macro = np.eye(n)[0] if load is None else np.asarray(load, dtype=float)
    if macro.shape != (n,):
        raise InputError(f"the load has {macro.size} component(s); this problem has {n} (Mandel notation in "
                         f"{image.ndim}D)")
    options = {k: study.solver[k] for k in _FIELD_SOLVER_KEYS if k in study.solver}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve(image, mats, spacing=study.voxel_size, on_failure="warn",
                    **{("macro_strain" if elastic else "macro_gradient"): macro}, **options)
    if not res.converged:
        raise StochhomError(f"the local fields did not converge ({res.iterations} iterations)")
    return res


def sample_fields(study: Study, samples: Sequence[int], load: Any = None) -> dict[int, Any]:
    """Local fields of selected samples of a study's sweep, each regenerated from its seed (the
    very image the sweep solved) and solved with the sweep's phases and solver options.

    Parameters
    ----------
    study : Study
    samples : sequence of int
        Sample ids of the sweep (``sample`` of the results).
    load : array_like, optional
        Macroscopic strain (gradient), Mandel notation; default the first unit load.

    Returns
    -------
    dict
        Sample id to :class:`~stochhom.spectral.FieldResult` (``to_vtk``, ``to_xdmf``,
        ``to_xarray``, ``statistics``).
    """
    if not fields_supported(study):
        raise InputError("local fields are exported for the periodic FFT solver without composite voxels; this "
                         "study sets [solver] boundary or composite_voxels")
    table = {s["sample"]: s for s in study.samples()}
    bad = [k for k in samples if k not in table]
    if bad:
        raise InputError(f"no sample {bad[0]} in this study: its samples are 0 to {len(table) - 1}")
    out = {}
    for k in samples:
        params = table[k]["params"]
        seed = int(study.seeds([k])[0])
        image, _ = _gallery_image(study, params, seed)
        out[int(k)] = solve_sample_fields(study, np.asarray(image), params, load)
    return out


def _stage_fields(study: Study, out: Path, cfg: PipelineConfig) -> None:
    """``[output] fields``: write the local fields of the chosen samples (:func:`sample_fields`)
    to ``fields/sample_<k>.<format>`` and list them in ``fields/fields.json`` (sample,
    point, replicate, seed, parameters, load, iterations and the per-phase mean of the
    report's field quantity). A sample whose solve fails is listed with its error; the
    stage fails only when every sample fails."""
    import shutil

    from ..errors import StochhomError

    folder = out / "fields"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    table = {s["sample"]: s for s in study.samples()}
    seeds = study.seeds(cfg.field_samples)
    rows, failed = [], []
    for k, seed in zip(cfg.field_samples, seeds):
        row = {"sample": k, "point": table[k]["point"], "replicate": table[k]["replicate"], "seed": int(seed),
               "params": dict(table[k]["params"])}
        try:
            res = sample_fields(study, [k], cfg.field_load)[k]
        except StochhomError as exc:
            failed.append(k)
            rows.append({**row, "error": str(exc)})
            _logger.warning("fields of sample %d: %s", k, exc)
            continue
        path = res.save(folder / f"sample_{k}.{cfg.field_format}")
        name = "von_mises" if res.physics == "elasticity" else "flux_magnitude"
        if name == "von_mises" and res.stress_out_of_plane is None and res.phase.ndim == 2:
            name = "von_mises_in_plane"
        stats = res.statistics(name, None, bins=1)
        load = cfg.field_load or np.eye(res.mean_strain.size)[0].tolist()
        means = {str(int(p)): float(m) for p, m in zip(stats["phase"].values, stats["mean"].values)}
        rows.append({**row, "file": path.name, "load": load, "iterations": int(res.iterations), "quantity": name,
                     "phase_mean": means})
    _write_json(folder / "fields.json", {"format": cfg.field_format, "samples": rows})
    if len(failed) == len(cfg.field_samples):
        raise InputError(f"the local fields of every sample in [output] fields failed: {rows[0]['error']}")


def _low_sweep(study: Study, cfg: PipelineConfig, out: Path, *, workers: int | None, scheduler: str | None,
               progress: bool, log: Callable[[str], None] | None, say: Callable[..., None]) -> None:
    """With ``[fidelity.low]``: run (or resume) the low fidelity's sweep into ``samples_low.zarr``
    (a changed ``[fidelity.low]`` starts it over); without it, remove a stale one."""
    import shutil

    from .sweep import run_sweep

    path = out / "samples_low.zarr"
    if cfg.fidelity_low is None:
        if path.exists():
            shutil.rmtree(path)
        return
    low = low_fidelity_study(study, cfg, out)
    restart = False
    if path.exists():
        try:
            import xarray as xr

            restart = dict(xr.open_zarr(path, consolidated=False).attrs).get("study_hash") != low.hash()
        except Exception:  # unreadable: start over (the store is ours)
            restart = True
    say(f"low fidelity: {len(low.samples())} samples on {'x'.join(map(str, low.shape))} voxels"
        + (" (its options changed: started over)" if restart else ""))
    run_sweep(low, workers=workers, scheduler=scheduler, progress=progress, log=log, restart=restart)


def _adaptive_data(study: Study, props: Any, dist: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The converged samples of an adaptive study as (u, y, point): the swept parameters mapped
    to the unit cube by their design distributions' CDFs, the target, the point ids."""
    target = study.adaptive["target"]
    names = list(study.parameters)
    X = np.column_stack([props[n].values.astype(float) for n in names])
    from ..statistics.summary import scalar_columns

    y = np.asarray(scalar_columns(props, [target])[target], dtype=float)
    ok = np.isfinite(X).all(axis=1) & np.isfinite(y)
    if "converged" in props:
        ok &= props["converged"].values.astype(bool)
    return dist.cdf(X[ok]), y[ok], props["point"].values[ok]


def _adaptive_sweep(study: Study, out: Path, *, workers: int | None, scheduler: str | None, progress: bool,
                    log: Callable[[str], None] | None, repair: bool, say: Callable[..., None]) -> Any:
    r"""The sweep of a study with ``[sweep.adaptive]``: the initial lhs/sobol design, then rounds
    of :class:`~stochhom.surrogates.adaptive.AdaptiveDesign` (a GP of the target over the
    swept parameters mapped to the unit cube by their design CDFs, so the integrated
    variance is over the design distribution), each round's samples appended to the same
    store (:func:`~stochhom.study.sweep.run_sweep` with ``grow_from``) until the stopping
    rule holds or ``max_points`` samples are spent.

    ``adaptive.json`` keeps the added samples and the history of the rounds: a run
    resumed after an interruption continues from it (the unfinished round's samples are
    resumed in the store; a round not yet recorded is recomputed from the same data,
    deterministically).
    """
    from ..surrogates.adaptive import AdaptiveDesign
    from ..surrogates.distributions import InputDistribution
    from ..surrogates.gpr import GPR
    from .sweep import run_sweep

    cfg = study.adaptive
    names = list(study.parameters)
    dist = InputDistribution({n: dict(study.parameters[n]) for n in names})
    state_path = out / "adaptive.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state.get("study") != study.hash():
        state = {"study": study.hash(), "added": [], "rounds": [], "stopped": None}
    limits = {k: cfg[k] for k in ADAPTIVE_LIMITS}
    if state["stopped"] and state.get("limits") != limits:
        # a new budget or stopping rule: the design goes on from the samples solved (its
        # closing round, which added nothing, is replaced by the rounds that follow)
        say(f"adaptive design: {', '.join(f'{k} = {v}' for k, v in limits.items())} (was "
            f"{', '.join(f'{k} = {v}' for k, v in (state.get('limits') or {}).items()) or 'unrecorded'}): "
            "continuing from the samples solved")
        state["stopped"] = None
        if state["rounds"] and not state["rounds"][-1]["added"]:
            state["rounds"].pop()
    state["limits"] = limits
    unit = {n: {"distribution": "uniform", "low": 0.0, "high": 1.0} for n in names}
    n_initial = int(study.points) * study.replicates
    design = AdaptiveDesign(unit, initial_points=max(2, int(study.points)), initial_replicates=study.replicates,
                            batch=cfg["batch"], max_solves=max(cfg["max_points"], n_initial + cfg["batch"]),
                            stop=None if cfg["stop"] == "none" else cfg["stop"], replicates=cfg["replicates"],
                            n_candidates=cfg["candidates"], n_integration=cfg["integration"],
                            model=GPR(noise="heteroscedastic" if study.replicates > 1 else "homoscedastic",
                                      n_restarts=1, random_state=study.seed), rng=study.seed)
    added = [dict(a) for a in state["added"]]
    last = state["rounds"][-1]["added"] if state["rounds"] else 0
    previous = dataclasses.replace(study, added=tuple(added[:len(added) - last])) if last else None
    while True:
        current = dataclasses.replace(study, added=tuple(added), output=out / "samples.zarr")
        grow = dataclasses.replace(previous, output=out / "samples.zarr") if previous is not None else None
        props = run_sweep(current, workers=workers, scheduler=scheduler, progress=progress, log=log, repair=repair,
                          grow_from=grow)
        repair = False
        if state["stopped"]:
            return props
        u, y, point = _adaptive_data(study, props, dist)
        n_samples = int(props.sizes["sample"])
        design.max_solves = len(u) + max(0, cfg["max_points"] - n_samples)  # failed samples count as spent
        chosen, info = design.propose(u, y)
        entry = {"round": len(state["rounds"]), "samples": n_samples, "converged": len(u),
                 "imse": info["imse"], "epistemic_std": info["epistemic_std"],
                 "epistemic_share": info["epistemic_share"], "predicted_imse": info["predicted_imse"],
                 "added": len(chosen), "new_points": info["new_points"], "replicates": info["replicates"]}
        if not len(chosen):
            entry["added"] = 0
            state["stopped"] = info["stop"]
            state["rounds"].append(entry)
            _write_json(state_path, state)
            say(f"adaptive design: stopped ({info['stop']}) after {n_samples} samples, epistemic share "
                f"{info['epistemic_share']:.3f}")
            return props
        n_points = int(point.max()) + 1 if len(point) else int(study.points)
        n_points = max(n_points, len(current.points_table()))
        solved = {tuple(r): int(p) for r, p in zip(u, point)}
        new_here: dict[tuple, int] = {}
        for row in chosen:
            key = tuple(row)
            if key in solved:
                added.append({"point": solved[key], "values": {}})
                continue
            if key not in new_here:
                new_here[key] = n_points
                n_points += 1
            theta = dist.ppf(np.clip(np.asarray([row]), 1e-9, 1 - 1e-9))[0]
            added.append({"point": new_here[key], "values": {n: float(v) for n, v in zip(names, theta)}})
        state["added"] = added
        state["rounds"].append(entry)
        _write_json(state_path, state)
        say(f"adaptive design, round {entry['round'] + 1}: {len(chosen)} sample(s) ({info['new_points']} new "
            f"point(s), {info['replicates']} replicate(s)) after {n_samples}; epistemic share "
            f"{info['epistemic_share']:.3f}, predicted IMSE {info['imse']:.3g} -> {info['predicted_imse']:.3g}")
        previous = current


#: Samples of the fitted model that :func:`_stage_fit` compares the specimen with.
FIT_SAMPLES = 16


def _stage_fit(study: Study, out: Path) -> None:
    """With ``[generator] fit``: ``fit.json``, the fitted parameters and their goodness of
    fit (:func:`~stochhom.microstructure.fitting.goodness_of_fit`: the specimen's S2,
    lineal path and mean chord against :data:`FIT_SAMPLES` samples of the fitted model of
    the specimen's shape), and ``fit_images.npz``, the segmented specimen and one model
    sample (a middle slice of 3D images) for the report."""
    from ..microstructure import load_specimens
    from ..microstructure.fitting import goodness_of_fit

    path = out / "fit.json"
    if not study.fit:
        path.unlink(missing_ok=True)
        (out / "fit_images.npz").unlink(missing_ok=True)
        return
    spec = study.source.get("generator", {}).get("fit")
    spec = {"path": spec} if isinstance(spec, str) else dict(spec or {})
    phase = int(spec.get("phase", 1))
    ds = load_specimens(study.fit["path"], voxel_size=study.voxel_size, threshold=spec.get("threshold"),
                        downsample=spec.get("downsample", 1))
    labels, h = ds["phase"].values[0], float(ds.attrs["voxel_size"])
    params = study.generator_params(study.fixed)
    gof = goodness_of_fit(labels, study.generator, params, n=FIT_SAMPLES, rng=study.seed, phase=phase,
                          voxel_size=h, periodic=False)
    record = {**study.fit, "generator": study.generator, "phase": phase, "voxel_size": h, "n": FIT_SAMPLES,
              "r": gof["r"].values, "z": gof["z"].values,
              **{k: np.asarray(gof[k].values).tolist() for k in gof.data_vars}}
    _write_json(path, record)
    from ..microstructure.ensemble import GENERATORS

    model = GENERATORS[study.generator].func(labels.shape, np.random.default_rng(study.seed), voxel_size=h,
                                             **params)
    model = model[0] if isinstance(model, tuple) else model

    def middle(a: np.ndarray) -> np.ndarray:
        return a if a.ndim == 2 else a[a.shape[0] // 2]

    np.savez_compressed(out / "fit_images.npz", specimen=middle(np.asarray(labels) == phase).astype(np.uint8),
                        model=middle(np.asarray(model) == phase).astype(np.uint8))


def _point_variance(study: Study, sel: Any, target: str) -> float | None:
    r"""Kanit's point variance :math:`D_Z^2 = p(1-p)(Z_1 - Z_0)^2` of a two-phase property
    (the variance of the property field itself), so that the integral range of a property
    can be read from its variance scaling; ``None`` where it is not defined (more than two
    phases, anisotropic phases, or a target that is not a phase property)."""
    from ..materials import Conductivity, IsotropicElastic
    from ..statistics import resolve_phases
    from ..statistics.rve import point_variance

    if target.startswith("phase_fraction") or "phase_fraction" not in sel or sel.sizes.get("phase") != 2:
        return None
    try:
        params = {k: sel[k].values[0].item() for k, da in sel.coords.items() if da.dims == ("sample",)}
        mats = resolve_phases(study.phases, params)
        mats = [mats[k] for k in sorted(mats)] if isinstance(mats, dict) else list(mats)
    except (InputError, KeyError, TypeError, ValueError):
        return None
    if len(mats) != 2:
        return None
    if all(isinstance(m, Conductivity) and np.ndim(m.k) == 0 for m in mats) and (
            target.startswith("conductivity_eigenvalues_") or target in {f"conductivity_{i}_{i}" for i in range(3)}):
        z = [float(m.k) for m in mats]
    elif all(isinstance(m, IsotropicElastic) for m in mats) and target in ("bulk_modulus", "shear_modulus"):
        if target == "shear_modulus":
            z = [m.shear_modulus for m in mats]
        else:
            z = [m.bulk_modulus if study.dim == 3 else m.plane_strain_bulk_modulus for m in mats]
    else:
        return None
    p = float(np.nanmean(sel["phase_fraction"].values[:, 1]))
    return point_variance(p, z[1], z[0]) if 0.0 < p < 1.0 else None


def _stage_rve(study: Study, out: Path, cfg: PipelineConfig, props: Any, say: Callable[[str], None],
               workers: int = 1) -> None:
    from ..statistics.rve import variance_scaling

    if "size" not in study.parameters:
        (out / "rve.json").unlink(missing_ok=True)
        return
    others = [p for p in study.parameters if p != "size"]
    sel = props
    for p in others:  # the first point of the other parameters
        sel = sel.where(sel[p] == sel[p].values[0], drop=True)
    n_sizes = int(np.unique(sel["volume"].values).size)
    result = {}
    for target in cfg.rve_targets or [*_default_targets(study), "phase_fraction_1"]:
        d2 = _point_variance(study, sel, target)
        try:
            fit = variance_scaling(sel, target, alpha=None if n_sizes >= 3 else 1.0, rng=study.seed,
                                   min_samples=min(10, int(sel.sizes["sample"] // max(n_sizes, 1))),
                                   point_variance=d2)
        except InputError as exc:
            say(f"  rve: {target} skipped: {exc}")
            continue
        size = fit.rve_size(cfg.rve_epsilon, cfg.rve_realizations)
        result[target] = {
            "volumes": fit.volumes, "variances": fit.variances, "counts": fit.counts, "means": fit.means,
            "alpha": fit.alpha, "alpha_ci": list(fit.alpha_ci), "amplitude": fit.amplitude,
            "integral_range": None if not np.isfinite(fit.integral_range) else fit.integral_range,
            "integral_range_ci": None if not np.isfinite(fit.integral_range) else list(fit.integral_range_ci),
            "chi2": fit.chi2, "dof": len(fit.volumes) - (2 if n_sizes >= 3 else 1),
            "point_variance": d2 if d2 is not None else (fit.point_variance if target.startswith("phase_fraction")
                                                        else None),
            "epsilon": cfg.rve_epsilon, "realizations": cfg.rve_realizations, "dim": study.dim,
            "rve_volume": size.value, "rve_volume_ci": [size.low, size.high],
            "fixed_point": {p: sel[p].values[0].item() for p in others},
        }
    _write_json(out / "rve.json", result)
    _stage_hierarchy(study, out, cfg, sel, [t for t in result if not t.startswith("phase_fraction")]
                     or [t for t in cfg.rve_targets or _default_targets(study) if not t.startswith("phase_fraction")],
                     say, workers)


def _hierarchy_samples(study: Study, sel: Any, cap: int | None) -> list[dict[str, Any]]:
    """The sweep's samples (entries of ``study.samples()``) at the RVE stage's fixed point,
    the first ``cap`` replicates of each size, in the store's order."""
    samples = study.samples()
    chosen, per_size = [], {}
    for k in np.asarray(sel["sample"].values, dtype=int):
        s = samples[k]
        size = int(s["params"]["size"])
        if cap is not None and per_size.get(size, 0) >= cap:
            continue
        per_size[size] = per_size.get(size, 0) + 1
        chosen.append(s)
    return chosen


def _worker_count(workers: int | None) -> int:
    """Processes for the stages that solve outside the sweep: as many as the sweep would use."""
    if workers is not None:
        return max(1, int(workers))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _hierarchy_records(study: Study, sample: Mapping[str, Any], conditions: Sequence[str]) -> list[dict[str, Any]]:
    """One SVE of the sweep, regenerated from its seed, solved under each condition
    (:func:`_stage_hierarchy`); top level, so that worker processes can run it."""
    from ..statistics.ensemble import sample_record

    base = {k: v for k, v in study.solver.items() if k in ("tol", "maxiter")}
    seed = int(study.seeds([sample["sample"]])[0])
    image, _ = _gallery_image(study, sample["params"], seed)
    out = []
    for cond in conditions:
        opts = dict(base, discretization="q1", workers=int(study.solver.get("workers", 1))) if cond == "periodic" \
            else dict(base, boundary=cond, tol=min(base.get("tol", 1e-8), 1e-8))
        out.append(sample_record(np.asarray(image), study.phases, sample["params"], study.voxel_size, **opts))
    return out


def _stage_hierarchy(study: Study, out: Path, cfg: PipelineConfig, sel: Any, targets: Sequence[str],
                     say: Callable[[str], None], workers: int = 1) -> None:
    """``[rve].boundary``: the same SVEs solved under each boundary condition (Kanit et al.
    2003), their mean and dispersion against the SVE volume, each condition's bias and the
    volume where the static and kinematic means agree within ``epsilon``; ``hierarchy.json``.

    The SVEs are regenerated from their seeds (the very images of the sweep). ``"periodic"``
    runs the FFT solver with Q1 elements, the discretization of the finite-element
    conditions, so that every SVE obeys SUBC <= periodic <= KUBC exactly. The SVEs are
    spread over ``workers`` processes (each SVE is independent: the result does not depend
    on their number).
    """
    import functools
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ..statistics.ensemble import assemble
    from ..statistics.rve import bracket_size, hierarchy_statistics

    path = out / "hierarchy.json"
    if not cfg.rve_boundary:
        path.unlink(missing_ok=True)
        return
    chosen = _hierarchy_samples(study, sel, cfg.rve_boundary_replicates)
    conds = list(cfg.rve_boundary)
    solve = functools.partial(_hierarchy_records, study, conditions=conds)
    workers = min(workers, len(chosen))
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            per_sample = list(pool.map(solve, chosen, chunksize=max(1, len(chosen) // (4 * workers))))
    else:
        per_sample = [solve(s) for s in chosen]
    records = {c: [recs[i] for recs in per_sample] for i, c in enumerate(conds)}
    seconds = {c: float(sum(r["solve_time"] for r in records[c])) for c in conds}
    coords = {"sample": ("sample", np.array([s["sample"] for s in chosen])),
              "size": ("sample", np.array([int(s["params"]["size"]) for s in chosen]))}
    props = {c: assemble(r, coords) for c, r in records.items()}
    result: dict[str, Any] = {"conditions": list(cfg.rve_boundary), "epsilon": cfg.rve_epsilon,
                              "samples": len(chosen), "solve_seconds": seconds, "dim": study.dim,
                              "failed": {c: int(np.sum(p["converged"].values == 0)) for c, p in props.items()},
                              "targets": {}}
    for target in targets:
        try:
            h = hierarchy_statistics(props, target)
        except InputError as exc:
            say(f"  hierarchy: {target} skipped: {exc}")
            continue
        lower, upper = cfg.rve_boundary[0], cfg.rve_boundary[-1]
        bracket = bracket_size(h, cfg.rve_epsilon, lower=lower, upper=upper, reference=h.attrs["reference"])
        result["targets"][target] = {
            "volumes": h["volume"].values, "reference": h.attrs["reference"],
            "effective_estimate": h.attrs["effective_estimate"], "ordered": float(h["ordered"]),
            "bracket": [lower, upper], "bracket_volume": None if not np.isfinite(bracket) else bracket,
            "gap": h["gap"].values,
            **{c: {k: h[k].sel(condition=c).values for k in ("count", "mean", "mean_low", "mean_high", "variance",
                                                             "variance_low", "variance_high", "bias")}
               for c in cfg.rve_boundary},
        }
    _write_json(path, result)


def _models(cfg: PipelineConfig, seed: int, log_inputs: Sequence[int] = (),
            low: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """The surrogate models of the study; inputs whose design distribution is log-uniform or
    log-normal are regressed on their logarithm (:class:`~stochhom.surrogates.warping.LogInputs`).
    ``low``: the low fidelity's inputs and (transformed) target for ``"cokriging"``
    (:func:`_low_fidelity`)."""
    from ..surrogates import GPR, PCE
    from ..surrogates.warping import LogInputs

    out: dict[str, Any] = {}
    if "gpr" in cfg.models:
        opts = {"kernel": "matern52", "noise": "heteroscedastic", "n_restarts": 1, **cfg.gpr}
        out["gpr"] = GPR(random_state=seed, **opts)
    if "pce" in cfg.models:
        opts = {"degree": "auto", "fit_method": "lars", "max_degree": 6, "std_method": "bootstrap", **cfg.pce}
        out["pce"] = PCE(random_state=seed, **opts)
    if "cokriging" in cfg.models and low is not None:  # whole-tensor targets have no low fidelity here
        from ..surrogates.cokriging import CoKriging

        x_low, y_low = low
        x_low = np.array(x_low, dtype=float)
        for c in log_inputs:  # the same warping as LogInputs applies to the high-fidelity inputs
            x_low[:, c] = np.log(x_low[:, c])
        high = GPR(random_state=seed, **{"kernel": "matern52", "noise": "heteroscedastic", "n_restarts": 1,
                                         **cfg.gpr})
        low_gp = GPR(random_state=seed, **{"kernel": "matern52", "noise": "homoscedastic", "n_restarts": 1,
                                           **{k: v for k, v in cfg.gpr.items() if k != "noise"}})
        out["cokriging"] = CoKriging(x_low, y_low, low_model=low_gp, high_model=high, rho="select")
    if log_inputs:
        out = {name: LogInputs(model, list(log_inputs)) for name, model in out.items()}
    return out


def low_fidelity_study(study: Study, cfg: PipelineConfig, out: Path) -> Study:
    """The low fidelity of ``[fidelity.low]``: the study's SVE (the same physical size: the
    voxel size scales with the grid), its own design of ``points`` x ``replicates`` over the
    same distributions, other seeds (``seed + 1``), stored in ``samples_low.zarr``."""
    low = cfg.fidelity_low
    voxel = study.voxel_size * study.shape[0] / low["shape"][0]
    return dataclasses.replace(study, name=f"{study.name}_low", output=out / "samples_low.zarr",
                               shape=tuple(low["shape"]), voxel_size=voxel, points=low["points"],
                               replicates=low["replicates"], seed=study.seed + 1, pipeline={}, adaptive=None, added=())


def _low_fidelity(study: Study, out: Path, cfg: PipelineConfig, target: str, features: list[str],
                  transform: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The low fidelity's converged samples for ``target`` (inputs, and the target as the
    wrapped model regresses it: its log for a log scale), or None without ``[fidelity.low]``."""
    if cfg.fidelity_low is None or "cokriging" not in cfg.models:
        return None
    from ..surrogates.data import training_data
    from .sweep import open_store

    props = open_store(out / "samples_low.zarr").load()
    td = training_data(props, target, features)
    y = np.log(td.y) if transform == "log" else np.asarray(td.y, dtype=float)
    return td.X, y


def _regressed_scale(bounds: Any, log: bool, scale: str) -> str:
    """How :func:`_wrap` regresses a target: ``"log"`` (its logarithm) or ``"linear"``."""
    return "log" if (bounds is not None and scale == "log") or (bounds is None and log) else "linear"


def _log_inputs(study: Study, features: list[str]) -> list[int]:
    """Features regressed on their logarithm: those the design draws log-uniformly or log-normally."""
    from ..surrogates.warping import log_columns

    return log_columns(features, {k: v for k, v in study.parameters.items() if isinstance(v, dict)})


def cv_groups(props: Any, n_splits: int) -> str:
    """The unit that grouped cross-validation holds out: ``"point"`` or ``"specimen"``.

    A surrogate is asked about new parameter values, and the replicates of one parameter
    point are nearly the same input with different microstructures: left on both sides of
    a split they let the model answer from its training set (the optimism that the leakage
    demonstration measures). So the folds hold out whole parameter points (each holds its
    specimens, and a specimen's windows), when there are at least ``max(2 n_splits, 10)`` of
    them (so that every training fold still spans the parameter space); otherwise (e.g. a
    sweep of the SVE size alone, three sizes) whole specimens.
    """
    if "point" in props.coords and np.unique(props["point"].values).size >= max(2 * n_splits, 10):
        return "point"
    return "specimen"


def _data(study: Study, props: Any, cfg: PipelineConfig) -> tuple[list[str], dict[str, Any], str]:
    """Features, training data per target (physical values, never logs: the models map them),
    and the unit that grouped cross-validation holds out."""
    from ..surrogates.data import training_data

    features = _features(study, props)
    if not features:
        raise InputError("no numeric swept parameter varies: the surrogate stages need at least one")
    targets = cfg.targets or _default_targets(study)
    unit = cv_groups(props, cfg.n_splits)
    grouped = props.assign_coords(specimen=("sample", props["point"].values)) if unit == "point" else props
    data = {}
    for t in targets:
        if t in TENSOR_TARGETS:  # whole tensors: see _tensor_data
            continue
        td = training_data(grouped, t, features)
        data[td.target_names[0]] = td
    return features, data, unit


@dataclasses.dataclass(frozen=True)
class _TensorData:
    X: np.ndarray
    T: np.ndarray
    groups: np.ndarray
    feature_names: list[str]


def _tensor_data(study: Study, props: Any, cfg: PipelineConfig, features: list[str], unit: str) -> dict[str, Any]:
    """Training data of the tensor targets (``conductivity``, ``stiffness``): inputs, the whole
    apparent tensors of the converged samples, and their groups."""
    out = {}
    for t in cfg.targets or ():
        if t not in TENSOR_TARGETS:
            continue
        if TENSOR_TARGETS[t] != study.physics or t not in props:
            raise InputError(f"[surrogate].targets: {t!r} is not the tensor of this {study.physics} study; use "
                             f"{'conductivity' if study.physics == 'conductivity' else 'stiffness'}")
        X = np.stack([props[f].values.astype(float) for f in features], axis=1)
        T = props[t].transpose("sample", ...).values.astype(float)
        ok = np.isfinite(X).all(axis=1) & np.isfinite(T).all(axis=(1, 2))
        if "converged" in props:
            ok &= props["converged"].values.astype(bool)
        groups = props["point"].values if unit == "point" else (
            props["specimen"].values if "specimen" in props.coords else props["sample"].values)
        out[t] = _TensorData(X[ok], 0.5 * (T[ok] + np.swapaxes(T[ok], 1, 2)), np.asarray(groups)[ok], features)
    return out


#: Relative tolerance of the check that training samples respect candidate bounds (round-off of
#: the solver); samples within it are clipped by the bounded transform.
_BOUNDS_RTOL = 1e-4


def _fraction_window(study: Study, props: Any, fraction: str) -> float:
    """The largest deviation of a measured phase-1 fraction from its nominal value, over the
    converged samples (0 when the generator makes the fraction exact)."""
    if "phase_fraction" not in props or props.sizes.get("phase", 0) < 2:
        return 0.0
    measured = props["phase_fraction"].transpose("sample", "phase").values[:, 1]
    if fraction in props.coords and props[fraction].dims == ("sample",):
        nominal = props[fraction].values.astype(float)
    else:
        nominal = np.full(measured.shape, float(study.fixed[fraction]))
    ok = np.isfinite(measured) & np.isfinite(nominal)
    if "converged" in props:
        ok &= props["converged"].values.astype(bool)
    return float(np.max(np.abs(measured[ok] - nominal[ok]))) if ok.any() else 0.0


def _choose_bounds(study: Study, props: Any, cfg: PipelineConfig, target: str, td: Any) -> tuple[Any, dict]:
    """The physical bounds of one target (``[surrogate].bounds``): the tightest kind that every
    training sample respects (``"auto"``), or the one asked for. Returns ``(bounds or None, record)``."""
    from ..surrogates.bounded import BOUND_KINDS, PhysicalBounds, bounded_quantity
    from .schema import StudyError

    mode = cfg.bounds
    record: dict[str, Any] = {"mode": mode, "checked": []}
    if mode == "none":
        return None, record
    try:
        bounded_quantity(target)
    except InputError as exc:
        if mode != "auto":
            raise StudyError(f"[surrogate].bounds = {mode!r}: {exc}") from None
        record["reason"] = str(exc)
        return None, record
    fraction = None
    if "volume_fraction" in td.feature_names or "volume_fraction" in study.fixed:
        fraction = "volume_fraction"
    window = _fraction_window(study, props, fraction) if fraction else 0.0
    record.update(fraction=fraction, fraction_window=window)
    for kind in (BOUND_KINDS if mode == "auto" else (mode,)):
        try:
            b = PhysicalBounds(study.phases, target, kind=kind, dim=study.dim, features=td.feature_names,
                               fixed={k: v for k, v in study.fixed.items() if k not in td.feature_names},
                               fraction=fraction if kind != "phases" else None, fraction_window=window)
            lo, hi = b(td.X)
        except InputError as exc:
            if mode != "auto":
                raise StudyError(f"[surrogate].bounds = {mode!r} cannot be used for {target}: {exc}") from None
            record["checked"].append({"kind": kind, "skipped": str(exc)})
            continue
        y = np.asarray(td.y, dtype=float)
        tol = _BOUNDS_RTOL * np.maximum(np.abs(lo), np.abs(hi))
        outside = int(np.sum((y < lo - tol) | (y > hi + tol)))
        record["checked"].append({"kind": kind, "outside": outside, "n": int(y.size)})
        if outside == 0:
            record.update(kind=kind, description=b.describe())
            return b, record
        if mode != "auto":
            raise StudyError(f"[surrogate].bounds = {mode!r}: {outside} of {y.size} training samples of {target} "
                             f"lie outside the {b.describe()}; use bounds = \"auto\" or a looser kind")
    record["reason"] = "no bound kind holds every training sample"
    return None, record


def _wrap(model: Any, bounds: Any, log: bool, scale: str = "log") -> Any:
    """The model that the stages fit for one target: bounded (its law truncated to the bounds),
    log-normal, or as it is."""
    from ..surrogates.bounded import BoundedSurrogate

    if bounds is not None:
        return BoundedSurrogate(model, bounds, scale=scale, rtol=_BOUNDS_RTOL)
    if log:
        return BoundedSurrogate(model, (0.0, float("inf")), scale="log", rtol=0.0)
    return model


def _target_setup(study: Study, props: Any, cfg: PipelineConfig, target: str, td: Any) -> tuple[Any, bool, dict]:
    """Bounds, whether to regress the logarithm, and the record of the choice, for one target."""
    bounds, record = _choose_bounds(study, props, cfg, target, td)
    positive = bool(np.all(np.asarray(td.y) > 0))
    log = bounds is None and cfg.log_targets and positive
    record["scale"] = "log" if positive else "linear"
    if bounds is not None:
        record["transform"] = (f"{'ln y' if positive else 'y'} regressed; predictive law truncated to the bounds"
                               + (" (a truncated lognormal)" if positive else ""))
    else:
        record["transform"] = "log" if log else "none"
    return bounds, log, record


def _scatter(td: Any) -> dict[str, float | int | None]:
    r"""The microstructural scatter in the training data, model-free: the pooled variance of the
    replicates of each parameter point, :math:`s_p^2 = \sum_k (n_k - 1) s_k^2 / \sum_k (n_k - 1)`,
    against the total variance of the target. Its square root is the noise floor of any
    surrogate's RMSE, and :math:`1 - s_p^2/\operatorname{Var} y` the highest :math:`R^2` a
    surrogate of the mean can reach."""
    y = np.asarray(td.y, dtype=float)
    _, inv = np.unique(td.X, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    counts = np.bincount(inv)
    means = np.bincount(inv, weights=y) / counts
    dof = int(np.sum(counts - 1))
    var_y = float(np.var(y, ddof=1)) if y.size > 1 else float("nan")
    if dof == 0:
        return {"scatter_variance": None, "scatter_std": None, "scatter_dof": 0, "variance": var_y,
                "scatter_share": None, "r2_ceiling": None, "points": int(counts.size)}
    squares = np.bincount(inv, weights=(y - means[inv]) ** 2)
    pooled = float(squares.sum() / dof)
    return {"scatter_variance": pooled, "scatter_std": float(np.sqrt(pooled)), "scatter_dof": dof,
            "scatter_variance_interval": (interval := _pooled_interval(squares, counts - 1)),
            "scatter_std_interval": None if interval is None else [math.sqrt(v) for v in interval],
            "variance": var_y, "scatter_share": pooled / var_y if var_y > 0 else None,
            "r2_ceiling": 1.0 - pooled / var_y if var_y > 0 else None, "points": int(counts.size)}


#: Bootstrap resamples of the parameter points behind the interval of the pooled SVE scatter.
SCATTER_BOOTSTRAP = 2000


def _pooled_interval(squares: np.ndarray, dof: np.ndarray, level: float = 0.95) -> list[float] | None:
    r"""Percentile-bootstrap interval of the pooled replicate variance
    :math:`s_p^2 = \sum_k SS_k / \sum_k d_k`, resampling the parameter points (``squares``
    :math:`SS_k`, the sums of squared deviations of their replicates, and ``dof`` :math:`d_k`).
    Resampling points, not replicates, keeps a scatter that varies over the design in the
    interval: with two replicates per point a single noisy point can carry half the pooled
    variance. Seeded, so a study's report does not change between runs; None with fewer than
    3 points that have replicates."""
    keep = dof > 0
    if keep.sum() < 3:
        return None
    ss, d = squares[keep], dof[keep].astype(float)
    idx = np.random.default_rng(0).integers(0, len(ss), size=(SCATTER_BOOTSTRAP, len(ss)))
    boot = ss[idx].sum(axis=1) / d[idx].sum(axis=1)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def _quiet_extrapolation(func: Callable[..., None]) -> Callable[..., None]:
    """Stages evaluate surrogates near or beyond their training box on purpose (CV folds, the
    edges of the input distribution, OOD shells): their extrapolation warnings are not news."""
    import functools
    import warnings

    from ..errors import OutOfDomainWarning

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", OutOfDomainWarning)
            func(*args, **kwargs)
        ood = [w for w in caught if issubclass(w.category, OutOfDomainWarning)]
        for w in caught:  # the other warnings are news: pass them on
            if not issubclass(w.category, OutOfDomainWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if ood:
            _logger.debug("%s: %d extrapolation warning(s) silenced (CV folds, OOD shells, distribution edges); "
                          "the first: %s", func.__name__.lstrip("_").replace("_", " ", 1), len(ood), ood[0].message)

    return wrapper


def _scored(model: Any, X: np.ndarray, y: np.ndarray) -> Any:
    from ..surrogates.predictive import predictive
    from ..validation.metrics import score_predictions

    return score_predictions(y, predictive(model, X))


def _cross_predict(model: Any, td: Any, splits: list[tuple[np.ndarray, np.ndarray]], with_train: bool) -> Any:
    """Scored out-of-fold predictions (and in-fold ones, ``split = "train"``) of ``model`` over ``splits``."""
    import pandas as pd
    from sklearn.base import clone

    frames = []
    for fold, (tr, te) in enumerate(splits):
        m = clone(model).fit(td.X[tr], td.y[tr])
        for split, idx in (("test", te), *((("train", tr),) if with_train else ())):
            sc = _scored(m, td.X[idx], td.y[idx])
            sc.insert(0, "row", idx)
            sc.insert(0, "group", np.asarray(td.groups)[idx])
            sc.insert(0, "split", split)
            sc.insert(0, "fold", fold)
            frames.append(sc)
    return pd.concat(frames, ignore_index=True)


def _verdict(metrics: Mapping[str, Any], scatter: Mapping[str, Any], z: np.ndarray) -> dict[str, Any]:
    """Calibration, and accuracy against the noise floor of the microstructural scatter."""
    from ..validation.metrics import calibration_check

    out: dict[str, Any] = {}
    try:
        chk = calibration_check(z, np.zeros_like(z), np.ones_like(z), alpha=CALIBRATION_ALPHA)
        if chk.passed:
            out["calibration"] = "calibrated"
        else:
            cov = np.asarray(chk.coverage).reshape(len(chk.levels), -1)[:, 0]
            low = [f"{100 * p:g} %" for p, c, lo in zip(chk.levels, cov, chk.lower) if c < lo]
            high = [f"{100 * p:g} %" for p, c, hi in zip(chk.levels, cov, chk.upper) if c > hi]
            parts = ([f"over-confident at {', '.join(low)}"] if low else []) + (
                [f"under-confident at {', '.join(high)}"] if high else [])
            out["calibration"] = "; ".join(parts) or (
                f"PIT not uniform (KS p = {float(np.atleast_1d(chk.ks_pvalue)[0]):.2g}): biased or mis-shaped")
    except InputError as exc:
        out["calibration"] = f"not checked: {exc}"
    floor = scatter.get("scatter_std")
    if floor:
        out["rmse_over_scatter"] = float(metrics["rmse"]) / float(floor)
        interval = scatter.get("scatter_variance_interval")
        if interval and interval[0] > 0:  # the replicates' sampling error: few points, a loose floor
            out["rmse_over_scatter_interval"] = [float(metrics["rmse"]) / math.sqrt(interval[1]),
                                                 float(metrics["rmse"]) / math.sqrt(interval[0])]
    return out


def _model_scatter(model: Any, td: Any, scatter: Mapping[str, Any]) -> dict[str, Any]:
    """The SVE scatter that a fitted model attributes to the training points (the aleatoric
    variance of its noise model on the physical scale, averaged over the samples), against the
    pooled variance of the replicates: a model whose noise model misstates the scatter splits
    the propagated variance wrongly, whatever its accuracy."""
    from ..surrogates.propagation import conditional_moments, latent_view

    view = latent_view(model)
    if view.noise is None or not scatter.get("scatter_variance"):
        return {}
    mu, v_f, noise = view.marginal(td.X, True, True)
    alea = conditional_moments(view.transform(td.X), np.asarray(mu), np.asarray(v_f), np.asarray(noise))["aleatoric"]
    model_var = float(np.mean(alea))
    out = {"model_scatter_variance": model_var, "scatter_ratio": model_var / float(scatter["scatter_variance"])}
    interval = scatter.get("scatter_variance_interval")
    if interval and interval[0] > 0:  # the ratio's interval from the replicates' sampling error
        out["scatter_ratio_interval"] = [model_var / interval[1], model_var / interval[0]]
    return out


#: Family-wise level of the calibration check of the cross-validated predictions.
CALIBRATION_ALPHA = 0.01


@_quiet_extrapolation
def _stage_surrogates(study: Study, out: Path, cfg: PipelineConfig, props: Any, say: Callable[[str], None]) -> None:
    import pandas as pd
    from sklearn.base import clone

    from ..validation import grouped_kfold
    from ..validation.metrics import pooled_metrics

    features, data, unit = _data(study, props, cfg)
    folder = out / "surrogates"
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    folder.mkdir()
    frames = []
    info: dict[str, Any] = {"features": features, "targets": list(data), "models": {}, "cv_groups": unit,
                            "n_splits": {}, "transforms": {}, "scatter": {},
                            "log_inputs": [features[k] for k in _log_inputs(study, features)]}
    for target, td in data.items():
        n_groups = np.unique(td.groups).size
        k = min(cfg.n_splits, n_groups)
        bounds, log, record = _target_setup(study, props, cfg, target, td)
        scale = record["scale"]
        info["transforms"][target] = record
        info["scatter"][target] = scat = _scatter(td)
        info["n_splits"][target] = k
        splits = list(grouped_kfold(k, rng=study.seed).split(td.X, td.y, td.groups))
        low = _low_fidelity(study, out, cfg, target, features, _regressed_scale(bounds, log, scale))
        for name, base in _models(cfg, study.seed, _log_inputs(study, features), low).items():
            model = _wrap(base, bounds, log, scale)
            t0 = time.perf_counter()
            pred = _cross_predict(model, td, splits, with_train=True)
            pred.insert(0, "target", target)
            pred.insert(0, "model", name)
            frames.append(pred)
            final = clone(model).fit(td.X, td.y)
            final.save(folder / f"{target}__{name}")
            test = pred[pred["split"] == "test"]
            cv = pooled_metrics(test)
            entry = {"seconds": time.perf_counter() - t0, "n_train": int(td.X.shape[0]), "folds": k,
                     "cv": cv, "train": pooled_metrics(pred[pred["split"] == "train"]),
                     **_verdict(cv, scat, test["z"].to_numpy(float))}
            latent = getattr(final, "estimator_", final)
            if hasattr(latent, "degree_"):
                entry["degree"] = int(latent.degree_)
            cok = getattr(latent, "estimator_", latent)
            if hasattr(cok, "rho_"):  # co-kriging: the learned rho and the discrepancy's share
                shares = cok.variance_shares(cok.X_train_)
                entry["cokriging"] = {"rho": cok.rho_, "rho_std": cok.rho_std_, "rho_interval": list(cok.rho_interval_),
                                      "discrepancy_share": float(shares["discrepancy"]),
                                      "rho_estimation_share": float(shares["rho_estimation"]),
                                      "n_low": int(len(cok.y_low)), "regressed": _regressed_scale(bounds, log, scale)}
            entry.update(_model_scatter(final, td, scat))
            info["models"][f"{target}__{name}"] = entry
            say(f"  {name} for {target}: {td.X.shape[0]} samples, {k}-fold CV holding out whole {unit}s"
                f"{'; ' + record['description'] if 'description' in record else ''}")
    for target, tdata in _tensor_data(study, props, cfg, features, unit).items():
        frames += _tensor_surrogates(study, cfg, target, tdata, folder, info, unit, say)
    pd.concat(frames, ignore_index=True).to_csv(out / "cv_predictions.csv", index=False)
    _write_json(out / "surrogates.json", info)


def _tensor_surrogates(study: Study, cfg: PipelineConfig, target: str, td: Any, folder: Path, info: dict,
                       unit: str, say: Callable[[str], None]) -> list[Any]:
    """Fit, cross-validate and save the models of a whole-tensor target; the records are per
    entry (``conductivity_0_1``), so that the report shows each like a scalar target."""
    import pandas as pd
    from sklearn.base import clone

    from ..surrogates.data import TrainingData
    from ..surrogates.tensor import TensorSurrogate, entry_names
    from ..validation import grouped_kfold
    from ..validation.metrics import pooled_metrics, score_predictions

    m = td.T.shape[1]
    entries = entry_names(target, m)
    iu = [(i, j) for i in range(m) for j in range(i, m)]
    k = min(cfg.n_splits, np.unique(td.groups).size)
    splits = list(grouped_kfold(k, rng=study.seed).split(td.X, None, td.groups))
    info.setdefault("tensors", {})[target] = {"entries": entries, "features": "log-Cholesky", "folds": k}
    for e, (i, j) in zip(entries, iu):
        info["targets"].append(e)
        info["n_splits"][e] = k
        info["transforms"][e] = {"mode": "spd", "tensor": target, "scale": "log-Cholesky",
                                 "transform": "log-Cholesky features of the whole tensor",
                                 "description": f"positive-definite {target} tensors (log-Cholesky features)"}
        info["scatter"][e] = _scatter(TrainingData(td.X, td.T[:, i, j], td.groups, td.feature_names, [e]))
    frames = []
    for name, base in _models(cfg, study.seed, _log_inputs(study, td.feature_names)).items():
        t0 = time.perf_counter()
        model = TensorSurrogate(base, study.physics, study.dim)
        rows = []
        for fold, (tr, te) in enumerate(splits):
            fitted = clone(model).fit(td.X[tr], td.T[tr])
            for split, idx in (("test", te), ("train", tr)):
                laws = fitted.entry_laws(td.X[idx], target)
                for e, (i, j) in zip(entries, iu):
                    sc = score_predictions(td.T[idx, i, j], laws[e])
                    rows.append(sc.assign(model=name, target=e, fold=fold, split=split, group=td.groups[idx],
                                          row=idx))
        pred = pd.concat(rows, ignore_index=True)
        frames.append(pred)
        final = clone(model).fit(td.X, td.T)
        final.save(folder / f"{target}__{name}")
        seconds = time.perf_counter() - t0
        for e in entries:
            p = pred[pred["target"] == e]
            test = p[p["split"] == "test"]
            cv = pooled_metrics(test)
            entry = {"seconds": seconds, "n_train": int(td.X.shape[0]), "folds": k, "cv": cv,
                     "train": pooled_metrics(p[p["split"] == "train"]), "tensor": target,
                     **_verdict(cv, info["scatter"][e], test["z"].to_numpy(float))}
            latent = final.estimator_
            if hasattr(latent, "degree_"):
                entry["degree"] = int(latent.degree_)
            info["models"][f"{e}__{name}"] = entry
        say(f"  {name} for the {target} tensor: {td.X.shape[0]} samples, {k}-fold CV holding out whole {unit}s; "
            "positive definite by construction")
    return frames


def _load_model(folder: Path) -> Any:
    from ..surrogates import GPR, PCE
    from ..surrogates.bounded import BoundedSurrogate

    if (folder / "bounded.json").exists():
        return BoundedSurrogate.load(folder)
    if (folder / "tensor.json").exists():
        from ..surrogates.tensor import TensorSurrogate

        return TensorSurrogate.load(folder)
    if (folder / "log_inputs.json").exists():
        from ..surrogates.warping import LogInputs

        return LogInputs.load(folder)
    return GPR.load(folder) if folder.name.endswith("__gpr") else PCE.load(folder)


class _AtSize:
    """A surrogate seen with the SVE size held at one value (the largest swept): the SVE size is
    a numerical choice, not an uncertain input, so the propagation and the Sobol indices run
    over the other parameters only. Keeps the model's optional methods (``hasattr`` decides
    how :func:`~stochhom.surrogates.propagate` treats a model)."""

    _METHODS = ("sample_functions", "noise_variance", "predict_latent", "sample_latent_functions",
                "latent_noise_variance", "output_map", "predictive")

    def __init__(self, model: Any, index: int, value: float) -> None:
        self.model, self.index, self.value = model, index, float(value)
        self.n_features_in_ = int(model.n_features_in_) - 1
        for method in self._METHODS:
            if hasattr(model, method):
                setattr(self, method, self._wrap(getattr(model, method)))
        if hasattr(model, "tensors"):  # features -> tensors: no inputs to complete
            self.tensors = model.tensors

    def _full(self, X: Any) -> np.ndarray:
        return np.insert(np.asarray(X, dtype=float), self.index, self.value, axis=1)

    def _wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return lambda X, *args, **kwargs: func(self._full(X), *args, **kwargs)

    def predict(self, X: Any, return_std: bool = False) -> Any:
        return self.model.predict(self._full(X), return_std=return_std)


def _input_source(study: Study, cfg: PipelineConfig, features: list[str]) -> dict[str, str]:
    """Where the propagated distribution of each input comes from, in words."""
    out = {}
    for name in features:
        if name in cfg.inputs:
            out[name] = "[propagation.inputs]"
        elif isinstance(study.parameters[name], dict):
            out[name] = f"the {study.design} design's distribution"
        else:
            out[name] = "uniform over the swept values"
    return out


@_quiet_extrapolation
def _stage_propagation(study: Study, out: Path, cfg: PipelineConfig, props: Any) -> None:
    from ..surrogates import input_distribution, propagate, sobol_indices

    info = json.loads((out / "surrogates.json").read_text())
    features = list(info["features"])
    size_at = None
    if "size" in features and "size" not in cfg.inputs:
        size_at = (features.index("size"), float(np.max(props["size"].values)))
        features.remove("size")
    prop: dict[str, Any] = {}
    sob: dict[str, Any] = {}
    samples: dict[str, np.ndarray] = {}
    if not features:  # only the SVE size is swept: nothing uncertain to propagate
        _write_json(out / "propagation.json", prop)
        _write_json(out / "sobol.json", sob)
        np.savez_compressed(out / "propagation_samples.npz")
        return
    spec = _input_spec(study, props, features, cfg)
    dist = input_distribution(spec, names=features)
    source = _input_source(study, cfg, features)
    done_tensors: set[tuple[str, str]] = set()
    for key, fitted in info["models"].items():
        target, name = key.split("__")
        if "tensor" in fitted:  # an entry of a whole-tensor model: propagated once per tensor
            if (fitted["tensor"], name) not in done_tensors:
                done_tensors.add((fitted["tensor"], name))
                _propagate_tensor(study, out, cfg, fitted["tensor"], name, dist, spec, source, size_at, prop, samples)
            continue
        model = _load_model(out / "surrogates" / key)
        if size_at is not None:
            model = _AtSize(model, *size_at)
        res = propagate(model, dist, cfg.n_samples, n_functions=cfg.n_functions, rng=study.seed)
        outside = None
        if res.bounds is not None:
            lo, hi = res.bounds
            outside = int(np.sum((res.samples < lo[None]) | (res.samples > hi[None])))
        prop.setdefault(target, {})[name] = {
            "mean": res.mean, "mean_ci": list(res.mean_ci), "std": res.std, "std_ci": list(res.std_ci),
            "quantiles": {str(q): v for q, v in res.quantiles.items()},
            "variance": {k: res.variance[k] for k in ("total", "aleatoric", "epistemic", "unsplit", "input")},
            "epistemic_share": res.epistemic_share,
            "inputs": features, "input_distribution": spec, "input_source": source,
            "n_inputs": int(res.inputs.shape[0]), "n_functions": int(res.samples.shape[0]),
            "joint_functions": res.joint_functions,
            "bounds": info.get("transforms", {}).get(target, {}).get("description"),
            "samples_outside_bounds": outside, "n_samples": int(res.samples.size),
            **({"size": size_at[1]} if size_at is not None else {}),
        }
        flat = res.samples.reshape(-1)
        samples[key] = flat[np.random.default_rng(study.seed).permutation(flat.size)[:20000]]
        s = sobol_indices(model, dist, n_samples=cfg.sobol_samples, n_functions=min(cfg.n_functions, 32),
                          rng=study.seed, relative_to="total")
        entry = {"names": features, "first": s.first, "total": s.total,
                 "first_ci": [s.first_ci[0], s.first_ci[1]], "total_ci": [s.total_ci[0], s.total_ci[1]],
                 "method": s.method, "relative_to": s.relative_to, "shares": s.shares}
        if len(features) == 1:  # S_1 = S_T = the whole share of the mean response, by definition
            share = float(np.asarray(s.shares["input"]).reshape(-1)[0])
            one = [share]
            entry.update(first=one, total=one, first_ci=[one, one], total_ci=[one, one], method="single input")
        sob.setdefault(target, {})[name] = entry
    _write_json(out / "propagation.json", prop)
    _write_json(out / "sobol.json", sob)
    np.savez_compressed(out / "propagation_samples.npz", **samples)


def _stage_structure(study: Study, out: Path, cfg: PipelineConfig, props: Any, say: Callable[[str], None],
                     workers: int = 1, scheduler: str | None = None) -> None:
    """``[structure]``: the part's response with the whole-tensor surrogate as every element's
    law (:mod:`stochhom.structure.study`); ``structure.json`` and ``structure.npz``."""
    from ..structure.study import run_stage

    info = json.loads((out / "surrogates.json").read_text())
    features = list(info["features"])
    s = cfg.structure
    model = _load_model(out / "surrogates" / f"{s['tensor']}__{s['model']}")
    run_stage(study, out, s, props, features, model, say, workers, scheduler)


#: Metrics of the leakage demonstration and of the OOD evaluation.
_VALIDATION_METRICS = ("rmse", "nlpd", "crps", "coverage_0.95")


def _group_sums(scores: Any, groups: np.ndarray) -> np.ndarray:
    """Per-group sums of what the pooled metrics are made of: count, squared error, NLPD, CRPS,
    covered by the central 95 % interval."""
    uniq, inv = np.unique(groups, return_inverse=True)
    cols = np.stack([np.ones(len(scores)), (scores["y"] - scores["mean"]).to_numpy(float) ** 2,
                     scores["nlpd"].to_numpy(float), scores["crps"].to_numpy(float),
                     (np.abs(scores["z"].to_numpy(float)) <= 1.959963984540054).astype(float)], axis=1)
    out = np.zeros((uniq.size, cols.shape[1]))
    np.add.at(out, inv.reshape(-1), cols)
    return out


def _metrics_of_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    n = sums[..., 0]
    return {"rmse": np.sqrt(sums[..., 1] / n), "nlpd": sums[..., 2] / n, "crps": sums[..., 3] / n,
            "coverage_0.95": sums[..., 4] / n}


def _leakage_table(naive: Any, grouped: Any, groups: np.ndarray, seed: int, n_boot: int = 2000) -> list[dict]:
    """Naive against grouped CV on the same samples (paired by sample), with a bootstrap over
    the groups of the difference ``grouped - naive`` (the optimism of the naive estimate)."""
    naive = naive.sort_values("row").reset_index(drop=True)
    grouped = grouped.sort_values("row").reset_index(drop=True)
    g = np.asarray(groups)[grouped["row"].to_numpy(int)]
    sn, sg = _group_sums(naive, g), _group_sums(grouped, g)
    counts = np.random.default_rng(seed).multinomial(sn.shape[0], np.full(sn.shape[0], 1.0 / sn.shape[0]), n_boot)
    point_n, point_g = _metrics_of_sums(sn.sum(axis=0)), _metrics_of_sums(sg.sum(axis=0))
    boot_n, boot_g = _metrics_of_sums(counts @ sn), _metrics_of_sums(counts @ sg)
    rows = []
    for metric in _VALIDATION_METRICS:
        a, b = float(point_n[metric]), float(point_g[metric])
        diff = boot_g[metric] - boot_n[metric]
        lo, hi = np.nanpercentile(diff, [2.5, 97.5])
        rows.append({"metric": metric, "naive": a, "grouped": b, "optimism": b - a, "optimism_low": float(lo),
                     "optimism_high": float(hi), "ratio": math.exp(b - a) if metric == "nlpd" else b / a,
                     "n": int(len(grouped)), "n_groups": int(sn.shape[0])})
    return rows


def _design_distribution(study: Study, props: Any, features: list[str]) -> Any:
    """The distribution the sweep drew each input from (lhs, sobol), else uniform over its swept values."""
    from ..surrogates import input_distribution

    spec = {}
    for name in features:
        if isinstance(study.parameters.get(name), dict):
            spec[name] = dict(study.parameters[name])
        else:
            v = props[name].values.astype(float)
            spec[name] = {"distribution": "uniform", "low": float(v.min()), "high": float(v.max())}
    return input_distribution(spec, names=features)


def _propagate_tensor(study: Study, out: Path, cfg: PipelineConfig, tensor: str, name: str, dist: Any, spec: dict,
                      source: dict, size_at: Any, prop: dict, samples: dict) -> None:
    """Propagation of a whole-tensor model, recorded per entry like a scalar target (no Sobol
    indices: they are given for scalar targets)."""
    from ..surrogates.tensor import propagate_tensor

    model = _load_model(out / "surrogates" / f"{tensor}__{name}")
    if size_at is not None:
        model = _AtSize(model, *size_at)
    res = propagate_tensor(model, dist, cfg.n_samples, n_functions=max(2, cfg.n_functions), name=tensor,
                           rng=study.seed)
    n_tensors = int(np.prod(res.samples.shape[:2]))
    m = res.samples.shape[-1]
    iu = [(i, j) for i in range(m) for j in range(i, m)]
    for e, (i, j) in zip(res.entries, iu):
        prop.setdefault(e, {})[name] = {
            "mean": res.mean[e], "std": res.std[e],
            "quantiles": {str(q): v for q, v in res.quantiles[e].items()},
            "variance": res.variance[e],
            "epistemic_share": res.variance[e]["epistemic"] / res.variance[e]["total"]
            if res.variance[e]["total"] > 0 else 0.0,
            "inputs": list(spec), "input_distribution": spec, "input_source": source,
            "n_inputs": int(res.inputs.shape[0]), "n_functions": int(res.samples.shape[0]),
            "joint_functions": True, "tensor": tensor,
            "bounds": f"positive-definite {tensor} tensors (smallest eigenvalue of all samples "
                      f"{res.min_eigenvalue:.3g})",
            "samples_outside_bounds": 0 if res.min_eigenvalue > 0 else n_tensors, "n_samples": n_tensors,
            **({"size": size_at[1]} if size_at is not None else {}),
        }
        flat = res.samples[..., i, j].reshape(-1)
        samples[f"{e}__{name}"] = flat[np.random.default_rng(study.seed).permutation(flat.size)[:20000]]


def _done_count(path: Path) -> int:
    """Samples of a sweep store marked done (0 for a missing or unreadable store)."""
    from .sweep import _done_flags

    try:
        return int(np.asarray(_done_flags(path)).sum()) if path.exists() else 0
    except Exception:  # an unreadable store has nothing done
        return 0


def _split_scatter(predictions: Any, y: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    r"""The SVE scatter of each split of an OOD evaluation: the pooled standard deviation of the
    replicates of its points, :math:`\sqrt{\sum_g \sum_{i \in g} (y_i - \bar y_g)^2 / \sum_g (n_g - 1)}`
    over its distinct samples (NaN without replicates). Outside the box the scatter can grow
    (near percolation, at high contrast), and with it the RMSE of any model: the RMSE over this
    scatter separates the surrogate's own error from the noise floor of the shell."""
    out: dict[str, float] = {}
    for split, p in predictions.drop_duplicates(["split", "row"]).groupby("split"):
        rows = p["row"].to_numpy(dtype=int)
        yy, gg = np.asarray(y, dtype=float)[rows], np.asarray(groups)[rows]
        ss, dof = 0.0, 0
        for g in np.unique(gg):
            v = yy[gg == g]
            ss += float(((v - v.mean()) ** 2).sum())
            dof += v.size - 1
        out[str(split)] = float(np.sqrt(ss / dof)) if dof > 0 else float("nan")
    return out


@_quiet_extrapolation
def _stage_validation(study: Study, out: Path, cfg: PipelineConfig, props: Any) -> None:
    """Leakage demonstration (naive K-fold against the surrogates stage's grouped CV, the same
    numbers) and the OOD evaluation (:func:`~stochhom.validation.ood_evaluation`)."""
    import pandas as pd
    from sklearn.model_selection import KFold

    from ..validation import ood_evaluation

    _, data, unit = _data(study, props, cfg)
    cv = pd.read_csv(out / "cv_predictions.csv")
    leaks, oods, ood_info = [], [], {}
    for target, td in data.items():
        k = int(cv.loc[cv["target"] == target, "fold"].max()) + 1
        naive_splits = list(KFold(k, shuffle=True, random_state=study.seed).split(td.X))
        design = _design_distribution(study, props, td.feature_names)
        half = cfg.ood_fraction / 2.0
        box_u = np.tile([0.5 - half, 0.5 + half], (len(td.feature_names), 1))
        box = design.ppf(box_u.T).T  # the same box in the parameters' units, for the report
        bounds, log, record = _target_setup(study, props, cfg, target, td)
        low = _low_fidelity(study, out, cfg, target, td.feature_names, _regressed_scale(bounds, log, record["scale"]))
        for name, base in _models(cfg, study.seed, _log_inputs(study, td.feature_names), low).items():
            model = _wrap(base, bounds, log, record["scale"])
            grouped = cv[(cv["model"] == name) & (cv["target"] == target) & (cv["split"] == "test")]
            naive = _cross_predict(model, td, naive_splits, with_train=False)
            for row in _leakage_table(naive, grouped, td.groups, study.seed):
                leaks.append({"model": name, "target": target, **row, "groups": unit})
            res = ood_evaluation(model, td.X, td.y, box_u, [*cfg.ood_edges, np.inf], groups=td.groups,
                                 n_splits=cfg.n_splits, min_samples=cfg.min_samples, metrics=_VALIDATION_METRICS,
                                 rng=study.seed, space=design.cdf)
            table = res.table.copy()
            if unit == "point" and len(res.predictions):  # the noise floor of each shell
                scatter = _split_scatter(res.predictions, td.y, td.groups)
                table["scatter_std"] = [scatter.get(str(split), np.nan) for split in table["split"]]
                table["rmse_over_scatter"] = table["rmse"] / table["scatter_std"]
            table.insert(0, "target", target)
            table.insert(0, "model", name)
            oods.append(table)
            ood_info[f"{target}__{name}"] = {"ok": bool(res.ok), "declined": list(res.declined),
                                             "box": box.tolist(), "features": td.feature_names,
                                             "space": "probability: the CDF of the design distribution",
                                             "edges": cfg.ood_edges, "min_samples": cfg.min_samples}
    columns = ["model", "target", "metric", "naive", "grouped", "optimism", "optimism_low", "optimism_high", "ratio",
               "n", "n_groups", "groups"]
    pd.DataFrame(leaks, columns=columns).to_csv(out / "leakage.csv", index=False)
    if oods:
        pd.concat(oods, ignore_index=True).to_csv(out / "ood.csv", index=False)
    _write_json(out / "ood.json", ood_info)


# ----------------------------------------------------------------------------- runner


def _stage_times(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{stage: {"seconds", "finished"}}`` of every stage in ``stages.json``'s record, in run order."""
    return {k: {"seconds": v.get("seconds"), "finished": v.get("finished")} for k, v in record.items()}


def _compile_time(props: Any) -> dict[str, Any] | None:
    """Kernel warm-up of the sweep: total seconds and the number of processes that paid it.

    From the store's ``warmup_time`` (:mod:`~stochhom.study.sweep`); None for a store written
    before that variable existed.
    """
    if props is None or "warmup_time" not in props:
        return None
    warm = np.asarray(props["warmup_time"].values, dtype=float)
    return {"seconds": float(np.nansum(warm)), "processes": int(np.sum(warm > 0))}


def _write_provenance(out: Path, study: Study, cfg: PipelineConfig, record: dict[str, Any],
                      props: Any = None) -> None:
    """``study.json`` and ``phases.json``: written after the sweep, so a partial run can be reported.

    ``stages`` holds the stages timed so far; :func:`_update_stage_times` completes it
    after each later stage (the report included). ``compile`` (when the store has
    ``warmup_time``) is the kernel warm-up summed over the samples.
    """
    meta: dict[str, Any] = {
        "name": study.name, "hash": study.hash(), "study": study.content(), "versions": _versions(),
        "stages": _stage_times(record), "units": study.units.declaration(), "question": study.question,
    }
    if study.adaptive is not None:  # the budget and the stopping rule, outside the hashed content
        meta["study"]["adaptive"] = dict(study.adaptive)
    compile_ = _compile_time(props)
    if compile_ is not None:
        meta["compile"] = compile_
    meta["pipeline"] = dataclasses.asdict(cfg)
    _write_json(out / "study.json", meta)
    (out / "phases.json").write_text(json.dumps(study.phases, indent=2))


def _update_stage_times(out: Path, record: Mapping[str, Any]) -> None:
    """Rewrite the ``stages`` of ``study.json`` (if written) from ``record``: after each stage, so
    that the stages run after :func:`_write_provenance` (the report itself) are timed there too."""
    path = out / "study.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet (the sweep failed), or not ours
        return
    if isinstance(meta, dict):
        meta["stages"] = _stage_times(record)
        _write_json(path, meta)


#: Stages that a study without surrogates (``[surrogate] models = []``) skips.
_SURROGATE_STAGES = ("surrogates", "propagation", "validation")
#: Files of those stages besides their checked outputs (removed when they are skipped).
_EXTRA_OUTPUTS = {"surrogates": ("cv_predictions.csv", "surrogates"),
                  "propagation": ("propagation_samples.npz", "sobol.json"), "validation": ("ood.csv",)}


def run_study(
    study: Study,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    restart: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    pdf: bool = False,
    redo: Sequence[str] = (),
    repair: bool = False,
) -> Path:
    """Run (or resume) the whole pipeline of a study and return its results directory.

    Parameters
    ----------
    study : Study
        From :func:`~stochhom.study.load_study`; the pipeline tables are optional.
    workers, scheduler, progress
        As for :func:`~stochhom.study.sweep.run_sweep`.
    restart : bool
        Delete the results directory first.
    log : callable, optional
        Receives one line per stage (and the sweep's notices), as well as the loggers
        ``stochhom.study.runner`` and ``stochhom.study.sweep`` (INFO; problems at WARNING,
        details at DEBUG). Without it, the lines go to the loggers only: nothing is printed
        unless the application configures logging (:func:`stochhom.log.configure`).
    pdf : bool
        Also write ``report.pdf``.
    redo : sequence of str
        Stages to run again even though they are up to date (after an upgrade of stochhom,
        say), with every stage downstream of them. ``"sweep"`` is not allowed: the samples
        are redone with ``restart=True``.
    repair : bool
        Rebuild a damaged ``samples.zarr`` first (see ``repair`` of
        :func:`~stochhom.study.sweep.run_sweep`); when samples were recomputed, every
        stage after the sweep runs again.

    Raises
    ------
    InputError
        An unknown stage in ``redo``, ``restart`` with ``repair``, or a results directory
        that cannot be created.
    """
    import shutil

    from .sweep import open_store, run_sweep

    say = emitter(_logger, log)
    redo = [redo] if isinstance(redo, str) else list(redo)
    bad = [r for r in redo if r not in STAGES[1:]]
    if bad:
        hint = " (the sweep is redone with --restart)" if "sweep" in bad else ""
        raise InputError(f"cannot redo stage {bad[0]!r}{hint}; the stages are {', '.join(STAGES[1:])}")
    if restart and repair:
        raise InputError("restart deletes the results directory and repair keeps the readable samples: choose one")
    cfg = pipeline_config(study)
    out = results_dir(study)
    if restart and out.exists():
        from .sweep import check_unlocked

        check_unlocked(out / "samples.zarr")  # a running sweep's store is never deleted
        if not (out / "stages.json").exists() and any(out.iterdir()):
            raise InputError(f"{out} is not a stochhom results directory; choose another [study].output")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the results directory {str(out)!r}: {exc.strerror or exc}") from None
    record_path = out / "stages.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    sweep_hash = study.hash()
    inputs = {"sweep": {"study": sweep_hash}}
    if study.adaptive is not None:  # a new budget or stopping rule can add samples: the later stages rerun
        inputs["sweep"]["limits"] = {k: study.adaptive[k] for k in ADAPTIVE_LIMITS}
    upstream = {"gallery": [], "fields": [], "rve": ["sweep"], "surrogates": ["sweep"], "propagation": ["surrogates"],
                "structure": ["surrogates"], "validation": ["sweep", "surrogates"],
                "report": ["sweep", "gallery", "fields", "rve", "surrogates", "propagation", "structure",
                           "validation"]}
    outputs = {"sweep": ["samples.zarr"], "gallery": [], "fields": ["fields/fields.json"], "rve": [],
               "surrogates": ["surrogates.json"],
               "propagation": ["propagation.json"], "structure": ["structure.json", "structure.npz"],
               "validation": ["leakage.csv", "ood.json"], "report": ["report.html", "summary.json"]}
    props = None
    repaired = 0
    ran: set[str] = set()  # stages run in this call: their downstream stages run too
    for stage in STAGES:
        if stage != "sweep":
            section = cfg.section(stage) if stage not in ("report",) else {
                "pdf": pdf, "units": study.units.declaration(), "question": study.question}
            inputs[stage] = {"study": sweep_hash, "options": section, "version": PIPELINE_VERSION,
                             "upstream": [record.get(u, {}).get("hash") for u in upstream[stage]]}
        h = _hash(inputs[stage])
        if stage == "fields" and not cfg.field_samples:  # no [output] fields: nothing to write
            if (out / "fields" / "fields.json").exists():
                shutil.rmtree(out / "fields")
            record[stage] = {"hash": h, "seconds": 0.0, "finished": None, "skipped": "no [output] fields"}
            _write_json(record_path, record)
            continue
        if stage == "structure" and cfg.structure is None:  # no [structure] table: nothing to run
            for f in (*outputs[stage], *(p.name for p in out.glob("structure_sve_cache*.npz"))):
                (out / f).unlink(missing_ok=True)
            record[stage] = {"hash": h, "seconds": 0.0, "finished": None, "skipped": "no [structure] table"}
            _write_json(record_path, record)
            continue
        if stage in _SURROGATE_STAGES and not cfg.models:  # asked for no surrogate: nothing to run
            for f in (*outputs[stage], *_EXTRA_OUTPUTS.get(stage, ())):
                p = out / f
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
            record[stage] = {"hash": h, "seconds": 0.0, "finished": None, "skipped": "[surrogate] models = []"}
            _write_json(record_path, record)
            say(f"stage {stage}: not requested ([surrogate] models = [])")
            continue
        done = record.get(stage, {})
        fresh = done.get("hash") == h and all((out / f).exists() for f in outputs[stage])
        forced = stage in redo or any(u in ran for u in upstream.get(stage, []))
        _logger.debug("stage %s: hash %s, recorded %s, outputs %s%s", stage, h[:12], str(done.get("hash"))[:12],
                      "present" if all((out / f).exists() for f in outputs[stage]) else "missing",
                      "; forced (--redo or an upstream stage ran)" if forced else "")
        if stage != "sweep" and fresh and not forced:
            say(f"stage {stage}: up to date")
            continue
        say(f"stage {stage}: running")
        if stage != "sweep":
            ran.add(stage)
        t0 = time.perf_counter()
        if stage == "sweep":
            swept = dataclasses.replace(study, output=out / "samples.zarr")
            done_before = _done_count(out / "samples.zarr") if done.get("hash") == h else 0
            if study.adaptive is not None:
                props = _adaptive_sweep(study, out, workers=workers, scheduler=scheduler, progress=progress, log=log,
                                        repair=repair, say=say)
            else:
                props = run_sweep(swept, workers=workers, scheduler=scheduler, progress=progress, log=log,
                                  repair=repair)
            _low_sweep(study, cfg, out, workers=workers, scheduler=scheduler, progress=progress, log=log, say=say)
            repaired = props.attrs.pop("repaired_samples", 0)
            if repaired:  # recomputed samples: every later stage runs again
                ran.add("sweep")
            _write_provenance(out, study, cfg, record, props)
        else:
            if props is None:
                props = open_store(out / "samples.zarr").load()
            if stage == "gallery":
                _stage_gallery(study, out, cfg)
            elif stage == "fields":
                _stage_fields(study, out, cfg)
            elif stage == "rve":
                _stage_rve(study, out, cfg, props, say, _worker_count(workers))
            elif stage == "surrogates":
                _stage_surrogates(study, out, cfg, props, say)
            elif stage == "propagation":
                _stage_propagation(study, out, cfg, props)
            elif stage == "structure":
                _stage_structure(study, out, cfg, props, say, _worker_count(workers), scheduler)
            elif stage == "validation":
                _stage_validation(study, out, cfg, props)
            elif stage == "report":
                _write_provenance(out, study, cfg, record, props)
                from ..report import write_report

                write_report(out, pdf=pdf)
        seconds = time.perf_counter() - t0
        finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if stage == "sweep" and done_before and done.get("seconds") is not None:
            # a resumed sweep: its time is the sum over the runs that computed samples; a run
            # that found every sample done keeps the time (and date) of the runs that did the work
            if done_before >= _done_count(out / "samples.zarr") and not repaired:
                seconds, finished = float(done["seconds"]), done.get("finished", finished)
            else:
                seconds += float(done["seconds"])
        record[stage] = {"hash": h, "seconds": seconds, "finished": finished}
        _write_json(record_path, record)
        _update_stage_times(out, record)
        extra = ""
        if stage == "sweep" and (warm := _compile_time(props)) and warm["processes"]:
            each = warm["seconds"] / warm["processes"]
            extra = f" (of which kernel warm-up {each:.1f} s in each of {warm['processes']} process(es))"
            if each > _SLOW_WARMUP:
                extra += "; 'stochhom warmup' compiles the kernels once, for every later run"
        say(f"stage {stage}: done in {record[stage]['seconds']:.1f} s{extra}")
    return out
