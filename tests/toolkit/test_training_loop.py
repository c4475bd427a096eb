"""The training loop as a research library uses it: own data in every form, loop controls,
resumable checkpoints, saving any module, and errors that name the bad value."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import straightline as sl

SMALL = {"steps": 6, "batch_size": 16, "progress": False}


def tiny(**kw):
    torch.manual_seed(0)
    return sl.models.MLP(dim=2, hidden=16, depth=1, **kw)


def points(n=64, dtype=torch.float32):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(5), dtype=dtype) * 0.5 + 1.0


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# --- data in every form -----------------------------------------------------------------------------


def test_numpy_array_trains_like_the_same_tensor():
    x = points()
    a = sl.train(tiny(), x, **SMALL)
    b = sl.train(tiny(), x.numpy(), **SMALL)
    assert torch.equal(weights(a.model), weights(b.model))
    assert len(a.losses) == 6 and all(math.isfinite(v) for v in a.losses)


def test_dataset_dataloader_iterator_and_function_all_train():
    x = points()
    seen = []

    def draw():
        seen.append(1)
        return x[:16]

    def stream():
        while True:
            yield x[:16]

    sources = [TensorDataset(x), DataLoader(TensorDataset(x), batch_size=16, shuffle=False), stream(), draw]
    for source in sources:
        before = weights(tiny())
        result = sl.train(tiny(), source, **SMALL)
        assert len(result.losses) == 6
        assert not torch.equal(weights(result.model), before), type(source).__name__
    assert len(seen) == 6  # the function was called once per step


def test_dataloader_restarts_each_epoch_and_carries_labels():
    x, y = points(32), torch.arange(32) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    calls = []
    model = tiny(num_classes=3)
    original = model.forward

    def spy(x, t, y=None):
        calls.append(y)
        return original(x, t, y)

    model.forward = spy
    sl.train(model, loader, steps=5, batch_size=16, progress=False)  # 5 steps over 2 batches per epoch
    assert len(calls) == 5 and all(c is not None and c.shape == (16,) for c in calls)


def test_dict_batches_pass_conditions_as_keywords():
    x = points(32)
    got = []

    class Cond(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = sl.models.MLP(dim=2, hidden=8, depth=1)

        def forward(self, x, t, scale=None):
            got.append(scale)
            return self.net(x, t) * scale[:, None]

    items = [{"x": x[i], "scale": torch.tensor(1.0 + i / 32)} for i in range(32)]
    sl.train(Cond(), items, steps=2, batch_size=8, progress=False)
    assert len(got) == 2 and got[0].shape == (8,)


def test_one_dimensional_data_is_refused_with_its_shape():
    with pytest.raises(ValueError, match=r"shape \[N, \.\.\.\].*got \[64\].*reshape\(-1, 1\)"):
        sl.train(tiny(), torch.randn(64), **SMALL)


def test_other_objects_are_refused_naming_what_is_accepted():
    with pytest.raises(ValueError, match="a tensor or numpy array .* got int"):
        sl.train(tiny(), 5, **SMALL)


def test_device_argument():
    result = sl.train(tiny(), points(), device="cpu", **SMALL)
    assert next(result.model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="device must be a torch device"):
        sl.train(tiny(), points(), device="gpu-please", **SMALL)


# --- errors -------------------------------------------------------------------------------------------


def test_float64_data_is_converted_to_the_models_dtype():
    x = points()
    a = sl.train(tiny(), x, **SMALL)
    b = sl.train(tiny(), x.double(), **SMALL)
    assert torch.equal(weights(a.model), weights(b.model))


def test_integer_data_is_refused():
    with pytest.raises(ValueError, match="data must be floating point, got torch.int64"):
        sl.train(tiny(), torch.ones(8, 2, dtype=torch.long), **SMALL)


def test_numpy_labels_are_accepted_and_out_of_range_labels_named():
    x = points(32)
    y = (np.arange(32) % 3).astype(np.int64)
    result = sl.train(tiny(num_classes=3), x, labels=y, **SMALL)
    assert len(result.losses) == 6
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2 .*num_classes=3.*got values in 0\.\.3"):
        sl.train(tiny(num_classes=3), x, labels=np.arange(32) % 4, **SMALL)


def test_forward_t_x_model_is_named():
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, t, x):
            return self.lin(torch.cat([x, t[:, None]], 1))

    with pytest.raises(ValueError, match=r"Backwards.forward takes \(t, x, \.\.\.\).*model\(x, t\)"):
        sl.train(Backwards(), points(), **SMALL)


def test_uncalled_factory_is_named():
    with pytest.raises(ValueError, match=r"logit_normal looks like a factory: pass logit_normal\(\)"):
        sl.train(tiny(), points(), t_sampler=sl.timesteps.logit_normal, **SMALL)
    sl.train(tiny(), points(), t_sampler=sl.timesteps.logit_normal(), **SMALL)


def test_coupling_by_name_equals_the_function():
    a = sl.train(tiny(), points(), coupling="exact_ot", **SMALL)
    b = sl.train(tiny(), points(), coupling=sl.couplings.exact_ot, **SMALL)
    assert torch.equal(weights(a.model), weights(b.model))
    with pytest.raises(ValueError, match="unknown coupling 'ot'; accepted: auto, independent, exact_ot or a function"):
        sl.train(tiny(), points(), coupling="ot", **SMALL)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_in_the_data_is_named_with_its_row(bad):
    x = points()
    x[7, 1] = bad
    kind = "NaN" if math.isnan(bad) else "inf"
    with pytest.raises(ValueError, match=f"data contains {kind} \\(first in row 7 of 64\\)"):
        sl.train(tiny(), x, **SMALL)


def test_nan_in_a_streamed_batch_is_named():
    def draw():
        x = points(16)
        x[3, 0] = float("nan")
        return x

    with pytest.raises(ValueError, match="contains NaN"):
        sl.train(tiny(), draw, **SMALL)


def test_a_diverging_loss_stops_with_its_step():
    calls = []

    def loss(model, x):
        calls.append(1)
        value = model(x, torch.zeros(len(x))).pow(2).mean()
        return value * (float("inf") if len(calls) == 4 else 1.0)

    with pytest.raises(ValueError, match=r"the loss became inf at step 3"):
        sl.train(tiny(), points(), loss=loss, steps=10, batch_size=16, log_every=5, progress=False)
    assert len(calls) == 5  # stopped at the first read-back after the bad step


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match=r"unknown training option\(s\) learning_rate; accepted: .*lr"):
        sl.train(tiny(), points(), learning_rate=1e-3, **SMALL)


def test_repr_of_the_result_is_short():
    result = sl.train(tiny(), points(), steps=200, batch_size=8, progress=False)
    text = repr(result)
    assert len(text) < 120 and "steps=200" in text and "final_loss=" in text


# --- loop controls ------------------------------------------------------------------------------------


def test_warmup_and_cosine_schedule_reach_the_callback():
    lrs, states = [], []

    def callback(state):
        lrs.append(state.optimizer.param_groups[0]["lr"])
        states.append((state.step, state.ema_model is not state.model, isinstance(state.loss, float)))

    sl.train(tiny(), points(), steps=10, batch_size=8, lr=1e-2, warmup_steps=4, schedule="cosine", min_lr=1e-3,
             callback=callback, progress=False)
    # after step k the scheduler holds the lr of step k + 1: warm-up (k + 2) / 4, then cosine to min_lr
    assert lrs[:3] == pytest.approx([5e-3, 7.5e-3, 1e-2])
    expected = [1e-3 + 9e-3 * 0.5 * (1 + math.cos(math.pi * (k + 1 - 4) / 6)) for k in range(3, 9)]
    assert lrs[3:9] == pytest.approx(expected)
    assert states[0] == (0, True, True)


def test_callback_true_stops_early():
    result = sl.train(tiny(), points(), steps=50, batch_size=8, progress=False, callback=lambda s: s.step == 4)
    assert len(result.losses) == 5


def test_weight_decay_and_optimizer_factory():
    a = sl.train(tiny(), points(), weight_decay=0.5, lr=1e-2, **{**SMALL, "steps": 20})
    b = sl.train(tiny(), points(), lr=1e-2, **{**SMALL, "steps": 20})
    assert weights(a.model).norm() < weights(b.model).norm()
    c = sl.train(tiny(), points(), optimizer=lambda ps: torch.optim.SGD(ps, lr=0.0), **SMALL)
    assert torch.equal(weights(c.model), weights(tiny()))


def test_grad_clip_bounds_each_update():
    def loss(model, x):
        return 1e6 * model(x, torch.zeros(len(x))).pow(2).mean()

    opt = lambda ps: torch.optim.SGD(ps, lr=1.0)  # noqa: E731 - the update is exactly -grad
    start = weights(tiny())
    result = sl.train(tiny(), points(), loss=loss, optimizer=opt, grad_clip=0.5, steps=1, batch_size=8, ema=None,
                      progress=False)
    assert (weights(result.model) - start).norm() == pytest.approx(0.5, rel=1e-4)


def test_accumulation_equals_one_big_batch_for_a_deterministic_loss():
    def loss(model, x):
        return (model(x, torch.full((len(x),), 0.5)) - x).pow(2).mean()

    opt = lambda ps: torch.optim.SGD(ps, lr=0.1)  # noqa: E731
    kw = {"loss": loss, "optimizer": opt, "steps": 3, "batch_size": 16, "ema": None, "progress": False}
    a = sl.train(tiny(), points(), **kw)
    b = sl.train(tiny(), points(), accumulate=4, **kw)
    assert torch.allclose(weights(a.model), weights(b.model), atol=1e-6)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_trains(amp):
    result = sl.train(tiny(), points(), amp=amp, **{**SMALL, "steps": 10})
    assert all(math.isfinite(v) for v in result.losses)
    assert next(result.model.parameters()).dtype == torch.float32


def test_validation_rows_every_k_steps():
    seen = []
    result = sl.train(tiny(), points(), val_data=points(32) + 0.1, val_every=3, val_batches=2,
                      val_metric=lambda m: seen.append(m) or 1.5, steps=7, batch_size=8, progress=False)
    assert [row["step"] for row in result.validation] == [3, 6, 7]
    assert all(math.isfinite(row["loss"]) and row["metric"] == 1.5 for row in result.validation)
    assert seen[0] is result.ema_model


def test_losses_read_back_every_k_steps_equal_per_step_values():
    a = sl.train(tiny(), points(), log_every=1, **SMALL)
    b = sl.train(tiny(), points(), log_every=4, **SMALL)
    assert a.losses == b.losses


# --- checkpoints and resume -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["moons", "tensor"])
def test_resume_continues_bit_for_bit(tmp_path, data):
    source = "moons" if data == "moons" else points(40)
    kw = {"batch_size": 16, "progress": False, "seed": 7, "warmup_steps": 3, "weight_decay": 0.01}
    whole = sl.train(tiny(), source, steps=20, **kw)
    ckpt = tmp_path / "state.pt"
    first = sl.train(tiny(), source, steps=10, checkpoint=ckpt, checkpoint_every=4, **kw)
    assert first.losses == whole.losses[:10]
    resumed = sl.train(tiny(), source, steps=20, resume=ckpt, **kw)  # a fresh model: all state comes from the file
    assert resumed.losses == whole.losses
    assert torch.equal(weights(resumed.model), weights(whole.model))
    assert torch.equal(weights(resumed.ema_model), weights(whole.ema_model))


def test_checkpoint_every_k_steps_holds_that_step(tmp_path):
    ckpt = tmp_path / "state.pt"
    steps_seen = []

    def callback(state):
        if ckpt.exists():
            steps_seen.append(torch.load(ckpt, weights_only=True)["step"])

    sl.train(tiny(), points(), steps=9, batch_size=8, checkpoint=ckpt, checkpoint_every=4, callback=callback,
             progress=False)
    assert sorted(set(steps_seen)) == [4, 8]
    assert torch.load(ckpt, weights_only=True)["step"] == 9


def test_resume_from_a_model_file_is_refused(tmp_path):
    path = sl.save(tiny(), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="is not a training state written by train"):
        sl.train(tiny(), points(), resume=path, **SMALL)


# --- save / load any module -----------------------------------------------------------------------------


class Plain(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.lin = nn.Linear(3, width)

    def forward(self, x, t):
        return self.lin(torch.cat([x, t[:, None]], 1))[:, :2]


def test_save_any_module_with_a_config(tmp_path):
    torch.manual_seed(0)
    model = Plain(width=6)
    path = sl.save(model, tmp_path / "plain.safetensors", config={"width": 6})
    from straightline.checkpoints import read_metadata

    meta = read_metadata(path)
    assert meta["class"].endswith("Plain") and meta["config"] == '{"width": 6}'
    loaded = sl.load(path, model=Plain(width=6))
    assert torch.equal(loaded.lin.weight, model.lin.weight)
    with pytest.raises(ValueError, match=r"load cannot build by itself; pass load\(path, model=an instance\)"):
        sl.load(path)


def test_save_unwraps_compiled_and_parallel_models(tmp_path):
    model = tiny()
    compiled = torch.compile(model)  # wrapping only: nothing is compiled until it is called
    loaded = sl.load(sl.save(compiled, tmp_path / "c.safetensors"))
    assert type(loaded) is sl.models.MLP and torch.equal(weights(loaded), weights(model))
    loaded = sl.load(sl.save(nn.DataParallel(model), tmp_path / "d.safetensors"))
    assert torch.equal(weights(loaded), weights(model))
    into = sl.load(tmp_path / "c.safetensors", model=torch.compile(tiny()))
    assert torch.equal(weights(into), weights(model))


def test_loading_a_torch_save_file_is_a_clear_error(tmp_path):
    torch.save(tiny().state_dict(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"'.*m\.pt' is not a safetensors file .*torch.load"):
        sl.load(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="is not a safetensors file"):
        sl.load(tmp_path / "m.pt", model=tiny())


def test_loading_weights_of_another_shape_is_named(tmp_path):
    path = sl.save(tiny(), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="do not fit a MLP"):
        sl.load(path, model=sl.models.MLP(dim=2, hidden=8, depth=1))


def test_vector_conditions_with_dropout_train_a_conditional_and_a_null_field() -> None:
    """Float condition vectors [N, 2] with label_dropout: the conditional field carries noise to the
    point named by the condition, the null condition (NaN rows) to the mixture of all of them."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    pick = torch.randint(0, 2, (4096,), generator=g)
    cond = centres[pick]  # [N, 2]
    x = cond + 0.1 * torch.randn(4096, 2, generator=g)  # [N, 2]
    model = sl.models.MLP(dim=2, hidden=64, cond_dim=2)
    result = sl.train(model, x, labels=cond, label_dropout=0.2, steps=600, lr=3e-3, seed=0, progress=False)
    z = torch.randn(500, 2, generator=g)
    right = sl.sample(result.ema_model, z, steps=20, y=centres[1].expand(500, 2))
    assert (right[:, 0] > 0).float().mean() > 0.95
    unconditional = sl.sample(result.ema_model, z, steps=20, y=torch.full((500, 2), float("nan")))
    assert 0.25 < (unconditional[:, 0] > 0).float().mean() < 0.75


def test_label_dropout_needs_a_conditional_model() -> None:
    with pytest.raises(ValueError, match="label_dropout needs a conditional model: one with num_classes .* or cond_dim"):
        sl.train(sl.models.MLP(dim=2), torch.randn(64, 2), labels=torch.randn(64, 3), label_dropout=0.1, steps=2,
                 progress=False)


# --- train's defaults: the coupling and the EMA warm-up ------------------------------------------------


def test_default_coupling_is_exact_ot_for_unconditional_data_and_independent_with_labels():
    def run(**kw):
        torch.manual_seed(0)
        model = sl.models.MLP(dim=2, hidden=16, depth=1, num_classes=2)
        return weights(sl.train(model, points(), seed=1, **SMALL, **kw).model)

    assert torch.equal(run(), run(coupling="exact_ot"))
    assert not torch.equal(run(), run(coupling="independent"))
    labels = (points()[:, 0] > 1.0).long()  # [64]
    assert torch.equal(run(labels=labels), run(labels=labels, coupling="independent"))
    assert not torch.equal(run(labels=labels), run(labels=labels, coupling="exact_ot"))
    assert torch.equal(run(coupling=None), run(coupling="independent"))  # None: independent, as in cfm_loss


@pytest.mark.parametrize("warmup,decay", [(True, 0.1), (False, 0.999)])  # step 0: min(0.999, (1 + 0) / (10 + 0))
def test_ema_after_one_step_follows_the_warm_up(warmup, decay):
    start = weights(tiny())
    result = sl.train(tiny(), points(), steps=1, batch_size=16, ema=0.999, ema_warmup=warmup, progress=False)
    expected = decay * start + (1 - decay) * weights(result.model)  # [P]
    assert torch.allclose(weights(result.ema_model), expected, atol=1e-7)


def test_bad_ema_warmup_is_named():
    with pytest.raises(ValueError, match="ema_warmup must be True or False, got 'yes'"):
        sl.train(tiny(), points(), ema_warmup="yes", **SMALL)
