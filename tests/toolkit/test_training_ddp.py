"""DDP under a real `torchrun` with 2 CPU processes (gloo): train joins the process group itself,
shards the data, and every rank ends with the weights a 1-process run with the same global batch gets."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import straightline as sl

from ddp_worker import regression  # tests/toolkit/ddp_worker.py

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(worker), str(out)]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_every_rank_ends_with_the_same_weights(ranks):
    _, (r0, r1) = ranks
    assert r0["world"] == r1["world"] == 2
    for key in ("a", "b", "b_ema"):
        for name in r0[key]:
            assert torch.equal(r0[key][name], r1[key][name]), (key, name)
    assert r0["b_losses"] == r1["b_losses"]  # read back as the mean over both ranks


def test_two_processes_equal_one_with_the_same_global_batch(ranks):
    _, (r0, _) = ranks
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    single = sl.train(sl.models.MLP(dim=2, hidden=16, depth=1), data, loss=regression, steps=8, batch_size=16,
                      lr=1e-2, progress=False)
    for name, value in single.model.state_dict().items():
        assert torch.allclose(r0["a"][name], value, atol=1e-6), name
    assert r0["a_losses"] == pytest.approx(single.losses, rel=1e-5)


def test_rank_zero_wrote_the_checkpoint(ranks):
    out, (r0, _) = ranks
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 8 and state["world"] == 2 and len(state["rng"]) == 2
    for name, value in state["model"].items():
        assert torch.equal(value, r0["a"][name])
