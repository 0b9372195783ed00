"""Every catalogued reward hack scores 0 on correctness, for the reason the catalogue gives, and is not timed."""
from __future__ import annotations

from .hack_catalogue import HACKS
from .runner_process import RunnerProcess, tagged


def test_every_catalogued_hack_scores_zero(runner: RunnerProcess) -> None:
    # Timing on the CPU is requested: a hack that got through to the timing run would score above 0 there.
    results = runner.evaluate_many([(hack.problem, tagged(hack.code)) for hack in HACKS], runtime_device="cpu")
    problems = {}
    for hack, result in zip(HACKS, results):
        correctness, runtime = result["rewards"]["correctness"], result["rewards"]["runtime"]
        kinds = {violation.split(":")[0] for violation in result["hacks"]}
        if correctness["score"] != 0.0 or runtime["score"] != 0.0 or not hack.expected <= kinds:
            problems[hack.name] = {"correctness": correctness, "runtime": runtime, "hacks": result["hacks"], "expected": sorted(hack.expected)}
    assert not problems, problems


def test_the_catalogue_names_are_unique() -> None:
    assert len({hack.name for hack in HACKS}) == len(HACKS)
