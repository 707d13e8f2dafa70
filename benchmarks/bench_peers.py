"""Benchmark 8: stochhom against muGrid 1.6.1 and muSpectre 0.27.0 on the same images.

The peers run in their own virtual environments (never a dependency of stochhom or
of its tests), through the runner scripts of ``../shared/peers`` (``--runners``):
one subprocess per case, single-threaded (both peers' kernels are serial C++).
stochhom runs in this process with 2 threads and with 1 (per-core comparison),
after a warm-up that loads the compiled kernels.

Cases (load E_xx = 1, tol = 1e-6; matrix E = 1, nu = 0.3, inclusion nu = 0.3):

Each case runs stochhom's rotated scheme and Q1 (2 and 1 threads) and, except for
pores, the rotated scheme in mixed precision (``dtype="mixed"``).

* ``smooth63_c1000``: the smooth two-phase level cut of ``compare_peers.py``
  (24 cosine modes, 2 <= |k| <= 4, seed 2024, inclusion fraction 0.3) at 63^3,
  contrast 1000;
* ``spheres48_c100`` / ``_c1e4`` / ``_pores``: 136 overlapping spheres of radius
  1/12 (R = 4 voxels), seed 7, fraction 0.283, at 48^3 (the resolution study's
  microstructure, bench_resolution.py).

Every stop test differs (see each JSON's ``convergence_criterion``): stochhom stops
on the relative H^-1 residual of the stress, muGrid on ||b - Kx|| <= tol ||b||,
muSpectre on the recursive residual of its projected system. The table shows the
answers, so that a reader can see that each is converged.

Set up the peers once (``--setup``: pip installs the two pinned wheels into
``$PEERS_HOME``, default ``~/.cache/stochhom-peers``), then run:

    python benchmarks/bench_peers.py --setup
    python benchmarks/bench_peers.py [--cases ...] [--skip-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import numpy as np
from common import boolean_centres, save, voxelize

import stochhom as sh

ROOT = Path(__file__).resolve().parents[1]
PEERS_HOME = Path(os.environ.get("PEERS_HOME", Path.home() / ".cache" / "stochhom-peers"))
WHEELS = {"muGrid": ["mugrid==1.6.1", "scipy"], "muSpectre": ["muspectre==0.27.0"]}
RUNNER = {"muGrid": "run_mugrid.py", "muSpectre": "run_muspectre.py"}


def smooth_level_cut(n: int, fraction: float = 0.3, seed: int = 2024, modes: int = 24) -> np.ndarray:
    """The periodic smooth two-phase microstructure of ``compare_peers.py`` (same
    construction and seed): a sum of cosines thresholded at its (1 - fraction) quantile."""
    rng = np.random.default_rng(seed)
    ks: list[np.ndarray] = []
    while len(ks) < modes:
        k = rng.integers(-4, 5, size=3)
        if 2.0 <= np.linalg.norm(k) <= 4.0:
            ks.append(k)
    amp = rng.normal(size=modes)
    phase = rng.uniform(0, 2 * np.pi, size=modes)
    x = (np.arange(n) + 0.5) / n
    grid = np.meshgrid(x, x, x, indexing="ij")
    f = np.zeros((n,) * 3)
    for k, a, p in zip(ks, amp, phase):
        f += a * np.cos(2 * np.pi * sum(ki * xi for ki, xi in zip(k, grid)) + p)
    return (f > np.quantile(f, 1.0 - fraction)).astype(np.int32)


def spheres(n: int) -> np.ndarray:
    return voxelize(boolean_centres(3, 136, 7), 1.0 / 12.0, n).astype(np.int32)


CASES = {
    "smooth63_c1000": (lambda: smooth_level_cut(63), 1e3),
    "spheres48_c100": (lambda: spheres(48), 1e2),
    "spheres48_c1e4": (lambda: spheres(48), 1e4),
    "spheres48_pores": (lambda: spheres(48), "void"),
}


def setup() -> None:
    for peer, pkgs in WHEELS.items():
        env = PEERS_HOME / peer.lower()
        py = env / "bin" / "python"
        if not py.exists():
            venv.create(env, with_pip=True)
            subprocess.run([str(py), "-m", "pip", "install", "-q", *pkgs], check=True)
        print(f"{peer}: {py}")


def run_stochhom(image: np.ndarray, contrast: float | str, disc: str, workers: int, dtype: str = "float64") -> dict:
    inclusion = sh.Void() if contrast == "void" else sh.IsotropicElastic(float(contrast), 0.3)
    t = time.perf_counter()
    f = sh.solve(image, [sh.IsotropicElastic(1.0, 0.3), inclusion], macro_strain=[1, 0, 0, 0, 0, 0],
                 discretization=disc, tol=1e-6, workers=workers, dtype=dtype)
    return {"iterations": int(f.iterations), "time_s": time.perf_counter() - t, "sigma_xx": float(f.mean_stress[0]),
            "converged": bool(f.converged)}


def run_peer(peer: str, image_path: Path, contrast: float | str, runners: Path, workdir: Path) -> dict | None:
    py = PEERS_HOME / peer.lower() / "bin" / "python"
    if not py.exists():
        print(f"  {peer}: not set up (run with --setup)", file=sys.stderr)
        return None
    props = [{"E": 1.0, "nu": 0.3}, {"E": 0.0 if contrast == "void" else float(contrast), "nu": 0.3}]
    out = workdir / f"{peer}.json"
    cmd = [str(py), str(runners / RUNNER[peer]), "--image", str(image_path), "--physics", "elastic",
           "--props", json.dumps(props), "--strain", "xx", "--tol", "1e-6", "--maxiter", "5000",
           "--threads", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(runners)))
    if not out.exists():
        print(f"  {peer} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    r = json.loads(out.read_text())
    return {"iterations": r["iterations"], "time_s": r["solve_time_s"], "sigma_xx": r["mean_stress"][0][0],
            "criterion": r["convergence_criterion"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setup", action="store_true", help="create the peers' environments and stop")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--runners", type=Path, default=ROOT.parent / "shared" / "peers")
    ap.add_argument("--skip-peers", action="store_true")
    args = ap.parse_args()
    if args.setup:
        setup()
        return
    run_stochhom(spheres(16), 100.0, "q1", 2)  # load the compiled kernels
    run_stochhom(spheres(16), 100.0, "rotated", 2)
    run_stochhom(spheres(16), 100.0, "rotated", 2, "mixed")
    rows = []
    for name in args.cases:
        make, contrast = CASES[name]
        image = make()
        entry: dict = {"case": name, "shape": list(image.shape), "fraction": float(image.mean())}
        for disc in ("rotated", "q1"):
            for workers in (2, 1):
                entry[f"stochhom_{disc}_{workers}t"] = run_stochhom(image, contrast, disc, workers)
        if contrast != "void":  # mixed precision: the rotated scheme (pores run Q1)
            for workers in (2, 1):
                entry[f"stochhom_mixed_{workers}t"] = run_stochhom(image, contrast, "rotated", workers, "mixed")
        if not args.skip_peers:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "image.npy"
                np.save(path, image)
                entry["muGrid"] = run_peer("muGrid", path, contrast, args.runners, Path(tmp))
                if all(s % 2 for s in image.shape):  # muSpectre runs odd grids only
                    entry["muSpectre"] = run_peer("muSpectre", path, contrast, args.runners, Path(tmp))
        rows.append(entry)
        print(json.dumps(entry), flush=True)
    save("peers", {"tol": 1e-6, "load": "E_xx", "rows": rows})
    print(table(rows))


def table(rows: list[dict]) -> str:
    keys = [("stochhom_rotated_2t", "rotated (2 thr)"), ("stochhom_mixed_2t", "rotated mixed (2 thr)"),
            ("stochhom_mixed_1t", "rotated mixed (1 thr)"), ("stochhom_q1_2t", "q1 (2 thr)"),
            ("stochhom_q1_1t", "q1 (1 thr)"), ("muGrid", "muGrid (1 thr)"), ("muSpectre", "muSpectre (1 thr)")]
    lines = ["| case | " + " | ".join(k[1] for k in keys) + " |", "|---|" + "---|" * len(keys)]
    for r in rows:
        cells = []
        for k, _ in keys:
            v = r.get(k)
            cells.append("-" if v is None else f"{v['iterations']} its, {v['time_s']:.1f} s, σxx {v['sigma_xx']:.4g}")
        lines.append(f"| {r['case']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
