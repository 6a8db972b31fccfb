//! End-to-end tests: the image server, the proxy and resizer Lambdas' handlers, S3 and DynamoDB on moto's
//! server, images served from loopback, and the local sandbox running the lab's functions and
//! instances. One binary; a module per area.

mod aws_timing;
mod cli_aws_target;
mod cli_bench;
mod cli_bench_memory;
mod cli_config;
mod cli_data;
mod cli_gallery;
mod cli_logs;
mod cli_report;
mod common;
mod console;
mod console_panes;
mod gallery_access;
mod hardening_net;
mod http_api;
mod iac;
mod job_worker;
mod lambda_proxy;
mod operator_policy;
mod pipeline;
mod resizer;
mod sandbox_cli;
mod sandbox_dynamodb;
mod sandbox_ec2;
mod sandbox_hardening;
mod sandbox_iam;
mod sandbox_lambda;
mod sandbox_principals;
mod sandbox_service;
mod server_api;
mod server_bombs;
mod server_errors;
mod server_load;
mod server_process;
mod server_upload;
mod stack;
mod stack_hardening;
mod stream_mapping;
mod unfinished_writes;
mod upload_binding;
mod user_data;
