//! What a child process prints, forwarded line by line with each line's time, and a way to
//! know when every byte the child wrote before a given moment has been forwarded.
//!
//! The Lambda host needs the second part: a function prints its log lines and then posts its
//! response, so once the response is in, whatever it printed is already in the pipe, though
//! the reader task may not have read it yet. [`Output::settled`] asks each pipe how many bytes
//! wait in it (`FIONREAD`, on a duplicate of the read end) and adds the bytes the reader has
//! taken out: that is everything written so far, and the host waits until the reader has
//! forwarded that much. The reader holds a lock across each `read`, and the count is taken
//! under the same lock, so a read can never fall between the two numbers.

use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{mpsc, watch};

use super::logs::now_ms;

/// Lines longer than this are cut into pieces, so a child that never prints a newline cannot
/// make the agent hold an ever-growing buffer (CloudWatch's own limit is 256 KB an event).
const MAX_LINE: usize = 256 * 1024;

/// One pipe (stdout or stderr) of a child.
#[derive(Debug)]
struct Pipe {
    /// Bytes read out of the pipe so far. The reader holds the lock across each read.
    taken: Mutex<u64>,
    /// Bytes read and forwarded (a line without its newline yet counts as forwarded: it
    /// goes out with the rest of its line). `u64::MAX` once the reader has stopped.
    forwarded: watch::Sender<u64>,
    /// A duplicate of the pipe's read end, to ask how many bytes wait in it.
    read_end: Option<OwnedFd>,
}

impl Pipe {
    /// Every byte written to the pipe so far: those taken out plus those waiting in it.
    fn written(&self) -> u64 {
        let taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = self
            .read_end
            .as_ref()
            .and_then(|fd| rustix::io::ioctl_fionread(fd).ok())
            .unwrap_or(0);
        *taken + waiting
    }
}

/// The readers of one child's output.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pipes: Vec<Arc<Pipe>>,
}

impl Output {
    /// Waits until every byte the child wrote before this call has been forwarded as lines,
    /// or `limit` passed (a safety net: the readers run on the same runtime and keep up).
    /// Returns whether everything was forwarded.
    pub(crate) async fn settled(&self, limit: Duration) -> bool {
        let targets: Vec<(&Arc<Pipe>, u64)> = self
            .pipes
            .iter()
            .map(|pipe| (pipe, pipe.written()))
            .filter(|(pipe, written)| *pipe.forwarded.borrow() < *written)
            .collect();
        if targets.is_empty() {
            return true;
        }
        let all = async {
            for (pipe, written) in targets {
                let mut forwarded = pipe.forwarded.subscribe();
                let _ = forwarded.wait_for(|&done| done >= written).await;
            }
        };
        tokio::time::timeout(limit, all).await.is_ok()
    }
}

/// Sends every line `child` prints, on stdout or stderr, to `sender` with its time.
pub(crate) fn forward_output(
    child: &mut tokio::process::Child,
    sender: &mpsc::UnboundedSender<(i64, String)>,
) -> Output {
    let mut output = Output::default();
    if let Some(stdout) = child.stdout.take() {
        let read_end = stdout.as_fd().try_clone_to_owned().ok();
        output
            .pipes
            .push(spawn_reader(stdout, read_end, sender.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        let read_end = stderr.as_fd().try_clone_to_owned().ok();
        output
            .pipes
            .push(spawn_reader(stderr, read_end, sender.clone()));
    }
    output
}

fn spawn_reader(
    stream: impl AsyncRead + Unpin + Send + 'static,
    read_end: Option<OwnedFd>,
    sender: mpsc::UnboundedSender<(i64, String)>,
) -> Arc<Pipe> {
    let pipe = Arc::new(Pipe {
        taken: Mutex::new(0),
        forwarded: watch::Sender::new(0),
        read_end,
    });
    tokio::spawn(read_lines(stream, pipe.clone(), sender));
    pipe
}

async fn read_lines(
    mut stream: impl AsyncRead + Unpin,
    pipe: Arc<Pipe>,
    sender: mpsc::UnboundedSender<(i64, String)>,
) {
    let mut chunk = vec![0u8; 16 * 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut forwarded = 0u64;
    loop {
        let read = std::future::poll_fn(|cx| {
            let mut taken = pipe.taken.lock().unwrap_or_else(PoisonError::into_inner);
            let mut buffer = ReadBuf::new(&mut chunk);
            match Pin::new(&mut stream).poll_read(cx, &mut buffer) {
                Poll::Ready(Ok(())) => {
                    let read = buffer.filled().len();
                    *taken += read as u64;
                    Poll::Ready(read)
                }
                // An error ends the stream as its end does.
                Poll::Ready(Err(_)) => Poll::Ready(0),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        if read == 0 {
            break;
        }
        let now = now_ms();
        let mut rest = &chunk[..read];
        while let Some(at) = rest.iter().position(|&byte| byte == b'\n') {
            line.extend_from_slice(&rest[..at]);
            rest = &rest[at + 1..];
            if sender.send((now, take_line(&mut line))).is_err() {
                pipe.forwarded.send_replace(u64::MAX);
                return;
            }
        }
        line.extend_from_slice(rest);
        while line.len() >= MAX_LINE {
            let tail = line.split_off(MAX_LINE);
            let head = std::mem::replace(&mut line, tail);
            let _ = sender.send((now, String::from_utf8_lossy(&head).into_owned()));
        }
        forwarded += read as u64;
        pipe.forwarded.send_replace(forwarded);
    }
    // The end of the stream ends an unfinished last line.
    if !line.is_empty() {
        let _ = sender.send((now_ms(), take_line(&mut line)));
    }
    pipe.forwarded.send_replace(u64::MAX);
}

/// The text of a line (without its `\r\n` or `\n`), leaving `line` empty.
fn take_line(line: &mut Vec<u8>) -> String {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text = match std::str::from_utf8(line) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(line).into_owned(),
    };
    line.clear();
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn everything_written_before_settling_is_forwarded_first() {
        let mut command = tokio::process::Command::new("sh");
        command
            .args([
                "-c",
                "for i in 1 2 3; do echo out $i; echo err $i >&2; done; printf 'no newline'; read _",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("sh runs");
        let (sender, mut lines) = mpsc::unbounded_channel();
        let output = forward_output(&mut child, &sender);
        // Wait until the shell has written everything (then it blocks on `read`).
        let mut written = 0;
        while written < 3 * 6 + 3 * 6 + 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            written = output.pipes.iter().map(|pipe| pipe.written()).sum();
        }
        assert!(output.settled(Duration::from_secs(5)).await);
        let mut got = Vec::new();
        while let Ok((_, line)) = lines.try_recv() {
            got.push(line);
        }
        got.sort();
        assert_eq!(
            got,
            ["err 1", "err 2", "err 3", "out 1", "out 2", "out 3"],
            "the unfinished line waits for its end"
        );
        drop(child.stdin.take());
        let _ = child.wait().await;
        let (_, last) = lines.recv().await.expect("the last line at the end");
        assert_eq!(last, "no newline");
    }

    /// The Lambda protocol in small: the child prints a line and then answers on another
    /// channel (here a file); once the answer is seen, the line must be forwarded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_line_printed_before_an_answer_is_forwarded_by_the_time_it_settles() {
        use tokio::io::AsyncWriteExt;
        let answers = std::env::temp_dir().join(format!(
            "hybridlab-output-test-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let mut command = tokio::process::Command::new("sh");
        command
            .args([
                "-c",
                r#"i=0; while read _; do i=$((i+1)); echo "line $i"; echo "$i" > "$1"; done"#,
                "sh",
            ])
            .arg(&answers)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("sh runs");
        let mut stdin = child.stdin.take().expect("stdin");
        let (sender, mut lines) = mpsc::unbounded_channel();
        let output = forward_output(&mut child, &sender);
        for round in 1..=300u32 {
            stdin.write_all(b"go\n").await.expect("the child reads");
            loop {
                let answered = std::fs::read_to_string(&answers)
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok());
                if answered == Some(round) {
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert!(output.settled(Duration::from_secs(5)).await);
            let (_, line) = lines.try_recv().expect("the line is there");
            assert_eq!(line, format!("line {round}"));
        }
        drop(stdin);
        let _ = child.wait().await;
        let _ = std::fs::remove_file(&answers);
    }

    #[test]
    fn lines_lose_their_line_ends_and_keep_bad_bytes_visible() {
        let mut line = b"crlf\r".to_vec();
        assert_eq!(take_line(&mut line), "crlf");
        assert!(line.is_empty());
        let mut line = vec![b'a', 0xff, b'b'];
        assert_eq!(take_line(&mut line), "a\u{fffd}b");
    }
}
