r"""Hierarchical coupling: a fitted tensor surrogate as the constitutive law of every element.

Each element :math:`e` of a part carries the microstructure parameters
:math:`\theta(x_e)`: constants, or random fields over the part
(:class:`~stochhom.structure.fields.MacroField`). The surrogate
(:class:`~stochhom.surrogates.TensorSurrogate`) gives the element's tensor through latent
log-Cholesky features :math:`z`, so that every tensor is SPD by construction. Three sources
of uncertainty are sampled in a nested Monte Carlo:

.. math::
    z_{ijk}(x_e) = f_j\bigl(\theta_i(x_e)\bigr) + \sigma\bigl(\theta_i(x_e)\bigr)\odot
    \varepsilon_{ijk,e}, \qquad \mathbb C_e = L L^{\mathsf T}(z), \qquad Q_{ijk} = Q(u_{ijk}),

- :math:`i = 1..N`: macro fields :math:`\theta_i` (the part's microstructure varies in space);
- :math:`j = 1..J`: posterior functions :math:`f_j` of the surrogate's latent features,
  the same for every :math:`i` (the surrogate error is one unknown function, not noise per
  element);
- :math:`k = 1..K`: the SVE scatter, :math:`\varepsilon \sim \mathcal N(0, R)` independent
  between elements, correlated between the features of one element as the training
  residuals are (``noise_correlation_`` of :class:`~stochhom.surrogates.TensorSurrogate`: a
  stiffer SVE raises all its diagonal terms), scaled by the surrogate's noise (aleatoric)
  standard deviation :math:`\sigma(\theta)` learned from the replicates: each element is
  one SVE drawn at its local parameters, the model of the concurrent route
  (:mod:`stochhom.structure.concurrent`).

The variance of :math:`Q` splits with the unbiased nested estimators of
:func:`~stochhom.surrogates.tensor.nested_variance`: **microstructure** (the SVE scatter,
:math:`E[\operatorname{Var}(Q\mid i, j)]`, its total Sobol index), **surrogate**
(:math:`E_i[\operatorname{Var}_j E(Q\mid i, j)]`, the surrogate error given the field) and
**macro field** (:math:`\operatorname{Var}_i E(Q\mid i)`, the first-order Sobol index of the
field). Shares are these over their sum.

**Function draws on a grid.** A joint posterior draw at every element of every field would
cost :math:`O((N n_e)^3)`. The field parameters (at most two) span a box; the functions,
the posterior mean and the noise variance are drawn or evaluated on a regular grid of
that box and interpolated at the elements (cubic splines; the noise variance linearly, so
that it stays :math:`\ge 0`). The interpolation error of the mean at the cell midpoints,
relative to the predictive standard deviation there, is measured and returned
(:attr:`StructureResult.interpolation_error`; a warning above 0.1).

Everything random derives from one ``rng``: the macro sample :math:`i` owns the child
``SeedSequence`` :math:`i` (its fields and its SVE scatter), the functions their own
stream; the result does not depend on ``workers``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, OutOfDomainWarning
from ..microstructure.ensemble import as_rng
from .fields import MacroField, sample_field
from .parts import _count
from .qoi import QuantityOfInterest, quantity_of_interest

__all__ = ["StructureResult", "hierarchical", "macro_parameters", "macro_seeds", "stream"]

#: Grid points per field parameter: one field, two fields.
GRID_POINTS = {1: 65, 2: 33}
#: Spawn key of the surrogate functions' stream (the macro samples use 0, 1, ...).
FUNCTIONS_STREAM = 2**32 - 1
#: Interpolation error (relative to the predictive standard deviation) above which a warning is given.
INTERPOLATION_TOLERANCE = 0.1


def _split_parameters(parameters: Mapping[str, Any]) -> tuple[list[str], dict[str, MacroField], dict[str, float]]:
    if not isinstance(parameters, Mapping) or not parameters:
        raise InputError("parameters must be a non-empty mapping {name: value or MacroField}, in the surrogate's "
                         "input order")
    fields, constants = {}, {}
    for name, v in parameters.items():
        if isinstance(v, MacroField) and v.spread > 0:
            fields[name] = v
        elif isinstance(v, MacroField):
            constants[name] = float(v.transform(np.zeros(1))[0])
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v):
            constants[name] = float(v)
        else:
            raise InputError(f"parameter {name!r} must be a number or a MacroField, got {v!r}")
    return list(parameters), fields, constants


def macro_parameters(mesh: Any, parameters: Mapping[str, Any], n_macro: int, rng: Any = None) -> np.ndarray:
    """``(n_macro, n_elements, p)`` local parameters of every macro sample, in the order of
    ``parameters`` (constants repeated). Sample ``i`` uses the child seed ``i`` of ``rng``,
    as :func:`hierarchical` and :func:`~stochhom.structure.concurrent.concurrent` do, so
    that both routes see the same realizations."""
    names, fields, constants = _split_parameters(parameters)
    return _draw_fields(mesh, names, fields, constants, macro_seeds(rng, _count("n_macro", n_macro, 1)))


def macro_seeds(rng: Any, n_macro: int) -> list[np.random.SeedSequence]:
    """The ``SeedSequence`` of each macro sample (children ``0..n_macro-1`` of ``rng``)."""
    root = as_rng(rng)
    return [stream(root, i) for i in range(n_macro)]


def stream(seed: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    """Stream ``k`` of a macro sample's ``SeedSequence`` (0: its fields, 1: the SVE scatter of
    :func:`hierarchical`, 2: the SVE seeds of the concurrent route), without mutating it."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, int(k)))


def _draw_fields(mesh: Any, names: list[str], fields: dict[str, MacroField], constants: dict[str, float],
                 children: list[np.random.SeedSequence]) -> np.ndarray:
    nel = int(mesh.t.shape[1])
    out = np.empty((len(children), nel, len(names)))
    for i, child in enumerate(children):
        gen = np.random.default_rng(stream(child, 0))  # the field's stream
        for c, name in enumerate(names):
            out[i, :, c] = sample_field(mesh, fields[name], 1, gen)[0] if name in fields else constants[name]
    return out


@dataclass
class _Grid:
    """A regular grid over the field parameters, with spline coefficients of gridded values."""

    columns: list[int]  # which parameters vary (field columns)
    lo: np.ndarray
    step: np.ndarray
    shape: tuple[int, ...]

    def points(self, constants: np.ndarray) -> np.ndarray:
        if not self.columns:
            return constants[None].copy()
        axes = [self.lo[a] + self.step[a] * np.arange(n) for a, n in enumerate(self.shape)]
        mesh = np.meshgrid(*axes, indexing="ij")
        out = np.repeat(constants[None], int(np.prod(self.shape)), axis=0)
        for a, c in enumerate(self.columns):
            out[:, c] = mesh[a].ravel()
        return out

    def coordinates(self, theta: np.ndarray) -> np.ndarray:
        """Grid index coordinates ``(d, n)`` of parameters ``theta`` ``(n, p)``."""
        if not self.columns:
            return np.zeros((1, theta.shape[0]))
        return ((theta[:, self.columns] - self.lo) / self.step).T


def _interpolate(coeffs: np.ndarray, coords: np.ndarray, order: int) -> np.ndarray:
    """Values at ``coords`` of gridded arrays ``coeffs`` ``(..., *grid)`` (spline-filtered for
    ``order`` 3): ``(..., n)``."""
    from scipy.ndimage import map_coordinates

    lead = coeffs.shape[: coeffs.ndim - coords.shape[0]]
    flat = coeffs.reshape(-1, *coeffs.shape[len(lead):])
    if flat.shape[1:] == (1,):  # no field: the grid is one point
        return np.repeat(flat[:, :1], coords.shape[1], axis=1).reshape(*lead, coords.shape[1])
    out = np.stack([map_coordinates(a, coords, order=order, mode="nearest", prefilter=False) for a in flat])
    return out.reshape(*lead, coords.shape[1])


def _filtered(values: np.ndarray, n_grid: int, order: int) -> np.ndarray:
    """Spline coefficients along the last ``n_grid`` axes of ``values``."""
    from scipy.ndimage import spline_filter

    if order < 2 or values.shape[-n_grid:] == (1,) * n_grid:
        return np.ascontiguousarray(values)
    flat = values.reshape(-1, *values.shape[values.ndim - n_grid:])
    return np.stack([spline_filter(a, order=order, mode="nearest") for a in flat]).reshape(values.shape)


@dataclass
class StructureResult:
    """Distribution of a structural quantity of interest (:func:`hierarchical`).

    Attributes
    ----------
    quantity : QuantityOfInterest
    samples : numpy.ndarray, shape (n_macro, n_functions, n_noise)
        :math:`Q_{ijk}`.
    mean, std : float
        Over all samples; ``std**2`` is the sum of the three parts of ``variance``.
    mean_se : float
        Standard error of ``mean``: :math:`\\sqrt{\\operatorname{Var}_i \\bar Q_i / N +
        \\operatorname{Var}_j \\bar Q_j / J}` (macro samples and the shared functions).
    quantiles : dict of float to float
    variance : dict of str to float
        ``macro_field``, ``surrogate``, ``microstructure`` and their ``total``.
    shares : dict of str to float
        The three parts over the total.
    local_mean, local_std : numpy.ndarray, shape (n_elements,)
        Mean and standard deviation of the quantity's local field (element von Mises stress
        or heat-flux magnitude) over all samples.
    parameters : dict
        Per parameter: ``"field"`` or ``"constant"``, its range over the elements of all
        samples, and the fraction of element values outside ``domain``.
    example : numpy.ndarray, shape (n_elements, p)
        The first macro sample's local parameters.
    example_local : numpy.ndarray, shape (n_elements,)
        The local field of the first solve of that sample.
    field_means : numpy.ndarray, shape (n_macro, p)
        Each macro sample's parameters averaged over the elements (area-weighted).
    interpolation_error : float
        Largest error of the gridded posterior mean at the grid's cell midpoints, in units
        of the predictive standard deviation there (0 without a field).
    seconds : float
        Wall time; ``n_solves`` finite-element solves.
    """

    quantity: QuantityOfInterest
    samples: np.ndarray
    mean: float
    std: float
    mean_se: float
    quantiles: dict[float, float]
    variance: dict[str, float]
    shares: dict[str, float]
    local_mean: np.ndarray
    local_std: np.ndarray
    parameters: dict[str, Any]
    example: np.ndarray
    example_local: np.ndarray
    field_means: np.ndarray
    interpolation_error: float
    seconds: float
    n_solves: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_macro(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_functions(self) -> int:
        return int(self.samples.shape[1])

    @property
    def n_noise(self) -> int:
        return int(self.samples.shape[2])

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` interval of all samples."""
        flat = self.samples.ravel()
        return float(np.quantile(flat, (1 - level) / 2)), float(np.quantile(flat, (1 + level) / 2))

    def to_dict(self) -> dict[str, Any]:
        """The scalars, JSON-ready (arrays left out)."""
        return {"quantity": self.quantity.to_dict(), "label": self.quantity.label, "mean": self.mean,
                "std": self.std, "mean_se": self.mean_se, "quantiles": {str(q): v for q, v in self.quantiles.items()},
                "variance": self.variance, "shares": self.shares, "parameters": self.parameters,
                "interpolation_error": self.interpolation_error, "n_macro": self.n_macro,
                "n_functions": self.n_functions, "n_noise": self.n_noise, "n_solves": self.n_solves,
                "seconds": self.seconds, **self.info}


# ---------------------------------------------------------------------------- workers
_STATE: dict[str, Any] = {}


def _init_worker(state: dict[str, Any]) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one process per core: no BLAS threads on top
    _STATE.clear()
    _STATE.update(state)


def _worker_sample(task: tuple[int, np.ndarray, np.random.SeedSequence]) -> tuple[Any, ...]:
    return _macro_sample(_STATE, task)


def _macro_sample(state: Mapping[str, Any], task: tuple[int, np.ndarray, np.random.SeedSequence]) -> tuple[Any, ...]:
    """All ``J x K`` solves of one macro sample: ``(Q (J, K), sum and sum of squares of the
    local field, the first local field)``."""
    i, theta, seed = task
    grid: _Grid = state["grid"]
    problem, quantity, to_tensors = state["problem"], state["quantity"], state["to_tensors"]
    coords = grid.coordinates(theta)
    f = _interpolate(state["functions"], coords, 3)  # (J, q, nel)
    sd = np.sqrt(np.clip(_interpolate(state["noise"], coords, 1), 0.0, None))  # (q, nel)
    n_f, n_k = f.shape[0], state["n_noise"]
    gen = np.random.default_rng(stream(seed, 1))  # the SVE scatter's stream
    eps = np.einsum("ab,jkbe->jkae", state["noise_factor"], gen.standard_normal((n_f, n_k, *sd.shape)))
    q = np.empty((n_f, n_k))
    s1 = np.zeros(theta.shape[0])
    s2 = np.zeros(theta.shape[0])
    first = None
    for j in range(n_f):
        for k in range(n_k):
            z = (f[j] + sd * eps[j, k]).T  # (nel, q)
            sol = problem.solve(to_tensors(z))
            q[j, k] = quantity(sol)
            loc = quantity.local_field(sol)
            s1 += loc
            s2 += loc * loc
            if first is None:
                first = loc
    return i, q, s1, s2, first


def _sample_with(task: tuple[int, np.ndarray, np.random.SeedSequence], state: dict[str, Any]) -> tuple[Any, ...]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _macro_sample(state, task)


def _run(state: dict[str, Any], tasks: list[Any], workers: int, client: Any = None) -> list[tuple[Any, ...]]:
    if client is not None:  # a Dask cluster: the state is sent once to every worker
        shared = client.scatter(state, broadcast=True)
        return client.gather(client.map(_sample_with, tasks, state=shared, pure=False))
    if workers <= 1 or len(tasks) < 2:
        return [_macro_sample(state, t) for t in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(workers, len(tasks))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(state,)) as pool:
        return list(pool.map(_worker_sample, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


# ---------------------------------------------------------------------------- the route
def _to_tensors(surrogate: Any) -> Any:
    transform = getattr(surrogate, "spd_transform", None)
    return transform.tensors if transform is not None else surrogate.tensors


def _function_draws(surrogate: Any, points: np.ndarray, n_functions: int, gen: np.random.Generator) -> np.ndarray:
    functions = getattr(surrogate, "sample_latent_functions", None)
    try:
        if functions is None:
            raise AttributeError
        f = np.asarray(functions(points, n_functions, rng=gen), dtype=float)
    except AttributeError:
        raise InputError("hierarchical coupling needs a surrogate with joint posterior functions of its latent "
                         "features (a TensorSurrogate of a GPR, or of a PCE fitted with std_method='bootstrap'): "
                         "the surrogate error is one unknown function shared by all elements") from None
    return f.reshape(n_functions, points.shape[0], -1)


def hierarchical(
    problem: Any,
    surrogate: Any,
    parameters: Mapping[str, Any],
    quantity: Any = "compliance",
    *,
    n_macro: int = 128,
    n_functions: int = 4,
    n_noise: int = 2,
    domain: Mapping[str, tuple[float, float]] | None = None,
    grid_points: int | None = None,
    quantiles: tuple[float, ...] = (0.025, 0.05, 0.5, 0.95, 0.975),
    rng: Any = None,
    workers: int = 1,
    client: Any = None,
) -> StructureResult:
    r"""Distribution of a structural quantity with a surrogate as every element's law
    (module docstring): ``n_macro * n_functions * n_noise`` finite-element solves.

    Parameters
    ----------
    problem : MacroProblem
        The part, its loads and supports.
    surrogate : TensorSurrogate
        Fitted on the microstructure parameters, giving the problem's tensors (plane-strain
        Mandel stiffness in 2D, 6x6 in 3D, or conductivity), in the units of the loads.
    parameters : mapping
        ``{name: number or MacroField}`` in the surrogate's input order (at most two fields).
    quantity : str, dict or QuantityOfInterest
        See :mod:`stochhom.structure.qoi`.
    n_macro, n_functions, n_noise : int
        :math:`N \ge 2` macro fields, :math:`J` posterior functions, :math:`K \ge 2` SVE draws.
    domain : mapping, optional
        ``{name: (low, high)}``, the training range of the surrogate: element values outside
        are counted (``parameters[name]["outside"]``) and warned about
        (:class:`~stochhom.errors.OutOfDomainWarning`).
    grid_points : int, optional
        Grid points per field parameter (default :data:`GRID_POINTS`).
    rng : numpy.random.Generator, SeedSequence, int or None
    workers : int
        Processes over the macro samples (the result does not depend on it).
    client : distributed.Client, optional
        Run the macro samples on a Dask cluster instead (``workers`` is then unused): the
        machinery of :func:`~stochhom.study.sweep.run_sweep` with a ``scheduler``. Same result.

    Returns
    -------
    StructureResult

    Raises
    ------
    InputError
        Counts below the minimum, more than two fields, a surrogate without posterior
        functions, tensors of the wrong size for the problem, or a quantity the problem
        cannot give.
    """
    t0 = time.perf_counter()
    qoi: QuantityOfInterest = quantity_of_interest(quantity)
    qoi.check(problem.physics, problem.dim)
    n_macro, n_functions, n_noise = (_count("n_macro", n_macro, 2), _count("n_functions", n_functions, 1),
                                     _count("n_noise", n_noise, 2))
    workers = _count("workers", workers, 1)
    names, fields, constants = _split_parameters(parameters)
    if len(fields) > 2:
        raise InputError(f"at most two parameters can be random fields, got {len(fields)} ({sorted(fields)})")
    n_in = getattr(surrogate, "n_features_in_", None)
    if n_in is not None and int(n_in) != len(names):
        raise InputError(f"the surrogate takes {n_in} inputs but {len(names)} parameters were given ({names})")
    root = as_rng(rng)
    children = macro_seeds(root, n_macro)
    theta = _draw_fields(problem.mesh, names, fields, constants, children)
    grid, info = _make_grid(theta, names, fields, grid_points)
    base = np.array([constants.get(n, 0.0) for n in names])
    points = grid.points(base)
    gen = np.random.default_rng(stream(root, FUNCTIONS_STREAM))
    f = _function_draws(surrogate, points, n_functions, gen)  # (J, G, q)
    to_tensors = _to_tensors(surrogate)
    size = to_tensors(f[0, :1]).shape[-1]
    if size != problem.size:
        raise InputError(f"the surrogate gives {size}x{size} tensors but the problem needs {problem.size}x"
                         f"{problem.size} ({problem.physics}, {problem.dim}D)")
    noise = getattr(surrogate, "latent_noise_variance", None)
    nv = np.zeros(f.shape[1:]) if noise is None else np.broadcast_to(
        np.asarray(noise(points), dtype=float).reshape(f.shape[1], -1), f.shape[1:])
    gshape = grid.shape
    fg = np.moveaxis(f, 1, -1).reshape(n_functions, f.shape[2], *gshape)  # (J, q, *grid)
    corr = np.asarray(getattr(surrogate, "noise_correlation_", np.eye(f.shape[2])), dtype=float)
    if corr.shape != (f.shape[2], f.shape[2]):
        raise InputError(f"noise_correlation_ must be {f.shape[2]}x{f.shape[2]}, got {corr.shape}")
    state = {"grid": grid, "problem": problem, "quantity": qoi, "to_tensors": to_tensors, "n_noise": n_noise,
             "noise_factor": _correlation_factor(corr),
             "functions": _filtered(fg, len(gshape), 3),
             "noise": np.ascontiguousarray(nv.T.reshape(f.shape[2], *gshape))}
    interp = _interpolation_error(surrogate, grid, base, state) if grid.columns else 0.0
    if interp > INTERPOLATION_TOLERANCE:
        warnings.warn(f"the surrogate varies faster than the parameter grid resolves: interpolation error "
                      f"{interp:.2f} predictive standard deviations; raise grid_points", stacklevel=2)
    results = _run(state, [(i, theta[i], children[i]) for i in range(n_macro)], workers, client)
    results.sort(key=lambda r: r[0])
    q = np.stack([r[1] for r in results])  # (N, J, K)
    s1 = sum(r[2] for r in results)
    s2 = sum(r[3] for r in results)
    count = n_macro * n_functions * n_noise
    local_mean = s1 / count
    local_std = np.sqrt(np.clip(s2 / count - local_mean**2, 0.0, None) * count / max(count - 1, 1))
    return _result(qoi, q, quantiles, local_mean, local_std, theta, problem, names, fields, domain, interp,
                   info, time.perf_counter() - t0, results[0][4])


def _correlation_factor(corr: np.ndarray) -> np.ndarray:
    """:math:`C` with :math:`C C^T = R` (symmetric square root: defined for a singular R too)."""
    w, v = np.linalg.eigh(0.5 * (corr + corr.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _make_grid(theta: np.ndarray, names: list[str], fields: dict[str, MacroField],
               grid_points: int | None) -> tuple[_Grid, dict[str, Any]]:
    cols = [names.index(n) for n in fields]
    if not cols:
        return _Grid([], np.zeros(0), np.ones(0), (1,)), {"grid": [1]}
    n = _count("grid_points", grid_points, 4) if grid_points is not None else GRID_POINTS[len(cols)]
    lo = theta[:, :, cols].min(axis=(0, 1))
    hi = theta[:, :, cols].max(axis=(0, 1))
    pad = 1e-6 * np.maximum(hi - lo, np.abs(hi) + 1e-300)
    lo, hi = lo - pad, hi + pad
    return _Grid(cols, lo, (hi - lo) / (n - 1), (n,) * len(cols)), {"grid": [n] * len(cols)}


def _interpolation_error(surrogate: Any, grid: _Grid, base: np.ndarray, state: Mapping[str, Any]) -> float:
    """Largest |gridded mean - mean| / predictive std at the cell midpoints."""
    half = _Grid(grid.columns, grid.lo + grid.step / 2, grid.step, tuple(n - 1 for n in grid.shape))
    mid = half.points(base)
    mu, sd = surrogate.predict_latent(mid, return_std=True)
    mu = np.asarray(mu, dtype=float).reshape(mid.shape[0], -1)
    sd = np.asarray(sd, dtype=float).reshape(mid.shape[0], -1)
    gpts = grid.points(base)
    mu_g = np.asarray(surrogate.predict_latent(gpts), dtype=float).reshape(gpts.shape[0], -1)
    coeff = _filtered(mu_g.T.reshape(mu_g.shape[1], *grid.shape), len(grid.shape), 3)
    approx = _interpolate(coeff, grid.coordinates(mid), 3).T  # (n_mid, q)
    return float(np.max(np.abs(approx - mu) / np.maximum(sd, 1e-300)))


def _result(qoi: QuantityOfInterest, q: np.ndarray, quantiles: tuple[float, ...], local_mean: np.ndarray,
            local_std: np.ndarray, theta: np.ndarray, problem: Any, names: list[str], fields: dict[str, Any],
            domain: Mapping[str, tuple[float, float]] | None, interp: float, info: dict[str, Any], seconds: float,
            first_local: np.ndarray) -> StructureResult:
    from ..surrogates.tensor import nested_variance

    alea, epi, inp = nested_variance(np.moveaxis(q, 2, 0).swapaxes(1, 2))  # (K, J, N)
    variance = {"macro_field": inp, "surrogate": epi, "microstructure": alea}
    total = sum(variance.values())
    variance["total"] = total
    shares = {k: (v / total if total > 0 else 0.0) for k, v in variance.items() if k != "total"}
    m_i = q.mean(axis=(1, 2))
    m_j = q.mean(axis=(0, 2))
    se2 = m_i.var(ddof=1) / q.shape[0] + (m_j.var(ddof=1) / q.shape[1] if q.shape[1] > 1 else 0.0)
    flat = q.ravel()
    area = np.asarray(problem.basis.dx.sum(axis=1), dtype=float)
    params: dict[str, Any] = {}
    for c, name in enumerate(names):
        vals = theta[:, :, c]
        entry: dict[str, Any] = {"kind": "field" if name in fields else "constant",
                                 "range": [float(vals.min()), float(vals.max())], "mean": float(vals.mean()),
                                 "std": float(vals.std(ddof=1)) if name in fields else 0.0}
        if name in fields:
            entry["field"] = {k: getattr(fields[name], k) for k in ("distribution", "center", "spread",
                                                                    "correlation_length", "model")}
        if domain and name in domain:
            lo, hi = (float(v) for v in domain[name])
            out = float(np.mean((vals < lo) | (vals > hi)))
            entry["domain"], entry["outside"] = [lo, hi], out
            if out > 0:
                warnings.warn(f"{100 * out:.2g} % of the element values of {name!r} lie outside the surrogate's "
                              f"training range [{lo:g}, {hi:g}] (range {entry['range']}): the surrogate "
                              "extrapolates there", OutOfDomainWarning, stacklevel=3)
        params[name] = entry
    field_means = np.einsum("nep,e->np", theta, area) / area.sum()
    info = dict(info, local_field="von Mises stress" if problem.physics == "elasticity" else "heat-flux magnitude")
    return StructureResult(
        quantity=qoi, samples=q, mean=float(flat.mean()), std=float(np.sqrt(total)), mean_se=float(np.sqrt(se2)),
        quantiles={float(p): float(np.quantile(flat, p)) for p in quantiles}, variance=variance, shares=shares,
        local_mean=local_mean, local_std=local_std, parameters=params, example=theta[0], example_local=first_local,
        field_means=field_means, interpolation_error=interp, seconds=seconds, n_solves=int(q.size), info=info)
