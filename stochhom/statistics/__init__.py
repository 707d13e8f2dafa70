"""Statistical homogenization: ensemble solves, summary statistics, RVE-size analysis."""

from .ensemble import assemble, homogenize_ensemble, sample_record
from .phases import evaluate_expression, resolve_phases

__all__ = ["homogenize_ensemble", "sample_record", "assemble", "resolve_phases", "evaluate_expression"]
