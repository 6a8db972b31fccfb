//! Infrastructure as code through the `hybridlab` binary: `export terraform|cloudformation`
//! writes the files and will not overwrite them unasked; cfn-lint passes on every template;
//! `terraform fmt` and (where the providers can be installed) `terraform validate` pass on
//! both modules; `up --via terraform` fails clearly without terraform or its providers and
//! leaves nothing behind, and where Terraform can run, applies the module with the jobs
//! variant, serves an invocation and a job, and destroys it all, workers included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hybridlab_provision::iac::runner::{error_summary, find_terraform, is_provider_failure};
use hybridlab_provision::stack::{StackId, StackNames};
use hybridlab_tests::sandbox::edge_clients;
use hybridlab_tests::stack::{hybridlab, hybridlab_async, json_lines, leftovers};
use hybridlab_tools::ensure_cfn_lint;

/// A directory of its own for one test, removed when dropped (even when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hybridlab-iac-{name}-{}",
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

/// `hybridlab export ...`; the endpoint is not used by export but the helper passes one.
fn export(args: &[&str]) -> Output {
    hybridlab("http://127.0.0.1:9", args, &[])
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The parts `--with` adds, every one or none.
const EVERY_PART: &[&str] = &["pipeline", "jobs"];

fn with_args<'a>(parts: &[&'a str]) -> Vec<&'a str> {
    parts.iter().flat_map(|part| ["--with", *part]).collect()
}

fn exported_module(dir: &Path, parts: &[&str], no_random: bool) -> PathBuf {
    let out = dir.join(format!(
        "{}-{}",
        if parts.is_empty() {
            "plain".to_owned()
        } else {
            parts.join("+")
        },
        if no_random { "given" } else { "random" }
    ));
    let mut args = vec!["export", "terraform", "--out", out.to_str().expect("UTF-8")];
    args.extend(with_args(parts));
    if no_random {
        args.push("--no-random");
    }
    let output = export(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    out
}

#[test]
fn export_writes_the_files_and_refuses_to_overwrite_them_unasked() {
    let scratch = Scratch::new("export");
    let module = scratch.0.join("module");
    let module_arg = module.to_str().expect("UTF-8");
    let first = export(&["export", "terraform", "--out", module_arg, "--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let result = &json_lines(&first)[0];
    assert_eq!(result["ok"], true);
    for file in ["main.tf", "variables.tf", "outputs.tf", "README.md"] {
        let path = module.join(file);
        assert!(path.is_file(), "{file} written");
        assert!(
            result["files"]
                .as_array()
                .expect("files")
                .iter()
                .any(|f| f == path.to_str().expect("UTF-8")),
            "{file} reported"
        );
    }
    // The certificate, its key and its fingerprint are in a private terraform.tfvars, and the
    // fingerprint printed is the one in it.
    let tfvars = module.join("terraform.tfvars");
    assert_eq!(mode(&tfvars), 0o600);
    let values = std::fs::read_to_string(&tfvars).expect("terraform.tfvars");
    let fingerprint = result["server_certificate_sha256"]
        .as_str()
        .expect("a fingerprint");
    assert!(
        values.contains(&format!("server_certificate_sha256 = \"{fingerprint}\"")),
        "{values}"
    );
    assert!(values.contains("server_tls_key "), "the key is there");
    let main = std::fs::read_to_string(module.join("main.tf")).expect("main.tf");
    std::fs::write(module.join("main.tf"), "# edited by hand\n").expect("edit");

    let again = export(&[
        "export",
        "terraform",
        "--out",
        module_arg,
        "--with",
        "pipeline",
    ]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(module.join("main.tf")).expect("main.tf"),
        "# edited by hand\n",
        "a refused export changes nothing"
    );
    let forced = export(&[
        "export",
        "terraform",
        "--out",
        module_arg,
        "--with",
        "pipeline",
        "--force",
    ]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let replaced = std::fs::read_to_string(module.join("main.tf")).expect("main.tf");
    assert!(
        replaced.contains("aws_s3_bucket_notification")
            && !main.contains("aws_s3_bucket_notification")
    );
    // No temporary file is left beside the written ones.
    let names: Vec<String> = std::fs::read_dir(&module)
        .expect("the module")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        names.iter().all(|name| !name.ends_with(".tmp")),
        "{names:?}"
    );

    let template = scratch.0.join("cfn").join("stack.json");
    let template_arg = template.to_str().expect("UTF-8");
    let written = export(&[
        "export",
        "cloudformation",
        "--out",
        template_arg,
        "--code-bucket",
        "my-code-bucket",
        "--json",
    ]);
    assert!(written.status.success(), "{}", stderr(&written));
    let parsed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&template).expect("the template")).expect("JSON");
    assert!(parsed["Resources"]["ProxyFunction"].is_object());
    // Beside it, private: the parameters `aws cloudformation deploy` reads from a file.
    let parameters = scratch.0.join("cfn").join("stack.parameters.json");
    assert_eq!(mode(&parameters), 0o600);
    let pairs: Vec<String> =
        serde_json::from_slice(&std::fs::read(&parameters).expect("the parameters"))
            .expect("a JSON list");
    let fingerprint = json_lines(&written)[0]["server_certificate_sha256"]
        .as_str()
        .expect("a fingerprint")
        .to_owned();
    assert!(
        pairs.contains(&"CodeBucket=my-code-bucket".to_owned()),
        "{pairs:?}"
    );
    assert!(pairs.contains(&format!("ServerCertificateSha256={fingerprint}")));
    assert!(pairs.iter().any(|pair| pair.starts_with("ServerTlsKey=")));
    assert!(
        !std::fs::read_to_string(&template)
            .expect("the template")
            .contains(&fingerprint)
    );
    // Neither file is replaced unasked, not even when only the parameters file is there.
    std::fs::remove_file(&template).expect("remove the template");
    let refused = export(&["export", "cloudformation", "--out", template_arg]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("already exists; pass --force"));
    assert!(!template.exists(), "a refused export writes nothing");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("the file")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn cfn_lint_passes_on_every_template() {
    let cfn_lint =
        ensure_cfn_lint(&mut |message| eprintln!("{message}")).expect("cfn-lint installs");
    let scratch = Scratch::new("cfn");
    for parts in [&[][..], &["pipeline"], &["jobs"], EVERY_PART] {
        let template = scratch.0.join(format!("stack-{}.json", parts.join("+")));
        let mut args = vec![
            "export",
            "cloudformation",
            "--out",
            template.to_str().expect("UTF-8"),
        ];
        args.extend(with_args(parts));
        let output = export(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        let lint = Command::new(&cfn_lint)
            .arg(&template)
            .output()
            .expect("cfn-lint runs");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
        eprintln!(
            "cfn-lint (--with {parts:?}): exit {:?} {report}",
            lint.status.code()
        );
        assert!(
            lint.status.success(),
            "cfn-lint (--with {parts:?}):\n{report}"
        );
    }
}

/// A plugin mirror to install the providers from: `HYBRIDLAB_TF_PLUGIN_MIRROR`, else
/// `/opt/tf-plugins` if it exists.
fn plugin_mirror() -> Option<PathBuf> {
    std::env::var_os("HYBRIDLAB_TF_PLUGIN_MIRROR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/opt/tf-plugins")))
        .filter(|dir| dir.is_dir())
}

fn terraform_in(dir: &Path, cli_config: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new("terraform");
    command
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1");
    if let Some(config) = cli_config {
        command.env("TF_CLI_CONFIG_FILE", config);
    }
    command.output().expect("terraform runs")
}

#[test]
fn terraform_fmt_passes_and_validate_passes_where_the_providers_install() {
    if find_terraform().is_none() {
        eprintln!(
            "skipped: terraform is not on PATH, so neither `terraform fmt` nor `terraform validate` can run"
        );
        return;
    }
    let scratch = Scratch::new("terraform");
    // Each module alone, and those without the random provider separately: a mirror may hold
    // hashicorp/aws only (this machine's does), and they must still be validated.
    // The plain stack and the one with every part: between them every block is rendered.
    let random = [
        exported_module(&scratch.0, &[], false),
        exported_module(&scratch.0, EVERY_PART, false),
    ];
    let given = [
        exported_module(&scratch.0, &[], true),
        exported_module(&scratch.0, EVERY_PART, true),
    ];
    for module in random.iter().chain(&given) {
        let fmt = terraform_in(module, None, &["fmt", "-check", "-diff", "-no-color"]);
        assert!(
            fmt.status.success(),
            "terraform fmt -check on {}:\n{}",
            module.display(),
            String::from_utf8_lossy(&fmt.stdout)
        );
    }
    eprintln!("terraform fmt -check: all four modules are formatted");
    let tfvars = std::fs::read_to_string(given[0].join("terraform.tfvars")).expect("tfvars");
    assert!(tfvars.contains("stack_id") && tfvars.contains("server_token"));

    let config = mirror_config(&scratch.0);
    for (kind, modules) in [("with random", &random), ("without random", &given)] {
        for module in modules {
            if validated(module, config.as_deref(), kind) {
                eprintln!("terraform validate ({kind}): {} is valid", module.display());
            }
        }
    }
}

/// A Terraform CLI configuration that installs providers from the local mirror, if there
/// is one (otherwise Terraform's own configuration decides).
fn mirror_config(dir: &Path) -> Option<PathBuf> {
    plugin_mirror().map(|mirror| {
        let path = dir.join("terraformrc");
        std::fs::write(
            &path,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
                mirror.display()
            ),
        )
        .expect("a CLI configuration");
        path
    })
}

/// `terraform init` and `validate` on `module`: true once validated, false (with the reason
/// printed) when its providers cannot be installed here; any other failure fails the test.
fn validated(module: &Path, config: Option<&Path>, kind: &str) -> bool {
    let init = terraform_in(
        module,
        config,
        &["init", "-backend=false", "-input=false", "-no-color"],
    );
    if !init.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&init.stderr),
            String::from_utf8_lossy(&init.stdout)
        );
        assert!(
            is_provider_failure(&text),
            "terraform init failed otherwise:\n{text}"
        );
        eprintln!(
            "skipped: terraform validate ({kind}) of {}: the providers could not be installed (mirror: {}): {}",
            module.display(),
            plugin_mirror().map_or_else(|| "none".to_owned(), |m| m.display().to_string()),
            error_summary(&text)
        );
        return false;
    }
    let validate = terraform_in(module, config, &["validate", "-no-color"]);
    assert!(
        validate.status.success(),
        "terraform validate on {}:\n{}{}",
        module.display(),
        String::from_utf8_lossy(&validate.stdout),
        String::from_utf8_lossy(&validate.stderr)
    );
    true
}

#[test]
fn up_via_terraform_without_terraform_says_how_to_get_it() {
    let output = Command::new(hybridlab_tests::sandbox::build_binary(
        "hybridlab-console",
        "hybridlab",
    ))
    .args([
        "up",
        "--via",
        "terraform",
        "--endpoint",
        "http://127.0.0.1:9",
    ])
    .env("PATH", "/nonexistent")
    .output()
    .expect("hybridlab runs");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("terraform is not installed"), "{message}");
    assert!(
        message.contains("https://developer.hashicorp.com/terraform/install"),
        "{message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_via_terraform_applies_or_fails_clearly_and_leaves_nothing_behind() {
    if find_terraform().is_none() {
        eprintln!("skipped: terraform is not on PATH (the error without it has its own test)");
        return;
    }
    let clients = edge_clients().await;
    let cache = Scratch::new("cache");
    let cache_dir = cache.0.to_str().expect("UTF-8").to_owned();
    let id = StackId::generate().to_string();
    // The module and its Terraform state are state, not cache: they go to the state directory.
    let state_root = cache.0.join("state");
    let state_root_arg = state_root.to_str().expect("UTF-8").to_owned();
    let mut envs = vec![
        ("HYBRIDLAB_CACHE_DIR", cache_dir.as_str()),
        ("HYBRIDLAB_STATE_DIR", state_root_arg.as_str()),
    ];
    // The local mirror, where there is one, as a user would configure it.
    let config = mirror_config(&cache.0);
    let config_arg = config
        .as_ref()
        .map(|path| path.to_str().expect("UTF-8").to_owned());
    if let Some(config) = &config_arg {
        envs.push(("TF_CLI_CONFIG_FILE", config.as_str()));
    }
    let up = hybridlab_async(
        &clients.endpoint,
        &[
            "up",
            "--via",
            "terraform",
            "--with",
            "jobs",
            "--stack",
            &id,
            "--json",
        ],
        &envs,
    )
    .await;
    let state_dir = state_root.join("terraform").join(&id);
    if !up.status.success() {
        let message = stderr(&up);
        eprintln!("up --via terraform: {message}");
        assert!(
            message.contains("the AWS provider could not be installed")
                && message.contains("plugin mirror")
                && message.contains("registry.terraform.io"),
            "{message}"
        );
        let lines = json_lines(&up);
        assert_eq!(lines.last().map(|l| l["ok"].clone()), Some(false.into()));
        assert!(!state_dir.exists(), "the module directory is removed");
        assert_eq!(leftovers(&clients, &id).await, Vec::<String>::new());
        return;
    }
    // Terraform and its providers are here: the stack serves, then is destroyed completely.
    let names = StackNames::new(&StackId::parse(&id).expect("valid"));
    // The function speaks TLS to the server and pins its certificate: on loopback plain HTTP
    // would pass too, so the end-to-end call alone would not show it.
    let configuration = clients
        .lambda
        .get_function_configuration()
        .function_name(&names.function)
        .send()
        .await
        .expect("the function");
    let variables = configuration
        .environment()
        .and_then(|environment| environment.variables())
        .expect("variables");
    let endpoint = variables.get("EC2_ENDPOINT").expect("EC2_ENDPOINT");
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let pin = variables.get("EC2_CERT_SHA256").expect("EC2_CERT_SHA256");
    let tfvars = std::fs::read_to_string(state_dir.join("terraform.tfvars")).expect("tfvars");
    assert!(
        tfvars.contains(&format!("server_certificate_sha256 = \"{pin}\"")),
        "the pin is the exported certificate's"
    );
    crate::stack::invoke_end_to_end(&clients, &names).await;
    // The jobs variant as the module made it: a job submitted through its HTTP API runs on
    // a worker the module's launcher starts, with the module's roles, and ends SUCCEEDED.
    let input = cache.0.join("input.txt");
    std::fs::write(&input, "from terraform\n").expect("an input");
    let submitted = hybridlab_async(
        &clients.endpoint,
        &[
            "job",
            "submit",
            input.to_str().expect("UTF-8"),
            "--text",
            "and its worker",
            "--json",
            "--stack",
            &id,
        ],
        &envs,
    )
    .await;
    let lines = json_lines(&submitted);
    assert!(
        submitted.status.success(),
        "{lines:#?} {}",
        stderr(&submitted)
    );
    let job: hybridlab_wire::job::Job =
        serde_json::from_value(lines.last().cloned().expect("the job")).expect("a job");
    assert_eq!(job.status, hybridlab_wire::job::JobStatus::Succeeded);
    let output = clients
        .object_bytes(
            &names.jobs_bucket,
            &hybridlab_wire::job::output_key(&job.job_id, "output.txt"),
        )
        .await;
    assert_eq!(output.as_ref(), b"from terraform\nand its worker\n");
    // A second job left running: its worker is the launcher's, not Terraform's, and `down`
    // must not leave it behind.
    let running = hybridlab_async(
        &clients.endpoint,
        &[
            "job",
            "submit",
            input.to_str().expect("UTF-8"),
            "--text",
            "never finished",
            "--no-wait",
            "--json",
            "--stack",
            &id,
        ],
        &envs,
    )
    .await;
    assert!(running.status.success(), "{}", stderr(&running));
    let down = hybridlab_async(
        &clients.endpoint,
        &["down", "--via", "terraform", "--stack", &id],
        &envs,
    )
    .await;
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(!state_dir.exists());
    assert_eq!(leftovers(&clients, &id).await, Vec::<String>::new());
    eprintln!(
        "up --via terraform --with jobs: stack {id} applied on the sandbox, invoked end to end, a job run on a worker, destroyed with a job running, nothing left"
    );
}
