"""Flow-map networks u(x, s, t): the average velocity from time s to time t (see `straightline.flowmaps`).

A flow map jumps a particle from time s to time t >= s: X_{s,t}(x) = x + (t - s) u(x, s, t). On
the diagonal s = t the average velocity is the instantaneous one, u(x, s, s) = v(x, s), so a
flow-map network is a velocity network with one more input. Both networks here condition on the
start time s and on the gap t - s (as MeanFlow's code does), each through its own sinusoidal
embedding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .._checks import check_positive_int
from .embedding import TimeEmbedding
from .mmdit import MMDiT

__all__ = ["FlowMapMLP", "FlowMapMMDiT"]


def _check_times(x: Tensor, s: Tensor, t: Tensor) -> None:
    for name, value in (("s", s), ("t", t)):
        if not isinstance(value, Tensor) or value.shape != (x.shape[0],):
            got = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{name} must have shape [{x.shape[0]}] (one time per sample), got {got}")


class FlowMapMLP(nn.Module):
    """u(x, s, t) for x of shape [B, ...] with `dim` numbers per sample and s, t of shape [B].

    The flattened x, an embedding of s and an embedding of t - s are concatenated, followed by
    `depth` hidden layers of width `hidden` with SiLU activations and a linear read-out to `dim`
    average velocities, returned in x's shape. Same layers as `models.MLP` of equal size, plus
    `time_dim` inputs for the gap.
    """

    def __init__(self, dim: int = 2, hidden: int = 256, depth: int = 3, time_dim: int = 32):
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth), ("time_dim", time_dim)):
            check_positive_int(value, name)
        self.config = {"dim": dim, "hidden": hidden, "depth": depth, "time_dim": time_dim}
        self.dim = dim
        self.embed_s = TimeEmbedding(time_dim)
        self.embed_gap = TimeEmbedding(time_dim)
        layers: list[nn.Module] = [nn.Linear(dim + 2 * time_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, s: Tensor, t: Tensor) -> Tensor:
        if x.ndim < 2 or x[0].numel() != self.dim:
            raise ValueError(
                f"FlowMapMLP expects x of shape [B, ...] with {self.dim} numbers per sample, got {list(x.shape)}"
            )
        _check_times(x, s, t)
        flat = x.reshape(x.shape[0], self.dim)  # [B, dim]
        parts = [flat, self.embed_s(s).to(x.dtype), self.embed_gap(t - s).to(x.dtype)]  # [B, dim], 2 x [B, time_dim]
        return self.net(torch.cat(parts, dim=1)).reshape(x.shape)  # [B, ...] like x


class FlowMapMMDiT(MMDiT):
    """u(x, s, t[, y]) for digit images x [B, in_channels, image_size, image_size], s, t [B], y [B].

    The tiny two-stream transformer of `models.MMDiT` (same constructor arguments, same blocks),
    whose adaLN conditioning vector gains an embedding of the gap t - s: cond = MLP(embed(s)) +
    MLP_gap(embed(t - s)) + label embedding. The gap MLP's last layer starts at zero, so a fresh
    FlowMapMMDiT behaves as a velocity field on every (s, t) until training teaches it to jump.
    """

    def __init__(self, **config):
        super().__init__(**config)
        time_dim = self.config["time_dim"]
        self.gap_mlp = nn.Sequential(nn.Linear(time_dim, self.dim), nn.SiLU(), nn.Linear(self.dim, self.dim))
        nn.init.zeros_(self.gap_mlp[2].weight)
        nn.init.zeros_(self.gap_mlp[2].bias)

    def forward(self, x: Tensor, s: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:  # type: ignore[override]
        shape = [self.in_channels, self.image_size, self.image_size]
        if x.ndim != 4 or list(x.shape[1:]) != shape:
            raise ValueError(f"FlowMapMMDiT expects x of shape [B, {', '.join(map(str, shape))}], got {list(x.shape)}")
        _check_times(x, s, t)
        B = x.shape[0]
        y = self._labels(y, B, x.device)  # [B]
        cond = self.time_mlp(self.embed(s).to(x.dtype)) + self.gap_mlp(self.embed(t - s).to(x.dtype))  # [B, dim]
        cond = cond + self.label_pool(y)  # [B, dim]
        img = self.patch_embed(self.patchify(x)) + self.pos  # [B, Ni, dim]
        lbl = self.label_embed(y).view(B, self.label_tokens, self.dim)  # [B, Nl, dim]
        with sdpa_kernel(SDPBackend.MATH):  # the fused CPU kernels have no forward-mode derivative (jvp)
            for block in self.blocks:
                img, lbl = block(img, lbl, cond)  # [B, Ni, dim], [B, Nl, dim] (None after the last)
        shift, scale = self.final_modulation(cond).chunk(2, dim=1)  # [B, dim] each
        h = self.final_norm(img) * (1 + scale[:, None, :]) + shift[:, None, :]  # [B, Ni, dim]
        return self.unpatchify(self.final(h))  # [B, C, S, S]
