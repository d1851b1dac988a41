#!/usr/bin/env bash
# One run of the SD1.5-architecture fp16 suite on 1 GPU and on 2 GPUs (accelerate launch), then compare.
set -u
suite=benchmarks/suites/gpu_sd15_overhead.toml
test -f /tmp/sd15-random/model_index.json || python3 benchmarks/gpu/make_sd15.py /tmp/sd15-random 2>&1 | tail -1
python3 -m harness bless $suite --cache-dir /tmp/c0 2>&1 | tail -1
start=$(date +%s.%N)
CUDA_VISIBLE_DEVICES=0 python3 -m harness run $suite --out /tmp/one --cache-dir /tmp/c1 > /tmp/one.log 2>&1; echo "one GPU: exit $? in $(echo "$(date +%s.%N) - $start" | bc) s"
start=$(date +%s.%N)
accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no -m harness run $suite --out /tmp/two --cache-dir /tmp/c2 > /tmp/two.log 2>&1; echo "two GPUs: exit $? in $(echo "$(date +%s.%N) - $start" | bc) s"
grep -c "report:" /tmp/two.log
python3 - <<'PY'
import hashlib, json
import numpy as np
from PIL import Image
one, two = json.load(open("/tmp/one/results.json")), json.load(open("/tmp/two/results.json"))
same, worst = 0, 0
for a, b in zip(one["configs"][0]["samples"], two["configs"][0]["samples"]):
    x, y = np.asarray(Image.open("/tmp/one/" + a["image"])).astype(int), np.asarray(Image.open("/tmp/two/" + b["image"])).astype(int)
    same += int((x == y).all()); worst = max(worst, int(np.abs(x - y).max()))
print(f"identical images: {same}/{len(one['configs'][0]['samples'])}, max pixel difference {worst}")
for name, r in (("one", one), ("two", two)):
    c = r["configs"][0]
    print(name, r["environment"]["device_class"], "processes", r["environment"].get("processes", 1), "generate_s", c["timing"]["generate_s"], "load_s", c["timing"]["load_s"], "gpu MB", c["memory"].get("peak_gpu_allocated_mb"), c["memory"].get("per_process_peak_gpu_allocated_mb"), "psnr", [s["mean"] for s in c["summaries"]])
PY
cp /tmp/one/results.json $OUT/one.json; cp /tmp/two/results.json $OUT/two.json; tail -3 /tmp/two.log
