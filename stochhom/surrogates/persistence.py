"""Saved surrogates: load any of them by its format marker, and predict a table of inputs.

Every surrogate saves itself to a directory holding one JSON marker with a ``format`` key:

===================  ==================================  ===============================
marker file          ``format``                          class
===================  ==================================  ===============================
``bounded.json``     ``stochhom.BoundedSurrogate``       :class:`~stochhom.surrogates.bounded.BoundedSurrogate`
``tensor.json``      ``stochhom.TensorSurrogate``        :class:`~stochhom.surrogates.tensor.TensorSurrogate`
``log_inputs.json``  ``stochhom.LogInputs``              :class:`~stochhom.surrogates.warping.LogInputs`
``gpr.json``         ``stochhom.GPR``                    :class:`~stochhom.surrogates.gpr.GPR`
``sgpr.json``        ``stochhom.SparseGPR``              :class:`~stochhom.surrogates.sgpr.SparseGPR`
``pce.json``         ``stochhom.PCE``                    :class:`~stochhom.surrogates.pce.PCE`
===================  ==================================  ===============================

:func:`load` reads the marker and calls that class's ``load``. :func:`predict_table` predicts
a :class:`pandas.DataFrame` of inputs (``stochhom predict``): mean, standard deviation, the
central interval and, where the model splits it, the epistemic and aleatoric parts, and it
refuses inputs outside the training box unless asked to extrapolate.

The saved models keep no input names; :func:`feature_names` takes them from the model where
it has them (a :class:`~stochhom.surrogates.bounded.PhysicalBounds`), else from ``surrogates.json`` of the
results directory that ``stochhom run`` wrote the model into (``RESULTS/surrogates/T__M``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["MARKERS", "load", "feature_names", "output_names", "training_box", "predict_table"]

#: Marker file -> (format string, class name), in the order :func:`load` looks for them.
MARKERS = {
    "bounded.json": ("stochhom.BoundedSurrogate", "BoundedSurrogate"),
    "tensor.json": ("stochhom.TensorSurrogate", "TensorSurrogate"),
    "log_inputs.json": ("stochhom.LogInputs", "LogInputs"),
    "gpr.json": ("stochhom.GPR", "GPR"),
    "sgpr.json": ("stochhom.SparseGPR", "SparseGPR"),
    "pce.json": ("stochhom.PCE", "PCE"),
    "cokriging.json": ("stochhom.CoKriging", "CoKriging"),
}


def _class(name: str) -> Any:
    if name == "BoundedSurrogate":
        from .bounded import BoundedSurrogate

        return BoundedSurrogate
    if name == "TensorSurrogate":
        from .tensor import TensorSurrogate

        return TensorSurrogate
    if name == "LogInputs":
        from .warping import LogInputs

        return LogInputs
    if name == "GPR":
        from .gpr import GPR

        return GPR
    if name == "SparseGPR":
        from .sgpr import SparseGPR

        return SparseGPR
    if name == "CoKriging":
        from .cokriging import CoKriging

        return CoKriging
    from .pce import PCE

    return PCE


def load(path: str | Path) -> Any:
    """Load a surrogate saved by any stochhom surrogate's ``save``, recognized by its marker file.

    Parameters
    ----------
    path : str or pathlib.Path
        The directory given to ``save`` (e.g. ``RESULTS/surrogates/conductivity_eigenvalues_0__gpr``).

    Returns
    -------
    estimator
        The fitted model (:data:`MARKERS` lists the classes).

    Raises
    ------
    InputError
        A missing path, a directory without a marker, or a marker of another format.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist; give the directory a surrogate was saved to (e.g. "
                         "RESULTS/surrogates/TARGET__gpr of 'stochhom run')")
    if not p.is_dir():
        raise InputError(f"{str(p)!r} is a file; a saved surrogate is a directory (with one of "
                         f"{', '.join(MARKERS)})")
    for marker, (fmt, cls) in MARKERS.items():
        if not (p / marker).is_file():
            continue
        try:
            found = json.loads((p / marker).read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            found = None
        if found != fmt:
            raise InputError(f"{str(p / marker)!r} does not hold a saved {cls} (format {found!r}, expected "
                             f"{fmt!r}); save the model again with its save() method")
        return _class(cls).load(p)
    hint = ""
    if (p / "surrogates").is_dir():
        names = sorted(q.name for q in (p / "surrogates").iterdir() if q.is_dir())
        hint = f"; this looks like a results directory: pick a model in {str(p / 'surrogates')!r}: {names}"
    raise InputError(f"{str(p)!r} holds no saved surrogate (none of {', '.join(MARKERS)}){hint}")


def _results_info(path: Path) -> dict[str, Any] | None:
    for folder in (path.parent, path.parent.parent):
        f = folder / "surrogates.json"
        if f.is_file():
            try:
                return json.loads(f.read_text())
            except (OSError, ValueError):
                return None
    return None


def feature_names(model: Any, path: str | Path | None = None) -> list[str] | None:
    """The input names of a saved model, or None when neither it nor its results directory has them.

    From, in order: the model's ``feature_names_`` or its :class:`~stochhom.surrogates.bounded.PhysicalBounds`
    ``features`` (a wrapper is searched down to the latent model), then ``features`` of
    ``surrogates.json`` next to the model's folder (``stochhom run`` writes it).
    """
    n = int(getattr(model, "n_features_in_", 0))
    if path is not None:
        info = _results_info(Path(path))
        if info and isinstance(info.get("features"), list) and len(info["features"]) == n:
            return [str(f) for f in info["features"]]
    m = model
    while m is not None:
        bounds = getattr(m, "bounds", None)
        names = getattr(bounds, "features", None) or m.__dict__.get("feature_names_")
        if names is not None and len(names) == n and not all(str(x) == f"x{i}" for i, x in enumerate(names)):
            return [str(x) for x in names]
        m = m.__dict__.get("estimator_")
    return None


def output_names(model: Any, path: str | Path | None = None) -> list[str]:
    """Names of the predicted outputs: the target of the folder name ``TARGET__MODEL``
    (``stochhom run``'s convention), the entries ``TARGET_i_j`` of a tensor surrogate, or
    ``y``/``y0, y1, ...`` when the folder name says nothing."""
    target = None
    if path is not None and "__" in Path(path).name:
        target = Path(path).name.rsplit("__", 1)[0]
    if hasattr(model, "entry_laws"):
        from .tensor import entry_names

        return entry_names(target or "tensor", int(model.m_))
    q = int(getattr(model, "n_outputs_", 1))
    base = target or "y"
    if q == 1:
        return [base]
    return [f"{base}_{j}" for j in range(q)]


def training_box(model: Any) -> tuple[Any, Any] | None:
    """Per-input ``(min, max)`` of the training inputs, in the model's physical inputs; None if unknown.

    A :class:`~stochhom.surrogates.warping.LogInputs` trains its latent model on :math:`\\ln\\theta`; its box is
    mapped back with :math:`\\exp`.
    """
    import numpy as np

    from .warping import LogInputs

    if isinstance(model, LogInputs):
        box = training_box(model.estimator_)
        if box is None:
            return None
        lo, hi = np.array(box[0], dtype=float), np.array(box[1], dtype=float)
        cols = list(model.columns)
        lo[cols], hi[cols] = np.exp(lo[cols]), np.exp(hi[cols])
        return lo, hi
    if "estimator_" in model.__dict__:
        return training_box(model.estimator_)
    if "x_min_" in model.__dict__:
        return np.asarray(model.x_min_, dtype=float), np.asarray(model.x_max_, dtype=float)
    if "X_bounds_" in model.__dict__:
        b = np.asarray(model.X_bounds_, dtype=float)
        return b[:, 0], b[:, 1]
    return None


def _excess(X: Any, lo: Any, hi: Any) -> Any:
    """Distance outside the box per point and input, in units of each input's training range."""
    import numpy as np

    width = hi - lo
    scale = np.where(width > 0, width, np.maximum(np.abs(hi), 1.0))  # a fixed input: relative to its value
    return np.maximum(np.maximum(lo - X, X - hi), 0.0) / scale


def _refuse(X: Any, names: list[str], lo: Any, hi: Any, excess: Any) -> None:
    import numpy as np

    rows = np.flatnonzero(excess.max(axis=1) > 0)
    r, c = np.unravel_index(int(np.argmax(excess)), excess.shape)
    x = float(X[r, c])
    side, edge = ("maximum", hi[c]) if x > hi[c] else ("minimum", lo[c])
    box = ", ".join(f"{n} in [{a:.6g}, {b:.6g}]" for n, a, b in zip(names, lo, hi))
    raise InputError(
        f"{rows.size} of {X.shape[0]} point(s) lie outside the training box ({box}); the farthest, row {int(r)}: "
        f"input {names[c]}: {x:.6g}, {100 * float(excess[r, c]):.3g} % of the training range beyond its {side} "
        f"{float(edge):.6g}. The surrogate would extrapolate there: keep the inputs inside the box, or pass "
        "--allow-extrapolation (allow_extrapolation=True) to predict anyway")


def predict_table(
    model: Any, frame: Any, level: float = 0.9, allow_extrapolation: bool = False,
    features: list[str] | None = None, outputs: list[str] | None = None,
) -> Any:
    """Predict every row of a table of inputs with a fitted surrogate.

    Parameters
    ----------
    model : estimator
        A fitted stochhom surrogate (:func:`load`).
    frame : pandas.DataFrame
        One row per point, a column per input named as ``features``; other columns are
        copied to the result.
    level : float
        Probability of the central interval, in (0, 1).
    allow_extrapolation : bool
        Predict points outside the training box too (else :class:`InputError`).
    features : list of str, optional
        The input names, in the model's order; default :func:`feature_names` of the model.
    outputs : list of str, optional
        Output names; default :func:`output_names` (``y``, ...).

    Returns
    -------
    pandas.DataFrame
        The input columns, ``extrapolation`` (the largest distance outside the training box,
        in units of the training range of that input; 0 inside), then per output ``O``:
        ``O_mean``, ``O_std`` (total predictive standard deviation of a new observation),
        ``O_lower_P`` and ``O_upper_P`` (the central interval of probability ``P`` %, from
        the model's predictive law: Gaussian, truncated Gaussian for bounded surrogates, or
        the draws of a tensor surrogate), and where the model has ``predict_components``
        (GPR, SparseGPR, and LogInputs over them) ``O_epistemic_std`` and ``O_aleatoric_std``.

    Raises
    ------
    InputError
        Missing or non-numeric input columns, unknown input names, a level outside (0, 1),
        or points outside the training box without ``allow_extrapolation`` (the message
        gives how many, and the farthest input with its distance).
    """
    import numpy as np
    import pandas as pd

    from ..errors import OutOfDomainWarning
    from .predictive import Normal

    if not 0.0 < float(level) < 1.0:
        raise InputError(f"level must lie strictly between 0 and 1 (e.g. 0.9), got {level!r}")
    names = features if features is not None else feature_names(model)
    if names is None:
        raise InputError("the saved model does not keep the names of its inputs and no surrogates.json of a results "
                         "directory is next to it; give the names (features=[...]) in the model's input order")
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InputError(f"the inputs lack the column(s) {missing}; the model takes {list(names)} (in any column "
                         f"order), the table has {list(frame.columns)}")
    if len(frame) == 0:
        raise InputError("the table of inputs has no rows")
    try:
        X = frame[list(names)].to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = [n for n in names if not pd.api.types.is_numeric_dtype(frame[n])]
        raise InputError(f"input column(s) {bad} are not numeric; give numbers") from None
    if not np.all(np.isfinite(X)):
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise InputError(f"row {int(r)}, input {names[c]}: {X[r, c]!r} is not a finite number; fill or drop it")
    out = frame.copy()
    box = training_box(model)
    if box is not None:
        lo, hi = box
        excess = _excess(X, lo, hi)
        if excess.max() > 0 and not allow_extrapolation:
            _refuse(X, list(names), lo, hi, excess)
        out["extrapolation"] = excess.max(axis=1)
    outs = outputs if outputs is not None else output_names(model)
    tag = f"{100 * float(level):g}"
    cols: dict[str, Any] = {}
    with warnings.catch_warnings():
        if allow_extrapolation:
            warnings.simplefilter("ignore", OutOfDomainWarning)
        if hasattr(model, "entry_laws"):  # a tensor: the law of each independent entry, by draws
            target = outs[0].rsplit("_", 2)[0] if outs else "tensor"
            laws = model.entry_laws(X, target)
            stats = {o: (law.mean, law.std, *law.interval(level)) for o, law in zip(outs, laws.values())}
            parts = None
        else:
            parts = None
            if hasattr(model, "predictive"):  # e.g. a bounded surrogate: a truncated law
                law = model.predictive(X)
            elif hasattr(model, "predict_components"):
                comp = model.predict_components(X)
                law = Normal(comp["mean"], comp["std"])
                parts = {k: np.asarray(comp[k], dtype=float).reshape(X.shape[0], -1)
                         for k in ("epistemic_std", "aleatoric_std")}
            else:
                mean, std = model.predict(X, return_std=True)
                law = Normal(mean, std)
            lower, upper = law.interval(level)
            arrays = [np.asarray(a, dtype=float).reshape(X.shape[0], -1) for a in (law.mean, law.std, lower, upper)]
            stats = {o: tuple(a[:, j] for a in arrays) for j, o in enumerate(outs)}
    for j, o in enumerate(outs):
        mean, std, lower, upper = stats[o]
        cols[f"{o}_mean"], cols[f"{o}_std"] = mean, std
        cols[f"{o}_lower_{tag}"], cols[f"{o}_upper_{tag}"] = lower, upper
        if parts is not None:
            cols[f"{o}_epistemic_std"] = parts["epistemic_std"][:, j]
            cols[f"{o}_aleatoric_std"] = parts["aleatoric_std"][:, j]
    clash = sorted(set(cols) & set(out.columns))
    if clash:
        raise InputError(f"the inputs already have the output column(s) {clash}; rename or drop them")
    result = pd.concat([out.reset_index(drop=True), pd.DataFrame(cols)], axis=1)
    result.attrs["level"] = float(level)
    result.attrs["outputs"] = list(outs)
    if box is None:
        result.attrs["box"] = "unknown"
    return result
