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
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__
from .errors import StochhomError
from .io import load_image, load_phases, open_dataset, save_dataset
from .spectral import DISCRETIZATIONS, SCHEMES, homogenize

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stochhom`` command."""
    parser = argparse.ArgumentParser(
        prog="stochhom", description="Uncertainty-aware statistical homogenization of random microstructures."
    )
    parser.add_argument("--version", action="version", version=f"stochhom {__version__}")
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
        "--discretization", default="rotated", choices=sorted(DISCRETIZATIONS), help="default: rotated"
    )
    h.add_argument("--tol", type=float, default=None, help="relative equilibrium residual (default 1e-6)")
    h.add_argument("--maxiter", type=int, default=None, help="iteration limit per load case (default 2000)")
    h.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    h.add_argument("--spacing", type=float, nargs="+", default=[1.0], help="voxel size (one value or one per axis)")
    h.add_argument("--workers", type=int, default=None, help="threads (default: all cores)")
    h.add_argument("--key", default=None, help="array name inside an .npz image")
    h.add_argument("--out", default=None,
                   help="write the result: JSON for one image; .nc or .zarr (apparent properties) for an ensemble")
    h.add_argument("--quiet", action="store_true", help="print nothing but errors")
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
        "  stochhom generate boolean --shape 48 48 48 --n 5 --set volume_fraction=0.2 --set radius=4 --out b.zarr",
    )
    g.add_argument("name", help="generator name")
    g.add_argument("--shape", type=int, nargs="+", required=True, help="voxels per axis (2 or 3 values)")
    g.add_argument("--n", type=int, default=1, help="number of samples (default 1)")
    g.add_argument("--seed", type=int, default=None, help="root seed (default: random, recorded in the file)")
    g.add_argument("--voxel-size", type=float, default=1.0, help="physical voxel size (default 1)")
    g.add_argument("--set", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="a generator parameter; VALUE is a TOML value (number, string, [list])")
    g.add_argument("--out", required=True, help="output file, .nc or .zarr")
    g.add_argument("--quiet", action="store_true")
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
        "  stochhom sweep study.toml --dry-run          # plan and cost estimate only",
    )
    w.add_argument("study", help="study TOML file")
    w.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    w.add_argument("--scheduler", default=None, help="Dask scheduler address, or 'local' for a LocalCluster")
    w.add_argument("--restart", action="store_true", help="delete the existing store and start over")
    w.add_argument("--dry-run", action="store_true", help="print the plan and a cost estimate, run nothing")
    w.add_argument("--flush-seconds", type=float, default=2.0,
                   help="write completed samples at least this often (default 2; a crash loses at most this much)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
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
    return parser


def _format_matrix(m: np.ndarray) -> str:
    return "\n".join("  " + " ".join(f"{v:12.6g}" for v in row) for row in m)


def _is_dataset(path: str) -> bool:
    from pathlib import Path

    p = Path(path)
    return p.suffix.lower() in (".nc", ".zarr") or (p.is_dir() and (p / ".zgroup").exists())


def _cmd_homogenize(args: argparse.Namespace) -> int:
    if _is_dataset(args.image):
        return _homogenize_ensemble(args)
    image = load_image(args.image, key=args.key)
    phases = load_phases(args.phases)
    spacing = args.spacing[0] if len(args.spacing) == 1 else args.spacing
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
    )
    wall = time.perf_counter() - t0
    if not args.quiet:
        kind = "stiffness (Mandel notation)" if res.physics == "elasticity" else "conductivity"
        dim = res.info["dim"]
        order = {2: "11, 22, 12", 3: "11, 22, 33, 23, 13, 12"}[dim] if res.physics == "elasticity" else ""
        print(f"image {args.image}: {dim}D, shape {tuple(res.info['shape'])}, "
              f"volume fractions {np.round(res.info['volume_fractions'], 4).tolist()}")
        print(f"effective {kind}{' [' + order + ']' if order else ''}:")
        print(_format_matrix(res.effective))
        if res.physics == "elasticity":
            label = "K" if dim == 3 else "kappa (plane strain)"
            print(f"isotropic projection: {label} = {res.bulk_modulus:.6g}, G = {res.shear_modulus:.6g}")
        print(f"scheme {res.info['scheme']}, discretization {res.info['discretization']}, "
              f"iterations per load case {res.iterations.tolist()}, {wall:.2f} s")
    if args.out:
        data = res.to_dict()
        data["image"] = str(args.image)
        data["phases_file"] = str(args.phases)
        data["stochhom_version"] = __version__
        with open(args.out, "w") as fh:
            json.dump(data, fh, indent=2)
        if not args.quiet:
            print(f"wrote {args.out}")
    return 0


def _solver_options(args: argparse.Namespace) -> dict:
    opts = {"scheme": args.scheme, "discretization": args.discretization, "dtype": args.dtype}
    for key in ("tol", "maxiter", "workers"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    return opts


def _homogenize_ensemble(args: argparse.Namespace) -> int:
    from .statistics import homogenize_ensemble

    ens = open_dataset(args.image).load()
    if "phase" not in ens:
        raise StochhomError(f"{args.image} is not an ensemble (no 'phase' variable); see 'stochhom info'")
    phases = load_phases(args.phases)
    props = homogenize_ensemble(ens, phases, progress=not args.quiet, **_solver_options(args))
    if not args.quiet:
        _print_properties(props)
    if args.out:
        save_dataset(props, args.out)
        if not args.quiet:
            print(f"wrote {args.out}")
    return 0


def _print_properties(props) -> None:
    ok = props["converged"].values == 1
    n = ok.size
    names = ["bulk_modulus", "shear_modulus"] if "stiffness" in props else []
    if "conductivity_eigenvalues" in props:
        ev = props["conductivity_eigenvalues"].values[ok]
        print(f"{n} samples ({int(ok.sum())} converged): conductivity eigenvalues, mean over samples "
              f"{np.round(ev.mean(axis=0), 6).tolist()} (std {np.round(ev.std(axis=0, ddof=1), 6).tolist()})"
              if ev.shape[0] > 1 else f"{n} samples ({int(ok.sum())} converged)")
    for name in names:
        v = props[name].values[ok]
        if v.size:
            se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
            print(f"{name}: mean {v.mean():.6g}, std {v.std(ddof=1) if v.size > 1 else 0:.3g}, sem {se:.3g}")
    failed = np.flatnonzero(~ok)
    for k in failed[:5]:
        print(f"sample {int(props['sample'].values[k])} failed: {props['status'].values[k]}")


def _parse_value(text: str):
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _cmd_generate(args: argparse.Namespace) -> int:
    from .microstructure import generate

    params = {}
    for item in args.params:
        if "=" not in item:
            raise StochhomError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        params[key.strip()] = _parse_value(value.strip())
    ens = generate(args.name, args.shape, n=args.n, rng=args.seed, voxel_size=args.voxel_size, **params)
    save_dataset(ens, args.out)
    if not args.quiet:
        frac = (ens["phase"].values == 1).mean()
        print(f"wrote {args.out}: {args.n} sample(s) of {args.name} {tuple(args.shape)}, entropy "
              f"{ens.attrs['entropy']}, mean fraction of label 1 {frac:.4f}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .study import load_study, run_sweep

    study = load_study(args.study)
    if not args.flush_seconds > 0:
        raise StochhomError(f"--flush-seconds must be > 0, got {args.flush_seconds}")
    out = run_sweep(study, workers=args.workers, scheduler=args.scheduler, restart=args.restart,
                    dry_run=args.dry_run, progress=not args.quiet, flush_seconds=args.flush_seconds)
    if args.dry_run:
        plan = out
        print(f"study {plan['study']}: generator {plan['generator']} {tuple(plan['shape'])}, "
              f"{plan['design']} design over {plan['parameters']}")
        print(f"{plan['points']} points x {plan['replicates']} replicates = {plan['samples']} samples; "
              f"{plan['done']} done, {plan['remaining']} to run -> {plan['output']}")
        print(f"cost estimate: {plan['seconds_per_sample']:.3g} s per sample (one timed), about "
              f"{plan['estimated_seconds'] / 60:.1f} min with {plan['workers']} worker(s)")
        return 0
    if not args.quiet:
        _print_properties(out)
        print(f"results in {study.output}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    ds = open_dataset(args.file)
    kind = ds.attrs.get("kind") or ("ensemble" if "phase" in ds else
                                     ("apparent properties" if ("stiffness" in ds or "conductivity" in ds)
                                      else "dataset"))
    print(f"{args.file}: {kind}")
    print("dimensions: " + ", ".join(f"{k}={v}" for k, v in ds.sizes.items()))
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
    try:
        return int(args.func(args))
    except StochhomError as exc:
        print(f"stochhom {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
