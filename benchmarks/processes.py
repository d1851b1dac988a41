"""Scaling over processes: one process against N torchrun ranks on the same suite, interleaved.

    python benchmarks/processes.py [--nproc 2] [--repeats 3] [--nodes]

Every process gets one thread (CPU float results depend on the thread count, and a 2-core
machine has room for two one-thread ranks). ``--nodes`` launches the ranks as separate
torchrun "nodes" joined by the c10d rendezvous on localhost, each with its own output
folder, so the image transport of multi-host runs is in the measurement. Prints the wall
time of each launch, the median of the repeats and their spread; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
SUITE = """
name = "scaling"
pipeline = "builtin:tiny-sd"
reference = "fp32"
prompts = ["a red circle", "a cat", "a lighthouse", "two blue squares", "a city at night", "an old fisherman",
           "a mountain lake", "a watercolor of a boat"]
seeds = [0, 1, 2, 3]
steps = 8
width = 64
height = 64
batch_size = 4
[metrics]
psnr = {}
[configs.fp32]
[configs.fp32_again]
dtype = "float32"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(suite: Path, work: Path, nproc: int, nodes: bool) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run = ["-m", "harness", "run", str(suite), "--no-cache", "--device", "cpu"]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    start = time.perf_counter()
    if nproc == 1:
        subprocess.run([sys.executable, *run, "--out", str(work / "one")], env=env, check=True, capture_output=True)
    elif not nodes:
        command = [torchrun, "--nproc_per_node", str(nproc), *run, "--out", str(work / "multi")]
        subprocess.run(command, env=env, check=True, capture_output=True)
    else:
        endpoint = f"127.0.0.1:{free_port()}"
        rendezvous = ["--nnodes", str(nproc), "--nproc_per_node", "1", "--rdzv-backend", "c10d"]
        children = [
            subprocess.Popen(
                [torchrun, *rendezvous, "--rdzv-endpoint", endpoint, *run, "--out", str(work / f"node{n}")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in range(nproc)
        ]
        if any(child.wait() != 0 for child in children):
            raise SystemExit("a node failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nodes", action="store_true", help="launch the ranks as separate torchrun nodes")
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], args.nproc: []}
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        suite = work / "scaling.toml"
        suite.write_text(SUITE)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-m", "harness", "bless", str(suite)], env=env, check=True, capture_output=True)
        for _ in range(args.repeats):  # interleaved: one launch of each per repeat
            for nproc in times:
                times[nproc].append(launch(suite, work, nproc, args.nodes))
    single = statistics.median(times[1])
    how = "nodes (c10d on localhost)" if args.nodes else "processes on one node"
    table = Table(title=f"tiny-sd, 2 configurations x 32 images, 1 thread per process, {how}")
    for column in ("processes", "wall s, each repeat", "median s", "speed-up (median)"):
        table.add_column(column, justify="right")
    for nproc, values in times.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        table.add_row(
            str(nproc), shown, f"{statistics.median(values):.1f}", f"{single / statistics.median(values):.2f}x"
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
