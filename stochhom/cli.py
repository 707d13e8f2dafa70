"""The ``stochhom`` command line.

Subcommands
-----------
``stochhom homogenize IMAGE --phases PHASES.toml``
    Effective tensor of one voxel image, or apparent properties of every sample of an
    ensemble file (``.nc``/``.zarr``).
``stochhom generate NAME --shape ... --n N --out ENSEMBLE.nc``
    Draw an ensemble of random microstructures and write it to netCDF or zarr.
``stochhom sweep STUDY.toml``
    Run (or resume) a parameter sweep: local processes or a Dask cluster, results
    written incrementally to a zarr store.
``stochhom info FILE``
    Summarize any stochhom dataset.
``stochhom export RESULTS --format csv|netcdf|parquet``
    Per-sample properties of a study, one row per sample (:mod:`stochhom.study.export`).
``stochhom predict SURROGATE --inputs points.csv``
    Predictions of a saved surrogate with intervals (:mod:`stochhom.surrogates.persistence`).
``stochhom warmup``
    Compile the numba kernels once, into numba's on-disk cache (:mod:`stochhom.warmup`).

The module imports only the standard library and :mod:`stochhom.choices` at first, so
that ``stochhom --help`` and ``--version`` answer at once; each command imports what it
uses.
"""

from __future__ import annotations

import argparse
import csv
import errno
import inspect
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Light imports only: the parser (``--help``, ``--version``) needs the names of the
# choices, not the solver. NumPy, the I/O, the solver and the generators are imported
# by the commands that use them.
from . import __version__
from .choices import BOUNDARY_CONDITIONS, DISCRETIZATIONS, GENERATOR_NAMES, SCHEMES
from .errors import StochhomError
from .log import configure, unconfigure

if TYPE_CHECKING:
    import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stochhom`` command."""
    parser = argparse.ArgumentParser(
        prog="stochhom",
        description="Uncertainty-aware statistical homogenization of random microstructures.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  stochhom homogenize examples/fibres_2d.npy --phases examples/glass_epoxy.toml\n"
        "  stochhom generate gaussian --shape 64 64 --n 20 --seed 1 --set volume_fraction=0.3 --out gaussian.nc\n"
        "  stochhom homogenize gaussian.nc --phases phases.toml --out properties.nc\n"
        "  stochhom sweep study.toml --dry-run\n"
        "  stochhom info properties.nc\n"
        "  stochhom run studies/quickstart.toml     # the whole pipeline, ending with an HTML report\n\n"
        "'stochhom COMMAND --help' describes each command. Exit status: 0 on success (also when some samples\n"
        "failed: they are reported), 2 on an error (bad input, every sample failed, a damaged store, a full disk;\n"
        "one line 'stochhom COMMAND: error: ...' on stderr), 130 when interrupted (143 for a sweep on SIGTERM).\n\n"
        "logging: stage lines and notices go to stderr through the 'stochhom' loggers; -v shows details (DEBUG,\n"
        "each line prefixed with level and logger), -q only warnings and errors (as each command's own --quiet).",
    )
    parser.add_argument("--version", action="version", version=f"stochhom {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show details too (DEBUG log records, with level and logger name)")
    parser.add_argument("-q", "--quiet", action="store_true", dest="global_quiet",
                        help="show only warnings and errors; implies the command's own --quiet (no progress bar, "
                             "no summary)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    examples = argparse.RawDescriptionHelpFormatter
    h = sub.add_parser(
        "homogenize",
        help="effective tensor of a voxel image or of every sample of an ensemble",
        formatter_class=examples,
        description="Effective conductivity or (Mandel) stiffness of a periodic voxel image with the FFT solver;\n"
        "for an ensemble file (.nc/.zarr from 'stochhom generate'), the apparent properties of every sample.",
        epilog="examples:\n"
        "  stochhom homogenize examples/fibres_2d.npy --phases examples/glass_epoxy.toml\n"
        "  stochhom homogenize image.tif --phases phases.toml --out result.json\n"
        "  stochhom homogenize ensemble.nc --phases phases.toml --out properties.nc",
    )
    h.add_argument("image", help="label image (.npy, .npz, .tif) or ensemble (.nc, .zarr)")
    h.add_argument("--phases", required=True, help="phases TOML file ([phases.<label>] tables)")
    h.add_argument("--scheme", default="cg", choices=sorted(SCHEMES), help="iterative scheme (default: cg)")
    h.add_argument(
        "--discretization", default="auto", choices=sorted(DISCRETIZATIONS),
        help="auto (default): q1 for porous media, rotated otherwise"
    )
    h.add_argument("--boundary", default="periodic", choices=list(BOUNDARY_CONDITIONS),
                   help="boundary condition (default periodic, the FFT solver); kubc/subc/mixed: apparent properties "
                        "of a window on voxel finite elements")
    h.add_argument("--tol", type=float, default=None, help="relative equilibrium residual (default 1e-6)")
    h.add_argument("--maxiter", type=int, default=None, help="iteration limit per load case (default 2000)")
    h.add_argument("--dtype", default="float64", choices=["float64", "float32", "mixed"],
                   help="working precision (default float64; mixed: float32 iterations refined to tol in float64)")
    h.add_argument("--spacing", type=float, nargs="+", default=None,
                   help="voxel size of an image (one value or one per axis; default 1); an ensemble has its own")
    h.add_argument("--workers", type=int, default=None, help="threads (default: all cores)")
    h.add_argument("--backend", default=None, choices=["auto", "numba", "numpy", "torch"],
                   help="element kernels (default: auto, numba); torch runs the q1 discretization on --device")
    h.add_argument("--device", default=None, help="with --backend torch: cpu (default) or cuda")
    h.add_argument("--key", default=None, help="array name inside an .npz image (.npz images only)")
    h.add_argument("--out", default=None,
                   help="write the result: .json or .csv for one image; .nc or .zarr (apparent properties) for an "
                   "ensemble")
    h.add_argument("--save-fields", default=None, metavar="PATH",
                   help="also solve one load case (--load-case) and write its local fields for ParaView: "
                   ".vti, .vtu, .vtk, .xdmf, or .nc (one image only)")
    h.add_argument("--load-case", default=None, metavar="E1,E2,...",
                   help="with --save-fields: the macroscopic strain (gradient) in Mandel notation, comma-separated "
                   "(default: the first unit load, 1,0,...)")
    h.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    h.set_defaults(func=_cmd_homogenize)

    g = sub.add_parser(
        "generate",
        help="draw an ensemble of random microstructures",
        formatter_class=examples,
        description="Draw n samples of a generator (stochhom.microstructure.available() lists them) and write the\n"
        "ensemble Dataset to netCDF (.nc) or zarr (.zarr). Parameters are given as --set key=value (TOML values).",
        epilog="examples:\n"
        "  stochhom generate gaussian --shape 64 64 --n 20 --seed 1 --set volume_fraction=0.3 \\\n"
        "      --set correlation_length=4.0 --out gaussian.nc\n"
        "  stochhom generate boolean --shape 48 48 48 --n 5 --set volume_fraction=0.2 --set radius=4 --out b.zarr\n\n"
        f"generators: {', '.join(sorted(GENERATOR_NAMES))}",
    )
    g.add_argument("name", help="generator name")
    g.add_argument("--shape", type=int, nargs="+", required=True, help="voxels per axis (2 or 3 values)")
    g.add_argument("--n", type=int, default=1, help="number of samples (default 1)")
    g.add_argument("--seed", type=int, default=None, help="root seed (default: random, recorded in the file)")
    g.add_argument("--voxel-size", type=float, default=1.0, help="physical voxel size (default 1)")
    g.add_argument("--set", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="a generator parameter; VALUE is a TOML value (number, string, [list])")
    g.add_argument("--out", required=True, help="output file, .nc or .zarr")
    g.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    g.set_defaults(func=_cmd_generate)

    w = sub.add_parser(
        "sweep",
        help="run or resume a parameter sweep",
        formatter_class=examples,
        description="Run the study (a TOML file: generator, swept parameters, replicates, phases, solver, output\n"
        "store). Samples run in parallel and are written to the zarr store as they complete; running the same\n"
        "command again resumes, skipping finished samples. A changed study is refused unless --restart.",
        epilog="examples:\n"
        "  stochhom sweep study.toml                    # one worker process per core\n"
        "  stochhom sweep study.toml --workers 4\n"
        "  stochhom sweep study.toml --scheduler local  # a Dask LocalCluster\n"
        "  stochhom sweep study.toml --scheduler tcp://10.0.0.5:8786\n"
        "  stochhom sweep study.toml --dry-run          # plan and cost estimate only\n"
        "  stochhom sweep study.toml --restart          # delete the store of a changed study and start over\n"
        "  stochhom sweep study.toml --repair           # recompute the samples of a damaged store, keep the rest\n\n"
        "a minimal study file (see stochhom.study.schema for every key):\n"
        "  [study]\n  output = \"contrast.zarr\"   # relative to the study file\n  seed = 1\n"
        "  [generator]\n  name = \"gaussian\"\n  shape = [64, 64]\n  correlation_length = 4.0\n"
        "  [sweep]\n  replicates = 8\n  parameters = { volume_fraction = [0.2, 0.4], contrast = [10.0, 100.0] }\n"
        "  [phases.0]\n  law = \"Conductivity\"\n  k = 1.0\n"
        "  [phases.1]\n  law = \"Conductivity\"\n  k = \"contrast\"         # an expression of the parameters",
    )
    w.add_argument("study", help="study TOML file")
    w.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    w.add_argument("--scheduler", default=None, help="Dask scheduler address, or 'local' for a LocalCluster")
    w.add_argument("--restart", action="store_true", help="delete the existing store and start over")
    w.add_argument("--repair", action="store_true",
                   help="rebuild a damaged store: recompute the samples in unreadable chunks, keep every other one")
    w.add_argument("--dry-run", action="store_true", help="print the plan and a cost estimate, run nothing")
    w.add_argument("--flush-seconds", type=float, default=None,
                   help="write completed samples at least this often (default 2; a crash loses at most this much)")
    w.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no summary (errors and warnings, such as the resume notice, still go to "
                   "stderr; the same as 'stochhom -q sweep')")
    w.set_defaults(func=_cmd_sweep)

    i = sub.add_parser(
        "info",
        help="summarize a stochhom dataset",
        formatter_class=examples,
        description="Summarize an ensemble, an apparent-properties dataset or a sweep store (.nc or .zarr).",
        epilog="examples:\n  stochhom info gaussian.nc\n  stochhom info results/contrast.zarr",
    )
    i.add_argument("file", help=".nc or .zarr dataset")
    i.set_defaults(func=_cmd_info)

    r = sub.add_parser(
        "run",
        help="run a whole study: sweep, RVE, surrogates, propagation, structure, validation, report",
        formatter_class=examples,
        description="Run every stage of a study (the sweep file, extended with the optional tables [gallery],\n"
        "[rve], [surrogate], [propagation], [structure], [validation]) into its results directory, ending with\n"
        "report.html and summary.json. Stages are cached: a re-run redoes only what a change affects, and a killed\n"
        "run resumes (the sweep sample by sample).",
        epilog="examples:\n"
        "  stochhom run studies/quickstart.toml           # writes studies/quickstart_results/report.html\n"
        "  stochhom run studies/quickstart.toml --workers 2\n"
        "  stochhom run study.toml --restart             # delete the results directory first\n"
        "  stochhom run study.toml --repair              # recompute the damaged samples of samples.zarr\n"
        "  stochhom run study.toml --pdf                 # also report.pdf\n"
        "  stochhom run study.toml --redo surrogates     # refit the surrogates (and what follows)",
    )
    r.add_argument("study", help="study TOML file")
    r.add_argument("--workers", type=int, default=None, help="worker processes of the sweep (default: one per core)")
    r.add_argument("--scheduler", default=None, help="Dask scheduler address, or 'local', for the sweep")
    r.add_argument("--restart", action="store_true", help="delete the results directory and start over")
    r.add_argument("--repair", action="store_true",
                   help="rebuild a damaged samples.zarr (recompute the samples in unreadable chunks), then run the "
                   "stages that depend on them")
    r.add_argument("--pdf", action="store_true",
                   help="also write report.pdf, printed by headless Chromium (Debian package chromium)")
    r.add_argument("--redo", action="append", default=[], metavar="STAGE",
                   help="run STAGE and every stage after it that depends on it again, even if up to date "
                   "(repeatable; one of gallery, fields, rve, surrogates, propagation, structure, validation, report)")
    r.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no stage lines (warnings, such as the resume notice, still go to stderr; "
                   "the same as 'stochhom -q run')")
    r.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "report",
        help="write the HTML report of a results directory",
        formatter_class=examples,
        description="Write report.html (self-contained, figures embedded) and summary.json from the results\n"
        "directory of 'stochhom run'. Sections whose stage has not run say which stage to run first.",
        epilog="examples:\n  stochhom report studies/quickstart_results\n  stochhom report results --pdf",
    )
    p.add_argument("results", help="results directory of 'stochhom run'")
    p.add_argument("--pdf", action="store_true",
                   help="also write report.pdf, printed by headless Chromium (Debian package chromium)")
    p.set_defaults(func=_cmd_report)

    fl = sub.add_parser(
        "fields",
        help="write the local fields of selected samples of a study's sweep (ParaView files)",
        formatter_class=examples,
        description="Regenerate selected samples of a study's sweep from their seeds (the very images the sweep\n"
        "solved), solve one load case with the sweep's phases and solver options, and write each sample's\n"
        "local fields: phase, strain and stress (gradient and flux) as tensors, von Mises stress or flux\n"
        "magnitude, energy density. One file per sample, DIR/sample_K.SUFFIX.",
        epilog="examples:\n  stochhom fields studies/quickstart.toml --samples 0 17 --out fields\n"
        "  stochhom fields study.toml --samples 3 --out f --format xdmf --load-case 0,1,0",
    )
    fl.add_argument("study", help="study TOML file")
    fl.add_argument("--samples", type=int, nargs="+", required=True, metavar="K", help="sample ids of the sweep")
    fl.add_argument("--out", required=True, metavar="DIR", help="folder to write (created if missing)")
    fl.add_argument("--format", default="vti", choices=["vti", "vtu", "vtk", "xdmf", "nc"],
                    help="file format (default vti, VTK ImageData)")
    fl.add_argument("--load-case", default=None, metavar="E1,E2,...",
                    help="macroscopic strain (gradient), Mandel notation, comma-separated (default: 1,0,...)")
    fl.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    fl.set_defaults(func=_cmd_fields)

    x = sub.add_parser(
        "export",
        help="write the per-sample properties of a study to CSV, netCDF or Parquet",
        formatter_class=examples,
        description="One row per sample of a study's sweep store (RESULTS/samples.zarr): indices (sample, point,\n"
        "replicate), seed, specimen, the sweep parameters, done/converged/status, and every property flattened\n"
        "(conductivity_11, conductivity_eigenvalues_0, iterations_0, ...), with units: a '# units: {JSON}' comment\n"
        "line in CSV (read it with pandas.read_csv(path, comment='#')), 'units' attributes in netCDF, field\n"
        "metadata in Parquet. Only finished samples unless --all.",
        epilog="examples:\n"
        "  stochhom export studies/quickstart_results                      # studies/quickstart_results/samples.csv\n"
        "  stochhom export studies/quickstart_results --format netcdf --output samples.nc\n"
        "  stochhom export results --format parquet --all",
    )
    x.add_argument("results", help="results directory of 'stochhom run' (or a sweep store .zarr)")
    x.add_argument("--format", default=None, choices=["csv", "netcdf", "parquet"],
                   help="file format (default: from the suffix of --output, else csv)")
    x.add_argument("--output", default=None, help="output file (default: RESULTS/samples.csv|.nc|.parquet)")
    x.add_argument("--all", dest="all_samples", action="store_true",
                   help="also the samples not computed yet (done False; their properties are empty)")
    x.set_defaults(func=_cmd_export)

    q = sub.add_parser(
        "predict",
        help="predict a CSV of input points with a saved surrogate",
        formatter_class=examples,
        description="Predict every row of a CSV of inputs (one column per input of the surrogate, named as the\n"
        "study's parameters) with a saved surrogate (a folder of RESULTS/surrogates, or any model's save()):\n"
        "per output O the columns O_mean, O_std, O_lower_P, O_upper_P (central interval of probability P %)\n"
        "and, for GPR models without bounds, O_epistemic_std and O_aleatoric_std. Points outside the\n"
        "training box are refused unless --allow-extrapolation (the column 'extrapolation' gives the distance\n"
        "outside, in training ranges).",
        epilog="examples:\n"
        "  stochhom predict studies/quickstart_results/surrogates/conductivity_eigenvalues_0__gpr \\\n"
        "      --inputs points.csv --output predictions.csv --level 0.95\n"
        "  stochhom predict model_dir --inputs points.csv --allow-extrapolation   # table on stdout",
    )
    q.add_argument("surrogate", help="directory of a saved surrogate (e.g. RESULTS/surrogates/TARGET__gpr)")
    q.add_argument("--inputs", required=True, help="CSV of input points, one column per input")
    q.add_argument("--output", default=None, help="CSV to write (default: print the table)")
    q.add_argument("--level", type=float, default=0.9, help="probability of the central interval (default 0.9)")
    q.add_argument("--allow-extrapolation", action="store_true",
                   help="predict points outside the training box too")
    q.set_defaults(func=_cmd_predict)

    from .warmup import add_arguments as warmup_arguments  # standard library only

    u = sub.add_parser(
        "warmup",
        help="compile the numba kernels once, into numba's cache (scripts/setup.sh runs it)",
        formatter_class=examples,
        description="Compile every numba kernel of stochhom (FFT solver, Q1 and voxel finite elements, GP mean)\n"
        "for the argument types real runs use, into numba's on-disk cache, so that no later run (and no worker\n"
        "process of a sweep) waits for the compiler. Cached: in $NUMBA_CACHE_DIR if set, else in __pycache__ next\n"
        "to the sources, else (read-only install) in ~/.cache/numba. Run it again after upgrading stochhom or numba.",
        epilog="examples:\n  stochhom warmup\n  stochhom warmup --group spectral --jobs 1",
    )
    warmup_arguments(u)
    u.set_defaults(func=_cmd_warmup)
    for command in sub.choices.values():  # -v / -q also after the command: stochhom run study.toml -v
        command.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                             help="show details too (DEBUG log records), as before the command")
        if "-q" not in command._option_string_actions:
            command.add_argument("-q", "--quiet", action="store_true", dest="global_quiet", default=argparse.SUPPRESS,
                                 help="show only warnings and errors, as before the command")
    return parser


def _cmd_export(args: argparse.Namespace) -> int:
    from .study.export import export_samples

    if args.output is not None:
        _check_output(args.output, what="output")
    path = export_samples(args.results, args.output, format=args.format, all_samples=args.all_samples)
    print(f"wrote {path}")
    return 0


def _cmd_fields(args: argparse.Namespace) -> int:
    from .study import load_study
    from .study.runner import sample_fields

    load = None
    if args.load_case is not None:
        try:
            load = [float(v) for v in args.load_case.split(",")]
        except ValueError:
            raise StochhomError(f"--load-case {args.load_case!r}: give comma-separated numbers (Mandel notation), "
                                "e.g. 1,0,0") from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise StochhomError(f"--out {args.out!r} is a file; give a folder")
    study = load_study(args.study)
    fields = sample_fields(study, args.samples, load)
    out.mkdir(parents=True, exist_ok=True)
    for k, res in fields.items():
        path = res.save(out / f"sample_{k}.{args.format}")
        if not args.quiet:
            print(f"wrote {path} ({res.iterations} iterations)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from .errors import InputError
    from .surrogates.persistence import feature_names, load, output_names, predict_table

    if not 0.0 < args.level < 1.0:
        raise InputError(f"--level must lie strictly between 0 and 1 (e.g. 0.9), got {args.level}")
    if args.output is not None:
        _check_output(args.output, suffixes=(".csv",), what="output")
    inputs = Path(args.inputs)
    if not inputs.is_file():
        raise InputError(f"--inputs {args.inputs!r}: no such file; give a CSV with one column per input")
    model = load(args.surrogate)
    names = feature_names(model, args.surrogate)
    if names is None:
        raise InputError(f"{args.surrogate} keeps no input names and no surrogates.json of a results directory is "
                         "next to it; predict from Python with stochhom.surrogates.persistence.predict_table(model, "
                         "frame, features=[...])")
    try:
        frame = pd.read_csv(inputs, comment="#")
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read {args.inputs} as CSV ({_one_line(str(exc))})") from None
    table = predict_table(model, frame, level=args.level, allow_extrapolation=args.allow_extrapolation,
                          features=names, outputs=output_names(model, args.surrogate))
    if args.output is None:
        print(table.to_csv(index=False), end="")
    else:
        table.to_csv(args.output, index=False)
        print(f"wrote {args.output} ({len(table)} rows)")
    return 0


def _cmd_warmup(args: argparse.Namespace) -> int:
    from .warmup import warm_up

    if args.jobs is not None and args.jobs < 1:
        raise StochhomError(f"--jobs must be a positive integer, got {args.jobs}")
    say = (lambda m: None) if args.quiet else None
    out = warm_up(args.groups, jobs=args.jobs, log=say)
    failures = [line for r in out["groups"].values() for line in r["failures"]]
    if failures:
        raise StochhomError(f"{len(failures)} warm-up problem(s) failed, the first: {failures[0]}; the other kernels "
                            "are cached, and those of the failed problems compile in the first run that needs them")
    return 0


def _check_resources(study, workers: int | None) -> None:
    """Refuse a study whose concurrent samples cannot fit in memory (before anything runs)."""
    import os

    from .study.resources import check_resources

    n = workers if workers is not None else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    check_resources(study, workers=max(1, int(n)))


def _cmd_run(args: argparse.Namespace) -> int:
    from .study import load_study
    from .study.runner import results_dir, run_study

    if args.restart and args.repair:
        raise StochhomError("--restart deletes the results directory and --repair keeps the readable samples: "
                            "choose one")
    study = load_study(args.study)
    if args.workers is not None and args.workers < 1:
        raise StochhomError(f"--workers must be a positive integer, got {args.workers}")
    _check_resources(study, args.workers)
    store = results_dir(study) / "samples.zarr"
    try:
        out = run_study(study, workers=args.workers, scheduler=args.scheduler, restart=args.restart,
                        progress=not args.quiet, pdf=args.pdf,
                        redo=args.redo, repair=args.repair)
    except StochhomError as exc:  # a later stage that fails for want of samples: say why first
        _raise_if_all_failed(store, "the sweep of the study", then=str(exc))
        raise
    except Exception as exc:  # a damaged store or a full disk: a one-line error; anything else propagates
        _raise_store_fault(exc, store, _REPAIR_HINT)
        raise
    _raise_if_all_failed(store, "the sweep of the study", report=out / "report.html")
    print(f"report: {out / 'report.html'}")
    return 0


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_REPAIR_HINT = ("run the same command with --repair to recompute the damaged samples (every other finished sample "
                "is kept), or with --restart to start over")


def _raise_store_fault(exc: BaseException, store: Path, repair: str) -> None:
    """Raise a one-line :class:`StochhomError` for a full disk or a damaged ``store``; return otherwise.

    The sweep writes its samples incrementally: on a full disk those already flushed are kept,
    and running the same command again resumes once space is freed.
    """
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        done = _done_count(store)
        kept = f"the {done} finished sample(s) are kept" if done is not None else "the finished samples are kept"
        raise StochhomError(f"{exc.strerror or 'disk full'} while writing {store}; {kept}: free some space and run "
                            "the same command again to resume") from None
    if isinstance(exc, StochhomError) or not store.is_dir():
        return
    from .io import damaged_variables

    try:
        bad = damaged_variables(store)
    except Exception:  # not a store at all: the original error stands
        return
    if bad:
        name, reason = bad[0]
        more = f" (and {len(bad) - 1} more variable(s))" if len(bad) > 1 else ""
        if not _recognizable(store):  # --repair and --restart act only on a store they recognize as a sweep's
            repair = f"delete {store} yourself (its finished samples are lost) and run the same command again"
        raise StochhomError(f"{store} is damaged: variable {name!r} cannot be read ({reason}){more}; "
                            f"{repair}") from None


def _recognizable(store: Path) -> bool:
    """Whether a store's raw attributes (``.zattrs``) say a sweep wrote it: then --repair can
    identify its study and --restart may delete it, even when xarray cannot open it."""
    try:
        return json.loads((store / ".zattrs").read_text()).get("kind") == "stochhom sweep"
    except (OSError, ValueError, AttributeError):  # no, or damaged, attributes
        return False


def _done_count(store: Path) -> int | None:
    import numpy as np

    try:
        import zarr

        return int(np.asarray(zarr.open_group(str(store), mode="r")["done"][:]).sum())
    except Exception:  # no store, or its done flags are damaged
        return None


def _raise_if_all_failed(store: Path, what: str, report: Path | None = None, then: str = "") -> None:
    """Exit non-zero when the sweep of ``store`` ran and every sample of it failed (no result at all)."""
    import numpy as np

    try:
        import zarr

        group = zarr.open_group(str(store), mode="r")
        done = np.asarray(group["done"][:]) == 1
        conv = np.asarray(group["converged"][:]) == 1
        status = group["status"]
    except Exception:  # no store (yet), or not readable: other errors say so
        return
    if done.any() and not (conv & done).any():
        first = str(np.asarray(status[int(np.flatnonzero(done)[0])]))
        written = f"; the report ({report}) says so" if report is not None else ""
        after = f"; then: {then}" if then else ""
        raise StochhomError(f"every sample of {what} failed ({int(done.sum())} of {done.size} done, 0 converged); "
                            f"the first one: {first}; the statuses are in {store} (stochhom info {store})"
                            f"{written}{after}") from None


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    results = Path(args.results)
    if not (results / "study.json").exists() or not (results / "samples.zarr").exists():
        raise StochhomError(f"{results} is not a results directory of 'stochhom run' (it needs study.json and "
                            "samples.zarr); run 'stochhom run STUDY.toml' first")
    path = write_report(results, pdf=args.pdf)
    print(f"report: {path}")
    return 0


def _format_matrix(m: np.ndarray) -> str:
    return "\n".join("  " + " ".join(f"{v:12.6g}" for v in row) for row in m)


def _is_dataset(path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() in (".nc", ".zarr") or (p.is_dir() and (p / ".zgroup").exists())


def _check_output(
    path: str | Path, suffixes: Sequence[str] | None = None, what: str = "output", store: bool = False
) -> Path:
    """Fail early (before any computation) on an output path that cannot be written.

    ``store``: the path is a directory store (zarr), which may exist already.
    """
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise StochhomError(f"{what} {str(p)!r}: unsupported format {p.suffix or '(no suffix)'!r}; "
                            f"use {' or '.join(suffixes)}")
    if p.is_dir() and not store and p.suffix.lower() != ".zarr":
        raise StochhomError(f"{what} {str(p)!r} is a directory; give a file name")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise StochhomError(f"cannot write {what} {str(p)!r}: {str(parent)!r} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StochhomError(f"cannot write {what} {str(p)!r}: no write permission in {str(parent)!r}")
    return p


def _open(path: str):
    """A stochhom dataset, or a one-line error for a missing or unreadable file."""
    from .io import open_dataset

    try:
        return open_dataset(path)
    except StochhomError as exc:
        if not Path(path).exists():
            raise
        _raise_damaged(path, exc)
        reason = str(exc).splitlines()[0].split(": ", 1)[-1].split(". ")[0] if str(exc) else ""
        raise StochhomError(f"{path} is not a stochhom dataset: cannot read it as netCDF or zarr ({reason})") from None


def _raise_damaged(path: str | Path, exc: BaseException) -> None:
    """After a failed read of ``path``: a one-line error naming the damaged variable, if one is; else return."""
    from .io import damaged_variables

    try:
        bad = damaged_variables(path)
    except Exception:  # not a dataset at all: the caller's error stands
        return
    if not bad:
        return
    name, reason = bad[0]
    more = f" (and {len(bad) - 1} more variable(s))" if len(bad) > 1 else ""
    if Path(path).is_dir() and _recognizable(Path(path)):
        repair = ("recompute its damaged samples with 'stochhom sweep STUDY.toml --repair' (or 'stochhom run "
                  "STUDY.toml --repair' for the samples.zarr of a results directory); the other samples are kept")
    else:
        repair = "write it again (stochhom generate / homogenize), or restore it from a copy"
    raise StochhomError(f"{path} is damaged: variable {name!r} cannot be read ({reason}){more}; {repair}") from None


def _kind(ds) -> str | None:
    """What a dataset is: its ``kind`` attribute, else recognized by its variables; None if not stochhom's."""
    if ds.attrs.get("kind"):
        return str(ds.attrs["kind"])
    if "phase" in ds:
        return "ensemble"
    if "stiffness" in ds or "conductivity" in ds:
        return "apparent properties"
    return None


def _cmd_homogenize(args: argparse.Namespace) -> int:
    import numpy as np

    from .io import load_image, load_phases, load_units
    from .spectral import homogenize

    if _is_dataset(args.image):
        return _homogenize_ensemble(args)
    if args.key is not None and Path(args.image).suffix.lower() != ".npz":
        raise StochhomError(f"--key applies to .npz images only (it names an array inside the archive); "
                            f"{args.image} is a {Path(args.image).suffix or 'suffix-less'} file")
    if args.out:
        _check_output(args.out, _IMAGE_OUTPUTS, what="--out (the result of one image)")
    if args.save_fields:
        _check_output(args.save_fields, _FIELD_OUTPUTS, what="--save-fields")
        if args.boundary not in (None, "periodic"):
            raise StochhomError(f"--save-fields solves the periodic cell problem (the FFT solver); the local fields "
                                f"under --boundary {args.boundary} are not exported yet: drop one of the two options")
    elif args.load_case is not None:
        raise StochhomError("--load-case applies with --save-fields (it is the load whose local fields are written)")
    image = load_image(args.image, key=args.key)
    phases = load_phases(args.phases)
    units = load_units(args.phases)
    spacing = 1.0 if args.spacing is None else (args.spacing[0] if len(args.spacing) == 1 else args.spacing)
    t0 = time.perf_counter()
    res = homogenize(
        image,
        phases,
        scheme=args.scheme,
        discretization=args.discretization,
        tol=args.tol,
        maxiter=args.maxiter,
        dtype=args.dtype,
        spacing=spacing,
        workers=args.workers,
        backend=args.backend,
        device=args.device,
        boundary=args.boundary,
    )
    wall = time.perf_counter() - t0
    if not args.quiet:
        kind = "stiffness (Mandel notation)" if res.physics == "elasticity" else "conductivity"
        dim = res.info["dim"]
        order = {2: "11, 22, 12", 3: "11, 22, 33, 23, 13, 12"}[dim] if res.physics == "elasticity" else ""
        print(f"image {args.image}: {dim}D, shape {tuple(res.info['shape'])}, "
              f"volume fractions {np.round(res.info['volume_fractions'], 4).tolist()}")
        unit = units.of("stiffness" if res.physics == "elasticity" else "conductivity")
        print(f"effective {kind}{' [' + order + ']' if order else ''}, in {unit}:")
        print(_format_matrix(res.effective))
        if res.physics == "elasticity":
            label = "K" if dim == 3 else "kappa (plane strain)"
            print(f"isotropic projection: {label} = {res.bulk_modulus:.6g} {unit}, G = {res.shear_modulus:.6g} {unit}")
        print(f"boundary {args.boundary}, scheme {res.info['scheme']}, discretization {res.info['discretization']}, "
              f"iterations per load case {res.iterations.tolist()}, {wall:.2f} s")
    if args.out:
        data = res.to_dict()
        data["image"] = str(args.image)
        data["phases_file"] = str(args.phases)
        data["units"] = units.as_dict()
        data["stochhom_version"] = __version__
        existed = Path(args.out).exists()
        try:
            with open(args.out, "w", newline="") as fh:
                if Path(args.out).suffix.lower() == ".csv":
                    _write_result_csv(fh, res, units)
                else:
                    json.dump(data, fh, indent=2)
        except OSError as exc:
            if not existed or exc.errno in _DISK_FULL:
                Path(args.out).unlink(missing_ok=True)  # a truncated result is worse than none
            raise StochhomError(f"cannot write {args.out!r}: {exc.strerror or exc}; nothing was written") from None
        if not args.quiet:
            print(f"wrote {args.out}")
    if args.save_fields:
        _save_fields(args, image, phases, spacing, res)
    return 0


def _save_fields(args: argparse.Namespace, image: Any, phases: Any, spacing: Any, res: Any) -> None:
    """``homogenize --save-fields``: solve one load case with the options of the homogenization
    and write its local fields."""
    import numpy as np

    from .spectral import solve

    ne = res.effective.shape[0]
    if args.load_case is None:
        macro = np.eye(ne)[0]
    else:
        try:
            macro = np.array([float(v) for v in args.load_case.split(",")])
        except ValueError:
            raise StochhomError(f"--load-case {args.load_case!r}: give {ne} comma-separated numbers "
                                "(Mandel notation), e.g. 1,0,0") from None
        if macro.shape != (ne,):
            raise StochhomError(f"--load-case has {macro.size} component(s); this problem has {ne} "
                                f"(Mandel notation in {res.info['dim']}D)")
    key = "macro_strain" if res.physics == "elasticity" else "macro_gradient"
    fields = solve(image, phases, **{key: macro}, scheme=args.scheme, discretization=args.discretization,
                   tol=args.tol, maxiter=args.maxiter, dtype=args.dtype, spacing=spacing, workers=args.workers,
                   backend=args.backend, device=args.device)
    out = fields.save(args.save_fields)
    if not args.quiet:
        print(f"wrote the local fields of the load {macro.tolist()} to {out} ({fields.iterations} iterations)")


#: Formats of ``homogenize IMAGE --save-fields``.
_FIELD_OUTPUTS = (".vti", ".vtu", ".vtk", ".xdmf", ".xmf", ".nc")

#: Formats of ``homogenize IMAGE --out``; an ensemble writes .nc or .zarr.
_IMAGE_OUTPUTS = (".json", ".csv")
_ENSEMBLE_OUTPUTS = (".nc", ".zarr")


def _component_names(res) -> list[str]:
    dim = res.info["dim"]
    if res.physics == "elasticity":
        return ["11", "22", "12"] if dim == 2 else ["11", "22", "33", "23", "13", "12"]
    return [str(i + 1) for i in range(dim)]


def _write_result_csv(fh, res, units) -> None:
    """The result of one image as a flat table: one row per effective tensor entry, then the
    isotropic projection(s). Columns ``quantity, row, column, value, unit``; the tensor is in
    Mandel notation for elasticity (rows/columns named by the strain components 11, 22, ...)."""
    import numpy as np

    elastic = res.physics == "elasticity"
    tensor = "stiffness" if elastic else "conductivity"
    unit = units.of(tensor)
    names = _component_names(res)
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(["quantity", "row", "column", "value", "unit"])
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            writer.writerow([f"effective_{tensor}", a, b, repr(float(res.effective[i, j])), unit])
    if elastic:
        writer.writerow(["bulk_modulus", "", "", repr(float(res.bulk_modulus)), unit])
        writer.writerow(["shear_modulus", "", "", repr(float(res.shear_modulus)), unit])
    else:  # the isotropic projection of a second-order tensor: trace / d
        writer.writerow(["isotropic_conductivity", "", "", repr(float(np.trace(res.effective) / len(names))), unit])


def _solver_options(args: argparse.Namespace) -> dict:
    opts = {"scheme": args.scheme, "discretization": args.discretization, "dtype": args.dtype}
    if args.boundary != "periodic":
        opts["boundary"] = args.boundary
    for key in ("tol", "maxiter", "workers", "backend", "device"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    return opts


def _homogenize_ensemble(args: argparse.Namespace) -> int:
    import numpy as np

    from .io import save_dataset
    from .statistics import homogenize_ensemble

    if args.spacing is not None:
        raise StochhomError("--spacing applies to images only; an ensemble carries its voxel size "
                            "(attribute voxel_size, set by 'stochhom generate --voxel-size')")
    if args.key is not None:
        raise StochhomError("--key applies to .npz images only, not to an ensemble file")
    if args.save_fields or args.load_case is not None:
        raise StochhomError("--save-fields and --load-case apply to one image; for an ensemble sample, use "
                            "stochhom.solve(ens.isel(sample=k), phases, macro_strain=...).to_vtk(path)")
    if args.out:
        _check_output(args.out, _ENSEMBLE_OUTPUTS, what="--out (the apparent properties of an ensemble)")
    ds = _open(args.image)
    try:
        ens = ds.load()
    except Exception as exc:  # a truncated or corrupted chunk: name it; anything else propagates
        _raise_damaged(args.image, exc)
        raise
    if "phase" not in ens:
        raise StochhomError(f"{args.image} is not an ensemble (no 'phase' variable); see 'stochhom info'")
    phases = _ensemble_phases(args.phases, ens)
    options = _solver_options(args)
    try:
        props = homogenize_ensemble(ens, phases, progress=not args.quiet, **options)
    except StochhomError as exc:
        if "every sample failed" not in str(exc):
            raise
        from .statistics import sample_record
        from .statistics.ensemble import sample_parameters

        image = ens["phase"].transpose("sample", ...).values[0]
        rec = sample_record(image, phases, sample_parameters(ens, 0), float(ens.attrs.get("voxel_size", 1.0)),
                            **options)
        raise StochhomError(f"every sample of {args.image} failed; the first one: {rec['status']}") from None
    conv = props["converged"].values == 1
    if not args.quiet:
        _print_properties(props)
    if not conv.any():
        first = str(props["status"].values[0])
        hint = " (raise --maxiter or loosen --tol)" if "not converged" in first else ""
        raise StochhomError(f"every sample of {args.image} failed ({conv.size} of {conv.size}), nothing written; "
                            f"the first one: {first}{hint}")
    if args.quiet and not conv.all():
        k = int(np.flatnonzero(~conv)[0])
        print(f"stochhom homogenize: warning: {int((~conv).sum())} of {conv.size} samples failed (recorded with "
              f"converged = 0); the first, sample {int(props['sample'].values[k])}: {props['status'].values[k]}",
              file=sys.stderr)
    if args.out:
        save_dataset(props, args.out)
        if not args.quiet:
            print(f"wrote {args.out}")
    return 0


def _has_expression(tables) -> bool:
    return isinstance(tables, dict) and any(
        isinstance(t, dict) and any(isinstance(v, str) for k, v in t.items() if k != "law") for t in tables.values()
    )


def _ensemble_phases(path: str, ens):
    """The phases of an ensemble: materials, or phase tables whose values are expressions of the
    per-sample parameters (coordinates along ``sample``), e.g. ``k = "contrast"``."""
    from .io import load_phases
    from .statistics import resolve_phases
    from .statistics.ensemble import sample_parameters

    try:
        return load_phases(path)
    except StochhomError:
        try:
            tables = tomllib.loads(Path(path).read_text())["phases"]
        except Exception:  # load_phases's message says what is wrong with the file
            tables = None
        if not _has_expression(tables):
            raise
    resolve_phases(tables, sample_parameters(ens, 0))  # unknown parameters and bad tables fail here, once
    return tables


def _print_properties(props) -> None:
    import numpy as np

    ok = props["converged"].values == 1
    n = ok.size
    names = ["bulk_modulus", "shear_modulus"] if "stiffness" in props else []
    head = f"{n} sample{'s' if n != 1 else ''} ({int(ok.sum())} converged)"
    if "conductivity_eigenvalues" in props and ok.sum() > 0:
        ev = props["conductivity_eigenvalues"].values[ok]
        std = np.round(ev.std(axis=0, ddof=1), 6).tolist() if ev.shape[0] > 1 else "n/a"
        head += f": conductivity eigenvalues, mean over samples {np.round(ev.mean(axis=0), 6).tolist()} (std {std})"
    print(head)
    for name in names:
        v = props[name].values[ok]
        if v.size == 1:
            print(f"{name}: {v[0]:.6g}")
        elif v.size > 1:
            print(f"{name}: mean {v.mean():.6g}, std {v.std(ddof=1):.3g}, sem {v.std(ddof=1) / np.sqrt(v.size):.3g}")
    failed = np.flatnonzero(~ok)
    for k in failed[:5]:
        print(f"sample {int(props['sample'].values[k])} failed: {props['status'].values[k]}")


def _parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _cmd_generate(args: argparse.Namespace) -> int:
    from .io import save_dataset
    from .microstructure import generate
    from .microstructure.ensemble import GENERATORS

    if args.name not in GENERATORS:
        raise StochhomError(f"unknown generator {args.name!r}; available generators are {sorted(GENERATORS)}")
    func = GENERATORS[args.name].func
    accepted = [p.name for p in inspect.signature(func).parameters.values()
                if p.kind == p.KEYWORD_ONLY and p.name not in ("voxel_size", "workers")]
    params = {}
    for item in args.params:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise StochhomError(f"--set expects KEY=VALUE (e.g. --set volume_fraction=0.3), got {item!r}")
        if key not in accepted:
            raise StochhomError(f"--set {key}: unknown parameter of generator {args.name!r}; "
                                f"its parameters are {accepted}")
        if key in params:
            raise StochhomError(f"--set {key} is given twice")
        params[key] = _parse_value(value)
    _check_output(args.out, _ENSEMBLE_OUTPUTS)
    from .study.resources import check_memory, shape_memory

    check_memory(shape_memory(args.shape, solve=False) + args.n * math.prod(args.shape) * 4,
                 f"generating {args.n} samples of shape {list(args.shape)}", "--shape")
    try:
        ens = generate(args.name, args.shape, n=args.n, rng=args.seed, voxel_size=args.voxel_size, **params)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, StochhomError):
            raise
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise StochhomError(f"invalid parameters for generator {args.name!r} ({shown}): {exc}") from None
    save_dataset(ens, args.out)
    if not args.quiet:
        frac = (ens["phase"].values == 1).mean()
        print(f"wrote {args.out}: {args.n} sample(s) of {args.name} {tuple(args.shape)}, entropy "
              f"{ens.attrs['entropy']}, mean fraction of label 1 {frac:.4f}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    import numpy as np

    from .study import load_study, run_sweep
    from .study.sweep import store_path

    if args.dry_run:
        for given, option in ((args.restart, "--restart"), (args.repair, "--repair"),
                              (args.flush_seconds is not None, "--flush-seconds")):
            if given:
                raise StochhomError(f"{option} does not apply to --dry-run (a dry run writes and deletes nothing); "
                                    f"it applies to a real run: drop --dry-run or {option}")
    if args.restart and args.repair:
        raise StochhomError("--restart deletes the store and --repair keeps its readable samples: choose one")
    study = load_study(args.study)
    _check_resources(study, args.workers)
    flush = 2.0 if args.flush_seconds is None else args.flush_seconds
    if not flush > 0:
        raise StochhomError(f"--flush-seconds must be > 0, got {args.flush_seconds}")
    store = store_path(study)
    if not args.dry_run:
        _check_output(store, what="output store", store=True)
    if "fidelity" in study.pipeline and not args.quiet:
        print(f"note: [fidelity.low]: this runs the high fidelity only; 'stochhom run {args.study}' solves the low "
              "fidelity too and fits the co-kriging model", file=sys.stderr)
    if study.adaptive is not None and not args.quiet:
        print(f"note: [sweep.adaptive]: this runs the initial design ({study.points} points x {study.replicates} "
              f"replicates); 'stochhom run {args.study}' adds the adaptive rounds (up to "
              f"{study.adaptive['max_points']} samples)", file=sys.stderr)
    try:
        out = run_sweep(study, workers=args.workers, scheduler=args.scheduler, restart=args.restart,
                        dry_run=args.dry_run, progress=not args.quiet, flush_seconds=flush, repair=args.repair)
    except StochhomError as exc:  # a store whose attributes cannot be read looks foreign: is it damaged?
        if "is not a stochhom sweep store" in str(exc):
            _raise_store_fault(RuntimeError(str(exc)), store, _REPAIR_HINT)
        raise
    except Exception as exc:  # a damaged store or a full disk: a one-line error; anything else propagates
        _raise_store_fault(exc, store, _REPAIR_HINT)
        raise
    if args.dry_run:
        plan = out
        print(f"study {plan['study']}: generator {plan['generator']} {tuple(plan['shape'])}, "
              f"{plan['design']} design over {plan['parameters']}")
        print(f"{plan['points']} points x {plan['replicates']} replicates = {plan['samples']} samples; "
              f"{plan['done']} done, {plan['remaining']} to run -> {plan['output']}")
        print(f"cost estimate: {plan['seconds_per_sample']:.3g} s per sample ({plan['timed_samples']} timed), about "
              f"{_duration(plan['estimated_seconds'])} with {plan['workers']} worker(s)")
        print("dry run: nothing was written")
        return 0
    conv = out["converged"].values == 1
    if not args.quiet:
        print(f"{conv.size} samples ({int(conv.sum())} converged)")
        failed = np.flatnonzero(~conv)
        for k in failed[:5]:
            print(f"sample {int(out['sample'].values[k])} failed: {out['status'].values[k]}")
        if conv.any():
            _print_point_summary(out)
        print(f"results in {store}")
    _raise_if_all_failed(store, f"the sweep {args.study}")
    return 0


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


_MAX_POINTS_SHOWN = 40


def _print_point_summary(props: Any) -> None:
    """Per parameter point: the swept values, samples, failures, mean ± s.e.m. and a 95 % CI.

    The intervals are those of :func:`~stochhom.statistics.summarize`, so they stay inside
    each quantity's range (a modulus or the anisotropy index is never below zero, a phase
    fraction stays in [0, 1]); the method of each is named once, in a footnote, and each
    interval carries the footnote's letter when several methods were used.
    """
    import numpy as np

    from .statistics import summarize
    from .statistics.summary import CI_METHODS

    if props.sizes.get("sample", 0) == 0:
        return
    table = summarize(props, n_boot=1000, rng=0)
    keys = sorted(k for k in json.loads(table.attrs["by"]) if k != "point" and np.unique(table[k].values).size > 1)
    n_points = table.sizes["point"]
    shown = table.isel(point=slice(0, _MAX_POINTS_SHOWN))
    methods = list(dict.fromkeys(str(m) for m in shown["ci_method"].values.ravel()))
    tags = {m: f" ({chr(ord('a') + i)})" if len(methods) > 1 else "" for i, m in enumerate(methods)}
    print(f"summary per point ({n_points} point(s); mean ± s.e.m. [95 % CI of the mean, inside the quantity's "
          "range] of the converged samples):")
    for p in range(shown.sizes["point"]):
        row = shown.isel(point=p)
        label = ", ".join(f"{k}={row[k].item():.6g}" if isinstance(row[k].item(), float) else f"{k}={row[k].item()}"
                          for k in keys) or "all samples"
        print(f"  {label}: n={int(row['n_samples'])}, failed={int(row['n_failed'])}")
        for v in table["variable"].values:
            r = row.sel(variable=v)
            print(f"    {v}: {r['mean'].item():.6g} ± {r['sem'].item():.2g} "
                  f"[{r['ci_low'].item():.6g}, {r['ci_high'].item():.6g}]{tags[str(r['ci_method'].item())]}")
    if n_points > _MAX_POINTS_SHOWN:
        print(f"  ... {n_points - _MAX_POINTS_SHOWN} more point(s); stochhom.statistics.summarize gives them all")
    for i, m in enumerate(methods):
        print(("  95 % CI: " if i == 0 else " " * 11) + f"{tags[m].strip()} {m}: {CI_METHODS.get(m, m)}".strip())


def _cmd_info(args: argparse.Namespace) -> int:
    import contextlib
    import io

    ds = _open(args.file)
    text = io.StringIO()  # printed once complete: a damaged store prints its error line only
    try:
        with contextlib.redirect_stdout(text):
            code = _info(args, ds)
    except StochhomError:
        raise
    except Exception as exc:  # a truncated or corrupted chunk: name the variable; anything else propagates
        _raise_damaged(args.file, exc)
        raise
    sys.stdout.write(text.getvalue())
    return code


def _info(args: argparse.Namespace, ds) -> int:
    import numpy as np

    kind = _kind(ds)
    if kind is None:
        raise StochhomError(f"{args.file} is not a stochhom dataset (no 'kind' attribute and no 'phase', "
                            "'stiffness' or 'conductivity' variable); info reads the files written by "
                            "'stochhom generate', 'homogenize' and 'sweep'")
    print(f"{args.file}: {kind}")
    print("dimensions: " + ", ".join(f"{k}={v}" for k, v in ds.sizes.items()))
    for axis in ("x", "y", "z"):
        if axis in ds.coords and ds.coords[axis].ndim == 1 and ds.sizes[axis] > 0:
            c = ds.coords[axis].values
            print(f"  {axis}: {c.size} voxel centres from {c[0]:.6g} to {c[-1]:.6g}")
    print("variables: " + ", ".join(f"{k}{tuple(v.dims)}" for k, v in ds.data_vars.items()))
    per_sample = [c for c in ds.coords if ds.coords[c].dims == ("sample",) and c != "sample"]
    for c in per_sample:
        vals = np.unique(ds.coords[c].values)
        shown = ", ".join(map(str, vals[:6])) + (" ..." if vals.size > 6 else "")
        print(f"  {c}: {vals.size} distinct value(s): {shown}")
    if "done" in ds:
        done = ds["done"].values
        print(f"samples done: {int(done.sum())} of {done.size}")
    if "converged" in ds:
        conv = ds["converged"].values
        done_mask = ds["done"].values == 1 if "done" in ds else np.ones(conv.size, bool)
        print(f"failed samples: {int(((conv == 0) & done_mask).sum())}")
    if ("stiffness" in ds or "conductivity" in ds) and "sample" in ds.dims:
        done_idx = np.flatnonzero(ds["done"].values == 1) if "done" in ds else slice(None)
        _print_point_summary(ds.isel(sample=done_idx).load())
    skip = {"study", "parameters"}
    for k, v in ds.attrs.items():
        if k not in skip:
            print(f"  {k}: {v}")
    if "parameters" in ds.attrs:
        print(f"  parameters: {ds.attrs['parameters']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stochhom`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.global_quiet and hasattr(args, "quiet"):
        args.quiet = True
    configure(0 if getattr(args, "quiet", False) or args.global_quiet else 1 + args.verbose)
    try:
        return int(args.func(args))
    except StochhomError as exc:
        _error(args.command, str(exc))
        return 2
    except KeyboardInterrupt as exc:
        code = getattr(exc, "exit_code", None)  # stochhom.study.sweep.SweepInterrupted: SIGINT 130, SIGTERM 143
        if isinstance(code, int) and str(exc):
            print(f"stochhom {args.command}: {_one_line(str(exc))}", file=sys.stderr)
            return code
        resume = "; run the same command again to resume" if args.command in ("sweep", "run") else ""
        print(f"stochhom {args.command}: interrupted{resume}", file=sys.stderr)
        return 130 if not isinstance(code, int) else code
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        where = f" while writing {exc.filename}" if exc.filename else ""
        _error(args.command, f"{exc.strerror or 'disk full'}{where}; free some space and run the command again")
        return 2
    finally:
        unconfigure()  # main() may run again in this process (tests, notebooks): leave no handler behind


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _error(command: str, message: str) -> None:
    """The one line of a failed command on stderr: ``stochhom COMMAND: error: MESSAGE``."""
    print(f"stochhom {command}: error: {_one_line(message)}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
