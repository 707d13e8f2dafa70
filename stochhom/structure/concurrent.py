r"""Concurrent coupling (FE²) for linear problems, and its comparison with the hierarchical route.

For linear elasticity or conduction the micro problem of an element does not depend on the
macro strain: FE² reduces to one homogenization per element. Element :math:`e` of macro
sample :math:`i` gets its own SVE, generated at its local parameters
:math:`\theta_i(x_e)` with its own seed, and solved by the FFT solver; the element's tensor
is the SVE's apparent tensor :math:`\mathbb C^{\text{app}}_{ie}`, and one macro solve gives
:math:`Q_i`. No surrogate is involved: this is the direct route, at the price of
:math:`n_e` SVE solves per macro sample.

The macro samples are those of :func:`~stochhom.structure.hierarchical.hierarchical` with
the same ``rng`` (:func:`~stochhom.structure.hierarchical.macro_parameters`): the same
parameter fields. :func:`compare_routes` then asks whether the hierarchical route's
predictive law of :math:`Q` given the field, over the surrogate's functions and the SVE
scatter, covers the direct value: the probability integral transform
:math:`\mathrm{PIT}_i = \hat F_i(Q_i)` is uniform and the central ``level`` interval holds
:math:`Q_i` with probability ``level`` when the surrogate's stated uncertainty is right.

SVE tensors are cached by (parameters, seed): a second call with the same cache (a dict, or
a file that persists it) solves nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..microstructure.ensemble import as_rng, sample_seeds
from .hierarchical import StructureResult, _split_parameters, macro_seeds, stream
from .parts import _count
from .qoi import QuantityOfInterest, quantity_of_interest

__all__ = ["ConcurrentResult", "StudySVE", "compare_routes", "concurrent"]

#: Digits of the parameters in a cache key (values closer than this share an SVE only with the same seed).
KEY_DIGITS = 12


@dataclass
class ConcurrentResult:
    """The direct route (:func:`concurrent`).

    Attributes
    ----------
    quantity : QuantityOfInterest
    values : numpy.ndarray, shape (n_macro,)
        :math:`Q_i`.
    tensors : numpy.ndarray, shape (n_macro, n_elements, m, m)
        The SVE tensors of every element.
    parameters : numpy.ndarray, shape (n_macro, n_elements, p)
    local : numpy.ndarray, shape (n_macro, n_elements)
        The quantity's local field.
    n_sve : int
        SVE solves done by this call (the rest came from the cache).
    cache_hits : int
    seconds : float
    """

    quantity: QuantityOfInterest
    values: np.ndarray
    tensors: np.ndarray
    parameters: np.ndarray
    local: np.ndarray
    n_sve: int
    cache_hits: int
    seconds: float


class StudySVE:
    """The apparent tensor of one SVE of a study's sweep: ``StudySVE(study)(params, seed)``.

    Generates and solves the SVE exactly as the sweep does (same generator, shape, phases
    and solver options; :func:`stochhom.study.sweep.sample_record`), so that the direct route
    draws from the law the surrogate was trained on. Picklable (worker processes).
    """

    def __init__(self, study: Any) -> None:
        self.study = study

    def __call__(self, params: Mapping[str, Any], seed: int) -> np.ndarray:
        from ..study.sweep import _one

        rec = _one(self.study, 0, {**self.study.fixed, **params}, int(seed))
        if not rec.get("converged") or rec.get("effective") is None:
            raise InputError(f"the SVE at {dict(params)} (seed {seed}) failed: {rec.get('status')}")
        return np.asarray(rec["effective"], dtype=float)


def _key(params: np.ndarray, seed: int) -> tuple[Any, ...]:
    return (*(float(f"{v:.{KEY_DIGITS}g}") for v in params), int(seed))


def _load_cache(path: Path) -> dict[tuple[Any, ...], np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as data:
        params, seeds, tensors = data["params"], data["seeds"], data["tensors"]
    return {(*(float(v) for v in p), int(s)): t for p, s, t in zip(params, seeds, tensors)}


def _save_cache(path: Path, cache: Mapping[tuple[Any, ...], np.ndarray]) -> None:
    if not cache:
        return
    keys = list(cache)
    np.savez_compressed(path, params=np.array([k[:-1] for k in keys], dtype=float),
                        seeds=np.array([k[-1] for k in keys], dtype=np.int64), tensors=np.stack(list(cache.values())))


def _solve_sve(args: tuple[Callable[..., Any], dict[str, float], int]) -> np.ndarray:
    """One SVE's tensor, symmetrized: an iterative solver leaves an asymmetry of the order of
    its tolerance in the apparent tensor, which is symmetric in exact arithmetic."""
    func, params, seed = args
    t = np.asarray(func(params, seed), dtype=float)
    return 0.5 * (t + t.T) if t.ndim == 2 and t.shape[0] == t.shape[1] else t


def concurrent(
    problem: Any,
    sve_tensor: Callable[[Mapping[str, float], int], Any],
    parameters: Mapping[str, Any],
    quantity: Any = "compliance",
    *,
    n_macro: int = 8,
    rng: Any = None,
    cache: MutableMapping[tuple[Any, ...], np.ndarray] | str | Path | None = None,
    workers: int = 1,
) -> ConcurrentResult:
    r"""FE² for a linear problem: one SVE solve per element (module docstring).

    Parameters
    ----------
    problem : MacroProblem
    sve_tensor : callable
        ``sve_tensor(params, seed) -> (m, m)`` apparent Mandel tensor of the SVE generated
        with ``seed`` at ``params`` (a dict); :class:`StudySVE` for a study. Picklable when
        ``workers > 1``.
    parameters : mapping
        ``{name: number or MacroField}``, as for
        :func:`~stochhom.structure.hierarchical.hierarchical`.
    quantity : str, dict or QuantityOfInterest
    n_macro : int
        Macro samples (the first ``n_macro`` of the hierarchical route with the same ``rng``).
    rng : int, SeedSequence, Generator or None
        An int or SeedSequence (not a Generator) gives the hierarchical route's realizations.
    cache : dict, str, Path or None
        SVE tensors by (parameters, seed); a path (``.npz``) is loaded before and written after.
    workers : int
        Processes for the SVE solves.

    Returns
    -------
    ConcurrentResult
    """
    t0 = time.perf_counter()
    qoi = quantity_of_interest(quantity)
    qoi.check(problem.physics, problem.dim)
    n_macro, workers = _count("n_macro", n_macro, 1), _count("workers", workers, 1)
    names, fields, constants = _split_parameters(parameters)
    from .hierarchical import _draw_fields

    root = as_rng(rng)
    children = macro_seeds(root, n_macro)
    theta = _draw_fields(problem.mesh, names, fields, constants, children)
    nel = theta.shape[1]
    seeds = np.stack([sample_seeds(stream(c, 2), range(nel)) for c in children])  # (N, nel)
    path = Path(cache) if isinstance(cache, (str, Path)) else None
    store: MutableMapping[tuple[Any, ...], np.ndarray] = _load_cache(path) if path else (
        cache if cache is not None else {})
    keys = [[_key(theta[i, e], seeds[i, e]) for e in range(nel)] for i in range(n_macro)]
    todo = {}
    for i in range(n_macro):
        for e in range(nel):
            if keys[i][e] not in store and keys[i][e] not in todo:
                todo[keys[i][e]] = (sve_tensor, dict(zip(names, map(float, theta[i, e]))), int(seeds[i, e]))
    hits = n_macro * nel - len(todo)
    tasks = list(todo.values())
    if workers > 1 and len(tasks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            solved = list(pool.map(_solve_sve, tasks, chunksize=max(1, len(tasks) // (4 * workers))))
    else:
        solved = [_solve_sve(t) for t in tasks]
    for k, t in zip(todo, solved):
        store[k] = t
    if path:
        _save_cache(path, store)
    tensors = np.stack([np.stack([store[k] for k in row]) for row in keys])
    tensors = 0.5 * (tensors + np.swapaxes(tensors, -1, -2))  # entries cached by another version
    if tensors.shape[-1] != problem.size:
        raise InputError(f"the SVEs give {tensors.shape[-1]}x{tensors.shape[-1]} tensors but the problem needs "
                         f"{problem.size}x{problem.size}")
    values, local = np.empty(n_macro), np.empty((n_macro, nel))
    for i in range(n_macro):
        sol = problem.solve(tensors[i])
        values[i] = qoi(sol)
        local[i] = qoi.local_field(sol)
    return ConcurrentResult(qoi, values, tensors, theta, local, len(tasks), hits, time.perf_counter() - t0)


def compare_routes(hier: StructureResult, direct: ConcurrentResult, level: float = 0.9) -> dict[str, Any]:
    """Does the hierarchical predictive law cover the direct (FE²) values on the same fields?

    Parameters
    ----------
    hier : StructureResult
        With at least as many macro samples as ``direct``, from the same ``rng``, and
        ``n_functions * n_noise >= 20`` draws per sample.
    direct : ConcurrentResult
    level : float
        Nominal level of the central interval.

    Returns
    -------
    dict
        ``coverage`` (fraction of direct values inside their central interval) with its
        Wilson 95 % interval ``coverage_ci`` (which treats the fields as independent; they
        share one surrogate error, so the fraction scatters more between surrogates),
        ``pit`` (one per sample), ``z`` (standardized differences), ``mean_direct``,
        ``mean_hierarchical``, ``n``, and the two causes of a miss told apart: ``bias``,
        the mean of direct minus hierarchical, against ``function_sd``, the spread of the
        posterior functions at a field (``bias_z`` = bias over the root sum of squares of
        that spread and the standard error of the direct values' mean: the surrogate's mean
        is off by more than it says when ``|bias_z|`` passes 2), and ``residual_sd``, the
        spread of the differences about that bias, against ``sve_sd``, the SVE scatter of
        the hierarchical route (a ratio far from 1: the scatter model is wrong).

    Raises
    ------
    InputError
        Different realizations (the routes were not run with the same ``rng``), different
        quantities, or too few draws per sample.
    """
    if not 0 < level < 1:
        raise InputError(f"level must lie in (0, 1), got {level!r}")
    n = direct.values.size
    if hier.n_macro < n or not np.allclose(hier.example, direct.parameters[0]):
        raise InputError("the two routes did not sample the same macro fields: run both with the same int seed "
                         "(and at least as many hierarchical macro samples)")
    if hier.quantity != direct.quantity:
        raise InputError(f"different quantities: {hier.quantity.label!r} and {direct.quantity.label!r}")
    draws = hier.samples[:n].reshape(n, -1)
    if draws.shape[1] < 20:
        raise InputError(f"{draws.shape[1]} hierarchical draws per macro sample are too few for an interval: "
                         "use n_functions * n_noise >= 20")
    q = direct.values
    pit = np.mean(draws < q[:, None], axis=1) + 0.5 * np.mean(draws == q[:, None], axis=1)
    lo = np.quantile(draws, (1 - level) / 2, axis=1)
    hi = np.quantile(draws, (1 + level) / 2, axis=1)
    inside = (q >= lo) & (q <= hi)
    cov = float(inside.mean())
    z = (q - draws.mean(axis=1)) / draws.std(axis=1, ddof=1)
    # the surrogate's error is one function shared by every field: a bias common to all of
    # them, to be judged against the spread of the posterior functions at a field
    per_function = hier.samples[:n].mean(axis=2)  # (n, J)
    func_sd = float(np.sqrt(per_function.var(axis=1, ddof=1).mean())) if per_function.shape[1] > 1 else 0.0
    diff = q - draws.mean(axis=1)
    bias = float(diff.mean())
    resid = float(diff.std(ddof=1)) if n > 1 else float("nan")
    # the bias is judged against the functions' spread and the direct values' own scatter
    bias_sd = float(np.sqrt(func_sd**2 + (resid**2 / n if n > 1 else 0.0)))
    sve_sd = float(np.sqrt(hier.samples[:n].var(axis=2, ddof=1).mean()))
    return {"level": level, "n": int(n), "coverage": cov, "coverage_ci": list(_wilson(int(inside.sum()), n)),
            "pit": pit.tolist(), "z": z.tolist(), "mean_direct": float(q.mean()),
            "mean_hierarchical": float(draws.mean()), "draws_per_sample": int(draws.shape[1]),
            "bias": bias, "bias_z": bias / bias_sd if bias_sd > 0 else float("nan"),
            "function_sd": func_sd, "residual_sd": resid, "sve_sd": sve_sd}


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return float(max(c - h, 0.0)), float(min(c + h, 1.0))
