#!/usr/bin/env bash
# Fails when the contract (proto/) changed incompatibly: `buf breaking`
# (rules: buf.yaml's `breaking` section) against the contract as of the
# previous commit on main — the first parent of HEAD, which on main is the
# main before this change landed. Another base: BUF_BREAKING_AGAINST=<git
# ref> (e.g. origin/main on a branch). Skips, saying so, when there is no
# such commit (a shallow or single-commit clone) or it had no contract.
#
# An incompatible change is never forced through this check: add a new
# package (sslvpn.v2) beside sslvpn.v1 instead.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
against=${BUF_BREAKING_AGAINST:-HEAD~1}

if ! base=$(git rev-parse --verify --quiet "${against}^{commit}" 2>/dev/null); then
    echo "buf breaking: skipped: no commit ${against} in this clone"
    exit 0
fi
if ! git cat-file -e "${base}:proto/sslvpn/v1/sslvpn.proto" 2>/dev/null; then
    echo "buf breaking: skipped: ${against} ($(git rev-parse --short "$base")) has no proto/sslvpn/v1/sslvpn.proto"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The old contract as files (works in worktrees and clones alike, unlike
# buf's own .git input). Its buf.yaml comes along when it had one.
if git cat-file -e "${base}:buf.yaml" 2>/dev/null; then
    git archive "$base" proto buf.yaml | tar -x -C "$work"
else
    git archive "$base" proto | tar -x -C "$work"
    cp buf.yaml "$work/"
fi

echo "buf breaking against ${against} ($(git rev-parse --short "$base"))"
npx --yes "@bufbuild/buf@${BUF_VERSION}" breaking --against "$work"
echo "no breaking change to the contract"
