//! The stack as one CloudFormation template (JSON), rendered from the [`StackDescription`]
//! with `${StackSuffix}` (a parameter) where a stack id goes. The programs come from a bucket
//! the user fills first (parameters), since a template cannot upload into the buckets it makes.

use serde_json::{Map, Value, json};

use crate::stack::describe::{
    Bucket, EnvValue, Function, Jobs, Program, ROLE_POLICY_NAME, StackDescription, Table,
};
use crate::stack::names::{StackId, StackNames};
use crate::stack::plan::{ServerSecretValues, StackSettings};
use crate::stack::policy::{ArnContext, FETCH_SERVER_ARTIFACTS, FETCH_WORKER};
use hybridlab_wire::tls::TLS_KEY_ENV;
use hybridlab_wire::token::TOKEN_ENV;

const SUFFIX: &str = "${StackSuffix}";
/// The logical id of the secret that holds the server's token and TLS key.
const SERVER_SECRET: &str = "ServerSecret";
/// The parameters `hybridlab export` writes into the parameters file beside the template:
/// the code bucket and the stack's secrets.
pub const CODE_BUCKET_PARAMETER: &str = "CodeBucket";
pub const TOKEN_PARAMETER: &str = "ServerToken";
pub const TLS_CERTIFICATE_PARAMETER: &str = "ServerTlsCertificate";
pub const TLS_KEY_PARAMETER: &str = "ServerTlsKey";
pub const CERT_SHA256_PARAMETER: &str = "ServerCertificateSha256";
/// What the certificate and key parameters may hold: one line of standard base64.
const BASE64_PATTERN: &str = "^[A-Za-z0-9+/]+={0,2}$";
/// A SHA-256 fingerprint as `hybridlab` prints it (`AB:CD:...`) or as plain hex.
const FINGERPRINT_PATTERN: &str = "^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$";
/// The condition that the `InstanceType` parameter is a burstable type.
const BURSTABLE: &str = "BurstableInstance";

/// The description with CloudFormation's pseudo parameters in the ARN context and parameters
/// in place of the stack id and the secrets.
pub fn description(settings: &StackSettings) -> StackDescription {
    let arns = ArnContext {
        partition: "${AWS::Partition}".into(),
        region: "${AWS::Region}".into(),
        account: "${AWS::AccountId}".into(),
    };
    let settings = StackSettings {
        region: "${AWS::Region}".into(),
        ..settings.clone()
    };
    StackDescription::new(
        StackNames::with_suffix(SUFFIX),
        SUFFIX,
        &settings,
        &arns,
        &ServerSecretValues {
            token: format!("${{{TOKEN_PARAMETER}}}"),
            tls_certificate: format!("${{{TLS_CERTIFICATE_PARAMETER}}}"),
            tls_key: format!("${{{TLS_KEY_PARAMETER}}}"),
            cert_sha256: format!("${{{CERT_SHA256_PARAMETER}}}"),
        },
    )
}

/// The parameters file `hybridlab export cloudformation` writes beside the template: the
/// code bucket (when given) and the stack's secrets, as a JSON list of `Key=Value`, which
/// `aws cloudformation deploy --parameter-overrides file://FILE` takes (the CLI reads a
/// `file://` argument and accepts JSON for a list; version 1 takes no `Key=Value` beside a
/// file, hence the code bucket in it). It holds the token and the TLS key: readable by its
/// owner only.
pub fn parameters_text(code_bucket: Option<&str>, secrets: &ServerSecretValues) -> String {
    let mut pairs: Vec<(&str, &str)> = code_bucket
        .map(|bucket| (CODE_BUCKET_PARAMETER, bucket))
        .into_iter()
        .collect();
    pairs.extend([
        (TOKEN_PARAMETER, secrets.token.as_str()),
        (TLS_CERTIFICATE_PARAMETER, secrets.tls_certificate.as_str()),
        (TLS_KEY_PARAMETER, secrets.tls_key.as_str()),
        (CERT_SHA256_PARAMETER, secrets.cert_sha256.as_str()),
    ]);
    let list: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut text = serde_json::to_string_pretty(&list).unwrap_or_default();
    text.push('\n');
    text
}

/// Every string with `${` becomes an `Fn::Sub`, so names, ARNs and scripts take the
/// parameters' and pseudo parameters' values.
fn sub(value: &Value) -> Value {
    match value {
        Value::String(text) if text.contains("${") => json!({"Fn::Sub": text}),
        Value::Array(items) => Value::Array(items.iter().map(sub).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), sub(v))).collect()),
        other => other.clone(),
    }
}

fn text(value: &str) -> Value {
    sub(&Value::String(value.to_owned()))
}

/// A resource's logical id from its purpose, e.g. `ImagesBucket`.
fn bucket_id(bucket: &Bucket, names: &StackNames) -> &'static str {
    match bucket.name.as_str() {
        n if n == names.images_bucket => "ImagesBucket",
        n if n == names.artifacts_bucket => "ArtifactsBucket",
        n if n == names.uploads_bucket => "UploadsBucket",
        n if n == names.jobs_bucket => "JobsBucket",
        _ => "ProcessedBucket",
    }
}

fn log_group_id(name: &str, names: &StackNames) -> &'static str {
    match name {
        n if n == names.function_log_group => "FunctionLogGroup",
        n if n == names.server_log_group => "ServerLogGroup",
        n if n == names.submit_log_group => "SubmitLogGroup",
        n if n == names.launcher_log_group => "LauncherLogGroup",
        _ => "ResizerLogGroup",
    }
}

fn role_id(name: &str, names: &StackNames) -> &'static str {
    match name {
        n if n == names.lambda_role => "LambdaRole",
        n if n == names.server_role => "ServerRole",
        n if n == names.submit_role => "SubmitRole",
        n if n == names.launcher_role => "LauncherRole",
        n if n == names.worker_role => "WorkerRole",
        _ => "ResizerRole",
    }
}

fn function_id(function: &Function) -> &'static str {
    match function.program {
        Program::Proxy => "ProxyFunction",
        Program::Resizer => "ResizerFunction",
        Program::Submit => "SubmitFunction",
        Program::Launcher => "LauncherFunction",
    }
}

/// The parameter with a function's package key in the code bucket, and its default.
fn package_parameter(program: Program) -> (&'static str, &'static str) {
    match program {
        Program::Proxy => ("ProxyPackageKey", "hybridlab/proxy.zip"),
        Program::Resizer => ("ResizerPackageKey", "hybridlab/resizer.zip"),
        Program::Submit => ("SubmitPackageKey", "hybridlab/submit.zip"),
        Program::Launcher => ("LauncherPackageKey", "hybridlab/launcher.zip"),
    }
}

/// The worker binary's key in the code bucket.
const WORKER_BINARY_PARAMETER: &str = "WorkerBinaryKey";

fn table_id(table: &Table, names: &StackNames) -> &'static str {
    if table.name == names.jobs_table {
        "JobsTable"
    } else {
        "ImagesTable"
    }
}

fn table(stack: &StackDescription, table: &Table) -> Value {
    let mut properties = json!({
        "TableName": text(&table.name),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": table.partition_key, "AttributeType": "S"}
        ],
        "KeySchema": [{"AttributeName": table.partition_key, "KeyType": "HASH"}],
        "Tags": tags(stack)
    });
    if let Some(view) = table.stream {
        properties["StreamSpecification"] = json!({"StreamViewType": view});
    }
    json!({
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": properties
    })
}

/// A route's logical id from its key: `POST /jobs` is `JobsRoutePOSTjobs`.
fn route_id(route: &str) -> String {
    let key: String = route.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("JobsRoute{key}")
}

/// The launcher's stream mapping and the HTTP API with its integration, routes, stage and
/// permission.
fn jobs_resources(stack: &StackDescription, jobs: &Jobs, resources: &mut Map<String, Value>) {
    let mapping = &jobs.mapping;
    let api = &jobs.api;
    // API Gateway's tags are a map, not a list.
    let map_tags = json!({ stack.stack_tag.0: text(&stack.stack_tag.1) });
    resources.insert(
        "LauncherMapping".into(),
        json!({
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": {"Fn::GetAtt": ["JobsTable", "StreamArn"]},
                "FunctionName": {"Ref": "LauncherFunction"},
                "StartingPosition": mapping.starting_position,
                "BatchSize": mapping.batch_size,
                "MaximumRetryAttempts": mapping.maximum_retry_attempts,
                "BisectBatchOnFunctionError": mapping.bisect_batch_on_function_error,
                // Inserts, and jobs that ended (which may free a worker's place).
                "FilterCriteria": {
                    "Filters": mapping.filters.iter().map(|pattern| json!({"Pattern": pattern})).collect::<Vec<_>>()
                },
                "Tags": tags(stack)
            }
        }),
    );
    resources.insert(
        "JobsApi".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": text(&api.name),
                "Description": text(&api.description),
                "ProtocolType": "HTTP",
                "Tags": map_tags
            }
        }),
    );
    resources.insert(
        "JobsIntegration".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "JobsApi"},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {"Fn::GetAtt": ["SubmitFunction", "Arn"]},
                "PayloadFormatVersion": api.payload_format_version
            }
        }),
    );
    for route in &api.routes {
        resources.insert(
            route_id(route),
            json!({
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {
                    "ApiId": {"Ref": "JobsApi"},
                    "RouteKey": route,
                    "Target": {"Fn::Sub": "integrations/${JobsIntegration}"}
                }
            }),
        );
    }
    resources.insert(
        "JobsStage".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {
                "ApiId": {"Ref": "JobsApi"},
                "StageName": api.stage,
                "AutoDeploy": true,
                "Tags": map_tags
            }
        }),
    );
    resources.insert(
        "JobsApiPermission".into(),
        json!({
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": "SubmitFunction"},
                "Principal": "apigateway.amazonaws.com",
                // Any stage and route of this API, and nothing else.
                "SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${JobsApi}/*/*"}
            }
        }),
    );
}

fn tags(stack: &StackDescription) -> Value {
    json!([{"Key": stack.stack_tag.0, "Value": text(&stack.stack_tag.1)}])
}

fn bucket(stack: &StackDescription, bucket: &Bucket) -> Value {
    let mut properties = json!({
        "BucketName": text(&bucket.name),
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": true,
            "BlockPublicPolicy": true,
            "IgnorePublicAcls": true,
            "RestrictPublicBuckets": true
        },
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        },
        "Tags": tags(stack)
    });
    if bucket.versioned {
        properties["VersioningConfiguration"] = json!({"Status": "Enabled"});
    }
    if let Some(cors) = &bucket.cors {
        properties["CorsConfiguration"] = json!({
            "CorsRules": [{
                "AllowedMethods": cors.methods,
                "AllowedOrigins": cors.origins,
                "AllowedHeaders": cors.headers,
                "MaxAge": cors.max_age_seconds
            }]
        });
    }
    let mut resource = json!({"Type": "AWS::S3::Bucket", "Properties": properties});
    if let Some(pipeline) = &stack.pipeline
        && pipeline.trigger.bucket == bucket.name
    {
        let trigger = &pipeline.trigger;
        resource["Properties"]["NotificationConfiguration"] = json!({
            "LambdaConfigurations": [{
                "Event": trigger.event,
                "Function": {"Fn::GetAtt": ["ResizerFunction", "Arn"]},
                "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": trigger.prefix}]}}
            }]
        });
        // S3 checks that it may invoke the function when the notification is set.
        resource["DependsOn"] = json!(["UploadsPermission"]);
    }
    resource
}

/// The server's URL: TLS on the instance's public address.
fn server_url(stack: &StackDescription) -> String {
    format!(
        "https://${{ServerInstance.PublicIp}}:{}",
        stack.security_group.port
    )
}

fn function(stack: &StackDescription, function: &Function) -> Value {
    let names = &stack.names;
    let variables: Map<String, Value> = function
        .environment
        .iter()
        .map(|(key, value)| {
            let value = match value {
                EnvValue::Literal(value) => text(value),
                EnvValue::ServerUrl => json!({"Fn::Sub": server_url(stack)}),
                EnvValue::Token => json!({"Ref": TOKEN_PARAMETER}),
                EnvValue::CertSha256 => json!({"Ref": CERT_SHA256_PARAMETER}),
                EnvValue::InstanceType => json!({"Ref": "InstanceType"}),
                EnvValue::WorkerImage => json!({"Ref": "ImageId"}),
                EnvValue::WorkerProfileArn => {
                    json!({"Fn::GetAtt": ["WorkerInstanceProfile", "Arn"]})
                }
                // A template cannot upload into a bucket it makes: the worker comes from the
                // code bucket, as the server does.
                EnvValue::WorkerBucket => json!({"Ref": CODE_BUCKET_PARAMETER}),
                EnvValue::WorkerKey => json!({"Ref": WORKER_BINARY_PARAMETER}),
            };
            ((*key).to_owned(), value)
        })
        .collect();
    let (key, _) = package_parameter(function.program);
    json!({
        "Type": "AWS::Lambda::Function",
        // The log group exists (with its retention) before Lambda would make its own.
        "DependsOn": [log_group_id(&function.log_group, names)],
        "Properties": {
            "FunctionName": text(&function.name),
            "Description": text(&function.description),
            "Role": {"Fn::GetAtt": [role_id(&function.role, names), "Arn"]},
            "Runtime": "provided.al2023",
            "Architectures": ["x86_64"],
            "Handler": "bootstrap",
            "MemorySize": function.memory_mb,
            "Timeout": function.timeout_seconds,
            "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": key}},
            "Environment": {"Variables": variables},
            "Tags": tags(stack)
        }
    })
}

/// The template for a stack with `settings`; `suffix` is the default of the `StackSuffix`
/// parameter (a fresh stack id at export).
pub fn template(settings: &StackSettings, suffix: &StackId) -> Value {
    let stack = description(settings);
    let names = &stack.names;
    let mut resources = Map::new();
    for b in stack.buckets() {
        resources.insert(bucket_id(b, names).into(), bucket(&stack, b));
    }
    for t in stack.tables() {
        resources.insert(table_id(t, names).into(), table(&stack, t));
    }
    for group in stack.log_groups() {
        resources.insert(
            log_group_id(&group.name, names).into(),
            json!({
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "LogGroupName": text(&group.name),
                    "RetentionInDays": group.retention_days,
                    "Tags": tags(&stack)
                }
            }),
        );
    }
    for role in stack.roles() {
        let mut policy = role.policy.clone();
        if role.name == names.server_role
            && let Some(statements) = policy["Statement"].as_array_mut()
        {
            // CloudFormation cannot put the binary into the stack's artifacts bucket, so the
            // instance fetches it from the code bucket: that one object, nothing else; and
            // nothing of the artifacts bucket, which it does not read.
            statements.retain(|statement| statement["Sid"] != FETCH_SERVER_ARTIFACTS);
            statements.push(json!({
                "Sid": "FetchServerBinary",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:${AWS::Partition}:s3:::${CodeBucket}/${ServerBinaryKey}"]
            }));
            // The token and the TLS key come from their secret at boot, not from the
            // user-data (see below).
            statements.push(json!({
                "Sid": "ReadServerSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [{"Ref": SERVER_SECRET}]
            }));
        }
        if role.name == names.worker_role
            && let Some(statements) = policy["Statement"].as_array_mut()
        {
            // The worker binary, like the server's, is in the code bucket.
            for statement in statements.iter_mut() {
                if statement["Sid"] == FETCH_WORKER {
                    statement["Resource"] = json!([format!(
                        "arn:${{AWS::Partition}}:s3:::${{{CODE_BUCKET_PARAMETER}}}/${{{WORKER_BINARY_PARAMETER}}}"
                    )]);
                }
            }
        }
        resources.insert(
            role_id(&role.name, names).into(),
            json!({
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": text(&role.name),
                    "Path": role.path,
                    "AssumeRolePolicyDocument": role.trust,
                    "Policies": [{"PolicyName": ROLE_POLICY_NAME, "PolicyDocument": sub(&policy)}],
                    "Tags": tags(&stack)
                }
            }),
        );
    }
    for profile in stack.instance_profiles() {
        let role = role_id(&profile.role, names);
        resources.insert(
            format!("{}InstanceProfile", role.trim_end_matches("Role")),
            json!({
                "Type": "AWS::IAM::InstanceProfile",
                "Properties": {
                    "InstanceProfileName": text(&profile.name),
                    "Path": stack.server_role.path,
                    "Roles": [{"Ref": role}]
                }
            }),
        );
    }
    let sg = &stack.security_group;
    resources.insert(
        "ServerSecurityGroup".into(),
        json!({
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupName": text(&sg.name),
                "GroupDescription": text(&sg.description),
                "SecurityGroupIngress": [{
                    "Description": "hybridlab image server",
                    "IpProtocol": "tcp",
                    "FromPort": sg.port,
                    "ToPort": sg.port,
                    "CidrIp": {"Ref": "IngressCidr"}
                }],
                "Tags": tags(&stack)
            }
        }),
    );
    let launch = hybridlab_wire::launch::ServerLaunch {
        artifact_bucket: "${CodeBucket}".into(),
        binary_key: "${ServerBinaryKey}".into(),
        ..stack.instance.launch.clone()
    };
    // User-data is readable by any process on the instance through the metadata service, so
    // it carries the environment file without the token and the TLS key; they are a Secrets
    // Manager secret only the server's role may read, appended at boot to the 0600 file.
    let secret_names = [TOKEN_ENV, TLS_KEY_ENV];
    let (secret_lines, public_lines): (Vec<&str>, Vec<&str>) =
        stack.server_artifacts.env_file.lines().partition(|line| {
            secret_names
                .iter()
                .any(|name| line.starts_with(&format!("{name}=")))
        });
    let as_file =
        |lines: Vec<&str>| -> String { lines.iter().map(|line| format!("{line}\n")).collect() };
    let secret = format!("${{{SERVER_SECRET}}}");
    let user_data = launch.render_with_env(&as_file(public_lines), &[&secret]);
    let secret_string = as_file(secret_lines);
    resources.insert(
        SERVER_SECRET.into(),
        json!({
            "Type": "AWS::SecretsManager::Secret",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "Description": text(&format!("hybridlab stack {SUFFIX}: the image server's bearer token and TLS key")),
                "SecretString": text(&secret_string),
                "Tags": tags(&stack)
            }
        }),
    );
    let mut instance_tags = tags(&stack);
    if let Some(list) = instance_tags.as_array_mut() {
        list.extend(
            stack
                .instance
                .extra_tags
                .iter()
                .map(|(key, value)| json!({"Key": key, "Value": text(value)})),
        );
    }
    resources.insert(
        "ServerInstance".into(),
        json!({
            "Type": "AWS::EC2::Instance",
            "DependsOn": ["ServerLogGroup"],
            "Properties": {
                "ImageId": {"Ref": "ImageId"},
                "InstanceType": {"Ref": "InstanceType"},
                "IamInstanceProfile": {"Ref": "ServerInstanceProfile"},
                "SecurityGroupIds": [{"Fn::GetAtt": ["ServerSecurityGroup", "GroupId"]}],
                // The instance shuts itself down when its TTL ends; shutting down terminates it.
                "InstanceInitiatedShutdownBehavior": "terminate",
                // Without one a T3 runs `unlimited`; EC2 refuses one for other types.
                "CreditSpecification": {"Fn::If": [
                    BURSTABLE,
                    {"CPUCredits": {"Ref": "CpuCredits"}},
                    {"Ref": "AWS::NoValue"}
                ]},
                "MetadataOptions": {
                    "HttpEndpoint": "enabled",
                    "HttpTokens": "required",
                    "HttpPutResponseHopLimit": 1
                },
                "UserData": {"Fn::Base64": text(&user_data)},
                "Tags": instance_tags
            }
        }),
    );
    for f in stack.functions() {
        resources.insert(function_id(f).into(), function(&stack, f));
    }
    if let Some(jobs) = &stack.jobs {
        jobs_resources(&stack, jobs, &mut resources);
    }
    if let Some(pipeline) = &stack.pipeline {
        let trigger = &pipeline.trigger;
        resources.insert(
            "UploadsPermission".into(),
            json!({
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Ref": "ResizerFunction"},
                    "Principal": "s3.amazonaws.com",
                    // The name, not a reference: the bucket's notification needs this first.
                    "SourceArn": text(&format!("arn:${{AWS::Partition}}:s3:::{}", trigger.bucket)),
                    // A deleted bucket's name can pass to another account: the account pins it.
                    "SourceAccount": {"Ref": "AWS::AccountId"}
                }
            }),
        );
    }

    let mut outputs = json!({
        "StackId": {"Description": "The stack id (`hybridlab status --stack ...`)", "Value": {"Ref": "StackSuffix"}},
        "FunctionName": {"Description": "The proxy function", "Value": {"Ref": "ProxyFunction"}},
        "ServerUrl": {"Description": "The image server's URL", "Value": {"Fn::Sub": server_url(&stack)}},
        "ServerCertificateSha256": {"Description": "The SHA-256 fingerprint of the server's certificate, which the function pins (check it in a browser before signing in to the gallery)", "Value": {"Ref": CERT_SHA256_PARAMETER}},
        "ImagesBucket": {"Description": "Originals and variants", "Value": {"Ref": "ImagesBucket"}},
        "ArtifactsBucket": {"Description": "The stack's artifacts bucket", "Value": {"Ref": "ArtifactsBucket"}},
        "Table": {"Description": "The images' metadata table", "Value": {"Ref": "ImagesTable"}},
        "InstanceId": {"Description": "The image server's instance", "Value": {"Ref": "ServerInstance"}}
    });
    let mut parameters = json!({
        "StackSuffix": {
            "Type": "String",
            "Description": "The stack id every name ends in: 4 to 16 lowercase letters and digits",
            "Default": suffix.as_str(),
            "AllowedPattern": "^[a-z0-9]{4,16}$"
        },
        CODE_BUCKET_PARAMETER: {
            "Type": "String",
            "Description": "An existing bucket in this region holding the programs (see the template's Description)"
        },
        "ServerBinaryKey": {
            "Type": "String",
            "Default": "hybridlab/hybridlab-ec2-server",
            "Description": "Key of hybridlab-ec2-server (Amazon Linux 2023 x86_64) in CodeBucket"
        },
        "ProxyPackageKey": {
            "Type": "String",
            "Default": package_parameter(Program::Proxy).1,
            "Description": "Key of the proxy function's bootstrap.zip in CodeBucket"
        },
        TOKEN_PARAMETER: {
            "Type": "String",
            "NoEcho": true,
            "MinLength": 32,
            "AllowedPattern": "^[A-Za-z0-9]+$",
            "Description": "The bearer token the function sends and the server checks (the parameters file `hybridlab export cloudformation` writes has one)"
        },
        // The patterns also keep a value from adding lines to the server's environment file.
        TLS_CERTIFICATE_PARAMETER: {
            "Type": "String",
            "AllowedPattern": BASE64_PATTERN,
            "Description": "The image server's self-signed certificate, base64 of its DER (in the parameters file)"
        },
        TLS_KEY_PARAMETER: {
            "Type": "String",
            "NoEcho": true,
            "AllowedPattern": BASE64_PATTERN,
            "Description": "The certificate's private key, base64 of its PKCS #8 DER (in the parameters file)"
        },
        CERT_SHA256_PARAMETER: {
            "Type": "String",
            "AllowedPattern": FINGERPRINT_PATTERN,
            "Description": "The certificate's SHA-256 fingerprint, which the function pins (in the parameters file)"
        },
        "InstanceType": {
            "Type": "String",
            "Default": settings.instance_type,
            "Description": "EC2 instance type of the image server"
        },
        "CpuCredits": {
            "Type": "String",
            "Default": stack.instance.cpu_credits.as_str(),
            "AllowedValues": ["standard", "unlimited"],
            "Description": "CPU credits of a burstable (T family) instance: standard is throttled at the baseline and never billed extra; unlimited bills surplus credits"
        },
        "IngressCidr": {
            "Type": "String",
            "Default": settings.ingress_cidr,
            "Description": "Who may reach the server port (the function calls the public address; the token guards the server)"
        },
        "ImageId": {
            "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            "Default": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            "Description": "The latest Amazon Linux 2023 x86_64 image"
        }
    });
    if stack.pipeline.is_some() {
        parameters["ResizerPackageKey"] = json!({
            "Type": "String",
            "Default": package_parameter(Program::Resizer).1,
            "Description": "Key of the resizer function's bootstrap.zip in CodeBucket"
        });
        outputs["UploadsBucket"] = json!({"Description": "Uploads; new objects under uploads/ run the resizer", "Value": {"Ref": "UploadsBucket"}});
        outputs["ProcessedBucket"] =
            json!({"Description": "The resizer's variants", "Value": {"Ref": "ProcessedBucket"}});
        outputs["ResizerName"] =
            json!({"Description": "The resizer function", "Value": {"Ref": "ResizerFunction"}});
    }
    if let Some(jobs) = &stack.jobs {
        parameters[WORKER_BINARY_PARAMETER] = json!({
            "Type": "String",
            "Default": "hybridlab/hybridlab-worker",
            "Description": "Key of hybridlab-worker (Amazon Linux 2023 x86_64), which each job's instance runs, in CodeBucket"
        });
        for function in [&jobs.submit, &jobs.launcher] {
            let (key, default) = package_parameter(function.program);
            parameters[key] = json!({
                "Type": "String",
                "Default": default,
                "Description": format!("Key of the {} function's bootstrap.zip in CodeBucket", function_label(function.program))
            });
        }
        outputs["JobsApiEndpoint"] = json!({"Description": "The jobs API (POST /jobs, GET /jobs/{id}, GET /jobs with the stack's bearer token)", "Value": {"Fn::GetAtt": ["JobsApi", "ApiEndpoint"]}});
        outputs["JobsBucket"] =
            json!({"Description": "Each job's input and outputs", "Value": {"Ref": "JobsBucket"}});
        outputs["JobsTable"] = json!({"Description": "The jobs' rows, whose stream runs the launcher", "Value": {"Ref": "JobsTable"}});
    }
    // A burstable type's family is what comes before the dot: t2, t3, t3a, t4g.
    let family = json!({"Fn::Select": [0, {"Fn::Split": [".", {"Ref": "InstanceType"}]}]});
    let families: Vec<Value> = ["t2", "t3", "t3a", "t4g"]
        .iter()
        .map(|name| json!({"Fn::Equals": [family, name]}))
        .collect();
    let conditions = json!({ BURSTABLE: {"Fn::Or": families} });
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": description_text(&stack),
        "Parameters": parameters,
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": outputs
    })
}

/// A program's name in the template's texts.
fn function_label(program: Program) -> &'static str {
    match program {
        Program::Proxy => "proxy",
        Program::Resizer => "resizer",
        Program::Submit => "submit",
        Program::Launcher => "launcher",
    }
}

/// The template's description: what to copy where, and how to deploy (CloudFormation takes
/// at most 1,024 bytes here).
fn description_text(stack: &StackDescription) -> String {
    let mut files = vec!["hybridlab-ec2-server".to_owned()];
    files.extend(
        stack
            .functions()
            .iter()
            .map(|f| format!("{}.zip", function_label(f.program))),
    );
    if stack.jobs.is_some() {
        files.push("hybridlab-worker".to_owned());
    }
    let jobs_note = if stack.jobs.is_some() {
        " Job workers are the launcher's, not the template's: each terminates itself, and \
         `hybridlab down --stack STACK_SUFFIX` terminates any still running."
    } else {
        ""
    };
    format!(
        "The hybridlab stack{}, as `hybridlab up{}` creates it (generated by `hybridlab export cloudformation`). \
         First copy the programs to the code bucket: aws s3 cp FILE s3://CODE_BUCKET/hybridlab/FILE for {}. \
         Then: aws cloudformation deploy --template-file hybridlab.json --stack-name hybridlab \
         --capabilities CAPABILITY_NAMED_IAM --parameter-overrides file://hybridlab.parameters.json \
         (written by `hybridlab export cloudformation --code-bucket CODE_BUCKET`; it holds the token and the TLS key: \
         keep it private). Empty the buckets before deleting the stack.{jobs_note}",
        stack.variant_words(),
        stack.with_flags(),
        files.join(", "),
    )
}

/// The template as the file `hybridlab export cloudformation` writes.
pub fn template_text(settings: &StackSettings, suffix: &StackId) -> String {
    let mut text = serde_json::to_string_pretty(&template(settings, suffix)).unwrap_or_default();
    text.push('\n');
    text
}
