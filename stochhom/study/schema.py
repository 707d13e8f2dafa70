"""Study files: the TOML description of a parameter sweep, validated.

A study names the generator and its fixed parameters, the swept parameters (a full
grid, or a Latin-hypercube / Sobol design over ranges or distributions), the number
of replicates per point, the phases (whose values may be expressions of the
parameters), the solver options and the output store::

    [study]
    name = "contrast"            # optional (default: the file name)
    output = "contrast.zarr"     # zarr store, relative to the study file
    seed = 2026                  # root seed of every sample
    question = "How does ..."    # optional: the question the report answers first
    units = { length = "um", conductivity = "W/m/K" }   # optional (stochhom.units)

    [generator]
    name = "gaussian"
    shape = [64, 64]
    voxel_size = 1.0             # optional
    correlation_length = 4.0     # fixed generator parameters

    [sweep]
    design = "grid"              # "grid", "lhs" or "sobol"
    replicates = 8
    points = 16                  # lhs / sobol only
    [sweep.parameters]
    volume_fraction = [0.2, 0.3, 0.4]                   # grid: lists of values
    contrast = [10.0, 100.0]
    # lhs / sobol: contrast = { distribution = "loguniform", low = 10, high = 1000 }

    [phases.0]
    law = "Conductivity"
    k = 1.0
    [phases.1]
    law = "Conductivity"
    k = "contrast"               # an expression of the parameters

    [solver]
    scheme = "cg"
    tol = 1e-6

Every parameter (fixed or swept) must be a parameter of the generator or appear in
a phase expression; the special parameter ``size`` sets the edge length of the SVE
(``shape = [size] * dim``). Errors name the key, its location and the allowed
values.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import itertools
import json
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.stats import qmc

from ..errors import InputError
from ..io import LAWS
from ..microstructure.ensemble import GENERATORS, Range, sample_seeds
from ..spectral.grid import DISCRETIZATIONS
from ..spectral.schemes import SCHEMES
from ..units import Units, units_from_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Study", "StudyError", "load_study", "ADAPTIVE_DEFAULTS", "study_from_dict", "DISTRIBUTIONS", "DESIGNS",
           "PIPELINE_TABLES", "memory_estimate", "check_resources", "SIZE_RANGE", "SAMPLES_VERSION"]

#: Designs of the swept parameters.
DESIGNS = ("grid", "lhs", "sobol")
#: Distributions of design parameters and their keys.
DISTRIBUTIONS = {
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "normal": ("mean", "std"),
    "lognormal": ("median", "sigma"),
}
_SOLVER_KEYS = {"scheme": str, "discretization": str, "tol": float, "maxiter": int, "dtype": str,
                "workers": int, "backend": str, "device": str, "composite_voxels": int, "boundary": str}
_TOP = {"study", "generator", "sweep", "phases", "solver"}
#: Tables of the end-to-end pipeline (``stochhom run``), validated by :mod:`stochhom.study.pipeline`.
PIPELINE_TABLES = ("gallery", "output", "fidelity", "rve", "surrogate", "propagation", "validation", "structure",
                   "report")


class StudyError(InputError):
    """An invalid study file (the message names the key and the fix)."""


def _err(where: str, msg: str) -> StudyError:
    return StudyError(f"{where}: {msg}")


def _check_keys(table: Mapping[str, Any], where: str, allowed: set[str], required: set[str] = frozenset()) -> None:
    if not isinstance(table, Mapping):
        raise _err(where, f"expected a table, got {type(table).__name__}")
    unknown = set(table) - allowed
    if unknown:
        raise _err(where, f"unknown key(s) {sorted(unknown)}; allowed keys are {sorted(allowed)}")
    missing = required - set(table)
    if missing:
        raise _err(where, f"missing required key(s) {sorted(missing)}")


def _number(value: Any, where: str, kind: type = float, positive: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _err(where, f"expected a number, got {value!r}")
    if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise _err(where, f"expected an integer, got {value!r}")
    if positive and not value > 0:
        raise _err(where, f"must be > 0, got {value!r}")
    return kind(value)


def _expression_names(value: str) -> set[str]:
    try:
        tree = ast.parse(value, mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - {"exp", "log", "sqrt", "min", "max"}


#: Version of what one sample computes (generators, discretization, solver, stored variables).
#: A release of stochhom that changes any sample's numbers increments it; it is part of
#: :meth:`Study.content` and so of the study hash, so a store written by code whose samples
#: differ is refused on resume (``--restart`` recomputes it) instead of mixing two versions'
#: samples. A release that changes no sample keeps it, and its stores resume.
SAMPLES_VERSION = 2  # 2: porous media are solved with Q1 elements by default ("auto")


@dataclass
class Study:
    """A validated study (see the module docstring)."""

    name: str
    output: Path
    seed: int
    generator: str
    shape: tuple[int, ...]
    voxel_size: float
    fixed: dict[str, Any]
    design: str
    parameters: dict[str, Any]
    points: int | None
    replicates: int
    phases: dict[str, Any]
    solver: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict, repr=False)
    pipeline: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Declared units (labels only: they change no number, so they are not hashed).
    units: Units = field(default_factory=Units)
    #: The specimen a ``[generator] fit`` took its parameters from, and what it gave.
    fit: dict[str, Any] | None = None
    #: The question the report answers first (optional; not hashed).
    question: str | None = None
    #: ``[sweep] adaptive``: the sequential design's options (:func:`_parse_adaptive`), or None.
    adaptive: dict[str, Any] | None = None
    #: Samples that an adaptive design added after the initial design, in order: each
    #: ``{"point": p, "values": {parameter: value}}``, ``p`` a new point (the next point id)
    #: or an existing one (a replicate).
    added: tuple[dict[str, Any], ...] = ()

    # -- identity -----------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        """What determines the results (hashed): not the output path, the name or threads,
        but the :data:`SAMPLES_VERSION` of the code that computes the samples."""
        solver = {k: v for k, v in self.solver.items() if k != "workers"}
        out = {"samples_version": SAMPLES_VERSION, "seed": self.seed, "generator": self.generator,
               "shape": list(self.shape), "voxel_size": self.voxel_size, "fixed": self.fixed, "design": self.design,
               "parameters": self.parameters, "points": self.points, "replicates": self.replicates,
               "phases": self.phases, "solver": solver}
        if self.adaptive is not None:  # only then: the hashes of fixed designs do not change
            # the budget and the stopping rule decide when the design stops, not what it adds:
            # a study run again with a new one continues from the samples solved
            out["adaptive"] = {k: v for k, v in self.adaptive.items() if k not in ADAPTIVE_LIMITS}
        if self.added:
            out["added"] = [dict(a) for a in self.added]
        return out

    def hash(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`content`."""
        return hashlib.sha256(json.dumps(self.content(), sort_keys=True).encode()).hexdigest()

    @property
    def physics(self) -> str:
        laws = {t.get("law") for t in self.phases.values()}
        return "conductivity" if laws <= {"Conductivity", "Void"} else "elasticity"

    @property
    def dim(self) -> int:
        return len(self.shape)

    # -- plan ---------------------------------------------------------------------------
    def points_table(self) -> list[dict[str, Any]]:
        """The swept parameter values of every point, in order."""
        names = list(self.parameters)
        if not names:
            return [{}]
        if self.design == "grid":
            return [dict(zip(names, combo)) for combo in itertools.product(*(self.parameters[n] for n in names))]
        d = len(names)
        if self.design == "lhs":
            u = qmc.LatinHypercube(d=d, seed=self.seed).random(self.points)
        else:  # the balance warning for other counts is issued once, at load time
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                u = qmc.Sobol(d=d, scramble=True, seed=self.seed).random(self.points)
        rows = []
        for row in u:
            rows.append({n: _ppf(self.parameters[n], float(x)) for n, x in zip(names, row)})
        return rows + [dict(a["values"]) for a in self._new_points()]

    def _new_points(self) -> list[dict[str, Any]]:
        """The added samples that open a new point, in order (the others are replicates);
        an adaptive design needs an lhs or sobol design, whose points are ``0 .. points - 1``."""
        if not self.added:
            return []
        seen: set[int] = set()
        out = []
        for a in self.added:
            p = int(a["point"])
            if p >= int(self.points or 0) and p not in seen:
                seen.add(p)
                out.append(a)
        return out

    def samples(self) -> list[dict[str, Any]]:
        """Every sample: ``{"sample": k, "point": p, "replicate": r, "params": {...}}``; the
        samples an adaptive design added follow the initial design's, in order."""
        out = []
        table = self.points_table()
        n_initial = len(table) - len(self._new_points())
        counts = {}
        for p, point in enumerate(table[:n_initial]):
            for r in range(self.replicates):
                out.append(self._sample(len(out), p, r, point))
            counts[p] = self.replicates
        for a in self.added:
            p = int(a["point"])
            r = counts.get(p, 0)
            counts[p] = r + 1
            out.append(self._sample(len(out), p, r, table[p]))  # a replicate of an added point too
        return out

    def _sample(self, k: int, p: int, r: int, point: Mapping[str, Any]) -> dict[str, Any]:
        params = {**self.fixed, **point}
        if "size" in params:
            params["size"] = int(round(params["size"]))
        return {"sample": k, "point": p, "replicate": r, "params": params}

    def sample_shape(self, params: Mapping[str, Any]) -> tuple[int, ...]:
        if "size" in params:
            return (int(params["size"]),) * self.dim
        return self.shape

    def generator_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        accepted = _generator_keywords(self.generator)
        return {k: v for k, v in params.items() if k in accepted}

    def seeds(self, samples: list[int]) -> np.ndarray:
        return sample_seeds(np.random.SeedSequence(self.seed), samples)


def _ppf(spec: Mapping[str, Any], u: float) -> float:
    kind = spec["distribution"]
    if kind == "uniform":
        return spec["low"] + u * (spec["high"] - spec["low"])
    if kind == "loguniform":
        return float(np.exp(np.log(spec["low"]) + u * (np.log(spec["high"]) - np.log(spec["low"]))))
    if kind == "normal":
        return float(stats.norm.ppf(u, spec["mean"], spec["std"]))
    return float(spec["median"] * np.exp(spec["sigma"] * stats.norm.ppf(u)))


def _generator_keywords(name: str) -> set[str]:
    sig = inspect.signature(GENERATORS[name].func)
    return {p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY} - {"voxel_size", "workers"}


def _parse_parameters(table: Any, design: str, where: str) -> dict[str, Any]:
    if not isinstance(table, Mapping) or not table:
        raise _err(where, "expected a table of swept parameters, e.g. volume_fraction = [0.2, 0.3]")
    out: dict[str, Any] = {}
    for name, spec in table.items():
        w = f"{where}.{name}"
        if design == "grid":
            if not isinstance(spec, list) or not spec:
                raise _err(w, f"a grid needs a non-empty list of values, got {spec!r}")
            if len({json.dumps(v) for v in spec}) != len(spec):
                raise _err(w, f"repeated values in {spec!r}")
            for v in spec:
                if isinstance(v, (dict, list)):
                    raise _err(w, f"grid values must be numbers or strings, got {v!r}")
            out[name] = list(spec)
            continue
        if not isinstance(spec, Mapping):
            example = '{ distribution = "uniform", low = 0.1, high = 0.5 }'
            raise _err(w, f"a {design} design needs a table like {example}")
        kind = spec.get("distribution", "uniform")
        if kind not in DISTRIBUTIONS:
            raise _err(f"{w}.distribution", f"unknown distribution {kind!r}; allowed: {sorted(DISTRIBUTIONS)}")
        keys = set(DISTRIBUTIONS[kind])
        _check_keys(spec, w, keys | {"distribution"}, keys)
        vals = {k: _number(spec[k], f"{w}.{k}") for k in keys}
        if kind in ("uniform", "loguniform") and not vals["low"] < vals["high"]:
            raise _err(w, f"low must be below high, got low = {vals['low']}, high = {vals['high']}")
        if kind == "loguniform" and vals["low"] <= 0:
            raise _err(f"{w}.low", "a log-uniform range must be positive")
        if kind in ("normal", "lognormal"):
            scale = "std" if kind == "normal" else "sigma"
            if vals[scale] <= 0:
                raise _err(f"{w}.{scale}", "must be > 0")
            if kind == "lognormal" and vals["median"] <= 0:
                raise _err(f"{w}.median", "must be > 0")
        out[name] = {"distribution": kind, **vals}
    return out


def _fit_generator(gname: str, spec: Any, base: Path, voxel_size: float, fixed: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters of ``gname`` fitted to the specimen of ``[generator] fit``.

    ``spec`` is a path (a label image) or a table ``{path, threshold, phase, downsample}``
    (``threshold`` segments a grey-level scan, see
    :func:`~stochhom.microstructure.load_specimens`). The scan's pixel size is the
    study's ``voxel_size`` (its labels' is ``downsample`` times that).
    """
    from ..microstructure import load_specimens
    from ..microstructure.fitting import fit_boolean, fit_gaussian

    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, Mapping):
        raise _err("[generator].fit",
                   f"expected a path or a table {{path, threshold, phase, downsample}}, got {spec!r}")
    _check_keys(spec, "[generator].fit", {"path", "threshold", "phase", "downsample"}, {"path"})
    if gname not in ("gaussian", "boolean"):
        raise _err("[generator].fit", f"fits 'gaussian' (level cut) and 'boolean' models, not {gname!r}")
    path = Path(spec["path"])
    path = path if path.is_absolute() else base / path
    phase = spec.get("phase", 1)
    downsample = spec.get("downsample", 1)
    try:
        ds = load_specimens(path, voxel_size=voxel_size, threshold=spec.get("threshold"), downsample=downsample)
        labels, h = ds["phase"].values[0], float(ds.attrs["voxel_size"])
        distinct = np.unique(labels).size
        if distinct > 2 and "threshold" not in spec:
            raise InputError(f"the image holds {distinct} distinct values, not two phase labels: a grey-level "
                             "scan? Segment it with threshold = \"otsu\" (or grey levels) in the fit table")
        if gname == "gaussian":
            model = fixed.get("model", "gaussian")
            fitted = fit_gaussian(labels, model=model, nu=fixed.get("nu"), phase=phase, voxel_size=h)
        else:
            fitted = fit_boolean(labels, phase=phase, voxel_size=h)
    except InputError as exc:
        raise _err("[generator].fit", f"{path}: {exc}") from None
    params = {k: v for k, v in fitted.items() if k in ("volume_fraction", "correlation_length", "radius")}
    info = {"path": str(path), "shape": list(labels.shape), **fitted}
    if "segmentation" in ds.attrs:
        info["segmentation"] = ds.attrs["segmentation"]
    return params, info


def _check_boundary(solver: dict[str, Any], gname: str) -> None:
    """``[solver] boundary``: a known condition that the other solver options allow; a
    generator of non-periodic samples gets the window default (``"mixed"``, see
    :func:`~stochhom.spectral.homogenize.default_boundary`) written into ``solver``."""
    from ..fem.boundary import BOUNDARY_CONDITIONS
    from ..microstructure.ensemble import GENERATORS
    from ..spectral.homogenize import WINDOW_BOUNDARY

    if "boundary" not in solver:
        if not GENERATORS[gname].periodic:
            solver["boundary"] = WINDOW_BOUNDARY
        return
    b = solver["boundary"]
    if b not in BOUNDARY_CONDITIONS:
        raise _err("[solver].boundary", f"unknown boundary condition {b!r}; allowed: {list(BOUNDARY_CONDITIONS)}")
    if b == "periodic":
        return
    allowed = {"scheme": {"cg"}, "dtype": {"float64"}, "backend": {"auto", "numba", "numpy"}}
    clash = [k for k in ("scheme", "dtype", "backend", "device", "composite_voxels")
             if k in solver and solver[k] not in allowed.get(k, set())]
    if clash:
        raise _err(f"[solver].{clash[0]}", f"boundary = {b!r} runs on voxel finite elements with AMG-preconditioned "
                   f"CG in float64; remove {clash[0]} = {solver[clash[0]]!r}")
    if solver.get("discretization", "auto") not in ("auto", "q1"):
        raise _err("[solver].discretization", f"boundary = {b!r} uses Q1 elements (discretization 'q1'), not "
                   f"{solver['discretization']!r}")


def study_from_dict(data: Mapping[str, Any], base: Path | None = None, name: str = "study") -> Study:
    """Validate a parsed study (see module docstring); ``base`` resolves relative paths."""
    _check_keys(data, "study file", _TOP | set(PIPELINE_TABLES), {"generator", "phases"})
    base = Path(".") if base is None else base
    st = data.get("study", {})
    _check_keys(st, "[study]", {"name", "output", "seed", "question", "units"}, {"output"})
    if not isinstance(st["output"], str) or not st["output"].strip():
        raise _err("[study].output", f"expected a path string, got {st['output']!r}")
    output = Path(st["output"])
    if not output.is_absolute():
        output = base / output
    seed = _number(st.get("seed", 0), "[study].seed", int)
    if seed < 0:
        raise _err("[study].seed", f"must be >= 0, got {seed}")
    study_name = str(st.get("name", name))
    question = st.get("question")
    if question is not None and (not isinstance(question, str) or not question.strip()):
        raise _err("[study].question", f"expected a sentence (a string), got {question!r}")

    gen = dict(data["generator"])
    _check_keys(gen, "[generator]", set(gen) | {"name", "shape"}, {"name", "shape"})
    gname = gen.pop("name")
    if gname not in GENERATORS:
        raise _err("[generator].name", f"unknown generator {gname!r}; allowed: {sorted(GENERATORS)}")
    shape = gen.pop("shape")
    if (not isinstance(shape, list) or len(shape) not in (2, 3)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise _err("[generator].shape", f"expected 2 or 3 positive integers, got {shape!r}")
    voxel_size = _number(gen.pop("voxel_size", 1.0), "[generator].voxel_size", float, positive=True)
    try:
        units = units_from_dict(st.get("units"), "[study].units", voxel_size=voxel_size)
    except InputError as exc:
        raise StudyError(str(exc)) from None
    fit_spec = gen.pop("fit", None)
    fixed = gen

    sweep = data.get("sweep", {})
    _check_keys(sweep, "[sweep]", {"design", "replicates", "points", "parameters", "adaptive"})
    design = sweep.get("design", "grid")
    if design not in DESIGNS:
        raise _err("[sweep].design", f"unknown design {design!r}; allowed: {list(DESIGNS)}")
    replicates = _number(sweep.get("replicates", 1), "[sweep].replicates", int, positive=True)
    points = None
    if design != "grid":
        if "points" not in sweep:
            raise _err("[sweep].points", f"a {design} design needs the number of points")
        points = _number(sweep["points"], "[sweep].points", int, positive=True)
        if design == "sobol" and points & (points - 1):
            warnings.warn(f"[sweep].points = {points}: Sobol points are balanced only for powers of 2 "
                          f"(e.g. {1 << max(0, points.bit_length() - 1)} or {1 << points.bit_length()}); "
                          "the design is less uniform", UserWarning, stacklevel=3)
    elif "points" in sweep:
        raise _err("[sweep].points", "only for 'lhs' and 'sobol' designs; a grid has one point per combination")
    parameters = _parse_parameters(sweep["parameters"], design, "[sweep.parameters]") if "parameters" in sweep else {}
    both = set(parameters) & set(fixed)
    if both:
        raise _err("[sweep.parameters]", f"{sorted(both)} are also fixed in [generator]; give each parameter once")
    adaptive = _parse_adaptive(sweep["adaptive"], design, parameters, points, replicates) \
        if "adaptive" in sweep else None
    fit_info = None
    if fit_spec is not None:
        fitted, fit_info = _fit_generator(gname, fit_spec, base, voxel_size, fixed)
        for key, value in fitted.items():  # given or swept parameters win over fitted ones
            if key not in fixed and key not in parameters:
                fixed[key] = value

    phases = data["phases"]
    if not isinstance(phases, Mapping) or not phases:
        raise _err("[phases]", "expected one [phases.<label>] table per phase label")
    referenced: set[str] = set()
    for label, table in phases.items():
        w = f"[phases.{label}]"
        if not str(label).isdigit():
            raise _err(w, "phase keys must be integer labels (0, 1, ...)")
        if not isinstance(table, Mapping) or table.get("law") not in LAWS:
            law = table.get("law") if isinstance(table, Mapping) else table
            raise _err(f"{w}.law", f"unknown or missing law {law!r}; allowed: {sorted(LAWS)}")
        for key, value in table.items():
            if isinstance(value, str) and key != "law":
                referenced |= _expression_names(value)
    accepted = _generator_keywords(gname)
    all_params = set(fixed) | set(parameters)
    unknown = all_params - accepted - referenced - {"size"}
    if unknown:
        raise _err("[generator] / [sweep.parameters]",
                   f"parameter(s) {sorted(unknown)} are neither parameters of generator {gname!r} "
                   f"(which takes {sorted(accepted)}) nor used in a phase expression")
    missing = referenced - all_params
    if missing:
        raise _err("[phases]", f"expressions use {sorted(missing)}, which no [generator] or [sweep.parameters] entry "
                               "defines")

    solver = data.get("solver", {})
    _check_keys(solver, "[solver]", set(_SOLVER_KEYS))
    for key, kind in _SOLVER_KEYS.items():
        if key in solver:
            v = solver[key]
            if kind is str and not isinstance(v, str):
                raise _err(f"[solver].{key}", f"expected a string, got {v!r}")
            if kind in (int, float):
                _number(v, f"[solver].{key}", kind, positive=True)
    if solver.get("scheme", "cg") not in SCHEMES:
        raise _err("[solver].scheme", f"unknown scheme {solver['scheme']!r}; allowed: {sorted(SCHEMES)}")
    if solver.get("discretization", "auto") not in DISCRETIZATIONS:
        raise _err("[solver].discretization",
                   f"unknown discretization {solver['discretization']!r}; allowed: {sorted(DISCRETIZATIONS)}")
    if solver.get("dtype", "float64") not in ("float64", "float32", "mixed"):
        raise _err("[solver].dtype", f"allowed: ['float32', 'float64', 'mixed'], got {solver['dtype']!r}")
    if "tol" in solver and not 0 < solver["tol"] < 1:
        raise _err("[solver].tol", f"must lie in (0, 1), got {solver['tol']!r}")
    if solver.get("backend", "auto") not in ("auto", "numba", "numpy", "torch"):
        raise _err("[solver].backend", f"allowed: ['auto', 'numba', 'numpy', 'torch'], got {solver['backend']!r}")
    if "device" in solver and solver.get("backend") != "torch":
        raise _err("[solver].device", "applies to backend = \"torch\" only; set backend = \"torch\" or remove it")
    _check_boundary(solver, gname)
    if "composite_voxels" in solver:
        if solver["composite_voxels"] not in (2, 4, 8):
            raise _err("[solver].composite_voxels",
                       f"sub-voxels per axis: 2, 4 or 8, got {solver['composite_voxels']!r}")
        if gname not in ("boolean", "rsa", "fibres", "gaussian"):
            raise _err("[solver].composite_voxels", f"generator {gname!r} does not know its geometry below the voxel; "
                       "composite voxels need 'boolean', 'rsa', 'fibres' or 'gaussian'")
        if solver.get("scheme") == "accelerated" or solver.get("backend") == "torch":
            raise _err("[solver].composite_voxels", "needs scheme 'cg' or 'basic' and the numba or numpy backend")

    for key, value in fixed.items():
        if not isinstance(value, (int, float, str, bool)):
            raise _err(f"[generator].{key}", f"expected a number or a string, got {value!r} (list-valued generator "
                                             "parameters are not supported in studies; sweep the values instead)")
    study = Study(
        name=study_name, output=output, seed=seed, generator=gname, shape=tuple(shape), voxel_size=voxel_size,
        fixed=fixed, design=design, parameters=parameters, points=points, replicates=replicates,
        phases={str(k): dict(v) for k, v in phases.items()}, solver=dict(solver), source=dict(data),
        pipeline={t: _resolved(t, data[t], base) for t in PIPELINE_TABLES if t in data},
        units=units, question=question.strip() if question else None, fit=fit_info, adaptive=adaptive,
    )
    _check_generator_parameters(study)
    from .resources import check_resources

    check_resources(study)  # the sample count first: the design is built only below
    _check_points(study)
    from .pipeline import pipeline_config

    pipeline_config(study)  # the pipeline tables are checked at load time too
    _check_labels(study)
    if adaptive is not None:
        from .pipeline import check_targets

        check_targets(study, [adaptive["target"]], "[sweep.adaptive].target", tensors=False, logs=False)
    return study


#: Keys of ``[sweep.adaptive]`` that only decide when the design stops (not in :meth:`Study.hash`).
ADAPTIVE_LIMITS = ("max_points", "stop")

#: Keys of ``[sweep.adaptive]`` and their defaults (``target`` and ``max_points`` are required).
ADAPTIVE_DEFAULTS = {"stop": "epistemic_share < 0.05", "batch": 8, "candidates": 512, "integration": 1024,
                     "replicates": True}


def _parse_adaptive(table: Any, design: str, parameters: Mapping[str, Any], points: int | None,
                    replicates: int) -> dict[str, Any]:
    """``[sweep.adaptive]``: a sequential design after the initial lhs/sobol design
    (:mod:`stochhom.surrogates.adaptive`)."""
    from ..surrogates.adaptive import StopRule

    w = "[sweep.adaptive]"
    _check_keys(table, w, {"target", "max_points", *ADAPTIVE_DEFAULTS}, {"target", "max_points"})
    if design not in ("lhs", "sobol") or not parameters:
        raise _err(w, "an adaptive design continues an 'lhs' or 'sobol' design over distributions of the swept "
                      "parameters: set [sweep].design and [sweep.parameters]")
    if "size" in parameters:
        raise _err(w, "the SVE size is a numerical choice, not an input to learn: an adaptive design cannot sweep "
                      "'size'")
    out = {**ADAPTIVE_DEFAULTS, **table}
    if not isinstance(out["target"], str):
        raise _err(f"{w}.target", f"expected the name of a scalar property, got {out['target']!r}")
    for key in ("batch", "candidates", "integration"):
        out[key] = _number(out[key], f"{w}.{key}", int, positive=True)
    initial = int(points or 0) * replicates
    out["max_points"] = _number(out["max_points"], f"{w}.max_points", int, positive=True)
    if out["max_points"] < initial + out["batch"]:
        raise _err(f"{w}.max_points", f"the budget of solves ({out['max_points']}) must leave at least one batch "
                   f"({out['batch']}) after the initial design's {initial} samples (points x replicates)")
    if not isinstance(out["replicates"], bool):
        raise _err(f"{w}.replicates", f"expected true or false, got {out['replicates']!r}")
    try:
        out["stop"] = str(StopRule.parse(out["stop"])) if out["stop"] != "none" else "none"
    except InputError as exc:
        raise _err(f"{w}.stop", f"{exc} (or \"none\": only the budget)") from None
    return out


def _resolved(table: str, value: Any, base: Path) -> Any:
    """A pipeline table with its file paths made absolute (relative to the study file):
    ``[structure] path``, the mesh of a part read from a file."""
    if table == "structure" and isinstance(value, dict) and isinstance(value.get("path"), str):
        path = Path(value["path"]).expanduser()
        return {**value, "path": str(path if path.is_absolute() else (base / path).resolve())}
    return value


#: Valid values of the special parameter ``size`` (the SVE edge, in voxels).
SIZE_RANGE = Range(1.0, None, closed_low=True, integer=True)
#: Largest probability that a design distribution may put outside its parameter's valid range.
MAX_MASS_OUTSIDE = 1e-3


def _check_value(study: Study, name: str, value: Any, where: str) -> None:
    """A fixed or grid value of a generator parameter (or ``size``) inside its declared range."""
    if name == "size":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not SIZE_RANGE.contains(value):
            raise _err(where, f"size = {value!r}: the SVE edge must be a positive integer number of voxels "
                              f"({SIZE_RANGE.describe()})")
        return
    gen = GENERATORS[study.generator]
    if name not in gen.ranges or name not in _generator_keywords(study.generator):
        return
    try:
        gen.check_params({name: value})
    except InputError as exc:
        raise _err(where, str(exc)) from None


def _check_generator_parameters(study: Study) -> None:
    """Fixed values, grid values and design distributions inside the generator's declared ranges."""
    gen = GENERATORS[study.generator]
    for name, value in study.fixed.items():
        _check_value(study, name, value, f"[generator].{name}")
    for name, spec in study.parameters.items():
        where = f"[sweep.parameters].{name}"
        if isinstance(spec, list):
            for value in spec:
                _check_value(study, name, value, where)
            continue
        if name == "size":
            rng = SIZE_RANGE
        elif name in gen.ranges and name in _generator_keywords(study.generator):
            rng = gen.ranges[name]
        else:
            continue
        if rng.integer and name != "size":
            raise _err(where, f"a {study.design} design draws real numbers, but {name} must be one of the "
                              f"{rng.describe()}; sweep it with design = \"grid\"")
        kind = spec["distribution"]
        what = f"the {kind} distribution {_describe(spec)}"
        if kind in ("uniform", "loguniform"):
            lo, hi = (spec["low"], spec["high"]) if name != "size" else (round(spec["low"]), round(spec["high"]))
            if not (rng.contains(lo) and rng.contains(hi)):
                raise _err(where, f"{what} reaches outside the valid range {rng.describe()} of {name}; "
                                  "keep low and high inside it")
            continue
        dist = (stats.norm(spec["mean"], spec["std"]) if kind == "normal"
                else stats.lognorm(spec["sigma"], scale=spec["median"]))
        if name == "size":  # drawn sizes are rounded: anything below 0.5 would round to 0
            mass = float(dist.cdf(0.5))
        else:
            mass = rng.mass_outside(dist)
        if mass > MAX_MASS_OUTSIDE:
            raise _err(where, f"{what} puts {mass:.3g} of its probability outside the valid range "
                              f"{rng.describe()} of {name} (at most {MAX_MASS_OUTSIDE:g} allowed); use a narrower "
                              "distribution or a uniform range inside it")


def _describe(spec: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{k} = {spec[k]:g}" for k in DISTRIBUTIONS[spec["distribution"]]) + ")"


def _check_labels(study: Study) -> None:
    """Every label the generator produces has a phase, and every phase is a label it can produce."""
    gen = GENERATORS[study.generator]
    given = {int(k) for k in study.phases}
    produced: set[int] = set()
    for point in study.points_table():
        params = study.generator_params({**study.fixed, **point})
        try:
            labels = gen.produced_labels(params)
        except (TypeError, ValueError):
            return  # undeclared for these parameters: the generator itself reports them
        if labels is None:
            return
        missing = labels - given
        if missing:
            at = ", ".join(f"{n}={v!r}" for n, v in point.items()) or "the fixed parameters"
            raise _err("[phases]", f"generator {study.generator!r} produces label(s) {_labels(missing)} (at {at}) "
                                   f"but the study has no phase for them; add [phases.<label>] tables for "
                                   f"{_labels(missing)}")
        produced |= labels
    extra = given - produced
    if extra:
        raise _err(f"[phases.{min(extra)}]",
                   f"generator {study.generator!r} never produces label(s) {_labels(extra)} with these parameters "
                   f"(it produces {_labels(produced)}); remove those phase tables or use a generator with more "
                   "phases")


def _labels(labels: set[int]) -> str:
    s = sorted(labels)
    return str(s) if len(s) <= 8 else f"[{s[0]}, {s[1]}, ..., {s[-1]}] ({len(s)} labels)"


def _check_points(study: Study) -> None:
    """Resolve the phases at every point: bad values and mixed physics are refused before any solve."""
    from ..materials import Conductivity, Void
    from ..statistics.phases import resolve_phases

    for point in study.points_table():
        params = {**study.fixed, **point}
        for name, value in point.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise _err(f"[sweep.parameters].{name}", f"expected numbers (or strings), got {value!r}")
            if isinstance(study.parameters[name], Mapping):  # a drawn design value
                drawn = round(value) if name == "size" else value
                try:
                    _check_value(study, name, drawn, f"[sweep.parameters].{name}")
                except StudyError as exc:
                    raise StudyError(f"{exc} (a value drawn from the {study.parameters[name]['distribution']} "
                                     "distribution; narrow it)") from None
        try:
            mats = resolve_phases(study.phases, params)
        except InputError as exc:
            at = ", ".join(f"{n}={v!r}" for n, v in point.items()) or "the fixed parameters"
            raise _err("[phases]", f"at {at}: {exc}") from None
        kinds = {isinstance(m, Conductivity) for m in mats.values() if not isinstance(m, Void)}
        if len(kinds) > 1:
            raise _err("[phases]", "mixes conductivity and elastic laws; use one physics per study")


def memory_estimate(study: Study, workers: int = 1) -> int:
    """Estimated peak bytes of ``workers`` concurrent samples (see :mod:`stochhom.study.resources`)."""
    from .resources import memory_estimate as _estimate

    return _estimate(study, workers)


def check_resources(study: Study, workers: int = 1, memory: int | None = None) -> int:
    """Refuse a study too large for this machine (see :func:`stochhom.study.resources.check_resources`)."""
    from .resources import check_resources as _check

    return _check(study, workers, memory)


def load_study(path: str | Path) -> Study:
    """Read and validate a study TOML file.

    Raises
    ------
    InputError
        Missing file, invalid TOML, or an invalid key (named with its table).
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"study file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: invalid TOML ({exc})") from None
    return study_from_dict(data, base=path.parent, name=path.stem)
