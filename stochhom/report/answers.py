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
    _details,
    _dist_text,
    _esc,
    _finite,
    _num,
    _parameter_text,
    _pct,
    _plain_text,
    _scalar,
    _table,
    _with_ci,
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
        best = calibrated[0]
        better = [k for k, _ in ranked[:[k for k, _ in ranked].index(best)]]  # lower CRPS, not calibrated
        if better:
            return best, (f"calibrated; {', '.join(better)} has a lower CRPS but fails the calibration check")
        return best, "calibrated, lowest CRPS" if len(ranked) > 1 else "calibrated"
    return ranked[0][0], "lowest CRPS; no model passed the calibration check"


#: The report's terms, explained once at the end of the summary.
GLOSSARY: tuple[tuple[str, str], ...] = (
    ("SVE (statistical volume element)", "One random microstructure sample of finite size. Its apparent property "
     "scatters from sample to sample; the scatter shrinks as the SVE grows."),
    ("RVE (representative volume element)", "The SVE size (with n realizations) at which the mean property is "
     "known to a stated relative error ε, 95 % of the time (Kanit et al. 2003)."),
    ("SVE scatter", "The standard deviation of the replicates of one parameter point (pooled over points): the "
     "noise floor of any model of the mean response."),
    ("grouped cross-validation", "Folds that hold out whole groups (every replicate of a point, or every window "
     "of a specimen), so that no model is scored on a near copy of its training data."),
    ("CRPS", "Continuous ranked probability score, in the unit of the target, lower is better: the error of the "
     "whole predictive distribution (the absolute error for a point prediction)."),
    ("NLPD", "Negative log predictive density of the observed values, lower is better; exp(ΔNLPD) above 1 means "
     "the observations became that many times less likely under the model."),
    ("coverage, calibration check", "The share of observations inside the central 95 % (50–99 %) predictive "
     "intervals, against the exact binomial band; with a Kolmogorov–Smirnov test of the PIT values (the predictive "
     "CDF at each observation), family-wise level 0.01."),
    ("box widths, in probability units", "Distances outside the training box measured on the CDF of each "
     "parameter's design distribution, per box width, so that a log-uniform parameter counts by probability mass."),
    ("Sobol indices", "Shares of the output variance explained by one parameter alone (first order) or with its "
     "interactions (total)."),
    ("Hashin–Shtrikman, Voigt–Reuss bounds", "Rigorous bounds of an effective property from the phase properties "
     "and fractions (HS: statistically isotropic microstructures); every prediction of the surrogates lies inside "
     "them by construction."),
)

#: RMSE / SVE scatter above which the summary warns that the surrogate to trust misses part of
#: the mean response (the scatter's own sampling error keeps a good model near 1).
RMSE_OVER_SCATTER_WARNING = 1.5

#: Width (upper over lower end of the 95 % interval) above which the RMSE / scatter ratio of the
#: answer is said to rest on a poorly known scatter.
LOOSE_FLOOR = 2.0



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
    """How far outside the training box the RMSE stays within :data:`OOD_TRUST_RATIO` of the
    in-box RMSE, judged by the 95 % interval of each shell's ratio, nearest shell first.

    A shell whose interval lies below the ratio extends the trusted distance; one whose
    interval lies above it ends it; one whose interval straddles it ends it too, undecided
    (the shell holds too few groups to tell). Returns the distance (0 inside the box only,
    ``inf`` for every shell, ``None`` undecided at the first shell) and a text.
    """
    reach: Any = 0.0
    for r in rows:
        lo, hi = r.get("rmse_ratio_low"), r.get("rmse_ratio_high")
        where = _shell_text(r)
        if _finite(hi) and hi <= OOD_TRUST_RATIO:
            reach = r.get("distance_high") if _finite(r.get("distance_high")) else math.inf
            continue
        if _finite(lo) and lo > OOD_TRUST_RATIO:
            tail = f"; beyond: {_num(lo)}× or more at {where}"
        else:
            tail = f"; undecided at {where} ({_num(r.get('rmse_ratio'))}× [{_num(lo)}, {_num(hi)}])"
            if reach == 0.0:
                return None, tail[2:]
        return reach, ("inside the box only" if reach == 0.0 else f"{_num(reach)} box widths") + tail
    return reach, ("inside the box only" if reach == 0.0 else
                   "every shell evaluated" if reach == math.inf else f"{_num(reach)} box widths")


#: Resamples of the points for the intervals of the design samples' mean and standard deviation.
N_BOOT = 2000


def _design_check(props: xr.Dataset, target: str, prop: Mapping[str, Any]) -> dict[str, Any] | None:
    """The distribution of ``target`` over the computed SVEs of the design, to set against
    the propagated one; ``None`` when the design's samples are not draws of the propagated
    input distribution (a grid, or inputs given in ``[propagation.inputs]``).

    The mean and standard deviation get 95 % intervals from a bootstrap over the parameter
    points (the replicates of a point are not independent draws of the inputs). A
    Sobol or Latin-hypercube design is stratified, so these intervals are conservative.
    """
    from ..statistics.summary import scalar_columns

    sources = (prop.get("input_source") or {}).values()
    if not sources or not all("design's distribution" in str(v) for v in sources):
        return None
    try:
        y = np.asarray(next(iter(scalar_columns(props, [target]).values())), dtype=float)
    except Exception:  # a target the samples do not hold as a column (e.g. a tensor entry under another name)
        return None
    ok = np.isfinite(y)
    if "converged" in props:
        ok &= props["converged"].values.astype(bool)
    if prop.get("size") is not None and "size" in props.coords:
        ok &= props["size"].values == float(prop["size"])
    points = props["point"].values if "point" in props.coords else np.arange(y.size)
    y, points = y[ok], points[ok]
    codes = np.unique(points, return_inverse=True)[1] if y.size else np.zeros(0, dtype=int)
    n_points = int(codes.max()) + 1 if y.size else 0
    if y.size < 8 or n_points < 3:  # too few to compare with: the bootstrap over points needs several
        return None
    members = [np.flatnonzero(codes == k) for k in range(n_points)]
    rng = np.random.default_rng(0)
    boot = np.empty((N_BOOT, 2))
    for b in range(N_BOOT):
        idx = np.concatenate([members[k] for k in rng.integers(0, n_points, n_points)])
        boot[b] = y[idx].mean(), y[idx].std(ddof=1)
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=0)
    return {"n": int(y.size), "points": n_points,
            "mean": {"value": float(y.mean()), "low": float(lo[0]), "high": float(hi[0]), "level": 0.95},
            "std": {"value": float(y.std(ddof=1)), "low": float(lo[1]), "high": float(hi[1]), "level": 0.95},
            "quantiles": {"0.025": float(np.quantile(y, 0.025)), "0.5": float(np.median(y)),
                          "0.975": float(np.quantile(y, 0.975))}}


def _discretization(study: Mapping[str, Any]) -> str:
    """The discretization the samples were solved with (``"auto"`` resolved as the solver does)."""
    from ..materials import Void
    from ..spectral import choose_discretization

    solver = study.get("solver") or {}
    porous = any(t.get("law") == "Void" for t in (study.get("phases") or {}).values() if isinstance(t, Mapping))
    return choose_discretization(solver.get("discretization", "auto"), solver.get("scheme", "cg"),
                                 [Void()] if porous else [], solver.get("dtype", "float64"), solver.get("backend"))


def _method_text(study: Mapping[str, Any], shape: Sequence[int], props: xr.Dataset, u: Units) -> str:
    """One sentence on how the numbers were computed: solver, discretization, tolerance, and
    the SVE against the microstructure's length scale."""
    solver = study.get("solver") or {}
    tol = solver.get("tol", 1e-6 if solver.get("dtype", "float64") == "float64" else 1e-5)
    boundary = solver.get("boundary", "periodic")
    if boundary != "periodic":
        name = {"kubc": "kinematic uniform (KUBC)", "subc": "static uniform (SUBC)",
                "mixed": "orthogonal uniform mixed", "periodic_fe": "periodic"}.get(boundary, boundary)
        text = (f"Voxel finite elements (Q1, full integration) under {name} boundary conditions, CG preconditioned "
                f"by algebraic multigrid, relative residual below {_num(solver.get('tol', 1e-8))} for every load "
                "case.")
    else:
        text = (f"FFT spectral solver ({solver.get('scheme', 'cg')} scheme, {_discretization(study)} "
                f"discretization, {solver.get('dtype', 'float64')}), periodic boundary conditions, relative "
                f"residual below {_num(tol)} for every load case.")
    if solver.get("dtype") == "mixed":
        text += " Iterations in float32, refined to that residual in float64."
    if solver.get("composite_voxels"):
        text += (f" Voxels cut by an interface between solid phases carry the laminate of their two phases "
                 f"(composite voxels, from a rendering {int(solver['composite_voxels'])} times finer).")
    fixed = study.get("fixed") or {}
    voxel = float(study.get("voxel_size", 1.0) or 1.0)
    for name in ("correlation_length", "radius"):
        if _finite(fixed.get(name)) and shape:
            edge = float(min(shape)) * voxel
            what = "correlation lengths" if name == "correlation_length" else "inclusion radii"
            text += (f" An SVE is {_num(edge)} {u.length_unit(1)} wide: {_num(edge / float(fixed[name]))} {what} "
                     f"of {_num(float(fixed[name]))} {u.length_unit(1)}, each spanning "
                     f"{_num(float(fixed[name]) / voxel)} voxels.")
            break
    return text


def _answer_sentence(rep: _Report, props: Sequence[Mapping[str, Any]], trust: Sequence[Mapping[str, Any]]) -> str:
    """The answer in one sentence, from the first property and its surrogate."""
    if not props:
        return ""
    a = props[0]
    m, q, unit = a["mean"], a["quantiles"], a["unit"]
    unit = "" if unit in ("", "–") else f" {unit}"
    text = (f"Over these inputs, the {rep.label(a['target'])} averages {_num(m['value'])}{unit}"
            + (f" (95 % CI {_num(m['low'])} to {_num(m['high'])})" if _finite(m.get("low")) else "")
            + f", and 95 % of SVEs lie between {_num(q['0.025'])} and {_num(q['0.975'])}{unit}")
    check = a.get("design_samples")
    if check is not None:
        text += (f"; the {check['n']} computed SVEs {'agree' if check['agree'] else 'disagree'} "
                 f"(mean {_num(check['mean']['value'])}{unit})")
    text += "."
    t = next((t for t in trust if t["target"] == a["target"]), None)
    if t is not None and _finite(t.get("rmse_over_scatter")):
        text += (f" The error of the {t['model']} surrogate is {_num(t['rmse_over_scatter'])}× the SVE scatter "
                 f"(its noise floor; {t['calibration']})")
        ci = t.get("rmse_over_scatter_interval")
        if ci and _finite(ci[0]) and ci[1] > LOOSE_FLOOR * ci[0]:  # the floor itself is poorly known
            text += (f", a ratio known only to within {_num(ci[0])}–{_num(ci[1])} (95 %): the scatter rests on "
                     f"the replicates of {t.get('scatter_points') or 'few'} points")
        reach = t.get("ood_trusted_distance")
        if reach == 0.0:
            text += ", inside its training range only."
        elif reach is None:
            text += "; how far outside its training range it holds is undecided with these samples."
        else:
            text += f" and up to {'every shell evaluated' if reach == math.inf else f'{_num(reach)} box widths'} "
            text += "outside its training range."
    return text


#: Readable names of the boundary conditions.
_CONDITION_NAMES = {"subc": "static (SUBC)", "mixed": "mixed", "periodic": "periodic", "kubc": "kinematic (KUBC)"}


def _hierarchy_text(rep: _Report, hier: Mapping[str, Any], dim: int | None) -> tuple[str, list[dict[str, Any]]]:
    """Sentences on the boundary-condition hierarchy (``hierarchy.json``): the spread between
    the static and kinematic means at the smallest and largest SVE, where they agree within
    epsilon, and the least biased condition at the smallest SVE."""
    u = rep.units
    conds = list(hier["conditions"])
    lo, hi = conds[0], conds[-1]
    eps = hier.get("epsilon")
    parts, out = [], []
    for t, r in hier["targets"].items():
        v = np.asarray(r["volumes"], dtype=float)
        m_lo, m_hi = (np.asarray(r[c]["mean"], dtype=float) for c in (lo, hi))
        ref = np.asarray(r[r["reference"]]["mean"], dtype=float)
        gap = (m_hi - m_lo) / ref
        edge = (lambda x: x ** (1.0 / dim)) if dim in (2, 3) else (lambda x: x)
        bias0 = {c: float(np.asarray(r[c]["bias"], dtype=float)[0]) for c in conds}
        best = min(bias0, key=lambda c: abs(bias0[c]))
        bv = r.get("bracket_volume")
        where = (f"they agree within ε = {_pct(eps)} from an SVE edge of {_num(edge(bv))} {u.length_unit(1)}"
                 if bv else f"they do not agree within ε = {_pct(eps)} up to the largest SVE computed")
        others = ", ".join(f"{_pct(bias0[c])} {_CONDITION_NAMES.get(c, c)}" for c in conds if c != best)
        parts.append(f"For the {rep.label(t)}, the {_CONDITION_NAMES.get(hi, hi)} mean exceeds the "
                     f"{_CONDITION_NAMES.get(lo, lo)} one by {_pct(gap[0])} at an SVE edge of {_num(edge(v[0]))} and "
                     f"by {_pct(gap[-1])} at {_num(edge(v[-1]))} {u.length_unit(1)}; {where}. The least biased "
                     f"condition on the smallest SVEs is {_CONDITION_NAMES.get(best, best)} ({_pct(bias0[best])} "
                     f"from the effective estimate, against {others}).")
        out.append({"target": t, "gap_smallest": float(gap[0]), "gap_largest": float(gap[-1]),
                    "edge_smallest": float(edge(v[0])), "edge_largest": float(edge(v[-1])),
                    "bracket_edge": float(edge(bv)) if bv else None, "epsilon": eps, "least_biased": best,
                    "bias_smallest": bias0, "samples": hier.get("samples")})
    intro = (f"The same {hier.get('samples')} SVEs solved under {', '.join(_CONDITION_NAMES.get(c, c) for c in conds)} "
             "boundary conditions (same voxel elements) bracket the effective property from both sides. ")
    return _esc(intro + " ".join(parts)), out


def _structure_text(rep: _Report, rec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Sentences on the structure stage: the quantity's mean, spread and interval, the
    dominant source of its variance, and the FE² check."""
    from .figures import quantity_unit

    h = rec["hierarchical"]
    unit = quantity_unit(h["quantity"]["kind"], rep.units)
    sfx = f" {unit}" if unit else ""
    names = {"macro_field": "the spatial variation of the parameters", "microstructure": "the SVE scatter",
             "surrogate": "the surrogate's error"}
    shares = h["shares"]
    top = max(shares, key=shares.get)
    part = "part" if rec["part"] == "file" else rec["part"].replace("_", " ")
    text = (f"On the {part} ({rec['elements']} elements), the {h['label']} has mean "
            f"{_num(h['mean'])}{sfx} (standard error {_num(h['mean_se'])}) and standard deviation "
            f"{_num(h['std'])}{sfx} "
            f"(coefficient of variation {_pct(h['std'] / abs(h['mean']) if h['mean'] else float('nan'))}); 95 % of "
            f"the solves lie in [{_num(h['quantiles']['0.025'])}, {_num(h['quantiles']['0.975'])}]{sfx}. "
            f"{names[top][0].upper() + names[top][1:]} dominates its variance ({_pct(shares[top])}; "
            + ", ".join(f"{names[k]} {_pct(v)}" for k, v in shares.items() if k != top)
            + f"), from {h['n_macro']} fields × {h['n_functions']} surrogate functions × {h['n_noise']} SVE draws.")
    c = rec.get("concurrent")
    if c:
        text += (f" Direct FE² on {c['n']} of the same fields (one SVE per element) falls inside the surrogate "
                 f"route's {_pct(c['level'])} interval in {_pct(c['coverage'])} of them.")
    out = {"quantity": h["label"], "unit": unit, "mean": h["mean"], "std": h["std"], "mean_se": h["mean_se"],
           "interval_95": [h["quantiles"]["0.025"], h["quantiles"]["0.975"]], "shares": dict(shares),
           "dominant": top, "solves": h["n_solves"],
           "fe2_coverage": None if not c else {"coverage": c["coverage"], "level": c["level"], "n": c["n"]}}
    return _esc(text), out


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
    rep.add("summary", f'<p><b>Method.</b> {_esc(_method_text(study, shape, props, u))}</p>')

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
        std, sci = _scalar(r.get("std")), [_scalar(x) for x in (r.get("std_ci") or (None, None))]
        label = _with_unit(rep.label(target), u.of(target))
        prow.append((label, f"surrogate {model}, propagated", _ci(mean, *mci), _ci(std, *sci), q.get(0.025),
                     q.get(0.5), q.get(0.975)))
        entry = {"target": target, "unit": u.of(target), "model": model, "source": "propagation",
                 "mean": {"value": mean, "low": mci[0], "high": mci[1], "level": 0.95},
                 "std": std, "quantiles": {"0.025": q.get(0.025), "0.5": q.get(0.5), "0.975": q.get(0.975)}}
        check = _design_check(props, target, r)
        if check is not None:
            cm, cs, cq = check["mean"], check["std"], check["quantiles"]
            prow.append(("", f"computed SVEs ({check['n']} at {check['points']} points)",
                         _ci(cm["value"], cm["low"], cm["high"]), _ci(cs["value"], cs["low"], cs["high"]),
                         cq["0.025"], cq["0.5"], cq["0.975"]))
            agree = (_finite(mean) and cm["low"] <= mean <= cm["high"]
                     and _finite(std) and cs["low"] <= std <= cs["high"])
            entry["design_samples"] = {**check, "agree": bool(agree)}
            if not agree:
                rep.warn("summary", f"<b>The propagated distribution of {_esc(rep.label(target))} disagrees "
                         f"with the computed SVEs</b>: surrogate {_esc(model)} gives mean {_num(mean)} and std "
                         f"{_num(std)}, the {check['n']} SVEs of the design (drawn from the same input "
                         f"distribution) {_num(cm['value'])} [{_num(cm['low'])}, {_num(cm['high'])}] and "
                         f"{_num(cs['value'])} [{_num(cs['low'])}, {_num(cs['high'])}]: the surrogate misses part "
                         "of the response; trust the computed SVEs' numbers.")
        answer_props.append(entry)
    if prow:
        first = next(iter(next(iter(prop.values())).values()))
        spec = first.get("input_distribution") or {}
        inputs = "; ".join(f"{F.axis_label(k, units=u).split(' [')[0]}: {_dist_text(v)}" for k, v in spec.items())
        rep.add("summary", "<h3>The effective properties</h3><p>The distribution of each property over the input "
                f"distribution ({_esc(inputs) or 'the design'}), for a new SVE of the study's size: the surrogate "
                "to trust (below) propagated with its SVE scatter and its own uncertainty. Where the design itself "
                "draws its points from that distribution, the computed SVEs give the same distribution without a "
                "surrogate, as a check (intervals: a bootstrap over the points). Intervals are 95 % confidence "
                "intervals; the 2.5 % and 97.5 % quantiles bound 95 % of the SVEs.</p>"
                + _table(("property [unit]", "from", "mean [95 % CI]", "std [95 % CI]", "2.5 %", "median",
                          "97.5 %"), prow, 2, groups=[("", 4), ("quantiles", 3)])
                + '<p>Details: <a href="#propagation">propagation</a>.</p>')
    else:
        overall = rep.summary.get("samples_overall") or {}
        orow = [(_with_unit(rep.label(v), o["unit"]), o["n"], _ci(o["mean"], o["mean_low"], o["mean_high"]),
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
            why = ("the study asks for no surrogate" if (meta.get("pipeline") or {}).get("models") == [] else
                   "run the surrogate and propagation stages for the distribution over the inputs")
            rep.add("summary", f"<h3>The effective properties</h3><p>{where} (no propagated distribution: "
                    f"{why}).</p>"
                    + _table(("property [unit]", "samples", "mean [95 % CI]", "std", "2.5 %", "median", "97.5 %"),
                             orow, 1))
    answers["properties"] = answer_props

    # the RVE
    rve = rep.summary.get("rve") or {}
    if rve:
        rrow, answer_rve = [], []
        for t, f in rve.items():
            edge, eci = f.get("rve_edge"), f.get("rve_edge_ci") or (None, None)
            rrow.append((rep.label(t), _ci(edge, *eci), f.get("epsilon"), f.get("realizations"),
                         f.get("integral_range")))
            answer_rve.append({"target": t, "edge": {"value": edge, "low": eci[0], "high": eci[1], "level": 0.95},
                               "unit": u.length_unit(1), "epsilon": f.get("epsilon"),
                               "realizations": f.get("realizations")})
        vol = u.length_unit(props.attrs.get("dim") or 3)
        rep.add("summary", "<h3>How large a volume element must be</h3>" + _table(
            ("property", _with_unit("RVE edge [95 % CI]", u.length_unit(1)), "relative error ε", "realizations n",
             _with_unit("integral range", vol)), rrow, 1) + '<p>Details: <a href="#rve">RVE size</a>.</p>')
        answers["rve"] = answer_rve
    hier = rep.summary.get("hierarchy") or {}
    if hier.get("targets"):
        text, answer_h = _hierarchy_text(rep, hier, props.attrs.get("dim"))
        rep.add("summary", f"<h3>How much the boundary conditions matter</h3><p>{text}</p>"
                           '<p>Details: <a href="#rve">RVE size</a>.</p>')
        answers["boundary_conditions"] = answer_h
    st = rep.summary.get("structure") or {}
    if st.get("hierarchical"):
        text, answer_s = _structure_text(rep, st)
        rep.add("summary", f"<h3>The structure's response</h3><p>{text}</p>"
                           '<p>Details: <a href="#structure">structural response</a>.</p>')
        answers["structure"] = answer_s

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
            if _finite(ood.get("rmse_over_scatter")):
                ood_text += f"; {_num(ood['rmse_over_scatter'])}× that shell's SVE scatter"
            reach, reach_text = _trusted_distance(shells)
        else:
            ood_text, reach, reach_text = "not evaluated", None, "not evaluated"
        r2c = m.get("r2_ceiling") if m.get("r2_ceiling") is not None else scat.get(target, {}).get("r2_ceiling")
        ros = m.get("rmse_over_scatter")
        if _finite(ros) and ros > RMSE_OVER_SCATTER_WARNING:
            rep.warn("summary", f"<b>The surrogate to trust for {_esc(rep.label(target))} misses part of the "
                     f"mean response</b>: its grouped-CV RMSE is {_num(ros)} times the SVE scatter (R² "
                     f"{_num(m.get('r2'))} against a ceiling of {_num(r2c)}); more design points, or another "
                     'model, would do better (<a href="#surrogates">surrogates</a>).')
        trow.append((rep.label(target), f"{model} ({why})",
                     _with_ci(m.get("rmse_over_scatter"), m.get("rmse_over_scatter_interval")),
                     f"{_num(m.get('r2'))} of {_num(r2c)}", m.get("coverage_0.95"), m.get("calibration"), reach_text,
                     ood_text))
        answer_trust.append({"target": target, "model": model, "why": why,
                             "rmse_over_scatter": m.get("rmse_over_scatter"),
                             "rmse_over_scatter_interval": m.get("rmse_over_scatter_interval"),
                             "scatter_points": m.get("scatter_points"), "r2": m.get("r2"), "r2_ceiling": r2c,
                             "coverage_0.95": m.get("coverage_0.95"), "calibration": m.get("calibration"),
                             "ood_trusted_distance": reach,
                             "ood_farthest": None if ood is None else {
                                 k: ood.get(k) for k in ("distance_low", "distance_high", "distance_mean", "n_samples",
                                                         "n_groups", "rmse_ratio", "rmse_ratio_low",
                                                         "rmse_ratio_high", "scatter_std", "rmse_over_scatter")}})
    if trow:
        rep.add("summary", "<h3>Which surrogate to trust, and how far</h3><p>Grouped cross-validation: RMSE / SVE "
                "scatter near 1 means the surrogate predicts to within the microstructural scatter, the noise floor "
                "no model of the mean response can beat (in brackets, its 95 % interval from the sampling error of "
                "the scatter itself); R² against its ceiling (what the scatter leaves); the "
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
            lrow.append((_with_unit(rep.label(r["target"]), u.of(r["target"])), r["model"], r.get("naive"),
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
        dominant, dominant_rec = "–", None
        ind = (sob.get(target) or {}).get(model)
        if ind:
            tot = np.asarray(ind["total"], dtype=float).reshape(-1)
            k = int(np.nanargmax(tot))
            dominant = f"{F.axis_label(ind['names'][k], units=u).split(' [')[0]} (total index {_num(tot[k])})"
            dominant_rec = {"name": ind["names"][k], "total_index": float(tot[k])}
        vrow.append((rep.label(target), model, *(_pct(shares[k]) for k, _ in _SOURCES[:3]), dominant))
        answer_var.append({"target": target, "model": model, "shares": shares, "dominant_parameter": dominant_rec})
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
        checked = "every sample converged"
        if answer_trust:
            checked += (", the SVE scatter leaves room for a surrogate, the surrogate to trust predicts to within "
                        "1.5× the SVE scatter, and every noise model agrees with the replicates within a factor of 2")
        rep.add("summary", f'<h3>Warnings</h3><p class="ok">None: {checked}.</p>')
    if notes:
        rep.add("summary", "<p>Not run: " + "; ".join(notes) + ".</p>")
    rep.add("summary", _details("Terms used in this report", "<dl>" + "".join(
        f"<dt><b>{_esc(term)}</b></dt><dd>{_esc(text)}</dd>" for term, text in GLOSSARY) + "</dl>"))
    answers["warnings"] = [_plain_text(t) for t in items]
    sentence = _answer_sentence(rep, answer_props, answer_trust)
    if not answer_trust and answers.get("boundary_conditions"):  # an RVE study: the hierarchy is the answer
        b = answers["boundary_conditions"][0]
        unit = u.length_unit(1)
        sentence += (f" Static and kinematic boundary conditions differ by {_pct(b['gap_smallest'])} on SVEs "
                     f"{_num(b['edge_smallest'])} {unit} wide and by {_pct(b['gap_largest'])} at "
                     f"{_num(b['edge_largest'])} {unit}; "
                     + (f"they agree within {_pct(b['epsilon'])} from {_num(b['bracket_edge'])} {unit} on."
                        if b.get("bracket_edge") else
                        f"a volume element on which they agree within {_pct(b['epsilon'])} is larger than "
                        "any computed."))
    if sentence:
        rep.sections["summary"].parts.insert(1, ("html", f'<p class="question"><b>Answer.</b> {_esc(sentence)}</p>'))
    answers["answer"] = sentence
    rep.summary["answers"] = answers
