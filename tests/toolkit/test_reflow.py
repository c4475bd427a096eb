"""Reflow straightens a trained flow, keeps an already straight one, and is reproducible."""

import math
import re
from pathlib import Path

import pytest
import torch

import straightline as sl
from straightline import metrics
from straightline.reflowing import ReflowRound, reflow, reflow_pairs, reflow_rounds

from flows import StraightGaussian, eval_noise, w2_at  # tests/toolkit/flows.py

REFLOW_FILE = Path(sl.__file__).parent / "reflowing.py"


@pytest.fixture(scope="module")
def base(trained_8gaussians):
    return trained_8gaussians


@pytest.fixture(scope="module")
def rectified(base):
    return reflow(base, n_pairs=4096, steps=32, train_steps=600, seed=0, progress=False)


def test_one_rectified_flow_is_straighter_and_better_in_one_step(base, rectified):
    s_base = metrics.straightness(base, eval_noise())
    s_new = metrics.straightness(rectified, eval_noise())
    w1_base, w1_new = w2_at(base, 1), w2_at(rectified, 1)
    w100_base, w100_new = w2_at(base, 100), w2_at(rectified, 100)
    print(f"straightness {s_base:.4f} -> {s_new:.4f}; 1-step W2 {w1_base:.3f} -> {w1_new:.3f}; "
          f"100-step W2 {w100_base:.3f} -> {w100_new:.3f}")
    assert s_new < s_base / 20, (s_base, s_new)  # measured 1.62 -> 0.0085
    assert w1_new < 0.5 * w1_base, (w1_base, w1_new)  # measured 2.21 -> 0.65
    assert w1_new < w100_base + 0.2, (w1_new, w100_base)  # one step nearly as good as 100 of the base
    assert w100_new < w100_base + 0.1, (w100_base, w100_new)  # the distribution is kept


def test_the_input_model_is_not_changed():
    torch.manual_seed(2)
    model = sl.models.MLP(dim=2, hidden=16, depth=2).requires_grad_(False)  # e.g. a TrainResult.ema_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = reflow(model, n_pairs=200, steps=4, train_steps=20, batch_size=50, ema=None, progress=False)
    assert new is not model and type(new) is type(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(p.requires_grad for p in model.parameters())
    assert not all(torch.equal(before[k], v) for k, v in new.state_dict().items())  # the copy was trained


def test_listing_region_is_short_and_marked_once():
    lines = REFLOW_FILE.read_text().splitlines()
    starts = [i for i, s in enumerate(lines) if s.strip() == "# listing: reflow-pairs"]
    assert len(starts) == 1
    end = next(i for i in range(starts[0] + 1, len(lines)) if lines[i].strip() == "# end listing")
    body = [s for s in lines[starts[0] + 1 : end] if s.strip()]
    assert 5 <= len(body) <= 12, body
    text = "\n".join(body)
    assert "integrate(" in text and "torch.randn(" in text and re.search(r"return x_0, x_1", text)
    assert all(len(s) <= 120 for s in body)


def test_pairs_are_the_old_models_ode_end_points(base):
    x_0, x_1 = reflow_pairs(base, 600, steps=32, solver="rk4", seed=4, chunk_size=600)
    assert x_0.shape == x_1.shape == (600, 2)
    assert torch.equal(x_0, torch.randn(600, 2, generator=torch.Generator().manual_seed(4)))
    assert torch.equal(x_1, sl.integrate(base, x_0, steps=32, method="rk4").x)
    # chunked generation gives the same pairs (up to float rounding of different batch sizes)
    c_0, c_1 = reflow_pairs(base, 600, steps=32, solver="rk4", seed=4, chunk_size=128)
    assert torch.equal(c_0, x_0)
    assert torch.allclose(c_1, x_1, atol=1e-5)
    # the pairs are coupled: x_1 is far from x_0 and moved by the flow, not a fresh data draw
    assert (x_1 - x_0).norm(dim=1).mean() > 1.0


def test_class_conditional_pairs_use_the_labels():
    torch.manual_seed(1)
    model = sl.models.MLP(dim=2, hidden=16, depth=2, num_classes=3)
    labels = torch.tensor([0, 1, 2, 1, 0, 2])
    x_0, x_1 = reflow_pairs(model, 6, steps=4, solver="euler", seed=2, labels=labels)
    expected = sl.integrate(lambda x, t: model(x, t, labels), x_0, steps=4, method="euler").x
    assert torch.allclose(x_1, expected, atol=1e-6)
    unconditional = sl.integrate(model, x_0, steps=4, method="euler").x
    assert not torch.allclose(x_1, unconditional, atol=1e-4)
    new = reflow(model, n_pairs=6, steps=4, solver="euler", train_steps=3, batch_size=4, labels=labels, progress=False)
    assert new(x_0, torch.zeros(6), labels).shape == (6, 2)


def test_an_exact_straight_flow_is_a_fixed_point_of_reflow():
    old = StraightGaussian()
    x_0 = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    exact = 0.5 * x_0 + old.mu.detach()  # [256, 2] where each straight trajectory ends
    assert torch.allclose(sl.integrate(old, x_0, steps=100, method="rk4").x, exact, atol=1e-12)
    assert metrics.straightness(old, x_0) < 1e-20
    new = reflow(old, n_pairs=512, steps=100, train_steps=200, seed=0, progress=False)
    # one Euler step of the reflowed field lands where the old ODE ended
    err = (sl.sample(new, x_0, steps=1) - exact).abs().max().item()
    assert err < 1e-5, err  # measured 7e-10
    assert torch.allclose(new.mu, old.mu, atol=1e-5) and abs(new.log_s.item() - math.log(0.5)) < 1e-5
    # for a bent field one Euler step misses the ODE end point: the check above is not vacuous
    bent = StraightGaussian()
    bent.forward = lambda x, t: StraightGaussian.forward(bent, x, t) + torch.sin(3 * t)[:, None] * x.flip(1)
    bent_end = sl.integrate(bent, x_0, steps=100, method="rk4").x
    assert (sl.sample(bent, x_0, steps=1) - bent_end).abs().max().item() > 0.1


def test_same_seed_same_model_bit_for_bit():
    torch.manual_seed(3)
    model = sl.models.MLP(dim=2, hidden=16, depth=2)
    kwargs = {"n_pairs": 300, "steps": 8, "train_steps": 25, "batch_size": 64, "progress": False}
    torch.manual_seed(11)
    expected_draw = torch.rand(3)
    torch.manual_seed(11)
    a = reflow(model, seed=5, **kwargs)
    assert torch.equal(torch.rand(3), expected_draw)  # the global random state is left alone
    b = reflow(model, seed=5, **kwargs)
    c = reflow(model, seed=6, **kwargs)
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))


def test_reflow_rounds_measures_every_round(base):
    records = reflow_rounds(base, rounds=2, n_pairs=1024, steps=16, train_steps=150, reference="8gaussians",
                            eval_n=400, seed=0, progress=False)
    assert [r.round for r in records] == [0, 1, 2]
    assert all(isinstance(r, ReflowRound) for r in records)
    assert records[0].model is base and records[0].loss is None and records[0].losses == []
    assert len({id(r.model) for r in records}) == 3
    for r in records:
        assert sorted(r.quality) == [1, 2, 4, 100]
        values = [r.straightness, r.npe, *r.quality.values()]
        assert all(math.isfinite(v) and v >= 0 for v in values), r
    for r in records[1:]:
        assert len(r.losses) == 150 and math.isfinite(r.loss) and r.loss > 0
    print([(r.round, r.loss, round(r.straightness, 4), round(r.quality[1], 3)) for r in records])
    assert records[1].straightness < records[0].straightness / 5
    assert records[1].quality[1] < 0.6 * records[0].quality[1]
    # round 1 is exactly a plain reflow call with the same seed
    same = reflow(base, n_pairs=1024, steps=16, train_steps=150, seed=0, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(same.parameters(), records[1].model.parameters(), strict=True))


def test_reflow_rounds_with_a_quality_function():
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=16, depth=2)

    def spread(x):  # any samples -> float works as a quality measure
        return float(x.std())

    records = reflow_rounds(model, rounds=1, n_pairs=128, steps=4, train_steps=5, quality=spread, eval_n=64,
                            quality_steps=(1, 3), progress=False)
    assert len(records) == 2 and records[1].npe is None
    x_eval = torch.randn(64, 2, generator=torch.Generator().manual_seed(10_000))
    assert records[0].quality[3] == pytest.approx(spread(sl.sample(model, x_eval, steps=3)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rounds": 0}, r"rounds must be a positive integer, got 0"),
        ({"rounds": -2}, r"rounds must be a positive integer, got -2"),
        ({"solver": "rk5"}, r"unknown solver 'rk5'; accepted: euler, midpoint, heun, rk4, dopri5"),
        ({"n_pairs": 0}, r"n_pairs must be a positive integer, got 0"),
        ({"reference": "mooons"}, r"unknown reference dataset 'mooons'; accepted: .*moons"),
        ({"reference": None}, r"needs reference .* or quality"),
        ({"quality_steps": (1, 0)}, r"quality_steps must be a positive integer, got 0"),
        ({"lr": 0.0}, r"lr must be a number > 0, got 0.0"),
        ({"ema": 1.0}, r"ema must be None or a number in \[0, 1\), got 1.0"),
    ],
)
def test_reflow_rounds_rejects_bad_values(kwargs, message):
    model = sl.models.MLP(dim=2, hidden=8, depth=1)
    args = {"rounds": 1, "n_pairs": 8, "steps": 2, "train_steps": 1, "reference": "moons", "eval_n": 8}
    args.update(progress=False, **kwargs)
    with pytest.raises(ValueError, match=message):
        reflow_rounds(model, **args)


def test_reflow_rejects_bad_values():
    model = sl.models.MLP(dim=2, hidden=8, depth=1)
    args = {"n_pairs": 8, "steps": 2, "train_steps": 1, "progress": False}
    with pytest.raises(ValueError, match=r"unknown solver 'leapfrog'"):
        reflow(model, solver="leapfrog", **args)
    with pytest.raises(ValueError, match=r"steps must be a positive integer, got 0"):
        reflow(model, **{**args, "steps": 0})
    with pytest.raises(ValueError, match=r"train_steps must be a positive integer, got 1.5"):
        reflow(model, **{**args, "train_steps": 1.5})
    with pytest.raises(ValueError, match=r"labels must be a tensor of shape \[8\]"):
        reflow(model, labels=torch.zeros(3, dtype=torch.long), **args)
    with pytest.raises(ValueError, match=r"pass shape=\(\.\.\.\)"):
        reflow(sl.models.ConvNet(channels=8), **args)
