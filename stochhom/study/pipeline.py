r"""Configuration of the end-to-end pipeline (``stochhom run``): the optional study tables.

::

    [gallery]
    samples = 4                  # microstructures kept for the report's gallery

    [output]
    fields = [0, 17]             # samples of the sweep whose local fields are written to
                                 # <results>/fields/sample_<k>.<format>, for ParaView
    format = "vti"               # vti (default), vtu, vtk, xdmf or nc
    load = [1.0, 0.0, 0.0]       # macroscopic strain (gradient), Mandel notation
                                 # (default: the first unit load)

    [fidelity.low]               # a cheap, biased low fidelity for co-kriging (optional)
    shape = [32, 32]             # the same physical SVE on a coarser grid (the voxel size scales)
    points = 64                  # its own lhs/sobol design over the same distributions
    replicates = 1

    [rve]                        # only when the sweep varies the special parameter ``size``
    targets = ["conductivity_0_0"]
    epsilon = 0.01               # relative error for the RVE size (and the SUBC-KUBC bracket)
    realizations = 1
    boundary = ["subc", "periodic", "kubc"]   # optional: the boundary-condition hierarchy
                                 # (Kanit et al. 2003) of the same SVEs; "mixed" allowed too
    boundary_replicates = 20     # SVEs per size solved under each condition (default: all)

    [surrogate]
    targets = ["conductivity_eigenvalues_0"]   # default: bulk and shear moduli, or the
                                               # smallest and largest conductivity eigenvalue;
                                               # "conductivity" / "stiffness": the whole tensor,
                                               # positive definite by construction
    bounds = "auto"              # physical bounds of the predictions: "auto" (the tightest of
                                 # hashin_shtrikman, voigt_reuss, phases that every training
                                 # sample respects), one of those kinds, or "none"
    log_targets = true           # without bounds: regress log Z (positive predictions)
    models = ["gpr", "pce"]     # [] for none: the surrogate, propagation and validation
                                 # stages are skipped (an RVE or boundary-condition study);
                                 # "cokriging" with [fidelity.low] (then the default is
                                 # ["gpr", "cokriging"])
    gpr = { kernel = "matern52", noise = "heteroscedastic", n_restarts = 2 }
    pce = { degree = "auto", fit_method = "lars", std_method = "bootstrap" }

    [propagation]
    n_samples = 2048
    n_functions = 64
    sobol_samples = 512          # rows of the Saltelli design (N (p + 2) evaluations)
    [propagation.inputs]         # default: uniform over the swept range of each parameter
    volume_fraction = { distribution = "uniform", low = 0.2, high = 0.4 }

    [validation]
    n_splits = 5
    ood_fraction = 0.6           # the training box is the central 60 % of each swept range
    ood_edges = [0.0, 0.1, 0.25, 0.5]
    min_samples = 20             # every reported OOD row rests on at least this many samples

    [structure]                  # a part whose elements carry the surrogate's tensors: see
                                 # stochhom.structure.study for the keys

Every key is checked at load time: an unknown key or a bad value is refused with its
location and the allowed values, like the rest of the study file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

__all__ = ["BOUNDS", "FIELD_FORMATS", "PipelineConfig", "pipeline_config", "scalar_targets", "check_targets"]

_GPR_KEYS = {"kernel", "noise", "n_restarts", "ard", "max_iter"}
_PCE_KEYS = {"degree", "fit_method", "q_norm", "max_degree", "std_method", "n_bootstrap"}
#: Values of ``[surrogate].bounds``.
BOUNDS = ("auto", "hashin_shtrikman", "voigt_reuss", "phases", "none")


@dataclass(frozen=True)
class PipelineConfig:
    """Validated pipeline options with their defaults (see the module docstring)."""

    gallery_samples: int = 4
    rve_targets: list[str] = field(default_factory=list)
    rve_epsilon: float = 0.01
    rve_realizations: int = 1
    rve_boundary: list[str] = field(default_factory=list)
    rve_boundary_replicates: int | None = None
    targets: list[str] = field(default_factory=list)
    bounds: str = "auto"
    log_targets: bool = False
    models: list[str] = field(default_factory=lambda: ["gpr", "pce"])
    gpr: dict[str, Any] = field(default_factory=dict)
    pce: dict[str, Any] = field(default_factory=dict)
    n_samples: int = 2048
    n_functions: int = 64
    sobol_samples: int = 512
    inputs: dict[str, Any] = field(default_factory=dict)
    n_splits: int = 5
    ood_fraction: float = 0.6
    ood_edges: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.25, 0.5])
    min_samples: int = 20
    structure: dict[str, Any] | None = None
    field_samples: list[int] = field(default_factory=list)
    field_format: str = "vti"
    field_load: list[float] | None = None
    fidelity_low: dict[str, Any] | None = None

    def section(self, stage: str) -> dict[str, Any]:
        """The options a stage depends on (hashed to decide whether it must be redone)."""
        keys = {
            "gallery": ["gallery_samples"],
            "rve": ["rve_targets", "rve_epsilon", "rve_realizations", "rve_boundary", "rve_boundary_replicates"],
            "surrogates": ["targets", "bounds", "log_targets", "models", "gpr", "pce", "n_splits", "fidelity_low"],
            "propagation": ["targets", "models", "n_samples", "n_functions", "sobol_samples", "inputs"],
            "validation": ["targets", "bounds", "log_targets", "models", "gpr", "pce", "n_splits", "ood_fraction",
                           "ood_edges", "min_samples", "fidelity_low"],
            "structure": ["targets", "models", "gpr", "pce", "structure"],
            "fields": ["field_samples", "field_format", "field_load"],
        }[stage]
        return {k: getattr(self, k) for k in keys}


def _err(where: str, msg: str) -> InputError:
    from .schema import StudyError

    return StudyError(f"{where}: {msg}")


def _table(pipe: dict[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    t = pipe.get(name, {})
    if not isinstance(t, dict):
        raise _err(f"[{name}]", f"expected a table, got {t!r}")
    unknown = set(t) - allowed
    if unknown:
        raise _err(f"[{name}]", f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return t


def _int(v: Any, where: str, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise _err(where, f"expected an integer >= {low}, got {v!r}")
    return v


def _strings(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v) or not v:
        raise _err(where, f"expected a non-empty list of names, got {v!r}")
    return list(v)


def scalar_targets(study: Any) -> list[str]:
    """The per-sample scalar quantities a study's store provides (the physics fixes them).

    Conductivity: ``conductivity_eigenvalues_k`` (k < d) and ``conductivity_i_j``
    (i <= j < d); elasticity: ``bulk_modulus``, ``shear_modulus`` and ``stiffness_i_j``
    (i <= j < d (d + 1) / 2, Mandel); both: ``phase_fraction_k`` for every phase label and
    ``anisotropy_index``.
    """
    d = study.dim
    if study.physics == "elasticity":
        ne = d * (d + 1) // 2
        names = ["bulk_modulus", "shear_modulus"] + [f"stiffness_{i}_{j}" for i in range(ne) for j in range(i, ne)]
    else:
        names = [f"conductivity_eigenvalues_{k}" for k in range(d)]
        names += [f"conductivity_{i}_{j}" for i in range(d) for j in range(i, d)]
    n_phases = max(int(k) for k in study.phases) + 1
    return names + [f"phase_fraction_{k}" for k in range(n_phases)] + ["anisotropy_index"]


def check_targets(study: Any, targets: list[str], where: str, tensors: bool = True, logs: bool = True) -> None:
    """Refuse a target the study cannot provide, listing those it can.

    Scalars of :func:`scalar_targets`, their ``log_`` variants (``logs``) and, with
    ``tensors``, the whole tensor of the study's physics (see
    :data:`stochhom.surrogates.tensor.TENSOR_TARGETS`).
    """
    from ..surrogates.tensor import TENSOR_TARGETS

    scalars = scalar_targets(study)
    allowed = set(scalars)
    if logs:
        allowed |= {f"log_{t}" for t in scalars}
    tensor = [t for t, physics in TENSOR_TARGETS.items() if physics == study.physics]
    if tensors:
        allowed |= set(tensor)
    for t in targets:
        if t in allowed:
            continue
        hint = ""
        if t in TENSOR_TARGETS and TENSOR_TARGETS[t] != study.physics:
            hint = f" ({t!r} is the tensor of {TENSOR_TARGETS[t]}, but this study computes {study.physics})"
        elif t in TENSOR_TARGETS:
            hint = " (whole tensors are surrogate targets only)"
        shown = scalars[:12] + (["..."] if len(scalars) > 12 else [])
        raise _err(where, f"unknown target {t!r} for a {study.dim}D {study.physics} study{hint}; allowed: {shown}"
                          + (", their log_ variants" if logs else "") + (f" and {tensor}" if tensors else ""))


#: Conditions of ``[rve].boundary`` (softest first in the theory's order).
HIERARCHY_CONDITIONS = ("subc", "mixed", "periodic", "kubc")


def _hierarchy_conditions(study: Any, value: Any) -> list[str]:
    """``[rve].boundary``: two or more distinct conditions, on a sweep of ``size``."""
    where = "[rve].boundary"
    conds = _strings(value, where)
    bad = [c for c in conds if c not in HIERARCHY_CONDITIONS]
    if bad:
        raise _err(where, f"unknown boundary condition {bad[0]!r}; allowed: {list(HIERARCHY_CONDITIONS)}")
    if len(set(conds)) != len(conds) or len(conds) < 2:
        raise _err(where, f"expected at least two distinct conditions, got {conds!r}")
    if "size" not in getattr(study, "parameters", {}):
        raise _err(where, "the hierarchy is read against the SVE size: sweep the special parameter size "
                   "([sweep.parameters] size = [...])")
    return sorted(conds, key=HIERARCHY_CONDITIONS.index)


def _fidelity_config(study: Any, table: Any) -> dict[str, Any] | None:
    """``[fidelity.low]``: the low fidelity's grid and design (``shape``, ``points``,
    ``replicates``); the high fidelity is the study's own ``[generator]`` and ``[sweep]``."""
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) - {"low", "high"}:
        raise _err("[fidelity]", f"expected the table [fidelity.low], got {table!r}")
    if "high" in table:
        raise _err("[fidelity.high]", "the high fidelity is the study itself: its grid is [generator].shape and its "
                   "budget [sweep].points x [sweep].replicates; declare only [fidelity.low]")
    low = table.get("low")
    if not isinstance(low, dict) or set(low) - {"shape", "points", "replicates"} or "shape" not in low:
        raise _err("[fidelity.low]", f"expected keys shape (required), points and replicates, got {low!r}")
    if getattr(study, "design", None) not in ("lhs", "sobol") or getattr(study, "adaptive", None) is not None:
        raise _err("[fidelity.low]", "co-kriging needs a fixed lhs or sobol design over distributions of the swept "
                   "parameters (not a grid, not [sweep.adaptive])")
    shape = low["shape"]
    if (not isinstance(shape, list) or len(shape) != len(study.shape)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 4 for n in shape)):
        raise _err("[fidelity.low].shape", f"expected {len(study.shape)} integers >= 4 (the study is "
                   f"{len(study.shape)}D), got {shape!r}")
    if "size" in study.parameters:
        raise _err("[fidelity.low]", "the SVE size is swept: the low fidelity's grid would not be defined")
    ratios = {n / m for n, m in zip(shape, study.shape)}
    if len(ratios) > 1:
        raise _err("[fidelity.low].shape", f"{shape} is not {list(study.shape)} scaled by one factor: the low "
                   "fidelity must be the same SVE on a coarser (or finer) grid")
    points = _int(low.get("points", 2 * int(study.points)), "[fidelity.low].points", 3)
    replicates = _int(low.get("replicates", 1), "[fidelity.low].replicates", 1)
    return {"shape": list(shape), "points": points, "replicates": replicates}


#: Values of ``[output].format``: the suffix of the field files.
FIELD_FORMATS = ("vti", "vtu", "vtk", "xdmf", "nc")


def _output_config(study: Any, t: dict[str, Any]) -> dict[str, Any]:
    """``[output]``: the samples whose local fields are written, their format and load."""
    out: dict[str, Any] = {}
    if not t:
        return out
    if "fields" not in t:
        raise _err("[output]", "format and load describe the field files: add fields = [sample ids]")
    samples = t["fields"]
    if (not isinstance(samples, list) or not samples
            or not all(isinstance(k, int) and not isinstance(k, bool) for k in samples)):
        raise _err("[output].fields", f"expected a non-empty list of sample ids (integers), got {samples!r}")
    n = len(study.samples())
    bad = [k for k in samples if not 0 <= k < n]
    if bad:
        raise _err("[output].fields", f"no sample {bad[0]}: this study has samples 0 to {n - 1} "
                   "('stochhom sweep STUDY --dry-run' lists them; 'stochhom export' gives their parameters)")
    solver = dict(getattr(study, "solver", {}))
    if solver.get("composite_voxels") or solver.get("boundary", "periodic") != "periodic":
        raise _err("[output].fields", "local fields are written for the periodic FFT solver without composite "
                   "voxels; this study sets [solver] boundary or composite_voxels")
    out["field_samples"] = list(dict.fromkeys(int(k) for k in samples))
    if "format" in t:
        if t["format"] not in FIELD_FORMATS:
            raise _err("[output].format", f"expected one of {list(FIELD_FORMATS)}, got {t['format']!r}")
        out["field_format"] = t["format"]
    if "load" in t:
        load = t["load"]
        dim = len(study.shape)
        n_load = (3 if dim == 2 else 6) if study.physics == "elasticity" else dim
        if (not isinstance(load, list) or len(load) != n_load
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in load)):
            raise _err("[output].load", f"expected {n_load} numbers (the macroscopic "
                       f"{'strain' if study.physics == 'elasticity' else 'gradient'} in Mandel notation, {dim}D), "
                       f"got {load!r}")
        if not any(load):
            raise _err("[output].load", "the load is zero, so are the fields: give a nonzero strain (gradient)")
        out["field_load"] = [float(v) for v in load]
    return out


def pipeline_config(study: Any) -> PipelineConfig:
    """Validate the pipeline tables of a :class:`~stochhom.study.schema.Study`."""
    from ..surrogates.distributions import InputDistribution

    pipe = getattr(study, "pipeline", {}) or {}
    out: dict[str, Any] = {}
    g = _table(pipe, "gallery", {"samples"})
    if "samples" in g:
        out["gallery_samples"] = _int(g["samples"], "[gallery].samples", 0)
    r = _table(pipe, "rve", {"targets", "epsilon", "realizations", "boundary", "boundary_replicates"})
    if "targets" in r:
        out["rve_targets"] = _strings(r["targets"], "[rve].targets")
        check_targets(study, out["rve_targets"], "[rve].targets", tensors=False, logs=False)
    if "epsilon" in r:
        e = r["epsilon"]
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 < e < 1:
            raise _err("[rve].epsilon", f"expected a relative error in (0, 1), got {e!r}")
        out["rve_epsilon"] = float(e)
    if "realizations" in r:
        out["rve_realizations"] = _int(r["realizations"], "[rve].realizations")
    if "boundary" in r:
        out["rve_boundary"] = _hierarchy_conditions(study, r["boundary"])
    if "boundary_replicates" in r:
        if "boundary" not in r:
            raise _err("[rve].boundary_replicates", "applies to the hierarchy: add [rve].boundary")
        out["rve_boundary_replicates"] = _int(r["boundary_replicates"], "[rve].boundary_replicates", 2)
    s = _table(pipe, "surrogate", {"targets", "bounds", "log_targets", "models", "gpr", "pce"})
    if "targets" in s:
        out["targets"] = _strings(s["targets"], "[surrogate].targets")
        check_targets(study, out["targets"], "[surrogate].targets")
    if "bounds" in s:
        if s["bounds"] not in BOUNDS:
            raise _err("[surrogate].bounds", f"expected one of {list(BOUNDS)}, got {s['bounds']!r}")
        out["bounds"] = s["bounds"]
    if "log_targets" in s:
        if not isinstance(s["log_targets"], bool):
            raise _err("[surrogate].log_targets", f"expected true or false, got {s['log_targets']!r}")
        out["log_targets"] = s["log_targets"]
    low = _fidelity_config(study, pipe.get("fidelity"))
    if low is not None:
        out["fidelity_low"] = low
        out["models"] = ["gpr", "cokriging"]
    if "models" in s:
        # an empty list asks for no surrogate (an RVE or boundary-condition study): the
        # surrogate, propagation and validation stages are then skipped
        models = [] if s["models"] == [] else _strings(s["models"], "[surrogate].models")
        bad = set(models) - {"gpr", "pce", "cokriging"}
        if bad:
            raise _err("[surrogate].models", f"unknown model(s) {sorted(bad)}; allowed: ['gpr', 'pce', 'cokriging']")
        if "cokriging" in models and low is None:
            raise _err("[surrogate].models", "'cokriging' combines two fidelities: declare the low one in "
                       "[fidelity.low] (shape, points, replicates)")
        out["models"] = models
    for name, allowed in (("gpr", _GPR_KEYS), ("pce", _PCE_KEYS)):
        if name in s:
            opts = s[name]
            if not isinstance(opts, dict) or set(opts) - allowed:
                extra = sorted(set(opts) - allowed) if isinstance(opts, dict) else opts
                raise _err(f"[surrogate].{name}", f"unknown option(s) {extra}; allowed: {sorted(allowed)}")
            out[name] = dict(opts)
    p = _table(pipe, "propagation", {"n_samples", "n_functions", "sobol_samples", "inputs"})
    if "n_samples" in p:
        out["n_samples"] = _int(p["n_samples"], "[propagation].n_samples", 16)
    if "n_functions" in p:
        out["n_functions"] = _int(p["n_functions"], "[propagation].n_functions", 2)
    if "sobol_samples" in p:
        out["sobol_samples"] = _int(p["sobol_samples"], "[propagation].sobol_samples", 16)
    if "inputs" in p:
        inputs = p["inputs"]
        unknown = set(inputs) - set(study.parameters) if isinstance(inputs, dict) else None
        if unknown is None or unknown:
            raise _err("[propagation.inputs]", f"keys must be swept parameters {sorted(study.parameters)}, "
                                               f"got {sorted(inputs) if isinstance(inputs, dict) else inputs!r}")
        try:
            InputDistribution(dict(inputs))
        except InputError as exc:
            raise _err("[propagation.inputs]", str(exc)) from None
        out["inputs"] = dict(inputs)
    v = _table(pipe, "validation", {"n_splits", "ood_fraction", "ood_edges", "min_samples"})
    if "n_splits" in v:
        out["n_splits"] = _int(v["n_splits"], "[validation].n_splits", 2)
    if "ood_fraction" in v:
        f = v["ood_fraction"]
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
            raise _err("[validation].ood_fraction", f"expected a fraction in (0, 1), got {f!r}")
        out["ood_fraction"] = float(f)
    if "ood_edges" in v:
        edges = v["ood_edges"]
        if (not isinstance(edges, list) or len(edges) < 2 or not all(isinstance(e, (int, float)) for e in edges)
                or any(b <= a for a, b in itertools.pairwise(edges)) or edges[0] < 0):
            raise _err("[validation].ood_edges", f"expected increasing distances >= 0, got {edges!r}")
        out["ood_edges"] = [float(e) for e in edges]
    if "min_samples" in v:
        out["min_samples"] = _int(v["min_samples"], "[validation].min_samples", 2)
    _table(pipe, "report", {"pdf"})
    out.update(_output_config(study, _table(pipe, "output", {"fields", "format", "load"})))
    if "structure" in pipe:
        from ..structure.study import structure_config

        models = out.get("models", ["gpr", "pce"])
        out["structure"] = structure_config(study, pipe["structure"], models, out.get("targets", []))
        std = out.get("pce", {}).get("std_method", "bootstrap")
        if out["structure"]["model"] == "pce" and std != "bootstrap":
            raise _err("[structure].model", "a PCE gives posterior functions only with std_method = \"bootstrap\" "
                       f"([surrogate].pce), got {std!r}")
    return PipelineConfig(**out)
