//! IAM policy documents as AWS accepts them, and their evaluation for one account without
//! SCPs, permission boundaries or session policies
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
//! an explicit `Deny` in any policy wins, else any `Allow`, else the request is implicitly
//! denied.
//!
//! Policy variables (`${aws:username}`) are replaced by the request's condition key of that
//! name when the document's `Version` is `2012-10-17` and the request has one value for it;
//! otherwise the element naming them matches nothing, as IAM does with a key the request
//! lacks. Documents without that version read `${...}` as plain text, as IAM does.
//!
//! Not modelled: SCPs, permission boundaries, session policies and cross-account access
//! (where both sides must allow). A resource policy is evaluated alone
//! ([`evaluate_resource_policy`]), for the edge to combine with the caller's identity
//! policies.

use serde_json::{Map, Value};

use super::condition::{self, Condition, Outcome};
use super::context::RequestContext;
use super::pattern::{self, Flavor, Glob, Variables};

/// Why a document is not a policy AWS would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {policy}: not JSON: {reason}")]
    NotJson { policy: String, reason: String },
    #[error("policy {policy}: {reason}")]
    Malformed { policy: String, reason: String },
}

/// One identity policy (a role's inline policy or an attached managed policy) or a resource
/// policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    name: String,
    /// `Version: 2012-10-17`: policy variables are substituted.
    variables: bool,
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// `Action` or `NotAction`, `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listed<T> {
    Is(Vec<T>),
    Not(Vec<T>),
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    sid: Option<String>,
    effect: Effect,
    /// Compiled once, lower-cased: actions match without case and take no variables.
    actions: Listed<Vec<Glob>>,
    /// Compiled per request: resources may name policy variables.
    resources: Option<Listed<String>>,
    principal: Option<Listed<Principal>>,
    conditions: Vec<Condition>,
}

/// One entry of `Principal`: `"*"`, or a kind (`AWS`, `Service`, `Federated`,
/// `CanonicalUser`) and a value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Anyone,
    Of { kind: String, value: String },
}

/// Who sends a request, for resource policies (identity policies ignore `Principal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An AWS service acting for a resource (`s3.amazonaws.com` delivering an event).
    Service(String),
    /// An IAM principal: its account and the ARNs it goes by (for a role session the session
    /// ARN `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` and the role's ARN).
    Principal { account: String, arns: Vec<String> },
}

/// Which statement decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The policy's name as given to [`Policy::parse`].
    pub policy: String,
    pub sid: Option<String>,
    /// Its position in the policy's `Statement` list.
    pub index: usize,
    /// It is a resource's policy (a bucket's, a function's), not the caller's.
    pub resource_based: bool,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No statement allows the request.
    ImplicitDeny,
    /// A `Deny` statement matches it.
    ExplicitDeny,
}

/// A statement that did not apply because its condition uses an operator this engine does
/// not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOperator {
    pub statement: StatementRef,
    pub operator: String,
}

/// What the policies say about one request context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The matching `Deny`, or the first matching `Allow`; `None` for an implicit deny.
    pub statement: Option<StatementRef>,
    /// Statements skipped for an unknown condition operator (for debugging refusals).
    pub unknown_operators: Vec<UnknownOperator>,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allowed
    }

    /// The deciding statement's `Sid`, if it has one.
    pub fn sid(&self) -> Option<&str> {
        self.statement.as_ref().and_then(|s| s.sid.as_deref())
    }
}

impl Policy {
    /// Parses a policy document, named `name` in decisions (an inline policy's name or a
    /// managed policy's ARN). The document may be URL-encoded, as IAM's `GetRolePolicy` and
    /// `GetPolicyVersion` return it.
    pub fn parse(name: &str, document: &str) -> Result<Self, PolicyError> {
        let trimmed = document.trim_start();
        let decoded;
        let text = if trimmed.starts_with('{') {
            document
        } else {
            decoded = super::request::percent_decode(document);
            &decoded
        };
        let value: Value = serde_json::from_str(text).map_err(|err| PolicyError::NotJson {
            policy: name.to_owned(),
            reason: err.to_string(),
        })?;
        Self::from_json(name, &value)
    }

    /// Reads a policy document already parsed as JSON.
    pub fn from_json(name: &str, document: &Value) -> Result<Self, PolicyError> {
        let malformed = |reason: String| PolicyError::Malformed {
            policy: name.to_owned(),
            reason,
        };
        let Value::Object(fields) = document else {
            return Err(malformed("the document is not a JSON object".into()));
        };
        let variables = match fields.get("Version") {
            None => false,
            Some(Value::String(v)) if v == "2012-10-17" => true,
            Some(Value::String(v)) if v == "2008-10-17" => false,
            Some(other) => return Err(malformed(format!("unknown Version {other}"))),
        };
        for key in fields.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(format!("unknown top-level element {key}")));
            }
        }
        let statements = match fields.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
            Some(Value::Object(_)) => vec![&fields["Statement"]],
            _ => {
                return Err(malformed(
                    "Statement must be an object or a non-empty list".into(),
                ));
            }
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(index, statement)| {
                parse_statement(statement)
                    .map_err(|reason| malformed(format!("statement {index}: {reason}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: name.to_owned(),
            variables,
            statements,
        })
    }

    /// The name given to [`Policy::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn strings(value: &Value, element: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("{element} holds {other}, not a string")),
            })
            .collect(),
        other => Err(format!(
            "{element} must be a string or a non-empty list of strings, not {other}"
        )),
    }
}

/// `Action` xor `NotAction` (or the `Resource` pair); `required`: one must be there.
fn listed(
    fields: &Map<String, Value>,
    positive: &str,
    negative: &str,
    required: bool,
) -> Result<Option<Listed<String>>, String> {
    match (fields.get(positive), fields.get(negative)) {
        (Some(_), Some(_)) => Err(format!("both {positive} and {negative}")),
        (Some(value), None) => Ok(Some(Listed::Is(strings(value, positive)?))),
        (None, Some(value)) => Ok(Some(Listed::Not(strings(value, negative)?))),
        (None, None) if required => Err(format!("neither {positive} nor {negative}")),
        (None, None) => Ok(None),
    }
}

fn parse_statement(statement: &Value) -> Result<Statement, String> {
    let Value::Object(fields) = statement else {
        return Err("not a JSON object".into());
    };
    for key in fields.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(format!("unknown element {key}"));
        }
    }
    let sid = match fields.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(other) => return Err(format!("Sid {other} is not a string")),
    };
    let effect = match fields.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        other => {
            return Err(format!(
                "Effect must be \"Allow\" or \"Deny\", not {other:?}"
            ));
        }
    };
    let compile_actions = |patterns: Vec<String>| {
        patterns
            .into_iter()
            .map(|pattern| {
                pattern::compile(
                    &pattern.to_lowercase(),
                    Flavor::Anything,
                    &Variables::Literal,
                )
                .unwrap_or_default()
            })
            .collect()
    };
    let actions = match listed(fields, "Action", "NotAction", true)? {
        Some(Listed::Is(patterns)) => Listed::Is(compile_actions(patterns)),
        Some(Listed::Not(patterns)) => Listed::Not(compile_actions(patterns)),
        None => return Err("neither Action nor NotAction".into()),
    };
    // Identity policies need one of the two; a resource policy may leave them out (its
    // resource is implied).
    let resources = listed(fields, "Resource", "NotResource", false)?;
    let principal = match (fields.get("Principal"), fields.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err("both Principal and NotPrincipal".into()),
        (Some(value), None) => Some(Listed::Is(principals(value)?)),
        (None, Some(value)) => Some(Listed::Not(principals(value)?)),
        (None, None) => None,
    };
    let conditions = match fields.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(blocks)) => conditions(blocks)?,
        Some(other) => return Err(format!("Condition must be an object, not {other}")),
    };
    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
        principal,
        conditions,
    })
}

fn principals(value: &Value) -> Result<Vec<Principal>, String> {
    match value {
        Value::String(s) if s == "*" => Ok(vec![Principal::Anyone]),
        Value::Object(kinds) => {
            let mut all = Vec::new();
            for (kind, values) in kinds {
                for value in strings(values, "Principal")? {
                    all.push(Principal::Of {
                        kind: kind.to_ascii_lowercase(),
                        value,
                    });
                }
            }
            Ok(all)
        }
        other => Err(format!("Principal must be \"*\" or an object, not {other}")),
    }
}

fn conditions(blocks: &Map<String, Value>) -> Result<Vec<Condition>, String> {
    let mut all = Vec::new();
    for (operator, keys) in blocks {
        let Value::Object(keys) = keys else {
            return Err(format!("Condition {operator} must map keys to values"));
        };
        for (key, values) in keys {
            let scalar = |value: &Value| match value {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!(
                    "Condition {operator} {key}: {other} is not a value"
                )),
            };
            let values = match values {
                Value::Array(items) => items.iter().map(scalar).collect::<Result<_, _>>()?,
                value => vec![scalar(value)?],
            };
            all.push(Condition {
                operator: operator.clone(),
                key: key.clone(),
                values,
            });
        }
    }
    Ok(all)
}

/// Whether a statement applies to a request.
enum Applies {
    Yes,
    No,
    UnknownOperator(String),
}

impl Statement {
    fn action_matches(&self, action: &str) -> bool {
        let action = pattern::known(&action.to_lowercase());
        let any =
            |patterns: &[Vec<Glob>]| patterns.iter().any(|p| pattern::matches(p, &action, false));
        match &self.actions {
            Listed::Is(patterns) => any(patterns),
            Listed::Not(patterns) => !any(patterns),
        }
    }

    fn resource_matches(
        &self,
        context: &RequestContext,
        variables: &Variables<'_>,
        implied: bool,
    ) -> bool {
        let shapes = context.resource.shapes();
        let any = |patterns: &[String]| {
            patterns.iter().any(|pattern| {
                pattern::compile(pattern, Flavor::Arn, variables).is_some_and(|globs| {
                    shapes
                        .iter()
                        .any(|shape| pattern::matches(&globs, shape, false))
                })
            })
        };
        match &self.resources {
            Some(Listed::Is(patterns)) => any(patterns),
            Some(Listed::Not(patterns)) => !any(patterns),
            // A resource policy's statement is about the resource it is attached to; an
            // identity policy's statement without either element is one AWS would not have
            // accepted, and grants nothing.
            None => implied,
        }
    }

    fn principal_matches(&self, caller: &Caller) -> bool {
        let matches = |principals: &[Principal]| principals.iter().any(|p| principal_is(p, caller));
        match &self.principal {
            None => false,
            Some(Listed::Is(principals)) => matches(principals),
            Some(Listed::Not(principals)) => !matches(principals),
        }
    }

    fn applies(
        &self,
        context: &RequestContext,
        variables: &Variables<'_>,
        resource_policy: bool,
    ) -> Applies {
        if !self.action_matches(&context.action)
            || !self.resource_matches(context, variables, resource_policy)
        {
            return Applies::No;
        }
        match condition::evaluate(&self.conditions, context, variables) {
            Outcome::Holds => Applies::Yes,
            Outcome::Fails => Applies::No,
            Outcome::UnknownOperator(operator) => Applies::UnknownOperator(operator),
        }
    }
}

fn principal_is(principal: &Principal, caller: &Caller) -> bool {
    match (principal, caller) {
        (Principal::Anyone, _) => true,
        (Principal::Of { kind, value }, Caller::Service(service)) => {
            kind == "service" && value == service
        }
        (Principal::Of { kind, value }, Caller::Principal { account, arns }) => {
            kind == "aws"
                && (value == "*"
                    || value == account
                    || *value == format!("arn:aws:iam::{account}:root")
                    || arns.iter().any(|arn| arn == value))
        }
    }
}

/// The single value of a condition key, for policy variables.
fn variable_lookup(context: &RequestContext) -> impl Fn(&str) -> Option<String> + '_ {
    |key| match context.key(key) {
        Some([value]) => Some(value.clone()),
        _ => None,
    }
}

/// Evaluates `context` against a principal's identity policies: explicit deny, else allow,
/// else implicit deny. `Principal` elements are ignored.
pub fn evaluate(policies: &[Policy], context: &RequestContext) -> Decision {
    decide(policies.iter().map(|policy| (policy, None)), context)
}

/// Evaluates `context` against a resource policy (a function's policy, a bucket policy) for
/// `caller`: only statements whose `Principal` names the caller apply. For one account, AWS
/// allows a request that either this or the caller's identity policies allow, unless either
/// denies it explicitly.
pub fn evaluate_resource_policy(
    policy: &Policy,
    caller: &Caller,
    context: &RequestContext,
) -> Decision {
    decide(std::iter::once((policy, Some(caller))), context)
}

/// Evaluates `context` against the caller's identity policies and, if there is one, the
/// resource's policy for `caller`, as AWS does within one account: allowed if either allows
/// it, unless either denies it explicitly.
pub fn evaluate_with_resource_policy(
    identity: &[Policy],
    resource: Option<(&Policy, &Caller)>,
    context: &RequestContext,
) -> Decision {
    decide(
        identity
            .iter()
            .map(|policy| (policy, None))
            .chain(resource.map(|(policy, caller)| (policy, Some(caller)))),
        context,
    )
}

fn decide<'a>(
    policies: impl Iterator<Item = (&'a Policy, Option<&'a Caller>)>,
    context: &RequestContext,
) -> Decision {
    let lookup = variable_lookup(context);
    let mut allowed = None;
    let mut unknown_operators = Vec::new();
    for (policy, caller) in policies {
        let variables = if policy.variables {
            Variables::Substitute(&lookup)
        } else {
            Variables::Literal
        };
        for (index, statement) in policy.statements.iter().enumerate() {
            if let Some(caller) = caller
                && !statement.principal_matches(caller)
            {
                continue;
            }
            let reference = || StatementRef {
                policy: policy.name.clone(),
                sid: statement.sid.clone(),
                index,
                resource_based: caller.is_some(),
            };
            match statement.applies(context, &variables, caller.is_some()) {
                Applies::No => {}
                Applies::UnknownOperator(operator) => unknown_operators.push(UnknownOperator {
                    statement: reference(),
                    operator,
                }),
                Applies::Yes if statement.effect == Effect::Deny => {
                    return Decision {
                        verdict: Verdict::ExplicitDeny,
                        statement: Some(reference()),
                        unknown_operators,
                    };
                }
                Applies::Yes => {
                    allowed.get_or_insert_with(reference);
                }
            }
        }
    }
    Decision {
        verdict: if allowed.is_some() {
            Verdict::Allowed
        } else {
            Verdict::ImplicitDeny
        },
        statement: allowed,
        unknown_operators,
    }
}

/// Evaluates every check of a request in order and returns the first refused one with its
/// decision, or `None` when all are allowed.
pub fn first_refusal<'a>(
    policies: &[Policy],
    checks: &'a [RequestContext],
) -> Option<(&'a RequestContext, Decision)> {
    checks.iter().find_map(|check| {
        let decision = evaluate(policies, check);
        (!decision.is_allowed()).then_some((check, decision))
    })
}
