"""The runner on this machine's GPU, end to end: `scripts/device-runner-check.sh` (run from the repository root).

Four sweeps through the real runner process, with the runtime reward timed on the GPU (the replay of each
candidate's traced call on fresh benchmark-size inputs, `timed_replay.py`):
1. every data-set solution: formatting, compilation and correctness 1, no hack, a runtime score in (0, 1);
2. the hack catalogue: correctness 0 and runtime 0 for each, with the findings the catalogue expects;
3. one kernel (relu) launched 1, 4 and 16 times in its wrapper, graded one at a time: the runtime scores must
   fall in that order;
4. the timing attacks (`timing_attacks.py`), through a second runner with the allow-list skipped, one at a
   time beside the honest relu: none may raise the speedup or get timed where it must not.

On a machine without a GPU the runner has no default runtime device: sweeps 1 and 2 then run with runtime
"off" (the timing checks are reported as not run, never as passed) and sweeps 3 and 4 time the interpreter on
the CPU ("cpu" mode), which exercises the checks but says nothing about kernel speed.

Writes a JSON report to $OUT/device-runner-check.json when OUT is set (after every sweep, so a run cut short
still leaves what it learnt), prints a summary, and exits 1 when any check fails.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kernels.dataset import ALL_PROBLEMS

from .hack_catalogue import HACKS
from .runner_process import RunnerProcess, scores, tagged
from .timing_attacks import HONEST as TIMING_HONEST
from .timing_attacks import TIMING_ATTACKS, forgery, speedup_of

# The data set's relu solution with its one launch repeated: only the number of launches differs, so the order
# of the runtime scores is known in advance on any device.
RELU = ALL_PROBLEMS["relu"].solution()
RELU_LAUNCH = "    relu_kernel[grid](x, out, n_elements, BLOCK_SIZE=1024)\n"
LAUNCH_COUNTS = (1, 4, 16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 2))
    parser.add_argument("--time-limit", type=float, default=60.0, help="the runner's seconds per sandboxed run")
    args = parser.parse_args()
    out_dir = os.environ.get("OUT")
    report_path = Path(out_dir) / "device-runner-check.json" if out_dir else None
    started = time.perf_counter()
    runner = RunnerProcess("--workers", str(args.workers), "--time-limit", str(args.time_limit))
    device = runner.hello["runtime_device"]  # "cuda" where the runner sees a GPU, else None
    sweep_device = device or "off"
    # The solutions and hacks are graded --workers at a time, so their runtime scores were timed while other
    # candidates ran; the ordering variants are graded one at a time.
    report: dict[str, Any] = {"environment": _environment(), "runner": runner.hello, "runtime_device": sweep_device,
                              "concurrent_workers": args.workers, "checks": {}}

    def save() -> None:
        report["wall_s"] = round(time.perf_counter() - started, 2)
        if report_path is not None:
            report_path.write_text(json.dumps(report, indent=1))

    try:
        names = sorted(ALL_PROBLEMS)
        results = runner.evaluate_many([(n, tagged(ALL_PROBLEMS[n].solution())) for n in names], runtime_device=sweep_device)
        report["checks"]["solutions"] = _solutions(names, results, timed=device is not None)
        save()
        results = runner.evaluate_many([(h.problem, tagged(h.code)) for h in HACKS], runtime_device=sweep_device)
        report["checks"]["hacks"] = _hacks(results)
        save()
        order_device = device or "cpu"
        variants = [_relu_launched(n) for n in LAUNCH_COUNTS]
        # One at a time: candidates timed side by side on one device would share it.
        results = [runner.evaluate("relu", tagged(code), runtime_device=order_device) for code in variants]
        report["checks"]["ordering"] = _ordering(results, order_device)
        save()
    finally:
        runner.close()
    unguarded = RunnerProcess("--workers", "1", "--time-limit", str(args.time_limit), "--unsafe-skip-allow-list")
    try:
        honest = unguarded.evaluate("relu", tagged(TIMING_HONEST), runtime_device=order_device)
        attacks = [unguarded.evaluate("relu", tagged(attack.code), runtime_device=order_device) for attack in TIMING_ATTACKS]
        report["checks"]["timing_attacks"] = _timing_attacks(honest, attacks, order_device)
        save()
    finally:
        unguarded.close()
    report["ok"] = all(check["ok"] for check in report["checks"].values())
    save()
    _print_summary(report, report_path)
    return 0 if report["ok"] else 1


def _relu_launched(times: int) -> str:
    if RELU_LAUNCH not in RELU:
        raise ValueError("the relu solution no longer has the launch line the ordering check repeats")
    return RELU.replace(RELU_LAUNCH, f"    for launch in range({times}):\n    " + RELU_LAUNCH)


def _candidate(name: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "scores": scores(result), "runtime": result["rewards"]["runtime"]["reason"], "hacks": result["hacks"],
            "sandbox": result.get("sandbox"), "seconds": result.get("seconds")}


def _solutions(names: list[str], results: list[dict[str, Any]], timed: bool) -> dict[str, Any]:
    candidates, failures = [], []
    for name, result in zip(names, results):
        candidate = _candidate(name, result)
        candidates.append(candidate)
        got = candidate["scores"]
        if {k: got[k] for k in ("formatting", "compilation", "correctness")} != {"formatting": 1.0, "compilation": 1.0, "correctness": 1.0} or result["hacks"]:
            failures.append(f"{name}: {got}, hacks {result['hacks']}: {result['rewards']['correctness']['reason'][:300]}")
        elif timed and not (math.isfinite(got["runtime"]) and 0.0 < got["runtime"] < 1.0):
            failures.append(f"{name}: runtime {got['runtime']}: {candidate['runtime'][:300]}")
    seconds = [c["seconds"] for c in candidates if isinstance(c["seconds"], (int, float))]
    return {"ok": not failures, "count": len(names), "failures": failures,
            "runtime_checked": timed, "runtime_not_checked_because": None if timed else "the runner sees no GPU (runtime 'off')",
            "seconds_per_candidate": _spread(seconds), "candidates": candidates}


def _hacks(results: list[dict[str, Any]]) -> dict[str, Any]:
    candidates, failures = [], []
    for hack, result in zip(HACKS, results):
        candidate = _candidate(hack.name, result)
        candidates.append(candidate)
        kinds = {violation.split(":")[0] for violation in result["hacks"]}
        if candidate["scores"]["correctness"] != 0.0 or candidate["scores"]["runtime"] != 0.0 or not hack.expected <= kinds:
            failures.append(f"{hack.name}: {candidate['scores']}, found {sorted(kinds)}, expected {sorted(hack.expected)}")
    return {"ok": not failures, "count": len(HACKS), "caught": len(HACKS) - len(failures), "failures": failures, "candidates": candidates}


def _ordering(results: list[dict[str, Any]], device: str) -> dict[str, Any]:
    candidates = [_candidate(f"relu launched {n}x", r) for n, r in zip(LAUNCH_COUNTS, results)]
    runtime = [c["scores"]["runtime"] for c in candidates]
    strictly_falling = all(a > b for a, b in zip(runtime, runtime[1:])) and runtime[-1] > 0.0
    return {"ok": strictly_falling, "device": device, "launches": list(LAUNCH_COUNTS), "runtime_scores": runtime,
            "note": "interpreter on the CPU: checks the ordering mechanism, not kernel speed" if device == "cpu" else None,
            "candidates": candidates}


def _timing_attacks(honest: dict[str, Any], results: list[dict[str, Any]], device: str) -> dict[str, Any]:
    speedup = speedup_of(honest)
    candidates = [_candidate("honest relu", honest)] + [_candidate(a.name, r) for a, r in zip(TIMING_ATTACKS, results)]
    if speedup is None:
        return {"ok": False, "device": device, "failures": [f"the honest relu was not timed: {honest['rewards']['runtime']}"],
                "candidates": candidates}
    failures = [f"{attack.name}: {problem}" for attack, result in zip(TIMING_ATTACKS, results)
                if (problem := forgery(attack, result, speedup)) is not None]
    return {"ok": not failures, "device": device, "honest_speedup": speedup, "count": len(TIMING_ATTACKS),
            "failures": failures, "candidates": candidates}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "total": round(sum(values), 2)}


def _environment() -> dict[str, Any]:
    import numpy
    import torch
    import triton

    environment: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "triton": triton.__version__,
                                   "numpy": numpy.__version__, "machine": platform.machine(), "cpus": os.cpu_count()}
    # Asked in a child: this process then stays free of CUDA state, like the runner.
    probe = "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    environment["gpu"] = done.stdout.strip() or None
    return environment


def _print_summary(report: dict[str, Any], report_path: Path | None) -> None:
    checks = report["checks"]
    print(f"environment: {json.dumps(report['environment'])}")
    print(f"runner: isolation {report['runner'].get('isolation')}, runtime device {report['runtime_device']}")
    solutions = checks["solutions"]
    print(f"solutions: {solutions['count'] - len(solutions['failures'])}/{solutions['count']} pass "
          f"(runtime {'checked' if solutions['runtime_checked'] else 'not checked: ' + solutions['runtime_not_checked_because']}); "
          f"seconds per candidate {solutions['seconds_per_candidate']}")
    print(f"hacks: {checks['hacks']['caught']}/{checks['hacks']['count']} caught")
    print(f"ordering on {checks['ordering']['device']}: launches {checks['ordering']['launches']} -> runtime scores "
          f"{checks['ordering']['runtime_scores']}: {'ok' if checks['ordering']['ok'] else 'NOT ordered'}")
    attacks = checks["timing_attacks"]
    print(f"timing attacks on {attacks['device']}: {attacks.get('count', len(TIMING_ATTACKS)) - len(attacks['failures'])}/"
          f"{len(TIMING_ATTACKS)} without effect (honest relu {attacks.get('honest_speedup')}x)")
    for name, check in checks.items():
        for failure in check.get("failures", []):
            print(f"FAIL {name}: {failure}")
    print(f"{'ok' if report['ok'] else 'FAILED'} in {report['wall_s']} s" + (f"; report: {report_path}" if report_path else ""))


if __name__ == "__main__":
    sys.exit(main())
