"""Tests of stochhom.units and of the units tables of phase files: every quantity gets the
unit of its kind, undeclared units are named the same way everywhere, bad tables are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from stochhom.errors import InputError
from stochhom.io import load_phases, load_units
from stochhom.units import DIMENSIONLESS, PHASE_UNITS, Units, units_from_dict


def test_each_kind_of_quantity_gets_its_unit() -> None:
    u = Units(length="um", modulus="GPa", conductivity="W/m/K")
    assert u.of("bulk_modulus") == u.of("stiffness_0_1") == u.of("shear_modulus") == "GPa"
    assert u.of("conductivity_eigenvalues_1") == u.of("mean_conductivity") == u.of("conductivity_0_1") == "W/m/K"
    assert u.of("correlation_length") == u.of("radius") == "µm" and u.of("specific_surface") == "1/µm"
    for name in ("log_bulk_modulus", "phase_fraction_1", "volume_fraction", "anisotropy_index", "contrast"):
        assert u.of(name) == DIMENSIONLESS
    assert u.of("something_unknown") == "" and u.bracket("something_unknown") == ""
    assert (u.length_unit(1), u.length_unit(2), u.length_unit(3)) == ("µm", "µm²", "µm³")
    assert u.bracket("bulk_modulus") == " [GPa]" and u.declared


def test_undeclared_units_are_phase_units_and_voxels() -> None:
    u = Units()
    assert not u.declared and u.of("bulk_modulus") == u.of("conductivity_eigenvalues_0") == PHASE_UNITS
    assert (u.length_unit(1), u.length_unit(2), u.length_unit(3)) == ("voxels", "voxels²", "voxels³")
    other = Units(voxel_size=0.5)  # lengths in the unit of a voxel size that is not 1
    assert other.length_unit(1) == "voxel-size units" and other.length_unit(3) == "(voxel-size units)³"
    assert u.as_dict() == {"length": "voxels", "modulus": PHASE_UNITS, "conductivity": PHASE_UNITS,
                           "declared": []}


@pytest.mark.parametrize(("table", "match"), [
    ({"temperature": "K"}, r"unknown key\(s\) \['temperature'\]; allowed keys are \['length', 'modulus'"),
    ({"length": ""}, "length: expected a unit string"),
    ({"modulus": 3.0}, "modulus: expected a unit string"),
    ("GPa", "expected a table"),
])
def test_bad_units_tables_are_refused(table, match) -> None:
    with pytest.raises(InputError, match=match):
        units_from_dict(table, "units")


def test_a_phases_file_may_declare_units(tmp_path: Path) -> None:
    path = tmp_path / "phases.toml"
    path.write_text('units = { modulus = "GPa" }\n[phases.0]\nlaw = "IsotropicElastic"\nE = 3.5\nnu = 0.35\n')
    assert set(load_phases(path)) == {0}
    assert load_units(path) == Units(modulus="GPa")
    path.write_text('units = { modulus = "GPa", pressure = "MPa" }\n[phases.0]\nlaw = "Void"\n')
    with pytest.raises(InputError, match="pressure"):
        load_phases(path)
    bare = tmp_path / "bare.toml"
    bare.write_text('[phases.0]\nlaw = "Void"\n')
    assert load_units(bare) == Units()
