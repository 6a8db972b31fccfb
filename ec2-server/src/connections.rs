//! The server's accept loop and connection limits: the defence against slowloris and floods.
//!
//! The port is open to the whole internet (the Lambda runs outside any VPC), so a client may
//! open thousands of connections and send nothing, or a header byte every few seconds. Each
//! connection here has a header-read timeout (also the keep-alive idle limit: hyper runs it
//! while it waits for a request head), a TLS handshake timeout and a timeout for the whole
//! request, body included (slow uploads); its answer is cut when the client stops taking it
//! (no byte written for a while; `connections/progress.rs`). Open connections are capped per
//! client address and in total; at a cap the new connection takes the place of an *idle* one
//! (waiting for a TLS handshake, a request head, or its next request), never of one whose
//! request is being served, and is dropped only when every connection is busy. `accept()`
//! failing for lack of file descriptors frees an idle connection too, and never ends the loop.
//!
//! Why evict rather than refuse: refusing at the cap hands the port to whoever fills it first,
//! so a flood that holds the cap would lock the Lambda out, however many addresses it comes
//! from. Evicting idle connections, connections that never served a request first and the
//! oldest first, keeps room for a client that sends its request promptly: the Lambda's new
//! connection asks within milliseconds and is then busy, so it is never the one chosen, while
//! a flood's connections sit idle and are. The per-client cap makes a flood from one address
//! evict only its own connections, so the Lambda's pooled keep-alive connection survives it;
//! a flood spread over many addresses evicts oldest first, which is where the flood's own
//! connections are.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hybridlab_wire::ErrorCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::error::AppError;

mod progress;

use progress::{ProgressIo, WriteProgress};

/// Limits on the connections the server holds open.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once, all clients together.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_client: usize,
    /// Time allowed for a request's head to arrive, from the moment the server waits for it:
    /// after accept (or the TLS handshake) and between keep-alive requests.
    pub header_read_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for a whole request, body included, until the answer's head is ready.
    pub request_timeout: Duration,
    /// Time the answer may wait for the client to take any of its bytes; the connection is
    /// dropped after it. Progress resets it, so it bounds a client that stops reading, not a
    /// slow link.
    pub response_write_timeout: Duration,
}

/// File descriptors kept back from the connection cap for what the server itself opens: its
/// S3, DynamoDB and download connections, and its files.
pub const RESERVED_DESCRIPTORS: usize = 256;

/// Raises this process's soft file-descriptor limit to its hard limit (systemd's
/// `LimitNOFILE`) and returns the soft limit in force, so the connection cap can be fitted
/// under it: the default soft limit of 1024 is what a thousand idle connections exhaust.
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        // Failing to raise it is not fatal: the cap is fitted to what is left.
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
}

/// The connection cap that fits under a soft descriptor limit: `wanted`, or less when the
/// limit would otherwise be reached before the cap (and `accept()` fail with EMFILE).
pub fn fitted_cap(wanted: usize, descriptor_limit: Option<u64>) -> usize {
    match descriptor_limit.and_then(|limit| usize::try_from(limit).ok()) {
        Some(limit) => wanted
            .min(limit.saturating_sub(RESERVED_DESCRIPTORS))
            .max(1),
        None => wanted.max(1),
    }
}

/// One open connection as the registry sees it.
#[derive(Debug)]
struct Tracked {
    client: IpAddr,
    opened: Instant,
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

/// What a connection is doing, shared between its task and the registry.
#[derive(Debug, Default)]
struct Activity {
    /// Requests being served (the handler running or the answer's body being written).
    busy: AtomicUsize,
    /// Whether the connection has completed a request: a client that has is worth more than
    /// one that never has (a slowloris, a flood), so it is evicted last.
    served: AtomicBool,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Tracked>,
    per_client: HashMap<IpAddr, usize>,
}

impl Registry {
    /// The idle connection to give up first among those `eligible` picks: never served
    /// before served, then the oldest.
    fn victim(&self, eligible: impl Fn(&Tracked) -> bool) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, tracked)| eligible(tracked))
            .filter(|(_, tracked)| tracked.activity.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, tracked)| {
                (
                    tracked.activity.served.load(Ordering::Acquire),
                    tracked.opened,
                )
            })
            .map(|(id, _)| *id)
    }

    fn remove(&mut self, id: u64) -> Option<Tracked> {
        let tracked = self.open.remove(&id)?;
        if let Some(count) = self.per_client.get_mut(&tracked.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_client.remove(&tracked.client);
            }
        }
        Some(tracked)
    }

    /// Closes an idle connection (its task sees the notification and drops it).
    fn evict(&mut self, id: u64) {
        if let Some(tracked) = self.remove(id) {
            tracked.evict.notify_one();
        }
    }
}

/// The open connections, shared by the accept loop and the connection tasks.
#[derive(Debug, Clone)]
struct Connections {
    registry: Arc<Mutex<Registry>>,
    limits: Arc<ConnectionLimits>,
}

/// A connection's place in the registry; dropping it gives the place back.
#[derive(Debug)]
struct Ticket {
    id: u64,
    activity: Arc<Activity>,
    evict: Arc<Notify>,
    connections: Connections,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.connections.lock().remove(self.id);
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    ClientBusy,
    ServerBusy,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than refusing every connection would.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new connection from `client`, evicting an idle one at a cap.
    fn admit(&self, client: IpAddr) -> Result<Ticket, Refusal> {
        let mut registry = self.lock();
        let from_client = registry.per_client.get(&client).copied().unwrap_or(0);
        if from_client >= self.limits.max_per_client {
            let victim = registry
                .victim(|tracked| tracked.client == client)
                .ok_or(Refusal::ClientBusy)?;
            registry.evict(victim);
        }
        if registry.open.len() >= self.limits.max_connections {
            let victim = registry.victim(|_| true).ok_or(Refusal::ServerBusy)?;
            registry.evict(victim);
        }
        registry.next_id += 1;
        let id = registry.next_id;
        let activity = Arc::new(Activity::default());
        let evict = Arc::new(Notify::new());
        registry.open.insert(
            id,
            Tracked {
                client,
                opened: Instant::now(),
                activity: activity.clone(),
                evict: evict.clone(),
            },
        );
        *registry.per_client.entry(client).or_insert(0) += 1;
        Ok(Ticket {
            id,
            activity,
            evict,
            connections: self.clone(),
        })
    }

    /// Frees one idle connection's descriptor, for when `accept()` runs out of them.
    fn evict_one(&self) -> bool {
        let mut registry = self.lock();
        match registry.victim(|_| true) {
            Some(victim) => {
                registry.evict(victim);
                true
            }
            None => false,
        }
    }

    fn open(&self) -> usize {
        self.lock().open.len()
    }
}

/// Serves `app` on `listener` with the connection limits, over TLS when `tls` is given, until
/// `shutdown` completes; then stops accepting, lets the requests in flight finish and closes
/// idle connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = Connections {
        registry: Arc::default(),
        limits: Arc::new(limits),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors (EMFILE, ENFILE) or memory: give up an idle connection
                // and pause briefly so the loop does not spin; a connection aborted before
                // it was accepted (ECONNABORTED) needs nothing. The loop never ends on these.
                let starved = matches!(
                    rustix::io::Errno::from_io_error(&err),
                    Some(
                        rustix::io::Errno::MFILE
                            | rustix::io::Errno::NFILE
                            | rustix::io::Errno::NOMEM
                    )
                );
                if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(
                        error = %err,
                        open = connections.open(),
                        "accept failed; the server keeps listening"
                    );
                    last_warning = Some(Instant::now());
                }
                if starved && !connections.evict_one() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        let ticket = match connections.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                // Every connection is serving a request: closing this one at once is all the
                // server can do (the concurrency limit answers 503 to the requests inside).
                if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(client = %peer, ?refusal, "connection refused at the cap");
                    last_warning = Some(Instant::now());
                }
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(run_connection(
            stream,
            peer,
            tls.clone(),
            app.clone(),
            connections.limits.clone(),
            ticket,
            stop_rx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// One connection: the TLS handshake if any, then HTTP/1.1 until the client leaves, a timeout
/// fires, the connection is evicted while idle, or the server shuts down.
async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Arc<ConnectionLimits>,
    ticket: Ticket,
    stop: watch::Receiver<bool>,
) {
    let evict = ticket.evict.clone();
    // Under TLS too, so what counts as progress is bytes the kernel took, not bytes rustls
    // buffered.
    let progress = Arc::new(WriteProgress::default());
    let stream = ProgressIo::new(stream, progress.clone());
    match tls {
        None => serve_http(stream, peer, progress, app, &limits, ticket, stop).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream));
            let stream = tokio::select! {
                result = handshake => match result {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        tracing::debug!(client = %peer, error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(client = %peer, "TLS handshake timed out");
                        return;
                    }
                },
                () = evict.notified() => return,
            };
            serve_http(stream, peer, progress, app, &limits, ticket, stop).await;
        }
    }
}

async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    progress: Arc<WriteProgress>,
    app: Router,
    limits: &ConnectionLimits,
    ticket: Ticket,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ConnectionService {
        app,
        activity: ticket.activity.clone(),
        request_timeout: limits.request_timeout,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            // Dropping the connection drops the answer's body, and with it what the body
            // streams from, and gives the connection's place back.
            () = progress.stalled_for(limits.response_write_timeout) => {
                tracing::debug!(
                    client = %peer,
                    "the client took none of the answer for {:?}; connection closed",
                    limits.response_write_timeout
                );
                break;
            }
            () = ticket.evict.notified() => {
                // Chosen while idle; if a request began in the meantime, it is finished and
                // the connection closed after it rather than cut in the middle.
                if ticket.activity.busy.load(Ordering::Acquire) == 0 {
                    break;
                }
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            changed = stop.changed(), if !draining => {
                let _ = changed;
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// The router behind one connection, marking it busy while a request is served and bounding
/// each request's time.
#[derive(Clone)]
struct ConnectionService {
    app: Router,
    activity: Arc<Activity>,
    request_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let busy = BusyGuard::new(self.activity.clone());
        let app = self.app.clone();
        let timeout = self.request_timeout;
        Box::pin(async move {
            let request = request.map(Body::new);
            // The body is read inside the handler, so this bounds a slow upload as well as a
            // slow handler. The answer's body is not covered: an object may take long to reach
            // a slow link; a client that stops taking it meets the write-progress timeout.
            let response = match tokio::time::timeout(timeout, app.oneshot(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => AppError::new(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the request took longer than {} s, body included",
                        timeout.as_secs()
                    ),
                )
                .into_response(),
            };
            // The connection stays busy until the answer's body is written.
            Ok(response.map(|body| {
                Body::new(HeldBody {
                    inner: body,
                    _busy: busy,
                })
            }))
        })
    }
}

/// Counts a request as in flight on its connection until dropped.
#[derive(Debug)]
struct BusyGuard(Arc<Activity>);

impl BusyGuard {
    fn new(activity: Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.served.store(true, Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its connection marked busy until written (or dropped).
struct HeldBody {
    inner: Body,
    // Held, not read: dropping it marks the connection idle again.
    _busy: BusyGuard,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use futures::StreamExt as _;

    use super::*;

    fn connections(max_connections: usize, max_per_client: usize) -> Connections {
        Connections {
            registry: Arc::default(),
            limits: Arc::new(ConnectionLimits {
                max_connections,
                max_per_client,
                header_read_timeout: Duration::from_secs(1),
                handshake_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
                response_write_timeout: Duration::from_secs(1),
            }),
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn at_the_per_client_cap_that_clients_oldest_idle_connection_gives_way() {
        let connections = connections(100, 2);
        let other = connections.admit(ip(9)).expect("admitted");
        let first = connections.admit(ip(1)).expect("admitted");
        let second = connections.admit(ip(1)).expect("admitted");
        let _third = connections.admit(ip(1)).expect("admitted by eviction");
        assert!(!connections.lock().open.contains_key(&first.id));
        assert!(connections.lock().open.contains_key(&second.id));
        assert!(connections.lock().open.contains_key(&other.id));
        assert_eq!(connections.open(), 3);
    }

    #[test]
    fn busy_and_served_connections_are_evicted_last() {
        let connections = connections(3, 10);
        let busy = connections.admit(ip(1)).expect("admitted");
        let _guard = BusyGuard::new(busy.activity.clone());
        let served = connections.admit(ip(2)).expect("admitted");
        drop(BusyGuard::new(served.activity.clone()));
        let fresh = connections.admit(ip(3)).expect("admitted");
        // The never-served connection goes first, although it is the newest.
        let next = connections.admit(ip(4)).expect("admitted");
        assert!(!connections.lock().open.contains_key(&fresh.id));
        let _next_busy = BusyGuard::new(next.activity.clone());
        let _after = connections.admit(ip(5)).expect("admitted");
        assert!(!connections.lock().open.contains_key(&served.id));
        assert!(connections.lock().open.contains_key(&busy.id));
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let connections = connections(1, 1);
        let busy = connections.admit(ip(1)).expect("admitted");
        let _guard = BusyGuard::new(busy.activity.clone());
        assert_eq!(
            connections.admit(ip(1)).map(|t| t.id),
            Err(Refusal::ClientBusy)
        );
        assert_eq!(
            connections.admit(ip(2)).map(|t| t.id),
            Err(Refusal::ServerBusy)
        );
        drop(busy);
        assert_eq!(
            connections.open(),
            0,
            "a dropped ticket gives its place back"
        );
    }

    /// Sent when dropped: shows that an answer's body, and what it streams from, is gone.
    struct Released(tokio::sync::mpsc::UnboundedSender<()>);

    impl Drop for Released {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    /// The full length of `/large`: far more than the socket buffers of both ends hold.
    const LARGE_BYTES: usize = 64 * 1024 * 1024;

    /// A server on loopback with one connection per client, whose `/large` streams
    /// [`LARGE_BYTES`] and reports when its body is dropped.
    async fn serve_large_answers(
        response_write_timeout: Duration,
    ) -> (
        SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        use axum::routing::get;
        let (released_tx, released) = tokio::sync::mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/large",
                get(move || {
                    let released = Released(released_tx.clone());
                    async move {
                        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                        let chunks =
                            futures::stream::iter(0..LARGE_BYTES / chunk.len()).map(move |_| {
                                let _held = &released;
                                Ok::<_, Infallible>(chunk.clone())
                            });
                        Body::from_stream(chunks)
                    }
                }),
            )
            .route("/small", get(|| async { "small" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("bound");
        let limits = ConnectionLimits {
            max_connections: 4,
            max_per_client: 1,
            header_read_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            response_write_timeout,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, limits, None, async {
            let _ = stopped.await;
        }));
        (address, released, stop)
    }

    /// `GET /small` on a new connection: its answer, or `None` if the connection was refused
    /// (the client's one place is still taken).
    async fn small_answer(address: SocketAddr) -> Option<String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = TcpStream::connect(address).await.ok()?;
        stream
            .write_all(b"GET /small HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
            .await
            .ok()?
            .ok()?;
        Some(answer).filter(|answer| answer.starts_with("HTTP/1.1 200"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_the_client_stops_reading_is_cut_and_its_place_freed() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (address, mut released, _stop) = serve_large_answers(Duration::from_millis(300)).await;
        // A small receive window, and nothing read: the server fills it and its own send
        // buffer, then can write no more.
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("a small window");
        let mut reader = socket.connect(address).await.expect("connected");
        reader
            .write_all(b"GET /large HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .expect("request sent");

        tokio::time::timeout(Duration::from_secs(20), released.recv())
            .await
            .expect("the server gives up on an answer nobody takes")
            .expect("the body is dropped");
        // The client's one place is free again (the ticket goes a moment after the body).
        let mut answer = None;
        for _ in 0..50 {
            answer = small_answer(address).await;
            if answer.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            answer.is_some(),
            "a new connection from the client is served"
        );
        // What the server had written arrives, then the end: the answer was cut short.
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut received))
            .await
            .expect("the connection was closed");
        assert!(
            read.is_err() || received.len() < LARGE_BYTES,
            "{read:?}, {} bytes",
            received.len()
        );
    }

    #[test]
    fn the_cap_fits_under_the_descriptor_limit() {
        assert_eq!(fitted_cap(4096, Some(1024)), 1024 - RESERVED_DESCRIPTORS);
        assert_eq!(fitted_cap(4096, Some(65_536)), 4096);
        assert_eq!(fitted_cap(4096, None), 4096);
        assert_eq!(fitted_cap(4096, Some(10)), 1);
    }
}
