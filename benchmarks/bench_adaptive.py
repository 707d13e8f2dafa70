"""Adaptive designs (issue 20): solves saved against fixed Sobol designs at the same accuracy.

A synthetic stand-in for a study: two parameters uniform on [0, 1] (think volume fraction and
log contrast), a smooth effective property f(a, b) = exp(1.2 a)(1 + 2 b^2) + 0.5 sin(4 a b), and an
SVE scatter whose standard deviation grows with b, sd = 0.005 + 0.1 b^4 (20x over the range, as
the scatter grows with contrast). Each solve returns f + sd * N(0, 1). The accuracy is the RMSE
of the GP mean against the known f on 2000 random points of the input distribution.

Per seed (``--seeds``, default 10):

- fixed designs: scrambled Sobol points with r = 1 or 3 replicates each (the studies ship 3),
  at N = 48 ... 192 solves, each fitted with a homoscedastic and a heteroscedastic GP, the better
  RMSE kept (a baseline at its best);
- the adaptive design: 8 points x 2 replicates, then rounds of 8 solves chosen by the exact greedy
  IMSE over the input distribution (fresh points or replicates) with a heteroscedastic GP refitted
  each round, up to 192 solves, and scored after each round as the fixed designs are (the better
  of the two GPs fitted to its solves);
- the saving: 1 - n_adaptive / N_ref, with N_ref = 192 and n_adaptive the first round from which
  the adaptive RMSE stays at or below the fixed design's RMSE at N_ref up to the budget (a noisy
  curve that dips below once does not count; 0 when it never does; the median over seeds is the
  figure); and the coverage of the adaptive model's 90 % intervals for fresh noisy solves at the
  test points.

Run: ``python benchmarks/bench_adaptive.py [--seeds 10]`` (about 40 s per seed on 2 cores).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from common import held_below, save
from scipy import stats

from stochhom.errors import OutOfDomainWarning
from stochhom.surrogates import GPR
from stochhom.surrogates.adaptive import AdaptiveDesign
from stochhom.surrogates.distributions import InputDistribution

SPEC = {"a": {"distribution": "uniform", "low": 0.0, "high": 1.0},
        "b": {"distribution": "uniform", "low": 0.0, "high": 1.0}}
N_REF = 192
BUDGETS = (48, 96, 144, 192)


def f(X: np.ndarray) -> np.ndarray:
    a, b = X[:, 0], X[:, 1]
    return np.exp(1.2 * a) * (1 + 2 * b**2) + 0.5 * np.sin(4 * a * b)


def sd(X: np.ndarray) -> np.ndarray:
    return 0.005 + 0.1 * X[:, 1] ** 4


def model(noise: str = "heteroscedastic") -> GPR:
    return GPR(noise=noise, n_restarts=1, random_state=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    warnings.simplefilter("ignore", OutOfDomainWarning)
    warnings.simplefilter("ignore", UserWarning)  # Sobol balance for counts that are not powers of 2
    dist = InputDistribution(SPEC)
    xt = dist.sample(2000, rng=123, method="random")
    ft = f(xt)
    z90 = stats.norm.ppf(0.95)
    rows = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        fixed = {}
        for reps in (1, 3):
            for n in BUDGETS:
                pts = dist.sample(n // reps, rng=seed, method="sobol")
                X = np.repeat(pts, reps, axis=0)
                y = f(X) + sd(X) * np.random.default_rng([seed, n, reps]).standard_normal(len(X))
                fixed[f"sobol{reps}x_{n}"] = min(float(np.sqrt(np.mean((model(noise).fit(X, y).predict(xt) - ft) ** 2)))
                                                for noise in ("homoscedastic", "heteroscedastic"))
        rng = np.random.default_rng([seed, 7])
        curve: dict[int, float] = {}

        def record(entry: dict, m: GPR, curve: dict = curve) -> None:
            # scored as the fixed designs are: the better of the two GPs fitted to the solves so far
            X, y = m.X_train_, m.y_train_[:, 0]
            curve[entry["solves"] - (entry["new_points"] + entry["replicates"])] = min(
                float(np.sqrt(np.mean((model(noise).fit(X, y).predict(xt) - ft) ** 2)))
                for noise in ("homoscedastic", "heteroscedastic"))

        design = AdaptiveDesign(SPEC, initial_points=8, initial_replicates=2, batch=8, max_solves=N_REF, stop=None,
                                model=model(), rng=seed)
        res = design.run(lambda X, rng=rng: f(X) + sd(X) * rng.standard_normal(len(X)), callback=record)
        mean, std = res.model.predict(xt, return_std=True)
        obs = ft + sd(xt) * np.random.default_rng([seed, 11]).standard_normal(len(xt))
        coverage = float(np.mean(np.abs(obs - mean) <= z90 * std))
        saving = {}
        for reps in (1, 3):
            target = fixed[f"sobol{reps}x_{N_REF}"]
            saving[reps] = held_below(curve, target, N_REF)
        replicates = int(sum(h["replicates"] for h in res.history))
        rows.append({"seed": seed, "fixed": fixed, "adaptive": {str(k): v for k, v in sorted(curve.items())},
                     "saving_vs_sobol1": saving[1], "saving_vs_sobol3": saving[3], "coverage90": coverage,
                     "adaptive_replicates": replicates, "seconds": time.perf_counter() - t0})
        print(f"seed {seed}: sobol1@192 {fixed['sobol1x_192']:.4f}, sobol3@192 {fixed['sobol3x_192']:.4f}, "
              f"adaptive@96 {curve.get(96, np.nan):.4f}, @192 {curve.get(192, np.nan):.4f}; saving vs 1x "
              f"{saving[1]:.0%}, vs 3x {saving[3]:.0%}; coverage90 {coverage:.3f}; {replicates} replicates; "
              f"{rows[-1]['seconds']:.0f} s", flush=True)
    med1 = float(np.median([r["saving_vs_sobol1"] for r in rows]))
    med3 = float(np.median([r["saving_vs_sobol3"] for r in rows]))
    cov = float(np.median([r["coverage90"] for r in rows]))
    print(f"median saving over {len(rows)} seeds: {med1:.0%} vs Sobol x1, {med3:.0%} vs Sobol x3 (target >= 30 %); "
          f"median coverage of the 90 % intervals {cov:.3f}")
    save("adaptive", {"rows": rows, "median_saving_vs_sobol1": med1, "median_saving_vs_sobol3": med3,
                      "median_coverage90": cov, "n_ref": N_REF})


if __name__ == "__main__":
    main()
