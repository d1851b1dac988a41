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


def test_prepare_names_the_kinds_that_prepare_something(write_suite, capsys):
    """`prepare` runs a kind's own step (ConfigKind.prepare); a kind with none is an input error, not a no-op."""
    path = write_suite()
    assert main(["prepare", str(path), "--config", "bf16", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "'precision' configuration: that kind has nothing to prepare (kinds that do: int8)" in err
    assert main(["prepare", str(path), "--config", "nope", "--device", "cpu"]) == 2
    assert "Unknown configuration 'nope'" in capsys.readouterr().err
