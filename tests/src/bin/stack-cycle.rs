//! Times `up` (from nothing), `up` again (nothing to do) and `down` of the lab's stack on a
//! sandbox of its own, several times, and prints a Markdown table for BENCHMARKS.md.
//!
//! `cargo run -p hybridlab-tests --bin stack-cycle -- [runs] [fast|realistic|like-aws]` (default
//! 5 runs on `fast`: the sandbox's timing preset, see `hybridlab sandbox --help`). It is a binary, not a
//! `cargo bench`, because what it measures is I/O between processes, and the binaries it
//! deploys are the debug builds the sandbox runs.

use std::time::{Duration, Instant};

use hybridlab_provision::stack::artifacts::{ArtifactSource, Variants};
use hybridlab_provision::stack::progress::silent;
use hybridlab_provision::stack::{
    Scope, StackClients, StackId, StackSettings, Target, UpOptions, down, up,
};
use hybridlab_sandbox::timing::Timing;
use hybridlab_sandbox::{Sandbox, SandboxOptions};

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.0} | {:.0} | {:.0}",
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let preset = std::env::args().nth(2).unwrap_or_else(|| "fast".to_owned());
    let timing = match preset.as_str() {
        "fast" => Timing::fast(),
        "realistic" => Timing::realistic(),
        "like-aws" => Timing::like_aws(),
        other => return Err(format!("unknown preset {other}: fast, realistic or like-aws").into()),
    };
    let state_dir =
        std::env::temp_dir().join(format!("hybridlab-stack-cycle-{}", std::process::id()));
    let mut options = SandboxOptions::new(state_dir.clone());
    options.edge_port = 0;
    options.timing = timing;
    let sandbox = Sandbox::start(options, |message| eprintln!("{message}")).await?;
    hybridlab_provision::stack::state::forget_gone_sandbox_stacks(sandbox.port());
    let clients = StackClients::connect(&Target::Sandbox {
        endpoint: sandbox.endpoint().to_owned(),
    })
    .await?;

    // Build once outside the timings, as a second `up` would find it built.
    let artifacts = tokio::task::spawn_blocking(|| {
        hybridlab_provision::stack::artifacts::build(
            &ArtifactSource::Host,
            Variants::default(),
            &mut |m| eprintln!("{m}"),
        )
    })
    .await??;
    let source = ArtifactSource::Prebuilt {
        server: artifacts.server_binary.clone(),
        proxy: artifacts.proxy_binary.clone(),
        resizer: None,
        jobs: None,
    };
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len()) / 1_048_576;
    eprintln!(
        "deploying a {} MiB server binary and a {} MiB bootstrap",
        size(&artifacts.server_binary),
        size(&artifacts.proxy_binary)
    );

    let (mut fresh, mut again, mut teardown) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let id = StackId::generate();
        let options = UpOptions {
            stack: id.clone(),
            settings: StackSettings::new("us-east-1"),
            artifacts: source.clone(),
            fail_after: None,
        };
        let started = Instant::now();
        up(&clients, options.clone(), silent()).await?;
        fresh.push(started.elapsed());
        let started = Instant::now();
        up(&clients, options, silent()).await?;
        again.push(started.elapsed());
        let started = Instant::now();
        let report = down(&clients, &Scope::Stack(id), silent()).await?;
        teardown.push(started.elapsed());
        if !report.remaining.is_empty() {
            return Err(format!("run {run}: down left {:?}", report.remaining).into());
        }
        eprintln!(
            "run {}: up {:.2}s, up again {:.2}s, down {:.2}s",
            run + 1,
            fresh[run].as_secs_f64(),
            again[run].as_secs_f64(),
            teardown[run].as_secs_f64()
        );
    }
    println!("| operation ({runs} runs, `{preset}`) | min ms | median ms | max ms |");
    println!("|---|---:|---:|---:|");
    println!("| `up`, new stack | {} |", summary(&mut fresh));
    println!("| `up` again, nothing to do | {} |", summary(&mut again));
    println!("| `down`, with the sweep | {} |", summary(&mut teardown));
    sandbox.stop().await;
    let _ = std::fs::remove_dir_all(state_dir);
    Ok(())
}
