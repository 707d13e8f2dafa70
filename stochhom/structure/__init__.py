"""The structure's response: macroscopic finite elements whose elements carry effective
tensors (:mod:`stochhom.structure.fe`), ready parts (:mod:`stochhom.structure.parts`) and
random fields of microstructure parameters over a part (:mod:`stochhom.structure.fields`).
scikit-fem is imported when a part is built or a problem solved."""

from .fe import MacroProblem, MacroSolution, element_tensors, solve_conduction, solve_elasticity
from .fields import MacroField, element_centroids, sample_field

__all__ = ["MacroField", "MacroProblem", "MacroSolution", "element_centroids", "element_tensors", "sample_field",
           "solve_conduction", "solve_elasticity"]
