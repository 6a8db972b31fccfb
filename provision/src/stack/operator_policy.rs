//! The operator's IAM identity policy: the least a student's own IAM user needs to run
//! `hybridlab up`, `status`, `invoke`, `bench`, `logs`, `s3`, `db` and `down` against AWS, and
//! with the pipeline also `up --with pipeline` and `upload`. Two tables say it, in this file
//! only: [`OPERATOR_CALLS`], every AWS call those commands make with the student's credentials,
//! as the IAM action AWS checks and the resource it lands on; and [`GRANTS`], the statements
//! that allow exactly those, on resources named as [`super::names`] names them and, on EC2,
//! tagged with [`STACK_TAG`]. [`operator_policy`] renders the grants as a policy document for
//! one region. The tests hold every call to the document, every statement to a call that needs
//! it, and the call table to the commands' sources (a new SDK call without an entry fails).
//!
//! Out of scope: what the stack's own programs call with their roles (the server and the
//! functions, see [`super::calls`] and [`super::policy`]); the Terraform and CloudFormation
//! exports and `up --via terraform` / `down --via terraform`, whose AWS calls Terraform or
//! CloudFormation make with whatever credentials they are given; the local sandbox's own
//! endpoints. The job-worker variant's calls ([`JOBS_CALLS`]) are granted by a second
//! document ([`jobs_operator_policy`], [`JOBS_GRANTS`]): the first is near IAM's size limit.
//!
//! One document allows one region (S3 and IAM names have none): `down --all` still finds the
//! stacks of other regions, whose listings are granted on `*`, but deleting them there needs
//! that region's document.

use serde_json::{Value, json};

use super::calls::{BucketOf, How, LogGroupOf};
use super::names::{IAM_PATH, NAME_PREFIX, StackId, StackNames};
use super::plan::{SERVER_BINARY_KEY, SERVER_ENV_KEY, WORKER_BINARY_KEY};
use hybridlab_wire::tags::STACK_TAG;

/// The partition the ARNs name: AWS's commercial regions (not China or GovCloud).
const PARTITION: &str = "aws";

/// Which of the stack's functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionOf {
    Proxy,
    Resizer,
    /// The job-worker variant's functions.
    Submit,
    Launcher,
}

/// Which of the stack's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleOf {
    /// The proxy function's execution role.
    Lambda,
    /// The server instance's role (in its instance profile).
    Server,
    Resizer,
    /// The job-worker variant's: its functions' execution roles, and the workers' role (in
    /// their instance profile).
    Submit,
    Launcher,
    Worker,
}

/// A kind of EC2 resource the server's launch touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ec2Kind {
    Instance,
    Volume,
    NetworkInterface,
    SecurityGroup,
    Subnet,
    Vpc,
    /// An AMI: its ARN names no account (Amazon's images are no account's of the student).
    Image,
}

impl Ec2Kind {
    /// The resource type in an ARN (`instance` in `...:instance/i-...`).
    pub fn arn_type(self) -> &'static str {
        match self {
            Ec2Kind::Instance => "instance",
            Ec2Kind::Volume => "volume",
            Ec2Kind::NetworkInterface => "network-interface",
            Ec2Kind::SecurityGroup => "security-group",
            Ec2Kind::Subnet => "subnet",
            Ec2Kind::Vpc => "vpc",
            Ec2Kind::Image => "image",
        }
    }

    /// The prefix of its ids (`i` in `i-0123...`).
    pub fn id_prefix(self) -> &'static str {
        match self {
            Ec2Kind::Instance => "i",
            Ec2Kind::Volume => "vol",
            Ec2Kind::NetworkInterface => "eni",
            Ec2Kind::SecurityGroup => "sg",
            Ec2Kind::Subnet => "subnet",
            Ec2Kind::Vpc => "vpc",
            Ec2Kind::Image => "ami",
        }
    }
}

/// What a call lands on, or a grant allows: resources of the lab, named as
/// [`StackNames`] names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// `*`: the action has no resource-level permissions, or is authorised on something that
    /// is no resource of the lab.
    Everything,
    Buckets(&'static [BucketOf]),
    /// A bucket named `hybridlab-*` but not the way [`StackNames`] names buckets: `down` and
    /// `status` read its tags to tell whether it is a stack's.
    BucketsNamedLikeTheLab,
    /// Any object of these buckets.
    Objects(&'static [BucketOf]),
    /// One key of a bucket.
    Object(BucketOf, &'static str),
    Table,
    Functions(&'static [FunctionOf]),
    LogGroups(&'static [LogGroupOf]),
    /// Roles under the lab's IAM path.
    Roles(&'static [RoleOf]),
    /// Roles by their names, under any path: GetRole of a role that does not exist yet has no
    /// path for IAM to put in the ARN it checks, so the lookup may be checked at the root.
    RolesByName(&'static [RoleOf]),
    InstanceProfile,
    /// The instance profile by its name, under any path, like [`On::RolesByName`].
    InstanceProfileByName,
    Ec2(Ec2Kind),
    /// API Gateway's collection of HTTP APIs (`/apis`): GetApis is authorised on it, and an
    /// API's name is no part of its ARN, so the listing cannot be narrowed to the lab's.
    ApiCollection,
    /// A path of the jobs' HTTP API (`/apis/*/routes`): API Gateway authorises each call on
    /// its path, which holds the API's id, not its name; `*` stands for the ids.
    ApiPath(&'static str),
    /// The jobs table.
    JobsTable,
    /// The workers' instance profile, and by its name under any path.
    WorkerProfile,
    WorkerProfileByName,
    /// Event source mappings: their ARNs hold a UUID, not the function's name.
    EventSourceMappings,
}

/// Every bucket of a stack; the last two only with the pipeline.
pub const ALL_BUCKETS: &[BucketOf] = &[
    BucketOf::Images,
    BucketOf::Artifacts,
    BucketOf::Uploads,
    BucketOf::Processed,
];
/// The buckets `up` versions (the artifacts bucket keeps one copy of each file).
pub const VERSIONED_BUCKETS: &[BucketOf] =
    &[BucketOf::Images, BucketOf::Uploads, BucketOf::Processed];
pub const ALL_FUNCTIONS: &[FunctionOf] = &[FunctionOf::Proxy, FunctionOf::Resizer];
pub const ALL_LOG_GROUPS: &[LogGroupOf] =
    &[LogGroupOf::Server, LogGroupOf::Proxy, LogGroupOf::Resizer];
/// The log groups `hybridlab logs` reads.
pub const READ_LOG_GROUPS: &[LogGroupOf] = &[LogGroupOf::Server, LogGroupOf::Proxy];
pub const ALL_ROLES: &[RoleOf] = &[RoleOf::Lambda, RoleOf::Server, RoleOf::Resizer];
/// The roles a function runs with.
pub const FUNCTION_ROLES: &[RoleOf] = &[RoleOf::Lambda, RoleOf::Resizer];

/// Where ARNs point: every stack's resources, as wildcard patterns (the policy), or one
/// stack's (what a call lands on, in the tests).
#[derive(Debug, Clone)]
pub struct ArnScope {
    /// `None`: every stack.
    stack: Option<StackId>,
    names: StackNames,
    region: String,
    account: String,
}

impl ArnScope {
    /// Every stack in `region`, of any account: the student's account is not known offline,
    /// and an identity policy reaches another account's resources only where that account's
    /// own resource policies let it, so `*` gives nothing away (and keeps the document under
    /// IAM's size limit).
    pub fn every_stack(region: &str) -> Self {
        Self {
            stack: None,
            names: StackNames::with_suffix("*"),
            region: region.to_owned(),
            account: "*".into(),
        }
    }

    /// The stack `id` in `region` of `account`, with made-up EC2 ids.
    pub fn stack(id: &StackId, region: &str, account: &str) -> Self {
        Self {
            stack: Some(id.clone()),
            names: StackNames::new(id),
            region: region.to_owned(),
            account: account.to_owned(),
        }
    }

    fn ec2_id(&self, kind: Ec2Kind) -> String {
        match self.stack {
            None => "*".into(),
            Some(_) => format!("{}-0123456789abcdef0", kind.id_prefix()),
        }
    }
}

fn bucket_name(names: &StackNames, bucket: BucketOf) -> &str {
    match bucket {
        BucketOf::Images => &names.images_bucket,
        BucketOf::Artifacts => &names.artifacts_bucket,
        BucketOf::Uploads => &names.uploads_bucket,
        BucketOf::Processed => &names.processed_bucket,
        BucketOf::Jobs => &names.jobs_bucket,
    }
}

fn bucket_in_pipeline(bucket: BucketOf) -> bool {
    matches!(bucket, BucketOf::Uploads | BucketOf::Processed)
}

impl On {
    /// The ARNs (or patterns) of what this is in `scope`; the pipeline's resources only when
    /// `pipeline`.
    pub fn arns(&self, scope: &ArnScope, pipeline: bool) -> Vec<String> {
        let ArnScope {
            names,
            region,
            account,
            ..
        } = scope;
        let buckets = |of: &[BucketOf]| {
            of.iter()
                .copied()
                .filter(|b| pipeline || !bucket_in_pipeline(*b))
                .map(|b| bucket_name(names, b).to_owned())
                .collect::<Vec<_>>()
        };
        let iam = |kind: &str, path: &str, name: &str| {
            format!("arn:{PARTITION}:iam::{account}:{kind}{path}{name}")
        };
        let role_name = |role: &RoleOf| match role {
            RoleOf::Lambda => names.lambda_role.as_str(),
            RoleOf::Server => names.server_role.as_str(),
            RoleOf::Resizer => names.resizer_role.as_str(),
            RoleOf::Submit => names.submit_role.as_str(),
            RoleOf::Launcher => names.launcher_role.as_str(),
            RoleOf::Worker => names.worker_role.as_str(),
        };
        let roles = |of: &[RoleOf]| {
            of.iter()
                .filter(|r| pipeline || **r != RoleOf::Resizer)
                .map(role_name)
                .collect::<Vec<_>>()
        };
        match self {
            On::Everything => vec!["*".into()],
            On::Buckets(of) => buckets(of)
                .into_iter()
                .map(|b| format!("arn:{PARTITION}:s3:::{b}"))
                .collect(),
            // For one stack: a name of the lab's shape that its naming scheme does not make.
            On::BucketsNamedLikeTheLab => vec![format!(
                "arn:{PARTITION}:s3:::{NAME_PREFIX}{}",
                scope.stack.as_ref().map_or("*", StackId::as_str)
            )],
            On::Objects(of) => buckets(of)
                .into_iter()
                .map(|b| format!("arn:{PARTITION}:s3:::{b}/*"))
                .collect(),
            On::Object(bucket, key) => buckets(&[*bucket])
                .into_iter()
                .map(|b| format!("arn:{PARTITION}:s3:::{b}/{key}"))
                .collect(),
            On::Table => vec![format!(
                "arn:{PARTITION}:dynamodb:{region}:{account}:table/{}",
                names.table
            )],
            On::Functions(of) => of
                .iter()
                .filter(|f| pipeline || **f != FunctionOf::Resizer)
                .map(|f| {
                    let name = match f {
                        FunctionOf::Proxy => &names.function,
                        FunctionOf::Resizer => &names.resizer,
                        FunctionOf::Submit => &names.submit,
                        FunctionOf::Launcher => &names.launcher,
                    };
                    format!("arn:{PARTITION}:lambda:{region}:{account}:function:{name}")
                })
                .collect(),
            On::LogGroups(of) => of
                .iter()
                .filter(|g| pipeline || **g != LogGroupOf::Resizer)
                .flat_map(|g| {
                    let name = match g {
                        LogGroupOf::Server => &names.server_log_group,
                        LogGroupOf::Proxy => &names.function_log_group,
                        LogGroupOf::Resizer => &names.resizer_log_group,
                        LogGroupOf::Submit => &names.submit_log_group,
                        LogGroupOf::Launcher => &names.launcher_log_group,
                    };
                    let group = format!("arn:{PARTITION}:logs:{region}:{account}:log-group:{name}");
                    // CloudWatch Logs authorises most calls on `log-group:NAME:*` and a few
                    // (tagging, live tail) on `log-group:NAME`; a pattern ending in `*` covers
                    // both.
                    match (&scope.stack, name.ends_with('*')) {
                        (None, true) => vec![group],
                        (None, false) => vec![format!("{group}*")],
                        (Some(_), _) => vec![group.clone(), format!("{group}:*")],
                    }
                })
                .collect(),
            On::Roles(of) => roles(of)
                .into_iter()
                .map(|name| iam("role", IAM_PATH, name))
                .collect(),
            On::RolesByName(of) => roles(of)
                .into_iter()
                .flat_map(|name| match scope.stack {
                    None => vec![iam("role", "/*", name)],
                    Some(_) => vec![iam("role", IAM_PATH, name), iam("role", "/", name)],
                })
                .collect(),
            On::InstanceProfile => vec![iam("instance-profile", IAM_PATH, &names.instance_profile)],
            On::InstanceProfileByName => match scope.stack {
                None => vec![iam("instance-profile", "/*", &names.instance_profile)],
                Some(_) => vec![
                    iam("instance-profile", IAM_PATH, &names.instance_profile),
                    iam("instance-profile", "/", &names.instance_profile),
                ],
            },
            On::ApiCollection => vec![format!("arn:{PARTITION}:apigateway:{region}::/apis")],
            On::ApiPath(path) => {
                let id = scope.stack.as_ref().map_or("*", |_| "a1b2c3d4e5");
                vec![format!(
                    "arn:{PARTITION}:apigateway:{region}::{}",
                    path.replace('*', id)
                )]
            }
            On::JobsTable => vec![format!(
                "arn:{PARTITION}:dynamodb:{region}:{account}:table/{}",
                names.jobs_table
            )],
            On::WorkerProfile => vec![iam("instance-profile", IAM_PATH, &names.worker_profile)],
            On::WorkerProfileByName => match scope.stack {
                None => vec![iam("instance-profile", "/*", &names.worker_profile)],
                Some(_) => vec![
                    iam("instance-profile", IAM_PATH, &names.worker_profile),
                    iam("instance-profile", "/", &names.worker_profile),
                ],
            },
            On::EventSourceMappings => vec![format!(
                "arn:{PARTITION}:lambda:{region}:{account}:event-source-mapping:{}",
                scope
                    .stack
                    .as_ref()
                    .map_or("*", |_| "6f1e2d3c-0000-4000-8000-000000000001")
            )],
            On::Ec2(kind) => {
                let owner = if *kind == Ec2Kind::Image {
                    ""
                } else {
                    account.as_str()
                };
                vec![format!(
                    "arn:{PARTITION}:ec2:{region}:{owner}:{}/{}",
                    kind.arn_type(),
                    scope.ec2_id(*kind)
                )]
            }
        }
    }
}

/// A condition a grant puts on its actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    None,
    /// `iam:PassedToService` is this service.
    PassedTo(&'static str),
    /// `iam:PassedToService` is this service where the call says one. AddRoleToInstanceProfile
    /// passes the role too (it needs `iam:PassRole`) but to no service yet.
    PassedToIfSaid(&'static str),
    /// The request tags what it creates with the stack tag (`aws:RequestTag/hybridlab:stack`).
    StackTagRequested,
    /// The resource carries the stack tag (`aws:ResourceTag/hybridlab:stack`).
    StackTagged,
    /// Tags written as part of these creating calls only (`ec2:CreateAction`).
    CreatedBy(&'static [&'static str]),
    /// The mapping is made for this function of a stack (`lambda:FunctionArn`).
    ForFunction(FunctionOf),
}

impl Condition {
    /// The statement's `Condition` element in `region`, if any.
    pub fn element(&self, region: &str) -> Option<Value> {
        let request_tag = format!("aws:RequestTag/{STACK_TAG}");
        Some(match self {
            Condition::None => return None,
            Condition::PassedTo(service) => {
                json!({"StringEquals": {"iam:PassedToService": service}})
            }
            Condition::PassedToIfSaid(service) => {
                json!({"StringEqualsIfExists": {"iam:PassedToService": service}})
            }
            Condition::StackTagRequested => json!({"Null": {request_tag: "false"}}),
            Condition::StackTagged => {
                json!({"Null": {format!("aws:ResourceTag/{STACK_TAG}"): "false"}})
            }
            Condition::CreatedBy(actions) => json!({"StringEquals": {"ec2:CreateAction": actions}}),
            Condition::ForFunction(function) => {
                let arns = On::Functions(match function {
                    FunctionOf::Proxy => &[FunctionOf::Proxy],
                    FunctionOf::Resizer => &[FunctionOf::Resizer],
                    FunctionOf::Submit => &[FunctionOf::Submit],
                    FunctionOf::Launcher => &[FunctionOf::Launcher],
                })
                .arns(&ArnScope::every_stack(region), true);
                json!({"ArnLike": {"lambda:FunctionArn": one_or_many(arns)}})
            }
        })
    }
}

/// What a call's request says that a grant's condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    Nothing,
    /// `iam:PassedToService`.
    PassedTo(&'static str),
    /// The stack tag among the tags of what it creates.
    StackTagRequested,
    /// The resource it acts on has the stack tag.
    StackTagged,
    /// Tags on create: `ec2:CreateAction` is this call, the stack tag among the tags.
    CreatedBy(&'static str),
    /// `lambda:FunctionArn`: the stack's function it is made for.
    ForFunction(FunctionOf),
}

impl Carries {
    /// The condition keys and their values, as IAM's request context has them for a call on
    /// a resource of `stack` in `region` of `account`.
    pub fn keys(&self, stack: &StackId, region: &str, account: &str) -> Vec<(String, String)> {
        let request_tag = (
            format!("aws:RequestTag/{STACK_TAG}"),
            stack.as_str().to_owned(),
        );
        match self {
            Carries::Nothing => Vec::new(),
            Carries::PassedTo(service) => {
                vec![("iam:PassedToService".into(), (*service).to_owned())]
            }
            Carries::StackTagRequested => vec![request_tag],
            Carries::StackTagged => vec![(
                format!("aws:ResourceTag/{STACK_TAG}"),
                stack.as_str().to_owned(),
            )],
            Carries::CreatedBy(action) => vec![
                ("ec2:CreateAction".into(), (*action).to_owned()),
                request_tag,
            ],
            Carries::ForFunction(function) => {
                let names = StackNames::new(stack);
                let name = match function {
                    FunctionOf::Proxy => names.function,
                    FunctionOf::Resizer => names.resizer,
                    FunctionOf::Submit => names.submit,
                    FunctionOf::Launcher => names.launcher,
                };
                vec![(
                    "lambda:FunctionArn".into(),
                    format!("arn:{PARTITION}:lambda:{region}:{account}:function:{name}"),
                )]
            }
        }
    }
}

/// One AWS call of the operator's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorCall {
    pub how: How,
    /// The IAM action AWS checks (one call may need several: one entry each).
    pub action: &'static str,
    pub on: On,
    pub carries: Carries,
}

const fn sdk(operation: &'static str, action: &'static str, on: On) -> OperatorCall {
    OperatorCall {
        how: How::Sdk(operation),
        action,
        on,
        carries: Carries::Nothing,
    }
}

impl OperatorCall {
    const fn carrying(self, carries: Carries) -> Self {
        Self { carries, ..self }
    }

    /// The operation's name as the SDK spells it, for SDK calls.
    pub fn operation(&self) -> Option<&'static str> {
        match self.how {
            How::Sdk(operation) => Some(operation),
            How::Other(_) => None,
        }
    }
}

/// SDK operations the commands call that need no permission: AWS answers STS's
/// GetCallerIdentity (the console's header) to any valid credentials, even with every action
/// denied.
pub const NEEDS_NO_PERMISSION: &[&str] = &["get_caller_identity"];

use BucketOf::{Artifacts, Uploads};
use Carries::{CreatedBy, PassedTo, StackTagRequested, StackTagged};
use Ec2Kind::{Image, Instance, NetworkInterface, SecurityGroup, Subnet, Volume, Vpc};
use On::{
    ApiCollection, ApiPath, Buckets, BucketsNamedLikeTheLab, Ec2, EventSourceMappings, Everything,
    Functions, InstanceProfile, InstanceProfileByName, JobsTable, LogGroups, Object, Objects,
    Roles, RolesByName, Table, WorkerProfile, WorkerProfileByName,
};

/// Every AWS call `up`, `status`, `down`, `invoke`, `bench`, `logs`, `s3`, `db` and `upload`
/// make with the student's credentials (the console's views make the same ones through the
/// same lab functions). HeadBucket and ListObjectsV2 are authorised as `s3:ListBucket`,
/// HeadObject as `s3:GetObject`, a read of a given version as `s3:GetObjectVersion`,
/// ListObjectVersions as `s3:ListBucketVersions`, DeleteObjects as `s3:DeleteObject` and, for
/// each version it names, `s3:DeleteObjectVersion`. Creating with tags needs the service's
/// tagging action too.
pub const OPERATOR_CALLS: &[OperatorCall] = &[
    // provision/src/stack/up.rs: the buckets. HeadBucket tells "ours" from "missing"; a 403 is
    // told apart by listing one's own buckets.
    sdk("head_bucket", "s3:ListBucket", Buckets(ALL_BUCKETS)),
    sdk("list_buckets", "s3:ListAllMyBuckets", Everything),
    sdk("create_bucket", "s3:CreateBucket", Buckets(ALL_BUCKETS)),
    sdk(
        "put_bucket_tagging",
        "s3:PutBucketTagging",
        Buckets(ALL_BUCKETS),
    ),
    sdk(
        "put_public_access_block",
        "s3:PutBucketPublicAccessBlock",
        Buckets(ALL_BUCKETS),
    ),
    sdk(
        "put_bucket_encryption",
        "s3:PutEncryptionConfiguration",
        Buckets(ALL_BUCKETS),
    ),
    sdk(
        "put_bucket_versioning",
        "s3:PutBucketVersioning",
        Buckets(VERSIONED_BUCKETS),
    ),
    // The pipeline's uploads bucket: the browser's CORS rule and the resizer's trigger.
    sdk("put_bucket_cors", "s3:PutBucketCORS", Buckets(&[Uploads])),
    sdk(
        "get_bucket_notification_configuration",
        "s3:GetBucketNotification",
        Buckets(&[Uploads]),
    ),
    sdk(
        "put_bucket_notification_configuration",
        "s3:PutBucketNotification",
        Buckets(&[Uploads]),
    ),
    // The server's binary (HEAD for its digest) and environment file. A missing file must be
    // a 404, which S3 answers only with s3:ListBucket on the bucket (a 403 otherwise).
    sdk(
        "head_object",
        "s3:GetObject",
        Object(Artifacts, SERVER_BINARY_KEY),
    ),
    sdk(
        "put_object",
        "s3:PutObject",
        Object(Artifacts, SERVER_BINARY_KEY),
    ),
    sdk(
        "get_object",
        "s3:GetObject",
        Object(Artifacts, SERVER_ENV_KEY),
    ),
    sdk("get_object", "s3:ListBucket", Buckets(&[Artifacts])),
    sdk(
        "put_object",
        "s3:PutObject",
        Object(Artifacts, SERVER_ENV_KEY),
    ),
    // The table.
    sdk("describe_table", "dynamodb:DescribeTable", Table),
    sdk("create_table", "dynamodb:CreateTable", Table),
    sdk("create_table", "dynamodb:TagResource", Table),
    // The log groups, tagged at creation.
    sdk(
        "create_log_group",
        "logs:CreateLogGroup",
        LogGroups(ALL_LOG_GROUPS),
    ),
    sdk(
        "create_log_group",
        "logs:TagResource",
        LogGroups(ALL_LOG_GROUPS),
    ),
    sdk(
        "put_retention_policy",
        "logs:PutRetentionPolicy",
        LogGroups(ALL_LOG_GROUPS),
    ),
    // The roles and the instance profile, tagged at creation. Adding the server's role to
    // the profile passes the role, so it needs iam:PassRole on it.
    sdk("get_role", "iam:GetRole", RolesByName(ALL_ROLES)),
    sdk("create_role", "iam:CreateRole", Roles(ALL_ROLES)),
    sdk("create_role", "iam:TagRole", Roles(ALL_ROLES)),
    sdk("put_role_policy", "iam:PutRolePolicy", Roles(ALL_ROLES)),
    sdk(
        "get_instance_profile",
        "iam:GetInstanceProfile",
        InstanceProfileByName,
    ),
    sdk(
        "create_instance_profile",
        "iam:CreateInstanceProfile",
        InstanceProfile,
    ),
    sdk(
        "create_instance_profile",
        "iam:TagInstanceProfile",
        InstanceProfile,
    ),
    sdk(
        "add_role_to_instance_profile",
        "iam:AddRoleToInstanceProfile",
        InstanceProfile,
    ),
    sdk(
        "add_role_to_instance_profile",
        "iam:PassRole",
        Roles(&[RoleOf::Server]),
    ),
    // The security group, in the default VPC, tagged at creation.
    sdk("describe_vpcs", "ec2:DescribeVpcs", Everything),
    sdk(
        "describe_security_groups",
        "ec2:DescribeSecurityGroups",
        Everything,
    ),
    sdk(
        "create_security_group",
        "ec2:CreateSecurityGroup",
        Ec2(SecurityGroup),
    )
    .carrying(StackTagRequested),
    sdk("create_security_group", "ec2:CreateSecurityGroup", Ec2(Vpc)),
    sdk(
        "create_security_group",
        "ec2:CreateTags",
        Ec2(SecurityGroup),
    )
    .carrying(CreatedBy("CreateSecurityGroup")),
    sdk(
        "authorize_security_group_ingress",
        "ec2:AuthorizeSecurityGroupIngress",
        Ec2(SecurityGroup),
    )
    .carrying(StackTagged),
    // The image, the instance (an existing one is replaced when its configuration changed)
    // and its launch: RunInstances is authorised on every resource it makes or uses, the tags
    // on the instance and its volume need ec2:CreateTags, the instance profile's role
    // iam:PassRole.
    sdk("describe_images", "ec2:DescribeImages", Everything),
    sdk("describe_instances", "ec2:DescribeInstances", Everything),
    // What the instance's boot printed, quoted when its server never comes up.
    sdk("get_console_output", "ec2:GetConsoleOutput", Ec2(Instance)).carrying(StackTagged),
    sdk(
        "terminate_instances",
        "ec2:TerminateInstances",
        Ec2(Instance),
    )
    .carrying(StackTagged),
    sdk("run_instances", "ec2:RunInstances", Ec2(Instance)).carrying(StackTagRequested),
    sdk("run_instances", "ec2:RunInstances", Ec2(Volume)),
    sdk("run_instances", "ec2:RunInstances", Ec2(NetworkInterface)),
    sdk("run_instances", "ec2:RunInstances", Ec2(Subnet)),
    sdk("run_instances", "ec2:RunInstances", Ec2(Image)),
    sdk("run_instances", "ec2:RunInstances", Ec2(SecurityGroup)).carrying(StackTagged),
    sdk("run_instances", "ec2:CreateTags", Ec2(Instance)).carrying(CreatedBy("RunInstances")),
    sdk("run_instances", "ec2:CreateTags", Ec2(Volume)).carrying(CreatedBy("RunInstances")),
    sdk("run_instances", "iam:PassRole", Roles(&[RoleOf::Server]))
        .carrying(PassedTo("ec2.amazonaws.com")),
    // The functions: created (tagged, passing their role) or their environment brought in
    // line, waited for; the resizer's permission for S3 to invoke it.
    sdk(
        "get_function_configuration",
        "lambda:GetFunctionConfiguration",
        Functions(ALL_FUNCTIONS),
    ),
    sdk(
        "update_function_configuration",
        "lambda:UpdateFunctionConfiguration",
        Functions(ALL_FUNCTIONS),
    ),
    sdk(
        "create_function",
        "lambda:CreateFunction",
        Functions(ALL_FUNCTIONS),
    ),
    sdk(
        "create_function",
        "lambda:TagResource",
        Functions(ALL_FUNCTIONS),
    ),
    sdk("create_function", "iam:PassRole", Roles(FUNCTION_ROLES))
        .carrying(PassedTo("lambda.amazonaws.com")),
    sdk(
        "get_policy",
        "lambda:GetPolicy",
        Functions(&[FunctionOf::Resizer]),
    ),
    sdk(
        "add_permission",
        "lambda:AddPermission",
        Functions(&[FunctionOf::Resizer]),
    ),
    // provision/src/stack/down.rs: finding every stack's resources (also `status`, and the
    // other enabled regions for `down --all`), then deleting them.
    sdk("describe_regions", "ec2:DescribeRegions", Everything),
    sdk(
        "get_bucket_tagging",
        "s3:GetBucketTagging",
        BucketsNamedLikeTheLab,
    ),
    sdk("list_tables", "dynamodb:ListTables", Everything),
    sdk("list_functions", "lambda:ListFunctions", Everything),
    // The jobs variant's stream mappings and HTTP APIs, looked for in every stack.
    sdk(
        "list_event_source_mappings",
        "lambda:ListEventSourceMappings",
        Everything,
    ),
    sdk("get_apis", "apigateway:GET", ApiCollection),
    sdk("describe_log_groups", "logs:DescribeLogGroups", Everything),
    sdk("list_roles", "iam:ListRoles", Everything),
    sdk(
        "list_instance_profiles",
        "iam:ListInstanceProfiles",
        Everything,
    ),
    sdk(
        "list_object_versions",
        "s3:ListBucketVersions",
        Buckets(ALL_BUCKETS),
    ),
    sdk("delete_objects", "s3:DeleteObject", Objects(ALL_BUCKETS)),
    sdk(
        "delete_objects",
        "s3:DeleteObjectVersion",
        Objects(ALL_BUCKETS),
    ),
    sdk(
        "list_multipart_uploads",
        "s3:ListBucketMultipartUploads",
        Buckets(ALL_BUCKETS),
    ),
    sdk(
        "abort_multipart_upload",
        "s3:AbortMultipartUpload",
        Objects(ALL_BUCKETS),
    ),
    sdk("delete_bucket", "s3:DeleteBucket", Buckets(ALL_BUCKETS)),
    sdk("delete_table", "dynamodb:DeleteTable", Table),
    sdk(
        "delete_function",
        "lambda:DeleteFunction",
        Functions(ALL_FUNCTIONS),
    ),
    sdk(
        "delete_security_group",
        "ec2:DeleteSecurityGroup",
        Ec2(SecurityGroup),
    )
    .carrying(StackTagged),
    sdk(
        "remove_role_from_instance_profile",
        "iam:RemoveRoleFromInstanceProfile",
        InstanceProfile,
    ),
    sdk(
        "delete_instance_profile",
        "iam:DeleteInstanceProfile",
        InstanceProfile,
    ),
    sdk(
        "list_role_policies",
        "iam:ListRolePolicies",
        Roles(ALL_ROLES),
    ),
    sdk(
        "delete_role_policy",
        "iam:DeleteRolePolicy",
        Roles(ALL_ROLES),
    ),
    sdk(
        "list_attached_role_policies",
        "iam:ListAttachedRolePolicies",
        Roles(ALL_ROLES),
    ),
    sdk(
        "detach_role_policy",
        "iam:DetachRolePolicy",
        Roles(ALL_ROLES),
    ),
    sdk(
        "list_instance_profiles_for_role",
        "iam:ListInstanceProfilesForRole",
        Roles(ALL_ROLES),
    ),
    sdk("delete_role", "iam:DeleteRole", Roles(ALL_ROLES)),
    sdk(
        "delete_log_group",
        "logs:DeleteLogGroup",
        LogGroups(ALL_LOG_GROUPS),
    ),
    // console/src/lab/invoke.rs (`invoke`, the console's Invoke view) and the benchmark
    // engine's SigV4-signed Invoke requests (bench/src/signed.rs, `bench`), of the proxy or,
    // with `--function resizer`, the resizer.
    sdk("invoke", "lambda:InvokeFunction", Functions(ALL_FUNCTIONS)),
    OperatorCall {
        how: How::Other("the benchmark's signed Invoke"),
        action: "lambda:InvokeFunction",
        on: Functions(ALL_FUNCTIONS),
        carries: Carries::Nothing,
    },
    // console/src/lab/function_config.rs (`bench --memory`, `bench --cold`): the function's
    // memory or environment changed and put back, waited for, with the calls `up` makes
    // (get_function_configuration, update_function_configuration above).
    // console/src/lab/reports.rs (`bench --upload --memory`): the resizer's REPORT lines.
    sdk(
        "filter_log_events",
        "logs:FilterLogEvents",
        LogGroups(&[LogGroupOf::Resizer]),
    ),
    // console/src/lab/logs/tail.rs (`logs`): the server's and the proxy's groups, polled or
    // followed with a live tail session.
    sdk(
        "filter_log_events",
        "logs:FilterLogEvents",
        LogGroups(READ_LOG_GROUPS),
    ),
    sdk(
        "start_live_tail",
        "logs:StartLiveTail",
        LogGroups(READ_LOG_GROUPS),
    ),
    // console/src/lab/s3.rs and console/src/cli/s3.rs (`s3`, the S3 view): listings, HEAD
    // (whose 404 needs s3:ListBucket), downloads and presigned GETs of any of the stack's
    // objects, a given version of one.
    sdk("list_objects_v2", "s3:ListBucket", Buckets(ALL_BUCKETS)),
    sdk("head_object", "s3:GetObject", Objects(ALL_BUCKETS)),
    sdk("head_object", "s3:ListBucket", Buckets(ALL_BUCKETS)),
    sdk("get_object", "s3:GetObject", Objects(ALL_BUCKETS)),
    sdk("get_object", "s3:GetObjectVersion", Objects(ALL_BUCKETS)),
    // console/src/lab/db (`db`, the DynamoDB view) and console/src/lab/upload.rs (`upload`
    // follows each row).
    sdk("scan", "dynamodb:Scan", Table),
    sdk("get_item", "dynamodb:GetItem", Table),
];

/// The job-worker variant's resources.
pub const JOBS_BUCKETS: &[BucketOf] = &[BucketOf::Jobs];
pub const JOBS_FUNCTIONS: &[FunctionOf] = &[FunctionOf::Submit, FunctionOf::Launcher];
pub const JOBS_LOG_GROUPS: &[LogGroupOf] = &[LogGroupOf::Submit, LogGroupOf::Launcher];
pub const JOBS_ROLES: &[RoleOf] = &[RoleOf::Submit, RoleOf::Launcher, RoleOf::Worker];
/// The roles the jobs' functions run with.
pub const JOBS_FUNCTION_ROLES: &[RoleOf] = &[RoleOf::Submit, RoleOf::Launcher];

/// Every AWS call the job-worker variant adds to the commands (`up --with jobs`, `down` and
/// `status` of a stack with it, `job`, `bench --jobs`, the console's Jobs view), beside
/// [`OPERATOR_CALLS`], which they make too. API Gateway authorises each call as its HTTP verb
/// on its path.
pub const JOBS_CALLS: &[OperatorCall] = &[
    // provision/src/stack/up/jobs.rs: the bucket, the table, the log groups, the roles and the
    // workers' profile, as for the rest of the stack.
    sdk("head_bucket", "s3:ListBucket", Buckets(JOBS_BUCKETS)),
    sdk("create_bucket", "s3:CreateBucket", Buckets(JOBS_BUCKETS)),
    sdk(
        "put_bucket_tagging",
        "s3:PutBucketTagging",
        Buckets(JOBS_BUCKETS),
    ),
    sdk(
        "put_public_access_block",
        "s3:PutBucketPublicAccessBlock",
        Buckets(JOBS_BUCKETS),
    ),
    sdk(
        "put_bucket_encryption",
        "s3:PutEncryptionConfiguration",
        Buckets(JOBS_BUCKETS),
    ),
    sdk(
        "head_object",
        "s3:GetObject",
        Object(Artifacts, WORKER_BINARY_KEY),
    ),
    sdk(
        "put_object",
        "s3:PutObject",
        Object(Artifacts, WORKER_BINARY_KEY),
    ),
    sdk("describe_table", "dynamodb:DescribeTable", JobsTable),
    sdk("create_table", "dynamodb:CreateTable", JobsTable),
    sdk("create_table", "dynamodb:TagResource", JobsTable),
    sdk(
        "create_log_group",
        "logs:CreateLogGroup",
        LogGroups(JOBS_LOG_GROUPS),
    ),
    sdk(
        "create_log_group",
        "logs:TagResource",
        LogGroups(JOBS_LOG_GROUPS),
    ),
    sdk(
        "put_retention_policy",
        "logs:PutRetentionPolicy",
        LogGroups(JOBS_LOG_GROUPS),
    ),
    sdk("get_role", "iam:GetRole", RolesByName(JOBS_ROLES)),
    sdk("create_role", "iam:CreateRole", Roles(JOBS_ROLES)),
    sdk("create_role", "iam:TagRole", Roles(JOBS_ROLES)),
    sdk("put_role_policy", "iam:PutRolePolicy", Roles(JOBS_ROLES)),
    sdk(
        "get_instance_profile",
        "iam:GetInstanceProfile",
        WorkerProfileByName,
    ),
    sdk(
        "create_instance_profile",
        "iam:CreateInstanceProfile",
        WorkerProfile,
    ),
    sdk(
        "create_instance_profile",
        "iam:TagInstanceProfile",
        WorkerProfile,
    ),
    sdk(
        "add_role_to_instance_profile",
        "iam:AddRoleToInstanceProfile",
        WorkerProfile,
    ),
    sdk(
        "add_role_to_instance_profile",
        "iam:PassRole",
        Roles(&[RoleOf::Worker]),
    ),
    // The functions, the submit function's permission for the API, the launcher's mapping
    // (tagged at creation).
    sdk(
        "get_function_configuration",
        "lambda:GetFunctionConfiguration",
        Functions(JOBS_FUNCTIONS),
    ),
    sdk(
        "update_function_configuration",
        "lambda:UpdateFunctionConfiguration",
        Functions(JOBS_FUNCTIONS),
    ),
    sdk(
        "create_function",
        "lambda:CreateFunction",
        Functions(JOBS_FUNCTIONS),
    ),
    sdk(
        "create_function",
        "lambda:TagResource",
        Functions(JOBS_FUNCTIONS),
    ),
    sdk(
        "create_function",
        "iam:PassRole",
        Roles(JOBS_FUNCTION_ROLES),
    )
    .carrying(PassedTo("lambda.amazonaws.com")),
    sdk(
        "get_policy",
        "lambda:GetPolicy",
        Functions(&[FunctionOf::Submit]),
    ),
    sdk(
        "add_permission",
        "lambda:AddPermission",
        Functions(&[FunctionOf::Submit]),
    ),
    sdk(
        "create_event_source_mapping",
        "lambda:CreateEventSourceMapping",
        Everything,
    )
    .carrying(Carries::ForFunction(FunctionOf::Launcher)),
    sdk(
        "create_event_source_mapping",
        "lambda:TagResource",
        EventSourceMappings,
    )
    .carrying(StackTagRequested),
    // The HTTP API: created tagged, then its integration, routes and stage (tagged too).
    sdk("create_api", "apigateway:POST", ApiPath("/apis")).carrying(StackTagRequested),
    sdk(
        "get_integrations",
        "apigateway:GET",
        ApiPath("/apis/*/integrations"),
    ),
    sdk(
        "create_integration",
        "apigateway:POST",
        ApiPath("/apis/*/integrations"),
    ),
    sdk("get_routes", "apigateway:GET", ApiPath("/apis/*/routes")),
    sdk("create_route", "apigateway:POST", ApiPath("/apis/*/routes")),
    sdk(
        "update_route",
        "apigateway:PATCH",
        ApiPath("/apis/*/routes/*"),
    ),
    sdk("get_stages", "apigateway:GET", ApiPath("/apis/*/stages")),
    sdk("create_stage", "apigateway:POST", ApiPath("/apis/*/stages")),
    sdk(
        "create_stage",
        "apigateway:TagResource",
        ApiPath("/apis/*/stages"),
    ),
    // provision/src/stack/down.rs: the mapping and the API, then the rest as for the stack.
    sdk(
        "delete_event_source_mapping",
        "lambda:DeleteEventSourceMapping",
        EventSourceMappings,
    )
    .carrying(StackTagged),
    sdk("delete_api", "apigateway:DELETE", ApiPath("/apis/*")),
    sdk(
        "list_object_versions",
        "s3:ListBucketVersions",
        Buckets(JOBS_BUCKETS),
    ),
    sdk("delete_objects", "s3:DeleteObject", Objects(JOBS_BUCKETS)),
    sdk(
        "delete_objects",
        "s3:DeleteObjectVersion",
        Objects(JOBS_BUCKETS),
    ),
    sdk(
        "list_multipart_uploads",
        "s3:ListBucketMultipartUploads",
        Buckets(JOBS_BUCKETS),
    ),
    sdk(
        "abort_multipart_upload",
        "s3:AbortMultipartUpload",
        Objects(JOBS_BUCKETS),
    ),
    sdk("delete_bucket", "s3:DeleteBucket", Buckets(JOBS_BUCKETS)),
    sdk("delete_table", "dynamodb:DeleteTable", JobsTable),
    sdk(
        "delete_function",
        "lambda:DeleteFunction",
        Functions(JOBS_FUNCTIONS),
    ),
    sdk(
        "remove_role_from_instance_profile",
        "iam:RemoveRoleFromInstanceProfile",
        WorkerProfile,
    ),
    sdk(
        "delete_instance_profile",
        "iam:DeleteInstanceProfile",
        WorkerProfile,
    ),
    sdk(
        "list_role_policies",
        "iam:ListRolePolicies",
        Roles(JOBS_ROLES),
    ),
    sdk(
        "delete_role_policy",
        "iam:DeleteRolePolicy",
        Roles(JOBS_ROLES),
    ),
    sdk(
        "list_attached_role_policies",
        "iam:ListAttachedRolePolicies",
        Roles(JOBS_ROLES),
    ),
    sdk(
        "detach_role_policy",
        "iam:DetachRolePolicy",
        Roles(JOBS_ROLES),
    ),
    sdk(
        "list_instance_profiles_for_role",
        "iam:ListInstanceProfilesForRole",
        Roles(JOBS_ROLES),
    ),
    sdk("delete_role", "iam:DeleteRole", Roles(JOBS_ROLES)),
    sdk(
        "delete_log_group",
        "logs:DeleteLogGroup",
        LogGroups(JOBS_LOG_GROUPS),
    ),
    // console/src/lab/jobs.rs (`job`, `bench --jobs`, the Jobs view): the submit function's
    // token, a job's row read and cancelled, the launcher's lines about it. Its worker's
    // console output and termination are the stack's tagged instances' (OPERATOR_CALLS).
    sdk("get_item", "dynamodb:GetItem", JobsTable),
    sdk("update_item", "dynamodb:UpdateItem", JobsTable),
    sdk(
        "filter_log_events",
        "logs:FilterLogEvents",
        LogGroups(&[LogGroupOf::Launcher]),
    ),
];

/// One statement of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub sid: &'static str,
    pub actions: &'static [&'static str],
    pub on: &'static [On],
    pub condition: Condition,
}

const fn grant(sid: &'static str, actions: &'static [&'static str], on: &'static [On]) -> Grant {
    Grant {
        sid,
        actions,
        on,
        condition: Condition::None,
    }
}

impl Grant {
    const fn when(self, condition: Condition) -> Self {
        Self { condition, ..self }
    }
}

/// The keys of the server's binary and environment file ([`SERVER_BINARY_KEY`],
/// [`SERVER_ENV_KEY`]), which `up` writes.
const SERVER_ARTIFACT_KEYS: &str = "server/*";

/// The policy's statements. A statement whose resources all belong to the pipeline is left out
/// of a policy without it. Each is one set of actions on one set of resources that the calls
/// use in every combination (the tests check it), so a policy without the pipeline grants
/// nothing of it; IAM's limit of 6,144 characters for a managed policy keeps them few.
pub const GRANTS: &[Grant] = &[
    // None of these has resource-level permissions (EC2's Describe*, the listings of
    // buckets, tables, functions, roles and instance profiles, which take at most a prefix);
    // logs:DescribeLogGroups is authorised on `log-group::log-stream:`, no group of the lab.
    // They read names and settings, never data.
    grant(
        "ListAndDescribe",
        &[
            "s3:ListAllMyBuckets",
            "dynamodb:ListTables",
            "lambda:ListFunctions",
            "lambda:ListEventSourceMappings",
            "logs:DescribeLogGroups",
            "iam:ListRoles",
            "iam:ListInstanceProfiles",
            "ec2:DescribeImages",
            "ec2:DescribeInstances",
            "ec2:DescribeRegions",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeVpcs",
        ],
        &[Everything],
    ),
    grant("ListApis", &["apigateway:GET"], &[ApiCollection]),
    grant(
        "Buckets",
        &[
            "s3:CreateBucket",
            "s3:DeleteBucket",
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "s3:ListBucketMultipartUploads",
            "s3:PutBucketTagging",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutEncryptionConfiguration",
        ],
        &[Buckets(ALL_BUCKETS)],
    ),
    grant(
        "BucketVersioning",
        &["s3:PutBucketVersioning"],
        &[Buckets(VERSIONED_BUCKETS)],
    ),
    grant(
        "BucketTags",
        &["s3:GetBucketTagging"],
        &[BucketsNamedLikeTheLab],
    ),
    grant(
        "UploadsTrigger",
        &[
            "s3:PutBucketCORS",
            "s3:GetBucketNotification",
            "s3:PutBucketNotification",
        ],
        &[Buckets(&[Uploads])],
    ),
    grant(
        "Objects",
        &[
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:AbortMultipartUpload",
        ],
        &[Objects(ALL_BUCKETS)],
    ),
    grant(
        "ServerArtifacts",
        &["s3:PutObject"],
        &[Object(Artifacts, SERVER_ARTIFACT_KEYS)],
    ),
    grant(
        "Table",
        &[
            "dynamodb:CreateTable",
            "dynamodb:TagResource",
            "dynamodb:DescribeTable",
            "dynamodb:DeleteTable",
            "dynamodb:Scan",
            "dynamodb:GetItem",
        ],
        &[Table],
    ),
    grant(
        "Functions",
        &[
            "lambda:CreateFunction",
            "lambda:TagResource",
            "lambda:GetFunctionConfiguration",
            "lambda:UpdateFunctionConfiguration",
            "lambda:DeleteFunction",
        ],
        &[Functions(ALL_FUNCTIONS)],
    ),
    grant(
        "Invoke",
        &["lambda:InvokeFunction"],
        &[Functions(ALL_FUNCTIONS)],
    ),
    grant(
        "ResizerPermission",
        &["lambda:GetPolicy", "lambda:AddPermission"],
        &[Functions(&[FunctionOf::Resizer])],
    ),
    grant(
        "PassFunctionRoles",
        &["iam:PassRole"],
        &[Roles(FUNCTION_ROLES)],
    )
    .when(Condition::PassedTo("lambda.amazonaws.com")),
    // Reading: `logs` reads the server's and the proxy's groups, `bench --upload --memory`
    // the resizer's REPORT lines; one statement, as IAM's size limit wants.
    grant(
        "LogGroups",
        &[
            "logs:CreateLogGroup",
            "logs:TagResource",
            "logs:PutRetentionPolicy",
            "logs:DeleteLogGroup",
            "logs:FilterLogEvents",
        ],
        &[LogGroups(ALL_LOG_GROUPS)],
    ),
    grant(
        "LiveTail",
        &["logs:StartLiveTail"],
        &[LogGroups(READ_LOG_GROUPS)],
    ),
    grant(
        "Roles",
        &[
            "iam:GetRole",
            "iam:CreateRole",
            "iam:TagRole",
            "iam:PutRolePolicy",
            "iam:ListRolePolicies",
            "iam:DeleteRolePolicy",
            "iam:ListAttachedRolePolicies",
            "iam:DetachRolePolicy",
            "iam:ListInstanceProfilesForRole",
            "iam:DeleteRole",
        ],
        &[RolesByName(ALL_ROLES)],
    ),
    grant(
        "InstanceProfile",
        &[
            "iam:GetInstanceProfile",
            "iam:CreateInstanceProfile",
            "iam:TagInstanceProfile",
            "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:DeleteInstanceProfile",
        ],
        &[InstanceProfileByName],
    ),
    grant(
        "PassServerRole",
        &["iam:PassRole"],
        &[Roles(&[RoleOf::Server])],
    )
    .when(Condition::PassedToIfSaid("ec2.amazonaws.com")),
    grant(
        "NewSecurityGroup",
        &["ec2:CreateSecurityGroup"],
        &[Ec2(SecurityGroup)],
    )
    .when(Condition::StackTagRequested),
    grant(
        "SecurityGroupVpc",
        &["ec2:CreateSecurityGroup"],
        &[Ec2(Vpc)],
    ),
    grant(
        "TaggedSecurityGroup",
        &[
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:DeleteSecurityGroup",
            "ec2:RunInstances",
        ],
        &[Ec2(SecurityGroup)],
    )
    .when(Condition::StackTagged),
    grant("NewInstance", &["ec2:RunInstances"], &[Ec2(Instance)])
        .when(Condition::StackTagRequested),
    // What the launch makes (its root volume, its network interface) and uses (the default
    // subnet, an Amazon Linux image): the volume carries the stack tag too, but only the
    // instance's tags are certain to be in the request context of every evaluator.
    grant(
        "InstanceParts",
        &["ec2:RunInstances"],
        &[Ec2(Volume), Ec2(NetworkInterface), Ec2(Subnet), Ec2(Image)],
    ),
    // Tags only as part of those two creating calls, whose own statements above require the
    // stack tag among them.
    grant(
        "TagOnCreate",
        &["ec2:CreateTags"],
        &[Ec2(Instance), Ec2(Volume), Ec2(SecurityGroup)],
    )
    .when(Condition::CreatedBy(&[
        "RunInstances",
        "CreateSecurityGroup",
    ])),
    grant(
        "TaggedInstances",
        &["ec2:GetConsoleOutput", "ec2:TerminateInstances"],
        &[Ec2(Instance)],
    )
    .when(Condition::StackTagged),
];

/// The statements of the second document, for the job-worker variant ([`JOBS_CALLS`]): the
/// first is already near IAM's limit of 6,144 characters, and a user may have ten managed
/// policies. Each is one set of actions on one set of resources used in every combination,
/// as in [`GRANTS`]. The API's paths hold its id, never its name, so they are granted on
/// every API of the region; creating one needs the stack's tag.
pub const JOBS_GRANTS: &[Grant] = &[
    grant(
        "JobsBucket",
        &[
            "s3:CreateBucket",
            "s3:DeleteBucket",
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "s3:ListBucketMultipartUploads",
            "s3:PutBucketTagging",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutEncryptionConfiguration",
        ],
        &[Buckets(JOBS_BUCKETS)],
    ),
    grant(
        "JobsObjects",
        &[
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:AbortMultipartUpload",
        ],
        &[Objects(JOBS_BUCKETS)],
    ),
    // Reading it back (HEAD, for its digest) is the first document's `Objects`.
    grant(
        "WorkerBinary",
        &["s3:PutObject"],
        &[Object(Artifacts, WORKER_BINARY_KEY)],
    ),
    grant(
        "JobsTable",
        &[
            "dynamodb:CreateTable",
            "dynamodb:TagResource",
            "dynamodb:DescribeTable",
            "dynamodb:DeleteTable",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
        ],
        &[JobsTable],
    ),
    grant(
        "JobsFunctions",
        &[
            "lambda:CreateFunction",
            "lambda:TagResource",
            "lambda:GetFunctionConfiguration",
            "lambda:UpdateFunctionConfiguration",
            "lambda:DeleteFunction",
        ],
        &[Functions(JOBS_FUNCTIONS)],
    ),
    grant(
        "SubmitPermission",
        &["lambda:GetPolicy", "lambda:AddPermission"],
        &[Functions(&[FunctionOf::Submit])],
    ),
    grant(
        "LauncherMapping",
        &["lambda:CreateEventSourceMapping"],
        &[Everything],
    )
    .when(Condition::ForFunction(FunctionOf::Launcher)),
    grant(
        "NewMapping",
        &["lambda:TagResource"],
        &[EventSourceMappings],
    )
    .when(Condition::StackTagRequested),
    // A mapping's ARN holds a UUID, not a name: only a mapping with the stack tag (every
    // lab mapping is created with it) may be deleted.
    grant(
        "DeleteMappings",
        &["lambda:DeleteEventSourceMapping"],
        &[EventSourceMappings],
    )
    .when(Condition::StackTagged),
    grant(
        "PassJobsFunctionRoles",
        &["iam:PassRole"],
        &[Roles(JOBS_FUNCTION_ROLES)],
    )
    .when(Condition::PassedTo("lambda.amazonaws.com")),
    grant(
        "PassWorkerRole",
        &["iam:PassRole"],
        &[Roles(&[RoleOf::Worker])],
    )
    .when(Condition::PassedToIfSaid("ec2.amazonaws.com")),
    grant(
        "JobsLogGroups",
        &[
            "logs:CreateLogGroup",
            "logs:TagResource",
            "logs:PutRetentionPolicy",
            "logs:DeleteLogGroup",
        ],
        &[LogGroups(JOBS_LOG_GROUPS)],
    ),
    grant(
        "LauncherLines",
        &["logs:FilterLogEvents"],
        &[LogGroups(&[LogGroupOf::Launcher])],
    ),
    grant(
        "JobsRoles",
        &[
            "iam:GetRole",
            "iam:CreateRole",
            "iam:TagRole",
            "iam:PutRolePolicy",
            "iam:ListRolePolicies",
            "iam:DeleteRolePolicy",
            "iam:ListAttachedRolePolicies",
            "iam:DetachRolePolicy",
            "iam:ListInstanceProfilesForRole",
            "iam:DeleteRole",
        ],
        &[RolesByName(JOBS_ROLES)],
    ),
    grant(
        "WorkerProfile",
        &[
            "iam:GetInstanceProfile",
            "iam:CreateInstanceProfile",
            "iam:TagInstanceProfile",
            "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:DeleteInstanceProfile",
        ],
        &[WorkerProfileByName],
    ),
    grant("NewApi", &["apigateway:POST"], &[ApiPath("/apis")]).when(Condition::StackTagRequested),
    grant(
        "ApiParts",
        &["apigateway:GET", "apigateway:POST"],
        &[
            ApiPath("/apis/*/integrations"),
            ApiPath("/apis/*/routes"),
            ApiPath("/apis/*/stages"),
        ],
    ),
    grant(
        "ApiRoutes",
        &["apigateway:PATCH"],
        &[ApiPath("/apis/*/routes/*")],
    ),
    grant(
        "ApiStageTags",
        &["apigateway:TagResource"],
        &[ApiPath("/apis/*/stages")],
    ),
    grant("ApiDelete", &["apigateway:DELETE"], &[ApiPath("/apis/*")]),
];

/// Why a policy cannot be made for what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("`{0}` is not an AWS region name (like eu-west-1)")]
    Region(String),
}

/// Whose policy: the region its ARNs name, and whether it also allows what a stack with the
/// pipeline needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorScope {
    pub region: String,
    pub pipeline: bool,
}

impl OperatorScope {
    /// A scope, if `region` is shaped as AWS's region names are (it ends up inside ARNs).
    pub fn new(region: &str, pipeline: bool) -> Result<Self, ScopeError> {
        let region_ok = region.split('-').count() >= 3
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(ScopeError::Region(region.to_owned()));
        }
        Ok(Self {
            region: region.to_owned(),
            pipeline,
        })
    }
}

/// A policy element: a lone string as itself (IAM takes both forms; the policy's size counts).
fn one_or_many(mut items: Vec<String>) -> Value {
    if items.len() == 1 {
        Value::String(items.remove(0))
    } else {
        Value::from(items)
    }
}

/// The identity policy document of [`GRANTS`] in `scope`.
pub fn operator_policy(scope: &OperatorScope) -> Value {
    document(GRANTS, scope)
}

/// The second document, of [`JOBS_GRANTS`], in `scope`'s region: what the job-worker variant
/// needs beside [`operator_policy`].
pub fn jobs_operator_policy(scope: &OperatorScope) -> Value {
    document(JOBS_GRANTS, scope)
}

fn document(grants: &[Grant], scope: &OperatorScope) -> Value {
    let arns = ArnScope::every_stack(&scope.region);
    let statements: Vec<Value> = grants
        .iter()
        .filter_map(|grant| {
            let resources: Vec<String> = grant
                .on
                .iter()
                .flat_map(|on| on.arns(&arns, scope.pipeline))
                .collect();
            if resources.is_empty() {
                return None;
            }
            let mut statement = json!({
                "Sid": grant.sid,
                "Effect": "Allow",
                "Action": one_or_many(grant.actions.iter().map(|a| (*a).to_owned()).collect()),
                "Resource": one_or_many(resources),
            });
            if let Some(condition) = grant.condition.element(&scope.region) {
                statement["Condition"] = condition;
            }
            Some(statement)
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests;
