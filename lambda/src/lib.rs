//! The lab's Lambda functions. `proxy` takes `{"image_url": ...}`, calls the image server on
//! EC2 synchronously and returns its answer with the Lambda's own timings. Handlers live in
//! modules that take plain inputs so they are tested without the Lambda runtime.

pub mod proxy;
