"""Adaptive designs: the exact greedy IMSE batch, adaptive replicates, stopping and resuming."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from stochhom.errors import InputError, OutOfDomainWarning
from stochhom.surrogates import GPR
from stochhom.surrogates.adaptive import AdaptiveDesign, StopRule, design_metrics, select_batch

pytestmark = pytest.mark.filterwarnings("ignore::stochhom.errors.OutOfDomainWarning")

UNIT2 = {"a": {"distribution": "uniform", "low": 0.0, "high": 1.0},
         "b": {"distribution": "uniform", "low": 0.0, "high": 1.0}}


def _f(X):
    return np.exp(1.2 * X[:, 0]) * (1 + 2 * X[:, 1] ** 2) + 0.5 * np.sin(4 * X[:, 0] * X[:, 1])


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(20, 2))
    y = _f(X) + 0.05 * rng.standard_normal(20)
    return GPR(n_restarts=0, random_state=0).fit(X, y)


def _imse_after(model, integration, chosen):
    """IMSE after observing the chosen points jointly: v_I - C_IB (C_BB + T)^-1 C_BI, one solve."""
    pts = np.vstack([integration, chosen])
    c = model.posterior_covariance(pts)
    m = len(integration)
    tau = model.noise_variance(chosen)
    gain = c[:m, m:] @ np.linalg.solve(c[m:, m:] + np.diag(tau), c[m:, :m])
    return float(np.mean(np.diag(c[:m, :m]) - np.diag(gain)))


def test_posterior_covariance_is_the_predictive_epistemic_variance(fitted):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(size=(6, 2)), rng.uniform(size=(4, 2))
    c = fitted.posterior_covariance(np.vstack([a, b]))
    np.testing.assert_allclose(np.sqrt(np.diag(c)), fitted.predict_components(np.vstack([a, b]))["epistemic_std"],
                               rtol=1e-10)
    # off-diagonal entries are differences of O(prior variance) terms: rounding that depends on
    # the BLAS threads' summation order reaches ~1e-13 absolute (measured under load)
    np.testing.assert_allclose(fitted.posterior_covariance(a, b), c[:6, 6:], rtol=1e-10, atol=1e-9 * np.abs(c).max())
    assert np.all(np.linalg.eigvalsh(c) > -1e-10 * np.abs(c).max())  # a covariance
    two = GPR(n_restarts=0, random_state=0).fit(fitted.X_train_, np.column_stack([fitted.y_train_[:, 0]] * 2))
    assert two.posterior_covariance(a, b).shape == (2, 6, 4)


def test_greedy_batch_is_the_exact_joint_conditioning(fitted):
    rng = np.random.default_rng(2)
    cand, integ = rng.uniform(size=(40, 2)), rng.uniform(size=(200, 2))
    choice = select_batch(fitted, cand, integ, 4)
    # the sequential rank-1 updates equal conditioning on the four noisy observations at once
    assert choice.imse_after == pytest.approx(_imse_after(fitted, integ, choice.points), rel=1e-8)
    assert choice.imse_before == pytest.approx(design_metrics(fitted, integ)["imse"], rel=1e-10)
    assert choice.imse_before - choice.reductions.sum() == pytest.approx(choice.imse_after, rel=1e-8)
    assert np.all(np.diff(choice.reductions) <= 1e-12)  # diminishing returns (submodular in practice)
    # the first choice is the best single candidate, by brute force
    after = [_imse_after(fitted, integ, cand[[k]]) for k in range(len(cand))]
    assert choice.indices[0] == int(np.argmin(after))
    assert choice.reductions[0] == pytest.approx(choice.imse_before - min(after), rel=1e-8)


def test_the_batch_goes_where_the_model_knows_least():
    # data on the left half only: the variance, hence every choice, lies on the right
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 0.5, size=(15, 1))
    model = GPR(n_restarts=0, random_state=0).fit(X, np.sin(6 * X[:, 0]) + 0.01 * rng.standard_normal(15))
    grid = np.linspace(0, 1, 101)[:, None]
    choice = select_batch(model, grid, grid, 3)
    assert np.all(choice.points[:, 0] > 0.5) and len(np.unique(choice.indices)) == 3


def test_replicates_go_where_the_scatter_dominates():
    # 40 solved points with noise variances 1e-6 (left) and 0.04 (right), given: with only these
    # points as candidates, every chosen replicate is on the noisy right, where one more SVE
    # still reduces the variance of the mean
    x = np.linspace(0, 1, 40)[:, None]
    noise = np.where(x[:, 0] < 0.5, 1e-6, 0.04)
    rng = np.random.default_rng(4)
    y = np.sin(3 * x[:, 0]) + np.sqrt(noise) * rng.standard_normal(40)
    model = GPR(noise="fixed", n_restarts=0, random_state=0).fit(x, y, noise_variance=noise)
    choice = select_batch(model, x, np.linspace(0, 1, 200)[:, None], 6)
    assert np.all(choice.points[:, 0] > 0.5)


def _noisy(seed):
    rng = np.random.default_rng(seed)
    return lambda X: _f(X) + (0.01 + 0.1 * X[:, 1] ** 2) * rng.standard_normal(len(X))


def test_a_design_runs_to_its_budget_and_resumes_the_same_sequence():
    design = AdaptiveDesign(UNIT2, initial_points=6, initial_replicates=2, batch=4, max_solves=26, stop=None,
                            n_candidates=128, n_integration=256, rng=5)
    res = design.run(_noisy(0))
    assert len(res.X) == 26 and res.stopped == "budget"
    assert [h["solves"] for h in res.history] == [16, 20, 24, 26, 26]  # the last batch cut to the budget
    assert list(np.bincount(res.round)) == [12, 4, 4, 4, 2]
    hist = res.history_frame()
    assert (hist["new_points"] + hist["replicates"]).tolist() == [4, 4, 4, 2, 0]
    # the imse falls round by round (more data; the hyperparameters move a little)
    assert hist["imse"].iloc[-1] < hist["imse"].iloc[0]
    # a design resumed from its first 16 solves continues with the same points
    again = AdaptiveDesign(UNIT2, initial_points=6, initial_replicates=2, batch=4, max_solves=26, stop=None,
                           n_candidates=128, n_integration=256, rng=5)
    res2 = again.run(_noisy(1), X=res.X[:16], y=res.y[:16])
    np.testing.assert_array_equal(res2.X[16:20], res.X[16:20])  # same data, same choices
    # every chosen point is a candidate of the input distribution or a solved point
    pool = np.vstack([design.candidates, design.initial])
    assert all(np.any(np.all(pool == p, axis=1)) or np.any(np.all(res.X[:k] == p, axis=1))
               for k, p in enumerate(res.X) if k >= 12)


def test_the_stopping_rule_ends_the_design_before_the_budget():
    design = AdaptiveDesign({"x": {"distribution": "uniform", "low": 0.0, "high": 1.0}}, initial_points=4,
                            initial_replicates=1, batch=2, max_solves=60, stop="epistemic_std < 0.01",
                            n_candidates=64, n_integration=128, rng=0)
    res = design.run(lambda X: np.sin(4 * X[:, 0]))
    assert res.stopped == "criterion" and len(res.X) < 60
    assert res.history[-1]["epistemic_std"] < 0.01 <= res.history[-2]["epistemic_std"]
    metrics = design_metrics(res.model, design.integration)
    assert metrics["epistemic_std"] == pytest.approx(res.history[-1]["epistemic_std"], rel=1e-10)


def test_stop_rules_and_bad_input():
    assert StopRule.parse("epistemic_share < 0.05") == StopRule("epistemic_share", 0.05)
    assert StopRule.parse(" epistemic_std<1e-3 ").value == 1e-3
    for bad, match in (("epistemic_share > 0.05", "cannot read"), ("rmse < 0.1", "cannot read"),
                       ("epistemic_share < 2", "below 1"), ("epistemic_std < 0", "positive")):
        with pytest.raises(InputError, match=match):
            StopRule.parse(bad)
    with pytest.raises(InputError, match="exceeds max_solves"):
        AdaptiveDesign(UNIT2, initial_points=10, initial_replicates=3, max_solves=20)
    with pytest.raises(InputError, match="batch must be an integer"):
        AdaptiveDesign(UNIT2, batch=0)
    with pytest.raises(InputError, match="posterior_covariance"):
        select_batch(object(), np.zeros((2, 2)), np.zeros((2, 2)), 1)
    design = AdaptiveDesign(UNIT2, initial_points=4, initial_replicates=1, max_solves=8, stop=None,
                            n_candidates=16, n_integration=16, rng=0)
    with pytest.raises(InputError, match="one per row"):
        design.run(lambda X: np.zeros(len(X) + 1))
    with pytest.raises(InputError, match="non-finite"):
        design.run(lambda X: np.full(len(X), np.nan))


def test_metrics_split_the_predictive_variance(fitted):
    integ = np.random.default_rng(6).uniform(size=(300, 2))
    m = design_metrics(fitted, integ)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        comp = fitted.predict_components(integ)
    total = np.mean(comp["std"] ** 2)
    assert m["imse"] + m["aleatoric_variance"] == pytest.approx(total, rel=1e-10)
    assert m["epistemic_share"] == pytest.approx(m["imse"] / total, rel=1e-10)


# -- the study runner: [sweep.adaptive] --------------------------------------------------------------------------

TINY = {
    "study": {"name": "tinyad", "output": "tinyad_results", "seed": 4},
    "generator": {"name": "gaussian", "shape": [16, 16], "correlation_length": 2.0},
    "sweep": {"design": "sobol", "points": 8, "replicates": 2,
              "parameters": {"volume_fraction": {"distribution": "uniform", "low": 0.25, "high": 0.5},
                             "contrast": {"distribution": "loguniform", "low": 5.0, "high": 50.0}},
              "adaptive": {"target": "conductivity_eigenvalues_1", "batch": 4, "max_points": 28, "stop": "none",
                           "candidates": 128, "integration": 256}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
    "gallery": {"samples": 0},
    "surrogate": {"targets": ["conductivity_eigenvalues_1"], "models": ["gpr"], "gpr": {"n_restarts": 0}},
    "propagation": {"n_samples": 128, "n_functions": 8, "sobol_samples": 32},
    "validation": {"n_splits": 3},
}


def _study(tmp_path, **sweep_changes):
    from stochhom.study.schema import study_from_dict

    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    data["sweep"] = {**TINY["sweep"], **sweep_changes}
    if "adaptive" in sweep_changes and isinstance(sweep_changes["adaptive"], dict):
        data["sweep"]["adaptive"] = {**TINY["sweep"]["adaptive"], **sweep_changes["adaptive"]}
    return study_from_dict(data, base=tmp_path)


@pytest.fixture(scope="module")
def adaptive_run(tmp_path_factory):
    from stochhom.study.runner import run_study

    tmp = tmp_path_factory.mktemp("adaptive")
    messages: list[str] = []
    out = run_study(_study(tmp), workers=1, progress=False, log=messages.append)
    return tmp, out, messages


def test_an_adaptive_study_adds_rounds_to_one_store(adaptive_run):
    import json

    from stochhom.study import open_store

    tmp, out, messages = adaptive_run
    state = json.loads((out / "adaptive.json").read_text())
    assert state["stopped"] == "budget" and len(state["added"]) == 12  # 8 x 2 initial samples, 28 in all
    assert [r["samples"] for r in state["rounds"]] == [16, 20, 24, 28]
    assert [r["added"] for r in state["rounds"]] == [4, 4, 4, 0]
    props = open_store(out / "samples.zarr").load()
    assert props.sizes["sample"] == 28 and int(props["done"].sum()) == 28
    study = _study(tmp)
    full = study.__class__(**{**study.__dict__, "added": tuple(state["added"])})
    # every sample has the seed of its id and the parameters of its point, as a fixed design would
    np.testing.assert_array_equal(props["seed"].values, full.seeds(list(range(28))))
    for s in full.samples():
        assert props["point"].values[s["sample"]] == s["point"]
        assert props["contrast"].values[s["sample"]] == pytest.approx(s["params"]["contrast"], rel=1e-12)
    # each point's replicates are numbered 0, 1, ... in order; new points continue the point ids
    for p in np.unique(props["point"].values):
        reps = props["replicate"].values[props["point"].values == p]
        assert list(reps) == list(range(len(reps)))
    assert int(props["point"].max()) + 1 == 8 + sum(r["new_points"] for r in state["rounds"])
    assert any("adaptive design, round 3" in m for m in messages)
    html = (out / "report.html").read_text()
    assert "<h3>Adaptive design</h3>" in html and "the budget of samples (28 samples) was spent" in html
    summary = json.loads((out / "summary.json").read_text())["adaptive_design"]
    assert summary["stopped"] == "budget" and len(summary["rounds"]) == 4


def test_an_interrupted_adaptive_study_resumes_the_same_sequence(adaptive_run, monkeypatch):
    import json

    from stochhom.study import open_store
    from stochhom.study.runner import run_study
    from stochhom.surrogates.adaptive import AdaptiveDesign

    tmp, out, _ = adaptive_run
    other = tmp / "again"
    other.mkdir()
    real = AdaptiveDesign.propose
    calls = {"n": 0}

    def interrupted(self, X, y, model=None):
        calls["n"] += 1
        if calls["n"] == 3:  # killed after two rounds were chosen and solved
            raise KeyboardInterrupt
        return real(self, X, y, model)

    monkeypatch.setattr(AdaptiveDesign, "propose", interrupted)
    study = _study(other)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, workers=1, progress=False, log=lambda m: None)
    partial = json.loads((other / "tinyad_results" / "adaptive.json").read_text())
    assert len(partial["rounds"]) == 2 and partial["stopped"] is None
    monkeypatch.setattr(AdaptiveDesign, "propose", real)
    run_study(study, workers=1, progress=False, log=lambda m: None)
    a = json.loads((out / "adaptive.json").read_text())
    b = json.loads((other / "tinyad_results" / "adaptive.json").read_text())
    assert b["added"] == a["added"] and [r["samples"] for r in b["rounds"]] == [r["samples"] for r in a["rounds"]]
    pa, pb = open_store(out / "samples.zarr").load(), open_store(other / "tinyad_results" / "samples.zarr").load()
    np.testing.assert_allclose(pb["conductivity"].values, pa["conductivity"].values, rtol=1e-12)


def test_a_larger_budget_continues_the_finished_design(adaptive_run, tmp_path):
    """Raising max_points after the design stopped continues from the samples solved (the budget is
    not in the study's hash), and gives the samples of a design run with that budget at once; the
    later stages rerun on them. A lower budget keeps every sample and stops at once."""
    import json

    from stochhom.study import open_store
    from stochhom.study.runner import run_study

    tmp, out, _ = adaptive_run
    assert _study(tmp).hash() == _study(tmp, adaptive={"max_points": 40, "stop": "epistemic_share < 0.01"}).hash()
    small = _study(tmp_path, adaptive={"max_points": 20})
    run_study(small, workers=1, progress=False, log=lambda m: None)
    first = json.loads((tmp_path / "tinyad_results" / "adaptive.json").read_text())
    assert first["stopped"] == "budget" and [r["samples"] for r in first["rounds"]] == [16, 20]
    messages: list[str] = []
    run_study(_study(tmp_path), workers=1, progress=False, log=messages.append)  # max_points 28
    grown = json.loads((tmp_path / "tinyad_results" / "adaptive.json").read_text())
    full = json.loads((out / "adaptive.json").read_text())
    assert any("continuing from the samples solved" in m for m in messages)
    assert grown["added"] == full["added"] and grown["stopped"] == "budget"
    assert [r["samples"] for r in grown["rounds"]] == [16, 20, 24, 28]
    assert any(m.startswith("stage surrogates: running") for m in messages)
    html = (tmp_path / "tinyad_results" / "report.html").read_text()
    assert "the budget of samples (28 samples) was spent" in html  # the run's own budget, not the hashed study's
    pa = open_store(out / "samples.zarr").load()
    pb = open_store(tmp_path / "tinyad_results" / "samples.zarr").load()
    np.testing.assert_allclose(pb["conductivity"].values, pa["conductivity"].values, rtol=1e-12)
    messages.clear()
    run_study(small, workers=1, progress=False, log=messages.append)  # back to 20: nothing is dropped
    assert open_store(tmp_path / "tinyad_results" / "samples.zarr").load().sizes["sample"] == 28
    again = json.loads((tmp_path / "tinyad_results" / "adaptive.json").read_text())
    assert again["stopped"] == "budget" and again["added"] == full["added"]


def test_added_samples_extend_the_study(tmp_path):
    study = _study(tmp_path)
    base = study.samples()
    v = {"volume_fraction": 0.3, "contrast": 10.0}
    added = ({"point": 8, "values": v}, {"point": 3, "values": {}}, {"point": 8, "values": {}},
             {"point": 9, "values": {"volume_fraction": 0.4, "contrast": 20.0}})
    grown = study.__class__(**{**study.__dict__, "added": added})
    samples = grown.samples()
    assert samples[:16] == base and len(grown.points_table()) == 10
    assert [(s["sample"], s["point"], s["replicate"]) for s in samples[16:]] == [(16, 8, 0), (17, 3, 2), (18, 8, 1),
                                                                                 (19, 9, 0)]
    assert samples[18]["params"]["contrast"] == 10.0  # a replicate of an added point has its parameters
    assert samples[17]["params"] == base[6]["params"]
    assert grown.hash() != study.hash()


def test_adaptive_study_errors(tmp_path):
    from stochhom.study.schema import StudyError, study_from_dict

    cases = [
        ({"max_points": 19}, r"max_points.*must leave at least one batch"),
        ({"stop": "rmse < 0.1"}, r"\[sweep.adaptive\].stop: cannot read"),
        ({"target": "stiffness_0_0"}, r"\[sweep.adaptive\].target: unknown target"),
        ({"colour": 1}, r"\[sweep.adaptive\]: unknown key"),
        ({"replicates": "yes"}, r"replicates: expected true or false"),
    ]
    for change, match in cases:
        with pytest.raises(StudyError, match=match):
            _study(tmp_path, adaptive=change)
    grid = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    grid["sweep"] = {"design": "grid", "replicates": 2, "parameters": {"volume_fraction": [0.3, 0.4]},
                     "adaptive": TINY["sweep"]["adaptive"]}
    with pytest.raises(StudyError, match="continues an 'lhs' or 'sobol' design"):
        study_from_dict(grid, base=tmp_path)
    # a fixed design's content (and hash) does not mention the adaptive keys
    fixed = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    fixed["sweep"] = {k: v for k, v in TINY["sweep"].items() if k != "adaptive"}
    content = study_from_dict(fixed, base=tmp_path).content()
    assert "adaptive" not in content and "added" not in content


def test_the_shipped_adaptive_study_is_valid():
    from pathlib import Path

    from stochhom.study import load_study

    study = load_study(Path(__file__).resolve().parents[1] / "studies" / "adaptive_2d.toml")
    assert study.adaptive["target"] == "conductivity_eigenvalues_0" and study.adaptive["max_points"] == 128
    assert study.adaptive["stop"] == "epistemic_share < 0.1" and len(study.samples()) == 32
