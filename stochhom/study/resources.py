"""Resource guard of a study: the peak memory of one sample's solve and the sample count.

:func:`memory_estimate` sizes the fields of one sample's spectral solve (see
:mod:`stochhom.spectral`): with ``N`` voxels, ``b`` bytes per float (``[solver].dtype``),
``ne`` Mandel components of the strain (conductivity: ``d``; elasticity: ``d (d + 1) / 2``),
``m`` nodal unknowns (conductivity: 1; elasticity: ``d``) and ``B`` load cases solved
together (the batch of :func:`stochhom.spectral.homogenize`: as many of the ``ne`` load
cases as fit in 64 MiB of per-case working set ``N b (2 ne + 2 m)``, at least one)::

    peak = N * (b * B * (3 ne + 2 m) + 128)

per sample: strain, stress and their half spectra (``3 ne``), the CG nodal spectra
(``2 m``), plus 128 bytes per voxel for the label image, the material map and the
generator's own fields (the Gaussian field and its spectrum are float64/complex128).
Measured with ``tracemalloc`` (the peak of one sample, after a warm-up), the estimate is
1.0-2.2 times the measured peak (2D/3D, conductivity/elasticity, 256^2 to 1024^2, 32^3 to
96^3), and 2.1-2.4 times the growth of the resident set (``resource.getrusage``) at 128^3
and 2048^2: an upper bound.

:func:`check_resources` refuses a study whose ``workers`` concurrent samples need more
than :data:`MEMORY_FRACTION` of the physical memory, and more than :data:`MAX_SAMPLES`
samples (the store holds one row per sample). :func:`~stochhom.study.schema.study_from_dict`
calls it with one worker; a caller that runs ``workers`` samples at once (``stochhom
sweep --workers``) calls it again with that number.
"""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["MAX_SAMPLES", "MEMORY_FRACTION", "memory_estimate", "shape_memory", "physical_memory",
           "check_resources", "check_memory", "sample_count"]

#: Most samples a study may have (one row each in the store).
MAX_SAMPLES = 10**7
#: Fraction of the physical memory that the concurrent samples may use.
MEMORY_FRACTION = 0.8
_BATCH_BYTES = 64 << 20  # as stochhom.spectral.homogenize._BATCH_BYTES
_OVERHEAD = 128  # bytes per voxel: labels, material map, generator fields


def physical_memory() -> int:
    """Physical memory of this machine in bytes (``SC_PHYS_PAGES * SC_PAGE_SIZE``)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 4 << 30


def _sizes(study: Any) -> list[int]:
    """Edge lengths of the SVEs (``size`` swept or fixed), or [] when the shape is fixed."""
    if "size" in study.fixed:
        return [study.fixed["size"]]
    spec = study.parameters.get("size")
    if spec is None:
        return []
    if isinstance(spec, list):
        return list(spec)
    return [row["size"] for row in study.points_table()]


def _largest_shape(study: Any) -> tuple[int, ...]:
    sizes = [int(round(float(s))) for s in _sizes(study) if isinstance(s, (int, float)) and not isinstance(s, bool)]
    if sizes:
        return (max(sizes),) * study.dim
    return tuple(study.shape)


def shape_memory(shape: Any, physics: str = "conductivity", dtype: str = "float64", solve: bool = True) -> int:
    """Estimated peak bytes of one sample of this shape: generated and (``solve``) homogenized.

    Without ``solve`` (``stochhom generate``): the generator's fields and the label image
    only, :data:`_OVERHEAD` bytes per voxel. See the module docstring for the formula.
    """
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    if not solve:
        return n * _OVERHEAD
    d = len(shape)
    item = 4 if dtype == "float32" else 8  # mixed: as float64 (measured 80 MB against float64's 90 at 48^3)
    if physics == "elasticity":
        ne, m = d * (d + 1) // 2, d
    else:
        ne, m = d, 1
    per_case = n * item * (2 * ne + 2 * m)
    batch = max(1, min(ne, _BATCH_BYTES // max(per_case, 1)))
    return n * (item * batch * (3 * ne + 2 * m) + _OVERHEAD)


def memory_estimate(study: Any, workers: int = 1) -> int:
    """Estimated peak bytes of ``workers`` samples solved at once (the largest SVE of the study).

    See the module docstring for the formula.
    """
    shape = _largest_shape(study)
    factor = int(study.solver.get("composite_voxels", 1))
    fine = 3 * math.prod(shape) * factor ** len(shape) if factor > 1 else 0  # fine rendering + its blocks
    return int(workers) * (shape_memory(shape, study.physics, study.solver.get("dtype", "float64")) + fine)


def check_memory(estimate: int, what: str, where: str = "memory", memory: int | None = None) -> None:
    """Refuse (``InputError``) an ``estimate`` in bytes above :data:`MEMORY_FRACTION` of ``memory``
    (default: :func:`physical_memory`); ``what`` says what needs it, ``where`` locates the error."""
    from ..errors import InputError

    total = physical_memory() if memory is None else int(memory)
    limit = MEMORY_FRACTION * total
    if estimate > limit:
        raise InputError(f"{where}: {what} needs about {_gib(estimate)} of memory; the limit is {_gib(limit)} "
                         f"({MEMORY_FRACTION:.0%} of {_gib(total)} physical memory)")


def sample_count(study: Any) -> int:
    """Number of samples (points x replicates), computed without building the design."""
    if study.design == "grid":
        points = math.prod(len(v) for v in study.parameters.values()) if study.parameters else 1
    else:
        points = int(study.points)
    return points * int(study.replicates)


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def check_resources(study: Any, workers: int = 1, memory: int | None = None) -> int:
    """Refuse a study that cannot run here; return the memory estimate in bytes.

    Raises
    ------
    StudyError
        More than :data:`MAX_SAMPLES` samples, or ``workers`` concurrent samples whose
        :func:`memory_estimate` exceeds :data:`MEMORY_FRACTION` of ``memory`` (default:
        :func:`physical_memory`). The message names the estimate and the limit.
    """
    from .schema import StudyError

    count = sample_count(study)
    if count > MAX_SAMPLES:
        raise StudyError(f"[sweep]: {count:,} samples (points x replicates) exceed the limit of {MAX_SAMPLES:,} "
                         "samples per study; reduce [sweep].replicates or the number of points")
    est = memory_estimate(study, workers)
    total = physical_memory() if memory is None else int(memory)
    limit = MEMORY_FRACTION * total
    if est > limit:
        shape = _largest_shape(study)
        where = "[sweep.parameters].size" if "size" in study.parameters else (
            "[generator].size" if "size" in study.fixed else "[generator].shape")
        raise StudyError(
            f"{where}: one sample of shape {list(shape)} ({study.physics}) needs about "
            f"{_gib(est / max(int(workers), 1))} of memory"
            + (f", {_gib(est)} for {workers} workers at once" if workers > 1 else "")
            + f"; the limit is {_gib(limit)} ({MEMORY_FRACTION:.0%} of {_gib(total)} physical memory); "
            "use a smaller shape/size, fewer workers or [solver].dtype = \"float32\"")
    return est
