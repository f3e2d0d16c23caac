#!/usr/bin/env bash
# tools/lambda-zip.sh: the engine as a Lambda .zip package for the OS-only
# runtime provided.al2023: a `bootstrap` that starts `rapidphoto lambda`,
# the binary, and every shared library it loads, glibc included.
#
#   tools/lambda-zip.sh [--out FILE]     build the Release binary as the
#                                        Dockerfile does (bundled libvips,
#                                        tools/vips.sh) in build-lambda/,
#                                        then package it (default FILE:
#                                        build-lambda/lambda.zip)
#   tools/lambda-zip.sh --build DIR [--out FILE]
#                                        package what the configured build
#                                        DIR has built (no build step: the
#                                        lambda_zip ctest packages its own
#                                        build this way)
#
# The zip (all files regular, no links; modes kept in the zip):
#   bootstrap                 0755, the entry point Lambda runs
#                             (/var/task/bootstrap, LAMBDA_TASK_ROOT)
#   bin/rapidphoto            0755, `cmake --install --strip`: RUNPATH $ORIGIN/../lib
#   lib/*.so*                 0644 (the loader 0755), each under its soname
#   share/doc/PKG/copyright   the licence of each Debian package bundled
#
# Why glibc is in it: Amazon Linux 2023 has glibc 2.34 and GCC 11's
# libstdc++ (GLIBCXX_3.4.29). Built on Debian 12 (glibc 2.36, GCC 12), the
# binary and most libraries need nothing newer than GLIBC_2.34, but
# libstdc++.so.6 needs GLIBC_2.36 (arc4random), libgcc_s.so.1 GLIBC_2.35
# (_dl_find_object), and libzmq and ICU need GLIBCXX_3.4.30, which AL2023's
# libstdc++ lacks: there is no mix of host and bundled libraries that
# loads. So the zip carries Debian's glibc too and the bootstrap starts the
# binary through the bundled loader (lib/ld-linux-x86-64.so.2
# --library-path lib --inhibit-cache): nothing of the host's C library is
# used, whatever its version. tools/lambda-check.py proves it on the
# unzipped package (README, "Deployment").
#
# CA certificates: Debian's libcurl looks for /etc/ssl/certs/ca-certificates.crt,
# which AL2023 does not have (its bundle is /etc/pki/tls/certs/ca-bundle.crt);
# the bootstrap then points AWS_CA_BUNDLE, which the engine's AWS clients
# honour as the AWS SDKs do, at the host's bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

die() { echo "lambda-zip.sh: $*" >&2; exit 1; }
say() { echo "lambda-zip.sh: $*" >&2; }

build=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --build) [ $# -ge 2 ] || die "--build needs a folder"; build=$2; shift 2 ;;
        --out)   [ $# -ge 2 ] || die "--out needs a file name"; out=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument \"$1\" (tools/lambda-zip.sh [--build DIR] [--out FILE])" ;;
    esac
done
[ "$(uname -m)" = x86_64 ] || die "the package is for x86_64 Lambda functions; this is $(uname -m)"
command -v python3 >/dev/null || die "python3 is needed (it writes the zip)"

if [ -z "$build" ]; then
    # The Dockerfile's build stage: the pinned libvips, a Release build of
    # the binary alone
    build=$src/build-lambda
    tools/vips.sh
    tools/web.sh
    say "building rapidphoto (Release) in $build"
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRP_TESTS=OFF >/dev/null
    cmake --build "$build" -j"${RP_BUILD_JOBS:-2}" --target rapidphoto
fi
[ -f "$build/CMakeCache.txt" ] || die "$build is not a configured build folder"
[ -x "$build/rapidphoto" ] || die "$build/rapidphoto is not built (cmake --build $build --target rapidphoto)"
grep -q '^RP_VIPS:STRING=bundled$' "$build/CMakeCache.txt" \
    || die "$build links Debian's libvips (RP_VIPS=debian): the package is made with the bundled one"
build=$(cd "$build" && pwd)
[ -n "$out" ] || out=$build/lambda.zip
case "$out" in /*) ;; *) out=$src/$out ;; esac

stage=$(mktemp -d "${TMPDIR:-/tmp}/rp-lambda-zip.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root/lib" "$root/share/doc"

# bin/rapidphoto and lib/libvips-cpp.so.*, the RUNPATH made relative
cmake --install "$build" --prefix "$root" --strip >/dev/null
[ -x "$root/bin/rapidphoto" ] || die "cmake --install did not put bin/rapidphoto in $root"

# Every library the binary loads, as the loader resolves them (ldd reads
# the RUNPATH, so libvips is found in lib/ already); the loader itself is
# the line without "=>"
copy_lib() {
    local path=$1 name=$2
    [ -e "$root/lib/$name" ] && return
    cp -L "$path" "$root/lib/$name"
    chmod 0644 "$root/lib/$name"
    # The Debian package it comes from, for its licence
    local real pkg
    real=$(readlink -f "$path")
    pkg=$(dpkg -S "$real" 2>/dev/null | head -n 1 | cut -d: -f1) \
        || pkg=$(dpkg -S "${real#/usr}" 2>/dev/null | head -n 1 | cut -d: -f1) || pkg=""
    if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ] && [ ! -e "$root/share/doc/$pkg" ]; then
        mkdir -p "$root/share/doc/$pkg"
        cp "/usr/share/doc/$pkg/copyright" "$root/share/doc/$pkg/copyright"
    fi
}
loader=""
while read -r line; do
    case "$line" in
        *"not found"*) die "ldd: $line" ;;
        linux-vdso.so.*) ;;
        *" => "/*)
            name=${line%% =>*}
            path=${line#*=> }; path=${path%% (*}
            copy_lib "$path" "$name" ;;
        /*ld-linux-x86-64.so.2*)
            loader=${line%% (*}
            copy_lib "$loader" ld-linux-x86-64.so.2 ;;
    esac
done < <(ldd "$root/bin/rapidphoto")
[ -n "$loader" ] || die "ldd named no loader for bin/rapidphoto"
chmod 0755 "$root/lib/ld-linux-x86-64.so.2"
# libvips' licence (the sharp project's npm package)
vips_pkg=$(sed -n 's/^RP_VIPS_DIR:PATH=//p' "$build/CMakeCache.txt")/sharp-libvips-linux-x64
if [ -f "$vips_pkg/package.json" ]; then
    mkdir -p "$root/share/doc/sharp-libvips-linux-x64"
    cp "$vips_pkg/package.json" "$root/share/doc/sharp-libvips-linux-x64/"
    [ -f "$vips_pkg/README.md" ] && cp "$vips_pkg/README.md" "$root/share/doc/sharp-libvips-linux-x64/"
fi
chmod 0755 "$root/bin/rapidphoto"

cat >"$root/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# bootstrap: Lambda's entry point for the OS-only runtime (provided.al2023),
# made by tools/lambda-zip.sh. It starts `rapidphoto lambda` (or the
# command given as arguments) through the glibc bundled in lib/, so
# nothing of the host's C library is used: its glibc is 2.34, the
# libraries here were built against 2.36 (README, "Deployment").
set -eu
case "$0" in
    */*) here=${0%/*} ;;
    *)   here=${LAMBDA_TASK_ROOT:-.} ;;
esac
# Only /tmp is writable in Lambda: the engine's data folder goes there
# unless the function's environment names one
if [ -z "${RAPIDPHOTO_DATA_DIR:-}" ]; then
    RAPIDPHOTO_DATA_DIR=/tmp/rapidphoto
    export RAPIDPHOTO_DATA_DIR
fi
# The bundled libcurl looks for Debian's CA file; on Amazon Linux it is
# /etc/pki/tls/certs/ca-bundle.crt. AWS_CA_BUNDLE (the engine's AWS
# clients honour it as the AWS SDKs do) names the host's bundle then.
if [ -z "${AWS_CA_BUNDLE:-}" ] && [ ! -r /etc/ssl/certs/ca-certificates.crt ]; then
    for ca in /etc/pki/tls/certs/ca-bundle.crt /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem \
              /etc/ssl/cert.pem; do
        if [ -r "$ca" ]; then
            AWS_CA_BUNDLE=$ca
            export AWS_CA_BUNDLE
            break
        fi
    done
fi
[ $# -gt 0 ] || set -- lambda
# --library-path replaces LD_LIBRARY_PATH (Lambda's names /lib64 first);
# --inhibit-cache keeps the host's /etc/ld.so.cache out of the search
exec "$here/lib/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$here/lib" \
    --argv0 "$here/bin/rapidphoto" "$here/bin/rapidphoto" "$@"
BOOTSTRAP
chmod 0755 "$root/bootstrap"

# The zip: python3's zipfile (no zip tool needed), entries sorted, fixed
# dates, each entry's Unix mode in its external attributes (Lambda keeps
# them: bootstrap must be executable)
mkdir -p "$(dirname "$out")"
python3 - "$root" "$out.tmp" <<'PY'
import os, stat, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
entries = []
for folder, dirs, files in os.walk(root):
    for name in files:
        path = os.path.join(folder, name)
        entries.append((os.path.relpath(path, root), path))
with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    for arc, path in sorted(entries):
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            sys.exit(f'lambda-zip.sh: {arc} is not a regular file')
        info = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
        info.create_system = 3                      # Unix: external_attr holds the mode
        info.external_attr = (stat.S_IFREG | stat.S_IMODE(st.st_mode)) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, 'rb') as f:
            z.writestr(info, f.read(), compresslevel=6)
PY
mv "$out.tmp" "$out"
unpacked=$(du -sb "$root" | cut -f1)
say "made $out: $(( $(stat -c %s "$out") / 1000000 )) MB ($(( unpacked / 1000000 )) MB unzipped," \
    "$(find "$root/lib" -name '*.so*' | wc -l) libraries)"
echo "$out"
