"""Command line: ``python -m trainer run spec.json [--out events.jsonl]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from trainer.spec import JobSpec


def _load_spec(path: str) -> JobSpec:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return JobSpec.model_validate_json(text)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        lines.append(f"  {where}: {err['msg']}")
    return "invalid job spec:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train a job spec, one progress line per epoch")
    run.add_argument("spec", help="JSON job spec file ('-' for stdin)")
    run.add_argument("--out", help="write every event as JSON lines to this file")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    check = sub.add_parser("validate", help="validate a spec and print it with defaults filled")
    check.add_argument("spec")
    compare = sub.add_parser("compare", help="train several specs, then print a summary table")
    compare.add_argument("specs", nargs="+")
    args = parser.parse_args(argv)

    if args.command == "compare":
        return _compare(args.specs)

    try:
        spec = _load_spec(args.spec)
    except ValidationError as exc:
        print(format_validation_error(exc), file=sys.stderr)
        return 2
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read spec {args.spec}: {exc}", file=sys.stderr)
        return 2
    if args.command == "validate":
        print(json.dumps(spec.model_dump(mode="json"), indent=2))
        return 0

    # torch is imported only when there is training to do.
    from trainer.callbacks import Callback, ConsoleProgress, JsonLinesWriter
    from trainer.loop import train

    callbacks: list[Callback] = [] if args.quiet else [ConsoleProgress()]
    out = open(args.out, "w") if args.out else None  # noqa: SIM115 - closed below
    try:
        if out is not None:
            callbacks.append(JsonLinesWriter(out))
        try:
            train(spec, callbacks)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            print(f"training failed: {exc}", file=sys.stderr)
            return 1
    finally:
        if out is not None:
            out.close()
    return 0


def _compare(paths: list[str]) -> int:
    from trainer.callbacks import ConsoleProgress
    from trainer.loop import train

    try:
        specs = [(Path(p).stem, _load_spec(p)) for p in paths]
    except ValidationError as exc:
        print(format_validation_error(exc), file=sys.stderr)
        return 2
    rows = []
    for name, spec in specs:
        result = train(spec, [ConsoleProgress(prefix=f"[{name}] ")])
        last = result.history[-1]
        best = result.history[result.best_epoch - 1]
        rows.append(
            (
                name,
                result.best_epoch,
                best["val_loss"],
                last["gap"],
                last.get("val_accuracy", float("nan")),
            )
        )
    print()
    header = f"{'run':<36} {'best epoch':>10} {'min val loss':>12} {'final gap':>10} {'val acc':>8}"
    print(header)
    print("-" * len(header))
    for name, best_epoch, min_val, gap, acc in rows:
        print(f"{name:<36} {best_epoch:>10} {min_val:>12.4f} {gap:>+10.4f} {100 * acc:>7.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
