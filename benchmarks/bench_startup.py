"""Start-up costs: ``import stochhom``, ``stochhom --version`` / ``--help``, the kernel
warm-up, and the quickstart's first run with and without it.

1. ``import stochhom``, ``stochhom --version``, ``stochhom --help`` (and a bare
   ``python -c pass`` for reference): wall time of a fresh process, best and median of
   ``--repeat`` (default 5) runs, and the heavy modules each one loaded (none expected:
   torch, gpytorch, chaospy, matplotlib, dask, porespy, sklearn, xarray, scipy.stats).
2. The kernel warm-up (``stochhom warmup``, what ``scripts/setup.sh`` runs) into an
   empty ``NUMBA_CACHE_DIR``: wall time, and the kernel specializations it cached.
3. With ``--quickstart`` (minutes): ``stochhom run studies/quickstart.toml`` (a copy,
   results in a temporary directory) with an empty numba cache (every sweep worker
   compiles its kernels, as on a fresh clone without the warm-up), then with the cache
   of 2. Per run: wall time, the sweep stage's seconds and its kernel warm-up (summed
   over the worker processes, ``study.json``'s ``compile``), and the cache entries the
   run added (none expected after the warm-up).

Timings on a shared machine are noisy: compare the best and the median.

Run: ``python benchmarks/bench_startup.py [--quickstart] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import save

ROOT = Path(__file__).resolve().parents[1]
STOCHHOM = str(Path(sys.executable).with_name("stochhom"))
HEAVY = ("torch", "gpytorch", "chaospy", "matplotlib", "dask", "porespy", "sklearn", "xarray", "scipy.stats")
PROBE = f"import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"


def timed_process(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    return time.perf_counter() - t, proc


def startup(repeat: int) -> dict:
    """Best and median wall time of each start-up command, and the heavy modules it loads."""
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import stochhom": [sys.executable, "-c", "import stochhom"],
        "stochhom --version": [STOCHHOM, "--version"],
        "stochhom --help": [STOCHHOM, "--help"],
    }
    loads = {
        "import stochhom": [sys.executable, "-c", f"import stochhom; {PROBE}"],
        "stochhom --version": [sys.executable, "-c", f"import stochhom.cli as c, contextlib, io\n"
                               f"with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                               f"    c.main(['--version'])\n{PROBE}"],
        "stochhom --help": [sys.executable, "-c", f"import stochhom.cli as c, contextlib, io\n"
                            f"with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                            f"    c.main(['--help'])\n{PROBE}"],
    }
    out = {}
    for name, cmd in cmds.items():
        times = []
        for _ in range(repeat):
            dt, proc = timed_process(cmd)
            if proc.returncode != 0:
                raise RuntimeError(f"{name} failed: {proc.stderr}")
            times.append(dt)
        row = {"best_s": min(times), "median_s": statistics.median(times), "runs_s": times}
        if name in loads:
            row["heavy_modules_loaded"] = json.loads(timed_process(loads[name])[1].stdout.strip().replace("'", '"'))
        out[name] = row
        print(f"{name:20s} best {row['best_s']:.3f} s, median {row['median_s']:.3f} s"
              + (f", heavy modules {row['heavy_modules_loaded']}" if "heavy_modules_loaded" in row else ""))
    return out


def cache_entries(cache: Path) -> dict[str, int]:
    """Specializations per kernel in a numba cache directory (from its ``.nbi`` indexes)."""
    import numba  # noqa: F401  (unpickling the index needs numba's types)

    out = {}
    for index in sorted(cache.rglob("*.nbi")):
        with open(index, "rb") as f:
            pickle.load(f)  # numba version
            _, overloads = pickle.loads(f.read())
        out[index.name.split("-")[0]] = len(overloads)
    return out


def cache_files(cache: Path) -> set[str]:
    return {str(p.relative_to(cache)) for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")}


def warmup(cache: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    dt, proc = timed_process([STOCHHOM, "warmup"], env)
    if proc.returncode != 0:
        raise RuntimeError(f"stochhom warmup failed: {proc.stderr}")
    entries = cache_entries(cache)
    print(proc.stderr.strip())
    print(f"warm-up: {dt:.1f} s, {sum(entries.values())} specializations of {len(entries)} kernels cached")
    return {"wall_s": dt, "log": proc.stderr.strip().splitlines(), "specializations": entries}


def quickstart(cache: Path, label: str) -> dict:
    """One run of the quickstart study with numba's cache in ``cache``."""
    work = Path(tempfile.mkdtemp(prefix="quickstart_"))
    shutil.copy(ROOT / "studies" / "quickstart.toml", work / "quickstart.toml")
    before = cache_files(cache)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    dt, proc = timed_process([STOCHHOM, "run", str(work / "quickstart.toml"), "--quiet"], env)
    if proc.returncode != 0:
        raise RuntimeError(f"quickstart failed: {proc.stderr}")
    meta = json.loads((work / "quickstart_results" / "study.json").read_text())
    added = sorted(cache_files(cache) - before)
    row = {
        "wall_s": dt,
        "stages_s": {k: v["seconds"] for k, v in meta["stages"].items()},
        "sweep_kernel_warmup": meta.get("compile"),
        "cache_entries_added": added,
    }
    shutil.rmtree(work, ignore_errors=True)
    warm = row["sweep_kernel_warmup"] or {}
    print(f"quickstart, {label}: {dt:.1f} s (sweep {row['stages_s']['sweep']:.1f} s, kernel warm-up "
          f"{warm.get('seconds', float('nan')):.1f} s over {warm.get('processes', 0)} worker(s)); "
          f"{len(added)} cache file(s) added")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each start-up command (default 5)")
    parser.add_argument("--quickstart", action="store_true", help="also time the quickstart (minutes)")
    parser.add_argument("--quickstart-repeat", type=int, default=1, help="runs of each quickstart case (default 1)")
    args = parser.parse_args()
    rows: dict = {"startup": startup(args.repeat)}
    tmp = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    warmed = tmp / "warmed"
    warmed.mkdir()
    rows["warmup"] = warmup(warmed)
    if args.quickstart:
        empty_runs = []
        for k in range(args.quickstart_repeat):
            cold = tmp / f"cold{k}"
            cold.mkdir()
            empty_runs.append(quickstart(cold, "empty cache"))
        rows["quickstart_empty_cache"] = empty_runs
        rows["quickstart_empty_cache_specializations"] = cache_entries(tmp / "cold0")
        rows["quickstart_warmed_cache"] = [quickstart(warmed, "after the warm-up")
                                           for _ in range(args.quickstart_repeat)]
    shutil.rmtree(tmp, ignore_errors=True)
    print("wrote", save("startup", rows), file=sys.stderr)


if __name__ == "__main__":
    main()
