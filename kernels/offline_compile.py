"""Compiles a launched kernel for a GPU target without a GPU or a driver.

`triton.compile(ASTSource(...), target=GPUTarget(...))` runs the whole pipeline (TTIR, TTGIR, LLVM IR, PTX,
cubin via the bundled ptxas) offline. The signature comes from the arguments the candidate actually launched
the kernel with, specialised exactly as JITFunction.run does it (same binder, same _pack_args).
"""
from __future__ import annotations

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton.runtime.jit import JITFunction, create_function_from_signature

from .launches import Launch

# Hopper (sm_90) with 32-thread warps: a current NVIDIA target that needs no device to compile for.
OFFLINE_TARGET = GPUTarget("cuda", 90, 32)


def compile_launch(launch: Launch, target: GPUTarget = OFFLINE_TARGET) -> None:
    """Raises whatever Triton raises when the kernel does not compile."""
    kernel = JITFunction(launch.kernel)
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound_args, specialization, options = binder(*launch.args, **launch.kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, launch.kwargs, bound_args, specialization, options)
    triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target, options=options.__dict__)
