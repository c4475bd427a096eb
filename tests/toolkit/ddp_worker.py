"""Run under torchrun by test_training_ddp.py: trains twice and writes each rank's weights to OUT."""

import sys
from pathlib import Path

import torch

import straightline as sl


def regression(model, x):
    return (model(x, torch.full((len(x),), 0.5)) - x).pow(2).mean()  # deterministic: no noise drawn


def main(out: Path) -> None:
    rank = int(__import__("os").environ["RANK"])
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    a = sl.train(sl.models.MLP(dim=2, hidden=16, depth=1), data, loss=regression, steps=8, batch_size=16,
                 lr=1e-2, progress=False, checkpoint=out / "state.pt", checkpoint_every=4)
    torch.manual_seed(0)
    b = sl.train(sl.models.MLP(dim=2, hidden=16, depth=1), "moons", steps=8, batch_size=16, seed=3, progress=False)
    torch.save({"a": a.model.state_dict(), "a_losses": a.losses, "b": b.model.state_dict(),
                "b_ema": b.ema_model.state_dict(), "b_losses": b.losses,
                "world": torch.distributed.get_world_size()}, out / f"rank{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
