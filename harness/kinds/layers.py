"""Which layers a quantizing kind touches: Linear and Conv2d inside named submodules, minus excludes."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from harness.errors import InputError, unknown


def quantizable_types() -> tuple[type, ...]:
    from torch import nn

    return (nn.Linear, nn.Conv2d)


def resolve_submodule(pipe: Any, path: str) -> Any:
    """``vae.decoder`` -> ``pipe.vae.decoder``; an unknown path is an :class:`InputError`."""
    component, _, rest = path.partition(".")
    components = {name: value for name, value in pipe.components.items() if hasattr(value, "named_modules")}
    if component not in components:
        raise InputError(unknown("component", component, components) + f" (in {path!r})")
    module = components[component]
    if rest:
        try:
            module = module.get_submodule(rest)
        except AttributeError:
            children = [name for name, _ in module.named_children()]
            raise InputError(
                f"{component} has no submodule {rest!r}; its children are: {', '.join(children)}"
            ) from None
    return module


def excluded(name: str, patterns: Sequence[str]) -> bool:
    """A layer is excluded by an exact name, a dotted prefix, or a glob pattern."""
    return any(name == p or name.startswith(p + ".") or fnmatch.fnmatchcase(name, p) for p in patterns)


def target_layers(pipe: Any, components: Sequence[str], exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Quantizable layers by full dotted name (``vae.decoder.conv_in``), in module order."""
    types = quantizable_types()
    layers: dict[str, Any] = {}
    for path in components:
        root = resolve_submodule(pipe, path)
        for name, module in root.named_modules():
            if isinstance(module, types):
                full = f"{path}.{name}" if name else path
                if not excluded(full, exclude):
                    layers[full] = module
    if not layers:
        raise InputError(f"no Linear or Conv2d layers to quantize in {', '.join(components)} (after excludes)")
    return layers


class LayerHooks:
    """A hook on each named layer for the length of a ``with`` block; subclasses give ``_hook(name)``."""

    pre: ClassVar[bool] = False  # forward pre-hooks (see the inputs) rather than forward hooks (outputs too)

    def __init__(self, layers: Mapping[str, Any]):
        self.layers = dict(layers)
        self._handles: list[Any] = []

    def __enter__(self) -> Self:
        for name, module in self.layers.items():
            register = module.register_forward_pre_hook if self.pre else module.register_forward_hook
            self._handles.append(register(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Any:
        raise NotImplementedError
