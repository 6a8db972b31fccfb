//! The stack's logs as data: the function's and the server's log groups read (polled, or
//! CloudWatch's live tail on AWS) by [`tail::LogTail`], merged in time order by
//! [`merge::LogMerge`], as [`entry::LogEntry`]s with their REPORT lines parsed; each line
//! read for its level, request id, message and fields by [`line::LogLine`] and laid out for
//! people (columns, tones, control characters escaped) by [`render`].

pub mod entry;
pub mod json_text;
pub mod line;
pub mod merge;
pub mod render;
pub mod tail;
