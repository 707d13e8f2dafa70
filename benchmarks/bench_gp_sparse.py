"""Sparse GP (SGPR, Titsias' collapsed bound) for large training sets (issue 18, 2 cores).

For n = 2000, 10 000 and 50 000 training points in 4 inputs (the function of
``bench_surrogates.py``, Gaussian noise of sd 0.1), with the default ``SparseGPR``
(Matérn 5/2, ARD, learned noise, M = min(n, 512) learned inducing points):

1. the fit time, with the L-BFGS-B iterations of each stage (inducing points and
   hyperparameters on a 4096-point subset above 4096 points, then the hyperparameters on
   all points);
2. the predictive mean, and mean + standard deviation, at 1e5 points (target: well
   under 2 s; the cost is O(M^2) per point, independent of n);
3. on those 1e5 held-out points: RMSE of the mean against the true function, coverage of
   the central 90 % interval of a new noisy observation, and its NLPD;
4. the exact ``GPR`` at n = 2000, side by side (same data, same metrics);
5. one evaluation of the bound and its gradient at n = 10 000, M = 512: gpytorch's
   ``InducingPointKernel`` in an ``ExactGP`` with autograd, against the closed form.

Wall and CPU time are both reported: the machine is shared, and the CPU time of a run is
what it takes on idle cores. Fits run once; predictions are the best of ``--repeat``.

Run: ``python benchmarks/bench_gp_sparse.py [--quick]`` (``--quick``: n = 1000 and 4000,
M = 128, 2e4 predictions).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import gpytorch
import numpy as np
import torch
from common import save

from stochhom.surrogates.gpr import GPR, _threads
from stochhom.surrogates.sgpr import SparseGPR, _Bound, _SparseModel

NOISE_SD = 0.1


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall and CPU seconds of ``repeat`` runs, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


def target(x: np.ndarray) -> np.ndarray:
    return np.sin(3 * x[:, 0]) + x[:, 1] ** 2 + 0.5 * x[:, 2] * x[:, 3]


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n, 4))
    f = target(x)
    return x, f, f + NOISE_SD * rng.standard_normal(n)


def metrics(model, xt: np.ndarray, ft: np.ndarray, yt: np.ndarray, repeat: int) -> dict:
    t_mean, c_mean, _ = timed(lambda: model.predict(xt), repeat)
    t_std, c_std, (mean, std) = timed(lambda: model.predict(xt, return_std=True), repeat)
    z = (yt - mean) / std
    return {
        "predict_mean_wall_s": t_mean, "predict_mean_cpu_s": c_mean,
        "predict_mean_std_wall_s": t_std, "predict_mean_std_cpu_s": c_std, "predict_target_s": 2.0,
        "rmse_vs_truth": float(np.sqrt(np.mean((mean - ft) ** 2))),
        "coverage_90": float(np.mean(np.abs(z) <= 1.6448536)),
        "coverage_90_standard_error": math.sqrt(0.9 * 0.1 / len(yt)),
        "nlpd": float(np.mean(0.5 * np.log(2 * np.pi * std**2) + 0.5 * z**2)),
        "nlpd_of_the_true_law": math.log(NOISE_SD * math.sqrt(2 * math.pi)) + 0.5,
    }


def describe(name: str, row: dict) -> str:
    return (f"{name}: fit {row['fit_wall_s']:.1f} s wall / {row['fit_cpu_s']:.1f} s CPU; "
            f"{row['n_predict']:.0e} predictions: mean {row['predict_mean_wall_s']:.2f} s / "
            f"{row['predict_mean_cpu_s']:.2f} s CPU, mean + std {row['predict_mean_std_wall_s']:.2f} s / "
            f"{row['predict_mean_std_cpu_s']:.2f} s CPU; RMSE {row['rmse_vs_truth']:.4f}, coverage(90 %) "
            f"{row['coverage_90']:.4f}, NLPD {row['nlpd']:.4f}, noise sd {row['noise_std']:.4f} (true {NOISE_SD})")


def sparse_case(n: int, m: int | None, xt, ft, yt, repeat: int) -> dict:
    x, _, y = data(n, seed=n)
    t_fit, c_fit, sg = timed(lambda: SparseGPR(n_inducing=m, random_state=0).fit(x, y), 1)
    info = sg.fit_info_[0]
    row = {
        "n_train": n, "n_inducing": sg.n_inducing_, "n_predict": len(xt),
        "fit_wall_s": t_fit, "fit_cpu_s": c_fit,
        "stages": [{k: s[k] for k in ("points", "learn_inducing", "nit", "nfev", "seconds", "message")}
                   for s in info["stages"]],
        "bound_per_point": float(sg.bound_[0] / n),
        "noise_std": sg.hyperparameters_[0]["noise_std"],
        **metrics(sg, xt, ft, yt, repeat),
    }
    return row


def exact_case(n: int, xt, ft, yt, repeat: int) -> dict:
    x, _, y = data(n, seed=n)
    t_fit, c_fit, gp = timed(lambda: GPR(random_state=0).fit(x, y), 1)
    return {"n_train": n, "n_predict": len(xt), "fit_wall_s": t_fit, "fit_cpu_s": c_fit,
            "noise_std": gp.hyperparameters_[0]["noise_std"],
            "log_likelihood_per_point": float(gp.log_marginal_likelihood_[0] / n),
            **metrics(gp, xt, ft, yt, repeat)}


def bound_evaluation(n: int, m: int, repeat: int) -> dict:
    """One bound + gradient evaluation (hyperparameters and inducing points), both ways."""
    x, _, y = data(n, seed=1)
    xs = torch.from_numpy((x - x.mean(0)) / x.std(0))
    ys = (y - y.mean()) / y.std()
    z = xs[np.random.default_rng(0).choice(n, m, replace=False)]
    model = _SparseModel("matern52", z, True, None)
    model.set_train_data(xs, torch.from_numpy(ys), strict=False)
    model.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model)

    def by_gpytorch() -> float:
        model.zero_grad()
        with gpytorch.settings.max_cholesky_size(10**9):
            loss = -mll(model(xs), torch.from_numpy(ys))
        loss.backward()
        return float(loss) * n

    bound = _Bound("matern52", xs, ys, None, True, None, m)
    theta = model.get_theta()
    with _threads(n):
        t_g, c_g, v_g = timed(by_gpytorch, repeat)
        t_c, c_c, (v_c, _) = timed(lambda: bound(theta, 0.0), repeat)
    return {"n_train": n, "n_inducing": m, "gpytorch_autograd_wall_s": t_g, "gpytorch_autograd_cpu_s": c_g,
            "closed_form_wall_s": t_c, "closed_form_cpu_s": c_c,
            "relative_difference_of_the_bound": abs(v_g - v_c * n) / abs(v_g)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="n = 1000 and 4000, M = 128, 2e4 predictions")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sizes, m, n_pred, exact_n, eval_n = ((1000, 4000), 128, 20_000, 1000, 2000) if args.quick else \
        ((2000, 10_000, 50_000), None, 100_000, 2000, 10_000)
    xt, ft, yt = data(n_pred, seed=12345)
    rows: dict[str, object] = {"noise_sd": NOISE_SD, "function": "sin(3 x0) + x1^2 + 0.5 x2 x3 on [0, 1]^4"}
    e = bound_evaluation(eval_n, 512 if not args.quick else m, args.repeat)
    rows["bound_evaluation"] = e
    print(f"bound + gradient, n = {e['n_train']}, M = {e['n_inducing']}: gpytorch autograd "
          f"{e['gpytorch_autograd_wall_s']:.2f} s wall / {e['gpytorch_autograd_cpu_s']:.2f} s CPU, closed form "
          f"{e['closed_form_wall_s']:.2f} s / {e['closed_form_cpu_s']:.2f} s CPU (values agree to "
          f"{e['relative_difference_of_the_bound']:.1e})")
    row = exact_case(exact_n, xt, ft, yt, args.repeat)
    rows[f"exact_gpr_n{exact_n}"] = row
    print(describe(f"exact GPR, n = {exact_n}", row))
    for n in sizes:
        row = sparse_case(n, m, xt, ft, yt, args.repeat)
        rows[f"sparse_n{n}"] = row
        stages = "; ".join(f"{s['points']} points{' + inducing' if s['learn_inducing'] else ''}: {s['nit']} it"
                           for s in row["stages"])
        print(describe(f"SparseGPR, n = {n}, M = {row['n_inducing']} ({stages})", row))
    print("wrote", save("gp_sparse_quick" if args.quick else "gp_sparse", rows), file=sys.stderr)


if __name__ == "__main__":
    main()
