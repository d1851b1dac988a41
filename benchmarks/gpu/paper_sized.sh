#!/usr/bin/env bash
# A 1,000-image configuration on one GPU (issue #15): bless 1,000 fp16 references, then run bf16
# against them with psnr, ssim, clip_score, kid and fid, twice (reference caches empty, then filled).
# Prints each run's phase table, the generation memory, the process's peak RSS and the report's size;
# copies each results.json to $OUT.
set -u
suite=benchmarks/suites/gpu_sd15_1000.toml
test -f /tmp/sd15-random/model_index.json || python3 benchmarks/gpu/make_sd15.py /tmp/sd15-random 2>&1 | tail -1
peak() {  # run the harness CLI in this process and print its peak RSS afterwards
  python3 - "$@" <<'PY'
import resource, runpy, sys, time
sys.argv = ["harness", *sys.argv[1:]]
start = time.perf_counter()
try:
    runpy.run_module("harness", run_name="__main__")
except SystemExit as stop:
    code = stop.code
print(f"{sys.argv[1]}: exit {code}, wall {time.perf_counter() - start:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
PY
}
peak bless $suite --cache-dir /tmp/c1000 2>&1 | tail -2
# the first run scores the references and caches their values and features; the second finds them cached
for pass in first second; do
peak run $suite --config bf16 --out /tmp/run1000 --no-cache --cache-dir /tmp/c1000 > /tmp/run1000.log 2>&1
echo "== $pass run"
grep -E "phases|exit|wall" /tmp/run1000.log | tail -5
python3 - <<'PY'
import json, os
r = json.load(open("/tmp/run1000/results.json"))
c = r["configs"][0]
print("phases", json.dumps(r.get("phases")))
print("timing", {k: v for k, v in c["timing"].items() if k.endswith("_s")})
print("memory", c["memory"])
print("counters", r["counters"])
print("summaries", [(s["metric"], round(s["mean"], 4), s.get("ci_low"), s.get("ci_high")) for s in c["summaries"]])
print("report.html MiB", round(os.path.getsize("/tmp/run1000/report.html") / 2**20, 2))
PY
cp /tmp/run1000/results.json "$OUT/results_1000_$pass.json"
done
