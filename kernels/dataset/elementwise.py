"""Elementwise problems: arithmetic and activations, including half-precision ones."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .problem import Problem, rand, randn

# Flat, 2-D and 3-D cases; only the second is a power of two, so masking is exercised. The first is larger than
# any one block a kernel would take: a kernel that covers a single block, or launches too few programs, fails it.
ELEMENTWISE_SHAPES = [(70001,), (1024,), (37, 53), (3, 7, 129)]
# 16,777,207 elements (64 MiB per fp32 tensor): memory-bound work of tens of microseconds on a current GPU,
# several times a launch's overhead; not a power of two, so the masked tail is timed too.
ELEMENTWISE_BENCHMARK = (4099, 4093)


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x)


def leaky_relu(x: torch.Tensor, negative_slope: float) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope)


def add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x + y


def scale_shift(x: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    return x * scale + shift


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x)


def silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x)


def mul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x * y


def abs_diff(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.abs(x - y)


def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x)


def elu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return F.elu(x, alpha)


def softplus(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x)


def hardswish(x: torch.Tensor) -> torch.Tensor:
    return F.hardswish(x)


def clamp(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.clamp(x, low, high)


def mish(x: torch.Tensor) -> torch.Tensor:
    return F.mish(x)


def add_fp16(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x + y


def gelu_tanh_fp16(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def one_tensor(shape, g):
    return (randn(shape, g),)


def two_tensors(shape, g):
    return (randn(shape, g), randn(shape, g))


def one_half_tensor(shape, g):
    return (randn(shape, g, torch.float16),)


def two_half_tensors(shape, g):
    return (randn(shape, g, torch.float16), randn(shape, g, torch.float16))


def with_slope(shape, g):
    return (randn(shape, g), float(rand((1,), g, 0.01, 0.3)))


def with_scale_shift(shape, g):
    return (randn(shape, g), float(rand((1,), g, -2.0, 2.0)), float(rand((1,), g, -1.0, 1.0)))


def with_bounds(shape, g):
    return (randn(shape, g), float(rand((1,), g, -1.0, -0.1)), float(rand((1,), g, 0.1, 1.0)))


def with_alpha(shape, g):
    return (randn(shape, g), float(rand((1,), g, 0.5, 1.5)))


def _problem(reference, make_inputs, split):
    return Problem(reference, make_inputs, ELEMENTWISE_SHAPES, split, "elementwise", ELEMENTWISE_BENCHMARK)


PROBLEMS = [
    _problem(relu, one_tensor, "train"),
    _problem(leaky_relu, with_slope, "train"),
    _problem(add, two_tensors, "train"),
    _problem(scale_shift, with_scale_shift, "train"),
    _problem(sigmoid, one_tensor, "train"),
    _problem(gelu, one_tensor, "train"),
    _problem(silu, one_tensor, "train"),
    _problem(mul, two_tensors, "test"),
    _problem(abs_diff, two_tensors, "test"),
    _problem(tanh, one_tensor, "test"),
    _problem(elu, with_alpha, "test"),
    _problem(softplus, one_tensor, "test"),
    _problem(hardswish, one_tensor, "test"),
    _problem(clamp, with_bounds, "test"),
    _problem(mish, one_tensor, "test"),
    _problem(add_fp16, two_half_tensors, "test"),
    _problem(gelu_tanh_fp16, one_half_tensor, "test"),
]
