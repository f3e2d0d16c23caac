#!/usr/bin/env bash
# tools/bootstrap.sh: install what the build, the service and the tests need,
# idempotently. Safe to run again: it installs only what is missing.
#
#   tools/bootstrap.sh          build + run dependencies
#   tools/bootstrap.sh --test   also the tools the test suites and benches use
#   tools/bootstrap.sh --aws    also what tools/run-aws.sh needs: PostgreSQL,
#                               the aws CLI and the local S3/SQS stand-ins
set -euo pipefail

want_test=0 want_aws=0
[ "${1:-}" = "--test" ] && want_test=1 want_aws=1
[ "${1:-}" = "--aws" ] && want_aws=1

# Build and run time: compiler, CMake and the libraries the engine links.
pkgs=(build-essential cmake pkg-config
      libczmq-dev libzmq3-dev libmsgpack-dev
      libvips-dev libheif-dev libexif-dev libraw-dev
      libjansson-dev libinih-dev libssl-dev
      libcurl4-openssl-dev libpq-dev libsqlite3-dev libmicrohttpd-dev libjwt-dev
      libxml2-dev)                      # SQS's query protocol answers in XML (engine/aws/sqs.c)
# Tests and benches: Criterion, exiftool (expected EXIF values), vipsthumbnail
# and ImageMagick (peers in bench/), PostgreSQL (store contract tests), curl.
if [ "$want_test" = 1 ]; then
    pkgs+=(libcriterion-dev libimage-exiftool-perl libvips-tools imagemagick
           postgresql curl procps python3 time)
    pkgs+=(python3-botocore)    # an independent SigV4 signer to check ours (tests/test_sigv4.c),
                                # and the ECS model deploy/ecs is checked against (tests/deploy)
    # The aws CLI (2.9.19 in Debian 12) as the S3/SQS client in tests/test_aws_bridges.c
    # and the ECS runbook's client in tests/deploy/ecs_runbook.py; the tests run
    # /usr/bin/aws, not whichever `aws` comes first on PATH. The runbook test's
    # moto_server is not in Debian (nor reachable otherwise): the machine image's
    # python3 has it, and without it that one test says so and is skipped.
    pkgs+=(awscli)
    pkgs+=(python3-tifffile python3-numpy)     # tests/raw/make_dng.py builds the DNGs of tests/test_raw.c
    pkgs+=(chromium)        # the web app's browser tests (tests/web), headless
    # The fuzz targets (tests/fuzz, tools/fuzz.sh): clang 14 and its
    # libFuzzer and sanitizer runtimes
    pkgs+=(clang libclang-rt-14-dev)
fi

if [ "$want_aws" = 1 ] && [ "$want_test" = 0 ]; then
    pkgs+=(postgresql awscli curl)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "bootstrap: all packages present" >&2
fi

# Node.js and npm: the npm packages below need them (most machines have
# them; a bare Debian 12 gets Debian's).
if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing nodejs npm" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# The libvips the engine links by default (cmake -DRP_VIPS=bundled): pinned
# npm packages into third_party/sharp-libvips; a no-op when present.
"$(dirname "$0")/vips.sh"

# The web app's npm packages (tus-js-client's browser bundle; with --test
# also playwright-core): pinned in web/package-lock.json, into web/node_modules.
if [ "$want_test" = 1 ]; then "$(dirname "$0")/web.sh" --test; else "$(dirname "$0")/web.sh"; fi

# The benches' sharp peer (bench/compare.sh): sharp and exif-reader, pinned
# in bench/sharp/package-lock.json, into bench/sharp/node_modules.
if [ "$want_test" = 1 ]; then "$(dirname "$0")/../bench/sharp/install.sh"; fi

# The resumable-upload tests' client (tests/tus): tus-js-client, pinned in
# tests/tus/package-lock.json, into tests/tus/node_modules.
if [ "$want_test" = 1 ] && [ ! -d "$(dirname "$0")/../tests/tus/node_modules/tus-js-client" ]; then
    echo "bootstrap: installing tests/tus npm packages" >&2
    (cd "$(dirname "$0")/../tests/tus" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The ThumbHash tests' reference encoder (tests/thumbhash, ctest thumbhash_*):
# thumbhash, pinned in tests/thumbhash/package-lock.json, into
# tests/thumbhash/node_modules.
if [ "$want_test" = 1 ] && [ ! -d "$(dirname "$0")/../tests/thumbhash/node_modules/thumbhash" ]; then
    echo "bootstrap: installing tests/thumbhash npm packages" >&2
    (cd "$(dirname "$0")/../tests/thumbhash" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

# The Terraform check (tools/terraform/check.mjs, ctest terraform_*): HashiCorp's
# HCL parser, @cdktf/hcl2json, pinned in tools/terraform/package-lock.json, into
# tools/terraform/node_modules (not the devDependencies: the 400 MB provider
# packages provider-schema.json was extracted from).
if [ "$want_test" = 1 ] && [ ! -d "$(dirname "$0")/terraform/node_modules/@cdktf/hcl2json" ]; then
    echo "bootstrap: installing tools/terraform npm packages" >&2
    (cd "$(dirname "$0")/terraform" && npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

# The k6 script's type-check (tests/load, ctest load_flow): TypeScript and
# @types/k6, pinned in tests/load/package-lock.json, into tests/load/node_modules.
if [ "$want_test" = 1 ] && [ ! -d "$(dirname "$0")/../tests/load/node_modules/@types/k6" ]; then
    echo "bootstrap: installing tests/load npm packages" >&2
    (cd "$(dirname "$0")/../tests/load" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

# The local AWS stand-ins (tools/aws/s3rver.mjs, tools/aws/sqs.mjs) for the
# S3 and SQS clients' tests and for tools/run-aws.sh: s3rver and local-aws-sqs, pinned in
# tools/aws/package-lock.json, into tools/aws/node_modules.
if [ "$want_aws" = 1 ] && [ ! -d "$(dirname "$0")/aws/node_modules/local-aws-sqs" ]; then
    echo "bootstrap: installing tools/aws npm packages" >&2
    (cd "$(dirname "$0")/aws" && npm ci --no-audit --no-fund --loglevel=error)
fi
