//! Who the sandbox's functions and instances are: the temporary credentials each one is given
//! for its role, as AWS gives them, and the table that maps an access key id back to the role
//! session it belongs to. Each Lambda execution environment gets a session of its function's
//! execution role named after the function; each instance gets sessions of its instance
//! profile's role named after the instance id (handed out by [`super::imds`]). The edge looks
//! every request's key up here ([`PrincipalTable::caller`]); keys the sandbox did not issue
//! (the operator's) are not in the table and go to moto as before.
//!
//! The secret and the session token are random and never checked against a signature: the
//! sandbox trusts its loopback clients and uses the key only to tell principals apart.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_sdk_iam::error::ProvideErrorMetadata;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::iam::{Credential, Policy, TokenProblem, credential};

/// How long an expired principal stays in the table, so that a late request with its key is
/// told `ExpiredToken` rather than forwarded to moto as someone else's.
const REMEMBER_EXPIRED_FOR: Duration = Duration::from_secs(24 * 3600);

/// An IAM role, as its principals' identity names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
    pub arn: String,
    /// The role's unique id (`AROA...`), the first half of its sessions' `UserId`.
    pub id: String,
}

impl Role {
    /// A role whose id the control plane could not say (a role deleted after its function
    /// was created): an id derived from the ARN, stable for the sandbox's life.
    pub fn unresolved(arn: &str) -> Self {
        let digest = Sha256::digest(arn.as_bytes());
        Self {
            arn: arn.to_owned(),
            id: format!("AROA{}", &base32(&digest)[..17]),
        }
    }

    /// The role's name: the ARN's last segment, without its path.
    pub fn name(&self) -> &str {
        let resource = self.arn.splitn(6, ':').nth(5).unwrap_or(&self.arn);
        resource.rsplit('/').next().unwrap_or(resource)
    }

    /// The account that owns the role.
    pub fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or_default()
    }
}

/// One role session: the credentials a function environment or an instance holds.
#[derive(Debug)]
pub struct Principal {
    /// `ASIA` and 16 characters, as AWS's temporary keys.
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub role: Role,
    /// The function name for a Lambda environment, the instance id for an instance, as AWS
    /// names those sessions.
    pub session_name: String,
    pub issued: SystemTime,
    pub expires: SystemTime,
    requests: AtomicU64,
}

impl Principal {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE_NAME/SESSION`, the caller's ARN in
    /// `GetCallerIdentity` and in refusals.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            self.role.account(),
            self.role.name(),
            self.session_name
        )
    }

    /// `ROLE_ID:SESSION`, `GetCallerIdentity`'s `UserId` (and `aws:userid`) for a role session.
    pub fn user_id(&self) -> String {
        format!("{}:{}", self.role.id, self.session_name)
    }

    pub fn account(&self) -> &str {
        self.role.account()
    }

    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires <= now
    }

    /// What is wrong with `credential` as this session's at `now`: a session token that is
    /// missing or another's, or the session expired; `None` if nothing is.
    pub fn token_problem(&self, credential: &Credential, now: SystemTime) -> Option<TokenProblem> {
        if credential.session_token.as_deref() != Some(self.session_token.as_str()) {
            Some(TokenProblem::Invalid)
        } else if self.is_expired(now) {
            Some(TokenProblem::Expired)
        } else {
            None
        }
    }

    /// How many requests the edge has seen signed with this key.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Who sent a request, as the edge tells it from the access key that signed it.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A key the sandbox issued to a function environment or an instance.
    Principal {
        principal: Arc<Principal>,
        credential: Credential,
    },
    /// A key the sandbox did not issue: the operator's (`hybridlab`, the AWS CLI, Terraform),
    /// which moto takes as it always did.
    Operator(Credential),
    /// No signature at all (a browser's GET of a public object, a health check).
    Anonymous,
}

impl Caller {
    /// The role session, for a key the sandbox issued.
    pub fn principal(&self) -> Option<&Arc<Principal>> {
        match self {
            Caller::Principal { principal, .. } => Some(principal),
            _ => None,
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Principal { principal, .. } => {
                write!(f, "{} ({})", principal.arn(), principal.access_key_id)
            }
            Caller::Operator(credential) => write!(f, "operator ({})", credential.access_key_id),
            Caller::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// Every credential the sandbox has issued, by access key id; shared by the Lambda host, the
/// EC2 host's metadata services and the edge.
#[derive(Debug, Default)]
pub struct PrincipalTable {
    by_key: RwLock<HashMap<String, Arc<Principal>>>,
}

impl PrincipalTable {
    /// Issues new credentials for a session of `role` named `session_name`, valid for
    /// `lifetime`.
    pub fn issue(&self, role: &Role, session_name: &str, lifetime: Duration) -> Arc<Principal> {
        self.issue_at(role, session_name, SystemTime::now(), lifetime)
    }

    fn issue_at(
        &self,
        role: &Role,
        session_name: &str,
        issued: SystemTime,
        lifetime: Duration,
    ) -> Arc<Principal> {
        let mut table = self.by_key.write().unwrap_or_else(|p| p.into_inner());
        table.retain(|_, principal| {
            principal
                .expires
                .checked_add(REMEMBER_EXPIRED_FOR)
                .is_some_and(|forget| forget > issued)
        });
        let access_key_id = loop {
            let candidate = format!("ASIA{}", &base32(&random_bytes(10))[..16]);
            if !table.contains_key(&candidate) {
                break candidate;
            }
        };
        let principal = Arc::new(Principal {
            secret_access_key: STANDARD.encode(random_bytes(30)),
            session_token: STANDARD.encode(random_bytes(120)),
            access_key_id: access_key_id.clone(),
            role: role.clone(),
            session_name: session_name.to_owned(),
            issued,
            expires: issued + lifetime,
            requests: AtomicU64::new(0),
        });
        table.insert(access_key_id, principal.clone());
        principal
    }

    /// The session `access_key_id` belongs to, if the sandbox issued it.
    pub fn get(&self, access_key_id: &str) -> Option<Arc<Principal>> {
        self.by_key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(access_key_id)
            .cloned()
    }

    /// Who signed a request, from its headers and query string (see [`credential`]). A key
    /// the sandbox issued counts one more request.
    pub fn caller(&self, headers: &HeaderMap, query: &str) -> Caller {
        let Some(credential) = credential(headers, query) else {
            return Caller::Anonymous;
        };
        match self.get(&credential.access_key_id) {
            Some(principal) => {
                principal.requests.fetch_add(1, Ordering::Relaxed);
                Caller::Principal {
                    principal,
                    credential,
                }
            }
            None => Caller::Operator(credential),
        }
    }

    /// The sessions that have not expired, for the sandbox's status (no secrets).
    pub fn summary(&self) -> Vec<Value> {
        let now = SystemTime::now();
        let table = self.by_key.read().unwrap_or_else(|p| p.into_inner());
        let mut live: Vec<&Arc<Principal>> = table
            .values()
            .filter(|principal| !principal.is_expired(now))
            .collect();
        live.sort_by_key(|principal| principal.issued);
        live.iter()
            .map(|principal| {
                json!({
                    "access_key_id": principal.access_key_id,
                    "arn": principal.arn(),
                    "expires": rfc3339_seconds(principal.expires),
                    "requests": principal.requests(),
                })
            })
            .collect()
    }
}

/// Where principals' roles come from: IAM on moto.
#[derive(Debug, Clone)]
pub struct RoleDirectory {
    iam: aws_sdk_iam::Client,
}

impl RoleDirectory {
    pub fn new(iam: aws_sdk_iam::Client) -> Self {
        Self { iam }
    }

    /// The role `arn` names, with its id; `None` if IAM does not know it.
    pub async fn role(&self, arn: &str) -> Result<Option<Role>, String> {
        let role = Role {
            arn: arn.to_owned(),
            id: String::new(),
        };
        self.role_named(role.name()).await
    }

    /// Role `name`, with its ARN (and path) and id; `None` if IAM does not know it.
    pub async fn role_named(&self, name: &str) -> Result<Option<Role>, String> {
        match self.iam.get_role().role_name(name).send().await {
            Ok(output) => Ok(output.role().map(|role| Role {
                arn: role.arn().to_owned(),
                id: role.role_id().to_owned(),
            })),
            Err(err) if err.code() == Some("NoSuchEntity") => Ok(None),
            Err(err) => Err(format!(
                "GetRole {name}: {}",
                aws_sdk_iam::error::DisplayErrorContext(&err)
            )),
        }
    }

    /// The role of instance profile `profile_arn`; `None` if the profile does not exist or
    /// holds no role (an instance launched with it then has no credentials, as on EC2).
    pub async fn instance_profile_role(&self, profile_arn: &str) -> Result<Option<Role>, String> {
        let name = profile_arn.rsplit('/').next().unwrap_or(profile_arn);
        match self
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
        {
            Ok(output) => Ok(output
                .instance_profile()
                .and_then(|profile| profile.roles().first())
                .map(|role| Role {
                    arn: role.arn().to_owned(),
                    id: role.role_id().to_owned(),
                })),
            Err(err) if err.code() == Some("NoSuchEntity") => Ok(None),
            Err(err) => Err(format!(
                "GetInstanceProfile {name}: {}",
                aws_sdk_iam::error::DisplayErrorContext(&err)
            )),
        }
    }

    /// Every identity policy of role `name`: its inline policies (named by their names) and
    /// the default version of each managed policy attached (named by its ARN), as IAM holds
    /// them now. A role IAM does not know has none.
    pub async fn role_policies(&self, name: &str) -> Result<Vec<Policy>, String> {
        let context = |call: &str, err: &dyn std::fmt::Display| format!("{call} {name}: {err}");
        let inline = match self
            .iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
        {
            Ok(inline) => inline,
            Err(err) if err.code() == Some("NoSuchEntity") => return Ok(Vec::new()),
            Err(err) => {
                return Err(context(
                    "ListRolePolicies",
                    &aws_sdk_iam::error::DisplayErrorContext(&err),
                ));
            }
        };
        let attached = self
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|err| {
                context(
                    "ListAttachedRolePolicies",
                    &aws_sdk_iam::error::DisplayErrorContext(&err),
                )
            })?;
        let mut policies = Vec::with_capacity(inline.len() + attached.len());
        for policy_name in &inline {
            let document = self
                .iam
                .get_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .send()
                .await
                .map_err(|err| {
                    context(
                        "GetRolePolicy",
                        &aws_sdk_iam::error::DisplayErrorContext(&err),
                    )
                })?;
            policies.push(
                Policy::parse(policy_name, document.policy_document())
                    .map_err(|err| context(&format!("policy {policy_name} of"), &err))?,
            );
        }
        for arn in attached.iter().filter_map(|policy| policy.policy_arn()) {
            policies.push(
                self.managed_policy(arn)
                    .await
                    .map_err(|err| context(arn, &err))?,
            );
        }
        Ok(policies)
    }

    /// The default version of managed policy `arn`.
    async fn managed_policy(&self, arn: &str) -> Result<Policy, String> {
        let policy = self
            .iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|err| {
                format!(
                    "GetPolicy: {}",
                    aws_sdk_iam::error::DisplayErrorContext(&err)
                )
            })?;
        let version = policy
            .policy()
            .and_then(|policy| policy.default_version_id())
            .ok_or("GetPolicy: no default version")?;
        let document = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|err| {
                format!(
                    "GetPolicyVersion: {}",
                    aws_sdk_iam::error::DisplayErrorContext(&err)
                )
            })?;
        let document = document
            .policy_version()
            .and_then(|version| version.document())
            .ok_or("GetPolicyVersion: no document")?;
        Policy::parse(arn, document).map_err(|err| err.to_string())
    }
}

/// `at` as AWS's credential documents write times: RFC 3339 to the second.
pub fn rfc3339_seconds(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// `count` random bytes. A v4 UUID's bytes are random but for its version (byte 6) and
/// variant (byte 8) bits, which are left out.
pub(crate) fn random_bytes(count: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(count + 14);
    while bytes.len() < count {
        let uuid = uuid::Uuid::new_v4().into_bytes();
        bytes.extend(
            uuid.iter()
                .enumerate()
                .filter(|(at, _)| *at != 6 && *at != 8)
                .map(|(_, byte)| *byte),
        );
    }
    bytes.truncate(count);
    bytes
}

/// RFC 4648 base32 without padding (`A-Z2-7`, the alphabet of AWS's key ids).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn role() -> Role {
        Role {
            arn: "arn:aws:iam::123456789012:role/service/hybridlab-server-k3x9q2ma".into(),
            id: "AROAEXAMPLEID0123456".into(),
        }
    }

    fn signed_by(access_key_id: &str, token: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!(
                "AWS4-HMAC-SHA256 Credential={access_key_id}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
            ))
            .expect("a header"),
        );
        if let Some(token) = token {
            headers.insert(
                "x-amz-security-token",
                HeaderValue::from_str(token).expect("a header"),
            );
        }
        headers
    }

    #[test]
    fn issued_keys_look_like_aws_temporary_keys_and_are_unique() {
        let table = PrincipalTable::default();
        let mut keys = std::collections::HashSet::new();
        for _ in 0..200 {
            let principal = table.issue(&role(), "proxy", Duration::from_secs(3600));
            let key = &principal.access_key_id;
            assert_eq!(key.len(), 20, "{key}");
            assert!(key.starts_with("ASIA"), "{key}");
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
                "{key}"
            );
            assert_eq!(principal.secret_access_key.len(), 40);
            assert!(principal.session_token.len() >= 100);
            assert!(keys.insert(key.clone()), "{key} issued twice");
        }
        assert_eq!(table.summary().len(), 200);
    }

    #[test]
    fn a_session_is_named_as_aws_names_assumed_roles() {
        let table = PrincipalTable::default();
        let principal = table.issue(&role(), "i-0123456789abcdef0", Duration::from_secs(60));
        assert_eq!(
            principal.arn(),
            "arn:aws:sts::123456789012:assumed-role/hybridlab-server-k3x9q2ma/i-0123456789abcdef0"
        );
        assert_eq!(
            principal.user_id(),
            "AROAEXAMPLEID0123456:i-0123456789abcdef0"
        );
        assert_eq!(principal.account(), "123456789012");
        let expires_in = principal
            .expires
            .duration_since(principal.issued)
            .expect("later");
        assert_eq!(expires_in, Duration::from_secs(60));
        assert!(!principal.is_expired(SystemTime::now()));
        assert!(principal.is_expired(principal.expires));
    }

    #[test]
    fn the_caller_is_the_session_of_an_issued_key_and_the_operator_otherwise() {
        let table = PrincipalTable::default();
        let principal = table.issue(&role(), "proxy", Duration::from_secs(3600));
        let caller = table.caller(
            &signed_by(&principal.access_key_id, Some(&principal.session_token)),
            "",
        );
        let found = caller.principal().expect("an issued key");
        assert!(Arc::ptr_eq(found, &principal));
        assert_eq!(principal.requests(), 1);
        // A presigned URL carries the key in its query.
        let query = format!(
            "X-Amz-Credential={}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request",
            principal.access_key_id
        );
        assert!(
            table
                .caller(&HeaderMap::new(), &query)
                .principal()
                .is_some()
        );
        assert_eq!(principal.requests(), 2);

        match table.caller(&signed_by("sandbox", None), "") {
            Caller::Operator(credential) => assert_eq!(credential.access_key_id, "sandbox"),
            other => panic!("the operator's key is not a principal: {other}"),
        }
        assert!(matches!(
            table.caller(&HeaderMap::new(), ""),
            Caller::Anonymous
        ));
        // A key of the right shape that the sandbox never issued is someone else's.
        assert!(matches!(
            table.caller(&signed_by("ASIAAAAAAAAAAAAAAAAA", Some("x")), ""),
            Caller::Operator(_)
        ));
    }

    #[test]
    fn long_expired_sessions_are_forgotten_and_recent_ones_kept() {
        let table = PrincipalTable::default();
        let long_ago = SystemTime::now() - REMEMBER_EXPIRED_FOR - Duration::from_secs(3600);
        let old = table.issue_at(&role(), "old", long_ago, Duration::from_secs(60));
        let recent = table.issue(&role(), "recent", Duration::ZERO);
        assert!(
            table.get(&old.access_key_id).is_none(),
            "issuing forgets what expired more than a day ago"
        );
        assert!(
            table.get(&recent.access_key_id).is_some(),
            "a key that just expired is still told apart"
        );
        let live = table.issue(&role(), "live", Duration::from_secs(60));
        let summary = table.summary();
        assert_eq!(summary.len(), 1, "{summary:?}");
        assert_eq!(summary[0]["access_key_id"], live.access_key_id.as_str());
    }

    #[test]
    fn roles_are_named_without_their_path() {
        assert_eq!(role().name(), "hybridlab-server-k3x9q2ma");
        let plain = Role::unresolved("arn:aws:iam::210987654321:role/proxy-role");
        assert_eq!(plain.name(), "proxy-role");
        assert_eq!(plain.account(), "210987654321");
        assert_eq!(plain.id.len(), 21);
        assert!(plain.id.starts_with("AROA"));
        assert_eq!(
            plain,
            Role::unresolved("arn:aws:iam::210987654321:role/proxy-role")
        );
    }

    #[test]
    fn base32_is_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn times_are_written_to_the_second() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_632_174_146_789);
        assert_eq!(rfc3339_seconds(at), "2021-09-20T21:42:26Z");
    }
}
