//! The image server binary run as a process of its own, as on the instance, so a test can
//! read its memory from `/proc` (its peak resident set, `VmHWM`) and its log. It stores to
//! the sandbox's S3 and DynamoDB through the edge port; it listens on a port the OS picks and
//! logs; it is killed when dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sandbox::build_binary;

/// A running `hybridlab-ec2-server` process.
#[derive(Debug)]
pub struct ServerProcess {
    pub url: String,
    pub pid: u32,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the server with its bucket, table and AWS endpoint, the variables of `extra`
    /// (which win) and nothing else from this process's environment, and waits until it
    /// listens.
    pub fn start(endpoint: &str, bucket: &str, table: &str, extra: &[(&str, &str)]) -> Self {
        let binary = build_binary("hybridlab-ec2-server", "hybridlab-ec2-server");
        let mut env: BTreeMap<&str, &str> = BTreeMap::from([
            ("HYBRIDLAB_BUCKET", bucket),
            ("HYBRIDLAB_TABLE", table),
            ("HYBRIDLAB_ENDPOINT_URL", endpoint),
            ("HYBRIDLAB_LISTEN", "127.0.0.1:0"),
            ("HYBRIDLAB_ALLOW_PRIVATE_ADDRESSES", "true"),
            ("HYBRIDLAB_LOG_FORMAT", "json"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("RUST_LOG", "info"),
        ]);
        env.extend(extra.iter().copied());
        let mut child = Command::new(binary)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server starts");
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        // Ends when the process does (its stdout closes).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                    && entry["fields"]["message"] == "image server listening"
                    && let Some(address) = entry["fields"]["address"].as_str()
                {
                    let _ = address_tx.send(address.to_owned());
                }
                lines.lock().expect("not poisoned").push(line);
            }
        });
        let mut server = Self {
            url: String::new(),
            pid,
            child,
            log,
        };
        let address = address_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server listens: {:?}", server.log_lines()));
        server.url = format!("http://{address}");
        server
    }

    /// Every line the server has logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("not poisoned").clone()
    }

    /// Waits up to `limit` for a log line containing every one of `needles`.
    pub fn wait_for_log(&self, needles: &[&str], limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .log_lines()
                .into_iter()
                .find(|line| needles.iter().all(|needle| line.contains(needle)));
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The peak resident memory of the process so far (`VmHWM`), in bytes.
    pub fn peak_memory_bytes(&self) -> u64 {
        crate::procfs::peak_resident_bytes(self.pid).expect("the server's /proc status")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
