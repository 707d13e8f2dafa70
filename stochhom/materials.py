r"""Phase laws: linear conductivity and linear elasticity.

A microstructure is a label image plus one material per label. Materials are
small immutable objects; the solver asks each for its tensor in the notation of
the problem (``d x d`` conductivity, Mandel stiffness) via :meth:`Material.tensor`.

2D elasticity is plane strain: the in-plane block (11, 22, 12) of the 3D
stiffness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import MaterialError
from .tensors import isotropic_stiffness, mandel_size, plane_strain, rotate

__all__ = [
    "CONDUCTIVITY",
    "ELASTICITY",
    "AnisotropicElastic",
    "Conductivity",
    "IsotropicElastic",
    "Material",
    "Void",
]

CONDUCTIVITY = "conductivity"
ELASTICITY = "elasticity"


def _finite_positive(name: str, value: float, cls: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MaterialError(f"{cls}: {name} must be a real number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise MaterialError(f"{cls}: {name} must be finite and > 0, got {value!r}")
    return v


def _real_matrix(value: object, what: str) -> np.ndarray:
    try:
        return np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise MaterialError(f"{what} must be a matrix of real numbers, got {value!r}") from None


def _check_spd(m: np.ndarray, what: str, rtol: float = 1e-8) -> np.ndarray:
    if not np.all(np.isfinite(m)):
        raise MaterialError(f"{what} has non-finite entries: {m.tolist()}")
    scale = np.max(np.abs(m))
    if not np.allclose(m, m.T, rtol=0.0, atol=rtol * max(scale, 1e-300)):
        asym = np.max(np.abs(m - m.T))
        raise MaterialError(f"{what} is not symmetric (largest |A - A^T| = {asym:.3g}); pass a symmetric matrix")
    m = 0.5 * (m + m.T)
    eig = np.linalg.eigvalsh(m)
    if eig[0] <= rtol * max(eig[-1], 0.0) or eig[-1] <= 0:
        raise MaterialError(
            f"{what} is not positive definite (eigenvalues {np.array2string(eig, precision=4)}); "
            "use Void() for an empty phase"
        )
    return m


class Material:
    """Base class of the phase laws.

    Attributes
    ----------
    physics : str or None
        ``"conductivity"``, ``"elasticity"``, or ``None`` for :class:`Void`, which
        takes the physics of the other phases.
    """

    physics: str | None = None

    def tensor(self, dim: int) -> np.ndarray:  # pragma: no cover - abstract
        """Tensor of the phase in ``dim`` dimensions (``d x d`` or Mandel ``n x n``)."""
        raise NotImplementedError

    @property
    def is_void(self) -> bool:
        """True for a phase with zero stiffness or conductivity."""
        return False

    @property
    def is_isotropic(self) -> bool:
        """True if the tensor is isotropic (fast solver path)."""
        return False


@dataclass(frozen=True)
class Conductivity(Material):
    r"""Linear (thermal, electric) conductivity, scalar or a ``d x d`` SPD tensor.

    The flux is :math:`q = k\,\nabla\theta` (the sign convention of homogenization:
    the macroscopic gradient drives the mean flux).

    Parameters
    ----------
    k : float or array_like of shape (d, d)
        Scalar conductivity (> 0) or symmetric positive-definite tensor. A 3 x 3
        tensor used in a 2D problem contributes its in-plane (1-2) block.

    Examples
    --------
    >>> Conductivity(10.0).tensor(2)
    array([[10.,  0.],
           [ 0., 10.]])
    """

    k: float | np.ndarray
    physics: str = field(default=CONDUCTIVITY, init=False, repr=False)

    def __post_init__(self) -> None:
        k = _real_matrix(self.k, "Conductivity: k") if not np.isscalar(self.k) else self.k
        if np.ndim(k) == 0:
            object.__setattr__(self, "k", _finite_positive("k", k, "Conductivity"))
        else:
            if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] not in (2, 3):
                raise MaterialError(f"Conductivity: k must be a scalar or a 2 x 2 / 3 x 3 matrix, got shape {k.shape}")
            object.__setattr__(self, "k", _check_spd(k, "Conductivity tensor"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Conductivity) and np.array_equal(self.k, other.k)

    def __hash__(self) -> int:
        return hash(("Conductivity", np.asarray(self.k).tobytes()))

    @property
    def is_isotropic(self) -> bool:
        return np.ndim(self.k) == 0

    def tensor(self, dim: int) -> np.ndarray:
        if np.ndim(self.k) == 0:
            return self.k * np.eye(dim)
        k = np.asarray(self.k)
        if k.shape[0] == dim:
            return k.copy()
        if k.shape[0] == 3 and dim == 2:
            return k[:2, :2].copy()
        raise MaterialError(f"Conductivity: a {k.shape[0]} x {k.shape[0]} tensor cannot be used in a {dim}D problem")


@dataclass(frozen=True)
class IsotropicElastic(Material):
    r"""Isotropic linear elasticity from Young's modulus and Poisson's ratio.

    .. math::
        \lambda = \frac{E\nu}{(1+\nu)(1-2\nu)},\quad G = \mu = \frac{E}{2(1+\nu)},\quad
        K = \lambda + \tfrac23\mu .

    Parameters
    ----------
    E : float
        Young's modulus, > 0.
    nu : float
        Poisson's ratio, in (-1, 0.5).

    Examples
    --------
    >>> m = IsotropicElastic.from_bulk_shear(K=10.0, G=3.0)
    >>> round(m.bulk_modulus, 12), round(m.shear_modulus, 12)
    (10.0, 3.0)
    """

    E: float
    nu: float
    physics: str = field(default=ELASTICITY, init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "E", _finite_positive("E", self.E, "IsotropicElastic"))
        try:
            nu = float(self.nu)
        except (TypeError, ValueError):
            raise MaterialError(f"IsotropicElastic: nu must be a real number, got {self.nu!r}") from None
        if not (-1.0 < nu < 0.5):
            raise MaterialError(
                f"IsotropicElastic: Poisson's ratio nu = {self.nu!r} is outside (-1, 0.5); "
                "nu = 0.5 is incompressible and not supported, use e.g. 0.499"
            )
        object.__setattr__(self, "nu", nu)

    @classmethod
    def from_bulk_shear(cls, K: float, G: float) -> IsotropicElastic:
        """Build from the bulk modulus ``K`` and shear modulus ``G`` (both > 0)."""
        K = _finite_positive("K", K, "IsotropicElastic.from_bulk_shear")
        G = _finite_positive("G", G, "IsotropicElastic.from_bulk_shear")
        E = 9.0 * K * G / (3.0 * K + G)
        nu = (3.0 * K - 2.0 * G) / (2.0 * (3.0 * K + G))
        return cls(E=E, nu=nu)

    @classmethod
    def from_lame(cls, lam: float, mu: float) -> IsotropicElastic:
        r"""Build from the Lamé constants :math:`\lambda` and :math:`\mu` (with :math:`3\lambda + 2\mu > 0`)."""
        mu = _finite_positive("mu", mu, "IsotropicElastic.from_lame")
        try:
            lam = float(lam)
        except (TypeError, ValueError):
            raise MaterialError(f"IsotropicElastic.from_lame: lam must be a real number, got {lam!r}") from None
        if not np.isfinite(lam) or not 3.0 * lam + 2.0 * mu > 0:
            raise MaterialError(
                f"IsotropicElastic.from_lame: need a finite lam with 3*lam + 2*mu > 0 (K > 0), got lam = {lam!r}, "
                f"mu = {mu!r}"
            )
        return cls.from_bulk_shear(K=lam + 2.0 * mu / 3.0, G=mu)

    @property
    def lame_lambda(self) -> float:
        r"""First Lamé constant :math:`\lambda`."""
        return self.E * self.nu / ((1.0 + self.nu) * (1.0 - 2.0 * self.nu))

    @property
    def shear_modulus(self) -> float:
        r"""Shear modulus :math:`G = \mu`."""
        return self.E / (2.0 * (1.0 + self.nu))

    lame_mu = shear_modulus

    @property
    def bulk_modulus(self) -> float:
        """Bulk modulus :math:`K`."""
        return self.E / (3.0 * (1.0 - 2.0 * self.nu))

    @property
    def plane_strain_bulk_modulus(self) -> float:
        r"""Plane-strain bulk modulus :math:`\kappa = \lambda + \mu`."""
        return self.lame_lambda + self.shear_modulus

    @property
    def is_isotropic(self) -> bool:
        return True

    def tensor(self, dim: int) -> np.ndarray:
        if dim == 3:
            return isotropic_stiffness(self.bulk_modulus, self.shear_modulus, 3)
        if dim == 2:
            return isotropic_stiffness(self.plane_strain_bulk_modulus, self.shear_modulus, 2)
        raise MaterialError(f"IsotropicElastic: dimension must be 2 or 3, got {dim}")


@dataclass(frozen=True, eq=False)
class AnisotropicElastic(Material):
    """General linear elasticity given by its Mandel stiffness matrix.

    Parameters
    ----------
    C : array_like, shape (6, 6) or (3, 3)
        Symmetric positive-definite Mandel stiffness (3D order 11, 22, 33, 23, 13,
        12; a 3 x 3 matrix is a 2D plane-strain stiffness 11, 22, 12). Note the
        Mandel factors: a shear entry is ``2 * C_{2323}``, not the Voigt ``C_44``.

    See Also
    --------
    AnisotropicElastic.from_cubic, stochhom.tensors.to_mandel
    """

    C: np.ndarray
    physics: str = field(default=ELASTICITY, init=False, repr=False)

    def __post_init__(self) -> None:
        c = _real_matrix(self.C, "AnisotropicElastic: C")
        if c.shape not in ((6, 6), (3, 3)):
            raise MaterialError(
                f"AnisotropicElastic: C must be a 6 x 6 (3D) or 3 x 3 (2D) Mandel matrix, got shape {c.shape}"
            )
        c = _check_spd(c, "AnisotropicElastic stiffness")
        c.setflags(write=False)
        object.__setattr__(self, "C", c)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnisotropicElastic) and np.array_equal(self.C, other.C)

    def __hash__(self) -> int:
        return hash(("AnisotropicElastic", self.C.tobytes()))

    @classmethod
    def from_cubic(cls, C11: float, C12: float, C44: float) -> AnisotropicElastic:
        """Cubic crystal in its crystal frame, from the Voigt constants C11, C12, C44."""
        c = np.zeros((6, 6))
        c[:3, :3] = C12
        c[range(3), range(3)] = C11
        c[range(3, 6), range(3, 6)] = 2.0 * C44
        return cls(c)

    @classmethod
    def from_voigt(cls, C: np.ndarray) -> AnisotropicElastic:
        """Build from a Voigt 6 x 6 matrix (engineering shear strains), converting to Mandel."""
        c = _real_matrix(C, "AnisotropicElastic.from_voigt: C")
        if c.shape != (6, 6):
            raise MaterialError(f"from_voigt expects a 6 x 6 matrix, got {c.shape}")
        w = np.array([1, 1, 1, np.sqrt(2), np.sqrt(2), np.sqrt(2)])
        return cls(c * np.outer(w, w))

    def rotated(self, r: np.ndarray) -> AnisotropicElastic:
        """The stiffness rotated by the rotation matrix ``r`` (crystal to sample frame)."""
        return AnisotropicElastic(rotate(self.C, r))

    def tensor(self, dim: int) -> np.ndarray:
        n = mandel_size(dim)
        if self.C.shape[0] == n:
            return np.array(self.C)
        if dim == 2:
            return plane_strain(self.C)
        raise MaterialError(
            "AnisotropicElastic: a 2D (3 x 3) stiffness cannot be used in a 3D problem; give the 6 x 6 matrix"
        )


@dataclass(frozen=True)
class Void(Material):
    """An empty phase (pore, crack): zero stiffness or zero conductivity.

    Void takes the physics of the other phases. Porous media are solved by the default
    conjugate-gradient scheme, on Q1 voxel elements by default (``discretization="auto"``;
    the ``"rotated"`` scheme converges too, with more iterations and a larger
    discretization error); fixed-point schemes and the Fourier discretization cannot
    converge with a void phase.
    """

    @property
    def is_void(self) -> bool:
        return True

    @property
    def is_isotropic(self) -> bool:
        return True

    def tensor(self, dim: int, physics: str = ELASTICITY) -> np.ndarray:
        n = mandel_size(dim) if physics == ELASTICITY else dim
        return np.zeros((n, n))


