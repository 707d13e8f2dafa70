r"""Composite voxels: the sub-voxel geometry of a continuum microstructure.

A voxel that an interface cuts is neither phase. Kabel, Merkert and Schneider (2015)
give it the tensor of a *laminate* of its two phases, with the phases' volume
fractions inside the voxel and the laminate's normal along the interface normal
(:mod:`stochhom.spectral.composite` builds those tensors). This module finds the
voxels, fractions and normals of generators whose geometry is a continuum object
(balls, cylinders, a smooth level set), by rendering the same realization on a grid
``factor`` times finer per axis and reading each voxel's :math:`\text{factor}^d`
sub-voxels:

* a voxel whose sub-voxels all carry one label is *pure*;
* a voxel whose sub-voxels carry two labels :math:`a < b` is *composite*, with the
  fraction :math:`\varphi` of :math:`b` among its sub-voxels and the normal
  :math:`n \propto \nabla\varphi_b`, the gradient of the voxel fractions of :math:`b`
  by Youngs' stencil (central differences smoothed by :math:`(1,2,1)/4` across, as in
  volume-of-fluid methods); where that gradient vanishes, the vector between the two
  phases' centroids in the voxel (Kabel et al.'s choice; it errs by up to 18 degrees on
  a plane that cuts a voxel's corner, where Youngs' errs by a few);
* a voxel with three or more labels (a triple line), or whose centroids coincide, is
  given its most frequent label.

The label image returned holds every voxel's most frequent label (ties: the higher
label), so the phase fractions of a composite image are those of the fine rendering
rounded voxel by voxel.

Same realization at any resolution
----------------------------------
For ``"boolean"``, ``"rsa"`` and ``"fibres"`` the fine image is the generator called
with ``shape * factor`` and ``voxel_size / factor`` and the same seed: every length
and count scales by the factor, and a power-of-two factor scales them exactly in
floating point, so the draws, hence the balls and cylinders, are identical. For
``"gaussian"`` (level cuts) the field drawn on the coarse grid is interpolated onto
the fine grid's voxel centres by zero-padding its spectrum (trigonometric
interpolation, the Nyquist terms dropped) and cut at the same thresholds: the level
set of the very field the coarse image was cut from.

References
----------
M. Kabel, D. Merkert, M. Schneider, "Use of composite voxels in FFT-based
homogenization", Comput. Methods Appl. Mech. Engrg. 294 (2015) 168–188.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft as sfft

from ..errors import InputError

__all__ = ["CompositeVoxels", "from_fine", "render_composite", "FINE_RENDERERS"]


@dataclass(frozen=True)
class CompositeVoxels:
    """The interface voxels of an image and their sub-voxel geometry.

    Attributes
    ----------
    shape : tuple of int
        Shape of the label image the voxels belong to.
    index : numpy.ndarray of int64, shape (n,)
        Flat (C-order) indices of the composite voxels, increasing.
    phases : numpy.ndarray of int64, shape (n, 2)
        The two labels :math:`a < b` of each composite voxel (the image's own labels).
    fraction : numpy.ndarray, shape (n,)
        Volume fraction of label :math:`b` in the voxel, in (0, 1).
    normal : numpy.ndarray, shape (n, dim)
        Unit interface normal (physical frame; its sign is irrelevant).
    factor : int
        Sub-voxels per axis they were measured on.
    """

    shape: tuple[int, ...]
    index: np.ndarray
    phases: np.ndarray
    fraction: np.ndarray
    normal: np.ndarray
    factor: int

    def __len__(self) -> int:
        return int(self.index.size)

    @property
    def share(self) -> float:
        """Fraction of the image's voxels that are composite."""
        return len(self) / float(np.prod(self.shape))

    def check(self, shape: tuple[int, ...]) -> None:
        """Refuse composite voxels that do not belong to an image of ``shape``."""
        if tuple(shape) != tuple(self.shape):
            raise InputError(f"the composite voxels were made for an image of shape {self.shape}, "
                             f"not {tuple(shape)}; render them with the image (render_composite)")
        n, dim = len(self), len(self.shape)
        if (self.phases.shape != (n, 2) or self.fraction.shape != (n,) or self.normal.shape != (n, dim)
                or np.any(self.index < 0) or np.any(self.index >= np.prod(self.shape))):
            raise InputError("inconsistent CompositeVoxels (index, phases, fraction and normal must have one "
                             "entry per composite voxel of the image)")
        if n and (np.any(self.fraction <= 0) or np.any(self.fraction >= 1) or not np.all(np.isfinite(self.normal))):
            raise InputError("composite voxel fractions must lie in (0, 1) and normals be finite")


def _blocks(fine: np.ndarray, factor: int) -> np.ndarray:
    """``(N, factor**d)``: the sub-voxels of each coarse voxel, C order of both."""
    dim = fine.ndim
    coarse = tuple(s // factor for s in fine.shape)
    split = []
    for c in coarse:
        split += [c, factor]
    order = list(range(0, 2 * dim, 2)) + list(range(1, 2 * dim, 2))
    return fine.reshape(split).transpose(order).reshape(int(np.prod(coarse)), factor**dim)


def from_fine(fine: np.ndarray, factor: int, spacing: float | Sequence[float] = 1.0
              ) -> tuple[np.ndarray, CompositeVoxels]:
    """Coarse labels and composite voxels of an image rendered ``factor`` times finer.

    Parameters
    ----------
    fine : numpy.ndarray of int
        Label image, every axis a multiple of ``factor``.
    factor : int
        Sub-voxels per coarse voxel and axis (>= 2).
    spacing : float or sequence of float
        Coarse voxel size (per axis), for the normals' physical frame.

    Returns
    -------
    labels : numpy.ndarray
        Most frequent label of each coarse voxel (ties: the higher label), the dtype of ``fine``.
    composite : CompositeVoxels
    """
    fine = np.asarray(fine)
    factor = int(factor)
    if fine.dtype.kind not in "iu" or fine.ndim not in (2, 3):
        raise InputError(f"fine must be a 2D or 3D integer label image, got {fine.dtype} with shape {fine.shape}")
    if factor < 2 or any(s % factor for s in fine.shape):
        raise InputError(f"factor must be >= 2 and divide every axis of the fine image {fine.shape}, got {factor}")
    dim = fine.ndim
    h = np.broadcast_to(np.asarray(spacing, dtype=float), (dim,))
    coarse = tuple(s // factor for s in fine.shape)
    rows = _blocks(fine, factor)
    lo, hi = rows.min(axis=1), rows.max(axis=1)
    labels = lo.astype(fine.dtype)
    mixed = np.flatnonzero(lo != hi)
    sub = rows[mixed]
    a, b = lo[mixed].astype(np.int64), hi[mixed].astype(np.int64)
    is_b = sub == hi[mixed][:, None]
    two = np.all(is_b | (sub == lo[mixed][:, None]), axis=1)
    frac = is_b.mean(axis=1)
    # sub-voxel centre offsets from the voxel centre, physical units, C order of the block
    offs = np.stack(np.meshgrid(*[(np.arange(factor) + 0.5) / factor - 0.5 for _ in range(dim)],
                                indexing="ij"), -1).reshape(-1, dim) * h
    normal = is_b.astype(float) @ offs / factor**dim  # = frac (x_b - x_centre), parallel to x_b - x_a
    for lab in np.unique(b):  # Youngs' normals where the fraction field has a gradient
        sel = np.flatnonzero(b == lab)
        grad = _youngs_gradient((rows == lab).mean(axis=1).reshape(coarse), h, mixed[sel])
        good = np.linalg.norm(grad, axis=1) > 1e-12
        normal[sel[good]] = grad[good]
    norm = np.linalg.norm(normal, axis=1)
    ok = two & (norm > 1e-12 * h.max())
    labels[mixed] = np.where(frac >= 0.5, b, a).astype(fine.dtype)
    for k in np.flatnonzero(~two):  # triple lines: the most frequent label
        vals, counts = np.unique(sub[k], return_counts=True)
        labels[mixed[k]] = vals[np.flatnonzero(counts == counts.max())[-1]]
    comp = CompositeVoxels(
        shape=coarse, index=mixed[ok].astype(np.int64), phases=np.stack([a[ok], b[ok]], 1),
        fraction=frac[ok], normal=normal[ok] / norm[ok, None], factor=factor)
    return labels.reshape(coarse), comp


def _youngs_gradient(fraction: np.ndarray, h: np.ndarray, at: np.ndarray) -> np.ndarray:
    r"""Gradient of a voxel fraction field at flat indices ``at`` (periodic), Youngs' stencil:
    central differences along each axis, smoothed by :math:`(1, 2, 1)/4` along the others."""
    dim = fraction.ndim
    coords = np.unravel_index(at, fraction.shape)
    out = np.zeros((at.size, dim))
    for ax in range(dim):
        acc = np.zeros(at.size)
        for offset in np.ndindex(*(3,) * dim):
            d = [o - 1 for o in offset]
            if d[ax] == 0:
                continue
            w = 0.5 * d[ax] * np.prod([(2.0 if d[k] == 0 else 1.0) / 4.0 for k in range(dim) if k != ax])
            idx = tuple((c + dk) % n for c, dk, n in zip(coords, d, fraction.shape))
            acc += w * fraction[idx]
        out[:, ax] = acc / h[ax]
    return out


def _fine_by_scaling(func: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """The generator itself on the fine grid (same seed): every length and count scales."""

    def fine(shape: tuple[int, ...], rng: np.random.Generator, factor: int, voxel_size: float, workers: int,
             **params: Any) -> np.ndarray:
        out = func(tuple(s * factor for s in shape), rng, voxel_size=voxel_size / factor, workers=workers, **params)
        return out[0] if isinstance(out, tuple) else out

    return fine


def interpolate_field(field: np.ndarray, factor: int, workers: int = 1) -> np.ndarray:
    r"""Trigonometric interpolation of a periodic field onto a grid ``factor`` times finer.

    Sample ``i`` of ``field`` sits at the voxel centre :math:`(i + \tfrac12)h`; the
    result holds the band-limited interpolant at the fine voxel centres
    :math:`(j + \tfrac12)h/\text{factor}`, i.e. at coarse index coordinate
    :math:`x_j = j/\text{factor} + \delta`, :math:`\delta = (1 - \text{factor}) /
    (2\,\text{factor})`: the spectrum shifted by :math:`e^{2\pi i k\delta/N}` and
    zero-padded. The Nyquist terms of even axes are dropped (they have no unique
    real interpolant).
    """
    dim = field.ndim
    spec = sfft.fftn(field, workers=workers)
    fine_shape = tuple(s * factor for s in field.shape)
    out = np.zeros(fine_shape, dtype=complex)
    delta = (1.0 - factor) / (2.0 * factor)
    index = []
    for ax, n in enumerate(field.shape):
        k = sfft.fftfreq(n, 1.0 / n)  # signed integer frequencies
        keep = np.abs(k) < n / 2.0  # drops the Nyquist term of an even axis
        shp = [1] * dim
        shp[ax] = n
        spec = spec * np.where(keep, np.exp(2j * np.pi * k * delta / n), 0.0).reshape(shp)
        index.append(np.mod(k, n * factor).astype(np.int64))
    out[np.ix_(*index)] = spec
    return sfft.ifftn(out, workers=workers, overwrite_x=True).real * factor**dim


def _fine_gaussian(shape: tuple[int, ...], rng: np.random.Generator, factor: int, voxel_size: float, workers: int,
                   **params: Any) -> np.ndarray:
    """The coarse Gaussian field (same seed), interpolated and cut at the same thresholds."""
    from .random_fields import gaussian_field, level_cut

    p = dict(params)
    field = gaussian_field(shape, p.pop("correlation_length", 1.0), rng, p.pop("model", "gaussian"),
                           p.pop("nu", None), p.pop("angles", None), voxel_size, workers)
    return level_cut(interpolate_field(field, factor, workers), p.pop("volume_fraction", 0.5),
                     p.pop("cut", "threshold"))


def _fine_renderers() -> dict[str, Callable[..., np.ndarray]]:
    from .inclusions import boolean_spheres, fibres, rsa_spheres

    return {"boolean": _fine_by_scaling(boolean_spheres), "rsa": _fine_by_scaling(rsa_spheres),
            "fibres": _fine_by_scaling(fibres), "gaussian": _fine_gaussian}


#: Generators that can render their realization on a finer grid (name -> renderer).
FINE_RENDERERS: dict[str, Callable[..., np.ndarray]] = {}


def render_composite(name: str, shape: Sequence[int], rng: np.random.Generator | int | None, factor: int = 4, *,
                     voxel_size: float = 1.0, workers: int = 1, **params: Any
                     ) -> tuple[np.ndarray, CompositeVoxels]:
    """One sample of a generator with its composite voxels.

    Parameters
    ----------
    name : str
        ``"boolean"``, ``"rsa"``, ``"fibres"`` or ``"gaussian"`` (the generators that
        know their geometry below the voxel).
    shape : sequence of int
        Voxels per axis.
    rng : numpy.random.Generator, int or None
        The sample's generator (as passed to the generator function; a sweep's sample
        seed gives that sample's realization).
    factor : {2, 4, 8}
        Sub-voxels per axis (a power of two, so the fine rendering is the same
        realization bit for bit). 4 resolves fractions to 1/64 (3D) and costs a
        rendering of 64 times the voxels.
    voxel_size, workers, **params
        As for the generator.

    Returns
    -------
    labels : numpy.ndarray
        The sample's label image (each voxel's most frequent label).
    composite : CompositeVoxels
        Pass it to :func:`stochhom.homogenize` (``composite=``).
    """
    if not FINE_RENDERERS:
        FINE_RENDERERS.update(_fine_renderers())
    if name not in FINE_RENDERERS:
        raise InputError(f"generator {name!r} cannot render composite voxels; those that can are "
                         f"{sorted(FINE_RENDERERS)}")
    if factor not in (2, 4, 8):
        raise InputError(f"factor must be 2, 4 or 8 (a power of two keeps the realization exact), got {factor!r}")
    shp = tuple(int(s) for s in shape)
    from .ensemble import GENERATORS, _check_lengths

    gen = GENERATORS[name]
    gen.check_params(params)
    _check_lengths(gen, params, shp, float(voxel_size))
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    fine = FINE_RENDERERS[name](shp, rng, int(factor), float(voxel_size), int(workers), **params)
    return from_fine(fine, factor, voxel_size)
