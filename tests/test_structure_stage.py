"""The [structure] table and the structure stage of `stochhom run`: validation at load time,
the stage's outputs, the direct FE^2 check on the study's own SVEs, the report section and
summary.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from stochhom.study import study_from_dict
from stochhom.study.runner import run_study
from stochhom.study.schema import StudyError

pytest.importorskip("skfem")

STUDY = {
    "study": {"name": "beam", "output": "beam_results", "seed": 5, "units": {"length": "mm", "modulus": "GPa"}},
    "generator": {"name": "gaussian", "shape": [24, 24], "correlation_length": 2.0, "cut": "quantile"},
    "sweep": {"design": "sobol", "points": 12, "replicates": 2,
              "parameters": {"volume_fraction": {"distribution": "uniform", "low": 0.2, "high": 0.4}}},
    "phases": {"0": {"law": "IsotropicElastic", "E": 3.5, "nu": 0.35},
               "1": {"law": "IsotropicElastic", "E": 35.0, "nu": 0.25}},
    "solver": {"tol": 1e-6},
    "gallery": {"samples": 1},
    "surrogate": {"targets": ["bulk_modulus", "stiffness"], "models": ["gpr"]},
    "propagation": {"n_samples": 64, "n_functions": 4, "sobol_samples": 32},
    "validation": {"n_splits": 3},
    "structure": {
        "part": "cantilever", "dimensions": {"length": 8.0, "height": 1.0}, "mesh": {"nx": 8, "ny": 2},
        "fixed": {"left": "all"}, "traction": {"right": [0.0, -0.001]},
        "quantity": {"kind": "displacement", "point": [8.0, 0.5], "component": 1, "name": "tip deflection"},
        "samples": 8, "functions": 2, "noise": 2,
        "parameters": {"volume_fraction": {"center": 0.3, "spread": 0.03, "correlation_length": 2.0}},
        "concurrent": {"samples": 4, "mesh": {"nx": 4, "ny": 1}, "functions": 5, "noise": 4},
    },
}


def _with(**changes) -> dict:
    d = copy.deepcopy(STUDY)
    for key, value in changes.items():
        if value is None:
            d["structure"].pop(key, None)
        else:
            d["structure"][key] = value
    return d


@pytest.mark.parametrize("changes, match", [
    ({"part": "bridge"}, "unknown part 'bridge'"),
    ({"fixed": {"middle": "all"}}, "has no boundary 'middle'"),
    ({"fixed": None}, "needs supports"),
    ({"temperature": {"left": 0.0}}, "is for conduction"),
    ({"traction": {"right": [0.0]}}, "vector of 2 numbers"),
    ({"quantity": {"kind": "temperature", "point": [1.0, 0.5]}}, "for conductivity, not elasticity"),
    ({"quantity": {"kind": "displacement"}}, "needs a point"),
    ({"parameters": {}}, "missing \\['volume_fraction'\\]"),
    ({"parameters": {"volume_fraction": 0.3, "contrast": 2.0}}, "'contrast' is not a swept parameter"),
    ({"parameters": {"volume_fraction": {"center": 0.3, "spread": -1.0}}}, "spread must be >= 0"),
    ({"dimensions": {"length": 8.0, "height": 1.0, "width": 1.0}}, "is 3D but the study is 2D"),
    ({"concurrent": {"samples": 4, "functions": 2, "noise": 2}}, "functions \\* noise must be >= 20"),
    ({"model": "pce"}, "expected one of the fitted models"),
    ({"samples": 1}, "integer >= 2"),
    ({"colour": "red"}, "unknown key\\(s\\) \\['colour'\\]"),
])
def test_structure_table_is_checked_at_load_time(tmp_path, changes, match) -> None:
    with pytest.raises(StudyError, match=match):
        study_from_dict(_with(**changes), base=tmp_path)


def test_structure_needs_a_whole_tensor_surrogate(tmp_path) -> None:
    d = copy.deepcopy(STUDY)
    d["surrogate"]["targets"] = ["bulk_modulus"]
    with pytest.raises(StudyError, match=r"add 'stiffness' to \[surrogate\]\.targets"):
        study_from_dict(d, base=tmp_path)
    d["surrogate"] = {"models": []}
    with pytest.raises(StudyError, match="needs a surrogate"):
        study_from_dict(d, base=tmp_path)


@pytest.fixture(scope="module")
def beam_run(tmp_path_factory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("beam")
    messages: list[str] = []
    out = run_study(study_from_dict(STUDY, base=tmp), workers=1, progress=False, log=messages.append)
    return out, messages


def test_structure_stage_outputs_and_report(beam_run) -> None:
    out, messages = beam_run
    rec = json.loads((out / "structure.json").read_text())
    h = rec["hierarchical"]
    assert h["n_solves"] == 8 * 2 * 2 and rec["elements"] == 16
    assert h["label"] == "tip deflection" and h["mean"] < 0  # the beam bends down under a downward load
    assert sum(h["shares"].values()) == pytest.approx(1.0)
    assert h["variance"]["total"] == pytest.approx(h["std"] ** 2)
    c = rec["concurrent"]
    assert c["n"] == 4 and c["sve_solves"] == 4 * 4 and len(c["pit"]) == 4
    # the direct route draws from the training law: its mean deflection agrees with the surrogate route's
    assert c["mean_direct"] == pytest.approx(c["mean_hierarchical"], rel=0.1)
    arrays = np.load(out / "structure.npz")
    assert arrays["samples"].shape == (8, 2, 2) and arrays["local_mean"].shape == (16,)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sections"]["structure"]["status"] == "ok"
    assert summary["answers"]["structure"]["quantity"] == "tip deflection"
    assert summary["answers"]["structure"]["unit"] == "mm"
    html = (out / "report.html").read_text()
    assert 'id="structure"' in html and "Check against FE²" in html
    assert any("hierarchical: 8 fields" in m for m in messages)


def test_structure_stage_is_cached_and_removed_with_its_table(beam_run, tmp_path) -> None:
    out, _ = beam_run
    messages: list[str] = []
    study = study_from_dict(STUDY, base=out.parent)
    run_study(study, workers=1, progress=False, log=messages.append)
    assert "stage structure: up to date" in messages
    d = copy.deepcopy(STUDY)
    d.pop("structure")
    run_study(study_from_dict(d, base=out.parent), workers=1, progress=False, log=lambda m: None)
    assert not (out / "structure.json").exists() and not list(out.glob("structure_sve_cache*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sections"]["structure"]["status"] == "not applicable"


def test_a_part_from_a_mesh_file(tmp_path) -> None:
    """part = "file": the path is read relative to the study file, the boundary names come
    from the mesh, and the problem is built from it."""
    from stochhom.structure.parts import cantilever
    from stochhom.structure.study import build_problem
    from stochhom.study.pipeline import pipeline_config

    cantilever(8.0, 1.0, 8, 2).save(str(tmp_path / "beam.msh"))
    d = _with(part="file", path="beam.msh", dimensions=None, mesh=None,
              concurrent={"samples": 2, "functions": 5, "noise": 4})
    study = study_from_dict(d, base=tmp_path)
    cfg = pipeline_config(study).structure
    assert cfg["path"] == str((tmp_path / "beam.msh").resolve()) and len(cfg["mesh_sha256"]) == 64
    assert build_problem(cfg, "elasticity").n_elements == 16
    with pytest.raises(StudyError, match=r"the mesh has no boundary 'middle'; it has \['bottom', 'left'"):
        study_from_dict(_with(part="file", path="beam.msh", dimensions=None, mesh=None,
                              fixed={"middle": "all"}), base=tmp_path)
    with pytest.raises(StudyError, match="needs the mesh file"):
        study_from_dict(_with(part="file", dimensions=None, mesh=None), base=tmp_path)
    with pytest.raises(StudyError, match="does not exist"):
        study_from_dict(_with(part="file", path="nope.msh", dimensions=None, mesh=None), base=tmp_path)
