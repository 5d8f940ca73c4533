# Sourced by the bench scripts: start-up of a `behalf sandbox` process, and Behalf's
# configuration to provision into it.

# Waits for the sandbox logging to $1 to print its address (30 s at most), then prints it.
sandbox_url() {
  local log=$1 url=""
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n 1 || true)
    [ -n "$url" ] && break; sleep 0.1
  done
  [ -n "$url" ] || { echo "the sandbox did not start: $(cat "$log")" >&2; return 1; }
  echo "$url"
}

# Points Behalf (data directory $1) at the sandbox at $2, with the sandbox's app credentials.
use_sandbox() {
  export BEHALF_DATA_DIR="$1" BEHALF_ENTRA__TENANT_ID=8d2c6a4e-0b1f-4e7a-9c3d-5f6e7a8b9c0d \
    BEHALF_ENTRA__CLIENT_ID=5c7f6d3e-8a41-4b0c-9e2f-0d1a2b3c4d5e BEHALF_ENTRA__CLIENT_SECRET='sandbox~provisioning~secret' \
    BEHALF_ENTRA__GRAPH_BASE_URL="$2" BEHALF_ENTRA__LOGIN_BASE_URL="$2" RUST_LOG=${RUST_LOG:-warn}
}
