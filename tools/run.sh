#!/usr/bin/env bash
# tools/run.sh: set up and start the engine on embedded defaults.
# Installs what is missing, builds a Release binary, runs `rapidphoto serve`
# in the foreground (Ctrl-C stops it, draining work in flight).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRP_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target rapidphoto
exec build/rapidphoto serve "$@"
