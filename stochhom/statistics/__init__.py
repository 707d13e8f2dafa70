"""Statistical homogenization: ensemble solves, summary statistics, RVE-size analysis."""

from . import rve
from .ensemble import assemble, homogenize_ensemble, sample_record
from .phases import evaluate_expression, resolve_phases
from .rve import (
    VarianceScaling,
    boundary_hierarchy,
    bracket_size,
    ergodicity,
    n_realizations,
    phase_fraction_samples,
    rve_size,
    size_statistics,
    systematic_error,
    variance_scaling,
)
from .summary import (
    CI_METHODS,
    anisotropy_index,
    cox_log_interval,
    mean_confidence_interval,
    quantity_support,
    summarize,
    within_hashin_shtrikman,
)

__all__ = [
    "homogenize_ensemble",
    "sample_record",
    "assemble",
    "resolve_phases",
    "evaluate_expression",
    "summarize",
    "mean_confidence_interval",
    "cox_log_interval",
    "quantity_support",
    "CI_METHODS",
    "anisotropy_index",
    "within_hashin_shtrikman",
    "rve",
    "VarianceScaling",
    "variance_scaling",
    "size_statistics",
    "systematic_error",
    "rve_size",
    "n_realizations",
    "ergodicity",
    "boundary_hierarchy",
    "bracket_size",
    "phase_fraction_samples",
]
