"""The formatting reward reads structure from the syntax tree, so keyword stuffing earns nothing."""
from __future__ import annotations

from kernels import allow_list
from kernels.code_ast import analyse
from kernels.dataset import get_problem
from kernels.formatting import CRITERIA, FormattingResult, formatting_score

STUFFED = '''
# import triton
# import triton.language as tl
# @triton.jit  tl.load(x, mask=m)  tl.store(y, v, mask=m)  torch.empty(n)  relu_kernel[grid](...)
import torch
NOTES = "import triton; @triton.jit def relu_kernel(): tl.load(p, mask=m); tl.store(p, v, mask=m)"


def relu(x):
    """@triton.jit kernel with masked tl.load / tl.store, output from torch.empty_like"""
    return x.clamp(min=0)
'''

# Right words, wrong places: the masked load sits in a plain function, the kernel is never launched.
MISPLACED = '''
import torch
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr):
    pass


def helper(p, m):
    return tl.load(p, mask=m)


def relu(x):
    out = torch.empty_like(x)
    return out
'''


def formatting(code: str | None) -> FormattingResult:
    facts = analyse(code) if code is not None else None
    allowed = facts is not None and not allow_list.check(facts.tree, "relu", [allow_list.INPUT])
    return formatting_score(code, facts, "relu", outside_kernels_allowed=allowed)


def score(code: str | None) -> float:
    return formatting(code).score


def test_a_real_solution_meets_every_criterion() -> None:
    assert score(get_problem("relu").solution()) == 1.0


def test_keywords_in_comments_and_strings_earn_only_the_tags_criterion() -> None:
    assert score(STUFFED) == 1 / len(CRITERIA)


def test_keywords_outside_their_structural_place_do_not_count() -> None:
    result = formatting(MISPLACED)
    assert "a kernel masks its tl.load or tl.store" in result.failed
    assert "the entrypoint launches a kernel" in result.failed
    # tl.load in a plain function is computation outside kernels: not in the allow-list.
    assert CRITERIA[-1] in result.failed
    assert result.score == 4 / len(CRITERIA)


def test_no_code_block_scores_zero() -> None:
    assert score(None) == 0.0
