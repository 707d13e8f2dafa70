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

__all__ = ["STAGES", "results_dir", "run_study"]

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
        try:
            fit = variance_scaling(sel, target, alpha=None if n_sizes >= 3 else 1.0, rng=study.seed,
                                   min_samples=min(10, int(sel.sizes["sample"] // max(n_sizes, 1))))
        except InputError as exc:
            say(f"  rve: {target} skipped: {exc}")
            continue
        size = fit.rve_size(cfg.rve_epsilon, cfg.rve_realizations)
        result[target] = {
            "volumes": fit.volumes, "variances": fit.variances, "counts": fit.counts, "means": fit.means,
            "alpha": fit.alpha, "alpha_ci": list(fit.alpha_ci), "amplitude": fit.amplitude,
            "integral_range": None if not np.isfinite(fit.integral_range) else fit.integral_range,
            "integral_range_ci": None if not np.isfinite(fit.integral_range) else list(fit.integral_range_ci),
            "chi2": fit.chi2, "epsilon": cfg.rve_epsilon, "realizations": cfg.rve_realizations,
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


def _data(study: Study, props: Any, cfg: PipelineConfig) -> tuple[list[str], dict[str, Any]]:
    from ..surrogates.data import training_data

    features = _features(study, props)
    if not features:
        raise InputError("no numeric swept parameter varies: the surrogate stages need at least one")
    targets = cfg.targets or _default_targets(study)
    data = {}
    for t in targets:
        td = training_data(props, t, features, log_targets=cfg.log_targets)
        data[td.target_names[0]] = td
    return features, data


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

    features, data = _data(study, props, cfg)
    folder = out / "surrogates"
    folder.mkdir(exist_ok=True)
    rows, info = [], {"features": features, "targets": list(data), "models": {}}
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
            if hasattr(final, "loo_error_"):  # the PCE's analytic leave-one-out error (relative)
                entry["loo"] = float(np.atleast_1d(final.loo_error_)[0])
            info["models"][f"{target}__{name}"] = entry
            say(f"  {name} for {target}: {td.X.shape[0]} samples, {k}-fold grouped CV")
    pd.DataFrame(rows, columns=["model", "target", "fold", "y", "mean", "std"]).to_csv(out / "cv_predictions.csv",
                                                                                      index=False)
    _write_json(out / "surrogates.json", info)


def _load_model(folder: Path) -> Any:
    from ..surrogates import GPR, PCE

    return GPR.load(folder) if folder.name.endswith("__gpr") else PCE.load(folder)


@_quiet_extrapolation
def _stage_propagation(study: Study, out: Path, cfg: PipelineConfig, props: Any) -> None:
    from ..surrogates import input_distribution, propagate, sobol_indices

    info = json.loads((out / "surrogates.json").read_text())
    features = info["features"]
    dist = input_distribution(_input_spec(study, props, features, cfg), names=features)
    prop, sob, samples = {}, {}, {}
    for key in info["models"]:
        target, name = key.split("__")
        model = _load_model(out / "surrogates" / key)
        res = propagate(model, dist, cfg.n_samples, n_functions=cfg.n_functions, rng=study.seed)
        prop.setdefault(target, {})[name] = {
            "mean": res.mean, "mean_ci": list(res.mean_ci), "std": res.std, "std_ci": list(res.std_ci),
            "quantiles": {str(q): v for q, v in res.quantiles.items()},
            "variance": {k: res.variance[k] for k in ("total", "aleatoric", "epistemic", "unsplit", "input")},
            "epistemic_share": res.epistemic_share,
        }
        flat = res.samples.reshape(-1)
        samples[key] = flat[np.random.default_rng(study.seed).permutation(flat.size)[:20000]]
        if name == "pce" and not cfg.inputs:
            s = sobol_indices(model)
        else:
            s = sobol_indices(model, dist, n_samples=256, n_functions=min(cfg.n_functions, 32), rng=study.seed)
        sob.setdefault(target, {})[name] = {"names": s.names, "first": s.first, "total": s.total,
                                            "first_ci": [s.first_ci[0], s.first_ci[1]],
                                            "total_ci": [s.total_ci[0], s.total_ci[1]], "method": s.method}
    _write_json(out / "propagation.json", prop)
    _write_json(out / "sobol.json", sob)
    np.savez_compressed(out / "propagation_samples.npz", **samples)


@_quiet_extrapolation
def _stage_validation(study: Study, out: Path, cfg: PipelineConfig, props: Any) -> None:
    import pandas as pd

    from ..validation import degradation, evaluate, grouped_kfold, leakage_demonstration, ood_folds

    _, data = _data(study, props, cfg)
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
