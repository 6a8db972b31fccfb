//! Recorded console states for the rendering tests: a deployed stack, and a burst under way
//! beside a finished one. Deterministic, so every snapshot draws the same.

use hybridlab_provision::stack::cost::CostEstimate;
use hybridlab_provision::stack::status::{InstanceStatus, ResourceStatus, ServerStatus};
use hybridlab_provision::stack::{ResourceKind, StackId, StackStatus};

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::action::{BurstSettings, Update};
use super::app::{App, LiveRun, Tab};
use super::log_file::LogFile;
use super::mouse::ScreenMap;
use super::palette::Palette;
use super::view::draw_mapped;
use hybridlab_bench::model::{Outcome, Sample};
use hybridlab_wire::StageTimings;
use hybridlab_wire::report::Report;

/// The screen `app` draws at `width` x `height`, in colour or as under `NO_COLOR`.
pub fn screen(app: &App, width: u16, height: u16, colour: bool) -> TestBackend {
    drawn(app, width, height, colour).0
}

/// The screen `app` draws at `width` x `height` in colour, and where its tabs and rows went.
pub fn screen_and_map(app: &App, width: u16, height: u16) -> (TestBackend, ScreenMap) {
    drawn(app, width, height, true)
}

fn drawn(app: &App, width: u16, height: u16, colour: bool) -> (TestBackend, ScreenMap) {
    drawn_with(app, width, height, Palette::new(colour))
}

/// The screen `app` draws at `width` x `height` with `palette`.
pub fn screen_with(app: &App, width: u16, height: u16, palette: Palette) -> TestBackend {
    drawn_with(app, width, height, palette).0
}

fn drawn_with(app: &App, width: u16, height: u16, palette: Palette) -> (TestBackend, ScreenMap) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    let mut map = ScreenMap::default();
    terminal
        .draw(|frame| map = draw_mapped(frame, app, palette))
        .expect("draws");
    (terminal.backend().clone(), map)
}

/// The cell (column, row) where `text` starts on the screen, the first from the top left.
pub fn find(screen: &TestBackend, text: &str) -> Option<(u16, u16)> {
    let buffer = screen.buffer();
    let area = buffer.area;
    for row in area.top()..area.bottom() {
        for column in area.left()..area.right() {
            let mut rest = text;
            for x in column..area.right() {
                let Some(cell) = buffer.cell((x, row)) else {
                    break;
                };
                match rest.strip_prefix(cell.symbol()) {
                    Some(after) => rest = after,
                    None => break,
                }
                if rest.is_empty() {
                    return Some((column, row));
                }
            }
        }
    }
    None
}

fn app() -> App {
    let mut app = App::new(
        "LOCAL SANDBOX (http://127.0.0.1:4566)".into(),
        false,
        "http://127.0.0.1:8000/cat.jpg".into(),
    );
    app.log_file = LogFile::Writing("/home/lab/.local/state/hybridlab/console.log".into());
    app
}

fn stack_status() -> StackStatus {
    let resource = |kind, name: &str, state: &str| ResourceStatus {
        kind,
        name: name.to_owned(),
        state: state.to_owned(),
        // Made with the stack, 32 minutes ago, like its instance.
        age_s: (state != "missing").then_some(1_930),
    };
    StackStatus {
        stack: StackId::parse("k3x9q2ma").expect("a valid id"),
        target: "local sandbox (http://127.0.0.1:4566)".into(),
        region: "us-east-1".into(),
        created_at: Some("2026-11-23T10:00:00Z".into()),
        resources: vec![
            resource(ResourceKind::Bucket, "hybridlab-images-k3x9q2ma", "present"),
            resource(
                ResourceKind::Bucket,
                "hybridlab-artifacts-k3x9q2ma",
                "present",
            ),
            resource(ResourceKind::Table, "hybridlab-images-k3x9q2ma", "ACTIVE"),
            resource(ResourceKind::Function, "hybridlab-proxy-k3x9q2ma", "Active"),
            resource(ResourceKind::Instance, "i-0a1b2c3d4e5f", "running"),
            resource(
                ResourceKind::LogGroup,
                "/hybridlab/k3x9q2ma/ec2-server",
                "missing",
            ),
        ],
        instance: Some(InstanceStatus {
            id: "i-0a1b2c3d4e5f".into(),
            state: "running".into(),
            instance_type: "t3.micro".into(),
            uptime_s: 1_930,
            ttl_left_s: Some(5_270),
            user_data_error: None,
        }),
        server: Some(ServerStatus {
            endpoint: "http://127.0.0.1:40123".into(),
            cert_sha256: None,
            healthy: true,
            detail: serde_json::json!({"status": "ok"}),
        }),
        cost: CostEstimate {
            per_hour_usd: 0.0104,
            so_far_usd: 0.0056,
            basis: "t3.micro on-demand us-east-1".into(),
        },
    }
}

pub fn app_with_stack() -> App {
    let mut app = app();
    let mut second = stack_status();
    second.stack = StackId::parse("zz81pp0c").expect("a valid id");
    second
        .resources
        .iter_mut()
        .for_each(|r| r.state = "missing".into());
    second.instance = None;
    second.server = None;
    app.apply(Update::Stacks(Ok(vec![stack_status(), second])));
    app
}

/// A sample `seq` of a run, with the parts a lab invocation has: client latencies spread
/// from about 3 to 35 ms (`scale` 10), every 50th a throttle (no REPORT), every 250th from
/// the 120th a server error (a REPORT, no stage timings), the first four cold (an init of
/// about 40 ms). The work is split as the lab splits it: the invoke overhead, the proxy's own
/// time, the network to the server, and the server's stages, decode and encode the largest.
fn sample(seq: u64, scale: u64) -> Sample {
    let work_us = 2_000 + (seq * 7_919 % 97) * 300 * scale / 10;
    let outcome = if seq % 50 == 49 {
        Outcome::Throttled
    } else if seq % 250 == 120 {
        Outcome::Ec2Error
    } else {
        Outcome::Ok
    };
    let overhead_us = 900 + seq * 31 % 7 * 100;
    let init_us = (seq < 4).then_some(38_000 + seq * 1_500);
    let latency_us = match outcome {
        Outcome::Throttled => overhead_us,
        _ => overhead_us + init_us.unwrap_or(0) + work_us,
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let proxy_us = 300 + seq * 13 % 5 * 100;
    let network_us = 250 + seq * 17 % 4 * 100;
    let round_trip_us = work_us - proxy_us;
    let total_us = round_trip_us - network_us;
    // The server's stages in shares of its total, varied a little per invocation.
    let wobble = (seq * 7 % 5) as f64 / 100.0;
    let share = |part: f64| ms(total_us) * part;
    let answered = outcome != Outcome::Throttled;
    Sample {
        seq,
        intended_us: seq * 400,
        sent_us: seq * 400,
        done_us: seq * 400 + latency_us,
        outcome,
        lambda: answered.then(|| Report {
            // Request ids are random UUIDs: their first eight digits tell them apart.
            request_id: format!(
                "{:08x}-0b1a-4c3d-9e8f-{seq:012}",
                seq.wrapping_mul(2_654_435_761) % (1 << 32)
            ),
            duration_ms: ms(work_us),
            billed_duration_ms: (work_us / 1000 + 1) as f64,
            memory_size_mb: 128,
            max_memory_used_mb: 21,
            init_duration_ms: init_us.map(ms),
            status: None,
            error_type: None,
        }),
        ec2_ms: (outcome == Outcome::Ok).then(|| StageTimings {
            download: share(0.12),
            decode: share(0.30 - wobble),
            resize: share(0.14 + wobble),
            encode: share(0.26),
            s3: share(0.11),
            dynamodb: share(0.05),
            total: ms(total_us),
        }),
        ec2_round_trip_ms: answered.then(|| ms(round_trip_us)),
        error: match outcome {
            Outcome::Throttled => Some("TooManyRequestsException: Rate Exceeded.".into()),
            Outcome::Ec2Error => Some(
                "the proxy answered 502: the image server said download_failed (the image URL answered 404 Not Found)"
                    .into(),
            ),
            _ => None,
        },
    }
}

pub fn app_with_bursts() -> App {
    let mut app = app();
    app.tab = Tab::Invoke;
    let settings = BurstSettings {
        invocations: 5_000,
        concurrency: 8,
        rate: None,
        image_url: "http://127.0.0.1:8000/cat.jpg".into(),
    };
    let mut previous = LiveRun::new(BurstSettings {
        invocations: 1_000,
        ..settings.clone()
    });
    for seq in 0..1_000 {
        previous.record(sample(seq, 12));
    }
    previous.finished = true;
    previous.function = Some("hybridlab-proxy-k3x9q2ma".into());
    app.invoke.settings = settings.clone();
    let mut current = LiveRun::new(settings);
    current.function = Some("hybridlab-proxy-k3x9q2ma".into());
    for seq in 0..3_000 {
        current.record(sample(seq, 10));
    }
    app.invoke.previous = Some(previous);
    app.invoke.current = Some(current);
    app
}

/// An `up` of a new stack under way beside the stacks already there: a few steps done, one
/// found in place, two running.
pub fn app_bringing_up_a_stack() -> App {
    use hybridlab_provision::stack::{StepEvent, StepStatus};

    let mut app = app_with_stack();
    app.on_key(super::action::Key::Char('n'));
    let event = |step: &str, resource: &str, status, elapsed_ms| StepEvent {
        stack: "q7w2e9rt".into(),
        step: step.into(),
        resource: resource.into(),
        status,
        elapsed_ms,
        detail: String::new(),
    };
    for event in [
        event("artifacts", "", StepStatus::Started, 0),
        event(
            "images-bucket",
            "hybridlab-images-q7w2e9rt",
            StepStatus::Started,
            0,
        ),
        event(
            "images-bucket",
            "hybridlab-images-q7w2e9rt",
            StepStatus::Done,
            210,
        ),
        event("table", "hybridlab-images-q7w2e9rt", StepStatus::Started, 0),
        event(
            "table",
            "hybridlab-images-q7w2e9rt",
            StepStatus::Skipped,
            35,
        ),
        event(
            "lambda-role",
            "hybridlab-lambda-q7w2e9rt",
            StepStatus::Started,
            0,
        ),
        event("artifacts", "", StepStatus::Done, 1_840),
        event(
            "instance",
            "hybridlab-server-q7w2e9rt",
            StepStatus::Started,
            0,
        ),
        StepEvent {
            detail: "i-0c1d2e3f4a5b6c7d8 pending: the instance is booting".into(),
            ..event(
                "instance",
                "hybridlab-server-q7w2e9rt",
                StepStatus::Waiting,
                3_100,
            )
        },
    ] {
        app.apply(Update::Step(event));
    }
    app
}
