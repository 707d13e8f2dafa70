"""Reading phase files and label images (stochhom.io).

Every law and parameter set of the phases-file format (module docstring of
stochhom.io) is loaded from a TOML file written to ``tmp_path``; every error names
the file or table at fault. Values round-trip through TOML exactly, except where a
unit conversion (K, G -> E, ν) introduces round-off (``rtol=1e-12``).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from stochhom.errors import InputError, MaterialError
from stochhom.io import LAWS, load_image, load_phases, phases_from_dict
from stochhom.materials import AnisotropicElastic, Conductivity, IsotropicElastic, Void

RTOL = 1e-12  # K, G -> E, ν -> K, G round trip: round-off only


def write(tmp_path: Path, text: str, name: str = "phases.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------- load_phases: every law
def test_docstring_example_loads(tmp_path):
    path = write(
        tmp_path,
        """
        [phases.0]
        law = "IsotropicElastic"     # or "Conductivity", "AnisotropicElastic", "Void"
        E = 3.0                      # Young's modulus, any consistent unit
        nu = 0.35

        [phases.1]
        law = "IsotropicElastic"
        K = 43.0                     # or bulk and shear moduli
        G = 30.0
        """,
    )
    phases = load_phases(path)
    assert sorted(phases) == [0, 1]
    assert phases[0] == IsotropicElastic(E=3.0, nu=0.35)
    assert_allclose((phases[1].bulk_modulus, phases[1].shear_modulus), (43.0, 30.0), rtol=RTOL)


def test_conductivity_scalar_and_matrices(tmp_path):
    path = write(
        tmp_path,
        """
        [phases.0]
        law = "Conductivity"
        k = 2.5

        [phases.1]
        law = "Conductivity"
        k = 3                        # integers are fine

        [phases.2]
        law = "Conductivity"
        k = [[3.0, 1.0], [1.0, 2.0]]

        [phases.3]
        law = "Conductivity"
        k = [[3.0, 0.5, 0.0], [0.5, 2.0, 0.0], [0.0, 0.0, 1.0]]
        """,
    )
    phases = load_phases(path)
    assert phases[0] == Conductivity(2.5)
    assert phases[1] == Conductivity(3.0)
    assert_allclose(phases[2].tensor(2), [[3.0, 1.0], [1.0, 2.0]], rtol=0)
    assert_allclose(phases[3].tensor(3), [[3.0, 0.5, 0.0], [0.5, 2.0, 0.0], [0.0, 0.0, 1.0]], rtol=0)


def test_anisotropic_elastic_from_mandel_voigt_and_cubic(tmp_path):
    c11, c12, c44 = 168.4, 121.4, 75.4
    voigt = np.zeros((6, 6))
    voigt[:3, :3] = c12
    voigt[range(3), range(3)] = c11
    voigt[range(3, 6), range(3, 6)] = c44
    mandel = voigt.copy()
    mandel[range(3, 6), range(3, 6)] = 2 * c44

    def toml_matrix(m):
        return "[" + ", ".join("[" + ", ".join(repr(float(x)) for x in row) + "]" for row in m) + "]"

    path = write(
        tmp_path,
        f"""
        [phases.0]
        law = "AnisotropicElastic"
        C = {toml_matrix(mandel)}

        [phases.1]
        law = "AnisotropicElastic"
        C_voigt = {toml_matrix(voigt)}

        [phases.2]
        law = "AnisotropicElastic"
        cubic = {{C11 = {c11}, C12 = {c12}, C44 = {c44}}}

        [phases.3]
        law = "AnisotropicElastic"
        [phases.3.cubic]
        C11 = {c11}
        C12 = {c12}
        C44 = {c44}
        """,
    )
    phases = load_phases(path)
    expected = AnisotropicElastic.from_cubic(c11, c12, c44).C
    for label in range(4):
        assert isinstance(phases[label], AnisotropicElastic)
        # C_voigt goes through √2·√2 = 2 (1 ulp); the others are exact
        assert_allclose(phases[label].C, expected, rtol=1e-15)


def test_void_and_mixed_labels(tmp_path):
    path = write(
        tmp_path,
        """
        [phases.5]
        law = "Void"

        [phases.0]
        law = "Conductivity"
        k = 1.0
        """,
    )
    phases = load_phases(path)
    assert set(phases) == {0, 5}
    assert isinstance(phases[5], Void)
    assert all(isinstance(k, int) for k in phases)


def test_every_documented_law_is_loadable():
    # One spec per parameter set listed in LAWS: the table in the docstring and LAWS agree.
    specs = {
        ("Conductivity", ("k",)): {"k": 1.0},
        ("IsotropicElastic", ("E", "nu")): {"E": 1.0, "nu": 0.3},
        ("IsotropicElastic", ("K", "G")): {"K": 1.0, "G": 0.5},
        ("AnisotropicElastic", ("C",)): {"C": np.eye(6).tolist()},
        ("AnisotropicElastic", ("C_voigt",)): {"C_voigt": np.eye(6).tolist()},
        ("AnisotropicElastic", ("cubic",)): {"cubic": {"C11": 2.0, "C12": 1.0, "C44": 1.0}},
        ("Void", ()): {},
    }
    assert set(specs) == {(law, s) for law, sets in LAWS.items() for s in sets}
    data = {str(i): {"law": law, **spec} for i, ((law, _), spec) in enumerate(specs.items())}
    phases = phases_from_dict(data)
    assert [type(phases[i]).__name__ for i in range(len(specs))] == [law for law, _ in specs]


def test_phases_from_dict_accepts_string_and_int_keys():
    phases = phases_from_dict({"0": {"law": "Void"}, 1: {"law": "Conductivity", "k": 2.0}})
    assert isinstance(phases[0], Void) and phases[1] == Conductivity(2.0)


def test_load_phases_accepts_str_paths(tmp_path):
    path = write(tmp_path, '[phases.0]\nlaw = "Void"\n')
    assert isinstance(load_phases(str(path))[0], Void)


def test_load_phases_reads_utf8_comments(tmp_path):
    path = tmp_path / "phases.toml"
    path.write_bytes('# matériau: époxy, ν = 0.35\n[phases.0]\nlaw = "IsotropicElastic"\nE = 3.0\nnu = 0.35\n'.encode())
    assert load_phases(path)[0] == IsotropicElastic(3.0, 0.35)


# --------------------------------------------------------------------------- load_phases: errors
def test_unknown_law_names_the_table(tmp_path):
    path = write(tmp_path, '[phases.0]\nlaw = "Void"\n[phases.1]\nlaw = "Plastic"\n')
    with pytest.raises(InputError, match=r"phases\.1\.law: unknown or missing law 'Plastic'; valid laws are"):
        load_phases(path)


def test_missing_law_names_the_table(tmp_path):
    path = write(tmp_path, "[phases.2]\nk = 1.0\n")
    with pytest.raises(InputError, match=r"phases\.2\.law: unknown or missing law None"):
        load_phases(path)


@pytest.mark.parametrize("law", ["3", "[1, 2]", "{a = 1}", "true"])
def test_law_that_is_not_a_string_is_rejected(tmp_path, law):
    path = write(tmp_path, f"[phases.0]\nlaw = {law}\n")
    with pytest.raises(InputError, match=r"phases\.0\.law: unknown or missing law"):
        load_phases(path)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            'law = "IsotropicElastic"\nE = 1.0\nnu = 0.3\ncolor = "red"',
            r"IsotropicElastic takes .*; got keys \['E', 'color', 'nu'\]",
        ),
        ('law = "IsotropicElastic"\nE = 1.0', r"IsotropicElastic takes \(E, nu\) or \(K, G\); got keys \['E'\]"),
        ('law = "IsotropicElastic"\nE = 1.0\nG = 0.3', r"IsotropicElastic takes .*; got keys \['E', 'G'\]"),
        ('law = "Conductivity"\nkappa = 1.0', r"Conductivity takes \(k\); got keys \['kappa'\]"),
        ('law = "Void"\nk = 0.0', r"Void takes no parameters; got keys \['k'\]"),
        (
            'law = "AnisotropicElastic"\nC = 1\nC_voigt = 1',
            r"AnisotropicElastic takes \(C\) or \(C_voigt\) or \(cubic\)",
        ),
    ],
)
def test_unknown_or_incomplete_keys_name_the_table(tmp_path, body, fragment):
    path = write(tmp_path, "[phases.0]\nlaw = \"Void\"\n[phases.7]\n" + body + "\n")
    with pytest.raises(InputError, match=r"phases\.7: " + fragment):
        load_phases(path)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('law = "IsotropicElastic"\nE = 1.0\nnu = 0.5', "Poisson's ratio nu = 0.5"),
        ('law = "IsotropicElastic"\nE = -1.0\nnu = 0.3', "E must be finite and > 0"),
        ('law = "IsotropicElastic"\nE = "abc"\nnu = 0.3', "E must be a real number"),
        ('law = "IsotropicElastic"\nK = 0.0\nG = 1.0', "K must be finite and > 0"),
        ('law = "Conductivity"\nk = -2.0', "k must be finite and > 0"),
        ('law = "Conductivity"\nk = [[1.0, 2.0], [2.0, 1.0]]', "not positive definite"),
        ('law = "Conductivity"\nk = [[1.0, 2.0], [0.0, 1.0]]', "not symmetric"),
        ('law = "Conductivity"\nk = [1.0, 2.0]', "scalar or a 2 x 2 / 3 x 3 matrix"),
        ('law = "AnisotropicElastic"\nC = [[1.0, 0.0], [0.0, 1.0]]', r"6 x 6 \(3D\) or 3 x 3 \(2D\)"),
        ('law = "AnisotropicElastic"\nC_voigt = [[1.0]]', "from_voigt expects a 6 x 6 matrix"),
        ('law = "AnisotropicElastic"\ncubic = {C11 = 1.0, C12 = 2.0, C44 = 1.0}', "not positive definite"),
    ],
)
def test_invalid_parameter_values_raise_material_error_naming_the_table(tmp_path, body, fragment):
    path = write(tmp_path, "[phases.3]\n" + body + "\n")
    with pytest.raises(MaterialError, match=r"^phases\.3: .*" + fragment):
        load_phases(path)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('law = "AnisotropicElastic"\ncubic = {C11 = 1.0, C12 = 0.5}', r"phases\.1\.cubic: expected a table with C11"),
        ('law = "AnisotropicElastic"\ncubic = 3.0', r"phases\.1\.cubic: expected a table with C11"),
        ('law = "AnisotropicElastic"\nC = [["a"]]', r"phases\.1: AnisotropicElastic: C must be"),
        ('law = "AnisotropicElastic"\nC = [[1.0, 2.0], [3.0]]', r"phases\.1: AnisotropicElastic: C must be"),
        ('law = "AnisotropicElastic"\ncubic = {C11 = "x", C12 = 0.5, C44 = 1.0}', r"phases\.1: "),
        ('law = "Conductivity"\nk = [["a", "b"], ["c", "d"]]', r"phases\.1: Conductivity: k must be"),
    ],
)
def test_malformed_values_name_the_table_once(tmp_path, body, fragment):
    path = write(tmp_path, "[phases.1]\n" + body + "\n")
    with pytest.raises(InputError, match="^" + fragment) as info:
        load_phases(path)
    assert str(info.value).count("phases.1") == 1


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"phases file '.*nowhere\.toml' does not exist"):
        load_phases(tmp_path / "nowhere.toml")


def test_directory_is_not_a_phases_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_phases(tmp_path)


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[phases.0\nlaw = Void\n", name="broken.toml")
    with pytest.raises(InputError, match=r"broken\.toml: invalid TOML"):
        load_phases(path)


def test_binary_file_is_reported_as_invalid_toml(tmp_path):
    path = tmp_path / "image.toml"
    path.write_bytes(b"\x93NUMPY\x01\x00\xff\xfe\x00garbage")
    with pytest.raises(InputError, match=r"image\.toml: .*(UTF-8|TOML)"):
        load_phases(path)


@pytest.mark.parametrize("key", ["abc", "1.5", "one"])
def test_non_integer_labels_are_rejected(tmp_path, key):
    path = write(tmp_path, f'[phases."{key}"]\nlaw = "Void"\n')
    with pytest.raises(InputError, match=rf"phases\.{key}: phase keys must be integer labels"):
        load_phases(path)


def test_negative_labels_are_rejected(tmp_path):
    path = write(tmp_path, '[phases.-1]\nlaw = "Void"\n')
    with pytest.raises(InputError, match=r"phases\.-1: phase labels must be >= 0"):
        load_phases(path)


def test_duplicate_labels_are_rejected():
    with pytest.raises(InputError, match=r"phases\.01: label 1 is given twice"):
        phases_from_dict({"1": {"law": "Void"}, "01": {"law": "Void"}})


def test_unknown_top_level_keys_are_rejected(tmp_path):
    path = write(tmp_path, 'solver = "cg"\n[phases.0]\nlaw = "Void"\n[grid]\nn = 3\n')
    with pytest.raises(InputError, match=r"unknown top-level keys \['grid', 'solver'\]"):
        load_phases(path)


def test_file_without_phases_is_rejected(tmp_path):
    path = write(tmp_path, "# nothing here\n")
    with pytest.raises(InputError, match=r"no \[phases\.<label>\] tables found"):
        load_phases(path)


@pytest.mark.parametrize("text", ["phases = 3\n", "[phases]\n"])
def test_phases_must_be_a_non_empty_table(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(InputError, match="phases: expected a table of phases keyed by label"):
        load_phases(path)


def test_phase_entry_must_be_a_table(tmp_path):
    path = write(tmp_path, "[phases]\n0 = 3.0\n")
    with pytest.raises(InputError, match=r"phases\.0: expected a table with a 'law' key, got 3\.0"):
        load_phases(path)


def test_phases_from_dict_uses_the_given_location():
    with pytest.raises(InputError, match=r"config\.materials\.2\.law: unknown or missing law"):
        phases_from_dict({"2": {"law": "Foo"}}, where="config.materials")


# --------------------------------------------------------------------------- load_image
@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 5)])
def test_load_npy_round_trip(tmp_path, shape):
    image = np.random.default_rng(0).integers(0, 3, shape).astype(np.int16)
    np.save(tmp_path / "img.npy", image)
    out = load_image(tmp_path / "img.npy")
    assert out.dtype == np.int16
    assert_array_equal(out, image)
    assert_array_equal(load_image(str(tmp_path / "img.npy")), image)


def test_load_npy_with_uppercase_suffix(tmp_path):
    image = np.arange(6).reshape(2, 3)
    with open(tmp_path / "IMG.NPY", "wb") as fh:
        np.save(fh, image)
    assert_array_equal(load_image(tmp_path / "IMG.NPY"), image)


def test_load_npz_single_array_without_key(tmp_path):
    image = np.eye(4, dtype=np.uint8)
    np.savez(tmp_path / "one.npz", labels=image)
    assert_array_equal(load_image(tmp_path / "one.npz"), image)


def test_load_npz_with_key(tmp_path):
    a, b = np.zeros((3, 3), dtype=int), np.ones((2, 2, 2), dtype=int)
    np.savez_compressed(tmp_path / "two.npz", a=a, b=b)
    assert_array_equal(load_image(tmp_path / "two.npz", key="b"), b)
    assert_array_equal(load_image(tmp_path / "two.npz", key="a"), a)


def test_load_npz_missing_key(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.ones(3))
    with pytest.raises(InputError, match=r"two\.npz has no array 'c'; it holds \['a', 'b'\]"):
        load_image(tmp_path / "two.npz", key="c")


def test_load_npz_several_arrays_need_a_key(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.ones(3))
    with pytest.raises(InputError, match=r"two\.npz holds arrays \['a', 'b'\]; say which one with key="):
        load_image(tmp_path / "two.npz")


def test_load_empty_npz_needs_arrays(tmp_path):
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(InputError, match=r"empty\.npz holds arrays \[\]"):
        load_image(tmp_path / "empty.npz")


@pytest.mark.parametrize("name", ["img.png", "img.csv", "img"])
def test_unsupported_suffix(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x00\x01")
    with pytest.raises(InputError, match=r"unsupported image format '.*'; use \.npy, \.npz or \.tif"):
        load_image(tmp_path / name)


def test_missing_image_file(tmp_path):
    with pytest.raises(InputError, match=r"image file '.*missing\.npy' does not exist"):
        load_image(tmp_path / "missing.npy")


def test_corrupt_npy_is_an_input_error(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"this is not a numpy file")
    with pytest.raises(InputError, match=r"bad\.npy: cannot read"):
        load_image(tmp_path / "bad.npy")


def test_corrupt_npz_is_an_input_error(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(InputError, match=r"bad\.npz: cannot read"):
        load_image(tmp_path / "bad.npz")


def test_object_array_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy: cannot read"):
        load_image(tmp_path / "obj.npy")


def test_npy_suffix_on_an_npz_archive_is_an_input_error(tmp_path):
    with open(tmp_path / "archive.npy", "wb") as fh:
        np.savez(fh, a=np.zeros(3))
    with pytest.raises(InputError, match=r"archive\.npy: cannot read it as a NumPy \.npy file \(it is an \.npz"):
        load_image(tmp_path / "archive.npy")


def test_npz_suffix_on_a_single_array_is_an_input_error(tmp_path):
    with open(tmp_path / "single.npz", "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(InputError, match=r"single\.npz: cannot read it as a NumPy \.npz file"):
        load_image(tmp_path / "single.npz")


def test_object_array_inside_npz_is_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", labels=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match=r"obj\.npz: cannot read array 'labels'"):
        load_image(tmp_path / "obj.npz")


def test_tif_without_tifffile_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "img.tif").write_bytes(b"II*\x00")
    monkeypatch.setitem(sys.modules, "tifffile", None)  # makes `import tifffile` fail
    with pytest.raises(InputError, match="needs the 'tifffile' package: pip install tifffile"):
        load_image(tmp_path / "img.tif")


@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_load_tif_round_trip(tmp_path, suffix):
    tifffile = pytest.importorskip("tifffile")
    image = np.random.default_rng(1).integers(0, 4, (3, 8, 9)).astype(np.uint8)
    tifffile.imwrite(tmp_path / f"img{suffix}", image, photometric="minisblack")
    assert_array_equal(load_image(tmp_path / f"img{suffix}"), image)
