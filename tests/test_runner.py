"""The end-to-end study runner: stages, caching, outputs and pipeline-table errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stochhom.errors import InputError
from stochhom.study import study_from_dict
from stochhom.study.runner import results_dir, run_study

pytestmark = pytest.mark.filterwarnings("ignore::stochhom.errors.OutOfDomainWarning")

TINY = {
    "study": {"name": "tiny", "output": "tiny_results", "seed": 4},
    "generator": {"name": "gaussian", "shape": [16, 16], "correlation_length": 2.0},
    "sweep": {"design": "sobol", "points": 16, "replicates": 2,
              "parameters": {"volume_fraction": {"distribution": "uniform", "low": 0.25, "high": 0.5},
                             "contrast": {"distribution": "loguniform", "low": 5.0, "high": 50.0}}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
    "gallery": {"samples": 2},
    "surrogate": {"targets": ["conductivity_eigenvalues_1"], "gpr": {"n_restarts": 0}},
    "propagation": {"n_samples": 256, "n_functions": 16},
    "validation": {"n_splits": 3},
}


def _tiny(tmp_path: Path, **changes) -> object:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    data.update(changes)
    return study_from_dict(data, base=tmp_path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("run")
    messages: list[str] = []
    out = run_study(_tiny(tmp), workers=1, progress=False, log=messages.append)
    return out, messages


def test_every_stage_writes_its_outputs(tiny_run) -> None:
    out, messages = tiny_run
    assert out.name == "tiny_results"
    for name in ("samples.zarr", "gallery.nc", "surrogates.json", "cv_predictions.csv", "propagation.json",
                 "sobol.json", "validation.csv", "leakage.csv", "stages.json"):
        assert (out / name).exists(), name
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == ["sweep", "gallery", "rve", "surrogates", "propagation", "validation", "report"]
    cv = pd.read_csv(out / "cv_predictions.csv")
    assert set(cv["model"]) == {"gpr", "pce"} and len(cv) == 2 * 32  # every sample predicted out of fold once
    prop = json.loads((out / "propagation.json").read_text())["conductivity_eigenvalues_1"]
    v = prop["gpr"]["variance"]
    assert v["total"] == pytest.approx(v["aleatoric"] + v["epistemic"] + v["unsplit"] + v["input"], rel=1e-9)
    assert prop["pce"]["variance"]["epistemic"] == 0.0  # a PCE cannot split scatter from surrogate error
    sobol = json.loads((out / "sobol.json").read_text())["conductivity_eigenvalues_1"]
    assert sobol["pce"]["method"] == "pce analytic" and sobol["gpr"]["method"] == "saltelli"
    # the conductivity grows with both the volume fraction and the contrast: both indices are substantial
    assert all(s > 0.05 for s in sobol["pce"]["total"])
    table = pd.read_csv(out / "validation.csv")
    assert {"train", "test"} <= set(table["split"]) and any(s.startswith("ood_") for s in set(table["split"]))
    assert not (out / "rve.json").exists()  # size is not swept
    # 16 points of 2 replicates: the folds hold out whole points, and the leakage table says so
    assert json.loads((out / "surrogates.json").read_text())["cv_groups"] == "point"
    leak = pd.read_csv(out / "leakage.csv")
    assert (leak["groups"] == "point").all() and (leak["n_groups"] == 16).all() and (leak["n_samples"] == 32).all()
    fitted = json.loads((out / "surrogates.json").read_text())["models"]
    gpr, pce = fitted["conductivity_eigenvalues_1__gpr"], fitted["conductivity_eigenvalues_1__pce"]
    assert gpr["loo"] > 0 and 0 <= gpr["loo_coverage_0.95"] <= 1 and pce["loo"] > 0 and pce["degree"] >= 0
    assert any("stage surrogates: done" in m for m in messages)


def test_a_second_run_is_cached_and_a_change_redoes_only_what_it_affects(tiny_run, tmp_path) -> None:
    out, _ = tiny_run
    base = out.parent
    messages: list[str] = []
    run_study(_tiny(base), workers=1, progress=False, log=messages.append)
    assert [m for m in messages if "up to date" in m] == [
        f"stage {s}: up to date" for s in ("gallery", "rve", "surrogates", "propagation", "validation", "report")]
    assert any("96 of 96" in m or "32 of 32 samples done" in m for m in messages)  # the sweep resumes, nothing runs
    messages.clear()
    changed = _tiny(base, propagation={"n_samples": 128, "n_functions": 16})
    run_study(changed, workers=1, progress=False, log=messages.append)
    ran = {m.split()[1].rstrip(":") for m in messages if m.endswith("running")}
    assert ran == {"sweep", "propagation", "report"}  # not the surrogates, validation or gallery
    messages.clear()
    run_study(changed, workers=1, progress=False, log=messages.append, redo=["surrogates"])
    ran = {m.split()[1].rstrip(":") for m in messages if m.endswith("running")}
    assert ran == {"sweep", "surrogates", "propagation", "validation", "report"}  # not the gallery
    messages.clear()
    run_study(changed, workers=1, progress=False, log=messages.append, redo="report")
    assert {m.split()[1].rstrip(":") for m in messages if m.endswith("running")} == {"sweep", "report"}
    for bad, match in (("sweep", "the sweep is redone with --restart"), ("surrogate", "cannot redo stage")):
        with pytest.raises(InputError, match=match):
            run_study(changed, workers=1, progress=False, log=messages.append, redo=[bad])


def test_results_dir_and_pipeline_errors(tmp_path) -> None:
    st = _tiny(tmp_path, study={"output": "x.zarr"})
    assert results_dir(st) == tmp_path / "x_results"
    cases = [
        ({"surrogate": {"models": ["nn"]}}, r"\[surrogate\].models: unknown model\(s\) \['nn'\]"),
        ({"surrogate": {"gpr": {"kernel": "rbf", "lengthscale": 1}}}, r"\[surrogate\].gpr: unknown option"),
        ({"propagation": {"inputs": {"porosity": {"distribution": "uniform", "low": 0, "high": 1}}}},
         r"\[propagation.inputs\]: keys must be swept parameters"),
        ({"propagation": {"inputs": {"contrast": {"distribution": "gamma"}}}}, r"\[propagation.inputs\]: .*gamma"),
        ({"validation": {"ood_edges": [0.5, 0.1]}}, r"\[validation\].ood_edges: expected increasing"),
        ({"rve": {"epsilon": 2.0}}, r"\[rve\].epsilon: expected a relative error in \(0, 1\)"),
        ({"report": {"colour": "red"}}, r"\[report\]: unknown key"),
    ]
    for change, match in cases:
        with pytest.raises(InputError, match=match):
            _tiny(tmp_path, **change)


def test_rve_stage_runs_when_size_is_swept(tmp_path) -> None:
    st = study_from_dict({
        "study": {"output": "rve_results", "seed": 1},
        "generator": {"name": "boolean", "shape": [12, 12], "volume_fraction": 0.3, "radius": 1.5},
        "sweep": {"replicates": 12, "parameters": {"size": [8, 12, 16]}},
        "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 10.0}},
        "gallery": {"samples": 0},
        "surrogate": {"models": ["pce"], "pce": {"degree": 1}},
        "propagation": {"n_samples": 64},
        "validation": {"n_splits": 2},
    }, base=tmp_path)
    out = run_study(st, workers=1, progress=False, log=lambda m: None)
    rve = json.loads((out / "rve.json").read_text())
    assert "phase_fraction_1" in rve
    r = rve["phase_fraction_1"]
    assert r["volumes"] == [64.0, 144.0, 256.0] and r["counts"] == [12, 12, 12]
    assert np.isfinite(r["alpha"]) and r["rve_volume"] > 0
    # a property of two isotropic phases gets Kanit's point variance p(1-p)(k1 - k0)^2 at the
    # mean measured fraction, hence an integral range
    from stochhom.study import open_store

    props = open_store(out / "samples.zarr").load()
    p = props["phase_fraction"].values[:, 1].mean()  # every sample: size is the only parameter
    k = rve["conductivity_eigenvalues_0"]
    assert k["point_variance"] == pytest.approx(p * (1 - p) * 81.0, rel=1e-12)
    assert k["integral_range"] is not None and k["integral_range"] > 0 and k["dof"] == 1
    # the SVE size is a numerical choice: nothing is propagated over it, and the report says so
    assert json.loads((out / "propagation.json").read_text()) == {}
    assert "Nothing to propagate" in (out / "report.html").read_text()
    assert json.loads((out / "surrogates.json").read_text())["cv_groups"] == "specimen"  # 3 points only


def test_propagation_holds_the_sve_size_at_its_largest_value() -> None:
    """The wrapper that the propagation stage puts around a surrogate of (size, material
    parameters) evaluates it at the largest size, and keeps the optional methods."""
    from stochhom.study.runner import _AtSize
    from stochhom.surrogates import GPR, PCE

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.choice([8.0, 16.0, 32.0], 60), rng.uniform(0, 1, 60)])
    y = np.sin(3 * X[:, 1]) + 0.01 * X[:, 0]
    for model in (PCE(degree=2).fit(X, y), GPR(n_restarts=0, random_state=0).fit(X, y)):
        at = _AtSize(model, 0, 32.0)
        theta = rng.uniform(0, 1, (7, 1))
        full = np.column_stack([np.full(7, 32.0), theta])
        np.testing.assert_allclose(at.predict(theta), model.predict(full), rtol=1e-12)
        assert at.n_features_in_ == 1
        assert hasattr(at, "sample_functions") == hasattr(model, "sample_functions")
        if hasattr(model, "noise_variance"):
            np.testing.assert_allclose(at.noise_variance(theta), model.noise_variance(full), rtol=1e-12)


@pytest.mark.slow
def test_quickstart_study_end_to_end(tmp_path) -> None:
    """The README's main job: the shipped quickstart study, run whole, gives a report with every
    section and embedded figures, and a valid summary.json."""
    import re

    from stochhom.study import load_study

    src = Path(__file__).resolve().parents[1] / "studies" / "quickstart.toml"
    (tmp_path / "quickstart.toml").write_text(src.read_text())
    out = run_study(load_study(tmp_path / "quickstart.toml"), workers=1, progress=False, log=lambda m: None)
    html = (out / "report.html").read_text()
    for sid in ("provenance", "microstructure", "properties", "rve", "surrogates", "propagation", "validation",
                "failures"):
        assert f'<section id="{sid}">' in html, sid
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) >= 15
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["samples"] == 96 and summary["counts"]["failed"] == 0
    status = {k: v["status"] for k, v in summary["sections"].items()}
    assert status["rve"] == "not applicable" and all(v == "ok" for k, v in status.items() if k != "rve")
    gpr = summary["surrogates"]["gpr"]["log_conductivity_eigenvalues_1"]
    # 96 grouped-CV predictions: the 95 % intervals of the heteroscedastic GP are calibrated within the
    # binomial band 0.95 ± 3·sqrt(0.95·0.05/96) = [0.88, 1.0]
    assert 0.88 <= gpr["coverage_0.95"] <= 1.0


def test_cli_run_and_report(tiny_run, tmp_path, capsys) -> None:
    from stochhom.cli import main

    out, _ = tiny_run
    assert main(["report", str(out)]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a results directory of 'stochhom run'" in err and "Traceback" not in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[study]\noutput = "x"\n[generator]\nname = "gaussian"\nshape = [8, 8]\n'
                   '[phases.0]\nlaw = "Conductivity"\nk = 1.0\n[surrogate]\nmodels = ["nn"]\n')
    assert main(["run", str(bad), "--quiet"]) == 2
    assert "[surrogate].models: unknown model(s) ['nn']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0 and "examples:" in capsys.readouterr().out


def test_killed_run_resumes_without_redoing_samples(tmp_path) -> None:
    """`stochhom run` killed with SIGKILL during its sweep: running it again resumes the sweep
    (the samples already stored are not recomputed) and finishes every stage."""
    import os
    import subprocess
    import sys

    from conftest import kill_once_stored

    from stochhom.study.sweep import _done_flags

    study = tmp_path / "killed.toml"
    study.write_text(
        '[study]\nname = "killed"\noutput = "killed_results"\nseed = 9\n'
        '[generator]\nname = "gaussian"\nshape = [64, 64]\ncorrelation_length = 3.0\n'
        '[sweep]\nreplicates = 16\n'
        '[sweep.parameters]\nvolume_fraction = [0.3, 0.4, 0.5]\ncontrast = [300.0, 3000.0]\n'
        '[phases.0]\nlaw = "Conductivity"\nk = 1.0\n[phases.1]\nlaw = "Conductivity"\nk = "contrast"\n'
        '[gallery]\nsamples = 1\n[surrogate]\nmodels = ["pce"]\npce = { degree = 2 }\n'
        '[propagation]\nn_samples = 64\n[validation]\nn_splits = 3\n'
    )
    cmd = [sys.executable, "-m", "stochhom.cli", "run", str(study), "--workers", "2", "--quiet"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    store = tmp_path / "killed_results" / "samples.zarr"
    done = kill_once_stored(cmd, store, env)
    assert 0 < done < 96
    again = subprocess.run([*cmd[:-1]], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = [line for line in again.stderr.splitlines() if line.startswith("resuming")]
    assert resumed and int(resumed[0].split(": ")[1].split(" of ")[0]) >= done  # stored samples are kept
    out = tmp_path / "killed_results"
    assert int(_done_flags(store).sum()) == 96 and (out / "report.html").exists()
    assert set(json.loads((out / "stages.json").read_text())) == {
        "sweep", "gallery", "rve", "surrogates", "propagation", "validation", "report"}
