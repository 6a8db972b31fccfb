//! Every sample of a run as CSV (`hybridlab bench --csv`): one row per invocation, times in
//! microseconds, durations in milliseconds, for spreadsheets and pandas.

use std::path::Path;

use crate::model::{Run, Sample};
use crate::run_file::SaveError;

/// The CSV header and one row per sample; times in microseconds, durations in milliseconds.
pub const CSV_HEADER: &str = "run,seq,intended_us,sent_us,done_us,latency_us,outcome,lambda_duration_ms,billed_duration_ms,init_duration_ms,max_memory_mb,ec2_total_ms,ec2_download_ms,ec2_decode_ms,ec2_resize_ms,ec2_encode_ms,ec2_s3_ms,ec2_dynamodb_ms,error";

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// One CSV row of `sample` of run `label`.
pub fn csv_row(label: &str, sample: &Sample) -> String {
    let opt = |value: Option<f64>| value.map(|v| format!("{v}")).unwrap_or_default();
    let report = sample.lambda.as_ref();
    let stage = |name: &str| {
        sample.ec2_ms.as_ref().and_then(|timings| {
            timings
                .stages()
                .into_iter()
                .find(|(stage, _)| *stage == name)
                .map(|(_, ms)| ms)
        })
    };
    [
        csv_field(label),
        sample.seq.to_string(),
        sample.intended_us.to_string(),
        sample.sent_us.to_string(),
        sample.done_us.to_string(),
        sample.latency_us().to_string(),
        sample.outcome.to_string(),
        opt(report.map(|r| r.duration_ms)),
        opt(report.map(|r| r.billed_duration_ms)),
        opt(report.and_then(|r| r.init_duration_ms)),
        report
            .map(|r| r.max_memory_used_mb.to_string())
            .unwrap_or_default(),
        opt(stage("total")),
        opt(stage("download")),
        opt(stage("decode")),
        opt(stage("resize")),
        opt(stage("encode")),
        opt(stage("s3")),
        opt(stage("dynamodb")),
        csv_field(sample.error.as_deref().unwrap_or_default()),
    ]
    .join(",")
}

/// Writes every sample of `runs` to `path` as CSV.
pub fn write_csv(path: &Path, runs: &[Run]) -> Result<(), SaveError> {
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for run in runs {
        for sample in &run.samples {
            text.push_str(&csv_row(&run.config.label, sample));
            text.push('\n');
        }
    }
    std::fs::write(path, text).map_err(|cause| SaveError::Write {
        path: path.to_owned(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    #[test]
    fn csv_rows_quote_what_needs_quoting() {
        let sample = Sample {
            seq: 3,
            intended_us: 10,
            sent_us: 12,
            done_us: 1_012,
            outcome: Outcome::Ec2Error,
            lambda: None,
            ec2_ms: None,
            ec2_round_trip_ms: None,
            error: Some("download_failed: 404, \"gone\"".into()),
        };
        let row = csv_row("c=1", &sample);
        assert_eq!(
            row,
            "c=1,3,10,12,1012,1002,ec2_error,,,,,,,,,,,,\"download_failed: 404, \"\"gone\"\"\""
        );
        assert_eq!(
            CSV_HEADER.split(',').count(),
            19,
            "every row has as many fields as the header"
        );
    }
}
