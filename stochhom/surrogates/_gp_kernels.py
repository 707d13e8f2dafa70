"""Fused GP posterior-mean kernel (numba): :math:`\\mu_i = \\sum_j \\kappa(x_i, x_j)\\,\\alpha_j`.

Prediction of many points is bound by memory traffic when the cross-kernel matrix
:math:`\\kappa(X_*, X)` is formed (1e5 x 2000 entries: 1.6 GB); fusing the distance,
the kernel and the product with :math:`\\alpha` streams nothing but the inputs.
Inputs are pre-scaled so that the kernel is a function of :math:`u = \\lVert x - x'\\rVert`
(see ``gpr._U_SCALE``): ``rbf`` :math:`e^{-u^2}`, ``matern12`` :math:`e^{-u}`,
``matern32`` :math:`(1+u)e^{-u}`, ``matern52`` :math:`(1+u+u^2/3)e^{-u}`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

KERNEL_IDS = {"rbf": 0, "matern12": 1, "matern32": 2, "matern52": 3}


@numba.njit(parallel=True, cache=True, nogil=True)
def fused_mean(kind: int, xs: np.ndarray, xt: np.ndarray, alpha: np.ndarray) -> np.ndarray:  # pragma: no cover
    n, p = xs.shape
    m = xt.shape[0]
    out = np.empty(n)
    for i in numba.prange(n):
        acc = 0.0
        for j in range(m):
            d2 = 0.0
            for k in range(p):
                t = xs[i, k] - xt[j, k]
                d2 += t * t
            if kind == 0:
                v = math.exp(-d2)
            else:
                u = math.sqrt(d2)
                e = math.exp(-u)
                if kind == 1:
                    v = e
                elif kind == 2:
                    v = e * (1.0 + u)
                else:
                    v = e * (1.0 + u + u * u / 3.0)
            acc += v * alpha[j]
        out[i] = acc
    return out
