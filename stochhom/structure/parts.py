r"""Ready parts: meshes with named boundaries for the macroscopic problems of
:mod:`stochhom.structure.fe`.

``cantilever``
    A beam :math:`[0, L]\times[0, H]` (2D, plane strain) or :math:`[0, L]\times[0,
    H]\times[0, B]` (3D), clamped on ``"left"``, loaded on ``"right"``.
``plate_with_hole``
    A quarter of a square plate of half-width :math:`W` with a central hole of radius
    :math:`a` (2D), symmetry planes ``"left"`` (:math:`x = 0`) and ``"bottom"``
    (:math:`y = 0`), the remote load on ``"right"``, free ``"top"`` and ``"hole"``. The
    quadrilaterals are graded towards the hole, where the stress concentrates (Kirsch:
    :math:`\sigma_{xx} = 3\sigma_\infty` at :math:`(0, a)` in an infinite plate).
``plate``
    A rectangle :math:`[0, L]\times[0, H]` with the four sides named (a heated plate,
    a bar).
``from_file``
    Any mesh that meshio reads (Gmsh ``.msh``, VTK ``.vtu``, ...) of linear triangles,
    quadrilaterals, tetrahedra or hexahedra, with its boundary facets tagged by name
    (Gmsh physical groups): the user's own part.

Every part is a scikit-fem mesh of linear quadrilaterals (hexahedra in 3D) with
``mesh.boundaries`` set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..microstructure.ensemble import _positive

__all__ = ["cantilever", "from_file", "plate", "plate_with_hole"]


def _count(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def plate(length: float = 1.0, height: float = 1.0, nx: int = 16, ny: int = 16) -> Any:
    """A rectangle of ``nx x ny`` quadrilaterals with boundaries ``left``, ``right``,
    ``bottom`` and ``top``."""
    from skfem import MeshQuad

    lx, ly = _positive("length", length), _positive("height", height)
    m = MeshQuad.init_tensor(np.linspace(0, lx, _count("nx", nx) + 1), np.linspace(0, ly, _count("ny", ny) + 1))
    return m.with_boundaries({"left": lambda x: np.isclose(x[0], 0.0), "right": lambda x: np.isclose(x[0], lx),
                              "bottom": lambda x: np.isclose(x[1], 0.0), "top": lambda x: np.isclose(x[1], ly)})


def cantilever(length: float = 10.0, height: float = 1.0, nx: int = 40, ny: int = 4, *,
               width: float | None = None, nz: int = 2) -> Any:
    """A beam clamped on ``left`` and loaded on ``right``; 3D (hexahedra) when ``width``
    is given. Boundaries ``left``, ``right``, ``bottom``, ``top`` (and ``front``,
    ``back`` in 3D)."""
    if width is None:
        return plate(length, height, nx, ny)
    from skfem import MeshHex

    lx, ly, lz = _positive("length", length), _positive("height", height), _positive("width", width)
    m = MeshHex.init_tensor(np.linspace(0, lx, _count("nx", nx) + 1), np.linspace(0, ly, _count("ny", ny) + 1),
                            np.linspace(0, lz, _count("nz", nz) + 1))
    return m.with_boundaries({"left": lambda x: np.isclose(x[0], 0.0), "right": lambda x: np.isclose(x[0], lx),
                              "bottom": lambda x: np.isclose(x[1], 0.0), "top": lambda x: np.isclose(x[1], ly),
                              "front": lambda x: np.isclose(x[2], 0.0), "back": lambda x: np.isclose(x[2], lz)})


def plate_with_hole(half_width: float = 10.0, radius: float = 1.0, n_angle: int = 24, n_radial: int = 24,
                    grading: float = 3.0) -> Any:
    r"""A quarter plate :math:`[0, W]^2` minus the disc :math:`r < a`, meshed by
    quadrilaterals between the hole and the outer edges.

    Node :math:`(i, j)` lies at angle :math:`\theta_i = \frac\pi2 i/n_\theta` on the
    segment from the hole, :math:`a(\cos\theta, \sin\theta)`, to the square's edge in the
    same direction, at the fraction :math:`s_j = (j/n_r)^{g}` (``grading`` :math:`g`
    crowds the elements at the hole). ``n_angle`` must be even, so that a row of nodes
    ends in the square's corner.
    """
    from skfem import MeshQuad

    w, a = _positive("half_width", half_width), _positive("radius", radius)
    if a >= w:
        raise InputError(f"the hole (radius {a:g}) must be smaller than the plate's half-width {w:g}")
    na, nr = _count("n_angle", n_angle, 2), _count("n_radial", n_radial)
    if na % 2:
        raise InputError(f"n_angle must be even (a node row must end in the corner), got {na}")
    g = _positive("grading", grading)
    theta = np.linspace(0.0, np.pi / 2, na + 1)
    s = np.linspace(0.0, 1.0, nr + 1) ** g
    inner = a * np.stack([np.cos(theta), np.sin(theta)], 1)
    # the square's edge along each ray: x = W below the diagonal, y = W above it
    outer = np.where((theta <= np.pi / 4)[:, None],
                     np.stack([np.full_like(theta, w), w * np.tan(np.minimum(theta, np.pi / 4))], 1),
                     np.stack([w / np.tan(np.maximum(theta, np.pi / 4)), np.full_like(theta, w)], 1))
    outer[0], outer[-1] = (w, 0.0), (0.0, w)
    pts = inner[:, None, :] * (1 - s[None, :, None]) + outer[:, None, :] * s[None, :, None]  # (angle, radial, 2)
    idx = np.arange((na + 1) * (nr + 1)).reshape(na + 1, nr + 1)
    quads = np.stack([idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]], 0).reshape(4, -1)
    m = MeshQuad(np.ascontiguousarray(pts.reshape(-1, 2).T), np.ascontiguousarray(quads))
    tol = 1e-9 * w
    return m.with_boundaries({
        "left": lambda x: np.abs(x[0]) < tol, "bottom": lambda x: np.abs(x[1]) < tol,
        "right": lambda x: np.abs(x[0] - w) < tol, "top": lambda x: np.abs(x[1] - w) < tol,
        # facet midpoints on the hole lie on its chords, inside the circle
        "hole": lambda x: np.hypot(x[0], x[1]) < a * (1 + 1e-9),
    })


def from_file(path: Any) -> Any:
    """A mesh read from a file by meshio (through scikit-fem's ``Mesh.load``).

    Parameters
    ----------
    path : str or Path
        Gmsh ``.msh``, VTK ``.vtu`` or any format meshio reads; linear triangles,
        quadrilaterals, tetrahedra or hexahedra.

    Returns
    -------
    skfem.Mesh
        With ``boundaries`` named after the file's tagged facet sets (Gmsh physical
        groups), which supports and loads refer to.

    Raises
    ------
    InputError
        A missing or unreadable file, an unsupported cell type, or a mesh without named
        boundaries.
    """
    from pathlib import Path

    from skfem import Mesh

    from .fe import _element

    p = Path(path)
    if not p.is_file():
        raise InputError(f"mesh file {str(p)!r} does not exist")
    try:
        mesh = Mesh.load(str(p))
    except (Exception, SystemExit) as exc:  # meshio raises many kinds, and exits, for a bad file
        raise InputError(f"cannot read the mesh {str(p)!r}: {type(exc).__name__}: {exc} (linear triangles, "
                         "quadrilaterals, tetrahedra or hexahedra, in a format meshio reads)") from None
    _element(mesh)
    if not mesh.boundaries:
        raise InputError(f"the mesh {str(p)!r} has no named boundaries: tag its boundary facets (Gmsh physical "
                         "groups of lines in 2D, surfaces in 3D) so that supports and loads can refer to them")
    return mesh
