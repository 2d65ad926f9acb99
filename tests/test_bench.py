"""The benchmark script runs and prints the figures it promises (tiny settings)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_train_speed_prints_both_timings_ratio_and_accuracies() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "train_speed.py"),
            "--data",
            "digits",
            "--epochs",
            "3",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    seed = re.search(
        r"seed loop :\s+([\d.]+) s/epoch\s+final val accuracy\s+([\d.]+)%", proc.stdout
    )
    ours = re.search(
        r"fitlens   :\s+([\d.]+) s/epoch\s+final val accuracy\s+([\d.]+)%", proc.stdout
    )
    ratio = re.search(r"speed-up  :\s+([\d.]+)x", proc.stdout)
    assert seed and ours and ratio, proc.stdout
    assert float(seed.group(1)) > 0 and float(ours.group(1)) > 0
    # The printed ratio is the quotient of the two printed timings (up to their rounding).
    expected = float(seed.group(1)) / float(ours.group(1))
    assert abs(float(ratio.group(1)) - expected) <= 0.05 * expected
    assert 50 < float(ours.group(2)) <= 100
