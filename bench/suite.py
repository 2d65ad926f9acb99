"""The suite's own benchmark: ``./scripts/test.sh`` on a quiet machine, then again beside
CPU-bound processes (each ``python -c 'while True: pass'``, started before a run and stopped
after it), printing each run's wall time, its counts and what failed.

    .venv/bin/python -m bench.suite                       # 1 quiet run, 5 beside 2 hogs
    .venv/bin/python -m bench.suite --quiet 0 --loaded 1 --hogs 2
    .venv/bin/python -m bench.suite --command ".venv/bin/python -m pytest -q tests/trainer"

Targets (issue 22): quiet at most 8 minutes; 5 of 5 green beside two hogs, each at most 15.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTED = ("passed", "failed", "skipped", "error", "errors", "xfailed", "xpassed")


@dataclass
class SuiteRun:
    label: str
    wall_s: float
    returncode: int
    counts: dict[str, int]
    failed: list[str] = field(default_factory=list)
    load: float = 0.0

    @property
    def green(self) -> bool:
        return self.returncode == 0 and not self.failed and self.counts.get("passed", 0) > 0

    def line(self) -> str:
        counts = ", ".join(f"{n} {what}" for what, n in self.counts.items()) or "no summary"
        minutes, seconds = divmod(round(self.wall_s), 60)
        verdict = "green" if self.green else f"RED (exit {self.returncode})"
        return (
            f"{self.label:<14} {minutes:>2}:{seconds:02d} wall  {verdict:<14} {counts}"
            f"  (load {self.load:.1f})"
        )


def summary_counts(output: str) -> dict[str, int]:
    """The counts on pytest's last summary line ('2 failed, 497 passed, 1 skipped in ...')."""
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    if not lines:
        return {}
    found = re.findall(r"(\d+) (\w+)", lines[-1])
    return {what: int(n) for n, what in found if what in COUNTED}


@contextmanager
def hogs(count: int) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def run_suite(command: list[str], label: str, hog_count: int) -> SuiteRun:
    with hogs(hog_count):
        started = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        load = os.getloadavg()[0]
    output = proc.stdout + proc.stderr
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    return SuiteRun(label, wall, proc.returncode, summary_counts(output), failed, load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", type=int, default=1, help="runs with nothing beside them")
    parser.add_argument("--loaded", type=int, default=5, help="runs beside the hogs")
    parser.add_argument("--hogs", type=int, default=2, help="CPU-bound processes beside")
    parser.add_argument("--command", default="./scripts/test.sh", help="the suite's command")
    args = parser.parse_args(argv)
    command = shlex.split(args.command)
    print(f"suite: {args.command} on {os.cpu_count()} cores", flush=True)
    runs = []
    beside = f"{args.hogs} hog{'s' if args.hogs != 1 else ''}"
    plan = [("quiet", 0)] * args.quiet + [(beside, args.hogs)] * args.loaded
    for i, (kind, hog_count) in enumerate(plan, 1):
        run = run_suite(command, f"{i}. {kind}", hog_count)
        runs.append(run)
        print(run.line(), flush=True)
        for name in run.failed:
            print(f"{'':<14} failed: {name}", flush=True)
    for kind in dict.fromkeys(k for k, _ in plan):
        of_kind = [r for r in runs if r.label.endswith(kind)]
        green = sum(r.green for r in of_kind)
        longest = max(r.wall_s for r in of_kind)
        print(f"{kind}: {green} of {len(of_kind)} green, longest {longest / 60:.1f} min")
    return 0 if all(r.green for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
