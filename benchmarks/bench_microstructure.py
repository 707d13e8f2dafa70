"""Microstructure generation and descriptors: wall time and peak memory.

Each case runs in a fresh process; memory is the peak resident set above the
baseline after imports, compared with one float64 field of the grid (8 B/voxel).
Targets (issue 3, 2 cores): 256^3 Gaussian-field level cut <= 10 s (aim 5 s);
256^3 Boolean model with 1e4 spheres <= 10 s; S2 of a 256^3 image <= 5 s; peak
memory within a few copies of the float field; labels as uint8.

Run: ``python benchmarks/bench_microstructure.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import save

CASES = {
    "gaussian": "sh.generate('gaussian', (n, n, n), rng=1, volume_fraction=0.3, correlation_length=8.0, workers=2)",
    "gaussian_exponential": (
        "sh.generate('gaussian', (n, n, n), rng=1, volume_fraction=0.3, correlation_length=8.0, "
        "model='exponential', workers=2)"
    ),
    "gaussian_quantile": (
        "sh.generate('gaussian', (n, n, n), rng=1, volume_fraction=0.3, correlation_length=8.0, "
        "cut='quantile', workers=2)"
    ),
    # 1e4 spheres at f = 0.3 in n^3: radius = (3 |ln 0.7| n^3 / (4 pi 1e4))^(1/3)
    "boolean_1e4_spheres": (
        "sh.generate('boolean', (n, n, n), rng=1, volume_fraction=0.3, "
        "radius=(3 * 0.35667 * n**3 / (4 * 3.14159265 * 1e4)) ** (1 / 3))"
    ),
    "rsa": "sh.generate('rsa', (n, n, n), rng=1, volume_fraction=0.3, radius=n / 24)",
    "voronoi_1000": "sh.generate('voronoi', (n // 2, n // 2, n // 2), rng=1, n_grains=1000, workers=2)",
    "s2": "sh.microstructure.two_point_probability(image, workers=2)",
}

CHILD = r"""
import json, resource, time, sys
import numpy as np
import stochhom as sh
n = {n}
image = (np.random.default_rng(0).random((n, n, n)) < 0.3).astype(np.uint8) if {needs_image} else None
sh.generate('gaussian', (8, 8, 8), rng=0, volume_fraction=0.3, correlation_length=2.0)  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
out = {expr}
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
dtype = str(out['phase'].dtype) if hasattr(out, 'data_vars') else str(out.dtype)
voxels = out['phase'][0].size if hasattr(out, 'data_vars') else out.size
print(json.dumps(dict(wall_s=wall, peak_MB=(peak - base) / 2**20, float_field_MB=voxels * 8 / 2**20,
                      copies_of_float_field=(peak - base) / (voxels * 8), dtype=dtype, voxels=int(voxels))))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 64 if args.quick else 256
    rows = {}
    for name, expr in CASES.items():
        code = CHILD.format(n=n, expr=expr, needs_image=name == "s2")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows[name] = row
        print(f"{name:22s} {row['voxels']:>10d} voxels: {row['wall_s']:6.2f} s, peak +{row['peak_MB']:7.0f} MB "
              f"= {row['copies_of_float_field']:.1f} float fields, dtype {row['dtype']}", flush=True)
    path = save("microstructure" + ("_quick" if args.quick else ""), {"n": n, "rows": rows})
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
