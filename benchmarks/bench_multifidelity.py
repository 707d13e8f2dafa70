"""Multi-fidelity co-kriging on real solves (issue 20): a coarse grid as the low fidelity.

The quickstart's material (level-cut Gaussian fields, correlation length 2 um, cut at the
quantile, two isotropic conductors 1 and ``contrast``) on an SVE of 32 x 32 um. The target is
the log of the smallest apparent conductivity eigenvalue over ``volume_fraction`` U(0.2, 0.5)
and ``contrast`` log-U(5, 100) (inputs: the fraction and log contrast).

- high fidelity: 128 x 128 voxels (4 voxels per um), 12 Sobol points x 2 replicates;
- low fidelity: 32 x 32 voxels (1 per um: 2 voxels per correlation length, a biased
  discretization), 64 Sobol points x 1, other SVEs;
- an unrelated low fidelity: the same 64 runs with their outputs permuted (no information).

Per seed (``--seeds``, default 6; new designs and SVEs each): the grouped-CV RMSE (4 folds,
a point's replicates held out together; only high-fidelity points are held out) of a GP of the
high-fidelity data alone and of ``CoKriging`` with the biased and with the unrelated low
fidelity (``rho="fit"`` and ``"select"``), and their RMSE against a held-out reference: the
mean of 4 high-fidelity replicates at 24 other points (its own SVE scatter, about 1/2 of one
sample's, is in every model's figure alike).

Run: ``python benchmarks/bench_multifidelity.py [--seeds 6]`` (about 1 minute per seed on 2 cores).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from common import save
from scipy.stats import qmc

import stochhom as sh
from stochhom.errors import OutOfDomainWarning
from stochhom.surrogates import GPR, CoKriging
from stochhom.validation import evaluate, grouped_kfold

SIZE = 32.0  # um


def solve(params: np.ndarray, n: int, seed: int) -> np.ndarray:
    """log of the smallest conductivity eigenvalue of one SVE per row, ``n`` voxels per side."""
    out = np.empty(len(params))
    for k, (vf, contrast) in enumerate(params):
        ens = sh.generate("gaussian", shape=(n, n), n=1, rng=np.random.default_rng([seed, k, n]),
                          volume_fraction=float(vf), correlation_length=2.0, cut="quantile", voxel_size=SIZE / n)
        res = sh.homogenize(ens.isel(sample=0), [sh.Conductivity(1.0), sh.Conductivity(float(contrast))])
        out[k] = np.log(np.linalg.eigvalsh(res.effective)[0])
    return out


def design(n: int, seed: int) -> np.ndarray:
    u = qmc.Sobol(2, scramble=True, seed=seed).random(n)
    return np.column_stack([0.2 + 0.3 * u[:, 0], np.exp(np.log(5.0) + u[:, 1] * np.log(20.0))])


def features(p: np.ndarray) -> np.ndarray:
    return np.column_stack([p[:, 0], np.log(p[:, 1])])


def cv_rmse(model, X, y, groups, seed):
    table = evaluate(model, X, y, grouped_kfold(4, rng=seed), groups=groups)
    test = table[(table.split == "test") & (table.metric == "rmse")]
    return float(np.sqrt(np.average(test.value**2, weights=test.n)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=6)
    args = ap.parse_args()
    warnings.simplefilter("ignore", OutOfDomainWarning)
    warnings.simplefilter("ignore", UserWarning)
    t0 = time.perf_counter()
    p_ref = design(24, 999)
    y_ref = np.mean([solve(p_ref, 128, 10_000 + r) for r in range(4)], axis=0)
    x_ref = features(p_ref)
    print(f"reference: 24 points x 4 replicates at 128^2 in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for seed in range(args.seeds):
        t1 = time.perf_counter()
        p_hi = design(12, seed)
        X = features(np.repeat(p_hi, 2, axis=0))
        groups = np.repeat(np.arange(12), 2)
        y = solve(np.repeat(p_hi, 2, axis=0), 128, seed)
        p_lo = design(64, 100 + seed)
        x_lo, y_lo = features(p_lo), solve(p_lo, 32, 100 + seed)
        y_unrelated = np.random.default_rng(seed).permutation(y_lo)
        gp = GPR(noise="heteroscedastic", n_restarts=1, random_state=0)
        models = {"high only": gp,
                  "co-kriging": CoKriging(x_lo, y_lo, high_model=gp),
                  "unrelated, fit": CoKriging(x_lo, y_unrelated, high_model=gp),
                  "unrelated, select": CoKriging(x_lo, y_unrelated, high_model=gp, rho="select")}
        row = {"seed": seed}
        for name, m in models.items():
            row[f"cv {name}"] = cv_rmse(m, X, y, groups, seed)
            fitted = m.fit(X, y)
            row[f"ref {name}"] = float(np.sqrt(np.mean((fitted.predict(x_ref) - y_ref) ** 2)))
            if hasattr(fitted, "rho_"):
                row[f"rho {name}"] = float(fitted.rho_)
        lo_bias = float(np.mean(solve(p_ref, 32, 20_000) - y_ref))
        row["low-fidelity bias"] = lo_bias
        row["seconds"] = time.perf_counter() - t1
        rows.append(row)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "seed"), flush=True)
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0] if k != "seed"}
    ratio = np.median([r["cv co-kriging"] / r["cv high only"] for r in rows])
    ratio_u = np.median([r["cv unrelated, fit"] / r["cv high only"] for r in rows])
    ratio_s = np.median([r["cv unrelated, select"] / r["cv high only"] for r in rows])
    print(f"median over {len(rows)} seeds: grouped-CV RMSE ratio to the high-fidelity GP: co-kriging {ratio:.3f}, "
          f"unrelated low fidelity {ratio_u:.3f} (fit), {ratio_s:.3f} (select); rho {med['rho co-kriging']:.3f} "
          f"(unrelated {med['rho unrelated, fit']:.3f}); reference RMSE {med['ref high only']:.4f} -> "
          f"{med['ref co-kriging']:.4f}")
    save("multifidelity", {"rows": rows, "median": med, "cv_ratio": float(ratio), "cv_ratio_unrelated_fit":
                           float(ratio_u), "cv_ratio_unrelated_select": float(ratio_s)})


if __name__ == "__main__":
    main()
