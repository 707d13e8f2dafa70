"""The ``stochhom`` command line: the README's main job and its error paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stochhom as sh
from stochhom.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_IMAGE = ROOT / "examples" / "fibres_2d.npy"
EXAMPLE_PHASES = ROOT / "examples" / "glass_epoxy.toml"


def test_homogenize_example_prints_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "result.json"
    assert main(["homogenize", str(EXAMPLE_IMAGE), "--phases", str(EXAMPLE_PHASES), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "effective stiffness (Mandel notation) [11, 22, 12]" in text
    data = json.loads(out.read_text())
    effective = np.array(data["effective"])
    # the CLI reports exactly what the Python API computes
    ref = sh.homogenize(np.load(EXAMPLE_IMAGE), sh.io.load_phases(EXAMPLE_PHASES)).effective
    np.testing.assert_allclose(effective, ref, rtol=1e-12)
    assert data["notation"] == "Mandel plane strain (11, 22, 12)"
    assert all(data["converged"])
    assert data["info"]["scheme"] == "cg" and data["stochhom_version"] == sh.__version__


def test_homogenize_options_reach_the_solver(tmp_path, capsys) -> None:
    image = np.zeros((8, 8, 8), dtype=np.uint8)
    image[:, :, 4:] = 1
    np.save(tmp_path / "lam.npy", image)
    (tmp_path / "p.toml").write_text(
        '[phases.0]\nlaw = "Conductivity"\nk = 1.0\n[phases.1]\nlaw = "Conductivity"\nk = 3.0\n'
    )
    out = tmp_path / "r.json"
    code = main(["homogenize", str(tmp_path / "lam.npy"), "--phases", str(tmp_path / "p.toml"), "--scheme", "basic",
                 "--discretization", "fourier", "--tol", "1e-8", "--quiet", "--out", str(out)])
    assert code == 0 and capsys.readouterr().out == ""
    data = json.loads(out.read_text())
    np.testing.assert_allclose(np.diag(data["effective"]), [2.0, 2.0, 1.5], rtol=1e-7)
    assert data["info"]["scheme"] == "basic" and data["info"]["tol"] == 1e-8


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["missing.npy", "--phases", str(EXAMPLE_PHASES)], "does not exist"),
        ([str(EXAMPLE_IMAGE), "--phases", "missing.toml"], "does not exist"),
        ([str(EXAMPLE_IMAGE), "--phases", str(EXAMPLE_PHASES), "--tol", "0"], "tol"),
    ],
)
def test_errors_exit_2_with_a_message(args, match, capsys) -> None:
    assert main(["homogenize", *args]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and match in err
    assert "Traceback" not in err


def test_bad_phases_file_names_the_table(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[phases.0]\nlaw = "IsotropicElastic"\nE = 1.0\nnu = 0.7\n[phases.1]\nlaw = "Void"\n')
    assert main(["homogenize", str(EXAMPLE_IMAGE), "--phases", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "phases.0" in err and "0.7" in err


def test_unknown_choice_is_rejected_by_argparse(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["homogenize", str(EXAMPLE_IMAGE), "--phases", str(EXAMPLE_PHASES), "--scheme", "fast"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_runs() -> None:
    """The installed entry point (what the README's main-job command calls)."""
    exe = Path(sys.executable).with_name("stochhom")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert sh.__version__ in proc.stdout


# ------------------------------------------------------------------------------ helpers
CONDUCTIVITY_PHASES = '[phases.0]\nlaw = "Conductivity"\nk = 1.0\n[phases.1]\nlaw = "Conductivity"\nk = 10.0\n'

TINY_STUDY = """\
[study]
output = "out.zarr"
seed = 3

[generator]
name = "gaussian"
shape = [24, 24]
correlation_length = 2.5

[sweep]
replicates = 2
[sweep.parameters]
volume_fraction = [0.2, 0.4]
contrast = [10.0, 100.0]

[phases.0]
law = "Conductivity"
k = 1.0
[phases.1]
law = "Conductivity"
k = "contrast"
"""

GAUSSIAN_ARGS = ["--shape", "16", "16", "--n", "3", "--seed", "7", "--set", "volume_fraction=0.3",
                 "--set", "correlation_length=2"]


def _single_error_line(err: str, command: str, match: str) -> None:
    """A clean failure: exactly one line on stderr, naming the command and the problem, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"stochhom {command}: error: "), err
    assert match in lines[0], err
    assert "Traceback" not in err


def _ensemble_file(tmp_path: Path, name: str = "ens.nc") -> Path:
    out = tmp_path / name
    assert main(["generate", "gaussian", *GAUSSIAN_ARGS, "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory) -> Path:
    """A tiny sweep (2 x 2 points x 2 replicates on a 24^2 grid) run once through the CLI."""
    d = tmp_path_factory.mktemp("sweep")
    (d / "study.toml").write_text(TINY_STUDY)
    assert main(["sweep", str(d / "study.toml"), "--workers", "1", "--quiet"]) == 0
    return d / "out.zarr"


# ----------------------------------------------------------------------------- generate
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_generate_writes_the_api_ensemble_bit_for_bit(tmp_path, capsys, suffix) -> None:
    out = tmp_path / f"ens{suffix}"
    assert main(["generate", "gaussian", *GAUSSIAN_ARGS, "--voxel-size", "0.5", "--out", str(out)]) == 0
    assert f"wrote {out}: 3 sample(s) of gaussian (16, 16)" in capsys.readouterr().out
    ref = sh.generate("gaussian", (16, 16), n=3, rng=7, voxel_size=0.5, volume_fraction=0.3, correlation_length=2)
    got = sh.io.open_dataset(out).load()
    assert got["phase"].dtype == ref["phase"].dtype and got["phase"].dims == ref["phase"].dims
    np.testing.assert_array_equal(got["phase"].values, ref["phase"].values)
    for c in ("seed", "specimen", "x", "y", "volume_fraction", "correlation_length"):
        np.testing.assert_array_equal(got[c].values, ref[c].values)
    assert got.attrs == ref.attrs  # provenance: generator, parameters, entropy (the seed), voxel size, version
    assert got.attrs["entropy"] == "7" and got.attrs["voxel_size"] == 0.5
    assert json.loads(got.attrs["parameters"]) == {"volume_fraction": 0.3, "correlation_length": 2}


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.25", 0.25), ("3", 3), ("1e-3", 1e-3), ("[0.2, 0.3]", [0.2, 0.3]), ("exponential", "exponential"),
     ('"exponential"', "exponential"), ("true", True)],
)
def test_set_values_are_toml(text, value) -> None:
    from stochhom.cli import _parse_value

    parsed = _parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_generate_set_numbers_and_strings_reach_the_generator(tmp_path) -> None:
    out = tmp_path / "e.nc"
    assert main(["generate", "gaussian", "--shape", "16", "16", "--seed", "2", "--set", "volume_fraction = 0.25",
                 "--set", "correlation_length=3", "--set", "model=exponential", "--out", str(out), "--quiet"]) == 0
    ref = sh.generate("gaussian", (16, 16), rng=2, volume_fraction=0.25, correlation_length=3, model="exponential")
    got = sh.io.open_dataset(out).load()
    np.testing.assert_array_equal(got["phase"].values, ref["phase"].values)
    assert json.loads(got.attrs["parameters"]) == {"volume_fraction": 0.25, "correlation_length": 3,
                                                   "model": "exponential"}


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["gaussian", "--set", "volume_fraction"], "--set expects KEY=VALUE"),
        (["gaussian", "--set", "=0.3"], "--set expects KEY=VALUE"),
        (["gaussian", "--set", "volume_fraction="], "--set expects KEY=VALUE"),
        (["gaussian", "--set", "viscosity=2"], "--set viscosity: unknown parameter of generator 'gaussian'"),
        (["gaussian", "--set", "volume_fraction=0.2", "--set", "volume_fraction=0.3"], "given twice"),
        (["gaussian", "--set", "volume_fraction=abc"], "invalid parameters for generator 'gaussian'"),
        (["gaussian", "--set", "model=foo"], "unknown correlation model 'foo'"),
        (["lava"], "unknown generator 'lava'; available generators are ["),
        (["gaussian", "--n", "0"], "n must be a positive integer"),
        (["gaussian", "--shape", "16"], "shape must be 2 or 3 positive integers"),
        (["gaussian", "--voxel-size", "-1"], "voxel_size must be a positive number"),
    ],
)
def test_generate_errors_are_one_line(tmp_path, capsys, args, match) -> None:
    out = tmp_path / "e.nc"
    argv = ["generate", *args, "--out", str(out)]
    if "--shape" not in args:
        argv += ["--shape", "8", "8"]
    assert main(argv) == 2
    _single_error_line(capsys.readouterr().err, "generate", match)
    assert not out.exists()


def test_generate_bad_output_fails_before_generating(tmp_path, capsys) -> None:
    (tmp_path / "blocker").write_text("x")
    for out, match in [(tmp_path / "e.json", "unsupported format '.json'; use .nc or .zarr"),
                       (tmp_path / "blocker" / "e.nc", "is a file, not a directory")]:
        assert main(["generate", "gaussian", "--shape", "8", "8", "--out", str(out)]) == 2
        _single_error_line(capsys.readouterr().err, "generate", match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_console_script_error_has_no_traceback(tmp_path) -> None:
    exe = Path(sys.executable).with_name("stochhom")
    proc = subprocess.run([str(exe), "generate", "gaussian", "--shape", "8", "8", "--set", "viscosity=1",
                           "--out", str(tmp_path / "e.nc")], capture_output=True, text=True)
    assert proc.returncode == 2
    _single_error_line(proc.stderr, "generate", "unknown parameter")


# --------------------------------------------------------------------- homogenize ensemble
@pytest.mark.parametrize("phases", ["conductivity", "elastic"])
def test_homogenize_ensemble_file_equals_the_api(tmp_path, capsys, phases) -> None:
    ens_path = _ensemble_file(tmp_path)
    if phases == "conductivity":
        phases_path = tmp_path / "p.toml"
        phases_path.write_text(CONDUCTIVITY_PHASES)
    else:
        phases_path = EXAMPLE_PHASES
    out = tmp_path / "props.nc"
    assert main(["homogenize", str(ens_path), "--phases", str(phases_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 samples (3 converged)" in text and f"wrote {out}" in text
    ref = sh.homogenize_ensemble(sh.io.open_dataset(ens_path).load(), sh.io.load_phases(phases_path))
    got = sh.io.open_dataset(out).load()
    assert set(got.data_vars) == set(ref.data_vars)
    tensor = "conductivity" if phases == "conductivity" else "stiffness"
    assert tensor in got
    for name in ref.data_vars:
        if name == "solve_time":
            continue
        if ref[name].dtype.kind == "f":
            np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-12, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)
    for c in ("sample", "seed", "specimen", "volume_fraction"):
        np.testing.assert_array_equal(got[c].values, ref[c].values)
    assert json.loads(got.attrs["solver"])["scheme"] == "cg" and got.attrs["ensemble_generator"] == "gaussian"


def test_homogenize_ensemble_zarr_out_and_solver_options(tmp_path, capsys) -> None:
    ens_path = _ensemble_file(tmp_path, "ens.zarr")
    (tmp_path / "p.toml").write_text(CONDUCTIVITY_PHASES)
    out = tmp_path / "props.zarr"
    assert main(["homogenize", str(ens_path), "--phases", str(tmp_path / "p.toml"), "--scheme", "basic",
                 "--tol", "1e-8", "--quiet", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    got = sh.io.open_dataset(out)
    assert json.loads(got.attrs["solver"]) == {"discretization": "auto", "dtype": "float64", "scheme": "basic",
                                               "tol": 1e-8}
    assert np.all(got["converged"].values == 1) and np.all(got["residual"].values <= 1e-8)


def test_homogenize_ensemble_errors(tmp_path, capsys) -> None:
    ens_path = _ensemble_file(tmp_path)
    (tmp_path / "p.toml").write_text(CONDUCTIVITY_PHASES)
    props = tmp_path / "props.nc"
    assert main(["homogenize", str(ens_path), "--phases", str(tmp_path / "p.toml"), "--quiet", "--out",
                 str(props)]) == 0
    cases = [
        ([str(ens_path), "--spacing", "2"], "--spacing applies to images only"),
        ([str(ens_path), "--out", str(tmp_path / "r.json")], "unsupported format '.json'"),
        ([str(props)], "is not an ensemble (no 'phase' variable)"),
        ([str(tmp_path / "missing.nc")], "does not exist"),
    ]
    for args, match in cases:
        assert main(["homogenize", *args, "--phases", str(tmp_path / "p.toml"), "--quiet"]) == 2
        _single_error_line(capsys.readouterr().err, "homogenize", match)
    assert not (tmp_path / "r.json").exists()


def test_homogenize_image_unwritable_out_is_a_clean_error(tmp_path, capsys) -> None:
    (tmp_path / "blocker").write_text("x")
    assert main(["homogenize", str(EXAMPLE_IMAGE), "--phases", str(EXAMPLE_PHASES), "--quiet", "--out",
                 str(tmp_path / "blocker" / "r.json")]) == 2
    _single_error_line(capsys.readouterr().err, "homogenize", "is a file, not a directory")


# ---------------------------------------------------------------------------------- info
def test_info_ensemble(tmp_path, capsys) -> None:
    ens_path = _ensemble_file(tmp_path)
    assert main(["info", str(ens_path)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"{ens_path}: ensemble"
    assert "dimensions: sample=3, x=16, y=16" in text
    assert "x: 16 voxel centres from 0.5 to 15.5" in text
    assert "phase('sample', 'x', 'y')" in text
    assert "specimen: 3 distinct value(s)" in text and "volume_fraction: 1 distinct value(s): 0.3" in text
    assert "generator: gaussian" in text and "entropy: 7" in text


def test_info_apparent_properties(tmp_path, capsys) -> None:
    ens_path = _ensemble_file(tmp_path)
    (tmp_path / "p.toml").write_text(CONDUCTIVITY_PHASES)
    props = tmp_path / "props.nc"
    assert main(["homogenize", str(ens_path), "--phases", str(tmp_path / "p.toml"), "--quiet", "--out",
                 str(props)]) == 0
    assert main(["info", str(props)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"{props}: apparent properties"
    assert "sample=3" in text and "conductivity('sample', 'i', 'j')" in text
    assert "specimen: 3 distinct value(s)" in text and "failed samples: 0" in text
    assert "physics: conductivity" in text


def test_info_sweep_store(sweep_store, capsys) -> None:
    assert main(["info", str(sweep_store)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"{sweep_store}: stochhom sweep"
    assert "sample=8" in text and "samples done: 8 of 8" in text and "failed samples: 0" in text
    assert "contrast: 2 distinct value(s): 10.0, 100.0" in text
    assert "volume_fraction: 2 distinct value(s): 0.2, 0.4" in text
    assert "point: 4 distinct value(s)" in text and "replicate: 2 distinct value(s): 0, 1" in text
    # the per-point summary: the same means as stochhom.statistics.summarize
    from stochhom.io import open_dataset
    from stochhom.statistics import summarize

    table = summarize(open_dataset(sweep_store).load(), n_boot=1000, rng=0)
    assert "summary per point (4 point(s)" in text
    p = int(np.flatnonzero((table["contrast"].values == 100.0) & (table["volume_fraction"].values == 0.4))[0])
    mean = table["mean"].isel(point=p).sel(variable="conductivity_eigenvalues_1").item()
    assert "contrast=100, volume_fraction=0.4: n=2, failed=0" in text, text
    block = text.split("contrast=100, volume_fraction=0.4: n=2, failed=0")[1]
    assert f"conductivity_eigenvalues_1: {mean:.6g} ±" in block.split("contrast=")[0]
    # positive quantities with 2 replicates: intervals on the log scale, named once in a footnote
    assert _printed_intervals(text)
    assert "95 % CI: cox-log: modified Cox interval" in text


def _printed_intervals(text: str) -> list[tuple[str, float, float, float, float]]:
    """(quantity, mean, s.e.m., low, high) of every per-point interval printed by info,
    each interval checked against the quantity's range."""
    import re

    from stochhom.statistics.summary import quantity_support

    found = []
    for name, *numbers in re.findall(r"^ {4}(\w+): (\S+) ± (\S+) \[(\S+), (\S+)\]", text, flags=re.M):
        mean, sem, lo, hi = map(float, numbers)
        support = quantity_support(name)
        assert support[0] <= lo <= hi <= support[1], (name, lo, hi, support)
        found.append((name, mean, sem, lo, hi))
    return found


def test_info_intervals_inside_the_quantity_range(tmp_path, capsys) -> None:
    """2 replicates per point with a large scatter: the Student-t interval (t = 12.7 at n = 2)
    would go below zero for the eigenvalues and the anisotropy index (>= 0 by definition);
    info prints intervals inside each range, and names the methods once, as footnotes."""
    import xarray as xr

    rng = np.random.default_rng(0)
    n = 8
    eig = np.sort(np.exp(rng.normal(0.0, 1.2, (n, 2))), axis=1)
    eig[0] = [1.0, 1.0]  # an isotropic sample: anisotropy index exactly 0, no log scale at point 0
    ds = xr.Dataset({"conductivity": (("sample", "i", "j"), eig[:, :, None] * np.eye(2)),
                     "conductivity_eigenvalues": (("sample", "k"), eig),
                     "converged": (("sample",), np.ones(n, dtype=np.int8))},
                    coords={"sample": np.arange(n), "contrast": ("sample", np.repeat([1.0, 2.0, 3.0, 4.0], 2))},
                    attrs={"physics": "conductivity", "dim": 2})
    path = tmp_path / "props.nc"
    sh.io.save_dataset(ds, path)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    shown = _printed_intervals(text)
    assert len(shown) == 4 * 3  # 4 points x (2 eigenvalues + anisotropy index)
    assert sum(mean - 12.706 * sem < 0 for _, mean, sem, _, _ in shown) >= 8
    assert sum(lo == 0 for *_, lo, _ in shown) == 1  # point 0's anisotropy index: t cut at 0
    assert text.count("95 % CI:") == 1
    assert "\n  95 % CI: (a) cox-log: modified Cox interval" in text
    assert "\n           (b) t∩support: Student-t" in text
    assert text.count("] (a)") == 11 and text.count("] (b)") == 1


def test_info_errors(tmp_path, capsys) -> None:
    import xarray as xr

    (tmp_path / "notes.txt").write_text("not a dataset\n")
    (tmp_path / "empty.zarr").mkdir()
    xr.Dataset({"a": ("x", [1.0, 2.0])}).to_netcdf(tmp_path / "foreign.nc")
    cases = [
        ("missing.nc", "does not exist"),
        ("notes.txt", "is not a stochhom dataset: cannot read it as netCDF or zarr"),
        ("empty.zarr", "is not a stochhom dataset"),
        ("foreign.nc", "is not a stochhom dataset (no 'kind' attribute"),
    ]
    for name, match in cases:
        assert main(["info", str(tmp_path / name)]) == 2
        captured = capsys.readouterr()
        _single_error_line(captured.err, "info", match)
        assert captured.out == ""


# --------------------------------------------------------------------------------- sweep
def test_sweep_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys) -> None:
    study = tmp_path / "study.toml"
    study.write_text(TINY_STUDY)
    assert main(["sweep", str(study), "--dry-run", "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "generator gaussian (24, 24), grid design over ['volume_fraction', 'contrast']" in text
    assert "4 points x 2 replicates = 8 samples; 0 done, 8 to run" in text
    assert "cost estimate:" in text and "s per sample" in text and "with 2 worker(s)" in text
    assert "nothing was written" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]


def test_sweep_writes_the_store_and_resumes_with_all_done(tmp_path, capsys) -> None:
    study = tmp_path / "study.toml"
    study.write_text(TINY_STUDY)
    assert main(["sweep", str(study), "--workers", "1", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    store = sh.io.open_dataset(tmp_path / "out.zarr").load()
    assert store.sizes["sample"] == 8 and int(store["done"].sum()) == 8
    assert np.all(store["converged"].values == 1) and store.attrs["kind"] == "stochhom sweep"
    assert list(store["contrast"].values) == [10.0, 10.0, 100.0, 100.0] * 2
    # the same store as the Python API writes
    from stochhom.study import load_study, run_sweep

    ref = run_sweep(load_study(study), workers=1, progress=False)  # resumes: everything is done
    assert store.drop_vars("solve_time").identical(ref.drop_vars("solve_time"))
    # again through the CLI: a resume with nothing left to do
    assert main(["sweep", str(study), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert f"resuming {tmp_path / 'out.zarr'}: 8 of 8 samples done" in captured.err
    assert "8 samples (8 converged)" in captured.out and "results in" in captured.out
    # and the dry run now counts them
    assert main(["sweep", str(study), "--dry-run", "--workers", "1"]) == 0
    assert "8 samples; 8 done, 0 to run" in capsys.readouterr().out


def test_sweep_errors(tmp_path, capsys) -> None:
    (tmp_path / "blocker").write_text("x")
    (tmp_path / "unknown.toml").write_text(TINY_STUDY.replace("seed = 3", "seed = 3\ncolour = 1"))
    (tmp_path / "unwritable.toml").write_text(TINY_STUDY.replace('"out.zarr"', '"blocker/out.zarr"'))
    (tmp_path / "ok.toml").write_text(TINY_STUDY)
    cases = [
        (["missing.toml"], "study file", "does not exist"),
        (["unknown.toml"], "[study]: unknown key(s) ['colour']", "allowed keys"),
        (["unwritable.toml"], "cannot write output store", "is a file, not a directory"),
        (["ok.toml", "--flush-seconds", "0"], "--flush-seconds must be > 0", ""),
        (["ok.toml", "--workers", "0"], "workers must be a positive integer", ""),
    ]
    for (name, *rest), match, more in cases:
        assert main(["sweep", str(tmp_path / name), *rest, "--quiet"]) == 2
        err = capsys.readouterr().err
        _single_error_line(err, "sweep", match)
        assert more in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "ok.toml", "unknown.toml", "unwritable.toml"]


# ---------------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", [[], ["homogenize"], ["generate"], ["sweep"], ["info"]])
def test_help_exits_0_with_examples(command, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: stochhom" in text and "\nexamples:\n  stochhom " in text


def test_sweep_help_study_file_is_valid(tmp_path, capsys) -> None:
    """The minimal study printed by 'stochhom sweep --help' is a valid study."""
    import textwrap

    from stochhom.study import load_study

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = capsys.readouterr().out.split("a minimal study file", 1)[1].split("\n", 1)[1]
    (tmp_path / "s.toml").write_text(textwrap.dedent(text))
    st = load_study(tmp_path / "s.toml")
    assert st.generator == "gaussian" and len(st.samples()) == 32 and st.output == tmp_path / "contrast.zarr"


def test_generate_help_lists_the_generators(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in sh.microstructure.ensemble.GENERATORS)


def test_interrupt_exits_130_without_traceback(monkeypatch, tmp_path, capsys) -> None:
    import stochhom.io

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(stochhom.io, "open_dataset", interrupted)  # the command imports it when it runs
    assert main(["info", str(tmp_path / "x.nc")]) == 130
    assert capsys.readouterr().err.strip() == "stochhom info: interrupted"


def test_homogenize_ensemble_reports_failed_samples_and_still_writes(tmp_path, capsys) -> None:
    """A contrast beyond float64 (a per-sample coordinate used in the phases file) fails sample 1:
    recorded in the output, listed, exit status 0; the other samples are kept."""
    ens = sh.generate("gaussian", (16, 16), n=3, rng=7, volume_fraction=0.3, correlation_length=2)
    ens_path = sh.io.save_dataset(ens.assign_coords(contrast=("sample", [10.0, 1e12, 100.0])), tmp_path / "e.nc")
    (tmp_path / "p.toml").write_text(CONDUCTIVITY_PHASES.replace("k = 10.0", 'k = "contrast"'))
    out = tmp_path / "props.nc"
    assert main(["homogenize", str(ens_path), "--phases", str(tmp_path / "p.toml"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 samples (2 converged)" in text and "sample 1 failed:" in text and "phase contrast" in text
    got = sh.io.open_dataset(out)
    assert list(got["converged"].values) == [1, 0, 1] and np.all(np.isnan(got["conductivity"].values[1]))
    assert main(["info", str(out)]) == 0
    assert "failed samples: 1" in capsys.readouterr().out


def test_homogenize_ensemble_phase_expressions_of_sample_coordinates(tmp_path, capsys) -> None:
    """Phase values may be expressions of the per-sample coordinates, as in study files."""
    ens = sh.generate("gaussian", (16, 16), n=2, rng=7, volume_fraction=0.3, correlation_length=2)
    ens = ens.assign_coords(contrast=("sample", [10.0, 100.0]))
    ens_path = sh.io.save_dataset(ens, tmp_path / "e.nc")
    (tmp_path / "p.toml").write_text(CONDUCTIVITY_PHASES.replace("k = 10.0", 'k = "2 * contrast"'))
    out = tmp_path / "props.nc"
    assert main(["homogenize", str(ens_path), "--phases", str(tmp_path / "p.toml"), "--quiet", "--out",
                 str(out)]) == 0
    got = sh.io.open_dataset(out)
    for k, c in enumerate([20.0, 200.0]):
        ref = sh.homogenize(ens["phase"].values[k], [sh.Conductivity(1.0), sh.Conductivity(c)]).effective
        np.testing.assert_allclose(got["conductivity"].values[k], ref, rtol=1e-12)
    # an expression of a parameter the ensemble does not have fails before any solve
    (tmp_path / "q.toml").write_text(CONDUCTIVITY_PHASES.replace("k = 10.0", 'k = "kappa"'))
    assert main(["homogenize", str(ens_path), "--phases", str(tmp_path / "q.toml"), "--quiet"]) == 2
    _single_error_line(capsys.readouterr().err, "homogenize", "phases.1.k: unknown parameter 'kappa'")
    # an image has no parameters: expressions are refused as before
    assert main(["homogenize", str(EXAMPLE_IMAGE), "--phases", str(tmp_path / "p.toml"), "--quiet"]) == 2
    _single_error_line(capsys.readouterr().err, "homogenize", "k must be a real number")


def test_homogenize_ensemble_all_failed_says_why(tmp_path, capsys) -> None:
    ens_path = _ensemble_file(tmp_path)
    (tmp_path / "p.toml").write_text(CONDUCTIVITY_PHASES.replace("k = 10.0", "k = 1e12"))
    assert main(["homogenize", str(ens_path), "--phases", str(tmp_path / "p.toml"), "--quiet", "--out",
                 str(tmp_path / "props.nc")]) == 2
    _single_error_line(capsys.readouterr().err, "homogenize", "every sample of")
    assert not (tmp_path / "props.nc").exists()


def test_homogenize_save_fields_writes_the_api_fields(tmp_path, capsys) -> None:
    import meshio

    out = tmp_path / "fields.vtu"
    code = main(["homogenize", str(EXAMPLE_IMAGE), "--phases", str(EXAMPLE_PHASES), "--save-fields", str(out),
                 "--load-case", "0,1,0", "--quiet"])
    assert code == 0 and out.exists()
    ref = sh.solve(np.load(EXAMPLE_IMAGE), sh.io.load_phases(EXAMPLE_PHASES), macro_strain=[0.0, 1.0, 0.0])
    mesh = meshio.read(out)
    phase = np.asarray(mesh.cell_data["phase"][0]).reshape(-1)
    assert phase.size == ref.phase.size and np.array_equal(np.sort(phase), np.sort(ref.phase.reshape(-1)))
    vm = np.asarray(mesh.cell_data["von_mises"][0]).reshape(-1)
    # same solve, same options: the written von Mises field is the API's (any cell order)
    np.testing.assert_allclose(np.sort(vm), np.sort(ref.von_mises.reshape(-1)), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("extra", "match"), [
    (["--save-fields", "f.png"], "unsupported format"),
    (["--load-case", "1,0,0"], "--load-case applies with --save-fields"),
    (["--save-fields", "f.vti", "--load-case", "1,0"], "has 2 component"),
    (["--save-fields", "f.vti", "--load-case", "a,b,c"], "comma-separated numbers"),
    (["--save-fields", "f.vti", "--boundary", "kubc"], "periodic cell problem"),
])
def test_homogenize_save_fields_errors(tmp_path, capsys, extra, match) -> None:
    args = [a if not a.startswith("f.") else str(tmp_path / a) for a in extra]
    assert main(["homogenize", str(EXAMPLE_IMAGE), "--phases", str(EXAMPLE_PHASES), "--quiet", *args]) == 2
    _single_error_line(capsys.readouterr().err, "homogenize", match)
