"""Validate everything before running anything: a catalogue of bad studies refused at load time."""

from __future__ import annotations

import copy
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stochhom.errors import InputError
from stochhom.microstructure.ensemble import GENERATORS, Range
from stochhom.study import StudyError
from stochhom.study.resources import MAX_SAMPLES, check_resources, memory_estimate, sample_count
from stochhom.study.schema import study_from_dict

BASE: dict[str, Any] = {
    "study": {"output": "out.zarr", "seed": 3},
    "generator": {"name": "gaussian", "shape": [16, 16], "correlation_length": 2.0},
    "sweep": {"design": "grid", "replicates": 2,
              "parameters": {"volume_fraction": [0.3, 0.5], "contrast": [10.0, 100.0]}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
}
ELASTIC = {"0": {"law": "IsotropicElastic", "E": 1.0, "nu": 0.3},
           "1": {"law": "IsotropicElastic", "E": 10.0, "nu": 0.3}}


def _lhs(**params: Any) -> dict[str, Any]:
    return {"design": "lhs", "points": 16, "replicates": 1, "parameters": {"contrast": [10.0], **params}}


def _build(tmp_path: Path, changes: dict[str, Any]) -> Any:
    """BASE with ``changes``: ``table__key`` sets one key (``None`` removes it), ``table`` replaces a table."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if "__" in key:
            table, sub = key.split("__")
            if value is None:
                data[table].pop(sub, None)
            else:
                data[table][sub] = value
        else:
            data[key] = value
    if data["sweep"].get("design", "grid") != "grid":  # a design table's contrast is a distribution
        params = data["sweep"]["parameters"]
        if params.get("contrast") == [10.0]:
            params["contrast"] = {"distribution": "loguniform", "low": 5.0, "high": 50.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return study_from_dict(data, base=tmp_path)


BAD: list[tuple[str, dict[str, Any], type, str]] = [
    # --- fixed generator parameters out of range
    ("correlation_length negative", {"generator__correlation_length": -3.0}, StudyError,
     r"\[generator\].correlation_length: correlation_length = -3.0 is outside the allowed range \(0, inf\)"),
    ("correlation_length zero", {"generator__correlation_length": 0}, StudyError,
     r"correlation_length = 0 .*\(0, inf\)"),
    ("fixed volume_fraction above 1",
     {"generator__volume_fraction": 1.5, "sweep__parameters": {"contrast": [10.0]}}, StudyError,
     r"\[generator\].volume_fraction: volume_fraction = 1.5 is outside the allowed range \(0, 1\)"),
    ("fixed volume_fraction negative",
     {"generator__volume_fraction": -0.1, "sweep__parameters": {"contrast": [10.0]}}, StudyError,
     r"volume_fraction = -0.1 is outside the allowed range \(0, 1\)"),
    ("fixed volume_fraction as a string",
     {"generator__volume_fraction": "half", "sweep__parameters": {"contrast": [10.0]}}, StudyError,
     r"volume_fraction = 'half': expected a number in \(0, 1\)"),
    ("boolean radius negative",
     {"generator": {"name": "boolean", "shape": [16, 16], "radius": -1.0}}, StudyError,
     r"\[generator\].radius: radius = -1.0 is outside .* \(0, inf\)"),
    ("voronoi n_grains not an integer",
     {"generator": {"name": "voronoi", "shape": [16, 16], "n_grains": 2.5}, "sweep__parameters": {"contrast": [10.0]}},
     StudyError, r"n_grains = 2.5 is outside the allowed range integers in \[1, inf\)"),
    ("fibres aspect ratio below 1",
     {"generator": {"name": "fibres", "shape": [16, 16], "aspect_ratio": 0.5}}, StudyError,
     r"aspect_ratio = 0.5 is outside the allowed range \[1, inf\)"),
    # --- swept grid values out of range
    ("grid volume_fraction above 1", {"sweep__parameters": {"volume_fraction": [0.3, 1.5], "contrast": [10.0]}},
     StudyError, r"\[sweep.parameters\].volume_fraction: volume_fraction = 1.5 is outside .*\(0, 1\)"),
    ("grid volume_fraction 0", {"sweep__parameters": {"volume_fraction": [0.0, 0.5], "contrast": [10.0]}},
     StudyError, r"volume_fraction = 0.0 is outside the allowed range \(0, 1\)"),
    ("grid correlation_length negative",
     {"generator__correlation_length": None,
      "sweep__parameters": {"correlation_length": [2.0, -1.0], "volume_fraction": [0.3], "contrast": [10.0]}},
     StudyError, r"\[sweep.parameters\].correlation_length: correlation_length = -1.0"),
    # --- distributions whose support leaves the valid range
    ("lhs normal volume_fraction wide",
     {"sweep": _lhs(volume_fraction={"distribution": "normal", "mean": 0.5, "std": 0.4})}, StudyError,
     r"\[sweep.parameters\].volume_fraction: the normal distribution \(mean = 0.5, std = 0.4\) puts .* outside "
     r"the valid range \(0, 1\)"),
    ("sobol normal volume_fraction near 0",
     {"sweep": {**_lhs(volume_fraction={"distribution": "normal", "mean": 0.05, "std": 0.05}), "design": "sobol"}},
     StudyError, r"normal distribution .* outside the valid range \(0, 1\) of volume_fraction"),
    ("lhs uniform volume_fraction beyond 1",
     {"sweep": _lhs(volume_fraction={"distribution": "uniform", "low": 0.5, "high": 1.2})}, StudyError,
     r"the uniform distribution \(low = 0.5, high = 1.2\) reaches outside the valid range \(0, 1\)"),
    ("lhs lognormal volume_fraction above 1",
     {"sweep": _lhs(volume_fraction={"distribution": "lognormal", "median": 0.5, "sigma": 1.0})}, StudyError,
     r"lognormal distribution .* outside the valid range \(0, 1\)"),
    ("lhs normal correlation_length below 0",
     {"generator__correlation_length": None,
      "sweep": _lhs(volume_fraction={"distribution": "uniform", "low": 0.2, "high": 0.4},
                    correlation_length={"distribution": "normal", "mean": 1.0, "std": 1.0})}, StudyError,
     r"correlation_length: the normal distribution .* \(0, inf\)"),
    ("lhs on an integer parameter",
     {"generator": {"name": "voronoi", "shape": [16, 16]},
      "sweep": _lhs(n_grains={"distribution": "uniform", "low": 2, "high": 8})}, StudyError,
     r"\[sweep.parameters\].n_grains: a lhs design draws real numbers, but n_grains must be one of the integers"),
    # --- swept size
    ("size negative", {"sweep__parameters": {"size": [-16], "volume_fraction": [0.3], "contrast": [10.0]}},
     StudyError, r"\[sweep.parameters\].size: size = -16: the SVE edge must be a positive integer"),
    ("size zero", {"sweep__parameters": {"size": [0, 16], "volume_fraction": [0.3], "contrast": [10.0]}},
     StudyError, r"size = 0: the SVE edge must be a positive integer"),
    ("size a string", {"sweep__parameters": {"size": ["big"], "volume_fraction": [0.3], "contrast": [10.0]}},
     StudyError, r"size = 'big': the SVE edge must be a positive integer"),
    ("size not an integer", {"sweep__parameters": {"size": [16.5], "volume_fraction": [0.3], "contrast": [10.0]}},
     StudyError, r"size = 16.5: the SVE edge must be a positive integer"),
    ("fixed size negative", {"generator__size": -8}, StudyError, r"\[generator\].size: size = -8"),
    ("lhs size below 1",
     {"sweep": _lhs(size={"distribution": "uniform", "low": 0.0, "high": 16.0},
                    volume_fraction={"distribution": "uniform", "low": 0.2, "high": 0.4})}, StudyError,
     r"\[sweep.parameters\].size: the uniform distribution .* reaches outside .*\[1, inf\)"),
    # --- phases vs the labels the generator produces
    ("phase for a label never produced",
     {"phases": {**BASE["phases"], "2": {"law": "Conductivity", "k": 5.0}}}, StudyError,
     r"\[phases.2\]: generator 'gaussian' never produces label\(s\) \[2\] .*\(it produces \[0, 1\]\)"),
    ("produced label without a phase",
     {"phases": {"0": {"law": "Conductivity", "k": "contrast"}}}, StudyError,
     r"\[phases\]: generator 'gaussian' produces label\(s\) \[1\] .* but the study has no phase for them"),
    ("voronoi grains without phases",
     {"generator": {"name": "voronoi", "shape": [16, 16], "n_grains": 4}, "sweep__parameters": {"contrast": [10.0]}},
     StudyError, r"generator 'voronoi' produces label\(s\) \[2, 3\]"),
    # --- pipeline targets
    ("unknown surrogate target", {"surrogate": {"targets": ["conductivity_eigenvalue_0"]}}, StudyError,
     r"\[surrogate\].targets: unknown target 'conductivity_eigenvalue_0' for a 2D conductivity study"),
    ("elastic target of a conductivity study", {"surrogate": {"targets": ["bulk_modulus"]}}, StudyError,
     r"unknown target 'bulk_modulus'"),
    ("tensor of the other physics", {"surrogate": {"targets": ["stiffness"]}}, StudyError,
     r"'stiffness' is the tensor of elasticity, but this study computes conductivity"),
    ("component out of range", {"surrogate": {"targets": ["conductivity_0_2"]}}, StudyError,
     r"unknown target 'conductivity_0_2'"),
    ("below-diagonal component", {"surrogate": {"targets": ["conductivity_1_0"]}}, StudyError,
     r"unknown target 'conductivity_1_0'"),
    ("phase fraction of a missing phase", {"surrogate": {"targets": ["phase_fraction_2"]}}, StudyError,
     r"unknown target 'phase_fraction_2'"),
    ("unknown rve target", {"rve": {"targets": ["conductivity"]}}, StudyError,
     r"\[rve\].targets: unknown target 'conductivity' .*whole tensors are surrogate targets only"),
    ("elastic study with a conductivity target",
     {"phases": ELASTIC, "sweep__parameters": {"volume_fraction": [0.3]}, "surrogate": {"targets": ["conductivity"]}},
     StudyError, r"'conductivity' is the tensor of conductivity, but this study computes elasticity"),
    # --- memory and sample count
    ("3D shape beyond memory", {"generator__shape": [4096, 4096, 4096]}, StudyError,
     r"\[generator\].shape: one sample of shape \[4096, 4096, 4096\] \(conductivity\) needs about .* GiB of "
     r"memory; the limit is .* GiB \(80% of .* GiB physical memory\)"),
    ("2D shape beyond memory", {"generator__shape": [65536, 65536]}, StudyError, r"needs about .* GiB of memory"),
    ("swept size beyond memory",
     {"sweep__parameters": {"size": [16, 8192], "volume_fraction": [0.3]},
      "phases": ELASTIC, "generator__shape": [16, 16, 16]}, StudyError,
     r"\[sweep.parameters\].size: one sample of shape \[8192, 8192, 8192\] \(elasticity\) needs about"),
    ("absurd replicates", {"sweep__replicates": 1_000_000_000}, StudyError,
     r"\[sweep\]: 4,000,000,000 samples \(points x replicates\) exceed the limit of 10,000,000"),
    ("absurd lhs points", {"sweep": {**_lhs(volume_fraction={"distribution": "uniform", "low": 0.2, "high": 0.4}),
                                     "points": 10**9}}, StudyError, r"exceed the limit of 10,000,000 samples"),
    # --- solver options
    ("device without the torch backend", {"solver": {"device": "cuda"}}, StudyError,
     r"\[solver\].device: applies to backend = \"torch\" only"),
    ("unknown backend", {"solver": {"backend": "cupy"}}, StudyError, r"\[solver\].backend: allowed"),
]


@pytest.mark.parametrize(("changes", "kind", "match"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_study_is_refused_at_load(tmp_path, changes, kind, match) -> None:
    with pytest.raises(kind, match=match):
        _build(tmp_path, changes)
    assert not (tmp_path / "out.zarr").exists()  # nothing was written


def test_catalogue_is_large_enough() -> None:
    assert len(BAD) >= 25
    assert all(issubclass(kind, InputError) for _, _, kind, _ in BAD)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"sweep__parameters": {"volume_fraction": [0.5], "contrast": [10.0]}},
        {"generator__volume_fraction": 0.5, "sweep__parameters": {"contrast": [10.0]}},
        {"sweep": _lhs(volume_fraction={"distribution": "normal", "mean": 0.5, "std": 0.05})},
        {"sweep": {**_lhs(volume_fraction={"distribution": "uniform", "low": 0.01, "high": 0.99}), "design": "sobol"}},
        {"sweep": _lhs(volume_fraction={"distribution": "lognormal", "median": 0.3, "sigma": 0.1})},
        {"sweep__parameters": {"size": [8, 16.0], "volume_fraction": [0.3], "contrast": [10.0]}},
        {"sweep": _lhs(size={"distribution": "uniform", "low": 8, "high": 24},
                       volume_fraction={"distribution": "uniform", "low": 0.2, "high": 0.4})},
        {"generator": {"name": "voronoi", "shape": [16, 16], "n_grains": 2}, "sweep__parameters": {"contrast": [10.0]}},
        {"generator": {"name": "boolean", "shape": [16, 16], "radius": 2.0, "radius_std": 0.0}},
        {"surrogate": {"targets": ["conductivity_eigenvalues_1", "log_conductivity_0_1", "phase_fraction_1",
                                   "conductivity", "anisotropy_index"]}, "rve": {"targets": ["conductivity_0_0"]}},
        {"phases": ELASTIC, "sweep__parameters": {"volume_fraction": [0.3]},
         "surrogate": {"targets": ["bulk_modulus", "log_shear_modulus", "stiffness_2_2", "stiffness"]}},
        {"sweep__replicates": MAX_SAMPLES // 4},
    ],
    ids=["base", "volume_fraction 0.5", "fixed volume_fraction 0.5", "narrow normal", "uniform near the edges",
         "narrow lognormal", "integral float size", "lhs size", "voronoi two grains", "radius_std 0",
         "conductivity targets", "elastic targets", "replicates at the cap"],
)
def test_valid_edge_values_load(tmp_path, changes) -> None:
    study = _build(tmp_path, changes)
    assert sample_count(study) == len(study.points_table()) * study.replicates


def test_range_describes_and_contains() -> None:
    r = Range(1.0, None, closed_low=True, integer=True)
    assert r.describe() == "integers in [1, inf)"
    assert r.contains(1) and r.contains(4.0) and not r.contains(0) and not r.contains(2.5)
    assert not Range(0.0, 1.0).contains(float("nan"))
    assert GENERATORS["gaussian"].produced_labels({"volume_fraction": [0.2, 0.3]}) == {0, 1, 2}
    with pytest.raises(InputError, match=r"volume_fraction = 1.2 is outside the allowed range \(0, 1\)"):
        GENERATORS["boolean"].check_params({"volume_fraction": 1.2})


def test_memory_estimate_formula_and_workers(tmp_path) -> None:
    study = _build(tmp_path, {"generator__shape": [64, 64]})
    n = 64 * 64  # conductivity 2D: ne = 2, m = 1, both load cases in one batch
    assert memory_estimate(study) == n * (8 * 2 * (3 * 2 + 2) + 128)
    assert memory_estimate(study, workers=4) == 4 * memory_estimate(study)
    with pytest.raises(StudyError, match=r"for 4 workers at once; the limit is"):
        check_resources(study, workers=4, memory=memory_estimate(study))
    assert check_resources(study, workers=1, memory=2 * memory_estimate(study)) == memory_estimate(study)
    f32 = _build(tmp_path, {"generator__shape": [64, 64], "solver": {"dtype": "float32"}})
    assert memory_estimate(f32) < memory_estimate(study)


@pytest.mark.parametrize(("shape", "phases"), [([128, 128], None), ([24, 24, 24], ELASTIC)])
def test_memory_estimate_bounds_the_measured_peak(tmp_path, shape, phases) -> None:
    from stochhom.study.sweep import _one

    changes: dict[str, Any] = {"generator__shape": shape, "sweep__parameters": {"volume_fraction": [0.4],
                                                                                "contrast": [10.0]}}
    if phases:
        changes.update(phases=phases, sweep__parameters={"volume_fraction": [0.4]})
    study = _build(tmp_path, changes)
    params = study.samples()[0]["params"]
    _one(study, 0, params, 1)  # warm-up: compiled kernels, FFT plans
    tracemalloc.start()
    try:
        record = _one(study, 0, params, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record["converged"]
    est = memory_estimate(study)
    assert peak <= est <= 4 * peak, (peak, est)
    assert np.isfinite(est)


def test_shape_memory_for_generate() -> None:
    from stochhom.study.resources import check_memory, shape_memory

    assert shape_memory([32, 32], solve=False) == 32 * 32 * 128
    assert shape_memory([32, 32, 32], "elasticity") > shape_memory([32, 32, 32], "conductivity")
    with pytest.raises(InputError, match=r"--shape: a 4096\^3 ensemble needs about .* GiB of memory; the limit is"):
        check_memory(shape_memory([4096] * 3, solve=False), "a 4096^3 ensemble", "--shape")
    check_memory(shape_memory([16, 16]), "a 16^2 sample")
