"""The command line: every command the parser declares has one handler in the table, and the reverse."""

from __future__ import annotations

import argparse

import pytest

from harness.cli import COMMANDS, build_parser, main


def test_every_command_has_a_handler():
    parser = build_parser()
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(subcommands.choices) == set(COMMANDS)


def test_a_command_runs_its_handler(capsys):
    assert main(["ls", "metrics"]) == 0
    assert "psnr" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2 and "COMMAND" in capsys.readouterr().err
