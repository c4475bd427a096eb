"""What the chapters claim: numbers quoted from the shipped experiments by the {{KEY | COLUMN | ...}}
directive (never typed), claims checked against closed forms, and overclaims kept out."""

from __future__ import annotations

import json
import math
import re

import pytest

from straightline.course.content import load_course
from straightline.course.experiments import DEFAULT_EXPERIMENTS_DIR

COURSE = load_course()


def _chapter(slug: str):
    return next(c for c in COURSE.chapters if c.slug == slug)


def _text(slug: str) -> str:
    """A chapter's rendered HTML with tags removed (what a learner reads)."""
    parts = []
    for block in _chapter(slug).blocks:
        html = block.html
        parts.append(json.dumps(html) if not isinstance(html, str) else html)
    return " ".join(re.sub(r"<[^>]+>", " ", " ".join(parts)).split())


def _experiment(key: str) -> dict:
    return json.loads((DEFAULT_EXPERIMENTS_DIR / f"{key}.json").read_text())


def test_chapter_6_quotes_the_reflow_experiment_for_the_distilled_students() -> None:
    rows = {r[0]: r for r in _experiment("reflow")["rows"]}
    text = _text("reflow")
    for name in ("distilled 1-step student of the 1-rectified flow", "distilled 1-step student of the 2-rectified flow"):
        assert f"{rows[name][2]:.3f}" in text
    assert "warm start" in text and "Train a fresh model" not in text
    assert "two or three rounds" not in text and "single round of reflow followed by distillation" in text
    assert "most sharply near the end" not in text


def test_the_1d_particle_turns_speeds_up_mid_path_then_coasts() -> None:
    """Ch 6: noise N(0, 1), data ±1; the exact marginal field moves x0 = 0.1 as the text says."""
    x, t, dt = 0.1, 0.0, 1e-5
    speeds: list[tuple[float, float]] = []
    while t < 0.95:
        v = (math.tanh(t * x / (1 - t) ** 2) - x) / (1 - t)  # E[x_1 | x_t = x] = tanh(t x / (1 - t)^2)
        speeds.append((t, v))
        x, t = x + v * dt, t + dt
    turn = next(t for t, v in speeds if v > 0)
    accel = [(t, (v2 - v1) / dt) for (t, v1), (_, v2) in zip(speeds, speeds[1:])]
    peak = max(accel, key=lambda a: a[1])[0]
    late = [v for t, v in speeds if t > 0.75]
    assert 0.35 < turn < 0.45 and 0.5 < peak < 0.7
    assert max(late) - min(late) < 0.01 and abs(late[-1] - 2.4) < 0.05
    text = _text("reflow")
    assert "0.5" in text and "coasts" in text


def test_chapters_5_and_8_quote_the_steps_and_guidance_experiments() -> None:
    steps = {(r[0], r[1], r[2]): r[3] for r in _experiment("steps")["rows"]}
    text5 = _text("sampling")
    assert f"{steps[('moons (W2)', 'flow matching, Euler', 20)]:.3f}" in text5
    assert f"{steps[('digits (FD)', 'DDIM (eta = 0)', 10)]:.1f}" in text5
    guidance = {r[0]: r for r in _experiment("guidance")["rows"]}
    text8 = _text("flow-vs-diffusion")
    assert f"{guidance[5.0][4]:.1f}" in text8 and f"{guidance[2.0][2]:.2f}" in text8
    for slug in ("sampling", "sd3-flux", "flow-vs-diffusion"):
        assert "Typical steps" not in _text(slug)


def test_chapter_7_states_the_shift_facts_and_no_absolute_claims() -> None:
    text = _text("sd3-flux")
    assert "Nobody runs" not in text
    assert "fixed factor of 3.0" in text and "number of image tokens" in text and "no shift at all" in text


def test_chapter_10_holds_the_curved_spaces_and_chapter_8_no_longer_does() -> None:
    text = _text("curved-spaces")
    assert "less than" in text and "unique skew-symmetric" in text  # log R: unique below angle pi
    assert "40 milliseconds" in text and "250 evaluations" in text  # the design brief gives the cost
    moved = {"c7-rotation-flow", "c7-protein-design"}
    assert moved <= {e.id for e in _chapter("curved-spaces").elements}  # ids kept: saved progress follows
    assert not moved & {e.id for e in _chapter("sd3-flux").elements}
    assert "SO(3)" not in _chapter("sd3-flux").path.read_text()
    assert _chapter("curved-spaces") is COURSE.chapters[-1]
    for chapter in COURSE.chapters:  # rotations are referred to where they now are
        source = chapter.path.read_text()
        assert not re.search(r"rotations of Chapter 8|Chapter 8[^.]*rotation", source), chapter.path.name


def test_chapter_8_defines_c_k_before_its_simulation_and_names_the_marginal_u_t() -> None:
    chapter = _chapter("flow-vs-diffusion")
    source = chapter.path.read_text()
    assert source.index("c_k = \\sqrt{\\bar\\alpha_k}") < source.index("{simulation} c8-side-by-side")
    assert "v_t(" not in source
    # the bending claim, where it is made, is qualified (it holds only where the data spread is far from the noise's)
    assert "close to one end" not in source or "need not be spread evenly" in source


def test_notation_conditional_and_marginal_velocity() -> None:
    assert "u_t(x \\mid x_1)" in _chapter("paths").path.read_text()
    assert "u_t(x_t \\mid x_1) = x_1 - x_0" in _chapter("training").path.read_text()


def test_chapter_3_pattern_confirms_the_cosine_guess() -> None:
    pattern = COURSE.elements["c3-fm-vs-diffusion"]
    answer = pattern.fields["answer"]
    assert "The guess is right" in answer and "-\\tfrac{\\pi}{2}" in answer
    # the claim, numerically: the path's time derivative is -(pi/2) times Salimans-Ho's v-target
    # alpha * noise - sigma * data, with alpha = sin(pi t / 2) the data weight, sigma = cos(pi t / 2)
    def path(t: float, x0: float, x1: float) -> float:
        return math.cos(math.pi * t / 2) * x0 + math.sin(math.pi * t / 2) * x1

    x0, x1, h = 0.3, -1.7, 1e-6
    for t in (0.1, 0.5, 0.9):
        velocity = (path(t + h, x0, x1) - path(t - h, x0, x1)) / (2 * h)
        v_target = math.sin(math.pi * t / 2) * x0 - math.cos(math.pi * t / 2) * x1
        assert velocity == pytest.approx(-math.pi / 2 * v_target, rel=1e-6)
        # the cosine schedule, run backwards: sqrt(alpha_bar(1 - t)) = cos(pi (1 - t) / 2) is the data weight
        assert math.cos(math.pi * (1 - t) / 2) == pytest.approx(math.sin(math.pi * t / 2))


def test_chapter_4_build_it_shows_noise_fn_keyword_only() -> None:
    for eid in ("c4-build-cfm-loss", "c4-build-weighted-loss"):
        assert "bare `*`" in COURSE.elements[eid].fields["prompt"] or "after the `*`" in COURSE.elements[eid].fields["prompt"]


def test_captions_promise_only_what_their_figures_show() -> None:
    """Each was checked against a Chromium screenshot of its figure (item 8 of issue 13)."""
    assert "blurry digit-like shape" not in _text("cnf") and "still looks like noise" in _text("cnf")
    assert "scatter much more widely" not in _text("cfm") and "cosine between them climbs" in _text("cfm")
    live = COURSE.elements["c4-live-training"].fields["caption"]
    assert "Three panels" not in live and "Two panels" in live and "spirals" in live
    guided = COURSE.elements["c7-guided-digits"].fields["caption"]
    assert "distort the strokes" not in guided and "still draws clean digits" in guided


def test_the_chapter_2_caption_names_both_paths_of_its_left_panel() -> None:
    """The left panel draws every pair twice, on the cosine path and on the straight path."""
    caption = COURSE.elements["c2-curved-vs-straight"].fields["caption"]
    assert "along a curved, diffusion-style (cosine) path" in caption and "along the straight path" in caption


def test_controls_used_before_their_chapter_name_the_chapter_that_teaches_them() -> None:
    """The guidance slider (Ch 8) names the chapter that derives guidance; the optimal-transport
    preset of Ch 0 names Chapter 2, as the Ch 0-1 coupling toggles do."""
    from pathlib import Path

    sims = Path(__file__).parents[2] / "src" / "straightline" / "web" / "static" / "sims"
    number = {c.slug: c.number for c in COURSE.chapters}
    guidance_taught = number["flow-vs-diffusion"]
    assert "classifier-free guidance" in _text("flow-vs-diffusion") and number["sd3-flux"] < guidance_taught
    assert f'"Guidance scale w (taught in Chapter {guidance_taught})"' in (sims / "guided-digits.js").read_text()
    presets = re.findall(r'label: "([^"]*optimal-transport[^"]*)"', (sims / "particles-flow.js").read_text())
    assert presets and all(p.endswith(f"(Chapter {number['optimal-transport']})") for p in presets)
