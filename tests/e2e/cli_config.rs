//! Where the target comes from, through the binary: a config file makes the AWS target stick
//! (a command then asks AWS, and without credentials is refused as on AWS), the environment
//! and the flags override it in that order, `hybridlab config` says where each setting came
//! from, and a config file with a typo is refused with its path and the key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hybridlab_tests::sandbox::{build_binary, without_aws_credentials};

/// A config home of its own, removed when dropped.
struct ConfigHome(PathBuf);

impl ConfigHome {
    fn with(text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hybridlab-config-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(dir.join("hybridlab")).expect("a config directory");
        std::fs::write(dir.join("hybridlab").join("config.toml"), text).expect("the file");
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("hybridlab").join("config.toml")
    }
}

impl Drop for ConfigHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `hybridlab ARGS` with `home` as XDG_CONFIG_HOME, no AWS credentials or configuration to
/// find, and only `envs` of the variables that choose a target.
fn run(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(build_binary("hybridlab-console", "hybridlab"));
    command
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("HYBRIDLAB_TARGET")
        .env_remove("HYBRIDLAB_ENDPOINT");
    without_aws_credentials(&mut command);
    command.envs(envs.iter().copied());
    command.output().expect("hybridlab runs")
}

fn settings(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec!["config", "--json"];
    all.extend_from_slice(args);
    let output = run(home, &all, envs);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[test]
fn the_config_file_makes_the_target_stick_and_the_environment_and_flags_override_it() {
    let home = ConfigHome::with(
        "target = \"aws\"\nprofile = \"lab\"\nregion = \"eu-west-1\"\nimage_url = \"https://example.org/cat.jpg\"\n",
    );
    let file = home.file().display().to_string();

    let from_file = settings(&home.0, &[], &[]);
    assert_eq!(from_file["config_file"], file.as_str());
    assert_eq!(from_file["config_file_exists"], true);
    let s = &from_file["settings"];
    assert_eq!(s["target"]["value"], "aws");
    assert_eq!(
        s["target"]["source"],
        serde_json::json!({"kind": "file", "name": file})
    );
    assert_eq!(s["profile"]["value"], "lab");
    assert_eq!(s["region"]["value"], "eu-west-1");
    assert_eq!(s["image_url"]["value"], "https://example.org/cat.jpg");

    let from_env = settings(
        &home.0,
        &[],
        &[("HYBRIDLAB_TARGET", "sandbox"), ("AWS_REGION", "us-west-2")],
    );
    let s = &from_env["settings"];
    assert_eq!(s["target"]["value"], "sandbox");
    assert_eq!(
        s["target"]["source"],
        serde_json::json!({"kind": "env", "name": "HYBRIDLAB_TARGET"})
    );
    assert_eq!(s["region"]["value"], "us-west-2");

    let from_flags = settings(
        &home.0,
        &["--profile", "course"],
        &[("HYBRIDLAB_TARGET", "sandbox")],
    );
    let s = &from_flags["settings"];
    assert_eq!(s["target"]["value"], "aws");
    assert_eq!(
        s["target"]["source"],
        serde_json::json!({"kind": "flag", "name": "--profile"})
    );
    assert_eq!(s["profile"]["value"], "course");

    // The text form names every source.
    let text = run(&home.0, &["config"], &[("AWS_REGION", "us-west-2")]);
    let said = String::from_utf8_lossy(&text.stdout);
    assert!(said.contains(&format!("config file: {file}")), "{said}");
    assert!(
        said.contains("the environment variable AWS_REGION"),
        "{said}"
    );
    assert!(said.contains(&format!("the config file {file}")), "{said}");

    // The sticky target is the one a command uses: `status` asks AWS, which without
    // credentials is refused as `--aws` is.
    let status = run(&home.0, &["status"], &[]);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no usable AWS credentials"), "{stderr}");
}

#[test]
fn a_config_file_with_a_typo_or_a_contradiction_is_refused_with_where_it_is() {
    let home = ConfigHome::with("regoin = \"eu-west-1\"\n");
    let file = home.file().display().to_string();
    for args in [&["status"][..], &["config"]] {
        let output = run(&home.0, args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&file) && stderr.contains("regoin"),
            "{args:?}: {stderr}"
        );
    }
    let home = ConfigHome::with("target = \"gcp\"\n");
    let output = run(&home.0, &["status"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`target` in") && stderr.contains("`aws` or `sandbox`"),
        "{stderr}"
    );
    // Two flags that choose different targets.
    let home = ConfigHome::with("");
    let output = run(
        &home.0,
        &[
            "status",
            "--region",
            "eu-west-1",
            "--endpoint",
            "http://127.0.0.1:9",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("--region chooses AWS and --endpoint the local target"),
        "{stderr}"
    );
}
