r"""Iterative schemes for the periodic cell problem.

All schemes solve the same discrete problem (:class:`~stochhom.spectral.problem.CellProblem`)
for a batch of macroscopic load cases at once, and stop on the same criterion: the
relative equilibrium residual

.. math::
    \rho = \frac{\|\Pi\sigma\|}{\max\big(|\langle\sigma\rangle|,\;
    10^{-6}\,\|\mathbb L_{\rm soft}\|\,|E|\big)} \le \mathrm{tol},

defined in :mod:`stochhom.spectral.green` (:math:`\Pi` is the orthogonal projection
onto compatible fields; :math:`\|\cdot\|` the volume-averaged :math:`L^2` norm,
:math:`|\cdot|` the Euclidean norm of the Mandel vector). The floor uses the
spectral norm of the softest solid phase, :math:`\|\mathbb L_{\rm soft}\|`: by the
Reuss bound no cell that holds together carries less, so it only acts on load cases
that the cell carries with less than a millionth of that stiffness, such as a pore
layer cutting the cell, where a relative criterion cannot be met.

``"cg"`` (default)
    Conjugate gradients on :math:`K u = -B^H\mathbb L E` preconditioned by the
    reference Green operator :math:`K_0^{-1}` (Zeman et al. 2010; Ladecký et al. 2023).
    Before a load case is declared converged its residual is recomputed from the
    iterate (not the CG recurrence), and CG restarts if the two disagree.
``"basic"``
    The Moulinec–Suquet fixed point :math:`u \leftarrow u + K_0^{-1}r`, i.e.
    :math:`\varepsilon \leftarrow \varepsilon - \Gamma^0\sigma`, with the optimal
    reference :math:`c_0 = (c_{\min} + c_{\max})/2`.
``"accelerated"``
    Eyre–Milton on the polarization :math:`\tau`:
    :math:`\tau \leftarrow \mathbb Y\,[\tau + 2\mathbb C^0(E - \Gamma^0\tau)]`,
    :math:`\mathbb Y = (\mathbb L - \mathbb C^0)(\mathbb L + \mathbb C^0)^{-1}`,
    :math:`c_0 = \sqrt{c_{\min}c_{\max}}`. The residual is evaluated on the compatible
    strain :math:`E - \Gamma^0\tau`, which costs a third FFT per iteration.

References
----------
H. Moulinec, P. Suquet, CMAME 157 (1998). D. J. Eyre, G. W. Milton, Eur. Phys. J. AP 6
(1999). J. Zeman, J. Vondřejc, J. Novák, I. Marek, JCP 229 (2010). M. Ladecký et al.,
Appl. Math. Comput. (2023).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..choices import SCHEMES  # available schemes and a one-line description of each
from .green import GreenOperator
from .material_field import MaterialField
from .problem import CellProblem

__all__ = ["SCHEMES", "SchemeResult", "conjugate_gradient", "basic", "accelerated"]

_DIVERGED = 1e6  # residual growth (relative to the start) that counts as divergence
_GROWTH = 100.0  # CG: growth of the recurrence residual above its best that triggers a true-residual check


@dataclass
class SchemeResult:
    """Outcome of a scheme for a batch of load cases.

    Attributes
    ----------
    w : numpy.ndarray, shape ``(batch, m, *half)``, or None
        Nodal solution in Fourier space (None when not requested).
    mean_stress : numpy.ndarray, shape (batch, ne)
        Mean stress (internal form) of the final iterate.
    iterations : numpy.ndarray of int, shape (batch,)
    residuals : list of numpy.ndarray
        Relative residual history per load case (entry 0 is the initial residual).
    converged : numpy.ndarray of bool, shape (batch,)
    status : list of str
        Per load case: ``"converged"``, ``"maxiter"``, ``"diverged"``, ``"breakdown"``
        (non-positive curvature, i.e. rounding swamped the operator) or
        ``"stagnated"`` (restarts from the true residual stopped making progress).
    """

    w: np.ndarray
    mean_stress: np.ndarray
    iterations: np.ndarray
    residuals: list[np.ndarray]
    converged: np.ndarray
    status: list[str] = field(default_factory=list)


#: Floor of the residual normalization, relative to the stress of the softest solid
#: phase under the load (raised to 10 eps / tol in low precision, see :func:`stress_floor_factor`).
STRESS_FLOOR = 1e-6


def stress_floor_factor(dtype: np.dtype, tol: float) -> float:
    """``max(STRESS_FLOOR, 10 eps / tol)``: rounding leaves a residual of about
    ``eps * ||L_soft|| |E|`` in a load case the cell does not carry, which a floor below
    ``eps / tol`` could never reach (float32 at tol 1e-5: 0.12; float64: 1e-6)."""
    return max(STRESS_FLOOR, 10.0 * float(np.finfo(dtype).eps) / tol)


def relative_residual(res2: np.ndarray, mean_norm: np.ndarray, floor: np.ndarray | float = 0.0) -> np.ndarray:
    r"""Relative residual :math:`\|\Pi\sigma\| / \max(|\langle\sigma\rangle|, \text{floor})`.

    ``mean_norm`` is the Euclidean norm of the Mandel mean stress. The floor
    (``STRESS_FLOOR`` times :math:`\|\mathbb L_{\rm soft}\|\,|E|`, the softest solid
    phase) only matters for load cases the cell hardly carries, e.g. a pore layer
    cutting it, whose mean stress tends to zero together with the residual.
    """
    norm = np.maximum(mean_norm, floor)
    r = np.sqrt(np.maximum(res2, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, r / np.where(norm > 0, norm, 1.0), np.where(r > 0, np.inf, 0.0))


class _Tracker:
    """Residual histories, iteration counts and final states of a batch of load cases."""

    def __init__(self, problem: CellProblem, batch: int, keep: bool = True) -> None:
        self.keep = keep
        self.hist: list[list[float]] = [[] for _ in range(batch)]
        self.w: list[np.ndarray | None] = [None] * batch
        self.mean = np.zeros((batch, problem.ne))
        self.iters = np.zeros(batch, dtype=int)
        self.status = ["maxiter"] * batch

    def add(self, cases: np.ndarray, values: np.ndarray) -> None:
        for c, v in zip(cases, values):
            self.hist[c].append(float(v))

    def finish(self, case: int, w: np.ndarray, mean: np.ndarray, status: str) -> None:
        self.w[case] = w if self.keep else None
        self.mean[case] = mean
        self.status[case] = status

    def result(self) -> SchemeResult:
        conv = np.array([s == "converged" for s in self.status])
        if not self.keep:
            w = None
        else:
            w = self.w[0][None] if len(self.w) == 1 else np.stack(self.w)
        return SchemeResult(w, self.mean, self.iters, [np.asarray(h) for h in self.hist], conv, self.status)


def _finish_fixed_point(
    out: _Tracker,
    active: np.ndarray,
    states: np.ndarray,
    mean: np.ndarray,
    rel: np.ndarray,
    first: np.ndarray,
    tol: float,
    maxiter: int,
) -> np.ndarray:
    """Record the load cases of a fixed-point scheme that are done; return the mask to keep."""
    iters = out.iters[active]
    done = (rel <= tol) | (iters >= maxiter) | ~np.isfinite(rel) | (rel > _DIVERGED * first)
    for i in np.flatnonzero(done):
        status = "converged" if rel[i] <= tol else ("maxiter" if iters[i] >= maxiter else "diverged")
        out.finish(active[i], states[i].copy(), mean[i], status)
    return ~done


def conjugate_gradient(
    problem: CellProblem,
    green: GreenOperator,
    macro: np.ndarray,
    tol: float,
    maxiter: int,
    keep_solution: bool = True,
    max_restarts: int = 5,
    offset: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> SchemeResult:
    r"""Preconditioned conjugate gradients for a batch of load cases (see module docs).

    Memory: four nodal spectra (iterate, residual force, direction, product/
    preconditioned residual) plus one strain-sized real field and its spectrum.

    Parameters
    ----------
    problem : CellProblem
    green : GreenOperator
        Supplies the preconditioner :math:`K_0^{-1}` and the residual norm.
    macro : numpy.ndarray, shape (batch, ne)
        Macroscopic strains, internal form.
    tol : float
    maxiter : int
        Maximum CG iterations per load case.
    keep_solution : bool
        Return the nodal solutions (needed for fields, not for effective tensors).
    max_restarts : int
        Restarts allowed when the recurrence residual drifts from the true one.
    offset : tuple, optional
        ``(g0, mean0, floor)``: solve for a correction :math:`\delta` of a state whose
        residual force is ``g0`` and mean stress ``mean0`` (internal form), i.e.
        :math:`K\delta = -g_0` with the residual :math:`g_0 + K\delta` measured
        against the mean stress ``mean0 + <L B delta>`` and the stress ``floor`` (the
        inner solve of :func:`mixed_precision_cg`; ``macro`` is then zero). ``tol``
        may be one value per load case.
    """
    batch = macro.shape[0]
    out = _Tracker(problem, batch, keep_solution)
    tol = np.broadcast_to(np.asarray(tol, dtype=float), (batch,)).copy()
    if offset is None:
        g, mean = problem.internal_force(problem.stress(problem.macro_field(macro)))
        floor = problem.stress_floor(macro, stress_floor_factor(problem.dtype, float(tol.max())))
        g0 = mean0 = None
    else:
        g0, mean0, floor = offset
        g, mean = g0.copy(), mean0.copy()
    kz = problem.zeros_nodal(batch)
    rz, res2 = problem.precondition(green, g, kz)
    rel = relative_residual(res2, problem.mean_norm(mean), floor)
    active = np.arange(batch)
    out.add(active, rel)
    first = rel.copy()
    best = rel.copy()  # smallest recurrence residual so far, per case
    x = problem.zeros_nodal(batch)
    p = kz.copy()
    e_hat = problem.gradient(p, problem.empty_strain_spectrum(batch))
    restarts = np.zeros(batch, dtype=int)
    e_act = macro

    def drop(keep: np.ndarray) -> None:
        nonlocal active, x, g, p, kz, e_hat, rz, rel, mean, e_act, first, floor, best, tol, g0, mean0
        active, x, g, p, kz, rz, rel, mean, e_act, first, floor, best, tol = (
            a[keep] for a in (active, x, g, p, kz, rz, rel, mean, e_act, first, floor, best, tol)
        )
        e_hat = None if e_hat is None else e_hat[keep]
        if g0 is not None:
            g0, mean0 = g0[keep], mean0[keep]

    def true_residual(xs: np.ndarray, es: np.ndarray, idx: np.ndarray | None, out_: np.ndarray | None):
        g_t, mean_t = problem.evaluate(xs, es, out=out_)
        if g0 is not None:
            g_t += g0 if idx is None else g0[idx]
            mean_t = mean_t + (mean0 if idx is None else mean0[idx])
        return g_t, mean_t

    while active.size:
        out_of_budget = out.iters[active] >= maxiter
        # check the true residual when the recurrence claims convergence, when the budget is
        # spent, and when the recurrence has grown far above its best (rounding took over)
        grown = rel > _GROWTH * best
        check = (rel <= tol) | out_of_budget | grown
        if np.any(check):
            # true residual of the iterate, written over g and kz (every checked case
            # either finishes or restarts from it)
            idx = np.flatnonzero(check)
            whole = idx.size == active.size
            xs, es = (x, e_act) if whole else (x[idx], e_act[idx])
            e_hat = None  # recomputed below; keeps the peak memory of the check low
            g_true, mean_true = true_residual(xs, es, None if whole else idx, g if whole else None)
            z_true = kz if whole else problem.zeros_nodal(idx.size)
            rz_true, res2_true = problem.precondition(green, g_true, z_true)
            rel_true = relative_residual(res2_true, problem.mean_norm(mean_true), floor if whole else floor[idx])
            finished = np.zeros(active.size, dtype=bool)
            restarted = []
            for k, i in enumerate(idx):
                c = active[i]
                if rel_true[k] <= tol[i] or out_of_budget[i] or restarts[c] >= max_restarts:
                    finished[i] = True
                    state = x[i] if np.all(check) else x[i].copy()
                    status = "converged" if rel_true[k] <= tol[i] else ("maxiter" if out_of_budget[i] else "stagnated")
                    out.finish(c, state, mean_true[k], status)
                    out.hist[c][-1] = float(rel_true[k])
                else:  # the recurrence drifted: restart from the true residual
                    restarts[c] += 1
                    restarted.append(i)
                    g[i], rz[i], rel[i], mean[i] = g_true[k], rz_true[k], rel_true[k], mean_true[k]
                    p[i] = z_true[k]
                    best[i] = rel_true[k]
            del g_true, z_true
            if np.any(finished):
                drop(~finished)
                if not active.size:
                    break
            e_hat = problem.gradient(p, problem.empty_strain_spectrum(active.size))
        # K p, from the strain spectrum of p prepared by the previous direction update
        e = problem.grid.irfft(e_hat)
        del e_hat
        s_hat = problem.grid.rfft(problem.stress(e))
        del e
        dmean = s_hat[(slice(None), slice(None)) + (0,) * problem.dim].real.astype(float) / problem.grid.size
        pkp = problem.force(s_hat, kz, dot=p)
        e_hat = s_hat  # reuse the spectrum buffer for the next direction
        del s_hat
        bad = ~(pkp > 0) | ~np.isfinite(pkp)
        if np.any(bad):
            for i in np.flatnonzero(bad):
                _, mean_b = true_residual(x[i : i + 1], e_act[i : i + 1], np.array([i]), None)
                out.finish(active[i], x[i].copy(), mean_b[0], "breakdown")
            drop(~bad)
            pkp, dmean = pkp[~bad], dmean[~bad]
            if not active.size:
                break
        alpha = rz / pkp
        rz_new, res2 = problem.cg_update(green, x, g, p, kz, alpha)
        mean = mean + alpha[:, None] * dmean
        rel = relative_residual(res2, problem.mean_norm(mean), floor)
        best = np.minimum(best, rel)
        out.iters[active] += 1
        out.add(active, rel)
        diverged = ~np.isfinite(rel) | (rel > _DIVERGED * first)
        if np.any(diverged):
            for i in np.flatnonzero(diverged):
                out.finish(active[i], x[i].copy(), mean[i], "diverged")
            keep = ~diverged
            rz_new = rz_new[keep]
            drop(keep)
            if not active.size:
                break
        beta = rz_new / rz
        rz = rz_new
        problem.cg_direction(p, kz, beta, e_hat)
    return out.result()


def basic(
    problem: CellProblem,
    green: GreenOperator,
    macro: np.ndarray,
    tol: float,
    maxiter: int,
    keep_solution: bool = True,
) -> SchemeResult:
    r"""Moulinec–Suquet basic scheme, :math:`u \leftarrow u + K_0^{-1}r` (batched)."""
    batch = macro.shape[0]
    out = _Tracker(problem, batch, keep_solution)
    active = np.arange(batch)
    x = problem.zeros_nodal(batch)
    z = problem.zeros_nodal(batch)
    e_act = macro
    first = None
    floor = problem.stress_floor(macro, stress_floor_factor(problem.dtype, tol))
    while active.size:
        g, mean = problem.evaluate(x, e_act)
        _, res2 = problem.precondition(green, g, z)
        del g
        rel = relative_residual(res2, problem.mean_norm(mean), floor)
        out.add(active, rel)
        if first is None:
            first = rel.copy()
        keep = _finish_fixed_point(out, active, x, mean, rel, first, tol, maxiter)
        active, x, z, first, e_act, floor = active[keep], x[keep], z[keep], first[keep], e_act[keep], floor[keep]
        if not active.size:
            break
        x += z
        out.iters[active] += 1
    return out.result()


def accelerated(
    problem: CellProblem,
    green: GreenOperator,
    macro: np.ndarray,
    tol: float,
    maxiter: int,
    keep_solution: bool = True,
) -> SchemeResult:
    r"""Eyre–Milton scheme on the polarization (batched); see the module docstring."""
    batch = macro.shape[0]
    out = _Tracker(problem, batch, keep_solution)
    elastic = problem.elastic
    c0 = green.reference.tensor()
    y_tensors = np.zeros_like(problem.tensors)
    for ph in np.unique(problem.labels):
        cp = problem.tensors[ph]
        y_tensors[ph] = (cp - c0) @ np.linalg.inv(cp + c0)
    y_field = MaterialField(problem.labels, y_tensors, elastic, problem.dtype, kind="stress_map")
    c0_field = MaterialField.uniform(c0, problem.dim, elastic, problem.dtype)

    active = np.arange(batch)
    e_act = macro
    tau = np.zeros((batch, problem.ne) + problem.grid.shape, dtype=problem.dtype)
    first = None
    floor = problem.stress_floor(macro, stress_floor_factor(problem.dtype, tol))
    while active.size:
        g_tau, _ = problem.internal_force(tau.copy())
        w = problem.zeros_nodal(active.size)
        problem.precondition(green, g_tau, w)  # w = -K0^{-1} B^H tau: E + Bw = E - Gamma0 tau
        del g_tau
        eps = problem.strain(w, e_act)
        g, mean = problem.internal_force(problem.material.apply(eps, blocks=problem.blocks(eps.shape[0])))
        res2 = problem.precondition(green, g, g.copy())[1]
        rel = relative_residual(res2, problem.mean_norm(mean), floor)
        out.add(active, rel)
        if first is None:
            first = rel.copy()
        keep = _finish_fixed_point(out, active, w, mean, rel, first, tol, maxiter)
        active, tau, eps, first, e_act, floor = (
            active[keep], tau[keep], eps[keep], first[keep], e_act[keep], floor[keep]
        )
        if not active.size:
            break
        blocks = problem.blocks(eps.shape[0])
        a = c0_field.apply(eps, out=eps)  # tau <- Y (tau + 2 C0 eps)
        a *= 2.0
        a += tau
        tau = y_field.apply(a, out=a, blocks=blocks)
        out.iters[active] += 1
    return out.result()
