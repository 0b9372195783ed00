"""Every problem's own Triton solution must score full marks: formatting, compilation and correctness."""
from __future__ import annotations

from kernels.dataset import ALL_PROBLEMS, problems
from kernels.export_prompts import DATA_DIR, rows_text

from .runner_process import RunnerProcess, scores, tagged


def test_the_dataset_has_the_required_size_and_shape_cases() -> None:
    assert len(problems("train")) >= 13
    assert len(problems("test")) >= 20
    for problem in ALL_PROBLEMS.values():
        assert len(problem.shapes) >= 4, problem.name
        assert any(any(d & (d - 1) for d in shape) for shape in problem.shapes), f"{problem.name}: no odd size"
        prompt = problem.prompt()
        assert f"must be named: {problem.name}\n" in prompt["user"] and "<torch_code>" in prompt["user"]


def test_every_reference_solution_scores_one(runner: RunnerProcess) -> None:
    names = sorted(ALL_PROBLEMS)
    results = runner.evaluate_many([(name, tagged(ALL_PROBLEMS[name].solution())) for name in names])
    failures = {
        name: result["rewards"]
        for name, result in zip(names, results)
        if {k: v for k, v in scores(result).items() if k != "runtime"} != {"formatting": 1.0, "compilation": 1.0, "correctness": 1.0}
        or result["hacks"]
    }
    assert not failures, failures


def test_the_committed_prompt_files_match_the_dataset() -> None:
    for split in ("train", "test"):
        assert (DATA_DIR / f"triton-{split}.jsonl").read_text() == rows_text(split), "run: python -m kernels.export_prompts"
