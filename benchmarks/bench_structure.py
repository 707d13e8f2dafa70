"""Benchmark 11: repeated macroscopic solves with element-wise tensors (stochhom.structure).

A 2D plate (aspect 2:1, plane strain, clamped left edge, shear traction on the right),
one isotropic Mandel stiffness per element perturbed at random (SPD), one core. For each
mesh: the preparation of :class:`~stochhom.structure.MacroProblem` (once per part), the
assembly alone and a whole solve (assembly + SuperLU), median of ``--repeat`` solves,
and the extrapolated time of 1000 solves: the floor of the Monte Carlo of issue 17
before any surrogate cost (target: 1000 macro samples on 5000 elements within 60 s on
2 cores).

Run: ``python benchmarks/bench_structure.py [--elements 1250 5000 20000] [--repeat 20]``;
results in ``results/structure.json``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import save

import stochhom as sh
from stochhom.structure import MacroProblem
from stochhom.structure.parts import plate


def one(n_elements: int, repeat: int) -> dict:
    ny = int(round(np.sqrt(n_elements / 2)))
    mesh = plate(2.0 * ny, float(ny), 2 * ny, ny)
    t = time.perf_counter()
    problem = MacroProblem(mesh, "elasticity", fixed={"left": "all"}, traction={"right": [0.0, -0.01]})
    prep = time.perf_counter() - t
    rng = np.random.default_rng(0)
    base = sh.IsotropicElastic(3.5, 0.35).tensor(2)
    tensors = base[None] * rng.uniform(0.5, 2.0, problem.n_elements)[:, None, None]
    assemble, solve = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        problem.stiffness(tensors)
        assemble.append(time.perf_counter() - t)
        t = time.perf_counter()
        problem.solve(tensors)
        solve.append(time.perf_counter() - t)
    return {"elements": problem.n_elements, "dofs": int(problem.basis.N), "prepare_s": prep,
            "assemble_s": float(np.median(assemble)), "solve_s": float(np.median(solve)),
            "solves_1000_s": 1000 * float(np.median(solve))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=int, nargs="+", default=[1250, 5000, 20000])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rows = []
    for n in args.elements:
        row = one(n, args.repeat)
        rows.append(row)
        print(f"{row['elements']:6d} elements {row['dofs']:6d} dofs: prepare {row['prepare_s']:.3f} s, assemble "
              f"{row['assemble_s']:.4f} s, solve {row['solve_s']:.4f} s, 1000 solves {row['solves_1000_s']:.0f} s",
              flush=True)
    save("structure", {"rows": rows})


if __name__ == "__main__":
    main()
