"""Broken code earns partial credit in the component it gets right, and none in the ones it gets wrong."""
from __future__ import annotations

from kernels.dataset import get_problem

from .runner_process import RunnerProcess, scores, tagged

RELU = get_problem("relu").solution()

CASES = {
    # name: (completion, expected scores except runtime)
    "no_tags": (RELU, {"formatting": 0.0, "compilation": 0.0, "correctness": 0.0}),
    "syntax_error": (tagged(RELU.replace("def relu(x", "def relu(x,,")), {"formatting": 1 / 7, "compilation": 0.0, "correctness": 0.0}),
    "kernel_does_not_compile": (
        tagged(RELU.replace("tl.maximum(x, 0.0)", "tl.no_such_function(x)")),
        {"formatting": 1.0, "compilation": 0.5, "correctness": 0.0},
    ),
    "wrong_math": (tagged(RELU.replace("tl.maximum(x, 0.0)", "tl.maximum(x, 1.0)")), {"formatting": 1.0, "compilation": 1.0, "correctness": 0.0}),
    # Only the first dimension is processed: the two 1-D trials pass, the 2-D and 3-D ones do not.
    "one_dimensional_only": (tagged(RELU.replace("n_elements = x.numel()", "n_elements = x.shape[0]")), {"formatting": 1.0, "compilation": 1.0, "correctness": 0.5}),
    "wrong_entrypoint_name": (tagged(RELU.replace("def relu(", "def my_relu(")), {"formatting": 5 / 7, "compilation": 0.5, "correctness": 0.0}),
}


def test_partial_credit_lands_in_the_right_component(runner: RunnerProcess) -> None:
    names = list(CASES)
    results = runner.evaluate_many([("relu", CASES[name][0]) for name in names])
    mismatches = {}
    for name, result in zip(names, results):
        got = {key: round(value, 4) for key, value in scores(result).items() if key != "runtime"}
        want = {key: round(value, 4) for key, value in CASES[name][1].items()}
        if got != want:
            mismatches[name] = {"got": got, "want": want, "rewards": result["rewards"]}
    assert not mismatches, mismatches
