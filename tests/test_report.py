"""Tests of stochhom.report: the HTML report, summary.json, the PDF and the figures.

Oracles: the inputs written by hand into a synthetic results directory (the numbers of
summary.json must equal them), numpy statistics of the samples, the bounds of
:mod:`stochhom.bounds` (the report must draw exactly those), closed-form S₂ limits
(S₂(0) = φ, S₂(∞) = φ²) and scipy's bivariate normal CDF.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import stochhom as sh
from stochhom.bounds import hashin_shtrikman, reuss, voigt
from stochhom.errors import InputError
from stochhom.io import open_dataset, save_dataset
from stochhom.report import (
    SECTIONS,
    gallery_figure,
    properties_figure,
    s2_figure,
    s2_theory,
    sample_bounds,
    write_report,
)
from stochhom.statistics import resolve_phases
from stochhom.statistics.ensemble import sample_parameters
from stochhom.surrogates.predictive import Normal
from stochhom.tensors import isotropic_projection
from stochhom.validation.metrics import pooled_metrics, score_predictions

EVIL = "<script>alert(1)</script>"
EVIL_STATUS = "failed: <b>diverged</b> & <img src=x onerror=alert(2)>"
PHASES = {"0": {"law": "IsotropicElastic", "E": 1.0, "nu": 0.3},
          "1": {"law": "IsotropicElastic", "E": "contrast", "nu": 0.3}}
POINTS = [(0.3, 5.0), (0.5, 5.0), (0.3, 20.0)]  # (volume_fraction, contrast)
REPLICATES = 3
FAILED = 4
MODELS = ("gpr", "pce $_$")  # "$_$" is invalid mathtext: names must be shown as typed
TARGET = "bulk_modulus"
PNG = '<img src="data:image/png;base64,'


def _sweep(phases: dict, points: list[tuple[float, float]], replicates: int) -> xr.Dataset:
    """A sweep-like apparent-properties Dataset: 16² Gaussian level cuts, several points."""
    parts = []
    for p, (vf, contrast) in enumerate(points):
        ens = sh.generate("gaussian", (16, 16), n=replicates, rng=100 + p, volume_fraction=vf,
                          correlation_length=2.0)
        ens = ens.assign_coords(contrast=("sample", np.full(replicates, contrast)),
                                point=("sample", np.full(replicates, p)),
                                replicate=("sample", np.arange(replicates)))
        parts.append(sh.homogenize_ensemble(ens, phases, tol=1e-6))
    ds = xr.concat(parts, dim="sample", combine_attrs="override")
    ds = ds.assign_coords(sample=np.arange(ds.sizes["sample"]))
    ds.attrs.update(generator="gaussian", voxel_size=1.0, study=json.dumps({"phases": phases}))
    return ds


def _write_inputs(root: Path, props: xr.Dataset) -> dict:
    """Every optional input of a results directory, by hand; returns what was written."""
    rng = np.random.default_rng(0)
    study = {"name": EVIL, "hash": "abc123", "units": {"modulus": "GPa", "length": "um"},
             "study": {"generator": "gaussian", "shape": [16, 16], "seed": 7, "voxel_size": 1.0,
                       "fixed": {"correlation_length": 2.0, "note": "<img src=x onerror=alert(3)>"},
                       "design": "grid", "parameters": {"volume_fraction": [0.3, 0.5], "contrast": [5.0, 20.0]},
                       "replicates": REPLICATES, "phases": PHASES, "solver": {"tol": 1e-6}},
             "versions": {"stochhom": sh.__version__, "numpy": np.__version__},
             "stages": {"sweep": {"seconds": 1.5, "finished": "2026-01-01T00:00:00+00:00"},
                        "surrogates": {"seconds": 2.25, "finished": "2026-01-01T00:01:00+00:00"}}}
    (root / "study.json").write_text(json.dumps(study))
    (root / "phases.json").write_text(json.dumps(PHASES))
    save_dataset(props, root / "samples.zarr")
    save_dataset(sh.generate("gaussian", (16, 16), n=3, rng=1, volume_fraction=0.3, correlation_length=2.0),
                 root / "gallery.nc")

    rve = {"bulk_modulus": {"volumes": [64.0, 256.0, 1024.0], "variances": [0.04, 0.011, 0.0026],
                            "counts": [20, 20, 10], "means": [2.0, 2.1, 2.1], "alpha": 1.02, "alpha_ci": [0.9, 1.1],
                            "amplitude": 2.7, "integral_range": 12.5, "integral_range_ci": [10.0, 15.0], "chi2": 0.8},
           "phase_fraction_1": {"volumes": [64.0, 256.0], "variances": [0.01, 0.0025], "counts": [20, 20],
                                "means": [0.3, 0.3], "alpha": 1.0, "alpha_ci": [1.0, 1.0], "amplitude": 0.64,
                                "integral_range": None, "integral_range_ci": None, "chi2": 0.1}}
    (root / "rve.json").write_text(json.dumps(rve))

    frames = []
    for model in MODELS:
        for fold in range(3):
            y = rng.normal(2.0, 0.3, 5)
            for split, noise in (("test", 0.05), ("train", 0.02)):
                sc = score_predictions(y, Normal(y + rng.normal(0, noise, 5), 0.05))
                frames.append(sc.assign(model=model, target=TARGET, fold=fold, split=split, group=fold, row=0))
    cv = pd.concat(frames, ignore_index=True)
    cv.to_csv(root / "cv_predictions.csv", index=False)

    leak = pd.DataFrame([(m, TARGET, metric, 0.1, 0.3, 0.2, 0.05, 0.35, 3.0, 15, 5) for m in MODELS
                         for metric in ("rmse", "nlpd")],
                        columns=["model", "target", "metric", "naive", "grouped", "optimism", "optimism_low",
                                 "optimism_high", "ratio", "n", "n_groups"])
    leak.to_csv(root / "leakage.csv", index=False)
    ood_rows = []
    for m in MODELS:
        for split, lo, hi, d, v in (("reference", 0.0, 0.0, 0.0, 0.5), ("shell_1", 0.0, 0.25, 0.2, 0.9),
                                    ("shell_2", 0.25, np.inf, 0.6, 1.7)):
            ood_rows.append({"model": m, "target": TARGET, "split": split, "distance_low": lo, "distance_high": hi,
                             "distance_mean": d, "n_samples": 24, "n_groups": 8, "n_predictions": 24,
                             "rmse": v, "rmse_low": 0.8 * v, "rmse_high": 1.2 * v, "rmse_ratio": v / 0.5,
                             "rmse_ratio_low": 0.7 * v / 0.5, "rmse_ratio_high": 1.4 * v / 0.5,
                             "coverage_0.95": 0.9, "coverage_0.95_low": 0.8, "coverage_0.95_high": 1.0,
                             "coverage_0.95_ratio": 0.9 / 0.95, "coverage_0.95_ratio_low": 0.8,
                             "coverage_0.95_ratio_high": 1.05})
    pd.DataFrame(ood_rows).to_csv(root / "ood.csv", index=False)
    ood_info = {f"{TARGET}__{m}": {"ok": True, "declined": ["shells (0, 0.1] hold 5 samples: merged"],
                                   "box": [[0.3, 0.4], [5.0, 10.0]], "features": ["volume_fraction", "contrast"],
                                   "edges": [0.0, 0.25], "min_samples": 20} for m in MODELS}
    (root / "ood.json").write_text(json.dumps(ood_info))

    spec = {"volume_fraction": {"distribution": "uniform", "low": 0.3, "high": 0.5},
            "contrast": {"distribution": "loguniform", "low": 5.0, "high": 20.0}}
    prop = {TARGET: {m: {"mean": 2.0 + i, "mean_ci": [1.9 + i, 2.1 + i], "std": 0.3, "std_ci": [0.25, 0.35],
                         "quantiles": {"0.025": 1.4 + i, "0.5": 2.0 + i, "0.975": 2.6 + i},
                         "variance": {"total": 0.09, "aleatoric": 0.02, "epistemic": 0.01, "unsplit": 0.0,
                                      "input": 0.06},
                         "epistemic_share": 0.01 / 0.09, "inputs": ["volume_fraction", "contrast"],
                         "input_distribution": spec, "input_source": {"volume_fraction": "the grid",
                                                                      "contrast": "[propagation.inputs]"},
                         "n_inputs": 64, "n_functions": 8, "bounds": "Voigt–Reuss (Wiener) bounds",
                         "samples_outside_bounds": 0, "n_samples": 512} for i, m in enumerate(MODELS)}}
    (root / "propagation.json").write_text(json.dumps(prop))
    np.savez(root / "propagation_samples.npz",
             **{f"{TARGET}__{m}": rng.normal(2.0 + i, 0.3, 500) for i, m in enumerate(MODELS)})
    sobol = {TARGET: {m: {"names": ["volume_fraction", "contrast"], "first": [0.4, 0.2], "total": [0.45, 0.25],
                          "first_ci": [[0.3, 0.1], [0.5, 0.3]], "total_ci": [[0.35, 0.2], [0.55, 0.3]],
                          "method": "saltelli", "relative_to": "total",
                          "shares": {"input": 0.0667 / 0.09 * 0.9, "aleatoric": 0.2, "epistemic": 0.1, "unsplit": 0.0}}
                      for m in MODELS}}
    (root / "sobol.json").write_text(json.dumps(sobol))
    test = cv[cv["split"] == "test"]
    fitted = {"features": ["volume_fraction", "contrast"], "targets": [TARGET], "cv_groups": "point",
              "transforms": {TARGET: {"mode": "auto", "kind": "voigt_reuss", "description": "Voigt–Reuss bounds",
                                      "checked": [{"kind": "hashin_shtrikman", "outside": 2, "n": 15},
                                                  {"kind": "voigt_reuss", "outside": 0, "n": 15}]}},
              "scatter": {TARGET: {"scatter_std": 0.05, "scatter_share": 0.5, "r2_ceiling": 0.5, "points": 5,
                                   "scatter_dof": 10}},
              "models": {f"{TARGET}__{m}": {"seconds": 1.25, "n_train": 8, "folds": 3,
                                            "cv": pooled_metrics(test[test["model"] == m]),
                                            "train": pooled_metrics(cv[(cv["model"] == m) & (cv["split"] == "train")]),
                                            "calibration": "calibrated", "rmse_over_scatter": 1.1}
                         for m in MODELS}}
    (root / "surrogates.json").write_text(json.dumps(fitted))
    return {"study": study, "rve": rve, "cv": cv, "leakage": leak, "propagation": prop, "sobol": sobol}


@pytest.fixture(scope="module")
def props() -> xr.Dataset:
    ds = _sweep(PHASES, POINTS, REPLICATES)
    status = ds["status"].values.astype(object)
    status[FAILED] = EVIL_STATUS
    ds["status"] = ("sample", status.astype(str))
    ds["converged"][FAILED] = 0
    for name in ("stiffness", "bulk_modulus", "shear_modulus"):
        ds[name][FAILED] = np.nan
    return ds


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, props: xr.Dataset) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("results")
    written = _write_inputs(root, props)
    write_report(root)
    return root, written


def _strict_json(path: Path) -> dict:
    def bad(token: str) -> None:
        raise AssertionError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=bad)


def test_report_has_every_section_in_order_with_embedded_png_figures(results: tuple[Path, dict]) -> None:
    """Each section id appears once, in the documented order; figures are inline PNGs (no external resource)."""
    root, _ = results
    text = (root / "report.html").read_text()
    positions = [text.find(f'<section id="{sid}">') for sid, _ in SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    assert [sid for sid, _ in SECTIONS] == ["summary", "microstructure", "properties", "rve", "surrogates",
                                            "propagation", "structure", "validation", "failures", "provenance"]
    # the answers come first: the first section of <main> is the summary
    assert re.search(r"<main><section id=\"(\w+)\">", text).group(1) == "summary"
    # gallery, S2, properties, RVE, parity + calibration x 2 models, density, Sobol, leakage x 2, OOD x 2
    assert text.count(PNG) >= 14
    for b64 in re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)"', text):
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:|#)', text)  # self-contained
    assert "not run" not in text.lower()
    assert "Fitted models" in text and "bulk modulus K" in text and f"{TARGET}__gpr" not in text


def test_user_strings_are_escaped(results: tuple[Path, dict]) -> None:
    """The study name, a status message and a study parameter appear escaped, never raw."""
    root, _ = results
    text = (root / "report.html").read_text()
    assert EVIL not in text and "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>diverged" not in text and "&lt;b&gt;diverged&lt;/b&gt; &amp;" in text
    assert "<img src=x" not in text and "onerror=alert(2)" in text.replace("&lt;img src=x ", "")


def test_summary_json_equals_the_inputs(results: tuple[Path, dict], props: xr.Dataset) -> None:
    root, written = results
    s = _strict_json(root / "summary.json")
    assert {"schema_version", "stochhom_version", "units", "answers", "study", "counts", "versions", "timings",
            "solver", "points", "microstructure", "rve", "surrogates", "scatter", "propagation", "sobol", "leakage",
            "ood", "failures", "sections", "files"} <= set(s)
    assert s["schema_version"] == 1
    assert s["units"] == {"length": "µm", "modulus": "GPa", "conductivity": "phase units",
                          "declared": ["length", "modulus"]}
    assert s["study"]["name"] == EVIL and s["study"]["hash"] == "abc123" and s["study"]["seed"] == 7
    n = len(POINTS) * REPLICATES
    assert s["counts"] == {"samples": n, "computed": n, "converged": n - 1, "failed": 1, "pending": 0,
                           "points": len(POINTS)}
    assert set(s["timings"]) == {"sweep", "surrogates", "report"}
    assert (s["timings"]["sweep"], s["timings"]["surrogates"]) == (1.5, 2.25) and s["timings"]["report"] > 0
    # no [structure] table: that section says so
    assert s["sections"]["structure"]["status"] == "not applicable"
    assert all(v["status"] == "ok" for k, v in s["sections"].items() if k != "structure")
    # one interval layout: {"value", "low", "high", "level"} for every estimate with an interval
    fit = s["rve"]["bulk_modulus"]
    assert fit["alpha"] == {"value": 1.02, "low": 0.9, "high": 1.1, "level": 0.95}
    assert fit["integral_range"] == {"value": 12.5, "low": 10.0, "high": 15.0, "level": 0.95}
    assert s["rve"]["phase_fraction_1"]["integral_range"] is None
    for model, r in written["propagation"][TARGET].items():
        assert s["propagation"][TARGET][model]["mean"] == {"value": r["mean"], "low": r["mean_ci"][0],
                                                          "high": r["mean_ci"][1], "level": 0.95}
    first = s["sobol"][TARGET][MODELS[0]]["first"]
    assert first == [{"value": 0.4, "low": 0.3, "high": 0.5, "level": 0.95},
                     {"value": 0.2, "low": 0.1, "high": 0.3, "level": 0.95}]
    for rec, row in zip(s["leakage"], written["leakage"].to_dict(orient="records")):
        assert rec["optimism"] == {"value": row["optimism"], "low": row["optimism_low"], "high": row["optimism_high"],
                                   "level": 0.95}
    row = s["ood"]["table"][-1]
    assert row["distance"] == {"mean": 0.6, "from": 0.25, "to": None}  # the last shell is open (inf -> null)
    assert row["rmse"]["value"] == 1.7 and row["rmse_ratio"]["high"] == pytest.approx(1.4 * 1.7 / 0.5)

    def keys(obj, out):
        if isinstance(obj, dict):
            out.update(obj)
            for v in obj.values():
                keys(v, out)
        elif isinstance(obj, list):
            for v in obj:
                keys(v, out)
        return out

    stray = {k for k in keys(s, set()) if k.endswith(("_ci", "_low", "_high")) or k in ("ci_low", "ci_high")}
    assert not stray, stray
    # per-point means: numpy over the converged samples of each point
    conv = props["converged"].values.astype(bool)
    assert len(s["points"]) == len(POINTS)
    for entry in s["points"]:
        p = entry["parameters"]
        sel = ((props["volume_fraction"].values == p["volume_fraction"]) & (props["contrast"].values == p["contrast"]))
        assert entry["n_samples"] == sel.sum() and entry["n_failed"] == (sel & ~conv).sum()
        for name in ("bulk_modulus", "shear_modulus"):
            mean = entry["mean"][name]
            assert mean["value"] == pytest.approx(props[name].values[sel & conv].mean(), rel=1e-12)
            # a positive quantity: its interval never goes below zero
            assert mean["low"] is None or 0 <= mean["low"] <= mean["value"] <= mean["high"]
    # surrogate metrics: RMSE and coverage of the pooled out-of-fold predictions, one value everywhere
    cv = written["cv"]
    for model in MODELS:
        t = cv[(cv["model"] == model) & (cv["split"] == "test")]
        m = s["surrogates"][model][TARGET]
        assert m["rmse"] == pytest.approx(np.sqrt(np.mean((t["y"] - t["mean"]) ** 2)), rel=1e-12)
        z = np.abs(t["y"] - t["mean"]) / t["std"]
        assert m["coverage_0.95"] == pytest.approx(np.mean(z <= stats.norm.ppf(0.975)), rel=1e-12)
        assert m["n"] == len(t) and m["folds"] == 3
        assert m["calibration"] == "calibrated"
    text = (root / "report.html").read_text()
    for model in MODELS:  # the table shows the summary's number
        assert f'<td class="">{s["surrogates"][model][TARGET]["rmse"]:.4g}</td>' in text
    assert s["ood"]["table"] and all(r["n_samples"] >= 20 for r in s["ood"]["table"])
    assert len(s["failures"]) == 1 and s["failures"][0]["sample"] == FAILED
    assert s["failures"][0]["status"] == EVIL_STATUS
    assert s["failures"][0]["parameters"]["volume_fraction"] == POINTS[FAILED // REPLICATES][0]


def test_report_names_the_bounds_the_propagated_distribution_and_every_share(results: tuple[Path, dict]) -> None:
    """The surrogate section names the bounds and how they were chosen; the propagation section
    names the input distribution and the samples outside the bounds; the Sobol table lists the
    SVE scatter and the surrogate as shares of their own; the OOD rows carry their counts."""
    root, _ = results
    text = (root / "report.html").read_text()
    assert "Voigt–Reuss bounds" in text and "Hashin–Shtrikman: 2 of 15 training samples outside" in text
    assert "loguniform on [5, 20]" in text and "0 of 512" in text
    assert "SVE scatter (microstructure)" in text and "surrogate (epistemic)" in text
    assert "interactions of the parameters" in text
    assert "24 (8 groups)" in text and "merged" in text
    assert "The SVE scatter dominates" in text  # scatter share 0.5 in the synthetic scatter record


def test_missing_inputs_say_which_stage_to_run(results: tuple[Path, dict], tmp_path: Path) -> None:
    """Only study.json and samples.zarr: the other sections are 'not run', naming their stage."""
    root, _ = results
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(root / "study.json", bare / "study.json")
    shutil.copytree(root / "samples.zarr", bare / "samples.zarr")
    text = write_report(bare).read_text()
    s = _strict_json(bare / "summary.json")
    stages = {"microstructure": "gallery", "surrogates": "surrogates", "propagation": "propagation",
              "validation": "validation"}
    # the synthetic study does not sweep `size`: its RVE section is not applicable rather than not run
    assert s["sections"]["rve"]["status"] == "not applicable" and "does not sweep the SVE size" in text
    for sid, stage in stages.items():
        body = text[text.find(f'<section id="{sid}">'):]
        body = body[:body.find("</section>")]
        assert "Not run" in body and f'(stage "{stage}") first' in body and "stochhom run STUDY.toml" in body
        assert s["sections"][sid]["status"] == "not run" and f'stage "{stage}"' in s["sections"][sid]["message"]
    for sid in ("provenance", "properties", "failures"):
        assert s["sections"][sid]["status"] == "ok"
    # without phases.json the bounds come from the study's phase table
    assert "phases from the study&#x27;s phase table (study.json)" in text
    shutil.rmtree(bare / "samples.zarr")
    with pytest.raises(InputError, match='stage "sweep"'):
        write_report(bare)


def test_uninformative_leakage_and_an_ood_refusal_are_said(results: tuple[Path, dict], tmp_path: Path) -> None:
    """A leakage table whose groups are single samples is flagged; an OOD run that declined is
    shown with its reason instead of a table."""
    root, _ = results
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    leak = pd.read_csv(copy / "leakage.csv").assign(n_groups=40, n=40)
    leak.to_csv(copy / "leakage.csv", index=False)
    info = json.loads((copy / "ood.json").read_text())
    key = next(iter(info))
    info[key] = {**info[key], "ok": False, "declined": ["the training box holds 7 sample(s), fewer than "
                                                        "min_samples=20: raise [validation].ood_fraction"]}
    (copy / "ood.json").write_text(json.dumps(info))
    text = write_report(copy).read_text()
    assert "the comparison measures nothing" in text
    assert "the comparison measures nothing" not in (root / "report.html").read_text()
    assert "not evaluated" in text and "raise [validation].ood_fraction" in text


def test_pdf_on_request(results: tuple[Path, dict], tmp_path: Path) -> None:
    """The PDF is the whole report (tables included) printed by headless Chromium."""
    from stochhom.report.browser import find_chromium

    if find_chromium() is None:
        pytest.skip("headless Chromium not found: install Debian's chromium package (apt-get install chromium) "
                    "or set STOCHHOM_CHROMIUM")
    root, _ = results
    out = write_report(root, out=tmp_path / "elsewhere", pdf=True)
    assert out == tmp_path / "elsewhere" / "report.html" and out.is_file()
    pdf = (out.parent / "report.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-"
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 4  # many pages: text, tables and figures
    assert _strict_json(out.parent / "summary.json")["files"] == {"html": "report.html", "pdf": "report.pdf"}


def test_pdf_without_a_browser_is_refused_before_anything_is_written(
        results: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stochhom.report.browser as browser

    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    root, _ = results
    with pytest.raises(InputError, match="chromium"):
        write_report(root, out=tmp_path / "nowhere", pdf=True)
    assert not (tmp_path / "nowhere" / "report.html").exists()


def _section(text: str, sid: str) -> str:
    body = text[text.find(f'<section id="{sid}">'):]
    return body[:body.find("</section>")]


def test_summary_answers_first_with_the_numbers_of_the_sections(results: tuple[Path, dict]) -> None:
    """The summary asks the study's question and answers it with the sections' own numbers:
    the propagated distribution of the model to trust (calibrated, lowest CRPS), its trust
    metrics, the variance shares, the RVE, and every warning, in the declared units."""
    root, written = results
    text = (root / "report.html").read_text()
    s = _strict_json(root / "summary.json")
    answers = s["answers"]
    assert answers["question"].startswith("How is the effective")
    crps = {m: s["surrogates"][m][TARGET]["crps"] for m in MODELS}
    best = min(crps, key=crps.get)
    assert answers["recommended"][TARGET]["model"] == best
    (prop,) = answers["properties"]
    r = written["propagation"][TARGET][best]
    assert prop["model"] == best and prop["unit"] == "GPa"
    assert prop["mean"] == {"value": r["mean"], "low": r["mean_ci"][0], "high": r["mean_ci"][1], "level": 0.95}
    assert prop["quantiles"] == {"0.025": r["quantiles"]["0.025"], "0.5": r["quantiles"]["0.5"],
                                 "0.975": r["quantiles"]["0.975"]}
    (trust,) = answers["trust"]
    assert trust["rmse_over_scatter"] == 1.1 and trust["calibration"] == "calibrated"
    assert trust["ood_farthest"]["rmse_ratio"]["value"] == pytest.approx(1.7 / 0.5)
    (var,) = answers["variance"]
    assert var["shares"]["input"] == pytest.approx(0.06 / 0.09) and var["shares"]["aleatoric"] == pytest.approx(2 / 9)
    assert var["dominant_parameter"] == {"name": "volume_fraction", "total_index": 0.45}
    (rve,) = [a for a in answers["rve"] if a["target"] == "bulk_modulus"]
    assert rve["unit"] == "µm"
    # warnings: the failed sample and the dominant SVE scatter, in the summary and in summary.json
    summary = _section(text, "summary")
    assert "1 failed sample(s)" in summary and "Too-small SVEs" in summary
    assert any("failed sample" in w for w in answers["warnings"])
    assert any("Too-small SVEs" in w for w in answers["warnings"])
    # the summary shows the propagated mean with its interval, in the declared unit
    assert f"{r['mean']:.4g} [{r['mean_ci'][0]:.4g}, {r['mean_ci'][1]:.4g}]" in summary
    assert "bulk modulus K [GPa]" in summary
    # declared units everywhere; never the internal names or a 'length^d' unit
    assert "µm²" in text and "[phase units]" not in text and "length^d" not in text
    assert "target__model" not in text and "miscalibration_area" not in text


def test_appendix_is_tables_not_json(results: tuple[Path, dict]) -> None:
    """Configuration and provenance are tables at the end, not JSON dumps at the top; the
    timings include the report itself and the solve times leave compilation out."""
    root, _ = results
    text = (root / "report.html").read_text()
    appendix = _section(text, "provenance")
    assert text.find('<section id="provenance">') > text.find('<section id="failures">')
    assert "{&quot;" not in appendix and '{"' not in appendix
    assert "swept: volume_fraction" in appendix and "grid: 0.3, 0.5" in appendix
    assert "report (this rendering)" in appendix and "Total:" in appendix
    assert "IsotropicElastic" in appendix and "E = contrast" in appendix


def test_every_figure_is_sized_for_its_slot(results: tuple[Path, dict]) -> None:
    """Each figure carries its displayed width and its smallest font; at that width the
    smallest text is at least 10 px, and a figure wider than a column spans both."""
    root, _ = results
    text = (root / "report.html").read_text()
    imgs = re.findall(r'<figure( class="wide")?><img src="data:image/png;base64,[^"]+" width="(\d+)" '
                      r'height="(\d+)" data-min-font-px="([\d.]+)"', text)
    assert len(imgs) == text.count(PNG) >= 14
    for wide, width, _, font in imgs:
        assert float(font) >= 10
        assert (int(width) > 660) == bool(wide)


def test_units_and_question_of_a_study_file(tmp_path: Path) -> None:
    from stochhom.study.schema import StudyError, study_from_dict

    base = {"study": {"output": "out", "units": {"length": "um", "conductivity": "W/m/K"},
                      "question": "How conductive is it?"},
            "generator": {"name": "gaussian", "shape": [8, 8], "correlation_length": 2.0, "volume_fraction": 0.3},
            "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 10.0}}}
    study = study_from_dict(base, base=tmp_path)
    assert study.units.of("conductivity_eigenvalues_0") == "W/m/K" and study.units.length_unit(2) == "µm²"
    assert study.question == "How conductive is it?"
    plain = study_from_dict({**base, "study": {"output": "out"}}, base=tmp_path)
    assert plain.hash() == study.hash()  # labels change no number
    with pytest.raises(StudyError, match=r"\[study\].units: unknown key\(s\) \['temperature'\]; allowed keys"):
        study_from_dict({**base, "study": {"output": "out", "units": {"temperature": "K"}}}, base=tmp_path)
    with pytest.raises(StudyError, match=r"\[study\].units.length: expected a unit string"):
        study_from_dict({**base, "study": {"output": "out", "units": {"length": 3}}}, base=tmp_path)


def test_drawn_bounds_are_the_hashin_shtrikman_and_voigt_reuss_bounds(props: xr.Dataset) -> None:
    """Each sample's bounds use its measured fractions and its resolved phases; the figure draws exactly them."""
    b = sample_bounds(props, PHASES)
    fractions = props["phase_fraction"].values
    for k in range(props.sizes["sample"]):
        mats = resolve_phases(PHASES, sample_parameters(props, k))
        hs = hashin_shtrikman(mats, fractions[k], 2)
        kv, gv = isotropic_projection(voigt(mats, fractions[k], 2))
        kr, gr = isotropic_projection(reuss(mats, fractions[k], 2))
        assert (b["bulk_modulus"]["hs_lower"][k], b["bulk_modulus"]["hs_upper"][k]) == hs.bulk
        assert (b["shear_modulus"]["hs_lower"][k], b["shear_modulus"]["hs_upper"][k]) == hs.shear
        assert (b["bulk_modulus"]["voigt"][k], b["shear_modulus"]["voigt"][k]) == (kv, gv)
        assert (b["bulk_modulus"]["reuss"][k], b["shear_modulus"]["reuss"][k]) == (kr, gr)
        assert b["bulk_modulus"]["reuss"][k] <= hs.bulk[0] <= hs.bulk[1] <= kv
    fig = properties_figure(props, PHASES)
    lines = {line.get_gid(): line for ax in fig.axes for line in ax.lines if line.get_gid()}
    for key in ("hs_lower", "hs_upper", "voigt", "reuss"):
        for name in ("bulk_modulus", "shear_modulus"):
            np.testing.assert_array_equal(lines[f"{key}:{name}"].get_ydata(), b[name][key])
    for ax in fig.axes:
        assert "[" in ax.get_xlabel() and "[phase units]" in ax.get_ylabel()


def test_conductivity_mean_lies_inside_its_hashin_shtrikman_bounds() -> None:
    """tr k/d of any two-phase conductivity sample lies inside the HS bounds of its fractions."""
    phases = {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}}
    props = _sweep(phases, [(0.4, 10.0), (0.4, 50.0)], 2)
    b = sample_bounds(props, phases)["mean_conductivity"]
    mean = np.trace(props["conductivity"].values, axis1=1, axis2=2) / 2
    assert np.all(b["hs_lower"] * (1 - 1e-9) <= mean) and np.all(mean <= b["hs_upper"] * (1 + 1e-9))
    assert np.all(b["reuss"] <= b["hs_lower"]) and np.all(b["hs_upper"] <= b["voigt"])
    fig = properties_figure(props, phases)
    assert "mean conductivity" in fig.axes[0].get_ylabel() and fig.axes[0].get_xlabel().startswith("phase contrast")


def test_s2_theory_limits_and_bivariate_normal() -> None:
    """S₂(0) = φ and S₂(r → ∞) = φ² for the level cut and the Boolean model; the level cut's
    S₂ is the bivariate normal CDF Φ₂(α, α; ρ(r))."""
    r = np.array([0.0, 1.0, 2.5, 60.0])
    for params, gen in (({"volume_fraction": 0.3, "correlation_length": 3.0}, "gaussian"),
                        ({"volume_fraction": 0.3, "radius": 4.0}, "boolean")):
        for dim in (2, 3):
            s2 = s2_theory(gen, params, r, dim)
            assert s2[0] == pytest.approx(0.3, abs=1e-12) and s2[-1] == pytest.approx(0.09, abs=1e-12)
            assert np.all(np.diff(s2) <= 1e-15)
    alpha = stats.norm.ppf(0.3)
    for ri in (0.5, 2.0, 4.0):
        rho = np.exp(-0.5 * (ri / 3.0) ** 2)
        ref = stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([alpha, alpha])
        assert s2_theory("gaussian", {"volume_fraction": 0.3, "correlation_length": 3.0}, [ri], 2)[0] == \
            pytest.approx(ref, abs=1e-6)
    assert s2_theory("voronoi", {"volume_fraction": 0.3}, r, 2) is None
    assert s2_theory("gaussian", {"volume_fraction": 0.3, "correlation_length": [2.0, 4.0]}, r, 2) is None


def test_microstructure_figures_show_slices_of_3d_samples(tmp_path: Path) -> None:
    ens = sh.generate("boolean", (12, 12, 12), n=2, rng=3, volume_fraction=0.2, radius=2.0)
    save_dataset(ens, tmp_path / "g.nc")
    ens = open_dataset(tmp_path / "g.nc").load()
    fig = gallery_figure(ens)
    assert len(fig.axes[0].images) == 1 and "middle z slice" in fig.axes[0].get_title()
    assert fig.axes[0].images[0].get_array().shape == (12, 12)
    fig = s2_figure(ens)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert any(label.startswith("theory") for label in labels)
    assert fig.axes[0].get_xlabel() == "distance r [voxels]"  # voxel size 1, no declared unit


def test_an_rve_study_answers_at_its_largest_sve(results: tuple[Path, dict], props: xr.Dataset,
                                                 tmp_path: Path) -> None:
    """Without a propagated distribution, the summary gives the distribution over the samples
    (mean with its Student-t interval, quantiles); in a study that sweeps the SVE size, only
    over the samples of the largest size, which the summary names."""
    root, _ = results
    copy = tmp_path / "rve"
    shutil.copytree(root, copy)
    (copy / "propagation.json").unlink()
    shutil.rmtree(copy / "samples.zarr")
    n = props.sizes["sample"]
    size = np.where(np.arange(n) < n // 2, 16.0, 32.0)
    save_dataset(props.assign_coords(size=("sample", size)), copy / "samples.zarr")
    text = write_report(copy).read_text()
    s = _strict_json(copy / "summary.json")
    conv = props["converged"].values.astype(bool)
    k = props["bulk_modulus"].values[conv & (size == 32.0)]
    (answer,) = [a for a in s["answers"]["properties"] if a["target"] == "bulk_modulus"]
    assert answer["source"] == "samples of the design" and answer["n"] == k.size
    half = stats.t.ppf(0.975, k.size - 1) * k.std(ddof=1) / np.sqrt(k.size)
    assert answer["mean"]["value"] == pytest.approx(k.mean(), rel=1e-12)
    assert answer["mean"]["high"] - answer["mean"]["value"] == pytest.approx(half, rel=1e-9)
    assert answer["quantiles"]["0.5"] == pytest.approx(np.median(k), rel=1e-12)
    summary = _section(text, "summary")
    assert "largest SVE size (32 voxels)" in summary and "16 to 32 voxels (swept)" in summary


def test_the_propagated_distribution_is_checked_against_the_computed_sves(
        results: tuple[Path, dict], props: xr.Dataset, tmp_path: Path) -> None:
    """When the design draws its points from the propagated input distribution, the summary sets
    the computed SVEs' mean and standard deviation (bootstrap intervals over the points) against
    the surrogate's, and warns when the surrogate's fall outside them."""
    root, _ = results
    copy = tmp_path / "check"
    shutil.copytree(root, copy)
    prop = json.loads((copy / "propagation.json").read_text())
    for r in prop[TARGET].values():
        r["input_source"] = {k: "the sobol design's distribution" for k in r["input_source"]}
    (copy / "propagation.json").write_text(json.dumps(prop))
    write_report(copy)
    s = _strict_json(copy / "summary.json")
    conv = props["converged"].values.astype(bool)
    k = props[TARGET].values[conv]
    for answer in s["answers"]["properties"]:
        check = answer["design_samples"]
        assert check["n"] == k.size and check["points"] == len(POINTS)
        assert check["mean"]["value"] == pytest.approx(k.mean(), rel=1e-12)
        assert check["std"]["value"] == pytest.approx(k.std(ddof=1), rel=1e-12)
        assert check["mean"]["low"] <= check["mean"]["value"] <= check["mean"]["high"]
        inside = (check["mean"]["low"] <= answer["mean"]["value"] <= check["mean"]["high"]
                  and check["std"]["low"] <= answer["std"] <= check["std"]["high"])
        assert check["agree"] == inside
    if not all(a["design_samples"]["agree"] for a in s["answers"]["properties"]):
        assert any("disagrees with the computed SVEs" in w for w in s["answers"]["warnings"])
    # the fixture's own study (a grid with inputs of [propagation.inputs]) gets no such check
    assert all("design_samples" not in a for a in _strict_json(root / "summary.json")["answers"]["properties"])


def test_how_far_out_of_distribution_a_surrogate_is_trusted() -> None:
    """A shell extends the trusted distance only when its whole 95 % interval of the RMSE ratio is
    below 2; an interval above 2 ends it; one that straddles 2 leaves it undecided."""
    from stochhom.report.answers import _trusted_distance

    def shell(lo, hi, r, low, high):
        return {"distance_low": lo, "distance_high": hi, "rmse_ratio": r, "rmse_ratio_low": low,
                "rmse_ratio_high": high}

    inner = shell(0.0, 0.1, 1.2, 0.9, 1.6)
    assert _trusted_distance([inner, shell(0.1, float("inf"), 1.5, 1.1, 1.9)])[0] == float("inf")
    reach, text = _trusted_distance([inner, shell(0.1, 0.25, 5.0, 3.0, 8.0)])
    assert reach == 0.1 and "beyond" in text
    assert _trusted_distance([shell(0.0, 0.1, 2.2, 0.6, 4.6)]) == (None, "undecided at (0, 0.1] (2.2× [0.6, 4.6])")
    assert _trusted_distance([shell(0.0, 0.1, 5.0, 3.0, 8.0)])[0] == 0.0


def test_the_model_to_trust_is_calibrated_and_says_what_it_beat() -> None:
    from stochhom.report.answers import _recommend

    models = {"gpr": {"crps": 0.75, "calibration": "calibrated"}, "pce": {"crps": 0.59, "calibration": "miscalibrated"}}
    assert _recommend(models) == ("gpr", "calibrated; pce has a lower CRPS but fails the calibration check")
    models["gpr"]["calibration"] = "miscalibrated"
    assert _recommend(models) == ("pce", "lowest CRPS; no model passed the calibration check")


def test_few_replicates_get_no_interval_totals_add_up_and_a_stale_pdf_goes(
        results: tuple[Path, dict], props: xr.Dataset, tmp_path: Path) -> None:
    root, _ = results
    s = _strict_json(root / "summary.json")
    failed_point = FAILED // REPLICATES  # 2 converged samples left
    for entry in s["points"]:
        n = entry["count"]["bulk_modulus"]
        assert (entry["mean"]["bulk_modulus"]["low"] is None) == (n < 3)
    vf, contrast = POINTS[failed_point]
    (entry,) = [e for e in s["points"]
                if (e["parameters"]["volume_fraction"], e["parameters"]["contrast"]) == (vf, contrast)]
    assert entry["count"]["bulk_modulus"] == REPLICATES - 1 and entry["mean"]["bulk_modulus"]["low"] is None
    text = (root / "report.html").read_text()
    total = float(re.search(r"<p>Total: ([\d.]+) s.</p>", text).group(1))
    assert total == pytest.approx(sum(s["timings"].values()), abs=0.1)
    copy = tmp_path / "stale"
    shutil.copytree(root, copy)
    (copy / "report.pdf").write_bytes(b"%PDF-1.4 old")
    write_report(copy)
    assert not (copy / "report.pdf").exists()


def test_the_method_sentence_names_the_discretization_that_ran() -> None:
    """"auto" is resolved as the solver resolves it: Q1 for porous media, rotated otherwise."""
    from stochhom.report.answers import _discretization

    porous = {"0": {"law": "IsotropicElastic", "E": 1.0, "nu": 0.3}, "1": {"law": "Void"}}
    solid = {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 5.0}}
    assert _discretization({"phases": porous, "solver": {}}) == "q1"
    assert _discretization({"phases": porous, "solver": {"dtype": "float32"}}) == "rotated"
    assert _discretization({"phases": solid, "solver": {}}) == "rotated"
    assert _discretization({"phases": solid, "solver": {"discretization": "fourier"}}) == "fourier"
    assert _discretization({"phases": solid, "solver": {"backend": "torch"}}) == "q1"


def test_the_method_sentence_names_mixed_precision_and_composite_voxels() -> None:
    from stochhom.report.answers import _method_text
    from stochhom.units import Units

    solid = {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 5.0}}
    plain = _method_text({"phases": solid, "solver": {}}, (32, 32), None, Units())
    assert "composite" not in plain and "float32" not in plain
    text = _method_text({"phases": solid, "solver": {"dtype": "mixed", "composite_voxels": 4}}, (32, 32), None,
                        Units())
    assert "mixed" in text and "refined to that residual in float64" in text
    assert "composite voxels, from a rendering 4 times finer" in text
