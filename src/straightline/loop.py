"""The one training loop under `train`, the DDPM baseline, reflow, distillation and flow maps.

    result = run(model, data_source, loss_fn, TrainConfig(steps=2000, lr=1e-3))

`loss_fn(model, x, **cond) -> scalar` is called on each batch (x [B, ...] on the training device,
cond its keyword conditions such as y [B]); the loop does the rest: AdamW (or your optimizer
factory), linear warm-up and an optional cosine decay, gradient clipping, bf16/fp16 autocast (a
GradScaler for fp16), gradient accumulation, `torch.compile`, an EMA copy, validation, a callback,
resumable checkpoints and DDP under `torchrun` (see `distributed`). Loss values stay on the device
and are read back every `log_every` steps; a NaN or inf loss stops training with its step number.

Same seed, same result: on the CPU, equal arguments give bit-identical weights, and a run resumed
from a checkpoint continues bit for bit as if it had never stopped. Inside, torch's global
generator is seeded with `seed + rank` and restored afterwards (the caller's random state is left
alone); the data order comes from a generator seeded with `seed` on every rank.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import distributed
from ._checks import check_choice
from .batches import Batch, Batches, check_finite

__all__ = ["TrainConfig", "TrainState", "TrainResult", "run", "ema_update", "configure", "configure_steps",
           "training_device", "BASELINE_DEFAULTS"]

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
SCHEDULES = ("constant", "cosine")
#: the defaults of reflow, distillation, the DDPM baseline and the flow maps where they differ from
#: TrainConfig's (used when no `config` is given)
BASELINE_DEFAULTS = {"batch_size": 256, "lr": 1e-3}
_STATE_FORMAT = "straightline-train/1"
Loss = Callable[..., Tensor]


@dataclass
class TrainConfig:
    """How to optimise: everything but the model, the data and the loss. Defaults are `train`'s.

    batch 128, lr 5e-3 and an EMA of 0.999 with warm-up were chosen for quality per second on the
    2-D toys (bench/toy_suite.py section 3); reflow, distillation, the DDPM baseline and the flow
    maps keep their own documented defaults (batch 256, lr 1e-3) when no `config` is given (a
    `config=` passed to them is used as it is).
    """

    steps: int = 3000  # optimizer steps (with resume: the step to stop at)
    batch_size: int = 128  # rows per optimizer step, over all processes and accumulation micro-batches
    lr: float = 5e-3  # peak learning rate
    ema: float | None = 0.999  # decay of the averaged copy; None or 0: no copy
    ema_warmup: bool = True  # decay min(ema, (1 + k) / (10 + k)) at step k, so the copy is useful early
    seed: int = 0
    progress: bool = True  # a tqdm bar (rank 0 only)
    device: str | torch.device | None = None  # None: where the model is (cuda:LOCAL_RANK under torchrun)
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None  # default AdamW(lr, weight_decay)
    weight_decay: float = 0.0
    warmup_steps: int = 0  # linear warm-up from lr / warmup_steps to lr
    schedule: str = "constant"  # after warm-up: "constant", or "cosine" decay to min_lr at `steps`
    min_lr: float = 0.0
    grad_clip: float | None = None  # clip the global gradient norm to this
    amp: str | None = None  # None, "bf16" or "fp16" autocast
    accumulate: int = 1  # micro-batches per optimizer step (batch_size splits evenly over them)
    compile: bool = False  # run the forward pass through torch.compile
    log_every: int = 50  # read the losses back (and check them) every this many steps
    val_data: Any = None  # validation data (anything `train` accepts as data)
    val_every: int = 0  # validate every this many steps (0: never)
    val_batches: int = 4  # batches per validation (same noise every time)
    val_metric: Callable[[nn.Module], float | dict[str, float]] | None = None  # also computed on the EMA model
    callback: Callable[[TrainState], bool | None] | None = None  # after each step; True stops training
    checkpoint: str | Path | None = None  # write the full training state here ...
    checkpoint_every: int = 0  # ... every this many steps (and at the end; 0: at the end only)
    resume: str | Path | None = None  # continue from this training-state file
    desc: str = "training"

    def check(self) -> TrainConfig:
        """ValueError naming the first bad field and what it accepts."""
        for name in ("steps", "batch_size", "accumulate", "log_every", "val_batches"):
            _positive_int(getattr(self, name), name)
        for name in ("warmup_steps", "val_every", "checkpoint_every"):
            _positive_int(getattr(self, name), name, zero=True)
        self._check_lr_and_ema()
        check_choice(self.amp, "amp", (None, *AMP_DTYPES))
        check_choice(self.schedule, "schedule", SCHEDULES)
        for name in ("weight_decay", "min_lr"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        if self.grad_clip is not None and not (isinstance(self.grad_clip, (int, float)) and self.grad_clip > 0):
            raise ValueError(f"grad_clip must be None or a number > 0, got {self.grad_clip!r}")
        if self.batch_size % self.accumulate:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by accumulate={self.accumulate}")
        if not isinstance(self.ema_warmup, bool):
            raise ValueError(f"ema_warmup must be True or False, got {self.ema_warmup!r}")
        for name in ("optimizer", "callback", "val_metric"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ValueError(f"{name} must be callable or None, got {getattr(self, name)!r}")
        return self

    @property
    def micro_batch(self) -> int:
        """Rows per micro-batch: `batch_size` split over `accumulate` micro-batches."""
        return self.batch_size // self.accumulate

    def _check_lr_and_ema(self) -> None:
        """ValueError naming lr or ema when it is not an accepted value."""
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")
        if self.ema is not None and (isinstance(self.ema, bool) or not isinstance(self.ema, (int, float))
                                     or not 0 <= self.ema < 1):
            raise ValueError(f"ema must be None or a number in [0, 1), got {self.ema!r}")


def _positive_int(value: object, name: str, zero: bool = False) -> None:
    low = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be {'an integer >= 0' if zero else 'a positive integer'}, got {value!r}")


def configure(config: TrainConfig | None, defaults: Mapping[str, Any] | None = None, /,
              **options: Any) -> TrainConfig:
    """`config` (else TrainConfig(**defaults): a caller's own defaults) with `options` replacing
    fields; unknown names are a ValueError listing the accepted ones."""
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"unknown training option(s) {', '.join(unknown)}; accepted: {', '.join(sorted(names))}")
    if config is not None and not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    return replace(config or TrainConfig(**(defaults or {})), **options).check()


def configure_steps(caller: str, config: TrainConfig | None, defaults: Mapping[str, Any], options: Mapping[str, Any],
                    steps_name: str = "steps") -> TrainConfig:
    """`configure(config, defaults, **options)` for a caller whose step count has no default: without
    `config`, a steps value in `options` or `defaults` is required (ValueError naming `steps_name`)."""
    if config is None and "steps" not in options and "steps" not in defaults:
        raise ValueError(f"{caller} needs {steps_name}= (optimizer steps) or config=TrainConfig(steps=...)")
    return configure(config, defaults, **options)


def training_device(config: TrainConfig, model: nn.Module) -> torch.device:
    """The device `run` trains `model` on under `config` (joins the torchrun process group if any)."""
    return _device_of(config, distributed.context(), model)


@dataclass
class TrainResult:
    model: nn.Module  # the trained network (last iterate)
    ema_model: nn.Module  # its exponential moving average: usually the better sampler
    losses: list[float] = field(default_factory=list, repr=False)  # one value per step (mean over processes)
    seconds: float = 0.0
    validation: list[dict[str, float]] = field(default_factory=list, repr=False)  # {"step", "loss", ...} rows

    def __repr__(self) -> str:
        last = f"{self.losses[-1]:.4g}" if self.losses else "n/a"
        return (f"TrainResult(model={type(self.model).__name__}, steps={len(self.losses)}, final_loss={last}, "
                f"seconds={self.seconds:.1f})")


@dataclass
class TrainState:
    """What a callback sees after each step (`step` counts from 0)."""

    step: int
    model: nn.Module  # the live model (unwrapped)
    ema_model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_tensor: Tensor  # this step's loss, still on the device
    result: TrainResult  # losses read back so far, validation rows

    @property
    def loss(self) -> float:
        """This step's loss as a float (reading it waits for the device)."""
        return float(self.loss_tensor)


@torch.no_grad()
def ema_update(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for every parameter."""
    for ema_p, p in zip(ema_model.parameters(), model.parameters()):
        ema_p.lerp_(p, 1.0 - decay)


def _ema_decay(config: TrainConfig, step: int) -> float:
    """The EMA decay at `step` (from 0): `ema`, or with warm-up min(ema, (1 + step) / (10 + step))."""
    if not config.ema_warmup:
        return config.ema
    return min(config.ema, (1 + step) / (10 + step))


def _lr_factor(config: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        span = max(1, config.steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        low = config.min_lr / config.lr
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _device_of(config: TrainConfig, ctx: distributed.Context, model: nn.Module) -> torch.device:
    if config.device is not None:
        try:
            device = torch.device(config.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {config.device!r}") from None
        if ctx.distributed and ctx.device is not None and device.type == "cuda":
            return ctx.device
        return device
    if ctx.device is not None:
        return ctx.device
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@dataclass
class _Run:
    """The objects of one run (kept together so the step and checkpoint helpers stay short)."""

    config: TrainConfig
    ctx: distributed.Context
    device: torch.device
    dtype: torch.dtype
    model: nn.Module
    net: nn.Module  # what the loss calls: the model, DDP-wrapped and/or compiled
    ema_model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    batches: Batches
    result: TrainResult
    pending: list[Tensor] = field(default_factory=list)  # losses not yet read back


def _to_device(run: _Run, batch: Batch) -> Batch:
    x = batch.x
    if run.batches.raw:
        return Batch(x.to(run.device), batch.cond)
    if not isinstance(x, Tensor):
        raise ValueError(f"a batch's data must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"data must be floating point, got {x.dtype}; convert it, e.g. data.float()")
    if x.ndim < 2:
        raise ValueError(f"a batch must have shape [B, ...] (at least 2 dimensions), got {list(x.shape)}")
    if x.device.type == "cpu" and not run.batches.checked:
        check_finite(x, f"the data (batch {run.batches.position})")
    cond = {k: v.to(run.device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.cond.items()}
    return Batch(x.to(run.device, run.dtype, non_blocking=True), cond)


def _autocast(run: _Run):
    if run.config.amp is None:
        return torch.autocast(run.device.type, enabled=False)
    return torch.autocast(run.device.type, dtype=AMP_DTYPES[run.config.amp])


def _step(run: _Run, loss_fn: Loss) -> Tensor:
    """One optimizer step over `accumulate` micro-batches; returns the step's loss [] on the device."""
    config, total = run.config, None
    # listing: train-step
    for micro in range(config.accumulate):
        batch = _to_device(run, run.batches.next())  # data [B, ...] and its conditions, on the device
        sync = micro == config.accumulate - 1 or not isinstance(run.net, nn.parallel.DistributedDataParallel)
        with (run.net.no_sync() if not sync else contextlib.nullcontext()), _autocast(run):
            loss = loss_fn(run.net, batch.x, **batch.cond) / config.accumulate  # for flow matching: cfm_loss
        run.scaler.scale(loss).backward()  # gradients of the loss (summed over the micro-batches)
        total = loss.detach() if total is None else total + loss.detach()
    if config.grad_clip is not None:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
    run.scaler.step(run.optimizer)  # the optimiser updates the weights
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)  # clear the gradients for the next step
    # end listing
    run.scheduler.step()
    return total


def _flush(run: _Run, first_step: int) -> None:
    """Read the pending losses back (mean over processes) and stop on a NaN or inf."""
    if not run.pending:
        return
    values = torch.stack(run.pending).float()  # [k]
    if run.ctx.distributed:
        dist.all_reduce(values)
        values /= run.ctx.world
    run.pending.clear()
    losses = values.tolist()
    for i, v in enumerate(losses):
        if not math.isfinite(v):
            raise ValueError(
                f"the loss became {v} at step {first_step + i} (counting from 0); lower lr, set grad_clip, "
                "or check the data and the model"
            )
    run.result.losses.extend(losses)


def _validate(run: _Run, loss_fn: Loss, step: int, make_source: Callable[..., Batches]) -> None:
    config, row = run.config, {"step": float(step + 1)}
    ema = run.ema_model
    was_training = ema.training
    ema.eval()
    with torch.random.fork_rng(devices=_rng_devices(run.device)), torch.no_grad():
        torch.manual_seed(config.seed + 1)
        if config.val_data is not None:
            source = make_source(config.val_data, torch.Generator().manual_seed(config.seed + 1))
            batches = [_to_device(run, source.next()) for _ in range(config.val_batches)]
            values = [loss_fn(ema, b.x, **b.cond) for b in batches]
            row["loss"] = float(torch.stack(values).mean())
        if config.val_metric is not None:
            metric = config.val_metric(ema)
            row.update(metric if isinstance(metric, dict) else {"metric": float(metric)})
    ema.train(was_training)
    run.result.validation.append(row)


def _rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def _rng_state(run: _Run) -> dict[str, Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if run.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(run.device)
    return state


def _all_rng_states(run: _Run) -> list[dict[str, Tensor]]:
    """Every rank's random state, in rank order (a collective: all ranks call it)."""
    rng = _rng_state(run)
    if not run.ctx.distributed:
        return [rng]
    gathered: list[Any] = [None] * run.ctx.world
    dist.all_gather_object(gathered, {k: v.cpu() for k, v in rng.items()})
    return gathered


def save_state(run: _Run, step: int) -> None:
    """Write the full training state after `step` steps to config.checkpoint (rank 0; atomic)."""
    rngs = _all_rng_states(run)
    if not run.ctx.is_main:
        return
    state = {
        "format": _STATE_FORMAT, "step": step, "world": run.ctx.world,
        "model": run.model.state_dict(), "ema": run.ema_model.state_dict() if run.ema_model is not run.model else None,
        "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(), "rng": rngs, "data": run.batches.state(),
        "losses": list(run.result.losses), "validation": list(run.result.validation),
    }
    path = Path(run.config.checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training state at {str(path)!r} to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign or damaged file
        raise ValueError(f"{str(path)!r} is not a training state written by train(checkpoint=...): {exc}") from None
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
        raise ValueError(f"{str(path)!r} is not a training state written by train(checkpoint=...)")
    return state


def restore_state(run: _Run, path: str | Path) -> int:
    """Load a training state into the run; returns the number of steps already done."""
    state = _load_state(path)
    run.model.load_state_dict(state["model"])
    if state["ema"] is not None and run.ema_model is not run.model:
        run.ema_model.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    rng = state["rng"][run.ctx.rank] if len(state["rng"]) == run.ctx.world else state["rng"][0]
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and run.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], run.device)
    run.batches.restore(state["data"])
    run.result.losses[:] = state["losses"]
    run.result.validation[:] = state["validation"]
    return int(state["step"])


def _build(model: nn.Module, make_source: Callable[..., Batches], config: TrainConfig, ctx: distributed.Context,
           device: torch.device) -> _Run:
    model.to(device)
    ema_model = copy.deepcopy(model).requires_grad_(False) if config.ema else model
    net: nn.Module = model
    if ctx.distributed:
        net = distributed.wrap(model, device)
    if config.compile:
        net = torch.compile(net)
    factory = config.optimizer or (lambda ps: torch.optim.AdamW(ps, lr=config.lr, weight_decay=config.weight_decay))
    optimizer = factory(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config))
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    batches = make_source(None, torch.Generator().manual_seed(config.seed), ctx=ctx)
    return _Run(config, ctx, device, _model_dtype(model), model, net, ema_model, optimizer, scheduler, scaler,
                batches, TrainResult(model=model, ema_model=ema_model))


def run(model: nn.Module, make_source: Callable[..., Batches], loss_fn: Loss, config: TrainConfig) -> TrainResult:
    """Minimise loss_fn(model, x, **cond) over the batches of `make_source` (module docstring).

    `make_source(data, generator, ctx=None)` builds a batch source: of the training data when
    `data` is None, else of that (validation) data; `generator` orders the rows.
    """
    config.check()
    start = time.perf_counter()
    ctx = distributed.context()
    device = _device_of(config, ctx, model)
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(config.seed + ctx.rank)  # seeds CUDA as well
        r = _build(model, make_source, config, ctx, device)
        first = restore_state(r, config.resume) if config.resume is not None else 0
        model.train()
        _loop(r, loss_fn, first, make_source)
    model.eval()
    r.ema_model.eval()
    r.result.seconds = time.perf_counter() - start
    return r.result


def _loop(r: _Run, loss_fn: Loss, first: int, make_source: Callable[..., Batches]) -> None:
    config = r.config
    bar = tqdm(range(first, config.steps), disable=not (config.progress and r.ctx.is_main), desc=config.desc,
               unit="step", leave=False)
    flushed = first
    for step in bar:
        loss = _step(r, loss_fn)
        if config.ema:
            ema_update(r.ema_model, r.model, _ema_decay(config, step))
        r.pending.append(loss)
        last = step + 1 == config.steps
        if (step + 1) % config.log_every == 0 or last:
            _flush(r, flushed)
            flushed = step + 1
            bar.set_postfix(loss=f"{r.result.losses[-1]:.4f}")
        stop = bool(config.callback(TrainState(step, r.model, r.ema_model, r.optimizer, loss, r.result))) \
            if config.callback is not None else False
        if config.val_every and ((step + 1) % config.val_every == 0 or last):
            _validate(r, loss_fn, step, make_source)
        if config.checkpoint is not None and (stop or last or (config.checkpoint_every
                                                               and (step + 1) % config.checkpoint_every == 0)):
            _flush(r, flushed)
            flushed = step + 1
            save_state(r, step + 1)
        if stop:
            break
    _flush(r, flushed)
