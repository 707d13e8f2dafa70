r"""Honest evaluation of a surrogate: every metric, per fold and per split, in one tidy table.

A *fold* is a training set and named evaluation sets::

    {"train": idx, "validation": idx, "test": idx, "ood_1": idx, "ood_2": idx, ...}

:func:`evaluate` fits a clone of the model on each fold's ``train`` rows, predicts
every named set (the training set too: the gap between train and test metrics is
the over-fit), checks each set against the training rows for leakage
(:func:`~stochhom.validation.splits.check_leakage`), and returns a long ``pandas``
table with one row per fold × split × metric × output, including the mean
extrapolation distance of the set to the training box.

:func:`degradation` turns that table into **OOD degradation ratios**: an OOD metric
over its in-distribution value, against the extrapolation distance. For RMSE and
coverage the ratio is plain; for NLPD, which may be negative, the ratio is that of
the geometric-mean predictive densities, :math:`\exp(\mathrm{NLPD}_{ood} -
\mathrm{NLPD}_{id})` (how many times less likely the OOD observations are under the
predictive distribution).

:func:`leakage_demonstration` runs naive K-fold and grouped K-fold on the same data
and reports the optimism of the naive estimate.

:func:`ood_evaluation` is the OOD evaluation to report: the in-box samples are
cross-validated by group (the in-distribution *reference* rests on every one of them),
every shell sample is predicted by each fold's model, shells are merged until each
holds ``min_samples`` samples, and every metric and ratio comes with its sample size
and a bootstrap interval over groups (:class:`OODEvaluation`).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats as st
from sklearn.base import clone
from sklearn.model_selection import KFold

from ..errors import InputError, OutOfDomainWarning
from ..log import get_logger
from .metrics import COVERAGE_LEVELS, SCORE_COLUMNS, pooled_metrics, probabilistic_metrics, score_predictions
from .splits import check_leakage, extrapolation_distance, grouped_kfold, ood_shells, training_box

__all__ = ["cv_folds", "ood_folds", "evaluate", "degradation", "leakage_demonstration", "ood_evaluation",
           "OODEvaluation", "OOD_METRICS"]

_logger = get_logger(__name__)
_POINTS = re.compile(r"(\d+) of (\d+) point")


class _Extrapolation:
    """The :class:`~stochhom.errors.OutOfDomainWarning` of every fold of one evaluation, held back
    and told once: the models warn at each ``predict``, so a K-fold evaluation would warn K times.

    ``with tally.fold(k): ...`` records the warnings of fold ``k`` (other warnings pass through);
    :meth:`summary` is the one line for all folds, or None when no fold extrapolated.
    """

    def __init__(self) -> None:
        self.points = 0  # points flagged outside a training box, over all folds and predictions
        self.predicted = 0  # points predicted by the calls that warned
        self.folds: set[int] = set()
        self.n_folds = 0

    @contextlib.contextmanager
    def fold(self, k: int) -> Iterator[None]:
        self.n_folds = max(self.n_folds, k + 1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", OutOfDomainWarning)
            yield
        for w in caught:
            if not issubclass(w.category, OutOfDomainWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                continue
            self.folds.add(k)
            m = _POINTS.search(str(w.message))
            if m:
                self.points += int(m.group(1))
                self.predicted += int(m.group(2))

    def summary(self, what: str) -> str | None:
        if not self.folds:
            return None
        points = f"{self.points} of {self.predicted} predicted point(s)" if self.predicted else "some points"
        return (f"{what}: {points} in {len(self.folds)} of {self.n_folds} fold(s) lie outside the fold's training "
                "box: the surrogate extrapolates there (told once for all folds)")


def cv_folds(cv: Any, X: Any, y: Any = None, groups: Any = None) -> list[dict[str, np.ndarray]]:
    """Folds ``{"train", "test"}`` of a scikit-learn splitter (e.g. :func:`grouped_kfold`)."""
    Xa = np.asarray(X)
    return [{"train": np.asarray(tr), "test": np.asarray(te)} for tr, te in cv.split(Xa, y, groups)]


def ood_folds(
    X: Any, box: Any, edges: Sequence[float] = (0.0, 0.1, 0.25, 0.5, np.inf), *,
    test_fraction: float = 0.2, groups: Any = None, rng: np.random.Generator | int | None = None,
) -> list[dict[str, np.ndarray]]:
    """One fold: train on part of the points inside ``box``, test on the rest (in-distribution)
    and on every shell of :func:`~stochhom.validation.splits.ood_shells` (``ood_1``, ``ood_2``, ...).

    The in-box points are split by group (whole groups go to ``test``) when ``groups`` is given.
    """
    Xa = np.asarray(X, dtype=float)
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    d = extrapolation_distance(Xa, box=box)
    inside = np.flatnonzero(d == 0)
    if inside.size < 4:
        raise InputError(f"only {inside.size} point(s) lie inside the box; the model needs training data there")
    gen = np.random.default_rng(rng)
    if groups is None:
        perm = gen.permutation(inside)
        n_test = max(2, int(round(test_fraction * inside.size)))
        test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    else:
        g = np.asarray(groups)
        if g.shape[0] != Xa.shape[0]:
            raise InputError(f"groups has {g.shape[0]} entries but X has {Xa.shape[0]} rows")
        uniq = gen.permutation(np.unique(g[inside]))
        n_test = min(max(2, int(round(test_fraction * uniq.size))), uniq.size - 1)
        is_test = np.isin(g[inside], uniq[:n_test])
        test, train = inside[is_test], inside[~is_test]
    fold: dict[str, np.ndarray] = {"train": train, "test": test}
    for k, shell in enumerate(ood_shells(Xa, box, edges), start=1):
        if shell.size >= 2:  # metrics such as R² need two points
            fold[f"ood_{k}"] = shell
    return [fold]


def _as_folds(folds: Any, X: np.ndarray, y: Any, groups: Any) -> list[Mapping[str, Any]]:
    if hasattr(folds, "split"):
        return cv_folds(folds, X, y, groups)
    if isinstance(folds, Mapping):
        folds = [folds]
    out = []
    for k, f in enumerate(folds):
        if isinstance(f, Mapping):
            if "train" not in f:
                raise InputError(f"fold {k} has no 'train' indices; folds are dicts {{'train': idx, 'test': idx, ...}}")
            out.append(f)
        elif isinstance(f, (tuple, list)) and len(f) == 2:
            out.append({"train": f[0], "test": f[1]})
        else:
            raise InputError(f"fold {k}: expected a dict of index arrays or a (train, test) pair, "
                             f"got {type(f).__name__}")
    if not out:
        raise InputError("no folds to evaluate")
    return out


def _index(idx: Any, n: int, where: str) -> np.ndarray:
    a = np.asarray(idx)
    if a.dtype == bool:
        if a.shape != (n,):
            raise InputError(f"{where}: a boolean mask must have {n} entries, got {a.shape}")
        return np.flatnonzero(a)
    if a.size and (a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= n):
        raise InputError(f"{where}: indices must be integers in [0, {n}), got {a.min()}..{a.max()}")
    return a.astype(np.int64).reshape(-1)


def evaluate(
    model: Any,
    X: Any,
    y: Any,
    folds: Any,
    *,
    groups: Any = None,
    seeds: Any = None,
    levels: Sequence[float] = COVERAGE_LEVELS,
    output_names: Sequence[str] | None = None,
    fit_params: Mapping[str, Any] | None = None,
    box: Any = None,
) -> pd.DataFrame:
    """Fit a clone of ``model`` per fold and score every named set of the fold.

    Parameters
    ----------
    model : regressor
        With ``predict(X, return_std=True)`` (a :class:`~stochhom.surrogates.GPR` or
        :class:`~stochhom.surrogates.PCE`).
    X, y : array_like
        ``(n, p)`` and ``(n,)`` or ``(n, q)``.
    folds : splitter, dict or list
        A scikit-learn splitter (its ``split(X, y, groups)`` gives ``train``/``test``), one
        fold dict, or a list of fold dicts / ``(train, test)`` pairs (see the module
        docstring).
    groups, seeds : array_like, optional
        Specimen and seed of each row: every evaluated set is checked against the
        training rows (:func:`~stochhom.validation.splits.check_leakage`).
    levels : sequence of float
        Coverage levels.
    fit_params : mapping, optional
        Extra ``fit`` arguments whose values are per-row arrays (sliced with ``train``,
        e.g. ``noise_variance``).
    box : array_like (p, 2), optional
        The box against which the ``distance`` column is measured; pass the box of
        :func:`ood_folds` so that distances match its shells. Default: each fold's
        training box.

    Returns
    -------
    pandas.DataFrame
        Columns ``fold, split, n, distance, metric, output, value``; ``distance`` is the
        mean normalized distance of the set to the fold's training box (0 inside).
    Warns
    -----
    OutOfDomainWarning
        Once per call, when any fold predicts points outside its training box: how many
        points of how many folds (the models' own warnings, one per fold and set, are held
        back).
    """
    Xa = np.asarray(X, dtype=float)
    ya = np.asarray(y, dtype=float)
    if Xa.ndim != 2 or ya.shape[0] != Xa.shape[0]:
        raise InputError(f"X must be (n, p) and y (n,) or (n, q) with the same n; got {Xa.shape} and {ya.shape}")
    n = Xa.shape[0]
    g = None if groups is None else np.asarray(groups)
    if g is not None and g.shape[0] != n:
        raise InputError(f"groups has {g.shape[0]} entries but X has {n} rows")
    q = 1 if ya.ndim == 1 else ya.shape[1]
    names = list(output_names) if output_names is not None else [str(j) for j in range(q)]
    if len(names) != q:
        raise InputError(f"output_names has {len(names)} names for {q} output(s)")
    rows = []
    tally = _Extrapolation()
    for k, fold in enumerate(_as_folds(folds, Xa, ya, g)):
        train = _index(fold["train"], n, f"fold {k} train")
        if train.size < 2:
            raise InputError(f"fold {k}: at least 2 training rows are needed, got {train.size}")
        params = {key: np.asarray(v)[train] for key, v in (fit_params or {}).items()}
        fitted = clone(model).fit(Xa[train], ya[train], **params)
        fold_box = training_box(Xa[train]) if box is None else np.asarray(box, dtype=float)
        sets = {"train": train, **{s: _index(v, n, f"fold {k} {s}") for s, v in fold.items() if s != "train"}}
        for split, idx in sets.items():
            if idx.size == 0:
                continue
            if split != "train" and (g is not None or seeds is not None):
                check_leakage(train, idx, groups=g, X=Xa if seeds is not None else None, seeds=seeds)
            with tally.fold(k):  # told once for all folds, below; the distance column measures it
                mean, std = fitted.predict(Xa[idx], return_std=True)
            metrics = probabilistic_metrics(ya[idx], mean, std, levels, multioutput="raw_values")
            dist = float(np.mean(extrapolation_distance(Xa[idx], box=fold_box)))
            for metric, value in metrics.items():
                values = np.atleast_1d(np.asarray(value, dtype=float))
                for j, v in enumerate(values):
                    rows.append((k, split, idx.size, dist, metric, names[j], float(v)))
    if (message := tally.summary("evaluate")) is not None:
        warnings.warn(message, OutOfDomainWarning, stacklevel=2)
    return pd.DataFrame(rows, columns=["fold", "split", "n", "distance", "metric", "output", "value"])


def degradation(
    table: pd.DataFrame,
    reference: str = "test",
    metrics: Iterable[str] = ("rmse", "nlpd", "coverage_0.95"),
) -> pd.DataFrame:
    """OOD degradation ratios of an :func:`evaluate` table (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per split × metric × output (averaged over folds): ``distance``,
        ``value``, ``reference_value`` and ``ratio`` (1 for the reference split itself).
    """
    need = {"fold", "split", "distance", "metric", "output", "value"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise InputError("expected the table returned by evaluate()")
    metrics = list(metrics)
    sub = table[table["metric"].isin(metrics)]
    if reference not in set(sub["split"]):
        raise InputError(f"reference split {reference!r} is not in the table; splits: {sorted(set(table['split']))}")
    mean = sub.groupby(["split", "metric", "output"], as_index=False)[["distance", "value"]].mean()
    ref = mean[mean["split"] == reference].set_index(["metric", "output"])["value"]
    out = mean[mean["split"] != "train"].copy()
    out["reference_value"] = [ref.get((m, o), np.nan) for m, o in zip(out["metric"], out["output"])]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        plain = (out["value"] / out["reference_value"]).to_numpy()
        density = np.exp((out["value"] - out["reference_value"]).to_numpy())
    out["ratio"] = np.where(out["metric"] == "nlpd", density, plain)
    return out.sort_values(["metric", "output", "distance"]).reset_index(drop=True)


def leakage_demonstration(
    model: Any,
    X: Any,
    y: Any,
    groups: Any,
    *,
    n_splits: int = 5,
    rng: np.random.Generator | int | None = 0,
    metrics: Iterable[str] = ("rmse", "nlpd", "coverage_0.95"),
) -> pd.DataFrame:
    """Naive K-fold against grouped K-fold on the same data: the optimism of the naive estimate.

    Naive K-fold puts samples of one specimen (windows, replicates sharing a specimen)
    on both sides, so the model is scored on near-copies of its training data. The
    grouped estimate is the honest one.

    Returns
    -------
    pandas.DataFrame
        One row per metric × output: ``naive``, ``grouped`` (means over folds),
        ``optimism`` = grouped − naive (for RMSE and NLPD, positive means the naive
        estimate is too good) and ``ratio`` = grouped / naive (for NLPD the ratio of
        predictive densities, exp(grouped − naive), as in :func:`degradation`).
    """
    Xa = np.asarray(X, dtype=float)
    g = np.asarray(groups)
    if g.shape[0] != Xa.shape[0]:
        raise InputError(f"groups has {g.shape[0]} entries but X has {Xa.shape[0]} rows")
    seed = int(np.random.default_rng(rng).integers(2**31 - 1))
    naive = evaluate(model, Xa, y, KFold(n_splits, shuffle=True, random_state=seed))
    grouped = evaluate(model, Xa, y, grouped_kfold(n_splits, rng=seed), groups=g)
    metrics = list(metrics)

    def summary(t: pd.DataFrame) -> pd.Series:
        t = t[(t["split"] == "test") & t["metric"].isin(metrics)]
        return t.groupby(["metric", "output"])["value"].mean()

    a, b = summary(naive), summary(grouped)
    out = pd.DataFrame({"naive": a, "grouped": b}).reset_index()
    out["optimism"] = out["grouped"] - out["naive"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        plain = (out["grouped"] / out["naive"]).to_numpy()
        density = np.exp((out["grouped"] - out["naive"]).to_numpy())
    out["ratio"] = np.where(out["metric"] == "nlpd", density, plain)
    return out


# ----------------------------------------------------------------------------- OOD evaluation with intervals


#: Metrics of :func:`~stochhom.validation.metrics.pooled_metrics` that :func:`ood_evaluation`
#: can report and bootstrap (plus ``coverage_<p>`` for any level ``p`` in (0, 1)).
OOD_METRICS = ("rmse", "mae", "r2", "max_error", "nlpd", "crps", "miscalibration_area", "sharpness",
               "mean_std_residual", "std_std_residual")


@dataclass(frozen=True)
class OODEvaluation:
    r"""The result of :func:`ood_evaluation`.

    Attributes
    ----------
    predictions : pandas.DataFrame
        One row per (fold, evaluated sample): ``fold``, ``split`` (``"reference"`` for the
        held-out in-box samples, ``"shell_1"``, ... for the reported shells), ``row`` (index
        into ``X``), ``group``, ``distance`` (normalized distance to the box), and the
        columns of :func:`~stochhom.validation.metrics.score_predictions` (``y, mean, std,
        lower, upper, z, nlpd, crps``).
    table : pandas.DataFrame
        One row per reported split, reference first: ``split``, ``distance_low``,
        ``distance_high`` (the shell is :math:`(\text{low}, \text{high}]`; 0, 0 for the
        reference), ``distance_mean`` (over its distinct samples), ``n_samples``,
        ``n_groups``, ``n_predictions``, and for each metric ``m``: ``m`` (pooled over the
        split's predictions), ``m_low``, ``m_high`` (bootstrap interval), ``m_ratio`` (to the
        reference; :math:`\exp(\Delta\mathrm{NLPD})` for NLPD) and ``m_ratio_low``,
        ``m_ratio_high``. Empty when ``ok`` is False.
    declined : list of str
        One line for everything not reported as asked: merged shells, samples beyond the
        edges, groups left out, or a reference too small.
    ok : bool
        False when the reference (the in-box samples) holds fewer than ``min_samples``
        samples: nothing is reported then.
    metrics : tuple of str
        The metrics of the table.
    confidence : float
        Level of the intervals.
    n_boot : int
        Bootstrap resamples behind each interval.
    """

    predictions: pd.DataFrame
    table: pd.DataFrame
    declined: list[str]
    ok: bool
    metrics: tuple[str, ...]
    confidence: float
    n_boot: int


def _fmt_edge(v: float) -> str:
    return "inf" if np.isinf(v) else f"{v:g}"


def _shell_label(lo: float, hi: float) -> str:
    return f"({_fmt_edge(lo)}, {_fmt_edge(hi)}]"


def _check_metrics(metrics: Iterable[str]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The metric names, and the coverage levels they need; InputError on an unknown name."""
    names = tuple(str(m) for m in metrics) if not isinstance(metrics, str) else (metrics,)
    if not names:
        raise InputError("metrics is empty: name at least one, e.g. ('rmse', 'nlpd', 'crps', 'coverage_0.95')")
    levels = []
    for m in names:
        if m.startswith("coverage_"):
            try:
                p = float(m[len("coverage_"):])
            except ValueError:
                p = float("nan")
            if not 0.0 < p < 1.0:
                raise InputError(f"unknown metric {m!r}: a coverage metric is 'coverage_<p>' with p in (0, 1), "
                                 "e.g. 'coverage_0.95'")
            if f"coverage_{p:g}" != m:
                raise InputError(f"write the coverage metric {m!r} as 'coverage_{p:g}' (the key of pooled_metrics)")
            levels.append(p)
        elif m not in OOD_METRICS:
            raise InputError(f"unknown metric {m!r}; known: {list(OOD_METRICS)} and 'coverage_<p>'")
    if len(set(names)) != len(names):
        raise InputError(f"metrics has duplicates: {list(names)}")
    return names, tuple(sorted(set(levels))) or (0.95,)


def _check_int(value: Any, name: str, low: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}; {fix}")
    return int(value)


def _group_stats(
    scores: pd.DataFrame, codes: np.ndarray, counts: np.ndarray, metrics: Sequence[str]
) -> dict[str, np.ndarray]:
    r"""Each metric of the predictions reweighted by group counts, vectorized over resamples.

    ``counts[b, g]`` is how many times group ``g`` is drawn in resample ``b`` (each of its
    predictions then counts that many times). With :math:`T_b = \sum_g c_{bg} S_g` the
    resampled sums of per-prediction quantities, every metric of
    :func:`~stochhom.validation.metrics.pooled_metrics` is a function of :math:`T_b`, except
    the maximum error (a maximum over the drawn groups) and the miscalibration area (the
    exact area of the weighted empirical CDF of :math:`2\Phi(|z|) - 1`). With all counts 1
    the values are those of ``pooled_metrics``.
    """
    y = scores["y"].to_numpy(float)
    e = y - scores["mean"].to_numpy(float)
    z = scores["z"].to_numpy(float)
    cols = {"n": np.ones_like(y), "e2": e**2, "ae": np.abs(e), "y": y, "y2": y**2,
            "nlpd": scores["nlpd"].to_numpy(float), "crps": scores["crps"].to_numpy(float),
            "z": z, "z2": z**2, "s2": scores["std"].to_numpy(float) ** 2}
    cov = {m: np.abs(z) <= st.norm.ppf(0.5 + 0.5 * float(m[len("coverage_"):]))
           for m in metrics if m.startswith("coverage_")}
    cols.update({m: c.astype(float) for m, c in cov.items()})
    names = list(cols)
    G = counts.shape[1]
    S = np.zeros((G, len(names)))
    np.add.at(S, codes, np.stack([cols[k] for k in names], axis=1))
    T = dict(zip(names, (counts @ S).T))
    n = T["n"]
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in metrics:
            if m == "rmse":
                out[m] = np.sqrt(T["e2"] / n)
            elif m == "mae":
                out[m] = T["ae"] / n
            elif m == "r2":
                sst = T["y2"] - T["y"] ** 2 / n
                out[m] = np.where(n > 1, 1.0 - T["e2"] / sst, np.nan)
            elif m in ("nlpd", "crps") or m.startswith("coverage_"):
                out[m] = T[m] / n
            elif m == "sharpness":
                out[m] = np.sqrt(T["s2"] / n)
            elif m == "mean_std_residual":
                out[m] = T["z"] / n
            elif m == "std_std_residual":
                out[m] = np.sqrt(np.maximum(T["z2"] / n - (T["z"] / n) ** 2, 0.0))
            elif m == "max_error":
                gmax = np.full(G, -np.inf)
                np.maximum.at(gmax, codes, np.abs(e))
                out[m] = np.max(np.where(counts > 0, gmax[None, :], -np.inf), axis=1)
            elif m == "miscalibration_area":
                v = 1.0 - 2.0 * st.norm.cdf(-np.abs(z))  # the central calibration variable
                order = np.argsort(v, kind="stable")
                w = counts[:, codes[order]].astype(float)  # (B, N) weight of each sorted prediction
                c = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w, axis=1)], axis=1) / n[:, None]
                edges = np.concatenate([[0.0], v[order], [1.0]])
                da, db = edges[None, :-1] - c, edges[None, 1:] - c
                out[m] = 0.5 * np.sum(np.sign(db) * db**2 - np.sign(da) * da**2, axis=1)
    return out


def _percentile(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    a = 0.5 * (1.0 - confidence)
    ok = draws[~np.isnan(draws)]
    if ok.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(ok, [a, 1.0 - a])
    return float(lo), float(hi)


def _ratio(metric: str, shell: Any, ref: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.exp(shell - ref) if metric == "nlpd" else shell / ref


def ood_evaluation(
    model: Any,
    X: Any,
    y: Any,
    box: Any,
    edges: Sequence[float] = (0.0, 0.1, 0.25, 0.5, np.inf),
    *,
    groups: Any = None,
    n_splits: int = 5,
    min_samples: int = 20,
    metrics: Iterable[str] = ("rmse", "nlpd", "crps", "coverage_0.95"),
    n_boot: int = 1000,
    confidence: float = 0.95,
    fit_params: Mapping[str, Any] | None = None,
    rng: np.random.Generator | int | None = None,
    space: Callable[[np.ndarray], np.ndarray] | None = None,
) -> OODEvaluation:
    r"""Out-of-distribution evaluation: metrics per distance shell, each with its sample size,
    a bootstrap interval, and its ratio to an in-distribution reference (with an interval).

    **Folds.** The samples inside ``box`` (normalized distance
    :math:`d_B = 0`, :func:`~stochhom.validation.splits.extrapolation_distance`) are split
    into ``n_splits`` grouped folds (:func:`~stochhom.validation.splits.grouped_kfold`, whole
    groups together). Fold :math:`k` fits a clone of ``model`` on the other in-box folds,
    predicts its own held-out in-box fold and every shell sample. So every in-box sample is
    predicted exactly once, by a model that did not see its group: the **reference** rests on
    all in-box samples. Every shell sample is predicted ``n_splits`` times, by models trained
    on the same amount of data as those that predicted the reference (a fraction
    :math:`1 - 1/K` of the in-box samples), so that reference and shells differ only in
    the distance to the training data.

    **Shells.** Shell :math:`j` holds the samples with :math:`e_j < d_B \le e_{j+1}`
    (``edges``). Shells with no samples are skipped. Going outwards, adjacent shells are
    merged until each holds at least ``min_samples`` distinct samples; a last remainder
    with fewer is merged into the previous shell. Each merge is reported in ``declined``.

    **Metrics.** Each metric of a split is *pooled* over all its predictions
    (:func:`~stochhom.validation.metrics.pooled_metrics` of the rows of
    :func:`~stochhom.validation.metrics.score_predictions`), e.g. for a shell :math:`S`
    with predictions :math:`(\mu_{ik}, \sigma_{ik})` of sample :math:`i` by fold :math:`k`,

    .. math::

        \mathrm{RMSE}_S = \Big(\frac{1}{K|S|}\sum_{i \in S}\sum_{k=1}^{K}
        (y_i - \mu_{ik})^2\Big)^{1/2}, \qquad
        \hat c_S(p) = \frac{1}{K|S|}\sum_{i, k} 1\{|z_{ik}| \le \Phi^{-1}(\tfrac{1+p}{2})\}.

    The **ratio** to the reference is :math:`m_S / m_{\mathrm{ref}}`, and for the NLPD (which
    may be negative) the ratio of the geometric-mean predictive densities,
    :math:`\exp(\mathrm{NLPD}_S - \mathrm{NLPD}_{\mathrm{ref}})`, as in :func:`degradation`.

    **Intervals.** Percentile bootstrap over groups: a resample draws the :math:`G` groups of
    the split with replacement (:math:`G` draws), with all their predictions (every fold's),
    and recomputes the pooled metric; ``n_boot`` resamples give the interval between the
    :math:`(1 - \gamma)/2` and :math:`(1 + \gamma)/2` quantiles, :math:`\gamma` = ``confidence``. A ratio's interval
    pairs the :math:`b`-th resample of the shell with an independent :math:`b`-th resample
    of the reference. The reference's own ratio is 1, without an interval. Intervals of a
    split with few groups are short on information, whatever they say: ``n_groups`` is the
    number of independent units behind them.

    Parameters
    ----------
    model : regressor
        With ``predict(X, return_std=True)`` or its own ``predictive`` (a
        :class:`~stochhom.surrogates.GPR`, :class:`~stochhom.surrogates.PCE`, a bounded
        surrogate; see :func:`~stochhom.surrogates.predictive.predictive`). Cloned per fold.
    X : array_like, shape (n, p)
        Inputs (parameters), numeric.
    y : array_like, shape (n,)
        One output.
    box : array_like (p, 2) or dict
        The training box, ``(low, high)`` per column of ``X``.
    edges : sequence of float
        Shell edges in box widths: at least two, strictly increasing, from ``>= 0``; the last
        may be ``inf``. Samples beyond a finite last edge, or in :math:`(0, e_0]`, are not
        evaluated (said in ``declined``).
    groups : array_like, shape (n,), optional
        Group (specimen) of each sample; default: each sample its own group. A group with
        samples both inside and outside the box would be on both sides of the evaluation:
        its in-box samples are left out (said in ``declined``).
    n_splits : int
        Number of grouped folds of the in-box samples (>= 2).
    min_samples : int
        Fewest distinct samples a reported split may rest on (>= 2).
    metrics : iterable of str
        Keys of :func:`~stochhom.validation.metrics.pooled_metrics`: ``rmse``, ``mae``,
        ``r2``, ``max_error``, ``nlpd``, ``crps``, ``coverage_<p>``,
        ``miscalibration_area``, ``sharpness``, ``mean_std_residual``, ``std_std_residual``.
    n_boot : int
        Bootstrap resamples per split (>= 1).
    confidence : float
        Level of the intervals, in (0, 1).
    fit_params : mapping, optional
        Extra ``fit`` arguments whose values are per-row arrays (sliced to each fold's
        training rows, e.g. ``noise_variance``).
    rng : Generator, int or None
        Seeds the folds and the bootstrap.
    space : callable, optional
        A map of the rows of ``X`` into the space where ``box`` and the distances are
        defined, e.g. the design distribution's CDF (``InputDistribution.cdf``), so that a
        log-uniform parameter is measured by its probability mass rather than its value;
        the model is still fitted on ``X``. Default: ``X`` itself.

    Returns
    -------
    OODEvaluation
        ``predictions``, ``table``, ``declined``, ``ok`` (see :class:`OODEvaluation`).

    Raises
    ------
    InputError
        On mismatched shapes, a bad box or bad edges, ``min_samples < 2``,
        ``n_splits < 2``, or fewer in-box groups than ``n_splits``. Too few in-box samples
        for ``min_samples`` is no error: the result has ``ok=False`` and says what to change.

    Notes
    -----
    Extrapolation warnings (:class:`~stochhom.errors.OutOfDomainWarning`) are silenced
    inside: extrapolating is what the shells measure. Their count (points of how many
    folds) is logged once, at DEBUG, on the logger ``stochhom.validation.evaluate``.

    Examples
    --------
    >>> import numpy as np
    >>> from stochhom.surrogates import PCE
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1.0, 2.0, size=(300, 2))
    >>> y = X[:, 0] ** 2 + X[:, 1] + 0.05 * rng.standard_normal(300)
    >>> res = ood_evaluation(PCE(degree=2), X, y, box=[[0, 1], [0, 1]],
    ...                      edges=(0, 0.25, 0.5, np.inf), n_boot=200, rng=0)
    >>> res.ok, list(res.table["split"])
    (True, ['reference', 'shell_1', 'shell_2', 'shell_3'])
    >>> bool((res.table["n_samples"] >= 20).all())
    True
    """
    from ..surrogates.predictive import predictive  # lazily: the surrogates package is heavy

    names, levels = _check_metrics(metrics)
    n_splits = _check_int(n_splits, "n_splits", 2, "a grouped K-fold needs at least 2 folds")
    min_samples = _check_int(min_samples, "min_samples", 2, "a pooled metric such as R² needs 2 samples")
    n_boot = _check_int(n_boot, "n_boot", 1, "use e.g. 1000 bootstrap resamples")
    if not 0.0 < float(confidence) < 1.0:
        raise InputError(f"confidence must lie in (0, 1), got {confidence!r}; e.g. 0.95")
    confidence = float(confidence)
    try:
        Xa = np.asarray(X, dtype=float)
        ya = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise InputError("X and y must be numeric arrays") from None
    if ya.ndim == 2 and ya.shape[1] == 1:
        ya = ya[:, 0]
    if Xa.ndim != 2 or ya.ndim != 1 or ya.shape[0] != Xa.shape[0]:
        raise InputError(f"X must be (n, p) and y (n,) with the same n; got {Xa.shape} and {ya.shape} "
                         "(evaluate one output at a time)")
    if not np.all(np.isfinite(ya)):
        raise InputError(f"y has {int(np.sum(~np.isfinite(ya)))} NaN/inf values; drop failed samples first")
    n = Xa.shape[0]
    g = np.arange(n) if groups is None else np.asarray(groups)
    if g.shape != (n,):
        raise InputError(f"groups has shape {g.shape} but X has {n} rows; give one group per sample")
    e = np.asarray(list(edges), dtype=float)
    if e.ndim != 1 or e.size < 2 or np.isnan(e).any() or e[0] < 0 or np.any(np.diff(e) <= 0):
        raise InputError(f"edges must be at least two strictly increasing distances from >= 0 (the last may be "
                         f"inf), e.g. (0, 0.1, 0.25, 0.5, inf); got {list(edges)!r}")
    Xd = Xa if space is None else np.asarray(space(Xa), dtype=float)
    if Xd.shape[0] != n:
        raise InputError(f"space(X) has {Xd.shape[0]} rows for {n} samples; it must map each row")
    d = extrapolation_distance(Xd, box=box)  # InputError on a bad box or one of the wrong shape
    _, gcode = np.unique(g, return_inverse=True)
    gcode = gcode.reshape(-1)

    declined: list[str] = []
    outside_groups = np.unique(gcode[d > 0])
    straddle = (d == 0) & np.isin(gcode, outside_groups)
    if straddle.any():
        ng = np.unique(gcode[straddle]).size
        declined.append(f"{ng} group(s) have samples inside and outside the box: their {int(straddle.sum())} "
                        "in-box sample(s) are left out of training and of the reference, so that no group is "
                        "on both sides")
    inside = np.flatnonzero((d == 0) & ~straddle)

    metric_cols = [c for m in names for c in (m, f"{m}_low", f"{m}_high", f"{m}_ratio", f"{m}_ratio_low",
                                              f"{m}_ratio_high")]
    table_cols = ["split", "distance_low", "distance_high", "distance_mean", "n_samples", "n_groups",
                  "n_predictions", *metric_cols]
    pred_cols = ["fold", "split", "row", "group", "distance", *SCORE_COLUMNS]

    def result(pred: pd.DataFrame, rows: list[dict[str, Any]], ok: bool) -> OODEvaluation:
        return OODEvaluation(pred, pd.DataFrame(rows, columns=table_cols), declined, ok, names, confidence, n_boot)

    if inside.size < min_samples:
        declined.insert(0, f"the training box holds {inside.size} sample(s), fewer than min_samples={min_samples}: "
                        "no in-distribution reference, so nothing is reported. In a study, raise "
                        "[validation].ood_fraction (a larger box) or add points to the sweep")
        return result(pd.DataFrame(columns=pred_cols), [], False)
    n_in_groups = np.unique(gcode[inside]).size
    if n_in_groups < n_splits:
        raise InputError(f"the training box holds {n_in_groups} group(s), fewer than n_splits={n_splits}: lower "
                         "n_splits, or add points (specimens) inside the box")

    # shells: bin, skip empty ones, merge outwards until each holds min_samples
    if e[0] > 0 and np.any((d > 0) & (d <= e[0])):
        declined.append(f"{int(np.sum((d > 0) & (d <= e[0])))} sample(s) lie in (0, {_fmt_edge(e[0])}], before the "
                        "first edge: not evaluated (start the edges at 0)")
    if np.any(d > e[-1]):
        declined.append(f"{int(np.sum(d > e[-1]))} sample(s) lie beyond the last edge {_fmt_edge(e[-1])}: not "
                        "evaluated (end the edges with inf)")
    bins = [(lo, hi, np.flatnonzero((d > lo) & (d <= hi))) for lo, hi in itertools.pairwise(e)]
    bins = [b for b in bins if b[2].size]
    merged: list[tuple[list[tuple[float, float, np.ndarray]], list[tuple[float, float, np.ndarray]]]] = []
    current: list[tuple[float, float, np.ndarray]] = []
    for b in bins:
        current.append(b)
        if sum(c[2].size for c in current) >= min_samples:
            merged.append((current, []))
            current = []
    hint = "for finer shells, add points outside the box or use fewer, wider edges ([validation].ood_edges)"
    for core, _ in merged:
        if len(core) > 1:
            sizes = ", ".join(str(c[2].size) for c in core)
            into = _shell_label(core[0][0], core[-1][1])
            declined.append(f"shells {', '.join(_shell_label(c[0], c[1]) for c in core)} hold {sizes} samples; a "
                            f"shell needs min_samples={min_samples}: merged into {into} "
                            f"({sum(c[2].size for c in core)} samples); {hint}")
    if current:
        rest = sum(c[2].size for c in current)
        if merged:
            core, tail = merged[-1]
            tail.extend(current)
            lo_all = core[0][0]
            declined.append(f"shells beyond distance {_fmt_edge(current[0][0])} hold {rest} sample(s) "
                            f"(< min_samples={min_samples}): merged into the previous shell, now "
                            f"{_shell_label(lo_all, current[-1][1])} ({sum(c[2].size for c in core) + rest} "
                            f"samples); {hint}")
        elif bins:
            declined.append(f"all {rest} sample(s) outside the box together are fewer than "
                            f"min_samples={min_samples}: no shell is reported; add points outside the box (in a "
                            "study: lower [validation].ood_fraction, or more points)")
    elif not bins and not np.any(d > 0):
        declined.append("no sample lies outside the box: no shell to report")
    shells = []
    for core, tail in merged:
        parts = core + tail
        shells.append((parts[0][0], parts[-1][1], np.sort(np.concatenate([c[2] for c in parts]))))

    # folds: grouped K-fold of the in-box samples; one fit per fold
    gen = np.random.default_rng(rng)
    seed = int(gen.integers(2**31 - 1))
    splitter = grouped_kfold(n_splits, rng=seed)
    shell_rows = np.concatenate([s[2] for s in shells]) if shells else np.zeros(0, dtype=np.int64)
    shell_split = np.concatenate([np.full(s[2].size, f"shell_{j}", dtype=object)
                                  for j, s in enumerate(shells, start=1)]) if shells else np.zeros(0, dtype=object)
    frames = []
    tally = _Extrapolation()
    for k, (tr, te) in enumerate(splitter.split(Xa[inside], ya[inside], gcode[inside])):
        train, held = inside[tr], inside[te]
        params = {key: np.asarray(v)[train] for key, v in (fit_params or {}).items()}
        rows = np.concatenate([held, shell_rows])
        with tally.fold(k):  # extrapolation is what the shells measure: logged once, below
            fitted = clone(model).fit(Xa[train], ya[train], **params)
            law = predictive(fitted, Xa[rows])
        scores = score_predictions(ya[rows], law)
        head = pd.DataFrame({"fold": k, "split": np.concatenate([np.full(held.size, "reference", dtype=object),
                                                                  shell_split]),
                             "row": rows, "group": g[rows], "distance": d[rows]})
        frames.append(pd.concat([head, scores.reset_index(drop=True)], axis=1))
    if (message := tally.summary("ood_evaluation")) is not None:
        _logger.debug(message)
    pred = pd.concat(frames, ignore_index=True)
    order = ["reference", *[f"shell_{j}" for j in range(1, len(shells) + 1)]]
    pred["split"] = pd.Categorical(pred["split"], categories=order)
    pred = pred.sort_values(["split", "fold", "row"], kind="stable").reset_index(drop=True)
    pred["split"] = pred["split"].astype(str)

    # pooled metrics and group-bootstrap intervals
    boot = np.random.default_rng(gen.integers(2**63 - 1))
    stats: dict[str, dict[str, np.ndarray]] = {}
    points: dict[str, dict[str, float]] = {}
    rows_out: list[dict[str, Any]] = []
    ranges = [(0.0, 0.0)] + [(lo, hi) for lo, hi, _ in shells]
    for label, (lo, hi) in zip(order, ranges):
        sub = pred[pred["split"] == label]
        codes = np.unique(gcode[sub["row"].to_numpy()], return_inverse=True)[1].reshape(-1)
        G = int(codes.max()) + 1
        counts = boot.multinomial(G, np.full(G, 1.0 / G), size=n_boot)
        stats[label] = _group_stats(sub, codes, counts, names)
        pooled = pooled_metrics(sub, levels=levels)
        points[label] = {m: float(pooled[m]) for m in names}
        uniq = np.unique(sub["row"].to_numpy())
        row: dict[str, Any] = {"split": label, "distance_low": float(lo), "distance_high": float(hi),
                               "distance_mean": float(d[uniq].mean()), "n_samples": int(uniq.size),
                               "n_groups": G, "n_predictions": int(len(sub))}
        for m in names:
            v = points[label][m]
            row[m] = v
            row[f"{m}_low"], row[f"{m}_high"] = _percentile(stats[label][m], confidence)
            if label == "reference":
                row[f"{m}_ratio"], row[f"{m}_ratio_low"], row[f"{m}_ratio_high"] = 1.0, np.nan, np.nan
            else:
                row[f"{m}_ratio"] = float(_ratio(m, v, points["reference"][m]))
                draws = _ratio(m, stats[label][m], stats["reference"][m])
                row[f"{m}_ratio_low"], row[f"{m}_ratio_high"] = _percentile(draws, confidence)
        rows_out.append(row)
    return result(pred[pred_cols], rows_out, True)
