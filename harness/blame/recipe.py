"""``python -m harness blame RUN --config NAME --recipe``: the smallest GGUF mix that passes the suite's gates.

For a GGUF configuration of type T (the low type) and ``--keep-type`` K (Q8_0 by default):

1. **Sensitivities.** The reference pipeline with one tensor group of the denoiser taken
   from T, then from K: each group's per-sample squared error against the reference's
   images, at either type, and its bytes at either type.
2. **The search.** Quantization errors of separate tensor groups add up in the output
   nearly independently, so a mix's per-sample error is predicted as the sum of its
   groups' errors. Starting from every group at T, the group that removes the most
   predicted error per byte added is moved to K, until the predicted per-sample PSNR
   passes every PSNR gate the suite sets for the configuration (mean, worst, low tails).
3. **Verification.** The mix is built (each kept group's modules taken from a K pipeline
   into the T one) and generated: its measured PSNR judged by the same gates. Then the
   configuration a user pastes (``overrides = { GLOB = K }`` on the GGUF file's tensor
   names) is written into a copy of the suite and run through the harness, references
   and gates included: its verdict is in ``recipe-NAME.json``.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.blame.parts import find_parts, module_bytes
from harness.blame.run import Bench, BlameRequest, open_bench
from harness.blame.swap import swapped
from harness.errors import InputError
from harness.kinds.base import Notes
from harness.registry import Registry

PEAK = 255.0**2


def psnr_of_mse(mse: np.ndarray) -> np.ndarray:
    from harness.metrics.psnr import PSNR_CAP_DB

    with np.errstate(divide="ignore"):
        return np.minimum(PSNR_CAP_DB, 10.0 * np.log10(PEAK / np.maximum(mse, 1e-12)))


def gates(bench: Bench, config: str) -> list[tuple[str, float, float | None]]:
    """The suite's absolute PSNR gates for ``config``: (statistic, bound, quantile)."""
    found = []
    for threshold in bench.suite.thresholds_for(config):
        if threshold.metric == "psnr" and threshold.min is not None and not threshold.relative:
            found.append((threshold.stat, threshold.min, threshold.quantile))
    if not found:
        raise InputError(f"the suite sets no absolute psnr gate (min) for {config!r}: a recipe has nothing to pass")
    return found


def passes(values: np.ndarray, found: Sequence[tuple[str, float, float | None]]) -> list[str]:
    """The gates ``values`` (per-sample PSNR) fail, in words; empty when it passes them all."""
    from harness.stats import tail_value

    failed = []
    for stat, bound, quantile in found:
        if quantile is not None:
            value = float(tail_value(list(values), True, quantile) or 0.0)
        else:
            value = float({"mean": values.mean(), "median": np.median(values), "worst": values.min()}[stat])
        if value < bound:
            failed.append(f"{stat} psnr {value:.2f} < {bound:g}")
    return failed


def recipe(
    request: BlameRequest, registry: Registry, keep_type: str, advance: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Sensitivities at the low and the keep type, the predicted smallest passing mix, and its verification."""
    start = time.perf_counter()
    bench = open_bench(request, registry)
    spec = bench.suite.config(request.config)
    extra: Any = getattr(spec.options, "extra", None)
    if spec.kind != "gguf" or extra.layout != "diffusers" or extra.file:
        raise InputError(
            f"--recipe needs a GGUF configuration the harness writes in the diffusers layout; {request.config!r} is "
            f"a {spec.kind!r} configuration" + (f" with layout {extra.layout!r}" if spec.kind == "gguf" else "")
        )
    high_options = replace(spec.options, extra=replace(extra, type=keep_type, overrides=()))
    high = registry.kinds["gguf"].build(high_options, replace(bench.context, notes=Notes()))
    pipes = {"low": bench.config.pipe, "high": high.pipe}  # type: ignore[attr-defined]
    reference = bench.reference.pipe  # type: ignore[attr-defined]
    errors: dict[str, dict[str, Any]] = {}
    for part in find_parts(pipes["low"], reference, bench.denoiser, ("groups",)):
        if advance:
            advance(part.name)
        record: dict[str, Any] = {"paths": part.paths}
        for label, source in pipes.items():
            with swapped(reference, source, part.paths):
                record[f"mse_{label}"] = bench.mse(bench.reference)
            record[f"bytes_{label}"] = module_bytes(source, part.paths)
        errors[part.name] = record
    found = gates(bench, request.config)
    kept, predicted = search(errors, found)
    with swapped(pipes["low"], pipes["high"], [p for name in kept for p in errors[name]["paths"]]):
        measured = bench.psnr(bench.config)
    high.close()
    toml, table = paste(request.config, spec.options, extra, kept, errors, keep_type, bench)
    verdict = verify(bench, f"{request.config}_recipe", table, request)
    size = {
        "low": sum(e["bytes_low"] for e in errors.values()),
        "high": sum(e["bytes_high"] for e in errors.values()),
        "mix": sum(e["bytes_high" if name in kept else "bytes_low"] for name, e in errors.items()),
    }
    found_recipe = {
        "low_type": extra.type,
        "keep_type": keep_type,
        "kept": kept,
        "gates": [f"{stat} psnr >= {bound:g}" for stat, bound, _ in found],
        "predicted_psnr": {"mean": float(predicted.mean()), "worst": float(predicted.min())},
        "measured_psnr": {"mean": float(measured.mean()), "worst": float(measured.min())},
        "measured_fails": passes(measured, found),
        "bytes": size,
        "toml": toml,
        "run": verdict,
    }
    found_recipe["summary"] = summary_words(found_recipe)
    low_all = psnr_of_mse(sum(e["mse_low"] for e in errors.values()))
    return {
        "config": request.config,
        "reference": bench.suite.reference,
        "direction": "sensitivity",
        "metric": "psnr",
        "unit": "dB",
        "n": len(bench.jobs),
        "samples": [job.key for job in bench.jobs],
        "config_psnr": {"mean": float(low_all.mean()), "worst": float(low_all.min()), "predicted": True},
        "parts": sorted((sensitivity_row(name, e) for name, e in errors.items()), key=lambda r: -r["change_mean"]),
        "recipe": found_recipe,
        "images_generated": bench.generated,
        "seconds": round(time.perf_counter() - start, 2),
    }


MARGIN_DB = 0.5  # the prediction must clear each gate by this much: an additive model of errors is an estimate


def search(
    errors: Mapping[str, Mapping[str, Any]], found: Sequence[tuple[str, float, float | None]], margin: float = MARGIN_DB
) -> tuple[list[str], np.ndarray]:
    """Groups to keep in the higher type, greedily by predicted error removed per byte added, until the predicted
    per-sample PSNR passes ``found`` by ``margin`` dB; the kept groups in the order chosen, and the prediction."""
    kept: list[str] = []
    raised = [(stat, bound + margin, quantile) for stat, bound, quantile in found]
    while True:
        mse = sum(errors[n]["mse_high" if n in kept else "mse_low"] for n in errors)
        predicted = psnr_of_mse(np.asarray(mse))
        if not passes(predicted, raised) or len(kept) == len(errors):
            return kept, predicted

        def gain(name: str) -> float:
            e = errors[name]
            removed = float((e["mse_low"] - e["mse_high"]).sum())
            return removed / max(1, e["bytes_high"] - e["bytes_low"])

        kept.append(max((n for n in errors if n not in kept), key=gain))


def sensitivity_row(name: str, error: Mapping[str, Any]) -> dict[str, Any]:
    from harness.stats import bootstrap_interval, stable_seed

    values = psnr_of_mse(error["mse_low"])
    lost = 100.0 - values
    low, high = bootstrap_interval(lost, lambda m: m.mean(axis=1), stable_seed(name, "sensitivity"))
    return {
        "name": name,
        "level": "group",
        "modules": len(error["paths"]),
        "psnr_mean": float(values.mean()),
        "psnr_worst": float(values.min()),
        "psnr_keep_type_mean": float(psnr_of_mse(error["mse_high"]).mean()),
        "change_mean": float(lost.mean()),
        "change_ci": [low, high],
        "per_sample": [round(float(v), 4) for v in values],
        "bytes_config": int(error["bytes_low"]),
        "bytes_reference": int(error["bytes_high"]),
    }


def patterns(denoiser: Any, prefix: str, paths: Sequence[str]) -> list[str]:
    """Globs on the GGUF file's tensor names (the denoiser's state-dict keys) matching exactly the weights of the
    modules at ``paths``: ``*.to_v.weight`` where that names no other weight, else the exact names."""
    names = [key for key in denoiser.state_dict() if key.endswith(".weight")]
    wanted = {f"{path.removeprefix(prefix)}.weight" for path in paths}
    found: list[str] = []
    covered: set[str] = set()
    for weight in sorted(wanted):
        if weight in covered:
            continue
        parts = weight.split(".")
        tail = ".".join(parts[-3:] if parts[-2].isdigit() else parts[-2:])
        glob = f"*.{tail}"
        matched = {name for name in names if fnmatch.fnmatchcase(name, glob)}
        if matched <= wanted:
            found.append(glob)
            covered |= matched
        else:
            found.append(weight)
            covered.add(weight)
    return found


def paste(
    name: str, options: Any, extra: Any, kept: Sequence[str], errors: Mapping[str, Any], keep_type: str, bench: Bench
) -> tuple[str, dict[str, Any]]:
    """The recipe as a configuration to paste (TOML) and as the table it parses from."""
    from harness.kinds.base import jsonable

    denoiser = getattr(bench.config.pipe, bench.denoiser)  # type: ignore[attr-defined]
    globs = [g for group in kept for g in patterns(denoiser, f"{bench.denoiser}.", errors[group]["paths"])]
    table: dict[str, Any] = {"kind": "gguf", "type": extra.type, "components": list(extra.components)}
    table["dtype"] = options.precision.dtype
    for key, value in jsonable(extra).items():
        if key in ("policy", "float_type", "compute_dtype", "layout") and value not in (
            None,
            "",
            "uniform",
            "diffusers",
            "F16",
        ):
            table[key] = value
    if globs:
        table["overrides"] = dict.fromkeys(globs, keep_type)
    table["description"] = f"{extra.type} with {', '.join(kept) or 'nothing'} in {keep_type} (harness blame --recipe)"
    lines = [f"[configs.{name}_recipe]"]
    for key, value in table.items():
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n", table


def _toml(value: Any) -> str:
    import json

    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def verify(bench: Bench, name: str, table: Mapping[str, Any], request: BlameRequest) -> dict[str, Any]:
    """The recipe run through the harness as a configuration of the suite (its references and gates)."""
    from harness import api

    suite = api.load(bench.suite.path)
    suite.table["configs"][name] = dict(table)
    outcome = api.run(
        suite,
        configs=[name],
        device=request.device,
        out=request.run_dir / f"recipe-{request.config}-run",
        cache_dir=request.cache_dir,
        reports=True,
    )
    checks = [c for c in outcome.checks if c.config == name]
    return {
        "config": name,
        "verdict": "pass" if all(c.status in ("pass", "skipped") for c in checks) else "fail",
        "checks": [f"{c.check}: {c.status} ({c.reason})" for c in checks],
        "run_dir": str(outcome.run_dir),
    }


def summary_words(found: Mapping[str, Any]) -> str:
    size = found["bytes"]
    kept = ", ".join(found["kept"]) or "nothing"
    return (
        f"{found['low_type']} with {kept} in {found['keep_type']}: {size['mix'] / 1e6:.3f} MB of the denoiser's "
        f"quantized groups ({size['low'] / 1e6:.3f} all {found['low_type']}, {size['high'] / 1e6:.3f} all "
        f"{found['keep_type']}); predicted psnr mean {found['predicted_psnr']['mean']:.2f} / worst "
        f"{found['predicted_psnr']['worst']:.2f}, measured {found['measured_psnr']['mean']:.2f} / "
        f"{found['measured_psnr']['worst']:.2f}; run through the suite: {found['run']['verdict']}"
    )


def write_recipe(record: Mapping[str, Any], run_dir: Path) -> Path:
    import json

    from harness.atomic import write_text

    path = run_dir / f"recipe-{record['config']}.json"
    write_text(path, json.dumps(record, indent=1, default=_plain))
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [round(float(v), 4) for v in value]
    return str(value)
