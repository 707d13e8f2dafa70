r"""Macroscopic linear finite elements with an element-wise constitutive tensor (scikit-fem).

The structure's response to the microstructure: each element :math:`e` carries its own
effective tensor :math:`\mathbb C_e` (Mandel form, from a surrogate or an FFT solve), and

.. math::
    \int_\Omega \varepsilon(v) : \mathbb C_e : \varepsilon(u)\,dx = \int_{\Gamma_N} t\cdot v\,ds
    \quad\text{or}\quad
    \int_\Omega \nabla v\cdot \mathbf K_e \nabla T\,dx = \int_{\Gamma_N} q\,v\,ds + \int_\Omega s\,v\,dx ,

with :math:`u = \bar u` (:math:`T = \bar T`) on :math:`\Gamma_D`. Strains in Mandel form,
:math:`\varepsilon_M = (\varepsilon_{11}, \varepsilon_{22}, \sqrt2\,\varepsilon_{12})` in 2D
(plane strain) and :math:`(\varepsilon_{11}, \varepsilon_{22}, \varepsilon_{33}, \sqrt2
\varepsilon_{23}, \sqrt2\varepsilon_{13}, \sqrt2\varepsilon_{12})` in 3D, the order of
:mod:`stochhom.tensors`, so that :math:`\varepsilon(v):\mathbb C:\varepsilon(u) =
\varepsilon_M(v)\cdot C_M\,\varepsilon_M(u)`. Meshes, bases, assembly and quadrature are
scikit-fem's; this module only passes the tensors and checks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..tensors import MANDEL_PAIRS

__all__ = ["MacroProblem", "MacroSolution", "element_tensors", "solve_elasticity", "solve_conduction"]

_SQRT2 = float(np.sqrt(2.0))


def element_tensors(tensors: Any, n_elements: int, size: int, name: str = "tensors") -> np.ndarray:
    """``(n_elements, size, size)`` symmetric positive definite tensors, one per element.

    A single ``(size, size)`` tensor is repeated. Refuses a wrong shape, non-finite
    entries, asymmetry beyond 1e-10 relative, and a tensor that is not positive definite
    (an effective tensor always is): the message names the first offending element.
    """
    t = np.asarray(tensors, dtype=float)
    if t.ndim == 2:
        t = np.broadcast_to(t, (n_elements, *t.shape))
    if t.shape != (n_elements, size, size):
        raise InputError(f"{name} must have shape ({n_elements}, {size}, {size}) or ({size}, {size}) "
                         f"(one Mandel tensor per element), got {t.shape}")
    if not np.all(np.isfinite(t)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(t), axis=(1, 2)))[0])
        raise InputError(f"{name}: element {bad} has non-finite entries")
    scale = np.max(np.abs(t), axis=(1, 2))
    asym = np.max(np.abs(t - np.swapaxes(t, 1, 2)), axis=(1, 2)) > 1e-10 * scale
    if asym.any():
        raise InputError(f"{name}: element {int(np.flatnonzero(asym)[0])} is not symmetric")
    low = np.linalg.eigvalsh(t)[:, 0] <= 0.0
    if low.any():
        raise InputError(f"{name}: element {int(np.flatnonzero(low)[0])} is not positive definite; an effective "
                         "tensor always is (pass SPD tensors, e.g. from a surrogate's tensor output)")
    return np.ascontiguousarray(t)


def _mandel_strain(grad: np.ndarray, dim: int) -> list[np.ndarray]:
    """Mandel components (the order of :data:`stochhom.tensors.MANDEL_PAIRS`) of the
    symmetric part of a displacement gradient ``grad`` (``(dim, dim, ...)``)."""
    return [grad[i, i] if i == j else (grad[i, j] + grad[j, i]) / _SQRT2 for i, j in MANDEL_PAIRS[dim]]


@dataclass
class MacroSolution:
    """A solved macroscopic problem.

    Attributes
    ----------
    basis : skfem.Basis
        The finite-element basis (mesh, element, quadrature).
    solution : numpy.ndarray
        Nodal displacements (interleaved components, scikit-fem's order) or temperatures.
    load : numpy.ndarray
        The assembled load vector :math:`f` (before the Dirichlet condensation).
    compliance : float
        :math:`f\\cdot u`, the work of the loads (twice the stored energy at equilibrium).
    physics : str
        ``"elasticity"`` or ``"conductivity"``.
    """

    basis: Any
    solution: np.ndarray
    load: np.ndarray
    compliance: float
    physics: str
    tensors: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    problem: Any = field(default=None, repr=False)

    def stress(self) -> np.ndarray:
        """Mandel stress (elasticity) or heat flux :math:`-\\mathbf K\\nabla T` (conduction)
        at every quadrature point, ``(n_elements, n_points, size)``."""
        if self.problem is not None:  # the problem's precomputed strain-displacement matrices
            g = self.problem.gradients(self.solution)
            s = np.einsum("eij,eqj->eqi", self.tensors, g)
            return s if self.physics == "elasticity" else -s
        field_ = self.basis.interpolate(self.solution)
        dim = self.basis.mesh.dim()
        if self.physics == "elasticity":
            g = field_.grad
            e = np.stack(_mandel_strain(g, dim), -1)  # (nel, nqp, size)
            return np.einsum("eij,eqj->eqi", self.tensors, e)
        return -np.einsum("eij,eqj->eqi", self.tensors, np.moveaxis(field_.grad, 0, -1))

    def von_mises(self, poisson: Any = None) -> np.ndarray:
        """Von Mises stress at every quadrature point, ``(n_elements, n_points)``.

        In 2D (plane strain) the out-of-plane stress :math:`\\sigma_{33}` is not in the
        plane-strain tensor: give the material's ``poisson`` ratio (a number, or one per
        element as ``(n_elements, 1)``), and :math:`\\sigma_{33} = \\nu(\\sigma_{11} +
        \\sigma_{22})` (isotropic); 2D without it is refused rather than computed with a
        wrong :math:`\\sigma_{33}`.
        """
        if self.physics != "elasticity":
            raise InputError("von Mises stress is defined for elasticity only")
        s = self.stress()
        if s.shape[-1] == 3:
            nu = None if poisson is None else np.asarray(poisson, dtype=float)
            if nu is None or not np.all((nu > -1.0) & (nu < 0.5)):
                raise InputError(f"plane strain: von Mises needs sigma_33 = nu (sigma_11 + sigma_22); pass the "
                                 f"Poisson ratio in (-1, 0.5) as poisson=, got {poisson!r}")
            s11, s22, s12 = s[..., 0], s[..., 1], s[..., 2] / _SQRT2
            s33 = nu * (s11 + s22)
            return np.sqrt(0.5 * ((s11 - s22) ** 2 + (s22 - s33) ** 2 + (s33 - s11) ** 2) + 3 * s12**2)
        s11, s22, s33 = s[..., 0], s[..., 1], s[..., 2]
        s23, s13, s12 = (s[..., k] / _SQRT2 for k in (3, 4, 5))
        return np.sqrt(0.5 * ((s11 - s22) ** 2 + (s22 - s33) ** 2 + (s33 - s11) ** 2)
                       + 3 * (s12**2 + s13**2 + s23**2))

    def at(self, point: Any) -> np.ndarray:
        """The field at a point of the mesh: the displacement vector, or the temperature."""
        p = np.asarray(point, dtype=float).reshape(-1, 1)
        if p.shape[0] != self.basis.mesh.dim():
            raise InputError(f"a point of this mesh has {self.basis.mesh.dim()} coordinates, got {p.ravel().tolist()}")
        mesh = self.basis.mesh
        size = float(np.max(np.ptp(mesh.p, axis=1)))
        centre = mesh.p.mean(axis=1, keepdims=True)
        probe = None
        for shift in (0.0, 1e-10, 1e-7):  # a point on the boundary: nudged towards the centre
            try:
                probe = self.basis.probes(p + shift * size * (centre - p) / max(np.linalg.norm(centre - p), 1e-300))
                break
            except ValueError:
                continue
        if probe is None:
            raise InputError(f"the point {p.ravel().tolist()} lies outside the mesh (a point on a curved boundary "
                             "may fall just outside its straight facets: move it inside)")
        return np.asarray(probe @ self.solution, dtype=float).reshape(-1)


class MacroProblem:
    r"""A macroscopic problem prepared once for many element-tensor fields.

    Everything that does not depend on the tensors is computed at construction: the
    basis, the load vector, the constrained degrees of freedom, and for every element
    the strain-displacement (or gradient) matrices at its quadrature points scaled by
    :math:`\sqrt{w_q |J_q|}`, :math:`\tilde B_{eq}`, with the map from element-matrix
    entries to the entries of the global sparse matrix and of its free-free block. With
    :math:`G_{e,ij} = \sum_q \tilde B_{eq,i}^{\mathsf T} \tilde B_{eq,j}` stored per
    element, a solve costs one product :math:`K_e = \sum_{i \le j} C_{e,ij}
    (G_{e,ij} + [i \ne j] G_{e,ji})`, one ``bincount`` into the pattern, and one sparse
    direct solve (SuperLU) of the free-free block taken from the values directly: the cost
    of the Monte Carlo loops over macro fields, surrogate functions and SVE scatter.
    Measured on a 2D plate of 5000 elements (10302 dofs), one core: preparation 0.25 s,
    assembly 0.004 s, a whole solve 0.039 s.

    Parameters
    ----------
    mesh : skfem.Mesh
        With named boundaries.
    physics : {"elasticity", "conductivity"}
    fixed : dict
        Elasticity: ``{boundary: "all" | components}`` held at zero.
    traction : dict, optional
        Elasticity: ``{boundary: vector}``, uniform tractions.
    temperature : dict
        Conduction: ``{boundary: T}``.
    flux : dict, optional
        Conduction: ``{boundary: q}``, heat flux into the body.
    source : float
        Conduction: uniform volumetric source.
    intorder : int, optional
        Quadrature order (default: exact for the element's stiffness).
    """

    def __init__(self, mesh: Any, physics: str = "elasticity", *, fixed: dict[str, Any] | None = None,
                 traction: dict[str, Any] | None = None, temperature: dict[str, float] | None = None,
                 flux: dict[str, float] | None = None, source: float = 0.0, intorder: int | None = None) -> None:
        from skfem import Basis, ElementVector, FacetBasis, LinearForm, asm

        if physics not in ("elasticity", "conductivity"):
            raise InputError(f"physics must be 'elasticity' or 'conductivity', got {physics!r}")
        self.mesh, self.physics = mesh, physics
        dim = self.dim = mesh.dim()
        elastic = physics == "elasticity"
        self.size = (3 if dim == 2 else 6) if elastic else dim
        elem = ElementVector(_element(mesh)) if elastic else _element(mesh)
        basis = self.basis = Basis(mesh, elem, intorder=intorder)
        scale = np.sqrt(basis.dx)  # (nel, nqp)
        cols = []
        for (phi,) in basis.basis:
            g = phi.grad
            comps = _mandel_strain(g, dim) if elastic else list(g)
            cols.append(np.stack(comps, -1) * scale[..., None])  # (nel, nqp, size)
        self._b = np.ascontiguousarray(np.stack(cols, -1))  # (nel, nqp, size, nloc)
        self._scale = scale
        # K_e = sum_ij C_ij G_ij with G_ij = sum_q B_qi^T B_qj, symmetrized over (i, j) <-> (j, i):
        # one (nel, n_pairs) x (nel, n_pairs, nloc^2) product per solve
        iu, ju = np.triu_indices(self.size)
        g = np.einsum("eqia,eqjb->eijab", self._b, self._b)
        g = g[:, iu, ju] + np.where((iu != ju)[None, :, None, None], g[:, ju, iu], 0.0)
        self._pairs = (iu, ju)
        self._g = np.ascontiguousarray(g.reshape(g.shape[0], iu.size, -1))  # (nel, n_pairs, nloc^2)
        self._edofs = np.ascontiguousarray(basis.element_dofs.T)  # (nel, nloc)
        edofs = basis.element_dofs  # (nloc, nel)
        rows = np.broadcast_to(edofs[:, None, :], (edofs.shape[0],) * 2 + edofs.shape[1:])
        keys = (rows * basis.N + np.swapaxes(rows, 0, 1)).transpose(2, 0, 1).ravel()  # (nel, a, b) order
        unique, self._scatter = np.unique(keys, return_inverse=True)
        self._rows, self._cols = np.divmod(unique, basis.N)
        # loads and constraints
        f = np.zeros(basis.N)
        x = np.zeros(basis.N)
        if elastic:
            for name, t in (traction or {}).items():
                tv = np.asarray(t, dtype=float)
                if tv.shape != (dim,):
                    raise InputError(f"traction on {name!r} must be a vector of {dim} components, got {tv.tolist()}")

                @LinearForm
                def load(v, w, tv=tv):
                    return sum(tv[i] * v[i] for i in range(dim))

                f += asm(load, FacetBasis(mesh, elem, facets=_boundary(mesh, name), intorder=intorder))
            constrained = _fixed_dofs(basis, fixed or {}, dim)
        else:
            if not temperature:
                raise InputError("conduction needs a prescribed temperature on at least one boundary")
            if source:
                @LinearForm
                def heat(v, w):
                    return float(source) * v

                f += asm(heat, basis)
            for name, q in (flux or {}).items():
                @LinearForm
                def inflow(v, w, q=float(q)):
                    return q * v

                f += asm(inflow, FacetBasis(mesh, elem, facets=_boundary(mesh, name), intorder=intorder))
            parts = []
            for name, value in temperature.items():
                d = basis.get_dofs(_boundary(mesh, name)).all()
                x[d] = float(value)
                parts.append(d)
            constrained = np.unique(np.concatenate(parts))
        self.load, self._x = f, x
        self._free = np.setdiff1d(np.arange(basis.N), constrained)
        self._fixed = constrained
        # the pattern's entries (row-major, sorted) of the free-free block and of the free-fixed
        # block, renumbered: a solve slices the assembled values, no sparse indexing
        n = basis.N
        new = np.full(n, -1)
        new[self._free] = np.arange(self._free.size)
        newc = np.full(n, -1)
        newc[constrained] = np.arange(constrained.size)
        ff = (new[self._rows] >= 0) & (new[self._cols] >= 0)
        fc = (new[self._rows] >= 0) & (newc[self._cols] >= 0) & (x[self._cols] != 0)
        self._ff = np.flatnonzero(ff)
        self._ff_idx = new[self._cols[ff]]
        self._ff_ptr = np.concatenate([[0], np.cumsum(np.bincount(new[self._rows[ff]], minlength=self._free.size))])
        self._fc = np.flatnonzero(fc)
        self._fc_rows, self._fc_cols = new[self._rows[fc]], self._cols[fc]

    @property
    def n_elements(self) -> int:
        return int(self.mesh.t.shape[1])

    def stiffness(self, tensors: Any) -> Any:
        """The global matrix for element tensors ``tensors`` (checked: SPD, one per element)."""
        import scipy.sparse as sp

        data, c = self._values(tensors)
        n = self.basis.N
        return sp.csr_matrix((data, (self._rows, self._cols)), shape=(n, n)), c

    def _values(self, tensors: Any) -> tuple[np.ndarray, np.ndarray]:
        """The values of the sparse pattern's entries, and the checked tensors."""
        c = element_tensors(tensors, self.n_elements, self.size)
        ke = np.einsum("ek,ekm->em", c[:, self._pairs[0], self._pairs[1]], self._g)
        return np.bincount(self._scatter, weights=ke.ravel(), minlength=self._rows.size), c

    def solve(self, tensors: Any) -> MacroSolution:
        """Solve with one tensor per element (or one for all)."""
        import scipy.sparse as sp
        from scipy.sparse.linalg import splu

        data, c = self._values(tensors)
        free = self._free
        u = self._x.copy()
        rhs = self.load[free] - np.bincount(self._fc_rows, weights=data[self._fc] * self._x[self._fc_cols],
                                            minlength=free.size)
        # the free-free block is symmetric: its CSR arrays are its CSC arrays. SuperLU with a
        # symmetric ordering (minimum degree on K + K^T) and diagonal pivots: 3.5x faster than
        # the default column ordering on a 5000-element plate
        a = sp.csc_matrix((data[self._ff], self._ff_idx, self._ff_ptr), shape=(free.size, free.size))
        lu = splu(a, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
        u[free] = lu.solve(rhs)
        return MacroSolution(self.basis, u, self.load, float(self.load @ u), self.physics, c,
                             {"n_dofs": int(self.basis.N)}, self)

    def gradients(self, solution: np.ndarray) -> np.ndarray:
        """Mandel strain (elasticity) or temperature gradient at every quadrature point,
        ``(n_elements, n_points, size)``, from the precomputed element matrices."""
        ue = np.asarray(solution, dtype=float)[self._edofs]  # (nel, nloc)
        return np.einsum("eqia,ea->eqi", self._b, ue) / self._scale[..., None]


def solve_elasticity(mesh: Any, tensors: Any, *, fixed: dict[str, Any], traction: dict[str, Any] | None = None,
                     intorder: int | None = None) -> MacroSolution:
    r"""Linear elasticity on a scikit-fem mesh with one Mandel stiffness per element.

    Parameters
    ----------
    mesh : skfem.Mesh
        2D (plane strain) or 3D, with named boundaries (``mesh.boundaries``).
    tensors : array_like
        ``(n_elements, 3, 3)`` (2D) or ``(n_elements, 6, 6)`` (3D) Mandel stiffnesses, or
        one tensor for all elements; symmetric positive definite (checked).
    fixed : dict
        ``{boundary: components}``: the displacement components held at zero on each
        named boundary (``"all"`` or a sequence of component indices).
    traction : dict, optional
        ``{boundary: t}``: a uniform traction vector (force per area) on each named
        boundary.
    intorder : int, optional
        Quadrature order (default: exact for the element's stiffness).

    Returns
    -------
    MacroSolution

    See Also
    --------
    MacroProblem : the same problem prepared once for many tensor fields.
    """
    return MacroProblem(mesh, "elasticity", fixed=fixed, traction=traction, intorder=intorder).solve(tensors)


def solve_conduction(mesh: Any, tensors: Any, *, temperature: dict[str, float], flux: dict[str, float] | None = None,
                     source: float = 0.0, intorder: int | None = None) -> MacroSolution:
    r"""Steady heat conduction with one conductivity tensor per element.

    Parameters
    ----------
    mesh : skfem.Mesh
    tensors : array_like
        ``(n_elements, dim, dim)`` conductivities, or one for all; SPD (checked).
    temperature : dict
        ``{boundary: T}``: prescribed temperatures.
    flux : dict, optional
        ``{boundary: q}``: the heat flux into the body through each named boundary.
    source : float
        Uniform volumetric heat source.
    intorder : int, optional
    """
    return MacroProblem(mesh, "conductivity", temperature=temperature, flux=flux, source=source,
                        intorder=intorder).solve(tensors)


def _element(mesh: Any) -> Any:
    """The linear Lagrange element of a mesh's cells."""
    from skfem import ElementHex1, ElementQuad1, ElementTetP1, ElementTriP1, MeshHex, MeshQuad, MeshTet, MeshTri

    for kind, elem in ((MeshTri, ElementTriP1), (MeshQuad, ElementQuad1), (MeshTet, ElementTetP1),
                       (MeshHex, ElementHex1)):
        if isinstance(mesh, kind):
            return elem()
    raise InputError(f"unsupported mesh type {type(mesh).__name__}: use triangles, quadrilaterals, tetrahedra or "
                     "hexahedra (linear elements)")


def _boundary(mesh: Any, name: str) -> np.ndarray:
    bnd = mesh.boundaries or {}
    if name not in bnd:
        raise InputError(f"the mesh has no boundary {name!r}; it has {sorted(bnd)}")
    return bnd[name]


def _fixed_dofs(basis: Any, fixed: dict[str, Any], dim: int) -> np.ndarray:
    if not fixed:
        raise InputError("elasticity needs fixed displacements on at least one boundary (a free body is singular)")
    names = ["u^1", "u^2", "u^3"][:dim]
    out = []
    for name, comps in fixed.items():
        d = basis.get_dofs(_boundary(basis.mesh, name))
        comps = range(dim) if comps == "all" else comps
        for c in comps:
            if not 0 <= int(c) < dim:
                raise InputError(f"fixed component {c} on {name!r} is not one of 0..{dim - 1}")
            out.append(d.nodal[names[int(c)]])
    return np.unique(np.concatenate(out))
