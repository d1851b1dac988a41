"""Feature spaces for FID and KID: ``tiny`` (built in), ``clip`` (open_clip), ``inception`` (the standard)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import tomlread
from harness.errors import InputError, Where
from harness.metrics.base import NO_EVALUATORS, Evaluators
from harness.metrics.clip_model import BUILTIN_TINY, check_clip, parse_clip_options
from harness.metrics.features.base import FeatureExtractor

FEATURE_SPACES = ("tiny", "clip", "inception")
FEATURE_KEYS = {
    "features": "tiny | clip | inception (default tiny)",
    "weights": "inception: path of weights-inception-2015-12-05-6726825d.pth",
    "model": "clip: builtin:tiny | local-dir:PATH | open_clip model name",
    "pretrained": "clip: pretrained tag or checkpoint path",
    "bootstrap": "resamples for the interval (default 100; 20 for inception)",
}
_EXTRACTORS: dict[tuple[Any, ...], FeatureExtractor] = {}


def parse_feature_options(table: Mapping[str, Any], where: Where, suite_dir: Path) -> dict[str, Any]:
    features = tomlread.get_choice(table, "features", FEATURE_SPACES, where, "tiny") if "features" in table else None
    options: dict[str, Any] = {"features": features}
    bootstrap = tomlread.get(table, "bootstrap", int, where)
    if bootstrap is not None and bootstrap < 0:
        raise where.error("bootstrap", "must be >= 0 (0 turns the interval off)")
    options["bootstrap"] = bootstrap if bootstrap is not None else (20 if features == "inception" else 100)
    if features == "inception":
        weights = tomlread.get(table, "weights", str, where)
        options["weights"] = str((suite_dir / Path(weights).expanduser()).resolve()) if weights else None
    elif "weights" in table:
        raise where.error("weights", "weights only applies to features = 'inception'")
    if features in ("clip", None):
        options.update(parse_clip_options(table, where, suite_dir))
    elif "model" in table or "pretrained" in table:
        raise where.error("model", "model and pretrained only apply to features = 'clip'")
    return options


def resolve_defaults(options: dict[str, Any], evaluator: str) -> dict[str, Any]:
    """Unset feature space and CLIP model: a trained ``evaluator`` CLIP (a plug-in's, for its pipelines) as the
    feature space, else the tiny features."""
    resolved = dict(options)
    trained = evaluator != BUILTIN_TINY
    if resolved.get("features") is None:
        resolved["features"] = "clip" if trained else "tiny"
    if resolved["features"] == "clip" and not resolved.get("model"):
        resolved["model"] = evaluator
    if resolved["features"] != "clip":
        resolved.pop("model", None)
        resolved.pop("pretrained", None)
    return resolved


def check_feature_options(options: Mapping[str, Any], where: Where, evaluators: Evaluators = NO_EVALUATORS) -> None:
    try:
        if options["features"] == "inception":
            from harness.metrics.features.inception import resolve_weights

            resolve_weights(options.get("weights"))
        elif options["features"] == "clip":
            check_clip(options, evaluators)
    except InputError as error:
        raise where.error("features", error.detail) from None


def extractor_for(
    options: Mapping[str, Any], device: str = "cpu", evaluators: Evaluators = NO_EVALUATORS
) -> FeatureExtractor:
    """The extractor ``options`` name, on ``device``, built once per process."""
    key = (options["features"], options.get("weights"), options.get("model"), options.get("pretrained"), device)
    if key not in _EXTRACTORS:
        if options["features"] == "tiny":
            from harness.metrics.features.tiny import TinyFeatures

            _EXTRACTORS[key] = TinyFeatures(device)
        elif options["features"] == "inception":
            from harness.metrics.features.inception import InceptionFeatures

            _EXTRACTORS[key] = InceptionFeatures(options.get("weights"), device)
        else:
            from harness.metrics.features.clip import ClipFeatures

            _EXTRACTORS[key] = ClipFeatures(options, device, evaluators)
    return _EXTRACTORS[key]
