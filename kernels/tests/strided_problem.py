"""A problem for the tests only: its inputs are not contiguous (one transposed, one a column slice with a storage
offset), as no data-set problem's are, with honest solutions and host-computing ones for it."""
from __future__ import annotations

import torch

from kernels.dataset.problem import Problem, randn


def strided_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x + y


def _inputs(shape: tuple[int, ...], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = shape
    transposed = randn((cols, rows), generator).t()
    column_slice = randn((rows, cols + 3), generator)[:, 2:cols + 2]
    return transposed, column_slice


STRIDED_ADD = Problem(strided_add, _inputs, shapes=[(5, 7), (33, 65), (64, 3), (17, 129)], split="test", category="strided",
                      benchmark_shape=(4099, 2047))

_HEADER = "import torch\nimport triton\nimport triton.language as tl\n\n\n"

# Reads both inputs through their strides: no copy on the host.
THROUGH_STRIDES = _HEADER + '''@triton.jit
def strided_add_kernel(x_ptr, y_ptr, out_ptr, cols, x_row, x_col, y_row, y_col, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offsets = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < cols
    x = tl.load(x_ptr + row * x_row + offsets * x_col, mask=mask)
    y = tl.load(y_ptr + row * y_row + offsets * y_col, mask=mask)
    tl.store(out_ptr + row * cols + offsets, x + y, mask=mask)


def strided_add(x, y):
    rows, cols = x.shape
    out = torch.empty((rows, cols), dtype=x.dtype, device=x.device)
    strided_add_kernel[(rows, triton.cdiv(cols, 64))](x, y, out, cols, x.stride(0), x.stride(1), y.stride(0), y.stride(1), BLOCK=64)
    return out
'''

_FLAT_KERNEL = '''@triton.jit
def strided_add_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + tl.load(y_ptr + offsets, mask=mask), mask=mask)


'''

# Makes contiguous copies on the host, then adds them as flat arrays.
CONTIGUOUS_COPIES = _HEADER + _FLAT_KERNEL + '''def strided_add(x, y):
    x = x.contiguous()
    y = y.contiguous()
    out = torch.empty_like(x)
    strided_add_kernel[(triton.cdiv(x.numel(), 256),)](x, y, out, x.numel(), BLOCK=256)
    return out
'''

_COPY_KERNEL = '''@triton.jit
def strided_add_kernel(x_ptr, out_ptr, n_elements, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask), mask=mask)


'''

# Host computation (outside the allow-list): numpy adds into the contiguous copy of x, a kernel only copies.
HOST_ADD_INTO_THE_COPY = _HEADER + _COPY_KERNEL + '''def strided_add(x, y):
    x = x.contiguous()
    y = y.contiguous()
    np = torch.sys.modules["numpy"]
    np.add(x.numpy(), y.numpy(), out=x.numpy())
    out = torch.empty_like(x)
    strided_add_kernel[(triton.cdiv(x.numel(), 256),)](x, out, x.numel(), BLOCK=256)
    return out
'''

# Host computation (outside the allow-list): numpy adds the strided inputs into a scratch buffer, a kernel copies it.
HOST_ADD_INTO_SCRATCH = _HEADER + _COPY_KERNEL + '''def strided_add(x, y):
    scratch = torch.empty(x.shape, dtype=x.dtype)
    torch.sys.modules["numpy"].add(x.numpy(), y.numpy(), out=scratch.numpy())
    out = torch.empty_like(scratch)
    strided_add_kernel[(triton.cdiv(x.numel(), 256),)](scratch, out, x.numel(), BLOCK=256)
    return out
'''
