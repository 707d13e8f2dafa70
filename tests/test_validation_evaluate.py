"""Evaluation tables, OOD degradation, the leakage demonstration and the validation figures."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from stochhom.errors import InputError, LeakageError
from stochhom.surrogates import GPR
from stochhom.validation import (
    degradation,
    evaluate,
    grouped_kfold,
    leakage_demonstration,
    ood_folds,
    plots,
)

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
    pd.testing.assert_frame_equal(demo, again)  # deterministic under a seed


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
