//! The operator's audit: every call of [`OPERATOR_CALLS`] is allowed by the document
//! [`operator_policy`] makes, on a real stack's resources and with what its request carries;
//! every statement serves a call; nothing is granted on a whole service; the pipeline adds only
//! its own resources; and the table names every SDK operation the commands' sources call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::*;
use crate::stack::audit::{
    calls_in, glob, program_text, rust_files, sdk_operations, strings, wire_request_builders,
    wire_request_senders, workspace_root,
};

const ID: &str = "abcd1234";
const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

fn stack() -> StackId {
    StackId::parse(ID).expect("valid")
}

fn policy(pipeline: bool) -> Value {
    operator_policy(&OperatorScope::new(REGION, pipeline).expect("a valid scope"))
}

fn statements(policy: &Value) -> &Vec<Value> {
    policy["Statement"].as_array().expect("statements")
}

/// Whether the `Condition` element holds for a request with `keys`: every operator and every
/// key in it, a key matching any of its values. Only the operators the policy writes.
fn condition_holds(condition: Option<&Value>, keys: &[(String, String)]) -> bool {
    let Some(condition) = condition.and_then(Value::as_object) else {
        return true;
    };
    let values_of = |key: &str| -> Vec<&str> {
        keys.iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
            .collect()
    };
    condition.iter().all(|(operator, tests)| {
        let tests = tests.as_object().expect("a condition block");
        tests.iter().all(|(key, wanted)| {
            let wanted = strings(wanted);
            let present = values_of(key);
            match operator.as_str() {
                "StringEquals" => present.iter().any(|v| wanted.iter().any(|w| w == v)),
                "StringEqualsIfExists" => {
                    present.is_empty() || present.iter().any(|v| wanted.iter().any(|w| w == v))
                }
                "Null" => wanted == ["false"] && !present.is_empty(),
                "ArnLike" => present.iter().any(|v| wanted.iter().any(|w| glob(w, v))),
                other => panic!("the test does not know the operator {other}"),
            }
        })
    })
}

/// The statements (by `Sid`) of `policy` that allow `action` on `resource` for a request
/// carrying `keys`.
fn allowing(
    policy: &Value,
    action: &str,
    resource: &str,
    keys: &[(String, String)],
) -> Vec<String> {
    statements(policy)
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| strings(&s["Action"]).iter().any(|a| glob(a, action)))
        .filter(|s| strings(&s["Resource"]).iter().any(|r| glob(r, resource)))
        .filter(|s| condition_holds(s.get("Condition"), keys))
        .map(|s| s["Sid"].as_str().unwrap_or("(no Sid)").to_owned())
        .collect()
}

fn describe(call: &OperatorCall) -> String {
    let how = match call.how {
        How::Sdk(operation) => operation,
        How::Other(what) => what,
    };
    format!("{how} as {}", call.action)
}

#[test]
fn every_call_is_allowed_on_a_real_stacks_resources() {
    let scope = ArnScope::stack(&stack(), REGION, ACCOUNT);
    let mut refused = Vec::new();
    let mut listing = String::new();
    for pipeline in [false, true] {
        let policy = policy(pipeline);
        for call in OPERATOR_CALLS {
            let keys = call.carries.keys(&stack(), REGION, ACCOUNT);
            let arns = call.on.arns(&scope, pipeline);
            assert!(
                pipeline || arns.iter().all(|arn| !arn.contains("uploads")),
                "{arns:?}"
            );
            for arn in arns {
                let statements = allowing(&policy, call.action, &arn, &keys);
                listing.push_str(&format!(
                    "pipeline={pipeline:<5} {:<58} {arn} <- {statements:?}\n",
                    describe(call)
                ));
                if statements.is_empty() {
                    refused.push(format!(
                        "pipeline={pipeline}: {} on {arn} (carrying {keys:?})",
                        describe(call)
                    ));
                }
            }
        }
    }
    eprintln!("{listing}");
    assert!(
        refused.is_empty(),
        "AWS would refuse the operator:\n{}",
        refused.join("\n")
    );
}

#[test]
fn every_call_lands_on_something() {
    let scope = ArnScope::stack(&stack(), REGION, ACCOUNT);
    for call in OPERATOR_CALLS {
        assert!(!call.on.arns(&scope, true).is_empty(), "{}", describe(call));
        assert!(call.action.contains(':'), "{}", describe(call));
    }
}

/// Each (statement, action, resource) of `statements` that no call of `calls` uses.
fn unused_grants(statements: &[Value], calls: &[OperatorCall]) -> Vec<String> {
    let scope = ArnScope::stack(&stack(), REGION, ACCOUNT);
    let mut unused = Vec::new();
    for statement in statements {
        for action in strings(&statement["Action"]) {
            for pattern in strings(&statement["Resource"]) {
                let used = calls.iter().any(|call| {
                    glob(&action, call.action)
                        && condition_holds(
                            statement.get("Condition"),
                            &call.carries.keys(&stack(), REGION, ACCOUNT),
                        )
                        && call
                            .on
                            .arns(&scope, true)
                            .iter()
                            .any(|arn| glob(&pattern, arn))
                });
                if !used {
                    unused.push(format!("{} grants {action} on {pattern}", statement["Sid"]));
                }
            }
        }
    }
    unused
}

#[test]
fn every_statement_serves_a_call() {
    let unused = unused_grants(statements(&policy(true)), OPERATOR_CALLS);
    assert!(
        unused.is_empty(),
        "granted but called by nothing in OPERATOR_CALLS (least privilege: drop it, or add the call):\n{}",
        unused.join("\n")
    );
}

/// The actions granted on `*`: each has no resource-level permissions, or is authorised on
/// something no pattern of the lab's names (see the statement's comment). A new one is a
/// decision, not an accident.
const ON_EVERYTHING: &[&str] = &[
    "dynamodb:ListTables",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeVpcs",
    "iam:ListInstanceProfiles",
    "iam:ListRoles",
    "lambda:ListFunctions",
    "lambda:ListEventSourceMappings",
    "logs:DescribeLogGroups",
    "s3:ListAllMyBuckets",
];

#[test]
fn nothing_is_granted_on_a_whole_service_and_everything_else_is_the_labs() {
    for pipeline in [false, true] {
        let policy = policy(pipeline);
        let mut on_everything = BTreeSet::new();
        for statement in statements(&policy) {
            assert_eq!(statement["Effect"], "Allow");
            assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none());
            let actions = strings(&statement["Action"]);
            assert!(!actions.is_empty());
            for action in &actions {
                let (service, name) = action.split_once(':').expect("service:Action");
                assert!(!service.is_empty() && !name.is_empty(), "{action}");
                assert!(
                    !action.contains('*') && !action.contains('?'),
                    "a wildcard action {action}"
                );
            }
            for resource in strings(&statement["Resource"]) {
                if resource == "*" {
                    on_everything.extend(actions.iter().cloned());
                    continue;
                }
                assert!(resource.starts_with("arn:aws:"), "{resource}");
                // The collection of HTTP APIs is the one resource a listing of the lab's
                // cannot narrow (an API's ARN holds its id, not its name).
                assert!(
                    resource.contains("hybridlab")
                        || resource.contains(":ec2:")
                        || resource.ends_with("::/apis"),
                    "{resource} is not named as the lab names things"
                );
                let region = resource.split(':').nth(3).expect("an ARN");
                assert!(
                    region.is_empty() || region == REGION,
                    "{resource} is not in {REGION}"
                );
            }
        }
        let expected: BTreeSet<String> = ON_EVERYTHING.iter().map(|a| (*a).to_owned()).collect();
        assert_eq!(on_everything, expected, "the actions granted on *");
    }
}

#[test]
fn the_document_is_a_valid_policy_with_unique_sids_that_fits_iams_limit() {
    // The longest region names there are make the largest document.
    for (region, pipeline) in [
        (REGION, false),
        (REGION, true),
        ("ap-southeast-2", true),
        ("ap-northeast-3", true),
    ] {
        {
            let scope = OperatorScope::new(region, pipeline).expect("valid");
            let text = serde_json::to_string_pretty(&operator_policy(&scope)).expect("JSON");
            let document: Value = serde_json::from_str(&text).expect("parses back");
            assert_eq!(document["Version"], "2012-10-17");
            let mut sids = BTreeSet::new();
            for statement in statements(&document) {
                let sid = statement["Sid"].as_str().expect("a Sid");
                // IAM takes letters and digits only in an identity policy's Sid.
                assert!(
                    !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{sid}"
                );
                assert!(sids.insert(sid.to_owned()), "Sid {sid} twice");
            }
            // A managed policy holds at most 6,144 characters, white space not counted.
            let size = text.chars().filter(|c| !c.is_whitespace()).count();
            assert!(
                size <= 6144,
                "{size} characters ({region}, pipeline={pipeline})"
            );
        }
    }
}

/// Every (statement, action, resource) of a policy.
fn grants_of(policy: &Value) -> BTreeSet<(String, String, String)> {
    let mut grants = BTreeSet::new();
    for statement in statements(policy) {
        let sid = statement["Sid"].as_str().unwrap_or_default().to_owned();
        for action in strings(&statement["Action"]) {
            for resource in strings(&statement["Resource"]) {
                grants.insert((sid.clone(), action.clone(), resource));
            }
        }
    }
    grants
}

#[test]
fn the_pipeline_adds_exactly_its_own_resources() {
    let (plain, with_pipeline) = (policy(false), policy(true));
    let (plain_grants, pipeline_grants) = (grants_of(&plain), grants_of(&with_pipeline));
    assert!(plain_grants.is_subset(&pipeline_grants));
    let every = StackNames::with_suffix("*");
    let pipeline_names = [
        &every.uploads_bucket,
        &every.processed_bucket,
        &every.resizer,
        &every.resizer_role,
        &every.resizer_log_group,
    ];
    let added: Vec<_> = pipeline_grants.difference(&plain_grants).collect();
    for (sid, action, resource) in &added {
        assert!(
            pipeline_names
                .iter()
                .any(|name| resource.contains(name.as_str())),
            "{sid}: {action} on {resource} is no resource of the pipeline"
        );
    }
    for (action, resource) in [
        ("s3:PutBucketNotification", &every.uploads_bucket),
        ("s3:PutBucketCORS", &every.uploads_bucket),
        ("s3:CreateBucket", &every.processed_bucket),
        ("lambda:CreateFunction", &every.resizer),
        ("lambda:AddPermission", &every.resizer),
        ("iam:PassRole", &every.resizer_role),
        ("logs:CreateLogGroup", &every.resizer_log_group),
    ] {
        assert!(
            added
                .iter()
                .any(|(_, a, r)| a == action && r.contains(resource.as_str())),
            "the pipeline does not add {action} on {resource}"
        );
    }
    // Nothing of the pipeline in the plain policy, not even by a wildcard: its calls are
    // refused there.
    let scope = ArnScope::stack(&stack(), REGION, ACCOUNT);
    for call in OPERATOR_CALLS {
        let plain_arns = call.on.arns(&scope, false);
        for arn in call
            .on
            .arns(&scope, true)
            .into_iter()
            .filter(|arn| !plain_arns.contains(arn))
        {
            assert!(
                allowing(
                    &plain,
                    call.action,
                    &arn,
                    &call.carries.keys(&stack(), REGION, ACCOUNT)
                )
                .is_empty(),
                "without the pipeline, {} on {arn} is allowed",
                describe(call)
            );
        }
    }
    assert!(!plain.to_string().contains("resizer") && !plain.to_string().contains("uploads"));
}

#[test]
fn roles_are_passed_only_to_their_own_service() {
    let scope = ArnScope::stack(&stack(), REGION, ACCOUNT);
    let policy = policy(true);
    let role = |of: &'static [RoleOf]| Roles(of).arns(&scope, true).remove(0);
    let passed = |service: &str| vec![("iam:PassedToService".to_owned(), service.to_owned())];
    let allowed = |role: &str, keys: &[(String, String)]| {
        !allowing(&policy, "iam:PassRole", role, keys).is_empty()
    };
    let (lambda, server, resizer) = (
        role(&[RoleOf::Lambda]),
        role(&[RoleOf::Server]),
        role(&[RoleOf::Resizer]),
    );
    assert!(allowed(&lambda, &passed("lambda.amazonaws.com")));
    assert!(allowed(&resizer, &passed("lambda.amazonaws.com")));
    assert!(!allowed(&lambda, &passed("ec2.amazonaws.com")));
    assert!(
        !allowed(&lambda, &[]),
        "a function role passed to no service"
    );
    assert!(allowed(&server, &passed("ec2.amazonaws.com")));
    assert!(!allowed(&server, &passed("lambda.amazonaws.com")));
    // AddRoleToInstanceProfile names no service.
    assert!(allowed(&server, &[]));
    // No other role of the account.
    let other = format!("arn:aws:iam::{ACCOUNT}:role/admin");
    assert!(!allowed(&other, &passed("ec2.amazonaws.com")));
}

#[test]
fn ec2_acts_only_on_what_carries_the_stack_tag() {
    let scope = ArnScope::stack(&stack(), REGION, ACCOUNT);
    let policy = policy(false);
    let instance = Ec2(Instance).arns(&scope, false).remove(0);
    let group = Ec2(SecurityGroup).arns(&scope, false).remove(0);
    let tagged = StackTagged.keys(&stack(), REGION, ACCOUNT);
    let requested = StackTagRequested.keys(&stack(), REGION, ACCOUNT);
    let refused = |action: &str, arn: &str, keys: &[(String, String)]| {
        allowing(&policy, action, arn, keys).is_empty()
    };
    assert!(!refused("ec2:TerminateInstances", &instance, &tagged));
    assert!(refused("ec2:TerminateInstances", &instance, &[]));
    assert!(refused("ec2:TerminateInstances", &instance, &requested));
    assert!(!refused("ec2:RunInstances", &instance, &requested));
    assert!(refused("ec2:RunInstances", &instance, &[]));
    assert!(refused("ec2:DeleteSecurityGroup", &group, &[]));
    assert!(refused("ec2:AuthorizeSecurityGroupIngress", &group, &[]));
    assert!(refused("ec2:CreateSecurityGroup", &group, &[]));
    // Tags only as part of creating: never on an existing instance, with or without the tag.
    assert!(refused("ec2:CreateTags", &instance, &tagged));
    assert!(!refused(
        "ec2:CreateTags",
        &instance,
        &CreatedBy("RunInstances").keys(&stack(), REGION, ACCOUNT)
    ));
}

#[test]
fn the_arns_name_the_region_asked_for_and_any_account() {
    let scope = OperatorScope::new("ap-southeast-2", false).expect("valid");
    let text = operator_policy(&scope).to_string();
    assert!(text.contains("arn:aws:dynamodb:ap-southeast-2:*:table/hybridlab-images-*"));
    assert!(text.contains("arn:aws:ec2:ap-southeast-2::image/*"));
    assert!(!text.contains(REGION));
    assert_eq!(
        OperatorScope::new("EU-WEST-1", false),
        Err(ScopeError::Region("EU-WEST-1".into()))
    );
    assert!(OperatorScope::new("eu-west-1:*", false).is_err());
    assert!(OperatorScope::new("*", false).is_err());
}

/// Sources that make no AWS call of the operator's on purpose: the exports and the
/// sandbox's own controls (out of scope), and test support.
fn out_of_scope(path: &Path) -> bool {
    let path = path.to_string_lossy();
    [
        "provision/src/stack/audit.rs",
        "provision/src/stack/calls/",
        "provision/src/stack/operator_policy/",
        "console/src/cli/export.rs",
        "console/src/cli/terraform.rs",
        "console/src/cli/sandbox.rs",
        "console/src/lab/sandbox.rs",
    ]
    .iter()
    .any(|excluded| path.contains(excluded))
}

#[test]
fn the_table_names_every_sdk_call_in_the_commands_sources() {
    let root = workspace_root();
    let mut operations = sdk_operations("provision");
    operations.extend(sdk_operations("console"));
    let mut wrappers = wire_request_builders();
    wrappers.extend(wire_request_senders(&operations));
    assert_eq!(
        wrappers.get("job_item::apply").map(String::as_str),
        Some("update_item"),
        "the wire's conditional update is seen as an UpdateItem: {wrappers:?}"
    );
    assert!(operations.contains("get_caller_identity") && operations.contains("run_instances"));
    let mut called = BTreeMap::<String, BTreeSet<String>>::new();
    for source in ["provision/src/stack", "console/src", "bench/src"] {
        for file in rust_files(&root.join(source)) {
            let relative = file.strip_prefix(&root).unwrap_or(&file).to_path_buf();
            if out_of_scope(&relative) {
                continue;
            }
            let text = program_text(&std::fs::read_to_string(&file).expect("a source"));
            for operation in calls_in(&text, &operations, &wrappers) {
                called
                    .entry(operation)
                    .or_default()
                    .insert(relative.display().to_string());
            }
        }
    }
    let listed: BTreeSet<&str> = OPERATOR_CALLS
        .iter()
        .filter_map(OperatorCall::operation)
        .chain(JOBS_CALLS.iter().filter_map(OperatorCall::operation))
        .chain(NEEDS_NO_PERMISSION.iter().copied())
        .collect();
    let mut problems = Vec::new();
    for (operation, files) in &called {
        if !listed.contains(operation.as_str()) {
            problems.push(format!(
                "`{operation}` is called ({files:?}) but OPERATOR_CALLS has no entry: add its IAM action and resource, and a grant"
            ));
        }
    }
    for operation in listed {
        if !called.contains_key(operation) {
            problems.push(format!(
                "OPERATOR_CALLS lists `{operation}`, which no source calls any more"
            ));
        }
    }
    eprintln!("{called:#?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn jobs_policy() -> Value {
    jobs_operator_policy(&OperatorScope::new(REGION, false).expect("a valid scope"))
}

/// The statements of both documents.
fn both_policies() -> Value {
    let mut statements = statements(&policy(false)).clone();
    statements.extend(statements_of_jobs());
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

fn statements_of_jobs() -> Vec<Value> {
    statements(&jobs_policy()).clone()
}

#[test]
fn every_jobs_call_is_allowed_by_the_two_documents() {
    let scope = ArnScope::stack(&stack(), REGION, ACCOUNT);
    let both = both_policies();
    let mut refused = Vec::new();
    for call in JOBS_CALLS {
        let keys = call.carries.keys(&stack(), REGION, ACCOUNT);
        let arns = call.on.arns(&scope, false);
        assert!(!arns.is_empty(), "{}", describe(call));
        for arn in arns {
            if allowing(&both, call.action, &arn, &keys).is_empty() {
                refused.push(format!("{} on {arn} (carrying {keys:?})", describe(call)));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "AWS would refuse the jobs' operator:\n{}",
        refused.join("\n")
    );
}

#[test]
fn every_jobs_statement_serves_a_jobs_call() {
    let unused = unused_grants(&statements_of_jobs(), JOBS_CALLS);
    assert!(
        unused.is_empty(),
        "granted but called by nothing in JOBS_CALLS:\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_jobs_document_is_valid_fits_and_grants_only_the_variants_resources() {
    let text = serde_json::to_string_pretty(&jobs_operator_policy(
        &OperatorScope::new("ap-southeast-2", false).expect("valid"),
    ))
    .expect("JSON");
    assert!(text.chars().filter(|c| !c.is_whitespace()).count() <= 6144);
    let first_sids: BTreeSet<String> = statements(&policy(true))
        .iter()
        .filter_map(|s| s["Sid"].as_str().map(str::to_owned))
        .collect();
    let mut on_everything = BTreeSet::new();
    for statement in statements_of_jobs() {
        let sid = statement["Sid"].as_str().expect("a Sid");
        assert!(sid.chars().all(|c| c.is_ascii_alphanumeric()), "{sid}");
        assert!(!first_sids.contains(sid), "Sid {sid} in both documents");
        for action in strings(&statement["Action"]) {
            assert!(!action.contains('*'), "{action}");
        }
        for resource in strings(&statement["Resource"]) {
            if resource == "*" {
                // Only with a condition that names the lab's launcher.
                assert!(
                    statement["Condition"]
                        .to_string()
                        .contains("hybridlab-launcher-")
                );
                on_everything.extend(strings(&statement["Action"]));
                continue;
            }
            assert!(
                resource.contains("hybridlab")
                    || resource.contains(":apigateway:")
                    || resource.contains(":event-source-mapping:"),
                "{resource} is not the variant's"
            );
        }
    }
    assert_eq!(
        on_everything,
        BTreeSet::from(["lambda:CreateEventSourceMapping".to_owned()])
    );
    // A mapping for another function is refused.
    let other = [(
        "lambda:FunctionArn".to_owned(),
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-elses"),
    )];
    assert!(
        allowing(
            &jobs_policy(),
            "lambda:CreateEventSourceMapping",
            "*",
            &other
        )
        .is_empty()
    );
}
