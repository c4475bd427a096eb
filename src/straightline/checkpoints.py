"""Save and load models as safetensors files that carry their own config.

A file written by `save` holds the weights plus metadata naming the model class and its
constructor arguments, so `load(path)` alone rebuilds the model.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .models import MODEL_CLASSES, build_model

__all__ = ["save", "load", "read_metadata"]

_FORMAT = "straightline/1"


def save(model: nn.Module, path: str | Path, *, metadata: dict[str, str] | None = None) -> Path:
    """Write `model`'s weights and config to `path` (safetensors). Extra string metadata is kept."""
    name = type(model).__name__
    if name not in MODEL_CLASSES or not hasattr(model, "config"):
        raise ValueError(f"cannot save a {name}: accepted model classes are {', '.join(MODEL_CLASSES)}")
    meta = {"format": _FORMAT, "class": name, "config": json.dumps(model.config, sort_keys=True)}
    for key, value in (metadata or {}).items():
        if key in meta or not isinstance(value, str):
            raise ValueError(f"metadata {key!r}: keys must not be format/class/config and values must be str")
        meta[key] = value
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata stored in a checkpoint (format, class, config, and any extras)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{str(path)!r} is not a straightline checkpoint (format {meta.get('format')!r})")
    return meta


def load(path: str | Path) -> nn.Module:
    """Rebuild the model saved at `path`, with its weights, in eval mode."""
    meta = read_metadata(path)
    model = build_model(meta["class"], json.loads(meta["config"]))
    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            tensors[key] = f.get_tensor(key)
    model.load_state_dict(tensors)
    return model.eval()
