#!/usr/bin/env bash
# tools/web.sh: install the web app's npm packages into web/node_modules
# (git-ignored), idempotently, at the versions pinned in web/package.json
# and web/package-lock.json (npm checks each package's integrity).
#
#   tools/web.sh          tus-js-client: its prebuilt browser bundle
#                         (dist/tus.min.js) is compiled into the binary and
#                         served by the gateway (cmake/embed_web.cmake), and
#                         thumbhash's ES module (thumbhash.js: the gallery's
#                         placeholders, decoded by the reference code)
#   tools/web.sh --test   also playwright-core, which drives Debian's
#                         chromium in the browser tests (tests/web)
set -euo pipefail
cd "$(dirname "$0")/../web"

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# The version package-lock.json pins for a package, and whether it is there
pinned () {
    node -e 'const l = require("./package-lock.json");
             process.stdout.write(l.packages["node_modules/" + process.argv[1]].version)' "$1"
}
installed () {
    local want
    want=$(pinned "$1")
    [ -f "node_modules/$1/package.json" ] \
        && grep -q "\"version\": \"$want\"" "node_modules/$1/package.json"
}

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "web.sh: installing node and npm (Debian's packages)" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

need=(tus-js-client thumbhash)
[ "$want_test" = 1 ] && need+=(playwright-core)
ok=1
for p in "${need[@]}"; do
    installed "$p" || ok=0
done
if [ "$ok" = 1 ]; then
    echo "web.sh: ${need[*]} present in web/node_modules" >&2
    exit 0
fi

echo "web.sh: installing ${need[*]} into web/node_modules" >&2
omit=()
[ "$want_test" = 1 ] || omit=(--omit=dev)
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error "${omit[@]}" >&2
for p in "${need[@]}"; do
    if ! installed "$p"; then
        echo "web.sh: npm did not install $p $(pinned "$p") in web/node_modules" >&2
        exit 1
    fi
done
