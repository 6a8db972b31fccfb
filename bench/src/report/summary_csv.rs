//! `summary.csv`: one row per run and measure, for a spreadsheet or pandas, with the numbers
//! the report's tables show. Times are in milliseconds, costs in US dollars.

use std::fmt::Write as _;

use super::overview::RunFacts;

/// The file's name inside the report's folder.
pub const SUMMARY_CSV_FILE: &str = "summary.csv";

/// The header row.
pub const SUMMARY_CSV_HEADER: &str = "file,label,kind,memory_mb,measure,count,p50_ms,p90_ms,p99_ms,max_ms,mean_ms,stdev_ms,invocations,errors,cost_usd";

/// A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The whole file: the header, then per run each of its measures. A run with no measure (no
/// invocation answered) still has one row, with the measure columns empty, so its errors and
/// cost are not lost.
pub fn summary_csv(runs: &[RunFacts<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{SUMMARY_CSV_HEADER}");
    for run in runs {
        let run_cells = [
            csv_field(&run.file.display().to_string()),
            csv_field(run.label),
            run.kind.as_str().to_owned(),
            run.memory.map(|(mb, _)| mb.to_string()).unwrap_or_default(),
        ];
        let totals = [
            run.invocations.to_string(),
            run.errors.to_string(),
            run.lambda_usd
                .map(|usd| format!("{usd:.9}"))
                .unwrap_or_default(),
        ];
        let mut write_row = |measure: &[String]| {
            let row: Vec<&str> = run_cells
                .iter()
                .chain(measure)
                .chain(&totals)
                .map(String::as_str)
                .collect();
            let _ = writeln!(out, "{}", row.join(","));
        };
        if run.measures.is_empty() {
            write_row(&vec![String::new(); 8]);
        }
        for measure in run.measures {
            write_row(&[
                csv_field(&measure.name),
                measure.count.to_string(),
                format!("{:.3}", measure.p50_ms),
                format!("{:.3}", measure.p90_ms),
                format!("{:.3}", measure.p99_ms),
                format!("{:.3}", measure.max_ms),
                format!("{:.3}", measure.mean_ms),
                format!("{:.3}", measure.stdev_ms),
            ]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::{run_at, upload_run};
    use crate::report::input::{ReportFile, label_all};
    use crate::report::overview::facts;
    use crate::uploads::UploadRunFile;

    #[test]
    fn one_row_per_run_and_measure_with_the_runs_numbers() {
        let mut proxy = run_at("c=2, fast", 2, 40);
        proxy.config.memory_mb = Some(512);
        let client = proxy.summary.measure("client").cloned().expect("client");
        let measures = proxy.summary.measures.len();
        let cost = proxy.summary.cost.total_usd;
        let runs = label_all(vec![
            (
                PathBuf::from("dir/run.json"),
                ReportFile::Bench(RunFile::new(vec![proxy])),
            ),
            (
                PathBuf::from("up.json"),
                ReportFile::Upload(UploadRunFile::new(vec![upload_run(None, None, 5)])),
            ),
        ]);
        let csv = summary_csv(&facts(&runs));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], SUMMARY_CSV_HEADER);
        // The proxy run's measures, then the upload run's four.
        assert_eq!(lines.len(), 1 + measures + 4);
        let columns = SUMMARY_CSV_HEADER.split(',').count();
        let client_row = format!(
            "dir/run.json,\"c=2, fast\",invoke,512,client,40,{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},40,0,{cost:.9}",
            client.p50_ms,
            client.p90_ms,
            client.p99_ms,
            client.max_ms,
            client.mean_ms,
            client.stdev_ms
        );
        assert_eq!(lines[1], client_row);
        let upload_row = lines
            .iter()
            .find(|line| line.contains(",to_final,"))
            .expect("a to_final row");
        assert!(upload_row.starts_with("up.json,upload c=2,upload,,to_final,5,"));
        // No resizer REPORT lines: no cost.
        assert!(upload_row.ends_with(",5,0,"), "{upload_row}");
        assert_eq!(upload_row.split(',').count(), columns);
    }

    #[test]
    fn a_run_without_measures_still_has_a_row() {
        let mut empty = run_at("none", 1, 3);
        empty.summary.measures.clear();
        let runs = label_all(vec![(
            PathBuf::from("e.json"),
            ReportFile::Bench(RunFile::new(vec![empty])),
        )]);
        let csv = summary_csv(&facts(&runs));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        // The memory is the REPORT lines'.
        assert!(
            lines[1].starts_with("e.json,none,invoke,512,,,,,,,,,3,0,"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
