#!/usr/bin/env bash
# A Python client generated from the contract with grpcio-tools, against a
# running gateway on the embedded emulator: creates .venv at the repository
# root if missing (shared with tests/python), installs the pinned packages,
# generates the stubs from proto/ into a temporary directory, builds and
# starts `sslvpn-gateway serve --emulator` on a free loopback port, runs
# the tests, and always stops the gateway. Extra arguments go to pytest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

. tests/env.sh
venv_with tests/python_client/requirements.txt

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Only our own proto is generated: google/rpc/status.proto is on the include
# path for the import, but its Python module comes from
# googleapis-common-protos (generating it too would register it twice).
# grpc_tools adds its bundled google/protobuf well-known types itself.
mkdir -p "$work/stubs"
.venv/bin/python -m grpc_tools.protoc -I proto \
    --python_out="$work/stubs" --grpc_python_out="$work/stubs" \
    sslvpn/v1/sslvpn.proto

gateway_binary

# Small emulator timings so a change completes in about a second.
SSLVPN_EMULATOR_ACCEPT_LAG=200ms SSLVPN_EMULATOR_APPLY_TIME=500ms SSLVPN_EMULATOR_QUIET_PERIOD=0s \
    "$bin" serve --emulator --listen 127.0.0.1:0 \
    --poll-min-interval 100ms --admin-listen off >"$work/gateway.log" 2>&1 &
pid=$!

addr=""
for _ in $(seq 1 100); do
    addr=$(sed -n 's#^gateway listening on \([^ ]*\).*#\1#p' "$work/gateway.log")
    [ -n "$addr" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$work/gateway.log" >&2
        echo "the gateway did not start" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$addr" ]; then
    cat "$work/gateway.log" >&2
    echo "the gateway printed no address" >&2
    exit 1
fi

SSLVPN_GATEWAY_ADDR="$addr" PYTHONPATH="$work/stubs" \
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/python_client "$@"
