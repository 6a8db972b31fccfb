//! The exports against the plan: the same resources, named alike, with the same settings.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{cloudformation, terraform};
use crate::stack::names::StackId;
use crate::stack::plan::{StackSettings, plan};

const ID: &str = "abcd1234";

/// Which variants a stack has.
#[derive(Debug, Clone, Copy)]
struct Shape {
    pipeline: bool,
    jobs: bool,
}

const PLAIN: Shape = Shape {
    pipeline: false,
    jobs: false,
};
const PIPELINE: Shape = Shape {
    pipeline: true,
    jobs: false,
};
const JOBS: Shape = Shape {
    pipeline: false,
    jobs: true,
};
const ALL: Shape = Shape {
    pipeline: true,
    jobs: true,
};
const SHAPES: [Shape; 4] = [PLAIN, PIPELINE, JOBS, ALL];

fn settings(shape: Shape) -> StackSettings {
    StackSettings {
        pipeline: shape.pipeline,
        jobs: shape.jobs,
        ..StackSettings::new("eu-west-1")
    }
}

/// `(kind, name)` of every AWS resource the plan lists, for stack [`ID`].
fn planned(shape: Shape) -> BTreeSet<(String, String)> {
    let id = StackId::parse(ID).expect("valid");
    plan(&id, &settings(shape))
        .into_iter()
        .filter(|r| !r.kind.is_empty())
        .map(|r| (r.kind.to_owned(), r.name))
        .collect()
}

/// One top-level `resource "type" "label" { ... }` of a rendered module, with its one-line
/// attributes (`key = value`, unquoted) at the first level.
#[derive(Debug)]
struct TfResource {
    kind: String,
    label: String,
    body: String,
}

impl TfResource {
    fn attr(&self, key: &str) -> Option<String> {
        self.body.lines().find_map(|line| {
            let line = line.strip_prefix("  ")?;
            if line.starts_with(' ') {
                return None;
            }
            let (name, value) = line.split_once('=')?;
            (name.trim() == key).then(|| value.trim().trim_matches('"').to_owned())
        })
    }
}

fn tf_resources(main: &str) -> Vec<TfResource> {
    let mut resources = Vec::new();
    let mut lines = main.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("resource \"") else {
            continue;
        };
        let mut parts = rest.split('"');
        let kind = parts.next().unwrap_or_default().to_owned();
        let label = parts.nth(1).unwrap_or_default().to_owned();
        let body: Vec<&str> = lines.by_ref().take_while(|line| *line != "}").collect();
        resources.push(TfResource {
            kind,
            label,
            body: body.join("\n"),
        });
    }
    resources
}

fn module_file(shape: Shape, name: &str) -> String {
    terraform::module(&settings(shape), terraform::Identity::Random)
        .into_iter()
        .find(|file| file.name == name)
        .map(|file| file.text)
        .unwrap_or_else(|| panic!("{name} is exported"))
}

/// The Terraform module's resources in the plan's terms, its `${local.id}` read as [`ID`].
fn terraform_declares(shape: Shape) -> BTreeSet<(String, String)> {
    let main = module_file(shape, "main.tf").replace("${local.id}", ID);
    let resources = tf_resources(&main);
    let bucket_of = |reference: &str| {
        let label = reference
            .trim_start_matches("aws_s3_bucket.")
            .trim_end_matches(".id");
        resources
            .iter()
            .find(|r| r.kind == "aws_s3_bucket" && r.label == label)
            .and_then(|r| r.attr("bucket"))
            .unwrap_or_else(|| panic!("bucket {reference}"))
    };
    let profiles: Vec<String> = resources
        .iter()
        .filter(|r| r.kind == "aws_iam_instance_profile")
        .filter_map(|r| r.attr("name"))
        .collect();
    let mut declared = BTreeSet::new();
    for resource in &resources {
        let entry = match resource.kind.as_str() {
            "aws_s3_bucket" => Some(("s3:bucket", resource.attr("bucket"))),
            "aws_dynamodb_table" => Some(("dynamodb:table", resource.attr("name"))),
            "aws_cloudwatch_log_group" => Some(("logs:log-group", resource.attr("name"))),
            "aws_iam_role" => {
                let name = resource.attr("name").expect("a role name");
                if profiles.contains(&name) {
                    Some(("iam:role+instance-profile", Some(name)))
                } else {
                    Some(("iam:role", Some(name)))
                }
            }
            "aws_security_group" => Some(("ec2:security-group", resource.attr("name"))),
            "aws_s3_object" if resource.label != "server_env" => Some((
                "s3:object",
                Some(format!(
                    "s3://{}/{}",
                    bucket_of(&resource.attr("bucket").expect("a bucket")),
                    resource.attr("key").expect("a key")
                )),
            )),
            "aws_instance" => {
                let name = resource
                    .body
                    .lines()
                    .find_map(|line| line.trim().strip_prefix("Name"))
                    .map(|rest| rest.trim().trim_start_matches('=').trim().trim_matches('"'))
                    .expect("a Name tag")
                    .to_owned();
                Some(("ec2:instance", Some(name)))
            }
            "aws_lambda_function" => Some(("lambda:function", resource.attr("function_name"))),
            "aws_lambda_event_source_mapping" => {
                let reference = resource.attr("function_name").expect("a function");
                let label = reference
                    .trim_start_matches("aws_lambda_function.")
                    .trim_end_matches(".arn");
                let function = resources
                    .iter()
                    .find(|r| r.kind == "aws_lambda_function" && r.label == label)
                    .and_then(|r| r.attr("function_name"));
                Some(("lambda:event-source-mapping", function))
            }
            "aws_apigatewayv2_api" => Some(("apigateway:http-api", resource.attr("name"))),
            "aws_s3_bucket_notification" => Some((
                "s3:notification",
                Some(bucket_of(&resource.attr("bucket").expect("a bucket"))),
            )),
            _ => None,
        };
        if let Some((kind, name)) = entry {
            declared.insert((kind.to_owned(), name.expect("a name")));
        }
    }
    declared
}

fn cfn_template(shape: Shape) -> Value {
    let text = cloudformation::template_text(&settings(shape), &StackId::parse(ID).expect("valid"))
        .replace("${StackSuffix}", ID);
    serde_json::from_str(&text).expect("the template is JSON")
}

/// A property that is a string or an `Fn::Sub` of one.
fn cfn_string(value: &Value) -> String {
    value
        .as_str()
        .or_else(|| value["Fn::Sub"].as_str())
        .unwrap_or_else(|| panic!("a string: {value}"))
        .to_owned()
}

/// The template's resources in the plan's terms. The server binary is no resource of the
/// template (it names the binary's S3 location in parameters), so `s3:object` is left out.
fn cloudformation_declares(shape: Shape) -> BTreeSet<(String, String)> {
    let template = cfn_template(shape);
    let resources = template["Resources"].as_object().expect("resources");
    let profile_roles: Vec<String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::IAM::InstanceProfile")
        .flat_map(|r| {
            r["Properties"]["Roles"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|role| role["Ref"].as_str().map(str::to_owned))
        .collect();
    let mut declared = BTreeSet::new();
    for (id, resource) in resources {
        let p = &resource["Properties"];
        let entry = match resource["Type"].as_str().unwrap_or_default() {
            "AWS::S3::Bucket" => {
                if p.get("NotificationConfiguration").is_some() {
                    declared.insert(("s3:notification".to_owned(), cfn_string(&p["BucketName"])));
                }
                Some(("s3:bucket", cfn_string(&p["BucketName"])))
            }
            "AWS::DynamoDB::Table" => Some(("dynamodb:table", cfn_string(&p["TableName"]))),
            "AWS::Logs::LogGroup" => Some(("logs:log-group", cfn_string(&p["LogGroupName"]))),
            "AWS::IAM::Role" if profile_roles.contains(id) => {
                Some(("iam:role+instance-profile", cfn_string(&p["RoleName"])))
            }
            "AWS::IAM::Role" => Some(("iam:role", cfn_string(&p["RoleName"]))),
            "AWS::EC2::SecurityGroup" => Some(("ec2:security-group", cfn_string(&p["GroupName"]))),
            "AWS::EC2::Instance" => {
                let name = p["Tags"]
                    .as_array()
                    .expect("tags")
                    .iter()
                    .find(|tag| tag["Key"] == "Name")
                    .map(|tag| cfn_string(&tag["Value"]))
                    .expect("a Name tag");
                Some(("ec2:instance", name))
            }
            "AWS::Lambda::Function" => Some(("lambda:function", cfn_string(&p["FunctionName"]))),
            "AWS::Lambda::EventSourceMapping" => {
                let function = p["FunctionName"]["Ref"].as_str().expect("a function's Ref");
                Some((
                    "lambda:event-source-mapping",
                    cfn_string(&resources[function]["Properties"]["FunctionName"]),
                ))
            }
            "AWS::ApiGatewayV2::Api" => Some(("apigateway:http-api", cfn_string(&p["Name"]))),
            _ => None,
        };
        if let Some((kind, name)) = entry {
            declared.insert((kind.to_owned(), name));
        }
    }
    declared
}

#[test]
fn the_plan_terraform_and_cloudformation_declare_the_same_resources() {
    for shape in SHAPES {
        let planned = planned(shape);
        assert_eq!(terraform_declares(shape), planned, "Terraform, {shape:?}");
        let without_object: BTreeSet<_> = planned
            .iter()
            .filter(|(kind, _)| kind != "s3:object")
            .cloned()
            .collect();
        assert_eq!(
            cloudformation_declares(shape),
            without_object,
            "CloudFormation, {shape:?}"
        );
    }
}

#[test]
fn pipeline_resources_appear_only_with_the_pipeline() {
    let plain = module_file(PLAIN, "main.tf");
    let with = module_file(PIPELINE, "main.tf");
    for marker in [
        "aws_lambda_permission",
        "aws_s3_bucket_notification",
        "hybridlab-uploads-",
        "hybridlab-resizer-",
        "aws_s3_bucket_cors_configuration",
    ] {
        assert!(!plain.contains(marker), "{marker} without the pipeline");
        assert!(with.contains(marker), "{marker} missing with the pipeline");
    }
    let plain = cfn_template(PLAIN).to_string();
    let with = cfn_template(PIPELINE);
    assert!(!plain.contains("ResizerFunction") && !plain.contains("UploadsPermission"));
    let permission = &with["Resources"]["UploadsPermission"]["Properties"];
    assert_eq!(permission["Principal"], "s3.amazonaws.com");
    assert_eq!(permission["SourceAccount"]["Ref"], "AWS::AccountId");
    let notification =
        &with["Resources"]["UploadsBucket"]["Properties"]["NotificationConfiguration"];
    assert_eq!(
        notification["LambdaConfigurations"][0]["Filter"]["S3Key"]["Rules"][0]["Value"],
        "uploads/"
    );
    assert!(with["Resources"]["UploadsBucket"]["Properties"]["CorsConfiguration"].is_object());
}

#[test]
fn every_bucket_is_private_encrypted_and_versioned_as_up_makes_it() {
    for shape in SHAPES {
        let main = module_file(shape, "main.tf");
        let resources = tf_resources(&main);
        let buckets: Vec<&str> = resources
            .iter()
            .filter(|r| r.kind == "aws_s3_bucket")
            .map(|r| r.label.as_str())
            .collect();
        assert_eq!(
            buckets.len(),
            2 + 2 * usize::from(shape.pipeline) + usize::from(shape.jobs)
        );
        for label in &buckets {
            for kind in [
                "aws_s3_bucket_public_access_block",
                "aws_s3_bucket_server_side_encryption_configuration",
            ] {
                assert!(
                    resources
                        .iter()
                        .any(|r| r.kind == kind && r.label == *label),
                    "{kind} for {label}"
                );
            }
            // As `up`: every bucket but the artifacts and jobs ones keeps versions.
            let versioned = resources
                .iter()
                .any(|r| r.kind == "aws_s3_bucket_versioning" && r.label == *label);
            assert_eq!(versioned, !["artifacts", "jobs"].contains(label), "{label}");
        }
        let template = cfn_template(shape);
        for (id, resource) in template["Resources"].as_object().expect("resources") {
            if resource["Type"] != "AWS::S3::Bucket" {
                continue;
            }
            let p = &resource["Properties"];
            assert_eq!(
                p["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"],
                true
            );
            assert_eq!(
                p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
                    ["SSEAlgorithm"],
                "AES256"
            );
            assert_eq!(
                p.get("VersioningConfiguration").is_some(),
                !["ArtifactsBucket", "JobsBucket"].contains(&id.as_str()),
                "{id}"
            );
        }
    }
}

/// Every string of a JSON value.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(map) => map.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn no_exported_policy_grants_a_wildcard_action_or_foreign_resource() {
    for shape in SHAPES {
        for stack in [
            terraform::description(&settings(shape)),
            cloudformation::description(&settings(shape)),
        ] {
            for role in stack.roles() {
                for statement in role.policy["Statement"].as_array().expect("statements") {
                    for action in strings(&statement["Action"]) {
                        assert!(!action.contains('*'), "{}: {action}", role.name);
                    }
                    // Two exceptions, both the launcher's: ListStreams takes no resource, and
                    // RunInstances touches what is not the stack's (the AMI, the default
                    // subnet and group, the new volume and interface) while the instance
                    // itself must carry the stack's tag (policy.rs holds those conditions).
                    let launch_time = statement["Sid"] == crate::stack::policy::LIST_STREAMS
                        || statement["Sid"] == "LaunchWith"
                        || statement.get("Condition").is_some();
                    if launch_time {
                        assert_eq!(role.name, stack.names.launcher_role, "{statement}");
                        continue;
                    }
                    for resource in strings(&statement["Resource"]) {
                        assert!(resource.starts_with("arn:${"), "{resource}");
                        assert!(
                            resource.contains("${local.id}") || resource.contains("${StackSuffix}"),
                            "{resource} is not the stack's own"
                        );
                    }
                }
            }
        }
        // The template's one extra statement names one object of the code bucket.
        let template = cfn_template(shape);
        let server = &template["Resources"]["ServerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
            ["Statement"];
        let fetch = server
            .as_array()
            .expect("statements")
            .iter()
            .find(|s| s["Sid"] == "FetchServerBinary")
            .expect("the code bucket statement");
        assert_eq!(
            fetch["Resource"][0]["Fn::Sub"],
            "arn:${AWS::Partition}:s3:::${CodeBucket}/${ServerBinaryKey}"
        );
    }
}

#[test]
fn names_use_the_suffix_and_outputs_name_what_students_need() {
    let main = module_file(ALL, "main.tf");
    assert!(main.contains("resource \"random_id\" \"stack\""));
    assert!(main.contains("\"hybridlab-images-${local.id}\""));
    assert!(main.contains("\"/hybridlab/${local.id}/ec2-server\""));
    assert!(main.contains("http_tokens                 = \"required\""));
    assert!(main.contains("instance_initiated_shutdown_behavior = \"terminate\""));
    assert!(
        main.contains("systemctl enable --now hybridlab-ttl.timer")
            && main.contains("'+7200 seconds'"),
        "the TTL is in the user-data"
    );
    let outputs = module_file(ALL, "outputs.tf");
    for output in [
        "function_name",
        "server_url",
        "images_bucket",
        "artifacts_bucket",
        "table",
        "uploads_bucket",
        "processed_bucket",
    ] {
        assert!(
            outputs.contains(&format!("output \"{output}\"")),
            "{output}"
        );
    }
    assert!(!module_file(PLAIN, "outputs.tf").contains("uploads_bucket"));
    let variables = module_file(ALL, "variables.tf");
    for variable in [
        "aws_endpoint_url",
        "server_binary",
        "proxy_package",
        "resizer_package",
        "stack_id",
    ] {
        assert!(
            variables.contains(&format!("variable \"{variable}\"")),
            "{variable}"
        );
    }
    let template = cfn_template(ALL);
    for output in [
        "FunctionName",
        "ServerUrl",
        "ImagesBucket",
        "Table",
        "UploadsBucket",
        "ProcessedBucket",
    ] {
        assert!(template["Outputs"][output].is_object(), "{output}");
    }
    assert_eq!(template["Parameters"]["StackSuffix"]["Default"], ID);
    // The instance's script names the stack's own resources.
    let user_data = cfn_string(
        &template["Resources"]["ServerInstance"]["Properties"]["UserData"]["Fn::Base64"],
    );
    assert!(user_data.contains(&format!("HYBRIDLAB_BUCKET=hybridlab-images-{ID}")));
}

#[test]
fn the_cloudformation_user_data_carries_no_secret_and_the_role_reads_only_its_secret() {
    for shape in SHAPES {
        let template = cfn_template(shape);
        let resources = &template["Resources"];
        let user_data =
            cfn_string(&resources["ServerInstance"]["Properties"]["UserData"]["Fn::Base64"]);
        // Neither the parameters nor their lines are written into the script.
        for secret in ["${ServerToken}", "${ServerTlsKey}"] {
            assert!(!user_data.contains(secret), "{user_data}");
        }
        assert!(!user_data.contains("\nHYBRIDLAB_TOKEN="), "{user_data}");
        assert!(!user_data.contains("\nHYBRIDLAB_TLS_KEY="), "{user_data}");
        // The certificate is public: it is in the script.
        assert!(
            user_data.contains("\nHYBRIDLAB_TLS_CERT=${ServerTlsCertificate}\n"),
            "{user_data}"
        );
        assert!(
            user_data.contains("--secret-id '${ServerSecret}'"),
            "{user_data}"
        );
        assert!(user_data.contains("(umask 077 && cat > \"$root/etc/hybridlab/server.env\")"));
        let secret = &resources["ServerSecret"];
        assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
        assert_eq!(
            cfn_string(&secret["Properties"]["SecretString"]),
            "HYBRIDLAB_TOKEN=${ServerToken}\nHYBRIDLAB_TLS_KEY=${ServerTlsKey}\n"
        );
        let statements =
            resources["ServerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                .as_array()
                .expect("statements");
        let reads: Vec<&Value> = statements
            .iter()
            .filter(|s| {
                strings(&s["Action"])
                    .iter()
                    .any(|a| a.starts_with("secretsmanager:"))
            })
            .collect();
        assert_eq!(reads.len(), 1, "{reads:?}");
        assert_eq!(
            strings(&reads[0]["Action"]),
            vec!["secretsmanager:GetSecretValue"]
        );
        assert_eq!(
            reads[0]["Resource"],
            serde_json::json!([{"Ref": "ServerSecret"}])
        );
        // No other role may read it.
        for role in ["LambdaRole", "ResizerRole"] {
            assert!(
                !resources[role].to_string().contains("secretsmanager"),
                "{role}"
            );
        }
    }
}

/// A certificate as `export` makes one, and the values it hands the exports.
fn secrets() -> crate::stack::plan::ServerSecretValues {
    crate::stack::up::ServerCertificate::generate()
        .expect("a certificate")
        .values(&"t0ken".repeat(8))
}

#[test]
fn every_export_speaks_tls_to_the_server_and_pins_its_certificate() {
    for shape in SHAPES {
        // CloudFormation: the function calls https and pins the fingerprint parameter; the
        // key is a NoEcho parameter.
        let template = cfn_template(shape);
        let text = template.to_string();
        assert!(
            !text.contains("EC2_ALLOW_PLAINTEXT"),
            "no plain-HTTP opt-in"
        );
        assert!(
            !text.contains("http://"),
            "nothing in the template says http://"
        );
        let variables =
            &template["Resources"]["ProxyFunction"]["Properties"]["Environment"]["Variables"];
        assert!(cfn_string(&variables["EC2_ENDPOINT"]).starts_with("https://"));
        assert_eq!(
            variables["EC2_CERT_SHA256"],
            serde_json::json!({"Ref": "ServerCertificateSha256"})
        );
        let parameters = &template["Parameters"];
        assert_eq!(parameters["ServerTlsKey"]["NoEcho"], true);
        assert_eq!(parameters["ServerToken"]["NoEcho"], true);
        assert!(parameters["ServerTlsCertificate"]["NoEcho"].is_null());
        assert!(cfn_string(&template["Outputs"]["ServerUrl"]["Value"]).starts_with("https://"));
        assert_eq!(
            template["Outputs"]["ServerCertificateSha256"]["Value"],
            serde_json::json!({"Ref": "ServerCertificateSha256"})
        );

        // Terraform: the same, from variables; the key is sensitive and reaches the server
        // only through its private environment object.
        let main = module_file(shape, "main.tf");
        let variables = module_file(shape, "variables.tf");
        let outputs = module_file(shape, "outputs.tf");
        assert!(!main.contains("EC2_ALLOW_PLAINTEXT"), "{main}");
        assert!(
            main.contains("\"https://${aws_instance.server.public_ip}:"),
            "{main}"
        );
        assert!(!main.contains("http://"), "{main}");
        let function = main
            .split("resource \"aws_lambda_function\" \"proxy\"")
            .nth(1)
            .expect("the proxy function");
        assert!(
            function.contains("EC2_CERT_SHA256")
                && function.contains("var.server_certificate_sha256"),
            "{function}"
        );
        let env_object = main
            .split("resource \"aws_s3_object\" \"server_env\"")
            .nth(1)
            .and_then(|rest| rest.split("\nresource ").next())
            .expect("the server's environment object");
        assert!(env_object.contains("HYBRIDLAB_TLS_CERT=${var.server_tls_certificate}"));
        assert!(env_object.contains("HYBRIDLAB_TLS_KEY=${var.server_tls_key}"));
        assert_eq!(main.matches("var.server_tls_key").count(), 1, "{main}");
        let key = variables
            .split("variable \"server_tls_key\"")
            .nth(1)
            .and_then(|rest| rest.split("variable ").next())
            .expect("the key's variable");
        assert!(key.contains("sensitive   = true"), "{key}");
        assert!(
            outputs.contains("var.server_certificate_sha256"),
            "{outputs}"
        );
    }
}

/// `pattern` as CloudFormation and Terraform apply it: to the whole value.
fn allowed(pattern: &str, value: &str) -> bool {
    regex::Regex::new(pattern)
        .expect("a valid pattern")
        .is_match(value)
}

#[test]
fn the_parameters_file_gives_every_parameter_without_a_default_a_value_it_allows() {
    let secrets = secrets();
    let text = cloudformation::parameters_text(Some("my-code-bucket"), &secrets);
    let list: Vec<String> = serde_json::from_str(&text).expect("a JSON list of strings");
    let given: std::collections::BTreeMap<&str, &str> = list
        .iter()
        .map(|pair| pair.split_once('=').expect("Key=Value"))
        .collect();
    assert_eq!(given["CodeBucket"], "my-code-bucket");
    assert_eq!(given["ServerCertificateSha256"], secrets.cert_sha256);
    for shape in SHAPES {
        let template = cfn_template(shape);
        let parameters = template["Parameters"].as_object().expect("parameters");
        for (name, parameter) in parameters {
            let value = given.get(name.as_str());
            if parameter.get("Default").is_none() {
                assert!(value.is_some(), "the file gives {name}");
            }
            let (Some(value), Some(pattern)) = (value, parameter["AllowedPattern"].as_str()) else {
                continue;
            };
            assert!(allowed(pattern, value), "{name}={value} against {pattern}");
            if let Some(min) = parameter["MinLength"].as_u64() {
                assert!(value.len() as u64 >= min, "{name}");
            }
        }
        for name in given.keys() {
            assert!(parameters.contains_key(*name), "{name} is a parameter");
        }
        // A value cannot add a line to the server's environment file.
        for name in [
            "ServerTlsCertificate",
            "ServerTlsKey",
            "ServerCertificateSha256",
        ] {
            let pattern = parameters[name]["AllowedPattern"]
                .as_str()
                .expect("a pattern");
            assert!(
                !allowed(pattern, "QUJD\nHYBRIDLAB_ALLOW_PRIVATE_ADDRESSES=true"),
                "{name}"
            );
        }
    }
    // Without a code bucket the file leaves it to the deploy command to refuse.
    let without: Vec<String> =
        serde_json::from_str(&cloudformation::parameters_text(None, &secrets)).expect("JSON");
    assert!(without.iter().all(|pair| !pair.starts_with("CodeBucket=")));
}

#[test]
fn the_tfvars_carry_the_certificate_a_module_keeps_when_applied_again() {
    let secrets = secrets();
    let tfvars = terraform::tls_tfvars(&secrets);
    let (cert, key) = terraform::tls_in_tfvars(&tfvars).expect("both are there");
    let again = crate::stack::up::ServerCertificate::from_base64(&cert, &key)
        .expect("they decode")
        .values("unused");
    assert_eq!(again.cert_sha256, secrets.cert_sha256);
    assert_eq!(again.tls_key, secrets.tls_key);
    // The module's validations accept what export writes, and refuse an injected line.
    let variables = module_file(PLAIN, "variables.tf");
    for (variable, value) in [
        ("server_tls_certificate", &secrets.tls_certificate),
        ("server_tls_key", &secrets.tls_key),
        ("server_certificate_sha256", &secrets.cert_sha256),
    ] {
        let block = variables
            .split(&format!("variable \"{variable}\""))
            .nth(1)
            .and_then(|rest| rest.split("variable ").next())
            .expect("the variable");
        let pattern = block
            .split("regex(\"")
            .nth(1)
            .and_then(|rest| rest.split("\", var.").next())
            .expect("a regex")
            .replace("\\\\", "\\");
        assert!(
            allowed(&pattern, value),
            "{variable}={value} against {pattern}"
        );
        assert!(!allowed(&pattern, &format!("{value}\nX=1")), "{variable}");
    }
    assert_eq!(
        terraform::tls_in_tfvars("server_tls_certificate = \"x\"\n"),
        None
    );
}

#[test]
fn every_export_launches_a_burstable_instance_with_standard_credits_unless_asked() {
    // CloudFormation: a parameter (default from the settings) applied only to T types.
    let template = cfn_template(PLAIN);
    assert_eq!(template["Parameters"]["CpuCredits"]["Default"], "standard");
    let spec = &template["Resources"]["ServerInstance"]["Properties"]["CreditSpecification"];
    assert_eq!(spec["Fn::If"][0], "BurstableInstance");
    assert_eq!(spec["Fn::If"][1]["CPUCredits"]["Ref"], "CpuCredits");
    assert_eq!(spec["Fn::If"][2]["Ref"], "AWS::NoValue");
    let families: Vec<String> = template["Conditions"]["BurstableInstance"]["Fn::Or"]
        .as_array()
        .expect("an Fn::Or")
        .iter()
        .map(|equals| {
            equals["Fn::Equals"][1]
                .as_str()
                .expect("a family")
                .to_owned()
        })
        .collect();
    assert_eq!(families, ["t2", "t3", "t3a", "t4g"]);
    let unlimited = StackSettings {
        cpu_credits: crate::stack::CpuCredits::Unlimited,
        ..settings(PLAIN)
    };
    let template = cloudformation::template(&unlimited, &StackId::parse(ID).expect("valid"));
    assert_eq!(template["Parameters"]["CpuCredits"]["Default"], "unlimited");

    // Terraform: a variable, and a block only for T types.
    let main = module_file(PLAIN, "main.tf");
    assert!(main.contains("dynamic \"credit_specification\""), "{main}");
    assert!(
        main.contains(
            "for_each = can(regex(\"^t(2|3|3a|4g)\\\\.\", var.instance_type)) ? [var.cpu_credits] : []"
        ),
        "{main}"
    );
    let variables = module_file(PLAIN, "variables.tf");
    let credits = variables
        .split("variable \"cpu_credits\"")
        .nth(1)
        .expect("the cpu_credits variable");
    assert!(credits.contains("default     = \"standard\""), "{credits}");

    // The plan says so.
    let id = StackId::parse(ID).expect("valid");
    let instance = plan(&id, &settings(PLAIN))
        .into_iter()
        .find(|r| r.kind == "ec2:instance")
        .expect("the instance");
    assert!(
        instance
            .settings
            .iter()
            .any(|(key, value)| *key == "cpu credits" && value.starts_with("standard")),
        "{:?}",
        instance.settings
    );
    let large = StackSettings {
        instance_type: "m5.large".into(),
        ..settings(PLAIN)
    };
    let instance = plan(&id, &large)
        .into_iter()
        .find(|r| r.kind == "ec2:instance")
        .expect("the instance");
    assert!(
        instance
            .settings
            .iter()
            .any(|(key, value)| *key == "cpu credits" && value.starts_with("none"))
    );
}

#[test]
fn literal_text_has_no_stray_interpolation() {
    // The user-data and the env file are pasted into HCL heredocs and `Fn::Sub` strings: only
    // the interpolations the exports put there may look like one.
    let plain = crate::stack::describe::StackDescription::new(
        crate::stack::names::StackNames::new(&StackId::parse(ID).expect("valid")),
        ID,
        &settings(ALL),
        &crate::stack::policy::ArnContext {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "1".into(),
        },
        &crate::stack::plan::ServerSecretValues {
            token: "token".into(),
            tls_certificate: "Y2VydA==".into(),
            tls_key: "a2V5".into(),
            cert_sha256: "AB".into(),
        },
    );
    let script = plain.instance.launch.render();
    for text in [script.as_str(), plain.server_artifacts.env_file.as_str()] {
        assert!(!text.contains("${") && !text.contains("%{"), "{text}");
    }
}

#[test]
fn a_module_with_a_given_identity_needs_only_the_aws_provider() {
    for shape in SHAPES {
        let files = terraform::module(&settings(shape), terraform::Identity::Given);
        let text = |name: &str| {
            files
                .iter()
                .find(|file| file.name == name)
                .map(|file| file.text.clone())
                .expect("the file")
        };
        let (main, variables) = (text("main.tf"), text("variables.tf"));
        assert!(
            !main.contains("random"),
            "no random provider or resource:\n{main}"
        );
        let id = main
            .lines()
            .find(|line| line.trim_start().starts_with("id ") && line.contains('='))
            .expect("local.id");
        assert_eq!(id.split('=').nth(1).map(str::trim), Some("var.stack_id"));
        assert!(main.contains("var.server_token"));
        assert!(variables.contains("variable \"server_token\""));
        assert!(
            variables
                .lines()
                .any(|line| line.trim_start().starts_with("sensitive") && line.ends_with("true")),
            "{variables}"
        );
        // No default: the module cannot be applied without its identity.
        let stack_id = variables
            .split("variable \"stack_id\"")
            .nth(1)
            .and_then(|rest| rest.split("variable ").next())
            .expect("the stack_id variable");
        assert!(!stack_id.contains("default"), "{stack_id}");
    }
    let tfvars = terraform::identity_tfvars("k3x9q2ma", "t0ken");
    assert_eq!(
        terraform::token_in_tfvars(&tfvars).as_deref(),
        Some("t0ken")
    );
    assert!(tfvars.contains("stack_id"));
    assert_eq!(terraform::token_in_tfvars("proxy_package = \"x\"\n"), None);
}

#[test]
fn the_jobs_variant_is_exported_as_up_makes_it() {
    use crate::stack::plan::{JOBS_ROUTES, LAUNCHER_FILTERS};
    use hybridlab_wire::launch::launcher_env;
    for shape in [PLAIN, PIPELINE] {
        let main = module_file(shape, "main.tf");
        let template = cfn_template(shape).to_string();
        for marker in [
            "aws_apigatewayv2",
            "aws_lambda_event_source_mapping",
            "worker",
        ] {
            assert!(!main.contains(marker), "{marker} without the jobs");
        }
        for marker in [
            "JobsApi",
            "LauncherMapping",
            "WorkerRole",
            "WorkerBinaryKey",
        ] {
            assert!(!template.contains(marker), "{marker} without the jobs");
        }
    }
    for shape in [JOBS, ALL] {
        // Terraform: the stream, the mapping with both filters, the three routes on the
        // `$default` stage, the permission for this API only, the launcher's environment.
        let main = module_file(shape, "main.tf");
        let resources = tf_resources(&main);
        let find = |kind: &str, label: &str| {
            resources
                .iter()
                .find(|r| r.kind == kind && r.label == label)
                .unwrap_or_else(|| panic!("{kind}.{label}"))
        };
        let table = find("aws_dynamodb_table", "jobs");
        assert_eq!(table.attr("stream_view_type").as_deref(), Some("NEW_IMAGE"));
        assert_eq!(table.attr("hash_key").as_deref(), Some("job_id"));
        let mapping = find("aws_lambda_event_source_mapping", "launcher");
        assert_eq!(
            mapping.attr("event_source_arn").as_deref(),
            Some("aws_dynamodb_table.jobs.stream_arn")
        );
        assert_eq!(
            mapping.attr("starting_position").as_deref(),
            Some("TRIM_HORIZON")
        );
        assert_eq!(
            mapping.attr("bisect_batch_on_function_error").as_deref(),
            Some("true")
        );
        assert_eq!(
            mapping.body.matches("filter {").count(),
            2,
            "{}",
            mapping.body
        );
        assert!(
            mapping.body.contains("eventName = [\"INSERT\"]"),
            "{}",
            mapping.body
        );
        assert!(
            mapping
                .body
                .contains("\"SUCCEEDED\", \"FAILED\", \"CANCELLED\""),
            "{}",
            mapping.body
        );
        let routes = find("aws_apigatewayv2_route", "jobs");
        for route in JOBS_ROUTES {
            assert!(routes.body.contains(&format!("\"{route}\"")), "{route}");
        }
        assert_eq!(
            find("aws_apigatewayv2_stage", "default")
                .attr("name")
                .as_deref(),
            Some("$default")
        );
        let permission = find("aws_lambda_permission", "jobs_api");
        assert_eq!(
            permission.attr("source_arn").as_deref(),
            Some("${aws_apigatewayv2_api.jobs.execution_arn}/*/*")
        );
        assert_eq!(
            permission.attr("principal").as_deref(),
            Some("apigateway.amazonaws.com")
        );
        let launcher = find("aws_lambda_function", "launcher");
        for key in [
            launcher_env::STACK,
            launcher_env::JOBS_TABLE,
            launcher_env::JOBS_BUCKET,
            launcher_env::ARTIFACT_BUCKET,
            launcher_env::WORKER_KEY,
            launcher_env::WORKER_PROFILE_ARN,
            launcher_env::WORKER_IMAGE,
            launcher_env::WORKER_INSTANCE_TYPE,
            launcher_env::WORKER_CAP,
            launcher_env::HEARTBEAT_SECONDS,
            launcher_env::TTL_SECONDS,
        ] {
            assert!(launcher.body.contains(key), "{key} in\n{}", launcher.body);
        }
        assert!(
            launcher
                .body
                .contains("aws_iam_instance_profile.worker.arn")
        );
        assert!(launcher.body.contains("data.aws_ami.al2023.id"));
        assert!(launcher.body.contains("aws_s3_object.worker_binary.key"));
        let variables = module_file(shape, "variables.tf");
        for variable in ["worker_binary", "submit_package", "launcher_package"] {
            assert!(
                variables.contains(&format!("variable \"{variable}\"")),
                "{variable}"
            );
        }
        let outputs = module_file(shape, "outputs.tf");
        assert!(
            outputs.contains("aws_apigatewayv2_api.jobs.api_endpoint"),
            "{outputs}"
        );

        // CloudFormation: the same, with the worker fetched from the code bucket.
        let template = cfn_template(shape);
        let r = &template["Resources"];
        assert_eq!(
            r["JobsTable"]["Properties"]["StreamSpecification"]["StreamViewType"],
            "NEW_IMAGE"
        );
        let mapping = &r["LauncherMapping"]["Properties"];
        assert_eq!(mapping["EventSourceArn"]["Fn::GetAtt"][1], "StreamArn");
        let patterns: Vec<&str> = mapping["FilterCriteria"]["Filters"]
            .as_array()
            .expect("filters")
            .iter()
            .filter_map(|f| f["Pattern"].as_str())
            .collect();
        assert_eq!(patterns, LAUNCHER_FILTERS);
        let route_keys: BTreeSet<&str> = r
            .as_object()
            .expect("resources")
            .values()
            .filter(|v| v["Type"] == "AWS::ApiGatewayV2::Route")
            .filter_map(|v| v["Properties"]["RouteKey"].as_str())
            .collect();
        assert_eq!(route_keys, JOBS_ROUTES.into_iter().collect());
        assert_eq!(r["JobsStage"]["Properties"]["StageName"], "$default");
        assert_eq!(
            cfn_string(&r["JobsApi"]["Properties"]["Tags"]["hybridlab:stack"]),
            ID
        );
        assert_eq!(
            r["JobsApiPermission"]["Properties"]["Principal"],
            "apigateway.amazonaws.com"
        );
        let variables = &r["LauncherFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            variables[launcher_env::ARTIFACT_BUCKET],
            serde_json::json!({"Ref": "CodeBucket"})
        );
        assert_eq!(
            variables[launcher_env::WORKER_KEY],
            serde_json::json!({"Ref": "WorkerBinaryKey"})
        );
        let worker = &r["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
        let fetch = worker
            .as_array()
            .expect("statements")
            .iter()
            .find(|s| s["Sid"] == crate::stack::policy::FETCH_WORKER)
            .expect("the worker's fetch");
        assert_eq!(
            fetch["Resource"][0]["Fn::Sub"],
            "arn:${AWS::Partition}:s3:::${CodeBucket}/${WorkerBinaryKey}"
        );
        assert!(template["Outputs"]["JobsApiEndpoint"].is_object());
        assert!(
            template["Description"].as_str().expect("text").len() <= 1024,
            "CloudFormation takes at most 1,024 bytes of description"
        );
    }
}
