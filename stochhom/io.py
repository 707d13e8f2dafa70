"""Reading and writing stochhom inputs and results.

* :func:`load_phases` / :func:`phases_from_dict`: phase laws from a TOML file or dict.
* :func:`load_units`: the declared units of a phases or study file (:mod:`stochhom.units`).
* :func:`load_image`: a label image from ``.npy``, ``.npz`` or ``.tif``/``.tiff``.

Phases file format (TOML), one table per phase label, and optionally the units of its
numbers (labels only: they change no result)::

    units = { modulus = "GPa" }  # or conductivity = "W/m/K"; and length = "um"

    [phases.0]
    law = "IsotropicElastic"     # or "Conductivity", "AnisotropicElastic", "Void"
    E = 3.0                      # Young's modulus, any consistent unit
    nu = 0.35

    [phases.1]
    law = "IsotropicElastic"
    K = 43.0                     # or bulk and shear moduli
    G = 30.0

Accepted keys per law:

* ``Conductivity``: ``k`` (number or d x d matrix);
* ``IsotropicElastic``: ``E`` and ``nu``, or ``K`` and ``G``;
* ``AnisotropicElastic``: ``C`` (Mandel matrix), ``C_voigt`` (Voigt matrix), or
  ``cubic = {C11 = ..., C12 = ..., C44 = ...}``;
* ``Void``: no parameters.
"""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, MaterialError
from .materials import AnisotropicElastic, Conductivity, IsotropicElastic, Material, Void
from .units import Units, units_from_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "LAWS",
    "damaged_variables",
    "load_image",
    "load_phases",
    "load_units",
    "open_dataset",
    "phases_from_dict",
    "save_dataset",
]

#: Phase laws accepted in phase files, with their parameter sets.
LAWS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Conductivity": (("k",),),
    "IsotropicElastic": (("E", "nu"), ("K", "G")),
    "AnisotropicElastic": (("C",), ("C_voigt",), ("cubic",)),
    "Void": ((),),
}


class _Located(Exception):
    """An error whose message already names its location in the file."""


def _material(where: str, spec: Mapping[str, Any]) -> Material:
    if not isinstance(spec, Mapping):
        raise InputError(f"{where}: expected a table with a 'law' key, got {spec!r}")
    law = spec.get("law")
    if not isinstance(law, str) or law not in LAWS:
        raise InputError(f"{where}.law: unknown or missing law {law!r}; valid laws are {sorted(LAWS)}")
    keys = set(spec) - {"law"}
    sets = LAWS[law]
    match = [s for s in sets if set(s) == keys]
    if not match:
        allowed = " or ".join("(" + ", ".join(s) + ")" if s else "no parameters" for s in sets)
        raise InputError(f"{where}: {law} takes {allowed}; got keys {sorted(keys)}")
    try:
        if law == "Conductivity":
            return Conductivity(spec["k"])
        if law == "IsotropicElastic":
            if "E" in keys:
                return IsotropicElastic(E=spec["E"], nu=spec["nu"])
            return IsotropicElastic.from_bulk_shear(spec["K"], spec["G"])
        if law == "AnisotropicElastic":
            if "C" in keys:
                return AnisotropicElastic(spec["C"])
            if "C_voigt" in keys:
                return AnisotropicElastic.from_voigt(spec["C_voigt"])
            cubic = spec["cubic"]
            if not isinstance(cubic, Mapping) or set(cubic) != {"C11", "C12", "C44"}:
                raise _Located(f"{where}.cubic: expected a table with C11, C12, C44, got {cubic!r}")
            return AnisotropicElastic.from_cubic(cubic["C11"], cubic["C12"], cubic["C44"])
        return Void()
    except _Located as exc:
        raise InputError(str(exc)) from None
    except MaterialError as exc:
        raise MaterialError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None


def phases_from_dict(data: Mapping[str, Any], where: str = "phases") -> dict[int, Material]:
    """Materials by label from a mapping ``{"0": {...}, "1": {...}}`` (see module docstring)."""
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"{where}: expected a table of phases keyed by label, e.g. [{where}.0]")
    out: dict[int, Material] = {}
    for key, spec in data.items():
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise InputError(f"{where}.{key}: phase keys must be integer labels (0, 1, ...)") from None
        if label < 0:
            raise InputError(f"{where}.{key}: phase labels must be >= 0")
        if label in out:
            raise InputError(f"{where}.{key}: label {label} is given twice")
        out[label] = _material(f"{where}.{key}", spec)
    return out


def load_phases(path: str | Path) -> dict[int, Material]:
    """Read a phases TOML file (a ``[phases.<label>]`` table per phase).

    Raises
    ------
    InputError
        Missing file, invalid TOML, unknown law or keys (the message names the table).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"phases file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file, so not TOML ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None
    extra = set(data) - {"phases", "units"}
    if extra:
        raise InputError(f"{path}: unknown top-level keys {sorted(extra)}; only [phases.<label>] tables and a "
                         "units table are allowed")
    units_from_dict(data.get("units"), f"{path}: units")  # checked here, read by load_units
    if "phases" not in data:
        raise InputError(f"{path}: no [phases.<label>] tables found")
    return phases_from_dict(data["phases"])


def load_units(path: str | Path) -> Units:
    """The ``units`` table of a phases or study TOML file (:mod:`stochhom.units`).

    A phases file declares it at the top level (``units = { modulus = "GPa" }``), a study
    file in ``[study]``; a file without one declares nothing.

    Raises
    ------
    InputError
        Missing or invalid file, or an invalid units table (the message names the key).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None
    table = data.get("units", (data.get("study") or {}).get("units") if isinstance(data.get("study"), dict) else None)
    return units_from_dict(table, f"{path}: units")


def load_image(path: str | Path, key: str | None = None) -> np.ndarray:
    """Load a 2D/3D integer label image.

    Parameters
    ----------
    path : str or Path
        ``.npy``; ``.npz`` (the array ``key``, or the only array); ``.tif``/``.tiff``
        (needs the ``tifffile`` package).
    key : str, optional
        Array name inside an ``.npz`` file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        try:
            loaded = np.load(path, allow_pickle=False)
        except Exception as exc:  # corrupt file, pickled objects, truncated data, ...
            raise InputError(f"{path}: cannot read it as a NumPy {suffix} file ({exc})") from None
        if suffix == ".npy":
            if not isinstance(loaded, np.ndarray):
                loaded.close()
                raise InputError(f"{path}: cannot read it as a NumPy .npy file (it is an .npz archive)")
            return loaded
        if isinstance(loaded, np.ndarray):
            raise InputError(f"{path}: cannot read it as a NumPy .npz file (it holds a single .npy array)")
        with loaded as z:
            names = list(z.keys())
            if key is None:
                if len(names) != 1:
                    raise InputError(f"{path} holds arrays {names}; say which one with key=")
                key = names[0]
            if key not in names:
                raise InputError(f"{path} has no array {key!r}; it holds {names}")
            try:
                return np.asarray(z[key])
            except Exception as exc:
                raise InputError(f"{path}: cannot read array {key!r} ({exc})") from None
    if suffix in (".tif", ".tiff"):
        try:
            import tifffile
        except ImportError:
            raise InputError("reading TIFF images needs the 'tifffile' package: pip install tifffile") from None
        try:
            return np.asarray(tifffile.imread(path))
        except Exception as exc:
            raise InputError(f"{path}: cannot read it as a TIFF image ({exc})") from None
    raise InputError(f"unsupported image format {suffix!r}; use .npy, .npz or .tif")


def save_dataset(ds: Any, path: str | Path) -> Path:
    """Write a stochhom dataset to netCDF (``.nc``) or zarr (``.zarr``), with its provenance attrs.

    An existing file of the same name is replaced, except a sweep store: its results
    took hours, so writing over it is refused.

    Raises
    ------
    InputError
        Unknown suffix, an unwritable path, or a sweep store at ``path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".nc", ".zarr"):
        raise InputError(f"unsupported dataset format {suffix!r}; use .nc (netCDF) or .zarr")
    if suffix == ".zarr" and (path / ".zattrs").is_file():
        try:
            kind = json.loads((path / ".zattrs").read_text()).get("kind")
        except (OSError, ValueError):
            kind = None
        if kind == "stochhom sweep":
            raise InputError(f"{str(path)!r} holds the results of a sweep; write to another path "
                             "(or delete the store yourself)")
    ds = ds.copy()
    for k, v in list(ds.attrs.items()):  # netCDF attributes cannot be booleans or None
        if isinstance(v, (bool, np.bool_)):
            ds.attrs[k] = int(v)
        elif v is None:
            ds.attrs[k] = ""
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".nc":
            ds.to_netcdf(path, engine="netcdf4")
        else:
            ds.to_zarr(path, mode="w", zarr_format=2, consolidated=False)
    except OSError as exc:
        # a half-written file (a full disk) is not a dataset: remove it rather than leave it to be read
        if not existed or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            _remove_quietly(path)
        reason = getattr(exc, "strerror", None) or exc
        raise InputError(f"cannot write {str(path)!r}: {reason}; nothing was written") from None
    return path


def _remove_quietly(path: Path) -> None:
    import shutil

    try:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    except OSError:
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def damaged_variables(path: str | Path) -> list[tuple[str, str]]:
    """The variables of a dataset whose data cannot be read, with the reason.

    Reads every variable (a zarr store chunk row by chunk row, so memory stays bounded)
    and lists ``(name, reason)`` for those that fail: a truncated or overwritten chunk,
    a corrupted netCDF block. For a zarr store the reason names the samples (the first
    axis) of the unreadable chunks. An empty list: every variable reads.

    Raises
    ------
    InputError
        ``path`` does not exist, or is not a dataset at all (no zarr group, not netCDF).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"dataset {str(path)!r} does not exist")
    bad: list[tuple[str, str]] = []
    if path.is_dir():
        import zarr

        for meta in sorted(path.glob(".z*")) + sorted(path.glob("*/.z*")):  # zarr v2 metadata: JSON
            try:
                json.loads(meta.read_bytes())
            except (OSError, ValueError) as exc:
                name = meta.parent.name if meta.parent != path else meta.name
                bad.append((name, f"metadata file {meta.relative_to(path)} is not valid JSON ({_first_line(exc)})"))
        if bad:
            return bad
        try:
            group = zarr.open_group(str(path), mode="r")
            arrays = sorted(group.arrays(), key=lambda item: item[0])
        except Exception as exc:
            raise InputError(f"{str(path)!r} is not a zarr store ({_first_line(exc)})") from None
        for name, arr in arrays:
            if arr.ndim == 0:
                try:
                    arr[...]
                except Exception as exc:
                    bad.append((name, _first_line(exc)))
                continue
            step = max(1, int(arr.chunks[0]))
            rows: list[tuple[int, int]] = []
            reason = ""
            for start in range(0, arr.shape[0], step):
                stop = min(start + step, arr.shape[0])
                try:
                    arr[start:stop]
                except Exception as exc:
                    rows.append((start, stop - 1))
                    reason = reason or _first_line(exc)
            if rows:
                where = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in rows)
                bad.append((name, f"index {where} along its first axis: {reason}"))
        return bad
    import xarray as xr

    try:
        ds = xr.open_dataset(path)
    except Exception as exc:
        raise InputError(f"cannot read {str(path)!r} as a netCDF dataset ({_first_line(exc)})") from None
    with ds:
        for name in list(ds.variables):
            try:
                ds[name].values  # noqa: B018 (read to check)
            except Exception as exc:
                bad.append((str(name), _first_line(exc)))
    return bad


def open_dataset(path: str | Path) -> Any:
    """Open a stochhom dataset written by :func:`save_dataset` or a sweep (netCDF or zarr)."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise InputError(f"dataset {str(path)!r} does not exist")
    try:
        if path.suffix.lower() == ".zarr" or path.is_dir():
            return xr.open_zarr(path, consolidated=False)
        return xr.open_dataset(path)
    except Exception as exc:  # report any unreadable file clearly
        raise InputError(f"cannot read {str(path)!r} as a netCDF or zarr dataset: {exc}") from None
