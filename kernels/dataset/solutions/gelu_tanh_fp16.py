import torch
import triton
import triton.language as tl


@triton.jit
def gelu_tanh_fp16_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)
    inner = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    t = tl.exp(-2.0 * tl.abs(inner))
    tanh_inner = tl.where(inner >= 0, (1.0 - t) / (1.0 + t), -(1.0 - t) / (1.0 + t))
    y = 0.5 * x * (1.0 + tanh_inner)
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=mask)


def gelu_tanh_fp16(x: torch.Tensor) -> torch.Tensor:
    x = x.contiguous()
    out = torch.empty_like(x)
    n_elements = x.numel()
    grid = (triton.cdiv(n_elements, 1024),)
    gelu_tanh_fp16_kernel[grid](x, out, n_elements, BLOCK_SIZE=1024)
    return out
