"""Apparent properties under KUBC, SUBC and periodic conditions (voxel finite elements).

Exact references: a homogeneous window has the phase's tensor under every condition; a
voxel-aligned laminate has the arithmetic mean along its layers under KUBC (the exact
field, a uniform gradient, is affine on the boundary) and the harmonic mean across them
under SUBC (the exact flux is uniform); the periodic FE problem is the FFT solver's Q1
problem. Bounds: SUBC <= periodic <= KUBC in the Loewner order on every window (Huet).
"""

from __future__ import annotations

import numpy as np
import pytest

import stochhom as sh
from stochhom.errors import InputError

COND = [sh.Conductivity(2.0), sh.Conductivity(15.0)]
ELAS = [sh.IsotropicElastic(2.0, 0.3), sh.IsotropicElastic(40.0, 0.2)]


def _phase_tensor(m, dim):
    return m.tensor(dim)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("boundary", ["kubc", "subc", "mixed", "periodic_fe"])
@pytest.mark.parametrize("mat", [COND[1], ELAS[1], sh.AnisotropicElastic(np.diag([3.0, 4, 5, 2, 1.5, 1]) + 0.5)],
                         ids=["conductivity", "isotropic", "anisotropic"])
def test_homogeneous_window_gives_the_phase_tensor(dim, boundary, mat):
    if dim == 2 and isinstance(mat, sh.AnisotropicElastic):
        mat = sh.AnisotropicElastic(np.array([[3.0, 1.0, 0.2], [1.0, 4.0, -0.3], [0.2, -0.3, 2.0]]))
    image = np.zeros((5, 4, 3)[:dim], dtype=np.uint8)
    res = sh.homogenize(image, [mat], boundary=boundary, tol=1e-12)
    exact = _phase_tensor(mat, dim)
    assert np.abs(res.effective - exact).max() < 1e-10 * np.abs(exact).max()


@pytest.mark.parametrize("dim", [2, 3])
def test_laminate_kubc_along_and_subc_across_are_exact(dim):
    image = np.zeros((8, 6, 5)[:dim], dtype=np.uint8)
    image[2:5] = 1  # layers normal to axis 0, fraction 3/8
    k1, k2 = 2.0, 15.0
    arithmetic = 3 / 8 * k2 + 5 / 8 * k1
    harmonic = 1 / (3 / 8 / k2 + 5 / 8 / k1)
    kubc = sh.homogenize(image, COND, boundary="kubc", tol=1e-12).effective
    subc = sh.homogenize(image, COND, boundary="subc", tol=1e-12).effective
    per = sh.homogenize(image, COND, discretization="q1", tol=1e-12).effective
    assert np.allclose(np.diag(kubc)[1:], arithmetic, rtol=1e-9)
    assert np.isclose(subc[0, 0], harmonic, rtol=1e-9)
    assert np.allclose(np.diag(per), [harmonic] + [arithmetic] * (dim - 1), rtol=1e-9)
    # the other directions: the boundary condition stiffens (KUBC) or softens (SUBC)
    assert kubc[0, 0] > harmonic * (1 + 1e-3)
    assert np.all(np.diag(subc)[1:] < arithmetic * (1 - 1e-3))
    # the mixed condition admits the laminate's exact field in every direction
    mixed = sh.homogenize(image, COND, boundary="mixed", tol=1e-12).effective
    assert np.allclose(mixed, per, rtol=0, atol=1e-9 * arithmetic)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("mats", [COND, ELAS, [ELAS[0], sh.Void()]], ids=["conductivity", "elastic", "porous"])
def test_huet_ordering_on_random_windows(dim, mats):
    rng = np.random.default_rng(dim)
    shape = (14, 12) if dim == 2 else (8, 7, 6)
    image = (rng.random(shape) < 0.35).astype(np.uint8)
    if mats[1].is_void:  # pores inside the window (SUBC on the material's own boundary)
        image[0], image[-1] = 0, 0
        image[:, 0], image[:, -1] = 0, 0
        if dim == 3:
            image[:, :, 0], image[:, :, -1] = 0, 0
    kubc = sh.homogenize(image, mats, boundary="kubc", tol=1e-11).effective
    subc = sh.homogenize(image, mats, boundary="subc", tol=1e-11).effective
    mixed = sh.homogenize(image, mats, boundary="mixed", tol=1e-11).effective
    per_fe = sh.homogenize(image, mats, boundary="periodic_fe", tol=1e-11).effective
    per = sh.homogenize(image, mats, discretization="q1", tol=1e-11).effective
    scale = np.abs(per).max()
    assert np.abs(per_fe - per).max() < 1e-8 * scale  # the same discrete periodic problem
    # ersatz voids (1e-6 of the solid) shift SUBC by about that factor
    slack = 1e-8 if not mats[1].is_void else 1e-5
    assert np.linalg.eigvalsh(kubc - per).min() > -slack * scale
    assert np.linalg.eigvalsh(per - subc).min() > -slack * scale
    assert np.linalg.eigvalsh(kubc - subc).min() > 1e-3 * scale  # and they differ on a small window
    # Hazanov and Huet: the orthogonal mixed condition lies between the static and kinematic ones
    assert np.linalg.eigvalsh(kubc - mixed).min() > -slack * scale
    assert np.linalg.eigvalsh(mixed - subc).min() > -slack * scale


def test_pores_on_the_boundary_solve_at_the_default_tolerance():
    rng = np.random.default_rng(5)
    image = (rng.random((12, 12)) < 0.3).astype(np.uint8)  # pores cut the boundary
    mats = [ELAS[0], sh.Void()]
    res = {b: sh.homogenize(image, mats, boundary=b).effective for b in ("subc", "mixed", "kubc")}
    per = sh.homogenize(image, mats, discretization="q1").effective
    assert np.linalg.eigvalsh(res["kubc"] - per).min() > -1e-6 * np.abs(per).max()
    assert np.linalg.eigvalsh(per - res["subc"]).min() > -1e-6 * np.abs(per).max()


def test_pores_cut_by_the_boundary_leave_no_static_stiffness():
    image = np.zeros((10, 10), dtype=np.uint8)
    image[:, 4:6] = 1  # a pore slot through the window, normal to axis 1
    mats = [ELAS[0], sh.Void()]
    subc = sh.homogenize(image, mats, boundary="subc").effective
    kubc = sh.homogenize(image, mats, boundary="kubc").effective
    assert subc[1, 1] < 1e-4 * kubc[1, 1]  # traction on the slot's faces meets no material
    assert kubc[0, 0] > 0.5 * ELAS[0].tensor(2)[0, 0] * 0.8


def test_boundary_refusals():
    image = np.zeros((4, 4), dtype=np.uint8)
    with pytest.raises(InputError, match="unknown boundary"):
        sh.homogenize(image, COND, boundary="dirichlet")
    with pytest.raises(InputError, match="finite elements"):
        sh.homogenize(image, COND, boundary="kubc", discretization="rotated")
    with pytest.raises(InputError, match="torch"):
        sh.homogenize(image, COND, boundary="kubc", backend="torch")


# ----------------------------------------------------------------------------- the hierarchy by size
def test_boundary_hierarchy_orders_every_sve_and_brackets():
    from stochhom.statistics import boundary_hierarchy, bracket_size

    ensembles = [sh.generate("boolean", (n, n), 5, rng=100 + i, volume_fraction=0.3, radius=2.0)
                 for i, n in enumerate((8, 16, 24))]
    h = boundary_hierarchy(ensembles, [sh.Conductivity(1.0), sh.Conductivity(10.0)], "conductivity_eigenvalues_1",
                           tol=1e-10)
    assert list(h["condition"].values) == ["subc", "periodic", "kubc"]
    assert list(h["volume"].values) == [64.0, 256.0, 576.0] and np.all(h["count"].values == 5)
    z = h["samples"].values  # (condition, sample): SUBC <= periodic (Q1) <= KUBC on every SVE
    assert np.all(z[0] <= z[1] * (1 + 1e-9)) and np.all(z[1] <= z[2] * (1 + 1e-9))
    m = h["mean"].values
    gap = (m[2] - m[0]) / m[1]
    assert np.all(gap > 0)
    assert bracket_size(h, 10.0) == 64.0 and bracket_size(h, 1e-6) == np.inf
    assert bracket_size(h, float(gap[1:].max()) * 1.0001) <= 256.0


def test_bracket_size_needs_every_larger_size_within_tolerance():
    import xarray as xr

    from stochhom.statistics import bracket_size

    mean = np.array([[1.0, 1.8, 1.9, 1.95], [1.5, 2.0, 2.0, 2.0], [3.0, 2.1, 2.3, 2.05]])
    h = xr.Dataset({"mean": (("condition", "volume"), mean)},
                   coords={"condition": ["subc", "periodic", "kubc"], "volume": [1.0, 2.0, 3.0, 4.0]})
    # gaps 1.33, 0.15, 0.2, 0.05: at 0.16 the third size breaks the run that the second starts
    assert bracket_size(h, 0.16) == 4.0
    assert bracket_size(h, 0.21) == 2.0
    assert bracket_size(h, 0.01) == np.inf
    with pytest.raises(InputError, match="no condition"):
        bracket_size(h, 0.1, upper="mixed")


def test_cli_homogenize_with_a_boundary_condition(tmp_path, capsys):
    import json

    from stochhom.cli import main

    image = np.zeros((8, 6), dtype=np.uint8)
    image[2:5] = 1
    np.save(tmp_path / "lam.npy", image)
    (tmp_path / "p.toml").write_text('[phases.0]\nlaw = "Conductivity"\nk = 2.0\n[phases.1]\nlaw = "Conductivity"\n'
                                     'k = 15.0\n')
    out = tmp_path / "r.json"
    code = main(["homogenize", str(tmp_path / "lam.npy"), "--phases", str(tmp_path / "p.toml"), "--boundary", "subc",
                 "--tol", "1e-12", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "boundary subc" in printed
    data = json.loads(out.read_text())
    assert np.isclose(data["effective"][0][0], 1 / (3 / 8 / 15.0 + 5 / 8 / 2.0), rtol=1e-9)  # harmonic across
    assert data["info"]["boundary"] == "subc"


def test_hierarchy_on_windows_of_the_shipped_scan():
    # the synthetic grey-level scan (examples/make_examples.py): segmented by Otsu, windowed,
    # every window ordered SUBC <= periodic <= KUBC, and the gap shrinking with the window
    from pathlib import Path

    from stochhom.statistics import boundary_hierarchy

    scan = Path(__file__).parents[1] / "examples" / "scan_2d.tif"
    ds = sh.microstructure.load_specimens(scan, threshold="otsu")
    assert 0.25 < float(ds["phase"].mean()) < 0.32  # the Boolean model's 0.3, blurred and thresholded
    h = boundary_hierarchy([sh.windows(ds, 24, 48), sh.windows(ds, 48)], COND, "conductivity_eigenvalues_1")
    z = h["samples"].values
    assert np.all(z[0] <= z[1] * (1 + 1e-9)) and np.all(z[1] <= z[2] * (1 + 1e-9))
    m = h["mean"].values
    gap = (m[2] - m[0]) / m[1]
    assert gap[1] < gap[0]


@pytest.mark.parametrize("shape, periodic", [((3, 4), False), ((3, 4), True), ((2, 3, 2), False),
                                             ((2, 3, 2), True), ((1, 2, 3), True)])
@pytest.mark.parametrize("elastic", [False, True])
def test_stencil_assembly_equals_the_element_by_element_sum(shape, periodic, elastic):
    """The BSR matrix built from the 3^d stencil arrays is the plain sum of the element
    matrices over the elements, also on periodic cells of 1 or 2 voxels along an axis, where
    several offsets reach the same neighbour (their blocks add)."""
    from stochhom.fem.voxel_mesh import VoxelMesh

    rng = np.random.default_rng(len(shape) + 2 * periodic)
    labels = rng.integers(0, 2, size=shape)
    dim, ne = len(shape), (3 if len(shape) == 2 else 6) if elastic else len(shape)
    internal = np.stack([a @ a.T + np.eye(ne) for a in rng.standard_normal((2, ne, ne))])
    mesh = VoxelMesh(labels, internal, elastic, (1.0, 0.5, 2.0)[:dim], periodic=periodic)
    k = mesh.stiffness()
    assert k.format == "bsr" and k.blocksize == (mesh.m, mesh.m) and k.has_sorted_indices
    dense = np.zeros((mesh.n_dofs, mesh.n_dofs))
    dofs = (mesh.element_nodes()[:, :, None] * mesh.m + np.arange(mesh.m)).reshape(labels.size, -1)
    for e, lab in enumerate(labels.reshape(-1)):  # add.at: a 1-voxel periodic axis repeats a node
        np.add.at(dense, (dofs[e][:, None], dofs[e][None, :]), mesh.ke[lab])
    np.testing.assert_allclose(k.toarray(), dense, rtol=0, atol=1e-12 * np.abs(dense).max())
