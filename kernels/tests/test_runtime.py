"""The runtime reward: the timing harness, the speedup-to-score mapping, and the reward end to end through the
runner (on the CPU: the Triton interpreter against torch, which tests the mechanism, not kernel speed)."""
from __future__ import annotations

import math
import re
import time
from typing import Callable, Iterator

import pytest
import torch

from kernels.dataset import ALL_PROBLEMS, get_problem
from kernels.runtime import Sample, TimedCase, speedup_score, wrong_timed_call
from kernels.timed_replay import SAMPLED_ENTRIES, sample_entries
from kernels.timing import CudaClock, WallClock, measure
from kernels.trace import TensorRef

from .runner_process import RunnerProcess, tagged
from .timing_attacks import HONEST as TIMING_HONEST
from .timing_attacks import READ_OUTSIDE_WHEN_TIMED, TIMING_ATTACKS, forgery, speedup_of

RELU = get_problem("relu").solution()
RELU_LAUNCH = "    relu_kernel[grid](x, out, n_elements, BLOCK_SIZE=1024)\n"
# Correct, but launches the same kernel five times over, writing the same output each time.
RELU_FIVE_TIMES = RELU.replace(RELU_LAUNCH, "    for _ in range(5):\n    " + RELU_LAUNCH)
# Computes relu only where its output buffer was NaN before the kernel ran (the tracing sandbox poisons
# uninitialised memory with NaN), and writes 0 elsewhere: right only on the memory the trace recorded.
RELU_ONLY_ON_POISON = RELU.replace(
    "tl.store(out_ptr + offsets, tl.maximum(x, 0.0), mask=mask)",
    "prior = tl.load(out_ptr + offsets, mask=mask)\n"
    "    tl.store(out_ptr + offsets, tl.where(prior != prior, tl.maximum(x, 0.0), 0.0), mask=mask)",
)
# Adds into a zeroed output: right once, twice the answer if a second call found the first one's output.
RELU_ACCUMULATING = RELU.replace("torch.empty_like(x)", "torch.zeros_like(x)").replace(
    "tl.store(out_ptr + offsets, tl.maximum(x, 0.0), mask=mask)",
    "tl.store(out_ptr + offsets, tl.load(out_ptr + offsets, mask=mask) + tl.maximum(x, 0.0), mask=mask)",
)


def test_the_wall_clock_times_sleeps_in_their_true_ratio() -> None:
    fast = measure(lambda: time.sleep(0.005), WallClock(), warmup=1, trials=7)
    slow = measure(lambda: time.sleep(0.025), WallClock(), warmup=1, trials=7)
    assert 0.005 <= fast.median_s < 0.008, fast
    assert 4.0 < slow.median_s / fast.median_s < 5.5, (fast, slow)


class ScriptedClock:
    """Reads the given durations in turn, so the harness's arithmetic can be checked exactly."""

    def __init__(self, durations: list[float]) -> None:
        self.durations = iter(durations)

    def seconds(self, call: Callable[[], object]) -> float:
        call()
        return next(self.durations)


def test_warmup_calls_run_but_are_not_timed_and_the_median_is_robust() -> None:
    calls = []
    timing = measure(lambda: calls.append(1), ScriptedClock([3.0, 1.0, 2.0, 100.0, 2.0]), warmup=3, trials=5)
    assert len(calls) == 8
    assert timing.median_s == 2.0 and timing.trials == 5
    assert timing.spread_s > 0.0
    with pytest.raises(ValueError):
        measure(lambda: None, WallClock(), warmup=0, trials=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_cuda_clock_times_host_waits_between_its_events() -> None:
    # The device is idle between the events, so they are as far apart as the host's wait.
    fast = measure(lambda: time.sleep(0.005), CudaClock(), warmup=1, trials=7)
    slow = measure(lambda: time.sleep(0.025), CudaClock(), warmup=1, trials=7)
    assert 4.0 < slow.median_s / fast.median_s < 5.5, (fast, slow)


def _elements(args: tuple[object, ...]) -> int:
    return sum(a.numel() for a in args if isinstance(a, torch.Tensor))


def test_on_a_gpu_each_problem_is_timed_on_its_benchmark_case_and_on_the_cpu_on_its_largest_trial() -> None:
    for problem in ALL_PROBLEMS.values():
        trials = [problem.inputs(trial, seed=3) for trial in range(4)]
        on_gpu = TimedCase.of(problem, trials, "cuda", seed=3).inputs
        benchmark = problem.benchmark_inputs(seed=3)
        assert len(on_gpu) == len(benchmark) and all(
            a.shape == b.shape and torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b for a, b in zip(on_gpu, benchmark)
        ), problem.name
        # At least a million elements and far beyond the interpreter's shapes, so launch overhead is not all
        # that is timed; sizes that are not powers of two, so the masked tails are timed too.
        assert _elements(on_gpu) >= max(2**20, 100 * max(_elements(t) for t in trials)), problem.name
        assert any(d & (d - 1) for d in problem.benchmark_shape), problem.name
        on_cpu = TimedCase.of(problem, trials, "cpu", seed=3)
        assert _elements(on_cpu.inputs) == max(_elements(t) for t in trials), problem.name
        (trial,) = [t for t, inputs in enumerate(trials) if inputs is on_cpu.inputs]
        assert on_cpu.shape == problem.shape_of(trial), problem.name


def test_the_score_is_half_at_parity_and_rises_with_the_speedup() -> None:
    assert speedup_score(1.0) == 0.5
    assert speedup_score(2.0) == pytest.approx(2 / 3)
    assert speedup_score(4.0) == pytest.approx(0.8)
    assert speedup_score(0.5) == pytest.approx(1 / 3)
    grid = [10.0 ** (k / 4) for k in range(-24, 25)]
    scores = [speedup_score(s) for s in grid]
    assert all(a < b for a, b in zip(scores, scores[1:]))
    for s in grid:
        assert speedup_score(s) + speedup_score(1 / s) == pytest.approx(1.0)


def test_the_score_stays_within_its_bounds() -> None:
    assert speedup_score(0.0) == 0.0
    assert speedup_score(math.inf) == 1.0
    assert 0.0 < speedup_score(1e-9) < 1e-8
    assert 1.0 - 1e-8 < speedup_score(1e9) <= 1.0
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError):
            speedup_score(bad)


def test_each_timed_call_reports_entries_of_its_output_at_positions_drawn_after_it() -> None:
    output = torch.arange(3000.0).reshape(60, 50).t()  # a strided view, as a trace's result can be
    first, second = sample_entries(output), sample_entries(output)
    for sample in (first, second):
        assert sample["positions"].numel() == SAMPLED_ENTRIES
        assert torch.equal(sample["values"], output.reshape(-1)[sample["positions"]])
    assert not torch.equal(first["positions"], second["positions"])
    # An output of no more entries than that is reported whole, a scalar (a loss) as one entry.
    assert torch.equal(sample_entries(torch.tensor(2.5))["values"], torch.tensor([2.5]))
    assert torch.equal(sample_entries(output[:10, :5])["values"], output[:10, :5].reshape(-1))
    # The entries are a copy: the next call writing the same output (a CPU scalar, whose index is a view) leaves them.
    loss = torch.tensor(2.5)
    sample = sample_entries(loss)
    loss.fill_(7.0)
    assert torch.equal(sample["values"], torch.tensor([2.5]))


def test_the_evaluator_checks_every_timed_calls_entries_against_the_reference_on_that_calls_inputs() -> None:
    problem = get_problem("relu")
    like = problem.inputs(1, seed=0)  # a flat case of an even number of elements
    shape = problem.shape_of(1)

    def reference_for(seed: int) -> torch.Tensor:
        return problem.reference(*problem.fresh_inputs(shape, like, seed))

    returned = TensorRef("buffer", 0, torch.float32, 0, tuple(like[0].shape), like[0].stride())

    def sample(seed: int, output: torch.Tensor | None = None) -> Sample:
        output = reference_for(seed) if output is None else output
        positions = torch.randint(output.numel(), (300,))
        return Sample(seed, positions, output.reshape(-1)[positions].clone())

    assert wrong_timed_call(problem, returned, reference_for, [sample(1), sample(2), sample(3)]) is None
    # Right for another call's inputs (a result kept from an earlier call and copied back): wrong for this one's.
    assert wrong_timed_call(problem, returned, reference_for, [sample(1), sample(2, reference_for(1))]) == "call 2 of 2 returned a wrong output"
    wrong = sample(4)
    wrong.values[7] += 1.0
    assert wrong_timed_call(problem, returned, reference_for, [wrong]) == "call 1 of 1 returned a wrong output"
    outside = sample(5)
    outside.positions[0] = like[0].numel()
    assert wrong_timed_call(problem, returned, reference_for, [outside]) == "call 1 of 1 reported positions outside its output"
    half = like[0].numel() // 2
    reshaped = TensorRef("buffer", 0, torch.float32, 0, (2, half), (half, 1))
    assert wrong_timed_call(problem, reshaped, reference_for, [sample(6)]) == (
        f"the call returns torch.float32 (2, {half}), the reference torch.float32 ({2 * half},)"
    )


def test_inputs_drawn_from_one_seed_are_the_same_in_every_process_and_differ_between_seeds() -> None:
    problem = get_problem("matmul")
    like, shape = problem.inputs(1, seed=0), problem.shape_of(1)
    first, again, other = (problem.fresh_inputs(shape, like, seed) for seed in (7, 7, 8))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not any(torch.equal(a, b) for a, b in zip(first, other))


def test_cpu_mode_scores_a_solution_and_scores_a_redundant_one_lower(runner: RunnerProcess) -> None:
    solution, redundant = runner.evaluate_many([("relu", tagged(RELU)), ("relu", tagged(RELU_FIVE_TIMES))], runtime_device="cpu")
    assert redundant["rewards"]["correctness"]["score"] == 1.0, redundant["rewards"]
    fast, slow = solution["rewards"]["runtime"], redundant["rewards"]["runtime"]
    for runtime in (fast, slow):
        assert re.match(r"speedup \S+x on cpu .*: reference \S+ \S+ \(IQR .*\), candidate .*medians of 10 trials", runtime["reason"]), runtime
    assert 0.0 < slow["score"] < fast["score"] < 1.0, (fast, slow)


def test_cpu_mode_times_a_solution_whose_output_is_a_scalar(runner: RunnerProcess) -> None:
    result = runner.evaluate("mse_loss", tagged(get_problem("mse_loss").solution()), runtime_device="cpu")
    assert result["rewards"]["correctness"]["score"] == 1.0, result["rewards"]
    assert result["rewards"]["runtime"]["score"] > 0.0, result["rewards"]["runtime"]


def test_incorrect_and_hacked_candidates_are_not_timed(runner: RunnerProcess) -> None:
    wrong = tagged(RELU.replace("tl.maximum(x, 0.0)", "tl.maximum(x, 1.0)"))
    hacked = tagged(RELU.replace("    return out\n", "    return torch.relu(x)\n"))
    wrong_result, hacked_result = runner.evaluate_many([("relu", wrong), ("relu", hacked)], runtime_device="cpu")
    assert wrong_result["rewards"]["runtime"] == {"score": 0.0, "reason": "not measured: only a candidate that passes every correctness trial is timed"}
    assert hacked_result["rewards"]["runtime"] == {"score": 0.0, "reason": "not measured: reward hacking was detected"}


def test_every_timed_call_starts_from_the_memory_the_trace_recorded(runner: RunnerProcess) -> None:
    # Both are right on every call only if each starts from the traced bytes (NaN, zeros), not from the last
    # call's output: the timed replay restores its memory before each call and checks each call's output.
    for result in runner.evaluate_many([("relu", tagged(RELU_ONLY_ON_POISON)), ("relu", tagged(RELU_ACCUMULATING))], runtime_device="cpu"):
        assert result["rewards"]["correctness"]["score"] == 1.0, result["rewards"]
        assert result["rewards"]["runtime"]["score"] > 0.0 and "speedup" in result["rewards"]["runtime"]["reason"], result["rewards"]


@pytest.fixture(scope="module")
def unguarded_runner() -> Iterator[RunnerProcess]:
    # One worker: the candidates are timed one at a time, so their speedups are comparable.
    process = RunnerProcess("--workers", "1", "--time-limit", "20", "--memory-mb", "512", "--unsafe-skip-allow-list")
    yield process
    process.close()


def test_the_speedup_cannot_be_forged_from_the_candidates_process(unguarded_runner: RunnerProcess) -> None:
    """With the candidate's host code unrestricted: rebound clocks, a slowed reference, forged reports and a
    cheaper call when timed neither raise the speedup nor get timed."""
    honest = speedup_of(unguarded_runner.evaluate("relu", tagged(TIMING_HONEST), runtime_device="cpu"))
    assert honest is not None and honest > 0.0
    problems = {}
    for attack in TIMING_ATTACKS:
        problem = forgery(attack, unguarded_runner.evaluate("relu", tagged(attack.code), runtime_device="cpu"), honest)
        if problem is not None:
            problems[attack.name] = problem
    assert not problems, problems


def test_the_interpreted_timing_run_refuses_reads_outside_the_arguments(unguarded_runner: RunnerProcess) -> None:
    """The kernel reads outside its tensors only on the timed call, so the replay of the trials passes it and the
    timing sandbox's own memory guard must stop it (there, the reference's output lies in the same process)."""
    result = unguarded_runner.evaluate("relu", tagged(READ_OUTSIDE_WHEN_TIMED.code), runtime_device="cpu")
    assert result["rewards"]["correctness"]["score"] == 1.0, result["rewards"]
    assert forgery(READ_OUTSIDE_WHEN_TIMED, result, honest_speedup=0.0) is None, result["rewards"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the default on a machine without a GPU")
def test_without_a_gpu_runtime_is_not_measured_unless_the_cpu_is_asked_for(runner: RunnerProcess) -> None:
    assert runner.hello["runtime_device"] is None
    default, cuda, off = (runner.evaluate("relu", tagged(RELU), **options) for options in ({}, {"runtime_device": "cuda"}, {"runtime_device": "off"}))
    for result in (default, cuda):
        assert result["rewards"]["runtime"]["score"] == 0.0
        assert "runtime needs a GPU" in result["rewards"]["runtime"]["reason"]
    assert off["rewards"]["runtime"] == {"score": 0.0, "reason": "not measured: runtime_device is 'off'"}
    assert default["rewards"]["correctness"]["score"] == 1.0


def test_an_unknown_runtime_device_is_refused(runner: RunnerProcess) -> None:
    runner.send({"type": "evaluate", "id": "bad-device", "problem": "relu", "completion": tagged(RELU), "runtime_device": "tpu"})
    reply = runner.read()
    assert reply["type"] == "error" and reply["id"] == "bad-device" and "runtime_device" in reply["error"], reply


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_a_solution_is_timed_there_by_default(runner: RunnerProcess) -> None:
    assert runner.hello["runtime_device"] == "cuda"
    runtime = runner.evaluate("relu", tagged(RELU))["rewards"]["runtime"]
    assert runtime["score"] > 0.0 and " on cuda: " in runtime["reason"], runtime
