#!/usr/bin/env bash
# Provisioning benchmark: `behalf provision --automatic` in its own process against a
# `behalf sandbox` in another, so that the CPU time and peak memory measured are Behalf's alone.
# Prints a Markdown table row per scenario. Graph's throttling model is off here (the runs measure
# Behalf's own speed and cost); the write budget has its own benchmark, bench/budget.sh.
#
#   bash bench/provision.sh [USERS] [LATENCY_MS...]
#
# With BENCH_DATABASE_URL=postgres://… Behalf stores in that PostgreSQL database instead of the
# embedded SQLite. The database is a scratch one: its public schema is dropped before each row.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/sandbox.sh
users=${1:-2000}
shift || true
latencies=("${@:-0 20 50}")
cargo build --release --quiet
bin=target/release/behalf
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # name users latency extra-sandbox-flags...
  local name=$1 n=$2 latency=$3; shift 3
  local dir="$work/$name-$latency"; mkdir -p "$dir"
  "$bin" sandbox --users "$n" --latency-ms "$latency" "$@" >"$dir/sandbox.log" 2>&1 &
  local pid=$!
  local url
  url=$(sandbox_url "$dir/sandbox.log")
  if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    psql -q "$BENCH_DATABASE_URL" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null
    export BEHALF_DATABASE_URL="$BENCH_DATABASE_URL"
  fi
  use_sandbox "$dir/data" "$url"
  # Users enter the store through a dry run (one GET each), not measured.
  curl -s "$url/v1.0/users?\$top=999" >/dev/null || true
  "$bin" provision --csv <(printf 'UPN\n'; curl -s -X POST "$url/sandbox/token" -H 'content-type: application/json' -d '{}' \
      | python3 -c 'import json,sys,urllib.request; t=json.load(sys.stdin)["access_token"]; u=sys.argv[1]+"/v1.0/users?$select=userPrincipalName,accountEnabled&$top=999"
while u:
    p=json.load(urllib.request.urlopen(urllib.request.Request(u,headers={"Authorization":"Bearer "+t})))
    [print(x["userPrincipalName"]) for x in p["value"] if x["accountEnabled"]]
    u=p.get("@odata.nextLink")' "$url") --dry-run >/dev/null 2>&1
  /usr/bin/time -f '%U %S %M %w' -o "$dir/time" "$bin" provision --automatic --concurrency 64 --json \
    --failures "$dir/failures.csv" >"$dir/summary.json" 2>"$dir/provision.log" || true
  read -r user sys rss switches <"$dir/time"
  python3 - "$name" "$latency" "$user" "$sys" "$rss" "$switches" "$dir/summary.json" "$url" <<'PY'
import json, sys, urllib.request
name, latency, user, sys_, rss, switches, summary, url = sys.argv[1:]
s = json.load(open(summary))
state = json.load(urllib.request.urlopen(url + "/sandbox/state"))
n = s["registered"]
cpu_ms = (float(user) + float(sys_)) * 1000 / max(n, 1)
rate = s["users_per_second"]
print(f"| {name} | {n} | {latency} ms | {rate:.1f} | {cpu_ms:.2f} | {int(switches) / max(n, 1):.1f} | {int(rss) / 1024:.0f} MiB | {state['throttled429']} |")
PY
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
}

echo "| scenario | users | sandbox latency | users/s | Behalf CPU ms / user | voluntary context switches / user | Behalf peak RSS | 429s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
backend=$([ -n "${BENCH_DATABASE_URL:-}" ] && echo postgres || echo sqlite)
for latency in ${latencies[@]}; do
  run "open-$backend" "$users" "$latency" --no-graph-throttling
done
