"""The parameters of every simulation, without torch.

The web app builds its routes, its OpenAPI schema and its 422 messages from these models when it
starts, long before torch is imported (the shipped models load in a background thread), so they
live here and `sims.py` / `live.py` import them. Each model forbids unknown fields and bounds
every number; `describe_accepted` turns a field into the words a 422 message quotes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "PARAMS", "SIM_SUMMARIES", "SIM_TITLES", "COMING_WITH_SIM", "TOY_DATASETS", "MAX_POINTS",
    "SimParams", "ParticlesParams", "DigitsParams", "CurvedParams", "FieldParams", "EulerParams",
    "BreakItParams", "SolverParams", "MixtureParams", "LiveParams", "describe_accepted",
    "LogDensityParams", "ReflowParams", "GuidedParams", "RotationParams", "SideBySideParams",
    "FlowMapNFEParams", "FlowMapJumpsParams",
]

Dataset2D = Literal["two_clusters", "moons", "8gaussians"]
Coupling = Literal["independent", "exact_ot"]
FaultName = Literal["curved-velocity", "frozen-time", "velocity-bias"]
#: every toy dataset of the toolkit (`straightline.data.toy_names()`; a test keeps the two equal)
TOY_DATASETS = ("two_clusters", "8gaussians", "moons", "checkerboard", "spirals")
ToyDataset = Literal["two_clusters", "8gaussians", "moons", "checkerboard", "spirals"]
MAX_POINTS = 2000


class SimParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed of the noise")


class ParticlesParams(SimParams):
    dataset: Dataset2D = Field("two_clusters", description="the data the model was trained on")
    coupling: Coupling = Field("independent", description="how the model's training paired noise and data")
    particles: int = Field(500, ge=1, le=2000, description="number of particles")
    steps: int = Field(50, ge=1, le=200, description="Euler steps from t = 0 to t = 1")


class DigitsParams(SimParams):
    images: int = Field(8, ge=1, le=64, description="number of digits drawn")
    steps: int = Field(40, ge=1, le=200, description="Euler steps from t = 0 to t = 1")
    label: int | None = Field(None, ge=0, le=9, description="digit class to draw; none for any")


class CurvedParams(SimParams):
    dataset: Dataset2D = Field("two_clusters", description="the data the learned flow was trained on")
    coupling: Coupling = Field("independent", description="coupling of the learned flow")
    particles: int = Field(200, ge=1, le=2000, description="number of particles")
    steps: int = Field(4, ge=1, le=100, description="Euler steps used for both flows")


class FieldParams(SimParams):
    dataset: Dataset2D = Field("moons", description="the data the model was trained on")
    coupling: Coupling = Field("independent", description="how the model's training paired noise and data")
    t: float = Field(0.5, ge=0.0, le=1.0, allow_inf_nan=False, description="time at which the field is drawn")
    grid: int = Field(21, ge=2, le=64, description="arrows per side of the square grid")
    extent: float = Field(3.5, ge=0.5, le=10.0, allow_inf_nan=False, description="half-width of the square shown")
    particles: int = Field(0, ge=0, le=2000, description="particles carried to time t (0 for none)")


class EulerParams(SimParams):
    dataset: Dataset2D = Field("moons", description="the data the model was trained on")
    coupling: Coupling = Field("independent", description="how the model's training paired noise and data")
    particles: int = Field(1000, ge=10, le=2000, description="number of particles")
    steps: int = Field(10, ge=1, le=500, description="Euler steps")


class BreakItParams(EulerParams):
    faults: tuple[FaultName, ...] = Field((), description="faults injected into the sampler")

    @field_validator("faults")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f for f in FaultName.__args__ if f in v)  # a set, in registry order: one cache entry


class SolverParams(SimParams):
    dataset: Dataset2D = Field("moons", description="the data the model was trained on")
    particles: int = Field(200, ge=1, le=500, description="number of particles")


class MixtureParams(SimParams):
    t: float = Field(0.5, ge=0.0, le=0.98, allow_inf_nan=False, description="time at which both fields are drawn")
    grid: int = Field(17, ge=2, le=48, description="arrows per side of the square grid")
    extent: float = Field(3.5, ge=0.5, le=10.0, allow_inf_nan=False, description="half-width of the square shown")
    samples: int = Field(4096, ge=256, le=16384, description="Monte Carlo samples for the gradient comparison")


class LogDensityParams(SimParams):
    dataset: Dataset2D = Field("8gaussians", description="the data the model was trained on (and whose density is shown)")
    coupling: Coupling = Field("independent", description="how the model's training paired noise and data")
    grid: int = Field(40, ge=8, le=64, description="cells per side of the square heat maps")
    steps: int = Field(20, ge=2, le=50, description="RK4 steps of the backward ODE that carries log p")
    extent: float = Field(3.5, ge=2.0, le=6.0, allow_inf_nan=False, description="half-width of the square shown")


class ReflowParams(SimParams):
    round: int = Field(0, ge=0, le=3, description="reflow round: 0 is the model trained on independent pairs")
    particles: int = Field(300, ge=10, le=500, description="number of trajectories drawn")
    steps: int = Field(40, ge=1, le=50, description="Euler steps of the drawn trajectories")


class GuidedParams(SimParams):
    label: int = Field(3, ge=0, le=9, description="the digit asked for")
    w: float = Field(1.0, ge=0.0, le=5.0, allow_inf_nan=False, description="guidance scale (0 unconditional, 1 conditional)")
    images: int = Field(16, ge=1, le=32, description="number of samples drawn")
    steps: int = Field(30, ge=1, le=50, description="Euler steps from t = 0 to t = 1")


class RotationParams(SimParams):
    particles: int = Field(150, ge=1, le=500, description="number of rotations carried by the flow")
    steps: int = Field(40, ge=1, le=200, description="geodesic Euler steps from t = 0 to t = 1 (at most 51 states are sent)")


class SideBySideParams(SimParams):
    data: Literal["moons", "digits"] = Field("moons", description="the data both models were trained on")
    particles: int = Field(
        300, ge=10, le=400, description="number of trajectories drawn (same noise for both models; the digits draw 16 images)"
    )
    steps: int = Field(20, ge=1, le=200, description="sampler steps (network evaluations) of each model")
    scale: Literal["flow", "ddpm"] = Field(
        "flow", description="diffusion states on the linear path's scale (x_k / c_k) or on DDPM's own (x_k)"
    )


class FlowMapNFEParams(SimParams):
    nfe: Literal[1, 2, 4, 8] = Field(1, description="network evaluations (steps or jumps) of every sampler")
    particles: int = Field(500, ge=10, le=1000, description="number of particles drawn (same noise for every model)")

    @field_validator("nfe", mode="before")
    @classmethod
    def _from_text(cls, v: Any) -> Any:
        return int(v) if isinstance(v, str) and v.strip().isdigit() else v  # a query parameter arrives as text


class FlowMapJumpsParams(SimParams):
    particles: int = Field(60, ge=1, le=150, description="number of particles whose paths and jumps are sent")
    grid: int = Field(20, ge=2, le=20, description="times 0, 1/grid, ..., 1 at which the jumps X_{s,t} start and land")


PARAMS: dict[str, type[SimParams]] = {
    "particles-flow": ParticlesParams,
    "digit-emerging": DigitsParams,
    "curved-vs-straight": CurvedParams,
    "mixture-oracle": MixtureParams,
    "velocity-field": FieldParams,
    "euler-steps": EulerParams,
    "euler-faults": BreakItParams,
    "solver-orders": SolverParams,
    "log-density": LogDensityParams,
    "reflow-straightening": ReflowParams,
    "guided-digits": GuidedParams,
    "rotation-flow": RotationParams,
    "side-by-side": SideBySideParams,
    "flowmap-nfe": FlowMapNFEParams,
    "flowmap-jumps": FlowMapJumpsParams,
}

#: one line per simulation, for the API documentation
SIM_SUMMARIES: dict[str, str] = {
    "particles-flow": "Particles carried from Gaussian noise to the data by a shipped 2-D model (Euler), every step.",
    "digit-emerging": "Digits integrated from noise by the shipped class-conditional digits model, every step.",
    "curved-vs-straight": "Per-pair straight and cosine paths (exact and Euler) and the learned flow's paths, with Euler errors.",
    "mixture-oracle": "The closed-form marginal velocity of a two-cluster Gaussian mixture beside the trained model's field, "
                      "and Monte Carlo CFM and FM loss gradients for the same weights.",
    "velocity-field": "A shipped model's velocity v(x, t) on a grid at time t, with particles carried to t.",
    "euler-steps": "Particles integrated with a given number of Euler steps, and their W2 distance to the data.",
    "euler-faults": "The Break-It lab: the healthy sampler beside one with faults injected, W2 to the data before and after.",
    "solver-orders": "Error at t = 1 against function evaluations for euler, midpoint, heun, rk4 and dopri5, with fitted slopes.",
    "log-density": "A shipped 2-D model's log-density on a grid (exact divergence, RK4) beside the data's true density, "
                   "with the mean gap on data points.",
    "reflow-straightening": "Trajectories of the 8gaussians model after 0 to 3 rounds of reflow, with every round's "
                            "straightness and one-step W2.",
    "guided-digits": "Class-conditional digits from the tiny MMDiT under classifier-free guidance of scale w, "
                     "with the digit classifier's accuracy on them.",
    "rotation-flow": "Haar-random rotations carried to a three-mode distribution on SO(3) by a shipped flow, "
                     "with the mean geodesic distance to the nearest mode.",
    "side-by-side": "DDIM (a DDPM model) and Euler (a flow-matching model) on the same data (moons or 8x8 digits) from "
                    "the same noise, paths or images on the linear-path scale, W2 (moons) or digit FD of each.",
    "flowmap-nfe": "Flow matching (Euler), a 2-rectified flow (Euler), a shortcut model and MeanFlow (jumps) on the moons "
                   "from the same noise with 1, 2, 4 or 8 network evaluations, W2 of each.",
    "flowmap-jumps": "Particles' ODE paths under the moons flow-matching model (fine RK4) and the MeanFlow model's "
                     "jumps X_{s,t} from every grid time s to every later grid time t.",
}

#: a short title per simulation, shown above its figure (the caption says what to look for)
SIM_TITLES: dict[str, str] = {
    "particles-flow": "Particles flowing from noise to data",
    "digit-emerging": "A digit emerging from noise",
    "curved-vs-straight": "Curved paths against straight ones",
    "mixture-oracle": "The exact marginal field against a trained network",
    "velocity-field": "The velocity field of a trained model",
    "live-training": "Train a model and watch it learn",
    "euler-steps": "Euler steps",
    "euler-faults": "Break the sampler",
    "solver-orders": "Error against function evaluations",
    "log-density": "The density a flow assigns, against the truth",
    "reflow-straightening": "Paths straightening round by round",
    "guided-digits": "Guidance on a tiny MMDiT",
    "rotation-flow": "A flow on the rotation group",
    "side-by-side": "Diffusion and flow matching side by side",
    "flowmap-nfe": "Few-step samplers side by side",
    "flowmap-jumps": "Jumps of a flow map over the ODE path",
}

#: simulations named in the chapters whose machinery another issue brings
COMING_WITH_SIM: dict[str, str] = {}


class LiveParams(BaseModel):
    """What the learner asks the live-training simulation to train on."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dataset: ToyDataset | None = Field("moons", description="a toy dataset name, or null when points are given")
    points: list[tuple[float, float]] | None = Field(
        None, description=f"points drawn by the learner, 8 to {MAX_POINTS}, coordinates in [-4, 4]"
    )
    steps: int = Field(1500, ge=10, le=5000, description="training steps")
    snapshot_every: int = Field(50, ge=10, le=1000, description="steps between streamed snapshots")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed of the weights, batches and sample noise")

    @field_validator("points")
    @classmethod
    def _bounded(cls, v: list | None) -> list | None:
        if v is None:
            return v
        if not 8 <= len(v) <= MAX_POINTS:
            raise ValueError(f"points must hold 8 to {MAX_POINTS} points, got {len(v)}")
        if any(abs(c) > 4 for p in v for c in p):
            raise ValueError("every point coordinate must lie in [-4, 4]")
        return v


def _accepted(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        text = " or ".join(_accepted(s) for s in kinds)
        return text + (", or empty for none" if len(kinds) < len(schema["anyOf"]) else "")
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        if "enum" in items:
            return "any of " + ", ".join(str(v) for v in items["enum"]) + " (comma-separated)"
        return "a list"
    return _accepted_scalar(schema, kind)


def _accepted_scalar(schema: dict[str, Any], kind: Any) -> str:
    """'an integer in 1..10', 'a number >= 0', 'text', ... for a scalar schema of type `kind`."""
    low, high = schema.get("minimum"), schema.get("maximum")
    name = {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "text"}.get(kind, "a value")
    if low is not None and high is not None:
        return f"{name} in {low}..{high}"
    if low is not None:
        return f"{name} >= {low}"
    if high is not None:
        return f"{name} <= {high}"
    return name


def describe_accepted(model: type[BaseModel], field: str) -> str:
    """What `field` of `model` accepts, in words: 'an integer in 1..1000', 'one of moons, ...'."""
    schema = model.model_json_schema()
    prop = schema.get("properties", {}).get(field)
    if prop is None:
        return "one of the parameters " + ", ".join(model.model_fields)
    return _accepted(prop)
