"""Classifier-free guidance against an exact class-conditional oracle, and on a trained MLP.

Two overlapping classes, N((-1, 0), 0.6^2 I) and N((+1, 0), 0.6^2 I) with equal weight: the
conditional field of class c is the one-component GaussianMixture oracle, the unconditional one
the two-component mixture. Nearest-centre accuracy of exact class-c samples is Φ(1 / 0.6) = 0.952.
"""

import math
from itertools import pairwise

import pytest
import torch
from torch import nn

import straightline as sl
from straightline import diffusion as D
from straightline import guidance as G
from straightline.oracles import GaussianMixture

CENTRES = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
STD = 0.6
EXACT_ACCURACY = 0.5 * (1 + math.erf(1 / STD / math.sqrt(2)))  # 0.952
FULL = GaussianMixture(CENTRES, STD)
PARTS = [GaussianMixture(CENTRES[c : c + 1], STD) for c in range(2)]


class OracleField(nn.Module):
    """The exact class-conditional velocity (or, with a schedule, ε) field; label 2 = no class."""

    num_classes = 2

    def __init__(self, schedule: D.NoiseSchedule | None = None):
        super().__init__()
        self.schedule = schedule

    def _field(self, gm: GaussianMixture, x, t):
        if self.schedule is None:
            return gm.velocity(x, t)
        # ε-model: t is the network time 1 - k / T; see test_diffusion.oracle_eps
        k = torch.round((1 - t.double()) * self.schedule.T).long()  # [B]
        a, c = self.schedule.alpha_bar(k)[:, None], self.schedule.flow_scale(k)[:, None]  # [B, 1]
        return -(1 - a).sqrt() * gm.score(x / c, self.schedule.flow_time(k)) / c

    def forward(self, x, t, y=None):
        y = torch.full((x.shape[0],), 2) if y is None else y
        out = self._field(FULL, x, t)  # [B, 2] unconditional
        for c in range(2):
            rows = y == c
            if rows.any():
                out[rows] = self._field(PARTS[c], x[rows], t[rows])
        return out.to(x.dtype)


def _labels(n):
    return torch.arange(n) % 2


def _stats(x, y):
    """Nearest-centre accuracy, mean within-class std, mean distance to the own centre."""
    accuracy = ((x[:, 0] > 0).long() == y).double().mean().item()
    spread = torch.stack([x[y == c].std(0) for c in range(2)]).mean().item()
    distance = (x - CENTRES.to(x.dtype)[y]).norm(dim=1).mean().item()
    return accuracy, spread, distance


def test_w0_is_unconditional_w1_conditional_and_linear_in_between():
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(64, 2, generator=g, dtype=torch.float64)
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.98
    y = _labels(64)
    field = OracleField()
    cond = torch.stack([PARTS[int(c)].velocity(x[i : i + 1], t[i : i + 1])[0] for i, c in enumerate(y)])  # [64, 2]
    uncond = FULL.velocity(x, t)
    assert (cond - uncond).abs().max() > 0.5  # the two fields differ: the checks below mean something
    assert torch.allclose(G.guided_velocity(field, y, 1.0)(x, t), cond, atol=1e-12)
    assert torch.allclose(G.guided_velocity(field, y, 0.0)(x, t), uncond, atol=1e-12)
    for w in (-0.5, 0.3, 2.5, 7.0):
        assert torch.allclose(G.guided_velocity(field, y, w)(x, t), (1 - w) * uncond + w * cond, atol=1e-11)
    # one label for all samples
    ones = torch.ones(64, dtype=torch.long)
    assert torch.allclose(G.guided_velocity(field, 1, 3.0)(x, t), G.guided_velocity(field, ones, 3.0)(x, t))


def test_guided_field_is_one_network_call_on_a_doubled_batch():
    calls = []

    class Spy(nn.Module):
        num_classes = 3

        def forward(self, x, t, y):
            calls.append(y.clone())
            return x * (1 + y[:, None].to(x.dtype))

    x = torch.randn(5, 2)
    traj = sl.integrate(G.guided_velocity(Spy(), torch.tensor([0, 1, 2, 0, 1]), 2.0), x, steps=4)
    assert traj.nfe == 4 and len(calls) == 4
    assert calls[0].tolist() == [0, 1, 2, 0, 1, 3, 3, 3, 3, 3]  # conditional rows, then the null class 3


def test_exact_guided_sampling_w1_gives_each_class_and_w0_ignores_it():
    n = 4000
    x_0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = _labels(n)
    x = G.sample_guided(OracleField(), x_0, y, 1.0, steps=20, method="rk4")
    for c in range(2):
        xc = x[y == c]
        se = STD / math.sqrt(len(xc))
        assert (xc.mean(0) - CENTRES[c].double()).abs().max() < 4 * se
        assert (xc.std(0) - STD).abs().max() < 4 * STD / math.sqrt(2 * len(xc))
    accuracy, _, _ = _stats(x, y)
    assert abs(accuracy - EXACT_ACCURACY) < 4 * math.sqrt(EXACT_ACCURACY * (1 - EXACT_ACCURACY) / n), accuracy
    accuracy0, _, _ = _stats(G.sample_guided(OracleField(), x_0, y, 0.0, steps=20, method="rk4"), y)
    assert abs(accuracy0 - 0.5) < 4 * 0.5 / math.sqrt(n), accuracy0


def test_eps_guidance_on_the_exact_ddpm_eps_model():
    sch = D.cosine_schedule(1000)
    n = 4000
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y = _labels(n)
    model = OracleField(sch)
    x1 = D.ddim_sample(G.guided_eps(model, y, 1.0), x_T, schedule=sch, steps=100).x
    for c in range(2):
        assert (x1[y == c].mean(0) - CENTRES[c].double()).abs().max() < 4 * STD / math.sqrt(n / 2)
    x0 = D.ddim_sample(G.guided_eps(model, y, 0.0), x_T, schedule=sch, steps=100).x
    acc1, acc0 = _stats(x1, y)[0], _stats(x0, y)[0]
    acc3 = _stats(D.ddim_sample(G.guided_eps(model, y, 3.0), x_T, schedule=sch, steps=100).x, y)[0]
    # measured: 0.499 / 0.958 / 1.0 (w = 0 / 1 / 3); at w = 3 each class mean sits 0.62 past its centre
    assert abs(acc0 - 0.5) < 0.03 and abs(acc1 - EXACT_ACCURACY) < 0.015 and acc3 > 0.995, (acc0, acc1, acc3)


WS = (0.0, 0.5, 1.0, 2.0, 4.0)


@pytest.fixture(scope="module")
def trained():
    n = 4000
    g = torch.Generator().manual_seed(0)
    labels = _labels(n)
    data = CENTRES[labels] + STD * torch.randn(n, 2, generator=g)  # [n, 2]
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=64, num_classes=2)
    return G.train_guided(model, data, labels, steps=400, p_uncond=0.2, lr=3e-3, seed=0, progress=False).ema_model


def _table(model, n=2000):
    x_0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    y = _labels(n)
    return {w: _stats(G.sample_guided(model, x_0, y, w, steps=50), y) for w in WS}


def test_trained_guidance_sharpens_the_classes_as_w_grows(trained):
    table = _table(trained)
    exact = _table(OracleField())
    acc = [table[w][0] for w in WS]
    spread = [table[w][1] for w in WS]
    dist = [table[w][2] for w in WS]
    # measured (trained; exact oracle in brackets):
    # w    accuracy       within-class std   distance to own centre
    # 0    0.499 (0.496)  0.869 (0.867)      1.42 (1.41)
    # 0.5  0.765 (0.752)  0.712 (0.708)      0.96 (0.95)
    # 1    0.952 (0.956)  0.589 (0.588)      0.73 (0.74)
    # 2    1.000 (1.000)  0.432 (0.506)      0.69 (0.73)
    # 4    1.000 (1.000)  0.293 (0.466)      0.78 (1.01)
    assert acc[0] < 0.55 and 0.70 < acc[1] < 0.82 and 0.93 < acc[2] < 0.97 and acc[3] > 0.99 and acc[4] > 0.99, acc
    assert all(b >= a for a, b in pairwise(acc))
    assert all(b < a for a, b in pairwise(spread)), spread
    assert dist[0] > dist[1] > dist[2], dist  # towards the own centre up to w = 1 ...
    for w in (0.0, 0.5, 1.0):
        assert abs(table[w][0] - exact[w][0]) < 0.03 and abs(table[w][1] - exact[w][1]) < 0.05, (w, table[w], exact[w])
    # ... beyond it guidance pushes each class away from the other, past its centre (also exactly)
    assert exact[4.0][2] > exact[1.0][2] + 0.2


def _mlp2():
    return sl.models.MLP(hidden=8, depth=1, num_classes=2)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: G.guided_velocity(sl.models.MLP(hidden=8, depth=1), 0, 1.0),
            r"class-conditional model with num_classes.*got num_classes=None",
        ),
        (
            lambda: G.guided_velocity(OracleField(), 2, 1.0),
            r"class labels must be in 0\.\.1 \(num_classes=2; 2 is the null class\), got values in \[2, 2\]",
        ),
        (lambda: G.guided_velocity(OracleField(), torch.tensor([0.5]), 1.0), r"y must be an integer class label"),
        (lambda: G.guided_velocity(OracleField(), 0, float("nan")), r"guidance weight w must be a finite.*got nan"),
        (
            lambda: G.train_guided(_mlp2(), torch.randn(8, 2), torch.zeros(8, dtype=torch.long), steps=1, p_uncond=0.0),
            r"p_uncond must be in \(0, 1\).*got 0\.0",
        ),
        (
            lambda: G.train_guided(_mlp2(), torch.randn(8, 2), torch.full((8,), 5), steps=1),
            r"class labels must be in 0\.\.1.*got values in \[5, 5\]",
        ),
        (lambda: G.sample_guided(OracleField(), torch.randn(4, 2), 0, 1.0, steps=5, method="rk5"), r"method 'rk5'"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
