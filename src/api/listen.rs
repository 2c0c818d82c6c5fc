//! Accepting connections: a cap per listener (a semaphore permit per open connection), TCP
//! settings, accept errors logged once per interval, an idle timeout, and the REST server loop.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use futures::{Stream, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, PollSemaphore};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};
use tower::ServiceExt;

/// At most one warning per listener and cause in this interval; the rest are counted.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// After an accept error (typically EMFILE) the listener pauses instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Open files kept free for the database pool, outbound calls, logs.
const RESERVED_FILES: u64 = 256;

/// How a listener accepts.
#[derive(Clone, Copy, Debug)]
pub struct Accept {
    /// The listener's name in logs ("grpc", "rest", "metrics").
    pub name: &'static str,
    pub max_connections: usize,
    pub tcp_keepalive: Option<Duration>,
    /// Closes a connection with no bytes either way for this long.
    pub idle_timeout: Option<Duration>,
    /// Closes a connection whose client has sent nothing this long after connecting (before
    /// HTTP/1.1 or HTTP/2 is even told apart, where no HTTP timeout applies yet).
    pub first_byte_timeout: Option<Duration>,
}

/// Accepted connections, each holding a permit of the listener's cap: at the cap the listener
/// stops accepting, so new clients wait in the kernel's backlog while open ones are served.
/// Accept errors never end the stream.
pub struct Incoming {
    inner: TcpIncoming,
    permits: PollSemaphore,
    permit: Option<OwnedSemaphorePermit>,
    backoff: Option<Pin<Box<Sleep>>>,
    accept: Accept,
    errors: Throttled,
    full: Throttled,
}

impl Incoming {
    pub fn new(listener: TcpListener, accept: Accept) -> Self {
        let max = fit_under_file_limit(accept.name, accept.max_connections, open_files_limit());
        Self {
            inner: TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(accept.tcp_keepalive),
            permits: PollSemaphore::new(Arc::new(Semaphore::new(max))),
            permit: None,
            backoff: None,
            accept,
            errors: Throttled::default(),
            full: Throttled::default(),
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = &mut this.backoff {
                ready!(sleep.as_mut().poll(cx));
                this.backoff = None;
            }
            if this.permit.is_none() {
                if this.permits.available_permits() == 0 {
                    let name = this.accept.name;
                    this.full.note(|suppressed| {
                        tracing::warn!(
                            listener = name,
                            max = this.accept.max_connections,
                            suppressed,
                            "connection cap reached; new connections wait"
                        );
                    });
                }
                match ready!(this.permits.poll_acquire(cx)) {
                    Some(p) => this.permit = Some(p),
                    // The semaphore is never closed.
                    None => return Poll::Ready(None),
                }
            }
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(io)) => {
                    let permit = this.permit.take().expect("acquired just above");
                    return Poll::Ready(Some(Ok(Conn::new(io, permit, &this.accept))));
                }
                Some(Err(e)) => {
                    let name = this.accept.name;
                    this.errors.note(|suppressed| {
                        tracing::warn!(listener = name, error = %e, suppressed, "accepting a connection failed");
                    });
                    this.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }
}

/// Logs at most once per `LOG_INTERVAL`, with the number of occurrences it kept quiet about.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    fn note(&mut self, log: impl FnOnce(u64)) {
        if self.last.is_some_and(|at| at.elapsed() < LOG_INTERVAL) {
            self.suppressed += 1;
            return;
        }
        log(self.suppressed);
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// The process's soft limit on open files (Linux), to keep the caps below it.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The cap, lowered so that both listeners at their caps still leave files for the rest.
fn fit_under_file_limit(name: &str, max: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else { return max };
    let room = usize::try_from(limit.saturating_sub(RESERVED_FILES) / 2).unwrap_or(usize::MAX);
    if max > room {
        tracing::warn!(
            listener = name,
            configured = max,
            open_files_limit = limit,
            using = room.max(1),
            "connection cap lowered to fit under the open-file limit"
        );
    }
    max.min(room).max(1)
}

/// An accepted connection; its permit returns to the listener when it closes.
pub struct Conn {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Option<Idle>,
    /// Until the client's first bytes arrive.
    first_byte: Option<Pin<Box<Sleep>>>,
}

struct Idle {
    after: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Conn {
    fn new(io: TcpStream, permit: OwnedSemaphorePermit, accept: &Accept) -> Self {
        Self {
            io,
            _permit: permit,
            idle: accept.idle_timeout.map(|after| Idle {
                after,
                timer: Box::pin(tokio::time::sleep(after)),
            }),
            first_byte: accept
                .first_byte_timeout
                .map(|after| Box::pin(tokio::time::sleep(after))),
        }
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.io.peer_addr().ok()
    }

    fn progressed(&mut self) {
        if let Some(idle) = &mut self.idle {
            let at = tokio::time::Instant::now() + idle.after;
            idle.timer.as_mut().reset(at);
        }
    }

    /// Whether the connection has been silent too long; registers for a wake-up otherwise.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let idle = self
            .idle
            .as_mut()
            .is_some_and(|idle| idle.timer.as_mut().poll(cx).is_ready());
        let mute = self
            .first_byte
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
        idle || mute
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.progressed();
                    this.first_byte = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.progressed();
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.progressed();
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

/// HTTP settings of the REST (and metrics) listener.
#[derive(Clone, Copy, Debug)]
pub struct Http {
    /// Time a client has to send each request's headers.
    pub header_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

/// Serves `router` over HTTP/1.1 and h2c on `incoming` until `shutdown`, then lets open
/// connections finish. Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve_http(
    incoming: Incoming,
    router: axum::Router,
    http: Http,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(http.keepalive_interval)
        .keep_alive_timeout(http.keepalive_timeout);
    let graceful = GracefulShutdown::new();
    let mut incoming = Box::pin(incoming);
    loop {
        let conn = tokio::select! {
            _ = shutdown.cancelled() => break,
            conn = incoming.next() => conn,
        };
        let conn = match conn {
            Some(Ok(conn)) => conn,
            // Incoming logs and retries accept errors itself and never ends.
            Some(Err(_)) => continue,
            None => break,
        };
        let peer = conn.peer_addr();
        let router = router.clone();
        let service = tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            if let Some(peer) = peer {
                req.extensions_mut().insert(ConnectInfo(peer));
            }
            let router = router.clone();
            async move { router.oneshot(req.map(axum::body::Body::new)).await }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Timeouts and resets end connections all the time: not worth more than debug.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "REST connection ended with an error");
            }
        });
    }
    // Stop accepting first, then wait for open connections (the app bounds the wait).
    drop(incoming);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_under_the_open_file_limit() {
        assert_eq!(fit_under_file_limit("t", 4096, Some(1024)), 384);
        assert_eq!(fit_under_file_limit("t", 100, Some(1024)), 100);
        assert_eq!(fit_under_file_limit("t", 4096, None), 4096);
        assert_eq!(fit_under_file_limit("t", 4096, Some(10)), 1);
    }

    #[test]
    fn a_throttled_log_speaks_once_per_interval_and_counts_the_rest() {
        let mut t = Throttled::default();
        let mut spoken = Vec::new();
        for _ in 0..1000 {
            t.note(|n| spoken.push(n));
        }
        assert_eq!(spoken, vec![0]);
        assert_eq!(t.suppressed, 999);
    }
}
