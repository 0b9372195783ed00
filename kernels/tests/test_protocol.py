"""The runner answers every request line exactly once, whatever the line holds, and keeps serving."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from kernels.dataset import get_problem

from .runner_process import RunnerProcess, tagged

MAX_LINE = 4096


@pytest.fixture(scope="module")
def small_lines() -> Iterator[RunnerProcess]:
    process = RunnerProcess("--time-limit", "20", "--max-line-bytes", str(MAX_LINE))
    yield process
    process.close()


def answers_until_pong(runner: RunnerProcess, pong_id: int) -> list[dict[str, Any]]:
    runner.send({"type": "ping", "id": pong_id})
    answers = []
    while True:
        answers.append(runner.read())
        if answers[-1] == {"type": "pong", "id": pong_id}:
            return answers[:-1]


def evaluate(request_id: int, **fields: Any) -> bytes:
    request = {"type": "evaluate", "id": request_id, "problem": "relu", "completion": "no code", **fields}
    return (json.dumps(request) + "\n").encode()


def test_a_line_that_is_not_utf8_gets_one_error(small_lines: RunnerProcess) -> None:
    small_lines.send_raw(b'{"type": "ping", "id": 1, "note": "\xff\xfe"}\n')
    (answer,) = answers_until_pong(small_lines, 100)
    assert answer["type"] == "error" and answer["field"] == "line" and "utf-8" in answer["error"], answer


def test_an_over_long_line_gets_one_error_and_the_next_line_is_served(small_lines: RunnerProcess) -> None:
    long_request = evaluate(2, completion="x" * (3 * MAX_LINE))
    small_lines.send_raw(long_request + evaluate(3, problem="no_such_problem"))
    first, second = answers_until_pong(small_lines, 101)
    assert first == {"type": "error", "id": None, "field": "line", "error": f"request line longer than {MAX_LINE} bytes"}
    assert second["id"] == 3 and second["field"] == "problem"
    # The runner still grades.
    result = small_lines.evaluate("relu", tagged(get_problem("relu").solution()))
    assert result["rewards"]["correctness"]["score"] == 1.0


@pytest.mark.parametrize("fields, field", [
    ({"problem": "no_such_problem"}, "problem"),
    ({"problem": 7}, "problem"),
    ({"seed": "1"}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": True}, "seed"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**40}, "seed"),
    ({"completion": None}, "completion"),
    ({"runtime_device": "tpu"}, "runtime_device"),
])
def test_a_bad_field_gets_one_error_naming_it(small_lines: RunnerProcess, fields: dict[str, Any], field: str) -> None:
    small_lines.send_raw(evaluate(4, **fields))
    (answer,) = answers_until_pong(small_lines, 102)
    assert answer["type"] == "error" and answer["id"] == 4 and answer["field"] == field, answer
    assert answer["error"].startswith(f"{field}: "), answer


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n", b'"text"\n', b"{\"type\": \"evaluate\", \"id\": \n"])
def test_a_line_that_is_not_a_json_object_gets_one_error(small_lines: RunnerProcess, line: bytes) -> None:
    small_lines.send_raw(line)
    (answer,) = answers_until_pong(small_lines, 103)
    assert answer["type"] == "error" and answer["field"] == "line", answer
