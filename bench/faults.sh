#!/usr/bin/env bash
# The Graph client under sporadic throttling and under budgets it has not seen (issue 18):
# `behalf provision --automatic` (release build, its own processes) against `behalf sandbox`
# (another process), each case side by side with its fault-free or unshared twin, in one run.
# Prints a Markdown table, a row per run, the twin first.
#
#   bash bench/faults.sh [CASE...]
#
# Cases (all by default): sporadic, budget100, budget600, budget3000, shared, latency.
# KEEP=1 keeps the work directory (logs, sandbox states) and prints its path; BEHALF_BIN=path
# runs that binary instead of building one (SANDBOX_BIN=path: the sandbox's); SAMPLE=1 also
# records, every 0.5 s of each run, the writes admitted and the write budget left
# (DIR/NAME/samples.tsv, with KEEP=1): how the client spends the budget over time.
#
# Definitions (all counted by the sandbox, over the provisioning run only; "run" is the wall
# time from starting the `behalf provision` process(es) to the last one's end, start-up included):
# - writes used = writes the budget admitted / (what the bucket held when the run started
#   + (refill rate − what another client takes) × run);
# - units used = the same for the resource-unit budget;
# - 429 % = answers 429 (any cause) / Graph requests (each attempt counts);
# - early = requests re-sent before the Retry-After they were given.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/sandbox.sh
cases=("${@:-sporadic budget100 budget600 budget3000 shared latency}")
# BEHALF_BIN=path uses that binary instead of building one.
if [ -z "${BEHALF_BIN:-}" ]; then cargo build --release --quiet -p behalf; fi
bin=${BEHALF_BIN:-$PWD/target/release/behalf}
# SANDBOX_BIN=path runs the sandbox from that binary (by default the same one), so that two
# clients are compared against one sandbox.
sandbox_bin=${SANDBOX_BIN:-$bin}
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# run NAME USERS CONCURRENCY PROCESSES SANDBOX-FLAGS...
run() {
  local name=$1 users=$2 c=$3 procs=$4; shift 4
  local dir="$work/$name"; mkdir -p "$dir"
  # One seeded user more than asked: the first is the tenant's administrator.
  "$sandbox_bin" sandbox --users "$((users + 1))" "$@" >"$dir/sandbox.log" 2>&1 &
  local sandbox=$!
  local url
  url=$(sandbox_url "$dir/sandbox.log")
  local p
  for p in $(seq 1 "$procs"); do
    (use_sandbox "$dir/data$p" "$url"; "$bin" import --json >"$dir/import$p.json" 2>"$dir/import$p.log")
  done
  sleep 1
  curl -s "$url/sandbox/state" >"$dir/before.json"
  curl -s "$url/sandbox/knobs" >"$dir/knobs.json"
  cut -d' ' -f1 /proc/loadavg >"$dir/load0"
  python3 -c 'import time; print(time.monotonic())' >"$dir/t0"
  # Several processes share the work as two instances of a service would: each registers its
  # own part of the users (every other one of the plan), so no user gets two passkeys and a
  # request of one is never taken for a retry of the other's.
  local select=(--automatic)
  if [ "$procs" -gt 1 ]; then
    (use_sandbox "$dir/data1" "$url"; "$bin" provision --automatic --dry-run --json >"$dir/plan.json")
    python3 - "$dir" "$procs" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
upns = [u["upn"] for u in json.load(open(f"{d}/plan.json"))["users"]]
for p in range(n):
    with open(f"{d}/part{p + 1}.csv", "w") as f:
        f.write("UPN\n" + "".join(u + "\n" for u in upns[p::n]))
PY
  fi
  local pids=()
  for p in $(seq 1 "$procs"); do
    [ "$procs" -gt 1 ] && select=(--csv "$dir/part$p.csv")
    (use_sandbox "$dir/data$p" "$url"
     exec "$bin" provision "${select[@]}" --concurrency "$c" --json --failures "$dir/failures$p.csv" \
       >"$dir/summary$p.json" 2>"$dir/provision$p.log") &
    pids+=($!)
  done
  local sampler=""
  if [ "${SAMPLE:-0}" = 1 ]; then
    (while true; do
       python3 -c "import json, sys, time
s = json.load(sys.stdin)
print('%.2f\t%s\t%.1f\t%s' % (time.monotonic(), s['writesAdmitted'], sum(s['writeBudgetLeft'].values()), s['throttled429']))" \
         < <(curl -s "$url/sandbox/state") >>"$dir/samples.tsv" || true
       sleep 0.5
     done) &
    sampler=$!
  fi
  # DIR/NAME/ends: when each process was seen ended, in the order they were started (a later
  # one that ended first is seen when the earlier one ends).
  for p in "${pids[@]}"; do
    wait "$p" || true
    python3 -c 'import time; print(time.monotonic())' >>"$dir/ends"
  done
  [ -n "$sampler" ] && { kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true; }
  python3 -c 'import time; print(time.monotonic())' >"$dir/t1"
  cut -d' ' -f1 /proc/loadavg >"$dir/load1"
  curl -s "$url/sandbox/state" >"$dir/after.json"
  kill "$sandbox" 2>/dev/null || true; wait "$sandbox" 2>/dev/null || true
  python3 - "$dir" "$name" "$c" "$procs" <<'PY'
import glob, json, sys
d, name, c, procs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
load = lambda n: json.load(open(f"{d}/{n}"))
before, after, knobs = load("before.json"), load("after.json"), load("knobs.json")
t0, t1 = (float(open(f"{d}/{n}").read()) for n in ("t0", "t1"))
seconds = t1 - t0
delta = lambda k: after[k] - before[k]
registered = sum(json.load(open(f))["registered"] for f in glob.glob(f"{d}/summary*.json"))
requests, t429, early = delta("graphRequests"), delta("throttled429"), delta("earlyRetries")
def used(admitted, left, capacity, window_ms, shared=0.0):
    if not knobs["graphThrottling"] or capacity <= 0:
        return "–"
    level = sum(left.values()) if left else capacity
    rate = capacity / (window_ms / 1000) - shared
    return f"{100 * admitted / (level + rate * seconds):.1f} %"
writes = used(delta("writesAdmitted"), before["writeBudgetLeft"], knobs["writeBudget"],
              knobs["writeWindowMs"], knobs.get("sharedWritesPerSec", 0.0))
units_cap = knobs.get("resourceUnits") or 0
units = used(delta("unitsAdmitted"), before["resourceUnitsLeft"], units_cap,
             knobs["resourceUnitWindowMs"]) if knobs.get("resourceUnits") else "–"
print(f"| {name} | {registered} | {c} × {procs} | {knobs['latencyMs']} ms | {seconds:.1f} s "
      f"| {registered / seconds:.1f} | {writes} | {units} | {t429} of {requests} "
      f"({100 * t429 / max(requests, 1):.2f} %) | {early} "
      f"| {open(f'{d}/load0').read().strip()} → {open(f'{d}/load1').read().strip()} |", flush=True)
PY
}

echo "| run | users registered | concurrency × processes | latency | run | users/s | writes used | units used | 429s (of Graph requests) | early retries | load avg |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for case in ${cases[@]}; do
  case $case in
    sporadic)
      # The issue's run: a 429 (Retry-After: 1) every 17th request, a 503 every 53rd.
      run sporadic-twin 2000 16 1 --no-graph-throttling
      run sporadic 2000 16 1 --no-graph-throttling --throttle-every 17 --fail-every 53 --retry-after 1 ;;
    budget100)
      # Three windows past the burst at 20/s, one write a user, then two.
      run budget100-options-read 700 16 1 --write-budget 100 --write-window-secs 5
      run budget100-options-write 350 16 1 --write-budget 100 --write-window-secs 5 --creation-options-write ;;
    budget600)
      run budget600-options-read 1800 16 1 --write-budget 600 --write-window-secs 30
      run budget600-options-write 900 16 1 --write-budget 600 --write-window-secs 30 --creation-options-write ;;
    budget3000)
      run budget3000-options-read 4800 16 1 --write-budget 3000 --write-window-secs 150
      run budget3000-options-write 2400 16 1 --write-budget 3000 --write-window-secs 150 --creation-options-write ;;
    shared)
      # Two Behalf processes (own data directories, the same app) on one budget, each
      # registering half of the users, so the writes of both count against the one budget.
      run shared-twin 1800 16 1 --write-budget 600 --write-window-secs 30
      run shared 1800 16 2 --write-budget 600 --write-window-secs 30
      run shared-options-write-twin 900 16 1 --write-budget 600 --write-window-secs 30 --creation-options-write
      run shared-options-write 900 16 2 --write-budget 600 --write-window-secs 30 --creation-options-write ;;
    latency)
      # C / (2 × RTT) = 64 / (2 × 50 ms) = 640 users/s; then a resource-unit budget of 2,000 per
      # 10 s (200/s: 100 users/s at two units a user) with no write budget.
      run latency 8000 64 1 --no-graph-throttling --latency-ms 50
      run latency-units 8000 64 1 --latency-ms 50 --write-budget 0 --resource-units 2000 --resource-unit-window-secs 10 ;;
    *) echo "unknown case $case" >&2; exit 2 ;;
  esac
done
