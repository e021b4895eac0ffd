#!/usr/bin/env bash
# The NATS wire protocol from outside Node: builds examples/go-client (Go and nats.go from Debian, built
# offline in GOPATH mode against the Debian packages' Go source tree), starts the serving node of
# examples/go-client/node.ts, and runs the Go client against it in both codecs (json/1, tagged-json/1).
# Fails on any mismatch. Needs NATS_URL (.ci/run exports it) and the built dist/ (npm test builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/nats-io/nats.go ]; then
  apt-get update && apt-get install -y golang-go golang-github-nats-io-go-nats-dev
fi
: "${NATS_URL:?NATS_URL must name a running nats-server (.ci/run starts one)}"
[ -f dist/examples/go-client/node.js ] || node build.mjs --fast

WORK="$(mktemp -d)"
NODE_PID=""
cleanup() {
  if [ -n "$NODE_PID" ]; then kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "go-client: building with $(go version)"
# Go's build cache (~/.cache/go-build) makes a rebuild take a second; without a HOME, a throwaway one.
[ -n "${HOME:-}" ] || export GOCACHE="$WORK/gocache"
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$WORK/go-client" ./examples/go-client

PREFIX="goclient$$"
CQRS_PREFIX="$PREFIX" node dist/examples/go-client/node.js >"$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 150); do
  grep -q '^ready' "$WORK/node.log" && break
  kill -0 "$NODE_PID" 2>/dev/null || { cat "$WORK/node.log"; echo "go-client: the serving node exited"; exit 1; }
  sleep 0.1
done
grep -q '^ready' "$WORK/node.log" || { cat "$WORK/node.log"; echo "go-client: the serving node is not ready"; exit 1; }

"$WORK/go-client" -url "$NATS_URL" -prefix "$PREFIX.json" -codec json/1
"$WORK/go-client" -url "$NATS_URL" -prefix "$PREFIX.tagged" -codec tagged-json/1

# A graceful stop: the node answers what it holds, then reports.
kill -TERM "$NODE_PID"
wait "$NODE_PID" || true
NODE_PID=""
grep -q '^stopped' "$WORK/node.log" || { cat "$WORK/node.log"; echo "go-client: the node did not stop gracefully"; exit 1; }
echo "go-client: every check passed in both codecs"
