"""Benchmark 9: the torch backend (Q1 elements) on a GPU.

Microstructure: the overlapping spheres of the resolution study (136 spheres of
radius 1/12, seed 7, inclusion fraction 0.283), voxelized at n^3; matrix E = 1,
nu = 0.3, inclusion E = 100 (nu = 0.3) or a Void; and conductivity k = 1 and 100.
The full effective stiffness (6 load cases; 3 for conductivity), tol 1e-6, float64.

1. Correctness: at 32^3 the GPU's tensors are compared with the numba backend's,
   computed on the CPU beforehand (``--reference`` writes
   ``results/gpu_reference.json``; the GPU machine may have no numba cache).
2. Time of the full stiffness at 128^3 and 256^3 on ``--device`` (default cuda),
   after a warm-up solve that initialises CUDA and cuFFT; set-up and solve.

Run: ``python benchmarks/bench_gpu.py --reference`` (here), then
``python benchmarks/bench_gpu.py [--sizes 128 256]`` on the GPU machine.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import RESULTS, boolean_centres, voxelize

import stochhom as sh

CASES = {"c100": 100.0, "pores": "void", "conductivity100": "k100"}


def phases(c: float | str) -> list:
    if c == "k100":  # conductivity, k = 1 and 100
        return [sh.Conductivity(1.0), sh.Conductivity(100.0)]
    return [sh.IsotropicElastic(1.0, 0.3), sh.Void() if c == "void" else sh.IsotropicElastic(float(c), 0.3)]


def spheres(n: int) -> np.ndarray:
    return voxelize(boolean_centres(3, 136, 7), 1.0 / 12.0, n)


def profile(n: int, device: str) -> dict:
    """Milliseconds of each operator of one CG iteration (one load case, contrast 100, n^3)."""
    import importlib

    import torch

    homogenize_module = importlib.import_module("stochhom.spectral.homogenize")
    problem, *_ = homogenize_module._problem(spheres(n), phases(100.0), "cg", "q1", 1e-6, 100, "float64", None,
                                             None, 1, "torch", device)
    u = torch.randn((1, 3) + (n,) * 3, dtype=torch.float64, device=problem.device)
    macro = np.eye(6)[:1]
    ops = {"apply": lambda: problem.apply(u), "precondition": lambda: problem.precondition(u),
           "mean_stress": lambda: problem.mean_stress(u, macro), "axpy": lambda: u.add_(u, alpha=1e-9),
           "dot": lambda: problem.dot(u, u)}
    out = {}
    for name, fn in ops.items():
        fn()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            fn()
        torch.cuda.synchronize()
        out[name] = (time.perf_counter() - t) / 10 * 1e3
    print("profile (ms)", json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", action="store_true", help="compute the 32^3 reference on the CPU (numba)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--out", default=str(RESULTS / "gpu.json"))
    ap.add_argument("--profile", action="store_true", help="time the operators of one CG iteration")
    args = ap.parse_args()
    ref_path = RESULTS / "gpu_reference.json"
    if args.reference:
        ref = {c: sh.homogenize(spheres(32), phases(v), discretization="q1").effective.tolist()
               for c, v in CASES.items()}
        ref_path.write_text(json.dumps(ref, indent=1))
        print("wrote", ref_path)
        return
    import torch

    out: dict = {"torch": torch.__version__, "device": args.device}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    print(json.dumps(out), flush=True)
    ref = json.loads(ref_path.read_text())
    checks = {}
    for c, v in CASES.items():
        res = sh.homogenize(spheres(32), phases(v), backend="torch", device=args.device)
        a, b = np.array(ref[c]), res.effective
        checks[c] = {"max_rel_diff_vs_numba": float(np.abs(a - b).max() / np.abs(a).max()),
                     "iterations": res.iterations.tolist()}
        print(c, checks[c], flush=True)
    out["check_32"] = checks
    timings = []
    for n in args.sizes:
        image = spheres(n)
        for c, v in CASES.items():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            res = sh.homogenize(image, phases(v), backend="torch", device=args.device)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            wall = time.perf_counter() - t
            row = {"n": n, "case": c, "wall_s": wall, "setup_s": res.info["setup_time"],
                   "solve_s": res.info["solve_time"], "iterations": res.iterations.tolist(),
                   "C11": float(res.effective[0, 0]), "C_last": float(res.effective[-1, -1]),
                   "peak_gib": (torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None)}
            timings.append(row)
            print(json.dumps(row), flush=True)
    out["timings"] = timings
    if args.profile:
        out["profile"] = profile(max(args.sizes), args.device)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
