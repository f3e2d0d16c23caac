#!/usr/bin/env python3
"""tests/observability/xray_moto.py DOCUMENTS: X-Ray's API takes the
segment documents a real `rapidphoto serve` sent to its daemon.

tests/test_observability.c collects the documents over UDP, as the X-Ray
daemon would, and writes them to DOCUMENTS, one JSON object a line (the
complete ones: an in_progress document is replaced by its end in X-Ray as
well). This script starts moto's server on a free 127.0.0.1 port, sends
them with Debian's aws CLI (`/usr/bin/aws xray put-trace-segments`, in
batches, as the daemon does), reads every trace back with `batch-get-traces`
and checks that each document came back whole under its trace, none
unprocessed; then `get-trace-summaries` over the last hour lists every trace.
It exits 0, 1 (with what differed) or 77 when moto is not installed (the
suite says the check was skipped).

moto is not in Debian: it comes with this machine image's python3 (pyenv),
found by CMake as RP_MOTO_SERVER. Nothing here reaches AWS.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

AWS = "/usr/bin/aws"
MOTO = os.environ.get("RP_MOTO_SERVER", "")


_GIVEN_PORTS = set()


def free_port():
    """A port on 127.0.0.1 that was free a moment ago: random below the
    kernel's ephemeral range (where bind to port 0 and outgoing connections
    take theirs), never the same twice in this process (port 0 asked twice
    in a row can hand the same port back)."""
    import random
    high = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
            if low > 11000:
                high = low
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(10000):
        port = random.randrange(10000, high)
        if port in _GIVEN_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN_PORTS.add(port)
        return port
    raise RuntimeError("free_port: no free port found below %d" % high)


def aws(endpoint, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true")
    out = subprocess.run([AWS, "--endpoint-url", endpoint, "--output", "json", *args], env=env,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise SystemExit("aws %s failed (%d): %s" % (" ".join(args[:2]), out.returncode, out.stderr))
    return json.loads(out.stdout or "{}")


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: xray_moto.py DOCUMENTS")
    if not MOTO or not os.access(MOTO, os.X_OK):
        print("moto_server not found (RP_MOTO_SERVER): the X-Ray API check is skipped")
        return 77
    with open(sys.argv[1]) as f:
        documents = [line.strip() for line in f if line.strip()]
    if not documents:
        raise SystemExit("no documents to send")
    port = free_port()
    endpoint = "http://127.0.0.1:%d" % port
    folder = tempfile.mkdtemp(prefix="rp-xray-moto-")
    log = open(os.path.join(folder, "moto.log"), "w")
    moto = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        #  The daemon sends batches of up to 50 documents
        for i in range(0, len(documents), 50):
            answer = aws(endpoint, "xray", "put-trace-segments", "--trace-segment-documents", *documents[i:i + 50])
            if answer.get("UnprocessedTraceSegments"):
                raise SystemExit("X-Ray did not take: %s" % answer["UnprocessedTraceSegments"])
        sent = {}
        for text in documents:
            doc = json.loads(text)
            sent.setdefault(doc["trace_id"], {})[doc["id"]] = doc
        ids = sorted(sent)
        got = {}
        for i in range(0, len(ids), 5):         #  batch-get-traces takes 5 ids a call
            answer = aws(endpoint, "xray", "batch-get-traces", "--trace-ids", *ids[i:i + 5])
            if answer.get("UnprocessedTraceIds"):
                raise SystemExit("traces not found: %s" % answer["UnprocessedTraceIds"])
            for trace in answer.get("Traces", []):
                got[trace["Id"]] = {s["Id"]: json.loads(s["Document"]) for s in trace.get("Segments", [])}
        for trace_id, segments in sent.items():
            back = got.get(trace_id)
            if back is None:
                raise SystemExit("trace %s did not come back" % trace_id)
            for segment_id, doc in segments.items():
                if back.get(segment_id) != doc:
                    raise SystemExit("segment %s of %s came back as %s, sent %s"
                                     % (segment_id, trace_id, back.get(segment_id), doc))
        now = int(time.time())
        summaries = aws(endpoint, "xray", "get-trace-summaries", "--start-time", str(now - 3600),
                        "--end-time", str(now + 60))
        listed = {s["Id"] for s in summaries.get("TraceSummaries", [])}
        missing = set(sent) - listed
        if missing:
            raise SystemExit("get-trace-summaries misses %s" % sorted(missing))
        print("moto's X-Ray took %d documents in %d traces and gave them back whole"
              % (len(documents), len(sent)))
        return 0
    finally:
        moto.terminate()
        try:
            moto.wait(10)
        except subprocess.TimeoutExpired:
            moto.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
