"""The ``stochhom`` command on bad input and faults: a catalogue of cases, each run through
``stochhom.cli.main`` and checked for its exit status and the keyword of its one-line message.

Exit status: 0 success (partial failures are reported), 2 any error (one line
``stochhom COMMAND: error: ...`` on stderr, no traceback), 130/143 interrupted.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from stochhom.cli import main

CONDUCTIVITY = '[phases.0]\nlaw = "Conductivity"\nk = 1.0\n[phases.1]\nlaw = "Conductivity"\nk = 3.0\n'
ELASTIC = ('[phases.0]\nlaw = "IsotropicElastic"\nE = 3.0\nnu = 0.35\n'
           '[phases.1]\nlaw = "IsotropicElastic"\nE = 70.0\nnu = 0.2\n')

STUDY = """\
[study]
output = "OUTPUT"
seed = 3

[generator]
name = "gaussian"
shape = [16, 16]
correlation_length = 2.5

[sweep]
replicates = 2
[sweep.parameters]
volume_fraction = [0.4, 0.5]
SOLVER
[phases.0]
law = "Conductivity"
k = 1.0
[phases.1]
law = "Conductivity"
k = 100.0
"""
NOT_CONVERGING = "\n[solver]\nmaxiter = 1\ntol = 1e-12\n"


def _study(output: str, solver: str = "") -> str:
    return STUDY.replace("OUTPUT", output).replace("SOLVER", solver)


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory) -> Path:
    """A finished sweep store of 4 samples (copied by each test that damages it)."""
    d = tmp_path_factory.mktemp("sweep")
    (d / "study.toml").write_text(_study("out.zarr"))
    assert main(["sweep", str(d / "study.toml"), "--workers", "1", "--quiet"]) == 0
    return d / "out.zarr"


@pytest.fixture
def ws(tmp_path, sweep_store, capsys) -> Path:
    """Small inputs: images, phase files, an ensemble, a study with its finished store."""
    image = np.zeros((8, 8), dtype=np.uint8)
    image[:, 4:] = 1
    np.save(tmp_path / "img.npy", image)
    np.savez(tmp_path / "img.npz", a=image)
    (tmp_path / "p.toml").write_text(CONDUCTIVITY)
    (tmp_path / "e.toml").write_text(ELASTIC)
    (tmp_path / "bad.toml").write_text('[phases.0]\nlaw = "Plastic"\n')
    (tmp_path / "notes.txt").write_text("not a dataset\n")
    (tmp_path / "study.toml").write_text(_study("out.zarr"))
    (tmp_path / "allfail.toml").write_text(_study("allfail.zarr", NOT_CONVERGING))
    (tmp_path / "fresh.toml").write_text(_study("fresh.zarr"))
    (tmp_path / "runfail.toml").write_text(_study("runfail_results", NOT_CONVERGING))
    shutil.copytree(sweep_store, tmp_path / "out.zarr")
    shutil.copytree(sweep_store, tmp_path / "copy.zarr")
    for name in ("ens.nc", "ens.zarr"):
        assert main(["generate", "gaussian", "--shape", "8", "8", "--n", "3", "--seed", "1", "--set",
                     "volume_fraction=0.4", "--out", str(tmp_path / name), "--quiet"]) == 0
    capsys.readouterr()
    return tmp_path


def _chunk(store: Path, variable: str) -> Path:
    """The first data chunk file of a variable of a zarr (v2) store."""
    for root, _, files in sorted(os.walk(store / variable)):
        for f in sorted(files):
            if not f.startswith("."):
                return Path(root) / f
    raise AssertionError(f"no chunk of {variable}")


def _garbage(store: Path, variable: str) -> None:
    _chunk(store, variable).write_bytes(b"garbage bytes, not a blosc frame")


def _truncate(store: Path, variable: str) -> None:
    chunk = _chunk(store, variable)
    chunk.write_bytes(chunk.read_bytes()[:20])


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _patch_sweep_write(mp, d):
    import stochhom.study.sweep as sweep

    mp.setattr(sweep, "_write", _disk_full)


def _patch_to_netcdf(mp, d):
    import xarray as xr

    mp.setattr(xr.Dataset, "to_netcdf", _disk_full)


def _patch_json_dump(mp, d):
    def dump(obj, fh, **kwargs):
        fh.write("{\"partial")
        _disk_full()

    mp.setattr(json, "dump", dump)


def _patch_raw_enospc(mp, d):
    import stochhom.cli as cli

    def raw(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(d / "x.nc"))

    mp.setattr(cli, "_cmd_info", raw)


def _patch_multiline(mp, d):
    import stochhom.cli as cli
    from stochhom.errors import StochhomError

    def multi(args):
        raise StochhomError("first line\n   second line\n")

    mp.setattr(cli, "_cmd_info", multi)


def _patch_connect_timeout(mp, d):
    from stochhom.study import sweep

    mp.setattr(sweep, "_CONNECT_TIMEOUT", "1s")


def _patch_interrupt(mp, d):
    import stochhom.study as study

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    mp.setattr(study, "run_sweep", interrupted)


def _patch_sigterm(mp, d):
    import stochhom.study as study
    from stochhom.study.sweep import SweepInterrupted

    def terminated(*args, **kwargs):
        raise SweepInterrupted(f"sweep interrupted (SIGTERM): 1 of 4 samples are stored in {d / 'out.zarr'}; "
                               "run the same command again to resume", signum=15, done=1, total=4,
                               path=d / "out.zarr")

    mp.setattr(study, "run_sweep", terminated)


# (id, argv with {d} for the workspace, setup(d) or None, monkeypatch(mp, d) or None, exit status, keyword)
CASES = [
    # 1. no silent success
    ("homogenize-all-samples-fail", ["homogenize", "{d}/ens.nc", "--phases", "{d}/p.toml", "--maxiter", "1",
                                     "--tol", "1e-12", "--quiet"], None, None, 2, "every sample of"),
    ("sweep-all-samples-fail", ["sweep", "{d}/allfail.toml", "--workers", "1", "--quiet"], None, None, 2,
     "every sample of the sweep"),
    ("run-all-samples-fail", ["run", "{d}/runfail.toml", "--workers", "1", "--quiet"], None, None, 2,
     "every sample of the sweep of the study failed"),
    # 2. options that do not apply
    ("key-with-npy", ["homogenize", "{d}/img.npy", "--phases", "{d}/p.toml", "--key", "a"], None, None, 2,
     "--key applies to .npz images only"),
    ("key-with-ensemble", ["homogenize", "{d}/ens.nc", "--phases", "{d}/p.toml", "--key", "a"], None, None, 2,
     "--key applies to .npz images only"),
    ("spacing-with-ensemble", ["homogenize", "{d}/ens.nc", "--phases", "{d}/p.toml", "--spacing", "2"], None, None,
     2, "--spacing applies to images only"),
    ("restart-with-dry-run", ["sweep", "{d}/study.toml", "--dry-run", "--restart"], None, None, 2,
     "--restart does not apply to --dry-run"),
    ("flush-with-dry-run", ["sweep", "{d}/study.toml", "--dry-run", "--flush-seconds", "1"], None, None, 2,
     "--flush-seconds does not apply to --dry-run"),
    ("device-without-torch", ["homogenize", "{d}/img.npy", "--phases", "{d}/p.toml", "--device", "cuda"], None,
     None, 2, "applies to backend='torch' only"),
    ("torch-missing-gpu", ["homogenize", "{d}/img.npy", "--phases", "{d}/p.toml", "--backend", "torch", "--device",
                           "cuda:99"], None, None, 2, "no CUDA device"),
    # 3. output formats follow the extension or are refused
    ("image-out-txt", ["homogenize", "{d}/img.npy", "--phases", "{d}/p.toml", "--out", "{d}/r.txt"], None, None, 2,
     "use .json or .csv"),
    ("image-out-nc", ["homogenize", "{d}/img.npy", "--phases", "{d}/p.toml", "--out", "{d}/r.nc"], None, None, 2,
     "use .json or .csv"),
    ("ensemble-out-json", ["homogenize", "{d}/ens.nc", "--phases", "{d}/p.toml", "--out", "{d}/r.json"], None,
     None, 2, "use .nc or .zarr"),
    ("ensemble-out-csv", ["homogenize", "{d}/ens.nc", "--phases", "{d}/p.toml", "--out", "{d}/r.csv"], None,
     None, 2, "use .nc or .zarr"),
    ("generate-out-json", ["generate", "gaussian", "--shape", "8", "8", "--set", "volume_fraction=0.3", "--out",
                           "{d}/g.json"], None, None, 2, "use .nc or .zarr"),
    ("generate-no-suffix", ["generate", "gaussian", "--shape", "8", "8", "--out", "{d}/g"], None, None, 2,
     "(no suffix)"),
    # 4. damaged stores
    ("info-garbage-conductivity", ["info", "{d}/copy.zarr"], lambda d: _garbage(d / "copy.zarr", "conductivity"),
     None, 2, "damaged: variable 'conductivity'"),
    ("info-truncated-status", ["info", "{d}/copy.zarr"], lambda d: _truncate(d / "copy.zarr", "status"), None, 2,
     "damaged: variable 'status'"),
    ("info-garbage-done", ["info", "{d}/copy.zarr"], lambda d: _garbage(d / "copy.zarr", "done"), None, 2,
     "--repair"),
    ("info-garbage-sample-coordinate", ["info", "{d}/copy.zarr"], lambda d: _garbage(d / "copy.zarr", "sample"),
     None, 2, "damaged: variable 'sample'"),
    ("info-garbage-attributes", ["info", "{d}/copy.zarr"],
     lambda d: (d / "copy.zarr" / ".zattrs").write_text("{not json"), None, 2, "not valid JSON"),
    ("sweep-resume-garbage-conductivity", ["sweep", "{d}/study.toml", "--workers", "1", "--quiet"],
     lambda d: _garbage(d / "out.zarr", "conductivity"), None, 2, "with --repair to recompute the damaged samples"),
    ("sweep-resume-garbage-done", ["sweep", "{d}/study.toml", "--workers", "1", "--quiet"],
     lambda d: _garbage(d / "out.zarr", "done"), None, 2, "damaged: variable 'done'"),
    ("sweep-resume-garbage-sample", ["sweep", "{d}/study.toml", "--workers", "1", "--quiet"],
     lambda d: _garbage(d / "out.zarr", "sample"), None, 2, "--repair"),
    ("sweep-resume-damaged-attributes", ["sweep", "{d}/study.toml", "--workers", "1", "--quiet"],
     lambda d: (d / "out.zarr" / ".zattrs").write_text("{not json"), None, 2, "delete"),
    ("sweep-repair-damaged-attributes", ["sweep", "{d}/study.toml", "--workers", "1", "--quiet", "--repair"],
     lambda d: (d / "out.zarr" / ".zattrs").write_text("{not json"), None, 2, "cannot repair"),
    ("sweep-repair-and-restart", ["sweep", "{d}/study.toml", "--repair", "--restart"], None, None, 2,
     "choose one"),
    ("run-repair-and-restart", ["run", "{d}/study.toml", "--repair", "--restart"], None, None, 2, "choose one"),
    ("repair-with-dry-run", ["sweep", "{d}/study.toml", "--dry-run", "--repair"], None, None, 2,
     "--repair does not apply to --dry-run"),
    ("sweep-unreachable-scheduler", ["sweep", "{d}/fresh.toml", "--workers", "1", "--scheduler",
                                     "tcp://127.0.0.1:9"], None, _patch_connect_timeout, 2,
     "nothing was written"),
    ("homogenize-damaged-ensemble", ["homogenize", "{d}/ens.zarr", "--phases", "{d}/p.toml", "--quiet"],
     lambda d: _garbage(d / "ens.zarr", "phase"), None, 2, "damaged: variable 'phase'"),
    # 5. disk full, and every error on one line
    ("sweep-disk-full", ["sweep", "{d}/study.toml", "--workers", "1", "--quiet", "--restart"], None,
     _patch_sweep_write, 2, "finished sample(s) are kept"),
    ("generate-disk-full", ["generate", "gaussian", "--shape", "8", "8", "--out", "{d}/full.nc", "--quiet"], None,
     _patch_to_netcdf, 2, "No space left on device"),
    ("homogenize-json-disk-full", ["homogenize", "{d}/img.npy", "--phases", "{d}/p.toml", "--out", "{d}/full.json",
                                   "--quiet"], None, _patch_json_dump, 2, "No space left on device"),
    ("raw-enospc-at-the-boundary", ["info", "{d}/x.nc"], None, _patch_raw_enospc, 2, "while writing"),
    ("multi-line-error-is-one-line", ["info", "{d}/x.nc"], None, _patch_multiline, 2, "first line second line"),
    # 6. interruption
    ("sweep-ctrl-c", ["sweep", "{d}/study.toml", "--quiet"], None, _patch_interrupt, 130,
     "interrupted; run the same command again to resume"),
    ("sweep-sigterm", ["sweep", "{d}/study.toml", "--quiet"], None, _patch_sigterm, 143, "SIGTERM"),
    # plain bad input
    ("missing-image", ["homogenize", "{d}/missing.npy", "--phases", "{d}/p.toml"], None, None, 2, "does not exist"),
    ("npz-unknown-key", ["homogenize", "{d}/img.npz", "--phases", "{d}/p.toml", "--key", "b"], None, None, 2,
     "has no array 'b'"),
    ("unknown-law", ["homogenize", "{d}/img.npy", "--phases", "{d}/bad.toml"], None, None, 2, "unknown or missing law"),
    ("unknown-generator", ["generate", "lava", "--shape", "8", "8", "--out", "{d}/g.nc"], None, None, 2,
     "unknown generator"),
    ("set-without-value", ["generate", "gaussian", "--shape", "8", "8", "--set", "volume_fraction", "--out",
                           "{d}/g.nc"], None, None, 2, "--set expects KEY=VALUE"),
    ("info-not-a-dataset", ["info", "{d}/notes.txt"], None, None, 2, "not a stochhom dataset"),
    ("report-not-results", ["report", "{d}"], None, None, 2, "is not a results directory"),
    ("run-unknown-redo", ["run", "{d}/study.toml", "--redo", "lunch", "--quiet"], None, None, 2,
     "cannot redo stage 'lunch'"),
]


@pytest.mark.parametrize(("argv", "setup", "patch", "code", "keyword"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_cli_fault_catalogue(ws, monkeypatch, capsys, argv, setup, patch, code, keyword) -> None:
    if setup is not None:
        setup(ws)
    if patch is not None:
        patch(monkeypatch, ws)
    argv = [a.replace("{d}", str(ws)) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith(f"stochhom {argv[0]}: "), err
    assert keyword in last, err
    if code == 2:
        assert last.startswith(f"stochhom {argv[0]}: error: "), err


def test_catalogue_size() -> None:
    assert len(CASES) >= 20 and len({c[0] for c in CASES}) == len(CASES)


def test_every_sample_failed_writes_nothing(ws, capsys) -> None:
    out = ws / "props.nc"
    assert main(["homogenize", str(ws / "ens.nc"), "--phases", str(ws / "p.toml"), "--maxiter", "1", "--tol",
                 "1e-12", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "3 samples (0 converged)" in captured.out  # the failures are listed, then the error
    assert "raise --maxiter" in captured.err and not out.exists()


def test_partial_failure_exits_0_and_warns_when_quiet(ws, capsys) -> None:
    import stochhom as sh

    ens = sh.io.open_dataset(ws / "ens.nc").load()
    path = sh.io.save_dataset(ens.assign_coords(contrast=("sample", [10.0, 1e13, 100.0])), ws / "c.nc")
    (ws / "c.toml").write_text(CONDUCTIVITY.replace("k = 3.0", 'k = "contrast"'))
    assert main(["homogenize", str(path), "--phases", str(ws / "c.toml"), "--quiet", "--out", str(ws / "o.nc")]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "warning: 1 of 3 samples failed" in captured.err and "sample 1" in captured.err
    assert (ws / "o.nc").exists()


def test_image_csv_conductivity(ws, capsys) -> None:
    out = ws / "r.csv"
    assert main(["homogenize", str(ws / "img.npy"), "--phases", str(ws / "p.toml"), "--out", str(out),
                 "--tol", "1e-10", "--quiet"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "quantity,row,column,value,unit"
    rows = {tuple(line.split(",")[:3]): float(line.split(",")[3]) for line in lines[1:]}
    # a laminate with columns 4: of phase 1: arithmetic mean along the layers, harmonic across
    assert rows[("effective_conductivity", "1", "1")] == pytest.approx(2.0)
    assert rows[("effective_conductivity", "2", "2")] == pytest.approx(1.5)
    assert rows[("isotropic_conductivity", "", "")] == pytest.approx(1.75)
    assert len(rows) == 5


def test_image_csv_elasticity_matches_json(ws, capsys) -> None:
    assert main(["homogenize", str(ws / "img.npy"), "--phases", str(ws / "e.toml"), "--out", str(ws / "r.csv"),
                 "--quiet"]) == 0
    assert main(["homogenize", str(ws / "img.npy"), "--phases", str(ws / "e.toml"), "--out", str(ws / "r.json"),
                 "--quiet"]) == 0
    data = json.loads((ws / "r.json").read_text())
    lines = (ws / "r.csv").read_text().splitlines()[1:]
    names = ["11", "22", "12"]
    table = {tuple(line.split(",")[:3]): float(line.split(",")[3]) for line in lines}
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert table[("effective_stiffness", a, b)] == data["effective"][i][j]
    assert table[("bulk_modulus", "", "")] == data["bulk_modulus"]
    assert table[("shear_modulus", "", "")] == data["shear_modulus"]


def test_disk_full_leaves_no_partial_output(ws, monkeypatch, capsys) -> None:
    _patch_json_dump(monkeypatch, ws)
    assert main(["homogenize", str(ws / "img.npy"), "--phases", str(ws / "p.toml"), "--out", str(ws / "r.json"),
                 "--quiet"]) == 2
    assert not (ws / "r.json").exists()
    monkeypatch.undo()
    _patch_to_netcdf(monkeypatch, ws)
    assert main(["generate", "gaussian", "--shape", "8", "8", "--out", str(ws / "g.nc"), "--quiet"]) == 2
    assert not (ws / "g.nc").exists()


def test_sweep_disk_full_keeps_finished_samples(ws, monkeypatch, capsys) -> None:
    """The first flush fails: the store (created before) is kept, and a rerun resumes it."""
    _patch_sweep_write(monkeypatch, ws)
    assert main(["sweep", str(ws / "study.toml"), "--workers", "1", "--quiet", "--restart"]) == 2
    assert "free some space and run the same command again to resume" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["sweep", str(ws / "study.toml"), "--workers", "1", "--quiet"]) == 0


def test_damaged_variables_lists_the_damage(ws) -> None:
    from stochhom.io import damaged_variables

    assert damaged_variables(ws / "copy.zarr") == []
    assert damaged_variables(ws / "ens.nc") == []
    _garbage(ws / "copy.zarr", "conductivity")
    _truncate(ws / "copy.zarr", "residual")
    bad = dict(damaged_variables(ws / "copy.zarr"))
    assert set(bad) == {"conductivity", "residual"} and "index 0-3" in bad["conductivity"]


def test_console_script_exit_status_on_a_damaged_store(ws) -> None:
    """Through the installed entry point: the process exits 2 with one line, no traceback."""
    import subprocess
    import sys

    _garbage(ws / "copy.zarr", "conductivity")
    exe = Path(sys.executable).with_name("stochhom")
    proc = subprocess.run([str(exe), "info", str(ws / "copy.zarr")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged: variable 'conductivity'" in lines[0] and "--repair" in lines[0]
