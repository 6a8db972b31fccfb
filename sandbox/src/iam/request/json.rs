//! The JSON-protocol services, whose operation is the `X-Amz-Target` header and whose
//! parameters are the body: DynamoDB (and DynamoDB Streams), CloudWatch Logs and Secrets
//! Manager.

use serde_json::Value;

use super::{Classified, HttpRequestParts, Outcome, Scope, request_tags};
use crate::iam::context::{RequestContext, Resource};

fn body(request: &HttpRequestParts<'_>) -> Result<Value, String> {
    if request.body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(request.body)
        .map_err(|err| format!("the body is not JSON ({err}); was it passed?"))
}

fn target<'a>(request: &HttpRequestParts<'a>, prefix: &str) -> Option<&'a str> {
    request.header("x-amz-target")?.strip_prefix(prefix)
}

fn text<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `[{"Key": k, "Value": v}]` (DynamoDB) or `{"k": "v"}` (Logs, Lambda).
pub(super) fn tags(value: Option<&Value>) -> Vec<(String, String)> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|tag| {
                Some((
                    tag.get("Key")?.as_str()?.to_owned(),
                    tag.get("Value")?.as_str().unwrap_or("").to_owned(),
                ))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

/// DynamoDB: `arn:aws:dynamodb:REGION:ACCOUNT:table/T` (`.../index/I` for a query or scan of
/// an index); BatchGetItem and BatchWriteItem per table of `RequestItems`; the transactions
/// per item with the item's own action
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
pub(super) fn dynamodb(request: &HttpRequestParts<'_>, scope: &Scope<'_>) -> Outcome {
    if let Some(operation) = target(request, "DynamoDBStreams_20120810.") {
        return dynamodb_streams(request, scope, operation);
    }
    let operation = target(request, "DynamoDB_20120810.")
        .ok_or("DynamoDB request without a DynamoDB_20120810 target")?;
    let body = body(request)?;
    let table = |name: &str| {
        if name.starts_with("arn:") {
            name.to_owned()
        } else {
            format!(
                "arn:aws:dynamodb:{}:{}:table/{name}",
                scope.region, scope.account
            )
        }
    };
    let named_table = || {
        text(&body, "TableName")
            .map(table)
            .ok_or_else(|| format!("DynamoDB {operation} without a TableName"))
    };
    let action = format!("dynamodb:{operation}");
    let check = |resource: String| {
        let mut check = RequestContext::new(action.clone(), Resource::arn(resource));
        for (field, key) in [
            ("Select", "dynamodb:Select"),
            ("ReturnValues", "dynamodb:ReturnValues"),
            ("ReturnConsumedCapacity", "dynamodb:ReturnConsumedCapacity"),
        ] {
            if let Some(value) = text(&body, field) {
                check.set_key(key, [value]);
            }
        }
        check
    };
    let checks = match operation {
        "PutItem"
        | "GetItem"
        | "UpdateItem"
        | "DeleteItem"
        | "DescribeTable"
        | "DeleteTable"
        | "UpdateTable"
        | "DescribeTimeToLive"
        | "UpdateTimeToLive"
        | "DescribeContinuousBackups"
        | "UpdateContinuousBackups"
        | "CreateBackup"
        | "DescribeKinesisStreamingDestination"
        | "DescribeTableReplicaAutoScaling" => {
            vec![check(named_table()?)]
        }
        "CreateTable" => {
            let mut create = check(named_table()?);
            request_tags(&mut create, &tags(body.get("Tags")));
            vec![create]
        }
        "Query" | "Scan" | "DescribeContributorInsights" | "UpdateContributorInsights" => {
            let table = named_table()?;
            vec![check(match text(&body, "IndexName") {
                Some(index) => format!("{table}/index/{index}"),
                None => table,
            })]
        }
        "BatchGetItem" | "BatchWriteItem" => {
            let tables: Vec<String> = body
                .get("RequestItems")
                .and_then(Value::as_object)
                .map(|items| items.keys().map(|name| table(name)).collect())
                .unwrap_or_default();
            if tables.is_empty() {
                return Err(format!("DynamoDB {operation} without RequestItems"));
            }
            tables.into_iter().map(check).collect()
        }
        "TransactWriteItems" | "TransactGetItems" => {
            let items = body
                .get("TransactItems")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut checks = Vec::new();
            for item in &items {
                let Some((kind, inner)) = item.as_object().and_then(|item| item.iter().next())
                else {
                    continue;
                };
                let action = match kind.as_str() {
                    "Put" => "dynamodb:PutItem",
                    "Update" => "dynamodb:UpdateItem",
                    "Delete" => "dynamodb:DeleteItem",
                    "ConditionCheck" => "dynamodb:ConditionCheckItem",
                    "Get" => "dynamodb:GetItem",
                    other => {
                        return Err(format!("DynamoDB {operation} item of unknown kind {other}"));
                    }
                };
                let name = text(inner, "TableName")
                    .ok_or_else(|| format!("DynamoDB {operation} item without a TableName"))?;
                checks.push(RequestContext::new(action, Resource::arn(table(name))));
            }
            if checks.is_empty() {
                return Err(format!("DynamoDB {operation} without TransactItems"));
            }
            checks
        }
        "TagResource"
        | "UntagResource"
        | "ListTagsOfResource"
        | "GetResourcePolicy"
        | "PutResourcePolicy"
        | "DeleteResourcePolicy" => {
            let arn = text(&body, "ResourceArn")
                .ok_or_else(|| format!("DynamoDB {operation} without a ResourceArn"))?;
            let mut tagged = check(arn.to_owned());
            if operation == "TagResource" {
                request_tags(&mut tagged, &tags(body.get("Tags")));
            }
            vec![tagged]
        }
        "ListTables"
        | "DescribeLimits"
        | "DescribeEndpoints"
        | "ListBackups"
        | "ListGlobalTables"
        | "ListExports"
        | "ListImports"
        | "ListContributorInsights" => vec![RequestContext::new(action.clone(), Resource::any())],
        other => {
            return Err(format!(
                "DynamoDB operation {other} is not one the sandbox knows"
            ));
        }
    };
    Ok(Classified::new(operation.to_owned(), checks))
}

fn dynamodb_streams(request: &HttpRequestParts<'_>, scope: &Scope<'_>, operation: &str) -> Outcome {
    let body = body(request)?;
    let action = format!("dynamodb:{operation}");
    let resource = match operation {
        "DescribeStream" | "GetShardIterator" => Resource::arn(
            text(&body, "StreamArn")
                .ok_or_else(|| format!("DynamoDB Streams {operation} without a StreamArn"))?,
        ),
        // The iterator is opaque: some stream of some table.
        "GetRecords" => Resource::unknown_runs(&[
            &format!("arn:aws:dynamodb:{}:{}:table/", scope.region, scope.account),
            "/stream/",
            "",
        ]),
        "ListStreams" => Resource::any(),
        other => {
            return Err(format!(
                "DynamoDB Streams operation {other} is not one the sandbox knows"
            ));
        }
    };
    Ok(Classified::one(operation, &action, resource))
}

/// CloudWatch Logs. Log-group operations are authorised on
/// `arn:aws:logs:REGION:ACCOUNT:log-group:G:log-stream:` (a stream part left empty, as AWS's
/// refusals name it: why `log-group:G:*` grants them and `log-group:G` does not), stream
/// operations on `...:log-group:G:log-stream:S`, DescribeLogGroups on
/// `...:log-group::log-stream:`; the newer ARN-addressed operations on the ARN given.
pub(super) fn logs(request: &HttpRequestParts<'_>, scope: &Scope<'_>) -> Outcome {
    let operation =
        target(request, "Logs_20140328.").ok_or("Logs request without a Logs_20140328 target")?;
    let body = body(request)?;
    let prefix = format!("arn:aws:logs:{}:{}:log-group:", scope.region, scope.account);
    // A group named or given by ARN (`logGroupIdentifier`).
    let group = || -> Result<String, String> {
        if let Some(name) = text(&body, "logGroupName") {
            return Ok(name.to_owned());
        }
        let identifier = text(&body, "logGroupIdentifier")
            .ok_or_else(|| format!("Logs {operation} without a logGroupName"))?;
        Ok(identifier
            .split_once(":log-group:")
            .map_or(identifier, |(_, rest)| rest.trim_end_matches(":*"))
            .to_owned())
    };
    let action = format!("logs:{operation}");
    let checks = match operation {
        "CreateLogStream" | "DeleteLogStream" | "PutLogEvents" | "GetLogEvents" => {
            let stream = text(&body, "logStreamName")
                .ok_or_else(|| format!("Logs {operation} without a logStreamName"))?;
            vec![RequestContext::new(
                action,
                Resource::arn(format!("{prefix}{}:log-stream:{stream}", group()?)),
            )]
        }
        "CreateLogGroup" => {
            let mut check = RequestContext::new(
                action,
                Resource::arn(format!("{prefix}{}:log-stream:", group()?)),
            );
            request_tags(&mut check, &tags(body.get("tags")));
            vec![check]
        }
        "DeleteLogGroup"
        | "DescribeLogStreams"
        | "FilterLogEvents"
        | "PutRetentionPolicy"
        | "DeleteRetentionPolicy"
        | "PutSubscriptionFilter"
        | "DeleteSubscriptionFilter"
        | "DescribeSubscriptionFilters"
        | "PutMetricFilter"
        | "DeleteMetricFilter"
        | "TagLogGroup"
        | "UntagLogGroup"
        | "ListTagsLogGroup"
        | "AssociateKmsKey"
        | "DisassociateKmsKey"
        | "GetLogGroupFields" => {
            vec![RequestContext::new(
                action,
                Resource::arn(format!("{prefix}{}:log-stream:", group()?)),
            )]
        }
        "StartQuery" => {
            let mut groups: Vec<String> = body
                .get("logGroupNames")
                .or_else(|| body.get("logGroupIdentifiers"))
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(name) = text(&body, "logGroupName") {
                groups.push(name.to_owned());
            }
            if groups.is_empty() {
                return Err("Logs StartQuery without log groups".into());
            }
            groups
                .into_iter()
                .map(|name| {
                    RequestContext::new(
                        action.clone(),
                        Resource::arn(format!("{prefix}{name}:log-stream:")),
                    )
                })
                .collect()
        }
        "DescribeLogGroups" => vec![RequestContext::new(
            action,
            Resource::arn(format!("{prefix}:log-stream:")),
        )],
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            let arn = text(&body, "resourceArn")
                .ok_or_else(|| format!("Logs {operation} without a resourceArn"))?;
            let mut check = RequestContext::new(action, Resource::arn(arn));
            request_tags(&mut check, &tags(body.get("tags")));
            vec![check]
        }
        "DescribeQueries"
        | "GetQueryResults"
        | "StopQuery"
        | "DescribeDestinations"
        | "DescribeResourcePolicies"
        | "DescribeMetricFilters"
        | "DescribeExportTasks"
        | "TestMetricFilter" => {
            vec![RequestContext::new(action, Resource::any())]
        }
        other => {
            return Err(format!(
                "Logs operation {other} is not one the sandbox knows"
            ));
        }
    };
    Ok(Classified::new(operation.to_owned(), checks))
}

/// Secrets Manager. A secret's ARN ends in `-` and six random characters; a request naming
/// the secret without them is matched with those six unknown (so `secret:NAME-*`,
/// `secret:NAME-??????` and the exact ARN all grant it) unless the lookups know the ARN.
/// Refusals name the secret as the request gave it, as Secrets Manager's do.
pub(super) fn secrets_manager(request: &HttpRequestParts<'_>, scope: &Scope<'_>) -> Outcome {
    let operation = target(request, "secretsmanager.")
        .ok_or("Secrets Manager request without a secretsmanager target")?;
    let body = body(request)?;
    let action = format!("secretsmanager:{operation}");
    let secret = |id: &str| -> Resource {
        let resource = if let Some(arn) = scope.lookups.secret_arn(id) {
            Resource::arn(arn)
        } else if id.starts_with("arn:") {
            // A full ARN ends in `-` and six characters; a partial one does not.
            let full = id.rsplit_once('-').is_some_and(|(_, suffix)| {
                suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
            });
            if full {
                Resource::arn(id)
            } else {
                Resource::unknown_suffix(&format!("{id}-"), 6)
            }
        } else {
            Resource::unknown_suffix(
                &format!(
                    "arn:aws:secretsmanager:{}:{}:secret:{id}-",
                    scope.region, scope.account
                ),
                6,
            )
        };
        resource.named(id)
    };
    let checks = match operation {
        "GetSecretValue"
        | "DescribeSecret"
        | "PutSecretValue"
        | "UpdateSecret"
        | "DeleteSecret"
        | "RestoreSecret"
        | "RotateSecret"
        | "CancelRotateSecret"
        | "GetResourcePolicy"
        | "PutResourcePolicy"
        | "DeleteResourcePolicy"
        | "ListSecretVersionIds"
        | "UpdateSecretVersionStage"
        | "ValidateResourcePolicy"
        | "TagResource"
        | "UntagResource" => {
            let id = text(&body, "SecretId")
                .ok_or_else(|| format!("Secrets Manager {operation} without a SecretId"))?;
            let mut check =
                RequestContext::new(action, secret(id)).with_key("secretsmanager:SecretId", [id]);
            for (field, key) in [
                ("VersionId", "secretsmanager:VersionId"),
                ("VersionStage", "secretsmanager:VersionStage"),
            ] {
                if let Some(value) = text(&body, field) {
                    check.set_key(key, [value]);
                }
            }
            if operation == "TagResource" {
                request_tags(&mut check, &tags(body.get("Tags")));
            }
            vec![check]
        }
        "CreateSecret" => {
            let name = text(&body, "Name").ok_or("Secrets Manager CreateSecret without a Name")?;
            let mut check =
                RequestContext::new(action, secret(name)).with_key("secretsmanager:Name", [name]);
            request_tags(&mut check, &tags(body.get("Tags")));
            vec![check]
        }
        "BatchGetSecretValue" => {
            let mut checks = vec![RequestContext::new(action, Resource::any())];
            for id in body
                .get("SecretIdList")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                checks.push(
                    RequestContext::new("secretsmanager:GetSecretValue", secret(id))
                        .with_key("secretsmanager:SecretId", [id]),
                );
            }
            checks
        }
        "ListSecrets" | "GetRandomPassword" => vec![RequestContext::new(action, Resource::any())],
        other => {
            return Err(format!(
                "Secrets Manager operation {other} is not one the sandbox knows"
            ));
        }
    };
    Ok(Classified::new(operation.to_owned(), checks))
}
