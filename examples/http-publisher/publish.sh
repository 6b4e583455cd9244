#!/usr/bin/env bash
# A backend publishing over the gateway's HTTP API with curl: a JSON Merge Patch to the demo
# board, then an event to the demo chat. Prints each answer ({"seq":..,"epoch":".."}).
#
#   SYMPHONIC_KEY=example-key bash examples/http-publisher/publish.sh [http-url]
#
# The gateway must accept the key: start it with `SYMPHONIC_api__keys=example-key npm start`.
set -euo pipefail

url="${1:-http://127.0.0.1:9001}"
key="${SYMPHONIC_KEY:?set SYMPHONIC_KEY to an API key the gateway accepts (SYMPHONIC_api__keys)}"

publish() {
  # --fail-with-body: a refused publish exits non-zero and still shows the gateway's error body.
  local status=0
  curl -sS --fail-with-body -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$1" "$url/api/publish" || status=$?
  echo
  return "$status"
}

publish '{"topic":"demo.board","kind":"patch","data":{"cells":{"9,0":"#ef4444"}}}'
publish '{"topic":"demo.chat","data":{"from":"curl","text":"hello from the HTTP API"}}'
