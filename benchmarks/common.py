"""Microstructures and helpers shared by the benchmark scripts.

Microstructures are defined in physical coordinates (the unit cell) and voxelized
at any resolution, so that grid-refinement studies look at the same material.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import scipy.fft as sfft

RESULTS = Path(__file__).parent / "results"


def hard_sphere_centres(dim: int, n_balls: int, radius: float, clearance: float, seed: int) -> np.ndarray:
    """Random sequential addition of non-overlapping balls in the periodic unit cell."""
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    for _ in range(200_000):
        if len(centres) == n_balls:
            break
        c = rng.uniform(0, 1, dim)
        if all(np.linalg.norm((c - o + 0.5) % 1.0 - 0.5) > 2 * radius + clearance for o in centres):
            centres.append(c)
    if len(centres) < n_balls:
        raise RuntimeError(f"placed only {len(centres)} of {n_balls} balls")
    return np.array(centres)


def boolean_centres(dim: int, n_balls: int, seed: int) -> np.ndarray:
    """Poisson (overlapping) ball centres in the unit cell."""
    return np.random.default_rng(seed).uniform(0, 1, (n_balls, dim))


def voxelize(centres: np.ndarray, radius: float, n: int) -> np.ndarray:
    """Label image (0 matrix, 1 inclusion) of periodic balls on an ``n^dim`` grid."""
    dim = centres.shape[1]
    x = (np.arange(n) + 0.5) / n
    image = np.zeros((n,) * dim, dtype=np.uint8)
    for c in centres:
        d2 = 0.0
        for ax in range(dim):
            dx = (x - c[ax] + 0.5) % 1.0 - 0.5
            shp = [1] * dim
            shp[ax] = n
            d2 = d2 + (dx**2).reshape(shp)
        image[d2 < radius**2] = 1
    return image


def hard_spheres(dim: int, n: int, fraction: float = 0.2, n_balls: int = 16, seed: int = 1) -> np.ndarray:
    """Hard balls of equal radius filling ``fraction`` of the cell (clearance 0.02 cell)."""
    vol = fraction / n_balls
    radius = (vol / np.pi) ** 0.5 if dim == 2 else (3 * vol / (4 * np.pi)) ** (1 / 3)
    return voxelize(hard_sphere_centres(dim, n_balls, radius, 0.02, seed), radius, n)


def boolean_spheres(dim: int, n: int, fraction: float = 0.2, n_balls: int = 40, seed: int = 1) -> np.ndarray:
    """Overlapping balls (Boolean model) with expected inclusion fraction ``fraction``."""
    vol = -np.log(1 - fraction) / n_balls
    radius = (vol / np.pi) ** 0.5 if dim == 2 else (3 * vol / (4 * np.pi)) ** (1 / 3)
    return voxelize(boolean_centres(dim, n_balls, seed), radius, n)


def bare_fft_time(shape: tuple[int, ...], leading: tuple[int, ...], workers: int, repeat: int = 5) -> dict:
    """Best-of-``repeat`` time of one forward + inverse real FFT of a field
    ``(*leading, *shape)``: with SciPy's one-call ``rfftn``/``irfftn``, and with the
    faster axis split the solver uses (stochhom.spectral.grid.Grid)."""
    from stochhom.spectral.grid import Grid

    x = np.random.default_rng(0).random(leading + shape)
    axes = tuple(range(-len(shape), 0))
    grid = Grid(shape, (1.0,) * len(shape), workers)

    def naive() -> None:
        sfft.irfftn(sfft.rfftn(x, axes=axes, workers=workers), s=shape, axes=axes, workers=workers)

    def split() -> None:
        grid.irfft(grid.rfft(x))

    out = {}
    for name, fn in (("scipy_rfftn_irfftn", naive), ("split_axes", split)):
        fn()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[name] = min(times)
    return out


def machine() -> dict:
    import numba
    import scipy

    import stochhom

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "stochhom": stochhom.__version__,
        "cpu": platform.processor() or platform.machine(),
    }


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"machine": machine(), **data}
    path.write_text(json.dumps(data, indent=2))
    return path


def held_below(curve: dict[int, float], target: float, n_ref: int) -> float:
    """Solves saved by a sequential design: ``1 - n / n_ref`` for the first round ``n`` from which
    the error ``curve`` (solves -> RMSE) stays at or below ``target`` up to the budget (a noisy
    curve that dips below once does not count); 0 when it never does."""
    ns = sorted(curve)
    for i, n in enumerate(ns):
        if all(curve[m] <= target for m in ns[i:]):
            return 1.0 - n / n_ref
    return 0.0
