//! Paging a Scan up to a number of rows. DynamoDB's `Limit` counts the items a page
//! *evaluates*, not the ones the filter lets through, so a page can come back short or empty
//! while more rows match further on: the loop follows LastEvaluatedKey until it has the rows
//! asked for or the table ends. The fetching is a parameter, so the loop is tested without a
//! table.

use std::future::Future;

use super::typed_json::Item;

/// One page as DynamoDB answered it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanPage {
    pub items: Vec<Item>,
    /// Items the page evaluated (ScannedCount), before the filter.
    pub scanned: u64,
    /// Where the next page starts; `None` at the end of the table.
    pub last_key: Option<Item>,
}

/// The rows of a scan and what it took to get them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanOutcome {
    pub items: Vec<Item>,
    pub scanned: u64,
    pub pages: u32,
    /// Whether `items` holds every matching row: the table ended and nothing was cut off.
    pub complete: bool,
    /// Where a scan for the rows after these starts: the last page's LastEvaluatedKey when
    /// every row of that page was kept; `None` at the end of the table, or when rows were cut
    /// off (resuming there would skip them).
    pub resume: Option<Item>,
}

/// Fetches pages with `fetch(start_key, rows_still_wanted)` until `limit` rows (all of them
/// if `None`) or the end of the table.
pub async fn scan_up_to<E, F, Fut>(limit: Option<usize>, fetch: F) -> Result<ScanOutcome, E>
where
    F: FnMut(Option<Item>, Option<usize>) -> Fut,
    Fut: Future<Output = Result<ScanPage, E>>,
{
    scan_from(None, limit, fetch).await
}

/// Like [`scan_up_to`], starting at `start` (an earlier outcome's `resume`): how the console
/// pages through the table a screenful at a time.
pub async fn scan_from<E, F, Fut>(
    start: Option<Item>,
    limit: Option<usize>,
    mut fetch: F,
) -> Result<ScanOutcome, E>
where
    F: FnMut(Option<Item>, Option<usize>) -> Fut,
    Fut: Future<Output = Result<ScanPage, E>>,
{
    let mut outcome = ScanOutcome::default();
    let mut start = start;
    loop {
        let wanted = limit.map(|limit| limit.saturating_sub(outcome.items.len()));
        let page = fetch(start.take(), wanted).await?;
        outcome.pages += 1;
        outcome.scanned += page.scanned;
        let room = wanted.unwrap_or(usize::MAX);
        let cut_off = page.items.len() > room;
        outcome.items.extend(page.items.into_iter().take(room));
        let full = limit.is_some_and(|limit| outcome.items.len() >= limit);
        match page.last_key {
            None => {
                outcome.complete = !cut_off;
                return Ok(outcome);
            }
            Some(key) if full => {
                outcome.resume = (!cut_off).then_some(key);
                return Ok(outcome);
            }
            Some(key) => start = Some(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    fn row(id: usize) -> Item {
        Item::from([(
            "image_id".to_owned(),
            AttributeValue::S(format!("img-{id}")),
        )])
    }

    /// Pages of `sizes` rows each, every page evaluating 10 items and pointing at the next.
    fn pages(sizes: &[usize]) -> VecDeque<ScanPage> {
        let mut next_id = 0;
        let count = sizes.len();
        sizes
            .iter()
            .enumerate()
            .map(|(index, &size)| {
                let items = (next_id..next_id + size).map(row).collect();
                next_id += size;
                ScanPage {
                    items,
                    scanned: 10,
                    last_key: (index + 1 < count).then(|| row(next_id)),
                }
            })
            .collect()
    }

    async fn run(sizes: &[usize], limit: Option<usize>) -> (ScanOutcome, Vec<Option<Item>>) {
        let mut remaining = pages(sizes);
        let mut starts = Vec::new();
        let outcome = scan_up_to(limit, |start, _wanted| {
            starts.push(start);
            let page = remaining
                .pop_front()
                .expect("no page asked for past the end");
            async move { Ok::<_, Infallible>(page) }
        })
        .await
        .expect("infallible");
        (outcome, starts)
    }

    #[tokio::test]
    async fn empty_filtered_pages_do_not_end_the_scan() {
        let (outcome, starts) = run(&[0, 0, 2, 0, 1], Some(3)).await;
        assert_eq!(outcome.items, vec![row(0), row(1), row(2)]);
        assert_eq!(outcome.pages, 5);
        assert_eq!(outcome.scanned, 50);
        assert!(outcome.complete, "the last page had no LastEvaluatedKey");
        assert_eq!(starts[0], None);
        assert_eq!(starts[3], Some(row(2)));
    }

    #[tokio::test]
    async fn the_limit_caps_rows_across_pages_and_stops_early() {
        let (outcome, starts) = run(&[2, 2, 2, 2], Some(5)).await;
        assert_eq!(outcome.items.len(), 5);
        assert_eq!(outcome.pages, 3, "the fourth page is never fetched");
        assert_eq!(starts.len(), 3);
        assert!(!outcome.complete);
    }

    #[tokio::test]
    async fn a_limit_met_at_the_last_page_is_complete_and_one_cut_short_is_not() {
        let (exact, _) = run(&[2, 2], Some(4)).await;
        assert!(exact.complete);
        let (cut, _) = run(&[2, 3], Some(4)).await;
        assert_eq!(cut.items.len(), 4);
        assert!(!cut.complete);
    }

    #[tokio::test]
    async fn a_scan_resumes_where_a_full_one_stopped_unless_rows_were_cut_off() {
        let (full, _) = run(&[2, 2, 2], Some(4)).await;
        assert_eq!(full.resume, Some(row(4)));
        let (cut, _) = run(&[2, 3, 2], Some(4)).await;
        assert_eq!(
            cut.resume, None,
            "row 4 was cut off: resuming would skip it"
        );
        let (ended, _) = run(&[2], Some(4)).await;
        assert_eq!(ended.resume, None);
        let mut starts = Vec::new();
        let from = scan_from(Some(row(4)), Some(1), |start, _| {
            starts.push(start);
            async { Ok::<_, Infallible>(ScanPage::default()) }
        })
        .await
        .expect("infallible");
        assert!(from.complete);
        assert_eq!(starts, [Some(row(4))]);
    }

    #[tokio::test]
    async fn without_a_limit_every_page_is_read() {
        let (outcome, _) = run(&[3, 0, 4], None).await;
        assert_eq!(outcome.items.len(), 7);
        assert!(outcome.complete);
    }
}
