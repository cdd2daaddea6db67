//! The metrics endpoint's life: started with the server, moved, started or
//! stopped by a reload, stopped at shutdown. What it serves is in
//! [`super::http`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::metrics::Metrics;
use crate::config::MetricsSection;
use crate::ServerError;

/// The metrics endpoint, running or not.
#[derive(Default)]
pub(crate) struct MetricsEndpoint {
    running: Mutex<Option<Running>>,
}

/// A running endpoint: its address and what stops it.
struct Running {
    address: SocketAddr,
    stop: CancellationToken,
}

impl Running {
    fn stop(self) {
        self.stop.cancel();
        info!(address = %self.address, "metrics endpoint stopped");
    }
}

/// What a reload does to the metrics endpoint.
pub(crate) enum MetricsChange {
    /// Serve on this newly bound listener instead (or for the first time).
    Start(TcpListener),
    /// Stop serving.
    Stop,
}

impl MetricsEndpoint {
    /// Serve `metrics` on `listener` until `shutdown` or the next change,
    /// in place of any endpoint running now.
    pub(crate) fn start(
        &self,
        listener: TcpListener,
        metrics: &Arc<Metrics>,
        shutdown: &CancellationToken,
    ) {
        let Ok(address) = listener.local_addr() else {
            return;
        };
        let stop = CancellationToken::new();
        info!(%address, "metrics endpoint: GET /metrics, GET /healthz");
        tokio::spawn(super::http::serve(
            listener,
            Arc::clone(metrics),
            shutdown.clone(),
            stop.clone(),
        ));
        if let Some(previous) = self.lock().replace(Running { address, stop }) {
            previous.stop();
        }
    }

    /// Carry out a change of the endpoint.
    pub(crate) fn apply(
        &self,
        change: MetricsChange,
        metrics: &Arc<Metrics>,
        shutdown: &CancellationToken,
    ) {
        match change {
            MetricsChange::Start(listener) => self.start(listener, metrics, shutdown),
            MetricsChange::Stop => self.stop(),
        }
    }

    /// Stop the endpoint, if it runs.
    pub(crate) fn stop(&self) {
        let previous = self.lock().take();
        if let Some(previous) = previous {
            previous.stop();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        match self.running.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// What a reload from `old` to `new` must do to the metrics endpoint
/// (binding a new listener now, so that a failure refuses the reload).
pub(crate) async fn change_for(
    old: &MetricsSection,
    new: &MetricsSection,
) -> Result<Option<MetricsChange>, ServerError> {
    Ok(match (old.enabled, new.enabled) {
        (_, false) => Some(MetricsChange::Stop),
        (true, true) if old.listen == new.listen => None,
        (_, true) => Some(MetricsChange::Start(
            crate::listen::bind_one(new.listen).await?,
        )),
    })
}
