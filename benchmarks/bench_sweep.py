"""Sweep throughput and per-sample overhead.

1. Throughput with 2 worker processes against 1 (target >= 1.7x on 2 cores), on a
   sweep of 64^3-free 2D samples heavy enough that process start-up is amortized.
2. Per-sample overhead (scheduling and storage) against solve time for 64^2
   conductivity samples (target <= 5 %): the sweep's wall time with one worker
   (in-process: no inter-process transfer), minus the time spent generating and
   homogenizing (measured inside the same run), per sample, over the latter.

Run: ``python benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
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


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    rows = {}
    # 1. throughput: 128 samples of 128^2 at contrast 100/1000
    st = study(tmp / "t.zarr", 128, 32, [100.0, 1000.0])
    n = 2 * 2 * 32
    one = timed(st, 1)
    two = timed(st, 2)
    rows["throughput"] = {"samples": n, "grid": "128^2", "wall_1_worker_s": one, "wall_2_workers_s": two,
                          "speedup": one / two, "samples_per_s_1": n / one, "samples_per_s_2": n / two}
    print(f"throughput, {n} samples of 128^2: 1 worker {one:.1f} s, 2 workers {two:.1f} s -> speedup {one / two:.2f}")
    # 2. overhead: 64^2 conductivity, one worker, solve time measured inside the run
    st = study(tmp / "o.zarr", 64, 50, [10.0, 100.0])
    n = 2 * 2 * 50
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
    work = sum(inner)
    overhead = (wall - work) / work
    rows["overhead"] = {"samples": n, "grid": "64^2", "wall_s": wall, "generate_and_solve_s": work,
                        "per_sample_ms": 1e3 * work / n, "overhead_per_sample_ms": 1e3 * (wall - work) / n,
                        "overhead_fraction": overhead}
    print(f"overhead, {n} samples of 64^2: wall {wall:.2f} s, generate+solve {work:.2f} s "
          f"({1e3 * work / n:.1f} ms/sample) -> overhead {100 * overhead:.1f} % "
          f"({1e3 * (wall - work) / n:.2f} ms/sample)")
    shutil.rmtree(tmp, ignore_errors=True)
    print("wrote", save("sweep", rows), file=sys.stderr)


if __name__ == "__main__":
    main()
