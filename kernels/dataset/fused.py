"""Fused elementwise and normalisation patterns from transformer blocks."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .elementwise import ELEMENTWISE_BENCHMARK, ELEMENTWISE_SHAPES, two_tensors
from .problem import Problem, randn
from .reductions import ROW_BENCHMARK, ROW_SHAPES


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


def add_relu(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.relu(x + y)


def residual_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    h = x + residual
    return h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + 1e-6) * weight


def residual_and_weight(shape, g):
    return (randn(shape, g), randn(shape, g), randn(shape[-1:], g))


PROBLEMS = [
    Problem(swiglu, two_tensors, ELEMENTWISE_SHAPES, "train", "fused", ELEMENTWISE_BENCHMARK),
    Problem(add_relu, two_tensors, ELEMENTWISE_SHAPES, "test", "fused", ELEMENTWISE_BENCHMARK),
    Problem(residual_rms_norm, residual_and_weight, ROW_SHAPES, "test", "fused", ROW_BENCHMARK),
]
