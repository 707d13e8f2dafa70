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


if __name__ == "__main__":
    here = Path(__file__).parent
    np.save(here / "fibres_2d.npy", hard_disks(128, 8.0, 0.35, seed=2026))
