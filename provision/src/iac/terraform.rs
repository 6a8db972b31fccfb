//! The stack as a Terraform module (`main.tf`, `variables.tf`, `outputs.tf`, `README.md`),
//! rendered from the [`StackDescription`] with `${local.id}`, a `random_id`, where a stack id
//! goes. The programs come in as file paths (variables) and go up as `aws_s3_object`s and
//! Lambda packages, so `terraform apply` deploys the same code `hybridlab up` would.

use super::hcl::{Block, Expr, Item, attr, block, file, from_json, raw, string};
use super::{ExportFile, resources_note};
use crate::stack::describe::{
    Bucket, EnvValue, Function, Jobs, Program, ROLE_POLICY_NAME, Role, StackDescription, Table,
};
use crate::stack::names::StackNames;
use crate::stack::plan::{ServerSecretValues, StackSettings};
use crate::stack::policy::ArnContext;
use hybridlab_wire::tags::ENDPOINT_TAG;

/// The stack id inside the module: 8 lowercase hex digits, a valid [`StackId`] (4 random
/// bytes), so every name has the shape `hybridlab up` gives it.
///
/// [`StackId`]: crate::stack::names::StackId
const ID: &str = "${local.id}";

/// The Terraform label of a bucket, log group, role or function, from what it is for.
fn bucket_label(bucket: &Bucket, names: &StackNames) -> &'static str {
    match bucket.name.as_str() {
        n if n == names.images_bucket => "images",
        n if n == names.artifacts_bucket => "artifacts",
        n if n == names.uploads_bucket => "uploads",
        n if n == names.jobs_bucket => "jobs",
        _ => "processed",
    }
}

fn log_group_label(name: &str, names: &StackNames) -> &'static str {
    match name {
        n if n == names.function_log_group => "function",
        n if n == names.server_log_group => "server",
        n if n == names.submit_log_group => "submit",
        n if n == names.launcher_log_group => "launcher",
        _ => "resizer",
    }
}

fn role_label(name: &str, names: &StackNames) -> &'static str {
    match name {
        n if n == names.lambda_role => "lambda",
        n if n == names.server_role => "server",
        n if n == names.submit_role => "submit",
        n if n == names.launcher_role => "launcher",
        n if n == names.worker_role => "worker",
        _ => "resizer",
    }
}

fn function_label(function: &Function) -> &'static str {
    match function.program {
        Program::Proxy => "proxy",
        Program::Resizer => "resizer",
        Program::Submit => "submit",
        Program::Launcher => "launcher",
    }
}

/// The variable naming a function's package.
fn package_variable(program: Program) -> &'static str {
    match program {
        Program::Proxy => "proxy_package",
        Program::Resizer => "resizer_package",
        Program::Submit => "submit_package",
        Program::Launcher => "launcher_package",
    }
}

fn tags() -> Item {
    attr("tags", raw("local.tags"))
}

fn resource(kind: &str, label: &str, body: Vec<Item>) -> Block {
    Block::new("resource", &[kind, label], body)
}

fn jsonencode(value: &serde_json::Value) -> Expr {
    Expr::Call("jsonencode", vec![from_json(value)])
}

fn depends_on(references: &[&str]) -> Item {
    attr(
        "depends_on",
        Expr::List(references.iter().map(|r| raw(*r)).collect()),
    )
}

/// The description with Terraform's interpolations in place of the stack id, the ARN
/// context, the region and the secrets.
pub fn description(settings: &StackSettings) -> StackDescription {
    let arns = ArnContext {
        partition: "${data.aws_partition.current.partition}".into(),
        region: "${var.region}".into(),
        account: "${data.aws_caller_identity.current.account_id}".into(),
    };
    let settings = StackSettings {
        region: "${var.region}".into(),
        ..settings.clone()
    };
    StackDescription::new(
        StackNames::with_suffix(ID),
        ID,
        &settings,
        &arns,
        &ServerSecretValues {
            token: "${local.token}".into(),
            tls_certificate: format!("${{var.{TLS_CERTIFICATE_VARIABLE}}}"),
            tls_key: format!("${{var.{TLS_KEY_VARIABLE}}}"),
            cert_sha256: format!("${{var.{CERT_SHA256_VARIABLE}}}"),
        },
    )
}

/// The variables that give the module the server's certificate, its key and the fingerprint
/// the function pins: made by `hybridlab export terraform` (and `up --via terraform`) and
/// written to `terraform.tfvars`. Terraform's own `tls` provider could make the pair, but no
/// Terraform function hashes binary data, so the fingerprint could not be computed in HCL.
pub const TLS_CERTIFICATE_VARIABLE: &str = "server_tls_certificate";
pub const TLS_KEY_VARIABLE: &str = "server_tls_key";
pub const CERT_SHA256_VARIABLE: &str = "server_certificate_sha256";
const TOKEN_VARIABLE: &str = "server_token";

/// Where the module's stack id and bearer token come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// `random_id` and `random_password` (the `hashicorp/random` provider) make them: the
    /// module applies as it is.
    Random,
    /// The variables `stack_id` and `server_token` give them, so `hashicorp/aws` is the only
    /// provider: for a plugin mirror without `hashicorp/random`, and for
    /// `hybridlab up --via terraform`, which has its own stack id.
    Given,
}

fn bucket_blocks(bucket: &Bucket, names: &StackNames) -> Vec<Block> {
    let label = bucket_label(bucket, names);
    let id = format!("aws_s3_bucket.{label}.id");
    let mut blocks = vec![
        resource(
            "aws_s3_bucket",
            label,
            vec![
                attr("bucket", string(&bucket.name)),
                // `hybridlab down` empties a bucket (every version) before deleting it; so
                // does `terraform destroy` with this.
                attr("force_destroy", raw("true")),
                tags(),
            ],
        ),
        resource(
            "aws_s3_bucket_public_access_block",
            label,
            vec![
                attr("bucket", raw(&id)),
                attr("block_public_acls", raw("true")),
                attr("block_public_policy", raw("true")),
                attr("ignore_public_acls", raw("true")),
                attr("restrict_public_buckets", raw("true")),
            ],
        ),
        resource(
            "aws_s3_bucket_server_side_encryption_configuration",
            label,
            vec![
                attr("bucket", raw(&id)),
                Item::Blank,
                block(
                    "rule",
                    &[],
                    vec![block(
                        "apply_server_side_encryption_by_default",
                        &[],
                        vec![attr("sse_algorithm", string("AES256"))],
                    )],
                ),
            ],
        ),
    ];
    if bucket.versioned {
        blocks.push(resource(
            "aws_s3_bucket_versioning",
            label,
            vec![
                attr("bucket", raw(&id)),
                Item::Blank,
                block(
                    "versioning_configuration",
                    &[],
                    vec![attr("status", string("Enabled"))],
                ),
            ],
        ));
    }
    if let Some(cors) = &bucket.cors {
        let list = |items: &[&str]| Expr::List(items.iter().map(|i| string(*i)).collect());
        blocks.push(resource(
            "aws_s3_bucket_cors_configuration",
            label,
            vec![
                attr("bucket", raw(&id)),
                Item::Blank,
                Item::Comment(
                    "The gallery page PUTs here with a presigned URL; the URL is the authorisation."
                        .into(),
                ),
                block(
                    "cors_rule",
                    &[],
                    vec![
                        attr("allowed_methods", list(&cors.methods)),
                        attr("allowed_origins", list(&cors.origins)),
                        attr("allowed_headers", list(&cors.headers)),
                        attr("max_age_seconds", raw(cors.max_age_seconds.to_string())),
                    ],
                ),
            ],
        ));
    }
    blocks
}

fn role_blocks(role: &Role, names: &StackNames) -> Vec<Block> {
    let label = role_label(&role.name, names);
    vec![
        resource(
            "aws_iam_role",
            label,
            vec![
                attr("name", string(&role.name)),
                attr("path", string(role.path)),
                attr("assume_role_policy", jsonencode(&role.trust)),
                tags(),
            ],
        ),
        resource(
            "aws_iam_role_policy",
            label,
            vec![
                attr("name", string(ROLE_POLICY_NAME)),
                attr("role", raw(format!("aws_iam_role.{label}.id"))),
                attr("policy", jsonencode(&role.policy)),
            ],
        ),
    ]
}

fn function_block(function: &Function, names: &StackNames) -> Block {
    let label = function_label(function);
    let package = format!("var.{}", package_variable(function.program));
    let package = package.as_str();
    let role = role_label(&function.role, names);
    let log_group = log_group_label(&function.log_group, names);
    let variables = function
        .environment
        .iter()
        .map(|(key, value)| {
            let value = match value {
                EnvValue::Literal(text) => string(text),
                EnvValue::ServerUrl => raw("local.server_url"),
                EnvValue::Token => raw("local.token"),
                EnvValue::CertSha256 => raw(format!("var.{CERT_SHA256_VARIABLE}")),
                EnvValue::InstanceType => raw("var.instance_type"),
                EnvValue::WorkerImage => raw("data.aws_ami.al2023.id"),
                EnvValue::WorkerProfileArn => raw("aws_iam_instance_profile.worker.arn"),
                // Through the object, so the launcher exists only once the worker is there.
                EnvValue::WorkerBucket => raw("aws_s3_object.worker_binary.bucket"),
                EnvValue::WorkerKey => raw("aws_s3_object.worker_binary.key"),
            };
            ((*key).to_owned(), value)
        })
        .collect();
    let (memory, timeout) = match function.program {
        Program::Proxy => (
            raw("var.function_memory_mb"),
            raw("var.function_timeout_seconds"),
        ),
        Program::Resizer | Program::Submit | Program::Launcher => (
            raw(function.memory_mb.to_string()),
            raw(function.timeout_seconds.to_string()),
        ),
    };
    resource(
        "aws_lambda_function",
        label,
        vec![
            attr("function_name", string(&function.name)),
            attr("description", string(&function.description)),
            attr("role", raw(format!("aws_iam_role.{role}.arn"))),
            attr("runtime", string("provided.al2023")),
            attr("architectures", Expr::List(vec![string("x86_64")])),
            attr("handler", string("bootstrap")),
            attr("memory_size", memory),
            attr("timeout", timeout),
            attr("filename", raw(package)),
            attr(
                "source_code_hash",
                raw(format!("filebase64sha256({package})")),
            ),
            tags(),
            Item::Blank,
            block(
                "environment",
                &[],
                vec![attr("variables", Expr::Object(variables))],
            ),
            Item::Blank,
            // The log group exists (with its retention) before Lambda would make its own.
            depends_on(&[
                &format!("aws_cloudwatch_log_group.{log_group}"),
                &format!("aws_iam_role_policy.{role}"),
            ]),
        ],
    )
}

fn table_block(table: &Table, names: &StackNames) -> Block {
    let label = if table.name == names.jobs_table {
        "jobs"
    } else {
        "images"
    };
    let mut body = vec![
        attr("name", string(&table.name)),
        attr("billing_mode", string("PAY_PER_REQUEST")),
        attr("hash_key", string(table.partition_key)),
    ];
    if let Some(view) = table.stream {
        body.extend([
            attr("stream_enabled", raw("true")),
            attr("stream_view_type", string(view)),
        ]);
    }
    body.extend([
        tags(),
        Item::Blank,
        block(
            "attribute",
            &[],
            vec![
                attr("name", string(table.partition_key)),
                attr("type", string("S")),
            ],
        ),
    ]);
    resource("aws_dynamodb_table", label, body)
}

/// The launcher's stream mapping and the HTTP API in front of the submit function.
fn jobs_blocks(jobs: &Jobs) -> Vec<Block> {
    let mapping = &jobs.mapping;
    let api = &jobs.api;
    let filters = mapping
        .filters
        .iter()
        .map(|pattern| {
            let pattern: serde_json::Value =
                serde_json::from_str(pattern).unwrap_or(serde_json::Value::Null);
            block("filter", &[], vec![attr("pattern", jsonencode(&pattern))])
        })
        .collect();
    vec![
        resource(
            "aws_lambda_event_source_mapping",
            "launcher",
            vec![
                attr(
                    "event_source_arn",
                    raw("aws_dynamodb_table.jobs.stream_arn"),
                ),
                attr("function_name", raw("aws_lambda_function.launcher.arn")),
                attr("starting_position", string(mapping.starting_position)),
                attr("batch_size", raw(mapping.batch_size.to_string())),
                attr(
                    "maximum_retry_attempts",
                    raw(mapping.maximum_retry_attempts.to_string()),
                ),
                attr(
                    "bisect_batch_on_function_error",
                    raw(mapping.bisect_batch_on_function_error.to_string()),
                ),
                tags(),
                Item::Blank,
                Item::Comment(
                    "Inserts, and jobs that ended (which may free a worker's place).".into(),
                ),
                block("filter_criteria", &[], filters),
            ],
        ),
        resource(
            "aws_apigatewayv2_api",
            "jobs",
            vec![
                attr("name", string(&api.name)),
                attr("description", string(&api.description)),
                attr("protocol_type", string("HTTP")),
                tags(),
            ],
        ),
        resource(
            "aws_apigatewayv2_integration",
            "submit",
            vec![
                attr("api_id", raw("aws_apigatewayv2_api.jobs.id")),
                attr("integration_type", string("AWS_PROXY")),
                attr("integration_uri", raw("aws_lambda_function.submit.arn")),
                attr("payload_format_version", string(api.payload_format_version)),
            ],
        ),
        resource(
            "aws_apigatewayv2_route",
            "jobs",
            vec![
                attr(
                    "for_each",
                    Expr::Call(
                        "toset",
                        vec![Expr::List(api.routes.iter().map(|r| string(*r)).collect())],
                    ),
                ),
                Item::Blank,
                attr("api_id", raw("aws_apigatewayv2_api.jobs.id")),
                attr("route_key", raw("each.value")),
                attr(
                    "target",
                    string("integrations/${aws_apigatewayv2_integration.submit.id}"),
                ),
            ],
        ),
        resource(
            "aws_apigatewayv2_stage",
            "default",
            vec![
                attr("api_id", raw("aws_apigatewayv2_api.jobs.id")),
                attr("name", string(api.stage)),
                attr("auto_deploy", raw("true")),
                tags(),
            ],
        ),
        resource(
            "aws_lambda_permission",
            "jobs_api",
            vec![
                attr("statement_id", string(api.permission_id)),
                attr("action", string("lambda:InvokeFunction")),
                attr("principal", string("apigateway.amazonaws.com")),
                attr(
                    "function_name",
                    raw("aws_lambda_function.submit.function_name"),
                ),
                Item::Comment("Any stage and route of this API, and nothing else.".into()),
                attr(
                    "source_arn",
                    string("${aws_apigatewayv2_api.jobs.execution_arn}/*/*"),
                ),
            ],
        ),
    ]
}

fn main_tf(stack: &StackDescription, identity: Identity) -> String {
    let names = &stack.names;
    let mut blocks = vec![
        Block::new(
            "terraform",
            &[],
            vec![
                attr("required_version", string(">= 1.5")),
                Item::Blank,
                block(
                    "required_providers",
                    &[],
                    vec![
                        attr(
                            "aws",
                            Expr::Object(vec![
                                ("source".into(), string("hashicorp/aws")),
                                ("version".into(), string(">= 5.0, < 7.0")),
                            ]),
                        ),
                    ]
                    .into_iter()
                    .chain((identity == Identity::Random).then(|| {
                        attr(
                            "random",
                            Expr::Object(vec![
                                ("source".into(), string("hashicorp/random")),
                                ("version".into(), string(">= 3.5")),
                            ]),
                        )
                    }))
                    .collect(),
                ),
            ],
        ),
        Block::new(
            "provider",
            &["aws"],
            vec![
                attr("region", raw("var.region")),
                Item::Blank,
                Item::Comment(
                    "With aws_endpoint_url set (the hybridlab sandbox, another emulator), every service\n\
                     is reached at that one URL, without the checks an emulator cannot answer."
                        .into(),
                ),
                attr("skip_credentials_validation", raw("local.emulated")),
                attr("skip_metadata_api_check", raw("local.emulated")),
                attr("s3_use_path_style", raw("local.emulated")),
                Item::Blank,
                block(
                    "endpoints",
                    &[],
                    [
                        "apigatewayv2",
                        "dynamodb",
                        "ec2",
                        "iam",
                        "lambda",
                        "logs",
                        "s3",
                        "sts",
                    ]
                        .into_iter()
                        .map(|service| attr(service, raw("var.aws_endpoint_url")))
                        .collect(),
                ),
            ],
        ),
    ];
    let (id_comment, id, token) = match identity {
        Identity::Random => {
            blocks.push(Block::new(
                "resource",
                &["random_id", "stack"],
                vec![attr("byte_length", raw("4"))],
            ));
            blocks.push(Block::new(
                "resource",
                &["random_password", "token"],
                vec![
                    Item::Comment(
                        "The bearer token the function sends and the server checks, as `up` makes one."
                            .into(),
                    ),
                    attr("length", raw("64")),
                    attr("special", raw("false")),
                ],
            ));
            (
                "Lowercase hex of 4 random bytes: a valid hybridlab stack id, so `hybridlab status`\n\
                 and `hybridlab down` know the stack too.",
                "coalesce(var.stack_id, random_id.stack.hex)",
                "random_password.token.result",
            )
        }
        Identity::Given => (
            "The stack id and the token are variables (see terraform.tfvars), so the module needs\n\
             no provider but hashicorp/aws.",
            "var.stack_id",
            "var.server_token",
        ),
    };
    blocks.extend([
        Block::new(
            "locals",
            &[],
            vec![
                Item::Comment(id_comment.into()),
                attr("id", raw(id)),
                attr("token", raw(token)),
                attr("emulated", raw("var.aws_endpoint_url != null")),
                attr(
                    "tags",
                    Expr::Object(vec![(stack.stack_tag.0.to_owned(), raw("local.id"))]),
                ),
                Item::Comment(
                    "On AWS the function calls the instance's public address over TLS; the sandbox runs\n\
                     the server on loopback and names its address in a tag."
                        .into(),
                ),
                attr(
                    "server_url",
                    raw(format!(
                        "local.emulated ? lookup(data.aws_instance.server.tags, \"{ENDPOINT_TAG}\", \"\") : \"https://${{aws_instance.server.public_ip}}:{}\"",
                        stack.security_group.port
                    )),
                ),
            ],
        ),
        Block::new("data", &["aws_partition", "current"], vec![]),
        Block::new("data", &["aws_caller_identity", "current"], vec![]),
        Block::new(
            "data",
            &["aws_vpc", "default"],
            vec![attr("default", raw("true"))],
        ),
        Block::new(
            "data",
            &["aws_ami", "al2023"],
            vec![
                attr("most_recent", raw("true")),
                attr("owners", Expr::List(vec![string("amazon")])),
                Item::Blank,
                block(
                    "filter",
                    &[],
                    vec![
                        attr("name", string("name")),
                        attr(
                            "values",
                            Expr::List(vec![string(stack.instance.image_name_pattern)]),
                        ),
                    ],
                ),
                Item::Blank,
                block(
                    "filter",
                    &[],
                    vec![
                        attr("name", string("architecture")),
                        attr("values", Expr::List(vec![string("x86_64")])),
                    ],
                ),
            ],
        ),
    ]);
    for bucket in stack.buckets() {
        blocks.extend(bucket_blocks(bucket, names));
    }
    for table in stack.tables() {
        blocks.push(table_block(table, names));
    }
    for group in stack.log_groups() {
        blocks.push(resource(
            "aws_cloudwatch_log_group",
            log_group_label(&group.name, names),
            vec![
                attr("name", string(&group.name)),
                attr("retention_in_days", raw("var.log_retention_days")),
                tags(),
            ],
        ));
    }
    for role in stack.roles() {
        blocks.extend(role_blocks(role, names));
    }
    for profile in stack.instance_profiles() {
        let label = role_label(&profile.role, names);
        blocks.push(resource(
            "aws_iam_instance_profile",
            label,
            vec![
                attr("name", string(&profile.name)),
                attr("path", string(stack.server_role.path)),
                attr("role", raw(format!("aws_iam_role.{label}.name"))),
                tags(),
            ],
        ));
    }
    let sg = &stack.security_group;
    blocks.push(resource(
        "aws_security_group",
        "server",
        vec![
            attr("name", string(&sg.name)),
            attr("description", string(&sg.description)),
            attr("vpc_id", raw("data.aws_vpc.default.id")),
            tags(),
            Item::Blank,
            block(
                "ingress",
                &[],
                vec![
                    attr("description", string("hybridlab image server")),
                    attr("protocol", string("tcp")),
                    attr("from_port", raw(sg.port.to_string())),
                    attr("to_port", raw(sg.port.to_string())),
                    attr("cidr_blocks", Expr::List(vec![raw("var.ingress_cidr")])),
                ],
            ),
            Item::Blank,
            Item::Comment(
                "EC2 gives a new group this rule; Terraform removes it unless it is declared. The\n\
                 instance needs it to fetch the server from S3."
                    .into(),
            ),
            block(
                "egress",
                &[],
                vec![
                    attr("protocol", string("-1")),
                    attr("from_port", raw("0")),
                    attr("to_port", raw("0")),
                    attr("cidr_blocks", Expr::List(vec![string("0.0.0.0/0")])),
                ],
            ),
        ],
    ));
    let artifacts = &stack.server_artifacts;
    blocks.push(resource(
        "aws_s3_object",
        "server_binary",
        vec![
            attr("bucket", raw("aws_s3_bucket.artifacts.id")),
            attr("key", string(artifacts.binary_key)),
            attr("source", raw("var.server_binary")),
            attr("source_hash", raw("filemd5(var.server_binary)")),
            attr("content_type", string("application/octet-stream")),
            Item::Blank,
            depends_on(&[
                "aws_s3_bucket_public_access_block.artifacts",
                "aws_s3_bucket_server_side_encryption_configuration.artifacts",
            ]),
        ],
    ));
    blocks.push(resource(
        "aws_s3_object",
        "server_env",
        vec![
            attr("bucket", raw("aws_s3_bucket.artifacts.id")),
            attr("key", string(artifacts.env_key)),
            attr("content", Expr::Heredoc(artifacts.env_file.clone())),
            attr("content_type", string("text/plain")),
            Item::Blank,
            depends_on(&[
                "aws_s3_bucket_public_access_block.artifacts",
                "aws_s3_bucket_server_side_encryption_configuration.artifacts",
            ]),
        ],
    ));
    let instance = &stack.instance;
    let instance_tags = Expr::Call(
        "merge",
        vec![
            raw("local.tags"),
            Expr::Object(
                instance
                    .extra_tags
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), string(value)))
                    .collect(),
            ),
        ],
    );
    blocks.push(resource(
        "aws_instance",
        "server",
        vec![
            attr("ami", raw("data.aws_ami.al2023.id")),
            attr("instance_type", raw("var.instance_type")),
            attr(
                "iam_instance_profile",
                raw("aws_iam_instance_profile.server.name"),
            ),
            attr(
                "vpc_security_group_ids",
                Expr::List(vec![raw("aws_security_group.server.id")]),
            ),
            Item::Comment(
                "The instance shuts itself down when its TTL ends; shutting down terminates it."
                    .into(),
            ),
            attr("instance_initiated_shutdown_behavior", string("terminate")),
            attr("user_data_replace_on_change", raw("true")),
            Item::Blank,
            Item::Comment(
                "Without one a T3 runs `unlimited`; EC2 refuses one for a type that is not burstable."
                    .into(),
            ),
            block(
                "dynamic",
                &["credit_specification"],
                vec![
                    attr(
                        "for_each",
                        raw("can(regex(\"^t(2|3|3a|4g)\\\\.\", var.instance_type)) ? [var.cpu_credits] : []"),
                    ),
                    Item::Blank,
                    block(
                        "content",
                        &[],
                        vec![attr("cpu_credits", raw("credit_specification.value"))],
                    ),
                ],
            ),
            Item::Blank,
            attr("user_data", Expr::Heredoc(instance.launch.render())),
            attr("tags", instance_tags.clone()),
            attr("volume_tags", instance_tags),
            Item::Blank,
            block(
                "metadata_options",
                &[],
                vec![
                    attr("http_endpoint", string("enabled")),
                    attr("http_tokens", string("required")),
                    attr("http_put_response_hop_limit", raw("1")),
                ],
            ),
            Item::Blank,
            depends_on(&[
                "aws_s3_object.server_binary",
                "aws_s3_object.server_env",
                "aws_iam_role_policy.server",
                "aws_cloudwatch_log_group.server",
            ]),
        ],
    ));
    blocks.push(Block::new(
        "data",
        &["aws_instance", "server"],
        vec![attr("instance_id", raw("aws_instance.server.id"))],
    ));
    if let Some(jobs) = &stack.jobs {
        blocks.push(resource(
            "aws_s3_object",
            "worker_binary",
            vec![
                attr("bucket", raw("aws_s3_bucket.artifacts.id")),
                attr("key", string(jobs.worker_binary_key)),
                attr("source", raw("var.worker_binary")),
                attr("source_hash", raw("filemd5(var.worker_binary)")),
                attr("content_type", string("application/octet-stream")),
                Item::Blank,
                depends_on(&[
                    "aws_s3_bucket_public_access_block.artifacts",
                    "aws_s3_bucket_server_side_encryption_configuration.artifacts",
                ]),
            ],
        ));
    }
    for function in stack.functions() {
        blocks.push(function_block(function, names));
    }
    if let Some(jobs) = &stack.jobs {
        blocks.extend(jobs_blocks(jobs));
    }
    if let Some(pipeline) = &stack.pipeline {
        let trigger = &pipeline.trigger;
        blocks.push(resource(
            "aws_lambda_permission",
            "uploads",
            vec![
                attr("statement_id", string(trigger.permission_id)),
                attr("action", string("lambda:InvokeFunction")),
                attr("principal", string("s3.amazonaws.com")),
                attr(
                    "function_name",
                    raw("aws_lambda_function.resizer.function_name"),
                ),
                attr("source_arn", raw("aws_s3_bucket.uploads.arn")),
                Item::Comment(
                    "A deleted bucket's name can pass to another account: the account pins it."
                        .into(),
                ),
                attr(
                    "source_account",
                    raw("data.aws_caller_identity.current.account_id"),
                ),
            ],
        ));
        blocks.push(resource(
            "aws_s3_bucket_notification",
            "uploads",
            vec![
                attr("bucket", raw("aws_s3_bucket.uploads.id")),
                Item::Blank,
                block(
                    "lambda_function",
                    &[],
                    vec![
                        attr("id", string(trigger.notification_id)),
                        attr(
                            "lambda_function_arn",
                            raw("aws_lambda_function.resizer.arn"),
                        ),
                        attr("events", Expr::List(vec![string(trigger.event)])),
                        attr("filter_prefix", string(trigger.prefix)),
                    ],
                ),
                Item::Blank,
                Item::Comment(
                    "S3 checks that it may invoke the function when the notification is set."
                        .into(),
                ),
                depends_on(&["aws_lambda_permission.uploads"]),
            ],
        ));
    }
    let mut text = format!(
        "# The hybridlab stack{}, as `hybridlab up{}` creates it. Generated by\n# `hybridlab export terraform`; {}\n\n",
        stack.variant_words(),
        stack.with_flags(),
        resources_note()
    );
    text.push_str(&file(&blocks));
    text
}

fn variable(name: &str, kind: &str, description: &str, default: Option<Expr>) -> Block {
    let mut body = vec![
        attr("description", string(description)),
        attr("type", raw(kind)),
    ];
    if let Some(default) = default {
        body.push(attr("default", default));
    }
    Block::new("variable", &[name], body)
}

/// A variable with a validation, `sensitive` if it is a secret.
fn checked_variable(
    name: &str,
    description: &str,
    sensitive: bool,
    condition: Expr,
    error_message: &str,
) -> Block {
    let mut body = vec![
        attr("description", string(description)),
        attr("type", raw("string")),
    ];
    if sensitive {
        body.push(attr("sensitive", raw("true")));
    }
    body.extend([
        Item::Blank,
        block(
            "validation",
            &[],
            vec![
                attr("condition", condition),
                attr("error_message", string(error_message)),
            ],
        ),
    ]);
    Block::new("variable", &[name], body)
}

/// The certificate, its key and its fingerprint. The patterns also keep a value from adding
/// lines to the server's environment file.
fn tls_variables() -> Vec<Block> {
    const BASE64: &str = "^[A-Za-z0-9+/]+={0,2}$";
    const FINGERPRINT: &str = "^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$";
    let matches = |variable: &str, pattern: &str| {
        Expr::Call(
            "can",
            vec![Expr::Call(
                "regex",
                vec![string(pattern), raw(format!("var.{variable}"))],
            )],
        )
    };
    vec![
        checked_variable(
            TLS_CERTIFICATE_VARIABLE,
            "The image server's self-signed TLS certificate, base64 of its DER (terraform.tfvars has one).",
            false,
            matches(TLS_CERTIFICATE_VARIABLE, BASE64),
            "The certificate is one line of base64, as `hybridlab export terraform` writes it.",
        ),
        checked_variable(
            TLS_KEY_VARIABLE,
            "The certificate's private key, base64 of its PKCS #8 DER (terraform.tfvars has it: keep it private).",
            true,
            matches(TLS_KEY_VARIABLE, BASE64),
            "The key is one line of base64, as `hybridlab export terraform` writes it.",
        ),
        checked_variable(
            CERT_SHA256_VARIABLE,
            "The certificate's SHA-256 fingerprint, which the function pins (terraform.tfvars has it).",
            false,
            matches(CERT_SHA256_VARIABLE, FINGERPRINT),
            "The fingerprint is 32 hex pairs separated by colons, or 64 hex digits.",
        ),
    ]
}

fn variables_tf(stack: &StackDescription, settings: &StackSettings, identity: Identity) -> String {
    let mut blocks = vec![
        variable(
            "region",
            "string",
            "AWS region of the stack.",
            Some(string(&settings.region)),
        ),
        variable(
            "aws_endpoint_url",
            "string",
            "An AWS-compatible endpoint for every service (the hybridlab sandbox: `hybridlab sandbox status`); null for AWS itself.",
            Some(raw("null")),
        ),
        Block::new(
            "variable",
            &["stack_id"],
            vec![
                attr(
                    "description",
                    string(
                        match identity {
                            Identity::Random => "The stack id every name ends in; null for a random one (`hybridlab up --via terraform` passes its own).",
                            Identity::Given => "The stack id every name ends in: 4 to 16 lowercase letters and digits (terraform.tfvars has one).",
                        },
                    ),
                ),
                attr("type", raw("string")),
            ]
            .into_iter()
            .chain((identity == Identity::Random).then(|| attr("default", raw("null"))))
            .chain([
                Item::Blank,
                block(
                    "validation",
                    &[],
                    vec![
                        attr(
                            "condition",
                            raw(
                                "var.stack_id == null || can(regex(\"^[a-z0-9]{4,16}$\", var.stack_id))",
                            ),
                        ),
                        attr(
                            "error_message",
                            string("A stack id is 4 to 16 lowercase letters and digits."),
                        ),
                    ],
                ),
            ])
            .collect(),
        ),
        variable(
            "server_binary",
            "string",
            "Path of the hybridlab-ec2-server binary built for Amazon Linux 2023 x86_64 (`hybridlab export terraform --build` builds it).",
            None,
        ),
        variable(
            "proxy_package",
            "string",
            "Path of the proxy function's bootstrap.zip (provided.al2023, x86_64).",
            None,
        ),
        variable(
            "instance_type",
            "string",
            "EC2 instance type of the image server.",
            Some(string(&settings.instance_type)),
        ),
        Block::new(
            "variable",
            &["cpu_credits"],
            vec![
                attr(
                    "description",
                    string("CPU credits of a burstable (T family) instance: standard is throttled at the baseline and never billed extra; unlimited bills surplus credits."),
                ),
                attr("type", raw("string")),
                attr("default", string(stack.instance.cpu_credits.as_str())),
                Item::Blank,
                block(
                    "validation",
                    &[],
                    vec![
                        attr(
                            "condition",
                            raw("contains([\"standard\", \"unlimited\"], var.cpu_credits)"),
                        ),
                        attr("error_message", string("cpu_credits is standard or unlimited.")),
                    ],
                ),
            ],
        ),
        variable(
            "ingress_cidr",
            "string",
            "Who may reach the server port. The function runs outside any VPC and calls the public address; the bearer token guards the server.",
            Some(string(&settings.ingress_cidr)),
        ),
        variable(
            "function_memory_mb",
            "number",
            "Memory of the proxy function.",
            Some(raw(settings.function_memory_mb.to_string())),
        ),
        variable(
            "function_timeout_seconds",
            "number",
            "Timeout of the proxy function.",
            Some(raw(settings.function_timeout_seconds.to_string())),
        ),
        variable(
            "log_retention_days",
            "number",
            "Retention of every log group.",
            Some(raw(settings.log_retention_days.to_string())),
        ),
    ];
    // The programs' paths, after the proxy's.
    let mut programs = Vec::new();
    if stack.pipeline.is_some() {
        programs.push(variable(
            "resizer_package",
            "string",
            "Path of the resizer function's bootstrap.zip (provided.al2023, x86_64).",
            None,
        ));
    }
    if stack.jobs.is_some() {
        programs.extend([
            variable(
                "worker_binary",
                "string",
                "Path of the hybridlab-worker binary built for Amazon Linux 2023 x86_64, which each job's instance runs.",
                None,
            ),
            variable(
                "submit_package",
                "string",
                "Path of the submit function's bootstrap.zip (provided.al2023, x86_64).",
                None,
            ),
            variable(
                "launcher_package",
                "string",
                "Path of the launcher function's bootstrap.zip (provided.al2023, x86_64).",
                None,
            ),
        ]);
    }
    blocks.splice(5..5, programs);
    if identity == Identity::Given {
        blocks.insert(
            3,
            checked_variable(
                TOKEN_VARIABLE,
                "The bearer token the function sends and the server checks (terraform.tfvars has one).",
                true,
                raw(format!("length(var.{TOKEN_VARIABLE}) >= 32")),
                "The token is at least 32 characters, as `up` makes one.",
            ),
        );
    }
    blocks.extend(tls_variables());
    format!(
        "# The server's port ({}) and the instance's TTL ({} s) are written into its user-data at\n# export: `hybridlab export terraform --ttl ...` changes the TTL.\n\n{}",
        settings.server_port,
        settings.ttl_seconds,
        file(&blocks)
    )
}

fn output(name: &str, description: &str, value: Expr) -> Block {
    Block::new(
        "output",
        &[name],
        vec![
            attr("description", string(description)),
            attr("value", value),
        ],
    )
}

fn outputs_tf(stack: &StackDescription) -> String {
    let mut blocks = vec![
        output(
            "stack_id",
            "The stack id (`hybridlab status --stack ...`).",
            raw("local.id"),
        ),
        output(
            "function_name",
            "The proxy function (`aws lambda invoke --function-name ...`).",
            raw("aws_lambda_function.proxy.function_name"),
        ),
        output(
            "server_url",
            "The image server's URL.",
            raw("local.server_url"),
        ),
        output(
            "server_certificate_sha256",
            "The SHA-256 fingerprint of the server's certificate, which the function pins (check it in a browser before signing in to the gallery).",
            raw(format!("var.{CERT_SHA256_VARIABLE}")),
        ),
        output(
            "images_bucket",
            "Where the server stores originals and variants.",
            raw("aws_s3_bucket.images.bucket"),
        ),
        output(
            "artifacts_bucket",
            "Where the server binary and its environment file are.",
            raw("aws_s3_bucket.artifacts.bucket"),
        ),
        output(
            "table",
            "The images' metadata table.",
            raw("aws_dynamodb_table.images.name"),
        ),
        output(
            "instance_id",
            "The image server's instance.",
            raw("aws_instance.server.id"),
        ),
    ];
    if stack.pipeline.is_some() {
        blocks.extend([
            output(
                "uploads_bucket",
                "Where uploads land; new objects under uploads/ run the resizer.",
                raw("aws_s3_bucket.uploads.bucket"),
            ),
            output(
                "processed_bucket",
                "Where the resizer writes the variants.",
                raw("aws_s3_bucket.processed.bucket"),
            ),
            output(
                "resizer_name",
                "The resizer function.",
                raw("aws_lambda_function.resizer.function_name"),
            ),
        ]);
    }
    if stack.jobs.is_some() {
        blocks.extend([
            output(
                "jobs_api_endpoint",
                "The jobs API (POST /jobs, GET /jobs/{id}, GET /jobs with the stack's bearer token).",
                raw("aws_apigatewayv2_api.jobs.api_endpoint"),
            ),
            output(
                "jobs_bucket",
                "Each job's input and outputs.",
                raw("aws_s3_bucket.jobs.bucket"),
            ),
            output(
                "jobs_table",
                "The jobs' rows, whose stream runs the launcher.",
                raw("aws_dynamodb_table.jobs.name"),
            ),
        ]);
    }
    file(&blocks)
}

fn readme(stack: &StackDescription, identity: Identity) -> String {
    let pipeline = stack.pipeline.is_some();
    let jobs = stack.jobs.is_some();
    let (names_note, providers) = match identity {
        Identity::Random => (
            "Names end in a `random_id` (8 hex digits), a valid hybridlab stack id: `hybridlab status` and \
             `hybridlab down --stack <id>` see the stack too.",
            "`hashicorp/aws` and `hashicorp/random`",
        ),
        Identity::Given => (
            "Names end in the variable `stack_id` and the bearer token is the variable `server_token`; \
             `terraform.tfvars` has both, chosen at export (keep it private: it holds the token). \
             `hybridlab status` and `hybridlab down --stack <id>` see the stack too.",
            "`hashicorp/aws` (only)",
        ),
    };
    format!(
        "# hybridlab stack as a Terraform module\n\n\
         Generated by `hybridlab export terraform{flag}`: the same resources `hybridlab up{flag}` creates \
         (buckets with versioning, SSE-S3 and public-access blocks, the table, log groups with retention, \
         least-privilege roles, the security group, the instance with its user-data and TTL, the function{extra}). \
         {names_note}\n\n\
         ## The server's certificate\n\n\
         The function talks to the instance over TLS and trusts only the server's own self-signed certificate, \
         by its SHA-256 fingerprint. `hybridlab export terraform` makes the certificate and its key and writes \
         them, with the fingerprint, to `terraform.tfvars` (readable by you only: it holds the key{token_note}). \
         The output `server_certificate_sha256` is what a browser must show before you sign in to the gallery.\n\n\
         ## Programs\n\n\
         The module uploads the programs, it does not build them. Either export with `--build` (cargo-lambda \
         builds them for Amazon Linux 2023 and `terraform.tfvars` points at them), or set the variables \
         `server_binary`, `proxy_package`{resizer_var} in `terraform.tfvars` yourself.\n\n\
         ## Apply\n\n\
         ```sh\n\
         terraform init\n\
         terraform apply\n\
         aws lambda invoke --function-name \"$(terraform output -raw function_name)\" \\\n  \
         --cli-binary-format raw-in-base64-out --payload '{{\"image_url\":\"https://...\"}}' out.json\n\
         terraform destroy\n\
         ```\n\n\
         `hybridlab up --via terraform` does the same and shows Terraform's progress as `up`'s steps; \
         `hybridlab down --via terraform` destroys.\n\n{jobs_section}\
         ## The hybridlab sandbox\n\n\
         Set `aws_endpoint_url` to the sandbox's endpoint (`hybridlab sandbox status`) and use any \
         credentials (`AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test`).\n\n\
         ## Providers without the registry\n\n\
         `terraform init` needs {providers}. Without access to \
         registry.terraform.io, point Terraform at a local plugin mirror in `~/.terraformrc`:\n\n\
         ```hcl\n\
         provider_installation {{\n  filesystem_mirror {{\n    path    = \"/opt/tf-plugins\"\n    include = [\"registry.terraform.io/hashicorp/*\"]\n  }}\n}}\n\
         ```\n",
        flag = stack.with_flags(),
        extra = [
            pipeline.then_some(
                ", and the pipeline's uploads and processed buckets, resizer function, S3 notification and invoke permission"
            ),
            jobs.then_some(
                ", and the jobs' bucket, table with its stream, submit and launcher functions, the launcher's stream \
                 mapping, the workers' role and instance profile, the worker binary and the HTTP API"
            ),
        ]
        .into_iter()
        .flatten()
        .collect::<String>(),
        resizer_var = [
            pipeline.then_some(", `resizer_package`"),
            jobs.then_some(", `worker_binary`, `submit_package`, `launcher_package`"),
        ]
        .into_iter()
        .flatten()
        .collect::<String>(),
        jobs_section = if jobs {
            "## Jobs\n\n\
             The launcher starts one instance per job; those instances are not Terraform's. Each terminates \
             itself when its job ends, and every one carries the stack's tag and TTL. `terraform destroy` does \
             not see them: `hybridlab down --via terraform` destroys the module and then terminates any worker \
             still running, and `hybridlab down --stack <id>` finds them by tag. Submit a job with \
             `hybridlab job submit FILE --stack <id>` or POST to the output `jobs_api_endpoint` with the stack's \
             bearer token.\n\n"
        } else {
            ""
        },
        token_note = match identity {
            Identity::Random => "",
            Identity::Given => " and the token",
        },
    )
}

/// The module's files for a stack with `settings` (its region and sizes become the
/// variables' defaults), its stack id and token made as `identity` says.
pub fn module(settings: &StackSettings, identity: Identity) -> Vec<ExportFile> {
    let stack = description(settings);
    vec![
        ExportFile::new("main.tf", main_tf(&stack, identity)),
        ExportFile::new("variables.tf", variables_tf(&stack, settings, identity)),
        ExportFile::new("outputs.tf", outputs_tf(&stack)),
        ExportFile::new("README.md", readme(&stack, identity)),
    ]
}

/// The `terraform.tfvars` lines that give an [`Identity::Given`] module its stack id and
/// token.
pub fn identity_tfvars(stack_id: &str, token: &str) -> String {
    let mut out = String::new();
    super::hcl::write_items(
        &mut out,
        &[
            attr("stack_id", string(stack_id)),
            attr(TOKEN_VARIABLE, string(token)),
        ],
    );
    out
}

/// The `terraform.tfvars` lines that give every module the server's certificate, its key
/// and its fingerprint.
pub fn tls_tfvars(secrets: &ServerSecretValues) -> String {
    let mut out = String::new();
    super::hcl::write_items(
        &mut out,
        &[
            attr(TLS_CERTIFICATE_VARIABLE, string(&secrets.tls_certificate)),
            attr(TLS_KEY_VARIABLE, string(&secrets.tls_key)),
            attr(CERT_SHA256_VARIABLE, string(&secrets.cert_sha256)),
        ],
    );
    out
}

/// The value `terraform.tfvars` (as this module writes it) gives `variable`, if any.
fn tfvars_value(text: &str, variable: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == variable)
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|value| !value.is_empty())
    })
}

/// The token an existing `terraform.tfvars` gives, so a module applied again keeps the one
/// its server and function already share.
pub fn token_in_tfvars(text: &str) -> Option<String> {
    tfvars_value(text, TOKEN_VARIABLE)
}

/// The certificate and key (base64 DER) an existing `terraform.tfvars` gives, so a module
/// applied again keeps the certificate its function pins.
pub fn tls_in_tfvars(text: &str) -> Option<(String, String)> {
    Some((
        tfvars_value(text, TLS_CERTIFICATE_VARIABLE)?,
        tfvars_value(text, TLS_KEY_VARIABLE)?,
    ))
}

/// `terraform.tfvars` naming the built programs.
pub fn tfvars(staged: &super::StagedPrograms, endpoint: Option<&str>) -> String {
    let path = |name: &str, path: &std::path::Path| attr(name, string(path.display().to_string()));
    let mut items = vec![
        path("server_binary", &staged.server_binary),
        path("proxy_package", &staged.proxy_package),
    ];
    if let Some(resizer) = &staged.resizer_package {
        items.push(path("resizer_package", resizer));
    }
    if let Some(jobs) = &staged.jobs {
        items.extend([
            path("worker_binary", &jobs.worker_binary),
            path("submit_package", &jobs.submit_package),
            path("launcher_package", &jobs.launcher_package),
        ]);
    }
    if let Some(endpoint) = endpoint {
        items.push(attr("aws_endpoint_url", string(endpoint)));
    }
    let mut out = String::new();
    super::hcl::write_items(&mut out, &items);
    out
}
