//! S3's REST API: path-style (`/bucket/key`) and virtual-hosted (`bucket.s3.<host>`)
//! addressing, object ARNs `arn:aws:s3:::bucket/key` (the key percent-decoded) for object
//! operations and bucket ARNs for bucket operations, the sub-resources that change the action
//! (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html),
//! and the condition keys of
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html.

use super::{
    Classified, Credential, HttpRequestParts, Outcome, Scope, SigningScheme, percent_decode,
};
use crate::iam::context::{RequestContext, Resource};

/// Query parameters that are not sub-resources: listing options, presigning fields, response
/// overrides and the SDKs' `x-id`.
fn is_plain_parameter(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "prefix"
            | "delimiter"
            | "max-keys"
            | "marker"
            | "continuation-token"
            | "start-after"
            | "fetch-owner"
            | "encoding-type"
            | "list-type"
            | "key-marker"
            | "version-id-marker"
            | "upload-id-marker"
            | "max-uploads"
            | "partnumber"
            | "part-number-marker"
            | "max-parts"
            | "versionid"
            | "uploadid"
            | "x-id"
            | "awsaccesskeyid"
            | "signature"
            | "expires"
            | "max-buckets"
            | "bucket-region"
    ) || lower.starts_with("x-amz-")
        || lower.starts_with("response-")
}

/// The bucket of a virtual-hosted request: the labels before the last `s3` or `s3-<region>`
/// label (`my.bucket.s3.us-east-1.amazonaws.com`), or before `localhost`.
fn virtual_bucket(host: &str) -> Option<String> {
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let at = labels
        .iter()
        .rposition(|label| *label == "s3" || label.starts_with("s3-"))
        .or_else(|| (labels.last() == Some(&"localhost")).then(|| labels.len() - 1))?;
    (at > 0).then(|| labels[..at].join("."))
}

/// Whether S3 needs the body: DeleteObjects lists its keys there.
pub(super) fn body_needed(request: &HttpRequestParts<'_>) -> bool {
    request.method == "POST"
        && parameters(request.query)
            .iter()
            .any(|(name, _)| name == "delete")
}

fn parameters(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

/// `x-amz-copy-source`: `/bucket/key?versionId=v`, percent-encoded.
fn copy_source(header: &str) -> Option<(String, String, Option<String>)> {
    let (path, query) = header.split_once('?').unwrap_or((header, ""));
    let path = percent_decode(path.trim_start_matches('/'));
    if path.starts_with("arn:") {
        return None; // access points and Outposts
    }
    let (bucket, key) = path.split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    let version = parameters(query)
        .into_iter()
        .find(|(name, _)| name == "versionId")
        .map(|(_, value)| value);
    Some((bucket.to_owned(), key.to_owned(), version))
}

/// `x-amz-tagging: k1=v1&k2=v2`.
fn tagging(header: &str) -> Vec<(String, String)> {
    parameters(header)
}

pub(super) fn classify(
    request: &HttpRequestParts<'_>,
    _scope: &Scope<'_>,
    credential: Option<&Credential>,
) -> Outcome {
    let params = parameters(request.query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let subresources: Vec<&str> = params
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !is_plain_parameter(name))
        .collect();
    let raw_path = request.path.strip_prefix('/').unwrap_or(request.path);
    let (bucket, raw_key) = match request.header("host").and_then(virtual_bucket) {
        Some(bucket) => (bucket, raw_path),
        None => match raw_path.split_once('/') {
            Some((bucket, key)) => (percent_decode(bucket), key),
            None => (percent_decode(raw_path), ""),
        },
    };
    let key = percent_decode(raw_key);
    let method = request.method;
    let version = param("versionId");
    let subresource = match subresources.as_slice() {
        [] => None,
        [one] => Some(*one),
        many => return Err(format!("S3 request with several sub-resources {many:?}")),
    };

    let mut classified = if bucket.is_empty() {
        match (method, subresource) {
            // S3's own example grants it on `arn:aws:s3:::*`
            // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-policies-s3.html):
            // the request is for all buckets, which `*` and that pattern match and a pattern
            // naming one bucket does not.
            ("GET", None) => Classified::one(
                "ListBuckets",
                "s3:ListAllMyBuckets",
                Resource::arn("arn:aws:s3:::*"),
            ),
            _ => {
                return Err(format!(
                    "S3 {method} / is not an operation the sandbox knows"
                ));
            }
        }
    } else if key.is_empty() {
        bucket_operation(request, &bucket, method, subresource, &params)?
    } else {
        object_operation(request, &bucket, &key, method, subresource, version)?
    };

    // Keys every S3 request carries.
    let (auth_type, signature_version) = match credential.map(|c| c.scheme) {
        Some(SigningScheme::SigV4Header) => (Some("REST-HEADER"), Some("AWS4-HMAC-SHA256")),
        Some(SigningScheme::SigV4Query) => (Some("REST-QUERY-STRING"), Some("AWS4-HMAC-SHA256")),
        Some(SigningScheme::SigV2Header) => (Some("REST-HEADER"), Some("AWS")),
        Some(SigningScheme::SigV2Query) => (Some("REST-QUERY-STRING"), Some("AWS")),
        None => (None, None),
    };
    for check in &mut classified.checks {
        if let Some(auth_type) = auth_type {
            check.set_key("s3:authType", [auth_type]);
        }
        if let Some(signature_version) = signature_version {
            check.set_key("s3:signatureversion", [signature_version]);
        }
        if let Some(sha) = request.header("x-amz-content-sha256") {
            check.set_key("s3:x-amz-content-sha256", [sha]);
        }
    }
    Ok(classified)
}

fn bucket_operation(
    request: &HttpRequestParts<'_>,
    bucket: &str,
    method: &str,
    subresource: Option<&str>,
    params: &[(String, String)],
) -> Outcome {
    let arn = || Resource::arn(format!("arn:aws:s3:::{bucket}"));
    let one = |operation: &str, action: &str| Ok(Classified::one(operation, action, arn()));
    match (method, subresource) {
        ("GET", None) => {
            let mut classified = Classified::one(
                if params.iter().any(|(n, v)| n == "list-type" && v == "2") {
                    "ListObjectsV2"
                } else {
                    "ListObjects"
                },
                "s3:ListBucket",
                arn(),
            );
            list_keys(&mut classified.checks[0], params);
            Ok(classified)
        }
        // HeadBucket is authorised as s3:ListBucket.
        ("HEAD", None) => one("HeadBucket", "s3:ListBucket"),
        ("GET", Some("versions")) => {
            let mut classified =
                Classified::one("ListObjectVersions", "s3:ListBucketVersions", arn());
            list_keys(&mut classified.checks[0], params);
            Ok(classified)
        }
        ("GET", Some("uploads")) => one("ListMultipartUploads", "s3:ListBucketMultipartUploads"),
        ("GET", Some("location")) => one("GetBucketLocation", "s3:GetBucketLocation"),
        ("PUT", None) => {
            let mut classified = Classified::one("CreateBucket", "s3:CreateBucket", arn());
            if let Some(acl) = request.header("x-amz-acl") {
                classified.checks[0].set_key("s3:x-amz-acl", [acl]);
            }
            if let Some(ownership) = request.header("x-amz-object-ownership") {
                classified.checks[0].set_key("s3:x-amz-object-ownership", [ownership]);
            }
            Ok(classified)
        }
        ("DELETE", None) => one("DeleteBucket", "s3:DeleteBucket"),
        ("POST", Some("delete")) => delete_objects(request, bucket),
        ("GET", Some("versioning")) => one("GetBucketVersioning", "s3:GetBucketVersioning"),
        ("PUT", Some("versioning")) => one("PutBucketVersioning", "s3:PutBucketVersioning"),
        ("GET", Some("notification")) => one(
            "GetBucketNotificationConfiguration",
            "s3:GetBucketNotification",
        ),
        ("PUT", Some("notification")) => one(
            "PutBucketNotificationConfiguration",
            "s3:PutBucketNotification",
        ),
        ("GET", Some("cors")) => one("GetBucketCors", "s3:GetBucketCORS"),
        ("PUT", Some("cors")) => one("PutBucketCors", "s3:PutBucketCORS"),
        ("DELETE", Some("cors")) => one("DeleteBucketCors", "s3:PutBucketCORS"),
        ("GET", Some("policy")) => one("GetBucketPolicy", "s3:GetBucketPolicy"),
        ("PUT", Some("policy")) => one("PutBucketPolicy", "s3:PutBucketPolicy"),
        ("DELETE", Some("policy")) => one("DeleteBucketPolicy", "s3:DeleteBucketPolicy"),
        ("GET", Some("policyStatus")) => one("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus"),
        ("GET", Some("acl")) => one("GetBucketAcl", "s3:GetBucketAcl"),
        ("PUT", Some("acl")) => one("PutBucketAcl", "s3:PutBucketAcl"),
        ("GET", Some("tagging")) => one("GetBucketTagging", "s3:GetBucketTagging"),
        ("PUT", Some("tagging")) => one("PutBucketTagging", "s3:PutBucketTagging"),
        ("DELETE", Some("tagging")) => one("DeleteBucketTagging", "s3:PutBucketTagging"),
        ("GET", Some("encryption")) => one("GetBucketEncryption", "s3:GetEncryptionConfiguration"),
        ("PUT", Some("encryption")) => one("PutBucketEncryption", "s3:PutEncryptionConfiguration"),
        ("DELETE", Some("encryption")) => {
            one("DeleteBucketEncryption", "s3:PutEncryptionConfiguration")
        }
        ("GET", Some("publicAccessBlock")) => {
            one("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock")
        }
        ("PUT", Some("publicAccessBlock")) => {
            one("PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock")
        }
        ("DELETE", Some("publicAccessBlock")) => {
            one("DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock")
        }
        ("GET", Some("lifecycle")) => one(
            "GetBucketLifecycleConfiguration",
            "s3:GetLifecycleConfiguration",
        ),
        ("PUT", Some("lifecycle")) => one(
            "PutBucketLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
        ),
        ("DELETE", Some("lifecycle")) => {
            one("DeleteBucketLifecycle", "s3:PutLifecycleConfiguration")
        }
        ("GET", Some("website")) => one("GetBucketWebsite", "s3:GetBucketWebsite"),
        ("PUT", Some("website")) => one("PutBucketWebsite", "s3:PutBucketWebsite"),
        ("DELETE", Some("website")) => one("DeleteBucketWebsite", "s3:DeleteBucketWebsite"),
        ("GET", Some("logging")) => one("GetBucketLogging", "s3:GetBucketLogging"),
        ("PUT", Some("logging")) => one("PutBucketLogging", "s3:PutBucketLogging"),
        ("GET", Some("ownershipControls")) => one(
            "GetBucketOwnershipControls",
            "s3:GetBucketOwnershipControls",
        ),
        ("PUT", Some("ownershipControls")) => one(
            "PutBucketOwnershipControls",
            "s3:PutBucketOwnershipControls",
        ),
        ("DELETE", Some("ownershipControls")) => one(
            "DeleteBucketOwnershipControls",
            "s3:PutBucketOwnershipControls",
        ),
        ("GET", Some("object-lock")) => one(
            "GetObjectLockConfiguration",
            "s3:GetBucketObjectLockConfiguration",
        ),
        ("PUT", Some("object-lock")) => one(
            "PutObjectLockConfiguration",
            "s3:PutBucketObjectLockConfiguration",
        ),
        ("GET", Some("replication")) => {
            one("GetBucketReplication", "s3:GetReplicationConfiguration")
        }
        ("PUT", Some("replication")) => {
            one("PutBucketReplication", "s3:PutReplicationConfiguration")
        }
        ("DELETE", Some("replication")) => {
            one("DeleteBucketReplication", "s3:PutReplicationConfiguration")
        }
        ("GET", Some("requestPayment")) => {
            one("GetBucketRequestPayment", "s3:GetBucketRequestPayment")
        }
        ("PUT", Some("requestPayment")) => {
            one("PutBucketRequestPayment", "s3:PutBucketRequestPayment")
        }
        ("GET", Some("accelerate")) => one(
            "GetBucketAccelerateConfiguration",
            "s3:GetAccelerateConfiguration",
        ),
        ("PUT", Some("accelerate")) => one(
            "PutBucketAccelerateConfiguration",
            "s3:PutAccelerateConfiguration",
        ),
        _ => Err(format!(
            "S3 {method} on bucket {bucket} with sub-resource {} is not an operation the sandbox knows",
            subresource.unwrap_or("(none)")
        )),
    }
}

/// `s3:prefix`, `s3:delimiter` and `s3:max-keys` of a listing.
fn list_keys(check: &mut RequestContext, params: &[(String, String)]) {
    for (param, key) in [
        ("prefix", "s3:prefix"),
        ("delimiter", "s3:delimiter"),
        ("max-keys", "s3:max-keys"),
    ] {
        if let Some((_, value)) = params.iter().find(|(name, _)| name == param) {
            check.set_key(key, [value.clone()]);
        }
    }
}

/// DeleteObjects: `s3:DeleteObject` (or `s3:DeleteObjectVersion`) on each key of the body.
/// AWS answers a refused key inside a 200 response (an `<Error>` per key) rather than
/// refusing the request; the edge may do the same or refuse the whole request.
fn delete_objects(request: &HttpRequestParts<'_>, bucket: &str) -> Outcome {
    let body = String::from_utf8_lossy(request.body);
    let mut checks = Vec::new();
    for object in body.split("<Object>").skip(1) {
        let object = object.split("</Object>").next().unwrap_or("");
        let Some(key) = element(object, "Key") else {
            continue;
        };
        let resource = Resource::arn(object_arn(bucket, &key));
        checks.push(match element(object, "VersionId") {
            Some(version) => RequestContext::new("s3:DeleteObjectVersion", resource)
                .with_key("s3:versionid", [version]),
            None => RequestContext::new("s3:DeleteObject", resource),
        });
    }
    if checks.is_empty() {
        return Err("S3 DeleteObjects without keys in its body (was the body passed?)".into());
    }
    Ok(Classified::new("DeleteObjects", checks))
}

/// The text of the first `<name>` element in `xml`, entities decoded.
fn element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml.get(start..)?.find(&format!("</{name}>"))?;
    Some(xml_unescape(xml.get(start..end)?))
}

fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn object_operation(
    request: &HttpRequestParts<'_>,
    bucket: &str,
    key: &str,
    method: &str,
    subresource: Option<&str>,
    version: Option<&str>,
) -> Outcome {
    let arn = || Resource::arn(object_arn(bucket, key));
    // A versioned variant of an action when the request names a version.
    let versioned = |plain: &str, with_version: &str| -> RequestContext {
        match version {
            Some(version) => {
                RequestContext::new(with_version, arn()).with_key("s3:versionid", [version])
            }
            None => RequestContext::new(plain, arn()),
        }
    };
    let single = |operation: &str, check: RequestContext| {
        Ok(Classified::new(operation.to_owned(), vec![check]))
    };
    let has_upload_id = || {
        parameters(request.query)
            .iter()
            .any(|(name, _)| name == "uploadId")
    };
    let has_part_number = || {
        parameters(request.query)
            .iter()
            .any(|(name, _)| name == "partNumber")
    };
    match (method, subresource) {
        ("GET", None) if has_upload_id() => single(
            "ListParts",
            RequestContext::new("s3:ListMultipartUploadParts", arn()),
        ),
        ("GET", None) | ("HEAD", None) => {
            let operation = if method == "GET" {
                "GetObject"
            } else {
                "HeadObject"
            };
            let mut classified = Classified::new(
                operation,
                vec![versioned("s3:GetObject", "s3:GetObjectVersion")],
            );
            // A missing object is 404 with s3:ListBucket on the bucket, 403 without.
            classified.when_missing = Some(RequestContext::new(
                "s3:ListBucket",
                Resource::arn(format!("arn:aws:s3:::{bucket}")),
            ));
            Ok(classified)
        }
        ("PUT", None) => put_object(request, bucket, key, has_upload_id() && has_part_number()),
        ("DELETE", None) if has_upload_id() => single(
            "AbortMultipartUpload",
            RequestContext::new("s3:AbortMultipartUpload", arn()),
        ),
        ("DELETE", None) => single(
            "DeleteObject",
            versioned("s3:DeleteObject", "s3:DeleteObjectVersion"),
        ),
        ("POST", Some("uploads")) => {
            let mut classified = put_object(request, bucket, key, false)?;
            classified.operation = "CreateMultipartUpload".into();
            Ok(classified)
        }
        ("POST", None) if has_upload_id() => single(
            "CompleteMultipartUpload",
            RequestContext::new("s3:PutObject", arn()),
        ),
        ("GET", Some("acl")) => single(
            "GetObjectAcl",
            versioned("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
        ),
        ("PUT", Some("acl")) => single(
            "PutObjectAcl",
            versioned("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
        ),
        ("GET", Some("tagging")) => single(
            "GetObjectTagging",
            versioned("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
        ),
        ("PUT", Some("tagging")) => single(
            "PutObjectTagging",
            versioned("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
        ),
        ("DELETE", Some("tagging")) => single(
            "DeleteObjectTagging",
            versioned("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
        ),
        ("GET", Some("attributes")) => single(
            "GetObjectAttributes",
            versioned("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
        ),
        ("GET", Some("retention")) => single(
            "GetObjectRetention",
            versioned("s3:GetObjectRetention", "s3:GetObjectRetention"),
        ),
        ("PUT", Some("retention")) => single(
            "PutObjectRetention",
            versioned("s3:PutObjectRetention", "s3:PutObjectRetention"),
        ),
        ("GET", Some("legal-hold")) => single(
            "GetObjectLegalHold",
            versioned("s3:GetObjectLegalHold", "s3:GetObjectLegalHold"),
        ),
        ("PUT", Some("legal-hold")) => single(
            "PutObjectLegalHold",
            versioned("s3:PutObjectLegalHold", "s3:PutObjectLegalHold"),
        ),
        ("POST", Some("restore")) => single(
            "RestoreObject",
            RequestContext::new("s3:RestoreObject", arn()),
        ),
        _ => Err(format!(
            "S3 {method} on object {bucket}/{key} with sub-resource {} is not an operation the sandbox knows",
            subresource.unwrap_or("(none)")
        )),
    }
}

/// PutObject, CopyObject, UploadPart and UploadPartCopy: `s3:PutObject` on the target, with
/// `s3:GetObject` (or `s3:GetObjectVersion`) on a copy's source, `s3:PutObjectTagging` when
/// tags are set, `s3:PutObjectAcl` when an ACL is.
fn put_object(request: &HttpRequestParts<'_>, bucket: &str, key: &str, part: bool) -> Outcome {
    let target = object_arn(bucket, key);
    let mut put = RequestContext::new("s3:PutObject", Resource::arn(target.clone()));
    for (header, condition_key) in [
        ("x-amz-acl", "s3:x-amz-acl"),
        (
            "x-amz-server-side-encryption",
            "s3:x-amz-server-side-encryption",
        ),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
        ),
        ("x-amz-storage-class", "s3:x-amz-storage-class"),
        ("x-amz-copy-source", "s3:x-amz-copy-source"),
        ("x-amz-metadata-directive", "s3:x-amz-metadata-directive"),
        ("if-none-match", "s3:if-none-match"),
        ("if-match", "s3:if-match"),
        ("x-amz-object-lock-mode", "s3:object-lock-mode"),
    ] {
        if let Some(value) = request.header(header) {
            put.set_key(condition_key, [value]);
        }
    }
    let tags = request
        .header("x-amz-tagging")
        .map(tagging)
        .unwrap_or_default();
    if !tags.is_empty() {
        for (name, value) in &tags {
            put.set_key(&format!("s3:RequestObjectTag/{name}"), [value.clone()]);
        }
        put.set_key(
            "s3:RequestObjectTagKeys",
            tags.iter().map(|(name, _)| name.clone()),
        );
    }
    let mut checks = Vec::new();
    let copy = request.header("x-amz-copy-source");
    let operation = match (copy.is_some(), part) {
        (true, true) => "UploadPartCopy",
        (true, false) => "CopyObject",
        (false, true) => "UploadPart",
        (false, false) => "PutObject",
    };
    checks.push(put);
    if let Some(header) = copy {
        let (source_bucket, source_key, version) = copy_source(header).ok_or_else(|| {
            format!("S3 {operation} with a copy source the sandbox cannot read: {header}")
        })?;
        let resource = Resource::arn(object_arn(&source_bucket, &source_key));
        checks.push(match version {
            Some(version) => RequestContext::new("s3:GetObjectVersion", resource)
                .with_key("s3:versionid", [version]),
            None => RequestContext::new("s3:GetObject", resource),
        });
    }
    let replaces_tags =
        copy.is_none() || request.header("x-amz-tagging-directive") == Some("REPLACE");
    if !part && replaces_tags && request.header("x-amz-tagging").is_some() {
        let mut tagging_check =
            RequestContext::new("s3:PutObjectTagging", Resource::arn(target.clone()));
        for (name, value) in &tags {
            tagging_check.set_key(&format!("s3:RequestObjectTag/{name}"), [value.clone()]);
        }
        checks.push(tagging_check);
    }
    let sets_acl = request.headers.keys().any(|name| {
        let name = name.as_str();
        name == "x-amz-acl" || name.starts_with("x-amz-grant-")
    });
    if !part && sets_acl {
        let mut acl = RequestContext::new("s3:PutObjectAcl", Resource::arn(target));
        if let Some(value) = request.header("x-amz-acl") {
            acl.set_key("s3:x-amz-acl", [value]);
        }
        checks.push(acl);
    }
    Ok(Classified::new(operation, checks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosted_buckets_come_from_the_host() {
        assert_eq!(
            virtual_bucket("uploads.s3.amazonaws.com").as_deref(),
            Some("uploads")
        );
        assert_eq!(
            virtual_bucket("my.bucket.s3.us-east-1.amazonaws.com").as_deref(),
            Some("my.bucket")
        );
        assert_eq!(
            virtual_bucket("b.s3-us-west-2.amazonaws.com").as_deref(),
            Some("b")
        );
        assert_eq!(
            virtual_bucket("b.s3.localhost.localstack.cloud:4566").as_deref(),
            Some("b")
        );
        assert_eq!(virtual_bucket("b.localhost:4566").as_deref(), Some("b"));
        assert_eq!(virtual_bucket("s3.amazonaws.com"), None);
        assert_eq!(virtual_bucket("127.0.0.1:4566"), None);
        assert_eq!(virtual_bucket("localhost:4566"), None);
        assert_eq!(virtual_bucket("[::1]:4566"), None);
    }

    #[test]
    fn delete_objects_bodies_name_their_keys() {
        let xml = "<Delete><Object><Key>a&amp;b/c.jpg</Key></Object><Object><Key>x&#47;y</Key><VersionId>v1</VersionId></Object><Quiet>true</Quiet></Delete>";
        assert_eq!(element(xml, "Key").as_deref(), Some("a&b/c.jpg"));
        assert_eq!(xml_unescape("&#x41;&lt;&bogus;&"), "A<&bogus;&");
        assert_eq!(
            copy_source("/src/a%20b.jpg?versionId=v2"),
            Some(("src".into(), "a b.jpg".into(), Some("v2".into())))
        );
        assert_eq!(copy_source("src/k"), Some(("src".into(), "k".into(), None)));
        assert_eq!(
            copy_source("arn:aws:s3:us-east-1:1:accesspoint/ap/object/k"),
            None
        );
        assert_eq!(copy_source("/onlybucket"), None);
    }
}
