"""Shared fixtures of the toolkit tests."""

import pytest
import torch

import straightline as sl


@pytest.fixture(scope="session")
def trained_8gaussians():
    """A small flow-matching model of 8gaussians (EMA weights): the base that reflow and
    distillation tests start from. Trained once per session."""
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=64)
    # independent pairs, batch 256, lr 1e-3 (train's defaults before exact OT): a curved base for reflow to straighten
    return sl.train(model, "8gaussians", steps=600, seed=0, coupling="independent", batch_size=256, lr=1e-3,
                    progress=False).ema_model
