"""Per-sample properties of a study, out of the sweep store and into a table.

A sweep store (``RESULTS/samples.zarr``) stacks every SVE of a study along ``sample``:
tensors ``(sample, i, j)``, eigenvalues ``(sample, k)``, solver diagnostics per load case,
and the sweep parameters, seeds and indices as per-sample coordinates. :func:`samples_frame`
flattens it into one row per sample (a :class:`pandas.DataFrame`), with the unit of every
column in ``frame.attrs["units"]``; :func:`export_samples` writes that table to CSV, netCDF
or Parquet (``stochhom export``).

Column names
------------
* a per-sample coordinate or scalar variable keeps its name (``volume_fraction``, ``seed``,
  ``solve_time``);
* a tensor with dims ``(sample, i, j)`` becomes ``NAME_ij`` with 1-based indices
  (``conductivity_11``, ``conductivity_12``, ...; Mandel indices for a stiffness);
* any other array becomes ``NAME_k`` (0-based, one suffix per extra dimension):
  ``conductivity_eigenvalues_0`` (ascending), ``iterations_0`` (load case),
  ``phase_fraction_1`` (phase label).

Units are those declared in the study (``[study].units``, kept in ``RESULTS/study.json``),
as :class:`~stochhom.units.Units` names them; an empty unit means none is claimed (counts,
indices, flags and text).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["FORMATS", "SUFFIXES", "export_samples", "samples_frame", "column_units"]

#: The formats :func:`export_samples` writes.
FORMATS = ("csv", "netcdf", "parquet")

#: The file suffix of each format.
SUFFIXES = {"csv": ".csv", "netcdf": ".nc", "parquet": ".parquet"}

_INDEX = ("sample", "point", "replicate", "seed", "specimen")
_FLAGS = ("done", "converged", "status")
_SECONDS = {"solve_time", "warmup_time"}


def _store_path(results: str | Path) -> tuple[Path, Path]:
    """(results directory, store) of a results directory or of a store itself."""
    p = Path(results)
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist; give the results directory of 'stochhom run' (the one with "
                         "samples.zarr) or a sweep store")
    if (p / "samples.zarr").is_dir():
        return p, p / "samples.zarr"
    if p.is_dir() and ((p / ".zgroup").exists() or (p / "zarr.json").exists()):
        return p.parent, p
    raise InputError(f"{str(p)!r} is neither a results directory of 'stochhom run' (no samples.zarr in it) nor a "
                     "sweep store; run 'stochhom run STUDY.toml' first, or give the .zarr store of 'stochhom sweep'")


def _units(results: Path, ds: Any) -> Any:
    from ..units import units_from_dict

    declared = None
    info = results / "study.json"
    if info.is_file():
        try:
            declared = json.loads(info.read_text()).get("units")
        except (OSError, ValueError):
            declared = None
    return units_from_dict(declared, where=str(info), voxel_size=float(ds.attrs.get("voxel_size", 1.0)))


def column_units(column: str, base: str, units: Any, dim: int) -> str:
    """The unit of an exported column (``base``: the variable it comes from; ``""``: none claimed)."""
    if base in _SECONDS:
        return "s"
    if base == "volume":
        return units.length_unit(dim)
    if base == "residual":
        return "–"  # relative equilibrium residual
    if base in _INDEX or base in _FLAGS or base == "iterations":
        return ""
    return units.of(column) or units.of(base)


def _column_names(name: str, dims: tuple[str, ...], shape: tuple[int, ...]) -> list[str]:
    import itertools

    extra = shape[1:]
    if dims[1:] == ("i", "j"):
        return [f"{name}_{i + 1}{j + 1}" for i in range(extra[0]) for j in range(extra[1])]
    return [f"{name}_" + "_".join(str(k) for k in idx) for idx in itertools.product(*(range(n) for n in extra))]


def samples_frame(results: str | Path, all_samples: bool = False) -> Any:
    """One row per sample of a study: parameters, seeds, indices, flags and properties.

    Parameters
    ----------
    results : str or pathlib.Path
        The results directory of ``stochhom run`` (with ``samples.zarr``), or a sweep store.
    all_samples : bool
        Keep the samples not computed yet (``done`` is False: their properties are NaN);
        by default only the finished ones (converged or not: see ``converged``, ``status``).

    Returns
    -------
    pandas.DataFrame
        Columns in the order: indices (``sample``, ``point``, ``replicate``, ``seed``,
        ``specimen``), sweep parameters, ``done``, ``converged``, ``status``, then every
        property flattened (module docstring). ``frame.attrs["units"]`` maps each column
        to its unit, ``frame.attrs["source"]`` is the store and ``frame.attrs["study"]``
        the study name.

    Raises
    ------
    InputError
        A path that is not a results directory or a sweep store, or a store without
        ``done`` flags.
    """
    import numpy as np
    import pandas as pd

    from .sweep import open_store

    folder, store = _store_path(results)
    ds = open_store(store)
    if "done" not in ds or "sample" not in ds.dims:
        raise InputError(f"{str(store)!r} is not a sweep store (no 'done' flags along 'sample'); export works on the "
                         "samples.zarr of 'stochhom run' or the store of 'stochhom sweep'")
    ds = ds.load()
    units = _units(folder, ds)
    dim = int(ds.attrs.get("dim", 2))
    columns: dict[str, Any] = {}
    bases: dict[str, str] = {}

    def add(name: str, values: Any, base: str) -> None:
        columns[name] = values
        bases[name] = base

    per_sample = [c for c in ds.coords if ds[c].dims == ("sample",)]
    for name in _INDEX:
        if name in ds.variables:
            add(name, ds[name].values, name)
    for name in per_sample:
        if name not in _INDEX:
            add(name, ds[name].values, name)
    add("done", ds["done"].values.astype(bool), "done")
    if "converged" in ds:
        add("converged", ds["converged"].values.astype(bool), "converged")
    if "status" in ds:
        add("status", ds["status"].values.astype(str), "status")
    for name, var in ds.data_vars.items():
        if name in _FLAGS or var.dims[:1] != ("sample",):
            continue
        values = np.asarray(var.values)
        if var.ndim == 1:
            add(str(name), values, str(name))
            continue
        flat = values.reshape(values.shape[0], -1)
        for k, col in enumerate(_column_names(str(name), var.dims, values.shape)):
            add(col, flat[:, k], str(name))
    frame = pd.DataFrame(columns)
    if not all_samples:
        frame = frame[frame["done"]].reset_index(drop=True)
    frame.attrs["units"] = {c: column_units(c, bases[c], units, dim) for c in frame.columns}
    frame.attrs["source"] = str(store)
    frame.attrs["study"] = str(ds.attrs.get("study_name", ""))
    return frame


def _format_of(path: Path, format: str | None) -> str:
    by_suffix = {v: k for k, v in SUFFIXES.items()} | {".netcdf": "netcdf", ".pq": "parquet"}
    guessed = by_suffix.get(path.suffix.lower())
    if format is None:
        if guessed is None:
            raise InputError(f"cannot tell the format of {str(path)!r} from its suffix; give format= (one of "
                             f"{', '.join(FORMATS)}) or a file ending in {', '.join(SUFFIXES.values())}")
        return guessed
    if format not in FORMATS:
        raise InputError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")
    if guessed is not None and guessed != format:
        raise InputError(f"{str(path)!r} has the suffix of {guessed} but the format asked is {format}; name the file "
                         f"*{SUFFIXES[format]} or ask for format {guessed}")
    return format


def export_samples(
    results: str | Path, path: str | Path | None = None, format: str | None = None, all_samples: bool = False
) -> Path:
    """Write the per-sample table of a study (:func:`samples_frame`) to CSV, netCDF or Parquet.

    Parameters
    ----------
    results : str or pathlib.Path
        The results directory of ``stochhom run``, or a sweep store.
    path : str or pathlib.Path, optional
        Output file; default ``RESULTS/samples.<csv|nc|parquet>``.
    format : {"csv", "netcdf", "parquet"}, optional
        Default: from the suffix of ``path``, else ``"csv"``.
    all_samples : bool
        Also the samples not computed yet (``done`` False).

    Returns
    -------
    pathlib.Path
        The file written.

    Notes
    -----
    * **CSV**: two comment lines first, ``# stochhom samples of ...`` and ``# units: {JSON}``
      (column -> unit); read it with ``pandas.read_csv(path, comment="#")``. Text fields are
      quoted, so a ``#`` inside a status message is kept.
    * **netCDF**: one variable per column along ``sample``, each with a ``units`` attribute;
      ``done``/``converged`` are stored as bytes and read back as booleans by xarray.
    * **Parquet** (pyarrow): the units are in each field's metadata (``unit``) and, as JSON,
      under the schema metadata key ``stochhom.units``.
    """
    folder, _ = _store_path(results)
    if path is None:
        fmt = format or "csv"
        if fmt not in FORMATS:
            raise InputError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
        out = folder / f"samples{SUFFIXES[fmt]}"
    else:
        out = Path(path)
        fmt = _format_of(out, format) if format is not None or out.suffix else (format or "csv")
    if out.is_dir():
        raise InputError(f"{str(out)!r} is a directory; give a file name such as samples{SUFFIXES[fmt]}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("Parquet export needs pyarrow: pip install 'pyarrow>=14' (or export to csv or "
                             "netcdf)") from None
    frame = samples_frame(results, all_samples=all_samples)
    out.parent.mkdir(parents=True, exist_ok=True)
    units = frame.attrs["units"]
    if fmt == "csv":
        with open(out, "w", newline="", encoding="utf-8") as fh:
            fh.write(f"# stochhom samples of study {frame.attrs['study']!r} from {frame.attrs['source']}; "
                     f"{len(frame)} rows\n")
            fh.write(f"# units: {json.dumps(units, ensure_ascii=False)}\n")
            frame.to_csv(fh, index=False, quoting=csv.QUOTE_NONNUMERIC)
    elif fmt == "netcdf":
        ds = frame.set_index("sample").to_xarray() if "sample" in frame else frame.to_xarray()
        for name in ds.variables:
            ds[name].attrs["units"] = units.get(str(name), "")
        ds.attrs.update({"source": frame.attrs["source"], "study_name": frame.attrs["study"],
                         "kind": "stochhom samples table"})
        ds.to_netcdf(out)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        fields = [f.with_metadata({"unit": units.get(f.name, "")}) for f in table.schema]
        meta = dict(table.schema.metadata or {})
        meta[b"stochhom.units"] = json.dumps(units, ensure_ascii=False).encode()
        meta[b"stochhom.source"] = frame.attrs["source"].encode()
        table = table.cast(pa.schema(fields, metadata=meta))
        pq.write_table(table, out)
    return out
