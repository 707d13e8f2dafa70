"""stochhom: uncertainty-aware statistical homogenization.

Random microstructures, an FFT spectral solver for effective conductivity and
elasticity, ensemble statistics, surrogates and validation tooling.

Every name of ``__all__`` (and every subpackage, e.g. ``stochhom.io``) is imported on
first use (PEP 562), so that ``import stochhom`` and ``stochhom --version`` load
neither NumPy's heavy dependents nor torch, xarray or scipy.stats; only
:mod:`stochhom.errors` is imported at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import ConvergenceError, ConvergenceWarning, InputError, MaterialError, StochhomError

__version__ = "0.1.0"

#: Public names provided by a submodule, imported on first access: name -> module.
_LAZY = {
    "homogenize_ensemble": ".statistics",
    "generate": ".microstructure",
    "windows": ".microstructure",
    "Material": ".materials",
    "Conductivity": ".materials",
    "IsotropicElastic": ".materials",
    "AnisotropicElastic": ".materials",
    "Void": ".materials",
    "homogenize": ".spectral",
    "solve": ".spectral",
    "HomogenizationResult": ".spectral",
    "FieldResult": ".spectral",
}

#: Submodules reachable as attributes (``stochhom.io``), imported on first access.
_SUBMODULES = (
    "bounds", "cli", "fem", "io", "log", "materials", "microstructure", "plot", "report", "spectral", "statistics",
    "structure", "study", "surrogates", "tensors", "units", "validation", "warmup",
)

if TYPE_CHECKING:  # for type checkers and IDEs: the names the lazy attributes resolve to
    from . import bounds, microstructure, statistics, surrogates, tensors
    from .materials import AnisotropicElastic, Conductivity, IsotropicElastic, Material, Void
    from .microstructure import generate, windows
    from .spectral import FieldResult, HomogenizationResult, homogenize, solve
    from .statistics import homogenize_ensemble


def __getattr__(name: str) -> Any:
    """Import a public name or a submodule on first access (and keep it)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'stochhom' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


__all__ = [
    "__version__",
    "bounds",
    "errors",
    "microstructure",
    "statistics",
    "surrogates",
    "tensors",
    "homogenize_ensemble",
    "generate",
    "windows",
    "Material",
    "Conductivity",
    "IsotropicElastic",
    "AnisotropicElastic",
    "Void",
    "homogenize",
    "solve",
    "HomogenizationResult",
    "FieldResult",
    "StochhomError",
    "InputError",
    "MaterialError",
    "ConvergenceError",
    "ConvergenceWarning",
]
