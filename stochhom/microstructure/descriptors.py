r"""Morphological descriptors of label images and ensembles.

For the indicator :math:`I(x)` of one phase (Torquato 2002, ch. 2):

* volume fraction :math:`\varphi = \langle I\rangle`;
* two-point probability :math:`S_2(r) = \langle I(x)I(x+r)\rangle`, by FFT:
  periodic :math:`S_2 = \mathcal F^{-1}|\mathcal F I|^2/N`; for a non-periodic image
  the image is zero-padded and each lag divided by its number of pairs
  :math:`\prod_j(n_j - |r_j|)`; radially averaged in bins of one voxel;
* specific surface from the stereological line-crossing count: with :math:`P_L` the
  number of phase-boundary crossings per unit length of test line (averaged over the
  axes), :math:`S_V = 2P_L` in 3D and the perimeter density
  :math:`L_A = \tfrac{\pi}{2}P_L` in 2D (Cauchy–Crofton; exact for isotropic
  structures). Counting voxel faces instead would give :math:`d\,P_L`, 1.5 times too
  much in 3D;
* lineal path :math:`L(z)`: the probability that a segment of length :math:`z` along
  an axis lies in the phase; chord-length distribution along the axes;
* correlation length: :math:`\int_0^{r_0}\rho_I(r)\,dr` of the normalized
  autocovariance :math:`\rho_I = (S_2 - \varphi^2)/(\varphi - \varphi^2)`, up to its
  first zero :math:`r_0`;
* integral range: :math:`A = \int_{|r|<r_0}\rho_I(r)\,d^dr` (a single-sample
  estimate; the variance scaling of apparent properties over an ensemble, in
  :mod:`stochhom.statistics`, estimates it better).

Every function takes a label image (``numpy.ndarray``) or an ensemble ``Dataset``
and returns ``xarray`` objects with a ``sample`` dimension for ensembles.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.fft as sfft
import xarray as xr

from ..errors import InputError, RepresentativenessWarning
from .ensemble import AXES

__all__ = [
    "volume_fractions",
    "two_point_probability",
    "radial_average",
    "specific_surface",
    "lineal_path",
    "chord_lengths",
    "correlation_length",
    "integral_range",
    "describe",
]


def _images(source: Any, periodic: bool | None, voxel_size: float | None) -> tuple[np.ndarray, bool, float, bool]:
    """(stack of images, periodic, voxel size, was an ensemble)."""
    if isinstance(source, xr.DataArray) and "sample" in source.dims:
        # e.g. ens["phase"]: an ensemble, not one image with an extra axis
        source = source.to_dataset(name="phase", promote_attrs=True)
    if isinstance(source, xr.Dataset):
        if "phase" not in source:
            raise InputError("the Dataset has no 'phase' variable")
        arr = source["phase"].values
        if "sample" not in source["phase"].dims:
            arr = arr[None]
        else:
            arr = source["phase"].transpose("sample", ...).values
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        if arr.dtype.kind not in "iu":
            raise InputError(f"descriptors need integer phase labels, got dtype {arr.dtype}")
        if arr.ndim not in (3, 4):
            raise InputError(f"expected 2D or 3D label images, got phase dims {source['phase'].dims}")
        per = bool(source.attrs.get("periodic", 1)) if periodic is None else bool(periodic)
        h = float(source.attrs.get("voxel_size", 1.0)) if voxel_size is None else float(voxel_size)
        return arr, per, h, True
    if isinstance(source, xr.DataArray):
        source = source.values
    arr = np.asarray(source)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iu":
        raise InputError(f"descriptors need integer phase labels, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise InputError(f"expected a 2D or 3D label image, got shape {arr.shape}")
    per = True if periodic is None else bool(periodic)
    return arr[None], per, 1.0 if voxel_size is None else float(voxel_size), False


def _finish(da: xr.DataArray, ensemble: bool) -> xr.DataArray:
    return da if ensemble else da.isel(sample=0, drop=True)


def volume_fractions(source: Any) -> xr.DataArray:
    """Fraction of every label, per sample (dims ``sample, phase``)."""
    arr, _, _, ens = _images(source, None, None)
    top = int(arr.max()) + 1
    counts = np.stack([np.bincount(a.reshape(-1), minlength=top) for a in arr]) / arr[0].size
    return _finish(xr.DataArray(counts, dims=("sample", "phase"), coords={"phase": np.arange(top)}), ens)


def _s2_one(ind: np.ndarray, periodic: bool, workers: int) -> np.ndarray:
    """Full two-point probability of one indicator, lags in FFT order (|r_j| < n_j/2 kept)."""
    shape = ind.shape
    if periodic:
        f = sfft.rfftn(ind, workers=workers)
        f = f.real**2 + f.imag**2
        return sfft.irfftn(f, s=shape, workers=workers) / ind.size
    padded = [2 * n for n in shape]
    f = sfft.rfftn(ind, s=padded, workers=workers)
    f = f.real**2 + f.imag**2
    corr = sfft.irfftn(f, s=padded, workers=workers)
    out = np.empty(shape)
    idx = []
    pairs = 1.0
    for ax, n in enumerate(shape):
        lag = sfft.fftfreq(n, 1.0 / n).astype(int)  # -n/2 .. n/2 - 1
        idx.append(np.mod(lag, 2 * n))
        shp = [1] * len(shape)
        shp[ax] = n
        pairs = pairs * (n - np.abs(lag)).reshape(shp)
    out[...] = corr[np.ix_(*idx)] / pairs
    return out


def two_point_probability(
    source: Any, phase: int = 1, periodic: bool | None = None, voxel_size: float | None = None, workers: int = 1
) -> xr.DataArray:
    """Full two-point probability :math:`S_2(r)` of ``phase``, centred (``fftshift``).

    Dims ``sample, dx, dy[, dz]`` with lags in physical units from ``-n/2`` to
    ``n/2 - 1`` voxels. ``periodic`` defaults to the ensemble's ``attrs["periodic"]``
    (True for a plain image).
    """
    arr, per, h, ens = _images(source, periodic, voxel_size)
    dim = arr.ndim - 1
    out = np.stack([sfft.fftshift(_s2_one((a == phase).astype(np.float64), per, workers)) for a in arr])
    lag_dims = tuple("d" + ax for ax in AXES[:dim])
    coords = {ld: np.arange(-(n // 2), n - n // 2) * h for ld, n in zip(lag_dims, arr.shape[1:])}
    return _finish(xr.DataArray(out, dims=("sample", *lag_dims), coords=coords, attrs={"phase": phase}), ens)


def radial_average(full: xr.DataArray, bin_width: float | None = None) -> xr.DataArray:
    """Radial average of a centred lag field (e.g. :func:`two_point_probability`) in bins
    of ``bin_width`` (default: one voxel), up to half the smallest box size."""
    lag_dims = [d for d in full.dims if d.startswith("d")]
    grids = np.meshgrid(*[full[d].values for d in lag_dims], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grids))
    h = min(float(abs(full[d].values[1] - full[d].values[0])) for d in lag_dims)
    w = h if bin_width is None else float(bin_width)
    rmax = min(float(np.max(np.abs(full[d].values))) for d in lag_dims)
    bins = np.floor(r / w + 0.5).astype(int).reshape(-1)  # bin k: |r| in [(k - 1/2) w, (k + 1/2) w)
    nb = int(np.floor(rmax / w + 0.5)) + 1
    keep = bins < nb
    counts = np.bincount(bins[keep], minlength=nb)
    rsum = np.bincount(bins[keep], weights=r.reshape(-1)[keep], minlength=nb)
    vals = full.values if "sample" in full.dims else full.values[None]
    flat = vals.reshape(vals.shape[0], -1)
    avg = np.stack([np.bincount(bins[keep], weights=f[keep], minlength=nb) for f in flat]) / np.maximum(counts, 1)
    rc = rsum / np.maximum(counts, 1)
    da = xr.DataArray(avg, dims=("sample", "r"), coords={"r": rc}, attrs=dict(full.attrs))
    return da if "sample" in full.dims else da.isel(sample=0, drop=True)


def _crossings(ind: np.ndarray, axis: int, periodic: bool) -> tuple[int, int]:
    """(boundary crossings, neighbour pairs) along ``axis``."""
    if periodic:
        return int(np.count_nonzero(ind != np.roll(ind, -1, axis=axis))), ind.size
    a = np.swapaxes(ind, 0, axis)
    return int(np.count_nonzero(a[1:] != a[:-1])), a[1:].size


def specific_surface(
    source: Any, phase: int = 1, periodic: bool | None = None, voxel_size: float | None = None
) -> xr.DataArray:
    r"""Interface area per unit volume (3D) or perimeter per unit area (2D) of ``phase``.

    Stereology: :math:`S_V = 2\bar P_L` (3D), :math:`L_A = \tfrac\pi2\bar P_L` (2D),
    :math:`\bar P_L` the crossings per unit test-line length averaged over the axes.
    Units: 1/length.
    """
    arr, per, h, ens = _images(source, periodic, voxel_size)
    dim = arr.ndim - 1
    factor = 2.0 if dim == 3 else np.pi / 2.0
    out = []
    for a in arr:
        ind = a == phase
        pl = np.mean([c / (p * h) for c, p in (_crossings(ind, ax, per) for ax in range(dim))])
        out.append(factor * pl)
    return _finish(xr.DataArray(np.array(out), dims=("sample",), attrs={"phase": phase, "units": "1/length"}), ens)


def _runs(ind: np.ndarray, axis: int, periodic: bool) -> tuple[np.ndarray, int, int]:
    """Run (chord) lengths of the indicator along ``axis``.

    Returns (lengths, number of lines entirely in the phase (periodic only), line count).
    """
    lines = np.moveaxis(ind, axis, -1).reshape(-1, ind.shape[axis]).astype(np.int8)
    m, n = lines.shape
    full = 0
    if periodic:
        full_mask = lines.all(axis=1)
        full = int(full_mask.sum())
        lines = lines[~full_mask]
        doubled = np.concatenate([lines, lines], axis=1)
        padded = np.concatenate([np.zeros((lines.shape[0], 1), np.int8), doubled,
                                 np.zeros((lines.shape[0], 1), np.int8)], axis=1)
        d = np.diff(padded, axis=1)
        _, s_pos = np.nonzero(d == 1)  # run starts at s_pos (in the doubled line)
        _, e_pos = np.nonzero(d == -1)  # one past the run's end
        lengths = e_pos - s_pos  # starts and ends alternate line by line
        # keep each periodic run once: runs starting in [1, n] of the doubled line
        keep = (s_pos >= 1) & (s_pos <= n)
        return np.minimum(lengths[keep], n - 1), full, m
    padded = np.concatenate([np.zeros((m, 1), np.int8), lines, np.zeros((m, 1), np.int8)], axis=1)
    d = np.diff(padded, axis=1)
    _, s_pos = np.nonzero(d == 1)
    _, e_pos = np.nonzero(d == -1)
    return e_pos - s_pos, 0, m


def lineal_path(
    source: Any,
    phase: int = 1,
    periodic: bool | None = None,
    voxel_size: float | None = None,
    max_length: int | None = None,
) -> xr.DataArray:
    r"""Lineal path :math:`L(z)` of ``phase`` along each axis.

    :math:`L(z)` is the fraction of segments of ``z + 1`` consecutive voxels (length
    :math:`z` between the first and last voxel centres) that lie entirely in the
    phase: :math:`\sum_{\text{chords } c}\max(c - z, 0)` over the number of segment
    positions. Dims ``sample, axis, z`` (``z`` in physical units); :math:`L(0) = \varphi`.
    """
    arr, per, h, ens = _images(source, periodic, voxel_size)
    dim = arr.ndim - 1
    zmax = (min(arr.shape[1:]) // 2) if max_length is None else int(max_length)
    z = np.arange(zmax + 1)
    out = np.zeros((arr.shape[0], dim, z.size))
    for i, a in enumerate(arr):
        ind = a == phase
        for ax in range(dim):
            n = a.shape[ax]
            lengths, full, m = _runs(ind, ax, per)
            counts = np.bincount(lengths, minlength=n + 1).astype(float)
            c = np.arange(counts.size)
            num = np.array([np.sum(counts * np.maximum(c - zz, 0)) for zz in z]) + full * n
            positions = m * n if per else m * np.maximum(n - z, 1)
            out[i, ax] = num / positions
    da = xr.DataArray(out, dims=("sample", "axis", "z"), coords={"axis": list(AXES[:dim]), "z": z * h},
                      attrs={"phase": phase})
    return _finish(da, ens)


def chord_lengths(
    source: Any, phase: int = 1, periodic: bool | None = None, voxel_size: float | None = None
) -> xr.DataArray:
    """Chord-length distribution of ``phase`` along each axis (number-weighted probability
    of each length, dims ``sample, axis, length``; length in physical units). Chords of a
    non-periodic image that touch its border are excluded (they are truncated)."""
    arr, per, h, ens = _images(source, periodic, voxel_size)
    dim = arr.ndim - 1
    nmax = max(arr.shape[1:])
    out = np.zeros((arr.shape[0], dim, nmax + 1))
    for i, a in enumerate(arr):
        ind = a == phase
        for ax in range(dim):
            if per:
                lengths, _, _ = _runs(ind, ax, True)
            else:
                n = a.shape[ax]
                lines = np.moveaxis(ind, ax, -1).reshape(-1, n).astype(np.int8)
                padded = np.concatenate([np.zeros((lines.shape[0], 1), np.int8), lines,
                                         np.zeros((lines.shape[0], 1), np.int8)], axis=1)
                d = np.diff(padded, axis=1)
                _, s = np.nonzero(d == 1)  # first voxel of each run (starts and ends alternate line by line)
                _, e = np.nonzero(d == -1)  # one past its last voxel
                # keep the runs bounded by the other phase on both sides (not touching the border)
                lengths = (e - s)[(s > 0) & (e < n)]
            counts = np.bincount(lengths, minlength=nmax + 1)[: nmax + 1].astype(float)
            out[i, ax] = counts / max(counts.sum(), 1.0)
    da = xr.DataArray(out, dims=("sample", "axis", "length"),
                      coords={"axis": list(AXES[:dim]), "length": np.arange(nmax + 1) * h}, attrs={"phase": phase})
    return _finish(da, ens)


def _normalized(full: xr.DataArray, phi: np.ndarray) -> xr.DataArray:
    """(S2 - phi^2) / (phi - phi^2), per sample."""
    p = xr.DataArray(phi, dims=("sample",))
    return (full - p**2) / (p - p**2)


def correlation_length(source: Any, phase: int = 1, periodic: bool | None = None,
                       voxel_size: float | None = None, workers: int = 1) -> xr.DataArray:
    r"""Integral correlation length :math:`\int_0^{r_0}\rho_I(r)\,dr` (physical units).

    :math:`\rho_I` is the radially averaged normalized autocovariance of the indicator
    and :math:`r_0` its first zero (or half the box). Warns with
    :class:`~stochhom.errors.RepresentativenessWarning` when it exceeds a tenth of the
    smallest box size.
    """
    full = two_point_probability(source, phase, periodic, voxel_size, workers)
    if "sample" not in full.dims:
        full = full.expand_dims("sample")
    arr, _, h, ens = _images(source, periodic, voxel_size)
    phi = np.array([(a == phase).mean() for a in arr])
    rho = radial_average(_normalized(full, phi))
    r = rho["r"].values
    out = []
    for row in rho.values:
        stop = np.argmax(row <= 0) if np.any(row <= 0) else row.size
        stop = max(int(stop), 2)
        out.append(float(np.trapezoid(row[:stop], r[:stop])))
    out_arr = np.array(out)
    box = min(arr.shape[1:]) * h
    if np.any(out_arr > 0.1 * box):
        warnings.warn(
            f"correlation length {out_arr.max():.3g} exceeds a tenth of the box size {box:g}: the SVE cannot be "
            "representative", RepresentativenessWarning, stacklevel=2)
    return _finish(xr.DataArray(out_arr, dims=("sample",), attrs={"phase": phase}), ens)


def integral_range(source: Any, phase: int = 1, periodic: bool | None = None,
                   voxel_size: float | None = None, workers: int = 1) -> xr.DataArray:
    r"""Single-sample estimate of the integral range :math:`A = \int\rho_I(r)\,d^dr`.

    The integral runs over the lags shorter than the first zero :math:`r_0` of the
    radially averaged :math:`\rho_I` (over the whole periodic cell the sample
    autocovariance integrates to exactly zero). Units: volume (area in 2D).
    """
    full = two_point_probability(source, phase, periodic, voxel_size, workers)
    if "sample" not in full.dims:
        full = full.expand_dims("sample")
    arr, _, h, ens = _images(source, periodic, voxel_size)
    phi = np.array([(a == phase).mean() for a in arr])
    norm = _normalized(full, phi)
    rho = radial_average(norm)
    lag_dims = [d for d in norm.dims if d.startswith("d")]
    grids = np.meshgrid(*[norm[d].values for d in lag_dims], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids))
    out = []
    for k, row in enumerate(rho.values):
        r0 = rho["r"].values[np.argmax(row <= 0)] if np.any(row <= 0) else rho["r"].values[-1]
        out.append(float(norm.values[k][radius < r0].sum()) * h ** len(lag_dims))
    return _finish(xr.DataArray(np.array(out), dims=("sample",), attrs={"phase": phase, "units": "volume"}), ens)


def describe(source: Any, phase: int = 1, periodic: bool | None = None, voxel_size: float | None = None,
             workers: int = 1) -> xr.Dataset:
    """All descriptors of ``phase`` per sample, as one ``Dataset``.

    Variables: ``phase_fraction`` (measured), ``s2`` (radial two-point probability, dims
    ``sample, r``), ``specific_surface``, ``lineal_path`` (``sample, axis, z``),
    ``mean_chord`` (``sample, axis``), ``correlation_length``, ``integral_range``;
    the ensemble's per-sample coordinates are kept (one named like a variable, such as
    the Gaussian generator's ``correlation_length``, as ``<name>_parameter``).
    """
    full = two_point_probability(source, phase, periodic, voxel_size, workers)
    if "sample" not in full.dims:
        full = full.expand_dims("sample")
    arr, per, h, ens = _images(source, periodic, voxel_size)
    phi = np.array([(a == phase).mean() for a in arr])
    chords = chord_lengths(source, phase, periodic, voxel_size)
    if "sample" not in chords.dims:
        chords = chords.expand_dims("sample")
    mean_chord = (chords * chords["length"]).sum("length")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RepresentativenessWarning)
        corr = correlation_length(source, phase, periodic, voxel_size, workers)
    lp = lineal_path(source, phase, periodic, voxel_size)
    ss = specific_surface(source, phase, periodic, voxel_size)
    ir = integral_range(source, phase, periodic, voxel_size, workers)
    out = xr.Dataset(
        {
            "phase_fraction": (("sample",), phi),
            "s2": radial_average(full),
            "specific_surface": ss if ens else ss.expand_dims("sample"),
            "lineal_path": lp if ens else lp.expand_dims("sample"),
            "mean_chord": mean_chord,
            "correlation_length": corr if ens else corr.expand_dims("sample"),
            "integral_range": ir if ens else ir.expand_dims("sample"),
        },
        attrs={"phase": phase, "periodic": int(per), "voxel_size": h},
    )
    if ens:
        # a generator parameter named like a descriptor (the Gaussian model's ``correlation_length``) must not
        # replace the measured variable: it is kept as ``<name>_parameter``
        per_sample = {(f"{c}_parameter" if c in out.data_vars else c): (da.dims, da.values)
                      for c, da in source.coords.items() if da.dims and da.dims[0] == "sample"}
        out = out.assign_coords(per_sample)
    return out if ens else out.isel(sample=0, drop=True)
