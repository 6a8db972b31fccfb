//! AWS's timing, which the sandbox keeps: a new role is not assumable by Lambda, and a new
//! instance profile not known to EC2, for a few seconds (IAM is eventually consistent); a new
//! function is `Pending` and an updated one `InProgress` for a while; an instance is `pending`
//! while it boots, and its user-data runs (its server starts) only after; a deleted bucket's
//! name is not free at once; the control planes throttle bursts at their documented rates.
//! Plain functions of the clock and of the request's bytes; the edge applies them (see
//! [`super::edge`]).
//!
//! The figures come in presets: [`Timing::fast`] (none, for tests that are not about time),
//! [`Timing::realistic`] (the default: every behaviour shows, none makes a newcomer wait long)
//! and [`Timing::like_aws`] (AWS's typical figures).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::iam::{Service, ServiceError};
use crate::lambda_host::function_name;
use crate::sts::form_value;

/// How long AWS makes each thing wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a role created (or given a new trust policy) cannot be assumed by Lambda, and
    /// an instance profile created (or given its role) is unknown to EC2's `RunInstances`.
    pub iam_propagation: Duration,
    /// How long an instance stays `pending`; its user-data runs when it is `running`.
    pub instance_boot: Duration,
    /// How long a new function stays `Pending`.
    pub function_create: Duration,
    /// How long a function's update stays `InProgress`.
    pub function_update: Duration,
    /// How long a deleted bucket's name cannot be taken again (`OperationAborted`).
    pub bucket_name_reuse: Duration,
    /// Whether the control planes' documented request rates are enforced (Lambda's 15 per
    /// second, EC2's token buckets), with their throttling errors.
    pub throttling: bool,
}

impl Timing {
    /// Nothing waits: for tests that are not about AWS's timing.
    pub const fn fast() -> Self {
        Self {
            iam_propagation: Duration::ZERO,
            instance_boot: Duration::ZERO,
            function_create: Duration::ZERO,
            function_update: Duration::ZERO,
            bucket_name_reuse: Duration::ZERO,
            throttling: false,
        }
    }

    /// The default: each of AWS's waits happens, shorter than on AWS.
    pub const fn realistic() -> Self {
        Self {
            iam_propagation: Duration::from_secs(5),
            instance_boot: Duration::from_secs(15),
            function_create: Duration::from_secs(2),
            function_update: Duration::from_secs(1),
            bucket_name_reuse: Duration::from_secs(3),
            throttling: true,
        }
    }

    /// AWS's typical figures: IAM propagates in about ten seconds; a t3.micro with Amazon Linux
    /// 2023 is `running` and through its user-data in well under a minute; a `provided.al2023`
    /// zip function leaves `Pending` in a few seconds.
    pub const fn like_aws() -> Self {
        Self {
            iam_propagation: Duration::from_secs(10),
            instance_boot: Duration::from_secs(40),
            function_create: Duration::from_secs(5),
            function_update: Duration::from_secs(3),
            bucket_name_reuse: Duration::from_secs(10),
            throttling: true,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self::realistic()
    }
}

/// Where a function stands, as `GetFunctionConfiguration` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionPhase {
    /// `State: Active`, `LastUpdateStatus: Successful`.
    Ready,
    /// `State: Pending` after `CreateFunction`.
    Creating,
    /// `State: Active`, `LastUpdateStatus: InProgress` after an update.
    Updating,
}

/// The calls whose timing the sandbox keeps, told from a request's method, path, signing
/// scope and (small) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimedCall {
    /// IAM: a role or instance profile changed in a way Lambda or EC2 sees late.
    IamChange {
        role: Option<String>,
        profile: Option<String>,
    },
    CreateFunction {
        name: String,
        role: String,
    },
    /// `UpdateFunctionCode` or `UpdateFunctionConfiguration` (with its new role, if any).
    UpdateFunction {
        name: String,
        role: Option<String>,
    },
    DeleteFunction {
        name: String,
    },
    /// `GetFunction` (the configuration nested under `Configuration`) or
    /// `GetFunctionConfiguration`.
    ReadFunction {
        name: String,
        nested: bool,
    },
    Invoke {
        name: String,
    },
    CreateBucket {
        name: String,
    },
    DeleteBucket {
        name: String,
    },
    RunInstances {
        /// `IamInstanceProfile.Name`, or the name in `IamInstanceProfile.Arn`.
        profile: Option<ProfileReference>,
        /// `InstanceType` (EC2's default, `m1.small`, when absent) and `MinCount`.
        instance_type: String,
        min_count: u32,
    },
    DescribeInstances,
}

/// How `RunInstances` named its instance profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileReference {
    Name(String),
    Arn(String),
}

impl ProfileReference {
    fn name(&self) -> &str {
        match self {
            ProfileReference::Name(name) => name,
            ProfileReference::Arn(arn) => arn.rsplit('/').next().unwrap_or(arn),
        }
    }
}

/// Which body, if any, [`recognise`] needs to tell a request: IAM and EC2 name their action in
/// a form body; `CreateFunction` and `UpdateFunctionConfiguration` name the role in theirs.
pub fn body_needed(method: &str, path: &str, scope: Option<&str>) -> bool {
    match scope {
        Some("iam" | "ec2") => true,
        Some("lambda") => {
            (method == "POST" && lambda_rest(path) == Some(""))
                || (method == "PUT"
                    && lambda_rest(path).is_some_and(|rest| rest.ends_with("/configuration")))
        }
        _ => false,
    }
}

/// The part of a Lambda path after `/<version>/functions`, if it is one.
fn lambda_rest(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (version, rest) = rest.split_once('/')?;
    if !version.starts_with("20") {
        return None;
    }
    let rest = rest.strip_prefix("functions")?;
    match rest {
        "" | "/" => Some(""),
        _ => rest.strip_prefix('/'),
    }
}

/// The call a request makes, if the sandbox times it. `scope` is the service its signature
/// names; `body` is read when [`body_needed`] says so, and empty otherwise.
pub fn recognise(
    method: &str,
    path: &str,
    query: &str,
    scope: Option<&str>,
    body: &[u8],
) -> Option<TimedCall> {
    match scope {
        Some("iam") => return recognise_iam(query, body),
        Some("ec2") => return recognise_ec2(query, body),
        Some("s3") => return recognise_s3(method, path, query),
        Some("lambda") => {}
        _ => return None,
    }
    let rest = lambda_rest(path)?;
    if rest.is_empty() {
        if method != "POST" {
            return None;
        }
        let fields: Value = serde_json::from_slice(body).ok()?;
        return Some(TimedCall::CreateFunction {
            name: function_name(fields["FunctionName"].as_str()?),
            role: fields["Role"].as_str()?.to_owned(),
        });
    }
    let (function, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let name = function_name(function);
    match (method, tail) {
        ("GET", "") => Some(TimedCall::ReadFunction { name, nested: true }),
        ("GET", "configuration") => Some(TimedCall::ReadFunction {
            name,
            nested: false,
        }),
        ("DELETE", "") => Some(TimedCall::DeleteFunction { name }),
        ("POST", "invocations") => Some(TimedCall::Invoke { name }),
        ("PUT", "code") => Some(TimedCall::UpdateFunction { name, role: None }),
        ("PUT", "configuration") => {
            let fields: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            Some(TimedCall::UpdateFunction {
                name,
                role: fields["Role"].as_str().map(str::to_owned),
            })
        }
        _ => None,
    }
}

fn recognise_s3(method: &str, path: &str, query: &str) -> Option<TimedCall> {
    let bucket = path.trim_matches('/');
    // Path-style `CreateBucket`/`DeleteBucket`: the bucket alone, no sub-resource.
    let subresource = url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name != "x-id");
    if bucket.is_empty() || bucket.contains('/') || subresource {
        return None;
    }
    let name = bucket.to_owned();
    match method {
        "PUT" => Some(TimedCall::CreateBucket { name }),
        "DELETE" => Some(TimedCall::DeleteBucket { name }),
        _ => None,
    }
}

fn recognise_iam(query: &str, body: &[u8]) -> Option<TimedCall> {
    let action = form_value(query, body, "Action")?;
    let role = || form_value(query, body, "RoleName");
    let profile = || form_value(query, body, "InstanceProfileName");
    match action.as_str() {
        "CreateRole" | "UpdateAssumeRolePolicy" => Some(TimedCall::IamChange {
            role: role(),
            profile: None,
        }),
        "CreateInstanceProfile" | "AddRoleToInstanceProfile" => Some(TimedCall::IamChange {
            role: None,
            profile: profile(),
        }),
        _ => None,
    }
}

fn recognise_ec2(query: &str, body: &[u8]) -> Option<TimedCall> {
    match form_value(query, body, "Action")?.as_str() {
        "RunInstances" => Some(TimedCall::RunInstances {
            profile: form_value(query, body, "IamInstanceProfile.Name")
                .map(ProfileReference::Name)
                .or_else(|| {
                    form_value(query, body, "IamInstanceProfile.Arn").map(ProfileReference::Arn)
                }),
            instance_type: form_value(query, body, "InstanceType")
                .unwrap_or_else(|| "m1.small".to_owned()),
            min_count: form_value(query, body, "MinCount")
                .and_then(|count| count.parse().ok())
                .unwrap_or(1),
        }),
        "DescribeInstances" => Some(TimedCall::DescribeInstances),
        _ => None,
    }
}

/// The vCPUs of an instance type, for EC2's On-Demand vCPU quota: a burstable `t2` below
/// `medium` has one, every other `large` or smaller size two, and an `Nxlarge` 4N.
pub fn vcpus(instance_type: &str) -> u32 {
    let (family, size) = instance_type.split_once('.').unwrap_or((instance_type, ""));
    match size {
        "nano" | "micro" | "small" if family == "t2" => 1,
        "nano" | "micro" | "small" | "medium" | "large" => 2,
        "xlarge" => 4,
        size => size
            .strip_suffix("xlarge")
            .and_then(|n| n.parse::<u32>().ok())
            .map_or(2, |n| 4 * n),
    }
}

/// EC2's refusal when running instances' vCPUs and the launch's would pass the quota.
pub fn vcpu_limit_exceeded(limit: u32) -> (Service, ServiceError) {
    (
        Service::Ec2,
        ServiceError::new(
            400,
            "VcpuLimitExceeded",
            &format!(
                "You have requested more vCPU capacity than your current vCPU limit of {limit} allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."
            ),
        ),
    )
}

/// What the sandbox remembers to keep AWS's timing: when each role, instance profile,
/// function and instance last changed.
#[derive(Debug, Default)]
pub struct Settling {
    timing: Timing,
    roles: Mutex<HashMap<String, Instant>>,
    profiles: Mutex<HashMap<String, Instant>>,
    /// When each function's creation or last update is done, and which it was.
    functions: Mutex<HashMap<String, (FunctionPhase, Instant)>>,
    /// When each instance launched through the edge is `running`.
    instances: Mutex<HashMap<String, Instant>>,
    /// When each deleted bucket's name may be taken again.
    deleted_buckets: Mutex<HashMap<String, Instant>>,
    /// The control planes' request rates (see [`RateClass`]).
    rates: Mutex<HashMap<RateClass, TokenBucket>>,
}

impl Settling {
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            ..Self::default()
        }
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Remembers an IAM change once IAM has accepted it.
    pub fn iam_changed(&self, role: Option<&str>, profile: Option<&str>, now: Instant) {
        if self.timing.iam_propagation.is_zero() {
            return;
        }
        if let (Some(role), Ok(mut roles)) = (role, self.roles.lock()) {
            roles.insert(role.to_owned(), now);
        }
        if let (Some(profile), Ok(mut profiles)) = (profile, self.profiles.lock()) {
            profiles.insert(profile.to_owned(), now);
        }
    }

    fn propagated(
        &self,
        table: &Mutex<HashMap<String, Instant>>,
        name: &str,
        now: Instant,
    ) -> bool {
        let Ok(mut table) = table.lock() else {
            return true;
        };
        let changed = table.get(name).copied();
        match changed {
            Some(at) if now.duration_since(at) < self.timing.iam_propagation => false,
            Some(_) => {
                table.remove(name);
                true
            }
            None => true,
        }
    }

    /// Whether Lambda may assume the role with this ARN yet.
    pub fn role_assumable(&self, role_arn: &str, now: Instant) -> bool {
        let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        self.propagated(&self.roles, name, now)
    }

    /// Whether EC2 knows the instance profile yet.
    pub fn profile_known(&self, profile: &ProfileReference, now: Instant) -> bool {
        self.propagated(&self.profiles, profile.name(), now)
    }

    /// Remembers that a function was created or updated.
    pub fn function_changed(&self, name: &str, phase: FunctionPhase, now: Instant) {
        let lasts = match phase {
            FunctionPhase::Creating => self.timing.function_create,
            FunctionPhase::Updating => self.timing.function_update,
            FunctionPhase::Ready => Duration::ZERO,
        };
        if let Ok(mut functions) = self.functions.lock() {
            if lasts.is_zero() {
                functions.remove(name);
            } else {
                functions.insert(name.to_owned(), (phase, now + lasts));
            }
        }
    }

    pub fn function_deleted(&self, name: &str) {
        if let Ok(mut functions) = self.functions.lock() {
            functions.remove(name);
        }
    }

    /// Where function `name` stands at `now`.
    pub fn function_phase(&self, name: &str, now: Instant) -> FunctionPhase {
        let Ok(mut functions) = self.functions.lock() else {
            return FunctionPhase::Ready;
        };
        match functions.get(name).copied() {
            Some((phase, until)) if now < until => phase,
            Some(_) => {
                functions.remove(name);
                FunctionPhase::Ready
            }
            None => FunctionPhase::Ready,
        }
    }

    /// Remembers instances just launched: they are `pending` while they boot.
    pub fn instances_launched(&self, ids: &[String], now: Instant) {
        if self.timing.instance_boot.is_zero() {
            return;
        }
        if let Ok(mut instances) = self.instances.lock() {
            for id in ids {
                instances.insert(id.clone(), now + self.timing.instance_boot);
            }
        }
    }

    /// The instances still booting at `now`.
    pub fn booting(&self, now: Instant) -> Vec<String> {
        let Ok(mut instances) = self.instances.lock() else {
            return Vec::new();
        };
        instances.retain(|_, running_at| now < *running_at);
        instances.keys().cloned().collect()
    }

    /// Remembers a deleted bucket: its name is not free again at once.
    pub fn bucket_deleted(&self, name: &str, now: Instant) {
        if self.timing.bucket_name_reuse.is_zero() {
            return;
        }
        if let Ok(mut buckets) = self.deleted_buckets.lock() {
            buckets.insert(name.to_owned(), now + self.timing.bucket_name_reuse);
        }
    }

    /// Whether a bucket named `name` may be created at `now`.
    pub fn bucket_name_free(&self, name: &str, now: Instant) -> bool {
        let Ok(mut buckets) = self.deleted_buckets.lock() else {
            return true;
        };
        buckets.retain(|_, free_at| now < *free_at);
        !buckets.contains_key(name)
    }

    /// Takes a token for a request of `class` at `now`; `false`: AWS would throttle it.
    pub fn admit(&self, class: RateClass, now: Instant) -> bool {
        if !self.timing.throttling {
            return true;
        }
        let Ok(mut rates) = self.rates.lock() else {
            return true;
        };
        rates
            .entry(class)
            .or_insert_with(|| TokenBucket::full(class, now))
            .take(class, now)
    }

    /// Whether instance `id` is still booting at `now`.
    pub fn is_booting(&self, id: &str, now: Instant) -> bool {
        self.instances
            .lock()
            .map(|instances| instances.get(id).is_some_and(|at| now < *at))
            .unwrap_or(false)
    }
}

/// The control-plane request rates the sandbox enforces, each a token bucket as AWS documents
/// it: Lambda's "control plane API request rate (excludes invocation, GetFunction, and
/// GetPolicy requests)" of 15 per second and GetFunction's 100 per second
/// (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), EC2's buckets
/// for non-mutating (`Describe*`: 100, refilled 20 per second) and mutating actions (200,
/// refilled 5 per second) (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    LambdaControl,
    LambdaGetFunction,
    Ec2Describe,
    Ec2Mutating,
}

impl RateClass {
    /// The bucket's size and its refill per second.
    fn bucket(self) -> (f64, f64) {
        match self {
            RateClass::LambdaControl => (15.0, 15.0),
            RateClass::LambdaGetFunction => (100.0, 100.0),
            RateClass::Ec2Describe => (100.0, 20.0),
            RateClass::Ec2Mutating => (200.0, 5.0),
        }
    }

    /// The error AWS answers when the bucket is empty.
    pub fn throttled(self) -> (Service, ServiceError) {
        match self {
            RateClass::LambdaControl | RateClass::LambdaGetFunction => (
                Service::Lambda,
                ServiceError::new(429, "TooManyRequestsException", "Rate exceeded"),
            ),
            RateClass::Ec2Describe | RateClass::Ec2Mutating => (
                Service::Ec2,
                ServiceError::new(503, "RequestLimitExceeded", "Request limit exceeded."),
            ),
        }
    }
}

/// The rate class of a request, if its service's control plane is rate-limited here. Lambda's
/// invocations and the calls on its other paths (layers, tags) are not counted.
pub fn rate_class(
    method: &str,
    path: &str,
    query: &str,
    scope: Option<&str>,
    body: &[u8],
) -> Option<RateClass> {
    match scope? {
        "ec2" => {
            let action = form_value(query, body, "Action")?;
            Some(if action.starts_with("Describe") {
                RateClass::Ec2Describe
            } else {
                RateClass::Ec2Mutating
            })
        }
        "lambda" => {
            let rest = lambda_rest(path)?;
            let (function, tail) = rest.split_once('/').unwrap_or((rest, ""));
            match (method, tail) {
                (_, "invocations" | "invoke-async") => None,
                ("GET", "policy") => None,
                ("GET", "") if !function.is_empty() => Some(RateClass::LambdaGetFunction),
                _ => Some(RateClass::LambdaControl),
            }
        }
        _ => None,
    }
}

/// A token bucket: `tokens` left, refilled with time.
#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn full(class: RateClass, now: Instant) -> Self {
        Self {
            tokens: class.bucket().0,
            at: now,
        }
    }

    fn take(&mut self, class: RateClass, now: Instant) -> bool {
        let (size, refill) = class.bucket();
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * refill).min(size);
        self.at = now.max(self.at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What S3 answers a `CreateBucket` for a name deleted a moment ago.
pub fn bucket_name_busy() -> (Service, ServiceError) {
    (
        Service::S3,
        ServiceError::new(
            409,
            "OperationAborted",
            "A conflicting conditional operation is currently in progress against this resource. Please try again.",
        ),
    )
}

/// What Lambda answers `CreateFunction` (and `UpdateFunctionConfiguration`) with a role it
/// cannot assume yet.
pub fn role_not_assumable() -> (Service, ServiceError) {
    (
        Service::Lambda,
        ServiceError::new(
            400,
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        ),
    )
}

/// What EC2 answers `RunInstances` with an instance profile it does not know yet.
pub fn profile_unknown(profile: &ProfileReference) -> (Service, ServiceError) {
    let message = match profile {
        ProfileReference::Name(name) => format!(
            "Value ({name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
        ),
        ProfileReference::Arn(arn) => format!(
            "Value ({arn}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN"
        ),
    };
    (
        Service::Ec2,
        ServiceError::new(400, "InvalidParameterValue", &message),
    )
}

/// What Lambda answers a call the function's phase does not allow: any call but a read while
/// it is `Pending`, an update while another is `InProgress`.
pub fn function_busy(
    phase: FunctionPhase,
    function_arn: &str,
    is_update: bool,
) -> Option<(Service, ServiceError)> {
    let message = match (phase, is_update) {
        (FunctionPhase::Creating, _) => {
            "The operation cannot be performed at this time. The function is currently in the following state: Pending".to_owned()
        }
        (FunctionPhase::Updating, true) => format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {function_arn}"
        ),
        _ => return None,
    };
    Some((
        Service::Lambda,
        ServiceError::new(409, "ResourceConflictException", &message),
    ))
}

/// Rewrites a function configuration (`GetFunctionConfiguration`'s answer, or
/// `GetFunction`'s `Configuration`) to say `phase`.
pub fn show_phase(configuration: &mut Value, phase: FunctionPhase) {
    let Value::Object(fields) = configuration else {
        return;
    };
    let mut set = |key: &str, value: &str| {
        fields.insert(key.to_owned(), Value::String(value.to_owned()));
    };
    match phase {
        FunctionPhase::Ready => {}
        FunctionPhase::Creating => {
            set("State", "Pending");
            set("StateReason", "The function is being created.");
            set("StateReasonCode", "Creating");
            set("LastUpdateStatus", "InProgress");
            set("LastUpdateStatusReason", "The function is being created.");
            set("LastUpdateStatusReasonCode", "Creating");
        }
        FunctionPhase::Updating => {
            set("State", "Active");
            set("LastUpdateStatus", "InProgress");
            set("LastUpdateStatusReason", "The function is being updated.");
            set("LastUpdateStatusReasonCode", "Updating");
        }
    }
}

/// The instance ids a `RunInstances` answer (EC2's XML) names.
pub fn launched_instance_ids(xml: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<instanceId>") {
        rest = &rest[start + "<instanceId>".len()..];
        let Some(end) = rest.find("</instanceId>") else {
            break;
        };
        let id = rest[..end].trim();
        if !id.is_empty() && !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
        rest = &rest[end..];
    }
    ids
}

/// Rewrites a `DescribeInstances` answer so that each booting instance that moto says is
/// `running` is `pending` (code 0), as EC2 says while it boots.
pub fn show_booting(xml: &str, booting: &[String]) -> String {
    const RUNNING: &str = "<instanceState><code>16</code><name>running</name></instanceState>";
    const PENDING: &str = "<instanceState><code>0</code><name>pending</name></instanceState>";
    let mut text = xml.to_owned();
    for id in booting {
        let marker = format!("<instanceId>{id}</instanceId>");
        let mut from = 0;
        while let Some(found) = text[from..].find(&marker) {
            let after = from + found + marker.len();
            // The state follows the id in the same instance item, before the next instance.
            let next_instance = text[after..]
                .find("<instanceId>")
                .map_or(text.len(), |at| after + at);
            if let Some(at) = text[after..next_instance].find(RUNNING) {
                let start = after + at;
                text.replace_range(start..start + RUNNING.len(), PENDING);
            }
            from = after;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presets_order_from_none_to_aws() {
        let (fast, realistic, aws) = (Timing::fast(), Timing::realistic(), Timing::like_aws());
        assert_eq!(fast.instance_boot, Duration::ZERO);
        assert!(realistic.instance_boot < aws.instance_boot);
        assert!(realistic.iam_propagation < aws.iam_propagation);
        assert_eq!(Timing::default(), realistic);
    }

    #[test]
    fn calls_are_told_from_their_paths_and_bodies() {
        let create = br#"{"FunctionName":"arn:aws:lambda:us-east-1:123456789012:function:proxy","Role":"arn:aws:iam::123456789012:role/r","Code":{}}"#;
        assert!(body_needed("POST", "/2015-03-31/functions", Some("lambda")));
        assert_eq!(
            recognise("POST", "/2015-03-31/functions", "", Some("lambda"), create),
            Some(TimedCall::CreateFunction {
                name: "proxy".into(),
                role: "arn:aws:iam::123456789012:role/r".into()
            })
        );
        assert_eq!(
            recognise(
                "GET",
                "/2015-03-31/functions/proxy",
                "",
                Some("lambda"),
                b""
            ),
            Some(TimedCall::ReadFunction {
                name: "proxy".into(),
                nested: true
            })
        );
        assert_eq!(
            recognise(
                "GET",
                "/2015-03-31/functions/proxy/configuration",
                "",
                Some("lambda"),
                b""
            ),
            Some(TimedCall::ReadFunction {
                name: "proxy".into(),
                nested: false
            })
        );
        assert_eq!(
            recognise(
                "PUT",
                "/2015-03-31/functions/proxy/configuration",
                "",
                Some("lambda"),
                br#"{"MemorySize":512}"#
            ),
            Some(TimedCall::UpdateFunction {
                name: "proxy".into(),
                role: None
            })
        );
        assert_eq!(
            recognise(
                "POST",
                "/2015-03-31/functions/proxy/invocations",
                "",
                Some("lambda"),
                b""
            ),
            Some(TimedCall::Invoke {
                name: "proxy".into()
            })
        );
        assert!(!body_needed(
            "POST",
            "/2015-03-31/functions/proxy/invocations",
            Some("lambda")
        ));
        assert_eq!(
            recognise("GET", "/2015-03-31/functions/", "", Some("lambda"), b""),
            None,
            "ListFunctions"
        );
        assert_eq!(
            recognise(
                "POST",
                "/",
                "",
                Some("iam"),
                b"Action=AddRoleToInstanceProfile&InstanceProfileName=p&RoleName=r"
            ),
            Some(TimedCall::IamChange {
                role: None,
                profile: Some("p".into())
            })
        );
        assert_eq!(
            recognise("POST", "/", "", Some("iam"), b"Action=GetRole&RoleName=r"),
            None
        );
        assert_eq!(
            recognise(
                "POST",
                "/",
                "",
                Some("ec2"),
                b"Action=RunInstances&IamInstanceProfile.Arn=arn%3Aaws%3Aiam%3A%3A1%3Ainstance-profile%2Fp"
            ),
            Some(TimedCall::RunInstances {
                profile: Some(ProfileReference::Arn(
                    "arn:aws:iam::1:instance-profile/p".into()
                )),
                instance_type: "m1.small".into(),
                min_count: 1,
            })
        );
        assert_eq!(
            recognise(
                "POST",
                "/",
                "",
                Some("ec2"),
                b"Action=RunInstances&InstanceType=t3.micro&MinCount=3&MaxCount=3"
            ),
            Some(TimedCall::RunInstances {
                profile: None,
                instance_type: "t3.micro".into(),
                min_count: 3,
            })
        );
    }

    #[test]
    fn instance_types_count_their_vcpus_as_the_quota_does() {
        assert_eq!(vcpus("t2.micro"), 1);
        assert_eq!(vcpus("t3.micro"), 2);
        assert_eq!(vcpus("t2.medium"), 2);
        assert_eq!(vcpus("m5.large"), 2);
        assert_eq!(vcpus("c5.xlarge"), 4);
        assert_eq!(vcpus("m5.4xlarge"), 16);
        let (_, error) = vcpu_limit_exceeded(32);
        assert_eq!(error.code, "VcpuLimitExceeded");
    }

    #[test]
    fn a_new_role_is_assumable_only_after_propagation() {
        let settling = Settling::new(Timing::realistic());
        let start = Instant::now();
        settling.iam_changed(Some("r"), Some("p"), start);
        let arn = "arn:aws:iam::123456789012:role/path/r";
        assert!(!settling.role_assumable(arn, start + Duration::from_secs(1)));
        assert!(settling.role_assumable(arn, start + Duration::from_secs(5)));
        assert!(settling.role_assumable("arn:aws:iam::123456789012:role/other", start));
        let profile = ProfileReference::Arn("arn:aws:iam::1:instance-profile/p".into());
        assert!(!settling.profile_known(&profile, start));
        assert!(settling.profile_known(&profile, start + Duration::from_secs(6)));
        let fast = Settling::new(Timing::fast());
        fast.iam_changed(Some("r"), None, start);
        assert!(fast.role_assumable(arn, start));
    }

    #[test]
    fn a_function_is_pending_then_active_and_an_update_in_progress_blocks_the_next() {
        let settling = Settling::new(Timing::realistic());
        let start = Instant::now();
        settling.function_changed("f", FunctionPhase::Creating, start);
        assert_eq!(settling.function_phase("f", start), FunctionPhase::Creating);
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
        let (_, error) = function_busy(FunctionPhase::Creating, arn, false).expect("refused");
        assert!(
            error.message.ends_with("state: Pending"),
            "{}",
            error.message
        );
        let later = start + Duration::from_secs(2);
        assert_eq!(settling.function_phase("f", later), FunctionPhase::Ready);
        settling.function_changed("f", FunctionPhase::Updating, later);
        assert_eq!(settling.function_phase("f", later), FunctionPhase::Updating);
        assert!(
            function_busy(FunctionPhase::Updating, arn, false).is_none(),
            "invokes go on"
        );
        let (_, error) = function_busy(FunctionPhase::Updating, arn, true).expect("refused");
        assert_eq!(error.status, 409);
        assert!(error.message.contains(arn));
        settling.function_deleted("f");
        assert_eq!(settling.function_phase("f", later), FunctionPhase::Ready);
    }

    #[test]
    fn the_phase_shows_in_the_configuration() {
        let mut configuration =
            serde_json::json!({"State": "Active", "LastUpdateStatus": "Successful"});
        show_phase(&mut configuration, FunctionPhase::Creating);
        assert_eq!(configuration["State"], "Pending");
        assert_eq!(configuration["LastUpdateStatus"], "InProgress");
        show_phase(&mut configuration, FunctionPhase::Updating);
        assert_eq!(configuration["State"], "Active");
        assert_eq!(configuration["LastUpdateStatus"], "InProgress");
    }

    #[test]
    fn a_deleted_bucket_name_is_taken_again_only_after_a_while() {
        let settling = Settling::new(Timing::realistic());
        let start = Instant::now();
        assert_eq!(
            recognise("DELETE", "/b", "", Some("s3"), b""),
            Some(TimedCall::DeleteBucket { name: "b".into() })
        );
        assert_eq!(
            recognise("PUT", "/b", "x-id=CreateBucket", Some("s3"), b""),
            Some(TimedCall::CreateBucket { name: "b".into() })
        );
        assert_eq!(recognise("PUT", "/b", "tagging", Some("s3"), b""), None);
        assert_eq!(recognise("PUT", "/b/k", "", Some("s3"), b""), None);
        settling.bucket_deleted("b", start);
        assert!(!settling.bucket_name_free("b", start + Duration::from_secs(1)));
        assert!(settling.bucket_name_free("other", start));
        assert!(settling.bucket_name_free("b", start + Duration::from_secs(3)));
        assert_eq!(bucket_name_busy().1.code, "OperationAborted");
    }

    #[test]
    fn control_planes_are_throttled_at_their_documented_rates() {
        assert_eq!(
            rate_class(
                "POST",
                "/2015-03-31/functions/f/invocations",
                "",
                Some("lambda"),
                b""
            ),
            None
        );
        assert_eq!(
            rate_class("GET", "/2015-03-31/functions/f", "", Some("lambda"), b""),
            Some(RateClass::LambdaGetFunction)
        );
        assert_eq!(
            rate_class(
                "GET",
                "/2015-03-31/functions/f/configuration",
                "",
                Some("lambda"),
                b""
            ),
            Some(RateClass::LambdaControl)
        );
        assert_eq!(
            rate_class(
                "POST",
                "/",
                "",
                Some("ec2"),
                b"Action=DescribeInstances&Version=2016-11-15"
            ),
            Some(RateClass::Ec2Describe)
        );
        assert_eq!(
            rate_class("POST", "/", "", Some("ec2"), b"Action=RunInstances"),
            Some(RateClass::Ec2Mutating)
        );
        assert_eq!(rate_class("PUT", "/b/k", "", Some("s3"), b""), None);

        let settling = Settling::new(Timing::realistic());
        let start = Instant::now();
        let admitted = (0..20)
            .filter(|_| settling.admit(RateClass::LambdaControl, start))
            .count();
        assert_eq!(admitted, 15, "a burst of 15, then throttled");
        assert!(!settling.admit(RateClass::LambdaControl, start + Duration::from_millis(10)));
        assert!(
            settling.admit(RateClass::LambdaControl, start + Duration::from_millis(100)),
            "refilled"
        );
        assert!(
            settling.admit(RateClass::Ec2Describe, start),
            "buckets are apart"
        );
        let (_, error) = RateClass::Ec2Describe.throttled();
        assert_eq!(
            (error.status, error.code.as_str()),
            (503, "RequestLimitExceeded")
        );
        let fast = Settling::new(Timing::fast());
        assert!((0..1000).all(|_| fast.admit(RateClass::LambdaControl, start)));
    }

    #[test]
    fn booting_instances_are_pending_and_the_others_keep_their_state() {
        let running = "<instanceState><code>16</code><name>running</name></instanceState>";
        let xml = format!(
            "<instancesSet><item><instanceId>i-1</instanceId><imageId>ami</imageId>{running}<launchTime/></item><item><instanceId>i-2</instanceId>{running}</item></instancesSet>"
        );
        assert_eq!(launched_instance_ids(&xml), ["i-1", "i-2"]);
        let shown = show_booting(&xml, &["i-2".to_owned()]);
        let first = shown.find("i-1").expect("i-1");
        let second = shown.find("i-2").expect("i-2");
        assert!(shown[first..second].contains("running"), "{shown}");
        assert!(
            shown[second..].contains("<code>0</code><name>pending</name>"),
            "{shown}"
        );
        assert!(!shown[second..].contains("running"), "{shown}");
        let settling = Settling::new(Timing::realistic());
        let start = Instant::now();
        settling.instances_launched(&["i-1".to_owned()], start);
        assert!(settling.is_booting("i-1", start + Duration::from_secs(14)));
        assert_eq!(settling.booting(start), ["i-1"]);
        assert!(!settling.is_booting("i-1", start + Duration::from_secs(15)));
        assert!(settling.booting(start + Duration::from_secs(15)).is_empty());
    }
}
