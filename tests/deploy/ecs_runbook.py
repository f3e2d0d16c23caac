#!/usr/bin/env python3
"""tests/deploy/ecs_runbook.py (ctest ecs_runbook): the runbook's ECS steps,
run as an operator runs them (Debian's aws CLI, /usr/bin/aws) against
moto's server on 127.0.0.1, on the task definitions and services of
deploy/ecs rendered by deploy/ecs/render.py.

moto checks SigV4 here: started with INITIAL_NO_AUTH_ACTION_COUNT=3, it
takes three unsigned calls (an IAM user, its policy, its access key) and
from then on only requests signed with that key, for the actions its policy
allows. The test shows both refusals (a wrong secret, an action outside the
policy), then plays the runbook with the deployer's key:

  1. the network Terraform makes (a VPC, two subnets, security groups, a
     load balancer's target group), whose ids fill the templates;
  2. create-cluster rapid-photo-prod-cluster, tagged Project=RapidPhotoUpload;
  3. register-task-definition from deploy/ecs (image v1.0.0): revision 1 of
     rapid-photo-prod-backend and of rapid-photo-prod-pipeline;
  4. create-service for both, from deploy/ecs/services: circuit breaker with
     rollback, the target group, desired 2, running revision 1;
  5. update-service --force-new-deployment (the runbook's redeploy of the
     same revision: a new deployment, the same task definition), then
     `wait services-stable`;
  6. a release: v1.0.1 registered as revision 2, update-service
     --task-definition rapid-photo-prod-backend:2, wait;
  7. the rollback: update-service --task-definition rapid-photo-prod-backend:1,
     wait; the service runs revision 1 again, which names image v1.0.0;
  8. update-service --desired-count 5, then 2, each waited for.
Each step is checked in what the CLI answers (describe-services,
describe-task-definition): revisions, desired counts, the task definition a
service runs, the image a revision names. moto runs no container: a
service's running count is what it is told (MOTO_ECS_SERVICE_RUNNING at
creation, the desired count after a scale), so `wait services-stable`
proves the waiter and the answers it reads, not tasks that started; the
deployment circuit breaker and health check grace, which moto does not
keep, are checked offline (check_ecs.py).

moto is not in Debian: it comes with this machine image's python3 (pyenv,
moto 5.2.1), found by CMake as RP_MOTO_SERVER. Without it the test says so
and is skipped (exit 77).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

ROOT = os.environ.get("RP_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ECS = os.path.join(ROOT, "deploy", "ecs")
AWS = "/usr/bin/aws"
MOTO = os.environ.get("RP_MOTO_SERVER", "")
CLUSTER, API, PIPELINE = "rapid-photo-prod-cluster", "rapid-photo-prod-backend", "rapid-photo-prod-pipeline"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "ecs:*", "iam:PassRole", "ec2:*", "elasticloadbalancing:*"]}]}


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


class Moto:
    """moto_server on a free loopback port, its log in a folder of its own."""

    def __init__(self, folder, signed=True, name="moto"):
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(folder, name + ".log"), "w")
        #  moto starts no task: it reports a new service as running
        #  MOTO_ECS_SERVICE_RUNNING tasks (the services' desired count, 2),
        #  and after update-service --desired-count as running that count.
        #  signed=False: no signature checked (tests/deploy/runbook.py's
        #  Lambda: moto 5.2.1 answers SignatureDoesNotMatch to every GET of
        #  its Lambda API, from botocore and the CLI alike)
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3" if signed else "1000000000",
                   MOTO_ECS_SERVICE_RUNNING="2")
        self.process = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(self.port)], env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        #  up to a minute: a loaded CI machine has been seen to take over 15 s
        for _ in range(600):
            try:
                #  moto's own dashboard answers without counting as an action
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not answer on %s" % self.endpoint)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log.close()


class Runbook(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="rp-test-ecs-runbook-")
        cls.moto = Moto(cls.folder)
        cls.keys = None

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def aws(self, *args, keys=None, ok=True):
        """Run the aws CLI against moto; its JSON answer (None when it said
        nothing). ok=False returns (exit status, stderr) instead."""
        keys = keys or self.keys or ("unsigned-setup", "unsigned-setup")
        env = {"PATH": "/usr/bin:/bin", "HOME": self.folder, "AWS_ACCESS_KEY_ID": keys[0],
               "AWS_SECRET_ACCESS_KEY": keys[1], "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": "",
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
               "AWS_EC2_METADATA_DISABLED": "true"}
        done = subprocess.run([AWS, "--endpoint-url", self.moto.endpoint, "--output", "json"] + list(args),
                              env=env, capture_output=True, text=True, timeout=120)
        if not ok:
            return done.returncode, done.stderr
        self.assertEqual(done.returncode, 0, "aws %s: %s" % (" ".join(args), done.stderr))
        return json.loads(done.stdout) if done.stdout.strip() else None

    def render(self, values, out):
        command = [sys.executable, os.path.join(ECS, "render.py"), "--vars", os.path.join(ECS, "example.env"),
                   "--out", out] + ["--set=%s=%s" % item for item in values.items()]
        done = subprocess.run(command, capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        return os.path.join(out, "task-definitions"), os.path.join(out, "services")

    def service(self, name):
        answer = self.aws("ecs", "describe-services", "--cluster", CLUSTER, "--services", name)
        self.assertEqual(answer["failures"], [])
        return answer["services"][0]

    def wait_stable(self, *names):
        started = time.monotonic()
        self.aws("ecs", "wait", "services-stable", "--cluster", CLUSTER, "--services", *names)
        return time.monotonic() - started

    def test_runbook(self):
        #  The deployer: three unsigned calls, then everything signed
        self.aws("iam", "create-user", "--user-name", "rapid-photo-deployer")
        self.aws("iam", "put-user-policy", "--user-name", "rapid-photo-deployer", "--policy-name", "deploy",
                 "--policy-document", json.dumps(POLICY))
        key = self.aws("iam", "create-access-key", "--user-name", "rapid-photo-deployer")["AccessKey"]
        Runbook.keys = (key["AccessKeyId"], key["SecretAccessKey"])
        status, err = self.aws("ecs", "list-clusters", keys=(key["AccessKeyId"], "not-the-secret"), ok=False)
        self.assertNotEqual(status, 0)
        self.assertIn("SignatureDoesNotMatch", err)
        status, err = self.aws("s3api", "list-buckets", ok=False)
        self.assertNotEqual(status, 0)
        self.assertIn("AccessDenied", err)
        status, err = self.aws("ecs", "list-clusters", keys=("unsigned-setup", "unsigned-setup"), ok=False)
        self.assertIn("InvalidClientTokenId", err, "after three calls moto checks every request")

        #  1. The network (Terraform's, later), whose ids the templates take
        vpc = self.aws("ec2", "create-vpc", "--cidr-block", "10.90.0.0/16")["Vpc"]["VpcId"]
        subnets = [self.aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.90.%d.0/24" % i,
                            "--availability-zone", zone)["Subnet"]["SubnetId"]
                   for i, zone in ((1, "us-east-1a"), (2, "us-east-1b"))]
        groups = {role: self.aws("ec2", "create-security-group", "--group-name", "rapid-photo-prod-" + role,
                                 "--description", role, "--vpc-id", vpc)["GroupId"] for role in ("api", "pipeline")}
        balancer = self.aws("elbv2", "create-load-balancer", "--name", "rapid-photo-prod-alb", "--subnets",
                            *subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        group = self.aws("elbv2", "create-target-group", "--name", "rapid-photo-prod-api", "--protocol", "HTTP",
                         "--port", "8080", "--vpc-id", vpc, "--target-type", "ip",
                         "--health-check-path", "/healthz")["TargetGroups"][0]["TargetGroupArn"]
        self.aws("elbv2", "create-listener", "--load-balancer-arn", balancer, "--protocol", "HTTP", "--port", "80",
                 "--default-actions", "Type=forward,TargetGroupArn=" + group)
        values = {"PRIVATE_SUBNET_1": subnets[0], "PRIVATE_SUBNET_2": subnets[1],
                  "API_SECURITY_GROUP": groups["api"], "PIPELINE_SECURITY_GROUP": groups["pipeline"],
                  "API_TARGET_GROUP_ARN": group}
        tasks, services = self.render(dict(values, IMAGE_TAG="v1.0.0"), os.path.join(self.folder, "v1.0.0"))

        #  2. The cluster
        cluster = self.aws("ecs", "create-cluster", "--cluster-name", CLUSTER,
                           "--tags", "key=Project,value=RapidPhotoUpload")["cluster"]
        self.assertEqual((cluster["clusterName"], cluster["status"]), (CLUSTER, "ACTIVE"))

        #  3. The task definitions, revision 1
        for role, family in (("api", API), ("pipeline", PIPELINE)):
            task = self.aws("ecs", "register-task-definition", "--cli-input-json",
                            "file://%s/%s.json" % (tasks, role))["taskDefinition"]
            self.assertEqual((task["family"], task["revision"], task["status"]), (family, 1, "ACTIVE"))
            container = task["containerDefinitions"][0]
            self.assertEqual(container["command"], ["gateway" if role == "api" else "pipeline"])
            self.assertEqual(container["healthCheck"]["command"], ["CMD", "rapidphoto", "health"])
            self.assertEqual(container["stopTimeout"], 30)
            self.assertTrue(container["image"].endswith("/rapid-photo/backend:v1.0.0"), container["image"])
            self.assertIn("RAPIDPHOTO_DB_URL", [s["name"] for s in container["secrets"]])
            self.assertEqual(task["networkMode"], "awsvpc")
            self.assertEqual(task["requiresCompatibilities"], ["FARGATE"])

        #  4. The services
        for name, family in (("api", API), ("pipeline", PIPELINE)):
            service = self.aws("ecs", "create-service", "--cli-input-json",
                               "file://%s/%s.json" % (services, name))["service"]
            self.assertEqual((service["serviceName"], service["status"], service["desiredCount"]), (family, "ACTIVE", 2))
            self.assertTrue(service["taskDefinition"].endswith("task-definition/%s:1" % family), service["taskDefinition"])
            #  moto keeps no deploymentConfiguration (the circuit breaker and
            #  its rollback are checked offline, tests/deploy/check_ecs.py)
        api = self.service(API)
        self.assertEqual(api["loadBalancers"][0]["targetGroupArn"], group)
        self.assertEqual(api["loadBalancers"][0]["containerPort"], 8080)
        #  (nor the health check grace: checked offline too)
        self.assertEqual((api["launchType"], api["propagateTags"]), ("FARGATE", "SERVICE"))
        self.assertEqual(sorted(api["networkConfiguration"]["awsvpcConfiguration"]["subnets"]), sorted(subnets))
        self.assertNotIn("loadBalancers", {k: v for k, v in self.service(PIPELINE).items() if v})
        tags = self.aws("ecs", "list-tags-for-resource", "--resource-arn", api["serviceArn"])["tags"]
        self.assertIn({"key": "Project", "value": "RapidPhotoUpload"}, tags)
        print("services created; stable after %.1f s" % self.wait_stable(API, PIPELINE))
        for name in (API, PIPELINE):
            service = self.service(name)
            self.assertEqual((service["runningCount"], service["pendingCount"]), (2, 0), name)
            self.assertEqual([d["rolloutState"] for d in service["deployments"]], ["COMPLETED"], name)

        #  5. The runbook's redeploy: a new deployment of the same revision
        before = {d["id"] for d in self.service(API)["deployments"]}
        service = self.aws("ecs", "update-service", "--cluster", CLUSTER, "--service", API,
                           "--force-new-deployment")["service"]
        self.assertTrue(service["taskDefinition"].endswith(":1"))
        primary = [d for d in service["deployments"] if d["status"] == "PRIMARY"]
        self.assertEqual(len(primary), 1)
        self.assertNotIn(primary[0]["id"], before, "--force-new-deployment starts a deployment")
        self.assertTrue(primary[0]["taskDefinition"].endswith("%s:1" % API))
        self.wait_stable(API)
        self.assertTrue(self.service(API)["taskDefinition"].endswith("%s:1" % API))

        #  6. A release: v1.0.1 as revision 2, the service on it (named with
        #  the revision register-task-definition answered: moto, unlike ECS,
        #  keeps a bare family name as it is instead of its newest revision)
        tasks2, _ = self.render(dict(values, IMAGE_TAG="v1.0.1"), os.path.join(self.folder, "v1.0.1"))
        task = self.aws("ecs", "register-task-definition", "--cli-input-json",
                        "file://%s/api.json" % tasks2)["taskDefinition"]
        self.assertEqual(task["revision"], 2)
        service = self.aws("ecs", "update-service", "--cluster", CLUSTER, "--service", API,
                           "--task-definition", "%s:%d" % (API, task["revision"]))["service"]
        self.assertTrue(service["taskDefinition"].endswith("%s:2" % API), service["taskDefinition"])
        self.wait_stable(API)
        running = self.aws("ecs", "describe-task-definition", "--task-definition",
                           self.service(API)["taskDefinition"])["taskDefinition"]
        self.assertTrue(running["containerDefinitions"][0]["image"].endswith(":v1.0.1"))
        revisions = self.aws("ecs", "list-task-definitions", "--family-prefix", API)["taskDefinitionArns"]
        self.assertEqual([arn.rsplit(":", 1)[1] for arn in revisions], ["1", "2"])

        #  7. The rollback to the previous revision
        service = self.aws("ecs", "update-service", "--cluster", CLUSTER, "--service", API,
                           "--task-definition", "%s:1" % API)["service"]
        self.assertTrue(service["taskDefinition"].endswith("%s:1" % API), service["taskDefinition"])
        self.wait_stable(API)
        service = self.service(API)
        self.assertTrue(service["taskDefinition"].endswith("%s:1" % API))
        running = self.aws("ecs", "describe-task-definition", "--task-definition",
                           service["taskDefinition"])["taskDefinition"]
        self.assertTrue(running["containerDefinitions"][0]["image"].endswith(":v1.0.0"), "rolled back to v1.0.0")
        self.assertEqual(service["desiredCount"], 2)

        #  8. Scaling out and back in, on both services
        for count in (5, 2):
            for name in (API, PIPELINE):
                answer = self.aws("ecs", "update-service", "--cluster", CLUSTER, "--service", name,
                                  "--desired-count", str(count))["service"]
                self.assertEqual(answer["desiredCount"], count)
            self.wait_stable(API, PIPELINE)
            for name in (API, PIPELINE):
                service = self.service(name)
                self.assertEqual(service["desiredCount"], count, name)
                self.assertEqual(service["runningCount"], count, name)
        #  Scaling changed no revision
        self.assertTrue(self.service(API)["taskDefinition"].endswith("%s:1" % API))
        self.assertTrue(self.service(PIPELINE)["taskDefinition"].endswith("%s:1" % PIPELINE))


if __name__ == "__main__":
    if not MOTO or not os.access(MOTO, os.X_OK):
        print("ecs_runbook: skipped: no moto_server (moto is not in Debian; this machine image's python3 has it; "
              "RP_MOTO_SERVER names it)")
        sys.exit(77)
    if not os.access(AWS, os.X_OK):
        print("ecs_runbook: %s is missing: tools/bootstrap.sh --test installs Debian's awscli" % AWS)
        sys.exit(1)
    unittest.main(verbosity=2)
