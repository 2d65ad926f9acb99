"""One benchmark on two versions of the code, back to back: before and after a change.

    python -m bench.ab --base 552e48f bench.ingest --batch 1000
    python -m bench.ab --base HEAD~1 --rounds 5 bench.read --points 200000

Checks ``--base`` out into a temporary git worktree and runs ``python -m MODULE ARGS`` there and
in this tree, alternately, ``--rounds`` times (this machine is shared and noisy: alternating
spreads the noise over both). Every number in the benchmark's output is collected by line (a
line is known by its words, its numbers masked); the table shows the median of each number for
the base and for this tree, and their ratio (this tree / base). Whether higher is better is the
benchmark's to say (points/s: higher; ms: lower).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def figures(output: str) -> dict[str, list[float]]:
    """Each line that holds a number, keyed by its text with the numbers masked; a shape seen
    again (the same figure for another database) is keyed with its turn: "... [2]"."""
    found: dict[str, list[float]] = {}
    for line in output.splitlines():
        numbers = NUMBER.findall(line)
        if numbers:
            shape = NUMBER.sub("#", line).strip()
            key, turn = shape, 1
            while key in found:
                turn += 1
                key = f"{shape} [{turn}]"
            found[key] = [float(n.replace(",", "")) for n in numbers]
    return found


def _show(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def run(tree: Path, module: str, args: list[str]) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return figures(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("module", help="e.g. bench.ingest")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own arguments")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fitlens-ab-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(base), opts.base],
            cwd=ROOT,
            check=True,
        )
        try:
            results: dict[str, dict[str, list[list[float]]]] = {"base": {}, "this": {}}
            for round_ in range(opts.rounds):
                for side, tree in (("base", base), ("this", ROOT)):
                    for line, numbers in run(tree, opts.module, opts.args).items():
                        results[side].setdefault(line, []).append(numbers)
                print(f"round {round_ + 1} of {opts.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)

    print(f"{opts.module} {' '.join(opts.args)}: median of {opts.rounds} alternating rounds")
    print(f"base {opts.base} vs this tree; ratio = this / base")
    for line, base_runs in results["base"].items():
        this_runs = results["this"].get(line)
        if not this_runs or len(this_runs[0]) != len(base_runs[0]):
            continue
        cells = []
        for i in range(len(base_runs[0])):
            b = statistics.median(r[i] for r in base_runs)
            t = statistics.median(r[i] for r in this_runs)
            ratio = f"{t / b:.2f}x" if b else "-"
            cells.append(f"{_show(b)} -> {_show(t)} ({ratio})")
        print(f"  {line}\n      " + "; ".join(cells))


if __name__ == "__main__":
    main()
