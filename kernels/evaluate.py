"""Grades one completion for one problem: the trusted side of the evaluation.

Formatting and the grammar allow-list (`allow_list/`) read the syntax tree here; a candidate outside the
allow-list is rejected before any of it runs. Otherwise its host code runs in a tracing sandbox
(`candidate.py`) that only records what each call launched (`trace.py`); once that sandbox is gone, fresh
inputs are drawn here, and a replay sandbox that runs none of the candidate's host code (`replay.py`) runs
the recorded launches on the trials' inputs and on the fresh ones. Everything is judged here against the
reference, which runs only in this process, on its own copies of the inputs. The call the runtime reward times
is traced with the trials, and its replay is what gets timed (`runtime.py`).
"""
from __future__ import annotations

import ast
import time
from dataclasses import dataclass
from typing import Any

import torch

from . import allow_list
from .candidate import run_sandboxed, trace_candidate
from .code_ast import ModuleFacts, analyse, reread_differences
from .dataset import get_problem
from .dataset.problem import Args, Problem
from .extract import extract_triton_code
from .formatting import formatting_score
from .kernel_module import kernel_module
from .replay import replay_candidate
from .reward import Reward
from .runtime import PLANS, TimedCase, runtime_reward
from .sandbox import Limits, Outcome
from .trace import MalformedTrace, TracedCall, copy_args, materialize, parse_trial
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
    # Text Triton would read as another program than the checked tree: refused even with the allow-list skipped.
    misread: list[Violation] = []
    if facts is not None:
        misread = [Violation("source_mismatch", why) for why in reread_differences(code, facts.tree)]
        try:
            hacks = allow_list.check(facts.tree, problem.name, allow_list.argument_kinds(inputs[0]))
        except (RecursionError, MemoryError) as error:  # pathological nesting: fail closed
            hacks = [Violation("not_allowed", f"the code could not be checked: {type(error).__name__}")]
        hacks = misread + hacks
    formatting = formatting_score(code, facts, problem.name, outside_kernels_allowed=not hacks)
    rewards = {"formatting": Reward(formatting.score, formatting.reason())}
    device = runtime_device or settings.runtime_device
    if device == "cuda" and settings.runtime_device != "cuda":
        device = None  # asked for a GPU the runner does not have
    # The call the runtime reward times is traced with the trials, so nothing of the candidate runs later.
    timed = TimedCase.of(problem, inputs, device, seed) if device in PLANS else None
    sandbox, timed_call = "not run", None
    if code is None or facts is None:
        why = "no <triton_code> block" if code is None else f"does not parse: {parse_error}"
        rewards |= {"compilation": Reward(0.0, why), "correctness": Reward(0.0, why)}
    elif misread or (hacks and settings.allow_list):
        why = "not run: " + ("Triton would read other code than was checked" if misread else "the code outside kernels leaves the allow-list")
        rewards |= {"compilation": Reward(0.0, why), "correctness": Reward(0.0, "rejected before running: " + "; ".join(map(str, hacks)))}
    else:
        compilation, correctness, hacks, sandbox, timed_call = _run_and_judge(problem, code, facts.tree, inputs, timed, settings)
        rewards |= {"compilation": compilation, "correctness": correctness}
    rewards["runtime"] = runtime_reward(
        problem, code, facts.tree if facts is not None else None, timed, timed_call, rewards["correctness"], hacks, device,
        settings.limits, settings.temp_root,
    )
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


@dataclass(frozen=True)
class ReplayedTrial:
    """One trial's replay: the returned view after running the trace on the trial's inputs, again, again with the
    grid's programs and each atomic's lanes in a random other order, and on fresh inputs; the inputs after the first run."""

    output: torch.Tensor
    again: torch.Tensor
    reordered: torch.Tensor
    fresh: torch.Tensor
    inputs_after: list[torch.Tensor]


def _run_and_judge(
    problem: Problem, code: str, tree: ast.Module, inputs: list[Args], timed: TimedCase | None, settings: Settings
) -> tuple[Reward, Reward, list[Violation], str, TracedCall | None]:
    """Trace, replay and judge: (compilation, correctness, hacks, how the sandboxes ended, the timed call's trace)."""
    calls = inputs + ([timed.inputs] if timed is not None else [])
    traced, tracing = run_sandboxed(
        lambda workdir, send: trace_candidate(code, problem.name, calls, workdir, send), settings.limits, settings.temp_root
    )
    sandbox = f"{tracing.status}: {tracing.detail}"
    if not isinstance(traced, dict) or traced.get("imported") is not True:
        error = traced.get("error") if isinstance(traced, dict) else None
        why = f"module does not import: {error or _failure(tracing)}"
        return Reward(0.0, why), Reward(0.0, "module does not import"), [], sandbox, None
    trials = _traced_calls(traced, calls)
    timed_call = trials.pop() if timed is not None else None
    if timed_call is not None:
        # Only kernels the trials launched were compiled for the GPU target and checked on their outputs.
        unchecked = sorted(timed_call.kernels().difference(*(trial.kernels() for trial in trials)))
        if unchecked:
            timed_call = TracedCall(f"it launches kernels no trial launched: {', '.join(unchecked)}", None, timed_call.torch_ops)
    # Drawn only now, when the tracing sandbox is gone: nothing it read or computed could know them.
    fresh = [problem.fresh_inputs(problem.shape_of(trial), args) for trial, args in enumerate(inputs)]
    traces = [trial.trace for trial in trials]
    replay: dict[str, Any] | None = None
    replay_outcome = Outcome("ok", "nothing to replay", "")
    if any(trace is not None and trace.launches for trace in traces):
        kernels = kernel_module(tree)
        replay, replay_outcome = run_sandboxed(
            lambda workdir, send: replay_candidate(kernels, code, traces, inputs, fresh, workdir, send), settings.limits, settings.temp_root
        )
        sandbox += f"; replay {replay_outcome.status}: {replay_outcome.detail}"
    replayed = _replayed_trials(replay, len(inputs))
    compilation = _score_compilation(trials, replay, replay_outcome)
    hacks = _violations(problem, inputs, fresh, trials, replayed, timed_call)
    unfinished = None  # reports are only taken whole, from sandboxes that ran every phase and exited cleanly
    if traced.get("finished") is not True or tracing.status != "ok":
        unfinished = f"the tracing sandbox did not finish: {_failure(tracing)}"
    elif (replay is not None and replay.get("finished") is not True) or replay_outcome.status != "ok":
        unfinished = f"the replay did not finish: {_failure(replay_outcome)}"
    correctness = _score_correctness(problem, inputs, trials, replayed, unfinished, hacks, compilation)
    return compilation, correctness, hacks, sandbox, timed_call


def _traced_calls(traced: dict[str, Any], inputs: list[Args]) -> list[TracedCall]:
    raw_trials = traced.get("trials")
    raw_trials = list(raw_trials) if isinstance(raw_trials, list) else []
    trials = []
    for index, args in enumerate(inputs):
        raw = raw_trials[index] if index < len(raw_trials) else None
        if not isinstance(raw, dict):
            trials.append(TracedCall("the tracing sandbox did not report this call", None, ()))
            continue
        ops = raw.get("torch_ops")
        torch_ops = tuple(str(op) for op in ops) if isinstance(ops, list) else ()
        if raw.get("error") is not None:
            trials.append(TracedCall(str(raw["error"]), None, torch_ops))
            continue
        try:
            trials.append(TracedCall(None, parse_trial(raw.get("trace"), args), torch_ops))
        except MalformedTrace as error:
            trials.append(TracedCall(f"malformed trace: {error}", None, torch_ops))
    return trials


def _replayed_trials(replay: dict[str, Any] | None, count: int) -> list[ReplayedTrial | str | None]:
    """Per trial: its replay, the error it raised, or None when it was not replayed (or the report is malformed)."""
    raw_trials = replay.get("trials") if isinstance(replay, dict) else None
    raw_trials = list(raw_trials) if isinstance(raw_trials, list) else []
    replayed: list[ReplayedTrial | str | None] = []
    for index in range(count):
        raw = raw_trials[index] if index < len(raw_trials) else None
        if isinstance(raw, dict) and isinstance(raw.get("error"), str):
            replayed.append(raw["error"])
        elif (isinstance(raw, dict) and all(isinstance(raw.get(key), torch.Tensor) for key in ("output", "again", "reordered", "fresh"))
              and isinstance(raw.get("inputs_after"), list) and all(isinstance(t, torch.Tensor) for t in raw["inputs_after"])):
            replayed.append(ReplayedTrial(raw["output"], raw["again"], raw["reordered"], raw["fresh"], raw["inputs_after"]))
        else:
            replayed.append(None)
    return replayed


def _failure(outcome: Outcome) -> str:
    tail = outcome.log_tail.strip().splitlines()[-3:]
    return outcome.detail + (f" ({' | '.join(tail)})" if tail else "")


def _score_compilation(trials: list[TracedCall], replay: dict[str, Any] | None, outcome: Outcome) -> Reward:
    if not any(trial.trace is not None and trial.trace.launches for trial in trials):
        error = next((trial.error for trial in trials if trial.error is not None), None)
        return Reward(0.5, f"module imports, nothing to compile: {error or 'no kernel was launched'}")
    kernels = replay.get("kernels") if isinstance(replay, dict) else None
    if not isinstance(kernels, list) or not kernels or not all(isinstance(k, dict) for k in kernels):
        return Reward(0.5, f"module imports; the replay stopped before compiling: {_failure(outcome)}")
    compiled = [k for k in kernels if k.get("compiled") is True]
    failed = "; ".join(f"{k.get('name')}: {k.get('error')}" for k in kernels if k.get("compiled") is not True)
    score = 0.5 + 0.5 * len(compiled) / len(kernels)
    return Reward(score, "module imports and every launched kernel compiles for sm_90" if not failed else f"compile errors: {failed}")


def _violations(
    problem: Problem, inputs: list[Args], fresh: list[Args], trials: list[TracedCall], replayed: list[ReplayedTrial | str | None],
    timed_call: TracedCall | None,
) -> list[Violation]:
    """Hacks visible only by running, judged on the traces and their replays against trusted data (the timed
    call's trace is judged on its shape here, on its values when it is timed)."""
    found: set[Violation] = set()
    for call in [*trials, *([timed_call] if timed_call is not None else [])]:
        _add_trace_violations(call, found)
    for trial, replay, args, fresh_args in zip(trials, replayed, inputs, fresh):
        trace = trial.trace
        if trace is None:
            continue
        expected = problem.reference(*copy_args(args))
        before_kernels = materialize(trace.result, copy_args(args), [buffer.clone() for buffer in trace.buffers])
        if problem.matches(before_kernels, expected):
            found.add(Violation("noop_same_output", "the returned memory holds the right output before any kernel runs"))
        if not isinstance(replay, ReplayedTrial):
            continue
        if replay.output.dtype != expected.dtype:
            found.add(Violation("dtype_mismatch", f"returned {replay.output.dtype}, the reference returns {expected.dtype}"))
        originals = [a for a in args if isinstance(a, torch.Tensor)]
        if len(originals) != len(replay.inputs_after) or any(not _same(before, after) for before, after in zip(originals, replay.inputs_after)):
            found.add(Violation("inputs_mutated", "the kernels modified the entrypoint's inputs"))
        if not _same(replay.again, replay.output):
            found.add(Violation("nondeterministic", "two runs on the same inputs returned different outputs"))
        if problem.matches(replay.output, expected) and not problem.matches(replay.reordered, expected):
            found.add(Violation("order_dependent", "right with the programs and each atomic's lanes run first to last, "
                                                   "wrong with them run in a random other order, which a GPU may equally take"))
        if problem.matches(replay.output, expected) and not problem.matches(replay.fresh, problem.reference(*copy_args(fresh_args))):
            found.add(Violation("host_data", "right on the trial's inputs, wrong on fresh inputs the host code never saw: "
                                             "the launches carry results computed on the host"))
    return sorted(found, key=str)


def _add_trace_violations(call: TracedCall, found: set[Violation]) -> None:
    if call.torch_ops:
        found.add(Violation("torch_at_runtime", "the wrapper ran torch ops " + ", ".join(sorted(call.torch_ops))))
    trace = call.trace
    if trace is None:
        return
    if not trace.launches:
        found.add(Violation("no_launch", "the entrypoint returned without launching a kernel"))
    if not any(trace.result.memory in launch.memories() for launch in trace.launches):
        found.add(Violation("kernel_effects", "no kernel had the memory of the returned tensor as an argument"))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.nan_to_num(), b.nan_to_num())


def _score_correctness(
    problem: Problem,
    inputs: list[Args],
    trials: list[TracedCall],
    replayed: list[ReplayedTrial | str | None],
    unfinished: str | None,
    hacks: list[Violation],
    compilation: Reward,
) -> Reward:
    if hacks:
        return Reward(0.0, "reward hacking: " + "; ".join(map(str, hacks)))
    if unfinished is not None:
        return Reward(0.0, unfinished)
    if compilation.score < 1.0 and any(trial.trace is not None and trial.trace.launches for trial in trials):
        return Reward(0.0, "a launched kernel does not compile for the GPU target")
    passed, reasons = 0, []
    for index, (args, trial, replay_trial) in enumerate(zip(inputs, trials, replayed)):
        verdict = _judge_trial(problem, args, trial, replay_trial)
        passed += verdict is None
        if verdict:
            reasons.append(f"trial {index}: {verdict}")
    summary = f"{passed}/{len(inputs)} trials match the reference"
    return Reward(passed / len(inputs), summary + ("; " + "; ".join(reasons) if reasons else ""))


def _judge_trial(problem: Problem, args: Args, trial: TracedCall, replay: ReplayedTrial | str | None) -> str | None:
    """None when the trial's replayed output matches the reference, otherwise why it does not."""
    if trial.error is not None:
        return trial.error.splitlines()[-1]
    if replay is None:
        return "the replay did not report this trial"
    if isinstance(replay, str):
        return replay.splitlines()[-1]
    output = replay.output
    expected = problem.reference(*copy_args(args))
    if output.shape != expected.shape:
        return f"shape {tuple(output.shape)}, expected {tuple(expected.shape)}"
    unwritten = int((output.isnan() & ~expected.isnan()).sum()) if output.is_floating_point() else 0
    if unwritten:
        return f"{unwritten} of {output.numel()} outputs are NaN: memory the kernel never wrote"
    if not problem.matches(output, expected):
        worst = (output.double() - expected.double()).abs().nan_to_num(float("inf")).max().item()
        return f"max abs error {worst:.3g} exceeds tolerance {problem.tolerance_for(expected.dtype):g}"
    return None
