//! Every AWS call the stack's programs make, as the IAM action AWS authorises it as and the
//! resource it lands on: the image server (and its instance's boot script and CloudWatch
//! agent), the proxy function and the resizer. The roles' policies ([`super::policy`]) are
//! audited against this table: a test holds every entry to the policy documents `up` and
//! both exports create, and the table to the programs' sources (a new SDK call without an
//! entry fails it). To add a call, add one line to [`CALLS`].

use super::names::StackNames;
use super::policy::ArnContext;

/// A program that runs with one of the stack's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// `hybridlab-ec2-server`, with the instance's role.
    Server,
    /// The instance's user-data script and its CloudWatch agent, with the instance's role.
    ServerBoot,
    /// The proxy function, with its execution role.
    Proxy,
    /// The resizer function, with its execution role.
    Resizer,
}

impl Caller {
    /// The source files of the program, relative to the workspace root (empty for callers
    /// that are no Rust program).
    pub fn sources(self) -> &'static [&'static str] {
        match self {
            Caller::Server => &["ec2-server/src"],
            Caller::ServerBoot => &[],
            Caller::Proxy => &["lambda/src/proxy.rs", "lambda/src/bin/proxy.rs"],
            Caller::Resizer => &["lambda/src/resizer.rs", "lambda/src/bin/resizer.rs"],
        }
    }

    /// The crate whose `Cargo.toml` names the program's SDK crates.
    pub fn crate_dir(self) -> Option<&'static str> {
        match self {
            Caller::Server => Some("ec2-server"),
            Caller::ServerBoot => None,
            Caller::Proxy | Caller::Resizer => Some("lambda"),
        }
    }
}

/// How the call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// An operation of an AWS SDK for Rust client, by its method name (`put_object`). A
    /// presigned request counts: AWS authorises it as the signer when it is used.
    Sdk(&'static str),
    /// Something else running with the role: the AWS CLI in the user-data, the CloudWatch
    /// agent, Lambda writing a function's output to its log group.
    Other(&'static str),
}

/// Which of the stack's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketOf {
    Images,
    Artifacts,
    Uploads,
    Processed,
    /// The job-worker variant's inputs and outputs.
    Jobs,
}

/// Which of the stack's log groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogGroupOf {
    Server,
    Proxy,
    Resizer,
    /// The job-worker variant's functions.
    Submit,
    Launcher,
}

/// What a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An object of a bucket; the key is an example of the keys the program uses.
    Object(BucketOf, &'static str),
    /// The bucket itself (`s3:ListBucket`).
    Bucket(BucketOf),
    Table,
    /// A stream of a log group (`logs:CreateLogStream`, `logs:PutLogEvents`).
    LogStream(LogGroupOf),
    /// The log group's streams (`logs:DescribeLogStreams`).
    LogGroup(LogGroupOf),
    /// The CloudFormation stack's token secret (its logical id).
    TokenSecret,
    /// The server binary in the CloudFormation stack's code bucket (its parameters).
    CodeObject,
}

/// How a stack was made: the instance boots differently in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `hybridlab up` and the Terraform module: the binary and the environment file are
    /// objects of the artifacts bucket.
    ArtifactsBucket,
    /// The CloudFormation template: the binary is in the code bucket, the token a secret.
    CloudFormation,
}

/// One call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub caller: Caller,
    pub how: How,
    /// The IAM action AWS checks.
    pub action: &'static str,
    pub target: Target,
    /// Only a stack with the pipeline makes it.
    pub pipeline_only: bool,
    /// Only a stack made this way makes it (`None`: every stack).
    pub via: Option<Via>,
}

const fn sdk(
    caller: Caller,
    operation: &'static str,
    action: &'static str,
    target: Target,
) -> Call {
    Call {
        caller,
        how: How::Sdk(operation),
        action,
        target,
        pipeline_only: false,
        via: None,
    }
}

const fn other(caller: Caller, what: &'static str, action: &'static str, target: Target) -> Call {
    Call {
        caller,
        how: How::Other(what),
        action,
        target,
        pipeline_only: false,
        via: None,
    }
}

impl Call {
    const fn pipeline(self) -> Self {
        Self {
            pipeline_only: true,
            ..self
        }
    }

    const fn via(self, via: Via) -> Self {
        Self {
            via: Some(via),
            ..self
        }
    }

    /// Whether a stack with `pipeline`, made `via`, makes this call.
    pub fn applies(&self, pipeline: bool, via: Via) -> bool {
        (pipeline || !self.pipeline_only) && self.via.is_none_or(|only| only == via)
    }

    /// The operation's name as the SDK spells it, for SDK calls.
    pub fn operation(&self) -> Option<&'static str> {
        match self.how {
            How::Sdk(operation) => Some(operation),
            How::Other(_) => None,
        }
    }
}

use BucketOf::{Artifacts, Images, Processed, Uploads};
use Caller::{Proxy, Resizer, Server, ServerBoot};
use Target::{Bucket, CodeObject, LogGroup, LogStream, Object, Table, TokenSecret};

/// Every call, by program. HeadObject is authorised as `s3:GetObject`, DeleteObjects as
/// `s3:DeleteObject` on each key, a read of a given version as `s3:GetObjectVersion`.
pub const CALLS: &[Call] = &[
    // The image server: `/process-image` stores an original and its variants (and deletes
    // them again when a later step fails), writes the row; the gallery and the API read rows
    // and presign GETs.
    sdk(
        Server,
        "put_object",
        "s3:PutObject",
        Object(Images, "images/0001/original.jpg"),
    ),
    sdk(
        Server,
        "delete_object",
        "s3:DeleteObject",
        Object(Images, "images/0001/original.jpg"),
    ),
    sdk(
        Server,
        "get_object",
        "s3:GetObject",
        Object(Images, "images/0001/thumbnail.jpg"),
    ),
    sdk(Server, "put_item", "dynamodb:PutItem", Table),
    sdk(Server, "scan", "dynamodb:Scan", Table),
    sdk(Server, "get_item", "dynamodb:GetItem", Table),
    sdk(Server, "update_item", "dynamodb:UpdateItem", Table),
    // With the pipeline: an upload is stored (or presigned for the browser's PUT) in the
    // uploads bucket and deleted again when its row cannot be written; the gallery presigns
    // GETs of uploaded originals and of the resizer's variants.
    sdk(
        Server,
        "put_object",
        "s3:PutObject",
        Object(Uploads, "uploads/0001/cat.jpg"),
    )
    .pipeline(),
    sdk(
        Server,
        "delete_object",
        "s3:DeleteObject",
        Object(Uploads, "uploads/0001/cat.jpg"),
    )
    .pipeline(),
    sdk(
        Server,
        "get_object",
        "s3:GetObject",
        Object(Uploads, "uploads/0001/cat.jpg"),
    )
    .pipeline(),
    sdk(
        Server,
        "get_object",
        "s3:GetObject",
        Object(Processed, "images/0001/small.jpg"),
    )
    .pipeline(),
    // The instance's boot: the binary and the environment file, then the CloudWatch agent.
    other(
        ServerBoot,
        "aws s3 cp",
        "s3:GetObject",
        Object(Artifacts, "server/hybridlab-ec2-server"),
    )
    .via(Via::ArtifactsBucket),
    other(
        ServerBoot,
        "aws s3 cp",
        "s3:GetObject",
        Object(Artifacts, "server/server.env"),
    )
    .via(Via::ArtifactsBucket),
    other(ServerBoot, "aws s3 cp", "s3:GetObject", CodeObject).via(Via::CloudFormation),
    other(
        ServerBoot,
        "aws secretsmanager get-secret-value",
        "secretsmanager:GetSecretValue",
        TokenSecret,
    )
    .via(Via::CloudFormation),
    other(
        ServerBoot,
        "CloudWatch agent",
        "logs:CreateLogStream",
        LogStream(LogGroupOf::Server),
    ),
    other(
        ServerBoot,
        "CloudWatch agent",
        "logs:PutLogEvents",
        LogStream(LogGroupOf::Server),
    ),
    other(
        ServerBoot,
        "CloudWatch agent",
        "logs:DescribeLogStreams",
        LogGroup(LogGroupOf::Server),
    ),
    // The proxy reaches the server over HTTP; Lambda writes its output with its role.
    other(
        Proxy,
        "Lambda's log delivery",
        "logs:CreateLogStream",
        LogStream(LogGroupOf::Proxy),
    ),
    other(
        Proxy,
        "Lambda's log delivery",
        "logs:PutLogEvents",
        LogStream(LogGroupOf::Proxy),
    ),
    // The resizer: reads the upload an event names (HEAD for its metadata, then the body),
    // moves the row through its statuses, writes the variants and deletes them again when
    // one fails.
    sdk(
        Resizer,
        "head_object",
        "s3:GetObject",
        Object(Uploads, "uploads/0001/cat.jpg"),
    )
    .pipeline(),
    // Without s3:ListBucket S3 answers a missing object with 403, not 404, and the resizer
    // would retry an upload deleted since its event instead of skipping it.
    sdk(Resizer, "head_object", "s3:ListBucket", Bucket(Uploads)).pipeline(),
    sdk(
        Resizer,
        "get_object",
        "s3:GetObject",
        Object(Uploads, "uploads/0001/cat.jpg"),
    )
    .pipeline(),
    sdk(Resizer, "get_object", "s3:ListBucket", Bucket(Uploads)).pipeline(),
    // The event names the version that arrived; reading that one (not whatever is newest) is
    // authorised as s3:GetObjectVersion.
    sdk(
        Resizer,
        "head_object",
        "s3:GetObjectVersion",
        Object(Uploads, "uploads/0001/cat.jpg"),
    )
    .pipeline(),
    sdk(
        Resizer,
        "get_object",
        "s3:GetObjectVersion",
        Object(Uploads, "uploads/0001/cat.jpg"),
    )
    .pipeline(),
    sdk(Resizer, "get_item", "dynamodb:GetItem", Table).pipeline(),
    sdk(Resizer, "update_item", "dynamodb:UpdateItem", Table).pipeline(),
    sdk(
        Resizer,
        "put_object",
        "s3:PutObject",
        Object(Processed, "images/0001/small.jpg"),
    )
    .pipeline(),
    sdk(
        Resizer,
        "delete_objects",
        "s3:DeleteObject",
        Object(Processed, "images/0001/small.jpg"),
    )
    .pipeline(),
    other(
        Resizer,
        "Lambda's log delivery",
        "logs:CreateLogStream",
        LogStream(LogGroupOf::Resizer),
    )
    .pipeline(),
    other(
        Resizer,
        "Lambda's log delivery",
        "logs:PutLogEvents",
        LogStream(LogGroupOf::Resizer),
    )
    .pipeline(),
];

impl Target {
    /// The ARN AWS authorises the call on, in stack `names` and `arns`; `TokenSecret` and
    /// `CodeObject` are the template's own and are named by the caller (`secret`, `code`).
    pub fn arn(&self, names: &StackNames, arns: &ArnContext, secret: &str, code: &str) -> String {
        let bucket = |of: &BucketOf| match of {
            Images => names.images_bucket.as_str(),
            Artifacts => names.artifacts_bucket.as_str(),
            Uploads => names.uploads_bucket.as_str(),
            Processed => names.processed_bucket.as_str(),
            BucketOf::Jobs => names.jobs_bucket.as_str(),
        };
        let group = |of: &LogGroupOf| match of {
            LogGroupOf::Server => names.server_log_group.as_str(),
            LogGroupOf::Proxy => names.function_log_group.as_str(),
            LogGroupOf::Resizer => names.resizer_log_group.as_str(),
            LogGroupOf::Submit => names.submit_log_group.as_str(),
            LogGroupOf::Launcher => names.launcher_log_group.as_str(),
        };
        let ArnContext {
            partition,
            region,
            account,
        } = arns;
        match self {
            Object(of, key) => format!("arn:{partition}:s3:::{}/{key}", bucket(of)),
            Bucket(of) => format!("arn:{partition}:s3:::{}", bucket(of)),
            Table => format!(
                "arn:{partition}:dynamodb:{region}:{account}:table/{}",
                names.table
            ),
            LogStream(of) => format!(
                "arn:{partition}:logs:{region}:{account}:log-group:{}:log-stream:i-0123456789abcdef0",
                group(of)
            ),
            LogGroup(of) => format!(
                "arn:{partition}:logs:{region}:{account}:log-group:{}:*",
                group(of)
            ),
            TokenSecret => secret.to_owned(),
            CodeObject => code.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
