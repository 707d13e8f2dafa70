"""Regenerate the example images shipped in ``examples/`` (deterministic).

Run from the repository root: ``python examples/make_examples.py``.
"""

from pathlib import Path

import numpy as np


def hard_disks(n: int, radius: float, fraction: float, seed: int) -> np.ndarray:
    """Periodic random sequential addition of non-overlapping disks (labels 0/1)."""
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    target = int(round(fraction * n * n / (np.pi * radius**2)))
    attempts = 0
    while len(centres) < target and attempts < 200_000:
        attempts += 1
        c = rng.uniform(0, n, 2)
        if all(np.linalg.norm((c - o + n / 2) % n - n / 2) > 2 * radius + 1.0 for o in centres):
            centres.append(c)
    x = np.arange(n) + 0.5
    image = np.zeros((n, n), dtype=np.uint8)
    for c in centres:
        dx = (x - c[0] + n / 2) % n - n / 2
        dy = (x - c[1] + n / 2) % n - n / 2
        image[dx[:, None] ** 2 + dy[None, :] ** 2 < radius**2] = 1
    return image


def synthetic_scan(n: int = 192, seed: int = 2027) -> np.ndarray:
    """A non-periodic 2D grey-level "scan" of overlapping disks (uint8): a window of a larger
    Boolean model (fraction 0.3, radius 5 px), imaged through a Gaussian blur (sigma 1 px) with
    grey levels 70 (matrix) and 170 (disks) and Gaussian noise (sigma 12)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    big = n + 40
    count = rng.poisson(-np.log(1 - 0.3) / (np.pi * 25.0) * big * big)
    x = np.arange(big) + 0.5
    labels = np.zeros((big, big), dtype=float)
    for c in rng.uniform(0, big, (count, 2)):
        labels[(x[:, None] - c[0]) ** 2 + (x[None, :] - c[1]) ** 2 < 25.0] = 1.0
    grey = 70.0 + 100.0 * gaussian_filter(labels, 1.0) + rng.normal(0.0, 12.0, labels.shape)
    return np.clip(np.round(grey[20:20 + n, 20:20 + n]), 0, 255).astype(np.uint8)


if __name__ == "__main__":
    import tifffile

    here = Path(__file__).parent
    np.save(here / "fibres_2d.npy", hard_disks(128, 8.0, 0.35, seed=2026))
    tifffile.imwrite(here / "scan_2d.tif", synthetic_scan())
