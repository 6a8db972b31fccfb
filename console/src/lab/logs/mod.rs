//! The stack's logs as data: the function's and the server's log groups read (polled, or
//! CloudWatch's live tail on AWS) by [`tail::LogTail`], merged in time order by
//! [`merge::LogMerge`], as [`entry::LogEntry`]s with their REPORT lines parsed.

pub mod entry;
pub mod merge;
pub mod tail;
