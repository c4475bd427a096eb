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
from typing import Any, Callable, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

import straightline as sl
from straightline.faults import FAULTS, apply_faults

__all__ = [
    "Simulations", "PARAMS", "ParticlesParams", "DigitsParams", "CurvedParams", "FieldParams",
    "EulerParams", "BreakItParams", "SolverParams", "encode",
]

Dataset2D = Literal["two_clusters", "moons", "8gaussians"]
Coupling = Literal["independent", "exact_ot"]
FaultName = Literal["curved-velocity", "frozen-time", "start-from-data"]
assert set(FaultName.__args__) == set(FAULTS)  # the API's choices are the toolkit's registry


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed of the noise")


class ParticlesParams(_Params):
    dataset: Dataset2D = "two_clusters"
    coupling: Coupling = "independent"
    particles: int = Field(500, ge=1, le=5000, description="number of particles")
    steps: int = Field(50, ge=1, le=1000, description="Euler steps from t = 0 to t = 1")


class DigitsParams(_Params):
    images: int = Field(8, ge=1, le=64, description="number of digits drawn")
    steps: int = Field(40, ge=1, le=200, description="Euler steps from t = 0 to t = 1")
    label: int | None = Field(None, ge=0, le=9, description="digit class to draw; none for any")


class CurvedParams(_Params):
    dataset: Dataset2D = "two_clusters"
    coupling: Coupling = "independent"
    particles: int = Field(200, ge=1, le=2000, description="number of particles")
    steps: int = Field(4, ge=1, le=100, description="Euler steps used for both flows")


class FieldParams(_Params):
    dataset: Dataset2D = "moons"
    coupling: Coupling = "independent"
    t: float = Field(0.5, ge=0.0, le=1.0, description="time at which the field is drawn")
    grid: int = Field(21, ge=2, le=64, description="arrows per side of the square grid")
    extent: float = Field(3.5, ge=0.5, le=10.0, description="half-width of the square shown")
    particles: int = Field(0, ge=0, le=5000, description="particles carried to time t (0 for none)")


class EulerParams(_Params):
    dataset: Dataset2D = "moons"
    coupling: Coupling = "independent"
    particles: int = Field(1000, ge=10, le=5000, description="number of particles")
    steps: int = Field(10, ge=1, le=1000, description="Euler steps")


class BreakItParams(EulerParams):
    faults: tuple[FaultName, ...] = Field((), description="faults injected into the sampler")


class SolverParams(_Params):
    dataset: Dataset2D = "moons"
    particles: int = Field(200, ge=1, le=2000, description="number of particles")


PARAMS: dict[str, type[_Params]] = {
    "particles-flow": ParticlesParams,
    "digit-emerging": DigitsParams,
    "curved-vs-straight": CurvedParams,
    "velocity-field": FieldParams,
    "euler-steps": EulerParams,
    "euler-faults": BreakItParams,
    "solver-orders": SolverParams,
}


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
    """The simulations of Chapters 0–5, over the shipped models (name -> module)."""

    def __init__(self, models: dict[str, nn.Module], *, cache_size: int = 512, eval_points: int = 2000):
        self.models = models
        self.cache = _LRU(cache_size)
        self.eval_points = eval_points
        self._handlers: dict[str, Callable[[Any], dict]] = {
            "particles-flow": self._particles,
            "digit-emerging": self._digits,
            "curved-vs-straight": self._curved,
            "velocity-field": self._field,
            "euler-steps": self._euler,
            "euler-faults": self._break_it,
            "solver-orders": self._solver_orders,
        }

    def names(self) -> list[str]:
        return list(self._handlers)

    def run(self, name: str, params: _Params | dict | None = None) -> dict:
        """The simulation `name` for `params` (a params model or a dict validated into one)."""
        if name not in self._handlers:
            raise ValueError(f"unknown simulation {name!r}; accepted: {', '.join(self._handlers)}")
        cls = PARAMS[name]
        if not isinstance(params, cls):
            params = cls.model_validate(params or {})
        key = (name, params.model_dump_json())
        return self.cache.get_or_compute(key, lambda: {"sim": name, "params": params.model_dump(), **self._handlers[name](params)})

    # --- helpers -------------------------------------------------------------------------------

    def _model(self, dataset: str, coupling: str = "independent") -> nn.Module:
        return self.models[f"{dataset}-{coupling}"]

    @staticmethod
    def _noise(n: int, seed: int, shape: tuple[int, ...] = (2,)) -> Tensor:
        return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))

    def _data(self, dataset: str, n: int, seed: int) -> Tensor:
        return sl.data.toy(dataset, n, seed=1_000_003 + seed)

    def _w2(self, x: Tensor, dataset: str, seed: int) -> dict[str, float]:
        n = min(len(x), self.eval_points)
        w = sl.metrics.w2(x[:n], self._data(dataset, n, seed))
        floor = sl.metrics.w2_floor(dataset, n)
        return {"w2": _r(w), "floor": _r(floor), "n": n}

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
        accurate = sl.integrate(v, x_0, steps=100, method="rk4", keep_path=True)
        euler = sl.integrate(v, x_0, steps=steps, keep_path=True)
        end = exact if exact is not None else accurate.x
        return {
            "reference_ts": [_r(t) for t in accurate.ts[::5].tolist()],
            "reference": encode(accurate.xs[::5]),  # [21, particles, 2]
            "euler_ts": [_r(t) for t in euler.ts.tolist()],
            "euler": encode(euler.xs),  # [steps + 1, particles, 2]
            "euler_error": _r(float((euler.x - end).norm(dim=1).mean())),
        }

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
            "quality_before": self._w2(healthy.x, p.dataset, p.seed),
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


def _slope(points: list[tuple[int, float]]) -> float:
    """Order of convergence: minus the least-squares slope of log error against log NFE."""
    usable = [(n, e) for n, e in points if e > 1e-13]
    if len(usable) < 2:
        return float("nan")
    n, e = np.log([u[0] for u in usable]), np.log([u[1] for u in usable])
    return float(-np.polyfit(n, e, 1)[0])


_DOUBLES: dict[int, nn.Module] = {}


def _double(model: nn.Module) -> nn.Module:
    import copy

    key = id(model)
    if key not in _DOUBLES:
        _DOUBLES[key] = copy.deepcopy(model).double()
    return _DOUBLES[key]
