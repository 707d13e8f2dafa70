"""GPR at scale: the compiled kernels, variances with certified bounds at many points,
the thread policy and the likelihood's cache of repeated evaluations.

Every fast path is compared with the slow one it replaces (torch's closed forms and
numpy's ``exp`` for the kernels, triangular solves for the variances). Tolerances are
rounding levels (a few units in the last place) or the certified error of the bounds.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from stochhom.errors import InputError
from stochhom.surrogates import gpr as G
from stochhom.surrogates._gp_kernels import KERNEL_IDS, exp_neg, fused_mean, kernel_block
from stochhom.surrogates.gpr import GPR

pytestmark = pytest.mark.filterwarnings("ignore::stochhom.errors.OutOfDomainWarning")


def test_vector_exp_is_within_two_units_in_the_last_place() -> None:
    z = np.concatenate([np.linspace(0.0, 60.0, 200_001), np.random.default_rng(0).uniform(0.0, 680.0, 20_000),
                        [0.0, 5e-324, 1e-300, 1e-17, 0.5 * math.log(2.0), 700.0, 1e300]])
    got = exp_neg(z)
    ref = np.exp(-z)
    normal = ref > 1e-290
    rel = np.abs(got[normal] - ref[normal]) / ref[normal]
    assert rel.max() <= 2 * np.finfo(float).eps  # measured: 1 ulp
    assert np.all(got[~normal] < 1e-290) and np.all(got >= 0.0)  # past ~690 the kernel value is nil
    assert got[np.argmax(z == 0.0)] == 1.0


@pytest.mark.parametrize("kernel", sorted(KERNEL_IDS))
def test_compiled_kernel_blocks_equal_the_closed_forms(kernel: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(300, 3))
    xs = np.concatenate([rng.uniform(size=(257, 3)), x[:5]])  # duplicates: distance exactly 0
    ls = torch.tensor([0.2, 0.7, 3.0], dtype=torch.float64)
    ref = G._kappa(kernel, torch.from_numpy(xs), torch.from_numpy(x), ls).numpy()
    scale = (ls * G._U_SCALE[kernel]).numpy()
    xt = np.ascontiguousarray((x / scale).T)
    block = np.empty(ref.shape)
    kernel_block(KERNEL_IDS[kernel], np.ascontiguousarray(xs / scale), xt, block)
    np.testing.assert_allclose(block, ref, rtol=0, atol=4 * np.finfo(float).eps)
    np.testing.assert_array_equal(np.diagonal(block[-5:, :5]), 1.0)
    alpha = rng.standard_normal(300)
    mean = fused_mean(KERNEL_IDS[kernel], np.ascontiguousarray(xs / scale), xt, alpha)
    np.testing.assert_allclose(mean, ref @ alpha, rtol=0, atol=1e-13 * np.abs(alpha).sum())


def _fitted(noise: str, n: int = 400, seed: int = 0) -> tuple[GPR, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    f = np.sin(4.0 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2]
    if noise == "fixed":
        nv = (0.02 + 0.1 * X[:, 0]) ** 2  # the whitening D varies tenfold in variance
        gp = GPR(noise="fixed", n_restarts=0, random_state=0).fit(X, f + np.sqrt(nv) * rng.standard_normal(n),
                                                                   noise_variance=nv)
    else:
        gp = GPR(n_restarts=0, random_state=0).fit(X, f + 0.03 * rng.standard_normal(n))
    xs = np.random.default_rng(seed + 1).uniform(size=(G._FAST_VARIANCE_RATIO * n + 7, 3))
    return gp, xs


def _exact_components(gp: GPR, xs: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    with monkeypatch.context() as m:
        m.setattr(G, "_FAST_VARIANCE_RATIO", 10**9)
        return gp.predict_components(xs)


@pytest.mark.parametrize("noise", ["homoscedastic", "fixed"])
def test_variances_at_many_points_are_certified_against_the_exact_ones(noise: str, monkeypatch) -> None:
    gp, xs = _fitted(noise)
    model = gp.models_[0]
    xsn = np.ascontiguousarray(gp.x_scaler_.transform(xs) / model.scaled_inputs()[0])
    rank = G._variance_rank(model, xsn)
    assert rank is not None and rank < len(gp.X_train_) // 4  # the fast path is taken
    fast = gp.predict_components(xs)
    exact = _exact_components(gp, xs, monkeypatch)
    np.testing.assert_allclose(fast["mean"], exact["mean"], rtol=1e-12, atol=1e-12)
    v_fast, v_exact = fast["epistemic_std"] ** 2, exact["epistemic_std"] ** 2
    assert np.max(np.abs(v_fast - v_exact) / v_exact) <= G._VAR_RTOL
    # the bounds themselves contain the exact variance (up to the rounding of the exact one)
    _, xt = model.scaled_inputs()
    kappa = np.empty((len(xsn), xt.shape[1]))
    kernel_block(KERNEL_IDS[model.gp.kernel_name], xsn, xt, kappa)
    mid, half = G._bounded_variance(model, kappa, rank)
    ref = G._exact_variance(model, kappa)
    slack = 1e-10 * model.gp.outputscale()
    assert np.all(mid - half <= ref + slack) and np.all(ref <= mid + half + slack)


def test_too_small_a_rank_falls_back_to_exact_solves(monkeypatch) -> None:
    gp, xs = _fitted("homoscedastic", seed=3)
    exact = _exact_components(gp, xs, monkeypatch)
    calls = []
    original = G._exact_variance

    def counting(f, kappa):
        calls.append(len(kappa))
        return original(f, kappa)

    monkeypatch.setattr(G, "_variance_rank", lambda f, xs: 2)  # bounds far too loose: every point solved exactly
    monkeypatch.setattr(G, "_exact_variance", counting)
    fast = gp.predict_components(xs)
    assert sum(calls) == len(xs)
    np.testing.assert_allclose(fast["epistemic_std"], exact["epistemic_std"], rtol=1e-10)


def test_blas_threads_are_one_for_small_problems_and_can_be_set(monkeypatch) -> None:
    monkeypatch.delenv("STOCHHOM_GP_THREADS", raising=False)
    assert G._blas_threads(G._SMALL_PROBLEM) == 1
    assert 1 <= G._blas_threads(10 * G._SMALL_PROBLEM) <= (os.cpu_count() or 1)
    monkeypatch.setattr(G.os, "getloadavg", lambda: (1000.0, 0.0, 0.0))
    assert G._blas_threads(10 * G._SMALL_PROBLEM) == 1  # busy machine: one thread
    monkeypatch.setenv("STOCHHOM_GP_THREADS", "3")
    assert G._blas_threads(10) == 3
    monkeypatch.setenv("STOCHHOM_GP_THREADS", "many")
    with pytest.raises(InputError, match="STOCHHOM_GP_THREADS"):
        G._blas_threads(10)


def test_threads_context_restores_torch_threads() -> None:
    before = torch.get_num_threads()
    with G._threads(5000):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_likelihood_is_not_recomputed_for_a_repeated_point() -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(size=(50, 2)))
    obj = G._Objective("matern52", x, rng.standard_normal(50), None, True)
    theta = np.array([0.0, 0.0, 0.0, 0.0, math.log(0.1)])
    f1, g1 = obj(theta, 1e-8)
    g1[:] = np.nan  # the caller may write into its gradient: the cache keeps its own copy
    f2, g2 = obj(theta.copy(), 1e-8)
    assert obj.nfev == 1 and f1 == f2 and np.all(np.isfinite(g2))
    obj(theta, 1e-6)  # another jitter is another evaluation
    assert obj.nfev == 2


def test_bounded_variances_do_not_depend_on_the_number_of_threads() -> None:
    import numba

    gp, xs = _fitted("homoscedastic", seed=5)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = gp.predict_components(xs)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = gp.predict_components(xs)
    finally:
        numba.set_num_threads(before)
    # each block is computed whole by one thread, its products on one BLAS thread: the same
    # operations in the same order (a tolerance of rounding, in case a BLAS kernel's choice
    # depends on the alignment of a buffer)
    for key in ("mean", "epistemic_std", "std"):
        np.testing.assert_allclose(one[key], many[key], rtol=1e-12, atol=0)
