#!/usr/bin/env bash
# Runs the official Python SDK against the emulator: creates .venv at the
# repository root if missing, installs the pinned SDK, builds and starts
# `sslvpn-gateway emulator` on a free loopback port, runs the tests, and
# always stops the emulator. Extra arguments go to pytest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

. tests/env.sh
venv_with tests/python/requirements.txt

gateway_binary

log=$(mktemp)
# Small timings so the state machine finishes quickly; the tests read them.
"$bin" emulator --listen 127.0.0.1:0 \
    --accept-lag 200ms --apply-time 400ms --quiet-period 0s >"$log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

addr=""
for _ in $(seq 1 100); do
    addr=$(sed -n 's#^emulator listening on http://##p' "$log")
    [ -n "$addr" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$log" >&2
        echo "the emulator did not start" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$addr" ]; then
    cat "$log" >&2
    echo "the emulator printed no address" >&2
    exit 1
fi

SSLVPN_EMULATOR_ENDPOINT="$addr" .venv/bin/python -m pytest -q -p no:cacheprovider tests/python "$@"
