"""Benchmark 7: which discretization converges under grid refinement, and how fast.

One continuum microstructure: 136 overlapping (Boolean) spheres of radius 1/12 in
the unit cell (seed 7), inclusion fraction 0.28, just below the percolation
threshold of overlapping spheres (0.29), so inclusions touch and form long
clusters. It is voxelized at n^3 for every n (voxel centres inside a sphere are
inclusion) and solved under E_xx = 1 (matrix E = 1, nu = 0.3; inclusion
E = contrast, nu = 0.3, or a Void) with every discretization. From the three finest
grids the effective stress is Richardson-extrapolated,
sigma(h) = sigma_inf + C h^p, and each grid's error is measured against that
limit (per discretization, and against the common limit).

Results are appended to ``results/resolution.json`` as they come (a rerun skips
what is there), so the study can be run in pieces.

A discretization named with ``+cv`` (``q1+cv``, ``rotated+cv``) uses composite voxels
(:mod:`stochhom.microstructure.composite`, factor 4): the same balls rendered at
(4n)^3, interface voxels given the laminate of their two phases; ``+cv2`` and ``+cv8``
use factors 2 and 8 (the sensitivity to the sub-voxel sampling).

Run: ``python benchmarks/bench_resolution.py [--sizes 24 32 48 64 96] [--cases c1e2 c1e4 pores rigid]
[--discretizations q1 rotated q1+cv rotated+cv] [--tol 1e-6] [--report]``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from common import RESULTS, boolean_centres, machine, voxelize
from scipy.optimize import brentq

import stochhom as sh
from stochhom.errors import ConvergenceWarning
from stochhom.microstructure.composite import CompositeVoxels, from_fine
from stochhom.microstructure.inclusions import draw_ball

RADIUS = 1.0 / 12.0
N_BALLS = 136
SEED = 7
CASES = {"c1e2": 1e2, "c1e4": 1e4, "rigid": 1e8, "pores": "void"}
PATH = RESULTS / "resolution.json"


def phases(c: float | str) -> list:
    inclusion = sh.Void() if c == "void" else sh.IsotropicElastic(float(c), 0.3)
    return [sh.IsotropicElastic(1.0, 0.3), inclusion]


def load() -> dict:
    if PATH.exists():
        return json.loads(PATH.read_text())
    return {"microstructure": {"radius": RADIUS, "n_balls": N_BALLS, "seed": SEED}, "runs": []}


def composite_image(n: int, factor: int = 4) -> tuple[np.ndarray, CompositeVoxels]:
    """The microstructure at ``n^3`` with composite voxels from a ``factor`` times finer rendering."""
    fine = np.zeros((factor * n,) * 3, dtype=np.uint8)
    for c in boolean_centres(3, N_BALLS, SEED):  # voxel-centre test, as voxelize
        draw_ball(fine, c * factor * n, RADIUS * factor * n)
    return from_fine(fine, factor)


def run(case: str, disc: str, n: int, tol: float, maxiter: int) -> dict:
    """One solve; ``disc`` ending in ``+cv``: with composite voxels (factor 4; ``+cv2``, ``+cv8``: 2, 8)."""
    base, _, cv = disc.partition("+")
    if cv:
        image, composite = composite_image(n, int(cv[2:] or 4))
    else:
        image, composite = voxelize(boolean_centres(3, N_BALLS, SEED), RADIUS, n), None
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        f = sh.solve(image, phases(CASES[case]), macro_strain=[1, 0, 0, 0, 0, 0], discretization=base,
                     tol=tol, maxiter=maxiter, on_failure="warn", composite=composite)
    fraction = float(image.mean()) if composite is None else _fraction(image, composite)
    return {"case": case, "discretization": disc, "n": n, "fraction": fraction,
            "sigma_xx": float(f.mean_stress[0]), "sigma_yy": float(f.mean_stress[1]),
            "iterations": int(f.iterations), "converged": bool(f.converged), "time_s": time.perf_counter() - t,
            "tol": tol}


def _fraction(image: np.ndarray, composite: CompositeVoxels) -> float:
    """Inclusion fraction with the composite voxels' own fractions."""
    flat = image.reshape(-1).astype(float)
    flat[composite.index] = composite.fraction
    return float(flat.mean())


def richardson(n: list[int], s: list[float]) -> tuple[float, float] | None:
    """Limit and order ``(sigma_inf, p)`` of sigma(h) = sigma_inf + C h^p through the three
    finest points (h = 1/n); None where the three are not monotone (no asymptotic range)."""
    h = 1.0 / np.asarray(n[-3:], dtype=float)
    y = np.asarray(s[-3:], dtype=float)
    d1, d2 = y[0] - y[1], y[1] - y[2]
    if d1 * d2 <= 0:
        return None
    ratio = d1 / d2

    def g(p: float) -> float:
        return (h[0] ** p - h[1] ** p) / (h[1] ** p - h[2] ** p) - ratio

    try:
        p = brentq(g, 0.05, 6.0)
    except ValueError:
        return None
    c = d2 / (h[1] ** p - h[2] ** p)
    return float(y[2] - c * h[2] ** p), float(p)


def report(data: dict) -> str:
    lines = []
    runs = data["runs"]
    for case in CASES:
        sel = [r for r in runs if r["case"] == case]
        if not sel:
            continue
        lines += [f"\n### {case}\n",
                  "| discretization | n | fraction | sigma_xx | iterations | time (s) | rel. error vs own limit |",
                  "|---|---|---|---|---|---|---|"]
        for disc in sorted({r["discretization"] for r in sel}):
            rs = sorted((r for r in sel if r["discretization"] == disc), key=lambda r: r["n"])
            ns, ss = [r["n"] for r in rs], [r["sigma_xx"] for r in rs]
            lim = richardson(ns, ss) if len(rs) >= 3 else None
            for r in rs:
                err = f"{abs(r['sigma_xx'] / lim[0] - 1):.2%}" if lim else "-"
                conv = "" if r["converged"] else " (not converged)"
                lines.append(f"| {disc} | {r['n']} | {r['fraction']:.4f} | {r['sigma_xx']:.5g} | "
                             f"{r['iterations']}{conv} | {r['time_s']:.1f} | {err} |")
            if lim:
                lines.append(f"| {disc} | Richardson limit | | {lim[0]:.5g} | order p = {lim[1]:.2f} | | |")
            else:
                lines.append(f"| {disc} | Richardson limit | | not monotone on the finest three | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 32, 48, 64, 96])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--discretizations", nargs="+", default=["q1", "rotated"])
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--maxiter", type=int, default=5000)
    ap.add_argument("--report", action="store_true", help="only print the tables of what is stored")
    args = ap.parse_args()
    data = load()
    if not args.report:
        data["machine"] = machine()
        for case in args.cases:
            for n in args.sizes:
                for disc in args.discretizations:
                    key = (case, disc, n, args.tol)
                    if any((r["case"], r["discretization"], r["n"], r["tol"]) == key for r in data["runs"]):
                        continue
                    r = run(case, disc, n, args.tol, args.maxiter)
                    print(json.dumps(r), flush=True)
                    data["runs"].append(r)
                    RESULTS.mkdir(exist_ok=True)
                    PATH.write_text(json.dumps(data, indent=1))
    print(report(data))


if __name__ == "__main__":
    main()
