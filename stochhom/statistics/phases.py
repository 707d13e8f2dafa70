"""Phase laws that depend on per-sample parameters.

A study sweeps parameters such as the phase contrast or Poisson's ratio; the phases of
each sample then follow from its parameters. A *phase specification* is

* a list or dict of materials (the same for every sample);
* a callable ``f(params) -> list | dict of materials``, called with the sample's
  parameters (a dict); or
* a mapping ``{label: {"law": ..., key: value_or_expression}}`` (the TOML phase-file
  format) whose values may be arithmetic expressions of the parameters, e.g.
  ``E = "3.5 * contrast"`` or ``nu = "nu_matrix"``. Expressions allow numbers,
  parameter names, ``+ - * / **``, parentheses and the functions ``exp``, ``log``,
  ``sqrt``, ``min``, ``max`` (a safe subset of Python, not ``eval``).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InputError
from ..io import phases_from_dict
from ..materials import Material

__all__ = ["resolve_phases", "evaluate_expression", "PhaseSpec"]

PhaseSpec = Any  # list | dict of Material | callable | mapping of phase tables

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS: dict[str, Callable[..., float]] = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "min": min, "max": max}


def evaluate_expression(expr: str, params: Mapping[str, Any], where: str = "expression") -> float:
    """Evaluate an arithmetic expression of the parameters (see module docstring)."""
    try:
        tree = ast.parse(str(expr), mode="eval")
    except SyntaxError:
        raise InputError(f"{where}: cannot parse {expr!r} as an arithmetic expression") from None

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in params:
                raise InputError(f"{where}: unknown parameter {node.id!r} in {expr!r}; known: {sorted(params)}")
            return float(params[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                and not node.keywords):
            return float(_FUNCS[node.func.id](*[ev(a) for a in node.args]))
        raise InputError(f"{where}: {expr!r} uses an unsupported construct ({type(node).__name__})")

    try:
        return ev(tree)
    except (ZeroDivisionError, OverflowError, ValueError) as exc:
        raise InputError(f"{where}: evaluating {expr!r} failed ({exc})") from None


def _substitute(table: Mapping[str, Any], params: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "law" or not isinstance(value, str):
            out[key] = value
        else:
            out[key] = evaluate_expression(value, params, f"{where}.{key}")
    return out


def resolve_phases(spec: PhaseSpec, params: Mapping[str, Any]) -> list[Material] | dict[int, Material]:
    """The materials of one sample from a phase specification and the sample's parameters."""
    if callable(spec) and not isinstance(spec, Material):
        out = spec(dict(params))
        if isinstance(out, (list, tuple, Mapping)):
            return out
        raise InputError(f"the phase function returned {type(out).__name__}; it must return a list or dict")
    if isinstance(spec, (list, tuple)):
        return list(spec)
    if isinstance(spec, Mapping):
        values = list(spec.values())
        if values and all(isinstance(v, Material) for v in values):
            return dict(spec)
        tables = {str(k): _substitute(v, params, f"phases.{k}") if isinstance(v, Mapping) else v
                  for k, v in spec.items()}
        return phases_from_dict(tables)
    raise InputError(
        f"phases must be a list/dict of materials, a function of the parameters, or phase tables; "
        f"got {type(spec).__name__}"
    )
