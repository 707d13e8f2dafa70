"""Shared fixtures and microstructure builders for the test suite.

The builders are deliberately simple and deterministic: they only exist to pose
problems whose answers are known (laminates, single inclusions, arrays) or whose
answers must satisfy bounds (random dispersions).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("STOCHHOM_FFT_WORKERS", "1")  # tests run in parallel processes


def laminate_image(shape: tuple[int, ...], counts: list[int], axis: int) -> np.ndarray:
    """Layers normal to ``axis``: ``counts[p]`` consecutive voxel planes of phase ``p``."""
    n = shape[axis]
    assert sum(counts) == n
    profile = np.repeat(np.arange(len(counts)), counts)
    shp = [1] * len(shape)
    shp[axis] = n
    return np.broadcast_to(profile.reshape(shp), shape).astype(np.uint8).copy()


def centred_ball(n: int, dim: int, fraction: float) -> np.ndarray:
    """One ball (disk) of volume fraction ``fraction`` in the centre of an ``n^dim`` cell."""
    x = (np.arange(n) + 0.5) / n - 0.5
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    r2 = sum(g**2 for g in grids)
    radius = (fraction / np.pi) ** 0.5 if dim == 2 else (3 * fraction / (4 * np.pi)) ** (1 / 3)
    return (r2 < radius**2).astype(np.uint8)


def hard_balls(n: int, dim: int, radius: float, fraction: float, seed: int, clearance: float = 1.0) -> np.ndarray:
    """Periodic random sequential addition of non-overlapping balls (labels 0/1)."""
    rng = np.random.default_rng(seed)
    vol = np.pi * radius**2 if dim == 2 else 4 / 3 * np.pi * radius**3
    target = int(round(fraction * n**dim / vol))
    centres: list[np.ndarray] = []
    for _ in range(100_000):
        if len(centres) >= target:
            break
        c = rng.uniform(0, n, dim)
        if all(np.linalg.norm((c - o + n / 2) % n - n / 2) > 2 * radius + clearance for o in centres):
            centres.append(c)
    x = np.arange(n) + 0.5
    image = np.zeros((n,) * dim, dtype=np.uint8)
    for c in centres:
        d2 = 0.0
        for ax in range(dim):
            dx = (x - c[ax] + n / 2) % n - n / 2
            shp = [1] * dim
            shp[ax] = n
            d2 = d2 + (dx**2).reshape(shp)
        image[d2 < radius**2] = 1
    return image


@pytest.fixture(scope="session")
def disks_2d() -> np.ndarray:
    """A statistically isotropic 2D dispersion: 96^2, hard disks of radius 6, f ~ 0.3."""
    return hard_balls(96, 2, 6.0, 0.3, seed=11)


@pytest.fixture(scope="session")
def spheres_3d() -> np.ndarray:
    """A small 3D dispersion: 24^3, hard spheres of radius 3.5, f ~ 0.2."""
    return hard_balls(24, 3, 3.5, 0.2, seed=5)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def kill_once_stored(cmd: list[str], store, env: dict, timeout: float = 120.0) -> int:
    """Start ``cmd`` (a CLI sweep or run) in its own session, SIGKILL it with its workers as soon
    as the zarr ``store`` holds a finished sample, and return how many samples were finished."""
    import signal
    import subprocess
    import time

    from stochhom.study.sweep import _done_flags

    proc = subprocess.Popen(cmd, start_new_session=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, done = time.time() + timeout, 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            done = int(_done_flags(store).sum())
        except Exception:  # the store is not created yet
            continue
        if done > 0:
            break
    assert proc.poll() is None, f"the command finished before it could be killed: {proc.stderr.read()!r}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return done
