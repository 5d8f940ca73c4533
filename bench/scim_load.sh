#!/usr/bin/env bash
# SCIM load benchmark: `GET /Users?filter=userName eq "…"` for random existing userNames under 8
# concurrent connections (wrk, bench/scim_load.lua) against `behalf serve` (release build, its own
# process) with N users stored, on SQLite and on PostgreSQL. Prints a Markdown table, a row per
# backend and size: requests/s, p50, p99, and how the users were loaded.
#
#   bash bench/scim_load.sh [SIZES...]          (default: 20000 100000)
#
# The users are loaded through SCIM itself, the way Entra's provisioning service creates them:
# the sandbox's SCIM client (crates/sandbox/examples/scim_push.rs) pushes a seeded tenant of N
# users (a userName lookup and a POST each, 8 at once, then the groups and their members), so the
# rows are exactly what provisioning writes.
#
# Environment: BACKENDS (default "sqlite postgres"), PG_URL (server URL without a database,
# default postgres://postgres@127.0.0.1:5432; a fresh database behalf_scim_bench_<size>_<pid> is
# made and dropped), DURATION (default 30s), CONNECTIONS (8), THREADS (wrk threads, 2),
# PIN=1 gives the server and the load generator a core each (`taskset`: the server on CPU 1,
# wrk with one thread on CPU 0; PostgreSQL's backends where the OS puts them): on a 2-core
# machine wrk's threads otherwise take turns with the server's, which is most of the p99.
# KEEP=1 keeps the work directory (logs, wrk output) and prints its path, SKIP_BUILD=1 uses the
# release binaries as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=(${@:-20000 100000})
backends=(${BACKENDS:-sqlite postgres})
pg=${PG_URL:-postgres://postgres@127.0.0.1:5432}
duration=${DURATION:-30s}
connections=${CONNECTIONS:-8}
threads=${THREADS:-2}
server_pin=() load_pin=()
if [ "${PIN:-0}" = 1 ]; then
  server_pin=(taskset -c 1) load_pin=(taskset -c 0) threads=1
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --quiet -p behalf
  cargo build --release --quiet -p behalf-sandbox --example scim_push
fi
bin=$PWD/target/release/behalf
push=$PWD/target/release/examples/scim_push
work=$(mktemp -d)
dbs=()
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  for db in "${dbs[@]}"; do psql -q "$pg/test" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

run() { # backend size
  local backend=$1 size=$2 dir=$work/$1-$2 url="" pid token
  mkdir -p "$dir"
  export BEHALF_DATA_DIR=$dir RUST_LOG=${RUST_LOG:-warn}
  unset BEHALF_DATABASE_URL
  if [ "$backend" = postgres ]; then
    local db=behalf_scim_bench_${size}_$$
    dbs+=("$db")
    psql -q "$pg/test" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    export BEHALF_DATABASE_URL=$pg/$db
  fi
  token=$("$bin" scim-token create --name bench 2>"$dir/token.log")
  "${server_pin[@]}" "$bin" serve --no-workers --listen 127.0.0.1:0 >"$dir/serve.out" 2>"$dir/serve.log" &
  pid=$!
  for _ in $(seq 1 300); do
    url=$(sed -n 's/^behalf listening on //p' "$dir/serve.out" | head -n 1)
    [ -n "$url" ] && break; sleep 0.1
  done
  [ -n "$url" ] || { echo "behalf serve did not start: $(cat "$dir/serve.log")" >&2; exit 1; }
  local t0=$SECONDS
  SCIM_TOKEN=$token "$push" --url "$url/scim/v2" --users "$size" --names-out "$dir/names.txt" >"$dir/push.txt"
  local load_secs=$((SECONDS - t0))
  # PostgreSQL plans from statistics that autovacuum gathers some time after a bulk load; a
  # database that has been in use has them. Gather them now rather than measure a cold planner.
  if [ "$backend" = postgres ]; then psql -q "$BEHALF_DATABASE_URL" -c ANALYZE; fi
  export SCIM_TOKEN=$token SCIM_NAMES=$dir/names.txt
  # Warm-up (caches, connection pools), then the measured run.
  "${load_pin[@]}" wrk -t"$threads" -c"$connections" -d5s -s bench/scim_load.lua "$url" >/dev/null
  "${load_pin[@]}" wrk -t"$threads" -c"$connections" -d"$duration" --latency -s bench/scim_load.lua "$url" >"$dir/wrk.txt"
  python3 - "$backend" "$size" "$load_secs" "$dir/wrk.txt" "$dir/push.txt" <<'PY'
import re, sys
backend, size, load_secs, wrk, push = sys.argv[1:]
text = open(wrk).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors:.*", text)
total = re.search(r"(\d+) requests in", text).group(1)
note = f"{bad.group(1)} non-2xx" if bad else "all 200"
if errors: note += "; " + errors.group(0)
print(f"| {backend} | {int(size):,} | {rps:,.0f} | {ms('50%'):.2f} ms | {ms('99%'):.2f} ms | {int(total):,} ({note}) | {load_secs} s |")
PY
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
}

echo "| backend | users stored | requests/s | p50 | p99 | requests in $duration | load via SCIM POST |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for backend in "${backends[@]}"; do
  for size in "${sizes[@]}"; do
    run "$backend" "$size"
  done
done
