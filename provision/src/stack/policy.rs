//! The stack's IAM documents: who may assume each role and the least each role needs. Every
//! action is named and every resource is one of the stack's own ARNs, never `*`.

use serde_json::{Value, json};

use super::names::{IAM_PATH, StackNames};

/// Where ARNs are built: partition, region and account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnContext {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl ArnContext {
    /// The context of `region`, for the account that owns `role_arn`
    /// (`arn:aws:iam::123456789012:role/...`).
    pub fn from_role_arn(role_arn: &str, region: &str) -> Option<Self> {
        let mut parts = role_arn.split(':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        (!account.is_empty()).then(|| Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }

    fn log_group(&self, group: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{group}:*",
            self.partition, self.region, self.account
        )
    }
}

/// The trust policy that lets `service` (e.g. `lambda.amazonaws.com`) assume a role.
pub fn trust_policy(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The proxy function's role: writing its own log group, nothing else (it reaches the
/// server over HTTP, not through AWS).
pub fn lambda_policy(names: &StackNames, arns: &ArnContext) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [arns.log_group(&names.function_log_group)]
        }]
    })
}

/// The server role's statement for its binary and environment file in the artifacts bucket
/// (the CloudFormation template, which fetches them elsewhere, leaves it out).
pub const FETCH_SERVER_ARTIFACTS: &str = "FetchServerArtifacts";

fn table_arn(names: &StackNames, arns: &ArnContext) -> String {
    format!(
        "arn:{}:dynamodb:{}:{}:table/{}",
        arns.partition, arns.region, arns.account, names.table
    )
}

fn objects_arn(arns: &ArnContext, bucket: &str, prefix: &str) -> String {
    format!("arn:{}:s3:::{bucket}/{prefix}*", arns.partition)
}

/// The server instance's role: its artifacts, its images, its table and its log group; with
/// the pipeline also the uploads it accepts (and presigns) and the variants it links to.
pub fn server_policy(names: &StackNames, arns: &ArnContext, pipeline: bool) -> Value {
    let partition = &arns.partition;
    let table = table_arn(names, arns);
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": FETCH_SERVER_ARTIFACTS,
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:{partition}:s3:::{}/server/*", names.artifacts_bucket)]
            },
            {
                "Sid": "StoreImages",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                "Resource": [format!("arn:{partition}:s3:::{}/images/*", names.images_bucket)]
            },
            {
                "Sid": "ImageRows",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"],
                "Resource": [table]
            },
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [arns.log_group(&names.server_log_group)]
            }
        ]
    });
    if pipeline && let Some(statements) = policy["Statement"].as_array_mut() {
        statements.extend([
            // DeleteObject: an upload whose row cannot be written is removed again.
            json!({
                "Sid": "AcceptUploads",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                "Resource": [objects_arn(arns, &names.uploads_bucket, "uploads/")]
            }),
            json!({
                "Sid": "LinkVariants",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [objects_arn(arns, &names.processed_bucket, "images/")]
            }),
        ]);
    }
    policy
}

/// The resizer function's role: read the uploads (the exact version an event names, which S3
/// authorises as `s3:GetObjectVersion`), write (and clean up) the variants, move
/// rows through their statuses, write its own log group. It cannot change the uploads it
/// reads, and cannot create or delete rows. It may list the uploads bucket: without
/// `s3:ListBucket` S3 answers a read of a missing object with 403 instead of 404, and the
/// resizer could not tell an upload deleted since its event from a fault worth a retry.
pub fn resizer_policy(names: &StackNames, arns: &ArnContext) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadUploads",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": [objects_arn(arns, &names.uploads_bucket, "uploads/")]
            },
            {
                "Sid": "TellMissingUploads",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:{}:s3:::{}", arns.partition, names.uploads_bucket)]
            },
            {
                "Sid": "WriteVariants",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": [objects_arn(arns, &names.processed_bucket, "images/")]
            },
            {
                "Sid": "RowStatus",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                "Resource": [table_arn(names, arns)]
            },
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [arns.log_group(&names.resizer_log_group)]
            }
        ]
    })
}

fn jobs_table_arn(names: &StackNames, arns: &ArnContext) -> String {
    format!(
        "arn:{}:dynamodb:{}:{}:table/{}",
        arns.partition, arns.region, arns.account, names.jobs_table
    )
}

/// The submit function's role: create, read and list job rows (and fail a job whose worker
/// went silent past its lease, when it reads one), presign the input's upload (a presigned
/// URL carries the signer's permissions), write its own log group.
pub fn submit_policy(names: &StackNames, arns: &ArnContext) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "JobRows",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem"],
                "Resource": [jobs_table_arn(names, arns)]
            },
            {
                "Sid": "PresignInputs",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [format!("arn:{}:s3:::{}/jobs/*/input", arns.partition, names.jobs_bucket)]
            },
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [arns.log_group(&names.submit_log_group)]
            }
        ]
    })
}

/// The statement of the launcher's role whose `Resource` is `*`, because the action takes
/// none: `dynamodb:ListStreams`, which Lambda's poller calls with the function's role.
pub const LIST_STREAMS: &str = "ListStreams";

/// The launcher function's role: read the jobs table's stream (Lambda polls it with this
/// role), scan and update the rows, launch workers and terminate lost ones, pass the worker's
/// role to them, write its own log group. RunInstances also touches resources that are not
/// the stack's (the AMI, the default subnet and security group, the new volume and network
/// interface): the instance itself must carry the stack's tag, and only instances that
/// carry it can be terminated.
pub fn launcher_policy(names: &StackNames, arns: &ArnContext, stack_id: &str) -> Value {
    let ec2 = |kind: &str| {
        format!(
            "arn:{}:ec2:{}:{}:{kind}/*",
            arns.partition, arns.region, arns.account
        )
    };
    let table = jobs_table_arn(names, arns);
    let stack_tag = format!("aws:RequestTag/{}", hybridlab_wire::tags::STACK_TAG);
    let resource_tag = format!("ec2:ResourceTag/{}", hybridlab_wire::tags::STACK_TAG);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadJobsStream",
                "Effect": "Allow",
                "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                "Resource": [format!("{table}/stream/*")]
            },
            {
                "Sid": LIST_STREAMS,
                "Effect": "Allow",
                "Action": ["dynamodb:ListStreams"],
                "Resource": "*"
            },
            {
                "Sid": "JobRows",
                "Effect": "Allow",
                "Action": ["dynamodb:Scan", "dynamodb:UpdateItem"],
                "Resource": [table]
            },
            {
                "Sid": "LaunchTaggedWorkers",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances"],
                "Resource": [ec2("instance")],
                "Condition": {"StringEquals": {stack_tag: stack_id}}
            },
            {
                "Sid": "LaunchWith",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances"],
                "Resource": [
                    ec2("volume"),
                    ec2("network-interface"),
                    ec2("subnet"),
                    ec2("security-group"),
                    format!("arn:{}:ec2:{}::image/*", arns.partition, arns.region)
                ]
            },
            {
                "Sid": "TagWorkersAtLaunch",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": [ec2("instance"), ec2("volume")],
                "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}}
            },
            {
                "Sid": "TerminateOwnWorkers",
                "Effect": "Allow",
                "Action": ["ec2:TerminateInstances"],
                "Resource": [ec2("instance")],
                "Condition": {"StringEquals": {resource_tag: stack_id}}
            },
            {
                "Sid": "PassWorkerRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [format!("arn:{}:iam::{}:role{IAM_PATH}{}", arns.partition, arns.account, names.worker_role)],
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
            },
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [arns.log_group(&names.launcher_log_group)]
            }
        ]
    })
}

/// The statement of the worker's role that reads its binary from the artifacts bucket
/// (CloudFormation, which cannot upload there, swaps it for its code bucket).
pub const FETCH_WORKER: &str = "FetchWorker";

/// A job worker's role: its binary, its job's input and outputs, its job's row.
pub fn worker_policy(names: &StackNames, arns: &ArnContext) -> Value {
    let partition = &arns.partition;
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": FETCH_WORKER,
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:{partition}:s3:::{}/{}", names.artifacts_bucket, super::plan::WORKER_BINARY_KEY)]
            },
            {
                "Sid": "ReadInputs",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:{partition}:s3:::{}/jobs/*/input", names.jobs_bucket)]
            },
            {
                "Sid": "WriteOutputs",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [format!("arn:{partition}:s3:::{}/jobs/*/output/*", names.jobs_bucket)]
            },
            {
                "Sid": "JobRow",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                "Resource": [jobs_table_arn(names, arns)]
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::names::StackId;

    fn context() -> ArnContext {
        ArnContext::from_role_arn(
            "arn:aws:iam::123456789012:role/hybridlab/hybridlab-lambda-abcd1234",
            "eu-west-1",
        )
        .expect("a role ARN")
    }

    fn strings(value: &Value) -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().flat_map(strings).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn role_arns_give_the_account_and_partition() {
        let context = context();
        assert_eq!(context.account, "123456789012");
        assert_eq!(context.partition, "aws");
        assert_eq!(ArnContext::from_role_arn("not-an-arn", "us-east-1"), None);
        assert_eq!(
            ArnContext::from_role_arn("arn:aws:s3:::bucket", "us-east-1"),
            None
        );
    }

    #[test]
    fn no_policy_grants_a_wildcard_action_or_resource() {
        let names = StackNames::new(&StackId::parse("abcd1234").expect("valid"));
        for policy in [
            lambda_policy(&names, &context()),
            server_policy(&names, &context(), false),
            server_policy(&names, &context(), true),
            resizer_policy(&names, &context()),
            submit_policy(&names, &context()),
            worker_policy(&names, &context()),
        ] {
            let statements = policy["Statement"].as_array().expect("statements");
            assert!(!statements.is_empty());
            for statement in statements {
                let actions = strings(&statement["Action"]);
                assert!(!actions.is_empty());
                for action in actions {
                    assert!(!action.contains('*'), "wildcard action {action}");
                }
                for resource in strings(&statement["Resource"]) {
                    assert!(resource.starts_with("arn:aws:"), "{resource}");
                    assert!(
                        resource.contains("abcd1234"),
                        "{resource} is not the stack's own"
                    );
                    assert_ne!(resource, "*");
                }
            }
        }
    }

    #[test]
    fn the_resizer_cannot_write_where_it_is_triggered() {
        let names = StackNames::new(&StackId::parse("abcd1234").expect("valid"));
        let policy = resizer_policy(&names, &context());
        let writes: Vec<String> = policy["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .filter(|statement| strings(&statement["Action"]).contains(&"s3:PutObject".into()))
            .flat_map(|statement| strings(&statement["Resource"]))
            .collect();
        assert_eq!(
            writes,
            vec!["arn:aws:s3:::hybridlab-processed-abcd1234/images/*"]
        );
        // Without the pipeline the server is granted nothing of its buckets.
        let plain = server_policy(&names, &context(), false).to_string();
        assert!(!plain.contains(&names.uploads_bucket));
        assert!(
            server_policy(&names, &context(), true)
                .to_string()
                .contains(&names.uploads_bucket)
        );
    }

    #[test]
    fn the_launcher_launches_and_terminates_only_instances_tagged_with_its_stack() {
        let names = StackNames::new(&StackId::parse("abcd1234").expect("valid"));
        let policy = launcher_policy(&names, &context(), "abcd1234");
        let statements = policy["Statement"].as_array().expect("statements");
        for statement in statements {
            for action in strings(&statement["Action"]) {
                assert!(!action.contains('*'), "wildcard action {action}");
            }
            let resources = strings(&statement["Resource"]);
            // Only ListStreams, which takes no resource, is granted on `*`.
            assert_eq!(
                resources.contains(&"*".to_owned()),
                statement["Sid"] == LIST_STREAMS,
                "{statement}"
            );
            let instances = resources.iter().any(|r| r.ends_with(":instance/*"));
            let actions = strings(&statement["Action"]);
            if instances && !actions.contains(&"ec2:CreateTags".to_owned()) {
                let condition = statement["Condition"]["StringEquals"].to_string();
                assert!(
                    condition.contains("hybridlab:stack") && condition.contains("abcd1234"),
                    "{statement}"
                );
            }
        }
        // The worker's role, and only to EC2.
        let pass = statements
            .iter()
            .find(|s| strings(&s["Action"]) == ["iam:PassRole"])
            .expect("PassRole");
        assert_eq!(
            strings(&pass["Resource"]),
            ["arn:aws:iam::123456789012:role/hybridlab/hybridlab-worker-abcd1234"]
        );
        assert_eq!(
            pass["Condition"]["StringEquals"]["iam:PassedToService"],
            "ec2.amazonaws.com"
        );
    }

    #[test]
    fn the_function_may_write_only_its_own_log_group() {
        let names = StackNames::new(&StackId::parse("abcd1234").expect("valid"));
        let policy = lambda_policy(&names, &context());
        assert_eq!(
            strings(&policy["Statement"][0]["Resource"]),
            vec![
                "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/hybridlab-proxy-abcd1234:*"
            ]
        );
    }
}
