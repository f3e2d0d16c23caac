#!/usr/bin/env bash
# tools/container.sh: build the container image (the Dockerfile at the
# root) with podman, on Debian 12, as root, where no image registry is
# reachable: the Debian base images are made here, from the machine's own
# apt sources, and tagged as the registry names them, so the Dockerfile
# builds unchanged (it is what users build against the real registry).
#
#   tools/container.sh setup     podman & co. from Debian (idempotent),
#                                /etc/containers/containers.conf if missing,
#                                the base images (cached, see below)
#   tools/container.sh build [--source DIR] [--tag NAME:TAG]...
#                                podman build of DIR (default: this checkout),
#                                tagged rapid-photo/backend:<its version> and
#                                each --tag; prints the time and the size
#   tools/container.sh image [DIR]   print that default tag
#
# What is cached between runs, and what a fresh machine pays (2 cores):
# - the packages (about 40 s once);
# - the base root file system, made by mmdebstrap (about 25 s), kept under
#   /var/cache/rapidphoto/ as a tarball keyed by the apt sources file and
#   the day it was made, reused for RP_BASE_MAX_AGE_DAYS (7) days: then it
#   is made again with that day's security updates (and the image's
#   package layers are rebuilt on it once);
# - podman's layer cache: the build stage's packages and npm downloads are
#   rebuilt only when the Dockerfile or the files that pin them change;
#   a code change re-runs the compile and the final COPY.
# Images left untagged by later builds are pruned after each build (only
# those made from these base images).
#
# Images made here: docker.io/library/debian:bookworm-slim (and :12-slim),
# the minbase root file system with what Debian's slim images leave out
# (docs, man pages, locales) left out too; docker.io/library/debian:bookworm
# (and :12), the same plus the machine's own CA certificates from
# /usr/local/share/ca-certificates/ (a TLS-intercepting proxy's: npm in the
# build stage needs them) as a layer of its own. That layer is only in
# the build stage's base: the runtime image is made from the slim one.
set -euo pipefail
cd "$(dirname "$0")/.."

REPO=rapid-photo/backend
CACHE=/var/cache/rapidphoto
MAX_AGE_DAYS=${RP_BASE_MAX_AGE_DAYS:-7}
# Changing how the base is made changes its cache key
RECIPE="mmdebstrap minbase merged-usr ca-certificates nodocs r1"
SLIM=docker.io/library/debian:bookworm-slim
FULL=docker.io/library/debian:bookworm

die() { echo "container.sh: $*" >&2; exit 1; }
say() { echo "container.sh: $*" >&2; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root (podman here runs as root, with runc)"
}

# The image's version: the project's, from DIR/CMakeLists.txt
version_of() {
    local v
    v=$(sed -n 's/^project (rapidphoto VERSION \([0-9][0-9.]*\).*/\1/p' "$1/CMakeLists.txt")
    [ -n "$v" ] || die "no \"project (rapidphoto VERSION x.y.z\" line in $1/CMakeLists.txt"
    echo "$v"
}

# The label a base image was made with, or nothing
label_of() {
    podman image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

setup_packages() {
    local pkgs=(podman runc uidmap fuse-overlayfs slirp4netns mmdebstrap docker-registry skopeo)
    local missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "packages present"
        return
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# crun fails in sandboxes with "cgroups in hybrid mode not supported";
# podman's default ulimits can be above a sandbox's hard limits ("error
# setting rlimit type 7"); no systemd, so no journald events either.
setup_conf() {
    local conf=/etc/containers/containers.conf
    if [ -f "$conf" ]; then
        say "$conf present (left as it is)"
        return
    fi
    mkdir -p /etc/containers
    cat >"$conf" <<'CONF'
# Written by tools/container.sh setup (podman as root, without systemd)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    say "wrote $conf"
}

# The apt sources the base is made from: the machine's own
sources_file() {
    local f
    for f in "${RP_APT_SOURCES:-}" /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        [ -n "$f" ] && [ -s "$f" ] && { echo "$f"; return; }
    done
    die "no apt sources file (set RP_APT_SOURCES)"
}

# The root file system tarball: a cached one for these sources younger than
# MAX_AGE_DAYS, else a new one. Prints its path.
base_tarball() {
    local sources=$1 key tar
    key=$( (cat "$sources"; echo "$RECIPE") | sha256sum | cut -c1-16)
    mkdir -p "$CACHE"
    tar=$(find "$CACHE" -maxdepth 1 -name "debian-bookworm-$key-*.tar" -mtime "-$MAX_AGE_DAYS" \
          2>/dev/null | sort | tail -n 1)
    if [ -n "$tar" ]; then
        echo "$tar"
        return
    fi
    tar=$CACHE/debian-bookworm-$key-$(date -u +%Y%m%d).tar
    say "making the base root file system from $sources (mmdebstrap, about 25 s)"
    local t0=$SECONDS
    # Older tarballs of any key go: they are never used again
    find "$CACHE" -maxdepth 1 -name 'debian-bookworm-*.tar' -delete
    mmdebstrap --variant=minbase --mode=root --quiet \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --include=ca-certificates \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        bookworm "$CACHE/making-$key.tar" "$sources" >"$CACHE/mmdebstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/mmdebstrap.log" >&2; rm -f "$CACHE/making-$key.tar"
             die "mmdebstrap failed (above; the whole log is $CACHE/mmdebstrap.log)"; }
    mv "$CACHE/making-$key.tar" "$tar"
    say "made $tar in $((SECONDS - t0)) s"
    echo "$tar"
}

setup_images() {
    local sources tar name
    sources=$(sources_file)
    tar=$(base_tarball "$sources")
    name=$(basename "$tar" .tar)
    if [ "$(label_of "$SLIM" rp.base)" = "$name" ]; then
        say "$SLIM is $name"
    else
        say "importing $name as $SLIM"
        podman import --quiet --change "LABEL rp.base=$name" --change 'CMD ["bash"]' \
            "$tar" "$SLIM" >/dev/null
    fi
    podman tag "$SLIM" docker.io/library/debian:12-slim

    # The build stage's base: the slim one and, as a layer of its own, this
    # machine's CA certificates (for npm behind a TLS-intercepting proxy)
    local cas=() ca_key=none
    shopt -s nullglob
    cas=(/usr/local/share/ca-certificates/*.crt)
    shopt -u nullglob
    [ "${#cas[@]}" -gt 0 ] && ca_key=$(cat "${cas[@]}" | sha256sum | cut -c1-16)
    if [ "$(label_of "$FULL" rp.base)" = "$name" ] && [ "$(label_of "$FULL" rp.ca)" = "$ca_key" ]; then
        say "$FULL is $name with CA certificates $ca_key"
    else
        local ctx
        ctx=$(mktemp -d)
        [ "${#cas[@]}" -gt 0 ] && cp "${cas[@]}" "$ctx/"
        {
            echo "FROM $SLIM"
            if [ "${#cas[@]}" -gt 0 ]; then
                echo "COPY *.crt /usr/local/share/ca-certificates/"
                echo "RUN update-ca-certificates >/dev/null 2>&1 \\"
                echo " && echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >>/etc/npmrc"
            fi
            echo "LABEL rp.ca=$ca_key"
        } >"$ctx/Containerfile"
        say "making $FULL ($name, CA certificates: ${#cas[@]})"
        podman build --quiet --pull=never --network=none --format docker -t "$FULL" \
            -f "$ctx/Containerfile" "$ctx" >/dev/null \
            || { rm -rf "$ctx"; die "building $FULL failed"; }
        rm -rf "$ctx"
    fi
    podman tag "$FULL" docker.io/library/debian:12
}

cmd_setup() {
    need_root setup
    local t0=$SECONDS
    setup_packages
    setup_conf
    setup_images
    say "setup done in $((SECONDS - t0)) s"
}

cmd_build() {
    need_root build
    local src=. tags=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --source) [ $# -ge 2 ] || die "--source needs a folder"; src=$2; shift 2 ;;
            --tag)    [ $# -ge 2 ] || die "--tag needs NAME:TAG"; tags+=(--tag "$2"); shift 2 ;;
            *)        die "build: unknown argument \"$1\" (build [--source DIR] [--tag NAME:TAG]...)" ;;
        esac
    done
    [ -f "$src/Dockerfile" ] || die "no Dockerfile in $src"
    podman image exists "$SLIM" && podman image exists "$FULL" \
        || die "no $SLIM or $FULL here: run tools/container.sh setup first"
    local image t0=$SECONDS
    image=$REPO:$(version_of "$src")
    # The build stage gets a tag of its own, so pruning what later builds
    # leave untagged never takes its cached layers
    podman build --pull=never --network=host --format docker --target build \
        --tag "localhost/$REPO-build:$(version_of "$src")" "$src" >&2
    podman build --pull=never --network=host --format docker --tag "$image" "${tags[@]}" "$src" >&2
    podman image prune --force --filter label=rp.base >/dev/null || true
    local size
    size=$(podman image inspect --format '{{.Size}}' "$image")
    say "built $image in $((SECONDS - t0)) s: $((size / 1000000)) MB"
}

case "${1:-}" in
    setup) shift; cmd_setup "$@" ;;
    build) shift; cmd_build "$@" ;;
    image) echo "$REPO:$(version_of "${2:-.}")" ;;
    *)     echo "usage: tools/container.sh setup | build [--source DIR] [--tag NAME:TAG]... | image [DIR]" >&2
           exit 2 ;;
esac
