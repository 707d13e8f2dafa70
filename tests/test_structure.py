"""The macroscopic finite-element layer: exact and classical answers on homogeneous and
layered parts, element-wise tensors, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

import stochhom as sh
from stochhom.errors import InputError
from stochhom.structure import element_tensors, solve_conduction, solve_elasticity
from stochhom.structure.parts import cantilever, plate, plate_with_hole

pytest.importorskip("skfem")

E, NU = 1000.0, 0.3
C2 = sh.IsotropicElastic(E, NU).tensor(2)  # plane-strain Mandel stiffness
E_PS, NU_PS = E / (1 - NU**2), NU / (1 - NU)  # plane-strain modulus and Poisson ratio


def test_bar_in_tension_is_exact_in_2d_and_3d():
    """A uniform stress field is in the element space: the displacement is exact to rounding."""
    sol = solve_elasticity(plate(4.0, 1.0, 8, 3), C2, fixed={"left": [0], "bottom": [1]},
                           traction={"right": [2.0, 0.0]})
    u = sol.at([4.0, 0.5])  # on the boundary
    assert u[0] == pytest.approx(2.0 * 4.0 / E_PS, rel=1e-10)
    assert u[1] == pytest.approx(-NU_PS * 2.0 / E_PS * 0.5, rel=1e-10)
    assert sol.compliance == pytest.approx(2.0 * 1.0 * u[0], rel=1e-10)  # f.u = traction x area x end displacement
    np.testing.assert_allclose(sol.stress()[..., 0], 2.0, rtol=1e-9)
    np.testing.assert_allclose(sol.stress()[..., 1:], 0.0, atol=1e-9)
    m3 = cantilever(3.0, 1.0, 6, 2, width=1.0, nz=2)
    c3 = sh.IsotropicElastic(E, NU).tensor(3)
    sol3 = solve_elasticity(m3, c3, fixed={"left": [0], "bottom": [1], "front": [2]}, traction={"right": [1.0, 0, 0]})
    assert sol3.at([3.0 - 1e-12, 0.5, 0.5])[0] == pytest.approx(3.0 / E, rel=1e-10)


def test_layers_in_series_take_one_tensor_per_element():
    """Two halves of different stiffness in series, without Poisson coupling (so that the
    layers' lateral strains are compatible): uniform stress, u(L) = sigma (L1/E1 + L2/E2)."""
    m = plate(2.0, 1.0, 8, 2)
    x = m.p[0, m.t].mean(axis=0)
    stiff, soft = sh.IsotropicElastic(E, 0.0).tensor(2), sh.IsotropicElastic(100.0, 0.0).tensor(2)
    tensors = np.where((x < 1.0)[:, None, None], stiff, soft)
    sol = solve_elasticity(m, tensors, fixed={"left": [0], "bottom": [1]}, traction={"right": [1.0, 0.0]})
    expected = 1.0 * (1.0 / E + 1.0 / 100.0)
    assert sol.at([2.0 - 1e-12, 0.5])[0] == pytest.approx(expected, rel=1e-10)


def test_cantilever_tip_deflection_converges_to_timoshenko():
    """End shear load P on a clamped beam (plane strain). Timoshenko: P L^3 / (3 E' I) +
    P L / (kappa G A) with kappa = 5/6. The Q1 deflection converges from below at second
    order (measured ratios of successive differences 3.7); its Richardson extrapolation is
    within 1 % of the beam formula, whose own error (clamping, shear coefficient) is of
    that order for L/H = 10."""
    length, height, load = 10.0, 1.0, 1.0
    shear = E / (2 * (1 + NU))
    exact = load * length**3 / (3 * E_PS * height**3 / 12) + load * length / (5 / 6 * shear * height)
    tips = []
    for nx, ny in ((20, 2), (40, 4), (80, 8)):
        sol = solve_elasticity(cantilever(length, height, nx, ny), C2, fixed={"left": "all"},
                               traction={"right": [0.0, -load / height]})
        tips.append(-sol.at([length - 1e-12, height / 2])[1])
    d1, d2 = tips[1] - tips[0], tips[2] - tips[1]
    assert tips[0] < tips[1] < tips[2] < exact * 1.01 and d2 < d1 / 2.5
    extrapolated = tips[2] + d2 * d2 / (d1 - d2)
    assert extrapolated == pytest.approx(exact, rel=0.01)


def test_plate_with_hole_concentrates_stress_threefold():
    """Kirsch: sigma_xx = 3 sigma at the hole's top in an infinite plate; a square plate of
    half-width 10 radii adds a few per cent (finite-width Kt about 3.03). Measured at the
    quadrature points: 3.05 (16 x 16), 3.08 (32 x 32), 3.08 (64 x 64)."""
    m = plate_with_hole(10.0, 1.0, 32, 32)
    sol = solve_elasticity(m, C2, fixed={"left": [0], "bottom": [1]}, traction={"right": [1.0, 0.0]})
    s = sol.stress()
    assert 2.95 < s[..., 0].max() < 3.2
    # far from the hole, on the loaded edge, the stress is the remote one
    x = m.p[:, m.t].mean(axis=1)
    far = (x[0] > 9.0) & (x[1] < 3.0)
    assert np.allclose(s[far, :, 0], 1.0, atol=0.06)
    # plane strain: sigma_33 = nu (sigma_11 + sigma_22); at the hole's top (sigma_11 = 3, sigma_22 = 0)
    # von Mises = sqrt(9 + 9 nu^2 - 9 nu) = 2.65 for nu = 0.3
    vm = sol.von_mises(poisson=NU)
    assert vm.max() == pytest.approx(np.sqrt(1 - NU + NU**2) * s[..., 0].max(), rel=0.03)
    with pytest.raises(InputError, match="Poisson ratio"):
        sol.von_mises()


def test_conduction_linear_and_layered_series_are_exact():
    m = plate(2.0, 1.0, 8, 2)
    sol = solve_conduction(m, 3.0 * np.eye(2), temperature={"left": 0.0, "right": 1.0})
    assert sol.at([0.5, 0.5])[0] == pytest.approx(0.25, abs=1e-12)
    np.testing.assert_allclose(sol.stress()[..., 0], -1.5, rtol=1e-10)  # flux -k dT/dx
    x = m.p[0, m.t].mean(axis=0)
    k = np.where((x < 1.0)[:, None, None], np.eye(2) * 1.0, np.eye(2) * 4.0)
    layered = solve_conduction(m, k, temperature={"left": 0.0, "right": 1.0})
    q = 1.0 / (1.0 / 1.0 + 1.0 / 4.0)  # series resistances
    np.testing.assert_allclose(layered.stress()[..., 0], -q, rtol=1e-10)
    assert layered.at([1.0, 0.5])[0] == pytest.approx(q * 1.0, rel=1e-10)
    # a heat source with cold edges: T = s x (L - x) / (2 k) along the bar
    src = solve_conduction(plate(2.0, 1.0, 32, 2), np.eye(2), temperature={"left": 0.0, "right": 0.0}, source=1.0)
    assert src.at([1.0, 0.5])[0] == pytest.approx(0.5, rel=2e-3)


@pytest.mark.parametrize("tensors, match", [
    (np.ones((3, 3)), "not positive definite"),
    (np.array([[1.0, 0.5, 0], [0.0, 1.0, 0], [0, 0, 1.0]]), "not symmetric"),
    (np.eye(2), "must have shape"),
    (np.full((3, 3), np.nan), "non-finite"),
])
def test_element_tensors_are_checked(tensors, match):
    with pytest.raises(InputError, match=match):
        element_tensors(tensors, 4, 3)


def test_refusals_name_the_problem():
    m = plate(1.0, 1.0, 2, 2)
    with pytest.raises(InputError, match="no boundary 'clamp'"):
        solve_elasticity(m, C2, fixed={"clamp": "all"})
    with pytest.raises(InputError, match="free body is singular"):
        solve_elasticity(m, C2, fixed={})
    with pytest.raises(InputError, match="component 2"):
        solve_elasticity(m, C2, fixed={"left": [2]})
    with pytest.raises(InputError, match="traction on 'right'"):
        solve_elasticity(m, C2, fixed={"left": "all"}, traction={"right": [1.0, 0.0, 0.0]})
    with pytest.raises(InputError, match="prescribed temperature"):
        solve_conduction(m, np.eye(2), temperature={})
    with pytest.raises(InputError, match="outside the mesh"):
        solve_conduction(m, np.eye(2), temperature={"left": 0.0}).at([2.0, 2.0])
    with pytest.raises(InputError, match="smaller than the plate"):
        plate_with_hole(1.0, 2.0)
    with pytest.raises(InputError, match="even"):
        plate_with_hole(10.0, 1.0, n_angle=5)


@pytest.mark.parametrize("model", ["gaussian", "exponential"])
def test_macro_field_has_its_mean_spread_and_correlation(model):
    """400 draws at the centroids of a 40 x 20 plate: the mean (the part holds about 8
    correlation areas, so the standard error of the mean is about 0.05 / sqrt(8 * 400) =
    0.001), the pointwise standard deviation (relative standard error of s about 3.5 % per
    element, less averaged over 800 correlated elements) and the correlation of two elements
    one length apart (standard error (1 - rho^2) / 20 < 0.05) match the model.
    Measured: mean 0.3005, std 0.0496 / 0.0492, rho 0.602 / 0.367 against 0.607 / 0.368."""
    from stochhom.microstructure.random_fields import correlation
    from stochhom.structure.fields import MacroField, element_centroids, sample_field

    mesh = plate(20.0, 10.0, 40, 20)
    field = MacroField("normal", 0.3, 0.05, 2.0, model=model)
    v = sample_field(mesh, field, 400, rng=1)
    assert v.shape == (400, 800)
    assert abs(v.mean() - 0.3) < 0.01
    assert v.std(axis=0, ddof=1).mean() == pytest.approx(0.05, rel=0.05)
    x = element_centroids(mesh)
    i = int(np.argmin(np.hypot(x[:, 0] - 10.25, x[:, 1] - 5.25)))
    j = int(np.argmin(np.hypot(x[:, 0] - 12.25, x[:, 1] - 5.25)))
    rho = float(correlation(np.array([np.hypot(*(x[i] - x[j])) / 2.0]), model)[0])
    assert np.corrcoef(v[:, i], v[:, j])[0, 1] == pytest.approx(rho, abs=0.12)
    np.testing.assert_array_equal(sample_field(mesh, field, 3, rng=7), sample_field(mesh, field, 3, rng=7))


def test_macro_field_lognormal_and_refusals():
    from stochhom.structure.fields import MacroField, sample_field

    mesh = plate(20.0, 10.0, 20, 10)
    v = sample_field(mesh, MacroField("lognormal", 10.0, 0.5, 2.0), 200, rng=2)
    assert v.min() > 0 and np.log(v).std(axis=0, ddof=1).mean() == pytest.approx(0.5, rel=0.06)
    assert np.all(sample_field(mesh, MacroField("normal", 0.3, 0.0, 2.0), 2) == 0.3)
    with pytest.raises(InputError, match="field distribution"):
        MacroField("uniform", 0.3, 0.1, 1.0)
    with pytest.raises(InputError, match="positive median"):
        MacroField("lognormal", -1.0, 0.1, 1.0)
    with pytest.raises(InputError, match="correlation_length > 0"):
        MacroField("normal", 0.3, 0.1, 0.0)
    with pytest.raises(InputError, match="too large"):
        sample_field(plate(1e4, 1e4, 4, 4), MacroField("normal", 0.3, 0.1, 0.1))


@pytest.mark.parametrize("physics", ["elasticity", "conductivity"])
def test_prepared_assembly_equals_scikit_fem_forms(physics):
    """MacroProblem's precomputed element matrices give the matrix that scikit-fem's own
    bilinear form assembles with the same element-wise tensors (random SPD, one per element)."""
    from skfem import BilinearForm, asm
    from skfem.helpers import sym_grad

    from stochhom.structure import MacroProblem

    mesh = plate(3.0, 2.0, 5, 4)
    kw = {"fixed": {"left": "all"}} if physics == "elasticity" else {"temperature": {"left": 0.0}}
    problem = MacroProblem(mesh, physics, **kw)
    size, dim = problem.size, 2
    a = np.random.default_rng(0).standard_normal((problem.n_elements, size, size))
    tensors = a @ np.swapaxes(a, 1, 2) + size * np.eye(size)
    k, _ = problem.stiffness(tensors)
    nqp = problem.basis.X.shape[-1]
    cw = np.broadcast_to(np.moveaxis(tensors, 0, -1)[..., None], (size, size, problem.n_elements, nqp))

    @BilinearForm
    def form(u, v, w):
        if physics == "elasticity":
            eu, ev = sym_grad(u), sym_grad(v)
            s2 = np.sqrt(2.0)
            mu, mv = (eu[0, 0], eu[1, 1], s2 * eu[0, 1]), (ev[0, 0], ev[1, 1], s2 * ev[0, 1])
        else:
            mu, mv = tuple(u.grad), tuple(v.grad)
        return sum(mv[i] * w["C"][i, j] * mu[j] for i in range(size) for j in range(size))

    ref = asm(form, problem.basis, C=cw).toarray()
    assert dim == 2
    np.testing.assert_allclose(k.toarray(), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_fast_stress_equals_scikit_fem_interpolation():
    """The problem's precomputed element matrices give the same stress (and heat flux) as
    scikit-fem's own interpolation, on a graded mesh with varied SPD tensors."""
    import dataclasses

    from stochhom.structure import MacroProblem

    rng = np.random.default_rng(4)
    mesh = plate_with_hole(4.0, 1.0, 8, 6)
    prob = MacroProblem(mesh, "elasticity", fixed={"left": [0], "bottom": [1]}, traction={"right": [1.0, 0.0]})
    c = C2[None] * rng.uniform(0.5, 2.0, (prob.n_elements, 1, 1))
    sol = prob.solve(c)
    slow = dataclasses.replace(sol, problem=None)
    np.testing.assert_allclose(sol.stress(), slow.stress(), rtol=1e-10, atol=1e-12 * np.abs(slow.stress()).max())
    heat = MacroProblem(mesh, "conductivity", temperature={"left": 0.0}, flux={"right": 1.0})
    k = np.eye(2)[None] * rng.uniform(0.5, 2.0, (heat.n_elements, 1, 1))
    hs = heat.solve(k)
    np.testing.assert_allclose(hs.stress(), dataclasses.replace(hs, problem=None).stress(), rtol=1e-10,
                               atol=1e-12 * np.abs(hs.stress()).max())


def test_a_part_from_a_mesh_file_keeps_its_named_boundaries(tmp_path):
    """A Gmsh file written by meshio (through scikit-fem) reads back with its boundaries; the
    bar in tension on it is exact. Bad files are refused by name."""
    from stochhom.structure.parts import from_file

    path = tmp_path / "bar.msh"
    plate(4.0, 1.0, 8, 3).save(str(path))
    mesh = from_file(path)
    assert sorted(mesh.boundaries) == ["bottom", "left", "right", "top"] and mesh.dim() == 2
    sol = solve_elasticity(mesh, C2, fixed={"left": [0], "bottom": [1]}, traction={"right": [2.0, 0.0]})
    assert sol.at([4.0, 0.5])[0] == pytest.approx(2.0 * 4.0 / E_PS, rel=1e-10)
    with pytest.raises(InputError, match="does not exist"):
        from_file(tmp_path / "missing.msh")
    (tmp_path / "junk.msh").write_text("not a mesh")
    with pytest.raises(InputError, match="cannot read the mesh"):
        from_file(tmp_path / "junk.msh")
    from skfem import MeshTri

    MeshTri().refined(2).save(str(tmp_path / "bare.msh"))
    with pytest.raises(InputError, match="no named boundaries"):
        from_file(tmp_path / "bare.msh")
