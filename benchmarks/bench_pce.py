"""Sparse PCE benchmark (issue 18, part 4): fit time and Sobol index errors on Sobol' G.

Sobol' G in 4 inputs, g = prod (|4 x_i - 2| + a_i)/(1 + a_i), x ~ U(0, 1)^4, a = (0, 1, 4.5, 9):
V_i = 1/(3 (1 + a_i)^2), V = prod(1 + V_i) - 1, S_i = V_i/V, ST_i = V_i prod_{j != i}(1 + V_j)/V.
The kink at x = 1/2 makes its PCE coefficients decay slowly, so a good fit needs high degrees
and large candidate sets: the case where a LARS/OMP path that runs to min(P - 1, n - 2) steps
was slow.

Rows (2048 scrambled Sobol points, seed 3; ``--quick``: 512 points, smaller degrees):

1. degree 12 (1820 candidate terms), LARS and OMP;
2. ``degree="auto"`` (default ``max_degree=8``), LARS and OMP: targets <= 10 s and max Sobol
   error <= 2e-3, plus the spread of that error over ``--seeds`` designs;
3. ``degree="auto"`` up to degree 16 and 20 with LARS (candidate sets up to 10626 terms), and
   up to 20 with the hyperbolic truncation ``q_norm=0.75`` (3038 terms at degree 20);
4. the reference cost of sklearn's ``lars_path`` over the whole degree-12 path (what the fit
   computed before the early stopping).

Each time is the best of ``--repeat`` runs (default 2): the machine is shared.
Run: ``python benchmarks/bench_pce.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
from common import save

from stochhom.surrogates import PCE, input_distribution
from stochhom.surrogates.pce import design_matrix, multi_indices

A = np.array([0.0, 1.0, 4.5, 9.0])
SPEC = {f"x{i}": {"distribution": "uniform", "low": 0.0, "high": 1.0} for i in range(4)}


def g_function(x: np.ndarray) -> np.ndarray:
    return np.prod((np.abs(4 * x - 2) + A) / (1 + A), axis=1)


def exact_indices() -> tuple[np.ndarray, np.ndarray]:
    vi = 1 / (3 * (1 + A) ** 2)
    v = np.prod(1 + vi) - 1
    return vi / v, vi * np.prod(1 + vi) / (1 + vi) / v


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def fit_row(x: np.ndarray, y: np.ndarray, repeat: int, **kwargs) -> dict:
    first, total = exact_indices()
    seconds, model = best(lambda: PCE(distribution=SPEC, **kwargs).fit(x, y), repeat)
    err_first = float(np.max(np.abs(model.sobol_first_ - first)))
    err_total = float(np.max(np.abs(model.sobol_total_ - total)))
    return {
        "settings": dict(kwargs),
        "seconds": seconds,
        "degree": int(model.degree_),
        "degrees_tried": [int(d) for d in model.loo_by_degree_[:, 0]],
        "candidate_terms": int(len(model.multi_indices_)),
        "terms": int(model.n_terms_),
        "relative_loo": float(model.loo_error_),
        "corrected_loo": float(model.loo_by_degree_[model.degree_ == model.loo_by_degree_[:, 0]][0, 2]),
        "max_error_first": err_first,
        "max_error_total": err_total,
        "max_sobol_error": max(err_first, err_total),
    }


def sklearn_full_path(x: np.ndarray, y: np.ndarray, degree: int, repeat: int) -> dict:
    """Time of sklearn's lars_path over the whole path (max_iter = min(P - 1, n - 2)) on the
    centred, normalized degree-``degree`` design: the step the fit took before early stopping."""
    from sklearn.linear_model import lars_path
    from threadpoolctl import threadpool_limits

    dist = input_distribution(SPEC)
    idx = multi_indices(4, degree)
    psi = design_matrix(dist.to_germ(x), idx, dist.recurrence(degree))
    cols = psi[:, 1:] - psi[:, 1:].mean(axis=0)
    cols /= np.linalg.norm(cols, axis=0)
    z = (y - y.mean()) / y.std()
    steps = int(min(len(idx) - 1, len(y) - 2))
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, _ = best(lambda: lars_path(cols, z, method="lar", max_iter=steps, return_path=False), repeat)
    return {"degree": degree, "candidate_terms": int(len(idx)), "max_iter": steps, "seconds": seconds}


def show(name: str, row: dict) -> None:
    print(f"{name:<34} {row['seconds']:7.2f} s  degree {row['degree']:2d} (tried {len(row['degrees_tried'])}), "
          f"{row['terms']:4d} of {row['candidate_terms']:5d} terms, LOO {row['relative_loo']:.2e} "
          f"(corrected {row['corrected_loo']:.2e}), max Sobol error {row['max_sobol_error']:.2e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="512 points, degrees up to 12")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5, help="designs for the spread of the auto-degree error")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    n = 512 if args.quick else 2048
    fixed = 8 if args.quick else 12
    dist = input_distribution(SPEC)
    x = dist.sample(n, rng=3)
    y = g_function(x)
    rows: dict[str, dict] = {"problem": {"function": "Sobol G, a = (0, 1, 4.5, 9)", "n": n, "design": "sobol",
                                         "seed": 3, "target_s": 10.0, "target_sobol_error": 2e-3}}
    for method in ("lars", "omp"):
        key = f"degree{fixed}_{method}"
        rows[key] = fit_row(x, y, args.repeat, degree=fixed, fit_method=method)
        show(key, rows[key])
    for method in ("lars", "omp"):
        key = f"auto_{method}"
        rows[key] = fit_row(x, y, args.repeat, degree="auto", fit_method=method)
        show(key, rows[key])
    errors = []
    for seed in range(args.seeds):
        xs = dist.sample(n, rng=100 + seed)
        errors.append(fit_row(xs, g_function(xs), 1, degree="auto", fit_method="lars")["max_sobol_error"])
    rows["auto_lars_design_spread"] = {"seeds": list(range(100, 100 + args.seeds)), "max_sobol_errors": errors}
    print(f"auto_lars over {args.seeds} other designs: max Sobol error {np.min(errors):.2e} to {np.max(errors):.2e}")
    high = [(12, 1.0)] if args.quick else [(16, 1.0), (20, 1.0), (20, 0.75)]
    for max_degree, q in high:
        key = f"auto{max_degree}_lars" + ("" if q == 1.0 else f"_q{q:g}")
        rows[key] = fit_row(x, y, 1, degree="auto", max_degree=max_degree, q_norm=q, fit_method="lars")
        show(key, rows[key])
    rows["sklearn_full_lars_path"] = sklearn_full_path(x, y, fixed, 1)
    ref = rows["sklearn_full_lars_path"]
    print(f"reference: sklearn lars_path, whole degree-{fixed} path ({ref['max_iter']} steps): {ref['seconds']:.2f} s")
    print("wrote", save("pce" + ("_quick" if args.quick else ""), rows), file=sys.stderr)


if __name__ == "__main__":
    main()
