#!/usr/bin/env bash
# tests/rollback/rollback.sh: the rollback test (ctest -L rollback). Finds
# the previous release, builds its binary from its commit (cached by commit
# hash), and runs tests/rollback/test_rollback.c: the previous release
# serving on a database and data folder the newest binary migrated and
# wrote, then the newest again (README, "Deploy on AWS" → "Rollbacks").
#
# The previous release (CHANGELOG.md's header says the rule): the newest
# `## [X.Y.Z]` entry whose version is below this build's (`rapidphoto
# --version`). Its commit: the tag vX.Y.Z when the clone has it, else the
# commit that added the entry's heading to CHANGELOG.md, else (an entry
# written after its release) the commit the entry names ("Commit <hash>").
#
# Environment (ctest sets the first three):
#   RP_BINARY           this build's rapidphoto
#   RP_ROLLBACK_SUITE   the test_rollback Criterion program
#   RP_SOURCE_DIR       this checkout
#   RP_ROLLBACK_CACHE   where built releases are kept (default
#                       <checkout>/build-rollback): <commit>-<vips>/bin/rapidphoto
#   RP_TEST_PG_URL      PostgreSQL for the second half (tools/pg.sh)
#   RP_VIPS, RP_VIPS_DIR  the libvips the release links, as this build's
#                       CMake cache says (default: bundled, in this checkout's
#                       third_party/sharp-libvips/node_modules/@img)
set -euo pipefail

die() { echo "rollback: $*" >&2; exit 1; }

binary=${RP_BINARY:?RP_BINARY names this build\'s rapidphoto}
suite=${RP_ROLLBACK_SUITE:?RP_ROLLBACK_SUITE names the test_rollback program}
source_dir=${RP_SOURCE_DIR:?RP_SOURCE_DIR names this checkout}
cache=${RP_ROLLBACK_CACHE:-$source_dir/build-rollback}
vips=${RP_VIPS:-bundled}
vips_dir=${RP_VIPS_DIR:-$source_dir/third_party/sharp-libvips/node_modules/@img}
started=$(date +%s)

# ---- The previous release ----------------------------------------------------
current=$("$binary" --version | awk '{ print $2 }')
[[ "$current" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$binary --version says no X.Y.Z version"
changelog=$source_dir/CHANGELOG.md
[ -f "$changelog" ] || die "no $changelog"
versions=$(sed -nE 's/^## \[([0-9]+\.[0-9]+\.[0-9]+)\].*/\1/p' "$changelog")
# Main between releases carries the next version and an Unreleased section;
# an entry for its own version beside one means the bump after a release
# was forgotten (the previous release would then be the one before it)
if grep -qE '^## \[Unreleased\]' "$changelog" && grep -qxF "$current" <<<"$versions"; then
    die "CHANGELOG.md has an Unreleased section, and an entry for $current, this build's version: after a" \
        "release, CMakeLists.txt's project VERSION moves to the next one (CHANGELOG.md's header)"
fi
previous=$( (echo "$versions"; echo "$current") | sort -V | uniq | grep -B1 -xF "$current" | grep -vxF "$current" || true)
[ -n "$previous" ] || die "CHANGELOG.md has no release below $current: nothing to roll back to"

# ---- Its commit ----------------------------------------------------------------
git -C "$source_dir" rev-parse --git-dir >/dev/null 2>&1 \
    || die "$source_dir is not a git checkout: the previous release is built from its commit"
[ "$(git -C "$source_dir" rev-parse --is-shallow-repository)" = false ] \
    || die "this clone is shallow: the release commits are not in it (clone with the whole history)"
commit=$(git -C "$source_dir" rev-parse -q --verify "refs/tags/v$previous^{commit}" || true)
how="tag v$previous"
if [ -z "$commit" ]; then
    # The oldest commit that changed how often the heading occurs: the one
    # that wrote it (not --diff-filter=A, which finds only the commit that
    # created the file: right for 0.2.0 alone)
    commit=$(git -C "$source_dir" log -S "## [$previous]" --format=%H -- CHANGELOG.md | tail -n 1)
    how="the commit that added its CHANGELOG.md entry"
    # An entry written after its release names the release's commit
    entry=$(awk -v v="## [$previous]" 'index($0, v) == 1 { on = 1; next } /^## \[/ { on = 0 } on' "$changelog")
    named=$(grep -oE '[Cc]ommit [0-9a-f]{7,40}' <<<"$entry" | head -n 1 | awk '{ print $2 }' || true)
    if [ -n "$named" ]; then
        commit=$(git -C "$source_dir" rev-parse -q --verify "$named^{commit}" || true)
        how="the commit its CHANGELOG.md entry names"
    fi
fi
[ -n "$commit" ] || die "cannot find release $previous's commit (no tag v$previous, no CHANGELOG.md entry in history)"

# ---- Its binary, built once per commit ------------------------------------------
release=$cache/$commit-$vips
old=$release/bin/rapidphoto
mkdir -p "$cache"
built="cached"
[ -x "$old" ] || built="built"
(
    flock 9
    [ -x "$old" ] && exit 0
    echo "rollback: building release $previous ($commit) into $release"
    work=$release.work
    rm -rf "$work" "$release"
    mkdir -p "$work/src"
    # An export of the commit's tree, not a `git worktree`: nothing is
    # registered in the repository, and an interrupted run leaves only files
    git -C "$source_dir" archive "$commit" | tar -x -C "$work/src"
    # What the release's build reads outside its tree: the bundled libvips
    # (RP_VIPS_DIR) and the web app's vendored tus-js-client
    mkdir -p "$work/src/web"
    ln -s "$source_dir/web/node_modules" "$work/src/web/node_modules"
    cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DRP_TESTS=OFF \
          -DRP_VIPS="$vips" -DRP_VIPS_DIR="$vips_dir" >"$work/configure.log" 2>&1 \
        || { tail -n 20 "$work/configure.log" >&2; exit 1; }
    cmake --build "$work/build" -j"$(nproc 2>/dev/null || echo 2)" --target rapidphoto >"$work/build.log" 2>&1 \
        || { tail -n 30 "$work/build.log" >&2; exit 1; }
    # Installed: bin/rapidphoto with its libvips in lib/ (relative RUNPATH)
    cmake --install "$work/build" --prefix "$release.tmp" >/dev/null
    mv "$release.tmp" "$release"
    rm -rf "$work"
) 9>"$cache/.lock" || die "building release $previous failed (above)"
said=$("$old" --version | awk '{ print $2 }')
[ "$said" = "$previous" ] || die "the binary built from $commit says it is $said, not $previous"
prepared=$(date +%s)
echo "rollback: this build is $current; previous release $previous is $commit ($how); its binary: $old" \
     "($built, $((prepared - started)) s)"

# ---- The test --------------------------------------------------------------------
status=0
RP_BINARY_PREVIOUS=$old "$suite" --jobs 1 || status=$?
echo "rollback: the suite took $(( $(date +%s) - prepared )) s (status $status)"
exit "$status"
