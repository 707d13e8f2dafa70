"""The structure's response: macroscopic finite elements whose elements carry effective
tensors (:mod:`stochhom.structure.fe`), ready parts (:mod:`stochhom.structure.parts`),
random fields of microstructure parameters over a part (:mod:`stochhom.structure.fields`),
quantities of interest (:mod:`stochhom.structure.qoi`), and the two couplings to the
microstructure: a surrogate as every element's law (:mod:`stochhom.structure.hierarchical`,
function ``hierarchical``) and FE² (:mod:`stochhom.structure.concurrent`, function
``concurrent``; both functions are imported from their modules, whose names they share).
scikit-fem is imported when a part is built or a problem solved."""

from .concurrent import ConcurrentResult, StudySVE, compare_routes
from .fe import MacroProblem, MacroSolution, element_tensors, solve_conduction, solve_elasticity
from .fields import MacroField, element_centroids, sample_field
from .hierarchical import StructureResult, macro_parameters
from .qoi import QuantityOfInterest, quantity_of_interest

__all__ = ["ConcurrentResult", "MacroField", "MacroProblem", "MacroSolution", "QuantityOfInterest", "StructureResult",
           "StudySVE", "compare_routes", "element_centroids", "element_tensors", "macro_parameters",
           "quantity_of_interest", "sample_field", "solve_conduction", "solve_elasticity"]
