"""Surrogates with honest uncertainty: Gaussian-process regression and polynomial chaos.

* :class:`GPR` (gpytorch, exact GP, learned/fixed/heteroscedastic noise),
  :class:`SparseGPR` (Titsias' sparse GP with inducing points, for large training sets) and
  :class:`PCE` (chaospy bases, OLS or sparse regression, analytic LOO and Sobol
  indices) are scikit-learn regressors (:mod:`~stochhom.surrogates.base`);
* :func:`training_data` builds ``X``, ``y`` and ``groups`` from an apparent-properties
  ``Dataset``; :class:`SPDTransform` keeps predicted tensors positive definite;
* :func:`load` reads any saved surrogate back; :func:`predict_table` predicts a table of
  input points (mean, standard deviation, interval, split) and refuses extrapolation;
* :func:`propagate` pushes an :class:`InputDistribution` through a surrogate and
  splits the output variance into input, aleatoric and epistemic parts;
  :func:`sobol_indices` gives first and total Sobol indices with intervals;
* :class:`AdaptiveDesign` chooses the next solves where they reduce a GP's integrated
  variance over the input distribution most (:mod:`~stochhom.surrogates.adaptive`);
  :class:`CoKriging` combines many cheap low-fidelity solves with few high-fidelity ones
  (Kennedy and O'Hagan's autoregressive model, :mod:`~stochhom.surrogates.cokriging`).

``GPR`` and ``SparseGPR`` import torch and gpytorch on first use.
"""

from typing import Any

from .adaptive import AdaptiveDesign
from .base import Standardizer, SurrogateBase
from .cokriging import CoKriging
from .data import TrainingData, default_parameters, training_data
from .distributions import InputDistribution, input_distribution
from .pce import PCE
from .persistence import load, predict_table
from .propagation import PropagationResult, propagate
from .sensitivity import SobolIndices, sobol_indices
from .spd import SPDTransform

__all__ = [
    "GPR",
    "SparseGPR",
    "PCE",
    "load",
    "predict_table",
    "InputDistribution",
    "input_distribution",
    "training_data",
    "TrainingData",
    "default_parameters",
    "SPDTransform",
    "propagate",
    "PropagationResult",
    "sobol_indices",
    "SobolIndices",
    "Standardizer",
    "SurrogateBase",
    "AdaptiveDesign",
    "CoKriging",
]


def __dir__() -> list[str]:
    return sorted({*globals(), "GPR", "SparseGPR"})


def __getattr__(name: str) -> Any:
    if name == "GPR":
        from .gpr import GPR

        return GPR
    if name == "SparseGPR":
        from .sgpr import SparseGPR

        return SparseGPR
    raise AttributeError(f"module 'stochhom.surrogates' has no attribute {name!r}")
