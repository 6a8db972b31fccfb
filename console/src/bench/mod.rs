//! The benchmark engine: closed or open loop invocations of a function, every one recorded as
//! a [`model::Sample`], summarised into HdrHistograms ([`stats`]), saved as a run file; and
//! the event-driven pipeline under upload load ([`uploads`]).

pub mod command;
pub mod engine;
pub mod model;
pub mod signed;
pub mod stats;
pub mod uploads;
