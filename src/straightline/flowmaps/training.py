"""Training a flow map from data on the toolkit's one optimisation loop (`straightline.train`'s `loop.run`)."""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

from ..loop import TrainResult
from ..training import train as train_velocity
from .losses import lsd_loss, meanflow_loss, shortcut_loss
from .maps import check_flow_map

__all__ = ["train", "LOSSES"]

LOSSES: dict[str, Callable[..., Tensor]] = {"meanflow": meanflow_loss, "shortcut": shortcut_loss, "lsd": lsd_loss}
_OPTIONS = {
    "meanflow": ("noise_fn", "time_sampler", "diagonal", "weight_power", "weight_eps"),
    "shortcut": ("noise_fn", "diagonal", "max_steps"),
    "lsd": ("noise_fn", "diagonal"),
}


def train(
    model: nn.Module,
    data: Any,
    *,
    method: str = "meanflow",
    steps: int,
    seed: int = 0,
    loss_options: dict[str, Any] | None = None,
    **options: Any,
) -> TrainResult:
    """Train a flow-map network u(x, s, t) from data with `method` = "meanflow", "shortcut" or "lsd".

    Runs on the same loop as `straightline.train` and takes the same data (a toy dataset name, a
    tensor or array [N, ...], a Dataset, a DataLoader, an iterator or a function of batches) and
    the same `TrainConfig` keywords (batch_size, lr, ema, device, optimizer, schedule, grad_clip,
    checkpoint/resume, callback(state), ...; batch_size 256 and lr 1e-3 unless given, not
    `train`'s defaults); equal arguments give bit-identical weights on the CPU.
    `loss_options` (or the loss's own keywords given directly) go to the method's loss (see
    `meanflow_loss`, `shortcut_loss`, `lsd_loss`; the papers' settings are the defaults). Returns
    a `TrainResult` whose `ema_model` is the flow map to sample with `flowmaps.sample`.
    """
    if method not in LOSSES:
        raise ValueError(f"unknown method {method!r}; accepted: {', '.join(LOSSES)}")
    chosen = dict(loss_options or {})
    chosen.update({k: options.pop(k) for k in list(options) if k in _OPTIONS[method]})
    other_losses = {k for name in LOSSES if name != method for k in _OPTIONS[name]} - set(_OPTIONS[method])
    wrong = sorted(set(chosen) - set(_OPTIONS[method])) + sorted(set(options) & other_losses)
    if wrong:
        raise ValueError(f"unknown option(s) {', '.join(wrong)} for method {method!r}; "
                         f"accepted: {', '.join(_OPTIONS[method])}")
    check_flow_map(model, "model")
    loss = LOSSES[method]
    options.setdefault("desc", f"{method} training")
    options.setdefault("batch_size", 256)  # the flow-map methods keep batch 256, lr 1e-3 (not train's defaults)
    options.setdefault("lr", 1e-3)
    return train_velocity(model, data, loss=lambda net, x_1, **cond: loss(net, x_1, **chosen), steps=steps, seed=seed,
                          **options)
