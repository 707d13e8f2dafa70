"""Evaluation tables, OOD degradation, the OOD evaluation with intervals, the leakage
demonstration and the validation figures."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression

from stochhom.errors import InputError, LeakageError, OutOfDomainWarning
from stochhom.surrogates import GPR, PCE
from stochhom.validation import (
    OODEvaluation,
    degradation,
    evaluate,
    grouped_kfold,
    leakage_demonstration,
    ood_evaluation,
    ood_folds,
    plots,
)
from stochhom.validation.evaluate import _group_stats
from stochhom.validation.metrics import pooled_metrics

pytestmark = pytest.mark.filterwarnings("ignore::stochhom.errors.OutOfDomainWarning")


def specimen_data(seed: int = 0, n_specimens: int = 30, windows: int = 6):
    """Windows of specimens: each specimen has its own offset (sd 0.5) shared by its windows,
    and its windows sit at nearly the same parameters: a naive split scores near-copies."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_specimens), windows)
    x = np.repeat(rng.random((n_specimens, 2)), windows, axis=0) + 0.01 * rng.standard_normal((groups.size, 2))
    y = (np.sin(3 * x[:, 0]) + x[:, 1] + np.repeat(0.5 * rng.standard_normal(n_specimens), windows)
         + 0.1 * rng.standard_normal(groups.size))
    return x, y, groups


def model() -> GPR:
    return GPR(kernel="rbf", n_restarts=0, random_state=0)


def test_naive_cv_is_measurably_more_optimistic_than_grouped_cv() -> None:
    x, y, g = specimen_data()
    demo = leakage_demonstration(model(), x, y, g, n_splits=5, rng=0)
    row = demo.set_index("metric")
    # the specimen offsets (sd 0.5) are invisible to a naive split: its RMSE is near the window
    # noise, the grouped one near sqrt(0.5² + 0.1²) = 0.51
    assert row.loc["rmse", "grouped"] > 2 * row.loc["rmse", "naive"]
    assert row.loc["rmse", "grouped"] == pytest.approx(0.51, rel=0.25)
    assert row.loc["nlpd", "optimism"] > 0.5
    assert row.loc["coverage_0.95", "grouped"] < row.loc["coverage_0.95", "naive"]
    again = leakage_demonstration(model(), x, y, g, n_splits=5, rng=0)
    # deterministic under a seed; assert_frame_equal compares floats to rtol=1e-5 (pandas'
    # default), so BLAS rounding in the GP fits (single-threaded below 1000 points, hence
    # reproducible) could not fail it, while another split or seed changes the metrics ~1e-2
    pd.testing.assert_frame_equal(demo, again)


def test_evaluate_gives_a_tidy_table_and_refuses_leaky_folds() -> None:
    x, y, g = specimen_data(1, n_specimens=20)
    table = evaluate(model(), x, y, grouped_kfold(4, rng=0), groups=g)
    assert list(table.columns) == ["fold", "split", "n", "distance", "metric", "output", "value"]
    assert set(table["split"]) == {"train", "test"} and set(table["fold"]) == {0, 1, 2, 3}
    assert {"rmse", "nlpd", "crps", "coverage_0.95", "miscalibration_area"} <= set(table["metric"])
    # 4 folds x 2 splits x 15 metrics (5 coverage levels)
    assert len(table) == 4 * 2 * 15
    rmse = table[table["metric"] == "rmse"].groupby("split")["value"].mean()
    assert rmse["train"] < rmse["test"]  # the over-fit gap
    from sklearn.model_selection import KFold

    with pytest.raises(LeakageError):
        evaluate(model(), x, y, KFold(4, shuffle=True, random_state=0), groups=g)


def test_ood_degradation_grows_with_distance() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((500, 2)) * 1.8 - 0.4  # [-0.4, 1.4]^2 around the unit training box
    y = np.sin(4 * x[:, 0]) + x[:, 1] ** 2 + 0.05 * rng.standard_normal(500)
    folds = ood_folds(x, np.array([[0.0, 1.0], [0.0, 1.0]]), edges=(0.0, 0.1, 0.2, 0.4), rng=0)
    assert set(folds[0]) == {"train", "test", "ood_1", "ood_2", "ood_3"}
    table = evaluate(model(), x, y, folds)
    deg = degradation(table)
    rm = deg[deg["metric"] == "rmse"].set_index("split")
    assert rm.loc["test", "ratio"] == 1.0
    ratios = rm.loc[["ood_1", "ood_2", "ood_3"], "ratio"].to_numpy()
    dist = rm.loc[["ood_1", "ood_2", "ood_3"], "distance"].to_numpy()
    assert np.all(np.diff(dist) > 0)
    assert ratios[-1] > 2.0 and ratios[-1] > ratios[0]  # extrapolating 0.2-0.4 box widths out
    nl = deg[deg["metric"] == "nlpd"].set_index("split")
    assert nl.loc["ood_3", "ratio"] > 1.0  # OOD observations are less likely under the prediction


def test_validation_figures() -> None:
    rng = np.random.default_rng(3)
    mean = rng.normal(size=300)
    std = np.full(300, 0.5)
    y = mean + std * rng.standard_normal(300)
    x, yy, g = specimen_data(4, n_specimens=15)
    demo = leakage_demonstration(model(), x, yy, g, n_splits=3, rng=0)
    xo = rng.random((200, 2)) * 1.6 - 0.3
    table = evaluate(model(), xo, np.sin(3 * xo[:, 0]), ood_folds(xo, np.array([[0, 1], [0, 1]]), rng=0))
    figures = [
        plots.parity_plot(y, mean, std, label="bulk modulus", unit="GPa"),
        plots.calibration_plot(y, mean, std),
        plots.coverage_plot(y, mean, std),
        plots.pit_histogram(y, mean, std),
        plots.degradation_plot(degradation(table)),
        plots.cv_comparison_plot(demo),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:4] == b"\x89PNG"
    assert "GPa" in figures[0].axes[0].get_xlabel()


def test_evaluate_bad_input() -> None:
    x, y, g = specimen_data(5, n_specimens=8)
    with pytest.raises(InputError, match="has no 'train' indices"):
        evaluate(model(), x, y, [{"test": np.arange(5)}])
    with pytest.raises(InputError, match="groups has 3 entries"):
        evaluate(model(), x, y, grouped_kfold(2, rng=0), groups=g[:3])
    with pytest.raises(InputError, match="indices must be integers in"):
        evaluate(model(), x, y, [{"train": np.arange(10), "test": np.array([10_000])}])
    table = evaluate(model(), x, y, grouped_kfold(2, rng=0), groups=g)
    with pytest.raises(InputError, match="reference split 'ood' is not in the table"):
        degradation(table, reference="ood")
    with pytest.raises(InputError, match="expected the table returned by degradation"):
        plots.degradation_plot(pd.DataFrame({"a": [1]}))


# ----------------------------------------------------------------------------- ood_evaluation

UNIT_BOX = np.array([[0.0, 1.0], [0.0, 1.0]])


def f_true(X: np.ndarray) -> np.ndarray:
    return X[:, 0] ** 2 + 0.5 * X[:, 1]


class Oracle(RegressorMixin, BaseEstimator):
    """The exact mean with the true noise std: calibrated everywhere, inside and outside the box."""

    def __init__(self, noise: float = 0.1) -> None:
        self.noise = noise

    def fit(self, X, y):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X, return_std=False):
        mean = f_true(np.asarray(X, dtype=float))
        return (mean, np.full(mean.shape, self.noise)) if return_std else mean


class LinearGauss(RegressorMixin, BaseEstimator):
    """Least-squares plane with the residual std: fine inside, wrong beyond a curved function."""

    def fit(self, X, y):
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        self.lr_ = LinearRegression().fit(X, y)
        self.sigma_ = float(np.sqrt(np.sum((y - self.lr_.predict(X)) ** 2) / (y.size - X.shape[1] - 1)))
        return self

    def predict(self, X, return_std=False):
        mean = self.lr_.predict(np.asarray(X, dtype=float))
        return (mean, np.full(mean.shape, self.sigma_)) if return_std else mean


def ood_data(seed: int = 0, n: int = 400, noise: float = 0.1, low: float = -1.0, high: float = 2.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(low, high, size=(n, 2))
    return X, f_true(X) + noise * rng.standard_normal(n)


def test_reference_rests_on_every_in_box_sample_and_shells_on_every_fold() -> None:
    X, y = ood_data(0)
    res = ood_evaluation(Oracle(), X, y, UNIT_BOX, (0.0, 0.25, 0.5, 1.0, np.inf), n_splits=4, n_boot=200, rng=0)
    assert isinstance(res, OODEvaluation) and res.ok and res.declined == []
    p, t = res.predictions, res.table
    d = np.sqrt(np.sum(np.maximum(0.0, np.maximum(-X, X - 1.0)) ** 2, axis=1))
    ref = p[p["split"] == "reference"]
    # every in-box sample predicted exactly once, by the fold that held it out
    assert sorted(ref["row"]) == list(np.flatnonzero(d == 0))
    # every sample outside is in one shell and predicted once by each of the 4 folds' models
    shells = p[p["split"] != "reference"]
    assert sorted(shells["row"].unique()) == list(np.flatnonzero(d > 0))
    per = shells.groupby("row")["fold"].agg(["count", "nunique"])
    assert (per["count"] == 4).all() and (per["nunique"] == 4).all()
    assert shells.groupby("row")["split"].nunique().max() == 1
    assert list(t["split"]) == ["reference", "shell_1", "shell_2", "shell_3", "shell_4"]
    assert (t["n_samples"] >= 20).all()
    assert t.loc[0, "n_predictions"] == t.loc[0, "n_samples"] == (d == 0).sum()
    assert (t["n_predictions"][1:] == 4 * t["n_samples"][1:]).all()
    np.testing.assert_allclose(p["distance"], d[p["row"]])
    assert (np.diff(t["distance_mean"]) > 0).all()
    # each pooled value is pooled_metrics of the split's predictions
    for label, sub in p.groupby("split"):
        row = t.set_index("split").loc[label]
        for m in ("rmse", "nlpd", "crps", "coverage_0.95"):
            assert row[m] == pytest.approx(pooled_metrics(sub)[m], rel=1e-12)


def test_groups_are_never_split_across_folds_and_straddling_groups_are_left_out() -> None:
    rng = np.random.default_rng(1)
    centres = rng.uniform(-1.0, 2.0, size=(120, 2))
    centres[:8] = [1.0, 0.5]  # on a face of the box: their windows fall on both sides
    g = np.repeat(np.arange(120), 3)
    X = np.repeat(centres, 3, axis=0) + 0.01 * rng.standard_normal((360, 2))
    y = f_true(X) + 0.1 * rng.standard_normal(360)
    res = ood_evaluation(Oracle(), X, y, UNIT_BOX, groups=g, n_splits=3, min_samples=10, n_boot=100, rng=0)
    ref = res.predictions[res.predictions["split"] == "reference"]
    assert (ref.groupby("group")["fold"].nunique() == 1).all()  # whole groups held out together
    d = res.predictions.drop_duplicates("row").set_index("row")["distance"]
    inside_groups = set(g[np.flatnonzero(np.all((X >= 0) & (X <= 1), axis=1))])
    outside_groups = set(g[np.flatnonzero(~np.all((X >= 0) & (X <= 1), axis=1))])
    straddling = inside_groups & outside_groups
    assert straddling
    assert not straddling & set(ref["group"])  # no group is on both sides
    assert set(ref["group"]) == inside_groups - straddling
    assert (d.loc[ref["row"]] == 0).all()
    assert any("inside and outside the box" in r for r in res.declined)
    assert res.table.loc[0, "n_groups"] == len(inside_groups - straddling)


def test_shells_are_merged_outwards_until_each_holds_min_samples() -> None:
    rng = np.random.default_rng(2)
    # 1-D box [0, 1]; bins (0, .1], (.1, .2], (.2, .3], (.3, .4], (.4, .5], (.5, inf] hold 5, 8, 10, 0, 25, 3
    counts = {(0.0, 0.1): 5, (0.1, 0.2): 8, (0.2, 0.3): 10, (0.4, 0.5): 25, (0.5, 2.0): 3}
    outside = np.concatenate([1.0 + rng.uniform(lo, hi, k) for (lo, hi), k in counts.items()])
    x = np.concatenate([rng.uniform(0.0, 1.0, 40), outside])[:, None]
    y = x[:, 0] ** 2 + 0.1 * rng.standard_normal(x.shape[0])

    class Oracle1D(Oracle):
        def predict(self, X, return_std=False):
            mean = np.asarray(X, dtype=float)[:, 0] ** 2
            return (mean, np.full(mean.shape, self.noise)) if return_std else mean

    res = ood_evaluation(Oracle1D(), x, y, [[0.0, 1.0]], (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, np.inf),
                         min_samples=20, n_boot=100, rng=0)
    t = res.table.set_index("split")
    assert list(t.index) == ["reference", "shell_1", "shell_2"]
    assert (t.loc["shell_1", "distance_low"], t.loc["shell_1", "distance_high"]) == (0.0, 0.3)
    assert t.loc["shell_1", "n_samples"] == 5 + 8 + 10
    assert (t.loc["shell_2", "distance_low"], t.loc["shell_2", "distance_high"]) == (0.4, np.inf)
    assert t.loc["shell_2", "n_samples"] == 25 + 3
    assert (t["n_samples"] >= 20).all()
    assert len(res.declined) == 2  # the merge of three shells, and the remainder; the empty shell silently
    assert "(0, 0.1], (0.1, 0.2], (0.2, 0.3] hold 5, 8, 10 samples" in res.declined[0]
    assert "merged into (0, 0.3] (23 samples)" in res.declined[0]
    assert "beyond distance 0.5 hold 3 sample(s)" in res.declined[1]
    assert "merged into the previous shell, now (0.4, inf] (28 samples)" in res.declined[1]
    assert "ood_edges" in res.declined[1]
    # too few outside the box for even one shell: only the reference, and the reason
    few = ood_evaluation(Oracle1D(), x[:52], y[:52], [[0.0, 1.0]], min_samples=20, n_boot=50, rng=0)
    assert list(few.table["split"]) == ["reference"] and few.ok
    assert "all 12 sample(s) outside the box together are fewer than min_samples=20" in few.declined[0]


def test_rmse_ratio_of_a_plane_fitted_to_a_curved_function_grows_with_distance() -> None:
    X, y = ood_data(3, n=600, noise=0.05)
    res = ood_evaluation(LinearGauss(), X, y, UNIT_BOX, (0.0, 0.1, 0.25, 0.5, 1.0, np.inf), n_boot=500, rng=0)
    t = res.table
    assert list(t["split"]) == ["reference", *[f"shell_{k}" for k in range(1, 6)]]
    ratio = t["rmse_ratio"].to_numpy()
    assert ratio[0] == 1.0 and np.all(np.diff(ratio) > 0)
    assert t["rmse_ratio_low"].iloc[-1] > 1.0  # the far shell is worse beyond doubt
    assert t["rmse_ratio_low"].iloc[-1] > t["rmse_ratio_high"].iloc[1]  # and beyond doubt worse than the near one
    assert t["nlpd_ratio_low"].iloc[-1] > 1.0
    assert t["coverage_0.95_ratio_high"].iloc[-1] < 1.0  # the constant std does not follow the growing error


def test_calibrated_model_has_reference_coverage_interval_around_nominal() -> None:
    X, y = ood_data(4, n=900)
    res = ood_evaluation(Oracle(noise=0.1), X, y, UNIT_BOX, (0.0, 0.5, np.inf), n_boot=1000, rng=0)
    t = res.table.set_index("split")
    ref = t.loc["reference"]
    assert ref["n_samples"] >= 80
    assert ref["coverage_0.95_low"] <= 0.95 <= ref["coverage_0.95_high"]
    # the Gaussian NLPD of a calibrated predictor: ½ log(2πσ²) + ½ = -1.38 for σ = 0.1
    expected_nlpd = 0.5 * np.log(2 * np.pi * 0.01) + 0.5
    assert ref["nlpd_low"] <= expected_nlpd <= ref["nlpd_high"]
    for shell in ("shell_1", "shell_2"):  # calibrated outside as well: no degradation shown
        assert t.loc[shell, "coverage_0.95_low"] <= 0.95 <= t.loc[shell, "coverage_0.95_high"]
        assert t.loc[shell, "rmse_ratio_low"] <= 1.0 <= t.loc[shell, "rmse_ratio_high"]


def test_bootstrap_intervals_hold_the_point_estimates_and_are_seeded() -> None:
    X, y = ood_data(5)
    res = ood_evaluation(LinearGauss(), X, y, UNIT_BOX, n_boot=400, rng=7)
    t = res.table
    for m in res.metrics:
        assert (t[f"{m}_low"] <= t[m]).all() and (t[m] <= t[f"{m}_high"]).all(), m
        shells = t.iloc[1:]
        assert (shells[f"{m}_ratio_low"] <= shells[f"{m}_ratio"]).all(), m
        assert (shells[f"{m}_ratio"] <= shells[f"{m}_ratio_high"]).all(), m
    assert t.loc[0, "rmse_ratio"] == 1.0 and np.isnan(t.loc[0, "rmse_ratio_low"])
    assert res.n_boot == 400 and res.confidence == 0.95
    again = ood_evaluation(LinearGauss(), X, y, UNIT_BOX, n_boot=400, rng=7)
    # same seed, same bootstrap: equal to pandas' default rtol=1e-5 (tolerant of BLAS rounding)
    pd.testing.assert_frame_equal(res.table, again.table)
    pd.testing.assert_frame_equal(res.predictions, again.predictions)
    narrower = ood_evaluation(LinearGauss(), X, y, UNIT_BOX, n_boot=400, confidence=0.5, rng=7).table
    assert (narrower["rmse_high"] - narrower["rmse_low"] < t["rmse_high"] - t["rmse_low"]).all()


def test_group_bootstrap_is_wider_when_groups_share_an_offset() -> None:
    rng = np.random.default_rng(6)
    centres = rng.uniform(-1.0, 2.0, size=(100, 2))
    g = np.repeat(np.arange(100), 5)
    X = np.repeat(centres, 5, axis=0)
    y = f_true(X) + np.repeat(0.1 * rng.standard_normal(100), 5) + 0.02 * rng.standard_normal(500)
    grouped = ood_evaluation(Oracle(), X, y, UNIT_BOX, groups=g, n_boot=500, rng=0).table
    naive = ood_evaluation(Oracle(), X, y, UNIT_BOX, n_boot=500, rng=0).table
    # the oracle's predictions do not depend on the folds: same points, but 5 windows of one
    # specimen are not 5 independent samples, and only the group bootstrap says so
    np.testing.assert_allclose(grouped["rmse"], naive["rmse"])
    width = (grouped["rmse_high"] - grouped["rmse_low"]) / (naive["rmse_high"] - naive["rmse_low"])
    assert (width > 1.5).all()
    assert (grouped["n_groups"] * 5 == grouped["n_samples"]).all()


def test_vectorized_group_bootstrap_equals_pooled_metrics_of_the_resampled_rows() -> None:
    X, y = ood_data(7)
    res = ood_evaluation(LinearGauss(), X, y, UNIT_BOX, n_boot=10, rng=0)
    metrics = ("rmse", "mae", "r2", "max_error", "nlpd", "crps", "coverage_0.5", "coverage_0.95",
               "miscalibration_area", "sharpness", "mean_std_residual", "std_std_residual")
    rng = np.random.default_rng(0)
    for _, sub in res.predictions.groupby("split"):
        codes = np.unique(sub["row"], return_inverse=True)[1].reshape(-1)
        G = codes.max() + 1
        counts = np.vstack([np.ones(G, dtype=int), rng.multinomial(G, np.full(G, 1 / G), size=3)])
        stats = _group_stats(sub, codes, counts, metrics)
        for b in range(counts.shape[0]):
            rows = sub.iloc[np.repeat(np.arange(len(sub)), counts[b][codes])]
            expect = pooled_metrics(rows)
            for m in metrics:
                assert stats[m][b] == pytest.approx(expect[m], rel=1e-9, abs=1e-12), m


def test_reference_declines_when_the_box_holds_too_few_samples() -> None:
    X, y = ood_data(8, n=120)  # about 13 samples inside the unit box of [-1, 2]^2
    res = ood_evaluation(Oracle(), X, y, UNIT_BOX, n_boot=50, rng=0)
    n_in = int(np.all((X >= 0) & (X <= 1), axis=1).sum())
    assert n_in < 20
    assert not res.ok and res.table.empty and res.predictions.empty
    assert f"the training box holds {n_in} sample(s), fewer than min_samples=20" in res.declined[0]
    assert "ood_fraction" in res.declined[0] and "points" in res.declined[0]
    assert "rmse_ratio_low" in res.table.columns
    assert ood_evaluation(Oracle(), X, y, UNIT_BOX, min_samples=n_in, n_boot=50, rng=0).ok


def test_ood_evaluation_with_real_surrogates_silences_extrapolation_warnings() -> None:
    X, y = ood_data(9, n=150, low=-0.5, high=1.5)
    with pytest.warns(OutOfDomainWarning):  # the models warn when they extrapolate ...
        PCE(degree=2).fit(0.1 * X, y).predict(X)
    with warnings.catch_warnings():  # ... but not through ood_evaluation, where that is the point
        warnings.simplefilter("error", OutOfDomainWarning)
        pce = ood_evaluation(PCE(degree=2), X, y, UNIT_BOX, (0.0, 0.25, np.inf), n_splits=3, n_boot=200, rng=0)
        gp = ood_evaluation(GPR(n_restarts=0, random_state=0), X, y, UNIT_BOX, (0.0, 0.25, np.inf),
                            n_splits=3, n_boot=200, rng=0)
    for res in (pce, gp):
        assert res.ok and (res.table["n_samples"] >= 20).all()
        assert np.isfinite(res.table[["rmse", "nlpd", "crps", "coverage_0.95"]].to_numpy()).all()
    # the quadratic PCE holds the exact function form: inside, its error is the noise (sd 0.1)
    assert pce.table.loc[0, "rmse_low"] <= 0.1 <= pce.table.loc[0, "rmse_high"]
    assert gp.table["rmse_ratio_low"].iloc[-1] > 1.0


def test_ood_evaluation_bad_input() -> None:
    X, y = ood_data(10, n=200)
    with pytest.raises(InputError, match=r"X must be \(n, p\) and y \(n,\)"):
        ood_evaluation(Oracle(), X, y[:-1], UNIT_BOX)
    with pytest.raises(InputError, match="groups has shape"):
        ood_evaluation(Oracle(), X, y, UNIT_BOX, groups=np.arange(5))
    with pytest.raises(InputError, match="edges must be at least two strictly increasing"):
        ood_evaluation(Oracle(), X, y, UNIT_BOX, edges=(0.0, 0.5, 0.25))
    with pytest.raises(InputError, match="edges must be"):
        ood_evaluation(Oracle(), X, y, UNIT_BOX, edges=(0.5,))
    with pytest.raises(InputError, match="min_samples must be an integer >= 2, got 1"):
        ood_evaluation(Oracle(), X, y, UNIT_BOX, min_samples=1)
    with pytest.raises(InputError, match="n_splits must be an integer >= 2, got 1"):
        ood_evaluation(Oracle(), X, y, UNIT_BOX, n_splits=1)
    with pytest.raises(InputError, match="box has 3 features but X has 2 columns"):
        ood_evaluation(Oracle(), X, y, [[0, 1], [0, 1], [0, 1]])
    with pytest.raises(InputError, match="shape \\(p, 2\\)"):
        ood_evaluation(Oracle(), X, y, [0, 1])
    with pytest.raises(InputError, match="unknown metric 'rsme'"):
        ood_evaluation(Oracle(), X, y, UNIT_BOX, metrics=("rsme",))
    with pytest.raises(InputError, match="confidence must lie in"):
        ood_evaluation(Oracle(), X, y, UNIT_BOX, confidence=95)
    g = np.arange(200)
    inside = np.all((X >= 0) & (X <= 1), axis=1)
    g[inside] = 1000 + np.arange(inside.sum()) % 3  # three specimens in the box
    with pytest.raises(InputError, match=r"box holds 3 group\(s\), fewer than n_splits=5: lower n_splits"):
        ood_evaluation(Oracle(), X, y, UNIT_BOX, groups=g, min_samples=10)
    with pytest.raises(InputError, match="one output at a time"):
        ood_evaluation(Oracle(), X, np.stack([y, y], axis=1), UNIT_BOX)
