//! The lab's Lambda functions. `proxy` takes `{"image_url": ...}`, calls the image server on
//! EC2 synchronously and returns its answer with the Lambda's own timings; `resizer` (feature
//! `resizer`) turns each uploaded object an S3 event names into variants and moves its row
//! from PENDING to COMPLETED or FAILED. Handlers live in modules that take plain inputs so they
//! are tested without the Lambda runtime.

pub mod proxy;
#[cfg(feature = "resizer")]
pub mod resizer;
