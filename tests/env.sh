# Sourced by tests/*/run.sh (from the repository root): the shared .venv and
# the binary under test.

# Creates .venv at the repository root if missing and installs the pinned
# packages of the requirements file $1 into it.
venv_with() {
    local python=${PYTHON:-python3}
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$1"
}

# Sets $bin to the sslvpn-gateway binary: SSLVPN_BIN when given
# (scripts/test-all.sh passes the one its test build made, rather than
# building the tree again without the dev features), else a fresh debug build.
gateway_binary() {
    bin=${SSLVPN_BIN:-}
    if [ -z "$bin" ]; then
        cargo build --quiet --bin sslvpn-gateway
        bin=${CARGO_TARGET_DIR:-target}/debug/sslvpn-gateway
    fi
}
