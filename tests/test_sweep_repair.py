"""Damaged sweep stores are repaired sample by sample, a store written by code whose samples
differ is not resumed, and an unreachable Dask scheduler leaves nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from stochhom.errors import InputError
from stochhom.study import SweepStoreError, run_sweep, study_from_dict
from stochhom.study import schema as schema_mod
from stochhom.study.sweep import _CHUNK

#: Per-sample timings: the only variables that differ between runs of the same study.
TIMINGS = ["solve_time", "warmup_time"]

#: 3 chunks of the store (64 + 64 + 4 samples): damage in one chunk must spare the others.
STUDY = {
    "study": {"output": "s.zarr", "seed": 4},
    "generator": {"name": "gaussian", "shape": [12, 12], "correlation_length": 2.0},
    "sweep": {"replicates": 33, "parameters": {"volume_fraction": [0.3, 0.4, 0.5, 0.6]}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 20.0}},
}
N = 132


def _study(base: Path, output: str):
    return study_from_dict({**STUDY, "study": {**STUDY["study"], "output": output}}, base=base)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, object]:
    d = tmp_path_factory.mktemp("repair")
    ds = run_sweep(_study(d, "s.zarr"), workers=1, progress=False)
    assert ds.sizes["sample"] == N and int(ds["done"].sum()) == N
    return d / "s.zarr", ds


@pytest.fixture
def store(tmp_path, finished) -> Path:
    shutil.copytree(finished[0], tmp_path / "s.zarr")
    return tmp_path / "s.zarr"


def _chunk_file(store: Path, variable: str, index: int) -> Path:
    """The zarr v2 chunk file of chunk ``index`` along the sample axis (first file of that row)."""
    files = sorted(p for p in (store / variable).iterdir() if not p.name.startswith("."))
    row = [p for p in files if p.name.split(".")[0] == str(index)]
    assert row, f"no chunk {index} of {variable}: {[p.name for p in files]}"
    return row[0]


def _repair(tmp_path: Path) -> tuple[object, list[str]]:
    said: list[str] = []
    ds = run_sweep(_study(tmp_path, "s.zarr"), workers=1, progress=False, repair=True, log=said.append)
    ds.attrs["repaired"] = ds.attrs.pop("repaired_samples")  # not a stored attribute: compared apart
    return ds, said


def test_repair_recomputes_exactly_the_samples_of_unreadable_chunks(tmp_path, store, finished) -> None:
    ref = finished[1]
    _chunk_file(store, "conductivity", 1).write_bytes(b"garbage, not a blosc frame")   # samples 64-127
    chunk = _chunk_file(store, "done", 2)                                                # samples 128-131
    chunk.write_bytes(chunk.read_bytes()[:9])
    with pytest.raises(RuntimeError):  # without --repair the damage is not read past
        run_sweep(_study(tmp_path, "s.zarr"), workers=1, progress=False)
    ds, said = _repair(tmp_path)
    assert ds.attrs.pop("repaired") == N - _CHUNK == 68
    assert any("68 sample(s) to recompute (samples 64-131)" in m and "64 finished sample(s) kept" in m
               and "conductivity" in m and "done" in m for m in said), said
    # every number equals the undamaged run's; the kept samples keep their original timings
    assert ds.drop_vars(TIMINGS).identical(ref.drop_vars(TIMINGS))
    np.testing.assert_array_equal(ds["solve_time"].values[:_CHUNK], ref["solve_time"].values[:_CHUNK])
    assert not np.array_equal(ds["solve_time"].values[_CHUNK:], ref["solve_time"].values[_CHUNK:])
    from stochhom.io import damaged_variables

    assert damaged_variables(store) == []


def test_repair_rewrites_damaged_coordinates_and_metadata(tmp_path, store, finished) -> None:
    """A coordinate is the study's, so it is regenerated without recomputing anything; an array
    whose metadata is unreadable loses every sample (all are recomputed)."""
    _chunk_file(store, "seed", 0).write_bytes(b"garbage")
    _chunk_file(store, "sample", 0).write_bytes(b"garbage")  # the index: xarray cannot even open the store
    ds, _ = _repair(tmp_path)
    assert ds.attrs.pop("repaired") == 0 and ds.drop_vars(TIMINGS).identical(finished[1].drop_vars(TIMINGS))
    (store / "residual" / ".zarray").write_text("{not json")
    ds, _ = _repair(tmp_path)
    assert ds.attrs.pop("repaired") == N and ds.drop_vars(TIMINGS).identical(finished[1].drop_vars(TIMINGS))


def test_repair_of_an_intact_store_recomputes_nothing(tmp_path, store, finished) -> None:
    ds, said = _repair(tmp_path)
    assert ds.attrs.pop("repaired") == 0 and any("nothing to repair" in m for m in said)
    assert ds.identical(finished[1])  # timings included: nothing ran again


def test_repair_refuses_what_it_cannot_identify(tmp_path, store) -> None:
    other = {**STUDY, "study": {**STUDY["study"], "output": "s.zarr", "seed": 5}}
    with pytest.raises(SweepStoreError, match="different study"):
        run_sweep(study_from_dict(other, base=tmp_path), workers=1, progress=False, repair=True)
    (store / ".zattrs").write_text("{truncated")
    with pytest.raises(SweepStoreError, match=r"attributes \(.zattrs\) cannot be read.*--restart"):
        _repair(tmp_path)
    with pytest.raises(InputError, match="choose one"):
        run_sweep(_study(tmp_path, "s.zarr"), workers=1, progress=False, repair=True, restart=True)


def test_cli_repair(tmp_path, store, capsys) -> None:
    from stochhom.cli import main

    (tmp_path / "study.toml").write_text(
        '[study]\noutput = "s.zarr"\nseed = 4\n[generator]\nname = "gaussian"\nshape = [12, 12]\n'
        'correlation_length = 2.0\n[sweep]\nreplicates = 33\nparameters = { volume_fraction = [0.3, 0.4, 0.5, 0.6] }\n'
        '[phases.0]\nlaw = "Conductivity"\nk = 1.0\n[phases.1]\nlaw = "Conductivity"\nk = 20.0\n')
    _chunk_file(store, "conductivity_eigenvalues", 0).write_bytes(b"garbage")
    assert main(["sweep", str(tmp_path / "study.toml"), "--workers", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "--repair" in err and "index 0-63" in err
    assert main(["info", str(store)]) == 2
    capsys.readouterr()
    assert main(["sweep", str(tmp_path / "study.toml"), "--workers", "1", "--quiet", "--repair"]) == 0
    assert "64 sample(s) to recompute" in capsys.readouterr().err
    assert main(["info", str(store)]) == 0
    assert main(["sweep", str(tmp_path / "study.toml"), "--restart", "--repair"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_store_of_another_samples_version_is_not_resumed(tmp_path, monkeypatch) -> None:
    small = {**STUDY, "sweep": {"replicates": 1, "parameters": {"volume_fraction": [0.3, 0.5]}}}
    monkeypatch.setattr(schema_mod, "SAMPLES_VERSION", 0)
    run_sweep(study_from_dict(small, base=tmp_path), workers=1, progress=False)
    monkeypatch.undo()
    with pytest.raises(SweepStoreError, match=rf"samples version 0 -> {schema_mod.SAMPLES_VERSION}.*--restart"):
        run_sweep(study_from_dict(small, base=tmp_path), workers=1, progress=False)
    ds = run_sweep(study_from_dict(small, base=tmp_path), workers=1, progress=False, restart=True)
    assert json.loads(ds.attrs["study"])["samples_version"] == schema_mod.SAMPLES_VERSION


def test_resume_by_another_release_of_the_same_samples_version_is_recorded(tmp_path, monkeypatch) -> None:
    import stochhom

    small = {**STUDY, "sweep": {"replicates": 1, "parameters": {"volume_fraction": [0.3, 0.5]}}}
    monkeypatch.setattr(stochhom, "__version__", "0.0.9")
    run_sweep(study_from_dict(small, base=tmp_path), workers=1, progress=False)
    monkeypatch.undo()
    ds = run_sweep(study_from_dict(small, base=tmp_path), workers=1, progress=False)
    assert json.loads(ds.attrs["stochhom_versions"]) == ["0.0.9", stochhom.__version__]
    assert ds.attrs["stochhom_version"] == "0.0.9"  # the version that created the store


def test_unreachable_dask_scheduler_writes_nothing(tmp_path, monkeypatch) -> None:
    import socket

    from stochhom.study import sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "_CONNECT_TIMEOUT", "1s")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InputError, match=r"cannot reach the Dask scheduler.*nothing was written"):
        run_sweep(_study(tmp_path, "d.zarr"), scheduler=f"tcp://127.0.0.1:{port}", progress=False)
    assert not (tmp_path / "d.zarr").exists()
    assert not any(tmp_path.iterdir())  # no lock file and no half-created store either


def test_run_repair_reruns_the_stages_after_the_sweep(tmp_path, monkeypatch) -> None:
    """``stochhom run --repair``: the recomputed samples invalidate every stage that reads them
    (the stages are stubbed here: this is about which of them run, not what they compute)."""
    import stochhom.report as report
    from stochhom.study import runner

    outputs = {"_stage_surrogates": ["surrogates.json"], "_stage_propagation": ["propagation.json"],
               "_stage_validation": ["leakage.csv", "ood.json"], "_stage_rve": [], "_stage_gallery": []}
    calls: list[str] = []

    def stub(name):
        def stage(study, out, *args, **kwargs):
            calls.append(name)
            for f in outputs[name]:
                (out / f).write_text("{}")
        return stage

    for name in outputs:
        monkeypatch.setattr(runner, name, stub(name))

    def write_report(out, pdf=False):
        calls.append("report")
        for f in ("report.html", "summary.json"):
            (out / f).write_text("{}")

    monkeypatch.setattr(report, "write_report", write_report)
    study = _study(tmp_path, "res")
    runner.run_study(study, workers=1, progress=False, log=lambda m: None)
    assert calls == ["_stage_gallery", "_stage_rve", "_stage_surrogates", "_stage_propagation",
                     "_stage_validation", "report"]
    calls.clear()
    runner.run_study(study, workers=1, progress=False, log=lambda m: None, repair=True)
    assert calls == []  # an intact store: nothing is recomputed, every stage is up to date
    _chunk_file(tmp_path / "res" / "samples.zarr", "conductivity", 2).write_bytes(b"garbage")
    runner.run_study(study, workers=1, progress=False, log=lambda m: None, repair=True)
    assert calls == ["_stage_rve", "_stage_surrogates", "_stage_propagation", "_stage_validation", "report"]
