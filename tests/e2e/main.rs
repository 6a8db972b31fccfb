//! End-to-end tests: the image server, the proxy Lambda's handler, S3 and DynamoDB on moto's
//! server, and images served from loopback. One binary; a module per area.

mod common;
mod lambda_proxy;
mod server_api;
mod server_errors;
mod server_load;
mod server_process;
