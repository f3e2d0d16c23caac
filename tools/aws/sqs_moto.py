# tools/aws/sqs_moto.py: a second SQS server for tests, moto's (Python), for
# what local-aws-sqs (tools/aws/sqs.mjs) gets wrong: its query-protocol
# answers put message bodies into the XML without escaping '<' and '&'
# (local-aws-sqs 2.0.2 escapes only '"'), so a body holding them cannot be
# read back through the query protocol. moto escapes them as SQS does.
#
#   python3 tools/aws/sqs_moto.py --port N [--queue NAME]... [--user KEY:SECRET]
#
# Listens on 127.0.0.1 and speaks both SQS protocols (JSON and query).
# --queue makes a queue before the port opens. Queue URLs are
# http://127.0.0.1:PORT/123456789012/NAME (moto's default account, region
# us-east-1). Any access key will do, unless --user: then only KEY with
# SECRET, and moto checks every request's SigV4 signature (recomputing it
# with botocore) as AWS does, answering SignatureDoesNotMatch otherwise.
# Prints "ready http://127.0.0.1:PORT" once it accepts requests. Stops on
# SIGTERM/SIGINT.
#
# moto comes with the machine image's Python (pip moto 5.2.1); Debian 12
# has no package of it and PyPI is out of reach here.
import signal
import sys

try:
    from moto import settings
    from moto.iam.models import iam_backends
    from moto.server import ThreadedMotoServer
    from moto.sqs.models import sqs_backends
except ImportError as error:
    print(f"sqs_moto: moto is missing ({error}): it comes with the machine image's python3 (pip moto)",
          file=sys.stderr)
    sys.exit(1)

port = 9324
queues = []
user = None
args = sys.argv[1:]
i = 0
while i < len(args):
    if args[i] == "--port" and i + 1 < len(args):
        port = int(args[i + 1])
    elif args[i] == "--queue" and i + 1 < len(args):
        queues.append(args[i + 1])
    elif args[i] == "--user" and i + 1 < len(args) and ":" in args[i + 1]:
        user = args[i + 1].split(":", 1)
    else:
        print(f"sqs_moto: unknown argument {args[i]} (use --port N --queue NAME --user KEY:SECRET)",
              file=sys.stderr)
        sys.exit(2)
    i += 2

backend = sqs_backends["123456789012"]["us-east-1"]
for name in queues:
    backend.create_queue(name)
if user:
    # An IAM user allowed all of SQS, its access key made KEY:SECRET; from
    # the first request on, moto authenticates every one
    iam = iam_backends["123456789012"]["aws"]
    iam.create_user("us-east-1", "tests")
    key = iam.create_access_key("tests")
    key.access_key_id, key.secret_access_key = user
    iam.put_user_policy("tests", "sqs", '{"Version": "2012-10-17", "Statement": '
                        '[{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}')
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print(f"ready http://127.0.0.1:{port}", flush=True)


def stop(signum, frame):
    server.stop()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while True:
    signal.pause()
