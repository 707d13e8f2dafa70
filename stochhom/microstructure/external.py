"""PoreSpy generators and the user's own images, behind the stochhom interfaces.

PoreSpy adapter
    ``"porespy.blobs"``, ``"porespy.overlapping_spheres"`` and
    ``"porespy.polydisperse_spheres"`` call the PoreSpy generators of the same names
    (label 1 is PoreSpy's ``True`` phase, the pores; 0 the solid). PoreSpy is
    imported lazily, and its side effects are undone: importing it adds a handler to
    the root logger and calls ``numpy.seterr(divide="ignore", invalid="ignore")``,
    and its generators reseed NumPy's *global* random state. stochhom restores the
    logger, the error state and the global random state, and seeds each call from
    the sample's own generator so that ensembles stay reproducible. Periodicity is
    reported truthfully: ``blobs`` is periodic (``periodic=True``, one parallel
    division), the sphere packings are not.

Your own images
    :func:`load_specimens` reads ``.npy``, ``.npz``, ``.tif``/``.tiff`` and raw volumes
    into an ensemble ``Dataset`` (one sample per file, ``specimen`` = file name),
    marked non-periodic. Cut SVEs from them with
    :func:`~stochhom.microstructure.windows`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..io import load_image
from .ensemble import (
    AXES,
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    Generator,
    _positive,
    label_dtype,
    register,
    two_phase,
)

__all__ = ["import_porespy", "load_specimens", "read_raw"]


@contextlib.contextmanager
def _isolated() -> Iterator[None]:
    """Undo what PoreSpy does to global state: root-logger handlers and level, numpy's
    error state and numpy's global random state."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    err = np.geterr()
    state = np.random.get_state()  # noqa: NPY002 - PoreSpy reseeds the legacy global state
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
        np.seterr(**err)
        np.random.set_state(state)  # noqa: NPY002


def import_porespy() -> Any:
    """Import PoreSpy without its side effects on logging and numpy (see module docstring)."""
    with _isolated():
        try:
            import porespy
        except ImportError as exc:  # pragma: no cover - porespy is a dependency
            raise InputError(f"the PoreSpy generators need the 'porespy' package ({exc})") from None
        try:
            porespy.settings.tqdm["disable"] = True
        except (AttributeError, KeyError, TypeError):  # pragma: no cover - older PoreSpy
            pass
    return porespy


def _porespy_call(name: str, shape: tuple[int, ...], rng: np.random.Generator, **kwargs: Any) -> np.ndarray:
    ps = import_porespy()
    seed = int(rng.integers(0, 2**31 - 1))
    with _isolated():
        im = getattr(ps.generators, name)(shape=list(shape), seed=seed, **kwargs)
    return np.asarray(im).astype(np.uint8)


def _porosity(p: Any) -> float:
    try:
        v = float(p)
    except (TypeError, ValueError):
        raise InputError(f"porosity must be a number in (0, 1), got {p!r}") from None
    if not 0 < v < 1:
        raise InputError(f"porosity must lie in (0, 1), got {p!r}")
    return v


def _blobs(shape, rng, *, voxel_size=1.0, workers=1, porosity=0.5, blobiness=1):
    """PoreSpy ``blobs`` (periodic): Gaussian-filtered noise cut at ``porosity``."""
    return _porespy_call("blobs", shape, rng, porosity=_porosity(porosity), blobiness=blobiness, periodic=True)


def _overlapping_spheres(shape, rng, *, voxel_size=1.0, workers=1, porosity=0.5, radius=5.0):
    """PoreSpy ``overlapping_spheres`` (not periodic); ``radius`` in physical units."""
    r = max(1, int(round(float(radius) / voxel_size)))
    return _porespy_call("overlapping_spheres", shape, rng, r=r, porosity=_porosity(porosity))


def _polydisperse_spheres(shape, rng, *, voxel_size=1.0, workers=1, porosity=0.5, radius=5.0, radius_std=1.0,
                          nbins=5, r_min=2):
    """PoreSpy ``polydisperse_spheres`` (not periodic): normal radii (physical units)."""
    from scipy import stats

    dist = stats.norm(loc=float(radius) / voxel_size, scale=float(radius_std) / voxel_size)
    return _porespy_call("polydisperse_spheres", shape, rng, porosity=_porosity(porosity), dist=dist, nbins=nbins,
                         r_min=r_min)


register(Generator("porespy.blobs", _blobs, True, "PoreSpy blobs (periodic)",
                   ranges={"porosity": FRACTION, "blobiness": POSITIVE}, labels=two_phase))
register(Generator("porespy.overlapping_spheres", _overlapping_spheres, False,
                   "PoreSpy overlapping spheres (not periodic)", ("radius",),
                   ranges={"porosity": FRACTION, "radius": POSITIVE}, labels=two_phase))
register(Generator("porespy.polydisperse_spheres", _polydisperse_spheres, False,
                   "PoreSpy polydisperse spheres (not periodic)", ("radius",),
                   ranges={"porosity": FRACTION, "radius": POSITIVE, "radius_std": NON_NEGATIVE, "nbins": COUNT,
                           "r_min": NON_NEGATIVE}, labels=two_phase))


def read_raw(path: str | Path, shape: Sequence[int], dtype: Any = np.uint8, order: str = "C") -> np.ndarray:
    """Read a raw volume (headerless binary) of the given shape and dtype."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"raw file {str(path)!r} does not exist")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InputError(f"invalid raw dtype {dtype!r}") from None
    shp = tuple(int(s) for s in shape)
    expected = int(np.prod(shp)) * dt.itemsize
    size = path.stat().st_size
    if size != expected:
        raise InputError(f"{path}: {size} bytes, but shape {shp} of {dt} needs {expected}")
    return np.fromfile(path, dtype=dt).reshape(shp, order=order)


def load_specimens(
    paths: str | Path | Sequence[str | Path],
    *,
    voxel_size: float = 1.0,
    raw_shape: Sequence[int] | None = None,
    raw_dtype: Any = np.uint8,
    key: str | None = None,
    threshold: str | float | Sequence[float] | None = None,
    phases: int = 2,
    crop: Sequence[Sequence[int]] | None = None,
    downsample: int = 1,
    invert: bool = False,
) -> xr.Dataset:
    """Load label images (or segment grey-level scans) as specimens (non-periodic) into an ensemble ``Dataset``.

    Parameters
    ----------
    paths : str or pathlib.Path, or a sequence of them
        ``.npy``, ``.npz``, ``.tif``/``.tiff`` or ``.raw`` files (all of one shape).
    voxel_size : float
        Physical voxel size.
    raw_shape, raw_dtype
        Shape and dtype of ``.raw`` volumes.
    key : str, optional
        Array name inside ``.npz`` files.
    threshold : "otsu", float or sequence of float, optional
        Segment grey-level scans (:func:`~stochhom.microstructure.segmentation.segment`):
        Otsu's threshold or given levels. Without it the files must hold labels.
    phases, crop, downsample, invert
        As in :func:`~stochhom.microstructure.segmentation.segment` (with ``threshold``
        only); ``voxel_size`` is that of the scan, the result's is ``downsample`` times it.

    Returns
    -------
    xarray.Dataset
        ``phase`` with one sample per file; ``specimen`` is the file name;
        ``attrs["periodic"] = 0``; with ``threshold``, ``attrs["segmentation"]`` (JSON:
        the levels used per file, crop, downsample).

    Raises
    ------
    InputError
        Missing or unreadable files, non-integer labels, mismatched shapes.
    """
    h = _positive("voxel_size", voxel_size)
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise InputError("no image files given")
    if threshold is None and (crop is not None or downsample != 1 or invert):
        raise InputError("crop, downsample and invert apply to grey-level scans: give threshold='otsu' or levels")
    images, names, levels = [], [], []
    for p in items:
        p = Path(p)
        if p.suffix.lower() == ".raw":
            if raw_shape is None:
                raise InputError(f"{p}: raw volumes need raw_shape=(nx, ny[, nz])")
            arr = read_raw(p, raw_shape, raw_dtype)
        else:
            arr = load_image(p, key=key)
        if threshold is not None:
            from .segmentation import segment

            try:
                arr, lev = segment(arr, threshold, phases=phases, crop=crop, downsample=downsample, invert=invert)
            except InputError as exc:
                raise InputError(f"{p}: {exc}") from None
            levels.append([float(v) for v in lev])
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        if arr.dtype.kind not in "iu":
            raise InputError(
                f"{p}: labels must be integers, got {arr.dtype}; segment grey levels with threshold='otsu' "
                "(or given levels), or threshold the image yourself ((image > t).astype(np.uint8))"
            )
        if arr.ndim not in (2, 3):
            raise InputError(f"{p}: expected a 2D or 3D image, got shape {arr.shape}")
        if arr.min() < 0:
            raise InputError(f"{p}: labels must be >= 0")
        images.append(arr)
        names.append(p.name)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise InputError(f"the images have different shapes {sorted(shapes)}; load them separately")
    if threshold is not None:
        h = h * int(downsample)
    top = max(int(im.max()) for im in images)
    stack = np.stack([im.astype(label_dtype(top), copy=False) for im in images])
    shp = stack.shape[1:]
    coords: dict[str, Any] = {ax: (ax, (np.arange(s) + 0.5) * h) for ax, s in zip(AXES, shp)}
    coords["sample"] = ("sample", np.arange(len(images)))
    coords["specimen"] = ("sample", np.array(names))
    from .. import __version__

    return xr.Dataset(
        {"phase": (("sample", *AXES[: len(shp)]), stack)},
        coords=coords,
        attrs={"generator": "file", "periodic": 0, "voxel_size": h, "stochhom_version": __version__,
               "sources": "\n".join(str(Path(p)) for p in items),
               **({} if threshold is None else {"segmentation": json.dumps(
                   {"threshold": threshold if isinstance(threshold, str) else levels[0], "levels": levels,
                    "phases": int(phases), "crop": None if crop is None else [list(c) for c in crop],
                    "downsample": int(downsample), "invert": bool(invert)})})},
    )
