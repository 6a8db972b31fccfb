//! Garbage in, no panic out: random and mutated requests through the classifier, random and
//! mutated documents through the policy parser, and whatever parses through the evaluator.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{ACCOUNT, REGION};
use crate::iam::request::{HttpRequestParts, NoLookups, body_needed, classify};
use crate::iam::{Classification, Policy, RequestContext, Resource, evaluate};

/// xorshift64*: deterministic, so a failure replays.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    /// Text made of pieces that mean something to the parsers, and noise.
    fn text(&mut self, pieces: &[&str]) -> String {
        let mut out = String::new();
        for _ in 0..self.below(12) {
            match self.below(4) {
                0 => out.push(char::from_u32(self.next() as u32 % 0x11_0000).unwrap_or('\u{fffd}')),
                1 => out.push((b' ' + (self.next() % 95) as u8) as char),
                _ => out.push_str(self.pick(pieces)),
            }
        }
        out
    }
    fn bytes(&mut self, pieces: &[&str]) -> Vec<u8> {
        let mut out = self.text(pieces).into_bytes();
        for _ in 0..self.below(4) {
            out.push(self.next() as u8);
        }
        out
    }
}

const PIECES: &[&str] = &[
    "/",
    "//",
    "?",
    "&",
    "=",
    "%",
    "%2",
    "%zz",
    "%2F",
    "%00",
    "+",
    ":",
    "arn:",
    "arn:aws:s3:::",
    "*",
    "?",
    "${",
    "}",
    "${aws:username}",
    "${*}",
    "-",
    ".",
    "bucket",
    "key",
    "2015-03-31",
    "functions",
    "invocations",
    "configuration",
    "policy",
    "event-source-mappings",
    "tags",
    "v2",
    "apis",
    "routes",
    "stages",
    "_aws",
    "execute-api",
    "uploads",
    "uploadId",
    "partNumber",
    "versionId",
    "tagging",
    "delete",
    "list-type=2",
    "acl",
    "Action",
    "Version",
    "2016-11-15",
    "2010-05-08",
    "2011-06-15",
    "RunInstances",
    "InstanceId.1",
    "IamInstanceProfile.Name",
    "TagSpecification.1.ResourceType",
    "Tag.1.Key",
    "RoleName",
    "AssumeRole",
    "RoleArn",
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    "TableName",
    "IndexName",
    "RequestItems",
    "TransactItems",
    "logGroupName",
    "logStreamName",
    "SecretId",
    "FunctionName",
    "Role",
    "<Object>",
    "<Key>",
    "</Key>",
    "</Object>",
    "&amp;",
    "&#x",
    ";",
    "Credential=",
    "AWS4-HMAC-SHA256 ",
    "AWS ",
    "X-Amz-Credential",
    "AWSAccessKeyId",
    "/aws4_request",
    "é",
    "\u{10ffff}",
    "\0",
];

const TARGETS: &[&str] = &[
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.BatchWriteItem",
    "DynamoDB_20120810.TransactWriteItems",
    "DynamoDB_20120810.Query",
    "DynamoDBStreams_20120810.GetRecords",
    "Logs_20140328.PutLogEvents",
    "Logs_20140328.StartQuery",
    "secretsmanager.GetSecretValue",
    "secretsmanager.BatchGetSecretValue",
    "DynamoDB_20120810.",
    "Logs_20140328.Nope",
    "",
];

const BODIES: &[&str] = &[
    r#"{"TableName":"t","IndexName":"i"}"#,
    r#"{"RequestItems":{"a":[],"b":{}}}"#,
    r#"{"TransactItems":[{"Put":{"TableName":"t"}},{"Update":{}},{},[],{"Bogus":{"TableName":"t"}}]}"#,
    r#"{"logGroupName":"g","logStreamName":"s","logGroupIdentifier":"arn:aws:logs:r:a:log-group:g:*"}"#,
    r#"{"logGroupNames":[1,null,"g"]}"#,
    r#"{"SecretId":"arn:aws:secretsmanager:r:a:secret:x-","SecretIdList":["a",2]}"#,
    r#"{"FunctionName":"arn:aws:lambda:r:a:function:f:q:extra","Role":"r","Tags":{"k":1}}"#,
    r#"{"name":"a","tags":{"k":"v","n":1,"":null}}"#,
    "Action=RunInstances&Version=2016-11-15&IamInstanceProfile.Arn=x&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=k",
    "Action=CreateTags&Version=2016-11-15&ResourceId.1=zzz-1",
    "Action=AddRoleToInstanceProfile&Version=2010-05-08&InstanceProfileName=p&RoleName=r",
    "Action=AssumeRole&Version=2011-06-15",
    "<Delete><Object><Key>&#xFFFFFFFF;</Key><VersionId></VersionId></Object><Object><Key>",
    "null",
    "[]",
    "\"x\"",
    "{",
    "",
];

fn random_request(random: &mut Random) -> (String, String, String, HeaderMap, Vec<u8>) {
    let method = random
        .pick(&["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", ""])
        .to_owned();
    let path = format!("/{}", random.text(PIECES));
    let query = random.text(PIECES);
    let mut headers = HeaderMap::new();
    let mut header = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    if random.below(2) == 0 {
        let service = random.pick(&[
            "s3",
            "dynamodb",
            "logs",
            "lambda",
            "ec2",
            "iam",
            "sts",
            "secretsmanager",
            "apigateway",
            "execute-api",
            "sqs",
            "",
        ]);
        let credential = random.pick(&["", "AKID", "AKID/2026", "AKID/2026/us-east-1", "/"]);
        header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={credential}/20260101/us-east-1/{service}/aws4_request{}",
                random.text(PIECES)
            ),
        );
    } else if random.below(2) == 0 {
        header("authorization", random.text(PIECES));
    }
    if random.below(2) == 0 {
        header("x-amz-target", random.pick(TARGETS).to_owned());
    }
    if random.below(2) == 0 {
        header(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        );
    }
    if random.below(3) == 0 {
        header("host", format!("{}.s3.localhost:4566", random.text(PIECES)));
    }
    if random.below(3) == 0 {
        header("x-amz-copy-source", random.text(PIECES));
    }
    if random.below(3) == 0 {
        header("x-amz-tagging", random.text(PIECES));
    }
    let body = if random.below(2) == 0 {
        random.pick(BODIES).as_bytes().to_vec()
    } else {
        random.bytes(PIECES)
    };
    (method, path, query, headers, body)
}

#[test]
fn no_request_makes_the_classifier_panic() {
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let mut known = 0;
    for _ in 0..20_000 {
        let (method, path, query, headers, body) = random_request(&mut random);
        let parts = HttpRequestParts {
            method: &method,
            path: &path,
            query: &query,
            headers: &headers,
            body: &body,
            source_ip: None,
        };
        let _ = body_needed(&parts);
        if let Classification::Known(authorization) = classify(&parts, ACCOUNT, REGION, &NoLookups)
        {
            known += 1;
            for check in &authorization.checks {
                let _ = check.resource.named_as();
            }
        }
    }
    // The generator reaches the classifier's paths, not only its first refusal.
    assert!(known > 1_000, "only {known} requests were classified");
}

const POLICY_PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"Version\"",
    "\"2012-10-17\"",
    "\"Statement\"",
    "\"Effect\"",
    "\"Allow\"",
    "\"Deny\"",
    "\"Action\"",
    "\"NotAction\"",
    "\"Resource\"",
    "\"NotResource\"",
    "\"Condition\"",
    "\"Principal\"",
    "\"StringLike\"",
    "\"ForAllValues:ArnLike\"",
    "\"IpAddressIfExists\"",
    "\"Null\"",
    "\"DateLessThan\"",
    "\"*\"",
    "\"s3:*\"",
    "\"arn:aws:s3:::b/${aws:username}/*\"",
    "\"${\"",
    "true",
    "1e309",
    "null",
    "\"k\"",
];

#[test]
fn no_document_makes_the_parser_or_the_evaluator_panic() {
    let mut random = Random(0xD1B5_4A32_D192_ED03);
    let base = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["s3:Get*"],"Resource":"arn:aws:s3:::b/*","Condition":{"StringLike":{"s3:prefix":["a/*"]},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
    let contexts = [
        RequestContext::new("s3:GetObject", Resource::arn("arn:aws:s3:::b/k"))
            .with_key("s3:prefix", ["a/b"])
            .with_key("aws:SourceIp", ["10.1.2.3"]),
        RequestContext::new("", Resource::arn("")),
        RequestContext::new(
            "s3:GetObject",
            Resource::unknown_runs(&["arn:aws:s3:::", "/", ""]),
        )
        .with_key("aws:username", ["${aws:username}"]),
    ];
    let mut parsed = 0;
    for round in 0..20_000 {
        let document = if round % 2 == 0 {
            // Mutate the base document: cut, splice in pieces, duplicate.
            let mut text = base.to_owned();
            for _ in 0..1 + random.below(3) {
                let at = random.below(text.len() + 1);
                let at = (0..=at)
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                match random.below(3) {
                    0 => text.truncate(at),
                    1 => text.insert_str(at, random.pick(POLICY_PIECES)),
                    _ => {
                        let end = (at + random.below(8)).min(text.len());
                        let end = (end..=text.len())
                            .find(|i| text.is_char_boundary(*i))
                            .unwrap_or(text.len());
                        text.replace_range(at..end, "");
                    }
                }
            }
            text
        } else {
            random.text(POLICY_PIECES)
        };
        if let Ok(policy) = Policy::parse("fuzz", &document) {
            parsed += 1;
            for context in &contexts {
                let _ = evaluate(std::slice::from_ref(&policy), context);
            }
        }
    }
    assert!(parsed > 500, "only {parsed} documents parsed");
}
