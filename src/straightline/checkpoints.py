"""Save and load models as safetensors files that carry their own config.

A file written by `save` holds the weights plus metadata naming the model class and its
constructor arguments (a registered class: MLP, ConvNet, ...) or the user's own `config` dict, so
`load(path)` alone rebuilds a registered model and `load(path, model=instance)` fills any module.
A `torch.compile`d model or a `DistributedDataParallel` wrapper is saved as the module inside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .models import MODEL_CLASSES, build_model

__all__ = ["save", "load", "read_metadata", "unwrap"]

_FORMAT = "straightline/1"


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper or a torch.compile'd model."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif type(model).__name__ == "OptimizedModule":  # torch.compile's wrapper: its one child is the model
            model = next(model.children())
        else:
            return model


def _config_of(model: nn.Module, config: dict[str, Any] | None) -> tuple[str, str]:
    name = type(model).__name__
    if config is not None:
        try:
            text = json.dumps(config, sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"config must be a JSON-serialisable dict, got {config!r} ({exc})") from None
        return f"{type(model).__module__}.{type(model).__qualname__}", text
    if MODEL_CLASSES.get(name) is type(model) and hasattr(model, "config"):
        return name, json.dumps(model.config, sort_keys=True)
    return f"{type(model).__module__}.{type(model).__qualname__}", "null"


def _metadata(name: str, config_text: str, extra: dict[str, str] | None) -> dict[str, str]:
    """The stored metadata: format, class and config, plus the caller's extra string entries."""
    meta = {"format": _FORMAT, "class": name, "config": config_text}
    for key, value in (extra or {}).items():
        if key in meta or not isinstance(value, str):
            raise ValueError(f"metadata {key!r}: keys must not be format/class/config and values must be str")
        meta[key] = value
    return meta


def save(
    model: nn.Module,
    path: str | Path,
    *,
    config: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write `model`'s weights and config to `path` (safetensors); returns the path.

    Any nn.Module is accepted (compiled and DDP models are unwrapped). A registered class
    (MLP, ConvNet, MMDiT, SO3VelocityMLP) stores its own constructor config; for your own module
    pass `config` (a JSON-serialisable dict, read back by `read_metadata`) and load with
    `load(path, model=YourModule(**config))`. Extra string `metadata` is kept.
    """
    model = unwrap(model)
    name, config_text = _config_of(model, config)
    meta = _metadata(name, config_text, metadata)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def _open(path: Path):
    try:
        return safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a safetensors file ({exc}); accepted: a .safetensors file written by "
            "straightline.save (a torch.save .pt file is read with torch.load)"
        ) from None


def read_metadata(path: str | Path, *, require_format: bool = True) -> dict[str, str]:
    """The metadata stored in a checkpoint (format, class, config, and any extras)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    with _open(path) as f:
        meta = f.metadata() or {}
    if require_format and meta.get("format") != _FORMAT:
        raise ValueError(f"{str(path)!r} is not a straightline checkpoint (format {meta.get('format')!r})")
    return meta


def _rebuild(path: str | Path, meta: dict[str, str]) -> nn.Module:
    """A fresh instance of the registered class the checkpoint names, from its stored config."""
    if meta["class"] not in MODEL_CLASSES:
        raise ValueError(
            f"{str(path)!r} holds a {meta['class']}, which load cannot build by itself; pass "
            f"load(path, model=an instance), or save one of {', '.join(MODEL_CLASSES)}"
        )
    return build_model(meta["class"], json.loads(meta["config"]))


def load(path: str | Path, *, model: nn.Module | None = None, strict: bool = True) -> nn.Module:
    """The model saved at `path`, with its weights, in eval mode.

    Without `model` the file must hold a registered class (its config rebuilds it); with
    `model=instance` the weights are loaded into that module (any nn.Module, also a compiled or
    DDP-wrapped one) and it is returned.
    """
    meta = read_metadata(path, require_format=model is None)
    if model is None:
        model = _rebuild(path, meta)
    target = unwrap(model)
    with _open(Path(path)) as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    try:
        target.load_state_dict(tensors, strict=strict)
    except RuntimeError as exc:
        raise ValueError(f"the weights in {str(path)!r} do not fit a {type(target).__name__}: {exc}") from None
    return model.eval()
