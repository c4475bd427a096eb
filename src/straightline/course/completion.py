"""The completion page's numbers: what a learner covered and how long they worked, and where to go next.

Time spent is measured from the learner's recorded actions (every answer, hint, rating, skip,
submission and review answer is an attempt with a timestamp): the sum of the gaps between
consecutive actions, each gap counted at most `GAP_CAP_S` (10 minutes), so a break or a closed
laptop does not count as study. Reading before the first action of a sitting is not seen by the
server and is not counted: the figure is a lower bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .content import Course
from .progress import ChapterProgress, chapter_progress, course_progress
from .store import Attempt, ElementState

__all__ = ["GAP_CAP_S", "READING_LIST", "Completion", "Reading", "completion", "format_duration", "time_spent_s"]

GAP_CAP_S = 600.0


@dataclass(frozen=True)
class Reading:
    authors: str
    title: str
    where: str
    url: str
    why: str


READING_LIST: tuple[Reading, ...] = (
    Reading("Yaron Lipman, Marton Havasi, Peter Holderrieth, Neta Shaul, Matt Le, Brian Karrer, Ricky T. Q. Chen, David Lopez-Paz, Heli Ben-Hamu, Itai Gat",
            "Flow Matching Guide and Code", "arXiv 2412.06264, 2024", "https://arxiv.org/abs/2412.06264",
            "The reference text by the method's authors, with the `flow_matching` library: general paths, "
            "discrete and Riemannian flow matching, and the proofs this course leaves out."),
    Reading("Peter Holderrieth, Ezra Erives", "An Introduction to Flow Matching and Diffusion Models (MIT 6.S184 lecture notes)",
            "arXiv 2506.02070, 2025", "https://arxiv.org/abs/2506.02070",
            "The MIT course's notes: flows and diffusions as ODEs and SDEs side by side, with labs."),
    Reading("Yaron Lipman, Ricky T. Q. Chen, Heli Ben-Hamu, Maximilian Nickel, Matt Le", "Flow Matching for Generative Modeling",
            "ICLR 2023", "https://arxiv.org/abs/2210.02747", "The paper that introduced conditional flow matching."),
    Reading("Xingchao Liu, Chengyue Gong, Qiang Liu", "Flow Straight and Fast: Learning to Generate and Transfer Data with Rectified Flow",
            "ICLR 2023", "https://arxiv.org/abs/2209.03003", "Rectified flow and reflow (Chapter 6)."),
    Reading("Michael S. Albergo, Eric Vanden-Eijnden", "Building Normalizing Flows with Stochastic Interpolants",
            "ICLR 2023", "https://arxiv.org/abs/2209.15571", "The same idea from the interpolant side; the route to stochastic interpolants."),
    Reading("Alexander Tong, Kilian Fatras, Nikolay Malkin, Guillaume Huguet, Yanlei Zhang, Jarrid Rector-Brooks, Guy Wolf, Yoshua Bengio",
            "Improving and Generalizing Flow-Based Generative Models with Minibatch Optimal Transport", "TMLR 2024",
            "https://arxiv.org/abs/2302.00482", "Minibatch OT couplings (Chapter 2) and the torchcfm library."),
    Reading("Patrick Esser, Sumith Kulal, Andreas Blattmann, et al.", "Scaling Rectified Flow Transformers for High-Resolution Image Synthesis",
            "ICML 2024", "https://arxiv.org/abs/2403.03206", "Stable Diffusion 3: time sampling, shift and MMDiT at scale (Chapters 4 and 8)."),
    Reading("Zhengyang Geng, Mingyang Deng, Xingjian Bai, J. Zico Kolter, Kaiming He", "Mean Flows for One-step Generative Modeling",
            "arXiv 2505.13447, 2025", "https://arxiv.org/abs/2505.13447", "Learning the average velocity to jump in one step (Chapter 7)."),
    Reading("Ricky T. Q. Chen, Yaron Lipman", "Flow Matching on General Geometries", "ICLR 2024",
            "https://arxiv.org/abs/2302.03660", "Flow matching on curved spaces such as SO(3)."),
)


def time_spent_s(times: Iterable[datetime], cap_s: float = GAP_CAP_S) -> float:
    """The sum of the gaps between consecutive times (sorted), each at most `cap_s` seconds."""
    ordered = sorted(times)
    return sum(min((b - a).total_seconds(), cap_s) for a, b in zip(ordered, ordered[1:]))


def format_duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass(frozen=True)
class Completion:
    chapters: list[tuple[str, str, ChapterProgress]]  # (slug, title, progress)
    total: ChapterProgress
    chapters_complete: int
    chapters_started: int
    actions: int
    seconds: float
    first: datetime | None
    last: datetime | None


def completion(course: Course, states: Mapping[str, ElementState], attempts: Sequence[Attempt]) -> Completion:
    rows = [(c.slug, c.title, chapter_progress(c, states)) for c in course.chapters]
    times = [a.created_at for a in attempts]
    return Completion(
        chapters=rows,
        total=course_progress(course, states),
        chapters_complete=sum(1 for _, _, p in rows if p.complete),
        chapters_started=sum(1 for _, _, p in rows if p.done),
        actions=len(attempts),
        seconds=time_spent_s(times),
        first=min(times) if times else None,
        last=max(times) if times else None,
    )
