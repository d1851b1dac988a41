"""The harness as a pytest plugin: a suite's checks as test items, and a fixture that runs suites from tests.

Installed with the harness (the ``pytest11`` entry point ``harness``)::

    pytest --harness-suite suites/shapes.toml                 # one item per (configuration, check)
    pytest --harness-suite suites/shapes.toml -k "fp16 and p25"
    pytest --harness-suite suites/gguf.toml --harness-references live --junitxml=gates.xml

Items are named ``SUITE::CONFIG::CHECK`` (the check's words with ``>=`` written ``ge``, ``<=`` ``le``, and every
other run of punctuation or spaces an underscore: ``suites/shapes.toml::fp16::p25_psnr_ge_32``). They are known
before anything runs: a health check per configuration, one item per threshold, and a negative control's
"is flagged" check. The suite runs once, when its first item runs, with only the configurations of the items
pytest kept (``-k``, ``-x`` and deselection apply), through the same runner, cache, references and gates as
``harness run``. A failed check fails its item with the value, bound and reason; a negative control's expected
failures are xfail; a configuration that crashed fails each of its items with its error; a check this machine
could not compute is skipped with the reason. The terminal summary names each suite's report.

Given with no test paths, ``--harness-suite`` collects only the suites; with paths, the suites beside them.

The ``harness_run`` fixture runs a suite file or a :class:`harness.api.Suite` and hands back the
:class:`harness.api.Outcome` (runs are cached per session, so several tests may share one)::

    def test_fp16_holds(harness_run):
        outcome = harness_run("suites/shapes.toml", configs=["fp16"])
        assert outcome.check("fp16", "p25 psnr >= 32").status == "pass"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness import api
from harness.errors import InputError
from harness.judge.checks import HEALTH_CHECK, JUDGED_CHECK, NEGATIVE_CONTROL_CHECK, RUNS_CHECK
from harness.results import ERROR, PASS, SKIPPED, XFAIL, CheckOutcome

OPTION = "--harness-suite"
CONFIG_CHECKS = (RUNS_CHECK, JUDGED_CHECK)  # outcomes that stand for a whole configuration


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "diffusion quantization-quality gates (harness)")
    group.addoption(
        OPTION,
        action="append",
        default=[],
        metavar="SUITE.toml",
        help="collect a suite's checks as test items, one per (configuration, check); may be repeated",
    )
    group.addoption(
        "--harness-references",
        choices=("blessed", "live"),
        default=None,
        help="blessed (stored) or live (regenerated) references (default: the suite's own setting)",
    )
    group.addoption("--harness-device", default="auto", help="device to run on (default auto: cuda if present)")
    group.addoption(
        "--harness-cache-dir",
        type=Path,
        default=Path(".harness_cache"),
        help="the sample cache (default .harness_cache, the command line's)",
    )
    group.addoption(
        "--harness-reports", type=Path, default=Path("reports"), help="where run folders go (default reports/)"
    )


def check_node_name(check: str) -> str:
    """A check's words as a pytest node name: ``p25 psnr >= 32`` -> ``p25_psnr_ge_32``."""
    text = check.replace(">=", " ge ").replace("<=", " le ")
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


class SuiteRuns:
    """One run per (suite, configurations, references) in a session; each suite's report, for the summary."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.outcomes: dict[tuple[Any, ...], api.Outcome] = {}

    def run(
        self, suite: api.Suite, configs: Sequence[str] = (), references: str | None = None, **options: Any
    ) -> api.Outcome:
        key = (id(suite), suite.path, tuple(sorted(configs)), references, tuple(sorted(options.items())))
        if key not in self.outcomes:
            get = self.config.getoption
            self.outcomes[key] = api.run(
                suite,
                configs=configs,
                references=references if references is not None else get("--harness-references"),
                device=options.pop("device", get("--harness-device")),
                cache_dir=options.pop("cache_dir", get("--harness-cache-dir")),
                reports_root=options.pop("reports_root", get("--harness-reports")),
                **options,
            )
        return self.outcomes[key]


RUNS = pytest.StashKey[SuiteRuns]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RUNS] = SuiteRuns(config)
    suites = [str(Path(path)) for path in config.getoption(OPTION)]
    if not suites:
        return
    for path in suites:
        if not Path(path).is_file():
            raise pytest.UsageError(f"{OPTION} {path}: no such suite file")
    given = config.args_source == pytest.Config.ArgsSource.ARGS
    config.args[:] = [*(config.args if given else ()), *suites]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    suites = {Path(path).resolve() for path in parent.config.getoption(OPTION)}
    if file_path.suffix == ".toml" and file_path.resolve() in suites:
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    """A suite file: one :class:`ConfigNode` per configuration."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from harness.plan.suite import check_suite, suite_from_table

        try:
            self.suite = api.load(self.path)
            registry = api.registry_for(self.suite.objects)
            loaded = suite_from_table(self.suite.table, self.path, registry)
            check_suite(loaded, registry)
        except InputError as error:
            raise self.CollectError(str(error)) from error
        for spec in loaded.configs:
            checks = [(HEALTH_CHECK, ""), *((t.describe(), t.metric) for t in loaded.thresholds_for(spec.name))]
            if spec.expect == "fail":
                checks.append((NEGATIVE_CONTROL_CHECK, ""))
            config = ConfigNode.from_parent(self, name=spec.name)
            config.checks = checks
            yield config

    def outcome(self) -> api.Outcome:
        """The suite's run with the configurations of the items pytest kept, made once."""
        if not hasattr(self, "_outcome"):
            kept = [i for i in self.session.items if isinstance(i, CheckItem) and i.suite_file is self]
            configs = sorted({item.config_name for item in kept})
            self._outcome = self.config.stash[RUNS].run(self.suite, configs=configs)
        return self._outcome


class ConfigNode(pytest.Collector):
    """One configuration of a suite: one :class:`CheckItem` per check."""

    checks: Sequence[tuple[str, str]] = ()  # (check, the metric it gates or "")

    def collect(self) -> Iterator[pytest.Item]:
        for check, metric in self.checks:
            yield CheckItem.from_parent(self, name=check_node_name(check), check=check, metric=metric)


class CheckFailed(Exception):
    """A check that failed: its value, bound and reason."""


class CheckItem(pytest.Item):
    """One check of one configuration, judged from the suite's one run."""

    def __init__(self, *, check: str, metric: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.check, self.metric = check, metric
        self.config_name = self.parent.name if self.parent is not None else ""
        self.suite_file: SuiteFile = self.parent.parent  # type: ignore[union-attr,assignment]

    def runtest(self) -> None:
        outcome = self.suite_file.outcome()
        checks = [c for c in outcome.checks if c.config == self.config_name]
        found = self._find(checks)
        if found.status == PASS:
            return
        if found.status == XFAIL:
            pytest.xfail(found.reason)
        if found.status == SKIPPED:
            pytest.skip(found.reason)
        raise CheckFailed(describe(found, outcome))

    def _find(self, checks: list[CheckOutcome]) -> CheckOutcome:
        """This item's outcome; else the whole configuration's (it crashed, was skipped or not judged), or its
        metric's (this machine could not compute it)."""
        for check in checks:
            if check.check == self.check or check.check in CONFIG_CHECKS:
                return check
        for check in checks:
            if check.status == SKIPPED and self.metric and check.metric == self.metric:
                return check
        return CheckOutcome(self.config_name, self.check, ERROR, "the run did not judge this check")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.config_name}: {self.check}"


def describe(check: CheckOutcome, outcome: api.Outcome) -> str:
    """A failed item's message: the check, its value against its bound, the reason, and the report."""
    lines = [f"{check.config}: {check.check}: {check.status}"]
    if check.value is not None:
        bound = f" (bound {check.bound:g})" if check.bound is not None else ""
        lines.append(f"value {check.value:.4g}{bound}" + (f" over {check.n} samples" if check.n else ""))
    lines += [check.reason, f"report: {outcome.report}"]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    outcomes = config.stash[RUNS].outcomes if RUNS in config.stash else {}
    if not outcomes:
        return
    terminalreporter.section("harness")
    for outcome in outcomes.values():
        name = outcome.result.suite.get("name", "suite")
        terminalreporter.write_line(f"{name}: {outcome.verdict}, exit {outcome.exit_code}; report {outcome.report}")


@pytest.fixture(scope="session")
def harness_run(pytestconfig: pytest.Config) -> Callable[..., api.Outcome]:
    """Run a suite file or an :class:`harness.api.Suite` (``configs``, ``references`` and :func:`harness.api.run`'s
    other options as keywords) and hand back its :class:`harness.api.Outcome`; one run per arguments a session."""
    runs = pytestconfig.stash[RUNS]
    loaded: dict[Path, api.Suite] = {}

    def run(suite: str | Path | api.Suite, **options: Any) -> api.Outcome:
        if not isinstance(suite, api.Suite):
            path = Path(suite).resolve()
            suite = loaded.setdefault(path, api.load(path))
        return runs.run(suite, **options)

    return run
