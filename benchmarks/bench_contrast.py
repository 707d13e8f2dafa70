"""Benchmark 2: iterations to tol = 1e-6 against phase contrast.

For every scheme and discretization, 2D (256^2 hard disks, f = 0.2) and 3D (48^3
hard spheres, f = 0.2), isotropic elasticity (matrix E = 1, nu = 0.3; inclusion
E = contrast, nu = 0.3, or a Void). Each entry is the larger iteration count of a
uniaxial (11) and a shear (12) macroscopic strain. Then, for CG on the rotated
scheme, the same physical microstructures at three resolutions (does the count
grow with the grid?), and overlapping (Boolean) spheres, a harder case with
near-contacts.

Run: ``python benchmarks/bench_contrast.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from common import boolean_spheres, hard_spheres, save

import stochhom as sh
from stochhom.errors import ConvergenceWarning, InputError

CONTRASTS = [1e-4, 1e-2, 1e2, 1e4, 1e8, "void"]
SCHEMES = ["cg", "basic", "accelerated"]
DISCRETIZATIONS = ["rotated", "fourier"]


def phases(c):
    m = sh.IsotropicElastic(1.0, 0.3)
    return [m, sh.Void() if c == "void" else sh.IsotropicElastic(float(c), 0.3)]


def iterations(image, c, scheme, disc, maxiter) -> tuple[str, float]:
    dim = image.ndim
    ne = 3 if dim == 2 else 6
    loads = [[1.0] + [0.0] * (ne - 1), [0.0] * (ne - 1) + [1.0]]
    t = time.perf_counter()
    its = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for e in loads:
                f = sh.solve(image, phases(c), macro_strain=e, scheme=scheme, discretization=disc,
                             maxiter=maxiter, on_failure="warn")
                its.append(f.iterations if f.converged else None)
    except InputError:
        return "refused", time.perf_counter() - t
    if any(i is None for i in its):
        return f">{maxiter}", time.perf_counter() - t
    return str(max(its)), time.perf_counter() - t


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n2, n3 = (64, 16) if args.quick else (256, 48)
    maxiter = {2: 5000, 3: 2000}
    out: dict = {"contrast": {}, "grid": {}, "boolean": {}}
    md = []
    header = ["scheme / discretization"] + [str(c) for c in CONTRASTS]
    for dim, n in ((2, n2), (3, n3)):
        image = hard_spheres(dim, n)
        rows = []
        for scheme in SCHEMES:
            for disc in DISCRETIZATIONS:
                row = [f"{scheme} / {disc}"]
                for c in CONTRASTS:
                    its, wall = iterations(image, c, scheme, disc, maxiter[dim])
                    out["contrast"][f"{dim}D {scheme} {disc} {c}"] = {"iterations": its, "wall_s": wall}
                    row.append(its)
                    print(f"{dim}D n={n} {scheme:11s} {disc:8s} contrast {c!s:7s}: {its:>8s} ({wall:.1f} s)",
                          flush=True)
                rows.append(row)
        md.append(table(f"{dim}D, {n}^{dim} hard {'disks' if dim == 2 else 'spheres'}, f = 0.2", header, rows))
    # grid independence, CG / rotated, same physical microstructure
    grids = {2: (64, 128, 256) if args.quick else (128, 256, 512), 3: (16, 24, 32) if args.quick else (32, 64, 96)}
    for dim in (2, 3):
        rows = []
        for n in grids[dim]:
            image = hard_spheres(dim, n)
            row = [f"{n}^{dim}"]
            for c in CONTRASTS:
                its, wall = iterations(image, c, "cg", "rotated", 2000)
                out["grid"][f"{dim}D {n} {c}"] = {"iterations": its, "wall_s": wall}
                row.append(its)
                print(f"grid {dim}D n={n} contrast {c!s:7s}: {its:>6s} ({wall:.1f} s)", flush=True)
            rows.append(row)
        md.append(table(f"CG / rotated, {dim}D hard inclusions at three resolutions", ["grid"] + header[1:], rows))
    rows = []
    for dim, n in ((2, n2), (3, n3)):
        image = boolean_spheres(dim, n)
        row = [f"{dim}D {n}^{dim}"]
        for c in CONTRASTS:
            its, wall = iterations(image, c, "cg", "rotated", 2000)
            out["boolean"][f"{dim}D {n} {c}"] = {"iterations": its, "wall_s": wall}
            row.append(its)
            print(f"boolean {dim}D n={n} contrast {c!s:7s}: {its:>6s} ({wall:.1f} s)", flush=True)
        rows.append(row)
    md.append(table("CG / rotated, overlapping (Boolean) inclusions, f = 0.2", ["grid"] + header[1:], rows))
    text = "\n\n".join(md)
    print(text)
    path = save("contrast" + ("_quick" if args.quick else ""), {**out, "markdown": text})
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
