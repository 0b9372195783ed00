"""Matrix products and the fused epilogues that usually follow them."""
from __future__ import annotations

import torch

from .problem import Problem, randn

# (M, K, N) with the odd sizes a tiled kernel must mask; kept small for the Triton interpreter, except that the
# first case is larger than one tile of a common size along every dimension (its K needs a loop over K).
MATMUL_SHAPES = [(40, 300, 70), (33, 47, 65), (17, 64, 40), (50, 19, 23)]
BATCHED_SHAPES = [(2, 40, 160, 70), (3, 17, 29, 40), (2, 33, 16, 9), (4, 8, 50, 31)]
# Compute-bound products of a few GFLOP (milliseconds in fp32), with sizes that are not multiples of a tile.
MATMUL_BENCHMARK = (1000, 1500, 2000)
BATCHED_BENCHMARK = (8, 500, 700, 600)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x @ weight.t() + bias


def matmul_bias_relu(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.relu(a @ b + bias)


def batched_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.bmm(a, b)


def lower_triangular_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.tril(a @ b)


def matmul_operands(shape, g):
    m, k, n = shape
    return (randn((m, k), g), randn((k, n), g))


def linear_operands(shape, g):
    m, k, n = shape
    return (randn((m, k), g), randn((n, k), g), randn((n,), g))


def matmul_bias_operands(shape, g):
    m, k, n = shape
    return (randn((m, k), g), randn((k, n), g), randn((n,), g))


def batched_operands(shape, g):
    batch, m, k, n = shape
    return (randn((batch, m, k), g), randn((batch, k, n), g))


def square_operands(shape, g):
    m, k, _ = shape
    return (randn((m, k), g), randn((k, m), g))


PROBLEMS = [
    Problem(matmul, matmul_operands, MATMUL_SHAPES, "train", "matmul", MATMUL_BENCHMARK),
    Problem(linear, linear_operands, MATMUL_SHAPES, "test", "matmul", MATMUL_BENCHMARK),
    Problem(matmul_bias_relu, matmul_bias_operands, MATMUL_SHAPES, "test", "matmul", MATMUL_BENCHMARK),
    Problem(batched_matmul, batched_operands, BATCHED_SHAPES, "test", "matmul", BATCHED_BENCHMARK),
    Problem(lower_triangular_matmul, square_operands, MATMUL_SHAPES, "test", "matmul", MATMUL_BENCHMARK),
]
