"""distributed.wrap: DDP broadcasts buffers before each forward only for models with persistent buffers
(running statistics), not for constant ones such as the time embedding's frequencies."""

import pytest
import torch
import torch.distributed as dist
from torch import nn

import straightline as sl
from straightline import distributed


@pytest.fixture
def one_process_group():
    if dist.is_initialized():
        pytest.skip("a process group is already joined in this process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_buffers_are_broadcast_only_for_models_with_persistent_buffers(one_process_group):
    cpu = torch.device("cpu")
    mlp = sl.models.MLP(dim=2, hidden=8, depth=1)
    assert list(mlp.buffers()) and not set(mlp.state_dict()) & {n for n, _ in mlp.named_buffers()}
    bn = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))
    plain, stateful = distributed.wrap(mlp, cpu), distributed.wrap(bn, cpu)
    synced = "forward_sync_buffers" if hasattr(plain, "forward_sync_buffers") else "broadcast_buffers"
    assert getattr(plain, synced) is False and getattr(stateful, synced) is True
    assert plain.will_sync_module_buffers() is False and stateful.will_sync_module_buffers() is True
    assert plain.gradient_as_bucket_view and stateful.gradient_as_bucket_view
    x, t = torch.randn(8, 2), torch.rand(8)
    plain(x, t).square().mean().backward()  # gradients are views of the buckets and still land in .grad
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in mlp.parameters())
