//! The stack's metadata table as data: a scan with filters and paging, a row by image id,
//! the text of an attribute, and the page the console's DynamoDB view asks for ([`serve`]).
//! Rows are typed JSON's [`typed_json::Item`]; reading an attribute goes through [`scalar`].

pub mod filter;
pub mod paging;
pub mod typed_json;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::scan::ScanError;
use aws_sdk_dynamodb::types::AttributeValue;
use hybridlab_provision::stack::StackClients;
use hybridlab_provision::stack::error::Response;

use super::Lab;
use super::tone::Tone;
use filter::{AttributeFilter, FilterExpression, filter_expression};
use paging::{ScanOutcome, ScanPage, scan_from, scan_up_to};
use typed_json::Item;

/// Every row that matches `filters`, up to `limit`, read `page_size` items a request (see
/// [`page_limit`]).
pub async fn scan_table(
    lab: &Lab,
    limit: Option<usize>,
    filters: &[AttributeFilter],
    page_size: Option<i32>,
) -> anyhow::Result<ScanOutcome> {
    let table = &lab.names.table;
    let expression = filter_expression(filters);
    scan_up_to(limit, |start, wanted| {
        let limit = page_limit(page_size, wanted, expression.is_some());
        scan_page(lab, expression.as_ref(), start, limit)
    })
    .await
    .map_err(|err| lab.explain("dynamodb:Scan", &format!("the table {table}"), err))
}

/// The text of an attribute that is a number, as DynamoDB holds it.
pub fn number<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name)? {
        AttributeValue::N(text) => Some(text),
        _ => None,
    }
}

/// DynamoDB's per-request `Limit`: the page size asked for; without one and without a
/// filter, the rows still wanted (every evaluated item is returned then, so no read is
/// wasted); with a filter, none (a small Limit would only mean more round trips).
pub fn page_limit(page_size: Option<i32>, wanted: Option<usize>, filtered: bool) -> Option<i32> {
    page_size.or_else(|| {
        (!filtered)
            .then_some(wanted?)
            .map(|wanted| i32::try_from(wanted).unwrap_or(i32::MAX).max(1))
    })
}

/// One `Scan` request of the stack's table from `start` (the first page if `None`): at most
/// `limit` items evaluated, those kept that match `expression`.
pub async fn scan_page(
    lab: &Lab,
    expression: Option<&FilterExpression>,
    start: Option<Item>,
    limit: Option<i32>,
) -> Result<ScanPage, SdkError<ScanError, Response>> {
    let mut request = lab
        .clients
        .dynamodb
        .scan()
        .table_name(&lab.names.table)
        .set_exclusive_start_key(start)
        .set_limit(limit);
    if let Some(expression) = expression {
        request = request
            .filter_expression(&expression.expression)
            .set_expression_attribute_names(Some(expression.names.clone()))
            .set_expression_attribute_values(Some(expression.values.clone()));
    }
    let output = request.send().await?;
    Ok(ScanPage {
        items: output.items.unwrap_or_default(),
        scanned: u64::try_from(output.scanned_count).unwrap_or(0),
        // Some emulators answer an empty map at the end instead of none.
        last_key: output.last_evaluated_key.filter(|key| !key.is_empty()),
    })
}

/// The text of an attribute that is a string or a number.
pub fn scalar<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name)? {
        AttributeValue::S(text) | AttributeValue::N(text) => Some(text),
        _ => None,
    }
}

pub fn status_tone(status: &str) -> Tone {
    match status {
        "COMPLETED" => Tone::Good,
        "FAILED" => Tone::Bad,
        _ => Tone::Warn,
    }
}

/// The row of `image_id` in the stack's table, if there is one.
pub async fn get_row(lab: &Lab, image_id: &str) -> anyhow::Result<Option<Item>> {
    let table = &lab.names.table;
    let answer = hybridlab_wire::item::get_row(&lab.clients.dynamodb, table, image_id)
        .send()
        .await
        .map_err(|err| lab.explain("dynamodb:GetItem", &format!("the table {table}"), err))?;
    Ok(answer.item)
}

/// Rows a page shows (and a Scan request evaluates at most).
pub const PAGE_ROWS: usize = 50;

/// One page of rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbPage {
    pub rows: Vec<Item>,
    /// The start key of the next page; `None` on the last.
    pub next: Option<Item>,
    /// Items DynamoDB read for the page, before the filter.
    pub scanned: u64,
}

/// A read the DynamoDB view needs from the network: one page of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct DbRequest {
    pub seq: u64,
    pub stack: Option<String>,
    pub filter: Option<AttributeFilter>,
    pub start: Option<Item>,
}

/// The answer to a [`DbRequest`].
#[derive(Debug)]
pub struct DbUpdate {
    pub seq: u64,
    pub page: Result<DbPage, String>,
}

/// Does the network half of `request`.
pub async fn serve(clients: StackClients, request: DbRequest) -> DbUpdate {
    let page = match Lab::for_listed(clients, request.stack.as_deref()).await {
        Ok(lab) => read_page(&lab, request.filter, request.start)
            .await
            .map_err(|err| format!("{err:#}")),
        Err(err) => Err(format!("{err:#}")),
    };
    DbUpdate {
        seq: request.seq,
        page,
    }
}

async fn read_page(
    lab: &Lab,
    filter: Option<AttributeFilter>,
    start: Option<Item>,
) -> anyhow::Result<DbPage> {
    let table = &lab.names.table;
    let filters: Vec<AttributeFilter> = filter.into_iter().collect();
    let expression = filter_expression(&filters);
    let outcome = scan_from(start, Some(PAGE_ROWS), |start, wanted| {
        // Limit is what is still wanted, filter or not: a page then never holds more rows
        // than fit, so none is cut off and the next page starts right after the last shown.
        let limit = wanted.map(|wanted| i32::try_from(wanted).unwrap_or(i32::MAX).max(1));
        scan_page(lab, expression.as_ref(), start, limit)
    })
    .await
    .map_err(|err| lab.explain("dynamodb:Scan", &format!("the table {table}"), err))?;
    Ok(DbPage {
        rows: outcome.items,
        next: outcome.resume,
        scanned: outcome.scanned,
    })
}
