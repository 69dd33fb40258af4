#!/usr/bin/env bash
# `cca serve` throughput on this machine: trains a tiny checkpoint, starts the server on a free port, runs
# scripts/serve_load.py at concurrency 1 and 8, and stops the server.
#   scripts/bench_serve.sh [cca binary] [extra serve_load.py options]
set -euo pipefail
cca=${1:-.build/release/cca}
shift || true
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
"$cca" train --attention ccgqa --preset tiny --steps 200 --out "$work/tiny" > /dev/null
"$cca" serve --checkpoint "$work/tiny" --port 0 --max-batch 8 --max-tokens 256 > "$work/serve.log" 2>&1 &
server=$!
until grep -q "serving" "$work/serve.log"; do
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.1
done
url=$(grep -o 'http://[0-9.:]*' "$work/serve.log")
echo "$(head -1 "$work/serve.log")"
for concurrency in 1 8; do
    python3 "$(dirname "$0")/serve_load.py" --url "$url" --concurrency "$concurrency" --requests $((4 * concurrency + 8)) "$@"
done
