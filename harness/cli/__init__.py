"""Command line: ``python -m harness run | validate | bless | compare | history | report | ranges | prepare |
export-single-file | ls`` (also ``python -m harness.cli ...``).

Exit codes: 0 every check passed; 1 a check failed or a configuration errored;
2 invalid input (nothing was run, or nothing more once it was found).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from rich.console import Console

from harness.cli import commands
from harness.cli.listing import ls
from harness.cli.parser import build_parser
from harness.errors import EXIT_INPUT, InputError
from harness.report.console import make_console

__all__ = ["COMMANDS", "build_parser", "main"]

# The handler of each command that build_parser() declares.
COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "run": commands.run,
    "validate": commands.validate,
    "bless": commands.bless,
    "compare": commands.compare,
    "history": commands.history,
    "report": commands.report,
    "blame": commands.blame,
    "ranges": commands.ranges,
    "prepare": commands.prepare,
    "export-single-file": commands.export,
    "ls": ls,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = make_console()
    errors = make_console(stderr=True)
    try:
        return COMMANDS[args.command](args, console)
    except InputError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False, markup=True, soft_wrap=True)
        return EXIT_INPUT
