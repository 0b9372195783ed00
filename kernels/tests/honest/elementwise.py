"""Honest solutions to the elementwise problems."""
from __future__ import annotations

from .solution import HEADER, Honest

ELEMENTWISE = [
    Honest("grid_stride_loop", "relu", HEADER + '''@triton.jit
def relu_kernel(x_ptr, out_ptr, n_elements, n_programs, BLOCK_SIZE: tl.constexpr):
    for start in range(tl.program_id(0) * BLOCK_SIZE, n_elements, n_programs * BLOCK_SIZE):
        offsets = start + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        x = tl.load(x_ptr + offsets, mask=mask)
        tl.store(out_ptr + offsets, tl.where(x > 0, x, 0.0), mask=mask)


def relu(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    n_programs = min(4, triton.cdiv(x.numel(), 256))
    relu_kernel[(n_programs,)](x, out, x.numel(), n_programs, BLOCK_SIZE=256)
    return out
'''),
    Honest("lambda_grid_over_meta", "relu", HEADER + '''@triton.jit
def relu_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.maximum(tl.load(x_ptr + offsets, mask=mask), 0.0), mask=mask)


def relu(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    n_elements = x.numel()
    grid = lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)
    relu_kernel[grid](x, out, n_elements, BLOCK_SIZE=512)
    return out
'''),
    Honest("helper_computes_launch_size", "leaky_relu", HEADER + '''BLOCK = 512


@triton.jit
def leaky_relu_kernel(x_ptr, out_ptr, n_elements, slope, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, tl.where(x >= 0, x, x * slope), mask=mask)


def blocks_for(n_elements, block):
    return triton.cdiv(n_elements, block)


def leaky_relu(x, negative_slope):
    x = x.contiguous()
    out = torch.empty_like(x)
    leaky_relu_kernel[(blocks_for(x.numel(), BLOCK),)](x, out, x.numel(), negative_slope, BLOCK_SIZE=BLOCK)
    return out
'''),
    Honest("two_dimensional_tiles", "add", HEADER + '''@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n_rows, n_cols, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offsets = rows[:, None] * n_cols + cols[None, :]
    z = tl.load(x_ptr + offsets, mask=mask) + tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, z, mask=mask)


def add(x, y):
    x = x.contiguous()
    y = y.contiguous()
    out = torch.empty_like(x)
    n_cols = x.shape[-1]
    n_rows = x.numel() // n_cols
    grid = (triton.cdiv(n_rows, 16), triton.cdiv(n_cols, 64))
    add_kernel[grid](x, y, out, n_rows, n_cols, BLOCK_R=16, BLOCK_C=64)
    return out
'''),
    Honest("host_loop_over_chunks", "mul", HEADER + '''@triton.jit
def mul_kernel(x_ptr, y_ptr, out_ptr, start, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = start + tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * tl.load(y_ptr + offsets, mask=mask), mask=mask)


def mul(x, y):
    x = x.contiguous()
    y = y.contiguous()
    out = torch.empty_like(x)
    n = x.numel()
    chunk = 2048
    for start in range(0, n, chunk):
        mul_kernel[(triton.cdiv(min(chunk, n - start), 256),)](x, y, out, start, n, BLOCK_SIZE=256)
    return out
'''),
    Honest("annotations_docstring_assert", "scale_shift", '''from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def scale_shift_kernel(x_ptr, out_ptr, n_elements, scale, shift, BLOCK_SIZE: tl.constexpr):
    """One block of elements per program."""
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * scale + shift, mask=mask)


def scale_shift(x: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """x * scale + shift, element-wise."""
    x = x.contiguous()
    assert x.is_contiguous(), "the kernel indexes a flat buffer"
    out: torch.Tensor = torch.empty_like(x)
    n_elements: int = x.numel()
    scale_shift_kernel[(triton.cdiv(n_elements, 1024),)](x, out, n_elements, scale, shift, BLOCK_SIZE=1024)
    return out
'''),
    Honest("constexpr_global", "sigmoid", HEADER + '''BLOCK = tl.constexpr(256)
BLOCK_ELEMENTS = 256


@triton.jit
def sigmoid_kernel(x_ptr, out_ptr, n_elements):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, 1.0 / (1.0 + tl.exp(-x)), mask=mask)


def sigmoid(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    sigmoid_kernel[(triton.cdiv(x.numel(), BLOCK_ELEMENTS),)](x, out, x.numel())
    return out
'''),
    Honest("jit_helper_function", "silu", HEADER + '''@triton.jit
def logistic(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def silu_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x * logistic(x), mask=mask)


def silu(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    silu_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK_SIZE=1024, num_warps=4)
    return out
'''),
    Honest("math_erf_with_constant", "gelu", HEADER + '''import math

INV_SQRT2 = tl.constexpr(0.7071067811865476)


@triton.jit
def gelu_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, 0.5 * x * (1.0 + tl.math.erf(x * INV_SQRT2)), mask=mask)


def gelu(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    block = 2 ** int(math.log2(1024))
    gelu_kernel[(triton.cdiv(x.numel(), block),)](x, out, x.numel(), BLOCK_SIZE=block)
    return out
'''),
    Honest("fp16_computed_in_fp32", "add_fp16", HEADER + '''@triton.jit
def add_fp16_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    z = tl.load(x_ptr + offsets, mask=mask).to(tl.float32) + tl.load(y_ptr + offsets, mask=mask).to(tl.float32)
    tl.store(out_ptr + offsets, z.to(tl.float16), mask=mask)


def add_fp16(x, y):
    x = x.contiguous()
    y = y.contiguous()
    out = torch.empty(x.shape, dtype=torch.float16, device=x.device)
    add_fp16_kernel[(triton.cdiv(x.numel(), 1024),)](x, y, out, x.numel(), BLOCK_SIZE=1024)
    return out
'''),
    Honest("block_chosen_by_dtype", "hardswish", HEADER + '''@triton.jit
def hardswish_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x * tl.minimum(tl.maximum(x + 3.0, 0.0), 6.0) / 6.0, mask=mask)


def hardswish(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    if x.dtype == torch.float16 or x.element_size() < 4:
        block = 2048
    else:
        block = 512
    hardswish_kernel[(triton.cdiv(x.numel(), block),)](x, out, x.numel(), BLOCK_SIZE=block)
    return out
'''),
    Honest("block_clamped_with_min_max", "clamp", HEADER + '''@triton.jit
def clamp_kernel(x_ptr, out_ptr, n_elements, low, high, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, tl.minimum(tl.maximum(x, low), high), mask=mask)


def clamp(x, low, high):
    x = x.contiguous()
    out = torch.empty_like(x)
    n = x.numel()
    block = max(64, min(1024, triton.next_power_of_2(n)))
    clamp_kernel[(triton.cdiv(n, block),)](x, out, n, low, high, BLOCK_SIZE=block)
    return out
'''),
    Honest("flat_views_reshaped_back", "abs_diff", HEADER + '''@triton.jit
def abs_diff_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.abs(tl.load(x_ptr + offsets, mask=mask) - tl.load(y_ptr + offsets, mask=mask)), mask=mask)


def abs_diff(x, y):
    flat_x = x.contiguous().view(-1)
    flat_y = y.contiguous().reshape(-1)
    out = torch.empty(flat_x.numel(), dtype=x.dtype, device=x.device)
    abs_diff_kernel[(triton.cdiv(out.numel(), 512),)](flat_x, flat_y, out, out.numel(), BLOCK_SIZE=512)
    return out.view(x.shape)
'''),
    Honest("empty_strided_allocation", "elu", HEADER + '''@triton.jit
def elu_kernel(x_ptr, out_ptr, n_elements, alpha, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, tl.where(x > 0, x, alpha * (tl.exp(x) - 1.0)), mask=mask)


def elu(x, alpha):
    x = x.contiguous()
    out = torch.empty_strided(x.size(), x.stride(), dtype=x.dtype, device=x.device)
    elu_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), alpha, BLOCK_SIZE=1024)
    return out
'''),
    Honest("shape_check_raises", "tanh", HEADER + '''@triton.jit
def tanh_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    tl.store(out_ptr + offsets, tl.where(x >= 0, t, -t), mask=mask)


def tanh(x):
    if x.numel() == 0:
        raise ValueError("tanh needs at least one element")
    x = x.contiguous()
    out = torch.empty_like(x)
    tanh_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK_SIZE=1024)
    return out
'''),
    Honest("softplus_threshold", "softplus", HEADER + '''@triton.jit
def softplus_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(x))), mask=mask)


def softplus(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    n_elements = x.numel()
    softplus_kernel[lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)](x, out, n_elements, BLOCK_SIZE=256)
    return out
'''),
]
