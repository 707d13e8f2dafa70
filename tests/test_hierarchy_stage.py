"""The boundary-condition hierarchy in the statistics and the runner, the fitted-model
stage, the window default of the boundary condition in studies, and studies without
surrogates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import stochhom as sh
from stochhom.errors import InputError
from stochhom.statistics.rve import bracket_size, hierarchy_statistics
from stochhom.study import study_from_dict
from stochhom.study.runner import run_study
from stochhom.study.schema import StudyError
from stochhom.study.sweep import open_store

SCAN = Path(__file__).parents[1] / "examples" / "scan_2d.tif"
COND = [sh.Conductivity(1.0), sh.Conductivity(10.0)]

RVE_STUDY = {
    "study": {"name": "hier", "output": "hier_results", "seed": 3},
    "generator": {"name": "boolean", "shape": [16, 16], "volume_fraction": 0.3, "radius": 2.0},
    "sweep": {"replicates": 4, "parameters": {"size": [8, 12, 16]}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 10.0}},
    "solver": {"discretization": "q1", "tol": 1e-10},
    "gallery": {"samples": 1},
    "rve": {"targets": ["conductivity_0_0", "conductivity_eigenvalues_1"], "epsilon": 0.05,
            "boundary": ["kubc", "periodic", "subc"], "boundary_replicates": 3},
    "surrogate": {"models": []},
}


def _props(values: np.ndarray, volumes: np.ndarray) -> xr.Dataset:
    n = values.size
    eff = np.zeros((n, 2, 2))
    eff[:, 0, 0] = eff[:, 1, 1] = values
    return xr.Dataset({"conductivity": (("sample", "i", "j"), eff), "volume": ("sample", volumes),
                       "converged": ("sample", np.ones(n, dtype=np.int8))}, attrs={"physics": "conductivity"})


def test_hierarchy_statistics_bias_gap_and_order() -> None:
    vol = np.repeat([16.0, 64.0], 3)
    per = np.array([2.0, 2.2, 2.4, 2.0, 2.1, 2.2])
    props = {"subc": _props(per - np.array([0.4, 0.4, 0.4, 0.1, 0.1, 0.1]), vol), "periodic": _props(per, vol),
             "kubc": _props(per + np.array([0.6, 0.6, 0.6, 0.1, 0.1, -0.3]), vol)}  # the last SVE breaks the order
    h = hierarchy_statistics(props, "conductivity_0_0")
    np.testing.assert_allclose(h["mean"].sel(condition="periodic").values, [2.2, 2.1])
    assert h.attrs["effective_estimate"] == pytest.approx(2.1)
    np.testing.assert_allclose(h["bias"].sel(condition="subc").values, [(1.8 - 2.1) / 2.1, (2.0 - 2.1) / 2.1])
    # the spread of the means over the conditions: at 64 the periodic mean (2.1) is the largest
    np.testing.assert_allclose(h["gap"].values, [1.0 / 2.2, 0.1 / 2.1])
    assert float(h["ordered"]) == pytest.approx(5 / 6)
    # the bracket: (KUBC - SUBC) / periodic = 1/2.2 at 16 and (2.0667 - 2.0) / 2.1 = 0.032 at 64
    assert bracket_size(h, 0.05) == 64.0 and bracket_size(h, 0.5) == 16.0
    with pytest.raises(InputError, match="different numbers of samples"):
        hierarchy_statistics({"subc": _props(per[:4], vol[:4]), "kubc": _props(per, vol)}, "conductivity_0_0")


def test_mixed_and_periodic_are_not_ordered_against_each_other() -> None:
    vol = np.full(2, 16.0)
    props = {"subc": _props(np.array([1.0, 1.0]), vol), "mixed": _props(np.array([1.5, 1.2]), vol),
             "periodic": _props(np.array([1.4, 1.3]), vol), "kubc": _props(np.array([2.0, 2.0]), vol)}
    assert float(hierarchy_statistics(props, "conductivity_0_0")["ordered"]) == 1.0


@pytest.fixture(scope="module")
def rve_run(tmp_path_factory) -> tuple[Path, object, list[str]]:
    tmp = tmp_path_factory.mktemp("hier")
    study = study_from_dict(RVE_STUDY, base=tmp)
    messages: list[str] = []
    out = run_study(study, workers=1, progress=False, log=messages.append)
    return out, study, messages


def test_runner_hierarchy_orders_every_sve_and_reuses_the_sweeps_images(rve_run) -> None:
    out, _, messages = rve_run
    h = json.loads((out / "hierarchy.json").read_text())
    assert h["conditions"] == ["subc", "periodic", "kubc"]  # softest first, whatever the order given
    assert h["samples"] == 9 and all(v == 0 for v in h["failed"].values())
    props = open_store(out / "samples.zarr").load()
    for target in ("conductivity_0_0", "conductivity_eigenvalues_1"):
        r = h["targets"][target]
        assert r["ordered"] == 1.0
        assert r["volumes"] == [64.0, 144.0, 256.0]
        lo, per, hi = (np.array(r[c]["mean"]) for c in h["conditions"])
        assert np.all(lo <= per) and np.all(per <= hi)
        assert r["reference"] == "periodic" and r["effective_estimate"] == pytest.approx(per[-1])
        np.testing.assert_allclose(r["periodic"]["bias"], per / per[-1] - 1.0, rtol=1e-12)
        assert all(c == 3 for c in r["subc"]["count"])
    # the hierarchy's periodic SVEs are the sweep's own (same seeds, same Q1 solver): equal means
    col = props["conductivity"].values[:, 0, 0]
    size = props["size"].values
    first = np.concatenate([np.flatnonzero(size == s)[:3] for s in (8, 12, 16)])
    means = [col[first][size[first] == s].mean() for s in (8, 12, 16)]
    np.testing.assert_allclose(h["targets"]["conductivity_0_0"]["periodic"]["mean"], means, rtol=1e-8)
    # no surrogate asked for: those stages are skipped and the report says why
    assert any("not requested" in m for m in messages)
    assert not (out / "surrogates.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sections"]["surrogates"]["status"] == "not applicable"
    bc = summary["answers"]["boundary_conditions"]
    assert {b["target"] for b in bc} == {"conductivity_0_0", "conductivity_eigenvalues_1"}
    assert "Static and kinematic boundary conditions differ" in summary["answers"]["answer"]
    html = (out / "report.html").read_text()
    assert "<h3>Boundary conditions</h3>" in html and "How much the boundary conditions matter" in html
    assert "the surrogate to trust predicts" not in html  # no claim about a surrogate that does not exist


def test_hierarchy_is_removed_when_no_longer_asked_for(rve_run, tmp_path) -> None:
    out, _, _ = rve_run
    copy = tmp_path / "hier_results"
    shutil.copytree(out, copy)
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in RVE_STUDY.items()}
    data["rve"] = {"targets": ["conductivity_0_0"]}
    run_study(study_from_dict(data, base=tmp_path), workers=1, progress=False, log=lambda m: None)
    assert not (copy / "hierarchy.json").exists() and (copy / "rve.json").exists()


def test_fit_stage_compares_the_scan_with_the_fitted_model(tmp_path) -> None:
    data = {
        "study": {"name": "fitted", "output": "fit_results", "seed": 5},
        "generator": {"name": "boolean", "shape": [24, 24],
                      "fit": {"path": str(SCAN), "threshold": "otsu"}},
        "sweep": {"replicates": 2, "parameters": {"size": [12, 24]}},
        "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 5.0}},
        "gallery": {"samples": 1},
        "surrogate": {"models": []},
    }
    study = study_from_dict(data, base=tmp_path)
    out = run_study(study, workers=1, progress=False, log=lambda m: None)
    fit = json.loads((out / "fit.json").read_text())
    assert fit["volume_fraction"] == pytest.approx(study.fixed["volume_fraction"])
    assert fit["radius"] == pytest.approx(study.fixed["radius"])
    # the scan was drawn from a Boolean model of radius 5 (blurred, noisy, thresholded): the fitted
    # model reproduces its S2 within the spread of 16 samples and its mean chord within 3 std
    assert fit["n"] == 16 and fit["s2_z_max"] < 3.0
    assert abs(fit["mean_chord_specimen"] - fit["mean_chord_mean"]) < 3 * fit["mean_chord_std"]
    with np.load(out / "fit_images.npz") as z:
        assert z["specimen"].shape == z["model"].shape == (192, 192)
        assert abs(z["specimen"].mean() - fit["fraction_specimen"]) < 1e-12
    html = (out / "report.html").read_text()
    assert "Model fitted to the specimen" in html and "Otsu's threshold" in html
    assert json.loads((out / "summary.json").read_text())["fit"]["s2_z_max"] == pytest.approx(fit["s2_z_max"])


def _study(**changes) -> dict:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in RVE_STUDY.items()}
    data.update(changes)
    return data


@pytest.mark.parametrize("rve, match", [
    ({"boundary": ["subc", "bogus"]}, "unknown boundary condition 'bogus'"),
    ({"boundary": ["subc"]}, "at least two distinct"),
    ({"boundary": ["kubc", "kubc"]}, "at least two distinct"),
    ({"boundary_replicates": 4}, "add \\[rve\\].boundary"),
    ({"boundary": ["subc", "kubc"], "boundary_replicates": 1}, "integer >= 2"),
])
def test_rve_boundary_errors(tmp_path, rve, match) -> None:
    with pytest.raises(StudyError, match=match):
        study_from_dict(_study(rve=rve), base=tmp_path)


def test_rve_boundary_needs_a_size_sweep(tmp_path) -> None:
    data = _study(sweep={"replicates": 2, "parameters": {"radius": [2.0, 3.0]}})
    data["generator"] = {"name": "boolean", "shape": [16, 16], "volume_fraction": 0.3}
    with pytest.raises(StudyError, match="sweep the special parameter size"):
        study_from_dict(data, base=tmp_path)


@pytest.mark.parametrize("solver, match", [
    ({"boundary": "dirichlet"}, "unknown boundary condition 'dirichlet'"),
    ({"boundary": "kubc", "dtype": "float32"}, "\\[solver\\].dtype"),
    ({"boundary": "subc", "scheme": "basic"}, "\\[solver\\].scheme"),
    ({"boundary": "mixed", "discretization": "rotated"}, "Q1 elements"),
    ({"boundary": "kubc", "composite_voxels": 2}, "composite_voxels"),
])
def test_solver_boundary_errors(tmp_path, solver, match) -> None:
    with pytest.raises(StudyError, match=match):
        study_from_dict(_study(solver=solver), base=tmp_path)


def test_non_periodic_generators_default_to_the_mixed_condition(tmp_path) -> None:
    data = _study(generator={"name": "porespy.overlapping_spheres", "shape": [16, 16], "porosity": 0.6,
                             "radius": 2.0}, rve={})
    assert study_from_dict(data, base=tmp_path).solver["boundary"] == "mixed"
    data["solver"] = {"boundary": "periodic"}
    assert study_from_dict(data, base=tmp_path).solver["boundary"] == "periodic"  # an explicit choice stays
    assert "boundary" not in study_from_dict(_study(rve={}), base=tmp_path).solver  # periodic generator


def test_a_study_under_kubc_solves_its_samples_on_finite_elements(tmp_path) -> None:
    data = _study(solver={"boundary": "kubc", "tol": 1e-10}, rve={}, sweep={"replicates": 2,
                                                                          "parameters": {"size": [8, 12]}})
    out = run_study(study_from_dict(data, base=tmp_path), workers=1, progress=False, log=lambda m: None)
    props = open_store(out / "samples.zarr").load()
    study = study_from_dict(data, base=tmp_path)
    from stochhom.study.runner import _gallery_image

    s = study.samples()[0]
    image, _ = _gallery_image(study, s["params"], int(study.seeds([0])[0]))
    ref = sh.homogenize(image, COND, boundary="kubc", tol=1e-10).effective
    np.testing.assert_allclose(props["conductivity"].values[0], ref, rtol=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    assert "kinematic uniform (KUBC) boundary conditions" in (out / "report.html").read_text()
    assert summary["sections"]["propagation"]["status"] == "not applicable"


def test_hierarchy_does_not_depend_on_the_number_of_workers(rve_run, tmp_path) -> None:
    out, _, _ = rve_run
    two = run_study(study_from_dict(RVE_STUDY, base=tmp_path), workers=2, progress=False, log=lambda m: None)
    a = json.loads((out / "hierarchy.json").read_text())
    b = json.loads((two / "hierarchy.json").read_text())
    for target, r in a["targets"].items():
        for cond in a["conditions"]:
            np.testing.assert_allclose(b["targets"][target][cond]["mean"], r[cond]["mean"], rtol=1e-10)
            np.testing.assert_allclose(b["targets"][target][cond]["variance"], r[cond]["variance"], rtol=1e-8)
