"""Training a flow map from data on the toolkit's one optimisation loop (`straightline.train`'s `loop.run`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from torch import Tensor, nn

from .._checks import check_choice
from ..loop import BASELINE_DEFAULTS, TrainConfig, TrainResult, configure_steps
from ..training import train as train_velocity
from .losses import lsd_loss, meanflow_loss, shortcut_loss
from .maps import check_flow_map

__all__ = ["train", "LOSSES", "TEACHERS"]

LOSSES: dict[str, Callable[..., Tensor]] = {"meanflow": meanflow_loss, "shortcut": shortcut_loss, "lsd": lsd_loss}
_OPTIONS = {
    "meanflow": ("noise_fn", "time_sampler", "diagonal", "weight_power", "weight_eps"),
    "shortcut": ("noise_fn", "diagonal", "max_steps"),
    "lsd": ("noise_fn", "diagonal"),
}
# Who makes the self-distillation targets by default, as in the papers' code: shortcut models bootstrap
# from the EMA weights (kvfrans/shortcut-models, bootstrap_ema = 1, rate 0.999); LSD's teacher is the
# current weights under stop-gradient (the paper's sg). MeanFlow's target needs no teacher network.
TEACHERS = {"shortcut": "ema", "lsd": "self"}


class _EMATeacher:
    """The loop's EMA copy as a teacher: the live model until the first callback hands the copy over."""

    def __init__(self, callback: Callable[[Any], Any] | None):
        self.model: nn.Module | None = None
        self.user_callback = callback

    def __call__(self, state: Any) -> Any:
        self.model = state.ema_model
        return self.user_callback(state) if self.user_callback is not None else False

    def teacher(self, live: nn.Module) -> nn.Module:
        return live if self.model is None else self.model


def _with_teacher(method: str, loss: Callable[..., Tensor], chosen: dict[str, Any], teacher: str | None,
                  config: TrainConfig) -> tuple[Callable[..., Tensor], TrainConfig]:
    """loss(net, x_1) with the chosen teacher ("ema" or "self"), and `config` (its callback wrapped for "ema")."""
    if method not in TEACHERS:
        if teacher is not None:
            raise ValueError(f"teacher={teacher!r} applies to shortcut and lsd only; method {method!r} has no teacher")
        return (lambda net, x_1, **cond: loss(net, x_1, **chosen)), config
    teacher = TEACHERS[method] if teacher is None else teacher
    if teacher not in ("ema", "self"):
        raise ValueError(f"teacher must be 'ema' or 'self', got {teacher!r}")
    if teacher == "self":
        return (lambda net, x_1, **cond: loss(net, x_1, **chosen)), config
    holder = _EMATeacher(config.callback)
    return (lambda net, x_1, **cond: loss(net, x_1, teacher=holder.teacher(net), **chosen)), \
        replace(config, callback=holder)


def train(
    model: nn.Module,
    data: Any,
    *,
    method: str = "meanflow",
    loss_options: dict[str, Any] | None = None,
    teacher: str | None = None,
    config: TrainConfig | None = None,
    **options: Any,
) -> TrainResult:
    """Train a flow-map network u(x, s, t) from data with `method` = "meanflow", "shortcut" or "lsd".

    Runs on the same loop as `straightline.train` and takes the same data (a toy dataset name, a
    tensor or array [N, ...], a Dataset, a DataLoader, an iterator or a function of batches) and
    the same training settings: `config` (a `TrainConfig`) or, without one, `steps` (required) at
    batch 256 and lr 1e-3 (not `train`'s defaults) with TrainConfig's other defaults; every
    TrainConfig field can be given as a keyword (steps, seed, batch_size, lr, ema, device,
    optimizer, schedule, grad_clip, checkpoint/resume, callback(state), ...). Equal arguments give
    bit-identical weights on the CPU.
    `loss_options` (or the loss's own keywords given directly) go to the method's loss (see
    `meanflow_loss`, `shortcut_loss`, `lsd_loss`; the papers' settings are the defaults). Returns
    a `TrainResult` whose `ema_model` is the flow map to sample with `flowmaps.sample`.
    `teacher` (shortcut and LSD): "ema" makes the self-distillation targets with the EMA copy,
    "self" with the current weights under no_grad; default as in the papers' code (`TEACHERS`:
    shortcut "ema", LSD "self"). With ema=None there is no copy and "ema" falls back to "self";
    after a resume the first step uses the current weights (the copy is handed over by the
    first callback).
    """
    check_choice(method, "method", LOSSES)
    chosen = dict(loss_options or {})
    chosen.update({k: options.pop(k) for k in list(options) if k in _OPTIONS[method]})
    other_losses = {k for name in LOSSES if name != method for k in _OPTIONS[name]} - set(_OPTIONS[method])
    wrong = sorted(set(chosen) - set(_OPTIONS[method])) + sorted(set(options) & other_losses)
    if wrong:
        raise ValueError(f"unknown option(s) {', '.join(wrong)} for method {method!r}; "
                         f"accepted: {', '.join(_OPTIONS[method])}")
    check_flow_map(model, "model")
    defaults = {**BASELINE_DEFAULTS, "desc": f"{method} training"}  # not train's batch 128, lr 5e-3
    config = configure_steps("flowmaps.train", config, defaults, options)
    loss, config = _with_teacher(method, LOSSES[method], chosen, teacher, config)
    return train_velocity(model, data, loss=loss, config=config)
