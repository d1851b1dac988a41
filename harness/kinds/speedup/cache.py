"""``cache = { hook = "...", ... }``: one of diffusers' step caches on the denoiser (``enable_cache``).

A step cache reuses work from earlier denoising steps instead of computing every block at
every step: FirstBlockCache skips the remaining blocks when the first block's residual
barely changed, TaylorSeer predicts block outputs from a Taylor expansion between full
steps, MagCache skips steps by the magnitude ratios of residuals, FasterCache and
Pyramid Attention Broadcast reuse attention outputs across steps, SeaCache gates reuse on
a spectral estimate. Each trades pixels for speed, which is what the suite then measures.

Each hook's keys are declared once below (their help and defaults are diffusers'); the
hook is applied through the denoiser's own ``enable_cache``, as a user would. MagCache
needs per-model magnitude ratios: without ``mag_ratios`` the harness calibrates them on
the run's first prompt and seed (diffusers' ``calibrate = True`` pass) and records them.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import options, tomlread
from harness.errors import InputError, Where, unknown
from harness.kinds.base import jsonable
from harness.options import option


@dataclass(frozen=True)
class FirstBlock:
    """FirstBlockCache (ParaAttention's dynamic caching)."""

    threshold: float = option(
        "relative change of the first block's residual below which the other blocks' output is reused",
        default=0.05,
        minimum=0,
    )


@dataclass(frozen=True)
class TaylorSeer:
    """TaylorSeer: block outputs predicted by a Taylor expansion between fully computed steps."""

    cache_interval: int = option(
        "steps between fully computed ones (those between are predicted)", default=5, minimum=1
    )
    disable_cache_before_step: int = option("steps always computed at the start", default=3, minimum=0)
    disable_cache_after_step: int | None = option(
        "the step from which every step is computed again", default=None, minimum=0
    )
    max_order: int = option("order of the Taylor prediction", default=1, minimum=0)
    use_lite_mode: bool = option("diffusers' lite mode: cache only the blocks it names", default=False)


@dataclass(frozen=True)
class Mag:
    """MagCache: steps skipped while the accumulated magnitude-ratio error stays below the threshold."""

    threshold: float = option("accumulated error below which a step is skipped", default=0.06, minimum=0)
    max_skip_steps: int = option("most consecutive steps skipped", default=3, minimum=1)
    retention_ratio: float = option("share of the first steps always computed", default=0.2, minimum=0, below=1)
    mag_ratios: tuple[float, ...] = option(
        "the model's per-step magnitude ratios; empty: calibrated on the run's first prompt and seed", default=()
    )


def _timestep_range(key: str, default: tuple[int, int], help: str) -> Any:
    def read(value: Any, where: Where, _: Path | None) -> tuple[int, int]:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise where.error(key, f"expected two integers [low, high] (timesteps, 0-1000), got {value!r}")
        if value[0] >= value[1]:
            raise where.error(key, f"low {value[0]} must be below high {value[1]}")
        return int(value[0]), int(value[1])

    return option(help, default=default, read=read)


@dataclass(frozen=True)
class Faster:
    """FasterCache: attention outputs reused across steps, with a frequency-weighted correction."""

    spatial_attention_block_skip_range: int = option("reuse spatial attention every N steps", default=2, minimum=1)
    spatial_attention_timestep_skip_range: tuple[int, int] = _timestep_range(
        "spatial_attention_timestep_skip_range", (-1, 681), "timesteps [low, high] in which attention is reused"
    )
    unconditional_batch_skip_range: int = option(
        "reuse the unconditional branch every N steps (pipelines with classifier-free guidance)", default=5, minimum=1
    )
    attention_weight: float = option("weight of the reused attention output", default=0.5, minimum=0)
    alpha_low_frequency: float = option("scale of the low-frequency correction", default=1.1, minimum=0)
    alpha_high_frequency: float = option("scale of the high-frequency correction", default=1.1, minimum=0)


@dataclass(frozen=True)
class Pyramid:
    """Pyramid Attention Broadcast: attention outputs broadcast to the next steps."""

    spatial_attention_block_skip_range: int | None = option(
        "reuse spatial (self) attention every N steps", default=2, minimum=1
    )
    spatial_attention_timestep_skip_range: tuple[int, int] = _timestep_range(
        "spatial_attention_timestep_skip_range", (100, 800), "timesteps [low, high] in which self attention is reused"
    )
    cross_attention_block_skip_range: int | None = option(
        "reuse cross attention every N steps (models with cross attention)", default=None, minimum=1
    )
    cross_attention_timestep_skip_range: tuple[int, int] = _timestep_range(
        "cross_attention_timestep_skip_range", (100, 800), "timesteps [low, high] in which cross attention is reused"
    )


@dataclass(frozen=True)
class Sea:
    """SeaCache: reuse gated on a spectral estimate of the change; needs the step and sigma from the pipeline."""

    threshold: float = option("estimated change below which the cached residual is reused", default=0.25, minimum=0)
    residual_order: int = option("order of the residual extrapolation", default=1, minimum=0)
    retention_steps: int = option("first steps always computed", default=1, minimum=0)
    cache_end_steps: int = option("last steps always computed", default=1, minimum=0)
    max_consecutive_cached: int = option("most consecutive cached steps", default=2, minimum=1)
    power_exp: float = option("exponent of the spectral weighting", default=3.0, minimum=0)


@dataclass(frozen=True)
class Hook:
    """One diffusers cache hook: its declared keys and the diffusers config class they become."""

    declaration: type
    config_class: str
    needs_timestep: bool = False  # the hook asks the pipeline for the current timestep (a callback)


HOOKS: Mapping[str, Hook] = {
    "first_block": Hook(FirstBlock, "FirstBlockCacheConfig"),
    "taylorseer": Hook(TaylorSeer, "TaylorSeerCacheConfig"),
    "mag": Hook(Mag, "MagCacheConfig"),
    "faster": Hook(Faster, "FasterCacheConfig", needs_timestep=True),
    "pyramid_attention_broadcast": Hook(Pyramid, "PyramidAttentionBroadcastConfig", needs_timestep=True),
    "sea": Hook(Sea, "SeaCacheConfig"),
}


@dataclass(frozen=True)
class CacheOptions:
    """A chosen hook and its settings (an instance of the hook's declaration)."""

    hook: str
    settings: Any = None

    def describe(self) -> str:
        import dataclasses

        changed = [
            f"{f.name}={getattr(self.settings, f.name)!r}"
            for f in dataclasses.fields(self.settings)
            if getattr(self.settings, f.name) != f.default
        ]
        return f"{self.hook}" + (f" ({', '.join(changed)})" if changed else "")


def help_text() -> str:
    """What ``ls keys`` says about ``cache``: every hook with its keys."""
    parts = []
    for name, hook in HOOKS.items():
        parts.append(f"{name} ({', '.join(options.keys(hook.declaration))})")
    return "a diffusers step cache on the denoiser, { hook = NAME, KEY = VALUE ... }; hooks: " + "; ".join(parts)


def read_cache(value: Any, where: Where, suite_dir: Path | None) -> CacheOptions:
    """``cache = { hook = "first_block", threshold = 0.1 }`` into :class:`CacheOptions`."""
    table = tomlread.get_table({"cache": value}, "cache", where) or {}
    inner = where.child("cache")
    name = tomlread.get(table, "hook", str, inner)
    if name is None:
        raise inner.error("hook", f"missing; one of {', '.join(HOOKS)}")
    if name not in HOOKS:
        raise inner.error("hook", unknown("cache hook", name, HOOKS))
    rest = {key: item for key, item in table.items() if key != "hook"}
    settings: Any = options.parse(HOOKS[name].declaration, rest, inner, suite_dir, also=("hook",))
    return CacheOptions(hook=name, settings=settings)


def enable(
    denoiser: Any, cache: CacheOptions, pipe: Any, steps: int, calibrate: Callable[[], object]
) -> dict[str, Any]:
    """Enable the hook on ``denoiser`` (its ``enable_cache``); what the report says about it.

    ``calibrate`` runs the pipeline once (the run's first prompt and seed), for MagCache's ratios."""
    if not hasattr(denoiser, "enable_cache"):
        raise InputError(
            f"cache: {type(denoiser).__name__} has no diffusers step-cache support (enable_cache); the step caches "
            "apply to the transformer denoisers that mix in diffusers' CacheMixin (FLUX, Wan, LTX-Video, ...)"
        )
    hook = HOOKS[cache.hook]
    notes: dict[str, Any] = {"hook": cache.hook, "settings": jsonable(cache.settings)}
    if hook.needs_timestep and not hasattr(type(pipe), "current_timestep"):
        raise InputError(
            f"cache: hook {cache.hook!r} asks the pipeline for the current timestep, and {type(pipe).__name__} has "
            "no current_timestep"
        )
    if cache.hook == "mag" and not cache.settings.mag_ratios:
        ratios = _calibrate_mag(denoiser, steps, calibrate)
        notes["calibrated_mag_ratios"] = ratios
        config = _config(hook, cache.settings, pipe, denoiser, steps, ratios)
    else:
        config = _config(hook, cache.settings, pipe, denoiser, steps, None)
    denoiser.enable_cache(config)
    return notes


def _config(hook: Hook, settings: Any, pipe: Any, denoiser: Any, steps: int, ratios: list[float] | None) -> Any:
    import dataclasses

    import diffusers.hooks

    cls = getattr(diffusers.hooks, hook.config_class)
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    if isinstance(settings, Mag):
        values.pop("mag_ratios")
        return cls(**values, num_inference_steps=steps, mag_ratios=list(ratios or settings.mag_ratios))
    if isinstance(settings, Faster):
        weight = values.pop("attention_weight")
        distilled = bool(getattr(getattr(denoiser, "config", None), "guidance_embeds", False))
        return cls(
            **values,
            attention_weight_callback=lambda _module: weight,
            current_timestep_callback=lambda: pipe.current_timestep,
            is_guidance_distilled=distilled,
            tensor_format="BCFHW" if getattr(getattr(denoiser, "config", None), "patch_size_t", None) else "BCHW",
        )
    if isinstance(settings, Pyramid):
        return cls(**values, current_timestep_callback=lambda: pipe.current_timestep)
    return cls(**values)


_RATIOS = re.compile(r"mag_ratios=\.\.\.\):\s*\n\s*(\[[^\]]*\])")


def _calibrate_mag(denoiser: Any, steps: int, calibrate: Callable[[], object]) -> list[float]:
    """diffusers' MagCache calibration pass (no step skipped), its printed ratios read back."""
    import ast

    import diffusers.hooks

    denoiser.enable_cache(diffusers.hooks.MagCacheConfig(calibrate=True, num_inference_steps=steps))
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            calibrate()
    finally:
        denoiser.disable_cache()
    found = _RATIOS.search(printed.getvalue())
    if not found:
        raise RuntimeError("MagCache calibration printed no ratios (diffusers' output format changed?)")
    return [round(float(v), 6) for v in ast.literal_eval(found.group(1))]
