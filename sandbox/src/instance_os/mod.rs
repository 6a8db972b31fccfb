//! Amazon Linux 2023 as an instance's user-data sees it, in a directory of the instance's own.
//! The script runs there with `HYBRIDLAB_ROOT` naming that directory (the script prefixes its
//! paths with it; on EC2 it is unset), the OS commands it calls are the [`shims`], and `aws`
//! is the real AWS CLI. Once the script is done the agent reads from that disk what a booted
//! Amazon Linux would now run: the services and timers started, and the files the CloudWatch
//! agent collects. This module is the disk and the parsing; [`super::ec2_host`] runs things.

mod shims;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hybridlab_wire::launch::{ROOT_ENV, USER_DATA_SCRIPT};

pub(crate) use shims::CLOUDWATCH_AGENT_UNIT;

/// Written by cloud-init when the first boot's modules are done: later boots do not run the
/// user-data again.
const BOOT_FINISHED: &str = "/var/lib/cloud/instance/boot-finished";
/// The commands the script finds first on its `PATH`.
const SHIM_DIR: &str = "/usr/local/sbin";
const CLOUDWATCH_AGENT_PACKAGE: &str = "amazon-cloudwatch-agent";

/// An instance's disk: a directory standing for its `/`.
#[derive(Debug, Clone)]
pub(crate) struct InstanceRoot {
    dir: PathBuf,
}

impl InstanceRoot {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `absolute`, a path as the instance sees it, is on the host.
    pub(crate) fn path(&self, absolute: &str) -> PathBuf {
        self.dir.join(absolute.trim_start_matches('/'))
    }

    /// The program `absolute` names: in the instance's tree if it is there, else the host's
    /// (the instance's `/usr/bin` is the host's, as the script's `date` and `install` are).
    pub(crate) fn program(&self, absolute: &str) -> PathBuf {
        let inside = self.path(absolute);
        if inside.exists() {
            inside
        } else {
            PathBuf::from(absolute)
        }
    }

    /// Lays out the disk for a first boot: the OS commands, the package repository, and the
    /// user-data script where cloud-init keeps it. Returns the script's path.
    pub(crate) fn prepare(
        &self,
        user_data: &[u8],
        aws_cli: &Path,
        edge: &str,
        metadata: Option<&str>,
    ) -> io::Result<PathBuf> {
        for dir in ["/etc/systemd/system", "/run", "/tmp", "/root", "/var/log"] {
            std::fs::create_dir_all(self.path(dir))?;
        }
        let shims = [
            ("systemctl", shims::SYSTEMCTL.to_owned()),
            ("shutdown", shims::SHUTDOWN.to_owned()),
            ("poweroff", shims::POWEROFF.to_owned()),
            ("dnf", shims::DNF.to_owned()),
            ("aws", shims::aws(aws_cli, edge, metadata)),
        ];
        for (name, text) in shims {
            write_executable(&self.path(&format!("{SHIM_DIR}/{name}")), text.as_bytes())?;
        }
        let package = format!("{}/{CLOUDWATCH_AGENT_PACKAGE}", shims::PACKAGE_REPOSITORY);
        write_executable(
            &self.path(&format!(
                "{package}/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
            )),
            shims::CLOUDWATCH_AGENT_CTL.as_bytes(),
        )?;
        std::fs::create_dir_all(
            self.path(&format!("{package}/opt/aws/amazon-cloudwatch-agent/etc")),
        )?;
        let unit = self.path(&format!(
            "{package}/etc/systemd/system/{CLOUDWATCH_AGENT_UNIT}"
        ));
        create_parent(&unit)?;
        std::fs::write(unit, shims::CLOUDWATCH_AGENT_SERVICE)?;
        let script = self.path(USER_DATA_SCRIPT);
        write_executable(&script, user_data)?;
        Ok(script)
    }

    /// The environment the user-data runs with: cloud-init's, with the root named and the OS
    /// commands first on `PATH`; and what an instance's network gives its programs on EC2
    /// without a word: AWS's endpoints (here the edge) and the metadata service (here the
    /// instance's own, or none).
    pub(crate) fn script_environment(
        &self,
        edge: &str,
        metadata: Option<&str>,
    ) -> Vec<(String, String)> {
        let metadata = match metadata {
            Some(endpoint) => (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_owned(),
                endpoint.to_owned(),
            ),
            None => ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        };
        vec![
            ("AWS_ENDPOINT_URL".to_owned(), edge.to_owned()),
            metadata,
            (ROOT_ENV.to_owned(), self.dir.display().to_string()),
            (
                "PATH".to_owned(),
                format!(
                    "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                    self.path(SHIM_DIR).display()
                ),
            ),
            ("HOME".to_owned(), self.path("/root").display().to_string()),
            ("TMPDIR".to_owned(), self.path("/tmp").display().to_string()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ]
    }

    pub(crate) fn first_boot_done(&self) -> bool {
        self.path(BOOT_FINISHED).exists()
    }

    pub(crate) fn mark_boot_finished(&self) -> io::Result<()> {
        let marker = self.path(BOOT_FINISHED);
        create_parent(&marker)?;
        std::fs::write(marker, b"")
    }

    /// The units the user-data started (`systemctl start`, `enable --now`), in order, once.
    pub(crate) fn started_units(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.path(shims::STARTED_UNITS)).unwrap_or_default();
        let mut units: Vec<String> = Vec::new();
        for name in text.lines().map(str::trim).filter(|name| !name.is_empty()) {
            if !units.iter().any(|unit| unit == name) {
                units.push(name.to_owned());
            }
        }
        units
    }

    /// The units a boot starts: those linked into `multi-user.target.wants` and
    /// `timers.target.wants` (what `systemctl enable` made).
    pub(crate) fn enabled_units(&self) -> Vec<String> {
        let mut units = Vec::new();
        for target in ["multi-user.target", "timers.target"] {
            let wants = self.path(&format!("/etc/systemd/system/{target}.wants"));
            let Ok(entries) = std::fs::read_dir(wants) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            units.extend(names);
        }
        units
    }

    /// Clears what the last boot's script requested: `/run` is a tmpfs on Amazon Linux.
    pub(crate) fn clear_run(&self) {
        let _ = std::fs::remove_dir_all(self.path("/run/hybridlab"));
    }

    pub(crate) fn poweroff_requested(&self) -> bool {
        self.path(shims::POWEROFF_REQUESTED).exists()
    }

    /// Unit `name` as systemd would read it from `/etc/systemd/system`.
    pub(crate) fn unit(&self, name: &str) -> Result<Unit, String> {
        let path = self.path(&format!("/etc/systemd/system/{name}"));
        std::fs::read_to_string(&path)
            .map(|text| Unit::parse(&text))
            .map_err(|err| format!("{name}: {err}"))
    }

    /// The files the CloudWatch agent's configurations collect, for instance `instance_id`.
    pub(crate) fn collected_logs(&self, instance_id: &str) -> Result<Vec<CollectedFile>, String> {
        let Ok(entries) = std::fs::read_dir(self.path(shims::CLOUDWATCH_AGENT_CONFIGS)) else {
            return Ok(Vec::new());
        };
        let mut collected = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let text = std::fs::read_to_string(entry.path())
                .map_err(|err| format!("{}: {err}", entry.path().display()))?;
            let config: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
                format!(
                    "Configuration validation first phase failed: {}: {err}",
                    entry.file_name().to_string_lossy()
                )
            })?;
            collected.extend(collect_list(&config, instance_id));
        }
        Ok(collected)
    }
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent),
        None => Ok(()),
    }
}

fn write_executable(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    create_parent(path)?;
    std::fs::write(path, contents)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// A systemd unit file: `[Section]` headers and `Key=Value` lines, comments and blank lines
/// skipped, a trailing backslash continuing a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Unit {
    entries: Vec<(String, String, String)>,
}

impl Unit {
    pub(crate) fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            if let Some(continued) = line.strip_suffix('\\') {
                pending.push_str(continued);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let line = std::mem::take(&mut pending);
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, value)) = line.split_once('=') {
                entries.push((
                    section.clone(),
                    key.trim().to_owned(),
                    value.trim().to_owned(),
                ));
            }
        }
        Self { entries }
    }

    /// Every value of `key` in `section`, in order.
    pub(crate) fn all<'a>(
        &'a self,
        section: &'a str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a str> {
        self.entries
            .iter()
            .filter(move |(s, k, _)| s == section && k == key)
            .map(|(_, _, value)| value.as_str())
    }

    /// The last value of `key` in `section` (a later assignment wins, as in systemd).
    pub(crate) fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, value)| value.as_str())
    }
}

/// A service unit's `[Service]` section, as far as the sandbox runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Service {
    /// `ExecStart=`, split into words.
    pub(crate) exec: Vec<String>,
    /// `EnvironmentFile=` paths, and whether each may be missing (a `-` prefix).
    pub(crate) environment_files: Vec<(String, bool)>,
    /// `Environment=` assignments.
    pub(crate) environment: Vec<(String, String)>,
    /// The file `StandardOutput=append:`/`file:` names, if any.
    pub(crate) output_file: Option<String>,
    /// `Restart=` is anything but `no`.
    pub(crate) restarts: bool,
}

impl Service {
    /// The service unit `name`, or what systemd would log about it.
    pub(crate) fn of(name: &str, unit: &Unit) -> Result<Self, String> {
        let exec_line = unit.get("Service", "ExecStart").ok_or_else(|| {
            format!("{name}: Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.")
        })?;
        // `-`, `@`, `+`, `!` prefixes change how systemd runs the command, not what it runs.
        let exec = split_words(exec_line.trim_start_matches(['-', '@', '+', '!', ':']));
        match exec.first() {
            Some(program) if program.starts_with('/') => {}
            Some(program) => {
                return Err(format!(
                    "{name}: Neither a valid executable name nor an absolute path: {program}"
                ));
            }
            None => return Err(format!("{name}: ExecStart= is empty")),
        }
        let environment_files = unit
            .all("Service", "EnvironmentFile")
            .map(|path| match path.strip_prefix('-') {
                Some(path) => (path.to_owned(), true),
                None => (path.to_owned(), false),
            })
            .collect();
        let environment = unit
            .all("Service", "Environment")
            .flat_map(split_words)
            .filter_map(|word| {
                word.split_once('=')
                    .map(|(key, value)| (key.to_owned(), value.to_owned()))
            })
            .collect();
        let output_file = unit.get("Service", "StandardOutput").and_then(|output| {
            output
                .strip_prefix("append:")
                .or_else(|| output.strip_prefix("file:"))
                .map(str::to_owned)
        });
        Ok(Self {
            exec,
            environment_files,
            environment,
            output_file,
            restarts: unit.get("Service", "Restart").is_some_and(|r| r != "no"),
        })
    }

    /// Whether the service powers the machine off (`systemctl poweroff`, `poweroff`,
    /// `shutdown -h`): the sandbox does that itself rather than run a program.
    pub(crate) fn powers_off(&self) -> bool {
        let program = self
            .exec
            .first()
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or_default();
        let args: Vec<&str> = self.exec.iter().skip(1).map(String::as_str).collect();
        match program {
            "systemctl" => matches!(args.as_slice(), ["poweroff" | "halt", ..]),
            "poweroff" | "halt" => true,
            "shutdown" => !args.contains(&"-r"),
            _ => false,
        }
    }
}

/// Splits a command line or an `Environment=` value into words: whitespace separates them,
/// double or single quotes group them.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(open), ch) if ch == open => quote = None,
            (Some(_), ch) => word.push(ch),
            (None, '"' | '\'') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, ch) if ch.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, ch) => {
                word.push(ch);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// A timer's `OnCalendar=`, in the one form the sandbox reads: an absolute time
/// `YYYY-MM-DD HH:MM:SS UTC` (what the TTL's timer holds).
pub(crate) fn calendar_time(text: &str) -> Result<SystemTime, String> {
    let trimmed = text.trim();
    let unreadable = || format!("Failed to parse calendar specification '{trimmed}'");
    let local = trimmed.strip_suffix(" UTC").ok_or_else(|| {
        format!("OnCalendar={trimmed}: hybridlab's sandbox reads only absolute UTC times")
    })?;
    let (day, clock) = local.split_once(' ').ok_or_else(unreadable)?;
    let numbers = |text: &str, separator: char| -> Option<Vec<i32>> {
        text.split(separator)
            .map(|part| part.parse().ok())
            .collect()
    };
    let (Some([year, month, day]), Some([hour, minute, second])) = (
        numbers(day, '-')
            .as_deref()
            .and_then(|n| <[i32; 3]>::try_from(n).ok()),
        numbers(clock, ':')
            .as_deref()
            .and_then(|n| <[i32; 3]>::try_from(n).ok()),
    ) else {
        return Err(unreadable());
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(unreadable)?;
    let date =
        time::Date::from_calendar_date(year, month, u8::try_from(day).map_err(|_| unreadable())?)
            .map_err(|_| unreadable())?;
    let clock = time::Time::from_hms(
        u8::try_from(hour).map_err(|_| unreadable())?,
        u8::try_from(minute).map_err(|_| unreadable())?,
        u8::try_from(second).map_err(|_| unreadable())?,
    )
    .map_err(|_| unreadable())?;
    let at = time::PrimitiveDateTime::new(date, clock).assume_utc();
    Ok(SystemTime::from(at))
}

/// One file the CloudWatch agent ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CollectedFile {
    /// The path as the instance sees it.
    pub(crate) file_path: String,
    pub(crate) log_group: String,
    pub(crate) log_stream: String,
}

/// `logs.logs_collected.files.collect_list` of an agent configuration, with the
/// `{instance_id}` placeholder filled in (the agent's default stream name, too).
fn collect_list(config: &serde_json::Value, instance_id: &str) -> Vec<CollectedFile> {
    config["logs"]["logs_collected"]["files"]["collect_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some(CollectedFile {
                file_path: entry["file_path"].as_str()?.to_owned(),
                log_group: entry["log_group_name"].as_str()?.to_owned(),
                log_stream: entry["log_stream_name"]
                    .as_str()
                    .unwrap_or("{instance_id}")
                    .replace("{instance_id}", instance_id),
            })
        })
        .collect()
}

/// What cloud-init prints around the user-data on the console, in its format.
pub(crate) mod cloud_init {
    use hybridlab_wire::launch::{USER_DATA_FAILED, USER_DATA_SCRIPT};

    const VERSION: &str = "22.2.2";

    fn stamp() -> String {
        let now = time::OffsetDateTime::now_utc();
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        )
    }

    pub(crate) fn final_stage_starts(uptime_s: f64) -> String {
        format!(
            "Cloud-init v. {VERSION} running 'modules:final' at {}. Up {uptime_s:.2} seconds.",
            hybridlab_wire::now_rfc3339()
        )
    }

    /// The lines cloud-init logs when the script exits with `status` (`None`: killed).
    pub(crate) fn script_failed(status: Option<i32>) -> Vec<String> {
        let code = status.map_or_else(|| "signal".to_owned(), |code| code.to_string());
        vec![
            format!(
                "{} - util.py[WARNING]: Failed running {USER_DATA_SCRIPT} [{code}]",
                stamp()
            ),
            format!(
                "{} - cc_scripts_user.py[WARNING]: {USER_DATA_FAILED} (scripts in /var/lib/cloud/instance/scripts)",
                stamp()
            ),
        ]
    }

    pub(crate) fn finished(uptime_s: f64) -> String {
        format!(
            "Cloud-init v. {VERSION} finished at {}. Datasource DataSourceEc2Local.  Up {uptime_s:.2} seconds",
            hybridlab_wire::now_rfc3339()
        )
    }
}

#[cfg(test)]
mod tests;
