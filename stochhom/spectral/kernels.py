r"""Cache-blocked, threaded element-wise kernels of the spectral solver.

Everything the solver does between two FFTs acts frequency by frequency (or voxel
by voxel), so each chain of NumPy operations is applied to slabs of the first
spatial axis that fit in cache, and the slabs are spread over a thread pool
(NumPy releases the GIL inside its loops). This is the NumPy equivalent of a
fused, parallel loop: the arithmetic is the textbook formula, only its schedule
changes.

Complex spectra are processed through real views, with the real symbols stored
*interleaved* (each value repeated for the real and imaginary parts), so that a
complex-by-real product is one contiguous real multiplication.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["Blocks", "interleave", "hdot_block"]

_POOLS: dict[int, ThreadPoolExecutor] = {}
_TARGET_BYTES = 1 << 20  # working set per block (largest array)
_MIN_PARALLEL = 1 << 16  # elements per array below which threads do not pay off


def _pool(workers: int) -> ThreadPoolExecutor:
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stochhom")
    return _POOLS[workers]


def interleave(a: np.ndarray) -> np.ndarray:
    """Repeat each value along the last axis: ``[a0, a0, a1, a1, ...]`` (real view layout)."""
    return np.repeat(a[..., None], 2, axis=-1).reshape(a.shape[:-1] + (2 * a.shape[-1],))


class Blocks:
    """Slabs of the first spatial axis for fields of a given size.

    Parameters
    ----------
    n0 : int
        Length of the first spatial axis.
    row_bytes : int
        Bytes of the largest array per index of that axis.
    n_elements : int
        Elements of the largest array (decides whether threads are used).
    workers : int
    """

    def __init__(self, n0: int, row_bytes: int, n_elements: int, workers: int) -> None:
        rows = max(1, min(n0, _TARGET_BYTES // max(row_bytes, 1)))
        parallel = workers > 1 and n_elements >= _MIN_PARALLEL
        if parallel:
            rows = min(rows, max(1, -(-n0 // workers)))
        self.slices = [slice(i, min(i + rows, n0)) for i in range(0, n0, rows)]
        self.workers = workers if parallel and len(self.slices) > 1 else 1

    def run(self, kernel: Callable[[slice], object]) -> list[object]:
        """Call ``kernel(block_slice)`` for every block; return the results in order."""
        if self.workers == 1:
            return [kernel(s) for s in self.slices]
        return list(_pool(self.workers).map(kernel, self.slices))

    def sum(self, kernel: Callable[[slice], np.ndarray | None]) -> np.ndarray | None:
        """Run ``kernel`` on every block and add up the returned partial reductions."""
        parts = [p for p in self.run(kernel) if p is not None]
        return np.sum(parts, axis=0) if parts else None


def hdot_block(a: np.ndarray, b: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    r"""Partial Hermitian-weighted inner product over a block of real views.

    ``a``, ``b``: real views ``(batch, comps, rows, ..., 2 * n_half)`` of half
    spectra. Returns :math:`\sum_q w_q \Re(\bar a\,b)` per batch entry, with
    :math:`w_q = 1` on the last-axis ``edges`` columns and 2 elsewhere.
    """
    batch, comps = a.shape[:2]
    total = np.zeros(batch)
    for i in range(batch):
        for c in range(comps):
            ai, bi = a[i, c], b[i, c]
            s = 2.0 * float(np.dot(ai.reshape(-1), bi.reshape(-1)))
            for k in edges:
                s -= float(np.dot(ai[..., 2 * k : 2 * k + 2].reshape(-1), bi[..., 2 * k : 2 * k + 2].reshape(-1)))
            total[i] += s
    return total
