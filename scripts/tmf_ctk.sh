#!/usr/bin/env bash
# Runs TM Forum's TMF621 conformance kits (R18 against v4, v5.0.0 against v5) against a fresh
# `eoms serve --demo` with the TMF service account turned on (the kits send no credentials), and
# fails unless they report exactly "158 passed, 0 failed" (R18) and "29 passed, 0 failed" (v5).
# Usage: scripts/tmf_ctk.sh [path/to/eoms]. Needs node and npm (the kit runner installs newman);
# the kits are looked for in $EOMS_TMF_KITS (default ../shared/tmf621, then /work/shared/tmf621).
# Under CI=true a missing node, npm or kit fails the run instead of skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/eoms}"
kits="${EOMS_TMF_KITS:-}"
if [ -z "$kits" ]; then
  for d in ../shared/tmf621 /work/shared/tmf621; do
    [ -x "$d/run_ctk.sh" ] && { kits="$d"; break; }
  done
fi
missing=""
command -v node >/dev/null 2>&1 || missing="node"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -n "$kits" ] && [ -x "$kits/run_ctk.sh" ] || missing="$missing the TMF621 kits (EOMS_TMF_KITS)"
if [ -n "$missing" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "tmf_ctk: missing $missing (required under CI=true)" >&2
    exit 1
  fi
  echo "tmf_ctk: skipped, missing $missing"
  exit 0
fi
port="${EOMS_TMF_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
dir="$(mktemp -d)"
EOMS_DATA_DIR="$dir" EOMS_LISTEN="127.0.0.1:$port" EOMS_TMF_SERVICE_ACCOUNT="${EOMS_TMF_SERVICE_ACCOUNT:-sd_applicant}" \
  "$bin" serve --demo >"$dir/out.log" 2>"$dir/server.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
base="http://127.0.0.1:$port/tmf-api/troubleTicket"
status=0
check() { # kit, url, expected last line
  local out last
  out="$("$kits/run_ctk.sh" "$1" "$2" 2>&1)" || true
  last="$(printf '%s\n' "$out" | tail -n 1)"
  echo "tmf_ctk $1: $last"
  if [ "$last" != "$3" ]; then
    printf '%s\n' "$out" | grep -E '✖|failed|AssertionError|[0-9]+\. ' | head -40 >&2 || true
    echo "tmf_ctk $1: expected '$3'" >&2
    status=1
  fi
}
check r18 "$base/v4" "158 passed, 0 failed"
check v5 "$base/v5" "29 passed, 0 failed"
exit $status
