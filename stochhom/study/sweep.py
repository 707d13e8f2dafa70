"""Parameter sweeps: resumable, parallel (local processes or Dask), stored incrementally in zarr.

:func:`run_sweep` runs a :class:`~stochhom.study.schema.Study`: every sample (parameter
point × replicate) is generated from its own seed, homogenized, and written to a zarr
store as soon as a batch completes.

Store layout (zarr format 2, readable with ``xarray.open_zarr``): the
apparent-properties variables of :mod:`stochhom.statistics.ensemble`, chunked along
``sample``, a ``done`` flag and a ``warmup_time`` (seconds, see Timings) per sample,
the coordinates of every sample (``point``, ``replicate``, ``seed``, ``specimen``,
every parameter), and ``attrs`` with the study, its hash and the stochhom version.

Timings: ``solve_time`` (per sample) is the wall time of the sample's homogenization,
without the compilation or loading of the numba kernels: every process that computes
samples (the in-process run of ``workers=1``, each spawned worker, each Dask worker)
first solves a tiny image of the study's physics and solver options, once per call of
:func:`run_sweep` (:func:`_warm_up`), and that time is stored as ``warmup_time`` of the
first sample the process then computes (0.0 for every other computed sample, NaN while
a sample is not computed). The sum of ``warmup_time`` is the compile/load cost of the
sweep (over all its runs, when it was resumed) and the number of its positive entries
the number of warm-ups, one per process and run (a process whose kernels were already
loaded warms up in milliseconds). Stores written
before ``warmup_time`` existed lack the variable; they are read and resumed as they are
(the variable is not added to them, and the new samples' warm-ups are not recorded).

Crash safety: results of a batch are written first and the ``done`` flags after
them, every chunk write is atomic (zarr writes a temporary file and renames it), and
a run that restarts skips the samples flagged done and recomputes the others. A run
killed at any point (even with SIGKILL) therefore loses at most the samples in
flight and the last unflushed batch, and the final dataset is identical whatever the
number of workers, the scheduler or the interruptions (every sample has its own
seed; only the timings ``solve_time`` and ``warmup_time`` vary).

Resuming with a changed study is refused, with the differences listed, unless
``restart=True`` (which deletes the store). The study hash covers the samples version
(:data:`~stochhom.study.schema.SAMPLES_VERSION`), so a store written by a release of
stochhom that computes samples differently is refused too; ``attrs["stochhom_versions"]``
lists the releases that computed samples of a store.

Repair: ``repair=True`` rebuilds a damaged store of the study (:func:`_repair`): a
new store is written from the study, every readable chunk is copied into it, and the
samples whose data or ``done`` flag were unreadable are recomputed from their seeds.

Dask: the client connects before the store is created or deleted (an unreachable
scheduler leaves nothing behind); the workers of a ``LocalCluster`` exit with the main
process (their nannies live in it).

Interruption: SIGINT (Ctrl-C) and SIGTERM stop a run within seconds. The samples
already computed are written (flushed), the queued batches are cancelled, the worker
processes are terminated, and :func:`run_sweep` raises :class:`SweepInterrupted` (a
:class:`KeyboardInterrupt` carrying ``exit_code`` 130 or 143). Workers also exit by
themselves (within a second) when the main process dies, even by SIGKILL: each one
watches its parent.

Lock: a run holds ``<store>.lock`` (next to the store; JSON with pid, host, start time)
for its whole duration, so that a second run on the same store is refused with a
:class:`SweepStoreError` naming the running process. A lock left by a dead process of
the same host (a SIGKILL, a power cut) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..log import emitter, get_logger
from ..microstructure.composite import CompositeVoxels, render_composite
from ..microstructure.ensemble import GENERATORS
from ..statistics.ensemble import MAX_PHASE_FRACTIONS, assemble, sample_record
from ..tensors import mandel_size
from .schema import Study

__all__ = ["check_unlocked", "run_sweep", "plan_summary", "open_store", "store_path", "SweepStoreError",
           "SweepInterrupted", "lock_path"]

_logger = get_logger(__name__)

_CHUNK = 64  # samples per zarr chunk
_STATUS_LEN = 300
_WORKER_STARTUP = 1.6  # seconds for a spawned worker to import stochhom and load the kernels


_CONNECT_TIMEOUT = "20s"  # to reach a Dask scheduler
_PARENT_POLL = 0.5  # seconds between two checks of a worker that its parent is alive
_LOCK_CREATING = 30.0  # seconds during which an empty or unreadable lock file counts as being written


class SweepStoreError(InputError):
    """The output store cannot be used for this study (another study, unwritable path,
    or a store locked by a running sweep)."""


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by SIGINT (Ctrl-C) or SIGTERM, after its finished samples were stored.

    A :class:`KeyboardInterrupt` (so that ``except Exception`` does not swallow a Ctrl-C,
    and code that handles Ctrl-C already handles it), not a :class:`~stochhom.errors.StochhomError`.
    Running the sweep again resumes it.

    Attributes
    ----------
    signal : int
        ``signal.SIGINT`` or ``signal.SIGTERM`` (``SIGINT`` for a ``KeyboardInterrupt``
        raised otherwise).
    exit_code : int
        The conventional exit status, ``128 + signal``: 130 for SIGINT, 143 for SIGTERM.
    done, total : int
        Samples stored (over all runs of the store) and samples of the study.
    path : pathlib.Path
        The store.
    """

    def __init__(self, message: str = "sweep interrupted", *, signum: int = signal.SIGINT, done: int = 0,
                 total: int = 0, path: str | Path = ".") -> None:
        super().__init__(message)
        self.signal = int(signum)
        self.exit_code = 128 + int(signum)
        self.done = int(done)
        self.total = int(total)
        self.path = Path(path)


# ------------------------------------------------------------------------------ signals
@contextlib.contextmanager
def _stop_signals() -> Iterator[dict[str, int | None]]:
    """Turn SIGINT and SIGTERM into one ``KeyboardInterrupt`` in the main thread.

    Yields a dict whose ``"signum"`` is the first signal received (``None`` before).
    Signals after the first are ignored while the sweep stops (the stop takes seconds and
    must flush the finished samples). Only default handlers are replaced, and only in the
    main thread; the previous handlers are restored on exit.
    """
    state: dict[str, int | None] = {"signum": None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: Any) -> None:
        if state["signum"] is None:
            state["signum"] = signum
            raise KeyboardInterrupt

    previous = {}
    for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(sig) is default:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_PARENT_POLL)
        if os.getppid() != parent:
            os._exit(1)


def _worker_init(parent: int) -> None:
    """Initializer of the spawned workers: ignore Ctrl-C (the main process stops them) and
    exit as soon as the main process is gone (even killed by SIGKILL)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), name="stochhom-parent-watch", daemon=True).start()


# --------------------------------------------------------------------------------- lock
def lock_path(path: str | Path) -> Path:
    """The lock file of the sweep store ``path``: ``<store>.lock``, next to it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to detect a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return True
    return True


def _read_lock(lock: Path) -> tuple[dict[str, Any] | None, float]:
    """Content of a lock file (``None`` if unreadable or empty) and its age in seconds."""
    age = time.time() - lock.stat().st_mtime  # FileNotFoundError: released meanwhile
    try:
        info = json.loads(lock.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError):
        return None, age
    return (info if isinstance(info, dict) else None), age


def _stale(info: dict[str, Any] | None, age: float) -> bool:
    """Whether a lock was left by a process that no longer runs (only decidable on its host)."""
    if info is None:  # empty or garbled: being written, or its writer died while writing
        return age > _LOCK_CREATING
    if info.get("host") != socket.gethostname():
        return False
    try:
        pid = int(info["pid"])
    except (KeyError, TypeError, ValueError):
        return age > _LOCK_CREATING
    if not _alive(pid):
        return True
    start = info.get("pid_start")
    return start is not None and _proc_start(pid) not in (None, start)  # the pid was reused


def _holder(info: dict[str, Any] | None) -> str:
    if info is None:
        return "a process that is creating the lock"
    return f"process {info.get('pid')} on host {info.get('host')} (started {info.get('started')})"


def _break_stale(lock: Path, seen: dict[str, Any] | None) -> None:
    """Delete the stale lock ``lock`` if it still holds ``seen``; a short-lived
    ``.break`` file serializes the processes that take it over at the same time."""
    brk = lock.with_name(lock.name + ".break")
    try:
        fd = os.open(brk, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - brk.stat().st_mtime > _LOCK_CREATING:  # left by a crashed breaker
                brk.unlink()
        return
    os.close(fd)
    try:
        try:
            now, _ = _read_lock(lock)
        except FileNotFoundError:
            return
        if now == seen:
            lock.unlink()
    finally:
        with contextlib.suppress(OSError):
            brk.unlink()


def check_unlocked(path: str | Path) -> None:
    """Raise :class:`SweepStoreError` if a live sweep holds the lock of store ``path`` (before
    deleting a store or its results directory: ``--restart`` must not pull a store from under a
    running sweep). A stale lock (dead process) passes."""
    lock = lock_path(path)
    if not lock.exists():
        return
    try:
        held, age = _read_lock(lock)
    except FileNotFoundError:
        return
    if not _stale(held, age):
        raise SweepStoreError(f"{path} is in use by another sweep: {_holder(held)}; wait for it to finish or stop "
                              f"it before --restart (if no such run is active, delete the lock file {str(lock)!r})")


@contextlib.contextmanager
def _store_lock(path: Path) -> Iterator[Path]:
    """Hold the lock of store ``path`` (see :func:`lock_path`) for the duration of the block.

    The lock file is created atomically (``O_CREAT | O_EXCL``) and holds JSON:
    ``{"pid", "host", "started" (ISO 8601, UTC), "pid_start", "token", "store"}``.
    A lock held by a live process (or a process of another host) raises
    :class:`SweepStoreError` naming it; one left by a dead process of this host is taken over.
    The lock is removed on exit, whatever the exit (return, error, interruption).
    """
    lock = lock_path(path)
    token = uuid.uuid4().hex
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "pid_start": _proc_start(os.getpid()), "token": token, "store": str(path)}
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepStoreError(f"cannot write the output store {str(path)!r}: {exc.strerror or exc}") from None
    for _ in range(20):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held, age = _read_lock(lock)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if not _stale(held, age):
                raise SweepStoreError(
                    f"{path} is in use by another sweep: {_holder(held)}; wait for it to finish or stop it "
                    f"(if no such run is active, delete the lock file {str(lock)!r})") from None
            _break_stale(lock, held)
            time.sleep(0.05)
            continue
        except OSError as exc:
            raise SweepStoreError(f"cannot write the output store {str(path)!r}: {exc.strerror or exc}") from None
        try:
            os.write(fd, json.dumps(info).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        break
    else:
        raise SweepStoreError(f"cannot lock {path}: the lock file {str(lock)!r} keeps changing")
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError, ValueError, FileNotFoundError):
            held, _ = _read_lock(lock)
            if held is not None and held.get("token") == token:
                lock.unlink()


# ----------------------------------------------------------------------------- samples
def _one(study: Study, k: int, params: dict[str, Any], seed: int) -> dict[str, Any]:
    gen = GENERATORS[study.generator]
    rng = np.random.default_rng(int(seed))
    solver = dict(study.solver)
    workers = int(solver.pop("workers", 1))
    shape = study.sample_shape(params)
    factor = solver.pop("composite_voxels", None)
    try:
        if factor:
            out = render_composite(study.generator, shape, rng, int(factor), voxel_size=study.voxel_size,
                                   workers=workers, **study.generator_params(params))
            solver["composite"] = out[1]
        else:
            out = gen.func(shape, rng, voxel_size=study.voxel_size, workers=workers, **study.generator_params(params))
    except InputError as exc:
        dim = len(shape)
        return {"dim": dim, "volume": float(np.prod(shape) * study.voxel_size**dim), "phase_fraction": np.zeros(1),
                "physics": None, "effective": None, "iterations": None, "residual": None, "converged": 0,
                "status": f"failed: generation: {exc}", "solve_time": 0.0}
    image = out[0] if isinstance(out, tuple) else out
    return sample_record(image, study.phases, params, study.voxel_size, workers=workers, **solver)


#: The runs (of :func:`run_sweep`) for which this process has warmed up (see :func:`_warm_up`).
_WARMED: set[str] = set()


def _warm_up(study: Study, params: dict[str, Any], run: str | None = None) -> float:
    """Compile or load the kernels of ``study`` in this process; return the seconds spent.

    Solves a tiny image (4 voxels wide) holding every phase label of the study, with its
    phases (at ``params``), physics, dimension and solver options (scheme, dtype, ...), so
    that the compiled kernels the samples use are loaded before any sample is timed.
    With ``run`` (a token of one call of :func:`run_sweep`), warms up only once per run
    and process and returns 0.0 for the later calls. A warm-up that fails (it never
    should) is ignored: the sweep is not affected, only the first sample's
    ``solve_time`` then holds the compilation.
    """
    if run is not None and run in _WARMED:
        return 0.0
    t = time.perf_counter()
    try:
        labels = np.array(sorted(int(k) for k in study.phases))
        side = max(4, int(np.ceil(labels.size ** (1 / study.dim))))
        tiny = np.resize(labels, side**study.dim).reshape((side,) * study.dim)
        solver = dict(study.solver)
        if solver.pop("composite_voxels", None):  # one composite voxel, so its kernel compiles too
            solver["composite"] = CompositeVoxels(tiny.shape, np.array([0]), np.array([[tiny.flat[0]] * 2]),
                                                  np.array([0.5]), np.eye(study.dim)[:1], 2)
        sample_record(tiny, study.phases, params, study.voxel_size, **solver)
    except Exception:  # best effort: a failed warm-up must not fail the sweep
        pass
    if run is not None:
        _WARMED.add(run)
    return time.perf_counter() - t


def _run_batch(
    study: Study, items: list[tuple[int, dict[str, Any], int]], run: str | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """Worker task: generate and homogenize a batch of samples (picklable).

    The first sample this process computes in run ``run`` is preceded by :func:`_warm_up`,
    whose seconds go into that sample's record as ``warmup_time`` (0.0 for the others).
    """
    warm = _warm_up(study, items[0][1], run) if items else 0.0
    out = []
    for k, params, seed in items:
        rec = _one(study, k, params, seed)
        rec["warmup_time"], warm = warm, 0.0
        out.append((k, rec))
    return out


# ------------------------------------------------------------------------------- store
def _template(study: Study, samples: list[dict[str, Any]], seeds: np.ndarray) -> xr.Dataset:
    n = len(samples)
    dim = study.dim
    elastic = study.physics == "elasticity"
    ne = mandel_size(dim) if elastic else dim
    n_phases = max(int(k) for k in study.phases) + 1
    data: dict[str, Any] = {
        "iterations": (("sample", "load_case"), np.full((n, ne), -1, dtype=np.int64)),
        "residual": (("sample", "load_case"), np.full((n, ne), np.nan)),
        "converged": (("sample",), np.zeros(n, dtype=np.int8)),
        "status": (("sample",), np.full(n, "", dtype=f"U{_STATUS_LEN}")),
        "solve_time": (("sample",), np.full(n, np.nan)),
        "warmup_time": (("sample",), np.full(n, np.nan)),
        "volume": (("sample",), np.full(n, np.nan)),
        "done": (("sample",), np.zeros(n, dtype=np.int8)),
    }
    if n_phases <= MAX_PHASE_FRACTIONS:
        data["phase_fraction"] = (("sample", "phase"), np.full((n, n_phases), np.nan))
    if elastic:
        data["stiffness"] = (("sample", "i", "j"), np.full((n, ne, ne), np.nan))
        data["bulk_modulus"] = (("sample",), np.full(n, np.nan))
        data["shear_modulus"] = (("sample",), np.full(n, np.nan))
    else:
        data["conductivity"] = (("sample", "i", "j"), np.full((n, ne, ne), np.nan))
        data["conductivity_eigenvalues"] = (("sample", "k"), np.full((n, ne), np.nan))
    coords: dict[str, Any] = {
        "sample": ("sample", np.arange(n)),
        "point": ("sample", np.array([s["point"] for s in samples])),
        "replicate": ("sample", np.array([s["replicate"] for s in samples])),
        "seed": ("sample", seeds),
        "specimen": ("sample", np.array([f"{study.name}-{s:016x}" for s in seeds])),
    }
    for name in samples[0]["params"]:
        vals = [s["params"][name] for s in samples]
        coords[name] = ("sample", np.array(vals, dtype=float if all(isinstance(v, (int, float)) for v in vals)
                                           else str))
    attrs = {
        "kind": "stochhom sweep",
        "study_name": study.name,
        "study_hash": study.hash(),
        "study": json.dumps(study.content(), sort_keys=True),
        "physics": study.physics,
        "dim": dim,
        "generator": study.generator,
        "voxel_size": study.voxel_size,
        "periodic": int(GENERATORS[study.generator].is_periodic(study.fixed)),
        "stochhom_version": _version(),
        "stochhom_versions": json.dumps([_version()]),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _version() -> str:
    from .. import __version__

    return __version__


def _record_version(path: Path) -> None:
    """Add this stochhom's version to the store's ``stochhom_versions`` (the versions that
    computed its samples: a resume by a release with the same samples version is allowed)."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    try:
        versions = json.loads(group.attrs.get("stochhom_versions", "[]"))
    except ValueError:
        versions = []
    if _version() not in versions:
        group.attrs["stochhom_versions"] = json.dumps([*versions, _version()])


def _create(path: Path, template: xr.Dataset, fill: Callable[[Path], None] | None = None) -> None:
    """Write the empty store next to ``path`` (then ``fill(tmp)``, if given) and rename it into
    place: a kill never leaves half a store. An existing ``path`` is replaced."""
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    old = path.with_name(f".{path.name}.replaced-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        enc = {v: {"chunks": (_CHUNK,) + template[v].shape[1:]} for v in template.data_vars}
        template.to_zarr(tmp, mode="w", zarr_format=2, consolidated=False, encoding=enc)
        if fill is not None:
            fill(tmp)
        if path.exists():  # a directory is not replaced by os.replace: move it aside first
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SweepStoreError(f"cannot write the output store {str(path)!r}: {exc.strerror or exc}") from None


#: Variables that stores of older stochhom versions may lack (a sample is not lost without them).
_OPTIONAL = ("warmup_time",)


def _old_array(path: Path, name: str) -> Any:
    """The zarr array ``name`` of the store at ``path``, or None if its metadata cannot be read."""
    import zarr

    try:
        return zarr.open_array(str(path / name), mode="r")
    except Exception:  # missing or damaged metadata
        return None


def _repair(path: Path, study: Study, samples: list[dict[str, Any]], seeds: np.ndarray) -> dict[str, Any]:
    """Rebuild a damaged store of this study, keeping every sample whose stored results all read.

    A new store is written from the study (so damaged coordinates and metadata are
    regenerated), every readable chunk of every per-sample variable is copied into it,
    and a sample stays ``done`` only if its ``done`` flag and all of its variables were
    read; the others are recomputed by the run that follows. The new store replaces the
    old one in one rename. Returns ``{"kept": int, "lost": [samples], "variables": {name: [samples]}}``
    (``lost``: samples that were done and will be recomputed).
    """
    try:
        attrs = json.loads((path / ".zattrs").read_text())
    except (OSError, ValueError):
        raise SweepStoreError(
            f"cannot repair {path}: its attributes (.zattrs) cannot be read, so nothing says which study wrote "
            "it; run again with --restart to start over (the finished samples are lost)") from None
    if attrs.get("kind") != "stochhom sweep":
        raise SweepStoreError(f"{path} is not a stochhom sweep store; --repair repairs only the stores of sweeps")
    if attrs.get("study_hash") != study.hash():
        raise SweepStoreError(f"cannot repair {path}: it holds the results of a different study (or of another "
                              "samples version); run again with --restart to start over")
    template = _template(study, samples, seeds)
    n = len(samples)
    unreadable: dict[str, np.ndarray] = {}
    old_done = np.zeros(n, dtype=bool)

    def fill(tmp: Path) -> None:
        import zarr

        new = zarr.open_group(str(tmp), mode="r+")
        for name in template.data_vars:
            bad = np.zeros(n, dtype=bool)
            arr = _old_array(path, name)
            if arr is None or arr.shape != new[name].shape:
                if not (arr is None and name in _OPTIONAL and not (path / name).exists()):
                    bad[:] = True
                unreadable[name] = bad
                continue
            for start in range(0, n, _CHUNK):
                stop = min(start + _CHUNK, n)
                try:
                    values = arr[start:stop]
                except Exception:  # a truncated, overwritten or missing chunk file
                    bad[start:stop] = True
                    continue
                if name == "done":
                    old_done[start:stop] = values == 1
                else:
                    new[name][start:stop] = values
            unreadable[name] = bad
        lost_any = np.any(np.stack(list(unreadable.values())), axis=0)
        keep = old_done & ~lost_any
        new["done"][:] = keep.astype(np.int8)
        versions = attrs.get("stochhom_versions")
        if isinstance(versions, str):
            new.attrs["stochhom_versions"] = versions

    _create(path, template, fill)
    lost_any = np.any(np.stack(list(unreadable.values())), axis=0)
    maybe_done = old_done | unreadable.get("done", np.zeros(n, dtype=bool))  # an unreadable flag may have been set
    lost = np.flatnonzero(maybe_done & lost_any)
    return {"kept": int((old_done & ~lost_any).sum()), "lost": [int(k) for k in lost],
            "unreadable_done": int(unreadable.get("done", np.zeros(n, bool)).sum()),
            "variables": {k: [int(i) for i in np.flatnonzero(v)] for k, v in unreadable.items() if v.any()}}


def _grow(path: Path, study: Study, samples: list[dict[str, Any]], seeds: np.ndarray, n_old: int) -> None:
    """Extend the store of an adaptive design's previous round to this round's study, whose
    first ``n_old`` samples are the stored ones (same ids, parameters and seeds): a new store
    is written from the study, the stored samples' variables (and ``done`` flags) are copied
    into it, and it replaces the old one in one rename."""
    import zarr

    template = _template(study, samples, seeds)
    old = zarr.open_group(str(path), mode="r")
    if np.any(np.asarray(old["seed"][:]) != seeds[:n_old]):
        raise SweepStoreError(f"{path}: the stored samples are not the first {n_old} of this adaptive design; "
                              "run again with --restart")

    def fill(tmp: Path) -> None:
        new = zarr.open_group(str(tmp), mode="r+")
        for name in template.data_vars:
            if name in old:
                new[name][:n_old] = old[name][:]
        versions = dict(old.attrs).get("stochhom_versions")
        if isinstance(versions, str):
            new.attrs["stochhom_versions"] = versions

    _create(path, template, fill)


def store_path(study: Study) -> Path:
    """The zarr store of a study: ``[study].output`` if it ends in ``.zarr``, else ``output/samples.zarr``
    (the results directory of :func:`~stochhom.study.runner.run_study`)."""
    out = Path(study.output)
    return out if out.suffix == ".zarr" else out / "samples.zarr"


def open_store(path: str | Path) -> xr.Dataset:
    """Open a sweep store (or any stochhom zarr/netCDF dataset) as an ``xarray.Dataset``."""
    from ..io import open_dataset

    return open_dataset(path)


def _done_flags(path: Path) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_group(str(path), mode="r")["done"][:])


def _check_layout(path: Path, study: Study) -> None:
    """Refuse to resume a store that lacks variables of this study's layout."""
    import zarr

    group = zarr.open_group(str(path), mode="r")
    n = len(study.samples())
    need = {"done", "converged", "status", "volume", "iterations", "residual"}
    need |= {"stiffness", "bulk_modulus", "shear_modulus"} if study.physics == "elasticity" else {
        "conductivity", "conductivity_eigenvalues"}
    missing = sorted(v for v in need if v not in group)
    wrong = sorted(v for v in need - set(missing) if group[v].shape[0] != n)
    if missing or wrong:
        raise SweepStoreError(
            f"{path} is an incomplete or damaged store of this study (missing: {missing or 'none'}, "
            f"wrong length: {wrong or 'none'}); run again with --restart to start over"
        )


def _written_by_a_sweep(path: Path) -> bool:
    """Whether the raw metadata of a (possibly damaged, unreadable) store says a stochhom sweep
    wrote it: the only stores ``--restart`` deletes when xarray cannot open them."""
    for name in (".zattrs", "zarr.json"):
        try:
            if '"stochhom sweep"' in (path / name).read_text(errors="replace"):
                return True
        except OSError:
            continue
    return False


def _check_existing(path: Path, study: Study, restart: bool) -> bool:
    """True if an existing store of this study can be resumed."""
    if not path.exists():
        return False
    try:
        attrs = dict(xr.open_zarr(path, consolidated=False).attrs)
    except Exception:  # any unreadable store
        attrs = {}
    if attrs.get("kind") != "stochhom sweep":
        if restart and path.is_dir() and attrs.get("kind") is None and not any(path.iterdir()):
            return False
        if restart and _written_by_a_sweep(path):  # damaged, but ours: --restart may delete it
            shutil.rmtree(path)
            return False
        raise SweepStoreError(
            f"{path} exists and is not a stochhom sweep store; choose another [study].output "
            "(--restart does not delete data it did not write)"
        )
    if attrs.get("study_hash") == study.hash():
        if restart:
            shutil.rmtree(path)
            return False
        _check_layout(path, study)
        return True
    if restart:
        shutil.rmtree(path)
        return False
    old = json.loads(attrs.get("study", "{}"))
    new = study.content()
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed == ["samples_version"]:
        raise SweepStoreError(
            f"{path} was written by stochhom {attrs.get('stochhom_version', '(unknown)')}, whose samples are "
            f"computed differently from this stochhom {_version()}'s (samples version "
            f"{old.get('samples_version', 0)} -> {new['samples_version']}); resuming would mix the two. Run again "
            "with --restart to recompute every sample, or keep using the stochhom version that wrote the store"
        )
    raise SweepStoreError(
        f"{path} holds the results of a different study (changed: {', '.join(changed) or 'unknown'}); "
        "resuming would mix two studies. Use another output path, or --restart to delete the store and start over"
    )


def _write(path: Path, records: list[tuple[int, dict[str, Any]]], physics: str) -> None:
    """Write a batch of results, then flag the samples done (one atomic write per chunk)."""
    import zarr

    idx = np.array([k for k, _ in records])
    order = np.argsort(idx)
    idx = idx[order]
    ds = assemble([records[i][1] for i in order], physics=physics)
    group = zarr.open_group(str(path), mode="r+")
    for name in ds.data_vars:
        if name not in group:
            continue
        arr = group[name]
        values = ds[name].values
        if name == "status":
            values = np.array([s[:_STATUS_LEN] for s in values], dtype=f"U{_STATUS_LEN}")
        if values.ndim == 2 and arr.ndim == 2 and values.shape[1] != arr.shape[1]:  # phase fractions
            padded = np.zeros((values.shape[0], arr.shape[1]))  # absent labels have fraction 0
            m = min(values.shape[1], arr.shape[1])
            padded[:, :m] = values[:, :m]
            values = padded
        arr.oindex[(idx,) + (slice(None),) * (arr.ndim - 1)] = values
    if "warmup_time" in group:  # absent from stores written before it existed
        group["warmup_time"].oindex[idx] = np.array([float(records[i][1].get("warmup_time", 0.0)) for i in order])
    group["done"].oindex[idx] = np.ones(idx.size, dtype=np.int8)


# ---------------------------------------------------------------------------- execution
def _batches(items: list, workers: int) -> list[list]:
    """Batches of at most 32 samples, at least 8 per worker (load balance at the end of a run)."""
    size = max(1, min(32, len(items) // max(1, 8 * workers)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _execute(
    study: Study,
    items: list[tuple[int, dict[str, Any], int]],
    workers: int,
    scheduler: str | None,
    on_results: Callable[[list[tuple[int, dict[str, Any]]]], None],
    client: Any = None,
) -> None:
    batches = _batches(items, workers)
    run = uuid.uuid4().hex  # each process that computes samples of this call warms up once
    if scheduler is None and workers == 1:
        for b in batches:
            on_results(_run_batch(study, b, run))
        return
    if scheduler is None:
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                   initargs=(os.getpid(),))
        futures: list = []
        handled: set = set()
        try:
            futures = [pool.submit(_run_batch, study, b, run) for b in batches]
            for fut in as_completed(futures):
                handled.add(fut)
                on_results(fut.result())
        except BaseException:
            _stop_pool(pool)
            # keep the batches that finished while the loop was stopping
            for fut in futures:
                if fut not in handled and fut.done() and not fut.cancelled() and fut.exception() is None:
                    on_results(fut.result())
            raise
        pool.shutdown(wait=True)
        return
    from distributed import as_completed as dask_completed

    futures = []
    handled = set()
    try:
        futures = client.map(_run_batch, [study] * len(batches), batches, [run] * len(batches), pure=False)
        for fut in dask_completed(futures):
            handled.add(fut.key)
            on_results(fut.result())
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel([f for f in futures if f.status != "finished"])
            for fut in futures:
                if fut.key not in handled and fut.status == "finished":
                    on_results(fut.result())
        raise


@contextlib.contextmanager
def _dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask client for ``scheduler`` (None: no Dask), connected before anything is written,
    so that an unreachable scheduler leaves no store behind."""
    if scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a dependency
        raise InputError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    cluster = None
    if scheduler == "local":
        import logging

        # silence_logs: the workers' warnings about tasks cancelled by a Ctrl-C are noise
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=_CONNECT_TIMEOUT)
        except (OSError, ValueError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); nothing was written. "
                             "Start the scheduler (dask scheduler) and its workers, or run without --scheduler "
                             "(local processes)") from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def _stop_pool(pool: ProcessPoolExecutor, grace: float = 2.0) -> None:
    """Stop a process pool now: cancel the queued batches and terminate the workers
    (``shutdown(wait=True)``, or leaving a ``with`` block, would wait for every queued batch)."""
    procs = list((pool._processes or {}).values())  # the only handle on the workers
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)


def plan_summary(study: Study, done: int = 0) -> dict[str, Any]:
    """What a sweep will do: points, replicates, samples, already done."""
    points = study.points_table()
    return {
        "study": study.name,
        "generator": study.generator,
        "shape": list(study.shape),
        "design": study.design,
        "parameters": list(study.parameters),
        "points": len(points),
        "replicates": study.replicates,
        "samples": len(points) * study.replicates,
        "done": int(done),
        "remaining": len(points) * study.replicates - int(done),
        "output": str(store_path(study)),
        "physics": study.physics,
    }


def _calibrate(study: Study, items: list[tuple[int, dict[str, Any], int]], budget: float = 10.0) -> list[float]:
    """Seconds per sample of ``items`` (timed after a warm-up), stopping once ``budget`` is spent.

    The warm-up (:func:`_warm_up`, at the first sample's parameters) loads the compiled
    kernels, so that the timings are those of a running sweep.
    """
    run = uuid.uuid4().hex
    _warm_up(study, items[0][1], run)
    times: list[float] = []
    for item in items:
        t = time.perf_counter()
        _run_batch(study, [item], run)
        times.append(time.perf_counter() - t)
        if sum(times) > budget:
            break
    return times


def run_sweep(
    study: Study,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    restart: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    flush_seconds: float = 2.0,
    log: Callable[[str], None] | None = None,
    repair: bool = False,
    grow_from: Study | None = None,
) -> xr.Dataset | dict[str, Any]:
    """Run (or resume) a sweep and return its apparent-properties ``Dataset``.

    Parameters
    ----------
    study : Study
        From :func:`~stochhom.study.load_study`.
    workers : int, optional
        Parallel worker processes (default: one per core); ``1`` runs in-process.
    scheduler : str, optional
        A Dask scheduler address, or ``"local"`` for a ``LocalCluster`` with ``workers``
        processes. Default: local processes without Dask.
    restart : bool
        Delete an existing store of this output path first (also needed to reuse the
        path for a changed study).
    dry_run : bool
        Only print the plan and a cost estimate (from timing one sample); return the
        plan as a dict.
    progress : bool
        Show a progress bar (rate and ETA) on stderr.
    flush_seconds : float
        Write completed samples at least this often.
    log : callable, optional
        Receives every progress message, as well as the logger ``stochhom.study.sweep``
        (resume and repair notices and failed samples at WARNING, the rest at INFO). Without
        it, the messages go to the logger only: nothing is printed unless the application
        configures logging (:func:`stochhom.log.configure`).
    repair : bool
        First rebuild a damaged store of this study: every sample whose results (or
        ``done`` flag) sit in an unreadable chunk is recomputed, every other finished
        sample is kept, and damaged coordinates and metadata are rewritten from the
        study. A store whose attributes cannot be read (so nothing says which study
        wrote it) cannot be repaired: ``restart`` it. Harmless on an intact store.
    grow_from : Study, optional
        An adaptive design's previous round (:mod:`stochhom.surrogates.adaptive`): a store
        of that study is extended to this one (whose first samples are its samples) and
        resumed; a store of this study is resumed as usual.

    Returns
    -------
    xarray.Dataset or dict
        The results (all samples), or the plan for ``dry_run``. After ``repair``, the
        dataset's ``attrs["repaired_samples"]`` (not stored) counts the samples recomputed.

    Raises
    ------
    SweepStoreError
        The store holds another study, is locked by a running sweep, cannot be written,
        or cannot be repaired.
    InputError
        Bad ``workers`` or ``scheduler``, an unreachable Dask scheduler (nothing is
        written then), or ``restart`` with ``repair``.
    SweepInterrupted
        SIGINT or SIGTERM: the finished samples are stored.
    """
    say = emitter(_logger, log)
    if workers is None:
        workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    if restart and repair:
        raise InputError("restart deletes the store and repair keeps its readable samples: choose one")
    if scheduler is not None and scheduler != "local" and ":" not in str(scheduler):
        raise InputError(f"--scheduler must be 'local' or a Dask scheduler address such as "
                         f"'tcp://host:8786', got {scheduler!r}")
    path = store_path(study)
    samples = study.samples()
    seeds = study.seeds([s["sample"] for s in samples])
    if dry_run:
        done = 0
        if path.exists():
            try:
                if dict(xr.open_zarr(path, consolidated=False).attrs).get("study_hash") == study.hash():
                    done = int(_done_flags(path).sum())
            except Exception:  # an unreadable store has nothing done
                done = 0
        plan = plan_summary(study, done)
        # time the first, middle and last samples: they span the parameter range
        picks = sorted({0, len(samples) // 2, len(samples) - 1})
        times = _calibrate(study, [(samples[i]["sample"], samples[i]["params"], int(seeds[i])) for i in picks])
        per = float(np.mean(times))
        plan["seconds_per_sample"] = per
        plan["timed_samples"] = len(times)
        # spawned workers first import stochhom and load the compiled kernels (1.6 s measured,
        # benchmarks/bench_sweep.py); they start in parallel
        plan["startup_seconds"] = _WORKER_STARTUP if (workers > 1 or scheduler is not None) else 0.0
        plan["estimated_seconds"] = per * plan["remaining"] / workers + plan["startup_seconds"]
        plan["workers"] = workers
        return plan
    with _store_lock(path), _stop_signals() as stop:
        try:
            if grow_from is not None and path.exists() and not restart:
                try:
                    stored = dict(xr.open_zarr(path, consolidated=False).attrs).get("study_hash")
                except Exception:  # unreadable: _check_existing below says what to do
                    stored = None
                if stored == grow_from.hash() and stored != study.hash():
                    n_old = len(grow_from.samples())
                    _grow(path, study, samples, seeds, n_old)
                    say(f"adaptive design: {path} extended from {n_old} to {len(samples)} samples", logging.DEBUG)
            return _sweep(study, path, samples, seeds, int(workers), scheduler, restart, progress,
                          flush_seconds, say, repair)
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt) and stop["signum"] is None:
                raise
            signum = stop["signum"] or signal.SIGINT
            try:
                done = int(_done_flags(path).sum())
            except Exception:  # no store yet
                done = 0
            name = signal.Signals(signum).name
            raise SweepInterrupted(
                f"sweep interrupted ({name}): {done} of {len(samples)} samples are stored in {path}; "
                "run the same command again (stochhom sweep STUDY.toml, or stochhom run STUDY.toml) to resume",
                signum=signum, done=done, total=len(samples), path=path) from None


def _sweep(study: Study, path: Path, samples: list[dict[str, Any]], seeds: np.ndarray, workers: int,
           scheduler: str | None, restart: bool, progress: bool, flush_seconds: float,
           say: Callable[..., None], repair: bool = False) -> xr.Dataset:
    """The body of :func:`run_sweep` (under the store lock): connect, repair, create or resume, compute, flush."""
    with _dask_client(scheduler, workers) as client:  # first: an unreachable scheduler changes nothing
        repaired = None
        if repair and path.exists():
            repaired = _repair(path, study, samples, seeds)
            if repaired["variables"]:
                names = ", ".join(sorted(repaired["variables"]))
                say(f"repaired {path}: unreadable data in {names}; {len(repaired['lost'])} sample(s) to recompute "
                    f"({_ranges(repaired['lost'])}), {repaired['kept']} finished sample(s) kept", logging.WARNING)
            else:
                say(f"repair: every variable of {path} reads; nothing to repair")
        resume = _check_existing(path, study, restart)
        if not resume:
            _create(path, _template(study, samples, seeds))
        else:
            _record_version(path)
        out = _compute(study, path, samples, seeds, workers, scheduler, client, progress, flush_seconds, say, resume)
    if repaired is not None:
        out.attrs["repaired_samples"] = len(repaired["lost"])
    return out


def _ranges(idx: list[int], limit: int = 6) -> str:
    """``[0, 1, 2, 7]`` -> ``"samples 0-2, 7"`` (at most ``limit`` ranges, then "...")."""
    if not idx:
        return "no samples"
    runs: list[list[int]] = [[idx[0], idx[0]]]
    for k in idx[1:]:
        if k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:limit])
    return f"samples {text}" + (", ..." if len(runs) > limit else "")


def _compute(study: Study, path: Path, samples: list[dict[str, Any]], seeds: np.ndarray, workers: int,
             scheduler: str | None, client: Any, progress: bool, flush_seconds: float,
             say: Callable[..., None], resume: bool) -> xr.Dataset:
    """Compute the samples not flagged done, flushing them to the store; return the whole store."""
    done = _done_flags(path)
    todo = [(s["sample"], s["params"], int(seeds[s["sample"]])) for s in samples if not done[s["sample"]]]
    n_total = len(samples)
    _logger.debug("%s: %d of %d samples to compute with %d worker(s)%s", path, len(todo), n_total, workers,
                  f" on the Dask scheduler {scheduler}" if scheduler is not None else "")
    if resume:
        # a warning (shown by --quiet too) when there is work left: an interrupted sweep goes on
        say(f"resuming {path}: {n_total - len(todo)} of {n_total} samples done",
            logging.WARNING if todo else logging.INFO)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_total, initial=n_total - len(todo), unit="sample", desc=study.name, file=sys.stderr)
    buffer: list[tuple[int, dict[str, Any]]] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal buffer, last
        if buffer:
            _write(path, buffer, study.physics)
            buffer = []
        last = time.monotonic()

    def on_results(results: Iterable[tuple[int, dict[str, Any]]]) -> None:
        results = list(results)
        buffer.extend(results)
        if bar is not None:
            bar.update(len(results))
        if time.monotonic() - last >= flush_seconds:
            flush()

    try:
        if todo:
            _execute(study, todo, workers, scheduler, on_results, client)
    finally:
        flush()
        if bar is not None:
            bar.close()
    out = open_store(path).load()
    failed = int((out["converged"].values == 0).sum())
    if failed:
        say(f"{failed} of {n_total} samples failed; see the 'status' variable", logging.WARNING)
    return out
