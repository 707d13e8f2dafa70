"""Sweep timings: the kernel warm-up is counted once per process (``warmup_time``), never in a
sample's ``solve_time``; stores written before ``warmup_time`` existed are still read and resumed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from stochhom.study import run_sweep, study_from_dict
from stochhom.study import sweep as sweep_mod

BASE = {
    "study": {"output": "out.zarr", "seed": 11},
    "generator": {"name": "gaussian", "shape": [16, 16], "correlation_length": 2.0},
    "sweep": {"replicates": 2, "parameters": {"volume_fraction": [0.3, 0.5], "contrast": [10.0, 50.0]}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
}


def _study(tmp_path: Path, output: str):
    data = {k: dict(v) for k, v in BASE.items()}
    data["study"] = {**data["study"], "output": str(tmp_path / output)}
    return study_from_dict(data, base=tmp_path)


def test_warmup_is_stored_once_and_separately_from_solve_time(tmp_path) -> None:
    ds = run_sweep(_study(tmp_path, "w.zarr"), workers=1, progress=False)
    assert "warmup_time" in ds and ds["warmup_time"].dims == ("sample",)
    warm = ds["warmup_time"].values
    assert warm.dtype.kind == "f" and np.all(np.isfinite(warm))
    # in-process: one warm-up, carried by the first sample computed (sample 0); exactly 0 elsewhere
    assert np.count_nonzero(warm > 0) == 1 and warm[0] > 0
    assert np.all(warm[1:] == 0.0)
    assert np.all(np.isfinite(ds["solve_time"].values)) and np.all(ds["solve_time"].values > 0)


def test_warmup_runs_before_the_first_timed_sample(tmp_path, monkeypatch) -> None:
    """Order, not timing: the warm-up happens once, before any sample is generated or solved,
    and its seconds land in ``warmup_time`` of that first sample, not in its ``solve_time``."""
    events: list[str] = []
    real_one = sweep_mod._one

    def fake_warm_up(study, params, run=None):
        events.append("warm")
        if run in sweep_mod._WARMED:
            return 0.0
        sweep_mod._WARMED.add(run)
        return 123.0

    def one(study, k, params, seed):
        events.append("one")
        return real_one(study, k, params, seed)

    monkeypatch.setattr(sweep_mod, "_warm_up", fake_warm_up)
    monkeypatch.setattr(sweep_mod, "_one", one)
    ds = run_sweep(_study(tmp_path, "o.zarr"), workers=1, progress=False, flush_seconds=1e-9)
    assert events[0] == "warm" and events.count("one") == 8
    assert list(ds["warmup_time"].values) == [123.0] + [0.0] * 7


def test_spawned_workers_warm_up_once_each_and_results_do_not_depend_on_it(tmp_path) -> None:
    serial = run_sweep(_study(tmp_path, "a.zarr"), workers=1, progress=False)
    parallel = run_sweep(_study(tmp_path, "b.zarr"), workers=2, progress=False)
    warm = parallel["warmup_time"].values
    assert np.all(np.isfinite(warm)) and np.all(warm >= 0)
    assert 1 <= np.count_nonzero(warm > 0) <= 2  # one per worker process that computed samples
    timings = ["solve_time", "warmup_time"]
    assert serial.drop_vars(timings).identical(parallel.drop_vars(timings))


def test_resumed_store_records_a_new_warmup_and_keeps_nan_for_pending(tmp_path) -> None:
    st = _study(tmp_path, "r.zarr")
    first = run_sweep(st, workers=1, progress=False)
    path = tmp_path / "r.zarr"
    group = zarr.open_group(str(path), mode="r+")
    # as if killed after 4 samples: the others not done, their timings not written
    group["done"][4:] = 0
    group["warmup_time"][4:] = np.nan
    pending = xr.open_zarr(path, consolidated=False)["warmup_time"].values
    assert np.all(np.isnan(pending[4:])) and pending[0] > 0
    resumed = run_sweep(st, workers=1, progress=False)
    warm = resumed["warmup_time"].values
    assert warm[0] == first["warmup_time"].values[0] and warm[4] > 0  # this run's own warm-up
    assert np.count_nonzero(warm > 0) == 2 and np.all(np.isfinite(warm))
    timings = ["solve_time", "warmup_time"]
    assert resumed.drop_vars(timings).identical(first.drop_vars(timings))


def test_store_written_before_warmup_time_is_read_and_resumed(tmp_path) -> None:
    st = _study(tmp_path, "old.zarr")
    ref = run_sweep(st, workers=1, progress=False)
    path = tmp_path / "old.zarr"
    # an old store: the same layout without the variable, half of it not done
    shutil.rmtree(path / "warmup_time")
    zarr.open_group(str(path), mode="r+")["done"][4:] = 0
    old = xr.open_zarr(path, consolidated=False)
    assert "warmup_time" not in old and int(old["done"].sum()) == 4
    plan = run_sweep(st, dry_run=True, workers=1)
    assert plan["done"] == 4 and plan["remaining"] == 4
    messages: list[str] = []
    resumed = run_sweep(st, workers=1, progress=False, log=messages.append)
    assert any("resuming" in m and "4 of 8 samples done" in m for m in messages)
    assert "warmup_time" not in resumed and int(resumed["done"].sum()) == 8
    assert resumed.drop_vars("solve_time").identical(ref.drop_vars(["solve_time", "warmup_time"]))
