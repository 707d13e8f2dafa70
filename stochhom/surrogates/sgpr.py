r"""Sparse Gaussian-process regression (Titsias' collapsed variational bound, SGPR) for
large training sets.

The exact GP (:class:`~stochhom.surrogates.GPR`) costs :math:`O(n^3)` per likelihood
evaluation; sweeps with many replicates reach :math:`n = 10^4 \dots 10^5` training points.
:class:`SparseGPR` keeps the same model, :math:`y_i = f(x_i) + \varepsilon_i`,
:math:`f \sim GP(m, s^2\kappa)`, :math:`\varepsilon_i \sim N(0, \sigma_i^2)`, and summarizes
:math:`f` by its values :math:`u = f(Z)` at :math:`M \ll n` *inducing points* :math:`Z`.
With :math:`K_{uu} = k(Z, Z) + \delta s^2 I` (jitter :math:`\delta`), :math:`K_{uf} = k(Z, X)`,
the Nyström matrix :math:`Q = K_{fu}K_{uu}^{-1}K_{uf}` and :math:`\Sigma = \mathrm{diag}(\sigma_i^2)`,
the hyperparameters :math:`\vartheta = (\ell, s^2, m, \sigma^2)` and the inducing locations
:math:`Z` maximize the collapsed evidence lower bound of Titsias (2009)

.. math:: \mathcal F = \log N(y \mid m\mathbf 1,\; Q + \Sigma)
          - \tfrac12\,\mathrm{tr}\!\left(\Sigma^{-1}(K_{ff} - Q)\right)
          \;\le\; \log p(y \mid \vartheta),

the exact log marginal likelihood minus :math:`\mathrm{KL}(q(f)\,\|\,p(f \mid y))`. The trace
term penalizes inducing points that do not explain :math:`f` at the data, so that more (or
better placed) inducing points can only raise :math:`\mathcal F`; with :math:`Z = X` it
is the exact likelihood. All data enter through :math:`M \times M` statistics,

.. math:: L L^T = K_{uu}, \qquad A = L^{-1} K_{uf}\Sigma^{-1/2}, \qquad
          B = I + A A^T = L_B L_B^T, \qquad c = L_B^{-1} A \Sigma^{-1/2}(y - m\mathbf 1),

.. math:: \mathcal F = -\tfrac n2\log 2\pi - \tfrac12\sum_i\log\sigma_i^2 - \sum_j \log (L_B)_{jj}
          - \tfrac12 (y - m)^T\Sigma^{-1}(y - m) + \tfrac12 c^Tc
          - \tfrac{s^2}2\sum_i \sigma_i^{-2} + \tfrac12\,\mathrm{tr}(AA^T),

accumulated over blocks of training points in :math:`O(nM^2)` time and :math:`O(nM)` memory.
The gradient in every parameter, inducing locations included, is analytic (the same
:math:`\varphi = -\kappa'(r)/r` as the exact GP's closed-form kernels),
one more pass over the blocks; scipy's L-BFGS-B maximizes :math:`\mathcal F` on the
log-parameters. Above 4096 training points (and 4 per inducing point) the inducing points
and hyperparameters are first optimized on a random subset of 4096 points, then the
hyperparameters alone on all points; a stage stops when an iteration raises
:math:`\mathcal F` by less than 0.01 nat.

Prediction uses the optimal :math:`q(u) = N(\mu_u, S_u)`, :math:`S_u = K_{uu}(K_{uu} +
K_{uf}\Sigma^{-1}K_{fu})^{-1}K_{uu}`. With :math:`P = K_{uu} + K_{uf}\Sigma^{-1}K_{fu}`:

.. math:: \mu(x_*) = m + k_{u*}^T P^{-1}K_{uf}\Sigma^{-1}(y - m), \qquad
          v(x_*) = s^2 - k_{u*}^T\left(K_{uu}^{-1} - P^{-1}\right)k_{u*}
          + \frac{(1 - g^T k_{u*})^2}{\mathbf 1^T(Q + \Sigma)^{-1}\mathbf 1},

with :math:`g = P^{-1}K_{uf}\Sigma^{-1}\mathbf 1`, i.e. :math:`O(M^2)` per point with the cached
:math:`M \times M` matrix :math:`K_{uu}^{-1} - P^{-1} = L^{-T}(I - B^{-1})L^{-1}`. The last term is
the variance of the estimated constant mean (ordinary kriging, as in the exact GP): the
bound is maximal in :math:`m` at the generalized least-squares estimate under the
covariance :math:`Q + \Sigma`, and the term is what a flat prior on :math:`m` adds to the
posterior variance (Woodbury: :math:`\mathbf 1^T(Q+\Sigma)^{-1}\mathbf 1 = \sum_i\sigma_i^{-2} -
\lVert L_B^{-1}L^{-1}K_{uf}\Sigma^{-1}\mathbf 1\rVert^2`). With :math:`M = n` inducing points at the
training inputs, the bound, mean and variance are those of the exact GP (the tests check
it, against :class:`~stochhom.surrogates.GPR`).

The gpytorch modules hold the parameters (an ``ExactGP`` whose kernel is gpytorch's
``InducingPointKernel`` over ``ScaleKernel(MaternKernel | RBFKernel)``; their state dicts
are what :meth:`SparseGPR.save` writes); the bound is evaluated in closed form from the
same parameters (the tests check it against gpytorch's ``ExactMarginalLogLikelihood`` of
that model). Measured on 2 shared cores, :math:`n = 10^4`, :math:`M = 512`, 4 inputs: one
bound and gradient evaluation by gpytorch's lazy tensors and autograd took 1.65 s of CPU, in
closed form 0.41 s (``benchmarks/bench_gp_sparse.py``). Too few inducing points show as a
noise variance above the exact GP's: the bound explains what they cannot represent as
noise (Bauer et al. 2016); see ``docs/theory/sgpr.md``.

Inducing points start at a k-means++ selection (D² sampling, Arthur & Vassilvitskii 2007)
of the standardized training inputs, deterministic given ``random_state``; duplicated
inputs (replicates) are never selected twice. With many replicates at few distinct inputs
and :math:`M` equal to the number of distinct inputs, the sparse GP is the exact GP.

Noise models: ``"homoscedastic"`` (one learned :math:`\sigma^2`) and ``"fixed"`` (per-point
variances given to ``fit``; they must be positive). The heteroscedastic model of
:class:`~stochhom.surrogates.GPR` is not offered.

References
----------
Titsias, M. K. (2009). Variational learning of inducing variables in sparse Gaussian
processes. *Proc. AISTATS*, JMLR W&CP 5, 567-574.

Bauer, M., van der Wilk, M. and Rasmussen, C. E. (2016). Understanding probabilistic sparse
Gaussian process approximations. *Proc. NeurIPS* 29, 1533-1541.

Burt, D. R., Rasmussen, C. E. and van der Wilk, M. (2020). Convergence of sparse variational
inference in Gaussian processes regression. *JMLR* 21(131), 1-63.

Arthur, D. and Vassilvitskii, S. (2007). k-means++: the advantages of careful seeding.
*Proc. SODA*, 1027-1035.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from typing import Any

import gpytorch
import numpy as np
import scipy
import scipy.linalg
import scipy.linalg.blas
import scipy.optimize
import torch

from ..errors import InputError
from .base import Standardizer, SurrogateBase, check_is_fitted, check_Xy
from .gpr import (
    _BOUNDS,
    _INIT,
    _KERNELS,
    GPPosterior,
    _check_noise_variance,
    _cholesky,
    _distance,
    _fitted_threads,
    _kappa,
    _log_positive,
    _minimize,
    _next_jitter,
    _NotPositiveDefinite,
    _psd_factor,
    _radial,
    _threads,
    _versions,
)

__all__ = ["SparseGPR"]

_NOISE_MODELS = ("homoscedastic", "fixed")
_DEFAULT_INDUCING = 512
#: A stage of L-BFGS-B stops when an iteration raises the bound by less than this (nats, all
#: points together): the slow tail of the inducing-point optimization changes predictions by
#: far less than their standard deviation.
_FTOL_NATS = 1e-2
#: Above this many training points (and 4 per inducing point), the inducing points are
#: optimized on a random subset this large; the hyperparameters are then refined on all points.
_SUBSET_SIZE = 4096
_CHUNK_ENTRIES = 2**20  # (inducing points x points) per block: 8 MB arrays, reused by the allocator
_FORMAT = "stochhom.SparseGPR"
_FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------
# Parameters: a gpytorch SGPR model
# ----------------------------------------------------------------------------------------


class _SparseModel(gpytorch.models.ExactGP):
    r"""Parameters of one sparse latent GP, as gpytorch modules in float64: an ``ExactGP``
    with ``ConstantMean`` and ``InducingPointKernel(ScaleKernel(RBFKernel | MaternKernel))``
    and a ``GaussianLikelihood`` (learned noise) or ``FixedNoiseGaussianLikelihood``.
    Positive parameters are stored as logs (``raw_*``). Calling the model in training mode
    with gpytorch's ``ExactMarginalLogLikelihood`` evaluates the same bound as :class:`_Bound`.

    The optimization vector is :math:`\theta = (\log\ell_1..\log\ell_k, \log s^2, m
    [, \log\sigma^2] [, Z])`, i.e. the raw parameters, :math:`Z` flattened row by row.
    """

    def __init__(self, kernel: str, inducing: torch.Tensor, ard: bool, noise: torch.Tensor | None) -> None:
        if noise is None:
            likelihood = gpytorch.likelihoods.GaussianLikelihood(noise_constraint=_log_positive())
        else:
            likelihood = gpytorch.likelihoods.FixedNoiseGaussianLikelihood(noise=noise)
        super().__init__(None, None, likelihood)
        nu = _KERNELS[kernel]
        p = inducing.shape[1]
        kw = {"ard_num_dims": p if ard else None, "lengthscale_constraint": _log_positive()}
        base = gpytorch.kernels.RBFKernel(**kw) if nu is None else gpytorch.kernels.MaternKernel(nu=nu, **kw)
        self.kernel_name = kernel
        self.learn_noise = noise is None
        self.mean_module = gpytorch.means.ConstantMean()
        scaled = gpytorch.kernels.ScaleKernel(base, outputscale_constraint=_log_positive())
        self.covar_module = gpytorch.kernels.InducingPointKernel(scaled, inducing.clone(), likelihood)
        self.double()

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    @property
    def _scaled(self) -> gpytorch.kernels.ScaleKernel:
        return self.covar_module.base_kernel

    @property
    def n_lengthscales(self) -> int:
        return self._scaled.base_kernel.raw_lengthscale.numel()

    @property
    def n_inducing(self) -> int:
        return self.covar_module.inducing_points.shape[0]

    def get_theta(self, with_inducing: bool = True) -> np.ndarray:
        parts = [
            self._scaled.base_kernel.raw_lengthscale.detach().reshape(-1).numpy(),
            self._scaled.raw_outputscale.detach().reshape(1).numpy(),
            self.mean_module.raw_constant.detach().reshape(1).numpy(),
        ]
        if self.learn_noise:
            parts.append(self.likelihood.noise_covar.raw_noise.detach().reshape(1).numpy())
        if with_inducing:
            parts.append(self.inducing_points().reshape(-1))
        return np.concatenate(parts).astype(float)

    def set_theta(self, theta: np.ndarray, with_inducing: bool = True) -> None:
        k = self.n_lengthscales
        t = torch.as_tensor(np.asarray(theta, dtype=float))
        with torch.no_grad():
            self._scaled.base_kernel.raw_lengthscale.copy_(t[:k].reshape(1, k))
            self._scaled.raw_outputscale.copy_(t[k])
            self.mean_module.raw_constant.copy_(t[k + 1])
            j = k + 2
            if self.learn_noise:
                self.likelihood.noise_covar.raw_noise.copy_(t[j : j + 1])
                j += 1
            if with_inducing:
                self.covar_module.inducing_points.copy_(t[j:].reshape(self.covar_module.inducing_points.shape))

    def lengthscale(self) -> torch.Tensor:
        return self._scaled.base_kernel.lengthscale.detach().reshape(-1)

    def outputscale(self) -> float:
        return float(self._scaled.outputscale.detach())

    def constant(self) -> float:
        return float(self.mean_module.constant.detach())

    def noise_value(self) -> float:
        return float(self.likelihood.noise.detach().reshape(-1)[0])

    def inducing_points(self) -> np.ndarray:
        return self.covar_module.inducing_points.detach().numpy().copy()


# ----------------------------------------------------------------------------------------
# The collapsed bound, its gradient and the posterior in closed form
# ----------------------------------------------------------------------------------------


def _solve_left(c: np.ndarray, b: np.ndarray, trans: bool = False) -> np.ndarray:
    """:math:`L^{-1}B` (or :math:`L^{-T}B`) for a lower factor ``c`` and a C-ordered ``B``, in
    place: BLAS ``trsm`` on the transposed (Fortran) view, :math:`B^T L^{-T}`, no copy."""
    out = scipy.linalg.blas.dtrsm(1.0, c, b.T, side=1, lower=1, trans_a=0 if trans else 1, overwrite_b=1)
    return out.T


class _Statistics:
    r"""The :math:`M \times M` summaries of the data at given parameters (standardized units):
    the factors :math:`L`, :math:`L_B`, :math:`\tilde S = A\Sigma^{-1}A^T` with
    :math:`A = L^{-1}K_{uf}` (so that :math:`B = I + \tilde S`), :math:`\tilde b = A\Sigma^{-1}r`,
    :math:`\tilde e = A\Sigma^{-1}\mathbf 1` and the bound :math:`\mathcal F`.

    :math:`A` is formed block by block with a triangular solve before any product: forming
    :math:`K_{uf}\Sigma^{-1}K_{fu}` first and solving afterwards is half the work, but its
    rounding is amplified by :math:`\lVert K_{uu}^{-1}\rVert` (up to :math:`1/\delta s^2`), which
    made the bound noisy at the :math:`10^{-6}` relative level and stopped L-BFGS-B early.
    With ``keep`` the blocks of :math:`A` and :math:`\varphi` are kept for the gradient pass.
    """

    def __init__(self, kernel: str, xs: torch.Tensor, zs: torch.Tensor, r: np.ndarray, w: np.ndarray | float,
                 s2: float, jitter: float, chunks: list[slice], keep: bool) -> None:
        m = zs.shape[0]
        n = xs.shape[0]
        kmm, phimm = _radial(kernel, _distance(zs, zs))
        self.phimm = phimm.numpy()
        kuu = kmm.numpy() * s2
        kuu[np.diag_indices(m)] += jitter * s2
        self.L = _cholesky(kuu.T.copy(order="F"))
        st = np.zeros((m, m))
        bt = np.zeros(m)
        et = np.zeros(m)
        self.cache: list[tuple[np.ndarray, np.ndarray]] = []
        scalar_w = np.ndim(w) == 0
        for sl in chunks:
            kap, phi = _radial(kernel, _distance(zs, xs[sl]))
            a = _solve_left(self.L, kap.numpy())  # L^-1 kappa, in place
            if scalar_w:
                st += a @ a.T
                bt += a @ r[sl]
                et += a.sum(axis=1)
            else:
                aw = a * w[sl]
                st += aw @ a.T
                bt += aw @ r[sl]
                et += aw.sum(axis=1)
            if keep:
                self.cache.append((a, phi.numpy()))
        # kernel entries are s^2 kappa; with a scalar w the weights are applied here
        wf = w if scalar_w else 1.0
        st *= s2 * s2 * wf
        self.St = 0.5 * (st + st.T)
        self.bt = bt * (s2 * wf)
        self.et = et * (s2 * wf)
        self.LB = _cholesky(np.asfortranarray(self.St + np.eye(m)))
        self.c = scipy.linalg.solve_triangular(self.LB, self.bt, lower=True, check_finite=False)
        self.sum_w = n * w if scalar_w else float(np.sum(w))
        self.wr2 = float(w * (r @ r)) if scalar_w else float(np.sum(w * r * r))
        self.sum_log_noise = -n * math.log(w) if scalar_w else float(-np.sum(np.log(w)))
        log_det_b = 2.0 * float(np.log(np.diag(self.LB)).sum())
        # tr(Sigma^-1 (K_ff - Q)) = s^2 sum(w) - tr(S~): Nystrom residual, >= 0 up to the jitter
        self.trace_term = s2 * self.sum_w - float(np.trace(self.St))
        self.value = (-0.5 * n * math.log(2 * math.pi) - 0.5 * self.sum_log_noise - 0.5 * log_det_b
                      - 0.5 * self.wr2 + 0.5 * float(self.c @ self.c) - 0.5 * self.trace_term)
        if not math.isfinite(self.value):
            raise _NotPositiveDefinite(-1)


class _Bound:
    r"""Negative collapsed bound per point, :math:`-\mathcal F/n`, and its gradient in
    :math:`\theta`, at a given jitter.

    With :math:`S = K_{uf}\Sigma^{-1}K_{fu}`, :math:`b = K_{uf}\Sigma^{-1}r`,
    :math:`P = K_{uu} + S`, :math:`a = P^{-1}b`, the bound reads
    :math:`\mathcal F = -\tfrac12\log|P| + \tfrac12\log|K_{uu}| + \tfrac12 b^TP^{-1}b
    + \tfrac12\mathrm{tr}(K_{uu}^{-1}S) + (\text{terms in } r, \Sigma, s^2)`, so that

    .. math:: G_S = \partial\mathcal F/\partial S = \tfrac12(K_{uu}^{-1} - P^{-1} - aa^T), \qquad
              G_K = \partial\mathcal F/\partial K_{uu} = G_S - \tfrac12 K_{uu}^{-1}SK_{uu}^{-1},

    .. math:: G_U = \partial\mathcal F/\partial K_{uf} = (2G_SK_{uf} + a r^T)\Sigma^{-1}
              = L^{-T}\bigl[(I - B^{-1} - \tilde a\tilde a^T)A + \tilde a r^T\bigr]\Sigma^{-1},

    (:math:`\tilde a = L^Ta = B^{-1}\tilde b`), and the kernel's derivatives carry these to
    :math:`\log\ell`, :math:`Z` (through :math:`\varphi`) and :math:`\log s^2` (every kernel
    entry is proportional to :math:`s^2`);
    :math:`\partial\mathcal F/\partial m = \mathbf 1^T\Sigma^{-1}r - a^TK_{uf}\Sigma^{-1}\mathbf 1`,
    :math:`\partial\mathcal F/\partial\log\sigma^2 = -\tfrac n2 - \langle G_S, S\rangle - a^Tb
    + \tfrac{r^Tr}{2\sigma^2} + \tfrac{ns^2}{2\sigma^2}`. Every product with a data block
    starts from :math:`A` (see :class:`_Statistics`).
    """

    def __init__(self, kernel: str, x: torch.Tensor, y: np.ndarray, w: np.ndarray | None, ard: bool,
                 z: np.ndarray | None, n_inducing: int) -> None:
        self.kernel, self.x, self.y, self.w, self.ard = kernel, x, y, w, ard
        self.n, self.p = x.shape
        self.k = self.p if ard else 1
        self.z_fixed = z  # None: the inducing points are part of theta
        self.m = n_inducing
        rows = max(1, _CHUNK_ENTRIES // self.m)
        self.chunks = [slice(s, min(s + rows, self.n)) for s in range(0, self.n, rows)]
        self.nfev = 0

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, float, float, float | None, np.ndarray]:
        r"""Length scales (one per input), :math:`s^2`, :math:`m`, learned :math:`\sigma^2`, :math:`Z`."""
        k = self.k
        ls = np.broadcast_to(np.exp(theta[:k]), (self.p,)).copy()
        j = k + 2
        sig2 = None
        if self.w is None:
            sig2 = math.exp(theta[j])
            j += 1
        z = self.z_fixed if self.z_fixed is not None else np.asarray(theta[j:]).reshape(-1, self.p)
        return ls, math.exp(theta[k]), float(theta[k + 1]), sig2, z

    def statistics(self, theta: np.ndarray, jitter: float, keep: bool = False) -> tuple[_Statistics, dict]:
        ls, s2, const, sig2, z = self.unpack(theta)
        lst = torch.from_numpy(ls)
        xs = self.x / lst
        zs = torch.from_numpy(np.ascontiguousarray(z)) / lst
        r = self.y - const
        w = 1.0 / sig2 if sig2 is not None else self.w
        st = _Statistics(self.kernel, xs, zs, r, w, s2, jitter, self.chunks, keep)
        return st, {"ls": ls, "s2": s2, "sig2": sig2, "xs": xs.numpy(), "zs": zs.numpy(), "r": r, "w": w}

    def __call__(self, theta: np.ndarray, jitter: float) -> tuple[float, np.ndarray]:
        self.nfev += 1
        st, v = self.statistics(theta, jitter, keep=True)
        ls, s2, sig2, xs, zs, r, w = v["ls"], v["s2"], v["sig2"], v["xs"], v["zs"], v["r"], v["w"]
        m = zs.shape[0]
        eye = np.eye(m)
        solve = functools.partial(scipy.linalg.solve_triangular, lower=True, check_finite=False)
        at = solve(st.LB, st.c, trans="T")  # a~ = B^-1 b~
        binv = scipy.linalg.cho_solve((st.LB, True), eye, check_finite=False)
        emat = eye - binv
        # scalars: <G_S, S>, a^T b, <G_K, K_uu>
        gs_s = 0.5 * float(np.trace(st.St)) - 0.5 * float(np.sum(binv * st.St)) - 0.5 * float(at @ st.St @ at)
        ab = float(at @ st.bt)
        gk_k = 0.5 * float(np.trace(emat - st.St)) - 0.5 * float(at @ at)
        grad_s2 = -0.5 * s2 * st.sum_w + gk_k + 2.0 * gs_s + ab
        wr = w * float(r.sum()) if np.ndim(w) == 0 else float(np.sum(w * r))
        grad_const = wr - float(st.et @ at)
        # G_K = L^-T [ (I - B^-1 - S~ - a~ a~^T) / 2 ] L^-1
        g_k = solve(st.L, solve(st.L, 0.5 * (emat - st.St - np.outer(at, at)), trans="T").T, trans="T")
        # second pass, block by block: H = G_U o s^2 phi with G_U = L^-T [(E - a~a~^T) L^-1 U + a~ r^T] W;
        # the blocks hold L^-1 kappa = L^-1 U / s^2
        ek = (emat - np.outer(at, at)) * s2
        h1 = np.zeros(m)
        hx = np.zeros((m, self.p))
        tx = np.zeros(self.p)
        for (ab_blk, ph), sl in zip(st.cache, self.chunks):
            gu = ek @ ab_blk
            gu += np.outer(at, r[sl])
            gu = _solve_left(st.L, gu, trans=True)
            gu *= ph
            gu *= w if np.ndim(w) == 0 else w[sl]
            h1 += gu.sum(axis=1)
            xc = xs[sl]
            hx += gu @ xc
            tx += gu.sum(axis=0) @ (xc * xc)
        h1 *= s2
        hx *= s2
        tx *= s2
        hk = g_k * (s2 * st.phimm)
        hk1 = hk.sum(axis=1)
        hkz = hk @ zs
        zz = zs * zs
        g_ls = zz.T @ h1 - 2.0 * np.sum(zs * hx, axis=0) + tx + 2.0 * (zz.T @ hk1) - 2.0 * np.sum(zs * hkz, axis=0)
        grad = [g_ls if self.ard else np.array([g_ls.sum()]), [grad_s2, grad_const]]
        if sig2 is not None:
            grad.append([-0.5 * self.n - gs_s - ab + 0.5 * st.wr2 + 0.5 * s2 * st.sum_w])
        if self.z_fixed is None:
            g_z = -(zs * h1[:, None] - hx) - 2.0 * (zs * hk1[:, None] - hkz)
            grad.append((g_z / ls).reshape(-1))
        g = np.concatenate([np.asarray(t, dtype=float).reshape(-1) for t in grad])
        return -st.value / self.n, -g / self.n


class _SparseFitted:
    r"""A fitted sparse latent GP: parameters, training data (standardized units) and the
    cached predictive quantities, in units of :math:`\kappa` (:math:`k = s^2\kappa`):
    ``wmean`` (:math:`s^2P^{-1}b`, the mean weights), ``vmat`` (:math:`s^4(K_{uu}^{-1} - P^{-1})`),
    ``gvec`` (:math:`s^2 g`) and ``c1`` (:math:`\mathbf 1^T(Q+\Sigma)^{-1}\mathbf 1`)."""

    def __init__(self, gp: _SparseModel, x: torch.Tensor, y: np.ndarray, noise: np.ndarray, jitter: float) -> None:
        self.gp, self.x, self.y, self.noise, self.jitter = gp, x, y, noise, jitter
        self.info: dict[str, Any] = {}
        z = gp.inducing_points()
        obj = _Bound(gp.kernel_name, x, y, None if gp.learn_noise else 1.0 / noise,
                     gp.n_lengthscales == x.shape[1], z, z.shape[0])
        st, _ = obj.statistics(gp.get_theta(with_inducing=False), jitter)
        self.bound = st.value
        m = gp.n_inducing
        eye = np.eye(m)
        solve = functools.partial(scipy.linalg.solve_triangular, lower=True, check_finite=False)
        s2 = gp.outputscale()
        at = solve(st.LB, st.c, trans="T")
        self.wmean = s2 * solve(st.L, at, trans="T")
        linv = solve(st.L, eye)
        binv = scipy.linalg.cho_solve((st.LB, True), eye, check_finite=False)
        vmat = (s2 * s2) * (linv.T @ (eye - binv) @ linv)
        self.vmat = 0.5 * (vmat + vmat.T)
        # k^T V k = ||R^T k||^2 with V = R R^T: a triangular product, half the work of V k
        # (1e5 points x 512 inducing: 0.9 s instead of 1.3 s of CPU); V is positive
        # semi-definite only, so a failed factorization falls back to the full product
        try:
            self.vchol: np.ndarray | None = _cholesky(np.asfortranarray(self.vmat))
        except _NotPositiveDefinite:
            self.vchol = None
        et_b = solve(st.LB, st.et)
        self.gvec = s2 * solve(st.L, solve(st.LB, et_b, trans="T"), trans="T")
        # 1^T (Q + Sigma)^-1 1 by Woodbury, a difference of two large numbers at large n;
        # it is at least n / lambda_max(Q + Sigma) >= n / tr(Q + Sigma), which bounds the
        # estimated mean's variance whatever the rounding
        n = len(y)
        floor = n / (n * s2 * (1.0 + jitter) + float(np.sum(noise)))
        self.c1 = max(st.sum_w - float(et_b @ et_b), floor)

    def mean_term(self, kappa: np.ndarray) -> np.ndarray:
        """:math:`r(x) = 1 - g^T k_u(x)` of the points of ``kappa`` (rows of :math:`\\kappa(x, Z)`)."""
        return 1.0 - kappa @ self.gvec


def _latent_moments(f: _SparseFitted, xs: torch.Tensor, want_var: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior mean and variance of the sparse latent GP at ``xs`` (standardized), in blocks."""
    const, s2, ls = f.gp.constant(), f.gp.outputscale(), f.gp.lengthscale()
    z = torch.from_numpy(f.gp.inducing_points())
    mean = np.empty(xs.shape[0])
    var = np.empty(xs.shape[0]) if want_var else None
    rows = max(256, _CHUNK_ENTRIES // max(z.shape[0], 1))
    with torch.no_grad():
        for start in range(0, xs.shape[0], rows):
            xc = xs[start : start + rows]
            kappa = _kappa(f.gp.kernel_name, xc, z, ls).numpy()
            mean[start : start + len(xc)] = const + kappa @ f.wmean
            if want_var:
                if f.vchol is not None:
                    t = scipy.linalg.blas.dtrmm(1.0, f.vchol, kappa.T, side=0, lower=1, trans_a=1)
                    q = np.einsum("ij,ij->j", t, t)
                else:
                    q = np.einsum("ij,ij->i", kappa @ f.vmat, kappa)
                rr = f.mean_term(kappa)
                var[start : start + len(xc)] = np.maximum(s2 - q, 0.0) + rr * rr / f.c1
    return mean, var


def _kmeanspp(x: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (D² sampling): ``m`` distinct rows of ``x``. Each new point is drawn
    with probability proportional to its squared distance to the nearest chosen one, so a
    duplicate of a chosen point is never drawn. The loop runs over the ``m`` selected
    points; each step is one vectorized pass over the data."""
    n = x.shape[0]
    idx = np.empty(m, dtype=np.intp)
    idx[0] = rng.integers(n)
    d2 = np.sum((x - x[idx[0]]) ** 2, axis=1)
    for k in range(1, m):
        cum = np.cumsum(d2)
        total = cum[-1]
        if not total > 0:  # fewer distinct rows than m: checked in fit, kept as a guard
            raise InputError(f"only {k} distinct training inputs; use n_inducing <= {k}")
        idx[k] = min(int(np.searchsorted(cum, rng.uniform(0.0, total), side="right")), n - 1)
        np.minimum(d2, np.sum((x - x[idx[k]]) ** 2, axis=1), out=d2)
    return x[idx]


def _optimize_stage(x: torch.Tensor, y: np.ndarray, w: np.ndarray | None, *, kernel: str, ard: bool,
                    hyper: np.ndarray, hyper_bounds: list, z: np.ndarray, learn_inducing: bool,
                    box: tuple[np.ndarray, np.ndarray], jitter: float, max_jitter: float,
                    max_iter: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One L-BFGS-B run of the bound on the points ``x``: the hyperparameters, and the
    inducing points too with ``learn_inducing``. Returns the new hyperparameters, inducing
    points and a diagnostics dict."""
    t0 = time.perf_counter()
    n, p = x.shape
    obj = _Bound(kernel, x, y, w, ard, None if learn_inducing else z, z.shape[0])
    bounds = list(hyper_bounds)
    theta0 = hyper
    if learn_inducing:
        lo, hi = box
        bounds += [(float(lo[d]), float(hi[d])) for _ in range(z.shape[0]) for d in range(p)]
        theta0 = np.concatenate([hyper, z.reshape(-1)])
    res = _minimize(obj, theta0, bounds, jitter, max_jitter, max_iter, ftol=_FTOL_NATS / n)
    nh = len(hyper)
    z_new = res["theta"][nh:].reshape(z.shape) if learn_inducing else z
    info = {"points": n, "learn_inducing": learn_inducing, "bound": -res["f"] * n, "nit": res["nit"],
            "nfev": obj.nfev, "message": res["message"], "jitter": res["jitter"],
            "seconds": time.perf_counter() - t0}
    return res["theta"][:nh], z_new, info


def _fit_sparse(x: torch.Tensor, y: np.ndarray, *, kernel: str, ard: bool, noise: np.ndarray | None,
                z0: np.ndarray, learn_inducing: bool, jitter: float, max_jitter: float, max_iter: int,
                box: tuple[np.ndarray, np.ndarray], subset: np.ndarray | None) -> _SparseFitted:
    """Maximize the collapsed bound of one output (``noise=None`` learns a homoscedastic
    noise) from the default start (length scale :math:`\\sqrt p`, :math:`s^2 = 1`,
    :math:`m = 0`, :math:`\\sigma^2 = 0.1`, standardized units) and the inducing points ``z0``.

    Without ``subset``: one run over all points (inducing points included with
    ``learn_inducing``). With ``subset`` (large problems): the hyperparameters and the
    inducing points are first optimized on that random subset of the points, then the
    hyperparameters alone on all points, the inducing points held where the first stage put
    them: the :math:`Mp` location parameters need most of the iterations, and each costs
    :math:`O(n_{sub}M^2)` instead of :math:`O(nM^2)`.
    """
    t0 = time.perf_counter()
    p = x.shape[1]
    w = None if noise is None else 1.0 / noise
    gp = _SparseModel(kernel, torch.from_numpy(z0), ard, None if noise is None else torch.from_numpy(noise))
    k = gp.n_lengthscales
    log = lambda b: (math.log(b[0]), math.log(b[1]))  # noqa: E731
    bounds = [log(_BOUNDS["lengthscale"])] * k + [log(_BOUNDS["outputscale"]), (None, None)]
    start = [np.full(k, math.log(math.sqrt(p))), [math.log(_INIT["outputscale"]), 0.0]]
    if noise is None:
        bounds.append(log(_BOUNDS["noise"]))
        start.append([math.log(_INIT["noise"])])
    hyper = np.concatenate([np.asarray(s_, dtype=float).reshape(-1) for s_ in start])
    common = {"kernel": kernel, "ard": ard, "hyper_bounds": bounds, "box": box, "max_jitter": max_jitter,
              "max_iter": max_iter}
    stages = []
    z, jit = z0, jitter
    if subset is not None:
        hyper, z, info = _optimize_stage(x[subset], y[subset], None if w is None else w[subset], hyper=hyper, z=z,
                                         learn_inducing=learn_inducing, jitter=jit, **common)
        stages.append(info)
        jit = info["jitter"]
    hyper, z, info = _optimize_stage(x, y, w, hyper=hyper, z=z, learn_inducing=learn_inducing and subset is None,
                                     jitter=jit, **common)
    stages.append(info)
    jit = info["jitter"]
    gp.set_theta(np.concatenate([hyper, z.reshape(-1)]))
    noise_vec = np.full(len(y), gp.noise_value()) if noise is None else noise
    while True:  # the optimum was factored at this jitter already; guard against rounding
        try:
            fitted = _SparseFitted(gp, x, y, noise_vec, jit)
            break
        except _NotPositiveDefinite:
            jit = _next_jitter(jit)
            if jit > max_jitter:
                raise
    fitted.info = {"jitter": jit, "nit": sum(s_["nit"] for s_ in stages), "nfev": sum(s_["nfev"] for s_ in stages),
                   "message": stages[-1]["message"], "bound": fitted.bound, "stages": stages,
                   "seconds": time.perf_counter() - t0}
    return fitted


# ----------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------


def _check_positive_noise_variance(nv: Any, n: int, q: int) -> np.ndarray:
    """The exact GP's checks of ``noise_variance``, and strictly positive values."""
    a = _check_noise_variance(nv, n, q)
    if np.any(a <= 0):
        raise InputError(f"SparseGPR needs positive noise variances (the bound divides by them), got minimum "
                         f"{a.min():.3g}; use GPR(noise='fixed') for noise-free or zero-variance points")
    return a


class SparseGPR(GPPosterior, SurrogateBase):
    r"""Sparse Gaussian-process regressor (SGPR, Titsias 2009) for large training sets.

    The model and the predictive contract are those of :class:`~stochhom.surrogates.GPR`
    (same kernels, ARD, constant mean with its estimation variance, epistemic/aleatoric
    split); the exact marginal likelihood is replaced by the collapsed variational bound with
    ``n_inducing`` inducing points, whose locations are learned with the hyperparameters.
    Fitting costs :math:`O(nM^2)` per bound evaluation and prediction :math:`O(M^2)` per
    point; see the module docstring for the equations.

    Parameters
    ----------
    n_inducing : int or None
        Number :math:`M` of inducing points; ``None`` takes :math:`\min(n_{distinct}, 512)`,
        :math:`n_{distinct}` the number of distinct training inputs. At most the number of
        distinct inputs (more add nothing and make :math:`K_{uu}` singular).
    kernel : {"matern52", "matern32", "matern12", "rbf"}
        Stationary kernel of the latent function, scaled by a learned signal variance.
    ard : bool
        One length scale per input; otherwise one shared length scale.
    noise : {"homoscedastic", "fixed"}
        Learned constant noise variance, or positive per-point variances given to ``fit``
        as ``noise_variance``. For a learned input-dependent noise use
        :class:`~stochhom.surrogates.GPR`.
    learn_inducing : bool
        Optimize the inducing locations with the hyperparameters (:math:`Mp` more
        parameters); otherwise they stay at the k-means++ selection.
    max_iter : int
        Maximum L-BFGS-B iterations of the bound.
    jitter : float
        Added to the diagonal of :math:`K_{uu}`, relative to :math:`s^2`. When a Cholesky
        factorization fails it is multiplied by 10, up to ``max_jitter``.
    max_jitter : float
        Largest jitter tried before an :class:`~stochhom.errors.InputError` is raised.
    random_state : int, numpy.random.Generator or None
        Seed of the k-means++ selection of the initial inducing points (the same for every
        output).

    Attributes
    ----------
    models_ : list
        One fitted sparse latent GP per output (gpytorch modules in ``models_[j].gp``).
    hyperparameters_ : list of dict
        Per output, in original units: ``mean``, ``signal_std``, ``lengthscale`` (per
        input), ``noise_std`` (homoscedastic only), ``bound`` (the maximized
        :math:`\mathcal F`, standardized outputs), ``jitter``, ``n_inducing``.
    inducing_points_ : list of numpy.ndarray
        Per output, the learned inducing locations ``(M, p)`` in input units.
    bound_ : numpy.ndarray
        Maximized bound :math:`\mathcal F` per output (standardized outputs), a lower bound of
        the log marginal likelihood.
    n_inducing_ : int
        :math:`M` used.
    X_train_, y_train_ : numpy.ndarray
        Training data, ``y_train_`` as ``(n, q)``.
    x_scaler_, y_scaler_ : Standardizer
        Input and output scalings.
    x_min_, x_max_ : numpy.ndarray
        The training box; predictions outside it are flagged ``out_of_domain``.
    fit_info_ : list of dict
        Optimizer diagnostics per output (iterations, evaluations, message, seconds).

    Notes
    -----
    Outputs of a multi-output ``y`` are independent sparse GPs. With ``noise="fixed"`` the
    aleatoric variance at a new input is the given variance where the input equals a
    training input (mean over duplicates) and the mean training variance elsewhere, as in
    :class:`~stochhom.surrogates.GPR`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(400, 2)); y = np.sin(3 * X[:, 0]) + 0.1 * rng.standard_normal(400)
    >>> gp = SparseGPR(n_inducing=30, random_state=0).fit(X, y)
    >>> mean, std = gp.predict(X[:3], return_std=True)
    """

    _moments = staticmethod(lambda model, xs, want_var: _latent_moments(model, xs, want_var))

    def __init__(
        self,
        n_inducing: int | None = None,
        kernel: str = "matern52",
        ard: bool = True,
        noise: str = "homoscedastic",
        learn_inducing: bool = True,
        max_iter: int = 200,
        jitter: float = 1e-6,
        max_jitter: float = 1e-2,
        random_state: Any = None,
    ) -> None:
        self.n_inducing = n_inducing
        self.kernel = kernel
        self.ard = ard
        self.noise = noise
        self.learn_inducing = learn_inducing
        self.max_iter = max_iter
        self.jitter = jitter
        self.max_jitter = max_jitter
        self.random_state = random_state

    # -- validation ------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.noise == "heteroscedastic":
            raise InputError("SparseGPR has no heteroscedastic noise model; use GPR(noise='heteroscedastic'), "
                             "or SparseGPR(noise='fixed') with per-point variances")
        self._check_gp_params(_NOISE_MODELS)
        m = self.n_inducing
        if m is not None and (isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)) or m < 1):
            raise InputError(f"n_inducing must be a positive integer or None (min(n, {_DEFAULT_INDUCING})), "
                             f"got {m!r}")

    def _inducing_count(self, n: int, n_distinct: int) -> int:
        m = self.n_inducing
        if m is None:
            return min(n_distinct, _DEFAULT_INDUCING)
        if m > n:
            raise InputError(f"n_inducing={m} exceeds the {n} training points; use n_inducing <= {n} "
                             f"(or GPR, exact, for small data)")
        if m > n_distinct:
            raise InputError(f"n_inducing={m} exceeds the {n_distinct} distinct training inputs (replicates "
                             f"share an input); use n_inducing <= {n_distinct}: with n_inducing = {n_distinct} "
                             "the sparse GP is already the exact GP")
        return int(m)

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, noise_variance: Any = None) -> SparseGPR:
        """Fit one sparse GP per output by maximizing the collapsed bound.

        Parameters
        ----------
        X : array_like, shape (n, p)
            Inputs (parameter points).
        y : array_like, shape (n,) or (n, q)
            Observations.
        noise_variance : array_like, shape (n,) or (n, q), optional
            Positive per-point noise variances in the units of ``y`` squared; required with
            ``noise="fixed"`` and rejected otherwise.

        Returns
        -------
        SparseGPR
            ``self``.
        """
        self._check_params()
        Xa, Ya, one_d = check_Xy(X, y)
        n, q = Ya.shape
        if self.noise == "fixed":
            if noise_variance is None:
                raise InputError("noise='fixed' needs fit(X, y, noise_variance=...), e.g. s**2/n per point")
            nv = _check_positive_noise_variance(noise_variance, n, q)
        elif noise_variance is not None:
            raise InputError(f"noise_variance is only used with noise='fixed'; this SparseGPR has "
                             f"noise={self.noise!r}")
        else:
            nv = None
        n_distinct = np.unique(Xa, axis=0).shape[0]
        if n_distinct < 2:
            raise InputError("all training inputs are the same point; a GP needs at least 2 distinct inputs")
        m = self._inducing_count(n, n_distinct)

        self.x_scaler_ = Standardizer.fit(Xa)
        y_mean = np.array([np.ascontiguousarray(Ya[:, j]).mean() for j in range(q)])
        y_std = np.array([np.ascontiguousarray(Ya[:, j]).std() for j in range(q)])
        self.y_scaler_ = Standardizer(y_mean, np.where(y_std > 0, y_std, 1.0))
        xn = np.ascontiguousarray(self.x_scaler_.transform(Xa))
        x = torch.from_numpy(xn)
        Ys = self.y_scaler_.transform(Ya)
        rng = np.random.default_rng(self.random_state)
        z0 = _kmeanspp(xn, m, rng)
        box = (xn.min(axis=0), xn.max(axis=0))
        n_sub = max(_SUBSET_SIZE, 4 * m)
        subset = np.sort(rng.choice(n, n_sub, replace=False)) if n > n_sub else None

        models = []
        for j in range(q):
            yj = np.ascontiguousarray(Ys[:, j])
            fixed = None if nv is None else nv[:, j] / self.y_scaler_.scale[j] ** 2
            try:
                with _threads(n):
                    fitted = _fit_sparse(x, yj, kernel=self.kernel, ard=self.ard, noise=fixed, z0=z0,
                                         learn_inducing=self.learn_inducing, jitter=self.jitter,
                                         max_jitter=self.max_jitter, max_iter=self.max_iter, box=box,
                                         subset=subset)
            except _NotPositiveDefinite:
                raise InputError(
                    f"SparseGPR output {j}: the inducing-point kernel matrix is not numerically positive "
                    f"definite even with jitter {self.max_jitter:g} (max_jitter, relative to the signal "
                    f"variance). Fix: fewer inducing points (n_inducing={m}), learn_inducing=False, or a "
                    f"larger max_jitter.") from None
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
        self.bound_ = np.array([m.bound for m in self.models_])
        self.n_inducing_ = self.models_[0].gp.n_inducing
        self.train_noise_variance_ = np.stack([m.noise for m in self.models_], axis=1) * scale2
        self.fit_info_ = [m.info for m in self.models_]
        self.x_min_ = self.X_train_.min(axis=0)
        self.x_max_ = self.X_train_.max(axis=0)
        self.inducing_points_ = [self.x_scaler_.inverse(m.gp.inducing_points()) for m in self.models_]
        hyper = []
        for j, m in enumerate(self.models_):
            sy = float(self.y_scaler_.scale[j])
            h = {
                "mean": m.gp.constant() * sy + float(self.y_scaler_.mean[j]),
                "signal_std": math.sqrt(m.gp.outputscale()) * sy,
                "lengthscale": (m.gp.lengthscale().numpy() * self.x_scaler_.scale).tolist(),
                "bound": m.bound,
                "jitter": m.jitter,
                "n_inducing": m.gp.n_inducing,
            }
            if m.gp.learn_noise:
                h["noise_std"] = math.sqrt(m.gp.noise_value()) * sy
            hyper.append(h)
        self.hyperparameters_ = hyper
        if self._given_noise_ is not None:
            uniq, inv = np.unique(self.X_train_, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
            counts = np.bincount(inv, minlength=len(uniq))
            sums = np.zeros((len(uniq), self.n_outputs_))
            np.add.at(sums, inv, self._given_noise_)
            self._noise_inputs_ = uniq
            self._noise_at_inputs_ = sums / counts[:, None]

    # -- prediction ------------------------------------------------------------------------

    def _noise(self, Xa: np.ndarray, xs: Any = None) -> np.ndarray:
        scale2 = self.y_scaler_.scale**2
        if self.noise == "homoscedastic":
            per = np.array([m.gp.noise_value() for m in self.models_]) * scale2
            return np.broadcast_to(per, (Xa.shape[0], self.n_outputs_)).copy()
        out = np.broadcast_to(self._given_noise_.mean(axis=0), (Xa.shape[0], self.n_outputs_)).copy()
        # rows of Xa equal to a training input take its given variance (vectorized lookup)
        u = self._noise_inputs_
        _, inv = np.unique(np.concatenate([u, Xa]), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        owner = np.full(inv.max() + 1, -1)
        owner[inv[: len(u)]] = np.arange(len(u))
        hit = owner[inv[len(u) :]]
        out[hit >= 0] = self._noise_at_inputs_[hit[hit >= 0]]
        return out

    @_fitted_threads
    def sample_functions(self, X: Any, n_samples: int, rng: Any = None) -> np.ndarray:
        r"""Joint samples of the latent function from the sparse posterior, at the points ``X``.

        :math:`f(X) \sim N\bigl(\mu,\; K_{**} - K_{*u}(K_{uu}^{-1} - P^{-1})K_{u*} + r r^T /
        \mathbf 1^T(Q+\Sigma)^{-1}\mathbf 1\bigr)`, :math:`r = 1 - K_{*u}g` (the estimated mean's
        variance, as in ``predict``), drawn as :math:`\mu + C z` with :math:`CC^T` the
        (jittered) Cholesky factor of that covariance, or its eigendecomposition if that
        fails. The noise is not included. Memory :math:`O(t^2)` and time :math:`O(t^3)` in the
        number :math:`t` of points.

        Parameters
        ----------
        X : array_like, shape (t, p)
        n_samples : int
        rng : numpy.random.Generator, int or None
            Source of the standard normal draws (numpy's generator), one array of shape
            ``(n_samples, q, t)``: the first samples do not depend on ``n_samples``.

        Returns
        -------
        numpy.ndarray
            ``(n_samples, t)`` for 1-D ``y``, else ``(n_samples, t, q)``, original units.
        """
        Xa, xs = self._inputs(X)
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)) \
                or n_samples < 1:
            raise InputError(f"n_samples must be a positive integer, got {n_samples!r}")
        gen = np.random.default_rng(rng)
        z = gen.standard_normal((n_samples, self.n_outputs_, Xa.shape[0]))
        out = np.empty((n_samples, Xa.shape[0], self.n_outputs_))
        for j, m in enumerate(self.models_):
            s2, ls = m.gp.outputscale(), m.gp.lengthscale()
            zu = torch.from_numpy(m.gp.inducing_points())
            with torch.no_grad():
                kappa = _kappa(m.gp.kernel_name, xs, zu, ls).numpy()
                kss = _kappa(m.gp.kernel_name, xs, xs, ls).numpy()
            mean = m.gp.constant() + kappa @ m.wmean
            r = m.mean_term(kappa)
            cov = s2 * kss - (kappa @ m.vmat) @ kappa.T + np.outer(r, r) / m.c1
            cov = 0.5 * (cov + cov.T)
            factor = _psd_factor(cov)
            out[:, :, j] = (mean + z[:, j, :] @ factor.T) * self.y_scaler_.scale[j] + self.y_scaler_.mean[j]
        return out[:, :, 0] if self._y_1d_ else out

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Save to a directory: ``sgpr.json`` (metadata, hyperparameters, scalers, versions)
        and ``sgpr_tensors.pt`` (gpytorch state dicts, inducing points included, and the
        training data; tensors only).

        Nothing executable is stored: :meth:`load` rebuilds the modules from the JSON and
        reads the tensors with ``torch.load(weights_only=True)``.
        """
        check_is_fitted(self, "models_")
        os.makedirs(path, exist_ok=True)
        params = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.get_params().items()}
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # a Generator is not serializable; it only seeded the selection
        tensors: dict[str, Any] = {"X": torch.from_numpy(self.X_train_), "y": torch.from_numpy(self.y_train_)}
        if self._given_noise_ is not None:
            tensors["noise_variance"] = torch.from_numpy(self._given_noise_)
        outputs = []
        for j, m in enumerate(self.models_):
            tensors[f"output{j}.state"] = m.gp.state_dict()
            tensors[f"output{j}.train_noise"] = torch.from_numpy(m.noise)
            outputs.append({"jitter": m.jitter, "learn_noise": m.gp.learn_noise, "bound": m.bound,
                            "n_inducing": m.gp.n_inducing})
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
        torch.save(tensors, os.path.join(path, "sgpr_tensors.pt"))
        with open(os.path.join(path, "sgpr.json"), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SparseGPR:
        """Load a model written by :meth:`save`; its predictions are the same up to rounding (the
        :math:`M \\times M` factors are recomputed, :math:`O(nM^2)`)."""
        self, meta, tensors = cls._restore(path, "sgpr", _FORMAT, _FORMAT_VERSION)
        x = torch.from_numpy(np.ascontiguousarray(self.x_scaler_.transform(self.X_train_)))
        ys = self.y_scaler_.transform(self.y_train_)
        models = []
        with _threads(self.X_train_.shape[0]):
            for j, entry in enumerate(meta["outputs"]):
                state = tensors[f"output{j}.state"]
                noise = tensors[f"output{j}.train_noise"]
                inducing = state["covar_module.inducing_points"]
                gp = _SparseModel(self.kernel, inducing, self.ard, None if entry["learn_noise"] else noise)
                gp.load_state_dict(state)
                fitted = _SparseFitted(gp, x, np.ascontiguousarray(ys[:, j]), noise.numpy(), entry["jitter"])
                fitted.info = {"loaded_from": os.fspath(path)}
                models.append(fitted)
        self.models_ = models
        self._finish()
        return self
