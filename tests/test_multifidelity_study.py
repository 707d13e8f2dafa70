"""[fidelity.low] in a study: the low-fidelity sweep, co-kriging in every surrogate stage, the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stochhom.study.schema import StudyError, study_from_dict

pytestmark = pytest.mark.filterwarnings("ignore::stochhom.errors.OutOfDomainWarning")

TINY = {
    "study": {"name": "tinymf", "output": "tinymf_results", "seed": 4},
    "generator": {"name": "gaussian", "shape": [32, 32], "correlation_length": 2.0, "voxel_size": 0.5},
    "sweep": {"design": "sobol", "points": 8, "replicates": 2,
              "parameters": {"volume_fraction": {"distribution": "uniform", "low": 0.25, "high": 0.5},
                             "contrast": {"distribution": "loguniform", "low": 5.0, "high": 50.0}}},
    "fidelity": {"low": {"shape": [16, 16], "points": 32, "replicates": 1}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
    "gallery": {"samples": 0},
    "surrogate": {"targets": ["conductivity_eigenvalues_1"], "gpr": {"n_restarts": 0}},
    "propagation": {"n_samples": 128, "n_functions": 8, "sobol_samples": 32},
    "validation": {"n_splits": 3},
}


def _study(tmp_path, **changes):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    data.update(changes)
    return study_from_dict(data, base=tmp_path)


@pytest.fixture(scope="module")
def mf_run(tmp_path_factory):
    from stochhom.study.runner import run_study

    tmp = tmp_path_factory.mktemp("mf")
    messages: list[str] = []
    out = run_study(_study(tmp), workers=1, progress=False, log=messages.append)
    return tmp, out, messages


def test_the_low_fidelity_is_the_same_sve_on_a_coarser_grid(mf_run):
    from stochhom.study import open_store

    _, out, messages = mf_run
    low = open_store(out / "samples_low.zarr").load()
    high = open_store(out / "samples.zarr").load()
    assert low.sizes["sample"] == 32 and high.sizes["sample"] == 16
    assert low.attrs["voxel_size"] == pytest.approx(2 * high.attrs["voxel_size"])  # 16 x 1.0 = 32 x 0.5 um
    assert not np.intersect1d(low["seed"].values, high["seed"].values).size  # other SVEs
    assert any("low fidelity: 32 samples on 16x16 voxels" in m for m in messages)


def test_cokriging_is_cross_validated_on_high_fidelity_points_only(mf_run):
    _, out, _ = mf_run
    info = json.loads((out / "surrogates.json").read_text())
    entry = info["models"]["conductivity_eigenvalues_1__cokriging"]
    ck = entry["cokriging"]
    assert ck["n_low"] == 32 and ck["regressed"] == "log" and 0.0 <= ck["discrepancy_share"] <= 1.0
    assert ck["rho_interval"][0] <= ck["rho"] <= ck["rho_interval"][1]
    cv = pd.read_csv(out / "cv_predictions.csv")
    test = cv[(cv["model"] == "cokriging") & (cv["split"] == "test")]
    assert len(test) == 16 and sorted(test["row"]) == list(range(16))  # every high-fidelity sample once
    # the saved model is the co-kriging model, inside the pipeline's wrappers
    from stochhom.surrogates import load

    model = load(out / "surrogates" / "conductivity_eigenvalues_1__cokriging")
    latent = model
    while hasattr(latent, "estimator_"):
        latent = latent.estimator_
    assert type(latent).__name__ == "CoKriging" and latent.rho_ == ck["rho"]
    prop = json.loads((out / "propagation.json").read_text())["conductivity_eigenvalues_1"]
    assert {"gpr", "cokriging"} <= set(prop) and prop["cokriging"]["samples_outside_bounds"] == 0
    html = (out / "report.html").read_text()
    assert "<h3>Multi-fidelity co-kriging</h3>" in html
    assert 0.0 <= ck["rho_estimation_share"] <= 1.0


def test_the_scatter_of_few_replicated_points_is_reported_with_its_interval(mf_run):
    """8 points x 2 replicates: the pooled scatter, and every ratio to it, come with a 95 % interval
    (the ratio's ends are the value scaled by the scatter's), and the answer says the floor is loose."""
    _, out, _ = mf_run
    info = json.loads((out / "surrogates.json").read_text())
    sc = info["scatter"]["conductivity_eigenvalues_1"]
    lo, hi = sc["scatter_variance_interval"]
    assert lo <= sc["scatter_variance"] <= hi and hi / lo > 2
    assert sc["scatter_std_interval"] == pytest.approx([np.sqrt(lo), np.sqrt(hi)])
    for name in ("gpr", "cokriging"):
        entry = info["models"][f"conductivity_eigenvalues_1__{name}"]
        r_lo, r_hi = entry["rmse_over_scatter_interval"]
        assert r_lo * np.sqrt(hi) == pytest.approx(entry["rmse_over_scatter"] * sc["scatter_std"], rel=1e-9)
        assert r_lo <= entry["rmse_over_scatter"] <= r_hi
        s_lo, s_hi = entry["scatter_ratio_interval"]
        assert s_lo <= entry["scatter_ratio"] <= s_hi
    html = (out / "report.html").read_text()
    assert "a ratio known only to within" in html and "the scatter rests on the replicates of 8 points" in html


def test_a_changed_low_fidelity_starts_its_sweep_over(mf_run):
    from stochhom.study import open_store
    from stochhom.study.runner import run_study

    tmp, out, _ = mf_run
    messages: list[str] = []
    run_study(_study(tmp, fidelity={"low": {"shape": [16, 16], "points": 24}}), workers=1, progress=False,
              log=messages.append)
    assert open_store(out / "samples_low.zarr").sizes["sample"] == 24
    assert any("(its options changed: started over)" in m for m in messages)
    ran = {m.split()[1].rstrip(":") for m in messages if m.endswith("running")}
    assert {"surrogates", "validation"} <= ran and "gallery" not in ran


def test_fidelity_errors(tmp_path):
    cases = [
        ({"fidelity": {"high": {"shape": [64, 64]}}}, r"\[fidelity.high\]: the high fidelity is the study itself"),
        ({"fidelity": {"low": {"shape": [16, 16, 16]}}}, r"\[fidelity.low\].shape: expected 2 integers"),
        ({"fidelity": {"low": {"shape": [16, 8]}}}, r"not \[32, 32\] scaled by one factor"),
        ({"fidelity": {"low": {"points": 8}}}, r"\[fidelity.low\]: expected keys shape \(required\)"),
        ({"fidelity": None, "surrogate": {"models": ["cokriging"]}}, r"declare the low one in \[fidelity.low\]"),
    ]
    for change, match in cases:
        if change.get("fidelity", 0) is None:
            data = {k: v for k, v in TINY.items() if k != "fidelity"}
            data = {**data, **{k: v for k, v in change.items() if k != "fidelity"}}
            with pytest.raises(StudyError, match=match):
                study_from_dict(data, base=tmp_path)
            continue
        with pytest.raises(StudyError, match=match):
            _study(tmp_path, **change)
    grid = {k: v for k, v in TINY.items()}
    grid["sweep"] = {"design": "grid", "replicates": 2,
                     "parameters": {"volume_fraction": [0.3, 0.4], "contrast": [5.0, 50.0]}}
    with pytest.raises(StudyError, match="co-kriging needs a fixed lhs or sobol design"):
        study_from_dict(grid, base=tmp_path)


def test_the_shipped_multifidelity_study_is_valid():
    from pathlib import Path

    from stochhom.study import load_study
    from stochhom.study.pipeline import pipeline_config

    study = load_study(Path(__file__).resolve().parents[1] / "studies" / "multifidelity_2d.toml")
    cfg = pipeline_config(study)
    assert cfg.fidelity_low == {"shape": [64, 64], "points": 64, "replicates": 1}
    assert cfg.models == ["gpr", "cokriging"] and len(study.samples()) == 32
