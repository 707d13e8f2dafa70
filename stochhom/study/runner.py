r"""The end-to-end study runner: ``stochhom run STUDY.toml``.

Stages, in order, each writing its outputs into the study's results directory:

=============  =======================================================  ==========================
stage          does                                                     writes
=============  =======================================================  ==========================
sweep          generate and homogenize every sample (resumable)         ``samples.zarr``
gallery        a few microstructures for the report                     ``gallery.nc``
rve            variance scaling and RVE size (when ``size`` is swept)   ``rve.json``
surrogates     GPR and PCE per target; grouped-CV predictions           ``surrogates/``, ``cv_predictions.csv``
propagation    input distribution through each surrogate; Sobol         ``propagation.json``, ``sobol.json``
validation     grouped CV table, leakage demonstration, OOD shells      ``validation.csv``, ``leakage.csv``,
                                                                        ``degradation.csv``
report         HTML report and ``summary.json``                         ``report.html``, ``summary.json``
=============  =======================================================  ==========================

**Caching.** Each stage records in ``stages.json`` the hash of what it depends on (the
sweep's results and the stage's own options); a re-run skips every stage whose hash
is unchanged and whose outputs exist, so a change of, say, the surrogate options
redoes the surrogates, propagation, validation and report, not the sweep. The sweep
itself resumes sample by sample (:func:`~stochhom.study.sweep.run_sweep`), so a killed
run loses at most the samples in flight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .pipeline import PipelineConfig, pipeline_config
from .schema import Study

__all__ = ["STAGES", "cv_groups", "results_dir", "run_study"]

#: The stages of :func:`run_study`, in order.
STAGES = ("sweep", "gallery", "rve", "surrogates", "propagation", "validation", "report")


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


def _stage_gallery(study: Study, out: Path, cfg: PipelineConfig) -> None:
    from ..io import save_dataset
    from ..microstructure.ensemble import generate

    if cfg.gallery_samples == 0:
        return
    point = study.points_table()[0]
    shape = study.sample_shape(point)
    ens = generate(study.generator, shape, cfg.gallery_samples, rng=study.seed, voxel_size=study.voxel_size,
                   **study.generator_params({**study.fixed, **point}))
    path = out / "gallery.nc"
    if path.exists():
        path.unlink()
    save_dataset(ens, path)


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


def _stage_rve(study: Study, out: Path, cfg: PipelineConfig, props: Any, say: Callable[[str], None]) -> None:
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


def _models(cfg: PipelineConfig, seed: int) -> dict[str, Any]:
    from ..surrogates import GPR, PCE

    out: dict[str, Any] = {}
    if "gpr" in cfg.models:
        opts = {"kernel": "matern52", "noise": "heteroscedastic", "n_restarts": 1, **cfg.gpr}
        out["gpr"] = GPR(random_state=seed, **opts)
    if "pce" in cfg.models:
        opts = {"degree": "auto", "fit_method": "lars", "max_degree": 6, **cfg.pce}
        out["pce"] = PCE(random_state=seed, **opts)
    return out


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
    from ..surrogates.data import training_data

    features = _features(study, props)
    if not features:
        raise InputError("no numeric swept parameter varies: the surrogate stages need at least one")
    targets = cfg.targets or _default_targets(study)
    unit = cv_groups(props, cfg.n_splits)
    grouped = props.assign_coords(specimen=("sample", props["point"].values)) if unit == "point" else props
    data = {}
    for t in targets:
        td = training_data(grouped, t, features, log_targets=cfg.log_targets)
        data[td.target_names[0]] = td
    return features, data, unit


def _quiet_extrapolation(func: Callable[..., None]) -> Callable[..., None]:
    """Stages evaluate surrogates near or beyond their training box on purpose (CV folds, the
    edges of the input distribution, OOD shells): their extrapolation warnings are not news."""
    import functools
    import warnings

    from ..errors import OutOfDomainWarning

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDomainWarning)
            func(*args, **kwargs)

    return wrapper


@_quiet_extrapolation
def _stage_surrogates(study: Study, out: Path, cfg: PipelineConfig, props: Any, say: Callable[[str], None]) -> None:
    import pandas as pd
    from sklearn.base import clone

    from ..validation import grouped_kfold
    from ..validation.metrics import coverage

    features, data, unit = _data(study, props, cfg)
    folder = out / "surrogates"
    folder.mkdir(exist_ok=True)
    rows, info = [], {"features": features, "targets": list(data), "models": {}, "cv_groups": unit}
    for target, td in data.items():
        n_groups = np.unique(td.groups).size
        k = min(cfg.n_splits, n_groups)
        for name, model in _models(cfg, study.seed).items():
            t0 = time.perf_counter()
            for fold, (tr, te) in enumerate(grouped_kfold(k, rng=study.seed).split(td.X, td.y, td.groups)):
                m = clone(model).fit(td.X[tr], td.y[tr])
                mean, std = m.predict(td.X[te], return_std=True)
                rows += [(name, target, fold, float(a), float(b), float(c)) for a, b, c in zip(td.y[te], mean, std)]
            final = clone(model).fit(td.X, td.y)
            final.save(folder / f"{target}__{name}")
            entry = {"seconds": time.perf_counter() - t0, "n_train": int(td.X.shape[0])}
            # relative leave-one-out error mean (y_i - mu_-i)^2 / var y, analytic for both models
            if hasattr(final, "loo_error_"):
                entry["loo"] = float(np.atleast_1d(final.loo_error_)[0])
                entry["degree"] = int(final.degree_)
            elif hasattr(final, "loo_predict"):
                loo_mean, loo_std = final.loo_predict()
                entry["loo"] = float(np.mean((td.y - loo_mean) ** 2) / np.var(td.y))
                entry["loo_coverage_0.95"] = float(np.ravel(coverage(td.y, loo_mean, loo_std, [0.95]))[0])
            info["models"][f"{target}__{name}"] = entry
            say(f"  {name} for {target}: {td.X.shape[0]} samples, {k}-fold CV holding out whole {unit}s")
    pd.DataFrame(rows, columns=["model", "target", "fold", "y", "mean", "std"]).to_csv(out / "cv_predictions.csv",
                                                                                      index=False)
    _write_json(out / "surrogates.json", info)


def _load_model(folder: Path) -> Any:
    from ..surrogates import GPR, PCE

    return GPR.load(folder) if folder.name.endswith("__gpr") else PCE.load(folder)


class _AtSize:
    """A surrogate seen with the SVE size held at one value (the largest swept): the SVE size is
    a numerical choice, not an uncertain input, so the propagation and the Sobol indices run
    over the other parameters only. Keeps the model's optional methods (``hasattr`` decides
    how :func:`~stochhom.surrogates.propagate` treats a model)."""

    def __init__(self, model: Any, index: int, value: float) -> None:
        self.model, self.index, self.value = model, index, float(value)
        self.n_features_in_ = int(model.n_features_in_) - 1
        for method in ("sample_functions", "noise_variance"):
            if hasattr(model, method):
                setattr(self, method, self._wrap(getattr(model, method)))

    def _full(self, X: Any) -> np.ndarray:
        return np.insert(np.asarray(X, dtype=float), self.index, self.value, axis=1)

    def _wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return lambda X, *args, **kwargs: func(self._full(X), *args, **kwargs)

    def predict(self, X: Any, return_std: bool = False) -> Any:
        return self.model.predict(self._full(X), return_std=return_std)


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
    dist = input_distribution(_input_spec(study, props, features, cfg), names=features)
    for key in info["models"]:
        target, name = key.split("__")
        model = _load_model(out / "surrogates" / key)
        if size_at is not None:
            model = _AtSize(model, *size_at)
        res = propagate(model, dist, cfg.n_samples, n_functions=cfg.n_functions, rng=study.seed)
        prop.setdefault(target, {})[name] = {
            "mean": res.mean, "mean_ci": list(res.mean_ci), "std": res.std, "std_ci": list(res.std_ci),
            "quantiles": {str(q): v for q, v in res.quantiles.items()},
            "variance": {k: res.variance[k] for k in ("total", "aleatoric", "epistemic", "unsplit", "input")},
            "epistemic_share": res.epistemic_share if name != "pce" else None,
            "inputs": features, **({"size": size_at[1]} if size_at is not None else {}),
        }
        flat = res.samples.reshape(-1)
        samples[key] = flat[np.random.default_rng(study.seed).permutation(flat.size)[:20000]]
        if len(features) == 1:  # S_1 = S_T = 1 by definition: nothing to estimate
            one = [1.0]
            sob.setdefault(target, {})[name] = {"names": features, "first": one, "total": one,
                                                "first_ci": [one, one], "total_ci": [one, one],
                                                "method": "single input"}
            continue
        if name == "pce" and not cfg.inputs and size_at is None:
            s = sobol_indices(model)
        else:
            s = sobol_indices(model, dist, n_samples=256, n_functions=min(cfg.n_functions, 32), rng=study.seed)
        sob.setdefault(target, {})[name] = {"names": features, "first": s.first, "total": s.total,
                                            "first_ci": [s.first_ci[0], s.first_ci[1]],
                                            "total_ci": [s.total_ci[0], s.total_ci[1]], "method": s.method}
    _write_json(out / "propagation.json", prop)
    _write_json(out / "sobol.json", sob)
    np.savez_compressed(out / "propagation_samples.npz", **samples)


@_quiet_extrapolation
def _stage_validation(study: Study, out: Path, cfg: PipelineConfig, props: Any) -> None:
    import pandas as pd

    from ..validation import degradation, evaluate, grouped_kfold, leakage_demonstration, ood_folds

    _, data, unit = _data(study, props, cfg)
    tables, leaks, degs = [], [], []
    for target, td in data.items():
        k = min(cfg.n_splits, np.unique(td.groups).size)
        lo, hi = td.X.min(axis=0), td.X.max(axis=0)
        shrink = (1.0 - cfg.ood_fraction) / 2.0 * (hi - lo)
        box = np.stack([lo + shrink, hi - shrink], axis=1)
        for name, model in _models(cfg, study.seed).items():
            cv = evaluate(model, td.X, td.y, grouped_kfold(k, rng=study.seed), groups=td.groups)
            try:
                folds = ood_folds(td.X, box, [*cfg.ood_edges, np.inf], groups=td.groups, rng=study.seed)
                ood = evaluate(model, td.X, td.y, folds, groups=td.groups, box=box)
                ood["fold"] += int(cv["fold"].max()) + 1
                deg = degradation(ood)
                deg.insert(0, "target", target)
                deg.insert(0, "model", name)
                degs.append(deg)
            except InputError:
                ood = None
            for t in (cv, ood):
                if t is not None:
                    t.insert(0, "target", target)
                    t.insert(0, "model", name)
                    tables.append(t)
            demo = leakage_demonstration(model, td.X, td.y, td.groups, n_splits=k, rng=study.seed)
            demo.insert(0, "target", target)
            demo.insert(0, "model", name)
            demo["groups"] = unit
            demo["n_groups"] = int(np.unique(td.groups).size)
            demo["n_samples"] = int(td.X.shape[0])
            leaks.append(demo)
    pd.concat(tables).to_csv(out / "validation.csv", index=False)
    pd.concat(leaks).to_csv(out / "leakage.csv", index=False)
    if degs:
        pd.concat(degs).to_csv(out / "degradation.csv", index=False)
    else:
        (out / "degradation.csv").unlink(missing_ok=True)


# ----------------------------------------------------------------------------- runner


def _write_provenance(out: Path, study: Study, cfg: PipelineConfig, record: dict[str, Any]) -> None:
    """``study.json`` and ``phases.json``: written after the sweep, so a partial run can be reported."""
    _write_json(out / "study.json", {
        "name": study.name, "hash": study.hash(), "study": study.content(), "versions": _versions(),
        "stages": {k: {"seconds": v.get("seconds"), "finished": v.get("finished")} for k, v in record.items()},
        "pipeline": dataclasses.asdict(cfg),
    })
    (out / "phases.json").write_text(json.dumps(study.phases, indent=2))


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
        Receives one line per stage (default: stderr).
    pdf : bool
        Also write ``report.pdf``.
    redo : sequence of str
        Stages to run again even though they are up to date (after an upgrade of stochhom,
        say), with every stage downstream of them. ``"sweep"`` is not allowed: the samples
        are redone with ``restart=True``.

    Raises
    ------
    InputError
        An unknown stage in ``redo``, or a results directory that cannot be created.
    """
    import shutil

    from .sweep import open_store, run_sweep

    say = log or (lambda m: print(m, file=sys.stderr))
    redo = [redo] if isinstance(redo, str) else list(redo)
    bad = [r for r in redo if r not in STAGES[1:]]
    if bad:
        hint = " (the sweep is redone with --restart)" if "sweep" in bad else ""
        raise InputError(f"cannot redo stage {bad[0]!r}{hint}; the stages are {', '.join(STAGES[1:])}")
    cfg = pipeline_config(study)
    out = results_dir(study)
    if restart and out.exists():
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
    upstream = {"gallery": [], "rve": ["sweep"], "surrogates": ["sweep"], "propagation": ["surrogates"],
                "validation": ["sweep"], "report": ["sweep", "gallery", "rve", "surrogates", "propagation",
                                                   "validation"]}
    outputs = {"sweep": ["samples.zarr"], "gallery": [], "rve": [], "surrogates": ["surrogates.json"],
               "propagation": ["propagation.json"], "validation": ["validation.csv"],
               "report": ["report.html", "summary.json"]}
    props = None
    ran: set[str] = set()  # stages run in this call: their downstream stages run too
    for stage in STAGES:
        if stage != "sweep":
            section = cfg.section(stage) if stage not in ("report",) else {"pdf": pdf}
            inputs[stage] = {"study": sweep_hash, "options": section,
                             "upstream": [record.get(u, {}).get("hash") for u in upstream[stage]]}
        h = _hash(inputs[stage])
        done = record.get(stage, {})
        fresh = done.get("hash") == h and all((out / f).exists() for f in outputs[stage])
        # validation refits the surrogate models: it is redone with them, not only with the sweep
        after = upstream.get(stage, []) + (["surrogates"] if stage == "validation" else [])
        forced = stage in redo or any(u in ran for u in after)
        if stage != "sweep" and fresh and not forced:
            say(f"stage {stage}: up to date")
            continue
        say(f"stage {stage}: running")
        if stage != "sweep":
            ran.add(stage)
        t0 = time.perf_counter()
        if stage == "sweep":
            swept = dataclasses.replace(study, output=out / "samples.zarr")
            props = run_sweep(swept, workers=workers, scheduler=scheduler, progress=progress, log=say)
            _write_provenance(out, study, cfg, record)
        else:
            if props is None:
                props = open_store(out / "samples.zarr").load()
            if stage == "gallery":
                _stage_gallery(study, out, cfg)
            elif stage == "rve":
                _stage_rve(study, out, cfg, props, say)
            elif stage == "surrogates":
                _stage_surrogates(study, out, cfg, props, say)
            elif stage == "propagation":
                _stage_propagation(study, out, cfg, props)
            elif stage == "validation":
                _stage_validation(study, out, cfg, props)
            elif stage == "report":
                _write_provenance(out, study, cfg, record)
                from ..report import write_report

                write_report(out, pdf=pdf)
        record[stage] = {"hash": h, "seconds": time.perf_counter() - t0,
                         "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        _write_json(record_path, record)
        say(f"stage {stage}: done in {record[stage]['seconds']:.1f} s")
    return out
