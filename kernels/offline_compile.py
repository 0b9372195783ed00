"""Compiles a launched kernel for a GPU target without a GPU or a driver.

`triton.compile(ASTSource(...), target=GPUTarget(...))` runs the whole pipeline (TTIR, TTGIR, LLVM IR, PTX,
cubin via the bundled ptxas) offline. The signature comes from the arguments the candidate actually launched
the kernel with, specialised exactly as JITFunction.run does it (Triton's own binder and _pack_args, reached
through triton_internals.py).
"""
from __future__ import annotations

from typing import Any, Callable

from triton.backends.compiler import GPUTarget

from .triton_internals import OfflineKernel

# Hopper (sm_90) with 32-thread warps: a current NVIDIA target that needs no device to compile for.
OFFLINE_TARGET = GPUTarget("cuda", 90, 32)


def offline_kernel(kernel_function: Callable[..., Any], target: GPUTarget = OFFLINE_TARGET) -> OfflineKernel:
    """`kernel_function` (undecorated), ready to specialise each launch of it and compile it for `target`."""
    return OfflineKernel(target, kernel_function)
