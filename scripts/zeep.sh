#!/usr/bin/env bash
# Runs scripts/zeep_check.py (every inbound CSS method through the WSDL, with Python's zeep)
# against a fresh `eoms serve --demo`. Usage: scripts/zeep.sh [path/to/eoms]. Needs: pip install zeep
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/eoms}"
port="${EOMS_ZEEP_PORT:-18088}"
dir="$(mktemp -d)"
EOMS_DATA_DIR="$dir" EOMS_LISTEN="127.0.0.1:$port" "$bin" serve --demo >"$dir/out.log" 2>"$dir/server.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
python3 scripts/zeep_check.py "http://127.0.0.1:$port"
