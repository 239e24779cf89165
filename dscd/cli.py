"""The ``dscd`` command: thin subcommands that parse, call the library and report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dscd import __version__


class UsageError(Exception):
    """A bad command-line value: printed with the option's name, exit code 2."""


def _cmd_animate(args: argparse.Namespace) -> int:
    from dscd.plots import animate_beta_annealing

    try:
        paths = animate_beta_annealing(args.out, v=args.v, frames=args.frames, fps=args.fps,
                                       domain=(args.lo, args.hi), phi_end=args.phi_end)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from dscd.reproduce import NotebookFailed, reproduce

    try:
        runs = reproduce(profile=args.profile, only=args.only, outputs=args.outputs,
                         notebooks_dir=args.notebooks, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    except NotebookFailed as err:
        print(f"dscd reproduce: {err}", file=sys.stderr)
        return 1
    for run in runs:
        print(f"{run.notebook}: {run.seconds:.1f} s -> {run.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dscd",
        description="FairDARTS with doubly stochastic coordinate descent: regenerate the paper, run its pieces.",
    )
    parser.add_argument("--version", action="version", version=f"dscd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("reproduce", help="execute the numbered notebooks with papermill (figures and tables)")
    p.add_argument("--profile", choices=("smoke", "quick", "paper"), default="quick",
                   help="scale of every notebook: smoke (seconds), quick (CPU, minutes), paper (GPU)")
    p.add_argument("--only", action="append", metavar="NN",
                   help="run only notebook NN (repeatable), e.g. --only 03")
    p.add_argument("--outputs", default="outputs", help="root of the outputs (default: ./outputs)")
    p.add_argument("--notebooks", default=None, help="folder of the notebooks (default: the repository's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("animate", help="animate the beta-annealed proposal (GIF, and MP4 with ffmpeg)")
    p.add_argument("--out", default="beta_annealing.gif", help="output path; the suffix is replaced per format")
    p.add_argument("--v", type=float, default=0.75, help="unit position of the current point (paper: 0.75)")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--fps", type=int, default=12)
    p.add_argument("--phi-end", type=float, default=0.995, help="concentration of the last frame")
    p.add_argument("--lo", type=float, default=-3.0, help="domain lower bound")
    p.add_argument("--hi", type=float, default=3.0, help="domain upper bound")
    p.set_defaults(func=_cmd_animate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as err:
        parser.exit(2, f"dscd {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
