//! `hybridlab-ec2-server`: parses the configuration, installs JSON logging to stdout, builds the
//! AWS clients once and serves until SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use hybridlab_ec2_server::{AppState, ServerConfig, serve, shutdown_signal};

#[derive(Debug, Parser)]
#[command(name = "hybridlab-ec2-server", version, about)]
struct Cli {
    #[command(flatten)]
    config: ServerConfig,

    /// Log as JSON lines (for CloudWatch) or as text (for a terminal).
    #[arg(long, env = "HYBRIDLAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

fn install_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Checked before anything else so a bad token is the one line the operator sees (systemd's
    // journal, the sandbox's log group), and the server never listens without a usable one.
    hybridlab_wire::token::check_token(cli.config.token.as_deref()).context("refusing to start")?;
    install_logging(cli.log_format);
    let listen = cli.config.listen;
    let state = AppState::from_config(cli.config)
        .await
        .context("building the image server")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let health = state.health();
    tracing::info!(
        address = %listener.local_addr().unwrap_or(listen),
        bucket = %health.bucket,
        table = %health.table,
        uploads_bucket = health.uploads_bucket.as_deref().unwrap_or("none"),
        version = %health.version,
        "image server listening"
    );
    serve(listener, state, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}
