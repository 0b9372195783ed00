"""The formatting reward: fractional credit per structural criterion, judged on the syntax tree."""
from __future__ import annotations

from dataclasses import dataclass

from .allow_list.vocabulary import ALLOCATORS
from .code_ast import ModuleFacts, keyword_or_position, launched_kernels


@dataclass(frozen=True)
class FormattingResult:
    score: float
    passed: list[str]
    failed: list[str]

    def reason(self) -> str:
        return "; ".join([*(f"ok: {c}" for c in self.passed), *(f"missing: {c}" for c in self.failed)])


CRITERIA = [
    "code inside <triton_code> tags",
    "imports triton and triton.language",
    "a @triton.jit kernel",
    "a kernel masks its tl.load or tl.store",
    "the entrypoint launches a kernel",
    "the entrypoint allocates its output (torch.empty/zeros/full)",
    "no computation outside kernels (the code around them is within the allow-list)",
]


def formatting_score(code: str | None, facts: ModuleFacts | None, entrypoint: str, outside_kernels_allowed: bool) -> FormattingResult:
    if code is None:
        return FormattingResult(0.0, [], ["code inside <triton_code> tags"])
    checks = [True]
    if facts is not None:
        kernels = facts.kernels
        entry = facts.wrappers.get(entrypoint)
        checks += [
            {"triton", "triton.language"} <= set(facts.aliases.values()),
            bool(kernels),
            _masked(facts, "triton.language.load", 1) or _masked(facts, "triton.language.store", 2),
            entry is not None and bool(launched_kernels(entry, set(kernels))),
            entry is not None and any(name in ALLOCATORS for name, _ in entry.calls),
            bool(kernels) and outside_kernels_allowed,
        ]
    else:
        checks += [False] * (len(CRITERIA) - 1)
    passed = [c for c, ok in zip(CRITERIA, checks) if ok]
    failed = [c for c, ok in zip(CRITERIA, checks) if not ok]
    return FormattingResult(len(passed) / len(CRITERIA), passed, failed)


def _masked(facts: ModuleFacts, function: str, mask_position: int) -> bool:
    """Some call to `function` inside a kernel passes a mask (keyword or positional)."""
    return any(
        name == function and keyword_or_position(call, "mask", mask_position) is not None
        for kernel in facts.kernels.values()
        for name, call in kernel.calls
    )
