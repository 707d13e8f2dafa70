"""Training data from apparent-properties datasets, and SPD parametrizations of apparent tensors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import stochhom as sh
from stochhom.errors import InputError
from stochhom.surrogates.data import default_parameters, training_data
from stochhom.surrogates.spd import SPDTransform
from stochhom.tensors import isotropic_stiffness


def _props(n_points: int = 3, reps: int = 4, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    n = n_points * reps
    vf = np.repeat(np.linspace(0.1, 0.5, n_points), reps)
    bulk = 1.0 + 2.0 * vf + 0.05 * rng.standard_normal(n)
    shear = 0.5 + vf + 0.02 * rng.standard_normal(n)
    conv = np.ones(n, dtype=np.int8)
    conv[1] = 0
    bulk[1] = np.nan
    return xr.Dataset(
        {"bulk_modulus": ("sample", bulk), "shear_modulus": ("sample", shear), "converged": ("sample", conv),
         "volume": ("sample", np.full(n, 64.0))},
        coords={"sample": np.arange(n), "volume_fraction": ("sample", vf), "contrast": ("sample", np.full(n, 10.0)),
                "seed": ("sample", np.arange(n) + 100), "specimen": ("sample", [f"s{k}" for k in range(n)]),
                "replicate": ("sample", np.tile(np.arange(reps), n_points)),
                "point": ("sample", np.repeat(np.arange(n_points), reps))},
    )


def test_training_data_per_sample() -> None:
    props = _props()
    assert default_parameters(props) == ["volume_fraction"]  # contrast is constant, ids excluded
    td = training_data(props, "bulk_modulus")
    assert td.X.shape == (11, 1) and td.y.shape == (11,) and td.n_dropped == 1
    assert td.feature_names == ["volume_fraction"] and td.target_names == ["bulk_modulus"]
    assert "s1" not in td.groups  # the failed sample
    np.testing.assert_array_equal(td.y, np.delete(props["bulk_modulus"].values, 1))
    two = training_data(props, ["bulk_modulus", "shear_modulus"], ["volume_fraction", "contrast"])
    assert two.X.shape == (11, 2) and two.y.shape == (11, 2)


def test_training_data_per_point_gives_means_and_their_variance() -> None:
    props = _props()
    td = training_data(props, "shear_modulus", per_point=True)
    assert td.X.shape == (3, 1) and td.counts.tolist() == [3, 4, 4]
    first = np.delete(props["shear_modulus"].values[:4], 1)
    assert td.y[0] == pytest.approx(first.mean())
    assert td.noise_variance[0] == pytest.approx(first.var(ddof=1) / 3)
    logs = training_data(props, "shear_modulus", per_point=True, log_targets=True)
    assert logs.y[0] == pytest.approx(np.log(first).mean()) and logs.target_names == ["log_shear_modulus"]


def test_training_data_from_a_real_ensemble() -> None:
    ens = sh.generate("boolean", (16, 16), 4, rng=0, volume_fraction=0.3, radius=2.0)
    props = sh.homogenize_ensemble(ens, [sh.Conductivity(1.0), sh.Conductivity(5.0)])
    td = training_data(props, "conductivity_eigenvalues_1", parameters=["volume_fraction"])
    assert td.X.shape == (4, 1) and list(td.groups) == list(props["specimen"].values)


def test_training_data_errors() -> None:
    props = _props()
    with pytest.raises(InputError, match="parameter 'size' is not a per-sample coordinate"):
        training_data(props, "bulk_modulus", ["size"])
    with pytest.raises(InputError, match="unknown variable 'young'"):
        training_data(props, "young")
    with pytest.raises(InputError, match="no parameter varies"):
        training_data(props.isel(sample=[0, 2]), "bulk_modulus")
    neg = props.assign(bulk_modulus=-props["bulk_modulus"])
    with pytest.raises(InputError, match="log_targets needs positive targets"):
        training_data(neg, "bulk_modulus", log_targets=True)


# ----------------------------------------------------------------------------- SPD


def _spd(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(n, m, m))
    return a @ np.swapaxes(a, 1, 2) + m * np.eye(m)


@pytest.mark.parametrize("m", [2, 3, 6])
def test_log_cholesky_round_trip_and_positivity(m: int) -> None:
    rng = np.random.default_rng(m)
    c = _spd(20, m, rng)
    t = SPDTransform("log_cholesky")
    f = t.features(c)
    assert f.shape == (20, m * (m + 1) // 2)
    np.testing.assert_allclose(t.tensors(f), c, rtol=1e-12, atol=1e-12)
    # any features give an SPD tensor (moderate features: conditioning stays far from round-off)
    arbitrary = t.tensors(rng.normal(size=(500, f.shape[1])))
    assert np.all(np.linalg.eigvalsh(arbitrary) > 0)
    np.testing.assert_allclose(arbitrary, np.swapaxes(arbitrary, 1, 2))


def test_log_isotropic_round_trip() -> None:
    c = isotropic_stiffness(3.0, 1.5, 3)
    t = SPDTransform("log_isotropic", "elasticity", 3)
    np.testing.assert_allclose(np.exp(t.features(c)), [[3.0, 1.5]])
    np.testing.assert_allclose(t.tensors(t.features(c))[0], c, atol=1e-14)
    k = SPDTransform("log_isotropic", "conductivity", 2)
    np.testing.assert_allclose(k.tensors(k.features(np.diag([2.0, 4.0])))[0], 3.0 * np.eye(2))


def test_tensor_samples_are_spd_and_centred() -> None:
    rng = np.random.default_rng(0)
    t = SPDTransform("log_cholesky")
    f = t.features(_spd(2, 3, rng))
    s = t.tensor_samples(f, 0.05, n_samples=4000, rng=1)
    assert s.shape == (4000, 2, 3, 3)
    assert np.all(np.linalg.eigvalsh(s.reshape(-1, 3, 3)) > 0)
    # the sample median of each entry is the tensor of the mean features (a monotone map per draw
    # is not guaranteed entry-wise, so compare the mean with a loose, noise-justified tolerance)
    centre = t.tensors(f)
    np.testing.assert_allclose(s.mean(axis=0), centre, rtol=0.02, atol=0.02 * np.abs(centre).max())
    # bit for bit: seeded normal draws, elementwise maps and stacked 3x3 products, which BLAS
    # never threads and numpy dispatches the same way for the same shapes and strides
    assert np.array_equal(s, t.tensor_samples(f, 0.05, n_samples=4000, rng=1))


def test_spd_errors() -> None:
    t = SPDTransform()
    with pytest.raises(InputError, match="not positive definite"):
        t.features(np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(InputError, match="not symmetric"):
        t.features(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(InputError, match="unknown SPD parametrization 'eigen'"):
        SPDTransform("eigen")
    with pytest.raises(InputError, match="NaN"):
        t.features(np.full((2, 2), np.nan))


def test_a_surrogate_of_log_cholesky_features_predicts_spd_stiffness() -> None:
    """Regress the log-Cholesky features of 2D apparent stiffnesses over a parameter and map the
    predictions back: every predicted tensor is SPD, also far outside the training range, where
    a linear fit of the raw entries is not."""
    from sklearn.linear_model import LinearRegression

    from stochhom.surrogates import GPR

    rng = np.random.default_rng(0)
    theta = rng.uniform(0.0, 1.0, 30)
    # a family of anisotropic plane-strain stiffnesses that soften towards theta = 1
    bulk, shear = 2.0 - 1.8 * theta, 1.0 - 0.9 * theta
    c = np.stack([isotropic_stiffness(k, g, 2) for k, g in zip(bulk, shear)])
    c[:, 0, 0] *= 1.0 + 0.3 * theta
    t = SPDTransform("log_cholesky")
    feats = t.features(c)
    gp = GPR(kernel="rbf", n_restarts=0, random_state=0).fit(theta[:, None], feats)
    grid = np.linspace(-1.0, 3.0, 81)[:, None]  # far outside [0, 1]
    from stochhom.errors import OutOfDomainWarning

    with pytest.warns(OutOfDomainWarning):
        pred = t.tensors(gp.predict(grid))
    assert np.all(np.linalg.eigvalsh(pred) > 0)
    # inside the training range the prediction reproduces the tensors
    np.testing.assert_allclose(t.tensors(gp.predict(theta[:5, None])), c[:5], rtol=1e-3, atol=1e-4)
    # the naive alternative: a linear model of the raw entries predicts non-SPD tensors at theta = 3
    raw = LinearRegression().fit(theta[:, None], c.reshape(30, -1)).predict(grid).reshape(-1, 3, 3)
    assert np.any(np.linalg.eigvalsh(raw) <= 0)


def test_solver_level_asymmetry_is_accepted_and_parameters_are_sorted() -> None:
    c = isotropic_stiffness(2.0, 1.0, 2)
    noisy = c.copy()
    noisy[0, 1] += 2e-6 * np.abs(c).max()  # an apparent tensor solved to tol = 1e-6
    t = SPDTransform()
    np.testing.assert_allclose(t.tensors(t.features(noisy))[0], 0.5 * (noisy + noisy.T), atol=1e-12)
    noisy[0, 1] += 1e-2
    with pytest.raises(InputError, match=r"not symmetric.*symmetry_rtol"):
        t.features(noisy)
    # the columns of X do not depend on the coordinate order of the dataset
    props = _props()
    props = props.assign_coords(alpha=("sample", np.arange(props.sizes["sample"]) % 3 * 1.0))
    assert default_parameters(props) == ["alpha", "volume_fraction"]
    assert default_parameters(props[["bulk_modulus"]].assign_coords(
        {k: props[k] for k in reversed(list(props.coords))})) == ["alpha", "volume_fraction"]
