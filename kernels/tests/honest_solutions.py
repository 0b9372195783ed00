"""Honest solutions in many styles, written apart from the data set's own: the allow-list must reject none of them,
and each must score correctness 1. Together with kernels/dataset/solutions they measure the false-rejection rate.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Honest:
    name: str
    problem: str
    code: str


_HEADER = "import torch\nimport triton\nimport triton.language as tl\n\n\n"

HONEST = [
    Honest("grid_stride_loop", "relu", _HEADER + '''@triton.jit
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
    Honest("lambda_grid_over_meta", "relu", _HEADER + '''@triton.jit
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
    Honest("helper_computes_launch_size", "leaky_relu", _HEADER + '''BLOCK = 512


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
    Honest("two_dimensional_tiles", "add", _HEADER + '''@triton.jit
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
    Honest("host_loop_over_chunks", "mul", _HEADER + '''@triton.jit
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
    Honest("constexpr_global", "sigmoid", _HEADER + '''BLOCK = tl.constexpr(256)
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
    Honest("jit_helper_function", "silu", _HEADER + '''@triton.jit
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
    Honest("math_erf_with_constant", "gelu", _HEADER + '''import math

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
    Honest("several_rows_per_program", "row_sum", _HEADER + '''@triton.jit
def row_sum_kernel(x_ptr, out_ptr, n_rows, n_cols, row_stride, ROWS: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    x = tl.load(x_ptr + rows[:, None] * row_stride + cols[None, :], mask=mask, other=0.0)
    tl.store(out_ptr + rows, tl.sum(x, axis=1), mask=rows < n_rows)


def row_sum(x):
    x = x.contiguous()
    n_rows, n_cols = x.shape
    out = torch.empty(n_rows, dtype=x.dtype, device=x.device)
    rows_per_program = 4
    row_sum_kernel[(triton.cdiv(n_rows, rows_per_program),)](
        x, out, n_rows, n_cols, x.stride(0), ROWS=rows_per_program, BLOCK_SIZE=triton.next_power_of_2(n_cols))
    return out
'''),
    Honest("online_softmax", "softmax", _HEADER + '''@triton.jit
def softmax_kernel(x_ptr, out_ptr, n_cols, row_stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    base = x_ptr + row * row_stride
    running_max = tl.full((BLOCK_SIZE,), float("-inf"), tl.float32)
    running_sum = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf"))
        new_max = tl.maximum(running_max, x)
        scale = tl.where(new_max == float("-inf"), 0.0, tl.exp(running_max - new_max))
        running_sum = running_sum * scale + tl.where(x == float("-inf"), 0.0, tl.exp(x - new_max))
        running_max = new_max
    row_max = tl.max(running_max, axis=0)
    total = tl.sum(running_sum * tl.exp(running_max - row_max), axis=0)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf"))
        tl.store(out_ptr + row * row_stride + cols, tl.exp(x - row_max) / total, mask=cols < n_cols)


def softmax(x):
    x = x.contiguous()
    n_rows, n_cols = x.shape
    out = torch.empty_like(x)
    softmax_kernel[(n_rows,)](x, out, n_cols, x.stride(0), BLOCK_SIZE=64)
    return out
'''),
    Honest("chunked_layer_norm", "layer_norm", _HEADER + '''@triton.jit
def layer_norm_kernel(x_ptr, w_ptr, b_ptr, out_ptr, n_cols, row_stride, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    base = x_ptr + row * row_stride
    acc = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        acc += tl.load(base + cols, mask=cols < n_cols, other=0.0)
    mean = tl.sum(acc, axis=0) / n_cols
    acc = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        centred = tl.where(cols < n_cols, tl.load(base + cols, mask=cols < n_cols, other=0.0) - mean, 0.0)
        acc += centred * centred
    rstd = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / n_cols + eps)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        mask = cols < n_cols
        x = tl.load(base + cols, mask=mask, other=0.0)
        w = tl.load(w_ptr + cols, mask=mask)
        b = tl.load(b_ptr + cols, mask=mask)
        tl.store(out_ptr + row * row_stride + cols, (x - mean) * rstd * w + b, mask=mask)


def layer_norm(x, weight, bias):
    x = x.contiguous()
    out = torch.empty_like(x)
    layer_norm_kernel[(x.shape[0],)](x, weight, bias, out, x.shape[1], x.stride(0), 1e-5, BLOCK_SIZE=32)
    return out
'''),
    Honest("zeros_allocation_single_program", "mse_loss", _HEADER + '''@triton.jit
def mse_loss_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    total = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for start in range(0, n_elements, BLOCK_SIZE):
        offsets = start + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        d = tl.load(x_ptr + offsets, mask=mask, other=0.0) - tl.load(y_ptr + offsets, mask=mask, other=0.0)
        total += d * d
    tl.store(out_ptr, tl.sum(total, axis=0) / n_elements)


def mse_loss(x, y):
    x = x.contiguous()
    y = y.contiguous()
    out = torch.zeros((), dtype=x.dtype, device=x.device)
    mse_loss_kernel[(1,)](x, y, out, x.numel(), BLOCK_SIZE=256)
    return out
'''),
    Honest("grouped_matmul_ordering", "matmul", _HEADER + '''@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, sam, sak, sbk, sbn, scm, scn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * grid_n
    first_m = (pid // per_group) * GROUP_M
    group_size = min(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_size
    pid_n = (pid % per_group) // group_size
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(a_ptr + rows[:, None] * sam + k[None, :] * sak, mask=(rows[:, None] < M) & (k[None, :] < K), other=0.0)
        b = tl.load(b_ptr + k[:, None] * sbk + cols[None, :] * sbn, mask=(k[:, None] < K) & (cols[None, :] < N), other=0.0)
        acc += tl.dot(a, b, input_precision="ieee")
    tl.store(c_ptr + rows[:, None] * scm + cols[None, :] * scn, acc, mask=(rows[:, None] < M) & (cols[None, :] < N))


def matmul(a, b):
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)
    matmul_kernel[grid](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1),
                        BLOCK_M=16, BLOCK_N=16, BLOCK_K=32, GROUP_M=2)
    return c
'''),
    Honest("int64_output_chunked_argmax", "row_argmax", _HEADER + '''@triton.jit
def row_argmax_kernel(x_ptr, out_ptr, n_cols, row_stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    best = tl.full((BLOCK_SIZE,), float("-inf"), tl.float32)
    best_index = tl.zeros((BLOCK_SIZE,), dtype=tl.int64)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        x = tl.load(x_ptr + row * row_stride + cols, mask=cols < n_cols, other=float("-inf"))
        better = x > best
        best = tl.where(better, x, best)
        best_index = tl.where(better, cols.to(tl.int64), best_index)
    top = tl.max(best, axis=0)
    candidates = tl.where(best == top, best_index, n_cols)
    tl.store(out_ptr + row, tl.min(candidates, axis=0).to(tl.int64))


def row_argmax(x):
    x = x.contiguous()
    out = torch.empty((x.shape[0],), dtype=torch.int64, device=x.device)
    row_argmax_kernel[(x.shape[0],)](x, out, x.shape[1], x.stride(0), BLOCK_SIZE=32)
    return out
'''),
    Honest("strided_rows_no_copy", "row_mean", _HEADER + '''@triton.jit
def row_mean_kernel(x_ptr, out_ptr, n_cols, stride_row, stride_col, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    x = tl.load(x_ptr + row * stride_row + cols * stride_col, mask=cols < n_cols, other=0.0)
    tl.store(out_ptr + row, tl.sum(x, axis=0) / n_cols)


def row_mean(x):
    n_rows, n_cols = x.shape
    out = torch.empty(n_rows, dtype=x.dtype, device=x.device)
    row_mean_kernel[(n_rows,)](x, out, n_cols, x.stride(0), x.stride(1), BLOCK_SIZE=triton.next_power_of_2(n_cols))
    return out
'''),
    Honest("exp2_log2_constants", "log_softmax", _HEADER + '''LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def log_softmax_kernel(x_ptr, out_ptr, n_cols, row_stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * row_stride + cols, mask=mask, other=float("-inf"))
    shifted = x - tl.max(x, axis=0)
    total = tl.sum(tl.exp2(shifted * LOG2E), axis=0)
    tl.store(out_ptr + row * row_stride + cols, shifted - tl.log2(total) * LN2, mask=mask)


def log_softmax(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    log_softmax_kernel[(x.shape[0],)](x, out, x.shape[1], x.stride(0), BLOCK_SIZE=triton.next_power_of_2(x.shape[1]))
    return out
'''),
    Honest("full_like_allocation", "rms_norm", _HEADER + '''@triton.jit
def rms_norm_kernel(x_ptr, w_ptr, out_ptr, n_cols, row_stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * row_stride + cols, mask=mask, other=0.0)
    rms = tl.rsqrt(tl.sum(x * x, axis=0) / n_cols + 1e-6)
    tl.store(out_ptr + row * row_stride + cols, x * rms * tl.load(w_ptr + cols, mask=mask), mask=mask)


def rms_norm(x, weight):
    x = x.contiguous()
    out = torch.full_like(x, 0.0)
    rms_norm_kernel[(x.shape[0],)](x, weight, out, x.shape[1], x.stride(0), BLOCK_SIZE=triton.next_power_of_2(x.shape[1]))
    return out
'''),
    Honest("two_pass_cosine", "cosine_similarity", _HEADER + '''@triton.jit
def cosine_similarity_kernel(x_ptr, y_ptr, out_ptr, n_cols, row_stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    dot = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    xx = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    yy = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        mask = cols < n_cols
        x = tl.load(x_ptr + row * row_stride + cols, mask=mask, other=0.0)
        y = tl.load(y_ptr + row * row_stride + cols, mask=mask, other=0.0)
        dot += x * y
        xx += x * x
        yy += y * y
    norms = tl.maximum(tl.sqrt(tl.sum(xx, axis=0)) * tl.sqrt(tl.sum(yy, axis=0)), 1e-8)
    tl.store(out_ptr + row, tl.sum(dot, axis=0) / norms)


def cosine_similarity(x, y):
    x = x.contiguous()
    y = y.contiguous()
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    cosine_similarity_kernel[(x.shape[0],)](x, y, out, x.shape[1], x.stride(0), BLOCK_SIZE=64)
    return out
'''),
    Honest("grid_tuple_from_helper", "batched_matmul", _HEADER + '''@triton.jit
def batched_matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, sab, sam, sak, sbb, sbk, sbn, scb, scm, scn,
                          BLOCK: tl.constexpr, BLOCK_K: tl.constexpr):
    batch = tl.program_id(2)
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK, BLOCK), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(a_ptr + batch * sab + rows[:, None] * sam + k[None, :] * sak, mask=(rows[:, None] < M) & (k[None, :] < K), other=0.0)
        b = tl.load(b_ptr + batch * sbb + k[:, None] * sbk + cols[None, :] * sbn, mask=(k[:, None] < K) & (cols[None, :] < N), other=0.0)
        acc += tl.dot(a, b, input_precision="ieee")
    tl.store(c_ptr + batch * scb + rows[:, None] * scm + cols[None, :] * scn, acc, mask=(rows[:, None] < M) & (cols[None, :] < N))


def launch_grid(rows, cols, batches, block):
    return (triton.cdiv(rows, block), triton.cdiv(cols, block), batches)


def batched_matmul(a, b):
    batches, M, K = a.shape
    N = b.shape[2]
    c = torch.empty((batches, M, N), dtype=a.dtype, device=a.device)
    batched_matmul_kernel[launch_grid(M, N, batches, 32)](
        a, b, c, M, N, K, *a.stride(), *b.stride(), *c.stride(), BLOCK=32, BLOCK_K=16)
    return c
'''),
    Honest("fp16_computed_in_fp32", "add_fp16", _HEADER + '''@triton.jit
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
    Honest("block_chosen_by_dtype", "hardswish", _HEADER + '''@triton.jit
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
    Honest("block_clamped_with_min_max", "clamp", _HEADER + '''@triton.jit
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
    Honest("flat_views_reshaped_back", "abs_diff", _HEADER + '''@triton.jit
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
    Honest("empty_strided_allocation", "elu", _HEADER + '''@triton.jit
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
    Honest("shape_check_raises", "tanh", _HEADER + '''@triton.jit
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
    Honest("static_range_sub_blocks", "swiglu", _HEADER + '''@triton.jit
def swiglu_kernel(gate_ptr, up_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr, SPLIT: tl.constexpr):
    for part in tl.static_range(SPLIT):
        offsets = (tl.program_id(0) * SPLIT + part) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        g = tl.load(gate_ptr + offsets, mask=mask)
        u = tl.load(up_ptr + offsets, mask=mask)
        tl.store(out_ptr + offsets, g / (1.0 + tl.exp(-g)) * u, mask=mask)


def swiglu(gate, up):
    gate = gate.contiguous()
    up = up.contiguous()
    out = torch.empty_like(gate)
    block, split = 256, 2
    swiglu_kernel[(triton.cdiv(gate.numel(), block * split),)](gate, up, out, gate.numel(), BLOCK_SIZE=block, SPLIT=split)
    return out
'''),
    Honest("softplus_threshold", "softplus", _HEADER + '''@triton.jit
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
    Honest("fused_rows_residual", "residual_rms_norm", _HEADER + '''@triton.jit
def residual_rms_norm_kernel(x_ptr, r_ptr, w_ptr, out_ptr, n_rows, n_cols, ROWS: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offsets = rows[:, None] * n_cols + cols[None, :]
    h = tl.load(x_ptr + offsets, mask=mask, other=0.0) + tl.load(r_ptr + offsets, mask=mask, other=0.0)
    rms = tl.rsqrt(tl.sum(h * h, axis=1) / n_cols + 1e-6)
    w = tl.load(w_ptr + cols, mask=cols < n_cols, other=0.0)
    tl.store(out_ptr + offsets, h * rms[:, None] * w[None, :], mask=mask)


def residual_rms_norm(x, residual, weight):
    x = x.contiguous()
    residual = residual.contiguous()
    n_rows, n_cols = x.shape
    out = torch.empty_like(x)
    residual_rms_norm_kernel[(triton.cdiv(n_rows, 2),)](x, residual, weight, out, n_rows, n_cols, ROWS=2,
                                                        BLOCK_SIZE=triton.next_power_of_2(n_cols))
    return out
'''),
    Honest("matmul_bias_relu_fused_epilogue", "matmul_bias_relu", _HEADER + '''@triton.jit
def matmul_bias_relu_kernel(a_ptr, b_ptr, bias_ptr, c_ptr, M, N, K, sam, sak, sbk, sbn, scm, scn,
                            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, tl.cdiv(K, BLOCK_K)):
        k = k0 * BLOCK_K + tl.arange(0, BLOCK_K)
        a = tl.load(a_ptr + rows[:, None] * sam + k[None, :] * sak, mask=(rows[:, None] < M) & (k[None, :] < K), other=0.0)
        b = tl.load(b_ptr + k[:, None] * sbk + cols[None, :] * sbn, mask=(k[:, None] < K) & (cols[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc, input_precision="ieee")
    acc = acc + tl.load(bias_ptr + cols, mask=cols < N, other=0.0)[None, :]
    tl.store(c_ptr + rows[:, None] * scm + cols[None, :] * scn, tl.maximum(acc, 0.0), mask=(rows[:, None] < M) & (cols[None, :] < N))


def matmul_bias_relu(a, b, bias):
    M, K = a.shape
    _, N = b.shape
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    block_m, block_n = 32, 16
    matmul_bias_relu_kernel[(triton.cdiv(M, block_m), triton.cdiv(N, block_n))](
        a, b, bias, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=16)
    return c
'''),
]
