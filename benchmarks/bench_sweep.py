"""Sweep throughput and per-sample overhead.

1. Throughput with 2 worker processes against 1 (target >= 1.7x on 2 cores), on
   128 conductivity samples of 256^2 (about 40 s of work): the wall time of the whole
   ``run_sweep`` call, which includes starting the worker processes (spawn, imports,
   loading numba's cached kernels: about 1.9 s per worker, measured separately).
2. Per-sample overhead (scheduling and storage) against solve time for 64^2
   conductivity samples (target <= 5 %). One worker (in-process: no inter-process
   transfer); the time spent generating and homogenizing is measured inside the run.
   Two sweep sizes separate the fixed cost of a run (creating the store, reading it
   back) from the marginal overhead per sample (batching, buffering, zarr writes):
   overhead(n) = fixed + n * marginal.

Run: ``python benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import multiprocessing
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import save

from stochhom.study import run_sweep, study_from_dict
from stochhom.study import sweep as sweep_module


def study(out: Path, shape: int, replicates: int, contrast: list[float]) -> object:
    return study_from_dict({
        "study": {"output": str(out), "seed": 1},
        "generator": {"name": "gaussian", "shape": [shape, shape], "correlation_length": 4.0},
        "sweep": {"replicates": replicates, "parameters": {"volume_fraction": [0.3, 0.5], "contrast": contrast}},
        "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
    })


def timed(st: object, workers: int) -> float:
    shutil.rmtree(st.output, ignore_errors=True)
    t = time.perf_counter()
    run_sweep(st, workers=workers, progress=False)
    return time.perf_counter() - t


def _start_worker(_: int) -> float:
    t = time.perf_counter()
    import numpy as np

    import stochhom as sh
    import stochhom.study.sweep

    img = (np.random.default_rng(0).random((64, 64)) > 0.5).astype(np.uint8)
    sh.homogenize(img, [sh.Conductivity(1.0), sh.Conductivity(10.0)], workers=1)
    return time.perf_counter() - t


def worker_startup() -> float:
    """Seconds for a spawned process to import stochhom and run its first (numba-cached) solve."""
    t = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_start_worker, 0).result()
    return time.perf_counter() - t


def overhead(st: object) -> tuple[float, float]:
    """(wall, generate+solve) seconds of a one-worker sweep."""
    inner = []
    original = sweep_module._one

    def timed_one(*args, **kwargs):
        t = time.perf_counter()
        out = original(*args, **kwargs)
        inner.append(time.perf_counter() - t)
        return out

    sweep_module._one = timed_one
    try:
        wall = timed(st, 1)
    finally:
        sweep_module._one = original
    return wall, sum(inner)


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    rows = {}
    startup = worker_startup()
    print(f"worker start-up (spawn, import, first solve): {startup:.2f} s")
    # 1. throughput: 128 samples of 256^2 at contrast 100/1000
    st = study(tmp / "t.zarr", 256, 32, [100.0, 1000.0])
    n = 2 * 2 * 32
    one = timed(st, 1)
    two = timed(st, 2)
    rows["throughput"] = {"samples": n, "grid": "256^2", "wall_1_worker_s": one, "wall_2_workers_s": two,
                          "speedup": one / two, "samples_per_s_1": n / one, "samples_per_s_2": n / two,
                          "worker_startup_s": startup}
    print(f"throughput, {n} samples of 256^2: 1 worker {one:.1f} s, 2 workers {two:.1f} s -> speedup {one / two:.2f}")
    # 2. overhead: 64^2 conductivity, one worker, two sweep sizes
    runs = {}
    for reps in (25, 125):
        n = 2 * 2 * reps
        wall, work = overhead(study(tmp / f"o{reps}.zarr", 64, reps, [10.0, 100.0]))
        runs[n] = (wall, work)
        print(f"overhead, {n} samples of 64^2: wall {wall:.2f} s, generate+solve {work:.2f} s "
              f"({1e3 * work / n:.1f} ms/sample) -> total overhead {100 * (wall - work) / work:.1f} %")
    (n1, (w1, s1)), (n2, (w2, s2)) = sorted(runs.items())
    marginal = ((w2 - s2) - (w1 - s1)) / (n2 - n1)
    fixed = (w1 - s1) - n1 * marginal
    per_sample = s2 / n2
    rows["overhead"] = {
        "grid": "64^2",
        "runs": {str(k): {"wall_s": w, "generate_and_solve_s": s, "overhead_fraction": (w - s) / s}
                 for k, (w, s) in runs.items()},
        "per_sample_solve_ms": 1e3 * per_sample,
        "marginal_overhead_ms": 1e3 * marginal,
        "marginal_overhead_fraction": marginal / per_sample,
        "fixed_overhead_s": fixed,
    }
    print(f"per-sample overhead: {1e3 * marginal:.2f} ms against {1e3 * per_sample:.1f} ms of work "
          f"({100 * marginal / per_sample:.1f} %); fixed cost per run {fixed:.2f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    print("wrote", save("sweep", rows), file=sys.stderr)


if __name__ == "__main__":
    main()
