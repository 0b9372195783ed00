"""Inputs that are not contiguous (a transposed one, a column slice with a storage offset): traces keep their
layout, host copies of them are replayed from the inputs a trace runs on, and host computation is still caught.
The problem exists for these tests only (`strided_problem.py`), graded through `evaluate` in this process."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import torch

from kernels.dataset import ALL_PROBLEMS
from kernels.evaluate import Settings, evaluate
from kernels.sandbox import Limits
from kernels.trace import copy_args, layout

from .runner_process import tagged
from .strided_problem import CONTIGUOUS_COPIES, HOST_ADD_INTO_SCRATCH, HOST_ADD_INTO_THE_COPY, STRIDED_ADD, THROUGH_STRIDES

LIMITS = Limits(time_s=60.0, memory_mb=512)


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    ALL_PROBLEMS[STRIDED_ADD.name] = STRIDED_ADD
    yield
    del ALL_PROBLEMS[STRIDED_ADD.name]


def _grade(code: str, allow_list: bool = True, runtime_device: str = "off") -> dict[str, Any]:
    return evaluate(STRIDED_ADD.name, tagged(code), Settings(limits=LIMITS, allow_list=allow_list), runtime_device=runtime_device)


def test_the_inputs_are_strided_and_keep_their_layout_when_copied_and_drawn_again() -> None:
    x, y = STRIDED_ADD.inputs(1, seed=0)
    assert not x.is_contiguous() and not y.is_contiguous() and y.storage_offset() == 2
    assert y.clone().stride() != y.stride(), "clone() would lose the layout the trace's views refer to"
    for original, copy in zip((x, y), copy_args((x, y))):
        assert layout(copy) == layout(original) and torch.equal(copy, original)
        assert copy.untyped_storage().data_ptr() != original.untyped_storage().data_ptr()
    fresh = STRIDED_ADD.fresh_inputs(STRIDED_ADD.shape_of(1), (x, y))
    assert [layout(t) for t in fresh] == [layout(x), layout(y)]
    assert not torch.equal(fresh[0], x)


@pytest.mark.parametrize("code", [THROUGH_STRIDES, CONTIGUOUS_COPIES], ids=["through strides", "contiguous copies"])
def test_honest_solutions_pass_and_are_timed(code: str) -> None:
    result = _grade(code, runtime_device="cpu")
    scores = {name: reward["score"] for name, reward in result["rewards"].items()}
    assert {k: scores[k] for k in ("formatting", "compilation", "correctness")} == {"formatting": 1.0, "compilation": 1.0, "correctness": 1.0}, result
    assert result["hacks"] == []
    assert 0.0 < scores["runtime"] < 1.0 and "speedup" in result["rewards"]["runtime"]["reason"], result["rewards"]["runtime"]


@pytest.mark.parametrize(("code", "caught_as"), [
    # The copies are redone from the inputs in the replay; numpy's work on one of them is not: wrong numbers.
    (HOST_ADD_INTO_THE_COPY, "max abs error"),
    # A scratch buffer the host filled keeps the trial's values in the trace: wrong on the fresh inputs.
    (HOST_ADD_INTO_SCRATCH, "host_data"),
], ids=["numpy into the copy", "numpy into a scratch buffer"])
def test_host_computation_is_caught_without_the_allow_list_and_rejected_with_it(code: str, caught_as: str) -> None:
    unguarded = _grade(code, allow_list=False)
    assert unguarded["rewards"]["correctness"]["score"] == 0.0 and caught_as in unguarded["rewards"]["correctness"]["reason"], unguarded
    guarded = _grade(code)
    assert guarded["sandbox"] == "not run" and guarded["hacks"][0].startswith("not_allowed"), guarded
