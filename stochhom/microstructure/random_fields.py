r"""Periodic Gaussian random fields and their level cuts.

A stationary, zero-mean, unit-variance Gaussian field :math:`Y` on the periodic
cell is synthesized exactly on the grid by circulant embedding: its covariance
matrix is circulant, diagonalized by the FFT, with eigenvalues

.. math::
    \lambda_m = \frac{N}{|\Omega|}\sum_{j\in\mathbb Z^d}\hat\rho\Big(\frac{2\pi (m + jn)}{L}\Big),

the spectral density :math:`\hat\rho` of the correlation model sampled at the
lattice frequencies of the cell and aliased onto the grid. By Poisson summation
this is the discrete Fourier transform of the *periodized* correlation
:math:`\sum_n\rho(x + nL)` sampled at the grid offsets, which is how it is computed
(in real space, with image shells added while the neglected correlation exceeds
``IMAGE_TOL`` = 1e-6; no aliasing error, and positive semi-definite). Then
:math:`Y = \mathcal F^{-1}[\sqrt{\lambda}\,\mathcal F\xi]` for white noise
:math:`\xi`, and the covariance of :math:`Y` on the grid is exactly the periodized
correlation (normalized to unit variance).

Correlation models (:math:`r` scaled by the correlation lengths, :math:`\ell`):

* ``"gaussian"``: :math:`\rho = \exp(-r^2/(2\ell^2))`, :math:`\hat\rho \propto \exp(-k^2\ell^2/2)`;
* ``"exponential"``: :math:`\rho = \exp(-r/\ell)` (Matérn with :math:`\nu = 1/2`);
* ``"matern"``: :math:`\rho = \frac{2^{1-\nu}}{\Gamma(\nu)}(\sqrt{2\nu}\,r/\ell)^\nu
  K_\nu(\sqrt{2\nu}\,r/\ell)`, :math:`\hat\rho \propto (1 + k^2\ell^2/(2\nu))^{-(\nu + d/2)}`.

Anisotropy: correlation lengths :math:`\ell_i` along the axes of a frame rotated by
``angles`` (Bunge Euler angles in 3D, one angle in 2D):
:math:`r^2 = |\mathrm{diag}(\ell)^{-1}R^T x|^2`.

Level cut (Torquato 2002, ch. 2): phase 1 is :math:`\{Y \le \alpha\}`, with
:math:`\alpha = \Phi^{-1}(\varphi)` (``cut="threshold"``: the fraction of a sample
fluctuates around :math:`\varphi`) or :math:`\alpha` the sample quantile
(``cut="quantile"``: the fraction is exact). Its two-point probability is
:math:`S_2(r) = \Phi_2(\alpha, \alpha; \rho(r))`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.fft as sfft
from scipy import special, stats

from ..errors import InputError, RepresentativenessWarning
from ..tensors import rotation_matrix

__all__ = ["MODELS", "correlation", "spectral_density", "gaussian_field", "level_cut", "grid_covariance"]

#: Correlation models of :func:`gaussian_field`.
MODELS = ("gaussian", "exponential", "matern")
#: Periodic images are summed while the correlation they would add exceeds this.
IMAGE_TOL = 1e-6
_IMAGE_BUDGET = 3e8  # correlation evaluations allowed for the image sum


def _model(model: str, nu: float | None) -> tuple[str, float | None]:
    if model not in MODELS:
        raise InputError(f"unknown correlation model {model!r}; choose one of {list(MODELS)}")
    if model == "exponential":
        return "matern", 0.5
    if model == "matern":
        if nu is None or not np.isfinite(nu) or nu <= 0:
            raise InputError(f"the Matérn model needs a smoothness nu > 0, got {nu!r}")
        return "matern", float(nu)
    return "gaussian", None


def correlation(r: np.ndarray, model: str = "gaussian", nu: float | None = None) -> np.ndarray:
    r"""Correlation :math:`\rho(r)` of a model at distances ``r`` in units of the correlation length."""
    kind, nu = _model(model, nu)
    r = np.abs(np.asarray(r, dtype=float))
    if kind == "gaussian":
        return np.exp(-0.5 * r**2)
    s = np.sqrt(2.0 * nu) * r
    with np.errstate(invalid="ignore"):
        out = 2.0 ** (1.0 - nu) / special.gamma(nu) * s**nu * special.kv(nu, s)
    return np.where(s == 0, 1.0, out)


def spectral_density(k2: np.ndarray, dim: int, model: str = "gaussian", nu: float | None = None) -> np.ndarray:
    r"""Spectral density (up to a constant) at squared dimensionless wavenumbers :math:`k^2\ell^2`."""
    kind, nu = _model(model, nu)
    if kind == "gaussian":
        return np.exp(-0.5 * k2)
    return (1.0 + k2 / (2.0 * nu)) ** (-(nu + 0.5 * dim))


def _lengths(correlation_length: float | Sequence[float], dim: int, voxel_size: float) -> np.ndarray:
    ell = np.atleast_1d(np.asarray(correlation_length, dtype=float))
    if ell.size == 1:
        ell = np.repeat(ell, dim)
    if ell.shape != (dim,) or not np.all(np.isfinite(ell)) or np.any(ell <= 0):
        raise InputError(f"correlation_length must be one positive number or {dim} of them, got {correlation_length!r}")
    return ell / voxel_size


def _frame(angles: float | Sequence[float] | None, dim: int) -> np.ndarray:
    if angles is None:
        return np.eye(dim)
    a = np.asarray(angles, dtype=float)
    if dim == 2 and a.ndim == 0:
        return rotation_matrix(a, 2)
    if dim == 3 and a.shape == (3,):
        return rotation_matrix(a, 3)
    raise InputError(f"angles must be one angle (2D) or three Bunge Euler angles (3D), got {angles!r}")


def _periodized_correlation(
    shape: tuple[int, ...], ell: np.ndarray, frame: np.ndarray, model: str, nu: float | None
) -> np.ndarray:
    r""":math:`\sum_n \rho(x + nL)` at every grid offset ``x`` (minimum-image offsets)."""
    dim = len(shape)
    metric = np.diag(1.0 / ell) @ frame.T  # r = |metric @ x|, x in voxels
    # distance (in correlation lengths) to the nearest periodic image
    nearest = min(shape[j] * np.linalg.norm(metric[:, j]) for j in range(dim))
    # image shells while the neglected correlation exceeds IMAGE_TOL, within a cost budget
    shells = 0
    size = int(np.prod(shape))
    while correlation(np.array([(shells + 0.5) * nearest]), model, nu)[0] > IMAGE_TOL:
        if (2 * shells + 3) ** dim * size > _IMAGE_BUDGET:
            warnings.warn(
                f"the correlation length is comparable to the box {shape}: its periodic images are summed over "
                f"{shells} shells only, so the covariance is truncated at about "
                f"{correlation(np.array([(shells + 0.5) * nearest]), model, nu)[0]:.1e}; use a larger box",
                RepresentativenessWarning,
                stacklevel=4,
            )
            break
        shells += 1
    offsets = []
    for ax, n in enumerate(shape):
        x = sfft.fftfreq(n, 1.0 / n)
        shp = [1] * dim
        shp[ax] = n
        offsets.append(x.reshape(shp))
    diagonal = np.allclose(frame, np.eye(dim))
    out = np.zeros(shape)
    for image in np.ndindex(*([2 * shells + 1] * dim)):
        shift = [(image[ax] - shells) * shape[ax] for ax in range(dim)]
        if diagonal:
            r2 = sum(((offsets[ax] + shift[ax]) / ell[ax]) ** 2 for ax in range(dim))
        else:
            r2 = 0.0
            for i in range(dim):
                u = sum(metric[i, ax] * (offsets[ax] + shift[ax]) for ax in range(dim))
                r2 = r2 + u**2
        out += correlation(np.sqrt(np.broadcast_to(r2, shape)), model, nu)
    return out


def _eigenvalues(
    shape: tuple[int, ...], ell: np.ndarray, frame: np.ndarray, model: str, nu: float | None, workers: int = 1
) -> np.ndarray:
    """Circulant eigenvalues on the real-FFT half grid, normalized to unit variance."""
    cov = _periodized_correlation(shape, ell, frame, model, nu)
    lam = sfft.rfftn(cov, workers=workers).real
    del cov
    # a fully periodized correlation is positive semi-definite; a truncated one (see the
    # warning above) may not be: clip the negative eigenvalues
    np.maximum(lam, 0.0, out=lam)
    w = np.full(lam.shape[-1], 2.0)
    w[0] = 1.0
    if shape[-1] % 2 == 0:
        w[-1] = 1.0
    return lam * (np.prod(shape) / float(np.sum(lam * w)))


def grid_covariance(
    shape: Sequence[int],
    correlation_length: float | Sequence[float],
    model: str = "gaussian",
    nu: float | None = None,
    angles: float | Sequence[float] | None = None,
    voxel_size: float = 1.0,
) -> np.ndarray:
    r"""The exact covariance, on the grid, of the fields of :func:`gaussian_field`.

    Returns :math:`\mathrm{Cov}(Y(0), Y(x))` for every grid offset ``x`` (an array of
    ``shape``; 1 at the origin). It is the periodized correlation of the model up to
    the aliasing of frequencies far beyond the grid resolution.
    """
    shape = tuple(int(s) for s in shape)
    ell = _lengths(correlation_length, len(shape), voxel_size)
    lam = _eigenvalues(shape, ell, _frame(angles, len(shape)), model, nu)
    return sfft.irfftn(lam, s=shape)


def gaussian_field(
    shape: Sequence[int],
    correlation_length: float | Sequence[float],
    rng: np.random.Generator,
    model: str = "gaussian",
    nu: float | None = None,
    angles: float | Sequence[float] | None = None,
    voxel_size: float = 1.0,
    workers: int = 1,
) -> np.ndarray:
    r"""A periodic, stationary, standard Gaussian random field on the grid.

    Parameters
    ----------
    shape : sequence of int
        Grid size (2D or 3D).
    correlation_length : float or sequence of float
        :math:`\ell` (physical units), one value or one per axis of the frame.
    rng : numpy.random.Generator
    model : {"gaussian", "exponential", "matern"}
    nu : float, optional
        Matérn smoothness (required for ``model="matern"``).
    angles : float or sequence of float, optional
        Orientation of the correlation frame (2D: one angle; 3D: Bunge angles).
    voxel_size : float
        Physical size of a voxel.
    workers : int
        FFT threads.

    Returns
    -------
    numpy.ndarray of float64
        The field, with exactly the covariance :func:`grid_covariance` on the grid.
    """
    shape = tuple(int(s) for s in shape)
    ell = _lengths(correlation_length, len(shape), voxel_size)
    lam = _eigenvalues(shape, ell, _frame(angles, len(shape)), model, nu, workers)
    noise = sfft.rfftn(rng.standard_normal(shape), workers=workers)
    noise *= np.sqrt(lam)
    del lam
    return sfft.irfftn(noise, s=shape, workers=workers, overwrite_x=True)


def level_cut(
    field: np.ndarray, volume_fractions: float | Sequence[float], cut: str = "threshold"
) -> np.ndarray:
    r"""Cut a standard Gaussian field into phases.

    Phase ``k`` (``k = 1 .. P``) is :math:`\{\alpha_{k-1} < Y \le \alpha_k\}` and phase
    0 is the rest, with :math:`\alpha_k` such that the cumulative fractions are
    :math:`\varphi_1 + \dots + \varphi_k`.

    Parameters
    ----------
    field : numpy.ndarray
        Standard Gaussian field.
    volume_fractions : float or sequence of float
        Target fraction of phase 1 (or of phases 1, 2, ...), summing to less than 1.
    cut : {"threshold", "quantile"}
        ``"threshold"``: :math:`\alpha_k = \Phi^{-1}(\text{cumulative fraction})`, so each
        sample's fractions fluctuate around the targets (the stationary random-set
        model); ``"quantile"``: the sample quantiles, so the fractions are exact (to one
        voxel).

    Returns
    -------
    numpy.ndarray of uint8
    """
    fr = np.atleast_1d(np.asarray(volume_fractions, dtype=float))
    if fr.ndim != 1 or np.any(~np.isfinite(fr)) or np.any(fr <= 0) or fr.sum() >= 1:
        raise InputError(
            f"volume_fraction(s) must lie in (0, 1) and sum to less than 1, got {volume_fractions!r}"
        )
    if cut not in ("threshold", "quantile"):
        raise InputError(f"cut must be 'threshold' or 'quantile', got {cut!r}")
    cum = np.cumsum(fr)
    labels = np.zeros(field.shape, dtype=np.uint8 if fr.size < 255 else np.uint16)
    if cut == "threshold":
        alphas = stats.norm.ppf(cum)
        # label = 1 + number of thresholds strictly below Y, for Y <= alpha_P; else 0
        idx = np.searchsorted(alphas, field, side="left")
        labels[...] = np.where(idx < fr.size, idx + 1, 0)
        return labels
    flat = field.reshape(-1)
    counts = np.round(cum * flat.size).astype(np.int64)
    kth = np.clip(counts - 1, 0, flat.size - 1)
    alphas = np.partition(flat, kth)[kth]  # sample quantiles, O(N)
    idx = np.searchsorted(alphas, field, side="left")
    labels[...] = np.where(idx < fr.size, idx + 1, 0)
    return labels


def _generate_gaussian(
    shape: tuple[int, ...],
    rng: np.random.Generator,
    *,
    voxel_size: float = 1.0,
    workers: int = 1,
    volume_fraction: float | Sequence[float] = 0.5,
    correlation_length: float | Sequence[float] = 1.0,
    model: str = "gaussian",
    nu: float | None = None,
    angles: float | Sequence[float] | None = None,
    cut: str = "threshold",
) -> np.ndarray:
    """Level-cut Gaussian random field (generator ``"gaussian"``).

    Parameters: ``volume_fraction`` (phase 1, or phases 1..P), ``correlation_length``
    (one or one per axis, physical units), ``model`` (``"gaussian"``,
    ``"exponential"``, ``"matern"`` with ``nu``), ``angles`` (frame orientation) and
    ``cut`` (``"threshold"``: fractions fluctuate between samples; ``"quantile"``:
    exact fractions). Phase 1 is the low values :math:`Y \\le \\alpha`.
    """
    field = gaussian_field(shape, correlation_length, rng, model, nu, angles, voxel_size, workers)
    return level_cut(field, volume_fraction, cut)


def _register() -> None:
    from .ensemble import FRACTION, POSITIVE, Generator, register

    register(
        Generator(
            "gaussian",
            _generate_gaussian,
            periodic=True,
            summary="level-cut Gaussian random field (gaussian/exponential/Matern covariance)",
            lengths=("correlation_length",),
            ranges={"volume_fraction": FRACTION, "correlation_length": POSITIVE, "nu": POSITIVE},
            labels=_gaussian_labels,
        )
    )


def _gaussian_labels(params: dict) -> range:
    """Label 0 (the high values) and 1 .. P, one per volume fraction."""
    return range(np.atleast_1d(np.asarray(params.get("volume_fraction", 0.5), dtype=object)).size + 1)


_register()
