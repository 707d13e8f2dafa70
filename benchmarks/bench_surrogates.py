"""Surrogate benchmarks (issue 5 targets, 2 cores).

1. GPR fit on 2000 points in 4 dimensions (Matérn 5/2, ARD, learned noise): <= 20 s.
2. Prediction of 1e5 points from that GP: <= 2 s (mean; mean + std reported too).
3. A degree-6 PCE in 4 dimensions (210 terms, 1024 points) with its LOO error: <= 2 s.
4. Posterior function samples and propagation through the GP.

Each timing is the best of ``--repeat`` runs (default 2): the machine is shared.
Run: ``python benchmarks/bench_surrogates.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
from common import save

from stochhom.surrogates import GPR, PCE, input_distribution, propagate


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def target(x: np.ndarray) -> np.ndarray:
    return np.sin(3 * x[:, 0]) + x[:, 1] ** 2 + 0.5 * x[:, 2] * x[:, 3]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rows: dict[str, dict] = {}
    rng = np.random.default_rng(0)
    dist = input_distribution({f"x{i}": {"distribution": "uniform", "low": 0.0, "high": 1.0} for i in range(4)})
    x = dist.sample(2000, rng=rng, method="random")
    y = target(x) + 0.05 * rng.standard_normal(2000)
    t_fit, gp = best(lambda: GPR(kernel="matern52", random_state=0).fit(x, y), args.repeat)
    rows["gpr_fit_2000x4"] = {"seconds": t_fit, "target_s": 20.0, "restarts": gp.n_restarts}
    print(f"GPR fit, 2000 points x 4 inputs: {t_fit:.2f} s (target 20 s)")
    xt = dist.sample(100_000, rng=1, method="random")
    t_mean, mean = best(lambda: gp.predict(xt), args.repeat)
    t_std, _ = best(lambda: gp.predict(xt, return_std=True), args.repeat)
    rmse = float(np.sqrt(np.mean((mean - target(xt)) ** 2)))
    rows["gpr_predict_1e5"] = {"mean_seconds": t_mean, "mean_and_std_seconds": t_std, "target_s": 2.0,
                               "rmse_vs_truth": rmse}
    print(f"GPR predict 1e5 points: mean {t_mean:.2f} s, mean + std {t_std:.2f} s (target 2 s); RMSE {rmse:.4f}")
    xp = dist.sample(1024, rng=2)
    yp = target(xp)
    t_pce, pce = best(lambda: PCE(distribution=dist, degree=6).fit(xp, yp), args.repeat)
    rows["pce_degree6_4d"] = {"seconds": t_pce, "target_s": 2.0, "terms": int(len(pce.multi_indices_)),
                              "relative_loo": float(np.atleast_1d(pce.loo_error_)[0])}
    print(f"PCE degree 6, 4 inputs, {len(pce.multi_indices_)} terms, 1024 points with LOO: {t_pce:.3f} s "
          f"(target 2 s); relative LOO {float(np.atleast_1d(pce.loo_error_)[0]):.2e}")
    xs = dist.sample(2000, rng=3)
    t_samp, _ = best(lambda: gp.sample_functions(xs, 64, rng=0), args.repeat)
    t_prop, res = best(lambda: propagate(gp, dist, 2048, n_functions=64, rng=0), args.repeat)
    rows["gpr_functions"] = {"sample_functions_2000pts_64_s": t_samp, "propagate_2048x64_s": t_prop,
                             "epistemic_share": float(res.epistemic_share)}
    print(f"GPR: 64 joint function samples at 2000 points {t_samp:.2f} s; propagation 2048 inputs x 64 "
          f"functions {t_prop:.2f} s (epistemic share {float(res.epistemic_share):.3g})")
    print("wrote", save("surrogates", rows), file=sys.stderr)


if __name__ == "__main__":
    main()
