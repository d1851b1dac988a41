"""``python -m harness prepare``: a configuration kind's own step before runs (``ConfigKind.prepare``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.errors import InputError, Where, unknown
from harness.kinds.base import ConfigKind
from harness.plan.suite import Suite
from harness.registry import Registry


def prepare_config(suite: Suite, registry: Registry, name: str, device: str, cache_dir: Path) -> str:
    """Run configuration ``name``'s preparation (int8: calibrate and write its range file); what was done, in words.

    Only this configuration is checked: the others may name files that this command is about to make.
    """
    from harness import environment
    from harness.generate.workbench import BaseLoader, make_context

    names = [spec.name for spec in suite.configs]
    if name not in names:
        raise InputError(unknown("configuration", name, names) + f" (from --config, in {suite.path})")
    spec = suite.config(name)
    environment.quiet_libraries()
    resolved = environment.resolve_device(device)
    loader = BaseLoader(suite, registry)
    context = replace(make_context(suite, resolved, loader, cache_dir, Path(".")), write_suite_files=True)
    kinds = registry.kinds
    done = kinds[spec.kind].prepare(spec, context, Where(suite.path, f"configs.{spec.name}"))
    if done is None:
        preparing = sorted(kind for kind, value in kinds.items() if type(value).prepare is not ConfigKind.prepare)
        raise InputError(
            f"--config {name!r} is a {spec.kind!r} configuration: that kind has nothing to prepare "
            f"(kinds that do: {', '.join(preparing) or 'none'})"
        )
    return done
