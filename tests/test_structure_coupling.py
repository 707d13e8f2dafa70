"""Hierarchical and concurrent coupling of a part to its microstructure.

A synthetic SVE law with a known answer stands in for the FFT solver: the apparent
plane-strain stiffness of an SVE at volume fraction ``phi`` has log-Cholesky features
``z = m(phi) + 0.05 eps`` (independent standard normal ``eps`` per SVE, ``m`` linear in
``phi``), so that direct Monte Carlo over the SVEs of every element is cheap and exact in
law. The surrogate is a GPR fitted to 300 such SVEs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from stochhom.errors import InputError, OutOfDomainWarning
from stochhom.surrogates import GPR
from stochhom.surrogates.spd import SPDTransform
from stochhom.surrogates.tensor import TensorSurrogate, nested_variance
from stochhom.tensors import isotropic_stiffness

pytest.importorskip("skfem")

from stochhom.structure import MacroField, MacroProblem
from stochhom.structure.concurrent import compare_routes, concurrent
from stochhom.structure.hierarchical import hierarchical, macro_parameters
from stochhom.structure.parts import cantilever
from stochhom.structure.qoi import QuantityOfInterest, plane_strain_poisson

SPD = SPDTransform("log_cholesky", "elasticity", 2)
NOISE = 0.05  # standard deviation of every latent feature of one SVE
TIP = {"kind": "displacement", "point": [10.0, 0.5], "component": 1}


#: Log-Cholesky features of the SVE law at volume fractions 0 and 1: linear in between, a
#: law a GP learns without the smoothing bias of a curved one.
Z0, Z1 = SPD.features(np.stack([isotropic_stiffness(10.0, 5.0, 2), isotropic_stiffness(30.0, 12.5, 2)]))


def law_mean(phi: np.ndarray) -> np.ndarray:
    """Log-Cholesky features of the mean SVE stiffness at volume fraction ``phi``."""
    phi = np.atleast_1d(np.asarray(phi, dtype=float))
    return Z0 + phi[..., None] * (Z1 - Z0)


def synthetic_sve(params: dict, seed: int) -> np.ndarray:
    """One SVE's apparent stiffness (top level: picklable for worker processes)."""
    z = law_mean(params["phi"])[0] + NOISE * np.random.default_rng(seed).standard_normal(6)
    return SPD.tensors(z)[0]


#: Correlation of one SVE's scatter between its features: the diagonal ones move together.
R_SVE = np.eye(6)
R_SVE[np.ix_([0, 2, 5], [0, 2, 5])] = 0.8
np.fill_diagonal(R_SVE, 1.0)


def correlated_sve(params: dict, seed: int) -> np.ndarray:
    """As :func:`synthetic_sve`, with the features' scatter correlated by ``R_SVE``."""
    eps = np.linalg.cholesky(R_SVE) @ np.random.default_rng(seed).standard_normal(6)
    return SPD.tensors(law_mean(params["phi"])[0] + NOISE * eps)[0]


@pytest.fixture(scope="module")
def surrogate() -> TensorSurrogate:
    rng = np.random.default_rng(0)
    phi = rng.uniform(0.1, 0.5, 300)
    t = SPD.tensors(law_mean(phi) + NOISE * rng.standard_normal((300, 6)))
    return TensorSurrogate(GPR(random_state=0), "elasticity", 2).fit(phi[:, None], t)


@pytest.fixture(scope="module")
def beam() -> MacroProblem:
    return MacroProblem(cantilever(10.0, 1.0, 20, 4), "elasticity", fixed={"left": "all"},
                        traction={"right": [0.0, -0.01]})


def _direct(problem: MacroProblem, features: np.ndarray) -> float:
    return QuantityOfInterest(**{k: (tuple(v) if k == "point" else v) for k, v in TIP.items()})(
        problem.solve(SPD.tensors(features)))


def test_constant_field_scatter_equals_direct_monte_carlo(surrogate, beam):
    """A uniform part: the QoI scatter is the SVE scatter pushed through the FE model. The
    hierarchical route (GP noise, independent per element) against direct Monte Carlo over
    the true SVE law, within their standard errors."""
    res = hierarchical(beam, surrogate, {"phi": 0.3}, TIP, n_macro=40, n_functions=2, n_noise=10, rng=1)
    rng = np.random.default_rng(2)
    m = 600
    base = law_mean(np.full(beam.n_elements, 0.3))
    q = np.array([_direct(beam, base + NOISE * rng.standard_normal(base.shape)) for _ in range(m)])
    sd_direct = q.std(ddof=1)
    sd_micro = np.sqrt(res.variance["microstructure"])
    # standard errors of the two standard deviations, and 4 % for the GP's learned noise (300 points)
    se = np.hypot(sd_direct / np.sqrt(2 * (m - 1)), sd_micro / np.sqrt(2 * 40 * 2 * 9))
    assert abs(sd_micro - sd_direct) < 3.5 * np.hypot(se, 0.04 * sd_direct)
    assert res.shares["macro_field"] < 0.05  # nothing varies between macro samples but noise
    assert abs(res.mean - q.mean()) < 4 * np.hypot(res.mean_se, sd_direct / np.sqrt(m)) + 1e-3 * abs(q.mean())
    # the elements' SVEs are independent: the scatter is far below that of one SVE for the whole part
    whole = np.array([_direct(beam, base + NOISE * rng.standard_normal(6)) for _ in range(100)])
    assert sd_micro < 0.5 * whole.std(ddof=1)


def test_macro_field_share_matches_the_field_alone(surrogate, beam):
    """The macro-field part is Var_i E[Q | field_i]: on the same fields, the surrogate's mean
    law alone (no function draws, no SVE scatter) gives the same variance, within the
    nested estimator's error (about 3 % here: the scatter of the per-field means, 2 %
    of the variance, correlates with the field by chance)."""
    field = MacroField("normal", 0.3, 0.06, 3.0)
    res = hierarchical(beam, surrogate, {"phi": field}, TIP, n_macro=120, n_functions=2, n_noise=2, rng=5)
    theta = macro_parameters(beam.mesh, {"phi": field}, 120, rng=5)
    np.testing.assert_array_equal(theta[0], res.example)
    q = np.array([_direct(beam, surrogate.predict_latent(t[:, :1])) for t in theta])
    assert res.variance["macro_field"] == pytest.approx(q.var(ddof=1), rel=0.1)
    # against the true law the GP's own error enters: its slope is known to about 6 % here
    q_law = np.array([_direct(beam, law_mean(t[:, 0])) for t in theta])
    assert res.variance["macro_field"] == pytest.approx(q_law.var(ddof=1), rel=0.3)
    assert res.shares["macro_field"] > 0.8
    assert res.interpolation_error < 0.05
    assert res.parameters["phi"]["kind"] == "field"
    assert res.local_mean.shape == (beam.n_elements,) and np.all(res.local_std > 0)


def test_surrogate_share_grows_when_the_surrogate_knows_less(beam):
    """Fewer training SVEs: a larger surrogate part, the SVE part unchanged in law."""
    rng = np.random.default_rng(3)
    shares = []
    for n in (12, 300):
        phi = rng.uniform(0.1, 0.5, n)
        t = SPD.tensors(law_mean(phi) + NOISE * rng.standard_normal((n, 6)))
        model = TensorSurrogate(GPR(random_state=0), "elasticity", 2).fit(phi[:, None], t)
        res = hierarchical(beam, model, {"phi": MacroField("normal", 0.3, 0.03, 3.0)}, TIP, n_macro=16,
                           n_functions=8, n_noise=2, rng=4)
        shares.append(res.variance["surrogate"])
    assert shares[0] > 3 * shares[1]


def test_result_does_not_depend_on_workers_or_on_dask(surrogate, beam):
    args = (beam, surrogate, {"phi": MacroField("normal", 0.3, 0.05, 2.0)}, "compliance")
    one = hierarchical(*args, n_macro=4, n_functions=2, n_noise=2, rng=7, workers=1)
    two = hierarchical(*args, n_macro=4, n_functions=2, n_noise=2, rng=7, workers=2)
    np.testing.assert_allclose(one.samples, two.samples, rtol=1e-9)
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        dask = hierarchical(*args, n_macro=4, n_functions=2, n_noise=2, rng=7, client=client)
    np.testing.assert_allclose(one.samples, dask.samples, rtol=1e-9)


def test_hierarchical_covers_the_concurrent_route(surrogate):
    """FE^2 with one SVE per element on the same fields: its values fall inside the
    hierarchical route's 90 % intervals about 90 % of the time; with the SVE scatter left
    out of the surrogate they do not."""
    problem = MacroProblem(cantilever(10.0, 1.0, 10, 2), "elasticity", fixed={"left": "all"},
                           traction={"right": [0.0, -0.01]})
    params = {"phi": MacroField("normal", 0.3, 0.05, 3.0)}
    cache: dict = {}
    direct = concurrent(problem, synthetic_sve, params, TIP, n_macro=40, rng=11, cache=cache)
    assert direct.n_sve == 40 * problem.n_elements and direct.cache_hits == 0
    hier = hierarchical(problem, surrogate, params, TIP, n_macro=40, n_functions=5, n_noise=8, rng=11)
    cmp = compare_routes(hier, direct, level=0.9)
    # the fields share one surrogate error, so the fraction scatters more than binomially
    # (0.75-0.83 over three training sets here); the bias test below is the sharper one
    assert cmp["coverage"] >= 0.65
    assert 0.35 < np.mean(cmp["pit"]) < 0.65
    assert abs(cmp["bias_z"]) < 2 and 0.7 < cmp["residual_sd"] / cmp["sve_sd"] < 1.4

    class NoScatter:  # the same surrogate, SVE scatter dropped: overconfident
        n_features_in_ = 1
        spd_transform = surrogate.spd_transform
        sample_latent_functions = surrogate.sample_latent_functions
        predict_latent = surrogate.predict_latent

        @staticmethod
        def latent_noise_variance(x):
            return np.zeros((len(x), 6))

    bad = hierarchical(problem, NoScatter(), params, TIP, n_macro=40, n_functions=5, n_noise=8, rng=11)
    worse = compare_routes(bad, direct, level=0.9)
    assert worse["coverage"] < 0.5 and worse["residual_sd"] > 3 * max(worse["sve_sd"], 1e-12)

    class Biased(NoScatter):  # the same surrogate, its mean 6 % too stiff in every diagonal term
        @staticmethod
        def sample_latent_functions(x, n, rng=None):
            return surrogate.sample_latent_functions(x, n, rng=rng) + np.array([0.03, 0, 0.03, 0, 0, 0.03])

        latent_noise_variance = surrogate.latent_noise_variance

    off = compare_routes(hierarchical(problem, Biased(), params, TIP, n_macro=40, n_functions=5, n_noise=8, rng=11),
                         direct, level=0.9)
    assert off["bias_z"] < -2 and off["coverage"] < cmp["coverage"]
    again = concurrent(problem, synthetic_sve, params, TIP, n_macro=40, rng=11, cache=cache)
    assert again.n_sve == 0 and again.cache_hits == 40 * problem.n_elements
    np.testing.assert_array_equal(again.values, direct.values)


def test_concurrent_cache_file_round_trip(tmp_path):
    problem = MacroProblem(cantilever(10.0, 1.0, 4, 2), "elasticity", fixed={"left": "all"},
                           traction={"right": [0.0, -0.01]})
    path = tmp_path / "sve.npz"
    first = concurrent(problem, synthetic_sve, {"phi": 0.3}, n_macro=3, rng=2, cache=path)
    second = concurrent(problem, synthetic_sve, {"phi": 0.3}, n_macro=3, rng=2, cache=path, workers=2)
    assert first.n_sve == 24 and second.n_sve == 0
    np.testing.assert_array_equal(first.values, second.values)


def test_nested_variance_is_unbiased_on_a_known_model():
    """y_ijk = a_i + b_j + c_ijk with variances 4, 1, 0.25 (and the functions shared)."""
    rng = np.random.default_rng(0)
    est = []
    for _ in range(300):
        a = 2.0 * rng.standard_normal(50)
        b = rng.standard_normal(4)
        y = a[None, None, :] + b[None, :, None] + 0.5 * rng.standard_normal((3, 4, 50))
        est.append(nested_variance(y))
    alea, epi, inp = np.mean(est, axis=0)
    assert alea == pytest.approx(0.25, rel=0.03)
    assert epi == pytest.approx(1.0, rel=0.12)
    assert inp == pytest.approx(4.0, rel=0.05)


def test_plane_strain_poisson_of_an_isotropic_tensor():
    k, g = 12.0, 5.0  # plane-strain bulk kappa = lambda + G
    assert plane_strain_poisson(isotropic_stiffness(k, g, 2)[None])[0] == pytest.approx((k - g) / (2 * k))


def test_refusals(surrogate, beam):
    f = MacroField("normal", 0.3, 0.05, 2.0)
    with pytest.raises(InputError, match="at most two"):
        hierarchical(beam, surrogate, {"a": f, "b": f, "c": f})
    with pytest.raises(InputError, match="takes 1 inputs"):
        hierarchical(beam, surrogate, {"phi": f, "size": 32.0})
    with pytest.raises(InputError, match="n_noise"):
        hierarchical(beam, surrogate, {"phi": f}, n_noise=1)
    with pytest.raises(InputError, match="conductivity"):
        hierarchical(beam, surrogate, {"phi": f}, {"kind": "temperature", "point": [1.0, 0.5]})
    with pytest.raises(InputError, match="needs a point"):
        hierarchical(beam, surrogate, {"phi": f}, "displacement")

    class NoFunctions:
        n_features_in_ = 1
        spd_transform = surrogate.spd_transform

    with pytest.raises(InputError, match="posterior functions"):
        hierarchical(beam, NoFunctions(), {"phi": f}, n_macro=2)
    heat = MacroProblem(cantilever(10.0, 1.0, 4, 2), "conductivity", temperature={"left": 0.0}, source=1.0)
    with pytest.raises(InputError, match="3x3 tensors but the problem needs 2x2"):
        hierarchical(heat, surrogate, {"phi": f}, n_macro=2)
    with pytest.warns(OutOfDomainWarning, match="outside the surrogate's training range"):
        hierarchical(beam, surrogate, {"phi": MacroField("normal", 0.6, 0.02, 2.0)}, n_macro=2, n_functions=1, rng=0,
                     domain={"phi": (0.1, 0.5)})
    direct = concurrent(beam, synthetic_sve, {"phi": f}, n_macro=2, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = hierarchical(beam, surrogate, {"phi": f}, n_macro=2, n_functions=5, n_noise=4, rng=2)
    with pytest.raises(InputError, match="same macro fields"):
        compare_routes(other, direct)


def test_correlated_sve_scatter_is_learned_and_drawn():
    """One SVE's features scatter together: the surrogate learns their correlation from the
    training residuals (within 3 sampling errors of an uncorrelated pair, 1/sqrt(n) = 0.05), and the
    hierarchical route, drawing the scatter with it, still covers FE^2 on the same fields."""
    rng = np.random.default_rng(8)
    phi = rng.uniform(0.1, 0.5, 400)
    eps = rng.standard_normal((400, 6)) @ np.linalg.cholesky(R_SVE).T
    model = TensorSurrogate(GPR(random_state=0), "elasticity", 2).fit(phi[:, None], SPD.tensors(
        law_mean(phi) + NOISE * eps))
    np.testing.assert_allclose(model.noise_correlation_, R_SVE, atol=0.15)  # 3 x 1/sqrt(400)
    problem = MacroProblem(cantilever(10.0, 1.0, 10, 2), "elasticity", fixed={"left": "all"},
                           traction={"right": [0.0, -0.01]})
    params = {"phi": MacroField("normal", 0.3, 0.05, 3.0)}
    direct = concurrent(problem, correlated_sve, params, TIP, n_macro=40, rng=12)
    hier = hierarchical(problem, model, params, TIP, n_macro=40, n_functions=5, n_noise=8, rng=12)
    assert compare_routes(hier, direct, level=0.9)["coverage"] >= 0.65
    independent = TensorSurrogate.__new__(TensorSurrogate)
    independent.__dict__.update(model.__dict__, noise_correlation_=np.eye(6))
    narrow = hierarchical(problem, independent, params, TIP, n_macro=40, n_functions=5, n_noise=8, rng=12)
    assert np.mean(narrow.samples.std(axis=(1, 2))) < 0.8 * np.mean(hier.samples.std(axis=(1, 2)))


def test_three_dimensional_conduction_through_the_hierarchical_route():
    """A 3D bar heated by a uniform source, each element's conductivity from a surrogate of a
    known law with negligible scatter: the mean compliance is the direct solve's with the
    mean law, and nothing but the field varies."""
    spd3 = SPDTransform("log_cholesky", "conductivity", 3)
    rng = np.random.default_rng(9)
    phi = rng.uniform(0.1, 0.5, 120)

    def law(p):
        return spd3.features(np.eye(3)[None] * (1.0 + 4.0 * np.asarray(p))[:, None, None])

    model = TensorSurrogate(GPR(random_state=0), "conductivity", 3).fit(
        phi[:, None], spd3.tensors(law(phi) + 1e-4 * rng.standard_normal((120, 6))))
    problem = MacroProblem(cantilever(4.0, 1.0, 4, 1, width=1.0, nz=1), "conductivity",
                           temperature={"left": 0.0}, source=1.0)
    field = MacroField("normal", 0.3, 0.05, 2.0)
    res = hierarchical(problem, model, {"phi": field}, "compliance", n_macro=16, n_functions=2, n_noise=2, rng=3)
    theta = macro_parameters(problem.mesh, {"phi": field}, 16, rng=3)
    direct = np.array([problem.solve(spd3.tensors(law(t[:, 0]))).compliance for t in theta])
    np.testing.assert_allclose(res.samples.mean(axis=(1, 2)), direct, rtol=2e-3)
    assert res.shares["macro_field"] > 0.95
