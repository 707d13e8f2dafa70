r"""Mixed precision: float32 conjugate gradients refined in float64 (``dtype="mixed"``).

Iterative refinement (Wilkinson; for Krylov solvers e.g. Carson & Higham 2018): the
state :math:`u` is kept in float64, and each *stage*

1. computes the residual force :math:`g = B^H\mathbb L(E + Bu)` and the mean stress
   in float64, and the relative residual :math:`\rho` of the stopping test
   (:mod:`stochhom.spectral.schemes`); stops if :math:`\rho\le` ``tol``;
2. solves the correction :math:`K\delta = -g` by preconditioned CG in float32, on
   the same operators, to :math:`\rho_{\rm inner}\le\max(\text{tol}, r\,\rho)`
   (the inner residual is that of the whole problem, :math:`g + K\delta`, against
   its mean stress), with the reduction :math:`r = \min(0.1, \max(10^{-3},
   20\,\epsilon_{32}\,\kappa))` (:math:`\kappa`: the phase contrast; float32 CG on
   a correction attains about :math:`\epsilon_{32}\kappa` of its right-hand side);
3. :math:`u \leftarrow u + \delta` in float64.

The float64 evaluation costs one strain and one stress field per stage (two to four
stages from 1 to 1e-6), so almost every iteration runs at float32 speed, while the
answer meets ``tol`` exactly as a float64 solve does: the stopping test is always
taken on the float64 residual. A stage that does not halve the residual ends the
load case as ``"stagnated"`` (contrasts near :math:`1/\epsilon_{32}`, where float32
cannot resolve the correction). Iteration counts and residual histories add up
over the stages.
"""

from __future__ import annotations

import numpy as np

from .green import GreenOperator
from .problem import CellProblem
from .schemes import SchemeResult, _Tracker, conjugate_gradient, relative_residual, stress_floor_factor

__all__ = ["mixed_precision_cg", "inner_reduction"]

_MAX_STAGES = 12


def inner_reduction(contrast: float) -> float:
    """The factor by which each float32 stage reduces the residual (module docstring)."""
    return float(min(0.1, max(1e-3, 20.0 * float(np.finfo(np.float32).eps) * contrast)))


def mixed_precision_cg(
    problem: CellProblem,
    green: GreenOperator,
    low: CellProblem,
    low_green: GreenOperator,
    macro: np.ndarray,
    tol: float,
    maxiter: int,
    keep_solution: bool = True,
) -> SchemeResult:
    """Float32 CG stages refined on the float64 residual (module docstring).

    Parameters
    ----------
    problem, green : CellProblem, GreenOperator
        The float64 problem (residuals, state) and its preconditioner.
    low, low_green : CellProblem, GreenOperator
        The same problem in float32 (the stages' iterations).
    macro : numpy.ndarray, shape (batch, ne)
        Macroscopic strains, internal form.
    tol : float
    maxiter : int
        Iterations per load case, summed over the stages.
    keep_solution : bool
    """
    batch = macro.shape[0]
    out = _Tracker(problem, batch, keep_solution)
    reduction = inner_reduction(problem.contrast)
    floor = problem.stress_floor(macro, stress_floor_factor(problem.dtype, tol))
    w = problem.zeros_nodal(batch)
    active = np.arange(batch)
    previous = np.full(batch, np.inf)
    zero32 = np.zeros((batch, problem.ne), dtype=low.dtype)
    for stage in range(_MAX_STAGES + 1):
        g, mean = problem.evaluate(w[active], macro[active])
        _, res2 = problem.precondition(green, g, problem.zeros_nodal(active.size))
        rel = relative_residual(res2, problem.mean_norm(mean), floor[active])
        for k, c in enumerate(active):
            if stage == 0:
                out.hist[c].append(float(rel[k]))
            else:
                out.hist[c][-1] = float(rel[k])  # the stage's last entry, recomputed in float64
        done = np.zeros(active.size, dtype=bool)
        for k, c in enumerate(active):
            status = None
            if rel[k] <= tol:
                status = "converged"
            elif out.iters[c] >= maxiter:
                status = "maxiter"
            elif rel[k] > 0.5 * previous[c] or stage == _MAX_STAGES:
                status = "stagnated"
            if status is not None:
                done[k] = True
                out.finish(c, w[c].copy(), mean[k], status)
        keep = ~done
        if not keep.any():
            break
        active, g, mean, rel = active[keep], g[keep], mean[keep], rel[keep]
        previous[active] = rel
        inner = conjugate_gradient(
            low, low_green, zero32[: active.size], np.maximum(tol, reduction * rel),
            int(maxiter - out.iters[active].min()), keep_solution=True,
            offset=(g.astype(low.cdtype), mean, floor[active]),
        )
        w[active] += inner.w.astype(w.dtype)
        for k, c in enumerate(active):
            out.iters[c] += int(inner.iterations[k])
            out.hist[c].extend(float(v) for v in inner.residuals[k][1:])
            if out.iters[c] > maxiter:  # the inner budget is shared by the batch
                out.iters[c] = maxiter
        del g, inner
    return out.result()
