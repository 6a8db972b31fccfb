//! The server's configuration, from flags or the environment (the instance's systemd unit and
//! the sandbox's compute agent both set the environment).

use std::net::SocketAddr;
use std::time::Duration;

/// Everything the image server can be told at start-up.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "HYBRIDLAB_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// S3 bucket that receives the originals and their variants.
    #[arg(long, env = "HYBRIDLAB_BUCKET")]
    pub bucket: String,

    /// DynamoDB table that receives one metadata row per image (partition key `image_id`).
    #[arg(long, env = "HYBRIDLAB_TABLE")]
    pub table: String,

    /// AWS region; defaults to the SDK's chain (environment, profile, instance metadata).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,

    /// Endpoint of an AWS-compatible service (the local sandbox), used for S3 and DynamoDB.
    #[arg(long, env = "HYBRIDLAB_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// Bearer token that the API requires: at least `hybridlab_wire::token::MIN_TOKEN_CHARS`
    /// characters. Required: the server refuses to start without one, since a server the
    /// internet reaches with no check would work for anyone.
    #[arg(long, env = "HYBRIDLAB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Largest image download, in bytes, enforced while streaming.
    #[arg(long, env = "HYBRIDLAB_MAX_DOWNLOAD_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_download_bytes: u64,

    /// Time allowed for the whole download, in milliseconds.
    #[arg(long, env = "HYBRIDLAB_DOWNLOAD_TIMEOUT_MS", default_value_t = 20_000)]
    pub download_timeout_ms: u64,

    /// Time allowed to connect to the image host, in milliseconds.
    #[arg(long, env = "HYBRIDLAB_CONNECT_TIMEOUT_MS", default_value_t = 5_000)]
    pub connect_timeout_ms: u64,

    /// Largest image, in pixels, that is decoded; larger ones are refused before allocation.
    #[arg(long, env = "HYBRIDLAB_MAX_PIXELS", default_value_t = 64_000_000)]
    pub max_pixels: u64,

    /// Requests processed at once; more are answered 503 with Retry-After.
    #[arg(long, env = "HYBRIDLAB_MAX_IN_FLIGHT", default_value_t = 64)]
    pub max_in_flight: usize,

    /// Images decoded and resized at once (CPU-bound work); defaults to the number of cores.
    #[arg(long, env = "HYBRIDLAB_WORKERS")]
    pub workers: Option<usize>,

    /// Memory, in MiB, the decodes in flight may hold together (each reserves the peak its
    /// header promises); one that needs more is refused. Defaults to 60% of the memory this
    /// process may use (its cgroup's `memory.max`, else the machine's).
    #[arg(long, env = "HYBRIDLAB_DECODE_MEMORY_MIB")]
    pub decode_memory_mib: Option<u64>,

    /// Memory, in MiB, the downloads in flight may hold together: an image's bytes are held
    /// from its download until its request ends, reserved by its Content-Length or as its body
    /// grows. Its own share, beside the decodes' (see `budget.rs` for why). `POST /upload`'s
    /// files are held in it too, until stored. Defaults to 15% of the memory this process may
    /// use, and at least one download of `--max-download-bytes` and one upload of
    /// `--max-upload-bytes`.
    #[arg(long, env = "HYBRIDLAB_DOWNLOAD_MEMORY_MIB")]
    pub download_memory_mib: Option<u64>,

    /// Time, in milliseconds, an admitted request waits for a decode worker and its memory
    /// before it is answered 503 with Retry-After; a download waits as long, in all, for
    /// its memory.
    #[arg(long, env = "HYBRIDLAB_DECODE_WAIT_MS", default_value_t = 10_000)]
    pub decode_wait_ms: u64,

    /// Time, in milliseconds, a decode may take before its request is answered
    /// `decode_timeout`. Decoders cannot be interrupted: the decode runs to its end (bounded
    /// by the pixel, scan and memory limits), holding its worker and memory until then.
    #[arg(long, env = "HYBRIDLAB_DECODE_TIMEOUT_MS", default_value_t = 15_000)]
    pub decode_timeout_ms: u64,

    /// The most scans a JPEG may have; progressive encoders write about ten.
    #[arg(long, env = "HYBRIDLAB_MAX_JPEG_SCANS", default_value_t = hybridlab_imaging::DEFAULT_MAX_SCANS)]
    pub max_jpeg_scans: u32,

    /// Allow image URLs on loopback and private addresses (the local sandbox serves its test
    /// images on loopback). Instance-metadata addresses stay refused.
    #[arg(long, env = "HYBRIDLAB_ALLOW_PRIVATE_ADDRESSES")]
    pub allow_private_addresses: bool,

    /// Lifetime of the presigned URLs that `GET /api/images` and `GET /` hand out, in seconds.
    #[arg(long, env = "HYBRIDLAB_PRESIGN_SECONDS", default_value_t = 900)]
    pub presign_seconds: u64,

    /// Bucket that takes uploads for the event-driven pipeline (`POST /upload`,
    /// `POST /api/uploads`); give it with `--processed-bucket`, or neither when the stack has
    /// no pipeline.
    #[arg(long, env = "HYBRIDLAB_UPLOADS_BUCKET")]
    pub uploads_bucket: Option<String>,

    /// Bucket the pipeline's resizer writes the variants of uploads to.
    #[arg(long, env = "HYBRIDLAB_PROCESSED_BUCKET")]
    pub processed_bucket: Option<String>,

    /// Largest upload, in bytes, enforced while the file streams in.
    #[arg(long, env = "HYBRIDLAB_MAX_UPLOAD_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Seconds after which an upload's row that nothing finishes is marked FAILED: `PENDING`
    /// that long after it was written, or `PROCESSING` that long after its attempt's lease
    /// ended. Must exceed the presigned URL's lifetime; see `sweep.rs` for why 30 minutes.
    #[arg(long, env = "HYBRIDLAB_STALE_AFTER_SECONDS", default_value_t = DEFAULT_STALE_AFTER_S)]
    pub stale_after_seconds: u64,
    /// Connections held open at once, all clients together; at the cap an idle one gives way.
    /// Lowered at start-up to fit the file-descriptor limit.
    #[arg(long, env = "HYBRIDLAB_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Connections held open at once from one client address.
    #[arg(
        long,
        env = "HYBRIDLAB_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 128
    )]
    pub max_connections_per_client: usize,

    /// Time for a request's head to arrive, in milliseconds: after connecting and between
    /// keep-alive requests (so also the keep-alive idle limit; the proxy's pool lets its idle
    /// connections go sooner). The TLS handshake gets as long.
    #[arg(long, env = "HYBRIDLAB_HEADER_TIMEOUT_MS", default_value_t = 20_000)]
    pub header_timeout_ms: u64,

    /// Time for a whole request, body included, in milliseconds: a slow upload ends with 408.
    #[arg(long, env = "HYBRIDLAB_REQUEST_TIMEOUT_MS", default_value_t = 120_000)]
    pub request_timeout_ms: u64,

    /// Time, in milliseconds, an answer may wait for the client to take any of its bytes; the
    /// connection is then closed. Each byte taken restarts it, so it cuts a client that stopped
    /// reading (which would hold its connection and the object it streams for ever), never a
    /// slow link that keeps reading.
    #[arg(
        long,
        env = "HYBRIDLAB_RESPONSE_WRITE_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub response_write_timeout_ms: u64,

    /// The server's TLS certificate, DER in standard base64 (`up` makes a self-signed one);
    /// with `--tls-key`, the server speaks only TLS.
    #[arg(long, env = "HYBRIDLAB_TLS_CERT", hide_env_values = true)]
    pub tls_cert: Option<String>,

    /// The certificate's private key, PKCS#8 DER in standard base64.
    #[arg(long, env = "HYBRIDLAB_TLS_KEY", hide_env_values = true)]
    pub tls_key: Option<String>,

    /// Lifetime of a one-time sign-in code (`POST /api/sign-in-codes`, which `hybridlab
    /// gallery` asks for), in milliseconds: at least 1, at most 10 minutes.
    #[arg(
        long,
        env = "HYBRIDLAB_SIGN_IN_CODE_TTL_MS",
        default_value_t = DEFAULT_SIGN_IN_CODE_TTL_MS
    )]
    pub sign_in_code_ttl_ms: u64,
}

/// The default of `--sign-in-code-ttl-ms`: 60 s.
pub const DEFAULT_SIGN_IN_CODE_TTL_MS: u64 = 60_000;

/// The default of `--stale-after-seconds`: 30 minutes.
pub const DEFAULT_STALE_AFTER_S: u64 = 30 * 60;

/// The two buckets of the event-driven pipeline, when it is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineBuckets {
    /// Where originals are uploaded.
    pub uploads: String,
    /// Where the resizer writes variants; the rows' `bucket`.
    pub processed: String,
}

impl ServerConfig {
    /// A configuration with the defaults above, for the given bucket and table.
    pub fn new(bucket: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            bucket: bucket.into(),
            table: table.into(),
            region: None,
            endpoint_url: None,
            token: None,
            max_download_bytes: 25 * 1024 * 1024,
            download_timeout_ms: 20_000,
            connect_timeout_ms: 5_000,
            max_pixels: 64_000_000,
            max_in_flight: 64,
            workers: None,
            decode_memory_mib: None,
            download_memory_mib: None,
            decode_wait_ms: 10_000,
            decode_timeout_ms: 15_000,
            max_jpeg_scans: hybridlab_imaging::DEFAULT_MAX_SCANS,
            allow_private_addresses: false,
            presign_seconds: 900,
            uploads_bucket: None,
            processed_bucket: None,
            max_upload_bytes: 25 * 1024 * 1024,
            stale_after_seconds: DEFAULT_STALE_AFTER_S,
            max_connections: 1024,
            max_connections_per_client: 128,
            header_timeout_ms: 20_000,
            request_timeout_ms: 120_000,
            response_write_timeout_ms: 30_000,
            tls_cert: None,
            tls_key: None,
            sign_in_code_ttl_ms: DEFAULT_SIGN_IN_CODE_TTL_MS,
        }
    }

    /// The pipeline's buckets: both or neither must be given, since uploads without a resizer
    /// to read them (or the reverse) would sit `PENDING` forever.
    pub fn pipeline(&self) -> Result<Option<PipelineBuckets>, String> {
        let given = |bucket: &Option<String>| bucket.clone().filter(|name| !name.is_empty());
        match (given(&self.uploads_bucket), given(&self.processed_bucket)) {
            (Some(uploads), Some(processed)) => Ok(Some(PipelineBuckets { uploads, processed })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(
                "--uploads-bucket (HYBRIDLAB_UPLOADS_BUCKET) is set but --processed-bucket \
                 (HYBRIDLAB_PROCESSED_BUCKET) is not; the pipeline needs both, or neither"
                    .into(),
            ),
            (None, Some(_)) => Err(
                "--processed-bucket (HYBRIDLAB_PROCESSED_BUCKET) is set but --uploads-bucket \
                 (HYBRIDLAB_UPLOADS_BUCKET) is not; the pipeline needs both, or neither"
                    .into(),
            ),
        }
    }

    /// Whether a configured download budget holds one download and one upload of the largest
    /// size: a smaller one could never fetch (or take) such an image, however idle the server.
    pub fn check_download_memory(&self) -> Result<(), String> {
        let largest = self.max_download_bytes.max(self.max_upload_bytes).max(1);
        match self.download_memory_mib {
            Some(mib) if mib.saturating_mul(1024 * 1024) < largest => Err(format!(
                "download-memory-mib ({mib}) must hold at least one download of \
                 max-download-bytes ({} bytes) and one upload of max-upload-bytes ({} bytes)",
                self.max_download_bytes, self.max_upload_bytes
            )),
            _ => Ok(()),
        }
    }

    /// The connection limits, the total cap fitted under `descriptor_limit`.
    pub fn connection_limits(
        &self,
        descriptor_limit: Option<u64>,
    ) -> crate::connections::ConnectionLimits {
        let header_read_timeout = Duration::from_millis(self.header_timeout_ms.max(1));
        crate::connections::ConnectionLimits {
            max_connections: crate::connections::fitted_cap(self.max_connections, descriptor_limit),
            max_per_client: self.max_connections_per_client.max(1),
            header_read_timeout,
            handshake_timeout: header_read_timeout,
            request_timeout: Duration::from_millis(self.request_timeout_ms.max(1)),
            response_write_timeout: Duration::from_millis(self.response_write_timeout_ms.max(1)),
        }
    }

    pub fn download_timeout(&self) -> Duration {
        Duration::from_millis(self.download_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn decode_wait(&self) -> Duration {
        Duration::from_millis(self.decode_wait_ms)
    }

    pub fn decode_timeout(&self) -> Duration {
        Duration::from_millis(self.decode_timeout_ms)
    }

    /// The lifetime of a one-time sign-in code, if the configuration's is allowed: at least
    /// 1 ms, at most [`crate::sign_in_code::MAX_TTL`] (a long-lived code would be the
    /// token-in-a-URL again).
    pub fn sign_in_code_ttl(&self) -> Result<Duration, String> {
        let ttl = Duration::from_millis(self.sign_in_code_ttl_ms);
        if ttl.is_zero() || ttl > crate::sign_in_code::MAX_TTL {
            return Err(format!(
                "sign-in-code-ttl-ms ({}) must be between 1 and {}",
                self.sign_in_code_ttl_ms,
                crate::sign_in_code::MAX_TTL.as_millis()
            ));
        }
        Ok(ttl)
    }

    /// The number of CPU-bound image jobs that run at once.
    pub fn worker_count(&self) -> usize {
        self.workers
            .filter(|&workers| workers > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: ServerConfig,
    }

    #[test]
    fn the_pipeline_flags_parse_and_the_upload_cap_defaults_to_25_mib() {
        let cli = Cli::try_parse_from([
            "server",
            "--bucket=images",
            "--table=table",
            "--uploads-bucket=uploads",
            "--processed-bucket=processed",
        ])
        .expect("valid flags");
        assert_eq!(cli.config.uploads_bucket.as_deref(), Some("uploads"));
        assert_eq!(cli.config.processed_bucket.as_deref(), Some("processed"));
        assert_eq!(cli.config.max_upload_bytes, 25 * 1024 * 1024);
        let cli = Cli::try_parse_from([
            "server",
            "--bucket=images",
            "--table=table",
            "--max-upload-bytes=1000",
        ])
        .expect("valid flags");
        assert_eq!(cli.config.max_upload_bytes, 1000);
        assert_eq!(cli.config.pipeline(), Ok(None));
    }

    #[test]
    fn the_response_write_timeout_defaults_to_30_s_and_reaches_the_connection_limits() {
        let cli =
            Cli::try_parse_from(["server", "--bucket=images", "--table=table"]).expect("valid");
        assert_eq!(cli.config.response_write_timeout_ms, 30_000);
        assert_eq!(
            ServerConfig::new("images", "table").response_write_timeout_ms,
            30_000
        );
        let cli = Cli::try_parse_from([
            "server",
            "--bucket=images",
            "--table=table",
            "--response-write-timeout-ms=300",
        ])
        .expect("valid flags");
        assert_eq!(
            cli.config.connection_limits(None).response_write_timeout,
            Duration::from_millis(300)
        );
    }

    #[test]
    fn a_download_budget_must_hold_one_download_and_one_upload_of_the_largest_size() {
        let cli = Cli::try_parse_from([
            "server",
            "--bucket=images",
            "--table=table",
            "--download-memory-mib=100",
        ])
        .expect("valid flags");
        assert_eq!(cli.config.download_memory_mib, Some(100));
        assert_eq!(cli.config.check_download_memory(), Ok(()));
        let mut config = ServerConfig::new("images", "table");
        assert_eq!(config.download_memory_mib, None, "a share of the machine");
        assert_eq!(config.check_download_memory(), Ok(()));
        config.download_memory_mib = Some(25);
        assert_eq!(config.check_download_memory(), Ok(()), "exactly one");
        for too_small in [24, 0] {
            config.download_memory_mib = Some(too_small);
            let err = config.check_download_memory().expect_err("too small");
            assert!(err.contains("max-download-bytes"), "{err}");
        }
        // Uploads are held in it too.
        config.max_download_bytes = 1024 * 1024;
        config.download_memory_mib = Some(24);
        let err = config
            .check_download_memory()
            .expect_err("an upload does not fit");
        assert!(err.contains("max-upload-bytes"), "{err}");
        config.max_upload_bytes = 24 * 1024 * 1024;
        assert_eq!(config.check_download_memory(), Ok(()));
    }

    #[test]
    fn a_sign_in_code_lives_60_s_unless_told_and_never_past_10_minutes() {
        let cli =
            Cli::try_parse_from(["server", "--bucket=images", "--table=table"]).expect("valid");
        assert_eq!(cli.config.sign_in_code_ttl(), Ok(Duration::from_secs(60)));
        let mut config = ServerConfig::new("images", "table");
        assert_eq!(config.sign_in_code_ttl(), Ok(Duration::from_secs(60)));
        config.sign_in_code_ttl_ms = 1;
        assert_eq!(config.sign_in_code_ttl(), Ok(Duration::from_millis(1)));
        for refused in [0, 600_001] {
            config.sign_in_code_ttl_ms = refused;
            let err = config.sign_in_code_ttl().expect_err("out of range");
            assert!(err.contains("sign-in-code-ttl-ms"), "{err}");
        }
    }

    #[test]
    fn the_pipeline_needs_both_buckets_or_neither() {
        let mut config = ServerConfig::new("images", "table");
        assert_eq!(config.pipeline(), Ok(None));
        config.uploads_bucket = Some("uploads".into());
        let err = config.pipeline().expect_err("half a pipeline");
        assert!(err.contains("--processed-bucket"), "{err}");
        config.processed_bucket = Some("processed".into());
        assert_eq!(
            config.pipeline(),
            Ok(Some(PipelineBuckets {
                uploads: "uploads".into(),
                processed: "processed".into()
            }))
        );
        config.uploads_bucket = None;
        let err = config.pipeline().expect_err("half a pipeline");
        assert!(err.contains("--uploads-bucket"), "{err}");
    }
}
