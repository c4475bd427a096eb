"""What the course's simulations compute: every frame comes from a shipped model run by the toolkit.

Each simulation is one module-level function `f(sims, params) -> dict` in the registry
`SIMULATIONS` (name -> function); its parameter model (pydantic, with bounds, in `simparams.py`)
is the one validation at the edge: the web layer exposes it as query parameters and answers 422
naming the parameter and its range. Results are deterministic given the parameters (the seed is
one of them); the web layer caches them as bytes (`web/sim_runtime.py`), so nothing here caches a
whole result. `Simulations.run` serves a result shipped precomputed (`precomputed.py`, keyed by
`Simulations.cache_key`) before computing one. Parts that do not depend on every parameter are
memoised on their own: the mixture's gradient comparison (not on t), the reflow rounds'
measurements (not on the round), the Break-It healthy sampler's W2 (not on the faults) and the
log-density heat maps (not on the seed).

A W2 is reported beside the floor band at the same sample size and the caption's words for it
(`floors.py`: one definition of the floor for the whole course).

Arrays travel as `{"shape": [...], "scale": s, "data": base64(int16 little-endian)}`: value =
int / s. At scale 1000 a 2-D particle keeps 0.001 of precision, far below a canvas pixel.
"""

from __future__ import annotations

import base64
import copy
import functools
import math
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

import straightline as sl
from straightline.faults import FAULTS, apply_faults

from . import precomputed
from .floors import floor_band, floor_size, w2_words
from .simparams import (  # noqa: F401 - re-exported: the parameter models live without torch
    PARAMS,
    BreakItParams,
    CurvedParams,
    DigitsParams,
    EulerParams,
    FaultName,
    FieldParams,
    FlowMapJumpsParams,
    FlowMapNFEParams,
    GuidedParams,
    LogDensityParams,
    MixtureParams,
    ParticlesParams,
    ReflowParams,
    RotationParams,
    SideBySideParams,
    SimParams,
    SolverParams,
)

__all__ = [
    "Simulations", "SIMULATIONS", "PARAMS", "ParticlesParams", "DigitsParams", "CurvedParams", "FieldParams",
    "EulerParams", "BreakItParams", "SolverParams", "MixtureParams", "LogDensityParams", "ReflowParams",
    "GuidedParams", "RotationParams", "SideBySideParams", "FlowMapNFEParams", "FlowMapJumpsParams", "encode",
]

assert set(FaultName.__args__) == set(FAULTS)  # the API's choices are the toolkit's registry

# --- seeds -----------------------------------------------------------------------------------------
# A simulation draws several independent things from the one seed a learner picks: the noise its
# particles start from (`seed` itself) and, from other streams, the data they are compared with.
# Each other stream adds its own offset so that no two draws of one request share a stream; the
# offsets are all different, and their values are fixed because changing one changes the pictures.
DATA_SEED = 1_000_003  # data samples (W2 references, drawn clusters): far from any noise seed
CURVED_PAIR_SEED = 11  # curved-vs-straight: the data end of each noise-data pair
BREAK_IT_DATA_SEED = 7  # euler-faults: the data sample handed to the faults (none of today's reads it)
REFLOW_EVAL_SEED = 101  # reflow-straightening: the noise behind every round's measurements
SIDE_EVAL_SEED = 211  # side-by-side: the noise behind each model's W2 (beside the drawn particles)
KDE_SEED = 424_242  # the fixed sample behind the moons' kernel density estimate (no learner seed)
ROTATION_DATA_SEED = 7  # the rotation dataset sample the flow's distances are compared with
PARTNER_SEED = 313  # particles-flow: the data half of the training minibatch whose pairs are shown
UNDER_PANEL = 400  # data points drawn faintly under the 2-D panels that show no particles of their own
PARTNERS = 150  # particles-flow: the first particles, one training minibatch, whose partners are sent

# --- sizes and bounds ------------------------------------------------------------------------------
EVAL_POINTS = 2000  # at most this many points enter a W2 (rounded down to a size `floors.py` tabulates)
KEEP_PATH_STEPS = 100  # Euler runs keep every state up to this many steps (beyond: the end only)
MAX_SPEED = 30.0  # velocities and broken particles are clamped to ±this before encoding (int16 at scale 1000)
PIXEL_RANGE = 3.0  # digit frames are clamped to ±this
REFERENCE_STEPS = 20  # RK4 steps of the accurate route (error ~1e-5 on the learned fields)
FINE_GRID = 64  # points per side of the grid on which the mixture's agreement is weighted
LOG_DENSITY_DATA = 500  # data points on which the model's log p is compared with the truth
LOG_FLOOR = -60.0  # heat maps clamp log p below this (the colour scale stops far above it)
LOG_CEILING = 5.0  # and above this
LOG_SCALE = 500.0  # heat maps travel at this scale (log p to 0.002)
REFLOW_ROUNDS = ("8gaussians-independent", "8gaussians-reflow1", "8gaussians-reflow2", "8gaussians-reflow3")
REFLOW_EVAL = 1000  # noise points for every round's straightness and one-step W2
SIDE_FRAMES = 50  # steps kept per path in side-by-side and rotation-flow (all of them up to 50 steps)
SIDE_EVAL = 1000  # points behind side-by-side's W2
SIDE_DIGITS = 16  # side-by-side on the digits: images drawn per sampler
SIDE_DIGIT_EVAL = 300  # and digits behind each sampler's Fréchet distance (fixed noise, the same for every seed)
SIDE_DIGIT_EVAL_SEED = 223  # that fixed noise
SIDE_DIGIT_MODELS = ("digits", "digits-ddpm")  # the flow model (Euler) and the ε-model (DDIM) on the digits
FLOWMAP_EVAL_SEED = 307  # flowmap-nfe: the noise behind each sampler's W2 (beside the drawn particles)
FLOWMAP_EVAL = 1000  # points behind flowmap-nfe's W2
#: flowmap-nfe's samplers: (key, shipped model, velocity field sampled by Euler or flow map that jumps)
FLOWMAP_SAMPLERS = (("fm", "moons-independent", "velocity"), ("reflow", "moons-reflow1", "velocity"),
                    ("shortcut", "moons-shortcut", "flowmap"), ("meanflow", "moons-meanflow", "flowmap"))
JUMP_PATH_STEPS = 200  # RK4 steps of flowmap-jumps' reference paths (error far below a pixel)
NEAR_A_MODE = 0.5  # radians; about 99 % of rotation_dataset lies this close to its mode
KDE_POINTS, KDE_BANDWIDTH = 8000, 0.08
SOLVER_STEPS = (2, 4, 8, 16, 32, 64)
SOLVER_ORDER = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}  # fixed-step methods and their orders
DOPRI5_TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)

#: the `two_clusters` toy dataset as a Gaussian mixture (`straightline.data.toy` defines both)
TWO_CLUSTERS = sl.oracles.toy_mixture("two_clusters")
#: `8gaussians` likewise
EIGHT_GAUSSIANS = sl.oracles.toy_mixture("8gaussians")
MIXTURES = {"two_clusters": TWO_CLUSTERS, "8gaussians": EIGHT_GAUSSIANS}


def encode(x: Tensor | np.ndarray, scale: float = 1000.0) -> dict[str, Any]:
    """A float array as base64 int16 at the given scale (values must fit in ±32767 / scale)."""
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, Tensor) else x, dtype=np.float64)
    q = np.clip(np.rint(a * scale), -32767, 32767).astype("<i2")
    return {"shape": list(a.shape), "scale": scale, "data": base64.b64encode(q.tobytes()).decode("ascii")}


def _r(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def clamp(x: Tensor) -> Tensor:
    """Velocities or particles bounded to ±MAX_SPEED, so that they encode (a broken sampler can explode)."""
    return x.clamp(-MAX_SPEED, MAX_SPEED)


def grid_points(extent: float, n: int) -> Tensor:
    """The n x n grid over [-extent, extent]^2 as points [n^2, 2], row by row from the lowest y."""
    axis = torch.linspace(-extent, extent, n)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)  # [n^2, 2]


def noise(n: int, seed: int, shape: tuple[int, ...] = (2,)) -> Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


def data(dataset: str, n: int, seed: int) -> Tensor:
    return sl.data.toy(dataset, n, seed=DATA_SEED + seed)


def euler(v: Callable, x_0: Tensor, steps: int) -> sl.Trajectory:
    """Euler from t = 0 to 1, every state kept for runs of at most KEEP_PATH_STEPS steps."""
    return sl.integrate(v, x_0, steps=steps, keep_path=steps <= KEEP_PATH_STEPS)


def times(traj: sl.Trajectory) -> list[float]:
    return [_r(t) for t in traj.ts.tolist()]


class Simulations:
    """The shipped models (name -> module) and what the simulations keep between requests."""

    def __init__(self, models: dict[str, nn.Module], *, eval_points: int = EVAL_POINTS):
        self.models = models
        self.eval_points = eval_points

    def run(self, name: str, params: SimParams | dict | None = None) -> dict:
        """The simulation `name` for `params` (a params model, or a dict validated into one): the
        shipped precomputed result when there is one, else computed now."""
        params = self.params_model(name, params)
        return precomputed.lookup(self.cache_key(name, params)) or self.compute(name, params)

    @staticmethod
    def params_model(name: str, params: SimParams | dict | None) -> SimParams:
        """`params` validated into the parameter model of simulation `name`."""
        if name not in SIMULATIONS:
            raise ValueError(f"unknown simulation {name!r}; accepted: {', '.join(SIMULATIONS)}")
        cls = PARAMS[name]
        return params if isinstance(params, cls) else cls.model_validate(params or {})

    @staticmethod
    def cache_key(name: str, params: SimParams) -> str:
        """`name|params-json`: the key of the shipped precomputed table (`precomputed.py`)."""
        return f"{name}|{params.model_dump_json()}"

    def compute(self, name: str, params: SimParams) -> dict:
        """The result, computed now from the models (no shipped table)."""
        return {"sim": name, "params": params.model_dump(), **SIMULATIONS[name](self, params)}

    def model(self, dataset: str, coupling: str = "independent") -> nn.Module:
        return self.models[f"{dataset}-{coupling}"]

    def w2(self, x: Tensor, dataset: str, seed: int) -> dict[str, Any]:
        """W2 of the first n particles of x [N, 2] to n fresh data points, beside the floor band at
        that n (n: the largest size `floors.py` tabulates within min(N, eval_points)) and the
        caption's words for it."""
        n = floor_size(min(len(x), self.eval_points))
        w = sl.metrics.w2(x[:n], data(dataset, n, seed))
        band = floor_band(dataset, n)
        return {"w2": _r(w), "floor": _r(band.mean), "floor_low": _r(band.low), "floor_high": _r(band.high),
                "n": n, "words": w2_words(w, band)}

    @functools.lru_cache(maxsize=64)  # noqa: B019 - a few entries per instance; instances live as long as the app
    def healthy_w2(self, dataset: str, coupling: str, particles: int, steps: int, seed: int) -> dict[str, Any]:
        """Break-It: the healthy Euler sampler's W2 for one setting, measured once whichever faults are on."""
        return self.w2(euler(self.model(dataset, coupling), noise(particles, seed), steps).x, dataset, seed)

    @functools.lru_cache(maxsize=32)  # noqa: B019 - as above
    def density_maps(self, dataset: str, coupling: str, grid: int, steps: int, extent: float) -> dict[str, Any]:
        """The log-density heat maps (encoded) of one setting; they do not depend on the seed."""
        points = grid_points(extent, grid)  # [grid^2, 2], row 0 = lowest y
        with torch.enable_grad():
            model_lp = sl.log_prob(self.model(dataset, coupling), points, steps=steps, method="rk4", estimator="exact")
        true_lp = _true_log_density(dataset)[0](points).float()  # [grid^2]
        return {"model": _heat_map(model_lp, grid), "true": _heat_map(true_lp, grid)}

    @functools.lru_cache(maxsize=64)  # noqa: B019 - as above
    def side_digit_quality(self, steps: int) -> dict[str, dict[str, Any]]:
        """Side-by-side on the digits: the digit FD of each sampler with `steps` network calls on
        SIDE_DIGIT_EVAL images from fixed noise (so it depends on the steps alone), beside the floor."""
        flow_name, eps_name = SIDE_DIGIT_MODELS
        x_0 = noise(SIDE_DIGIT_EVAL, SIDE_DIGIT_EVAL_SEED, (1, 8, 8))  # [n, 1, 8, 8]
        flow = sl.integrate(self.models[flow_name], x_0, steps=steps).x
        ddim = sl.diffusion.ddim_sample(self.models[eps_name], x_0, schedule=_ddpm_schedule(), steps=steps).x
        return {"flow": _fd_quality(flow), "diffusion": _fd_quality(ddim)}

    @functools.lru_cache(maxsize=16)  # noqa: B019 - a few entries per instance; instances live as long as the app
    def reflow_rows(self, seed: int) -> list[dict]:
        """Every reflow round's straightness and one-step W2 on the same noise (whichever round is drawn)."""
        x_0 = noise(REFLOW_EVAL, seed + REFLOW_EVAL_SEED)
        rows = []
        for k, name in enumerate(REFLOW_ROUNDS):
            model = self.models[name]
            one = sl.integrate(model, x_0, steps=1).x
            rows.append({
                "round": k,
                "model_name": name,
                "straightness": _r(sl.metrics.straightness(model, x_0, steps=100), 3),
                "one_step": self.w2(one, "8gaussians", seed),
            })
        return rows


# --- the simulations ---------------------------------------------------------------------------------
def particles_flow(sims: Simulations, p: ParticlesParams) -> dict:
    model = sims.model(p.dataset, p.coupling)
    x_0 = noise(p.particles, p.seed)  # [particles, 2]
    traj = sl.integrate(model, x_0, steps=p.steps, keep_path=True)
    return {
        "ts": times(traj),
        "frames": encode(traj.xs),  # [steps + 1, particles, 2]
        "data": encode(data(p.dataset, min(p.particles, 1000), p.seed)),
        "partners": encode(training_partners(x_0[:PARTNERS], p.dataset, p.coupling, p.seed)),  # [<= 150, 2]
        "nfe": traj.nfe,
    }


def training_partners(x_0: Tensor, dataset: str, coupling: str, seed: int) -> Tensor:
    """The data point each noise point is paired with in one training minibatch of len(x_0) pairs:
    as drawn (independent), or by the exact optimal-transport assignment of the batch."""
    x_1 = data(dataset, len(x_0), seed + PARTNER_SEED)  # [B, 2]
    if coupling == "independent":
        return x_1
    perm = sl.couplings.exact_ot_permutation(x_0, x_1)  # x_0[perm[j]] goes with x_1[j]
    partners = torch.empty_like(x_1)
    partners[perm] = x_1
    return partners


def digit_emerging(sims: Simulations, p: DigitsParams) -> dict:
    model = sims.models["digits"]
    x_0 = noise(p.images, p.seed, (1, 8, 8))
    if p.label is None:
        v = model
    else:
        y = torch.full((p.images,), p.label, dtype=torch.long)
        v = lambda x, t: model(x, t, y)  # noqa: E731
    traj = sl.integrate(v, x_0, steps=p.steps, keep_path=True)
    return {
        "ts": times(traj),
        "frames": encode(traj.xs[:, :, 0].clamp(-PIXEL_RANGE, PIXEL_RANGE)),  # [steps + 1, images, 8, 8]
        "nfe": traj.nfe,
    }


def curved_vs_straight(sims: Simulations, p: CurvedParams) -> dict:
    """Per-pair paths (closed form) on the straight and the cosine path, and the learned flow.

    For one noise-data pair the conditional velocity is a known function of t: constant on
    the straight line (Euler is exact at any step count), turning on the cosine arc (Euler
    cuts the corner). The learned flow averages over pairs; its coupling decides how curved
    it is.
    """
    x_0 = noise(p.particles, p.seed)
    x_1 = data(p.dataset, p.particles, p.seed + CURVED_PAIR_SEED)
    out: dict[str, Any] = {"conditional": {}, "learned": {}}
    for label, path in (("straight", sl.LinearPath()), ("curved", sl.CosinePath())):
        def u(x: Tensor, t: Tensor, path=path) -> Tensor:  # the pair's own velocity at time t
            tb = t[:, None]
            return path.d_alpha(tb) * x_1 + path.d_sigma(tb) * x_0

        exact = path.sample(x_0, x_1, torch.ones(len(x_0))).x_t
        out["conditional"][label] = _compare(u, x_0, p.steps, exact=exact)
    out["learned"] = {"coupling": p.coupling, **_compare(sims.model(p.dataset, p.coupling), x_0, p.steps)}
    return out


def _compare(v: Callable, x_0: Tensor, steps: int, exact: Tensor | None = None) -> dict:
    # the reference route: RK4 with 20 steps, far more accurate than any Euler run shown (its
    # error is ~1e-5 on the learned fields, Euler's at 100 steps ~1e-2), at a fifth of the cost
    accurate = sl.integrate(v, x_0, steps=REFERENCE_STEPS, method="rk4", keep_path=True)
    coarse = sl.integrate(v, x_0, steps=steps, keep_path=True)
    end = exact if exact is not None else accurate.x
    return {
        "reference_ts": times(accurate),
        "reference": encode(accurate.xs),  # [21, particles, 2]
        "euler_ts": times(coarse),
        "euler": encode(coarse.xs),  # [steps + 1, particles, 2]
        "euler_error": _r(float((coarse.x - end).norm(dim=1).mean())),
    }


def mixture_oracle(sims: Simulations, p: MixtureParams) -> dict:
    """Chapter 3: the closed-form marginal velocity of the two-cluster mixture beside the field
    the shipped model learned from pair velocities alone, and Monte Carlo estimates of the CFM
    and FM loss gradients for one set of network weights.

    `two_clusters` is exactly the mixture 1/2 N((-2, 0), 0.35^2 I) + 1/2 N((2, 0), 0.35^2 I), so
    its marginal velocity u_t(x) = E[x_1 - x_0 | x_t = x] is known in closed form.
    """
    oracle, model = TWO_CLUSTERS, sims.model("two_clusters", "independent")
    points = grid_points(p.extent, p.grid)  # [grid^2, 2]
    t = torch.full((len(points),), p.t)
    with torch.no_grad():
        u = oracle.velocity(points, t).float()  # [grid^2, 2]
        v = model(points, t)  # [grid^2, 2]
        density = oracle.log_prob(points, t).exp()  # [grid^2]
    return {
        "t": p.t,
        "points": encode(points),
        "oracle": encode(clamp(u)),
        "model": encode(clamp(v)),
        "data": encode(data("two_clusters", UNDER_PANEL, p.seed)),  # drawn faintly under both panels
        "density": encode(density / density.max(), scale=10000.0),
        "agreement": _field_agreement(model, p),
        "gradients": _gradient_agreement(p.seed, p.samples),
        "model_name": "two_clusters-independent",
        "mixture": {"means": oracle.means.tolist(), "stds": oracle.stds.tolist()},
    }


def _field_agreement(model: nn.Module, p: MixtureParams) -> dict[str, float]:
    """Agreement of the model with the oracle where the probability is: each point of a fine grid
    weighted by p_t(x)."""
    fine = grid_points(p.extent, FINE_GRID)  # [64^2, 2]
    ft = torch.full((len(fine),), p.t)
    with torch.no_grad():
        w = TWO_CLUSTERS.log_prob(fine, ft).exp().float()  # [64^2]
        fu, fv = TWO_CLUSTERS.velocity(fine, ft).float(), model(fine, ft)  # [64^2, 2] each
    rel = float(((w * (fv - fu).pow(2).sum(1)).sum() / (w * fu.pow(2).sum(1)).sum()).sqrt())
    cos = float((w * torch.nn.functional.cosine_similarity(fv, fu, dim=1, eps=1e-8)).sum() / w.sum())
    return {"relative_error": _r(rel, 3), "cosine": _r(cos, 3)}


def _seeded_mlp(g: torch.Generator) -> nn.Module:
    """The MLP with PyTorch's default Linear initialisation, drawn from `g`."""
    net = sl.models.MLP(dim=2, hidden=128, depth=3)
    with torch.no_grad():
        for layer in net.net:
            if isinstance(layer, nn.Linear):
                bound = 1 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=g)
                layer.bias.uniform_(-bound, bound, generator=g)
    return net


@functools.lru_cache(maxsize=64)  # independent of t: sliding t reuses it
def _gradient_agreement(seed: int, samples: int) -> list[dict]:
    """The CFM and FM loss gradients for the same weights and the same samples (x_0, x_1, t):
    their targets differ (x_1 - x_0 against u_t(x_t)), their gradients agree in expectation, and
    the Monte Carlo estimates approach each other as the sample grows."""
    g = torch.Generator().manual_seed(seed)
    net = _seeded_mlp(g)
    params = [q for q in net.parameters() if q.requires_grad]
    sizes = sorted({max(256, samples // 16), max(256, samples // 4), samples})
    return [_gradient_row(net, params, n, g) for n in sizes]


def _gradient_row(net: nn.Module, params: list[Tensor], n: int, g: torch.Generator) -> dict:
    x_0 = torch.randn(n, 2, generator=g)
    x_1 = TWO_CLUSTERS.sample(n, generator=g)
    t = torch.rand(n, generator=g)
    x_t = (1 - t[:, None]) * x_0 + t[:, None] * x_1  # [n, 2]
    with torch.no_grad():
        u = TWO_CLUSTERS.velocity(x_t, t).float()
    v = net(x_t, t)
    loss_cfm = (v - (x_1 - x_0)).pow(2).sum(1).mean()
    loss_fm = (v - u).pow(2).sum(1).mean()
    g_cfm = torch.cat([q.flatten() for q in torch.autograd.grad(loss_cfm, params, retain_graph=True)])
    g_fm = torch.cat([q.flatten() for q in torch.autograd.grad(loss_fm, params)])
    return {
        "samples": n,
        "cosine": _r(float(torch.nn.functional.cosine_similarity(g_cfm, g_fm, dim=0)), 4),
        "relative_difference": _r(float((g_cfm - g_fm).norm() / g_fm.norm()), 3),
        "loss_cfm": _r(float(loss_cfm.detach()), 4),
        "loss_fm": _r(float(loss_fm.detach()), 4),
    }


def velocity_field(sims: Simulations, p: FieldParams) -> dict:
    model = sims.model(p.dataset, p.coupling)
    points = grid_points(p.extent, p.grid)  # [grid^2, 2]
    with torch.no_grad():
        v = model(points, torch.full((len(points),), p.t))  # [grid^2, 2]
    out: dict[str, Any] = {
        "points": encode(points), "velocities": encode(clamp(v)),
        "max_speed": _r(float(v.norm(dim=1).max())),
        "data": encode(data(p.dataset, UNDER_PANEL, p.seed)),  # drawn faintly under the arrows
    }
    if p.particles:
        x = noise(p.particles, p.seed)
        if p.t > 0:
            steps = max(1, math.ceil(50 * p.t))
            x = sl.integrate(model, x, steps=steps, t_span=(0.0, p.t)).x
        out["particles"] = encode(x)
    return out


def euler_steps(sims: Simulations, p: EulerParams) -> dict:
    traj = euler(sims.model(p.dataset, p.coupling), noise(p.particles, p.seed), p.steps)
    return {
        "ts": times(traj),
        "frames": encode(traj.xs),
        "data": encode(data(p.dataset, min(p.particles, 1000), p.seed)),
        "quality": sims.w2(traj.x, p.dataset, p.seed),
        "nfe": traj.nfe,
    }


def euler_faults(sims: Simulations, p: BreakItParams) -> dict:
    model = sims.model(p.dataset, p.coupling)
    x_0 = noise(p.particles, p.seed)
    healthy = euler(model, x_0, p.steps)
    v, start = apply_faults(list(p.faults), model, x_0, data(p.dataset, p.particles, p.seed + BREAK_IT_DATA_SEED))
    broken = euler(v, start, p.steps)
    return {
        "ts": times(healthy),
        "healthy": encode(healthy.xs),
        "broken": encode(clamp(broken.xs)),
        # the healthy run does not depend on the faults: its W2 is measured once per setting
        "quality_before": sims.healthy_w2(p.dataset, p.coupling, p.particles, p.steps, p.seed),
        "quality_after": sims.w2(broken.x, p.dataset, p.seed),
        "faults": [{"name": n, "summary": FAULTS[n].summary} for n in p.faults],
    }


def solver_orders(sims: Simulations, p: SolverParams) -> dict:
    model64 = _double(sims.model(p.dataset, "independent"))
    x_0 = noise(p.particles, p.seed).double()
    reference = sl.integrate(model64, x_0, method="dopri5", atol=1e-12, rtol=1e-12).x

    def error(traj: sl.Trajectory) -> tuple[int, float]:
        return traj.nfe, float((traj.x - reference).norm(dim=1).mean())

    series: dict[str, Any] = {}
    for method in SOLVER_ORDER:
        points = [error(sl.integrate(model64, x_0, steps=steps, method=method)) for steps in SOLVER_STEPS]
        series[method] = {**_convergence(points), "order": SOLVER_ORDER[method]}
    points = [error(sl.integrate(model64, x_0, method="dopri5", atol=tol, rtol=tol)) for tol in DOPRI5_TOLERANCES]
    series["dopri5"] = {**_convergence(points), "order": 5, "tolerances": list(DOPRI5_TOLERANCES)}
    return {"series": series}


def _convergence(points: list[tuple[int, float]]) -> dict[str, Any]:
    return {"nfe": [n for n, _ in points], "error": [_r(e, 3) for _, e in points], "slope": _r(_slope(points), 3)}


def log_density(sims: Simulations, p: LogDensityParams) -> dict:
    """log p_1(x) of a shipped model on a grid, by the instantaneous change of variables (RK4,
    exact divergence), beside the data's own log-density: two_clusters and 8gaussians are
    Gaussian mixtures (closed form); moons has none, so a Gaussian kernel density estimate of
    a large sample stands in for it (`truth` says which)."""
    sample = data(p.dataset, LOG_DENSITY_DATA, p.seed)  # [n, 2] points where the two are compared
    with torch.enable_grad():
        model_lp = sl.log_prob(sims.model(p.dataset, p.coupling), sample, steps=p.steps, method="rk4", estimator="exact")
    true_fn, truth = _true_log_density(p.dataset)
    true_lp = true_fn(sample).float()  # [n]
    gap = (model_lp - true_lp).abs()  # [n]
    return {
        "truth": truth,
        **_density_maps(sims, p),
        "data": encode(sample[:300]),
        "on_data": {
            "n": len(sample),
            "mean_abs_gap": _r(float(gap.mean()), 3),
            "model_mean_log_p": _r(float(model_lp.mean()), 4),
            "true_mean_log_p": _r(float(true_lp.mean()), 4),
        },
        "nfe": 4 * p.steps,
        "model_name": f"{p.dataset}-{p.coupling}",
    }


def _density_maps(sims: Simulations, p: LogDensityParams) -> dict[str, Any]:
    """The two heat maps: the shipped seed-0 answer's when there is one (`precomputed.py`), else
    computed once per setting (`Simulations.density_maps`)."""
    shipped = precomputed.lookup(Simulations.cache_key("log-density", p.model_copy(update={"seed": 0})))
    if shipped is not None:
        return {"model": shipped["model"], "true": shipped["true"]}
    return sims.density_maps(p.dataset, p.coupling, p.grid, p.steps, p.extent)


def _heat_map(lp: Tensor, grid: int) -> dict[str, Any]:
    """log p on the grid [grid^2] as an encoded [grid, grid] map, clamped to the colour scale's range."""
    return encode(lp.clamp(LOG_FLOOR, LOG_CEILING).reshape(grid, grid), scale=LOG_SCALE)


def reflow_straightening(sims: Simulations, p: ReflowParams) -> dict:
    """Round 0 is the shipped 8gaussians model trained on independent pairs; rounds 1 to 3 are
    the shipped models reflowed from it (`shipped.py`). Trajectories of the chosen round, and
    every round's straightness and one-step W2 on the same noise."""
    model = sims.models[REFLOW_ROUNDS[p.round]]
    traj = sl.integrate(model, noise(p.particles, p.seed), steps=p.steps, keep_path=True)
    return {
        "round": p.round,
        "model_name": REFLOW_ROUNDS[p.round],
        "ts": times(traj),
        "frames": encode(traj.xs),  # [steps + 1, particles, 2]
        "data": encode(data("8gaussians", 500, p.seed)),
        "rounds": sims.reflow_rows(p.seed),
    }


def guided_digits(sims: Simulations, p: GuidedParams) -> dict:
    """Classifier-free guidance on the shipped MMDiT: v = v_uncond + w (v_cond - v_uncond)."""
    model = sims.models["digits-mmdit"]
    x_0 = noise(p.images, p.seed, (1, 8, 8))
    v = sl.guidance.guided_velocity(model, p.label, p.w)
    traj = sl.integrate(v, x_0, steps=p.steps, keep_path=True)
    x_1 = traj.x.clamp(-1, 1)
    labels = torch.full((p.images,), p.label, dtype=torch.long)
    return {
        "ts": times(traj),
        "frames": encode(traj.xs[:, :, 0].clamp(-PIXEL_RANGE, PIXEL_RANGE)),  # [steps + 1, images, 8, 8]
        "accuracy": _r(sl.metrics.digit_accuracy(x_1, labels), 3),
        # variety: the pixels' spread across the samples, averaged over the 64 pixels
        "spread": _r(float(x_1.std(0).mean()) if p.images > 1 else 0.0, 3),
        "nfe": 2 * traj.nfe,  # one doubled batch per step: conditional and unconditional
        "model_name": "digits-mmdit",
    }


def rotation_flow(sims: Simulations, p: RotationParams) -> dict:
    """Rotations from Haar noise carried by the shipped SO(3) flow with geodesic Euler steps
    R <- R exp(h v(R, t)) (the loop of `so3.so3_sample`, every state kept). Each state travels
    as its rotation vector log R (|w| <= π); the client rebuilds the matrix."""
    so3 = sl.so3
    modes = so3.ROTATION_MODES.float()  # [3, 3, 3]
    pick = _frames(p.steps, SIDE_FRAMES)
    with torch.no_grad():
        xs = _geodesic_euler(sims.models["rotations-so3"], p)[pick]  # [<= 51, B, 3, 3]
        nearest = so3.distance(xs[:, :, None], modes[None, None]).min(-1).values  # [frames, B]
        sample = so3.rotation_dataset(2000, seed=ROTATION_DATA_SEED)
        data_nearest = so3.distance(sample[:, None], modes[None]).min(-1).values  # [2000]
    ends = nearest[-1]
    return {
        "ts": [_r(k * (1.0 / p.steps)) for k in pick],
        "frame_steps": pick,
        "frames": encode(so3.log(xs), scale=10000.0),  # [frames, particles, 3] rotation vectors
        "modes": encode(so3.log(modes), scale=10000.0),  # [3, 3]
        "mean_distance": [_r(float(g), 3) for g in nearest.mean(1)],  # per frame, radians
        "data_mean_distance": _r(float(data_nearest.mean()), 3),
        "near": NEAR_A_MODE,  # radians: "close to a mode"
        "near_a_mode": _r(float((ends < NEAR_A_MODE).double().mean()), 3),  # fraction of the particles at t = 1
        "data_near_a_mode": _r(float((data_nearest < NEAR_A_MODE).double().mean()), 3),
        "model_name": "rotations-so3",
    }


def _geodesic_euler(model: nn.Module, p: RotationParams) -> Tensor:
    """Every state [steps + 1, B, 3, 3] of the geodesic Euler run from Haar noise."""
    so3 = sl.so3
    R = so3.random_rotations(p.particles, generator=torch.Generator().manual_seed(p.seed))
    states, dt = [R], 1.0 / p.steps
    for k in range(p.steps):
        v = model(R.reshape(len(R), 9), torch.full((len(R),), k * dt))  # [B, 3] body frame
        R = R @ so3.exp(dt * v)
        states.append(R)
    return torch.stack(states)


def side_by_side(sims: Simulations, p: SideBySideParams) -> dict:
    """The same noise sampled by a DDPM ε-model (deterministic DDIM, `steps` network calls,
    shown on the linear path's scale: x_k / c_k at flow time t_k) and by a flow-matching model
    (Euler, `steps` calls), both trained on the same data: moons (same MLP; W2 of each on 1000
    further points) or the 8x8 digits (16 images each; digit FD on SIDE_DIGIT_EVAL more).

    On the linear path's scale the two are the same family of paths (the VP marginals are the
    linear path's, re-timed and rescaled by c_k); `scale="ddpm"` shows DDPM's own states x_k."""
    return _side_digits(sims, p) if p.data == "digits" else _side_moons(sims, p)


def _side_digits(sims: Simulations, p: SideBySideParams) -> dict:
    """Side-by-side on the digits: SIDE_DIGITS images per sampler at every kept step, [F, 16, 8, 8]."""
    flow_name, eps_name = SIDE_DIGIT_MODELS
    x_0 = noise(SIDE_DIGITS, p.seed, (1, 8, 8))  # [16, 1, 8, 8]
    flow = sl.integrate(sims.models[flow_name], x_0, steps=p.steps, keep_path=True)
    raw = sl.diffusion.ddim_sample(sims.models[eps_name], x_0, schedule=_ddpm_schedule(), steps=p.steps, keep_path=True)
    diff = raw.as_flow()
    shown = diff.xs if p.scale == "flow" else raw.xs  # [steps + 1, 16, 1, 8, 8]
    pick = _frames(p.steps, SIDE_FRAMES)
    quality = sims.side_digit_quality(p.steps)

    def pixels(xs: Tensor) -> dict[str, Any]:  # kept frames of [steps + 1, 16, 1, 8, 8] -> [F, 16, 8, 8]
        return encode(xs[pick, :, 0].clamp(-PIXEL_RANGE, PIXEL_RANGE))

    return {
        "steps": p.steps,
        "frame_steps": pick,
        "flow": {"ts": [_r(float(flow.ts[i])) for i in pick], "frames": pixels(flow.xs), "quality": quality["flow"],
                 "nfe": flow.nfe, "model_name": flow_name},
        "diffusion": {"ts": [_r(float(diff.ts[i])) for i in pick], "frames": pixels(shown),
                      "scales": [_r(float(raw.scales[i])) for i in pick], "quality": quality["diffusion"],
                      "nfe": diff.nfe, "model_name": eps_name},
    }


def _fd_quality(x: Tensor) -> dict[str, Any]:
    """The digit FD of samples x [n, 1, 8, 8] to the 1797 real digits, beside the floor at n (two
    disjoint n-draws of the real digits) and the words for it."""
    n = len(x)
    fd, floor = sl.metrics.digit_fd(x), sl.metrics.digit_fd_floor(n)  # the floor is cached by metrics
    words = "at or below the floor" if fd <= floor else f"{fd / floor:.1f}× the floor"
    return {"fd": _r(fd), "floor": _r(floor), "ratio": _r(fd / floor, 3), "n": n, "words": words}


def _side_moons(sims: Simulations, p: SideBySideParams) -> dict:
    """Side-by-side on the moons: particles' paths and W2 (see `side_by_side`)."""
    from straightline import diffusion

    n = p.particles
    # the drawn particles and the W2 points in one batch: one network call per step for each model
    x_0 = torch.cat([noise(n, p.seed), noise(SIDE_EVAL, p.seed + SIDE_EVAL_SEED)])
    flow = sl.integrate(sims.models["moons-independent"], x_0, steps=p.steps, keep_path=True)
    raw = diffusion.ddim_sample(sims.models["moons-ddpm"], x_0, schedule=_ddpm_schedule(), steps=p.steps, keep_path=True)
    diff = raw.as_flow()
    shown = diff.xs if p.scale == "flow" else raw.xs
    pick = _frames(p.steps, SIDE_FRAMES)
    return {
        "steps": p.steps,
        "frame_steps": pick,  # which step each kept frame is
        "flow": {"ts": [_r(float(flow.ts[i])) for i in pick], "frames": encode(clamp(flow.xs[pick, :n])),
                 "quality": sims.w2(flow.x[n:], "moons", p.seed), "nfe": flow.nfe, "model_name": "moons-independent"},
        "diffusion": {"ts": [_r(float(diff.ts[i])) for i in pick], "frames": encode(clamp(shown[pick, :n])),
                      "scales": [_r(float(raw.scales[i])) for i in pick],
                      "quality": sims.w2(diff.xs[-1, n:], "moons", p.seed), "nfe": diff.nfe, "model_name": "moons-ddpm"},
        "data": encode(data("moons", 500, p.seed)),
    }


def flowmap_nfe(sims: Simulations, p: FlowMapNFEParams) -> dict:
    """The same noise through four few-step samplers on the moons, each with `nfe` network calls:
    flow matching and its 2-rectified flow by Euler, the shortcut and MeanFlow flow maps by jumps
    x <- x + (t' - t) u(x, t, t'). Every state on the grid 0, 1/nfe, ..., 1; W2 of each on 1000
    further points beside the floor band."""
    n = p.particles
    x_0 = torch.cat([noise(n, p.seed), noise(FLOWMAP_EVAL, p.seed + FLOWMAP_EVAL_SEED)])  # [n + 1000, 2]
    out = {}
    for key, name, kind in FLOWMAP_SAMPLERS:
        model = sims.models[name]
        if kind == "flowmap":
            traj = sl.flowmaps.sample(model, x_0, steps=p.nfe, keep_path=True)
        else:
            traj = sl.integrate(model, x_0, steps=p.nfe, keep_path=True)
        out[key] = {"frames": encode(clamp(traj.xs[:, :n])),  # [nfe + 1, n, 2]
                    "quality": sims.w2(traj.x[n:], "moons", p.seed), "nfe": traj.nfe, "model_name": name}
    return {"nfe": p.nfe, "ts": [_r(k / p.nfe) for k in range(p.nfe + 1)], "samplers": out,
            "data": encode(data("moons", 500, p.seed))}


def flowmap_jumps(sims: Simulations, p: FlowMapJumpsParams) -> dict:
    """Each particle's path under the flow-matching model (RK4, fine steps) at the grid times
    t_i = i / grid, and the MeanFlow model's jump from its path point at every grid time s = t_i
    to every later grid time t = t_j: X_{s,t}(x_s) = x_s + (t - s) u(x_s, s, t), for the client
    to draw for any pair of handles. Jumps travel in pair order (i, j) with i < j, row by row."""
    x_0 = noise(p.particles, p.seed)
    path = sl.integrate(sims.models["moons-independent"], x_0, steps=JUMP_PATH_STEPS, method="rk4", keep_path=True)
    on_grid = path.xs[torch.linspace(0, JUMP_PATH_STEPS, p.grid + 1).round().long()]  # [grid + 1, P, 2]
    pairs = [(i, j) for i in range(p.grid + 1) for j in range(i + 1, p.grid + 1)]
    i_idx, j_idx = torch.tensor([a for a, _ in pairs]), torch.tensor([b for _, b in pairs])  # [K] each
    s, t = i_idx.float() / p.grid, j_idx.float() / p.grid  # [K] each
    x_s = on_grid[i_idx]  # [K, P, 2]
    rows = x_s.reshape(-1, 2)  # [K * P, 2]
    s_rows, t_rows = s.repeat_interleave(p.particles), t.repeat_interleave(p.particles)  # [K * P] each
    with torch.no_grad():
        landed = rows + (t_rows - s_rows)[:, None] * sims.models["moons-meanflow"](rows, s_rows, t_rows)  # [K * P, 2]
    gap = (landed.reshape(len(pairs), p.particles, 2) - on_grid[j_idx]).norm(dim=-1)  # [K, P]
    return {"grid": p.grid, "ts": [_r(i / p.grid) for i in range(p.grid + 1)],
            "paths": encode(clamp(on_grid)), "fine": encode(clamp(path.xs[::4])),  # [grid + 1, P, 2], [51, P, 2]
            "jumps": encode(clamp(landed.reshape(len(pairs), p.particles, 2))),  # [K, P, 2]
            "mean_gap": [_r(float(g), 3) for g in gap.mean(1)],  # per pair: mean distance landing - ODE point
            "data": encode(data("moons", 500, p.seed)),
            "model_names": {"path": "moons-independent", "jumps": "moons-meanflow"}}


#: name -> the function that computes it (its parameter model is `PARAMS[name]`)
SIMULATIONS: dict[str, Callable[[Simulations, Any], dict]] = {
    "particles-flow": particles_flow,
    "digit-emerging": digit_emerging,
    "curved-vs-straight": curved_vs_straight,
    "mixture-oracle": mixture_oracle,
    "velocity-field": velocity_field,
    "euler-steps": euler_steps,
    "euler-faults": euler_faults,
    "solver-orders": solver_orders,
    "log-density": log_density,
    "reflow-straightening": reflow_straightening,
    "guided-digits": guided_digits,
    "rotation-flow": rotation_flow,
    "side-by-side": side_by_side,
    "flowmap-nfe": flowmap_nfe,
    "flowmap-jumps": flowmap_jumps,
}
assert set(SIMULATIONS) == set(PARAMS)


# --- helpers of several simulations ------------------------------------------------------------------


def _frames(steps: int, most: int) -> list[int]:
    """Indices of the states kept from a run of `steps` steps: all of them, or `most` + 1 evenly spread."""
    keep = min(steps, most)
    return sorted({round(i * steps / keep) for i in range(keep + 1)})


def _ddpm_schedule():
    from straightline import diffusion

    from .shipped import DDPM_SCHEDULE, DDPM_T

    return diffusion.make_schedule(DDPM_SCHEDULE, DDPM_T)


@functools.cache
def _kde_sample(dataset: str) -> Tensor:
    return sl.data.toy(dataset, KDE_POINTS, seed=KDE_SEED)


def _true_log_density(dataset: str) -> tuple[Callable[[Tensor], Tensor], str]:
    """The data's log-density and what it is: 'mixture' (exact) or 'kde' (an estimate)."""
    if dataset in MIXTURES:
        mixture = MIXTURES[dataset]
        return (lambda x: mixture.log_prob(x, torch.ones(len(x)))), "mixture"
    sample, h = _kde_sample(dataset), KDE_BANDWIDTH

    def kde(x: Tensor) -> Tensor:  # mean of N(x; s, h^2 I) over the sample, in log space
        out = []
        for chunk in x.double().split(256):
            d2 = torch.cdist(chunk, sample.double()).pow(2)  # [256, M]
            out.append(torch.logsumexp(-d2 / (2 * h * h), dim=1))
        return torch.cat(out) - math.log(len(sample)) - math.log(2 * math.pi * h * h)

    return kde, "kde"


def _slope(points: list[tuple[int, float]]) -> float:
    """Order of convergence: minus the least-squares slope of log error against log NFE."""
    usable = [(n, e) for n, e in points if e > 1e-13]
    if len(usable) < 2:
        return float("nan")
    n, e = np.log([u[0] for u in usable]), np.log([u[1] for u in usable])
    return float(-np.polyfit(n, e, 1)[0])


_DOUBLES: dict[int, nn.Module] = {}


def _double(model: nn.Module) -> nn.Module:
    """A float64 copy of a shipped model (made once per model)."""
    if id(model) not in _DOUBLES:
        _DOUBLES[id(model)] = copy.deepcopy(model).double()
    return _DOUBLES[id(model)]
