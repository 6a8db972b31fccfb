//! The HTML of `GET /`: the server's health and its most recent images with their thumbnails.
//! A pure function of the data, so it is tested without a server.

use std::fmt::Write as _;

use hybridlab_wire::{Health, ImageListItem};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Renders the index page.
pub fn render_index(health: &Health, recent: &[ImageListItem]) -> String {
    let mut html = String::with_capacity(4096 + recent.len() * 512);
    html.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>hybridlab image server</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}",
        "table.health td{padding:.1rem .8rem .1rem 0}",
        ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:1rem}",
        ".card{border:1px solid #ddd;border-radius:6px;padding:.5rem;font-size:.8rem}",
        ".card img{display:block;max-width:150px;max-height:150px;margin:auto}",
        ".status{font-weight:bold}.COMPLETED{color:#17803d}.FAILED{color:#b3261e}",
        ".PENDING,.PROCESSING{color:#8a6100}",
        "</style></head><body>\n<h1>hybridlab image server</h1>\n"
    ));
    let _ = writeln!(
        html,
        "<table class=\"health\"><tr><td>status</td><td id=\"health-status\">{}</td></tr>\
         <tr><td>version</td><td>{}</td></tr>\
         <tr><td>uptime</td><td>{:.0} s</td></tr>\
         <tr><td>bucket</td><td>{}</td></tr>\
         <tr><td>table</td><td>{}</td></tr>\
         <tr><td>in flight</td><td>{} of {}</td></tr></table>",
        escape(&health.status),
        escape(&health.version),
        health.uptime_s,
        escape(&health.bucket),
        escape(&health.table),
        health.in_flight,
        health.max_in_flight,
    );
    let _ = writeln!(html, "<h2>Recent images ({})</h2>", recent.len());
    if recent.is_empty() {
        html.push_str(
            "<p class=\"empty\">No images yet. POST one to <code>/process-image</code>.</p>\n",
        );
    } else {
        html.push_str("<div class=\"grid\">\n");
        for item in recent {
            let record = &item.record;
            let status = record.status.as_str();
            let _ = write!(
                html,
                "<div class=\"card\" data-image-id=\"{}\">",
                escape(&record.image_id)
            );
            match item.urls.get("thumbnail") {
                Some(url) => {
                    let _ = write!(
                        html,
                        "<img src=\"{}\" alt=\"thumbnail of {}\" loading=\"lazy\">",
                        escape(url),
                        escape(&record.image_id)
                    );
                }
                None => html.push_str("<div class=\"no-thumbnail\">no thumbnail</div>"),
            }
            let _ = write!(
                html,
                "<div class=\"status {status}\">{status}</div><div>{}</div>",
                escape(&record.image_id)
            );
            if let (Some(width), Some(height)) = (record.width, record.height) {
                let _ = write!(html, "<div>{width}×{height}</div>");
            }
            let links: Vec<String> = item
                .urls
                .iter()
                .map(|(name, url)| format!("<a href=\"{}\">{}</a>", escape(url), escape(name)))
                .collect();
            if !links.is_empty() {
                let _ = write!(html, "<div>{}</div>", links.join(" · "));
            }
            if let Some(error) = &record.error {
                let _ = write!(html, "<div class=\"error\">{}</div>", escape(error));
            }
            html.push_str("</div>\n");
        }
        html.push_str("</div>\n");
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hybridlab_wire::{ImageRecord, ImageStatus};

    use super::*;

    fn health() -> Health {
        Health {
            status: "ok".into(),
            version: "0.1.0".into(),
            uptime_s: 12.0,
            bucket: "images-bucket".into(),
            table: "images-table".into(),
            region: None,
            in_flight: 0,
            max_in_flight: 64,
        }
    }

    #[test]
    fn the_page_escapes_everything_it_did_not_write() {
        let item = ImageListItem {
            record: ImageRecord {
                image_id: "<script>alert(1)</script>".into(),
                status: ImageStatus::Failed,
                source_url: None,
                bucket: "b".into(),
                keys: BTreeMap::new(),
                size_bytes: None,
                width: None,
                height: None,
                format: None,
                created_at: "2026-01-01T00:00:00Z".into(),
                updated_at: "2026-01-01T00:00:00Z".into(),
                timings_ms: None,
                error: Some("\"quoted\" & <b>".into()),
                request_id: None,
                original_bucket: None,
                original_filename: None,
                uploaded_at: None,
                history: Vec::new(),
            },
            urls: BTreeMap::from([("thumbnail".into(), "http://x/?a=1&b=\"2\"".into())]),
        };
        let html = render_index(&health(), &[item]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("&quot;quoted&quot; &amp; &lt;b&gt;"));
        assert!(html.contains("src=\"http://x/?a=1&amp;b=&quot;2&quot;\""));
        assert!(html.contains("class=\"status FAILED\""));
    }

    #[test]
    fn an_empty_table_says_how_to_add_an_image() {
        let html = render_index(&health(), &[]);
        assert!(html.contains("No images yet"));
        assert!(html.contains("images-bucket"));
    }
}
