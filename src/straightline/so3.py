"""The rotation group SO(3): exp / log maps, geodesics, noise, a toy dataset, and flow matching.

Rotations are 3 x 3 matrices R (R^T R = I, det R = 1) in batches [..., 3, 3]; tangent vectors are
rotation vectors w in R^3 (axis times angle), with hat(w) the skew matrix such that
hat(w) a = w x a (cross product) and vee its inverse.

- `exp(w)` = I + sin θ/θ hat(w) + (1 - cos θ)/θ^2 hat(w)^2, θ = |w| (Rodrigues), with Taylor
  coefficients for small θ.
- `log(R)` returns the w with |w| <= π and exp(w) = R. The angle is θ = atan2(|s|, c) with
  s = vee(R - R^T) / 2 = sin θ · axis and c = (tr R - 1) / 2 = cos θ, which is accurate at every
  angle (arccos of c is not, near 0 and π). Away from π the axis comes from s; near π (where s
  vanishes) it comes from the symmetric part (R + R^T) / 2 = c I + (1 - c) a a^T, with its sign
  taken from s. At exactly θ = π both w and -w are logarithms; either may be returned.
- `distance(R_0, R_1)` = |log(R_0^T R_1)|, the rotation angle in [0, π]: the geodesic distance of
  the bi-invariant metric (so d(Q R_0, Q R_1) = d(R_0 Q, R_1 Q) = d(R_0, R_1)).
- `geodesic(R_0, R_1, t)` = R_0 exp(t log(R_0^T R_1)), the constant-speed shortest path.

Flow matching on SO(3) (frame convention). Noise R_0 is Haar-uniform at t = 0, data R_1 at t = 1,
and R_t = geodesic(R_0, R_1, t) = R_0 exp(t u) with u = log(R_0^T R_1) in R^3. Its time
derivative is dR_t/dt = R_t hat(u): the velocity is expressed in the **body frame** (right
multiplication; the spatial-frame angular velocity is R_t u), and in that frame it is the
constant u along the whole geodesic. A model maps (R_t flattened to [B, 9], t [B]) to a
body-frame tangent vector [B, 3]; `so3_cfm_loss` regresses it on u, and `so3_sample` integrates
dR/dt = R hat(v(R, t)) by geodesic Euler steps R_{k+1} = R_k exp(dt v(R_k, t_k)), which stay on
SO(3) exactly (up to rounding).

The pair target u is undefined when R_0^T R_1 is a rotation by exactly π (the cut locus), an
event of probability zero under Haar noise.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ._checks import check_positive_int, check_time
from .models.so3net import SO3VelocityMLP

__all__ = [
    "hat",
    "vee",
    "exp",
    "log",
    "angle",
    "distance",
    "geodesic",
    "random_rotations",
    "isotropic_noise",
    "ROTATION_MODES",
    "ROTATION_NOISE",
    "rotation_dataset",
    "SO3VelocityMLP",
    "so3_cfm_loss",
    "so3_sample",
]


def _check_vectors(w: Tensor, name: str = "w") -> None:
    if not isinstance(w, Tensor) or w.ndim < 1 or w.shape[-1] != 3:
        shape = list(getattr(w, "shape", []))
        raise ValueError(f"{name} must be a tensor of rotation vectors [..., 3], got shape {shape}")


def _check_matrices(R: Tensor, name: str = "R") -> None:
    if not isinstance(R, Tensor) or R.ndim < 2 or R.shape[-2:] != (3, 3):
        shape = list(getattr(R, "shape", []))
        raise ValueError(f"{name} must be a tensor of 3 x 3 matrices [..., 3, 3], got shape {shape}")


def hat(w: Tensor) -> Tensor:
    """Rotation vectors [..., 3] -> skew-symmetric matrices [..., 3, 3] with hat(w) a = w x a."""
    _check_vectors(w)
    x, y, z = w.unbind(-1)  # [...] each
    o = torch.zeros_like(x)
    rows = (torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1))
    return torch.stack(rows, -2)  # [..., 3, 3]


def vee(W: Tensor) -> Tensor:
    """Skew matrices [..., 3, 3] -> vectors [..., 3]; the inverse of hat (of W's skew part)."""
    _check_matrices(W, "W")
    return 0.5 * torch.stack(
        [W[..., 2, 1] - W[..., 1, 2], W[..., 0, 2] - W[..., 2, 0], W[..., 1, 0] - W[..., 0, 1]], -1
    )  # [..., 3]


_SMALL = 1e-3  # below this angle the Rodrigues coefficients use their Taylor series


def exp(w: Tensor) -> Tensor:
    """Rotation vectors [..., 3] -> rotations [..., 3, 3] (Rodrigues; stable at and near 0)."""
    _check_vectors(w)
    theta2 = (w * w).sum(-1)  # [...]
    theta = theta2.sqrt()
    small = theta < _SMALL
    safe = torch.where(small, torch.ones_like(theta), theta)  # never divide by ~0, even unused
    a = torch.where(small, 1 - theta2 / 6 + theta2 * theta2 / 120, torch.sin(safe) / safe)  # sin θ / θ
    b = torch.where(small, 0.5 - theta2 / 24 + theta2 * theta2 / 720, (1 - torch.cos(safe)) / (safe * safe))
    K = hat(w)  # [..., 3, 3]
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(K)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def _angle_parts(R: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(θ [...], s = sin θ · axis [..., 3], c = cos θ [...]) of rotations [..., 3, 3]."""
    s = vee(R)  # [..., 3] the skew part, sin θ · axis
    c = 0.5 * (R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1)  # [...]  cos θ
    theta = torch.atan2(s.norm(dim=-1), c)  # [...] in [0, π]
    return theta, s, c


def angle(R: Tensor) -> Tensor:
    """The rotation angle θ in [0, π] of rotations [..., 3, 3], accurate at every angle."""
    _check_matrices(R)
    return _angle_parts(R)[0]


def _log_near_pi(R: Tensor, theta: Tensor, s: Tensor, c: Tensor) -> Tensor:
    """log(R) [..., 3] with the axis taken from the symmetric part of R [..., 3, 3] (accurate
    near θ = π, where s = sin θ · a [..., 3] vanishes); theta, c = cos θ [...]."""
    tiny = torch.finfo(R.dtype).tiny  # keeps the branch that torch.where discards finite
    # a a^T = (sym - c I) / (1 - c), sym = (R + R^T) / 2; take the column with the largest diagonal
    sym = 0.5 * (R + R.transpose(-1, -2))  # [..., 3, 3]
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    one_minus_c = (1 - c).clamp_min(1.0)[..., None, None]  # only used where c < 0, so 1 - c >= 1
    M = (sym - c[..., None, None] * eye) / one_minus_c  # [..., 3, 3] ≈ a a^T
    diag = M.diagonal(dim1=-2, dim2=-1)  # [..., 3]
    i = diag.argmax(-1, keepdim=True)  # [..., 1]
    col = torch.gather(M, -1, i[..., None].expand(*M.shape[:-1], 1)).squeeze(-1)  # [..., 3] = a_i a
    axis = col / torch.gather(diag, -1, i).clamp_min(tiny).sqrt()  # [..., 3] = ±a
    sign = torch.where((axis * s).sum(-1) < 0, -1.0, 1.0).to(R.dtype)  # [...] align with sin θ · a
    return (sign * theta)[..., None] * axis  # [..., 3]


def log(R: Tensor) -> Tensor:
    """Rotations [..., 3, 3] -> rotation vectors [..., 3] with |w| <= π and exp(w) = R.

    Stable near 0 (Taylor series of θ / sin θ) and near π (axis from the symmetric part).
    """
    _check_matrices(R)
    theta, s, c = _angle_parts(R)  # [...], [..., 3], [...]
    theta2 = theta * theta
    tiny = torch.finfo(R.dtype).tiny  # keeps the branch that torch.where discards finite
    # away from π: w = θ / sin θ · s
    sin = s.norm(dim=-1)  # [...]
    small = theta < _SMALL
    ratio = torch.where(small, 1 + theta2 / 6 + 7 * theta2 * theta2 / 360, theta / sin.clamp_min(tiny))
    w_main = ratio[..., None] * s  # [..., 3]
    w_pi = _log_near_pi(R, theta, s, c)  # [..., 3]
    near_pi = c < -0.5  # θ > 2π/3: the axis from s would lose precision as sin θ -> 0
    return torch.where(near_pi[..., None], w_pi, w_main)


def distance(R_0: Tensor, R_1: Tensor) -> Tensor:
    """Geodesic distance [...] (the angle of R_0^T R_1, in [0, π]) between rotations [..., 3, 3]."""
    _check_matrices(R_0, "R_0")
    _check_matrices(R_1, "R_1")
    return angle(R_0.transpose(-1, -2) @ R_1)


def geodesic(R_0: Tensor, R_1: Tensor, t: Tensor | float) -> Tensor:
    """R_0 exp(t log(R_0^T R_1)) [..., 3, 3]: R_0 at t = 0, R_1 at t = 1, constant speed.

    t is a number or a tensor broadcasting against the batch shape [...] (e.g. [B] for [B, 3, 3]).
    """
    _check_matrices(R_0, "R_0")
    _check_matrices(R_1, "R_1")
    u = log(R_0.transpose(-1, -2) @ R_1)  # [..., 3] body-frame velocity
    t = torch.as_tensor(t, dtype=u.dtype, device=u.device)
    return R_0 @ exp(t[..., None] * u)


def _quaternion_to_matrix(q: Tensor) -> Tensor:
    """Unit quaternions [..., 4] (w, x, y, z) -> rotations [..., 3, 3]."""
    w, x, y, z = q.unbind(-1)
    rows = (
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    )
    return torch.stack(rows, -2)


def random_rotations(
    n: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """n Haar-uniform rotations [n, 3, 3]: a normalised 4-D Gaussian is a uniform unit quaternion.

    Their angles θ have density (1 - cos θ) / π on [0, π].
    """
    check_positive_int(n, "n")
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)  # [n, 4]
    q = q / q.norm(dim=-1, keepdim=True)
    return _quaternion_to_matrix(q).to(dtype=dtype, device=device)  # [n, 3, 3]


def isotropic_noise(
    n: int, scale: float, *, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """n rotations exp(w) [n, 3, 3] with w ~ N(0, scale^2 I_3): noise around the identity.

    Isotropic: Q exp(w) Q^T = exp(Q w) has the same law for every rotation Q. (For small `scale`
    this is close to the isotropic Gaussian IGSO(3) of the same scale, but it is not that heat
    kernel.) Perturb rotations R by right multiplication, R @ isotropic_noise(...).
    """
    check_positive_int(n, "n")
    is_number = isinstance(scale, (int, float)) and not isinstance(scale, bool)
    if not (is_number and math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale must be a finite number >= 0 (radians), got {scale!r}")
    w = torch.randn(n, 3, generator=generator, dtype=torch.float64) * scale  # [n, 3]
    return exp(w).to(dtype)


# The rotation dataset, defined once (version 1): three modes given as rotation vectors, equal
# weights, each sample a mode times isotropic noise of scale 0.15 rad.
_MODE_VECTORS = torch.tensor(
    [[0.0, 0.0, 0.0], [math.pi / 2, 0.0, 0.0], [0.0, 2.0, 1.0]], dtype=torch.float64
)  # [3, 3]
ROTATION_MODES = exp(_MODE_VECTORS)  # [3, 3, 3] (float64)
ROTATION_NOISE = 0.15


def rotation_dataset(n: int, seed: int | None = 0, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """n rotations [n, 3, 3] concentrated around the three `ROTATION_MODES`.

    Each sample is M_k exp(w) with k uniform over the modes and w ~ N(0, 0.15^2 I_3). The same
    seed gives the same rotations on every machine; seed=None uses torch's global RNG.
    """
    check_positive_int(n, "n")
    g = None if seed is None else torch.Generator().manual_seed(int(seed))
    k = torch.randint(0, len(ROTATION_MODES), (n,), generator=g)  # [n]
    noise = isotropic_noise(n, ROTATION_NOISE, generator=g, dtype=torch.float64)  # [n, 3, 3]
    return (ROTATION_MODES[k] @ noise).to(dtype)


def _noise_and_times(R_1: Tensor, R_0: Tensor | None, t: Tensor | None) -> tuple[Tensor, Tensor]:
    """The given (R_0 [B, 3, 3], t [B]) checked against R_1 [B, 3, 3], or fresh draws from the
    global RNG for those not given (R_0 first, then t)."""
    batch = R_1.shape[0]
    if R_0 is None:
        R_0 = random_rotations(batch, dtype=R_1.dtype, device=R_1.device)  # [B, 3, 3]
    elif R_0.shape != R_1.shape:
        raise ValueError(f"R_0 and R_1 must have the same shape, got {list(R_0.shape)} and {list(R_1.shape)}")
    if t is None:
        t = torch.rand(batch, dtype=R_1.dtype, device=R_1.device)  # [B]
    else:
        check_time(t, batch)
    return R_0, t


def so3_cfm_loss(
    model: Callable[[Tensor, Tensor], Tensor], R_1: Tensor, *, R_0: Tensor | None = None, t: Tensor | None = None
) -> Tensor:
    """Conditional flow matching on SO(3): mean over the batch and the 3 components of
    (model(R_t flattened, t) - u)^2, with u = log(R_0^T R_1) the constant body-frame velocity of
    the geodesic R_t = R_0 exp(t u).

    R_1 [B, 3, 3] are data; R_0 defaults to Haar-uniform noise and t to U(0, 1) per sample (both
    from torch's global RNG); pass them to fix the draw.
    """
    _check_matrices(R_1, "R_1")
    if R_1.ndim != 3 or R_1.shape[0] == 0:
        raise ValueError(f"R_1 must be a non-empty batch [B, 3, 3], got {list(R_1.shape)}")
    batch = R_1.shape[0]
    R_0, t = _noise_and_times(R_1, R_0, t)  # [B, 3, 3], [B]
    u = log(R_0.transpose(-1, -2) @ R_1)  # [B, 3] body-frame velocity, constant along the geodesic
    R_t = R_0 @ exp(t.to(u.dtype)[:, None] * u)  # [B, 3, 3]
    v = model(R_t.reshape(batch, 9), t)  # [B, 3]
    if v.shape != u.shape:
        raise ValueError(
            f"model output has shape {list(v.shape)}, expected {list(u.shape)} (a tangent vector per sample)"
        )
    return torch.mean((v - u) ** 2)


@torch.no_grad()
def so3_sample(model: Callable[[Tensor, Tensor], Tensor], R_0: Tensor, steps: int = 100) -> Tensor:
    """Integrate dR/dt = R hat(v(R, t)) from noise R_0 [B, 3, 3] at t = 0 to t = 1 by `steps`
    geodesic Euler steps R_{k+1} = R_k exp(dt v(R_k, t_k)); returns R at t = 1, [B, 3, 3]."""
    _check_matrices(R_0, "R_0")
    if R_0.ndim != 3 or R_0.shape[0] == 0:
        raise ValueError(f"R_0 must be a non-empty batch [B, 3, 3], got {list(R_0.shape)}")
    check_positive_int(steps, "steps")
    batch = R_0.shape[0]
    R = R_0
    dt = 1.0 / steps
    for k in range(steps):
        t = torch.full((batch,), k * dt, dtype=R.dtype, device=R.device)  # [B]
        v = model(R.reshape(batch, 9), t)  # [B, 3] body frame
        R = R @ exp(dt * v)  # [B, 3, 3] stays on SO(3)
    return R

