#!/usr/bin/env python3
"""tests/deploy/check_ecs.py (ctest ecs_definitions): the ECS files in
deploy/ecs, checked offline.

Each template is rendered with deploy/ecs/example.env (render.py), then:
  - botocore's own service model for ECS checks it as the API would take
    it: ParamValidator on RegisterTaskDefinition's input shape for the task
    definitions, CreateService's for the services (types, required
    members, enums, unknown keys);
  - the checks no shape can make, against the engine's own sources: every
    RAPIDPHOTO_* name, in `environment` or `secrets`, is a key of
    engine/config.c with a value of its kind; every AWS_* name is one the
    engine reads; secrets come from SSM or Secrets Manager ARNs and never as
    plain environment; CURVE keys come in the pairs the engine demands; the
    API's port is http.listen's and the load balancer's; the processing
    role listens on loopback only; stopTimeout covers the engine's drain
    (and the SQS long poll of a role that runs the bridges); cpu and memory
    are a Fargate size, memory is at least the measured peak (sizing.json)
    times its headroom, and the resize pool matches the vCPUs; logs go to
    the runbook's awslogs group; services run an existing family with the
    circuit breaker's rollback, on the runbook's cluster and names, tagged
    Project=RapidPhotoUpload.
And each check is shown to catch what it is there for: a broken copy of a
definition must fail it.

Which botocore: the one this interpreter imports. ctest runs it with
Debian's /usr/bin/python3 (python3-botocore, installed by tools/bootstrap.sh
--test, the same botocore /usr/bin/aws signs with): its model is older
(1.29) and so refuses anything newer than the fields used here.
"""
import copy
import importlib.util
import json
import os
import re
import sys
import unittest

import botocore
import botocore.session
from botocore.validate import ParamValidator

ROOT = os.environ.get("RP_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ECS = os.path.join(ROOT, "deploy", "ecs")

spec = importlib.util.spec_from_file_location("render", os.path.join(ECS, "render.py"))
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)

VALUES = render.read_vars(os.path.join(ECS, "example.env"))
ENV = VALUES["ENV"]
SIZING = json.load(open(os.path.join(ECS, "sizing.json"), encoding="utf-8"))
#  Fargate's sizes: cpu units -> the memory (MiB) each allows
FARGATE = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}


def engine_keys():
    """{"RAPIDPHOTO_SECTION_KEY": (kind, default, choices, lo, hi)} from
    engine/config.c's s_keys table."""
    keys = {}
    with open(os.path.join(ROOT, "engine", "config.c"), encoding="utf-8") as f:
        text = f.read()
    table = text[text.index("static const s_key_t s_keys [] = {"):text.index("#define S_KEY_COUNT")]
    rows = re.findall(r'(STR|INT|ENUM|BOOL|KEY)\s*\(\s*"(\w+)",\s*"(\w+)",([^;]*?)\),\s*$'
                      r'|\{\s*"(\w+)",\s*"(\w+)",\s*(K_\w+),([^}]*)\}', table, re.M)
    for macro, section, key, rest, bsection, bkey, kind, brest in rows:
        if not macro:
            section, key, rest = bsection, bkey, brest
            macro = {"K_ENDPOINT": "ENDPOINT", "K_FAILON": "ENUM", "K_LOGLEVEL": "ENUM",
                     "K_LOGOUTPUT": "ENUM"}.get(kind, "STR")
        strings = re.findall(r'"([^"]*)"', rest)
        default = strings[-1] if strings else ""
        choices = strings[-2].split("|") if macro == "ENUM" and len(strings) >= 2 else None
        lo = hi = None
        if macro == "INT":
            bounds = [b.strip() for b in rest.split(",")[1:3]]
            if all(re.fullmatch(r"-?\d+", b) for b in bounds):
                lo, hi = int(bounds[0]), int(bounds[1])
        keys["RAPIDPHOTO_%s_%s" % (section.upper(), key.upper())] = (macro, default, choices, lo, hi)
    return keys


def engine_aws_names():
    """The AWS_* variables the engine's sources name."""
    names = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "engine")):
        for name in files:
            if name.endswith(".c"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    names.update(re.findall(r'"(AWS_[A-Z_]+)"', f.read()))
    return names


KEYS = engine_keys()
AWS_NAMES = engine_aws_names()
SECRET_KEYS = {"RAPIDPHOTO_DB_URL", "RAPIDPHOTO_AUTH_JWT_SECRET", "RAPIDPHOTO_BROKER_CURVE_SECRET_KEY",
               "RAPIDPHOTO_BROKER_CURVE_CLIENT_SECRET_KEY"}


def int_value(text):
    match = re.fullmatch(r"\s*(-?\d+)\s*([KkMmGg]?)\s*", text)
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[match.group(2).lower()]


def setting(container, name):
    """A RAPIDPHOTO_* setting as the container would have it: its
    environment value, "(secret)", or the engine's default."""
    for entry in container.get("environment", []):
        if entry["name"] == name:
            return entry["value"]
    for entry in container.get("secrets", []):
        if entry["name"] == name:
            return "(secret)"
    return KEYS[name][1] if name in KEYS else None


def task_problems(task, role):
    """What is wrong with a rendered task definition, beyond its shape."""
    problems = []
    say = problems.append
    sizing = SIZING["roles"][role]
    container = task["containerDefinitions"][0]
    #  The engine is one process, in the first container; beside it only the
    #  X-Ray daemon, which its segments go to (engine/trace.h), over
    #  127.0.0.1 (awsvpc: a task's containers share one network namespace)
    others = task["containerDefinitions"][1:]
    if len(others) > 1 or any(c.get("name") != "xray-daemon" for c in others):
        say("one engine container per task, and beside it at most the xray-daemon")
    daemon = others[0] if others and others[0].get("name") == "xray-daemon" else None
    address = setting(container, "AWS_XRAY_DAEMON_ADDRESS")
    if daemon:
        if not re.fullmatch(r"(\S+/)?amazon/aws-xray-daemon:\S+|\S+/aws-xray-daemon:\S+", daemon.get("image", "")):
            say("xray-daemon: the image is not AWS's X-Ray daemon: %s" % daemon.get("image"))
        if daemon.get("essential", True):
            say("xray-daemon: essential must be false (traces lost never stop the engine)")
        if daemon.get("portMappings") != [{"containerPort": 2000, "protocol": "udp"}]:
            say("xray-daemon: it listens on 2000/udp")
        if address != "127.0.0.1:2000":
            say("AWS_XRAY_DAEMON_ADDRESS=%s: the xray-daemon beside the engine is 127.0.0.1:2000" % address)
        dlogs = daemon.get("logConfiguration", {}).get("options", {})
        if daemon.get("logConfiguration", {}).get("logDriver") != "awslogs" \
                or dlogs.get("awslogs-group") != "/ecs/rapid-photo-%s-backend" % ENV:
            say("xray-daemon: logs to /ecs/rapid-photo-%s-backend" % ENV)
    elif address:
        say("AWS_XRAY_DAEMON_ADDRESS=%s but no xray-daemon container in the task" % address)
    #  Names the engine reads, values of their kind
    names = []
    for entry in container.get("environment", []):
        names.append(entry["name"])
        name, value = entry["name"], entry["value"]
        if name.startswith("AWS_"):
            if name not in AWS_NAMES:
                say("%s: the engine reads no such AWS setting" % name)
            continue
        if name.startswith("RAPIDPHOTO_DERIVATIVES_"):
            continue
        if name not in KEYS:
            say("%s: no such key in engine/config.c" % name)
            continue
        if name in SECRET_KEYS:
            say("%s: a secret in plain environment; put it in secrets" % name)
        kind, _, choices, lo, hi = KEYS[name]
        if kind == "INT":
            number = int_value(value)
            if number is None or (lo is not None and not lo <= number <= hi):
                say("%s=%r: not a whole number in the key's range" % (name, value))
        elif kind == "ENUM" and value.lower() not in choices:
            say("%s=%r: not one of %s" % (name, value, "|".join(choices)))
        elif kind == "BOOL" and value.lower() not in ("yes", "no", "true", "false", "on", "off", "1", "0"):
            say("%s=%r: not yes or no" % (name, value))
        elif kind == "ENDPOINT" and value and not re.match(r"(tcp|ipc|inproc)://", value):
            say("%s=%r: not a ZeroMQ endpoint" % (name, value))
    for entry in container.get("secrets", []):
        names.append(entry["name"])
        if entry["name"] not in KEYS:
            say("%s: no such key in engine/config.c" % entry["name"])
        if not re.fullmatch(r"arn:aws:(ssm:[a-z0-9-]+:\d{12}:parameter/\S+"
                            r"|secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+)", entry["valueFrom"]):
            say("%s: valueFrom is not an SSM parameter or Secrets Manager ARN: %s"
                % (entry["name"], entry["valueFrom"]))
    for name in set(names):
        if names.count(name) > 1:
            say("%s is set twice" % name)
    secrets = {entry["name"] for entry in container.get("secrets", [])}
    for name in sizing["secrets"]:
        if name not in secrets:
            say("%s must come from secrets" % name)
    #  The pairs config.c refuses to start without
    for a, b in (("RAPIDPHOTO_BROKER_CURVE_SECRET_KEY", "RAPIDPHOTO_BROKER_CURVE_CLIENTS"),
                 ("RAPIDPHOTO_BROKER_CURVE_SERVER_KEY", "RAPIDPHOTO_BROKER_CURVE_CLIENT_SECRET_KEY")):
        if (a in names) != (b in names):
            say("%s and %s come together" % (a, b))
    #  The role's command, ports and listen address
    if container.get("command") != [sizing["command"]]:
        say("command is %r, not [%r]" % (container.get("command"), sizing["command"]))
    listen = setting(container, "RAPIDPHOTO_HTTP_LISTEN")
    host, _, port = listen.rpartition(":")
    ports = [p["containerPort"] for p in container.get("portMappings", [])]
    if sizing["public"]:
        if host not in ("0.0.0.0", "", "*"):
            say("http.listen %s: the load balancer cannot reach a task listening there" % listen)
        if ports != [int(port)]:
            say("portMappings %r do not match http.listen %s" % (ports, listen))
    else:
        if host != "127.0.0.1" or ports:
            say("the processing role's /healthz is for the task itself: listen on 127.0.0.1, map no port")
    for endpoint in ("RAPIDPHOTO_BROKER_FRONTEND", "RAPIDPHOTO_BROKER_BACKEND"):
        value = setting(container, endpoint)
        if value.startswith("tcp://") and not value.startswith("tcp://127.0.0.1:") and \
                "RAPIDPHOTO_BROKER_CURVE_SECRET_KEY" not in secrets:
            say("%s=%s beyond loopback needs CURVE keys" % (endpoint, value))
    #  Stopping: the drain, and a running long poll, within stopTimeout
    needed_s = int(setting(container, "RAPIDPHOTO_BROKER_DRAIN_MS")) / 1000
    if sizing["command"] in ("pipeline", "serve") and setting(container, "RAPIDPHOTO_SQS_INGEST_QUEUE_URL"):
        needed_s += int(setting(container, "RAPIDPHOTO_SQS_WAIT_S"))
    if container.get("stopTimeout", 30) < needed_s:
        say("stopTimeout %ss is shorter than the drain and long poll, %gs" % (container.get("stopTimeout"), needed_s))
    #  Size
    cpu, memory = int(task["cpu"]), int(task["memory"])
    if memory not in FARGATE.get(cpu, []):
        say("cpu %d with memory %d is no Fargate size" % (cpu, memory))
    floor = sizing["peak_rss_mb"] * SIZING["headroom"]
    if memory < floor:
        say("memory %d MiB is under the measured peak %.1f MB x %.1f" % (memory, sizing["peak_rss_mb"], SIZING["headroom"]))
    if sizing["command"] == "pipeline":
        resize = int(setting(container, "RAPIDPHOTO_POOLS_RESIZE"))
        if resize != cpu // 1024:
            say("pools.resize %d does not match %d vCPUs (one resize worker per core)" % (resize, cpu // 1024))
    #  Health, logs, tags
    if container.get("healthCheck", {}).get("command") != ["CMD", "rapidphoto", "health"]:
        say("healthCheck is not `rapidphoto health`")
    health = container.get("healthCheck", {})
    if health.get("timeout", 5) >= health.get("interval", 30):
        say("healthCheck timeout must be shorter than its interval")
    logs = container.get("logConfiguration", {})
    options = logs.get("options", {})
    if logs.get("logDriver") != "awslogs" or options.get("awslogs-group") != "/ecs/rapid-photo-%s-backend" % ENV \
            or not options.get("awslogs-stream-prefix") or options.get("awslogs-region") != VALUES["AWS_REGION"]:
        say("logs: awslogs to /ecs/rapid-photo-%s-backend with a stream prefix and the region" % ENV)
    #  The dashboard's and alarms' engine metrics come from the EMF lines
    #  on stdout (README, Operations: Metrics)
    if setting(container, "RAPIDPHOTO_METRICS_EMF").lower() not in ("on", "yes", "true", "1"):
        say("metrics.emf is off: the dashboard's engine metrics (EMF on stdout) would be missing")
    if {"key": "Project", "value": "RapidPhotoUpload"} not in task.get("tags", []):
        say("not tagged Project=RapidPhotoUpload")
    if task.get("networkMode") != "awsvpc" or task.get("requiresCompatibilities") != ["FARGATE"]:
        say("awsvpc on FARGATE")
    return problems


def service_problems(service, tasks):
    problems = []
    say = problems.append
    families = {task["family"]: task for task in tasks}
    task = families.get(service["taskDefinition"].split(":")[0])
    if not task:
        say("taskDefinition %s is no family in deploy/ecs/task-definitions" % service["taskDefinition"])
        return problems
    if service["cluster"] != "rapid-photo-%s-cluster" % ENV:
        say("cluster %s is not the runbook's rapid-photo-%s-cluster" % (service["cluster"], ENV))
    if service["serviceName"] != task["family"]:
        say("service %s runs family %s: the runbook names both alike" % (service["serviceName"], task["family"]))
    breaker = service.get("deploymentConfiguration", {}).get("deploymentCircuitBreaker", {})
    if not (breaker.get("enable") and breaker.get("rollback")):
        say("the deployment circuit breaker must be on, with rollback")
    container = task["containerDefinitions"][0]
    ports = [p["containerPort"] for p in container.get("portMappings", [])]
    for balancer in service.get("loadBalancers", []):
        if balancer["containerName"] != container["name"] or balancer["containerPort"] not in ports:
            say("the load balancer targets %s:%s, which the task does not expose"
                % (balancer["containerName"], balancer["containerPort"]))
    grace = service.get("healthCheckGracePeriodSeconds")
    if grace is not None:
        if not service.get("loadBalancers"):
            say("healthCheckGracePeriodSeconds without a load balancer is refused by ECS")
        elif grace < container.get("healthCheck", {}).get("startPeriod", 0):
            say("the health check grace is shorter than the container's start period")
    vpc = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
    if service.get("launchType") != "FARGATE" or vpc.get("assignPublicIp") != "DISABLED" or len(vpc.get("subnets", [])) < 2:
        say("FARGATE in two private subnets, no public address")
    if {"key": "Project", "value": "RapidPhotoUpload"} not in service.get("tags", []):
        say("not tagged Project=RapidPhotoUpload")
    return problems


def shape_problems(document, operation):
    model = botocore.session.get_session().get_service_model("ecs")
    report = ParamValidator().validate(document, model.operation_model(operation).input_shape)
    return [line for line in report.generate_report().splitlines() if line.strip()] if report.has_errors() else []


def load(group, name):
    return render.render(os.path.join(ECS, group, name), VALUES)


class TaskDefinitions(unittest.TestCase):
    def setUp(self):
        self.tasks = {role: load("task-definitions", "%s.json" % role) for role in SIZING["roles"]}

    def test_every_template_renders_and_is_sized(self):
        files = sorted(os.listdir(os.path.join(ECS, "task-definitions")))
        self.assertEqual(files, sorted("%s.json" % role for role in SIZING["roles"]),
                         "each task definition has its measured size in sizing.json")
        for role, task in self.tasks.items():
            self.assertNotIn("${", json.dumps(task), role)

    def test_botocore_takes_them_as_register_task_definition_input(self):
        for role, task in self.tasks.items():
            self.assertEqual(shape_problems(task, "RegisterTaskDefinition"), [], role)

    def test_the_engine_takes_their_settings(self):
        for role, task in self.tasks.items():
            self.assertEqual(task_problems(task, role), [], role)

    def test_the_roles(self):
        api, pipeline = self.tasks["api"], self.tasks["pipeline"]
        self.assertEqual(api["family"], "rapid-photo-%s-backend" % ENV)
        self.assertEqual(api["containerDefinitions"][0]["command"], ["gateway"])
        self.assertEqual(pipeline["containerDefinitions"][0]["command"], ["pipeline"])
        self.assertEqual(api["containerDefinitions"][0]["image"], pipeline["containerDefinitions"][0]["image"],
                         "both roles run one image")
        self.assertTrue(api["containerDefinitions"][0]["image"].endswith("/rapid-photo/backend:%s" % VALUES["IMAGE_TAG"]))

    def test_the_checks_catch_what_they_are_for(self):
        api = self.tasks["api"]
        broken = copy.deepcopy(api)
        broken["cpu"] = 512                     #  a number, where the API takes a string
        broken["containerDefinitions"][0]["healthcheck"] = {}
        self.assertGreaterEqual(len(shape_problems(broken, "RegisterTaskDefinition")), 2)
        cases = [
            (lambda c, t: c["environment"].append({"name": "RAPIDPHOTO_HTTP_LISTENER", "value": "x"}), "no such key"),
            (lambda c, t: c["environment"].append({"name": "RAPIDPHOTO_POOLS_RESIZE", "value": "many"}), "whole number"),
            (lambda c, t: c["environment"].append({"name": "RAPIDPHOTO_STORAGE_BACKEND", "value": "nfs"}), "not one of"),
            (lambda c, t: c["environment"].append({"name": "AWS_REGIONS", "value": "x"}), "no such AWS"),
            (lambda c, t: c["environment"].append({"name": "RAPIDPHOTO_DB_URL", "value": "postgresql://x"}), "plain environment"),
            (lambda c, t: c["secrets"].pop(), "must come from secrets"),
            (lambda c, t: c["secrets"][0].update(valueFrom="postgresql://u:p@h/db"), "ARN"),
            (lambda c, t: c["portMappings"][0].update(containerPort=80), "do not match http.listen"),
            (lambda c, t: c.update(stopTimeout=5), "stopTimeout"),
            (lambda c, t: t.update(memory="8"), "no Fargate size"),
            (lambda c, t: c["logConfiguration"]["options"].update({"awslogs-group": "/ecs/other"}), "logs"),
            (lambda c, t: c.update(environment=[e for e in c["environment"] if e["name"] != "RAPIDPHOTO_METRICS_EMF"]),
             "metrics.emf is off"),
            (lambda c, t: c["secrets"].append({"name": "RAPIDPHOTO_BROKER_CURVE_SECRET_KEY",
                                               "valueFrom": c["secrets"][0]["valueFrom"]}), "come together"),
            (lambda c, t: t["containerDefinitions"].append(copy.deepcopy(c)), "one engine container"),
            (lambda c, t: t["containerDefinitions"][1].update(essential=True), "essential must be false"),
            (lambda c, t: t["containerDefinitions"][1].update(image="nginx:1"), "X-Ray daemon"),
            (lambda c, t: t["containerDefinitions"][1].update(portMappings=[{"containerPort": 2000, "protocol": "tcp"}]),
             "2000/udp"),
            (lambda c, t: [e.update(value="10.0.0.9:2000") for e in c["environment"]
                           if e["name"] == "AWS_XRAY_DAEMON_ADDRESS"], "127.0.0.1:2000"),
            (lambda c, t: t["containerDefinitions"].pop(), "no xray-daemon container"),
        ]
        for spoil, what in cases:
            task = copy.deepcopy(api)
            spoil(task["containerDefinitions"][0], task)
            found = task_problems(task, "api")
            self.assertTrue(any(what in p for p in found), "%s: %r" % (what, found))
        pipeline = copy.deepcopy(self.tasks["pipeline"])
        for entry in pipeline["containerDefinitions"][0]["environment"]:
            if entry["name"] == "RAPIDPHOTO_POOLS_RESIZE":
                entry["value"] = "4"
            if entry["name"] == "RAPIDPHOTO_HTTP_LISTEN":
                entry["value"] = "0.0.0.0:8080"
        found = task_problems(pipeline, "pipeline")
        self.assertTrue(any("vCPUs" in p for p in found), found)
        self.assertTrue(any("listen on 127.0.0.1" in p for p in found), found)
        starved = copy.deepcopy(self.tasks["pipeline"])
        starved["cpu"], starved["memory"] = "256", "512"
        saved = SIZING["roles"]["pipeline"]["peak_rss_mb"]
        SIZING["roles"]["pipeline"]["peak_rss_mb"] = 300.0
        try:
            self.assertTrue(any("measured peak" in p for p in task_problems(starved, "pipeline")))
        finally:
            SIZING["roles"]["pipeline"]["peak_rss_mb"] = saved


class Services(unittest.TestCase):
    def setUp(self):
        self.tasks = [load("task-definitions", "%s.json" % role) for role in SIZING["roles"]]
        self.services = {name: load("services", name) for name in sorted(os.listdir(os.path.join(ECS, "services")))}

    def test_botocore_takes_them_as_create_service_input(self):
        self.assertEqual(sorted(self.services), ["api.json", "pipeline.json"])
        for name, service in self.services.items():
            self.assertEqual(shape_problems(service, "CreateService"), [], name)

    def test_they_run_the_task_definitions_as_the_runbook_names_them(self):
        for name, service in self.services.items():
            self.assertEqual(service_problems(service, self.tasks), [], name)
        api = self.services["api.json"]
        self.assertEqual(api["serviceName"], "rapid-photo-%s-backend" % ENV)
        self.assertEqual(len(api["loadBalancers"]), 1)
        self.assertNotIn("loadBalancers", self.services["pipeline.json"])

    def test_the_checks_catch_what_they_are_for(self):
        api = self.services["api.json"]
        broken = copy.deepcopy(api)
        broken["desiredCount"] = "2"
        broken["deploymentConfiguration"]["deploymentCircuitBreaker"] = {"enable": True}
        self.assertGreaterEqual(len(shape_problems(broken, "CreateService")), 2)
        cases = [
            (lambda s: s.update(taskDefinition="rapid-photo-%s-api" % ENV), "no family"),
            (lambda s: s.update(cluster="default"), "cluster"),
            (lambda s: s["deploymentConfiguration"]["deploymentCircuitBreaker"].update(rollback=False), "circuit breaker"),
            (lambda s: s["loadBalancers"][0].update(containerPort=80), "does not expose"),
            (lambda s: s.pop("loadBalancers"), "without a load balancer"),
            (lambda s: s["networkConfiguration"]["awsvpcConfiguration"].update(assignPublicIp="ENABLED"), "private"),
        ]
        for spoil, what in cases:
            service = copy.deepcopy(api)
            spoil(service)
            found = service_problems(service, self.tasks)
            self.assertTrue(any(what in p for p in found), "%s: %r" % (what, found))


if __name__ == "__main__":
    print("check_ecs: botocore %s (%s), engine keys %d, AWS names %s" % (
        botocore.__version__, sys.executable, len(KEYS), ", ".join(sorted(AWS_NAMES))))
    unittest.main(verbosity=2)
