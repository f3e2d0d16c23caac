#!/usr/bin/env python3
"""tests/deploy/runbook.py (ctest runbook): docs/runbook.md, run.

Every ```sh block of the runbook runs, in the document's order, with bash
from the checkout's root, as an operator would type it: what one block
exports is there for the next (the environment is carried from block to
block), `set -e -o pipefail` makes any failing command fail the block. A
block preceded by `<!-- runbook: not run here: <why> -->` is not run and
its reason is printed; an unmarked block that cannot run fails the test, as
does a fence of any other language holding a command (only ```sh, ```text
and ```json are allowed).

The stand-ins:
  - AWS is moto's server on 127.0.0.1 (tests/deploy/ecs_runbook.py's Moto:
    SigV4 checked, every call signed with a key moto made). Debian's aws
    CLI (2.9) predates AWS_ENDPOINT_URL, so the `aws` on the blocks' PATH is
    a two-line wrapper adding `--endpoint-url $AWS_ENDPOINT_URL` to
    /usr/bin/aws: no block can reach anything but loopback.
  - What `terraform apply` would have made is made first, by this test,
    with the same CLI: the network, the ALB rapid-photo-dev-alb, the
    cluster, deploy/ecs's task definitions (v1.0.0) and services, the ECR
    repository, the RDS instance rapid-photo-dev-db, the queues, the
    autoscaling targets (dev.tfvars' bounds), the SSM parameters (db-url:
    the real PostgreSQL below; jwt-secret: the real serve's), the log group
    /ecs/rapid-photo-dev-backend and the dashboard rapid-photo-dev-dashboard
    (its widgets' titles and positions read from modules/monitoring/main.tf:
    the HCL's expressions are not evaluated here).
  - The log group holds REAL engine log lines, put as the awslogs driver
    would: the serve's own log, `rapidphoto process` of a PNG (20000x20000,
    16-bit, decoded by one thread: its resize lines say duration= over
    1000 ms), and a second engine given a port a plain socket holds (its
    `ERROR gateway cannot start` line, after which it exits 1 by itself).
    moto answers Logs Insights queries without evaluating them, so the test
    applies each of the runbook's query strings (the `like /regex/` filter;
    the `parse` and `filter duration > N`) to the lines itself, and checks
    the block printed the lines the query selects.
  - The engine's EMF metrics and X-Ray segments are not in this build: the
    test puts what they would put (put-metric-data, put-trace-segments), so
    the runbook's commands for them run on data of their shape.
  - PostgreSQL: RP_TEST_PG_URL (tools/pg.sh; unset: tools/pg.sh start, and
    stop after if it was not running), a schema of this test's own;
    a real `rapidphoto serve` on it (127.0.0.1), which the load test block
    runs against: moto's ALB has no engine behind it, so after the block that
    exports API_BASE_URL from it the test points API_BASE_URL at the serve
    (printed). `k6` on the PATH is tests/load/k6-runner.mjs.
  - Lambda: the function rapid-photo-dev-image-processor as the lambda
    module makes it (package type Image, command ["lambda"], version 1 and
    the alias prod, the ingest queue's event source mapping with
    ReportBatchItemFailures, the VPC, the KMS key, reserved concurrency;
    the numbers read from dev.tfvars, the environment from the pipeline's
    task definition less what main.tf excludes). moto runs no function
    (no docker here) and polls no queue; it takes image URIs without
    looking in ECR (its CodeSha256 for an image is the SHA-256 of the URI,
    which the checks use to tell the versions' images apart: moto's
    versions share one Code.ImageUri, a moto quirk). For the zip variant a
    second function, package type Zip (provided.al2023), stands for a
    zip-packaged deployment, and LAMBDA_ZIP is a zip made here (a
    `bootstrap` script only: moto checks its size and hash, runs nothing);
    ZIP_FUNCTION and LAMBDA_ZIP are set for the blocks (printed). moto
    5.2.1 answers SignatureDoesNotMatch to every GET of its Lambda API
    (GetAlias, ListVersionsByFunction, ...; from botocore and the CLI
    alike), so Lambda has a second moto_server of its own with signatures
    unchecked: the `aws` shim sends `aws lambda` there, and the ingest
    queue is made there too (the same account and name: the same ARN).
After each block, checks where it matters (the service runs the new
revision and its image, the dashboard's widgets, the queries' lines, the
rollback's image, the flyway rows, the SSM keys...). Each check must find
its block. Then the names: every RAPIDPHOTO_* name, every `section.key`
setting and every log line quoted in the Troubleshooting table must exist in
engine/config.c and the sources.

Skipped (77) only where moto is absent, as ecs_runbook.
"""
import json
import os
import re
import shutil
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
import base64
import hashlib
import struct

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ecs_runbook import Moto, free_port, ROOT, AWS, MOTO  # noqa: E402

DOC = os.path.join(ROOT, "docs", "runbook.md")
BINARY = os.environ.get("RP_BINARY", "")
NODE = os.environ.get("RP_NODE", "/usr/bin/node")
ENV = "dev"
CLUSTER, API, PIPELINE = "rapid-photo-dev-cluster", "rapid-photo-dev-backend", "rapid-photo-dev-pipeline"
LOG_GROUP = "/ecs/rapid-photo-dev-backend"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "ecs:*", "ecr:*", "ec2:*", "elasticloadbalancing:*", "iam:PassRole", "logs:*", "cloudwatch:*",
    "monitoring:*", "xray:*", "rds:*", "ssm:*", "sqs:*", "application-autoscaling:*", "sts:*",
    "lambda:*", "kms:*", "iam:CreateRole", "iam:GetRole"]}]}
FUNCTION = "rapid-photo-dev-image-processor"
ZIP_FUNCTION = FUNCTION + "-zip"
ENGINE_METRICS = ["UploadCount", "UploadBytes", "AckLatency", "ProcessingLatency", "Failures",
                  "QueueDepth", "JobsInFlight", "Workers"]
SOURCES = ["engine", "library", "actors", "gateway", "app"]


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


def expect(condition, message):
    if not condition:
        fail(message)


# ---- the document --------------------------------------------------------

def blocks(text):
    """The fenced blocks: (language, body, marker reason or None, line)."""
    found, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        expect(j < len(lines), "line %d: a fence that is never closed" % (start + 1))
        reason, k = None, start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0:
            marker = re.match(r"^<!-- runbook: not run here: (.+?) -->$", lines[k].strip())
            if marker:
                reason = marker.group(1)
            elif lines[k].strip().startswith("<!-- runbook"):
                fail("line %d: a runbook marker this test does not know: %s" % (k + 1, lines[k]))
        found.append((lang, "\n".join(lines[start + 1:j]), reason, start + 1))
        i = j + 1
    return found


# ---- the stand-ins ---------------------------------------------------------

class Stand:
    """moto, and botocore clients on it for the setup (Debian's
    python3-botocore, as /usr/bin/aws uses it: one process, not a CLI start
    per call); the checks read back through the same clients."""

    def __init__(self, folder):
        import botocore.session
        self.folder = folder
        self.moto = Moto(folder)
        #  Lambda's own moto, unsigned (moto 5.2.1 fails SigV4 on Lambda's
        #  GETs); the `aws` shim sends `aws lambda` there
        self.moto_lambda = Moto(folder, signed=False, name="moto-lambda")
        self.session = botocore.session.get_session()
        self.keys = ("unsigned-setup", "unsigned-setup")
        self.clients = {}

    def lambda_side(self, service):
        """A client of the Lambda moto (lambda, and the IAM role and the
        queue its create_function and event source mapping look up)."""
        key = ("lambda-side", service)
        if key not in self.clients:
            self.clients[key] = self.session.create_client(
                service, region_name="us-east-1", endpoint_url=self.moto_lambda.endpoint,
                aws_access_key_id="unsigned", aws_secret_access_key="unsigned")
        return self.clients[key]

    def __call__(self, service):
        if service == "lambda":
            return self.lambda_side(service)
        key = (service, self.keys)
        if key not in self.clients:
            self.clients[key] = self.session.create_client(
                service, region_name="us-east-1", endpoint_url=self.moto.endpoint,
                aws_access_key_id=self.keys[0], aws_secret_access_key=self.keys[1])
        return self.clients[key]


def wait_http(url, seconds, process=None, log=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.1)
    fail("%s did not answer 200: %s" % (url, open(log).read()[-3000:] if log else ""))


def big_png(path, width=20000, height=20000):
    """A 16-bit RGB PNG libvips must decode whole (no shrink-on-load for
    PNG): a gradient row, repeated, so it is small on disk and made in a
    few seconds, and its resize takes two seconds on an idle machine
    (16000x16000 took 1.4 s, 12000x12000 0.9 s)."""
    row = b"\x00" + bytes((x * 7 + (x >> 4)) & 0xFF for x in range(width * 6))
    z = zlib.compressobj(1)
    parts = [z.compress(row) for _ in range(height)]
    parts.append(z.flush())

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", b"".join(parts)))
        f.write(chunk(b"IEND", b""))


def monitoring_widgets():
    """modules/monitoring/main.tf's widgets: type, position, title (the
    HCL's expressions, for-loops and SEARCH()es are not evaluated here)."""
    tf = open(os.path.join(ROOT, "infrastructure", "modules", "monitoring", "main.tf")).read()
    widgets = []
    for m in re.finditer(r'type = "(\w+)", x = (\d+), y = (\d+), width = (\d+), height = (\d+)\s*\n\s*'
                         r'properties = \{\s*\n\s*title\s*=\s*"([^"]+)"', tf):
        widgets.append({"type": m.group(1), "x": int(m.group(2)), "y": int(m.group(3)),
                        "width": int(m.group(4)), "height": int(m.group(5)),
                        "properties": {"title": m.group(6), "region": "us-east-1",
                                       "metrics": [["AWS/ECS", "CPUUtilization", "ClusterName", CLUSTER]]}})
    return widgets


# ---- the names the runbook quotes -----------------------------------------

def c_text():
    """Every C source of the engine, adjacent string literals joined."""
    out = []
    for top in SOURCES:
        for base, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith((".c", ".h")):
                    out.append(open(os.path.join(base, name), errors="replace").read())
    return re.sub(r'"\s*\n\s*"', "", "\n".join(out))


def s_in_order(fragments, literal):
    at = 0
    for fragment in fragments:
        at = literal.find(fragment, at)
        if at < 0:
            return False
        at += len(fragment)
    return True


def check_names(text):
    config = open(os.path.join(ROOT, "engine", "config.c")).read()
    keys = set(re.findall(r'"([a-z0-9]+)",\s*"([a-z0-9_]+)"', config))
    sections = {s for s, _ in keys}
    counted = {"env": 0, "keys": 0, "lines": 0}
    for name in sorted(set(re.findall(r"\bRAPIDPHOTO_[A-Z0-9_]*[A-Z0-9]", text))):
        parts = name[len("RAPIDPHOTO_"):].lower().split("_", 1)
        expect(len(parts) == 2 and tuple(parts) in keys, "%s: no such setting in engine/config.c" % name)
        counted["env"] += 1
    for span in sorted(set(re.findall(r"`([a-z0-9]+\.[a-z0-9_]+)`", text))):
        section, key = span.split(".", 1)
        if section in sections:
            expect((section, key) in keys, "`%s`: no such setting in engine/config.c" % span)
            counted["keys"] += 1
    sources = c_text()
    literals = re.findall(r'"((?:[^"\\\n]|\\.)*)"', sources)
    table = text.split("## Troubleshooting", 1)[1]
    for row in re.findall(r"^\| `([^`]+)`", table, re.M):
        if re.fullmatch(r"[a-z]+\.[a-z_]+", row):
            continue                    #  a setting, checked above
        fragments = [f.strip() for f in row.split("...") if f.strip()]
        expect(any(s_in_order(fragments, literal) for literal in literals),
               "the log line `%s` is in no string of the sources" % row)
        counted["lines"] += 1
    #  the quoted WARN of an older release, whole
    for quote in re.findall(r"`(the database schema is at version \d[^`]+)`", text):
        format = re.sub(r"version \d+", "version %s", re.sub(r"\(\d+\)", "(%s)", quote))
        expect(any(format in literal for literal in literals), "the WARN line `%s` is not the engine's" % quote)
        counted["lines"] += 1
    for metric in ENGINE_METRICS:
        expect("`%s`" % metric in text, "the engine metric %s is not named" % metric)
    tf = open(os.path.join(ROOT, "infrastructure", "modules", "monitoring", "main.tf")).read()
    for metric in re.findall(r"`(rapidphoto_[a-z_]+)`", text):
        expect(re.search(r"\b%s\b" % metric, sources), "the metric %s is in no source" % metric)
    for metric in ENGINE_METRICS:
        expect(metric in tf, "%s is not on the dashboard" % metric)
    return counted


# ---- the run ---------------------------------------------------------------

class Run:
    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="rp-test-runbook-")
        self.home = os.path.join(self.folder, "home")
        os.makedirs(self.home)
        self.children = []
        self.stand = None
        self.schema = None
        self.pg_stop = None

    def close(self):
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
        if self.stand:
            self.stand.moto.stop()
            self.stand.moto_lambda.stop()
        if self.schema:
            subprocess.run(["psql", self.pg_base, "-qc", "DROP SCHEMA IF EXISTS %s CASCADE" % self.schema],
                           capture_output=True)
        if self.pg_stop:
            subprocess.run([self.pg_stop, "stop"], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- PostgreSQL and the engine
    def database(self):
        base = os.environ.get("RP_TEST_PG_URL", "")
        if not base:
            #  tools/pg.sh's own (RP_PG_PORT), started here and stopped
            #  after unless it was already running
            pg = os.path.join(ROOT, "tools", "pg.sh")
            url = subprocess.run([pg, "url"], capture_output=True, text=True).stdout.strip()
            running = subprocess.run(["psql", url, "-qc", "SELECT 1"], capture_output=True).returncode == 0
            done = subprocess.run([pg, "start"], capture_output=True, text=True)
            expect(done.returncode == 0, "tools/pg.sh start: %s" % done.stderr)
            base = done.stdout.strip()
            self.pg_stop = None if running else pg
        self.pg_base = base
        self.schema = "runbook_%d" % os.getpid()
        done = subprocess.run(["psql", base, "-qc", "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s"
                               % (self.schema, self.schema)], capture_output=True, text=True)
        expect(done.returncode == 0, "psql: %s" % done.stderr)
        self.db_url = "%s%soptions=-csearch_path%%3D%s" % (base, "&" if "?" in base else "?", self.schema)

    def engine_env(self, data):
        return dict(os.environ, RAPIDPHOTO_DATA_DIR=data, RAPIDPHOTO_DB_URL=self.db_url,
                    RAPIDPHOTO_AUTH_JWT_SECRET=self.jwt, RAPIDPHOTO_LOG_OUTPUT="stdout",
                    RAPIDPHOTO_BROKER_FRONTEND="tcp://127.0.0.1:%d" % free_port(),
                    RAPIDPHOTO_BROKER_BACKEND="tcp://127.0.0.1:%d" % free_port())

    def serve(self):
        self.jwt = "runbook-" + os.urandom(24).hex()
        self.port = free_port()
        self.serve_log = os.path.join(self.folder, "serve.log")
        env = self.engine_env(os.path.join(self.folder, "data"))
        env["RAPIDPHOTO_HTTP_LISTEN"] = "127.0.0.1:%d" % self.port
        with open(self.serve_log, "w") as log:
            child = subprocess.Popen([BINARY, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        self.children.append(child)
        self.url = "http://127.0.0.1:%d" % self.port
        wait_http(self.url + "/readyz", 30, child, self.serve_log)

    def engine_lines(self):
        """Real log lines besides the serve's: a slow resize, a refused start."""
        png = os.path.join(self.folder, "panorama.png")
        big_png(png)
        env = self.engine_env(os.path.join(self.folder, "process"))
        env["RAPIDPHOTO_POOLS_VIPS_CONCURRENCY"] = "1"
        env["RAPIDPHOTO_LIMITS_MAX_PIXELS"] = "500000000"
        done = subprocess.run([BINARY, "process", "--out", os.path.join(self.folder, "out"), png], env=env,
                              capture_output=True, text=True, timeout=120)
        expect(done.returncode == 0, "process: %s" % done.stderr[-2000:])
        lines = [line for line in done.stderr.splitlines() + done.stdout.splitlines() if re.match(r"^\d{4}-", line)]
        #  A second engine on a port a plain socket holds: its gateway cannot
        #  start (the engine's own listener takes SO_REUSEPORT, so a port
        #  another engine holds would not do)
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        env = self.engine_env(os.path.join(self.folder, "second"))
        env["RAPIDPHOTO_HTTP_LISTEN"] = "127.0.0.1:%d" % holder.getsockname()[1]
        del env["RAPIDPHOTO_DB_URL"]        #  SQLite: its line is the same
        log = os.path.join(self.folder, "second.log")
        with open(log, "w") as out:
            second = subprocess.Popen([BINARY, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
        self.children.append(second)
        deadline, error, seen = time.monotonic() + 30, None, []
        while time.monotonic() < deadline and second.poll() is None:
            seen = open(log, errors="replace").read().splitlines()
            if any(" ERROR " in line for line in seen):
                break
            time.sleep(0.1)
        for line in seen:
            lines.append(line)
            if " ERROR " in line and error is None:
                error = line
        #  An engine whose gateway cannot start exits 1 by itself
        try:
            status = second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait(timeout=30)
            status = None
        holder.close()
        for line in open(log, errors="replace").read().splitlines()[len(seen):]:
            lines.append(line)
            if " ERROR " in line and error is None:
                error = line
        expect(status == 1, f"the engine whose gateway could not start exits 1 (status {status}, log {log})")
        expect(error and "cannot start" in error, "the second engine logged no ERROR line")
        return lines, error

    # -- what Terraform would have made
    def infrastructure(self, lines):
        stand = self.stand = Stand(self.folder)
        iam = stand("iam")
        iam.create_user(UserName="rapid-photo-operator")
        iam.put_user_policy(UserName="rapid-photo-operator", PolicyName="operate", PolicyDocument=json.dumps(POLICY))
        key = iam.create_access_key(UserName="rapid-photo-operator")["AccessKey"]
        stand.keys = (key["AccessKeyId"], key["SecretAccessKey"])
        self.account = stand("sts").get_caller_identity()["Account"]
        ec2, elb, ecs = stand("ec2"), stand("elbv2"), stand("ecs")
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.%d.0/24" % i, AvailabilityZone=zone)["Subnet"]["SubnetId"]
                   for i, zone in ((1, "us-east-1a"), (2, "us-east-1b"))]
        groups = {role: ec2.create_security_group(GroupName="rapid-photo-dev-" + role, Description=role,
                                                  VpcId=vpc)["GroupId"] for role in ("api", "pipeline")}
        balancer = elb.create_load_balancer(Name="rapid-photo-dev-alb", Subnets=subnets)["LoadBalancers"][0]
        self.alb_dns = balancer["DNSName"]
        group = elb.create_target_group(Name="rapid-photo-dev-api", Protocol="HTTP", Port=8080, VpcId=vpc,
                                        TargetType="ip", HealthCheckPath="/healthz")["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
        #  $ECS_VARS: deploy/ecs/example.env with this environment's values
        example = open(os.path.join(ROOT, "deploy", "ecs", "example.env")).read()
        values = {"ENV": ENV, "AWS_ACCOUNT_ID": self.account, "PRIVATE_SUBNET_1": subnets[0],
                  "PRIVATE_SUBNET_2": subnets[1], "API_SECURITY_GROUP": groups["api"],
                  "PIPELINE_SECURITY_GROUP": groups["pipeline"], "API_TARGET_GROUP_ARN": group}
        for name, value in values.items():
            example, n = re.subn(r"(?m)^%s=.*$" % name, "%s=%s" % (name, value), example)
            expect(n == 1, "example.env has no %s" % name)
        self.ecs_vars = os.path.join(self.home, "rapid-photo-dev.env")
        with open(self.ecs_vars, "w") as f:
            f.write(example)
        out = os.path.join(self.folder, "v1.0.0")
        done = subprocess.run([sys.executable, os.path.join(ROOT, "deploy", "ecs", "render.py"), "--vars",
                               self.ecs_vars, "--out", out], capture_output=True, text=True)
        expect(done.returncode == 0, "render.py: %s" % done.stderr)
        ecs.create_cluster(clusterName=CLUSTER, tags=[{"key": "Project", "value": "RapidPhotoUpload"}])
        for role in ("api", "pipeline"):
            ecs.register_task_definition(**json.load(open("%s/task-definitions/%s.json" % (out, role))))
            ecs.create_service(**json.load(open("%s/services/%s.json" % (out, role))))
        stand("ecr").create_repository(repositoryName="rapid-photo/backend")

        stand("rds").create_db_instance(DBInstanceIdentifier="rapid-photo-dev-db", Engine="postgres",
                                        EngineVersion="16.4", DBInstanceClass="db.t4g.micro",
                                        MasterUsername="rapidphoto", MasterUserPassword=os.urandom(12).hex(),
                                        AllocatedStorage=20)
        sqs = stand("sqs")
        queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"]
                  for name in ("rapid-photo-dev-ingest-dlq", "rapid-photo-dev-ingest", "rapid-photo-dev-events")}
        #  What the redrive leaves in the dead-letter queue: an S3
        #  notification for an object of no user
        sqs.send_message(QueueUrl=queues["rapid-photo-dev-ingest-dlq"], MessageBody=json.dumps(
            {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {
                "bucket": {"name": "rapid-photo-dev-photos"},
                "object": {"key": "incoming/nobody/IMG_0001.jpg", "size": 7516}}}]}))
        self.lambda_function(out, subnets, vpc, queues["rapid-photo-dev-ingest"])
        for service in (API, PIPELINE):
            stand("application-autoscaling").register_scalable_target(
                ServiceNamespace="ecs", ScalableDimension="ecs:service:DesiredCount",
                ResourceId="service/%s/%s" % (CLUSTER, service), MinCapacity=1, MaxCapacity=2)
        for name, value in (("db-url", self.db_url), ("jwt-secret", self.jwt),
                            ("broker-curve-secret-key", "unset: run rapidphoto keygen"),
                            ("broker-curve-clients", "unset: run rapidphoto keygen")):
            stand("ssm").put_parameter(Type="SecureString", Name="/rapid-photo/dev/" + name, Value=value)
        stand("cloudwatch").put_dashboard(DashboardName="rapid-photo-dev-dashboard",
                                          DashboardBody=json.dumps({"widgets": monitoring_widgets()}))
        #  The logs, as the awslogs driver ships them
        logs = stand("logs")
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="api/backend/1")
        now = int(time.time() * 1000)
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="api/backend/1", logEvents=[
            {"timestamp": now - len(lines) + i, "message": line} for i, line in enumerate(lines)])
        #  What the EMF lines and the X-Ray daemon would put
        stand("cloudwatch").put_metric_data(Namespace="RapidPhotoUpload", MetricData=[
            {"MetricName": m, "Value": v, "Unit": u} for m, v, u in (
                ("UploadCount", 12, "Count"), ("UploadBytes", 90112, "Bytes"), ("AckLatency", 41, "Milliseconds"),
                ("ProcessingLatency", 180, "Milliseconds"), ("Failures", 0, "Count"), ("QueueDepth", 3, "Count"),
                ("JobsInFlight", 2, "Count"), ("Workers", 3, "Count"))])
        start = time.time() - 5
        self.trace = "1-%08x-%s" % (int(start), os.urandom(12).hex())
        stand("xray").put_trace_segments(TraceSegmentDocuments=[json.dumps({
            "name": API, "id": os.urandom(8).hex(), "trace_id": self.trace, "start_time": start,
            "end_time": start + 1.4, "http": {"request": {"method": "POST", "url": "/api/v1/photos"},
                                              "response": {"status": 201}}})])

    def lambda_function(self, out, subnets, vpc, ingest_url):
        """The image-processor function as infrastructure/modules/lambda
        makes it, with dev.tfvars' numbers; and a zip-packaged one."""
        stand = self.stand
        tf = open(os.path.join(ROOT, "infrastructure", "modules", "lambda", "main.tf")).read()
        main = open(os.path.join(ROOT, "infrastructure", "main.tf")).read()
        tfvars = dict(re.findall(r"(?m)^image_processor_(\w+)\s*=\s*\"?([\w.]+)\"?", open(
            os.path.join(ROOT, "infrastructure", "environments", "dev.tfvars")).read()))
        expect(tfvars.get("mode") in ("beside", "instead"), "dev.tfvars: no image processor: %s" % tfvars)
        self.lambda_numbers = {k: int(v) for k, v in tfvars.items() if v.isdigit()}
        description = re.search(r'resource "aws_lambda_function"[^}]*?description\s*=\s*"([^"]+)"', tf).group(1)
        expect('command = ["lambda"]' in tf and 'package_type  = "Image"' in tf, "modules/lambda: not the image running lambda")
        excluded = json.loads(re.search(r"image_processor_excluded = (\[[^]]*\])", main).group(1))
        pipeline = json.load(open("%s/task-definitions/pipeline.json" % out))["containerDefinitions"][0]
        env = {e["name"]: e["value"] for e in pipeline["environment"]
               if e["name"].startswith("RAPIDPHOTO_") and e["name"] not in excluded}
        env.update(RAPIDPHOTO_DATA_DIR="/tmp/rapidphoto", RAPIDPHOTO_DB_URL=self.db_url)
        assume = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                           "Principal": {"Service": "lambda.amazonaws.com"}}]}
        role = stand.lambda_side("iam").create_role(RoleName=FUNCTION + "-role",
                                                    AssumeRolePolicyDocument=json.dumps(assume))["Role"]["Arn"]
        #  the ingest queue again where the mapping looks it up: the same
        #  account and name, so the same ARN as the one the blocks read
        stand.lambda_side("sqs").create_queue(QueueName="rapid-photo-dev-ingest")
        key = stand("kms").create_key(Description="The environment (database URL) of " + FUNCTION)["KeyMetadata"]["Arn"]
        group = stand("ec2").create_security_group(GroupName="rapid-photo-dev-image-processor", Description="lambda",
                                                   VpcId=vpc)["GroupId"]
        lam = stand("lambda")
        self.image_uri = "%s.dkr.ecr.us-east-1.amazonaws.com/rapid-photo/backend:%%s" % self.account
        n = self.lambda_numbers
        lam.create_function(FunctionName=FUNCTION, Role=role, PackageType="Image", Description=description,
                            Code={"ImageUri": self.image_uri % "v1.0.0"}, ImageConfig={"Command": ["lambda"]},
                            MemorySize=n["memory_mb"], Timeout=n["timeout_s"], Publish=True, KMSKeyArn=key,
                            Environment={"Variables": env}, TracingConfig={"Mode": "Active"},
                            VpcConfig={"SubnetIds": subnets, "SecurityGroupIds": [group]},
                            EphemeralStorage={"Size": n["ephemeral_storage_mb"]})
        lam.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=n["reserved_concurrency"])
        alias = lam.create_alias(FunctionName=FUNCTION, Name="prod", FunctionVersion="1")["AliasArn"]
        stand("logs").create_log_group(logGroupName="/aws/lambda/" + FUNCTION)
        self.ingest_arn = stand("sqs").get_queue_attributes(QueueUrl=ingest_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        #  Debian's python3-botocore predates ScalingConfig; /usr/bin/aws's own does not
        done = subprocess.run([AWS, "--endpoint-url", stand.moto_lambda.endpoint, "--region", "us-east-1", "--output", "json",
                               "lambda", "create-event-source-mapping", "--function-name", alias,
                               "--event-source-arn", self.ingest_arn, "--function-response-types", "ReportBatchItemFailures",
                               "--batch-size", str(n["batch_size"]),
                               "--maximum-batching-window-in-seconds", str(n["batching_window_s"]),
                               "--scaling-config", "MaximumConcurrency=%d" % n["maximum_concurrency"]],
                              env=dict(os.environ, AWS_ACCESS_KEY_ID=stand.keys[0], AWS_SECRET_ACCESS_KEY=stand.keys[1],
                                       AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER=""),
                              capture_output=True, text=True)
        expect(done.returncode == 0, "create-event-source-mapping: %s" % done.stderr)
        #  a zip-packaged deployment of the same engine, and a release's zip
        def zipped(script):
            import io
            import zipfile
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as z:
                info = zipfile.ZipInfo("bootstrap")
                info.external_attr = 0o755 << 16
                z.writestr(info, script)
            return buffer.getvalue()
        lam.create_function(FunctionName=ZIP_FUNCTION, Role=role, PackageType="Zip", Runtime="provided.al2023",
                            Handler="lambda", Code={"ZipFile": zipped("#!/bin/sh\nexec ./rapidphoto lambda # v1.0.0\n")},
                            Publish=True, Description="v1.0.0")
        lam.create_alias(FunctionName=ZIP_FUNCTION, Name="prod", FunctionVersion="1")
        self.lambda_zip = os.path.join(self.folder, "lambda.zip")
        with open(self.lambda_zip, "wb") as f:
            f.write(zipped("#!/bin/sh\nexec ./rapidphoto lambda # v1.0.1\n"))

    # -- the blocks
    def shims(self):
        shims = os.path.join(self.folder, "bin")
        os.makedirs(shims)
        with open(os.path.join(shims, "aws"), "w") as f:
            f.write('#!/bin/sh\n#  Debian\'s aws CLI 2.9 predates AWS_ENDPOINT_URL: say it on every call\n'
                    '#  (Lambda: a moto of its own, unsigned: moto 5.2.1 fails SigV4 on its GETs)\n'
                    'if [ "$1" = lambda ]; then exec %s --endpoint-url "${AWS_LAMBDA_ENDPOINT_URL:?}" "$@"; fi\n'
                    'exec %s --endpoint-url "${AWS_ENDPOINT_URL:?}" "$@"\n' % (AWS, AWS))
        with open(os.path.join(shims, "k6"), "w") as f:
            f.write('#!/bin/sh\nexec %s %s "$@"\n' % (NODE, os.path.join(ROOT, "tests", "load", "k6-runner.mjs")))
        os.symlink(BINARY, os.path.join(shims, "rapidphoto"))
        for name in ("aws", "k6"):
            os.chmod(os.path.join(shims, name), 0o755)
        self.env_file = os.path.join(self.folder, "env.sh")
        base = {"PATH": shims + ":/usr/bin:/bin", "HOME": self.home, "LANG": "C.UTF-8",
                "AWS_ENDPOINT_URL": self.stand.moto.endpoint, "AWS_ACCESS_KEY_ID": self.stand.keys[0],
                "AWS_LAMBDA_ENDPOINT_URL": self.stand.moto_lambda.endpoint,
                "AWS_SECRET_ACCESS_KEY": self.stand.keys[1], "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_PAGER": "", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true",
                #  the zip variant's function and file (the stand-ins above)
                "ZIP_FUNCTION": ZIP_FUNCTION, "LAMBDA_ZIP": self.lambda_zip,
                #  the host's own settings besides what the runbook exports
                "RAPIDPHOTO_DATA_DIR": os.path.join(self.folder, "operator"),
                "RAPIDPHOTO_BROKER_FRONTEND": "tcp://127.0.0.1:%d" % free_port(),
                "RAPIDPHOTO_BROKER_BACKEND": "tcp://127.0.0.1:%d" % free_port()}
        self.base = base

    def run_block(self, body):
        script = ("set -e -o pipefail\n%s\n%s\nexport -p > %s.next\n"
                  % ("" if not os.path.exists(self.env_file) else ". " + self.env_file, body, self.env_file))
        env = dict(self.base)
        done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=180)
        if done.returncode == 0:
            os.replace(self.env_file + ".next", self.env_file)
        return done

    def exported(self, name):
        done = subprocess.run(["bash", "-c", ". %s; printf %%s \"$%s\"" % (self.env_file, name)],
                              env=self.base, capture_output=True, text=True)
        return done.stdout

    def override(self, name, value):
        with open(self.env_file, "a") as f:
            f.write("export %s=%s\n" % (name, value))
        print("    (stand-in: %s=%s)" % (name, value))


def insights(query, lines):
    """The runbook's Logs Insights query applied to log lines: its
    `filter @message like /R/`, or its `parse ... /duration=(?<duration>\\d+)/`
    with `filter duration > N`."""
    like = re.search(r"filter @message like /(.+?)/ \|", query)
    if like:
        return [line for line in lines if re.search(like.group(1), line)]
    parse = re.search(r"parse @message /(.+?)/ \| filter (\w+) > (\d+)", query)
    expect(parse, "a query this test cannot evaluate: %s" % query)
    pattern = re.compile(parse.group(1).replace("(?<", "(?P<"))
    found = []
    for line in lines:
        m = pattern.search(line)
        if m and int(m.group(parse.group(2))) > int(parse.group(3)):
            found.append(line)
    return found


def spoiled(text):
    """The document checks bite: spoiled copies of the runbook fail them."""
    table = text.index("| `readiness:")
    for what, copy, check in (
            ("a made-up RAPIDPHOTO_ name", text + "\n`RAPIDPHOTO_HTTP_LISTENING`\n", check_names),
            ("a made-up setting", text.replace("`shutdown.timeout_s`", "`shutdown.timeout_ms`"), check_names),
            ("a log line the engine never writes",
             text[:table] + "| `readiness: ... went away` | x | y |\n" + text[table:], check_names),
            ("an unknown marker", text.replace("<!-- runbook: not run here:", "<!-- runbook: skip:", 1), blocks)):
        try:
            check(copy)
        except Failure:
            continue
        fail("a runbook with %s passes the checks" % what)
    print("the document's checks fail on 4 spoiled copies")


def main():
    if not MOTO or not os.access(MOTO, os.X_OK):
        print("runbook: skipped: no moto_server (moto is not in Debian; this machine image's python3 has it; "
              "RP_MOTO_SERVER names it)")
        return 77
    for tool, why in ((AWS, "tools/bootstrap.sh --test installs Debian's awscli"), ("/usr/bin/psql", "postgresql-client"),
                      ("/usr/bin/jq", "jq")):
        expect(os.access(tool, os.X_OK), "%s is missing: %s" % (tool, why))
    expect(BINARY and os.access(BINARY, os.X_OK), "RP_BINARY must name the build's rapidphoto")
    started = time.monotonic()
    text = open(DOC).read()
    counted = check_names(text)
    found = blocks(text)
    for lang, body, reason, line in found:
        expect(lang in ("sh", "text", "json"), "line %d: a ```%s block: commands are ```sh, output ```text" % (line, lang))
    spoiled(text)

    run = Run()
    try:
        run.database()
        run.serve()
        lines, error_line = run.engine_lines()
        with open(run.serve_log) as f:
            serve_lines = [line.rstrip("\n") for line in f if re.match(r"^\d{4}-", line)]
        lines = serve_lines + lines
        run.infrastructure(lines)
        run.shims()
        stand = run.stand
        print("stand-ins ready after %.1f s: moto %s, serve %s, %d real log lines"
              % (time.monotonic() - started, run.stand.moto.endpoint, run.url, len(lines)))
        print("    (stand-in: ZIP_FUNCTION=%s, LAMBDA_ZIP=%s: the zip variant's function and file)" % (ZIP_FUNCTION, run.lambda_zip))

        def service(name):
            return stand("ecs").describe_services(cluster=CLUSTER, services=[name])["services"][0]

        def image(task_definition):
            return stand("ecs").describe_task_definition(taskDefinition=task_definition)[
                "taskDefinition"]["containerDefinitions"][0]["image"]

        def query_check(body, out):
            query = re.search(r"--query-string '([^']+)'", body).group(1)
            selected = insights(query, lines)
            expect(selected, "the query %r selects none of the engine's lines" % query)
            for line in selected:
                expect(line in out, "the query's line is not printed: %s" % line)
            return query, selected

        def check_errors(body, out):
            query, selected = query_check(body, out)
            expect(error_line in selected, "the error query misses %s" % error_line)
            expect(len(selected) < len(lines), "the error query takes every line")
            print("    the query selects %d of %d lines, the ERROR one among them" % (len(selected), len(lines)))

        def check_slow(body, out):
            query, selected = query_check(body, out)
            expect(any(" resize " in line for line in selected), "no slow resize line: %s" % selected)
            print("    the query selects %d lines over 1000 ms: %s" % (len(selected), selected[0][24:110]))

        def check_deploy(body, out):
            api = service(API)
            expect(api["taskDefinition"].endswith("%s:2" % API), api["taskDefinition"])
            expect(image(api["taskDefinition"]).endswith("/rapid-photo/backend:v1.0.1"), "not v1.0.1")
            expect(service(PIPELINE)["taskDefinition"].endswith("%s:2" % PIPELINE), "pipeline not on :2")

        def check_rollback(body, out):
            expect(service(API)["taskDefinition"].endswith("%s:1" % API), "not back on revision 1")
            expect(out.strip().splitlines()[-1].endswith("/rapid-photo/backend:v1.0.0"), out)

        def check_dashboard(body, out):
            titles = [w["properties"]["title"] for w in monitoring_widgets()]
            expect(len(titles) >= 12, "the monitoring module's widgets were not read: %s" % titles)
            expect(out.strip().splitlines() == titles, "the dashboard's widgets: %s" % out)
            for title in titles:
                for part in [p.strip() for p in title.split(",")]:
                    expect(part.split(" (")[0] in text, "the widget %r is not explained" % title)

        def check_flyway(body, out):
            versions = sorted(int(f.split("__")[0][1:]) for f in os.listdir(os.path.join(ROOT, "schemas", "postgresql"))
                              if f.endswith(".sql"))
            rows = re.findall(r"^\s*\d+\s*\|\s*(\d+)\s*\|.*\|\s*t\s*$", out, re.M)
            expect([int(v) for v in rows] == versions, "flyway_schema_history: %s" % out)

        def check_keys(body, out):
            #  a Z85 key may begin with "-": `--value KEY` would then be
            #  read as an option (found by this test, 1 run in ~40)
            expect("--value " not in body and body.count("--value=") == 2, "put-parameter needs --value=")
            for name in ("broker-curve-secret-key", "broker-curve-clients"):
                value = stand("ssm").get_parameter(Name="/rapid-photo/dev/" + name, WithDecryption=True)[
                    "Parameter"]["Value"]
                expect(len(value) == 40 and not value.startswith("unset"), "%s: %r" % (name, value))

        def check_scaling_targets(body, out):
            expect("service/%s/%s\t1\t2" % (CLUSTER, API) in out, out)
            targets = stand("application-autoscaling").describe_scalable_targets(
                ServiceNamespace="ecs", ResourceIds=["service/%s/%s" % (CLUSTER, API)])["ScalableTargets"]
            expect(targets[0]["MaxCapacity"] == 4, targets)

        def image_sha(tag):
            #  moto's CodeSha256 of an image: the SHA-256 of its URI
            return hashlib.sha256((run.image_uri % tag).encode()).hexdigest()

        def alias_version(function):
            return stand("lambda").get_alias(FunctionName=function, Name="prod")["FunctionVersion"]

        def check_lambda_state(body, out):
            n = run.lambda_numbers
            lines = out.strip().splitlines()
            expect(lines[0] == "prod\t1", out)
            expect(lines[1] == "1\tImage\tActive\tSuccessful\t%d\t%d" % (n["timeout_s"], n["memory_mb"]), out)
            #  moto resolves the alias to its version when the mapping is
            #  made (":1"); AWS keeps the alias's ARN (":prod")
            esm = lines[2].split("\t")
            expect(re.fullmatch(r"arn:aws:lambda:us-east-1:\d+:function:%s:(prod|1)" % FUNCTION, esm[0]), out)
            expect(esm[1:] == ["Enabled", str(n["batch_size"]), "ReportBatchItemFailures", str(n["maximum_concurrency"])], out)
            expect(lines[3] == str(n["reserved_concurrency"]), out)
            expect(run.exported("INGEST_ARN") == run.ingest_arn, "INGEST_ARN: " + run.exported("INGEST_ARN"))
            print("    prod -> version 1 (Image, Active); the mapping %s, batch %s, %s, at most %s; reserved %s"
                  % tuple(esm[1:] + [lines[3]]))

        def check_lambda_deploy(body, out):
            expect(out.strip().splitlines()[-1] == "prod\t2", out)
            expect(alias_version(FUNCTION) == "2" and run.exported("LAMBDA_VERSION") == "2", "prod is not on version 2")
            lam = stand("lambda")
            latest = lam.get_function(FunctionName=FUNCTION)
            expect(latest["Code"]["ImageUri"] == run.image_uri % "v1.0.1", latest["Code"])
            v2 = lam.get_function_configuration(FunctionName=FUNCTION, Qualifier="2")
            expect(v2["Description"] == "v1.0.1" and v2["CodeSha256"] == image_sha("v1.0.1"), v2)
            v1 = lam.get_function_configuration(FunctionName=FUNCTION, Qualifier="1")
            expect(v1["CodeSha256"] == image_sha("v1.0.0"), "version 1 changed: %s" % v1)
            print("    prod -> version 2, v1.0.1's image; version 1 keeps v1.0.0's")

        def check_lambda_versions(body, out):
            rows = [line.split("\t") for line in out.strip().splitlines()]
            expect([r[0] for r in rows] == ["1", "2"], out)
            expect(rows[0][2] == image_sha("v1.0.0") and rows[1][1:] == ["v1.0.1", image_sha("v1.0.1")], out)

        def check_lambda_rollback(body, out):
            lines = out.strip().splitlines()
            expect(lines[0] == "prod\t1", out)
            expect(alias_version(FUNCTION) == "1", "prod is not back on version 1")
            expect(lines[1].split("\t")[0] == "1", out)
            #  the version prod names runs v1.0.0's image, and version 2 is still there
            v = stand("lambda").get_function_configuration(FunctionName=FUNCTION, Qualifier="prod")
            expect(v["Version"] == "1" and v["CodeSha256"] == image_sha("v1.0.0"), v)
            expect(len(stand("lambda").list_versions_by_function(FunctionName=FUNCTION)["Versions"]) == 3, "versions lost")
            print("    prod back on version 1 (v1.0.0's image); versions 1 and 2 both kept")

        def check_lambda_zip(body, out):
            data = open(run.lambda_zip, "rb").read()
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            expect(out.strip().splitlines()[0] == "Zip\t%d\t%s" % (len(data), digest), out)
            expect(out.strip().splitlines()[-1] == "prod\t2" and alias_version(ZIP_FUNCTION) == "2", out)
            v2 = stand("lambda").get_function_configuration(FunctionName=ZIP_FUNCTION, Qualifier="prod")
            expect(v2["Version"] == "2" and v2["CodeSha256"] == digest and v2["Description"] == "v1.0.1", v2)
            v1 = stand("lambda").get_function_configuration(FunctionName=ZIP_FUNCTION, Qualifier="1")
            expect(v1["CodeSha256"] != digest, "version 1 has the new zip")
            #  the image function was not touched by the zip block
            expect(alias_version(FUNCTION) == "1", "the zip block moved the image function's alias")
            print("    %s: the %d-byte zip's SHA-256 on version 2, prod -> 2" % (ZIP_FUNCTION, len(data)))

        def check_user(body, out):
            expect(re.search(r"\bloadtest\b", out), out)

        def check_load(body, out):
            expect("checks" in out and "✓" in out, out[-2000:])
            expect("✗" not in out, "a check failed: " + out[-2000:])

        def check_ready(body, out):
            expect('"status":"ready"' in out.replace(" ", ""), out)
            expect(re.search(r"^rapidphoto_up 1$", out, re.M), out)
            for check in ("database", "storage", "broker"):
                expect('rapidphoto_ready{check="%s"} 1' % check in out, out)
            #  the load test's photos, complete
            complete = re.search(r'^rapidphoto_photos\{status="complete"\} (\d+)$', out, re.M)
            expect(complete and int(complete.group(1)) > 0, out)
            print("    ready; %s photos complete" % complete.group(1))

        checks = [
            ("aws --version", lambda b, o: expect("aws-cli/2" in o and "rapidphoto" in o, o)),
            ("get-caller-identity", lambda b, o: expect("account %s, cluster %s" % (run.account, CLUSTER) in o, o)),
            ("describe-clusters", lambda b, o: expect("%s\tACTIVE" % CLUSTER in o and "rapid-photo-dev-db\tavailable" in o
                                                       and "%s\t" % API in o, o)),
            ("describe-repositories", lambda b, o: expect(o.strip() == "%s.dkr.ecr.us-east-1.amazonaws.com/rapid-photo/backend"
                                                          % run.account, o)),
            ("render.py", check_deploy),
            ("get-function-concurrency", check_lambda_state),
            ("--image-uri $REGISTRY", check_lambda_deploy),
            ("list-versions-by-function", check_lambda_versions),
            ("LAMBDA_CURRENT=", check_lambda_rollback),
            ("--zip-file", check_lambda_zip),
            ("get-dashboard", check_dashboard),
            ("list-metrics", lambda b, o: expect(set(o.split()) - {"41.0"} == set(ENGINE_METRICS) and "41.0" in o, o)),
            ("like /ERROR|Exception|error/", check_errors),
            ("parse @message", check_slow),
            ("filter-log-events", lambda b, o: expect(error_line in o, o)),
            ("get-trace-summaries", lambda b, o: expect(run.trace in o and '"status": 201' in o, o)),
            ("PREVIOUS=", check_rollback),
            ("flyway_schema_history", check_flyway),
            ("--desired-count", lambda b, o: expect(o.split()[0] == "2" and service(API)["desiredCount"] == 2, o)),
            ("describe-scalable-targets", check_scaling_targets),
            ("--enable-execute-command", lambda b, o: expect(o.strip() == "True" and service(API)["enableExecuteCommand"], o)),
            ("user add loadtest", check_user),
            ("create-db-snapshot", lambda b, o: expect(re.search(r"rapid-photo-dev-db-\d{8}-\d{6}\tavailable\tmanual", o), o)),
            ("restore-db-instance-from-db-snapshot", lambda b, o: expect("rapid-photo-dev-db-restored\tavailable" in o, o)),
            ("rapidphoto keygen", check_keys),
            ("k6 run --vus 4", check_load),
            ("/readyz", check_ready),
            ("ingest-dlq", lambda b, o: expect("incoming/nobody/IMG_0001.jpg" in o and "1" in o.split(), o)),
        ]
        used = set()
        ran, marked = 0, []
        for lang, body, reason, line in found:
            if lang != "sh":
                continue
            first = body.strip().splitlines()[0]
            if reason:
                marked.append((line, first, reason))
                print("block at line %d: not run here: %s\n    %s" % (line, reason, first))
                continue
            began = time.monotonic()
            done = run.run_block(body)
            print("block at line %d: exit %d in %.1f s\n    %s" % (line, done.returncode, time.monotonic() - began, first))
            expect(done.returncode == 0, "the block at line %d failed (exit %d):\n%s\n--- stdout\n%s\n--- stderr\n%s"
                   % (line, done.returncode, body, done.stdout[-3000:], done.stderr[-3000:]))
            ran += 1
            for i, (needle, check) in enumerate(checks):
                if needle in body:
                    check(body, done.stdout)
                    used.add(i)
            if "export API_BASE_URL=" in body:
                expect(run.exported("API_BASE_URL") == "http://" + run.alb_dns, "API_BASE_URL: " + run.exported("API_BASE_URL"))
                #  moto's load balancer has no engine behind it: the real serve
                run.override("API_BASE_URL", run.url)
        missing = [checks[i][0] for i in range(len(checks)) if i not in used]
        expect(not missing, "checks that found no block: %s" % missing)
        print("runbook: %d blocks run, %d marked not runnable:" % (ran, len(marked)))
        for line, first, reason in marked:
            print("  line %d (%s): %s" % (line, first[:60], reason))
        print("runbook: names checked: %d RAPIDPHOTO_* variables, %d settings, %d log lines; %d output checks; %.1f s"
              % (counted["env"], counted["keys"], counted["lines"], len(checks), time.monotonic() - started))
        return 0
    finally:
        run.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as failure:
        print("runbook: FAIL: %s" % failure)
        sys.exit(1)
