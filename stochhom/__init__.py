"""stochhom: uncertainty-aware statistical homogenization.

Random microstructures, an FFT spectral solver for effective conductivity and
elasticity, ensemble statistics, surrogates and validation tooling.
"""

from . import bounds, errors, microstructure, statistics, tensors
from .errors import ConvergenceError, ConvergenceWarning, InputError, MaterialError, StochhomError
from .materials import AnisotropicElastic, Conductivity, IsotropicElastic, Material, Void
from .microstructure import generate, windows
from .spectral import FieldResult, HomogenizationResult, homogenize, solve
from .statistics import homogenize_ensemble

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "surrogates":
        import importlib

        return importlib.import_module(".surrogates", __name__)
    raise AttributeError(f"module 'stochhom' has no attribute {name!r}")


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
