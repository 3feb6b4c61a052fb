"""The support side of the KRR outer loss at any size M of the support set.

Computing Φ_s = φ(X̃_s) over all M rows in one pass keeps the autograd graph of M network
passes alive until the backward: 2.45 MB per row for the 128-256-512 ConvNet at 32 px, so about
24 GB at N = 1000 (M = 9,672) and 119 GB at N = 5000 (M = 48,508). When M exceeds `chunk`, the
forward here runs chunk by chunk without a graph; the loss and its gradient with respect to Φ_s
(or to the moments G, H) are formed from the result, and the backward recomputes each chunk's
forward with a graph, backpropagates that chunk's share of the gradient to its images and frees
it. Peak memory then grows with the chunk, not with M, and the gradient is the one-graph
gradient up to float rounding, because φ is a fixed function of each image on its own: the
pool model runs in eval mode (BatchNorm uses its running statistics, no dropout). The price is
one more forward pass of the support set per step.

Two reductions of the chunks, one per form of the solve (`distill.krr`):

- features (dual form, M ≤ d): Φ_s (M, d), the chunks concatenated; O(M·d) memory;
- moments (primal form, M > d): G = Σ_c Φ_cᵀΦ_c and H = Σ_c Φ_cᵀỸ_c, O(d²) memory whatever M.
  Their backward is written out rather than left to autograd: with Ḡ, H̄ the gradients of the
  loss with respect to G and H, a chunk's gradients are ∂L/∂Φ_c = Φ_c (Ḡ + Ḡᵀ) + Ỹ_c H̄ᵀ and
  ∂L/∂Ỹ_c = Φ_c H̄, one d×d product per chunk instead of autograd's two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.distill.krr import cheaper_form, krr_predict, krr_predict_primal, support_moments

FeatureMap = Callable[[Tensor], Tensor]  # images (n, c, h, w) -> features (n, d) float32


def _recompute(phi: FeatureMap, x: Tensor, with_graph: bool) -> tuple[Tensor, Tensor]:
    """φ(x) of one chunk again, with a graph from a fresh leaf when `with_graph`.

    x: (n, c, h, w) -> (leaf, φ(leaf) (n, d)). The graph lives until the caller drops `out`.
    """
    leaf = x.detach().requires_grad_(with_graph)
    with torch.set_grad_enabled(with_graph):
        return leaf, phi(leaf)


def _vjp(leaf: Tensor, out: Tensor, grad_out: Tensor) -> Tensor:
    """∂L/∂x of a recomputed chunk, given ∂L/∂φ(x) (n, d).

    A backward into the leaf alone rather than `torch.autograd.grad`: module hooks such as
    `FlopCounterMode`'s cannot run inside an `autograd.grad` call.
    """
    torch.autograd.backward(out, grad_out.to(out.dtype), inputs=[leaf])
    assert leaf.grad is not None
    return leaf.grad


class _ChunkedFeatures(torch.autograd.Function):
    """Φ = [φ(x_1); …; φ(x_k)] over chunks of x, with a recomputing backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, phi: FeatureMap, chunk: int) -> Tensor:
        ctx.phi, ctx.chunk = phi, chunk
        ctx.save_for_backward(x)
        # Views of x made here would inherit requires_grad without a graph: split a detached x.
        return torch.cat([phi(part) for part in x.detach().split(chunk)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        (x,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        grad_x = torch.empty_like(x)  # filled chunk by chunk: no list of parts to concatenate
        for xc, gc, gx in zip(x.split(ctx.chunk), grad.split(ctx.chunk), grad_x.split(ctx.chunk),
                              strict=True):
            gx.copy_(_vjp(*_recompute(ctx.phi, xc, True), gc))
        return grad_x, None, None


class _ChunkedMoments(torch.autograd.Function):
    """(G, H) = Σ_c (Φ_cᵀΦ_c, Φ_cᵀY_c), Φ_c = φ(x_c), with a recomputing backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, phi: FeatureMap, chunk: int) -> tuple[Tensor, Tensor]:
        ctx.phi, ctx.chunk = phi, chunk
        ctx.save_for_backward(x, y)
        gram: Tensor | None = None
        cross: Tensor | None = None
        for xc, yc in zip(x.detach().split(chunk), y.detach().split(chunk), strict=True):
            g, h = support_moments(phi(xc), yc)
            gram, cross = (g, h) if gram is None or cross is None else (gram.add_(g), cross.add_(h))
        assert gram is not None and cross is not None
        return gram, cross

    @staticmethod
    def backward(ctx: Any, grad_gram: Tensor | None, grad_cross: Tensor | None
                 ) -> tuple[Tensor | None, Tensor | None, None, None]:
        x, y = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        d = grad_gram.shape[0] if grad_gram is not None else grad_cross.shape[0]  # type: ignore[union-attr]
        sym = (grad_gram + grad_gram.T) if grad_gram is not None else x.new_zeros(d, d, dtype=torch.float64)
        g_cross = grad_cross if grad_cross is not None else y.new_zeros(d, y.shape[1], dtype=torch.float64)
        grad_x, grad_y = torch.empty_like(x), torch.empty_like(y)  # filled chunk by chunk
        for xc, yc, gx, gy in zip(x.split(ctx.chunk), y.split(ctx.chunk), grad_x.split(ctx.chunk),
                                  grad_y.split(ctx.chunk), strict=True):
            leaf, out = _recompute(ctx.phi, xc, need_x)
            phi_c = out.detach().double()
            if need_y:
                gy.copy_(phi_c @ g_cross)
            if need_x:
                gx.copy_(_vjp(leaf, out, phi_c @ sym + yc.double() @ g_cross.T))
        return (grad_x if need_x else None, grad_y if need_y else None, None, None)


def chunked_features(phi: FeatureMap, x: Tensor, chunk: int) -> Tensor:
    """Φ = φ(x) (M, d) computed `chunk` rows at a time; its backward recomputes each chunk.

    x: (M, c, h, w), typically with a graph to the distilled tensors.
    """
    out = _ChunkedFeatures.apply(x, phi, chunk)
    assert isinstance(out, Tensor)
    return out


def chunked_moments(phi: FeatureMap, x: Tensor, y: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """(G, H) = (Φᵀ Φ, Φᵀ Y) in float64 with Φ = φ(x), accumulated `chunk` rows at a time
    without keeping Φ; the backward recomputes each chunk. x: (M, c, h, w); y: (M, d_y)."""
    gram, cross = _ChunkedMoments.apply(x, y, phi, chunk)
    return gram, cross


def support_prediction(phi_t: Tensor, phi: FeatureMap, x_s: Tensor, y_s: Tensor, *, ridge: float,
                       chunk: int, form: str = "auto") -> Tensor:
    """Ŷ_t = Φ_t Φ_sᵀ (Φ_sΦ_sᵀ + λI)⁻¹ Ỹ_s with Φ_s = φ(X̃_s), at any M.

    phi_t: (B, d) features of the real batch (bias column included); phi: the feature map of
    the support images (same d); x_s: (M, c, h, w); y_s: (M, d_y) -> (B, d_y).
    form: "auto" (the cheaper side, `krr.cheaper_form`), "dual" or "primal".
    chunk: rows per network pass; the support set is chunked when M > chunk, in one graph
    otherwise (the fastest way when it fits).
    """
    M, d = x_s.shape[0], phi_t.shape[1]
    form = cheaper_form(M, d) if form == "auto" else form
    chunked = M > chunk
    if form == "primal":
        gram, cross = chunked_moments(phi, x_s, y_s, chunk) if chunked else support_moments(phi(x_s), y_s)
        return krr_predict_primal(phi_t, gram, cross, ridge)
    phi_s = chunked_features(phi, x_s, chunk) if chunked else phi(x_s)
    return krr_predict(phi_t, phi_s, y_s, ridge, form="dual")
