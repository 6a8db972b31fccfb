//! What every resource of a stack is called and how it is tagged. Names derive from the stack
//! id alone, so `down` can find a resource by name even when its tag never got written (a crash
//! between S3's CreateBucket and PutBucketTagging) and the state file is gone.

use std::fmt;

/// The prefix of every resource name.
pub const NAME_PREFIX: &str = "hybridlab-";
/// IAM path of the stack's roles and instance profile.
pub const IAM_PATH: &str = "/hybridlab/";
/// Length of a generated stack id.
const ID_LENGTH: usize = 8;

/// A stack's id: 4 to 16 lowercase letters and digits, so that it is valid inside every
/// resource name (S3 bucket names are the strictest).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct StackId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a stack id: 4 to 16 lowercase letters and digits, as `hybridlab status` lists them"
)]
pub struct InvalidStackId(pub String);

impl StackId {
    /// A new random id.
    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let random = uuid::Uuid::new_v4().as_u128();
        let id = (0..ID_LENGTH)
            .map(|i| ALPHABET[((random >> (i * 6)) % ALPHABET.len() as u128) as usize] as char)
            .collect();
        Self(id)
    }

    pub fn parse(text: &str) -> Result<Self, InvalidStackId> {
        let valid = (4..=16).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidStackId(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for StackId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The name of every resource of one stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StackNames {
    pub images_bucket: String,
    pub artifacts_bucket: String,
    pub table: String,
    pub function: String,
    pub function_log_group: String,
    pub server_log_group: String,
    pub lambda_role: String,
    pub server_role: String,
    pub instance_profile: String,
    pub security_group: String,
    pub instance: String,
    /// The event-driven pipeline (`up --with pipeline`): uploads land in `uploads_bucket`, whose
    /// notification runs `resizer`, which writes the variants to `processed_bucket`.
    pub uploads_bucket: String,
    pub processed_bucket: String,
    pub resizer: String,
    pub resizer_log_group: String,
    pub resizer_role: String,
    /// The job-worker variant (`up --with jobs`): the HTTP API `jobs_api` runs `submit`, which
    /// writes rows to `jobs_table` and presigns inputs into `jobs_bucket`; the table's stream
    /// runs `launcher`, which starts an instance with `worker_profile` for each job.
    pub jobs_table: String,
    pub jobs_bucket: String,
    pub jobs_api: String,
    pub submit: String,
    pub submit_log_group: String,
    pub submit_role: String,
    pub launcher: String,
    pub launcher_log_group: String,
    pub launcher_role: String,
    pub worker_role: String,
    pub worker_profile: String,
}

impl StackNames {
    pub fn new(id: &StackId) -> Self {
        Self::with_suffix(id.as_str())
    }

    /// The names with `id` standing for the stack id, unchecked: the exports put an
    /// interpolation there (`${local.id}` in Terraform, `${StackSuffix}` in CloudFormation)
    /// that becomes a stack id when the stack is created.
    pub(crate) fn with_suffix(id: &str) -> Self {
        let function = format!("{NAME_PREFIX}proxy-{id}");
        let resizer = format!("{NAME_PREFIX}resizer-{id}");
        let submit = format!("{NAME_PREFIX}submit-{id}");
        let launcher = format!("{NAME_PREFIX}launcher-{id}");
        Self {
            images_bucket: format!("{NAME_PREFIX}images-{id}"),
            artifacts_bucket: format!("{NAME_PREFIX}artifacts-{id}"),
            table: format!("{NAME_PREFIX}images-{id}"),
            function_log_group: format!("/aws/lambda/{function}"),
            function,
            server_log_group: format!("/hybridlab/{id}/ec2-server"),
            lambda_role: format!("{NAME_PREFIX}lambda-{id}"),
            server_role: format!("{NAME_PREFIX}server-{id}"),
            instance_profile: format!("{NAME_PREFIX}server-{id}"),
            security_group: format!("{NAME_PREFIX}server-{id}"),
            instance: format!("{NAME_PREFIX}server-{id}"),
            uploads_bucket: format!("{NAME_PREFIX}uploads-{id}"),
            processed_bucket: format!("{NAME_PREFIX}processed-{id}"),
            resizer_log_group: format!("/aws/lambda/{resizer}"),
            resizer_role: resizer.clone(),
            resizer,
            jobs_table: format!("{NAME_PREFIX}jobs-{id}"),
            jobs_bucket: format!("{NAME_PREFIX}jobs-{id}"),
            jobs_api: format!("{NAME_PREFIX}jobs-{id}"),
            submit_log_group: format!("/aws/lambda/{submit}"),
            submit_role: submit.clone(),
            submit,
            launcher_log_group: format!("/aws/lambda/{launcher}"),
            launcher_role: launcher.clone(),
            launcher,
            worker_role: format!("{NAME_PREFIX}worker-{id}"),
            worker_profile: format!("{NAME_PREFIX}worker-{id}"),
        }
    }

    /// The stack a resource name belongs to, if the name is one `new` makes.
    pub fn stack_of(name: &str) -> Option<StackId> {
        let rest = name
            .strip_prefix("/aws/lambda/")
            .or_else(|| {
                name.strip_prefix("/hybridlab/")
                    .map(|r| r.trim_end_matches("/ec2-server"))
            })
            .unwrap_or(name);
        let id = match rest.strip_prefix(NAME_PREFIX) {
            Some(named) => named.rsplit_once('-')?.1,
            None => rest,
        };
        let id = StackId::parse(id).ok()?;
        let names = Self::new(&id);
        names.all().contains(&name).then_some(id)
    }

    fn all(&self) -> [&str; 27] {
        [
            &self.images_bucket,
            &self.artifacts_bucket,
            &self.table,
            &self.function,
            &self.function_log_group,
            &self.server_log_group,
            &self.lambda_role,
            &self.server_role,
            &self.instance_profile,
            &self.security_group,
            &self.instance,
            &self.uploads_bucket,
            &self.processed_bucket,
            &self.resizer,
            &self.resizer_log_group,
            &self.resizer_role,
            &self.jobs_table,
            &self.jobs_bucket,
            &self.jobs_api,
            &self.submit,
            &self.submit_log_group,
            &self.submit_role,
            &self.launcher,
            &self.launcher_log_group,
            &self.launcher_role,
            &self.worker_role,
            &self.worker_profile,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_differ() {
        let first = StackId::generate();
        let second = StackId::generate();
        assert_eq!(StackId::parse(first.as_str()), Ok(first.clone()));
        assert_eq!(first.as_str().len(), ID_LENGTH);
        assert_ne!(first, second);
    }

    #[test]
    fn ids_that_would_break_a_bucket_name_are_refused() {
        for bad in [
            "",
            "abc",
            "ABCD1234",
            "ab_cd",
            "ab-cd",
            "a.bcd",
            "abcdefghijklmnopq",
        ] {
            assert!(StackId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn every_name_leads_back_to_its_stack() {
        let id = StackId::parse("k3x9abcd").expect("valid");
        let names = StackNames::new(&id);
        for name in names.all() {
            assert_eq!(StackNames::stack_of(name), Some(id.clone()), "{name}");
        }
        assert!(names.images_bucket.len() <= 63);
        assert_eq!(StackNames::stack_of("hybridlab-images"), None);
        assert_eq!(StackNames::stack_of("someone-elses-bucket"), None);
        assert_eq!(StackNames::stack_of("/aws/lambda/other-k3x9abcd"), None);
    }
}
