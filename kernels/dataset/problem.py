"""One kernel-writing problem: a PyTorch reference, its inputs, tolerances and the prompt built from it."""
from __future__ import annotations

import inspect
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..trace import layout

# KernelBench's tolerances: fp32 results must agree to 1e-4, half-precision ones to 1e-2.
DEFAULT_TOLERANCES: dict[torch.dtype, float] = {
    torch.float32: 1e-4,
    torch.float16: 1e-2,
    torch.bfloat16: 1e-2,
}

SOLUTIONS_DIR = Path(__file__).parent / "solutions"

SYSTEM_PROMPT = "You are a helpful assistant that converts PyTorch code into Triton kernels."

# Follows the structure of Predibase's PyTorch-to-Triton case study: the torch code in <torch_code> tags,
# a checklist, the required names, and the answer in <triton_code> tags.
USER_PROMPT_TEMPLATE = """Convert this PyTorch module implementation into an equivalent Triton kernel:

<torch_code>
{torch_code}
</torch_code>

The Triton kernel should:
1. Import torch, triton, and triton.language as tl
2. Use the @triton.jit decorator on the kernel implementation (not on the entrypoint function)
3. Choose proper grid and block sizes
4. Use a mask in the load/store operations
5. Use typed constants (tl.constexpr) for block sizes
6. Handle tensor dimensions correctly, including sizes that are not powers of two
7. Return an output matching PyTorch's implementation (same shape and dtype)
8. Contain no test code, only the Triton kernel implementation and the entrypoint function

The entrypoint function must be named: {name}
It takes the same arguments as the PyTorch function and returns the result.
The Triton kernel implementation (called by the entrypoint) must be named: {name}_kernel

No computation logic should be done within the entrypoint function: it only allocates the output and
launches the kernel. All computation logic should be done within the Triton kernel implementation.

The final generated code in the response must start with <triton_code> and end with </triton_code> tags."""

Args = tuple[Any, ...]
InputMaker = Callable[[tuple[int, ...], torch.Generator], Args]


@dataclass(frozen=True)
class Problem:
    """A PyTorch function to port to Triton.

    `reference` is shown to the model verbatim (its source) and is the ground truth; `make_inputs` builds the
    positional arguments for one shape case from a seeded generator, so every process that regenerates them
    with the same seed gets the same tensors.
    """

    reference: Callable[..., torch.Tensor]
    make_inputs: InputMaker
    shapes: Sequence[tuple[int, ...]]
    split: str
    category: str
    # The case the runtime reward times on a GPU: large enough that a kernel's time is not just launch
    # overhead. Correctness keeps the small, awkward `shapes` (the interpreter runs them).
    benchmark_shape: tuple[int, ...]
    tolerance: float | None = None

    @property
    def name(self) -> str:
        return self.reference.__name__

    def inputs(self, trial: int, seed: int) -> Args:
        """Arguments for one correctness trial: shape cases cycle, every trial gets its own seed."""
        return self.inputs_from(trial, torch.Generator().manual_seed(seed * 1_000_003 + trial))

    def inputs_from(self, trial: int, generator: torch.Generator) -> Args:
        """Arguments for one correctness trial's shape case, drawn from `generator`."""
        return self.make_inputs(self.shape_of(trial), generator)

    def shape_of(self, trial: int) -> tuple[int, ...]:
        return tuple(self.shapes[trial % len(self.shapes)])

    def fresh_inputs(self, shape: tuple[int, ...], like: Args, seed: int | None = None, device: str = "cpu") -> Args:
        """The shape case of `like` drawn again, with the same layout (shapes, strides, storage offsets and sizes,
        dtypes); plain arguments (scales, slopes) are kept. Drawn from unpredictable entropy (`os.urandom`), or
        from `seed` on `device` where two processes must draw the same inputs (a timed call's, which the
        evaluator draws again to check that call's output)."""
        seed = int.from_bytes(os.urandom(8), "little") if seed is None else seed
        drawn = self.make_inputs(shape, torch.Generator(device).manual_seed(seed))
        fresh = tuple(new if isinstance(old, torch.Tensor) else old for old, new in zip(like, drawn))
        for old, new in zip(like, fresh):
            if isinstance(old, torch.Tensor) and (not isinstance(new, torch.Tensor) or layout(old) != layout(new)):
                raise AssertionError(f"{self.name}: inputs drawn again for shape {shape} are laid out differently")
        return fresh

    def benchmark_inputs(self, seed: int) -> Args:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + 999_983)  # apart from every trial's seed
        return self.make_inputs(tuple(self.benchmark_shape), generator)

    def tolerance_for(self, dtype: torch.dtype) -> float:
        if self.tolerance is not None:
            return self.tolerance
        return DEFAULT_TOLERANCES.get(dtype, 0.0)

    def matches(self, output: torch.Tensor, expected: torch.Tensor) -> bool:
        """Same shape and dtype as the reference's result, and close within the dtype's tolerance."""
        if output.shape != expected.shape or output.dtype != expected.dtype:
            return False
        tolerance = self.tolerance_for(expected.dtype)
        return torch.allclose(output, expected, atol=tolerance, rtol=tolerance)

    def torch_code(self) -> str:
        return "import torch\nimport torch.nn.functional as F\n\n\n" + textwrap.dedent(inspect.getsource(self.reference))

    def prompt(self) -> dict[str, str]:
        return {
            "system": SYSTEM_PROMPT,
            "user": USER_PROMPT_TEMPLATE.format(torch_code=self.torch_code().rstrip(), name=self.name),
        }

    def solution(self) -> str:
        """Our own Triton solution: every one must score 1.0 on correctness (checked in CI)."""
        return (SOLUTIONS_DIR / f"{self.name}.py").read_text()


def randn(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=generator.device).to(dtype)


def rand(shape: tuple[int, ...], generator: torch.Generator, low: float, high: float) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device) * (high - low) + low
