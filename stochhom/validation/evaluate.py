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
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold

from ..errors import InputError, OutOfDomainWarning
from .metrics import COVERAGE_LEVELS, probabilistic_metrics
from .splits import check_leakage, extrapolation_distance, grouped_kfold, ood_shells, training_box

__all__ = ["cv_folds", "ood_folds", "evaluate", "degradation", "leakage_demonstration"]


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
            with warnings.catch_warnings():  # extrapolation is what OOD sets measure (see distance)
                warnings.simplefilter("ignore", OutOfDomainWarning)
                mean, std = fitted.predict(Xa[idx], return_std=True)
            metrics = probabilistic_metrics(ya[idx], mean, std, levels, multioutput="raw_values")
            dist = float(np.mean(extrapolation_distance(Xa[idx], box=fold_box)))
            for metric, value in metrics.items():
                values = np.atleast_1d(np.asarray(value, dtype=float))
                for j, v in enumerate(values):
                    rows.append((k, split, idx.size, dist, metric, names[j], float(v)))
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
