//! The event-driven pipeline's status changes as conditional `UpdateItem`s: PENDING to
//! PROCESSING (or a PROCESSING whose lease ran out, so a crashed attempt can be retried), then
//! COMPLETED or FAILED. Each change appends to the row's `history` and checks the status it
//! starts from, so a duplicate S3 event or a late retry fails its condition instead of
//! writing. Plain functions over expressions and values, tested without a table.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::item::{stage_timings, status_change};
use crate::{ImageStatus, StageTimings, StatusChange};

/// The attribute holding the end of a PROCESSING attempt's lease, in Unix seconds (a number,
/// so the condition compares it numerically). Only present while the row is PROCESSING.
pub const PROCESSING_UNTIL: &str = "processing_until";

/// The pieces of one conditional `UpdateItem`, without the table and key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionalUpdate {
    pub update_expression: String,
    pub condition_expression: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl ConditionalUpdate {
    /// Puts the expressions, names and values on `request`; the caller adds the table and key.
    pub fn apply(self, request: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        request
            .update_expression(self.update_expression)
            .condition_expression(self.condition_expression)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
    }
}

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn status(value: ImageStatus) -> AttributeValue {
    string(value.as_str())
}

/// Names and values every change uses: the status it sets, `updated_at`, and the history
/// entry appended (to an empty list when a row has none yet).
fn base(to: ImageStatus, at: &str) -> ConditionalUpdate {
    let names = HashMap::from(
        [
            ("#status", "status"),
            ("#updated_at", "updated_at"),
            ("#history", "history"),
            ("#processing_until", PROCESSING_UNTIL),
        ]
        .map(|(placeholder, name)| (placeholder.to_owned(), name.to_owned())),
    );
    let change = StatusChange {
        status: to,
        at: at.to_owned(),
    };
    let values = HashMap::from([
        (":to".to_owned(), status(to)),
        (":at".to_owned(), string(at)),
        (
            ":change".to_owned(),
            AttributeValue::L(vec![status_change(&change)]),
        ),
        (":empty".to_owned(), AttributeValue::L(Vec::new())),
    ]);
    ConditionalUpdate {
        update_expression: "SET #status = :to, #updated_at = :at, \
             #history = list_append(if_not_exists(#history, :empty), :change)"
            .to_owned(),
        condition_expression: String::new(),
        names,
        values,
    }
}

/// PENDING to PROCESSING, at `at` (RFC 3339), holding a lease until `lease_until` (Unix
/// seconds). Also takes over a PROCESSING row whose lease ended before `now` (Unix seconds):
/// that attempt crashed or timed out, and this is Lambda's retry. A missing row fails the
/// condition rather than being created, and so does a row whose original is not the object
/// `bucket`/`key` the event is about: an object uploaded with another image's id in its
/// metadata cannot take that image's row.
pub fn start_processing(
    at: &str,
    now: i64,
    lease_until: i64,
    bucket: &str,
    key: &str,
) -> ConditionalUpdate {
    let mut update = base(ImageStatus::Processing, at);
    update
        .update_expression
        .push_str(", #processing_until = :lease_until");
    update.names.extend(
        [
            ("#image_id", "image_id"),
            ("#keys", "keys"),
            ("#original", crate::ORIGINAL),
            ("#original_bucket", "original_bucket"),
        ]
        .map(|(placeholder, name)| (placeholder.to_owned(), name.to_owned())),
    );
    update.values.extend([
        (":bucket".to_owned(), string(bucket)),
        (":key".to_owned(), string(key)),
        (":pending".to_owned(), status(ImageStatus::Pending)),
        (":processing".to_owned(), status(ImageStatus::Processing)),
        (":now".to_owned(), AttributeValue::N(now.to_string())),
        (
            ":lease_until".to_owned(),
            AttributeValue::N(lease_until.to_string()),
        ),
    ]);
    update.condition_expression = "attribute_exists(#image_id) \
         AND #original_bucket = :bucket AND #keys.#original = :key \
         AND (#status = :pending OR (#status = :processing AND #processing_until < :now))"
        .to_owned();
    update
}

/// What a finished image's row gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion<'a> {
    /// Every key of the row, the original's included: the map replaces the stored one.
    pub keys: &'a BTreeMap<String, String>,
    pub width: u32,
    pub height: u32,
    /// The detected source format (`jpeg`, `png`, `gif`, `webp`).
    pub format: &'a str,
    pub timings: &'a StageTimings,
    /// RFC 3339.
    pub at: &'a str,
}

/// PROCESSING to COMPLETED, with the variants' keys, the source's size and format and the
/// stage timings. Ends the lease.
pub fn complete(completion: &Completion<'_>) -> ConditionalUpdate {
    let mut update = base(ImageStatus::Completed, completion.at);
    update.update_expression.push_str(
        ", #keys = :keys, #width = :width, #height = :height, #format = :format, \
         #timings_ms = :timings REMOVE #processing_until",
    );
    update.names.extend(
        [
            ("#keys", "keys"),
            ("#width", "width"),
            ("#height", "height"),
            ("#format", "format"),
            ("#timings_ms", "timings_ms"),
        ]
        .map(|(placeholder, name)| (placeholder.to_owned(), name.to_owned())),
    );
    let keys = completion
        .keys
        .iter()
        .map(|(name, key)| (name.clone(), string(key)))
        .collect();
    update.values.extend([
        (":processing".to_owned(), status(ImageStatus::Processing)),
        (":keys".to_owned(), AttributeValue::M(keys)),
        (
            ":width".to_owned(),
            AttributeValue::N(completion.width.to_string()),
        ),
        (
            ":height".to_owned(),
            AttributeValue::N(completion.height.to_string()),
        ),
        (":format".to_owned(), string(completion.format)),
        (":timings".to_owned(), stage_timings(completion.timings)),
    ]);
    update.condition_expression = "#status = :processing".to_owned();
    update
}

/// PENDING or PROCESSING to FAILED at `at`, saying why in `error`. Ends any lease. A row that
/// is already COMPLETED or FAILED, or missing, fails the condition.
pub fn fail(reason: &str, at: &str) -> ConditionalUpdate {
    let mut update = base(ImageStatus::Failed, at);
    update
        .update_expression
        .push_str(", #error = :error REMOVE #processing_until");
    update.names.insert("#error".to_owned(), "error".to_owned());
    update.values.extend([
        (":pending".to_owned(), status(ImageStatus::Pending)),
        (":processing".to_owned(), status(ImageStatus::Processing)),
        (":error".to_owned(), string(reason)),
    ]);
    update.condition_expression = "#status = :pending OR #status = :processing".to_owned();
    update
}

/// PENDING or PROCESSING to FAILED for a row that nothing will finish, at `at`: a PENDING row
/// last changed before `pending_before` (RFC 3339; its upload never arrived, or its event was
/// never delivered), or a PROCESSING row whose lease ended before `processing_before` (Unix
/// seconds; its attempt died and no retry took it over). The condition is checked on the row
/// itself, so a row that moved on since it was read is left alone. Timestamps compare as
/// strings, which is exact to the second for the one format every writer uses.
pub fn expire(
    reason: &str,
    at: &str,
    pending_before: &str,
    processing_before: i64,
) -> ConditionalUpdate {
    let mut update = fail(reason, at);
    update.values.extend([
        (":pending_before".to_owned(), string(pending_before)),
        (
            ":processing_before".to_owned(),
            AttributeValue::N(processing_before.to_string()),
        ),
    ]);
    update.condition_expression = "(#status = :pending AND #updated_at < :pending_before) \
         OR (#status = :processing AND #processing_until < :processing_before)"
        .to_owned();
    update
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `#name` and `:value` the expressions use is defined, and nothing more: DynamoDB
    /// rejects both an undefined and an unused placeholder.
    fn assert_placeholders_match(update: &ConditionalUpdate) {
        let text = format!(
            "{} {}",
            update.update_expression, update.condition_expression
        );
        let used = |sigil: char| -> Vec<String> {
            let mut found: Vec<String> = text
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == sigil))
                .filter(|token| token.starts_with(sigil))
                .map(str::to_owned)
                .collect();
            found.sort();
            found.dedup();
            found
        };
        let mut names: Vec<String> = update.names.keys().cloned().collect();
        names.sort();
        let mut values: Vec<String> = update.values.keys().cloned().collect();
        values.sort();
        assert_eq!(used('#'), names, "names of {text}");
        assert_eq!(used(':'), values, "values of {text}");
    }

    fn appended(update: &ConditionalUpdate) -> StatusChange {
        let Some(AttributeValue::L(entries)) = update.values.get(":change") else {
            panic!("a history entry is appended");
        };
        let [AttributeValue::M(entry)] = entries.as_slice() else {
            panic!("exactly one entry is appended");
        };
        let field = |name: &str| match entry.get(name) {
            Some(AttributeValue::S(value)) => value.clone(),
            other => panic!("{name} is a string: {other:?}"),
        };
        StatusChange {
            status: ImageStatus::parse(&field("status")).expect("a known status"),
            at: field("at"),
        }
    }

    #[test]
    fn processing_starts_from_pending_or_an_expired_lease_only() {
        let update = start_processing(
            "2026-11-22T10:00:01Z",
            1_000,
            1_900,
            "uploads",
            "uploads/x/cat.jpg",
        );
        assert_placeholders_match(&update);
        assert_eq!(
            update.condition_expression,
            "attribute_exists(#image_id) \
             AND #original_bucket = :bucket AND #keys.#original = :key \
             AND (#status = :pending OR (#status = :processing AND #processing_until < :now))"
        );
        assert_eq!(update.values[":now"], AttributeValue::N("1000".into()));
        assert_eq!(
            update.values[":key"],
            AttributeValue::S("uploads/x/cat.jpg".into())
        );
        assert_eq!(
            update.values[":bucket"],
            AttributeValue::S("uploads".into())
        );
        assert_eq!(
            update.values[":lease_until"],
            AttributeValue::N("1900".into())
        );
        assert_eq!(update.values[":to"], status(ImageStatus::Processing));
        assert_eq!(
            appended(&update),
            StatusChange {
                status: ImageStatus::Processing,
                at: "2026-11-22T10:00:01Z".into()
            }
        );
        assert!(
            update
                .update_expression
                .contains("list_append(if_not_exists(#history, :empty), :change)")
        );
        assert_eq!(update.names["#processing_until"], PROCESSING_UNTIL);
    }

    #[test]
    fn completion_sets_every_key_and_ends_the_lease() {
        let keys = BTreeMap::from([
            ("original".to_owned(), "uploads/x/cat.jpg".to_owned()),
            ("thumbnail".to_owned(), "images/x/thumbnail.jpg".to_owned()),
            (
                "thumbnail.webp".to_owned(),
                "images/x/thumbnail.webp".to_owned(),
            ),
        ]);
        let timings = StageTimings {
            download: 1.0,
            total: 9.5,
            ..StageTimings::default()
        };
        let update = complete(&Completion {
            keys: &keys,
            width: 4000,
            height: 3000,
            format: "jpeg",
            timings: &timings,
            at: "2026-11-22T10:00:02Z",
        });
        assert_placeholders_match(&update);
        assert_eq!(update.condition_expression, "#status = :processing");
        assert!(
            update
                .update_expression
                .ends_with("REMOVE #processing_until")
        );
        let Some(AttributeValue::M(stored)) = update.values.get(":keys") else {
            panic!("keys is a map");
        };
        assert_eq!(stored.len(), 3);
        assert_eq!(stored["original"], string("uploads/x/cat.jpg"));
        assert_eq!(update.values[":width"], AttributeValue::N("4000".into()));
        let Some(AttributeValue::M(stages)) = update.values.get(":timings") else {
            panic!("timings is a map");
        };
        assert_eq!(stages["total"], AttributeValue::N("9.500".into()));
        assert_eq!(stages.len(), 7);
        assert_eq!(appended(&update).status, ImageStatus::Completed);
    }

    #[test]
    fn expiry_fails_only_rows_left_unfinished_too_long() {
        let update = expire(
            "nothing arrived",
            "2026-01-01T01:00:00Z",
            "2026-01-01T00:30:00Z",
            99,
        );
        assert_placeholders_match(&update);
        assert_eq!(
            update.condition_expression,
            "(#status = :pending AND #updated_at < :pending_before) \
             OR (#status = :processing AND #processing_until < :processing_before)"
        );
        assert_eq!(
            update.values[":pending_before"],
            AttributeValue::S("2026-01-01T00:30:00Z".into())
        );
        assert_eq!(
            update.values[":processing_before"],
            AttributeValue::N("99".into())
        );
        assert_eq!(update.values[":to"], AttributeValue::S("FAILED".into()));
        assert_eq!(
            update.values[":error"],
            AttributeValue::S("nothing arrived".into())
        );
        assert!(
            update
                .update_expression
                .contains("REMOVE #processing_until")
        );
        assert_eq!(appended(&update).status, ImageStatus::Failed);
    }

    #[test]
    fn failure_applies_to_unfinished_rows_and_says_why() {
        let update = fail("the data is not an image", "2026-11-22T10:00:03Z");
        assert_placeholders_match(&update);
        assert_eq!(
            update.condition_expression,
            "#status = :pending OR #status = :processing"
        );
        assert_eq!(update.values[":error"], string("the data is not an image"));
        assert_eq!(update.values[":at"], string("2026-11-22T10:00:03Z"));
        assert_eq!(
            appended(&update),
            StatusChange {
                status: ImageStatus::Failed,
                at: "2026-11-22T10:00:03Z".into()
            }
        );
    }
}
