r"""Physical units of a study: declared once, shown on every axis, table and summary.

stochhom computes with numbers: an effective conductivity carries the unit of the phase
conductivities, a modulus the unit of the phase moduli, and a length the unit of the
voxel size. A study or phase file may say what those units are::

    [study]
    units = { length = "um", modulus = "GPa" }

    # or, in a phases file
    units = { conductivity = "W/m/K" }

and the report, its figures and ``summary.json`` then label every quantity with them.
Without a declaration, properties are in *phase units* (the units of the phase laws,
which stochhom does not know) and lengths in *voxels* (voxel size 1) or *voxel-size
units* (another voxel size): the labels say so, consistently.

==================  ===================================================================
key                 unit of
==================  ===================================================================
``length``          the voxel size, so of every length (correlation length, radius, SVE
                    edge); areas and volumes are its powers (``µm²`` in 2D, ``µm³`` in 3D)
``modulus``         elastic moduli and stiffness entries (the phases' ``E``, ``K``, ``G``,
                    ``C11`` ...)
``conductivity``    conductivities (the phases' ``k``)
==================  ===================================================================

Unit strings are the user's, shown as written, except ``um`` which is shown as ``µm``.
Logarithms of properties, phase fractions and the anisotropy index are dimensionless
(``–``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InputError

__all__ = ["Units", "units_from_dict", "PHASE_UNITS", "UNIT_KEYS", "DIMENSIONLESS"]

#: What an undeclared property unit is called everywhere.
PHASE_UNITS = "phase units"

#: The keys a ``units`` table may have.
UNIT_KEYS = ("length", "modulus", "conductivity")

#: The symbol of a dimensionless quantity.
DIMENSIONLESS = "–"

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_DISPLAY = {"um": "µm", "micron": "µm", "microns": "µm", "micrometer": "µm", "micrometre": "µm"}
_CONDUCTIVITY = re.compile(r"^(log_)?(conductivity|mean_conductivity)(_|$)")
_MODULUS = re.compile(r"^(log_)?(stiffness|bulk_modulus|shear_modulus|youngs_modulus)(_|$)")
_LENGTH = {"correlation_length", "radius", "radius_std", "length", "mean_chord", "correlation_length_x",
           "correlation_length_y", "correlation_length_z", "fibre_radius", "fiber_radius", "rve_edge"}


def _display(unit: str) -> str:
    return _DISPLAY.get(unit.strip(), unit.strip())


@dataclass(frozen=True)
class Units:
    """The declared units of a study (``None``: not declared).

    Parameters
    ----------
    length, modulus, conductivity : str, optional
        Unit strings, e.g. ``"um"``, ``"GPa"``, ``"W/m/K"``.
    voxel_size : float
        The study's voxel size, in ``length`` units: it decides how an undeclared length
        unit is called (``voxels`` when it is 1).

    Examples
    --------
    >>> u = Units(length="um", modulus="GPa")
    >>> u.of("bulk_modulus"), u.of("conductivity_eigenvalues_0"), u.length_unit(2)
    ('GPa', 'phase units', 'µm²')
    >>> Units().length_unit(3)
    'voxels³'
    """

    length: str | None = None
    modulus: str | None = None
    conductivity: str | None = None
    voxel_size: float = 1.0

    @property
    def declared(self) -> bool:
        """Whether any unit was declared."""
        return any(getattr(self, k) for k in UNIT_KEYS)

    def length_unit(self, power: int = 1) -> str:
        """The unit of a length (``power=1``), an area (2) or a volume (3).

        Undeclared: ``voxels`` when the voxel size is 1, else ``voxel-size units``.
        """
        if self.length:
            base = _display(self.length)
        else:
            base = "voxels" if float(self.voxel_size) == 1.0 else "voxel-size units"
        if power == 1:
            return base
        sup = str(int(power)).translate(_SUPERSCRIPT)
        return f"{base}{sup}" if self.length or base == "voxels" else f"({base}){sup}"

    def of(self, name: str) -> str:
        """The unit of a property, target, parameter or descriptor ``name`` (without brackets).

        ``log_*`` targets, phase fractions, the anisotropy index, contrasts and other
        ratios are dimensionless (``–``); conductivities and moduli take the declared unit
        or ``phase units``; lengths the length unit; a name stochhom does not know is
        dimensionless only if it is a known ratio, else ``""`` (no unit is claimed).
        """
        n = str(name)
        if n.startswith("log_"):
            return DIMENSIONLESS
        if _CONDUCTIVITY.match(n):
            return _display(self.conductivity) if self.conductivity else PHASE_UNITS
        if _MODULUS.match(n):
            return _display(self.modulus) if self.modulus else PHASE_UNITS
        if n == "size":  # the swept SVE edge is a number of voxels, whatever the length unit
            return "voxels"
        if n in _LENGTH:
            return self.length_unit(1)
        if n == "specific_surface":
            return f"1/{self.length_unit(1)}"
        if n.startswith(("phase_fraction", "volume_fraction")) or n in {
                "anisotropy_index", "contrast", "aspect_ratio", "nu", "porosity", "fraction"}:
            return DIMENSIONLESS
        return ""

    def bracket(self, name: str) -> str:
        """``" [unit]"`` for a label, or ``""`` when :meth:`of` claims no unit."""
        u = self.of(name)
        return f" [{u}]" if u else ""

    def as_dict(self) -> dict[str, Any]:
        """The units as written to ``summary.json``: every key, undeclared ones by their
        label (``phase units``, ``voxels``), and which were declared."""
        return {"length": self.length_unit(1),
                "modulus": _display(self.modulus) if self.modulus else PHASE_UNITS,
                "conductivity": _display(self.conductivity) if self.conductivity else PHASE_UNITS,
                "declared": [k for k in UNIT_KEYS if getattr(self, k)]}

    def declaration(self) -> dict[str, str]:
        """The declared units only, as they would be written in a ``units`` table."""
        return {k: getattr(self, k) for k in UNIT_KEYS if getattr(self, k)}


def units_from_dict(data: Any, where: str = "units", voxel_size: float = 1.0) -> Units:
    """Validate a ``units`` table (``None`` or missing: nothing declared).

    Raises
    ------
    InputError
        Not a table, an unknown key, or a value that is not a non-empty string; the
        message names the key and the allowed keys.
    """
    if data is None:
        return Units(voxel_size=voxel_size)
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a table such as {{ length = \"um\", modulus = \"GPa\" }}, "
                         f"got {data!r}")
    unknown = sorted(set(data) - set(UNIT_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; allowed keys are {list(UNIT_KEYS)}")
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}.{key}: expected a unit string such as \"um\", \"GPa\" or \"W/m/K\", "
                             f"got {value!r}")
        out[key] = value.strip()
    return Units(voxel_size=voxel_size, **out)
