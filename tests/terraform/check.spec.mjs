// tests/terraform/check.spec.mjs: the offline Terraform check catches what
// it claims to (node --test; ctest terraform_checker).
//
// Each test copies infrastructure/ into a scratch tree beside the engine's
// sources (linked, or copied where a test changes them) and a small
// deploy/ecs of its own (FIXTURE: the fields Terraform reads from the real
// one), spoils it in known ways, runs tools/terraform/check.mjs's check()
// on it, and expects exactly the errors those spoils should cause: each
// expected error found, no other error. The clean copy has none.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { check } = await import(join(repo, "tools/terraform/check.mjs"));
const scratch = mkdtempSync(join(tmpdir(), "rp-terraform-check-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

// What infrastructure/ reads from deploy/ecs, in the templates' shape.
// Commands the engine has in every tree: gateway (no SQS bridge) and serve
// (the bridges), standing in for the real pipeline command.
const container = (role, command, env, secrets) => ({
    name: role, image: "${AWS_ACCOUNT_ID}.dkr.ecr.${AWS_REGION}.amazonaws.com/rapid-photo/backend:${IMAGE_TAG}",
    command: [command], portMappings: role === "backend" ? [{ containerPort: 8080, protocol: "tcp" }] : [],
    environment: Object.entries(env).map(([name, value]) => ({ name, value })),
    secrets: secrets.map((s) => ({ name: s, valueFrom: `arn:aws:ssm:\${AWS_REGION}:\${AWS_ACCOUNT_ID}:parameter/rapid-photo/\${ENV}/${s.toLowerCase()}` })),
    logConfiguration: { logDriver: "awslogs", options: { "awslogs-group": "/ecs/rapid-photo-${ENV}-backend", "awslogs-region": "${AWS_REGION}", "awslogs-stream-prefix": role } },
});
// The X-Ray daemon beside the engine: its task role needs X-Ray's write actions
const xrayDaemon = (role) => ({
    name: "xray-daemon", image: "amazon/aws-xray-daemon:3.x", essential: false, cpu: 32, memoryReservation: 64,
    portMappings: [{ containerPort: 2000, protocol: "udp" }],
    logConfiguration: { logDriver: "awslogs", options: { "awslogs-group": "/ecs/rapid-photo-${ENV}-backend", "awslogs-region": "${AWS_REGION}", "awslogs-stream-prefix": `${role}-xray` } },
});
const taskDefinition = (family, role, c) => ({
    family, networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], cpu: "512", memory: "1024",
    runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" },
    executionRoleArn: "arn:aws:iam::${AWS_ACCOUNT_ID}:role/rapid-photo-${ENV}-ecs-execution",
    taskRoleArn: `arn:aws:iam::\${AWS_ACCOUNT_ID}:role/rapid-photo-\${ENV}-${role}-task`,
    containerDefinitions: [c, xrayDaemon(role)], tags: [{ key: "Role", value: role }],
});
const service = (name, family, sg, lb) => ({
    cluster: "rapid-photo-${ENV}-cluster", serviceName: name, taskDefinition: family, desiredCount: 2,
    launchType: "FARGATE", platformVersion: "LATEST",
    networkConfiguration: { awsvpcConfiguration: { subnets: ["${PRIVATE_SUBNET_1}", "${PRIVATE_SUBNET_2}"], securityGroups: [sg], assignPublicIp: "DISABLED" } },
    ...(lb ? { loadBalancers: [{ targetGroupArn: "${API_TARGET_GROUP_ARN}", containerName: "backend", containerPort: 8080 }], healthCheckGracePeriodSeconds: 60 } : {}),
    deploymentController: { type: "ECS" },
    deploymentConfiguration: { deploymentCircuitBreaker: { enable: true, rollback: true }, maximumPercent: 200, minimumHealthyPercent: 100 },
    enableECSManagedTags: true, propagateTags: "SERVICE", enableExecuteCommand: false, tags: [{ key: "Role", value: "x" }],
});
const bucketEnv = { RAPIDPHOTO_STORAGE_BACKEND: "s3", RAPIDPHOTO_STORAGE_S3_BUCKET: "rapid-photo-${ENV}-photos" };
const FIXTURE = {
    "task-definitions/api.json": taskDefinition("rapid-photo-${ENV}-backend", "backend",
        container("backend", "gateway", bucketEnv, ["RAPIDPHOTO_DB_URL", "RAPIDPHOTO_AUTH_JWT_SECRET"])),
    "task-definitions/pipeline.json": taskDefinition("rapid-photo-${ENV}-pipeline", "pipeline",
        container("pipeline", "serve", {
            ...bucketEnv,
            RAPIDPHOTO_SQS_INGEST_QUEUE_URL: "https://sqs.${AWS_REGION}.amazonaws.com/${AWS_ACCOUNT_ID}/rapid-photo-${ENV}-ingest",
            RAPIDPHOTO_SQS_EVENTS_QUEUE_URL: "https://sqs.${AWS_REGION}.amazonaws.com/${AWS_ACCOUNT_ID}/rapid-photo-${ENV}-events",
        }, ["RAPIDPHOTO_DB_URL", "RAPIDPHOTO_BROKER_CURVE_SECRET_KEY", "RAPIDPHOTO_BROKER_CURVE_CLIENTS"])),
    "services/api.json": service("rapid-photo-${ENV}-backend", "rapid-photo-${ENV}-backend", "${API_SECURITY_GROUP}", true),
    "services/pipeline.json": service("rapid-photo-${ENV}-pipeline", "rapid-photo-${ENV}-pipeline", "${PIPELINE_SECURITY_GROUP}", false),
};

let trees = 0;
// A scratch checkout: infrastructure/ and deploy/ecs copied, the sources
// linked except those named in `copy`; `spoil` maps a path to the edits
// made to it: [from, to] text replacements (each must apply), or a
// function of the text (JSON files: of the parsed document)
function tree(spoil = {}, copy = []) {
    const root = join(scratch, `t${trees++}`);
    cpSync(join(repo, "infrastructure"), join(root, "infrastructure"), { recursive: true });
    for (const d of ["engine", "actors", "gateway", "library", "app"]) {
        if (copy.includes(d)) cpSync(join(repo, d), join(root, d), { recursive: true });
        else symlinkSync(join(repo, d), join(root, d));
    }
    for (const [path, doc] of Object.entries(FIXTURE)) {
        mkdirSync(dirname(join(root, "deploy/ecs", path)), { recursive: true });
        writeFileSync(join(root, "deploy/ecs", path), JSON.stringify(doc, null, 2));
    }
    for (const [path, edits] of Object.entries(spoil)) {
        const file = join(root, path);
        let text = readFileSync(file, "utf8");
        if (typeof edits === "function") {
            text = path.endsWith(".json") ? JSON.stringify(edits(JSON.parse(text)), null, 2) : edits(text);
        } else {
            for (const [from, to] of edits) {
                assert.ok(text.includes(from), `${path}: the test's spoil "${from}" is not there to replace`);
                text = text.replace(from, to);
            }
        }
        writeFileSync(file, text);
    }
    return root;
}

// Every expected error is reported, and nothing else is
async function expectErrors(root, expected) {
    const { errors } = await check(root);
    for (const re of expected)
        assert.ok(errors.some((e) => re.test(e)), `expected an error matching ${re}; got:\n${errors.join("\n")}`);
    const stray = errors.filter((e) => !expected.some((re) => re.test(e)));
    assert.deepEqual(stray, [], "errors no spoil explains");
}

test("the clean copy passes, and says what it checked", async () => {
    const { errors, lines } = await check(tree());
    assert.deepEqual(errors, []);
    const text = lines.join("\n");
    assert.match(text, /\d+ \.tf files in 9 modules, 2 \.tfvars files; schema hashicorp\/aws 6\.25\.0/);
    assert.match(text, /deploy\/ecs: 2 task definitions, 2 services/);
    assert.match(text, /Lambda: 1 functions, 1 event source mappings/);
    assert.match(text, /IAM: 46 actions granted, each needed: api 7 .*pipeline 11 .*execution 7 .*lambda 21 /);
});

test("schema: misspelled, missing, read-only and mistyped arguments, unknown types, blocks as attributes", async () => {
    await expectErrors(tree({
        "infrastructure/modules/queues/main.tf": [
            ["visibility_timeout_seconds = var.visibility_s", "visibility_timeout_second = var.visibility_s"],
            ["sqs_managed_sse_enabled    = true\n}", "sqs_managed_sse_enabled    = true\n  arn = \"x\"\n}"],
        ],
        "infrastructure/modules/storage/main.tf": [
            ['allowed_methods = ["PUT"]', 'allowed_method  = ["PUT"]'],
            ['resource "aws_s3_bucket_versioning" "photos"', 'resource "aws_s3_bucket_versionning" "photos"'],
            ["rule {\n    object_ownership", "rule = {\n    object_ownership"],
        ],
        "infrastructure/modules/monitoring/main.tf": [
            ['comparison_operator = "GreaterThanThreshold"\n  threshold           = each.value.threshold', 'threshold           = each.value.threshold'],
        ],
        "infrastructure/modules/database/main.tf": [["port     = 5432", 'port     = "five"']],
    }), [
        /queues\/main\.tf:\d+: aws_sqs_queue\.ingest: unknown argument visibility_timeout_second \(did you mean visibility_timeout_seconds\?\)/,
        /queues\/main\.tf:\d+: aws_sqs_queue\.events: arn is read-only/,
        /storage\/main\.tf:\d+: aws_s3_bucket_cors_configuration\.photos\.cors_rule: unknown argument allowed_method \(did you mean allowed_methods\?\)/,
        /storage\/main\.tf:\d+: aws_s3_bucket_cors_configuration\.photos\.cors_rule: required argument allowed_methods is missing/,
        /no resource type aws_s3_bucket_versionning .*did you mean aws_s3_bucket_versioning/,
        /aws_s3_bucket_versioning\.photos: no resource aws_s3_bucket_versioning\.photos here/,
        /aws_s3_bucket_ownership_controls\.photos: rule is a nested block: write rule \{ \.\.\. \}/,
        /monitoring\/main\.tf:\d+: aws_cloudwatch_metric_alarm\.single: required argument comparison_operator is missing/,
        /database\/main\.tf:\d+: aws_db_instance\.main: port must be a number, not "five"/,
    ]);
});

test("references, module inputs, tfvars and versions", async () => {
    await expectErrors(tree({
        "infrastructure/main.tf": [
            ["ingest_queue_arn     = module.queues.ingest_queue_arn", "ingest_queue_arn     = module.queues.ingest_queue_arm"],
            ["alarm_email               = var.alarm_email", "alarm_email               = var.alarm_mail"],
            ["visibility_s       = local.sqs_visibility_s", 'colour             = "blue"'],
            ['"RAPIDPHOTO_SQS_VISIBILITY_S", "60"', '"RAPIDPHOTO_SQS_VISIBILITY_S", "30"'],
        ],
        "infrastructure/modules/compute/outputs.tf": [["aws_lb.main.dns_name", "aws_lb.main.dns_nam"]],
        "infrastructure/modules/iam/main.tf": [['role   = aws_iam_role.task["api"].id', "role   = aws_iam_role.task.id"]],
        "infrastructure/environments/dev.tfvars": [
            ["az_count           = 2", 'az_count           = "two"'],
            ['db_instance_class        = "db.t4g.micro"', 'db_instance_class        = "db.t4g.micro"\ndb_instanse_class = "db.t4g.micro"'],
        ],
        "infrastructure/environments/prod.tfvars": [["{ desired = 3, min = 3, max = 12 }", "{ desired = 3, min = 3 }"]],
        "infrastructure/versions.tf": [['"~> 6.25.0"', '"~> 5.0"'], ['">= 1.9"', '">= 1.8"']],
    }), [
        /main\.tf:\d+: module\.storage\.ingest_queue_arn: module\.queues\.ingest_queue_arm: module queues has no output ingest_queue_arm \(did you mean ingest_queue_arn\?\)/,
        /main\.tf:\d+: module\.monitoring\.alarm_email: var\.alarm_mail: no variable alarm_mail .*did you mean alarm_email/,
        /main\.tf:\d+: module\.queues: \.\/modules\/queues has no variable colour/,
        /main\.tf:\d+: module\.queues: variable visibility_s of \.\/modules\/queues has no default and is not passed/,
        /main\.tf:\d+: local\.sqs_visibility_s: RAPIDPHOTO_SQS_VISIBILITY_S's default is "60" in engine\/config\.c, not "30"/,
        /compute\/outputs\.tf:\d+: output\.alb_dns_name: aws_lb\.main\.dns_nam: aws_lb has no attribute dns_nam \(did you mean dns_name\?\)/,
        /iam\/main\.tf:\d+: aws_iam_role_policy\.api_s3\.role: aws_iam_role\.task\.id: aws_iam_role\.task has for_each: name an instance/,
        /iam\/main\.tf:\d+: aws_iam_role_policy\.api_s3: role or policy this check cannot follow/,
        /dev\.tfvars:\d+: az_count: must be a number, not "two"/,
        /dev\.tfvars:\d+: db_instanse_class: not a variable of infrastructure\/ \(did you mean db_instance_class\?\)/,
        /prod\.tfvars:\d+: api_count: lacks attribute max/,
        /versions\.tf:\d+: required_providers\.aws: version "~> 5\.0" does not admit 6\.25\.0/,
        /versions\.tf:\d+: terraform\.required_version: ">= 1\.8" must admit 1\.9 and nothing older/,
        // the api role, its S3 policy unreadable, lacks what the engine needs
        /role api: not granted s3:/,
    ]);
});

test("IAM: an action more, an action less, a wider resource, engine calls not granted, IAM elsewhere", async () => {
    await expectErrors(tree({
        "infrastructure/modules/iam/main.tf": [
            ['"sqs:ChangeMessageVisibility",\n      "sqs:DeleteMessage",', '"sqs:DeleteMessage",\n      "sqs:PurgeQueue",'],
            ["resources = [var.bucket_arn]", 'resources = ["*"]'],
        ],
        "actors/bridges/sqs_ingest.c": (text) => text +
            "\nstatic void s_spoil (s_ingest_t *self) { char e [8], id [128]; rp_sqs_send (self->sqs, self->config.sqs_ingest_queue_url, \"x\", id, e, sizeof e); }\n",
        "engine/aws/s3.c": (text) => text + '\nstatic void s_spoil (rp_s3_t *self) { s_perform (self, "SelectObjectContent", NULL, NULL, NULL, NULL, 0); }\n',
        // The API tasks running `serve`, which starts the SQS bridges,
        // and the pipeline's without the X-Ray daemon
        "deploy/ecs/task-definitions/api.json": (td) => { td.containerDefinitions[0].command = ["serve"]; return td; },
        "deploy/ecs/task-definitions/pipeline.json": (td) => { td.containerDefinitions.pop(); return td; },
        "infrastructure/modules/compute/main.tf": (text) => text +
            '\nresource "aws_iam_role_policy" "sneaky" {\n  role   = "x"\n  policy = "{}"\n}\n',
    }, ["actors", "engine"]), [
        /role api: not granted sqs:(ChangeMessageVisibility|DeleteMessage|ReceiveMessage|SendMessage), which the engine needs/,
        /compute\/main\.tf:\d+: aws_iam_role_policy\.sneaky: IAM outside modules\/iam/,
        /iam\/main\.tf:\d+: role pipeline \(policy sqs\): granted sqs:PurgeQueue, which the engine never needs in this role/,
        /role pipeline: not granted sqs:ChangeMessageVisibility, which the engine needs: SQS ChangeMessageVisibility on the ingest queue at actors\/bridges\/sqs_ingest\.c:\d+/,
        /role (api|pipeline|lambda) \(policy s3\): s3:ListBucket on \*: the engine calls it on \$\{var\.bucket_arn\} only/,
        /role pipeline \(policy sqs\): sqs:SendMessage on \$\{var\.events_queue_arn\}: the engine calls it on \$\{var\.events_queue_arn\} \$\{var\.ingest_queue_arn\} only/,
        /engine\/aws\/s3\.c:\d+: engine S3 call: SelectObjectContent: check\.mjs does not know its IAM action/,
        /iam\/main\.tf:\d+: role pipeline \(policy xray\): granted xray:(PutTraceSegments|PutTelemetryRecords), which the engine never needs in this role/,
    ]);
});

test("deploy/ecs: a secret without a source, an unfilled placeholder, a missing field; HCL that does not parse", async () => {
    await expectErrors(tree({
        "deploy/ecs/task-definitions/api.json": (td) => {
            td.containerDefinitions[0].secrets.push({ name: "RAPIDPHOTO_AUTH_OTHER", valueFrom: "arn:aws:ssm:${AWS_REGION}:${AWS_ACCOUNT_ID}:parameter/x" });
            return td;
        },
        "deploy/ecs/task-definitions/pipeline.json": (td) => { delete td.family; return td; },
        "deploy/ecs/services/api.json": (svc) => ({ ...svc, platformVersion: "${PLATFORM}" }),
        "infrastructure/outputs.tf": (text) => text.replace(/\}\s*$/, ""),
    }), [
        /api\.json:\d+: task definition api: secret RAPIDPHOTO_AUTH_OTHER: neither generated_secrets nor operator_secrets/,
        /services\/api\.json:\d+: service api: placeholder \$\{PLATFORM\} is filled neither by local\.ecs_vars nor in modules\/compute/,
        /compute\/main\.tf:\d+: aws_ecs_task_definition\.main\.family: each\.value\.family: deploy\/ecs\/task-definitions\/pipeline\.json has no family/,
        /infrastructure\/outputs\.tf:1: HCL: does not parse/,
    ]);
});

test("Lambda: the mapping without partial batch responses or on $LATEST, the wrong command, the role short of what the mapping and the function need, or wider", async () => {
    const root = tree({
        "infrastructure/modules/lambda/main.tf": [
            ['function_response_types            = ["ReportBatchItemFailures"]', "function_response_types            = []"],
            ["function_name    = aws_lambda_alias.prod.arn", "function_name    = aws_lambda_function.processor.arn"],
            ['command = ["lambda"]', 'command = ["serve"]'],
        ],
        "infrastructure/modules/iam/main.tf": [
            // the mapping's delete of a batch's successes
            ['"sqs:DeleteMessage",\n      "sqs:GetQueueAttributes",', '"sqs:GetQueueAttributes",'],
            // one more than Lambda and the engine need
            ['actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]\n    resources = ["arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:${var.image_processor',
             'actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]\n    resources = ["arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:${var.image_processor'],
            // the environment's key on every key
            ['resources = [var.image_processor == null ? "" : var.image_processor.kms_key_arn]', 'resources = ["*"]'],
            // no X-Ray for the function
            ['resource "aws_iam_role_policy" "lambda_xray" {\n  count  = length(aws_iam_role.lambda)\n  name   = "xray"\n  role   = aws_iam_role.lambda[0].id\n  policy = data.aws_iam_policy_document.xray.json\n}\n', ""],
        ],
        "infrastructure/modules/iam/outputs.tf": [["aws_iam_role_policy.lambda_xray, ", ""]],
    }, ["app"]);
    // The runtime's own code (a source named *lambda*) sending to the
    // ingest queue: the function's role must have it too
    writeFileSync(join(root, "app/lambda_spoil.c"),
        "static void s_spoil (s_t *self) { char e [8], id [128]; rp_sqs_send (self->sqs, self->config.sqs_ingest_queue_url, \"x\", id, e, sizeof e); }\n");
    await expectErrors(root, [
        /lambda\/main\.tf:\d+: aws_lambda_event_source_mapping\.ingest: function_response_types lacks ReportBatchItemFailures/,
        /lambda\/main\.tf:\d+: aws_lambda_event_source_mapping\.ingest: function_name \$\{aws_lambda_function\.processor\.arn\}: invoke an alias/,
        /lambda\/main\.tf:\d+: aws_lambda_function\.processor: image_config\.command \["serve"\]: must be \["lambda"\]/,
        /iam\/main\.tf:\d+: role lambda: not granted sqs:DeleteMessage, which the engine needs: the ingest queue's event source mapping/,
        /iam\/main\.tf:\d+: role lambda \(policy lambda_logs\): granted logs:CreateLogGroup, which the engine never needs in this role/,
        /iam\/main\.tf:\d+: role lambda: kms:Decrypt on "\*": name the resource/,
        /iam\/main\.tf:\d+: role lambda: not granted xray:PutTraceSegments, which the engine needs: aws_lambda_function\.processor: tracing_config mode Active/,
        /iam\/main\.tf:\d+: role lambda: not granted xray:PutTelemetryRecords/,
        /iam\/main\.tf:\d+: role lambda \(policy lambda_sqs\): sqs:SendMessage on \$\{var\.events_queue_arn\}: the engine calls it on \$\{var\.events_queue_arn\} \$\{var\.ingest_queue_arn\} only/,
        // the pipeline role (its command starts the bridges) answers for every ingest call of the engine
        /iam\/main\.tf:\d+: role pipeline \(policy sqs\): sqs:SendMessage on \$\{var\.events_queue_arn\}: the engine calls it on \$\{var\.events_queue_arn\} \$\{var\.ingest_queue_arn\} only/,
    ]);
});

test("Lambda: its role granted with no function to use it", async () => {
    const root = tree({
        "infrastructure/main.tf": (text) => text.replace(/\nmodule "image_processor" \{[^]*?\n\}\n/, "\n")
            .replace(/kms_key_arn    = module\.image_processor\[0\]\.kms_key_arn/, 'kms_key_arn    = "arn:aws:kms:us-east-1:123456789012:key/x"'),
        "infrastructure/outputs.tf": (text) => text.replace(/\noutput "image_processor_function_name"[^]*$/, "\n"),
    });
    rmSync(join(root, "infrastructure/modules/lambda"), { recursive: true });
    await expectErrors(root, [
        /iam\/main\.tf:\d+: role lambda: granted rights, but infrastructure\/ has no Lambda function/,
    ]);
});
