"""Study reports: figures (matplotlib, one style) and the self-contained HTML report.

:func:`write_report` turns a results directory of ``stochhom run`` into
``report.html`` (figures embedded), ``summary.json`` and optionally ``report.pdf``;
the figure functions of :mod:`stochhom.report.figures` also work alone, on the
datasets and tables of a notebook.
"""

from .figures import (
    STYLE,
    calibration_figure,
    degradation_figure,
    gallery_figure,
    leakage_figure,
    ood_figure,
    parity_figure,
    propagation_figure,
    properties_figure,
    property_columns,
    rve_figure,
    s2_figure,
    s2_theory,
    sample_bounds,
    sobol_figure,
    swept_parameters,
    target_label,
    target_unit,
)
from .html import SECTIONS, STAGE_OF, write_report

__all__ = [
    "write_report",
    "SECTIONS",
    "STAGE_OF",
    "STYLE",
    "gallery_figure",
    "s2_figure",
    "s2_theory",
    "property_columns",
    "swept_parameters",
    "sample_bounds",
    "properties_figure",
    "rve_figure",
    "propagation_figure",
    "sobol_figure",
    "parity_figure",
    "calibration_figure",
    "leakage_figure",
    "degradation_figure",
    "ood_figure",
    "target_label",
    "target_unit",
]
