//! The lab's Lambda functions: `proxy` calls the image server on EC2 synchronously with an image
//! URL and returns its answer with the Lambda's own timings; `resizer` (feature `resizer`) makes
//! the variants of each uploaded object an S3 event names and moves its row to COMPLETED or FAILED;
//! the job-worker variant's (feature `jobs`): `submit` behind the HTTP API writes jobs, and
//! `launcher` starts a worker instance for each job the jobs table's stream reports, under
//! the stack's cap.
//!
//! Handlers live in modules that take plain inputs, so they are tested without the Lambda
//! runtime.

#[cfg(feature = "jobs")]
pub mod launcher;
pub mod proxy;
#[cfg(feature = "resizer")]
pub mod resizer;
#[cfg(feature = "jobs")]
pub mod submit;
