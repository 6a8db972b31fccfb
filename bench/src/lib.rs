//! The benchmark engine and its report: closed- and open-loop invocations of a Lambda function
//! sent by a SigV4-signed invoker (and the pipeline's uploads, and the jobs variant's jobs),
//! recorded as samples, summarised into HdrHistograms, saved as a run file, and turned into a
//! Markdown report with SVG plots. No terminal, no command line.

pub mod engine;
pub mod invocation;
pub mod jobs;
pub mod memory;
pub mod model;
pub mod report;
pub mod run_file;
pub mod samples_csv;
pub mod signed;
pub mod stats;
pub mod uploads;
