"""Benchmark 3: full 3D stiffness (6 load cases) at contrast 100: wall time, peak memory.

Each configuration runs in a fresh subprocess (after a JIT warm-up on a tiny
problem) and reports the peak resident memory above that baseline, per voxel.
Microstructure: hard spheres, f = 0.2; matrix E = 1, nu = 0.3; spheres E = 100.

Run: ``python benchmarks/bench_stiffness3d.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import save

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
import numpy as np
import stochhom as sh
from common import hard_spheres
n, batch, dtype, backend = {n}, {batch}, {dtype!r}, {backend!r}
phases = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(100.0, 0.3)]
sh.homogenize(hard_spheres(3, 8), phases, dtype=dtype, backend=backend)  # JIT warm-up
image = hard_spheres(3, n)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
res = sh.homogenize(image, phases, batch_size=batch, dtype=dtype, backend=backend, workers={workers})
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(n=n, batch=res.info["batch_size"], dtype=dtype, backend=backend, wall_s=wall,
                      iterations=res.iterations.tolist(), peak_above_baseline_MB=(peak - base) / 2**20,
                      bytes_per_voxel=(peak - base) / n**3, C11=float(res.effective[0, 0]),
                      C44_mandel=float(res.effective[3, 3]))))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sizes = (32,) if args.quick else (64, 128)
    configs = [(n, b, "float64", "numba") for n in sizes for b in (1, None)]
    configs += [(sizes[-1], 1, "float32", "numba")]
    rows = []
    bench = str(Path(__file__).parent)
    for n, batch, dtype, backend in configs:
        code = CHILD.format(bench=bench, n=n, batch=batch, dtype=dtype, backend=backend, workers=args.workers)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{n}^3 {dtype} batch {row['batch']}: {row['wall_s']:.1f} s, iterations {row['iterations']}, "
            f"peak +{row['peak_above_baseline_MB']:.0f} MB = {row['bytes_per_voxel']:.0f} B/voxel",
            flush=True,
        )
    path = save("stiffness3d" + ("_quick" if args.quick else ""), {"workers": args.workers, "rows": rows})
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
