"""Chapter 9's account of DDPM's 1000-step digit FD against what bench/ddpm_digits.py measured
(`ddpm-steps.json`, `ddpm-eps-error.json`): each sentence's verdict (refuted, where, what) holds in
the shipped rows, and the numbers the text shows are those rows' (quoted, never typed)."""

from __future__ import annotations

import html as html_lib
import json
import re

from straightline.course.content import load_course
from straightline.course.experiments import DEFAULT_EXPERIMENTS_DIR

COURSE = load_course()


def _rows(key: str) -> list[list]:
    return json.loads((DEFAULT_EXPERIMENTS_DIR / f"{key}.json").read_text())["rows"]


def _fd(sampler: str | None = None, *, test: str | None = None, nfe: int | None = None) -> float:
    (row,) = [r for r in _rows("ddpm-steps") if (sampler is None or r[1] == sampler) and (test is None or r[0] == test)
              and (nfe is None or r[2] == nfe)]
    return row


def _section() -> str:
    """The learner-visible text of Chapter 9 from the DDPM subsection to the next element."""
    chapter = next(c for c in COURSE.chapters if c.slug == "flow-vs-diffusion")
    html = " ".join(b.html if isinstance(b.html, str) else json.dumps(b.html) for b in chapter.blocks)
    text = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())
    start = text.index("A thousand stochastic steps on the digits")
    return text[start:start + 6000]


def test_the_sampler_is_right_and_the_network_is_to_blame() -> None:
    ddpm, ddim = _fd(test="reproduce"), _fd(test="reference", nfe=100)
    assert ddpm[3] > 4 * ddim[3]  # the puzzle: 1000 DDPM steps far behind 100 DDIM steps
    oracle = _fd(test="oracle", nfe=1000)
    assert oracle[4] < 1  # exact epsilon: the same chain lands below the floor
    flow_ddpm, flow_euler = _fd(test="flow as eps", nfe=1000), _fd(test="flow as eps", nfe=100)
    assert flow_ddpm[3] < 0.5 * ddpm[3] and flow_ddpm[3] < 1.25 * flow_euler[3]
    (noisy,) = [r for r in _rows("ddpm-eps-error") if r[0] == "301-1000"]
    assert noisy[2] > 2 * noisy[3]  # the eps-network's error at the noisy end, against the flow model's


def test_the_refuted_explanations_are_refuted() -> None:
    ddpm, ddim = _fd(test="reproduce"), _fd(test="reference", nfe=100)
    for k in (10, 50, 100):  # no leftover noise to remove: jumping to x_0 early does not help
        assert _fd(f"DDPM down to k = {k}, then x_0 predicted in one jump")[3] > 0.9 * ddpm[3]
    assert ddpm[5] < 1 and ddpm[6] < 1 and ddim[6] > ddpm[6]  # smoother and fainter, not noisy
    for nfe in (10, 50, 100, 250):  # not the number of stochastic steps
        assert _fd(test="steps", nfe=nfe)[3] > 0.9 * ddpm[3]
    assert abs(_fd(test="variance")[3] - ddpm[3]) < 0.05 * ddpm[3]


def test_the_damage_is_done_at_the_noisy_end() -> None:
    ddim, ddpm = _fd(test="reference", nfe=100)[3], _fd(test="reproduce")[3]
    early = _fd("DDPM down to k = 300, then DDIM single steps")[3]  # stochastic only far from the data
    late = _fd("DDIM down to k = 300, then DDPM single steps")[3]  # stochastic only near it
    assert early > 3 * ddim and early > 1.5 * late  # most of the damage: the steps far from the data
    assert ddim < late < 0.5 * ddpm  # the steps near the data cost something too


def test_the_section_quotes_the_rows_and_says_which_hypotheses_fell() -> None:
    text = _section()
    assert f"scores a digit FD of {_fd(test='reproduce')[3]:.4g} when it runs DDPM's own 1000 ancestral steps" in text
    for row in (_fd(test="oracle", nfe=1000), _fd(test="flow as eps", nfe=1000),
                _fd("DDPM down to k = 300, then DDIM single steps"), _fd("DDIM down to k = 300, then DDPM single steps")):
        assert f"{row[3]:.3g}" in text, row
    assert "Leftover noise at the end: refuted" in text and "Errors piling up over many steps: refuted" in text
    assert 'the answer is not "the learned' in text
