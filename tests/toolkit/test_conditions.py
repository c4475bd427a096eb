"""Vector and continuous conditions: models, the null embedding, condition dropout, guidance."""

import math

import pytest
import torch

import straightline as sl
from straightline import conditions, guidance


def _x_t(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g), torch.rand(n, generator=g)


def test_a_vector_conditional_mlp_uses_its_condition_and_a_learned_null():
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=16, cond_dim=3)
    x, t = _x_t()
    y = torch.randn(6, 3)
    out = model(x, t, y)
    assert out.shape == (6, 2)
    assert not torch.allclose(out, model(x, t, y + 1))  # the condition matters
    null = model(x, t)  # y = None: the null embedding for every sample
    mixed = y.clone()
    mixed[2] = float("nan")  # one sample without a condition
    got = model(x, t, mixed)
    assert torch.allclose(got[2], null[2]) and torch.allclose(got[0], out[0])
    assert "label.null" in dict(model.named_parameters())  # the null embedding is learned


def test_float_labels_and_keyword_conditions_through_sample():
    model = sl.models.MLP(dim=2, hidden=16, cond_dim=1).eval()
    z = torch.randn(5, 2)
    y = torch.linspace(-1, 1, 5)  # float labels [B] for cond_dim = 1
    a = sl.sample(model, z, steps=4, y=y)
    b = sl.sample(model, z, steps=4, y=y[:, None])
    assert torch.equal(a, b)
    assert torch.allclose(a, sl.sample(model, z, steps=4, y=y, batch_size=2), atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: sl.models.MLP(dim=64, hidden=16, cond_dim=3),
        lambda: sl.models.ConvNet(channels=8, time_dim=8, cond_dim=3),
        lambda: sl.models.MMDiT(dim=16, depth=1, heads=2, num_classes=None, cond_dim=3),
    ],
    ids=["MLP", "ConvNet", "MMDiT"],
)
def test_every_model_takes_vectors_and_saves_its_config(make, tmp_path):
    torch.manual_seed(1)
    model = make().eval()
    for p in model.parameters():  # the conv nets start at v = 0: give them weights to compare
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(4, 1, 8, 8)
    t = torch.rand(4)
    y = torch.randn(4, 3)
    y[1] = float("nan")
    out = model(x, t, y)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert model.config["cond_dim"] == 3
    sl.save(model, tmp_path / "m.safetensors")
    loaded = sl.load(tmp_path / "m.safetensors")
    assert loaded.cond_dim == 3 and torch.equal(loaded(x, t, y), out)


def test_bad_conditions_are_named():
    x, t = _x_t(4)
    vec = sl.models.MLP(dim=2, hidden=8, cond_dim=3)
    cls = sl.models.MLP(dim=2, hidden=8, num_classes=3)
    with pytest.raises(ValueError, match=r"y must have shape \[4, 3\] \(cond_dim=3\), got \[4, 2\]"):
        vec(x, t, torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"float tensor \[B, 3\], got dtype torch.int64"):
        vec(x, t, torch.zeros(4, 3, dtype=torch.long))
    partial = torch.randn(4, 3)
    partial[0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"only a whole row of NaN means no condition"):
        vec(x, t, partial)
    with pytest.raises(ValueError, match=r"integer class labels of shape \[4\].*got dtype torch.float32"):
        cls(x, t, torch.rand(4))
    with pytest.raises(ValueError, match=r"y must lie in 0\.\.3 \(3 = null class\), got values in \[0, 7\]"):
        cls(x, t, torch.tensor([0, 1, 2, 7]))
    with pytest.raises(ValueError, match=r"num_classes \(class labels\) or cond_dim \(vector conditions\), not both"):
        sl.models.MLP(num_classes=3, cond_dim=2)
    with pytest.raises(ValueError, match=r"unconditional .* but a condition y was given"):
        sl.models.MLP(dim=2, hidden=8)(x, t, torch.zeros(4, 3))


def test_drop_condition_for_labels_and_vectors():
    cls = sl.models.MLP(dim=2, hidden=8, num_classes=5)
    vec = sl.models.MLP(dim=2, hidden=8, cond_dim=2)
    g = torch.Generator().manual_seed(0)
    labels = conditions.drop_condition(cls, torch.zeros(20_000, dtype=torch.long), 0.3, generator=g)
    assert set(labels.unique().tolist()) == {0, 5} and abs(float((labels == 5).float().mean()) - 0.3) < 0.015
    vectors = conditions.drop_condition(vec, torch.ones(20_000, 2), 0.2, generator=g)
    rows = torch.isnan(vectors).all(1)
    assert torch.equal(torch.isnan(vectors).any(1), rows)  # whole rows, never single entries
    assert abs(float(rows.float().mean()) - 0.2) < 0.015 and bool((vectors[~rows] == 1).all())
    # the mask is built on the condition's device (a meta tensor would refuse a CPU mask)
    meta = conditions.drop_condition(vec, torch.zeros(8, 2, device="meta"), 0.5)
    assert meta.device.type == "meta"
    with pytest.raises(ValueError, match=r"num_classes \(class labels\) or cond_dim"):
        conditions.drop_condition(sl.models.MLP(dim=2, hidden=8), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\), got 1.5"):
        conditions.drop_condition(vec, torch.zeros(3, 2), 1.5)


class VectorOracle(torch.nn.Module):
    """Exact velocity for data N(c, S^2 I) with the condition c [B, 2]; null rows: data N(0, S^2 I)."""

    cond_dim = 2
    num_classes = None

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, t, c):
        self.calls += 1
        c = torch.nan_to_num(c, nan=0.0)  # a NaN row is the null condition: mean 0
        tb = t[:, None]
        var = tb**2 * 0.25 + (1 - tb) ** 2
        return c + (tb * 0.25 - (1 - tb)) / var * (x - tb * c)


def test_guidance_with_vector_conditions_is_exact():
    model = VectorOracle()
    x = torch.randn(7, 2, dtype=torch.float64)
    t = torch.rand(7, dtype=torch.float64)
    c = torch.randn(7, 2, dtype=torch.float64)
    v_c, v_u = model(x, t, c), model(x, t, torch.full_like(c, math.nan))
    for w in (0.0, 1.0, 2.5):
        model.calls = 0
        got = guidance.guided_velocity(model, c, w)(x, t)
        assert model.calls == 1  # one call on the doubled batch
        assert torch.allclose(got, v_u + w * (v_c - v_u), atol=1e-12)
    # w = 1 samples the conditional data: each sample lands near its own condition
    c_one = torch.tensor([3.0, -2.0], dtype=torch.float64)  # one vector for every sample
    z = torch.randn(4000, 2, dtype=torch.float64)
    x_1 = sl.integrate(guidance.guided_velocity(model, c_one, 1.0), z, steps=50, method="rk4").x
    assert torch.allclose(x_1.mean(0), c_one, atol=0.03)
    assert torch.allclose(x_1.std(0), torch.full((2,), 0.5, dtype=torch.float64), atol=0.02)


def test_guidance_on_a_vector_mlp_mixes_its_two_fields():
    torch.manual_seed(2)
    model = sl.models.MLP(dim=2, hidden=16, cond_dim=3).eval()
    x, t = _x_t(5)
    y = torch.randn(5, 3)
    with torch.no_grad():
        v_c, v_u = model(x, t, y), model(x, t)
        got = guidance.guided_velocity(model, y, 3.0)(x, t)
    assert torch.allclose(got, v_u + 3.0 * (v_c - v_u), atol=1e-5)
    with pytest.raises(ValueError, match=r"takes float condition vectors, got dtype torch.int64"):
        guidance.guided_velocity(model, torch.zeros(5, 3, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match=r"shape \[3\] or \[B, 3\], got \[5, 2\]"):
        guidance.guided_velocity(model, torch.zeros(5, 2), 1.0)


def test_a_vector_conditional_model_learns_with_dropout_and_guides():
    # data x_1 = c + 0.1 noise for conditions c ~ N(0, I): after a short training with condition
    # dropout, conditional samples follow their c and unconditional ones spread like the data
    torch.manual_seed(3)
    model = sl.models.MLP(dim=2, hidden=64, depth=2, cond_dim=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        c = torch.randn(256, 2)
        x_1 = c + 0.1 * torch.randn(256, 2)
        loss = sl.cfm_loss(model, x_1, y=conditions.drop_condition(model, c, 0.2))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    target = torch.tensor([1.0, -1.0])
    z = torch.randn(2000, 2)
    cond = sl.sample(model, z, steps=30, y=target.expand(2000, 2))
    uncond = sl.sample(model, z, steps=30)
    assert float((cond.mean(0) - target).norm()) < 0.15 and float(cond.std(0).max()) < 0.4
    assert float(uncond.mean(0).norm()) < 0.4 and float(uncond.std(0).min()) > 0.7  # N(0, 1.01 I), roughly
