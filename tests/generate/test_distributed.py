"""Two CPU processes (torchrun, gloo) produce exactly what one process does; rank 0 writes one report.

Both as two processes on one node and as two "nodes" on localhost joined by torchrun's c10d
rendezvous, each node with its own output and cache folders (no shared filesystem).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import suite_head

BODY = (
    suite_head("d", prompts=["a red circle", "a cat", "a lighthouse"], seeds=[0, 1])
    + """batch_size = 2
[metrics]
psnr = {}
ssim = {}
[configs.fp32]
[configs.bf16]
dtype = "bfloat16"
"""
)


TORCHRUN = str(Path(sys.executable).parent / "torchrun")
# both sides one thread per process: CPU float results depend on the thread count
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
needs_torchrun = pytest.mark.skipif(shutil.which(TORCHRUN) is None, reason="torchrun not installed")


@pytest.fixture
def single(write_suite, tmp_path) -> Path:
    """The suite blessed and run in one process (into ``tmp_path / "one"``); returns the suite's path."""
    path = write_suite(BODY, name="d")
    subprocess.run([sys.executable, "-m", "harness", "bless", str(path)], env=ENV, check=True, capture_output=True)
    run = [sys.executable, "-m", "harness", "run", str(path), "--out", str(tmp_path / "one")]
    done = subprocess.run([*run, "--cache-dir", str(tmp_path / "c1")], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return path


def digests(run: Path) -> dict[str, str]:
    results = json.loads((run / "results.json").read_text())
    return {
        f"{c['name']}/{s['key']}": hashlib.sha256((run / s["image"]).read_bytes()).hexdigest()
        for c in results["configs"]
        for s in c["samples"]
    }


@needs_torchrun
def test_two_processes_equal_one(single, tmp_path):
    multi = subprocess.run(
        [
            TORCHRUN,
            "--nproc_per_node",
            "2",
            "-m",
            "harness",
            "run",
            str(single),
            "--out",
            str(tmp_path / "two"),
            "--cache-dir",
            str(tmp_path / "c2"),
            "--device",
            "cpu",
        ],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert multi.stdout.count("report:") == 1  # only rank 0 reports
    one, two = (
        json.loads((tmp_path / "one" / "results.json").read_text()),
        json.loads((tmp_path / "two" / "results.json").read_text()),
    )
    assert two["environment"]["processes"] == 2
    assert digests(tmp_path / "one") == digests(tmp_path / "two")
    for a, b in zip(one["configs"], two["configs"]):
        assert [s["mean"] for s in a["summaries"]] == [s["mean"] for s in b["summaries"]]
        assert b["timing"]["processes"] == 2
    assert [c["status"] for c in one["checks"]] == [c["status"] for c in two["checks"]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@needs_torchrun
def test_two_nodes_without_shared_folders(single, tmp_path):
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [
        subprocess.Popen(
            [
                TORCHRUN,
                "--nnodes",
                "2",
                "--nproc_per_node",
                "1",
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                endpoint,
                "--rdzv-id",
                "harness-test",
                "-m",
                "harness",
                "run",
                str(single),
                "--out",
                str(tmp_path / f"node{node}"),
                "--cache-dir",
                str(tmp_path / f"cache{node}"),
                "--device",
                "cpu",
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=600) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs):
        assert node.returncode == 0, stderr[-3000:]
    reporting = [tmp_path / f"node{n}" for n, (stdout, _) in enumerate(outputs) if "report:" in stdout]
    assert len(reporting) == 1  # rank 0's node alone writes results and reports
    run = reporting[0]
    other = ({tmp_path / "node0", tmp_path / "node1"} - {run}).pop()
    assert not (other / "results.json").exists()
    two = json.loads((run / "results.json").read_text())
    assert two["environment"]["processes"] == 2
    # rank 0's folder holds every image, those made on the other node included, byte for byte
    assert digests(tmp_path / "one") == digests(run)
    assert any(other.rglob("*.png"))  # the other node made its share in its own folder
