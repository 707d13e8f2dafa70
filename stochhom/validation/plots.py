"""Validation figures (matplotlib). Each function returns a ``matplotlib.figure.Figure``.

Figures are built without ``pyplot`` (no global state, no display needed):
save them with ``fig.savefig(path)`` or show them in a notebook.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from ..errors import InputError
from .metrics import CALIBRATION_LEVELS, COVERAGE_LEVELS, calibration_check, calibration_curve, coverage, pit

__all__ = ["parity_plot", "calibration_plot", "coverage_plot", "pit_histogram", "degradation_plot",
           "cv_comparison_plot"]


def _figure(size: tuple[float, float] = (4.5, 4.0)) -> tuple[Figure, Any]:
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _flat(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=float).reshape(-1)


def parity_plot(y: Any, mean: Any, std: Any = None, *, label: str = "value", unit: str = "",
                interval: float = 0.95, lower: Any = None, upper: Any = None) -> Figure:
    """Predicted against observed values, with central ``interval`` error bars: ``mean ± z std``
    (a Gaussian law), or the interval ends ``lower``/``upper`` when given (any law, e.g. a
    bounded surrogate's asymmetric intervals)."""
    fig, ax = _figure()
    yv, mv = _flat(y), _flat(mean)
    if yv.shape != mv.shape:
        raise InputError(f"y and mean must have the same shape, got {yv.shape} and {mv.shape}")
    if lower is not None and upper is not None:
        lo_v, hi_v = _flat(lower), _flat(upper)
        if lo_v.shape != yv.shape or hi_v.shape != yv.shape:
            raise InputError("lower and upper must have the shape of y")
        err = np.vstack([np.maximum(mv - lo_v, 0.0), np.maximum(hi_v - mv, 0.0)])
    else:
        err = None if std is None else stats.norm.ppf(0.5 + interval / 2) * _flat(std)
    ax.errorbar(yv, mv, yerr=err, fmt="o", ms=3, alpha=0.6, elinewidth=0.8, label="predictions")
    lo, hi = float(min(yv.min(), mv.min())), float(max(yv.max(), mv.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    u = f" [{unit}]" if unit else ""
    ax.set_xlabel(f"observed {label}{u}")
    shown = std is not None or (lower is not None and upper is not None)
    ax.set_ylabel(f"predicted {label}{u}" + (f" ({interval:.0%} interval)" if shown else ""))
    ax.legend(loc="upper left")
    return fig


def calibration_plot(y: Any, mean: Any, std: Any, levels: Any = CALIBRATION_LEVELS) -> Figure:
    """Observed against nominal coverage of central intervals, with the binomial 95 % band."""
    fig, ax = _figure()
    nominal, observed = calibration_curve(y, mean, std, levels)
    n = _flat(y).size
    lo, hi = stats.binom.interval(0.95, n, nominal)
    ax.fill_between(nominal, lo / n, hi / n, color="0.85", label="binomial 95 % band")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    ax.plot(nominal, np.asarray(observed).reshape(len(nominal), -1), "o-", ms=3, label="observed")
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return fig


def coverage_plot(y: Any, mean: Any, std: Any, levels: Any = COVERAGE_LEVELS) -> Figure:
    """Coverage at a few levels as bars, with the acceptance band of :func:`calibration_check`."""
    fig, ax = _figure()
    lv = np.asarray(levels, dtype=float)
    cov = np.asarray(coverage(y, mean, std, lv), dtype=float).reshape(len(lv), -1).mean(axis=1)
    check = calibration_check(y, mean, std, lv)
    x = np.arange(len(lv))
    ok = np.asarray(check.level_passed).reshape(len(lv), -1).all(axis=1)
    ax.bar(x, cov, color=["tab:green" if v else "tab:red" for v in ok], label="observed (green: in band)")
    lower = np.asarray(check.lower, dtype=float).reshape(len(lv), -1).mean(axis=1)
    upper = np.asarray(check.upper, dtype=float).reshape(len(lv), -1).mean(axis=1)
    ax.errorbar(x, lv, yerr=[lv - lower, upper - lv], fmt="k_", capsize=6, label="nominal and acceptance band")
    ax.set_xticks(x, [f"{v:g}" for v in lv])
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper left")
    return fig


def pit_histogram(y: Any, mean: Any, std: Any, bins: int = 10) -> Figure:
    """Histogram of the PIT values Φ(z): flat when calibrated, U-shaped when over-confident."""
    fig, ax = _figure()
    u = _flat(pit(y, mean, std))
    ax.hist(u, bins=bins, range=(0, 1), density=True, color="tab:blue", alpha=0.7, edgecolor="white")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="uniform (calibrated)")
    ax.set_xlabel("PIT value Φ((y − μ)/σ)")
    ax.set_ylabel("density")
    ax.legend(loc="upper center")
    return fig


def degradation_plot(table: pd.DataFrame, metrics: Any = None) -> Figure:
    """Degradation ratio against extrapolation distance, one line per metric (:func:`degradation`)."""
    if not isinstance(table, pd.DataFrame) or not {"distance", "ratio", "metric"} <= set(table.columns):
        raise InputError("expected the table returned by degradation()")
    fig, ax = _figure((5.0, 4.0))
    for metric in (metrics or sorted(set(table["metric"]))):
        t = table[table["metric"] == metric].groupby("distance", as_index=False)["ratio"].mean()
        ax.plot(t["distance"], t["ratio"], "o-", label=metric)
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.set_xlabel("mean normalized distance to the training box")
    ax.set_ylabel("OOD metric / in-distribution metric")
    ax.legend()
    return fig


def cv_comparison_plot(demo: pd.DataFrame) -> Figure:
    """Naive against grouped cross-validation estimates (:func:`leakage_demonstration`)."""
    if not isinstance(demo, pd.DataFrame) or not {"metric", "naive", "grouped"} <= set(demo.columns):
        raise InputError("expected the table returned by leakage_demonstration()")
    fig, ax = _figure((5.0, 4.0))
    x = np.arange(len(demo))
    ax.bar(x - 0.2, demo["naive"], 0.4, label="naive K-fold")
    ax.bar(x + 0.2, demo["grouped"], 0.4, label="grouped K-fold")
    ax.set_xticks(x, [f"{m}" + (f" ({o})" if len(set(demo["output"])) > 1 else "")
                      for m, o in zip(demo["metric"], demo["output"])])
    ax.set_ylabel("cross-validation estimate")
    ax.set_xlabel("metric")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.legend()
    return fig
