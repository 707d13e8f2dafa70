"""Faults of a running sweep: SIGINT / SIGTERM stop it cleanly (finished samples kept, exit
status 130 / 143, resumable bit for bit), workers die with their main process (even on
SIGKILL), and the store lock refuses a second run on the same store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from stochhom.study import run_sweep, study_from_dict
from stochhom.study.sweep import SweepInterrupted, SweepStoreError, _done_flags, lock_path

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses signals and /proc")

#: Per-sample timings: the only variables that differ between runs of the same study.
TIMINGS = ["solve_time", "warmup_time"]

#: 240 samples of 64^2 at high contrast: ~10 s of work on 2 workers, so that a signal sent
#: once the first batch is stored always finds the sweep running.
BIG = {
    "study": {"output": "big.zarr", "seed": 5},
    "generator": {"name": "gaussian", "shape": [64, 64], "correlation_length": 3.0},
    "sweep": {"replicates": 60, "parameters": {"volume_fraction": [0.3, 0.5], "contrast": [300.0, 3000.0]}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": "contrast"}},
}
SMALL = {
    "study": {"output": "small.zarr", "seed": 2},
    "generator": {"name": "gaussian", "shape": [16, 16], "correlation_length": 2.0},
    "sweep": {"replicates": 2, "parameters": {"volume_fraction": [0.3, 0.5]}},
    "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 10.0}},
}

#: Runs the sweep of a study file (given as JSON) the way the CLI should: exit with the
#: status of SweepInterrupted.
DRIVER = """\
import json, sys
from stochhom.study import run_sweep, study_from_dict
from stochhom.study.sweep import SweepInterrupted

if __name__ == "__main__":
    study = study_from_dict(json.loads(sys.argv[1]), base=sys.argv[2])
    scheduler = sys.argv[3] if len(sys.argv) > 3 else None
    try:
        run_sweep(study, workers=2, scheduler=scheduler, progress=False, flush_seconds=0.1)
    except SweepInterrupted as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
"""


def _data(base: dict, output: Path) -> dict:
    return {**base, "study": {**base["study"], "output": str(output)}}


def _start(tmp_path: Path, data: dict, scheduler: str | None = None) -> tuple[subprocess.Popen, Path]:
    """Start the sweep of ``data`` in a subprocess (its own session); stderr goes to a file
    (a pipe would stay open as long as any worker lives)."""
    script = tmp_path / "drive.py"
    script.write_text(DRIVER)
    err = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    with open(err, "w") as f:
        argv = [sys.executable, str(script), json.dumps(data), str(tmp_path)] + ([scheduler] if scheduler else [])
        proc = subprocess.Popen(argv, stdout=f,
                                stderr=f, start_new_session=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return proc, err


def _wait_stored(proc: subprocess.Popen, store: Path, err: Path, timeout: float = 120.0) -> int:
    """Wait until the running sweep has stored a sample; return how many are stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sweep ended before the test could signal it: {err.read_text()!r}"
        try:
            done = int(_done_flags(store).sum())
        except Exception:  # the store is not created yet
            done = 0
        if done > 0:
            return done
        time.sleep(0.05)
    raise AssertionError(f"no sample stored within {timeout} s: {err.read_text()!r}")


def _children(pid: int) -> list[int]:
    """Pids of the live child processes of ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a reaper in containers)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids: list[int], timeout: float) -> float:
    t = time.monotonic()
    while any(_running(p) for p in pids):
        assert time.monotonic() - t < timeout, f"processes still running after {timeout} s: " \
                                               f"{[p for p in pids if _running(p)]}"
        time.sleep(0.05)
    return time.monotonic() - t


def _interrupt(tmp_path: Path, data: dict, sig: int) -> tuple[int, float, list[int], str]:
    store = Path(data["study"]["output"])
    proc, err = _start(tmp_path, data)
    try:
        _wait_stored(proc, store, err)
        workers = _children(proc.pid)
        t = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=60)
        elapsed = time.monotonic() - t
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return rc, elapsed, workers, err.read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_sweep_keeps_the_samples_and_releases_the_lock(tmp_path, sig) -> None:
    store = tmp_path / "big.zarr"
    rc, elapsed, workers, err = _interrupt(tmp_path, _data(BIG, store), sig)
    assert rc == 128 + sig, err  # 130 for SIGINT, 143 for SIGTERM
    assert elapsed < 20.0  # measured: ~0.3 s (the queued batches are cancelled, not waited for)
    assert f"sweep interrupted ({signal.Signals(sig).name})" in err and "to resume" in err
    done = int(_done_flags(store).sum())
    assert 0 < done < 240
    assert f"{done} of 240 samples are stored" in err
    assert not lock_path(store).exists()
    assert workers and _wait_gone(workers, 10.0) < 10.0  # terminated by the main process


def test_interrupted_sweep_resumes_bit_for_bit(tmp_path) -> None:
    medium = {**BIG, "sweep": {**BIG["sweep"], "replicates": 30}}  # 120 samples
    store = tmp_path / "medium.zarr"
    data = _data(medium, store)
    rc, _, _, err = _interrupt(tmp_path, data, signal.SIGINT)
    assert rc == 130, err
    assert 0 < int(_done_flags(store).sum()) < 120
    proc, err_file = _start(tmp_path, data)
    assert proc.wait(timeout=300) == 0, err_file.read_text()
    resumed = xr.open_zarr(store, consolidated=False).load()
    fresh = run_sweep(study_from_dict(_data(medium, tmp_path / "fresh.zarr"), base=tmp_path), workers=2,
                      progress=False)
    assert int(resumed["done"].sum()) == 120
    assert resumed.drop_vars(TIMINGS).identical(fresh.drop_vars(TIMINGS))


def test_cli_sweep_exits_130_on_ctrl_c(tmp_path) -> None:
    store = tmp_path / "big.zarr"
    study = tmp_path / "study.toml"
    study.write_text(
        f'[study]\noutput = "{store}"\nseed = 5\n'
        '[generator]\nname = "gaussian"\nshape = [64, 64]\ncorrelation_length = 3.0\n'
        '[sweep]\nreplicates = 60\n[sweep.parameters]\nvolume_fraction = [0.3, 0.5]\ncontrast = [300.0, 3000.0]\n'
        '[phases.0]\nlaw = "Conductivity"\nk = 1.0\n[phases.1]\nlaw = "Conductivity"\nk = "contrast"\n')
    err = tmp_path / "cli-stderr.txt"
    with open(err, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "stochhom.cli", "sweep", str(study), "--workers", "2",
                                 "--quiet", "--flush-seconds", "0.1"], stdout=f, stderr=f, start_new_session=True,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        _wait_stored(proc, store, err)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the workers get it too
        assert proc.wait(timeout=60) == 130, err.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert int(_done_flags(store).sum()) > 0
    assert not lock_path(store).exists()


def _descendants(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        out += [child, *_descendants(child)]
    return out


@pytest.mark.parametrize("scheduler", [None, "local"])
def test_workers_exit_when_the_main_process_is_killed(tmp_path, scheduler) -> None:
    """Local worker processes poll their parent; the worker processes of a Dask LocalCluster
    (whose nannies live in the main process) exit when their nanny's pipe closes."""
    store = tmp_path / "big.zarr"
    proc, err = _start(tmp_path, _data(BIG, store), scheduler)
    try:
        _wait_stored(proc, store, err)
        children = _descendants(proc.pid)  # the two workers and the resource tracker
        assert len(children) >= 2, children
        os.kill(proc.pid, signal.SIGKILL)  # the main process only: the workers must notice by themselves
        proc.wait(timeout=30)
        # measured: ~0.5 s (each local worker polls its parent every 0.5 s), ~2 s for Dask's
        _wait_gone(children, 10.0)
    finally:
        for pid in _children(proc.pid) if proc.poll() is None else []:
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # the lock of the killed run is stale (dead pid, this host): the next run takes it over
    held = json.loads(lock_path(store).read_text())
    assert held["pid"] == proc.pid and held["host"] == socket.gethostname()


def test_second_run_on_a_locked_store_is_refused(tmp_path) -> None:
    store = tmp_path / "big.zarr"
    data = _data(BIG, store)
    proc, err = _start(tmp_path, data)
    try:
        _wait_stored(proc, store, err)
        study = study_from_dict(data, base=tmp_path)
        with pytest.raises(SweepStoreError, match=rf"in use by another sweep: process {proc.pid} on host") as info:
            run_sweep(study, workers=1, progress=False)
        assert str(lock_path(store)) in str(info.value)
        with pytest.raises(SweepStoreError, match="in use by another sweep"):
            run_sweep(study, workers=1, progress=False, restart=True)  # never deletes a store in use
        assert int(_done_flags(store).sum()) > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143, err.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(store: Path, **info) -> Path:
    lock = lock_path(store)
    lock.write_text(json.dumps({"host": socket.gethostname(), "started": "2026-01-01T00:00:00Z", **info}))
    return lock


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path) -> None:
    store = tmp_path / "small.zarr"
    lock = _write_lock(store, pid=dead_pid())
    out = run_sweep(study_from_dict(_data(SMALL, store), base=tmp_path), workers=1, progress=False)
    assert int(out["done"].sum()) == 4
    assert not lock.exists()


def test_lock_of_a_live_or_foreign_process_is_respected(tmp_path) -> None:
    store = tmp_path / "small.zarr"
    study = study_from_dict(_data(SMALL, store), base=tmp_path)
    lock = _write_lock(store, pid=os.getpid())  # alive: this very process
    with pytest.raises(SweepStoreError, match=f"process {os.getpid()} on host {socket.gethostname()}"):
        run_sweep(study, workers=1, progress=False)
    assert lock.exists() and not store.exists()
    plan = run_sweep(study, workers=1, progress=False, dry_run=True)  # a dry run needs no lock
    assert plan["samples"] == 4
    _write_lock(store, pid=dead_pid(), host="elsewhere.invalid")  # another host: cannot tell, refused
    with pytest.raises(SweepStoreError, match=r"on host elsewhere\.invalid"):
        run_sweep(study, workers=1, progress=False)
    lock.write_text("")  # being written by another process: refused while young
    with pytest.raises(SweepStoreError, match="in use by another sweep"):
        run_sweep(study, workers=1, progress=False)
    old = time.time() - 3600  # ... and taken over once old (its writer died while writing it)
    os.utime(lock, (old, old))
    assert int(run_sweep(study, workers=1, progress=False)["done"].sum()) == 4
    assert not lock.exists()


def test_lock_is_released_on_errors(tmp_path) -> None:
    foreign = tmp_path / "mine.zarr"
    xr.Dataset({"a": ("x", [1.0])}).to_zarr(foreign, zarr_format=2, consolidated=False)
    with pytest.raises(SweepStoreError, match="not a stochhom sweep store"):
        run_sweep(study_from_dict(_data(SMALL, foreign), base=tmp_path), workers=1, progress=False)
    assert not lock_path(foreign).exists()


def test_keyboard_interrupt_in_process_flushes_and_raises_sweep_interrupted(tmp_path, monkeypatch) -> None:
    """API semantics: a Ctrl-C inside run_sweep (here raised by a sample) stores the finished
    samples and raises SweepInterrupted, a KeyboardInterrupt with exit_code 130."""
    from stochhom.study import sweep as sweep_mod

    store = tmp_path / "small.zarr"
    real, calls = sweep_mod._one, []

    def one(study, k, params, seed):
        calls.append(k)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(study, k, params, seed)

    monkeypatch.setattr(sweep_mod, "_one", one)
    with pytest.raises(SweepInterrupted) as info:
        run_sweep(study_from_dict(_data(SMALL, store), base=tmp_path), workers=1, progress=False,
                  flush_seconds=1e9)
    exc = info.value
    assert isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Exception)
    assert exc.exit_code == 130 and exc.signal == signal.SIGINT and exc.total == 4
    assert exc.done == 2 == int(_done_flags(store).sum())  # the buffered samples were flushed
    assert not lock_path(store).exists()
    monkeypatch.setattr(sweep_mod, "_one", real)
    resumed = run_sweep(study_from_dict(_data(SMALL, store), base=tmp_path), workers=1, progress=False)
    fresh = run_sweep(study_from_dict(_data(SMALL, tmp_path / "fresh.zarr"), base=tmp_path), workers=1,
                      progress=False)
    assert resumed.drop_vars(TIMINGS).identical(fresh.drop_vars(TIMINGS))


def test_restart_deletes_a_damaged_store_of_a_sweep_but_nothing_else(tmp_path) -> None:
    """--restart starts over from a sweep store whose arrays can no longer be opened (its metadata
    still says a sweep wrote it); a directory of someone else's data is still refused."""
    import json as _json

    from stochhom.study import SweepStoreError
    from stochhom.study.schema import study_from_dict
    from stochhom.study.sweep import _check_existing

    study = study_from_dict({
        "study": {"output": "s.zarr", "seed": 1},
        "generator": {"name": "gaussian", "shape": [8, 8], "correlation_length": 2.0, "volume_fraction": 0.3},
        "phases": {"0": {"law": "Conductivity", "k": 1.0}, "1": {"law": "Conductivity", "k": 10.0}},
    }, base=tmp_path)
    store = tmp_path / "s.zarr"
    store.mkdir()
    (store / "zarr.json").write_text(_json.dumps({"attributes": {"kind": "stochhom sweep"}, "zarr_format": "broken"}))
    with pytest.raises(SweepStoreError, match="not a stochhom sweep store"):
        _check_existing(store, study, restart=False)
    assert _check_existing(store, study, restart=True) is False and not store.exists()
    other = tmp_path / "o.zarr"
    other.mkdir()
    (other / "zarr.json").write_text(_json.dumps({"attributes": {"kind": "someone else"}}))
    with pytest.raises(SweepStoreError, match="does not delete data it did not write"):
        _check_existing(other, study, restart=True)
    assert other.exists()
