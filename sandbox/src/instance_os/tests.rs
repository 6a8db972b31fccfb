use super::*;

use hybridlab_wire::launch::{ServerLaunch, TTL_TIMER_UNIT};

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hybridlab-instance-os-{}",
            uuid::Uuid::new_v4().simple()
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

fn launch() -> ServerLaunch {
    ServerLaunch {
        artifact_bucket: "hybridlab-artifacts-ab12".into(),
        binary_key: "server/hybridlab-ec2-server".into(),
        env_key: "server/server.env".into(),
        log_group: "/hybridlab/ab12/ec2-server".into(),
        region: "eu-west-1".into(),
        port: 8080,
        ttl_seconds: 7200,
    }
}

/// Stands in for the AWS CLI: `s3 cp SRC DEST` writes SRC's key into DEST, and a key named
/// `missing` fails as the CLI does.
const FAKE_AWS: &str = r#"#!/bin/bash
[ "$1 $2" = "s3 cp" ] || { echo "fake aws: $*" >&2; exit 2; }
shift 2
args=()
for arg in "$@"; do case "$arg" in --*) ;; *) args+=("$arg") ;; esac; done
source="${args[-2]}"; dest="${args[-1]}"
case "$source" in
  *missing*) echo "fatal error: An error occurred (404) when calling the HeadObject operation: Key \"missing\" does not exist" >&2; exit 1 ;;
esac
echo "${source##*/}=1" > "$dest"
echo "download: $source to $dest"
"#;

/// Runs `script` as the sandbox runs user-data, with [`FAKE_AWS`] as the CLI.
fn run(root: &InstanceRoot, script: &str) -> std::process::Output {
    let scratch = root.dir().with_extension("cli");
    std::fs::create_dir_all(&scratch).expect("a directory");
    let cli = scratch.join("aws");
    write_executable(&cli, FAKE_AWS.as_bytes()).expect("the fake CLI");
    let path = root
        .prepare(script.as_bytes(), &cli, "http://127.0.0.1:1", None)
        .expect("the disk is laid out");
    let output = std::process::Command::new(&path)
        .env_clear()
        .envs(root.script_environment("http://127.0.0.1:1", None))
        .output()
        .expect("the script runs");
    let _ = std::fs::remove_dir_all(scratch);
    output
}

#[test]
fn the_stacks_user_data_sets_up_the_server_its_log_shipping_and_its_ttl_under_its_root() {
    let scratch = Scratch::new();
    let root = InstanceRoot::new(scratch.0.join("root"));
    let output = run(&root, &launch().render());
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        root.started_units(),
        vec![TTL_TIMER_UNIT, "hybridlab.service", CLOUDWATCH_AGENT_UNIT]
    );
    assert_eq!(
        root.enabled_units(),
        vec![
            CLOUDWATCH_AGENT_UNIT.to_owned(),
            "hybridlab.service".to_owned(),
            TTL_TIMER_UNIT.to_owned()
        ]
    );
    let server = Service::of(
        "hybridlab.service",
        &root.unit("hybridlab.service").expect("the unit"),
    )
    .expect("a service");
    assert_eq!(server.exec, vec!["/opt/hybridlab/hybridlab-ec2-server"]);
    assert!(root.program(&server.exec[0]).starts_with(root.dir()));
    assert_eq!(
        server.environment,
        vec![("HYBRIDLAB_LISTEN".to_owned(), "0.0.0.0:8080".to_owned())]
    );
    assert_eq!(
        server.environment_files,
        vec![("/etc/hybridlab/server.env".to_owned(), false)]
    );
    assert_eq!(
        std::fs::read_to_string(root.path("/etc/hybridlab/server.env")).expect("the env file"),
        "server.env=1\n"
    );
    assert_eq!(
        server.output_file.as_deref(),
        Some("/var/log/hybridlab/server.log")
    );
    assert!(server.restarts);
    assert_eq!(
        root.collected_logs("i-0abc")
            .expect("a valid configuration"),
        vec![CollectedFile {
            file_path: "/var/log/hybridlab/server.log".into(),
            log_group: "/hybridlab/ab12/ec2-server".into(),
            log_stream: "i-0abc".into(),
        }]
    );
    let timer = root.unit(TTL_TIMER_UNIT).expect("the timer");
    let deadline = calendar_time(timer.get("Timer", "OnCalendar").expect("a calendar time"))
        .expect("an absolute time");
    let from_now = deadline
        .duration_since(SystemTime::now())
        .expect("in the future")
        .as_secs();
    assert!((7000..=7200).contains(&from_now), "{from_now}");
    let ttl = Service::of(
        "hybridlab-ttl.service",
        &root.unit("hybridlab-ttl.service").expect("the unit"),
    )
    .expect("a service");
    assert!(ttl.powers_off());
    assert!(!server.powers_off());
    assert!(!root.poweroff_requested());
    // Nothing was written outside the root.
    assert!(!Path::new("/opt/hybridlab").exists());
}

#[test]
fn a_typo_in_the_user_data_fails_the_script_before_it_starts_the_server() {
    let scratch = Scratch::new();
    let root = InstanceRoot::new(scratch.0.join("root"));
    let broken = launch().render().replace("chmod 755", "chmdo 755");
    let output = run(&root, &broken);
    assert_eq!(output.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chmdo: command not found"), "{stderr}");
    // The TTL was set first; the server was never started.
    assert_eq!(root.started_units(), vec![TTL_TIMER_UNIT]);
}

#[test]
fn a_missing_artifact_fails_the_script_with_the_clis_error() {
    let scratch = Scratch::new();
    let root = InstanceRoot::new(scratch.0.join("root"));
    let output = run(
        &root,
        &ServerLaunch {
            binary_key: "server/missing".into(),
            ..launch()
        }
        .render(),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("fatal error: An error occurred (404)")
    );
}

#[test]
fn the_os_commands_refuse_what_they_do_not_model() {
    let scratch = Scratch::new();
    let root = InstanceRoot::new(scratch.0.join("root"));
    let output = run(
        &root,
        "#!/bin/bash\nset -u\n\
         systemctl enable nothing.service; echo \"enable $?\"\n\
         systemctl start nothing; echo \"start $?\"\n\
         systemctl is-active sshd; echo \"is-active $?\"\n\
         dnf install -y jq; echo \"dnf $?\"\n\
         shutdown -r now; echo \"reboot $?\"\n\
         shutdown -h now; echo \"poweroff $?\"\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        "enable 1\nstart 5\nis-active 1\ndnf 1\nreboot 1\npoweroff 0\n"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Unit file nothing.service does not exist."),
        "{stderr}"
    );
    assert!(stderr.contains("Unable to find a match: jq"), "{stderr}");
    assert!(root.poweroff_requested());
}

#[test]
fn units_are_read_as_systemd_reads_them() {
    let unit = Unit::parse(
        "# a comment\n[Service]\nEnvironment=\"A=one two\" B=2\nEnvironment=C=3\nExecStart=-/usr/bin/env \\\n  FOO=1 /bin/true\nEnvironmentFile=-/etc/optional\nRestart=no\n",
    );
    let service = Service::of("x.service", &unit).expect("a service");
    assert_eq!(service.exec, vec!["/usr/bin/env", "FOO=1", "/bin/true"]);
    assert_eq!(
        service.environment,
        vec![
            ("A".to_owned(), "one two".to_owned()),
            ("B".to_owned(), "2".to_owned()),
            ("C".to_owned(), "3".to_owned())
        ]
    );
    assert_eq!(
        service.environment_files,
        vec![("/etc/optional".to_owned(), true)]
    );
    assert!(!service.restarts);
    assert!(
        Service::of("y.service", &Unit::parse("[Service]\nType=simple\n"))
            .expect_err("no ExecStart")
            .contains("Service has no ExecStart=")
    );
    assert!(
        Service::of("z.service", &Unit::parse("[Service]\nExecStart=server\n"))
            .expect_err("a relative program")
            .contains("Neither a valid executable name nor an absolute path")
    );
    assert_eq!(
        calendar_time("1970-01-01 00:01:40 UTC"),
        Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100))
    );
    assert!(calendar_time("daily").is_err());
}

#[test]
fn cloud_inits_failure_lines_are_what_up_and_status_look_for() {
    let console = [
        cloud_init::final_stage_starts(15.0),
        "/var/lib/cloud/instance/scripts/part-001: line 40: chmdo: command not found".to_owned(),
    ]
    .into_iter()
    .chain(cloud_init::script_failed(Some(127)))
    .chain([cloud_init::finished(16.0)])
    .collect::<Vec<_>>()
    .join("\n");
    assert_eq!(
        hybridlab_wire::launch::user_data_failure(&console).as_deref(),
        Some("/var/lib/cloud/instance/scripts/part-001: line 40: chmdo: command not found")
    );
    assert_eq!(
        hybridlab_wire::launch::user_data_failure(&cloud_init::finished(3.0)),
        None
    );
}
