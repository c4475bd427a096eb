"""Solutions in several styles (must pass) and the classic bugs (must fail, with the right message).

Each bug maps to a fragment its message must contain; each correct variant must pass.
"""

from __future__ import annotations

import textwrap

# ------------------------------------------------------------------------------------------------
# cfm_loss


def _cfm(body: str, header: str = "import torch\nimport torch.nn.functional as F\n\n") -> str:
    return header + "def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):\n" + textwrap.indent(textwrap.dedent(body), "    ")


CFM_CORRECT = {
    "view-star": _cfm(
        """
        x_0 = noise_fn(x_1)
        t = torch.rand(x_1.shape[0])
        tb = t.view(-1, *[1] * (x_1.dim() - 1))
        x_t = (1 - tb) * x_0 + tb * x_1
        return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
        """
    ),
    "mse-loss-reshape": _cfm(
        """
        B = x_1.shape[0]
        x_0 = noise_fn(x_1)
        t = torch.rand(B, device=x_1.device, dtype=x_1.dtype)
        tb = t.reshape([B] + [1] * (x_1.ndim - 1))
        x_t = (1 - tb) * x_0 + tb * x_1
        return F.mse_loss(model(x_t, t), x_1 - x_0)
        """
    ),
    "time-first-rand-like": _cfm(
        """
        t = torch.rand_like(x_1.reshape(x_1.shape[0], -1)[:, 0])  # [B], drawn before the noise
        z = noise_fn(x_1)
        tb = t
        while tb.dim() < x_1.dim():
            tb = tb.unsqueeze(-1)
        x_t = tb * x_1 + (1 - tb) * z
        pred = model(x_t, tb.flatten())
        return torch.mean(torch.square(pred - (x_1 - z)))
        """
    ),
    "float64-times": _cfm(
        """
        x_0 = noise_fn(x_1)
        t = torch.rand(len(x_1), dtype=torch.float64)
        shape = (-1,) + (1,) * (x_1.dim() - 1)
        x_t = (1 - t.view(shape)) * x_0 + t.view(shape) * x_1
        v = model(x_t.float(), t.float())
        return (v - (x_1 - x_0)).pow(2).mean()
        """
    ),
    "helper-function": (
        "import torch\n\n"
        "def _broadcast(t, like):\n"
        "    return t[(...,) + (None,) * (like.ndim - 1)]\n\n"
        "def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):\n"
        "    x_0 = noise_fn(x_1)\n"
        "    t = torch.rand(x_1.size(0))\n"
        "    x_t = x_0 + _broadcast(t, x_1) * (x_1 - x_0)\n"
        "    err = model(x_t, t) - (x_1 - x_0)\n"
        "    return (err * err).sum() / err.numel()\n"
    ),
}

CFM_BUGS = {
    "target-reversed": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, t) - (x_0 - x_1)) ** 2).mean()
            """
        ),
        "target points the wrong way",
    ),
    "interpolation-reversed": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = tb * x_0 + (1 - tb) * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "x_t runs the wrong way",
    ),
    "t-not-broadcast": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            x_t = (1 - t) * x_0 + t * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "do not broadcast",
    ),
    "t-passed-as-column": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, tb) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "model received t of shape [1, 1]",
    ),
    "only-4d": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t[:, None, None, None]
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "one singleton dimension per data dimension",
    ),
    "summed": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).sum()
            """
        ),
        "summed over every element instead of averaged",
    ),
    "summed-over-features": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).flatten(1).sum(1).mean()
            """
        ),
        "summed",  # with B = 1 (the worked example) this is the same as summing everything
    ),
    "noise-zeros": (
        _cfm(
            """
            x_0 = torch.zeros_like(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "never called noise_fn",
    ),
    "noise-drawn-but-not-used": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            z = torch.zeros_like(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * z + tb * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "contains no noise",
    ),
    "noise-reused": (
        "import torch\n\n_NOISE = {}\n\n"
        "def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):\n"
        "    x_0 = _NOISE.setdefault(tuple(x_1.shape), noise_fn(x_1))\n"
        "    t = torch.rand(x_1.shape[0])\n"
        "    tb = t.view(-1, *[1] * (x_1.dim() - 1))\n"
        "    x_t = (1 - tb) * x_0 + tb * x_1\n"
        "    return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()\n",
        "noise of an earlier call",
    ),
    "t-once-per-batch": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(1).expand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "same time",
    ),
    "t-normal": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.randn(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "U(0, 1)",
    ),
    "seeded-inside": (
        _cfm(
            """
            torch.manual_seed(0)
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
            """
        ),
        "same times",
    ),
    "detached": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return torch.tensor(((model(x_t, t) - (x_1 - x_0)) ** 2).mean().item())
            """
        ),
        "no gradient reaches the model",
    ),
    "not-reduced": (
        _cfm(
            """
            x_0 = noise_fn(x_1)
            t = torch.rand(x_1.shape[0])
            tb = t.view(-1, *[1] * (x_1.dim() - 1))
            x_t = (1 - tb) * x_0 + tb * x_1
            return (model(x_t, t) - (x_1 - x_0)) ** 2
            """
        ),
        "shape of the data",
    ),
    "starter-code": (
        "import torch\n\ndef cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):\n    raise NotImplementedError('write cfm_loss here')\n",
        "NotImplementedError",
    ),
    "no-default-noise": (
        "import torch\n\n"
        "def cfm_loss(model, x_1, noise_fn):\n"
        "    x_0 = noise_fn(x_1)\n"
        "    t = torch.rand(x_1.shape[0])\n"
        "    tb = t.view(-1, *[1] * (x_1.dim() - 1))\n"
        "    x_t = (1 - tb) * x_0 + tb * x_1\n"
        "    return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()\n",
        "defaults the signature shows",
    ),
    "wrong-name": ("import torch\n\ndef flow_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):\n    return 0\n", "does not define a function named cfm_loss"),
    "syntax-error": ("import torch\n\ndef cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like)\n    return 0\n", "Syntax error at line 3"),
}

# ------------------------------------------------------------------------------------------------
# weighted_cfm_loss


def _weighted(reduction: str, header: str = "import torch\nimport torch.nn.functional as F\n\n") -> str:
    body = """
    x_0 = noise_fn(x_1)
    t = torch.rand(x_1.shape[0])
    tb = t.view(-1, *[1] * (x_1.dim() - 1))
    x_t = (1 - tb) * x_0 + tb * x_1
    v = model(x_t, t)
    u = x_1 - x_0
    w = 1 / (1 - t + eps)
    wb = w.view(-1, *[1] * (x_1.dim() - 1))
    """
    return (
        header
        + "def weighted_cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like, eps=1e-2):\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + textwrap.indent(textwrap.dedent(reduction).strip() + "\n", "    ")
    )


WEIGHTED_CORRECT = {
    "per-example": _weighted("per = ((v - u) ** 2).flatten(1).mean(dim=1)\nreturn (w * per).mean()"),
    "broadcast-weight": _weighted("return (wb * (v - u) ** 2).mean()"),
    "mse-none": _weighted(
        "per = F.mse_loss(v, u, reduction='none').mean(dim=tuple(range(1, x_1.dim())))\nreturn torch.mean(per / (1 - t + eps))"
    ),
}

WEIGHTED_BUGS = {
    "weight-on-target": (_weighted("return ((v - wb * u) ** 2).mean()"), "applied to the target"),
    "unweighted": (_weighted("return ((v - u) ** 2).mean()"), "unweighted loss"),
    "not-reciprocal": (
        _weighted("per = ((v - u) ** 2).flatten(1).mean(1)\nreturn ((1 - t + eps) * per).mean()"),
        "reciprocal",
    ),
    "eps-ignored": (
        _weighted("per = ((v - u) ** 2).flatten(1).mean(1)\nreturn (per / (1 - t + 1e-2)).mean()"),
        "ignored the eps",
    ),
    "summed-over-batch": (
        _weighted("per = ((v - u) ** 2).flatten(1).mean(1)\nreturn (w * per).sum()"),
        "summed over the batch",
    ),
    "weight-squared": (_weighted("return ((wb * (v - u)) ** 2).mean()"), "ended up squared"),
    "per-example-returned": (
        _weighted("per = ((v - u) ** 2).flatten(1).mean(1)\nreturn w * per"),
        "one value per example",
    ),
}

# ------------------------------------------------------------------------------------------------
# euler_sample


def _euler(body: str) -> str:
    return "import torch\n\ndef euler_sample(model, x_0, steps):\n" + textwrap.indent(textwrap.dedent(body), "    ")


EULER_CORRECT = {
    "full": _euler(
        """
        x = x_0
        h = 1.0 / steps
        for k in range(steps):
            t = torch.full((x.shape[0],), k * h, dtype=x.dtype)
            x = x + h * model(x, t)
        return x
        """
    ),
    "linspace-expand": _euler(
        """
        ts = torch.linspace(0, 1, steps + 1)[:-1]
        x = x_0.clone()
        for t in ts:
            x += model(x, t.expand(x.shape[0])) / steps
        return x
        """
    ),
    "ones-times": _euler(
        """
        x, dt = x_0, 1 / steps
        for i in range(steps):
            x = x + dt * model(x, torch.ones(len(x)) * (i / steps))
        return x
        """
    ),
}

EULER_BUGS = {
    "one-step-late": (
        _euler(
            """
            x = x_0
            for k in range(steps):
                x = x + model(x, torch.full((x.shape[0],), (k + 1) / steps)) / steps
            return x
            """
        ),
        "one step late",
    ),
    "linspace-n-points": (
        _euler(
            """
            x = x_0
            for t in torch.linspace(0, 1, steps):
                x = x + model(x, t.repeat(x.shape[0])) / steps
            return x
            """
        ),
        "points from 0 to 1",
    ),
    "extra-evaluation": (
        _euler(
            """
            x = x_0
            for k in range(steps + 1):
                x = x + model(x, torch.full((x.shape[0],), k / steps)) / steps
            return x
            """
        ),
        "no evaluation at t = 1",
    ),
    "python-float-t": (
        _euler(
            """
            x = x_0
            for k in range(steps):
                x = x + model(x, k / steps) / steps
            return x
            """
        ),
        "Python number",
    ),
    "scalar-tensor-t": (
        _euler(
            """
            x = x_0
            for k in range(steps):
                x = x + model(x, torch.tensor(k / steps)) / steps
            return x
            """
        ),
        "t of shape []",
    ),
    "no-step-size": (
        _euler(
            """
            x = x_0
            for k in range(steps):
                x = x + model(x, torch.full((x.shape[0],), k / steps))
            return x
            """
        ),
        "not scaled by the step size",
    ),
    "returns-trajectory": (
        _euler(
            """
            xs = [x_0]
            for k in range(steps):
                xs.append(xs[-1] + model(xs[-1], torch.full((x_0.shape[0],), k / steps)) / steps)
            return torch.stack(xs)
            """
        ),
        "whole trajectory",
    ),
    "forgot-assignment": (
        _euler(
            """
            x = x_0
            for k in range(steps):
                x + model(x, torch.full((x.shape[0],), k / steps)) / steps
            return x
            """
        ),
        "equals the starting points",
    ),
}

CORRECT = (
    [("cfm_loss", name, code) for name, code in CFM_CORRECT.items()]
    + [("weighted_cfm_loss", name, code) for name, code in WEIGHTED_CORRECT.items()]
    + [("euler_sample", name, code) for name, code in EULER_CORRECT.items()]
)
BUGS = (
    [("cfm_loss", name, code, fragment) for name, (code, fragment) in CFM_BUGS.items()]
    + [("weighted_cfm_loss", name, code, fragment) for name, (code, fragment) in WEIGHTED_BUGS.items()]
    + [("euler_sample", name, code, fragment) for name, (code, fragment) in EULER_BUGS.items()]
)
