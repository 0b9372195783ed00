import torch
import triton
import triton.language as tl


@triton.jit
def cosine_similarity_kernel(x_ptr, y_ptr, out_ptr, n_cols, row_stride, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * row_stride + cols, mask=mask, other=0.0)
    y = tl.load(y_ptr + row * row_stride + cols, mask=mask, other=0.0)
    x_norm = tl.maximum(tl.sqrt(tl.sum(x * x, axis=0)), 1e-8)
    y_norm = tl.maximum(tl.sqrt(tl.sum(y * y, axis=0)), 1e-8)
    tl.store(out_ptr + row, tl.sum(x * y, axis=0) / (x_norm * y_norm))


def cosine_similarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.contiguous()
    n_rows, n_cols = x.shape
    out = torch.empty(n_rows, dtype=x.dtype, device=x.device)
    cosine_similarity_kernel[(n_rows,)](x, y.contiguous(), out, n_cols, x.stride(0), BLOCK_SIZE=triton.next_power_of_2(n_cols))
    return out
