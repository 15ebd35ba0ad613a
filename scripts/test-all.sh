#!/usr/bin/env bash
# Every check the project has, in the order a reviewer would run them.
# Needs only the Rust toolchain, Node (for buf) and Python 3.11; installs the
# rest itself. Used verbatim by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
buf() { npx --yes "@bufbuild/buf@${BUF_VERSION}" "$@"; }

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features --locked -- -D warnings

step "buf lint (STANDARD)"
buf lint

step "buf breaking (against the contract as of the previous commit on main)"
scripts/buf-breaking.sh

step "promtool (tests/it/observability.rs pipes /metrics through 'promtool check metrics')"
if ! command -v promtool >/dev/null 2>&1; then
  # Debian's prometheus package ships promtool; CI runs as root.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version 2>&1 | head -n 1

step "promtool: scrape config, alert rules, dashboard queries"
promtool check config deploy/prometheus/prometheus.yml
python3 scripts/check-dashboards.py

# With the bench feature, so the load driver below is built by this same
# build (same features, same artifacts) instead of a second full tree.
step "cargo test"
cargo test --locked --features bench
SSLVPN_BIN="${CARGO_TARGET_DIR:-target}/debug/sslvpn-gateway"
export SSLVPN_BIN

step "the official Python SDK against the emulator"
tests/python/run.sh

step "a Python client generated from the contract, against a running gateway"
tests/python_client/run.sh

step "packaging: the Dockerfile and the Kubernetes manifests, statically"
tests/deploy/run.sh

step "load driver, smoke mode (asserts no timing)"
"${CARGO_TARGET_DIR:-target}/debug/sslvpn-bench" smoke
