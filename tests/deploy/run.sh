#!/usr/bin/env bash
# Checks the packaging without a container engine or a cluster: hadolint on
# the Dockerfile, yamllint and strict schema validation (Kubernetes 1.30, the
# oldest the manifests support) of deploy/kubernetes/, and the consistency
# of both with the binary (its flags and variables, the drain arithmetic).
# Reuses the repository's .venv. Extra arguments go to pytest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt

# SSLVPN_BIN: a binary already built (scripts/test-all.sh passes the one its
# test build made, rather than building the tree again without dev features).
bin=${SSLVPN_BIN:-}
if [ -z "$bin" ]; then
    cargo build --quiet --bin sslvpn-gateway
    bin=${CARGO_TARGET_DIR:-target}/debug/sslvpn-gateway
fi

SSLVPN_BIN="$bin" PATH="$root/.venv/bin:$PATH" \
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/deploy "$@"
