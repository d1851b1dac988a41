"""``kind = "gguf"``: components written to GGUF by the harness (or a user's file) and loaded by diffusers.

The harness writes the component's weights with the ``gguf`` package into a cache keyed
by (weights fingerprint, component, type, float type), saves the component's
config.json beside it, and loads it through diffusers' own GGUF path,
``Model.from_single_file(path, config=DIR, quantization_config=GGUFQuantizationConfig(...))``,
so what is measured is what diffusers users run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from harness import atomic
from harness.errors import InputError, Where, unknown
from harness.kinds.base import BuildContext, Notes, jsonable
from harness.kinds.casting import DTYPE_NAMES, install_boundary_casts, torch_dtype
from harness.kinds.gguf.file import LAYOUTS, QUANT_TYPES, open_gguf, read_gguf_stats, write_gguf
from harness.kinds.gguf.policy import POLICIES, mix_name, mix_problem
from harness.kinds.pipeline import PipelineKind, PipelineOptions
from harness.memory import MB, process_rss_bytes
from harness.options import option
from harness.pipelines.family import Family

# 3: header (architecture, file_type), <=1024-element tensors F32, original layout keeps float
# 4: the community's types (policy "community", the default of the original layout; mixes fall back to F16 on short
#    K rows; FFN-down Q4_1/Q5_1 in Q4_0/Q5_0 files), BF16 float storage, streamed writes (uniform bytes unchanged)
WRITER_VERSION = "4"


@dataclass(frozen=True)
class GGUFOptions:
    type: str = option(
        'GGML type of quantized tensors ("file" when the file is given)',
        default="",
        choices=QUANT_TYPES,
        what="GGUF type",
    )
    components: tuple[str, ...] = option(
        "components to load from GGUF", nonempty=True, example="['unet'] or ['transformer']"
    )
    compute_dtype: str | None = option(
        "dtype GGUF layers compute in (default: the component's dtype)", default=None, choices=DTYPE_NAMES, what="dtype"
    )
    file: str | None = option(
        "an existing .gguf file (any type diffusers dequantizes, K-quants included) for the one component",
        default=None,
        path=True,
    )
    float_type: str = option(
        "storage of tensors that stay unquantized: F16, BF16 (as convert.py stores a bf16 model) or F32 (1-D tensors "
        "and tensors of at most 1024 elements are always F32)",
        default="F16",
        choices=("F16", "BF16", "F32"),
    )
    policy: str = option(
        "uniform: every quantizable Linear weight in type (the default of layout = 'diffusers') | community: the file "
        "llama-quantize's image patch writes for type, Q4_K = Q4_K_M (the default of layout = 'original') | S | M | "
        "L: llama.cpp's mixes, e.g. Q4_K + M = Q4_K_M",
        default="",
        choices=POLICIES,
    )
    layout: str = option(
        "the key names: diffusers, or original (those of downloaded files: SD1.x/SDXL UNets, FLUX.1, SD3.x)",
        default="diffusers",
        choices=LAYOUTS,
    )
    overrides: tuple[tuple[str, str], ...] = option(
        "per-tensor types over the policy's: { 'GLOB' = 'TYPE' }, a glob on the file's tensor names, e.g. "
        "{ '*.attn.to_v.weight' = 'Q8_0' }; the last matching pattern wins (what `harness blame --recipe` writes)",
        default=(),
        choices=(*QUANT_TYPES, "F32"),
    )

    def validate(self, where: Where) -> GGUFOptions:
        """The type (``file`` for a given file), and the policy's default, which follows the layout."""
        if not self.file and not self.type:
            raise where.error("type", f"missing; one of {', '.join(QUANT_TYPES)} (or file = 'path.gguf')")
        if self.file and len(self.components) != 1:
            raise where.error("file", "a file holds one component; list exactly one in components")
        policy = self.policy or ("community" if self.layout == "original" else "uniform")
        problem = mix_problem(self.type or "file", policy)
        if problem:
            raise where.error("policy", problem)
        return replace(self, type=self.type or "file", policy=policy)


class GGUFKind(PipelineKind):
    name: ClassVar[str] = "gguf"
    packages: ClassVar[tuple[str, ...]] = ("gguf",)
    summary: ClassVar[str] = (
        "components quantized to GGUF (Q8_0 ... Q4_0, K-quants, BF16, F16) and loaded through diffusers' GGUF loader"
    )
    own_options: ClassVar[type] = GGUFOptions
    example: ClassVar[Mapping[str, Any]] = {"type": "Q4_0", "components": ["unet"]}

    def check(self, options: PipelineOptions, where: Where) -> None:
        super().check(options, where)
        if options.extra.file:
            open_gguf(Path(options.extra.file))

    def cache_inputs(self, options: PipelineOptions, suite_dir: Path) -> dict[str, Any]:
        from harness.identity import file_fingerprint

        return {**super().cache_inputs(options, suite_dir), "file": file_fingerprint(options.extra.file)}

    def backend_unavailable(self, options: PipelineOptions, device: str) -> str | None:
        try:
            import gguf  # noqa: F401
        except ImportError:
            return "the gguf package is not installed (pip install gguf)"
        return None

    def modify(self, pipe: Any, options: PipelineOptions, context: BuildContext, family: Family, notes: Notes) -> Any:
        from diffusers import GGUFQuantizationConfig

        extra: GGUFOptions = options.extra
        base = context.load_base()
        per_component: dict[str, Any] = {}
        for component in extra.components:
            module = pipe.components.get(component)
            if module is None or not hasattr(type(module), "from_single_file"):
                candidates = [k for k, v in pipe.components.items() if hasattr(type(v), "from_single_file")]
                if module is not None:
                    raise InputError(
                        f"components: diffusers loads GGUF only through from_single_file, which "
                        f"{type(module).__name__} ({component!r}) does not have; GGUF applies here to: "
                        f"{', '.join(candidates) or 'no component'}"
                    )
                raise InputError(unknown("component loadable from GGUF", component, candidates))
            compute = extra.compute_dtype or options.precision.dtype_of(component)
            if extra.file:
                path = Path(extra.file)
                config_dir = self._config_dir(context, module, base.fingerprint, component)
                stats, write_s, cached = read_gguf_stats(path), 0.0, True
            else:
                # Quantize from the original (float32) weights, not from this configuration's cast copy.
                original = base.pipe.components[component]
                path, config_dir, stats, write_s, cached = self._written(
                    context, original, base.fingerprint, component, extra
                )
            rss_before = process_rss_bytes()
            start = time.perf_counter()
            loaded = type(module).from_single_file(
                str(path),
                config=str(config_dir),
                local_files_only=True,
                quantization_config=GGUFQuantizationConfig(compute_dtype=torch_dtype(compute)),
                torch_dtype=torch_dtype(compute),
            )
            load_s = time.perf_counter() - start
            pipe.register_modules(**{component: loaded})
            if compute != options.precision.dtype or options.precision.mixed:
                install_boundary_casts({component: loaded}, notes.casts)
            per_component[component] = {
                **stats.to_notes(),
                "file": str(path),
                "from_cache": cached,
                "write_s": round(write_s, 3),
                "load_s": round(load_s, 3),
                "load_rss_rise_mb": round((process_rss_bytes() - rss_before) / MB, 1),
                "compute_dtype": compute,
            }
        notes["gguf"] = per_component
        notes["gguf_type"] = extra.type
        notes["weights_mb"] = round(sum(c["file_mb"] for c in per_component.values()), 3)
        notes["fp16_weights_mb"] = round(sum(c["fp16_weights_mb"] for c in per_component.values()), 3)
        return pipe

    @staticmethod
    def _config_dir(context: BuildContext, module: Any, fingerprint: str, component: str) -> Path:
        directory = context.cache_dir / "gguf" / f"{fingerprint[:16]}-{component}-config"
        if not (directory / "config.json").is_file():
            atomic.save_config(module, directory)
        return directory

    def _written(
        self, context: BuildContext, module: Any, fingerprint: str, component: str, extra: GGUFOptions
    ) -> tuple[Path, Path, Any, float, bool]:
        # every option that shapes the file's bytes (all but which components, their compute dtype and a given file)
        written = {k: v for k, v in jsonable(extra).items() if k not in ("components", "compute_dtype", "file")}
        key = hashlib.sha256(
            f"{fingerprint}|{component}|{json.dumps(written, sort_keys=True)}|{WRITER_VERSION}".encode()
        ).hexdigest()[:20]
        directory = context.cache_dir / "gguf" / key
        path = directory / f"{component}-{mix_name(extra.type, extra.policy)}.gguf"
        if path.is_file() and (directory / "config.json").is_file():
            return path, directory, read_gguf_stats(path), 0.0, True
        start = time.perf_counter()
        stats = write_gguf(
            module, path, extra.type, extra.float_type, extra.policy, extra.layout, overrides=extra.overrides
        )
        atomic.save_config(module, directory)
        return path, directory, stats, time.perf_counter() - start, False
