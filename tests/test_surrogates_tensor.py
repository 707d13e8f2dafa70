"""Whole-tensor surrogates: positive definite by construction, and an unbiased variance split.

Oracles: eigenvalues (every predicted or propagated tensor is SPD), a latent model whose law is
known exactly (the variance parts in closed form for a lognormal diagonal entry), and the closed-form
CRPS and density of the normal law for the draws-based predictive law.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st

from stochhom.errors import InputError
from stochhom.surrogates import GPR, PCE
from stochhom.surrogates.predictive import Empirical, Normal
from stochhom.surrogates.tensor import TensorSurrogate, entry_names, propagate_tensor

U01 = {"a": {"distribution": "uniform", "low": 0.0, "high": 1.0}}


def _tensors(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = np.zeros((X.shape[0], 2, 2))
    t[:, 0, 0] = 1.0 + X[:, 0] + 0.05 * rng.standard_normal(X.shape[0])
    t[:, 1, 1] = 2.0 + X[:, 1]
    t[:, 0, 1] = t[:, 1, 0] = 0.3 * X[:, 0] - 0.1
    return t


@pytest.mark.parametrize("make", [lambda: GPR(n_restarts=0, random_state=0),
                                  lambda: PCE(degree=2, std_method="bootstrap", random_state=0)])
def test_predictions_and_draws_are_positive_definite_even_far_away(make) -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (40, 2))
    T = _tensors(X, rng)
    m = TensorSurrogate(make(), "conductivity", 2).fit(X, T)
    near = m.predict(X[:5])
    np.testing.assert_allclose(near, T[:5], atol=0.15)  # within a few noise sd of the data
    far = np.array([[-4.0, 5.0], [6.0, -3.0]])
    with pytest.warns(Warning):
        draws = m.sample_tensors(far, 200)
    assert np.linalg.eigvalsh(draws.reshape(-1, 2, 2)).min() > 0
    laws = m.entry_laws(X[:3], "conductivity")
    assert list(laws) == entry_names("conductivity", 2) == ["conductivity_0_0", "conductivity_0_1",
                                                            "conductivity_1_1"]


def test_save_load_and_refusals(tmp_path) -> None:
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (30, 2))
    m = TensorSurrogate(PCE(degree=2), "conductivity", 2).fit(X, _tensors(X, rng))
    m.save(tmp_path / "t")
    back = TensorSurrogate.load(tmp_path / "t")
    np.testing.assert_allclose(back.predict(X[:4]), m.predict(X[:4]), rtol=1e-12)
    bad = _tensors(X, rng)
    bad[0] = [[1.0, 2.0], [2.0, 1.0]]  # indefinite
    with pytest.raises(InputError, match="not positive definite"):
        TensorSurrogate(PCE(degree=2), "conductivity", 2).fit(X, bad)
    with pytest.raises(InputError, match=r"\(n, m, m\)"):
        TensorSurrogate(PCE(degree=2), "conductivity", 2).fit(X, np.ones((30, 2)))
    with pytest.raises(InputError, match="needs an estimator"):
        TensorSurrogate().fit(X, _tensors(X, rng))


class _Known:
    """A latent model of log-Cholesky features (ln L00, L10, ln L11) with a known law:
    f0 = 0.5 a + offset_j (a constant per posterior function, sd tau), noise sd sigma on f0;
    L10 = 0, ln L11 = 0. So k00 = exp(2 f0 + 2 eps), a lognormal."""

    n_features_in_ = 1

    def __init__(self, tau: float, sigma: float) -> None:
        self.tau, self.sigma = tau, sigma
        self._t = TensorSurrogate(None, "conductivity", 2)

    def predict_latent(self, X, return_std=False):
        x = np.asarray(X, dtype=float)[:, 0]
        mu = np.column_stack([0.5 * x, np.zeros_like(x), np.zeros_like(x)])
        sd = np.column_stack([np.full_like(x, math.hypot(self.tau, self.sigma)), 1e-12 + 0 * x, 1e-12 + 0 * x])
        return (mu, sd) if return_std else mu

    def latent_noise_variance(self, X):
        n = np.asarray(X).shape[0]
        return np.column_stack([np.full(n, self.sigma**2), np.zeros(n), np.zeros(n)])

    def sample_latent_functions(self, X, n_samples, rng=None):
        mu = self.predict_latent(X)
        off = self.tau * np.random.default_rng(rng).standard_normal(n_samples)
        out = np.repeat(mu[None], n_samples, axis=0)
        out[:, :, 0] += off[:, None]
        return out

    def tensors(self, features):
        return self._t.tensors(features)


def test_propagated_variance_split_is_unbiased_for_any_number_of_draws() -> None:
    """k00 = exp(a + 2c + 2e) with a ~ U(0, 1), c ~ N(0, tau²) per function, e ~ N(0, sigma²):
    aleatoric = E[e^{2a}] E[e^{4c}] Var(e^{2e}), epistemic = E[e^{2a}] (E e^{2e})² Var(e^{2c}),
    input = Var(e^a) (E e^{2c})² (E e^{2e})², lognormal moments in closed form. With K = 2 or 16
    noise draws, the mean of 20 repetitions is within 4 standard errors of each part (the naive
    K-draw estimator would be biased upwards by aleatoric/K in the epistemic part)."""
    tau, sigma = 0.1, 0.15
    ea, e2a = math.e - 1.0, (math.e**2 - 1.0) / 2.0  # E[e^a], E[e^{2a}], a ~ U(0, 1)
    alea = e2a * math.exp(8 * tau**2) * (math.exp(8 * sigma**2) - math.exp(4 * sigma**2))
    epis = e2a * math.exp(4 * sigma**2) * (math.exp(8 * tau**2) - math.exp(4 * tau**2))
    inp = (e2a - ea**2) * math.exp(4 * tau**2 + 4 * sigma**2)
    for k in (2, 16):
        runs = np.array([[propagate_tensor(_Known(tau, sigma), U01, 256, n_functions=8, n_noise=k,
                                           name="k", rng=seed).variance["k_0_0"][part]
                          for part in ("aleatoric", "epistemic", "input")] for seed in range(20)])
        mean, se = runs.mean(axis=0), runs.std(axis=0, ddof=1) / math.sqrt(20)
        for est, s_e, exact in zip(mean, se, (alea, epis, inp)):
            assert abs(est - exact) <= 4 * s_e + 1e-3 * exact, (k, est, exact, s_e)


def test_propagated_tensors_are_spd() -> None:
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, (40, 2))
    m = TensorSurrogate(GPR(n_restarts=0, random_state=0), "conductivity", 2).fit(X, _tensors(X, rng))
    two = {"a": U01["a"], "b": U01["a"]}
    res = propagate_tensor(m, two, 128, n_functions=8, n_noise=4, name="conductivity", rng=0)
    assert res.min_eigenvalue > 0 and res.samples.shape == (8, 128, 2, 2)
    for e in res.entries:
        v = res.variance[e]
        assert v["total"] == pytest.approx(v["aleatoric"] + v["epistemic"] + v["unsplit"] + v["input"])
        assert res.std[e] ** 2 == pytest.approx(v["total"])
    assert res.mean["conductivity_1_1"] == pytest.approx(2.5, abs=0.05)  # 2 + E[b]
    with pytest.raises(InputError, match="n_noise must be an integer >= 2"):
        propagate_tensor(m, two, 128, n_noise=1)


def test_empirical_law_matches_the_normal_law_of_its_draws() -> None:
    """4000 normal draws: CRPS and log density within their Monte Carlo / KDE error of the
    closed forms, and the normal score of the mid-rank PIT close to the standardized residual."""
    rng = np.random.default_rng(0)
    mu, sd, y = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 2.0]), np.array([0.3, 1.9, -5.0])
    e, n = Empirical(mu + sd * rng.standard_normal((4000, 3))), Normal(mu, sd)
    np.testing.assert_allclose(e.crps(y), n.crps(y), rtol=0.05)
    np.testing.assert_allclose(e.logpdf(y), n.logpdf(y), atol=0.1)
    np.testing.assert_allclose(e.standardized(y), n.standardized(y), atol=0.06)
    lo, hi = e.interval(0.9)
    np.testing.assert_allclose(lo, mu + sd * st.norm.ppf(0.05), atol=0.1 * sd.max())
    np.testing.assert_allclose(hi, mu + sd * st.norm.ppf(0.95), atol=0.1 * sd.max())
    with pytest.raises(InputError, match="S >= 2"):
        Empirical(np.ones((1, 3)))
