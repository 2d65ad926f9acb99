"""What a failed run tells its user: why, but nothing of the worker's file system."""

from __future__ import annotations

from worker.tasks import MAX_REASON, failure_reason


def test_absolute_paths_are_hidden_and_the_rest_kept() -> None:
    exc = FileNotFoundError(
        "[Errno 2] No such file or directory: '/root/.cache/fitlens/data/MNIST/raw/t10k' "
        "(see /etc/fitlens/worker.conf), histograms.3: edges 1/2"
    )
    reason = failure_reason(exc)
    assert reason == (
        "FileNotFoundError: [Errno 2] No such file or directory: '<path>' "
        "(see <path>), histograms.3: edges 1/2"
    )
    assert failure_reason(ValueError("bad spec at /srv/x/y"), "cannot start: ") == (
        "cannot start: bad spec at <path>"
    )


def test_a_reason_is_always_storable() -> None:
    reason = failure_reason(RuntimeError("nul\x00byte " + "x" * 50_000))
    assert "\x00" not in reason
    assert len(reason) == MAX_REASON and reason.endswith("…")
