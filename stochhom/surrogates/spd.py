r"""Positive-definite outputs by construction: parametrizations of apparent tensors.

A surrogate that regresses the entries of a stiffness or conductivity tensor
directly can predict a tensor that is not positive definite, i.e. a material that
creates energy. stochhom regresses unconstrained *features* instead and maps them
back to tensors that are symmetric positive definite (SPD) for every value of the
features:

* ``"log_cholesky"`` (any anisotropy): :math:`\mathbb C = L L^T` with :math:`L` lower
  triangular; the features are :math:`\log L_{ii}` and :math:`L_{ij}` (:math:`i > j`),
  :math:`m(m+1)/2` of them for an :math:`m \times m` Mandel tensor. The map is a
  bijection between SPD matrices and :math:`\mathbb R^{m(m+1)/2}` (Pinheiro & Bates
  1996), so any prediction, mean or posterior sample, is SPD.
* ``"log_isotropic"`` (isotropic outputs): the features are :math:`\log K` and
  :math:`\log G` (conductivity: :math:`\log k`); the tensor is
  :math:`d K\,\mathbb J + 2G\,\mathbb K` with :math:`K, G > 0`.

A prediction of the features with standard deviation :math:`\sigma` maps to a
tensor through the point value (the median for ``log`` features); its mean and
standard deviation per component come from samples of the features
(:meth:`SPDTransform.tensor_samples`), which are SPD one by one, and so is their
mean (the SPD matrices form a convex cone).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..tensors import isotropic_projection, isotropic_stiffness

__all__ = ["SPDTransform"]

_KINDS = ("log_cholesky", "log_isotropic")


class SPDTransform:
    """Bijection between SPD tensors and unconstrained feature vectors.

    Parameters
    ----------
    kind : {"log_cholesky", "log_isotropic"}
    physics : {"elasticity", "conductivity"}
        Needed for ``log_isotropic`` (what an isotropic tensor is).
    dim : int
        2 or 3, for ``log_isotropic``.
    symmetry_rtol : float
        Largest accepted asymmetry, relative to the largest entry (default 1e-4: apparent
        tensors of a solve to ``tol = 1e-6`` are symmetric to a few 1e-6); the symmetric
        part is used.
    """

    def __init__(self, kind: str = "log_cholesky", physics: str = "elasticity", dim: int = 3,
                 symmetry_rtol: float = 1e-4) -> None:
        self.symmetry_rtol = float(symmetry_rtol)
        if kind not in _KINDS:
            raise InputError(f"unknown SPD parametrization {kind!r}; allowed: {list(_KINDS)}")
        if physics not in ("elasticity", "conductivity"):
            raise InputError(f"physics must be 'elasticity' or 'conductivity', got {physics!r}")
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {dim!r}")
        self.kind, self.physics, self.dim = kind, physics, dim

    # ------------------------------------------------------------------ features
    def features(self, tensors: Any) -> np.ndarray:
        """Features of SPD tensors ``(n, m, m)`` -> ``(n, f)``.

        Raises
        ------
        InputError
            A tensor that is not symmetric positive definite (it has no such features).
        """
        t = np.asarray(tensors, dtype=float)
        if t.ndim == 2:
            t = t[None]
        if t.ndim != 3 or t.shape[1] != t.shape[2]:
            raise InputError(f"expected tensors of shape (n, m, m), got {np.shape(tensors)}")
        if not np.all(np.isfinite(t)):
            raise InputError("tensors contain NaN or inf; drop failed samples first")
        # apparent tensors from an iterative solve are symmetric to about the solver tolerance
        asym = np.abs(t - np.swapaxes(t, 1, 2)).max(axis=(1, 2)) > self.symmetry_rtol * np.abs(t).max(axis=(1, 2))
        if np.any(asym):
            raise InputError(f"{int(asym.sum())} tensor(s) are not symmetric (relative asymmetry above "
                             f"symmetry_rtol={self.symmetry_rtol:g}); pass the symmetric part or raise "
                             "symmetry_rtol")
        t = 0.5 * (t + np.swapaxes(t, 1, 2))
        if self.kind == "log_isotropic":
            if self.physics == "conductivity":
                k = np.trace(t, axis1=1, axis2=2) / t.shape[1]
                if np.any(k <= 0):
                    raise InputError("conductivities must be positive definite")
                return np.log(k)[:, None]
            bulk, shear = isotropic_projection(t)
            if np.any(bulk <= 0) or np.any(shear <= 0):
                raise InputError("the isotropic projection has a non-positive bulk or shear modulus")
            return np.stack([np.log(bulk), np.log(shear)], axis=1)
        try:
            chol = np.linalg.cholesky(t)
        except np.linalg.LinAlgError:
            raise InputError("a tensor is not positive definite; it has no Cholesky factor") from None
        m = t.shape[1]
        rows, cols = np.tril_indices(m)
        vals = chol[:, rows, cols]
        diag = rows == cols
        vals[:, diag] = np.log(vals[:, diag])
        return vals

    def tensors(self, features: Any) -> np.ndarray:
        """SPD tensors ``(n, m, m)`` of features ``(n, f)`` (SPD for any finite features)."""
        f = np.asarray(features, dtype=float)
        if f.ndim == 1:
            f = f[None]
        if self.kind == "log_isotropic":
            if self.physics == "conductivity":
                return np.exp(f[:, 0])[:, None, None] * np.eye(self.dim)
            bulk, shear = np.exp(f[:, 0]), np.exp(f[:, 1])
            return np.stack([isotropic_stiffness(k, g, self.dim) for k, g in zip(bulk, shear)])
        n_f = f.shape[1]
        m = int(round((np.sqrt(8 * n_f + 1) - 1) / 2))
        if m * (m + 1) // 2 != n_f:
            raise InputError(f"{n_f} features are not the lower triangle of a square matrix")
        rows, cols = np.tril_indices(m)
        chol = np.zeros((f.shape[0], m, m))
        vals = f.copy()
        diag = rows == cols
        vals[:, diag] = np.exp(vals[:, diag])
        chol[:, rows, cols] = vals
        return chol @ np.swapaxes(chol, 1, 2)

    def feature_names(self, m: int | None = None) -> list[str]:
        if self.kind == "log_isotropic":
            return ["log_conductivity"] if self.physics == "conductivity" else ["log_bulk", "log_shear"]
        m = m or (6 if self.dim == 3 else 3) if self.physics == "elasticity" else (m or self.dim)
        return [f"log_L_{i}{j}" if i == j else f"L_{i}{j}" for i, j in zip(*np.tril_indices(m))]

    # ------------------------------------------------------------------ uncertainty
    def tensor_samples(self, mean: Any, std: Any, n_samples: int = 1000,
                       rng: np.random.Generator | int | None = None) -> np.ndarray:
        r"""Tensor samples of independent Gaussian features :math:`\mathcal N(\mu, \sigma^2)`.

        Returns ``(n_samples, n, m, m)``; every sample is SPD. Use posterior function
        samples of a GP instead when the features' correlations matter.
        """
        mu = np.atleast_2d(np.asarray(mean, dtype=float))
        sd = np.broadcast_to(np.atleast_2d(np.asarray(std, dtype=float)), mu.shape)
        if np.any(sd < 0):
            raise InputError("standard deviations must be >= 0")
        gen = np.random.default_rng(rng)
        draws = mu + sd * gen.standard_normal((n_samples, *mu.shape))
        return self.tensors(draws.reshape(-1, mu.shape[1])).reshape(n_samples, mu.shape[0], *self._shape(mu))

    def _shape(self, mu: np.ndarray) -> tuple[int, int]:
        t = self.tensors(mu[:1])
        return t.shape[1], t.shape[2]
