#!/usr/bin/env bash
# Checks the packaging without a container engine or a cluster: hadolint on
# the Dockerfile, yamllint and strict schema validation (Kubernetes 1.30, the
# oldest the manifests support) of deploy/kubernetes/, and the consistency
# of both with the binary (its flags and variables, the drain arithmetic).
# Reuses the repository's .venv. Extra arguments go to pytest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

. tests/env.sh
venv_with tests/deploy/requirements.txt

gateway_binary

SSLVPN_BIN="$bin" PATH="$root/.venv/bin:$PATH" \
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/deploy "$@"
