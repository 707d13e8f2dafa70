"""The structure's response: macroscopic finite elements whose elements carry effective
tensors (:mod:`stochhom.structure.fe`) and ready parts (:mod:`stochhom.structure.parts`).
scikit-fem is imported when a part is built or a problem solved."""

from .fe import MacroSolution, element_tensors, solve_conduction, solve_elasticity

__all__ = ["MacroSolution", "element_tensors", "solve_conduction", "solve_elasticity"]
