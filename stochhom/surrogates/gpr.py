r"""Gaussian-process regression (exact, float64, gpytorch kernels) with an honest noise model.

A GP surrogate learns :math:`\theta \mapsto Z` from noisy observations
:math:`y_i = f(x_i) + \varepsilon_i`, :math:`\varepsilon_i \sim N(0, \sigma^2(x_i))`, with a
prior :math:`f \sim GP(m, k)` of constant mean :math:`m` and a scaled stationary kernel

.. math:: k(x, x') = s^2\, \kappa_\nu\!\left(r\right), \qquad
          r^2 = \sum_{d} (x_d - x'_d)^2 / \ell_d^2 ,

where :math:`\kappa` is the squared exponential (``"rbf"``, :math:`e^{-r^2/2}`) or a Matérn
function of smoothness :math:`\nu = 1/2, 3/2, 5/2` (``"matern12"``, ``"matern32"``,
``"matern52"``), with one length scale :math:`\ell_d` per input (ARD) or a shared one.
The kernels are gpytorch's ``ScaleKernel`` over ``RBFKernel`` / ``MaternKernel``.

Inference is exact, in double precision, on internally standardized inputs and outputs.
With :math:`K = k(X, X)`, :math:`\Sigma = \mathrm{diag}(\sigma^2(x_i))`, the jitter
:math:`\delta` and the Cholesky factor :math:`L L^T = K + \Sigma + \delta I`:

.. math:: \alpha = (K + \Sigma + \delta I)^{-1} (y - m), \qquad
          \mu(x_*) = m + k_*^T \alpha, \qquad
          v(x_*) = k(x_*, x_*) - \lVert L^{-1} k_* \rVert^2
                   + \frac{(1 - \mathbf 1^T A^{-1} k_*)^2}{\mathbf 1^T A^{-1} \mathbf 1},

(:math:`A = LL^T`) the posterior mean and (epistemic) variance of the latent
:math:`f(x_*)`. The last term is the variance of the estimated constant mean :math:`m`
(ordinary kriging: at the likelihood's maximum :math:`m` is the GLS estimate
:math:`\mathbf 1^T A^{-1} y / \mathbf 1^T A^{-1}\mathbf 1`). Without it a nearly constant
output, whose fitted signal variance is tiny, would be claimed known to far better than
:math:`\sigma/\sqrt n`, the error of its level. The predictive
variance of a new observation adds the noise: :math:`v(x_*) + \sigma^2(x_*)`, split in
:meth:`GPR.predict_components` into an *epistemic* part (what more data would remove) and
an *aleatoric* part (the microstructural scatter, which no amount of data removes).

Hyperparameters :math:`\vartheta = (m, s^2, \ell, \sigma^2)` maximize the exact log marginal
likelihood

.. math:: \log p(y \mid \vartheta) = -\tfrac12 (y - m)^T \alpha - \sum_i \log L_{ii}
          - \tfrac n2 \log 2\pi ,

by L-BFGS-B (scipy) on the log-parameters, within box bounds, with the analytic gradient

.. math:: \frac{\partial \log p}{\partial \vartheta_j} = \tfrac12 \mathrm{tr}\!\left(
          (\alpha\alpha^T - A^{-1}) \frac{\partial A}{\partial \vartheta_j}\right), \qquad
          A = K + \Sigma + \delta I ,

with :math:`A^{-1}` from LAPACK (``potrf``/``potri``). The gpytorch modules hold the
parameters (their state dicts are what :meth:`GPR.save` writes); kernel matrices and
their derivatives are evaluated from the same closed forms (``_radial``), several
times faster than gpytorch's lazy kernels with autograd; the tests check that both agree.
Random restarts (``n_restarts``) start from random length scales and the best likelihood
wins; above 1000 points each start is first optimized on a random subset of 500 points
and only the best of those is refined on all points. Measured on 2 cores: L-BFGS-B
needs 20-60 likelihood evaluations per start (Adam needs hundreds of steps, and
gpytorch's default CG/Lanczos path is approximate); 200 points in 2 dimensions fit in
about 0.3 s with 3 starts, 2000 points in 4 dimensions in 7-10 s of one core (about 25
evaluations on all points, each a Cholesky factorization and an inverse, :math:`n^3`
flops, plus about 80 on the subset). The BLAS runs on one thread up to 1000 points and
on the idle cores above (:func:`_blas_threads`); torch's element-wise work on one.

Prediction at many points. Kernel values come from compiled kernels (numba, with a
vectorized exponential: about 2.5 ns a value on one core, against 16 ns for torch's
``cdist``/``exp``), and the mean is fused with them. The variance needs
:math:`k_*^T A^{-1} k_*`, :math:`n^2` flops a point by triangular solves (4e11 flops for
1e5 points at :math:`n = 2000`: 9 s on one core). With :math:`A = D^{1/2}(I + M)D^{1/2}`,
:math:`M = s^2 D^{-1/2}\kappa D^{-1/2} = U\Lambda U^T`, and
:math:`\tilde k = s^2 D^{-1/2}\kappa_*`, :math:`w = U^T \tilde k`:

.. math:: k_*^T A^{-1} k_* = \sum_i \frac{w_i^2}{1 + \lambda_i}
          \in \Bigl[H_r + \frac{R_r}{1 + \lambda_r},\; H_r + R_r\Bigr], \qquad
          H_r = \sum_{i<r} \frac{w_i^2}{1 + \lambda_i}, \quad
          R_r = \lVert \tilde k - U_r U_r^T \tilde k\rVert^2 ,

because the eigenvalues beyond the leading :math:`r` lie in :math:`[0, \lambda_r]`. At
many points (at least 8 times :math:`n`) the variance is the midpoint of these bounds,
with :math:`r` the smallest multiple of 16 that certifies a relative error of 0.5 % at
99 % of 256 probe points; every point whose own bounds are wider is solved exactly, so
every variance returned is within 0.5 % of the exact one. Smooth kernels need few
eigenpairs (64-176 of 2000 in the benchmarks), so 1e5 variances cost :math:`4nr` flops
each instead of :math:`n^2`. :math:`R_r` is the norm of the residual vector, not a
difference of norms: the latter loses every digit when the posterior variance is 1e-7 of
the prior's, as it is for smooth fits. The eigendecomposition (:math:`O(n^3)`, about
1 s at :math:`n = 2000`) is computed once per fitted model. Blocks of points are shared
among Python threads, each on one core (compiled kernels and one-thread BLAS release the
GIL): the thread pools of numba and the BLAS, alternating, spun against each other.

Noise models (``noise=``):

* ``"homoscedastic"``: one learned noise variance :math:`\sigma^2`;
* ``"fixed"``: per-point noise variances given to ``fit(X, y, noise_variance=...)``, e.g.
  :math:`s^2/n` when :math:`y` is the mean of :math:`n` replicates at a parameter point
  (the diagonal of gpytorch's ``FixedNoiseGaussianLikelihood``; no extra noise is learned);
* ``"heteroscedastic"``: a learned noise function :math:`\log \sigma^2(x) = g(x)`, with
  :math:`g` the posterior mean of a second GP, by the *most likely heteroscedastic GP*
  iteration of Kersting et al. (2007): fit a homoscedastic GP; estimate the noise at each
  training point from :math:`e_i = (y_i - \mu_i)^2 + v_i`; fit the noise GP to
  :math:`\log e_i - c(\rho_i)`; refit the main GP with :math:`\sigma^2(x_i) = e^{g(x_i)}`;
  repeat, and keep the iterate of highest marginal likelihood. The log-regression gives
  the shape of :math:`g`; its level is then set by moment matching (Duan's smearing
  estimator), :math:`g \leftarrow g + \log \overline{e_i e^{-g_i}}`, because
  :math:`c(\rho)` below holds for Gaussian scatter only: with heavy-tailed scatter
  :math:`E \log e` is lower (by 0.58 for Laplace scatter), and the level from the logs alone
  under-stated the variance by 20-33 % in the tests. :math:`e_i` is unbiased for
  :math:`\sigma_i^2`, and :math:`e_i = \sigma_i^2(\rho_i \chi^2_1 + 1 - \rho_i)` with
  :math:`\rho_i = \sigma_i^2 [(K + \Sigma)^{-1}]_{ii}`, so the bias of the log is removed
  exactly by :math:`c(\rho) = E \log(\rho \chi^2_1 + 1 - \rho)` (:math:`c(1) = \psi(1/2) +
  \log 2 \approx -1.27`; :math:`c \to 0` where the GP interpolates). A second GP on the log
  of squared residuals, rather than gpytorch's jointly trained ``HeteroskedasticNoise``,
  is robust: each step is an ordinary exact GP fit, and a noise that does not vary
  gives a flat :math:`g`, i.e. the homoscedastic model.

Numerical trouble (a kernel matrix that is not numerically positive definite, e.g. exact
duplicate inputs with zero noise) is retried with the jitter :math:`\delta` multiplied by 10
up to ``max_jitter``, and then reported as an :class:`~stochhom.errors.InputError` naming the
likely cause.

References
----------
Rasmussen, C. E. and Williams, C. K. I. (2006). *Gaussian Processes for Machine Learning*,
MIT Press, ch. 2 and 5 (Algorithm 2.1; eq. 5.8-5.9).

Kersting, K., Plagemann, C., Pfaff, P. and Burgard, W. (2007). Most likely heteroscedastic
Gaussian process regression. *Proc. ICML*, 393-400.

Duan, N. (1983). Smearing estimate: a nonparametric retransformation method. *J. Am. Stat.
Assoc.* 78, 605-610.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import math
import os
import time
import warnings
from collections.abc import Iterator
from typing import Any

import gpytorch
import numpy as np
import scipy
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.special
import torch
from threadpoolctl import ThreadpoolController

from ..errors import InputError, OutOfDomainWarning
from .base import Standardizer, SurrogateBase, check_is_fitted, check_X, check_Xy

__all__ = ["GPR", "GPPosterior"]

_KERNELS = {"rbf": None, "matern12": 0.5, "matern32": 1.5, "matern52": 2.5}
_NOISE_MODELS = ("homoscedastic", "fixed", "heteroscedastic")

#: Box bounds of the hyperparameters, in standardized units (inputs and outputs of unit
#: variance): length scales, signal variance :math:`s^2`, learned noise variance.
_BOUNDS = {"lengthscale": (1e-2, 1e3), "outputscale": (1e-4, 1e4), "noise": (1e-6, 10.0)}
_INIT = {"outputscale": 1.0, "noise": 0.1}
_RESTART_RANGE = (0.1, 10.0)  # random initial length scales: log-uniform factor of the default
_CHUNK_BYTES = 16 * 2**20  # size of a (points x training points) block of the cross-kernel matrix
_VAR_RTOL = 5e-3  # certified relative error of a variance from the leading eigenpairs (0.25 % on the std)
_VAR_ATOL = 2.0**-52  # ... plus this times n s^2, the rounding level of the exact variance
_RANK_FRACTION = 0.25  # eigenvectors kept: beyond n/4 the bounds cost as much as the exact solve
_FAST_VARIANCE_RATIO = 8  # bounded variances when the points are at least this many times n ...
_FAST_VARIANCE_MIN_TRAIN = 256  # ... and n is at least this (the eigendecomposition is paid once)
_SMALL_PROBLEM = 1000  # training points up to which the BLAS runs on one thread
_SUBSET_SIZE = 500  # above _SMALL_PROBLEM points, restarts are first run on a subset this large
_HET_ITERATIONS = 8  # most-likely-heteroscedastic iterations at most (the change roughly halves each time)
_HET_TOL = 0.05  # stop when the RMS change of log sigma^2 at the training points is below
_NOISE_KERNEL = "matern52"  # kernel of the log-noise GP (the noise is assumed smooth)
_LOG_NOISE_RANGE = (math.log(1e-6), math.log(1e2))  # clip of the learned log-noise (standardized)
_MIN_DISTANCE = 1e-6  # cap of 1/r in the Matern-1/2 gradient
_FORMAT = "stochhom.GPR"
_FORMAT_VERSION = 1
_DTYPE = torch.float64


@functools.lru_cache(maxsize=1)
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()


def _blas_threads(n_train: int) -> int:
    """BLAS threads for a GP of ``n_train`` points: one up to :data:`_SMALL_PROBLEM`
    points; above, the cores that are idle (``STOCHHOM_GP_THREADS`` overrides).

    Idle cores are the cores of this process's CPU set less the one-minute load average
    of the others (the caller counts as one). A factorization whose threads share cores
    with other processes waits for the slowest of them: on 2 busy cores a likelihood
    evaluation at 2000 points took 1.23 s with 2 threads and 0.40 s with one.
    """
    env = os.environ.get("STOCHHOM_GP_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise InputError(f"STOCHHOM_GP_THREADS must be a positive integer, got {env!r}") from None
    if n_train <= _SMALL_PROBLEM:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        others = max(os.getloadavg()[0] - 1.0, 0.0)
    except OSError:  # pragma: no cover - no load average on this platform
        others = 0.0
    return max(1, min(cores, int(cores - others + 0.5)))


@contextlib.contextmanager
def _threads(n_train: int) -> Iterator[None]:
    """Thread pools sized for a GP of ``n_train`` training points: torch on one thread
    (its work here is element-wise, O(n^2) against the O(n^3) of LAPACK) and the BLAS on
    :func:`_blas_threads`. Torch's OpenMP threads spinning beside OpenBLAS's made a
    150-point fit 10-30x slower than one thread on two shared cores.
    ``torch.set_num_threads`` is process-wide: it is restored on exit.
    """
    previous = torch.get_num_threads()
    with _threadpools().limit(limits=_blas_threads(n_train), user_api="blas"):
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


# ----------------------------------------------------------------------------------------
# Linear algebra (LAPACK through scipy)
# ----------------------------------------------------------------------------------------


class _NotPositiveDefinite(Exception):
    """Internal: the Cholesky factorization failed."""


def _cholesky(a: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Lower Cholesky factor (Fortran order) of a symmetric matrix; raises on failure."""
    c, info = scipy.linalg.lapack.dpotrf(a, lower=1, clean=1, overwrite_a=int(overwrite))
    if info != 0 or not np.all(np.isfinite(np.diag(c))):
        raise _NotPositiveDefinite(info)
    return c


def _inverse_from_cholesky(c: np.ndarray) -> np.ndarray:
    inv, info = scipy.linalg.lapack.dpotri(c, lower=1)
    if info != 0:
        raise _NotPositiveDefinite(info)
    lower = np.tril(inv)
    return lower + np.tril(inv, -1).T


def _log_likelihood(c: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray]:
    r""":math:`\log N(r; 0, LL^T)` and :math:`\alpha = (LL^T)^{-1} r` from the factor ``c``."""
    alpha, _ = scipy.linalg.lapack.dpotrs(c, r, lower=1)
    value = -0.5 * float(r @ alpha) - float(np.log(np.diag(c)).sum()) - 0.5 * len(r) * math.log(2 * math.pi)
    return value, alpha


# ----------------------------------------------------------------------------------------
# Kernels in closed form
# ----------------------------------------------------------------------------------------


def _radial(kernel: str, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Unit-variance kernel :math:`\kappa(r)` of the scaled distance ``r`` and
    :math:`\varphi(r) = -\kappa'(r)/r`, so that
    :math:`\partial\kappa/\partial\log\ell_d = \varphi(r)\,(x_d - x'_d)^2/\ell_d^2`.

    ========== ===================================================== ==========================================
    kernel     :math:`\kappa(r)`                                      :math:`\varphi(r)`
    ========== ===================================================== ==========================================
    rbf        :math:`e^{-r^2/2}`                                     :math:`e^{-r^2/2}`
    matern12   :math:`e^{-r}`                                         :math:`e^{-r}/\max(r, 10^{-6})`
    matern32   :math:`(1 + \sqrt3 r)e^{-\sqrt3 r}`                    :math:`3e^{-\sqrt3 r}`
    matern52   :math:`(1 + \sqrt5 r + \tfrac53 r^2)e^{-\sqrt5 r}`     :math:`\tfrac53(1 + \sqrt5 r)e^{-\sqrt5 r}`
    ========== ===================================================== ==========================================

    These are gpytorch's ``RBFKernel`` and ``MaternKernel`` (the tests check it), written
    out so that the gradient is in closed form. ``r`` is overwritten. The cap of the
    Matérn-1/2 :math:`\varphi` changes the gradient only through pairs closer than
    :math:`10^{-6}\ell`, whose :math:`\varphi\,(x_d - x'_d)^2/\ell_d^2 < 10^{-6}`.
    """
    if kernel == "rbf":
        k = r.mul_(r).mul_(-0.5).exp_()
        return k, k.clone()
    if kernel == "matern12":
        k = torch.neg(r).exp_()
        return k, k / r.clamp_min_(_MIN_DISTANCE)
    c = math.sqrt(3.0) if kernel == "matern32" else math.sqrt(5.0)
    e = torch.mul(r, -c).exp_()
    if kernel == "matern32":
        return r.mul_(c).add_(1.0).mul_(e), 3.0 * e
    lin = torch.mul(r, c).add_(1.0)
    k = r.mul_(r).mul_(5.0 / 3.0).add_(lin).mul_(e)
    return k, lin.mul_(e).mul_(5.0 / 3.0)


#: Input scalings that turn the distance into the kernel's natural variable u:
#: rbf e^{-u^2}, Matern (1 + u [+ u^2/3]) e^{-u}.
_U_SCALE = {"rbf": math.sqrt(2.0), "matern12": 1.0, "matern32": 1.0 / math.sqrt(3.0), "matern52": 1.0 / math.sqrt(5.0)}


def _kappa(kernel: str, x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor) -> torch.Tensor:
    """:math:`\\kappa` between two sets of (standardized) inputs, in few passes over memory:
    prediction is bound by memory bandwidth, not arithmetic."""
    scale = lengthscale * _U_SCALE[kernel]
    u = _distance(x1 / scale, x2 / scale)
    if kernel == "rbf":
        return u.mul_(u).neg_().exp_()
    if kernel == "matern12":
        return u.neg_().exp_()
    e = torch.neg(u).exp_()
    if kernel == "matern32":
        return e.addcmul_(u, e)
    return e.addcmul_(torch.addcmul(u, u, u, value=1.0 / 3.0), e)


def _log_positive() -> gpytorch.constraints.Positive:
    """Positivity by :math:`\\exp`: the raw parameter is the log, bounded by L-BFGS-B."""
    return gpytorch.constraints.Positive(transform=torch.exp, inv_transform=torch.log)


class _LatentGP(gpytorch.Module):
    r"""Parameters of one latent GP, as gpytorch modules in float64: ``ConstantMean``,
    ``ScaleKernel(RBFKernel | MaternKernel)`` and, when the noise is learned, a
    ``GaussianLikelihood``. Positive parameters are stored as logs (``raw_*``).

    The optimization vector is :math:`\theta = (\log\ell_1..\log\ell_k, \log s^2, m
    [, \log\sigma^2])`, i.e. the raw parameters. ``covar_module(x1, x2)`` evaluates the same
    kernel as :func:`_cross_kernel`.
    """

    def __init__(self, kernel: str, n_features: int, ard: bool, learn_noise: bool) -> None:
        super().__init__()
        nu = _KERNELS[kernel]
        kw = {"ard_num_dims": n_features if ard else None, "lengthscale_constraint": _log_positive()}
        base = gpytorch.kernels.RBFKernel(**kw) if nu is None else gpytorch.kernels.MaternKernel(nu=nu, **kw)
        self.kernel_name = kernel
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = gpytorch.kernels.ScaleKernel(base, outputscale_constraint=_log_positive())
        self.likelihood = (
            gpytorch.likelihoods.GaussianLikelihood(noise_constraint=_log_positive()) if learn_noise else None
        )
        self.double()

    @property
    def n_lengthscales(self) -> int:
        return self.covar_module.base_kernel.raw_lengthscale.numel()

    def get_theta(self) -> np.ndarray:
        parts = [
            self.covar_module.base_kernel.raw_lengthscale.detach().reshape(-1).numpy(),
            self.covar_module.raw_outputscale.detach().reshape(1).numpy(),
            self.mean_module.raw_constant.detach().reshape(1).numpy(),
        ]
        if self.likelihood is not None:
            parts.append(self.likelihood.noise_covar.raw_noise.detach().reshape(1).numpy())
        return np.concatenate(parts).astype(float)

    def set_theta(self, theta: np.ndarray) -> None:
        k = self.n_lengthscales
        t = torch.as_tensor(np.asarray(theta, dtype=float))
        with torch.no_grad():
            self.covar_module.base_kernel.raw_lengthscale.copy_(t[:k].reshape(1, k))
            self.covar_module.raw_outputscale.copy_(t[k])
            self.mean_module.raw_constant.copy_(t[k + 1])
            if self.likelihood is not None:
                self.likelihood.noise_covar.raw_noise.copy_(t[k + 2 : k + 3])

    def bounds(self, noise_bounds: tuple[float, float] | None = None) -> list[tuple[float | None, float | None]]:
        """L-BFGS-B bounds of :math:`\\theta` (from :data:`_BOUNDS`)."""
        log = lambda b: (math.log(b[0]), math.log(b[1]))  # noqa: E731
        out = [log(_BOUNDS["lengthscale"])] * self.n_lengthscales + [log(_BOUNDS["outputscale"]), (None, None)]
        if self.likelihood is not None:
            out.append(log(noise_bounds or _BOUNDS["noise"]))
        return out

    def lengthscale(self) -> torch.Tensor:
        return self.covar_module.base_kernel.lengthscale.detach().reshape(-1)

    def outputscale(self) -> float:
        return float(self.covar_module.outputscale.detach())

    def constant(self) -> float:
        return float(self.mean_module.constant.detach())

    def noise_value(self) -> float:
        return float(self.likelihood.noise.detach()[0])


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances from coordinate differences (exact: a duplicated input is at
    distance 0, where the :math:`|a|^2 + |b|^2 - 2ab` expansion leaves ~1e-8)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _train_kernel(gp: _LatentGP, x: torch.Tensor) -> torch.Tensor:
    """Kernel matrix :math:`s^2\\kappa(x, x)` of a latent GP."""
    return _kappa(gp.kernel_name, x, x, gp.lengthscale()).mul_(gp.outputscale())


def _cross_kernel(gp: _LatentGP, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """:math:`k(x_1, x_2) = s^2\\kappa(x_1, x_2)` of a latent GP."""
    return _kappa(gp.kernel_name, x1, x2, gp.lengthscale()).mul_(gp.outputscale())


class _Objective:
    r"""Negative log marginal likelihood per point, :math:`-\log p(y\mid\theta)/n`, and its
    gradient in :math:`\theta`, at a given jitter.

    With :math:`A = s^2\kappa + \mathrm{diag}(\sigma^2) + \delta I` and
    :math:`G = \tfrac12(\alpha\alpha^T - A^{-1})`:
    :math:`\partial\log p/\partial\log s^2 = \sum G \circ s^2\kappa
    = \tfrac12(\alpha^T r - \sum_i \alpha_i^2 D_i - n + \sum_i A^{-1}_{ii} D_i)`
    (:math:`D` the diagonal added to :math:`s^2\kappa`, :math:`r = y - m`),
    :math:`\partial\log p/\partial m = \sum_i \alpha_i`,
    :math:`\partial\log p/\partial\log\sigma^2 = \sigma^2\,\mathrm{tr}\,G`,
    :math:`\partial\log p/\partial\log\ell_d = \sum_{ij} s^2 G_{ij}\varphi(r_{ij})
    (x_{id} - x_{jd})^2/\ell_d^2`.
    """

    def __init__(self, kernel: str, x: torch.Tensor, y: np.ndarray, noise: np.ndarray | None, ard: bool) -> None:
        self.kernel, self.x, self.y, self.noise, self.ard = kernel, x, y, noise, ard
        self.n, self.p = x.shape
        self.k = self.p if ard else 1
        self.nfev = 0
        self._seen: dict[tuple[bytes, float], tuple[float, np.ndarray]] = {}  # the scored starts, re-evaluated

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, float, float, float | None]:
        """Length scales (one per input), :math:`s^2`, :math:`m`, learned :math:`\\sigma^2`."""
        k = self.k
        noise = None if self.noise is not None else math.exp(theta[k + 2])
        ls = np.broadcast_to(np.exp(theta[:k]), (self.p,)).copy()
        return ls, math.exp(theta[k]), float(theta[k + 1]), noise

    def __call__(self, theta: np.ndarray, jitter: float) -> tuple[float, np.ndarray]:
        key = (np.asarray(theta, dtype=float).tobytes(), float(jitter))
        if key in self._seen:
            f, g = self._seen[key]
            return f, g.copy()
        f, g = self._evaluate(theta, jitter)
        if len(self._seen) >= 8:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = (f, g.copy())
        return f, g

    def _evaluate(self, theta: np.ndarray, jitter: float) -> tuple[float, np.ndarray]:
        self.nfev += 1
        ls, s2, m, sig2 = self.unpack(theta)
        xs = self.x / torch.from_numpy(ls)
        kappa, phi = _radial(self.kernel, _distance(xs, xs))
        diag = self.noise + jitter if sig2 is None else np.full(self.n, sig2 + jitter)
        a = kappa.mul_(s2)
        a.diagonal().add_(torch.from_numpy(diag))
        c = _cholesky(a.numpy().T, overwrite=True)  # symmetric: the transpose is the Fortran view
        r = self.y - m
        loglik, alpha = _log_likelihood(c, r)
        if not math.isfinite(loglik):
            raise _NotPositiveDefinite(-1)
        inv, info = scipy.linalg.lapack.dpotri(c, lower=1, overwrite_c=1)
        if info != 0:
            raise _NotPositiveDefinite(info)
        upper = torch.from_numpy(inv.T)  # C-ordered, A^-1 above the diagonal, zeros below
        g = upper + upper.T
        g.diagonal().mul_(0.5)  # A^-1
        inv_diag = g.diagonal().numpy().copy()
        grad = np.empty(len(theta))
        # d/dlog s^2 = tr(G (A - D)) with D the diagonal: only diagonals are needed
        grad[self.k] = 0.5 * (float(alpha @ r) - float(alpha**2 @ diag) - self.n + float(inv_diag @ diag))
        grad[self.k + 1] = float(alpha.sum())
        if sig2 is not None:
            grad[self.k + 2] = 0.5 * sig2 * (float(alpha @ alpha) - float(inv_diag.sum()))
        at = torch.from_numpy(alpha)
        g.neg_().addr_(at, at)  # 2 G = alpha alpha^T - A^-1
        # sum_ij H_ij (x_id - x_jd)^2 = 2 sum_i x_id^2 (H 1)_i - 2 x_d^T H x_d, H = s^2 G o phi symmetric
        hx = g.mul_(phi) @ torch.cat([torch.ones(self.n, 1, dtype=_DTYPE), xs], dim=1)
        per_dim = (s2 * ((xs * xs * hx[:, :1]).sum(0) - (xs * hx[:, 1:]).sum(0))).numpy()
        grad[: self.k] = per_dim if self.ard else per_dim.sum()
        return -loglik / self.n, -grad / self.n


def _next_jitter(jitter: float) -> float:
    return jitter * 10.0 if jitter > 0 else 1e-10


def _minimize(obj: Any, theta0: np.ndarray, bounds: list, jitter: float, max_jitter: float,
              max_iter: int, ftol: float | None = None) -> dict[str, Any]:
    """L-BFGS-B from ``theta0`` on ``obj(theta, jitter) -> (f, gradient)``. A failed Cholesky
    factorization raises the jitter tenfold and resumes from the best parameters seen;
    beyond ``max_jitter`` it propagates. ``ftol``: scipy's relative-decrease stop
    (its default when ``None``)."""
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    best: dict[str, Any] = {"f": np.inf, "theta": np.clip(theta0, lo, hi)}
    jit = jitter
    while True:

        def fun(theta: np.ndarray, jit: float = jit) -> tuple[float, np.ndarray]:
            f, g = obj(theta, jit)
            if not np.all(np.isfinite(g)):
                raise _NotPositiveDefinite(-2)
            if f < best["f"]:
                best["f"], best["theta"] = f, theta.copy()
            return f, g

        try:
            options = {"maxiter": max_iter} if ftol is None else {"maxiter": max_iter, "ftol": ftol}
            res = scipy.optimize.minimize(fun, best["theta"], jac=True, method="L-BFGS-B", bounds=bounds,
                                          options=options)
            break
        except _NotPositiveDefinite:
            jit = _next_jitter(jit)
            if jit > max_jitter:
                raise
    theta = res.x if res.fun <= best["f"] else best["theta"]
    return {"f": min(float(res.fun), best["f"]), "theta": theta, "jitter": jit, "nit": int(res.nit),
            "message": str(res.message)}


class _Fitted:
    """A fitted latent GP: parameters, training inputs and noise (standardized units), and
    the cached factorization :math:`L`, :math:`\\alpha` used by every prediction."""

    def __init__(self, gp: _LatentGP, x: torch.Tensor, y: np.ndarray, noise: np.ndarray, jitter: float) -> None:
        self.gp, self.x, self.y, self.noise, self.jitter = gp, x, y, noise, jitter
        self.info: dict[str, Any] = {}
        self.noise_gp: _Fitted | None = None
        self.z_scaler: Standardizer | None = None
        a = _train_kernel(gp, x).numpy()
        a[np.diag_indices_from(a)] += noise + jitter
        self.chol = _cholesky(a.T, overwrite=True)  # symmetric: the transpose is the Fortran view
        self.log_likelihood, self.alpha = _log_likelihood(self.chol, y - gp.constant())
        # the constant mean is estimated (at the likelihood's maximum it is the GLS estimate
        # 1^T A^-1 y / 1^T A^-1 1), not known: u = A^-1 1 and 1^T u give its variance term
        self.u1, _ = scipy.linalg.lapack.dpotrs(self.chol, np.ones(len(y)), lower=1)
        self.c1 = float(self.u1.sum())
        self._scaled: tuple[np.ndarray, np.ndarray] | None = None
        self._spectral: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def scaled_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """Input scale of the compiled kernels (:data:`_U_SCALE` times the length scales)
        and the scaled training inputs by coordinate, ``(p, n)``."""
        if self._scaled is None:
            scale = (self.gp.lengthscale() * _U_SCALE[self.gp.kernel_name]).numpy()
            self._scaled = scale, np.ascontiguousarray((self.x.numpy() / scale).T)
        return self._scaled

    def spectral(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Eigenpairs of the whitened kernel matrix :math:`M = s^2 D^{-1/2} \kappa(X, X)
        D^{-1/2} = U\Lambda U^T` (:math:`D` the noise and jitter on the diagonal, so that
        :math:`A = D^{1/2}(I + M)D^{1/2}`): all eigenvalues in decreasing order, the
        leading :data:`_RANK_FRACTION` of the eigenvectors, and :math:`D^{1/2}`. Computed
        once, on the first prediction of variances at many points."""
        if self._spectral is None:
            from ._gp_kernels import KERNEL_IDS, kernel_block

            _, xt = self.scaled_inputs()
            n = xt.shape[1]
            sqrt_d = np.sqrt(self.noise + self.jitter)
            m = np.empty((n, n))
            kernel_block(KERNEL_IDS[self.gp.kernel_name], np.ascontiguousarray(xt.T), xt, m)
            m *= self.gp.outputscale()
            m /= sqrt_d[:, None]
            m /= sqrt_d[None, :]
            lam, u = scipy.linalg.eigh(m, overwrite_a=True, check_finite=False, driver="evd")
            keep = max(1, int(n * _RANK_FRACTION))
            self._spectral = lam[::-1].copy(), np.ascontiguousarray(u[:, ::-1][:, :keep]), sqrt_d
        return self._spectral

    def mean_term(self, kappa: np.ndarray) -> np.ndarray:
        """:math:`r(x) = 1 - \\mathbf 1^T A^{-1} k_*(x)` of the points of ``kappa`` (rows of
        :math:`k_*/s^2`): the variance of the estimated mean adds :math:`r r^T / \\mathbf 1^T
        A^{-1}\\mathbf 1` to the posterior covariance (ordinary kriging)."""
        return 1.0 - self.gp.outputscale() * (kappa @ self.u1)


def _start(gp: _LatentGP, lengthscale: np.ndarray) -> np.ndarray:
    """:math:`\\theta` of a start: given length scales, :math:`s^2 = 1`, :math:`m = 0`,
    :math:`\\sigma^2 = 0.1` (standardized units)."""
    theta = [np.log(lengthscale), [math.log(_INIT["outputscale"]), 0.0]]
    if gp.likelihood is not None:
        theta.append([math.log(_INIT["noise"])])
    return np.concatenate(theta).astype(float)


def _warm_start(gp: _LatentGP, previous: _LatentGP) -> np.ndarray:
    """:math:`\\theta` of ``previous`` for ``gp`` (dropping or adding the noise entry)."""
    theta = previous.get_theta()
    k2 = gp.n_lengthscales + 2
    theta = theta[:k2]
    if gp.likelihood is not None:
        noise = previous.get_theta()[k2] if previous.likelihood is not None else math.log(_INIT["noise"])
        theta = np.append(theta, noise)
    return theta


def _fit_latent(
    x: torch.Tensor,
    y: np.ndarray,
    *,
    kernel: str,
    ard: bool,
    noise: np.ndarray | None,
    init_ls: list[np.ndarray],
    jitter: float,
    max_jitter: float,
    max_iter: int,
    subset: np.ndarray | None = None,
    warm: _LatentGP | None = None,
    noise_bounds: tuple[float, float] | None = None,
) -> _Fitted:
    """Fit one latent GP by maximum marginal likelihood (``noise=None`` learns it).

    Starts: ``warm``'s parameters, or one start per length-scale vector in ``init_ls``.
    With ``subset`` (large problems), every start is first optimized on that subset of
    the points; the full-data likelihood at those optima picks the one start that is
    then optimized on all points.
    """
    t0 = time.perf_counter()
    gp = _LatentGP(kernel, x.shape[1], ard, learn_noise=noise is None)
    bounds = gp.bounds(noise_bounds)
    starts = [_warm_start(gp, warm)] if warm is not None else [_start(gp, ls) for ls in init_ls]
    obj = _Objective(kernel, x, y, noise, ard)
    opt = {"bounds": bounds, "jitter": jitter, "max_jitter": max_jitter, "max_iter": max_iter}
    nfev_subset = 0
    if subset is not None and len(starts) > 1:
        sub = _Objective(kernel, x[subset], y[subset], None if noise is None else noise[subset], ard)
        scored = []
        for s in starts:
            try:
                with _threads(len(subset)):
                    theta = _minimize(sub, s, **opt)["theta"]
                scored.append((obj(theta, jitter)[0], len(scored), theta))
            except _NotPositiveDefinite:
                continue
        nfev_subset = sub.nfev
        if scored:
            starts = [min(scored)[2]]
    runs = [_minimize(obj, s, **opt) for s in starts]
    best = min(runs, key=lambda r: r["f"])
    gp.set_theta(best["theta"])
    jit = best["jitter"]
    noise_vec = np.full(len(y), gp.noise_value()) if noise is None else noise
    while True:  # the optimum was factored at this jitter already; guard against rounding
        try:
            fitted = _Fitted(gp, x, y, noise_vec, jit)
            break
        except _NotPositiveDefinite:
            jit = _next_jitter(jit)
            if jit > max_jitter:
                raise
    fitted.info = {"jitter": jit, "nit": best["nit"], "nfev": obj.nfev, "nfev_subset": nfev_subset,
                   "message": best["message"], "log_likelihoods": [-r["f"] * len(y) for r in runs],
                   "seconds": time.perf_counter() - t0}
    return fitted


def _block_rows(n_train: int) -> int:
    """Prediction points per block of the cross-kernel matrix (about 16 MB)."""
    return max(256, min(8192, _CHUNK_BYTES // (8 * n_train)))


def _exact_variance(f: _Fitted, kappa: np.ndarray) -> np.ndarray:
    r""":math:`s^2 - s^4\lVert L^{-1}\kappa_*\rVert^2` of the rows of ``kappa`` (no mean term)."""
    s2 = f.gp.outputscale()
    v = scipy.linalg.solve_triangular(f.chol, kappa.T, lower=True, check_finite=False)
    return s2 - s2 * s2 * np.einsum("ij,ij->j", v, v)


def _bounded_variance(f: _Fitted, kappa: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Variance of the rows of ``kappa`` from the leading ``rank`` eigenpairs of
    :meth:`_Fitted.spectral`, and its certified half width.

    With :math:`\tilde k = s^2 D^{-1/2}\kappa_*`, :math:`w = U^T\tilde k`,
    :math:`k_*^T A^{-1} k_* = \sum_i w_i^2/(1 + \lambda_i)`. The leading ``rank`` terms
    are summed; the others have weights :math:`1/(1 + \lambda_i) \in [1/(1 + \lambda_r), 1]`
    (:math:`\lambda_i \le \lambda_r` for :math:`i \ge r`, :math:`M` positive semidefinite)
    and total :math:`R = \lVert \tilde k - U_r w_r\rVert^2` (computed from the residual
    vector, not as a difference of norms, which would lose all digits), so

    .. math:: v \in [\,s^2 - H - R,\; s^2 - H - R/(1 + \lambda_r)\,], \qquad
              H = \sum_{i<r} \frac{w_i^2}{1 + \lambda_i} .

    Returns the midpoint and the half width :math:`\tfrac12 R\,\lambda_r/(1 + \lambda_r)`.
    """
    from ._gp_kernels import residual_norms

    s2 = f.gp.outputscale()
    lam, u, sqrt_d = f.spectral()
    ur = u[:, :rank]
    c = s2 / sqrt_d
    w = kappa @ (c[:, None] * ur)  # U_r^T k~ with k~ = c * kappa
    tail = residual_norms(kappa, c, w @ ur.T)  # |k~ - U_r w|^2, the weight outside the leading eigenvectors
    head = (w * w) @ (1.0 / (1.0 + lam[:rank]))
    shrink = lam[rank] / (1.0 + lam[rank]) if rank < len(lam) else 0.0
    return s2 - head - tail * (1.0 - 0.5 * shrink), 0.5 * tail * shrink


def _variance_rank(f: _Fitted, xs: np.ndarray) -> int | None:
    """Smallest rank (a multiple of 16) whose bounds certify :data:`_VAR_RTOL` at 99 % of
    up to 256 probe points spread over ``xs``, or ``None`` when no rank below
    :data:`_RANK_FRACTION` of the training size does (the exact solve is then as cheap)."""
    from ._gp_kernels import KERNEL_IDS, kernel_block

    lam, u, sqrt_d = f.spectral()
    probe = xs[np.linspace(0, len(xs) - 1, min(len(xs), 256)).astype(int)]
    _, xt = f.scaled_inputs()
    kappa = np.empty((len(probe), xt.shape[1]))
    kernel_block(KERNEL_IDS[f.gp.kernel_name], probe, xt, kappa)
    s2 = f.gp.outputscale()
    kt = kappa * (s2 / sqrt_d)
    w = kt @ u
    kt -= w @ u.T
    w2 = w * w
    # R_r = R_max + sum_{i >= r} w_i^2 and H_r = sum_{i < r} w_i^2 / (1 + lam_i), for every r
    tail = np.einsum("ij,ij->i", kt, kt)[:, None] + np.cumsum(w2[:, ::-1], axis=1)[:, ::-1]
    head = np.cumsum(w2 / (1.0 + lam[: u.shape[1]]), axis=1) - w2 / (1.0 + lam[: u.shape[1]])
    atol = _VAR_ATOL * xt.shape[1] * s2
    for rank in range(16, u.shape[1], 16):
        shrink = lam[rank] / (1.0 + lam[rank])
        half = 0.5 * tail[:, rank] * shrink
        low = s2 - head[:, rank] - tail[:, rank]
        if np.mean(half <= _VAR_RTOL * np.maximum(low, 0.0) + atol) >= 0.99:
            return rank
    return None


def _latent_moments(f: _Fitted, xs: torch.Tensor, want_var: bool) -> tuple[np.ndarray, np.ndarray | None]:
    r"""Posterior mean and variance of the latent GP at ``xs`` (standardized):
    :math:`\mu = m + k_*^T\alpha` and :math:`v = s^2 - \lVert L^{-1}k_*\rVert^2 +
    r^2/\mathbf 1^T A^{-1}\mathbf 1`, the last term the variance of the estimated constant
    mean :math:`m` (ordinary kriging; :meth:`_Fitted.mean_term`).

    The kernel values come from the compiled kernels of :mod:`._gp_kernels`; the mean
    alone is fused with them. The variance costs :math:`n^2` per point by triangular
    solves; at many points (at least :data:`_FAST_VARIANCE_RATIO` times the training
    size) it is taken from the leading eigenpairs of the whitened kernel matrix with
    per-point bounds (:func:`_bounded_variance`): a point whose bounds do not certify a
    relative error below :data:`_VAR_RTOL` is solved exactly, so every variance returned
    is within :data:`_VAR_RTOL` of the exact one (up to rounding).
    """
    from ._gp_kernels import KERNEL_IDS, fused_mean

    const, s2 = f.gp.constant(), f.gp.outputscale()
    kind = KERNEL_IDS[f.gp.kernel_name]
    scale, xt = f.scaled_inputs()
    xsn = np.ascontiguousarray(xs.numpy() / scale)
    if not want_var:  # fused: no cross-kernel matrix in memory
        return const + s2 * fused_mean(kind, xsn, xt, np.ascontiguousarray(f.alpha, dtype=float)), None
    n = xt.shape[1]
    m = len(xsn)
    rank = _variance_rank(f, xsn) if n >= _FAST_VARIANCE_MIN_TRAIN and m >= _FAST_VARIANCE_RATIO * n else None
    mean = np.empty(m)
    var = np.empty(m)
    rows = _block_rows(n)
    kappa_buf = np.empty((min(rows, m), n))
    weights = np.column_stack([f.alpha, f.u1])
    atol = _VAR_ATOL * n * s2
    starts = range(0, m, rows)
    if rank is None:
        for start in starts:
            _moments_block(f, kind, xsn[start : start + rows], xt, kappa_buf, weights, rank, atol,
                           mean[start : start + rows], var[start : start + rows])
        return mean, var
    # The bounded path alternates kernel values with O(n r) products. Run in numba's and the
    # BLAS's thread pools, the threads spinning after each step slowed it by half (2.7 s against
    # 1.9 s for 1e5 points at n = 2000 on 2 idle cores); instead, each thread here takes whole
    # blocks on one core (compiled code and BLAS release the GIL). A block's result does not
    # depend on the thread that computes it.
    import numba

    workers = max(1, min(numba.get_num_threads(), len(starts)))
    groups = [starts[w::workers] for w in range(workers)]

    def run(group: range) -> None:
        buf = kappa_buf if group is groups[0] else np.empty_like(kappa_buf)
        for start in group:
            _moments_block(f, kind, xsn[start : start + rows], xt, buf, weights, rank, atol,
                           mean[start : start + rows], var[start : start + rows])

    with _threadpools().limit(limits=1, user_api="blas"):
        if workers == 1:
            run(groups[0])
        else:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, groups))
    return mean, var


def _moments_block(f: _Fitted, kind: int, xs: np.ndarray, xt: np.ndarray, kappa_buf: np.ndarray,
                   weights: np.ndarray, rank: int | None, atol: float, mean: np.ndarray, var: np.ndarray) -> None:
    """Mean and variance of one block of prediction points, written into ``mean`` and ``var``;
    the kernel values on numba's threads for exact variances, on the calling thread for
    bounded ones (``rank`` given)."""
    from ._gp_kernels import kernel_block, kernel_rows

    const, s2 = f.gp.constant(), f.gp.outputscale()
    kappa = kappa_buf[: len(xs)]
    (kernel_block if rank is None else kernel_rows)(kind, xs, xt, kappa)  # k_* = s^2 kappa
    products = kappa @ weights  # one pass over the block for the mean and the mean term
    mean[:] = const + s2 * products[:, 0]
    r = 1.0 - s2 * products[:, 1]  # f.mean_term(kappa)
    if rank is None:
        v = _exact_variance(f, kappa)
    else:
        v, half = _bounded_variance(f, kappa, rank)
        loose = half > _VAR_RTOL * np.maximum(v - half, 0.0) + atol
        if loose.any():
            v[loose] = _exact_variance(f, kappa[loose])
    var[:] = np.maximum(v, 0.0) + r * r / f.c1


@functools.lru_cache(maxsize=1)
def _log_chi2_bias_table() -> tuple[np.ndarray, np.ndarray]:
    r"""Table of :math:`c(\rho) = E\log(\rho u^2 + 1 - \rho)`, :math:`u \sim N(0,1)`, on
    :math:`s = \sqrt{1-\rho}` (``c`` has an infinite slope at :math:`\rho = 1`)."""
    s = np.linspace(0.0, 1.0, 257)
    c = np.empty_like(s)
    c[0] = scipy.special.digamma(0.5) + math.log(2.0)
    for i, si in enumerate(s[1:], start=1):
        rho = 1.0 - si * si

        def integrand(u: float, rho: float = rho) -> float:
            return 2.0 * math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi) * math.log(rho * u * u + 1.0 - rho)

        c[i] = scipy.integrate.quad(integrand, 0.0, 1.0, limit=200)[0] + scipy.integrate.quad(
            integrand, 1.0, np.inf, limit=200
        )[0]
    return s, c


def _log_chi2_bias(rho: np.ndarray) -> np.ndarray:
    s, c = _log_chi2_bias_table()
    return np.interp(np.sqrt(np.clip(1.0 - rho, 0.0, 1.0)), s, c)


def _noise_gp_log_noise(f: _Fitted, xs: torch.Tensor) -> np.ndarray:
    """Learned :math:`\\log\\sigma^2` (standardized output units) of a heteroscedastic fit."""
    g, _ = _latent_moments(f.noise_gp, xs, want_var=False)
    return np.clip(f.z_scaler.inverse(g), *_LOG_NOISE_RANGE)


def _fit_noise_gp(x: torch.Tensor, z: np.ndarray, warm: _Fitted | None, **kw: Any) -> tuple[_Fitted, Standardizer]:
    r"""GP of the log-noise targets ``z``. Its own noise is at least the variance of
    :math:`\log\chi^2_1`, :math:`\pi^2/2`: without that floor the likelihood can explain the
    scatter of ``z`` by a white-noise-like kernel of tiny length scales that interpolates it."""
    scale = float(z.std()) if z.std() > 0 else 1.0
    scaler = Standardizer(np.array([z.mean()]), np.array([scale]))
    floor = min(math.pi**2 / 2 / scale**2, 1.0)
    fit = _fit_latent(x, (z - scaler.mean[0]) / scale, kernel=_NOISE_KERNEL, noise=None,
                      warm=None if warm is None else warm.gp, noise_bounds=(floor, max(10.0, 10 * floor)), **kw)
    return fit, scaler


def _fit_heteroscedastic(x: torch.Tensor, y: np.ndarray, *, kernel: str, noise_init_ls: list[np.ndarray],
                         **kw: Any) -> _Fitted:
    """Most likely heteroscedastic GP (Kersting et al. 2007), see the module docstring."""
    current = _fit_latent(x, y, kernel=kernel, noise=None, **kw)
    noise_kw = {**kw, "init_ls": noise_init_ls}
    best: _Fitted | None = None
    noise_fit: _Fitted | None = None
    prev_log_noise = np.log(current.noise)
    history = []
    for _ in range(_HET_ITERATIONS):
        sig2 = current.noise + current.jitter
        p_diag = np.diag(_inverse_from_cholesky(current.chol))
        rho = np.clip(sig2 * p_diag, 0.0, 1.0)
        e = (sig2 * current.alpha) ** 2 + np.maximum(sig2 - sig2**2 * p_diag, 0.0)  # (y - mu)^2 + v
        z = np.log(np.maximum(e, 1e-300)) - _log_chi2_bias(rho)
        z = np.clip(z, _LOG_NOISE_RANGE[0] - 5.0, _LOG_NOISE_RANGE[1] + 5.0)
        noise_fit, z_scaler = _fit_noise_gp(x, z, noise_fit, **noise_kw)
        g = np.clip(z_scaler.inverse(_latent_moments(noise_fit, x, want_var=False)[0]), *_LOG_NOISE_RANGE)
        # The level by moment matching (Duan's smearing estimator): E e_i = sigma_i^2 whatever
        # the shape of the scatter, whereas c(rho) holds for Gaussian scatter only; with heavy
        # tails E log e is lower and exp(g) alone would under-state the noise variance.
        level = math.log(float(np.mean(e * np.exp(-g))))
        z_scaler = Standardizer(z_scaler.mean + level, z_scaler.scale)
        g = np.clip(g + level, *_LOG_NOISE_RANGE)
        current = _fit_latent(x, y, kernel=kernel, noise=np.exp(g), **{**kw, "warm": current.gp})
        current.noise_gp, current.z_scaler = noise_fit, z_scaler
        change = float(np.sqrt(np.mean((g - prev_log_noise) ** 2)))
        history.append({"log_likelihood": current.log_likelihood, "rms_change_log_noise": change})
        if best is None or current.log_likelihood > best.log_likelihood:
            best = current
        prev_log_noise = g
        if change < _HET_TOL:
            break
    best.info["heteroscedastic_iterations"] = history
    return best


# ----------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------


def _check_noise_variance(nv: Any, n: int, q: int) -> np.ndarray:
    try:
        a = np.asarray(nv, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"noise_variance must be numeric, got {type(nv).__name__}") from None
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n or a.shape[1] not in (1, q):
        raise InputError(f"noise_variance must have shape ({n},) or ({n}, {q}) like y, got {np.shape(nv)}")
    if not np.all(np.isfinite(a)):
        raise InputError("noise_variance has NaN or inf; give every training point a finite variance")
    if np.any(a < 0):
        raise InputError(f"noise_variance must be >= 0 (variances, e.g. s**2/n), got minimum {a.min():.3g}")
    return np.broadcast_to(a, (n, q)).copy()


def _fitted_threads(method):
    """Run a method of a fitted GP (:class:`GPR`, :class:`~stochhom.surrogates.sgpr.SparseGPR`)
    under :func:`_threads` for its training size."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        check_is_fitted(self, "models_")
        with _threads(self.X_train_.shape[0]):
            return method(self, *args, **kwargs)

    return wrapper


class GPPosterior:
    """The predictive contract that :class:`GPR` and
    :class:`~stochhom.surrogates.sgpr.SparseGPR` share: predictions, the split of their
    uncertainty, the noise, and the extrapolation warning.

    A subclass holds ``models_`` (one fitted latent GP per output), the scalers
    ``x_scaler_``/``y_scaler_``, the training box ``x_min_``/``x_max_``, and provides
    ``_moments(model, xs, want_var)`` (the latent mean and variance of one output at
    standardized inputs) and ``_noise(Xa, xs)`` (the noise variance, original units).
    """

    _moments = staticmethod(lambda model, xs, want_var: _latent_moments(model, xs, want_var))

    def _check_gp_params(self, noise_models: tuple[str, ...]) -> None:
        """The parameters every GP has: kernel, noise model, ``max_iter``, jitters."""
        if self.kernel not in _KERNELS:
            raise InputError(f"unknown kernel {self.kernel!r}; choose one of {sorted(_KERNELS)}")
        if self.noise not in noise_models:
            raise InputError(f"unknown noise model {self.noise!r}; choose one of {list(noise_models)}")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise InputError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if not (np.isfinite(self.jitter) and self.jitter >= 0):
            raise InputError(f"jitter must be finite and >= 0, got {self.jitter!r}")
        if not (np.isfinite(self.max_jitter) and self.max_jitter >= self.jitter):
            raise InputError(f"max_jitter must be finite and >= jitter ({self.jitter}), got {self.max_jitter!r}")

    def _inputs(self, X: Any) -> tuple[np.ndarray, torch.Tensor]:
        check_is_fitted(self, "models_")
        Xa = check_X(X, self.n_features_in_)
        return Xa, torch.from_numpy(np.ascontiguousarray(self.x_scaler_.transform(Xa)))

    def _latent(self, xs: torch.Tensor, want_var: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Latent mean and variance, original units, ``(m, q)``."""
        means, variances = [], []
        for m in self.models_:
            mu, var = self._moments(m, xs, want_var)
            means.append(mu)
            variances.append(var)
        mean = self.y_scaler_.inverse(np.stack(means, axis=1))
        var = np.stack(variances, axis=1) * self.y_scaler_.scale**2 if want_var else None
        return mean, var

    @classmethod
    def _restore(cls, path: Any, stem: str, fmt: str, version: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """A saved model's estimator, metadata and tensors (``{stem}.json``,
        ``{stem}_tensors.pt``): parameters, training data and scalers restored, the fitted
        latent models left to the caller. Refuses a missing or newer format."""
        meta_path = os.path.join(path, f"{stem}.json")
        if not os.path.isfile(meta_path):
            raise InputError(f"{os.fspath(path)!r} is not a saved {cls.__name__} directory (no {stem}.json)")
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        if meta.get("format") != fmt or meta.get("format_version", 0) > version:
            raise InputError(f"{meta_path} holds format {meta.get('format')!r} version "
                             f"{meta.get('format_version')}; this stochhom reads {fmt} <= {version}")
        tensors = torch.load(os.path.join(path, f"{stem}_tensors.pt"), weights_only=True)
        self = cls(**meta["params"])
        self._check_params()
        self.X_train_ = tensors["X"].numpy()
        self.y_train_ = tensors["y"].numpy()
        self._given_noise_ = tensors["noise_variance"].numpy() if "noise_variance" in tensors else None
        self.n_features_in_ = meta["n_features_in"]
        self.n_outputs_ = meta["n_outputs"]
        self._y_1d_ = meta["y_1d"]
        self.x_scaler_ = Standardizer.from_dict(meta["x_scaler"])
        self.y_scaler_ = Standardizer.from_dict(meta["y_scaler"])
        return self, meta, tensors

    def _noise(self, Xa: np.ndarray, xs: torch.Tensor) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _out_of_domain(self, Xa: np.ndarray) -> np.ndarray:
        return np.any((Xa < self.x_min_) | (Xa > self.x_max_), axis=1)

    @_fitted_threads
    def predict(self, X: Any, return_std: bool = False):
        """Predictive mean, and with ``return_std`` the total predictive standard deviation
        :math:`\\sqrt{v(x) + \\sigma^2(x)}` of a new observation (epistemic and aleatoric)."""
        Xa, xs = self._inputs(X)
        # extrapolation is never silent: the mean reverts to the prior outside the data
        outside = int(self._out_of_domain(Xa).sum())
        if outside:
            warnings.warn(f"{outside} of {len(Xa)} point(s) lie outside the training box: the GP extrapolates "
                          "(see predict_components(X)['out_of_domain'])", OutOfDomainWarning, stacklevel=2)
        mean, var = self._latent(xs, want_var=return_std)
        if not return_std:
            return self._shape_output(mean)
        std = np.sqrt(var + self._noise(Xa, xs))
        return self._shape_output(mean), self._shape_output(std)

    @_fitted_threads
    def predict_components(self, X: Any) -> dict[str, np.ndarray]:
        r"""Predictive mean and the split of the predictive uncertainty.

        Returns
        -------
        dict
            ``"mean"`` (:math:`\mu`), ``"std"`` (:math:`\sqrt{v + \sigma^2}`),
            ``"epistemic_std"`` (:math:`\sqrt v`, the latent function's posterior standard
            deviation, the estimated mean's variance included), ``"aleatoric_std"``
            (:math:`\sigma(x)`, the noise), each with the shape of ``y``; ``"out_of_domain"``
            (n,) bool: a coordinate outside the training box, where the prediction is an
            extrapolation.
        """
        Xa, xs = self._inputs(X)
        mean, var = self._latent(xs, want_var=True)
        noise = self._noise(Xa, xs)
        return {
            "mean": self._shape_output(mean),
            "std": self._shape_output(np.sqrt(var + noise)),
            "epistemic_std": self._shape_output(np.sqrt(var)),
            "aleatoric_std": self._shape_output(np.sqrt(noise)),
            "out_of_domain": self._out_of_domain(Xa),
        }

    @_fitted_threads
    def noise_variance(self, X: Any) -> np.ndarray:
        """Aleatoric (noise) variance :math:`\\sigma^2(x)` at ``X`` in output units squared,
        ``(n,)`` or ``(n, q)``; see the class notes for ``noise="fixed"``."""
        Xa, xs = self._inputs(X)
        return self._shape_output(self._noise(Xa, xs))


class GPR(GPPosterior, SurrogateBase):
    r"""Exact Gaussian-process regressor with RBF/Matérn ARD kernels and a noise model.

    Parameters
    ----------
    kernel : {"matern52", "matern32", "matern12", "rbf"}
        Stationary kernel of the latent function (Matérn :math:`\nu = 5/2, 3/2, 1/2` or
        squared exponential), scaled by a learned signal variance :math:`s^2`.
    ard : bool
        One length scale per input (automatic relevance determination); otherwise one
        shared length scale for the standardized inputs.
    noise : {"homoscedastic", "fixed", "heteroscedastic"}
        Noise model: learned constant variance; per-point variances given to ``fit`` as
        ``noise_variance`` (e.g. :math:`s^2/n` of the replicates behind an ensemble mean);
        or a learned input-dependent variance (most likely heteroscedastic GP, see the
        module docstring).
    n_restarts : int
        Random restarts of the marginal-likelihood optimization besides the default start
        (length scale :math:`\sqrt p` in standardized units); their initial length scales
        are the default times a log-uniform factor in [0.1, 10]. The best likelihood wins.
        Above 1000 training points the starts are first optimized on a random subset of
        500 points, and only the best is refined on all of them.
    max_iter : int
        Maximum L-BFGS-B iterations per start.
    jitter : float
        Added to the diagonal of the standardized kernel matrix (units of the output
        variance). When a Cholesky factorization fails it is multiplied by 10, up to
        ``max_jitter``; the value used is ``jitter_``.
    max_jitter : float
        Largest jitter tried before an :class:`~stochhom.errors.InputError` is raised.
    random_state : int, numpy.random.Generator or None
        Seed of the random restarts. Each output of a multi-output ``y`` uses the same
        starts, so it is fitted exactly as a single-output model would be.

    Attributes
    ----------
    models_ : list
        One fitted latent GP per output (gpytorch modules in ``models_[j].gp``).
    hyperparameters_ : list of dict
        Per output, in original units: ``mean``, ``signal_std``, ``lengthscale`` (per
        input), ``noise_std`` (homoscedastic only), ``log_marginal_likelihood``, ``jitter``.
    jitter_ : numpy.ndarray
        Jitter used per output.
    log_marginal_likelihood_ : numpy.ndarray
        Maximized log marginal likelihood per output (standardized outputs).
    X_train_, y_train_ : numpy.ndarray
        Training data, ``y_train_`` as ``(n, q)``.
    train_noise_variance_ : numpy.ndarray
        Noise variance at the training points, ``(n, q)``, original units.
    x_scaler_, y_scaler_ : Standardizer
        Input and output scalings.
    x_min_, x_max_ : numpy.ndarray
        The training box; predictions outside it are flagged ``out_of_domain``.
    fit_info_ : list of dict
        Optimizer diagnostics per output (iterations, evaluations, message, timings).

    Notes
    -----
    Outputs of a multi-output ``y`` are independent GPs. The aleatoric variance at new
    inputs is the learned :math:`\sigma^2` (homoscedastic), :math:`e^{g(x)}`
    (heteroscedastic) or, for ``noise="fixed"``, the given variance at inputs that equal a
    training input (the mean over duplicates) and the mean training noise variance
    elsewhere: a fixed noise says nothing about the noise between the points.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(40, 2)); y = np.sin(3 * X[:, 0]) + 0.1 * rng.standard_normal(40)
    >>> gp = GPR(random_state=0).fit(X, y)
    >>> mean, std = gp.predict(X[:3], return_std=True)
    """

    def __init__(
        self,
        kernel: str = "matern52",
        ard: bool = True,
        noise: str = "homoscedastic",
        n_restarts: int = 2,
        max_iter: int = 200,
        jitter: float = 1e-8,
        max_jitter: float = 1e-2,
        random_state: Any = None,
    ) -> None:
        self.kernel = kernel
        self.ard = ard
        self.noise = noise
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.jitter = jitter
        self.max_jitter = max_jitter
        self.random_state = random_state

    # -- validation ------------------------------------------------------------------------

    def _check_params(self) -> None:
        self._check_gp_params(_NOISE_MODELS)
        if not isinstance(self.n_restarts, (int, np.integer)) or self.n_restarts < 0:
            raise InputError(f"n_restarts must be an integer >= 0, got {self.n_restarts!r}")

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, noise_variance: Any = None) -> GPR:
        """Fit one GP per output by maximum marginal likelihood.

        Parameters
        ----------
        X : array_like, shape (n, p)
            Inputs (parameter points).
        y : array_like, shape (n,) or (n, q)
            Observations.
        noise_variance : array_like, shape (n,) or (n, q), optional
            Per-point noise variances in the units of ``y`` squared; required with
            ``noise="fixed"`` and rejected otherwise.

        Returns
        -------
        GPR
            ``self``.
        """
        self._check_params()
        Xa, Ya, one_d = check_Xy(X, y)
        n, q = Ya.shape
        if self.noise == "fixed":
            if noise_variance is None:
                raise InputError("noise='fixed' needs fit(X, y, noise_variance=...), e.g. s**2/n per point")
            nv = _check_noise_variance(noise_variance, n, q)
        elif noise_variance is not None:
            raise InputError(f"noise_variance is only used with noise='fixed'; this GPR has noise={self.noise!r}")
        else:
            nv = None

        self.x_scaler_ = Standardizer.fit(Xa)
        y_mean = np.array([np.ascontiguousarray(Ya[:, j]).mean() for j in range(q)])
        y_std = np.array([np.ascontiguousarray(Ya[:, j]).std() for j in range(q)])
        self.y_scaler_ = Standardizer(y_mean, np.where(y_std > 0, y_std, 1.0))
        x = torch.from_numpy(self.x_scaler_.transform(Xa))
        Ys = self.y_scaler_.transform(Ya)

        rng = np.random.default_rng(self.random_state)
        p_ls = Xa.shape[1] if self.ard else 1
        default = math.sqrt(Xa.shape[1])
        lo, hi = np.log(_RESTART_RANGE)

        def draws() -> list[np.ndarray]:
            u = rng.uniform(lo, hi, size=(self.n_restarts, p_ls))
            return [np.full(p_ls, default)] + [default * np.exp(row) for row in u]

        init_ls = draws()
        noise_init_ls = draws() if self.noise == "heteroscedastic" else []
        subset = np.sort(rng.choice(n, _SUBSET_SIZE, replace=False)) if n > _SMALL_PROBLEM else None
        common = {"ard": self.ard, "init_ls": init_ls, "jitter": self.jitter, "max_jitter": self.max_jitter,
                  "max_iter": self.max_iter, "subset": subset}

        models = []
        for j in range(q):
            yj = np.ascontiguousarray(Ys[:, j])
            try:
                with _threads(n):
                    if self.noise == "heteroscedastic":
                        fitted = _fit_heteroscedastic(x, yj, kernel=self.kernel, noise_init_ls=noise_init_ls, **common)
                    else:
                        fixed = None if nv is None else nv[:, j] / self.y_scaler_.scale[j] ** 2
                        fitted = _fit_latent(x, yj, kernel=self.kernel, noise=fixed, **common)
            except _NotPositiveDefinite:
                raise InputError(self._failure_message(Xa, Ya[:, j], None if nv is None else nv[:, j], j)) from None
            models.append(fitted)

        self.models_ = models
        self.X_train_ = Xa
        self.y_train_ = Ya
        self._given_noise_ = nv
        self.n_features_in_ = Xa.shape[1]
        self.n_outputs_ = q
        self._y_1d_ = one_d
        self._finish()
        return self

    def _finish(self) -> None:
        """Derived fitted attributes (shared by ``fit`` and ``load``)."""
        scale2 = self.y_scaler_.scale**2
        self.jitter_ = np.array([m.jitter for m in self.models_])
        self.log_marginal_likelihood_ = np.array([m.log_likelihood for m in self.models_])
        self.train_noise_variance_ = np.stack([m.noise for m in self.models_], axis=1) * scale2
        self.fit_info_ = [m.info for m in self.models_]
        self.x_min_ = self.X_train_.min(axis=0)
        self.x_max_ = self.X_train_.max(axis=0)
        hyper = []
        for j, m in enumerate(self.models_):
            sy = float(self.y_scaler_.scale[j])
            h = {
                "mean": m.gp.constant() * sy + float(self.y_scaler_.mean[j]),
                "signal_std": math.sqrt(m.gp.outputscale()) * sy,
                "lengthscale": (m.gp.lengthscale().numpy() * self.x_scaler_.scale).tolist(),
                "log_marginal_likelihood": m.log_likelihood,
                "jitter": m.jitter,
            }
            if m.gp.likelihood is not None:
                h["noise_std"] = math.sqrt(m.gp.noise_value()) * float(self.y_scaler_.scale[j])
            hyper.append(h)
        self.hyperparameters_ = hyper
        if self._given_noise_ is not None:
            self._noise_lookup_ = self._build_noise_lookup()

    def _build_noise_lookup(self) -> dict[bytes, np.ndarray]:
        table: dict[bytes, list[np.ndarray]] = {}
        for row, nv in zip(np.ascontiguousarray(self.X_train_), self._given_noise_):
            table.setdefault(row.tobytes(), []).append(nv)
        return {k: np.mean(v, axis=0) for k, v in table.items()}

    def _failure_message(self, X: np.ndarray, y: np.ndarray, nv: np.ndarray | None, j: int) -> str:
        causes = []
        n_dup = X.shape[0] - np.unique(X, axis=0).shape[0]
        if n_dup:
            causes.append(f"{n_dup} duplicated input row(s)")
        if np.ptp(y) == 0:
            causes.append("a constant output")
        if nv is not None and np.any(nv == 0):
            causes.append(f"{int(np.sum(nv == 0))} zero noise variance(s)")
        found = "; ".join(causes) if causes else "no duplicated inputs or zero noise (nearly collinear inputs?)"
        return (
            f"GPR output {j}: the kernel matrix K + noise is not numerically positive definite even with "
            f"jitter {self.max_jitter:g} (max_jitter, in units of the standardized output variance). "
            f"Found: {found}. Fix: average replicates at duplicated inputs or give them a positive "
            f"noise_variance, use noise='homoscedastic', or raise max_jitter."
        )

    # -- prediction ------------------------------------------------------------------------

    def _noise(self, Xa: np.ndarray, xs: torch.Tensor) -> np.ndarray:
        scale2 = self.y_scaler_.scale**2
        if self.noise == "homoscedastic":
            per = np.array([m.gp.noise_value() for m in self.models_]) * scale2
            return np.broadcast_to(per, (Xa.shape[0], self.n_outputs_)).copy()
        if self.noise == "heteroscedastic":
            return np.stack([np.exp(_noise_gp_log_noise(m, xs)) for m in self.models_], axis=1) * scale2
        out = np.broadcast_to(self._given_noise_.mean(axis=0), (Xa.shape[0], self.n_outputs_)).copy()
        for i, row in enumerate(np.ascontiguousarray(Xa)):
            hit = self._noise_lookup_.get(row.tobytes())
            if hit is not None:
                out[i] = hit
        return out

    @_fitted_threads
    def loo_predict(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Leave-one-out predictive mean and standard deviation of every training target.

        In closed form (Rasmussen and Williams 2006, eq. 5.12), with :math:`A = K + \Sigma`
        and the hyperparameters (and the learned noise) held at their fitted values:

        .. math:: \mu_{-i} = y_i - \frac{[A^{-1}(y - m)]_i}{[A^{-1}]_{ii}}, \qquad
                  \sigma^2_{-i} = \frac{1}{[A^{-1}]_{ii}},

        the prediction of :math:`y_i` (a new observation, noise included) by the GP
        conditioned on the other points. The cost is one :math:`O(n^3)` inverse per output.
        Replicates at one input make it optimistic, like any ungrouped LOO: use grouped
        cross-validation (:func:`~stochhom.validation.evaluate`) to judge a surrogate.

        Returns
        -------
        mean, std : numpy.ndarray
            With the shape of the training ``y``, in output units.
        """
        check_is_fitted(self, "models_")
        means, stds = [], []
        for m in self.models_:
            d = np.diag(_inverse_from_cholesky(m.chol))
            means.append(m.y - m.alpha / d)
            stds.append(1.0 / np.sqrt(d))
        mean = self.y_scaler_.inverse(np.stack(means, axis=1))
        std = np.stack(stds, axis=1) * self.y_scaler_.scale
        return self._shape_output(mean), self._shape_output(std)

    @_fitted_threads
    def sample_functions(self, X: Any, n_samples: int, rng: Any = None) -> np.ndarray:
        r"""Joint samples of the latent function from the posterior, at the points ``X``.

        :math:`f(X) \sim N(\mu, K_{**} - V^T V + r r^T / \mathbf 1^T A^{-1}\mathbf 1)` with
        :math:`V = L^{-1} k(X_{train}, X)` and :math:`r = 1 - k(X, X_{train}) A^{-1}\mathbf 1`
        (the estimated mean's variance, as in ``predict``),
        drawn as :math:`\mu + C z` with :math:`C C^T` the (jittered) Cholesky factor of the
        posterior covariance, or its eigendecomposition if that fails. The noise is not
        included. Memory :math:`O(m^2)` and time :math:`O(m^3)` in the number of points.

        Parameters
        ----------
        X : array_like, shape (m, p)
        n_samples : int
        rng : numpy.random.Generator, int or None
            Source of the standard normal draws :math:`z` (numpy's generator; torch's global
            generator is not touched), one array of shape ``(n_samples, q, m)``: a fixed
            seed gives the same samples up to rounding (BLAS kernels of different CPUs sum in
            different orders: ~1e-16 relative), and the first samples do not depend on
            ``n_samples``.

        Returns
        -------
        numpy.ndarray
            ``(n_samples, m)`` for 1-D ``y``, else ``(n_samples, m, q)``, original units.
        """
        Xa, xs = self._inputs(X)
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise InputError(f"n_samples must be a positive integer, got {n_samples!r}")
        gen = np.random.default_rng(rng)
        z = gen.standard_normal((n_samples, self.n_outputs_, Xa.shape[0]))
        out = np.empty((n_samples, Xa.shape[0], self.n_outputs_))
        for j, m in enumerate(self.models_):
            mean, cov = _posterior_block(m, xs, xs, want_mean=True)
            factor = _psd_factor(0.5 * (cov + cov.T))
            out[:, :, j] = (mean + z[:, j, :] @ factor.T) * self.y_scaler_.scale[j] + self.y_scaler_.mean[j]
        return out[:, :, 0] if self._y_1d_ else out

    @_fitted_threads
    def _kriging_weights(self, X: Any, output: int = 0) -> np.ndarray:
        r"""Simple-kriging weights :math:`A^{-1} k(X_{train}, x)` of one output at the rows of
        ``X``, ``(n, m)`` (dimensionless: :math:`A = K + \operatorname{diag}(\sigma^2)`; the
        output's scale cancels). Co-kriging builds its trend correction from them."""
        _, xs = self._inputs(X)
        m = self.models_[output]
        with torch.no_grad():
            kappa = _kappa(m.gp.kernel_name, xs, m.x, m.gp.lengthscale()).numpy()
        return scipy.linalg.cho_solve((m.chol, True), m.gp.outputscale() * kappa.T, check_finite=False)

    def posterior_covariance(self, X1: Any, X2: Any = None) -> np.ndarray:
        r"""Posterior covariance of the latent function between two sets of points.

        .. math:: \operatorname{cov}(f(x), f(x')) = k(x, x') - k(x, X) A^{-1} k(X, x')
                  + \frac{r(x)\, r(x')}{\mathbf 1^T A^{-1} \mathbf 1},
                  \qquad r(x) = 1 - \mathbf 1^T A^{-1} k(X, x),

        with :math:`A = K + \operatorname{diag}(\sigma^2)` (noise and jitter) and the last
        term the variance of the estimated constant mean, as in :meth:`predict`: its
        diagonal is the square of ``predict_components(X)["epistemic_std"]``. The noise is
        not included. Sequential designs (:mod:`stochhom.surrogates.adaptive`) condition
        it on points not yet solved: with fixed hyperparameters the posterior covariance
        does not depend on the observed values.

        Parameters
        ----------
        X1 : array_like, shape (m1, p)
        X2 : array_like, shape (m2, p), optional
            Default ``X1``.

        Returns
        -------
        numpy.ndarray
            ``(m1, m2)`` for 1-D ``y``, else ``(q, m1, m2)``, output units squared.
        """
        _, x1 = self._inputs(X1)
        x2 = x1 if X2 is None else self._inputs(X2)[1]
        out = np.stack([_posterior_block(m, x1, x2, want_mean=False)[1] * self.y_scaler_.scale[j] ** 2
                        for j, m in enumerate(self.models_)])
        return out[0] if self._y_1d_ else out

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Save to a directory: ``gpr.json`` (metadata, hyperparameters, scalers, versions)
        and ``gpr_tensors.pt`` (gpytorch state dicts and the training data, tensors only).

        Nothing executable is stored: :meth:`load` rebuilds the modules from the JSON and
        reads the tensors with ``torch.load(weights_only=True)``.
        """
        check_is_fitted(self, "models_")
        os.makedirs(path, exist_ok=True)
        params = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.get_params().items()}
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # a Generator is not serializable; it only seeded the restarts
        tensors: dict[str, Any] = {"X": torch.from_numpy(self.X_train_), "y": torch.from_numpy(self.y_train_)}
        if self._given_noise_ is not None:
            tensors["noise_variance"] = torch.from_numpy(self._given_noise_)
        outputs = []
        for j, m in enumerate(self.models_):
            tensors[f"output{j}.state"] = m.gp.state_dict()
            tensors[f"output{j}.train_noise"] = torch.from_numpy(m.noise)
            entry: dict[str, Any] = {"jitter": m.jitter, "learn_noise": m.gp.likelihood is not None,
                                     "log_marginal_likelihood": m.log_likelihood}
            if m.noise_gp is not None:
                tensors[f"output{j}.noise_gp.state"] = m.noise_gp.gp.state_dict()
                tensors[f"output{j}.noise_gp.y"] = torch.from_numpy(m.noise_gp.y)
                entry["noise_gp"] = {"kernel": _NOISE_KERNEL, "jitter": m.noise_gp.jitter,
                                     "z_scaler": m.z_scaler.to_dict()}
            outputs.append(entry)
        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": params,
            "n_features_in": int(self.n_features_in_),
            "n_outputs": int(self.n_outputs_),
            "y_1d": bool(self._y_1d_),
            "x_scaler": self.x_scaler_.to_dict(),
            "y_scaler": self.y_scaler_.to_dict(),
            "outputs": outputs,
            "hyperparameters": self.hyperparameters_,
            "versions": _versions(),
        }
        torch.save(tensors, os.path.join(path, "gpr_tensors.pt"))
        with open(os.path.join(path, "gpr.json"), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)

    def _load_models(self, meta: dict[str, Any], tensors: dict[str, Any], path: Any) -> list[_Fitted]:
        x = torch.from_numpy(self.x_scaler_.transform(self.X_train_))
        ys = self.y_scaler_.transform(self.y_train_)
        models = []
        for j, entry in enumerate(meta["outputs"]):
            gp = _LatentGP(self.kernel, self.n_features_in_, self.ard, learn_noise=entry["learn_noise"])
            gp.load_state_dict(tensors[f"output{j}.state"])
            fitted = _Fitted(gp, x, np.ascontiguousarray(ys[:, j]), tensors[f"output{j}.train_noise"].numpy(),
                             entry["jitter"])
            if "noise_gp" in entry:
                ng = entry["noise_gp"]
                ngp = _LatentGP(ng["kernel"], self.n_features_in_, self.ard, learn_noise=True)
                ngp.load_state_dict(tensors[f"output{j}.noise_gp.state"])
                zy = tensors[f"output{j}.noise_gp.y"].numpy()
                fitted.noise_gp = _Fitted(ngp, x, zy, np.full(len(zy), ngp.noise_value()), ng["jitter"])
                fitted.z_scaler = Standardizer.from_dict(ng["z_scaler"])
            fitted.info = {"loaded_from": os.fspath(path)}
            models.append(fitted)
        return models

    @classmethod
    def load(cls, path: str | os.PathLike) -> GPR:
        """Load a model written by :meth:`save`; its predictions are the same up to rounding (the
        Cholesky factor is recomputed)."""
        self, meta, tensors = cls._restore(path, "gpr", _FORMAT, _FORMAT_VERSION)
        with _threads(self.X_train_.shape[0]):
            self.models_ = self._load_models(meta, tensors, path)
        self._finish()
        return self


def _posterior_block(m: _Fitted, x1: torch.Tensor, x2: torch.Tensor,
                     want_mean: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """Latent posterior mean at ``x1`` (optional) and covariance between ``x1`` and ``x2``
    of one output, standardized units (see :meth:`GPR.posterior_covariance`)."""
    s2, ls = m.gp.outputscale(), m.gp.lengthscale()
    with torch.no_grad():
        k1 = _kappa(m.gp.kernel_name, x1, m.x, ls).numpy()  # k_* = s^2 kappa, as in predict
        k2 = k1 if x2 is x1 else _kappa(m.gp.kernel_name, x2, m.x, ls).numpy()
        k12 = _kappa(m.gp.kernel_name, x1, x2, ls).numpy()
    v1 = scipy.linalg.solve_triangular(m.chol, k1.T, lower=True, check_finite=False)
    v2 = v1 if x2 is x1 else scipy.linalg.solve_triangular(m.chol, k2.T, lower=True, check_finite=False)
    r1 = m.mean_term(k1)
    r2 = r1 if x2 is x1 else m.mean_term(k2)
    cov = s2 * k12 - (s2 * s2) * (v1.T @ v2) + np.outer(r1, r2) / m.c1  # the estimated mean's variance
    mean = m.gp.constant() + s2 * (k1 @ m.alpha) if want_mean else None
    return mean, cov


def _psd_factor(cov: np.ndarray) -> np.ndarray:
    """A factor :math:`C` with :math:`C C^T \\approx` ``cov`` (PSD up to rounding)."""
    scale = max(float(np.mean(np.diag(cov))), 1e-300)
    for rel in (0.0, 1e-12, 1e-10, 1e-8):
        a = cov.copy()
        a[np.diag_indices_from(a)] += rel * scale
        try:
            return _cholesky(a)
        except _NotPositiveDefinite:
            continue
    w, u = np.linalg.eigh(cov)
    return u * np.sqrt(np.clip(w, 0.0, None))


def _versions() -> dict[str, str]:
    from .. import __version__

    return {"stochhom": __version__, "torch": torch.__version__, "gpytorch": gpytorch.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__}
