"""What the course's simulations compute: every frame comes from a shipped model run by the toolkit.

Each simulation has a parameter model (pydantic, with bounds; the web layer exposes it as query
parameters and answers 422 naming the parameter and its range) and a compute method returning a
compact JSON-able dict. Results are deterministic given the parameters (the seed is one of them)
and cached.

Arrays travel as `{"shape": [...], "scale": s, "data": base64(int16 little-endian)}`: value =
int / s. At scale 1000 a 2-D particle keeps 0.001 of precision, far below a canvas pixel.
"""

from __future__ import annotations

import base64
import math
import threading
from collections import OrderedDict
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
    "Simulations", "PARAMS", "ParticlesParams", "DigitsParams", "CurvedParams", "FieldParams",
    "EulerParams", "BreakItParams", "SolverParams", "MixtureParams", "LogDensityParams", "ReflowParams",
    "GuidedParams", "RotationParams", "SideBySideParams", "encode",
]

assert set(FaultName.__args__) == set(FAULTS)  # the API's choices are the toolkit's registry
_Params = SimParams


def encode(x: Tensor | np.ndarray, scale: float = 1000.0) -> dict[str, Any]:
    """A float array as base64 int16 at the given scale (values must fit in ±32767 / scale)."""
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, Tensor) else x, dtype=np.float64)
    q = np.clip(np.rint(a * scale), -32767, 32767).astype("<i2")
    return {"shape": list(a.shape), "scale": scale, "data": base64.b64encode(q.tobytes()).decode("ascii")}


def _r(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


class _LRU:
    def __init__(self, size: int):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get_or_compute(self, key, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        value = compute()
        with self.lock:
            self.data[key] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


class Simulations:
    """The simulations of the course, over the shipped models (name -> module)."""

    def __init__(self, models: dict[str, nn.Module], *, cache_size: int = 512, eval_points: int = 2000):
        self.models = models
        self.cache = _LRU(cache_size)
        self._gradients = _LRU(64)  # the mixture's gradient comparison does not depend on t
        self._reflow_table = _LRU(16)  # every round's measurements, whichever round is drawn
        self._healthy = _LRU(64)  # Break-It: the healthy sampler's W2 by setting, whichever faults are on
        self._density_grids = _LRU(32)  # encoded log-density heat maps by (dataset, coupling, grid, steps, extent)
        self.eval_points = eval_points
        self._handlers: dict[str, Callable[[Any], dict]] = {
            "particles-flow": self._particles,
            "digit-emerging": self._digits,
            "curved-vs-straight": self._curved,
            "mixture-oracle": self._mixture,
            "velocity-field": self._field,
            "euler-steps": self._euler,
            "euler-faults": self._break_it,
            "solver-orders": self._solver_orders,
            "log-density": self._log_density,
            "reflow-straightening": self._reflow,
            "guided-digits": self._guided,
            "rotation-flow": self._rotation,
            "side-by-side": self._side_by_side,
        }

    def names(self) -> list[str]:
        return list(self._handlers)

    def run(self, name: str, params: _Params | dict | None = None) -> dict:
        """The simulation `name` for `params` (a params model or a dict validated into one)."""
        params = self.params_model(name, params)
        key = self.cache_key(name, params)
        return self.cache.get_or_compute(key, lambda: precomputed.lookup(key) or self.compute(name, params))

    def params_model(self, name: str, params: _Params | dict | None) -> _Params:
        if name not in self._handlers:
            raise ValueError(f"unknown simulation {name!r}; accepted: {', '.join(self._handlers)}")
        cls = PARAMS[name]
        return params if isinstance(params, cls) else cls.model_validate(params or {})

    @staticmethod
    def cache_key(name: str, params: _Params) -> str:
        return f"{name}|{params.model_dump_json()}"

    def compute(self, name: str, params: _Params) -> dict:
        """The result, computed now (no cache, no shipped table)."""
        return {"sim": name, "params": params.model_dump(), **self._handlers[name](params)}

    # --- helpers -------------------------------------------------------------------------------

    def _model(self, dataset: str, coupling: str = "independent") -> nn.Module:
        return self.models[f"{dataset}-{coupling}"]

    @staticmethod
    def _noise(n: int, seed: int, shape: tuple[int, ...] = (2,)) -> Tensor:
        return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))

    def _data(self, dataset: str, n: int, seed: int) -> Tensor:
        return sl.data.toy(dataset, n, seed=1_000_003 + seed)

    def _w2(self, x: Tensor, dataset: str, seed: int) -> dict[str, Any]:
        """W2 of the first n points to n fresh data points, beside the floor band at that n
        (`floors.py`: n is the largest tabulated size the sample allows) and the caption's words."""
        n = floor_size(min(len(x), self.eval_points))
        w = sl.metrics.w2(x[:n], self._data(dataset, n, seed))
        band = floor_band(dataset, n)
        return {"w2": _r(w), "floor": _r(band.mean), "floor_low": _r(band.low), "floor_high": _r(band.high),
                "n": n, "words": w2_words(w, band)}

    # --- the simulations -------------------------------------------------------------------------

    def _particles(self, p: ParticlesParams) -> dict:
        model = self._model(p.dataset, p.coupling)
        traj = sl.integrate(model, self._noise(p.particles, p.seed), steps=p.steps, keep_path=True)
        return {
            "ts": [_r(t) for t in traj.ts.tolist()],
            "frames": encode(traj.xs),  # [steps + 1, particles, 2]
            "data": encode(self._data(p.dataset, min(p.particles, 1000), p.seed)),
            "nfe": traj.nfe,
        }

    def _digits(self, p: DigitsParams) -> dict:
        model = self.models["digits"]
        x_0 = self._noise(p.images, p.seed, (1, 8, 8))
        if p.label is None:
            v = model
        else:
            y = torch.full((p.images,), p.label, dtype=torch.long)
            v = lambda x, t: model(x, t, y)  # noqa: E731
        traj = sl.integrate(v, x_0, steps=p.steps, keep_path=True)
        return {
            "ts": [_r(t) for t in traj.ts.tolist()],
            "frames": encode(traj.xs[:, :, 0].clamp(-3, 3)),  # [steps + 1, images, 8, 8]
            "nfe": traj.nfe,
        }

    def _curved(self, p: CurvedParams) -> dict:
        """Per-pair paths (closed form) on the straight and the cosine path, and the learned flow.

        For one noise-data pair the conditional velocity is a known function of t: constant on
        the straight line (Euler is exact at any step count), turning on the cosine arc (Euler
        cuts the corner). The learned flow averages over pairs; its coupling decides how curved
        it is.
        """
        x_0 = self._noise(p.particles, p.seed)
        x_1 = self._data(p.dataset, p.particles, p.seed + 11)
        out: dict[str, Any] = {"conditional": {}, "learned": {}}
        for label, path in (("straight", sl.LinearPath()), ("curved", sl.CosinePath())):
            def u(x: Tensor, t: Tensor, path=path) -> Tensor:  # the pair's own velocity at time t
                tb = t[:, None]
                return path.d_alpha(tb) * x_1 + path.d_sigma(tb) * x_0

            out["conditional"][label] = self._compare(u, x_0, p.steps, exact=path.sample(x_0, x_1, torch.ones(len(x_0))).x_t)
        model = self._model(p.dataset, p.coupling)
        out["learned"] = {"coupling": p.coupling, **self._compare(model, x_0, p.steps)}
        return out

    @staticmethod
    def _compare(v, x_0: Tensor, steps: int, exact: Tensor | None = None) -> dict:
        # the reference route: RK4 with 20 steps, far more accurate than any Euler run shown (its
        # error is ~1e-5 on the learned fields, Euler's at 100 steps ~1e-2), at a fifth of the cost
        accurate = sl.integrate(v, x_0, steps=20, method="rk4", keep_path=True)
        euler = sl.integrate(v, x_0, steps=steps, keep_path=True)
        end = exact if exact is not None else accurate.x
        return {
            "reference_ts": [_r(t) for t in accurate.ts.tolist()],
            "reference": encode(accurate.xs),  # [21, particles, 2]
            "euler_ts": [_r(t) for t in euler.ts.tolist()],
            "euler": encode(euler.xs),  # [steps + 1, particles, 2]
            "euler_error": _r(float((euler.x - end).norm(dim=1).mean())),
        }

    def _mixture(self, p: MixtureParams) -> dict:
        """Chapter 3: the closed-form marginal velocity of the two-cluster mixture beside the field
        the shipped model learned from pair velocities alone, and Monte Carlo estimates of the CFM
        and FM loss gradients for one set of network weights.

        `two_clusters` is exactly the mixture 1/2 N((-2, 0), 0.35^2 I) + 1/2 N((2, 0), 0.35^2 I), so
        its marginal velocity u_t(x) = E[x_1 - x_0 | x_t = x] is known in closed form.
        """
        oracle = TWO_CLUSTERS
        model = self._model("two_clusters", "independent")
        axis = torch.linspace(-p.extent, p.extent, p.grid)
        gx, gy = torch.meshgrid(axis, axis, indexing="xy")
        points = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # [grid^2, 2]
        t = torch.full((len(points),), p.t)
        with torch.no_grad():
            u = oracle.velocity(points, t).float()  # [grid^2, 2]
            v = model(points, t)  # [grid^2, 2]
            density = oracle.log_prob(points, t).exp()  # [grid^2]
            # agreement where the probability is: each point weighted by p_t(x) on a fine grid
            fine_axis = torch.linspace(-p.extent, p.extent, 64)
            fx, fy = torch.meshgrid(fine_axis, fine_axis, indexing="xy")
            fine = torch.stack([fx.flatten(), fy.flatten()], dim=1)
            ft = torch.full((len(fine),), p.t)
            w = oracle.log_prob(fine, ft).exp().float()
            fu, fv = oracle.velocity(fine, ft).float(), model(fine, ft)
            rel = float(((w * (fv - fu).pow(2).sum(1)).sum() / (w * fu.pow(2).sum(1)).sum()).sqrt())
            cos = float((w * torch.nn.functional.cosine_similarity(fv, fu, dim=1, eps=1e-8)).sum() / w.sum())
        return {
            "t": p.t,
            "points": encode(points),
            "oracle": encode(u.clamp(-30, 30)),
            "model": encode(v.clamp(-30, 30)),
            "density": encode(density / density.max(), scale=10000.0),
            "agreement": {"relative_error": _r(rel, 3), "cosine": _r(cos, 3)},
            "gradients": self._gradients.get_or_compute((p.seed, p.samples), lambda: self._gradient_agreement(oracle, p)),
            "model_name": "two_clusters-independent",
            "mixture": {"means": oracle.means.tolist(), "stds": oracle.stds.tolist()},
        }

    @staticmethod
    def _gradient_agreement(oracle, p: MixtureParams) -> list[dict]:
        """The CFM and FM loss gradients for the same weights and the same samples (x_0, x_1, t):
        their targets differ (x_1 - x_0 against u_t(x_t)), their gradients agree in expectation, and
        the Monte Carlo estimates approach each other as the sample grows."""
        g = torch.Generator().manual_seed(p.seed)
        net = sl.models.MLP(dim=2, hidden=128, depth=3)
        with torch.no_grad():  # PyTorch's default Linear initialisation, from this seed
            for layer in net.net:
                if isinstance(layer, nn.Linear):
                    bound = 1 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=g)
                    layer.bias.uniform_(-bound, bound, generator=g)
        params = [q for q in net.parameters() if q.requires_grad]
        rows = []
        for n in sorted({max(256, p.samples // 16), max(256, p.samples // 4), p.samples}):
            x_0 = torch.randn(n, 2, generator=g)
            x_1 = oracle.sample(n, generator=g)
            t = torch.rand(n, generator=g)
            x_t = (1 - t[:, None]) * x_0 + t[:, None] * x_1
            with torch.no_grad():
                u = oracle.velocity(x_t, t).float()
            v = net(x_t, t)
            loss_cfm = (v - (x_1 - x_0)).pow(2).sum(1).mean()
            loss_fm = (v - u).pow(2).sum(1).mean()
            g_cfm = torch.cat([q.flatten() for q in torch.autograd.grad(loss_cfm, params, retain_graph=True)])
            g_fm = torch.cat([q.flatten() for q in torch.autograd.grad(loss_fm, params)])
            rows.append({
                "samples": n,
                "cosine": _r(float(torch.nn.functional.cosine_similarity(g_cfm, g_fm, dim=0)), 4),
                "relative_difference": _r(float((g_cfm - g_fm).norm() / g_fm.norm()), 3),
                "loss_cfm": _r(float(loss_cfm.detach()), 4),
                "loss_fm": _r(float(loss_fm.detach()), 4),
            })
        return rows

    def _field(self, p: FieldParams) -> dict:
        model = self._model(p.dataset, p.coupling)
        axis = torch.linspace(-p.extent, p.extent, p.grid)
        gx, gy = torch.meshgrid(axis, axis, indexing="xy")
        points = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # [grid^2, 2]
        with torch.no_grad():
            v = model(points, torch.full((len(points),), p.t))  # [grid^2, 2]
        out: dict[str, Any] = {
            "points": encode(points), "velocities": encode(v.clamp(-30, 30)),
            "max_speed": _r(float(v.norm(dim=1).max())),
        }
        if p.particles:
            x = self._noise(p.particles, p.seed)
            if p.t > 0:
                steps = max(1, math.ceil(50 * p.t))
                x = sl.integrate(model, x, steps=steps, t_span=(0.0, p.t)).x
            out["particles"] = encode(x)
        return out

    def _euler(self, p: EulerParams) -> dict:
        model = self._model(p.dataset, p.coupling)
        traj = sl.integrate(model, self._noise(p.particles, p.seed), steps=p.steps, keep_path=p.steps <= 100)
        return {
            "ts": [_r(t) for t in traj.ts.tolist()],
            "frames": encode(traj.xs),
            "data": encode(self._data(p.dataset, min(p.particles, 1000), p.seed)),
            "quality": self._w2(traj.x, p.dataset, p.seed),
            "nfe": traj.nfe,
        }

    def _break_it(self, p: BreakItParams) -> dict:
        model = self._model(p.dataset, p.coupling)
        x_0 = self._noise(p.particles, p.seed)
        data = self._data(p.dataset, p.particles, p.seed + 7)
        healthy = sl.integrate(model, x_0, steps=p.steps, keep_path=p.steps <= 100)
        v, start = apply_faults(list(p.faults), model, x_0, data)
        broken = sl.integrate(v, start, steps=p.steps, keep_path=p.steps <= 100)
        return {
            "ts": [_r(t) for t in healthy.ts.tolist()],
            "healthy": encode(healthy.xs),
            "broken": encode(broken.xs.clamp(-30, 30)),
            # the healthy run does not depend on the faults: measured once per setting
            "quality_before": self._healthy.get_or_compute(
                (p.dataset, p.coupling, p.particles, p.steps, p.seed), lambda: self._w2(healthy.x, p.dataset, p.seed)),
            "quality_after": self._w2(broken.x, p.dataset, p.seed),
            "faults": [{"name": n, "summary": FAULTS[n].summary} for n in p.faults],
        }

    def _solver_orders(self, p: SolverParams) -> dict:
        model = self._model(p.dataset, "independent")
        model64 = _double(model)
        x_0 = self._noise(p.particles, p.seed).double()
        reference = sl.integrate(model64, x_0, method="dopri5", atol=1e-12, rtol=1e-12).x
        per_step = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
        series: dict[str, Any] = {}
        for method, cost in per_step.items():
            points = []
            for steps in (2, 4, 8, 16, 32, 64):
                traj = sl.integrate(model64, x_0, steps=steps, method=method)
                err = float((traj.x - reference).norm(dim=1).mean())
                points.append((traj.nfe, err))
            series[method] = {"nfe": [n for n, _ in points], "error": [_r(e, 3) for _, e in points],
                              "slope": _r(_slope(points), 3), "order": {"euler": 1, "rk4": 4}.get(method, 2)}
        points = []
        for tol in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7):
            traj = sl.integrate(model64, x_0, method="dopri5", atol=tol, rtol=tol)
            points.append((traj.nfe, float((traj.x - reference).norm(dim=1).mean())))
        series["dopri5"] = {"nfe": [n for n, _ in points], "error": [_r(e, 3) for _, e in points],
                            "slope": _r(_slope(points), 3), "order": 5, "tolerances": [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]}
        return {"series": series}


    # --- Chapters 1, 6, 7 and 8 ------------------------------------------------------------------

    def _log_density(self, p: LogDensityParams) -> dict:
        """log p_1(x) of a shipped model on a grid, by the instantaneous change of variables (RK4,
        exact divergence), beside the data's own log-density: two_clusters and 8gaussians are
        Gaussian mixtures (closed form); moons has none, so a Gaussian kernel density estimate of
        a large sample stands in for it (`truth` says which)."""
        model = self._model(p.dataset, p.coupling)
        data = self._data(p.dataset, LOG_DENSITY_DATA, p.seed)  # [n, 2] points where the two are compared
        with torch.enable_grad():
            model_lp = sl.log_prob(model, data, steps=p.steps, method="rk4", estimator="exact")  # [n]
        true_fn, truth = _true_log_density(p.dataset)
        true_lp = true_fn(data).float()  # [n]
        gap = (model_lp - true_lp).abs()
        return {
            "truth": truth,
            **self._density_maps(p, model, true_fn),
            "data": encode(data[:300]),
            "on_data": {
                "n": len(data),
                "mean_abs_gap": _r(float(gap.mean()), 3),
                "model_mean_log_p": _r(float(model_lp.mean()), 4),
                "true_mean_log_p": _r(float(true_lp.mean()), 4),
            },
            "nfe": 4 * p.steps,
            "model_name": f"{p.dataset}-{p.coupling}",
        }

    def _density_maps(self, p: LogDensityParams, model: nn.Module, true_fn) -> dict:
        """The two heat maps (encoded), which do not depend on the seed: the shipped seed-0 answer's
        when there is one (course/precomputed.py), else computed once per setting and cached."""
        key = (p.dataset, p.coupling, p.grid, p.steps, p.extent)
        shipped = precomputed.lookup(self.cache_key("log-density", p.model_copy(update={"seed": 0})))
        if shipped is not None:
            return {"model": shipped["model"], "true": shipped["true"]}

        def compute() -> dict:
            axis = torch.linspace(-p.extent, p.extent, p.grid)
            gx, gy = torch.meshgrid(axis, axis, indexing="xy")
            points = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # [grid^2, 2], row 0 = lowest y
            with torch.enable_grad():
                model_lp = sl.log_prob(model, points, steps=p.steps, method="rk4", estimator="exact")  # [grid^2]
            true_lp = true_fn(points).float()
            return {"model": encode(model_lp.clamp(LOG_FLOOR, 5).reshape(p.grid, p.grid), scale=500.0),
                    "true": encode(true_lp.clamp(LOG_FLOOR, 5).reshape(p.grid, p.grid), scale=500.0)}

        return self._density_grids.get_or_compute(key, compute)

    def _reflow(self, p: ReflowParams) -> dict:
        """Round 0 is the shipped 8gaussians model trained on independent pairs; rounds 1 to 3 are
        the shipped models reflowed from it (`shipped.py`). Trajectories of the chosen round, and
        every round's straightness and one-step W2 on the same noise."""
        model = self.models[REFLOW_ROUNDS[p.round]]
        traj = sl.integrate(model, self._noise(p.particles, p.seed), steps=p.steps, keep_path=True)
        return {
            "round": p.round,
            "model_name": REFLOW_ROUNDS[p.round],
            "ts": [_r(t) for t in traj.ts.tolist()],
            "frames": encode(traj.xs),  # [steps + 1, particles, 2]
            "data": encode(self._data("8gaussians", 500, p.seed)),
            "rounds": self._reflow_table.get_or_compute(p.seed, lambda: self._reflow_measurements(p.seed)),
        }

    def _reflow_measurements(self, seed: int) -> list[dict]:
        x_0 = self._noise(REFLOW_EVAL, seed + 101)
        rows = []
        for k, name in enumerate(REFLOW_ROUNDS):
            model = self.models[name]
            one = sl.integrate(model, x_0, steps=1).x
            rows.append({
                "round": k,
                "model_name": name,
                "straightness": _r(sl.metrics.straightness(model, x_0, steps=100), 3),
                "one_step": self._w2(one, "8gaussians", seed),
            })
        return rows

    def _guided(self, p: GuidedParams) -> dict:
        """Classifier-free guidance on the shipped MMDiT: v = v_uncond + w (v_cond - v_uncond)."""
        model = self.models["digits-mmdit"]
        x_0 = self._noise(p.images, p.seed, (1, 8, 8))
        v = sl.guidance.guided_velocity(model, p.label, p.w)
        traj = sl.integrate(v, x_0, steps=p.steps, keep_path=True)
        x_1 = traj.x.clamp(-1, 1)
        labels = torch.full((p.images,), p.label, dtype=torch.long)
        return {
            "ts": [_r(t) for t in traj.ts.tolist()],
            "frames": encode(traj.xs[:, :, 0].clamp(-3, 3)),  # [steps + 1, images, 8, 8]
            "accuracy": _r(sl.metrics.digit_accuracy(x_1, labels), 3),
            # variety: the pixels' spread across the samples, averaged over the 64 pixels
            "spread": _r(float(x_1.std(0).mean()) if p.images > 1 else 0.0, 3),
            "nfe": 2 * traj.nfe,  # one doubled batch per step: conditional and unconditional
            "model_name": "digits-mmdit",
        }

    def _rotation(self, p: RotationParams) -> dict:
        """Rotations from Haar noise carried by the shipped SO(3) flow with geodesic Euler steps
        R <- R exp(h v(R, t)) (the loop of `so3.so3_sample`, every state kept). Each state travels
        as its rotation vector log R (|w| <= π); the client rebuilds the matrix."""
        so3 = sl.so3
        model = self.models["rotations-so3"]
        R = so3.random_rotations(p.particles, generator=torch.Generator().manual_seed(p.seed))
        modes = so3.ROTATION_MODES.float()  # [3, 3, 3]
        states, gaps = [R], []
        dt = 1.0 / p.steps
        with torch.no_grad():
            for k in range(p.steps):
                v = model(R.reshape(len(R), 9), torch.full((len(R),), k * dt))  # [B, 3] body frame
                R = R @ so3.exp(dt * v)
                states.append(R)
            xs = torch.stack(states)  # [steps + 1, B, 3, 3]
            pick = _frames(p.steps, SIDE_FRAMES)
            xs = xs[pick]  # [<= 51, B, 3, 3]
            nearest = so3.distance(xs[:, :, None], modes[None, None]).min(-1).values  # [frames, B]
            gaps = nearest.mean(1)
            data = so3.rotation_dataset(2000, seed=7)
            data_nearest = so3.distance(data[:, None], modes[None]).min(-1).values  # [2000]
            ends = nearest[-1]
        return {
            "ts": [_r(k * dt) for k in pick],
            "frame_steps": pick,
            "frames": encode(so3.log(xs), scale=10000.0),  # [frames, particles, 3] rotation vectors
            "modes": encode(so3.log(modes), scale=10000.0),  # [3, 3]
            "mean_distance": [_r(float(g), 3) for g in gaps],  # per frame, radians
            "data_mean_distance": _r(float(data_nearest.mean()), 3),
            "near": NEAR_A_MODE,  # radians: "close to a mode"
            "near_a_mode": _r(float((ends < NEAR_A_MODE).double().mean()), 3),  # fraction of the particles at t = 1
            "data_near_a_mode": _r(float((data_nearest < NEAR_A_MODE).double().mean()), 3),
            "model_name": "rotations-so3",
        }

    def _side_by_side(self, p: SideBySideParams) -> dict:
        """The same noise sampled by a DDPM ε-model (deterministic DDIM, `steps` network calls,
        shown on the linear path's scale: x_k / c_k at flow time t_k) and by a flow-matching model
        (Euler, `steps` calls); same MLP, same data (moons). W2 of each on 1000 further points.

        On the linear path's scale the two are the same family of paths (the VP marginals are the
        linear path's, re-timed and rescaled by c_k); `scale="ddpm"` shows DDPM's own states x_k."""
        from straightline import diffusion

        fm, ddpm = self.models["moons-independent"], self.models["moons-ddpm"]
        schedule = _ddpm_schedule()
        n = p.particles
        # the drawn particles and the W2 points in one batch: one network call per step for each model
        x_0 = torch.cat([self._noise(n, p.seed), self._noise(SIDE_EVAL, p.seed + 211)])
        flow = sl.integrate(fm, x_0, steps=p.steps, keep_path=True)
        raw = diffusion.ddim_sample(ddpm, x_0, schedule=schedule, steps=p.steps, keep_path=True)
        diff = raw.as_flow()
        shown = diff.xs if p.scale == "flow" else raw.xs
        pick = _frames(p.steps, SIDE_FRAMES)
        return {
            "steps": p.steps,
            "frame_steps": pick,  # which step each kept frame is
            "flow": {"ts": [_r(float(flow.ts[i])) for i in pick], "frames": encode(flow.xs[pick, :n].clamp(-30, 30)),
                     "quality": self._w2(flow.x[n:], "moons", p.seed), "nfe": flow.nfe, "model_name": "moons-independent"},
            "diffusion": {"ts": [_r(float(diff.ts[i])) for i in pick], "frames": encode(shown[pick, :n].clamp(-30, 30)),
                          "scales": [_r(float(raw.scales[i])) for i in pick],
                          "quality": self._w2(diff.xs[-1, n:], "moons", p.seed), "nfe": diff.nfe, "model_name": "moons-ddpm"},
            "data": encode(self._data("moons", 500, p.seed)),
        }


LOG_DENSITY_DATA = 500  # data points on which the model's log p is compared with the truth
LOG_FLOOR = -60.0  # heat maps clamp log p below this (the colour scale stops far above it)
REFLOW_ROUNDS = ("8gaussians-independent", "8gaussians-reflow1", "8gaussians-reflow2", "8gaussians-reflow3")
REFLOW_EVAL = 1000  # noise points for every round's straightness and one-step W2
SIDE_FRAMES = 50  # steps kept per path in side-by-side and rotation-flow (all of them up to 50 steps)
SIDE_EVAL = 1000  # points behind side-by-side's W2
NEAR_A_MODE = 0.5  # radians; about 99 % of rotation_dataset lies this close to its mode


def _frames(steps: int, most: int) -> list[int]:
    """Indices of the states kept from a run of `steps` steps: all of them, or `most` + 1 evenly spread."""
    keep = min(steps, most)
    return sorted({round(i * steps / keep) for i in range(keep + 1)})


def _ddpm_schedule():
    from straightline import diffusion

    from .shipped import DDPM_SCHEDULE, DDPM_T

    return diffusion.make_schedule(DDPM_SCHEDULE, DDPM_T)


_KDE: dict[str, Tensor] = {}


def _true_log_density(dataset: str) -> tuple[Callable[[Tensor], Tensor], str]:
    """The data's log-density and what it is: 'mixture' (exact) or 'kde' (an estimate)."""
    if dataset in MIXTURES:
        mixture = MIXTURES[dataset]
        return (lambda x: mixture.log_prob(x, torch.ones(len(x)))), "mixture"
    if dataset not in _KDE:
        _KDE[dataset] = sl.data.toy(dataset, KDE_POINTS, seed=424_242)
    sample = _KDE[dataset]
    h = KDE_BANDWIDTH

    def kde(x: Tensor) -> Tensor:  # mean of N(x; s, h^2 I) over the sample, in log space
        out = []
        for chunk in x.double().split(256):
            d2 = torch.cdist(chunk, sample.double()).pow(2)  # [256, M]
            out.append(torch.logsumexp(-d2 / (2 * h * h), dim=1))
        return torch.cat(out) - math.log(len(sample)) - math.log(2 * math.pi * h * h)

    return kde, "kde"


KDE_POINTS, KDE_BANDWIDTH = 8000, 0.08


def _slope(points: list[tuple[int, float]]) -> float:
    """Order of convergence: minus the least-squares slope of log error against log NFE."""
    usable = [(n, e) for n, e in points if e > 1e-13]
    if len(usable) < 2:
        return float("nan")
    n, e = np.log([u[0] for u in usable]), np.log([u[1] for u in usable])
    return float(-np.polyfit(n, e, 1)[0])


#: the `two_clusters` toy dataset as a Gaussian mixture (straightline/data/toy.py defines it so)
TWO_CLUSTERS = sl.oracles.GaussianMixture([[-2.0, 0.0], [2.0, 0.0]], 0.35)
#: `8gaussians` likewise: eight Gaussians of std 0.2 at radius 2.5, angles k * 45 degrees
EIGHT_GAUSSIANS = sl.oracles.GaussianMixture(
    [[2.5 * math.cos(k * math.pi / 4), 2.5 * math.sin(k * math.pi / 4)] for k in range(8)], 0.2
)
MIXTURES = {"two_clusters": TWO_CLUSTERS, "8gaussians": EIGHT_GAUSSIANS}

_DOUBLES: dict[int, nn.Module] = {}


def _double(model: nn.Module) -> nn.Module:
    import copy

    key = id(model)
    if key not in _DOUBLES:
        _DOUBLES[key] = copy.deepcopy(model).double()
    return _DOUBLES[key]
