r"""Fused Triton kernels for the Q1 stiffness operator on GPUs (3D, proportional phases).

When every element matrix is a multiple of one, :math:`K_e = s_e K_{\mathrm{ref}}`
(isotropic phases of one Poisson ratio, pores: see
:class:`~stochhom.spectral.q1_torch.Q1TorchProblem`), the nodal force (elasticity;
conductivity is the same with one component) is

.. math::
    (Ku)_n = \sum_{e \ni n} s_e \sum_{c} K_{\mathrm{ref}}[a(n, e), c]\, u_{c(e)},

with :math:`a(n, e)` the corner of element :math:`e` at node :math:`n`. One program
handles a block of nodes: it reads the 27 neighbouring nodal values and the 8
neighbouring scale factors, does the :math:`8 \times 3 \times 24` multiply-adds in
registers, and writes the 3 force components: one pass over the field instead of the
gather, product and scatter of whole-grid tensors (which stream the 24 corner values
of every element through memory three times). No atomics: every node sums its terms
in a fixed order, so results are reproducible.

Triton is imported only when a CUDA device is used and Triton is installed (it ships
with PyTorch's CUDA builds); otherwise the torch backend keeps its tensor operations.
"""

from __future__ import annotations

from typing import Any

__all__ = ["available", "apply_scaled3"]


def available(device: Any) -> bool:
    """Whether the fused kernel can run on ``device`` (a CUDA device with Triton installed)."""
    import os

    if getattr(device, "type", None) != "cuda" and not os.environ.get("TRITON_INTERPRET"):
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


_KERNELS: dict[int, Any] = {}


def _kernel(m: int) -> Any:
    """The compiled kernel for ``m`` nodal components (3: elasticity, 1: conductivity)."""
    if m in _KERNELS:
        return _KERNELS[m]
    import triton
    import triton.language as tl

    @triton.jit
    def q1_apply_scaled3_scalar(u_ptr, scale_ptr, k_ptr, out_ptr, n0, n1, n2, BLOCK: tl.constexpr):
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        valid = idx < n0 * n1 * n2
        k = idx % n2
        j = (idx // n2) % n1
        i = idx // (n1 * n2)
        f = tl.zeros((BLOCK,), dtype=tl.float64)
        for e in tl.static_range(8):
            ei = i - ((e >> 2) & 1)
            ej = j - ((e >> 1) & 1)
            ek = k - (e & 1)
            ei = tl.where(ei < 0, ei + n0, ei)
            ej = tl.where(ej < 0, ej + n1, ej)
            ek = tl.where(ek < 0, ek + n2, ek)
            s = tl.load(scale_ptr + (ei * n1 + ej) * n2 + ek, mask=valid, other=0.0)
            g = tl.zeros((BLOCK,), dtype=tl.float64)
            for c in tl.static_range(8):
                ci = ei + ((c >> 2) & 1)
                cj = ej + ((c >> 1) & 1)
                ck = ek + (c & 1)
                ci = tl.where(ci >= n0, ci - n0, ci)
                cj = tl.where(cj >= n1, cj - n1, cj)
                ck = tl.where(ck >= n2, ck - n2, ck)
                uv = tl.load(u_ptr + (ci * n1 + cj) * n2 + ck, mask=valid, other=0.0)
                g += tl.load(k_ptr + e * 8 + c) * uv
            f += s * g
        tl.store(out_ptr + idx, f, mask=valid)

    @triton.jit
    def q1_apply_scaled3(u_ptr, scale_ptr, k_ptr, out_ptr, n0, n1, n2, BLOCK: tl.constexpr):
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        n_nodes = n0 * n1 * n2
        valid = idx < n_nodes
        k = idx % n2
        j = (idx // n2) % n1
        i = idx // (n1 * n2)
        f0 = tl.zeros((BLOCK,), dtype=tl.float64)
        f1 = tl.zeros((BLOCK,), dtype=tl.float64)
        f2 = tl.zeros((BLOCK,), dtype=tl.float64)
        for e in tl.static_range(8):  # the node is corner e of element (node - bits(e))
            ei = i - ((e >> 2) & 1)
            ej = j - ((e >> 1) & 1)
            ek = k - (e & 1)
            ei = tl.where(ei < 0, ei + n0, ei)
            ej = tl.where(ej < 0, ej + n1, ej)
            ek = tl.where(ek < 0, ek + n2, ek)
            s = tl.load(scale_ptr + (ei * n1 + ej) * n2 + ek, mask=valid, other=0.0)
            g0 = tl.zeros((BLOCK,), dtype=tl.float64)
            g1 = tl.zeros((BLOCK,), dtype=tl.float64)
            g2 = tl.zeros((BLOCK,), dtype=tl.float64)
            for c in tl.static_range(8):
                ci = ei + ((c >> 2) & 1)
                cj = ej + ((c >> 1) & 1)
                ck = ek + (c & 1)
                ci = tl.where(ci >= n0, ci - n0, ci)
                cj = tl.where(cj >= n1, cj - n1, cj)
                ck = tl.where(ck >= n2, ck - n2, ck)
                node = (ci * n1 + cj) * n2 + ck
                for comp in tl.static_range(3):
                    uv = tl.load(u_ptr + comp * n_nodes + node, mask=valid, other=0.0)
                    col = c * 3 + comp
                    g0 += tl.load(k_ptr + (e * 3 + 0) * 24 + col) * uv
                    g1 += tl.load(k_ptr + (e * 3 + 1) * 24 + col) * uv
                    g2 += tl.load(k_ptr + (e * 3 + 2) * 24 + col) * uv
            f0 += s * g0
            f1 += s * g1
            f2 += s * g2
        tl.store(out_ptr + idx, f0, mask=valid)
        tl.store(out_ptr + n_nodes + idx, f1, mask=valid)
        tl.store(out_ptr + 2 * n_nodes + idx, f2, mask=valid)

    _KERNELS.update({3: q1_apply_scaled3, 1: q1_apply_scaled3_scalar})
    return _KERNELS[m]


def apply_scaled3(u: Any, scale: Any, kref: Any, out: Any, block: int = 128) -> Any:
    """``out[b] = K u[b]`` in 3D with ``K_e = scale[e] * kref``.

    Parameters
    ----------
    u, out : torch.Tensor, shape ``(batch, m, n0, n1, n2)``, float64, contiguous
        ``m = 3`` (elasticity) or 1 (conductivity).
    scale : torch.Tensor, shape ``(n0 * n1 * n2,)``, float64
        Per-element factor (0 for void elements).
    kref : torch.Tensor, shape ``(8 m, 8 m)``, float64, contiguous
    """
    import triton

    kernel = _kernel(u.shape[1])
    n0, n1, n2 = u.shape[2:]
    grid = (triton.cdiv(n0 * n1 * n2, block),)
    for b in range(u.shape[0]):
        kernel[grid](u[b], scale, kref, out[b], n0, n1, n2, BLOCK=block)
    return out
