"""Benchmark 1: time per solver iteration relative to a bare FFT of the same fields.

For each configuration, the conjugate-gradient scheme runs a fixed number of
iterations (the difference of two runs cancels set-up costs); the result is
divided by the time of one forward plus one inverse real FFT of an array shaped
like the solver's strain field, ``(load cases, strain components, *grid)``, timed
in the same process two ways: SciPy's one-call ``rfftn``/``irfftn`` and the faster
per-axis split that the solver itself uses.

Run: ``python benchmarks/bench_iteration_cost.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from common import bare_fft_time, hard_spheres, save

import stochhom as sh
from stochhom.spectral.homogenize import _problem
from stochhom.spectral.schemes import conjugate_gradient

CONFIGS = [
    # (label, dim, n, physics, batch)
    ("3D elasticity 64^3, 6 load cases", 3, 64, "elastic", 6),
    ("3D elasticity 128^3, 1 load case", 3, 128, "elastic", 1),
    ("3D elasticity 128^3, 6 load cases", 3, 128, "elastic", 6),
    ("3D conductivity 128^3, 3 load cases", 3, 128, "conductivity", 3),
    ("2D elasticity 1024^2, 3 load cases", 2, 1024, "elastic", 3),
    ("2D conductivity 1024^2, 2 load cases", 2, 1024, "conductivity", 2),
]


def per_iteration(problem, green, macro, k1: int = 3, k2: int = 13) -> float:
    conjugate_gradient(problem, green, macro, 1e-300, 2)  # warm-up (JIT, FFT plans)
    best = np.inf
    for _ in range(2):
        t = time.perf_counter()
        conjugate_gradient(problem, green, macro, 1e-300, k1)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        conjugate_gradient(problem, green, macro, 1e-300, k2)
        t2 = time.perf_counter() - t
        best = min(best, (t2 - t1) / (k2 - k1))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small grids only")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for label, dim, n, physics, batch in CONFIGS:
        if args.quick:
            n = 32 if dim == 3 else 256
            label = f"{label.split(' ')[0]} {physics} {n}^{dim}, {batch} load case(s)"
        image = hard_spheres(dim, n)
        phases = (
            [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(100.0, 0.3)]
            if physics == "elastic"
            else [sh.Conductivity(1.0), sh.Conductivity(100.0)]
        )
        row = {"config": label}
        for backend in ("numba", "numpy"):
            problem, green, *_ = _problem(
                image, phases, "cg", "rotated", None, None, "float64", 1.0, None, args.workers, backend
            )
            macro = problem.strain_to_internal(np.eye(problem.ne))[:batch]
            row[f"iteration_{backend}"] = per_iteration(problem, green, macro)
        ffts = bare_fft_time(image.shape, (batch, problem.ne), args.workers)
        row.update(ffts)
        row["ratio_vs_split"] = row["iteration_numba"] / ffts["split_axes"]
        row["ratio_vs_scipy"] = row["iteration_numba"] / ffts["scipy_rfftn_irfftn"]
        row["ratio_numpy_backend_vs_split"] = row["iteration_numpy"] / ffts["split_axes"]
        rows.append(row)
        print(
            f"{label:42s} iter {1e3 * row['iteration_numba']:8.1f} ms (numpy backend "
            f"{1e3 * row['iteration_numpy']:7.1f}) | bare FFT split {1e3 * ffts['split_axes']:7.1f} ms, "
            f"scipy {1e3 * ffts['scipy_rfftn_irfftn']:7.1f} ms | ratio {row['ratio_vs_split']:.2f} "
            f"(vs scipy {row['ratio_vs_scipy']:.2f})",
            flush=True,
        )
    path = save("iteration_cost" + ("_quick" if args.quick else ""), {"workers": args.workers, "rows": rows})
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
