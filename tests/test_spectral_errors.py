"""Bad input gets a stochhom exception that names the problem (never a numpy traceback)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import centred_ball, laminate_image

import stochhom as sh
from stochhom.errors import ConvergenceError, ConvergenceWarning, InputError, MaterialError

ELASTIC = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(10.0, 0.2)]
COND = [sh.Conductivity(1.0), sh.Conductivity(10.0)]
IMAGE = centred_ball(8, 2, 0.3)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((4, 4), dtype=float), "float"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.zeros(8, dtype=int), "2D or 3D"),
        (np.zeros((2, 2, 2, 2), dtype=int), "2D or 3D"),
        (np.zeros((0, 4), dtype=int), "empty"),
        (np.zeros((4, 0, 4), dtype=int), "empty"),
        (np.full((4, 4), -1), ">= 0"),
        (np.array([["a", "b"], ["c", "d"]]), "integer"),
    ],
)
def test_bad_images(image, match: str) -> None:
    with pytest.raises(InputError, match=match):
        sh.homogenize(image, ELASTIC)


def test_labels_without_a_phase_are_named() -> None:
    image = IMAGE.astype(int)
    image[0, 0] = 5
    with pytest.raises(InputError, match=r"labels \[5\].*phases are given for labels \[0, 1\]"):
        sh.homogenize(image, ELASTIC)


def test_dict_phases_with_sparse_labels() -> None:
    image = np.where(IMAGE == 1, 7, 3)
    a = sh.homogenize(image, {3: COND[0], 7: COND[1]}).effective
    b = sh.homogenize(IMAGE, COND).effective
    np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize(
    ("phases", "error", "match"),
    [
        ([sh.Conductivity(1.0), sh.IsotropicElastic(1.0, 0.3)], MaterialError, "mix"),
        ([sh.Void(), sh.Void()], MaterialError, "Void"),
        ([sh.Conductivity(1.0), 3.0], InputError, "not a stochhom material"),
        (sh.Conductivity(1.0), InputError, "list or dict"),
        ("abc", InputError, "list or dict"),
        ({"a": sh.Conductivity(1.0)}, InputError, "integer labels"),
    ],
)
def test_bad_phases(phases, error, match: str) -> None:
    with pytest.raises(error, match=match):
        sh.homogenize(IMAGE, phases)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tol": 0.0}, "tol"),
        ({"tol": -1e-6}, "tol"),
        ({"tol": 1.5}, "tol"),
        ({"tol": float("nan")}, "tol"),
        ({"tol": "small"}, "tol"),
        ({"maxiter": 0}, "maxiter"),
        ({"maxiter": 2.5}, "maxiter"),
        ({"dtype": "int32"}, "'float64', 'float32' or 'mixed'"),
        ({"dtype": "float16"}, "'float64', 'float32' or 'mixed'"),
        ({"spacing": -1.0}, "spacing"),
        ({"spacing": (1.0, 2.0, 3.0)}, "spacing"),
        ({"workers": 0}, "workers"),
        ({"batch_size": 0}, "batch_size"),
        ({"on_failure": "ignore"}, "on_failure"),
        ({"backend": "cuda"}, "backend"),
        ({"reference": (1.0, -2.0)}, "reference"),
    ],
)
def test_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        sh.homogenize(IMAGE, ELASTIC, **kwargs)


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(InputError, match=r"unknown scheme 'moulinec'.*'accelerated', 'basic', 'cg'"):
        sh.homogenize(IMAGE, ELASTIC, scheme="moulinec")


def test_unknown_discretization_lists_the_valid_ones() -> None:
    with pytest.raises(InputError, match=r"'fourier', 'q1', 'rotated'"):
        sh.homogenize(IMAGE, ELASTIC, discretization="staggered_grid")


@pytest.mark.parametrize("scheme", ["basic", "accelerated"])
def test_fixed_point_with_void_suggests_cg_rotated(scheme: str) -> None:
    with pytest.raises(InputError, match=r"scheme='cg' with discretization='rotated'"):
        sh.homogenize(IMAGE, [sh.IsotropicElastic(1.0, 0.3), sh.Void()], scheme=scheme)


def test_non_convergence_raises_with_history() -> None:
    image = centred_ball(32, 2, 0.4)
    with pytest.raises(ConvergenceError) as info:
        sh.homogenize(image, [sh.Conductivity(1.0), sh.Conductivity(1e4)], maxiter=3)
    err = info.value
    assert "did not reach tol=1e-06" in str(err)
    assert err.tol == 1e-6
    assert list(err.iterations) == [3, 3]
    assert all(len(r) == 4 and r[-1] > 1e-6 for r in err.residuals)


def test_non_convergence_can_warn_instead() -> None:
    image = centred_ball(32, 2, 0.4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sh.homogenize(image, [sh.Conductivity(1.0), sh.Conductivity(1e4)], maxiter=3, on_failure="warn")
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert not res.converged.any()
    assert res.info["status"] == ["maxiter", "maxiter"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"macro_strain": [1, 0, 0], "macro_stress": [1, 0, 0]}, "exactly one"),
        ({"macro_strain": [1, 0]}, "3 finite numbers"),
        ({"macro_strain": [1, 0, np.nan]}, "3 finite numbers"),
        ({"macro_gradient": [1, 0, 0]}, "conductivity"),
    ],
)
def test_bad_solve_loads(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        sh.solve(IMAGE, ELASTIC, **kwargs)


def test_stress_control_refuses_a_singular_cell() -> None:
    """A void layer cutting the cell gives a zero normal stiffness: no stress can be imposed."""
    image = laminate_image((8, 8), [6, 2], axis=1)
    with pytest.raises(InputError, match="singular"):
        sh.solve(image, [sh.IsotropicElastic(1.0, 0.3), sh.Void()], macro_stress=[0.0, 1.0, 0.0])


def test_tol_below_the_precision_is_refused() -> None:
    with pytest.raises(InputError, match="below what float32 resolves"):
        sh.homogenize(IMAGE, ELASTIC, dtype="float32", tol=1e-7)


def test_anisotropic_contrast_counts_in_the_precision_guard() -> None:
    """Two phases of equal norm but 1e4 apart along x: float32 cannot resolve it."""
    phases = [sh.Conductivity(np.diag([1.0, 1e4])), sh.Conductivity(1e4)]
    with pytest.raises(InputError, match="phase contrast 1e\\+04"):
        sh.homogenize(IMAGE, phases, dtype="float32")


def test_reference_medium_must_match_the_problem() -> None:
    from stochhom.spectral import ReferenceMedium

    with pytest.raises(InputError, match="conductivity in 3D, but the problem is elasticity in 2D"):
        sh.homogenize(IMAGE, ELASTIC, reference=ReferenceMedium(1.0))
