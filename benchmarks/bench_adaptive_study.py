"""Adaptive design against fixed Sobol designs on real solves (issue 20): the quickstart's study.

Material and SVE of ``studies/quickstart.toml`` (64 x 64 voxels of 1 um, level-cut Gaussian
fields of correlation length 2 um cut at the quantile, conductors 1 and ``contrast``); the
target is the smallest apparent conductivity eigenvalue (W/m/K, as ``[sweep.adaptive]`` fits it
and the report scores it) over ``volume_fraction`` U(0.2, 0.5) and ``contrast`` log-U(5, 100);
the GP's inputs are the unit-cube coordinates of the design's CDFs, as in the study runner.

**Accuracy** is the RMSE of a GP's mean against the true mean eigenvalue at 32 reference points
of the input distribution. The true mean is estimated by the mean of many SVEs per point,
allocated by the scatter (at least 16, and enough that the mean's standard error is at most
``REF_SE`` = 0.025 W/m/K: up to about 1800 SVEs in the percolating corner, where one SVE
scatters by 1.1 W/m/K), and the reference's remaining variance is subtracted from every mean
squared error (unbiased, since the reference's errors are independent of the designs').
With 16 SVEs everywhere the reference's own error was 0.073 W/m/K, as large as the errors
compared.

**Designs**, per seed (``--seeds``, default 10; new designs and SVEs each), 192 solves each:

- fixed: Sobol points with 3 replicates (the quickstart's design, 64 x 3) and with 1 replicate
  (192 points), scored at 48, 96, 144 and 192 solves (prefixes: for x 3, whole points);
- adaptive: 16 points x 2 replicates, then rounds of 8 (the exact greedy IMSE over the input
  distribution, in the unit cube of the design's CDFs, as ``[sweep.adaptive]`` does, chosen
  with a heteroscedastic GP, or ``--design-noise``), scored after every round.

**Scoring.** Every design's solves are fitted with a homoscedastic and a heteroscedastic GP
(Matern 5/2, as the study's surrogates), each scored; ``best`` takes the better of the two
(the same rule for every design). The saving is ``1 - n / 192`` with ``n`` the first round
from which the adaptive RMSE stays at or below the fixed design's at 192 solves up to the
budget (0 when it never does), per seed and of the median curves over seeds. Coverage: of the
90 % intervals of each final (best) model for one fresh SVE at each reference point (32
points: binomial standard error 0.053).

Run: ``python benchmarks/bench_adaptive_study.py [--seeds 10] [--log] [--no-replicates]
[--design-noise homoscedastic]`` (about 2 min for the reference, then 35-45 s per seed on 2
cores). Results: ``results/adaptive_study.json`` (options add suffixes).
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
from common import held_below, save
from scipy import stats
from scipy.stats import qmc

import stochhom as sh
from stochhom.errors import OutOfDomainWarning
from stochhom.surrogates import GPR
from stochhom.surrogates.adaptive import AdaptiveDesign

N_REF = 192
UNIT = {"u": {"distribution": "uniform", "low": 0.0, "high": 1.0},
        "v": {"distribution": "uniform", "low": 0.0, "high": 1.0}}
#: The reference: ``mean`` (raw eigenvalue, 32 points), ``floor`` (the variance of that mean,
#: averaged over the points, subtracted from every mean squared error) and ``n`` (SVEs per point).
REF: dict[str, Any] = {}
#: Largest standard error of the reference mean at a point (W/m/K).
REF_SE = 0.025
#: The GPs every design is scored with.
NOISES = ("homoscedastic", "heteroscedastic")
SCORES = ("best",) + NOISES
#: Fixed-design sizes scored (prefixes of the 192-solve designs: Sobol x 1 points, Sobol x 3
#: points with all their replicates).
SIZES = (48, 96, 144, 192)
#: ``--log``: every GP regresses the log of the eigenvalue (as the study's surrogates do), and the
#: RMSE is still taken on the eigenvalue itself, of exp(mean).
LOG = False


def params(u: np.ndarray) -> np.ndarray:
    """Unit cube -> (volume fraction, contrast), the design's inverse CDFs."""
    return np.column_stack([0.2 + 0.3 * u[:, 0], np.exp(np.log(5.0) + u[:, 1] * np.log(20.0))])


def solve_raw(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The smallest apparent conductivity eigenvalue of one fresh SVE per row of ``u``."""
    out = np.empty(len(u))
    for k, (vf, contrast) in enumerate(params(u)):
        ens = sh.generate("gaussian", shape=(64, 64), n=1, rng=rng, volume_fraction=float(vf),
                          correlation_length=2.0, cut="quantile", voxel_size=1.0)
        res = sh.homogenize(ens.isel(sample=0), [sh.Conductivity(1.0), sh.Conductivity(float(contrast))])
        out[k] = np.linalg.eigvalsh(res.effective)[0]
    return out


def solve(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`solve_raw`, as the GPs regress it (its log with ``--log``)."""
    out = solve_raw(u, rng)
    return np.log(out) if LOG else out


def raw(y: np.ndarray) -> np.ndarray:
    return np.exp(y) if LOG else y


def reference(u_ref: np.ndarray, rng: np.random.Generator) -> None:
    """Fill :data:`REF`: 16 SVEs per point, then more where the scatter needs them."""
    first = np.array([solve_raw(u_ref, rng) for _ in range(16)])
    sums, squares = first.sum(axis=0), (first**2).sum(axis=0)
    n = np.full(len(u_ref), 16)
    var = first.var(axis=0, ddof=1)
    need = np.maximum(np.ceil(var / REF_SE**2).astype(int), 16)
    for i in np.flatnonzero(need > n):
        more = solve_raw(np.repeat(u_ref[i:i + 1], need[i] - n[i], axis=0), rng)
        sums[i] += more.sum()
        squares[i] += (more**2).sum()
        n[i] = need[i]
    mean = sums / n
    var = (squares - n * mean**2) / (n - 1)
    REF.update(mean=mean, floor=float(np.mean(var / n)), n=n, mean16=first.mean(axis=0))


def rmse(pred: np.ndarray) -> float:
    """The RMSE of ``pred`` against the *true* mean at the reference points, estimated: the mean
    squared difference to the reference less the reference's own variance."""
    mse = float(np.mean((raw(pred) - REF["mean"]) ** 2)) - REF["floor"]
    return float(np.sqrt(max(mse, 0.0)))


def score(X: np.ndarray, y: np.ndarray, xt: np.ndarray) -> tuple[dict[str, float], GPR]:
    """RMSE of each GP of :data:`NOISES` fitted to ``(X, y)`` and of the better one ("best"),
    and the better model."""
    fits = {n: GPR(noise=n, kernel="matern52", n_restarts=1, random_state=0).fit(X, y) for n in NOISES}
    errors = {n: rmse(m.predict(xt)) for n, m in fits.items()}
    best = min(NOISES, key=errors.get)
    return {"best": errors[best], **errors}, fits[best]


def coverage90(model: GPR, xt: np.ndarray, fresh: np.ndarray) -> float:
    mean, std = model.predict(xt, return_std=True)
    return float(np.mean(np.abs(fresh - mean) <= stats.norm.ppf(0.95) * std))


def median_curve(rows: list[dict], key: str, how: str) -> dict[int, float]:
    curves = [{int(n): v[how] for n, v in r[key].items()} for r in rows]
    ns = sorted(set.intersection(*(set(c) for c in curves)))
    return {n: float(np.median([c[n] for c in curves])) for n in ns}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--log", action="store_true", help="the GPs regress the log of the eigenvalue")
    ap.add_argument("--no-replicates", action="store_true", help="the adaptive design adds new points only")
    ap.add_argument("--design-noise", default="heteroscedastic", choices=NOISES,
                    help="noise model of the GP that chooses the adaptive batches")
    args = ap.parse_args()
    global LOG
    LOG = args.log
    warnings.simplefilter("ignore", OutOfDomainWarning)
    warnings.simplefilter("ignore", UserWarning)
    t0 = time.perf_counter()
    u_ref = qmc.Sobol(2, scramble=True, seed=999).random(32)
    reference(u_ref, np.random.default_rng(12345))
    y_fresh = solve(u_ref, np.random.default_rng(54321))
    print(f"reference: 32 points, {int(REF['n'].sum())} SVEs ({REF['n'].min()}-{REF['n'].max()} per point) in "
          f"{time.perf_counter() - t0:.0f} s; its own RMS error {np.sqrt(REF['floor']):.4f} W/m/K (subtracted)",
          flush=True)
    rows = []
    for seed in range(args.seeds):
        t1 = time.perf_counter()
        fixed: dict[int, dict[int, dict[str, float]]] = {}
        fixed_cov = {}
        for reps in (1, 3):
            pts = qmc.Sobol(2, scramble=True, seed=seed).random(N_REF // reps)
            X = np.repeat(pts, reps, axis=0)
            y = solve(X, np.random.default_rng([seed, reps]))
            fixed[reps] = {}
            for n in SIZES:
                fixed[reps][n], model = score(X[:n], y[:n], u_ref)
            fixed_cov[reps] = coverage90(model, u_ref, y_fresh)
        rng = np.random.default_rng([seed, 7])
        curve: dict[int, dict[str, float]] = {}
        data: dict[str, Any] = {"X": [], "y": [], "model": None}

        def func(u: np.ndarray, rng: np.random.Generator = rng, data: dict = data) -> np.ndarray:
            values = solve(u, rng)
            data["X"].append(u)
            data["y"].append(values)
            return values

        def record(entry: dict, m: GPR, curve: dict = curve, data: dict = data) -> None:
            n = entry["solves"] - entry["new_points"] - entry["replicates"]
            curve[n], data["model"] = score(np.vstack(data["X"]), np.concatenate(data["y"]), u_ref)
            curve[n]["design_model"] = rmse(m.predict(u_ref))

        design = AdaptiveDesign(UNIT, initial_points=16, initial_replicates=2, batch=8, max_solves=N_REF, stop=None,
                                model=GPR(noise=args.design_noise, n_restarts=1, random_state=0), rng=seed,
                                replicates=not args.no_replicates)
        res = design.run(func, callback=record)
        coverage = coverage90(data["model"], u_ref, y_fresh)
        saving = {f"{how}_vs_sobol{reps}": held_below({n: v[how] for n, v in curve.items()}, fixed[reps][N_REF][how],
                                                      N_REF) for how in SCORES for reps in (1, 3)}
        rows.append({"seed": seed, "sobol1": {str(n): v for n, v in fixed[1].items()},
                     "sobol3": {str(n): v for n, v in fixed[3].items()},
                     "adaptive": {str(n): v for n, v in sorted(curve.items())}, "saving": saving,
                     "coverage90": coverage, "coverage90_sobol1": fixed_cov[1], "coverage90_sobol3": fixed_cov[3],
                     "replicates": int(sum(h["replicates"] for h in res.history)),
                     "seconds": time.perf_counter() - t1})
        print(f"seed {seed}: @192 best (homo, hetero): sobol x1 " + ", ".join(
            f"{name} {d[N_REF]['best']:.4f} ({d[N_REF]['homoscedastic']:.4f}, {d[N_REF]['heteroscedastic']:.4f})"
            for name, d in (("x1", fixed[1]), ("x3", fixed[3]), ("adaptive", curve))) +
            f"; saving (best) vs x1 {saving['best_vs_sobol1']:.0%}, vs x3 {saving['best_vs_sobol3']:.0%}; "
            f"coverage90 {coverage:.3f} (x1 {fixed_cov[1]:.3f}, x3 {fixed_cov[3]:.3f}); "
            f"{rows[-1]['replicates']} replicates; {rows[-1]['seconds']:.0f} s", flush=True)
    summary: dict[str, Any] = {"median_saving": {}, "median_curve_saving": {}, "median_rmse": {}}
    for how in SCORES:
        medians = {name: median_curve(rows, name, how) for name in ("sobol1", "sobol3", "adaptive")}
        summary["median_rmse"][how] = {name: {str(n): m[n] for n in SIZES} for name, m in medians.items()}
        for reps in (1, 3):
            key = f"{how}_vs_sobol{reps}"
            summary["median_saving"][key] = float(np.median([r["saving"][key] for r in rows]))
            summary["median_curve_saving"][key] = held_below(medians["adaptive"], medians[f"sobol{reps}"][N_REF],
                                                             N_REF)
        print(f"{how}: median RMSE at " + "/".join(map(str, SIZES)) + " solves: " + "; ".join(
            f"{name} " + "/".join(f"{m[n]:.3f}" for n in SIZES) for name, m in medians.items()))
        print(f"  median saving: {summary['median_saving'][how + '_vs_sobol1']:.0%} vs Sobol x1, "
              f"{summary['median_saving'][how + '_vs_sobol3']:.0%} vs Sobol x3; of the median curves "
              f"{summary['median_curve_saving'][how + '_vs_sobol1']:.0%} and "
              f"{summary['median_curve_saving'][how + '_vs_sobol3']:.0%}")
    for key in ("coverage90", "coverage90_sobol1", "coverage90_sobol3"):
        summary["median_" + key] = float(np.median([r[key] for r in rows]))
    print("median coverage of the 90 % intervals: adaptive {median_coverage90:.3f}, Sobol x1 "
          "{median_coverage90_sobol1:.3f}, x3 {median_coverage90_sobol3:.3f}".format(**summary))
    save("adaptive_study" + ("_log" if LOG else "") + ("_no_replicates" if args.no_replicates else "")
         + ("_homoscedastic" if args.design_noise == "homoscedastic" else ""),
         {"rows": rows, "log": LOG, "replicates": not args.no_replicates, "design_noise": args.design_noise,
          "reference": {"se_max": REF_SE, "sves_per_point": REF["n"].tolist(), "mean": REF["mean"].tolist(),
                        "mean_of_16": REF["mean16"].tolist(), "rms_error": float(np.sqrt(REF["floor"]))},
          "n_ref": N_REF, **summary})


if __name__ == "__main__":
    main()
