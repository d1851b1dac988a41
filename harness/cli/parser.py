"""The command line's arguments: one small function per command, each declaring its own."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]  # what add_subparsers returns

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
LISTINGS = ("kinds", "metrics", "pipelines", "families", "controls", "keys", "suites")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Evaluate quantized and low-precision diffusion configurations against blessed references.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_run, _validate, _bless, _compare, _history, _report, _blame, _ranges, _prepare, _export, _ls):
        add(commands)
    return parser


def _run(commands: Commands) -> None:
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
        help="run each configuration in its own process, so its peak memory is its own (slower: imports and loads "
        "per configuration)",
    )
    _common(run)


def _validate(commands: Commands) -> None:
    validate = commands.add_parser(
        "validate",
        help="check suites without running anything",
        description="Parse and check suites: keys, kinds, metrics, thresholds, files, transforms. No compute.",
        epilog="example: python -m harness validate suites/*.toml",
    )
    validate.add_argument("suites", type=Path, nargs="+", help="suite TOML files")


def _bless(commands: Commands) -> None:
    bless = commands.add_parser(
        "bless",
        help="generate and store the reference configuration's images",
        description="Generate the reference configuration's images into the suite's reference folder "
        "(default reference_images/<suite>/) with a manifest.json of hashes and versions.",
        epilog="example: python -m harness bless suites/smoke.toml",
    )
    bless.add_argument("suite", type=Path, help="suite TOML file")
    _common(bless)


def _compare(commands: Commands) -> None:
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


def _history(commands: Commands) -> None:
    history = commands.add_parser(
        "history",
        help="plot each metric per configuration over a suite's runs",
        epilog="example: python -m harness history reports/shapes/",
    )
    history.add_argument("folder", type=Path, help="a suite's folder of runs, e.g. reports/shapes/")
    history.add_argument("--out", type=Path, help="page to write (default: FOLDER/history.html)")


def _report(commands: Commands) -> None:
    report = commands.add_parser(
        "report",
        help="re-render the reports of a finished run from its results.json",
        epilog="example: python -m harness report reports/smoke/20261122-101500-ab12",
    )
    report.add_argument("run_dir", type=Path, help="a run folder (holding results.json)")


def _blame(commands: Commands) -> None:
    blame = commands.add_parser(
        "blame",
        help="which part of a configuration cost its quality: components, blocks, tensor groups, ranked",
        description="Rebuild a finished run's configuration and its reference in this process, put each part of "
        "the configuration (a component, a denoiser block, a tensor group such as attention v) back to the "
        "reference's modules in turn, and rank the parts by the PSNR recovered, with 95%% intervals (the unit is "
        "one sample). --sensitivity turns it round: the reference with one part taken from the configuration. "
        "--recipe (GGUF configurations) searches the smallest mix of the configuration's type and --keep-type that "
        "passes the suite's PSNR gates, and verifies it by running it. Writes blame-NAME.json (sensitivity-, "
        "recipe-) into the run folder and re-renders its reports with a section and a chart.",
        epilog="examples:\n  python -m harness blame reports/shapes/RUN --config q4_0\n"
        "  python -m harness blame reports/flux_gguf/RUN --config q4_0 --levels groups --recipe",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    blame.add_argument("run_dir", type=Path, help="a finished run folder (holding results.json)")
    blame.add_argument("--config", required=True, metavar="NAME", help="the configuration to blame")
    blame.add_argument("--samples", type=int, default=8, help="samples (prompt, seed) to generate per part (default 8)")
    blame.add_argument(
        "--levels",
        default="components,blocks,groups",
        help="comma-separated: components, blocks, groups (default: all three)",
    )
    blame.add_argument("--sensitivity", action="store_true", help="lower one part at a time instead")
    blame.add_argument("--recipe", action="store_true", help="GGUF: find and verify the smallest mix that passes")
    blame.add_argument("--keep-type", default="Q8_0", help="the higher GGUF type a recipe keeps parts in (Q8_0)")
    blame.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    blame.add_argument(
        "--cache-dir", type=Path, default=Path(".harness_cache"), help="cache folder (default .harness_cache)"
    )


def _ranges(commands: Commands) -> None:
    ranges = commands.add_parser(
        "ranges",
        help="int8 range files: calibrate, scale, show",
        description="Work with activation range files (name,min,max per line).",
        epilog="examples:\n  python -m harness ranges calibrate suites/int8_vae.toml --config int8_vae\n"
        "  python -m harness ranges scale suites/ranges/a.txt suites/ranges/a_shrunk.txt --factor 0.1\n"
        "  python -m harness ranges show suites/ranges/a.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = ranges.add_subparsers(dest="ranges_command", required=True, metavar="ACTION")
    calibrate = actions.add_parser(
        "calibrate", help="run an int8 configuration's calibration and write its range file (= prepare)"
    )
    calibrate.add_argument("suite", type=Path)
    calibrate.add_argument("--config", required=True, metavar="NAME", help="an int8 configuration of the suite")
    _common(calibrate)
    scale = actions.add_parser(
        "scale", help="multiply every range by a factor (e.g. 0.1 makes a deliberately poor file)"
    )
    scale.add_argument("source", type=Path)
    scale.add_argument("target", type=Path)
    scale.add_argument("--factor", type=float, required=True)
    show = actions.add_parser("show", help="check a range file and summarise it")
    show.add_argument("file", type=Path)


def _prepare(commands: Commands) -> None:
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


def _export(commands: Commands) -> None:
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


def _ls(commands: Commands) -> None:
    listing = commands.add_parser(
        "ls",
        help="list configuration kinds, metrics, built-in pipelines, families, controls, suite keys or suites",
        description="List what the registry holds (the core's and every plug-in's), the keys a suite may hold, "
        "or the suites in a folder.",
        epilog="examples:\n  python -m harness ls kinds\n  python -m harness ls keys gguf\n"
        "  python -m harness ls controls",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("what", choices=LISTINGS, nargs="?", default="kinds")
    listing.add_argument(
        "name", nargs="?", help="with keys: a kind or metric whose keys to list (default: the suite's top level)"
    )
    listing.add_argument("--suites-dir", type=Path, default=Path("suites"))


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
