"""One small handler per command; :mod:`harness.cli.parser` declares each command's arguments."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from harness.errors import EXIT_FAILED, EXIT_OK, InputError, unknown

if TYPE_CHECKING:
    from harness.plan.suite import Suite
    from harness.registry import Registry
    from harness.runner import RunRequest


def load(path: Path) -> tuple[Suite, Registry]:
    """The suite at ``path`` read against the registry (the core's and every plug-in's entries)."""
    from harness.plan.suite import load_suite
    from harness.registry import build_registry

    registry = build_registry()
    return load_suite(path, registry), registry


def validate(args: argparse.Namespace, console: Console) -> int:
    from harness.plan.suite import check_suite

    for path in args.suites:
        suite, registry = load(path)
        check_suite(suite, registry)
        console.print(
            f"[green]ok[/] {path}: {len(suite.configs)} configurations, {len(suite.prompts)} prompts x "
            f"{len(suite.seeds)} seeds, reference {suite.reference!r}",
            highlight=False,
        )
    return EXIT_OK


def _request(args: argparse.Namespace, suite: Suite) -> RunRequest:
    from harness.runner import RunRequest

    return RunRequest(
        suite=suite,
        configs=tuple(getattr(args, "config", ()) or ()),
        out_dir=getattr(args, "out", None),
        reports_root=getattr(args, "reports", Path("reports")),
        device=args.device,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        isolate=getattr(args, "isolate", False),
        use_cache=not getattr(args, "no_cache", False),
        baseline=getattr(args, "baseline", None),
        timing_repeats=_timing_repeats(args),
        references=getattr(args, "references", None),
        sequential=getattr(args, "sequential", None),
    )


def _timing_repeats(args: argparse.Namespace) -> int | None:
    """``--timing-repeats N``; unset: none, or with a baseline ``None`` (what the speed gate needs)."""
    repeats = getattr(args, "timing_repeats", None)
    if repeats is not None:
        return max(0, repeats)
    return None if getattr(args, "baseline", None) is not None else 0


def bless(args: argparse.Namespace, console: Console) -> int:
    from harness.plan.suite import check_suite
    from harness.runner import BlessError, Runner

    suite, registry = load(args.suite)
    check_suite(suite, registry)
    try:
        manifest = Runner(registry).bless(_request(args, suite))
    except BlessError as error:
        console.print(f"[bold red]bless failed:[/] {error}", highlight=False)
        return EXIT_FAILED
    console.print(
        f"[green]blessed[/] {len(manifest.images)} reference images into {suite.references_dir}", highlight=False
    )
    return EXIT_OK


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.plan.suite import check_suite
    from harness.references.source import ReferenceFailure
    from harness.report.console import print_summary
    from harness.runner import Runner

    suite, registry = load(args.suite)
    check_suite(suite, registry)
    try:
        output = Runner(registry).run(_request(args, suite))
    except ReferenceFailure as error:
        console.print(f"[bold red]FAIL:[/] {error}", highlight=False)
        return EXIT_FAILED
    if not output.main:
        return output.code  # another rank of a multi-process run: rank 0 writes the reports
    print_summary(output.result, console)
    console.print(f"report: {output.run_dir / 'report.html'}", highlight=False)
    console.print(f"results: {output.run_dir / 'results.json'}", highlight=False)
    return output.code


def report(args: argparse.Namespace, console: Console) -> int:
    from harness.report import write_reports
    from harness.report.console import print_summary
    from harness.results import read_results

    result = read_results(args.run_dir)
    paths = write_reports(result, args.run_dir)
    print_summary(result, console)
    console.print(f"report: {paths['html']}", highlight=False)
    return int(result.exit_code or 0)


def blame(args: argparse.Namespace, console: Console) -> int:
    """Blame, sensitivity or a recipe for one configuration of a finished run; the reports are re-rendered."""
    from harness.blame.parts import LEVELS
    from harness.blame.run import BlameRequest, write_blame
    from harness.blame.run import blame as blame_parts
    from harness.registry import build_registry
    from harness.report import write_reports
    from harness.results import read_results

    levels = tuple(level.strip() for level in args.levels.split(",") if level.strip())
    for level in levels:
        if level not in LEVELS:
            raise InputError(unknown("level", level, LEVELS) + " (in --levels)")
    request = BlameRequest(
        run_dir=args.run_dir,
        config=args.config,
        samples=args.samples,
        levels=levels,
        sensitivity=args.sensitivity or args.recipe,
        device=args.device,
        cache_dir=args.cache_dir,
    )
    registry = build_registry()
    with console.status("blaming") as status:
        if args.recipe:
            from harness.blame.recipe import recipe, write_recipe

            record = recipe(request, registry, args.keep_type, lambda part: status.update(f"part: {part}"))
            path = write_recipe(record, args.run_dir)
        else:
            record = blame_parts(request, registry, lambda part: status.update(f"part: {part}"))
            path = write_blame(record, args.run_dir)
    print_blame(record, console)
    write_reports(read_results(args.run_dir), args.run_dir)
    console.print(f"written: {path}; report: {args.run_dir / 'report.html'}", highlight=False)
    return EXIT_OK


def print_blame(record: dict[str, Any], console: Console) -> None:
    from rich.table import Table

    from harness.report.blame import blame_rows

    for title, rows in blame_rows(record):
        table = Table(title=title, header_style="bold")
        for column in rows[0]:
            table.add_column(column, justify="left" if column in ("part", "level") else "right")
        for row in rows[1:]:
            table.add_row(*row)
        console.print(table)
    if record.get("recipe"):
        console.print(record["recipe"]["toml"], highlight=False, markup=False)


def ranges(args: argparse.Namespace, console: Console) -> int:
    from harness.kinds.int8.ranges import read_ranges, scaled, write_ranges

    if args.ranges_command == "show":
        found = read_ranges(args.file)
        widths = sorted(r.high - r.low for r in found.values())
        console.print(f"{args.file}: {len(found)} ranges", highlight=False)
        if widths:
            console.print(
                f"width min {widths[0]:.4g}, median {widths[len(widths) // 2]:.4g}, max {widths[-1]:.4g}",
                highlight=False,
            )
        return EXIT_OK
    if args.ranges_command == "scale":
        write_ranges(scaled(read_ranges(args.source), args.factor), args.target)
        console.print(f"wrote {args.target} (ranges x {args.factor:g})", highlight=False)
        return EXIT_OK
    return prepare(args, console)


def prepare(args: argparse.Namespace, console: Console) -> int:
    """A configuration kind's own preparation (ConfigKind.prepare): int8 calibrates and writes its range file."""
    from harness.prepare import prepare_config

    suite, registry = load(args.suite)
    console.print(prepare_config(suite, registry, args.config, args.device, args.cache_dir), highlight=False)
    return EXIT_OK


def compare(args: argparse.Namespace, console: Console) -> int:
    from harness.errors import Where
    from harness.judge.compare import compare_runs
    from harness.plan.tolerance import Tolerance, regression_tolerances
    from harness.registry import build_registry
    from harness.report.compare import print_comparison, write_comparison
    from harness.results import read_results

    baseline, current = read_results(args.baseline), read_results(args.current)
    if args.suite:
        suite, _ = load(args.suite)
        tolerances = dict(suite.regression)
    else:  # the tolerances the current run's suite declared (results.json keeps them), else the defaults
        stored = current.suite.get("regression") or {}
        tolerances = {name: Tolerance.from_dict(data) for name, data in stored.items()}
        if not stored:
            names = list(current.suite.get("metrics", {}))
            tolerances = regression_tolerances({}, Where(args.current), names, build_registry().metrics)
    comparison = compare_runs(current, baseline, tolerances, str(args.baseline))
    # Never into either run: they are only read.
    out = args.out or Path("reports") / "comparisons" / f"{current.run_id}-vs-{baseline.run_id}"
    paths = write_comparison(comparison, current, out)
    print_comparison(comparison, console)
    console.print(f"comparison: {paths['html']}", highlight=False)
    return EXIT_FAILED if comparison.regressions else EXIT_OK


def history(args: argparse.Namespace, console: Console) -> int:
    from harness.report.history import collect, render_history

    points = collect(args.folder)
    out = args.out or (args.folder / "history.html")
    out.write_text(render_history(points), encoding="utf-8")
    console.print(f"history of {len(points)} runs: {out}", highlight=False)
    return EXIT_OK


def export(args: argparse.Namespace, console: Console) -> int:
    from safetensors.torch import save_file

    from harness.convert.ldm import pipeline_to_ldm
    from harness.environment import quiet_libraries
    from harness.errors import Where
    from harness.generate.loading import load_pipeline
    from harness.plan.source import parse_source
    from harness.registry import build_registry

    quiet_libraries()
    registry = build_registry()
    text = args.pipeline if args.pipeline.startswith(("builtin:", "/", ".", "~")) else "./" + args.pipeline
    source = parse_source(text, Where("command line", "pipeline"), Path.cwd(), None, None, registry)
    loaded = load_pipeline(source, Where("command line"), registry)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_file(pipeline_to_ldm(loaded.pipe), str(args.output))
    console.print(f"wrote {args.output}", highlight=False)
    if args.config_out:
        loaded.pipe.save_pretrained(args.config_out)
        for weights in list(args.config_out.rglob("*.safetensors")) + list(args.config_out.rglob("*.bin")):
            weights.unlink()
        console.print(f"wrote configs (no weights) to {args.config_out}: use it as pipeline_config", highlight=False)
    return EXIT_OK
