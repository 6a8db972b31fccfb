//! IAM for the sandbox's principals, as pure functions the edge calls: [`classify`] turns an
//! HTTP request into the access key that signed it and every IAM action and resource ARN AWS
//! would authorise it as; [`evaluate`] decides one of those against a role's policies as AWS's
//! evaluation logic does (explicit deny, else allow, else implicit deny); [`refusal`] is the
//! error AWS sends, per service, when it refuses. No networking here: the edge maps access keys
//! to roles, fetches their policies and answers.
//!
//! ```text
//! let classification = classify(&HttpRequestParts::new(&parts, &body), account, region, &lookups);
//! if let Classification::Known(authorization) = &classification
//!     && let Some((check, decision)) = first_refusal(&role_policies, &authorization.checks)
//! {
//!     let refused = Refused { principal, check, decision: &decision, request_id, head };
//!     return refusal(authorization.service, &refused); // status, headers, body
//! }
//! ```
//!
//! What is modelled, and what is not, is written at the top of each file: `policy.rs` and
//! `condition.rs` (the policy language), `request.rs` and `request/` (the services and
//! operations), `refusal.rs` (the error shapes).

mod condition;
mod context;
mod pattern;
mod policy;
mod refusal;
mod request;

pub use context::{RequestContext, Resource};
pub use policy::{
    Caller, Decision, Policy, PolicyError, StatementRef, UnknownOperator, Verdict, evaluate,
    evaluate_resource_policy, evaluate_with_resource_policy, first_refusal,
};
pub use refusal::{
    RefusalResponse, Refused, ServiceError, TokenProblem, error_response, refusal, refusal_message,
    token_refusal,
};
pub(crate) use request::percent_decode;
pub use request::{
    Authorization, Classification, Credential, HttpRequestParts, Lookups, NoLookups, Service,
    SigningScheme, body_needed, classify, credential, lambda_function_arn, s3_event_invoke,
    service_invoke,
};

#[cfg(test)]
mod tests;
