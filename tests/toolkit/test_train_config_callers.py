"""reflow, reflow_rounds, distill, train_ddpm and flowmaps.train take a TrainConfig (config=) or its
fields as keywords: the old keywords are shorthands for the same config, giving the same weights."""

import pytest
import torch

import straightline as sl
from straightline import diffusion, flowmaps
from straightline.loop import TrainConfig


def _mlp(seed=0, **kw):
    torch.manual_seed(seed)
    return sl.models.MLP(dim=2, hidden=16, depth=2, **kw)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_reflow_keywords_and_config_give_identical_weights():
    base = _mlp()
    old = sl.reflow(base, n_pairs=64, steps=4, train_steps=6, batch_size=16, lr=3e-3, ema=0.9, seed=2, progress=False)
    cfg = TrainConfig(steps=6, batch_size=16, lr=3e-3, ema=0.9, seed=2, progress=False)
    new = sl.reflow(base, n_pairs=64, steps=4, config=cfg)
    other = sl.reflow(base, n_pairs=64, steps=4, config=cfg, seed=3)  # a keyword replaces a config field
    assert _same(old, new) and not _same(old, other)


def test_reflow_rounds_keywords_and_config_give_identical_rounds():
    base = _mlp(1)
    common = dict(rounds=2, n_pairs=64, steps=4, reference="moons", eval_n=32, quality_steps=(1,))
    old = sl.reflow_rounds(base, train_steps=5, batch_size=16, seed=4, progress=False, **common)
    new = sl.reflow_rounds(base, config=TrainConfig(steps=5, batch_size=16, lr=1e-3, seed=4, progress=False), **common)
    assert [r.losses for r in old] == [r.losses for r in new] and len(old[2].losses) == 5
    assert all(_same(a.model, b.model) for a, b in zip(old, new))


@pytest.mark.parametrize("method, teacher_steps", [("progressive", 4), ("one_shot", 4)])
def test_distill_keywords_and_config_give_identical_students(method, teacher_steps):
    teacher = _mlp(2)
    common = dict(student_steps=1, method=method, teacher_steps=teacher_steps, n_pairs=32)
    old = sl.distill(teacher, train_steps=4, batch_size=8, ema=None, seed=5, progress=False, **common)
    new = sl.distill(teacher, config=TrainConfig(steps=4, batch_size=8, lr=1e-3, ema=None, seed=5, progress=False),
                     **common)
    assert _same(old.student, new.student)
    assert [s.losses for s in old.stages] == [s.losses for s in new.stages]


def test_train_ddpm_keywords_and_config_give_identical_weights():
    old = diffusion.train_ddpm(_mlp(3), "moons", steps=5, batch_size=16, T=50, seed=6, progress=False)
    cfg = TrainConfig(steps=5, batch_size=16, lr=1e-3, seed=6, progress=False)
    new = diffusion.train_ddpm(_mlp(3), "moons", T=50, config=cfg)
    assert old.losses == new.losses and _same(old.ema_model, new.ema_model)


def test_flowmaps_train_keywords_and_config_give_identical_weights():
    def net():
        torch.manual_seed(4)
        return sl.models.FlowMapMLP(2, 16, 1)

    old = flowmaps.train(net(), "moons", method="shortcut", steps=4, seed=7, progress=False)
    cfg = TrainConfig(steps=4, batch_size=256, lr=1e-3, seed=7, progress=False)
    new = flowmaps.train(net(), "moons", method="shortcut", config=cfg)
    assert old.losses == new.losses and _same(old.ema_model, new.ema_model)


class _RowCounter(sl.models.MLP):
    """An MLP that records how many rows each call gets (the batch the loop hands the loss)."""

    def __init__(self):
        super().__init__(dim=2, hidden=8, depth=1)
        self.rows: list[int] = []

    def forward(self, x, t, *args, **kwargs):
        self.rows.append(x.shape[0])
        return super().forward(x, t, *args, **kwargs)


def test_the_callers_keep_their_own_defaults_without_a_config():
    lrs = []
    sl.reflow(_mlp(), n_pairs=8, steps=2, train_steps=1, progress=False,
              callback=lambda s: lrs.append(s.optimizer.param_groups[0]["lr"]))
    sl.distill(_mlp(), teacher_steps=2, n_pairs=8, train_steps=1, progress=False,
               callback=lambda s: lrs.append(s.optimizer.param_groups[0]["lr"]))
    assert lrs == [1e-3, 1e-3]  # reflow's and distill's lr, not train's 5e-3
    torch.manual_seed(0)
    ddpm = _RowCounter()
    diffusion.train_ddpm(ddpm, "moons", steps=1, T=50, progress=False)
    assert ddpm.rows == [256]  # train_ddpm's batch 256, not train's 128
    rows = []
    flowmaps.train(sl.models.FlowMapMLP(2, 8, 1), "moons", method="lsd", steps=1, progress=False,
                   noise_fn=lambda x: rows.append(x.shape[0]) or torch.randn_like(x))
    assert rows == [256]  # the flow maps' batch 256
    with pytest.raises(ValueError, match=r"reflow needs train_steps= \(optimizer steps\) or config="):
        sl.reflow(_mlp(), n_pairs=8, steps=2)
    with pytest.raises(ValueError, match=r"train_ddpm needs steps="):
        diffusion.train_ddpm(_mlp(), "moons")


def test_reflow_checkpoints_and_resumes_through_the_loop(tmp_path):
    path = tmp_path / "reflow.pt"
    common = dict(n_pairs=32, steps=2, batch_size=8, grad_clip=1.0, progress=False, device="cpu", accumulate=2)
    sl.reflow(_mlp(), train_steps=3, checkpoint=path, **common)
    assert path.is_file()
    resumed = sl.reflow(_mlp(), train_steps=6, resume=path, **common)
    straight = sl.reflow(_mlp(), train_steps=6, **common)
    assert _same(resumed, straight)  # 3 + 3 steps equal 6 uninterrupted, bit for bit
    with pytest.raises(ValueError, match="resume continues one training run, and this call trains 2"):
        sl.reflow_rounds(_mlp(), rounds=2, n_pairs=8, steps=2, train_steps=1, reference="moons", resume=path)
    with pytest.raises(ValueError, match="val_data is not accepted"):
        sl.distill(_mlp(), teacher_steps=2, n_pairs=8, train_steps=1, val_data=torch.zeros(4, 2), val_every=1)
    with pytest.raises(ValueError, match="train_steps or steps"):
        sl.distill(_mlp(), teacher_steps=2, n_pairs=8, train_steps=1, steps=2)


def test_progressive_stages_checkpoint_to_their_own_files(tmp_path):
    sl.distill(_mlp(), teacher_steps=4, n_pairs=8, train_steps=2, progress=False, checkpoint=tmp_path / "d.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.run1.pt", "d.run2.pt"]


def test_unknown_keywords_are_named_with_the_accepted_ones():
    for call in (lambda: sl.reflow(_mlp(), n_pairs=8, steps=2, train_steps=1, learning_rate=1e-3),
                 lambda: sl.reflow_rounds(_mlp(), rounds=1, n_pairs=8, steps=2, train_steps=1, reference="moons",
                                          epochs=2),
                 lambda: sl.distill(_mlp(), n_pairs=8, train_steps=1, epochs=3),
                 lambda: diffusion.train_ddpm(_mlp(), "moons", steps=1, lrate=1),
                 lambda: flowmaps.train(sl.models.FlowMapMLP(2, 8, 1), "moons", steps=1, bs=4)):
        with pytest.raises(ValueError, match=r"unknown training option\(s\) \w+; accepted: .*batch_size.*lr"):
            call()
