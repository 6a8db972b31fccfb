//! `hybridlab config`: the settings in force and where each comes from, as `aws configure
//! list` shows them, and where the config file is (or would be).

use std::process::ExitCode;

use serde_json::json;

use super::TargetArgs;
use crate::lab::config::{Resolved, Source, Sourced, TargetKind};

fn line(name: &str, value: Option<&str>, source: Option<&Source>) {
    println!(
        "  {name:<10} {:<40} {}",
        value.unwrap_or("-"),
        source.map_or_else(|| "not set".to_owned(), ToString::to_string)
    );
}

fn text(setting: &Option<Sourced<String>>) -> (Option<&str>, Option<&Source>) {
    (
        setting.as_ref().map(|s| s.value.as_str()),
        setting.as_ref().map(|s| &s.source),
    )
}

fn print(settings: &Resolved, path: Option<&std::path::Path>) {
    let file = match path {
        Some(path) if path.exists() => format!("{}", path.display()),
        Some(path) => format!("{} (none yet)", path.display()),
        None => "none: neither XDG_CONFIG_HOME nor HOME is set".to_owned(),
    };
    println!("config file: {file}");
    let target = match settings.target.value {
        TargetKind::Aws => "aws",
        TargetKind::Sandbox => "sandbox",
    };
    line("target", Some(target), Some(&settings.target.source));
    if settings.target.value == TargetKind::Sandbox {
        let (endpoint, source) = text(&settings.endpoint);
        line(
            "endpoint",
            Some(endpoint.unwrap_or("the local sandbox, started when needed")),
            Some(source.unwrap_or(&Source::Default)),
        );
    }
    if let Some(redirect) = &settings.aws_endpoint_override {
        line(
            "endpoint",
            Some(&format!("{} (instead of AWS's)", redirect.value)),
            Some(&redirect.source),
        );
    }
    let (profile, source) = text(&settings.profile);
    line("profile", profile, source);
    let (region, source) = text(&settings.region);
    line("region", region, source);
    if settings.region.is_none() && settings.target.value == TargetKind::Aws {
        println!("             (the profile's region in ~/.aws/config, when connecting)");
    }
    let (url, source) = text(&settings.image_url);
    line("image_url", url, source);
    let (theme, source) = text(&settings.theme);
    line(
        "theme",
        Some(theme.unwrap_or("dark")),
        Some(source.unwrap_or(&Source::Default)),
    );
}

pub fn run(args: &TargetArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (settings, path) = args.settings()?;
    if json {
        println!(
            "{}",
            json!({
                "config_file": path,
                "config_file_exists": path.as_ref().is_some_and(|p| p.exists()),
                "settings": settings,
            })
        );
    } else {
        print(&settings, path.as_deref());
    }
    Ok(ExitCode::SUCCESS)
}
