//! The accept loop of [`crate::serve`], in place of `axum::serve`, which reads requests
//! without any time limit and accepts any number of connections: a client sending its
//! request slowly, or never, held a connection and a task for as long as it liked, and one
//! host could hold thousands (issue 11, item 6).
//!
//! Here each connection is served by hyper's HTTP/1 server with a header read timeout (it
//! also closes a connection that sends nothing, and a kept-alive one that stays idle), and
//! at most a configured number of connections are open at once per client address (IPv6:
//! per /64, as for the rate limit). A connection beyond the cap is answered 503 and closed
//! before anything is read. The body timeout is the body extractor's (`api::Body`). On
//! shutdown, connections finish the request in flight (for at most a few seconds) and close.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use crate::api::limit::bucket;

/// What the accept loop enforces (from [`crate::ApiOptions`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time to send a request's headers; the connection is closed after it.
    pub(crate) header_timeout: Duration,
    /// Connections open at once per client address; 0: no limit.
    pub(crate) max_per_address: usize,
}

/// Serves `app` on `listener` until `shutdown` completes, then lets every connection
/// finish its request in flight.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Arc::new(OpenConnections {
        max: limits.max_per_address,
        counts: Mutex::new(HashMap::new()),
    });
    // Each connection task holds a receiver: `stop` tells them to wind down, and
    // `stop.closed()` completes once the last one has ended.
    let (stop, stopping) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = open.acquire(peer.ip()) else {
            refuse(&stream);
            continue;
        };
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            limits.header_timeout,
            stopping.clone(),
            slot,
        ));
    }
    drop(stopping);
    drop(listener);
    let _ = stop.send(());
    // A query in flight may have minutes left on its time limit: it gets a few seconds to
    // answer, then its connection is dropped with the process (issue 11, item 2).
    if tokio::time::timeout(SHUTDOWN_GRACE, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "requests still in flight at shutdown were cut off"
        );
    }
    Ok(())
}

/// How long requests in flight may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    mut stopping: tokio::sync::watch::Receiver<()>,
    _slot: Slot,
) {
    // Handlers see the client address as with `axum::serve` (the rate limit reads it).
    let service = app.map_request(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        // A client gone, or timed out: nothing to report.
        _ = conn.as_mut() => return,
        _ = stopping.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Answers a connection over the cap without reading from it. Best effort and never
/// waiting: the client may not read either.
fn refuse(stream: &TcpStream) {
    const BODY: &str = r#"{"error":{"kind":"too_many_connections","message":"too many connections from your address; close some and try again"}}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
    tracing::debug!("connection refused: too many from one address");
}

/// Open connections per client address.
#[derive(Debug)]
struct OpenConnections {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl OpenConnections {
    /// A slot for a new connection from `addr`, or `None` at the cap.
    fn acquire(self: &Arc<Self>, addr: IpAddr) -> Option<Slot> {
        let key = bucket(addr);
        let mut counts = self.counts.lock().expect("connection counts poisoned");
        let count = counts.entry(key).or_insert(0);
        if self.max > 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            key,
        })
    }
}

/// One open connection, counted until dropped (when its task ends).
#[derive(Debug)]
struct Slot {
    open: Arc<OpenConnections>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.counts.lock().expect("connection counts poisoned");
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Issue 11, item 6, over real TCP connections on loopback, with short limits.
#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::http::{ApiOptions, serve_until};

    /// A server with `options` on a free loopback port; it stops when the sender is dropped.
    async fn server(
        options: ApiOptions,
    ) -> (
        tempfile::TempDir,
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (dir, home, _) = crate::testing::hub().await;
        let (ready, bound) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_until(
            home,
            "127.0.0.1:0".parse().unwrap(),
            agora_service::QueryLimits::default(),
            ApiOptions {
                public_rate_limit: 0,
                ..options
            },
            move |addr| {
                let _ = ready.send(addr);
            },
            async move {
                let _ = stopped.await;
            },
        ));
        (dir, bound.await.unwrap(), stop)
    }

    /// Everything the server sends until it closes the connection, and when it closed it.
    /// Fails if it is still open after `limit`.
    async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
        let start = Instant::now();
        let mut received = Vec::new();
        let read_all = async {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut chunk).await {
                received.extend_from_slice(&chunk[..n]);
            }
        };
        assert!(
            tokio::time::timeout(limit, read_all).await.is_ok(),
            "the connection was still open after {limit:?}"
        );
        (
            String::from_utf8_lossy(&received).into_owned(),
            start.elapsed(),
        )
    }

    async fn health(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        String::from_utf8_lossy(&chunk[..n]).into_owned()
    }

    #[tokio::test]
    async fn slow_and_silent_clients_are_cut_off() {
        let limit = Duration::from_millis(300);
        let (_dir, addr, _stop) = server(ApiOptions {
            header_timeout: limit,
            body_timeout: limit,
            ..ApiOptions::default()
        })
        .await;
        let patience = Duration::from_secs(5);

        // Headers that never end.
        let mut half_header = TcpStream::connect(addr).await.unwrap();
        half_header
            .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
            .await
            .unwrap();
        let (_, took) = until_closed(&mut half_header, patience).await;
        assert!(took < limit * 5, "half-sent headers held for {took:?}");

        // A connection that says nothing.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let (_, took) = until_closed(&mut silent, patience).await;
        assert!(took < limit * 5, "a silent connection held for {took:?}");

        // A body that never ends: 408 in the error envelope, and the connection closes.
        let mut half_body = TcpStream::connect(addr).await.unwrap();
        half_body
            .write_all(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                  Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"login\"",
            )
            .await
            .unwrap();
        let (answer, took) = until_closed(&mut half_body, patience).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(r#""kind":"request_timeout""#), "{answer}");
        assert!(took < limit * 5, "a half-sent body held for {took:?}");

        // A kept-alive connection is closed once idle for as long.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        assert!(health(&mut idle).await.starts_with("HTTP/1.1 200"));
        let (_, took) = until_closed(&mut idle, patience).await;
        assert!(took < limit * 5, "an idle connection held for {took:?}");
    }

    #[tokio::test]
    async fn connections_beyond_the_per_address_cap_are_refused() {
        let (_dir, addr, _stop) = server(ApiOptions {
            max_connections_per_address: 3,
            ..ApiOptions::default()
        })
        .await;
        let mut open = Vec::new();
        for _ in 0..3 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            assert!(health(&mut stream).await.starts_with("HTTP/1.1 200"));
            open.push(stream);
        }
        // The fourth is answered 503 and closed at once, without a request being read.
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        let (answer, _) = until_closed(&mut fourth, Duration::from_secs(2)).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("too_many_connections"), "{answer}");
        // The open ones still work.
        assert!(health(&mut open[1]).await.starts_with("HTTP/1.1 200"));
        // Closing one frees its slot (once the server has seen it go).
        drop(open.remove(0));
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let mut again = TcpStream::connect(addr).await.unwrap();
            if health(&mut again).await.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "the slot was never freed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn slots_are_counted_per_address_and_freed() {
        let open = Arc::new(OpenConnections {
            max: 2,
            counts: Mutex::new(HashMap::new()),
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b_neighbour: IpAddr = "2001:db8::2".parse().unwrap();
        let first = open.acquire(a).unwrap();
        let _second = open.acquire(a).unwrap();
        assert!(open.acquire(a).is_none());
        let _v6 = open.acquire(b).unwrap();
        let _v6_same_64 = open.acquire(b_neighbour).unwrap();
        assert!(open.acquire(b).is_none(), "IPv6 counts per /64");
        drop(first);
        assert!(open.acquire(a).is_some());
        drop(_second);
        assert!(
            !open.counts.lock().unwrap().contains_key(&a),
            "no entry left behind"
        );
    }
}
