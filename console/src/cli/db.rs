//! `hybridlab db`: the stack's metadata table seen from the terminal: scan it (filtered,
//! paged, capped) or get one row by image id. `--json` prints rows in DynamoDB's typed JSON so
//! nothing is lost on the way (exact numbers, binaries, sets); the text output is for people.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::stdout_colour;
use super::table::{Align, Cell, Table, emit, emit_json};
use crate::lab::Lab;
use crate::lab::db::filter::{AttributeFilter, parse_filter};
use crate::lab::db::paging::ScanOutcome;
use crate::lab::db::typed_json::{Item, item_to_plain_json, item_to_typed_json};
use crate::lab::db::{get_row, scalar, scan_table, status_tone};
use crate::lab::target::TargetChoice;

const EXIT_CODES: &str = "\
Exit codes:
  0  done (a scan that finds no rows included)
  1  failed: unknown stack, stack not deployed, endpoint unreachable, credentials
  2  bad command line (an unknown flag, a malformed --filter or --limit)
  3  no row with that image id (db get)";

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct DbArgs {
    #[command(subcommand)]
    pub action: DbAction,

    /// The stack whose table to read (default: the target's only stack).
    #[arg(long, global = true, value_name = "ID")]
    pub stack: Option<String>,

    /// Print one JSON document on standard output, rows in DynamoDB's typed JSON
    /// (`{"size_bytes": {"N": "1234"}}`), instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// Rows of the table in scan order: image id, status, size, dimensions, created at.
    #[command(after_help = EXIT_CODES)]
    Scan {
        /// At most this many rows, across as many pages as it takes.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,

        /// Only rows whose top-level attribute NAME is the string VALUE, e.g. status=FAILED.
        /// Repeat to require several (they are ANDed).
        #[arg(long = "filter", value_name = "NAME=VALUE", value_parser = parse_filter)]
        filters: Vec<AttributeFilter>,

        /// Items DynamoDB reads per request (its `Limit`; before the filter). Default: as
        /// many as fit in DynamoDB's 1 MB page.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
        page_size: Option<i32>,
    },
    /// One row by its image id, as JSON (typed with --json).
    #[command(after_help = EXIT_CODES)]
    Get {
        /// The row's `image_id`, as `hybridlab db scan` lists them.
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        image_id: String,
    },
}

pub async fn run(target: &TargetChoice, args: DbArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::open(target, args.stack.as_deref()).await?;
    match args.action {
        DbAction::Scan {
            limit,
            filters,
            page_size,
        } => {
            let limit = limit.map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
            scan(&lab, limit, &filters, page_size, args.json).await?;
            Ok(ExitCode::SUCCESS)
        }
        DbAction::Get { image_id } => match get_row(&lab, &image_id).await? {
            Some(item) => {
                print_row(&item, &lab, args.json)?;
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!(
                    "hybridlab: no row with image_id `{image_id}` in the table {}; `hybridlab db scan --stack {}` lists the image ids",
                    lab.names.table, lab.stack
                );
                Ok(ExitCode::from(super::exit::NOT_FOUND))
            }
        },
    }
}

async fn scan(
    lab: &Lab,
    limit: Option<usize>,
    filters: &[AttributeFilter],
    page_size: Option<i32>,
    json: bool,
) -> anyhow::Result<()> {
    let table = &lab.names.table;
    let outcome = scan_table(lab, limit, filters, page_size).await?;

    if json {
        let items = outcome
            .items
            .iter()
            .map(item_to_typed_json)
            .collect::<Result<Vec<_>, _>>()
            .context("a row does not convert to typed JSON")?;
        emit_json(&json!({
                "stack": lab.stack,
                "table": table,
                "count": items.len(),
                "scanned_count": outcome.scanned,
                "pages": outcome.pages,
                "complete": outcome.complete,
                "items": items,
        }))
    } else {
        emit(&render_scan(table, filters, &outcome, stdout_colour()))
    }
}

/// The human scan: a table of the main columns and a count.
pub fn render_scan(
    table_name: &str,
    filters: &[AttributeFilter],
    outcome: &ScanOutcome,
    colour: bool,
) -> String {
    let matching = if filters.is_empty() {
        String::new()
    } else {
        format!(
            " matching {}",
            filters
                .iter()
                .map(|filter| format!("{}={}", filter.name, filter.value))
                .collect::<Vec<_>>()
                .join(" and ")
        )
    };
    let effort = format!(
        "scanned {} item{} in {} page{}",
        outcome.scanned,
        if outcome.scanned == 1 { "" } else { "s" },
        outcome.pages,
        if outcome.pages == 1 { "" } else { "s" },
    );
    if outcome.items.is_empty() {
        return format!("No rows in {table_name}{matching} ({effort})\n");
    }
    let mut table = Table::new(&[
        ("IMAGE ID", Align::Left),
        ("STATUS", Align::Left),
        ("SIZE", Align::Right),
        ("DIMENSIONS", Align::Left),
        ("CREATED AT", Align::Left),
    ]);
    for item in &outcome.items {
        let status = scalar(item, "status").unwrap_or("-");
        let dimensions = match (scalar(item, "width"), scalar(item, "height")) {
            (Some(width), Some(height)) => format!("{width}x{height}"),
            _ => "-".to_owned(),
        };
        table.push(vec![
            Cell::plain(scalar(item, "image_id").unwrap_or("?")),
            Cell::toned(status, status_tone(status)),
            Cell::plain(scalar(item, "size_bytes").unwrap_or("-")),
            Cell::plain(dimensions),
            Cell::plain(scalar(item, "created_at").unwrap_or("-")),
        ]);
    }
    let count = outcome.items.len();
    let more = if outcome.complete {
        ""
    } else {
        "; more rows may match: raise --limit"
    };
    format!(
        "{}\n{count} row{}{matching} in {table_name} ({effort}){more}\n",
        table.render(colour).join("\n"),
        if count == 1 { "" } else { "s" },
    )
}

fn print_row(item: &Item, lab: &Lab, json: bool) -> anyhow::Result<()> {
    let document: Value = if json {
        json!({
            "stack": lab.stack,
            "table": lab.names.table,
            "item": item_to_typed_json(item).context("the row does not convert to typed JSON")?,
        })
    } else {
        item_to_plain_json(item)
    };
    emit(&format!("{}\n", serde_json::to_string_pretty(&document)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::db::page_limit;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn row(id: &str, status: &str, size: Option<&str>) -> Item {
        let mut item = Item::from([
            ("image_id".to_owned(), AttributeValue::S(id.into())),
            ("status".to_owned(), AttributeValue::S(status.into())),
            (
                "created_at".to_owned(),
                AttributeValue::S("2026-01-01T00:00:00Z".into()),
            ),
        ]);
        if let Some(size) = size {
            item.insert("size_bytes".into(), AttributeValue::N(size.into()));
            item.insert("width".into(), AttributeValue::N("1600".into()));
            item.insert("height".into(), AttributeValue::N("1000".into()));
        }
        item
    }

    #[test]
    fn the_scan_table_shows_the_main_columns_and_a_count() {
        let outcome = ScanOutcome {
            items: vec![
                row("a1", "COMPLETED", Some("123456")),
                row("b2", "FAILED", None),
            ],
            scanned: 7,
            pages: 2,
            complete: false,
            resume: None,
        };
        let filters = [parse_filter("status=FAILED").expect("valid")];
        let text = render_scan("t", &filters, &outcome, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "IMAGE ID  STATUS       SIZE  DIMENSIONS  CREATED AT",
                "a1        COMPLETED  123456  1600x1000   2026-01-01T00:00:00Z",
                "b2        FAILED          -  -           2026-01-01T00:00:00Z",
                "2 rows matching status=FAILED in t (scanned 7 items in 2 pages); more rows may match: raise --limit",
            ]
        );
    }

    #[test]
    fn an_empty_scan_says_what_was_looked_at() {
        let outcome = ScanOutcome {
            pages: 1,
            complete: true,
            ..ScanOutcome::default()
        };
        assert_eq!(
            render_scan("t", &[], &outcome, false),
            "No rows in t (scanned 0 items in 1 page)\n"
        );
    }

    #[test]
    fn the_page_limit_saves_reads_only_when_nothing_is_filtered_out() {
        assert_eq!(page_limit(Some(2), Some(10), true), Some(2));
        assert_eq!(page_limit(None, Some(10), false), Some(10));
        assert_eq!(page_limit(None, Some(10), true), None);
        assert_eq!(page_limit(None, None, false), None);
        assert_eq!(page_limit(None, Some(usize::MAX), false), Some(i32::MAX));
    }
}
