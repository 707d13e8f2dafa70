r"""Periodic Voronoi polycrystals and per-grain crystal orientations.

Grain seeds are uniform in the periodic cell; each voxel takes the label of its
nearest seed under the minimum-image distance (a periodic k-d tree). Each grain
gets a crystal orientation drawn uniformly on SO(3) (Haar measure; in 2D a uniform
angle about the out-of-plane axis), stored in the ensemble as the per-sample
variable ``orientation`` (``grain, i, j``).

:func:`polycrystal_phases` turns one crystal's tensor into one rotated phase per
grain, so a polycrystal homogenizes out of the box::

    ens = sh.generate("voronoi", (64, 64, 64), n=1, rng=0, n_grains=200)
    copper = sh.AnisotropicElastic.from_cubic(168.4, 121.4, 75.4)
    phases = polycrystal_phases(copper, ens["orientation"].values[0])
    sh.homogenize(ens.isel(sample=0), phases)
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from ..errors import InputError
from ..materials import AnisotropicElastic, Conductivity, Material
from ..tensors import rotation_matrix
from .ensemble import COUNT, Generator, label_dtype, register

__all__ = ["voronoi", "random_orientations", "polycrystal_phases"]


def random_orientations(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotation matrices uniform on SO(3) (3D) or uniform in-plane angles (2D)."""
    if dim == 3:
        return Rotation.random(n, random_state=rng).as_matrix()
    return rotation_matrix(rng.uniform(0.0, 2.0 * np.pi, n), 2)


def voronoi(
    shape: tuple[int, ...],
    rng: np.random.Generator,
    *,
    voxel_size: float = 1.0,
    workers: int = 1,
    n_grains: int = 100,
) -> tuple[np.ndarray, dict]:
    """Periodic Voronoi tessellation with random crystal orientations (generator ``"voronoi"``).

    Returns the grain labels ``0 .. n_grains - 1`` (``uint8``/``uint16``/``uint32``)
    and the extra variable ``orientation`` of shape ``(n_grains, d, d)``.
    """
    if not isinstance(n_grains, (int, np.integer)) or n_grains < 1:
        raise InputError(f"n_grains must be a positive integer, got {n_grains!r}")
    dim = len(shape)
    if n_grains > int(np.prod(shape)):
        raise InputError(f"n_grains = {n_grains} exceeds the number of voxels {int(np.prod(shape))}")
    box = np.array(shape, dtype=float)
    seeds = rng.uniform(0.0, 1.0, (int(n_grains), dim)) * box
    tree = cKDTree(seeds, boxsize=box)
    labels = np.empty(shape, dtype=label_dtype(int(n_grains) - 1))
    flat = labels.reshape(shape[0], -1)
    rest = np.stack(np.meshgrid(*[np.arange(s) + 0.5 for s in shape[1:]], indexing="ij"), -1).reshape(-1, dim - 1)
    for i in range(shape[0]):  # one slab at a time keeps the query memory small
        pts = np.column_stack([np.full(rest.shape[0], i + 0.5), rest])
        flat[i] = tree.query(pts, workers=workers)[1]
    return labels, {"orientation": (("grain", "i", "j"), random_orientations(int(n_grains), dim, rng))}


def polycrystal_phases(crystal: Material | np.ndarray, orientations: np.ndarray) -> list[Material]:
    """One rotated phase per grain from a single crystal.

    Parameters
    ----------
    crystal : AnisotropicElastic, Conductivity or array
        The crystal in its own frame: a stiffness (Mandel 6 x 6, e.g.
        ``AnisotropicElastic.from_cubic(C11, C12, C44)``) or a conductivity tensor.
    orientations : numpy.ndarray, shape (n_grains, d, d)
        Rotation matrices, crystal to sample frame (3 x 3; 2 x 2 for 2D in-plane
        rotations, applied about the 3-axis).

    Returns
    -------
    list of Material
        ``phases[g]`` is grain ``g``'s rotated crystal.
    """
    r = np.asarray(orientations, dtype=float)
    if r.ndim != 3 or r.shape[1] != r.shape[2] or r.shape[1] not in (2, 3):
        raise InputError(f"orientations must have shape (n_grains, d, d) with d = 2 or 3, got {r.shape}")
    if r.shape[1] == 2:
        full = np.tile(np.eye(3), (r.shape[0], 1, 1))
        full[:, :2, :2] = r
        r = full
    if isinstance(crystal, Conductivity):
        k = crystal.tensor(3)
        return [Conductivity(q @ k @ q.T) for q in r]
    c = crystal if isinstance(crystal, AnisotropicElastic) else AnisotropicElastic(np.asarray(crystal, dtype=float))
    if c.C.shape != (6, 6):
        raise InputError("polycrystal_phases needs the crystal's 3D (6 x 6) stiffness")
    from ..tensors import mandel_rotation

    q = mandel_rotation(r)
    rotated = q @ c.C @ np.swapaxes(q, -1, -2)
    return [AnisotropicElastic(0.5 * (m + m.T)) for m in rotated]


def _grain_labels(params: dict) -> range:
    n = params.get("n_grains", 100)
    return range(int(n)) if isinstance(n, (int, np.integer)) and n >= 1 else range(0)


register(Generator("voronoi", voronoi, True, "periodic Voronoi polycrystal with random orientations",
                   ranges={"n_grains": COUNT}, labels=_grain_labels))
