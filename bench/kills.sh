#!/usr/bin/env bash
# Killed at random moments (issue 18): `behalf provision --automatic` (release build) against
# `behalf sandbox` answering every 31st Graph request with a bare 429 (`Retry-After: 1`), killed
# with SIGKILL KILLS times (default 10) at a random moment each, every restart as soon as the last
# one died, then run to the end. Prints a Markdown row: users with exactly one passkey at the
# sandbox, with none and with more than one, the 429s, and the early retries the sandbox counted
# (a request sent again before the Retry-After it was answered with, by any run).
#
#   bash bench/kills.sh            USERS (default 2000), KILLS (10), CONCURRENCY (16),
#                                  SEED (random moments from this seed; default: the time)
# KEEP=1 keeps the work directory; BEHALF_BIN=path runs that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/sandbox.sh
users=${USERS:-2000} kills=${KILLS:-10} c=${CONCURRENCY:-16} seed=${SEED:-$(date +%s)}
if [ -z "${BEHALF_BIN:-}" ]; then cargo build --release --quiet -p behalf; fi
bin=${BEHALF_BIN:-$PWD/target/release/behalf}
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# One seeded user more than asked: the first is the tenant's administrator.
"$bin" sandbox --users "$((users + 1))" --no-graph-throttling --throttle-every 31 --retry-after 1 \
  >"$work/sandbox.log" 2>&1 &
url=$(sandbox_url "$work/sandbox.log")
use_sandbox "$work/data" "$url"
"$bin" import --json >"$work/import.json" 2>"$work/import.log"
# The users to provision (the enabled ones), by UPN, as Behalf plans them.
"$bin" provision --automatic --dry-run --json >"$work/plan.json"
# The moments: uniform in 0.2 s .. 1.5 s after each start (a start takes a few tenths of a
# second, so some kills land in the start-up, most in the middle of the work).
moments=$(python3 -c "import random; r = random.Random($seed); print(' '.join(f'{r.uniform(0.2, 1.5):.3f}' for _ in range($kills)))")
for m in $moments; do
  "$bin" provision --automatic --concurrency "$c" --json >>"$work/runs.json" 2>>"$work/provision.log" &
  pid=$!
  sleep "$m"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
"$bin" provision --automatic --concurrency "$c" --json >"$work/last.json" 2>>"$work/provision.log" || true
curl -s "$url/sandbox/state" >"$work/state.json"
python3 - "$work/state.json" "$work/plan.json" "$kills" "$seed" "$moments" <<'PY'
import json, sys
state, plan = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
kills, seed, moments = sys.argv[3:6]
planned = {u["upn"].lower() for u in plan["users"]}
per = {upn.lower(): n for upn, n in state["fido2MethodsPerUser"].items()}
one = sum(1 for u in planned if per.get(u) == 1)
none = sum(1 for u in planned if u not in per)
many = sum(1 for u in planned if per.get(u, 0) > 1)
stray = sum(1 for u in per if u not in planned)
print("| users to provision | kills (seed) | exactly one passkey | none | more than one | others with one | 429s (of Graph requests) | early retries |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
print(f"| {len(planned)} | {kills} ({seed}) | {one} | {none} | {many} | {stray} | {state['throttled429']} of {state['graphRequests']} | {state['earlyRetries']} |")
print(f"kill moments (s after each start): {moments}", file=sys.stderr)
sys.exit(0 if one == len(planned) and many == 0 and stray == 0 and state["earlyRetries"] == 0 else 1)
PY
