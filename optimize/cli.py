"""The ``retention`` command: a thin layer over the planner's Python functions.

Each subcommand parses its arguments, calls one function of :mod:`sim` or
:mod:`optimize`, and turns the planner's mistakes into messages and exit codes.
A mistake in a file or an argument never prints a Python traceback; an internal
error does only with ``--verbose``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from sim import __version__
from sim.scenario import ScenarioError, json_schema, load_scenario

EXIT_OK = 0
EXIT_INVALID_INPUT = 1
"""A scenario, allocation or data file has problems; every one is listed."""
EXIT_USAGE = 2
"""The command line itself is wrong (unknown option, missing argument)."""
EXIT_INTERNAL = 70
"""A bug in the planner, not in the input: rerun with --verbose and report the traceback."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C; nothing half-written is left behind."""

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_INVALID_INPUT}    invalid input: a scenario or data file has problems (each is listed with file, line and fix)
  {EXIT_USAGE}    usage error on the command line
  {EXIT_INTERNAL}   internal error (a bug): rerun with --verbose and report the traceback
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"""

log = logging.getLogger("retention")


class _Console:
    """Where the command writes: results to stdout, problems to stderr; --quiet keeps only problems."""

    def __init__(self, quiet: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.quiet = quiet
        self.out = out
        self.err = err

    def info(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out)

    def data(self, text: str) -> None:
        print(text, file=self.out)

    def problem(self, text: str) -> None:
        print(text, file=self.err)


def _cmd_validate(args: argparse.Namespace, console: _Console) -> int:
    status = EXIT_OK
    for file in args.files:
        try:
            scenario = load_scenario(file)
        except ScenarioError as exc:
            console.problem(f"{file}: invalid, {exc}")
            status = EXIT_INVALID_INPUT
            continue
        console.info(f"{file}: valid - '{scenario.meta.name}', {len(scenario.tiers)} tiers, "
                     f"{scenario.total_lines:,} lines, {len(scenario.levers)} levers, "
                     f"budget {scenario.budget.total:,.0f} {scenario.meta.currency} over "
                     f"{scenario.meta.horizon_months} months")
    return status


def _cmd_schema(args: argparse.Namespace, console: _Console) -> int:
    text = json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        console.info(f"schema written to {args.out}")
    else:
        console.data(text.rstrip("\n"))
    return EXIT_OK


Handler = Callable[[argparse.Namespace, _Console], int]


def build_parser() -> argparse.ArgumentParser:
    def noise_options(default: object) -> argparse.ArgumentParser:
        # Subcommands repeat -q/-v with suppressed defaults, so `retention -q validate` keeps -q.
        holder = argparse.ArgumentParser(add_help=False)
        group = holder.add_mutually_exclusive_group()
        group.add_argument("-q", "--quiet", action="store_true", default=default, help="print only problems")
        group.add_argument("-v", "--verbose", action="store_true", default=default,
                           help="print progress details (and tracebacks of internal errors)")
        return holder

    common = noise_options(argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="retention",
        description="Plan where retention money goes: simulate churn, allocate the budget, compare strategies.",
        epilog="examples:\n  retention validate scenarios/baseline.yaml\n  retention schema --out scenario.schema.json\n\n"
               + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[noise_options(False)],
    )
    parser.add_argument("--version", action="version", version=f"retention {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, example: str, handler: Handler) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, description=summary, parents=[common],
                           epilog=f"example:\n  {example}\n\n{EXIT_CODES_HELP}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    p = command("validate", "check scenario files and list every problem with its line and fix",
                "retention validate scenarios/*.yaml", _cmd_validate)
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (YAML)")

    p = command("schema", "print the JSON Schema of the scenario format (for editor validation)",
                "retention schema --out scenarios/scenario.schema.json", _cmd_schema)
    p.add_argument("--out", metavar="FILE", help="write the schema to FILE instead of printing it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    console = _Console(quiet=args.quiet)
    try:
        return int(args.handler(args, console))
    except ScenarioError as exc:
        console.problem(str(exc))
        return EXIT_INVALID_INPUT
    except KeyboardInterrupt:
        console.problem("interrupted; nothing half-written was kept")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug, not a user mistake: say so without a wall of text
        if args.verbose:
            raise
        console.problem(f"internal error: {type(exc).__name__}: {exc}\n"
                        "This is a bug in the planner, not in your input. Rerun with --verbose and report the traceback.")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
