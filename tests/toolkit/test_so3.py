"""SO(3): exp/log inverses (near 0 and π), geodesics, the bi-invariant distance, the Haar sampler,
the body-frame target, and a short flow-matching run that finds the dataset's modes."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from straightline import so3

F64 = torch.float64
EYE = torch.eye(3, dtype=F64)


def assert_rotations(R, atol=1e-12):
    """R^T R = I and det R = 1 for every matrix in the batch."""
    gram = R.transpose(-1, -2) @ R
    assert torch.allclose(gram, EYE.to(R.dtype).expand_as(gram), atol=atol, rtol=0)
    assert torch.allclose(torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype), atol=atol, rtol=0)


# rotation vectors with angles drawn from three regimes: tiny, anywhere below π, and close to π
_directions = st.tuples(*[st.floats(-1, 1)] * 3).filter(lambda d: sum(c * c for c in d) > 1e-4)
_angles = st.one_of(
    st.floats(0.0, 1e-6),
    st.floats(0.0, math.pi - 1e-6),
    st.floats(math.pi - 1e-3, math.pi - 1e-6),
)


def _vector(direction, theta):
    d = torch.tensor(direction, dtype=F64)
    return d / d.norm() * theta  # [3]


@settings(max_examples=200, deadline=None)
@given(direction=_directions, theta=_angles)
def test_log_inverts_exp_below_pi(direction, theta):
    w = _vector(direction, theta)
    R = so3.exp(w)
    assert_rotations(R)
    assert torch.allclose(so3.log(R), w, atol=1e-10, rtol=0)
    assert float(so3.angle(R)) == pytest.approx(theta, abs=1e-10)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_exp_inverts_log_on_random_rotations(seed):
    R = so3.random_rotations(20, generator=torch.Generator().manual_seed(seed), dtype=F64)  # [20, 3, 3]
    w = so3.log(R)
    assert (w.norm(dim=-1) <= math.pi + 1e-12).all()
    assert torch.allclose(so3.exp(w), R, atol=1e-12, rtol=0)


def test_exp_and_log_at_the_ends():
    # angle 0 exactly, and rotations by exactly π (where w and -w are both logarithms)
    assert torch.equal(so3.exp(torch.zeros(3, dtype=F64)), EYE)
    assert torch.equal(so3.log(EYE), torch.zeros(3, dtype=F64))
    axes = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1 / 3, 2 / 3, -2 / 3]], dtype=F64)
    R = so3.exp(math.pi * axes)  # [4, 3, 3]
    w = so3.log(R)
    assert torch.allclose(w.norm(dim=-1), torch.full((4,), math.pi, dtype=F64), atol=1e-12)
    assert torch.allclose(w.abs(), (math.pi * axes).abs(), atol=1e-7)
    assert torch.allclose(so3.exp(w), R, atol=1e-12)
    # float32 stays accurate near π too
    w32 = (torch.tensor([0.6, -0.8, 0.0]) * (math.pi - 1e-3)).float()
    assert torch.allclose(so3.log(so3.exp(w32)), w32, atol=1e-4)


def test_hat_is_the_cross_product_and_vee_its_inverse():
    g = torch.Generator().manual_seed(0)
    w, a = torch.randn(2, 10, 3, generator=g, dtype=F64)
    assert torch.allclose((so3.hat(w) @ a[..., None])[..., 0], torch.linalg.cross(w, a), atol=1e-14)
    assert torch.allclose(so3.vee(so3.hat(w)), w, atol=0)
    assert torch.allclose(so3.hat(w).transpose(-1, -2), -so3.hat(w), atol=0)


def _pairs(seed, n=16):
    g = torch.Generator().manual_seed(seed)
    return (so3.random_rotations(n, generator=g, dtype=F64), so3.random_rotations(n, generator=g, dtype=F64), g)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), t=st.floats(0, 1), s=st.floats(0, 1))
def test_geodesic_end_points_and_constant_speed(seed, t, s):
    R_0, R_1, _ = _pairs(seed)
    assert torch.allclose(so3.geodesic(R_0, R_1, 0.0), R_0, atol=1e-12)
    assert torch.allclose(so3.geodesic(R_0, R_1, 1.0), R_1, atol=1e-12)
    R_t, R_s = so3.geodesic(R_0, R_1, t), so3.geodesic(R_0, R_1, s)
    assert_rotations(R_t)
    expected = abs(t - s) * so3.distance(R_0, R_1)  # [n]
    assert torch.allclose(so3.distance(R_t, R_s), expected, atol=1e-9)
    # a per-sample time tensor [B] works like the scalar
    tt = torch.full((R_0.shape[0],), t, dtype=F64)
    assert torch.allclose(so3.geodesic(R_0, R_1, tt), R_t, atol=1e-14)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_distance_is_symmetric_and_bi_invariant(seed):
    R_0, R_1, g = _pairs(seed)
    Q = so3.random_rotations(1, generator=g, dtype=F64)  # [1, 3, 3]
    d = so3.distance(R_0, R_1)
    assert ((d >= 0) & (d <= math.pi)).all()
    assert torch.allclose(so3.distance(R_1, R_0), d, atol=1e-12)
    assert torch.allclose(so3.distance(Q @ R_0, Q @ R_1), d, atol=1e-12)
    assert torch.allclose(so3.distance(R_0 @ Q, R_1 @ Q), d, atol=1e-12)
    assert torch.allclose(so3.distance(R_0, R_0), torch.zeros_like(d), atol=1e-7)
    # it is the Frobenius chord turned into an angle: ||R_0 - R_1||_F^2 = 4 (1 - cos d)
    chord = ((R_0 - R_1) ** 2).sum((-1, -2))
    assert torch.allclose(chord, 4 * (1 - torch.cos(d)), atol=1e-12)


def test_body_frame_velocity_is_constant_along_the_geodesic():
    """dR_t/dt = R_t hat(u) with u = log(R_0^T R_1) at every t (checked by central differences)."""
    R_0, R_1, _ = _pairs(11, n=8)
    u = so3.log(R_0.transpose(-1, -2) @ R_1)  # [8, 3]
    h = 1e-5
    for t in (0.1, 0.5, 0.9):
        R_t = so3.geodesic(R_0, R_1, t)
        dR = (so3.geodesic(R_0, R_1, t + h) - so3.geodesic(R_0, R_1, t - h)) / (2 * h)
        body = so3.vee(R_t.transpose(-1, -2) @ dR)  # [8, 3]
        assert torch.allclose(body, u, atol=1e-8)
        # the spatial-frame angular velocity is R_t u, which is not constant
        spatial = so3.vee(dR @ R_t.transpose(-1, -2))
        assert torch.allclose(spatial, (R_t @ u[..., None])[..., 0], atol=1e-8)


def test_the_cfm_loss_regresses_on_the_body_frame_velocity():
    R_0, R_1, g = _pairs(12, n=32)
    t = torch.rand(32, generator=g, dtype=F64)
    u = so3.log(R_0.transpose(-1, -2) @ R_1)
    seen = {}

    def model(R_flat, t_in):
        seen["R"], seen["t"] = R_flat, t_in
        return torch.zeros(R_flat.shape[0], 3, dtype=R_flat.dtype)

    loss = so3.so3_cfm_loss(model, R_1, R_0=R_0, t=t)
    assert float(loss) == pytest.approx(float((u**2).mean()), rel=1e-12)
    assert seen["R"].shape == (32, 9) and seen["t"] is t
    assert torch.allclose(seen["R"].reshape(32, 3, 3), so3.geodesic(R_0, R_1, t), atol=1e-12)

    def oracle(R_flat, t_in):  # knows the pair: zero loss
        return u

    assert float(so3.so3_cfm_loss(oracle, R_1, R_0=R_0, t=t)) < 1e-24


def test_haar_angles_follow_their_density():
    """The angle of a Haar-uniform rotation has density (1 - cos θ) / π, CDF (θ - sin θ) / π."""
    R = so3.random_rotations(20_000, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert_rotations(R)
    theta = so3.angle(R).numpy()

    def cdf(x):
        return (x - np.sin(x)) / np.pi

    assert stats.kstest(theta, cdf).pvalue > 0.01
    # the test has power: a uniform angle with a uniform axis (not Haar) is rejected outright
    g = torch.Generator().manual_seed(1)
    axis = torch.randn(20_000, 3, generator=g, dtype=F64)
    w = axis / axis.norm(dim=1, keepdim=True) * torch.rand(20_000, 1, generator=g, dtype=F64) * math.pi
    assert stats.kstest(so3.angle(so3.exp(w)).numpy(), cdf).pvalue < 1e-10
    # Haar is also invariant under left multiplication: the angle law of Q R is the same
    Q = so3.exp(torch.tensor([0.3, -1.0, 2.0], dtype=F64))
    assert stats.ks_2samp(theta, so3.distance(Q.expand_as(R), R).numpy()).pvalue > 0.01


def test_isotropic_noise_and_the_dataset():
    g = torch.Generator().manual_seed(3)
    N = so3.isotropic_noise(20_000, 0.2, generator=g, dtype=F64)
    assert_rotations(N)
    # the angle is |w| for w ~ N(0, 0.2^2 I_3): a scaled chi with 3 degrees of freedom
    theta = so3.angle(N).numpy()
    assert stats.kstest(theta / 0.2, stats.chi(3).cdf).pvalue > 0.01
    # isotropic: the rotation axes point in every direction equally (mean axis ~ 0)
    axes = so3.log(N) / torch.from_numpy(theta)[:, None]
    assert float(axes.mean(0).abs().max()) < 4 / math.sqrt(3 * 20_000)

    data = so3.rotation_dataset(3000, seed=0, dtype=F64)
    assert data.shape == (3000, 3, 3)
    assert_rotations(data)
    assert torch.equal(data, so3.rotation_dataset(3000, seed=0, dtype=F64))
    d = so3.distance(data[:, None], so3.ROTATION_MODES[None])  # [3000, 3]
    nearest = d.argmin(1)
    counts = torch.bincount(nearest, minlength=3).double() / 3000
    assert torch.allclose(counts, torch.full((3,), 1 / 3, dtype=F64), atol=0.04)
    # mean distance to the own mode is E|w| = 0.15 sqrt(8 / π) for w ~ N(0, 0.15^2 I_3)
    assert float(d.min(1).values.mean()) == pytest.approx(0.15 * math.sqrt(8 / math.pi), rel=0.03)


def _nearest_mode_distance(R):
    return so3.distance(R[:, None], so3.ROTATION_MODES.to(R.dtype)[None]).min(1)  # values, indices


def test_a_short_training_run_finds_the_modes():
    torch.manual_seed(0)
    data = so3.rotation_dataset(4000, seed=0)  # float32 [4000, 3, 3]
    model = so3.SO3VelocityMLP(hidden=64, depth=3)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(800):
        batch = data[torch.randint(0, len(data), (256,), generator=g)]
        loss = so3.so3_cfm_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    R_0 = so3.random_rotations(1000, generator=torch.Generator().manual_seed(2))
    R_1 = so3.so3_sample(model, R_0, steps=50)
    assert_rotations(R_1, atol=1e-5)
    d_noise, _ = _nearest_mode_distance(R_0)
    d_model, which = _nearest_mode_distance(R_1)
    near_noise, near_model = float((d_noise < 0.5).float().mean()), float((d_model < 0.5).float().mean())
    # uniform noise lands within 0.5 rad of one of three modes with probability 3 (0.5 - sin 0.5) / π ≈ 0.020
    assert near_noise < 0.05
    assert near_model > 0.7, (near_model, float(d_model.mean()))
    assert float(d_model.mean()) < 0.45 < 1.4 < float(d_noise.mean())
    # every mode is found (no collapse onto one of them)
    share = torch.bincount(which[d_model < 0.5], minlength=3).float() / 1000
    assert (share > 0.15).all(), share


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"w must be a tensor of rotation vectors \[..., 3\], got shape \[4, 2\]"):
        so3.exp(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"R must be a tensor of 3 x 3 matrices"):
        so3.log(torch.zeros(4, 9))
    with pytest.raises(ValueError, match=r"n must be a positive integer, got 0"):
        so3.random_rotations(0)
    with pytest.raises(ValueError, match=r"scale must be a finite number >= 0 \(radians\), got -1"):
        so3.isotropic_noise(3, -1)
    with pytest.raises(ValueError, match=r"steps must be a positive integer, got 0"):
        so3.so3_sample(so3.SO3VelocityMLP(), so3.random_rotations(2), steps=0)
    with pytest.raises(ValueError, match=r"model output has shape \[2, 9\], expected \[2, 3\]"):
        so3.so3_cfm_loss(lambda R, t: R, so3.random_rotations(2))
    with pytest.raises(ValueError, match=r"expected rotations of shape \[B, 9\] or \[B, 3, 3\]"):
        so3.SO3VelocityMLP()(torch.zeros(2, 4), torch.zeros(2))
