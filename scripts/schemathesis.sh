#!/usr/bin/env bash
# Runs Schemathesis against a live `eoms serve --demo`: every operation of the OpenAPI document,
# fuzzed as the demo admin (who may call all of them), checking that no request makes a server
# error. Usage: scripts/schemathesis.sh [path/to/eoms]   (default: target/release/eoms)
# Needs: pip install schemathesis. EOMS_ST_EXAMPLES sets the examples per operation (default 25).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/eoms}"
port="${EOMS_ST_PORT:-18089}"
work="$(mktemp -d)"
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap 'stop; rm -rf "$work"' EXIT

# A fresh demo server in its own data directory.
start() {
  local dir="$work/$1"
  mkdir -p "$dir"
  EOMS_DATA_DIR="$dir" EOMS_LISTEN="127.0.0.1:$port" "$bin" serve --demo >"$dir/out.log" 2>"$work/server-$1.log" &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "schemathesis: the server did not start" >&2
  cat "$work/server-$1.log" >&2
  exit 1
}
token() {
  curl -fs -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"eoms-demo\"}" | python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])'
}
run() {
  st run "http://127.0.0.1:$port/api/openapi.json" --checks not_a_server_error --phases coverage,fuzzing \
    --max-examples "${EOMS_ST_EXAMPLES:-25}" --warnings off "$@"
}

# Everything but the calls that end or change the admin's own access, so the rest runs signed in.
start all
# (The live notification stream stays open for minutes by design: not fuzzed.)
run -H "Authorization: Bearer $(token admin)" --exclude-operation-id notificationStream \
  --exclude-operation-id signOut --exclude-operation-id updateUser \
  --exclude-operation-id saveDirectory --exclude-operation-id changePassword --exclude-operation-id revokeToken
stop
# Then those, on a fresh server (the first run may have reset demo passwords), each signed in anew.
start access
for op in saveDirectory updateUser revokeToken changePassword signOut; do
  run -H "Authorization: Bearer $(token admin)" --include-operation-id "$op"
done
stop
if grep -h 'status=5' "$work"/server-*.log; then
  echo "schemathesis: the server answered with a server error (above)" >&2
  exit 1
fi
echo "schemathesis: no server errors"
