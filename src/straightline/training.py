"""`train`: conditional flow matching (or your own loss) on your data, through the one training loop.

    result = sl.train(model, data, steps=2000)                      # data: tensor, array, Dataset, ...
    result = sl.train(model, x, labels=y, label_dropout=0.1)         # class-conditional (for guidance)
    result = sl.train(model, x, steps=200, checkpoint="run.pt", checkpoint_every=50)
    result = sl.train(model, x, steps=400, resume="run.pt")          # continues to step 400, bit for bit

Loop options (device, optimizer, warm-up/cosine schedule, grad clipping, AMP, accumulation,
compile, validation, callback, checkpoints) are the fields of `TrainConfig`, given as keywords or
as `config=`. Under `torchrun` the run joins the process group by itself (see `loop`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from . import couplings
from ._checks import check_choice
from .batches import Batches, as_tensor, make_batches
from .checkpoints import unwrap
from .conditions import condition_kind, drop_condition
from .distributed import Context
from .losses import cfm_loss
from .loop import TrainConfig, TrainResult, TrainState, configure, ema_update, run
from .paths import GaussianPath
from .timesteps import TimeSampler

__all__ = [
    "train", "TrainConfig", "TrainResult", "TrainState", "AUTO", "COUPLINGS", "check_label_dropout", "check_model",
    "data_source", "drop_labels", "ema_update", "resolve_coupling", "check_sampler", "configure", "data_source", "run",
]

#: couplings by name (the names the CLI accepts)
COUPLINGS: dict[str, Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None] = {
    "independent": None,
    "exact_ot": couplings.exact_ot,
}


#: `train`'s default coupling: exact OT for unconditional data; independent pairs when the batches
#: carry conditions (one OT plan across conditions would bias the noise paired with each condition)
AUTO = "auto"


def resolve_coupling(coupling: object) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None:
    """A coupling function from a name in COUPLINGS or a function (None: independent)."""
    if isinstance(coupling, str):
        return COUPLINGS[check_choice(coupling, "coupling", (AUTO, *COUPLINGS), " or a function")]
    if coupling is not None and not callable(coupling):
        raise ValueError(f"coupling must be a name ({AUTO}, {', '.join(COUPLINGS)}) or a function, got {coupling!r}")
    return coupling


def check_sampler(fn: object, name: str, factory_hint: bool = True) -> None:
    """ValueError unless fn(n) returns a tensor of n values (catches an uncalled factory)."""
    if fn is None:
        return
    if not callable(fn):
        raise ValueError(f"{name} must be a function of a batch size or of t, got {fn!r}")
    with torch.random.fork_rng(devices=[]):
        try:
            out = fn(2) if name == "t_sampler" else fn(torch.full((2,), 0.5))
        except Exception:  # noqa: BLE001 - any failure of the probe means a wrong kind of object
            out = None
    if not isinstance(out, Tensor) or out.shape != (2,):
        label = getattr(fn, "__name__", type(fn).__name__)
        hint = f"; {label} looks like a factory: pass {label}() (called)" if callable(out) or out is None else ""
        raise ValueError(f"{name} must return a tensor of shape [n], got {type(out).__name__} from {label}{hint}")


def check_model(model: object) -> None:
    """ValueError for a non-module or a module whose forward takes (t, x) instead of (x, t)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module called as model(x, t), got {type(model).__name__}")
    try:
        params = list(inspect.signature(unwrap(model).forward).parameters)
    except (TypeError, ValueError):
        return
    if params and params[0] in ("t", "time", "times", "timestep", "timesteps", "sigma"):
        raise ValueError(
            f"{type(unwrap(model)).__name__}.forward takes ({', '.join(params[:2])}, ...), but straightline calls "
            "model(x, t): put the data first (or wrap it: lambda x, t: model(t, x) inside a Module)"
        )


def _check_labels(model: nn.Module, labels: Tensor | None) -> None:
    num_classes = getattr(unwrap(model), "num_classes", None)
    if labels is None or not isinstance(num_classes, int):
        return
    if labels.is_floating_point() or labels.ndim != 1:
        raise ValueError(f"labels for a {num_classes}-class model must be integers of shape [N], got "
                         f"{labels.dtype} of shape {list(labels.shape)}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1} (the model has num_classes={num_classes}), got "
                         f"values in {int(labels.min())}..{int(labels.max())}")


def check_label_dropout(model: nn.Module, p: object) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"label_dropout must be in [0, 1), got {p!r}")
    if p:
        try:
            condition_kind(unwrap(model))
        except ValueError:
            raise ValueError("label_dropout needs a conditional model: one with num_classes (class labels) or "
                             "cond_dim (condition vectors)") from None


def drop_labels(model: nn.Module, y: Tensor | None, p: float) -> Tensor | None:
    """Conditions y ([B] labels or [B, D] vectors), each replaced by the model's null condition with
    probability p (CFG training); the mask is drawn on y's device."""
    if y is None or not p:
        return y
    return drop_condition(unwrap(model), y, p)


def data_source(data: Any, config: TrainConfig, *, labels: Any = None, cond: Mapping[str, Any] | None = None):
    """The `make_source` of `loop.run` for `data` (and its labels / conditions)."""
    rows = config.micro_batch

    def make(other: Any, generator: torch.Generator, ctx: Context | None = None) -> Batches:
        ctx = ctx or Context()
        if other is not None:
            return make_batches(other, batch_size=rows, generator=generator)
        return make_batches(data, batch_size=rows, generator=generator, labels=labels, cond=cond, rank=ctx.rank,
                            world=ctx.world)

    return make


def _flow_matching_loss(path, coupling, t_sampler, weight, label_dropout) -> Callable[..., Tensor]:
    """cfm_loss on a batch; `coupling` AUTO: exact OT unless the batch carries conditions."""
    pairs = None if isinstance(coupling, str) and coupling == AUTO else resolve_coupling(coupling)

    def loss_fn(model: nn.Module, x_1: Tensor, **cond: Any) -> Tensor:
        if "y" in cond:
            cond = {**cond, "y": drop_labels(model, cond["y"], label_dropout)}
        v = (lambda x, t: model(x, t, **cond)) if cond else model
        chosen = (None if cond else couplings.exact_ot) if isinstance(coupling, str) and coupling == AUTO else pairs
        return cfm_loss(v, x_1, path=path, coupling=chosen, t_sampler=t_sampler, weight=weight)

    return loss_fn


def train(
    model: nn.Module,
    data: Any,
    *,
    loss: Callable[..., Tensor] | None = None,
    path: GaussianPath | None = None,
    coupling: str | Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = AUTO,
    t_sampler: TimeSampler | None = None,
    weight: Callable[[Tensor], Tensor] | None = None,
    labels: Any = None,
    cond: Mapping[str, Any] | None = None,
    label_dropout: float = 0.0,
    config: TrainConfig | None = None,
    **options: Any,
) -> TrainResult:
    """Train `model` (a velocity field model(x, t, **cond)) by conditional flow matching.

    `data`: a toy dataset name (fresh samples every step), a tensor or numpy array [N, ...]
    (shuffled epochs; float64 data is converted to the model's dtype), a `Dataset` (items x,
    (x, y) or {"x": x, ...}), a `DataLoader`, an iterator of batches or a function returning one.
    `labels` [N] (or `cond`, a dict of per-row tensors) are passed to the model as keywords
    (labels as y); with probability `label_dropout` a label becomes the null class
    `model.num_classes` (classifier-free guidance). `coupling` is a function or a name
    ("auto", "independent", "exact_ot"); the default "auto" pairs noise and data by exact
    minibatch OT (`couplings.exact_ot`) and falls back to independent pairs for batches with
    labels or conditions (None means independent, as in `cfm_loss`). `loss(model, x, **cond) ->
    scalar` replaces flow matching. Every other keyword is a `TrainConfig` field (steps,
    batch_size, lr, ema, ema_warmup, seed, device, optimizer, weight_decay, warmup_steps,
    schedule, grad_clip, amp, accumulate, compile, log_every, val_data, val_every, callback,
    checkpoint, checkpoint_every, resume, ...).

    The defaults (exact-OT pairs, batch 128, lr 5e-3, EMA 0.999 with warm-up; `MLP`'s width
    128) were chosen for quality per second: bench/toy_suite.py section 3 times them to W2 <= 2x
    its floor at 4 Euler steps on moons against torchcfm's and flow_matching's example recipes.
    Exact OT solves an assignment per batch, cheap at the default batch (about 1 ms at 128 on a CPU)
    but growing fast with it (about 35 ms at 1024): at batch sizes in the thousands, pass
    coupling="independent".
    """
    config = configure(config, **options)
    check_model(model)
    if not (isinstance(coupling, str) and coupling == AUTO):
        resolve_coupling(coupling)  # ValueError for an unknown name or a non-function
    check_sampler(t_sampler, "t_sampler")
    check_sampler(weight, "weight")
    check_label_dropout(model, label_dropout)
    labels = None if labels is None else as_tensor(labels, "labels")
    _check_labels(model, labels)
    if loss is not None and not callable(loss):
        raise ValueError(f"loss must be a function loss(model, x, **cond) -> scalar, got {loss!r}")
    loss_fn = loss or _flow_matching_loss(path, coupling, t_sampler, weight, label_dropout)
    return run(model, data_source(data, config, labels=labels, cond=cond), loss_fn, config)
