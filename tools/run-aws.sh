#!/usr/bin/env bash
# tools/run-aws.sh: the engine as it runs on AWS, on one machine: bytes in
# S3, work and events through SQS, metadata in PostgreSQL, all local.
#
#   tools/run-aws.sh [serve options]
#
# Starts (and stops again on exit) the stand-ins of tools/aws/standins.mjs:
# s3rver on 127.0.0.1:4568 (bucket "photos", objects under var/aws/s3) whose
# object events under incoming/ and uploads/ go to the SQS queue "ingest",
# and local-aws-sqs on 127.0.0.1:9324 (queues ingest, ingest-dlq, events);
# a PostgreSQL (tools/pg.sh); then `rapidphoto serve` with storage.backend
# = s3 and both SQS bridges, switched to the stand-ins by AWS_ENDPOINT_URL.
# Ports: RP_S3_PORT, RP_SQS_PORT, RP_PG_PORT. Try it with Debian's aws CLI:
#   export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
#   aws --endpoint-url http://127.0.0.1:4568 s3 cp photo.jpg s3://photos/incoming/alice/photo.jpg
#   aws --endpoint-url http://127.0.0.1:9324 sqs receive-message \
#       --queue-url http://127.0.0.1:9324/123456789012/events
set -euo pipefail
cd "$(dirname "$0")/.."
s3_port=${RP_S3_PORT:-4568}
sqs_port=${RP_SQS_PORT:-9324}

tools/bootstrap.sh --aws
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRP_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target rapidphoto
db_url=$(tools/pg.sh start)

mkdir -p var/aws
node tools/aws/standins.mjs --port "$s3_port" --sqs-port "$sqs_port" --dir var/aws/s3 \
    > var/aws/standins.log 2>&1 &
standins=$!
trap 'kill "$standins" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    grep -q '^ready' var/aws/standins.log 2>/dev/null && break
    kill -0 "$standins" 2>/dev/null || { cat var/aws/standins.log >&2; exit 1; }
    sleep 0.1
done
grep -q '^ready' var/aws/standins.log || { echo "run-aws: the stand-ins did not start (var/aws/standins.log)" >&2; exit 1; }
echo "run-aws: S3 on http://127.0.0.1:$s3_port, SQS on http://127.0.0.1:$sqs_port, PostgreSQL at $db_url" >&2

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$s3_port AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$sqs_port
export RAPIDPHOTO_DB_URL=$db_url
export RAPIDPHOTO_STORAGE_BACKEND=s3 RAPIDPHOTO_STORAGE_S3_BUCKET=photos
export RAPIDPHOTO_SQS_INGEST_QUEUE_URL=http://127.0.0.1:$sqs_port/123456789012/ingest
export RAPIDPHOTO_SQS_EVENTS_QUEUE_URL=http://127.0.0.1:$sqs_port/123456789012/events
build/rapidphoto serve "$@"
