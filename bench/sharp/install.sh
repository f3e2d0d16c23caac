#!/usr/bin/env bash
# bench/sharp/install.sh: install the sharp peer of bench/compare.sh
# (sharp and exif-reader, the versions pinned in package.json and
# package-lock.json; npm checks each package's integrity) into
# bench/sharp/node_modules, git-ignored. Idempotent: a no-op when the pinned
# versions are there. tools/bootstrap.sh --test runs it.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "bench/sharp/install.sh: installing node and npm (Debian's packages)" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

installed () {     # package: true when node_modules holds the pinned version
    local want
    want=$(node -e 'process.stdout.write(require("./package.json").dependencies[process.argv[1]])' "$1")
    [ -f "node_modules/$1/package.json" ] \
        && [ "$(node -e 'process.stdout.write(require("./node_modules/" + process.argv[1] + "/package.json").version)' "$1")" = "$want" ]
}
if installed sharp && installed exif-reader \
   && node -e 'require("sharp")' 2>/dev/null; then
    exit 0
fi
echo "bench/sharp/install.sh: installing sharp and exif-reader into $PWD/node_modules" >&2
npm ci --no-audit --no-fund --loglevel=error >/dev/null
node -e 'require("sharp")' || { echo "bench/sharp/install.sh: sharp does not load" >&2; exit 1; }
