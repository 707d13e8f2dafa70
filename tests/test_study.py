"""Study files, parameter sweeps, resumption after SIGKILL, Dask, and ensemble homogenization."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import kill_once_stored

import stochhom as sh
from stochhom.errors import InputError
from stochhom.study import load_study, run_sweep, study_from_dict
from stochhom.study.sweep import SweepStoreError

#: Per-sample timings: the only variables that differ between runs of the same study.
TIMINGS = ["solve_time", "warmup_time"]

BASE = {
    "study": {"output": "out.zarr", "seed": 3},
    "generator": {"name": "gaussian", "shape": [24, 24], "correlation_length": 2.5},
    "sweep": {"replicates": 3, "parameters": {"volume_fraction": [0.2, 0.4], "contrast": [10.0, 100.0]}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
}


def _study(tmp_path: Path, **changes) -> sh.study.Study:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for key, value in changes.items():
        table, _, field = key.partition("__")
        if field:
            data[table] = {**data[table], field: value}
        else:
            data[table] = value
    return study_from_dict(data, base=tmp_path)


def _toml(study: dict, path: Path) -> Path:
    lines = []

    def value(v):
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    for table in ("study", "generator", "sweep", "solver"):
        if table not in study:
            continue
        lines.append(f"[{table}]")
        for k, v in study[table].items():
            if not isinstance(v, dict):
                lines.append(f"{k} = {value(v)}")
        for k, v in study[table].items():
            if isinstance(v, dict):
                lines.append(f"[{table}.{k}]")
                lines += [f"{kk} = {value(vv)}" for kk, vv in v.items()]
    for label, t in study["phases"].items():
        lines.append(f"[phases.{label}]")
        lines += [f"{k} = {value(v)}" for k, v in t.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------ schema
@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"extra": {}}, r"study file: unknown key\(s\) \['extra'\]"),
        ({"study": {"seed": 1}}, r"\[study\]: missing required key\(s\) \['output'\]"),
        ({"generator__name": "lava"}, r"\[generator\].name: unknown generator 'lava'; allowed: \[.*'gaussian'"),
        ({"generator__shape": [24]}, r"\[generator\].shape: expected 2 or 3 positive integers"),
        ({"sweep__design": "random"},
         r"\[sweep\].design: unknown design 'random'; allowed: \['grid', 'lhs', 'sobol'\]"),
        ({"sweep__design": "lhs"}, r"\[sweep\].points: a lhs design needs the number of points"),
        ({"sweep__replicates": 0}, r"\[sweep\].replicates: must be > 0"),
        ({"sweep__parameters": {"volume_fraction": [0.3], "contrast": [10.0, -2.0]}},
         r"\[phases\]: at volume_fraction=0.3, contrast=-2.0: .*k must be finite and > 0"),
        ({"generator__correlation_length": [2.0, 3.0]},
         r"\[generator\].correlation_length: expected a number or a string, got \[2.0, 3.0\]"),
        ({"phases": {"0": {"law": "IsotropicElastic", "E": 1.0, "nu": 0.3},
                     "1": {"law": "Conductivity", "k": "contrast"}}},
         r"\[phases\]: mixes conductivity and elastic laws"),
        ({"sweep__parameters": {"volume_fraction": [0.3, [0.4]], "contrast": [10.0]}},
         r"\[sweep.parameters\].volume_fraction: grid values must be numbers or strings"),
        ({"sweep__replicates": 2.5}, r"\[sweep\].replicates: expected an integer"),
        ({"sweep__parameters": {"volume_fraction": 0.3}}, r"volume_fraction: a grid needs a non-empty list"),
        ({"sweep__parameters": {"volume_fraction": [0.2, 0.2]}}, "repeated values"),
        ({"sweep__parameters": {"viscosity": [1.0, 2.0]}}, r"\['viscosity'\] are neither parameters of generator"),
        ({"phases": {"0": {"law": "Conductivity", "k": "kappa"}, "1": {"law": "Conductivity", "k": "contrast"}}},
         r"expressions use \['kappa'\]"),
        ({"phases": {"0": {"law": "Plastic"}}}, r"\[phases.0\].law: unknown or missing law 'Plastic'"),
        ({"solver": {"scheme": "fast"}}, r"\[solver\].scheme: unknown scheme 'fast'; allowed"),
        ({"solver": {"tol": 2.0}}, r"\[solver\].tol: must lie in \(0, 1\)"),
        ({"solver": {"precision": "high"}}, r"\[solver\]: unknown key\(s\) \['precision'\]"),
    ],
)
def test_study_errors_name_the_key(tmp_path, change, match) -> None:
    with pytest.raises(InputError, match=match):
        _study(tmp_path, **change)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"contrast": {"distribution": "weibull", "low": 1, "high": 2}}, r"unknown distribution 'weibull'"),
        ({"contrast": {"low": 5.0, "high": 1.0}}, "low must be below high"),
        ({"contrast": {"distribution": "normal", "mean": 1.0}}, r"missing required key\(s\) \['std'\]"),
        ({"contrast": [1.0, 2.0]}, "needs a table like"),
    ],
)
def test_design_parameter_errors(tmp_path, params, match) -> None:
    with pytest.raises(InputError, match=match):
        _study(tmp_path, sweep={"design": "lhs", "points": 4, "parameters": params})


def test_missing_and_invalid_study_files(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_study(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\noutput = 1")
    with pytest.raises(InputError, match="invalid TOML"):
        load_study(bad)


def test_plans(tmp_path) -> None:
    grid = _study(tmp_path)
    pts = grid.points_table()
    assert pts == [{"volume_fraction": a, "contrast": b} for a in (0.2, 0.4) for b in (10.0, 100.0)]
    samples = grid.samples()
    assert len(samples) == 12 and samples[7] == {"sample": 7, "point": 2, "replicate": 1,
                                                 "params": {"correlation_length": 2.5, "volume_fraction": 0.4,
                                                            "contrast": 10.0}}
    for design in ("lhs", "sobol"):
        st = _study(tmp_path, sweep={"design": design, "points": 64, "replicates": 1, "parameters": {
            "volume_fraction": {"low": 0.1, "high": 0.5},
            "contrast": {"distribution": "loguniform", "low": 1.0, "high": 1000.0}}})
        table = st.points_table()
        vf = np.array([p["volume_fraction"] for p in table])
        c = np.array([p["contrast"] for p in table])
        assert len(table) == 64 and vf.min() >= 0.1 and vf.max() <= 0.5 and c.min() >= 1 and c.max() <= 1000
        # a space-filling design: every quarter of each range holds a quarter of the points
        assert np.all(np.histogram(vf, bins=4, range=(0.1, 0.5))[0] == 16)
        assert np.all(np.histogram(np.log10(c), bins=4, range=(0, 3))[0] == 16)


def test_hash_covers_the_results_not_the_output(tmp_path) -> None:
    a = _study(tmp_path)
    assert _study(tmp_path, study={"output": "elsewhere.zarr", "seed": 3}).hash() == a.hash()
    assert _study(tmp_path, study={"output": "out.zarr", "seed": 4}).hash() != a.hash()
    assert _study(tmp_path, solver={"workers": 2}).hash() == a.hash()
    assert _study(tmp_path, solver={"tol": 1e-5}).hash() != a.hash()


# ------------------------------------------------------------------------------ sweeps
def test_sweep_is_independent_of_workers_and_matches_the_api(tmp_path) -> None:
    serial = run_sweep(_study(tmp_path, study={"output": str(tmp_path / "a.zarr"), "seed": 3}), workers=1,
                       progress=False)
    parallel = run_sweep(_study(tmp_path, study={"output": str(tmp_path / "b.zarr"), "seed": 3}), workers=2,
                         progress=False)
    assert serial.drop_vars(TIMINGS).identical(parallel.drop_vars(TIMINGS))
    assert int(serial["done"].sum()) == 12 and np.all(serial["converged"].values == 1)
    # the same samples through the Python API: generate(samples=[k]) with the study seed
    k = 7
    ens = sh.generate("gaussian", (24, 24), samples=[k], rng=3, volume_fraction=0.4, correlation_length=2.5)
    assert int(ens["seed"].values[0]) == int(serial["seed"].values[k])
    res = sh.homogenize(ens.isel(sample=0), [sh.Conductivity(1.0), sh.Conductivity(10.0)])
    np.testing.assert_allclose(serial["conductivity"].values[k], res.effective, rtol=1e-12)


def test_changed_study_is_refused_unless_restart(tmp_path) -> None:
    out = {"output": str(tmp_path / "s.zarr"), "seed": 3}
    run_sweep(_study(tmp_path, study=out, sweep={"replicates": 1, "parameters": {"volume_fraction": [0.3],
                                                                                 "contrast": [10.0]}}),
              workers=1, progress=False)
    changed = _study(tmp_path, study=out, sweep={"replicates": 2, "parameters": {"volume_fraction": [0.3],
                                                                                 "contrast": [10.0]}})
    with pytest.raises(SweepStoreError, match=r"different study \(changed: replicates\).*--restart"):
        run_sweep(changed, workers=1, progress=False)
    ds = run_sweep(changed, workers=1, progress=False, restart=True)
    assert ds.sizes["sample"] == 2


def test_foreign_and_unwritable_outputs(tmp_path) -> None:
    foreign = tmp_path / "mine.zarr"
    xr.Dataset({"a": ("x", [1.0])}).to_zarr(foreign, zarr_format=2, consolidated=False)
    with pytest.raises(SweepStoreError, match="not a stochhom sweep store"):
        run_sweep(_study(tmp_path, study={"output": str(foreign)}), workers=1, progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SweepStoreError, match="cannot write the output store"):
        run_sweep(_study(tmp_path, study={"output": str(blocker / "s.zarr")}), workers=1, progress=False)


def test_failing_sample_is_recorded_and_does_not_abort(tmp_path) -> None:
    """Contrast 1e12 is beyond float64 (the precision guard): those samples fail, the rest run."""
    st = _study(tmp_path, study={"output": str(tmp_path / "f.zarr")},
                sweep={"replicates": 2, "parameters": {"volume_fraction": [0.3], "contrast": [10.0, 1e12]}})
    messages = []
    ds = run_sweep(st, workers=1, progress=False, log=messages.append)
    conv = ds["converged"].values
    assert list(conv) == [1, 1, 0, 0] and int(ds["done"].sum()) == 4
    assert all("phase contrast 1e+12" in s for s in ds["status"].values[2:])
    assert np.all(np.isnan(ds["conductivity"].values[2:]))
    assert any("2 of 4 samples failed" in m for m in messages)


def test_non_converged_sample_is_recorded_with_diagnostics(tmp_path) -> None:
    """maxiter = 2 cannot reach tol 1e-6 at contrast 100: the samples fail, keep their
    iteration counts and residuals, and hold NaN (not the unconverged tensor)."""
    st = _study(tmp_path, study={"output": str(tmp_path / "nc.zarr")}, solver={"maxiter": 2},
                sweep={"replicates": 2, "parameters": {"volume_fraction": [0.4], "contrast": [100.0]}})
    ds = run_sweep(st, workers=1, progress=False, log=lambda m: None)
    assert list(ds["converged"].values) == [0, 0] and int(ds["done"].sum()) == 2
    assert all(s.startswith("failed: not converged") for s in ds["status"].values)
    assert np.all(ds["iterations"].values == 2) and np.all(ds["residual"].values > 1e-6)
    assert np.all(np.isnan(ds["conductivity"].values)) and np.all(np.isnan(ds["conductivity_eigenvalues"].values))
    assert np.all(np.isfinite(ds["phase_fraction"].values))


def test_absent_phase_has_fraction_zero_whatever_the_batching(tmp_path) -> None:
    """A rare phase is absent from most small SVEs: its fraction is 0, never NaN, and the
    store does not depend on how samples were grouped into writes."""
    data = {**BASE, "study": {"output": str(tmp_path / "a.zarr"), "seed": 1},
            "generator": {"name": "boolean", "shape": [16, 16], "radius": 1.5},
            "sweep": {"replicates": 6, "parameters": {"volume_fraction": [0.002], "contrast": [10.0]}}}
    one = run_sweep(study_from_dict(data), workers=1, progress=False)
    pf = one["phase_fraction"].values
    assert np.all(np.isfinite(pf)) and np.any(pf[:, 1] == 0.0)
    data["study"] = {"output": str(tmp_path / "b.zarr"), "seed": 1}
    two = run_sweep(study_from_dict(data), workers=2, progress=False, flush_seconds=1e-9)
    assert one.drop_vars(TIMINGS).identical(two.drop_vars(TIMINGS))


def test_damaged_store_is_refused(tmp_path) -> None:
    import shutil

    st = _study(tmp_path, study={"output": str(tmp_path / "dmg.zarr")})
    run_sweep(st, workers=1, progress=False)
    shutil.rmtree(tmp_path / "dmg.zarr" / "conductivity")
    with pytest.raises(SweepStoreError, match=r"incomplete or damaged store.*missing: \['conductivity'\].*--restart"):
        run_sweep(st, workers=1, progress=False)
    assert run_sweep(st, workers=1, progress=False, restart=True)["conductivity"].notnull().all()
    assert not any(p.name.startswith(".dmg.zarr.creating") for p in tmp_path.iterdir())


def test_dry_run_plans_without_writing(tmp_path) -> None:
    st = _study(tmp_path, study={"output": str(tmp_path / "d.zarr")})
    plan = run_sweep(st, dry_run=True, workers=2)
    assert plan["samples"] == 12 and plan["remaining"] == 12 and plan["seconds_per_sample"] > 0
    assert not (tmp_path / "d.zarr").exists()


def test_sweep_killed_with_sigkill_resumes_bit_for_bit(tmp_path) -> None:
    """A real subprocess running the CLI is killed (SIGKILL, with its workers) once part of
    the samples are stored; running the same command again completes the sweep, and the
    result equals an uninterrupted run: no duplicates, no missing samples."""
    data = {**BASE, "study": {"output": str(tmp_path / "killed.zarr"), "seed": 5},
            "generator": {"name": "gaussian", "shape": [64, 64], "correlation_length": 3.0},
            "sweep": {"replicates": 24, "parameters": {"volume_fraction": [0.3, 0.5], "contrast": [300.0, 3000.0]}}}
    path = _toml(data, tmp_path / "study.toml")
    cmd = [sys.executable, "-m", "stochhom.cli", "sweep", str(path), "--workers", "2", "--quiet",
           "--flush-seconds", "0.1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = kill_once_stored(cmd, tmp_path / "killed.zarr", env)
    store = tmp_path / "killed.zarr"
    assert 0 < done < 96
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    resumed = xr.open_zarr(store, consolidated=False).load()
    fresh = run_sweep(study_from_dict({**data, "study": {"output": str(tmp_path / "fresh.zarr"), "seed": 5}},
                                      base=tmp_path), workers=2, progress=False)
    assert int(resumed["done"].sum()) == 96
    assert resumed.drop_vars(TIMINGS).identical(fresh.drop_vars(TIMINGS))


def test_dask_local_cluster_equals_local_run(tmp_path) -> None:
    pytest.importorskip("distributed")
    a = run_sweep(_study(tmp_path, study={"output": str(tmp_path / "l.zarr"), "seed": 3}), workers=1,
                  progress=False)
    b = run_sweep(_study(tmp_path, study={"output": str(tmp_path / "k.zarr"), "seed": 3}), workers=2,
                  scheduler="local", progress=False)
    assert a.drop_vars(TIMINGS).identical(b.drop_vars(TIMINGS))


def test_sweep_over_sizes_and_elasticity(tmp_path) -> None:
    """The special parameter `size` sets the SVE edge; elastic phases give the stiffness variables."""
    st = study_from_dict({
        "study": {"output": str(tmp_path / "e.zarr"), "seed": 1},
        "generator": {"name": "boolean", "shape": [16, 16], "radius": 2.0, "volume_fraction": 0.3},
        "sweep": {"replicates": 2, "parameters": {"size": [12, 20]}},
        "phases": {"0": {"law": "IsotropicElastic", "E": 1.0, "nu": 0.3}, "1": {"law": "Void"}},
    }, base=tmp_path)
    ds = run_sweep(st, workers=1, progress=False)
    assert list(ds["volume"].values) == [144.0, 144.0, 400.0, 400.0]
    assert ds["stiffness"].shape == (4, 3, 3) and np.all(ds["bulk_modulus"].values > 0)


# ---------------------------------------------------------------------- ensemble homogenization
def test_homogenize_ensemble_with_parameter_dependent_phases() -> None:
    ens = sh.generate("gaussian", (16, 16), n=3, rng=2, volume_fraction=0.3, correlation_length=2.0)
    ens = ens.assign_coords(contrast=("sample", [5.0, 50.0, 500.0]))
    props = sh.homogenize_ensemble(ens, lambda p: [sh.Conductivity(1.0), sh.Conductivity(p["contrast"])])
    for k, c in enumerate([5.0, 50.0, 500.0]):
        ref = sh.homogenize(ens.isel(sample=k), [sh.Conductivity(1.0), sh.Conductivity(c)]).effective
        np.testing.assert_allclose(props["conductivity"].values[k], ref, rtol=1e-12)
    assert list(props["specimen"].values) == list(ens["specimen"].values)
    assert props.attrs["physics"] == "conductivity"
    tables = {0: {"law": "Conductivity", "k": 1.0}, 1: {"law": "Conductivity", "k": "2 * contrast"}}
    via_tables = sh.homogenize_ensemble(ens, tables)
    direct = sh.homogenize(ens.isel(sample=0), [sh.Conductivity(1.0), sh.Conductivity(10.0)]).effective
    np.testing.assert_allclose(via_tables["conductivity"].values[0], direct, rtol=1e-12)


def test_phase_expressions_are_safe() -> None:
    from stochhom.statistics import evaluate_expression

    assert evaluate_expression("2 * a ** 2 + sqrt(b) - min(a, 1)", {"a": 3.0, "b": 16.0}) == 2 * 9 + 4 - 1
    for bad in ("__import__('os')", "a.real", "[1, 2]", "a if a else b"):
        with pytest.raises(InputError):
            evaluate_expression(bad, {"a": 1.0, "b": 2.0})
    with pytest.raises(InputError, match="unknown parameter 'c'"):
        evaluate_expression("c + 1", {"a": 1.0})


@pytest.mark.parametrize("name", ["sweep_contrast.toml", "rve_size.toml"])
def test_example_studies_are_valid(name: str) -> None:
    root = Path(__file__).resolve().parents[1] / "examples"
    study = load_study(root / name)
    assert study.output.parent == root
    assert len(study.samples()) == {"sweep_contrast.toml": 96, "rve_size.toml": 200}[name]
    if name == "rve_size.toml":  # the swept size sets the shape
        assert {study.sample_shape(s["params"]) for s in study.samples()} == {(n, n) for n in (12, 16, 24, 32, 48)}


def test_saving_over_a_sweep_store_is_refused(tmp_path) -> None:
    st = _study(tmp_path, study={"output": str(tmp_path / "keep.zarr")})
    run_sweep(st, workers=1, progress=False)
    ens = sh.generate("gaussian", (8, 8), 1, rng=0)
    with pytest.raises(InputError, match="holds the results of a sweep; write to another path"):
        sh.io.save_dataset(ens, tmp_path / "keep.zarr")
    assert sh.io.open_dataset(tmp_path / "keep.zarr").attrs["kind"] == "stochhom sweep"
    sh.io.save_dataset(ens, tmp_path / "other.zarr")
    sh.io.save_dataset(ens, tmp_path / "other.zarr")  # any other dataset is replaced


def test_sobol_point_count_that_is_not_a_power_of_two_warns_once(tmp_path) -> None:
    import warnings

    params = {"volume_fraction": {"distribution": "uniform", "low": 0.2, "high": 0.4},
              "contrast": {"distribution": "loguniform", "low": 2.0, "high": 50.0}}
    with pytest.warns(UserWarning, match=r"\[sweep\].points = 12: Sobol points are balanced only for powers of 2"):
        st = _study(tmp_path, sweep={"design": "sobol", "points": 12, "parameters": params})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(st.points_table()) == 12  # no second (scipy) warning when the design is drawn
        _study(tmp_path, sweep={"design": "sobol", "points": 16, "parameters": params})  # a power of 2: silent
