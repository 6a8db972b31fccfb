//! `hybridlab logs` on the shared stack: both log groups merged in time order with the
//! function's REPORT parsed and the server's line for the same request; one group alone;
//! lines for people in columns (level, request id, message and fields), `--raw` as written
//! and `--level`; `--filter`; `--follow` printing a new invocation's lines once and ending
//! cleanly on Ctrl-C or when its reader goes away; and one-line errors with a non-zero exit
//! for bad input.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use hybridlab_provision::stack::{StackClients, StackId, StackSettings, StackState, Target};
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::lab::{LabStack, lab_stack};
use hybridlab_tests::sandbox::{EdgeClients, build_binary, edge_clients};
use hybridlab_tests::stack::{hybridlab_async as run_cli, json_lines};
use serde_json::{Value, json};

use crate::common::eventually;

/// How long the sandbox may take to ship an invocation's lines to CloudWatch Logs.
const SHIPPED_WITHIN: Duration = Duration::from_secs(30);

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{what}: {}",
        stderr_of(output)
    );
}

/// Invokes the stack's function with a small JPEG served on loopback; the request id.
async fn invoke(clients: &EdgeClients, lab: &LabStack) -> String {
    let host = ImageHost::start().await;
    let url = host.add("logs.jpg", fixtures::jpeg(320, 200), "image/jpeg");
    let answer = clients
        .lambda
        .invoke()
        .function_name(&lab.names.function)
        .payload(Blob::new(json!({ "image_url": url }).to_string()))
        .send()
        .await
        .expect("the sandbox invokes the function");
    assert_eq!(answer.function_error(), None);
    let proxy: Value =
        serde_json::from_slice(answer.payload().expect("a payload").as_ref()).expect("JSON");
    assert_eq!(proxy["statusCode"], 200, "{proxy}");
    let body: Value =
        serde_json::from_str(proxy["body"].as_str().expect("a body")).expect("JSON body");
    body["lambda"]["request_id"]
        .as_str()
        .expect("the proxy names its request id")
        .to_owned()
}

/// Waits until the function's REPORT and the server's line of `request_id` are in
/// CloudWatch Logs (the sandbox ships every quarter second).
async fn wait_until_shipped(clients: &EdgeClients, lab: &LabStack, request_id: &str) {
    let report = eventually(SHIPPED_WITHIN, || async {
        clients
            .log_messages(&lab.names.function_log_group)
            .await
            .into_iter()
            .find(|line| line.starts_with("REPORT") && line.contains(request_id))
    })
    .await;
    assert!(report.is_some(), "the REPORT of {request_id} was shipped");
    let server = eventually(SHIPPED_WITHIN, || async {
        clients
            .log_messages(&lab.names.server_log_group)
            .await
            .into_iter()
            .find(|line| line.contains(request_id))
    })
    .await;
    assert!(
        server.is_some(),
        "the server's line of {request_id} was shipped"
    );
}

/// An invocation whose lines are in both groups: the shared stack and the request id.
async fn invoked_and_shipped() -> (&'static LabStack, String) {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let request_id = invoke(&clients, lab).await;
    wait_until_shipped(&clients, lab, &request_id).await;
    (lab, request_id)
}

fn is_report_of(line: &Value, request_id: &str) -> bool {
    line["report"]["request_id"] == request_id
}

fn assert_unique_event_ids(lines: &[Value]) {
    let mut seen = HashSet::new();
    for line in lines {
        let id = line["event_id"].as_str().expect("polled events have ids");
        assert!(
            seen.insert(id.to_owned()),
            "event {id} printed twice: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_all_merges_both_groups_in_time_order_with_reports_parsed() {
    let (lab, request_id) = invoked_and_shipped().await;
    let output = run_cli(
        &lab.endpoint,
        &[
            "logs", "all", "--since", "10m", "--json", "--stack", &lab.stack,
        ],
        &[],
    )
    .await;
    assert_success(&output, "logs all");
    let lines = json_lines(&output);

    let report = lines
        .iter()
        .find(|line| is_report_of(line, &request_id))
        .unwrap_or_else(|| panic!("the REPORT of {request_id} in {lines:#?}"));
    assert_eq!(report["source"], "lambda");
    assert_eq!(report["group"], lab.names.function_log_group.as_str());
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("REPORT RequestId: "))
    );
    let fields = &report["report"];
    assert!(
        fields["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
        "{fields}"
    );
    assert!(
        fields["billed_duration_ms"]
            .as_f64()
            .is_some_and(|d| d >= 1.0),
        "{fields}"
    );
    assert!(
        fields["memory_size_mb"].as_u64().is_some_and(|m| m > 0),
        "{fields}"
    );

    let server = lines
        .iter()
        .find(|line| {
            line["source"] == "ec2"
                && line["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&request_id))
        })
        .unwrap_or_else(|| panic!("the server's line of {request_id} in {lines:#?}"));
    assert_eq!(server["group"], lab.names.server_log_group.as_str());
    assert_eq!(server["report"], Value::Null);

    let stamps: Vec<i64> = lines
        .iter()
        .map(|line| line["timestamp_ms"].as_i64().expect("timestamp_ms"))
        .collect();
    assert!(
        stamps.windows(2).all(|pair| pair[0] <= pair[1]),
        "timestamps do not decrease: {stamps:?}"
    );
    for line in &lines {
        let text = line["timestamp"].as_str().expect("an RFC 3339 timestamp");
        assert!(text.len() == 24 && text.ends_with('Z'), "{text}");
    }
    assert_unique_event_ids(&lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_prints_only_its_own_group_and_people_get_columns_without_colour() {
    let (lab, request_id) = invoked_and_shipped().await;

    let function = run_cli(
        &lab.endpoint,
        &["logs", "lambda", "--json", "--stack", &lab.stack],
        &[],
    )
    .await;
    assert_success(&function, "logs lambda --json");
    let lines = json_lines(&function);
    assert!(lines.iter().any(|line| is_report_of(line, &request_id)));
    assert!(
        lines.iter().all(|line| line["source"] == "lambda"
            && line["group"] == lab.names.function_log_group.as_str()),
        "{lines:#?}"
    );

    let server = run_cli(
        &lab.endpoint,
        &["logs", "ec2", "--json", "--stack", &lab.stack],
        &[],
    )
    .await;
    assert_success(&server, "logs ec2 --json");
    let lines = json_lines(&server);
    assert!(!lines.is_empty());
    assert!(
        lines.iter().all(|line| line["source"] == "ec2"),
        "{lines:#?}"
    );

    // For people: `HH:MM:SS.mmm lambda LEVEL request-id | message`, REPORT as its fields,
    // no colour codes.
    let human = run_cli(
        &lab.endpoint,
        &["logs", "lambda", "--stack", &lab.stack],
        &[("NO_COLOR", "1")],
    )
    .await;
    assert_success(&human, "logs lambda");
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(!text.contains('\x1b'), "{text}");
    // `--color always` colours into a pipe (`| less -R`), NO_COLOR set or not: the flag wins.
    let forced = run_cli(
        &lab.endpoint,
        &["logs", "lambda", "--stack", &lab.stack, "--color", "always"],
        &[("NO_COLOR", "1")],
    )
    .await;
    assert_success(&forced, "logs lambda --color always");
    assert!(
        String::from_utf8_lossy(&forced.stdout).contains("\x1b["),
        "colour codes in a pipe with --color always"
    );
    for line in text.lines() {
        if line.starts_with(' ') {
            // The continuation of a message of several lines.
            assert!(line.trim_start().starts_with("| "), "{line:?}");
            continue;
        }
        let (clock, rest) = line.split_at_checked(12).expect("a time column");
        let digits: Vec<bool> = clock.chars().map(|c| c.is_ascii_digit()).collect();
        assert_eq!(
            digits,
            [
                true, true, false, true, true, false, true, true, false, true, true, true
            ],
            "HH:MM:SS.mmm in {line:?}"
        );
        assert!(rest.starts_with(" lambda "), "{line:?}");
        assert_eq!(line.get(PIPE_AT - 1..PIPE_AT + 2), Some(" | "), "{line:?}");
    }
    let report = format!("lambda       {request_id} | REPORT duration ");
    assert!(text.contains(&report), "{report} in {text}");
}

/// Where a line for people has its `|`: after `HH:MM:SS.mmm source LEVEL <request id> `.
const PIPE_AT: usize = 12 + 1 + 6 + 1 + 5 + 1 + 36 + 1;

/// The level column of a line for people (blank for lines without a level), or `None` for
/// the continuation of a message of several lines.
fn level_column(line: &str) -> Option<&str> {
    (!line.starts_with(' ')).then(|| line.get(20..25).unwrap_or_default())
}

/// Invokes the stack's function without an image URL, which the proxy refuses with a WARN
/// line; its request id, once that line is in CloudWatch Logs.
async fn invoke_without_an_image_url(clients: &EdgeClients, lab: &LabStack) -> String {
    let answer = clients
        .lambda
        .invoke()
        .function_name(&lab.names.function)
        .payload(Blob::new(json!({ "image": "nowhere" }).to_string()))
        .send()
        .await
        .expect("the sandbox invokes the function");
    let proxy: Value =
        serde_json::from_slice(answer.payload().expect("a payload").as_ref()).expect("JSON");
    let body: Value =
        serde_json::from_str(proxy["body"].as_str().expect("a body")).expect("JSON body");
    let request_id = body["request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the refusal names its request id: {body}"))
        .to_owned();
    let warned = eventually(SHIPPED_WITHIN, || async {
        clients
            .log_messages(&lab.names.function_log_group)
            .await
            .into_iter()
            .find(|line| line.contains(&request_id) && line.contains("WARN"))
    })
    .await;
    assert!(
        warned.is_some(),
        "the proxy's WARN of {request_id} was shipped"
    );
    request_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_print_as_level_request_id_and_message_raw_as_written_and_level_drops_info() {
    let (lab, request_id) = invoked_and_shipped().await;
    let clients = edge_clients().await;
    let refused_id = invoke_without_an_image_url(&clients, lab).await;
    let args = ["logs", "--since", "10m", "--stack", lab.stack.as_str()];

    let human = run_cli(&lab.endpoint, &args, &[("NO_COLOR", "1")]).await;
    assert_success(&human, "logs");
    let text = String::from_utf8_lossy(&human.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let of = |source: &str, level: &str, id: &str, message: &str| {
        format!("{source:<6} {level:<5} {id:<36} | {message}")
    };
    for wanted in [
        // The server's JSON: its level, the span's request id, the message and its fields.
        of("ec2", "INFO", &request_id, "processed image_id="),
        of(
            "ec2",
            "INFO",
            &request_id,
            "finished processing request latency=",
        ),
        // The proxy's runtime line: the `invoke{requestId=...}` span folded into the column.
        of(
            "lambda",
            "INFO",
            &request_id,
            "answered status=200 cold_start=",
        ),
        of("lambda", "", &request_id, "START Version: $LATEST"),
        of("lambda", "", &request_id, "REPORT duration "),
        of(
            "lambda",
            "WARN",
            &refused_id,
            "invocation failed error=\"invalid_request\"",
        ),
    ] {
        assert!(
            lines
                .iter()
                .any(|line| line.get(13..).is_some_and(|rest| rest.starts_with(&wanted))),
            "`{wanted}` in\n{text}"
        );
    }
    for written in [
        "{\"timestamp\"",
        "\"fields\":",
        "Lambda runtime invoke",
        "RequestId: ",
    ] {
        assert!(!text.contains(written), "no `{written}` in\n{text}");
    }
    for line in &lines {
        if level_column(line).is_some() {
            assert_eq!(line.get(PIPE_AT - 1..PIPE_AT + 2), Some(" | "), "{line:?}");
        }
    }

    // --raw: each message exactly as the program wrote it (here, as --json carries it).
    let json = run_cli(&lab.endpoint, &[&args[..], &["--json"]].concat(), &[]).await;
    assert_success(&json, "logs --json");
    let events = json_lines(&json);
    let written = |source: &str, needle: &str| -> String {
        events
            .iter()
            .filter(|event| event["source"] == source)
            .filter_map(|event| event["message"].as_str())
            .find(|message| message.contains(&request_id) && message.contains(needle))
            .unwrap_or_else(|| panic!("the {source} line `{needle}` of {request_id}"))
            .trim_end()
            .to_owned()
    };
    let processed = written("ec2", "\"processed\"");
    assert!(processed.starts_with("{\"timestamp\":"), "{processed}");
    let answered = written("lambda", "answered");
    assert!(
        answered.contains("Lambda runtime invoke{requestId="),
        "{answered}"
    );
    let server_event = events
        .iter()
        .find(|event| {
            event["message"]
                .as_str()
                .is_some_and(|m| m.trim_end() == processed)
        })
        .expect("the event");
    assert_eq!(server_event["level"], "INFO", "--json adds the level");
    assert_eq!(
        server_event["request_id"],
        request_id.as_str(),
        "and the request id"
    );
    let raw = run_cli(
        &lab.endpoint,
        &[&args[..], &["--raw"]].concat(),
        &[("NO_COLOR", "1")],
    )
    .await;
    assert_success(&raw, "logs --raw");
    let raw = String::from_utf8_lossy(&raw.stdout).into_owned();
    for message in [&processed, &answered] {
        assert!(
            raw.lines().any(|line| line
                .get(13..)
                .is_some_and(|rest| rest.ends_with(message.as_str()) && rest.contains(" | "))),
            "`{message}` as written in\n{raw}"
        );
    }

    // --level warn: the refusal's WARN stays, no INFO line (nor START/END/REPORT) does.
    let warn = run_cli(
        &lab.endpoint,
        &[&args[..], &["--level", "warn"]].concat(),
        &[("NO_COLOR", "1")],
    )
    .await;
    assert_success(&warn, "logs --level warn");
    let warn = String::from_utf8_lossy(&warn.stdout).into_owned();
    assert!(
        warn.contains(&of("lambda", "WARN", &refused_id, "invocation failed")),
        "the WARN in\n{warn}"
    );
    for line in warn.lines() {
        let level = level_column(line);
        assert!(
            level.is_none_or(|level| level != "INFO " && level != "DEBUG"),
            "{line:?} in\n{warn}"
        );
        assert!(
            !line.contains("| START ")
                && !line.contains("| END")
                && !line.contains("| REPORT duration"),
            "{line:?} counts as INFO"
        );
    }
    assert!(
        !warn.contains(&request_id),
        "the successful invocation had no warning:\n{warn}"
    );
    let json_warn = run_cli(
        &lab.endpoint,
        &[&args[..], &["--level", "WARN", "--json"]].concat(),
        &[],
    )
    .await;
    assert_success(&json_warn, "logs --level WARN --json");
    let events = json_lines(&json_warn);
    assert!(
        events
            .iter()
            .any(|event| event["request_id"] == refused_id.as_str())
    );
    assert!(
        events.iter().all(|event| event["level"] != "INFO"),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_pattern_narrows_the_lines() {
    let (lab, request_id) = invoked_and_shipped().await;

    // A request id has dashes: quoted, it is one term.
    let quoted = format!("\"{request_id}\"");
    let output = run_cli(
        &lab.endpoint,
        &["logs", "--json", "--filter", &quoted, "--stack", &lab.stack],
        &[],
    )
    .await;
    assert_success(&output, "logs --filter <request id>");
    let lines = json_lines(&output);
    assert!(
        lines.iter().all(|line| line["message"]
            .as_str()
            .is_some_and(|m| m.contains(&request_id))),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|line| is_report_of(line, &request_id)));
    assert!(
        lines.iter().any(|line| line["source"] == "ec2"),
        "{lines:#?}"
    );

    let reports = run_cli(
        &lab.endpoint,
        &[
            "logs", "--json", "--filter", "REPORT", "--stack", &lab.stack,
        ],
        &[],
    )
    .await;
    assert_success(&reports, "logs --filter REPORT");
    let lines = json_lines(&reports);
    assert!(lines.iter().any(|line| is_report_of(line, &request_id)));
    assert!(
        lines.iter().all(|line| line["message"]
            .as_str()
            .is_some_and(|m| m.contains("REPORT"))),
        "only REPORT lines: {lines:#?}"
    );
}

/// A `hybridlab` process of the test's own, killed if the test ends before it does.
struct Running {
    child: Child,
}

impl Running {
    fn spawn(lab: &LabStack, args: &[&str]) -> Self {
        let binary = build_binary("hybridlab-console", "hybridlab");
        let child = Command::new(binary)
            .args(args)
            .args(["--stack", &lab.stack, "--endpoint", &lab.endpoint])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hybridlab starts");
        Self { child }
    }

    /// Its lines, read on a thread of their own as they come.
    fn lines(&mut self) -> mpsc::Receiver<String> {
        let stdout = self.child.stdout.take().expect("piped stdout");
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        receive
    }

    /// Waits up to `limit` for it to end; its exit code (`None` if killed by a signal).
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "hybridlab still runs after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        text
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("the blocking work does not panic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_a_new_invocation_once_and_ends_cleanly_on_ctrl_c() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let mut running = blocking(move || {
        Running::spawn(lab, &["logs", "all", "--follow", "--since", "2s", "--json"])
    })
    .await;
    let lines = running.lines();
    // Let it read its (short) backlog, so what follows comes from its polls.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let request_id = invoke(&clients, lab).await;

    let wanted = request_id.clone();
    let (printed, lines) = blocking(move || {
        let deadline = Instant::now() + SHIPPED_WITHIN;
        let mut printed: Vec<Value> = Vec::new();
        let complete = |printed: &[Value]| {
            printed.iter().any(|line| is_report_of(line, &wanted))
                && printed.iter().any(|line| {
                    line["source"] == "ec2"
                        && line["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(&wanted))
                })
        };
        while !complete(&printed) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => printed.push(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|err| panic!("not JSON ({err}): {line}")),
                ),
                Err(_) => panic!(
                    "no REPORT and server line of {wanted} within {SHIPPED_WITHIN:?}: {printed:#?}"
                ),
            }
        }
        (printed, lines)
    })
    .await;
    let mut printed = printed;
    // A few more polls: nothing printed already may come again.
    let more = blocking(move || {
        let until = Instant::now() + Duration::from_secs(3);
        let mut more = Vec::new();
        while let Ok(line) = lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
            more.push(line);
        }
        more
    })
    .await;
    printed.extend(
        more.iter()
            .map(|line| serde_json::from_str::<Value>(line).expect("JSON")),
    );
    assert_unique_event_ids(&printed);
    let report = printed
        .iter()
        .find(|line| is_report_of(line, &request_id))
        .expect("the REPORT");
    assert!(report["report"]["duration_ms"].as_f64().is_some());

    let pid = running.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let (code, stderr) = blocking(move || {
        let code = running.wait(Duration::from_secs(10));
        (code, running.stderr())
    })
    .await;
    assert_eq!(code, Some(0), "Ctrl-C ends --follow with 0: {stderr}");
    assert_eq!(stderr, "", "nothing on stderr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ends_quietly_when_its_reader_goes_away() {
    let lab = lab_stack().await;
    // A filter nothing matches: no line will ever be written, so only noticing the closed
    // pipe can end it.
    let mut running = blocking(move || {
        Running::spawn(
            lab,
            &[
                "logs",
                "--follow",
                "--filter",
                "nothingwillevermatchthisterm",
            ],
        )
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The reader goes away: the read end of the pipe closes.
    drop(running.child.stdout.take());
    let (code, stderr) = blocking(move || {
        let code = running.wait(Duration::from_secs(15));
        (code, running.stderr())
    })
    .await;
    assert_eq!(
        code,
        Some(0),
        "a closed pipe ends --follow with 0: {stderr}"
    );
    assert_eq!(stderr, "", "quietly");
}

/// Asserts a failed run: exit 1, nothing on stdout, one line on stderr containing `needle`.
fn assert_one_line_error(output: &Output, needle: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "`{needle}` in {stderr}");
}

/// A cache directory of the test's own, removed when dropped.
struct TempCache(PathBuf);

impl Drop for TempCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_line_saying_what_to_do_and_a_nonzero_exit() {
    let lab = lab_stack().await;

    let unknown = run_cli(&lab.endpoint, &["logs", "--stack", "nosuchstack9"], &[]).await;
    assert_one_line_error(&unknown, "no stack `nosuchstack9`");
    assert!(stderr_of(&unknown).contains("hybridlab up --stack nosuchstack9"));

    // A stack the target knows of (a state file) that has no log groups: not deployed.
    let cache = TempCache(std::env::temp_dir().join(unique_name("hybridlab-logs-cache")));
    let clients = StackClients::connect(&Target::Sandbox {
        endpoint: lab.endpoint.clone(),
    })
    .await
    .expect("clients");
    let ghost = StackId::generate();
    let state = StackState::new(
        ghost.clone(),
        clients.describe(),
        StackSettings::new("us-east-1"),
    );
    let dir = cache.0.join("stacks").join(clients.state_key());
    std::fs::create_dir_all(&dir).expect("a state directory");
    std::fs::write(
        dir.join(format!("{ghost}.json")),
        serde_json::to_vec(&state).expect("state JSON"),
    )
    .expect("state written");
    let cache_dir = cache.0.display().to_string();
    let undeployed = run_cli(
        &lab.endpoint,
        &["logs", "--stack", ghost.as_str()],
        &[("HYBRIDLAB_STATE_DIR", &cache_dir)],
    )
    .await;
    assert_one_line_error(&undeployed, &format!("stack `{ghost}` is not deployed"));
    assert!(stderr_of(&undeployed).contains(&format!("hybridlab up --stack {ghost}")));

    // An endpoint nothing listens on.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("bound")
        .port();
    let binary = blocking(|| build_binary("hybridlab-console", "hybridlab")).await;
    let unreachable = blocking(move || {
        Command::new(binary)
            .args(["logs", "--stack", "abcd1234"])
            .args(["--endpoint", &format!("http://127.0.0.1:{closed_port}")])
            .output()
            .expect("hybridlab runs")
    })
    .await;
    assert_one_line_error(&unreachable, "cannot reach the endpoint");

    let nonsense = run_cli(
        &lab.endpoint,
        &["logs", "--since", "ten minutes", "--stack", &lab.stack],
        &[],
    )
    .await;
    assert_eq!(nonsense.status.code(), Some(2), "{}", stderr_of(&nonsense));
}
