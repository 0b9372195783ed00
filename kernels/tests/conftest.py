"""A runner subprocess shared by the tests of a session."""
from __future__ import annotations

from typing import Iterator

import pytest

from .runner_process import RunnerProcess


@pytest.fixture(scope="session")
def runner() -> Iterator[RunnerProcess]:
    process = RunnerProcess("--time-limit", "20", "--memory-mb", "512")
    yield process
    process.close()
