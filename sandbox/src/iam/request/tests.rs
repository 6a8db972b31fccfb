//! Classification of hand-written requests, in the wire formats of the services' API
//! references (Secrets Manager and STS, whose SDKs the workspace does not build), and of the
//! edge cases of signing.

use super::*;
use crate::iam::evaluate;
use crate::iam::policy::Policy;
use crate::iam::tests::sdk::Sent;
use crate::iam::tests::{ACCOUNT, REGION};

fn sigv4(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260101/us-east-1/{service}/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0f"
    )
}

fn secrets(operation: &str, body: &str) -> Sent {
    Sent::from_uri(
        "POST",
        "http://127.0.0.1:4566/",
        &[
            ("authorization", &sigv4("secretsmanager")),
            ("x-amz-target", &format!("secretsmanager.{operation}")),
            ("content-type", "application/x-amz-json-1.1"),
        ],
        body.as_bytes(),
    )
}

fn known(sent: &Sent, lookups: &dyn Lookups) -> Authorization {
    match classify(&sent.parts(), ACCOUNT, REGION, lookups) {
        Classification::Known(authorization) => authorization,
        Classification::Unknown { reason, .. } => panic!("not classified: {reason}"),
    }
}

struct SecretLookups;
impl Lookups for SecretLookups {
    fn secret_arn(&self, id: &str) -> Option<String> {
        (id == "token")
            .then(|| format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:token-AbCdEf"))
    }
}

#[test]
fn secrets_are_named_by_arn_with_their_suffix_known_or_unknown() {
    let by_name = known(
        &secrets("GetSecretValue", r#"{"SecretId":"token"}"#),
        &NoLookups,
    );
    assert_eq!(by_name.service, Service::SecretsManager);
    let check = &by_name.checks[0];
    assert_eq!(check.action, "secretsmanager:GetSecretValue");
    assert_eq!(
        check.resource.as_str(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-??????"
    );
    assert!(!check.resource.is_exact());
    assert_eq!(
        check.resource.named_as(),
        "token",
        "refusals name the secret as given"
    );
    assert_eq!(
        check.key("secretsmanager:SecretId"),
        Some(&["token".to_owned()][..])
    );

    let looked_up = known(
        &secrets("GetSecretValue", r#"{"SecretId":"token"}"#),
        &SecretLookups,
    );
    assert_eq!(
        looked_up.checks[0].resource.as_str(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf"
    );
    assert!(looked_up.checks[0].resource.is_exact());

    let full = "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-XyZ123";
    let by_arn = known(
        &secrets(
            "GetSecretValue",
            &format!(r#"{{"SecretId":"{full}","VersionStage":"AWSCURRENT"}}"#),
        ),
        &NoLookups,
    );
    assert_eq!(by_arn.checks[0].resource.as_str(), full);
    assert!(by_arn.checks[0].resource.is_exact());
    assert_eq!(
        by_arn.checks[0].key("secretsmanager:VersionStage"),
        Some(&["AWSCURRENT".to_owned()][..])
    );
    let partial = known(
        &secrets(
            "DescribeSecret",
            r#"{"SecretId":"arn:aws:secretsmanager:us-east-1:123456789012:secret:token"}"#,
        ),
        &NoLookups,
    );
    assert_eq!(
        partial.checks[0].resource.as_str(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-??????"
    );

    // How policies see them: the exact ARN, the suffix wildcards and another secret.
    let allows = |resource: &str| {
        Policy::parse(
            "p",
            &format!(r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"{resource}"}}}}"#),
        )
        .expect("a policy")
    };
    let exact = allows("arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf");
    assert!(
        evaluate(std::slice::from_ref(&exact), &by_name.checks[0]).is_allowed(),
        "some suffix matches"
    );
    assert!(evaluate(std::slice::from_ref(&exact), &looked_up.checks[0]).is_allowed());
    assert!(
        !evaluate(&[exact], &by_arn.checks[0]).is_allowed(),
        "another suffix is another secret"
    );
    let question_marks =
        allows("arn:aws:secretsmanager:us-east-1:123456789012:secret:token-??????");
    assert!(evaluate(std::slice::from_ref(&question_marks), &by_name.checks[0]).is_allowed());
    assert!(evaluate(&[question_marks], &by_arn.checks[0]).is_allowed());
    let other = allows("arn:aws:secretsmanager:us-east-1:123456789012:secret:other-*");
    assert!(!evaluate(&[other], &by_name.checks[0]).is_allowed());

    let list = known(&secrets("ListSecrets", "{}"), &NoLookups);
    assert_eq!(list.checks[0].resource.as_str(), "*");
    assert!(matches!(
        classify(
            &secrets("GetSecretValue", "{}").parts(),
            ACCOUNT,
            REGION,
            &NoLookups
        ),
        Classification::Unknown { .. }
    ));
}

fn sts(body: &str) -> Sent {
    Sent::from_uri(
        "POST",
        "http://127.0.0.1:4566/",
        &[
            ("authorization", &sigv4("sts")),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ],
        body.as_bytes(),
    )
}

#[test]
fn sts_assume_role_names_the_role_and_get_caller_identity_needs_nothing() {
    let assume = known(
        &sts(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fhybridlab%2Fweb&RoleSessionName=ci",
        ),
        &NoLookups,
    );
    assert_eq!(assume.service, Service::Sts);
    assert_eq!(assume.operation, "AssumeRole");
    assert_eq!(assume.checks[0].action, "sts:AssumeRole");
    assert_eq!(
        assume.checks[0].resource.as_str(),
        "arn:aws:iam::123456789012:role/hybridlab/web"
    );
    assert_eq!(
        assume.checks[0].key("sts:RoleSessionName"),
        Some(&["ci".to_owned()][..])
    );
    let tagged = known(
        &sts(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fweb&RoleSessionName=ci&Tags.member.1.Key=project&Tags.member.1.Value=lab",
        ),
        &NoLookups,
    );
    let actions: Vec<&str> = tagged.checks.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(actions, vec!["sts:AssumeRole", "sts:TagSession"]);
    assert_eq!(
        tagged.checks[1].key("aws:RequestTag/project"),
        Some(&["lab".to_owned()][..])
    );
    let identity = known(
        &sts("Action=GetCallerIdentity&Version=2011-06-15"),
        &NoLookups,
    );
    assert_eq!(identity.operation, "GetCallerIdentity");
    assert!(identity.checks.is_empty());
    // Without a credential scope the Version tells the service.
    let unsigned = Sent::from_uri(
        "POST",
        "http://127.0.0.1:4566/",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"Action=GetCallerIdentity&Version=2011-06-15",
    );
    let unsigned = known(&unsigned, &NoLookups);
    assert_eq!(unsigned.service, Service::Sts);
    assert_eq!(unsigned.credential, None);
}

#[test]
fn dynamodb_streams_and_request_wide_keys() {
    let sent = Sent::from_uri(
        "POST",
        "http://127.0.0.1:4566/",
        &[
            ("authorization", &sigv4("dynamodb")),
            ("x-amz-target", "DynamoDBStreams_20120810.GetRecords"),
            ("content-type", "application/x-amz-json-1.0"),
        ],
        br#"{"ShardIterator":"opaque"}"#,
    );
    let mut parts = sent.parts();
    parts.source_ip = Some("203.0.113.9".parse().expect("an address"));
    let Classification::Known(records) = classify(&parts, ACCOUNT, REGION, &NoLookups) else {
        panic!("classified");
    };
    let check = &records.checks[0];
    assert_eq!(check.action, "dynamodb:GetRecords");
    assert_eq!(
        check.resource.as_str(),
        "arn:aws:dynamodb:us-east-1:123456789012:table/*/stream/*"
    );
    assert_eq!(
        check.key("aws:SourceIp"),
        Some(&["203.0.113.9".to_owned()][..])
    );
    let stream = Policy::parse(
        "p",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:GetRecords","Resource":"arn:aws:dynamodb:us-east-1:123456789012:table/images/stream/2026-01-01T00:00:00.000"}}"#,
    )
    .expect("a policy");
    assert!(
        evaluate(&[stream], check).is_allowed(),
        "some stream of some table"
    );
    let table_only = Policy::parse(
        "p",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:GetRecords","Resource":"arn:aws:dynamodb:us-east-1:123456789012:table/images"}}"#,
    )
    .expect("a policy");
    assert!(
        !evaluate(&[table_only], check).is_allowed(),
        "a table is not its stream"
    );
}

#[test]
fn credentials_come_from_every_signing_scheme() {
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    };
    let v4a = credential(
        &headers(&[("authorization", "AWS4-ECDSA-P256-SHA256 Credential=AKID/20260101/s3/aws4_request, SignedHeaders=host, Signature=0")]),
        "",
    )
    .expect("SigV4a");
    assert_eq!(
        (
            v4a.access_key_id.as_str(),
            v4a.scope_service.as_deref(),
            v4a.scope_region
        ),
        ("AKID", Some("s3"), None)
    );
    assert_eq!(
        credential(
            &headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=")]),
            ""
        ),
        None
    );
    assert_eq!(
        credential(&headers(&[("authorization", "AWS :sig")]), ""),
        None
    );
    assert_eq!(
        credential(&headers(&[("authorization", "Bearer x")]), ""),
        None
    );
    assert_eq!(credential(&HeaderMap::new(), "AWSAccessKeyId="), None);
    let query = credential(
        &HeaderMap::new(),
        "X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=t",
    )
    .expect("presigned");
    assert_eq!(query.scheme, SigningScheme::SigV4Query);
    assert_eq!(query.session_token.as_deref(), Some("t"));
    assert_eq!(query.scope_region.as_deref(), Some("us-east-1"));
}

#[test]
fn s3_events_are_invocations_with_their_source() {
    let check = s3_event_invoke(
        "arn:aws:lambda:us-east-1:123456789012:function:hybridlab-resizer-abcd1234",
        "hybridlab-uploads-abcd1234",
        ACCOUNT,
    );
    assert_eq!(check.action, "lambda:InvokeFunction");
    assert_eq!(
        check.key("aws:sourcearn"),
        Some(&["arn:aws:s3:::hybridlab-uploads-abcd1234".to_owned()][..])
    );
    assert_eq!(
        check.key("AWS:SourceAccount"),
        Some(&[ACCOUNT.to_owned()][..])
    );
    assert_eq!(percent_decode("a%20b+c%2Fd%zz%4"), "a b+c/d%zz%4");
}

#[test]
fn the_edge_classifies_its_http_requests_directly() {
    let request = http::Request::builder()
        .method("PUT")
        .uri("/hybridlab-uploads-abcd1234/uploads/0001/cat.jpg?x-id=PutObject")
        .header("authorization", sigv4("s3"))
        .body(())
        .expect("a request");
    let (parts, ()) = request.into_parts();
    let http_parts = HttpRequestParts::new(&parts, &[]);
    assert!(!body_needed(&http_parts), "an upload streams through");
    let Classification::Known(put) = classify(&http_parts, ACCOUNT, REGION, &NoLookups) else {
        panic!("classified");
    };
    assert_eq!(put.operation, "PutObject");
    assert_eq!(
        put.checks[0].resource.as_str(),
        "arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/0001/cat.jpg"
    );
}
