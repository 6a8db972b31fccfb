//! Tags of the resources the agent keeps itself rather than moto (the DynamoDB-stream event
//! source mappings), by ARN: the mappings write them through Lambda's tagging API, and the
//! authorizer reads them as `aws:ResourceTag/*`, as IAM does for a tagged mapping.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// A resource's tags.
pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub struct ResourceTags(Mutex<HashMap<String, Tags>>);

impl ResourceTags {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tags>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tags of `arn`, if the agent keeps that resource.
    pub fn of(&self, arn: &str) -> Option<Tags> {
        self.lock().get(arn).cloned()
    }

    /// Starts keeping `arn` with `tags`.
    pub fn keep(&self, arn: &str, tags: Tags) {
        self.lock().insert(arn.to_owned(), tags);
    }

    /// Adds `tags` to `arn`'s, replacing the values of keys it has (TagResource).
    pub fn add(&self, arn: &str, tags: Tags) {
        self.lock().entry(arn.to_owned()).or_default().extend(tags);
    }

    /// Removes `keys` from `arn`'s tags (UntagResource).
    pub fn remove_keys(&self, arn: &str, keys: &[String]) {
        if let Some(tags) = self.lock().get_mut(arn) {
            for key in keys {
                tags.remove(key);
            }
        }
    }

    /// Forgets `arn` (its resource was deleted).
    pub fn forget(&self, arn: &str) {
        self.lock().remove(arn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_kept_added_removed_and_forgotten() {
        let store = ResourceTags::default();
        let arn = "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:u-1";
        assert_eq!(store.of(arn), None);
        store.keep(
            arn,
            Tags::from([("hybridlab:stack".into(), "abcd1234".into())]),
        );
        store.add(
            arn,
            Tags::from([
                ("course".into(), "cloud".into()),
                ("hybridlab:stack".into(), "other".into()),
            ]),
        );
        let tags = store.of(arn).expect("kept");
        assert_eq!(tags["hybridlab:stack"], "other");
        assert_eq!(tags["course"], "cloud");
        store.remove_keys(arn, &["course".into(), "absent".into()]);
        assert_eq!(store.of(arn).expect("kept").len(), 1);
        store.forget(arn);
        assert_eq!(store.of(arn), None);
    }
}
