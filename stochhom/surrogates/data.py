r"""Training data for surrogates, straight from an apparent-properties ``Dataset``.

A surrogate learns :math:`\theta \mapsto Z` from the samples of a study: the inputs
:math:`\theta` are the per-sample parameter coordinates (volume fraction, contrast,
size, ...), the targets are scalar quantities of the apparent properties, and the
*groups* are the specimens, so that cross-validation never puts windows of one
specimen on both sides of a split.

Two views of the same data:

* per sample (:func:`training_data`): every converged SVE is a row; the scatter of
  the replicates at a point is the microstructural (aleatoric) variability, which a
  surrogate with a learned noise model absorbs;
* per point (``per_point=True``): the replicates of each parameter point are
  averaged; the target is the ensemble mean :math:`\bar Z` and its noise variance is
  :math:`s^2/n`, for a GP with fixed per-point noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import InputError
from ..statistics.summary import IDENTIFIERS, scalar_columns

__all__ = ["TrainingData", "training_data", "default_parameters"]

#: Per-sample coordinates that never are inputs of a surrogate.
_NOT_INPUTS = (*IDENTIFIERS, "point", "origin")


@dataclass(frozen=True)
class TrainingData:
    """Inputs, targets and groups for a surrogate.

    Attributes
    ----------
    X : numpy.ndarray, shape (n, p)
    y : numpy.ndarray, shape (n,) or (n, q)
        1-D when one target was asked for by name.
    groups : numpy.ndarray, shape (n,)
        Specimen of each row (per sample), or the point index (per point).
    feature_names, target_names : list of str
    noise_variance : numpy.ndarray or None
        Per point: :math:`s^2/n` of each target (shape of ``y``); NaN where a point
        has a single replicate. None per sample.
    counts : numpy.ndarray or None
        Per point: replicates averaged in each row.
    n_dropped : int
        Failed samples (``converged = 0``) or rows with a non-finite value left out.
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    feature_names: list[str]
    target_names: list[str]
    noise_variance: np.ndarray | None = None
    counts: np.ndarray | None = None
    n_dropped: int = 0


def default_parameters(props: xr.Dataset) -> list[str]:
    """Per-sample numeric coordinates that vary over the dataset (the swept parameters), sorted.

    Sorted by name: the coordinate order of a stored dataset is not stable (zarr lists
    its arrays in no fixed order), and the columns of ``X`` must not depend on it.
    ``volume`` is added when the SVEs have several sizes and no ``size`` coordinate
    says so already.
    """
    names = [str(c) for c, da in props.coords.items()
             if da.dims == ("sample",) and c not in _NOT_INPUTS and da.dtype.kind in "biuf"
             and np.unique(da.values).size > 1]
    names.sort()
    if "size" not in names and "volume" in props and np.unique(props["volume"].values).size > 1:
        names.append("volume")
    return names


def training_data(
    props: xr.Dataset,
    targets: str | Sequence[str] = "bulk_modulus",
    parameters: Sequence[str] | None = None,
    *,
    per_point: bool = False,
    log_targets: bool = False,
) -> TrainingData:
    r"""Build ``X``, ``y`` and ``groups`` from an apparent-properties ``Dataset``.

    Parameters
    ----------
    props : xarray.Dataset
        From :func:`~stochhom.homogenize_ensemble` or a sweep.
    targets : str or sequence of str
        Scalar quantities (:func:`~stochhom.statistics.summary.scalar_columns`), e.g.
        ``"bulk_modulus"``, ``["bulk_modulus", "shear_modulus"]``,
        ``"conductivity_eigenvalues_0"``. One name (a str) gives a 1-D ``y``.
    parameters : sequence of str, optional
        Input coordinates; default :func:`default_parameters` (those that vary).
    per_point : bool
        Average the replicates of each parameter point (see the module docstring).
    log_targets : bool
        Use :math:`\log Z` (positive targets such as moduli: a surrogate in log space
        cannot predict a negative modulus). Per point, the mean and :math:`s^2/n` are
        those of :math:`\log Z`.

    Returns
    -------
    TrainingData
    """
    if not isinstance(props, xr.Dataset) or "sample" not in props.dims:
        raise InputError("expected an apparent-properties xarray.Dataset with a 'sample' dimension")
    names = default_parameters(props) if parameters is None else list(parameters)
    if not names:
        raise InputError("no parameter varies over the dataset; pass parameters=[...] (per-sample coordinates)")
    cols = []
    for name in names:
        if name not in props.variables or props[name].dims != ("sample",):
            known = sorted(str(c) for c, da in props.coords.items() if da.dims == ("sample",))
            raise InputError(f"parameter {name!r} is not a per-sample coordinate; known: {known}")
        if props[name].dtype.kind not in "biuf":
            raise InputError(f"parameter {name!r} is not numeric ({props[name].dtype})")
        cols.append(props[name].values.astype(float))
    X = np.stack(cols, axis=1)
    one = isinstance(targets, str)
    tcols = scalar_columns(props, [targets] if one else list(targets))
    Y = np.stack(list(tcols.values()), axis=1)
    ok = np.isfinite(X).all(axis=1) & np.isfinite(Y).all(axis=1)
    if "converged" in props:
        ok &= props["converged"].values.astype(bool)
    if log_targets:
        if np.any(Y[ok] <= 0):
            raise InputError("log_targets needs positive targets; some converged samples are <= 0")
        Y = np.log(np.where(ok[:, None], Y, 1.0))
    groups = props["specimen"].values if "specimen" in props.coords else props["sample"].values
    n_dropped = int((~ok).sum())
    X, Y, groups = X[ok], Y[ok], np.asarray(groups)[ok]
    if X.shape[0] == 0:
        raise InputError("no converged sample with finite parameters and targets")
    tnames = [f"log_{t}" if log_targets else t for t in tcols]
    if not per_point:
        return TrainingData(X, Y[:, 0] if one and Y.shape[1] == 1 else Y, groups, names, tnames,
                            n_dropped=n_dropped)
    uniq, inv = np.unique(X, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    counts = np.bincount(inv)
    means = np.stack([np.bincount(inv, weights=Y[:, j]) / counts for j in range(Y.shape[1])], axis=1)
    sq = np.stack([np.bincount(inv, weights=(Y[:, j] - means[inv, j]) ** 2) for j in range(Y.shape[1])], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(counts[:, None] > 1, sq / (counts[:, None] - 1), np.nan)
    noise = var / counts[:, None]
    squeeze = one and Y.shape[1] == 1
    return TrainingData(uniq, means[:, 0] if squeeze else means, np.arange(uniq.shape[0]), names, tnames,
                        noise_variance=noise[:, 0] if squeeze else noise, counts=counts, n_dropped=n_dropped)
