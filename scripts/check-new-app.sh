#!/usr/bin/env bash
# CI check of the scaffold: generates an app into a temporary folder with scripts/new-app.ts,
# runs its `make test` (npm install from the cache, typhoon's build, tsc, tap), then its
# `make run` and one request to it. Bounded: 420 s for the test (npm install included), 60 s for the run.
# Usage: scripts/check-new-app.sh   (from anywhere; exit 0 when every step passed)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d -t typhoon-new-app.XXXXXX)"
server=""
cleanup() {
  if [[ -n "$server" ]]; then kill -- "-$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cd "$root"
node --import tsx scripts/new-app.ts --name checkapp --dir "$work/checkapp"

# A second run into the same, now non-empty, folder must refuse and change nothing.
if node --import tsx scripts/new-app.ts --name checkapp --dir "$work/checkapp" 2>/dev/null; then
  echo "check-new-app: new-app overwrote a non-empty folder" >&2
  exit 1
fi

cd "$work/checkapp"
timeout 420 make test

port=$((20000 + RANDOM % 20000))
# Its own process group, so the cleanup stops make, node and anything they started.
setsid make run PORT="$port" >"$work/run.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
  if body="$(curl -fsS "http://127.0.0.1:$port/greet/ci" 2>/dev/null)"; then break; fi
  sleep 0.5
done
if [[ "${body:-}" != "Hello, ci!" ]]; then
  echo "check-new-app: make run did not serve /greet/ci (got '${body:-nothing}')" >&2
  cat "$work/run.log" >&2
  exit 1
fi
echo "check-new-app: make test passed and make run served /greet/ci"
