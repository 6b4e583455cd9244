#!/usr/bin/env bash
# Two gateways sharing one nats-server (the NATS JetStream bus), everything on loopback:
#
#   bash examples/two-gateways/run.sh
#
# nats-server on 127.0.0.1:4222, gateways on http://127.0.0.1:9001/ and :9002/ (ports from
# NATS_PORT, PORT_A, PORT_B), both accepting the API key $SYMPHONIC_KEY (default example-key).
# The two demo pages share one board; a client resumes its session on either gateway.
# Ctrl-C stops all three; JetStream's store is a temporary directory, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

NATS_PORT="${NATS_PORT:-4222}"
PORT_A="${PORT_A:-9001}"
PORT_B="${PORT_B:-9002}"
KEY="${SYMPHONIC_KEY:-example-key}"

if ! command -v nats-server >/dev/null 2>&1; then
  echo "this example needs nats-server: apt-get install nats-server (or https://nats.io/download/)" >&2
  exit 1
fi

store="$(mktemp -d)"
nats_pid=""
gateway_pids=()
cleanup() {
  # Gateways first (SIGTERM: they close their sockets with 4000, then their bus), then NATS.
  if [ "${#gateway_pids[@]}" -gt 0 ]; then
    kill "${gateway_pids[@]}" 2>/dev/null || true
    wait "${gateway_pids[@]}" 2>/dev/null || true
  fi
  if [ -n "$nats_pid" ]; then
    kill "$nats_pid" 2>/dev/null || true
    wait "$nats_pid" 2>/dev/null || true
  fi
  rm -rf "$store"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until something accepts TCP connections on 127.0.0.1:$1 (bounded).
wait_for_port() {
  for _ in $(seq 1 100); do
    if listening "$1"; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after 10 s" >&2
  return 1
}

# A port already taken would make us talk to someone else's server: refuse instead.
for port in "$NATS_PORT" "$PORT_A" "$PORT_B"; do
  if listening "$port"; then
    echo "127.0.0.1:$port is already in use (set NATS_PORT, PORT_A or PORT_B)" >&2
    exit 1
  fi
done

nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$store" &
nats_pid=$!
wait_for_port "$NATS_PORT"

# The SDK bundle the demo pages load, built once (npm start would build it per gateway).
node scripts/build-sdk.mjs --no-types

gateway() {
  HOST=127.0.0.1 PORT="$2" \
  SYMPHONIC_nodeId="$1" \
  SYMPHONIC_bus__engine=nats \
  SYMPHONIC_bus__nats__servers="nats://127.0.0.1:$NATS_PORT" \
  SYMPHONIC_api__keys="$KEY" \
    node --max-semi-space-size=4 --import tsx gateway/main.ts &
  gateway_pids+=($!)
}
gateway gw-a "$PORT_A"
gateway gw-b "$PORT_B"
wait_for_port "$PORT_A"
wait_for_port "$PORT_B"

cat <<MSG

Two gateways on one NATS: http://127.0.0.1:$PORT_A/ and http://127.0.0.1:$PORT_B/ (demo pages).
Watch on one, publish on the other:
  npx tsx examples/live-state/watch.ts ws://127.0.0.1:$PORT_B/ws
  SYMPHONIC_KEY=$KEY npx tsx examples/http-publisher/publish.ts http://127.0.0.1:$PORT_A
Ctrl-C stops everything.
MSG
# Until Ctrl-C, or until one of the three exits on its own (then the others are stopped too).
wait -n
echo "a process exited; stopping the others" >&2
exit 1
