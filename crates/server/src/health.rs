//! The routes for operators' machines rather than people: `/healthz` (the
//! process answers), `/readyz` (and so does its database) and `/metrics`
//! (Prometheus). None needs a token.

use crate::error::ApiError;
use crate::{Shared, agent, overview};
use axum::extract::State;
use axum::response::IntoResponse;
use suanwang_store::{JobFilter, Store};

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops",
    responses((status = 200, description = "the process answers", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "ops",
    responses((status = 200, description = "ready: the database answers", body = String, content_type = "text/plain"),
        (status = 503, description = "the database does not answer", body = suanwang_api::ErrorBody)))]
pub(crate) async fn readyz<S: Store>(State(app): Shared<S>) -> Result<&'static str, ApiError> {
    app.store
        .list_jobs(&JobFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| ApiError::Unavailable(format!("database not ready: {e}")))?;
    Ok("ready")
}

#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "ops",
    responses((status = 200, description = "the control plane's metrics, in the Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics<S: Store>(State(app): Shared<S>) -> impl IntoResponse {
    // Per-site gauges are computed at scrape time; the counters stand alone if
    // the database does not answer.
    let now = app.clock.now();
    match (
        overview::overview(&app.store, &app.topology(), now, app.lease_secs()).await,
        agent::reachability(&app.store, now, app.lease_secs()).await,
    ) {
        (Ok(overview), Ok(reach)) => app.metrics.set_sites(&overview, &reach),
        (Err(e), _) => tracing::warn!(error = %e, "metrics: no overview"),
        (_, Err(e)) => tracing::warn!(error = %e, "metrics: no reachability"),
    }
    match app.store.agents().await {
        Ok(agents) => app.metrics.set_reported(&agents, now, app.lease_secs()),
        Err(e) => tracing::warn!(error = %e, "metrics: no agents"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        app.metrics.encode(),
    )
}
