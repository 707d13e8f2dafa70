r"""Structural quantities of interest: one number per solved macroscopic problem.

========================  ============================================================
``"compliance"``          :math:`f\cdot u`, the work of the loads (elasticity: twice the
                          stored energy; conduction with a prescribed flux or source:
                          the thermal compliance :math:`\int q\,T`)
``"displacement"``        a component of :math:`u` at ``point`` (a tip deflection)
``"temperature"``         :math:`T` at ``point``
``"max_von_mises"``       the largest von Mises stress over the quadrature points
``"max_temperature"``     the largest nodal temperature
========================  ============================================================

A quantity's *local field* (:meth:`QuantityOfInterest.local_field`) is the per-element
field a report draws over the part: the element-mean von Mises stress (elasticity) or the
element-mean heat-flux magnitude (conduction).

In plane strain the out-of-plane stress needs a Poisson ratio: per element,
:math:`\nu_e = C_{12} / (C_{11} + C_{12})`, exact for an isotropic plane-strain tensor
(:math:`C_{11} = \lambda + 2\mu`, :math:`C_{12} = \lambda`), the symmetry of a
statistically isotropic microstructure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["QUANTITIES", "QuantityOfInterest", "quantity_of_interest"]

#: The quantities, with the physics each applies to.
QUANTITIES = {"compliance": ("elasticity", "conductivity"), "displacement": ("elasticity",),
              "temperature": ("conductivity",), "max_von_mises": ("elasticity",),
              "max_temperature": ("conductivity",)}


def plane_strain_poisson(tensors: np.ndarray) -> np.ndarray:
    """:math:`\\nu_e = C_{12}/(C_{11} + C_{12})` of plane-strain Mandel tensors ``(n, 3, 3)``
    (the in-plane mean of the two diagonal terms)."""
    c11 = 0.5 * (tensors[:, 0, 0] + tensors[:, 1, 1])
    c12 = tensors[:, 0, 1]
    return c12 / (c11 + c12)


@dataclass(frozen=True)
class QuantityOfInterest:
    """A scalar of a solved problem (module docstring).

    Parameters
    ----------
    kind : str
        One of :data:`QUANTITIES`.
    point : tuple of float, optional
        Where ``"displacement"`` and ``"temperature"`` are read.
    component : int
        The displacement component (0: x, 1: y, 2: z).
    name : str, optional
        A name for reports ("tip deflection"); default: one made from the kind.
    """

    kind: str = "compliance"
    point: tuple[float, ...] | None = None
    component: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in QUANTITIES:
            raise InputError(f"unknown quantity of interest {self.kind!r}; choose one of {sorted(QUANTITIES)}")
        if self.kind in ("displacement", "temperature"):
            if self.point is None:
                raise InputError(f"quantity {self.kind!r} needs a point, e.g. {{kind = \"{self.kind}\", "
                                 "point = [10.0, 0.5]}")
            p = np.asarray(self.point, dtype=float)
            if p.ndim != 1 or not np.all(np.isfinite(p)):
                raise InputError(f"point must be a list of finite coordinates, got {self.point!r}")
            object.__setattr__(self, "point", tuple(float(v) for v in p))
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise InputError(f"name must be a non-empty string, got {self.name!r}")
        if isinstance(self.component, bool) or not isinstance(self.component, (int, np.integer)) \
                or not 0 <= self.component <= 2:
            raise InputError(f"component must be 0, 1 or 2, got {self.component!r}")

    def check(self, physics: str, dim: int) -> None:
        """Refuse a quantity that the problem cannot give."""
        if physics not in QUANTITIES[self.kind]:
            raise InputError(f"quantity {self.kind!r} is for {' or '.join(QUANTITIES[self.kind])}, not {physics}")
        if self.point is not None and len(self.point) != dim:
            raise InputError(f"the point {list(self.point)} must have {dim} coordinates on this part")
        if self.kind == "displacement" and self.component >= dim:
            raise InputError(f"component {self.component} does not exist in {dim}D")

    @property
    def label(self) -> str:
        """A short name for tables and axes."""
        if self.name:
            return self.name
        if self.kind == "displacement":
            return f"u_{'xyz'[self.component]} at {list(self.point or ())}"
        if self.kind == "temperature":
            return f"T at {list(self.point or ())}"
        return self.kind.replace("_", " ")

    def __call__(self, solution: Any) -> float:
        """The quantity of a :class:`~stochhom.structure.fe.MacroSolution`."""
        if self.kind == "compliance":
            return float(solution.compliance)
        if self.kind in ("displacement", "temperature"):
            return float(solution.at(self.point)[self.component if self.kind == "displacement" else 0])
        if self.kind == "max_temperature":
            return float(np.max(solution.solution))
        return float(np.max(_von_mises(solution)))

    def local_field(self, solution: Any) -> np.ndarray:
        """``(n_elements,)``: element-mean von Mises stress, or heat-flux magnitude."""
        if solution.physics == "elasticity":
            return _von_mises(solution).mean(axis=1)
        return np.linalg.norm(solution.stress(), axis=-1).mean(axis=1)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.point is not None:
            out["point"] = list(self.point)
        if self.kind == "displacement":
            out["component"] = int(self.component)
        if self.name:
            out["name"] = self.name
        return out


def _von_mises(solution: Any) -> np.ndarray:
    t = solution.tensors
    return solution.von_mises(plane_strain_poisson(t)[:, None] if t.shape[-1] == 3 else None)


def quantity_of_interest(spec: Any) -> QuantityOfInterest:
    """A :class:`QuantityOfInterest` from a name, a mapping (``{kind, point, component, name}``,
    the form of a study file) or an instance."""
    if isinstance(spec, QuantityOfInterest):
        return spec
    if isinstance(spec, str):
        return QuantityOfInterest(spec)
    if isinstance(spec, dict):
        unknown = set(spec) - {"kind", "point", "component", "name"}
        if unknown:
            raise InputError(f"unknown keys {sorted(unknown)} in the quantity of interest; use kind, point, "
                             "component, name")
        point = spec.get("point")
        return QuantityOfInterest(spec.get("kind", "compliance"), None if point is None else tuple(point),
                                  spec.get("component", 0), spec.get("name"))
    raise InputError(f"a quantity of interest is a name or a table, got {type(spec).__name__}")
