"""Command line: ``python -m harness run | validate | bless | report | ls``.

Exit codes: 0 every check passed; 1 a check failed or a configuration errored;
2 invalid input (nothing was run, or nothing more once it was found).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from harness.errors import EXIT_FAILED, EXIT_INPUT, EXIT_OK, InputError
from harness.report.console import make_console

if TYPE_CHECKING:
    from harness.kinds.base import ConfigKind
    from harness.metrics.base import Metric
    from harness.plan.suite import Suite
    from harness.runner import RunRequest

EPILOG = """\
examples:
  python -m harness validate suites/smoke.toml
  python -m harness bless suites/smoke.toml
  python -m harness run suites/smoke.toml
  python -m harness run suites/smoke.toml --config fp16 --config bf16 --out /tmp/run
  python -m harness report reports/smoke/20261122-101500-ab12
  python -m harness ls kinds

exit codes: 0 all checks pass, 1 a check failed or a configuration errored, 2 invalid input
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Evaluate quantized and low-precision diffusion configurations against blessed references.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="generate, score and check every configuration of a suite",
        description="Generate every (configuration, prompt, seed) sample, score it against the blessed "
        "references, check the thresholds and write results.json, report.html, summary.md and junit.xml.",
        epilog="example: python -m harness run suites/smoke.toml --config fp16 --device cpu",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("suite", type=Path, help="suite TOML file")
    run.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this configuration (repeatable); configurations its gates compare with (vs) run too, unjudged",
    )
    run.add_argument("--out", type=Path, help="run folder (default: reports/<suite>/<run-id>)")
    run.add_argument("--reports", type=Path, default=Path("reports"), help="root of run folders (default: reports)")
    run.add_argument(
        "--baseline", type=Path, help="a previous run folder or results.json (e.g. main's) to gate regressions against"
    )
    run.add_argument(
        "--timing-repeats",
        type=int,
        metavar="N",
        help="after generating, time N more passes over each configuration's batches: more independent "
        "measurements for the speed gate (default: 0, or with --baseline as many as bring each configuration "
        "to 3 timed calls, at most 4 passes; see docs/regression.md)",
    )
    run.add_argument(
        "--references",
        choices=("blessed", "live"),
        help="blessed: judge against the stored images; live: generate the reference configuration in this run "
        "and judge against its images, reporting the blessed set's drift (default: the suite's reference_images, "
        "else blessed; see docs/regression.md)",
    )
    run.add_argument(
        "--sequential",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop each configuration once every gate is decided by an always-valid interval, or on its first "
        "NaN/blank image; results say how many samples ran and why it stopped (default: the suite's [sequential] "
        "enabled, else off; see docs/sequential.md)",
    )
    run.add_argument(
        "--isolate",
        action="store_true",
        help="run each configuration in its own process, so its peak memory is its own (slower: imports and loads per configuration)",
    )
    _common(run)

    validate = commands.add_parser(
        "validate",
        help="check suites without running anything",
        description="Parse and check suites: keys, kinds, metrics, thresholds, files, transforms. No compute.",
        epilog="example: python -m harness validate suites/*.toml",
    )
    validate.add_argument("suites", type=Path, nargs="+", help="suite TOML files")

    bless = commands.add_parser(
        "bless",
        help="generate and store the reference configuration's images",
        description="Generate the reference configuration's images into the suite's reference folder "
        "(default reference_images/<suite>/) with a manifest.json of hashes and versions.",
        epilog="example: python -m harness bless suites/smoke.toml",
    )
    bless.add_argument("suite", type=Path, help="suite TOML file")
    _common(bless)

    compare = commands.add_parser(
        "compare",
        help="compare two finished runs (baseline first) without regenerating anything",
        description="Compare RUN_B with the baseline RUN_A: per configuration and metric the baseline value, "
        "the current value, the change with its interval, and whether it is past its tolerance.",
        epilog="example: python -m harness compare reports/shapes/main-run reports/shapes/pr-run",
    )
    compare.add_argument("baseline", type=Path, help="baseline run folder or results.json (e.g. main's)")
    compare.add_argument("current", type=Path, help="run folder or results.json to judge")
    compare.add_argument("--suite", type=Path, help="take tolerances from this suite file (default: the current run's)")
    compare.add_argument(
        "--out",
        type=Path,
        help="folder for comparison.html and comparison.md (default: reports/comparisons/<run>-vs-<baseline>; "
        "the two runs are only read)",
    )

    history = commands.add_parser(
        "history",
        help="plot each metric per configuration over a suite's runs",
        epilog="example: python -m harness history reports/shapes/",
    )
    history.add_argument("folder", type=Path, help="a suite's folder of runs, e.g. reports/shapes/")
    history.add_argument("--out", type=Path, help="page to write (default: FOLDER/history.html)")

    report = commands.add_parser(
        "report",
        help="re-render the reports of a finished run from its results.json",
        epilog="example: python -m harness report reports/smoke/20261122-101500-ab12",
    )
    report.add_argument("run_dir", type=Path, help="a run folder (holding results.json)")

    ranges = commands.add_parser(
        "ranges",
        help="int8 range files: calibrate, scale, show",
        description="Work with activation range files (name,min,max per line).",
        epilog="examples:\n  python -m harness ranges calibrate suites/int8_vae.toml --config int8_vae\n"
        "  python -m harness ranges scale suites/ranges/a.txt suites/ranges/a_shrunk.txt --factor 0.1\n"
        "  python -m harness ranges show suites/ranges/a.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ranges_commands = ranges.add_subparsers(dest="ranges_command", required=True, metavar="ACTION")
    calibrate = ranges_commands.add_parser(
        "calibrate", help="run an int8 configuration's calibration and write its range file (= prepare)"
    )
    calibrate.add_argument("suite", type=Path)
    calibrate.add_argument("--config", required=True, metavar="NAME", help="an int8 configuration of the suite")
    _common(calibrate)
    scale = ranges_commands.add_parser(
        "scale", help="multiply every range by a factor (e.g. 0.1 makes a deliberately poor file)"
    )
    scale.add_argument("source", type=Path)
    scale.add_argument("target", type=Path)
    scale.add_argument("--factor", type=float, required=True)
    show = ranges_commands.add_parser("show", help="check a range file and summarise it")
    show.add_argument("file", type=Path)

    prepare = commands.add_parser(
        "prepare",
        help="a configuration's own preparation before runs (int8: calibrate and write its range file)",
        description="Run the preparation step of one configuration's kind, which may write the suite's files "
        "(a run never does): an int8 configuration calibrates and writes its range file.",
        epilog="example: python -m harness prepare suites/int8_vae.toml --config int8_vae",
    )
    prepare.add_argument("suite", type=Path)
    prepare.add_argument("--config", required=True, metavar="NAME", help="a configuration of the suite")
    _common(prepare)

    export = commands.add_parser(
        "export-single-file",
        help="write an SD pipeline as one original-layout checkpoint (and its config folder)",
        description="Convert a diffusers SD pipeline (UNet, VAE, CLIP text encoder) to the original single-file "
        "layout with the harness's key mapping, and write the component configs a single-file load needs offline.",
        epilog="example: python -m harness export-single-file builtin:tiny-sd tiny.safetensors --config-out tiny-config",
    )
    export.add_argument("pipeline", help="builtin:NAME or a local diffusers folder")
    export.add_argument("output", type=Path, help="the .safetensors file to write")
    export.add_argument("--config-out", type=Path, help="also write the configs (no weights) for pipeline_config")

    listing = commands.add_parser("ls", help="list configuration kinds, metrics, built-in pipelines or suites")
    listing.add_argument("what", choices=("kinds", "metrics", "pipelines", "suites"), nargs="?", default="kinds")
    listing.add_argument("--suites-dir", type=Path, default=Path("suites"))
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    parser.add_argument(
        "--batch-size", type=int, help="samples per pipeline call (default: the suite's, else automatic)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(".harness_cache"), help="cache folder (default .harness_cache)"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="regenerate every sample (the cache is still refreshed)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = make_console()
    errors = make_console(stderr=True)
    try:
        return COMMANDS[args.command](args, console)
    except InputError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False, markup=True, soft_wrap=True)
        return EXIT_INPUT


def _load(path: Path) -> tuple[Suite, dict[str, ConfigKind], dict[str, type[Metric]]]:
    from harness.kinds import default_kinds
    from harness.metrics import default_metrics
    from harness.plan.suite import load_suite

    kinds = default_kinds()
    metrics = default_metrics()
    return load_suite(path, kinds, metrics), kinds, metrics


def _validate(args: argparse.Namespace, console: Console) -> int:
    from harness.plan.suite import check_suite

    for path in args.suites:
        suite, kinds, metrics = _load(path)
        check_suite(suite, kinds, metrics)
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


def _bless(args: argparse.Namespace, console: Console) -> int:
    from harness.plan.suite import check_suite
    from harness.runner import BlessError, Runner

    suite, kinds, metrics = _load(args.suite)
    check_suite(suite, kinds, metrics)
    runner = Runner(kinds, metrics)
    try:
        manifest = runner.bless(_request(args, suite))
    except BlessError as error:
        console.print(f"[bold red]bless failed:[/] {error}", highlight=False)
        return EXIT_FAILED
    console.print(
        f"[green]blessed[/] {len(manifest.images)} reference images into {suite.references_dir}", highlight=False
    )
    return EXIT_OK


def _run(args: argparse.Namespace, console: Console) -> int:
    from harness.phases import with_report_time
    from harness.plan.suite import check_suite
    from harness.references.source import ReferenceFailure
    from harness.report import write_reports
    from harness.report.console import print_summary
    from harness.results import write_results
    from harness.runner import Runner

    suite, kinds, metrics = _load(args.suite)
    check_suite(suite, kinds, metrics)
    runner = Runner(kinds, metrics)
    try:
        output = runner.run(_request(args, suite))
    except ReferenceFailure as error:
        console.print(f"[bold red]FAIL:[/] {error}", highlight=False)
        return EXIT_FAILED
    if not output.main:
        return output.code  # another rank of a multi-process run: rank 0 writes the reports
    report_start = time.perf_counter()
    paths = write_reports(output.result, output.run_dir)
    result = with_report_time(output.result, time.perf_counter() - report_start)
    write_results(result, output.run_dir / "results.json")
    print_summary(result, console)
    console.print(f"report: {paths['html']}", highlight=False)
    console.print(f"results: {output.run_dir / 'results.json'}", highlight=False)
    return int(result.exit_code or 0)


def _report(args: argparse.Namespace, console: Console) -> int:
    from harness.report import write_reports
    from harness.report.console import print_summary
    from harness.results import read_results

    result = read_results(args.run_dir)
    paths = write_reports(result, args.run_dir)
    print_summary(result, console)
    console.print(f"report: {paths['html']}", highlight=False)
    return int(result.exit_code or 0)


def _ranges(args: argparse.Namespace, console: Console) -> int:
    from harness.kinds.int8.ranges import read_ranges, scaled, write_ranges

    if args.ranges_command == "show":
        ranges = read_ranges(args.file)
        widths = sorted(r.high - r.low for r in ranges.values())
        console.print(f"{args.file}: {len(ranges)} ranges", highlight=False)
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
    return _prepare(args, console)


def _prepare(args: argparse.Namespace, console: Console) -> int:
    """A configuration kind's own preparation (ConfigKind.prepare): int8 calibrates and writes its range file."""
    from harness.prepare import prepare_config

    suite, kinds, _ = _load(args.suite)
    console.print(prepare_config(suite, kinds, args.config, args.device, args.cache_dir), highlight=False)
    return EXIT_OK


def _compare(args: argparse.Namespace, console: Console) -> int:
    from harness.errors import Where
    from harness.judge.compare import Tolerance, compare_runs
    from harness.report.compare import print_comparison, write_comparison
    from harness.results import read_results

    baseline, current = read_results(args.baseline), read_results(args.current)
    if args.suite:
        suite, _, _ = _load(args.suite)
        tolerances = dict(suite.regression)
    else:  # the tolerances the current run's suite declared (results.json keeps them), else the defaults
        from harness.judge.compare import parse_tolerances

        stored = current.suite.get("regression") or {}
        tolerances = {name: Tolerance.from_dict(data) for name, data in stored.items()}
        if not stored:
            tolerances = parse_tolerances({}, Where(args.current), list(current.suite.get("metrics", {})))
    comparison = compare_runs(current, baseline, tolerances, str(args.baseline))
    # Never into either run: they are only read.
    out = args.out or Path("reports") / "comparisons" / f"{current.run_id}-vs-{baseline.run_id}"
    paths = write_comparison(comparison, current, out)
    print_comparison(comparison, console)
    console.print(f"comparison: {paths['html']}", highlight=False)
    return EXIT_FAILED if comparison.regressions else EXIT_OK


def _history(args: argparse.Namespace, console: Console) -> int:
    from harness.report.history import collect, render_history

    points = collect(args.folder)
    out = args.out or (args.folder / "history.html")
    out.write_text(render_history(points), encoding="utf-8")
    console.print(f"history of {len(points)} runs: {out}", highlight=False)
    return EXIT_OK


def _export(args: argparse.Namespace, console: Console) -> int:
    from safetensors.torch import save_file

    from harness.convert.ldm import pipeline_to_ldm
    from harness.environment import quiet_libraries
    from harness.errors import Where
    from harness.pipelines.source import load_pipeline, parse_source

    quiet_libraries()
    text = args.pipeline if args.pipeline.startswith(("builtin:", "/", ".", "~")) else "./" + args.pipeline
    source = parse_source(text, Where("command line", "pipeline"), Path.cwd(), None, None)
    loaded = load_pipeline(source, Where("command line"))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_file(pipeline_to_ldm(loaded.pipe), str(args.output))
    console.print(f"wrote {args.output}", highlight=False)
    if args.config_out:
        loaded.pipe.save_pretrained(args.config_out)
        for weights in list(args.config_out.rglob("*.safetensors")) + list(args.config_out.rglob("*.bin")):
            weights.unlink()
        console.print(f"wrote configs (no weights) to {args.config_out}: use it as pipeline_config", highlight=False)
    return EXIT_OK


def _ls(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    if args.what == "kinds":
        from harness.kinds import default_kinds

        table.add_column("kind")
        table.add_column("what it runs")
        table.add_column("keys")
        for name, kind in default_kinds().items():
            table.add_row(name, kind.summary, ", ".join(kind.keys))
    elif args.what == "metrics":
        from harness.metrics import default_metrics

        table.add_column("metric")
        table.add_column("unit")
        table.add_column("better")
        table.add_column("compares")
        for name, cls in default_metrics().items():
            table.add_row(name, cls.unit, "higher" if cls.higher_is_better else "lower", cls.summary)
    elif args.what == "pipelines":
        from harness.pipelines.builtin import builtin_pipelines

        table.add_column("pipeline")
        table.add_column("description")
        for name, builtin in builtin_pipelines().items():
            table.add_row(f"builtin:{name}", builtin.description)
    else:
        table.add_column("suite")
        table.add_column("description")
        from harness.tomlread import read_toml

        for path in sorted(args.suites_dir.glob("*.toml")):
            try:
                description = str(read_toml(path).get("description", ""))
            except InputError as error:
                description = f"(unreadable: {error})"
            table.add_row(str(path), description)
    console.print(table)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())


# One small handler per command; build_parser() declares each command's arguments.
COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "run": _run,
    "validate": _validate,
    "bless": _bless,
    "compare": _compare,
    "history": _history,
    "report": _report,
    "ranges": _ranges,
    "prepare": _prepare,
    "export-single-file": _export,
    "ls": _ls,
}
