r"""Local fields of one load case: derived quantities, statistics per phase, export.

The fields of a :class:`~stochhom.spectral.FieldResult` (from :func:`stochhom.solve`) are
Mandel vectors at voxel centres. This module derives the local quantities that the
literature reports, summarizes them per phase (first and second moments, histograms)
and writes them for ParaView.

Derived quantities
------------------
- von Mises stress, with the Mandel deviator :math:`\hat s = \hat\sigma - \tfrac13
  \operatorname{tr}\sigma\,(1, 1, 1, 0, 0, 0)` (orthonormal basis, so :math:`s:s =
  |\hat s|^2`):

  .. math:: \sigma_{\mathrm{vM}} = \sqrt{\tfrac32\, s:s}.

  In 2D (plane strain) the out-of-plane stress :math:`\sigma_{33}` enters; it is
  kept by :func:`stochhom.solve` when every phase has a 3D stiffness. The *in-plane*
  value ``von_mises_in_plane`` sets :math:`\sigma_{33} = 0`:
  :math:`\sqrt{\sigma_{11}^2 - \sigma_{11}\sigma_{22} + \sigma_{22}^2 + 3\sigma_{12}^2}`.
- energy density :math:`w = \tfrac12\,\sigma:\varepsilon = \tfrac12\,\hat\sigma\cdot\hat\varepsilon`
  (plane strain: :math:`\varepsilon_{i3} = 0`, so the in-plane product is exact); for
  conductivity :math:`w = \tfrac12\, q\cdot g`. Its volume average is
  :math:`\tfrac12\langle\sigma\rangle:\langle\varepsilon\rangle` (Hill–Mandel).
- flux magnitude :math:`|q|` (conductivity).

Export
------
``.vti`` (VTK ImageData, written here: origin, spacing and zlib-compressed cell arrays,
the smallest file and ParaView's native voxel grid), ``.vtu`` / ``.vtk`` (unstructured
hexahedra or quads, via meshio) and ``.xdmf`` (meshio, XML or raw-binary data, no HDF5).
Tensors are written as 9-component row-major arrays (``XX, XY, XZ, YX, ...``), which
ParaView reads as tensors, with the Mandel :math:`\sqrt2` removed from the shear terms.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["components", "quantities", "quantity", "von_mises", "energy_density", "flux_magnitude", "statistics",
           "to_xarray", "to_vtk", "to_xdmf", "save", "mandel_to_tensor", "VTK_SUFFIXES",
           "FIELD_SUFFIXES"]

AXES = ("x", "y", "z")
MANDEL = {2: ("11", "22", "12"), 3: ("11", "22", "33", "23", "13", "12")}
VTK_SUFFIXES = (".vti", ".vtu", ".vtk")
_SQ2 = np.sqrt(2.0)


def _dim(result: Any) -> int:
    return result.strain.ndim - 1


def _conductivity(result: Any) -> bool:
    return result.physics != "elasticity"


def components(result: Any) -> tuple[str, ...]:
    """Component names of the strain/stress (``"11", ...`` Mandel order) or gradient/flux (``"x", ...``)."""
    dim = _dim(result)
    return AXES[:dim] if _conductivity(result) else MANDEL[dim]


def quantities(result: Any) -> tuple[str, ...]:
    """Names accepted by :func:`quantity` for this result (tensor fields first, then scalars)."""
    if _conductivity(result):
        return ("gradient", "flux", "flux_magnitude", "energy_density")
    names = ["strain", "stress"]
    if _dim(result) == 3 or result.stress_out_of_plane is not None:
        names.append("von_mises")
    if _dim(result) == 2:
        names.append("von_mises_in_plane")
    return (*names, "energy_density")


def von_mises(result: Any, in_plane: bool = False) -> np.ndarray:
    r"""Von Mises equivalent stress :math:`\sqrt{\tfrac32 s:s}` at every voxel.

    Parameters
    ----------
    result : FieldResult
        An elasticity result.
    in_plane : bool
        2D only: set :math:`\sigma_{33} = 0` (the in-plane value) instead of using the
        plane-strain :math:`\sigma_{33}`.

    Returns
    -------
    numpy.ndarray, shape ``shape``
    """
    if _conductivity(result):
        raise InputError("von Mises stress is for elasticity; for conductivity use flux_magnitude")
    s = result.stress
    if _dim(result) == 2:
        if in_plane:
            s11, s22, s12 = s[0], s[1], s[2] / _SQ2
            return np.sqrt(s11**2 - s11 * s22 + s22**2 + 3.0 * s12**2)
        if result.stress_out_of_plane is None:
            raise InputError("sigma_33 of this plane-strain field is unknown (a phase has only a 2D stiffness or "
                             "voxels are composite); use von_mises_in_plane")
        o = result.stress_out_of_plane
        s = np.stack([s[0], s[1], o[0], o[1], o[2], s[2]])
    elif in_plane:
        raise InputError("in_plane is for 2D fields; a 3D field has the full von Mises stress")
    dev = s.copy()
    dev[:3] -= s[:3].mean(axis=0)
    return np.sqrt(1.5 * np.sum(dev**2, axis=0))


def energy_density(result: Any) -> np.ndarray:
    r"""Local energy density :math:`\tfrac12\hat\sigma\cdot\hat\varepsilon` (or :math:`\tfrac12 q\cdot g`)."""
    return 0.5 * np.sum(result.stress * result.strain, axis=0)


def flux_magnitude(result: Any) -> np.ndarray:
    """Euclidean norm of the flux, :math:`|q|` (conductivity)."""
    if not _conductivity(result):
        raise InputError("flux_magnitude is for conductivity; for elasticity use von_mises")
    return np.sqrt(np.sum(result.stress**2, axis=0))


_SHEAR = ("23", "13", "12")  # Mandel components that carry sqrt(2)


def quantity(result: Any, name: str = "stress", component: str | None = None) -> np.ndarray:
    """One local field: a component of a tensor field, or a derived scalar.

    Parameters
    ----------
    result : FieldResult
    name : str
        One of :func:`quantities` (``"strain"``/``"stress"`` are accepted for
        ``"gradient"``/``"flux"`` too).
    component : str, optional
        For a tensor field, one of :func:`components` (``"11"``... or ``"x"``...);
        ``None`` is allowed for scalars only.

    Returns
    -------
    numpy.ndarray, shape ``shape``
        Tensor components: :math:`\\sigma_{12}`, not the Mandel component
        :math:`\\sqrt2\\,\\sigma_{12}` the result stores (the shear components are divided by
        :math:`\\sqrt2`), as the literature's local-field statistics and ParaView's tensors report them.
    """
    cond = _conductivity(result)
    alias = {"strain": "gradient", "stress": "flux"} if cond else {}
    name = alias.get(name, name)
    names = quantities(result)
    if name not in names:
        raise InputError(f"unknown quantity {name!r} for this {result.physics} field; choose one of {list(names)}")
    if name in ("strain", "stress", "gradient", "flux"):
        comps = components(result)
        if component is None or str(component) not in comps:
            raise InputError(f"{name} needs a component, one of {list(comps)}; got {component!r}")
        data = result.strain if name in ("strain", "gradient") else result.stress
        value = data[comps.index(str(component))]
        if not cond and str(component) in _SHEAR:
            return value / math.sqrt(2.0)  # Mandel -> tensor component
        return value
    if component is not None:
        raise InputError(f"{name} is a scalar; pass component=None")
    if name == "von_mises":
        return von_mises(result)
    if name == "von_mises_in_plane":
        return von_mises(result, in_plane=True)
    if name == "flux_magnitude":
        return flux_magnitude(result)
    return energy_density(result)


def _labels(result: Any) -> np.ndarray:
    if result.phase is None:
        raise InputError("this FieldResult carries no phase image (built by hand?); pass phase= when creating it")
    return np.asarray(result.phase)


def _spacing(result: Any) -> tuple[float, ...]:
    dim = _dim(result)
    return tuple(result.spacing) if result.spacing is not None else (1.0,) * dim


def statistics(result: Any, quantity_name: str = "stress", component: str | None = "11", bins: Any = 50) -> Any:
    r"""Per-phase volume fraction, mean, standard deviation and histogram of a local field.

    For phase :math:`r` with voxel set :math:`\Omega_r` and fraction :math:`c_r`, the mean
    :math:`\langle a\rangle_r` and standard deviation :math:`\sqrt{\langle a^2\rangle_r -
    \langle a\rangle_r^2}` (population, voxel-weighted); :math:`\sum_r c_r\langle a\rangle_r
    = \langle a\rangle`.

    Parameters
    ----------
    result : FieldResult
    quantity_name, component : str
        As in :func:`quantity` (``component=None`` for scalars; the default ``"11"`` is
        dropped for a scalar quantity).
    bins : int or sequence of float
        Histogram bins, common to every phase (as :func:`numpy.histogram_bin_edges`,
        over the whole cell).

    Returns
    -------
    xarray.Dataset
        Along ``phase`` (the labels): ``volume_fraction``, ``mean``, ``std``, ``min``,
        ``max``, ``counts`` (``phase, bin``); ``edges`` (``bin_edge``); the cell's
        ``mean`` and ``std`` in ``attrs``.
    """
    import xarray as xr

    if quantity_name not in ("strain", "stress", "gradient", "flux") and component == "11":
        component = None
    a = quantity(result, quantity_name, component)
    labels = _labels(result)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{quantity_name} has non-finite values; check the solve converged")
    lo, hi = float(a.min()), float(a.max())
    pad = 0.0 if hi - lo > 1e-9 * max(abs(lo), abs(hi)) else 1e-6 * max(abs(lo), abs(hi), 1e-300)
    edges = np.histogram_bin_edges(a, bins=bins, range=(lo - pad, hi + pad) if np.ndim(bins) == 0 else None)
    present = np.unique(labels)
    rows = {k: [] for k in ("volume_fraction", "mean", "std", "min", "max", "counts")}
    for lab in present:
        v = a[labels == lab]
        rows["volume_fraction"].append(v.size / a.size)
        rows["mean"].append(v.mean())
        rows["std"].append(v.std())
        rows["min"].append(v.min())
        rows["max"].append(v.max())
        rows["counts"].append(np.histogram(v, bins=edges)[0])
    data = {k: ("phase", np.array(v)) for k, v in rows.items() if k != "counts"}
    data["counts"] = (("phase", "bin"), np.array(rows["counts"]))
    data["edges"] = ("bin_edge", edges)
    label = quantity_name if component is None else f"{quantity_name}_{component}"
    return xr.Dataset(data, coords={"phase": present},
                      attrs={"quantity": quantity_name, "component": "" if component is None else str(component),
                             "label": label, "mean": float(a.mean()), "std": float(a.std()),
                             "physics": result.physics})


def to_xarray(result: Any, units: Any = None) -> Any:
    """The fields as an :class:`xarray.Dataset` on voxel centres.

    Parameters
    ----------
    result : FieldResult
    units : stochhom.units.Units, optional
        The study's units; recorded in ``attrs`` and on the coordinates.

    Returns
    -------
    xarray.Dataset
        Dims ``x, y[, z]`` (as an ensemble sample: axis 0 is ``x``; coordinates are the
        voxel centres :math:`(i + \\tfrac12) h` in length units) and ``component``.
        Variables: ``phase``, ``strain`` and ``stress`` (Mandel components ``"11", "22",
        "33", "23", "13", "12"``; 2D: ``"11", "22", "12"``) or ``gradient`` and ``flux``
        (``"x", "y"[, "z"]``), the derived scalars of :func:`quantities`, and for a 2D
        elastic field ``stress_out_of_plane`` (``"33", "23", "13"``).
    """
    import xarray as xr

    dim = _dim(result)
    h = _spacing(result)
    shape = result.strain.shape[1:]
    dims = AXES[:dim]
    coords: dict[str, Any] = {ax: (ax, (np.arange(n) + 0.5) * hh) for ax, n, hh in zip(dims, shape, h)}
    comps = components(result)
    coords["component"] = ("component", list(comps))
    cond = _conductivity(result)
    names = ("gradient", "flux") if cond else ("strain", "stress")
    data: dict[str, Any] = {names[0]: (("component", *dims), result.strain),
                            names[1]: (("component", *dims), result.stress)}
    if result.phase is not None:
        data["phase"] = (dims, np.asarray(result.phase))
    for q in quantities(result):
        if q not in names:
            data[q] = (dims, quantity(result, q))
    if not cond and dim == 2 and result.stress_out_of_plane is not None:
        coords["out_of_plane_component"] = ("out_of_plane_component", ["33", "23", "13"])
        data["stress_out_of_plane"] = (("out_of_plane_component", *dims), result.stress_out_of_plane)
    attrs: dict[str, Any] = {
        "physics": result.physics, "notation": "vector" if cond else "mandel",
        f"mean_{names[0]}": np.asarray(result.mean_strain, dtype=float),
        f"mean_{names[1]}": np.asarray(result.mean_stress, dtype=float),
        "iterations": int(result.iterations), "converged": int(bool(result.converged)),
        "voxel_size": list(h),
    }
    for key in ("scheme", "discretization", "tol", "control"):
        if key in result.info:
            attrs[key] = result.info[key]
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    if units is not None:
        ds.attrs["units"] = str(units.declaration())
        for ax in dims:
            ds[ax].attrs["units"] = units.length_unit()
    return ds


def mandel_to_tensor(v: np.ndarray) -> np.ndarray:
    r"""Mandel vectors ``(ne, n)`` -> 3 x 3 tensors, row-major ``(n, 9)`` (ParaView's order).

    Shear terms lose the Mandel factor: :math:`\sigma_{12} = \hat\sigma_6/\sqrt2`. A 2D
    (plane) vector fills the in-plane block; the ``i3`` entries stay zero.
    """
    v = np.asarray(v, dtype=float)
    t = np.zeros((v.shape[1], 3, 3))
    if v.shape[0] == 3:
        pairs = [((0, 0), 0), ((1, 1), 1), ((0, 1), 2)]
    else:
        pairs = [((0, 0), 0), ((1, 1), 1), ((2, 2), 2), ((1, 2), 3), ((0, 2), 4), ((0, 1), 5)]
    for (i, j), a in pairs:
        val = v[a] if i == j else v[a] / _SQ2
        t[:, i, j] = val
        t[:, j, i] = val
    return t.reshape(-1, 9)


def _cell_arrays(result: Any, order: str) -> dict[str, np.ndarray]:
    """Cell arrays for VTK, cells in ``order`` ("C": last axis fastest; "F": x fastest)."""
    flat = (lambda a: np.asarray(a).ravel(order=order))  # noqa: E731
    out: dict[str, np.ndarray] = {}
    if result.phase is not None:
        out["phase"] = flat(result.phase).astype(np.int32)
    dim = _dim(result)
    ne = result.strain.shape[0]
    if _conductivity(result):
        for name, a in (("gradient", result.strain), ("flux", result.stress)):
            vec = np.zeros((a[0].size, 3))
            for k in range(dim):
                vec[:, k] = flat(a[k])
            out[name] = vec
    else:
        for name, a in (("strain", result.strain), ("stress", result.stress)):
            t = mandel_to_tensor(np.array([flat(a[k]) for k in range(ne)]))
            if name == "stress" and dim == 2 and result.stress_out_of_plane is not None:
                o = result.stress_out_of_plane
                t[:, 8] = flat(o[0])
                t[:, 5] = t[:, 7] = flat(o[1]) / _SQ2
                t[:, 2] = t[:, 6] = flat(o[2]) / _SQ2
            out[name] = t
    for q in quantities(result):
        if q not in ("strain", "stress", "gradient", "flux"):
            out[q] = flat(quantity(result, q))
    return out


def _mesh(result: Any) -> Any:
    import meshio

    dim = _dim(result)
    shape = result.strain.shape[1:]
    h = _spacing(result)
    axes = [np.arange(n + 1) * hh for n, hh in zip(shape, h)]
    grid = np.meshgrid(*axes, indexing="ij")
    points = np.zeros((grid[0].size, 3))
    for k in range(dim):
        points[:, k] = grid[k].ravel()
    node = np.arange(points.shape[0]).reshape([n + 1 for n in shape])
    if dim == 2:
        corners = [(0, 0), (1, 0), (1, 1), (0, 1)]
        kind = "quad"
    else:
        corners = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
        kind = "hexahedron"
    cells = np.stack([node[tuple(slice(c, c + n) for c, n in zip(cc, shape))].ravel() for cc in corners], axis=1)
    # int64 labels: VTK's legacy reader (ParaView's for .vtk) refuses meshio's "vtktypeint32" arrays
    data = {k: [v.astype(np.int64) if v.dtype.kind in "iu" else v] for k, v in _cell_arrays(result, "C").items()}
    return meshio.Mesh(points, [(kind, cells)], cell_data=data)


#: Uncompressed bytes per zlib block of a compressed ``.vti`` (VTK's default is 32 KiB).
_VTI_BLOCK = 1 << 16


def _vti_array(raw: bytes, compress: bool) -> str:
    """Base64 payload of one VTK XML ``binary`` DataArray with a UInt64 header: the byte count
    then the data, or, compressed (``vtkZLibDataCompressor``), the block table
    ``[nblocks, block size, last block size, compressed sizes...]`` encoded on its own
    followed by the zlib blocks, as VTK's reader expects."""
    if not compress:
        return base64.b64encode(np.array([len(raw)], dtype="<u8").tobytes() + raw).decode()
    import zlib

    blocks = [zlib.compress(raw[i:i + _VTI_BLOCK], 6) for i in range(0, len(raw), _VTI_BLOCK)] or [b""]
    last = len(raw) - (len(blocks) - 1) * _VTI_BLOCK
    header = np.array([len(blocks), _VTI_BLOCK, last, *map(len, blocks)], dtype="<u8").tobytes()
    return base64.b64encode(header).decode() + base64.b64encode(b"".join(blocks)).decode()


def _write_vti(result: Any, path: Path, compress: bool = True) -> None:
    """VTK XML ImageData, base64 binary with a UInt64 header, zlib-compressed by default."""
    dim = _dim(result)
    shape = tuple(result.strain.shape[1:]) + (0,) * (3 - dim)
    h = tuple(_spacing(result)) + (1.0,) * (3 - dim)
    extent = " ".join(f"0 {n}" for n in shape)  # point extents: n cells span n + 1 points; 2D: z from 0 to 0
    compressor = ' compressor="vtkZLibDataCompressor"' if compress else ""
    lines = ['<?xml version="1.0"?>',
             f'<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64"{compressor}>',
             f'  <ImageData WholeExtent="{extent}" Origin="0 0 0" Spacing="{h[0]!r} {h[1]!r} {h[2]!r}">',
             f'    <Piece Extent="{extent}">', '      <CellData Scalars="phase">']
    for name, a in _cell_arrays(result, "F").items():
        a = np.ascontiguousarray(a, dtype="<i4" if a.dtype.kind in "iu" else "<f8")
        ncomp = 1 if a.ndim == 1 else a.shape[1]
        vtype = "Int32" if a.dtype.kind == "i" else "Float64"
        lines.append(f'        <DataArray type="{vtype}" Name="{name}" NumberOfComponents="{ncomp}" '
                     f'format="binary">{_vti_array(a.tobytes(), compress)}</DataArray>')
    lines += ["      </CellData>", "    </Piece>", "  </ImageData>", "</VTKFile>", ""]
    path.write_text("\n".join(lines))


def to_vtk(result: Any, path: str | Path, compress: bool = True) -> Path:
    """Write the fields for ParaView as cell data on the voxel grid.

    Parameters
    ----------
    result : FieldResult
    path : str or pathlib.Path
        ``.vti``: VTK ImageData (origin 0, the voxel spacing; ParaView's voxel grid, the
        smallest file). ``.vtu`` / ``.vtk``: unstructured quads (2D) or hexahedra (3D)
        via meshio, which other tools read too.
    compress : bool
        ``.vti`` only: zlib-compress the arrays (``vtkZLibDataCompressor``, 64 KiB
        blocks), which ParaView and VTK read natively. The phase labels and the smooth
        parts of the fields shrink several-fold; ``False`` writes plain base64.

    Returns
    -------
    pathlib.Path
        The file written.

    Notes
    -----
    Cell arrays: ``phase``; ``strain``, ``stress`` as 9-component tensors (row-major,
    shear without the Mandel :math:`\\sqrt2`; 2D: the plane-strain tensor, with
    :math:`\\sigma_{33}` when known) or ``gradient``, ``flux`` as 3-component vectors;
    the derived scalars (``von_mises``, ``energy_density``, ...).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VTK_SUFFIXES:
        raise InputError(f"unknown VTK file suffix {path.suffix!r} in {str(path)!r}; use one of "
                         f"{list(VTK_SUFFIXES)} (or to_xdmf for .xdmf)")
    if suffix == ".vti":
        _write_vti(result, path, compress)
    else:
        import meshio

        meshio.write(path, _mesh(result), file_format="vtu" if suffix == ".vtu" else "vtk", binary=True)
    return path


#: Suffixes of :func:`save`: VTK, XDMF and netCDF (the :func:`to_xarray` dataset).
FIELD_SUFFIXES = (*VTK_SUFFIXES, ".xdmf", ".xmf", ".nc")


def save(result: Any, path: str | Path) -> Path:
    """Write the fields in the format that the suffix of ``path`` names.

    Parameters
    ----------
    result : FieldResult
    path : str or pathlib.Path
        ``.vti`` / ``.vtu`` / ``.vtk`` (:func:`to_vtk`), ``.xdmf`` / ``.xmf``
        (:func:`to_xdmf`, values inline) or ``.nc`` (the :func:`to_xarray` dataset as
        netCDF, with named components and units).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        Another suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FIELD_SUFFIXES:
        raise InputError(f"cannot tell the field format from {str(path)!r}: use one of the suffixes "
                         f"{list(FIELD_SUFFIXES)}")
    if suffix in (".xdmf", ".xmf"):
        return to_xdmf(result, path)
    if suffix == ".nc":
        to_xarray(result).to_netcdf(path)
        return path
    return to_vtk(result, path)


def _xdmf_item(a: np.ndarray, dims: str, path: Path, name: str, data_format: str) -> str:
    kind, prec = ("Int", 4) if a.dtype.kind in "iu" else ("Float", 8)
    a = np.ascontiguousarray(a, dtype="<i4" if kind == "Int" else "<f8")
    head = f'<DataItem Format="{data_format}" NumberType="{kind}" Precision="{prec}" Dimensions="{dims}"'
    if data_format == "XML":
        body = " ".join(map(repr, a.ravel().tolist()))
        return f"{head}>{body}</DataItem>"
    side = path.with_name(f"{path.stem}_{name}.bin")
    side.write_bytes(a.tobytes())
    return f'{head} Endian="Little">{side.name}</DataItem>'


def to_xdmf(result: Any, path: str | Path, data_format: str = "XML") -> Path:
    """Write the fields as XDMF on a structured voxel grid (``2DCoRectMesh`` / ``3DCoRectMesh``).

    Parameters
    ----------
    result : FieldResult
    path : str or pathlib.Path
        ``.xdmf`` or ``.xmf``.
    data_format : {"XML", "Binary"}
        ``"XML"``: values inline as text (one file). ``"Binary"``: raw little-endian
        arrays in side files next to it (``<stem>_<name>.bin``). HDF5 is not used:
        meshio's XDMF writer imports h5py even for XML data, so this writer is stochhom's.

    Returns
    -------
    pathlib.Path

    Notes
    -----
    XDMF lists dimensions slowest first (``z y x``) and stores x fastest; the cell
    arrays are those of :func:`to_vtk` (ParaView reads ``Tensor`` attributes as 9
    components, row-major).
    """
    path = Path(path)
    if path.suffix.lower() not in (".xdmf", ".xmf"):
        raise InputError(f"unknown XDMF file suffix {path.suffix!r} in {str(path)!r}; use '.xdmf' or '.xmf' "
                         f"(or to_vtk for {list(VTK_SUFFIXES)})")
    if data_format not in ("XML", "Binary"):
        raise InputError(f"data_format must be 'XML' or 'Binary' (HDF5 needs h5py, not installed), got {data_format!r}")
    # always a 3D co-rectilinear mesh, slowest axis first: VTK's XDMF readers put a 2DCoRectMesh in
    # the y-z plane and read no cell data on a single layer of points, so a 2D field is one layer of
    # cells in z, as thick as a voxel is wide
    dim = _dim(result)
    cell_shape = (1,) * (3 - dim) + tuple(result.strain.shape[1:])[::-1]
    nodes = " ".join(str(n + 1) for n in cell_shape)
    cells = " ".join(str(n) for n in cell_shape)
    h = (_spacing(result)[0],) * (3 - dim) + tuple(_spacing(result))[::-1]
    lines = ['<?xml version="1.0" ?>', '<Xdmf Version="3.0">', "  <Domain>",
             '    <Grid Name="fields" GridType="Uniform">',
             '      <Time Value="0.0"/>',  # pyvista's XDMF reader needs a time step, which VTK's readers accept
             f'      <Topology TopologyType="3DCoRectMesh" Dimensions="{nodes}"/>',
             '      <Geometry GeometryType="ORIGIN_DXDYDZ">',
             '        <DataItem Format="XML" NumberType="Float" Precision="8" Dimensions="3">0.0 0.0 0.0</DataItem>',
             f'        <DataItem Format="XML" NumberType="Float" Precision="8" Dimensions="3">'
             f'{" ".join(map(repr, h))}</DataItem>',
             "      </Geometry>"]
    for name, a in _cell_arrays(result, "F").items():
        ncomp = 1 if a.ndim == 1 else a.shape[1]
        kind = {1: "Scalar", 3: "Vector", 9: "Tensor"}[ncomp]
        dims = cells if ncomp == 1 else f"{cells} {ncomp}"
        lines.append(f'      <Attribute Name="{name}" AttributeType="{kind}" Center="Cell">')
        lines.append("        " + _xdmf_item(a, dims, path, name, data_format))
        lines.append("      </Attribute>")
    lines += ["    </Grid>", "  </Domain>", "</Xdmf>", ""]
    path.write_text("\n".join(lines))
    return path
