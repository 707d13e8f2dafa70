r"""The ``[structure]`` table of a study file and the ``structure`` stage of ``stochhom run``.

::

    [structure]
    part = "cantilever"              # "cantilever", "plate", "plate_with_hole" or "file"
    # path = "beam.msh"              # with part = "file": a mesh meshio reads, boundaries tagged
    dimensions = { length = 10.0, height = 1.0 }     # the part function's lengths
    mesh = { nx = 40, ny = 8 }       # its element counts (n_angle, n_radial for the hole)
    fixed = { left = "all" }         # elasticity: held components per named boundary
    traction = { right = [0.0, -0.01] }   # uniform tractions, in the phases' stiffness unit
    # conduction: temperature = { left = 0.0 }, flux = { right = 1.0 }, source = 0.0
    quantity = { kind = "displacement", point = [10.0, 0.5], component = 1 }
    model = "gpr"                    # the whole-tensor surrogate to use (default: the first)
    samples = 128                    # macro fields N
    functions = 4                    # surrogate posterior functions J
    noise = 2                        # SVE draws K per (field, function)
    [structure.parameters]           # every swept parameter but size: a number or a field
    volume_fraction = { distribution = "normal", center = 0.3, spread = 0.04, correlation_length = 2.0 }
    [structure.concurrent]           # optional: FE^2 on the same fields, to validate the surrogate route
    samples = 24                     # macro fields solved with one SVE per element
    mesh = { nx = 10, ny = 2 }       # a coarser mesh of the same part (default: the part's)
    level = 0.9

The surrogate is the study's whole-tensor model (``[surrogate] targets`` must hold
``"stiffness"`` or ``"conductivity"``); when ``size`` is swept the elements are SVEs of the
largest swept size. Loads are in the units of the phases (a stiffness in GPa and lengths in
the part's unit give tractions in GPa).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["PART_BOUNDARIES", "structure_config", "build_problem", "run_stage"]

#: Named boundaries and accepted keys of each ready part.
PART_BOUNDARIES = {"cantilever": ("left", "right", "bottom", "top", "front", "back"),
                   "plate": ("left", "right", "bottom", "top"),
                   "plate_with_hole": ("left", "bottom", "right", "top", "hole"), "file": ()}
_DIMENSIONS = {"cantilever": {"length", "height", "width"}, "plate": {"length", "height"},
               "plate_with_hole": {"half_width", "radius"}, "file": set()}
_MESH = {"cantilever": {"nx", "ny", "nz"}, "plate": {"nx", "ny"}, "plate_with_hole": {"n_angle", "n_radial",
                                                                                        "grading"}, "file": set()}
_KEYS = {"part", "path", "dimensions", "mesh", "fixed", "traction", "temperature", "flux", "source", "quantity",
         "model", "samples", "functions", "noise", "grid_points", "parameters", "concurrent"}
_FIELD_KEYS = {"distribution", "center", "spread", "correlation_length", "model", "nu"}


def _err(where: str, msg: str) -> InputError:
    from ..study.schema import StudyError

    return StudyError(f"[structure]{where}: {msg}")


def _int(v: Any, where: str, low: int) -> int:
    from ..study.pipeline import _int as pipeline_int

    return pipeline_int(v, f"[structure]{where}", low)


def _table(v: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _err(where, f"expected a table, got {v!r}")
    if allowed is not None and set(v) - allowed:
        raise _err(where, f"unknown key(s) {sorted(set(v) - allowed)}; allowed: {sorted(allowed)}")
    return dict(v)


def _boundaries(part: str, names: tuple[str, ...], table: dict[str, Any], where: str) -> None:
    bad = [b for b in table if b not in names]
    if bad:
        raise _err(where, f"the {'mesh' if part == 'file' else part} has no boundary {bad[0]!r}; it has {list(names)}")


def structure_config(study: Any, table: Any, models: list[str], targets: list[str]) -> dict[str, Any]:
    """Validate ``[structure]`` against the study (module docstring); returns the options
    with their defaults. Needs no finite-element library."""
    from ..surrogates.tensor import TENSOR_TARGETS
    from .fields import MacroField
    from .qoi import QUANTITIES, quantity_of_interest

    t = _table(table, "", _KEYS)
    part = t.get("part", "cantilever")
    if part not in PART_BOUNDARIES:
        raise _err(".part", f"unknown part {part!r}; choose one of {sorted(PART_BOUNDARIES)}")
    dims = _table(t.get("dimensions", {}), ".dimensions", _DIMENSIONS[part])
    for k, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise _err(f".dimensions.{k}", f"expected a positive length, got {v!r}")
    mesh = _table(t.get("mesh", {}), ".mesh", _MESH[part])
    for k, v in mesh.items():
        if k != "grading":
            _int(v, f".mesh.{k}", 1)
    boundaries = PART_BOUNDARIES[part]
    part_dim = 3 if part == "cantilever" and "width" in dims else 2
    extra: dict[str, Any] = {}
    if part == "file":
        if not isinstance(t.get("path"), str):
            raise _err(".path", "part = \"file\" needs the mesh file: path = \"part.msh\"")
        from .parts import from_file

        try:
            loaded = from_file(t["path"])
        except InputError as exc:
            raise _err(".path", str(exc)) from None
        boundaries, part_dim = tuple(sorted(loaded.boundaries)), loaded.dim()
        import hashlib

        extra = {"path": t["path"], "mesh_sha256": hashlib.sha256(Path(t["path"]).read_bytes()).hexdigest()}
    elif "path" in t:
        raise _err(".path", f"is for part = \"file\"; the {part} is built from dimensions and mesh")
    if part_dim != study.dim:
        raise _err(".part", f"the {part} is {part_dim}D but the study is {study.dim}D"
                   + (" (give dimensions.width for a 3D cantilever)" if study.dim == 3 and part == "cantilever"
                      else ""))
    physics = study.physics
    tensor = next(k for k, p in TENSOR_TARGETS.items() if p == physics)
    if not models:
        raise _err("", "the structure stage needs a surrogate: [surrogate] models is empty")
    if tensor not in targets:
        raise _err("", f"the elements need whole tensors: add {tensor!r} to [surrogate].targets")
    out: dict[str, Any] = {"part": part, "dimensions": dims, "mesh": mesh, "tensor": tensor, **extra}
    if physics == "elasticity":
        for k in ("temperature", "flux", "source"):
            if k in t:
                raise _err(f".{k}", "is for conduction; this study computes elasticity (use fixed and traction)")
        fixed = _table(t.get("fixed", {}), ".fixed")
        if not fixed:
            raise _err(".fixed", "elasticity needs supports, e.g. fixed = { left = \"all\" }")
        _boundaries(part, boundaries, fixed, ".fixed")
        for b, comps in fixed.items():
            if comps != "all" and not (isinstance(comps, list) and all(isinstance(c, int) and 0 <= c < study.dim
                                                                       for c in comps)):
                raise _err(f".fixed.{b}", f"expected \"all\" or a list of components 0..{study.dim - 1}, got {comps!r}")
        traction = _table(t.get("traction", {}), ".traction")
        _boundaries(part, boundaries, traction, ".traction")
        for b, vec in traction.items():
            if not (isinstance(vec, list) and len(vec) == study.dim
                    and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in vec)):
                raise _err(f".traction.{b}", f"expected a vector of {study.dim} numbers, got {vec!r}")
        out.update(fixed=fixed, traction={b: [float(c) for c in v] for b, v in traction.items()})
    else:
        for k in ("fixed", "traction"):
            if k in t:
                raise _err(f".{k}", "is for elasticity; this study computes conductivity (use temperature, flux, "
                                    "source)")
        temperature = _table(t.get("temperature", {}), ".temperature")
        if not temperature:
            raise _err(".temperature", "conduction needs a prescribed temperature, e.g. temperature = { left = 0.0 }")
        flux = _table(t.get("flux", {}), ".flux")
        for name, tab in ((".temperature", temperature), (".flux", flux)):
            _boundaries(part, boundaries, tab, name)
            for b, v in tab.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise _err(f"{name}.{b}", f"expected a number, got {v!r}")
        source = t.get("source", 0.0)
        if isinstance(source, bool) or not isinstance(source, (int, float)):
            raise _err(".source", f"expected a number, got {source!r}")
        out.update(temperature={b: float(v) for b, v in temperature.items()},
                   flux={b: float(v) for b, v in flux.items()}, source=float(source))
    try:
        q = quantity_of_interest(t.get("quantity", "compliance"))
        q.check(physics, study.dim)
    except InputError as exc:
        raise _err(".quantity", f"{exc} (quantities: {sorted(QUANTITIES)})") from None
    out["quantity"] = q.to_dict()
    model = t.get("model", models[0])
    if model not in models:
        raise _err(".model", f"expected one of the fitted models {models}, got {model!r}")
    out["model"] = model
    out["samples"] = _int(t.get("samples", 128), ".samples", 2)
    out["functions"] = _int(t.get("functions", 4), ".functions", 1)
    out["noise"] = _int(t.get("noise", 2), ".noise", 2)
    if "grid_points" in t:
        out["grid_points"] = _int(t["grid_points"], ".grid_points", 4)
    params = _table(t.get("parameters", {}), ".parameters")
    swept = [n for n in study.parameters if n != "size"]
    unknown = [n for n in params if n not in swept]
    if unknown:
        raise _err(".parameters", f"{unknown[0]!r} is not a swept parameter; the surrogate's inputs are {swept}"
                   + (" (the SVE size is the largest swept one)" if unknown[0] == "size" else ""))
    missing = [n for n in swept if n not in params]
    if missing:
        raise _err(".parameters", f"give every swept parameter a value or a field; missing {missing}")
    parsed = {}
    for name, v in params.items():
        where = f".parameters.{name}"
        if isinstance(v, dict):
            spec = _table(v, where, _FIELD_KEYS)
            try:
                MacroField(**spec)
            except (InputError, TypeError) as exc:
                raise _err(where, str(exc)) from None
            parsed[name] = spec
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            parsed[name] = float(v)
        else:
            raise _err(where, f"expected a number or a field table {{center, spread, correlation_length}}, got {v!r}")
    if sum(isinstance(v, dict) for v in parsed.values()) > 2:
        raise _err(".parameters", "at most two parameters can be random fields")
    out["parameters"] = parsed
    c = _table(t.get("concurrent", {}), ".concurrent", {"samples", "mesh", "level", "functions", "noise"})
    conc = {"samples": _int(c.get("samples", 0), ".concurrent.samples", 0),
            "mesh": _table(c.get("mesh", mesh), ".concurrent.mesh", _MESH[part]),
            "functions": _int(c.get("functions", 5), ".concurrent.functions", 1),
            "noise": _int(c.get("noise", 8), ".concurrent.noise", 2)}
    level = c.get("level", 0.9)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise _err(".concurrent.level", f"expected a level in (0, 1), got {level!r}")
    conc["level"] = float(level)
    if conc["samples"] and conc["functions"] * conc["noise"] < 20:
        raise _err(".concurrent", "functions * noise must be >= 20 (the hierarchical draws per field that the "
                   "direct values are compared with)")
    out["concurrent"] = conc
    return out


def build_problem(cfg: dict[str, Any], physics: str, mesh: dict[str, Any] | None = None) -> Any:
    """The :class:`~stochhom.structure.fe.MacroProblem` of a validated ``[structure]``."""
    from . import parts
    from .fe import MacroProblem

    if cfg["part"] == "file":
        part = parts.from_file(cfg["path"])
    else:
        kwargs = dict(cfg["dimensions"], **(cfg["mesh"] if mesh is None else mesh))
        part = getattr(parts, cfg["part"])(**kwargs)
    if physics == "elasticity":
        return MacroProblem(part, "elasticity", fixed=cfg["fixed"], traction=cfg["traction"])
    return MacroProblem(part, "conductivity", temperature=cfg["temperature"], flux=cfg["flux"], source=cfg["source"])


def _parameters(cfg: dict[str, Any], features: list[str], size: float | None) -> dict[str, Any]:
    from .fields import MacroField

    out: dict[str, Any] = {}
    for name in features:
        if name == "size":
            out[name] = float(size)
        else:
            v = cfg["parameters"][name]
            out[name] = MacroField(**v) if isinstance(v, dict) else float(v)
    return out


def _mesh_arrays(problem: Any) -> dict[str, np.ndarray]:
    return {"points": np.asarray(problem.mesh.p, dtype=float), "cells": np.asarray(problem.mesh.t)}


def run_stage(study: Any, out: Path, cfg: dict[str, Any], props: Any, features: list[str], model: Any,
              say: Any, workers: int = 1, scheduler: str | None = None) -> dict[str, Any]:
    """The ``structure`` stage: the hierarchical route, and the concurrent one when asked;
    writes ``structure.json`` and ``structure.npz`` and returns the record. With a Dask
    ``scheduler`` (as for the sweep), the macro samples of the hierarchical route run on
    the cluster."""
    from ..study.sweep import _dask_client

    with _dask_client(scheduler, workers) as client:
        return _run_stage(study, out, cfg, props, features, model, say, workers, client)


def _run_stage(study: Any, out: Path, cfg: dict[str, Any], props: Any, features: list[str], model: Any,
               say: Any, workers: int, client: Any) -> dict[str, Any]:
    import warnings

    from ..errors import OutOfDomainWarning
    from .concurrent import StudySVE, compare_routes, concurrent
    from .hierarchical import hierarchical

    size = float(np.max(props["size"].values)) if "size" in features else None
    params = _parameters(cfg, features, size)
    domain = {n: (float(np.min(props[n].values)), float(np.max(props[n].values))) for n in features if n != "size"}
    problem = build_problem(cfg, study.physics)
    say(f"  hierarchical: {cfg['samples']} fields x {cfg['functions']} functions x {cfg['noise']} SVE draws on "
        f"{problem.n_elements} elements")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OutOfDomainWarning)
        res = hierarchical(problem, model, params, cfg["quantity"], n_macro=cfg["samples"],
                           n_functions=cfg["functions"], n_noise=cfg["noise"], domain=domain,
                           grid_points=cfg.get("grid_points"), rng=study.seed, workers=workers, client=client)
    record: dict[str, Any] = {"hierarchical": res.to_dict(), "part": cfg["part"], "path": cfg.get("path"),
                              "dimensions": cfg["dimensions"],
                              "mesh": cfg["mesh"], "elements": problem.n_elements, "dofs": int(problem.basis.N),
                              "model": cfg["model"], "tensor": cfg["tensor"], "physics": study.physics,
                              "loads": {k: cfg[k] for k in ("fixed", "traction", "temperature", "flux", "source")
                                        if k in cfg},
                              "size": size, "warnings": sorted({str(w.message) for w in caught})}
    arrays = {"samples": res.samples, "local_mean": res.local_mean, "local_std": res.local_std,
              "example": res.example, "example_local": res.example_local, "field_means": res.field_means,
              **_mesh_arrays(problem)}
    conc = cfg["concurrent"]
    if conc["samples"]:
        cproblem = build_problem(cfg, study.physics, conc["mesh"])
        say(f"  concurrent: {conc['samples']} fields x {cproblem.n_elements} elements, one SVE each")
        # the cache holds SVEs of this very study (generator, phases, solver): keyed by its hash
        cache = out / f"structure_sve_cache_{study.hash()[:12]}.npz"
        for old in out.glob("structure_sve_cache*.npz"):
            if old != cache:
                old.unlink()
        direct = concurrent(cproblem, StudySVE(study), params, cfg["quantity"], n_macro=conc["samples"],
                            rng=study.seed, cache=cache, workers=workers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDomainWarning)
            cond = hierarchical(cproblem, model, params, cfg["quantity"], n_macro=max(conc["samples"], 2),
                                n_functions=conc["functions"], n_noise=conc["noise"], domain=domain,
                                grid_points=cfg.get("grid_points"), rng=study.seed, workers=workers)
        cmp = compare_routes(cond, direct, level=conc["level"])
        record["concurrent"] = {**cmp, "elements": cproblem.n_elements, "mesh": conc["mesh"],
                                "sve_solves": direct.n_sve, "cache_hits": direct.cache_hits,
                                "seconds": direct.seconds + cond.seconds, "values": direct.values.tolist(),
                                "functions": conc["functions"], "noise": conc["noise"]}
        arrays["concurrent_draws"] = cond.samples[: conc["samples"]].reshape(conc["samples"], -1)
        arrays["concurrent_values"] = direct.values
    (out / "structure.json").write_text(json.dumps(record, indent=2, default=_json_default))
    np.savez_compressed(out / "structure.npz", **arrays)
    return record


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serializable: {type(v).__name__}")
