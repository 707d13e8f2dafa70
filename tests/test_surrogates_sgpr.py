"""SparseGPR: the collapsed bound is gpytorch's SGPR objective and never exceeds the exact
evidence, all training inputs as inducing points give the exact GP, a sparse GP on thousands
of points is as accurate and as well calibrated as the exact GP, persistence, bad input.

Statistical tests use fixed seeds, so they are deterministic; their tolerances are chosen
from the sampling error of the quantity tested (stated at each assertion).
"""

from __future__ import annotations

import json
import math
import os

import gpytorch
import numpy as np
import pytest
import torch
from sklearn.base import clone

from stochhom.errors import InputError, OutOfDomainWarning
from stochhom.surrogates.gpr import GPR, _threads
from stochhom.surrogates.sgpr import SparseGPR, _Bound, _SparseFitted, _SparseModel

# test points drawn over the domain fall slightly outside the training box: extrapolation warnings
# are expected there (test_prediction_outside_the_training_box_warns checks them)
pytestmark = pytest.mark.filterwarnings("ignore::stochhom.errors.OutOfDomainWarning")

KERNELS = ["matern52", "matern32", "matern12", "rbf"]


def smooth_2d(X: np.ndarray) -> np.ndarray:
    return np.sin(3.0 * X[:, 0]) + 0.5 * np.cos(2.0 * X[:, 1]) + X[:, 0] * X[:, 1]


def noisy_2d(n: int, sd: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 2.0, size=(n, 2))
    return X, smooth_2d(X) + sd * rng.standard_normal(n)


def smooth_4d(X: np.ndarray) -> np.ndarray:
    """The benchmark function of ``benchmarks/bench_surrogates.py`` (4 inputs on [0, 1])."""
    return np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2] * X[:, 3]


def nlpd(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """Mean negative log predictive density of Gaussian predictions."""
    z = (y - mean) / std
    return float(np.mean(0.5 * np.log(2 * np.pi * std**2) + 0.5 * z**2))


def condition_on(sg: SparseGPR, gp: GPR, Z: np.ndarray, jitter: float) -> SparseGPR:
    """Give the fitted ``sg`` the hyperparameters of ``gp`` (public ``hyperparameters_``, original
    units, converted to ``sg``'s standardized units) and the inducing inputs ``Z``."""
    h = gp.hyperparameters_[0]
    xs, ys = sg.x_scaler_, sg.y_scaler_
    x = torch.from_numpy(xs.transform(sg.X_train_))
    z = torch.from_numpy(xs.transform(Z))
    model = _SparseModel(sg.kernel, z, sg.ard, None)
    theta = np.concatenate([
        np.log(np.asarray(h["lengthscale"]) / xs.scale),
        [2 * math.log(h["signal_std"] / ys.scale[0]), (h["mean"] - ys.mean[0]) / ys.scale[0],
         2 * math.log(h["noise_std"] / ys.scale[0])],
        z.numpy().reshape(-1),
    ])
    model.set_theta(theta)
    y = np.ascontiguousarray(ys.transform(sg.y_train_)[:, 0])
    with _threads(len(y)):
        sg.models_ = [_SparseFitted(model, x, y, np.full(len(y), model.noise_value()), jitter)]
    sg._finish()
    return sg


@pytest.fixture(scope="module")
def data_2d() -> tuple[np.ndarray, np.ndarray]:
    return noisy_2d(80, 0.1, seed=3)


@pytest.fixture(scope="module")
def exact_2d(data_2d) -> GPR:
    return GPR(n_restarts=1, random_state=0).fit(*data_2d)


@pytest.fixture(scope="module")
def sparse_2d(data_2d) -> SparseGPR:
    return SparseGPR(n_inducing=20, random_state=0).fit(*data_2d)


# --- the bound ---------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("fixed", [False, True])
def test_closed_form_bound_is_gpytorch_sgpr_objective(kernel, fixed):
    """gpytorch's ``InducingPointKernel`` in an ``ExactGP`` with ``ExactMarginalLogLikelihood``
    (Titsias' bound, its trace term as an added loss) evaluates the same number as the closed
    form, for learned and fixed per-point noise: agreement to rounding (1e-10 relative)."""
    rng = np.random.default_rng(0)
    n, p, m = 200, 3, 15
    x = torch.from_numpy(rng.standard_normal((n, p)))
    y = np.sin(x.numpy()).sum(1) + 0.1 * rng.standard_normal(n)
    noise = torch.from_numpy(rng.uniform(0.01, 0.05, n)) if fixed else None
    model = _SparseModel(kernel, torch.from_numpy(1.5 * rng.standard_normal((m, p))), True, noise)
    theta = model.get_theta()
    theta[:p] = np.log([0.8, 1.2, 1.0])
    theta[p : p + 2] = [math.log(1.5), 0.3]
    if not fixed:
        theta[p + 2] = math.log(0.03)
    model.set_theta(theta)
    model.set_train_data(x, torch.from_numpy(y), strict=False)
    model.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model)
    with gpytorch.settings.max_cholesky_size(10**6), torch.no_grad():
        reference = float(mll(model(x), torch.from_numpy(y))) * n  # gpytorch divides by n
    bound = _Bound(kernel, x, y, None if noise is None else 1.0 / noise.numpy(), True, None, m)
    value, _ = bound(theta, 0.0)  # gpytorch adds no jitter to K_uu
    assert -value * n == pytest.approx(reference, rel=1e-10)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("fixed", "ard"), [(False, True), (True, False)])
def test_bound_gradient_equals_finite_differences(kernel, fixed, ard):
    """The analytic gradient (hyperparameters and inducing locations) against central
    differences with step 1e-6: their truncation and rounding errors are ~1e-8 relative here;
    1e-5 leaves a margin and catches any wrong term (which is O(1) wrong)."""
    rng = np.random.default_rng(1)
    n, p, m = 150, 3, 12
    x = torch.from_numpy(rng.standard_normal((n, p)))
    y = np.sin(x.numpy()).sum(1) + 0.1 * rng.standard_normal(n)
    w = 1.0 / rng.uniform(0.01, 0.05, n) if fixed else None
    bound = _Bound(kernel, x, y, w, ard, None, m)
    k = p if ard else 1
    theta = np.concatenate([np.log(rng.uniform(0.7, 1.5, k)), [math.log(1.3), 0.2],
                            [] if fixed else [math.log(0.05)], rng.standard_normal(m * p)])
    with _threads(n):  # one thread: spinning pools make tiny problems 50x slower
        _, grad = bound(theta, 1e-6)
        h = 1e-6
        numeric = np.empty_like(grad)
        for i in range(len(theta)):
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            numeric[i] = (bound(up, 1e-6)[0] - bound(down, 1e-6)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5 * np.abs(numeric).max())


def test_bound_never_exceeds_the_exact_evidence_and_grows_with_nested_inducing_sets(data_2d, exact_2d):
    """Titsias (2009): F = log p(y) - KL(q || posterior) <= log p(y); adding inducing points
    can only raise F, and Z = X gives log p(y) itself (up to the jitters: 1e-10 here, 1e-8 in
    GPR, whose effect on the evidence is ~n * 1e-8 / sigma^2 ~ 1e-4 nats)."""
    X, y = data_2d
    sg = SparseGPR(n_inducing=5, max_iter=1, random_state=0).fit(X, y)
    order = np.random.default_rng(2).permutation(len(X))
    bounds = [condition_on(sg, exact_2d, X[order[:m]], 1e-10).bound_[0] for m in (5, 10, 20, 40, len(X))]
    exact = exact_2d.log_marginal_likelihood_[0]
    assert np.all(np.diff(bounds) > 0), bounds
    assert bounds[-2] < exact
    assert bounds[-1] == pytest.approx(exact, abs=1e-3)


# --- the exact GP as a special case -----------------------------------------------------


@pytest.mark.parametrize("kernel", ["matern52", "matern12"])
def test_all_training_inputs_as_inducing_points_give_the_exact_posterior(data_2d, kernel):
    """With Z = X and the exact GP's hyperparameters, Q = K and the SGPR posterior (mean,
    latent variance with the estimated mean's variance, noise) is the exact one. The only
    differences are the jitters (1e-10 s^2 on K_uu here, 1e-8 on K + noise in GPR), which move
    means by ~1e-7 and variances by ~1e-6 relative: the tolerances are 10-100x those."""
    X, y = data_2d
    gp = GPR(kernel=kernel, n_restarts=0, random_state=0).fit(X, y)
    sg = SparseGPR(n_inducing=len(X), kernel=kernel, learn_inducing=False, max_iter=1, random_state=0).fit(X, y)
    condition_on(sg, gp, X, jitter=1e-10)
    Xt = np.random.default_rng(5).uniform(-0.3, 2.3, size=(200, 2))
    a, b = gp.predict_components(Xt), sg.predict_components(Xt)
    np.testing.assert_allclose(b["mean"], a["mean"], rtol=0, atol=1e-5 * np.abs(a["mean"]).max())
    np.testing.assert_allclose(b["epistemic_std"], a["epistemic_std"], rtol=1e-4)
    np.testing.assert_allclose(b["aleatoric_std"], a["aleatoric_std"], rtol=1e-12)
    np.testing.assert_allclose(b["std"], a["std"], rtol=1e-5)
    assert sg.bound_[0] == pytest.approx(gp.log_marginal_likelihood_[0], abs=1e-2)
    # joint posterior samples have the exact GP's covariance
    samples = sg.sample_functions(Xt[:5], 4000, rng=0)
    np.testing.assert_allclose(samples.std(axis=0), a["epistemic_std"][:5], rtol=0.1)  # 4000 draws: 1.1 % SE


def test_replicates_with_one_inducing_point_per_distinct_input_fit_the_exact_gp():
    """Sweeps repeat SVEs at the same parameter point. With M = the number of distinct inputs
    (k-means++ never picks a duplicate), the bound is the exact evidence, so fitting it finds
    the exact GP's hyperparameters: the same optimum, up to the optimizers' tolerances."""
    rng = np.random.default_rng(4)
    points = rng.uniform(0.0, 2.0, size=(40, 2))
    X = np.repeat(points, 6, axis=0)
    y = smooth_2d(X) + 0.2 * rng.standard_normal(len(X))
    gp = GPR(n_restarts=0, random_state=0).fit(X, y)
    sg = SparseGPR(learn_inducing=False, jitter=1e-9, random_state=0).fit(X, y)
    assert sg.n_inducing_ == 40
    assert sg.bound_[0] == pytest.approx(gp.log_marginal_likelihood_[0], abs=0.05)
    Xt = rng.uniform(0.0, 2.0, size=(50, 2))
    a, b = gp.predict_components(Xt), sg.predict_components(Xt)
    # two optimizers of one function: hyperparameters agree to ~1e-3, predictions likewise
    np.testing.assert_allclose(b["mean"], a["mean"], atol=5e-3 * np.ptp(y))
    np.testing.assert_allclose(b["std"], a["std"], rtol=1e-2)
    assert sg.hyperparameters_[0]["noise_std"] == pytest.approx(gp.hyperparameters_[0]["noise_std"], rel=1e-2)


# --- accuracy and calibration on thousands of points -------------------------------------


@pytest.fixture(scope="module")
def large_4d() -> dict:
    """2500 noisy training points in 4 dimensions (sigma = 0.1), 4000 held-out points; the
    sparse GP with 256 inducing points and the exact GP fitted to the same data."""
    sd = 0.1
    rng = np.random.default_rng(0)
    X = rng.uniform(0.0, 1.0, size=(2500, 4))
    y = smooth_4d(X) + sd * rng.standard_normal(len(X))
    Xt = rng.uniform(0.0, 1.0, size=(4000, 4))
    ft = smooth_4d(Xt)
    yt = ft + sd * rng.standard_normal(len(Xt))
    sparse = SparseGPR(n_inducing=256, random_state=0).fit(X, y)
    exact = GPR(n_restarts=0, random_state=0).fit(X, y)
    return {"sd": sd, "Xt": Xt, "ft": ft, "yt": yt, "sparse": sparse, "exact": exact}


def test_sparse_gp_is_as_accurate_and_as_calibrated_as_the_exact_gp(large_4d):
    sd, Xt, ft, yt, sg, gp = (large_4d[k] for k in ("sd", "Xt", "ft", "yt", "sparse", "exact"))
    mean, std = sg.predict(Xt, return_std=True)
    rmse = math.sqrt(np.mean((mean - ft) ** 2))
    rmse_exact = math.sqrt(np.mean((gp.predict(Xt) - ft) ** 2))
    # 256 inducing points summarize this smooth function: the error of the mean (~0.013, an
    # eighth of the noise) is within 10 % of the exact GP's
    assert rmse <= 1.1 * rmse_exact, (rmse, rmse_exact)
    # 4000 independent held-out observations: the hit count of the central 90 % interval is
    # binomial, standard error sqrt(0.9 * 0.1 / 4000) = 0.0047; 3 standard errors
    coverage = np.mean(np.abs(yt - mean) <= 1.6448536 * std)
    assert abs(coverage - 0.90) <= 3 * math.sqrt(0.9 * 0.1 / len(yt)), coverage
    # the noise sd from 2500 residuals has a sampling error of sd / sqrt(2n) = 1.4 %; 4 % is ~3 SE
    assert sg.hyperparameters_[0]["noise_std"] == pytest.approx(sd, rel=0.04)


def test_sparse_gp_nlpd_is_close_to_the_exact_gp(large_4d):
    """Held-out NLPD: the predictive law is nearly all noise (sigma = 0.1 against an epistemic sd
    of ~0.013), so NLPD = log(sigma sqrt(2 pi)) + 1/2 = -0.88 for both; 0.01 nats is a 1 %
    error in the predictive sd, and the difference between two fits of one sample is ~1e-3."""
    Xt, yt, sg, gp = (large_4d[k] for k in ("Xt", "yt", "sparse", "exact"))
    sparse = nlpd(yt, *sg.predict(Xt, return_std=True))
    exact = nlpd(yt, *gp.predict(Xt, return_std=True))
    assert sparse == pytest.approx(exact, abs=0.01)
    assert sparse == pytest.approx(math.log(0.1 * math.sqrt(2 * math.pi)) + 0.5, abs=0.03)


def test_large_problems_optimize_inducing_points_on_a_subset_then_hyperparameters_on_all():
    rng = np.random.default_rng(7)
    X = rng.uniform(0.0, 2.0, size=(5000, 2))
    y = smooth_2d(X) + 0.1 * rng.standard_normal(len(X))
    sg = SparseGPR(n_inducing=40, random_state=0).fit(X, y)
    first, second = sg.fit_info_[0]["stages"]
    assert first["points"] == 4096 and first["learn_inducing"]
    assert second["points"] == 5000 and not second["learn_inducing"]
    # 5000 residuals: the noise sd is known to 1 % (sd / sqrt(2n)); 5 % is 5 standard errors
    assert sg.hyperparameters_[0]["noise_std"] == pytest.approx(0.1, rel=0.05)


# --- the predictive contract -------------------------------------------------------------


def test_learned_inducing_points_raise_the_bound(data_2d):
    X, y = data_2d
    fixed = SparseGPR(n_inducing=8, learn_inducing=False, random_state=0).fit(X, y)
    learned = SparseGPR(n_inducing=8, random_state=0).fit(X, y)
    assert learned.bound_[0] > fixed.bound_[0]
    assert not np.allclose(learned.inducing_points_[0], fixed.inducing_points_[0])
    # the k-means++ start is a set of distinct training inputs
    assert len(np.unique(fixed.inducing_points_[0], axis=0)) == 8
    assert all(np.any(np.all(np.isclose(X, z), axis=1)) for z in fixed.inducing_points_[0])


def test_components_split_the_predictive_variance(sparse_2d):
    Xt = np.random.default_rng(1).uniform(0.2, 1.8, size=(50, 2))  # inside the training box
    c = sparse_2d.predict_components(Xt)
    mean, std = sparse_2d.predict(Xt, return_std=True)
    np.testing.assert_allclose(c["mean"], mean)
    np.testing.assert_allclose(c["std"], std)
    np.testing.assert_allclose(c["std"] ** 2, c["epistemic_std"] ** 2 + c["aleatoric_std"] ** 2, rtol=1e-12)
    np.testing.assert_allclose(c["aleatoric_std"] ** 2, sparse_2d.noise_variance(Xt))
    assert sparse_2d.hyperparameters_[0]["noise_std"] == pytest.approx(c["aleatoric_std"][0])
    assert not c["out_of_domain"].any()
    assert sparse_2d.predict(Xt).shape == (50,)


def test_function_samples_match_posterior_moments_and_are_reproducible(sparse_2d):
    Xt = np.random.default_rng(2).uniform(0.0, 2.0, size=(10, 2))
    s = sparse_2d.sample_functions(Xt, 4000, rng=1)
    c = sparse_2d.predict_components(Xt)
    assert s.shape == (4000, 10)
    # 4000 draws: the sample mean is within 3 sd / sqrt(4000) = 0.05 sd, the sample sd within 5 %
    assert np.all(np.abs(s.mean(axis=0) - c["mean"]) <= 0.05 * c["epistemic_std"] + 1e-12)
    np.testing.assert_allclose(s.std(axis=0), c["epistemic_std"], rtol=0.05)
    again = sparse_2d.sample_functions(Xt, 3, rng=1)
    np.testing.assert_allclose(again, s[:3], rtol=0, atol=1e-10 * np.abs(s).max())


def test_multi_output_is_independent_single_output_fits(data_2d):
    X, y = data_2d
    Y = np.stack([y, 2.0 * np.cos(X[:, 0]) + 0.05 * y], axis=1)
    both = SparseGPR(n_inducing=15, random_state=0).fit(X, Y)
    Xt = np.random.default_rng(3).uniform(0.0, 2.0, size=(20, 2))
    mean, std = both.predict(Xt, return_std=True)
    assert mean.shape == std.shape == (20, 2)
    for j in range(2):
        single = SparseGPR(n_inducing=15, random_state=0).fit(X, Y[:, j])
        m1, s1 = single.predict(Xt, return_std=True)
        np.testing.assert_allclose(mean[:, j], m1, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(std[:, j], s1, rtol=1e-8)
    assert both.sample_functions(Xt[:4], 2, rng=0).shape == (2, 4, 2)


def test_fixed_noise_uses_the_given_variances():
    X, y = noisy_2d(120, 0.1, seed=8)
    X = np.concatenate([X, X[:10]])
    y = np.concatenate([y, y[:10] + 0.05])
    nv = np.full(len(X), 0.01)
    nv[:5] = 0.04
    sg = SparseGPR(n_inducing=30, noise="fixed", random_state=0).fit(X, y, noise_variance=nv)
    assert "noise_std" not in sg.hyperparameters_[0]
    # a training input takes the mean given variance over its duplicates; elsewhere the mean
    np.testing.assert_allclose(sg.noise_variance(X[[0, 7, 20]]), [0.025, 0.01, 0.01])
    np.testing.assert_allclose(sg.noise_variance(np.array([[5.0, 5.0]])), [nv.mean()])
    np.testing.assert_allclose(sg.train_noise_variance_[:, 0], nv)


def test_deterministic_given_random_state(data_2d):
    X, y = data_2d
    a = SparseGPR(n_inducing=10, random_state=3).fit(X, y)
    b = SparseGPR(n_inducing=10, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.inducing_points_[0], b.inducing_points_[0])
    np.testing.assert_array_equal(a.predict(X[:5]), b.predict(X[:5]))


def test_sklearn_clone_and_default_inducing_count(data_2d):
    X, y = data_2d
    est = SparseGPR(n_inducing=12, kernel="rbf", random_state=0)
    c = clone(est)
    assert c.get_params() == est.get_params()
    fitted = SparseGPR(random_state=0, max_iter=5).fit(X[:30], y[:30])
    assert fitted.n_inducing_ == 30  # min(n_distinct, 512)
    assert fitted.score(X[:30], y[:30]) > 0.9


def test_prediction_outside_the_training_box_warns(sparse_2d):
    with pytest.warns(OutOfDomainWarning, match="1 of 2"):
        sparse_2d.predict(np.array([[1.0, 1.0], [3.0, 1.0]]))
    c = sparse_2d.predict_components(np.array([[1.0, 1.0], [3.0, 1.0]]))
    np.testing.assert_array_equal(c["out_of_domain"], [False, True])


# --- persistence -------------------------------------------------------------------------


@pytest.mark.parametrize("noise", ["homoscedastic", "fixed"])
def test_save_load_round_trip(tmp_path, data_2d, noise):
    X, y = data_2d
    kw = {"noise_variance": np.full(len(X), 0.01)} if noise == "fixed" else {}
    sg = SparseGPR(n_inducing=15, noise=noise, kernel="matern32", random_state=0).fit(X, y, **kw)
    sg.save(tmp_path / "model")
    loaded = SparseGPR.load(tmp_path / "model")
    Xt = np.random.default_rng(4).uniform(0.0, 2.0, size=(30, 2))
    a, b = sg.predict_components(Xt), loaded.predict_components(Xt)
    # the M x M factors are recomputed from the same numbers: equal up to rounding
    for key in ("mean", "std", "epistemic_std", "aleatoric_std"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(loaded.inducing_points_[0], sg.inducing_points_[0], rtol=1e-15)
    h, h0 = loaded.hyperparameters_[0], sg.hyperparameters_[0]
    assert h.keys() == h0.keys()
    for key in h0:
        np.testing.assert_allclose(h[key], h0[key], rtol=1e-9)
    assert loaded.get_params() == sg.get_params()
    meta = json.loads((tmp_path / "model" / "sgpr.json").read_text())
    assert meta["format"] == "stochhom.SparseGPR"
    assert sorted(os.listdir(tmp_path / "model")) == ["sgpr.json", "sgpr_tensors.pt"]
    torch.load(tmp_path / "model" / "sgpr_tensors.pt", weights_only=True)  # tensors only, nothing executable


def test_load_rejects_a_directory_without_a_model(tmp_path):
    with pytest.raises(InputError, match=r"no sgpr\.json"):
        SparseGPR.load(tmp_path)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fit_kw", "match"),
    [
        ({"n_inducing": 0}, {}, "n_inducing must be a positive integer"),
        ({"n_inducing": -3}, {}, "n_inducing must be a positive integer"),
        ({"n_inducing": 2.5}, {}, "n_inducing must be a positive integer"),
        ({"n_inducing": True}, {}, "n_inducing must be a positive integer"),
        ({"n_inducing": 81}, {}, "exceeds the 80 training points"),
        ({"kernel": "linear"}, {}, "unknown kernel 'linear'"),
        ({"noise": "heteroscedastic"}, {}, "use GPR"),
        ({"noise": "bogus"}, {}, "unknown noise model"),
        ({"max_iter": 0}, {}, "max_iter"),
        ({"jitter": -1.0}, {}, "jitter"),
        ({"noise": "fixed"}, {}, "needs fit"),
        ({}, {"noise_variance": 0.1}, "only used with noise='fixed'"),
        ({"noise": "fixed"}, {"noise_variance": 0.0}, "positive noise variances"),
        ({"noise": "fixed"}, {"noise_variance": np.ones(3)}, "must have shape"),
    ],
)
def test_bad_parameters_raise_input_error(data_2d, params, fit_kw, match):
    X, y = data_2d
    with pytest.raises(InputError, match=match):
        SparseGPR(**params).fit(X, y, **fit_kw)


def test_bad_data_raise_input_error(data_2d):
    X, y = data_2d
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        SparseGPR().fit(Xn, y)
    yn = y.copy()
    yn[0] = np.inf
    with pytest.raises(InputError, match="NaN or inf"):
        SparseGPR().fit(X, yn)
    with pytest.raises(InputError, match="at least 2 samples"):
        SparseGPR().fit(X[:1], y[:1])
    with pytest.raises(InputError, match="different numbers of samples"):
        SparseGPR().fit(X, y[:-1])
    with pytest.raises(InputError, match="at least 2 distinct inputs"):
        SparseGPR().fit(np.ones((5, 2)), np.arange(5.0))
    # replicated inputs: more inducing points than distinct inputs add nothing
    with pytest.raises(InputError, match="10 distinct training inputs"):
        SparseGPR(n_inducing=12).fit(np.repeat(X[:10], 3, axis=0), np.repeat(y[:10], 3))


def test_bad_predict_input_raises_input_error(sparse_2d):
    with pytest.raises(InputError, match="not fitted"):
        SparseGPR().predict(np.zeros((2, 2)))
    with pytest.raises(InputError, match="3 feature"):
        sparse_2d.predict(np.zeros((2, 3)))
    with pytest.raises(InputError, match="n_samples"):
        sparse_2d.sample_functions(np.zeros((2, 2)), 0)
