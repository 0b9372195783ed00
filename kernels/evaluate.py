"""Grades one completion for one problem: the trusted side of the evaluation.

Formatting and the grammar allow-list (`allow_list.py`) read the syntax tree here; a candidate outside the
allow-list is rejected before any of it runs. Otherwise it runs in a sandboxed child (`candidate.py`), whose
report arrives over a pipe opened here before the fork, and is judged here against the reference, which runs
in this process only after the candidate's child is gone, on its own copy of the inputs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from . import allow_list
from .candidate import run_candidate, run_sandboxed
from .code_ast import ModuleFacts, analyse
from .dataset import get_problem
from .dataset.problem import Args, Problem
from .extract import extract_triton_code
from .formatting import formatting_score
from .reward import Reward
from .runtime import runtime_reward
from .sandbox import Limits, Outcome
from .violation import Violation

REWARD_NAMES = ("formatting", "compilation", "correctness", "runtime")


@dataclass(frozen=True)
class Settings:
    trials: int = 4
    seed: int = 0
    limits: Limits = Limits(time_s=60.0, memory_mb=2048)
    temp_root: str | None = None
    # Where the runtime reward is measured when a request names no device: "cuda" where the runner has a
    # usable GPU, None (not measured) otherwise.
    runtime_device: str | None = None
    # Off only to test the sandbox and the runtime checks on their own (the second line of defence).
    allow_list: bool = True


def evaluate(
    problem_name: str, completion: str, settings: Settings, seed: int | None = None, runtime_device: str | None = None
) -> dict[str, Any]:
    """`runtime_device` ("cuda", "cpu" or "off") overrides the settings' default for this request."""
    started = time.monotonic()
    problem = get_problem(problem_name)
    code = extract_triton_code(completion)
    facts, parse_error = _parse(code)
    seed = settings.seed if seed is None else seed
    inputs = [problem.inputs(trial, seed) for trial in range(settings.trials)]
    hacks: list[Violation] = []
    if facts is not None:
        try:
            hacks = allow_list.check(facts.tree, problem.name, allow_list.argument_kinds(inputs[0]))
        except (RecursionError, MemoryError) as error:  # pathological nesting: fail closed
            hacks = [Violation("not_allowed", f"the code could not be checked: {type(error).__name__}")]
    formatting = formatting_score(code, facts, problem.name, outside_kernels_allowed=not hacks)
    rewards = {"formatting": Reward(formatting.score, formatting.reason())}
    sandbox = "not run"
    if code is None or facts is None:
        why = "no <triton_code> block" if code is None else f"does not parse: {parse_error}"
        rewards |= {"compilation": Reward(0.0, why), "correctness": Reward(0.0, why)}
    elif hacks and settings.allow_list:
        why = "not run: the code outside kernels leaves the allow-list"
        rewards |= {"compilation": Reward(0.0, why), "correctness": Reward(0.0, "rejected before running: " + "; ".join(map(str, hacks)))}
    else:
        report, outcome = run_sandboxed(
            lambda workdir, send: run_candidate(code, problem.name, inputs, workdir, send), settings.limits, settings.temp_root
        )
        sandbox = f"{outcome.status}: {outcome.detail}"
        compilation = _score_compilation(report, outcome)
        hacks = _runtime_violations(problem, inputs, report)  # allow-list findings, if any, are off by request
        rewards |= {"compilation": compilation, "correctness": _score_correctness(problem, inputs, report, outcome, hacks, compilation)}
    device = runtime_device or settings.runtime_device
    if device == "cuda" and settings.runtime_device != "cuda":
        device = None  # asked for a GPU the runner does not have
    rewards["runtime"] = runtime_reward(problem, code, inputs, rewards["correctness"], hacks, device, seed, settings.limits, settings.temp_root)
    return {
        "problem": problem.name,
        "rewards": {name: rewards[name].as_json() for name in REWARD_NAMES},
        "hacks": [str(v) for v in hacks],
        "sandbox": sandbox,
        "seconds": round(time.monotonic() - started, 3),
    }


def _parse(code: str | None) -> tuple[ModuleFacts | None, str]:
    if code is None:
        return None, ""
    try:
        return analyse(code), ""
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        return None, f"{type(error).__name__}: {error}"


def _failure(outcome: Outcome) -> str:
    tail = outcome.log_tail.strip().splitlines()[-3:]
    return outcome.detail + (f" ({' | '.join(tail)})" if tail else "")


def _score_compilation(report: dict[str, Any] | None, outcome: Outcome) -> Reward:
    if report is None or not report["imported"]:
        error = report and report["error"]
        return Reward(0.0, f"module does not import: {error or _failure(outcome)}")
    kernels = report["kernels"]
    if not kernels:
        trials = report["trials"]
        why = trials[0]["error"] if trials and trials[0]["error"] else "no kernel was launched"
        return Reward(0.5, f"module imports, nothing to compile: {why}")
    compiled = [k for k in kernels if k["compiled"]]
    failed = "; ".join(f"{k['name']}: {k['error']}" for k in kernels if not k["compiled"])
    score = 0.5 + 0.5 * len(compiled) / len(kernels)
    return Reward(score, "module imports and every launched kernel compiles for sm_90" if not failed else f"compile errors: {failed}")


def _runtime_violations(problem: Problem, inputs: list[Args], report: dict[str, Any] | None) -> list[Violation]:
    """Hacks visible only by running: judged on the candidate's reported behaviour against trusted data."""
    if report is None:
        return []
    found: set[Violation] = set()
    for trial, args in zip(report["trials"], inputs):
        if trial["error"] is not None:
            continue
        if trial["launches"] == 0:
            found.add(Violation("no_launch", "the entrypoint returned without launching a kernel"))
        if trial["torch_ops"]:
            found.add(Violation("torch_at_runtime", "the wrapper ran torch ops " + ", ".join(sorted(trial["torch_ops"]))))
        originals = [a for a in args if isinstance(a, torch.Tensor)]
        if any(not torch.equal(before, after) for before, after in zip(originals, trial["inputs_after"])):
            found.add(Violation("inputs_mutated", "the entrypoint modified its inputs in place"))
        again = trial["again"]
        if again is None or again.shape != trial["output"].shape or not torch.equal(again.nan_to_num(), trial["output"].nan_to_num()):
            found.add(Violation("nondeterministic", "two calls on the same inputs returned different outputs"))
        expected = problem.reference(*_clone(args))
        if trial["output"].dtype != expected.dtype:
            found.add(Violation("dtype_mismatch", f"returned {trial['output'].dtype}, the reference returns {expected.dtype}"))
        if trial["noop"] is not None and problem.matches(trial["noop"], expected):
            found.add(Violation("noop_same_output", "the output is right even when every kernel is replaced by a no-op"))
        effect = trial["kernel_effect"]
        if effect is None:
            found.add(Violation("kernel_effects", "no kernel wrote the memory of the returned tensor"))
        elif effect.shape != trial["output"].shape or not torch.equal(effect.nan_to_num(), trial["output"].nan_to_num()):
            found.add(Violation("kernel_effects", "the returned tensor differs from what the kernels left in it (host work)"))
    return sorted(found, key=str)


def _score_correctness(
    problem: Problem,
    inputs: list[Args],
    report: dict[str, Any] | None,
    outcome: Outcome,
    hacks: list[Violation],
    compilation: Reward,
) -> Reward:
    if hacks:
        return Reward(0.0, "reward hacking: " + "; ".join(map(str, hacks)))
    if report is None or not report["imported"]:
        return Reward(0.0, "module does not import")
    if not report["finished"] or outcome.status != "ok":
        # A report is only taken whole, from a sandbox that ran every phase and exited cleanly.
        return Reward(0.0, f"the sandbox did not finish its checks: {_failure(outcome)}")
    if report["kernels"] and compilation.score < 1.0:
        return Reward(0.0, "a launched kernel does not compile for the GPU target")
    passed, reasons = 0, []
    for index, args in enumerate(inputs):
        trials = report["trials"]
        if index >= len(trials):
            reasons.append(f"trial {index}: {_failure(outcome)}")
            continue
        verdict = _judge_trial(problem, args, trials[index])
        passed += verdict is None
        if verdict:
            reasons.append(f"trial {index}: {verdict}")
    summary = f"{passed}/{len(inputs)} trials match the reference"
    return Reward(passed / len(inputs), summary + ("; " + "; ".join(reasons) if reasons else ""))


def _judge_trial(problem: Problem, args: Args, trial: dict[str, Any]) -> str | None:
    """None when the trial's output matches the reference, otherwise why it does not."""
    if trial["error"] is not None:
        return trial["error"].splitlines()[-1]
    output = trial["output"]
    expected = problem.reference(*_clone(args))
    if output.shape != expected.shape:
        return f"shape {tuple(output.shape)}, expected {tuple(expected.shape)}"
    unwritten = int((output.isnan() & ~expected.isnan()).sum()) if output.is_floating_point() else 0
    if unwritten:
        return f"{unwritten} of {output.numel()} outputs are NaN: memory the kernel never wrote"
    if not problem.matches(output, expected):
        worst = (output.double() - expected.double()).abs().nan_to_num(float("inf")).max().item()
        return f"max abs error {worst:.3g} exceeds tolerance {problem.tolerance_for(expected.dtype):g}"
    return None


def _clone(args: Args) -> Args:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
