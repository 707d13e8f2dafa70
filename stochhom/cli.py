"""The ``stochhom`` command line.

Subcommands
-----------
``stochhom homogenize IMAGE --phases PHASES.toml``
    Effective tensor of one voxel image (printed, and written to JSON with ``--out``).
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
from .io import load_image, load_phases
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

    h = sub.add_parser(
        "homogenize",
        help="effective tensor of a voxel image",
        description="Effective conductivity or (Mandel) stiffness of a periodic voxel image with the FFT solver.",
    )
    h.add_argument("image", help="label image: .npy, .npz or .tif (integer phase labels)")
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
    h.add_argument("--out", default=None, help="write the result (tensor, diagnostics) to this JSON file")
    h.add_argument("--quiet", action="store_true", help="print nothing but errors")
    h.set_defaults(func=_cmd_homogenize)
    return parser


def _format_matrix(m: np.ndarray) -> str:
    return "\n".join("  " + " ".join(f"{v:12.6g}" for v in row) for row in m)


def _cmd_homogenize(args: argparse.Namespace) -> int:
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
