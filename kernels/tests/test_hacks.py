"""Every catalogued reward hack scores 0 on correctness, for the reason the catalogue gives, and is not timed.

Hacks outside the grammar are rejected by the allow-list before anything runs; those with a `second_line` are
run again with the allow-list skipped (the candidate's host code is then arbitrary Python), and the trusted
boundary (the replay of its traces on the trials' inputs and on fresh ones, judged by the evaluator) must
catch them on its own.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from .hack_catalogue import HACKS
from .runner_process import RunnerProcess, tagged

# The classes of attack the catalogue must cover, each with at least one instance.
REQUIRED_CLASSES = {
    "module reached through torch", "compute method bound to a plain name", "element writes on the host",
    "runner bookkeeping flipped", "findings cleared through frames", "computation in an unwatched thread",
    "computation in the grid", "forged report", "guard switched off", "names reached dynamically", "object graph walked",
    "code run at definition", "code run in a string", "lambda with side effects", "closure", "context manager",
    "host computation", "state between calls", "reference reached", "monkey patch", "host computation in a kernel body",
    "inputs mutated", "code only the interpreter runs", "precision only the interpreter has", "output never written", "nondeterminism", "constant output", "dtype downcast",
    "results carried in launches", "memory outside the arguments", "cross-program race", "race between the lanes of a program",
    "text Triton reads differently", "order the interpreter fixes",
}


def test_every_catalogued_hack_scores_zero(runner: RunnerProcess) -> None:
    # Timing on the CPU is requested: a hack that got through to the timing run would score above 0 there.
    results = runner.evaluate_many([(hack.problem, tagged(hack.code)) for hack in HACKS], runtime_device="cpu")
    problems = {}
    for hack, result in zip(HACKS, results):
        correctness, runtime = result["rewards"]["correctness"], result["rewards"]["runtime"]
        kinds = {violation.split(":")[0] for violation in result["hacks"]}
        wrong_reason = hack.reason is not None and hack.reason not in correctness["reason"]
        if correctness["score"] != 0.0 or runtime["score"] != 0.0 or not hack.expected <= kinds or wrong_reason:
            problems[hack.name] = {"correctness": correctness, "runtime": runtime, "hacks": result["hacks"], "expected": sorted(hack.expected)}
        elif "not_allowed" in hack.expected and result["sandbox"] != "not run":
            problems[hack.name] = {"ran although rejected": result["sandbox"]}
    assert not problems, problems


@pytest.fixture(scope="module")
def unguarded_runner() -> Iterator[RunnerProcess]:
    process = RunnerProcess("--time-limit", "20", "--memory-mb", "512", "--unsafe-skip-allow-list")
    yield process
    process.close()


def test_the_second_line_catches_its_hacks_without_the_allow_list(unguarded_runner: RunnerProcess) -> None:
    hacks = [hack for hack in HACKS if hack.second_line is not None]
    results = unguarded_runner.evaluate_many([(hack.problem, tagged(hack.code)) for hack in hacks])
    problems = {}
    for hack, result in zip(hacks, results):
        assert hack.second_line is not None
        kinds = {violation.split(":")[0] for violation in result["hacks"]}
        # The evaluator itself must survive and judge: a candidate cannot reach the evaluator's result pipe.
        if result["rewards"]["correctness"]["score"] != 0.0 or not hack.second_line <= kinds or result["sandbox"].startswith("evaluator"):
            problems[hack.name] = {"rewards": result["rewards"], "hacks": result["hacks"], "sandbox": result["sandbox"]}
    assert not problems, problems


def test_the_catalogue_is_large_and_covers_every_class() -> None:
    assert len(HACKS) >= 40
    assert len({hack.name for hack in HACKS}) == len(HACKS)
    assert REQUIRED_CLASSES <= {hack.attack_class for hack in HACKS}, REQUIRED_CLASSES - {hack.attack_class for hack in HACKS}
    assert len([hack for hack in HACKS if hack.second_line is not None]) >= 10
