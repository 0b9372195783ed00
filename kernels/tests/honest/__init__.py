"""Honest solutions in many styles, written apart from the data set's own: the allow-list must reject none of them,
and each must score correctness 1. Together with kernels/dataset/solutions they measure the false-rejection rate.
One module per kind of problem.
"""
from __future__ import annotations

from .elementwise import ELEMENTWISE
from .matrix_products import MATRIX_PRODUCTS
from .rows import ROWS
from .solution import Honest

HONEST: list[Honest] = [*ELEMENTWISE, *ROWS, *MATRIX_PRODUCTS]
