"""Voxel finite elements on a box: apparent properties under non-periodic boundary conditions.

:mod:`~stochhom.fem.voxel_mesh` assembles the voxel elements of an image;
:mod:`~stochhom.fem.boundary` solves the kinematic (KUBC), static (SUBC) and periodic
problems on them and returns apparent tensors. :func:`stochhom.homogenize` calls it
with ``boundary=``.
"""

from .boundary import BOUNDARY_CONDITIONS, apparent_tensor
from .voxel_mesh import VoxelMesh

__all__ = ["BOUNDARY_CONDITIONS", "apparent_tensor", "VoxelMesh"]
