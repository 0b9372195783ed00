"""Honest solutions to the row reductions, norms and fused row problems."""
from __future__ import annotations

from .solution import HEADER, Honest

ROWS = [
    Honest("several_rows_per_program", "row_sum", HEADER + '''@triton.jit
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
    Honest("online_softmax", "softmax", HEADER + '''@triton.jit
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
    Honest("chunked_layer_norm", "layer_norm", HEADER + '''@triton.jit
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
    Honest("zeros_allocation_single_program", "mse_loss", HEADER + '''@triton.jit
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
    Honest("int64_output_chunked_argmax", "row_argmax", HEADER + '''@triton.jit
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
    Honest("strided_rows_no_copy", "row_mean", HEADER + '''@triton.jit
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
    Honest("exp2_log2_constants", "log_softmax", HEADER + '''LOG2E = tl.constexpr(1.4426950408889634)
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
    Honest("full_like_allocation", "rms_norm", HEADER + '''@triton.jit
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
    Honest("two_pass_cosine", "cosine_similarity", HEADER + '''@triton.jit
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
    Honest("static_range_sub_blocks", "swiglu", HEADER + '''@triton.jit
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
    Honest("fused_rows_residual", "residual_rms_norm", HEADER + '''@triton.jit
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
]
