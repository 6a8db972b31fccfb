//! S3 event notifications to Lambda. moto records a bucket's notification configuration but
//! cannot run the function (it would need Docker), so the agent delivers them: it sees every
//! object-creating call on its way through the edge (a PUT signed with SigV4 or SigV2, in a
//! header or presigned, a browser's presigned POST form, `CopyObject`,
//! `CompleteMultipartUpload`), matches the bucket's Lambda configurations (events, prefix and
//! suffix filters) and invokes the function asynchronously with the same event document AWS
//! sends.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_s3::types::{Event, FilterRuleName, LambdaFunctionConfiguration};
use http::{HeaderMap, Method};
use serde_json::{Value, json};

/// An object-creating request the edge forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The key as stored (decoded).
    pub key: String,
    /// `ObjectCreated:Put`, `ObjectCreated:Post`, `ObjectCreated:Copy` or
    /// `ObjectCreated:CompleteMultipartUpload`.
    pub event_name: &'static str,
}

/// The event of a browser's form upload, whose key is in the form (see [`post_form_key`]):
/// [`object_created`] gives it with an empty key.
pub const POST_EVENT: &str = "ObjectCreated:Post";

/// How much of a form upload the edge keeps to find its key: S3 takes only the fields before
/// the file, which comes last, so the fields fit in far less.
pub const FORM_FIELDS_LIMIT: usize = 64 * 1024;

/// Whether a request is for S3: signed for it with SigV4 (in the header or presigned), signed
/// with SigV2 (only S3 still takes it: `Authorization: AWS key:signature`, or a URL presigned
/// with `AWSAccessKeyId`, `Expires` and `Signature`), or a form upload (`POST /bucket` as
/// `multipart/form-data`, whose signature is a form field).
pub fn is_s3_request(method: &Method, path: &str, query: &str, headers: &HeaderMap) -> bool {
    if let Some(service) = signed_service(headers, query) {
        return service == "s3";
    }
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if authorization.starts_with("AWS ") {
        return true;
    }
    let names: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name.into_owned())
        .collect();
    let has = |wanted: &str| names.iter().any(|name| name == wanted);
    if has("AWSAccessKeyId") && has("Signature") && !has("SignatureVersion") {
        return true;
    }
    is_form_upload(method, path, headers)
}

/// `POST /bucket` with a `multipart/form-data` body: a presigned POST.
fn is_form_upload(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    let bucket = path.trim_matches('/');
    method == Method::POST
        && !bucket.is_empty()
        && !bucket.contains('/')
        && form_boundary(headers).is_some()
}

/// The boundary of a `multipart/form-data` body.
fn form_boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get("content-type")?.to_str().ok()?;
    let (kind, parameters) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parameters.split(';').find_map(|parameter| {
        let (name, value) = parameter.trim().split_once('=')?;
        name.eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches('"').to_owned())
    })
}

/// The key a form upload stored, from the start of its body: the `key` field, with
/// `${filename}` replaced by the file's name as S3 does. `None` if the fields are not all in
/// `fields` (a form whose file does not come last, which S3 refuses anyway).
pub fn post_form_key(headers: &HeaderMap, fields: &[u8]) -> Option<String> {
    let boundary = format!("--{}", form_boundary(headers)?);
    let text = String::from_utf8_lossy(fields);
    let mut key = None;
    for part in text.split(boundary.as_str()).skip(1) {
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let (head, value) = part.split_once("\r\n\r\n")?;
        let disposition = head.lines().find(|line| {
            line.to_ascii_lowercase()
                .starts_with("content-disposition:")
        })?;
        let parameter = |wanted: &str| {
            disposition.split(';').find_map(|item| {
                let (name, value) = item.trim().split_once('=')?;
                (name.eq_ignore_ascii_case(wanted)).then(|| value.trim_matches('"').to_owned())
            })
        };
        let name = parameter("name")?;
        if name.eq_ignore_ascii_case("file") {
            let filename = parameter("filename").unwrap_or_default();
            return key.map(|key: String| key.replace("${filename}", &filename));
        }
        if name.eq_ignore_ascii_case("key") {
            key = Some(value.strip_suffix("\r\n").unwrap_or(value).to_owned());
        }
    }
    None
}

/// The AWS service a signed request is for, from its credential scope.
pub fn signed_service<'a>(headers: &'a HeaderMap, query: &'a str) -> Option<String> {
    let scope = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .map(str::to_owned)
        .or_else(|| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "X-Amz-Credential")
                .map(|(_, value)| value.into_owned())
        })?;
    // AKID/date/region/service/aws4_request
    scope.split('/').nth(3).map(str::to_owned)
}

/// Recognises the calls that create an object (path-style addressing, which the sandbox's
/// clients use).
pub fn object_created(
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Option<ObjectCreated> {
    if is_form_upload(method, path, headers) {
        return Some(ObjectCreated {
            bucket: path.trim_matches('/').to_owned(),
            key: String::new(),
            event_name: POST_EVENT,
        });
    }
    let trimmed = path.strip_prefix('/')?;
    let (bucket, raw_key) = trimmed.split_once('/')?;
    if bucket.is_empty() || raw_key.is_empty() {
        return None;
    }
    let key = url::form_urlencoded::parse(format!("k={}", raw_key.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, key)| key.into_owned())?;
    let parameters: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name.into_owned())
        .collect();
    let has = |name: &str| parameters.iter().any(|parameter| parameter == name);
    let event_name = if method == Method::PUT {
        // Sub-resources (tagging, acl, retention, ...) and multipart parts create nothing.
        // `x-id` is the operation name the AWS SDKs add; `X-Amz-*` are SigV4's presigning
        // fields, `AWSAccessKeyId`, `Expires` and `Signature` SigV2's.
        let subresource = parameters.iter().any(|name| {
            !matches!(
                name.as_str(),
                "x-id" | "AWSAccessKeyId" | "Expires" | "Signature"
            ) && !name.starts_with("X-Amz-")
                && !name.starts_with("x-amz-")
        });
        if subresource {
            return None;
        }
        if headers.contains_key("x-amz-copy-source") {
            "ObjectCreated:Copy"
        } else {
            "ObjectCreated:Put"
        }
    } else if method == Method::POST && has("uploadId") {
        "ObjectCreated:CompleteMultipartUpload"
    } else {
        return None;
    };
    Some(ObjectCreated {
        bucket: bucket.to_owned(),
        key,
        event_name,
    })
}

/// The functions a `PutBucketNotificationConfiguration` body names (its
/// `CloudFunctionConfiguration`s' `CloudFunction` ARNs), in order, once each.
pub fn notification_functions(xml: &str) -> Vec<String> {
    let mut functions = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<CloudFunction>") {
        rest = &rest[start + "<CloudFunction>".len()..];
        let Some(end) = rest.find("</CloudFunction>") else {
            break;
        };
        let arn = rest[..end].trim().to_owned();
        if !arn.is_empty() && !functions.contains(&arn) {
            functions.push(arn);
        }
        rest = &rest[end..];
    }
    functions
}

/// What S3 answers a notification configuration naming functions it may not invoke (the
/// function's policy has no statement letting `s3.amazonaws.com` invoke it for this bucket).
/// S3's own message is the first sentence; the rest says which, as its `ArgumentValue`s do.
pub fn unvalidated_destinations(refused: &[String]) -> crate::iam::ServiceError {
    let details: Vec<String> = refused
        .iter()
        .map(|arn| format!("{arn}: Not authorized to invoke function [{arn}]"))
        .collect();
    crate::iam::ServiceError::new(
        400,
        "InvalidArgument",
        &format!(
            "Unable to validate the following destination configurations: {}. Give S3 permission first (lambda:AddPermission with principal s3.amazonaws.com and the bucket as SourceArn).",
            details.join("; ")
        ),
    )
}

/// True if `event_name` (`ObjectCreated:Put`) is one of `configured` (`s3:ObjectCreated:*`).
pub fn event_matches(configured: &[Event], event_name: &str) -> bool {
    let full = format!("s3:{event_name}");
    configured.iter().any(|event| {
        let pattern = event.as_str();
        match pattern.strip_suffix('*') {
            Some(prefix) => full.starts_with(prefix),
            None => full == pattern,
        }
    })
}

/// True if `key` passes the configuration's prefix and suffix rules.
pub fn key_matches(configuration: &LambdaFunctionConfiguration, key: &str) -> bool {
    let rules = configuration
        .filter()
        .and_then(|filter| filter.key())
        .map(|key_filter| key_filter.filter_rules())
        .unwrap_or_default();
    rules.iter().all(|rule| {
        let value = rule.value().unwrap_or("");
        match rule.name() {
            Some(FilterRuleName::Prefix) => key.starts_with(value),
            Some(FilterRuleName::Suffix) => key.ends_with(value),
            _ => true,
        }
    })
}

/// S3 URL-encodes keys in event documents (a space becomes `+`), keeping the `/`s.
fn event_key(key: &str) -> String {
    key.split('/')
        .map(|segment| url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// The event document S3 sends to Lambda.
pub fn event_document(
    created: &ObjectCreated,
    configuration_id: &str,
    region: &str,
    size: u64,
    etag: &str,
) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let event_time = hybridlab_wire::rfc3339(now);
    let sequencer = format!("{:016X}", now.unix_timestamp_nanos() as u64);
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": event_time,
            "eventName": created.event_name,
            "userIdentity": {"principalId": "AWS:HYBRIDLABSANDBOX"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {
                "x-amz-request-id": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
                "x-amz-id-2": uuid::Uuid::new_v4().to_string(),
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": configuration_id,
                "bucket": {
                    "name": created.bucket,
                    "ownerIdentity": {"principalId": "HYBRIDLABSANDBOX"},
                    "arn": format!("arn:aws:s3:::{}", created.bucket),
                },
                "object": {
                    "key": event_key(&created.key),
                    "size": size,
                    "eTag": etag.trim_matches('"'),
                    "sequencer": sequencer,
                },
            },
        }]
    })
}

/// Each bucket's Lambda notification configurations, read from moto once and forgotten when
/// the configuration changes through the edge.
#[derive(Debug, Default)]
pub struct NotificationCache {
    buckets: Mutex<HashMap<String, Vec<LambdaFunctionConfiguration>>>,
}

impl NotificationCache {
    pub fn forget(&self, bucket: &str) {
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.remove(bucket);
        }
    }

    pub async fn lambda_configurations(
        &self,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
    ) -> Vec<LambdaFunctionConfiguration> {
        if let Some(known) = self
            .buckets
            .lock()
            .ok()
            .and_then(|b| b.get(bucket).cloned())
        {
            return known;
        }
        let configurations = s3
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
            .map(|output| output.lambda_function_configurations().to_vec())
            .unwrap_or_default();
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.insert(bucket.to_owned(), configurations.clone());
        }
        configurations
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::types::{FilterRule, NotificationConfigurationFilter, S3KeyFilter};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn object_creating_calls_are_recognised() {
        let none = HeaderMap::new();
        assert_eq!(
            object_created(&Method::PUT, "/uploads/a%20b/c.jpg", "", &none),
            Some(ObjectCreated {
                bucket: "uploads".into(),
                key: "a b/c.jpg".into(),
                event_name: "ObjectCreated:Put"
            })
        );
        let copy = headers(&[("x-amz-copy-source", "/src/k")]);
        assert_eq!(
            object_created(&Method::PUT, "/b/k", "", &copy).map(|c| c.event_name),
            Some("ObjectCreated:Copy")
        );
        assert_eq!(
            object_created(&Method::POST, "/b/k", "uploadId=abc", &none).map(|c| c.event_name),
            Some("ObjectCreated:CompleteMultipartUpload")
        );
        let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F2026%2Fus-east-1%2Fs3%2Faws4_request";
        assert!(object_created(&Method::PUT, "/b/k", presigned, &none).is_some());
        assert!(object_created(&Method::PUT, "/b/k", "x-id=PutObject", &none).is_some());
        assert_eq!(object_created(&Method::PUT, "/b/k", "tagging", &none), None);
        assert_eq!(
            object_created(&Method::PUT, "/b/k", "partNumber=1&uploadId=x", &none),
            None
        );
        assert_eq!(object_created(&Method::PUT, "/b", "", &none), None);
        assert_eq!(object_created(&Method::GET, "/b/k", "", &none), None);
    }

    #[test]
    fn sigv2_and_form_uploads_are_s3_and_a_form_names_its_key() {
        let none = HeaderMap::new();
        let v2 = "AWSAccessKeyId=a&Signature=JRF%2B%3D&Expires=1796537407";
        assert!(is_s3_request(&Method::PUT, "/b/k", v2, &none));
        assert!(object_created(&Method::PUT, "/b/k", v2, &none).is_some());
        let header = headers(&[("authorization", "AWS a:c2lnbmF0dXJl")]);
        assert!(is_s3_request(&Method::PUT, "/b/k", "", &header));
        let ec2_v2 = "AWSAccessKeyId=a&Signature=x&SignatureVersion=2&Action=DescribeInstances";
        assert!(!is_s3_request(&Method::GET, "/", ec2_v2, &none));
        let lambda = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=x",
        )]);
        assert!(!is_s3_request(
            &Method::POST,
            "/2015-03-31/functions",
            "",
            &lambda
        ));

        let form = headers(&[("content-type", "multipart/form-data; boundary=XyZ")]);
        assert!(is_s3_request(&Method::POST, "/uploads", "", &form));
        assert!(!is_s3_request(&Method::POST, "/", "", &form));
        let created = object_created(&Method::POST, "/uploads", "", &form).expect("a form upload");
        assert_eq!(
            (created.bucket.as_str(), created.event_name),
            ("uploads", POST_EVENT)
        );
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nup/${filename}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\neyJ9\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\u{ff}\u{d8}";
        assert_eq!(
            post_form_key(&form, body.as_bytes()).as_deref(),
            Some("up/a b.jpg")
        );
        // The fields cut before the file: nothing is known.
        assert_eq!(post_form_key(&form, &body.as_bytes()[..60]), None);
        assert_eq!(post_form_key(&none, body.as_bytes()), None);
    }

    #[test]
    fn a_notification_configuration_names_its_functions() {
        let xml = "<NotificationConfiguration><CloudFunctionConfiguration><Id>a</Id><CloudFunction>arn:aws:lambda:us-east-1:1:function:f</CloudFunction><Event>s3:ObjectCreated:*</Event></CloudFunctionConfiguration><CloudFunctionConfiguration><CloudFunction>arn:aws:lambda:us-east-1:1:function:f</CloudFunction></CloudFunctionConfiguration><QueueConfiguration><Queue>arn:aws:sqs:us-east-1:1:q</Queue></QueueConfiguration></NotificationConfiguration>";
        assert_eq!(
            notification_functions(xml),
            ["arn:aws:lambda:us-east-1:1:function:f"]
        );
        assert!(notification_functions("<NotificationConfiguration/>").is_empty());
        let error = unvalidated_destinations(&["arn:f".to_owned()]);
        assert_eq!(
            (error.status, error.code.as_str()),
            (400, "InvalidArgument")
        );
        assert!(
            error
                .message
                .starts_with("Unable to validate the following destination configurations")
        );
    }

    #[test]
    fn the_service_comes_from_the_credential_scope() {
        let signed = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x",
        )]);
        assert_eq!(signed_service(&signed, "").as_deref(), Some("s3"));
        assert_eq!(
            signed_service(
                &HeaderMap::new(),
                "X-Amz-Credential=AKID%2F20261122%2Fus-east-1%2Fs3%2Faws4_request"
            )
            .as_deref(),
            Some("s3")
        );
        assert_eq!(signed_service(&HeaderMap::new(), ""), None);
    }

    #[test]
    fn events_and_filters_match_as_s3_matches_them() {
        assert!(event_matches(
            &[Event::from("s3:ObjectCreated:*")],
            "ObjectCreated:Put"
        ));
        assert!(event_matches(
            &[Event::from("s3:ObjectCreated:Put")],
            "ObjectCreated:Put"
        ));
        assert!(!event_matches(
            &[Event::from("s3:ObjectCreated:Copy")],
            "ObjectCreated:Put"
        ));
        assert!(!event_matches(
            &[Event::from("s3:ObjectRemoved:*")],
            "ObjectCreated:Put"
        ));

        let configuration = LambdaFunctionConfiguration::builder()
            .lambda_function_arn("arn:aws:lambda:us-east-1:123456789012:function:f")
            .events(Event::from("s3:ObjectCreated:*"))
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Prefix)
                                    .value("uploads/")
                                    .build(),
                            )
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Suffix)
                                    .value(".jpg")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
            .expect("complete");
        assert!(key_matches(&configuration, "uploads/cat.jpg"));
        assert!(!key_matches(&configuration, "uploads/cat.png"));
        assert!(!key_matches(&configuration, "processed/cat.jpg"));
    }

    #[test]
    fn the_event_document_has_the_aws_shape() {
        let created = ObjectCreated {
            bucket: "uploads".into(),
            key: "photos/my cat.jpg".into(),
            event_name: "ObjectCreated:Put",
        };
        let event = event_document(&created, "resize", "us-east-1", 1234, "\"abc\"");
        let record = &event["Records"][0];
        assert_eq!(record["eventSource"], "aws:s3");
        assert_eq!(record["eventName"], "ObjectCreated:Put");
        assert_eq!(record["s3"]["bucket"]["name"], "uploads");
        assert_eq!(record["s3"]["bucket"]["arn"], "arn:aws:s3:::uploads");
        assert_eq!(record["s3"]["object"]["key"], "photos/my+cat.jpg");
        assert_eq!(record["s3"]["object"]["size"], 1234);
        assert_eq!(record["s3"]["object"]["eTag"], "abc");
        assert_eq!(record["s3"]["configurationId"], "resize");
    }
}
