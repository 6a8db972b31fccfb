//! IAM enforced at the edge for the principals the sandbox issued keys to: each request a
//! function environment or an instance signs is classified ([`super::iam::classify`]) and
//! decided against its role's identity policies, read from IAM on moto and cached until an
//! IAM write goes through the edge. A refused request never reaches moto and gets the error
//! AWS sends for its service; so do expired and mismatched session tokens. Requests the
//! classifier cannot map to actions are refused too, with a message that says so: what
//! cannot be checked is not let through.
//!
//! The operator's requests pass unchecked unless the sandbox was given an operator policy;
//! anonymous ones (a browser reading a public object) go to moto as before. `--iam off`
//! turns all of this off.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::request::Parts;

use super::iam::{
    self, Authorization, Classification, HttpRequestParts, Lookups, Policy, RefusalResponse,
    Refused, RequestContext, Service, ServiceError,
};
use super::principals::{Caller, Principal, RoleDirectory, rfc3339_seconds};
use super::resource_tags::ResourceTags;

/// Whether the sandbox enforces IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IamMode {
    /// Every issued principal's request is authorised against its role's policies.
    #[default]
    Enforce,
    /// Nothing is checked (`--iam off`): every key may do anything, as with moto alone.
    Off,
}

/// What the edge does with a request.
#[derive(Debug)]
pub enum Gate {
    /// Send it on. `when_missing` is the refusal to answer instead if the store answers 404
    /// (S3's 403 for a missing object read without `s3:ListBucket`).
    Pass {
        when_missing: Option<Box<RefusalResponse>>,
    },
    /// Answer with this refusal.
    Refuse(RefusalResponse),
}

impl Gate {
    fn pass() -> Self {
        Gate::Pass { when_missing: None }
    }
}

/// Who may send what: the operator's policy, if any, and each role's policies.
pub struct Authorizer {
    mode: IamMode,
    roles: RoleDirectory,
    /// EC2 on moto, for the tags of the instances and security groups a request acts on.
    ec2: aws_sdk_ec2::Client,
    account: String,
    region: String,
    /// The operator's identity policy, when the sandbox enforces one (`--operator-policy`),
    /// with the ARN the operator goes by in refusals.
    operator: Option<(Arc<[Policy]>, String)>,
    /// Bumped by every IAM write; cached answers of an older generation are read again.
    generation: AtomicU64,
    policies: Mutex<HashMap<String, Cached<Arc<[Policy]>>>>,
    /// How long a change to a role's permissions takes to apply (IAM is eventually
    /// consistent); zero applies it at once.
    propagation: Duration,
    /// The policies a role had before a change, in force until the change has propagated.
    propagating: Mutex<HashMap<String, Propagating>>,
    /// S3 on moto, for bucket policies; `None`: they are not read.
    s3: Option<aws_sdk_s3::Client>,
    /// Bumped when a bucket policy is put or deleted.
    bucket_generation: AtomicU64,
    bucket_policies: Mutex<HashMap<String, Cached<Option<Arc<Policy>>>>>,
    role_arns: Mutex<HashMap<String, Cached<Option<String>>>>,
    profile_roles: Mutex<HashMap<String, Cached<Option<String>>>>,
    /// The tags of the resources the agent keeps itself.
    resource_tags: Option<Arc<ResourceTags>>,
}

/// A cached answer, with the IAM generation it was read in.
type Cached<T> = (u64, T);

/// A role's permissions from before a change, and until when they stay in force.
type Propagating = (Instant, Arc<[Policy]>);

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("mode", &self.mode)
            .field("operator_policy", &self.operator.is_some())
            .finish_non_exhaustive()
    }
}

/// The operator, as refusals name it when an operator policy is enforced.
pub const OPERATOR_ARN_SUFFIX: &str = "user/hybridlab-operator";

impl Authorizer {
    pub fn new(
        mode: IamMode,
        roles: RoleDirectory,
        ec2: aws_sdk_ec2::Client,
        account: &str,
        region: &str,
    ) -> Self {
        Self {
            mode,
            roles,
            ec2,
            account: account.to_owned(),
            region: region.to_owned(),
            operator: None,
            generation: AtomicU64::new(0),
            policies: Mutex::default(),
            propagation: Duration::ZERO,
            propagating: Mutex::default(),
            s3: None,
            bucket_generation: AtomicU64::new(0),
            bucket_policies: Mutex::default(),
            role_arns: Mutex::default(),
            profile_roles: Mutex::default(),
            resource_tags: None,
        }
    }

    /// Reads the tags of the resources the agent keeps itself (event source mappings) from
    /// `tags`.
    pub fn with_resource_tags(mut self, tags: Arc<ResourceTags>) -> Self {
        self.resource_tags = Some(tags);
        self
    }

    /// Enforces `policies` for the operator's requests too.
    pub fn with_operator_policy(mut self, policies: Vec<Policy>) -> Self {
        let arn = format!("arn:aws:iam::{}:{OPERATOR_ARN_SUFFIX}", self.account);
        self.operator = Some((policies.into(), arn));
        self
    }

    /// Evaluates each S3 request against its bucket's policy too, read from `s3` (moto).
    pub fn with_bucket_policies(mut self, s3: aws_sdk_s3::Client) -> Self {
        self.s3 = Some(s3);
        self
    }

    /// Forgets the cached bucket policies: one was put or deleted.
    pub fn bucket_policy_changed(&self) {
        self.bucket_generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The policy of `bucket`, if it has one (from the cache or S3).
    async fn bucket_policy(&self, bucket: &str) -> Option<Arc<Policy>> {
        let s3 = self.s3.as_ref()?;
        let generation = self.bucket_generation.load(Ordering::Relaxed);
        if let Some((cached, policy)) = lock(&self.bucket_policies).get(bucket)
            && *cached == generation
        {
            return policy.clone();
        }
        let policy = match s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(output) => output.policy().and_then(|document| {
                Policy::parse(&format!("the bucket policy of {bucket}"), document)
                    .inspect_err(|err| {
                        tracing::warn!(bucket = %bucket, error = %err, "a bucket policy the sandbox cannot read is ignored");
                    })
                    .ok()
                    .map(Arc::new)
            }),
            // NoSuchBucketPolicy, NoSuchBucket: nothing to add.
            Err(_) => None,
        };
        lock(&self.bucket_policies).insert(bucket.to_owned(), (generation, policy.clone()));
        policy
    }

    /// The resource policy that applies to `check` besides the caller's own: its bucket's,
    /// for S3.
    async fn resource_policy_for(
        &self,
        service: Service,
        check: &RequestContext,
    ) -> Option<Arc<Policy>> {
        if service != Service::S3 {
            return None;
        }
        let bucket = check
            .resource
            .as_str()
            .strip_prefix("arn:aws:s3:::")?
            .split('/')
            .next()
            .filter(|bucket| !bucket.is_empty() && !bucket.contains('*'))?;
        self.bucket_policy(bucket).await
    }

    /// Changes to a role's permissions apply `propagation` after they are made, as IAM's
    /// do: until then the role's sessions keep the permissions it had.
    pub fn with_propagation(mut self, propagation: Duration) -> Self {
        self.propagation = propagation;
        self
    }

    /// Keeps the permissions of `role` (of every role read so far, for a change to a managed
    /// policy, which any of them may attach) as they are now until the change about to be
    /// made has propagated. A change within the window keeps the permissions from before the
    /// first, for longer.
    pub async fn before_permissions_change(&self, role: Option<&str>) {
        if self.propagation.is_zero() || self.mode == IamMode::Off {
            return;
        }
        let roles: Vec<String> = match role {
            Some(role) => vec![role.to_owned()],
            None => lock(&self.policies).keys().cloned().collect(),
        };
        for role in roles {
            let until = Instant::now() + self.propagation;
            if let Some((pinned_until, _)) = lock(&self.propagating)
                .get_mut(&role)
                .filter(|(pinned_until, _)| *pinned_until > Instant::now())
            {
                *pinned_until = until;
                continue;
            }
            match self.role_policies(&role).await {
                Ok(policies) => {
                    lock(&self.propagating).insert(role, (until, policies));
                }
                // A role that does not exist yet has no permissions to keep.
                Err(err) => tracing::debug!(role = %role, error = %err, "no permissions to keep"),
            }
        }
    }

    pub fn mode(&self) -> IamMode {
        self.mode
    }

    /// Whether requests from `caller` are checked at all (and so whether the edge must
    /// classify them, reading their bodies where [`iam::body_needed`] says so).
    pub fn checks(&self, caller: &Caller) -> bool {
        self.mode == IamMode::Enforce
            && match caller {
                Caller::Principal { .. } => true,
                Caller::Operator(_) => self.operator.is_some(),
                Caller::Anonymous => false,
            }
    }

    /// Forgets every cached policy and name: an IAM write went through.
    pub fn iam_changed(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Decides a request from `caller`; `body` is its body if [`iam::body_needed`], else empty.
    pub async fn decide(&self, caller: &Caller, parts: &Parts, body: &[u8]) -> Gate {
        // A CORS preflight carries no credentials of its own (a browser sends it before a
        // presigned PUT, with the URL's query): S3 answers it from the bucket's CORS rules,
        // not from IAM.
        if !self.checks(caller) || parts.method == http::Method::OPTIONS {
            return Gate::pass();
        }
        let request = HttpRequestParts::new(parts, body);
        let head = parts.method == http::Method::HEAD;
        let request_id = uuid::Uuid::new_v4().to_string();
        let classification = self.classify(&request).await;
        let authorization = match classification {
            Classification::Known(authorization) => authorization,
            Classification::Unknown {
                service, reason, ..
            } => {
                tracing::warn!(caller = %caller, reason = %reason, method = %parts.method, path = %parts.uri.path(), "refused a request IAM enforcement cannot classify");
                return Gate::Refuse(unclassified(service, &reason, &request_id, head));
            }
        };
        let service = authorization.service;
        let (policies, principal_arn) = match caller {
            Caller::Principal {
                principal,
                credential,
            } => {
                if let Some(problem) = principal.token_problem(credential, SystemTime::now()) {
                    return Gate::Refuse(iam::token_refusal(service, problem, &request_id, head));
                }
                match self.role_policies(principal.role.name()).await {
                    Ok(policies) => (policies, principal.arn()),
                    Err(err) => {
                        tracing::error!(role = %principal.role.arn, error = %err, "could not read a role's policies");
                        return Gate::Refuse(iam::error_response(
                            service,
                            &ServiceError::new(
                                500,
                                "InternalFailure",
                                &format!("the sandbox could not read the caller's policies: {err}"),
                            ),
                            &request_id,
                            head,
                        ));
                    }
                }
            }
            Caller::Operator(_) => match &self.operator {
                Some((policies, arn)) => (policies.clone(), arn.clone()),
                None => return Gate::pass(),
            },
            Caller::Anonymous => return Gate::pass(),
        };
        let principal = caller.principal().map(Arc::as_ref);
        let mut checks = with_principal_keys(&authorization.checks, principal, &self.account);
        for check in &mut checks {
            self.add_resource_tags(check).await;
        }
        // Who a resource policy's `Principal` must name to apply to this request.
        let resource_caller = iam::Caller::Principal {
            account: self.account.clone(),
            arns: match principal {
                Some(principal) => vec![principal.arn(), principal.role.arn.clone()],
                None => vec![principal_arn.clone()],
            },
        };
        let mut first_refusal = None;
        for check in &checks {
            let resource_policy = self.resource_policy_for(service, check).await;
            let decision = iam::evaluate_with_resource_policy(
                &policies,
                resource_policy
                    .as_deref()
                    .map(|policy| (policy, &resource_caller)),
                check,
            );
            if !decision.is_allowed() {
                first_refusal = Some((check, decision));
                break;
            }
        }
        if let Some((check, decision)) = first_refusal {
            tracing::info!(
                caller = %principal_arn,
                action = %check.action,
                resource = %check.resource.as_str(),
                operation = %authorization.operation,
                "IAM refused a request"
            );
            let refused = Refused {
                principal: &principal_arn,
                check,
                decision: &decision,
                request_id: &request_id,
                head,
            };
            return Gate::Refuse(iam::refusal(service, &refused));
        }
        let missing_policy = match &authorization.when_missing {
            Some(check) => self.resource_policy_for(service, check).await,
            None => None,
        };
        Gate::Pass {
            when_missing: when_missing(
                &authorization,
                |check| {
                    iam::evaluate_with_resource_policy(
                        &policies,
                        missing_policy
                            .as_deref()
                            .map(|policy| (policy, &resource_caller)),
                        check,
                    )
                },
                principal,
                &principal_arn,
                &self.account,
                &request_id,
                head,
            ),
        }
    }

    /// `aws:ResourceTag/KEY` (and EC2's own `ec2:ResourceTag/KEY`) for a check on an existing
    /// EC2 instance, security group or volume, from its tags now, as EC2 evaluates them (the
    /// operator's policy scopes TerminateInstances and DeleteSecurityGroup to the stack's
    /// tag); and `aws:ResourceTag/KEY` for a resource the agent keeps itself (an event
    /// source mapping). Other services' resource tags are not looked up.
    async fn add_resource_tags(&self, check: &mut RequestContext) {
        if check.resource.is_exact()
            && let Some(tags) = self
                .resource_tags
                .as_ref()
                .and_then(|store| store.of(check.resource.as_str()))
        {
            for (key, value) in tags {
                check.set_key(&format!("aws:ResourceTag/{key}"), [value.as_str()]);
            }
            return;
        }
        let Some(id) =
            ec2_resource_id(check.resource.as_str()).filter(|_| check.resource.is_exact())
        else {
            return;
        };
        let tags = match self
            .ec2
            .describe_tags()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("resource-id")
                    .values(id)
                    .build(),
            )
            .send()
            .await
        {
            Ok(output) => output.tags().to_vec(),
            Err(err) => {
                tracing::warn!(resource = %id, error = %aws_sdk_ec2::error::DisplayErrorContext(&err), "could not read a resource's tags");
                return;
            }
        };
        for tag in tags {
            if let (Some(key), Some(value)) = (tag.key(), tag.value()) {
                check.set_key(&format!("aws:ResourceTag/{key}"), [value]);
                check.set_key(&format!("ec2:ResourceTag/{key}"), [value]);
            }
        }
    }

    /// Classifies `request`, asking IAM for the names the request alone does not resolve
    /// (a role's path, an instance profile's role) and classifying once more with them.
    async fn classify(&self, request: &HttpRequestParts<'_>) -> Classification {
        let generation = self.generation.load(Ordering::Relaxed);
        let lookups = CachedLookups {
            authorizer: self,
            generation,
            missed: Mutex::default(),
        };
        let first = iam::classify(request, &self.account, &self.region, &lookups);
        let missed = std::mem::take(&mut *lookups.missed.lock().unwrap_or_else(|p| p.into_inner()));
        if missed.is_empty() {
            return first;
        }
        for miss in missed {
            match miss {
                Miss::Role(name) => {
                    let arn = self
                        .roles
                        .role_named(&name)
                        .await
                        .unwrap_or_else(|err| {
                            tracing::warn!(error = %err, "could not look a role up");
                            None
                        })
                        .map(|role| role.arn);
                    lock(&self.role_arns).insert(name, (generation, arn));
                }
                Miss::Profile(profile) => {
                    let arn = self
                        .roles
                        .instance_profile_role(&profile)
                        .await
                        .unwrap_or_else(|err| {
                            tracing::warn!(error = %err, "could not look an instance profile up");
                            None
                        })
                        .map(|role| role.arn);
                    lock(&self.profile_roles).insert(profile, (generation, arn));
                }
            }
        }
        iam::classify(request, &self.account, &self.region, &lookups)
    }

    /// Whether role `name`'s policies allow `check`, for what the sandbox does with a role's
    /// permissions itself (writing a function's logs). Always, with IAM off; never, when the
    /// policies cannot be read.
    pub async fn role_allows(&self, name: &str, check: &RequestContext) -> bool {
        if self.mode == IamMode::Off {
            return true;
        }
        match self.role_policies(name).await {
            Ok(policies) => iam::evaluate(&policies, check).is_allowed(),
            Err(err) => {
                tracing::warn!(role = %name, error = %err, "could not read a role's policies");
                false
            }
        }
    }

    /// Role `name`'s policies, from the cache or IAM.
    async fn role_policies(&self, name: &str) -> Result<Arc<[Policy]>, String> {
        {
            let mut propagating = lock(&self.propagating);
            match propagating.get(name) {
                Some((until, policies)) if Instant::now() < *until => return Ok(policies.clone()),
                Some(_) => {
                    propagating.remove(name);
                }
                None => {}
            }
        }
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some((cached, policies)) = lock(&self.policies).get(name)
            && *cached == generation
        {
            return Ok(policies.clone());
        }
        let policies: Arc<[Policy]> = self.roles.role_policies(name).await?.into();
        lock(&self.policies).insert(name.to_owned(), (generation, policies.clone()));
        Ok(policies)
    }
}

/// Whether the policy of function `function_arn` (read from Lambda on moto) lets the AWS
/// service `service` (`s3.amazonaws.com`, `apigateway.amazonaws.com`) invoke it for its
/// resource `source_arn` of `account`, as Lambda checks when a service invokes a function.
/// No policy, or no function, is a refusal.
pub(crate) async fn service_may_invoke(
    lambda: &aws_sdk_lambda::Client,
    function_arn: &str,
    service: &str,
    source_arn: &str,
    account: &str,
) -> bool {
    let Ok(output) = lambda.get_policy().function_name(function_arn).send().await else {
        return false;
    };
    let Ok(policy) = Policy::parse(
        &format!("the policy of {function_arn}"),
        output.policy().unwrap_or_default(),
    ) else {
        return false;
    };
    iam::evaluate_resource_policy(
        &policy,
        &iam::Caller::Service(service.to_owned()),
        &iam::service_invoke(function_arn, source_arn, account),
    )
    .is_allowed()
}

/// The id of the EC2 instance, security group or volume an ARN names.
fn ec2_resource_id(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:ec2:")?;
    let (_, resource) = rest.split_once(":")?.1.split_once(":")?;
    let (kind, id) = resource.split_once('/')?;
    (matches!(kind, "instance" | "security-group" | "volume")
        && !id.is_empty()
        && !id.contains('*'))
    .then_some(id)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

enum Miss {
    Role(String),
    Profile(String),
}

/// The authorizer's cached names, recording what it does not know yet.
struct CachedLookups<'a> {
    authorizer: &'a Authorizer,
    generation: u64,
    missed: Mutex<Vec<Miss>>,
}

impl CachedLookups<'_> {
    fn cached(
        &self,
        cache: &Mutex<HashMap<String, Cached<Option<String>>>>,
        key: &str,
        miss: impl FnOnce() -> Miss,
    ) -> Option<String> {
        match lock(cache).get(key) {
            Some((generation, value)) if *generation == self.generation => value.clone(),
            _ => {
                lock(&self.missed).push(miss());
                None
            }
        }
    }
}

impl Lookups for CachedLookups<'_> {
    fn instance_profile_role(&self, profile: &str) -> Option<String> {
        let name = profile.rsplit('/').next().unwrap_or(profile);
        self.cached(&self.authorizer.profile_roles, name, || {
            Miss::Profile(name.to_owned())
        })
    }

    fn role_arn(&self, name: &str) -> Option<String> {
        self.cached(&self.authorizer.role_arns, name, || {
            Miss::Role(name.to_owned())
        })
    }
}

/// The checks with the keys AWS sets from the caller: `aws:PrincipalArn` (the role's ARN for
/// a role session), `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:userid`, and the
/// request's time. `aws:SecureTransport` is true: every AWS SDK call is HTTPS on AWS, and
/// the sandbox's plain HTTP on loopback stands in for it.
fn with_principal_keys(
    checks: &[RequestContext],
    principal: Option<&Principal>,
    account: &str,
) -> Vec<RequestContext> {
    let now = SystemTime::now();
    let epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
        .to_string();
    let current_time = rfc3339_seconds(now);
    checks
        .iter()
        .map(|check| {
            let mut check = check.clone();
            check.set_key("aws:PrincipalAccount", [account]);
            check.set_key("aws:SecureTransport", ["true"]);
            check.set_key("aws:CurrentTime", [current_time.as_str()]);
            check.set_key("aws:EpochTime", [epoch.as_str()]);
            if let Some(principal) = principal {
                check.set_key("aws:PrincipalArn", [principal.role.arn.as_str()]);
                check.set_key("aws:PrincipalType", ["AssumedRole"]);
                check.set_key("aws:userid", [principal.user_id()]);
            } else {
                check.set_key("aws:PrincipalType", ["User"]);
            }
            check
        })
        .collect()
}

/// The refusal to send instead of a 404 when `when_missing` is denied.
fn when_missing(
    authorization: &Authorization,
    evaluate: impl Fn(&RequestContext) -> iam::Decision,
    principal: Option<&Principal>,
    principal_arn: &str,
    account: &str,
    request_id: &str,
    head: bool,
) -> Option<Box<RefusalResponse>> {
    let check = authorization.when_missing.as_ref()?;
    let check = with_principal_keys(std::slice::from_ref(check), principal, account).remove(0);
    let decision = evaluate(&check);
    (!decision.is_allowed()).then(|| {
        Box::new(iam::refusal(
            authorization.service,
            &Refused {
                principal: principal_arn,
                check: &check,
                decision: &decision,
                request_id,
                head,
            },
        ))
    })
}

/// The refusal of a request the classifier could not map to IAM actions.
fn unclassified(
    service: Option<Service>,
    reason: &str,
    request_id: &str,
    head: bool,
) -> RefusalResponse {
    let message = format!(
        "the hybridlab sandbox cannot tell which IAM actions AWS would authorise this request as ({reason}), so it refuses it rather than let it through unchecked; `hybridlab sandbox --iam off` turns IAM enforcement off"
    );
    match service {
        Some(service) => iam::error_response(
            service,
            &ServiceError::new(403, "AccessDenied", &message),
            request_id,
            head,
        ),
        None => RefusalResponse {
            status: 403,
            headers: vec![("content-type", "text/plain; charset=utf-8".to_owned())],
            body: message.into_bytes(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principals::Role;

    fn principal() -> Arc<Principal> {
        let table = crate::principals::PrincipalTable::default();
        let role = Role {
            arn: "arn:aws:iam::123456789012:role/hybridlab/hybridlab-server-abcd1234".into(),
            id: "AROAEXAMPLE".into(),
        };
        table.issue(&role, "i-0123", std::time::Duration::from_secs(60))
    }

    fn authorizer(mode: IamMode) -> Authorizer {
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder()
                .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
                .region(aws_sdk_iam::config::Region::new("us-east-1"))
                .build(),
        );
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder()
                .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
                .region(aws_sdk_ec2::config::Region::new("us-east-1"))
                .build(),
        );
        Authorizer::new(
            mode,
            RoleDirectory::new(iam),
            ec2,
            "123456789012",
            "us-east-1",
        )
    }

    fn operator() -> Caller {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "authorization",
            http::HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIAOPERATOR/20261206/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
            ),
        );
        Caller::Operator(iam::credential(&headers, "").expect("a credential"))
    }

    #[test]
    fn who_is_checked_depends_on_the_mode_and_the_operator_policy() {
        let session = Caller::Principal {
            principal: principal(),
            credential: match operator() {
                Caller::Operator(credential) => credential,
                _ => unreachable!(),
            },
        };
        let enforcing = authorizer(IamMode::Enforce);
        assert!(enforcing.checks(&session));
        assert!(!enforcing.checks(&operator()));
        assert!(!enforcing.checks(&Caller::Anonymous));

        let policy = Policy::parse(
            "operator",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        )
        .expect("a policy");
        let with_operator = authorizer(IamMode::Enforce).with_operator_policy(vec![policy]);
        assert!(with_operator.checks(&operator()));
        assert!(with_operator.checks(&session));

        let off = authorizer(IamMode::Off);
        assert!(!off.checks(&session));
        assert!(!off.checks(&operator()));
    }

    #[test]
    fn ec2_resources_with_tags_are_told_from_arns() {
        assert_eq!(
            ec2_resource_id("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"),
            Some("i-0abc")
        );
        assert_eq!(
            ec2_resource_id("arn:aws:ec2:us-east-1:123456789012:security-group/sg-1"),
            Some("sg-1")
        );
        assert_eq!(
            ec2_resource_id("arn:aws:ec2:us-east-1:123456789012:instance/*"),
            None
        );
        assert_eq!(ec2_resource_id("arn:aws:ec2:us-east-1::image/ami-1"), None);
        assert_eq!(ec2_resource_id("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn principal_keys_name_the_role_and_the_session() {
        let principal = principal();
        let checks = [RequestContext::new(
            "s3:GetObject",
            iam::Resource::arn("arn:aws:s3:::b/k"),
        )];
        let checks = with_principal_keys(&checks, Some(&principal), "123456789012");
        assert_eq!(
            checks[0].key("aws:PrincipalArn"),
            Some(&[principal.role.arn.clone()][..])
        );
        assert_eq!(
            checks[0].key("aws:userid"),
            Some(&["AROAEXAMPLE:i-0123".to_owned()][..])
        );
        assert_eq!(
            checks[0].key("aws:PrincipalType"),
            Some(&["AssumedRole".to_owned()][..])
        );
        let operator = with_principal_keys(&checks, None, "123456789012");
        assert_eq!(
            operator[0].key("aws:PrincipalType"),
            Some(&["User".to_owned()][..])
        );
    }

    #[test]
    fn a_missing_object_read_without_list_bucket_is_refused_as_s3_does() {
        let policy = Policy::parse(
            "read",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
        )
        .expect("a policy");
        let authorization = Authorization {
            service: Service::S3,
            operation: "GetObject".into(),
            credential: None,
            checks: vec![RequestContext::new(
                "s3:GetObject",
                iam::Resource::arn("arn:aws:s3:::b/k"),
            )],
            when_missing: Some(RequestContext::new(
                "s3:ListBucket",
                iam::Resource::arn("arn:aws:s3:::b"),
            )),
        };
        let refusal = when_missing(
            &authorization,
            |check| iam::evaluate(std::slice::from_ref(&policy), check),
            None,
            "arn:aws:iam::123456789012:user/u",
            "123456789012",
            "id",
            false,
        )
        .expect("a refusal");
        assert_eq!(refusal.status, 403);
        let body = String::from_utf8(refusal.body).expect("utf-8");
        assert!(body.contains("s3:ListBucket"), "{body}");

        let listing = Policy::parse(
            "list",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}]}"#,
        )
        .expect("a policy");
        assert!(
            when_missing(
                &authorization,
                |check| iam::evaluate(&[policy.clone(), listing.clone()], check),
                None,
                "arn:aws:iam::123456789012:user/u",
                "123456789012",
                "id",
                false,
            )
            .is_none()
        );
    }

    #[test]
    fn unclassified_requests_are_refused_in_their_service_shape() {
        let refusal = unclassified(Some(Service::DynamoDb), "PartiQL", "id", false);
        assert_eq!(refusal.status, 403);
        let body = String::from_utf8(refusal.body).expect("utf-8");
        assert!(
            body.contains("AccessDenied") && body.contains("PartiQL"),
            "{body}"
        );
        let refusal = unclassified(None, "unknown service", "id", false);
        assert_eq!(refusal.status, 403);
    }
}
