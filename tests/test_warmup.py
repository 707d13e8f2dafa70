"""``stochhom warmup`` fills numba's cache with the specializations that real runs load."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from stochhom.cli import main
from stochhom.errors import InputError
from stochhom.warmup import _PROBLEMS, GROUPS, kernels, warm_up


def test_every_group_has_kernels_of_its_own_and_problems() -> None:
    """Groups compile disjoint source files (parallel processes never share a cache index)."""
    modules = [m for ms in GROUPS.values() for m in ms]
    assert len(modules) == len(set(modules)) and set(_PROBLEMS) == set(GROUPS)
    for group, mods in GROUPS.items():
        assert kernels(mods), group
    for group in ("spectral", "q1", "fem"):
        labels = [label for label, _ in _PROBLEMS[group]()]
        assert labels and len(labels) == len(set(labels)), group


def test_unknown_group_and_bad_jobs_are_refused(capsys) -> None:
    with pytest.raises(InputError, match="unknown warm-up group"):
        warm_up(["nope"])
    assert main(["warmup", "--jobs", "0"]) == 2
    assert "--jobs must be a positive integer" in capsys.readouterr().err


def run_in(cache: str, code: str) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stderr


@pytest.mark.slow
def test_a_warmed_cache_serves_later_processes_without_compiling(tmp_path) -> None:
    """The Q1 group (the smallest of the solver's): compiled once, then loaded by a second
    warm-up and by a real porous solve in fresh processes, which compile nothing."""
    cache = str(tmp_path)
    first = run_in(cache, "from stochhom.warmup import warm_up; warm_up(['q1'], jobs=1)")
    compiled = int(re.search(r"(\d+) kernel specialization\(s\) compiled", first).group(1))
    assert compiled > 0
    second = run_in(cache, "from stochhom.warmup import warm_up; warm_up(['q1'], jobs=1)")
    assert f"0 kernel specialization(s) compiled, {compiled} loaded" in second
    solve = run_in(cache, (
        "import sys, numpy as np, stochhom as sh\n"
        "from stochhom.warmup import kernels\n"
        "img = (np.random.default_rng(1).random((24, 24, 24)) < 0.3).astype(np.uint8)\n"
        "sh.homogenize(img, [sh.IsotropicElastic(E=1.0, nu=0.3), sh.Void()], workers=1)\n"
        "k = kernels(['stochhom.spectral.kernels_q1'])\n"
        "print(sum(sum(d.stats.cache_misses.values()) for d in k.values()),"
        " sum(sum(d.stats.cache_hits.values()) for d in k.values()), file=sys.stderr)"))
    misses, hits = map(int, solve.split()[-2:])
    assert misses == 0 and hits > 0
