"""The report's first section: the study's question and its answers, with their uncertainty.

Built last, from the numbers the other sections computed (``rep.summary``), so that every
quantity has one value everywhere:

* the question (``[study].question``, or one made from the study);
* the effective properties: the propagated distribution of the surrogate to trust (mean
  with its 95 % confidence interval, standard deviation, 2.5/50/97.5 % quantiles, in the
  declared units), or the distribution over the samples of the design;
* the RVE size, where the study sweeps it;
* the surrogate to trust (:func:`_recommend`: calibrated, lowest CRPS) and how far:
  RMSE against the SVE scatter, R² against its ceiling, coverage, calibration, and out
  of distribution the distance up to which its RMSE stays within :data:`OOD_TRUST_RATIO`
  of the in-box RMSE (:func:`_trusted_distance`);
* what a naive cross-validation would have claimed (the leakage demonstration);
* where the variance comes from, and the dominant parameter;
* every warning the sections raised, failed samples and sections that could not be built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..units import Units
from . import figures as F
from .markup import (
    _SOURCES,
    _card,
    _ci,
    _dist_text,
    _esc,
    _finite,
    _num,
    _parameter_text,
    _pct,
    _plain_text,
    _scalar,
    _table,
    _with_unit,
)

if TYPE_CHECKING:
    from .html import _Report

def _question(meta: Mapping[str, Any], props: xr.Dataset, units: Units) -> str:
    """The study's question: ``[study].question``, or one made from the study."""
    if meta.get("question"):
        return str(meta["question"])
    study = meta.get("study", {}) or {}
    from ..microstructure.ensemble import GENERATORS

    gname = str(study.get("generator", props.attrs.get("generator", "")))
    gen = GENERATORS.get(gname)
    what = re.sub(r"\s*\(.*\)\s*$", "", gen.summary) if gen is not None else gname
    dim = props.attrs.get("dim")
    physics = props.attrs.get("physics", "")
    prop = {"conductivity": "conductivity", "elasticity": "elastic stiffness"}.get(str(physics), "properties")
    params = study.get("parameters") or {}
    swept = [k for k in params if k != "size"]
    parts = [f"{F.axis_label(k, units=units).split(' [')[0]} ({_parameter_text(k, params[k], units)})" for k in swept]
    over = (" when " + " and ".join(parts) + " vary") if parts else ""
    text = f"How is the effective {prop} of {f'{dim}D ' if dim else ''}{what} microstructures distributed{over}"
    if "size" in params:
        text += ", how large must a volume element be"
    return text + ", and how far can a fast surrogate of it be trusted?"


def _recommend(models: Mapping[str, Mapping[str, Any]]) -> tuple[str | None, str]:
    """The model to trust for one target: the calibrated one with the lowest CRPS (a proper
    score of accuracy and calibration together), else the lowest CRPS with a caveat."""
    def score(item: tuple[str, Mapping[str, Any]]) -> float:
        m = item[1]
        v = m.get("crps") if _finite(m.get("crps")) else m.get("rmse")
        return float(v) if _finite(v) else math.inf

    ranked = sorted(models.items(), key=score)
    if not ranked:
        return None, ""
    calibrated = [k for k, m in ranked if m.get("calibration") == "calibrated"]
    if calibrated:
        why = "calibrated, lowest CRPS" if len(ranked) > 1 else "calibrated"
        return calibrated[0], why
    return ranked[0][0], "lowest CRPS; no model passed the calibration check"


#: An out-of-distribution shell is "trusted" while its RMSE is within this factor of the in-box RMSE.
OOD_TRUST_RATIO = 2.0


def _ood_rows(rep: _Report, model: str, target: str) -> list[Mapping[str, Any]]:
    return [r for r in (rep.summary.get("ood") or {}).get("table", [])
            if r.get("model") == model and r.get("target") == target and r.get("split") != "reference"]


def _shell_text(r: Mapping[str, Any]) -> str:
    if _finite(r.get("distance_high")):
        return f"({_num(r.get('distance_low'))}, {_num(r.get('distance_high'))}]"
    return f"beyond {_num(r.get('distance_low'))}"


def _trusted_distance(rows: Sequence[Mapping[str, Any]]) -> tuple[Any, str]:
    """The distance up to which every shell's RMSE stays within :data:`OOD_TRUST_RATIO` of the
    in-box RMSE (point estimates), and that as text."""
    reach: Any = 0.0
    for r in rows:
        if not (_finite(r.get("rmse_ratio")) and r["rmse_ratio"] <= OOD_TRUST_RATIO):
            break
        reach = r.get("distance_high") if _finite(r.get("distance_high")) else math.inf
    if reach == 0.0:
        return 0.0, "inside the box only"
    return reach, ("every shell evaluated" if reach == math.inf else f"{_num(reach)} box widths")


def _size_text(study: Mapping[str, Any], shape: Sequence[int], props: xr.Dataset) -> str:
    """The SVE size of a study: its shape, or the range of a swept ``size``."""
    if "size" in props.coords:
        sizes = np.unique(props["size"].values)
        if sizes.size > 1:
            return f"{_num(sizes.min())} to {_num(sizes.max())} voxels (swept)"
    return " × ".join(str(x) for x in shape) + " voxels" if shape else "–"


def _summary(rep: _Report, meta: Mapping[str, Any], props: xr.Dataset) -> None:
    u = rep.units
    question = _question(meta, props, u)
    answers: dict[str, Any] = {"question": question}
    rep.add("summary", f'<p class="question"><b>Question.</b> {_esc(question)}</p>')

    counts = rep.summary.get("counts", {})
    study = meta.get("study", {}) or {}
    shape = study.get("shape") or props.attrs.get("shape") or []
    failed = len(rep.summary.get("failures") or [])
    cards = [_card("SVEs computed", f"{counts.get('computed')} of {counts.get('samples')}"),
             _card("parameter points × replicates", f"{counts.get('points')} × {study.get('replicates', '–')}"),
             _card("SVE size", _size_text(study, shape, props)),
             _card("failed samples", str(failed))]
    rep.add("summary", '<div class="cards">' + "".join(cards) + "</div>")

    # the effective properties: propagated distribution (model to trust), else the samples of the design
    metrics = rep.summary.get("surrogates") or {}
    by_target: dict[str, dict[str, Any]] = {}
    for model, targets in metrics.items():
        for target, m in targets.items():
            by_target.setdefault(target, {})[model] = m
    chosen = {t: _recommend(ms) for t, ms in by_target.items()}
    answers["recommended"] = {t: {"model": m, "why": why} for t, (m, why) in chosen.items()}
    prop = rep.summary.get("propagation") or {}
    prow, answer_props = [], []
    for target, models in prop.items():
        model = chosen.get(target, (None, ""))[0]
        model = model if model in models else next(iter(models))
        r = models[model]
        q = {float(k): _scalar(v) for k, v in (r.get("quantiles") or {}).items()}
        mean, mci = _scalar(r.get("mean")), [_scalar(x) for x in (r.get("mean_ci") or (None, None))]
        std = _scalar(r.get("std"))
        prow.append((_with_unit(F.target_label(target), u.of(target)), _ci(mean, *mci), std, q.get(0.025),
                     q.get(0.5), q.get(0.975), model))
        answer_props.append({"target": target, "unit": u.of(target), "model": model, "source": "propagation",
                             "mean": {"value": mean, "low": mci[0], "high": mci[1], "level": 0.95},
                             "std": std, "quantiles": {"0.025": q.get(0.025), "0.5": q.get(0.5),
                                                       "0.975": q.get(0.975)}})
    if prow:
        first = next(iter(next(iter(prop.values())).values()))
        spec = first.get("input_distribution") or {}
        inputs = "; ".join(f"{F.axis_label(k, units=u).split(' [')[0]}: {_dist_text(v)}" for k, v in spec.items())
        rep.add("summary", "<h3>The effective properties</h3><p>The distribution of each property over the input "
                f"distribution ({_esc(inputs) or 'the design'}), for a new SVE of the study's size: the surrogate "
                "to trust (below) propagated with its SVE scatter and its own uncertainty. The interval of the mean "
                "is its 95 % confidence interval; the 2.5 % and 97.5 % quantiles bound 95 % of the SVEs.</p>"
                + _table(("property [unit]", "mean [95 % CI]", "std", "2.5 %", "median", "97.5 %", "surrogate"),
                         prow, 1, groups=[("", 3), ("quantiles", 3), ("", 1)])
                + '<p>Details: <a href="#propagation">propagation</a>.</p>')
    else:
        overall = rep.summary.get("samples_overall") or {}
        orow = [(_with_unit(F.target_label(v), o["unit"]), o["n"], _ci(o["mean"], o["mean_low"], o["mean_high"]),
                 o["std"], o["q025"], o["median"], o["q975"]) for v, o in overall.items()]
        for v, o in overall.items():
            answer_props.append({"target": v, "unit": o["unit"], "model": None, "source": "samples of the design",
                                 "n": o["n"], "mean": {"value": o["mean"], "low": o["mean_low"],
                                                                  "high": o["mean_high"], "level": 0.95},
                                 "std": o["std"], "quantiles": {"0.025": o["q025"], "0.5": o["median"],
                                                               "0.975": o["q975"]}})
        if orow:
            size = next(iter(overall.values())).get("size")
            where = (f"Over the converged samples of the largest SVE size ({_num(size)} voxels)" if size is not None
                     else "Over every converged sample of the design")
            rep.add("summary", f"<h3>The effective properties</h3><p>{where} (no propagated distribution: run the "
                    "surrogate and propagation stages for the distribution over the inputs).</p>"
                    + _table(("property [unit]", "samples", "mean [95 % CI]", "std", "2.5 %", "median", "97.5 %"),
                             orow, 1))
    answers["properties"] = answer_props

    # the RVE
    rve = rep.summary.get("rve") or {}
    if rve:
        rrow, answer_rve = [], []
        for t, f in rve.items():
            edge, eci = f.get("rve_edge"), f.get("rve_edge_ci") or (None, None)
            rrow.append((F.target_label(t), _ci(edge, *eci), f.get("epsilon"), f.get("realizations"),
                         f.get("integral_range")))
            answer_rve.append({"target": t, "edge": {"value": edge, "low": eci[0], "high": eci[1], "level": 0.95},
                               "unit": u.length_unit(1), "epsilon": f.get("epsilon"),
                               "realizations": f.get("realizations")})
        vol = u.length_unit(props.attrs.get("dim") or 3)
        rep.add("summary", "<h3>How large a volume element must be</h3>" + _table(
            ("property", _with_unit("RVE edge [95 % CI]", u.length_unit(1)), "relative error ε", "realizations n",
             _with_unit("integral range", vol)), rrow, 1) + '<p>Details: <a href="#rve">RVE size</a>.</p>')
        answers["rve"] = answer_rve

    # which surrogate to trust, and how far
    scat = rep.summary.get("scatter") or {}
    trow, answer_trust = [], []
    for target, (model, why) in chosen.items():
        if model is None:
            continue
        m = by_target[target][model]
        shells = _ood_rows(rep, model, target)
        ood = shells[-1] if shells else None
        if ood is not None:
            ood_text = (f"{_num(ood.get('rmse_ratio'))}× [{_num(ood.get('rmse_ratio_low'))}, "
                        f"{_num(ood.get('rmse_ratio_high'))}] {_shell_text(ood)}")
            reach, reach_text = _trusted_distance(shells)
        else:
            ood_text, reach, reach_text = "not evaluated", None, "not evaluated"
        r2c = m.get("r2_ceiling") if m.get("r2_ceiling") is not None else scat.get(target, {}).get("r2_ceiling")
        trow.append((F.target_label(target), f"{model} ({why})", m.get("rmse_over_scatter"),
                     f"{_num(m.get('r2'))} of {_num(r2c)}", m.get("coverage_0.95"), m.get("calibration"), reach_text,
                     ood_text))
        answer_trust.append({"target": target, "model": model, "why": why,
                             "rmse_over_scatter": m.get("rmse_over_scatter"), "r2": m.get("r2"), "r2_ceiling": r2c,
                             "coverage_0.95": m.get("coverage_0.95"), "calibration": m.get("calibration"),
                             "ood_trusted_distance": reach,
                             "ood_farthest": None if ood is None else {
                                 k: ood.get(k) for k in ("distance_low", "distance_high", "distance_mean", "n_samples",
                                                         "n_groups", "rmse_ratio", "rmse_ratio_low",
                                                         "rmse_ratio_high")}})
    if trow:
        rep.add("summary", "<h3>Which surrogate to trust, and how far</h3><p>Grouped cross-validation: RMSE / SVE "
                "scatter near 1 means the surrogate predicts to within the microstructural scatter, the noise floor "
                "no model of the mean response can beat; R² against its ceiling (what the scatter leaves); the "
                "coverage of the 95 % intervals and the calibration check say whether its uncertainty is honest. "
                f"Out of distribution (distances in box widths, in probability units): how far outside the training "
                f"box its RMSE stays within {OOD_TRUST_RATIO:g}× the RMSE inside it, and the RMSE ratio [95 % CI] on "
                "the farthest shell evaluated.</p>"
                + _table(("property", "surrogate to trust", "RMSE / SVE scatter", "R² (ceiling)", "95 % coverage",
                          "calibration", f"RMSE within {OOD_TRUST_RATIO:g}× up to", "farthest shell"), trow,
                         (0, 1, 5, 6),
                         groups=[("", 2), ("grouped cross-validation", 4), ("out of distribution", 2)])
                + '<p>Details: <a href="#surrogates">surrogate quality</a>, <a href="#validation">validation</a>.'
                  "</p>")
    answers["trust"] = answer_trust

    leak = [r for r in rep.summary.get("leakage") or [] if r.get("metric") == "rmse"
            and chosen.get(r.get("target"), (None, ""))[0] == r.get("model")]
    if leak:
        lrow, answer_leak = [], []
        for r in leak:
            lo, hi = r.get("optimism_low"), r.get("optimism_high")
            verdict = ("optimistic: leakage measured" if _finite(lo) and lo > 0 else
                       "no optimism measured" if _finite(hi) and hi < 0 else "within the sampling error")
            rel = r["optimism"] / r["grouped"] if _finite(r.get("grouped")) and r["grouped"] > 0 else None
            lrow.append((_with_unit(F.target_label(r["target"]), u.of(r["target"])), r["model"], r.get("naive"),
                         r.get("grouped"),
                         _ci(r.get("optimism"), lo, hi), _pct(rel), verdict))
            answer_leak.append({"target": r["target"], "model": r["model"], "naive_rmse": r.get("naive"),
                                "grouped_rmse": r.get("grouped"),
                                "optimism": {"value": r.get("optimism"), "low": lo, "high": hi, "level": 0.95},
                                "verdict": verdict})
        rep.add("summary", "<h3>What a naive cross-validation would have claimed</h3><p>The RMSE of naive K-fold "
                "(related samples on both sides of a split) against grouped K-fold on the same samples; the optimism "
                "is grouped − naive, with a 95 % paired bootstrap interval over the groups.</p>"
                + _table(("property [unit]", "surrogate", "RMSE, naive CV", "RMSE, grouped CV", "optimism [95 % CI]",
                          "optimism / grouped RMSE", "verdict"), lrow, (0, 1, -1))
                + '<p>Details: <a href="#validation">validation</a>.</p>')
        answers["leakage"] = answer_leak

    # where the variance comes from
    sob = rep.summary.get("sobol") or {}
    vrow, answer_var = [], []
    for target, models in prop.items():
        model = chosen.get(target, (None, ""))[0]
        model = model if model in models else next(iter(models))
        var = models[model].get("variance") or {}
        total = _scalar(var.get("total"))
        shares = {k: (_scalar(var.get(k)) / total if _finite(total) and total > 0 and _finite(_scalar(var.get(k)))
                      else None) for k, _ in _SOURCES}
        dominant = "–"
        ind = (sob.get(target) or {}).get(model)
        if ind:
            tot = np.asarray(ind["total"], dtype=float).reshape(-1)
            k = int(np.nanargmax(tot))
            dominant = f"{F.axis_label(ind['names'][k], units=u).split(' [')[0]} (total index {_num(tot[k])})"
        vrow.append((F.target_label(target), model, *(_pct(shares[k]) for k, _ in _SOURCES[:3]), dominant))
        answer_var.append({"target": target, "model": model, "shares": shares, "dominant_parameter": dominant})
    if vrow:
        rep.add("summary", "<h3>Where the uncertainty comes from</h3><p>Shares of the propagated variance (they add "
                "up to 100 %): the parameters (the mean response over the input distribution), the SVE scatter "
                "(irreducible at this SVE size) and the surrogate's own uncertainty (what more samples would remove); "
                "and the parameter with the largest total Sobol index.</p>"
                + _table(("property", "surrogate", "parameters", "SVE scatter", "surrogate", "dominant parameter"),
                         vrow, (0, 1, 5), groups=[("", 2), ("share of the variance", 3), ("", 1)]))
    answers["variance"] = answer_var

    # warnings
    items = [text for _, text in rep.warnings]
    conv_failed = int(counts.get("failed") or 0)
    if failed:
        items.insert(0, f"<b>{failed} failed sample(s)</b> (not converged, or a non-finite property) are excluded "
                     'from every statistic (<a href="#failures">failed samples</a>).')
    elif conv_failed:
        items.insert(0, f"<b>{conv_failed} solve(s) did not converge.</b>")
    if counts.get("pending"):
        items.insert(0, f"<b>{counts['pending']} samples are not computed yet</b>: resume the sweep.")
    for sec in rep.sections.values():
        if sec.status in ("error", "not available"):
            items.append(f"<b>Section {_esc(sec.title)}</b>: {_esc(sec.message)}")
    notes = [f"{_esc(sec.title)}: {_esc(sec.message)}" for sec in rep.sections.values() if sec.status == "not run"]
    if items:
        rep.add("summary", "<h3>Warnings</h3><ul class=\"warnings\">" + "".join(f"<li>{t}</li>" for t in items)
                + "</ul>")
    else:
        rep.add("summary", '<h3>Warnings</h3><p class="ok">None: every sample converged, the SVE scatter leaves '
                "room for a surrogate, and the noise models agree with the replicates.</p>")
    if notes:
        rep.add("summary", "<p>Not run: " + "; ".join(notes) + ".</p>")
    answers["warnings"] = [_plain_text(t) for t in items]
    rep.summary["answers"] = answers
