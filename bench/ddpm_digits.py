"""Why 1000 ancestral DDPM steps score a digit FD of ~160 on the 8x8 digits while DDIM scores ~30.

    nice .venv/bin/python bench/ddpm_digits.py                  # full size (~10-15 CPU-minutes, one thread)
    nice .venv/bin/python bench/ddpm_digits.py --quick --out DIR  # smoke run (tiny networks, seconds)
    nice .venv/bin/python bench/ddpm_digits.py --cache DIR      # keep the two trained models in DIR between runs

The models are exactly the ones behind `steps.json` (bench/claims.py, imported: same recipe, seed,
evaluation noise and DDPM noise stream): MLP(dim=64, hidden=512) trained 4000 Adam steps as an
epsilon-predictor (train_ddpm, linear schedule, T = 1000) and the same MLP trained by flow matching.
The first row reproduces steps.json's 1000-step ancestral DDPM FD. Then one row per test:

  steps       strided DDPM with 10, 50, 100, 250 steps (and DDIM at 100 and 1000 steps)
  end noise   the DDPM chain stopped at step k, then its x_0 prediction in one jump (no noise below k)
  switch      DDPM (beta variance) down to step k, deterministic DDIM single steps below k (and the
              reverse: DDIM down to step k, DDPM below)
  variance    posterior variance instead of beta_k
  oracle      DDPM and DDIM with the EXACT epsilon of the empirical distribution of the 1797 digits
              (a mixture of point masses: the posterior over the training digits is a softmax)
  flow as eps the flow model's velocity converted to epsilon (eps = x_t - t v at x_t = x_k / c_k), DDPM

Each row: digit FD of the 898 samples to all 1797 digits, FD / floor, 'roughness': the mean
squared difference of neighbouring pixels of the samples over that of the real digits (1 = as
smooth as the data; leftover per-pixel noise raises it), and 'contrast': the mean spread of an
image's pixels over the real digits' (faint, washed-out samples lower it).

A second table (`ddpm-eps-error.json`) bins the DDPM steps k into bands and gives, per band, the
mean squared error (per pixel) of each model's epsilon against the exact empirical epsilon on
noised real digits, and each band's share of the ancestral sampler's KL bound sum_k w_k MSE_k with
w_k = beta_k / (2 alpha_k (1 - abar_k)) (Ho et al.'s variational bound with sigma^2 = beta).

Writes `ddpm-steps.json` and `ddpm-eps-error.json` (format: `straightline.course.experiments`) into
--out (default: the shipped `src/straightline/course/experiments/`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import claims  # noqa: E402  - the models, evaluation noise and JSON writer of steps.json
from _timing import load_average, table  # noqa: E402

import straightline as sl  # noqa: E402
from straightline.data import digits  # noqa: E402
from straightline.diffusion import ddim_sample, ddpm_sample, make_schedule  # noqa: E402

REGENERATE = "`python bench/ddpm_digits.py` regenerates this file"
STRIDES = (10, 50, 100, 250)
JUMP_AT = (10, 50, 100)  # the chain stopped at step k, then x_0 predicted in one jump
SWITCH_AT = (300, 100, 30, 10)  # DDPM down to step k, DDIM below
REVERSE_AT = (300,)  # DDIM down to step k, DDPM below
BANDS = ((1, 3), (4, 10), (11, 30), (31, 100), (101, 300), (301, 1000))
ERR_DRAWS = 4  # noised copies of each real digit per band


def parse_args(argv=None) -> tuple[claims.Config, Path | None]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke-run sizes (tiny networks), seconds")
    p.add_argument("--out", type=Path, default=None, help=f"directory for the JSON files (default {claims.DEFAULT_OUT})")
    p.add_argument("--cache", type=Path, default=None, help="directory to keep the trained models in between runs")
    a = p.parse_args(argv)
    cfg = claims.parse_args((["--quick"] if a.quick else []) + (["--out", str(a.out)] if a.out else []))
    return cfg, a.cache


def trained(cfg: claims.Config, cache: Path | None):
    """(epsilon-model, flow model) of steps.json, from `cache` when it holds them."""
    tag = "quick" if cfg.quick else "full"
    files = [cache / f"ddpm-digits-{tag}.safetensors", cache / f"fm-digits-{tag}.safetensors"] if cache else []
    if files and all(f.is_file() for f in files):
        return tuple(sl.load(f).requires_grad_(False) for f in files)
    models = claims.Models(cfg)
    eps_model, (flow, _) = models.ddpm("digits"), models.fm("digits")
    for model, f in zip((eps_model, flow), files):
        sl.save(model, f)
    return eps_model.requires_grad_(False), flow.requires_grad_(False)


# ----------------------------------------------------------------------------- epsilon callables


def step_of(t_net: torch.Tensor, T: int) -> int:
    """The DDPM step k of a network time input t_net = 1 - k / T (all rows share it)."""
    return int(round((1.0 - float(t_net[0])) * T))


def empirical_eps(data: torch.Tensor, sched) -> Callable:
    """The exact epsilon of the empirical distribution of `data` [M, 1, 8, 8]: with the posterior
    weights w_i ∝ exp(-|x_k - sqrt(abar) d_i|^2 / (2 (1 - abar))), eps = (x_k - sqrt(abar) sum_i w_i d_i) / sqrt(1 - abar)."""
    flat = data.reshape(len(data), -1).double()  # [M, 64]

    def eps(x: torch.Tensor, t_net: torch.Tensor) -> torch.Tensor:
        a = float(sched.alpha_bar(step_of(t_net, sched.T)))
        xf = x.reshape(len(x), -1).double()  # [B, 64]
        d2 = torch.cdist(xf, math.sqrt(a) * flat).pow(2)  # [B, M]
        w = torch.softmax(-d2 / (2 * (1 - a)), dim=1)  # [B, M] posterior over the real digits
        return ((xf - math.sqrt(a) * (w @ flat)) / math.sqrt(1 - a)).reshape(x.shape).to(x.dtype)

    return eps


def flow_as_eps(flow, sched) -> Callable:
    """The flow model read as an epsilon-predictor: x_t = x_k / c_k at t = t_k, eps = x_t - t v(x_t, t)."""

    def eps(x: torch.Tensor, t_net: torch.Tensor) -> torch.Tensor:
        k = step_of(t_net, sched.T)
        c, t = float(sched.flow_scale(k)), float(sched.flow_time(k))
        x_t = x / c  # [B, 1, 8, 8]
        return x_t - t * flow(x_t, torch.full((len(x),), t, dtype=x.dtype))

    return eps


# ----------------------------------------------------------------------------- samplers and measures


def ddpm_path(eps, x_T, sched, generator, keep=()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """1000 ancestral single steps (beta variance), the toolkit's ddpm_sample; the states at the steps
    in `keep` are returned too (from the kept path)."""
    traj = ddpm_sample(eps, x_T, schedule=sched, generator=generator, keep_path=bool(keep))
    states = {k: traj.xs[sched.T - k] for k in keep}  # xs[i] is the state at k = T - i
    return traj.x, states


def jump(eps, x_k: torch.Tensor, k: int, sched) -> torch.Tensor:
    """x_0 predicted from x_k in one network call: (x_k - sqrt(1 - abar_k) eps) / sqrt(abar_k)."""
    a = float(sched.alpha_bar(k))
    with torch.no_grad():
        e = eps(x_k, torch.full((len(x_k),), 1.0 - k / sched.T, dtype=x_k.dtype))
    return (x_k - math.sqrt(1 - a) * e) / math.sqrt(a)


def ddpm_below(eps, x_k: torch.Tensor, k: int, sched, generator) -> torch.Tensor:
    """Ancestral single steps (beta variance, no noise on the last) from step k down to 0."""
    x = x_k
    with torch.no_grad():
        for j in range(k, 0, -1):
            a, beta = float(sched.alpha_bar(j)), float(sched.betas[j - 1])
            e = eps(x, torch.full((len(x),), 1.0 - j / sched.T, dtype=x.dtype))  # [B, 1, 8, 8]
            x = (x - beta / math.sqrt(1 - a) * e) / math.sqrt(1 - beta)
            if j > 1:
                x = x + math.sqrt(beta) * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x


def ddim_below(eps, x_k: torch.Tensor, k: int, sched, k_to: int = 0) -> torch.Tensor:
    """Deterministic DDIM single steps from step k down to k_to."""
    x = x_k
    with torch.no_grad():
        for j in range(k, k_to, -1):
            a, a_next = float(sched.alpha_bar(j)), float(sched.alpha_bar(j - 1))
            e = eps(x, torch.full((len(x),), 1.0 - j / sched.T, dtype=x.dtype))  # [B, 1, 8, 8]
            x_hat = (x - math.sqrt(1 - a) * e) / math.sqrt(a)
            x = math.sqrt(a_next) * x_hat + math.sqrt(1 - a_next) * e
    return x


def contrast(x: torch.Tensor) -> float:
    """Mean over images of the spread (standard deviation) of an image's 64 pixels, x [N, 1, 8, 8]."""
    return float(x.reshape(len(x), -1).std(dim=1).mean())


def roughness(x: torch.Tensor) -> float:
    """Mean squared difference of horizontally and vertically neighbouring pixels, x [N, 1, 8, 8]."""
    dh = x[..., :, 1:] - x[..., :, :-1]  # [N, 1, 8, 7]
    dv = x[..., 1:, :] - x[..., :-1, :]  # [N, 1, 7, 8]
    return float((dh.pow(2).mean() + dv.pow(2).mean()) / 2)


# ----------------------------------------------------------------------------- experiments


def sampler_rows(cfg, eps_model, flow, sched) -> tuple[list[list], float, float, float]:
    ev = claims.Eval(cfg, "digits")
    real, real_contrast = roughness(digits()[0]), contrast(digits()[0])
    oracle = empirical_eps(digits()[0], sched)
    rows = []

    def row(test: str, sampler: str, nfe: int, x: torch.Tensor) -> None:
        q, r, c = ev.quality(x), roughness(x) / real, contrast(x) / real_contrast
        rows.append([test, sampler, nfe, claims.sig(q), claims.sig(q / ev.floor.mean, 3), claims.sig(r, 3), claims.sig(c, 3)])
        claims.out(f"  {test:<12} {sampler:<58} NFE {nfe:>4}  FD {q:8.2f}  rough {r:6.2f}  contrast {c:5.2f}")

    keep = sorted(set(JUMP_AT) | set(SWITCH_AT))
    x, states = ddpm_path(eps_model, ev.x_0, sched, claims.ddpm_generator(cfg), keep)
    row("reproduce", "DDPM, ancestral, beta variance (steps.json)", sched.T, x)
    row("reference", "DDIM (eta = 0)", 100, ddim_sample(eps_model, ev.x_0, schedule=sched, steps=100).x)
    row("reference", "DDIM (eta = 0)", sched.T, ddim_sample(eps_model, ev.x_0, schedule=sched, steps=sched.T).x)
    for s in STRIDES:
        x = ddpm_sample(eps_model, ev.x_0, schedule=sched, steps=s, generator=claims.ddpm_generator(cfg)).x
        row("steps", "DDPM, ancestral, beta variance, strided", s, x)
    for k in JUMP_AT:
        row("end noise", f"DDPM down to k = {k}, then x_0 predicted in one jump", sched.T - k + 1, jump(eps_model, states[k], k, sched))
    for k in SWITCH_AT:
        row("switch", f"DDPM down to k = {k}, then DDIM single steps", sched.T, ddim_below(eps_model, states[k], k, sched))
    for k in REVERSE_AT:
        x = ddim_below(eps_model, ev.x_0, sched.T, sched, k_to=k)
        row("switch", f"DDIM down to k = {k}, then DDPM single steps", sched.T,
            ddpm_below(eps_model, x, k, sched, claims.ddpm_generator(cfg)))
    x = ddpm_sample(eps_model, ev.x_0, schedule=sched, variance="posterior", generator=claims.ddpm_generator(cfg)).x
    row("variance", "DDPM, ancestral, posterior variance", sched.T, x)
    x = ddpm_sample(oracle, ev.x_0, schedule=sched, generator=claims.ddpm_generator(cfg)).x
    row("oracle", "DDPM, ancestral, beta variance, exact empirical eps", sched.T, x)
    row("oracle", "DDIM (eta = 0), exact empirical eps", 100, ddim_sample(oracle, ev.x_0, schedule=sched, steps=100).x)
    x = ddpm_sample(flow_as_eps(flow, sched), ev.x_0, schedule=sched, generator=claims.ddpm_generator(cfg)).x
    row("flow as eps", "DDPM, ancestral, beta variance, flow model's eps", sched.T, x)
    row("flow as eps", "flow matching, Euler (reference)", 100, sl.sample(flow, ev.x_0, steps=100))
    return rows, ev.floor.mean, real, real_contrast


def error_rows(cfg, eps_model, flow, sched) -> tuple[list[list], float, float]:
    """Per band of k: MSE per pixel of each model's epsilon against the exact empirical epsilon on
    noised real digits, and the band's share of the ancestral sampler's KL bound."""
    images = digits()[0]  # [1797, 1, 8, 8]
    oracle, as_eps = empirical_eps(images, sched), flow_as_eps(flow, sched)
    g = torch.Generator().manual_seed(cfg.seed + 31)
    rows, kl = [], {"eps": [], "flow": []}
    for lo, hi in BANDS:
        errs = {"eps": [], "flow": []}
        weights = []
        for _ in range(ERR_DRAWS):
            k = int(torch.randint(lo, hi + 1, (1,), generator=g))
            x_k = sl.diffusion.q_sample(sched, images, torch.full((len(images),), k), generator=g)  # [1797, 1, 8, 8]
            t_net = torch.full((len(images),), 1.0 - k / sched.T)
            with torch.no_grad():
                exact = oracle(x_k, t_net)
                for key, model in (("eps", eps_model), ("flow", as_eps)):
                    errs[key].append(float((model(x_k, t_net) - exact).pow(2).mean()))
            beta = float(sched.betas[k - 1])
            weights.append(beta / (2 * (1 - beta) * (1 - float(sched.alpha_bar(k)))))
        size = hi - lo + 1
        for key in kl:  # the band's part of sum_k w_k MSE_k: (band size) x mean over drawn k of w_k MSE_k
            kl[key].append(size * sum(w * e for w, e in zip(weights, errs[key])) / ERR_DRAWS)
        t_lo, t_hi = float(sched.flow_time(hi)), float(sched.flow_time(lo))
        rows.append([f"{lo}-{hi}", f"{t_lo:.3f}-{t_hi:.3f}", claims.sig(sum(errs["eps"]) / ERR_DRAWS, 3),
                     claims.sig(sum(errs["flow"]) / ERR_DRAWS, 3)])
    for r, a, b in zip(rows, kl["eps"], kl["flow"]):
        r += [claims.sig(a / sum(kl["eps"]), 3), claims.sig(b / sum(kl["flow"]), 3)]
    return rows, sum(kl["eps"]) * 64, sum(kl["flow"]) * 64


def main(argv=None) -> int:
    cfg, cache = parse_args(argv)
    torch.set_num_threads(1)
    start, cpu0 = time.perf_counter(), time.process_time()
    claims.out(f"ddpm_digits: why ancestral DDPM scores worse than DDIM on the digits; load average {load_average()}")
    eps_model, flow = trained(cfg, cache)
    sched = make_schedule("linear", claims.DDPM_T)
    rows, floor, real, real_contrast = sampler_rows(cfg, eps_model, flow, sched)
    columns = ["test", "sampler", "NFE", "digit FD", "FD / floor", "roughness / real digits'", "contrast / real digits'"]
    claims.out(table("DDPM on the digits: one row per explanation tested", columns, rows,
                     notes=[f"floor {floor:.2f} (mean of claims.digit_fd_floor_band({cfg.n_digits})); real digits' roughness {real:.4f}"]))
    recipe = (f"MLP(dim=64, hidden={cfg.hidden_digits}) trained {cfg.train_digits} Adam steps (batch 256, lr 1e-3, EMA "
              f"0.999, seed {cfg.seed}) as an epsilon-predictor (train_ddpm, linear beta schedule, T = {claims.DDPM_T}) "
              "and, for the flow rows, the same MLP trained by flow matching: the models, evaluation noise and DDPM "
              "noise stream of steps.json (bench/claims.py).")
    claims.write_experiment(
        cfg, "ddpm-steps", "Why 1000 ancestral DDPM steps score worse than DDIM on the digits",
        f"{recipe} Digit Fréchet distance of {cfg.n_digits} samples (same starting noise in every row) to all 1797 "
        f"real digits; floor {claims.sig(floor)} = the mean FD between two disjoint {cfg.n_digits}-draws of the real digits over "
        f"{claims.FD_FLOOR_REPEATS} seeds (bench/claims.py's digit floor band). Rows: "
        "ancestral DDPM (beta_k variance; no noise on the last step) at 1000 steps and strided to 10-250 steps; DDIM "
        "at 100 and 1000; the 1000-step chain stopped at step k and its x_0 predicted in one network call; the chain "
        "switched to deterministic DDIM single steps below step k; the posterior variance; the EXACT epsilon of the "
        "empirical distribution of the 1797 digits (closed form: a softmax over the training digits) in DDPM and "
        "DDIM; and the flow model converted to epsilon (eps = x_t - t v(x_t, t) at x_t = x_k / c_k) in DDPM. "
        "Roughness: mean squared difference of neighbouring pixels over the real digits' "
        f"({claims.sig(real, 3)}); leftover per-pixel noise raises it. Contrast: the mean over images of the "
        f"standard deviation of an image's 64 pixels, over the real digits' ({claims.sig(real_contrast, 3)}); "
        f"faint, washed-out images lower it. One torch thread. {REGENERATE}.",
        columns, rows,
    )
    err, kl_eps, kl_flow = error_rows(cfg, eps_model, flow, sched)
    err_columns = ["DDPM steps k", "flow time t_k", "eps-model: MSE to exact eps", "flow model as eps: MSE to exact eps",
                   "eps-model: share of DDPM's KL bound", "flow model: share of DDPM's KL bound"]
    claims.out(table("Epsilon error by noise level (per pixel, against the exact empirical epsilon)", err_columns, err,
                     notes=[f"KL bound sum_k w_k MSE_k x 64: eps-model {kl_eps:.1f} nats, flow model as eps {kl_flow:.1f}"]))
    claims.write_experiment(
        cfg, "ddpm-eps-error", "Where the learned epsilon is wrong, by noise level",
        f"{recipe} Each band of DDPM steps k: {ERR_DRAWS} steps drawn in the band, all 1797 real digits noised to "
        "x_k = sqrt(abar_k) x + sqrt(1 - abar_k) eps, and the mean squared error per pixel of each model's epsilon "
        "against the exact epsilon of the empirical distribution of the 1797 digits (the flow model read as "
        "eps = x_t - t v(x_t, t) at x_t = x_k / c_k, t = t_k). 'Share of DDPM's KL bound': the band's part of "
        "sum_k w_k MSE_k with w_k = beta_k / (2 alpha_k (1 - abar_k)), the weight the ancestral sampler's "
        f"variational bound puts on the epsilon error at step k (totals x 64 pixels: eps-model "
        f"{claims.sig(kl_eps, 3)} nats, flow model {claims.sig(kl_flow, 3)}). One torch thread. {REGENERATE}.",
        err_columns, err,
    )
    claims.out(f"\nwall time {time.perf_counter() - start:.0f} s, CPU time {time.process_time() - cpu0:.0f} s; "
               f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
