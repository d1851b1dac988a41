"""The shapes world as a plug-in (:mod:`harness.registry`): its trained pipelines, its adherence metrics (still and
motion) and its evaluator CLIP, the default feature space and CLIP model for metrics on its pipelines."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.controls import Control
from harness.metrics.base import Metric
from harness.pipelines.family import Builtin
from harness.pipelines.sana import SanaFamily

EVALUATOR = "builtin:shapes"


def _shapes() -> Any:
    from harness.world.assets import generator_dir, load_generator

    return load_generator(generator_dir())


def _shapes_flawed() -> Any:
    from harness.world.assets import flawed_generator_dir, load_generator

    return load_generator(flawed_generator_dir())


def _world(arch: str) -> Callable[[], Any]:
    return functools.partial(_load_world, arch)  # a partial, not a closure: the registry pickles to isolated workers


def _load_world(arch: str) -> Any:
    from harness.world.assets import load_world, world_dir

    return load_world(world_dir(arch))


class ShapesSanaFamily(SanaFamily):
    """Sana as the world samples it: SanaPipeline's default instruction, the world's sequence length."""

    def call_kwargs(self) -> dict[str, Any]:
        from harness.world.families.sana import SanaWorld

        return {**super().call_kwargs(), **SanaWorld().sample_kwargs()}


def builtins() -> list[Builtin]:
    from harness.pipelines.flux import FluxFamily
    from harness.pipelines.sd import StableDiffusionFamily
    from harness.pipelines.sd3 import SD3Family
    from harness.pipelines.sdxl import SDXLFamily

    return [
        Builtin(
            "shapes",
            "the trained shapes world: coloured shapes at named positions, 64 px (v-prediction, zero-terminal SNR)",
            StableDiffusionFamily,
            _shapes,
            EVALUATOR,
        ),
        Builtin(
            "shapes-flawed",
            "the shapes world trained with the SD1.5 recipe (epsilon, 'leading'): right colours and shapes, ignored positions",
            StableDiffusionFamily,
            _shapes_flawed,
            EVALUATOR,
        ),
        Builtin(
            "shapes-flux",
            "the shapes world trained as FLUX.1-dev: double/single-stream MM-DiT, CLIP + T5, 16-channel VAE, "
            "flow matching with dynamic shift, distilled guidance",
            FluxFamily,
            _world("flux"),
            EVALUATOR,
        ),
        Builtin(
            "shapes-sd3",
            "the shapes world trained as SD3.5: MM-DiT with qk-norm, two CLIPs + T5, 16-channel VAE, flow matching (shift 3)",
            SD3Family,
            _world("sd3"),
            EVALUATOR,
        ),
        Builtin(
            "shapes-sdxl",
            "the shapes world trained as SDXL: UNet with text-time conditioning, two CLIPs, Euler (v-prediction, "
            "zero terminal SNR); its VAE overflows float16 like SDXL's",
            SDXLFamily,
            _world("sdxl"),
            EVALUATOR,
        ),
        Builtin(
            "shapes-sana",
            "the shapes world trained as Sana: linear-attention DiT, 32-channel DC-AE, Gemma 2 behind SanaPipeline's "
            "instruction (its residual stream past float16's range), flow DPM-Solver",
            ShapesSanaFamily,
            _world("sana"),
            EVALUATOR,
        ),
    ]


def metrics() -> list[type[Metric]]:
    from harness.world.adherence import Adherence
    from harness.world.motion_adherence import MotionAdherence

    return [Adherence, MotionAdherence]


def evaluators() -> dict[str, Callable[[], Path]]:
    from harness.world.assets import evaluator_dir

    return {EVALUATOR: evaluator_dir}


def controls() -> list[Control]:
    from harness.world.controls import CONTROLS

    return list(CONTROLS)
