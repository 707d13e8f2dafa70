r"""Compile the numba kernels once, into numba's on-disk cache: ``stochhom warmup``.

The compiled kernels of stochhom (:mod:`stochhom.spectral.kernels_numba`,
:mod:`stochhom.spectral.kernels_q1`, :mod:`stochhom.fem.boundary` and the GP's
:mod:`stochhom.surrogates._gp_kernels`) are declared with ``cache=True``: the first
call with a new combination of argument types compiles it (seconds per kernel, 20-40 s
for the kernels of the quickstart) and writes the machine code to numba's cache;
every later process, each worker of a sweep included, loads it instead (the quickstart's
kernels in about half a second).
:func:`warm_up` makes those first calls at install time (``scripts/setup.sh`` runs
``stochhom warmup``), so that no run waits for the compiler.

It does so by running tiny real problems (a few voxels, a few training points) through
the public functions, not by listing signatures: the kernels are specialized for the
very types and layouts that real runs pass. The problems cover both dimensions,
conductivity and elasticity (isotropic and anisotropic phases, uint8 and uint16
labels), the float64, float32 and mixed precisions, the three schemes, the rotated,
Fourier and Q1 discretizations, pores and composite voxels, the four finite-element
boundary conditions (with a multigrid hierarchy of several levels) and the GP's fit,
posterior mean and standard deviation, leave-one-out predictions and posterior functions.

The problems form groups, each compiling the kernels of its own source files, so that
the groups can run in parallel processes (``jobs``) without two processes writing the
cache index of one file at the same time.

Where the cache lives
---------------------
``$NUMBA_CACHE_DIR`` when set; otherwise the ``__pycache__`` folder next to the
sources (an editable install or a clone: ``stochhom/spectral/__pycache__``, ...); when
that folder cannot be written (a read-only or system-wide install), numba falls back to
its per-user cache, ``~/.cache/numba`` (``$XDG_CACHE_HOME/numba``). The entries are
keyed by the content of the source file, the argument types, the numba version and the
CPU: an edited kernel file, another numba version or another CPU compiles again (and ``stochhom
warmup`` can be run again at any time; it loads what is already cached).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["GROUPS", "add_arguments", "kernels", "main", "warm_up"]

#: The groups of :func:`warm_up` and the modules whose kernels each compiles.
GROUPS: dict[str, tuple[str, ...]] = {
    "spectral": ("stochhom.spectral.kernels_numba",),
    "fem": ("stochhom.fem.boundary",),
    "q1": ("stochhom.spectral.kernels_q1",),
    "gp": ("stochhom.surrogates._gp_kernels",),
}


def kernels(modules: Sequence[str] | None = None) -> dict[str, Any]:
    """The cached numba kernels (dispatchers) of ``modules`` (default: every group's), by name.

    Parameters
    ----------
    modules : sequence of str, optional
        Module names, e.g. ``["stochhom.spectral.kernels_numba"]``.

    Returns
    -------
    dict
        ``"module.function"`` -> numba dispatcher, for the functions declared with
        ``cache=True`` (inlined helpers are not compiled alone and are left out).
    """
    import importlib

    from numba.core.dispatcher import Dispatcher

    out = {}
    for name in modules if modules is not None else [m for ms in GROUPS.values() for m in ms]:
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if isinstance(obj, Dispatcher) and obj.stats.cache_path is not None:
                out[f"{name}.{attr}"] = obj
    return out


# ------------------------------------------------------------------------------ problems
def _rng_image(shape: tuple[int, ...], labels: int, seed: int = 0) -> Any:
    """A random label image holding every label ``0 .. labels-1``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    flat = np.resize(rng.permutation(labels), n)
    rng.shuffle(flat)
    return flat.reshape(shape)


def _phase_sets(dim: int) -> dict[str, list[Any]]:
    """Two-phase materials of each kind the FFT solver dispatches on (isotropic and
    anisotropic conductivity and elasticity)."""
    import numpy as np

    from .materials import AnisotropicElastic, Conductivity, IsotropicElastic

    soft, hard = IsotropicElastic(E=1.0, nu=0.3), IsotropicElastic(E=10.0, nu=0.25)
    k = np.diag(np.arange(2.0, dim + 2.0)) + 0.5 * (np.ones((dim, dim)) - np.eye(dim))  # symmetric positive definite
    return {
        "isotropic conductivity": [Conductivity(1.0), Conductivity(10.0)],
        "anisotropic conductivity": [Conductivity(1.0), Conductivity(k)],
        "isotropic elasticity": [soft, hard],
        "anisotropic elasticity": [soft, AnisotropicElastic.from_cubic(10.0, 6.0, 4.0)],
    }


def _spectral_problems() -> list[tuple[str, Callable[[], Any]]]:
    """FFT solver on the rotated and Fourier discretizations (:mod:`~stochhom.spectral.kernels_numba`)."""
    import numpy as np

    from .materials import Conductivity, IsotropicElastic
    from .spectral import homogenize

    out: list[tuple[str, Callable[[], Any]]] = []
    for dim in (2, 3):
        image = _rng_image((6,) * dim, 2, seed=dim)
        for kind, phases in _phase_sets(dim).items():
            for dtype, schemes in (("float64", ("cg", "basic", "accelerated")), ("float32", ("cg", "basic")),
                                   ("mixed", ("cg",))):
                for scheme in schemes:
                    def run(image=image, phases=phases, dtype=dtype, scheme=scheme) -> Any:
                        return homogenize(image, phases, scheme=scheme, discretization="rotated", dtype=dtype,
                                          tol=1e-4, workers=1, on_failure="warn")
                    out.append((f"{dim}D {kind}, {scheme}, {dtype}", run))
        out.append((f"{dim}D isotropic conductivity, fourier", lambda image=image, dim=dim: homogenize(
            image, _phase_sets(dim)["isotropic conductivity"], discretization="fourier", tol=1e-4, workers=1,
            on_failure="warn")))
    # polycrystals of more than 256 phases: uint16 labels
    many = _rng_image((18, 18), 300, seed=5)
    ks = np.linspace(1.0, 10.0, 300)
    for dtype in ("float64", "float32"):
        out.append((f"300 phases, conductivity, {dtype}", lambda dtype=dtype: homogenize(
            many, [Conductivity(k) for k in ks], dtype=dtype, tol=1e-4, workers=1, on_failure="warn")))
        out.append((f"300 phases, elasticity, {dtype}", lambda dtype=dtype: homogenize(
            many, [IsotropicElastic(E=k, nu=0.3) for k in ks], dtype=dtype, tol=1e-4, workers=1,
            on_failure="warn")))
    out.append(("300 phases, anisotropic elasticity", lambda: homogenize(
        many, [_phase_sets(2)["anisotropic elasticity"][1]] * 300, tol=1e-4, workers=1, on_failure="warn")))
    for dim in (2, 3):
        for kind in ("isotropic conductivity", "isotropic elasticity"):
            out.append((f"{dim}D composite voxels, {kind}", lambda dim=dim, kind=kind: _composite(
                dim, kind, "rotated")))
            out.append((f"{dim}D fields, {kind}", lambda dim=dim, kind=kind: _fields(dim, kind, "rotated")))
    return out


def _composite(dim: int, kind: str, discretization: str) -> Any:
    """A Boolean model with composite interface voxels (of two solid phases: a voxel
    shared with a pore is not composite)."""
    from .microstructure import render_composite
    from .spectral import homogenize

    image, comp = render_composite("boolean", (12,) * dim, 3, 2, volume_fraction=0.3, radius=2.5)
    return homogenize(image, _phase_sets(dim)[kind], composite=comp, discretization=discretization, tol=1e-4,
                      workers=1, on_failure="warn")


def _fields(dim: int, kind: str, discretization: str) -> Any:
    """Local fields of one load (:func:`~stochhom.spectral.solve`)."""
    from .spectral import solve
    from .tensors import mandel_size

    n = dim if "conductivity" in kind else mandel_size(dim)
    return solve(_rng_image((6,) * dim, 2, seed=dim), _phase_sets(dim)[kind], macro_strain=[1.0] + [0.0] * (n - 1),
                 discretization=discretization, tol=1e-4, workers=1, on_failure="warn")


def _q1_problems() -> list[tuple[str, Callable[[], Any]]]:
    """Voxel finite elements of the FFT solver, porous and not (:mod:`~stochhom.spectral.kernels_q1`)."""
    from .materials import Void
    from .spectral import homogenize

    out: list[tuple[str, Callable[[], Any]]] = []
    for dim in (2, 3):
        image = _rng_image((6,) * dim, 2, seed=dim)
        for kind in ("isotropic conductivity", "isotropic elasticity", "anisotropic elasticity"):
            phases = _phase_sets(dim)[kind]
            out.append((f"{dim}D porous {kind}", lambda image=image, phases=phases: homogenize(
                image, [phases[1], Void()], tol=1e-4, workers=1, on_failure="warn")))
            out.append((f"{dim}D q1 {kind}", lambda image=image, phases=phases: homogenize(
                image, phases, discretization="q1", tol=1e-4, workers=1, on_failure="warn")))
        for kind in ("isotropic conductivity", "isotropic elasticity"):
            out.append((f"{dim}D q1 composite voxels, {kind}", lambda dim=dim, kind=kind: _composite(dim, kind, "q1")))
            out.append((f"{dim}D q1 fields, {kind}", lambda dim=dim, kind=kind: _fields(dim, kind, "q1")))
    return out


def _fem_problems() -> list[tuple[str, Callable[[], Any]]]:
    """Apparent properties under KUBC, SUBC, mixed and periodic conditions
    (:mod:`~stochhom.fem.boundary`): windows large enough for a multigrid hierarchy of
    several levels, whose coarse operators have blocks of another size."""
    from .materials import Void
    from .spectral import homogenize

    out: list[tuple[str, Callable[[], Any]]] = []
    for dim, side in ((2, 40), (3, 14)):
        image = _rng_image((side,) * dim, 2, seed=dim)
        for kind in ("isotropic conductivity", "isotropic elasticity"):
            phases = _phase_sets(dim)[kind]
            for boundary in ("kubc", "subc", "mixed", "periodic_fe"):
                out.append((f"{dim}D {kind}, {boundary}", lambda image=image, phases=phases, boundary=boundary:
                            homogenize(image, phases, boundary=boundary, tol=1e-6)))
            out.append((f"{dim}D porous {kind}, subc", lambda image=image, phases=phases: homogenize(
                image, [phases[1], Void()], boundary="subc", tol=1e-6)))
    return out


def _gp_problems() -> list[tuple[str, Callable[[], Any]]]:
    """The GP's compiled kernels (:mod:`~stochhom.surrogates._gp_kernels`), through the public
    methods of :class:`~stochhom.surrogates.GPR` that the study pipeline calls, for each
    noise model: fit, posterior mean and standard deviation, leave-one-out, functions; and
    the standard deviation at many points (the bounded-variance path)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 2))
    y = np.sin(3.0 * x[:, 0]) + x[:, 1] + 0.01 * rng.standard_normal(16)
    out: list[tuple[str, Callable[[], Any]]] = []
    for noise in ("homoscedastic", "heteroscedastic"):
        fitted: dict[str, Any] = {}

        def fit(noise: str = noise, fitted: dict[str, Any] = fitted) -> Any:
            from .surrogates import GPR

            fitted["model"] = GPR(kernel="matern52", noise=noise, n_restarts=0, max_iter=20, random_state=0).fit(x, y)
            return fitted["model"]

        out += [
            (f"GPR fit, {noise} noise", fit),
            (f"GPR mean, {noise} noise", lambda fitted=fitted: fitted["model"].predict(x)),
            (f"GPR mean and std, {noise} noise", lambda fitted=fitted: fitted["model"].predict(x, return_std=True)),
            (f"GPR leave-one-out, {noise} noise", lambda fitted=fitted: fitted["model"].loo_predict()),
            (f"GPR functions, {noise} noise", lambda fitted=fitted: fitted["model"].sample_functions(x, 2, rng=0)),
        ]

    def many_points() -> Any:
        """Variances at many points take the certified low-rank path (its own kernel)."""
        from .surrogates import GPR
        from .surrogates.gpr import _FAST_VARIANCE_MIN_TRAIN, _FAST_VARIANCE_RATIO

        n = _FAST_VARIANCE_MIN_TRAIN
        xb = rng.uniform(size=(n, 2))
        yb = np.sin(3.0 * xb[:, 0]) + xb[:, 1] + 0.1 * rng.standard_normal(n)  # noisy: few eigenpairs certify
        model = GPR(n_restarts=0, max_iter=5, random_state=0).fit(xb, yb)
        return model.predict(rng.uniform(size=(_FAST_VARIANCE_RATIO * n, 2)), return_std=True)

    out.append(("GPR mean and std at many points", many_points))
    return out


_PROBLEMS: dict[str, Callable[[], list[tuple[str, Callable[[], Any]]]]] = {
    "spectral": _spectral_problems,
    "fem": _fem_problems,
    "q1": _q1_problems,
    "gp": _gp_problems,
}


def _run_group(group: str) -> dict[str, Any]:
    """Run the problems of ``group`` in this process; return what was compiled and loaded."""
    t0 = time.perf_counter()
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loose tolerances and tiny grids: not what is measured here
        for label, run in _PROBLEMS[group]():
            try:
                run()
            except Exception as exc:  # a problem that fails still leaves the others compiled
                failures.append(f"{label}: {type(exc).__name__}: {exc}")
    found = kernels(GROUPS[group])
    return {
        "group": group,
        "seconds": time.perf_counter() - t0,
        "compiled": sum(sum(d.stats.cache_misses.values()) for d in found.values()),
        "loaded": sum(sum(d.stats.cache_hits.values()) for d in found.values()),
        "cache_dirs": sorted({str(d.stats.cache_path) for d in found.values()}),
        "failures": failures,
    }


def warm_up(groups: Sequence[str] | None = None, *, jobs: int | None = None,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Compile (or load) every numba kernel of stochhom into numba's on-disk cache.

    Parameters
    ----------
    groups : sequence of str, optional
        Names of :data:`GROUPS` (default: all of them).
    jobs : int, optional
        Processes running groups in parallel (default: one per usable core, at most one
        per group); ``1`` runs them in this process.
    log : callable, optional
        Receives one line per finished group (default: print to stderr).

    Returns
    -------
    dict
        ``seconds`` (wall time), ``groups`` (per group: ``seconds``, ``compiled`` and
        ``loaded`` specializations, ``cache_dirs``, ``failures``).

    Notes
    -----
    Run it again after upgrading stochhom or numba, or after editing a kernel's source
    file: what is still valid is loaded, the rest compiled. See the module docstring for
    where the cache is written.
    """
    say = log or (lambda msg: print(msg, file=sys.stderr))
    names = list(GROUPS) if groups is None else list(groups)
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        from .errors import InputError

        raise InputError(f"unknown warm-up group(s) {unknown}; choose among {list(GROUPS)}")
    if jobs is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        jobs = max(1, min(cores, len(names)))
    t0 = time.perf_counter()
    results = []

    def report(res: dict[str, Any]) -> None:
        results.append(res)
        failed = f", {len(res['failures'])} problem(s) failed" if res["failures"] else ""
        say(f"warmup {res['group']}: {res['seconds']:.1f} s, {res['compiled']} kernel specialization(s) compiled, "
            f"{res['loaded']} loaded from the cache{failed}")
        for line in res["failures"]:
            say(f"  failed: {line}")

    if jobs == 1 or len(names) == 1:
        for g in names:
            report(_run_group(g))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # groups own disjoint source files: no two processes write one cache index
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_group, g): g for g in names}
            for fut in as_completed(futures):
                try:
                    report(fut.result())
                except Exception as exc:  # a crashed worker: its group is reported as failed
                    report({"group": futures[fut], "seconds": time.perf_counter() - t0, "compiled": 0, "loaded": 0,
                            "cache_dirs": [], "failures": [f"the process died: {type(exc).__name__}: {exc}"]})
    order = {g: i for i, g in enumerate(names)}
    results.sort(key=lambda r: order[r["group"]])
    seconds = time.perf_counter() - t0
    dirs = sorted({d for r in results for d in r["cache_dirs"]})
    say(f"warmup: {seconds:.1f} s; numba cache in {', '.join(dirs)}")
    return {"seconds": seconds, "groups": {r["group"]: r for r in results}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``stochhom warmup`` (also ``python -m stochhom.warmup``)."""
    parser.add_argument("--group", dest="groups", action="append", choices=list(GROUPS), default=None,
                        help="warm up only this group of kernels (repeatable; default: all)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes running groups in parallel (default: one per core)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but failures")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stochhom.warmup``: the same as ``stochhom warmup``; returns the exit status
    (0, or 2 when a problem failed: its kernels may then compile in the first run that needs them)."""
    from .cli import main as cli_main

    return cli_main(["warmup", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
