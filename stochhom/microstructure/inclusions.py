r"""Inclusion microstructures: Boolean model, hard-core random sequential addition, fibres.

All are periodic: objects are wrapped around the cell (minimum-image geometry).
Lengths are in physical units (``voxel_size`` converts them to voxels). Label 1 is
the inclusion phase, 0 the matrix.

Boolean model (Torquato 2002, ch. 3)
    Poisson centres of intensity :math:`\lambda`, balls of radius :math:`R` (fixed,
    or log-normal with mean ``radius`` and standard deviation ``radius_std``). The
    matrix fraction is :math:`\varphi_0 = e^{-\lambda E[V_1]}`, so a target inclusion
    fraction :math:`\varphi` sets :math:`\lambda = -\ln(1-\varphi)/E[V_1]`; the number
    of balls in the cell is Poisson with mean :math:`\lambda|\Omega|`.
Hard-core RSA
    Balls are placed one by one at uniform random positions and kept when their
    minimum-image distance to every kept ball is at least :math:`R_i + R_j +`
    ``clearance``. The random sequential addition jams near :math:`\varphi \approx
    0.547` (2D) and :math:`0.384` (3D); beyond what is reached after
    ``max_attempts`` consecutive rejections, generation fails with the fraction it
    reached.
Fibres
    3D: circular cylinders of radius :math:`r` and length :math:`\ell = 2r\,\times`
    ``aspect_ratio``, with axes aligned with ``direction``, random in the plane
    normal to ``direction`` (``"planar"``), or isotropic; overlapping (Boolean, the
    fraction set through the intensity as above with :math:`V_1 = \pi r^2\ell`) or
    hard-core (RSA on the segment-to-segment distance). 2D: aligned elliptical
    inclusions with semi-axes :math:`(a, a/\text{aspect})` and orientation ``angle``.
"""

from __future__ import annotations

import numpy as np

from ..errors import GenerationError, InputError
from .ensemble import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, Generator, Range, register, two_phase

__all__ = [
    "boolean_spheres",
    "rsa_spheres",
    "rsa_centres",
    "fibres",
    "fibre_axes",
    "draw_ball",
    "draw_segment",
    "ball_volume",
]


def ball_volume(radius: np.ndarray | float, dim: int) -> np.ndarray | float:
    """Volume (area in 2D) of balls of the given radii."""
    return np.pi * np.asarray(radius) ** 2 if dim == 2 else 4.0 / 3.0 * np.pi * np.asarray(radius) ** 3


def _fraction(phi: float, name: str = "volume_fraction") -> float:
    try:
        v = float(phi)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in (0, 1), got {phi!r}") from None
    if not (0.0 < v < 1.0):
        raise InputError(f"{name} must lie in (0, 1), got {phi!r}")
    return v


def _radii(rng: np.random.Generator, mean: float, std: float, size: int) -> np.ndarray:
    """Mono (std = 0) or log-normal radii with the given mean and standard deviation."""
    if std == 0:
        return np.full(size, mean)
    s2 = np.log1p((std / mean) ** 2)
    return rng.lognormal(np.log(mean) - 0.5 * s2, np.sqrt(s2), size)


def _mean_power(mean: float, std: float, p: int) -> float:
    r""":math:`E[R^p]` of the radius distribution of :func:`_radii`."""
    if std == 0:
        return mean**p
    s2 = np.log1p((std / mean) ** 2)
    m = np.log(mean) - 0.5 * s2
    return float(np.exp(p * m + 0.5 * p * p * s2))


def _check_radius(radius: float, radius_std: float, voxel_size: float) -> tuple[float, float]:
    r = float(radius) / voxel_size
    s = float(radius_std) / voxel_size
    if not np.isfinite(r) or r <= 0:
        raise InputError(f"radius must be positive, got {radius!r}")
    if not np.isfinite(s) or s < 0:
        raise InputError(f"radius_std must be >= 0, got {radius_std!r}")
    return r, s


def draw_ball(image: np.ndarray, centre: np.ndarray, radius: float, label: int = 1) -> None:
    """Set to ``label`` the voxels whose centres lie within ``radius`` of ``centre``
    (voxel units, periodic wrap)."""
    idx, d2 = [], 0.0
    dim = image.ndim
    for ax in range(dim):
        n = image.shape[ax]
        lo = int(np.floor(centre[ax] - radius - 0.5))
        hi = int(np.ceil(centre[ax] + radius - 0.5))
        i = np.arange(lo, hi + 1)
        dx = (i + 0.5) - centre[ax]
        shp = [1] * dim
        shp[ax] = i.size
        d2 = d2 + (dx**2).reshape(shp)
        idx.append(np.mod(i, n))
    mask = d2 < radius**2
    if all(i.size <= n for i, n in zip(idx, image.shape)):
        region = np.ix_(*idx)
        image[region] = np.where(mask, label, image[region])
    else:  # wider than the cell along an axis: wrapped indices repeat, set them one by one
        hits = np.nonzero(mask)
        image[tuple(idx[a][hits[a]] for a in range(dim))] = label


def _in_cylinder(points: list[np.ndarray], a: np.ndarray, u: np.ndarray, length: float, radius: float) -> np.ndarray:
    """Grid points (broadcast per axis) inside the cylinder of axis a + t u, 0 <= t <= length
    (flat ends): axial coordinate within the segment and radial distance below the radius."""
    rel = [p - a[i] for i, p in enumerate(points)]
    t = sum(rel[i] * u[i] for i in range(len(points)))
    radial2 = sum((rel[i] - t * u[i]) ** 2 for i in range(len(points)))
    return (t >= 0.0) & (t <= length) & (radial2 < radius**2)


def draw_segment(image: np.ndarray, a: np.ndarray, u: np.ndarray, length: float, radius: float, label: int = 1) -> None:
    """Set to ``label`` the voxels inside the cylinder (flat ends) of axis ``a + t u``
    (``|u| = 1``, ``0 <= t <= length``) and radius ``radius`` (voxel units, periodic
    wrap). The axis is stamped in pieces of length ~2 radius, so long oblique fibres
    do not sweep a large bounding box."""
    dim = image.ndim
    pieces = max(1, int(np.ceil(length / max(2.0 * radius, 1.0))))
    for p in range(pieces):
        t0, t1 = length * p / pieces, length * (p + 1) / pieces
        s0, s1 = a + t0 * u, a + t1 * u
        idx, pts = [], []
        for ax in range(dim):
            n = image.shape[ax]
            lo = int(np.floor(min(s0[ax], s1[ax]) - radius - 0.5))
            hi = int(np.ceil(max(s0[ax], s1[ax]) + radius - 0.5))
            i = np.arange(lo, hi + 1)
            shp = [1] * dim
            shp[ax] = i.size
            pts.append(((i + 0.5).astype(float)).reshape(shp))
            idx.append(np.mod(i, n))
        mask = _in_cylinder(pts, a, u, length, radius)
        region = np.ix_(*idx)
        image[region] = np.where(mask, label, image[region])


def boolean_spheres(
    shape: tuple[int, ...],
    rng: np.random.Generator,
    *,
    voxel_size: float = 1.0,
    workers: int = 1,
    volume_fraction: float = 0.3,
    radius: float = 5.0,
    radius_std: float = 0.0,
) -> np.ndarray:
    """Boolean model of overlapping balls (generator ``"boolean"``); see the module docstring."""
    phi = _fraction(volume_fraction)
    r, s = _check_radius(radius, radius_std, voxel_size)
    dim = len(shape)
    mean_volume = (np.pi if dim == 2 else 4.0 / 3.0 * np.pi) * _mean_power(r, s, dim)
    intensity = -np.log1p(-phi) / mean_volume
    count = rng.poisson(intensity * float(np.prod(shape)))
    centres = rng.uniform(0.0, 1.0, (count, dim)) * np.array(shape)
    radii = _radii(rng, r, s, count)
    image = np.zeros(shape, dtype=np.uint8)
    for c, rad in zip(centres, radii):
        draw_ball(image, c, rad)
    return image


def _min_image(d: np.ndarray, box: np.ndarray) -> np.ndarray:
    return d - box * np.round(d / box)


def rsa_centres(
    shape: tuple[int, ...],
    rng: np.random.Generator,
    volume_fraction: float,
    radius: float,
    radius_std: float = 0.0,
    clearance: float = 0.0,
    max_attempts: int = 20_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Centres and radii (voxel units) of hard balls placed by random sequential addition.

    A ball is kept when its minimum-image distance to every kept ball is at least
    the sum of the radii plus ``clearance``; balls are added until their total volume
    reaches ``volume_fraction`` of the cell. Raises
    :class:`~stochhom.errors.GenerationError`, with the fraction reached, after
    ``max_attempts`` consecutive rejections.
    """
    phi = _fraction(volume_fraction)
    dim = len(shape)
    box = np.array(shape, dtype=float)
    target = phi * float(np.prod(shape))
    centres = np.empty((0, dim))
    radii = np.empty(0)
    placed = 0.0
    fails = 0
    rad = _radii(rng, radius, radius_std, 1)[0]
    while placed < target:
        if 2 * rad + clearance >= box.min():
            raise GenerationError(f"a ball of radius {rad:.3g} voxels does not fit in the cell {tuple(shape)}")
        c = rng.uniform(0.0, 1.0, dim) * box
        if centres.shape[0]:
            dist = np.linalg.norm(_min_image(centres - c, box), axis=1)
            ok = bool(np.all(dist >= radii + rad + clearance))
        else:
            ok = True
        if ok:
            centres = np.vstack([centres, c])
            radii = np.append(radii, rad)
            placed += float(ball_volume(rad, dim))
            fails = 0
            rad = _radii(rng, radius, radius_std, 1)[0]
            continue
        fails += 1
        if fails >= max_attempts:
            reached = placed / float(np.prod(shape))
            raise GenerationError(
                f"random sequential addition reached volume fraction {reached:.4f} but not the target {phi:g} "
                f"({max_attempts} consecutive rejections; RSA jams near {0.547 if dim == 2 else 0.384} in {dim}D, "
                "lower with clearance or polydispersity). Lower the target, the clearance, or use 'boolean'"
            )
    return centres, radii


def rsa_spheres(
    shape: tuple[int, ...],
    rng: np.random.Generator,
    *,
    voxel_size: float = 1.0,
    workers: int = 1,
    volume_fraction: float = 0.3,
    radius: float = 5.0,
    radius_std: float = 0.0,
    clearance: float = 0.0,
    max_attempts: int = 20_000,
) -> np.ndarray:
    """Hard-core balls by random sequential addition (generator ``"rsa"``).

    Balls are added until their total volume reaches ``volume_fraction`` of the cell;
    radii are drawn in order (log-normal if ``radius_std > 0``); ``clearance`` is a
    minimum gap between surfaces. See :func:`rsa_centres`.
    """
    r, s = _check_radius(radius, radius_std, voxel_size)
    gap = float(clearance) / voxel_size
    if not np.isfinite(gap) or gap < 0:
        raise InputError(f"clearance must be >= 0, got {clearance!r}")
    centres, radii = rsa_centres(shape, rng, volume_fraction, r, s, gap, max_attempts)
    image = np.zeros(shape, dtype=np.uint8)
    for c, rad in zip(centres, radii):
        draw_ball(image, c, rad)
    return image


def _directions(rng: np.random.Generator, count: int, orientation: str, direction: np.ndarray) -> np.ndarray:
    d = direction / np.linalg.norm(direction)
    if orientation == "aligned":
        return np.tile(d, (count, 1))
    if orientation == "isotropic":
        v = rng.standard_normal((count, 3))
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    # planar: uniform in the plane normal to d
    a = np.eye(3)[np.argmin(np.abs(d))]
    e1 = np.cross(d, a)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    t = rng.uniform(0.0, 2.0 * np.pi, count)
    return np.cos(t)[:, None] * e1 + np.sin(t)[:, None] * e2


def _segment_distance(p1: np.ndarray, d1: np.ndarray, p2: np.ndarray, d2: np.ndarray, length: float) -> np.ndarray:
    """Distances between segment (p1, d1) and segments (p2[i], d2[i]), all of the same
    length, with unit directions (Lumelsky's closest-point algorithm, vectorized)."""
    r = p1 - p2
    a = length**2
    e = length**2
    b = length**2 * np.einsum("j,ij->i", d1, d2)
    c = length * (r @ d1)
    f = length * np.einsum("ij,ij->i", d2, r)
    den = a * e - b**2
    s = np.where(den > 1e-12, np.clip((b * f - c * e) / np.where(den > 1e-12, den, 1.0), 0.0, 1.0), 0.0)
    t = (b * s + f) / e
    t_c = np.clip(t, 0.0, 1.0)
    s = np.where(t != t_c, np.clip((b * t_c - c) / a, 0.0, 1.0), s)
    c1 = p1 + length * s[:, None] * d1
    c2 = p2 + length * t_c[:, None] * d2
    return np.linalg.norm(c1 - c2, axis=1)


def fibre_axes(
    shape: tuple[int, ...],
    rng: np.random.Generator,
    volume_fraction: float,
    radius: float,
    length: float,
    orientation: str = "isotropic",
    direction: np.ndarray | None = None,
    overlap: bool = True,
    clearance: float = 0.0,
    max_attempts: int = 20_000,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Mid-points and unit directions (voxel units) of 3D fibres (cylinders of ``radius``
    and ``length``). Overlapping: a Poisson number with mean
    :math:`-\ln(1-\varphi)|\Omega|/(\pi r^2\ell)`; hard-core: random sequential
    addition on the minimum-image segment-to-segment distance (at least ``2 r +
    clearance``)."""
    phi = _fraction(volume_fraction)
    box = np.array(shape, dtype=float)
    d = np.array([0.0, 0.0, 1.0]) if direction is None else np.asarray(direction, dtype=float)
    v1 = np.pi * radius**2 * length
    if overlap:
        count = rng.poisson(-np.log1p(-phi) / v1 * float(np.prod(shape)))
        return rng.uniform(0.0, 1.0, (count, 3)) * box, _directions(rng, count, orientation, d)
    target = int(np.ceil(phi * float(np.prod(shape)) / v1))
    mids = np.empty((0, 3))
    dirs = np.empty((0, 3))
    fails = 0
    while mids.shape[0] < target:
        m = rng.uniform(0.0, 1.0, 3) * box
        u = _directions(rng, 1, orientation, d)[0]
        ok = True
        if mids.shape[0]:
            rel = _min_image(mids - m, box)
            near = np.linalg.norm(rel, axis=1) < length + 2 * radius + clearance
            if np.any(near):
                p1 = m - 0.5 * length * u
                p2 = (m + rel[near]) - 0.5 * length * dirs[near]
                ok = bool(np.all(_segment_distance(p1, u, p2, dirs[near], length) >= 2 * radius + clearance))
        if ok:
            mids = np.vstack([mids, m])
            dirs = np.vstack([dirs, u])
            fails = 0
            continue
        fails += 1
        if fails >= max_attempts:
            reached = mids.shape[0] * v1 / float(np.prod(shape))
            raise GenerationError(
                f"hard-core fibres reached volume fraction {reached:.4f} but not the target {phi:g} "
                f"({max_attempts} consecutive rejections); lower the target or the aspect ratio, or allow overlap"
            )
    return mids, dirs


def fibres(
    shape: tuple[int, ...],
    rng: np.random.Generator,
    *,
    voxel_size: float = 1.0,
    workers: int = 1,
    volume_fraction: float = 0.2,
    radius: float = 2.0,
    aspect_ratio: float = 5.0,
    orientation: str = "isotropic",
    direction: tuple[float, ...] = (0.0, 0.0, 1.0),
    angle: float = 0.0,
    overlap: bool = True,
    clearance: float = 0.0,
    max_attempts: int = 20_000,
) -> np.ndarray:
    """Fibres (generator ``"fibres"``): cylinders in 3D, aligned ellipses in 2D.

    Parameters (beyond ``volume_fraction``): ``radius`` (cylinder radius; 2D: the
    long semi-axis), ``aspect_ratio`` (3D: length / diameter; 2D: long / short
    semi-axis), ``orientation`` (3D: ``"aligned"`` along ``direction``, ``"planar"``
    random in the plane normal to ``direction``, or ``"isotropic"``), ``angle`` (2D
    orientation of the long axis, radians), ``overlap`` (True: Boolean model; False:
    hard-core by random sequential addition, 3D only, with ``clearance``).
    """
    phi = _fraction(volume_fraction)
    r, _ = _check_radius(radius, 0.0, voxel_size)
    ar = float(aspect_ratio)
    if not np.isfinite(ar) or ar < 1:
        raise InputError(f"aspect_ratio must be >= 1, got {aspect_ratio!r}")
    dim = len(shape)
    box = np.array(shape, dtype=float)
    image = np.zeros(shape, dtype=np.uint8)
    if dim == 2:
        if not overlap:
            raise InputError("hard-core (overlap=False) fibres are implemented in 3D only")
        a, b = r, r / ar
        intensity = -np.log1p(-phi) / (np.pi * a * b)
        count = rng.poisson(intensity * float(np.prod(shape)))
        ca, sa = np.cos(angle), np.sin(angle)
        for c in rng.uniform(0.0, 1.0, (count, 2)) * box:
            lo = [int(np.floor(c[k] - a - 0.5)) for k in range(2)]
            hi = [int(np.ceil(c[k] + a - 0.5)) for k in range(2)]
            ix = np.arange(lo[0], hi[0] + 1)
            iy = np.arange(lo[1], hi[1] + 1)
            dx = (ix + 0.5 - c[0])[:, None]
            dy = (iy + 0.5 - c[1])[None, :]
            u = ca * dx + sa * dy
            v = -sa * dx + ca * dy
            mask = (u / a) ** 2 + (v / b) ** 2 < 1.0
            region = np.ix_(np.mod(ix, shape[0]), np.mod(iy, shape[1]))
            image[region] = np.where(mask, 1, image[region])
        return image
    if orientation not in ("aligned", "planar", "isotropic"):
        raise InputError(f"orientation must be 'aligned', 'planar' or 'isotropic', got {orientation!r}")
    direction = np.asarray(direction, dtype=float)
    if direction.shape != (3,) or not np.any(direction):
        raise InputError(f"direction must be a non-zero 3-vector, got {direction!r}")
    length = 2.0 * r * ar
    if length >= 0.5 * box.min():
        raise InputError(
            f"fibre length {length * voxel_size:g} must be below half the smallest box size "
            f"({0.5 * box.min() * voxel_size:g}) so that a fibre does not meet its own periodic image"
        )
    mids, dirs = fibre_axes(shape, rng, phi, r, length, orientation, direction, bool(overlap),
                            float(clearance) / voxel_size, max_attempts)
    for m, u in zip(mids, dirs):
        draw_segment(image, m - 0.5 * length * u, u, length, r)
    return image


_BALLS = {"volume_fraction": FRACTION, "radius": POSITIVE, "radius_std": NON_NEGATIVE}
register(Generator("boolean", boolean_spheres, True, "Boolean model of overlapping balls (disks in 2D)", ("radius",),
                   ranges=_BALLS, labels=two_phase))
register(Generator("rsa", rsa_spheres, True, "hard-core balls by random sequential addition", ("radius",),
                   ranges={**_BALLS, "clearance": NON_NEGATIVE, "max_attempts": COUNT}, labels=two_phase))
register(Generator("fibres", fibres, True, "fibres: 3D cylinders (aligned/planar/isotropic), 2D aligned ellipses",
                   ("radius",), ranges={"volume_fraction": FRACTION, "radius": POSITIVE,
                                        "aspect_ratio": Range(1.0, None, closed_low=True),
                                        "clearance": NON_NEGATIVE, "max_attempts": COUNT}, labels=two_phase))
