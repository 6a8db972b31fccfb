//! Whether a connection's answer is still leaving: the defence against clients that stop
//! reading. A client can send a valid request and then take the answer at a byte a minute, or
//! not at all behind a small receive window; the connection then stays busy (never evicted),
//! holding its slot and whatever its body streams from (an S3 object) for as long as it likes.
//!
//! [`ProgressIo`] wraps the socket, under TLS when there is TLS, so what it sees is the bytes
//! the kernel accepted. A write the socket cannot take starts a stall; a write it takes, even
//! one byte, ends it. [`WriteProgress::stalled_for`] completes once a stall has lasted its
//! limit, and the connection is then dropped. Progress counts, not total time: a slow link
//! that keeps taking bytes is never cut, however long a large object takes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One connection's write progress, shared by its socket and its watchdog.
#[derive(Debug, Default)]
pub(super) struct WriteProgress {
    /// Since when a write has been waiting for the socket to take bytes; `None` while nothing
    /// waits (every write so far was taken, or nothing is being written).
    stalled_since: Mutex<Option<Instant>>,
    /// Wakes the watchdog when a stall starts.
    stall_started: Notify,
}

impl WriteProgress {
    fn lock(&self) -> MutexGuard<'_, Option<Instant>> {
        // The value is a plain timestamp: a panic elsewhere cannot leave it inconsistent.
        self.stalled_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A write (or flush, or shutdown) found the socket full.
    fn blocked(&self) {
        let mut since = self.lock();
        if since.is_none() {
            *since = Some(Instant::now());
            self.stall_started.notify_one();
        }
    }

    /// The socket took bytes (or failed, which ends the connection anyway).
    fn advanced(&self) {
        *self.lock() = None;
    }

    fn stalled_since(&self) -> Option<Instant> {
        *self.lock()
    }

    /// Completes once the socket has taken no byte of pending output for `limit`; never
    /// while nothing waits to be written (an idle keep-alive connection, a handler still
    /// working, a body whose source is slow).
    pub(super) async fn stalled_for(&self, limit: Duration) {
        loop {
            match self.stalled_since() {
                // A stall that starts between the check and the wait stores a permit, so the
                // wait returns at once; a stale permit only costs one more turn of the loop.
                None => self.stall_started.notified().await,
                Some(since) => {
                    let deadline = since + limit;
                    if Instant::now() >= deadline {
                        return;
                    }
                    tokio::time::sleep_until(deadline).await;
                }
            }
        }
    }
}

/// A connection's IO that reports its write progress to a [`WriteProgress`].
#[derive(Debug)]
pub(super) struct ProgressIo<I> {
    inner: I,
    progress: Arc<WriteProgress>,
}

impl<I> ProgressIo<I> {
    pub(super) fn new(inner: I, progress: Arc<WriteProgress>) -> Self {
        Self { inner, progress }
    }

    /// Records what a write-side poll says about the socket and passes it on.
    fn track<T>(&self, poll: Poll<T>, took_bytes: impl FnOnce(&T) -> bool) -> Poll<T> {
        match &poll {
            Poll::Pending => self.progress.blocked(),
            Poll::Ready(ready) if took_bytes(ready) => self.progress.advanced(),
            Poll::Ready(_) => {}
        }
        poll
    }
}

/// A write that returns counts as progress: bytes taken, or an error (the connection ends).
fn wrote(result: &io::Result<usize>) -> bool {
    !matches!(result, Ok(0))
}

impl<I: AsyncRead + Unpin> AsyncRead for ProgressIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ProgressIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(poll, wrote)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(poll, wrote)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    // A flush or shutdown that completes says nothing about bytes taken (a TCP socket's flush
    // always completes), so only one that waits is recorded.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(poll, |_| false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.track(poll, |_| false)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    /// A connection whose peer can hold at most `window` unread bytes.
    fn connection(window: usize) -> (ProgressIo<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (server, client) = tokio::io::duplex(window);
        (
            ProgressIo::new(server, Arc::new(WriteProgress::default())),
            client,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_nobody_takes_is_a_stall_once_the_limit_has_passed() {
        let (mut server, _client) = connection(1024);
        let progress = server.progress.clone();
        let answer = tokio::spawn(async move { server.write_all(&[7; 64 * 1024]).await });
        let started = Instant::now();
        progress.stalled_for(LIMIT).await;
        assert!(started.elapsed() >= LIMIT, "not before the limit");
        assert!(!answer.is_finished(), "the answer never left");
        answer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_taking_bytes_is_never_a_stall() {
        let (mut server, mut client) = connection(1024);
        let progress = server.progress.clone();
        let answer = async move { server.write_all(&[7; 64 * 1024]).await };
        // Half a kilobyte every half limit: 64 limits in all for the whole answer.
        let reader = async move {
            let mut received = 0;
            let mut buf = [0; 512];
            loop {
                tokio::time::sleep(LIMIT / 2).await;
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => return received,
                    Ok(n) => received += n,
                }
            }
        };
        let started = Instant::now();
        tokio::select! {
            written = answer => written.expect("the whole answer is written"),
            () = progress.stalled_for(LIMIT) => panic!("a reader taking bytes was cut"),
            received = reader => panic!("the reader stopped after {received} bytes"),
        }
        assert!(started.elapsed() > LIMIT * 10, "progress, not total time");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_to_write_is_never_a_stall() {
        let (mut server, mut client) = connection(1024);
        let progress = server.progress.clone();
        server.write_all(b"a short answer").await.expect("fits");
        server.flush().await.expect("flushed");
        let mut buf = [0; 64];
        let _ = client.read(&mut buf).await;
        let waited = tokio::time::timeout(LIMIT * 10, progress.stalled_for(LIMIT)).await;
        assert!(waited.is_err(), "an idle connection is not stalled");
    }
}
