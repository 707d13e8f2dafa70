"""Fields and data out: per-sample tables of a study (``stochhom export``), any saved surrogate
loaded by its marker, and predictions of a saved surrogate from a CSV (``stochhom predict``)
that refuse to extrapolate silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from stochhom.cli import main
from stochhom.errors import InputError
from stochhom.study import run_sweep, study_from_dict
from stochhom.study.export import export_samples, samples_frame
from stochhom.surrogates import PCE
from stochhom.surrogates.bounded import BoundedSurrogate
from stochhom.surrogates.persistence import feature_names, load, predict_table, training_box
from stochhom.surrogates.tensor import TensorSurrogate
from stochhom.surrogates.warping import LogInputs

pytestmark = pytest.mark.filterwarnings("ignore::stochhom.errors.OutOfDomainWarning",
                                        "ignore:Failed to open Zarr store:RuntimeWarning")

STUDY = {
    "study": {"name": "tiny", "output": "res/samples.zarr", "seed": 3},
    "generator": {"name": "gaussian", "shape": [16, 16], "correlation_length": 2.0},
    "sweep": {"replicates": 2, "parameters": {"volume_fraction": [0.3, 0.5], "contrast": [10.0, 50.0]}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
}
SUFFIX = {"csv": ".csv", "netcdf": ".nc", "parquet": ".parquet"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results directory: the sweep store of 8 small SVEs and study.json with declared units."""
    base = tmp_path_factory.mktemp("export")
    run_sweep(study_from_dict({k: dict(v) for k, v in STUDY.items()}, base=base), workers=1, progress=False)
    (base / "res" / "study.json").write_text(json.dumps({"units": {"conductivity": "W/m/K", "length": "um"}}))
    return base / "res"


def _read(path: Path, fmt: str) -> tuple[pd.DataFrame, dict[str, str]]:
    if fmt == "csv":
        lines = path.read_text().splitlines()
        units = json.loads(lines[1].removeprefix("# units: "))
        return pd.read_csv(path, comment="#"), units
    if fmt == "netcdf":
        with xr.open_dataset(path) as ds:
            ds = ds.load()
        return ds.to_dataframe().reset_index(), {str(k): ds[k].attrs["units"] for k in ds.variables}
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    units = {f.name: f.metadata[b"unit"].decode() for f in schema}
    assert json.loads(schema.metadata[b"stochhom.units"]) == units
    return pd.read_parquet(path), units


@pytest.mark.parametrize("fmt", ["csv", "netcdf", "parquet"])
def test_every_format_round_trips_the_store_values_names_and_units(results, tmp_path, fmt) -> None:
    path = export_samples(results, tmp_path / f"s{SUFFIX[fmt]}", format=fmt)
    got, units = _read(path, fmt)
    with xr.open_zarr(results / "samples.zarr") as store:
        ds = store.load()
    assert len(got) == ds.sizes["sample"] == 8
    for col in ("sample", "point", "replicate", "seed", "specimen", "volume_fraction", "contrast", "done",
                "converged", "status", "conductivity_11", "conductivity_12", "conductivity_21", "conductivity_22",
                "conductivity_eigenvalues_0", "conductivity_eigenvalues_1", "iterations_0", "residual_1"):
        assert col in got.columns, col
    np.testing.assert_array_equal(got["seed"], ds["seed"].values)
    np.testing.assert_array_equal(got["replicate"], ds["replicate"].values)
    np.testing.assert_allclose(got["volume_fraction"], ds["volume_fraction"].values, rtol=1e-15)
    np.testing.assert_allclose(got["conductivity_12"], ds["conductivity"].values[:, 0, 1], rtol=1e-15)
    np.testing.assert_allclose(got["conductivity_eigenvalues_1"], ds["conductivity_eigenvalues"].values[:, 1],
                               rtol=1e-15)
    np.testing.assert_array_equal(got["iterations_1"], ds["iterations"].values[:, 1])
    assert got["done"].astype(bool).all() and list(got["status"]) == list(ds["status"].values.astype(str))
    assert units["conductivity_11"] == "W/m/K" and units["conductivity_eigenvalues_0"] == "W/m/K"
    assert units["correlation_length"] == "µm" and units["volume"] == "µm²" and units["solve_time"] == "s"
    assert units["volume_fraction"] == "–" and units["seed"] == ""


def test_only_finished_samples_unless_all(results, tmp_path) -> None:
    copy = tmp_path / "res"
    shutil.copytree(results, copy)
    done = zarr.open_group(str(copy / "samples.zarr"), mode="r+")["done"]
    flags = np.asarray(done[:])
    flags[[1, 6]] = 0
    done[:] = flags
    frame = samples_frame(copy)
    assert list(frame["sample"]) == [0, 2, 3, 4, 5, 7]
    full = samples_frame(copy, all_samples=True)
    assert len(full) == 8 and list(full["done"]) == [bool(f) for f in flags]
    assert main(["export", str(copy), "--all", "--output", str(tmp_path / "all.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "all.csv", comment="#")) == 8
    assert main(["export", str(copy)]) == 0  # default: RESULTS/samples.csv, finished samples only
    assert len(pd.read_csv(copy / "samples.csv", comment="#")) == 6


def test_export_errors_name_the_fix(results, tmp_path, capsys) -> None:
    with pytest.raises(InputError, match="does not exist"):
        export_samples(tmp_path / "nowhere")
    with pytest.raises(InputError, match="neither a results directory"):
        export_samples(tmp_path)
    with pytest.raises(InputError, match="suffix of netcdf but the format asked is csv"):
        export_samples(results, tmp_path / "x.nc", format="csv")
    with pytest.raises(InputError, match="unknown export format"):
        export_samples(results, tmp_path / "x.dat", format="xlsx")
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    assert "stochhom export: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses a format it does not know
        main(["export", str(results), "--format", "xlsx"])


# -- surrogates ------------------------------------------------------------------------------------

def _data(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0.2, 0.5, n), rng.uniform(5.0, 50.0, n)])
    y = 1.0 + 2.0 * X[:, 0] * np.log(X[:, 1]) + 0.01 * rng.standard_normal(n)
    return X, y


def _fit(kind: str):
    from stochhom.surrogates import GPR, SparseGPR

    X, y = _data()
    gpr = GPR(n_restarts=0, max_iter=30, random_state=0)
    if kind == "gpr":
        return gpr.fit(X, y), X
    if kind == "sgpr":
        return SparseGPR(n_inducing=8, max_iter=30, random_state=0).fit(X, y), X
    if kind == "pce":
        return PCE(degree=2).fit(X, y), X
    if kind == "log_inputs":
        return LogInputs(PCE(degree=2), columns=[1]).fit(X, y), X
    if kind == "bounded":
        return BoundedSurrogate(LogInputs(gpr, columns=[1]), bounds=(0.5, 20.0)).fit(X, y), X
    if kind == "bounded_sgpr":  # a wrapped sparse GP: the wrappers load their latent model by class name
        sgpr = SparseGPR(n_inducing=8, max_iter=30, random_state=0)
        return BoundedSurrogate(LogInputs(sgpr, columns=[1]), bounds=(0.5, 20.0)).fit(X, y), X
    T = np.stack([np.diag([a, b]) + 0.1 for a, b in zip(y, 2 * y)])
    return TensorSurrogate(PCE(degree=1), "conductivity", 2, n_draws=50).fit(X, T), X


@pytest.mark.parametrize("kind", ["gpr", "sgpr", "pce", "log_inputs", "bounded", "bounded_sgpr", "tensor"])
def test_load_recognizes_every_saved_surrogate(kind, tmp_path) -> None:
    model, X = _fit(kind)
    model.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert type(back) is type(model)
    np.testing.assert_allclose(np.asarray(back.predict(X[:5])), np.asarray(model.predict(X[:5])), rtol=1e-6,
                               atol=1e-9)
    lo, hi = training_box(back)
    np.testing.assert_allclose(lo, X.min(axis=0), rtol=1e-12)  # physical inputs, also through ln(contrast)
    np.testing.assert_allclose(hi, X.max(axis=0), rtol=1e-12)


def test_load_refuses_what_is_not_a_saved_surrogate(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load(tmp_path / "none")
    with pytest.raises(InputError, match="holds no saved surrogate"):
        load(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "pce.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="does not hold a saved PCE"):
        load(tmp_path / "m")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A results-like folder: surrogates/k__pce plus surrogates.json naming the inputs."""
    base = tmp_path_factory.mktemp("predict")
    model, _ = _fit("pce")
    model.save(base / "surrogates" / "k__pce")
    (base / "surrogates.json").write_text(json.dumps({"features": ["volume_fraction", "contrast"]}))
    return base / "surrogates" / "k__pce"


def test_predict_cli_writes_mean_std_interval_per_output(saved, tmp_path) -> None:
    pts = tmp_path / "points.csv"
    pd.DataFrame({"contrast": [20.0, 40.0], "volume_fraction": [0.3, 0.45], "id": ["a", "b"]}).to_csv(pts, index=False)
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved), "--inputs", str(pts), "--output", str(out), "--level", "0.95"]) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["contrast", "volume_fraction", "id", "extrapolation", "k_mean", "k_std",
                                 "k_lower_95", "k_upper_95"]
    model = load(saved)
    mean, std = model.predict(np.array([[0.3, 20.0], [0.45, 40.0]]), return_std=True)
    np.testing.assert_allclose(got["k_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(got["k_std"], std, rtol=1e-12)
    np.testing.assert_allclose(got["k_upper_95"] - got["k_mean"], 1.959964 * std, rtol=1e-5)
    assert (got["extrapolation"] == 0).all()


def test_predict_refuses_points_outside_the_training_box(saved, tmp_path, capsys) -> None:
    pts = tmp_path / "far.csv"
    pd.DataFrame({"volume_fraction": [0.3, 0.62, 0.4], "contrast": [20.0, 20.0, 60.0]}).to_csv(pts, index=False)
    assert main(["predict", str(saved), "--inputs", str(pts)]) == 2
    err = capsys.readouterr().err
    lo, hi = training_box(load(saved))
    share = 100 * (0.62 - hi[0]) / (hi[0] - lo[0])
    assert "2 of 3 point(s) lie outside the training box" in err
    assert f"input volume_fraction: 0.62, {share:.3g} % of the training range beyond its maximum" in err
    assert "--allow-extrapolation" in err
    assert main(["predict", str(saved), "--inputs", str(pts), "--allow-extrapolation"]) == 0
    table = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert len(table) == 3 and table["extrapolation"].iloc[1] == pytest.approx(share / 100)
    assert table["extrapolation"].iloc[0] == 0.0


def test_predict_gives_the_epistemic_aleatoric_split_of_a_gp(tmp_path) -> None:
    model, X = _fit("gpr")
    frame = pd.DataFrame(X[:4], columns=["a", "b"])
    table = predict_table(model, frame, level=0.5, features=["a", "b"])
    total = np.hypot(table["y_epistemic_std"], table["y_aleatoric_std"])
    np.testing.assert_allclose(table["y_std"], total, rtol=1e-10)
    assert (table["y_lower_50"] < table["y_mean"]).all() and (table["y_mean"] < table["y_upper_50"]).all()


def test_predict_input_errors(saved, tmp_path, capsys) -> None:
    model, _ = _fit("pce")
    assert feature_names(model) is None  # a bare PCE keeps no names
    with pytest.raises(InputError, match="does not keep the names"):
        predict_table(model, pd.DataFrame({"a": [0.3]}))
    with pytest.raises(InputError, match=r"lack the column\(s\) \['contrast'\]"):
        predict_table(model, pd.DataFrame({"volume_fraction": [0.3]}), features=["volume_fraction", "contrast"])
    with pytest.raises(InputError, match="level must lie"):
        predict_table(model, pd.DataFrame({"a": [0.3], "b": [9.0]}), level=1.5, features=["a", "b"])
    bare = tmp_path / "bare"
    model.save(bare)
    pts = tmp_path / "p.csv"
    pts.write_text("volume_fraction,contrast\n0.3,10\n")
    for argv, match in (([str(bare), "--inputs", str(pts)], "keeps no input names"),
                        ([str(saved), "--inputs", str(tmp_path / "missing.csv")], "no such file"),
                        ([str(tmp_path / "nope"), "--inputs", str(pts)], "does not exist"),
                        ([str(saved), "--inputs", str(pts), "--output", str(tmp_path / "o.json")],
                         "unsupported format"),
                        ([str(saved), "--inputs", str(pts), "--level", "0"], "--level must lie")):
        assert main(["predict", *argv]) == 2
        assert match in capsys.readouterr().err
