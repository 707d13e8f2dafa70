"""Local fields out: derived quantities, per-phase statistics, xarray, VTK/XDMF files, plots."""

from __future__ import annotations

import meshio
import numpy as np
import pytest

import stochhom as sh
from stochhom.errors import InputError
from stochhom.spectral.fields import _cell_arrays, mandel_to_tensor

ELASTIC = [sh.IsotropicElastic(1.0, 0.3), sh.IsotropicElastic(10.0, 0.2)]
COND = [sh.Conductivity(1.0), sh.Conductivity(10.0)]


def _image(shape, seed=0):
    return (np.random.default_rng(seed).random(shape) < 0.4).astype(int) * 3  # labels 0 and 3


CASES = {
    "elastic2d": lambda: sh.solve(_image((12, 10)), {0: ELASTIC[0], 3: ELASTIC[1]}, macro_strain=[0.01, 0, 0.005],
                                  spacing=0.5, tol=1e-8),
    "elastic3d": lambda: sh.solve(_image((6, 5, 4)), {0: ELASTIC[0], 3: ELASTIC[1]},
                                  macro_strain=[0.01, 0, 0, 0.002, 0, 0.005], spacing=(0.5, 1.0, 2.0), tol=1e-8),
    "cond2d": lambda: sh.solve(_image((12, 10)), {0: COND[0], 3: COND[1]}, macro_gradient=[1.0, 0.5], tol=1e-8),
    "cond3d": lambda: sh.solve(_image((6, 5, 4)), {0: COND[0], 3: COND[1]}, macro_gradient=[1.0, 0, 0.5],
                               spacing=0.25, tol=1e-8),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def res(request):
    return CASES[request.param]()


def _vtk_read(path):
    """Read a file with VTK's own readers, those ParaView uses: (dataset, {cell array: numpy})."""
    pytest.importorskip("vtkmodules")  # installed with porespy (through pyvista)
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOLegacy import vtkUnstructuredGridReader
    from vtkmodules.vtkIOXdmf2 import vtkXdmfReader
    from vtkmodules.vtkIOXML import vtkXMLImageDataReader, vtkXMLUnstructuredGridReader

    reader = {".vti": vtkXMLImageDataReader, ".vtu": vtkXMLUnstructuredGridReader, ".vtk": vtkUnstructuredGridReader,
              ".xdmf": vtkXdmfReader}[path.suffix]()
    reader.SetFileName(str(path))
    reader.Update()
    data = reader.GetOutputDataObject(0)
    cd = data.GetCellData()
    return data, {cd.GetArrayName(i): vtk_to_numpy(cd.GetArray(i)) for i in range(cd.GetNumberOfArrays())}


def test_result_keeps_phase_labels_and_spacing(res):
    assert res.phase.shape == res.strain.shape[1:]
    assert set(np.unique(res.phase)) <= {0, 3}
    assert len(res.spacing) == res.phase.ndim


def test_energy_density_averages_to_hill_mandel(res):
    assert np.isclose(res.energy_density.mean(), 0.5 * res.mean_stress @ res.mean_strain, rtol=1e-6)


def test_per_phase_means_weighted_by_fractions_give_the_mean(res):
    name = "stress" if res.physics == "elasticity" else "flux"
    comp = "11" if res.physics == "elasticity" else "x"
    st = res.statistics(name, comp, bins=10)
    assert np.isclose(st["volume_fraction"].sum(), 1.0)
    assert np.isclose(float((st["volume_fraction"] * st["mean"]).sum()), res.mean_stress[0], rtol=1e-12)
    assert int(st["counts"].sum()) == res.phase.size


def test_laminate_normal_stress_is_uniform():
    image = np.zeros((4, 10), dtype=int)
    image[:, 6:] = 1  # layers normal to y
    r = sh.solve(image, ELASTIC, macro_strain=[0.0, 0.01, 0.0], tol=1e-10)
    st = r.statistics("stress", "22")
    assert float(st["std"].max()) <= 1e-8 * abs(r.mean_stress[1])
    # plane strain sigma_33 = lambda (e11 + e22) per phase, so von Mises differs per phase
    lam = np.array([m.lame_lambda for m in ELASTIC])[image]
    np.testing.assert_allclose(r.stress_out_of_plane[0], lam * (r.strain[0] + r.strain[1]), rtol=1e-10, atol=1e-14)


def test_to_xarray_round_trip(res):
    ds = res.to_xarray()
    dim = res.phase.ndim
    names = ("strain", "stress") if res.physics == "elasticity" else ("gradient", "flux")
    np.testing.assert_array_equal(ds[names[1]].values, res.stress)
    np.testing.assert_array_equal(ds["phase"].values, res.phase)
    for k, ax in enumerate(("x", "y", "z")[:dim]):
        np.testing.assert_allclose(ds[ax].values, (np.arange(res.phase.shape[k]) + 0.5) * res.spacing[k])
    assert list(ds["component"].values) == list(sh.spectral.fields.components(res))
    assert ds.attrs["iterations"] == res.iterations


def test_mandel_to_tensor_removes_sqrt2():
    t = mandel_to_tensor(np.array([[1.0], [2.0], [3.0], [4 * np.sqrt(2)], [5 * np.sqrt(2)], [6 * np.sqrt(2)]]))
    np.testing.assert_allclose(t.reshape(3, 3), [[1, 6, 5], [6, 2, 4], [5, 4, 3]])


@pytest.mark.parametrize("suffix", [".vtu", ".vtk"])
def test_meshio_files_round_trip(res, tmp_path, suffix):
    path = res.to_vtk(tmp_path / f"f{suffix}")
    m = meshio.read(path)
    np.testing.assert_allclose(m.points.max(axis=0)[: res.phase.ndim],
                               np.array(res.phase.shape) * np.array(res.spacing))
    cd = {k: v[0] for k, v in m.cell_data.items()}
    np.testing.assert_array_equal(cd["phase"], res.phase.ravel())
    ne = res.stress.shape[0]
    if res.physics == "elasticity":
        t = mandel_to_tensor(res.stress.reshape(ne, -1))
        np.testing.assert_allclose(cd["stress"][:, [0, 1, 4]], t[:, [0, 1, 4]])
        np.testing.assert_allclose(cd["energy_density"], res.energy_density.ravel())
    else:
        np.testing.assert_allclose(cd["flux"][:, :ne], res.stress.reshape(ne, -1).T)


@pytest.mark.parametrize("kind", ["vti", "vti-plain", "vtu", "vtk", "xdmf", "xdmf-binary"])
def test_vtk_reads_every_file_as_paraview_does(res, tmp_path, kind):
    # VTK's readers (ParaView's) see the grid, the spacing and every cell array with its values
    if kind.startswith("xdmf"):
        path = res.to_xdmf(tmp_path / "f.xdmf", data_format="Binary" if kind.endswith("binary") else "XML")
    else:
        path = res.to_vtk(tmp_path / f"f.{kind[:3]}", compress=kind != "vti-plain")
    data, cells = _vtk_read(path)
    dim = res.phase.ndim
    assert data.GetNumberOfCells() == res.phase.size
    bounds = np.array(data.GetBounds()).reshape(3, 2)
    np.testing.assert_allclose(bounds[:dim, 1] - bounds[:dim, 0], np.array(res.phase.shape) * np.array(res.spacing))
    order = "C" if kind in ("vtu", "vtk") else "F"  # meshio's cells run over z fastest, the grids over x
    assert set(cells) == set(_cell_arrays(res, "F"))  # phase, the two fields, the derived scalars
    np.testing.assert_array_equal(cells["phase"], res.phase.ravel(order=order))
    np.testing.assert_allclose(cells["energy_density"], res.energy_density.ravel(order=order), rtol=1e-15)
    ne = res.stress.shape[0]
    if res.physics == "elasticity":
        t = mandel_to_tensor(np.array([res.stress[k].ravel(order=order) for k in range(ne)]))
        np.testing.assert_allclose(cells["stress"][:, [0, 1, 4]], t[:, [0, 1, 4]], rtol=1e-15)
        np.testing.assert_allclose(cells["von_mises"], res.von_mises.ravel(order=order), rtol=1e-15)
    else:
        np.testing.assert_allclose(cells["flux"][:, :ne], np.array([res.stress[k].ravel(order=order)
                                                                   for k in range(ne)]).T, rtol=1e-15)
    if kind == "vti":  # compression pays on the labels: the compressed file is smaller than the plain one
        assert path.stat().st_size < res.to_vtk(tmp_path / "plain.vti", compress=False).stat().st_size


def test_save_dispatches_on_the_suffix(tmp_path):
    import xarray as xr

    r = CASES["cond2d"]()
    for suffix in (".vti", ".vtu", ".vtk", ".xdmf", ".nc"):
        assert r.save(tmp_path / f"f{suffix}").exists()
    ds = xr.open_dataset(tmp_path / "f.nc")
    np.testing.assert_array_equal(ds["phase"].values, r.phase)
    with pytest.raises(InputError, match="suffixes"):
        r.save(tmp_path / "f.h5")


def test_bad_inputs(tmp_path):
    r = CASES["elastic3d"]()
    with pytest.raises(InputError, match=r"\.vti"):
        r.to_vtk(tmp_path / "f.png")
    with pytest.raises(InputError, match="xdmf"):
        r.to_xdmf(tmp_path / "f.h5")
    with pytest.raises(InputError, match="unknown quantity"):
        r.quantity("pressure")
    with pytest.raises(InputError, match="component"):
        r.quantity("stress", "99")
    import matplotlib

    matplotlib.use("Agg")
    with pytest.raises(InputError, match="out of range"):
        sh.plot.field(r, slice={"z": 9})


@pytest.mark.parametrize("case", ["elastic2d", "elastic3d", "cond2d"])
def test_plot_field_draws_image_and_phase_outlines(case):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = CASES[case]()
    q = "von_mises" if case.startswith("elastic") else "flux_magnitude"
    ax = sh.plot.field(r, q)
    assert len(ax.images) == 1 and len(ax.collections) >= 1
    ax2 = sh.plot.field_statistics(r, "energy_density", None)
    assert len(ax2.patches) == 2
    plt.close("all")


def test_shear_components_are_tensor_components():
    res = CASES["elastic2d"]()
    # the result stores Mandel components (sqrt2 sigma_12); quantities and statistics report sigma_12
    np.testing.assert_allclose(res.quantity("stress", "12"), res.stress[2] / np.sqrt(2.0), rtol=1e-15)
    st = res.statistics("stress", "12", bins=10)
    assert np.isclose(float((st["volume_fraction"] * st["mean"]).sum()), res.mean_stress[2] / np.sqrt(2.0),
                      rtol=1e-12)
    np.testing.assert_allclose(res.quantity("stress", "11"), res.stress[0], rtol=0)  # normal ones unchanged
