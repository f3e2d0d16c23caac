#!/usr/bin/env bash
# tests/container/lambda-podman.sh: the launcher the container_lambda ctest
# gives the Lambda runtime test (tests/lambda/lambda.spec.mjs) as
# RP_LAMBDA_CMD: it runs the image as Lambda runs a container image
# function whose image_config command is ["lambda"]:
#
#   tests/container/lambda-podman.sh IMAGE [COMMAND...]
#
#   - ENTRYPOINT ["rapidphoto"] with the command "lambda" (or COMMAND);
#   - an arbitrary non-root user (uid 993, not the image's 10001), no
#     passwd entry;
#   - a read-only root file system: only /tmp is writable (a tmpfs, 512 MB
#     as Lambda's default ephemeral storage);
#   - the function's environment as README's "Deployment" section says to
#     set it: RAPIDPHOTO_DATA_DIR=/tmp/rapidphoto;
#   - no HEALTHCHECK (Lambda runs none);
#   - the host's network (the test's Runtime API, the stand-ins and
#     PostgreSQL listen on loopback).
#
# The variables the test gives this script reach the container: every
# AWS_*, RAPIDPHOTO_*, LAMBDA_*, RP_FAULT_* one, _HANDLER, _X_AMZN_TRACE_ID
# and TZ is passed with -e (RAPIDPHOTO_DATA_DIR excepted: a host folder
# means nothing inside). Lambda itself sets LAMBDA_TASK_ROOT and friends.
#
# The container lives exactly as long as this script: a signal to the
# script stops it, and if the script is killed outright (SIGKILL: the test
# making the runtime crash), a watchdog removes the container at once, as
# Lambda's sandbox dies with its runtime process. The script exits as the
# container's process did: its exit code, or the same signal.
set -uo pipefail
# The image is an argument: the test passes the runtime only the variables
# a function has
[ $# -ge 1 ] && [ -n "$1" ] || { echo "lambda-podman.sh: usage: lambda-podman.sh IMAGE [COMMAND...]" >&2; exit 2; }
image=$1
shift
name=rp-test-lambda-$$-$RANDOM
[ $# -gt 0 ] || set -- lambda

args=(run --rm --name "$name" --network=host --no-healthcheck
      --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=512m,mode=1777
      --user 993:990
      -e AWS_LAMBDA_FUNCTION_NAME="${AWS_LAMBDA_FUNCTION_NAME:-rapid-photo-test-image-processor}"
      -e LAMBDA_TASK_ROOT=/var/task
      -e RAPIDPHOTO_DATA_DIR=/tmp/rapidphoto)
while IFS= read -r var; do
    case "$var" in
        RAPIDPHOTO_DATA_DIR|AWS_LAMBDA_FUNCTION_NAME|LAMBDA_TASK_ROOT) ;;
        AWS_*|RAPIDPHOTO_*|LAMBDA_*|RP_FAULT_*|_HANDLER|_X_AMZN_TRACE_ID|TZ) args+=(-e "$var") ;;
    esac
done < <(compgen -e)

podman "${args[@]}" "$image" "$@" &
child=$!
me=$$
# The watchdog: in a session of its own, so it outlives a SIGKILL of this
# script and of its process group
setsid bash -c '
    while kill -0 '"$me"' 2>/dev/null; do sleep 0.2; done
    podman rm --force --time 0 --ignore '"$name"' >/dev/null 2>&1
' </dev/null >/dev/null 2>&1 &
stop() {
    podman kill --signal "$1" "$name" >/dev/null 2>&1 || true
}
trap 'stop TERM' TERM
trap 'stop INT' INT
trap 'stop HUP' HUP
while :; do
    wait "$child"
    code=$?
    # wait returns early (above 128) when a trapped signal arrives; the
    # container is being stopped then: wait again for its end
    kill -0 "$child" 2>/dev/null || break
done
trap - TERM INT HUP
if [ "$code" -gt 128 ] && [ "$code" -lt 160 ]; then
    # The process died of a signal: so does this script
    sig=$((code - 128))
    trap - "$sig" 2>/dev/null || true
    kill -s "$sig" "$me"
fi
exit "$code"
