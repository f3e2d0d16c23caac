#!/usr/bin/env bash
# tools/vips.sh: install the prebuilt libvips the engine links by default
# (cmake -DRP_VIPS=bundled) into third_party/sharp-libvips/, idempotently.
#
# It is the sharp project's build of libvips, published as two npm packages
# of the same version: @img/sharp-libvips-linux-x64 (lib/libvips-cpp.so.*,
# one shared library with libvips' dependencies inside, exporting only the
# vips_* and g_* symbols) and @img/sharp-libvips-dev (the headers).
# LGPL-3.0-or-later. The versions are pinned here; npm checks each
# package's integrity against the registry, and this script checks the
# library's SHA-256 against the one recorded below, so an unexpected build
# never links silently. Debian's libvips instead: cmake -DRP_VIPS=debian.
#
#   tools/vips.sh            install if missing or not the pinned version
#   tools/vips.sh --print    print the folder it installs into
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.3.4                       # both packages, always the same
LIBRARY=libvips-cpp.so.8.18.7       # what that version ships
SHA256=4aa73553408c3964071728f4a231a8e86918e39bc49f1fbae75355f7ea933ea9

dest=third_party/sharp-libvips
x64=$dest/node_modules/@img/sharp-libvips-linux-x64
dev=$dest/node_modules/@img/sharp-libvips-dev

if [ "${1:-}" = "--print" ]; then
    echo "$PWD/$dest"
    exit 0
fi

if [ "$(uname -m)" != x86_64 ]; then
    echo "vips.sh: the prebuilt libvips is for x86_64 Linux only; on $(uname -m)" \
         "configure with -DRP_VIPS=debian" >&2
    exit 1
fi

installed () {
    local pkg=$1
    [ -f "$pkg/package.json" ] \
        && grep -q "\"version\": \"$VERSION\"" "$pkg/package.json"
}

check_library () {
    local sum
    sum=$(sha256sum "$x64/lib/$LIBRARY" 2>/dev/null | cut -d' ' -f1) || true
    [ "$sum" = "$SHA256" ]
}

if installed "$x64" && installed "$dev" && check_library \
   && [ -f "$dev/include/vips/vips.h" ]; then
    echo "vips.sh: libvips $LIBRARY ($VERSION) present in $dest" >&2
    exit 0
fi

if ! command -v npm >/dev/null; then
    echo "vips.sh: installing npm (Debian's package)" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

echo "vips.sh: installing @img/sharp-libvips-linux-x64 and -dev $VERSION into $dest" >&2
rm -rf "$dest"
mkdir -p "$dest"
# A package.json of our own, so npm installs here and not in a parent folder
printf '{ "name": "rapidphoto-sharp-libvips", "private": true }\n' >"$dest/package.json"
npm install --prefix "$dest" --no-save --no-package-lock --no-audit --no-fund \
    --ignore-scripts --loglevel=error \
    "@img/sharp-libvips-linux-x64@$VERSION" "@img/sharp-libvips-dev@$VERSION" >&2

if ! installed "$x64" || ! installed "$dev" || [ ! -f "$dev/include/vips/vips.h" ]; then
    echo "vips.sh: npm did not install both packages at version $VERSION in $dest" >&2
    exit 1
fi
if ! check_library; then
    echo "vips.sh: $x64/lib/$LIBRARY is not the expected build (SHA-256 differs from $SHA256)" >&2
    exit 1
fi
echo "vips.sh: libvips $LIBRARY ($VERSION) installed in $dest" >&2
