"""Toy benchmark suite: straightline against torchcfm and flow_matching on 2-D data.

    .venv/bin/python bench/toy_suite.py            # the full suite (20-35 min on 2 shared cores)
    .venv/bin/python bench/toy_suite.py --quick    # smoke run (< 1 min): every table, tiny sizes

Prints tables; asserts nothing about time. Every comparison is measured in this run: variants are
timed round-robin (order rotated each round), medians are reported, and ratios are formed per
round (paired) with their interquartile range [q1-q3] as the noise estimate. Targets from the
issue are printed beside the measurements and marked PASS/FAIL.

Sections
  1  quality: W2 (with its floor) at Euler NFE 1/2/4/8/100, dopri5 NFE, NPE, training time
  2a loss-code overhead (identity network)     2b training step time     2c exact-OT coupling
  2d sampling at 100 Euler steps      2e where straightline's own overhead goes
  3  time to quality on moons (W2 at 4 Euler steps <= 2x floor), each toolkit's example recipe
  4  targets
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _peers as peers  # noqa: E402
from _timing import (  # noqa: E402
    clock_name, fmt_ratio, fmt_time, interleaved, load_average, median, now, paired_ratio, table, use_clock, verdict,
)

import straightline as sl  # noqa: E402
from straightline import couplings  # noqa: E402
from straightline._checks import check_same_shape, check_time  # noqa: E402  (attribution only)
from straightline.data import toy  # noqa: E402
from straightline.metrics import npe, w2, w2_floor  # noqa: E402
from straightline.models import MLP  # noqa: E402
# the training function and the EMA helper, taken from their module (straightline.training)
from straightline.training import ema_update  # noqa: E402
from straightline.training import train as sl_train  # noqa: E402

DATASETS = ("moons", "8gaussians", "checkerboard")
EULER_NFES = (1, 2, 4, 8, 100)


@dataclass
class Config:
    steps: int
    n_eval: int
    repeats: int
    threads: int
    clock: str
    ot_batches: tuple[int, ...]
    ot_repeats_large: int
    sample_batches: tuple[int, ...]
    loss_batches: tuple[int, ...]
    ttq_cap: float
    ttq_n: int
    ttq_check_abs: float  # a W2 check once the training clock has advanced by max(abs, rel * clock)
    ttq_check_rel: float
    ttq_own_nets: bool
    ttq_seeds: int
    seed: int
    sections: tuple[str, ...]
    quick: bool


@dataclass
class Targets:
    lines: list[tuple[str, str, str, str]] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # numbers one section hands to another

    def add(self, what: str, target: str, measured: str, ok: bool | None,
            iqr: tuple[float, float] | None = None, threshold: float | None = None) -> None:
        v = verdict(ok)
        if ok is not None and iqr is not None and threshold is not None and iqr[0] <= threshold <= iqr[1]:
            v += " (within noise)"
        self.lines.append((what, target, measured, v))


def parse_args(argv=None) -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=None, help="training steps per model in section 1 (default 3000; --quick 30)")
    p.add_argument("--quick", action="store_true", help="smoke run: few steps, small n, 3 repeats, short time-to-quality cap")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads for the whole run (default 1: see the calibration line in the output)")
    p.add_argument("--clock", choices=("cpu", "wall"), default=None,
                   help="timer for every measurement: cpu = time.thread_time (default with --threads 1: immune to "
                        "time spent descheduled on a shared machine), wall = time.perf_counter (default otherwise)")
    p.add_argument("--n-eval", type=int, default=None, help="samples for W2 / NPE in section 1 (default 2000; --quick 64)")
    p.add_argument("--repeats", type=int, default=None, help="timing rounds per comparison (default 15; --quick 3)")
    p.add_argument("--ttq-cap", type=float, default=None, help="training seconds allowed per recipe in section 3 (default 45; --quick 0.4)")
    p.add_argument("--ttq-n", type=int, default=None, help="samples for the W2 checks in section 3 (default 1000; --quick 128)")
    p.add_argument("--ttq-own-nets", action="store_true",
                   help="also race flow_matching's own example network (4x512 at batch 4096: slow on a CPU)")
    p.add_argument("--ttq-seeds", type=int, default=None, help="seeds per recipe in section 3 (default 3; --quick 1)")
    p.add_argument("--sections", default="1,2,3,5", help="comma-separated subset of 1,2,3,5 (default all)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    q = a.quick
    return Config(
        steps=a.steps if a.steps is not None else (30 if q else 3000),
        n_eval=a.n_eval if a.n_eval is not None else (64 if q else 2000),
        repeats=a.repeats if a.repeats is not None else (3 if q else 15),
        threads=a.threads,
        clock=a.clock if a.clock is not None else ("cpu" if a.threads == 1 else "wall"),
        ot_batches=(256,) if q else (256, 1024),
        ot_repeats_large=1 if q else 5,
        sample_batches=(64,) if q else (256, 2000),
        loss_batches=(256,) if q else (256, 4096),
        ttq_cap=a.ttq_cap if a.ttq_cap is not None else (0.4 if q else 45.0),
        ttq_n=a.ttq_n if a.ttq_n is not None else (128 if q else 1000),
        ttq_check_abs=0.05 if q else 0.1,
        ttq_check_rel=0.05,
        ttq_own_nets=a.ttq_own_nets,
        ttq_seeds=a.ttq_seeds if a.ttq_seeds is not None else (1 if q else 3),
        seed=a.seed,
        sections=tuple(s.strip() for s in a.sections.split(",") if s.strip()),
        quick=q,
    )


def out(text: str = "") -> None:
    print(text, flush=True)


def fresh_mlp(seed: int) -> MLP:
    """The 256x3 MLP of sections 1-2 (MLP's default width was 256 when their baselines were taken)."""
    torch.manual_seed(seed)
    return MLP(dim=2, hidden=256)


def noise(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ header


def thread_calibration(cfg: Config) -> str:
    """Time one bare training step at 1 thread and at os.cpu_count() threads (interleaved)."""
    cores = os.cpu_count() or 1
    model = fresh_mlp(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_1 = toy("moons", 256, seed=1)

    def step():
        loss = peers.bare_loss(model, x_1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def at(n):
        def run():
            torch.set_num_threads(n)
            step()
        return run

    variants = {"1": at(1)} if cores == 1 else {"1": at(1), str(cores): at(cores)}
    s = interleaved(variants, repeats=3 if cfg.quick else 7, number=5, warmup=1)
    torch.set_num_threads(cfg.threads)
    return ", ".join(f"{k} thread{'s' if k != '1' else ''}: {fmt_time(median(v))}" for k, v in s.items())


def header(cfg: Config) -> None:
    cores = os.cpu_count() or 1
    out("straightline toy benchmark suite" + ("  [--quick: smoke-run sizes, numbers are not meaningful]" if cfg.quick else ""))
    out(f"python {platform.python_version()} on {platform.machine()}, {cores} cores; "
        f"load average at start {load_average()}")
    out("versions: " + "; ".join(f"{k} {v}" for k, v in peers.versions().items()))
    cal = "calibration skipped under --quick" if cfg.quick else thread_calibration(cfg)
    torch.set_num_threads(cfg.threads)
    out(f"torch.set_num_threads({cfg.threads}) for every measurement below "
        f"(one bare MLP training step at batch 256 -- {cal}; on a shared 2-core machine a second intra-op "
        "thread stalls at OpenMP barriers whenever another process holds a core, so 1 thread is the "
        "reproducible setting; pass --threads to change)")
    out(f"clock: {clock_name()} -- section 1 and 3 also show wall-clock time")
    out(f"settings: steps={cfg.steps} n_eval={cfg.n_eval} repeats={cfg.repeats} seed={cfg.seed} "
        f"ttq_cap={cfg.ttq_cap}s ttq_n={cfg.ttq_n}")
    out("timings: medians over interleaved rounds; ratios are per-round (paired) medians with [q1-q3]")


# --------------------------------------------------------------------------- 1. quality suite


def section_quality(cfg: Config) -> dict:
    n = cfg.n_eval
    rows, facts = [], {}
    x_0 = noise(n, cfg.seed + 7)
    for coupling in (None, couplings.exact_ot):  # warm-up (first-call costs), not reported
        sl_train(fresh_mlp(cfg.seed), "moons", steps=5, coupling=coupling, progress=False)
    for name in DATASETS:
        floor = w2_floor(name, n)
        ref = toy(name, n, seed=cfg.seed + 123)
        for cname, coupling in (("independent", None), ("exact_ot", couplings.exact_ot)):
            model = fresh_mlp(cfg.seed)
            c0, w0 = now(), time.perf_counter()
            res = sl_train(model, name, steps=cfg.steps, coupling=coupling, progress=False, seed=cfg.seed)
            t_clock, t_wall = now() - c0, time.perf_counter() - w0
            v = res.ema_model
            w = {k: w2(sl.sample(v, x_0, steps=k), ref) for k in EULER_NFES}
            traj = sl.integrate(v, x_0, method="dopri5")
            w_dopri = w2(traj.x, ref)
            e = npe(v, x_0, ref)
            facts[(name, cname)] = {"floor": floor, **{f"w{k}": w[k] for k in EULER_NFES}}
            rows.append([name, cname, f"{floor:.3f}"]
                        + [f"{w[k]:.3f} ({w[k] / floor:.1f}x)" for k in EULER_NFES]
                        + [f"{traj.nfe} ({w_dopri / floor:.1f}x)", f"{e:.3f}", f"{t_clock:.1f} s / {t_wall:.1f} s",
                           fmt_time(t_clock / cfg.steps)])
    out(table(
        f"1. Quality: MLP(dim=2, hidden=256) trained by straightline.train (defaults, {cfg.steps} steps), EMA model, n={n}",
        ["dataset", "coupling", "W2 floor"] + [f"W2 Euler {k}" for k in EULER_NFES]
        + ["dopri5 NFE (W2/floor)", "NPE", "train time (clock / wall)", "per step"],
        rows,
        notes=[
            "W2 = exact W2 (POT) between n generated points and n fresh data points; (Nx) = W2 / floor; "
            "floor = straightline.metrics.w2_floor(name, n) (two fresh data draws)",
            "dopri5: straightline.integrate(..., method='dopri5') at atol=rtol=1e-5; "
            "NPE = straightline.metrics.npe at 100 Euler steps against the same data sample",
        ],
    ))
    if ("moons", "independent") in facts:
        m_ind, m_ot = facts[("moons", "independent")], facts[("moons", "exact_ot")]
        out(f"  issue's test numbers on moons: W2@100 / floor = {m_ind['w100'] / m_ind['floor']:.2f} "
            f"(independent), {m_ot['w100'] / m_ot['floor']:.2f} (exact_ot) [test wants <= 3]; "
            f"1-step W2 independent / exact_ot = {m_ind['w1'] / m_ot['w1']:.2f} [test wants >= 2]")
    return facts


# ------------------------------------------------------------------- 2b. training step time


def _step_fn(model, loss_fn, batches):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    it = itertools.cycle(batches)

    def step():
        x_1 = next(it)
        loss = loss_fn(model, x_1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def section_train_step(cfg: Config, targets: Targets) -> None:
    batch = 256
    batches = [toy("moons", batch, seed=1000 + i) for i in range(32)]
    base = fresh_mlp(cfg.seed)
    number = 3 if cfg.quick else 20

    def ours_ot(m, x):
        return sl.cfm_loss(m, x, coupling=couplings.exact_ot)

    def bare_emd(m, x_1):  # the hand-written loss after a permutation from ot.emd: the fastest exact OT here
        x_0 = torch.randn_like(x_1)
        perm = torch.from_numpy(peers.perm_from_emd(peers.sq_cost_numpy(x_0, x_1)))
        return _bare_given(m, x_0[perm], x_1)

    variants = {
        "hand-written loss (baseline)": peers.bare_loss,
        "straightline cfm_loss": lambda m, x: sl.cfm_loss(m, x),
        "torchcfm ConditionalFlowMatcher(sigma=0)": peers.torchcfm_loss(0.0, exact_ot=False),
        "flow_matching AffineProbPath(CondOT)": peers.flow_matching_loss(),
    }
    ot_variants = {
        "hand-written + ot.emd permutation": bare_emd,
        "straightline cfm_loss(coupling=exact_ot)": ours_ot,
        "torchcfm ExactOptimalTransportCFM(sigma=0)": peers.torchcfm_loss(0.0, exact_ot=True),
    }
    s = interleaved({k: _step_fn(copy.deepcopy(base), f, batches) for k, f in variants.items()},
                    repeats=2 * cfg.repeats + 1, number=number, warmup=2)
    s_ot = interleaved({k: _step_fn(copy.deepcopy(base), f, batches) for k, f in ot_variants.items()},
                       repeats=cfg.repeats, number=max(3, number // 2), warmup=2)

    def rows_for(samples, base_name, ours_name):
        rows = []
        for k, v in samples.items():
            r = paired_ratio(v, samples[base_name])
            ro = paired_ratio(samples[ours_name], v)
            rows.append([k, fmt_time(median(v)), fmt_ratio(r[0], r[1:]),
                         "-" if k == ours_name else fmt_ratio(ro[0], ro[1:])])
        return rows

    rows = rows_for(s, "hand-written loss (baseline)", "straightline cfm_loss")
    rows += [["", "", "", ""]] + rows_for(s_ot, "hand-written + ot.emd permutation", "straightline cfm_loss(coupling=exact_ot)")
    out(table(
        "2b. Training step time: loss + backward + Adam step, same MLP(dim=2) (256x3), same moons batches, batch 256",
        ["variant", "median / step", "x baseline [q1-q3]", "ours / this [q1-q3]"],
        rows,
        notes=["each toolkit supplies only its loss-side code; the network, data, optimizer and step are identical",
               "flow_matching has no minibatch-OT coupling; the OT rows compare straightline with torchcfm"],
    ))
    peer_names = ["torchcfm ConditionalFlowMatcher(sigma=0)", "flow_matching AffineProbPath(CondOT)"]
    best = min(peer_names, key=lambda k: median(s[k]))
    r = paired_ratio(s["straightline cfm_loss"], s[best])
    lc = targets.facts.get("loss_code_256", {})
    expected = ""
    if lc:
        gap = lc["straightline cfm_loss"] - lc[best]
        expected = (f"; loss-code difference from 2a: {'+' if gap >= 0 else '-'}{fmt_time(abs(gap))} "
                    f"= {gap / median(s['straightline cfm_loss']) * 100:+.1f}% of a step")
    targets.add("training step time (independent coupling)", "ours <= fastest peer (ratio <= 1.00)",
                f"ours / {best.split()[0]} = {fmt_ratio(r[0], r[1:])}{expected}", r[0] <= 1.0, r[1:], 1.0)
    r = paired_ratio(s_ot["straightline cfm_loss(coupling=exact_ot)"], s_ot["torchcfm ExactOptimalTransportCFM(sigma=0)"])
    targets.add("training step time (exact OT coupling)", "ours <= torchcfm (ratio <= 1.00)",
                f"ours / torchcfm = {fmt_ratio(r[0], r[1:])}", r[0] <= 1.0, r[1:], 1.0)

    # straightline.train end to end: data draws, EMA, loss.item(), callback plumbing
    k = 20 if cfg.quick else 100
    m_ema, m_none, m_hand = (copy.deepcopy(base) for _ in range(3))
    g = torch.Generator().manual_seed(5)
    opt_h = torch.optim.Adam(m_hand.parameters(), lr=1e-3)

    def hand_loop():
        for _ in range(k):
            x_1 = toy("moons", batch, generator=g)
            loss = peers.bare_loss(m_hand, x_1)
            opt_h.zero_grad(set_to_none=True)
            loss.backward()
            opt_h.step()
            loss.item()

    st = interleaved({
        "hand-written loop (toy() draws, no EMA)": hand_loop,
        "straightline.train(ema=None)": lambda: sl_train(m_none, "moons", steps=k, ema=None, progress=False),
        "straightline.train() defaults (ema=0.999)": lambda: sl_train(m_ema, "moons", steps=k, progress=False),
    }, repeats=max(3, cfg.repeats // 2), number=1, warmup=1)
    base_t = st["hand-written loop (toy() draws, no EMA)"]
    rows = []
    for name, v in st.items():
        r = paired_ratio(v, base_t)
        rows.append([name, fmt_time(median(v) / k), fmt_ratio(r[0], r[1:])])
    diffs = [(a - b) / k for a, b in zip(st["straightline.train() defaults (ema=0.999)"], st["straightline.train(ema=None)"])]
    ema_cost = median(diffs)
    out(table(
        f"2b'. straightline.train end to end ({k} steps per call, batch 256, moons drawn every step)",
        ["variant", "median / step", "x hand-written [q1-q3]"], rows,
        notes=[f"EMA cost per step, paired difference defaults minus ema=None: {'-' if ema_cost < 0 else ''}"
               f"{fmt_time(abs(ema_cost))} (a difference of two noisy step times; 2e times ema_update alone)"],
    ))


def _bare_given(model, x_0, x_1):
    t = torch.rand(x_1.shape[0], dtype=x_1.dtype)
    tb = t[:, None]
    x_t = (1 - tb) * x_0 + tb * x_1
    return torch.mean((model(x_t, t) - (x_1 - x_0)) ** 2)


# ------------------------------------------------------------------- 2a. loss-code overhead


def identity(x, t):
    return x


def section_loss_overhead(cfg: Config, targets: Targets) -> None:
    rows = []
    number = 50 if cfg.quick else 300
    verdict_ratio = None
    for batch in cfg.loss_batches:
        x_1 = toy("moons", batch, seed=3)
        tc = peers.torchcfm_loss(0.0)
        fm = peers.flow_matching_loss()
        s = interleaved({
            "hand-written loss (baseline)": lambda: peers.bare_loss(identity, x_1),
            "straightline cfm_loss": lambda: sl.cfm_loss(identity, x_1),
            "torchcfm ConditionalFlowMatcher(sigma=0)": lambda: tc(identity, x_1),
            "flow_matching AffineProbPath(CondOT)": lambda: fm(identity, x_1),
        }, repeats=cfg.repeats * 2, number=number, warmup=20)
        b = s["hand-written loss (baseline)"]
        for k, v in s.items():
            r = paired_ratio(v, b)
            rows.append([str(batch), k, fmt_time(median(v)), fmt_ratio(r[0], r[1:])])
            if batch == 256:
                targets.facts.setdefault("loss_code_256", {})[k] = median(v)
                if k == "straightline cfm_loss":
                    verdict_ratio = r
        rows.append(["", "", "", ""])
    out(table(
        "2a. Loss code alone: network replaced by identity v(x, t) = x, forward only (no backward)",
        ["batch", "variant", "median / call", "x hand-written [q1-q3]"], rows[:-1],
        notes=["all variants draw the same random numbers (randn_like for x_0, rand for t); "
               "torchcfm also draws its path noise eps even at sigma=0"],
    ))
    if verdict_ratio is not None:
        targets.add("loss code overhead (batch 256, identity network)", "ours <= 1.10x hand-written",
                    f"{fmt_ratio(verdict_ratio[0], verdict_ratio[1:])}", verdict_ratio[0] <= 1.10, verdict_ratio[1:], 1.10)


# ---------------------------------------------------------------------------- 2c. exact OT


def section_exact_ot(cfg: Config, targets: Targets) -> None:
    from torchcfm.optimal_transport import OTPlanSampler

    rows = []
    sampler = OTPlanSampler(method="exact")
    np.random.seed(cfg.seed)
    for batch in cfg.ot_batches:
        # a pool of problem instances, visited in the same order by every variant: the solvers' run time
        # depends on the instance, so one instance is not a fair sample
        pool_size = 2 if cfg.quick or batch > 256 else 8
        pool = [(noise(batch, 100 + i), toy("moons", batch, seed=200 + i)) for i in range(pool_size)]
        costs = [peers.sq_cost_numpy(x_0, x_1) for x_0, x_1 in pool]
        optimum = [float(c[peers.perm_from_scipy(c), np.arange(batch)].mean()) for c in costs]

        def cycling(fn):
            it = itertools.cycle(pool)
            return lambda: fn(*next(it))

        solvers = {
            "straightline couplings.exact_ot": lambda x_0, x_1: couplings.exact_ot(x_0, x_1),
            "torchcfm OTPlanSampler('exact').sample_plan": lambda x_0, x_1: sampler.sample_plan(x_0, x_1),
            "lap.lapjv on a scipy cdist cost": lambda x_0, x_1: _pairs(x_0, x_1, peers.perm_from_lapjv),
            "ot.emd permutation on a scipy cdist cost": lambda x_0, x_1: _pairs(x_0, x_1, peers.perm_from_emd),
            "scipy LSA on a scipy cdist cost": lambda x_0, x_1: _pairs(x_0, x_1, peers.perm_from_scipy),
        }
        # what each returns: distinct points used and the mean pairing cost, over the whole pool
        quality = {}
        for k, fn in solvers.items():
            d0, d1, gap, exact = [], [], [], True
            for (x_0, x_1), best in zip(pool, optimum):
                p0, p1 = fn(x_0, x_1)
                d0.append(_distinct_rows(p0))
                d1.append(_distinct_rows(p1))
                c = float(((p0.double() - p1.double()) ** 2).sum(dim=1).mean())
                gap.append(c / best - 1)
                exact &= d0[-1] == batch and d1[-1] == batch and abs(c - best) <= 1e-9 * max(1.0, best)
            quality[k] = (min(d0), min(d1), float(np.mean(gap)), exact)
        fns = {k: cycling(fn) for k, fn in solvers.items()}
        fns["  (cost only) scipy cdist sqeuclidean, as exact_ot"] = cycling(peers.sq_cost_numpy)
        reps = cfg.repeats if batch <= 256 else cfg.ot_repeats_large
        s = interleaved(fns, repeats=reps, number=pool_size, warmup=1)
        tc = s["torchcfm OTPlanSampler('exact').sample_plan"]
        for k, v in s.items():
            r = paired_ratio(tc, v)
            if k in quality:
                d0, d1, gap, exact = quality[k]
                rows.append([str(batch), k, fmt_time(median(v)), fmt_ratio(r[0], r[1:]), f"{d0}/{batch}",
                             f"{d1}/{batch}", f"{gap * 100:+.2f}%", "yes" if exact else "no"])
            else:
                rows.append([str(batch), k, fmt_time(median(v)), fmt_ratio(r[0], r[1:]), "", "", "", ""])
        if batch == 256:
            ours = "straightline couplings.exact_ot"
            r = paired_ratio(tc, s[ours])
            targets.add("exact OT coupling at batch 256", ">= 2.00x faster than torchcfm, no repeated points",
                        f"speed-up {fmt_ratio(r[0], r[1:])}, distinct noise {quality[ours][0]}/{batch}",
                        r[0] >= 2.0 and quality[ours][0] == batch, r[1:], 2.0)
            exact_ones = [k for k in quality if quality[k][3]]
            fastest = max(exact_ones, key=lambda k: paired_ratio(tc, s[k])[0])
            rf = paired_ratio(tc, s[fastest])
            targets.add("  (fastest exact solver measured here, for reference)", ">= 2.00x faster than torchcfm",
                        f"{fastest}: {fmt_ratio(rf[0], rf[1:])}", None)
        rows.append([""] * 8)
    out(table(
        "2c. Exact OT coupling: noise x_0 ~ N(0, I) against moons x_1, squared Euclidean cost",
        ["batch", "variant", "median / call", "speed-up vs torchcfm [q1-q3]", "min distinct x_0", "min distinct x_1",
         "cost vs optimum", "exact permutation"],
        rows[:-1],
        notes=[f"each timing sample is the mean over a pool of problem instances ({2 if cfg.quick else 8} at batch <= 256, 2 above) that "
               f"every variant visits in the same order; distinct counts are the minimum over the pool",
               "torchcfm solves the plan exactly (ot.emd) and then draws batch pairs from it with replacement "
               "(np.random.choice): points repeat or go unused, and the drawn pairs' mean cost only matches the "
               "optimum in expectation ('cost vs optimum' is the mean over the pool of cost / optimum - 1)",
               "'exact permutation' = every point used once and the cost equals scipy's linear_sum_assignment "
               "optimum to 1e-9 on every instance"],
    ))


def _pairs(x_0, x_1, solve):
    perm = solve(peers.sq_cost_numpy(x_0, x_1))  # x_0[perm[j]] goes with x_1[j]
    return x_0[torch.from_numpy(np.asarray(perm, dtype=np.int64))], x_1


def _distinct_rows(x: torch.Tensor) -> int:
    return int(torch.unique(x, dim=0).shape[0])


# ------------------------------------------------------------------------------ 2d. sampling


def section_sampling(cfg: Config, targets: Targets) -> None:
    rows, notes = [], []
    model = fresh_mlp(cfg.seed).eval()
    worst, worst_batch, overhead = None, None, {}
    tc_sampler, reason = peers.torchcfm_sampler_or_reason(model)
    if reason:
        notes.append(reason)
    for batch in cfg.sample_batches:
        x_0 = noise(batch, 21)
        fm_sampler = peers.FlowMatchingSampler(model, steps=100)
        fns = {
            "hand-written Euler loop (baseline)": lambda: peers.bare_euler(model, x_0, 100),
            "straightline.sample(steps=100)": lambda: sl.sample(model, x_0, steps=100),
            "straightline.integrate(steps=100)": lambda: sl.integrate(model, x_0, steps=100).x,
            "flow_matching ODESolver euler step_size=0.01": lambda: fm_sampler(x_0),
        }
        if tc_sampler is not None:
            fns["torchcfm (torchdyn NeuralODE euler)"] = lambda: tc_sampler(x_0)
        # agreement and NFE (one call each)
        ref = peers.bare_euler(model, x_0, 100)
        fm_sampler.counted.nfe = 0
        x_fm = fm_sampler(x_0)
        nfe_fm = fm_sampler.counted.nfe
        agree = {
            "straightline.sample(steps=100)": (sl.sample(model, x_0, steps=100) - ref).abs().max().item(),
            "straightline.integrate(steps=100)": (sl.integrate(model, x_0, steps=100).x - ref).abs().max().item(),
            "flow_matching ODESolver euler step_size=0.01": (x_fm - ref).abs().max().item(),
        }
        nfes = {"hand-written Euler loop (baseline)": 100, "straightline.sample(steps=100)": 100,
                "straightline.integrate(steps=100)": sl.integrate(model, x_0, steps=100).nfe,
                "flow_matching ODESolver euler step_size=0.01": nfe_fm}
        s = interleaved(fns, repeats=cfg.repeats if batch <= 1000 else max(3, cfg.repeats // 2),
                        number=1 if batch > 1000 or cfg.quick else 2, warmup=0 if cfg.quick else 1)
        b = s["hand-written Euler loop (baseline)"]
        for k, v in s.items():
            r = paired_ratio(v, b)
            rows.append([str(batch), k, fmt_time(median(v)), fmt_ratio(r[0], r[1:]), str(nfes.get(k, "?")),
                         "0" if k.startswith("hand") else f"{agree.get(k, float('nan')):.1e}"])
            if k == "straightline.sample(steps=100)" and (worst is None or r[0] > worst[0]):
                worst = r
                worst_batch = batch
        # per-step overhead with a nearly free velocity field: the solver's own cost
        cheap = lambda x, t: x  # noqa: E731
        fm_cheap = peers.FlowMatchingSampler(cheap, steps=100)
        sc = interleaved({
            "hand-written Euler loop (baseline)": lambda: peers.bare_euler(cheap, x_0, 100),
            "straightline.sample(steps=100)": lambda: sl.sample(cheap, x_0, steps=100),
            "flow_matching ODESolver euler step_size=0.01": lambda: fm_cheap(x_0),
        }, repeats=cfg.repeats, number=5, warmup=2)
        bc = median(sc["hand-written Euler loop (baseline)"])
        overhead[batch] = (median(sc["straightline.sample(steps=100)"]) - bc, median(b))
        for k, v in sc.items():
            rows.append([str(batch), "  v(x,t)=x: " + k.split(" (")[0], fmt_time(median(v)),
                         f"{(median(v) - bc) / 100 * 1e6:+.1f} us/step", "", ""])
        rows.append([""] * 6)
    out(table(
        "2d. Sampling: 100 Euler steps of MLP(dim=2) (256x3), no grad",
        ["batch", "variant", "median", "x hand-written [q1-q3]", "NFE", "max |x - hand-written|"], rows[:-1],
        notes=notes + ["'v(x,t)=x' rows replace the network by a free field, so they time the solver loop alone; "
                       "the last column there is its overhead per step over the hand-written loop"],
    ))
    if worst is not None:
        gap, base = overhead[worst_batch]
        targets.add("sampling at 100 Euler steps (worst batch size)", "ours <= 1.05x hand-written loop",
                    f"batch {worst_batch}: {fmt_ratio(worst[0], worst[1:])}; expected from the solver-loop rows: "
                    f"{1 + gap / base:.3f}x", worst[0] <= 1.05, worst[1:], 1.05)


# --------------------------------------------------------------- 2e. overhead attribution


def section_attribution(cfg: Config) -> None:
    """Where straightline's own time goes, piece by piece, at batch 256 (and cheaper candidates)."""
    from straightline.paths import PathSample, expand_time

    batch = 256
    x_1 = toy("moons", batch, seed=3)
    x_0 = torch.randn_like(x_1)
    t = torch.rand(batch)
    path = sl.LinearPath()
    model = fresh_mlp(cfg.seed)
    ema_model = copy.deepcopy(model).requires_grad_(False)
    loss_t = (model(x_1, t) ** 2).mean()
    number = 50 if cfg.quick else 300

    def bare_interp():
        tb = t[:, None]
        return (1 - tb) * x_0 + tb * x_1, x_1 - x_0

    def check_aminmax():  # candidate: one fused reduction, one sync
        lo, hi = torch.aminmax(t)
        if lo < 0 or hi > 1:
            raise ValueError

    def check_all():  # candidate: one boolean reduction, one sync
        if not bool(((t >= 0) & (t <= 1)).all()):
            raise ValueError

    def lean_cfm_loss(v, x_1):  # reference: validates x_1 and the output shape, trusts the t it drew itself
        x_0 = torch.randn_like(x_1)
        t_ = torch.rand(x_1.shape[0], dtype=x_1.dtype)
        tb_ = t_.reshape(-1, *([1] * (x_1.ndim - 1)))
        x_t = (1 - tb_) * x_0 + tb_ * x_1
        out_ = v(x_t, t_)
        if out_.shape != x_1.shape:
            raise ValueError
        return torch.mean((out_ - (x_1 - x_0)) ** 2)

    fns = {
        "cfm_loss(identity, x_1) as shipped": lambda: sl.cfm_loss(identity, x_1),
        "  reference: cfm_loss's math with only its x_1 / output checks": lambda: lean_cfm_loss(identity, x_1),
        "  hand-written loss (2a baseline)": lambda: peers.bare_loss(identity, x_1),
        "hand-written interpolation x_t, u_t": bare_interp,
        "LinearPath().sample (checks + PathSample)": lambda: path.sample(x_0, x_1, t),
        "  check_time(t, B): t.min() < 0 or t.max() > 1": lambda: check_time(t, batch),
        "  check_same_shape(x_0, x_1)": lambda: check_same_shape(x_0, x_1),
        "  expand_time(t.to(dtype), x_0)": lambda: expand_time(t.to(x_0.dtype), x_0),
        "  PathSample(...) construction (frozen dataclass)": lambda: PathSample(x_0=x_0, x_1=x_1, t=t, x_t=x_0, u_t=x_1),
        "  candidate check: torch.aminmax(t) once": check_aminmax,
        "  candidate check: ((t >= 0) & (t <= 1)).all() once": check_all,
        "torch.randn_like(x_1) + torch.rand(B)": lambda: (torch.randn_like(x_1), torch.rand(batch)),
        "train: ema_update(ema, model, 0.999) (per-parameter lerp)": lambda: ema_update(ema_model, model, 0.999),
        "train: loss.item()": lambda: loss_t.item(),
        "train: toy('moons', 256) draw": lambda: toy("moons", batch),
        "MLP(dim=2) forward, batch 256 (for scale)": lambda: model(x_1, t),
    }
    s = interleaved(fns, repeats=cfg.repeats, number=number, warmup=5)
    rows = [[k, fmt_time(median(v))] for k, v in s.items()]
    out(table("2e. Where straightline's own per-call time goes (batch 256, medians)", ["piece", "median / call"], rows,
              notes=["'candidate' and 'reference' rows are not toolkit code: equivalents written here to size a change"]))


# ------------------------------------------------------------------------ 3. time to quality


class W2Check:
    """W2 at 4 Euler steps on moons, divided by its floor; same noise and reference for every recipe."""

    def __init__(self, n: int, seed: int):
        self.floor = w2_floor("moons", n)
        self.ref = toy("moons", n, seed=seed + 321)
        self.x_0 = noise(n, seed + 654)

    def __call__(self, v) -> float:
        return w2(sl.sample(v, self.x_0, steps=4), self.ref) / self.floor


class Schedule:
    """When to run the next W2 check: after the training clock has advanced by max(abs, rel * clock).

    Recipes differ 25x in step cost (batch 4096 vs a 64-wide net at batch 256), so a fixed number of
    steps between checks would give them very different time resolution; this schedule bounds the
    overshoot of every recipe's time to quality by max(abs seconds, rel of it), with few checks.
    """

    def __init__(self, cfg: Config):
        self.abs, self.rel, self.next = cfg.ttq_check_abs, cfg.ttq_check_rel, cfg.ttq_check_abs

    def due(self, clock: float) -> bool:
        if clock < self.next:
            return False
        self.next = clock + max(self.abs, self.rel * clock)
        return True


@dataclass
class Run:
    reached: float | None  # benchmark clock, seconds of training
    reached_wall: float | None
    steps: int
    best: float
    clock: float


@dataclass
class Recipe:
    label: str
    network: str
    recipe: str
    kind: str  # "straightline" (straightline.train itself) or "loop" (the peer's example loop)
    group: str  # "ours", "before", "candidate", "peer"
    train_kwargs: dict = field(default_factory=dict)  # straightline: extra train() arguments
    model_kwargs: dict = field(default_factory=dict)  # straightline: MLP arguments besides dim=2
    evaluate_ema: bool = True
    make_model: object = None  # loop: seed -> nn.Module
    make_loss: object = None  # loop: () -> loss(model, x_1)
    batch: int = 256
    lr: float = 1e-3


def run_straightline(cfg: Config, check: W2Check, rc: Recipe, seed: int) -> Run:
    torch.manual_seed(seed)
    model = MLP(dim=2, **rc.model_kwargs)
    schedule = Schedule(cfg)
    st = {"clock": 0.0, "wall": 0.0, "resume": 0.0, "resume_wall": 0.0, "reached": None, "reached_wall": None,
          "best": math.inf, "steps": 0}

    def callback(state):  # a TrainState: the loop's own EMA copy is state.ema_model
        st["clock"] += now() - st["resume"]
        st["wall"] += time.perf_counter() - st["resume_wall"]
        st["steps"] = state.step + 1
        stop = False
        if schedule.due(st["clock"]):
            r = check(state.ema_model if rc.evaluate_ema else state.model)
            st["best"] = min(st["best"], r)
            if r <= 2.0:
                st["reached"], st["reached_wall"], stop = st["clock"], st["wall"], True
        if st["clock"] >= cfg.ttq_cap:
            stop = True
        st["resume"], st["resume_wall"] = now(), time.perf_counter()
        return stop

    st["resume"], st["resume_wall"] = now(), time.perf_counter()
    sl_train(model, "moons", steps=10**8, progress=False, seed=seed, callback=callback, **rc.train_kwargs)
    return Run(st["reached"], st["reached_wall"], st["steps"], st["best"], st["clock"])


def run_loop(cfg: Config, check: W2Check, rc: Recipe, seed: int) -> Run:
    model = rc.make_model(seed)
    loss_fn = rc.make_loss()
    opt = torch.optim.Adam(model.parameters(), lr=rc.lr)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the peers' losses draw x_0 and t from the global generator
    schedule = Schedule(cfg)
    clock, wall, step, reached, reached_wall, best = 0.0, 0.0, 0, None, None, math.inf
    while clock < cfg.ttq_cap:
        c0, w0 = now(), time.perf_counter()
        x_1 = toy("moons", rc.batch, generator=g)
        loss = loss_fn(model, x_1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        clock += now() - c0
        wall += time.perf_counter() - w0
        step += 1
        if schedule.due(clock):
            r = check(model)
            best = min(best, r)
            if r <= 2.0:
                reached, reached_wall = clock, wall
                break
    return Run(reached, reached_wall, step, best, clock)


def _seeded_mlp(seed: int):
    return fresh_mlp(seed)


def _seeded(cls):
    def make(seed: int):
        torch.manual_seed(seed)
        return cls()
    return make


def recipes(cfg: Config) -> list[Recipe]:
    ours_net = "MLP(dim=2) 256x3"
    default_net = "MLP(dim=2) 128x3"
    defaults = "batch 128, lr 5e-3, EMA 0.999 (warm-up), auto = exact_ot"
    old = {"coupling": "independent", "batch_size": 256, "lr": 1e-3}  # train's defaults until this change
    old_net = {"hidden": 256}
    rs = [
        Recipe("straightline defaults (EMA model)", default_net, defaults, "straightline", "ours"),
        Recipe("straightline defaults (live model)", default_net, defaults, "straightline", "ours", evaluate_ema=False),
        Recipe("before: old defaults (EMA model)", ours_net, "batch 256, lr 1e-3, EMA 0.999 (warm-up), independent",
               "straightline", "before", old, old_net),
        Recipe("before: old defaults + exact_ot (EMA model)", ours_net,
               "batch 256, lr 1e-3, EMA 0.999 (warm-up), exact_ot", "straightline", "before",
               {**old, "coupling": "exact_ot"}, old_net),
    ]
    if not cfg.quick:
        variants = [  # label, network, recipe, train() arguments, MLP arguments: one default changed at a time
            ("defaults, no EMA warm-up", default_net, "batch 128, lr 5e-3, EMA 0.999 (no warm-up), exact_ot",
             {"ema_warmup": False}, {}),
            ("defaults, independent coupling", default_net, "batch 128, lr 5e-3, EMA 0.999 (warm-up), independent",
             {"coupling": "independent"}, {}),
            ("defaults, lr 3e-3", default_net, "batch 128, lr 3e-3, EMA 0.999 (warm-up), exact_ot", {"lr": 3e-3}, {}),
            ("defaults, lr 1e-2", default_net, "batch 128, lr 1e-2, EMA 0.999 (warm-up), exact_ot", {"lr": 1e-2}, {}),
            ("defaults, lr 1e-2 + 20 warm-up steps", default_net,
             "batch 128, lr 1e-2 (20 warm-up steps), EMA 0.999 (warm-up), exact_ot", {"lr": 1e-2, "warmup_steps": 20}, {}),
            ("defaults, batch 64", default_net, "batch 64, lr 5e-3, EMA 0.999 (warm-up), exact_ot",
             {"batch_size": 64}, {}),
            ("defaults, batch 256", default_net, "batch 256, lr 5e-3, EMA 0.999 (warm-up), exact_ot",
             {"batch_size": 256}, {}),
            ("defaults, MLP hidden=64", "MLP(dim=2, hidden=64) 64x3", defaults, {}, {"hidden": 64}),
            ("defaults, MLP hidden=256", "MLP(dim=2, hidden=256) 256x3", defaults, {}, {"hidden": 256}),
        ]
        rs += [Recipe(f"candidate: {label} (EMA)", net, recipe, "straightline", "candidate", kw, mk)
               for label, net, recipe, kw, mk in variants]
    rs += [
        Recipe("torchcfm I-CFM example recipe", ours_net, "ConditionalFlowMatcher(sigma=0.1), batch 256, Adam lr 1e-3",
               "loop", "peer", make_model=_seeded_mlp, make_loss=lambda: peers.torchcfm_loss(0.1)),
        Recipe("torchcfm OT-CFM example recipe", ours_net,
               "ExactOptimalTransportCFM(sigma=0.1), batch 256, Adam lr 1e-3", "loop", "peer",
               make_model=_seeded_mlp, make_loss=lambda: peers.torchcfm_loss(0.1, exact_ot=True)),
        Recipe("torchcfm I-CFM, its own example net", "torchcfm MLP 64x3 SELU",
               "ConditionalFlowMatcher(sigma=0.1), batch 256, Adam lr 1e-3", "loop", "peer",
               make_model=_seeded(peers.TorchcfmExampleMLP), make_loss=lambda: peers.torchcfm_loss(0.1)),
        Recipe("torchcfm OT-CFM, its own example net", "torchcfm MLP 64x3 SELU",
               "ExactOptimalTransportCFM(sigma=0.1), batch 256, Adam lr 1e-3", "loop", "peer",
               make_model=_seeded(peers.TorchcfmExampleMLP), make_loss=lambda: peers.torchcfm_loss(0.1, exact_ot=True)),
        Recipe("flow_matching example recipe", ours_net, "AffineProbPath(CondOT), batch 4096, Adam lr 1e-3",
               "loop", "peer", make_model=_seeded_mlp, make_loss=peers.flow_matching_loss, batch=4096),
    ]
    if cfg.ttq_own_nets:
        rs.append(Recipe("flow_matching, its own example net", "4x512 Swish MLP",
                         "AffineProbPath(CondOT), batch 4096, Adam lr 1e-3", "loop", "peer",
                         make_model=_seeded(peers.FlowMatchingExampleMLP), make_loss=peers.flow_matching_loss,
                         batch=4096))
    return rs


def _best(runs: list[Run]) -> str:
    best = min(r.best for r in runs)
    return f"{best:.2f}" if math.isfinite(best) else "- (no check yet)"


def section_ttq(cfg: Config, targets: Targets) -> None:
    check = W2Check(cfg.ttq_n, cfg.seed)
    # warm-up: first-call costs (lazy imports on the first optimizer step, allocator growth) are not training
    for coupling in (None, couplings.exact_ot):
        sl_train(fresh_mlp(cfg.seed), "moons", steps=3, coupling=coupling, progress=False)
    check(fresh_mlp(cfg.seed))
    results: list[tuple[Recipe, list[Run], float | None]] = []
    for rc in recipes(cfg):
        runs: list[Run] = []
        for k in range(cfg.ttq_seeds):
            run = (run_straightline if rc.kind == "straightline" else run_loop)(cfg, check, rc, cfg.seed + k)
            runs.append(run)
            if run.reached is None:  # hit the cap: further seeds would only repeat that at full cost
                break
        times = [r.reached if r.reached is not None else math.inf for r in runs]
        med = float(np.median(times)) if len(runs) == cfg.ttq_seeds else math.inf
        results.append((rc, runs, med if math.isfinite(med) else None))
    rows = []
    for rc, runs, med in results:
        reached = [r for r in runs if r.reached is not None]
        walls = [r.reached_wall for r in reached]
        steps = int(np.median([r.steps for r in runs]))
        per_step = float(np.median([r.clock / max(r.steps, 1) for r in runs]))
        rows.append([rc.label, rc.network, rc.recipe,
                     f"{med:.2f} s" if med is not None else f"not within {cfg.ttq_cap:g} s",
                     f"{float(np.median(walls)):.2f} s" if med is not None else "-",
                     f"{len(reached)}/{len(runs)}", str(steps), _best(runs), fmt_time(per_step)])
    notes = [
        f"time = training time to the first check at or below 2x floor, median over {cfg.ttq_seeds} seeds "
        f"(model init, data, noise); benchmark clock = {clock_name()}, wall-clock median beside it. It covers data "
        f"draws, loss, backward, optimizer and straightline's EMA; the W2 checks are excluded. A check runs after the "
        f"first step at which the training clock has advanced by max({cfg.ttq_check_abs:g} s, "
        f"{cfg.ttq_check_rel:.0%} of the clock so far) since the last one, so every recipe's time is resolved to that "
        f"bound whatever its step cost. Cap {cfg.ttq_cap:g} s per run; a recipe "
        f"whose run hits the cap is not run on further seeds. W2 on n={cfg.ttq_n}, floor {check.floor:.3f}",
        "recipes: straightline = its shipped defaults (train(): batch 128, lr 5e-3, EMA 0.999 with warm-up, coupling "
        "'auto' = exact OT for unconditional data; MLP(dim=2) = 128x3; the EMA model is what it documents for "
        "sampling); 'before' rows = the defaults until this change (batch 256, lr 1e-3, independent, 256x3); torchcfm = its 2-D example "
        "(README notebook: sigma=0.1, batch 256, Adam default lr 1e-3, MLP(dim=2, time_varying=True) 64x3 SELU); "
        "flow_matching = examples/2d_flow_matching.ipynb (lr 1e-3, batch 4096, plain Adam, 4x512 Swish MLP)",
        "'MLP(dim=2) 256x3' rows give every recipe straightline's network, so they compare recipes and library "
        "code on the same model; peers have no EMA in their examples and are evaluated on the live model; "
        "'candidate' rows are straightline.train with one default changed (what another default would give)",
    ]
    if not cfg.ttq_own_nets:
        notes.append("flow_matching's own 4x512 network at batch 4096 is not raced by default (about 1 s per step "
                     "on one CPU thread, far outside the cap); --ttq-own-nets adds it")
    out(table(
        "3. Time to quality on moons: training time until W2 at 4 Euler steps <= 2x its floor",
        ["run", "network", "recipe", "time to 2x floor", "(wall)", "reached", "steps", "best W2/floor", "per step"],
        rows, notes=notes,
    ))
    peer_times = [med for rc, _, med in results if rc.group == "peer" and med is not None]
    best_peer = min(peer_times) if peer_times else None
    best_peer_txt = f"{best_peer:.2f} s" if best_peer is not None else f"> {cfg.ttq_cap:g} s (none reached)"

    def judge(med: float | None) -> tuple[str, bool]:
        mine = f"{med:.2f} s" if med is not None else f"> {cfg.ttq_cap:g} s"
        if med is None:
            return f"{mine} vs best peer {best_peer_txt}", False
        limit = best_peer / 2 if best_peer is not None else cfg.ttq_cap / 2
        return f"{mine} vs best peer {best_peer_txt} (ratio {med / best_peer:.2f})" if best_peer else \
            f"{mine} vs best peer {best_peer_txt}", med <= limit

    by_label = {rc.label: med for rc, _, med in results}
    txt, ok = judge(by_label["straightline defaults (EMA model)"])
    targets.add("time to quality, shipped defaults (EMA model)", "ours <= 0.5x best peer", txt, ok)
    ours_best = min((rc for rc, _, med in results if rc.group in ("ours", "candidate") and med is not None),
                    key=lambda rc: by_label[rc.label], default=None)
    if ours_best is not None:
        txt, _ = judge(by_label[ours_best.label])
        targets.add(f"  (best straightline row: {ours_best.label})", "ours <= 0.5x best peer", txt,
                    None if ours_best.label == "straightline defaults (EMA model)" else None)


# ------------------------------------------------------------------- 5. the loop's controls


def _loop_step(args: list[str], procs: int = 1) -> float:
    """Median seconds per training step of bench/_loop_step.py, run in 1 process or under torchrun."""
    import subprocess

    script = str(Path(__file__).with_name("_loop_step.py"))
    launch = [sys.executable] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  "--nproc_per_node", str(procs)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launch + [script, *args], capture_output=True, text=True, env=env, timeout=1200)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("STEP ")]
    if done.returncode or not line:
        raise RuntimeError(f"_loop_step.py {args} failed: {done.stderr[-2000:]}")
    return float(line[0].split()[1])


def section_loop_controls(cfg: Config, targets: Targets) -> None:
    steps, warm = ("20", "5") if cfg.quick else ("150", "30")
    base = ["--steps", steps, "--warm", warm, "--batch", "256"]
    variants = {
        "train() defaults (fp32, eager)": base,
        "amp='bf16' (CPU autocast)": base + ["--amp", "bf16"],
        "compile=True": base + ["--compile"],
        "compile=True, amp='bf16'": base + ["--compile", "--amp", "bf16"],
    }
    rounds = 1 if cfg.quick else 3
    times = {k: [] for k in variants}
    for _ in range(rounds):  # interleaved rounds: a load change hits every variant alike
        for name, args in variants.items():
            times[name].append(_loop_step(args))
    one = times["train() defaults (fp32, eager)"]
    rows = [[k, fmt_time(median(v)), f"{median(one) / median(v):.2f}x"] for k, v in times.items()]
    out(table("5a. straightline.train step with the loop's controls (MLP 256x3, moons, batch 256, 1 thread)",
              ["variant", "median / step", "speed vs defaults"], rows,
              notes=[f"median over {rounds} runs of the median step interval after {warm} warm-up steps (compilation "
                     "excluded); on a small MLP on the CPU, bf16 autocast and compile mostly pay for their casts "
                     "and guards: they are for GPUs and larger networks"]))
    sizes = [(256, "auto")] if cfg.quick else [(256, "auto"), (4096, "independent")]
    rows, ratios = [], {}
    for per, coupling in sizes:  # rows per process, and train's coupling for them
        one_args = ["--steps", steps, "--warm", warm, "--batch", str(per), "--coupling", coupling]
        two_args = ["--steps", steps, "--warm", warm, "--batch", str(2 * per), "--coupling", coupling]
        single, double = [], []
        for _ in range(rounds):  # interleaved: a load change hits both alike
            single.append(_loop_step(one_args))
            double.append(_loop_step(two_args, procs=2))
        ratios[per] = median(single) / median(double)
        rows += [[f"{per} rows per process ({coupling} pairs)", fmt_time(median(single)), fmt_time(median(double)),
                  f"{ratios[per]:.2f}x"]]
    out(table("5b. DDP under torchrun on the CPU (gloo): per-process throughput, 2 processes vs 1",
              ["step", "1 process", "2 processes", "per-process throughput"], rows,
              notes=["every process, in both runs, runs one thread (OMP_NUM_THREADS=1 and torch.set_num_threads(1) "
                     "in bench/_loop_step.py); a 2-process step includes the gradient all-reduce (one bucket for "
                     "this MLP; gradients are bucket views, buffers are not re-broadcast per step: see "
                     "distributed.wrap) and the loss read-back every log_every steps",
                     "the all-reduce and the ranks' wait for each other cost a few ms per step on 2 shared cores "
                     "whatever the step's size: a 3 ms step of the toy MLP loses half its throughput, a step of "
                     "about 20 ms (4096 rows per process) keeps most of it; DDP is for steps that are not tiny"]))
    for per, ratio in ratios.items():
        targets.add(f"DDP per-process throughput (2 CPU processes vs 1), {per} rows per process", ">= 0.80x",
                    f"{ratio:.2f}x", ratio >= 0.8)
    if not cfg.quick:  # the --quick smoke run keeps its time budget: one torchrun launch fewer
        _ddp_options_table(cfg)


def _ddp_overhead_rows(steps: str) -> dict[str, float]:
    """Median step seconds per variant of bench/_ddp_overhead.py under torchrun with 2 processes."""
    import subprocess

    script = str(Path(__file__).with_name("_ddp_overhead.py"))
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launch + [script, "--steps", steps], capture_output=True, text=True, env=env, timeout=1200)
    rows = [ln.split() for ln in done.stdout.splitlines() if ln.startswith("STEP ")]
    if done.returncode or not rows:
        raise RuntimeError(f"_ddp_overhead.py failed: {done.stderr[-2000:]}")
    return {" ".join(r[1:-1]): float(r[-1]) for r in rows}


def _ddp_options_table(cfg: Config) -> None:
    """5c: the same step without DDP, with DDP's default options and as distributed.wrap sets DDP up,
    interleaved step by step in the same 2 processes (paired: a load change hits all three alike)."""
    times = _ddp_overhead_rows("400")
    plain = times["no DDP"]
    rows = [[k, fmt_time(v), f"{plain / v:.2f}x", fmt_time(v - plain)] for k, v in times.items()]
    out(table("5c. DDP options on the same step, 2 gloo processes, paired (MLP, moons, 256 rows per process)",
              ["variant", "median / step", "throughput vs no DDP", "DDP overhead"], rows,
              notes=["DDP defaults broadcast the model's buffers from rank 0 before every forward; the MLP's only "
                     "buffer (the time embedding's frequencies) is a non-persistent constant, so distributed.wrap "
                     "skips that collective (and makes gradients bucket views). A barrier before each timed step "
                     "keeps rank skew out of the comparison."]))


# ------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    cfg = parse_args(argv)
    torch.set_num_threads(cfg.threads)
    use_clock(cfg.clock)
    start = time.perf_counter()
    header(cfg)
    targets = Targets()
    plan = []
    if "1" in cfg.sections:
        plan.append(lambda: section_quality(cfg))
    if "2" in cfg.sections:
        plan += [lambda: section_loss_overhead(cfg, targets), lambda: section_train_step(cfg, targets),
                 lambda: section_exact_ot(cfg, targets), lambda: section_sampling(cfg, targets),
                 lambda: section_attribution(cfg)]
    if "3" in cfg.sections:
        plan.append(lambda: section_ttq(cfg, targets))
    if "5" in cfg.sections:
        plan.append(lambda: section_loop_controls(cfg, targets))
    for step in plan:
        t0 = time.perf_counter()
        step()
        out(f"  (section wall time {time.perf_counter() - t0:.0f} s)")
    rows = [list(line) for line in targets.lines]
    out(table("4. Targets (issue 2)", ["target", "wanted", "measured [q1-q3]", "verdict"], rows,
              notes=["'within noise': the target lies inside the interquartile range of the paired ratios, so "
                     "this run cannot tell the two apart at this threshold; see the 'expected' figures derived "
                     "from the noise-robust micro-measurements (2a, 2d solver rows)"]))
    out(f"\ntotal wall time {time.perf_counter() - start:.0f} s; load average at end "
        f"{load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
