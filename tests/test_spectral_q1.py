"""The Q1 (voxel finite-element) discretization: its operator, its peer, its iterations.

The shared physical contract (homogeneous, laminates, bounds, Hill–Mandel) runs in
test_spectral_contract.py and the literature checks (Perrins, neutral inclusion) in
test_spectral_accuracy.py; this file checks what is particular to Q1:

* the compiled stiffness equals a dense assembly from the Gauss-point gradients
  (numpy, written independently here), is symmetric, and vanishes on constants;
* the answer equals muGrid 1.6.1's (the same discretization in an independent C++
  code, Ladecký et al. 2023) on images with touching inclusions and pores;
* the Green preconditioner keeps the iteration count independent of the grid;
* the result does not depend on the number of threads.
"""

from __future__ import annotations

import importlib
import itertools
import sys

import numpy as np
import pytest
from conftest import centred_ball, hard_balls

import stochhom as sh
from stochhom.errors import InputError
from stochhom.spectral.q1 import gauss_gradients

homogenize_module = importlib.import_module("stochhom.spectral.homogenize")


def _problem(image: np.ndarray, phases: list, workers: int = 1):
    problem, *_ = homogenize_module._problem(image, phases, "cg", "q1", 1e-8, 1000, "float64", None, None, workers)
    return problem


def _dense_stiffness(image: np.ndarray, phases: list, elastic: bool) -> np.ndarray:
    r"""Assemble :math:`K = \sum_e \sum_g w_g B_g^T C_e B_g` on the periodic grid (dense)."""
    dim = image.ndim
    m = dim if elastic else 1
    shape = image.shape
    n_dof = m * image.size
    k = np.zeros((n_dof, n_dof))
    ne = dim * (dim + 1) // 2 if elastic else dim
    scale = np.ones(ne)
    if elastic:
        scale[dim:] = 1 / np.sqrt(2)  # engineering shear -> Mandel
    bs = [b * scale[:, None] for b in gauss_gradients((1.0,) * dim, elastic)]
    tensors = [np.zeros((ne, ne)) if ph.is_void else ph.tensor(dim) for ph in phases]
    ke = {p: np.mean([b.T @ tensors[p] @ b for b in bs], axis=0) for p in np.unique(image)}
    for idx in itertools.product(*(range(s) for s in shape)):
        dofs = []
        for cc in itertools.product((0, 1), repeat=dim):
            node = tuple((i + c) % s for i, c, s in zip(idx, cc, shape))
            flat = np.ravel_multi_index(node, shape)
            dofs += [s * image.size + flat for s in range(m)]
        k[np.ix_(dofs, dofs)] += ke[image[idx]]
    return k


@pytest.mark.parametrize(("dim", "elastic"), [(2, True), (2, False), (3, True), (3, False)])
def test_stiffness_matches_a_dense_assembly(dim: int, elastic: bool, rng) -> None:
    shape = (4, 5) if dim == 2 else (3, 4, 3)  # odd and even axes (the two-colour slab loop)
    image = rng.integers(0, 3, shape)
    phases = ([sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(7.0, 0.2), sh.Void()] if elastic
              else [sh.Conductivity(1.0), sh.Conductivity(np.diag([3.0, 0.5, 2.0][:dim])), sh.Void()])
    problem = _problem(image, phases)
    m = dim if elastic else 1
    u = rng.normal(size=(2, m) + shape)
    dense = _dense_stiffness(image, phases, elastic)
    # the internal form uses engineering shear; K is the same operator on displacements
    expected = (dense @ u.reshape(2, -1).T).T.reshape(u.shape)
    got = problem.apply(u)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_allclose(dense, dense.T, atol=1e-13)
    np.testing.assert_allclose(problem.apply(np.ones((1, m) + shape)), 0.0, atol=1e-12)
    assert np.linalg.eigvalsh(dense).min() > -1e-12  # positive semi-definite (voids: singular)


# muGrid 1.6.1 (run_mugrid.py of ../shared/peers, --tol 1e-10) on the images below:
# mean stress (flux) rows of the load case named. Same discretization, same images,
# an independent implementation: agreement to the solver tolerance is expected.
MUGRID = {
    "pores_xx": (3, [{"E": 1, "nu": 0.3}, None], "xx",
                 [0.6418526479609166, 0.20752211422051647, 0.22040810438813038, -0.0006257249542918993,
                  -0.0013502681687339734, -0.013006613306184443]),
    "stiff_yz": (3, [{"E": 1, "nu": 0.3}, {"E": 1000, "nu": 0.3}], "yz",
                 [-6.8882778935779605, -8.59031396410458, -3.845865842305034, 9.24375204380136,
                  4.887310335510226, -5.257952481882559]),
    "conductivity_x": (3, [{"k": 1}, {"k": 100}], "x", [9.706535608414075, 0.7740687447535175, -0.6496203564619335]),
    "elastic_2d_xy": (2, [{"E": 1, "nu": 0.3}, {"E": 10, "nu": 0.2}], "xy",
                      [0.12799209877039242, 0.10483178630577134, 1.3466394002091284]),
}


def _mugrid_image(dim: int) -> np.ndarray:
    # overlapping balls (negative clearance): touching inclusions, corner contacts
    if dim == 3:
        return hard_balls(16, 3, 3.0, 0.3, seed=5, clearance=-4.0)
    return hard_balls(24, 2, 3.5, 0.35, seed=5, clearance=-4.0)


@pytest.mark.parametrize("case", sorted(MUGRID))
def test_matches_mugrid(case: str) -> None:
    dim, props, load, stress = MUGRID[case]
    image = _mugrid_image(dim)
    if "k" in props[0]:
        phases = [sh.Conductivity(float(p["k"])) for p in props]
        macro = np.eye(dim)["xyz".index(load)]
        mean = np.array(stress)
    else:
        phases = [sh.Void() if p is None else sh.IsotropicElastic(float(p["E"]), p["nu"]) for p in props]
        comps = {"xx": 0, "yy": 1, "zz": 2, "yz": 3, "xz": 4, "xy": 5} if dim == 3 else {"xx": 0, "yy": 1, "xy": 2}
        ne = 6 if dim == 3 else 3
        macro = np.zeros(ne)
        i = comps[load]
        macro[i] = 1.0 if i < dim else np.sqrt(2.0)  # symmetric unit strain E_ij = E_ji = 1, Mandel
        mean = np.array(stress) * np.r_[np.ones(dim), np.full(ne - dim, np.sqrt(2.0))]  # to Mandel
    f = sh.solve(image, phases, macro_strain=macro, discretization="q1", tol=1e-9)
    # muGrid stopped at ||b - Kx|| <= 1e-10 ||b||; both are converged far below 1e-7
    np.testing.assert_allclose(f.mean_stress, mean, rtol=0, atol=1e-7 * np.abs(mean).max())


@pytest.mark.parametrize("inclusion", [sh.Void(), sh.IsotropicElastic(1e8, 0.3), sh.IsotropicElastic(100.0, 0.3)])
def test_iterations_do_not_grow_with_grid(inclusion) -> None:
    """One sphere (f = 0.2) at 12^3 and 36^3: Green-preconditioned CG on Q1 needs the
    same number of iterations (measured 21/21 pores, 56/57 rigid, 27/27 contrast 100 at
    16^3/48^3), fewer than the rotated scheme (32, 83, 37)."""
    its = []
    for n in (12, 36):
        res = sh.homogenize(centred_ball(n, 3, 0.2), [sh.IsotropicElastic(1.0, 0.3), inclusion], discretization="q1")
        its.append(res.iterations.max())
    assert its[1] <= 1.15 * its[0]
    assert its[1] <= 65


def test_result_does_not_depend_on_the_number_of_threads(rng) -> None:
    """The element loop runs in two colours with a fixed summation order and the FFTs
    split transforms, not sums, over threads: 1 and 2 workers agree bit for bit."""
    image = _mugrid_image(3)
    phases = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(50.0, 0.2)]
    u = rng.normal(size=(2, 3) + image.shape)
    one, two = _problem(image, phases, workers=1), _problem(image, phases, workers=2)
    assert np.array_equal(one.apply(u), two.apply(u))
    a = sh.homogenize(image, phases, discretization="q1", workers=1)
    b = sh.homogenize(image, phases, discretization="q1", workers=2)
    assert np.array_equal(a.effective, b.effective)


def test_fluctuation_is_nodal_and_reproduces_the_mean_strain() -> None:
    """The returned fluctuation is the nodal one (voxel corners); its element-average
    gradient plus E is the returned strain field."""
    image = _mugrid_image(2)
    phases = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(10.0, 0.2)]
    macro = np.array([0.3, -0.1, 0.2])
    f = sh.solve(image, phases, macro_strain=macro, discretization="q1")
    u = f.fluctuation
    assert u.shape == (2,) + image.shape
    # d u_x / d x at the element centre: average of the two edge differences along x
    dux = 0.5 * ((np.roll(u[0], -1, 0) - u[0]) + np.roll(np.roll(u[0], -1, 0) - u[0], -1, 1))
    np.testing.assert_allclose(f.strain[0], macro[0] + dux, atol=1e-12)
    np.testing.assert_allclose(f.strain.mean(axis=(1, 2)), macro, atol=1e-12)


@pytest.mark.parametrize(("kwargs", "keyword"), [
    ({"scheme": "basic"}, "conjugate gradients"),
    ({"scheme": "accelerated"}, "conjugate gradients"),
    ({"dtype": "float32"}, "float64"),
])
def test_unsupported_options_are_refused(kwargs: dict, keyword: str) -> None:
    image = centred_ball(8, 2, 0.3)
    with pytest.raises(InputError, match=keyword):
        sh.homogenize(image, [sh.Conductivity(1.0), sh.Conductivity(5.0)], discretization="q1", **kwargs)


def test_numpy_backend_is_refused() -> None:
    image = centred_ball(8, 2, 0.3)
    with pytest.raises(InputError, match="numba or torch"):
        sh.homogenize(image, [sh.Conductivity(1.0), sh.Conductivity(5.0)], discretization="q1", backend="numpy")


# ------------------------------------------------------------------ the "auto" default
@pytest.mark.parametrize(("phases", "kwargs", "expected"), [
    ([sh.IsotropicElastic(1.0, 0.3), sh.Void()], {}, "q1"),
    ([sh.Conductivity(1.0), sh.Void()], {}, "q1"),
    ([sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(100.0, 0.3)], {}, "rotated"),
    ([sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(1e-3, 0.3)], {}, "rotated"),
    ([sh.IsotropicElastic(1.0, 0.3), sh.Void()], {"dtype": "float32"}, "rotated"),
    ([sh.IsotropicElastic(1.0, 0.3), sh.Void()], {"discretization": "rotated"}, "rotated"),
    ([sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(100.0, 0.3)], {"discretization": "q1"}, "q1"),
])
def test_auto_chooses_q1_for_porous_media_only(phases: list, kwargs: dict, expected: str) -> None:
    """The resolution study's conclusion (docs/theory/spectral_solver.md): Q1 for pores,
    the rotated scheme for stiff (touching) inclusions; Q1 needs CG in float64."""
    image = centred_ball(8, 2, 0.3)
    res = sh.homogenize(image, phases, **kwargs)
    assert res.info["discretization"] == expected
    f = sh.solve(image, phases, macro_strain=np.eye(res.effective.shape[0])[0], **kwargs)
    assert f.info["discretization"] == expected


def test_auto_follows_the_scheme_and_the_backend() -> None:
    from stochhom.spectral import choose_discretization

    void = [sh.IsotropicElastic(1.0, 0.3), sh.Void()]
    assert choose_discretization("auto", "cg", void) == "q1"
    assert choose_discretization("auto", "basic", void) == "rotated"  # (then refused: fixed points and voids)
    assert choose_discretization("auto", "cg", void, "float32") == "rotated"
    assert choose_discretization("auto", "cg", void, "float64", "numpy") == "rotated"
    assert choose_discretization("fourier", "cg", void) == "fourier"


# ------------------------------------------------------------------ the torch backend
TORCH_CASES = {
    "elastic_3d_pores": (3, [sh.IsotropicElastic(1.0, 0.3), sh.Void()]),
    "elastic_3d_stiff": (3, [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(30.0, 0.2)]),
    "anisotropic_3d": (3, [sh.IsotropicElastic(70.0, 0.33), sh.AnisotropicElastic.from_cubic(168.0, 121.0, 75.0)]),
    "conductivity_3d": (3, [sh.Conductivity(1.0), sh.Conductivity(np.diag([5.0, 2.0, 9.0]))]),
    "elastic_2d": (2, [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(10.0, 0.2)]),
    "conductivity_2d_pores": (2, [sh.Conductivity(1.0), sh.Void()]),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_backend_equals_numba(case: str) -> None:
    """The same discretization and the same CG: tensors to rounding, identical iteration counts."""
    pytest.importorskip("torch")
    dim, phases = TORCH_CASES[case]
    image = _mugrid_image(dim)
    a = sh.homogenize(image, phases, discretization="q1", backend="numba", tol=1e-8)
    b = sh.homogenize(image, phases, backend="torch", tol=1e-8)  # "auto" is q1 on torch
    assert b.info["discretization"] == "q1" and b.info["backend"] == "torch" and b.info["device"] == "cpu"
    np.testing.assert_allclose(b.effective, a.effective, rtol=0, atol=1e-10 * np.abs(a.effective).max())
    assert np.abs(b.iterations - a.iterations).max() <= 1  # summation order differs: a stop may move by one


@pytest.mark.parametrize(("dim", "elastic", "n_phases"), [(2, True, 3), (3, True, 3), (3, False, 3), (3, True, 12),
                                                        (3, True, 2), (3, False, 2)])
def test_torch_operators_equal_the_compiled_ones(dim: int, elastic: bool, n_phases: int, rng) -> None:
    """Three paths of the torch element products against the compiled kernels: one
    product with a scale field (proportional phases), masked products (up to 8 phases),
    indexed products (more phases: polycrystals)."""
    torch = pytest.importorskip("torch")
    from stochhom.spectral.q1_torch import Q1TorchProblem

    shape = (5, 4) if dim == 2 else (3, 5, 4)
    image = rng.integers(0, n_phases, shape)
    phases = ([sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(7.0, 0.2), sh.Void()] if elastic
              else [sh.Conductivity(1.0), sh.Conductivity(np.diag([3.0, 0.5, 2.0])), sh.Void()])
    phases += [sh.IsotropicElastic(float(e), 0.25) for e in rng.uniform(1.0, 10.0, max(n_phases - 3, 0))]
    if n_phases == 2:  # proportional element matrices: one product and a scale field
        phases = ([sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(7.0, 0.3)] if elastic
                  else [sh.Conductivity(1.0), sh.Conductivity(4.0)])
    ref = _problem(image, phases)
    tp = Q1TorchProblem(ref.labels, ref.tensors, elastic, ref.grid.spacing, np.float64, 1, ref.reference)
    m = dim if elastic else 1
    u = rng.normal(size=(2, m) + shape)
    ut = torch.as_tensor(u)
    macro = rng.normal(size=(2, ref.ne))
    np.testing.assert_allclose(tp.apply(ut).numpy(), ref.apply(u), atol=1e-12)
    np.testing.assert_allclose(tp.rhs(macro).numpy(), ref.rhs(macro), atol=1e-12)
    np.testing.assert_allclose(tp.mean_stress(ut, macro), ref.mean_stress(u, macro), atol=1e-12)
    r = ref.apply(u)  # a residual: zero mean
    z_ref, rz_ref = ref.precondition(r)
    z, rz = tp.precondition(torch.as_tensor(r))
    np.testing.assert_allclose(z.numpy(), z_ref, atol=1e-12 * np.abs(z_ref).max())
    np.testing.assert_allclose(rz, rz_ref, rtol=1e-12)
    np.testing.assert_allclose(tp.element_strain(u, macro), ref.element_strain(u, macro), atol=1e-12)


def test_torch_solve_returns_the_same_fields() -> None:
    pytest.importorskip("torch")
    image = _mugrid_image(2)
    phases = [sh.IsotropicElastic(1.0, 0.3), sh.Void()]
    a = sh.solve(image, phases, macro_strain=[0.01, 0.0, 0.0], tol=1e-9)
    b = sh.solve(image, phases, macro_strain=[0.01, 0.0, 0.0], tol=1e-9, backend="torch", device="cpu")
    np.testing.assert_allclose(b.stress, a.stress, atol=1e-10 * np.abs(a.stress).max())
    np.testing.assert_allclose(b.fluctuation - b.fluctuation.mean(), a.fluctuation - a.fluctuation.mean(),
                               atol=1e-9 * np.abs(a.fluctuation).max())


@pytest.mark.parametrize(("kwargs", "keyword"), [
    ({"backend": "torch", "discretization": "rotated"}, "q1' only"),
    ({"backend": "torch", "dtype": "float32"}, "float64"),
    ({"backend": "numba", "device": "cpu"}, "backend='torch' only"),
    ({"backend": "torch", "device": "tpu:0"}, "device"),
])
def test_torch_backend_refusals(kwargs: dict, keyword: str) -> None:
    pytest.importorskip("torch")
    image = centred_ball(8, 2, 0.3)
    with pytest.raises(InputError, match=keyword):
        sh.homogenize(image, [sh.Conductivity(1.0), sh.Conductivity(5.0)], **kwargs)


def test_a_missing_gpu_is_a_clear_error() -> None:
    """A GPU index this machine lacks is refused on any machine; plain 'cuda' where there is none."""
    torch = pytest.importorskip("torch")
    missing = ["cuda:99"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in missing:
        with pytest.raises(InputError, match="no CUDA device"):
            sh.homogenize(centred_ball(8, 2, 0.3), [sh.Conductivity(1.0), sh.Conductivity(5.0)],
                          backend="torch", device=device)


@pytest.mark.parametrize("elastic", [True, False])
def test_fused_triton_kernel_equals_the_compiled_one(elastic: bool) -> None:
    """The GPU kernel (kernels_q1_triton), run by Triton's CPU interpreter where Triton
    is installed (it ships with PyTorch's CUDA builds, not with the CPU build CI uses)."""
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    import os
    import subprocess
    import textwrap

    script = textwrap.dedent("""
        import importlib, numpy as np, torch
        import stochhom as sh
        from stochhom.spectral.q1_torch import Q1TorchProblem
        H = importlib.import_module("stochhom.spectral.homogenize")
        rng = np.random.default_rng(0)
        elastic = ELASTIC
        image = rng.integers(0, 3, (5, 4, 3))
        phases = ([sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(7.0, 0.3), sh.Void()] if elastic
                  else [sh.Conductivity(1.0), sh.Conductivity(7.0), sh.Void()])
        ref, *_ = H._problem(image, phases, "cg", "q1", 1e-8, 100, "float64", None, None, 1)
        tp = Q1TorchProblem(ref.labels, ref.tensors, elastic, ref.grid.spacing, np.float64, 1, ref.reference)
        assert tp._fused
        u = rng.normal(size=(2, 3 if elastic else 1, 5, 4, 3))
        a, b = ref.apply(u), tp.apply(torch.as_tensor(u)).numpy()
        print(np.abs(a - b).max() / np.abs(a).max())
    """)
    script = script.replace("ELASTIC", repr(elastic))
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 1e-13


@pytest.mark.parametrize("n_phases", [3, 10])
def test_stress_field_is_the_phase_law_applied_to_the_strain_field(n_phases: int, rng) -> None:
    """Few phases: a product per phase; many (polycrystals): per voxel. Both give the
    voxel stress L(label) : strain (Mandel), to rounding."""
    image = rng.integers(0, n_phases, (10, 12))
    phases = [sh.IsotropicElastic(float(e), 0.3) for e in rng.uniform(1.0, 20.0, n_phases)]
    f = sh.solve(image, phases, macro_strain=[0.01, -0.004, 0.003], discretization="q1")
    tensors = np.stack([p.tensor(2) for p in phases])[image]  # (*shape, 3, 3)
    expected = np.einsum("xyrs,sxy->rxy", tensors, f.strain)
    np.testing.assert_allclose(f.stress, expected, rtol=0, atol=1e-13 * np.abs(expected).max())
