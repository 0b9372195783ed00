import torch
import triton
import triton.language as tl


@triton.jit
def lower_triangular_matmul_kernel(a_ptr, b_ptr, c_ptr, M, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm,
                                   stride_cn, BLOCK: tl.constexpr, BLOCK_K: tl.constexpr):
    tile_row = tl.program_id(0)
    tile_col = tl.program_id(1)
    rows = tile_row * BLOCK + tl.arange(0, BLOCK)
    cols = tile_col * BLOCK + tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK, BLOCK), dtype=tl.float32)
    if tile_col <= tile_row:  # tiles wholly above the diagonal are zero: skip their products
        ks = tl.arange(0, BLOCK_K)
        for k0 in range(0, K, BLOCK_K):
            k = k0 + ks
            a = tl.load(a_ptr + rows[:, None] * stride_am + k[None, :] * stride_ak,
                        mask=(rows[:, None] < M) & (k[None, :] < K), other=0.0)
            b = tl.load(b_ptr + k[:, None] * stride_bk + cols[None, :] * stride_bn,
                        mask=(k[:, None] < K) & (cols[None, :] < M), other=0.0)
            acc += tl.dot(a, b, input_precision="ieee")
    acc = tl.where(rows[:, None] >= cols[None, :], acc, 0.0)
    tl.store(c_ptr + rows[:, None] * stride_cm + cols[None, :] * stride_cn, acc,
             mask=(rows[:, None] < M) & (cols[None, :] < M))


def lower_triangular_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    M, K = a.shape
    c = torch.empty((M, M), dtype=a.dtype, device=a.device)
    grid = (triton.cdiv(M, 32), triton.cdiv(M, 32))
    lower_triangular_matmul_kernel[grid](a, b, c, M, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0),
                                         c.stride(1), BLOCK=32, BLOCK_K=32)
    return c
