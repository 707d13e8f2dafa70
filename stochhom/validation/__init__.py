"""Validation of surrogates: leakage-safe splits, out-of-distribution evaluation and probabilistic metrics.

* :mod:`~stochhom.validation.splits`: grouped train/validation/test splits and K-folds
  (scikit-learn splitters), the leakage guard, OOD splits and extrapolation distances;
* :mod:`~stochhom.validation.metrics`: RMSE, MAE, R²/Q², NLPD, CRPS, coverage,
  calibration curves, PIT, sharpness, and a calibration check with binomial bands;
* :mod:`~stochhom.validation.evaluate`: every metric per fold and split in one table,
  OOD degradation ratios, the OOD evaluation with sample sizes and bootstrap intervals
  (:func:`ood_evaluation`), and the naive-against-grouped leakage demonstration;
* :mod:`~stochhom.validation.plots`: the matching figures (matplotlib ``Figure``).
"""

from . import metrics, plots, splits
from .evaluate import (
    OODEvaluation,
    cv_folds,
    degradation,
    evaluate,
    leakage_demonstration,
    ood_evaluation,
    ood_folds,
)
from .metrics import (
    CalibrationCheck,
    calibration_check,
    calibration_curve,
    coverage,
    crps,
    miscalibration_area,
    nlpd,
    pit,
    probabilistic_metrics,
    sharpness,
)
from .splits import (
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
    stratified_grouped_kfold,
    train_val_test_split,
    training_box,
    warn_if_windows,
)

__all__ = [
    "metrics", "plots", "splits",
    "evaluate", "degradation", "leakage_demonstration", "cv_folds", "ood_folds", "ood_evaluation", "OODEvaluation",
    "probabilistic_metrics", "calibration_check", "CalibrationCheck", "calibration_curve", "coverage", "crps",
    "nlpd", "pit", "sharpness", "miscalibration_area",
    "GroupedSplitter", "grouped_kfold", "stratified_grouped_kfold", "leave_one_group_out", "train_val_test_split",
    "check_leakage", "check_split_groups", "warn_if_windows", "groups_from",
    "extrapolation_distance", "training_box", "ood_box_split", "ood_shells", "ood_threshold_split",
]
