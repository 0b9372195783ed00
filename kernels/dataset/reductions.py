"""Row-wise reductions, softmax and normalisations over the last dimension of a 2-D input."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .problem import Problem, randn

# (rows, columns): column counts that are not powers of two check the masked tail of each row; the first case's
# rows are longer than a fixed block a kernel might assume (a row must be looped over, or its block sized from it).
ROW_SHAPES = [(3, 4099), (13, 100), (7, 257), (32, 33)]
# 16 Mi elements in rows of 4000 (a hidden size that is not a power of two): a row still fits one block.
ROW_BENCHMARK = (4096, 4000)


def row_sum(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=1)


def softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps=1e-5)


def mse_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(x, y)


def row_max(x: torch.Tensor) -> torch.Tensor:
    return x.max(dim=1).values


def row_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1)


def log_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(x, dim=-1)


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-6) * weight


def row_l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, p=2.0, dim=1, eps=1e-12)


def cosine_similarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(x, y, dim=1, eps=1e-8)


def row_argmax(x: torch.Tensor) -> torch.Tensor:
    return torch.argmax(x, dim=1)


def one_matrix(shape, g):
    return (randn(shape, g),)


def two_matrices(shape, g):
    return (randn(shape, g), randn(shape, g))


def matrix_and_affine(shape, g):
    return (randn(shape, g), randn(shape[-1:], g), randn(shape[-1:], g))


def matrix_and_weight(shape, g):
    return (randn(shape, g), randn(shape[-1:], g))


def _problem(reference, make_inputs, split):
    return Problem(reference, make_inputs, ROW_SHAPES, split, "reduction", ROW_BENCHMARK)


PROBLEMS = [
    _problem(row_sum, one_matrix, "train"),
    _problem(softmax, one_matrix, "train"),
    _problem(layer_norm, matrix_and_affine, "train"),
    _problem(mse_loss, two_matrices, "train"),
    _problem(row_max, one_matrix, "test"),
    _problem(row_mean, one_matrix, "test"),
    _problem(log_softmax, one_matrix, "test"),
    _problem(rms_norm, matrix_and_weight, "test"),
    _problem(row_l2_normalize, one_matrix, "test"),
    _problem(cosine_similarity, two_matrices, "test"),
    _problem(row_argmax, one_matrix, "test"),
]
