"""Honest solutions in many styles score full correctness under the allow-list: no false rejections."""
from __future__ import annotations

from .honest import HONEST
from .runner_process import RunnerProcess, tagged


def test_every_honest_solution_scores_one(runner: RunnerProcess) -> None:
    results = runner.evaluate_many([(h.problem, tagged(h.code)) for h in HONEST])
    failures = {
        h.name: {"rewards": r["rewards"], "hacks": r["hacks"]}
        for h, r in zip(HONEST, results)
        if r["rewards"]["correctness"]["score"] != 1.0 or r["rewards"]["compilation"]["score"] != 1.0
        or r["rewards"]["formatting"]["score"] != 1.0 or r["hacks"]
    }
    assert not failures, failures
