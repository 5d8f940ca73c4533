//! `/metrics` in Prometheus text format.
//!
//! HTTP requests and latencies are counted as they happen (labelled by route template, never by
//! path, so the label set stays bounded); jobs and items by state, Graph's request counters and
//! the pacer's rates are read at scrape time.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ServerState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// The server's own metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "behalf_http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "behalf_http_request_duration_seconds",
            "HTTP request latency by method and route",
            latency.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
        }
    }
}

/// Middleware: counts each request and its latency under its route template.
pub async fn track(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<ServerState>) -> Response {
    let mut text = String::new();
    {
        let registry = state
            .metrics
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode_registry(&mut text, &registry).is_err() {
            text.clear();
        }
    }
    if let Err(e) = scrape_time(&state, &mut text).await {
        tracing::warn!(error = %e.log_text(), "metrics: cannot read job counts");
    }
    text.push_str("# EOF\n");
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn scrape_time(state: &ServerState, out: &mut String) -> Result<(), behalf_app::AppError> {
    let counts = state.app.state_counts().await?;
    let _ = writeln!(
        out,
        "# TYPE behalf_jobs gauge\n# HELP behalf_jobs Provisioning jobs by state."
    );
    for (job_state, n) in &counts.jobs {
        let _ = writeln!(out, "behalf_jobs{{state=\"{job_state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# TYPE behalf_items gauge\n# HELP behalf_items Provisioning items by state."
    );
    for (item_state, n) in &counts.items {
        let _ = writeln!(out, "behalf_items{{state=\"{item_state}\"}} {n}");
    }
    if let Some(stats) = state.app.pacing_stats() {
        let counters = [
            (
                "behalf_graph_requests",
                "Graph requests sent (each attempt counts).",
                stats.requests,
            ),
            (
                "behalf_graph_retries",
                "Graph attempts that retried an earlier one.",
                stats.retries,
            ),
            (
                "behalf_graph_throttled",
                "Graph answers with status 429.",
                stats.throttled,
            ),
            (
                "behalf_graph_unavailable",
                "Graph answers with status 503 or 504.",
                stats.unavailable,
            ),
            (
                "behalf_graph_transport_errors",
                "Graph attempts that got no answer.",
                stats.transport_errors,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n# HELP {name} {help}\n{name}_total {value}"
            );
        }
        let _ = writeln!(
            out,
            "# TYPE behalf_graph_write_rate gauge\n# HELP behalf_graph_write_rate The pacer's current write rate (requests/s).\nbehalf_graph_write_rate {}",
            stats.write_rate
        );
        let _ = writeln!(
            out,
            "# TYPE behalf_graph_rate gauge\n# HELP behalf_graph_rate The pacer's current request rate (requests/s).\nbehalf_graph_rate {}",
            stats.rate
        );
    }
    Ok(())
}
