"""Benchmark 10: apparent stiffness under KUBC, SUBC, periodic FE and mixed conditions (voxel elements, AMG-CG).

The resolution study's microstructure (136 overlapping spheres of radius 1/12, seed 7,
inclusion fraction 0.28) at n^3, elasticity (matrix E = 1, nu = 0.3; inclusions E = 10,
nu = 0.3), all six load cases, tol 1e-8 on ||b - Ku|| / ||b||. Each case runs in its own
process so that its peak resident memory (``ru_maxrss``) is its own. Reports the wall
time (assembly + AMG setup + solves) and the process's CPU time, the AMG setup alone,
the multigrid-preconditioned block-CG iterations per load case (flat in n if the
preconditioner scales) and C_1111 under each condition. ``mixed`` solves one system
(one hierarchy) per group of load cases that prescribe the same components (3D: the
three normal loads together, each shear alone).

Run: ``python benchmarks/bench_boundary.py [--sizes 16 32 48 64] [--conditions kubc subc periodic_fe mixed]``;
results in ``results/boundary.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from common import boolean_centres, save, voxelize

import stochhom as sh

PHASES = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(10.0, 0.3)]


def one(n: int, boundary: str) -> dict:
    image = voxelize(boolean_centres(3, 136, 7), 1.0 / 12.0, n)
    t, cpu = time.perf_counter(), time.process_time()
    res = sh.homogenize(image, PHASES, boundary=boundary)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"n": n, "boundary": boundary, "wall_s": wall, "cpu_s": cpu, "setup_s": res.info["setup_time"],
            "solve_s": res.info["solve_time"], "amg_setup_s": res.info["amg_setup_time"],
            "levels": res.info["levels"], "iterations": [int(i) for i in res.iterations],
            "n_dofs": res.info["n_dofs"], "c1111": float(res.effective[0, 0]),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 48, 64])
    ap.add_argument("--conditions", nargs="+", default=["kubc", "subc", "periodic_fe", "mixed"])
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1])))
        return
    rows = []
    for n in args.sizes:
        for bc in args.conditions:
            out = subprocess.run([sys.executable, __file__, "--one", str(n), bc], capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{n}^3 {bc:12s} {row['wall_s']:7.1f} s (cpu {row['cpu_s']:6.1f}, amg {row['amg_setup_s']:5.1f})  "
                  f"{row['peak_rss_gib']:5.2f} GiB  its {row['iterations']}  "
                  f"C1111 {row['c1111']:.5f}", flush=True)
    save("boundary", {"rows": rows})


if __name__ == "__main__":
    main()
