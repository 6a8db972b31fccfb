//! The operator console, driven as a person drives it: the real `hybridlab` binary in a
//! pseudo-terminal against the sandbox's lab stack, keys typed, and the screen (rebuilt from
//! the terminal's output by a VT100 parser) checked for what the views must show.

use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::lab::lab_stack;
use hybridlab_tests::sandbox::{build_binary, edge_clients, lab_programs_env};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ROWS: u16 = 30;
const COLS: u16 = 100;

/// The console in a pseudo-terminal: keys in, the parsed screen out.
pub(crate) struct Console {
    screen: Arc<Mutex<vt100::Parser>>,
    keys: Box<dyn std::io::Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Console {
    pub(crate) fn start(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let binary = build_binary("hybridlab-console", "hybridlab");
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(binary);
        command.args(args);
        command.env("TERM", "xterm-256color");
        command.cwd(dir);
        // A stack the console brings up deploys the programs the test binary built.
        for (key, value) in lab_programs_env() {
            command.env(key, value);
        }
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = pair
            .slave
            .spawn_command(command)
            .expect("the console starts");
        drop(pair.slave);
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("a terminal size");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(size(ROWS), size(COLS), 0)));
        let mut output = pair
            .master
            .try_clone_reader()
            .expect("the terminal's output");
        let parser = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read @ 1..) = output.read(&mut buffer) {
                parser
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .process(&buffer[..read]);
            }
        });
        let keys = pair.master.take_writer().expect("the terminal's input");
        // The master must outlive the child; it is closed with the writer at the end.
        std::mem::forget(pair.master);
        Self {
            screen,
            keys,
            child,
        }
    }

    fn text(&self) -> String {
        self.screen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .screen()
            .contents()
    }

    pub(crate) fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("keys typed");
        self.keys.flush().expect("keys sent");
    }

    /// A left click on the cell (column, row), counted from 0 at the top left, as a terminal
    /// reports it in SGR mode: a press, then a release.
    pub(crate) fn click(&mut self, (column, row): (u16, u16)) {
        let (x, y) = (column + 1, row + 1);
        self.type_keys(&format!("\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m"));
    }

    /// The cell (column, row) where `text` starts on the screen, the first from the top.
    pub(crate) fn position_of(&self, text: &str) -> Option<(u16, u16)> {
        let parser = self.screen.lock().unwrap_or_else(|p| p.into_inner());
        let screen = parser.screen();
        (0..ROWS).find_map(|row| {
            let cells: Vec<String> = (0..COLS)
                .map(|column| {
                    let symbol = screen.cell(row, column).map(|cell| cell.contents());
                    symbol.filter(|s| !s.is_empty()).unwrap_or(" ").to_owned()
                })
                .collect();
            (0..cells.len()).find_map(|column| {
                let mut rest = text;
                for symbol in &cells[column..] {
                    rest = rest.strip_prefix(symbol.as_str())?;
                    if rest.is_empty() {
                        return u16::try_from(column).ok().map(|column| (column, row));
                    }
                }
                None
            })
        })
    }

    /// Whether the terminal has been asked to report the mouse.
    pub(crate) fn reports_the_mouse(&self) -> bool {
        let parser = self.screen.lock().unwrap_or_else(|p| p.into_inner());
        parser.screen().mouse_protocol_mode() != vt100::MouseProtocolMode::None
    }

    /// Waits until the screen shows every one of `wanted`, and returns it.
    pub(crate) fn wait_for(&self, wanted: &[&str], within: Duration) -> String {
        self.wait_until(&format!("{wanted:?}"), within, |text| {
            wanted.iter().all(|w| text.contains(w))
        })
    }

    /// Waits until `done` holds for the screen, and returns it; fails saying `what` if it
    /// never does.
    fn wait_until(&self, what: &str, within: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text();
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the program has exited, and returns its exit code.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's state") {
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "the program did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `q` and waits until the console has exited.
    pub(crate) fn quit(&mut self) {
        self.type_keys("q");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().expect("the child's state").is_none() {
            assert!(Instant::now() < deadline, "the console did not quit on q");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The two values (this run, previous) of a percentile row of the Invoke view; `-` is `None`.
fn percentile_row(screen: &str, name: &str) -> [Option<f64>; 2] {
    let label = format!("{name} ");
    let line = screen
        .lines()
        .find(|line| line.contains(&label))
        .unwrap_or_else(|| panic!("a {name} row:\n{screen}"));
    let after = &line[line.find(&label).map_or(0, |at| at + label.len())..];
    let mut values = after
        .split(|c: char| c.is_whitespace() || c == '│')
        .filter(|word| !word.is_empty())
        .map(|word| word.parse::<f64>().ok());
    [values.next().flatten(), values.next().flatten()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_fires_a_burst_and_plots_it_then_quits_leaving_the_terminal_restored() {
    let lab = lab_stack().await;
    let host = ImageHost::start().await;
    let url = host.add("console.jpg", fixtures::jpeg(800, 600), "image/jpeg");
    let endpoint = lab.endpoint.clone();
    let stack = lab.stack.clone();
    // The console blocks on its terminal; it runs on a blocking thread while this runtime
    // keeps serving the image host.
    tokio::task::spawn_blocking(move || {
        let dir = std::env::temp_dir().join(format!("hybridlab-console-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a working directory");
        let mut console = Console::start(
            &dir,
            &["--endpoint", &endpoint, "--stack", &stack],
            &[("HYBRIDLAB_IMAGE_URL", &url)],
        );
        // The Stack view reads the stacks by itself and selects the one asked for.
        let text = console.wait_for(
            &["LOCAL SANDBOX", &stack, "resources", "lambda function"],
            Duration::from_secs(60),
        );
        assert!(text.contains("1 Stack"), "{text}");

        // A burst of 10 at concurrency 4: `-` takes N from 100 down to 10.
        console.type_keys("2-");
        console.wait_for(&["next: N 10  C 4"], Duration::from_secs(10));
        console.type_keys("\r");
        let text = console.wait_for(&["ok 10", "burst finished"], Duration::from_secs(120));
        for wanted in [
            "client latency",
            "p50",
            "p99.9",
            "this run",
            "invocations/s",
            "cold",
        ] {
            assert!(text.contains(wanted), "`{wanted}` on the screen:\n{text}");
        }
        let [this_run, previous] = percentile_row(&text, "p50");
        assert!(this_run.is_some_and(|ms| ms > 0.0), "{text}");
        assert_eq!(previous, None, "no previous run yet:\n{text}");

        // A second burst keeps the first beside it for comparison.
        console.type_keys("\r");
        let text = console.wait_until(
            "a finished second run beside the first",
            Duration::from_secs(120),
            |text| {
                let [this_run, previous] = percentile_row(text, "p50");
                text.contains("burst finished") && this_run.is_some() && previous.is_some()
            },
        );
        assert!(text.contains("ok 10"), "{text}");

        // s saves the finished burst where `hybridlab report` reads it.
        console.type_keys("s");
        let text = console.wait_for(&["saved hybridlab-run-"], Duration::from_secs(10));
        let saved: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .expect("the working directory")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        assert_eq!(saved.len(), 1, "{saved:?}\n{text}");
        let file: hybridlab_bench::model::RunFile =
            serde_json::from_slice(&std::fs::read(&saved[0]).expect("readable"))
                .expect("a run file");
        assert_eq!(file.runs[0].samples.len(), 10);
        assert_eq!(file.runs[0].summary.ok, 10);
        let _ = std::fs::remove_dir_all(&dir);

        // The help lists the keys; q quits and the terminal leaves the alternate screen.
        console.type_keys("?");
        console.wait_for(&["keys", "fire a burst"], Duration::from_secs(10));
        // Esc alone: an Esc and a key in one read is Alt+key to a terminal.
        console.type_keys("\x1b");
        console.wait_until("the help closed", Duration::from_secs(10), |text| {
            !text.contains("fire a burst")
        });
        console.type_keys("q");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = console.child.try_wait().expect("the child's state") {
                break status;
            }
            assert!(Instant::now() < deadline, "the console did not quit on q");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status:?}");
        std::thread::sleep(Duration::from_millis(200));
        let parser = console.screen.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            !parser.screen().alternate_screen(),
            "the terminal is back on its main screen"
        );
    })
    .await
    .expect("the console test does not panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_the_console_says_to_use_the_subcommands() {
    let lab = lab_stack().await;
    let output = hybridlab_tests::stack::hybridlab_async(&lab.endpoint, &[], &[]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("needs a terminal") && stderr.contains("--json"),
        "{stderr}"
    );
}

/// The stack id in `stack <id> is up`, as the console's status line says it.
fn stack_brought_up(screen: &str) -> Option<String> {
    screen.match_indices("stack ").find_map(|(at, _)| {
        let (id, rest) = screen[at + "stack ".len()..].split_once(' ')?;
        rest.starts_with("is up").then(|| id.to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_brings_a_stack_up_invokes_it_reads_its_logs_and_tears_it_down() {
    let clients = hybridlab_tests::sandbox::edge_clients().await;
    let host = ImageHost::start().await;
    let url = host.add("lifecycle.jpg", fixtures::jpeg(640, 480), "image/jpeg");
    let endpoint = clients.endpoint.clone();
    let stack = tokio::task::spawn_blocking(move || {
        let dir = std::env::temp_dir().join(format!("hybridlab-console-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a working directory");
        let mut console = Console::start(
            &dir,
            &["--endpoint", &endpoint],
            &[("HYBRIDLAB_IMAGE_URL", &url)],
        );
        console.wait_for(&["LOCAL SANDBOX", "1 Stack"], Duration::from_secs(60));

        // n brings up a new stack, its steps listed as they happen.
        console.type_keys("n");
        let text = console.wait_until("the new stack up", Duration::from_secs(240), |text| {
            stack_brought_up(text).is_some()
        });
        let stack = stack_brought_up(&text).expect("the new stack's id");
        let every_step = format!(
            "{} done, 0 already in place, 0 running, 0 failed",
            hybridlab_provision::stack::Step::of_stack(false, false).len()
        );
        for wanted in [&every_step, "ok function", "done; Esc puts this away"] {
            assert!(text.contains(wanted), "`{wanted}` on the screen:\n{text}");
        }
        // The Stack view selects it once the stacks are read again.
        console.wait_for(
            &[&format!("{stack}  region"), "healthy"],
            Duration::from_secs(60),
        );

        // A burst against it: N 10 at concurrency 4.
        console.type_keys("2-");
        console.wait_for(&["next: N 10  C 4"], Duration::from_secs(10));
        console.type_keys("\r");
        let text = console.wait_for(&["ok 10", "burst finished"], Duration::from_secs(120));
        assert!(
            text.contains(&format!("hybridlab-proxy-{stack}")) || text.contains("p50"),
            "{text}"
        );
        let [this_run, _] = percentile_row(&text, "p50");
        assert!(this_run.is_some_and(|ms| ms > 0.0), "{text}");

        // Its logs: the function's REPORT lines and the server's lines, merged.
        console.type_keys("3");
        let text = console.wait_for(
            &[&format!("logs of {stack}"), "REPORT", "lambda", "ec2"],
            Duration::from_secs(60),
        );
        assert!(
            text.contains("duration"),
            "REPORT lines as their fields:\n{text}"
        );

        // Its table: ten rows of the burst, COMPLETED; o opens the selected row's objects.
        console.type_keys("5");
        console.wait_for(
            &[
                &format!("hybridlab-images-{stack}"),
                "COMPLETED",
                "\"image_id\"",
            ],
            Duration::from_secs(30),
        );
        console.type_keys("o");
        let text = console.wait_for(
            &["thumbnail.jpg", "medium.jpg", "large.jpg", "original.jpg"],
            Duration::from_secs(30),
        );
        assert!(text.contains("images bucket"), "the S3 view:\n{text}");
        // The object's detail: its type and the image id the server stores as metadata.
        console.type_keys("\x1b[B");
        console.wait_for(&["image/jpeg", "image-id"], Duration::from_secs(30));

        // d asks, y tears it down.
        console.type_keys("1d");
        console.wait_for(
            &[&format!("Tear down stack {stack}?")],
            Duration::from_secs(10),
        );
        console.type_keys("y");
        // The step panel stays; the status line may have moved on by the time it is read.
        let text = console.wait_for(
            &[&format!("down {stack} done"), "0 running, 0 failed"],
            Duration::from_secs(120),
        );
        assert!(text.contains("down "), "the teardown's steps:\n{text}");
        console.quit();
        let _ = std::fs::remove_dir_all(&dir);
        stack
    })
    .await
    .expect("the console test does not panic");

    // Checked apart from the console: nothing of the stack is left on the sandbox.
    let left = hybridlab_tests::stack::leftovers(&clients, &stack).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The name shown in the S3 view's detail for the selected object.
fn selected_object(screen: &str) -> Option<&str> {
    let (_, rest) = screen.split_once("│name ")?;
    rest.split_whitespace().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_moves_with_vi_keys_goes_back_with_shift_tab_filters_s3_and_takes_clicks() {
    let lab = lab_stack().await;
    let edge = edge_clients().await;
    let bucket = lab.names.images_bucket.clone();
    // A folder of this test's own among the images other tests leave, listed before theirs
    // (their ids are UUIDv7s, `019...`), on the listing's first page however many there are.
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let run = format!("0000-keys-{id}");
    let names = ["a-first.txt", "b-second.txt", "c-third.txt", "d-fourth.txt"];
    let keys: Vec<String> = names
        .iter()
        .map(|name| format!("images/{run}/{name}"))
        .collect();
    for key in &keys {
        edge.s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .content_type("text/plain")
            .body(ByteStream::from_static(b"a line"))
            .send()
            .await
            .unwrap_or_else(|err| panic!("PutObject {key}: {err:?}"));
    }
    let (endpoint, stack) = (lab.endpoint.clone(), lab.stack.clone());
    let folder = run.clone();
    let driven = tokio::task::spawn_blocking(move || {
        // Short, so the help shows the log's path on one row.
        let dir = std::env::temp_dir().join(format!("hl-{id}"));
        let state = dir.join("state");
        std::fs::create_dir_all(&dir).expect("a working directory");
        let path = |name: &str| dir.join(name).to_str().expect("a UTF-8 path").to_owned();
        // A cache of its own too: hybridlab moves the cache's old records into the state
        // directory, and this one is removed at the end.
        let mut console = Console::start(
            &dir,
            &["--endpoint", &endpoint, "--stack", &stack],
            &[
                ("HYBRIDLAB_STATE_DIR", &path("state")),
                ("HYBRIDLAB_CACHE_DIR", &path("cache")),
                ("RUST_LOG", "hybridlab_console=debug"),
            ],
        );
        console.wait_for(
            &["LOCAL SANDBOX", &stack, "resources"],
            Duration::from_secs(60),
        );
        assert!(console.reports_the_mouse(), "mouse capture is on");

        // Shift-Tab from the first view lands on the last, then the one before it.
        console.type_keys("\x1b[Z");
        console.wait_for(&["s submit a file"], Duration::from_secs(10));
        console.type_keys("\x1b[Z");
        console.wait_for(
            &[&format!("hybridlab-images-{stack}, page 1")],
            Duration::from_secs(30),
        );

        // A click on the S3 tab shows that view.
        let tab = console.position_of("4 S3").expect("the S3 tab");
        console.click(tab);
        console.wait_for(&["images bucket: /", "images/"], Duration::from_secs(30));
        console.type_keys("\r");
        console.wait_for(&["images bucket: /images/"], Duration::from_secs(30));

        // `/` narrows the folders to this test's; letters are typed, not keys (j, k, g, G).
        console.type_keys("/");
        console.wait_for(&["filter: keys that contain"], Duration::from_secs(10));
        let typed = format!("KEYS-{}", id.to_uppercase());
        console.type_keys(&typed);
        let text = console.wait_for(
            &["1 of ", &format!("match `{typed}`")],
            Duration::from_secs(10),
        );
        assert!(text.contains(&format!("{folder}/")), "{text}");
        console.type_keys("\r");
        console.wait_until("the filter kept", Duration::from_secs(10), |text| {
            !text.contains("filter: keys that contain")
        });
        // The selection followed the filter: Enter opens this test's folder.
        console.type_keys("\r");
        console.wait_for(
            &["4 entries", "a-first.txt", "d-fourth.txt"],
            Duration::from_secs(30),
        );
        let at = |console: &Console, name: &str| {
            console.wait_until(
                &format!("{name} selected"),
                Duration::from_secs(10),
                |text| selected_object(text) == Some(name),
            );
        };
        at(&console, "a-first.txt");
        console.type_keys("G");
        at(&console, "d-fourth.txt");
        console.type_keys("g");
        at(&console, "a-first.txt");
        console.type_keys("j");
        at(&console, "b-second.txt");
        console.type_keys("j");
        at(&console, "c-third.txt");
        console.type_keys("k");
        at(&console, "b-second.txt");

        // A click on a row selects it.
        let row = console.position_of("d-fourth.txt").expect("the row");
        console.click(row);
        at(&console, "d-fourth.txt");

        // The filter, in the objects: any case, the counts follow; Esc clears it.
        console.type_keys("/THIRD");
        let text = console.wait_for(&["1 of 4 match `THIRD`"], Duration::from_secs(10));
        assert!(
            !text.contains("a-first.txt") && !text.contains("b-second.txt"),
            "{text}"
        );
        console.type_keys("\r");
        at(&console, "c-third.txt");
        console.type_keys("\x1b");
        console.wait_for(
            &["4 entries", "a-first.txt", "filter cleared"],
            Duration::from_secs(10),
        );
        at(&console, "c-third.txt");

        // The help names the log file; no log line ever reached the screen.
        let log = state.join("console.log");
        console.type_keys("?");
        let text = console.wait_for(
            &[
                "keys: everywhere and in S3",
                &format!("log file: {}", log.display()),
            ],
            Duration::from_secs(10),
        );
        assert!(!text.contains("the console starts"), "{text}");
        console.type_keys("\x1b");
        console.wait_until("the help closed", Duration::from_secs(10), |text| {
            !text.contains("keys: everywhere")
        });
        console.quit();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!console.reports_the_mouse(), "mouse capture is off again");
        let written = std::fs::read_to_string(&log).expect("the console's log");
        assert!(written.contains("the console starts"), "{written}");
        assert!(written.contains("the console quits"), "{written}");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;

    for key in &keys {
        hybridlab_tests::aws::delete_every_version(&edge.s3, &bucket, key).await;
    }
    driven.expect("the console test does not panic");
}

/// The first eight digits of the request id on the Invoke view's selected row (`> #seq ...`),
/// as its list shows ids below 72 columns.
fn selected_request_id(screen: &str) -> Option<String> {
    let line = screen.lines().find(|line| line.contains("> #"))?;
    let row = &line[line.find("> #")?..];
    row.split(|c: char| c.is_whitespace() || c == '│')
        .find(|word| word.len() == 8 && word.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// The Logs view's rows of log lines (`hh:mm:ss.mmm source ...`), the borders left out.
fn log_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .map(|line| line.trim_start_matches('│'))
        .filter(|line| {
            let bytes = line.as_bytes();
            bytes.len() > 13 && bytes[2] == b':' && bytes[5] == b':' && bytes[8] == b'.'
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_on_the_slowest_invocation_of_a_burst_shows_its_log_lines() {
    let lab = lab_stack().await;
    let host = ImageHost::start().await;
    let url = host.add("slowest.jpg", fixtures::jpeg(800, 600), "image/jpeg");
    let (endpoint, stack) = (lab.endpoint.clone(), lab.stack.clone());
    tokio::task::spawn_blocking(move || {
        let dir = std::env::temp_dir().join(format!("hybridlab-console-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a working directory");
        let mut console = Console::start(
            &dir,
            &["--endpoint", &endpoint, "--stack", &stack],
            &[("HYBRIDLAB_IMAGE_URL", &url)],
        );
        console.wait_for(
            &["LOCAL SANDBOX", &stack, "resources"],
            Duration::from_secs(60),
        );

        // A burst of 10 at concurrency 4.
        console.type_keys("2-");
        console.wait_for(&["next: N 10  C 4"], Duration::from_secs(10));
        console.type_keys("\r");
        console.wait_for(&["ok 10", "burst finished"], Duration::from_secs(120));

        // Down selects the slowest; at 30 rows the breakdown's panel shows to hold the list.
        console.type_keys("\x1b[B");
        let text = console.wait_until(
            "the slowest invocation selected",
            Duration::from_secs(10),
            |text| selected_request_id(text).is_some(),
        );
        for wanted in [
            "where the time goes",
            "overhead",
            "network",
            "download",
            "slowest 10 of 10",
            "Enter: its logs",
        ] {
            assert!(text.contains(wanted), "`{wanted}` on the screen:\n{text}");
        }
        let id = selected_request_id(&text).expect("a request id on the selected row");
        // The slowest is the first row of the list.
        let first_row = text
            .lines()
            .find(|line| line.contains("│  #") || line.contains("> #"))
            .unwrap_or_default();
        assert!(first_row.contains("> #"), "the first row selected:\n{text}");

        // Enter: the Logs view, narrowed to that invocation's lines, the function's (START,
        // REPORT) and the server's.
        console.type_keys("\r");
        let text = console.wait_until(
            &format!("the log lines of invocation {id}"),
            Duration::from_secs(60),
            |text| {
                let rows = log_rows(text);
                text.contains(&format!("filter: {id}"))
                    && rows.iter().any(|row| row.contains("START"))
                    && rows.iter().any(|row| row.contains("REPORT"))
                    && rows.iter().any(|row| row.contains(" ec2 "))
            },
        );
        assert!(text.contains("3 Logs"), "{text}");
        let rows = log_rows(&text);
        assert!(
            rows.iter().all(|row| row.contains(&id)),
            "only lines of {id}:\n{text}"
        );
        console.quit();
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("the console test does not panic");
}
