r"""The estimator contract shared by every surrogate, and the scalings it relies on.

Every surrogate of :mod:`stochhom.surrogates` is a scikit-learn regressor:

* hyperparameters only in ``__init__``, stored verbatim (so ``clone`` works);
* ``fit(X, y, **fit_params)`` returns ``self``; learned state ends in ``_``;
* ``predict(X, return_std=False)`` returns the predictive mean, and with
  ``return_std=True`` also the total predictive standard deviation;
* ``X`` is ``(n, p)``, ``y`` is ``(n,)`` or ``(n, q)``; predictions have the shape of
  ``y`` (1-D for 1-D ``y``).

Inputs and outputs are scaled internally (:class:`Standardizer`): the models see
zero-mean, unit-variance columns, which makes default priors and initial length
scales meaningful whatever the units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import InputError

__all__ = ["Standardizer", "SurrogateBase", "check_X", "check_Xy", "check_is_fitted"]


def _as_2d(a: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric, got {type(a).__name__}") from None
    if arr.ndim == 1 and name == "X":
        raise InputError("X must be 2-D (n_samples, n_features); reshape a single feature with X.reshape(-1, 1)")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise InputError(f"{name} has {bad} row(s) with NaN or inf; drop failed samples first")
    return arr


def check_Xy(X: Any, y: Any, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate training data: ``(X (n, p), Y (n, q), y_was_1d)``."""
    Xa = _as_2d(X, "X")
    y_arr = np.asarray(y)
    one_d = y_arr.ndim == 1
    Ya = _as_2d(y, "y")
    if Xa.shape[0] != Ya.shape[0]:
        raise InputError(f"X and y have different numbers of samples: {Xa.shape[0]} and {Ya.shape[0]}")
    if Xa.shape[0] < min_samples:
        raise InputError(f"at least {min_samples} samples are needed to fit, got {Xa.shape[0]}")
    return Xa, Ya, one_d


def check_X(X: Any, n_features: int) -> np.ndarray:
    """Validate prediction inputs against the number of features seen in ``fit``."""
    Xa = _as_2d(X, "X")
    if Xa.shape[1] != n_features:
        raise InputError(f"X has {Xa.shape[1]} feature(s) but the surrogate was fitted with {n_features}")
    return Xa


def check_is_fitted(model: Any, attribute: str = "n_features_in_") -> None:
    if not hasattr(model, attribute):
        raise InputError(f"this {type(model).__name__} is not fitted yet; call fit(X, y) first")


class Standardizer:
    r"""Affine scaling of columns to zero mean and unit variance, :math:`z = (x - m)/s`.

    Constant columns keep :math:`s = 1`. Standard deviations transform as
    :math:`\sigma_x = s\,\sigma_z`.
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=float)
        self.scale = np.asarray(scale, dtype=float)

    @classmethod
    def fit(cls, a: np.ndarray) -> Standardizer:
        mean = a.mean(axis=0)
        scale = a.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        return cls(mean, scale)

    def transform(self, a: np.ndarray) -> np.ndarray:
        return (a - self.mean) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale + self.mean

    def inverse_std(self, s: np.ndarray) -> np.ndarray:
        return s * self.scale

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        return cls(np.asarray(d["mean"]), np.asarray(d["scale"]))


class SurrogateBase(RegressorMixin, BaseEstimator):
    """Base class: scikit-learn regressor plumbing shared by :class:`GPR` and :class:`PCE`.

    Subclasses implement ``fit`` and ``predict``; they call :func:`check_Xy` and set
    ``n_features_in_``, ``n_outputs_`` and ``_y_1d_`` in ``fit``, and use
    ``_shape_output`` to return predictions with the shape of the training ``y``.
    """

    def _shape_output(self, a: np.ndarray) -> np.ndarray:
        return a[:, 0] if getattr(self, "_y_1d_", False) else a

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = False
        return tags
