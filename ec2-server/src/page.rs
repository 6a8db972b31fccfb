//! The HTML of `GET /`, the gallery: the server's health, an upload form, and the most recent
//! images with their status, thumbnail and links to every object; and the sign-in form a
//! browser without the session cookie gets instead. Pure functions of the data, so they are
//! tested without a server; a small inline script keeps the gallery current in the browser,
//! and another signs the browser in with the one-time code `hybridlab gallery` puts in the
//! URL's fragment ([`SIGN_IN_CODE_SCRIPT`]).

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

/// The sign-in form: the token is posted once to `/sign-in` (never put in a URL), which answers
/// with the session cookie. `message` says why the last attempt failed. Opened at
/// `/#code=...` (by `hybridlab gallery`), the page posts that one-time code instead, at once.
pub fn render_sign_in(message: Option<&str>) -> String {
    let mut html = String::with_capacity(2048);
    html.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>hybridlab image server: sign in</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}",
        "form{display:flex;gap:.5rem;flex-wrap:wrap;align-items:center}",
        ".error{color:#b3261e}",
        "</style></head><body>\n<h1>hybridlab image server</h1>\n",
        "<p>The gallery needs the stack's token: <code>outputs.token</code> in ",
        "<code>~/.local/state/hybridlab/stacks/&lt;target&gt;/&lt;stack&gt;.json</code> on the ",
        "machine that ran <code>hybridlab up</code>, or the proxy function's ",
        "<code>HYBRIDLAB_TOKEN</code>. On that machine, <code>hybridlab gallery</code> opens ",
        "this page signed in.</p>\n",
        "<form id=\"sign-in-form\" method=\"post\" action=\"/sign-in\">",
        "<input type=\"password\" id=\"sign-in-token\" name=\"token\" ",
        "placeholder=\"the stack's token\" autocomplete=\"current-password\" required>",
        "<button type=\"submit\">Sign in</button></form>\n"
    ));
    if let Some(message) = message {
        let _ = writeln!(
            html,
            "<p class=\"error\" id=\"sign-in-error\">{}</p>",
            escape(message)
        );
    }
    html.push_str("<script>\n");
    html.push_str(SIGN_IN_CODE_SCRIPT);
    html.push_str("</script>\n</body></html>\n");
    html
}

/// Signs the browser in with the one-time code `hybridlab gallery` opened the page with
/// (`/#code=...`). A fragment is never sent to a server, so the code reaches no log on the
/// way; the script first drops it from the address bar and the history entry
/// (`history.replaceState`), then posts it to `/sign-in` from this page, as the token form
/// does: the browser adds this origin's `Origin`, which the server checks, and the answer is
/// the session cookie and a redirect to the gallery, or this page saying the code was refused.
/// On the gallery itself (the browser was signed in already) the code is spent all the same,
/// in the background, so it does not stay usable (`body[data-sign-in-code="posted"]` then). The code is only ever a form field: never
/// a URL, never markup.
pub const SIGN_IN_CODE_SCRIPT: &str = r#"(() => {
  const found = /^#code=([A-Za-z0-9_-]{1,128})$/.exec(location.hash);
  if (!found) return;
  history.replaceState(history.state, '', location.pathname + location.search);
  const code = found[1];
  if (!document.getElementById('sign-in-form')) {
    fetch('/sign-in', {
      method: 'POST',
      body: new URLSearchParams({ code }),
      redirect: 'manual',
      cache: 'no-store',
    })
      .then(() => { document.body.dataset.signInCode = 'posted'; })
      .catch(() => {});
    return;
  }
  const form = document.createElement('form');
  form.method = 'post';
  form.action = '/sign-in';
  form.hidden = true;
  const field = document.createElement('input');
  field.type = 'hidden';
  field.name = 'code';
  field.value = code;
  form.append(field);
  document.body.append(form);
  form.submit();
})();
"#;

/// Renders the gallery: the health table, the upload form when the pipeline is deployed, and
/// the `recent` images as cards. The inline script re-renders the cards from `GET /api/images`
/// every 2 s with the same structure, so a browser test reads the same hooks either way:
/// `.card[data-image-id][data-status]`, `img.thumbnail`, `a.variant[data-variant]`, `.error`.
pub fn render_index(health: &Health, recent: &[ImageListItem]) -> String {
    let mut html = String::with_capacity(8192 + recent.len() * 1024);
    html.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>hybridlab image server</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}",
        "table.health td{padding:.1rem .8rem .1rem 0}",
        ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:1rem}",
        ".card{border:1px solid #ddd;border-radius:6px;padding:.5rem;font-size:.8rem;",
        "overflow-wrap:anywhere}",
        ".card img{display:block;max-width:150px;max-height:150px;margin:auto}",
        ".no-thumbnail{height:60px;display:flex;align-items:center;justify-content:center;",
        "color:#888}",
        ".status{font-weight:bold}.COMPLETED{color:#17803d}.FAILED,.error{color:#b3261e}",
        ".PENDING,.PROCESSING{color:#8a6100}",
        "#upload-form{margin:1rem 0;display:flex;gap:.5rem;flex-wrap:wrap;align-items:center}",
        "</style></head><body>\n<h1>hybridlab image server</h1>\n"
    ));
    let _ = write!(
        html,
        "<table class=\"health\"><tr><td>status</td><td id=\"health-status\">{}</td></tr>\
         <tr><td>version</td><td>{}</td></tr>\
         <tr><td>uptime</td><td>{:.0} s</td></tr>\
         <tr><td>bucket</td><td>{}</td></tr>\
         <tr><td>table</td><td>{}</td></tr>",
        escape(&health.status),
        escape(&health.version),
        health.uptime_s,
        escape(&health.bucket),
        escape(&health.table),
    );
    if let (Some(uploads), Some(processed)) = (&health.uploads_bucket, &health.processed_bucket) {
        let _ = write!(
            html,
            "<tr><td>uploads bucket</td><td>{}</td></tr>\
             <tr><td>processed bucket</td><td>{}</td></tr>",
            escape(uploads),
            escape(processed),
        );
    }
    if let Some(codec) = &health.jpeg_codec {
        let _ = write!(
            html,
            "<tr><td>JPEG codec</td><td>{}</td></tr>",
            escape(codec)
        );
    }
    let _ = writeln!(
        html,
        "<tr><td>in flight</td><td>{} of {}</td></tr></table>",
        health.in_flight, health.max_in_flight,
    );

    if health.uploads_bucket.is_some() {
        html.push_str(concat!(
            "<form id=\"upload-form\"><input type=\"file\" id=\"upload-file\" name=\"file\" ",
            "accept=\"image/*\" required>",
            "<button type=\"submit\">Upload</button>",
            "<span id=\"upload-result\" role=\"status\"></span></form>\n"
        ));
    } else {
        html.push_str(
            "<p class=\"no-pipeline\">Uploads need the event-driven pipeline: deploy with \
             <code>hybridlab up --with pipeline</code>.</p>\n",
        );
    }

    let _ = writeln!(
        html,
        "<h2>Recent images (<span id=\"image-count\">{}</span>) \
         <small id=\"refresh-status\" role=\"status\"></small></h2>",
        recent.len()
    );
    let _ = writeln!(
        html,
        "<p class=\"empty\" id=\"no-images\"{}>No images yet. Upload one, or POST one to \
         <code>/process-image</code>.</p>",
        if recent.is_empty() { "" } else { " hidden" }
    );
    html.push_str("<div class=\"grid\" id=\"images\">\n");
    for item in recent {
        render_card(&mut html, item);
    }
    html.push_str(concat!(
        "</div>\n<form id=\"sign-out-form\" method=\"post\" action=\"/sign-out\">",
        "<button type=\"submit\">Sign out</button></form>\n<script>\n"
    ));
    html.push_str(&SCRIPT.replace("__INDEX_IMAGES__", &crate::INDEX_IMAGES.to_string()));
    html.push_str(SIGN_IN_CODE_SCRIPT);
    html.push_str("</script>\n</body></html>\n");
    html
}

/// What a card calls the image: the uploaded file's name, else the URL it came from.
fn label(item: &ImageListItem) -> &str {
    let record = &item.record;
    record
        .original_filename
        .as_deref()
        .or(record.source_url.as_deref())
        .unwrap_or(&record.image_id)
}

/// One card; the script's `card()` builds the same structure.
fn render_card(html: &mut String, item: &ImageListItem) {
    let record = &item.record;
    let status = record.status.as_str();
    let _ = write!(
        html,
        "<div class=\"card\" data-image-id=\"{}\" data-status=\"{status}\" data-updated=\"{}\">",
        escape(&record.image_id),
        escape(&record.updated_at),
    );
    match item.urls.get("thumbnail") {
        Some(url) => {
            let _ = write!(
                html,
                "<img class=\"thumbnail\" src=\"{}\" alt=\"thumbnail of {}\" loading=\"lazy\">",
                escape(url),
                escape(label(item))
            );
        }
        None => html.push_str("<div class=\"no-thumbnail\">no thumbnail</div>"),
    }
    let _ = write!(
        html,
        "<div class=\"status {status}\">{status}</div><div class=\"name\">{}</div>\
         <div class=\"id\">{}</div>",
        escape(label(item)),
        escape(&record.image_id)
    );
    if let (Some(width), Some(height)) = (record.width, record.height) {
        let _ = write!(html, "<div class=\"size\">{width}×{height}</div>");
    }
    let links: Vec<String> = item
        .urls
        .iter()
        .map(|(name, url)| {
            format!(
                "<a class=\"variant\" data-variant=\"{}\" href=\"{}\">{}</a>",
                escape(name),
                escape(url),
                escape(name)
            )
        })
        .collect();
    if !links.is_empty() {
        let _ = write!(html, "<div class=\"links\">{}</div>", links.join(" · "));
    }
    if let Some(error) = &record.error {
        let _ = write!(html, "<div class=\"error\">{}</div>", escape(error));
    }
    html.push_str("</div>\n");
}

/// The gallery's script: polls the listing and rebuilds only the cards whose row changed, and
/// sends the upload form's file straight to S3 with a presigned PUT. Its requests to the
/// server carry the session cookie (same origin), never the token. Object links are the
/// server's own (`/api/images/<id>/objects/<name>`), which redirect to a presigned URL when
/// followed. Data only ever reaches the page through `textContent` and attributes, never as
/// markup.
const SCRIPT: &str = r#"(() => {
  const LIMIT = __INDEX_IMAGES__;
  const POLL_MS = 2000;
  // The listing pages read per poll: the server scans at most this many hundred rows for it.
  const PAGES = 3;
  const STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'];
  const grid = document.getElementById('images');
  const empty = document.getElementById('no-images');
  const count = document.getElementById('image-count');
  const refreshStatus = document.getElementById('refresh-status');
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  // Only the server's own object links: they need the session cookie and redirect to S3.
  const safeUrl = (url) => typeof url === 'string' && /^\/api\/images\/[A-Za-z0-9-]+\/objects\/[A-Za-z0-9._-]+$/.test(url);
  const label = (item) => item.original_filename || item.source_url || item.image_id;

  function card(item) {
    const status = STATUSES.includes(item.status) ? item.status : 'UNKNOWN';
    const urls = item.urls || {};
    const node = el('div', 'card');
    node.dataset.imageId = item.image_id;
    node.dataset.status = status;
    node.dataset.updated = item.updated_at;
    if (safeUrl(urls.thumbnail)) {
      const img = el('img', 'thumbnail');
      img.src = urls.thumbnail;
      img.alt = 'thumbnail of ' + label(item);
      img.loading = 'lazy';
      node.append(img);
    } else {
      node.append(el('div', 'no-thumbnail', 'no thumbnail'));
    }
    node.append(el('div', 'status ' + status, status));
    node.append(el('div', 'name', label(item)));
    node.append(el('div', 'id', item.image_id));
    if (item.width && item.height) node.append(el('div', 'size', item.width + '\u00d7' + item.height));
    const names = Object.keys(urls).filter((name) => safeUrl(urls[name])).sort();
    if (names.length) {
      const links = el('div', 'links');
      names.forEach((name, index) => {
        if (index) links.append(' \u00b7 ');
        const link = el('a', 'variant', name);
        link.href = urls[name];
        link.dataset.variant = name;
        links.append(link);
      });
      node.append(links);
    }
    if (item.error) node.append(el('div', 'error', item.error));
    return node;
  }

  async function recent() {
    let items = [];
    let cursor = null;
    for (let page = 0; page < PAGES; page++) {
      const query = '/api/images?limit=100' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      const response = await fetch(query, { cache: 'no-store' });
      if (response.status === 401) throw new Error('signed out; reload the page to sign in');
      if (!response.ok) throw new Error('GET /api/images answered ' + response.status);
      const body = await response.json();
      items = items.concat(body.items || []);
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    items.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
    return items.slice(0, LIMIT);
  }

  function render(items) {
    const existing = new Map();
    for (const node of grid.querySelectorAll('.card')) existing.set(node.dataset.imageId, node);
    const cards = items.map((item) => {
      const old = existing.get(item.image_id);
      const fresh = old && old.dataset.status === item.status && old.dataset.updated === item.updated_at;
      return fresh ? old : card(item);
    });
    grid.replaceChildren(...cards);
    count.textContent = String(items.length);
    empty.hidden = items.length > 0;
  }

  async function refresh() {
    try {
      render(await recent());
      refreshStatus.textContent = '';
      document.body.dataset.refreshedAt = String(Date.now());
    } catch (err) {
      refreshStatus.textContent = 'not refreshing: ' + err.message;
    }
  }
  setInterval(refresh, POLL_MS);

  const form = document.getElementById('upload-form');
  if (form) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const result = document.getElementById('upload-result');
      const input = document.getElementById('upload-file');
      if (!input.files.length) {
        result.textContent = 'choose a file first';
        return;
      }
      const file = input.files[0];
      // The session cookie goes along by itself (same origin); the server checks Origin too.
      const headers = { 'Content-Type': 'application/json' };
      result.textContent = 'uploading\u2026';
      try {
        // The file goes straight to S3 with a presigned PUT; the server only writes the row
        // and signs the URL (and the headers the PUT must carry: its Content-Type, metadata,
        // If-None-Match, and Content-Length, which the browser sets itself from the file).
        const ticket = await fetch('/api/uploads', {
          method: 'POST',
          headers,
          body: JSON.stringify({
            filename: file.name,
            content_type: file.type || 'application/octet-stream',
            size_bytes: file.size,
          }),
        });
        const body = await ticket.json().catch(() => ({}));
        if (!ticket.ok) {
          result.textContent = 'refused: ' + (body.error || ticket.status) + (body.message ? ' \u2014 ' + body.message : '');
          return;
        }
        const putHeaders = Object.assign({}, body.headers);
        delete putHeaders['content-length'];
        const stored = await fetch(body.upload_url, { method: body.method, headers: putHeaders, body: file });
        if (stored.ok) {
          result.textContent = 'uploaded ' + body.image_id + ': PENDING';
          form.reset();
          refresh();
        } else {
          result.textContent = 'S3 refused the upload: HTTP ' + stored.status;
        }
      } catch (err) {
        result.textContent = 'upload failed: ' + err.message;
      }
    });
  }
})();
"#;

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
            uploads_bucket: None,
            processed_bucket: None,
            jpeg_codec: Some("libjpeg-turbo".into()),
        }
    }

    #[test]
    fn the_page_names_the_jpeg_codec_when_the_server_reports_it() {
        let html = render_index(&health(), &[]);
        assert!(html.contains("<tr><td>JPEG codec</td><td>libjpeg-turbo</td></tr>"));
        let older = Health {
            jpeg_codec: None,
            ..health()
        };
        assert!(!render_index(&older, &[]).contains("JPEG codec"));
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
        assert!(!html.contains("<script>alert"));
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the page's own script"
        );
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

    fn uploaded(status: ImageStatus, filename: &str) -> ImageListItem {
        ImageListItem {
            record: ImageRecord {
                image_id: "0199-up".into(),
                status,
                source_url: None,
                bucket: "processed".into(),
                keys: BTreeMap::from([
                    ("original".into(), "uploads/0199-up/cat.jpg".into()),
                    ("thumbnail".into(), "images/0199-up/thumbnail.jpg".into()),
                ]),
                size_bytes: Some(1234),
                width: Some(640),
                height: Some(480),
                format: None,
                created_at: "2026-01-01T00:00:00Z".into(),
                updated_at: "2026-01-01T00:00:05Z".into(),
                timings_ms: None,
                error: (status == ImageStatus::Failed).then(|| "not an image <img>".into()),
                request_id: None,
                original_bucket: Some("uploads".into()),
                original_filename: Some(filename.into()),
                uploaded_at: Some("2026-01-01T00:00:00Z".into()),
                history: Vec::new(),
            },
            urls: BTreeMap::from([
                (
                    "original".into(),
                    "http://s3/uploads/o?X-Amz-Signature=1".into(),
                ),
                (
                    "thumbnail".into(),
                    "http://s3/processed/t?X-Amz-Signature=2".into(),
                ),
            ]),
        }
    }

    fn pipeline_health() -> Health {
        Health {
            uploads_bucket: Some("uploads".into()),
            processed_bucket: Some("processed".into()),
            ..health()
        }
    }

    #[test]
    fn cards_carry_the_hooks_a_browser_test_reads() {
        let html = render_index(
            &pipeline_health(),
            &[uploaded(ImageStatus::Completed, "cat.jpg")],
        );
        assert!(html.contains(
            "<div class=\"card\" data-image-id=\"0199-up\" data-status=\"COMPLETED\" \
             data-updated=\"2026-01-01T00:00:05Z\">"
        ));
        assert!(
            html.contains(
                "<img class=\"thumbnail\" src=\"http://s3/processed/t?X-Amz-Signature=2\""
            )
        );
        assert!(html.contains(
            "<a class=\"variant\" data-variant=\"original\" href=\"http://s3/uploads/o?X-Amz-Signature=1\">original</a>"
        ));
        assert!(html.contains("data-variant=\"thumbnail\""));
        assert!(html.contains("<div class=\"name\">cat.jpg</div>"));
        assert!(html.contains("<div class=\"status COMPLETED\">COMPLETED</div>"));
        assert!(html.contains("640×480"));
        assert!(html.contains("<p class=\"empty\" id=\"no-images\" hidden>"));
    }

    #[test]
    fn a_failed_upload_shows_its_error_and_an_odd_filename_is_escaped() {
        let html = render_index(
            &pipeline_health(),
            &[uploaded(ImageStatus::Failed, "<b>\"x\"</b>.jpg")],
        );
        assert!(html.contains("data-status=\"FAILED\""));
        assert!(html.contains("<div class=\"error\">not an image &lt;img&gt;</div>"));
        assert!(html.contains("&lt;b&gt;&quot;x&quot;&lt;/b&gt;.jpg"));
        assert!(!html.contains("<b>\"x\""));
    }

    #[test]
    fn the_upload_form_appears_only_with_the_pipeline() {
        let with = render_index(&pipeline_health(), &[]);
        assert!(with.contains("<form id=\"upload-form\">"));
        assert!(with.contains("id=\"upload-file\""));
        assert!(!with.contains("token"), "the form never asks for the token");
        assert!(with.contains("uploads bucket"));
        let without = render_index(&health(), &[]);
        assert!(!without.contains("upload-form\">"));
        assert!(without.contains("hybridlab up --with pipeline"));
    }

    #[test]
    fn the_sign_in_form_posts_the_token_and_escapes_its_message() {
        let html = render_sign_in(Some("<wrong> token"));
        assert!(html.contains("<form id=\"sign-in-form\" method=\"post\" action=\"/sign-in\">"));
        assert!(html.contains("type=\"password\" id=\"sign-in-token\" name=\"token\""));
        assert!(html.contains("&lt;wrong&gt; token"));
        assert!(!render_sign_in(None).contains("sign-in-error"));
    }

    #[test]
    fn both_pages_take_a_sign_in_code_from_the_fragment_and_drop_it_from_the_url() {
        for html in [render_sign_in(None), render_index(&health(), &[])] {
            assert!(html.contains(SIGN_IN_CODE_SCRIPT), "{html}");
            assert!(html.contains("location.hash"));
            // The fragment goes before anything is sent, so history keeps the clean URL.
            let replaced = html.find("history.replaceState").expect("replaceState");
            let posted = html.find("'/sign-in'").expect("posted to /sign-in");
            assert!(replaced < posted);
        }
        assert!(SIGN_IN_CODE_SCRIPT.contains("field.name = 'code'"));
        assert!(!SIGN_IN_CODE_SCRIPT.contains("innerHTML"));
        assert!(
            !SIGN_IN_CODE_SCRIPT.contains("?code"),
            "the code never goes into a URL"
        );
        let sign_in = render_sign_in(None);
        assert!(sign_in.contains("hybridlab gallery"));
        assert!(sign_in.contains("~/.local/state/hybridlab/stacks/"));
    }

    #[test]
    fn the_script_polls_the_listing_and_writes_data_only_as_text() {
        let html = render_index(&health(), &[]);
        assert!(html.contains("fetch(query"));
        assert!(html.contains("/api/images?limit=100"));
        assert!(html.contains("const POLL_MS = 2000;"));
        assert!(html.contains(&format!("const LIMIT = {};", crate::INDEX_IMAGES)));
        assert!(!html.contains("innerHTML"));
        assert!(!html.contains("__INDEX_IMAGES__"));
    }
}
