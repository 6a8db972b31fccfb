//! `hybridlab invoke`: the function invoked once, and the answer printed with its timing
//! breakdown: the client round trip, Lambda's duration and billed duration, cold or warm, and
//! the image server's stages. Exits 5 if the invocation ran but did not succeed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use hybridlab_bench::invocation::{Invocation, file_payload, url_payload};
use hybridlab_bench::model::Outcome;
use serde_json::json;

use super::output::{paint, stdout_colour};
use crate::lab::invoke::{aim, invoke_once};
use crate::lab::target::TargetChoice;
use crate::lab::tone::Tone;

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The image URL the lab's function processes: sends `{"image_url": URL}`.
    #[arg(long, conflicts_with = "payload")]
    pub url: Option<String>,

    /// A JSON file sent as the event as it is (`-` reads standard input).
    #[arg(long)]
    pub payload: Option<PathBuf>,

    #[command(flatten)]
    pub aim: AimArgs,

    /// Machine-readable output: the answer, the timings and the log tail as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Which function to invoke: the proxy of a stack, or any function by name.
#[derive(Debug, Clone, Args)]
pub struct AimArgs {
    /// The stack whose function to invoke (default: the target's only stack).
    #[arg(long)]
    pub stack: Option<String>,

    /// Invoke this function instead of the stack's proxy: `proxy` or `resizer` (the stack's
    /// own, with --stack), or any function on the target by name (without --stack).
    #[arg(long)]
    pub function: Option<String>,
}

pub async fn run(target: &TargetChoice, args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let payload = match (&args.url, &args.payload) {
        (Some(url), _) => url_payload(url)?,
        (None, Some(path)) => file_payload(path)?,
        (None, None) => bail!(
            "nothing to send: give --url https://.../image.jpg (the lab's function) or --payload FILE"
        ),
    };
    let aim = aim(
        target,
        args.aim.stack.as_deref(),
        args.aim.function.as_deref(),
    )
    .await?;
    let invocation = invoke_once(&aim.lambda, &aim.function, payload).await;
    if invocation.outcome == Outcome::ClientError
        && invocation
            .status_code
            .is_none_or(|status| status >= 500 || status == 404)
    {
        // Nothing ran: that is an error of the command, not a result to print.
        bail!(
            "invoking {} on {} failed: {}",
            aim.function,
            aim.clients.describe(),
            invocation.error.as_deref().unwrap_or("no answer")
        );
    }
    if args.json {
        println!(
            "{}",
            json!({"function": aim.function, "stack": aim.stack, "target": aim.clients.describe(), "invocation": invocation})
        );
    } else {
        print_invocation(&aim.function, &invocation);
    }
    Ok(if invocation.outcome == Outcome::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::FAILED)
    })
}

fn print_invocation(function: &str, invocation: &Invocation) {
    let colour = stdout_colour();
    let tone = if invocation.outcome == Outcome::Ok {
        Tone::Good
    } else {
        Tone::Bad
    };
    println!(
        "{} {function}: {}{}",
        paint(invocation.outcome.as_str(), tone, colour),
        invocation
            .status_code
            .map(|status| format!("HTTP {status}"))
            .unwrap_or_default(),
        invocation
            .error
            .as_deref()
            .map(|error| format!(" ({error})"))
            .unwrap_or_default()
    );
    let shown = invocation.body.as_ref().or(invocation.response.as_ref());
    if let Some(shown) = shown {
        let text = serde_json::to_string_pretty(shown).unwrap_or_else(|_| shown.to_string());
        println!("{}", paint("response:", Tone::Dim, colour));
        for line in text.lines() {
            println!("  {line}");
        }
    }
    println!("{}", paint("timings:", Tone::Dim, colour));
    println!("  client round trip   {:>9.2} ms", invocation.round_trip_ms);
    if let Some(report) = &invocation.report {
        println!("  lambda duration     {:>9.2} ms", report.duration_ms);
        println!(
            "  billed duration     {:>9.0} ms",
            report.billed_duration_ms
        );
        match report.init_duration_ms {
            Some(init) => println!(
                "  init duration       {init:>9.2} ms  ({})",
                paint("cold start", Tone::Warn, colour)
            ),
            None => println!("  start               {:>9}", "warm"),
        }
        println!(
            "  memory              {:>6} MB of {} MB",
            report.max_memory_used_mb, report.memory_size_mb
        );
    } else {
        println!("  lambda              (no REPORT line in the log tail)");
    }
    if let Some(timings) = &invocation.ec2_ms {
        for (stage, ms) in timings.stages() {
            println!("  ec2 {stage:<15} {ms:>9.2} ms");
        }
    }
}
