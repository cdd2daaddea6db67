//! The metrics endpoint: a small HTTP/1.1 server (hyper) on its own
//! listener, with `GET /metrics` (the OpenMetrics text of [`Metrics`] when
//! the scraper accepts it, as Prometheus does, else the classic Prometheus
//! text format) and
//! `GET /healthz` (200 while serving, 503 once the server is shutting
//! down). Bounded like everything else: a few connections at a time, a
//! deadline for the request head and for the whole connection.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// Connections served at once; more wait in the kernel's queue.
pub const MAX_METRICS_CONNECTIONS: usize = 16;
/// Time a client has to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection may stay open.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The content type of the classic Prometheus text format.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serve `listener` until `stop` is cancelled; `/healthz` answers 503 once
/// `shutting_down` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutting_down: CancellationToken,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_METRICS_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            permit = Arc::clone(&slots).acquire_owned() => permit,
        };
        let Ok(permit) = permit else {
            return;
        };
        let (tcp, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = Arc::clone(&metrics);
        let shutting_down = shutting_down.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let answer = answer(&request, &metrics, shutting_down.is_cancelled());
                async move { Ok::<_, Infallible>(answer) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(tcp), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(permit);
        });
    }
}

/// Whether the request's `Accept` header names the OpenMetrics text format.
fn accepts_openmetrics<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

fn answer<B>(
    request: &Request<B>,
    metrics: &Metrics,
    shutting_down: bool,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert("content-type", value);
        }
        response
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
        if let Ok(value) = "GET, HEAD".parse() {
            response.headers_mut().insert("allow", value);
        }
        return response;
    }
    match request.uri().path() {
        "/metrics" if accepts_openmetrics(request) => {
            reply(StatusCode::OK, OPENMETRICS_CONTENT_TYPE, metrics.encode())
        }
        "/metrics" => reply(
            StatusCode::OK,
            CLASSIC_CONTENT_TYPE,
            metrics.encode_classic(),
        ),
        "/healthz" if shutting_down => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n".into(),
        ),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: GET /metrics or /healthz\n".into(),
        ),
    }
}
