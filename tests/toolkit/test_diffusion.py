"""The DDPM / DDIM baseline against closed forms: schedules, q(x_k | x_data), exact-ε samplers.

Data N(mu, s^2 I) makes every noised marginal Gaussian, so the exact ε-predictor is known:
x_k ~ N(sqrt(ᾱ) mu, (ᾱ s^2 + 1 - ᾱ) I) and ε̂(x_k) = E[ε | x_k] = sqrt(1 - ᾱ) (x_k - sqrt(ᾱ) mu) / (ᾱ s^2 + 1 - ᾱ).
The probability-flow ODE then maps x_T to mu + s (x_T - sqrt(ᾱ_T) mu) / sqrt(ᾱ_T s^2 + 1 - ᾱ_T),
sample by sample, which DDIM (eta = 0) must approach at first order in the step size.
"""

import math

import pytest
import torch

import straightline as sl
from straightline import diffusion as D
from straightline import metrics
from straightline.data import toy
from straightline.oracles import GaussianMixture
from straightline.paths import LinearPath

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
S = 0.5


def _k_of(t: torch.Tensor, T: int) -> int:
    """The DDPM step behind the network time t_net = 1 - k / T (all samples share one step)."""
    k = round((1 - float(t[0])) * T)
    assert torch.all(t == t[0]) and abs((1 - float(t[0])) * T - k) < 1e-6
    return k


def exact_eps(schedule):
    """The closed-form ε-predictor for data N(MU, S^2 I)."""

    def eps(x, t):
        a = float(schedule.alpha_bar(_k_of(t, schedule.T)))
        return math.sqrt(1 - a) * (x - math.sqrt(a) * MU) / (a * S**2 + 1 - a)  # [B, 2]

    return eps


def oracle_eps(gm: GaussianMixture, schedule):
    """ε̂ from the GaussianMixture oracle: the DDPM marginal is the linear-path marginal at the
    flow time t_k, rescaled by c_k, so ∇ log p_k(x) = score_{t_k}(x / c_k) / c_k and
    ε̂ = -sqrt(1 - ᾱ_k) ∇ log p_k(x)."""

    def eps(x, t):
        k = _k_of(t, schedule.T)
        a, c, t_k = (float(f(k)) for f in (schedule.alpha_bar, schedule.flow_scale, schedule.flow_time))
        score = gm.score(x / c, torch.full((x.shape[0],), t_k, dtype=torch.float64)) / c  # [B, D]
        return (-math.sqrt(1 - a) * score).to(x.dtype)

    return eps


def _normal(n, seed, dim=2):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- schedules ----------------------------------------------------------------------------------


def test_linear_schedule_is_ho_et_al_and_its_cumprod_is_the_running_product():
    sch = D.linear_schedule(1000)
    assert sch.T == 1000 and sch.betas.dtype == torch.float64
    assert float(sch.betas[0]) == pytest.approx(1e-4, rel=1e-12)
    assert float(sch.betas[-1]) == pytest.approx(0.02, rel=1e-12)
    steps = sch.betas.diff()
    assert torch.allclose(steps, torch.full_like(steps, (0.02 - 1e-4) / 999), rtol=1e-9, atol=0)
    assert torch.equal(sch.alphas, 1 - sch.betas)
    running, prods = 1.0, []
    for b in sch.betas.tolist():
        running *= 1 - b
        prods.append(running)
    assert torch.allclose(sch.alphas_cumprod, torch.tensor(prods, dtype=torch.float64), rtol=1e-12, atol=0)
    assert (sch.alphas_cumprod.diff() < 0).all()
    assert float(sch.alphas_cumprod[-1]) == pytest.approx(4.0358e-5, rel=1e-4)
    # other T: betas scaled by 1000 / T, so ᾱ_T stays about the same
    assert float(D.linear_schedule(100).betas[-1]) == pytest.approx(0.2, rel=1e-12)
    assert float(D.linear_schedule(100).alphas_cumprod[-1]) == pytest.approx(2.039e-5, rel=1e-3)


def test_cosine_schedule_matches_its_formula_and_is_capped():
    T, s = 1000, 0.008
    sch = D.cosine_schedule(T)

    def f(k):
        return math.cos(0.5 * math.pi * (k / T + s) / (1 + s)) ** 2

    expected = torch.tensor([f(k) / f(0) for k in range(1, T)], dtype=torch.float64)  # k = 1..T-1
    assert torch.allclose(sch.alphas_cumprod[:-1], expected, rtol=1e-9, atol=1e-15)
    assert torch.allclose(sch.alphas_cumprod, torch.cumprod(1 - sch.betas, 0), rtol=1e-12, atol=0)
    # f(T) = 0 would make β_T = 1: the cap 0.999 applies at the last step only
    assert float(sch.betas[-1]) == 0.999 and float(sch.betas[:-1].max()) < 0.999
    assert float(sch.alphas_cumprod[-1]) == pytest.approx(0.001 * float(expected[-1]), rel=1e-12)
    assert (sch.alphas_cumprod.diff() < 0).all()
    assert float(sch.alphas_cumprod[-1]) == pytest.approx(2.4288e-9, rel=1e-4)


def test_flow_time_puts_ddpm_states_on_the_linear_path():
    sch = D.linear_schedule(1000)
    k = torch.tensor([0, 1, 10, 250, 500, 999, 1000])
    t = sch.flow_time(k)
    assert float(t[0]) == 1.0 and float(sch.alpha_bar(0)) == 1.0
    assert float(t[-1]) == pytest.approx(0.006313, rel=1e-3)  # never exactly 0: ᾱ_T > 0
    assert (t.diff() < 0).all()  # k up = towards noise = flow time down
    a = sch.alpha_bar(k)
    # same signal-to-noise ratio: (t / (1 - t))^2 = ᾱ / (1 - ᾱ), for k >= 1
    snr_t = (t[1:] / (1 - t[1:])) ** 2
    assert torch.allclose(snr_t, a[1:] / (1 - a[1:]), rtol=1e-10)
    # and x_k / c_k is exactly the linear-path state at t_k with the same noise
    x_data, eps = _normal(7, 1), _normal(7, 2)
    kk = torch.tensor([1, 5, 100, 400, 700, 950, 1000])
    x_k = D.q_sample(sch, x_data, kk, eps)  # [7, 2]
    x_t, _ = LinearPath().interpolate(eps, x_data, sch.flow_time(kk))  # x_0 = noise, x_1 = data
    assert torch.allclose(x_k / sch.flow_scale(kk)[:, None], x_t, atol=1e-14)
    assert torch.allclose(D.network_time(kk, 1000), 1 - kk.double() / 1000)


def test_q_sample_moments_by_monte_carlo():
    sch = D.cosine_schedule(1000)
    n = 200_000
    x_data = torch.tensor([2.0, -1.0], dtype=torch.float64).expand(n, 2)
    for k in (1, 300, 700, 1000):
        x_k = D.q_sample(sch, x_data, torch.full((n,), k), generator=torch.Generator().manual_seed(k))
        a = float(sch.alpha_bar(k))
        mean_se = math.sqrt((1 - a) / n)
        assert (x_k.mean(0) - math.sqrt(a) * x_data[0]).abs().max() < 4 * mean_se
        var_se = (1 - a) * math.sqrt(2 / n)
        assert (x_k.var(0) - (1 - a)).abs().max() < 4 * var_se


def test_oracle_eps_from_the_gaussian_mixture_equals_the_closed_form():
    sch = D.linear_schedule(1000)
    gm = GaussianMixture(MU[None], S)
    closed, via_oracle = exact_eps(sch), oracle_eps(gm, sch)
    x = _normal(50, 3) * 1.5
    for k in (1, 37, 500, 999, 1000):
        t = torch.full((50,), 1 - k / 1000, dtype=torch.float64)
        assert torch.allclose(via_oracle(x, t), closed(x, t), atol=1e-10)


# --- samplers with the exact ε ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_1000_step_ancestral_sampler_reproduces_the_gaussian(name):
    sch = D.make_schedule(name, 1000)
    n = 20_000
    traj = D.ddpm_sample(exact_eps(sch), _normal(n, 0), schedule=sch, generator=torch.Generator().manual_seed(1))
    assert traj.nfe == 1000
    mean_err = (traj.x.mean(0) - MU).abs().max().item()
    std_err = (traj.x.std(0) - S).abs().max().item()
    # measured: linear 0.0040 / 0.0016, cosine 0.0035 / 0.0018 (mean / std error); SEs 0.0035 / 0.0025
    assert mean_err < 4 * S / math.sqrt(n), mean_err
    assert std_err < 4 * S / math.sqrt(2 * n), std_err


@pytest.mark.parametrize("name,rms50", [("linear", 0.0284), ("cosine", 0.0155)])
def test_ddim_converges_to_the_probability_flow_map_at_first_order(name, rms50):
    sch = D.make_schedule(name, 1000)
    x_T = _normal(2000, 0)
    a_T = float(sch.alphas_cumprod[-1])
    exact = MU + (x_T - math.sqrt(a_T) * MU) * S / math.sqrt(a_T * S**2 + 1 - a_T)  # [B, 2]
    rms = {}
    for steps in (50, 100, 200):
        x = D.ddim_sample(exact_eps(sch), x_T, schedule=sch, steps=steps).x
        rms[steps] = float(((x - exact) ** 2).mean().sqrt())
    assert rms[50] == pytest.approx(rms50, rel=0.05)
    assert 1.8 < rms[50] / rms[100] < 2.2 and 1.8 < rms[100] / rms[200] < 2.2, rms


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_ddim_50_steps_reproduces_the_mean_and_nearly_the_std(name):
    sch = D.make_schedule(name, 1000)
    n = 20_000
    traj = D.ddim_sample(exact_eps(sch), _normal(n, 5), schedule=sch, steps=50)
    assert traj.nfe == 50
    assert (traj.x.mean(0) - MU).abs().max() < 4 * S / math.sqrt(n)
    # the std is off by DDIM's first-order discretisation error, not by Monte Carlo:
    # measured -5.8% (linear) and -3.1% (cosine) at 50 steps, shrinking as 1 / steps
    rel = (traj.x.std(0) / S - 1).abs().max().item()
    assert rel < 0.07, rel


def test_ddim_eta0_is_deterministic_and_eta1_is_ancestral_with_posterior_variance():
    sch = D.cosine_schedule(1000)
    eps = exact_eps(sch)
    x_T = _normal(500, 4)
    a = D.ddim_sample(eps, x_T, schedule=sch, steps=20).x
    b = D.ddim_sample(eps, x_T, schedule=sch, steps=20, generator=torch.Generator().manual_seed(9)).x
    assert torch.equal(a, b)
    c = D.ddim_sample(eps, x_T, schedule=sch, steps=20, eta=1.0, generator=torch.Generator().manual_seed(9)).x
    d = D.ddim_sample(eps, x_T, schedule=sch, steps=20, eta=1.0, generator=torch.Generator().manual_seed(10)).x
    assert (c - d).abs().mean() > 0.05
    g = torch.Generator().manual_seed(9)
    e = D.ddpm_sample(eps, x_T, schedule=sch, steps=20, variance="posterior", generator=g).x
    assert torch.allclose(c, e, atol=1e-9)


@pytest.mark.parametrize("steps", [1, 7, 50, 1000])
def test_nfe_counts_and_trajectories(steps):
    sch = D.linear_schedule(1000)
    calls = []

    def eps(x, t):
        calls.append(float(t[0]))
        return torch.zeros_like(x)

    x_T = _normal(3, 0)
    for sampler in (D.ddpm_sample, D.ddim_sample):
        calls.clear()
        traj = sampler(eps, x_T, schedule=sch, steps=steps, keep_path=True)
        assert traj.nfe == len(calls) == steps
        assert traj.xs.shape == (steps + 1, 3, 2) and torch.equal(traj.xs[0], x_T)
        assert int(traj.ks[0]) == 1000 and int(traj.ks[-1]) == 0 and (traj.ks.diff() < 0).all()
        assert calls[0] == 0.0  # network time of k = T, the noise end
        assert len(set(calls)) == steps and all(0 <= c < 1 for c in calls)
        flow = traj.as_flow()
        assert (flow.ts.diff() > 0).all() and float(flow.ts[-1]) == 1.0 and flow.nfe == steps
        assert torch.allclose(flow.xs[-1], traj.x)  # c_0 = 1
    if steps == 7:  # evenly spaced, rounded to the nearest step
        assert traj.ks.tolist() == [1000, 857, 714, 571, 429, 286, 143, 0]
    short = D.ddim_sample(eps, x_T, schedule=sch, steps=steps)
    assert short.xs.shape == (2, 3, 2) and short.ks.tolist() == [1000, 0]


# --- training -------------------------------------------------------------------------------------


def test_trained_ddpm_on_8gaussians_beats_the_noise_by_far():
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=64)
    result = D.train_ddpm(model, "8gaussians", steps=800, lr=3e-3, seed=0, progress=False)
    sch = D.linear_schedule(1000)
    n = 1000
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    data = toy("8gaussians", n, seed=2)
    ancestral = D.ddpm_sample(result.ema_model, x_T, schedule=sch, generator=torch.Generator().manual_seed(3)).x
    ddim = D.ddim_sample(result.ema_model, x_T, schedule=sch, steps=50).x
    w_noise, w_ddpm, w_ddim = metrics.w2(x_T, data), metrics.w2(ancestral, data), metrics.w2(ddim, data)
    # measured: noise 1.341, DDPM-1000 0.48, DDIM-50 0.46; the data's own floor is 0.33
    assert w_noise > 1.3
    assert w_ddpm < 0.6 and w_ddim < 0.6, (w_ddpm, w_ddim, w_noise)
    assert sum(result.losses[-50:]) < 0.6 * sum(result.losses[:50])


def test_clip_rescues_ddim_on_the_cosine_schedule():
    """ᾱ_T ≈ 2e-9: a trained network's ε error is amplified ~640x in DDIM's first step."""
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=64)
    result = D.train_ddpm(model, "8gaussians", steps=400, schedule="cosine", lr=3e-3, seed=0, progress=False)
    sch = D.cosine_schedule(1000)
    x_T = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
    data = toy("8gaussians", 1000, seed=2)
    raw = metrics.w2(D.ddim_sample(result.ema_model, x_T, schedule=sch, steps=50).x, data)
    clipped = metrics.w2(D.ddim_sample(result.ema_model, x_T, schedule=sch, steps=50, clip=4.0).x, data)
    # measured: 37.5 without clip, 0.54 with
    assert raw > 5 and clipped < 0.7, (raw, clipped)


def test_train_ddpm_is_bit_identical_per_seed_and_leaves_the_global_rng_alone():
    def run(seed):
        torch.manual_seed(5)
        model = sl.models.MLP(dim=2, hidden=16, depth=2)
        return D.train_ddpm(model, "moons", steps=20, batch_size=32, schedule="cosine", seed=seed, progress=False)

    a, b = run(3), run(3)
    assert a.losses == b.losses
    assert all(torch.equal(p, q) for p, q in zip(a.ema_model.parameters(), b.ema_model.parameters()))
    assert run(4).losses != a.losses
    model = sl.models.MLP(dim=2, hidden=16, depth=1)
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    D.train_ddpm(model, "moons", steps=3, batch_size=8, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_train_ddpm_class_conditional_with_label_dropout():
    seen = []

    class Spy(sl.models.MLP):
        def forward(self, x, t, y=None):
            seen.append(y)
            return super().forward(x, t, y)

    torch.manual_seed(0)
    data = torch.randn(64, 2)
    labels = torch.arange(64) % 3
    model = Spy(dim=2, hidden=16, depth=1, num_classes=3)
    result = D.train_ddpm(model, data, steps=10, batch_size=32, labels=labels, label_dropout=0.5, progress=False)
    assert len(result.losses) == 10 and all(math.isfinite(v) for v in result.losses)
    ys = torch.cat(seen)
    assert set(ys.tolist()) == {0, 1, 2, 3}  # 3 = the null class, from the dropout
    assert 0.35 < (ys == 3).float().mean() < 0.65


# --- argument checks ------------------------------------------------------------------------------


def _zero(x, t):
    return torch.zeros_like(x)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: D.linear_schedule(10), r"T must be an integer in 21\.\.100000 for the linear schedule.*got 10"),
        (lambda: D.cosine_schedule(1), r"T must be an integer in 2\.\.100000, got 1"),
        (lambda: D.make_schedule("quadratic"), r"unknown schedule 'quadratic'; accepted: linear, cosine"),
        (lambda: D.linear_schedule().alpha_bar(1001), r"k must lie in 0\.\.1000, got values in \[1001, 1001\]"),
        (lambda: D.ddim_sample(_zero, torch.randn(4, 2), schedule=D.linear_schedule(), steps=1001),
         r"steps must be an integer in 1\.\.1000, got 1001"),
        (lambda: D.ddim_sample(_zero, torch.randn(4, 2), schedule=D.linear_schedule(), steps=0),
         r"steps must be an integer in 1\.\.1000, got 0"),
        (lambda: D.ddim_sample(_zero, torch.randn(4, 2), schedule=D.linear_schedule(), steps=10, eta=1.5),
         r"eta must be a number in \[0, 1\], got 1\.5"),
        (lambda: D.ddpm_sample(_zero, torch.randn(4, 2), schedule=D.linear_schedule(), variance="fixed"),
         r"unknown variance 'fixed'; accepted: beta, posterior"),
        (lambda: D.ddpm_sample(_zero, torch.randn(4, 2), schedule=3), r"schedule must be a NoiseSchedule or .linear. \| .cosine., got int"),
        (lambda: D.ddim_sample(_zero, torch.randn(4, 2), schedule=D.linear_schedule(), steps=5, clip=-1.0),
         r"clip must be None or a number > 0, got -1\.0"),
        (lambda: D.train_ddpm(sl.models.MLP(hidden=8, depth=1), "moons", steps=0, progress=False),
         r"steps must be a positive integer, got 0"),
        (lambda: D.train_ddpm(sl.models.MLP(hidden=8, depth=1), "moons", steps=1, T=5, progress=False),
         r"T must be an integer in 21\.\.100000"),
        (lambda: D.train_ddpm(sl.models.MLP(hidden=8, depth=1), "moons", steps=1, label_dropout=0.1, progress=False),
         r"label_dropout needs a conditional model"),
        (lambda: D.train_ddpm(sl.models.MLP(hidden=8, depth=1), "moons", steps=1, ema=1.0, progress=False),
         r"ema must be None or a number in \[0, 1\), got 1\.0"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_samplers_take_a_schedule_by_name():
    """`schedule="linear"` (with T, default 1000) is the same schedule train_ddpm builds by name."""
    def eps_model(x, t):  # the exact ε for data = N(0, I): the noised marginal is N(0, I) as well
        return torch.zeros_like(x)

    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    by_name = D.ddim_sample(eps_model, x_T, schedule="cosine", steps=10, T=200).x
    by_object = D.ddim_sample(eps_model, x_T, schedule=D.cosine_schedule(200), steps=10).x
    assert torch.equal(by_name, by_object)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    a = D.ddpm_sample(eps_model, x_T, schedule="linear", steps=20, generator=g1).x
    b = D.ddpm_sample(eps_model, x_T, schedule=D.linear_schedule(1000), steps=20, generator=g2).x
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown schedule 'quadratic'"):
        D.ddim_sample(eps_model, x_T, schedule="quadratic", steps=10)
