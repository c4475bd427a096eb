"""Velocity-field networks. Each has a `config` dict: its constructor arguments, saved with it."""

from __future__ import annotations

from torch import nn

from .._checks import check_choice

from .convnet import ConvNet
from .embedding import TimeEmbedding
from .flowmap import FlowMapMLP, FlowMapMMDiT
from .mlp import MLP
from .mmdit import MMDiT
from .so3net import SO3VelocityMLP

__all__ = ["MLP", "ConvNet", "MMDiT", "SO3VelocityMLP", "TimeEmbedding", "MODEL_CLASSES", "build_model",
           "FlowMapMLP", "FlowMapMMDiT"]

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "MLP": MLP, "ConvNet": ConvNet, "MMDiT": MMDiT, "SO3VelocityMLP": SO3VelocityMLP,
    "FlowMapMLP": FlowMapMLP, "FlowMapMMDiT": FlowMapMMDiT,
}


def build_model(name: str, config: dict) -> nn.Module:
    """Instantiate a model class by name from its saved config."""
    return MODEL_CLASSES[check_choice(name, "model class", MODEL_CLASSES)](**config)
