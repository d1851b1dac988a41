#!/usr/bin/env bash
# Sequential sampling against fixed n on 1,000 images (issue #28).
#   benchmarks/gpu/sequential_1000.sh MODE...    (MODE: sequential or no-sequential)
# Blesses the fp16 references once per machine (skipped where /tmp/refs already holds them), then runs the suite
# once per MODE, in the order given (every run --no-cache). Runs are numbered across calls on one warm machine, so
# `sequential no-sequential` then `sequential no-sequential sequential` interleave. Copies each results.json to
# $OUT and prints wall time, images generated and verdicts per run.
set -u
suite=benchmarks/suites/gpu_sd15_1000_sequential.toml
test -f /tmp/sd15-random/model_index.json || python3 benchmarks/gpu/make_sd15.py /tmp/sd15-random 2>&1 | tail -1
if ! test -f /tmp/refs/gpu_sd15_1000/manifest.json; then
  start=$(date +%s.%N)
  python3 -m harness bless $suite --cache-dir /tmp/cseq > /tmp/bless.log 2>&1
  echo "bless exit $? in $(python3 -c "import time; print(round(time.time() - $start, 1))") s"
fi
i=$(ls -d /tmp/seq-*/ 2>/dev/null | wc -l)
for mode in "$@"; do
  i=$((i + 1))
  start=$(date +%s.%N)
  python3 -m harness run $suite --$mode --no-cache --cache-dir /tmp/cseq --out /tmp/seq-$i > /tmp/seq-$i.log 2>&1
  code=$?
  wall=$(python3 -c "import time; print(time.time() - $start)")
  cp /tmp/seq-$i/results.json "$OUT/sequential_1000_run${i}_${mode}.json" 2>/dev/null || tail -5 /tmp/seq-$i.log
  python3 - "$i" "$mode" "$code" "$wall" <<'PY'
import json, sys
i, mode, code, wall = sys.argv[1:]
r = json.load(open(f"/tmp/seq-{i}/results.json"))
images = sum(len(c["samples"]) for c in r["configs"])
rows = [(c["name"], len(c["samples"]), (c.get("sequential") or {}).get("stopped", "")[:90]) for c in r["configs"]]
checks = [(c["config"], c["check"], c["status"]) for c in r["checks"]]
print(f"run {i} {mode}: exit {code}, wall {float(wall):.1f} s, images {images}, phases {r.get('phases')}")
for row in rows:
    print("   ", row)
print("    checks", checks)
PY
done
