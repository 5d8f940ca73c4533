#!/usr/bin/env bash
# Write-budget pacing benchmark: `behalf provision --automatic` (release build, its own process)
# against `behalf sandbox` (another process) with Graph's write budget on, and how much of that
# budget the pacer used and how often it was answered 429. Prints a Markdown table, a row per
# concurrency.
#
#   bash bench/budget.sh [USERS] [CONCURRENCY...]
#
# Environment: WRITE_BUDGET (writes per window, default 3000, Graph's), WRITE_WINDOW_SECS
# (default 150, Graph's), LATENCY_MS (added by the sandbox to every request, default 0),
# KEEP=1 keeps the work directory (samples, logs) and prints its path.
#
# Definitions (all counted by the sandbox, over the provisioning run only):
# - budget available over the run = what the bucket held when the run started + refill rate ×
#   the run's wall time (the `behalf provision` process, start-up included);
# - budget used = writes the budget admitted / budget available;
# - steady state = from the first sample (one a second) at which the bucket is down to 6 % of
#   the budget (the initial burst is spent: the pacer hovers at 5 %) to the last sample before
#   the run ended: writes admitted per second over that span / the refill rate (the bucket's
#   level at both ends is shown: what it lost in between was spent on top of the refill);
# - 429 % = answers 429 (any cause) / Graph requests (each attempt counts).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/sandbox.sh
users=${1:-10400}
shift || true
concurrencies=("${@:-16 64}")
budget=${WRITE_BUDGET:-3000}
window=${WRITE_WINDOW_SECS:-150}
latency=${LATENCY_MS:-0}
cargo build --release --quiet -p behalf
bin=$PWD/target/release/behalf
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

run() { # concurrency
  local c=$1
  local dir="$work/c$c"; mkdir -p "$dir"
  # One seeded user more than asked: the first is the tenant's administrator.
  "$bin" sandbox --users "$((users + 1))" --latency-ms "$latency" \
    --write-budget "$budget" --write-window-secs "$window" >"$dir/sandbox.log" 2>&1 &
  local sandbox=$!
  local url
  url=$(sandbox_url "$dir/sandbox.log")
  use_sandbox "$dir/data" "$url"
  # Users enter the store through a directory import (reads only: the write budget stays full).
  "$bin" import --json >"$dir/import.json" 2>"$dir/import.log"
  # Sample the sandbox's counters once a second while provisioning runs.
  python3 - "$url" "$dir/samples.jsonl" <<'PY' &
import json, sys, time, urllib.request
url, out = sys.argv[1:]
with open(out, "w") as f:
    while True:
        t = time.monotonic()
        s = json.load(urllib.request.urlopen(url + "/sandbox/state"))
        left = list(s["writeBudgetLeft"].values())
        f.write(json.dumps({"t": t, "admitted": s["writesAdmitted"], "left": left[0] if left else None,
                            "requests": s["graphRequests"], "throttled": s["throttled429"]}) + "\n")
        f.flush()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
PY
  local sampler=$!
  sleep 1.5
  curl -s "$url/sandbox/state" >"$dir/before.json"
  python3 -c 'import time; print(time.monotonic())' >"$dir/t0"
  cut -d' ' -f1 /proc/loadavg >"$dir/load0"
  /usr/bin/time -f '%U %S %M' -o "$dir/time" "$bin" provision --automatic --concurrency "$c" --json \
    --failures "$dir/failures.csv" >"$dir/summary.json" 2>"$dir/provision.log" || true
  python3 -c 'import time; print(time.monotonic())' >"$dir/t1"
  cut -d' ' -f1 /proc/loadavg >"$dir/load1"
  curl -s "$url/sandbox/state" >"$dir/after.json"
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  kill "$sandbox" 2>/dev/null || true; wait "$sandbox" 2>/dev/null || true
  python3 - "$dir" "$c" "$budget" "$window" "$latency" <<'PY'
import json, sys
d, c, budget, window, latency = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
rate = budget / window
load = lambda name: json.load(open(f"{d}/{name}"))
before, after, summary = load("before.json"), load("after.json"), load("summary.json")
t0, t1 = (float(open(f"{d}/{n}").read()) for n in ("t0", "t1"))
user, sys_, rss = open(f"{d}/time").read().split()
samples = [json.loads(l) for l in open(f"{d}/samples.jsonl")]
delta = lambda k: after[k] - before[k]
admitted, requests, t429, early = delta("writesAdmitted"), delta("graphRequests"), delta("throttled429"), delta("earlyRetries")
left0 = next(iter(before["writeBudgetLeft"].values()), budget)
seconds = t1 - t0
used = admitted / (left0 + rate * seconds)
run = [s for s in samples if t0 <= s["t"] <= t1]
start = next((s for s in run if s["left"] is not None and s["left"] <= 0.06 * budget), None)
if start and run[-1]["t"] - start["t"] > 10:
    end = run[-1]
    span = end["t"] - start["t"]
    steady = (end["admitted"] - start["admitted"]) / span
    steady_cell = f"{steady:.2f}/s over {span:.0f} s = {100 * steady / rate:.1f} % (bucket {start['left']:.0f} → {end['left']:.0f})"
else:
    steady_cell = "– (burst never spent)"
lowest = min((s["left"] for s in run if s["left"] is not None), default=float("nan"))
n = summary["registered"]
cpu_ms = (float(user) + float(sys_)) * 1000 / max(n, 1)
print(f"| {budget:.0f} / {window:.0f} s ({rate:g}/s) | {n} | {c} | {latency} ms | {seconds:.0f} s "
      f"| {admitted} | {admitted / seconds:.2f}/s | {100 * used:.1f} % | {steady_cell} | {lowest:.0f} "
      f"| {t429} of {requests} ({100 * t429 / max(requests, 1):.2f} %) | {early} | {cpu_ms:.2f} "
      f"| {open(f'{d}/load0').read().strip()} → {open(f'{d}/load1').read().strip()} |")
PY
}

echo "| write budget | users registered | concurrency | sandbox latency | run | writes admitted | writes/s | budget used (run) | steady state | lowest bucket | 429s (of Graph requests) | early retries | Behalf CPU ms / user | load avg (start → end) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for c in ${concurrencies[@]}; do
  run "$c"
done
