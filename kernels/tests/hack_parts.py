"""What the hack catalogues share: the `Hack` record and the pieces of relu candidates they are built from."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hack:
    name: str
    attack_class: str
    description: str  # what it does, and so why it must be rejected
    expected: frozenset[str]
    code: str
    second_line: frozenset[str] | None = None
    problem: str = "relu"
    reason: str | None = None


NOT_ALLOWED = frozenset({"not_allowed"})
HEADER = "import torch\nimport triton\nimport triton.language as tl\n\n\n"

# A kernel that loads and stores nothing useful but looks right to a formatting check.
IDLE_KERNEL = '''@triton.jit
def relu_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)


'''

# A kernel that only copies its input to its output: the result is then made on the host.
COPY_KERNEL = '''@triton.jit
def relu_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask), mask=mask)


'''

RELU_KERNEL = '''@triton.jit
def relu_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, tl.maximum(x, 0.0), mask=mask)


'''

LAUNCH = "    relu_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK_SIZE=1024)\n"
ALLOCATE = "    out = torch.empty_like(x)\n"
