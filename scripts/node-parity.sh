#!/usr/bin/env bash
# Runs the test suite under the Node major that deploy/Dockerfile ships, which is
# newer than the Node of the development and CI machines. The binary comes from
# the npm package node-linux-<arch>@<major> (it carries bin/node), cached outside
# the repository. Native addons (netlink, koffi) are N-API builds and load under
# any major, so the node_modules installed by `npm ci` are used as they are.
#
#   scripts/node-parity.sh                 run the suite (extra args go to vitest)
#   scripts/node-parity.sh --print-major   print the image's Node major and exit
#
# NODE_PARITY_CACHE overrides the cache directory.
set -euo pipefail
cd "$(dirname "$0")/.."

majors=$(sed -nE 's/^FROM[[:space:]]+node:([0-9]+)[^[:space:]]*.*/\1/p' deploy/Dockerfile | sort -u)
if [ -z "$majors" ] || [ "$(printf '%s\n' "$majors" | wc -l)" -ne 1 ]; then
  echo "node-parity: expected every FROM in deploy/Dockerfile to use one node:<major> image, found: ${majors:-none}" >&2
  exit 1
fi
major=$majors
if [ "${1:-}" = "--print-major" ]; then
  echo "$major"
  exit 0
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "node-parity: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac

cache=${NODE_PARITY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mptcp-reconciler/node-parity}
prefix="$cache/node-$major"
node="$prefix/node_modules/node-linux-$arch/bin/node"
if ! [ -x "$node" ] || [ "$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != "$major" ]; then
  echo "node-parity: installing node-linux-$arch@$major into $prefix"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  # --ignore-scripts: the package needs none; --no-save: the cache dir has no manifest to keep.
  npm install --prefix "$prefix" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    "node-linux-$arch@$major" >&2
fi

version=$("$node" --version)
echo "node-parity: running the test suite under Node $version (the image's major $major)"
if ! [ -f node_modules/vitest/vitest.mjs ]; then
  echo "node-parity: node_modules/vitest is missing; run npm ci first" >&2
  exit 1
fi
# Child processes the tests start with a bare `node` get this one too.
export PATH="$(dirname "$node"):$PATH"
exec "$node" node_modules/vitest/vitest.mjs run "$@"
