"""Leakage-safe splits: grouped splitters keep specimens whole, the leakage guard catches
shared specimens and duplicate samples, naive CV of windows is optimistic, and the
extrapolation distance measures how far outside the training box a point lies."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold, cross_validate
from sklearn.neighbors import KNeighborsRegressor

from stochhom.errors import InputError, LeakageError, LeakageWarning
from stochhom.validation.splits import (
    GroupedSplitter,
    check_leakage,
    check_split_groups,
    extrapolation_distance,
    grouped_kfold,
    groups_from,
    leave_one_group_out,
    ood_box_split,
    ood_shells,
    ood_threshold_split,
    quantile_bins,
    stratified_grouped_kfold,
    train_val_test_split,
    training_box,
    warn_if_windows,
)


def _random_groups(n_groups: int = 60, seed: int = 0) -> np.ndarray:
    """Group labels with random group sizes 1..6, shuffled over the samples."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), rng.integers(1, 7, size=n_groups))
    return rng.permutation(g)


def _windows_data(seed: int = 0, n_specimens: int = 40, n_windows: int = 6):
    """Windows of specimens: each specimen has parameters θ (shared, with a small jitter per
    window) and a random offset of its property, shared by all its windows."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.0, 1.0, size=(n_specimens, 2))
    offset = 0.5 * rng.standard_normal(n_specimens)
    g = np.repeat(np.arange(n_specimens), n_windows)
    X = theta[g] + 0.02 * rng.standard_normal((g.size, 2))
    y = np.sin(3.0 * X[:, 0]) + X[:, 1] + offset[g] + 0.1 * rng.standard_normal(g.size)
    return X, y, g


def _props(windows: bool) -> xr.Dataset:
    n_spec, w = 4, 3 if windows else 1
    n = n_spec * w
    coords = {"sample": np.arange(n), "specimen": ("sample", np.repeat([f"s{k}" for k in range(n_spec)], w)),
              "seed": ("sample", np.repeat(np.arange(n_spec) + 100, w)),
              "volume_fraction": ("sample", np.repeat(np.linspace(0.1, 0.4, n_spec), w))}
    if windows:
        coords["parent_sample"] = ("sample", np.repeat(np.arange(n_spec), w))
    return xr.Dataset({"bulk_modulus": ("sample", np.linspace(1.0, 2.0, n))}, coords=coords)


# ----------------------------------------------------------------------------- leakage guard


def test_leakage_guard_catches_a_shared_specimen_and_passes_a_clean_split() -> None:
    g = np.array(["a", "a", "b", "b", "c", "c", "d"])
    check_leakage([0, 1, 2, 3], [4, 5, 6], groups=g)  # clean: returns None
    assert check_leakage([0, 1, 2, 3], [4, 5, 6], groups=g) is None
    with pytest.raises(LeakageError, match=r"1 groups .*'b' \(1 train / 1 test\)"):
        check_leakage([0, 1, 2, 4, 5], [3, 6], groups=g)
    mask = np.zeros(7, dtype=bool)
    mask[[0, 2]] = True
    with pytest.raises(LeakageError, match=r"'a'.*'b'"):  # boolean masks work too
        check_leakage(mask, ~mask, groups=g)
    with pytest.raises(LeakageError, match="both sides"):  # the same index twice
        check_leakage([0, 1], [1, 2])


def test_leakage_guard_catches_an_identical_sample_same_seed_and_parameters() -> None:
    X = np.array([[0.1, 4.0], [0.2, 4.0], [0.1, 4.0], [0.3, 8.0]])
    seeds = np.array([11, 12, 11, 13])
    groups = np.arange(4)  # each sample its own specimen: the group check alone sees nothing
    check_leakage([0, 1], [3], groups=groups, X=X, seeds=seeds)
    with pytest.raises(LeakageError, match=r"identical \(same seed and parameters\).*seed 11 at \[0.1, 4.0\]"):
        check_leakage([0, 1], [2, 3], groups=groups, X=X, seeds=seeds)
    # same seed at other parameters is a different sample; same parameters with another seed a replicate
    X2 = X.copy()
    X2[2, 0] = 0.15
    check_leakage([0, 1], [2, 3], X=X2, seeds=seeds)
    check_leakage([0], [2], X=X, seeds=[11, 12, 14, 13])
    check_leakage([0], [2], X=X)  # parameters alone: replicates, not duplicates


def test_check_split_groups_flags_naive_kfold_and_passes_grouped() -> None:
    X, y, g = _windows_data()
    folds = check_split_groups(grouped_kfold(4, rng=0), X, y, g)
    assert len(folds) == 4
    with pytest.raises(LeakageError, match="fold 0 of 5"), pytest.warns(UserWarning, match="ignored by KFold"):
        check_split_groups(KFold(5, shuffle=True, random_state=0), X, y, g)


def test_leakage_guard_bad_input() -> None:
    with pytest.raises(InputError, match="lengths"):
        check_leakage([0], [1], groups=np.arange(5), seeds=np.arange(4))
    with pytest.raises(InputError, match=r"\[0, 5\)"):
        check_leakage([0], [7], groups=np.arange(5))


# ----------------------------------------------------------------------------- grouped splitters


@pytest.mark.parametrize("factory", [lambda: grouped_kfold(5, rng=3), lambda: grouped_kfold(5, shuffle=False),
                                     lambda: stratified_grouped_kfold(5, rng=3), leave_one_group_out])
@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_splitters_never_divide_a_specimen(factory, seed: int) -> None:
    g = _random_groups(40, seed)
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((g.size, 2)), rng.standard_normal(g.size)
    cv = factory()
    tested = []
    for tr, te in cv.split(X, y, g):
        assert np.intersect1d(g[tr], g[te]).size == 0
        assert np.union1d(tr, te).size == g.size
        tested.append(te)
    assert sorted(np.concatenate(tested).tolist()) == list(range(g.size))  # each sample tested once
    assert len(tested) == cv.get_n_splits(X, y, g)


def test_stratified_grouped_kfold_keeps_y_bin_proportions() -> None:
    # tolerance: every test fold's proportion of each of 4 quantile bins of y is within
    # 0.08 of the overall proportion (0.25), with 60 groups of 1..6 samples; a plain
    # shuffled grouped K-fold on the same data misses it by more
    g = _random_groups(60, 0)
    rng = np.random.default_rng(0)
    y = rng.standard_normal(60)[g] + 0.3 * rng.standard_normal(g.size)
    X = np.zeros((g.size, 1))
    bins = quantile_bins(y, 4)
    overall = np.bincount(bins) / g.size
    np.testing.assert_allclose(overall, 0.25, atol=0.01)

    def worst(cv) -> float:
        return max(np.abs(np.bincount(bins[te], minlength=4) / te.size - overall).max() for _, te in cv.split(X, y, g))

    strat, plain = worst(stratified_grouped_kfold(5, n_bins=4, rng=1)), worst(grouped_kfold(5, rng=1))
    assert strat < 0.08
    assert strat < plain


def test_leave_one_group_out_tests_one_group_per_fold() -> None:
    g = _random_groups(12, 2)
    X = np.zeros((g.size, 1))
    cv = leave_one_group_out()
    assert cv.get_n_splits(X, None, g) == 12
    seen = []
    for tr, te in cv.split(X, None, g):
        assert np.unique(g[te]).size == 1 and g[te][0] not in g[tr]
        seen.append(g[te][0])
    assert sorted(seen) == list(range(12))


def test_cross_validate_with_grouped_kfold_and_groups() -> None:
    X, y, g = _windows_data()
    cv = grouped_kfold(3, rng=0)
    assert isinstance(cv, GroupedSplitter) and isinstance(cv.splitter, GroupKFold)
    res = cross_validate(Ridge(alpha=1e-3), X, y, cv=cv, groups=g, scoring="neg_root_mean_squared_error")
    assert res["test_score"].shape == (3,) and np.all(np.isfinite(res["test_score"]))
    res = cross_validate(Ridge(), X, y, cv=stratified_grouped_kfold(3, rng=0), groups=g)
    assert res["test_score"].shape == (3,)


def test_naive_cv_of_windows_is_more_optimistic_than_grouped_cv() -> None:
    # each specimen has a random offset (sd 0.5) shared by its 6 windows, window noise sd 0.1:
    # naive K-fold predicts a window from its sibling (RMSE ≈ 0.28), grouped K-fold cannot (≈ 0.72)
    X, y, g = _windows_data(seed=0)

    def rmse(cv, groups=None) -> float:
        res = cross_validate(KNeighborsRegressor(n_neighbors=1), X, y, cv=cv, groups=groups,
                             scoring="neg_root_mean_squared_error")
        return float(-res["test_score"].mean())

    naive = rmse(KFold(5, shuffle=True, random_state=0))
    grouped = rmse(grouped_kfold(5, rng=0), g)
    print(f"naive K-fold RMSE {naive:.4f}, grouped K-fold RMSE {grouped:.4f}")
    assert grouped > 2.0 * naive
    assert naive == pytest.approx(0.2796, abs=1e-3) and grouped == pytest.approx(0.7167, abs=1e-3)
    # deterministic under the seed, bit for bit: a 1-nearest-neighbour prediction copies a
    # training y (the neighbour search is exact on these well-separated points) and the RMSE is
    # a numpy reduction of the same numbers in the same order; no BLAS sum reaches the result
    assert rmse(KFold(5, shuffle=True, random_state=0)) == naive
    assert rmse(grouped_kfold(5, rng=0), g) == grouped


def test_grouped_splitter_accepts_a_dataset_and_uses_its_specimens() -> None:
    props = _props(windows=True)
    folds = list(grouped_kfold(2, rng=0).split(props))
    spec = groups_from(props)
    assert len(folds) == 2
    for tr, te in folds:
        assert np.intersect1d(spec[tr], spec[te]).size == 0


# ----------------------------------------------------------------------------- bad input of the splitters


def test_groups_of_the_wrong_length() -> None:
    X = np.zeros((10, 1))
    with pytest.raises(InputError, match="length 9 but there are 10 samples"):
        list(grouped_kfold(2).split(X, None, np.arange(9)))
    with pytest.raises(InputError, match="length 9 but there are 10 samples"):
        train_val_test_split(10, np.arange(9))
    with pytest.raises(InputError, match="pass groups"):
        list(grouped_kfold(2).split(X))


def test_fewer_groups_than_folds_names_both_numbers() -> None:
    X, g = np.zeros((12, 1)), np.repeat([0, 1, 2], 4)
    with pytest.raises(InputError, match=r"n_splits=5 folds need at least 5 groups.*only 3 distinct"):
        list(grouped_kfold(5).split(X, None, g))
    with pytest.raises(InputError, match=r"n_splits=4 .* only 3 distinct"):
        cross_validate(Ridge(), X, np.zeros(12), cv=stratified_grouped_kfold(4), groups=g)
    with pytest.raises(InputError, match="at least 2 groups"):
        list(leave_one_group_out().split(X, None, np.zeros(12)))
    with pytest.raises(InputError, match="n_splits"):
        grouped_kfold(1)


def test_splitting_windows_without_groups_warns() -> None:
    props = _props(windows=True)
    with pytest.warns(LeakageWarning, match="windows of one specimen are correlated.*groups=specimen"):
        assert warn_if_windows(props)
    with pytest.warns(LeakageWarning, match="divide 4 specimens"):  # groups finer than specimens
        assert warn_if_windows(props, np.arange(12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_windows(props, groups_from(props))
        assert not warn_if_windows(_props(windows=False))  # one sample per specimen: nothing to warn
        assert not warn_if_windows(np.arange(5))
    with pytest.warns(LeakageWarning):
        warn_if_windows(np.repeat([0, 1], 3))


def test_groups_from_needs_a_specimen_coordinate() -> None:
    props = _props(windows=False)
    assert groups_from(props).tolist() == ["s0", "s1", "s2", "s3"]
    with pytest.raises(InputError, match="no per-sample 'specimen'"):
        groups_from(props.drop_vars("specimen"))


# ----------------------------------------------------------------------------- train / validation / test


def test_train_val_test_split_by_group() -> None:
    g = _random_groups(80, 4)
    n, biggest = g.size, np.bincount(g).max()
    tr, va, te = train_val_test_split(n, g, (0.6, 0.2, 0.2), rng=7)
    assert np.concatenate([tr, va, te]).size == n and np.union1d(np.union1d(tr, va), te).size == n  # disjoint, all
    for a, b in [(tr, va), (tr, te), (va, te)]:
        assert np.intersect1d(g[a], g[b]).size == 0
    for idx, f in [(tr, 0.6), (va, 0.2), (te, 0.2)]:
        assert abs(idx.size - f * n) <= biggest  # within group granularity
    again = train_val_test_split(n, g, (0.6, 0.2, 0.2), rng=7)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    other = train_val_test_split(n, g, (0.6, 0.2, 0.2), rng=8)
    assert not np.array_equal(tr, other[0])


def test_train_val_test_split_of_a_dataset_groups_by_specimen() -> None:
    props = _props(windows=True)
    tr, va, te = train_val_test_split(props, fractions=(0.5, 0.25, 0.25), rng=0)
    spec = groups_from(props)
    assert [np.unique(spec[i]).size for i in (tr, va, te)] == [2, 1, 1]
    tr, va, te = train_val_test_split(props, fractions=(0.75, 0.0, 0.25), rng=0)
    assert va.size == 0 and tr.size == 9 and te.size == 3


@pytest.mark.parametrize("fractions", [(0.7, 0.2, 0.2), (0.7, 0.3), (1.2, -0.1, -0.1), (0.0, 0.5, 0.5),
                                       (0.5, 0.5, 0.0), (0.7, float("nan"), 0.3)])
def test_bad_fractions(fractions) -> None:
    with pytest.raises(InputError, match="fractions"):
        train_val_test_split(20, np.arange(20), fractions)


def test_too_few_groups_for_three_sides() -> None:
    with pytest.raises(InputError, match=r"at least 3 groups.*only 2"):
        train_val_test_split(6, np.repeat([0, 1], 3))


# ----------------------------------------------------------------------------- out of distribution


def test_threshold_and_box_splits() -> None:
    X = np.array([[0.1, 1.0], [0.3, 2.0], [0.5, 3.0], [0.7, 4.0]])
    i, o = ood_threshold_split(X, 0, 0.3)
    assert i.tolist() == [0, 1] and o.tolist() == [2, 3]
    i, o = ood_threshold_split(X, "b", 2.0, side="below", feature_names=["a", "b"])
    assert i.tolist() == [1, 2, 3] and o.tolist() == [0]
    i, o = ood_box_split(X, {0: (0.0, 0.5), 1: (1.5, 5.0)})
    assert i.tolist() == [1, 2] and o.tolist() == [0, 3]
    props = _props(windows=False)
    i, o = ood_box_split(props, {"volume_fraction": (0.0, 0.25)})
    assert i.tolist() == [0, 1] and o.tolist() == [2, 3]


def test_extrapolation_distance_is_zero_inside_and_grows_outside() -> None:
    rng = np.random.default_rng(0)
    X_train = rng.uniform([0.0, 10.0], [1.0, 20.0], size=(200, 2))
    box = training_box(X_train)
    inside = rng.uniform(box[:, 0], box[:, 1], size=(50, 2))
    assert np.all(extrapolation_distance(inside, X_train=X_train) == 0.0)
    # along a ray leaving the box the distance grows strictly, and equals the excess in box widths
    t = np.linspace(0.0, 2.0, 21)
    ray = np.column_stack([box[0, 1] + t * (box[0, 1] - box[0, 0]), np.full(t.size, 15.0)])
    d = extrapolation_distance(ray, box=box)
    np.testing.assert_allclose(d, t, atol=1e-12)
    diag = box[:, 1] + np.outer(t, box[:, 1] - box[:, 0])  # corner direction: √2 t
    np.testing.assert_allclose(extrapolation_distance(diag, box=box), np.sqrt(2.0) * t, atol=1e-12)
    # Mahalanobis excess: zero at the training points, growing along the ray
    dm = extrapolation_distance(ray, X_train=X_train, method="mahalanobis")
    assert np.all(extrapolation_distance(X_train, X_train=X_train, method="mahalanobis") == 0.0)
    assert np.all(np.diff(dm[dm > 0]) > 0) and dm[-1] > 0
    raw = extrapolation_distance(X_train.mean(axis=0, keepdims=True), X_train=X_train, method="mahalanobis",
                                 excess=False)
    assert raw[0] == pytest.approx(0.0, abs=1e-12)


def test_shells_are_disjoint_and_ordered_by_distance() -> None:
    rng = np.random.default_rng(1)
    box = np.array([[0.0, 1.0], [0.0, 1.0]])
    X = rng.uniform(-1.0, 2.0, size=(400, 2))
    edges = [0.0, 0.1, 0.25, 0.5, np.inf]
    shells = ood_shells(X, box, edges)
    d = extrapolation_distance(X, box=box)
    assert len(shells) == 4
    flat = np.concatenate(shells)
    assert flat.size == np.unique(flat).size  # disjoint
    _, out_idx = ood_box_split(X, box)
    assert np.array_equal(np.sort(flat), out_idx)  # together: exactly the points outside the box
    for k, s in enumerate(shells):
        assert s.size > 0 and np.all((d[s] > edges[k]) & (d[s] <= edges[k + 1]))
    assert all(d[a].max() <= d[b].min() for a, b in itertools.pairwise(shells))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda X: ood_box_split(X, {}), "empty"),
        (lambda X: ood_box_split(X, {0: (1.0, 0.0)}), "low > high"),
        (lambda X: ood_box_split(X, {0: (0.0, 0.0)}), "zero width"),
        (lambda X: ood_box_split(X, np.zeros((3, 2)) + [0, 1]), "3 features but X has 2"),
        (lambda X: ood_box_split(X, {"phi": (0.0, 1.0)}), "no feature names"),
        (lambda X: ood_box_split(X, {"phi": (0.0, 1.0)}, feature_names=["a", "b"]), "unknown feature 'phi'"),
        (lambda X: ood_threshold_split(X, 5, 0.5), "unknown feature index 5"),
        (lambda X: ood_threshold_split(X, 0, 0.5, side="left"), "side"),
        (lambda X: ood_threshold_split(np.where(X > 0.9, np.nan, X), 0, 0.5), "NaN"),
        (lambda X: extrapolation_distance(X), "exactly one"),
        (lambda X: extrapolation_distance(X, box={0: (0.0, np.nan)}), "finite"),
        (lambda X: extrapolation_distance(X, X_train=X[:2], method="mahalanobis"), "more training points"),
        (lambda X: extrapolation_distance(X, X_train=np.column_stack([X[:, 0], X[:, 0]]), method="mahalanobis"),
         "singular"),
        (lambda X: extrapolation_distance(X, X_train=X, method="knn"), "method"),
        (lambda X: ood_shells(X, [[0, 1], [0, 1]], [0.5, 0.1]), "increasing"),
    ],
)
def test_ood_bad_input(call, match: str) -> None:
    X = np.random.default_rng(0).uniform(size=(20, 2))
    with pytest.raises(InputError, match=match):
        call(X)
