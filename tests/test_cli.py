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
