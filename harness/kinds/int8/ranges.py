"""Activation range files: one ``name,min,max`` line per operation (OnnxStream's range_data.txt shape).

``name`` is the dotted module path in the pipeline (``vae.decoder.up_blocks.0.resnets.0.conv1``);
min and max bound that operation's input. Blank lines and ``#`` comments are allowed.
Every problem is an :class:`InputError` naming the file and line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import write_text
from harness.errors import InputError

SHOWN = 5


@dataclass(frozen=True)
class Range:
    low: float
    high: float

    def merged(self, other: Range) -> Range:
        """The running min/max across calibration runs."""
        return Range(min(self.low, other.low), max(self.high, other.high))


def parse_ranges(text: str, path: Path) -> dict[str, Range]:
    """Parse range-file text; raises with the line number on any malformed line."""
    ranges: dict[str, Range] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3 or not parts[0]:
            raise InputError(f"line {number}: expected 'name,min,max', got {raw!r}", file=path)
        name, low_text, high_text = parts
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise InputError(
                f"line {number}: min and max must be numbers, got {low_text!r} and {high_text!r}", file=path
            ) from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise InputError(
                f"line {number}: {name}: min and max must be finite, got {low_text}, {high_text}", file=path
            )
        if low > high:
            raise InputError(f"line {number}: {name}: min {low:g} is greater than max {high:g}", file=path)
        if name in ranges:
            raise InputError(f"line {number}: {name} appears twice", file=path)
        ranges[name] = Range(low, high)
    return ranges


def read_ranges(path: Path) -> dict[str, Range]:
    """Read a range file; a missing file is an :class:`InputError`, an empty one gives ``{}``."""
    if not path.is_file():
        raise InputError("range file not found", file=path)
    try:
        return parse_ranges(path.read_text(encoding="utf-8"), path)
    except UnicodeDecodeError:
        raise InputError("range file is not UTF-8 text", file=path) from None


def format_ranges(ranges: Mapping[str, Range]) -> str:
    return "".join(f"{name},{r.low!r},{r.high!r}\n" for name, r in ranges.items())


def write_ranges(ranges: Mapping[str, Range], path: Path) -> None:
    """Write atomically; floats use ``repr`` so they read back exactly."""
    write_text(path, format_ranges(ranges))


def check_names(ranges: Mapping[str, Range], expected: Iterable[str], path: Path) -> None:
    """Every quantized layer needs a range and every range must name a quantized layer."""
    wanted = list(expected)
    unknown = [name for name in ranges if name not in set(wanted)]
    missing = [name for name in wanted if name not in ranges]
    problems = []
    if unknown:
        problems.append(
            f"{len(unknown)} names match no quantized layer of this model (first: {', '.join(unknown[:SHOWN])})"
        )
    if missing:
        problems.append(f"{len(missing)} quantized layers have no range (first: {', '.join(missing[:SHOWN])})")
    if problems:
        raise InputError(
            "; ".join(problems) + ". The file was made for another architecture or other components/excludes; "
            "recalibrate with calibrate = true and a new file",
            file=path,
        )


def scaled(ranges: Mapping[str, Range], factor: float) -> dict[str, Range]:
    """Every range multiplied by ``factor`` (e.g. 0.1 shrinks them 10x: a deliberately poor file)."""
    return {name: Range(r.low * factor, r.high * factor) for name, r in ranges.items()}
