//! `hybridlab up --via terraform` and `down --via terraform`: the exported module in the
//! stack's own directory under the state directory, `terraform init` then `apply` (or `destroy`), with
//! Terraform's progress shown as `up`'s steps are.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use hybridlab_provision::iac::runner::Terraform;
use hybridlab_provision::iac::{stage_programs, terraform};
use hybridlab_provision::stack::artifacts::{ArtifactSource, Variants, build};
use hybridlab_provision::stack::up::{ServerCertificate, new_token};
use hybridlab_provision::stack::{self, Scope, StackClients, StackId, StackSettings, Target};
use hybridlab_tools::state_dir;
use serde_json::json;

use super::export::{write_module, write_private};
use super::steps::printer;
use super::{DownArgs, UpArgs};
use crate::lab::stack::down_summary;
use crate::lab::state_home::TERRAFORM_MODULES_DIR;
use crate::lab::target::{TargetChoice, connect};

/// Where the module and the Terraform state of stack `id` live.
fn stack_dir(id: &StackId) -> PathBuf {
    state_dir().join(TERRAFORM_MODULES_DIR).join(id.as_str())
}

/// Stacks `up --via terraform` made and `down --via terraform` has not removed.
fn known_stacks() -> Vec<StackId> {
    let Ok(entries) = std::fs::read_dir(state_dir().join(TERRAFORM_MODULES_DIR)) else {
        return Vec::new();
    };
    let mut stacks: Vec<StackId> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| StackId::parse(&entry.file_name().to_string_lossy()).ok())
        .collect();
    stacks.sort();
    stacks
}

/// `NAME=value` pairs: Terraform variables or environment variables.
type Pairs = Vec<(String, String)>;

/// The variables and environment that point the module at the target.
fn target_inputs(clients: &StackClients, id: &StackId) -> (Pairs, Pairs) {
    let mut vars = vec![
        ("stack_id".to_owned(), id.to_string()),
        ("region".to_owned(), clients.region.clone()),
    ];
    let mut env = Vec::new();
    match &clients.target {
        Target::Sandbox { endpoint } => {
            vars.push(("aws_endpoint_url".to_owned(), endpoint.clone()));
            // The sandbox takes any credentials; Terraform insists on having some.
            env.push(("AWS_ACCESS_KEY_ID".to_owned(), "sandbox".to_owned()));
            env.push(("AWS_SECRET_ACCESS_KEY".to_owned(), "sandbox".to_owned()));
        }
        Target::Aws {
            profile: Some(profile),
            ..
        } => env.push(("AWS_PROFILE".to_owned(), profile.clone())),
        Target::Aws { .. } => {}
    }
    (vars, env)
}

fn terraform_in(dir: &Path, env: Pairs) -> anyhow::Result<Terraform> {
    let mut terraform = Terraform::new(dir)?;
    terraform.env = env;
    Ok(terraform)
}

pub async fn up(target: &TargetChoice, args: UpArgs) -> anyhow::Result<ExitCode> {
    // Before anything else: without terraform there is nothing to do.
    hybridlab_provision::iac::runner::find_terraform()
        .ok_or(hybridlab_provision::iac::runner::TerraformError::NotInstalled)?;
    let clients = connect(target).await?;
    let id = match &args.stack {
        Some(name) => StackId::parse(name)?,
        None => StackId::generate(),
    };
    let settings = args.shape.settings(clients.region.clone());
    super::up::confirm_spending(&clients, &id, &settings, args.yes)?;
    let dir = stack_dir(&id);
    let fresh = !dir.join("terraform.tfstate").exists();
    if !args.json && !super::output::quiet() {
        println!(
            "Bringing up stack {id} on {} with Terraform in {}...",
            clients.describe(),
            dir.display()
        );
    }
    let result = apply(&clients, &id, &settings, &dir, args.json).await;
    if result.is_err() && fresh && !dir.join("terraform.tfstate").exists() {
        // Nothing was created: leave nothing behind either.
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(outputs) => {
            if args.json {
                println!(
                    "{}",
                    json!({"type": "result", "ok": true, "stack": id, "outputs": outputs})
                );
            } else {
                println!("Stack {id} is up (Terraform).");
                for (name, value) in &outputs {
                    println!(
                        "  {name:<17} {}",
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned)
                    );
                }
                println!("Tear it down with `hybridlab down --via terraform --stack {id}`.");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if args.json {
                println!(
                    "{}",
                    json!({"type": "result", "ok": false, "stack": id, "error": format!("{err:#}")})
                );
            }
            Err(err)
        }
    }
}

async fn apply(
    clients: &StackClients,
    id: &StackId,
    settings: &StackSettings,
    dir: &Path,
    json: bool,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    // Only hashicorp/aws: the stack id is this stack's, the token is made here (or kept from
    // the last apply, which the running server and function share).
    write_module(
        dir,
        &terraform::module(settings, terraform::Identity::Given),
        true,
    )?;
    let tfvars_path = dir.join("terraform.tfvars");
    let existing = std::fs::read_to_string(&tfvars_path).ok();
    let token = existing
        .as_deref()
        .and_then(terraform::token_in_tfvars)
        .unwrap_or_else(new_token);
    // The certificate too: the function pins it.
    let certificate = match existing
        .as_deref()
        .and_then(terraform::tls_in_tfvars)
        .and_then(|(cert, key)| ServerCertificate::from_base64(&cert, &key))
    {
        Some(certificate) => certificate,
        None => ServerCertificate::generate()?,
    };
    let (vars, env) = target_inputs(clients, id);
    let terraform = terraform_in(dir, env)?;
    // Providers first: it fails fast where they cannot be installed, before a long build.
    terraform.init().await?;
    let source = if clients.is_sandbox() {
        ArtifactSource::Host
    } else {
        ArtifactSource::AmazonLinux
    };
    let variants = Variants::of(settings);
    let stage_dir = dir.to_path_buf();
    let staged = tokio::task::spawn_blocking(move || {
        let artifacts = build(&source, variants, &mut |message| {
            tracing::info!("{message}")
        })?;
        anyhow::Ok(stage_programs(&artifacts, &stage_dir)?)
    })
    .await
    .context("the build task failed")??;
    // Blank lines between the groups: `terraform fmt` aligns each group alone.
    let mut values = terraform::identity_tfvars(id.as_str(), &token);
    values.push('\n');
    values.push_str(&terraform::tls_tfvars(&certificate.values(&token)));
    values.push('\n');
    values.push_str(&terraform::tfvars(&staged, None));
    write_private(&tfvars_path, &values)?;
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    terraform.apply(&vars, id.as_str(), &printer(json)).await?;
    Ok(terraform.outputs().await?)
}

pub async fn down(target: &TargetChoice, args: DownArgs) -> anyhow::Result<ExitCode> {
    hybridlab_provision::iac::runner::find_terraform()
        .ok_or(hybridlab_provision::iac::runner::TerraformError::NotInstalled)?;
    let id = match &args.stack {
        Some(name) => StackId::parse(name)?,
        None => match known_stacks().as_slice() {
            [] => bail!("no stack made with `up --via terraform` is known here"),
            [only] => only.clone(),
            several => bail!(
                "several stacks were made with Terraform ({}); name one with --stack",
                several
                    .iter()
                    .map(StackId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let dir = stack_dir(&id);
    if !dir.join("terraform.tfstate").exists() {
        bail!(
            "stack {id} has no Terraform state in {}; `hybridlab down --stack {id}` deletes a stack by name and tag",
            dir.display()
        );
    }
    let clients = connect(target).await?;
    let (vars, env) = target_inputs(&clients, &id);
    let terraform = terraform_in(&dir, env)?;
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    terraform
        .destroy(&vars, id.as_str(), &printer(args.json))
        .await?;
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    // Job workers are the launcher's, not Terraform's, and a launcher may have started one
    // while the module was destroyed: `down`'s own search by name and tag terminates them,
    // with anything else of the stack the state did not hold, and says what remains.
    let report = stack::down(&clients, &Scope::Stack(id.clone()), printer(args.json)).await?;
    if args.json {
        println!(
            "{}",
            json!({"type": "result", "ok": report.remaining.is_empty(), "stack": id, "report": report})
        );
    } else {
        println!(
            "Stack {id} is destroyed (Terraform); its state in {} is removed.",
            dir.display()
        );
        if !report.deleted.is_empty() || !report.remaining.is_empty() {
            print!("{}", down_summary(&report));
        }
    }
    Ok(if report.remaining.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::REMAINING)
    })
}
