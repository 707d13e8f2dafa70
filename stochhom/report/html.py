"""The study report: one self-contained HTML file and a machine-readable ``summary.json``.

:func:`write_report` reads a results directory written by ``stochhom run`` (see
:mod:`stochhom.study.runner`) and writes

* ``report.html``: the answers first (a summary of the study's question and its answers
  with their uncertainty, the surrogate to trust and how far, where the variance comes
  from, and every warning), then one section per stage, and the configuration,
  provenance and timings in an appendix (tables, not JSON). Every figure is embedded as
  a base64 PNG and the CSS is inline, so the file can be mailed or archived alone; on a
  wide screen figures sit in two columns;
* ``summary.json``: the numbers of the report, strict JSON (``null`` for missing or
  non-finite values) with a ``schema_version``, the ``units`` of every quantity, and one
  layout for every estimate with an interval: ``{"value": v, "low": a, "high": b,
  "level": 0.95}``;
* ``report.pdf`` when ``pdf=True``: the same report, tables included, printed by headless
  Chromium (:func:`stochhom.report.browser.print_pdf`; Debian package ``chromium``).

Units come from the study's ``[study].units`` table (:mod:`stochhom.units`); without it,
properties are in "phase units" and lengths in voxels.

Inputs of the results directory (all optional except ``study.json`` and ``samples.zarr``):

========================  ==============  ===============================================
file                      stage           section
========================  ==============  ===============================================
study.json                report          appendix (configuration, timings), units
samples.zarr              sweep           appendix, properties, failures
gallery.nc                gallery         microstructure
phases.json               report          properties (the bounds)
rve.json                  rve             rve
cv_predictions.csv        surrogates      surrogates (figures)
surrogates.json           surrogates      surrogates (bounds, pooled CV metrics, scatter)
propagation.json          propagation     propagation
propagation_samples.npz   propagation     propagation (densities)
sobol.json                propagation     propagation (Sobol indices and shares)
leakage.csv               validation      validation (leakage demonstration)
ood.json, ood.csv         validation      validation (out-of-distribution evaluation)
========================  ==============  ===============================================

The summary is built last, from the numbers the sections computed (one value of each
quantity everywhere). A section whose input is missing says so and names the stage to run
first. Every string that comes from the user or the data (study name, parameter and model
names, statuses, phase tables) is HTML-escaped.
"""

from __future__ import annotations

import base64
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy import stats

from ..errors import InputError, StochhomError
from ..io import open_dataset
from ..microstructure.descriptors import describe
from ..statistics.ensemble import sample_parameters
from ..statistics.summary import CI_METHODS, IDENTIFIERS, default_by, summarize
from ..units import UNIT_KEYS, Units, units_from_dict
from . import figures as F
from .answers import _summary
from .markup import (
    _CSS,
    _SOURCES,
    _ci,
    _details,
    _dist_text,
    _esc,
    _finite,
    _interval_layout,
    _jsonable,
    _num,
    _parameter_text,
    _pct,
    _scalar,
    _seconds,
    _table,
    _units_text,
    _value_text,
    _with_ci,
    _with_unit,
)

__all__ = ["write_report", "SECTIONS", "STAGE_OF", "RUN_COMMAND", "SCHEMA_VERSION"]

#: Report sections in order: (id, title). The ids are stable anchors of ``report.html``.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary: the answers"),
    ("microstructure", "Microstructure"),
    ("properties", "Apparent properties"),
    ("rve", "RVE size"),
    ("surrogates", "Surrogate quality"),
    ("propagation", "Propagated distributions and sensitivity"),
    ("structure", "Structural response"),
    ("validation", "Validation"),
    ("failures", "Failed samples"),
    ("provenance", "Appendix: configuration, provenance and timings"),
)

#: Version of the layout of ``summary.json`` (1: the first versioned layout, with units
#: and one interval layout).
SCHEMA_VERSION = 1

#: The ``stochhom run`` stage that writes each input file.
STAGE_OF: dict[str, str] = {
    "study.json": "report",
    "samples.zarr": "sweep",
    "adaptive.json": "sweep",
    "gallery.nc": "gallery",
    "phases.json": "report",
    "rve.json": "rve",
    "hierarchy.json": "rve",
    "fit.json": "gallery",
    "fields/fields.json": "fields",
    "fit_images.npz": "gallery",
    "cv_predictions.csv": "surrogates",
    "surrogates.json": "surrogates",
    "propagation.json": "propagation",
    "propagation_samples.npz": "propagation",
    "sobol.json": "propagation",
    "structure.json": "structure",
    "structure.npz": "structure",
    "leakage.csv": "validation",
    "ood.json": "validation",
    "ood.csv": "validation",
}

#: The command that produces a results directory.
RUN_COMMAND = "stochhom run STUDY.toml"

_COLUMNS = {
    "cv_predictions.csv": ("model", "target", "fold", "split", "y", "mean", "std", "lower", "upper", "z"),
    "leakage.csv": ("model", "target", "metric", "naive", "grouped", "optimism", "optimism_low", "optimism_high",
                    "ratio", "n", "n_groups"),
    "ood.csv": ("model", "target", "split", "distance_low", "distance_high", "distance_mean", "n_samples",
                "n_groups"),
}


# --------------------------------------------------------------------------- small helpers


def _not_run(file: str, extra: str = "") -> str:
    stage = STAGE_OF.get(file, "report")
    return (f'<p class="not-run">Not run: there is no <code>{_esc(file)}</code> in the results directory. '
            f'Run <code>{RUN_COMMAND}</code> (stage "{stage}") first{_esc(extra)}.</p>')


def _not_run_text(file: str) -> str:
    return f'not run: no {file}; run `{RUN_COMMAND}` (stage "{STAGE_OF.get(file, "report")}") first'


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {str(path)!r} as JSON: {exc}") from None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {str(path)!r} as CSV: {exc}") from None
    missing = [c for c in _COLUMNS.get(path.name, ()) if c not in table.columns]
    if missing:
        raise InputError(f"{path.name} lacks the column(s) {missing}; it has {list(table.columns)}")
    return table


#: Pixels per inch of a figure at its displayed (CSS) size; the PNG has twice as many, for sharp
#: text on high-density screens.
CSS_PPI = 100

#: Figures wider than this (inches) span both columns of the page.
WIDE_FIGURE = 6.6


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    with mpl.rc_context(F.STYLE):
        fig.savefig(buf, format="png", dpi=2 * CSS_PPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- the report being built


@dataclass
class _Section:
    id: str
    title: str
    parts: list[tuple[str, str]] = field(default_factory=list)  # ("html" | "figure", markup)
    status: str = "ok"
    message: str = ""


@dataclass
class _Report:
    root: Path
    sections: dict[str, _Section]
    units: Units = field(default_factory=Units)
    summary: dict[str, Any] = field(default_factory=dict)
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    #: Warnings for the summary: (section id, HTML text).
    warnings: list[tuple[str, str]] = field(default_factory=list)
    #: The dimension of the study (names the largest eigenvalue), when known.
    dim: int | None = None
    #: Parts rendered last (the timings, which include the report's own time), by key.
    deferred: dict[str, Callable[[], str]] = field(default_factory=dict)

    def file(self, name: str) -> Path | None:
        path = self.root / name
        return path if path.exists() else None

    def figure(self, section: str, fig: Figure, caption: str) -> None:
        """Embed ``fig`` in ``section`` as a base64 PNG, at a displayed width of its width in
        inches × :data:`CSS_PPI` px (both columns when wider than :data:`WIDE_FIGURE`)."""
        self.figures.append((caption, fig))
        width_in, height_in = fig.get_size_inches()
        w, h = round(width_in * CSS_PPI), round(height_in * CSS_PPI)
        font = F.min_font_px(fig)
        wide = ' class="wide"' if width_in > WIDE_FIGURE else ""
        self.sections[section].parts.append(("figure",
            f'<figure{wide}><img src="data:image/png;base64,{_png(fig)}" width="{w}" height="{h}" '
            f'data-min-font-px="{font:.1f}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>'))

    def label(self, target: str) -> str:
        """The readable name of a target (:func:`~stochhom.report.figures.target_label`) in this
        study's dimension ("largest" eigenvalue)."""
        return F.target_label(target, dim=self.dim)

    def add(self, section: str, part: str) -> None:
        self.sections[section].parts.append(("html", part))

    def warn(self, section: str, text: str) -> None:
        """A warning (HTML) shown in ``section`` and listed in the summary."""
        self.warnings.append((section, text))

    def not_run(self, section: str, file: str, extra: str = "") -> None:
        s = self.sections[section]
        s.status, s.message = "not run", _not_run_text(file)
        self.add(section, _not_run(file, extra))


# --------------------------------------------------------------------------- sections


def _load_samples(root: Path) -> tuple[xr.Dataset, int]:
    path = root / "samples.zarr"
    if not path.exists():
        raise InputError(f"{str(root)!r} has no samples.zarr; run `{RUN_COMMAND}` (stage \"sweep\") first")
    props = open_dataset(path).load()
    pending = 0
    if "done" in props:  # a sweep store: samples not computed yet are left out
        done = props["done"].values.astype(bool)
        pending = int((~done).sum())
        props = props.isel(sample=np.flatnonzero(done))
    return props, pending


def _converged(props: xr.Dataset) -> np.ndarray:
    if "converged" not in props:
        return np.ones(props.sizes["sample"], dtype=bool)
    return props["converged"].values.astype(bool)


def _stats(values: np.ndarray) -> dict[str, float | None]:
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "median": None, "max": None}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "max": float(v.max())}


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and all(isinstance(x, Mapping) for x in v.values()):
            out += _flatten(v, key + ".")
        elif isinstance(v, Mapping) and v and not any(isinstance(x, Mapping) for x in v.values()) and len(v) > 3:
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


def _provenance(rep: _Report, meta: Mapping[str, Any], props: xr.Dataset, pending: int,
                report_seconds: Callable[[], float]) -> None:
    study = meta.get("study", {}) or {}
    u = rep.units
    conv = _converged(props)
    shape = study.get("shape") or props.attrs.get("shape") or []
    voxel = study.get("voxel_size", props.attrs.get("voxel_size", 1.0))
    length = u.length if u.length else None
    rows: list[tuple[Any, ...]] = [
        ("study", meta.get("name", "")),
        ("study hash", meta.get("hash", "")),
        ("physics", props.attrs.get("physics", "")),
        ("dimension", props.attrs.get("dim", "")),
        ("generator", study.get("generator", props.attrs.get("generator", ""))),
        ("SVE shape", " × ".join(str(s) for s in shape) + " voxels" if shape else "–"),
        ("voxel size", f"{_num(voxel)} {u.length_unit(1)}" if length else _num(voxel)),
    ]
    for k, v in (study.get("fixed") or {}).items():
        rows.append((f"fixed: {F.axis_label(k, units=u)}", _value_text(v)))
    design = study.get("design", "")
    npts = study.get("points")
    rows.append(("design", f"{design}" + (f", {npts} points" if npts else "")
                 + f", {study.get('replicates', '')} replicates per point"))
    for k, v in (study.get("parameters") or {}).items():
        rows.append((f"swept: {k}", _parameter_text(k, v, u)))
    rows.append(("root seed", study.get("seed", "unknown")))
    physics = props.attrs.get("physics", "")
    relevant = {"length", "conductivity" if physics == "conductivity" else "modulus"} if physics else set(UNIT_KEYS)
    rows.append(("units", "; ".join(f"{k} = {v}" for k, v in u.as_dict().items() if k in relevant)
                 + ("" if u.declared else " (none declared: add [study].units to the study file)")))
    rep.add("provenance", "<h3>Study</h3>" + _table(("item", "value"), rows, text_columns=2))

    phases = study.get("phases") or {}
    if phases:
        prow = [(label, spec.get("law", ""), _value_text({k: v for k, v in spec.items() if k != "law"}))
                for label, spec in sorted(phases.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0)
                if isinstance(spec, Mapping)]
        rep.add("provenance", "<h3>Phases</h3><p>Values that are names or expressions are evaluated with each "
                "sample's parameters.</p>" + _table(("label", "law", "parameters"), prow, 3))
    solver = study.get("solver") or {}
    pipeline = meta.get("pipeline") or {}
    crow = [(f"solver: {k}", _value_text(v)) for k, v in solver.items()]
    crow += [(k.replace("_", " "), _value_text(v)) for k, v in _flatten(pipeline)]
    if crow:
        rep.add("provenance", "<h3>Solver and pipeline options</h3>"
                + _details(f"Show the {len(crow)} options", _table(("option", "value"), crow, 2)))

    seeds = props["seed"].values if "seed" in props.coords else np.array([])
    seed_text = (f"Root seed {_esc(study.get('seed', 'unknown'))}; each sample's seed is spawned from it with "
                 f"<code>numpy.random.SeedSequence</code> ({np.unique(seeds).size} distinct sample seeds"
                 + (f", e.g. {_esc(', '.join(str(s) for s in seeds[:3]))}" if seeds.size else "") + ").")
    rep.add("provenance", f"<h3>Seeds</h3><p>{seed_text}</p>")

    stages = dict(meta.get("stages", {}) or {})
    stages.pop("report", None)  # this rendering is timed below, not a previous one
    warm = props["warmup_time"].values if "warmup_time" in props else np.array([])
    warm = warm[np.isfinite(warm)] if warm.size else warm
    compile_s = float(warm.sum()) if warm.size else _scalar((meta.get("compile") or {}).get("seconds"))
    processes = int((warm > 0).sum()) if warm.size else (meta.get("compile") or {}).get("processes")
    trows = [(k, _seconds(v.get("seconds")), v.get("finished", "")) for k, v in stages.items()]
    timings = {k: v.get("seconds") for k, v in stages.items()}
    rep.summary["timings"] = timings
    rep.summary["compile"] = {"seconds": compile_s, "processes": processes}
    solver_rows_at = len(rep.sections["provenance"].parts)

    its = props["iterations"].values[conv] if "iterations" in props else np.array([])
    res = props["residual"].values[conv] if "residual" in props else np.array([])
    st = props["solve_time"].values if "solve_time" in props else np.array([])
    its = np.where(np.asarray(its) < 0, np.nan, its)
    solver_stats = {"iterations": _stats(its), "residual": _stats(res),
                    "solve_time": {**_stats(st), "total": float(np.nansum(st)) if np.size(st) else None}}
    srows = [("iterations per load case", *(solver_stats["iterations"][k] for k in ("mean", "median", "max"))),
             ("final relative residual", *(solver_stats["residual"][k] for k in ("mean", "median", "max"))),
             ("solve time per sample [s]", *(solver_stats["solve_time"][k] for k in ("mean", "median", "max")))]
    rep.add("provenance", "<h3>Solver diagnostics</h3>"
            f"<p>{int(conv.sum())} of {conv.size} samples converged"
            + (f"; {pending} samples not computed yet" if pending else "")
            + ". Iterations and residuals over the converged samples; solve times (the cell problems of one "
              "sample, not the generation) over all samples"
            + (", without the one-time compilation of the solver's kernels (counted once, in the timings above)"
               if warm.size else "") + ".</p>"
            + _table(("quantity", "mean", "median", "max"), srows, 1))

    def timing_table() -> str:
        rows = list(trows)
        if _finite(compile_s) and compile_s:
            rows.insert(1 if rows else 0, (f"  of which kernel compilation (once in each of {processes or '?'} "
                                           "process(es))", _seconds(compile_s), "–"))
        rows.append(("report (this rendering)", _seconds(report_seconds()), "now"))
        total = sum(float(v or 0.0) for k, v in timings.items() if k != "report") + report_seconds()
        return ("<h3>Timings</h3><p>Wall time of each stage of the last <code>stochhom run</code> that ran it (a stage "
                "that was up to date is not rerun). Compilation of the solver's kernels happens once per worker "
                "process and is part of the sweep stage, not of any sample's solve time.</p>"
                + _table(("stage", "seconds", "finished"), rows, 1) + f"<p>Total: {_seconds(total)} s.</p>")

    rep.sections["provenance"].parts.insert(solver_rows_at, ("deferred", "timings"))
    rep.deferred["timings"] = timing_table

    versions = meta.get("versions", {}) or {}
    rep.add("provenance", "<h3>Versions</h3>" + _table(
        [k for k in sorted(versions)], [[versions[k] for k in sorted(versions)]], 0))
    rep.summary["study"] = {"name": meta.get("name"), "hash": meta.get("hash"),
                            "generator": study.get("generator", props.attrs.get("generator")),
                            "physics": props.attrs.get("physics"), "dim": props.attrs.get("dim"),
                            "seed": study.get("seed"), "question": meta.get("question")}
    rep.summary["versions"] = versions
    rep.summary["solver"] = solver_stats


def _microstructure(rep: _Report) -> None:
    path = rep.file("gallery.nc")
    if path is None:
        rep.not_run("microstructure", "gallery.nc")
        return
    ens = open_dataset(path).load()
    u = rep.units
    dim = len([d for d in ("x", "y", "z") if d in ens.dims]) or None
    spread = ens.attrs.get("kind") == "stochhom gallery"
    rep.figure("microstructure", F.gallery_figure(ens, max_samples=ens.sizes["sample"], units=u),
               "Microstructure gallery: phase labels of "
               + ("SVEs of the sweep spread over the design, each the very image the solver saw"
                  if spread else "the first samples") + " (3D: the middle z slice)")
    if "local_field" in ens:
        fld = ens["local_field"]
        phys = "flux magnitude under a unit macroscopic gradient along x" if fld.attrs.get("quantity") == \
            "flux_magnitude" else "von Mises stress under a unit macroscopic strain ε̄₁₁"
        failed = int(fld.attrs.get("failed", 0))
        rep.figure("microstructure", F.gallery_field_figure(ens, units=u),
                   f"Local fields of the same SVEs: the {phys}, solved as the sweep solves them, each divided by "
                   "its SVE mean (one colour scale, up to its 99.5 % quantile; white: phase boundaries): the "
                   "local extremes that the apparent property averages away"
                   + (f"; {failed} sample(s) did not converge (blank)" if failed else "") + ".")
        _field_statistics(rep, ens)
    rep.figure("microstructure", F.s2_figure(ens, units=u),
               "Radially averaged two-point probability S₂(r) of phase 1, against its closed form where one exists")
    d = describe(ens)
    cols = ("phase_fraction", "specific_surface", "correlation_length", "integral_range")
    rows = [(int(s), *(float(d[c].values[k]) for c in cols), float(d["mean_chord"].values[k].mean()))
            for k, s in enumerate(d["sample"].values)]
    rep.add("microstructure", "<h3>Descriptors of phase 1</h3>" + _table(
        ("sample", "phase fraction [–]", _with_unit("specific surface", u.of("specific_surface")),
         _with_unit("correlation length", u.length_unit(1)),
         _with_unit("integral range", u.length_unit(dim or 1)), _with_unit("mean chord", u.length_unit(1))), rows))
    rep.summary["microstructure"] = {"samples": int(d.sizes["sample"]),
                                     "descriptors": {c: float(d[c].mean()) for c in (*cols, "mean_chord")}}
    _fit(rep, dim)
    _written_fields(rep)


def _field_statistics(rep: _Report, ens: Any) -> None:
    """Per-phase statistics of the gallery's local field: histograms and a table of the
    concentration (local value over the SVE mean) per sample and phase."""
    stats = F.gallery_field_statistics(ens)
    if stats.empty:
        return
    rep.figure("microstructure", F.gallery_field_histogram_figure(ens),
               "Distribution of the same local field in each phase of each SVE, relative to the SVE mean (density "
               "of the phase's voxels, log scale; dashed: the phase means; axis up to the SVE's 99.9 % quantile): "
               "the per-phase histograms that the field's literature reports, whose tails are the concentrations")
    rows = list(stats[["sample", "phase", "volume_fraction", "mean", "std", "p99", "max"]].itertuples(index=False,
                                                                                         name=None))
    table = _table(("sample", "phase", "volume fraction [–]", "mean [–]", "std [–]", "99th percentile [–]",
                    "max [–]"), rows)
    rep.add("microstructure", "<h3>Local field per phase</h3><p>The field of the maps above divided by its SVE mean; "
            "the phase means weighted by the volume fractions average to 1.</p>"
            + (table if len(rows) <= 12 else _details(f"Show the {len(rows)} rows", table)))
    rep.summary["microstructure_fields"] = {
        "quantity": str(ens["local_field"].attrs.get("quantity")), "samples": int(stats["sample"].nunique()),
        "phase_mean": {str(p): float(g["mean"].mean()) for p, g in stats.groupby("phase")},
        "phase_p99": {str(p): float(g["p99"].mean()) for p, g in stats.groupby("phase")}}


def _written_fields(rep: _Report) -> None:
    """The field files of ``[output] fields`` (``fields/fields.json``), listed for ParaView."""
    path = rep.file("fields/fields.json")
    if path is None:
        return
    index = _read_json(path)
    rows = [(r["sample"], r["point"], r["replicate"], r.get("file", "–"),
             r.get("iterations", "–") if "error" not in r else f"failed: {r['error']}")
            for r in index.get("samples", [])]
    rep.add("microstructure", "<h3>Local fields written</h3><p>[output] fields: the local fields of these samples, "
            f"regenerated from their seeds and solved as the sweep solves them, are in <code>fields/</code> "
            f"(.{_esc(index.get('format', ''))} files; open them in ParaView).</p>"
            + _table(("sample", "point", "replicate", "file", "iterations"), rows, text_columns=(3, 4)))


#: Largest |z| of the specimen's S2 against the fitted ensemble that the report calls consistent.
FIT_Z_OK = 3.0


def _fit(rep: _Report, dim: int | None) -> None:
    """The model fitted to a specimen (``fit.json``): parameters, segmentation, and the
    goodness of fit (the specimen's descriptors against the fitted model's ensemble)."""
    path = rep.file("fit.json")
    if path is None:
        return
    fit = _read_json(path)
    u = rep.units
    images = None
    if (ipath := rep.file("fit_images.npz")) is not None:
        with np.load(ipath) as z:
            images = {k: z[k] for k in ("specimen", "model") if k in z}
    rep.figure("microstructure", F.fit_figure(fit, images, units=u),
               f"The specimen against the {_esc(fit.get('generator', ''))} model fitted to it: its two-point "
               f"probability and lineal path of phase {fit.get('phase', 1)} (points) against the mean and ±2 "
               f"standard deviations of {fit.get('n')} model samples of the specimen's size (band)")
    seg = fit.get("segmentation")
    seg = json.loads(seg) if isinstance(seg, str) else seg
    how = ""
    if seg:
        levels = ", ".join(_num(v) for lv in seg.get("levels", []) for v in (lv if isinstance(lv, list) else [lv]))
        method = {"otsu": "Otsu's threshold", "multiotsu": "multi-level Otsu thresholds"}.get(
            str(seg.get("threshold")), f"the threshold {_esc(str(seg.get('threshold')))}")
        how = (f" The grey levels were segmented by {method} (grey level {levels})"
               + (f", downsampled by {seg.get('downsample')}" if (seg.get("downsample") or 1) > 1 else "") + ".")
    params = [(k, fit[k]) for k in ("volume_fraction", "radius", "correlation_length", "model", "nu") if k in fit]
    zmax, lmax = fit.get("s2_z_max"), fit.get("lineal_z_max")
    verdict = ("consistent with a draw from the model" if _finite(zmax) and zmax <= FIT_Z_OK else
               "outside the model's spread at some lags: the model misses part of the specimen's structure")
    lineal = ""
    if _finite(lmax):
        lineal = (" Its lineal path, which the fit did not use, "
                  + (f"leaves the model's spread (by up to {_num(lmax)} standard deviations): the model does not "
                     "reproduce the lengths of straight paths through the phase." if lmax > FIT_Z_OK else
                     f"stays within it (largest deviation {_num(lmax)} standard deviations)."))
    rows = [(k.replace("_", " "), _num(v) if isinstance(v, (int, float)) else str(v)) for k, v in params]
    rows += [("phase fraction: specimen / model mean", f"{_num(fit.get('fraction_specimen'))} / "
                                                       f"{_num(fit.get('fraction_mean'))}"),
             (_with_unit("mean chord: specimen / model mean ± std", u.length_unit(1)),
              f"{_num(fit.get('mean_chord_specimen'))} / {_num(fit.get('mean_chord_mean'))} ± "
              f"{_num(fit.get('mean_chord_std'))}"),
             ("largest |S₂ specimen − model mean| / model std over r > 0", _num(zmax)),
             ("largest |L specimen − model mean| / model std over z > 0", _num(fit.get("lineal_z_max")))]
    rep.add("microstructure", f"<h3>Model fitted to the specimen</h3><p>The generator's parameters were fitted to "
            f"<code>{_esc(str(fit.get('path')))}</code> ({'×'.join(str(n) for n in fit.get('shape', []))} voxels)."
            f"{how} The specimen's S₂ is {verdict} (largest deviation {_num(zmax)} standard deviations of "
            f"{fit.get('n')} samples; up to {FIT_Z_OK:g} is what a draw from the model shows).{lineal}</p>"
            + _table(("quantity", "value"), rows, 1))
    rep.summary["fit"] = {k: fit.get(k) for k in ("path", "generator", "volume_fraction", "radius",
                                                   "correlation_length", "fraction_specimen", "fraction_mean",
                                                   "mean_chord_specimen", "mean_chord_mean", "mean_chord_std",
                                                   "s2_z_max", "lineal_z_max") if k in fit}


def _summary_variables(props: xr.Dataset) -> tuple[xr.Dataset, list[str]]:
    cols = F.property_columns(props)
    extra = ["anisotropy_index"]
    if "conductivity_eigenvalues" in props:
        extra.insert(0, "conductivity_eigenvalues")
    if "phase_fraction" in props:
        extra.append("phase_fraction")
    return props.assign({c: ("sample", v) for c, v in cols.items()}), [*dict.fromkeys([*cols, *extra])]


def _phase_spec(rep: _Report, meta: Mapping[str, Any]) -> tuple[Any, str]:
    path = rep.file("phases.json")
    if path is not None:
        return _read_json(path), "the study's phase table"
    phases = (meta.get("study", {}) or {}).get("phases")
    return (phases, "the study's phase table (study.json)") if phases else (None, "")


def _adaptive_design(rep: _Report) -> None:
    """The rounds of an adaptive design (``adaptive.json``): samples added per round, new points
    and replicates, and the stopping metric over the rounds."""
    path = rep.file("adaptive.json")
    if path is None:
        return
    state = _read_json(path)
    rounds = state.get("rounds", [])
    if not rounds:
        return
    study = json.loads(rep.file("study.json").read_text()) if rep.file("study.json") else {}
    cfg = ((study.get("study") or study).get("adaptive") if isinstance(study, dict) else None) or {}
    limits = state.get("limits") or cfg  # the budget and the rule of the last run (not in the study's hash)
    stop = str(limits.get("stop", "none"))
    target = str(cfg.get("target", ""))
    stopped = state.get("stopped")
    budget = f" ({limits['max_points']} samples)" if "max_points" in limits else ""
    why = {"criterion": f"the stopping rule {stop} held", "budget": f"the budget of samples{budget} was spent"}.get(
        stopped, "it has not finished")
    batches = [r for r in rounds if r["added"]]
    rep.add("properties", "<h3>Adaptive design</h3>"
            f"<p>{rounds[0]['samples']} samples of the initial design, then {len(batches)} round(s) adding "
            f"{sum(r['added'] for r in rounds)} samples where they reduce the integrated variance of a GP of "
            f"{_esc(rep.label(target))} over the design distribution most; the design stopped because {why}.</p>")
    rep.figure("properties", F.adaptive_history_figure(rounds, stop, target=rep.label(target)),
               "Adaptive design: the samples each round added (new points, or replicates of solved points where the "
               "SVE scatter dominates), and the epistemic share of the predictive variance (what more solves could "
               "remove; the rest is SVE scatter) of the GP fitted before each round"
               + (f"; the design stops when {stop}" if stop != "none" else "") + ".")
    try:
        unit = rep.units.of(target)
    except Exception:  # a target without a declared unit
        unit = ""
    rows = [(r["round"] + 1 if r["added"] else "end", r["samples"], r["converged"], r["new_points"], r["replicates"],
             r["epistemic_share"], r["epistemic_std"]) for r in rounds]
    table = _table(("round", "samples before", "converged", "new points", "replicates", "epistemic share [–]",
                    _with_unit("epistemic std", unit)), rows)
    rep.add("properties", table if len(rows) <= 12 else _details(f"Show the {len(rows)} rounds", table))
    rep.summary["adaptive_design"] = {"rounds": rounds, "stopped": stopped, "stop": stop,
                                      "max_points": limits.get("max_points"), "target": cfg.get("target")}


def _properties(rep: _Report, meta: Mapping[str, Any], props: xr.Dataset) -> None:
    if props.sizes["sample"] == 0:
        rep.not_run("properties", "samples.zarr", " (no sample has been computed)")
        return
    data, variables = _summary_variables(props)
    # the points ordered by the swept parameters in the study's order, then the fixed ones: the same
    # table whatever order the store lists its coordinates in
    swept = list((meta.get("study") or {}).get("parameters") or {})
    by = sorted(default_by(data), key=lambda k: (swept.index(k) if k in swept else len(swept), k))
    phases, source = _phase_spec(rep, meta)
    summary = None
    if phases is not None:
        try:
            summary = summarize(data, by=by, variables=variables, phases=phases, rng=0)
        except StochhomError:
            summary = None
    if summary is None:
        summary = summarize(data, by=by, variables=variables, rng=0)
    few = summary["count"] < MIN_CI_SAMPLES  # no interval of the mean from fewer samples
    n_few = int(few.any("variable").sum())
    summary["ci_low"] = summary["ci_low"].where(~few)
    summary["ci_high"] = summary["ci_high"].where(~few)
    u = rep.units
    try:
        fig = F.properties_figure(props, phases, summary=summary, units=u)
    except InputError as exc:
        s = rep.sections["properties"]
        s.status, s.message = "not available", str(exc)
        rep.add("properties", f'<p class="not-run">Not available: {_esc(exc)}. See the failed samples below.</p>')
        return
    labels = " ".join(lab for ax in fig.axes for lab in ax.get_legend_handles_labels()[1])
    labels += " ".join(t.get_text() for leg in fig.legends for t in leg.get_texts())
    drawn = [name for name, key in (("Voigt/Reuss", "Voigt"), ("Hashin–Shtrikman", "Hashin")) if key in labels]
    if drawn:
        note = (f"Bounds of each sample at its measured phase fractions (phases from {source}, resolved with the "
                f"sample's parameters): {' and '.join(drawn)}.")
    elif phases is not None:
        note = ("The bounds are not drawn: they need the phase fractions and resolvable phases (Hashin–Shtrikman: "
                "isotropic phases).")
    else:
        note = "No phase table (phases.json) was found: the bounds are not drawn."
    rep.figure("properties", fig, "Apparent properties against the swept parameters: samples, and the mean of each "
               "point with its 95 % confidence interval. " + note)

    keys = [str(c) for c, da in summary.coords.items() if da.dims == ("point",) and c != "point"]
    # parameters that are the same at every point label the table once, above it, not in a column
    varying = [k for k in keys if np.unique(summary[k].values.astype(str)).size > 1]
    constant = [k for k in keys if k not in varying]
    shown = list(F.property_columns(props))
    columns = [*(F.axis_label(k, units=u) for k in varying), "samples", "failed"]
    groups: list[tuple[str, int]] = [("parameters", len(varying)), ("samples", 2)] if varying else [("samples", 2)]
    for v in shown:
        columns += ["mean", "95 % CI low", "95 % CI high"]
        groups.append((_with_unit(rep.label(v), u.of(v)), 3))
    if "within_hs" in summary:
        columns.append("inside the HS bounds")
        groups.append(("bounds", 1))
    rows, points = [], []
    for p in range(summary.sizes["point"]):
        s = summary.isel(point=p)
        counts = [int(s["count"].sel(variable=v).item()) for v in shown] if shown else [0]
        row: list[Any] = [s[k].item() for k in varying] + [int(s["n_samples"]), int(s["n_failed"])]
        for v in shown:
            row += [f"{_num(s['mean'].sel(variable=v).item())}{_mark(str(s['ci_method'].sel(variable=v).item()))}",
                    s["ci_low"].sel(variable=v).item(), s["ci_high"].sel(variable=v).item()]
        if "within_hs" in summary:
            frac, n = s["within_hs"].item(), min(counts)
            row.append(f"{round(frac * n)} of {n}" if _finite(frac) and n else "–")
        rows.append(row)
        entry: dict[str, Any] = {"point": s["point"].item(), "parameters": {k: s[k].item() for k in keys},
                                 "n_samples": int(s["n_samples"]), "n_failed": int(s["n_failed"])}
        entry["mean"] = {str(v): {"value": s["mean"].sel(variable=v).item(), "low": s["ci_low"].sel(variable=v).item(),
                                  "high": s["ci_high"].sel(variable=v).item(), "level": 0.95,
                                  "method": str(s["ci_method"].sel(variable=v).item())}
                         for v in summary["variable"].values}
        for stat in ("std", "count"):
            entry[stat] = {str(v): s[stat].sel(variable=v).item() for v in summary["variable"].values}
        if "within_hs" in summary:
            entry["fraction_within_hs"] = s["within_hs"].item()
        points.append(entry)
    used = list(dict.fromkeys(str(m) for v in shown for m in summary["ci_method"].sel(variable=v).values))
    notes = "; ".join(f"{_MARKS.get(m, '')} {_esc(CI_METHODS.get(m, m))}" for m in used if m != "none")
    table = _table(columns, rows, 0, groups=groups)
    n_points = summary.sizes["point"]
    rep.add("properties", "<h3>Per-point statistics</h3>"
            "<p>Means over the converged samples of each point, with 95 % confidence intervals of the mean "
            "that respect each quantity's range (a positive quantity's interval never goes below zero). How "
            f"each interval was made: {notes}."
            + (" At every point: " + _esc(", ".join(f"{F.axis_label(k, units=u).split(' [')[0]} = "
                                                     f"{_num(summary[k].values[0])}" for k in constant)) + "."
               if constant else "")
            + (f" Points with fewer than {MIN_CI_SAMPLES} converged samples get no interval ({n_few} here)."
               if n_few else "") + "</p>"
            + (table if n_points <= 12 else _details(f"Show the table of the {n_points} points", table)))
    rep.summary["points"] = points
    conv = _converged(props)
    overall = {}
    keep = conv.copy()
    largest = None
    if "size" in props.coords and np.unique(props["size"].values).size > 1:  # an RVE study: its largest SVEs
        largest = float(np.max(props["size"].values))
        keep &= props["size"].values == largest
    for v, values in F.property_columns(props).items():
        x = np.asarray(values, dtype=float)[keep]
        x = x[np.isfinite(x)]
        if x.size:
            half = (float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
                    if x.size > 1 else math.nan)  # Student-t interval of the mean
            overall[v] = {"n": int(x.size), "mean": float(x.mean()), "mean_low": float(x.mean()) - half,
                          "mean_high": float(x.mean()) + half,
                          "std": float(x.std(ddof=1)) if x.size > 1 else None,
                          "q025": float(np.quantile(x, 0.025)), "median": float(np.median(x)),
                          "q975": float(np.quantile(x, 0.975)), "unit": u.of(v), "size": largest}
    rep.summary["samples_overall"] = overall


#: Marks of the interval methods in the per-point table (explained below it).
_MARKS = {"cox-log": "ᶜ", "t": "ᵗ", "t∩support": "ᵗ*", "BCa": "ᵇ", "BCa∩support": "ᵇ*", "percentile": "ᵖ",
          "percentile∩support": "ᵖ*", "basic": "ᵇᵃ", "basic∩support": "ᵇᵃ*", "degenerate": "⁰"}


def _mark(method: str) -> str:
    return _MARKS.get(method, "")


def _rve(rep: _Report, size_swept: bool = True, props: xr.Dataset | None = None) -> None:
    path = rep.file("rve.json")
    if path is None and not size_swept:
        s = rep.sections["rve"]
        s.status, s.message = "not applicable", "the study does not sweep the SVE size (parameter `size`)"
        rep.add("rve", "<p>Not applicable: the study does not sweep the SVE size. Add <code>size = [...]</code> "
                       "to <code>[sweep.parameters]</code> for a Kanit-style RVE analysis.</p>")
        return
    if path is None:
        rep.not_run("rve", "rve.json", " (the stage runs when the study sweeps the SVE size)")
        return
    rve = _read_json(path)
    rep.summary["rve"] = rve
    if not rve:
        rep.add("rve", "<p>The RVE stage fitted no target (see the run log).</p>")
        return
    attrs = props.attrs if props is not None else {}
    u = rep.units
    dim = attrs.get("dim")
    fig = F.rve_figure(rve, dim=dim, voxel_size=attrs.get("voxel_size"), units=u)
    rep.figure("rve", fig, "Variance of the apparent properties against the SVE volume (log-log), "
               "with the fitted power law and integral range")
    rows = []
    summary_rve = {}
    for t, f in rve.items():
        d = f.get("dim")
        v, vci = f.get("rve_volume"), f.get("rve_volume_ci") or (None, None)
        edges = [x ** (1.0 / d) if _finite(x) and x > 0 else None for x in (v, *vci)] if d in (2, 3) else [None] * 3
        dof = f.get("dof")
        a_ci = f.get("integral_range_ci") or (None, None)
        rows.append((rep.label(t), f.get("alpha"), *(f.get("alpha_ci") or (None, None)),
                     _ci(f.get("integral_range"), *a_ci),
                     f"{_num(f.get('chi2'))} ({dof} dof)" if dof is not None else f.get("chi2"),
                     len(f.get("volumes", [])), f.get("epsilon"), f.get("realizations"), _ci(v, *vci), *edges))
        summary_rve[t] = {**f, "rve_edge": edges[0], "rve_edge_ci": edges[1:] if edges[0] is not None else None}
    rep.summary["rve"] = summary_rve
    vol = u.length_unit(dim or 3)
    rep.add("rve", "<p>Kanit et al. (2003): the variance of the apparent property over SVEs of volume V follows "
            "D²(V) = K V<sup>−α</sup>, and K = D²<sub>Z</sub> A<sup>α</sup> gives the integral range A when the "
            "point variance D²<sub>Z</sub> is known (p(1−p) for a phase fraction; p(1−p)(Z₁−Z₀)² for a property "
            "of two isotropic phases; – otherwise, when only K is fitted). The RVE is the smallest volume at which "
            "n realizations estimate the mean within a relative error ε (95 %); its edge is the cube (square) "
            "root of its volume.</p>"
            + _table(("target", "α", "α: 95 % CI low", "high", _with_unit("integral range A [95 % CI]", vol), "χ²",
                      "volumes", "ε", "n", _with_unit("RVE volume [95 % CI]", vol),
                      _with_unit("RVE edge", u.length_unit(1)), "edge: 95 % CI low", "high"), rows, 1))
    _hierarchy(rep, dim, attrs.get("voxel_size"))


def _hierarchy(rep: _Report, dim: int | None, voxel_size: float | None) -> None:
    """``hierarchy.json``: the boundary-condition hierarchy (Kanit et al. 2003)."""
    path = rep.file("hierarchy.json")
    if path is None:
        return
    h = _read_json(path)
    targets = h.get("targets") or {}
    if not targets:
        rep.add("rve", "<h3>Boundary conditions</h3><p>The hierarchy fitted no target (see the run log).</p>")
        return
    u = rep.units
    conds = list(h["conditions"])
    names = {"subc": "static (SUBC)", "mixed": "mixed", "periodic": "periodic", "kubc": "kinematic (KUBC)"}
    vol = u.length_unit(dim or 3)
    rows = []
    for t, r in targets.items():
        for c in conds:
            bias = np.asarray(r[c]["bias"], dtype=float)
            sd = np.sqrt(np.asarray(r[c]["variance"], dtype=float))
            mean = np.asarray(r[c]["mean"], dtype=float)
            rows.append((rep.label(t), names.get(c, c), int(np.min(r[c]["count"])), _num(mean[0]), _pct(bias[0]),
                         _num(mean[-1]), _pct(bias[-1]), _pct(sd[0] / mean[0]), _pct(sd[-1] / mean[-1])))
        bv = r.get("bracket_volume")
        edge = bv ** (1.0 / dim) if bv and dim in (2, 3) else None
        r["bracket_edge"] = edge
    volumes = np.asarray(next(iter(targets.values()))["volumes"], dtype=float)  # the same SVEs for every target
    first, last = float(volumes[0]), float(volumes[-1])
    sizes = (f"{_num(first)} {vol}" + (f" (edge {_num(first ** (1 / dim))})" if dim in (2, 3) else ""),
             f"{_num(last)} {vol}" + (f" (edge {_num(last ** (1 / dim))})" if dim in (2, 3) else ""))
    brackets = "; ".join(
        f"{rep.label(t)}, " + (f"from V = {_num(r['bracket_volume'])} {vol}"
                               + (f" (edge {_num(r['bracket_edge'])} {u.length_unit(1)})" if r['bracket_edge'] else "")
                               if r.get("bracket_volume") else "not within the computed sizes")
        for t, r in targets.items())
    ordered = min(float(r["ordered"]) for r in targets.values())
    lo, hi = names.get(conds[0], conds[0]), names.get(conds[-1], conds[-1])
    ref = next(iter(targets.values()))["reference"]
    ref_name = names.get(ref, ref)
    total = sum(float(x) for x in h.get("solve_seconds", {}).values())
    failed = sum(int(x) for x in (h.get("failed") or {}).values())
    rep.add("rve", "<h3>Boundary conditions</h3>"
            f"<p>The same {h.get('samples')} SVEs (the first replicates of each size at the fixed point) were solved "
            f"under {len(conds)} boundary conditions on the same voxel elements (Q1; periodic by the FFT solver, the "
            "others by finite elements with AMG-preconditioned CG). For every SVE the static condition gives the "
            "softest and the kinematic one the stiffest apparent tensor, with mixed and periodic in between "
            f"(Huet 1990); {_pct(ordered)} of the SVEs follow that order here"
            + (f" ({failed} solves failed)" if failed else "") + ". "
            f"The bias is each mean's deviation from the effective estimate, the {ref_name} mean at the largest "
            f"size. Where the {lo} and {hi} means agree within ε = {_pct(h.get('epsilon'))}: "
            f"{brackets}. Solve time {_num(total)} s.</p>")
    rep.figure("rve", F.hierarchy_figure(h, dim=dim, voxel_size=voxel_size, units=u),
               "Apparent properties of the same SVEs under each boundary condition against the SVE volume: "
               "mean with its 95 % interval, and standard deviation (Kanit et al. 2003)")
    rep.add("rve", f"<p>Smallest SVE: V = {sizes[0]}; largest: V = {sizes[1]}. CV: the coefficient of variation "
                   "(standard deviation over mean) over the SVEs of that size.</p>"
            + _table(("target", "condition", "SVEs", "mean, smallest", "bias", "mean, largest", "bias",
                      "CV, smallest", "CV, largest"), rows, 2))
    rep.summary["hierarchy"] = h


def _structure(rep: _Report) -> None:
    """``structure.json`` / ``structure.npz``: the part's response with the surrogate as every
    element's law (hierarchical), and the direct FE² check (concurrent)."""
    path = rep.file("structure.json")
    sec = rep.sections["structure"]
    if path is None:
        sec.status, sec.message = "not applicable", "the study has no [structure] table"
        rep.add("structure", "<p>Not applicable: the study has no <code>[structure]</code> table. Add one to "
                             "make the surrogate the constitutive law of a part's elements and obtain the "
                             "distribution of a structural quantity (docs: <i>Structures</i>).</p>")
        return
    rec = _read_json(path)
    npz = rep.file("structure.npz")
    if npz is None:
        rep.not_run("structure", "structure.npz")
        return
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    h = rec["hierarchical"]
    u = rep.units
    unit = F.quantity_unit(h["quantity"]["kind"], u)
    qlabel = h["label"] + (f" [{unit}]" if unit else "")
    params = h["parameters"]
    desc = []
    for name, p in params.items():
        if p["kind"] == "field":
            f = p["field"]
            what = ("mean" if f["distribution"] == "normal" else "median")
            desc.append(f"<b>{_esc(name)}</b>: a {f['distribution']} random field ({f['model']} correlation, length "
                        f"{_num(f['correlation_length'])} {u.length_unit(1)}), {what} {_num(f['center'])}, spread "
                        f"{_num(f['spread'])}; element values from {_num(p['range'][0])} to {_num(p['range'][1])}"
                        + (f", {_pct(p['outside'])} of them outside the swept range "
                           f"[{_num(p['domain'][0])}, {_num(p['domain'][1])}] (the surrogate extrapolates there)"
                           if p.get("outside") else ""))
        else:
            desc.append(f"<b>{_esc(name)}</b> = {_num(p['range'][0])}")
    size = f" Each element is one SVE of size {_num(rec['size'])}." if rec.get("size") else \
        " Each element is one SVE of the swept size."
    length = u.length_unit(1)
    dims = " × ".join(f"{_esc(k.replace('_', ' '))} {_num(val)} {length}" for k, val in rec["dimensions"].items())
    part = rec["part"].replace("_", " ")
    if rec["part"] == "file":
        part, dims = "part", f"mesh {_esc(Path(rec.get('path') or '').name)}"
    loads = []
    for b, comps in (rec.get("loads", {}).get("fixed") or {}).items():
        loads.append(f"{_esc(b)} side held ({'all components' if comps == 'all' else 'components ' + str(comps)})")
    force = u.of("bulk_modulus") or "phase units"
    for b, vec in (rec.get("loads", {}).get("traction") or {}).items():
        loads.append(f"traction ({', '.join(_num(c) for c in vec)}) {_esc(force)} on the {_esc(b)} side")
    for key, what in (("temperature", "temperature"), ("flux", "heat flux")):
        for b, val in (rec.get("loads", {}).get(key) or {}).items():
            loads.append(f"{what} {_num(val)} on the {_esc(b)} side")
    if rec.get("loads", {}).get("source"):
        loads.append(f"uniform source {_num(rec['loads']['source'])}")
    v = h["variance"]
    rep.add("structure",
            f"<p>A {_esc(part)} ({dims}; {rec['elements']} elements, {rec['dofs']} "
            f"degrees of freedom; {'; '.join(loads)}) whose every element takes "
            f"its {_esc(rec['tensor'])} tensor from the {_esc(rec['model'].upper())} surrogate at the element's "
            f"local parameters: {'; '.join(desc)}.{size} Nested Monte Carlo: {h['n_macro']} macro fields × "
            f"{h['n_functions']} posterior functions of the surrogate (shared by all elements) × {h['n_noise']} "
            f"draws of the SVE scatter (independent per element) = {h['n_solves']} finite-element solves in "
            f"{_num(h['seconds'])} s.</p>")
    rows = [(_esc(qlabel), _num(h["mean"]), _num(h["mean_se"]), _num(h["std"]),
             f"[{_num(h['quantiles']['0.025'])}, {_num(h['quantiles']['0.975'])}]",
             _pct(h["shares"]["macro_field"]), _pct(h["shares"]["microstructure"]), _pct(h["shares"]["surrogate"]))]
    rep.add("structure", _table(("quantity", "mean", "standard error", "std", "95 % interval", "macro field",
                                 "SVE scatter", "surrogate"), rows, 1)
            + "<p>Shares of the variance: the macro field's is the first-order Sobol index of the parameter field "
              "(Var<sub>i</sub> E[Q | field]); the SVE scatter's is its total index (E[Var(Q | field, function)]); "
              "the surrogate's is the spread between its posterior functions given the field. Unbiased nested "
              f"estimators; the sum is the variance ({_num(v['total'])}).</p>")
    if h.get("interpolation_error", 0) > 0.1:
        rep.warn("structure", f"The surrogate's functions were interpolated on a parameter grid with an error of "
                              f"{_num(h['interpolation_error'])} predictive standard deviations: raise "
                              "<code>[structure] grid_points</code>.")
    for p in params.values():
        if p.get("outside"):
            rep.warn("structure", f"{_pct(p['outside'])} of the element parameter values lie outside the swept "
                                  "range: the surrogate extrapolates there.")
    rep.figure("structure", F.structure_figure(arrays, rec, u),
               f"{h['label']}: distribution over all solves (dashed: central 95 % interval; red: mean) and its "
               "variance split" + (", and the direct FE² values against the hierarchical intervals on the same "
                                   "fields" if rec.get("concurrent") else ""))
    if np.asarray(arrays["points"]).shape[0] == 2:
        rep.figure("structure", F.structure_field_figure(arrays, rec, u),
                   f"The part: one realization of the parameter field, and the {h.get('local_field', 'local field')} "
                   "per element, mean and standard deviation over all solves")
    else:
        rep.add("structure", "<p>The part is 3D: its fields are in <code>structure.npz</code> (<code>points</code>, "
                             "<code>cells</code>, <code>local_mean</code>, <code>local_std</code>, <code>example</code>"
                             "); the report draws 2D parts only.</p>")
    c = rec.get("concurrent")
    if c:
        lo, hi = c["coverage_ci"]
        rep.add("structure",
                f"<p><b>Check against FE².</b> {c['n']} of the same fields solved directly, one FFT-homogenized SVE "
                f"per element ({c['elements']} elements: {c['sve_solves'] + c.get('cache_hits', 0)} SVEs"
                + (f", {c['cache_hits']} of them from the cache of an earlier run" if c.get("cache_hits") else "")
                + "): "
                f"{_pct(c['coverage'])} of the direct values lie inside the hierarchical route's central "
                f"{_pct(c['level'])} interval (95 % interval of that fraction [{_pct(lo)}, {_pct(hi)}]; "
                f"{c['draws_per_sample']} hierarchical draws per field; the fields share one surrogate error, so "
                f"this fraction scatters more than that interval says). Mean of the direct values "
                f"{_num(c['mean_direct'])}, of the hierarchical draws {_num(c['mean_hierarchical'])}"
                + (f"; their mean difference {_num(c['bias'])} is {_num(abs(c['bias_z']))} standard deviations of "
                   f"what the surrogate's posterior functions ({_num(c['function_sd'])} at a field) and the direct "
                   "values' own scatter allow, and the differences "
                   f"scatter about it by {_num(c['residual_sd'])} against an SVE scatter of {_num(c['sve_sd'])}"
                   if c.get("bias_z") is not None and np.isfinite(c["bias_z"]) else "") + ".</p>")
        if c.get("bias_z") is not None and abs(c["bias_z"]) > 2:
            rep.warn("structure", f"The direct FE² values differ from the surrogate route by {_num(c['bias'])} on "
                                  f"average, {_num(abs(c['bias_z']))} times the surrogate's stated uncertainty: its "
                                  "mean is off for this part.")
        if hi < c["level"]:
            rep.warn("structure", f"The hierarchical route covers the direct FE² values in only {_pct(c['coverage'])} "
                                  f"of the fields at a nominal {_pct(c['level'])}: its stated uncertainty is too "
                                  "narrow for this part.")
    rep.summary["structure"] = rec


def _no_surrogate(rep: _Report, section: str) -> None:
    """A section of the surrogate stages in a study that asks for no surrogate."""
    s = rep.sections[section]
    s.status, s.message = "not applicable", "the study asks for no surrogate ([surrogate] models = [])"
    rep.add(section, "<p>Not applicable: the study asks for no surrogate (<code>[surrogate] models = []</code>), "
                     "as an RVE or boundary-condition study may. List <code>\"gpr\"</code> or "
                     "<code>\"pce\"</code> there for surrogates of the properties over the swept parameters.</p>")


def _grouped(table: pd.DataFrame) -> Iterable[tuple[str, str, pd.DataFrame]]:
    for (model, target), t in table.groupby(["model", "target"], sort=False):
        yield str(model), str(target), t


def _cv_unit(rep: _Report) -> str:
    """What the grouped folds hold out, from ``surrogates.json`` (``"point"`` or ``"specimen"``)."""
    path = rep.file("surrogates.json")
    unit = _read_json(path).get("cv_groups") if path is not None else None
    return {"point": "whole parameter points (all replicates of a point together)",
            "specimen": "whole specimens"}.get(unit, "whole specimens")


#: Share of the variance of a target over the design above which the SVE scatter is called dominant.
SCATTER_WARNING = 0.2

#: Range of the ratio of a model's scatter to the replicates' within which its noise model is accepted.
SCATTER_RATIO_OK = (0.5, 2.0)


def scatter_misstated(ratio: Any, interval: Sequence[float] | None = None) -> bool:
    """Whether a noise model misstates the SVE scatter: its ratio to the replicates' pooled
    variance lies outside :data:`SCATTER_RATIO_OK`, and so does the ratio's whole 95 % interval
    (from the bootstrap over parameter points of the pooled variance) when there is one. A
    ratio of 0.5 from 16 points with two replicates each is within the sampling error of the
    replicates (one noisy point can carry half their pooled variance); the same ratio from many
    replicates is not."""
    if not _finite(ratio):
        return False
    low, high = SCATTER_RATIO_OK
    if interval is None or len(interval) != 2 or not all(_finite(v) for v in interval):
        return not low <= ratio <= high
    return interval[1] < low or interval[0] > high



def _transform_note(target: str, rec: Mapping[str, Any], scatter: Mapping[str, Any], dim: int | None = None) -> str:
    """One paragraph: which bounds constrain the predictions of a target, and how they were chosen."""
    label = _esc(F.target_label(target, dim=dim))
    checked = rec.get("checked") or []
    kinds = {"hashin_shtrikman": "Hashin–Shtrikman", "voigt_reuss": "Voigt–Reuss", "phases": "phase extremes"}
    tried = "; ".join(
        f"{kinds.get(c['kind'], _esc(c['kind']))}: "
        + (f"{c['outside']} of {c['n']} training samples outside" if "outside" in c
           else f"skipped ({_esc(c['skipped'])})")
        for c in checked)
    if rec.get("mode") == "spd":
        text = (f"<b>{label}</b>: an entry of the whole {_esc(rec.get('tensor', ''))} tensor, predicted by one "
                "model of its log-Cholesky features: every predicted and propagated tensor is positive definite "
                "by construction (the law of an entry is known by 400 draws per point).")
    elif rec.get("description"):
        how = ("the models regress ln y, and their predictive law is truncated to the bounds (a truncated "
               "lognormal)" if rec.get("scale", "log") == "log" else
               "the models regress y, and their predictive law is truncated to the bounds")
        text = (f"<b>{label}</b>: every prediction, interval and propagated sample lies inside the "
                f"{_esc(rec['description'])} (by construction: {how}).")
        if rec.get("fraction_window"):
            text += (f" The window ± {_num(rec['fraction_window'])} is the largest deviation of a measured phase "
                     "fraction from its nominal value in this sweep.")
    elif rec.get("transform") == "log":
        text = (f"<b>{label}</b>: no rigorous bounds were used ({_esc(rec.get('reason', rec.get('mode', '')))}); "
                "the models regress its logarithm, so predictions are positive.")
    else:
        text = (f"<b>{label}</b>: no bounds and no transform ({_esc(rec.get('reason', rec.get('mode', '')))}).")
    if tried:
        text += f" Bounds checked, tightest first: {tried}."
    return f"<p>{text}</p>"


def _variance_header(prop: Mapping[str, Any], u: Units) -> str:
    """``total variance [(unit)²]`` when every target has one unit, else ``[unit²]``."""
    found = {u.of(t) for t in prop}
    if len(found) == 1:
        unit = found.pop()
        if unit == "–":
            return "total variance [–]"
        if unit:
            return f"total variance [({unit})²]" if (" " in unit or "/" in unit) else f"total variance [{unit}²]"
    return "total variance [unit²]"


#: Fewest converged samples of a point for a confidence interval of its mean in the report: the
#: intervals of 2 replicates are too wide to read (a Cox interval of 2 values can span 3 decades).
MIN_CI_SAMPLES = 3


def _scatter_warning(target: str, scatter: Mapping[str, Any], dim: int | None = None) -> str:
    share = scatter.get("scatter_share")
    if not _finite(share) or share < SCATTER_WARNING:
        return ""
    if share >= 1.0:
        name = _esc(F.target_label(target, dim=dim))
        return (f'<p class="not-run"><b>{name} does not vary measurably over the design.</b> The replicates of '
                f"a point vary as much as the whole sweep (pooled over {scatter.get('points')} points, "
                f"{scatter.get('scatter_dof')} degrees of freedom): at this SVE size "
                "its mean response cannot be told from the scatter, and no surrogate can predict more than its "
                "mean (an off-diagonal entry of a statistically isotropic medium has mean 0).</p>")
    return (f'<p class="not-run"><b>The SVE scatter dominates {_esc(F.target_label(target, dim=dim))}.</b> '
            "The variance of "
            f"the replicates of a point (pooled over {scatter.get('points')} points, {scatter.get('scatter_dof')} "
            f"degrees of freedom) is {_pct(share)} of its variance over the design, so no surrogate of the mean "
            f"response can reach R² above {_num(scatter.get('r2_ceiling'))}: these SVEs are far below a "
            "representative volume element, and their apparent properties answer a question about SVEs of this "
            "size. Use larger SVEs, or sweep <code>size</code> for the RVE section to say how large they must "
            "be.</p>")


def _surrogates(rep: _Report) -> None:
    path = rep.file("cv_predictions.csv")
    info_path = rep.file("surrogates.json")
    if path is None or info_path is None:
        rep.not_run("surrogates", "cv_predictions.csv" if path is None else "surrogates.json")
        return
    pred = _read_csv(path)
    info = _read_json(info_path)
    transforms = info.get("transforms") or {}
    scatters = info.get("scatter") or {}
    u = rep.units
    for target in info.get("targets", []):
        warning = _scatter_warning(target, scatters.get(target, {}), rep.dim)
        rep.add("surrogates", _transform_note(target, transforms.get(target, {}), scatters.get(target, {}), rep.dim)
                + warning)
        if warning:
            share = scatters.get(target, {}).get("scatter_share")
            rep.warn("surrogates", f"<b>Too-small SVEs for {_esc(rep.label(target))}</b>: the scatter of the "
                     f"replicates of a point is {_pct(min(share, 1.0))} of its variance over the design, so no "
                     f"surrogate can reach R² above {_num(scatters.get(target, {}).get('r2_ceiling'))} "
                     '(<a href="#surrogates">surrogates</a>).')
    test = pred[pred["split"] == "test"] if "split" in pred else pred
    metrics: dict[str, dict[str, Any]] = {}
    rows = []
    misstated: list[str] = []
    figures: list[tuple[Figure, str]] = []
    for key, m in (info.get("models") or {}).items():
        target, model = key.split("__")
        cv = m.get("cv") or {}
        sc = scatters.get(target, {})
        metrics.setdefault(model, {})[target] = {**cv, "folds": m.get("folds"), "calibration": m.get("calibration"),
                                                 "rmse_over_scatter": m.get("rmse_over_scatter"),
                                                 "rmse_over_scatter_interval": m.get("rmse_over_scatter_interval"),
                                                 "scatter_std": sc.get("scatter_std"),
                                                 "scatter_std_interval": sc.get("scatter_std_interval"),
                                                 "scatter_points": sc.get("points"),
                                                 "r2_ceiling": sc.get("r2_ceiling")}
        rows.append((model, _with_unit(rep.label(target), u.of(target)), cv.get("n"), m.get("folds"),
                     cv.get("rmse"), _with_ci(sc.get("scatter_std"), sc.get("scatter_std_interval")),
                     _with_ci(m.get("rmse_over_scatter"), m.get("rmse_over_scatter_interval")),
                     cv.get("r2"), sc.get("r2_ceiling"), cv.get("nlpd"), cv.get("crps"),
                     cv.get("coverage_0.95"), m.get("calibration"),
                     _with_ci(m.get("scatter_ratio"), m.get("scatter_ratio_interval"))))
        ratio = m.get("scatter_ratio")
        if scatter_misstated(ratio, m.get("scatter_ratio_interval")):
            ci = m.get("scatter_ratio_interval")
            misstated.append(f"{_esc(model)} / {_esc(rep.label(target))}: {_num(ratio)} times"
                             + (f", 95 % interval {_num(ci[0])}–{_num(ci[1])}" if ci else ""))
        metrics[model][target]["scatter_ratio"] = ratio
        metrics[model][target]["scatter_ratio_interval"] = m.get("scatter_ratio_interval")
        t = test[(test["model"] == model) & (test["target"] == target)]
        if len(t):
            figures.append((F.parity_figure(t, model, target, units=u),
                            f"Parity of the out-of-fold predictions of {model} for {rep.label(target)} (95 % "
                            "intervals of the predictive law: asymmetric where it is bounded)"))
            figures.append((F.calibration_figure(t, model, target),
                            f"Calibration of {model} for {rep.label(target)}: observed against nominal coverage "
                            "of the central intervals, with the pointwise 95 % binomial band (the check in the table "
                            "is family-wise, at the levels 50–99 %)"))
    unit = _esc(_cv_unit(rep))
    rep.add("surrogates", "<h3>Grouped cross-validation</h3><p>Out-of-fold predictions of grouped K-fold "
            f"cross-validation ({unit} held out), every metric pooled over all out-of-fold predictions (computed "
            "once: the validation section and <code>summary.json</code> show the same values), on the physical "
            "scale of the target. <em>SVE scatter</em> is the standard deviation of the replicates of a point "
            "(pooled): the noise floor of the RMSE of any model of the mean response. <em>R² ceiling</em> is the "
            "highest R² such a model can reach, 1 − scatter variance / variance over the design. The brackets "
            "are 95 % intervals of the scatter's sampling error (a bootstrap over the parameter points): with "
            "few points of few replicates, one noisy point can carry most of the pooled scatter.</p>"
            + _table(("model", "target [unit]", "samples", "folds", "RMSE", "SVE scatter", "RMSE / scatter", "R²",
                      "R² ceiling", "NLPD", "CRPS", "95 % coverage", "calibration check",
                      "model scatter / replicates"), rows, 2,
                     groups=[("", 4), ("accuracy (in the unit of the target)", 5),
                             ("probabilistic", 4), ("noise model", 1)])
            + f"<p>RMSE / scatter near 1: the surrogate predicts to within the microstructural scatter (it cannot "
            "do better; a value a little below 1 is the sampling error of the scatter itself); well above 1: it "
            "misses part of the mean response. <em>Model scatter / replicates</em>: the variance that the model's "
            "noise model attributes to the SVE scatter at the training points, over the pooled variance of the "
            "replicates (1 when the noise model is right), with its 95 % interval from the sampling error of the "
            "replicates (a bootstrap over the parameter points); a noise model is said to misstate the scatter "
            f"when the whole interval lies outside {_num(SCATTER_RATIO_OK[0])}–{_num(SCATTER_RATIO_OK[1])}. "
            "Calibration check: the coverage of "
            f"the central 50, 80, 90, 95 and 99 % intervals against its exact binomial band, and a Kolmogorov–"
            f"Smirnov test of the PIT values, at a family-wise level of {_CALIBRATION_ALPHA:g} (Bonferroni). "
            "<em>Calibrated</em> says the intervals are honest, not that the model is accurate: read it with the "
            "RMSE against the scatter.</p>")
    if misstated:
        rep.add("surrogates", '<p class="not-run"><b>A noise model misstates the SVE scatter</b> ('
                + "; ".join(misstated) + " the variance of the replicates): the share of the propagated variance "
                "that it attributes to the microstructure is off by as much; compare the models, and read the "
                "scatter share of the data in the table above.</p>")
        rep.warn("surrogates", "<b>A noise model misstates the SVE scatter</b> (" + "; ".join(misstated)
                 + ' the variance of the replicates): its share of the propagated variance is off by as much '
                 '(<a href="#surrogates">surrogates</a>).')
    mrows = [(key.split("__")[1], _with_unit(rep.label(key.split("__")[0]), u.of(key.split("__")[0])),
              m.get("n_train"), m.get("degree"),
              (m.get("train") or {}).get("rmse"), (m.get("cv") or {}).get("rmse"), m.get("seconds"))
             for key, m in (info.get("models") or {}).items()]
    rep.add("surrogates", "<h3>Fitted models</h3><p>Inputs: " + _esc(", ".join(map(str, info.get("features", []))))
            + ". The training RMSE (in-fold predictions, pooled) against the cross-validated one shows the "
              "over-fit.</p>"
            + _table(("model", "target [unit]", "training samples", "PCE degree", "training RMSE", "CV RMSE",
                      "seconds (CV and final fit)"), mrows, 2))
    _cokriging(rep, info)
    rep.add("surrogates", "<h3>Out-of-fold predictions and calibration</h3>")
    for fig, caption in figures:
        rep.figure("surrogates", fig, caption)
    rep.summary["surrogates"] = metrics
    rep.summary["scatter"] = scatters


def _cokriging(rep: _Report, info: Mapping[str, Any]) -> None:
    """The multi-fidelity models: the learned rho and the discrepancy's share of the variance."""
    found = {k: m["cokriging"] for k, m in (info.get("models") or {}).items() if "cokriging" in m}
    if not found:
        return
    rows = [(rep.label(k.split("__")[0]), c["rho"], f"{_num(c['rho_interval'][0])} – {_num(c['rho_interval'][1])}",
             c["discrepancy_share"], c.get("rho_estimation_share"), c["n_low"],
             "log" if c.get("regressed") == "log" else "linear")
            for k, c in found.items()]
    rep.add("surrogates", "<h3>Multi-fidelity co-kriging</h3><p><em>cokriging</em> models the high fidelity (this "
            "study's samples) as ρ times a GP of the low fidelity ([fidelity.low], other SVEs on a coarser grid) "
            "plus a discrepancy GP (Kennedy and O'Hagan). ρ is estimated by maximum likelihood and kept only where "
            "a likelihood-ratio test rejects ρ = 0 at 5 % (ρ = 0: the low fidelity says nothing, and the model is "
            "the high-fidelity GP). The discrepancy share is its part of the epistemic variance at the training "
            "points (1: all the uncertainty is in the correction; near 0: the low fidelity carries it); the ρ share is "
            "the part that comes from estimating ρ from few high-fidelity points. Its grouped "
            "cross-validation above holds out high-fidelity points only; the low fidelity stays in every fold.</p>"
            + _table(("target", "ρ", "95 % interval of ρ", "discrepancy share [–]", "ρ share [–]",
                      "low-fidelity samples", "scale regressed"), rows, 1))
    rep.summary["cokriging"] = found


#: Family-wise level of the report's calibration check (a calibrated model fails it 1 time in 100).
_CALIBRATION_ALPHA = 0.01


def _propagation(rep: _Report) -> None:
    path = rep.file("propagation.json")
    if path is None:
        rep.not_run("propagation", "propagation.json")
        return
    prop = _read_json(path)
    rep.summary["propagation"] = prop
    if not prop:
        rep.add("propagation", "<p>Nothing to propagate: the only swept parameter is the SVE size, a numerical "
                "choice rather than an uncertain input.</p>")
        return
    u = rep.units
    first = next(iter(next(iter(prop.values())).values()))
    spec = first.get("input_distribution") or {}
    source = first.get("input_source") or {}
    if spec:
        rep.add("propagation", "<h3>What was propagated</h3><p>The parameters were drawn from this distribution "
                f"({_num(first.get('n_inputs'))} scrambled Sobol points × {_num(first.get('n_functions'))} "
                "surrogate functions); every propagated value is the apparent property of a new SVE at the drawn "
                "parameters, so it carries the SVE scatter and the surrogate's uncertainty as well.</p>"
                + _table(("input", "distribution", "from"),
                         [(F.axis_label(k, units=u), _dist_text(v), source.get(k, "")) for k, v in spec.items()], 3))
    held = sorted({r.get("size") for models in prop.values() for r in models.values() if r.get("size") is not None})
    if held:
        rep.add("propagation", f"<p>The SVE size is held at {_esc(_num(held[-1]))} voxels (the largest swept): "
                "the distribution is propagated over the material parameters only.</p>")
    brows = []
    for target, models in prop.items():
        for model, r in models.items():
            out = r.get("samples_outside_bounds")
            brows.append((rep.label(target), model, r.get("bounds") or "none",
                          "–" if out is None else f"{out} of {_num(r.get('n_samples'))}"))
    rep.add("propagation", "<h3>Physical admissibility</h3>" + _table(
        ("target", "model", "bounds of every propagated sample", "samples outside"), brows, 3))
    spath = rep.file("propagation_samples.npz")
    if spath is not None:
        with np.load(spath, allow_pickle=False) as z:
            samples = {k: z[k] for k in z.files}
        for target, models in prop.items():
            found = {m: samples[f"{target}__{m}"] for m in models if f"{target}__{m}" in samples}
            if found:
                means = {m: _scalar(models[m].get("mean")) for m in found}
                rep.figure("propagation", F.propagation_figure(found, target, means=means, units=u),
                           f"Propagated distribution of {rep.label(target)}, per surrogate: histogram and density "
                           "(kernel estimate on the log scale, over the range of the samples), and each model's mean")
    rows, vrows = [], []
    shown_sources = [src for src in _SOURCES if src[0] != "unsplit" or any(
        _finite(_scalar((r.get("variance") or {}).get("unsplit"))) and _scalar(r["variance"]["unsplit"]) > 0
        for models in prop.values() for r in models.values())]
    for target, models in prop.items():
        for model, r in models.items():
            var = r.get("variance", {}) or {}
            q = {float(k): _scalar(v) for k, v in (r.get("quantiles") or {}).items()}
            rows.append((_with_unit(rep.label(target), u.of(target)), model,
                         _ci(_scalar(r.get("mean")), *map(_scalar, r.get("mean_ci") or (None, None))),
                         _ci(_scalar(r.get("std")), *map(_scalar, r.get("std_ci") or (None, None))),
                         q.get(0.025), q.get(0.5), q.get(0.975)))
            total = _scalar(var.get("total"))
            vrows.append((_with_unit(rep.label(target), u.of(target)), model, total,
                          *(_pct(_scalar(var.get(k)) / total) if _finite(total) and total > 0 and
                            _finite(_scalar(var.get(k))) else "–" for k, _ in shown_sources)))
    rep.add("propagation", "<h3>Moments and quantiles</h3><p>On the physical scale of each target. The interval "
            "of the mean and of the standard deviation is their spread over the surrogate's posterior (GPR) or "
            "bootstrap (PCE) functions, widened by the Monte Carlo error.</p>" + _table(
                ("target [unit]", "model", "mean [95 % CI]", "std [95 % CI]", "2.5 %", "50 % (median)",
                 "97.5 %"), rows, 2, groups=[("", 2), ("moments", 2), ("quantiles of the distribution", 3)]))
    rep.add("propagation", "<h3>Where the variance comes from</h3><p>The law of total variance splits the output "
            "variance into the parameters' share (the variance of the mean response E[Y | θ]), the SVE scatter "
            "(microstructural, irreducible at this SVE size) and the surrogate's own uncertainty (what more "
            "samples would remove); the shares add up to 100 %. The SVE scatter is the one each model's noise "
            "model predicts: the surrogate section compares it with the replicates.</p>" + _table(
                ("target [unit]", "model", _variance_header(prop, u), *(label for _, label in shown_sources)), vrows,
                2, groups=[("", 3), ("share of the variance", len(shown_sources))]))
    for target, models in prop.items():
        alea = [_scalar(r["variance"].get("aleatoric")) / _scalar(r["variance"].get("total"))
                for r in models.values() if _finite(_scalar((r.get("variance") or {}).get("total")))
                and _scalar(r["variance"]["total"]) > 0]
        if alea and max(alea) >= 0.3:
            rep.add("propagation", f'<p class="not-run">The SVE scatter makes up {_pct(max(alea))} of the '
                    f"propagated variance of {_esc(rep.label(target))}: the spread of this distribution is "
                    "largely the scatter of SVEs of this size, not of the material at larger scales. See the RVE "
                    "section, or use larger SVEs.</p>")
            rep.warn("propagation", f"<b>The SVE scatter makes up {_pct(max(alea))} of the propagated variance of "
                     f"{_esc(rep.label(target))}</b>: its distribution describes SVEs of this size more than "
                     'the material (<a href="#propagation">propagation</a>).')

    spath = rep.file("sobol.json")
    if spath is None:
        rep.add("propagation", "<h3>Sobol indices</h3>" + _not_run("sobol.json"))
        return
    sob = _read_json(spath)
    rep.summary["sobol"] = sob
    srows = []
    for target, models in sob.items():
        try:
            rep.figure("propagation", F.sobol_figure(models, target),
                       f"Sobol indices of {rep.label(target)} as shares of its whole propagated variance, and "
                       "the shares of every source (the parameters' share split into first-order effects and "
                       "interactions)")
        except InputError as exc:  # e.g. results of an older run whose models name their inputs differently
            rep.add("propagation", f'<p class="error">Sobol figure of {_esc(target)} not drawn: {_esc(exc)}</p>')
    u = rep.units
    names = list(dict.fromkeys(n for models in sob.values() for ind in models.values() for n in ind["names"]))
    extra = [("interactions", "interactions of the parameters"), *_SOURCES[1:]]
    unsplit = any(_finite(_scalar((ind.get("shares") or {}).get("unsplit"))) and
                  _scalar(ind["shares"]["unsplit"]) > 0 for models in sob.values() for ind in models.values())
    extra = [e for e in extra if e[0] != "unsplit" or unsplit]
    for target, models in sob.items():
        for model, ind in models.items():
            first, total = (np.asarray(ind[k], dtype=float).reshape(-1) for k in ("first", "total"))
            fci = [np.asarray(c, dtype=float).reshape(-1) for c in ind.get("first_ci") or ()]
            tci = [np.asarray(c, dtype=float).reshape(-1) for c in ind.get("total_ci") or ()]
            row: list[Any] = [rep.label(target), model]
            for name in names:
                if name not in ind["names"]:
                    row += ["–", "–"]
                    continue
                i = list(ind["names"]).index(name)
                row += [_ci(first[i], *(c[i] for c in fci)) if len(fci) == 2 else _num(first[i]),
                        _ci(total[i], *(c[i] for c in tci)) if len(tci) == 2 else _num(total[i])]
            shares = ind.get("shares") or {}
            for key, _ in extra:
                if key == "interactions":
                    row.append(_scalar(shares.get("input", 0.0)) - float(np.sum(first)) if shares else "–")
                else:
                    row.append(_scalar(shares.get(key)) if shares else "–")
            srows.append(row)
    labels = [F.axis_label(n, units=u).split(" [")[0] for n in names]
    rep.add("propagation", "<h3>Sobol indices</h3><p>Every index is a share of the <em>whole</em> propagated "
            "variance of the target (not only of the mean response): the first-order index of a parameter is the "
            "variance its variation alone explains, the total index adds its interactions; the SVE scatter and the "
            "surrogate's uncertainty are their own shares, so that a row adds up to 1 (first-order indices + "
            "interactions + scatter + surrogate). Saltelli/Jansen estimates of the mean response, with 95 % "
            "intervals over the surrogate's posterior or bootstrap functions and a bootstrap of the rows; interval "
            "ends outside [0, 1] are sampling error of the estimator.</p>"
            + _table(("target", "model", *(c for _ in names for c in ("first order [CI]", "total [CI]")),
                      *("share" for _ in extra)), srows, 2,
                     groups=[("", 2), *((lab, 2) for lab in labels), *((lab, 1) for _, lab in extra)]))


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in table.to_dict(orient="records")]


_METRIC_NAMES = {"rmse": "RMSE", "nlpd": "NLPD", "crps": "CRPS", "coverage_0.95": "95 % coverage"}


def _leakage_text(leak: pd.DataFrame, dim: int | None = None) -> str:
    """What the leakage table shows, per model and target and per score (RMSE, CRPS, NLPD, all
    lower-is-better): naive CV optimistic (the interval of grouped − naive above 0), naive CV
    worse (below 0), or no difference measurable; the RMSE verdict is given in numbers."""
    parts = []
    for model, target, t in _grouped(leak):
        what = f"{_esc(model)} / {_esc(F.target_label(target, dim=dim))}"
        better, worse, same = [], [], []
        for r in t.itertuples(index=False):
            if r.metric not in ("rmse", "crps", "nlpd"):
                continue
            lo, hi = float(r.optimism_low), float(r.optimism_high)
            name = _METRIC_NAMES.get(r.metric, r.metric)
            (better if lo > 0 else worse if hi < 0 else same).append(name)
        rm = t[t["metric"] == "rmse"]
        lead = ""
        if len(rm):
            r = next(rm.itertuples(index=False))
            lead = (f"RMSE grouped − naive = {_num(r.optimism)} (95 % CI {_num(r.optimism_low)} to "
                    f"{_num(r.optimism_high)}). ")
        verdict = []
        if better:
            verdict.append(f"naive CV is optimistic in {', '.join(better)}, as leakage predicts")
        if worse:
            verdict.append(f"naive CV came out <em>worse</em> in {', '.join(worse)}: not leakage (which can only "
                           "flatter it) but the luck of the random folds, which differ between the two splits")
        if same:
            verdict.append(f"no difference is measurable with these samples in {', '.join(same)}")
        parts.append(f"{what}: {lead}{'; '.join(verdict)}.")
    return "<ul>" + "".join(f"<li>{p}</li>" for p in parts) + "</ul>" if parts else ""


def _validation(rep: _Report) -> None:
    files = ("leakage.csv", "ood.json")
    if all(rep.file(f) is None for f in files):
        rep.not_run("validation", "leakage.csv")
        return
    rep.add("validation", '<h3>Grouped cross-validation</h3><p>See <a href="#surrogates">the surrogate section</a>: '
            "its metrics are the grouped cross-validation of this study, computed once.</p>")
    spath = rep.file("surrogates.json")
    tensors = (_read_json(spath).get("tensors") or {}) if spath is not None else {}
    if tensors:
        rep.add("validation", f"<p>The whole-tensor targets ({_esc(', '.join(tensors))}) are validated by that "
                "grouped cross-validation, entry by entry; the leakage and out-of-distribution evaluations below "
                "cover the scalar targets.</p>")
    rep.add("validation", "<h3>Leakage demonstration</h3>")
    path = rep.file("leakage.csv")
    if path is None:
        rep.add("validation", _not_run("leakage.csv"))
    else:
        leak = _read_csv(path)
        unit = _cv_unit(rep)
        rep.add("validation", f"<p>Naive K-fold (samples assigned to folds one by one) against grouped K-fold "
                f"({_esc(unit)} held out; the same numbers as the surrogate section), on the same samples. The "
                "optimism is grouped − naive, with a 95 % bootstrap interval over the groups (paired: both predict "
                "every sample once). A naive split puts related samples (replicates of one parameter point, windows "
                "of one specimen) on both sides and can score the model on what it has seen.</p>"
                + _leakage_text(leak, rep.dim))
        if {"n_groups", "n"} <= set(leak.columns) and (leak["n_groups"] >= leak["n"]).all():
            rep.add("validation", '<p class="not-run">Each sample is its own group here, so naive and grouped '
                    "folds differ only in their random assignment: the comparison measures nothing. Sweep more "
                    "points with replicates, or windows of specimens, to see the leakage.</p>")
        # the table: RMSE, CRPS and coverage (NLPD is in the figures), the samples in the text
        metrics = [m for m in ("rmse", "crps", "coverage_0.95") if m in set(leak["metric"])]
        lrows, counts = [], set()
        for model, target, t in _grouped(leak):
            by = {r.metric: r for r in t.itertuples(index=False)}
            first = next(iter(by.values()))
            row: list[Any] = [model, _with_unit(rep.label(target), rep.units.of(target))]
            counts.add(f"{first.n} samples in {first.n_groups} groups")
            for m in metrics:
                r = by.get(m)
                row += ([r.naive, r.grouped, _ci(r.optimism, r.optimism_low, r.optimism_high)] if r is not None
                        else ["–"] * 3)
            lrows.append(row)
        rep.add("validation", _table(
            ("model", "target [unit]", *(c for _ in metrics for c in ("naive", "grouped", "optimism [95 % CI]"))),
            lrows, 2, groups=[("", 2), *((_METRIC_NAMES.get(m, m), 3) for m in metrics)])
            + f"<p>Each comparison rests on {_esc('; '.join(sorted(counts)))}. The NLPD is in the figures.</p>")
        if leak.empty:
            rep.add("validation", "<p>No scalar target: nothing to compare.</p>")
        for model, target, _ in _grouped(leak):
            rep.figure("validation", F.leakage_figure(leak, model, target, units=rep.units),
                       f"Naive against grouped cross-validation, {model} for {rep.label(target)}")
        rep.summary["leakage"] = _records(leak)
    rep.add("validation", "<h3>Out-of-distribution evaluation</h3>")
    ipath = rep.file("ood.json")
    if ipath is None:
        rep.add("validation", _not_run("ood.json"))
        return
    info = _read_json(ipath)
    tpath = rep.file("ood.csv")
    table = _read_csv(tpath) if tpath is not None else pd.DataFrame()
    rep.summary["ood"] = {"runs": info, "table": _records(table) if len(table) else []}
    any_info = next(iter(info.values()), {})
    if any_info:
        rep.add("validation", "<p>The surrogates are trained inside a box that holds the central part of each "
                f"parameter's design distribution (box: {_esc(_box_text(any_info))}), and tested on shells at "
                "increasing distance outside it, measured in box widths in probability units (the CDF of the "
                "design distribution, so that a log-uniform parameter counts by its probability mass, not its "
                "value). The in-box samples are split into grouped folds: each is predicted "
                "once by a model trained on the others (the reference row), and the same models predict every "
                f"shell sample. Every row rests on at least {any_info.get('min_samples')} samples (adjacent shells "
                "are merged to reach it), and every value has a 95 % bootstrap interval over the groups. Out of the "
                "box the SVE scatter itself can grow (near percolation, at high contrast), and with it the RMSE of "
                "any model: the RMSE over the scatter of the same set (the pooled standard deviation of its "
                "replicates) separates the surrogate's own error from that noise floor (1: as good as any model "
                "of the mean response can be).</p>")
    for key, run in info.items():
        target, model = key.split("__")
        head = f"{_esc(model)} / {_esc(rep.label(target))}"
        if not run.get("ok"):
            rep.add("validation", f'<p class="not-run">{head}: not evaluated. '
                    + " ".join(_esc(d) for d in run.get("declined", [])) + "</p>")
            continue
        t = table[(table["model"] == model) & (table["target"] == target)] if len(table) else table
        noise_floor = "rmse_over_scatter" in t.columns and t["rmse_over_scatter"].notna().any()
        rows = []
        for r in t.to_dict(orient="records"):
            if r["split"] == "reference":
                where = "inside the box (reference)"
            elif _finite(r["distance_high"]):
                where = f"({_num(r['distance_low'])}, {_num(r['distance_high'])}]"
            else:
                where = f"beyond {_num(r['distance_low'])}"
            cells = [where, _num(r.get("distance_mean")), f"{r['n_samples']} ({r['n_groups']} groups)"]
            for m in ("rmse", "nlpd", "coverage_0.95"):
                if m in r:
                    cells.append(_ci(r[m], r.get(f"{m}_low"), r.get(f"{m}_high")))
                    if m != "coverage_0.95":
                        cells.append("1" if r["split"] == "reference" else
                                     _ci(r.get(f"{m}_ratio"), r.get(f"{m}_ratio_low"), r.get(f"{m}_ratio_high")))
                    if m == "rmse" and noise_floor:
                        cells += [r.get("scatter_std"), r.get("rmse_over_scatter")]
            rows.append(cells)
        floor_cols = (_with_unit("SVE scatter of the set", rep.units.of(target)), "RMSE / SVE scatter")
        rep.add("validation", f"<p><b>{head}</b></p>" + _table(
            ("distance to the box", "mean distance", "samples",
             _with_unit("RMSE", rep.units.of(target)) + " [95 % CI]", "RMSE ratio [CI]",
             *(floor_cols if noise_floor else ()), "NLPD [CI]", "density ratio exp(ΔNLPD) [CI]",
             "95 % coverage [CI]"), rows, 1))
        if run.get("declined"):
            rep.add("validation", "<ul>" + "".join(f"<li>{_esc(d)}</li>" for d in run["declined"]) + "</ul>")
        if len(t) > 1:
            rep.figure("validation", F.ood_figure(t, model, target, units=rep.units),
                       f"Out-of-distribution behaviour of {model} for {rep.label(target)} against the "
                       "normalized distance to the training box, with 95 % bootstrap intervals and sample counts")


def _box_text(run: Mapping[str, Any]) -> str:
    feats = run.get("features") or []
    box = run.get("box") or []
    return ", ".join(f"{F.axis_label(f).split(' [')[0]} in [{_num(lo)}, {_num(hi)}]" for f, (lo, hi) in zip(feats, box))


def _failures(rep: _Report, props: xr.Dataset) -> None:
    conv = _converged(props)
    cols = F.property_columns(props)
    finite = np.all([np.isfinite(np.asarray(v, dtype=float)) for v in cols.values()], axis=0) if cols else conv
    failed = np.flatnonzero(~conv | ~finite)
    out = []
    for k in failed:
        params = {p: v for p, v in sample_parameters(props, int(k)).items() if p not in IDENTIFIERS}
        res = props["residual"].values[k] if "residual" in props else np.array([np.nan])
        its = props["iterations"].values[k] if "iterations" in props else np.array([-1])
        out.append({"sample": props["sample"].values[k].item(),
                    "seed": props["seed"].values[k].item() if "seed" in props.coords else None,
                    "parameters": params,
                    "status": (str(props["status"].values[k]) if "status" in props else "") if not conv[k]
                    else "converged, but a property is not finite (NaN or inf)",
                    "max_residual": float(np.nanmax(res)) if np.isfinite(res).any() else None,
                    "max_iterations": int(np.max(its))})
    rep.summary["failures"] = _jsonable(out)
    if not out:
        rep.add("failures", "<p>None: every sample converged, with finite properties.</p>")
        return
    rows = [(f["sample"], f["seed"], json.dumps(_jsonable(f["parameters"]), sort_keys=True), f["status"],
             f["max_residual"], f["max_iterations"]) for f in out]
    rep.add("failures", f"<p>{len(out)} failed samples (excluded from the statistics): not converged, or a "
            "non-finite property.</p>"
            + _table(("sample", "seed", "parameters", "status", "max residual", "max iterations"), rows, 4))


# --------------------------------------------------------------------------- the summary (built last)


# --------------------------------------------------------------------------- output


def _section_body(rep: _Report, sec: _Section) -> str:
    """The markup of a section: consecutive figures share one responsive grid."""
    out: list[str] = []
    figs: list[str] = []
    for kind, markup in sec.parts:
        if kind == "figure":
            figs.append(markup)
            continue
        if figs:
            out.append('<div class="figs">' + "".join(figs) + "</div>")
            figs = []
        out.append(rep.deferred[markup]() if kind == "deferred" else markup)
    if figs:
        out.append('<div class="figs">' + "".join(figs) + "</div>")
    return "".join(out)


def _html(rep: _Report, title: str, print_version: bool = False) -> str:
    nav = "".join(f'<li><a href="#{sid}">{_esc(s.title)}</a>{" (not run)" if s.status == "not run" else ""}</li>'
                  for sid, s in rep.sections.items())
    body = "".join(f'<section id="{sid}"><h2>{_esc(s.title)}</h2>{_section_body(rep, s)}</section>'
                   for sid, s in rep.sections.items())
    if print_version:  # every collapsed table shown
        body = body.replace("<details>", "<details open>")
    study = rep.summary.get("study", {})
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    from .. import __version__

    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>stochhom report: {_esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>stochhom report: {_esc(title)}</h1>"
            f'<p class="meta">study hash {_esc((study.get("hash") or "unknown")[:16])} · generated {_esc(stamp)} by '
            f"stochhom {_esc(__version__)} · units: {_esc(_units_text(rep.units))} · machine-readable numbers in "
            f"<code>summary.json</code></p>"
            f"<nav><ol>{nav}</ol></nav></header><main>{body}</main></body></html>\n")


def _pdf(rep: _Report, path: Path, title: str) -> None:
    """``report.pdf``: the report with every collapsed table open, printed by headless Chromium."""
    import tempfile

    from .browser import print_pdf

    with tempfile.TemporaryDirectory(prefix="stochhom-pdf-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(_html(rep, title, print_version=True), encoding="utf-8")
        print_pdf(page, path)


def _run(rep: _Report, section: str, build: Callable[[], None]) -> None:
    """Build one section; an unreadable input becomes an error note in that section, not a crash."""
    try:
        build()
    except (StochhomError, KeyError, TypeError, ValueError) as exc:
        s = rep.sections[section]
        s.status, s.message = "error", f"{type(exc).__name__}: {exc}"
        rep.add(section, f'<p class="error">This section could not be rendered: {_esc(s.message)}</p>')


def write_report(results_dir: str | Path, out: str | Path | None = None, pdf: bool = False) -> Path:
    """Write the HTML report and ``summary.json`` of a results directory.

    Parameters
    ----------
    results_dir : str or Path
        A directory written by ``stochhom run`` (the inputs are listed in the module
        docstring; ``study.json`` and ``samples.zarr`` are required).
    out : str or Path, optional
        Where to write: a directory (``report.html``, ``summary.json`` and
        ``report.pdf`` inside it) or a path ending in ``.html`` (the others next to it).
        Default: ``results_dir``.
    pdf : bool
        Also write ``report.pdf``: the whole report, tables included, printed by headless
        Chromium (Debian package ``chromium``, or the browser named by the environment
        variable ``STOCHHOM_CHROMIUM``).

    Returns
    -------
    Path
        The path of ``report.html``.

    Raises
    ------
    InputError
        ``results_dir`` is not a directory, or lacks ``study.json`` or ``samples.zarr``
        (the message names the stage to run first); ``pdf=True`` without a browser (checked
        before anything is written).
    """
    t0 = time.perf_counter()
    root = Path(results_dir)
    if not root.is_dir():
        raise InputError(f"results directory {str(root)!r} does not exist; run `{RUN_COMMAND}` first")
    if not (root / "study.json").is_file():
        raise InputError(f"{str(root)!r} has no study.json; run `{RUN_COMMAND}` (stage \"report\") first")
    if pdf:
        from .browser import find_chromium

        if find_chromium() is None:
            raise InputError("--pdf needs headless Chromium to print the report: install Debian's `chromium` package "
                             "(apt-get install chromium), or set STOCHHOM_CHROMIUM to a Chromium or Chrome "
                             "executable; or print report.html from any browser")
    target = root if out is None else Path(out)
    html_path = target if target.suffix.lower() == ".html" else target / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)

    meta = _read_json(root / "study.json")
    if not isinstance(meta, Mapping):
        raise InputError(f"{root / 'study.json'}: expected a JSON object, got {type(meta).__name__}")
    props, pending = _load_samples(root)
    title = str(meta.get("name") or root.name)
    study = meta.get("study", {}) or {}
    try:
        units = units_from_dict(meta.get("units"), "study.json units",
                                voxel_size=float(study.get("voxel_size", props.attrs.get("voxel_size", 1.0)) or 1.0))
    except InputError:
        units = Units()
    dim = props.attrs.get("dim")
    rep = _Report(root, {sid: _Section(sid, t) for sid, t in SECTIONS}, units=units,
                  dim=int(dim) if dim in (2, 3) else None)
    conv = _converged(props)
    points = np.unique(props["point"].values).size if "point" in props.coords else None
    rep.summary["counts"] = {"samples": int(conv.size + pending), "computed": int(conv.size),
                             "converged": int(conv.sum()), "failed": int((~conv).sum()), "pending": pending,
                             "points": points}
    elapsed = {"report": None}

    def report_seconds() -> float:
        return elapsed["report"] if elapsed["report"] is not None else time.perf_counter() - t0

    with mpl.rc_context(F.STYLE), F.label_dimension(rep.dim):
        _run(rep, "provenance", lambda: _provenance(rep, meta, props, pending, report_seconds))
        _run(rep, "microstructure", lambda: _microstructure(rep))
        _run(rep, "properties", lambda: _properties(rep, meta, props))
        _run(rep, "properties", lambda: _adaptive_design(rep))
        swept = study.get("parameters") or {}
        _run(rep, "rve", lambda: _rve(rep, size_swept="size" in swept or not swept, props=props))
        if (meta.get("pipeline") or {}).get("models") == []:
            for sid in ("surrogates", "propagation", "validation", "structure"):
                _no_surrogate(rep, sid)
        else:
            _run(rep, "surrogates", lambda: _surrogates(rep))
            _run(rep, "propagation", lambda: _propagation(rep))
            _run(rep, "structure", lambda: _structure(rep))
            _run(rep, "validation", lambda: _validation(rep))
        _run(rep, "failures", lambda: _failures(rep, props))
        _run(rep, "summary", lambda: _summary(rep, meta, props))
    rep.summary["sections"] = {sid: {"status": s.status, **({"message": s.message} if s.message else {})}
                               for sid, s in rep.sections.items()}
    pdf_path = html_path.with_name("report.pdf")
    rep.summary["files"] = {"html": html_path.name, "pdf": pdf_path.name if pdf else None}
    from .. import __version__

    elapsed["report"] = time.perf_counter() - t0
    rep.summary.setdefault("timings", {})["report"] = elapsed["report"]
    summary = {"schema_version": SCHEMA_VERSION, "stochhom_version": __version__, "units": units.as_dict(),
               **_interval_layout(rep.summary)}
    html_path.write_text(_html(rep, title), encoding="utf-8")
    (html_path.with_name("summary.json")).write_text(
        json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if pdf:
        _pdf(rep, pdf_path, title)
    elif pdf_path.is_file():  # a PDF of an earlier rendering would no longer match these numbers
        pdf_path.unlink()
    return html_path
