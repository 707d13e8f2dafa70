"""Benchmark 11: repeated macroscopic solves with element-wise tensors (stochhom.structure).

A 2D plate (aspect 2:1, plane strain, clamped left edge, shear traction on the right),
one isotropic Mandel stiffness per element perturbed at random (SPD), one core. For each
mesh: the preparation of :class:`~stochhom.structure.MacroProblem` (once per part), the
assembly alone and a whole solve (assembly + SuperLU), median of ``--repeat`` solves,
and the extrapolated time of 1000 solves: the floor of the Monte Carlo of issue 17
before any surrogate cost (target: 1000 macro samples on 5000 elements within 60 s on
2 cores).

Then the whole hierarchical route (:func:`stochhom.structure.hierarchical.hierarchical`):
a GPR tensor surrogate (192 training SVEs of a synthetic law, volume fraction and
contrast) as every element's law, a volume-fraction field over the plate, ``N`` macro
fields x 4 posterior functions x 2 SVE draws, wall time with ``--workers`` processes
(including their start), for each mesh and sample count.

Run: ``python benchmarks/bench_structure.py [--elements 1250 5000 20000] [--repeat 20]
[--samples 256 1024] [--workers 2]``; results in ``results/structure.json``.
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


def _surrogate():
    from stochhom.surrogates import GPR
    from stochhom.surrogates.spd import SPDTransform
    from stochhom.surrogates.tensor import TensorSurrogate
    from stochhom.tensors import isotropic_stiffness

    spd = SPDTransform("log_cholesky", "elasticity", 2)
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(0.1, 0.5, 192), rng.uniform(2.0, 20.0, 192)])
    t = np.stack([isotropic_stiffness(3.0 * (1 + phi * (c - 1) / (1 + 0.5 * (1 - phi) * (c - 1) / c)),
                                      1.2 * (1 + 0.8 * phi * (c - 1) / (1 + 0.6 * (1 - phi) * (c - 1) / c)), 2)
                  for phi, c in x])
    z = spd.features(t) + 0.03 * rng.standard_normal((192, 6))
    return TensorSurrogate(GPR(random_state=0), "elasticity", 2).fit(x, spd.tensors(z))


def hierarchical_rows(elements: list[int], samples: list[int], workers: int) -> list[dict]:
    from stochhom.structure.fields import MacroField
    from stochhom.structure.hierarchical import hierarchical

    t = time.perf_counter()
    model = _surrogate()
    fit = time.perf_counter() - t
    rows = []
    for n in elements:
        ny = int(round(np.sqrt(n / 2)))
        problem = MacroProblem(plate(2.0 * ny, float(ny), 2 * ny, ny), "elasticity", fixed={"left": "all"},
                               traction={"right": [0.0, -0.01]})
        field = MacroField("normal", 0.3, 0.05, ny / 4)
        for s in samples:
            n_macro = s // 8
            t = time.perf_counter()
            res = hierarchical(problem, model, {"volume_fraction": field, "contrast": 10.0}, "compliance",
                               n_macro=n_macro, n_functions=4, n_noise=2, rng=0, workers=workers)
            wall = time.perf_counter() - t
            row = {"elements": problem.n_elements, "solves": res.n_solves, "n_macro": n_macro, "workers": workers,
                   "wall_s": wall, "per_solve_ms": 1000 * wall / res.n_solves, "gp_fit_s": fit,
                   "shares": res.shares, "interpolation_error": res.interpolation_error}
            rows.append(row)
            print(f"hierarchical: {row['elements']:6d} elements, {res.n_solves} solves ({n_macro} fields x 4 x 2), "
                  f"{workers} workers: {wall:.1f} s ({row['per_solve_ms']:.1f} ms per solve); shares "
                  + ", ".join(f"{k} {v:.3f}" for k, v in res.shares.items()), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=int, nargs="+", default=[1250, 5000, 20000])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--samples", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--hierarchical-elements", type=int, nargs="+", default=[1250, 5000])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for n in args.elements:
        row = one(n, args.repeat)
        rows.append(row)
        print(f"{row['elements']:6d} elements {row['dofs']:6d} dofs: prepare {row['prepare_s']:.3f} s, assemble "
              f"{row['assemble_s']:.4f} s, solve {row['solve_s']:.4f} s, 1000 solves {row['solves_1000_s']:.0f} s",
              flush=True)
    hier = hierarchical_rows(args.hierarchical_elements, args.samples, args.workers)
    save("structure", {"rows": rows, "hierarchical": hier})


if __name__ == "__main__":  # the guard is needed: worker processes are spawned
    main()
