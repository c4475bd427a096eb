"""A small convolutional velocity field for 1x8x8 digit images, optionally class-conditional."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .embedding import TimeEmbedding, condition_module, embed_condition

__all__ = ["ConvNet"]


class _Block(nn.Module):
    """Two 3x3 convolutions with GroupNorm, SiLU and a FiLM shift/scale from the conditioning."""

    def __init__(self, c_in: int, c_out: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.film = nn.Linear(width, 2 * c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.act(self.norm1(self.conv1(x)))  # [B, c_out, H, W]
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)  # [B, c_out, 1, 1] each
        h = h * (1 + scale) + shift
        h = self.act(self.norm2(self.conv2(h)))
        return h + self.skip(x)


class ConvNet(nn.Module):
    """v(x, t[, y]) for x of shape [B, 1, 8, 8], t of shape [B] and optional labels y of shape [B].

    A two-level U-Net: 8x8 -> 4x4 -> 8x8 with a skip connection. With `num_classes` set the model
    is class-conditional and reserves label `num_classes` as the null class (no condition), which
    is what it sees when y is None; classifier-free guidance mixes the two. With `cond_dim` it
    takes float conditions y [B, cond_dim] instead, rows of NaN meaning no condition (a learned
    null embedding; see `straightline.conditions`).
    """

    def __init__(
        self, channels: int = 64, num_classes: int | None = None, time_dim: int = 64, in_channels: int = 1,
        cond_dim: int | None = None,
    ):
        super().__init__()
        check_positive_int(channels, "channels")
        if channels % 8:
            raise ValueError(f"channels must be a multiple of 8, got {channels}")
        for name, value in (("num_classes", num_classes), ("cond_dim", cond_dim)):
            if value is not None:
                check_positive_int(value, name)
        self.config = {"channels": channels, "num_classes": num_classes, "time_dim": time_dim, "in_channels": in_channels}
        if cond_dim is not None:
            self.config["cond_dim"] = cond_dim
        self.num_classes, self.cond_dim = num_classes, cond_dim
        self.embed = TimeEmbedding(time_dim)
        width = 4 * time_dim
        self.cond = nn.Sequential(nn.Linear(time_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.label = condition_module(num_classes, cond_dim, width)
        c = channels
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down = _Block(c, c, width)
        self.pool = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.mid = _Block(2 * c, 2 * c, width)
        self.upsample = nn.ConvTranspose2d(2 * c, c, 2, stride=2)  # 4x4 -> 8x8
        self.up = _Block(2 * c, c, width)
        self.out = nn.Conv2d(c, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"ConvNet expects x of shape [B, C, H, W], got {list(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape [{x.shape[0]}], got {list(t.shape)}")
        cond = self.cond(self.embed(t).to(x.dtype))  # [B, 4 time_dim]
        label = embed_condition(self.label, y, self.num_classes, x.shape[0], x.device, "ConvNet")  # [B, 4 time_dim] or None
        if label is not None:
            cond = cond + label.to(cond.dtype)
        h0 = self.down(self.stem(x), cond)  # [B, c, 8, 8]
        h1 = self.mid(self.pool(h0), cond)  # [B, 2c, 4, 4]
        h = self.up(torch.cat([self.upsample(h1), h0], dim=1), cond)  # [B, c, 8, 8]
        return self.out(h)  # [B, 1, 8, 8]
