//! The policy language and its evaluation.

use serde_json::json;

use crate::iam::{
    Caller, Policy, PolicyError, RequestContext, Resource, Verdict, evaluate,
    evaluate_resource_policy, evaluate_with_resource_policy, first_refusal, s3_event_invoke,
};

fn policy(name: &str, document: serde_json::Value) -> Policy {
    Policy::from_json(name, &document).expect("a policy AWS accepts")
}

fn request(action: &str, resource: &str) -> RequestContext {
    RequestContext::new(action, Resource::arn(resource))
}

#[test]
fn every_shape_aws_accepts_is_read() {
    // One statement as an object, strings for lists, no Sid, no Version.
    let single = policy(
        "single",
        json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}}),
    );
    assert!(
        evaluate(
            std::slice::from_ref(&single),
            &request("s3:GetObject", "arn:aws:s3:::b/k")
        )
        .is_allowed()
    );
    assert!(!evaluate(&[single], &request("s3:PutObject", "arn:aws:s3:::b/k")).is_allowed());
    let listed = policy(
        "listed",
        json!({"Version": "2012-10-17", "Id": "x", "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
             "Condition": {"Bool": {"aws:SecureTransport": true}, "NumericLessThan": {"s3:max-keys": 100}}}
        ]}),
    );
    let list = request("s3:ListBucket", "arn:aws:s3:::b")
        .with_key("aws:SecureTransport", ["true"])
        .with_key("s3:max-keys", ["10"]);
    let decision = evaluate(std::slice::from_ref(&listed), &list);
    assert!(decision.is_allowed());
    assert_eq!(decision.sid(), Some("Read"));
    assert_eq!(
        decision
            .statement
            .as_ref()
            .map(|s| (s.policy.as_str(), s.index)),
        Some(("listed", 0))
    );
    assert!(!evaluate(&[listed], &list.clone().with_key("s3:max-keys", ["1000"])).is_allowed());

    // IAM's GetRolePolicy returns the document URL-encoded.
    let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22logs%3A*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
    let decoded = Policy::parse("inline", encoded).expect("URL-encoded JSON");
    assert!(
        evaluate(
            &[decoded],
            &request(
                "logs:PutLogEvents",
                "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s"
            )
        )
        .is_allowed()
    );
}

#[test]
fn documents_aws_would_refuse_are_errors() {
    for (document, says) in [
        (json!([]), "not a JSON object"),
        (json!({"Version": "2012-10-17"}), "Statement"),
        (json!({"Version": "2019-01-01", "Statement": []}), "Version"),
        (
            json!({"Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]}),
            "Effect",
        ),
        (
            json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
            "Action",
        ),
        (
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}]}),
            "both",
        ),
        (
            json!({"Statement": [{"Effect": "Allow", "Actions": "*", "Resource": "*"}]}),
            "Actions",
        ),
        (
            json!({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}),
            "non-empty",
        ),
        (
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": "x"}}]}),
            "Condition",
        ),
        (
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"k": {"a": 1}}}}]}),
            "not a value",
        ),
    ] {
        match Policy::from_json("p", &document) {
            Err(PolicyError::Malformed { reason, .. }) => {
                assert!(reason.contains(says), "{reason} should mention {says}")
            }
            other => panic!("{document} accepted: {other:?}"),
        }
    }
    assert!(matches!(
        Policy::parse("p", "{not json"),
        Err(PolicyError::NotJson { .. })
    ));
    // No Resource: accepted as a resource policy would be, but it grants nothing as an
    // identity policy.
    let no_resource = policy(
        "p",
        json!({"Statement": {"Effect": "Allow", "Action": "*"}}),
    );
    assert!(!evaluate(&[no_resource], &request("s3:GetObject", "arn:aws:s3:::b/k")).is_allowed());
}

#[test]
fn explicit_deny_wins_over_any_allow_in_any_policy() {
    let allow_all = policy(
        "AdministratorAccess",
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    );
    let deny_deletes = policy(
        "arn:aws:iam::123456789012:policy/no-deletes",
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Keep", "Effect": "Deny", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::b/*"}
        ]}),
    );
    let delete = request("s3:DeleteObject", "arn:aws:s3:::b/k");
    let decision = evaluate(&[allow_all.clone(), deny_deletes.clone()], &delete);
    assert_eq!(decision.verdict, Verdict::ExplicitDeny);
    assert_eq!(decision.sid(), Some("Keep"));
    assert_eq!(
        decision.statement.as_ref().map(|s| s.policy.as_str()),
        Some("arn:aws:iam::123456789012:policy/no-deletes")
    );
    // Order does not matter.
    assert_eq!(
        evaluate(&[deny_deletes.clone(), allow_all.clone()], &delete).verdict,
        Verdict::ExplicitDeny
    );
    assert_eq!(
        evaluate(
            &[allow_all, deny_deletes.clone()],
            &request("s3:GetObject", "arn:aws:s3:::b/k")
        )
        .verdict,
        Verdict::Allowed
    );
    // A deny alone is still only a deny; nothing is an implicit deny.
    assert_eq!(
        evaluate(
            &[deny_deletes],
            &request("s3:GetObject", "arn:aws:s3:::b/k")
        )
        .verdict,
        Verdict::ImplicitDeny
    );
    assert_eq!(evaluate(&[], &delete).verdict, Verdict::ImplicitDeny);
}

#[test]
fn not_action_and_not_resource_match_everything_else() {
    // "Allow + NotAction": every action but the listed ones, on the statement's resources
    // (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html).
    let all_but_iam = policy(
        "p",
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}),
    );
    assert!(
        evaluate(
            std::slice::from_ref(&all_but_iam),
            &request("s3:GetObject", "arn:aws:s3:::b/k")
        )
        .is_allowed()
    );
    assert!(
        !evaluate(
            std::slice::from_ref(&all_but_iam),
            &request("iam:CreateUser", "arn:aws:iam::1:user/u")
        )
        .is_allowed()
    );
    assert!(
        !evaluate(
            &[all_but_iam],
            &request("IAM:createuser", "arn:aws:iam::1:user/u")
        )
        .is_allowed(),
        "actions ignore case"
    );
    // "Deny + NotAction": deny everything except the listed actions.
    let only_reads = policy(
        "p",
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Sid": "OnlyReads", "Effect": "Deny", "NotAction": ["s3:Get*", "s3:List*"], "Resource": "*"}
        ]}),
    );
    assert!(
        evaluate(
            std::slice::from_ref(&only_reads),
            &request("s3:GetObject", "arn:aws:s3:::b/k")
        )
        .is_allowed()
    );
    let put = evaluate(&[only_reads], &request("s3:PutObject", "arn:aws:s3:::b/k"));
    assert_eq!(
        (put.verdict, put.sid()),
        (Verdict::ExplicitDeny, Some("OnlyReads"))
    );
    // "Deny + NotResource": deny the action anywhere but the listed resources.
    let only_own_bucket = policy(
        "p",
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:PutObject", "NotResource": ["arn:aws:s3:::mine/*"]}
        ]}),
    );
    assert!(
        evaluate(
            std::slice::from_ref(&only_own_bucket),
            &request("s3:PutObject", "arn:aws:s3:::mine/k")
        )
        .is_allowed()
    );
    assert_eq!(
        evaluate(
            std::slice::from_ref(&only_own_bucket),
            &request("s3:PutObject", "arn:aws:s3:::theirs/k")
        )
        .verdict,
        Verdict::ExplicitDeny
    );
    assert!(
        evaluate(
            &[only_own_bucket],
            &request("s3:GetObject", "arn:aws:s3:::theirs/k")
        )
        .is_allowed()
    );
    // "Allow + NotResource": everywhere but there.
    let not_there = policy(
        "p",
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}]}),
    );
    assert!(
        evaluate(
            std::slice::from_ref(&not_there),
            &request("s3:GetObject", "arn:aws:s3:::public/k")
        )
        .is_allowed()
    );
    assert!(
        !evaluate(
            &[not_there],
            &request("s3:GetObject", "arn:aws:s3:::secret/k")
        )
        .is_allowed()
    );
}

#[test]
fn unknown_operators_skip_their_statement_and_are_reported() {
    let document = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Future", "Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"StringSoundsLike": {"aws:username": "ana"}}},
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    ]});
    let decision = evaluate(
        &[policy("p", document)],
        &request("s3:GetObject", "arn:aws:s3:::b/k"),
    );
    assert_eq!(decision.verdict, Verdict::Allowed);
    assert_eq!(decision.unknown_operators.len(), 1);
    assert_eq!(decision.unknown_operators[0].operator, "StringSoundsLike");
    assert_eq!(
        decision.unknown_operators[0].statement.sid.as_deref(),
        Some("Future")
    );
}

#[test]
fn policy_variables_use_the_request_or_match_nothing() {
    let home = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/home/${aws:username}/*"}
    ]});
    let ana =
        request("s3:GetObject", "arn:aws:s3:::b/home/ana/notes").with_key("aws:username", ["ana"]);
    assert!(evaluate(&[policy("p", home.clone())], &ana).is_allowed());
    let bob =
        request("s3:GetObject", "arn:aws:s3:::b/home/ana/notes").with_key("aws:username", ["bob"]);
    assert!(!evaluate(&[policy("p", home.clone())], &bob).is_allowed());
    let nobody = request("s3:GetObject", "arn:aws:s3:::b/home/ana/notes");
    assert!(
        !evaluate(&[policy("p", home)], &nobody).is_allowed(),
        "no such key: no match"
    );
    // Without Version 2012-10-17 `${...}` is text.
    let old = json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}"}]});
    assert!(
        evaluate(
            &[policy("p", old)],
            &request("s3:GetObject", "arn:aws:s3:::b/${aws:username}")
                .with_key("aws:username", ["ana"])
        )
        .is_allowed()
    );
    // In condition values too.
    let tagged = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"s3:prefix": "${aws:username}/"}}}
    ]});
    assert!(
        evaluate(
            &[policy("p", tagged.clone())],
            &ana.clone().with_key("s3:prefix", ["ana/"])
        )
        .is_allowed()
    );
    assert!(!evaluate(&[policy("p", tagged)], &ana.with_key("s3:prefix", ["bob/"])).is_allowed());
}

#[test]
fn first_refusal_names_the_first_check_refused() {
    let reads = policy(
        "p",
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
    );
    let copy = [
        request("s3:PutObject", "arn:aws:s3:::to/k"),
        request("s3:GetObject", "arn:aws:s3:::from/k"),
    ];
    let (check, decision) =
        first_refusal(std::slice::from_ref(&reads), &copy).expect("PutObject refused");
    assert_eq!(check.action, "s3:PutObject");
    assert_eq!(decision.verdict, Verdict::ImplicitDeny);
    assert!(first_refusal(&[reads], &copy[1..]).is_none());
}

/// The function policy `AddPermission` writes for the uploads bucket's notification (as Lambda
/// returns it from GetPolicy): the stack's one `Condition`, on `AWS:SourceAccount` and
/// `AWS:SourceArn`.
#[test]
fn the_resizers_function_policy_lets_only_its_bucket_in_its_account_invoke_it() {
    let function = "arn:aws:lambda:us-east-1:123456789012:function:hybridlab-resizer-abcd1234";
    let document = json!({"Version": "2012-10-17", "Id": "default", "Statement": [{
        "Sid": "hybridlab-uploads",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": function,
        "Condition": {
            "StringEquals": {"AWS:SourceAccount": "123456789012"},
            "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::hybridlab-uploads-abcd1234"}
        }
    }]});
    let function_policy = policy("function policy", document);
    let s3 = Caller::Service("s3.amazonaws.com".into());
    let event = s3_event_invoke(function, "hybridlab-uploads-abcd1234", "123456789012");
    let decision = evaluate_resource_policy(&function_policy, &s3, &event);
    assert_eq!(
        (decision.verdict, decision.sid()),
        (Verdict::Allowed, Some("hybridlab-uploads"))
    );
    // Another bucket, another account, another service, another function.
    let other_bucket = s3_event_invoke(function, "someone-elses-bucket", "123456789012");
    assert!(!evaluate_resource_policy(&function_policy, &s3, &other_bucket).is_allowed());
    let other_account = s3_event_invoke(function, "hybridlab-uploads-abcd1234", "210987654321");
    assert!(!evaluate_resource_policy(&function_policy, &s3, &other_account).is_allowed());
    let sns = Caller::Service("sns.amazonaws.com".into());
    assert!(!evaluate_resource_policy(&function_policy, &sns, &event).is_allowed());
    let other_function = s3_event_invoke(
        &format!("{function}-2"),
        "hybridlab-uploads-abcd1234",
        "123456789012",
    );
    assert!(!evaluate_resource_policy(&function_policy, &s3, &other_function).is_allowed());
    // A principal of the account, named by account id.
    let account_policy = policy(
        "p",
        json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "lambda:InvokeFunction", "Resource": function}]}),
    );
    let role = Caller::Principal {
        account: "123456789012".into(),
        arns: vec!["arn:aws:sts::123456789012:assumed-role/r/s".into()],
    };
    let invoke = request("lambda:InvokeFunction", function);
    assert!(evaluate_resource_policy(&account_policy, &role, &invoke).is_allowed());
    assert!(!evaluate_resource_policy(&account_policy, &s3, &invoke).is_allowed());
}

/// Within one account a bucket policy adds to the caller's own: either may allow, and a deny
/// in either refuses (and says it was the resource's).
#[test]
fn a_bucket_policy_allows_or_denies_beside_the_roles_own() {
    let role = Caller::Principal {
        account: "123456789012".into(),
        arns: vec![
            "arn:aws:sts::123456789012:assumed-role/reader/i-1".into(),
            "arn:aws:iam::123456789012:role/reader".into(),
        ],
    };
    let other_role = Caller::Principal {
        account: "123456789012".into(),
        arns: vec!["arn:aws:iam::123456789012:role/writer".into()],
    };
    let read = request("s3:GetObject", "arn:aws:s3:::b/k");
    let delete = request("s3:DeleteObject", "arn:aws:s3:::b/k");
    let own = policy(
        "own",
        json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]}),
    );
    let bucket = policy(
        "the bucket policy of b",
        json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/reader"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}
        ]}),
    );
    // The bucket's allow is enough for the role it names, not for another.
    assert!(evaluate_with_resource_policy(&[], Some((&bucket, &role)), &read).is_allowed());
    assert!(!evaluate_with_resource_policy(&[], Some((&bucket, &other_role)), &read).is_allowed());
    // Its deny wins over the role's own allow, and is the resource's.
    let denied =
        evaluate_with_resource_policy(std::slice::from_ref(&own), Some((&bucket, &role)), &delete);
    assert_eq!(
        (denied.verdict, denied.sid()),
        (Verdict::ExplicitDeny, Some("NoDeletes"))
    );
    assert!(denied.statement.as_ref().is_some_and(|s| s.resource_based));
    // Without the bucket policy the role's own allow stands.
    assert!(evaluate_with_resource_policy(std::slice::from_ref(&own), None, &delete).is_allowed());
}
