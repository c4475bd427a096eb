"""cfm_loss against the course's worked example and the classic bugs."""

import pytest
import torch

import straightline as sl
from straightline import timesteps


class Constant(torch.nn.Module):
    """A model that always predicts the same velocity, recording the t it was given."""

    def __init__(self, value):
        super().__init__()
        self.value = torch.tensor(value)
        self.seen_t = None

    def forward(self, x, t):
        self.seen_t = t
        return self.value.expand_as(x)


def test_syllabus_example_gives_0_025():
    model = Constant([[0.8, 1.9]])
    x_1 = torch.tensor([[1.0, 2.0]])
    loss = sl.cfm_loss(model, x_1, noise_fn=torch.zeros_like)
    assert loss.item() == pytest.approx(0.025, abs=1e-7)
    assert model.seen_t.shape == (1,)


def _buggy_losses(model, x_1, z, t):
    """The classic mistakes, each computed for the same noise and time."""
    tb = t.reshape(-1, *([1] * (x_1.ndim - 1)))
    good_xt = (1 - tb) * z + tb * x_1
    out = {}
    out["target reversed"] = torch.mean((model(good_xt, t) - (z - x_1)) ** 2)
    out["interpolation reversed"] = torch.mean((model(tb * z + (1 - tb) * x_1, t) - (x_1 - z)) ** 2)
    out["summed"] = torch.sum((model(good_xt, t) - (x_1 - z)) ** 2)
    return out


def test_classic_bugs_give_different_values():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    model = lambda x, t: lin(torch.cat([x, t[:, None]], dim=1))  # noqa: E731
    x_1 = torch.randn(64, 2)
    z = torch.randn(64, 2)
    t = torch.rand(64)
    state = torch.random.get_rng_state()
    right = sl.cfm_loss(model, x_1, noise_fn=lambda x: z)
    torch.random.set_rng_state(state)
    t_used = torch.rand(64)  # the t cfm_loss drew
    tb = t_used[:, None]
    expected = torch.mean((model((1 - tb) * z + tb * x_1, t_used) - (x_1 - z)) ** 2)
    assert right.item() == pytest.approx(expected.item(), rel=1e-6)
    for name, value in _buggy_losses(model, x_1, z, t_used).items():
        assert abs(value.item() - right.item()) > 1e-3, name


def test_t_not_broadcast_is_caught_by_shape():
    # t of shape [B] multiplied with [B, 2] data only broadcasts by accident when B == 2: we never
    # do that; the model always receives t of shape [B] even for image-shaped data
    seen = {}

    def model(x, t):
        seen["t"] = t.shape
        return torch.zeros_like(x)

    x_1 = torch.randn(5, 1, 8, 8)
    sl.cfm_loss(model, x_1)
    assert seen["t"] == (5,)


def test_weight_multiplies_per_sample_loss():
    model = Constant([[0.0, 0.0]])
    x_1 = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    sampler = _FixedT(torch.tensor([0.0, 0.5]))
    w = timesteps.inverse_one_minus_t(eps=0.5)  # w = [1/1.5, 1/1.0]
    loss = sl.cfm_loss(model, x_1, noise_fn=torch.zeros_like, t_sampler=sampler, weight=w)
    assert loss.item() == pytest.approx(0.5 * (1 / 1.5 * 1.0 + 1.0 * 4.0))


class _FixedT:
    def __init__(self, t):
        self.t = t

    def __call__(self, n, *, device=None, generator=None):
        return self.t[:n]


def test_path_and_coupling_are_used():
    seen = {}

    def model(x, t):
        seen["x_t"] = x
        return torch.zeros_like(x)

    x_1 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    z = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    sl.cfm_loss(
        model, x_1, noise_fn=lambda x: z, path=sl.CosinePath(), coupling=sl.couplings.exact_ot,
        t_sampler=_FixedT(torch.tensor([1.0, 1.0])),
    )
    assert torch.allclose(seen["x_t"], x_1, atol=1e-6)


def test_bad_model_output_shape_is_named():
    with pytest.raises(ValueError, match=r"model output has shape \[4, 3\], expected \[4, 2\]"):
        sl.cfm_loss(lambda x, t: torch.zeros(4, 3), torch.randn(4, 2))


# --- sources, conditions, stochastic paths ------------------------------------------------------


def test_source_samples_replace_the_noise():
    x_1 = torch.randn(16, 2, dtype=torch.float64)
    x_0 = torch.randn(16, 2, dtype=torch.float64) + 5  # another distribution (translation)
    model = lambda x, t: torch.zeros_like(x)  # noqa: E731
    torch.manual_seed(0)
    a = sl.cfm_loss(model, x_1, x_0=x_0)
    torch.manual_seed(0)
    b = sl.cfm_loss(model, x_1, noise_fn=lambda x: x_0)
    assert torch.equal(a, b)
    assert torch.allclose(a, ((x_1 - x_0) ** 2).mean())  # zero model: the loss is |u_t|^2 = |x_1 - x_0|^2
    with pytest.raises(ValueError, match=r"either as samples x_0= or as noise_fn=, not both"):
        sl.cfm_loss(model, x_1, x_0=x_0, noise_fn=torch.zeros_like)
    with pytest.raises(ValueError, match=r"x_0 gave shape \[3, 2\], expected \[16, 2\]"):
        sl.cfm_loss(model, x_1, x_0=x_0[:3])


def test_keyword_conditions_reach_the_model_and_stay_with_their_data():
    x_1 = torch.randn(8, 2)
    y = torch.randn(8, 3)  # a vector condition per data point

    def model(x, t, y=None, scale=None):
        assert y.shape == (8, 3) and scale == 2.0
        return torch.zeros_like(x)

    loss = sl.cfm_loss(model, x_1, coupling=sl.couplings.exact_ot, y=y, scale=2.0)
    assert torch.isfinite(loss)


def test_the_bridge_path_trains_against_its_own_target():
    # a model that returns exactly the bridge's target for the draws has zero loss: same eps, same t
    path = sl.BrownianBridgePath(sigma=0.5)
    x_1 = torch.randn(32, 2, dtype=torch.float64)
    z = torch.randn(32, 2, dtype=torch.float64)
    torch.manual_seed(1)
    t = torch.rand(32, dtype=torch.float64)
    eps = torch.randn(32, 2, dtype=torch.float64)
    _, u_t = path.interpolate(z, x_1, t, eps)
    torch.manual_seed(1)
    loss = sl.cfm_loss(lambda x, tt: u_t, x_1, x_0=z, path=path)
    assert float(loss) < 1e-24
