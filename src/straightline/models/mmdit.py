"""A tiny two-stream transformer (MMDiT, as in Stable Diffusion 3) for 1x8x8 digit images.

Two token streams share one attention: the image stream (2x2 patches of x_t, 16 tokens for an
8x8 image) and the label stream (a few learned tokens per class). Every block keeps separate
weights for each stream (norms, QKV and output projections, MLPs, modulation), concatenates the
two streams' queries, keys and values, runs ONE attention over all tokens, and splits the result
back. Time (and a pooled label embedding) enter through adaLN: a per-block, per-stream shift,
scale and gate, zero-initialised so every block starts as the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int
from .embedding import TimeEmbedding, VectorCondition

__all__ = ["MMDiT"]


def _modulate(h: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """h [B, N, D] with per-sample shift, scale [B, D] -> h * (1 + scale) + shift."""
    return h * (1 + scale[:, None, :]) + shift[:, None, :]


class _Stream(nn.Module):
    """One stream's weights inside a joint block: adaLN, pre-norm, QKV, q/k-norm, out-proj, MLP.

    With `pre_only` (the label stream of the last block) the stream only contributes keys and
    values to the joint attention; its own output would never be read, so it has no out-proj/MLP.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int, pre_only: bool = False):
        super().__init__()
        self.heads, self.head_dim, self.pre_only = heads, dim // heads, pre_only
        n_mod = 2 if pre_only else 6  # (shift, scale) or (shift, scale, gate) x (attention, MLP)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, n_mod * dim))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        if not pre_only:
            self.proj = nn.Linear(dim, dim)
            self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
            hidden = mlp_ratio * dim
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))

    def pre_attention(self, h: Tensor, cond: Tensor) -> tuple[tuple[Tensor, Tensor, Tensor], tuple[Tensor, ...]]:
        """h [B, N, D], cond [B, D] -> (q, k, v each [B, heads, N, head_dim]), remaining modulation."""
        mods = self.modulation(cond).chunk(2 if self.pre_only else 6, dim=1)  # each [B, D]
        shift1, scale1 = mods[0], mods[1]
        B, N, _ = h.shape
        qkv = self.qkv(_modulate(self.norm1(h), shift1, scale1))  # [B, N, 3D]
        q, k, v = qkv.view(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # each [B, heads, N, head_dim]
        return (self.q_norm(q), self.k_norm(k), v), mods[2:]

    def post_attention(self, h: Tensor, attn: Tensor, mods: tuple[Tensor, ...]) -> Tensor:
        """Residual updates: h [B, N, D], attn [B, N, D] (this stream's rows of the joint attention)."""
        gate1, shift2, scale2, gate2 = mods  # each [B, D]
        h = h + gate1[:, None, :] * self.proj(attn)  # [B, N, D]
        return h + gate2[:, None, :] * self.mlp(_modulate(self.norm2(h), shift2, scale2))  # [B, N, D]


class _JointBlock(nn.Module):
    """Separate image/label weights, one attention over the concatenated [image; label] tokens."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, last: bool):
        super().__init__()
        self.image = _Stream(dim, heads, mlp_ratio)
        self.label = _Stream(dim, heads, mlp_ratio, pre_only=last)

    def forward(self, img: Tensor, lbl: Tensor, cond: Tensor) -> tuple[Tensor, Tensor | None]:
        """img [B, Ni, D], lbl [B, Nl, D], cond [B, D] -> (img [B, Ni, D], lbl [B, Nl, D] or None)."""
        (qi, ki, vi), mods_i = self.image.pre_attention(img, cond)  # each [B, H, Ni, hd]
        (ql, kl, vl), mods_l = self.label.pre_attention(lbl, cond)  # each [B, H, Nl, hd]
        q = torch.cat([qi, ql], dim=2)  # [B, H, Ni + Nl, hd]
        k = torch.cat([ki, kl], dim=2)
        v = torch.cat([vi, vl], dim=2)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, H, Ni + Nl, hd]
        B, H, N, hd = out.shape
        out = out.transpose(1, 2).reshape(B, N, H * hd)  # [B, Ni + Nl, D]
        n_img = img.shape[1]
        img = self.image.post_attention(img, out[:, :n_img], mods_i)  # [B, Ni, D]
        lbl = None if self.label.pre_only else self.label.post_attention(lbl, out[:, n_img:], mods_l)  # [B, Nl, D]
        return img, lbl


def _check_config(config: dict[str, int | None], cond_dim: int | None) -> None:
    """ValueError naming the first bad size or condition setting of an MMDiT."""
    dim, heads, patch, image_size = config["dim"], config["heads"], config["patch"], config["image_size"]
    num_classes = config["num_classes"]
    for name, value in config.items():
        if name != "num_classes":
            check_positive_int(value, name)
    if dim % heads or (dim // heads) % 2:
        raise ValueError(f"dim must be a multiple of 2 * heads, got dim={dim}, heads={heads}")
    if image_size % patch:
        raise ValueError(f"patch must divide image_size={image_size}, got patch={patch}")
    if num_classes is not None:
        check_positive_int(num_classes, "num_classes")
    if cond_dim is not None:
        check_positive_int(cond_dim, "cond_dim")
        if num_classes is not None:
            raise ValueError(f"a vector condition (cond_dim={cond_dim}) needs num_classes=None, got num_classes={num_classes}")


class MMDiT(nn.Module):
    """v(x, t[, y]) for x of shape [B, in_channels, image_size, image_size], t [B] in [0, 1], y [B].

    Image stream: non-overlapping `patch` x `patch` patches, linearly embedded, plus a learned
    positional embedding ((image_size / patch)^2 tokens). Label stream: `label_tokens` learned
    tokens per class. `depth` joint blocks (the last one's label stream only feeds keys/values),
    then an adaLN-modulated linear layer that unpatchifies back to x's shape. The conditioning
    vector for adaLN is an MLP of the sinusoidal time embedding plus a pooled label embedding.

    With `num_classes` set (default 10, the digits) label `num_classes` is the null class (no
    condition), which is what the model sees when y is None; classifier-free guidance mixes the
    two. With num_classes=None the label stream is a single learned set of tokens and y must be None.
    With `cond_dim` (and num_classes=None) the condition is a float vector y [B, cond_dim]: the
    label tokens and the pooled embedding are MLPs of y, and rows of NaN (or y = None) get learned
    null embeddings (see `straightline.conditions`).
    """

    def __init__(
        self,
        dim: int = 64,
        depth: int = 3,
        heads: int = 4,
        patch: int = 2,
        label_tokens: int = 4,
        num_classes: int | None = 10,
        time_dim: int = 64,
        mlp_ratio: int = 4,
        image_size: int = 8,
        in_channels: int = 1,
        cond_dim: int | None = None,
    ):
        super().__init__()
        config = {
            "dim": dim, "depth": depth, "heads": heads, "patch": patch, "label_tokens": label_tokens,
            "num_classes": num_classes, "time_dim": time_dim, "mlp_ratio": mlp_ratio,
            "image_size": image_size, "in_channels": in_channels,
        }
        _check_config(config, cond_dim)
        self.config = config
        if cond_dim is not None:
            self.config["cond_dim"] = cond_dim
        self.num_classes, self.cond_dim = num_classes, cond_dim
        self.dim, self.patch, self.image_size, self.in_channels = dim, patch, image_size, in_channels
        self.label_tokens = label_tokens
        n_labels = num_classes + 1 if num_classes is not None else 1  # + the null class
        self._init_conditioning(time_dim, n_labels)
        self._init_streams(n_labels)
        self.blocks = nn.ModuleList(_JointBlock(dim, heads, mlp_ratio, last=i == depth - 1) for i in range(depth))
        self._init_final()

    def _init_conditioning(self, time_dim: int, n_labels: int) -> None:
        """Time and a pooled label embedding -> the adaLN conditioning vector [B, dim]."""
        dim, cond_dim = self.dim, self.cond_dim
        self.embed = TimeEmbedding(time_dim)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.label_pool = nn.Embedding(n_labels, dim) if cond_dim is None else VectorCondition(cond_dim, dim)

    def _init_streams(self, n_labels: int) -> None:
        """The image stream's patch and positional embeddings and the label stream's tokens."""
        dim, patch, cond_dim = self.dim, self.patch, self.cond_dim
        grid = self.image_size // patch
        self.patch_embed = nn.Linear(self.in_channels * patch * patch, dim)
        self.pos = nn.Parameter(torch.randn(1, grid * grid, dim) * 0.02)  # [1, Ni, dim]
        if cond_dim is None:
            self.label_embed = nn.Embedding(n_labels, self.label_tokens * dim)
            nn.init.normal_(self.label_embed.weight, std=0.02)
        else:
            self.label_embed = VectorCondition(cond_dim, self.label_tokens * dim)

    def _init_final(self) -> None:
        """adaLN (shift, scale) + linear to patch pixels, zero-initialised (v = 0 at start)."""
        dim = self.dim
        self.final_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.final = nn.Linear(dim, self.in_channels * self.patch * self.patch)
        for layer in (self.final_modulation[1], self.final):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _labels(self, y: Tensor | None, batch: int, device: torch.device) -> Tensor | None:
        if self.cond_dim is not None:
            return y  # checked by the VectorCondition embeddings
        if self.num_classes is None:
            if y is not None:
                raise ValueError("this MMDiT is unconditional (num_classes=None) but labels y were given")
            return torch.zeros(batch, dtype=torch.long, device=device)
        if y is None:
            return torch.full((batch,), self.num_classes, dtype=torch.long, device=device)
        if y.shape != (batch,) or y.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"y must be an integer tensor of shape [{batch}], got {y.dtype} {list(y.shape)}")
        if batch and (y.min() < 0 or y.max() > self.num_classes):
            raise ValueError(
                f"y must lie in 0..{self.num_classes} ({self.num_classes} = null class), "
                f"got values in [{y.min().item()}, {y.max().item()}]"
            )
        return y.long()

    def patchify(self, x: Tensor) -> Tensor:
        """[B, C, S, S] -> [B, (S/p)^2, C p p], patches in row-major order."""
        B, C, S, p = x.shape[0], self.in_channels, self.image_size, self.patch
        g = S // p
        x = x.reshape(B, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5)  # [B, g, g, C, p, p]
        return x.reshape(B, g * g, C * p * p)

    def unpatchify(self, tokens: Tensor) -> Tensor:
        """[B, (S/p)^2, C p p] -> [B, C, S, S]; the inverse of `patchify`."""
        B, C, S, p = tokens.shape[0], self.in_channels, self.image_size, self.patch
        g = S // p
        x = tokens.reshape(B, g, g, C, p, p).permute(0, 3, 1, 4, 2, 5)  # [B, C, g, p, g, p]
        return x.reshape(B, C, S, S)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        shape = [self.in_channels, self.image_size, self.image_size]
        if x.ndim != 4 or list(x.shape[1:]) != shape:
            raise ValueError(f"MMDiT expects x of shape [B, {', '.join(map(str, shape))}], got {list(x.shape)}")
        B = x.shape[0]
        if t.shape != (B,):
            raise ValueError(f"t must have shape [{B}], got {list(t.shape)}")
        y = self._labels(y, B, x.device)  # [B] labels, or [B, cond_dim] vectors / None with cond_dim
        pool, tokens = (self.label_pool(y), self.label_embed(y)) if self.cond_dim is None else (
            self.label_pool(y, B), self.label_embed(y, B))  # [B, dim], [B, label_tokens dim]
        cond = self.time_mlp(self.embed(t).to(x.dtype)) + pool.to(x.dtype)  # [B, dim]
        img = self.patch_embed(self.patchify(x)) + self.pos  # [B, Ni, dim]
        lbl = tokens.to(x.dtype).view(B, self.label_tokens, self.dim)  # [B, Nl, dim]
        for block in self.blocks:
            img, lbl = block(img, lbl, cond)  # [B, Ni, dim], [B, Nl, dim] (None after the last)
        shift, scale = self.final_modulation(cond).chunk(2, dim=1)  # [B, dim] each
        out = self.final(_modulate(self.final_norm(img), shift, scale))  # [B, Ni, C p p]
        return self.unpatchify(out)  # [B, C, S, S]
