//! The image server's launch: the user-data script every target runs. On AWS cloud-init runs
//! it: it fetches the server binary and its environment file from the artifacts bucket,
//! installs a systemd unit and schedules the self-termination (a deadline on disk and a
//! systemd timer, so a reboot or a stop and start does not reset it). The sandbox's agent runs
//! the same script in a directory of the instance's own ([`ROOT_ENV`] names it; unset on EC2,
//! so every path is the instance's own), with Amazon Linux's commands it calls provided
//! against the sandbox, and starts what the script started.

/// Everything needed to start the image server on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLaunch {
    pub artifact_bucket: String,
    /// Key of the `hybridlab-ec2-server` binary.
    pub binary_key: String,
    /// Key of the environment file (`KEY=VALUE` lines) the server runs with.
    pub env_key: String,
    /// CloudWatch Logs group of the server's output.
    pub log_group: String,
    pub region: String,
    pub port: u16,
    /// The instance shuts itself down (and so terminates) this many seconds after its first
    /// boot; the deadline is an absolute time written at that boot.
    pub ttl_seconds: u64,
}

/// The variable naming the directory the script's absolute paths live under: unset on EC2,
/// the instance's own directory in the sandbox.
pub const ROOT_ENV: &str = "HYBRIDLAB_ROOT";

/// What cloud-init prints on the console when the user-data script exits with an error (its
/// `cc_scripts_user` module's warning): what the sandbox prints for a failed script, and what
/// `up` and `status` look for on either target.
pub const USER_DATA_FAILED: &str = "Failed to run module scripts_user";

/// Where cloud-init keeps the user-data script it runs (`part-001` for a single script).
pub const USER_DATA_SCRIPT: &str = "/var/lib/cloud/instance/scripts/part-001";

/// If the console output says the user-data failed, its last lines before the failure (what
/// the script printed last, usually the error).
pub fn user_data_failure(console: &str) -> Option<String> {
    let lines: Vec<&str> = console
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .collect();
    let failed = lines
        .iter()
        .position(|line| line.contains(USER_DATA_FAILED))?;
    let shown: Vec<&str> = lines[..failed]
        .iter()
        .rev()
        .filter(|line| !is_cloud_init_line(line))
        .take(3)
        .copied()
        .collect();
    Some(shown.into_iter().rev().collect::<Vec<_>>().join(" | "))
}

/// cloud-init's own lines (`... - util.py[WARNING]: ...`, `Cloud-init v. ...`), as opposed to
/// what the script printed.
fn is_cloud_init_line(line: &str) -> bool {
    line.starts_with("Cloud-init v.") || line.contains(".py[")
}

/// Where the first boot writes the TTL's deadline (`YYYY-MM-DD HH:MM:SS UTC`), and the timer
/// that powers the instance off then. Both live on the root volume, unlike `shutdown -h +N`,
/// whose schedule is in `/run` and so is lost by a reboot.
pub const TTL_DEADLINE_FILE: &str = "/etc/hybridlab/ttl-deadline";
pub const TTL_TIMER_UNIT: &str = "hybridlab-ttl.timer";
pub const TTL_SERVICE_UNIT: &str = "hybridlab-ttl.service";
/// The server's file-descriptor limit (systemd's `LimitNOFILE`): far above its connection cap
/// (1024 by default), so a flood meets the cap, where idle connections give way, and never the
/// 1024-descriptor default, where `accept()` fails for everyone.
pub const SERVER_NOFILE_LIMIT: u64 = 65_536;

impl ServerLaunch {
    /// The user-data script.
    pub fn render(&self) -> String {
        // umask 077: the file holds the token; `aws s3 cp` would make it 0644.
        self.script(&format!(
            "(umask 077 && aws s3 cp --no-progress --region {region} s3://{bucket}/{env} \"$root/etc/hybridlab/server.env\")\n",
            region = self.region,
            bucket = self.artifact_bucket,
            env = self.env_key,
        ))
    }

    /// The user-data script with the environment file written inline instead of fetched (for
    /// a CloudFormation stack, which cannot put an object in the bucket it creates), and the
    /// value of each AWS Secrets Manager secret in `secret_ids`, `KEY=VALUE` lines, appended
    /// at boot. So `env_file` must hold no secret: user-data is readable by any process on the
    /// instance through the instance metadata service.
    pub fn render_with_env(&self, env_file: &str, secret_ids: &[&str]) -> String {
        let mut write_env = format!(
            "(umask 077 && cat > \"$root/etc/hybridlab/server.env\") <<'ENV'\n{env_file}ENV\n"
        );
        for secret_id in secret_ids {
            // An assignment of its own, so `set -e` stops the script if the fetch fails.
            write_env.push_str(&format!(
                "secret=$(aws secretsmanager get-secret-value --region {region} --secret-id '{secret_id}' --query SecretString --output text)\n\
                 printf '%s\\n' \"$secret\" >> \"$root/etc/hybridlab/server.env\"\n\
                 unset secret\n",
                region = self.region,
            ));
        }
        self.script(&write_env)
    }

    fn ttl_script(&self) -> String {
        ttl_script(self.ttl_seconds)
    }

    fn script(&self, write_env: &str) -> String {
        format!(
            "#!/bin/bash\n\
             # hybridlab image server bootstrap (Amazon Linux 2023)\n\
             # Unset on EC2, so empty (read before `set -u`). hybridlab's sandbox runs this same\n\
             # script in a directory of the instance's own and names it here; the paths systemd\n\
             # reads stay absolute.\n\
             root=\"${ROOT_ENV}\"\n\
             set -euo pipefail\n\
             # Stop billing even if nobody tears the stack down: the TTL powers this instance off,\n\
             # which terminates it; first, so nothing below can keep it from being set.\n\
             {ttl_script}\
             install -d \"$root/opt/hybridlab\" \"$root/etc/hybridlab\"\n\
             aws s3 cp --no-progress --region {region} s3://{bucket}/{binary} \"$root/opt/hybridlab/hybridlab-ec2-server\"\n\
             {write_env}\
             chmod 755 \"$root/opt/hybridlab/hybridlab-ec2-server\"\n\
             cat > \"$root/etc/systemd/system/hybridlab.service\" <<'UNIT'\n\
             [Unit]\n\
             Description=hybridlab image server\n\
             After=network-online.target\n\
             [Service]\n\
             EnvironmentFile=/etc/hybridlab/server.env\n\
             Environment=HYBRIDLAB_LISTEN=0.0.0.0:{port}\n\
             ExecStart=/opt/hybridlab/hybridlab-ec2-server\n\
             StandardOutput=append:/var/log/hybridlab/server.log\n\
             StandardError=append:/var/log/hybridlab/server.log\n\
             Restart=always\n\
             DynamicUser=yes\n\
             LimitNOFILE={nofile}\n\
             [Install]\n\
             WantedBy=multi-user.target\n\
             UNIT\n\
             install -d \"$root/var/log/hybridlab\"\n\
             systemctl daemon-reload\n\
             systemctl enable --now hybridlab.service\n\
             # Ship the server's log to its CloudWatch group; the server runs even if this fails.\n\
             set +e\n\
             dnf install -y -q amazon-cloudwatch-agent\n\
             cat > \"$root/opt/aws/amazon-cloudwatch-agent/etc/hybridlab.json\" <<'AGENT'\n\
             {{\"logs\":{{\"logs_collected\":{{\"files\":{{\"collect_list\":[{{\"file_path\":\"/var/log/hybridlab/server.log\",\"log_group_name\":\"{group}\",\"log_stream_name\":\"{{instance_id}}\"}}]}}}}}}}}\n\
             AGENT\n\
             \"$root/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl\" -a fetch-config -m ec2 -s \\\n\
               -c \"file:$root/opt/aws/amazon-cloudwatch-agent/etc/hybridlab.json\"\n",
            bucket = self.artifact_bucket,
            binary = self.binary_key,
            group = self.log_group,
            region = self.region,
            port = self.port,
            ttl_script = self.ttl_script(),
            nofile = SERVER_NOFILE_LIMIT,
        )
    }
}

/// The TTL: the deadline (first boot + `ttl_seconds`) is written once to
/// [`TTL_DEADLINE_FILE`] and becomes a timer's absolute `OnCalendar=`. With
/// `Persistent=true` systemd keeps a stamp on disk of the timer's start, so after a boot
/// past the deadline the timer fires at once; powering off terminates the instance (its
/// shutdown behaviour is `terminate`).
fn ttl_script(ttl_seconds: u64) -> String {
    format!(
        "install -d \"$root/etc/hybridlab\"\n\
         if [ ! -s \"$root{TTL_DEADLINE_FILE}\" ]; then\n\
         \x20 date -u -d '+{ttl} seconds' '+%Y-%m-%d %H:%M:%S UTC' > \"$root{TTL_DEADLINE_FILE}\"\n\
         fi\n\
         deadline=$(cat \"$root{TTL_DEADLINE_FILE}\")\n\
         cat > \"$root/etc/systemd/system/{TTL_SERVICE_UNIT}\" <<'UNIT'\n\
         [Unit]\n\
         Description=hybridlab TTL reached: power off (the instance terminates)\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart=/usr/bin/systemctl poweroff\n\
         UNIT\n\
         cat > \"$root/etc/systemd/system/{TTL_TIMER_UNIT}\" <<UNIT\n\
         [Unit]\n\
         Description=hybridlab TTL deadline\n\
         [Timer]\n\
         OnCalendar=$deadline\n\
         Persistent=true\n\
         AccuracySec=1s\n\
         [Install]\n\
         WantedBy=timers.target\n\
         UNIT\n\
         systemctl daemon-reload\n\
         systemctl enable --now {TTL_TIMER_UNIT}\n",
        ttl = ttl_seconds,
    )
}

/// Everything a job worker's instance needs: it exists for one job, runs it once and powers
/// itself off, which terminates it (its shutdown behaviour is `terminate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLaunch {
    pub artifact_bucket: String,
    /// Key of the `hybridlab-worker` binary.
    pub binary_key: String,
    pub region: String,
    pub job_id: String,
    pub jobs_table: String,
    pub jobs_bucket: String,
    /// How often the worker beats while it runs the job.
    pub heartbeat_seconds: u64,
    /// The stack's TTL: a hard deadline even for a worker that hangs.
    pub ttl_seconds: u64,
}

/// The worker program's environment variables.
pub mod worker_env {
    pub const JOB_ID: &str = "HYBRIDLAB_JOB_ID";
    pub const JOBS_TABLE: &str = "HYBRIDLAB_JOBS_TABLE";
    pub const JOBS_BUCKET: &str = "HYBRIDLAB_JOBS_BUCKET";
    pub const HEARTBEAT_SECONDS: &str = "HYBRIDLAB_HEARTBEAT_SECONDS";
}

/// The launcher function's environment variables, which `up` sets and the function reads.
pub mod launcher_env {
    pub use super::worker_env::{HEARTBEAT_SECONDS, JOBS_BUCKET, JOBS_TABLE};
    /// The stack id, tagged on every worker.
    pub const STACK: &str = "HYBRIDLAB_STACK";
    pub const ARTIFACT_BUCKET: &str = "HYBRIDLAB_ARTIFACT_BUCKET";
    /// Key of the worker binary in the artifacts bucket.
    pub const WORKER_KEY: &str = "HYBRIDLAB_WORKER_KEY";
    pub const WORKER_PROFILE_ARN: &str = "HYBRIDLAB_WORKER_PROFILE_ARN";
    /// The AMI workers boot (the latest Amazon Linux 2023 when `up` ran).
    pub const WORKER_IMAGE: &str = "HYBRIDLAB_WORKER_IMAGE";
    pub const WORKER_INSTANCE_TYPE: &str = "HYBRIDLAB_WORKER_INSTANCE_TYPE";
    /// Optional: the default VPC's default group when unset.
    pub const WORKER_SECURITY_GROUP: &str = "HYBRIDLAB_WORKER_SECURITY_GROUP";
    /// The most workers running at once.
    pub const WORKER_CAP: &str = "HYBRIDLAB_WORKER_CAP";
    /// Each worker's hard deadline.
    pub const TTL_SECONDS: &str = "HYBRIDLAB_TTL_SECONDS";
}

/// The submit function's environment variables (beside the bearer token's
/// [`TOKEN_ENV`](crate::token::TOKEN_ENV)).
pub mod submit_env {
    pub use super::worker_env::{JOBS_BUCKET, JOBS_TABLE};
    /// How long a worker may stay silent before its job fails.
    pub const LEASE_SECONDS: &str = "HYBRIDLAB_LEASE_SECONDS";
}

impl WorkerLaunch {
    /// The user-data script: the TTL first, then the worker fetched and run in the
    /// foreground, then `shutdown -h now` whatever happened (no `set -e`: a worker that
    /// cannot even be fetched must not leave its instance running).
    pub fn render(&self) -> String {
        format!(
            "#!/bin/bash\n\
             # hybridlab job worker (Amazon Linux 2023): one job, then the instance terminates\n\
             # Unset on EC2, so empty (read before `set -u`); the sandbox's instance directory.\n\
             root=\"${ROOT_ENV}\"\n\
             set -uo pipefail\n\
             {ttl}\
             install -d \"$root/opt/hybridlab\"\n\
             if aws s3 cp --no-progress --region {region} s3://{bucket}/{binary} \"$root/opt/hybridlab/hybridlab-worker\"; then\n\
             \x20 chmod 755 \"$root/opt/hybridlab/hybridlab-worker\"\n\
             \x20 {job}='{job_id}' {table}='{jobs_table}' {jobs_bucket_var}='{jobs_bucket}' {heartbeat}={beat} AWS_REGION={region} \\\n\
             \x20   \"$root/opt/hybridlab/hybridlab-worker\"\n\
             \x20 echo \"hybridlab-worker exited with status $?\"\n\
             fi\n\
             shutdown -h now\n",
            ttl = ttl_script(self.ttl_seconds),
            region = self.region,
            bucket = self.artifact_bucket,
            binary = self.binary_key,
            job = worker_env::JOB_ID,
            job_id = self.job_id,
            table = worker_env::JOBS_TABLE,
            jobs_table = self.jobs_table,
            jobs_bucket_var = worker_env::JOBS_BUCKET,
            jobs_bucket = self.jobs_bucket,
            heartbeat = worker_env::HEARTBEAT_SECONDS,
            beat = self.heartbeat_seconds,
        )
    }
}

/// Parses an environment file: `KEY=VALUE` lines, `#` comments and blank lines ignored.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_writes_every_path_under_its_root() {
        let launch = ServerLaunch {
            artifact_bucket: "hybridlab-artifacts-ab12".into(),
            binary_key: "server/hybridlab-ec2-server".into(),
            env_key: "server/server.env".into(),
            log_group: "/hybridlab/ab12/ec2-server".into(),
            region: "eu-west-1".into(),
            port: 8080,
            ttl_seconds: 7200,
        };
        let script = launch.render();
        assert!(script.starts_with("#!/bin/bash\n"));
        assert!(
            !script.contains("shutdown -h"),
            "a schedule in /run does not survive a reboot"
        );
        assert!(script.contains("systemctl enable --now hybridlab-ttl.timer"));
        assert!(script.contains("systemctl enable --now hybridlab.service"));
        assert!(script.contains(&format!("\nLimitNOFILE={SERVER_NOFILE_LIMIT}\n")));
        // The CloudWatch agent's configuration is JSON naming the server's log group.
        let agent = script
            .split("<<'AGENT'\n")
            .nth(1)
            .and_then(|rest| rest.split("\nAGENT\n").next())
            .expect("an agent configuration");
        let agent: serde_json::Value = serde_json::from_str(agent).expect("JSON");
        assert_eq!(
            agent["logs"]["logs_collected"]["files"]["collect_list"][0]["log_group_name"],
            "/hybridlab/ab12/ec2-server"
        );
        // Every path the script writes is under `$root`, which is empty on EC2.
        assert!(
            script.contains("\nroot=\"$HYBRIDLAB_ROOT\"\nset -euo pipefail\n"),
            "{script}"
        );
        // No `${`: Terraform's heredocs and CloudFormation's Fn::Sub would read it as theirs.
        assert!(!script.contains("${"), "{script}");
        for line in script.lines().filter(|line| {
            line.starts_with("install ") || line.starts_with("chmod ") || line.starts_with("cat >")
        }) {
            assert!(
                line.split_whitespace()
                    .skip(1)
                    .filter(|word| word.contains('/'))
                    .all(|path| path.trim_start_matches("\"").starts_with("$root/")),
                "{line}"
            );
        }
        assert_eq!(launch.ttl_seconds, 7200);
    }

    fn launch(ttl_seconds: u64) -> ServerLaunch {
        ServerLaunch {
            artifact_bucket: "hybridlab-artifacts-ab12".into(),
            binary_key: "server/hybridlab-ec2-server".into(),
            env_key: "server/server.env".into(),
            log_group: "/hybridlab/ab12/ec2-server".into(),
            region: "eu-west-1".into(),
            port: 8080,
            ttl_seconds,
        }
    }

    /// A scratch directory removed when dropped, even if the test fails.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let dir = std::env::temp_dir().join(format!(
                "hybridlab-wire-{name}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).expect("a scratch directory");
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn bash(script: &str) -> std::process::Output {
        std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .output()
            .expect("bash runs")
    }

    /// Runs the script's TTL part with its paths under `root` and `systemctl` recorded.
    fn run_ttl_part(launch: &ServerLaunch, root: &std::path::Path) -> String {
        let root = root.display();
        // The script's own prefix, and systemctl recorded instead of run.
        let part = launch.ttl_script();
        let output = bash(&format!(
            "root={root}\nsystemctl() {{ echo \"$*\" >> {root}/systemctl; }}\n\
             install -d {root}/etc/systemd/system\n{part}cat {root}/systemctl"
        ));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn the_ttl_is_an_absolute_deadline_on_disk_with_a_persistent_timer() {
        let scratch = Scratch::new("ttl");
        let root = &scratch.0;
        let launch = launch(7200);
        let calls = run_ttl_part(&launch, root);
        assert!(calls.contains("daemon-reload"), "{calls}");
        assert!(
            calls.contains("enable --now hybridlab-ttl.timer"),
            "{calls}"
        );

        let read = |path: &str| {
            std::fs::read_to_string(root.join(path.trim_start_matches('/')))
                .unwrap_or_else(|err| panic!("{path}: {err}"))
        };
        let deadline = read(TTL_DEADLINE_FILE).trim().to_owned();
        let epoch = |text: &str| -> i64 {
            let out = bash(&format!("date -u -d '{text}' +%s"));
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("`{text}` is a date"))
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .expect("after 1970");
        let due = epoch(&deadline);
        assert!(
            (due - (now + 7200)).abs() < 120,
            "deadline {deadline} is not two hours from now"
        );
        let timer = read(&format!("/etc/systemd/system/{TTL_TIMER_UNIT}"));
        assert!(
            timer.contains(&format!("OnCalendar={deadline}\n")),
            "an absolute calendar time: {timer}"
        );
        assert!(timer.contains("Persistent=true\n"), "{timer}");
        let service = read(&format!("/etc/systemd/system/{TTL_SERVICE_UNIT}"));
        assert!(service.contains("ExecStart=/usr/bin/systemctl poweroff"));

        // The script again (cloud-init run twice, a rebuilt unit): the deadline stays.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let again = launch.clone();
        run_ttl_part(
            &ServerLaunch {
                ttl_seconds: 60,
                ..again
            },
            root,
        );
        assert_eq!(read(TTL_DEADLINE_FILE).trim(), deadline);

        // systemd itself reads the units as a timer with a date, where it is installed.
        let system = root.join("etc/systemd/system");
        match std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(system.join(TTL_TIMER_UNIT))
            .output()
        {
            Ok(verify) => assert!(
                verify.status.success(),
                "systemd-analyze verify: {}",
                String::from_utf8_lossy(&verify.stderr)
            ),
            Err(err) => eprintln!("skipped: systemd-analyze verify ({err})"),
        }
    }

    #[test]
    fn every_script_is_valid_bash_and_writes_the_env_file_private() {
        let launch = launch(7200);
        let plain = launch.render();
        let inline = launch.render_with_env(
            "HYBRIDLAB_BUCKET=b\n",
            &["arn:aws:secretsmanager:eu-west-1:1:secret:t"],
        );
        for script in [&plain, &inline] {
            let check = std::process::Command::new("bash")
                .args(["-n", "-c", script])
                .output()
                .expect("bash runs");
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
            assert!(script.contains("(umask 077 && "), "{script}");
        }
        // The secret is fetched at boot, never written into the user-data.
        assert!(inline.contains(
            "secret=$(aws secretsmanager get-secret-value --region eu-west-1 --secret-id 'arn:aws:secretsmanager:eu-west-1:1:secret:t'"
        ));
        assert!(
            inline.contains("printf '%s\\n' \"$secret\" >> \"$root/etc/hybridlab/server.env\"")
        );
    }

    #[test]
    fn the_inline_env_file_is_written_0600_and_the_secret_appended() {
        let scratch = Scratch::new("env");
        let root = scratch.0.display();
        let script = launch(60).render_with_env("HYBRIDLAB_BUCKET=b\n", &["the-secret-id"]);
        let write_env = script
            .lines()
            .skip_while(|line| !line.starts_with("(umask 077 && cat"))
            .take_while(|line| !line.starts_with("chmod 755"))
            .collect::<Vec<_>>()
            .join("\n")
            // The CLI as the instance's would answer: the secret's lines, the last one ended.
            .replace(
                "aws secretsmanager get-secret-value",
                "printf 'HYBRIDLAB_TOKEN=s3cr3t\\nHYBRIDLAB_TLS_KEY=a2V5\\n'; :",
            );
        let output = bash(&format!(
            "umask 022\nroot={root}\ninstall -d {root}/etc/hybridlab\n{write_env}\nstat -c %a {root}/etc/hybridlab/server.env\ncat {root}/etc/hybridlab/server.env"
        ));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "600\nHYBRIDLAB_BUCKET=b\nHYBRIDLAB_TOKEN=s3cr3t\nHYBRIDLAB_TLS_KEY=a2V5\n"
        );
    }

    #[test]
    fn env_files_skip_comments_and_blanks() {
        assert_eq!(
            parse_env_file("# comment\nA=1\n\nB = two=2\n"),
            vec![("A".into(), "1".into()), ("B".into(), "two=2".into())]
        );
    }
}
