r"""Bounds and exact results for effective tensors.

* :func:`voigt` and :func:`reuss`: :math:`\langle\mathbb C\rangle` and
  :math:`\langle\mathbb C^{-1}\rangle^{-1}`, which bound every effective tensor
  in the sense of quadratic forms.
* :func:`hashin_shtrikman`: the Hashin–Shtrikman(–Walpole) bounds for
  statistically isotropic mixtures of isotropic phases (conductivity in 2D/3D,
  3D elasticity, 2D plane-strain elasticity).
* :func:`laminate`: the exact effective tensor of a laminate (Backus in the
  isotropic elastic case), for any anisotropic phases.
* :func:`dilute_spheres`: Eshelby's dilute estimate, first order in the volume
  fraction.

Formulas and their sources are listed in ``docs/theory/bounds.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from .errors import InputError, MaterialError
from .materials import CONDUCTIVITY, ELASTICITY, IsotropicElastic, Material, Void

__all__ = [
    "IsotropicBounds",
    "dilute_spheres",
    "hashin_shtrikman",
    "laminate",
    "phase_fractions",
    "reuss",
    "voigt",
]


class IsotropicBounds(NamedTuple):
    """Lower and upper bounds on isotropic moduli.

    For conductivity ``bulk`` holds the conductivity bounds and ``shear`` is None.
    In 3D elasticity ``bulk`` bounds :math:`K`; in 2D plane strain it bounds
    :math:`\\kappa = \\lambda + G`. Each entry is a ``(lower, upper)`` tuple.
    """

    bulk: tuple[float, float]
    shear: tuple[float, float] | None


def _as_list(phases: Sequence[Material] | Mapping[int, Material]) -> list[Material]:
    if isinstance(phases, Mapping):
        return [phases[k] for k in sorted(phases)]
    return list(phases)


def _physics(phases: list[Material]) -> str:
    kinds = {p.physics for p in phases if not p.is_void}
    if not kinds:
        raise MaterialError("every phase is Void: there is nothing to homogenize")
    if len(kinds) > 1:
        raise MaterialError(f"phases mix {sorted(kinds)} laws; use all Conductivity or all elastic phases")
    return kinds.pop()


def _fractions(fractions: Sequence[float], n: int) -> np.ndarray:
    f = np.asarray(fractions, dtype=float)
    if f.shape != (n,):
        raise InputError(f"need one volume fraction per phase ({n}), got shape {f.shape}")
    if np.any(f < 0) or not np.isclose(f.sum(), 1.0, atol=1e-9):
        raise InputError(f"volume fractions must be >= 0 and sum to 1, got {f.tolist()} (sum {f.sum():.6g})")
    return f


def _tensors(phases: list[Material], dim: int) -> np.ndarray:
    phys = _physics(phases)
    return np.array([p.tensor(dim, phys) if isinstance(p, Void) else p.tensor(dim) for p in phases])


def _check_dim(dim: int) -> None:
    if dim not in (2, 3):
        raise InputError(f"dim must be 2 or 3, got {dim!r}")


def phase_fractions(image: np.ndarray, n_phases: int | None = None) -> np.ndarray:
    """Volume fraction of each label ``0 .. n_phases - 1`` in an integer image.

    Raises
    ------
    InputError
        If the image is empty, does not hold integer labels, has negative labels,
        or has a label ``>= n_phases``.
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if image.dtype.kind not in "iu":
        raise InputError(f"image must hold integer phase labels, got dtype {image.dtype}")
    if image.size == 0:
        raise InputError(f"image is empty (shape {image.shape})")
    if image.min() < 0:
        raise InputError(f"phase labels must be >= 0, found {int(image.min())}")
    top = int(image.max())
    n = top + 1 if n_phases is None else int(n_phases)
    if top >= n:
        raise InputError(f"the image holds label {top} but n_phases = {n}; pass n_phases > {top}")
    return np.bincount(image.ravel(), minlength=n) / image.size


def voigt(phases: Sequence[Material], fractions: Sequence[float], dim: int) -> np.ndarray:
    r"""Voigt (arithmetic) bound :math:`\langle\mathbb C\rangle = \sum_i f_i\mathbb C_i`.

    Returns the ``d x d`` conductivity or Mandel stiffness; every effective tensor
    :math:`\mathbb C^*` satisfies :math:`\mathbb C^* \preceq \langle\mathbb C\rangle`.
    """
    phases = _as_list(phases)
    f = _fractions(fractions, len(phases))
    _check_dim(dim)
    return np.einsum("i,iab->ab", f, _tensors(phases, dim))


def reuss(phases: Sequence[Material], fractions: Sequence[float], dim: int) -> np.ndarray:
    r"""Reuss (harmonic) bound :math:`\langle\mathbb C^{-1}\rangle^{-1}`.

    Every effective tensor satisfies :math:`\langle\mathbb C^{-1}\rangle^{-1} \preceq
    \mathbb C^*`. A void phase with a positive fraction makes it zero.
    """
    phases = _as_list(phases)
    f = _fractions(fractions, len(phases))
    _check_dim(dim)
    t = _tensors(phases, dim)
    n = t.shape[-1]
    if any(p.is_void and fi > 0 for p, fi in zip(phases, f)):
        return np.zeros((n, n))
    comp = sum(fi * np.linalg.inv(ti) for fi, ti in zip(f, t) if fi > 0)
    return np.linalg.inv(comp)


def _moduli(phases: list[Material], dim: int, phys: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-phase (bulk-like, shear) moduli of isotropic phases; raises for anisotropic ones."""
    bulk, shear = [], []
    for p in phases:
        if not p.is_isotropic:
            raise MaterialError(f"Hashin-Shtrikman bounds need isotropic phases; {p!r} is anisotropic")
        if p.is_void:
            bulk.append(0.0)
            shear.append(0.0)
        elif phys == CONDUCTIVITY:
            bulk.append(float(p.k))  # type: ignore[attr-defined]
        else:
            assert isinstance(p, IsotropicElastic)
            bulk.append(p.bulk_modulus if dim == 3 else p.plane_strain_bulk_modulus)
            shear.append(p.shear_modulus)
    return np.array(bulk), (np.array(shear) if phys == ELASTICITY else None)


def _walpole(f: np.ndarray, m: np.ndarray, ref: float) -> float:
    r"""Hashin–Shtrikman–Walpole form :math:`[\sum_i f_i/(m_i + r)]^{-1} - r`."""
    mask = f > 0
    f, m = f[mask], m[mask]
    if np.isinf(ref) or np.any(np.isinf(m)):
        return float("inf") if np.any(np.isinf(m)) and np.isinf(ref) else _walpole_inf(f, m, ref)
    with np.errstate(divide="ignore"):
        s = np.sum(f / (m + ref))
    if np.isinf(s):
        return 0.0
    return float(1.0 / s - ref)


def _walpole_inf(f: np.ndarray, m: np.ndarray, ref: float) -> float:
    finite = np.isfinite(m)
    s = np.sum(f[finite] / (m[finite] + ref))
    return float(1.0 / s - ref) if s > 0 else float("inf")


def hashin_shtrikman(
    phases: Sequence[Material] | Mapping[int, Material],
    fractions: Sequence[float],
    dim: int,
) -> IsotropicBounds:
    r"""Hashin–Shtrikman bounds for an isotropic mixture of isotropic phases.

    Walpole's form, valid for any number of phases and for phases that are not
    well ordered:

    .. math::
        m^{\pm} = \Big[\sum_i \frac{f_i}{m_i + m_0^{\pm}}\Big]^{-1} - m_0^{\pm},

    with the reference :math:`m_0` taken from the stiffest (upper) or softest
    (lower) phase:

    * conductivity in :math:`d` dimensions: :math:`m = k`, :math:`m_0 = (d-1)k_{\max/\min}`;
    * 3D bulk: :math:`m_0 = \tfrac43\mu_{\max/\min}`; 3D shear:
      :math:`m_0 = \frac{\mu(9K+8\mu)}{6(K+2\mu)}` at :math:`(K, \mu)_{\max/\min}`;
    * 2D plane strain, with :math:`\kappa = \lambda + \mu`: bulk
      :math:`m_0 = \mu_{\max/\min}`; shear :math:`m_0 = \frac{\kappa\mu}{\kappa + 2\mu}`.

    For two phases these reduce to the classical formulas, e.g. in 3D
    :math:`K_1 + f_2/[1/(K_2-K_1) + 3f_1/(3K_1+4\mu_1)]`.

    Parameters
    ----------
    phases : sequence or mapping of Material
        Isotropic phases (:class:`Conductivity` with scalar ``k``,
        :class:`IsotropicElastic`, :class:`Void`).
    fractions : sequence of float
        Volume fraction of each phase, summing to 1.
    dim : {2, 3}

    Returns
    -------
    IsotropicBounds

    References
    ----------
    Z. Hashin, S. Shtrikman, J. Mech. Phys. Solids 11 (1963) 127-140.
    L. J. Walpole, J. Mech. Phys. Solids 14 (1966) 151-162.
    """
    phases = _as_list(phases)
    f = _fractions(fractions, len(phases))
    _check_dim(dim)
    phys = _physics(phases)
    bulk, shear = _moduli(phases, dim, phys)
    present = f > 0
    if phys == CONDUCTIVITY:
        kmin, kmax = bulk[present].min(), bulk[present].max()
        return IsotropicBounds(
            ((_walpole(f, bulk, (dim - 1) * kmin)), _walpole(f, bulk, (dim - 1) * kmax)), None
        )
    assert shear is not None
    kmin, kmax = bulk[present].min(), bulk[present].max()
    gmin, gmax = shear[present].min(), shear[present].max()
    if dim == 3:
        bulk_ref = (4.0 / 3.0 * gmin, 4.0 / 3.0 * gmax)

        def zeta(k: float, g: float) -> float:
            return 0.0 if g == 0 else g * (9 * k + 8 * g) / (6 * (k + 2 * g))
    else:
        bulk_ref = (gmin, gmax)

        def zeta(k: float, g: float) -> float:
            return 0.0 if g == 0 else k * g / (k + 2 * g)

    b = (_walpole(f, bulk, bulk_ref[0]), _walpole(f, bulk, bulk_ref[1]))
    s = (_walpole(f, shear, zeta(kmin, gmin)), _walpole(f, shear, zeta(kmax, gmax)))
    return IsotropicBounds(b, s)


def laminate(
    phases: Sequence[Material] | Mapping[int, Material],
    fractions: Sequence[float],
    dim: int,
    normal: int | None = None,
) -> np.ndarray:
    r"""Exact effective tensor of a laminate with layers normal to axis ``normal``.

    Across the layers the stress components that involve the normal :math:`n`
    (set :math:`N`) are continuous; along them the strain components that do not
    (set :math:`T`) are. Partitioning each layer's tensor accordingly,

    .. math::
        \mathbb C^*_{NN} = \langle \mathbb C_{NN}^{-1}\rangle^{-1},\quad
        \mathbb C^*_{NT} = \mathbb C^*_{NN}\langle\mathbb C_{NN}^{-1}\mathbb C_{NT}\rangle,\quad
        \mathbb C^*_{TT} = \langle \mathbb C_{TT} - \mathbb C_{TN}\mathbb C_{NN}^{-1}\mathbb C_{NT}\rangle
          + \langle\mathbb C_{TN}\mathbb C_{NN}^{-1}\rangle\,\mathbb C^*_{NN}\,
            \langle\mathbb C_{NN}^{-1}\mathbb C_{NT}\rangle .

    For isotropic elastic layers this is Backus' result, e.g.
    :math:`C^*_{3333} = \langle 1/(\lambda+2\mu)\rangle^{-1}` and
    :math:`C^*_{1212} = \langle\mu\rangle`; for conductivity it gives
    :math:`\langle k\rangle` along and :math:`\langle 1/k\rangle^{-1}` across the layers.
    Valid for any anisotropic (Mandel) phases. Void layers are allowed.

    Parameters
    ----------
    phases : sequence or mapping of Material
    fractions : sequence of float
        Thickness fraction of each phase.
    dim : {2, 3}
    normal : int, optional
        Axis normal to the layers (default: the last axis).

    Returns
    -------
    numpy.ndarray
        ``d x d`` conductivity or Mandel stiffness.
    """
    phases = _as_list(phases)
    f = _fractions(fractions, len(phases))
    _check_dim(dim)
    normal = dim - 1 if normal is None else int(normal)
    if not 0 <= normal < dim:
        raise InputError(f"normal must be an axis in 0..{dim - 1}, got {normal}")
    phys = _physics(phases)
    t = _tensors(phases, dim)[f > 0]
    voids = np.array([p.is_void for p in phases])[f > 0]
    f = f[f > 0]
    if phys == CONDUCTIVITY:
        nset = np.array([normal])
    else:
        from .tensors import MANDEL_PAIRS

        nset = np.array([a for a, (i, j) in enumerate(MANDEL_PAIRS[dim]) if normal in (i, j)])
    n = t.shape[-1]
    tset = np.setdiff1d(np.arange(n), nset)
    cnn = t[:, nset[:, None], nset[None, :]]
    cnt = t[:, nset[:, None], tset[None, :]]
    ctt = t[:, tset[:, None], tset[None, :]]
    solid = ~voids
    inv_nn = np.zeros_like(cnn)
    inv_nn[solid] = np.linalg.inv(cnn[solid])
    a = np.einsum("i,iab,ibc->ac", f[solid], inv_nn[solid], cnt[solid])  # <C_NN^-1 C_NT>
    schur = np.einsum("i,iab->ab", f, ctt) - np.einsum(
        "i,iba,ibc,icd->ad", f[solid], cnt[solid], inv_nn[solid], cnt[solid]
    )
    out = np.zeros((n, n))
    if np.any(voids):
        cstar_nn = np.zeros((len(nset), len(nset)))
    else:
        cstar_nn = np.linalg.inv(np.einsum("i,iab->ab", f, inv_nn))
    cstar_nt = cstar_nn @ a
    cstar_tt = schur + a.T @ cstar_nn @ a
    out[nset[:, None], nset[None, :]] = cstar_nn
    out[nset[:, None], tset[None, :]] = cstar_nt
    out[tset[:, None], nset[None, :]] = cstar_nt.T
    out[tset[:, None], tset[None, :]] = cstar_tt
    return out


def dilute_spheres(matrix: Material, inclusion: Material, fraction: float, dim: int = 3) -> np.ndarray | float:
    r"""Eshelby's dilute estimate for spherical (3D) or circular (2D, conductivity) inclusions.

    First order in the volume fraction :math:`f`:

    * conductivity: :math:`k^* = k_m\big[1 + d f\,\frac{k_i - k_m}{k_i + (d-1)k_m}\big]`;
    * 3D elasticity: :math:`K^* = K_m + f\frac{K_i - K_m}{1 + \alpha(K_i-K_m)/K_m}`,
      :math:`\mu^* = \mu_m + f\frac{\mu_i - \mu_m}{1 + \beta(\mu_i-\mu_m)/\mu_m}`, with
      :math:`\alpha = \frac{3K_m}{3K_m+4\mu_m}` and
      :math:`\beta = \frac{6(K_m+2\mu_m)}{5(3K_m+4\mu_m)}`.

    Returns
    -------
    float or numpy.ndarray
        The scalar conductivity, or the 6 x 6 isotropic Mandel stiffness.
    """
    from .tensors import isotropic_stiffness

    _check_dim(dim)
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise InputError(f"dilute_spheres: fraction must be a number in [0, 1], got {fraction!r}") from None
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"dilute_spheres: fraction must be in [0, 1], got {fraction!r}")
    if matrix.is_void:
        raise MaterialError("dilute_spheres: the matrix cannot be Void (an empty matrix has no dilute limit)")
    if not inclusion.is_void and inclusion.physics != matrix.physics:
        raise MaterialError(
            f"dilute_spheres: matrix and inclusion mix {matrix.physics!r} and {inclusion.physics!r} laws; "
            "use two Conductivity or two elastic phases"
        )
    if matrix.physics == CONDUCTIVITY:
        if not (matrix.is_isotropic and inclusion.is_isotropic):
            raise MaterialError("dilute_spheres needs isotropic phases")
        km = float(matrix.k)  # type: ignore[attr-defined]
        ki = 0.0 if inclusion.is_void else float(inclusion.k)  # type: ignore[attr-defined]
        return km * (1.0 + dim * fraction * (ki - km) / (ki + (dim - 1) * km))
    if dim != 3 or not isinstance(matrix, IsotropicElastic):
        raise MaterialError("dilute_spheres for elasticity needs an IsotropicElastic matrix in 3D")
    km, gm = matrix.bulk_modulus, matrix.shear_modulus
    if inclusion.is_void:
        ki = gi = 0.0
    elif isinstance(inclusion, IsotropicElastic):
        ki, gi = inclusion.bulk_modulus, inclusion.shear_modulus
    else:
        raise MaterialError("dilute_spheres needs an isotropic inclusion")
    alpha = 3 * km / (3 * km + 4 * gm)
    beta = 6 * (km + 2 * gm) / (5 * (3 * km + 4 * gm))
    k = km + fraction * (ki - km) / (1 + alpha * (ki - km) / km)
    g = gm + fraction * (gi - gm) / (1 + beta * (gi - gm) / gm)
    return isotropic_stiffness(k, g, 3)
