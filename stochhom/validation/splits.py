r"""Leakage-safe splits of a study's samples: grouped train/validation/test, grouped
cross-validation, leakage checks and out-of-distribution (OOD) splits.

A surrogate is evaluated honestly only on samples that are *independent* of those it
was trained on. Two kinds of dependence leak information across a split:

* **specimens** (groups): the SVE windows cut from one specimen share its
  microstructure; their apparent properties are correlated, so a test window whose
  sibling sat in the training set is predicted from the sibling. Every split here is
  therefore by group, the ``specimen`` coordinate by default (:func:`groups_from`);
* **identical samples**: the same seed at the same parameters is the same SVE (e.g. a
  sample generated twice in a resumed sweep), a duplicate on both sides.

:func:`check_leakage` raises :class:`~stochhom.errors.LeakageError` on either,
:func:`warn_if_windows` warns (:class:`~stochhom.errors.LeakageWarning`) when windows
are split without groups.

Cross-validation builds on scikit-learn's splitters (``GroupKFold``,
``StratifiedGroupKFold``, ``LeaveOneGroupOut``), wrapped in :class:`GroupedSplitter`,
which validates the groups and delegates, so that
``cross_validate(est, X, y, cv=grouped_kfold(5), groups=g)`` works as with a native
splitter.

Out-of-distribution evaluation holds out a region of parameter space: a threshold on
one parameter (:func:`ood_threshold_split`) or the complement of a training box
:math:`B = \prod_j [l_j, u_j]` (:func:`ood_box_split`). Each point gets an
*extrapolation distance* (:func:`extrapolation_distance`), the normalized distance
to the box

.. math::

    d_B(x) = \Big( \sum_j \Big( \frac{\max(0,\ l_j - x_j,\ x_j - u_j)}{u_j - l_j} \Big)^2 \Big)^{1/2},

zero inside the box, or a Mahalanobis distance to the training cloud; and
:func:`ood_shells` bins the outside points into shells of increasing :math:`d_B`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.linalg import solve_triangular
from sklearn.model_selection import BaseCrossValidator, GroupKFold, LeaveOneGroupOut, StratifiedGroupKFold

from ..errors import InputError, LeakageError, LeakageWarning
from ..microstructure.ensemble import as_rng

__all__ = [
    "GroupedSplitter",
    "check_leakage",
    "check_split_groups",
    "extrapolation_distance",
    "grouped_kfold",
    "groups_from",
    "leave_one_group_out",
    "ood_box_split",
    "ood_shells",
    "ood_threshold_split",
    "quantile_bins",
    "stratified_grouped_kfold",
    "train_val_test_split",
    "training_box",
    "warn_if_windows",
]

#: Groups or samples named in a leakage message before "... and k more".
_SHOW = 5


# ----------------------------------------------------------------------------- helpers


def _n_samples(n_or_X: Any) -> int:
    """Number of samples of an int, an array (rows), a DataFrame or a Dataset (``sample``)."""
    if isinstance(n_or_X, (int, np.integer)) and not isinstance(n_or_X, bool):
        if n_or_X < 1:
            raise InputError(f"the number of samples must be positive, got {n_or_X}")
        return int(n_or_X)
    if isinstance(n_or_X, xr.Dataset):
        if "sample" not in n_or_X.dims:
            raise InputError("expected a Dataset with a 'sample' dimension (an ensemble or apparent properties)")
        return int(n_or_X.sizes["sample"])
    shape = getattr(n_or_X, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    try:
        return len(n_or_X)
    except TypeError:
        raise InputError(f"expected a number of samples, an array or a Dataset, got {type(n_or_X).__name__}") from None


def _as_groups(groups: Any, n: int) -> np.ndarray:
    """Groups as a 1-D array of length ``n``; InputError names both lengths otherwise."""
    g = np.asarray(groups)
    if g.ndim != 1:
        raise InputError(f"groups must be 1-D (one group label per sample), got shape {g.shape}")
    if g.shape[0] != n:
        raise InputError(f"groups has length {g.shape[0]} but there are {n} samples; pass one group "
                         "(specimen) per sample, e.g. groups=props['specimen'].values")
    if g.dtype.kind == "f" and not np.isfinite(g).all():
        raise InputError(f"groups contains {int((~np.isfinite(g)).sum())} NaN/inf labels; every sample needs a group")
    return g


def _seed_for_sklearn(rng: np.random.Generator | np.random.SeedSequence | int | None) -> int | None:
    """A ``random_state`` for scikit-learn: None and ints pass through, a Generator or
    SeedSequence gives one 32-bit int (drawn once, when the splitter is made)."""
    if rng is None:
        return None
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise InputError(f"rng seed must be a non-negative integer, got {rng}")
        return int(rng)
    return int(as_rng(rng).generate_state(1)[0])


def _as_indices(idx: Any, n: int | None, side: str) -> np.ndarray:
    """Integer indices from an index array or a boolean mask."""
    a = np.asarray(idx)
    if a.dtype == bool:
        if n is not None and a.shape != (n,):
            raise InputError(f"{side} mask has shape {a.shape}, expected ({n},)")
        return np.flatnonzero(a)
    if a.size == 0:
        return np.zeros(0, dtype=np.intp)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise InputError(f"{side} indices must be a 1-D integer array or boolean mask, got {a.dtype} {a.shape}")
    if a.min() < 0 or (n is not None and a.max() >= n):
        raise InputError(f"{side} indices must lie in [0, {n}), got range [{a.min()}, {a.max()}]")
    return a.astype(np.intp)


def _fmt(v: Any) -> str:
    return repr(v.item() if isinstance(v, np.generic) else v)


# ----------------------------------------------------------------------------- groups and windows


def groups_from(props: xr.Dataset, name: str = "specimen") -> np.ndarray:
    """The group of each sample of a Dataset: its ``specimen`` coordinate by default.

    Parameters
    ----------
    props : xarray.Dataset
        An ensemble, or apparent properties, along ``sample``.
    name : str
        Per-sample coordinate to group by (``"specimen"``; ``"parent_sample"`` for
        windows of a dataset without specimens).

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    if not isinstance(props, xr.Dataset) or "sample" not in props.dims:
        raise InputError("groups_from expects an xarray.Dataset with a 'sample' dimension")
    if name not in props.variables or props[name].dims != ("sample",):
        known = sorted(str(c) for c, da in props.variables.items() if da.dims == ("sample",))
        raise InputError(f"the dataset has no per-sample {name!r} coordinate to group by; per-sample names: "
                         f"{known}. Pass groups=... explicitly (one group per sample).")
    return np.asarray(props[name].values)


def _sources(props_or_groups: Any) -> np.ndarray | None:
    """The finest independent unit of each sample (specimen, else parent sample), or None."""
    if isinstance(props_or_groups, xr.Dataset):
        for name in ("specimen", "parent_sample"):
            if name in props_or_groups.variables and props_or_groups[name].dims == ("sample",):
                return np.asarray(props_or_groups[name].values)
        return None
    if props_or_groups is None:
        return None
    return np.asarray(props_or_groups).reshape(-1)


def warn_if_windows(props_or_groups: Any, groups: Any = None, *, stacklevel: int = 2) -> bool:
    """Warn when correlated samples (windows of one specimen) are split without groups.

    Parameters
    ----------
    props_or_groups : xarray.Dataset or array-like
        A Dataset (its ``specimen`` coordinate, else ``parent_sample``, says which
        samples come from one specimen; a ``parent_sample`` coordinate marks SVE
        windows), or directly the specimen (or parent sample) of each sample.
    groups : array-like, optional
        The groups the caller splits with. None means "no groups" (each sample alone).
    stacklevel : int
        Passed to :func:`warnings.warn`.

    Returns
    -------
    bool
        True when a :class:`~stochhom.errors.LeakageWarning` was issued: ``groups`` is
        None while some specimen holds several samples (windows), or ``groups`` puts
        the samples of one specimen in different groups.
    """
    src = _sources(props_or_groups)
    if src is None:
        return False
    n = src.shape[0]
    windows = isinstance(props_or_groups, xr.Dataset) and "parent_sample" in props_or_groups.variables
    uniq, inv, counts = np.unique(src, return_inverse=True, return_counts=True)
    if groups is None:
        if not (windows or np.any(counts > 1)):
            return False
        warnings.warn(
            f"{n} samples come from {uniq.size} specimens (SVE windows): windows of one specimen are correlated, so "
            "a split without groups puts siblings on both sides and the test score is optimistic. Pass "
            "groups=specimen (stochhom.validation.groups_from(props)).",
            LeakageWarning, stacklevel=stacklevel + 1)
        return True
    g = _as_groups(groups, n)
    _, ginv = np.unique(g, return_inverse=True)
    pairs = np.unique(np.stack([inv.reshape(-1), ginv.reshape(-1)], axis=1), axis=0)
    per_specimen = np.bincount(pairs[:, 0], minlength=uniq.size)
    split = uniq[per_specimen > 1]
    if split.size == 0:
        return False
    warnings.warn(
        f"the groups divide {split.size} specimens (e.g. {', '.join(_fmt(s) for s in split[:_SHOW])}) across "
        "several groups: windows of one specimen are correlated and may land on both sides of a split. Group by "
        "specimen (stochhom.validation.groups_from(props)) or by something coarser.",
        LeakageWarning, stacklevel=stacklevel + 1)
    return True


# ----------------------------------------------------------------------------- train / validation / test


def train_val_test_split(
    n_or_X: Any,
    groups: Any = None,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    rng: np.random.Generator | np.random.SeedSequence | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Split samples into train, validation and test sets by group.

    The distinct groups are put in a seeded random order; the train set takes the
    first :math:`k_1` groups and the validation set the next :math:`k_2 - k_1`, with
    the cut points chosen so that the cumulative sample counts are closest to
    :math:`f_\mathrm{train}\,n` and :math:`(f_\mathrm{train} + f_\mathrm{val})\,n`.
    Each side's size therefore misses its fraction by at most the largest group
    size (group granularity), and every group lies entirely on one side.

    Parameters
    ----------
    n_or_X : int, array-like or xarray.Dataset
        Number of samples, or anything with one row (sample) per sample.
    groups : array-like, optional
        Group of each sample. None: the ``specimen`` coordinate when ``n_or_X`` is a
        Dataset, else each sample is its own group.
    fractions : (float, float, float)
        Train, validation and test fractions: non-negative, summing to 1 (within
        1e-6); train and test positive, validation may be 0 (empty validation set).
    rng : Generator, SeedSequence, int or None
        Seed of the group permutation; a fixed value gives the same split.

    Returns
    -------
    train_idx, val_idx, test_idx : numpy.ndarray of int
        Sorted, disjoint, and together covering ``range(n)``.
    """
    n = _n_samples(n_or_X)
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or not np.isfinite(f).all() or np.any(f < 0):
        raise InputError(f"fractions must be three non-negative numbers (train, val, test), got {fractions!r}")
    if abs(f.sum() - 1.0) > 1e-6:
        raise InputError(f"fractions must sum to 1, got {fractions!r} (sum {f.sum():.6g})")
    if f[0] == 0 or f[2] == 0:
        raise InputError(f"the train and test fractions must be positive, got {fractions!r}")
    if groups is None and isinstance(n_or_X, xr.Dataset):
        src = _sources(n_or_X)
        groups = np.arange(n) if src is None else src
    elif isinstance(n_or_X, xr.Dataset):
        warn_if_windows(n_or_X, groups)
    g = np.arange(n) if groups is None else _as_groups(groups, n)
    uniq, inv = np.unique(g, return_inverse=True)
    inv = inv.reshape(-1)
    n_parts = int(np.count_nonzero(f))
    if uniq.size < n_parts:
        raise InputError(f"{n_parts} non-empty sides need at least {n_parts} groups, but groups has only "
                         f"{uniq.size} distinct values; use more specimens or fewer sides (fractions val=0)")
    order = np.random.default_rng(as_rng(rng)).permutation(uniq.size)
    sizes = np.bincount(inv, minlength=uniq.size)[order]
    cum = np.concatenate([[0], np.cumsum(sizes)])  # cum[k]: samples in the first k groups

    def cut(target: float, lo: int, hi: int) -> int:
        k = np.arange(lo, hi + 1)
        return int(k[np.argmin(np.abs(cum[k] - target))])

    G = uniq.size
    k1 = cut(f[0] * n, 1, G - (n_parts - 1))
    k2 = cut((f[0] + f[1]) * n, k1 + 1, G - 1) if f[1] > 0 else k1
    side = np.empty(G, dtype=np.int8)
    side[order[:k1]], side[order[k1:k2]], side[order[k2:]] = 0, 1, 2
    s = side[inv]
    return tuple(np.flatnonzero(s == k) for k in range(3))  # type: ignore[return-value]


# ----------------------------------------------------------------------------- grouped cross-validation


def quantile_bins(y: Any, n_bins: int = 5) -> np.ndarray:
    r"""Labels of equal-count bins of a continuous target, for stratification.

    The edges are the empirical quantiles :math:`q_{k/B}` of ``y``, :math:`k = 1,
    \dots, B-1`; sample :math:`i` gets the number of edges :math:`\le y_i`, and the
    labels are renumbered :math:`0, 1, \dots` over the bins that are not empty (ties
    can merge bins). A 2-D ``y`` is binned on its first column.

    Parameters
    ----------
    y : array-like, shape (n,) or (n, q)
    n_bins : int
        :math:`B \ge 2`.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise InputError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    v = np.asarray(y, dtype=float)
    if v.ndim == 2:
        v = v[:, 0]
    if v.ndim != 1 or v.size == 0:
        raise InputError(f"y must be 1-D or 2-D with samples along rows, got shape {np.shape(y)}")
    if not np.isfinite(v).all():
        raise InputError(f"y has {int((~np.isfinite(v)).sum())} NaN/inf values; cannot bin it for stratification")
    edges = np.quantile(v, np.arange(1, n_bins) / n_bins)
    raw = np.searchsorted(edges, v, side="right")
    return np.unique(raw, return_inverse=True)[1].reshape(-1)


class GroupedSplitter(BaseCrossValidator):
    """A scikit-learn group splitter that validates its groups before delegating.

    ``split(X, y, groups)`` and ``get_n_splits`` behave as those of ``splitter``;
    before splitting, the groups are checked: one per sample (the message names both
    lengths), and at least as many distinct groups as folds (the message names both
    numbers). With a Dataset as ``X`` and no groups, the ``specimen`` coordinate is
    used. ``groups`` is requested by scikit-learn's metadata routing, so
    ``cross_validate(est, X, y, cv=GroupedSplitter(...), groups=g)`` routes them.

    Parameters
    ----------
    splitter : scikit-learn group splitter
        ``GroupKFold``, ``StratifiedGroupKFold``, ``LeaveOneGroupOut``, ...
    n_bins : int or None
        For a stratified splitter: a float ``y`` is replaced by its
        :func:`quantile_bins` labels with ``n_bins`` bins before delegating (integer,
        boolean or string ``y`` are class labels and pass unchanged). None: ``y``
        passes unchanged.
    """

    __metadata_request__split = {"groups": True}  # noqa: RUF012 (scikit-learn's metadata-routing convention)

    def __init__(self, splitter: Any, n_bins: int | None = None) -> None:
        self.splitter = splitter
        self.n_bins = n_bins

    def _min_groups(self) -> int:
        n_splits = getattr(self.splitter, "n_splits", None)
        return 2 if n_splits is None else int(n_splits)

    def _groups(self, X: Any, groups: Any) -> tuple[int, np.ndarray]:
        n = _n_samples(X)
        if groups is None:
            if isinstance(X, xr.Dataset):
                groups = groups_from(X)
            else:
                raise InputError(f"{type(self.splitter).__name__} splits by group: pass groups (one per sample, "
                                 "e.g. groups=props['specimen'].values)")
        elif isinstance(X, xr.Dataset):
            warn_if_windows(X, groups, stacklevel=3)
        g = _as_groups(groups, n)
        n_groups = np.unique(g).size
        need = self._min_groups()
        if n_groups < need:
            if hasattr(self.splitter, "n_splits"):
                raise InputError(f"n_splits={need} folds need at least {need} groups, but groups has only {n_groups} "
                                 f"distinct values (over {n} samples); use n_splits <= {n_groups}, or more specimens")
            raise InputError(f"{type(self.splitter).__name__} needs at least 2 groups, but groups has only "
                             f"{n_groups} distinct value (over {n} samples)")
        return n, g

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` per fold, after validating ``groups``."""
        n, g = self._groups(X, groups)
        Xs = np.zeros((n, 1)) if isinstance(X, xr.Dataset) else X
        if self.n_bins is not None:
            if y is None:
                raise InputError(f"{type(self.splitter).__name__} stratifies on y: pass y")
            ya = np.asarray(y)
            if ya.shape[0] != n:
                raise InputError(f"y has {ya.shape[0]} rows but there are {n} samples")
            y = quantile_bins(ya, self.n_bins) if ya.dtype.kind in "fc" else ya
        yield from self.splitter.split(Xs, y, g)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds (for leave-one-group-out: the number of distinct groups)."""
        if isinstance(self.splitter, LeaveOneGroupOut) or not hasattr(self.splitter, "n_splits"):
            if groups is None and isinstance(X, xr.Dataset):
                groups = groups_from(X)
            if groups is None:
                raise InputError(f"{type(self.splitter).__name__}.get_n_splits needs groups")
            return int(np.unique(np.asarray(groups)).size)
        return int(self.splitter.n_splits)


def _check_n_splits(n_splits: Any) -> int:
    if not isinstance(n_splits, (int, np.integer)) or isinstance(n_splits, bool) or n_splits < 2:
        raise InputError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    return int(n_splits)


def grouped_kfold(
    n_splits: int = 5, shuffle: bool = True, rng: np.random.Generator | np.random.SeedSequence | int | None = None
) -> GroupedSplitter:
    """Grouped K-fold: every group (specimen) in exactly one test fold.

    Wraps :class:`sklearn.model_selection.GroupKFold`. With ``shuffle=True`` the
    groups are assigned to folds in a random order (``rng``); otherwise scikit-learn
    balances fold sizes deterministically, largest groups first.

    Parameters
    ----------
    n_splits : int
        Number of folds, at least 2 and at most the number of groups.
    shuffle : bool
    rng : Generator, SeedSequence, int or None
        An int is scikit-learn's ``random_state``; a Generator or SeedSequence is
        drawn from once, now. Ignored without shuffling.

    Returns
    -------
    GroupedSplitter
    """
    k = _check_n_splits(n_splits)
    seed = _seed_for_sklearn(rng) if shuffle else None
    return GroupedSplitter(GroupKFold(n_splits=k, shuffle=bool(shuffle), random_state=seed))


def stratified_grouped_kfold(
    n_splits: int = 5,
    n_bins: int = 5,
    shuffle: bool = True,
    rng: np.random.Generator | np.random.SeedSequence | int | None = None,
) -> GroupedSplitter:
    """Grouped K-fold whose test folds keep the distribution of ``y``.

    Wraps :class:`sklearn.model_selection.StratifiedGroupKFold`. A continuous
    (float) ``y`` is stratified through its :func:`quantile_bins` labels: ``n_bins``
    equal-count bins between the empirical quantiles of ``y`` (first column of a
    2-D ``y``). Groups are kept whole, so the bin proportions of each fold are only
    approximately those of the whole set, the better the more (and smaller) groups.

    Parameters
    ----------
    n_splits : int
    n_bins : int
        Number of quantile bins of ``y`` (>= 2).
    shuffle : bool
    rng : Generator, SeedSequence, int or None
        As in :func:`grouped_kfold`.

    Returns
    -------
    GroupedSplitter
    """
    k = _check_n_splits(n_splits)
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise InputError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    seed = _seed_for_sklearn(rng) if shuffle else None
    return GroupedSplitter(StratifiedGroupKFold(n_splits=k, shuffle=bool(shuffle), random_state=seed),
                           n_bins=int(n_bins))


def leave_one_group_out() -> GroupedSplitter:
    """Leave-one-group-out: one fold per group (specimen), that group as test set.

    Wraps :class:`sklearn.model_selection.LeaveOneGroupOut`; needs at least 2 groups.
    """
    return GroupedSplitter(LeaveOneGroupOut())


# ----------------------------------------------------------------------------- leakage guard


def check_leakage(
    train_idx: Any,
    test_idx: Any,
    groups: Any = None,
    X: Any = None,
    seeds: Any = None,
) -> None:
    """Raise :class:`~stochhom.errors.LeakageError` when a split leaks.

    A split leaks when

    * a sample index is on both sides;
    * a group (``groups``, e.g. the specimen) has samples on both sides: the message
      names the first groups and their train/test counts;
    * an identical sample is on both sides: the same ``seed`` and the same parameter
      row of ``X`` (exact equality). Without ``X``, the same seed alone. ``X`` alone
      checks nothing: replicates at one parameter point are distinct samples.

    Parameters
    ----------
    train_idx, test_idx : array-like of int, or boolean masks
    groups : array-like, shape (n,), optional
    X : array-like, shape (n, p), optional
        Parameters of each sample.
    seeds : array-like, shape (n,), optional
        Seed of each sample (the ``seed`` coordinate).

    Returns
    -------
    None
        On a clean split.
    """
    arrays = {name: a for name, a in (("groups", groups), ("X", X), ("seeds", seeds)) if a is not None}
    lengths = {name: _n_samples(np.asarray(a)) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"groups, X and seeds must have one entry per sample; got lengths {lengths}")
    n = next(iter(lengths.values()), None)
    tr, te = _as_indices(train_idx, n, "train"), _as_indices(test_idx, n, "test")
    both = np.intersect1d(tr, te)
    if both.size:
        raise LeakageError(f"{both.size} sample indices are on both sides of the split (e.g. "
                           f"{both[:_SHOW].tolist()}); train and test must be disjoint")
    if groups is not None:
        g = _as_groups(groups, n)  # type: ignore[arg-type]
        shared = np.intersect1d(g[tr], g[te])
        if shared.size:
            desc = [f"{_fmt(s)} ({int(np.sum(g[tr] == s))} train / {int(np.sum(g[te] == s))} test)"
                    for s in shared[:_SHOW]]
            more = f" and {shared.size - _SHOW} more" if shared.size > _SHOW else ""
            raise LeakageError(f"{shared.size} groups have samples on both sides of the split: {', '.join(desc)}"
                               f"{more}. Split by group (grouped_kfold, train_val_test_split with groups=specimen).")
    if seeds is not None:
        s = np.asarray(seeds).reshape(-1).tolist()
        P = None if X is None else np.asarray(X).reshape(n, -1)  # type: ignore[arg-type]

        def key(i: int) -> tuple:
            return (s[i],) if P is None else (s[i], *P[i].tolist())

        train_keys: dict[tuple, int] = {}
        for i in tr.tolist():
            train_keys.setdefault(key(i), i)
        dup = [(train_keys[k], j, k) for j in te.tolist() if (k := key(j)) in train_keys]
        if dup:
            what = "seed" if P is None else "seed and parameters"
            desc = [f"seed {k[0]!r}" + ("" if P is None else f" at {list(k[1:])}") + f" (train {i}, test {j})"
                    for i, j, k in dup[:_SHOW]]
            more = f" and {len(dup) - _SHOW} more" if len(dup) > _SHOW else ""
            raise LeakageError(f"{len(dup)} test samples are identical (same {what}) to training samples: "
                               f"{', '.join(desc)}{more}. Drop the duplicates or group them together.")
    return None


def check_split_groups(
    cv: Any,
    X: Any,
    y: Any = None,
    groups: Any = None,
    *,
    seeds: Any = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run :func:`check_leakage` on every fold of a splitter.

    Parameters
    ----------
    cv : splitter
        Any object with ``split(X, y, groups)`` (scikit-learn's or :class:`GroupedSplitter`).
    X, y, groups
        As for ``cv.split``. ``groups`` is also the grouping checked.
    seeds : array-like, optional
        Seed of each sample; with it, identical samples (same seed and same row of ``X``;
        the seed alone when ``X`` is a Dataset) are checked as well.

    Returns
    -------
    list of (train_idx, test_idx)
        The folds, checked (reusable as ``cv=`` of ``cross_validate``).

    Raises
    ------
    LeakageError
        Naming the first fold that leaks.
    """
    folds = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, y, groups)]
    P = None
    if seeds is not None and not isinstance(X, xr.Dataset):
        P = np.asarray(X)
    for k, (tr, te) in enumerate(folds):
        try:
            check_leakage(tr, te, groups=groups, X=P, seeds=seeds)
        except LeakageError as err:
            raise LeakageError(f"fold {k} of {len(folds)}: {err}") from None
    return folds


# ----------------------------------------------------------------------------- out-of-distribution splits


def _columns(X: Any, features: Sequence[Any] | None, feature_names: Sequence[str] | None) -> np.ndarray:
    """Float columns ``features`` (names or indices; None = all) of X (array, DataFrame or Dataset)."""
    if isinstance(X, xr.Dataset):
        if features is None:
            raise InputError("with a Dataset, name the features (a box dict or feature=...)")
        cols = []
        for f in features:
            if not isinstance(f, str) or f not in X.variables or X[f].dims != ("sample",):
                known = sorted(str(c) for c, da in X.variables.items() if da.dims == ("sample",))
                raise InputError(f"unknown feature {f!r}; per-sample names of the dataset: {known}")
            cols.append(np.asarray(X[f].values, dtype=float))
        arr, names = np.stack(cols, axis=1), [str(f) for f in features]
    else:
        names = None
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):
            names = [str(c) for c in X.columns]
            X = X.to_numpy()
        try:
            arr = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            raise InputError("X must be numeric (samples along rows, features along columns)") from None
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise InputError(f"X must be 2-D (samples, features), got shape {arr.shape}")
        if feature_names is not None:
            if names is not None and list(feature_names) != names:
                raise InputError(f"feature_names {list(feature_names)} differ from the columns of X {names}")
            names = [str(f) for f in feature_names]
            if len(names) != arr.shape[1]:
                raise InputError(f"{len(names)} feature_names for {arr.shape[1]} columns of X")
    p = arr.shape[1]
    idx = []
    for f in range(p) if features is None else features:
        if isinstance(f, (int, np.integer)) and not isinstance(f, bool):
            if not -p <= f < p:
                raise InputError(f"unknown feature index {f}: X has {p} columns")
            idx.append(int(f) % p)
        elif isinstance(f, str):
            if names is None:
                raise InputError(f"feature {f!r} given by name, but X has no feature names; pass "
                                 "feature_names=[...] or a column index")
            if f not in names:
                raise InputError(f"unknown feature {f!r}; known: {names}")
            idx.append(names.index(f))
        else:
            raise InputError(f"a feature is a column index or a name, got {f!r}")
    out = arr[:, idx]
    bad = ~np.isfinite(out)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        label = features[j] if features is not None else j
        raise InputError(f"X has {int(bad.sum())} NaN/inf values (e.g. in feature {label!r}); drop or impute them")
    return out


def _parse_box(box: Any) -> tuple[list[Any] | None, np.ndarray, np.ndarray]:
    """(features or None for all columns, low, high) of a box; InputError on a bad box."""
    if isinstance(box, Mapping):
        keys = list(box)
        try:
            lim = np.array([np.asarray(box[k], dtype=float).reshape(2) for k in keys]).reshape(-1, 2)
        except (TypeError, ValueError):
            raise InputError("each box entry must be a (low, high) pair, e.g. "
                             "{'volume_fraction': (0.1, 0.4)}") from None
    else:
        keys = None
        try:
            lim = np.asarray(box, dtype=float)
        except (TypeError, ValueError):
            raise InputError("box must be a {feature: (low, high)} dict or a (p, 2) array") from None
        if lim.ndim != 2 or lim.shape[1] != 2:
            raise InputError(f"a box array must have shape (p, 2) (low, high per feature), got {lim.shape}")
    if lim.shape[0] == 0:
        raise InputError("the box is empty: give (low, high) for at least one feature")
    labels = keys if keys is not None else list(range(lim.shape[0]))
    for lab, (lo, hi) in zip(labels, lim):
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError(f"box bounds of feature {lab!r} must be finite, got ({lo}, {hi})")
        if lo > hi:
            raise InputError(f"box of feature {lab!r} has low > high: ({lo}, {hi}); swap them")
        if lo == hi:
            raise InputError(f"box of feature {lab!r} has zero width ({lo}, {hi}): distances are normalized by "
                             "the width; drop the feature or widen the box")
    return keys, lim[:, 0], lim[:, 1]


def _box_columns(X: Any, box: Any, feature_names: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys, lo, hi = _parse_box(box)
    cols = _columns(X, keys, feature_names)
    if keys is None and cols.shape[1] != lo.size:
        raise InputError(f"the box has {lo.size} features but X has {cols.shape[1]} columns")
    return cols, lo, hi


def training_box(X_train: Any, *, feature_names: Sequence[str] | None = None) -> np.ndarray:
    """The smallest box holding the training points: per feature ``(min, max)``.

    Returns
    -------
    numpy.ndarray, shape (p, 2)
        Usable as ``box`` of :func:`ood_box_split`, :func:`ood_shells` and
        :func:`extrapolation_distance` (columns in the order of ``X_train``).
    """
    Xt = _columns(X_train, None, feature_names)
    if Xt.shape[0] == 0:
        raise InputError("X_train is empty")
    return np.stack([Xt.min(axis=0), Xt.max(axis=0)], axis=1)


def ood_threshold_split(
    X: Any,
    feature: int | str,
    threshold: float,
    side: str = "above",
    *,
    feature_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the samples beyond a threshold on one parameter.

    Parameters
    ----------
    X : array-like (n, p), DataFrame or Dataset
    feature : int or str
        Column index, or name (DataFrame column, Dataset coordinate or ``feature_names``).
    threshold : float
    side : {"above", "below"}
        ``"above"``: out-of-distribution is :math:`x_f > t`; ``"below"``: :math:`x_f < t`.
        The threshold itself is in distribution.

    Returns
    -------
    in_idx, out_idx : numpy.ndarray of int
    """
    if side not in ("above", "below"):
        raise InputError(f"side must be 'above' or 'below', got {side!r}")
    t = float(threshold)
    if not np.isfinite(t):
        raise InputError(f"threshold must be finite, got {threshold!r}")
    x = _columns(X, [feature], feature_names)[:, 0]
    out = x > t if side == "above" else x < t
    return np.flatnonzero(~out), np.flatnonzero(out)


def ood_box_split(
    X: Any, box: Any, *, feature_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Split samples into those inside a (closed) box, in distribution, and those outside.

    Parameters
    ----------
    X : array-like (n, p), DataFrame or Dataset
    box : dict or array-like, shape (p, 2)
        ``{feature: (low, high)}`` (features by name or column index; features not
        named are unconstrained), or one ``(low, high)`` row per column of ``X``.

    Returns
    -------
    in_idx, out_idx : numpy.ndarray of int
        :math:`l_j \le x_j \le u_j` for every box feature, and the rest.
    """
    cols, lo, hi = _box_columns(X, box, feature_names)
    inside = np.all((cols >= lo) & (cols <= hi), axis=1)
    return np.flatnonzero(inside), np.flatnonzero(~inside)


def extrapolation_distance(
    X: Any,
    X_train: Any = None,
    box: Any = None,
    method: str = "box",
    *,
    feature_names: Sequence[str] | None = None,
    excess: bool = True,
) -> np.ndarray:
    r"""Distance of each point to the training region.

    ``method="box"``: the normalized Euclidean distance to the training box
    :math:`\prod_j [l_j, u_j]` (``box``, or :func:`training_box` of ``X_train``),

    .. math::

        d_B(x) = \Big( \sum_j e_j(x)^2 \Big)^{1/2}, \qquad
        e_j(x) = \frac{\max(0,\ l_j - x_j,\ x_j - u_j)}{u_j - l_j},

    dimensionless (box widths), zero exactly inside (and on) the box.

    ``method="mahalanobis"``: with the training mean :math:`\mu` and covariance
    :math:`\Sigma` (``ddof=1``) of ``X_train``, the Mahalanobis distance
    :math:`d_M(x) = \sqrt{(x - \mu)^\mathsf{T} \Sigma^{-1} (x - \mu)}`. With
    ``excess=True`` (default) the result is its excess over the training radius,
    :math:`\max(0,\ d_M(x) - \max_i d_M(x_i^\mathrm{train}))`: zero inside the
    smallest centred ellipsoid holding every training point, like the box distance;
    with ``excess=False``, :math:`d_M(x)` itself.

    Parameters
    ----------
    X : array-like (n, p), DataFrame or Dataset
    X_train : array-like (m, p), optional
        Training inputs (needed for "mahalanobis"; for "box" when no ``box``).
    box : dict or array-like (p, 2), optional
        For "box": the training box, instead of ``X_train``.
    method : {"box", "mahalanobis"}
    feature_names : sequence of str, optional
        Names of the columns of array inputs (for a box given by names).
    excess : bool
        "mahalanobis" only, see above.

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    if method == "box":
        if (box is None) == (X_train is None):
            raise InputError("method='box' needs either box=... or X_train=... (exactly one)")
        if box is None:
            box = training_box(X_train, feature_names=feature_names)
        cols, lo, hi = _box_columns(X, box, feature_names)
        e = np.maximum(0.0, np.maximum(lo - cols, cols - hi)) / (hi - lo)
        return np.sqrt(np.sum(e**2, axis=1))
    if method == "mahalanobis":
        if X_train is None or box is not None:
            raise InputError("method='mahalanobis' needs X_train (and no box)")
        Xt = _columns(X_train, None, feature_names)
        Xq = _columns(X, None, feature_names)
        m, p = Xt.shape
        if Xq.shape[1] != p:
            raise InputError(f"X has {Xq.shape[1]} features but X_train has {p}")
        if m <= p:
            raise InputError(f"the Mahalanobis distance needs more training points than features, got {m} <= {p}")
        mu = Xt.mean(axis=0)
        cov = np.atleast_2d(np.cov(Xt, rowvar=False))
        w = np.linalg.eigvalsh(cov)
        if w[0] <= 1e-12 * max(w[-1], np.finfo(float).tiny):
            raise InputError(f"the training covariance is singular (eigenvalues {w.tolist()}): some features are "
                             "constant or collinear in X_train; drop them or use method='box'")
        L = np.linalg.cholesky(cov)

        def dm(A: np.ndarray) -> np.ndarray:
            return np.linalg.norm(solve_triangular(L, (A - mu).T, lower=True), axis=0)

        d = dm(Xq)
        return np.maximum(0.0, d - dm(Xt).max()) if excess else d
    raise InputError(f"method must be 'box' or 'mahalanobis', got {method!r}")


def ood_shells(
    X: Any, box: Any, edges: Iterable[float], *, feature_names: Sequence[str] | None = None
) -> list[np.ndarray]:
    r"""Points outside a box, binned into shells of increasing extrapolation distance.

    Shell :math:`k` holds the points with :math:`e_k < d_B(x) \le e_{k+1}`, with
    :math:`d_B` the normalized box distance of :func:`extrapolation_distance`.
    With ``edges[0] = 0`` the points inside the box (:math:`d_B = 0`, the
    in-distribution set of :func:`ood_box_split`) are in no shell; points beyond a
    finite last edge are in none either.

    Parameters
    ----------
    X : array-like (n, p), DataFrame or Dataset
    box : dict or array-like (p, 2)
        E.g. :func:`training_box` of the training inputs.
    edges : sequence of float
        At least two, strictly increasing, ``edges[0] >= 0``; the last may be ``inf``,
        e.g. ``[0, 0.1, 0.25, 0.5, inf]``.

    Returns
    -------
    list of numpy.ndarray of int
        ``len(edges) - 1`` disjoint index arrays, nearest shell first.
    """
    e = np.asarray(list(edges), dtype=float)
    if e.ndim != 1 or e.size < 2 or np.isnan(e).any():
        raise InputError(f"edges must be at least two numbers, got {list(edges)!r}")
    if e[0] < 0 or np.any(np.diff(e) <= 0):
        raise InputError(f"edges must be strictly increasing from >= 0, got {e.tolist()}")
    d = extrapolation_distance(X, box=box, feature_names=feature_names)
    return [np.flatnonzero((d > lo) & (d <= hi)) for lo, hi in itertools.pairwise(e)]
