//! What one authorisation is about: an action, the resource it lands on and the condition keys
//! AWS puts in the request context. [`super::request::classify`] builds these from HTTP
//! requests; [`super::policy::evaluate`] decides them.

use std::collections::BTreeMap;

use super::pattern::{Unit, known};

/// The request context of one authorisation
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/intro-structure.html#intro-structure-request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// `service:Operation`, as IAM names it (`s3:GetObject`).
    pub action: String,
    pub resource: Resource,
    /// Condition keys, lower-cased (IAM compares key names without case).
    keys: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    /// A context for `action` on `resource`, without condition keys.
    pub fn new(action: impl Into<String>, resource: Resource) -> Self {
        Self {
            action: action.into(),
            resource,
            keys: BTreeMap::new(),
        }
    }

    /// Sets condition key `key` (`aws:SourceArn`, `s3:prefix`) to `values`.
    pub fn with_key<V: Into<String>>(
        mut self,
        key: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        self.set_key(key, values);
        self
    }

    /// Sets condition key `key`; no values removes it.
    pub fn set_key<V: Into<String>>(&mut self, key: &str, values: impl IntoIterator<Item = V>) {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        if values.is_empty() {
            self.keys.remove(&key.to_ascii_lowercase());
        } else {
            self.keys.insert(key.to_ascii_lowercase(), values);
        }
    }

    /// The values of condition key `key`, if the request has it.
    pub fn key(&self, key: &str) -> Option<&[String]> {
        self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }

    /// Every condition key (lower-cased) and its values.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.keys
            .iter()
            .map(|(key, values)| (key.as_str(), values.as_slice()))
    }
}

/// The resource an action lands on, as IAM matches policies against it.
///
/// Most are exact ARNs (or `*` for actions without resource-level permissions). A few have
/// parts the sandbox cannot see from the request alone: a secret named without its random
/// suffix, a role named without its path, the default subnet RunInstances picks. Those match a
/// policy's pattern when *some* value of the unknown part would, and [`Resource::is_exact`]
/// says so; the edge can resolve them with [`super::request::Lookups`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The ARN, unknown parts written `*` or `?`.
    arn: String,
    /// How the service names it in a refusal, where that is not the ARN (IAM's `role NAME`,
    /// Secrets Manager's secret id as given).
    named_as: Option<String>,
    /// The values it may be, for matching.
    shapes: Vec<Vec<Unit>>,
    exact: bool,
}

impl Resource {
    /// An exact ARN (or `*`).
    pub fn arn(arn: impl Into<String>) -> Self {
        let arn = arn.into();
        Self {
            shapes: vec![known(&arn)],
            arn,
            named_as: None,
            exact: true,
        }
    }

    /// `*`: the action has no resource-level permissions.
    pub fn any() -> Self {
        Self::arn("*")
    }

    /// The ARN, unknown parts written as wildcards.
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The resource as the service names it in a refusal.
    pub fn named_as(&self) -> &str {
        self.named_as.as_deref().unwrap_or(&self.arn)
    }

    /// Whether every part of the ARN is known.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    pub(crate) fn named(mut self, name: impl Into<String>) -> Self {
        self.named_as = Some(name.into());
        self
    }

    /// `prefix` followed by `count` unknown characters (a secret's `-AbCdEf`).
    pub(crate) fn unknown_suffix(prefix: &str, count: usize) -> Self {
        let mut shape = known(prefix);
        shape.extend(std::iter::repeat_n(Unit::AnyChar, count));
        Self {
            arn: format!("{prefix}{}", "?".repeat(count)),
            named_as: None,
            shapes: vec![shape],
            exact: false,
        }
    }

    /// `{base}/{name}` under an unknown IAM path (`/` or `/a/b/`).
    pub(crate) fn unknown_path(base: &str, name: &str) -> Self {
        let at_root = known(&format!("{base}/{name}"));
        let mut nested = known(&format!("{base}/"));
        nested.push(Unit::AnyRun);
        nested.extend(known(&format!("/{name}")));
        Self {
            arn: format!("{base}/{name}"),
            named_as: None,
            shapes: vec![at_root, nested],
            exact: false,
        }
    }

    /// `pieces` joined by unknown runs (`["…:subnet/", ""]`: the default subnet, whichever it
    /// is).
    pub(crate) fn unknown_runs(pieces: &[&str]) -> Self {
        let mut shape = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                shape.push(Unit::AnyRun);
            }
            shape.extend(known(piece));
        }
        Self {
            arn: pieces.join("*"),
            named_as: None,
            shapes: vec![shape],
            exact: false,
        }
    }

    /// The values the resource may be, for the matcher.
    pub(crate) fn shapes(&self) -> &[Vec<Unit>] {
        &self.shapes
    }
}
