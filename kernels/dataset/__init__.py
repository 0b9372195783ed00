"""The kernel problems: training and held-out splits (see problem.Problem)."""
from __future__ import annotations

from . import elementwise, fused, matmul, reductions
from .problem import Problem

ALL_PROBLEMS: dict[str, Problem] = {
    problem.name: problem
    for module in (elementwise, reductions, matmul, fused)
    for problem in module.PROBLEMS
}


def get_problem(name: str) -> Problem:
    try:
        return ALL_PROBLEMS[name]
    except KeyError:
        raise KeyError(f"unknown kernel problem {name!r}") from None


def problems(split: str | None = None) -> list[Problem]:
    return [p for p in ALL_PROBLEMS.values() if split is None or p.split == split]
