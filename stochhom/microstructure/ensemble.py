r"""Reproducible ensembles of statistical volume elements (SVEs) as ``xarray`` datasets.

:func:`generate` draws ``n`` samples of a named generator and returns the ensemble
``Dataset``:

* variable ``phase`` (``uint8``/``uint16``/``uint32`` labels), dims
  ``("sample", "x", "y"[, "z"])``, voxel-centre coordinates in physical units;
* per-sample coordinates ``specimen`` (id of the parent specimen, used for grouped
  cross-validation), ``seed`` (a 63-bit integer that reproduces the sample alone),
  and every scalar generator parameter;
* ``attrs``: ``generator``, ``parameters`` (JSON), ``periodic`` (1 or 0, netCDF has no
  booleans), ``voxel_size``, ``entropy`` (root seed), ``stochhom_version``.

Seeding: the root ``SeedSequence`` spawns one child per sample index ``k``
(``SeedSequence(entropy, spawn_key=(k,))``, exactly what ``spawn`` returns), so
sample ``k`` is bit-identical whether it was generated among 10 or 1000 samples,
alone (``samples=[k]``) or in parallel.

:func:`windows` cuts sub-volumes out of larger specimens; every window keeps its
parent's ``specimen`` and is marked non-periodic.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError, RepresentativenessWarning

__all__ = [
    "GENERATORS",
    "Generator",
    "Range",
    "register",
    "generate",
    "windows",
    "sample_seeds",
    "label_dtype",
    "as_rng",
]

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric generator parameter (declared next to the generator).

    ``low``/``high`` are the bounds (``None``: unbounded), ``closed_low``/``closed_high``
    whether the bound itself is allowed, ``integer`` whether the value must be an integer.
    """

    low: float | None = None
    high: float | None = None
    closed_low: bool = False
    closed_high: bool = False
    integer: bool = False

    def describe(self) -> str:
        """The range in interval notation, e.g. ``(0, 1)`` or ``integers in [1, inf)``."""
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        text = f"{'[' if self.closed_low and self.low is not None else '('}{lo}, {hi}" \
               f"{']' if self.closed_high and self.high is not None else ')'}"
        return f"integers in {text}" if self.integer else text

    def contains(self, value: float) -> bool:
        """Whether a number lies in the range (and is an integer if one is needed)."""
        v = float(value)
        if not np.isfinite(v):
            return False
        if self.integer and v != round(v):
            return False
        if self.low is not None and (v < self.low or (v == self.low and not self.closed_low)):
            return False
        return not (self.high is not None and (v > self.high or (v == self.high and not self.closed_high)))

    def mass_outside(self, dist: Any) -> float:
        """Probability that a ``scipy.stats`` frozen distribution draws outside the range."""
        lo = 0.0 if self.low is None else float(dist.cdf(self.low))
        hi = 0.0 if self.high is None else float(dist.sf(self.high))
        return lo + hi


#: Common ranges.
POSITIVE = Range(0.0, None)
NON_NEGATIVE = Range(0.0, None, closed_low=True)
FRACTION = Range(0.0, 1.0)
COUNT = Range(1.0, None, closed_low=True, integer=True)


@dataclass(frozen=True)
class Generator:
    """A registered microstructure generator.

    Attributes
    ----------
    name : str
    func : callable
        ``func(shape, rng, voxel_size=..., workers=..., **params)`` returning an integer
        label image, or ``(labels, extras)`` with ``extras`` a dict of per-sample
        arrays ``{name: (dims, array)}``.
    periodic : bool or callable
        Whether the samples are periodic (or a function of the parameters).
    summary : str
        One line for listings.
    lengths : tuple of str
        Parameters that are physical lengths (checked against the box size).
    ranges : mapping of str to Range
        Valid values of numeric parameters (a list value is checked element-wise), so
        that a study is refused at load time rather than failing sample by sample.
    labels : callable, optional
        ``labels(params)``: the phase labels that samples with these generator
        parameters (defaults filled in) can contain; ``None``: not declared.
    """

    name: str
    func: Callable[..., Any]
    periodic: bool | Callable[[dict], bool]
    summary: str
    lengths: tuple[str, ...] = ()
    ranges: Mapping[str, Range] = field(default_factory=dict)
    labels: Callable[[dict], Iterable[int]] | None = None

    def is_periodic(self, params: dict) -> bool:
        return bool(self.periodic(params) if callable(self.periodic) else self.periodic)

    def defaults(self) -> dict[str, Any]:
        """Default values of the keyword parameters of :attr:`func`."""
        import inspect

        return {p.name: p.default for p in inspect.signature(self.func).parameters.values()
                if p.kind == p.KEYWORD_ONLY and p.default is not p.empty and p.name not in ("voxel_size", "workers")}

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Refuse a parameter outside its declared :attr:`ranges` (``InputError`` naming the key,
        the value and the range). Parameters without a declared range are not checked here."""
        for key, rng in self.ranges.items():
            if key not in params or params[key] is None:
                continue
            value = params[key]
            vals = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
            for v in vals:
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                    raise InputError(f"{key} = {value!r}: expected a number in {rng.describe()}")
                if not rng.contains(v):
                    raise InputError(f"{key} = {value!r} is outside the allowed range {rng.describe()} "
                                     f"of generator {self.name!r}")

    def produced_labels(self, params: Mapping[str, Any]) -> set[int] | None:
        """The labels samples with these parameters can contain (``None``: not declared)."""
        if self.labels is None:
            return None
        return {int(k) for k in self.labels({**self.defaults(), **params})}


def two_phase(params: dict) -> set[int]:
    """Labels of a two-phase generator: 0 (matrix / pores) and 1 (inclusions / solid)."""
    return {0, 1}


#: Registry of generators, by name.
GENERATORS: dict[str, Generator] = {}


def register(gen: Generator) -> Generator:
    """Add a generator to :data:`GENERATORS` (used by the generator modules)."""
    GENERATORS[gen.name] = gen
    return gen


def as_rng(rng: np.random.Generator | np.random.SeedSequence | int | None) -> np.random.SeedSequence:
    """Root ``SeedSequence`` from an int, a ``SeedSequence``, a ``Generator`` (one draw) or None."""
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(int(rng.integers(0, 2**63)))
    if rng is None or isinstance(rng, (int, np.integer)):
        if rng is not None and rng < 0:
            raise InputError(f"rng seed must be a non-negative integer, got {rng}")
        return np.random.SeedSequence(None if rng is None else int(rng))
    raise InputError(f"rng must be a numpy Generator, a SeedSequence, an int seed or None, got {type(rng).__name__}")


def sample_seeds(root: np.random.SeedSequence, samples: Iterable[int]) -> np.ndarray:
    """The 63-bit seed of each sample index: from the child ``SeedSequence`` of index ``k``."""
    out = []
    for k in samples:
        child = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (int(k),))
        out.append(int(child.generate_state(1, np.uint64)[0] >> np.uint64(1)))
    return np.array(out, dtype=np.int64)


def label_dtype(max_label: int) -> np.dtype:
    """Smallest unsigned dtype for labels up to ``max_label``."""
    if max_label < 256:
        return np.dtype(np.uint8)
    if max_label < 65536:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def _shape(shape: Any) -> tuple[int, ...]:
    try:
        t = tuple(int(s) for s in np.atleast_1d(shape))
    except (TypeError, ValueError):
        raise InputError(f"shape must be 2 or 3 positive integers, got {shape!r}") from None
    if len(t) not in (2, 3) or any(s <= 0 for s in t) or not np.all(np.asarray(shape) == np.asarray(t)):
        raise InputError(f"shape must be 2 or 3 positive integers, got {shape!r}")
    return t


def _positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return v


def _check_lengths(gen: Generator, params: dict, shape: tuple[int, ...], voxel_size: float) -> None:
    box = min(shape) * voxel_size
    for key in gen.lengths:
        if key not in params or params[key] is None:
            continue
        vals = np.atleast_1d(np.asarray(params[key], dtype=float))
        if np.any(~np.isfinite(vals)) or np.any(vals <= 0):
            raise InputError(f"{key} must be positive, got {params[key]!r}")
        if vals.max() > 0.25 * box:
            warnings.warn(
                f"{key} = {params[key]!r} is more than a quarter of the smallest box size ({box:g}): the SVE "
                "cannot be representative and its periodic images interact; use a larger box",
                RepresentativenessWarning,
                stacklevel=3,
            )


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def generate(
    name: str,
    shape: Sequence[int],
    n: int = 1,
    rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    *,
    voxel_size: float = 1.0,
    samples: Sequence[int] | None = None,
    workers: int = 1,
    **params: Any,
) -> xr.Dataset:
    """Draw an ensemble of samples from a named generator.

    Parameters
    ----------
    name : str
        A key of :data:`GENERATORS` (``stochhom.microstructure.available()`` lists them).
    shape : sequence of int
        Voxels per axis (2D or 3D).
    n : int
        Number of samples (indices ``0 .. n - 1``), unless ``samples`` is given.
    rng : Generator, SeedSequence, int or None
        Root of the seeds. A ``Generator`` is drawn from once.
    voxel_size : float
        Physical size of a voxel; every length parameter is in the same unit.
    samples : sequence of int, optional
        Generate only these sample indices (identical to the same indices of a full
        ensemble with the same ``rng``).
    workers : int
        FFT threads used by generators that need them.
    **params
        Generator parameters (see each generator's documentation).

    Returns
    -------
    xarray.Dataset
        The ensemble (see the module docstring).

    Raises
    ------
    InputError
        Unknown generator (the message lists them), bad shape, size or parameter.
    """
    if name not in GENERATORS:
        raise InputError(f"unknown generator {name!r}; available generators are {sorted(GENERATORS)}")
    gen = GENERATORS[name]
    shp = _shape(shape)
    h = _positive("voxel_size", voxel_size)
    if samples is None:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be a positive integer, got {n!r}")
        idx = np.arange(int(n))
    else:
        idx = np.asarray(list(samples), dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0 or np.any(idx < 0) or np.unique(idx).size != idx.size:
            raise InputError(f"samples must be distinct non-negative indices, got {samples!r}")
    _check_lengths(gen, params, shp, h)
    root = as_rng(rng)
    seeds = sample_seeds(root, idx)
    images = []
    extras: dict[str, list] = {}
    extra_dims: dict[str, tuple[str, ...]] = {}
    for seed in seeds:
        out = gen.func(shp, np.random.default_rng(int(seed)), voxel_size=h, workers=workers, **params)
        labels, extra = (out if isinstance(out, tuple) else (out, {}))
        images.append(labels)
        for key, (dims, arr) in extra.items():
            extras.setdefault(key, []).append(arr)
            extra_dims[key] = dims
    top = max(int(im.max()) for im in images)
    stack = np.stack([im.astype(label_dtype(top), copy=False) for im in images])
    dims = ("sample", *AXES[: len(shp)])
    coords: dict[str, Any] = {ax: (ax, (np.arange(s) + 0.5) * h) for ax, s in zip(AXES, shp)}
    coords["sample"] = ("sample", idx)
    coords["seed"] = ("sample", seeds)
    coords["specimen"] = ("sample", np.array([f"{name}-{s:016x}" for s in seeds]))
    for key, value in params.items():
        v = np.asarray(value)
        if v.ndim == 0 and v.dtype.kind in "biuf":
            coords[key] = ("sample", np.full(idx.size, v.item()))
        elif v.ndim == 0 and v.dtype.kind in "U":
            coords[key] = ("sample", np.full(idx.size, str(v.item())))
        elif v.ndim == 1 and v.dtype.kind in "biuf":
            coords[key] = (("sample", f"{key}_dim"), np.broadcast_to(v, (idx.size, v.size)).copy())
    data_vars: dict[str, Any] = {"phase": (dims, stack)}
    for key, arrs in extras.items():
        data_vars[key] = (("sample", *extra_dims[key]), np.stack(arrs))
    from .. import __version__

    attrs = {
        "generator": name,
        "parameters": json.dumps(_jsonable(params), sort_keys=True),
        "periodic": int(gen.is_periodic(params)),
        "voxel_size": h,
        "entropy": str(root.entropy),
        "spawn_key": json.dumps(list(root.spawn_key)),
        "stochhom_version": __version__,
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _window_starts(n: int, size: int, stride: int) -> list[int]:
    return list(range(0, n - size + 1, stride))


def windows(
    source: xr.Dataset | np.ndarray,
    size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    *,
    voxel_size: float | None = None,
) -> xr.Dataset:
    """Cut SVEs (windows) out of larger specimens.

    Parameters
    ----------
    source : xarray.Dataset or numpy.ndarray
        An ensemble from :func:`generate` or :func:`~stochhom.microstructure.load_specimens`
        (or one of its samples, ``ens.isel(sample=k)``), or one label image (its
        specimen id is ``"image"``).
    size : int or sequence of int
        Window size in voxels (one value or one per axis).
    stride : int or sequence of int, optional
        Step between window origins in voxels (default: ``size``, non-overlapping).
    voxel_size : float, optional
        For a plain image (default 1).

    Returns
    -------
    xarray.Dataset
        One sample per window, with the parent's ``specimen``, ``seed``, parameters
        and other per-sample variables (e.g. grain ``orientation``), the window
        ``origin`` (voxels), ``parent_sample``, and ``attrs["periodic"] = 0``: windows
        of a specimen are correlated and not periodic. Windows of windows keep
        ``parent_sample`` and ``origin`` relative to the original specimen.
    """
    if isinstance(source, xr.Dataset):
        ds = source
    else:
        image = np.asarray(source)
        if image.ndim not in (2, 3) or image.dtype.kind not in "iub":
            raise InputError(f"windows needs a 2D/3D integer label image or an ensemble Dataset, got {image.dtype}")
        h = 1.0 if voxel_size is None else _positive("voxel_size", voxel_size)
        dims = ("sample", *AXES[: image.ndim])
        ds = xr.Dataset(
            {"phase": (dims, image[None].astype(label_dtype(int(image.max()))))},
            coords={"sample": [0], "specimen": ("sample", ["image"])},
            attrs={"periodic": 0, "voxel_size": h},
        )
    if "phase" not in ds:
        raise InputError("the Dataset has no 'phase' variable; pass an ensemble from generate()")
    if "sample" not in ds["phase"].dims:  # one sample, e.g. ens.isel(sample=k): its own coords become per-sample
        own = {c: (("sample", *da.dims), da.values[None]) for c, da in ds.coords.items()
               if c != "sample" and c not in ds.dims and not set(da.dims) & set(ds["phase"].dims)}
        ds = ds.drop_vars(list(own)).expand_dims("sample").assign_coords(own)
    spatial = [d for d in ds["phase"].dims if d != "sample"]
    shp = tuple(ds.sizes[d] for d in spatial)
    d = len(shp)
    sz = np.broadcast_to(np.atleast_1d(np.asarray(size)), (d,)) if np.ndim(size) == 0 else np.asarray(size)
    st = sz if stride is None else (
        np.broadcast_to(np.atleast_1d(np.asarray(stride)), (d,)) if np.ndim(stride) == 0 else np.asarray(stride)
    )
    if (sz.shape != (d,) or st.shape != (d,) or sz.dtype.kind not in "iuf" or st.dtype.kind not in "iuf"
            or np.any(sz < 1) or np.any(st < 1) or np.any(sz != np.round(sz)) or np.any(st != np.round(st))):
        raise InputError(f"size and stride must be positive integers (one or {d}), got {size!r}, {stride!r}")
    sz, st = sz.astype(np.int64), st.astype(np.int64)
    if np.any(sz > np.array(shp)):
        raise InputError(f"window size {tuple(sz)} exceeds the specimen shape {shp}")
    starts = [_window_starts(n, int(s), int(t)) for n, s, t in zip(shp, sz, st)]
    # windows of windows: ``parent_sample`` and ``origin`` keep pointing into the original specimen
    nested = "origin" in ds.coords and "parent_sample" in ds.coords
    per_sample_coords = [
        c for c in ds.coords if ds.coords[c].dims and ds.coords[c].dims[0] == "sample"
        and c not in ("sample", "parent_sample", "origin")
    ]
    h = float(ds.attrs.get("voxel_size", 1.0))
    pieces, origins, parents = [], [], []
    for i in range(ds.sizes["sample"]):
        arr = ds["phase"].values[i]
        for origin in np.ndindex(*[len(s) for s in starts]):
            o = tuple(starts[a][origin[a]] for a in range(d))
            sl = tuple(slice(o[a], o[a] + int(sz[a])) for a in range(d))
            pieces.append(arr[sl])
            origins.append(o)
            parents.append(i)
    parents_arr = np.array(parents, dtype=np.int64)
    origin_arr = np.array(origins, dtype=np.int64).reshape(len(pieces), d)
    if nested:
        parent_ids = ds.coords["parent_sample"].values[parents_arr]
        origin_arr = origin_arr + ds.coords["origin"].transpose("sample", "axis").values[parents_arr]
    else:
        parent_ids = ds["sample"].values[parents_arr]
    coords: dict[str, Any] = {ax: (ax, (np.arange(int(s)) + 0.5) * h) for ax, s in zip(spatial, sz)}
    coords["sample"] = ("sample", np.arange(len(pieces)))
    coords["parent_sample"] = ("sample", parent_ids)
    coords["origin"] = (("sample", "axis"), origin_arr)
    coords["axis"] = ("axis", list(spatial))
    for c in per_sample_coords:
        da = ds.coords[c]
        coords[c] = (da.dims, da.values[parents_arr])
    data_vars: dict[str, Any] = {"phase": (("sample", *spatial), np.stack(pieces))}
    for name, var in ds.data_vars.items():  # per-sample, non-spatial variables (e.g. grain orientations)
        if name != "phase" and var.dims and var.dims[0] == "sample" and not set(var.dims) & set(spatial):
            data_vars[name] = (var.dims, var.values[parents_arr])
    attrs = dict(ds.attrs)
    attrs.update({"periodic": 0, "window_size": json.dumps([int(s) for s in sz]),
                  "window_stride": json.dumps([int(s) for s in st])})
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
