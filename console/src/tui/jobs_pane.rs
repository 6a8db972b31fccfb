//! The Jobs view (the job-worker variant, `up --with jobs`): the selected stack's jobs with
//! status, kind, worker and its state, each stage's time and the cost at list prices; `s`
//! submits a file (an archive as an image batch), `Enter` opens a job's history, outputs and
//! log lines, `c` cancels it, `r` reads the list again. Each read carries a sequence number
//! and only the latest one's answer is kept.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use super::action::{Action, Key, Loading, Severity, Typed, moved, type_into};
use super::mouse::ListRows;
use super::palette::Palette;
use crate::lab::jobs::{JobLogLine, JobRow, JobsRequest, JobsUpdate};
use hybridlab_bench::jobs::row_stages;
use hybridlab_provision::stack::cost::job_cost;
use hybridlab_wire::job::{Job, JobStatus};

/// The text an `append-text` job submitted from the console appends.
pub const CONSOLE_TEXT: &str = "added from the hybridlab console";

/// A job opened with Enter.
#[derive(Debug, Clone, Default)]
pub struct JobDetail {
    pub job_id: String,
    pub loaded: Loading<(Job, Vec<JobLogLine>)>,
    pub scroll: u16,
}

/// What the Jobs view shows.
#[derive(Debug, Clone, Default)]
pub struct JobsPane {
    /// The stack whose jobs these are (`None`: the target's only one).
    pub stack: Option<String>,
    pub jobs: Loading<Vec<JobRow>>,
    pub selected: usize,
    pub detail: Option<JobDetail>,
    /// The path of a file to submit, being typed (every key goes to it while `Some`).
    pub typing: Option<String>,
    /// The instance type the cost is worked out for.
    pub instance_type: String,
    last_seq: u64,
}

type Status = Option<(Severity, String)>;

/// Milliseconds as the table shows them: `850ms`, `12.3s`, `-` for none.
fn duration_text(ms: Option<f64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000.0 => format!("{ms:.0}ms"),
        Some(ms) => format!("{:.1}s", ms / 1000.0),
    }
}

/// The cost of `job` so far at list prices: its worker from RunInstances' answer to the
/// job's end (the minute's minimum included), and its requests; `None` before it had one.
pub fn job_cost_usd(job: &Job, instance_type: &str) -> Option<f64> {
    let stages = row_stages(job);
    let alive_ms = stages.boot_to_worker_ms? + stages.job_ms.unwrap_or(0.0);
    Some(
        job_cost(
            instance_type,
            alive_ms / 1000.0,
            0,
            job.outputs.len() as u64,
        )
        .total_usd,
    )
}

impl JobsPane {
    /// Called when the view is shown; `stack` is the one selected in the Stack view.
    pub fn on_enter(&mut self, stack: Option<&str>, instance_type: &str) -> Option<Action> {
        self.instance_type = instance_type.to_owned();
        let kept = !matches!(self.jobs, Loading::Idle | Loading::Error(_));
        if self.stack.as_deref() == stack && kept {
            return None;
        }
        self.stack = stack.map(str::to_owned);
        self.detail = None;
        Some(self.list())
    }

    pub fn typing(&self) -> bool {
        self.typing.is_some()
    }

    fn list(&mut self) -> Action {
        self.last_seq += 1;
        self.jobs = Loading::Loading;
        Action::Jobs(JobsRequest::List {
            seq: self.last_seq,
            stack: self.stack.clone(),
        })
    }

    fn selected_job(&self) -> Option<&Job> {
        self.jobs.loaded()?.get(self.selected).map(|row| &row.job)
    }

    pub fn on_key(&mut self, key: Key, status: &mut Status) -> Option<Action> {
        if let Some(path) = self.typing.as_mut() {
            return match type_into(path, key) {
                Typed::Edited => None,
                Typed::Cancelled => {
                    self.typing = None;
                    None
                }
                Typed::Submitted => {
                    let path = self.typing.take().unwrap_or_default();
                    let path = path.trim().to_owned();
                    if path.is_empty() {
                        return None;
                    }
                    *status = Some((Severity::Info, format!("submitting {path}...")));
                    Some(Action::Jobs(JobsRequest::Submit {
                        stack: self.stack.clone(),
                        path,
                        text: CONSOLE_TEXT.into(),
                    }))
                }
            };
        }
        if let Some(detail) = self.detail.as_mut() {
            match key {
                Key::Esc | Key::Char('q') => self.detail = None,
                Key::Down | Key::Char('J') => detail.scroll = detail.scroll.saturating_add(1),
                Key::Up | Key::Char('K') => detail.scroll = detail.scroll.saturating_sub(1),
                Key::PageDown => detail.scroll = detail.scroll.saturating_add(10),
                Key::PageUp => detail.scroll = detail.scroll.saturating_sub(10),
                Key::Home => detail.scroll = 0,
                Key::Char('c') => return self.cancel(status),
                _ => {}
            }
            return None;
        }
        match key {
            Key::Char('r') => Some(self.list()),
            // `s` rather than `j`, which moves down in every list, as in k9s.
            Key::Char('s') => {
                self.typing = Some(String::new());
                None
            }
            Key::Char('c') => self.cancel(status),
            Key::Enter => {
                let job_id = self.selected_job()?.job_id.clone();
                self.last_seq += 1;
                self.detail = Some(JobDetail {
                    job_id: job_id.clone(),
                    loaded: Loading::Loading,
                    scroll: 0,
                });
                Some(Action::Jobs(JobsRequest::Detail {
                    seq: self.last_seq,
                    stack: self.stack.clone(),
                    job_id,
                }))
            }
            _ => {
                let len = self.jobs.loaded().map_or(0, Vec::len);
                self.selected = moved(self.selected, len, key);
                None
            }
        }
    }

    fn cancel(&mut self, status: &mut Status) -> Option<Action> {
        let job = match &self.detail {
            Some(detail) => detail.job_id.clone(),
            None => self.selected_job()?.job_id.clone(),
        };
        *status = Some((Severity::Info, format!("cancelling {job}...")));
        Some(Action::Jobs(JobsRequest::Cancel {
            stack: self.stack.clone(),
            job_id: job,
        }))
    }

    /// Takes a background answer in; a submit or a cancel reads the list again.
    pub fn apply(&mut self, update: JobsUpdate, status: &mut Status) -> Option<Action> {
        match update {
            JobsUpdate::Listed { seq, jobs } if seq == self.last_seq => {
                self.jobs = match jobs {
                    Ok(jobs) => {
                        self.selected = self.selected.min(jobs.len().saturating_sub(1));
                        Loading::Loaded(jobs)
                    }
                    Err(err) => Loading::Error(err),
                };
                None
            }
            JobsUpdate::Detail { seq, detail } => {
                if let Some(open) = self.detail.as_mut()
                    && seq == self.last_seq
                {
                    open.loaded = match detail {
                        Ok(loaded) => Loading::Loaded(loaded),
                        Err(err) => Loading::Error(err),
                    };
                }
                None
            }
            JobsUpdate::Submitted(result) => {
                *status = Some(match result {
                    Ok(job) => (Severity::Info, format!("submitted {}", job.job_id)),
                    Err(err) => (Severity::Error, err),
                });
                Some(self.list())
            }
            JobsUpdate::Cancelled(result) => {
                *status = Some(match result {
                    Ok(done) if done.from.is_some() => (
                        Severity::Info,
                        format!(
                            "{} cancelled{}",
                            done.job_id,
                            done.terminated
                                .map(|i| format!("; its worker {i} is terminating"))
                                .unwrap_or_default()
                        ),
                    ),
                    Ok(done) => (
                        Severity::Info,
                        format!("{} had already ended {}", done.job_id, done.status),
                    ),
                    Err(err) => (Severity::Error, err),
                });
                self.detail = None;
                Some(self.list())
            }
            // An answer to a read made before the latest.
            JobsUpdate::Listed { .. } => None,
        }
    }
}

fn status_colour(status: JobStatus) -> Color {
    match status {
        JobStatus::Succeeded => Color::Green,
        JobStatus::Failed | JobStatus::Cancelled => Color::Red,
        JobStatus::Running | JobStatus::Launching => Color::Yellow,
        JobStatus::Submitted | JobStatus::Queued => Color::Cyan,
    }
}

/// Draws the view; returns the rows of the jobs' list, if it is shown.
pub fn draw(frame: &mut Frame, area: Rect, pane: &JobsPane, palette: Palette) -> Option<ListRows> {
    let [list, footer] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let rows = match &pane.detail {
        Some(detail) => {
            draw_detail(frame, list, detail, pane, palette);
            None
        }
        None => draw_list(frame, list, pane, palette),
    };
    let hint = match (&pane.typing, &pane.detail) {
        (Some(path), _) => {
            format!("file to submit (.zip/.tar: image batch): {path}_   Enter submits, Esc cancels")
        }
        (None, Some(_)) => "Esc back  c cancel the job  Up/Down scroll".into(),
        (None, None) => "s submit a file  Enter history and logs  c cancel  r refresh".into(),
    };
    frame.render_widget(
        Paragraph::new(hint).style(palette.fg(Color::DarkGray)),
        footer,
    );
    rows
}

/// What `loading` holds once it is loaded; until then, draws in `block` that `what` is being
/// read, or why it could not be.
fn loaded_or_placeholder<'a, T>(
    frame: &mut Frame,
    area: Rect,
    loading: &'a Loading<T>,
    what: &str,
    block: &Block,
    palette: Palette,
) -> Option<&'a T> {
    let placeholder = match loading {
        Loading::Loaded(value) => return Some(value),
        Loading::Idle | Loading::Loading => Paragraph::new(format!("reading the {what}...")),
        Loading::Error(err) => Paragraph::new(err.as_str())
            .style(palette.fg(Color::Red))
            .wrap(Wrap { trim: true }),
    };
    frame.render_widget(placeholder.block(block.clone()), area);
    None
}

fn draw_list(frame: &mut Frame, area: Rect, pane: &JobsPane, palette: Palette) -> Option<ListRows> {
    let title = format!(
        " Jobs of {} ",
        pane.stack.as_deref().unwrap_or("the only stack")
    );
    let block = Block::bordered().title(title);
    let rows = loaded_or_placeholder(frame, area, &pane.jobs, "jobs", &block, palette)?;
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new("No jobs yet: s submits a file.").block(block),
            area,
        );
        return None;
    }
    let count = rows.len();
    let inner = block.inner(area);
    let wide = area.width >= 120;
    let mut header = vec!["job", "status", "kind", "worker", "state"];
    if wide {
        header.extend(["launcher", "queued", "boot", "job", "cost"]);
    }
    let lines: Vec<Row> = rows
        .iter()
        .map(|row| {
            let job = &row.job;
            let stages = row_stages(job);
            let mut cells = vec![
                Cell::from(job.job_id.clone()),
                Cell::from(job.status.as_str()).style(palette.fg(status_colour(job.status))),
                Cell::from(job.kind.name()),
                Cell::from(job.instance_id.clone().unwrap_or_else(|| "-".into())),
                Cell::from(row.instance_state.clone().unwrap_or_else(|| "-".into())),
            ];
            if wide {
                cells.extend([
                    Cell::from(duration_text(stages.to_launcher_ms)),
                    Cell::from(duration_text(stages.queued_ms)),
                    Cell::from(duration_text(stages.boot_to_worker_ms)),
                    Cell::from(duration_text(stages.job_ms)),
                    Cell::from(
                        job_cost_usd(job, &pane.instance_type)
                            .map_or_else(|| "-".into(), |usd| format!("${usd:.5}")),
                    ),
                ]);
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(19),
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(20),
        Constraint::Length(14),
    ];
    if wide {
        widths.extend([Constraint::Length(9); 4]);
        widths.push(Constraint::Length(10));
    }
    let table = Table::new(lines, widths)
        .header(Row::new(header).style(palette.fg(Color::DarkGray)))
        .row_highlight_style(palette.selected())
        .block(block);
    let mut state = TableState::default().with_selected(Some(pane.selected));
    frame.render_stateful_widget(table, area, &mut state);
    // Under the header row.
    let body = Rect {
        y: inner.y.saturating_add(1),
        height: inner.height.saturating_sub(1),
        ..inner
    };
    Some(ListRows::drawn(body, state.offset(), count))
}

fn draw_detail(
    frame: &mut Frame,
    area: Rect,
    detail: &JobDetail,
    pane: &JobsPane,
    palette: Palette,
) {
    let block = Block::bordered().title(format!(" Job {} ", detail.job_id));
    let Some((job, log)) =
        loaded_or_placeholder(frame, area, &detail.loaded, "job", &block, palette)
    else {
        return;
    };
    let mut lines = vec![Line::from(vec![
        Span::raw(format!("{} ", job.kind.name())),
        Span::styled(job.status.as_str(), palette.fg(status_colour(job.status))),
        Span::raw(
            job.instance_id
                .as_deref()
                .map(|i| format!(" on {i}"))
                .unwrap_or_default(),
        ),
        Span::raw(
            job_cost_usd(job, &pane.instance_type)
                .map(|usd| format!("  ${usd:.5} at list prices"))
                .unwrap_or_default(),
        ),
    ])];
    for event in &job.history {
        lines.push(Line::from(format!(
            "  {:<26} {:<10} {}",
            event.at,
            event.status.as_str(),
            event.detail
        )));
    }
    if let Some(error) = &job.error {
        lines.push(Line::styled(
            format!("  error: {error}"),
            palette.fg(Color::Red),
        ));
    }
    for output in &job.outputs {
        lines.push(Line::from(format!("  output: {output}")));
    }
    lines.push(Line::styled("log lines", palette.fg(Color::DarkGray)));
    if log.is_empty() {
        lines.push(Line::from("  (none yet)"));
    }
    for line in log {
        lines.push(Line::from(format!("  {:<8} {}", line.source, line.message)));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((detail.scroll, 0)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::{App, Tab};
    use hybridlab_wire::job::{JobEvent, JobKind};

    fn job(id: &str, history: &[(JobStatus, &str)], launched: Option<&str>) -> Job {
        Job {
            job_id: id.into(),
            kind: JobKind::AppendText { text: "x".into() },
            status: history.last().map_or(JobStatus::Submitted, |(s, _)| *s),
            submitted_at: history[0].1.into(),
            instance_id: launched.map(|_| format!("i-{}", &id[2..10])),
            launched_at: launched.map(str::to_owned),
            heartbeat_at: None,
            lease_seconds: 60,
            input_bytes: None,
            outputs: if history.last().map(|(s, _)| *s) == Some(JobStatus::Succeeded) {
                vec![format!("jobs/{id}/output/output.txt")]
            } else {
                Vec::new()
            },
            error: None,
            history: history
                .iter()
                .map(|(status, at)| JobEvent {
                    status: *status,
                    at: (*at).into(),
                    detail: String::new(),
                })
                .collect(),
        }
    }

    fn rows() -> Vec<JobRow> {
        vec![
            JobRow {
                job: job(
                    "j-00000000000000a1",
                    &[
                        (JobStatus::Submitted, "2026-12-06T10:00:00.000Z"),
                        (JobStatus::Launching, "2026-12-06T10:00:00.300Z"),
                        (JobStatus::Running, "2026-12-06T10:00:16.000Z"),
                        (JobStatus::Succeeded, "2026-12-06T10:00:17.500Z"),
                    ],
                    Some("2026-12-06T10:00:01.000Z"),
                ),
                instance_state: Some("terminated".into()),
            },
            JobRow {
                job: job(
                    "j-00000000000000a2",
                    &[
                        (JobStatus::Submitted, "2026-12-06T10:00:02.000Z"),
                        (JobStatus::Queued, "2026-12-06T10:00:02.200Z"),
                    ],
                    None,
                ),
                instance_state: None,
            },
        ]
    }

    fn app_with_jobs() -> App {
        let mut app = App::new("LOCAL SANDBOX".into(), false, String::new());
        app.tab = Tab::Jobs;
        app.jobs.stack = Some("abcd1234".into());
        app.jobs.instance_type = "t3.micro".into();
        app.jobs.jobs = Loading::Loaded(rows());
        app
    }

    fn render(app: &App, width: u16, height: u16) -> String {
        crate::tui::fixtures::screen(app, width, height, false).to_string()
    }

    #[test]
    fn the_jobs_with_their_stages_and_cost_at_80x24() {
        insta::assert_snapshot!(render(&app_with_jobs(), 80, 24));
    }

    #[test]
    fn the_jobs_with_their_stages_and_cost_at_200x60() {
        let screen = render(&app_with_jobs(), 200, 60);
        // The boot stage (RunInstances' answer to RUNNING) and the job's own time.
        assert!(
            screen.contains("15.0s") && screen.contains("1.5s"),
            "{screen}"
        );
        assert!(
            screen.contains("QUEUED") && screen.contains("terminated"),
            "{screen}"
        );
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn the_jobs_with_their_stages_and_cost_at_130x12() {
        insta::assert_snapshot!(render(&app_with_jobs(), 130, 12));
    }

    #[test]
    fn enter_opens_a_jobs_history_and_c_cancels_it() {
        let mut app = app_with_jobs();
        let action = app.on_key(Key::Enter);
        let Some(Action::Jobs(JobsRequest::Detail { seq, job_id, .. })) = action else {
            panic!("{action:?}");
        };
        assert_eq!(job_id, "j-00000000000000a1");
        let loaded = rows()[0].job.clone();
        let log = vec![JobLogLine {
            source: "worker",
            timestamp_ms: None,
            message: "hybridlab-worker: job j-00000000000000a1 SUCCEEDED".into(),
        }];
        app.apply_jobs(JobsUpdate::Detail {
            seq,
            detail: Ok((loaded, log)),
        });
        let screen = render(&app, 100, 30);
        assert!(screen.contains("SUCCEEDED on i-00000000"), "{screen}");
        assert!(
            screen.contains("worker   hybridlab-worker: job"),
            "{screen}"
        );
        assert!(screen.contains("output: jobs/j-00000000000000a1/output/output.txt"));
        let action = app.on_key(Key::Char('c'));
        assert!(
            matches!(action, Some(Action::Jobs(JobsRequest::Cancel { ref job_id, .. })) if job_id == "j-00000000000000a1"),
            "{action:?}"
        );
        app.on_key(Key::Esc);
        assert!(app.jobs.detail.is_none());
    }

    #[test]
    fn s_takes_a_path_and_submits_it_and_an_old_answer_is_dropped() {
        let mut app = app_with_jobs();
        assert_eq!(app.on_key(Key::Char('s')), None);
        assert!(app.jobs.typing());
        // Letters are typed into the path, j and k included: they move only in the list.
        for c in "jk/in.zip".chars() {
            assert_eq!(
                app.on_key(Key::Char(c)),
                None,
                "typed, not a key of the view"
            );
        }
        let action = app.on_key(Key::Enter);
        assert!(
            matches!(action, Some(Action::Jobs(JobsRequest::Submit { ref path, .. })) if path == "jk/in.zip"),
            "{action:?}"
        );
        assert_eq!(
            crate::lab::jobs::kind_for("in.zip", "t"),
            JobKind::ImageBatch
        );
        // A refresh, then the answer of an older read: dropped.
        let Some(Action::Jobs(JobsRequest::List { seq, .. })) = app.on_key(Key::Char('r')) else {
            panic!("r reads the list");
        };
        app.apply_jobs(JobsUpdate::Listed {
            seq: seq - 1,
            jobs: Ok(Vec::new()),
        });
        assert!(matches!(app.jobs.jobs, Loading::Loading));
        app.apply_jobs(JobsUpdate::Listed {
            seq,
            jobs: Ok(rows()),
        });
        assert_eq!(app.jobs.jobs.loaded().map(Vec::len), Some(2));
    }

    #[test]
    fn j_and_k_move_in_the_list_and_scroll_a_jobs_history() {
        let mut app = app_with_jobs();
        assert_eq!(app.on_key(Key::Char('j')), None, "a move, not a submit");
        assert!(!app.jobs.typing());
        assert_eq!(app.jobs.selected, 1);
        app.on_key(Key::Char('k'));
        assert_eq!(app.jobs.selected, 0);
        app.on_key(Key::Char('G'));
        assert_eq!(app.jobs.selected, 1);
        app.on_key(Key::Char('g'));
        assert_eq!(app.jobs.selected, 0);
        let (screen, map) = crate::tui::fixtures::screen_and_map(&app, 80, 24);
        let (column, row) =
            crate::tui::fixtures::find(&screen, "j-00000000000000a2").expect("drawn");
        app.on_mouse(crate::tui::action::Mouse::Click { column, row }, &map);
        assert_eq!(app.jobs.selected, 1);
        app.on_key(Key::Enter);
        app.on_key(Key::Char('j'));
        app.on_key(Key::Char('j'));
        app.on_key(Key::Char('k'));
        assert_eq!(app.jobs.detail.as_ref().map(|d| d.scroll), Some(1));
        app.on_key(Key::Char('g'));
        assert_eq!(app.jobs.detail.as_ref().map(|d| d.scroll), Some(0));
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        let _ = render(&app_with_jobs(), 20, 5);
    }
}
