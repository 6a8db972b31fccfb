//! The audit: every call of [`CALLS`] is allowed by its role's policy as `up`, the Terraform
//! module and the CloudFormation template create it; every statement serves a call; and the
//! table names every SDK operation the programs' sources call.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;
use crate::iac::{cloudformation, terraform};
use crate::stack::audit::{
    calls_in, glob, program_text, rust_files, sdk_operations, strings, wire_request_builders,
    workspace_root,
};
use crate::stack::names::StackId;
use crate::stack::plan::StackSettings;
use crate::stack::policy::{lambda_policy, resizer_policy, server_policy};

const ID: &str = "abcd1234";
const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";
/// What the template's `Ref` of its secret and its code bucket parameters stand for here.
const SECRET: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:server-AbCdEf";
const CODE_BUCKET: &str = "my-code-bucket";
const SERVER_BINARY_KEY: &str = "hybridlab/hybridlab-ec2-server";

fn arns() -> ArnContext {
    ArnContext {
        partition: "aws".into(),
        region: REGION.into(),
        account: ACCOUNT.into(),
    }
}

fn names() -> StackNames {
    StackNames::new(&StackId::parse(ID).expect("valid"))
}

fn settings(pipeline: bool) -> StackSettings {
    StackSettings {
        pipeline,
        ..StackSettings::new(REGION)
    }
}

/// Which role a caller runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Server,
    Lambda,
    Resizer,
}

fn role_of(caller: Caller) -> Role {
    match caller {
        Caller::Server | Caller::ServerBoot => Role::Server,
        Caller::Proxy => Role::Lambda,
        Caller::Resizer => Role::Resizer,
    }
}

/// The policies of one way of making a stack, by role (the resizer's only with the pipeline).
struct PathPolicies {
    name: &'static str,
    via: Via,
    policies: BTreeMap<Role, Value>,
}

/// `text` with the Terraform or CloudFormation interpolations of the exports resolved to
/// this test's stack.
fn resolve(text: &str) -> String {
    text.replace("${local.id}", ID)
        .replace("${StackSuffix}", ID)
        .replace("${data.aws_partition.current.partition}", "aws")
        .replace("${AWS::Partition}", "aws")
        .replace("${var.region}", REGION)
        .replace("${AWS::Region}", REGION)
        .replace("${data.aws_caller_identity.current.account_id}", ACCOUNT)
        .replace("${AWS::AccountId}", ACCOUNT)
        .replace("${CodeBucket}", CODE_BUCKET)
        .replace("${ServerBinaryKey}", SERVER_BINARY_KEY)
}

/// A CloudFormation value with its `Fn::Sub`s and the secret's `Ref` resolved.
fn resolve_cfn(value: &Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::Sub") => {
            Value::String(resolve(map["Fn::Sub"].as_str().expect("a Sub string")))
        }
        Value::Object(map) if map.get("Ref") == Some(&Value::from("ServerSecret")) => {
            Value::String(SECRET.into())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), resolve_cfn(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(resolve_cfn).collect()),
        Value::String(text) => Value::String(resolve(text)),
        other => other.clone(),
    }
}

fn every_path(pipeline: bool) -> Vec<PathPolicies> {
    let (names, arns) = (names(), arns());
    let mut up = BTreeMap::from([
        (Role::Server, server_policy(&names, &arns, pipeline)),
        (Role::Lambda, lambda_policy(&names, &arns)),
    ]);
    if pipeline {
        up.insert(Role::Resizer, resizer_policy(&names, &arns));
    }

    let described = terraform::description(&settings(pipeline));
    let role = |name: &str| {
        if name == described.lambda_role.name {
            Role::Lambda
        } else if name == described.server_role.name {
            Role::Server
        } else {
            Role::Resizer
        }
    };
    let terraform = described
        .roles()
        .into_iter()
        .map(|r| {
            let text = resolve(&r.policy.to_string());
            (role(&r.name), serde_json::from_str(&text).expect("JSON"))
        })
        .collect();

    let template =
        cloudformation::template(&settings(pipeline), &StackId::parse(ID).expect("valid"));
    let cloudformation = [
        (Role::Server, "ServerRole"),
        (Role::Lambda, "LambdaRole"),
        (Role::Resizer, "ResizerRole"),
    ]
    .into_iter()
    .filter_map(|(role, id)| {
        let document =
            template["Resources"][id]["Properties"]["Policies"][0]["PolicyDocument"].clone();
        (!document.is_null()).then(|| (role, resolve_cfn(&document)))
    })
    .collect();

    vec![
        PathPolicies {
            name: "up",
            via: Via::ArtifactsBucket,
            policies: up,
        },
        PathPolicies {
            name: "terraform",
            via: Via::ArtifactsBucket,
            policies: terraform,
        },
        PathPolicies {
            name: "cloudformation",
            via: Via::CloudFormation,
            policies: cloudformation,
        },
    ]
}

/// The statements (by `Sid`) of `policy` that allow `action` on `resource`.
fn allowing(policy: &Value, action: &str, resource: &str) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s["Effect"] == "Allow" && s.get("Condition").is_none())
        .filter(|s| strings(&s["Action"]).iter().any(|a| glob(a, action)))
        .filter(|s| strings(&s["Resource"]).iter().any(|r| glob(r, resource)))
        .map(|s| s["Sid"].as_str().unwrap_or("(no Sid)").to_owned())
        .collect()
}

fn describe(call: &Call) -> String {
    let how = match call.how {
        How::Sdk(operation) => operation,
        How::Other(what) => what,
    };
    format!("{:?} {how} as {}", call.caller, call.action)
}

#[test]
fn every_call_is_allowed_by_its_roles_policy_on_every_path() {
    let (names, arns) = (names(), arns());
    let code = format!("arn:aws:s3:::{CODE_BUCKET}/{SERVER_BINARY_KEY}");
    let mut refused = Vec::new();
    let mut listing = String::new();
    for pipeline in [false, true] {
        for path in every_path(pipeline) {
            for call in CALLS.iter().filter(|c| c.applies(pipeline, path.via)) {
                let resource = call.target.arn(&names, &arns, SECRET, &code);
                let role = role_of(call.caller);
                let Some(policy) = path.policies.get(&role) else {
                    refused.push(format!(
                        "{} (pipeline={pipeline}): no {role:?} role for {}",
                        path.name,
                        describe(call)
                    ));
                    continue;
                };
                let statements = allowing(policy, call.action, &resource);
                listing.push_str(&format!(
                    "{:<14} pipeline={pipeline:<5} {:<55} {resource} <- {statements:?}\n",
                    path.name,
                    describe(call)
                ));
                if statements.is_empty() {
                    refused.push(format!(
                        "{} (pipeline={pipeline}): {} on {resource}: no statement of the {role:?} role allows it",
                        path.name,
                        describe(call)
                    ));
                }
            }
        }
    }
    eprintln!("{listing}");
    assert!(
        refused.is_empty(),
        "AWS would refuse:\n{}",
        refused.join("\n")
    );
}

#[test]
fn every_statement_serves_a_call_of_its_role() {
    let (names, arns) = (names(), arns());
    let code = format!("arn:aws:s3:::{CODE_BUCKET}/{SERVER_BINARY_KEY}");
    let mut unused = Vec::new();
    for path in every_path(true) {
        for (role, policy) in &path.policies {
            for statement in policy["Statement"].as_array().expect("statements") {
                for action in strings(&statement["Action"]) {
                    for pattern in strings(&statement["Resource"]) {
                        let used = CALLS.iter().any(|call| {
                            call.applies(true, path.via)
                                && role_of(call.caller) == *role
                                && glob(&action, call.action)
                                && glob(&pattern, &call.target.arn(&names, &arns, SECRET, &code))
                        });
                        if !used {
                            unused.push(format!(
                                "{}: {role:?} {} grants {action} on {pattern}",
                                path.name, statement["Sid"]
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "granted but called by nothing in the table (least privilege: drop it, or add the call):\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_server_may_delete_a_failed_upload_and_the_resizer_tell_a_missing_one() {
    // The two grants this audit found missing, named so a regression reads plainly.
    let (names, arns) = (names(), arns());
    let server = server_policy(&names, &arns, true);
    let upload = format!("arn:aws:s3:::{}/uploads/0001/cat.jpg", names.uploads_bucket);
    assert!(!allowing(&server, "s3:DeleteObject", &upload).is_empty());
    let resizer = resizer_policy(&names, &arns);
    let bucket = format!("arn:aws:s3:::{}", names.uploads_bucket);
    assert!(!allowing(&resizer, "s3:ListBucket", &bucket).is_empty());
    // ...and nothing more of that bucket: not the processed one, not writes.
    assert!(
        allowing(
            &resizer,
            "s3:ListBucket",
            &format!("arn:aws:s3:::{}", names.processed_bucket)
        )
        .is_empty()
    );
    assert!(allowing(&resizer, "s3:PutObject", &upload).is_empty());
}

#[test]
fn the_table_names_every_sdk_call_in_the_programs_sources() {
    let root = workspace_root();
    let wrappers = wire_request_builders();
    assert_eq!(
        wrappers.get("get_row").map(String::as_str),
        Some("get_item"),
        "the wire's row read is seen as a GetItem: {wrappers:?}"
    );
    let mut problems = Vec::new();
    for caller in [Caller::Server, Caller::Proxy, Caller::Resizer] {
        let operations = sdk_operations(caller.crate_dir().expect("a crate"));
        let mut called = BTreeMap::<String, String>::new();
        for source in caller.sources() {
            for file in rust_files(&root.join(source)) {
                let text = program_text(&std::fs::read_to_string(&file).expect("a program source"));
                for operation in calls_in(&text, &operations, &wrappers) {
                    called.entry(operation).or_insert_with(|| {
                        file.strip_prefix(&root)
                            .unwrap_or(&file)
                            .display()
                            .to_string()
                    });
                }
            }
        }
        let listed: BTreeSet<&str> = CALLS
            .iter()
            .filter(|call| call.caller == caller)
            .filter_map(Call::operation)
            .collect();
        for (operation, file) in &called {
            if !listed.contains(operation.as_str()) {
                problems.push(format!(
                    "{caller:?} calls `{operation}` ({file}) but provision/src/stack/calls.rs has no entry: add its IAM action and resource there and grant it in policy.rs"
                ));
            }
        }
        for operation in listed {
            if !called.contains_key(operation) {
                problems.push(format!(
                    "{caller:?}: the table lists `{operation}`, which its sources no longer call"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
