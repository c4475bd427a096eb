""""Run it in the simulation": a passing Build-It function drives a small two-clusters simulation.

The design, and why it is honest:

- The sandbox cannot load the course's shipped models (it sees no package files, and models are
  not data we hand to untrusted code), so the learner's function runs on things the worker can
  build from plain numbers (`simkit.py`, mounted next to the worker):
  * `euler_sample` integrates the **exact** velocity field of the two-clusters data (a Gaussian
    mixture: its marginal velocity is closed-form, the field the chapter's shipped model learns)
    from noise the trusted side chooses;
  * `cfm_loss` / `weighted_cfm_loss` train a small seeded MLP for a few hundred Adam steps on fresh
    two-clusters batches generated in the sandbox, and the trained model is sampled with Euler;
  * `meanflow_target` trains a small seeded flow-map MLP u(x, s, t) to regress onto the learner's
    target (MeanFlow, plain squared error, uniform time pairs, a quarter of them with s = t), and
    the trained map samples in one jump, x_0 + u(x_0, 0, 1).
- The sandbox returns numbers only (final particles, the path of the first particles, the losses),
  parsed strictly (`protocol.parse_run_record`).
- The trusted side runs the same pipeline with the toolkit's own function (`straightline.integrate`
  on `straightline.oracles.GaussianMixture`; `simkit.train_run` with `straightline.cfm_loss`), and
  computes every number shown (W2 to the data with `straightline.metrics.w2`, the finite-sample
  floor band, the gap to the toolkit's particles) itself. A run is never a verdict: grading is done by
  the tests; a run only shows what the learner's passing function does.

W2 is measured as the course measures it everywhere: PARTICLES particles against PARTICLES fresh
data points, beside the one floor the chapters quote (`straightline.metrics.w2_floor_band` at the
same n with the course's repeats, i.e. the row of `course/experiments/w2-floors.json`): the mean and
the 10-90 % band of W2 between two independent draws of the data. With two clusters one W2 at
n = 500 depends on how each draw splits between the clusters; the band shows how much.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from straightline.metrics import FLOOR_REPEATS, W2Floor, w2_floor_band
from straightline.oracles import toy_mixture

from .catalog import DEFAULT_EULER_STEPS, EULER_STEPS, SIMULATIONS
from .inside import simkit
from .protocol import ProtocolError, RunRecord, parse_run_record
from .settings import GraderSettings
from .worker_handle import RunOutcome

__all__ = [
    "EULER_STEPS",
    "RunResult",
    "SIMULATIONS",
    "TWO_CLUSTERS",
    "build_run_result",
    "floor_band",
    "run_infrastructure_result",
    "run_spec",
    "simulation_of",
]

log = logging.getLogger(__name__)

DATASET = "two_clusters"
#: the toolkit's `two_clusters` dataset as the mixture the sandbox's simkit rebuilds (JSON)
TWO_CLUSTERS: dict[str, Any] = {
    name: getattr(toy_mixture(DATASET), name).tolist() for name in ("means", "stds", "weights")
}
PARTICLES = 500
NOISE_SEED = 2024
DATA_SEED = 4048
MAX_COORDINATE = 1e4  # particles beyond this are reported, not measured
TRAIN = {"seed": 7, "train_steps": 400, "batch": 256, "lr": 3e-3, "sample_steps": 50}
#: meanflow_target: a flow-map network trained with the learner's target, sampled in one jump
FLOW_MAP_TRAIN = {"model": "flowmap", "seed": 7, "train_steps": 1000, "batch": 256, "lr": 3e-3, "sample_steps": 1,
                  "diagonal": 0.25}


RunStatus = Literal["ok", "error", "timeout", "infrastructure_error"]


def simulation_of(exercise: str) -> Literal["euler", "train"]:
    try:
        return SIMULATIONS[exercise]
    except KeyError:
        raise KeyError(f"exercise {exercise!r} has no simulation; accepted: {', '.join(SIMULATIONS)}") from None


@functools.cache
def _noise() -> Tensor:
    return torch.randn(PARTICLES, 2, generator=torch.Generator().manual_seed(NOISE_SEED))  # [N, 2]


@functools.cache
def _data() -> Tensor:
    from straightline.data import toy

    return toy(DATASET, PARTICLES, seed=DATA_SEED)  # [N, 2] fresh data, as many points as particles


def floor_band() -> W2Floor:
    """The floor band at PARTICLES points: what two independent draws of the data score (cached by
    metrics), over the toolkit's FLOOR_REPEATS pairs: the chapters' w2-floors.json row for two_clusters."""
    return w2_floor_band(DATASET, PARTICLES, FLOOR_REPEATS)


def run_spec(exercise: str, steps: int | None = None) -> dict[str, Any]:
    """The JSON the sandbox gets for a simulation job (`steps`: Euler steps, euler_sample only)."""
    mode = simulation_of(exercise)
    x_0 = _noise().tolist()
    if mode == "euler":
        return {"mode": "euler", "mixture": TWO_CLUSTERS, "x_0": x_0, "steps": check_steps(steps)}
    if exercise == "meanflow_target":
        return {"mode": "train", "mixture": TWO_CLUSTERS, "x_0": x_0, **FLOW_MAP_TRAIN}
    return {"mode": "train", "mixture": TWO_CLUSTERS, "x_0": x_0, **TRAIN}


def check_steps(steps: int | None) -> int:
    """Euler steps for euler_sample's simulation: default 20, accepted 1..100."""
    if steps is None:
        return DEFAULT_EULER_STEPS
    low, high = EULER_STEPS
    if isinstance(steps, bool) or not isinstance(steps, int) or not low <= steps <= high:
        raise ValueError(f"steps must be an integer in {low}..{high}, got {steps!r}")
    return steps


@dataclass(frozen=True)
class _Reference:
    final: Tensor
    visited: tuple[Tensor, ...]
    losses: tuple[float, ...] = ()


_ref_lock = threading.Lock()


@functools.lru_cache(maxsize=256)
def _reference_cached(exercise: str, steps: int) -> _Reference:
    import straightline as sl

    mode = simulation_of(exercise)
    if mode == "euler":
        oracle = toy_mixture(DATASET)
        traj = sl.integrate(oracle, _noise().double(), steps=steps, method="euler", keep_path=True)
        path = traj.xs  # [steps + 1, N, 2]
        visited = tuple(path[k, : simkit.MAX_PATH_PARTICLES] for k in range(steps))
        return _Reference(final=traj.x.double(), visited=visited)
    out = _in_child_process(_train_reference, exercise)
    final = torch.tensor(out["final"], dtype=torch.float64)
    visited = tuple(torch.tensor(v, dtype=torch.float64) for v in out["visited"])
    return _Reference(final=final, visited=visited, losses=tuple(out["losses"]))


def _train_reference(exercise: str) -> dict[str, Any]:
    """The training run with the toolkit's own loss (run in a child process, see below)."""
    import straightline as sl

    torch.set_num_threads(1)
    if exercise == "meanflow_target":
        from straightline.flowmaps import meanflow_target as loss
    elif exercise == "weighted_cfm_loss":
        from straightline.timesteps import inverse_one_minus_t

        weight = inverse_one_minus_t(1e-2)

        def loss(model: Any, x_1: Tensor) -> Tensor:
            return sl.cfm_loss(model, x_1, weight=weight)
    else:

        def loss(model: Any, x_1: Tensor) -> Tensor:
            return sl.cfm_loss(model, x_1)

    state = torch.random.get_rng_state()  # the calling process's own draws are not disturbed
    try:
        return simkit.train_run(loss, run_spec(exercise))
    finally:
        torch.random.set_rng_state(state)


def _in_child_process(fn: Any, *args: Any) -> Any:
    """`fn(*args)` in a fresh child process (trusted code only), else here if that cannot start.

    The reference training is a few seconds of small torch operations: in the web server's own
    process it would hold the interpreter lock long enough to delay page requests by hundreds of
    milliseconds. It runs once per exercise and process (the result is cached).
    """
    import concurrent.futures
    import multiprocessing

    try:
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(fn, *args).result(timeout=600)
    except (OSError, concurrent.futures.process.BrokenProcessPool) as exc:
        log.warning("reference computation in a child process failed (%s); computing it here", exc)
        return fn(*args)


def reference(exercise: str, steps: int) -> _Reference:
    """The toolkit's own result for the same simulation (computed once per process, then cached)."""
    with _ref_lock:
        return _reference_cached(exercise, steps)


def warm_reference(exercise: str, steps: int | None = None) -> None:
    """Compute (and cache) the reference and the data/floor now, e.g. while the sandbox runs."""
    reference(exercise, check_steps(steps) if simulation_of(exercise) == "euler" else 0)
    floor_band()


@dataclass(frozen=True)
class RunResult:
    """What "run it in the simulation" shows. `to_dict()` is the page's JSON; `summary()` what is stored.

    status: ok (numbers came back and are finite), error (the learner's function raised or gave
    numbers that are not finite), timeout, infrastructure_error (not the learner's fault).
    w2: W2 from the learner's particles to the data sample; w2_reference the same for the toolkit's
    particles; w2_floor, w2_floor_low, w2_floor_high: the floor band (mean, 10 % and 90 % of W2
    between two independent draws of the data at the same n); gap: the largest distance between a learner's
    particle and the toolkit's particle from the same noise (euler_sample only).
    """

    exercise: str
    mode: str
    status: RunStatus
    message: str
    steps: int = 0
    train_steps: int = 0
    particles: int = PARTICLES
    w2: float | None = None
    w2_reference: float | None = None
    w2_floor: float | None = None
    w2_floor_low: float | None = None
    w2_floor_high: float | None = None
    gap: float | None = None
    final_loss: float | None = None
    final_loss_reference: float | None = None
    data: list[list[float]] = field(default_factory=list)
    learner: list[list[float]] = field(default_factory=list)
    reference: list[list[float]] = field(default_factory=list)
    paths: list[list[list[float]]] = field(default_factory=list)  # per particle: its positions
    reference_paths: list[list[list[float]]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    reference_losses: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    output: str = ""
    output_truncated: bool = False
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def summary(self) -> dict[str, Any]:
        """The numbers worth keeping in the learner's progress (no point clouds)."""
        keep = ("exercise", "mode", "status", "message", "steps", "train_steps", "particles", "w2", "w2_reference",
                "w2_floor", "w2_floor_low", "w2_floor_high", "gap", "final_loss", "final_loss_reference", "duration_s")
        return {k: getattr(self, k) for k in keep}


def _round(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def _points(t: Tensor) -> list[list[float]]:
    return [[round(float(a), 4), round(float(b), 4)] for a, b in t.to(torch.float64).tolist()]


def _paths(visited: tuple[Tensor, ...], final: Tensor) -> list[list[list[float]]]:
    """Per particle (the first MAX_PATH_PARTICLES), its positions at each step then at t = 1."""
    k = min([v.shape[0] for v in visited] + [final.shape[0], simkit.MAX_PATH_PARTICLES]) if visited else 0
    if k == 0:
        return []
    stacked = torch.stack([v[:k] for v in visited] + [final[:k]])  # [steps + 1, k, 2]
    return [_points(stacked[:, i]) for i in range(k)]


def run_infrastructure_result(exercise: str, message: str, *, seconds: float = 0.0) -> RunResult:
    return RunResult(
        exercise=exercise,
        mode=SIMULATIONS.get(exercise, "euler"),
        status="infrastructure_error",
        message=f"The simulation could not run: {message}. This is a problem on our side; try again in a moment.",
        duration_s=round(seconds, 3),
    )


def _error_text(err: Any) -> str:
    where = f" at line {err.line}" if err.line else ""
    return f"{err.type}{where}: {err.message}".rstrip(": ")


def build_run_result(
    exercise: str, spec: dict[str, Any], outcome: RunOutcome, settings: GraderSettings, warning: str | None = None
) -> RunResult:
    """The result shown for one simulation job (CPU work: W2 with exact optimal transport)."""
    if outcome.infra_error is not None:
        return run_infrastructure_result(exercise, outcome.infra_error, seconds=outcome.seconds)
    common = _run_common(exercise, spec, outcome, warning)
    record = _run_record(spec, outcome, settings)
    if isinstance(record, tuple):
        status, message = record
        return RunResult(status=status, message=message, **common)
    ref = _add_reference(common, exercise)
    problem = _training_problem(common, record) or _particles_problem(record.final)
    if problem is not None:
        return RunResult(status="error", message=problem, **common)
    return RunResult(status="ok", message=_success_message(common, record, ref), **common)


def _run_common(exercise: str, spec: dict[str, Any], outcome: RunOutcome, warning: str | None) -> dict[str, Any]:
    """The fields every result of a simulation job carries, whatever its status."""
    mode = spec["mode"]
    return {
        "exercise": exercise,
        "mode": mode,
        "steps": int(spec["steps"] if mode == "euler" else spec["sample_steps"]),
        "train_steps": int(spec.get("train_steps", 0)),
        "duration_s": round(outcome.seconds, 3),
        "output": outcome.output,
        "output_truncated": outcome.output_truncated,
        "warning": warning,
    }


def _run_record(spec: dict[str, Any], outcome: RunOutcome, settings: GraderSettings) -> RunRecord | tuple[RunStatus, str]:
    """The job's parsed `run` record, or (status, message) saying why there is none."""
    mode = spec["mode"]
    what = "training" if mode == "train" else "simulation"

    def error(message: str, status: RunStatus = "error") -> tuple[RunStatus, str]:
        return status, message

    if outcome.protocol_error is not None:
        return error("Your code interfered with the grader's reporting, so the simulation's numbers cannot be shown.")
    by_type = {r["type"]: r for r in outcome.records}
    if "syntax_error" in by_type or "load_error" in by_type or "missing_function" in by_type:
        return error("Your saved solution no longer loads (a syntax error, an error at load time, or a missing function): submit it again.")
    if "run" not in by_type and outcome.timed_out:
        return error(f"The {what} did not finish within {settings.run_timeout_s:g} s.", "timeout")
    if "run" not in by_type:
        return error(f"The {what} ended before reporting its result (it was killed, usually for going over the CPU or memory limit).")
    try:
        record = parse_run_record(
            by_type["run"],
            particles=len(spec["x_0"]),
            dim=2,
            max_steps=1000 if mode == "euler" else int(spec["sample_steps"]),
            training=mode == "train",
        )
    except ProtocolError:
        return error("The simulation's numbers came back malformed (did your code patch the worker?), so they cannot be shown.")
    if record.error is not None:
        return error(f"Your function raised {_error_text(record.error)} during the {what}.")
    assert record.final is not None
    return record


def _add_reference(common: dict[str, Any], exercise: str) -> _Reference:
    """The data, the toolkit's own run of the same simulation, and the W2 figures to compare with."""
    from straightline.metrics import w2

    euler = common["mode"] == "euler"
    ref = reference(exercise, common["steps"] if euler else 0)
    data = _data()
    common.update(
        data=_points(data),
        reference=_points(ref.final),
        reference_paths=_paths(ref.visited, ref.final),
        w2_reference=_round(w2(ref.final, data)),
        w2_floor=_round(floor_band().mean),
        w2_floor_low=_round(floor_band().low),
        w2_floor_high=_round(floor_band().high),
    )
    if not euler:
        common["reference_losses"] = [round(v, 5) for v in ref.losses]
        common["final_loss_reference"] = _round(ref.losses[-1] if ref.losses else None, 5)
    return ref


def _training_problem(common: dict[str, Any], record: RunRecord) -> str | None:
    """For a training job: its losses into `common`, and the message when one is not finite."""
    if common["mode"] != "train":
        return None
    assert record.losses is not None
    losses = [float(v) for v in record.losses.tolist()]
    common["losses"] = [round(v, 5) if math.isfinite(v) else None for v in losses]
    common["final_loss"] = _round(losses[-1], 5)
    bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if bad is None:
        return None
    return f"Training stopped at step {bad}: the loss became {losses[bad]}, so there are no samples to show."


def _particles_problem(learner: Tensor) -> str | None:
    """Why the learner's final particles [N, 2] cannot be shown, or None."""
    if not bool(torch.isfinite(learner).all()):
        return "Some of the final particles are not finite numbers (nan or inf)."
    if float(learner.abs().max()) > MAX_COORDINATE:
        return f"Some of the final particles are more than {MAX_COORDINATE:g} away from the origin; the data lie within 4."
    return None


def _floor_words(common: dict[str, Any]) -> str:
    return (f"two draws of the data: {common['w2_floor']:.3f} on average, 10-90 % "
            f"{common['w2_floor_low']:.3f}-{common['w2_floor_high']:.3f}")


def _success_message(common: dict[str, Any], record: RunRecord, ref: _Reference) -> str:
    """The learner's particles [N, 2], W2 (and gap) into `common`; the sentence that compares them."""
    from straightline.metrics import w2

    learner = record.final
    learner_w2 = w2(learner, _data())
    common.update(learner=_points(learner), paths=_paths(record.visited, learner), w2=_round(learner_w2))
    steps = common["steps"]
    if common["mode"] == "euler":
        gap = float((learner - ref.final).norm(dim=1).max())
        common["gap"] = _round(gap, 6)
        return (
            f"Your euler_sample moved {len(learner)} particles through the exact two-clusters field in "
            f"{steps} step{'s' if steps != 1 else ''}: W2 to the data {learner_w2:.3f} (the toolkit's Euler: "
            f"{common['w2_reference']:.3f}; {_floor_words(common)}). Largest distance from the "
            f"toolkit's particles: {gap:.2g}."
        )
    if common["exercise"] == "meanflow_target":
        return (
            f"A small flow-map MLP trained for {common['train_steps']} steps on your MeanFlow target, sampled "
            f"in one jump x_1 = x_0 + u(x_0, 0, 1): W2 to the data {learner_w2:.3f} (the same training with the "
            f"toolkit's target: {common['w2_reference']:.3f}; {_floor_words(common)})."
        )
    return (
        f"A small MLP trained for {common['train_steps']} steps with your loss, sampled with {steps} Euler "
        f"steps: W2 to the data {learner_w2:.3f} (the same training with the toolkit's loss: "
        f"{common['w2_reference']:.3f}; {_floor_words(common)})."
    )
