"""``kind = "command"``: any runtime outside Python (OnnxStream's binary, a C++/ONNX runtime, a service wrapper).

The command template is run once per sample and must write a PNG at ``{output}``.
Placeholders: ``{prompt}``, ``{negative_prompt}``, ``{seed}``, ``{steps}``, ``{width}``,
``{height}``, ``{guidance}``, ``{output}``. The template is split into arguments
*before* substitution and run without a shell, so a prompt is always exactly one
argument (or part of one) and can never inject another command. Each sample has a
timeout. A non-zero exit, a missing or unreadable image, or a wrong size is an error
carrying the command's stderr tail.

The child's peak RSS is its kernel high-water mark (``VmHWM`` in /proc/<pid>/status),
read every few milliseconds while it runs: exact up to the last read, so only growth
in the final milliseconds before exit can be missed. ``wait4``'s ``ru_maxrss`` is not
used because Linux carries the parent's peak into a forked child at exec, which would
report the harness's own size for every command.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness import options
from harness.errors import Where
from harness.kinds.base import BuildContext, ConfigKind, Runtime
from harness.options import option
from harness.samples import SampleJob, load_png

PLACEHOLDERS = ("prompt", "negative_prompt", "seed", "steps", "width", "height", "guidance", "output")


def _argv(value: Any, where: Where, _suite_dir: Path | None) -> tuple[str, ...]:
    """``command``: a list of strings, or one string split like a shell line; it must write ``{output}``."""
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as error:
            raise where.error("command", f"cannot split the command line: {error}") from None
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        argv = list(value)
    else:
        raise where.error("command", "expected a list of strings or a string")
    if not argv:
        raise where.error("command", "is empty")
    if not any("{output}" in arg for arg in argv):
        raise where.error("command", "must contain {output}: the PNG path the runtime writes")
    for arg in argv:
        for name in _placeholders(arg):
            if name not in PLACEHOLDERS:
                from harness.errors import unknown

                raise where.error(
                    "command", unknown("placeholder", "{" + name + "}", ["{" + p + "}" for p in PLACEHOLDERS])
                )
    return tuple(argv)


@dataclass(frozen=True)
class CommandOptions:
    argv: tuple[str, ...] = option(
        "argv template: a list of strings (or one string, split like a shell line) with {placeholders}",
        key="command",
        read=_argv,
        example="['./sd', '--prompt', '{prompt}', '--seed', '{seed}', '--out', '{output}']",
    )
    timeout: float = option("seconds per sample", default=600.0)
    env: tuple[tuple[str, str], ...] = option("extra environment variables, e.g. { OMP_NUM_THREADS = '2' }", default=())
    cwd: str = option("working directory (default: the suite's folder)", default=".", path=True)
    stderr_lines: int = option("lines of stderr kept in error messages", default=20, minimum=1)

    def validate(self, where: Where) -> CommandOptions:
        if self.timeout <= 0:
            raise where.error("timeout", "must be > 0 seconds")
        return self


class CommandError(RuntimeError):
    """The external runtime failed a sample."""


class CommandKind(ConfigKind):
    name: ClassVar[str] = "command"
    summary: ClassVar[str] = "an external runtime run once per sample without a shell; writes a PNG at {output}"
    needs_pipeline: ClassVar[bool] = False
    example: ClassVar[Mapping[str, Any]] = {
        "command": ["./sd", "--prompt", "{prompt}", "--seed", "{seed}", "--output", "{output}"]
    }

    def declarations(self) -> tuple[type, ...]:
        return (CommandOptions,)

    def parse(self, table: Mapping[str, Any], where: Where, suite_dir: Path) -> CommandOptions:
        parsed = options.parse(CommandOptions, table, where, suite_dir)
        return parsed if "cwd" in table else replace(parsed, cwd=str(suite_dir.resolve()))

    def check(self, options: CommandOptions, where: Where) -> None:
        if not Path(options.cwd).is_dir():
            raise where.error("cwd", f"not a folder: {options.cwd}")

    def cache_inputs(self, options: CommandOptions, suite_dir: Path) -> dict[str, Any]:
        import shutil

        from harness.identity import file_fingerprint

        executable = shutil.which(options.argv[0], path=os.environ.get("PATH")) or str(
            Path(options.cwd) / options.argv[0]
        )
        files = {"executable": file_fingerprint(executable)}
        for arg in options.argv[1:]:
            candidate = Path(options.cwd) / arg
            if "{" not in arg and candidate.is_file():
                files[arg] = file_fingerprint(candidate)  # a script or model the runtime reads
        return files

    def build(self, options: CommandOptions, context: BuildContext) -> Runtime:
        return CommandRuntime(options, context)


def _placeholders(text: str) -> list[str]:
    import re

    return re.findall(r"\{([A-Za-z_]+)\}", text)


def substitute(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Replace ``{name}`` in each argument in one pass: values go in verbatim, never re-split or re-expanded."""
    import re

    pattern = re.compile(r"\{(" + "|".join(re.escape(name) for name in values) + r")\}")
    return [pattern.sub(lambda match: values[match.group(1)], arg) for arg in argv]


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    peak_rss_mb: float
    stderr: str
    timed_out: bool


def run_child(argv: list[str], cwd: str, env: Mapping[str, str], timeout: float) -> ChildRun:
    """Run without a shell, following the child's high-water mark until it exits."""
    start = time.perf_counter()
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
    except OSError as error:
        raise CommandError(f"cannot start {argv[0]!r}: {error}") from None
    chunks: dict[str, list[bytes]] = {"out": [], "err": []}

    def drain(stream: Any, into: list[bytes]) -> None:
        for block in iter(lambda: stream.read(65536), b""):
            into.append(block)

    readers = [
        threading.Thread(target=drain, args=(process.stdout, chunks["out"]), daemon=True),
        threading.Thread(target=drain, args=(process.stderr, chunks["err"]), daemon=True),
    ]
    for reader in readers:
        reader.start()
    timed_out = False
    peak = 0
    status_file = Path(f"/proc/{process.pid}/status")
    while True:
        peak = max(peak, _high_water_mark(status_file, process.pid))
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - start > timeout:
            timed_out = True
            process.kill()
            pid, status = os.waitpid(process.pid, 0)
            break
        time.sleep(0.003)
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(timeout=5)
    stderr = b"".join(chunks["err"]).decode("utf-8", "replace")
    return ChildRun(process.returncode, time.perf_counter() - start, peak / (1024.0 * 1024.0), stderr, timed_out)


def _high_water_mark(status_file: Path, pid: int) -> int:
    """The child's peak RSS so far in bytes (VmHWM; current RSS where /proc is absent)."""
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # the child may be gone between the poll and this read
        return 0


class CommandRuntime(Runtime):
    def __init__(self, options: CommandOptions, context: BuildContext):
        super().__init__()
        self.options = options
        self.generation = context.generation
        self.output_dir = context.work_dir / "command_outputs" / f"{os.getpid()}-{id(self):x}"
        self.env = {**os.environ, **dict(options.env)}
        self.peaks: list[float] = []
        self.notes["command"] = list(options.argv)
        self.notes.live.append(self._memory_notes)

    def _memory_notes(self) -> dict[str, Any]:
        if not self.peaks:
            return {}
        return {
            "child_peak_rss_mb": round(max(self.peaks), 1),
            "child_mean_peak_rss_mb": round(float(np.mean(self.peaks)), 1),
        }

    def generate(self, jobs: Sequence[SampleJob]) -> list[np.ndarray]:
        return [self._one(job) for job in jobs]

    def _one(self, job: SampleJob) -> np.ndarray:
        gen = self.generation
        self.output_dir.mkdir(parents=True, exist_ok=True)
        output = self.output_dir / f"{job.key}.png"
        output.unlink(missing_ok=True)
        values = {
            "prompt": job.prompt,
            "negative_prompt": gen.negative_prompt,
            "seed": str(job.seed),
            "steps": str(gen.steps),
            "width": str(gen.width),
            "height": str(gen.height),
            "guidance": repr(gen.guidance),
            "output": str(output),
        }
        argv = substitute(self.options.argv, values)
        child = run_child(argv, self.options.cwd, self.env, self.options.timeout)
        self.peaks.append(child.peak_rss_mb)
        tail = "\n".join(child.stderr.strip().splitlines()[-self.options.stderr_lines :])
        where = f"sample {job.key} (seed {job.seed})"
        if child.timed_out:
            raise CommandError(f"{where}: timed out after {self.options.timeout:g} s; stderr tail:\n{tail}")
        if child.returncode != 0:
            raise CommandError(f"{where}: exit code {child.returncode}; stderr tail:\n{tail}")
        if not output.is_file():
            raise CommandError(f"{where}: the command exited 0 but wrote no image at {output}; stderr tail:\n{tail}")
        try:
            image = load_png(output)
        except OSError as error:
            raise CommandError(f"{where}: unreadable image {output}: {error}; stderr tail:\n{tail}") from None
        if image.shape != (gen.height, gen.width, 3):
            raise CommandError(
                f"{where}: image is {image.shape[1]}x{image.shape[0]}, expected {gen.width}x{gen.height}"
            )
        return image.astype(np.float32) / 255.0

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.output_dir, ignore_errors=True)
