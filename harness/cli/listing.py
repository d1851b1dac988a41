"""``python -m harness ls``: what the registry holds, the keys a suite may hold, the suites in a folder."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from harness.errors import EXIT_OK, InputError
from harness.registry import Registry, build_registry


def ls(args: argparse.Namespace, console: Console) -> int:
    table = Table(show_header=True, header_style="bold")
    if args.what == "suites":
        _suites(table, args)
    else:
        registry = build_registry()
        LISTS[args.what](table, registry, args.name)
    console.print(table)
    return EXIT_OK


def _kinds(table: Table, registry: Registry, _: str | None) -> None:
    for column in ("kind", "what it runs", "keys", "from"):
        table.add_column(column)
    for name, kind in registry.kinds.items():
        table.add_row(name, kind.summary, ", ".join(kind.keys), registry.kinds.owner(name))
    from harness.kinds.speedup.attention import BACKENDS
    from harness.kinds.speedup.cache import HOOKS

    table.caption = (
        "Speed-ups combine with every kind that takes them: cache = { hook = ... } (diffusers step caches: "
        f"{', '.join(HOOKS)}), compile = true | {{ mode, fullgraph, dynamic, backend, scope }}, attention_backend "
        f"({', '.join(BACKENDS)}); `ls keys precision` describes each key"
    )


def _metrics(table: Table, registry: Registry, _: str | None) -> None:
    for column in ("metric", "unit", "better", "compares", "from"):
        table.add_column(column)
    for name, cls in registry.metrics.items():
        better = "higher" if cls.higher_is_better else "lower"
        table.add_row(name, cls.unit, better, cls.summary, registry.metrics.owner(name))


def _pipelines(table: Table, registry: Registry, _: str | None) -> None:
    for column in ("pipeline", "family", "description", "from"):
        table.add_column(column)
    for name, builtin in registry.builtins.items():
        table.add_row(f"builtin:{name}", builtin.family.name, builtin.description, registry.builtins.owner(name))


def _families(table: Table, registry: Registry, _: str | None) -> None:
    for column in ("family", "pipeline class", "denoiser", "clips", "single file"):
        table.add_column(column)
    for name, family in registry.families.items():
        clips, single = "yes" if family.video else "", "yes" if family.single_file else ""
        table.add_row(name, family.pipeline_class, family.denoiser, clips, single)


def _controls(table: Table, registry: Registry, _: str | None) -> None:
    for column in ("transform", "damages", "what it does"):
        table.add_column(column)
    for control in registry.controls.values():
        table.add_row(control.transform, control.damages, control.summary)


def _keys(table: Table, registry: Registry, name: str | None) -> None:
    """The suite's top-level keys, or those of one configuration kind or metric (their declarations' help)."""
    from harness.plan.suite import CONFIG_COMMON_KEYS, TOP_KEYS, suite_keys

    table.add_column("key")
    table.add_column("what it holds")
    table.add_column("changes images")
    if name is None:
        for key, help_text in suite_keys().items():
            table.add_row(key, help_text, "yes" if TOP_KEYS.get(key, None) is None or TOP_KEYS[key].pixels else "")
        return
    if name in registry.kinds:
        for key, help_text in {**CONFIG_COMMON_KEYS, **registry.kinds[name].keys}.items():
            table.add_row(key, help_text, "" if key in CONFIG_COMMON_KEYS and key != "kind" else "yes")
        return
    if name in registry.metrics:
        for key, help_text in registry.metrics[name].option_keys.items():
            table.add_row(key, help_text, "")
        return
    raise InputError(f"ls keys {name!r}: not a configuration kind ({', '.join(registry.kinds)}) or a metric")


def _suites(table: Table, args: argparse.Namespace) -> None:
    from harness.tomlread import read_toml

    table.add_column("suite")
    table.add_column("description")
    for path in sorted(args.suites_dir.glob("*.toml")):
        try:
            description = str(read_toml(path).get("description", ""))
        except InputError as error:
            description = f"(unreadable: {error})"
        table.add_row(str(path), description)


LISTS: dict[str, Callable[[Table, Registry, str | None], None]] = {
    "kinds": _kinds,
    "metrics": _metrics,
    "pipelines": _pipelines,
    "families": _families,
    "controls": _controls,
    "keys": _keys,
}
